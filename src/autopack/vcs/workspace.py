"""Attempt worktrees: where one builder attempt makes its change.

Each attempt gets its own `git worktree` under Autopack's data directory (never inside
the user's working tree) on a scratch branch `autopack/scratch/{run}/{phase}/{n}` made
from the integration tip. The change comes in one of three forms — a unified diff, the
files a command or agent changed in place, or per-file contents — and leaves as one
`Change` with a canonical diff. A worktree is held by a lock file for as long as its
process lives; one whose lock is free was left by a crash and `cleanup_stale` removes it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO

from autopack.artefacts.atomic import write_bytes_atomic
from autopack.domain.errors import AutopackError, ConfigError
from autopack.domain.paths import path_problem
from autopack.vcs import refs
from autopack.vcs.changes import Change, read_change
from autopack.vcs.git import Git, GitError
from autopack.vcs.scope import Refusal, ScopeViolation

SCRATCH_PREFIX = "refs/heads/autopack/scratch/"
_HEADER_PATH = re.compile(rb"^(?:rename|copy) (?:from|to) (.+)$", re.MULTILINE)


class PatchDoesNotApply(AutopackError):
    """A unified diff that neither applies cleanly nor with a three-way merge."""


class Attempt:
    """One attempt's worktree, locked by this process until `close()`."""

    def __init__(
        self, repo: Git, path: Path, number: int, branch: str, base: str, lock: IO[bytes]
    ) -> None:
        self.repo = repo
        self.path = path
        self.number = number
        self.branch = branch
        self.base = base
        self.git = repo.at(path).pinned()  # before any builder touches the worktree
        self.received = b""
        """The last change handed in (a diff, or a listing of files), kept as evidence."""
        self._lock = lock

    def apply_diff(self, diff: bytes) -> None:
        """Apply a unified diff (plain or git-style), falling back to a 3-way merge."""
        self.received = diff
        _refuse_unsafe(_diff_paths(self.git, diff))
        done = self.git.run("apply", "--index", "--binary", "--whitespace=nowarn", "-",
                            input=diff, check=False)
        if done.returncode == 0:
            return
        retry = self.git.run("apply", "--3way", "--binary", "--whitespace=nowarn", "-",
                             input=diff, check=False)
        if retry.returncode != 0:
            output = (done.stderr + retry.stderr).decode("utf-8", "replace").strip()
            raise PatchDoesNotApply(f"the patch does not apply: {output[-2000:]}")

    def write_files(self, files: Mapping[str, bytes | None]) -> None:
        """Write (bytes) or delete (None) files by repo-relative path."""
        self.received = "".join(
            f"{'delete' if content is None else f'write {len(content)} bytes'} {path!r}\n"
            for path, content in sorted(files.items())
        ).encode()
        _refuse_unsafe(files)
        for rel, content in sorted(files.items()):
            target = self.path / rel
            _refuse_symlinked_parents(self.path, rel)
            if content is None:
                with contextlib.suppress(FileNotFoundError):
                    target.unlink()
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                old = os.lstat(target).st_mode
            except FileNotFoundError:
                old = None
            write_bytes_atomic(target, content)
            if old is not None and stat.S_ISREG(old):
                os.chmod(target, stat.S_IMODE(old))

    def capture(self, max_diff_bytes: int) -> Change:
        """Everything the worktree now holds, against the base, as one `Change`.

        Files git ignores are not part of it, and are removed: checks and CI then see
        the worktree the change makes, not a file the builder left beside it (a stale
        `.pyc` with the good code made CI green on a broken change that was committed).
        """
        self.git.run("add", "--all", "--", ".")
        self.git.run("clean", "-ffdqX", "--", ".")
        return read_change(self.git, self.base, max_diff_bytes)

    def close(self) -> None:
        """Remove the worktree and its scratch branch; release the lock."""
        _remove(self.repo, self.path, self.branch)
        _release(self._lock)


