"""One engine per run: a second `autopack resume` of a run being driven is refused and
changes nothing; once the first engine is gone, resume works."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import textwrap
from pathlib import Path

import httpx
import pytest

from autopack.artefacts.layout import RunLayout
from autopack.db.database import Database
from autopack.domain.errors import NotFound
from autopack.project_config import load_project_config
from autopack.settings import Settings
from autopack.supervisor.engine import Engine, EngineOptions
from autopack.supervisor.lease import drive_lease
from autopack.supervisor.service import Supervisor
from tests.e2e.run_helpers import AUTOPACK, project, script
from tests.processes import ends


def test_a_run_being_driven_cannot_be_driven_twice(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    # The builder blocks until the test opens the gate: the engine is mid-phase by then.
    waits = script(tmp_path, "waits.py", f"""
        from pathlib import Path
        Path({str(gate)!r}).read_text()
        Path('src/calc.py').write_text(Path('src/calc.py').read_text()
                                       + '\\n\\ndef sub(a, b):\\n    return a - b\\n')
        """)
    plan = tmp_path / "comprehensive_plan.md"
    plan.write_text(textwrap.dedent(f"""\
        # Plan: Calc
        ## Tier T1: Code
        ### Phase P1: Subtraction
        - category: feature_scaffolding
        - command: {waits}
        """))
    repo = project(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOPACK_")}
    env["AUTOPACK_DATA_DIR"] = str(tmp_path / "data")

    def resume(**more: str) -> subprocess.CompletedProcess[str]:
        # a refusal is immediate; a second engine would wait on the gate until this
        # timeout
        return subprocess.run([AUTOPACK, "resume", "calc", "--repo", str(repo), "--json"],
                              capture_output=True, text=True, env={**env, **more},
                              timeout=120, check=False)

    first = subprocess.Popen([AUTOPACK, "run", str(plan), "--repo", str(repo), "--json"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=env)
    try:
        with open(gate, "w") as opened:  # returns once the builder has opened it
            refused = resume()
            # the same database with another runs folder: the database's lease refuses it
            elsewhere = resume(AUTOPACK_RUNS_DIR=str(tmp_path / "other-runs"))
            opened.write("go")
        out, errors = first.communicate(timeout=600)
    finally:
        first.kill()
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "being driven by another engine" in refused.stderr
    assert f"process {first.pid}" in refused.stderr
    assert json.loads(refused.stdout)["exit_code"] == 1  # --json: the error as its document
    assert elsewhere.returncode == 1, elsewhere.stdout + elsewhere.stderr
    assert f"autopack pid {first.pid} on" in elsewhere.stderr
    assert not (tmp_path / "other-runs" / "calc" / "phases").exists()
    assert first.returncode == 0, out + errors
    doc = json.loads(out)
    assert doc["state"] == "DONE_SUCCESS"
    assert [(p["phase_id"], p["attempts"]) for p in doc["phases"]] == [("P1", 1)]
    # the first engine is gone: a resume of the finished run only reports it
    again = resume()
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["phases"] == doc["phases"]


def test_the_server_leaves_a_run_driven_elsewhere_alone(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The executor does not drive (nor fail) a run another engine holds."""
    repo = project(tmp_path)
    sub = script(tmp_path, "sub.py", """
        from pathlib import Path
        Path('src/calc.py').write_text(Path('src/calc.py').read_text() + '\\nX = 1\\n')
        """)
    body = {
        "run": {"run_id": "held"}, "repo": {"path": str(repo)}, "execute": True,
        "tiers": [{"tier_id": "T1", "tier_index": 0, "name": "Code"}],
        "phases": [{"phase_id": "P1", "phase_index": 0, "tier_id": "T1", "name": "X",
                    "task_category": "feature_scaffolding", "command": sub}],
    }
    db = Database(server.settings.database_url)
    with drive_lease(RunLayout(server.settings.runs_dir, "held"), db), server.client() as http:
        assert http.post("/runs/start", json=body).status_code == 201
        # returns once the executor has given the run up
        seen = http.get("/runs/held/wait", params={"timeout": 300}).json()
    db.dispose()
    assert seen["state"] == "PHASE_QUEUEING"
    assert [(p["state"], p["builder_attempts"]) for p in seen["phases"]] == [("QUEUED", 0)]
    # the run is the engine's: the API does not move its phases behind its back (doing
    # so made the engine fail the run as an environment error)
    with server.client() as http:
        moved = http.post("/runs/held/phases/P1/update_status", json={"state": "SKIPPED"})
        assert moved.status_code == 409, moved.text
        assert "driven by Autopack's engine" in moved.json()["detail"]
        assert http.get("/runs/held").json()["phases"][0]["state"] == "QUEUED"


