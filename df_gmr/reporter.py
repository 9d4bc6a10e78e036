"""The Reporter: what a report is made of, where it goes, and when.

One per process (``reporter``).  It owns the sections (the built-in ones,
resolved once, and those registered with ``register_section``), the
settings given to ``setup_autorun``, the socket through which
``df-gmr report`` asks for copies (see ``exchange``), and delivery (see
``output``).  ``guru_meditation_report`` is only the oslo.reports-compatible
facade over it; ``trigger`` calls ``Reporter.produce`` from the reporting
thread.
"""

from __future__ import annotations

from collections.abc import Callable
import dataclasses
import datetime
import os
import signal
from typing import Any

from df_gmr import _native
from df_gmr import exchange
from df_gmr import findings
from df_gmr import greenlets
from df_gmr import identity
from df_gmr import journal
from df_gmr import launchers
from df_gmr import origins
from df_gmr import output
from df_gmr import pools
from df_gmr import registry
from df_gmr import render
from df_gmr import report
from df_gmr import signals
from df_gmr import trigger
from df_gmr import watchers
from df_gmr.context import DEFAULT_SECTION_TIMEOUT
from df_gmr.context import ReportContext
from df_gmr.lifecycle import lifecycle
from df_gmr.runtime import executors
from df_gmr.sections import Section
from df_gmr.sections import generator_section
from df_gmr.sections import installed_sections
from df_gmr.sections import package
from df_gmr.streams import complain

Generator = Callable[[], Any]
FORMATS = ("text", "json")
EXTENSIONS = {"text": "txt", "json": "json"}


@dataclasses.dataclass
class Settings:
    """What ``setup_autorun`` was given, completed from the environment."""

    version: Any
    service_name: str | None
    log_dir: str | None
    conf: Any
    signal_name: str | None = None

    def report_format(self) -> str:
        """Return ``DF_GMR_FORMAT``, else ``[df_gmr] format``, else text."""
        chosen = os.environ.get("DF_GMR_FORMAT")
        if chosen in FORMATS:
            return chosen
        fmt = str(self.option("format", "text"))
        return fmt if fmt in FORMATS else "text"

    def option(self, name: str, default: Any) -> Any:
        """Return ``[df_gmr] name`` of the reported conf, else ``default``."""
        try:
            return getattr(self.conf.df_gmr, name)
        except Exception:
            return default

    def destination(self) -> str:
        """Say where reports go, for people and for ``df-gmr list``."""
        return self.log_dir or "stderr"

    def propagates(self) -> bool:
        """Say whether a parent passes the signal on to its workers."""
        chosen = os.environ.get("DF_GMR_PROPAGATE", "").strip().lower()
        if chosen:
            return chosen in ("1", "true", "yes", "on")
        return bool(self.option("propagate_to_workers", False))

    def worker_environment(self) -> dict[str, str]:
        """Return the variables that activate df_gmr in a spawned worker."""
        environment = {"DF_GMR_ENABLE": "1"}
        if self.service_name:
            environment["DF_GMR_SERVICE_NAME"] = self.service_name
        if self.log_dir:
            environment["DF_GMR_LOG_DIR"] = self.log_dir
        return environment


