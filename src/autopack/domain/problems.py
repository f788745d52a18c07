"""Where validation failed: one (location, message) per problem, whatever found it.

Pydantic locates a field's own problem, but a model validator that checks several fields
together (duplicate ids, a phase naming an unknown tier) raises one error located at the
model. Such a validator raises `FieldProblems` instead, and `problems()` gives each of its
problems its own location, so an API error, a plan error and a config error all name the
exact field.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import ValidationError

Location = tuple[str | int, ...]


class FieldProblems(ValueError):
    """Problems found by a model validator, each at a location inside the model."""

    def __init__(self, problems: Sequence[tuple[Location, str]]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(f"{dotted(loc)}: {msg}" for loc, msg in self.problems))


def problems(exc: ValidationError) -> list[tuple[Location, str]]:
    """Every problem of `exc` with its full location (pydantic's own message text)."""
    found: list[tuple[Location, str]] = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        cause = error.get("ctx", {}).get("error")
        if isinstance(cause, FieldProblems):
            found.extend((loc + sub, msg) for sub, msg in cause.problems)
        else:
            found.append((loc, error["msg"]))
    return found


def dotted(loc: Location) -> str:
    """`phases[2].tier_id` for ("phases", 2, "tier_id"); pydantic's `[key]` marker (the
    key itself is wrong) is left out."""
    out = ""
    for part in loc:
        if part == "[key]":
            continue
        out += f"[{part}]" if isinstance(part, int) else f".{part}" if out else str(part)
    return out
