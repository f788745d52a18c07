"""Files a command leaves for Autopack to read: a JUnit report, a builder's usage and
issues files.

The command chose what to put at that name. Reading must neither follow a link it
planted (to a file it could not read itself), nor block on a FIFO (the run would wait
forever: no timeout covers Autopack's own read), nor load an unbounded file.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path


class UnreadableFile(ValueError):
    """What a command left is not a regular file of a readable size; says why."""


def read_left_file(path: Path, max_bytes: int) -> bytes:
    """The bytes of the regular file at `path`, at most `max_bytes` of them
    (FileNotFoundError when there is none; UnreadableFile for anything else there)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            raise
        if exc.errno == errno.ELOOP:
            raise UnreadableFile(f"{path.name} is a symbolic link, not a file") from None
        raise UnreadableFile(f"{path.name} cannot be read: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UnreadableFile(f"{path.name} is not a regular file")
        if info.st_size > max_bytes:
            raise UnreadableFile(f"{path.name} is {info.st_size} bytes, over the "
                                 f"{max_bytes}-byte limit")
        os.set_blocking(fd, True)
        data = b""
        while len(data) <= max_bytes:
            chunk = os.read(fd, max_bytes + 1 - len(data))
            if not chunk:
                break
            data += chunk
    finally:
        os.close(fd)
    if len(data) > max_bytes:  # it grew after the check (a command still writing)
        raise UnreadableFile(f"{path.name} is over the {max_bytes}-byte limit")
    return data
