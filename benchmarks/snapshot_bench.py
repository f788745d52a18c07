"""The governed apply path on a 10,000-file repository, against the raw git it replaces.

For each phase, Autopack opens an attempt worktree on a scratch branch, applies a diff,
captures and stores the canonical diff, runs the scope checks, commits the snapshot
(with the phase's issue file) on the integration branch, tags it and removes the
worktree. The baseline is a shell script doing the same git work by hand (worktree add,
apply, add, commit, move the branch, tag, worktree remove), run from this same process.
Both work on identical copies of one repository. Prints per-phase p50 and the ratio.

    python benchmarks/snapshot_bench.py [--files 10000] [--phases 20]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from autopack.plan.spec import RunSpec
from autopack.settings import Settings
from autopack.supervisor.service import Supervisor

ENV = {**{k: v for k, v in os.environ.items() if not k.startswith("GIT_")},
       "GIT_AUTHOR_NAME": "Bench", "GIT_AUTHOR_EMAIL": "bench@localhost",
       "GIT_COMMITTER_NAME": "Bench", "GIT_COMMITTER_EMAIL": "bench@localhost"}

RAW_PHASE = r"""
set -eu
cd "$REPO"
git worktree add -q -b "scratch/$N" "$WT" integration
cd "$WT"
git apply --index "$DIFF"
git add -A
git commit -q -m "phase $N"
cd "$REPO"
git update-ref refs/heads/integration "$(git -C "$WT" rev-parse HEAD)"
git tag "snap/$N" integration
git worktree remove --force "$WT"
git branch -q -D "scratch/$N"
"""


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, env=ENV, check=True,
                          capture_output=True, text=True).stdout.strip()


def make_repo(path: Path, files: int) -> None:
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "gc.auto", "0")  # no background gc while copies are made or timed
    for i in range(files):
        target = path / f"pkg{i // 100:03d}" / f"mod{i % 100:03d}.py"
        target.parent.mkdir(exist_ok=True)
        target.write_text(f"VALUE = {i}\n\n\ndef f():\n    return VALUE\n")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "initial")
    git(path, "gc", "-q")  # packed, as a real repository of this size would be


def phase_diff(n: int) -> bytes:
    """A one-file change to module n (a different file per phase)."""
    rel = f"pkg{n:03d}/mod000.py"
    return (f"diff --git a/{rel} b/{rel}\n--- a/{rel}\n+++ b/{rel}\n"
            f"@@ -1,5 +1,6 @@\n VALUE = {n * 100}\n+CHANGED = {n}\n \n \n def f():\n"
            "     return VALUE\n").encode()


def raw_phase(repo: Path, work: Path, n: int) -> float:
    """One phase of the raw git script; seconds taken."""
    diff = work / f"raw-{n}.diff"
    diff.write_bytes(phase_diff(n))
    env = {**ENV, "REPO": str(repo), "WT": str(work / f"raw-wt-{n}"), "DIFF": str(diff),
           "N": str(n)}
    start = time.perf_counter()
    subprocess.run(["bash", "-c", RAW_PHASE], env=env, check=True)
    return time.perf_counter() - start


def autopack_phase(sup: Supervisor, n: int) -> float:
    """One phase through Autopack's governed apply path; seconds taken."""
    start = time.perf_counter()
    with sup.apply.attempt("bench", f"P{n:02d}") as attempt:
        attempt.apply_diff(phase_diff(n))
        sup.apply.gate("bench", f"P{n:02d}", attempt)
    sup.apply.snapshot("bench", f"P{n:02d}", attempt.number, tokens=100)
    return time.perf_counter() - start


def start_run(repo: Path, work: Path, phases: int) -> Supervisor:
    settings = Settings(database_url=f"sqlite:///{work / 'autopack.db'}",
                        runs_dir=work / "runs", data_dir=work / "data")
    sup = Supervisor(settings)
    sup.start()
    spec = RunSpec.model_validate({
        "run": {"run_id": "bench", "max_phases": phases},
        "repo": {"path": str(repo)},
        "tiers": [{"tier_id": "T1", "tier_index": 0, "name": "Bench"}],
        "phases": [{"phase_id": f"P{n:02d}", "phase_index": n, "tier_id": "T1",
                    "name": f"Phase {n}"} for n in range(phases)],
    })
    sup.create_run(spec, actor="bench")
    return sup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--phases", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="autopack-snapbench-") as tmp:
        work = Path(tmp)
        make_repo(work / "seed", args.files)
        shutil.copytree(work / "seed", work / "raw")
        shutil.copytree(work / "seed", work / "autopack")
        git(work / "raw", "branch", "integration", "main")
        sup = start_run(work / "autopack", work, args.phases)
        raw, ours = [], []
        try:
            # Interleaved, so both sides meet the same page cache and writeback state.
            for n in range(args.phases):
                raw.append(raw_phase(work / "raw", work, n))
                ours.append(autopack_phase(sup, n))
        finally:
            sup.close()
        ratios = [o / r for o, r in zip(ours, raw, strict=True)]
        print(f"repository: {args.files} files; {args.phases} phases each, interleaved")
        print(f"raw git script  p50 {statistics.median(raw) * 1000:8.1f} ms"
              f"  min {min(raw) * 1000:8.1f} ms")
        print(f"autopack        p50 {statistics.median(ours) * 1000:8.1f} ms"
              f"  min {min(ours) * 1000:8.1f} ms")
        print(f"ratio           p50 of per-phase ratios {statistics.median(ratios):.2f}x, "
              f"ratio of p50s {statistics.median(ours) / statistics.median(raw):.2f}x"
              "  (target <= 1.5x)")


if __name__ == "__main__":
    main()
