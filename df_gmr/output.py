"""Where a report goes: stderr, or one new file per report in a log_dir.

A file is created 0600 under a temporary name with ``O_EXCL|O_NOFOLLOW``
(so it never follows a planted symlink), written completely, then given its
final name with ``link()``, which never replaces an existing file.  A report
to stderr goes out in a single ``write()`` so that processes sharing one
stderr pipe do not interleave their lines.  When the file cannot be
written, the report goes to stderr after a one-line reason: nothing is lost.
"""

from __future__ import annotations

import datetime
import errno
import os

from df_gmr import _native

STDERR_FD = 2
LOG_DIR_MODE = 0o700
FILE_MODE = 0o600


def file_name(service: str, pid: int, extension: str, now: datetime.datetime
              ) -> str:
    """Return ``<service>_gurumeditation_<UTC timestamp>_<pid>.<ext>``."""
    stamp = now.strftime("%Y%m%d%H%M%S%f")
    safe_service = service.replace(os.sep, "_") or "python"
    return f"{safe_service}_gurumeditation_{stamp}_{pid}.{extension}"


def write_to_stderr(text: str) -> None:
    """Write the whole text to stderr in one call."""
    _native.write_all(STDERR_FD, text.encode("utf-8", "replace"))


def write_to_log_dir(log_dir: str, name: str, text: str) -> str:
    """Write a new file ``name`` in ``log_dir``; return its path.

    ``log_dir`` is created (0700) when missing.  An existing file is never
    overwritten: a numeric suffix is added instead.
    """
    os.makedirs(log_dir, mode=LOG_DIR_MODE, exist_ok=True)
    data = text.encode("utf-8", "replace")
    temporary = os.path.join(log_dir, f".{name}.{os.getpid()}.partial")
    flags = (
        os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    )
    fd = os.open(temporary, flags, FILE_MODE)
    try:
        try:
            _native.write_all(fd, data)
        finally:
            os.close(fd)
        return _publish(temporary, os.path.join(log_dir, name))
    finally:
        _unlink_quietly(temporary)


def deliver(text: str, log_dir: str | None, name: str) -> str:
    """Send a report to ``log_dir`` (or stderr); return where it went."""
    if log_dir:
        try:
            return write_to_log_dir(log_dir, name, text)
        except OSError as error:
            reason = error.strerror or str(error)
            text = (f"df_gmr: cannot write report {name} to {log_dir}: "
                    f"{reason}; writing it to stderr instead\n" + text)
    try:
        write_to_stderr(text)
    except OSError as error:  # closed, full, or a broken pipe
        return f"nowhere: stderr failed ({error.strerror or error})"
    return "stderr"


def _publish(temporary: str, final: str) -> str:
    stem, extension = os.path.splitext(final)
    candidate = final
    for attempt in range(1, 1000):
        try:
            os.link(temporary, candidate)
            return candidate
        except FileExistsError:
            candidate = f"{stem}-{attempt}{extension}"
        except OSError as error:
            # File systems without hard links: rename, having checked that
            # nothing is there (O_EXCL above already made the name ours).
            if error.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV):
                raise
            if not os.path.lexists(candidate):
                os.rename(temporary, candidate)
                return candidate
            candidate = f"{stem}-{attempt}{extension}"
    msg = f"no free file name for {final}"
    raise FileExistsError(errno.EEXIST, msg)


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
