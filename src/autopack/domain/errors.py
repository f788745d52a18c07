"""The one exception tree of Autopack.

AutopackError
├── InvalidInput        bad input that names where it is wrong (field, key, file:line)
│   ├── PlanError       a plan document is malformed (carries file:line)
│   └── ConfigError     a configuration key is missing or has a bad value
├── NotFound            a run, tier or phase that does not exist
├── Conflict            the request collides with existing state (duplicate id)
│   └── IllegalTransition   a state move the transition tables forbid
├── PolicyViolation     a change that breaks a safety rule
└── BudgetExhausted     a token, time, attempt or CI cap is spent
"""

from __future__ import annotations

from collections.abc import Iterable


class AutopackError(Exception):
    """Base of every error Autopack raises on purpose."""


class InvalidInput(AutopackError):
    """Input that fails validation; `where` names the field, key or file:line."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where
        self.message = message


class PlanError(InvalidInput):
    """A plan document is malformed at `file:line`."""


class ConfigError(InvalidInput):
    """A configuration key is missing or has a bad value."""


class NotFound(AutopackError):
    """The named entity does not exist."""

    def __init__(self, entity: str, entity_id: str) -> None:
        super().__init__(f"{entity} {entity_id!r} not found")
        self.entity = entity
        self.entity_id = entity_id


class Conflict(AutopackError):
    """The request collides with existing state."""


class IllegalTransition(Conflict):
    """A state move that the transition tables do not allow."""

    def __init__(
        self, entity: str, entity_id: str, current: str, target: str, allowed: Iterable[str]
    ) -> None:
        self.entity = entity
        self.entity_id = entity_id
        self.current = current
        self.target = target
        self.allowed = sorted(allowed)
        shown = ", ".join(self.allowed) if self.allowed else "none (terminal state)"
        super().__init__(
            f"illegal transition of {entity} {entity_id!r}: {current} -> {target}; "
            f"allowed from {current}: {shown}"
        )


class PolicyViolation(AutopackError):
    """A change that breaks a safety rule; names the path and the rule."""


class BudgetExhausted(AutopackError):
    """A budget cap is spent."""
