"""What `autopack run` sets up in the user's repository before a run: the `.autopack/`
folder (its database) and git's exclude entries for it and `.autonomous_runs/`."""

from __future__ import annotations

from pathlib import Path

from autopack.artefacts.atomic import write_bytes_atomic
from autopack.domain.errors import InvalidInput
from autopack.vcs.git import Git

EXCLUDED = ("/.autopack/", "/.autonomous_runs/")


def exclude_file(repo: Path) -> Path:
    """The repository's `info/exclude` (shared by its linked worktrees; a submodule's is
    under its superproject's `.git/modules/`), refused now if it cannot be read."""
    found = Git(repo).run("rev-parse", "--git-path", "info/exclude", check=False)
    if found.returncode != 0:
        raise InvalidInput("--repo", f"{repo}: git cannot read this repository: "
                           f"{found.stderr.decode(errors='replace').strip()}")
    path = (repo / found.text).resolve()
    if path.is_symlink() or (path.exists() and not path.is_file()):
        raise InvalidInput(str(path), "is not a plain file; git's exclude file goes here")
    try:
        if path.exists():
            path.read_bytes()
    except OSError as exc:
        raise InvalidInput(str(path), f"cannot be read: {exc.strerror}") from None
    return path


def keep_out_of_git(repo: Path, exclude: Path, database_folder: bool) -> None:
    """Make `repo/.autopack/` (when the database goes there) and list it and
    `.autonomous_runs/` in `exclude` (never committed; its other bytes kept as they are)."""
    if database_folder:
        (repo / ".autopack").mkdir(exist_ok=True)
    text = exclude.read_bytes().decode("utf-8", "surrogateescape") if exclude.exists() else ""
    missing = [p for p in EXCLUDED if p not in text.split()]
    if missing:
        exclude.parent.mkdir(parents=True, exist_ok=True)
        text += ("" if text.endswith("\n") or not text else "\n") + "".join(
            f"{p}\n" for p in missing)
        write_bytes_atomic(exclude, text.encode("utf-8", "surrogateescape"))
