"""Activation without code change: ``DF_GMR_ENABLE=1`` or ``df-gmr run``.

The package installs ``df_gmr_autostart.pth`` into site-packages.  Python
runs it at every interpreter start; it reads one environment variable and,
only when ``DF_GMR_ENABLE`` is ``1`` (or ``true``/``yes``), calls
``activate()``.  A process that merely has df_gmr installed pays nothing
more.

``activate()`` sets up the signal handler at once (so SIGUSR2 is never
fatal from the first line of the program on), and defers everything else
to the moment the service imports what it concerns: eventlet (greenthread
tracking), oslo.service (worker identity), oslo.config (the service's own
``[oslo_reports]`` and ``[df_gmr]`` options, adopted once it parsed its
configuration), oslo.reports (a service's own ``setup_autorun`` and
``register_section`` calls go to df_gmr).  It imports none of them.

Environment: ``DF_GMR_SERVICE_NAME`` (report name), ``DF_GMR_LOG_DIR``
(report directory; unset or empty means stderr), ``DF_GMR_FORMAT``
(``text`` or ``json``).
"""

from __future__ import annotations

import functools
import os
import sys
from types import ModuleType
from typing import Any

ENABLE_VARIABLE = "DF_GMR_ENABLE"
TRUE_VALUES = ("1", "true", "yes", "on")

_activated = False


def activate(service_name: str | None = None,
             log_dir: str | None = None) -> None:
    """Enable Guru Meditation Reports in this process (idempotent).

    ``service_name`` and ``log_dir`` default to ``DF_GMR_SERVICE_NAME`` and
    ``DF_GMR_LOG_DIR``.
    """
    global _activated
    if _activated:
        return
    _activated = True
    from df_gmr import _imports
    from df_gmr import guru_meditation_report as gmr

    if gmr.current_autorun() is None:
        gmr.TextGuruMeditation.setup_autorun(
            None,
            service_name=(service_name
                          or os.environ.get("DF_GMR_SERVICE_NAME") or None),
            log_dir=log_dir or os.environ.get("DF_GMR_LOG_DIR") or None,
        )
    _imports.when_imported("oslo_config.cfg", _hook_config)
    _imports.when_imported("oslo_reports.guru_meditation_report",
                           _take_over_oslo_reports)


def _take_over_oslo_reports(module: ModuleType) -> None:
    # Most OpenStack services already call oslo.reports' setup_autorun,
    # which would replace df_gmr's handler with its own: with activation
    # on, that call (and register_section) goes to df_gmr instead.
    from df_gmr import guru_meditation_report as gmr

    oslo_class = module.GuruMeditation
    original_register = oslo_class.register_section.__func__

    def setup_autorun(cls: Any, version: Any, service_name: Any = None,
                      log_dir: Any = None, signum: Any = None,
                      conf: Any = None, setup_signal: bool = True) -> None:
        gmr.TextGuruMeditation.setup_autorun(
            version, service_name=service_name, log_dir=log_dir,
            signum=signum, conf=conf, setup_signal=setup_signal)

    def register_section(cls: Any, section_title: str,
                         generator: Any) -> None:
        original_register(cls, section_title, generator)
        gmr.TextGuruMeditation.register_section(section_title, generator)

    oslo_class.setup_autorun = classmethod(setup_autorun)
    oslo_class.register_section = classmethod(register_section)


def _hook_config(cfg: ModuleType) -> None:
    original_call = cfg.ConfigOpts.__call__

    @functools.wraps(original_call)
    def parse_then_adopt(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = original_call(self, *args, **kwargs)
        try:
            _adopt(self)
        except Exception as error:  # never break a service's start-up
            sys.stderr.write(f"df_gmr: cannot read the service's "
                             f"configuration: {error!r}\n")
        return result

    cfg.ConfigOpts.__call__ = parse_then_adopt


def _adopt(conf: Any) -> None:
    """Use the first configuration the service parses (once)."""
    from df_gmr import opts
    from df_gmr import report
    from df_gmr.reporter import reporter

    settings = reporter.settings
    if settings is None or settings.conf is not None:
        return
    opts.register(conf)
    settings.conf = conf
    if not settings.log_dir and conf.oslo_reports.log_dir:
        settings.log_dir = conf.oslo_reports.log_dir
    if not settings.service_name and \
            conf.prog not in report.NOT_PROGRAM_NAMES:
        settings.service_name = conf.prog
    reporter.announce()
