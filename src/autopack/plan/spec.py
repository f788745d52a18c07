"""The run spec: what `POST /runs/start` takes and what a plan turns into."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, Strict, model_validator

from autopack.domain.categories import (
    BuilderMode,
    Complexity,
    RunScope,
    SafetyProfile,
    TaskCategory,
)
from autopack.domain.errors import PlanError
from autopack.domain.ids import ID_PATTERN, names_a_runs_folder_file
from autopack.domain.paths import path_problem
from autopack.domain.problems import FieldProblems, Location
from autopack.domain.text import NoNul
from autopack.plan import jsonfile

EntityId = Annotated[str, Field(min_length=1, max_length=128, pattern=ID_PATTERN)]
Name = Annotated[str, Field(min_length=1, max_length=200), NoNul]
Description = Annotated[str, Field(max_length=20_000), NoNul]
MAX_INDEX = 9_999
"""The largest tier_index and phase_index (file names keep them to four digits)."""


def _scope_entry(value: str) -> str:
    problem = path_problem(value.rstrip("/"))
    if problem:
        raise ValueError(f"{value!r} is not a repository path: {problem[1]}")
    return value


def _local_path(value: str) -> str:
    """A path the filesystem can look up: `~` expanded (left as it is for an unknown
    user), no component longer than the 255 bytes a file name may have."""
    expanded = os.path.expanduser(value)
    for part in expanded.split("/"):
        if len(part.encode("utf-8", "surrogatepass")) > 255:
            raise ValueError(f"{part[:40]!r}... is longer than a file name may be "
                             "(255 bytes)")
    return expanded


def _run_id(value: str) -> str:
    if names_a_runs_folder_file(value):
        raise ValueError(f"{value!r} is the name of a project's issue backlog file in the "
                         "runs folder; choose another run id")
    return value


RunId = Annotated[str, Field(min_length=1, max_length=128, pattern=ID_PATTERN),
                  AfterValidator(_run_id)]
ScopeEntry = Annotated[str, Field(min_length=1, max_length=1_000), NoNul,
                      AfterValidator(_scope_entry)]


class _Strict(BaseModel):
    """Unknown keys refused; numbers and flags must be JSON numbers and booleans ("100"
    or true for a count is refused, not converted)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False, allow_inf_nan=False)


class RunFields(_Strict):
    """The run part of a run spec."""

    run_id: RunId
    project_id: EntityId = "default"
    safety_profile: SafetyProfile = SafetyProfile.NORMAL
    run_scope: RunScope = RunScope.MULTI_TIER
    token_cap: Annotated[int, Strict()] | None = Field(None, gt=0, le=10**12)
    max_phases: Annotated[int, Strict()] | None = Field(None, gt=0, le=10_000)
    max_duration_minutes: Annotated[float, Strict()] | None = Field(None, gt=0, le=525_600)


class RepoTarget(_Strict):
    """The git repository a run works on."""

    path: Annotated[str, Field(min_length=1, max_length=4_096), NoNul,
                    AfterValidator(_local_path)]
    """The repository (its working tree, or a bare repository); `~` is expanded."""
    main_branch: str = Field("main", min_length=1, max_length=255,
                             pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")


class TierSpec(_Strict):
    """One tier of a run spec."""

    tier_id: EntityId
    tier_index: Annotated[int, Strict()] = Field(ge=0, le=MAX_INDEX)
    name: Name
    description: Description = ""


class PhaseSpec(_Strict):
    """One phase of a run spec; missing labels are filled by the StrategyEngine later."""

    phase_id: EntityId
    phase_index: Annotated[int, Strict()] = Field(ge=0, le=MAX_INDEX)
    tier_id: EntityId
    name: Name
    description: Description = ""
    task_category: TaskCategory | None = None
    complexity: Complexity | None = None
    builder_mode: BuilderMode | None = None
    ci_profile: Literal["normal", "strict"] | None = None
    """`strict` asks for the strict CI profile; a phase the defaults make strict stays so."""
    scope: list[ScopeEntry] | None = Field(None, max_length=1_000)
    """Paths the phase may change; None: the whole repository."""
    command: Annotated[str, Field(min_length=1, max_length=4_000), NoNul] | None = None
    """The command the `command` builder runs in the attempt's worktree."""
    patch: Annotated[str, Field(min_length=1, max_length=1_000), NoNul] | None = None
    """The patch file the `patch` builder applies (relative to the plan's folder)."""
    acceptance: Annotated[str, Field(max_length=5_000), NoNul] | None = None


def _duplicates(values: list[str | int]) -> list[tuple[int, str | int]]:
    seen: set[str | int] = set()
    found = []
    for position, value in enumerate(values):
        if value in seen:
            found.append((position, value))
        seen.add(value)
    return found


class RunSpec(_Strict):
    """A whole run: the run's fields, its tiers and its phases."""

    run: RunFields
    repo: RepoTarget | None = None
    tiers: list[TierSpec] = Field(min_length=1, max_length=1_000)
    phases: list[PhaseSpec] = Field(min_length=1, max_length=10_000)

    @model_validator(mode="after")
    def _consistent(self) -> RunSpec:
        found: list[tuple[Location, str]] = []
        for field, key, values in (
            ("tiers", "tier_id", [t.tier_id for t in self.tiers]),
            ("tiers", "tier_index", [t.tier_index for t in self.tiers]),
            ("phases", "phase_id", [p.phase_id for p in self.phases]),
            ("phases", "phase_index", [p.phase_index for p in self.phases]),
        ):
            for position, value in _duplicates(list(values)):
                found.append(((field, position, key), f"duplicate {value!r}"))
        tier_ids = {t.tier_id for t in self.tiers}
        for position, phase in enumerate(self.phases):
            if phase.tier_id not in tier_ids:
                found.append((("phases", position, "tier_id"),
                              f"unknown tier {phase.tier_id!r}"))
        if found:
            raise FieldProblems(found)
        return self


def load_run_spec(path: Path) -> RunSpec:
    """A JSON run spec from a file; errors name `file:line:col` or the file and JSON path."""
    return jsonfile.load(RunSpec, path, "plan", PlanError)
