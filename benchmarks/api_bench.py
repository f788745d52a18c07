"""API throughput and latency against one real server, as ratios to GET /health.

Starts `autopack serve` (one uvicorn process) on a fresh database, drives it from an
asyncio client at a fixed concurrency, and prints requests/s, p50 and p99 for
GET /health, POST /runs/start (3 tiers, 25 phases), GET /runs/{id} and update_status,
each also as a ratio to /health. Then it compares GET /runs/{id} on a database of 20 runs
with the same runs on a database grown to --grow-phases phases, in alternating rounds.

    python benchmarks/api_bench.py --db sqlite --db postgres
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

PG_ADMIN = os.environ.get("AUTOPACK_TEST_DATABASE_URL",
                          "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
WALK = ("EXECUTING", "GATE", "CI_RUNNING", "COMPLETE")


def run_body(run_id: str) -> dict[str, object]:
    """A run of 3 tiers and 25 phases."""
    tiers = [{"tier_id": f"T{i}", "tier_index": i, "name": f"Tier {i}"} for i in range(3)]
    phases = [{"phase_id": f"P{i:02d}", "phase_index": i, "tier_id": f"T{i * 3 // 25}",
               "name": f"Phase {i}", "description": "Implement part of the feature. " * 4}
              for i in range(25)]
    return {"run": {"run_id": run_id}, "tiers": tiers, "phases": phases}


class Bench:
    """One server on one database."""

    def __init__(self, database_url: str, workdir: Path, cache_size: int = 512) -> None:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        sock.close()
        env = {**os.environ, "AUTOPACK_DATABASE_URL": database_url,
               "AUTOPACK_RUNS_DIR": str(workdir / "runs"),
               "AUTOPACK_RUN_CACHE_SIZE": str(cache_size)}
        autopack = Path(sys.executable).with_name("autopack")
        self.log = open(workdir / f"server-{self.port}.log", "w")  # noqa: SIM115
        self.proc = subprocess.Popen([str(autopack), "serve", "--port", str(self.port)],
                                     env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.base = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base}/health").status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError("server did not start")

    def cpu_seconds(self) -> float | None:
        """The server process's CPU time so far (user + system), where /proc tells."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.log.close()


async def measure(base: str, concurrency: int, jobs: list[Callable[[httpx.AsyncClient],
                  Awaitable[httpx.Response]]]) -> tuple[float, float, float]:
    """Run `jobs` with `concurrency` workers; return (requests/s, p50 ms, p99 ms)."""
    latencies: list[float] = []
    queue = list(reversed(jobs))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def worker(client: httpx.AsyncClient) -> None:
        while queue:
            job = queue.pop()
            start = time.perf_counter()
            response = await job(client)
            latencies.append(time.perf_counter() - start)
            if response.status_code >= 300:
                raise RuntimeError(f"{response.status_code}: {response.text[:200]}")

    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=120) as client:
        start = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return len(latencies) / elapsed, statistics.median(latencies) * 1000, p99 * 1000


Result = tuple[float, float, float, float | None, float]


def timed(bench: Bench, concurrency: int, jobs: list) -> Result:
    """`measure`, plus the CPU milliseconds per request spent by the server and by this
    client (on two cores both count: a cheap endpoint is bound by the client)."""
    server, client = bench.cpu_seconds(), time.process_time()
    rps, p50, p99 = asyncio.run(measure(bench.base, concurrency, jobs))
    client = (time.process_time() - client) * 1000 / len(jobs)
    after = bench.cpu_seconds()
    per_request = None if server is None or after is None else (after - server) * 1000 / len(
        jobs)
    return rps, p50, p99, per_request, client


def start_jobs(ids: list[str]) -> list:
    return [lambda c, i=i: c.post("/runs/start", json=run_body(i)) for i in ids]


def update_jobs(ids: list[str], per_run: int) -> list:
    """Legal moves only: runs interleaved so concurrent workers touch different runs."""
    moves = [(f"P{i // 4:02d}", WALK[i % 4]) for i in range(per_run)]
    jobs = []
    for phase, state in moves:
        for run_id in ids:
            jobs.append(lambda c, r=run_id, p=phase, s=state: c.post(
                f"/runs/{r}/phases/{p}/update_status", json={"state": s, "tokens_used": 10}))
    return jobs


SCRATCH: list[Path] = []


def scratch(prefix: str) -> Path:
    """A new temporary folder, removed when the whole benchmark ends.

    Not sooner: on ext4 without a journal, file creation skips every inode freed in the
    last minutes at a cost per inode, so removing one suite's tens of thousands of files
    would slow the next suite's run starts for minutes.
    """
    SCRATCH.append(Path(tempfile.mkdtemp(prefix=prefix)))
    return SCRATCH[-1]


