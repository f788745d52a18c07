"""`comprehensive_plan.md` (ARCHITECTURE "Plan contract") into a run spec.

    # Plan: Todo API
    ## Tier T1: Storage
    ### Phase P1.1: Add the Todo model
    - category: schema_change
    - complexity: high
    - scope: src/todo/, tests/
    - command: python tools/add_model.py
    Free text below the bullets is the phase description handed to the Builder.

Metadata are `- key: value` lines directly under a phase heading. Every error names
`file:line`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from autopack.domain.errors import PlanError
from autopack.domain.problems import dotted, problems
from autopack.plan import jsonfile
from autopack.plan.spec import PhaseSpec, RunSpec, TierSpec

PLAN = re.compile(r"^#\s+Plan:\s*(?P<title>.+?)\s*$")
TIER = re.compile(r"^##\s+Tier\s+(?P<id>\S+?):\s*(?P<name>.+?)\s*$")
PHASE = re.compile(r"^###\s+Phase\s+(?P<id>\S+?):\s*(?P<name>.+?)\s*$")
META = re.compile(r"^-\s+(?P<key>[A-Za-z_]+)\s*:\s*(?P<value>.*?)\s*$")
HEADING = re.compile(r"^#{1,3}\s")
KEYS = ("category", "complexity", "builder_mode", "scope", "ci_profile", "command", "patch",
        "acceptance")
_SPEC_FIELD = {"category": "task_category", "complexity": "complexity",
               "builder_mode": "builder_mode", "scope": "scope", "ci_profile": "ci_profile"}


@dataclass
class PlannedPhase:
    """A phase as the plan wrote it, with the line each part came from."""

    phase_id: str
    name: str
    tier_id: str
    line: int
    metadata: dict[str, str] = field(default_factory=dict)
    metadata_lines: dict[str, int] = field(default_factory=dict)
    description: list[str] = field(default_factory=list)


@dataclass
class Plan:
    """A parsed plan: its title, tiers and phases, and the run spec they make."""

    path: Path
    title: str
    tiers: list[tuple[str, str, int]]
    phases: list[PlannedPhase]
    title_line: int = 1

    def phase_extras(self) -> dict[str, dict[str, str]]:
        """phase_id -> the metadata the run engine uses (command, patch, acceptance, ...)."""
        return {p.phase_id: {k: v for k, v in p.metadata.items() if k not in _SPEC_FIELD}
                for p in self.phases}

    def run_spec(self, run: dict[str, Any]) -> RunSpec:
        """The run spec of this plan under the given run fields (`run_id`, ...)."""
        tier_specs, phase_specs = [], []
        for index, (tier_id, name, line) in enumerate(self.tiers):
            tier_specs.append(self._model(TierSpec, {"tier_id": tier_id, "tier_index": index,
                                                     "name": name}, line, {}))
        for index, p in enumerate(self.phases):
            fields: dict[str, Any] = {
                "phase_id": p.phase_id, "phase_index": index, "tier_id": p.tier_id,
                "name": p.name, "description": "\n".join(p.description).strip(),
            }
            for key, value in p.metadata.items():
                if key in _SPEC_FIELD:
                    fields[_SPEC_FIELD[key]] = (
                        [s.strip() for s in value.split(",") if s.strip()] if key == "scope"
                        else value)
            phase_specs.append(self._model(PhaseSpec, fields, p.line, p.metadata_lines))
        try:
            return RunSpec.model_validate({"run": run, "tiers": tier_specs,
                                           "phases": phase_specs})
        except ValidationError as exc:
            loc, msg = problems(exc)[0]  # e.g. `tiers`, `run.run_id`
            raise PlanError(f"{self.path}", f"{dotted(loc)}: {msg}" if loc else msg) from None

    def _model(self, model: Any, fields: dict[str, Any], line: int,
               key_lines: dict[str, int]) -> Any:
        try:
            return model.model_validate(fields)
        except ValidationError as exc:
            first = exc.errors()[0]
            name = str(first["loc"][0]) if first["loc"] else ""
            plan_key = next((k for k, f in _SPEC_FIELD.items() if f == name), name)
            at = key_lines.get(plan_key, line)
            raise PlanError(f"{self.path}:{at}", f"{plan_key}: {first['msg']}") from None


def parse_plan(path: Path) -> Plan:
    """Parse a markdown plan; PlanError names `file:line` of the first problem."""
    # lines as editors count them: splitlines() also breaks at form feeds, U+2028 and
    # other separators, which moved every later line number
    text = jsonfile.read_text(path, "plan", PlanError)
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines[-1] == "":  # the newline ending the last line starts no line
        lines.pop()
    title: str | None = None
    title_line = 1
    tiers: list[tuple[str, str, int]] = []
    phases: list[PlannedPhase] = []
    current: PlannedPhase | None = None
    in_metadata = False
    seen: dict[str, int] = {}
    for number, line in enumerate(lines, 1):
        where = f"{path}:{number}"
        if (match := PLAN.match(line)) and title is None and not tiers:
            title, title_line = match["title"], number
            continue
        if match := TIER.match(line):
            _unique(seen, f"tier {match['id']}", number, where)
            tiers.append((match["id"], match["name"], number))
            current, in_metadata = None, False
            continue
        if match := PHASE.match(line):
            if not tiers:
                raise PlanError(where, "a phase before any `## Tier <id>: <name>` heading")
            _unique(seen, f"phase {match['id']}", number, where)
            current = PlannedPhase(match["id"], match["name"], tiers[-1][0], number)
            phases.append(current)
            in_metadata = True
            continue
        if HEADING.match(line) and line.startswith(("# ", "## ", "### ")):
            raise PlanError(where, "expected `## Tier <id>: <name>` or "
                            "`### Phase <id>: <title>`")
        if current is None:
            continue  # text of the plan or of a tier
        if in_metadata and (match := META.match(line)):
            key = match["key"].lower()
            if key not in KEYS:
                raise PlanError(where, f"unknown metadata key {key!r}; known: "
                                + ", ".join(KEYS))
            if key in current.metadata:
                raise PlanError(where, f"{key!r} given twice for phase {current.phase_id}")
            if not match["value"]:
                raise PlanError(where, f"{key!r} has no value")
            if "\x00" in match["value"]:  # e.g. a command the OS would refuse midway
                raise PlanError(where, f"{key!r} holds a NUL character")
            if key == "ci_profile" and match["value"] not in ("normal", "strict"):
                raise PlanError(where, f"ci_profile {match['value']!r} is not normal or strict")
            current.metadata[key] = match["value"]
            current.metadata_lines[key] = number
            continue
        if in_metadata and not line.strip() and not current.metadata:
            continue
        in_metadata = False
        current.description.append(line)
    if title is None:
        raise PlanError(f"{path}:1", "a plan starts with `# Plan: <title>`")
    if not tiers:
        raise PlanError(f"{path}:{len(lines) or 1}", "the plan has no `## Tier` heading")
    for tier_id, _name, at in tiers:
        if not any(p.tier_id == tier_id for p in phases):
            raise PlanError(f"{path}:{at}", f"tier {tier_id} has no phases")
    return Plan(path, title, tiers, phases, title_line)


def _unique(seen: dict[str, int], what: str, number: int, where: str) -> None:
    if what in seen:
        raise PlanError(where, f"{what} is already defined at line {seen[what]}")
    seen[what] = number
