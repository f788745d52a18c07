"""The Auditor in `autopack run`, with a `command` auditor: revisions that take the
governed path, escalation on repeated low-signal Builder attempts, and a phase failed when
the Auditor's own attempts run out. Main and the user's checkout stay as they were."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.e2e.run_helpers import SCHEMA_REVISION, project, run, script, user_view
from tests.gitutil import git

FIX_ADD = '''diff --git a/src/calc.py b/src/calc.py
--- a/src/calc.py
+++ b/src/calc.py
@@ -1,2 +1,2 @@
 def add(a, b):
-    return a - b
+    return a + b
'''


ROOMY = "[budgets.tier]\nci_runs_per_phase = 10\n"
"""Room in the tier's CI run cap for several red attempts."""


def _auditor(tmp_path: Path, verdict: str, patch: str | None) -> tuple[str, Path]:
    """A command auditor that logs every request it gets and answers `verdict`."""
    seen = tmp_path / "auditor-requests.jsonl"
    command = script(tmp_path, "auditor.py", f"""
        import json, sys
        request = json.load(sys.stdin)
        with open({str(seen)!r}, "a") as log:
            log.write(json.dumps(request) + "\\n")
        print(json.dumps({{"verdict": {verdict!r}, "notes": "seen " + request["reason"],
                          "patch": {patch!r}, "usage": {{"input_tokens": 7}}}}))
        """)
    return f'[auditor]\nname = "command"\ncommand = "{command}"\n', seen


def _requests(seen: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in seen.read_text().splitlines()]


SCHEMA_PLAN = """\
    # Plan: Schema
    ## Tier T1: Data
    ### Phase P1: Bump the schema
    - category: schema_change
    - command: {change}
    """


def _run_schema(tmp_path: Path, repo: Path) -> subprocess.CompletedProcess[str]:
    """The one-phase schema plan (auto_apply false) whose builder sets VERSION = 2."""
    change = script(tmp_path, "schema.py", """
        from pathlib import Path
        Path('src/schema.py').write_text('VERSION = 2\\n')
        """)
    return run(tmp_path, repo, SCHEMA_PLAN.format(change=change))


def test_an_auditor_revision_takes_the_gate_and_ci_path_and_is_committed(
        tmp_path: Path) -> None:
    toml, seen = _auditor(tmp_path, "revise", SCHEMA_REVISION)
    repo = project(tmp_path, toml)
    before = user_view(repo)
    done = _run_schema(tmp_path, repo)
    doc = json.loads(done.stdout)
    assert doc["state"] == "DONE_SUCCESS", done.stderr
    (phase,) = doc["phases"]
    assert phase["auditor_reviews"] == ["auto_apply_disabled:revise"]
    assert phase["tokens_used"] == 7  # the Auditor's usage is charged to the phase
    (request,) = _requests(seen)
    assert "+VERSION = 2" in request["diff"] and request["auditor_profile"] == "schema_review"
    # the committed change is the Builder's plus the Auditor's patch, gated and green
    assert git(repo, "show", "autopack/integration/crash:src/schema.py"
               .replace("crash", doc["run_id"])) == "VERSION = 3"
    assert user_view(repo) == before


def test_an_auditor_revision_that_breaks_ci_fails_the_run_for_human_review(
        tmp_path: Path) -> None:
    broken = SCHEMA_REVISION.replace("+VERSION = 3", "+VERSION = 1")
    toml, seen = _auditor(tmp_path, "revise", broken)
    repo = project(tmp_path, toml)
    before = user_view(repo)
    change = script(tmp_path, "schema.py", """
        from pathlib import Path
        Path('src/schema.py').write_text('VERSION = 2\\n')
        Path('tests/test_schema.py').write_text(
            'from schema import VERSION\\n\\n\\ndef test_version():\\n'
            '    assert VERSION >= 2\\n')
        """)
    # a second phase gives the tier room for the revision's CI runs (2 per phase)
    done = run(tmp_path, repo, SCHEMA_PLAN.format(change=change).rstrip(" ") + f"""\
    ### Phase P2: Notes
    - category: docs
    - command: {change}
    """)
    doc = json.loads(done.stdout)
    assert done.returncode == 1
    assert doc["state"] == "DONE_FAILED_REQUIRES_HUMAN_REVIEW", done.stderr
    assert [p["snapshot_tag"] for p in doc["phases"]] == [None, None]
    assert git(repo, "diff", "--name-only", "main", doc["integration_branch"], "--",
               ":!.autonomous_runs") == ""  # only the run's summaries reached the branch
    failure = json.loads((repo / ".autonomous_runs" / doc["run_id"] / "incident"
                          / "failure.json").read_text())
    assert "Auditor's 1 attempts did not resolve" in failure["detail"]
    assert len(_requests(seen)) == 1  # schema_change allows one Auditor attempt
    (review,) = json.loads((repo / ".autonomous_runs" / doc["run_id"] / "incident"
                            / "reviews.json").read_text())
    assert (review["reason"], review["verdict"], review["patch"]) == (
        "auto_apply_disabled", "revise", broken)
    assert user_view(repo) == before


