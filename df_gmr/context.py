"""What the sections of one report may look at."""

from __future__ import annotations

import dataclasses
from types import FrameType
from typing import Any

from df_gmr.isolation import DEFAULT_TIMEOUT
from df_gmr.runtime import Snapshot

#: Seconds a section may take when no ``[df_gmr] section_timeout`` says
#: (one figure with the isolation's fallback for a budget that is NaN).
DEFAULT_SECTION_TIMEOUT = DEFAULT_TIMEOUT


@dataclasses.dataclass
class ReportContext:
    """What the sections may look at while a report is built."""

    version: Any = None
    conf: Any = None
    service_name: str | None = None
    trigger: str = "api"
    builder_thread: int | None = None
    signal_frame: FrameType | None = None
    section_timeout: float = DEFAULT_SECTION_TIMEOUT
    #: Waits longer than this are findings (``[df_gmr] long_wait_threshold``).
    long_wait_threshold: float = 60.0
    #: The process's threads, greenlets and hubs, read once for the
    #: report (set by the builder; see ``df_gmr.runtime``).
    runtime: Snapshot = dataclasses.field(default_factory=Snapshot)
