"""`autopack run` refusing its input: exit 2 naming what is wrong, and nothing written —
no database, no `.autopack/` or `.autonomous_runs/`, no exclude entry, no branch — and
the user's checkout as it was. Also what it sets up when it does run (git's exclude
entries) and a plan run again."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.run_helpers import project, run, user_view
from tests.gitutil import git

PLAN = """\
    # Plan: Calc
    ## Tier T1: Code
    ### Phase P1: Note
    - category: docs
    - command: {command}
    """


def _toml(extra: str) -> Callable[[Path], str]:
    def change(repo: Path) -> str:
        path = repo / "autopack.toml"
        path.write_text(extra + path.read_text())
        git(repo, "commit", "-qam", "configure")
        return PLAN.format(command="true")
    return change


def _toml_replace(old: str, new: str) -> Callable[[Path], str]:
    def change(repo: Path) -> str:
        path = repo / "autopack.toml"
        path.write_text(path.read_text().replace(old, new, 1))
        git(repo, "commit", "-qam", "configure")
        return PLAN.format(command="true")
    return change


def _committed_only(repo: Path) -> str:
    """autopack.toml broken at main's tip, fixed in the working tree (the run reads [ci]
    and [gate] at its base commit, so this one is the one that counts)."""
    path = repo / "autopack.toml"
    good = path.read_text()
    path.write_text(good + "[bogus]\nx = 1\n")
    git(repo, "commit", "-qam", "broken")
    path.write_text(good)
    return PLAN.format(command="true")


CASES: dict[str, tuple[Callable[[Path], str], str]] = {
    "no-main-branch": (_toml('[project]\nmain_branch = "trunk"\n'),
                       "autopack.toml: $.project.main_branch"),
    "missing-ruleset": (_toml('[project]\nruleset = "rules.json"\n'), "rules.json"),
    "secret-pass-env": (_toml_replace("[ci]\n", '[ci]\npass_env = ["MY_TOKEN"]\n'),
                        "MY_TOKEN"),
    "no-command": (lambda repo: PLAN.replace("- command: {command}\n", ""),
                   "comprehensive_plan.md:3: phase P1 has neither `command` nor `patch`"),
    "ref-unsafe-phase-id": (lambda repo: PLAN.format(command="true").replace(
        "Phase P1:", "Phase P1.lock:"), "comprehensive_plan.md:3: "),
    "committed-config": (_committed_only, "autopack.toml@"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_refused_input_writes_nothing(tmp_path: Path, case: str) -> None:
    repo = project(tmp_path)
    plan = CASES[case][0](repo)
    exclude = (repo / ".git" / "info" / "exclude").read_bytes()
    before = user_view(repo)
    done = run(tmp_path, repo, plan)
    assert done.returncode == 2, done.stdout + done.stderr
    assert CASES[case][1] in done.stderr
    assert json.loads(done.stdout)["exit_code"] == 2
    assert not (repo / ".autopack").exists() and not (repo / ".autonomous_runs").exists()
    assert (repo / ".git" / "info" / "exclude").read_bytes() == exclude
    assert git(repo, "branch", "--list", "autopack/*") == ""
    assert user_view(repo) == before


def test_running_a_plan_again_is_refused_naming_the_run(tmp_path: Path) -> None:
    """It used to report the earlier run as if it were the new plan's (or drive a
    crashed earlier run with the new plan's builders)."""
    repo = project(tmp_path)
    first = run(tmp_path, repo, PLAN.format(command="true"))
    assert first.returncode == 0, first.stderr
    changed = (PLAN.format(command="true").rstrip(" ")
               + "    ### Phase P2: More\n    - command: true\n")
    again = run(tmp_path, repo, changed)
    assert again.returncode == 2, again.stdout + again.stderr
    assert "run 'calc' already exists here (DONE_SUCCESS)" in again.stderr
    assert "autopack resume calc" in again.stderr
    assert json.loads(again.stdout)["where"] == str(tmp_path / "comprehensive_plan.md") + ":1"
    other = run(tmp_path, repo, changed, "--run-id", "calc-2")
    assert other.returncode == 0, other.stderr
    assert [p["phase_id"] for p in json.loads(other.stdout)["phases"]] == ["P1", "P2"]


def test_a_run_from_a_linked_worktree_is_kept_out_of_git(tmp_path: Path) -> None:
    """Its `.git` is a file: the exclude entries go where git reads them (the common
    `info/exclude`), and bytes already there are kept as they are."""
    repo = project(tmp_path)
    exclude = repo / ".git" / "info" / "exclude"
    exclude.write_bytes(b"# caf\xe9\n*.tmp\n")
    linked = tmp_path / "linked"
    git(repo, "worktree", "add", "-q", "-b", "work", str(linked))
    done = run(tmp_path, linked, PLAN.format(command="true"))
    assert done.returncode == 0, done.stderr
    assert (linked / ".autopack" / "autopack.db").is_file()
    assert exclude.read_bytes() == b"# caf\xe9\n*.tmp\n/.autopack/\n/.autonomous_runs/\n"
    assert git(linked, "status", "--porcelain") == ""


def test_an_exclude_file_git_cannot_use_is_refused_naming_it(tmp_path: Path) -> None:
    repo = project(tmp_path)
    exclude = repo / ".git" / "info" / "exclude"
    exclude.unlink()
    exclude.mkdir()
    done = run(tmp_path, repo, PLAN.format(command="true"))
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"{exclude}: is not a plain file" in done.stderr
    assert not (repo / ".autopack").exists()


def test_a_run_whose_committed_config_cannot_be_read_ends_instead_of_stalling(
    server, tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    """A run started before the check existed (or through a path that skips it) met the
    unreadable file at every gate and never ended; the server refuses such a start."""
    repo = project(tmp_path)
    _committed_only(repo)
    body = {
        "run": {"run_id": "broken"}, "repo": {"path": str(repo)}, "execute": True,
        "tiers": [{"tier_id": "T1", "tier_index": 0, "name": "Code"}],
        "phases": [{"phase_id": "P1", "phase_index": 0, "tier_id": "T1", "name": "X",
                    "task_category": "docs", "command": "true"}],
    }
    with server.client() as http:
        refused = http.post("/runs/start", json=body)
        assert refused.status_code == 422, refused.text
        assert "autopack.toml@" in refused.json()["detail"]
        assert http.get("/runs/broken").status_code == 404
        # started without execute, then driven: the engine ends it
        started = http.post("/runs/start", json={**body, "execute": False})
        assert started.status_code == 201, started.text
    from autopack.project_config import load_project_config
    from autopack.supervisor.engine import Engine, EngineOptions
    from autopack.supervisor.service import Supervisor

    supervisor = Supervisor(server.settings)
    try:
        ended = Engine(supervisor, load_project_config(repo), EngineOptions(
            extras={"P1": {"command": "true"}})).run("broken")
        reasons = [e.reason or "" for e in supervisor.events("broken")]
    finally:
        supervisor.close()
    assert (ended.run.state, ended.run.failure_reason) == ("DONE_FAILED_ENVIRONMENT",
                                                            "ENVIRONMENT")
    assert any("autopack.toml@" in reason for reason in reasons), reasons