class Worktrees:
    """The attempt worktrees of one repository under `root`."""

    def __init__(self, repo: Git, data_dir: Path) -> None:
        self.repo = repo
        common = Path(repo.text("rev-parse", "--path-format=absolute", "--git-common-dir"))
        key = hashlib.sha256(str(common.resolve()).encode()).hexdigest()[:12]
        self.root = data_dir / "worktrees" / f"{common.parent.name or 'repo'}-{key}"
        top = repo.run("rev-parse", "--show-toplevel", check=False)
        if top.returncode == 0 and data_dir.resolve().is_relative_to(Path(top.text).resolve()):
            raise ConfigError("AUTOPACK_DATA_DIR", f"{data_dir} is inside the working tree "
                              f"of {top.text}; attempt worktrees must live outside it")

    def open(self, run_id: str, phase_id: str, number: int, base: str) -> Attempt:
        """A fresh worktree for attempt `number` of a phase, on a scratch branch at `base`."""
        name = f"{run_id}/{phase_id}/{number}"
        path = self.root / run_id / f"{phase_id}-{number}"
        branch = f"{SCRATCH_PREFIX}{name}"
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = _acquire(path)
        if lock is None:
            raise AutopackError(f"attempt worktree {path} is in use by another process")
        try:
            _remove(self.repo, path, branch)  # a crashed try of this same attempt
            # (its branch stays when git could not delete it: the attempt's own, reset)
            refs.update_ref(self.repo, branch, base, refs.current(self.repo, branch),
                            reason=f"autopack attempt {name}")
            self.repo.run("worktree", "add", "--quiet", str(path),
                          branch.removeprefix("refs/heads/"))
        except BaseException:
            _remove(self.repo, path, branch)
            _release(lock)
            raise
        return Attempt(self.repo, path, number, branch, base, lock)

    @contextlib.contextmanager
    def attempt(self, run_id: str, phase_id: str, number: int, base: str) -> Iterator[Attempt]:
        """`open` as a context manager that always closes."""
        opened = self.open(run_id, phase_id, number, base)
        try:
            yield opened
        finally:
            opened.close()

    def cleanup_stale(self) -> list[Path]:
        """Remove worktrees and scratch branches left by dead processes; return their paths."""
        removed: list[Path] = []
        if self.root.is_dir():
            for run_dir in sorted(p for p in self.root.iterdir() if p.is_dir()):
                for path in sorted(p for p in run_dir.iterdir() if p.is_dir()):
                    lock = _acquire(path)
                    if lock is None:
                        continue  # a live attempt
                    phase_id, _, number = path.name.rpartition("-")
                    branch = f"{SCRATCH_PREFIX}{run_dir.name}/{phase_id}/{number}"
                    _remove(self.repo, path, branch)
                    _release(lock)
                    removed.append(path)
        self.repo.run("worktree", "prune")
        for line in self.repo.text("for-each-ref", "--format=%(refname) %(objectname)",
                                   SCRATCH_PREFIX).splitlines():
            ref, oid = line.split(" ")
            run_id, phase_id, number = ref.removeprefix(SCRATCH_PREFIX).split("/", 2)
            path = self.root / run_id / f"{phase_id}-{number}"
            if not path.exists():  # one that cannot go now (git's packed-refs lock held
                # or left by a killed git) is harmless in Autopack's namespace: next time
                with contextlib.suppress(GitError, refs.RefLocked):
                    refs.delete_ref(self.repo, ref, oid, reason="autopack: stale attempt")
        return removed


def _diff_paths(git: Git, diff: bytes) -> list[str]:
    """Every path a diff names, as git's own parser reads it, plus rename/copy sources."""
    listing = git.run("apply", "--numstat", "-z", "-", input=diff, check=False)
    if listing.returncode != 0:
        raise PatchDoesNotApply(
            "not a patch git can read: " + listing.stderr.decode("utf-8", "replace").strip()
        )
    paths = [p.decode("utf-8", "surrogateescape").split("\t")[-1]
             for p in listing.stdout.split(b"\0") if p]
    for match in _HEADER_PATH.finditer(diff):
        paths.append(match.group(1).decode("utf-8", "surrogateescape").strip().strip('"'))
    return [p for p in paths if p]


def _refuse_unsafe(paths: Mapping[str, object] | list[str]) -> None:
    refusals = []
    for path in paths:
        problem = path_problem(path)
        if problem:
            refusals.append(Refusal(path, *problem))
    if refusals:
        raise ScopeViolation(refusals)


def _refuse_symlinked_parents(root: Path, rel: str) -> None:
    """Refuse writing through a directory that is a symlink (it could lead anywhere)."""
    current = root
    for part in rel.split("/")[:-1]:
        current = current / part
        try:
            mode = os.lstat(current).st_mode
        except FileNotFoundError:
            return
        if stat.S_ISLNK(mode):
            raise ScopeViolation([Refusal(rel, "symlink_escape",
                                          f"{current.relative_to(root)} is a symlink")])


def _acquire(path: Path) -> IO[bytes] | None:
    handle = open(f"{path}.lock", "ab")  # noqa: SIM115 - held for the attempt's life
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def _release(handle: IO[bytes]) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(handle.name)
    handle.close()


def _remove(repo: Git, path: Path, branch: str) -> None:
    """Remove a worktree and its branch if they exist; never fails on absence."""
    if path.exists():
        done = repo.run("worktree", "remove", "--force", "--force", str(path), check=False)
        if done.returncode != 0:
            shutil.rmtree(path, ignore_errors=True)
    repo.run("worktree", "prune")
    oid = refs.current(repo, branch)
    if oid is not None:
        with contextlib.suppress(GitError, refs.RefLocked):
            refs.delete_ref(repo, branch, oid, reason="autopack: attempt closed")
