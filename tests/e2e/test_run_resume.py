"""kill -9 at every step boundary of the engine, then `autopack resume`: the run ends as an
uninterrupted one does — same states, same commits (trees and messages), same tags, same
issues — and main and the user's checkout are untouched.

The engine is killed by its own crash points (`AUTOPACK_CRASH_AT`, SIGKILL on itself);
the kills inside builder, static-check, CI and Auditor commands are in test_run_engine.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path
from typing import Any

from autopack.supervisor.faults import POINTS
from tests.e2e.run_helpers import AUTOPACK, PY, SCHEMA_REVISION, script, user_view
from tests.gitutil import git, make_repo

PLAN = """\
    # Plan: Resume
    ## Tier T1: Code
    ### Phase P1: Extra
    - category: feature_scaffolding
    - command: {extra}

    ### Phase P2: Schema
    - category: schema_change
    - command: {schema}
    """




def _setup(work: Path, verdict: str = "approve") -> tuple[Path, Path]:
    patch = SCHEMA_REVISION if verdict == "revise" else None
    approve = script(work, "auditor.py", f"""
        import json
        print(json.dumps({{'verdict': {verdict!r}, 'notes': 'fine', 'patch': {patch!r}}}))
        """)
    # CI is quick; a static check always finds something (a minor issue per phase)
    toml = textwrap.dedent(f"""\
        [ci]
        max_attempts = 1
        [ci.profiles.normal]
        commands = ["{PY} -c pass"]
        [ci.profiles.strict]
        commands = ["{PY} -c pass"]
        [gate]
        static_checks = ["echo 'lint: line too long' && exit 1"]
        [auditor]
        name = "command"
        command = "{approve}"
        """)
    repo = make_repo(work / "project", {"autopack.toml": toml, "src/app.py": "X = 1\n"})
    plan = work / "comprehensive_plan.md"
    plan.write_text(textwrap.dedent(PLAN).format(
        extra=script(work, "extra.py", """
            from pathlib import Path
            Path('src/extra.py').write_text('EXTRA = 1\\n')
            """),
        schema=script(work, "schema.py", """
            from pathlib import Path
            Path('src/schema.py').write_text('VERSION = 2\\n')
            """)))
    return repo, plan


def _autopack(work: Path, *args: str, crash_at: str | None = None
              ) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOPACK_")}
    env["AUTOPACK_DATA_DIR"] = str(work / "data")
    if crash_at is not None:
        env["AUTOPACK_CRASH_AT"] = crash_at
    return subprocess.run([AUTOPACK, *args, "--json"], capture_output=True, text=True,
                          env=env, timeout=600, check=False)


def _outcome(repo: Path, doc: dict[str, Any]) -> dict[str, Any]:
    """What an interrupted run must agree on with an uninterrupted one."""
    branch = doc["integration_branch"]
    commits = []
    for commit in git(repo, "rev-list", f"main..{branch}").splitlines():
        code = git(repo, "diff", f"{commit}~1", commit, "--", ".", ":!.autonomous_runs")
        message = git(repo, "show", "-s", "--format=%B", commit)
        paths = git(repo, "diff", "--name-only", f"{commit}~1", commit, "--",
                    ".autonomous_runs").splitlines()
        if "Autopack-Summary: final" in message:  # the run's record: counters may differ
            commits.append((code, paths, message))
            continue
        issue_files = {path: _observations_aside(json.loads(git(repo, "show",
                                                                f"{commit}:{path}")))
                       for path in paths}
        commits.append((code, issue_files, message))
    tags = git(repo, "for-each-ref", "--format=%(refname:short) %(objectname)",
               "refs/tags/autopack/").splitlines()
    index = json.loads((repo / ".autonomous_runs" / doc["run_id"] / "issues"
                        / "run_issue_index.json").read_text())
    return {
        "state": doc["state"], "failure_reason": doc["failure_reason"],
        "ci_runs_used": doc["ci_runs_used"],  # a CI run recorded is never run again
        "phases": [(p["phase_id"], p["state"], p["snapshot_tag"]) for p in doc["phases"]],
        "tiers": [(t["tier_id"], t["state"], t["cleanliness"]) for t in doc["tiers"]],
        "commits": commits,
        "tags": [t.split(" ")[0] for t in tags],
        "tagged_commits_on_branch": all(
            git(repo, "merge-base", "--is-ancestor", t.split(" ")[1], branch) == ""
            for t in tags),
        "issues": sorted((k, v["effective_severity"]) for k, v in
                         index["issues_by_key"].items()),
        "scratch_branches": git(repo, "branch", "--list", "autopack/scratch/*"),
    }


def _observations_aside(document: Any) -> Any:
    """An issue file without what counts observations: an attempt cut short by the kill
    is made again, and its checks observe the same issue once more (same key, same
    severity, one more occurrence and log path)."""
    if isinstance(document, dict):
        return {k: _observations_aside(v) for k, v in document.items()
                if k not in ("occurrence_count", "evidence_refs")}
    if isinstance(document, list):
        return [_observations_aside(v) for v in document]
    return document


def _killed_and_resumed(tmp_path: Path, verdict: str, points: list[str],
                        extra_attempt: dict[str, list[int]]) -> None:
    """An uninterrupted run, then one run per crash point killed there and resumed; each
    must end as the uninterrupted one did."""
    base_work = tmp_path / "uninterrupted"
    base_work.mkdir()
    repo, plan = _setup(base_work, verdict)
    straight = _autopack(base_work, "run", str(plan), "--repo", str(repo))
    assert straight.returncode == 0, straight.stderr
    expected = _outcome(repo, json.loads(straight.stdout))
    assert expected["state"] == "DONE_SUCCESS" and len(expected["commits"]) == 3
    assert [s for k, s in expected["issues"] if k.startswith("static_check__")] == ["minor"]
    attempts = [p["attempts"] for p in json.loads(straight.stdout)["phases"]]

    for point in points:
        work = tmp_path / point.replace("@", "-")
        work.mkdir()
        repo, plan = _setup(work, verdict)
        before = user_view(repo)
        main = git(repo, "rev-parse", "main")
        crashed = _autopack(work, "run", str(plan), "--repo", str(repo), crash_at=point)
        assert crashed.returncode == -9, (point, crashed.stderr[-2000:])
        resumed = _autopack(work, "resume", "resume", "--repo", str(repo))
        assert resumed.returncode == 0, (point, resumed.stdout, resumed.stderr[-3000:])
        doc = json.loads(resumed.stdout)
        assert _outcome(repo, doc) == expected, point
        # builder attempts: one more only when the kill fell after a Builder attempt
        # began and before CI's result was recorded with it (the Builder runs again)
        assert [p["attempts"] for p in doc["phases"]] == extra_attempt.get(point, attempts), \
            point
        assert git(repo, "rev-parse", "main") == main
        assert user_view(repo) == before, point


def test_a_run_killed_at_every_step_boundary_resumes_to_the_same_result(
        tmp_path: Path) -> None:
    _killed_and_resumed(tmp_path, "approve", list(POINTS),
                        {p: [2, 1] for p in ("attempt_opened", "built", "gated")})


def test_a_run_killed_around_an_auditor_revision_resumes_to_the_same_result(
        tmp_path: Path) -> None:
    """The Auditor revises P2 with a patch: killed after its verdict is recorded, and at
    each step of the revision's own attempt (the third attempt of the run), the resumed
    run commits the same revision without asking again."""
    _killed_and_resumed(tmp_path, "revise",
                        ["reviewed", "attempt_opened@3", "built@3", "gated@3", "ci_done@3"],
                        {})


def test_resume_leaves_an_integration_branch_checked_out_by_the_user_alone(
        tmp_path: Path) -> None:
    """Moving a branch under a checkout moves its HEAD but not its index or files: the
    user's checkout of the integration branch showed the run's new work reverted."""
    repo, plan = _setup(tmp_path)
    crashed = _autopack(tmp_path, "run", str(plan), "--repo", str(repo),
                        crash_at="phase_complete")
    assert crashed.returncode == -9, crashed.stderr[-2000:]
    git(repo, "switch", "-q", "autopack/integration/resume")
    before = user_view(repo)
    refused = _autopack(tmp_path, "resume", "resume", "--repo", str(repo))
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert f"autopack/integration/resume is checked out at {repo}" in refused.stderr
    assert user_view(repo) == before
    assert json.loads(refused.stdout)["exit_code"] == 1
    git(repo, "switch", "-q", "main")
    resumed = _autopack(tmp_path, "resume", "resume", "--repo", str(repo))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert json.loads(resumed.stdout)["state"] == "DONE_SUCCESS"


def test_lock_files_git_left_when_killed_with_the_engine_do_not_block_resume(
        tmp_path: Path) -> None:
    """A SIGKILL while git moves a ref leaves its `<ref>.lock`, and git never removes it:
    every resume then failed on it (`cannot lock ref`), the run stuck for good; a
    left `packed-refs.lock` (git deleting a scratch branch) also blocked new runs."""
    repo, plan = _setup(tmp_path)
    crashed = _autopack(tmp_path, "run", str(plan), "--repo", str(repo), crash_at="ci_done")
    assert crashed.returncode == -9, crashed.stderr[-2000:]
    common = repo / ".git"
    left = [common / "refs/tags/autopack/snapshots/resume/00-P1.lock",
            common / "refs/heads/autopack/integration/resume.lock",
            common / "refs/heads/autopack/scratch/resume/P2/1.lock"]
    packed = common / "packed-refs.lock"  # git's own for the whole repository
    for lock in (*left, packed):
        lock.parent.mkdir(parents=True, exist_ok=True)
        lock.write_text("")
    resumed = _autopack(tmp_path, "resume", "resume", "--repo", str(repo))
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr[-3000:]
    doc = json.loads(resumed.stdout)
    assert doc["state"] == "DONE_SUCCESS"
    assert [p["snapshot_tag"] for p in doc["phases"]] == [
        "autopack/snapshots/resume/00-P1", "autopack/snapshots/resume/01-P2"]
    assert not any(lock.exists() for lock in left)
    assert packed.exists()  # not Autopack's to remove: another git may hold it
    other = textwrap.dedent(PLAN).replace("Plan: Resume", "Plan: Again").format(
        extra=f"{PY} -c pass", schema=f"{PY} -c pass")
    (tmp_path / "again.md").write_text(other)
    again = _autopack(tmp_path, "run", str(tmp_path / "again.md"), "--repo", str(repo))
    assert again.returncode == 0, again.stdout + again.stderr[-3000:]
    packed.unlink()  # once it is gone, the next run clears the scratch branches it kept
    toml = repo / "autopack.toml"  # (in a project of its own: no issue aged into debt)
    toml.write_text('[project]\nid = "third"\n' + toml.read_text())
    git(repo, "commit", "-qam", "another project")
    (tmp_path / "third.md").write_text(other.replace("Plan: Again", "Plan: Third"))
    third = _autopack(tmp_path, "run", str(tmp_path / "third.md"), "--repo", str(repo))
    assert third.returncode == 0, third.stdout + third.stderr[-3000:]
    assert git(repo, "branch", "--list", "autopack/scratch/*") == ""
