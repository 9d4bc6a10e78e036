"""df_gmr: Guru Meditation Reports made for eventlet and oslo.service daemons.

``kill -USR2 <pid>`` makes a process that called
``TextGuruMeditation.setup_autorun(version)`` write a report of its
threads, greenthreads, processes and configuration.  See
``df_gmr.guru_meditation_report`` for the oslo.reports-compatible API.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
