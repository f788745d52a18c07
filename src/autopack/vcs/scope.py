"""Scope checks: which changes a phase's attempt may make (ARCHITECTURE "Git contract").

Pure functions over the list of changed files that `changes.py` reads out of git. Every
refusal names the path and the rule; all refusals of one change are reported together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from autopack.domain.categories import MODE_LIMITS, BuilderMode
from autopack.domain.errors import PolicyViolation
from autopack.domain.paths import in_any, path_problem, symlink_problem

SYMLINK_MODE = "120000"
GITLINK_MODE = "160000"

class GatePolicy(BaseModel):
    """The configurable part of the scope checks (`[gate]` of autopack.toml)."""

    model_config = ConfigDict(extra="forbid")

    forbidden_paths: list[str] = Field(default_factory=lambda: [".github/", ".autonomous_runs/"])
    category_allowed_paths: dict[str, list[str]] = Field(default_factory=dict)
    """task_category -> forbidden paths that category may touch."""
    max_file_bytes: int = Field(5 * 1024 * 1024, gt=0)
    allow_binary: bool = False
    max_files: int = Field(200, gt=0)
    """Files one attempt may change when its phase has no builder mode."""
    max_changed_lines: int = Field(20_000, gt=0)
    """Lines one attempt may add plus delete when its phase has no builder mode."""


@dataclass(frozen=True)
class PhaseScope:
    """What one phase may touch: its scope entries, its category and its mode."""

    paths: tuple[str, ...] = ()
    """Directory prefixes (`src/app/`), files, or globs; empty means the whole repo."""
    task_category: str | None = None
    builder_mode: BuilderMode | None = None


@dataclass(frozen=True)
class ChangedFile:
    """One file an attempt changed, as git records it."""

    path: str
    status: str
    """A (added), M (modified), D (deleted), R (renamed), T (type changed)."""
    old_path: str | None = None
    new_mode: str | None = None
    new_size: int = 0
    binary: bool = False
    added_lines: int = 0
    deleted_lines: int = 0
    symlink_target: str | None = None


@dataclass(frozen=True)
class Refusal:
    """One broken rule: which path, which rule, and what is wrong."""

    path: str
    rule: str
    detail: str

    def __str__(self) -> str:
        return f"{self.path}: {self.rule}: {self.detail}"


class ScopeViolation(PolicyViolation):
    """A change refused by the scope checks; `refusals` lists every broken rule."""

    def __init__(self, refusals: Sequence[Refusal]) -> None:
        self.refusals = list(refusals)
        super().__init__("; ".join(str(r) for r in self.refusals))


ALWAYS_FORBIDDEN = ("autopack.toml",)
"""Forbidden whatever the project's own list says (a task category may still be allowed
it): the next part of a split plan reads `[ci]` and `[gate]` from the commit the part
before it ended on, so a builder editing the file would loosen the checks of the work
that follows."""


def check_changes(
    changes: Sequence[ChangedFile], scope: PhaseScope, policy: GatePolicy
) -> list[Refusal]:
    """Every rule `changes` break, in path order; empty when the change is acceptable."""
    refusals: list[Refusal] = []
    allowed_forbidden = policy.category_allowed_paths.get(scope.task_category or "", [])
    forbidden = [p for p in (*policy.forbidden_paths, *ALWAYS_FORBIDDEN)
                 if p not in allowed_forbidden]
    for change in sorted(changes, key=lambda c: c.path):
        for path in _paths_of(change):
            refusals.extend(_check_path(path, scope, forbidden))
        refusals.extend(_check_content(change, policy))
    refusals.extend(_check_size(changes, scope, policy))
    return refusals


def _paths_of(change: ChangedFile) -> list[str]:
    paths = [change.path]
    if change.old_path and change.old_path != change.path:
        paths.append(change.old_path)
    return paths


def _check_path(path: str, scope: PhaseScope, forbidden: Sequence[str]) -> list[Refusal]:
    problem = path_problem(path)
    if problem:
        return [Refusal(path, *problem)]
    found = []
    if path == ".gitmodules":
        found.append(Refusal(path, "submodule", "submodules are never added or changed"))
    if in_any(path, forbidden):
        found.append(Refusal(path, "forbidden_path",
                             "a forbidden path this phase's task category may not touch"))
    if scope.paths and not in_any(path, scope.paths):
        found.append(Refusal(path, "outside_scope",
                             f"outside the phase scope ({', '.join(scope.paths)})"))
    return found


def _check_content(change: ChangedFile, policy: GatePolicy) -> list[Refusal]:
    if change.status == "D":
        return []
    found = []
    if change.new_mode == GITLINK_MODE:
        found.append(Refusal(change.path, "submodule", "submodule entries are never added"))
    if change.new_mode == SYMLINK_MODE:
        problem = symlink_problem(change.path, change.symlink_target or "")
        if problem:
            found.append(Refusal(change.path, "symlink_escape", problem))
    if change.new_size > policy.max_file_bytes:
        found.append(Refusal(change.path, "file_too_large",
                             f"{change.new_size} bytes, limit {policy.max_file_bytes}"))
    if change.binary and not policy.allow_binary and change.new_mode != GITLINK_MODE:
        found.append(Refusal(change.path, "binary_file", "binary files are not allowed"))
    return found


def _check_size(
    changes: Sequence[ChangedFile], scope: PhaseScope, policy: GatePolicy
) -> list[Refusal]:
    limits = MODE_LIMITS.get(scope.builder_mode) if scope.builder_mode else None
    max_files = limits.max_files if limits else policy.max_files
    max_lines = limits.max_changed_lines if limits else policy.max_changed_lines
    source = f"builder mode {scope.builder_mode.value}" if scope.builder_mode else "gate policy"
    found = []
    if len(changes) > max_files:
        found.append(Refusal(f"({len(changes)} files)", "too_many_files",
                             f"{len(changes)} files changed, {source} allows {max_files}"))
    lines = sum(c.added_lines + c.deleted_lines for c in changes)
    if lines > max_lines:
        found.append(Refusal(f"({lines} lines)", "too_many_lines",
                             f"{lines} lines changed, {source} allows {max_lines}"))
    return found
