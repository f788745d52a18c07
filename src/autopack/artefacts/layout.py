"""Where each artefact of a run lives under the runs folder."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from autopack.domain.errors import PolicyViolation
from autopack.domain.ids import check_id, names_a_runs_folder_file, slug


@dataclass(frozen=True)
class RunLayout:
    """The paths of one run's artefacts: `{runs_dir}/{run_id}/...`."""

    runs_dir: Path
    run_id: str
    root: Path = field(init=False)

    def __post_init__(self) -> None:
        """Compute the run folder once; refuse one that would leave the runs folder."""
        check_id(self.run_id)
        if names_a_runs_folder_file(self.run_id):
            raise PolicyViolation(f"run id {self.run_id!r} names a file of the runs folder")
        base = self.runs_dir.resolve()
        root = (base / self.run_id).resolve()
        if root.parent != base:
            raise PolicyViolation(f"run folder {root} is outside the runs folder {base}")
        object.__setattr__(self, "root", root)

    @property
    def run_summary(self) -> Path:
        return self.root / "run_summary.md"

    @property
    def tiers_dir(self) -> Path:
        return self.root / "tiers"

    @property
    def phases_dir(self) -> Path:
        return self.root / "phases"

    @property
    def issues_dir(self) -> Path:
        return self.root / "issues"

    @property
    def lock_file(self) -> Path:
        return self.root / ".lock"

    def phase_issues_file(self, phase_index: int, phase_id: str) -> Path:
        """`issues/phase_{idx:02d}_{phase_id}_issues.json`."""
        check_id(phase_id)
        return self.issues_dir / f"phase_{phase_index:02d}_{phase_id}_issues.json"

    @property
    def run_summary_json(self) -> Path:
        return self.root / "run_summary.json"

    def strategy_file(self, version: int) -> Path:
        """`project_implementation_strategy_v{N}.json`."""
        return self.root / f"project_implementation_strategy_v{version}.json"

    @property
    def run_issue_index(self) -> Path:
        return self.issues_dir / "run_issue_index.json"

    def tier_file(self, tier_index: int, name: str, tier_id: str) -> Path:
        """`tiers/tier_{idx:02d}_{slug(name)}.md`."""
        return self.tiers_dir / f"tier_{tier_index:02d}_{slug(name, slug(tier_id, 'tier'))}.md"

    def phase_file(self, phase_index: int, phase_id: str) -> Path:
        """`phases/phase_{idx:02d}_{phase_id}.md`."""
        check_id(phase_id)
        return self.phases_dir / f"phase_{phase_index:02d}_{phase_id}.md"


def committed_issues_path(run_id: str, phase_index: int, phase_id: str) -> str:
    """Where a phase's issue file sits in the repository tree of its snapshot commit."""
    check_id(run_id)
    check_id(phase_id)
    return f".autonomous_runs/{run_id}/issues/phase_{phase_index:02d}_{phase_id}_issues.json"


def backlog_file(runs_dir: Path, project_id: str) -> Path:
    """The project's `project_issue_backlog.json` in the runs folder.

    The default project's file has the SPEC's plain name; other projects sharing the runs
    folder get `project_issue_backlog.{project_id}.json`.
    """
    check_id(project_id)
    name = ("project_issue_backlog.json" if project_id == "default"
            else f"project_issue_backlog.{project_id}.json")
    return runs_dir.resolve() / name