def test_driving_an_unknown_run_is_refused_and_creates_nothing(tmp_path: Path) -> None:
    """NotFound before the lease: no run folder, no lock file for a run that is not."""
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'db' / 'autopack.db'}",
                        runs_dir=tmp_path / "runs", data_dir=tmp_path / "data")
    supervisor = Supervisor(settings)
    supervisor.start()
    try:
        engine = Engine(supervisor, load_project_config(tmp_path), EngineOptions())
        with pytest.raises(NotFound, match="nope"):
            engine.run("nope")
    finally:
        supervisor.close()
    assert not (tmp_path / "runs").exists()


def test_ctrl_c_stops_the_run_and_its_builder_and_resume_continues(tmp_path: Path) -> None:
    """An interrupted `autopack run --json` still prints one JSON document (it printed
    none), exits 130, and leaves no builder running behind it."""
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    pid_file = tmp_path / "builder.pid"
    blocks = script(tmp_path, "blocks.py", f"""
        import os
        import time
        from pathlib import Path
        Path({str(pid_file)!r}).write_text(str(os.getpid()))
        if Path({str(gate)!r}).exists() and Path({str(gate)!r}).read_text() == "":
            time.sleep(600)  # the test opens the gate and writes nothing: hang
        Path('src/calc.py').write_text(Path('src/calc.py').read_text() + '\\nX = 1\\n')
        """)
    plan = tmp_path / "comprehensive_plan.md"
    plan.write_text(textwrap.dedent(f"""\
        # Plan: Calc
        ## Tier T1: Code
        ### Phase P1: X
        - category: feature_scaffolding
        - command: {blocks}
        """))
    repo = project(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOPACK_")}
    env["AUTOPACK_DATA_DIR"] = str(tmp_path / "data")
    first = subprocess.Popen([AUTOPACK, "run", str(plan), "--repo", str(repo), "--json"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=env)
    try:
        with open(gate, "w"):  # returns once the builder has opened it: it is running
            first.send_signal(signal.SIGINT)
            out, errors = first.communicate(timeout=120)
    finally:
        first.kill()
    assert first.returncode == 130, out + errors
    assert json.loads(out) == {"error": "interrupted", "exit_code": 130}
    builder = int(pid_file.read_text())
    assert ends(builder, within=60), "the builder outlived the interrupted run"
    gate.unlink()
    resumed = subprocess.run([AUTOPACK, "resume", "calc", "--repo", str(repo), "--json"],
                             capture_output=True, text=True, env=env, timeout=600,
                             check=False)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["state"] == "DONE_SUCCESS"


def test_clients_waiting_on_a_run_hold_no_threads(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Each GET /runs/{id}/wait held a worker thread for as long as it waited: forty of
    them stalled every request served from threads (reads of runs, for one) until the
    run ended."""
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    waits = script(tmp_path, "waits.py", f"""
        from pathlib import Path
        Path({str(gate)!r}).read_text()
        Path('src/calc.py').write_text(Path('src/calc.py').read_text() + '\\nX = 1\\n')
        """)
    body = {
        "run": {"run_id": "slow"}, "repo": {"path": str(project(tmp_path))}, "execute": True,
        "tiers": [{"tier_id": "T1", "tier_index": 0, "name": "Code"}],
        "phases": [{"phase_id": "P1", "phase_index": 0, "tier_id": "T1", "name": "X",
                    "task_category": "feature_scaffolding", "command": waits}],
    }

    async def scenario() -> tuple[list[bytes], httpx.Response]:
        host, port = server.url.removeprefix("http://").split(":")
        async with httpx.AsyncClient(base_url=server.url, timeout=120) as http:
            assert (await http.post("/runs/start", json=body)).status_code == 201
            streams = [await asyncio.open_connection(host, int(port)) for _ in range(50)]
            for _reader, writer in streams:
                writer.write(b"GET /runs/slow/wait?timeout=600 HTTP/1.1\r\n"
                             b"Host: 127.0.0.1\r\nConnection: close\r\n\r\n")
                await writer.drain()
            # round trips served on the server's event loop alone (an unknown path): once
            # they are answered, the server has taken in every wait sent before them
            for _ in range(20):
                assert (await http.get("/no-such-path")).status_code == 404
            # served while fifty clients wait and the builder is still blocked (the gate
            # opens only after this answer); before, it queued behind the waits
            read = await http.get("/runs/slow", timeout=30)
            with open(gate, "w") as opened:
                opened.write("go")
            answers = [await reader.read() for reader, _writer in streams]
            for _reader, writer in streams:
                writer.close()
            return answers, read

    ended, read = asyncio.run(scenario())
    assert read.status_code == 200 and read.json()["state"] != "DONE_SUCCESS"
    assert all(a.startswith(b"HTTP/1.1 200") and b'"state":"DONE_SUCCESS"' in a
               for a in ended), ended[0][:500]