def run_suite(label: str, database_url: str, args: argparse.Namespace) -> None:
    workdir = scratch("autopack-bench-")
    bench = Bench(database_url, workdir)
    try:
        c, n = args.concurrency, args.requests
        results: dict[str, Result] = {}
        health = [lambda cl: cl.get("/health")] * n
        asyncio.run(measure(bench.base, c, health[: n // 5]))  # warm-up
        results["GET /health"] = timed(bench, c, health)
        ids = [f"bench-{uuid.uuid4().hex[:12]}" for _ in range(max(n // 4, c))]
        results["POST /runs/start (25 phases)"] = timed(bench, c, start_jobs(ids))
        gets = [lambda cl, i=ids[k % len(ids)]: cl.get(f"/runs/{i}") for k in range(n)]
        results["GET /runs/{id}"] = timed(bench, c, gets)
        uncached = Bench(database_url, workdir, cache_size=0)
        try:
            results["GET /runs/{id} (no cache)"] = timed(uncached, c, gets)
        finally:
            uncached.stop()
        per_run = max(1, min(100, n // len(ids)))
        results["POST update_status"] = timed(bench, c, update_jobs(ids, per_run))
        floor = results["GET /health"][0]
        print(f"\n== {label}: concurrency {c}, {n} requests per endpoint "
              "(CPU: milliseconds per request, server process and this client)")
        print(f"{'endpoint':32} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'/health':>8}"
              f" {'srv CPU':>8} {'cli CPU':>8}")
        for name, (rps, p50, p99, server, client) in results.items():
            served = "-" if server is None else f"{server:.2f}"
            print(f"{name:32} {rps:8.0f} {p50:8.2f} {p99:8.2f} {rps / floor:8.2f}"
                  f" {served:>8} {client:8.2f}")
    finally:
        bench.stop()


def grow_suite(label: str, kind: str, args: argparse.Namespace, rounds: int = 5) -> None:
    """Uncached GET /runs/{id} of the same 20 runs on two databases: one holding only
    them, one grown to --grow-phases. One server each, measured in alternating rounds so
    the machine's drift falls on both alike; the medians of the rounds are compared."""
    sample = [f"sample-{k}" for k in range(20)]
    more = max(0, args.grow_phases // 25 - len(sample))
    c = args.concurrency
    with fresh_database(kind) as small_url, fresh_database(kind) as big_url:
        small = Bench(small_url, scratch("autopack-bench-"), cache_size=0)
        big = Bench(big_url, scratch("autopack-bench-"), cache_size=0)
        try:
            for bench in (small, big):
                asyncio.run(measure(bench.base, c, start_jobs(sample)))
            asyncio.run(measure(big.base, c, start_jobs(
                [f"grow-{uuid.uuid4().hex[:12]}" for _ in range(more)])))
            per_round = max(c, args.requests // rounds)
            gets = [lambda cl, i=sample[k % len(sample)]: cl.get(f"/runs/{i}")
                    for k in range(per_round)]
            for bench in (small, big):
                asyncio.run(measure(bench.base, c, gets[: per_round // 2]))  # warm-up
            p50s: dict[str, list[float]] = {"small": [], "big": []}
            for _ in range(rounds):
                p50s["small"].append(asyncio.run(measure(small.base, c, gets))[1])
                p50s["big"].append(asyncio.run(measure(big.base, c, gets))[1])
        finally:
            small.stop()
            big.stop()
    before, after = statistics.median(p50s["small"]), statistics.median(p50s["big"])
    change = (after - before) / before * 100
    print(f"{label}: GET /runs/{{id}} (no cache), median p50 of {rounds} alternating rounds: "
          f"{len(sample) * 25} phases {before:.2f} ms, {(len(sample) + more) * 25} phases "
          f"{after:.2f} ms ({change:+.1f}%)")


@contextmanager
def fresh_database(kind: str) -> Iterator[str]:
    """The URL of a new, empty database of `kind`, removed afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{scratch('autopack-bench-db-')}/bench.db"
        return
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    name = f"autopack_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(PG_ADMIN).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", action="append", choices=["sqlite", "postgres"])
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--grow-phases", type=int, default=50_000,
                        help="grow the database to this many phases (0: skip)")
    args = parser.parse_args()
    try:
        for db in args.db or ["sqlite", "postgres"]:
            label = {"sqlite": "SQLite", "postgres": "PostgreSQL"}[db]
            with fresh_database(db) as url:
                run_suite(label, url, args)
            if args.grow_phases:
                grow_suite(label, db, args)
    finally:
        for folder in SCRATCH:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
