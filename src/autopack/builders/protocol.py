"""What a Builder and an Auditor are handed and what they give back (ARCHITECTURE
"Builders"). A Builder makes its change in the attempt's worktree; the Supervisor then
captures, gates, tests and commits it. An Auditor reviews a change and returns a verdict.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Protocol

from pydantic import BaseModel, ConfigDict, Field

from autopack.vcs.workspace import Attempt

Count = Annotated[int, Field(ge=0, le=10**12)]


class Usage(BaseModel):
    """Tokens a provider reported; charged to phase, tier and run budgets."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input_tokens: Count = 0
    output_tokens: Count = 0

    @property
    def total(self) -> int:
        return self.input_tokens + self.output_tokens


class SuggestedIssue(BaseModel):
    """An issue a Builder or Auditor reports about its own work."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    issue_key: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$")
    severity: str = Field("minor", pattern=r"^(minor|major)$")
    category: str = Field("builder_self_doubt", min_length=1, max_length=64)
    description: str = Field("", max_length=5_000)


@dataclass(frozen=True)
class BuilderRequest:
    """One attempt at one phase: the phase spec, the previous failure, where files are."""

    run_id: str
    phase_id: str
    name: str
    description: str
    task_category: str | None
    complexity: str | None
    builder_mode: str | None
    allowed_scope: tuple[str, ...] | None
    attempt_number: int
    plan_dir: Path
    """Relative `patch` paths of the plan are read from here."""
    extras: dict[str, str] = field(default_factory=dict)
    """The plan's `command`, `patch`, `acceptance` for the phase."""
    feedback: str = ""
    """Why the previous attempt failed (gate refusals, CI failures, Auditor notes)."""


@dataclass(frozen=True)
class BuilderResult:
    """What a Builder reports after changing the worktree."""

    ok: bool
    usage: Usage = field(default_factory=Usage)
    summary: str = ""
    """A short account (a failure's reason, or a log tail)."""
    log_path: Path | None = None
    suggested_issues: tuple[SuggestedIssue, ...] = ()


class Builder(Protocol):
    """Makes a phase's change in an attempt's worktree."""

    @property
    def name(self) -> str:
        """The builder's name (`command`, `patch`, ...)."""
        ...

    def build(self, request: BuilderRequest, attempt: Attempt, log_dir: Path) -> BuilderResult:
        """Change the worktree; never commit. Failures are results, not exceptions."""
        ...


class VerdictKind(StrEnum):
    """An Auditor's decision."""

    APPROVE = "approve"
    REVISE = "revise"
    ESCALATE = "escalate"


class Verdict(BaseModel):
    """An Auditor's answer: the decision, notes, an optional minimal patch, issues, usage."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    verdict: VerdictKind
    notes: str = Field("", max_length=20_000)
    patch: str | None = Field(None, max_length=10_000_000)
    issues: list[SuggestedIssue] = Field(default_factory=list, max_length=200)
    usage: Usage = Usage()


@dataclass(frozen=True)
class ReviewRequest:
    """What an Auditor is asked to review (sent as JSON)."""

    run_id: str
    phase_id: str
    name: str
    description: str
    task_category: str | None
    complexity: str | None
    auditor_profile: str | None
    reason: str
    """Why review now: `auto_apply_disabled` or `low_signal_attempts`."""
    diff: str
    logs: dict[str, str] = field(default_factory=dict)


class Auditor(Protocol):
    """Reviews a change and returns a verdict."""

    @property
    def name(self) -> str:
        """The auditor's name."""
        ...

    def review(self, request: ReviewRequest, cwd: Path, log_dir: Path) -> Verdict:
        """The verdict; a reviewer that cannot answer escalates."""
        ...
