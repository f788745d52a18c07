"""Atomic file writes.

`write_bytes_atomic`: a temp file in the same folder, then a rename over the target.

`swap_in`: the same guarantee for files rewritten again and again (the run views) without
allocating and freeing an inode per write: the new bytes go into a hidden spare beside the
target, and the two trade places in one rename. On a filesystem that delays reusing freed
inodes (ext4 without a journal skips every inode freed in the last minutes, at a cost per
skipped inode, when it creates a file) freeing one per write made every later file
creation slower; a phase move rewrote four files.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import signal
import stat
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from autopack.domain.errors import PolicyViolation


def real_folder(base: Path, *parts: str) -> Path:
    """`base/parts...` as real folders: each level that exists must be a directory and
    not a link (a link planted in a run folder — committed to the repository, or made
    by a command — would have Autopack write wherever it points); missing levels are
    made. `base` is trusted: a folder Autopack resolved or made itself."""
    path = base
    for part in parts:
        path = path / part
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            try:
                os.mkdir(path)
                continue
            except FileExistsError:  # made meanwhile: check what it is
                info = os.lstat(path)
        if not stat.S_ISDIR(info.st_mode):
            kind = "a link" if stat.S_ISLNK(info.st_mode) else "not a folder"
            raise PolicyViolation(f"{path} is {kind} where Autopack keeps a run's files; "
                                  "refusing to write through it")
    return path


def open_lock_file(path: Path) -> int:
    """A lock file's descriptor, never through a link (PolicyViolation if it is one)."""
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise PolicyViolation(f"{path} is a link where Autopack keeps a lock file; "
                                  "refusing to open it") from None
        raise


def write_text_atomic(path: Path, text: str) -> None:
    """Replace `path` with `text` (UTF-8); see `write_bytes_atomic`."""
    write_bytes_atomic(path, text.encode())


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Replace `path` with `data` so readers see the old or the new file, never a part.

    The temp name is unique per process and thread, so concurrent writers never share
    one; a symlink planted at that name is refused, not followed. No fsync: these files
    are views regenerable from the database.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW
    try:
        fd = os.open(tmp, flags, 0o644)
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, flags, 0o644)
    try:
        try:
            _write_all(fd, data)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def spare_of(path: Path) -> Path:
    """The hidden file `swap_in` keeps beside `path`: the inode `path` had before."""
    return path.with_name(f".{path.name}.spare")


def swap_in(path: Path, data: bytes) -> None:
    """Replace `path` with `data` as `write_bytes_atomic` does, reusing the replaced inode.

    The bytes are written into `.{name}.spare` (created on first use), which then trades
    places with `path` in one `renameat2(RENAME_EXCHANGE)`: readers see the old or the
    new file, never a part, and the old inode becomes the next spare instead of being
    freed. A spare that someone still holds open (it was `path` when they opened it) is
    never rewritten: a write lease cannot be taken on it then, and the write falls back
    to `write_bytes_atomic`, as it does where the system offers no exchange or leases.

    One writer per path at a time: the artefact writer holds the run folder's (or the
    backlog's) lock around every call.
    """
    if _exchange is None or not _usable[0]:
        write_bytes_atomic(path, data)
        return
    spare = spare_of(path)
    try:
        fd = os.open(spare, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
    except OSError as exc:  # no folder yet, or the spare is a symlink (never followed)
        if exc.errno not in (errno.ENOENT, errno.ELOOP):
            raise
        write_bytes_atomic(path, data)
        return
    leased = False
    try:
        leased = _lease(fd)
        if leased:
            _write_all(fd, data)
            os.ftruncate(fd, len(data))
    finally:
        if leased:
            fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)
        os.close(fd)
    if leased:
        _trade(spare, path)
    else:
        write_bytes_atomic(path, data)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _lease(fd: int) -> bool:
    """Take a write lease on `fd`'s file: possible only when no one else has it open.

    Someone opening the file while the lease is held waits until it is released; the
    kernel then signals the holder, by default with SIGIO, whose default action ends the
    process. SIGURG is asked for instead: ignored unless handled.
    """
    try:
        fcntl.fcntl(fd, _F_SETSIG, signal.SIGURG)
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_WRLCK)
    except OSError as exc:
        if exc.errno not in (errno.EAGAIN, errno.EBUSY):
            _usable[0] = False  # leases disabled or not ours to take: never again
        return False
    return True


def _trade(spare: Path, path: Path) -> None:
    """Put `spare` at `path`; `path`'s old inode (if any) becomes the spare."""
    assert _exchange is not None
    if _exchange(_AT_FDCWD, os.fsencode(spare), _AT_FDCWD, os.fsencode(path),
                 _RENAME_EXCHANGE) == 0:
        return
    code = ctypes.get_errno()
    if code == errno.ENOENT:  # a new file: the spare simply becomes it
        os.rename(spare, path)
        return
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        _usable[0] = False  # this filesystem cannot exchange: plain renames from now on
        os.replace(spare, path)
        return
    raise OSError(code, os.strerror(code), str(path))


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
_F_SETSIG = getattr(fcntl, "F_SETSIG", 10)  # Linux's value
_usable = [hasattr(fcntl, "F_SETLEASE")]  # cleared for good on the first refusal


def _load_exchange() -> Callable[..., int] | None:
    """libc's renameat2, where there is one (Linux with glibc 2.28 or newer)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                         ctypes.c_uint]
    function.restype = ctypes.c_int
    found: Callable[..., int] = function
    return found


_exchange = _load_exchange()
