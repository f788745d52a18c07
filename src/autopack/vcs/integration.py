"""A run's integration branch: creation from main's tip, and its status."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from autopack.domain.errors import ConfigError, Conflict, InvalidInput
from autopack.vcs import refs
from autopack.vcs.git import Git


def integration_ref(run_id: str) -> str:
    """The full ref of a run's integration branch."""
    return f"refs/heads/autopack/integration/{run_id}"


def check_ref_safe(where: str, value: str) -> str:
    """Refuse an id git cannot use inside a ref name (`..`, a `.lock` or `.` ending)."""
    if ".." in value or value.endswith((".lock", ".")):
        raise InvalidInput(where, f"{value!r} cannot name a git branch or tag "
                           "(no '..', and no '.' or '.lock' at the end)")
    return value


def check_ref_safe_ids(run_id: str, phase_ids: Iterable[str]) -> None:
    """Refuse a run whose id or a phase id git cannot use in its branch and tag names
    (the phase named by its position, as a run spec's `phases[N].phase_id`)."""
    check_ref_safe("run.run_id", run_id)
    for position, phase_id in enumerate(phase_ids):
        check_ref_safe(f"phases[{position}].phase_id", phase_id)


def main_tip(git: Git, main_branch: str) -> str:
    """The commit at the tip of the project's main branch."""
    tip = refs.current(git, f"refs/heads/{main_branch}")
    if tip is None:
        raise ConfigError("main_branch", f"branch {main_branch!r} does not exist in {git.cwd}")
    return tip


def create_integration_branch(git: Git, run_id: str, base: str) -> None:
    """Create `autopack/integration/{run_id}` at `base`; a no-op if it is already there."""
    ref = integration_ref(run_id)
    existing = refs.current(git, ref)
    if existing is None:
        refs.update_ref(git, ref, base, None, reason=f"autopack: run {run_id} started")
        return
    if git.run("merge-base", "--is-ancestor", base, existing, check=False).returncode != 0:
        raise Conflict(f"{ref} already exists at {existing[:12]}, which does not descend "
                       f"from {base[:12]}; it belongs to another run with this id")


@dataclass(frozen=True)
class IntegrationStatus:
    """Where a run's integration branch stands."""

    branch: str
    exists: bool
    base_commit: str | None
    commit_count: int
    latest_commit: str | None
    latest_subject: str | None
    latest_at: str | None
    main_branch: str
    ahead_of_main: int
    behind_main: int


def integration_status(
    git: Git, run_id: str, main_branch: str, base: str | None
) -> IntegrationStatus:
    """The branch, whether it exists, commits since base, latest commit, ahead/behind main."""
    ref = integration_ref(run_id)
    short = ref.removeprefix("refs/heads/")
    tip = refs.current(git, ref)
    if tip is None:
        return IntegrationStatus(short, False, base, 0, None, None, None, main_branch, 0, 0)
    count = int(git.text("rev-list", "--count", f"{base}..{tip}" if base else tip))
    subject, at = git.text("show", "-s", "--format=%s%x00%cI", tip).split("\0")
    ahead = behind = 0
    main = refs.current(git, f"refs/heads/{main_branch}")
    if main is not None:
        left, right = git.text("rev-list", "--left-right", "--count",
                               f"{main}...{tip}").split()
        behind, ahead = int(left), int(right)
    return IntegrationStatus(short, True, base, count, tip, subject, at, main_branch,
                             ahead, behind)
