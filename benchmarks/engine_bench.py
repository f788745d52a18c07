"""The run engine's own cost, and the server driving many runs at once.

1. Overhead per phase on a 10,000-file repository: `autopack run`'s engine (in process)
   drives phases whose builder is a one-line change and whose CI is `true`; the baseline
   is a bash script doing the same git work by hand per phase (worktree add, the change,
   add, commit, move the branch, tag, worktree remove) from this same process, run after
   each engine phase completes (interleaved, so both meet the same disk state). Prints
   the p50 per phase of each and the ratio.
2. 50 runs executed concurrently by `autopack serve` (SQLite): POST /runs/start with
   `execute` for 50 small repositories, then GET /runs/{id}/wait for each; prints
   runs/minute and the p99 step latency (time between consecutive events of a run).

    python benchmarks/engine_bench.py [--files 10000] [--phases 8] [--runs 50]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).parent))
from snapshot_bench import ENV, git, make_repo

from autopack.plan.spec import RunSpec
from autopack.project_config import load_project_config
from autopack.settings import Settings
from autopack.supervisor.engine import Engine, EngineOptions
from autopack.supervisor.service import Supervisor

TOML = '[ci]\nmax_attempts = 1\n[ci.profiles.normal]\ncommands = ["true"]\n' \
       '[ci.profiles.strict]\ncommands = ["true"]\n'
RAW_PHASE = r"""
set -eu
cd "$REPO"
git worktree add -q -b "scratch/$N" "$WT" integration
cd "$WT"
echo "CHANGED = $N" >> "pkg$(printf %03d "$N")/mod000.py"
git add -A
git commit -q -m "phase $N"
true
cd "$REPO"
git update-ref refs/heads/integration "$(git -C "$WT" rev-parse HEAD)"
git tag "snap/$N" integration
git worktree remove --force "$WT"
git branch -q -D "scratch/$N"
"""


def _commit_config(repo: Path) -> None:
    (repo / "autopack.toml").write_text(TOML)
    git(repo, "add", "autopack.toml")
    git(repo, "commit", "-q", "-m", "autopack config")


def overhead(work: Path, files: int, phases: int) -> None:
    make_repo(work / "seed", files)
    _commit_config(work / "seed")
    shutil.copytree(work / "seed", work / "raw")
    shutil.copytree(work / "seed", work / "ours")
    git(work / "raw", "branch", "integration", "main")
    raw: list[float] = []

    def raw_phase(n: int) -> None:
        env = {**ENV, "REPO": str(work / "raw"), "WT": str(work / f"raw-wt-{n}"), "N": str(n)}
        start = time.perf_counter()
        subprocess.run(["bash", "-c", RAW_PHASE], env=env, check=True)
        raw.append(time.perf_counter() - start)

    settings = Settings(database_url=f"sqlite:///{work / 'engine.db'}", runs_dir=work / "runs",
                        data_dir=work / "data")
    sup = Supervisor(settings)
    sup.start()
    repo = work / "ours"
    spec = RunSpec.model_validate({
        "run": {"run_id": "bench", "max_phases": phases}, "repo": {"path": str(repo)},
        "tiers": [{"tier_id": "T1", "tier_index": 0, "name": "Bench"}],
        "phases": [{"phase_id": f"P{n:02d}", "phase_index": n, "tier_id": "T1",
                    "name": f"Phase {n}", "task_category": "general", "complexity": "medium",
                    "command": f'echo "CHANGED = {n}" >> pkg{n:03d}/mod000.py'}
                   for n in range(phases)],
    })
    marks: dict[str, list[float]] = {}

    def on_step(view: object, step: str) -> None:
        phase_id, _, state = step.partition(" ")
        marks.setdefault(phase_id, []).append(time.perf_counter())
        if state == "COMPLETE":  # interleaved: both sides meet the same disk state
            raw_phase(len(raw))

    try:
        sup.create_run(spec, "bench")
        extras = {p.phase_id: {"command": p.command or ""} for p in spec.phases}
        engine = Engine(sup, load_project_config(repo), EngineOptions(
            plan_dir=repo, extras=extras, on_step=on_step))
        start = time.perf_counter()
        view = engine.run("bench")
        total = time.perf_counter() - start - sum(raw)
    finally:
        sup.close()
    assert view.run.state == "DONE_SUCCESS", view.run.state
    ours = [times[-1] - times[0] for times in marks.values()]
    print(f"1. per phase on {files} files ({phases} phases; each: the whole EXECUTING..COMPLETE)")
    print(f"   raw git script p50 {statistics.median(raw) * 1000:8.1f} ms")
    print(f"   autopack       p50 {statistics.median(ours) * 1000:8.1f} ms "
          f"(whole run {total:.1f} s = {total / phases * 1000:.0f} ms per phase)")
    print(f"   ratio          {statistics.median(ours) / statistics.median(raw):.2f}x")


def concurrent(work: Path, runs: int) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    db = work / "server.db"
    env = {**os.environ, "AUTOPACK_DATABASE_URL": f"sqlite:///{db}",
           "AUTOPACK_RUNS_DIR": str(work / "server-runs"),
           "AUTOPACK_DATA_DIR": str(work / "server-data"), "AUTOPACK_RUN_WORKERS": "8"}
    log = open(work / "server.log", "w")  # noqa: SIM115
    server = subprocess.Popen([str(Path(sys.executable).with_name("autopack")), "serve",
                               "--port", str(port)], env=env, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=600) as http:
            for _ in range(300):
                try:
                    if http.get("/health").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            repos = []
            for n in range(runs):
                repo = make_small_repo(work / f"r{n}")
                repos.append(repo)
            start = time.perf_counter()
            for n, repo in enumerate(repos):
                http.post("/runs/start", json={
                    "run": {"run_id": f"c{n}"}, "repo": {"path": str(repo)}, "execute": True,
                    "tiers": [{"tier_id": "T1", "tier_index": 0, "name": "T"}],
                    "phases": [{"phase_id": "P1", "phase_index": 0, "tier_id": "T1",
                                "name": "p", "task_category": "general",
                                "command": "echo X=1 >> a.py"}],
                }).raise_for_status()
            states = [http.get(f"/runs/c{n}/wait", params={"timeout": 600}).json()["state"]
                      for n in range(runs)]
            elapsed = time.perf_counter() - start
    finally:
        server.terminate()
        server.wait()
        log.close()
    engine = create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT run_id, at FROM events ORDER BY run_id, id")).all()
    engine.dispose()
    gaps, last = [], {}
    for run_id, at in rows:
        stamp = datetime.fromisoformat(str(at)).timestamp()
        if run_id in last:
            gaps.append(stamp - last[run_id])
        last[run_id] = stamp
    gaps.sort()
    p99 = gaps[min(len(gaps) - 1, int(len(gaps) * 0.99))] if gaps else 0.0
    done = sum(s == "DONE_SUCCESS" for s in states)
    print(f"2. {runs} runs through the server (8 workers, SQLite): {done} DONE_SUCCESS in "
          f"{elapsed:.1f} s = {runs / elapsed * 60:.0f} runs/minute; "
          f"p99 step latency {p99 * 1000:.0f} ms")


def make_small_repo(path: Path) -> Path:
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    (path / "a.py").write_text("A = 1\n")
    (path / "autopack.toml").write_text(TOML)
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "init")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--phases", type=int, default=8)
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="autopack-enginebench-") as tmp:
        overhead(Path(tmp), args.files, args.phases)
        concurrent(Path(tmp), args.runs)


if __name__ == "__main__":
    main()
