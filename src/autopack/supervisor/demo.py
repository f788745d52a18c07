"""The demo's repository: the bundled example copied into a fresh git repository."""

from __future__ import annotations

import shutil
from pathlib import Path

from autopack.vcs import refs
from autopack.vcs.git import Git, Identity


def prepare_demo_repository(source: Path, target: Path, python_bin: Path) -> None:
    """Copy `source` to `target`, make it a repository on `main` with one commit, and let
    its CI and builder commands find this Python (with pytest) first on PATH."""
    shutil.copytree(source, target, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__", ".flaky-*"))
    toml = target / "autopack.toml"
    toml.write_text(toml.read_text().replace(
        "[ci]\n", f'[ci]\nenv = {{ PATH = "{python_bin}:/usr/local/bin:/usr/bin:/bin" }}\n', 1))
    git = Git(target, Identity("Autopack demo", "demo@localhost"))
    git.run("init", "-q", "-b", "main")
    git.run("add", "-A")
    tree = git.text("write-tree")
    commit = git.run("commit-tree", tree, "-m", "The calculator example").text
    refs.start_empty_repository(git, "refs/heads/main", commit, reason="autopack demo")
    git.run("read-tree", "HEAD")  # the index matches the commit: a clean checkout ...
    git.run("update-index", "-q", "--refresh")  # ... with the files' stat data recorded
