"""Unpatched primitives for the code that runs outside the hub.

eventlet's monkey patching replaces ``_thread``, ``os.read``/``os.write``,
``time.sleep`` and friends in place, inside the real modules.  The reporting
thread is a real OS thread: a green lock or a green write there would look
for a hub in that thread (and create one), and could park forever.  So every
primitive that df_gmr uses off the hub comes from here, taken from the
unpatched modules whether df_gmr is imported before or after
``eventlet.monkey_patch()``.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType
from typing import Any


def original(name: str) -> ModuleType:
    """Return the unpatched module ``name``.

    When eventlet is loaded, its patcher keeps a pristine copy of each
    module; otherwise the module in ``sys.modules`` is the real one.
    """
    patcher = sys.modules.get("eventlet.patcher")
    if patcher is not None:
        return patcher.original(name)  # type: ignore[no-any-return]
    return importlib.import_module(name)


def _os_function(name: str) -> Any:
    # os itself is never replaced in sys.modules, only its attributes, and
    # eventlet keeps the originals beside the green ones.
    import os

    green_os = sys.modules.get("eventlet.green.os")
    saved = getattr(green_os, f"__original_{name}__", None)
    if saved is not None:
        return saved
    return getattr(os, name)


def allocate_lock() -> Any:
    """Return a real (OS-level) lock, never a green one."""
    return original("_thread").allocate_lock()


def start_thread(function: Any, args: tuple[Any, ...] = ()) -> int:
    """Start a real OS thread without the threading module's locks."""
    return original("_thread").start_new_thread(  # type: ignore[no-any-return]
        function, args
    )


def get_ident() -> int:
    """Return the OS thread's ident (not a greenlet's id)."""
    return original("_thread").get_ident()  # type: ignore[no-any-return]


def write_all(fd: int, data: bytes) -> None:
    """Write ``data`` to ``fd``: in one call when the kernel takes it all."""
    write = _os_function("write")
    view = memoryview(data)
    while view:
        written = write(fd, view)
        view = view[written:]


def sleep(seconds: float) -> None:
    """Sleep the OS thread, not the greenthread."""
    original("time").sleep(seconds)
