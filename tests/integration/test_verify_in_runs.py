"""Static checks at GATE and the CI step inside runs, on a real Python project: findings
recorded as issues, CI runs counted against tier and run, configuration read from the
run's base commit so an attempt cannot loosen it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from autopack.settings import Settings
from autopack.supervisor.service import Supervisor
from autopack.vcs.scope import ScopeViolation
from tests.gitutil import fingerprint, make_repo
from tests.integration.ci_helpers import PYTEST, need_bwrap, project_toml
from tests.integration.helpers import table_rows
from tests.integration.vcs_fixtures import Project

TOML = project_toml([PYTEST], static_checks=["! grep -n TODO {changed_files}"])


@pytest.fixture
def db_url(sqlite_url: str) -> str:
    return sqlite_url


@pytest.fixture
def pyproject(settings: Settings, tmp_path: Path) -> Iterator[Project]:
    repo = make_repo(tmp_path / "area" / "project", {
        "autopack.toml": TOML,
        "pyproject.toml": "[tool.pytest.ini_options]\npythonpath = ['src']\n",
        "src/calc.py": "def add(a, b):\n    return a + b\n",
        "tests/test_calc.py": "from calc import add\n\n\ndef test_add():\n"
                              "    assert add(2, 2) == 4\n",
    })
    sup = Supervisor(settings)
    sup.start()
    yield Project(repo, sup, fingerprint(repo), set())
    sup.close()


def _issues(project: Project) -> dict[str, dict[str, object]]:
    return project.sup.issue_index("run-1")["issues_by_key"]  # type: ignore[no-any-return]


def test_a_static_check_finding_is_a_minor_issue_and_ci_goes_green(pyproject: Project) -> None:
    pyproject.start(phases=(1,))
    with pyproject.sup.apply.attempt("run-1", "P1") as attempt:
        attempt.write_files({"src/calc.py": b"def add(a, b):\n    # TODO: overflow\n"
                                            b"    return a + b\n"})
        pyproject.sup.apply.gate("run-1", "P1", attempt)
        result = pyproject.sup.apply.ci("run-1", "P1", attempt, "ready")
    assert result.green and result.attempts == 1
    issue = _issues(pyproject)["static_check__grep_-n_TODO_changed_files"]
    assert (issue["severity"], issue["category"]) == ("minor", "static_check")
    view = pyproject.sup.get_run("run-1")
    assert (view.run.ci_runs_used, view.tiers[0].ci_runs_used) == (1, 1)
    commands = table_rows(pyproject.sup.settings.database_url, "command_runs")
    assert [(c["kind"], c["ci_attempt"], c["exit_code"]) for c in commands] == [
        ("static_check", 0, 1), ("ci", 1, 0)]
    assert "TODO: overflow" in str(commands[0]["output_tail"])
    assert Path(str(commands[1]["log_path"])).read_text().startswith("$ python -m pytest")
    assert fingerprint(pyproject.repo) == pyproject.before


def test_a_failing_test_is_recorded_and_counted(pyproject: Project) -> None:
    pyproject.start(phases=(1,))
    with pyproject.sup.apply.attempt("run-1", "P1") as attempt:
        attempt.write_files({"src/calc.py": b"def add(a, b):\n    return a - b\n"})
        pyproject.sup.apply.gate("run-1", "P1", attempt)
        result = pyproject.sup.apply.ci("run-1", "P1", attempt, "ready")
    assert not result.green and result.attempts == 2
    issue = _issues(pyproject)["ci_test_failure__tests.test_calc::test_add"]
    assert issue["category"] == "ci_test_failure"
    assert pyproject.sup.get_run("run-1").run.ci_runs_used == 2


def test_an_attempt_cannot_loosen_the_checks_by_editing_autopack_toml(
    pyproject: Project,
) -> None:
    """The checks come from autopack.toml at the run's base, and the file is a forbidden
    path for attempts: a split plan's next part reads it where this part ends."""
    pyproject.start(phases=(1,))
    with pyproject.sup.apply.attempt("run-1", "P1") as attempt:
        attempt.write_files({
            "autopack.toml": b"[gate]\nstatic_checks = []\n",
            "src/calc.py": b"# TODO later\ndef add(a, b):\n    return a + b\n",
        })
        with pytest.raises(ScopeViolation, match=r"autopack\.toml: forbidden_path"):
            pyproject.sup.apply.gate("run-1", "P1", attempt)
    assert any(key.startswith("gate_forbidden_path") for key in _issues(pyproject)), (
        _issues(pyproject))


def test_the_tier_ci_run_cap_stops_ci(pyproject: Project) -> None:
    pyproject.start(phases=(1,))  # one phase: ci_run_cap 2
    for _ in range(2):
        with pyproject.sup.apply.attempt("run-1", "P1") as attempt:
            attempt.write_files({"src/calc.py": b"def add(a, b):\n    return 0\n"})
            pyproject.sup.apply.gate("run-1", "P1", attempt)
            result = pyproject.sup.apply.ci("run-1", "P1", attempt, "ready")
    assert result.attempts == 0 and result.stopped_early
    assert pyproject.sup.get_run("run-1").tiers[0].ci_runs_used == 2


def test_under_bwrap_a_ci_command_cannot_move_main(settings: Settings, tmp_path: Path) -> None:
    from tests.gitutil import git
    need_bwrap()
    evil = ("git -c user.name=x -c user.email=y commit -q --allow-empty -m evil"
            " && git update-ref refs/heads/main HEAD")
    repo = make_repo(tmp_path / "area" / "project", {
        "autopack.toml": f'[ci]\nisolation = "bwrap"\nmax_attempts = 1\n'
                         f'env = {{ PATH = "/usr/bin:/bin" }}\n'
                         f'[ci.profiles.normal]\ncommands = ["{evil}"]\n'
                         f'[ci.profiles.strict]\ncommands = ["{evil}"]\n',
        "src/a.py": "A = 1\n",
    })
    main = git(repo, "rev-parse", "main")
    sup = Supervisor(settings)
    sup.start()
    try:
        project = Project(repo, sup, fingerprint(repo), set())
        project.start(phases=(1,))
        with sup.apply.attempt("run-1", "P1") as attempt:
            attempt.write_files({"src/a.py": b"A = 2\n"})
            sup.apply.gate("run-1", "P1", attempt)
            result = sup.apply.ci("run-1", "P1", attempt, "ready")
        assert not result.green
        assert git(repo, "rev-parse", "main") == main
        assert fingerprint(repo) == project.before
    finally:
        sup.close()
