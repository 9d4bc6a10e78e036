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
"""

from __future__ import annotations

import atexit
from collections.abc import Callable
import dataclasses
import datetime
import os
import signal
from types import FrameType
from typing import Any
from typing import ClassVar

from df_gmr import exchange
from df_gmr import greenlets
from df_gmr import identity
from df_gmr import launchers
from df_gmr import output
from df_gmr import pools
from df_gmr import registry
from df_gmr import render
from df_gmr import report
from df_gmr import trigger
from df_gmr import watchers
from df_gmr.lifecycle import lifecycle
from df_gmr.sections import Section
from df_gmr.sections import builtin_sections
from df_gmr.sections import generator_section
from df_gmr.sections import package
from df_gmr.streams import complain

FORMATS = ("text", "json")


@dataclasses.dataclass
class Autorun:
    """What ``setup_autorun`` set up: how each triggered report is made."""

    version: Any
    service_name: str | None
    log_dir: str | None
    conf: Any
    report_class: type[GuruMeditation]
    format: str | None = None
    signal_name: str | None = None

    def report_format(self) -> str:
        """Return the format: explicit, else ``[df_gmr] format``, else text."""
        if self.format:
            return self.format
        chosen = os.environ.get("DF_GMR_FORMAT")
        if chosen in FORMATS:
            return chosen
        return str(self.option("format", "text"))

    def option(self, name: str, default: Any) -> Any:
        """Return ``[df_gmr] name`` of the reported conf, else ``default``."""
        try:
            return getattr(self.conf.df_gmr, name)
        except Exception:
            return default

    def produce(self, trigger_label: str) -> str:
        """Build, render and deliver one report; return where it went.

        Copies asked for by ``df-gmr report`` (see exchange) are answered
        first: the service's own copy may block on a full stderr.
        """
        requests = _listener.take_requests()
        if requests:
            askers = ", ".join(str(r.peer_pid) for r in requests)
            trigger_label += f"; df-gmr report from pid {askers}"
        context = report.ReportContext(
            version=self.version,
            conf=self.conf,
            service_name=self.service_name,
            trigger=trigger_label,
            builder_thread=trigger.reporting_thread_ident(),
            section_timeout=self.option("section_timeout",
                                        report.DEFAULT_SECTION_TIMEOUT),
        )
        fmt = self.report_format()
        sections = self.report_class.sections()
        built = report.build(context, sections)
        rendered: dict[str, str] = {}
        try:
            for request in requests:
                if request.format not in rendered:
                    rendered[request.format] = render_report(
                        built, sections, request.format)
                request.answer(rendered[request.format])
        except Exception as error:
            complain(f"cannot answer df-gmr report: {error!r}")
        finally:
            for request in requests:
                request.close()
        text = rendered.get(fmt) or render_report(built, sections, fmt)
        name = output.file_name(
            built.header["service"],
            built.header["pid"],
            "json" if fmt == "json" else "txt",
            datetime.datetime.now(datetime.timezone.utc),
        )
        return output.deliver(text, self.log_dir, name)

    def destination(self) -> str:
        """Say where reports go, for people and for ``df-gmr list``."""
        return self.log_dir or "stderr"

    def announce(self) -> None:
        """Record this process as GMR-ready in the run directory."""
        who = identity.describe()
        signum = getattr(signal, self.signal_name or "", None)
        _listener.announce({
            "pid": os.getpid(),
            "ppid": os.getppid(),
            "start_time": registry.process_start_time(os.getpid()),
            "service": report.service_name(self.service_name),
            "role": who["role"],
            "worker_index": who["worker_index"],
            "launcher": who["launcher"],
            "destination": self.destination(),
            "signal": self.signal_name,
            "handler": (trigger.handler_state(signum) if signum
                        else "no signal"),
        })

    def worker_environment(self) -> dict[str, str]:
        """Return the variables that activate df_gmr in a spawned worker."""
        environment = {"DF_GMR_ENABLE": "1"}
        if self.service_name:
            environment["DF_GMR_SERVICE_NAME"] = self.service_name
        if self.log_dir:
            environment["DF_GMR_LOG_DIR"] = self.log_dir
        return environment


def _announce_current() -> None:
    if _autorun is not None:
        _autorun.announce()


def render_report(built: report.Report, sections: list[Section], fmt: str
                  ) -> str:
    """Render a built report as ``text`` or ``json``."""
    if fmt == "json":
        return render.as_json(built)
    return render.as_text(built, {section.name: section
                                  for section in sections})


_autorun: Autorun | None = None
_withdraw_registered = False
#: This process's socket for df-gmr report (see exchange).
_listener = exchange.Listener()


def current_autorun() -> Autorun | None:
    """Return the active set-up, if ``setup_autorun`` was called."""
    return _autorun


class GuruMeditation:
    """A Guru Meditation Report: built-in sections plus registered ones."""

    persistent_sections: ClassVar[list[tuple[str, Callable[[], Any]]]] = []
    timestamp_fmt: ClassVar[str] = "%Y%m%d%H%M%S%f"

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
        if not isinstance(section_title, str) or not section_title.strip():
            msg = (f"section_title must be a non-empty string, "
                   f"not {section_title!r}")
            raise ValueError(msg)
        if not callable(generator):
            msg = (f"generator for section {section_title!r} must be "
                   f"callable, not {type(generator).__name__}")
            raise TypeError(msg)
        cls.persistent_sections.append((section_title, generator))

    @classmethod
    def sections(cls) -> list[Section]:
        """Return the sections of a report, in order."""
        sections = builtin_sections()
        sections.extend(generator_section(title, generator)
                        for title, generator in cls.persistent_sections)
        return sections

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
        global _autorun, _withdraw_registered
        if conf is not None:
            from df_gmr import opts

            opts.register(conf)
            if log_dir is None:
                log_dir = conf.oslo_reports.log_dir
        # What the operator put in the environment (DF_GMR_ENABLE units,
        # df-gmr run) fills what the code and configuration leave open.
        log_dir = log_dir or os.environ.get("DF_GMR_LOG_DIR") or None
        service_name = (service_name or os.environ.get("DF_GMR_SERVICE_NAME")
                        or None)
        greenlets.install()
        pools.install()
        # Import every section now, not in a signal's wake, and warm what
        # a report looks up once (installed versions).
        cls.sections()
        package.component_versions()
        autorun = Autorun(version=version, service_name=service_name,
                          log_dir=log_dir, conf=conf, report_class=cls)
        _autorun = autorun
        trigger.set_producer(autorun.produce)
        launchers.install(on_role_change=_announce_current)
        lifecycle.reset_after_fork(_listener.forget_inherited)
        lifecycle.on_worker_start(_announce_current)
        trigger.on_handler_replaced(_announce_current)
        if not _withdraw_registered:
            # Before the signal's exit guard (atexit runs in reverse): a
            # report requested at exit is answered before the socket goes.
            atexit.register(_listener.withdraw)  # whichever pid exits
            _withdraw_registered = True
        watched = conf.oslo_reports.file_event_handler if conf else None
        if not signum and watched:
            interval = conf.oslo_reports.file_event_handler_interval
            watchers.watch_file(watched, interval)
        elif setup_signal:
            chosen = signum or getattr(signal, "SIGUSR2", None)
            if chosen:
                trigger.install_signal(
                    chosen, native_stacks=autorun.option(
                        "native_stacks_at_once", True))
                autorun.signal_name = signal.Signals(chosen).name
        watchers.start_watchdog(autorun.option("watchdog_interval", 0),
                       autorun.option("watchdog_min_gap", 300))
        autorun.announce()

    @classmethod
    def handle_signal(cls, version: Any, service_name: str | None,
                      log_dir: str | None, frame: FrameType | None) -> None:
        """Build and deliver a report now, in the calling thread.

        Kept for oslo.reports compatibility; the signal path does not use
        it (reports are built by the reporting thread).
        """
        conf = _autorun.conf if _autorun is not None else None
        Autorun(version=version, service_name=service_name,
                log_dir=log_dir, conf=conf, report_class=cls).produce("api")

    def run(self, fmt: str = "text") -> str:
        """Build the report in the calling thread and return it as text."""
        conf = _autorun.conf if _autorun is not None else None
        name = _autorun.service_name if _autorun is not None else None
        context = report.ReportContext(
            version=self.version_obj, conf=conf, service_name=name,
            trigger="api", builder_thread=_current_thread_ident(),
            signal_frame=self.traceback,
        )
        sections = self.sections()
        return render_report(report.build(context, sections), sections, fmt)


class TextGuruMeditation(GuruMeditation):
    """The human-readable Guru Meditation Report (as in oslo.reports)."""


def _current_thread_ident() -> int:
    from df_gmr import _native

    return _native.get_ident()


__all__ = ["GuruMeditation", "TextGuruMeditation"]
