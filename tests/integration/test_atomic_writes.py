"""Rewriting a view in place of the inode it replaces: atomic for readers, and no reader's
open file is ever rewritten under it (real files, real leases, a real second process)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from autopack.artefacts import atomic
from autopack.artefacts.atomic import spare_of, swap_in


def test_a_new_file_leaves_no_spare(tmp_path: Path) -> None:
    target = tmp_path / "run_summary.md"
    swap_in(target, b"first\n")
    assert target.read_bytes() == b"first\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run_summary.md"]


def test_rewrites_trade_two_inodes_and_free_none(tmp_path: Path) -> None:
    target = tmp_path / "phase_01_P1.md"
    swap_in(target, b"v1 " * 100)
    swap_in(target, b"v2 " * 300)
    pair = {target.stat().st_ino, spare_of(target).stat().st_ino}
    for n, size in enumerate([5, 400, 1, 0, 250], start=3):
        content = f"v{n} ".encode() * size
        swap_in(target, content)
        assert target.read_bytes() == content  # a shorter write leaves no old tail
        assert {target.stat().st_ino, spare_of(target).stat().st_ino} == pair
    assert sorted(p.name for p in tmp_path.iterdir()) == [".phase_01_P1.md.spare",
                                                          "phase_01_P1.md"]


def test_a_reader_holding_the_old_file_keeps_its_bytes(tmp_path: Path) -> None:
    target = tmp_path / "tier_00_core.md"
    swap_in(target, b"one\n")
    swap_in(target, b"two\n")
    with open(target, "rb") as reader:  # holds "two", which becomes the spare next write
        swap_in(target, b"three\n")
        swap_in(target, b"four, longer than the others\n")  # must not reuse the held inode
        assert reader.read() == b"two\n"
    assert target.read_bytes() == b"four, longer than the others\n"
    swap_in(target, b"five\n")  # released: trading resumes
    assert target.read_bytes() == b"five\n"


def test_an_outsider_opening_a_leased_spare_waits_and_the_writer_lives(tmp_path: Path) -> None:
    """The kernel signals a lease holder when someone opens its file; its default signal
    (SIGIO) would end the server. The writer asks for SIGURG, which this test catches."""
    spare = tmp_path / ".x.md.spare"
    spare.write_bytes(b"old\n")
    broken = threading.Event()
    previous = signal.signal(signal.SIGURG, lambda *_: broken.set())
    fd = os.open(spare, os.O_WRONLY)
    try:
        assert atomic._lease(fd)
        opener = subprocess.Popen([sys.executable, "-c",
                                   f"print(open({str(spare)!r}).read(), end='')"],
                                  stdout=subprocess.PIPE)
        assert broken.wait(30), "no SIGURG: the lease break went to another signal"
        assert opener.poll() is None  # the open waits for the lease
        os.write(fd, b"new\n")
        os.ftruncate(fd, 4)
        atomic.fcntl.fcntl(fd, atomic.fcntl.F_SETLEASE, atomic.fcntl.F_UNLCK)
        out, _ = opener.communicate(timeout=30)
        assert opener.returncode == 0 and out == b"new\n"
    finally:
        os.close(fd)
        signal.signal(signal.SIGURG, previous)


def test_a_planted_symlink_is_never_written_through(tmp_path: Path) -> None:
    """A symlink at the spare's or the temp file's name must not carry a view's bytes
    outside the folder."""
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"keep me\n")
    views = tmp_path / "run"
    views.mkdir()
    target = views / "run_summary.md"
    swap_in(target, b"one\n")
    spare_of(target).symlink_to(outside)
    swap_in(target, b"two\n")
    swap_in(target, b"three\n")
    assert target.read_bytes() == b"three\n"
    assert outside.read_bytes() == b"keep me\n"
    tmp = views / f".x.md.{os.getpid()}.{threading.get_ident()}.tmp"
    tmp.symlink_to(outside)
    with pytest.raises(OSError):  # refused rather than followed
        atomic.write_bytes_atomic(views / "x.md", b"new\n")
    assert outside.read_bytes() == b"keep me\n"
