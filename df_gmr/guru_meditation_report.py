"""Guru Meditation Reports: a drop-in for oslo.reports' module of that name.

Swap the import and keep the code::

    from df_gmr import guru_meditation_report as gmr
    from df_gmr import opts as gmr_opts

    gmr_opts.set_defaults(CONF)
    CONF(sys.argv[1:], project='myservice')
    gmr.TextGuruMeditation.register_section('Some Special Section', gen)
    gmr.TextGuruMeditation.setup_autorun(version, conf=CONF)

From then on, ``kill -USR2 <pid>`` writes a report of that process (and of
any worker forked from it) to stderr, or to a new file in ``log_dir``.

This module is only the oslo.reports-compatible facade: the work is the
process's ``Reporter`` (see ``reporter``).
"""

from __future__ import annotations

from collections.abc import Callable
import os
from types import FrameType
from typing import Any
from typing import ClassVar

from df_gmr.reporter import Settings
from df_gmr.reporter import reporter
from df_gmr.trigger import trigger


def current_autorun() -> Settings | None:
    """Return what ``setup_autorun`` set up, if it was called."""
    return reporter.settings


class GuruMeditation:
    """A Guru Meditation Report: built-in sections plus registered ones."""

    #: The registered (title, generator) pairs, as in oslo.reports.
    persistent_sections: ClassVar[list[tuple[str, Callable[[], Any]]]] = \
        reporter.registered

    def __init__(self, version_obj: Any,
                 sig_handler_tb: FrameType | None = None,
                 *args: Any, **kwargs: Any) -> None:
        self.version_obj = version_obj
        self.traceback = sig_handler_tb

    @classmethod
    def register_section(cls, section_title: str,
                         generator: Callable[[], Any]) -> None:
        """Add a section, shown after the built-in ones in every report.

        ``generator`` takes no argument and returns a string, a mapping, a
        list, or any object with a sensible ``str()`` (such as an
        oslo.reports model).
        """
        reporter.register_section(section_title, generator)

    @classmethod
    def setup_autorun(cls, version: Any, service_name: str | None = None,
                      log_dir: str | None = None, signum: int | None = None,
                      conf: Any = None, setup_signal: bool = True) -> None:
        """Write a report whenever the signal (SIGUSR2) or file trigger fires.

        As in oslo.reports: ``log_dir`` defaults to ``[oslo_reports]
        log_dir`` of ``conf``; an explicit ``signum`` always sets up that
        signal; otherwise ``[oslo_reports] file_event_handler``, when set,
        replaces the signal with a watched file.  ``DF_GMR_LOG_DIR`` and
        ``DF_GMR_SERVICE_NAME`` fill a log_dir or service name left open.
        Must be called from the main thread (signal handlers can only be
        set there).
        """
        if conf is not None:
            from df_gmr import opts

            opts.register(conf)
            if log_dir is None:
                log_dir = conf.oslo_reports.log_dir
        # What the operator put in the environment (DF_GMR_ENABLE units,
        # df-gmr run) fills what the code and configuration leave open.
        settings = Settings(
            version=version,
            service_name=(service_name
                          or os.environ.get("DF_GMR_SERVICE_NAME") or None),
            log_dir=log_dir or os.environ.get("DF_GMR_LOG_DIR") or None,
            conf=conf)
        watched = conf.oslo_reports.file_event_handler if conf else None
        reporter.set_up(settings, signum, setup_signal, file_trigger=False)
        if not signum and watched:
            cls._setup_file_watcher(
                watched, conf.oslo_reports.file_event_handler_interval,
                version, service_name, log_dir)

    @classmethod
    def _setup_file_watcher(cls, filepath: str, interval: float,
                            version: Any, service_name: str | None,
                            log_dir: str | None) -> None:
        """Report whenever ``filepath`` changes (oslo.reports' name for it).

        Polled by df_gmr's own OS thread, not a ``threading.Thread``
        (green under monkey patching), so it works while the hub is
        blocked; version, service name and log_dir are the set-up's.
        """
        reporter.watch_file(filepath, interval)

    @classmethod
    def handle_signal(cls, version: Any, service_name: str | None,
                      log_dir: str | None, frame: FrameType | None) -> None:
        """Build and deliver a report now, in the calling thread.

        Kept for oslo.reports compatibility; the signal path does not use
        it (reports are built by the reporting thread).
        """
        reporter.produce("api")

    def run(self, fmt: str = "text") -> str:
        """Build the report in the calling thread and return it as text.

        As for a signalled report, the cyclic garbage collector waits
        until the report is built (see ``Trigger.collection_deferred``).
        """
        with trigger.collection_deferred():
            return reporter.render(reporter.build("api", self.version_obj),
                                   fmt)


class TextGuruMeditation(GuruMeditation):
    """The human-readable Guru Meditation Report (as in oslo.reports)."""


__all__ = ["GuruMeditation", "TextGuruMeditation"]
