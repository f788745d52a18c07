"""Any plan file into a run spec: `comprehensive_plan.md`, or a JSON or YAML run spec with
the fields of `POST /runs/start`. Errors name `file:line` (markdown, YAML, malformed
JSON) or the file and the JSON path."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from autopack.domain.errors import PlanError
from autopack.domain.ids import check_id
from autopack.plan import jsonfile
from autopack.plan.markdown import parse_plan
from autopack.plan.spec import RunSpec


@dataclass(frozen=True)
class LoadedPlan:
    """A plan's run spec and, per phase, what the run engine uses beyond it."""

    spec: RunSpec
    extras: dict[str, dict[str, str]] = field(default_factory=dict)
    places: dict[str, str] = field(default_factory=dict)
    """phase_id -> where the plan file gives it (`file:line`, or `file: $.phases[i]`)."""
    run_id_place: str = "run.run_id"
    """Where the run id comes from: `--run-id`, the markdown title's line, `file: $.run`."""

    def place(self, where: str) -> str:
        """A refusal's `where` as a place in the plan when it names the run id or a phase
        (`phase P1` or `phases[0]...`); anything else as it is."""
        if where == "run.run_id":
            return self.run_id_place
        if where.startswith("phase ") and where[6:] in self.places:
            return self.places[where[6:]]
        if match := re.match(r"phases\[(\d+)\]", where):
            index = int(match[1])
            if index < len(self.spec.phases):
                return self.places.get(self.spec.phases[index].phase_id, where)
        return where


def load_plan(path: Path, run_id: str | None = None) -> LoadedPlan:
    """Read a plan; `run_id` replaces the spec's (markdown: default from the title)."""
    if run_id is not None:
        try:
            check_id(run_id)
        except ValueError as exc:
            raise PlanError("--run-id", str(exc)) from None
    suffix = path.suffix.lower()
    if suffix in (".md", ".markdown"):
        plan = parse_plan(path)
        spec = plan.run_spec({"run_id": _slug(plan.title, path) if run_id is None
                              else run_id})
        return LoadedPlan(spec, plan.phase_extras(),
                          {p.phase_id: f"{path}:{p.line}" for p in plan.phases},
                          "--run-id" if run_id is not None else f"{path}:{plan.title_line}")
    if suffix in (".yaml", ".yml"):
        data = _yaml(path)
    elif suffix == ".json":
        spec = jsonfile.load(RunSpec, path, "plan", PlanError)
        return _loaded(path, spec, run_id)
    else:
        raise PlanError(str(path), "a plan is a .md, .json, .yaml or .yml file")
    spec = jsonfile.validate(RunSpec, data, str(path), PlanError)
    return _loaded(path, spec, run_id)


def _loaded(path: Path, spec: RunSpec, run_id: str | None) -> LoadedPlan:
    """A JSON or YAML plan's spec (`run_id` replacing its own), places by JSON path."""
    return LoadedPlan(_with_run_id(spec, run_id), spec_extras(spec),
                      {p.phase_id: f"{path}: $.phases[{i}]" for i, p in enumerate(spec.phases)},
                      "--run-id" if run_id is not None else f"{path}: $.run.run_id")


def spec_extras(spec: RunSpec) -> dict[str, dict[str, str]]:
    """phase_id -> the `command`, `patch` and `acceptance` its spec gives."""
    return {p.phase_id: {k: v for k, v in (("command", p.command), ("patch", p.patch),
                                           ("acceptance", p.acceptance)) if v}
            for p in spec.phases}


def _with_run_id(spec: RunSpec, run_id: str | None) -> RunSpec:
    if run_id is None:
        return spec
    data = spec.model_dump(exclude_unset=True)
    data["run"]["run_id"] = run_id
    return jsonfile.validate(RunSpec, data, "--run-id", PlanError)


def _yaml(path: Path) -> Any:
    text = jsonfile.read_text(path, "plan", PlanError)
    try:
        return yaml.load(text, Loader=_UniqueKeys)  # a SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise PlanError(where, f"malformed YAML: {getattr(exc, 'problem', exc)}") from None
    except RecursionError:
        raise PlanError(str(path), "the plan is nested too deeply to read") from None
    except ValueError as exc:  # an integer past the interpreter's digit limit
        raise PlanError(str(path), f"the plan holds an unreadable value: {exc}") from None


class _UniqueKeys(yaml.SafeLoader):  # type: ignore[misc]  # (no type stubs for yaml)
    """YAML's safe loader, refusing a key given twice in one mapping (the last one won,
    silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen = set()
        for key_node, _value in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"the key {key!r} is given twice", key_node.start_mark)
            seen.add(key)
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return mapping


def _slug(title: str, path: Path) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", title).strip("-._")[:100]
    if not slug:
        raise PlanError(f"{path}:1", "the plan title makes no run id; pass --run-id")
    return slug.lower()
