"""The `[ci]` and `[gate]` sections of autopack.toml: profiles of commands, attempts,
limits, isolation; static checks. (`project_config.py` reads the whole file.)

Placeholders in commands: `{junit}` (a path Autopack reads afterwards), `{changed_files}`
and `{repo}`. Without a `[ci]` section a Python project gets profiles built on the
pytest markers `unit`, `integration`, `e2e`, `safety_critical`.
"""

from __future__ import annotations

import re
import string
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    ValidationInfo,
    field_validator,
)

from autopack.ci.runner import Isolation
from autopack.domain.text import NoNul

PLACEHOLDERS = frozenset({"junit", "changed_files", "repo"})
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
Command = Annotated[str, Field(min_length=1, max_length=4_000), NoNul]


def check_placeholders(commands: list[str], known: frozenset[str]) -> list[str]:
    """Refuse a command naming a placeholder outside `known` (or with broken braces)."""
    for command in commands:
        try:
            fields = {f for _, f, _, _ in string.Formatter().parse(command) if f is not None}
        except ValueError as exc:
            raise ValueError(f"{command!r}: {exc}") from None
        unknown = sorted(fields - known)
        if unknown:
            raise ValueError(f"{command!r}: unknown placeholder {{{unknown[0]}}}; known: "
                             + ", ".join(f"{{{p}}}" for p in sorted(known)))
    return commands


class Profile(BaseModel):
    """One CI profile: its commands, run in order."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    commands: list[Command] = Field(min_length=1, max_length=50)

    @field_validator("commands")
    @classmethod
    def _known_placeholders(cls, commands: list[str]) -> list[str]:
        return check_placeholders(commands, PLACEHOLDERS)


class GateConfig(BaseModel):
    """`[gate]` of autopack.toml: static checks at GATE, and the forbidden paths."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    static_checks: list[Command] = Field(default_factory=list, max_length=50)
    """Commands run in the attempt's worktree, e.g. `ruff check {changed_files}`."""
    forbidden_paths: list[Annotated[str, NoNul]] | None = None
    """Replaces AUTOPACK_GATE__FORBIDDEN_PATHS for this project when set."""

    @field_validator("static_checks")
    @classmethod
    def _known_placeholders(cls, commands: list[str]) -> list[str]:
        return check_placeholders(commands, frozenset({"changed_files", "repo"}))


PYTHON_PROFILES = {
    "normal": Profile(commands=[
        "python -m pytest -q -m 'not e2e and not safety_critical' --junitxml={junit}"]),
    "strict": Profile(commands=["python -m pytest -q --junitxml={junit}"]),
}


class CiConfig(BaseModel):
    """`[ci]` of autopack.toml."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    max_attempts: int = Field(3, ge=1, le=20)
    timeout_seconds: float = Field(900, gt=0, le=86_400)
    backoff_seconds: float = Field(2.0, ge=0, le=600)
    """Wait before retry n: backoff_seconds * 2**(n-1)."""
    max_log_bytes: int = Field(10 * 1024 * 1024, gt=0)
    max_junit_bytes: int = Field(20 * 1024 * 1024, gt=0)
    cpu_seconds: int | None = Field(None, gt=0)
    memory_bytes: int | None = Field(None, gt=0)
    file_bytes: int | None = Field(None, gt=0)
    isolation: Literal["none", "bwrap", "docker"] = "none"
    image: str | None = Field(None, min_length=1, max_length=500, validate_default=True)
    """The container image when isolation = "docker"."""
    network: StrictBool = False
    """Under bwrap or docker: let commands reach the network (and local services)."""
    pass_env: list[str] = Field(default_factory=list, max_length=200)
    env: dict[str, str] = Field(default_factory=dict, max_length=200)
    profiles: dict[str, Profile] = Field(default_factory=lambda: dict(PYTHON_PROFILES),
                                         min_length=1)

    @field_validator("pass_env")
    @classmethod
    def _variable_names(cls, names: list[str]) -> list[str]:
        for name in names:
            _check_variable(name)
        return names

    @field_validator("env")
    @classmethod
    def _variables(cls, env: dict[str, str]) -> dict[str, str]:
        for name, value in env.items():
            _check_variable(name)
            if "\0" in value or len(value) > 32_768:
                raise ValueError(f"{name}: a value holds no NUL and at most 32768 characters")
        return env

    def isolation_for(self, *writable: Path) -> Isolation:
        """How commands run under this configuration, `writable` besides their checkout."""
        return Isolation(self.isolation, tuple(p.resolve() for p in writable), self.image,
                         self.network)

    @field_validator("image")
    @classmethod
    def _image_for_docker(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None and info.data.get("isolation") == "docker":
            raise ValueError('isolation = "docker" needs an image')
        return value


def _check_variable(name: str) -> None:
    if not _VARIABLE.fullmatch(name):
        raise ValueError(f"{name!r} is not an environment variable name "
                         "(letters, digits and _, not starting with a digit)")
