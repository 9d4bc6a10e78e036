"""The concurrency fingerprint of a process, for every report's header.

At a glance: whether eventlet is imported and which modules it patched,
its hub, oslo.service's backend, how this process was started (forked or
spawned by multiprocessing), and how many native threads (df_gmr's own
apart) and greenlets there are.  Read from ``sys.modules`` and the
snapshot: nothing is imported or called.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING
from typing import Any

from df_gmr import identity

if TYPE_CHECKING:
    from df_gmr.runtime import Snapshot

#: Modules whose monkey patching the fingerprint names.
PATCHABLE = ("os", "select", "socket", "thread", "time", "subprocess")


def read(snapshot: Snapshot) -> dict[str, Any]:
    """Return the fingerprint as plain data."""
    frames = snapshot.frames()
    own = [ident for ident in snapshot.own_threads() if ident in frames]
    eventlet = sys.modules.get("eventlet")
    found: dict[str, Any] = {
        "eventlet": getattr(eventlet, "__version__", "?")
        if eventlet is not None else None,
        "monkey_patched": _patched(),
        "hubs": sorted({type(reading.hub).__module__
                        for reading in snapshot.hubs()}),
        "oslo_service_backend": _oslo_service_backend(),
        "other_launcher": _other_launcher(),
        "started_by": _start_method(),
        "native_threads": len(frames) - len(own),
        "df_gmr_threads": len(own),
        "greenlets": len(snapshot.tracked_with_sites())
        if "greenlet" in sys.modules else 0,
    }
    return found


def _patched() -> list[str]:
    patcher = sys.modules.get("eventlet.patcher")
    is_patched = getattr(patcher, "is_monkey_patched", None)
    if is_patched is None:
        return []
    return [name for name in PATCHABLE if is_patched(name)]


def _oslo_service_backend() -> str | None:
    backend = sys.modules.get("oslo_service.backend")
    chosen = getattr(backend, "_cached_backend_type", None)
    value = getattr(chosen, "value", None)
    return value if type(value) is str else None


def _other_launcher() -> str | None:
    """Name the launcher this process runs under when it is not one of
    oslo.service's (cotyledon used directly, as aodh does), else None:
    oslo.service's backend may be chosen there all the same (by an import
    of its looping calls, say) without running the process."""
    current = identity.current()
    if current.launcher is not None and current.backend is None:
        return str(current.launcher)
    return None


def _start_method() -> str:
    # A child that multiprocessing spawned runs with --multiprocessing-fork
    # on its command line; one it forked has a parent process recorded.
    if "--multiprocessing-fork" in getattr(sys, "orig_argv", ()):
        return "spawned by multiprocessing"
    process = sys.modules.get("multiprocessing.process")
    if getattr(process, "_parent_process", None) is not None:
        return "forked by multiprocessing"
    if identity.current().role == "worker":
        return "forked by its launcher"
    return "as its own program"


def text(found: dict[str, Any]) -> str:
    """Return the fingerprint as one line for people."""
    if found["eventlet"] is None:
        green = "eventlet not imported"
    else:
        patched = ", ".join(found["monkey_patched"]) or "nothing"
        hubs = ", ".join(hub.rsplit(".", 1)[-1] for hub in found["hubs"])
        green = (f"eventlet {found['eventlet']} (monkey-patched: {patched}; "
                 f"hub: {hubs or 'none has run'})")
    backend = found["oslo_service_backend"] or "not chosen or not used"
    other = found.get("other_launcher")
    if found["oslo_service_backend"] and other:
        backend += (f" (chosen, but this process runs under {other}, not an "
                    "oslo.service launcher)")
    threads = found["native_threads"]
    greenlets_count = found["greenlets"]
    return (f"{green}; oslo.service backend {backend}; "
            f"{found['started_by']}; {threads} native "
            f"thread{'' if threads == 1 else 's'} "
            f"(+{found['df_gmr_threads']} of df_gmr's), {greenlets_count} "
            f"greenthread{'' if greenlets_count == 1 else 's'} tracked "
            "(hubs' and threads' main greenlets not counted)")
