"""Repository paths a change may name: pure rules shared by plans and the gate."""

from __future__ import annotations

import itertools
import posixpath
import unicodedata
from collections.abc import Iterable
from fnmatch import fnmatchcase

# Code points that render as nothing: a name can hide `.git` or `..` behind them.
_INVISIBLE = frozenset((
    0x00AD, 0x034F, 0x061C, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x180E, 0x3164, 0xFEFF, 0xFFA0,
    *range(0x200B, 0x2010), *range(0x202A, 0x202F), *range(0x2060, 0x2070),
))


def path_problem(path: str) -> tuple[str, str] | None:
    """(rule, detail) when `path` is not a plain relative path inside the repo, else None.

    Refuses absolute paths, backslashes, control characters, `.`/`..`/empty components
    (also when spelled with look-alike or invisible characters), and anything in `.git`.
    """
    if not path:
        return "unsafe_path", "empty path"
    if path.startswith("/") or (len(path) > 1 and path[1] == ":"):
        return "unsafe_path", "absolute path"
    if "\\" in path:
        return "unsafe_path", "backslash in path"
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp") for ch in path):
        return "unsafe_path", "control, invisible or undecodable character in path"
    for raw in path.split("/"):
        part = _canonical_component(raw)
        if part in ("", ".", ".."):
            return "unsafe_path", f"path component {raw!r} is {part or 'empty'!r}"
        if part == ".git" or part.startswith(".git~") or part == "git~1":
            return "git_dir", "paths inside .git are never written"
    return None


def _canonical_component(part: str) -> str:
    """A component as a permissive filesystem might read it (HFS+, NTFS, NFKC)."""
    visible = "".join(ch for ch in part if ord(ch) not in _INVISIBLE)
    folded = unicodedata.normalize("NFKC", visible).casefold()
    return folded.rstrip(". ") if folded not in (".", "..") else folded


def in_any(path: str, entries: Iterable[str]) -> bool:
    """True when `path` is one of `entries`: a directory prefix, a file, or a glob."""
    for entry in entries:
        if any(ch in entry for ch in "*?["):
            if fnmatchcase(path, entry):
                return True
        elif entry.endswith("/"):
            if path.startswith(entry):
                return True
        elif path == entry or path.startswith(entry + "/"):
            return True
    return False


def symlink_problem(link_path: str, target: str) -> str | None:
    """Why a symlink at `link_path` pointing at `target` is refused, or None."""
    if not target or target.startswith("/") or "\\" in target:
        return f"points at {target!r}, outside the repository"
    parts = [p for p in target.split("/") if p not in ("", ".")]
    climbing = len(parts) - len(list(itertools.dropwhile(lambda p: p == "..", parts)))
    if ".." in parts[climbing:]:
        # `x/..` is `.` on paper but the parent of wherever x leads when x is a link:
        # a chain of such links climbs out of the repository
        return f"points at {target!r}, which goes down and back up through '..'"
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(link_path), target))
    if resolved == ".." or resolved.startswith("../"):
        return f"points at {target!r}, outside the repository"
    if resolved != "." and path_problem(resolved):
        return f"points at {target!r}, inside .git or through an unsafe name"
    return None
