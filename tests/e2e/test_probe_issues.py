"""The issues probe script, end to end: its own server, its own SQLite, the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_probe_script_records_counts_and_writes_issues(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOPACK_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["AUTOPACK_PROBE_DIR"] = str(tmp_path)
    result = subprocess.run(["bash", str(ROOT / "scripts" / "autonomous_probe_issues.sh")],
                            capture_output=True, text=True, env=env, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PROBE PASSED" in result.stdout
    [index] = (tmp_path / ".autonomous_runs").glob("*/issues/run_issue_index.json")
    assert json.loads(index.read_text())["minor_issue_count"] == 1
