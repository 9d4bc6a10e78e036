"""Where a report goes: stderr, or one new file per report in a log_dir.

The log_dir is opened once, checked on its descriptor (ours or root's, not
writable by others without the sticky bit, not a symlink) and used only
through it.  A file is created 0600 under a temporary name with
``O_EXCL|O_NOFOLLOW`` (so it never follows a planted symlink), written
completely, then given its final name with ``link()``, which never replaces
an existing file; the temporary name is removed whatever happens (a full
disk leaves nothing behind).  A report
to stderr goes out in a single ``write()`` so that processes sharing one
stderr pipe do not interleave their lines.  When the file cannot be
written, the report goes to stderr after a one-line reason: nothing is lost.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import os
import posix
import stat

from df_gmr import _native

# posix.open and posix.read, never os.open and os.read: under eventlet's
# monkey patching those are green, and would make a hub in the
# reporting thread (see _native).
from df_gmr.streams import stderr

LOG_DIR_MODE = 0o700
FILE_MODE = 0o600


def file_name(service: str, pid: int, extension: str, now: datetime.datetime
              ) -> str:
    """Return ``<service>_gurumeditation_<UTC timestamp>_<pid>.<ext>``."""
    stamp = now.strftime("%Y%m%d%H%M%S%f")
    safe_service = service.replace(os.sep, "_") or "python"
    return f"{safe_service}_gurumeditation_{stamp}_{pid}.{extension}"


def write_to_stderr(text: str) -> None:
    """Write the whole text to stderr in one call (see streams)."""
    stderr.write(text.encode("utf-8", "replace"))


def open_log_dir(log_dir: str) -> int:
    """Open ``log_dir`` (created 0700 if missing) and check it; return its fd.

    Refused, as OpenSSH's StrictModes refuses, with the reason: a symbolic
    link, a directory owned by another user (root excepted), or one that
    others can write without the sticky bit.
    """
    os.makedirs(log_dir, mode=LOG_DIR_MODE, exist_ok=True)
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = posix.open(log_dir, flags)
    except OSError:
        if os.path.islink(log_dir):
            raise UnsafeLogDir("it is a symbolic link") from None
        raise
    info = os.fstat(fd)
    problem = None
    if info.st_uid not in (os.geteuid(), 0):
        problem = f"it belongs to uid {info.st_uid}, not to this process"
    elif info.st_mode & 0o022 and not info.st_mode & stat.S_ISVTX:
        problem = (f"others can write in it (mode "
                   f"{stat.S_IMODE(info.st_mode):o}) without the sticky bit")
    if problem:
        os.close(fd)
        raise UnsafeLogDir(problem)
    return fd


class UnsafeLogDir(OSError):
    """A log_dir that df_gmr refuses to write in."""

    def __init__(self, reason: str) -> None:
        super().__init__(errno.EPERM, reason)


def write_to_log_dir(log_dir: str, name: str, text: str) -> str:
    """Write a new file ``name`` in ``log_dir``; return its path.

    An existing file is never overwritten: a numeric suffix is added.
    """
    directory = open_log_dir(log_dir)
    try:
        data = text.encode("utf-8", "replace")
        temporary = f".{name}.{os.getpid()}.partial"
        flags = (os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                 | os.O_CLOEXEC)
        fd = posix.open(temporary, flags, FILE_MODE, dir_fd=directory)
        try:
            try:
                _native.write_all(fd, data)
            finally:
                os.close(fd)
            return os.path.join(log_dir, _publish(directory, temporary, name))
        finally:
            with contextlib.suppress(OSError):
                os.unlink(temporary, dir_fd=directory)
    finally:
        os.close(directory)


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


def _publish(directory: int, temporary: str, final: str) -> str:
    stem, extension = os.path.splitext(final)
    candidate = final
    for attempt in range(1, 1000):
        try:
            os.link(temporary, candidate, src_dir_fd=directory,
                    dst_dir_fd=directory, follow_symlinks=False)
            return candidate
        except FileExistsError:
            candidate = f"{stem}-{attempt}{extension}"
        except OSError as error:
            # File systems without hard links: rename, having checked that
            # nothing is there (O_EXCL above already made the name ours).
            if error.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV):
                raise
            try:
                os.stat(candidate, dir_fd=directory, follow_symlinks=False)
            except FileNotFoundError:
                os.rename(temporary, candidate, src_dir_fd=directory,
                          dst_dir_fd=directory)
                return candidate
            candidate = f"{stem}-{attempt}{extension}"
    msg = f"no free file name for {final}"
    raise FileExistsError(errno.EEXIST, msg)
