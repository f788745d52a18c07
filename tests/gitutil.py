"""Real git repositories for tests, and fingerprints of what a user's checkout holds."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
from pathlib import Path

GIT_ENV = {
    **{k: v for k, v in os.environ.items() if not k.startswith("GIT_")},
    "GIT_AUTHOR_NAME": "Test User", "GIT_AUTHOR_EMAIL": "user@example.com",
    "GIT_COMMITTER_NAME": "Test User", "GIT_COMMITTER_EMAIL": "user@example.com",
    "GIT_CONFIG_NOSYSTEM": "1", "HOME": os.environ.get("HOME", "/tmp"),
}


def git(repo: Path, *args: str, input: bytes | None = None) -> str:
    """Run git as the user would (not through Autopack); return stdout."""
    done = subprocess.run(["git", *args], cwd=repo, env=GIT_ENV, input=input,
                          capture_output=True, check=False)
    if done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)}: {done.stderr.decode()}")
    return done.stdout.decode().strip()


def make_repo(path: Path, files: dict[str, str] | None = None) -> Path:
    """A repository on `main` with one commit of `files` (a small Python project)."""
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    content = files if files is not None else {
        "README.md": "# demo\n",
        "src/app.py": "def add(a, b):\n    return a + b\n",
        "src/util.py": "X = 1\n",
        "tests/test_app.py": "from app import add\n\n\ndef test_add():\n    assert add(1, 2)\n",
        ".github/workflows/ci.yml": "on: push\n",
        "scripts/run.sh": "#!/bin/sh\necho run\n",
    }
    for rel, text in content.items():
        target = path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    if "scripts/run.sh" in content:
        (path / "scripts/run.sh").chmod(0o755)
    git(path, "add", "-A")
    # No background gc racing the test (10,000 loose objects would start one).
    git(path, "-c", "gc.auto=0", "commit", "-q", "-m", "initial")
    return path


def make_user_edits(repo: Path) -> None:
    """A user mid-work: an unstaged edit, a staged edit, an untracked and an ignored file."""
    (repo / ".gitignore").write_text("*.log\n")
    git(repo, "add", ".gitignore")
    (repo / "README.md").write_text("# demo\n\nwork in progress\n")
    (repo / "notes.txt").write_text("my notes\n")
    (repo / "debug.log").write_text("log\n")


def fingerprint(repo: Path) -> dict[str, object]:
    """Everything of a user's checkout a run must leave alone, byte for byte."""
    gitdir = repo / ".git"
    files = {}
    for path in sorted(repo.rglob("*")):
        rel = path.relative_to(repo)
        if rel.parts[0] == ".git":
            continue
        info = path.lstat()
        if stat.S_ISDIR(info.st_mode):
            continue
        data = os.readlink(path).encode() if stat.S_ISLNK(info.st_mode) else path.read_bytes()
        files[rel.as_posix()] = (stat.S_IMODE(info.st_mode), hashlib.sha256(data).hexdigest())
    return {
        "HEAD": (gitdir / "HEAD").read_bytes(),
        "index": hashlib.sha256((gitdir / "index").read_bytes()).hexdigest(),
        "main": git(repo, "rev-parse", "refs/heads/main"),
        "files": files,
    }


def tree_of(repo: Path, rev: str) -> dict[str, str]:
    """path -> blob id of every file in `rev`."""
    out = git(repo, "ls-tree", "-r", rev)
    return {line.split("\t", 1)[1]: line.split()[2] for line in out.splitlines()}


def listing(path: Path) -> set[str]:
    """Every path under `path` (to check that nothing appeared outside a repository)."""
    return {p.relative_to(path).as_posix() for p in path.rglob("*")}