class Reporter:
    """Sections, settings, requests and delivery of this process's reports.
    """

    def __init__(self) -> None:
        #: (title, generator) in registration order (oslo.reports'
        #: ``persistent_sections``).
        self.registered: list[tuple[str, Generator]] = []
        self.settings: Settings | None = None
        self.listener = exchange.Listener()
        self._builtin: list[Section] | None = None
        self._hooked = False

    def register_section(self, title: str, generator: Generator) -> None:
        """Add a section, shown after the built-in ones in every report."""
        if not isinstance(title, str) or not title.strip():
            msg = f"section_title must be a non-empty string, not {title!r}"
            raise ValueError(msg)
        if not callable(generator):
            msg = (f"generator for section {title!r} must be callable, "
                   f"not {type(generator).__name__}")
            raise TypeError(msg)
        self.registered.append((title, generator))

    def sections(self) -> list[Section]:
        """Return the sections of a report, in order."""
        if self._builtin is None:
            self._builtin = installed_sections()
        return [*self._builtin,
                *(generator_section(title, generator)
                  for title, generator in self.registered)]

    def set_up(self, settings: Settings, signum: int | None,
               setup_signal: bool, file_trigger: bool = True) -> None:
        """Make reports on the signal (or file trigger), from now on.

        ``file_trigger=False``: the caller watches the file itself (the
        facade's ``_setup_file_watcher``, as oslo.reports names it).

        Must be called from the main thread (signal handlers can only be
        set there).
        """
        greenlets.install()
        pools.install()
        origins.install()
        executors.install()
        # Import every section now, not in a signal's wake, and warm what
        # a report looks up once (installed versions).
        self.sections()
        package.component_versions()
        self.settings = settings
        trigger.set_producer(self.produce)
        self._hook_once()
        conf = settings.conf
        watched = conf.oslo_reports.file_event_handler if conf else None
        if not signum and watched:
            if file_trigger:
                self.watch_file(
                    watched, conf.oslo_reports.file_event_handler_interval)
        elif setup_signal:
            chosen = signum or getattr(signal, "SIGUSR2", None)
            if chosen:
                signals.install_signal(chosen, native_stacks=settings.option(
                    "native_stacks_at_once", True))
                settings.signal_name = signal.Signals(chosen).name
        watchers.start_watchdog(settings.option("watchdog_interval", 0),
                                settings.option("watchdog_min_gap", 300))
        self.announce()

    def watch_file(self, path: str, interval: float) -> None:
        """Report whenever ``path`` changes (polled by a real thread)."""
        watchers.watch_file(path, interval)

    def _hook_once(self) -> None:
        if self._hooked:
            return
        self._hooked = True
        launchers.install(on_role_change=self.announce,
                          worker_environment=self._worker_environment,
                          on_worker_exit=self.listener.forget_gone,
                          worker_bootstrap=spawned_worker,
                          on_worker_leaving=signals.worker_leaving)
        lifecycle.reset_after_fork(self.listener.after_fork)
        lifecycle.on_worker_start(self.announce)
        signals.on_handler_replaced(self.announce)
        # Before the signal's exit guard (atexit runs in reverse): a
        # report requested at exit is answered before the socket goes.
        import atexit

        atexit.register(self.listener.withdraw)  # whichever pid exits

    def _worker_environment(self) -> dict[str, str]:
        settings = self.settings
        return settings.worker_environment() if settings else {}

    def build(self, trigger_label: str, version: Any = None,
              builder_thread: int | None = None) -> report.Report:
        """Build one report (plain data) in the calling thread."""
        settings = self.settings
        context = ReportContext(
            version=version if settings is None else settings.version,
            conf=None if settings is None else settings.conf,
            service_name=None if settings is None else settings.service_name,
            trigger=trigger_label,
            builder_thread=(_native.get_ident() if builder_thread is None
                            else builder_thread),
            section_timeout=(DEFAULT_SECTION_TIMEOUT
                             if settings is None else settings.option(
                                 "section_timeout",
                                 DEFAULT_SECTION_TIMEOUT)),
            long_wait_threshold=(findings.LONG_WAIT_THRESHOLD
                                 if settings is None else settings.option(
                                     "long_wait_threshold",
                                     findings.LONG_WAIT_THRESHOLD)),
        )
        return report.build(context, self.sections())

    def render(self, built: report.Report, fmt: str) -> str:
        """Render a built report as ``text`` or ``json``."""
        if fmt == "json":
            return render.as_json(built)
        return render.as_text(built, {section.name: section
                                      for section in self.sections()})

    def produce(self, trigger_label: str) -> str:
        """Build, render and deliver one report; return where it went.

        Copies asked for by ``df-gmr report`` are answered first: the
        service's own copy may block on a full stderr.
        """
        settings = self.settings or Settings(None, None, None, None)
        requests = self.listener.take_requests()
        if not requests and trigger_label.startswith("signal "):
            self._propagate(settings)
        if requests:
            askers = ", ".join(str(r.peer_pid) for r in requests)
            trigger_label += f"; df-gmr report from pid {askers}"
        try:
            built = self.build(trigger_label,
                               builder_thread=trigger.reporting_thread_ident())
            rendered: dict[str, str] = {}
            for request in requests:
                try:  # one requester gone never costs the others theirs
                    if request.format not in rendered:
                        rendered[request.format] = self.render(
                            built, request.format)
                    request.answer(rendered[request.format])
                except Exception as error:
                    complain(f"cannot answer df-gmr report from pid "
                             f"{request.peer_pid}: {error!r}")
        finally:
            for request in requests:
                request.close()
        fmt = settings.report_format()
        text = rendered.get(fmt) or self.render(built, fmt)
        name = output.file_name(
            built.header["service"], built.header["pid"],
            EXTENSIONS[fmt],
            datetime.datetime.fromisoformat(built.header["time"]))
        where = output.deliver(text, settings.log_dir, name)
        if where not in ("stderr",) and not where.startswith("nowhere"):
            # Operators look at the service's log first: say where it is.
            complain(f"Guru Meditation Report of pid "
                     f"{built.header['pid']} written to {where}")
        if journal.connected():
            journal.send(journal.entry(built.header, where))
        return where

    def _propagate(self, settings: Settings) -> None:
        """Pass the report signal on to this parent's live workers.

        Only a parent, only for a signal (never for df-gmr report, which
        asks the workers itself), once per report, so never a loop and
        never more than one signal per worker per report.
        """
        who = identity.current()
        signum = getattr(signal, settings.signal_name or "", None)
        if who.role != "parent" or not signum or not settings.propagates():
            return
        for pid in list(who.workers):
            registry.signal_child(pid, signum)

    def announce(self) -> None:
        """Record this process as GMR-ready in the run directory."""
        settings = self.settings
        if settings is None:
            return
        who = identity.describe()
        signum = getattr(signal, settings.signal_name or "", None)
        self.listener.announce({
            "pid": os.getpid(),
            "ppid": os.getppid(),
            "start_time": registry.process_start_time(os.getpid()),
            "service": report.service_name(settings.service_name),
            "role": who["role"],
            "worker_index": who["worker_index"],
            "launcher": who["launcher"],
            "destination": settings.destination(),
            "signal": settings.signal_name,
            "handler": (signals.handler_state(signum) if signum
                        else "no signal"),
            "stack_signal": signals.stack_signal(),
        })


#: The process's one Reporter.
reporter = Reporter()


def spawned_worker(target: Callable[..., Any], environment: dict[str, str],
                   *args: Any, **kwargs: Any) -> Any:
    """Run first in a spawned worker: set df_gmr up, then the worker.

    Module-level, so that multiprocessing passes it by reference; the
    settings come from the parent (``Settings.worker_environment``).
    """
    if reporter.settings is None:  # not yet: no .pth activated it
        try:
            reporter.set_up(Settings(
                version=None,
                service_name=environment.get("DF_GMR_SERVICE_NAME"),
                log_dir=environment.get("DF_GMR_LOG_DIR"), conf=None),
                None, True)
        except Exception as error:  # the worker runs regardless
            complain(f"cannot set up in the spawned worker: {error!r}")
    return target(*args, **kwargs)
