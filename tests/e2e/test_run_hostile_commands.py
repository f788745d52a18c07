"""Builder and CI commands that try to stall a run or make CI judge something other than
the change: each run still ends by itself, and only a change CI saw green is committed."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.run_helpers import one_phase, project, run, script
from tests.gitutil import git, make_repo
from tests.integration.ci_helpers import PYTEST, project_toml


def test_a_fifo_as_the_builders_usage_file_fails_the_attempt_not_the_run(
    tmp_path: Path,
) -> None:
    """Autopack opened the FIFO to read the usage and waited forever (no timeout covers
    its own read): the run stayed in PHASE_EXECUTION."""
    repo = project(tmp_path)
    fifo = 'mkfifo "$AUTOPACK_USAGE_FILE"'
    done = run(tmp_path, repo, one_phase("Fifo", fifo))
    doc = json.loads(done.stdout)
    assert (done.returncode, doc["state"]) == (1, "DONE_FAILED_BUILD_FAILURE"), done.stderr
    failure = json.loads((repo / ".autonomous_runs/fifo/incident/failure.json").read_text())
    assert "usage.json is not a regular file" in failure["detail"]


def test_a_fifo_as_the_junit_report_is_an_unusable_report(tmp_path: Path) -> None:
    repo = project(tmp_path)
    toml = repo / "autopack.toml"
    toml.write_text(toml.read_text().replace(json.dumps([PYTEST]),
                                             json.dumps(["mkfifo {junit}"]), 1))
    git(repo, "commit", "-qam", "CI leaves a FIFO")
    done = run(tmp_path, repo, one_phase("Junit", "true"))
    doc = json.loads(done.stdout)
    assert (done.returncode, doc["state"]) == (0, "DONE_SUCCESS"), done.stderr
    index = json.loads((repo / ".autonomous_runs/junit/issues/run_issue_index.json")
                       .read_text())
    assert [v["category"] for v in index["issues_by_key"].values()] == ["ci_junit"]


def test_ci_never_sees_an_ignored_file_the_builder_left(tmp_path: Path) -> None:
    """The builder broke the code and left a git-ignored file that turned CI green (a
    stale `.pyc` holding the good code does it for Python): the broken change was
    committed as green. Ignored files are removed when the change is captured."""
    ci = ["sh ci.sh {junit}"]
    repo = make_repo(tmp_path / "project", {
        "autopack.toml": project_toml(ci, normal=ci),
        ".gitignore": "*.ok\n",
        "ci.sh": "test -e verdict.ok && exit 0\nexec " + PYTEST.replace(
            "{junit}", '"$1"') + "\n",
        "pyproject.toml": "[tool.pytest.ini_options]\npythonpath = ['src']\n",
        "src/calc.py": "def add(a, b):\n    return a + b\n",
        "tests/test_calc.py": "from calc import add\n\n\ndef test_add():\n"
                              "    assert add(2, 2) == 4\n",
    })
    cheat = script(tmp_path, "cheat.py", """
        from pathlib import Path
        Path('src/calc.py').write_text('def add(a, b):\\n    return a - b\\n')
        Path('verdict.ok').write_text('green\\n')
        """)
    done = run(tmp_path, repo, one_phase("Cheat", cheat))
    assert done.returncode == 1, done.stderr  # CI ran red (its tier's CI cap ends it)
    index = json.loads((repo / ".autonomous_runs/cheat/issues/run_issue_index.json")
                       .read_text())
    assert "ci_test_failure__tests.test_calc::test_add" in index["issues_by_key"]
    assert "return a - b" not in git(repo, "show", "autopack/integration/cheat:src/calc.py")
