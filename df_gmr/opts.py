"""oslo.config options: oslo.reports' ``[oslo_reports]`` and ``[df_gmr]``.

The ``[oslo_reports]`` options are declared exactly as oslo.reports
declares them (same names, types, defaults and help), because oslo.config
accepts a second registration of an option only when it is identical:
a service may load both libraries, in either order.

For ``oslo-config-generator`` (entry-point group ``oslo.config.opts``):

* namespace ``df_gmr`` (``list_opts``): ``[oslo_reports]`` and
  ``[df_gmr]``, for a configuration-generator file written for df_gmr;
* namespace ``oslo.reports`` (``list_oslo_reports_opts``), so that a
  service that swapped oslo.reports for df_gmr and kept ``namespace =
  oslo.reports`` in its file does not lose ``[oslo_reports]`` from its
  sample: it lists the group only when oslo.reports itself is not
  installed (when it is, oslo.reports' own entry point of that name lists
  it, and df_gmr's lists nothing: the group is never listed twice by the
  ``oslo.reports`` namespace).  A file that names both namespaces shows
  ``[oslo_reports]`` from each: name one of them.
"""

from __future__ import annotations

import copy
import importlib.metadata
from typing import Any

from oslo_config import cfg

__all__ = ["list_opts", "list_oslo_reports_opts", "register",
           "set_defaults"]

OSLO_REPORTS_GROUP = "oslo_reports"
DF_GMR_GROUP = "df_gmr"

oslo_reports_opts = [
    cfg.StrOpt(
        "log_dir", help="Path to a log directory where to create a file"
    ),
    cfg.StrOpt(
        "file_event_handler",
        help=(
            "The path to a file to watch for changes to trigger "
            "the reports, instead of signals. Setting this option "
            "disables the signal trigger for the reports. If "
            "application is running as a WSGI application it is "
            "recommended to use this instead of signals."
        ),
    ),
    cfg.IntOpt(
        "file_event_handler_interval",
        default=1,
        help=(
            "How many seconds to wait between polls when "
            "file_event_handler is set"
        ),
    ),
]

df_gmr_opts = [
    cfg.StrOpt(
        "format",
        default="text",
        choices=[
            ("text", "Plain text for a person in a terminal."),
            ("json", "One JSON document (schema_version 1) per report."),
        ],
        help="Format of Guru Meditation Reports.",
    ),
    cfg.BoolOpt(
        "mask_url_credentials",
        default=True,
        help=(
            "Mask passwords inside option values, such as the password "
            "of mysql+pymysql://user:PASSWORD@host/db, besides the "
            "options marked secret (which are always masked)."
        ),
    ),
    cfg.FloatOpt(
        "section_timeout",
        default=10.0,
        min=0.1,
        help=(
            "Seconds a single report section may take before it is cut "
            "off and reported as such."
        ),
    ),
    cfg.BoolOpt(
        "native_stacks_at_once",
        default=True,
        help=(
            "On SIGURG, write the Python stack of the thread that "
            "receives it (df-gmr report sends it to the main thread when "
            "a report is late) to stderr at once, from faulthandler's "
            "C-level handler. This is what still comes out when the main "
            "thread holds the GIL in a long C call."
        ),
    ),
    cfg.BoolOpt(
        "propagate_to_workers",
        default=False,
        help=(
            "When a parent (an oslo.service or cotyledon launcher) gets "
            "the report signal, it also sends it to each of its live "
            "workers, so that one signal to the main process (docker "
            "kill -s USR2 under dumb-init --single-child, systemctl kill "
            "-s USR2 --kill-whom=main) gives a report of every process. "
            "Off by default: as in oslo.reports a signal reports one "
            "process, and systemd's default kill-whom=all already "
            "signals every worker (propagating then would double each "
            "worker's report). Workers never propagate; reports asked "
            "for by df-gmr report are not propagated (it asks the "
            "workers itself)."
        ),
    ),
    cfg.FloatOpt(
        "long_wait_threshold",
        default=60.0,
        min=0,
        help=(
            "Seconds after which a wait (for a lock, a semaphore, an "
            "event, a future, a join, a pool slot) is reported among the "
            "findings. The default is oslo.messaging's rpc_response_timeout: "
            "a wait longer than an RPC call would have waited is worth a "
            "look. Idle waits (sleeps, a worker waiting for work, a server "
            "waiting for connections) never count. 0 turns it off."
        ),
    ),
    cfg.IntOpt(
        "watchdog_interval",
        default=0,
        min=0,
        help=(
            "When positive, write a report by itself when the eventlet "
            "hub has not turned for this many seconds. 0 disables the "
            "blocked-hub watchdog."
        ),
    ),
    cfg.IntOpt(
        "watchdog_min_gap",
        default=300,
        min=1,
        help=(
            "Seconds between two reports written by the blocked-hub "
            "watchdog."
        ),
    ),
]


def list_opts() -> list[tuple[str, list[cfg.Opt]]]:
    """Return the options df_gmr may register, by group.

    Published through the ``oslo.config.opts`` entry point as ``df_gmr``
    for ``oslo-config-generator``.
    """
    return [
        (OSLO_REPORTS_GROUP, copy.deepcopy(oslo_reports_opts)),
        (DF_GMR_GROUP, copy.deepcopy(df_gmr_opts)),
    ]


#: df_gmr's entry point in the ``oslo.reports`` namespace.
OSLO_REPORTS_ENTRY_POINT = "df_gmr.opts:list_oslo_reports_opts"


def list_oslo_reports_opts() -> list[tuple[str, list[cfg.Opt]]]:
    """Return ``[oslo_reports]`` unless oslo.reports lists it itself.

    Published as the ``oslo.reports`` namespace of ``oslo.config.opts``
    (see the module docstring).
    """
    if oslo_reports_lists_its_options():
        return []
    return [(OSLO_REPORTS_GROUP, copy.deepcopy(oslo_reports_opts))]


def oslo_reports_lists_its_options() -> bool:
    """Say whether another ``oslo.reports`` entry point is installed."""
    try:
        found = importlib.metadata.entry_points(group="oslo.config.opts",
                                                name="oslo.reports")
    except Exception:
        return False
    return any(entry.value.replace(" ", "") != OSLO_REPORTS_ENTRY_POINT
               for entry in found)


def register(conf: Any) -> None:
    """Register df_gmr's options in ``conf`` (twice is harmless)."""
    conf.register_opts(oslo_reports_opts, group=OSLO_REPORTS_GROUP)
    conf.register_opts(df_gmr_opts, group=DF_GMR_GROUP)


def set_defaults(conf: Any) -> None:
    """Register the options in ``conf``, as oslo.reports' ``set_defaults``."""
    register(conf)
