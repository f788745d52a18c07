"""The one runner of the `git` CLI.

Every git command Autopack runs goes through `Git.run`. It strips the caller's `GIT_*`
variables (so a hook's or a shell's GIT_DIR / GIT_INDEX_FILE can never redirect us),
sets Autopack's identity, never runs hooks, never signs, never asks for input, and
refuses the porcelain commands that move refs: refs move only through
`autopack.vcs.refs.update_ref`.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from autopack.domain.errors import AutopackError, PolicyViolation

ZERO_OID = "0" * 40
_TAIL_CHARS = 2000

# Options that make every command independent of hooks, signing and prompts in the
# user's configuration, and patient with a concurrent gc. The empty hooks directory
# disables hooks (including reference-transaction and post-checkout); fsmonitor would
# run a configured program.
_SAFE_CONFIG = (
    "-c", "core.hooksPath=/dev/null",
    "-c", "core.fsmonitor=false",
    "-c", "commit.gpgSign=false",
    "-c", "tag.gpgSign=false",
    "-c", "core.quotePath=false",
    "-c", "advice.detachedHead=false",
    # Wait (instead of failing at once) while a concurrent `git gc` holds packed-refs.
    "-c", "core.packedRefsTimeout=10000",
    "-c", "core.filesRefLockTimeout=2000",
)

# Subcommands that write refs (or can). They are refused here: a ref moves only through
# `refs.update_ref`, which is where protected refs are guarded.
_REF_WRITERS = frozenset({
    "am", "branch", "checkout", "cherry-pick", "commit", "fetch", "merge", "pull", "push",
    "rebase", "reset", "restore", "revert", "stash", "switch", "symbolic-ref", "tag",
    "update-ref",
})


class GitError(AutopackError):
    """A git command failed; carries the command, its exit code and its output tail."""

    def __init__(self, args: Sequence[str], returncode: int, output: str) -> None:
        self.command = ["git", *args]
        self.returncode = returncode
        self.output_tail = output[-_TAIL_CHARS:]
        shown = " ".join(self.command)
        super().__init__(
            f"`{shown}` exited {returncode}: {self.output_tail.strip() or '(no output)'}"
        )


@dataclass(frozen=True)
class Identity:
    """The author and committer of every commit Autopack makes."""

    name: str = "Autopack"
    email: str = "autopack@localhost"


@dataclass(frozen=True)
class GitResult:
    """What a finished git command printed."""

    stdout: bytes
    stderr: bytes
    returncode: int

    @property
    def text(self) -> str:
        """stdout decoded as UTF-8 with the trailing newline removed."""
        return self.stdout.decode("utf-8", "surrogateescape").rstrip("\n")


def clean_environment(
    identity: Identity, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment git runs in: ours minus GIT_*, plus identity and `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        GIT_AUTHOR_NAME=identity.name,
        GIT_AUTHOR_EMAIL=identity.email,
        GIT_COMMITTER_NAME=identity.name,
        GIT_COMMITTER_EMAIL=identity.email,
        GIT_TERMINAL_PROMPT="0",
        GIT_OPTIONAL_LOCKS="0",
        LC_ALL="C",
    )
    if extra:
        env.update(extra)
    return env


class Git:
    """git commands in one directory (a repository or one of its worktrees)."""

    def __init__(self, cwd: Path, identity: Identity | None = None,
                 git_dir: Path | None = None) -> None:
        self.cwd = cwd
        self.identity = identity or Identity()
        pinned = {"GIT_DIR": str(git_dir), "GIT_WORK_TREE": str(cwd)} if git_dir else None
        self._env = clean_environment(self.identity, pinned)

    def at(self, cwd: Path) -> Git:
        """The same runner in another directory (e.g. a worktree)."""
        return Git(cwd, self.identity)

    def pinned(self) -> Git:
        """This runner with its repository fixed to the one `cwd` has now (GIT_DIR and
        GIT_WORK_TREE set), for a worktree whose files someone else will then change:
        a `.git` file rewritten there cannot point our later commands at another
        repository, configuration or index."""
        git_dir = Path(self.text("rev-parse", "--absolute-git-dir"))
        return Git(self.cwd, self.identity, git_dir)

    def run(
        self,
        *args: str,
        input: bytes | None = None,
        env: Mapping[str, str] | None = None,
        check: bool = True,
    ) -> GitResult:
        """Run `git args...`; raise GitError on a non-zero exit unless `check` is false."""
        if args and args[0] in _REF_WRITERS:
            raise PolicyViolation(
                f"git {args[0]}: refs move only through autopack.vcs.refs.update_ref"
            )
        return self._exec(args, input, env, check)

    def text(self, *args: str, env: Mapping[str, str] | None = None) -> str:
        """stdout of a successful command, decoded and stripped of its last newline."""
        return self.run(*args, env=env).text

    def _exec(
        self,
        args: Sequence[str],
        input: bytes | None,
        env: Mapping[str, str] | None,
        check: bool,
    ) -> GitResult:
        full_env = {**self._env, **env} if env else self._env
        try:
            done = subprocess.run(
                ["git", *_SAFE_CONFIG, *args],
                cwd=self.cwd,
                input=input,
                capture_output=True,
                env=full_env,
                stdin=None if input is not None else subprocess.DEVNULL,
                check=False,
            )
        except OSError as exc:  # git missing, cwd gone
            raise GitError(args, -1, str(exc)) from exc
        if check and done.returncode != 0:
            output = (done.stderr + done.stdout).decode("utf-8", "replace")
            raise GitError(args, done.returncode, output)
        return GitResult(done.stdout, done.stderr, done.returncode)

    def _update_ref_unguarded(self, *args: str) -> GitResult:
        """`git update-ref ...`; called only by `autopack.vcs.refs`."""
        return self._exec(("update-ref", *args), None, None, True)
