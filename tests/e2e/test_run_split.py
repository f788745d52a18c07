"""A plan over `max_phases` runs as several runs, each starting at the integration tip of
the one before; resuming any part finishes the chain; a part that is not
promotion-eligible stops it."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.e2e.run_helpers import AUTOPACK, project, run, script, user_view
from tests.gitutil import git

SPLIT = "[budgets.run]\nmax_phases = 2\n"


def _writer(tmp_path: Path, name: str, extra: str = "") -> str:
    return script(tmp_path, f"{name}.py", f"""
        from pathlib import Path
        Path('src/{name}.py').write_text('{name.upper()} = 1\\n')
        {extra}
        """)


def _plan(tmp_path: Path, p3_command: str, p1_extra: str = "") -> str:
    return f"""\
        # Plan: Big
        ## Tier T1: First
        ### Phase P1: One
        - category: feature_scaffolding
        - command: {_writer(tmp_path, "one", p1_extra)}
        ### Phase P2: Two
        - category: feature_scaffolding
        - command: {_writer(tmp_path, "two")}
        ## Tier T2: Second
        ### Phase P3: Three
        - category: feature_scaffolding
        - command: {p3_command}
        """


def test_an_over_size_plan_runs_as_a_chain_of_runs(tmp_path: Path) -> None:
    repo = project(tmp_path, SPLIT)
    before = user_view(repo)
    main = git(repo, "rev-parse", "main")
    done = run(tmp_path, repo, _plan(tmp_path, _writer(tmp_path, "three")))
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["parts"] == [{"run_id": "big-1", "state": "DONE_SUCCESS"},
                            {"run_id": "big-2", "state": "DONE_SUCCESS"}]
    assert doc["run_id"] == "big-2" and doc["parts_stopped"] is None
    assert [p["phase_id"] for p in doc["phases"]] == ["P3"]
    assert "the plan runs as 2 runs" in done.stderr
    # part 2 starts where part 1 ended: promoting it brings the whole plan
    first, second = "autopack/integration/big-1", "autopack/integration/big-2"
    assert git(repo, "merge-base", "--is-ancestor", first, second) == ""
    for name in ("one", "two", "three"):
        assert git(repo, "show", f"{second}:src/{name}.py") == f"{name.upper()} = 1"
    assert git(repo, "rev-parse", "main") == main and user_view(repo) == before
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOPACK_")}
    promoted = subprocess.run([AUTOPACK, "promote", "big-2", "--repo", str(repo)],
                              cwd=repo, capture_output=True, text=True, env=env, check=False)
    assert promoted.returncode == 0, promoted.stdout + promoted.stderr
    assert git(repo, "rev-parse", "main") == git(repo, "rev-parse", second)


def test_resuming_the_first_part_finishes_the_chain(tmp_path: Path) -> None:
    repo = project(tmp_path, SPLIT)
    marker = tmp_path / "killed"
    killer = script(tmp_path, "kill_engine.py", f"""
        import os, signal
        from pathlib import Path
        marker = Path({str(marker)!r})
        if not marker.exists():  # the first time only: kill -9 the engine
            marker.write_text("x")
            stat = Path(f"/proc/{{os.getppid()}}/stat").read_text()
            os.kill(int(stat.rsplit(")", 1)[1].split()[1]), signal.SIGKILL)
        Path('src/three.py').write_text('THREE = 1\\n')
        """)
    crashed = run(tmp_path, repo, _plan(tmp_path, killer))
    assert crashed.returncode == -9 and marker.exists()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOPACK_")}
    env["AUTOPACK_DATA_DIR"] = str(tmp_path / "data")
    resumed = subprocess.run([AUTOPACK, "resume", "big-1", "--repo", str(repo), "--json"],
                             capture_output=True, text=True, env=env, timeout=600,
                             check=False)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    doc = json.loads(resumed.stdout)
    assert [p["state"] for p in doc["parts"]] == ["DONE_SUCCESS", "DONE_SUCCESS"]
    assert git(repo, "show", "autopack/integration/big-2:src/three.py") == "THREE = 1"


def test_a_part_that_is_not_promotion_eligible_stops_the_chain(tmp_path: Path) -> None:
    # P1's builder reports five minor issues: tier T1 (2 phases) tolerates four
    noisy = ("import json, os\n        Path(os.environ['AUTOPACK_ISSUES_FILE']).write_text("
             "json.dumps([{'issue_key': f'nit_{i}'} for i in range(5)]))")
    repo = project(tmp_path, SPLIT)
    done = run(tmp_path, repo, _plan(tmp_path, _writer(tmp_path, "three"), noisy))
    assert done.returncode == 1, done.stderr
    doc = json.loads(done.stdout)
    assert doc["parts"] == [{"run_id": "big-1", "state": "DONE_SUCCESS"},
                            {"run_id": "big-2", "state": None}]
    assert "big-1 is not promotion-eligible" in doc["parts_stopped"]
    assert doc["tiers"][0]["cleanliness"] == "not_clean"
    assert git(repo, "branch", "--list", "autopack/integration/big-2") == ""
