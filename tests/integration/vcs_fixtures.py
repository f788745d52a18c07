"""Fixtures for governed-apply tests: a user's repository and a Supervisor bound to it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from autopack.db.runs import PhaseStatusUpdate
from autopack.domain.states import PhaseState
from autopack.plan.spec import RunSpec
from autopack.settings import Settings
from autopack.supervisor.service import Supervisor
from tests.conftest import run_body
from tests.gitutil import fingerprint, git, listing, make_repo, make_user_edits


@dataclass
class Project:
    """A user's repository, what it looked like before, and a Supervisor."""

    repo: Path
    sup: Supervisor
    before: dict[str, object]
    outside_before: set[str]

    def start(self, run_id: str = "run-1", phases: tuple[int, ...] = (2, 1),
              scope: list[str] | None = None, **phase_fields: object) -> RunSpec:
        body = run_body(run_id, tiers=len(phases), phases_per_tier=phases)
        body["repo"] = {"path": str(self.repo), "main_branch": "main"}
        for phase in body["phases"]:  # type: ignore[union-attr]
            if scope is not None:
                phase["scope"] = scope
            phase.update(phase_fields)
        spec = RunSpec.model_validate(body)
        self.sup.create_run(spec, actor="test")
        return spec

    def complete(self, run_id: str = "run-1", changes: dict[str, dict[str, bytes]] | None = None
                 ) -> None:
        """Walk every phase to COMPLETE; phases named in `changes` snapshot those files."""
        for phase in self.sup.get_run(run_id).phases:
            for state in (PhaseState.EXECUTING, PhaseState.GATE, PhaseState.CI_RUNNING):
                self.sup.update_phase_status(run_id, phase.phase_id,
                                             PhaseStatusUpdate(state), "test")
            if changes and phase.phase_id in changes:
                with self.sup.apply.attempt(run_id, phase.phase_id) as attempt:
                    attempt.write_files(changes[phase.phase_id])  # type: ignore[arg-type]
                    self.sup.apply.gate(run_id, phase.phase_id, attempt)
                self.sup.apply.snapshot(run_id, phase.phase_id, attempt.number, tokens=1)
            self.sup.update_phase_status(run_id, phase.phase_id,
                                         PhaseStatusUpdate(PhaseState.COMPLETE), "test")

    def integration_tip(self, run_id: str = "run-1") -> str:
        return git(self.repo, "rev-parse", f"refs/heads/autopack/integration/{run_id}")

    def assert_untouched(self) -> None:
        """The user's checkout is byte-identical; nothing appeared beside the repo."""
        assert fingerprint(self.repo) == self.before
        assert _beside(self.repo) == self.outside_before


def _beside(repo: Path) -> set[str]:
    """Everything in the folder around the repository, but the repository itself."""
    return {p for p in listing(repo.parent) if p.split("/")[0] != repo.name}


@pytest.fixture
def project(settings: Settings, tmp_path: Path) -> Iterator[Project]:
    """A repository with a user mid-work in it; after the test, the checkout must be intact.

    The attack tests write `../outside` relative to worktrees and the repo; `area` is the
    folder around the repository that must not gain anything.
    """
    yield from _project(settings, tmp_path, user_edits=True)


@pytest.fixture
def clean_project(settings: Settings, tmp_path: Path) -> Iterator[Project]:
    """A repository whose user has committed everything (main checked out, clean)."""
    yield from _project(settings, tmp_path, user_edits=False)


def _project(settings: Settings, tmp_path: Path, user_edits: bool) -> Iterator[Project]:
    area = tmp_path / "area"
    repo = make_repo(area / "project")
    if user_edits:
        make_user_edits(repo)
    sup = Supervisor(settings)
    sup.start()
    proj = Project(repo, sup, fingerprint(repo), _beside(repo))
    yield proj
    sup.close()
