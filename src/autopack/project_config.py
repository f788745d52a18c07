"""`autopack.toml` at the target repository's root (ARCHITECTURE "Project config").

Sections: `[project]`, `[ci]`, `[gate]`, `[builder]`, `[auditor]` and `[budgets.run]`,
`[budgets.tier]`, `[budgets.phase]` (SPEC §9 names). Every key is optional; unknown keys
and bad values are errors naming the file and the key (`autopack.toml: $.budgets.run.
token_cap: Input should be greater than 0`).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from autopack.ci.config import CiConfig, Command, GateConfig
from autopack.domain.budgets import BudgetDefaults
from autopack.domain.categories import RunScope, SafetyProfile
from autopack.domain.errors import ConfigError
from autopack.domain.ids import ID_PATTERN
from autopack.domain.paths import path_problem
from autopack.plan import jsonfile

BUILDERS = ("auto", "command", "patch", "openai", "anthropic", "claude-code", "codex", "aider",
            "remote", "replay")


def _inside_repository(value: str) -> str:
    problem = path_problem(value)
    if problem:
        raise ValueError(f"{value!r} is not a path inside the repository: {problem[1]}")
    return value


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class ProjectSection(_Section):
    """`[project]`."""

    id: Annotated[str, Field(pattern=ID_PATTERN)] = "default"
    main_branch: Annotated[str, Field(min_length=1, max_length=255,
                                      pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")] = "main"
    safety_profile: SafetyProfile | None = None
    default_run_scope: RunScope | None = None
    ruleset: Annotated[str, Field(min_length=1, max_length=1_000),
                       AfterValidator(_inside_repository)] | None = None
    """The ruleset file, relative to the repository root (and inside it)."""


class BuilderSection(_Section):
    """`[builder]`."""

    name: Literal[BUILDERS] = "auto"  # type: ignore[valid-type]
    timeout_seconds: float = Field(1800, gt=0, le=86_400)


class AuditorSection(_Section):
    """`[auditor]`."""

    name: Literal["none", "command", "openai", "anthropic", "claude-code", "codex",
                  "replay"] = "none"
    command: Command | None = None
    timeout_seconds: float = Field(900, gt=0, le=86_400)

    @model_validator(mode="after")
    def _command_when_needed(self) -> AuditorSection:
        if self.name == "command" and not self.command:
            raise ValueError('name = "command" needs `command = "..."`')
        return self


class ProjectConfig(_Section):
    """The whole autopack.toml."""

    project: ProjectSection = ProjectSection()
    ci: CiConfig = CiConfig()
    gate: GateConfig = GateConfig()
    builder: BuilderSection = BuilderSection()
    auditor: AuditorSection = AuditorSection()
    budgets: BudgetDefaults = BudgetDefaults()


def parse_project_config(text: str | None, source: str) -> ProjectConfig:
    """An autopack.toml text (None: no file, all defaults)."""
    if text is None:
        return ProjectConfig()
    try:
        data: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, f"malformed TOML: {exc}") from None
    except ValueError as exc:  # e.g. an integer past the interpreter's digit limit
        raise ConfigError(source, f"unreadable TOML value: {exc}") from None
    return jsonfile.validate(ProjectConfig, data, source, ConfigError)


def load_project_config(repo: Path) -> ProjectConfig:
    """`repo/autopack.toml` as it is in the working tree (defaults when absent)."""
    path = repo / "autopack.toml"
    try:
        if path.exists() and not path.is_file():  # a FIFO would block the read forever
            raise ConfigError(str(path), "is not a regular file")
        text = path.read_text(encoding="utf-8") if path.exists() else None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), f"cannot read it: {exc}") from None
    return parse_project_config(text, str(path))
