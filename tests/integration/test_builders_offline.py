"""The offline Builders (command, patch, auto) and the command Auditor, in real attempt
worktrees, with real subprocesses."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from autopack.builders.offline import (
    CommandAuditor,
    CommandBuilder,
    CommandContext,
    PatchBuilder,
    choose_builder,
)
from autopack.builders.protocol import BuilderRequest, ReviewRequest, VerdictKind
from autopack.ci.runner import command_environment
from autopack.domain.errors import InvalidInput
from autopack.vcs.scope import ScopeViolation
from tests.integration.vcs_fixtures import Project

PY = sys.executable
CONTEXT = CommandContext(env=command_environment(), timeout_seconds=60)


@pytest.fixture
def db_url(sqlite_url: str) -> str:
    return sqlite_url


def _request(tmp_path: Path, **extras: str) -> BuilderRequest:
    return BuilderRequest(run_id="run-1", phase_id="P1", name="Phase 1", description="",
                          task_category=None, complexity=None, builder_mode=None,
                          allowed_scope=None, attempt_number=1, plan_dir=tmp_path,
                          extras=extras, feedback="the last test failed")


def test_a_command_builder_changes_the_worktree_and_reports_usage_and_issues(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-must-not-leak")
    script = tmp_path / "builder.py"
    script.write_text(
        "import json, os, pathlib\n"
        "pathlib.Path('src/new.py').write_text('NEW = 1\\n')\n"
        "pathlib.Path('leak.txt').write_text(os.environ.get('OPENAI_API_KEY', 'none'))\n"
        "feedback = pathlib.Path(os.environ['AUTOPACK_FEEDBACK_FILE']).read_text()\n"
        "pathlib.Path(os.environ['AUTOPACK_USAGE_FILE']).write_text(json.dumps("
        "{'input_tokens': 1200, 'output_tokens': 300}))\n"
        "pathlib.Path(os.environ['AUTOPACK_ISSUES_FILE']).write_text(json.dumps([{"
        "'issue_key': 'todo_left', 'description': feedback}]))\n")
    project.start()
    builder = CommandBuilder(CommandContext(env=command_environment(), timeout_seconds=60))
    with project.sup.apply.attempt("run-1", "P1") as attempt:
        result = builder.build(_request(tmp_path, command=f"{PY} {script}"), attempt,
                               tmp_path / "logs")
        change = project.sup.apply.gate("run-1", "P1", attempt)
    assert result.ok, result.summary
    assert (result.usage.total, [i.issue_key for i in result.suggested_issues]) == (
        1500, ["todo_left"])
    assert result.suggested_issues[0].description == "the last test failed"
    assert sorted(f.path for f in change.files) == ["leak.txt", "src/new.py"]
    assert b"+none" in change.diff and b"sk-must-not-leak" not in change.diff
    project.assert_untouched()


def test_a_failing_or_hanging_command_builder_is_a_failed_result(
    project: Project, tmp_path: Path
) -> None:
    project.start()
    with project.sup.apply.attempt("run-1", "P1") as attempt:
        failed = CommandBuilder(CONTEXT).build(
            _request(tmp_path, command="echo broken >&2; exit 4"), attempt, tmp_path / "a")
        hung = CommandBuilder(CommandContext(env=CONTEXT.env, timeout_seconds=1)).build(
            _request(tmp_path, command="sleep 60"), attempt, tmp_path / "b")
        bad_usage = CommandBuilder(CONTEXT).build(
            _request(tmp_path, command='echo "{\\"input_tokens\\": -3}" > '
                                       '"$AUTOPACK_USAGE_FILE"'), attempt, tmp_path / "c")
    assert not failed.ok and "exited 4" in failed.summary and "broken" in failed.summary
    assert not hung.ok and "timed out" in hung.summary
    assert not bad_usage.ok and "usage or issues file is invalid" in bad_usage.summary
    project.assert_untouched()


def test_the_patch_builder_applies_the_plans_patch(project: Project, tmp_path: Path) -> None:
    (tmp_path / "patches").mkdir()
    (tmp_path / "patches" / "util.diff").write_text(
        "--- a/src/util.py\n+++ b/src/util.py\n@@ -1 +1 @@\n-X = 1\n+X = 2\n")
    (tmp_path / "patches" / "evil.diff").write_text(
        "--- /dev/null\n+++ b/../escape.txt\n@@ -0,0 +1 @@\n+x\n")
    project.start()
    with project.sup.apply.attempt("run-1", "P1") as attempt:
        ok = PatchBuilder().build(_request(tmp_path, patch="patches/util.diff"), attempt,
                                  tmp_path / "l")
        assert (attempt.path / "src/util.py").read_text() == "X = 2\n"
        missing = PatchBuilder().build(_request(tmp_path, patch="patches/none.diff"), attempt,
                                       tmp_path / "l")
        again = PatchBuilder().build(_request(tmp_path, patch="patches/util.diff"), attempt,
                                     tmp_path / "l")
    assert ok.ok and not missing.ok and "cannot read the patch" in missing.summary
    assert not again.ok and "does not apply" in again.summary
    with pytest.raises(ScopeViolation), project.sup.apply.attempt("run-1", "P2") as attempt:
        PatchBuilder().build(_request(tmp_path, patch="patches/evil.diff"), attempt,
                             tmp_path / "l")
    project.assert_untouched()


def test_auto_chooses_the_phases_own_builder() -> None:
    assert choose_builder("auto", {"command": "make"}, "P1", CONTEXT).name == "command"
    assert choose_builder("auto", {"patch": "x.diff"}, "P1", CONTEXT).name == "patch"
    with pytest.raises(InvalidInput, match="neither `command` nor `patch`"):
        choose_builder("auto", {}, "P1", CONTEXT)
    with pytest.raises(InvalidInput, match="needs `- command:`"):
        choose_builder("command", {"patch": "x"}, "P1", CONTEXT)
    with pytest.raises(InvalidInput, match="not an offline builder"):
        choose_builder("openai", {}, "P1", CONTEXT)


def _review() -> ReviewRequest:
    return ReviewRequest(run_id="run-1", phase_id="P1", name="Phase 1", description="d",
                         task_category="schema_change", complexity="high",
                         auditor_profile="schema_review", reason="auto_apply_disabled",
                         diff="--- a/x\n+++ b/x\n", logs={"ci": "green"})


@pytest.mark.parametrize(("program", "verdict", "notes"), [
    ("import json,sys; r=json.load(sys.stdin); print('thinking...'); "
     "print(json.dumps({'verdict': 'approve', 'notes': r['auditor_profile'] + ' ok', "
     "'usage': {'input_tokens': 10}}))", VerdictKind.APPROVE, "schema_review ok"),
    ("import json; print(json.dumps({'verdict': 'revise', 'notes': 'fix', "
     "'patch': '--- a/x\\n'}))", VerdictKind.REVISE, "fix"),
    ("import json; print(json.dumps({'verdict': 'escalate', 'notes': 'risky'}))",
     VerdictKind.ESCALATE, "risky"),
    ("print('not json')", VerdictKind.ESCALATE, "not a verdict"),
    ("import json; print(json.dumps({'verdict': 'maybe'}))", VerdictKind.ESCALATE,
     "not a verdict"),
    ("raise SystemExit(2)", VerdictKind.ESCALATE, "exited 2"),
])
def test_the_command_auditor(tmp_path: Path, program: str, verdict: VerdictKind,
                             notes: str) -> None:
    script = tmp_path / "auditor.py"
    script.write_text(program)
    answer = CommandAuditor(f"{PY} {script}", CONTEXT).review(_review(), tmp_path,
                                                              tmp_path / "logs")
    assert answer.verdict is verdict and notes in answer.notes
    if verdict is VerdictKind.APPROVE:
        assert answer.usage.input_tokens == 10
        assert json.loads((tmp_path / "logs" / "auditor.log").read_text().splitlines()[-1])
