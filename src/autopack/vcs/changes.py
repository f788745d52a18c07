"""What an attempt changed, read out of git: the changed files and one canonical diff.

The canonical diff is `git diff --cached --binary --full-index -M` of the attempt's
index against its base commit: whatever form a patch came in, this is what is checked,
stored and later committed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from autopack.vcs.git import ZERO_OID, Git
from autopack.vcs.scope import GITLINK_MODE, SYMLINK_MODE, ChangedFile

DIFF_ARGS = ("diff", "--cached", "--no-color", "--no-ext-diff", "--no-textconv", "-M")


@dataclass(frozen=True)
class Change:
    """One attempt's change: files, canonical diff (maybe cut short), and its digest."""

    base: str
    files: tuple[ChangedFile, ...]
    diff: bytes
    diff_sha256: str
    truncated: bool
    """True when the diff was too large to keep; `diff` then holds only a summary."""

    @property
    def changed_lines(self) -> int:
        """Lines added plus deleted over all files."""
        return sum(f.added_lines + f.deleted_lines for f in self.files)


def read_change(git: Git, base: str, max_diff_bytes: int) -> Change:
    """The staged change of a worktree against `base`."""
    raw = _raw_entries(git, base)
    numstat = _numstat(git, base)
    sizes = _blob_sizes(git, [e[3] for e in raw if e[1] != GITLINK_MODE and e[3] != ZERO_OID])
    files = []
    for _old_mode, new_mode, _old_oid, new_oid, status, path, old_path in raw:
        added, deleted, binary = numstat.get(path, (0, 0, False))
        target = None
        if new_mode == SYMLINK_MODE and new_oid != ZERO_OID:
            target = git.run("cat-file", "blob", new_oid).stdout.decode("utf-8", "replace")
        files.append(ChangedFile(
            path=path, status=status, old_path=old_path,
            new_mode=None if status == "D" else new_mode,
            new_size=sizes.get(new_oid, 0), binary=binary,
            added_lines=added, deleted_lines=deleted, symlink_target=target,
        ))
    total = sum(f.new_size for f in files)
    if total <= max_diff_bytes:
        diff = git.run(*DIFF_ARGS, "--binary", "--full-index", base).stdout
        truncated = len(diff) > max_diff_bytes
    else:
        truncated = True
    if truncated:
        diff = git.run(*DIFF_ARGS, "--stat=200", "--summary", base).stdout
        diff = b"# diff too large to keep; summary only\n" + diff
    return Change(base, tuple(files), diff, hashlib.sha256(diff).hexdigest(), truncated)


def _raw_entries(git: Git, base: str) -> list[tuple[str, str, str, str, str, str, str | None]]:
    """(old mode, new mode, old oid, new oid, status letter, path, old path if renamed)."""
    out = git.run(*DIFF_ARGS, "--raw", "-z", "--no-abbrev", base).stdout.split(b"\0")
    entries = []
    i = 0
    while i < len(out) and out[i]:
        meta = out[i].decode().lstrip(":").split(" ")
        old_mode, new_mode, old_oid, new_oid, status = meta[0], meta[1], meta[2], meta[3], meta[4]
        letter = status[0]
        if letter in ("R", "C"):
            old_path, path = _decode(out[i + 1]), _decode(out[i + 2])
            i += 3
        else:
            old_path, path = None, _decode(out[i + 1])
            i += 2
        entries.append((old_mode, new_mode, old_oid, new_oid, letter, path, old_path))
    return entries


def _numstat(git: Git, base: str) -> dict[str, tuple[int, int, bool]]:
    """path -> (added, deleted, binary)."""
    out = git.run(*DIFF_ARGS, "--numstat", "-z", base).stdout.split(b"\0")
    stats: dict[str, tuple[int, int, bool]] = {}
    i = 0
    while i < len(out) and out[i]:
        added, deleted, path_field = out[i].split(b"\t", 2)
        if path_field:
            path = _decode(path_field)
            i += 1
        else:  # a rename: the old and new paths follow
            path = _decode(out[i + 2])
            i += 3
        binary = added == b"-"
        stats[path] = (0 if binary else int(added), 0 if binary else int(deleted), binary)
    return stats


def _blob_sizes(git: Git, oids: Sequence[str]) -> dict[str, int]:
    if not oids:
        return {}
    listing = "".join(f"{oid}\n" for oid in oids).encode()
    out = git.run("cat-file", "--batch-check=%(objectname) %(objectsize)", input=listing)
    sizes = {}
    for line in out.text.splitlines():
        oid, size = line.split(" ")
        sizes[oid] = int(size)
    return sizes


def _decode(path: bytes) -> str:
    return path.decode("utf-8", "surrogateescape")
