"""The `autopack` command as a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import LiveServer, run_body

AUTOPACK = str(Path(sys.executable).with_name("autopack"))


def _cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([AUTOPACK, *args], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=120, check=False)


def _env(server: LiveServer) -> dict[str, str]:
    return {**os.environ, "AUTOPACK_DATABASE_URL": server.settings.database_url,
            "AUTOPACK_RUNS_DIR": str(server.settings.runs_dir), "NO_COLOR": "1",
            "COLUMNS": "200"}


def test_status_and_runs_read_what_the_api_wrote(server: LiveServer, tmp_path: Path) -> None:
    with server.client() as http:
        http.post("/runs/start", json=run_body("run-1")).raise_for_status()
        http.post("/runs/run-1/phases/P1/update_status",
                  json={"state": "EXECUTING", "tokens_used": 7}).raise_for_status()
    env = _env(server)
    status = _cli("status", "run-1", "--json", env=env, cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    doc = json.loads(status.stdout)
    assert (doc["state"], doc["tokens_used"], doc["phases"][0]["state"]) == (
        "PHASE_EXECUTION", 7, "EXECUTING")
    listing = _cli("runs", "--json", env=env, cwd=tmp_path)
    assert [r["run_id"] for r in json.loads(listing.stdout)] == ["run-1"]
    table = _cli("runs", env=env, cwd=tmp_path).stdout  # SPEC §11: debt status listed
    assert "debt" in table and "clean" in table.split("run-1")[1]
    human = _cli("status", "run-1", env=env, cwd=tmp_path)
    assert "PHASE_EXECUTION" in human.stdout and "P1" in human.stdout
    # names are shown as written, not read as markup (`[/bold]` was a MarkupError)
    body = run_body("run-2")
    body["tiers"][0]["name"] = "Tier [/bold] one"  # type: ignore[index]
    body["phases"][0]["name"] = "[red]alarm[/red]"  # type: ignore[index]
    with server.client() as http:
        http.post("/runs/start", json=body).raise_for_status()
    marked = _cli("status", "run-2", env={**env, "COLUMNS": "200"}, cwd=tmp_path)
    assert marked.returncode == 0, marked.stderr
    assert "Tier [/bold] one" in marked.stdout and "[red]alarm[/red]" in marked.stdout


def test_status_of_an_unknown_run_exits_2(server: LiveServer, tmp_path: Path) -> None:
    result = _cli("status", "nope", "--json", env=_env(server), cwd=tmp_path)
    assert result.returncode == 2
    assert "run 'nope' not found" in result.stderr
    # --json: the error is the one document on stdout
    assert json.loads(result.stdout) == {"error": "run 'nope' not found", "exit_code": 2}
    regenerated = _cli("regenerate", "nope", env=_env(server), cwd=tmp_path)
    assert regenerated.returncode == 2 and "run 'nope' not found" in regenerated.stderr
    assert not (server.settings.runs_dir / "nope").exists()  # it left nope/.lock
    bad = _cli("runs", "--json", env={**_env(server), "AUTOPACK_API_WRITERS": "0"},
               cwd=tmp_path)
    doc = json.loads(bad.stdout)
    assert (bad.returncode, doc["exit_code"], doc["where"]) == (2, 2, "AUTOPACK_API_WRITERS")


def test_regenerate_rewrites_a_failed_runs_incident_pack(server: LiveServer,
                                                         tmp_path: Path) -> None:
    with server.client() as http:
        http.post("/runs/start", json=run_body("run-1", tiers=1, phases_per_tier=(1,))
                  ).raise_for_status()
        for state in ("EXECUTING", "FAILED"):  # its only phase: the run ends with it
            http.post("/runs/run-1/phases/P1/update_status",
                      json={"state": state}).raise_for_status()
    incident = server.settings.runs_dir / "run-1" / "incident"
    written = {p.name: p.read_bytes() for p in incident.iterdir()}
    assert json.loads(written["failure.json"])["failure_reason"] == "BUILD_FAILURE"
    shutil.rmtree(incident)
    done = _cli("regenerate", "run-1", env=_env(server), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert {p.name: p.read_bytes() for p in incident.iterdir()} == written


def test_reading_where_nothing_ran_creates_nothing(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOPACK_")}
    assert json.loads(_cli("runs", "--json", env=env, cwd=tmp_path).stdout) == []
    assert _cli("status", "r", env=env, cwd=tmp_path).returncode == 2
    assert list(tmp_path.iterdir()) == []


def test_resuming_an_unknown_run_where_nothing_ran_writes_nothing(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    exclude = repo / ".git" / "info" / "exclude"
    before = exclude.read_bytes()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOPACK_")}
    result = _cli("resume", "nope", "--repo", str(repo), env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert "run 'nope' not found" in result.stderr
    assert sorted(p.name for p in repo.iterdir()) == [".git"]  # no .autopack/, no database
    assert exclude.read_bytes() == before


@pytest.mark.parametrize(("variable", "value"), [
    ("AUTOPACK_BUDGETS__RUN__TOKEN_CAP", "-1"),
    ("AUTOPACK_API_WRITERS", "0"),
    ("AUTOPACK_API_WRITERS", "many"),
    # each of these was a traceback before
    ("AUTOPACK_GATE__FORBIDDEN_PATHS", "notjson"),
    ("AUTOPACK_BUDGETS", "notjson"),
    ("AUTOPACK_DATABASE_URL", "sqlite:///"),
    ("AUTOPACK_DATABASE_URL", "sqlitefoo://x"),
    ("AUTOPACK_DATABASE_URL", "postgresql://postgres@127.0.0.1/x"),  # no psycopg driver
    ("AUTOPACK_RUNS_DIR", "/proc/version/runs"),  # under a file
    ("AUTOPACK_DATA_DIR", "/proc/version"),
])
def test_bad_configuration_names_the_variable(tmp_path: Path, variable: str,
                                              value: str) -> None:
    env = {**os.environ, variable: value}
    for command in (("runs",), ("serve", "--port", "0")):
        result = _cli(*command, env=env, cwd=tmp_path)
        assert result.returncode == 2
        assert variable in result.stderr
        assert list(tmp_path.iterdir()) == []


def test_a_database_file_that_is_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "x.db").write_text("not a database")
    env = {**os.environ, "AUTOPACK_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    result = _cli("runs", env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert "cannot open database" in result.stderr and "file is not a database" in (
        result.stderr)
    assert "Traceback" not in result.stderr
    assert (tmp_path / "x.db").read_text() == "not a database"


def test_serve_refuses_a_non_loopback_address(tmp_path: Path) -> None:
    result = _cli("serve", "--host", "0.0.0.0", env=dict(os.environ), cwd=tmp_path)
    assert result.returncode == 2
    assert "--host" in result.stderr and "loopback" in result.stderr


def test_paths_that_are_files_where_folders_go_are_refused_naming_the_option(
    tmp_path: Path
) -> None:
    """Each was a NotADirectoryError / IsADirectoryError / FileExistsError traceback."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOPACK_")}
    env["AUTOPACK_DATA_DIR"] = str(tmp_path / "data")
    afile = tmp_path / "afile"
    afile.write_text("x")
    repo = tmp_path / "repo"
    (repo / "autopack.toml").mkdir(parents=True)
    (repo / ".github").write_text("x")
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "nowhere")
    cases = [
        (("demo", "--dir", str(afile)), "--dir"),
        (("demo", "--dir", str(afile / "sub")), "--dir"),
        (("demo", "--dir", str(dangling)), "--dir"),
        (("init", "--repo", str(repo), "--force"), str(repo / "autopack.toml")),
        (("gate", "--repo", str(tmp_path), "--log-dir", str(afile)), "--log-dir"),
    ]
    for args, named in cases:
        result = _cli(*args, env=env, cwd=tmp_path)
        assert result.returncode == 2, (args, result.stderr)
        assert named in result.stderr and "Traceback" not in result.stderr, result.stderr
    (repo / "autopack.toml").rmdir()
    result = _cli("init", "--repo", str(repo), "--ci", "github", env=env, cwd=tmp_path)
    assert result.returncode == 2 and f"{repo / '.github'} is not a folder" in result.stderr
    assert not (repo / "autopack.toml").exists()  # nothing written before the refusal
    assert afile.read_text() == "x"


@pytest.mark.parametrize(("args", "message"), [
    (("runs", "--limit", "0", "--json"), "Invalid value for '--limit'"),
    (("status", "--json"), "Missing argument 'run_id'"),
    (("run", "--safety-profile", "bogus", "plan.md", "--json"),
     "Invalid value for '--safety-profile'"),
    (("report", "backlog", "--limit", "x", "--json"), "Invalid value for '--limit'"),
])
def test_a_usage_error_with_json_is_one_json_document(
    tmp_path: Path, args: tuple[str, ...], message: str,
) -> None:
    """`--json` prints exactly one JSON document, also when the options are wrong (it
    printed nothing on stdout)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOPACK_")}
    result = _cli(*args, env={**env, "COLUMNS": "200"}, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    doc = json.loads(result.stdout)
    assert doc["exit_code"] == 2 and message in doc["error"]
    assert message in result.stderr  # the person still sees it
    assert list(tmp_path.iterdir()) == []
