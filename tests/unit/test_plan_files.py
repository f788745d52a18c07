"""Plan files: comprehensive_plan.md, JSON and YAML run specs; errors name file:line."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from autopack.ci.promotion_check import check_run_dir
from autopack.domain.errors import ConfigError, InvalidInput, PlanError
from autopack.plan.load import load_plan
from autopack.strategy.ruleset import load_ruleset

GOOD = """\
# Plan: Todo API
Why we build it.

## Tier T1: Storage
### Phase P1.1: Add the Todo model
- category: schema_change
- complexity: high
- scope: src/todo/, tests/
- command: python tools/add_model.py
Free text below the bullets is the phase description.

#### A sub-heading inside the description
More text.

### Phase P1.2: Repository
- patch: patches/repo.diff
- acceptance: list() returns saved todos

## Tier T2: API
### Phase P2.1: Endpoints
Just text.
"""


def _write(tmp_path: Path, text: str, name: str = "comprehensive_plan.md") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_markdown_plan_becomes_a_run_spec(tmp_path: Path) -> None:
    loaded = load_plan(_write(tmp_path, GOOD))
    spec = loaded.spec
    assert spec.run.run_id == "todo-api"
    assert [(t.tier_id, t.tier_index, t.name) for t in spec.tiers] == [
        ("T1", 0, "Storage"), ("T2", 1, "API")]
    first, second, third = spec.phases
    assert (first.phase_id, first.tier_id, first.task_category, first.complexity,
            first.scope) == ("P1.1", "T1", "schema_change", "high", ["src/todo/", "tests/"])
    assert first.description.startswith("Free text below the bullets")
    assert "#### A sub-heading" in first.description and "More text." in first.description
    assert (second.phase_index, third.tier_id, third.description) == (1, "T2", "Just text.")
    assert loaded.extras == {"P1.1": {"command": "python tools/add_model.py"},
                             "P1.2": {"patch": "patches/repo.diff",
                                      "acceptance": "list() returns saved todos"},
                             "P2.1": {}}
    assert load_plan(_write(tmp_path, GOOD), run_id="todo-7").spec.run.run_id == "todo-7"


@pytest.mark.parametrize(("text", "line", "message"), [
    ("## Tier T1: A\n", 1, "starts with `# Plan: <title>`"),
    ("# Plan: X\n### Phase P1: a\n", 2, "a phase before any"),
    ("# Plan: X\n## Tier T1: A\n### Phase P1: a\n- colour: red\n", 4, "unknown metadata key"),
    ("# Plan: X\n## Tier T1: A\n### Phase P1: a\n- category: gardening\n", 4, "category:"),
    ("# Plan: X\n## Tier T1: A\n### Phase P1: a\n- complexity: extreme\n", 4, "complexity:"),
    ("# Plan: X\n## Tier T1: A\n### Phase P1: a\n- ci_profile: lax\n", 4, "not normal or strict"),
    ("# Plan: X\n## Tier T1: A\n### Phase P1: a\n- scope: ../etc/\n", 4, "scope:"),
    ("# Plan: X\n## Tier T1: A\n### Phase P1: a\n- category: docs\n- category: docs\n", 5,
     "given twice"),
    ("# Plan: X\n## Tier T1: A\n### Phase P1: a\n### Phase P1: b\n", 4,
     "phase P1 is already defined at line 3"),
    ("# Plan: X\n## Tier T1: A\n### Phase P1: a\n## Tier T2: B\n", 4, "tier T2 has no phases"),
    ("# Plan: X\n## Tier ../x: A\n### Phase P1: a\n", 2, "tier_id:"),
    ("# Plan: X\n## Tier T1: A\n### Phase P 1: a\n", 3, "expected `## Tier"),
    ("# Plan: X\n## Tire T1: A\n### Phase P1: a\n", 2, "expected `## Tier"),
    ("# Plan: X\nintro\n", 2, "no `## Tier` heading"),
])
def test_markdown_errors_name_file_and_line(tmp_path: Path, text: str, line: int,
                                            message: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(PlanError) as refused:
        load_plan(path)
    assert refused.value.where == f"{path}:{line}"
    assert message in refused.value.message


def test_json_and_yaml_run_specs(tmp_path: Path) -> None:
    yaml_text = ("run: {run_id: y1}\ntiers:\n  - {tier_id: T1, tier_index: 0, name: A}\n"
                 "phases:\n  - {phase_id: P1, phase_index: 0, tier_id: T1, name: Do it}\n")
    assert load_plan(_write(tmp_path, yaml_text, "plan.yaml")).spec.run.run_id == "y1"
    json_text = ('{"run": {"run_id": "j1"}, "tiers": [{"tier_id": "T1", "tier_index": 0, '
                 '"name": "A"}], "phases": [{"phase_id": "P1", "phase_index": 0, '
                 '"tier_id": "T1", "name": "Do it"}]}')
    assert load_plan(_write(tmp_path, json_text, "plan.json"), "j2").spec.run.run_id == "j2"
    broken = _write(tmp_path, "run: {run_id: y1\ntiers: [\n", "broken.yml")
    with pytest.raises(PlanError) as refused:
        load_plan(broken)
    assert refused.value.where.startswith(f"{broken}:") and "malformed YAML" in str(
        refused.value)
    wrong = _write(tmp_path, "run: {run_id: y1}\ntiers: []\nphases: []\n", "wrong.yaml")
    with pytest.raises(PlanError, match=r"\$\.tiers"):
        load_plan(wrong)
    astray = _write(tmp_path, "run: {run_id: y1}\ntiers: [{tier_id: T1, tier_index: 0, "
                    "name: A}]\nphases: [{phase_id: P1, phase_index: 0, tier_id: T9, "
                    "name: B}]\n", "astray.yaml")
    with pytest.raises(PlanError) as refused:  # found across fields, named like any other
        load_plan(astray)
    assert refused.value.where == f"{astray}: $.phases[0].tier_id"
    assert refused.value.message == "unknown tier 'T9'"
    twice = _write(tmp_path, json_text.replace('"run_id": "j1"',
                                               '"run_id": "j1", "run_id": "j3"'), "twice.json")
    with pytest.raises(PlanError, match="'run_id' is given twice") as refused:
        load_plan(twice)  # as YAML's duplicate keys are
    assert refused.value.where == str(twice)
    with pytest.raises(PlanError, match=r"a plan is a \.md"):
        load_plan(_write(tmp_path, "x", "plan.txt"))


@pytest.mark.parametrize("name", ["plan.json", "plan.yaml"])
def test_a_plan_nested_too_deeply_is_a_plan_error(tmp_path: Path, name: str) -> None:
    deep = _write(tmp_path, "[" * 100_000 + "]" * 100_000, name)
    with pytest.raises(PlanError, match="nested too deeply") as refused:
        load_plan(deep)
    assert refused.value.where == str(deep)


def test_a_ruleset_or_run_summary_nested_too_deeply_is_refused_naming_it(
    tmp_path: Path
) -> None:
    deep = '{"a":' * 100_000 + "1" + "}" * 100_000
    ruleset = _write(tmp_path, deep, "ruleset.json")
    with pytest.raises(ConfigError, match="nested too deeply"):
        load_ruleset(ruleset)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "run_summary.json").write_text(deep)
    with pytest.raises(InvalidInput, match="nested too deeply"):
        check_run_dir(tmp_path / "run")


def test_a_byte_order_mark_is_not_part_of_a_plan(tmp_path: Path) -> None:
    markdown = ("# Plan: Calc\n## Tier T1: Code\n### Phase P1: Do it\n"
                "- category: feature_scaffolding\n")
    path = tmp_path / "plan.md"
    path.write_bytes(b"\xef\xbb\xbf" + markdown.encode())
    assert load_plan(path).spec.run.run_id == "calc"
    json_text = ('{"run": {"run_id": "j1"}, "tiers": [{"tier_id": "T1", "tier_index": 0, '
                 '"name": "A"}], "phases": [{"phase_id": "P1", "phase_index": 0, '
                 '"tier_id": "T1", "name": "Do it"}]}')
    (tmp_path / "plan.json").write_bytes(b"\xef\xbb\xbf" + json_text.encode())
    assert load_plan(tmp_path / "plan.json").spec.run.run_id == "j1"


@pytest.mark.parametrize("run_id", ["", "../x", "a b"])
def test_a_bad_run_id_option_is_named(tmp_path: Path, run_id: str) -> None:
    path = _write(tmp_path, "# Plan: Calc\n## Tier T1: Code\n### Phase P1: Do it\n", "p.md")
    with pytest.raises(PlanError) as refused:
        load_plan(path, run_id)
    assert refused.value.where == "--run-id"


def test_a_run_summary_without_tiers_is_unreadable_not_eligible(tmp_path: Path) -> None:
    (tmp_path / "run_summary.json").write_text(
        '{"run_id": "r", "state": "DONE_SUCCESS", "failure_reason": null, '
        '"debt_status": "clean", "tokens_used": 0, "token_cap": 10, "adoption_stage": 2, '
        '"tiers": []}')
    with pytest.raises(InvalidInput, match=r"\$\.tiers"):
        check_run_dir(tmp_path)


_TIER = {"tier_id": "T1", "state": "COMPLETE", "tokens_used": 0, "token_cap": 10,
         "ci_runs_used": 0, "ci_run_cap": 5, "minor_issues_count": 0,
         "major_issues_count": 0, "max_minor_issues_tolerated": 3,
         "max_major_issues_tolerated": 0}
_RUN = {"run_id": "r", "state": "DONE_SUCCESS", "failure_reason": None,
        "debt_status": "clean", "tokens_used": 0, "token_cap": 10, "adoption_stage": 2}


@pytest.mark.parametrize(("run", "tier", "where"), [
    ({"debt_status": "weird"}, {}, "$.debt_status"),
    ({"state": "FINE"}, {}, "$.state"),
    ({"failure_reason": "BORED"}, {}, "$.failure_reason"),
    ({}, {"major_issues_count": -3}, "$.tiers[0].major_issues_count"),
    ({}, {"state": "SHINY"}, "$.tiers[0].state"),
    ({"tokens_used": -1}, {}, "$.tokens_used"),
])
def test_a_run_summary_no_run_could_have_written_is_unreadable(
    tmp_path: Path, run: dict, tier: dict, where: str,
) -> None:
    """`debt_status: "weird"` and negative issue counts were read as eligible."""
    (tmp_path / "run_summary.json").write_text(json.dumps(
        {**_RUN, **run, "tiers": [{**_TIER, **tier}]}))
    with pytest.raises(InvalidInput) as refused:
        check_run_dir(tmp_path)
    assert refused.value.where.endswith(where), refused.value


def test_a_well_formed_run_summary_is_still_eligible(tmp_path: Path) -> None:
    (tmp_path / "run_summary.json").write_text(json.dumps({**_RUN, "tiers": [_TIER]}))
    assert check_run_dir(tmp_path)[1] == []
    (tmp_path / "run_summary.json").write_text(json.dumps(  # a run over its token cap
        {**_RUN, "tokens_used": 11, "tiers": [_TIER]}))
    assert check_run_dir(tmp_path)[1] == ["run tokens 11 exceed the cap 10"]


@pytest.mark.parametrize("name", ["plan.md", "plan.json", "plan.yaml"])
def test_a_plan_that_is_a_fifo_is_refused_not_waited_on(tmp_path: Path, name: str) -> None:
    os.mkfifo(tmp_path / name)
    with pytest.raises(PlanError, match="not a regular file"):
        load_plan(tmp_path / name)


def test_integers_past_the_digit_limit_are_refused_naming_the_file(tmp_path: Path) -> None:
    huge = "1" * 5000
    plan = _write(tmp_path, f'{{"run": {{"run_id": "x", "token_cap": {huge}}}}}', "p.json")
    with pytest.raises(PlanError, match="unreadable value"):
        load_plan(plan)
    with pytest.raises(PlanError, match="unreadable value"):
        load_plan(_write(tmp_path, f"run: {{run_id: x, token_cap: {huge}}}\n", "p.yaml"))
    with pytest.raises(ConfigError, match="unreadable value"):
        load_ruleset(_write(tmp_path, f'{{"version": {huge}}}', "rules.json"))
    (tmp_path / "run_summary.json").write_text(f'{{"run_id": {huge}}}')
    with pytest.raises(InvalidInput, match="unreadable value"):
        check_run_dir(tmp_path)


def test_a_form_feed_does_not_move_the_line_numbers_of_a_markdown_plan(
    tmp_path: Path,
) -> None:
    path = _write(tmp_path, "# Plan: Calc\n\f\n## Tier T1: Code\n### Phase P1: x \u2028y\n"
                  "- colour: red\n", "ff.md")
    with pytest.raises(PlanError) as refused:
        load_plan(path)
    assert refused.value.where == f"{path}:5"


def test_a_yaml_plan_giving_a_key_twice_is_refused_naming_the_line(tmp_path: Path) -> None:
    """The last one won, silently."""
    path = _write(tmp_path, "run:\n  run_id: a\n  run_id: b\ntiers: []\nphases: []\n",
                  "twice.yaml")
    with pytest.raises(PlanError, match="'run_id' is given twice") as refused:
        load_plan(path)
    assert refused.value.where.startswith(f"{path}:3:")


def test_a_plan_over_a_list_limit_names_the_list(tmp_path: Path) -> None:
    text = "# Plan: Big\n" + "".join(
        f"## Tier T{i}: t\n### Phase P{i}: p\n- command: true\n" for i in range(1001))
    with pytest.raises(PlanError, match="tiers: List should have at most 1000 items"):
        load_plan(_write(tmp_path, text, "big.md"))


@pytest.mark.parametrize("key", ["command", "patch"])
def test_a_nul_in_a_phase_command_or_patch_is_refused_naming_the_line(
    tmp_path: Path, key: str,
) -> None:
    """It reached the OS at the first attempt: a traceback, at every resume again."""
    path = _write(tmp_path, f"# Plan: X\n## Tier T1: t\n### Phase P1: p\n- {key}: a\x00b\n",
                  "nul.md")
    with pytest.raises(PlanError, match="holds a NUL") as refused:
        load_plan(path)
    assert refused.value.where == f"{path}:4"