def _run_bug(tmp_path: Path, repo: Path) -> subprocess.CompletedProcess[str]:
    """A one-phase plan whose builder makes the same broken change every time."""
    bug = script(tmp_path, "bug.py", """
        from pathlib import Path
        Path('src/calc.py').write_text('def add(a, b):\\n    return a - b\\n')
        """)
    return run(tmp_path, repo, f"""\
        # Plan: Calc
        ## Tier T1: Code
        ### Phase P1: Rewrite add
        - category: feature_scaffolding
        - command: {bug}
        """)


def test_an_auditor_patch_into_git_is_refused_like_any_change(tmp_path: Path) -> None:
    hook = ("diff --git a/.git/hooks/pre-commit b/.git/hooks/pre-commit\n"
            "new file mode 100755\n--- /dev/null\n+++ b/.git/hooks/pre-commit\n"
            "@@ -0,0 +1 @@\n+echo pwned\n")
    toml, seen = _auditor(tmp_path, "revise", hook)
    repo = project(tmp_path, toml)
    before = user_view(repo)
    done = _run_schema(tmp_path, repo)
    doc = json.loads(done.stdout)
    assert doc["state"] == "DONE_FAILED_REQUIRES_HUMAN_REVIEW", done.stderr
    index = json.loads((repo / ".autonomous_runs" / doc["run_id"] / "issues"
                        / "run_issue_index.json").read_text())
    assert any(k.startswith("gate_git_dir__") for k in index["issues_by_key"])
    assert [r["reason"] for r in _requests(seen)] == ["auto_apply_disabled"]
    assert not (repo / ".git/hooks/pre-commit").exists()
    assert git(repo, "diff", "--name-only", "main", doc["integration_branch"], "--",
               ":!.autonomous_runs") == ""
    assert user_view(repo) == before


def test_repeated_low_signal_builder_attempts_go_to_the_auditor(tmp_path: Path) -> None:
    toml, seen = _auditor(tmp_path, "revise", FIX_ADD)
    repo = project(tmp_path, toml + ROOMY)
    before = user_view(repo)
    done = _run_bug(tmp_path, repo)
    doc = json.loads(done.stdout)
    assert doc["state"] == "DONE_SUCCESS", done.stderr
    (phase,) = doc["phases"]
    # two attempts failed the same test the same way; the third call is the Auditor's
    assert phase["attempts"] == 2
    assert phase["auditor_reviews"] == ["low_signal_attempts:revise"]
    (request,) = _requests(seen)
    assert "ci_test_failure__tests.test_calc::test_add" in request["logs"]["failure"]
    assert "-    return a + b" in request["diff"]
    branch = doc["integration_branch"]
    assert "return a + b" in git(repo, "show", f"{branch}:src/calc.py")
    assert user_view(repo) == before


def test_without_an_auditor_low_signal_attempts_run_to_the_builder_cap(
        tmp_path: Path) -> None:
    repo = project(tmp_path, ROOMY)
    before = user_view(repo)
    done = _run_bug(tmp_path, repo)
    doc = json.loads(done.stdout)
    assert doc["state"] == "DONE_FAILED_BUILD_FAILURE"
    assert doc["phases"][0]["attempts"] == 3
    assert doc["phases"][0]["auditor_reviews"] == []
    assert user_view(repo) == before


def test_an_auditor_escalating_a_failure_loop_ends_the_run_for_human_review(
        tmp_path: Path) -> None:
    toml, seen = _auditor(tmp_path, "escalate", None)
    repo = project(tmp_path, toml)
    before = user_view(repo)
    nothing = script(tmp_path, "nothing.py", "import sys\nsys.exit(3)\n")
    done = run(tmp_path, repo, f"""\
        # Plan: Calc
        ## Tier T1: Code
        ### Phase P1: Do nothing
        - category: feature_scaffolding
        - command: {nothing}
        """)
    doc = json.loads(done.stdout)
    assert doc["state"] == "DONE_FAILED_REQUIRES_HUMAN_REVIEW", done.stderr
    assert doc["phases"][0]["attempts"] == 2
    assert [r["reason"] for r in _requests(seen)] == ["low_signal_attempts"]
    assert user_view(repo) == before
