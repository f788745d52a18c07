"""Attacks through links in a run's folder: Autopack writes its views, logs, locks and
incident pack only into real folders of the run folder, never wherever a link planted
there points — whether the repository commits the link or a command makes it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.e2e.run_helpers import project, run, script, user_view
from tests.gitutil import git

PLAN = """\
    # Plan: Calc
    ## Tier T1: Code
    ### Phase P1: Extra
    - category: feature_scaffolding
    - command: {command}
    """


@pytest.mark.parametrize("planted", ["tiers", "logs", "incident", ".engine.lock", ".lock"])
def test_a_link_committed_in_the_run_folder_is_refused_before_the_run(
    tmp_path: Path, planted: str,
) -> None:
    """The repository commits `.autonomous_runs/calc/<planted>` as a link to its `src/`
    (or to a file outside): the views, logs, incident pack or lock files went there,
    overwriting the user's files."""
    outside = tmp_path / "outside"
    outside.mkdir()
    repo = project(tmp_path)
    link = repo / ".autonomous_runs" / "calc" / planted
    link.parent.mkdir(parents=True)
    link.symlink_to(outside / "victim" if planted.endswith(".lock") else outside)
    git(repo, "add", "-f", ".autonomous_runs")
    git(repo, "commit", "-q", "-m", "plant a link")
    before = user_view(repo)
    done = run(tmp_path, repo, PLAN.format(command="true"))
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"{link} is a link" in done.stderr
    assert list(outside.iterdir()) == []
    assert user_view(repo) == before
    assert git(repo, "branch", "--list", "autopack/*") == ""


def test_a_link_a_builder_plants_for_the_next_attempt_is_refused(tmp_path: Path) -> None:
    """A first attempt (failing CI on purpose) links the second attempt's log folder to a
    folder outside: the second attempt's feedback and logs were written there."""
    outside = tmp_path / "outside"
    outside.mkdir()
    plants = script(tmp_path, "plants.py", f"""
        import os
        from pathlib import Path
        logs = Path(os.environ['AUTOPACK_FEEDBACK_FILE']).parents[2]  # logs/P1
        nxt = logs / 'attempt-2'
        if not nxt.exists():
            nxt.symlink_to({str(outside)!r})
        Path('src/calc.py').write_text('def add(a, b):\\n    return a - b\\n')  # CI fails
        """)
    repo = project(tmp_path)
    done = run(tmp_path, repo, PLAN.format(command=plants))
    assert done.returncode == 1, done.stdout + done.stderr
    doc = json.loads(done.stdout)
    assert (doc["state"], doc["failure_reason"]) == ("DONE_FAILED_POLICY_VIOLATION",
                                                     "POLICY_VIOLATION")
    assert list(outside.iterdir()) == []
    assert os.path.islink(repo / ".autonomous_runs" / "calc" / "logs" / "P1" / "attempt-2")
