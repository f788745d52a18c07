"""Helpers of the `autopack run` end-to-end tests: a small pytest project in a real git
repository, scripts for command builders and auditors, the CLI as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.gitutil import fingerprint, make_repo
from tests.integration.ci_helpers import PYTEST, project_toml

AUTOPACK = str(Path(sys.executable).with_name("autopack"))
PY = sys.executable

SCHEMA_REVISION = """diff --git a/src/schema.py b/src/schema.py
--- a/src/schema.py
+++ b/src/schema.py
@@ -1 +1 @@
-VERSION = 2
+VERSION = 3
"""
"""An Auditor's patch on a change that wrote `VERSION = 2` to src/schema.py."""


def project(tmp_path: Path, extra_toml: str = "") -> Path:
    return make_repo(tmp_path / "project", {
        "autopack.toml": project_toml([PYTEST]) + extra_toml,
        "pyproject.toml": "[tool.pytest.ini_options]\npythonpath = ['src']\n",
        "src/calc.py": "def add(a, b):\n    return a + b\n",
        "tests/test_calc.py": "from calc import add\n\n\ndef test_add():\n"
                              "    assert add(2, 2) == 4\n",
    })


def script(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / "tools" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(textwrap.dedent(body))
    return f"{PY} {path}"


def one_phase(title: str, command: str, category: str = "feature_scaffolding") -> str:
    """A plan of one tier with one phase built by `command`."""
    return (f"# Plan: {title}\n## Tier T1: Code\n### Phase P1: Work\n"
            f"- category: {category}\n- command: {command}\n")


def breaks_addition(tmp_path: Path) -> str:
    """A builder command that breaks `add` (the project's test then fails)."""
    return script(tmp_path, "break.py", """
        from pathlib import Path
        Path('src/calc.py').write_text('def add(a, b):\\n    return a - b\\n')
        """)


def run(tmp_path: Path, repo: Path, plan: str, *args: str) -> subprocess.CompletedProcess[str]:
    plan_file = tmp_path / "comprehensive_plan.md"
    plan_file.write_text(textwrap.dedent(plan))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOPACK_")}
    env["AUTOPACK_DATA_DIR"] = str(tmp_path / "data")
    return subprocess.run([AUTOPACK, "run", str(plan_file), "--repo", str(repo), "--json",
                           *args], capture_output=True, text=True, env=env, timeout=600,
                          check=False)


def user_view(repo: Path) -> dict[str, object]:
    """The checkout without the run's own (git-excluded) folders."""
    seen = fingerprint(repo)
    seen["files"] = {k: v for k, v in seen["files"].items()  # type: ignore[attr-defined]
                     if not k.startswith((".autopack/", ".autonomous_runs/"))}
    return seen
