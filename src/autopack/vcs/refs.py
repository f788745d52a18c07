"""The one function that moves a ref.

A run writes only inside Autopack's own namespaces (`refs/heads/autopack/...` and
`refs/tags/autopack/...`). Any other ref — `main`, the configured protected branch, a
user's branch or tag — can be written only with a `PromotionGrant`, which only
`autopack.vcs.promotion` creates (a test checks that no other module does). Every
update is a compare-and-swap against the value the caller last saw, so two writers
never silently overwrite each other and a repeated step cannot move a ref twice.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from autopack.domain.errors import Conflict, PolicyViolation
from autopack.vcs.git import ZERO_OID, Git, GitError

AUTOPACK_NAMESPACES = ("refs/heads/autopack/", "refs/tags/autopack/")


@dataclass(frozen=True)
class PromotionGrant:
    """Permission to write one ref outside Autopack's namespaces, for one promotion."""

    ref: str
    run_id: str


def current(git: Git, ref: str) -> str | None:
    """The commit a ref points at, or None when it does not exist."""
    done = git.run("rev-parse", "-q", "--verify", f"{ref}^{{commit}}", check=False)
    return done.text if done.returncode == 0 else None


def in_the_way(git: Git, ref: str) -> str | None:
    """A ref that keeps `ref` from being created: one named like a folder of `ref`'s
    path (`refs/heads/a` blocks `refs/heads/a/b`) or one inside `ref` as a folder."""
    parts = ref.split("/")
    for end in range(3, len(parts)):
        above = "/".join(parts[:end])
        if git.run("show-ref", "--verify", "-q", above, check=False).returncode == 0:
            return above
    below = git.text("for-each-ref", "--count=1", "--format=%(refname)", f"{ref}/")
    return below or None


def update_ref(
    git: Git,
    ref: str,
    new: str,
    old: str | None,
    *,
    reason: str,
    grant: PromotionGrant | None = None,
) -> None:
    """Point `ref` at `new` if it currently points at `old` (None: must not exist).

    A branch checked out in a worktree (the user's checkout included) is not moved
    without a grant: its checkout's HEAD would follow while its index and files stayed,
    showing the change reverted. Promotion moves the checkouts of main itself."""
    _check_writable(ref, grant)
    _check_not_symbolic(git, ref)
    if grant is None and old is not None and ref.startswith("refs/heads/"):
        check_not_checked_out(git, ref)
    try:
        git._update_ref_unguarded("--no-deref", "-m", reason, ref, new, old or ZERO_OID)
    except GitError as exc:
        _check_unlocked(exc, ref)
        seen = current(git, ref)
        raise Conflict(
            f"{ref} was expected at {old or 'nothing'} but is at {seen or 'nothing'}; "
            f"not moved ({exc.output_tail.strip()})"
        ) from exc


def checkouts_of(git: Git, ref: str) -> tuple[Path, ...]:
    """Worktrees (the user's checkout included) that have `ref` checked out."""
    found = []
    path: str | None = None
    for line in git.text("worktree", "list", "--porcelain").splitlines():
        if line.startswith("worktree "):
            path = line.removeprefix("worktree ")
        elif line == f"branch {ref}" and path is not None:
            found.append(Path(path))
    return tuple(found)


def check_not_checked_out(git: Git, ref: str) -> None:
    """Conflict when branch `ref` is checked out in a worktree, naming it."""
    held = checkouts_of(git, ref)
    if held:
        raise Conflict(
            f"{ref.removeprefix('refs/heads/')} is checked out at {held[0]}; Autopack does "
            "not move a branch under a checkout: check out another branch there (e.g. "
            "`git switch --detach`), then `autopack resume`")


def start_empty_repository(git: Git, ref: str, new: str, *, reason: str) -> None:
    """Point `ref` at `new` in a repository that has no refs at all (a fresh `git init`,
    e.g. the demo's); refused anywhere else, so it can never move an existing branch."""
    if git.text("for-each-ref", "--count=1"):
        raise PolicyViolation(f"{ref}: the repository already has refs; not a fresh one")
    git._update_ref_unguarded("-m", reason, ref, new, ZERO_OID)


def delete_ref(git: Git, ref: str, old: str, *, reason: str) -> None:
    """Delete one of Autopack's own refs if it still points at `old`."""
    _check_writable(ref, None)
    _check_not_symbolic(git, ref)
    try:
        git._update_ref_unguarded("--no-deref", "-m", reason, "-d", ref, old)
    except GitError as exc:
        _check_unlocked(exc, ref)
        raise


_LOCKED = re.compile(r"Unable to create '([^']+\.lock)': File exists")


def _check_unlocked(exc: GitError, ref: str) -> None:
    """RefLocked when git could not take a lock file of `ref` (or of packed-refs)."""
    found = _LOCKED.search(exc.output_tail)
    if found:
        raise RefLocked(ref, Path(found[1]))


class RefLocked(Conflict):
    """Git's lock file of a ref exists: a git command is writing it, or one was killed
    while it did (git never removes such a file by itself)."""

    def __init__(self, ref: str, lock: Path) -> None:
        super().__init__(f"{ref} cannot be written: {lock} exists (a git command is "
                         "writing it, or one was killed while it did; if no git command "
                         "is running in this repository, remove the file)")
        self.ref = ref
        self.lock = lock


def clear_stale_locks(git: Git, refs_of_one_run: Sequence[str]) -> list[Path]:
    """Remove the lock files git left beside refs only one engine writes (a full ref, or
    a folder of refs ending in `/`), and return them. A git command killed while it
    updated a ref leaves `<ref>.lock`, and every later update of that ref fails: call
    this holding the run's lease, before the engine's own git work, when no one else
    can be writing these refs."""
    common = Path(git.text("rev-parse", "--path-format=absolute", "--git-common-dir"))
    removed = []
    for ref in refs_of_one_run:
        _check_writable(ref.rstrip("/"), None)
        place = common / ref
        linked = [p for p in (place, *place.parents) if p.is_relative_to(common)
                  and p != common and p.is_symlink()]
        if linked:  # never remove files wherever a link leads
            raise PolicyViolation(f"{linked[0]} is a link inside the repository's refs")
        if ref.endswith("/"):
            found = [Path(folder, name) for folder, _dirs, files in os.walk(place)
                     for name in files if name.endswith(".lock")]
        else:
            found = [place.with_name(place.name + ".lock")]
        for lock in found:
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()
                removed.append(lock)
    return removed


def _check_not_symbolic(git: Git, ref: str) -> None:
    """Refuse a ref that is a symbolic ref: writing through it would move its target
    (`autopack/integration/x` made to point at main moved main)."""
    target = git.text("for-each-ref", "--format=%(symref)", ref)
    if target:
        raise PolicyViolation(f"{ref} is a symbolic ref to {target}, not a branch "
                              "Autopack made; refusing to write through it")


def _check_writable(ref: str, grant: PromotionGrant | None) -> None:
    if ".." in ref or not ref.startswith("refs/"):
        raise PolicyViolation(f"{ref}: not a full ref name")
    if ref.startswith(AUTOPACK_NAMESPACES):
        return
    if grant is not None and grant.ref == ref:
        return
    raise PolicyViolation(
        f"{ref}: a run writes only refs/heads/autopack/* and refs/tags/autopack/*; "
        "other refs move only through `autopack promote`"
    )
