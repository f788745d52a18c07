"""Promotion: the only code that writes the project's main branch.

`plan_promotion` works out what would happen (fast-forward, merge, or nothing) without
writing a ref; `promote` carries it out through `refs.update_ref` with a
`PromotionGrant` for main alone. When main is checked out somewhere (usually the
user's own checkout), that checkout must be clean, and it is moved along with the
branch so its HEAD, index and files agree afterwards.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from autopack.domain.errors import Conflict
from autopack.vcs import refs
from autopack.vcs.git import Git
from autopack.vcs.integration import integration_ref, main_tip


class PromotionAction(StrEnum):
    """What promoting a run does to main."""

    FAST_FORWARD = "fast-forward"
    MERGE = "merge"
    UP_TO_DATE = "up-to-date"


@dataclass(frozen=True)
class PromotionPlan:
    """What `promote` will do: main from `old` to `new`, and checkouts to move."""

    run_id: str
    main_branch: str
    action: PromotionAction
    old: str
    new: str
    integration_tip: str
    checkouts: tuple[Path, ...] = field(default=())


def plan_promotion(git: Git, run_id: str, main_branch: str, allow_merge: bool) -> PromotionPlan:
    """Decide how main would reach the run's integration tip; refuse when it cannot."""
    ref = integration_ref(run_id)
    tip = refs.current(git, ref)
    if tip is None:
        raise Conflict(f"{ref} does not exist; nothing to promote")
    main = main_tip(git, main_branch)
    checkouts = refs.checkouts_of(git, f"refs/heads/{main_branch}")
    if _is_ancestor(git, tip, main):
        return PromotionPlan(run_id, main_branch, PromotionAction.UP_TO_DATE, main, main, tip)
    if _is_ancestor(git, main, tip):
        action, new = PromotionAction.FAST_FORWARD, tip
    elif not allow_merge:
        raise Conflict(f"{main_branch} has moved since the run started and merging is "
                       "disabled (promotion.merge = false); only a fast-forward is allowed")
    else:
        action, new = PromotionAction.MERGE, _merge_commit(git, run_id, main_branch, main, tip)
    for path in checkouts:
        _check_checkout_can_move(git.at(path), main, new)
    return PromotionPlan(run_id, main_branch, action, main, new, tip, checkouts)


def foreign_commits(git: Git, run_id: str, base: str, recorded: set[str],
                    views: Mapping[str, bytes]) -> list[str]:
    """Commits on the run's integration branch since `base` that Autopack did not make:
    neither a recorded snapshot nor a summary commit of the run. Each as `sha subject`.

    A summary commit has one parent and the summary trailers, and changes only the
    run's views (`views`: path in the run folder -> bytes, as rendered from the
    database now), each to exactly those bytes as a regular file: anything else under
    the run's folder (a script, a link, an edited `run_summary.json` that a CI
    `promotion check` would read) is not Autopack's, whatever its message says."""
    tip = refs.current(git, integration_ref(run_id))
    if tip is None:
        return []
    found = []
    for line in git.text("rev-list", "--parents", f"{base}..{tip}").splitlines():
        commit, *parents = line.split()
        if commit in recorded or _is_summary_commit(git, run_id, commit, parents, views):
            continue
        found.append(f"{commit[:12]} {git.text('log', '-1', '--format=%s', commit)}")
    return found


def _is_summary_commit(git: Git, run_id: str, commit: str, parents: list[str],
                       views: Mapping[str, bytes]) -> bool:
    if len(parents) != 1:
        return False
    message = git.text("log", "-1", "--format=%B", commit)
    if f"Autopack-Run: {run_id}\nAutopack-Summary: final" not in message:
        return False
    folder = f".autonomous_runs/{run_id}/"
    raw = git.run("diff-tree", "-r", "--no-commit-id", "-z", parents[0], commit).stdout
    fields = raw.decode("utf-8", "surrogateescape").split("\0")
    for status, path in zip(fields[0::2], fields[1::2], strict=False):
        if not status:
            continue
        _old_mode, new_mode, _old, blob, _kind = status.lstrip(":").split(" ")
        rel = path.removeprefix(folder)
        if (not path.startswith(folder) or rel not in views or new_mode != "100644"
                or git.run("cat-file", "blob", blob).stdout != views[rel]):
            return False
    return True


def promote(git: Git, plan: PromotionPlan) -> str:
    """Move main (and checkouts of it) as planned; return main's new commit."""
    if plan.action is PromotionAction.UP_TO_DATE:
        return plan.old
    ref = f"refs/heads/{plan.main_branch}"
    grant = refs.PromotionGrant(ref=ref, run_id=plan.run_id)
    # checkouts first: a process killed before the ref moves leaves checkouts already at
    # the new commit, which the next promotion accepts and completes; the other order
    # left main moved and its checkout showing the whole run reverted
    for path in plan.checkouts:
        git.at(path).run("read-tree", "-m", "-u", plan.old, plan.new)
    try:
        refs.update_ref(git, ref, plan.new, plan.old, grant=grant,
                        reason=f"autopack promote {plan.run_id} ({plan.action.value})")
    except Conflict:  # main moved meanwhile: put the checkouts back where it was
        for path in plan.checkouts:
            git.at(path).run("read-tree", "-m", "-u", plan.new, plan.old, check=False)
        raise
    return plan.new


def _is_ancestor(git: Git, ancestor: str, descendant: str) -> bool:
    done = git.run("merge-base", "--is-ancestor", ancestor, descendant, check=False)
    return done.returncode == 0


def _merge_commit(git: Git, run_id: str, main_branch: str, main: str, tip: str) -> str:
    merged = git.run("merge-tree", "--write-tree", "--name-only", "--no-messages", main, tip,
                     check=False)
    lines = merged.text.splitlines()
    if merged.returncode == 1:
        shown = ", ".join(lines[1:11]) + (" ..." if len(lines) > 11 else "")
        raise Conflict(f"merging {integration_ref(run_id)} into {main_branch} conflicts in: "
                       f"{shown}; promotion refused, main unchanged")
    if merged.returncode != 0:
        raise Conflict(f"git merge-tree failed: {merged.stderr.decode(errors='replace')}")
    message = (f"Promote autopack run {run_id} into {main_branch}\n\n"
               f"Autopack-Run: {run_id}\n")
    return git.run("commit-tree", lines[0], "-p", main, "-p", tip, "-F", "-",
                   input=message.encode()).text


def _check_checkout_can_move(git: Git, old: str, new: str) -> None:
    dirty = git.text("status", "--porcelain", "--untracked-files=no")
    if dirty and not _holds_exactly(git, new):
        raise Conflict(f"main is checked out at {git.cwd} with uncommitted changes; "
                       "commit or stash them (or check out another branch) and promote again")
    trial = git.run("read-tree", "-m", "-u", "-n", old, new, check=False)
    if trial.returncode != 0:
        raise Conflict(f"main is checked out at {git.cwd} and moving it would overwrite: "
                       f"{trial.stderr.decode(errors='replace').strip()}")


def _holds_exactly(git: Git, commit: str) -> bool:
    """True when a checkout's index and files are exactly `commit` (a promotion moved
    them and was killed before it moved the branch)."""
    staged = git.run("diff", "--cached", "--quiet", commit, "--", check=False).returncode
    return staged == 0 and git.run("diff", "--quiet", "--", check=False).returncode == 0
