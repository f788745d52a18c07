"""`autopack run` end to end: a real git repository, real pytest as CI, command builders,
the CLI as a subprocess. Main and the user's checkout stay as they were."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from autopack.db.issues import IssueReport
from autopack.issues.rules import IssueSource, Severity
from autopack.plan.spec import RunSpec
from autopack.settings import Settings
from autopack.supervisor.service import Supervisor
from tests.conftest import run_body
from tests.e2e.run_helpers import (
    AUTOPACK,
    PY,
    breaks_addition,
    one_phase,
    project,
    run,
    script,
    user_view,
)
from tests.gitutil import git, make_repo
from tests.integration.ci_helpers import PYTEST, project_toml


def test_a_plan_runs_to_done_success(tmp_path: Path) -> None:
    repo = project(tmp_path)
    before = user_view(repo)
    sub = script(tmp_path, "sub.py", """
        from pathlib import Path
        Path('src/calc.py').write_text(Path('src/calc.py').read_text()
                                       + '\\n\\ndef sub(a, b):\\n    return a - b\\n')
        """)
    test = script(tmp_path, "test_sub.py", """
        from pathlib import Path
        Path('tests/test_sub.py').write_text(
            'from calc import sub\\n\\n\\ndef test_sub():\\n    assert sub(3, 1) == 2\\n')
        """)
    done = run(tmp_path, repo, f"""\
        # Plan: Calculator
        ## Tier T1: Code
        ### Phase P1: Add subtraction
        - category: feature_scaffolding
        - scope: src/
        - command: {sub}
        ## Tier T2: Tests
        ### Phase P2: Test subtraction
        - category: tests
        - scope: tests/
        - command: {test}
        """)
    assert done.returncode == 0, done.stdout + done.stderr
    doc = json.loads(done.stdout)
    assert (doc["state"], doc["integration_branch"]) == ("DONE_SUCCESS",
                                                         "autopack/integration/calculator")
    assert [(p["phase_id"], p["state"], p["attempts"]) for p in doc["phases"]] == [
        ("P1", "COMPLETE", 1), ("P2", "COMPLETE", 1)]
    assert doc["promotion_eligible_to_main"] is True and doc["ci_runs_used"] == 2
    # Not a terminal: plain progress lines on stderr, in order.
    lines = [line for line in done.stderr.splitlines() if line.startswith("[calculator] ")]
    steps = [line.split("  (")[0].removeprefix("[calculator] ") for line in lines]
    assert steps[:-1] == ["P1 EXECUTING", "P1 GATE", "P1 CI_RUNNING", "P1 COMPLETE",
                          "P2 EXECUTING", "P2 GATE", "P2 CI_RUNNING", "P2 COMPLETE"]
    assert steps[-1].startswith("run summaries committed as ")
    # the summaries ride on the integration branch, where the promotion workflow reads them
    branch = "autopack/integration/calculator"
    assert git(repo, "log", "-1", "--format=%s", branch) == \
        "autopack: run summary of calculator"
    committed = tmp_path / "committed" / "calculator"
    committed.mkdir(parents=True)
    (committed / "run_summary.json").write_text(git(
        repo, "show", f"{branch}:.autonomous_runs/calculator/run_summary.json"))
    assert json.loads((committed / "run_summary.json").read_text())["state"] == \
        "DONE_SUCCESS"
    check = subprocess.run([AUTOPACK, "promotion", "check", str(committed)],
                           capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    files = git(repo, "ls-tree", "-r", "--name-only", branch, ".autonomous_runs").split()
    assert ".autonomous_runs/calculator/run_summary.md" in files
    assert not [f for f in files if "/logs/" in f or "/incident/" in f]
    tags = git(repo, "tag", "--list", "autopack/snapshots/calculator/*").split()
    assert tags == ["autopack/snapshots/calculator/00-P1", "autopack/snapshots/calculator/01-P2"]
    assert "def sub" in git(repo, "show", "autopack/integration/calculator:src/calc.py")
    assert user_view(repo) == before
    assert "/.autonomous_runs/" in (repo / ".git/info/exclude").read_text()
    assert (repo / ".autonomous_runs/calculator/run_summary.json").exists()


def test_a_debt_cleanup_phase_no_builder_can_take_ends_the_run_for_a_person(
    tmp_path: Path
) -> None:
    """The strategy adds a debt-cleanup phase for the project's aged issues; the offline
    builders have no command for it. The run ends DONE_FAILED_REQUIRES_HUMAN_REVIEW by
    itself (it used to stop with exit 2 and stay mid-run, and every resume did the same)."""
    repo = project(tmp_path)
    earlier = Supervisor(Settings(database_url=f"sqlite:///{repo / '.autopack/autopack.db'}",
                                  runs_dir=tmp_path / "earlier", data_dir=tmp_path / "data"))
    earlier.start()
    try:  # a minor issue seen in four runs of the project ages into effective major
        for n in range(4):
            earlier.create_run(RunSpec.model_validate(run_body(f"old-{n}")), "test")
            earlier.record_issue(f"old-{n}", "P1", IssueReport(
                "lint_unused", Severity.MINOR, IssueSource.STATIC_CHECK, "lint",
                evidence_refs=("src/calc.py:1",)))
    finally:
        earlier.close()
    sub = script(tmp_path, "sub.py", """
        from pathlib import Path
        Path('src/calc.py').write_text(Path('src/calc.py').read_text() + '\\nX = 1\\n')
        """)
    plan = f"""\
        # Plan: Calc
        ## Tier T1: Code
        ### Phase P1: Add a constant
        - category: feature_scaffolding
        - command: {sub}
        """
    done = run(tmp_path, repo, plan)
    assert done.returncode == 1, done.stdout + done.stderr
    doc = json.loads(done.stdout)
    assert doc["state"] == "DONE_FAILED_REQUIRES_HUMAN_REVIEW"
    failure = (repo / ".autonomous_runs/calc/incident/failure.json").read_text()
    assert "no builder can take phase debt-cleanup" in failure
    assert [(p["phase_id"], p["state"]) for p in doc["phases"]] == [
        ("P1", "COMPLETE"), ("debt-cleanup", "SKIPPED")]


def test_a_persistently_failing_test_ends_in_build_failure(tmp_path: Path) -> None:
    repo = project(tmp_path, "[budgets.tier]\nci_runs_per_phase = 4\n")
    breaks = script(tmp_path, "break.py", """
        from pathlib import Path
        Path('src/calc.py').write_text('def add(a, b):\\n    return a - b\\n')
        """)
    done = run(tmp_path, repo, f"""\
        # Plan: Broken
        ## Tier T1: Code
        ### Phase P1: Break addition
        - category: feature_scaffolding
        - command: {breaks}
        ### Phase P2: Never reached
        - category: docs
        - command: true
        """)
    assert done.returncode == 1, done.stderr
    doc = json.loads(done.stdout)
    assert (doc["state"], doc["failure_reason"]) == ("DONE_FAILED_BUILD_FAILURE",
                                                     "BUILD_FAILURE")
    assert [(p["state"], p["attempts"]) for p in doc["phases"]] == [("FAILED", 3),
                                                                    ("SKIPPED", 0)]
    index = json.loads((repo / ".autonomous_runs/broken/issues/run_issue_index.json")
                       .read_text())
    assert "ci_test_failure__tests.test_calc::test_add" in index["issues_by_key"]
    incident = repo / ".autonomous_runs/broken/incident"
    assert sorted(p.name for p in incident.iterdir()) == [
        "README.md", "budgets.json", "failure.json", "issues.json", "last_diff.patch",
        "last_gate.json", "log_tails.txt", "reviews.json", "strategy.json"]
    failure = json.loads((incident / "failure.json").read_text())
    assert (failure["failure_reason"], failure["failing_phase"]) == ("BUILD_FAILURE", "P1")
    assert "3 attempts spent" in failure["detail"]
    assert "return a - b" in (incident / "last_diff.patch").read_text()
    assert "test_add" in (incident / "log_tails.txt").read_text()
    assert "DONE_FAILED_BUILD_FAILURE" in (incident / "README.md").read_text()
    # no phase reached the branch; only the summaries did (a promotion check blocks)
    assert git(repo, "log", "--format=%s", "main..autopack/integration/broken") == \
        "autopack: run summary of broken"
    assert git(repo, "diff", "--name-only", "main", "autopack/integration/broken",
               "--", ":!.autonomous_runs") == ""


def test_ci_is_retried_no_more_than_the_phases_planned_ci_max_attempts(
    tmp_path: Path,
) -> None:
    """The strategy's per-phase `ci_max_attempts` (lower for high-risk work, or set by a
    ruleset) was ignored: every attempt ran CI `[ci] max_attempts` times."""
    repo = project(tmp_path, '[budgets.tier]\nci_runs_per_phase = 10\n'
                             '[project]\nruleset = "rules.json"\n')
    (repo / "rules.json").write_text(json.dumps(
        {"categories": {"feature_scaffolding": {"ci_max_attempts": 1}}}))
    git(repo, "add", "rules.json")
    git(repo, "commit", "-qm", "ruleset")
    done = run(tmp_path, repo, one_phase("Once", breaks_addition(tmp_path)))
    doc = json.loads(done.stdout)
    assert (done.returncode, doc["failure_reason"]) == (1, "BUILD_FAILURE"), done.stdout
    assert (doc["phases"][0]["attempts"], doc["ci_runs_used"]) == (3, 3)  # not 3 x 2


def test_builder_modes_cap_changes_only_from_adoption_stage_2(tmp_path: Path) -> None:
    """SPEC §11: below stage 2 builder modes are labels; a `tweak_light` phase changing
    three files was refused at stage 1 (too_many_files)."""
    files = script(tmp_path, "three.py", """
        from pathlib import Path
        for name in ('a', 'b', 'c'):
            Path(f'src/{name}.py').write_text(f'{name.upper()} = 1\\n')
        """)
    plan = f"""\
        # Plan: Labels
        ## Tier T1: Code
        ### Phase P1: Three files
        - category: feature_scaffolding
        - builder_mode: tweak_light
        - command: {files}
        """
    ended = {}
    for stage in (1, 2):
        (tmp_path / str(stage)).mkdir()
        repo = project(tmp_path / str(stage), '[project]\nruleset = "rules.json"\n')
        (repo / "rules.json").write_text(json.dumps({"adoption_stage": stage}))
        git(repo, "add", "rules.json")
        git(repo, "commit", "-qm", "ruleset")
        ended[stage] = json.loads(run(tmp_path / str(stage), repo, plan).stdout)["state"]
    assert ended == {1: "DONE_SUCCESS", 2: "DONE_FAILED_POLICY_VIOLATION"}


def test_the_tier_ci_run_cap_ends_a_red_phase_in_budget_exhausted(tmp_path: Path) -> None:
    repo = project(tmp_path)  # 1 phase: ci_run_cap 2, spent by the first attempt's 2 runs
    done = run(tmp_path, repo, one_phase("Capped", breaks_addition(tmp_path)))
    doc = json.loads(done.stdout)
    assert (done.returncode, doc["failure_reason"], doc["ci_runs_used"]) == (
        1, "BUDGET_EXHAUSTED", 2)


def test_a_scope_violation_ends_in_policy_violation(tmp_path: Path) -> None:
    repo = project(tmp_path)
    sneaky = script(tmp_path, "sneaky.py", """
        from pathlib import Path
        Path('.github/workflows').mkdir(parents=True, exist_ok=True)
        Path('.github/workflows/x.yml').write_text('on: push\\n')
        """)
    done = run(tmp_path, repo, f"""\
        # Plan: Sneaky
        ## Tier T1: Code
        ### Phase P1: Touch workflows
        - command: {sneaky}
        """)
    doc = json.loads(done.stdout)
    assert done.returncode == 1 and doc["failure_reason"] == "POLICY_VIOLATION"
    gate = json.loads((repo / ".autonomous_runs/sneaky/incident/last_gate.json").read_text())
    assert gate["refusals"][0]["rule"] == "forbidden_path"


def test_a_builder_turning_the_integration_branch_into_a_symref_to_main(
    tmp_path: Path,
) -> None:
    """Under isolation "none" a builder can run git on the user's repository: made a
    symbolic ref to main, the integration branch had Autopack's own snapshot move main
    (and the user's checkout show the run reverted). Now the run stops as a policy
    violation and main stays."""
    repo = project(tmp_path)
    symref = script(tmp_path, "symref.py", f"""
        import subprocess
        from pathlib import Path
        subprocess.run(['git', '-C', {str(repo)!r}, 'symbolic-ref',
                        'refs/heads/autopack/integration/symref', 'refs/heads/main'],
                       check=True)
        Path('src/extra.py').write_text('X = 1\\n')
        """)
    before = user_view(repo)
    done = run(tmp_path, repo, f"""\
        # Plan: Symref
        ## Tier T1: Code
        ### Phase P1: Point the branch at main
        - category: feature_scaffolding
        - command: {symref}
        """)
    doc = json.loads(done.stdout)
    assert (doc["state"], doc["failure_reason"]) == ("DONE_FAILED_POLICY_VIOLATION",
                                                     "POLICY_VIOLATION"), done.stderr
    assert user_view(repo) == before  # main and the checkout as they were


def test_a_patch_escaping_the_repository_is_refused_at_intake(tmp_path: Path) -> None:
    repo = project(tmp_path)
    before = user_view(repo)
    (tmp_path / "escape.patch").write_text(
        "diff --git a/../escaped.txt b/../escaped.txt\nnew file mode 100644\n"
        "--- /dev/null\n+++ b/../escaped.txt\n@@ -0,0 +1 @@\n+out\n")
    done = run(tmp_path, repo, """\
        # Plan: Escape
        ## Tier T1: Code
        ### Phase P1: Write outside
        - patch: escape.patch
        """)
    doc = json.loads(done.stdout)
    assert done.returncode == 1 and doc["failure_reason"] == "POLICY_VIOLATION", done.stderr
    assert doc["phases"][0]["attempts"] == 3  # refused every time, never committed
    index = json.loads((repo / ".autonomous_runs/escape/issues/run_issue_index.json")
                       .read_text())
    assert any(k.startswith("gate_unsafe_path__") for k in index["issues_by_key"])
    assert not (repo.parent / "escaped.txt").exists()
    assert user_view(repo) == before


def test_a_token_budget_ends_in_budget_exhausted(tmp_path: Path) -> None:
    repo = project(tmp_path, "[budgets.phase]\nincident_token_cap = 1000\n")
    greedy = script(tmp_path, "greedy.py", """
        import json, os
        from pathlib import Path
        Path(os.environ['AUTOPACK_USAGE_FILE']).write_text(json.dumps({'input_tokens': 5000}))
        Path('src/calc.py').write_text('def add(a, b):\\n    return 0\\n')
        """)
    done = run(tmp_path, repo, f"""\
        # Plan: Greedy
        ## Tier T1: Code
        ### Phase P1: Spend
        - category: feature_scaffolding
        - command: {greedy}
        """)
    doc = json.loads(done.stdout)
    assert done.returncode == 1 and doc["failure_reason"] == "BUDGET_EXHAUSTED"
    assert doc["phases"][0]["attempts"] == 1 and doc["tokens_used"] == 5000


def test_a_green_last_phase_over_the_run_cap_still_ends_in_budget_exhausted(
    tmp_path: Path,
) -> None:
    """Caps were checked only before an attempt: a last phase spending far past the
    run's token cap ended DONE_SUCCESS."""
    repo = project(tmp_path, "[budgets.run]\ntoken_cap = 1000\n")
    lavish = script(tmp_path, "lavish.py", """
        import json, os
        from pathlib import Path
        Path(os.environ['AUTOPACK_USAGE_FILE']).write_text(json.dumps({'input_tokens': 5000}))
        Path('src/extra.py').write_text('X = 1\\n')
        """)
    done = run(tmp_path, repo, f"""\
        # Plan: Lavish
        ## Tier T1: Code
        ### Phase P1: Spend
        - category: feature_scaffolding
        - command: {lavish}
        """)
    doc = json.loads(done.stdout)
    assert done.returncode == 1, done.stderr
    assert (doc["state"], doc["failure_reason"]) == ("DONE_FAILED_BUDGET_EXHAUSTED",
                                                     "BUDGET_EXHAUSTED")
    assert doc["tokens_used"] == 5000 and doc["phases"][0]["state"] == "FAILED"
    assert git(repo, "rev-list", "--count", "main..autopack/integration/lavish") == "1"


def test_a_last_phase_past_the_minor_issue_total_ends_in_budget_exhausted(
    tmp_path: Path,
) -> None:
    """SPEC §9: exceeding max_minor_issues_total fails the run; checked only before the
    next step, a last phase past it ended DONE_SUCCESS."""
    repo = project(tmp_path, '[gate]\nstatic_checks = ["false", "exit 3", "exit 4", '
                             '"exit 5"]\n')  # 4 minor issues, 3 allowed for one phase
    done = run(tmp_path, repo, """\
        # Plan: Minors
        ## Tier T1: Code
        ### Phase P1: Small change
        - category: feature_scaffolding
        - command: true
        """)
    doc = json.loads(done.stdout)
    assert (done.returncode, doc["state"]) == (1, "DONE_FAILED_BUDGET_EXHAUSTED"), done.stdout
    failure = json.loads((repo / ".autonomous_runs/minors/incident/failure.json").read_text())
    assert "4 minor issues exceed max_minor_issues_total 3" in failure["detail"]


def test_no_auto_apply_needs_an_auditor_approval(tmp_path: Path) -> None:
    approve = script(tmp_path, "approve.py", """
        import json, sys
        request = json.load(sys.stdin)
        print(json.dumps({'verdict': 'approve', 'notes': request['auditor_profile']}))
        """)
    escalate = script(tmp_path, "escalate.py", """
        import json
        print(json.dumps({'verdict': 'escalate', 'notes': 'too risky'}))
        """)
    change = script(tmp_path, "schema.py", """
        from pathlib import Path
        Path('src/schema.py').write_text('VERSION = 2\\n')
        """)
    plan = f"""\
        # Plan: Schema
        ## Tier T1: Data
        ### Phase P1: Bump the schema
        - category: schema_change
        - command: {change}
        """
    for auditor, state in ((approve, "DONE_SUCCESS"),
                           (escalate, "DONE_FAILED_REQUIRES_HUMAN_REVIEW"), (None, None)):
        work = tmp_path / f"case-{state}"
        work.mkdir()
        toml = "" if auditor is None else f'[auditor]\nname = "command"\ncommand = "{auditor}"\n'
        repo = project(work, toml)
        done = run(work, repo, plan)
        doc = json.loads(done.stdout)
        if auditor is None:
            assert doc["state"] == "DONE_FAILED_REQUIRES_HUMAN_REVIEW"
        else:
            assert doc["state"] == state, done.stderr


def test_a_malformed_plan_exits_2_naming_file_and_line(tmp_path: Path) -> None:
    repo = project(tmp_path)
    done = run(tmp_path, repo, """\
        # Plan: Bad
        ## Tier T1: Code
        ### Phase P1: x
        - colour: red
        """)
    assert done.returncode == 2
    assert f"{tmp_path / 'comprehensive_plan.md'}:4" in done.stderr
    assert not (repo / ".autonomous_runs").exists()
    unbuildable = run(tmp_path, repo, """\
        # Plan: Bare
        ## Tier T1: Code
        ### Phase P1: Nothing to build with
        - category: docs
        """)
    assert unbuildable.returncode == 2
    assert f"{tmp_path / 'comprehensive_plan.md'}:3: phase P1" in unbuildable.stderr
    assert "neither `command` nor `patch`" in unbuildable.stderr
    assert not (repo / ".autonomous_runs").exists()
    assert git(repo, "branch", "--list", "autopack/*") == ""


def test_an_isolation_that_cannot_run_is_refused_before_the_run_starts(
        tmp_path: Path) -> None:
    repo = project(tmp_path)
    toml = (repo / "autopack.toml").read_text().replace(
        "[ci]\n", '[ci]\nisolation = "docker"\n', 1)
    (repo / "autopack.toml").write_text(toml)
    git(repo, "commit", "-qam", "docker isolation without an image")
    done = run(tmp_path, repo, """\
        # Plan: Iso
        ## Tier T1: Code
        ### Phase P1: x
        - command: true
        """)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "ci.image" in done.stderr and 'isolation = "docker" needs an image' in done.stderr
    assert git(repo, "branch", "--list", "autopack/*") == ""
    assert not (repo / ".autonomous_runs").exists()


def test_a_not_clean_tier_fails_a_safety_critical_run_but_not_a_normal_one(
    tmp_path: Path,
) -> None:
    checks = '[gate]\nstatic_checks = ["false", "exit 3", "exit 4"]\n'  # 3 minor issues
    tweak = script(tmp_path, "tweak.py", """
        from pathlib import Path
        Path('src/extra.py').write_text('X = 1\\n')
        """)
    plan = f"""\
        # Plan: Careful
        ## Tier T1: Code
        ### Phase P1: Small change
        - category: feature_scaffolding
        - command: {tweak}
        ## Tier T2: More
        ### Phase P2: Docs
        - category: docs
        - command: true
        """
    (tmp_path / "critical").mkdir()
    repo = project(tmp_path / "critical", checks)
    done = run(tmp_path / "critical", repo, plan, "--safety-profile", "safety_critical")
    doc = json.loads(done.stdout)
    assert (done.returncode, doc["state"]) == (1, "DONE_FAILED_REQUIRES_HUMAN_REVIEW")
    # decided before the tier's last phase is committed (completing a run's last phase
    # ends it in DONE_SUCCESS): its green work waits for a person in the incident pack
    assert [p["state"] for p in doc["phases"]] == ["FAILED", "SKIPPED"]
    assert doc["tiers"][0]["cleanliness"] == "not_clean"
    # the last tier alike: it ended DONE_SUCCESS (and `run --json` printed an illegal
    # transition error instead of the run)
    (tmp_path / "last").mkdir()
    repo = project(tmp_path / "last", checks)
    one_tier = plan.split("        ## Tier T2")[0]
    last = run(tmp_path / "last", repo, one_tier, "--safety-profile", "safety_critical")
    ended = json.loads(last.stdout)
    assert (last.returncode, ended["state"]) == (1, "DONE_FAILED_REQUIRES_HUMAN_REVIEW"), \
        last.stdout
    assert ended["promotion_eligible_to_main"] is False
    assert (repo / ".autonomous_runs/careful/incident/failure.json").is_file()
    # SPEC §10: the tier summary names its cleanliness and flags
    summary = (repo / ".autonomous_runs/careful/tiers/tier_00_code.md").read_text()
    assert "| cleanliness | `not_clean`: tier failed; 3 minor issues, 1 tolerated |" in summary
    (tmp_path / "normal").mkdir()
    repo = project(tmp_path / "normal", checks)
    relaxed = json.loads(run(tmp_path / "normal", repo, plan).stdout)
    assert relaxed["state"] == "DONE_SUCCESS"  # tier summaries do not block progress ...
    assert relaxed["tiers"][0]["cleanliness"] == "not_clean"
    assert relaxed["promotion_eligible_to_main"] is False  # ... but they block promotion


def test_a_run_killed_mid_phase_resumes_to_the_same_result(tmp_path: Path) -> None:
    marker = tmp_path / "killed-once"
    add_sub = script(tmp_path, "sub.py", """
        from pathlib import Path
        Path('src/calc.py').write_text(Path('src/calc.py').read_text()
                                       + '\\n\\ndef sub(a, b):\\n    return a - b\\n')
        """)
    killer = script(tmp_path, "killer.py", f"""
        import os, signal
        from pathlib import Path
        marker = Path({str(marker)!r})
        if not marker.exists():  # the first time: kill -9 the engine (our shell's parent)
            marker.write_text("x")
            stat = Path(f"/proc/{{os.getppid()}}/stat").read_text()
            os.kill(int(stat.rsplit(")", 1)[1].split()[1]), signal.SIGKILL)
        Path('src/more.py').write_text('MORE = 1\\n')
        """)
    plan = f"""\
        # Plan: Calc
        ## Tier T1: Code
        ### Phase P1: Subtraction
        - category: feature_scaffolding
        - command: {add_sub}
        ### Phase P2: More
        - category: feature_scaffolding
        - command: {killer}
        """
    (tmp_path / "a").mkdir()
    repo = project(tmp_path / "a")
    before = user_view(repo)
    crashed = run(tmp_path / "a", repo, plan)
    assert crashed.returncode == -9 and marker.exists()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOPACK_")}
    env["AUTOPACK_DATA_DIR"] = str(tmp_path / "a" / "data")
    resumed = subprocess.run([AUTOPACK, "resume", "calc", "--repo", str(repo), "--json"],
                             capture_output=True, text=True, env=env, timeout=600, check=False)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    doc = json.loads(resumed.stdout)
    # P2's first attempt was begun (and is counted) when its builder was killed
    assert [(p["phase_id"], p["state"], p["attempts"]) for p in doc["phases"]] == [
        ("P1", "COMPLETE", 1), ("P2", "COMPLETE", 2)]
    # The same as a run that was never interrupted.
    (tmp_path / "b").mkdir()
    other = project(tmp_path / "b")
    straight = json.loads(run(tmp_path / "b", other, plan).stdout)
    assert straight["state"] == doc["state"] == "DONE_SUCCESS"
    for name in ("00-P1", "01-P2"):
        tag = f"autopack/snapshots/calc/{name}"
        assert git(repo, "rev-parse", f"{tag}^{{tree}}") == git(other, "rev-parse",
                                                               f"{tag}^{{tree}}")
    # two phases and the run's summaries
    assert git(repo, "rev-list", "--count", "main..autopack/integration/calc") == "3"
    assert git(repo, "branch", "--list", "autopack/scratch/*") == ""
    assert user_view(repo) == before
    again = subprocess.run([AUTOPACK, "resume", "calc", "--repo", str(repo), "--json"],
                           capture_output=True, text=True, env=env, timeout=600, check=False)
    assert again.returncode == 0 and json.loads(again.stdout)["phases"] == doc["phases"]


def test_autopack_demo_runs_the_bundled_example_to_done_success(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOPACK_")}
    env["AUTOPACK_DATA_DIR"] = str(tmp_path / "data")
    target = tmp_path / "calculator"
    done = subprocess.run([AUTOPACK, "demo", "--dir", str(target), "--json"],
                          capture_output=True, text=True, env=env, timeout=600, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    doc = json.loads(done.stdout)
    assert doc["state"] == "DONE_SUCCESS" and len(doc["phases"]) == 4
    assert doc["promotion_eligible_to_main"] is True
    index = json.loads((target / ".autonomous_runs/calculator/issues/run_issue_index.json")
                       .read_text())
    assert {k: v["severity"] for k, v in index["issues_by_key"].items()} == {
        "flaky_test__tests.test_divide::test_divide_warm_cache": "minor",
        "static_check__grep_-n_TODO_changed_files": "minor"}
    assert len(git(target, "tag", "--list", "autopack/snapshots/calculator/*").split()) == 4
    assert git(target, "status", "--porcelain") == ""
    busy = subprocess.run([AUTOPACK, "demo", "--dir", str(target)], capture_output=True,
                          text=True, env=env, timeout=60, check=False)
    assert busy.returncode == 2 and "not empty" in busy.stderr
    promoted = subprocess.run([AUTOPACK, "promote", "calculator", "--json"], cwd=target,
                              capture_output=True, text=True, env=env, timeout=60, check=False)
    assert promoted.returncode == 0, promoted.stderr
    assert json.loads(promoted.stdout)["action"] == "fast-forward"
    assert "def divide" in (target / "src/calc/__init__.py").read_text()
    assert git(target, "status", "--porcelain") == ""
    # a finished, promoted run is only reported: nothing more goes on its branch
    refs = git(target, "for-each-ref")
    again = subprocess.run([AUTOPACK, "resume", "calculator", "--json"], cwd=target,
                           capture_output=True, text=True, env=env, timeout=60, check=False)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["state"] == "DONE_SUCCESS"
    assert git(target, "for-each-ref") == refs
    # the run's files, tracked in main since the promotion, are rewritten as they were
    assert git(target, "status", "--porcelain") == ""
    elsewhere = subprocess.run([AUTOPACK, "resume", "calculator", "--repo", str(tmp_path)],
                               cwd=target, capture_output=True, text=True, env={
                                   **env, "AUTOPACK_DATABASE_URL":
                                   f"sqlite:///{target / '.autopack/autopack.db'}"},
                               timeout=60, check=False)
    assert elsewhere.returncode == 2 and f"is in {target}" in elsewhere.stderr


KILL_ENGINE = """
import os, signal
from pathlib import Path
marker = Path({marker!r})
if not marker.exists():  # the first time only: kill -9 the engine (our shell's parent)
    marker.write_text("x")
    stat = Path(f"/proc/{{os.getppid()}}/stat").read_text()
    os.kill(int(stat.rsplit(")", 1)[1].split()[1]), signal.SIGKILL)
"""


def test_a_run_killed_at_each_step_resumes_to_the_same_result(tmp_path: Path) -> None:
    """kill -9 the engine while its gate's static check, its CI and its Auditor run; each
    time `autopack resume` finishes the run as an uninterrupted one would."""
    for step in ("static_check", "ci", "auditor"):
        work = tmp_path / step
        work.mkdir()
        marker = work / "killed"
        killer = work / "kill_engine.py"
        killer.write_text(KILL_ENGINE.format(marker=str(marker)))
        kill = f"{PY} {killer}"
        approve = script(work, "approve.py", """
            import json
            print(json.dumps({'verdict': 'approve'}))
            """)
        toml = {
            "static_check": f'[gate]\nstatic_checks = ["{kill}"]\n',
            "auditor": f'[auditor]\nname = "command"\ncommand = "{kill} && {approve}"\n',
            "ci": "",
        }[step]
        ci = [f"{kill} && {PYTEST}"] if step == "ci" else [PYTEST]
        repo = make_repo(work / "project", {
            "autopack.toml": project_toml(ci, normal=ci) + toml,
            "pyproject.toml": "[tool.pytest.ini_options]\npythonpath = ['src']\n",
            "src/calc.py": "def add(a, b):\n    return a + b\n",
            "tests/test_calc.py": "from calc import add\n\n\ndef test_add():\n"
                                  "    assert add(2, 2) == 4\n",
        })
        change = script(work, "change.py", """
            from pathlib import Path
            Path('src/extra.py').write_text('EXTRA = 1\\n')
            """)
        category = "schema_change" if step == "auditor" else "feature_scaffolding"
        plan = f"""\
            # Plan: Crash
            ## Tier T1: Code
            ### Phase P1: Extra
            - category: {category}
            - command: {change}
            """
        crashed = run(work, repo, plan)
        assert crashed.returncode == -9 and marker.exists(), (step, crashed.stderr)
        env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOPACK_")}
        env["AUTOPACK_DATA_DIR"] = str(work / "data")
        resumed = subprocess.run([AUTOPACK, "resume", "crash", "--repo", str(repo), "--json"],
                                 capture_output=True, text=True, env=env, timeout=600,
                                 check=False)
        assert resumed.returncode == 0, (step, resumed.stdout, resumed.stderr)
        doc = json.loads(resumed.stdout)
        assert [(p["state"], p["snapshot_tag"]) for p in doc["phases"]] == [
            ("COMPLETE", "autopack/snapshots/crash/00-P1")], step
        # the phase and the run's summaries
        assert git(repo, "rev-list", "--count", "main..autopack/integration/crash") == "2"
        assert "EXTRA = 1" in git(repo, "show", "autopack/integration/crash:src/extra.py")
        assert git(repo, "branch", "--list", "autopack/scratch/*") == "", step


def test_the_duration_budget_counts_wall_clock_time(tmp_path: Path) -> None:
    repo = project(tmp_path, "[budgets.run]\nmax_duration_minutes = 0.002\n")  # 0.12 s
    slow = script(tmp_path, "slow.py", """
        import time
        from pathlib import Path
        time.sleep(0.5)  # the work itself takes longer than the whole budget
        Path('src/calc.py').write_text('def add(a, b):\\n    return 0\\n')
        """)
    done = run(tmp_path, repo, f"""\
        # Plan: Slow
        ## Tier T1: Code
        ### Phase P1: Slowly break
        - category: feature_scaffolding
        - command: {slow}
        """)
    doc = json.loads(done.stdout)
    assert (done.returncode, doc["failure_reason"]) == (1, "BUDGET_EXHAUSTED")
    failure = json.loads((repo / ".autonomous_runs/slow/incident/failure.json").read_text())
    assert "max_duration_minutes" in failure["detail"]


def test_the_server_drives_a_run_it_is_asked_to_execute(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    repo = project(tmp_path)
    sub = script(tmp_path, "sub.py", """
        from pathlib import Path
        Path('src/calc.py').write_text(Path('src/calc.py').read_text()
                                       + '\\n\\ndef sub(a, b):\\n    return a - b\\n')
        """)
    body = {
        "run": {"run_id": "served"}, "repo": {"path": str(repo)}, "execute": True,
        "tiers": [{"tier_id": "T1", "tier_index": 0, "name": "Code"}],
        "phases": [{"phase_id": "P1", "phase_index": 0, "tier_id": "T1", "name": "Subtract",
                    "task_category": "feature_scaffolding", "command": sub}],
    }
    with server.client() as http:
        started = http.post("/runs/start", json=body)
        assert started.status_code == 201, started.text
        ended = http.get("/runs/served/wait", params={"timeout": 300}).json()
        assert ended["state"] == "DONE_SUCCESS", ended
        assert ended["phases"][0]["builder_attempts"] == 1
        no_repo = http.post("/runs/start", json={**body, "run": {"run_id": "x"}, "repo": None})
        assert no_repo.status_code == 422 and no_repo.json()["field"] == "repo"
        bare = {**body, "run": {"run_id": "y"}}
        bare["phases"] = [{**body["phases"][0], "command": None}]  # type: ignore[index]
        unbuildable = http.post("/runs/start", json=bare)
        assert unbuildable.status_code == 422 and "neither `command` nor `patch`" in (
            unbuildable.text)
        assert unbuildable.json()["field"] == "phases[0].command"  # the body's, not the CLI's
        assert http.get("/runs/y").status_code == 404
        odd = http.post("/runs/start", json={**body, "run": {"run_id": "z"},
                                             "auditor": "oracle"})
        assert odd.status_code == 422 and "not an offline auditor" in odd.text
        assert odd.json()["field"] == "auditor"
        evil = http.post("/runs/start", json={**body, "run": {"run_id": "v"},
                                              "builder": "evil"})
        assert evil.status_code == 422 and evil.json()["field"] == "builder", evil.text
        other = project(tmp_path / "docker")
        toml = (other / "autopack.toml").read_text()
        (other / "autopack.toml").write_text(toml.replace("[ci]\n", '[ci]\nisolation = '
                                                          '"docker"\n', 1))
        git(other, "commit", "-qam", "docker without an image")
        docker = http.post("/runs/start", json={**body, "run": {"run_id": "w"},
                                                "repo": {"path": str(other)}})
        assert docker.status_code == 422 and "needs an image" in docker.text, docker.text
        assert http.get("/runs/z").status_code == http.get("/runs/w").status_code == 404
    assert "def sub" in git(repo, "show", "autopack/integration/served:src/calc.py")


def test_a_server_restart_picks_up_runs_it_was_driving(  # type: ignore[no-untyped-def]
    settings, tmp_path: Path, request
) -> None:
    from autopack.plan.spec import RunSpec
    from autopack.supervisor.service import Supervisor

    repo = project(tmp_path)
    more = script(tmp_path, "more.py", """
        from pathlib import Path
        Path('src/more.py').write_text('MORE = 1\\\\n')
        """)
    spec = RunSpec.model_validate({
        "run": {"run_id": "orphan"}, "repo": {"path": str(repo)},
        "tiers": [{"tier_id": "T1", "tier_index": 0, "name": "Code"}],
        "phases": [{"phase_id": "P1", "phase_index": 0, "tier_id": "T1", "name": "More",
                    "task_category": "feature_scaffolding", "command": more}],
    })
    sup = Supervisor(settings)
    sup.start()
    try:  # a run the previous server process accepted and never finished
        sup.create_run(spec, "api", inputs={"builder": "auto", "auditor": None,
                                            "plan_dir": str(repo), "executor": "server",
                                            "extras": {"P1": {"command": more}}})
    finally:
        sup.close()
    server = request.getfixturevalue("server")  # starting it resumes the run
    with server.client() as http:
        ended = http.get("/runs/orphan/wait", params={"timeout": 300}).json()
    assert ended["state"] == "DONE_SUCCESS", ended


def test_the_live_view_shows_tiers_phases_and_budgets(settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from rich.console import Console

    from autopack.plan.spec import RunSpec
    from autopack.progress import Progress, render
    from autopack.supervisor.service import Supervisor

    sup = Supervisor(settings)
    sup.start()
    try:
        view = sup.create_run(RunSpec.model_validate({
            "run": {"run_id": "live", "token_cap": 1000},
            "tiers": [{"tier_id": "T1", "tier_index": 0, "name": "A"}],
            "phases": [{"phase_id": "P1", "phase_index": 0, "tier_id": "T1", "name": "x"}],
        }), "test")
    finally:
        sup.close()
    console = Console(record=True, width=120, force_terminal=True)
    console.print(render(view, "P1 EXECUTING"))
    shown = console.export_text()
    assert "run live  PHASE_QUEUEING  tokens 0/1,000" in shown
    assert "T1 (PENDING)" in shown and "P1" in shown and "0/3" in shown
    assert "now: P1 EXECUTING" in shown
    with Progress(console) as live:  # a terminal: a Live display, not lines
        assert live.live is not None
        live(view, "P1 EXECUTING")


def test_a_repository_linking_autopacks_folders_elsewhere_is_refused(tmp_path: Path) -> None:
    """A repository can commit `.autonomous_runs` or `.autopack` as links: the run would
    write its database and files outside the repository through them."""
    outside = tmp_path / "outside"
    outside.mkdir()
    for name in (".autonomous_runs", ".autopack"):
        repo = project(tmp_path / name)
        (repo / name).symlink_to(outside)
        git(repo, "add", name)
        git(repo, "commit", "-q", "-m", "link")
        refused = run(tmp_path / name, repo, """\
            # Plan: Calc
            ## Tier T1: Code
            ### Phase P1: Nothing
            - category: docs
            - command: true
            """)
        assert refused.returncode == 2, refused.stderr
        assert f"{repo / name}: is a link or a file" in refused.stderr
        assert list(outside.iterdir()) == []
    # the database file itself, committed as a link (SQLite followed it)
    repo = project(tmp_path / "db-link")
    (repo / ".autopack").mkdir()
    (repo / ".autopack" / "autopack.db").symlink_to(outside / "stolen.db")
    git(repo, "add", "-f", ".autopack")
    git(repo, "commit", "-q", "-m", "link")
    refused = run(tmp_path / "db-link", repo, """\
        # Plan: Calc
        ## Tier T1: Code
        ### Phase P1: Nothing
        - category: docs
        - command: true
        """)
    assert refused.returncode == 2, refused.stderr
    assert f"{repo / '.autopack' / 'autopack.db'}: is a link" in refused.stderr
    assert list(outside.iterdir()) == []
