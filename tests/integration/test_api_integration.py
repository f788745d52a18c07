"""Runs started on a repository through the API, and GET /runs/{id}/integration_status."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from autopack.domain.errors import Conflict
from autopack.plan.spec import RunSpec
from autopack.supervisor.service import Supervisor
from tests.conftest import LiveServer, run_body
from tests.gitutil import fingerprint, git, make_repo
from tests.integration.helpers import row_counts


def _body(repo: Path, run_id: str = "run-1", **repo_fields: object) -> dict[str, object]:
    body = run_body(run_id)
    body["repo"] = {"path": str(repo), **repo_fields}
    return body


def test_start_on_a_repo_and_read_its_integration_status(
    server: LiveServer, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "repo")
    before = fingerprint(repo)
    main = git(repo, "rev-parse", "main")
    with server.client() as http:
        started = http.post("/runs/start", json=_body(repo))
        assert started.status_code == 201, started.text
        run = started.json()
        assert (run["repo_path"], run["base_commit"], run["integration_branch"]) == (
            str(repo.resolve()), main, "autopack/integration/run-1")
        assert run["promotion_eligible_to_main"] is False
        assert run["promotion_blockers"] == ["run is PHASE_QUEUEING, not DONE_SUCCESS"]
        assert [t["cleanliness"] for t in run["tiers"]] == ["clean", "clean"]
        status = http.get("/runs/run-1/integration_status").json()
        assert status == {
            "run_id": "run-1", "repo_path": str(repo.resolve()),
            "branch": "autopack/integration/run-1", "exists": True, "base_commit": main,
            "commit_count": 0, "main_branch": "main", "ahead_of_main": 0, "behind_main": 0,
            "latest_commit": {"sha": main, "subject": "initial",
                              "committed_at": status["latest_commit"]["committed_at"]},
        }
        sup = Supervisor(server.settings)
        try:
            with sup.apply.attempt("run-1", "P1") as attempt:
                attempt.write_files({"src/new.py": b"N = 1\n"})
                sup.apply.gate("run-1", "P1", attempt)
            sup.apply.snapshot("run-1", "P1", 1, tokens=3)
        finally:
            sup.close()
        (repo / "README.md").write_text("moved\n")
        git(repo, "commit", "-qam", "main moves on")
        status = http.get("/runs/run-1/integration_status").json()
        assert (status["commit_count"], status["ahead_of_main"], status["behind_main"]) == (
            1, 1, 1)
        assert status["latest_commit"]["subject"] == "autopack: P1: Phase 1"
        assert http.get("/runs/nope/integration_status").status_code == 404
    assert git(repo, "rev-parse", "HEAD~1") == main  # only the user's commit moved main
    assert before["HEAD"] == fingerprint(repo)["HEAD"]


def test_a_run_without_a_repository_has_no_integration_branch(server: LiveServer) -> None:
    with server.client() as http:
        http.post("/runs/start", json=run_body("plain")).raise_for_status()
        status = http.get("/runs/plain/integration_status").json()
    assert (status["exists"], status["repo_path"], status["commit_count"]) == (False, None, 0)


@pytest.mark.parametrize(("make_body", "field", "message"), [
    (lambda repo, tmp: _body(tmp / "missing"), "repo.path", "not a directory"),
    (lambda repo, tmp: _body(tmp), "repo.path", "not a git repository"),
    (lambda repo, tmp: _body(repo, main_branch="trunk"), "repo.main_branch",
     "'trunk' does not exist"),
    (lambda repo, tmp: _body(repo, "run..1"), "run.run_id", "cannot name a git branch"),
    (lambda repo, tmp: _body(repo, "run.lock"), "run.run_id", "cannot name a git branch"),
    # these were 500s: a name too long for the filesystem, a home no user has
    (lambda repo, tmp: _body(tmp / ("d" * 300) / "x"), "repo.path", "longer than a file"),
    (lambda repo, tmp: {**_body(tmp / ("d" * 300)), "execute": True}, "repo.path",
     "longer than a file"),
    (lambda repo, tmp: _body(Path("~nosuchuser_autopack/repo")), "repo.path",
     "not a directory"),
], ids=["missing", "not-git", "no-branch", "dots", "lock", "long", "long-execute",
        "no-user"])
def test_bad_repository_input_is_refused_naming_the_field_and_changes_nothing(
    server: LiveServer, tmp_path: Path, make_body, field: str, message: str  # type: ignore[no-untyped-def]
) -> None:
    repo = make_repo(tmp_path / "repo")
    before, refs_before = fingerprint(repo), git(repo, "for-each-ref")
    rows_before = row_counts(server.settings.database_url)
    with server.client() as http:
        response = http.post("/runs/start", json=make_body(repo, tmp_path))
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field and message in str(response.json()["detail"])
    assert row_counts(server.settings.database_url) == rows_before
    assert (fingerprint(repo), git(repo, "for-each-ref")) == (before, refs_before)
    assert not (server.settings.runs_dir / "run-1").exists()


def test_bad_scope_entries_are_refused_by_the_schema(server: LiveServer, tmp_path: Path) -> None:
    body = run_body("run-1")
    body["phases"][1]["scope"] = ["src/", "../etc/"]  # type: ignore[index]
    with server.client() as http:
        response = http.post("/runs/start", json=body)
    assert response.status_code == 422
    assert "phases" in response.text and "not a repository path" in response.text


def test_an_existing_integration_branch_is_never_reused(
    server: LiveServer, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "repo")
    with server.client() as http:
        http.post("/runs/start", json=_body(repo)).raise_for_status()
    # A second database pointed at the same repository, with the same run id.
    settings = server.settings.model_copy(update={
        "database_url": f"sqlite:///{tmp_path / 'other.db'}", "runs_dir": tmp_path / "r2"})
    sup = Supervisor(settings)
    sup.start()
    try:
        with pytest.raises(Conflict, match="already exists"):
            sup.create_run(RunSpec.model_validate(_body(repo)), actor="t")
    finally:
        sup.close()


@pytest.mark.parametrize("blocking", ["autopack/integration/pre/x", "autopack/integration"])
def test_a_branch_in_the_way_of_the_integration_branch_is_409_and_writes_nothing(
    server: LiveServer, tmp_path: Path, blocking: str
) -> None:
    """git cannot hold both `a` and `a/b` as branches: the run is refused before any row,
    file or ref is written (it used to be committed, then left without its branch)."""
    repo = make_repo(tmp_path / "repo")
    git(repo, "branch", blocking, "main")
    refs_before = git(repo, "for-each-ref")
    rows_before = row_counts(server.settings.database_url)
    with server.client() as http:
        refused = http.post("/runs/start", json=_body(repo, "pre"))
        assert refused.status_code == 409, refused.text
        assert f"refs/heads/{blocking} exists" in refused.json()["detail"]
        assert http.get("/runs/pre").status_code == 404
    assert row_counts(server.settings.database_url) == rows_before
    assert not (server.settings.runs_dir / "pre").exists()
    assert git(repo, "for-each-ref") == refs_before


def test_a_refused_run_id_leaves_the_repository_usable_for_the_next(
    server: LiveServer, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "repo")
    git(repo, "branch", "autopack/integration/pre/x", "main")
    with server.client() as http:
        assert http.post("/runs/start", json=_body(repo, "pre")).status_code == 409
        http.post("/runs/start", json=_body(repo, "pre-2")).raise_for_status()
    assert git(repo, "rev-parse", "autopack/integration/pre-2") == git(repo, "rev-parse", "main")


def test_a_run_whose_repository_is_gone_is_a_409_not_a_500(server: LiveServer,
                                                            tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    with server.client() as http:
        http.post("/runs/start", json=_body(repo)).raise_for_status()
        shutil.rmtree(repo)
        gone = http.get("/runs/run-1/integration_status")
    assert gone.status_code == 409, gone.text
    assert "no longer exists" in gone.json()["detail"]
