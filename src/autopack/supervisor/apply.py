"""The governed apply path as the Supervisor runs it: attempts, gate, snapshots, promotion.

Git work is done by `autopack.vcs`; this module ties it to the database: an attempt's
canonical diff is stored before any check runs, every refusal is recorded as an issue
with source `gate`, every snapshot is recorded once, and promotion is decided from the
run's rows and recorded with who did it and when.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autopack.artefacts.layout import committed_issues_path
from autopack.ci.preflight import PreflightResult
from autopack.db import attempts, issues, runs
from autopack.db.database import Database
from autopack.db.issues import IssueReport
from autopack.db.runs import RepoBinding, RunView
from autopack.domain.categories import BuilderMode
from autopack.domain.errors import (
    ConfigError,
    Conflict,
    InvalidInput,
    NotFound,
    PolicyViolation,
)
from autopack.domain.promotion import promotion_blockers
from autopack.issues.documents import phase_issue_document
from autopack.issues.rules import IssueSource, Severity, issue_key
from autopack.jsontext import document_text
from autopack.plan.spec import RunSpec
from autopack.settings import Settings
from autopack.supervisor.faults import crash_point
from autopack.supervisor.records import RecordIssue
from autopack.supervisor.verify import Verifier, project_config
from autopack.vcs import refs
from autopack.vcs.changes import Change
from autopack.vcs.git import Git, Identity
from autopack.vcs.integration import (
    IntegrationStatus,
    check_ref_safe_ids,
    create_integration_branch,
    integration_ref,
    integration_status,
    main_tip,
)
from autopack.vcs.promotion import (
    PromotionAction,
    PromotionPlan,
    foreign_commits,
    plan_promotion,
    promote,
)
from autopack.vcs.scope import PhaseScope, Refusal, ScopeViolation, check_changes
from autopack.vcs.snapshot import (
    Snapshot,
    SnapshotRequest,
    commit_summary,
    snapshot_tags,
    take_snapshot,
)
from autopack.vcs.workspace import SCRATCH_PREFIX, Attempt, Worktrees

"""Run-folder entries not committed with the summaries: command logs and the incident
pack stay local (they may be large and name local paths)."""


class PromotionRefused(PolicyViolation):
    """A run that is not eligible for promotion; `reasons` says why."""

    def __init__(self, run_id: str, reasons: Sequence[str]) -> None:
        self.reasons = list(reasons)
        super().__init__(f"run {run_id!r} is not eligible for promotion: "
                         + "; ".join(self.reasons))


@dataclass(frozen=True)
class PromotionResult:
    """What promotion did (or, in a dry run, would do)."""

    run_id: str
    dry_run: bool
    plan: PromotionPlan
    main_commit: str


def check_git_ids(spec: RunSpec) -> None:
    """Refuse a run git could not name: its id in the integration branch, a phase id in
    a snapshot tag (InvalidInput naming `run.run_id` or `phases[N].phase_id`)."""
    check_ref_safe_ids(spec.run.run_id, (p.phase_id for p in spec.phases))


def gate_issue(refusal: Refusal) -> IssueReport:
    """The issue a scope refusal is recorded as: `gate_{rule}__{path}`, major."""
    return IssueReport(
        issue_key=issue_key(f"gate_{refusal.rule}", refusal.path),
        severity=Severity.MAJOR,
        source=IssueSource.GATE,
        category=f"gate_{refusal.rule}",
        evidence_refs=(refusal.path[:500],),
        description=str(refusal)[:2000],
    )


class GovernedApply:
    """Repository operations of runs, over one database and one settings object."""

    def __init__(self, settings: Settings, db: Database, record_issue: RecordIssue,
                 rendered: Callable[[str], dict[str, bytes]]) -> None:
        self.settings = settings
        self.db = db
        self._record_issue = record_issue
        self._rendered = rendered  # a run's views from the database (Supervisor.rendered)
        self._identity = Identity(settings.git_author_name, settings.git_author_email)
        self.verifier = Verifier(settings, db, record_issue)

    def git(self, path: str | Path) -> Git:
        """A git runner in `path` with Autopack's identity."""
        return Git(Path(path), self._identity)

    # -- run start ---------------------------------------------------------------------

    def bind(self, spec: RunSpec, after_run: str | None = None) -> RepoBinding | None:
        """`check_binding`, then remove attempt worktrees dead engines left behind."""
        binding = self.check_binding(spec, after_run)
        if binding is not None:
            Worktrees(self.git(binding.path), self.settings.data_dir).cleanup_stale()
        return binding

    def check_binding(self, spec: RunSpec, after_run: str | None = None
                      ) -> RepoBinding | None:
        """Check a new run's repository and read its base commit (writes nothing): main's
        tip, or for the next part of a split plan the integration tip of `after_run`."""
        if spec.repo is None:
            return None
        path = Path(spec.repo.path)
        git = self._checked_git("repo.path", path)
        check_git_ids(spec)
        try:
            base = main_tip(git, spec.repo.main_branch)
        except InvalidInput as exc:
            raise InvalidInput("repo.main_branch", exc.message) from exc
        if after_run is not None:
            tip = refs.current(git, integration_ref(after_run))
            if tip is None:
                raise Conflict(f"{integration_ref(after_run)} is missing; the next part of "
                               "the plan cannot start from it")
            base = tip
        if refs.current(git, integration_ref(spec.run.run_id)) is not None:
            raise Conflict(f"{integration_ref(spec.run.run_id)} already exists in "
                           f"{spec.repo.path}; choose another run_id")
        in_the_way = refs.in_the_way(git, integration_ref(spec.run.run_id))
        if in_the_way is not None:
            raise Conflict(f"run.run_id: {integration_ref(spec.run.run_id)} cannot be created "
                           f"in {spec.repo.path}: {in_the_way} exists (git keeps a branch "
                           "and a folder of branches apart); choose another run_id")
        return RepoBinding(str(path.resolve()), spec.repo.main_branch, base)

    def start(self, run_id: str, binding: RepoBinding) -> None:
        """Create the run's integration branch at its base commit."""
        create_integration_branch(self.git(binding.path), run_id, binding.base_commit)

    def restore_branch(self, run_id: str) -> None:
        """Create the run's integration branch at its base commit when the process that
        created the run died before making it (no phase has a snapshot yet); refuse
        (Conflict) to go on while the branch is checked out somewhere, before any work
        that could not be committed (`refs.update_ref` would refuse its move)."""
        view = self._view(run_id)
        if view.run.repo_path is None or view.run.base_commit is None:
            return
        git = self._repo_git(view)
        ref = integration_ref(run_id)
        if refs.current(git, ref) is None and not self.snapshots(run_id):
            create_integration_branch(git, run_id, view.run.base_commit)
        refs.check_not_checked_out(git, ref)

    def committed_config_problem(self, run_id: str) -> str | None:
        """Why autopack.toml at the run's base commit cannot be read, if it cannot (the
        commit never changes: such a run can never check its work)."""
        view = self._view(run_id)
        if view.run.repo_path is None:
            return None
        try:
            project_config(self._repo_git(view), view.run.base_commit)
        except ConfigError as exc:
            return str(exc)
        return None

    # -- attempts ----------------------------------------------------------------------

    @contextmanager
    def attempt(self, run_id: str, phase_id: str, author: str = "builder"
                ) -> Iterator[Attempt]:
        """A fresh worktree for the phase's next attempt, removed afterwards. The attempt
        is stored at once (empty, `pending`, with its author: `builder` or `auditor`), so
        its number is taken even when it ends before the gate.

        A scope refusal raised inside (by an intake form) is stored with the attempt and
        recorded as gate issues before it propagates.
        """
        view = self._view(run_id)
        phase = _phase(view, phase_id)
        git = self._repo_git(view)
        tip = refs.current(git, integration_ref(run_id))
        if tip is None:
            raise Conflict(f"{integration_ref(run_id)} is missing; the run cannot continue")
        with self.db.write() as conn:
            number = attempts.next_attempt_number(conn, run_id, phase_id)
            attempts.open_attempt(conn, run_id, phase_id, number, tip, author)
        with Worktrees(git, self.settings.data_dir).attempt(run_id, phase_id, number,
                                                            tip) as opened:
            try:
                yield opened
            except ScopeViolation as exc:
                if not self.stored_attempt(run_id, phase_id, number).diff_sha256:
                    # refused at intake, before any capture: keep what was handed in
                    self._store(run_id, phase_id, number,
                                Change(tip, (), opened.received, "", truncated=False))
                self._refuse(run_id, phase, number, exc.refusals)
                raise

    def capture(self, run_id: str, phase_id: str, attempt: Attempt) -> Change:
        """Store what the attempt's worktree now holds as its canonical diff."""
        change = attempt.capture(self.settings.max_diff_bytes)
        self._store(run_id, phase_id, attempt.number, change)
        return change

    def conclude(self, run_id: str, phase_id: str, number: int, outcome: str,
                 failure: str | None = None) -> None:
        """Mark an attempt `green` (awaiting the Auditor), `ready` for its snapshot, or
        `failed` with why."""
        with self.db.write() as conn:
            attempts.set_outcome(conn, run_id, phase_id, number, outcome, failure)

    def last_attempt(self, run_id: str, phase_id: str) -> Any:
        """A phase's latest attempt (with its diff), or None."""
        with self.db.read() as conn:
            return attempts.last_attempt(conn, run_id, phase_id)

    def stored_attempt(self, run_id: str, phase_id: str, number: int) -> Any:
        """One stored attempt with its diff (NotFound when there is none)."""
        with self.db.read() as conn:
            return attempts.get_attempt(conn, run_id, phase_id, number)

    def failed_attempts(self, run_id: str, phase_id: str) -> Sequence[Any]:
        """A phase's failed attempts, newest first."""
        with self.db.read() as conn:
            return attempts.failed_attempts(conn, run_id, phase_id)

    @contextmanager
    def checkout(self, run_id: str, phase_id: str, number: int) -> Iterator[Attempt]:
        """A worktree holding a stored attempt's change (for a reviewer to read), removed
        afterwards."""
        view = self._view(run_id)
        with self.db.read() as conn:
            row = attempts.get_attempt(conn, run_id, phase_id, number)
        with Worktrees(self._repo_git(view), self.settings.data_dir).attempt(
                run_id, phase_id, number, row.base_commit) as opened:
            if bytes(row.diff).strip() and not row.diff_truncated:
                opened.apply_diff(bytes(row.diff))
            yield opened

    def record_review(self, run_id: str, phase_id: str, attempt_number: int, reason: str,
                      verdict: str, notes: str, patch: str | None, tokens: int) -> int:
        """Keep one Auditor call (with its patch); returns how many the phase has had."""
        with self.db.write() as conn:
            return attempts.record_review(conn, run_id, phase_id, attempt_number, reason,
                                          verdict, notes, patch, tokens)

    def last_review(self, run_id: str, phase_id: str) -> Any:
        """A phase's latest Auditor call, or None."""
        with self.db.read() as conn:
            return attempts.last_review(conn, run_id, phase_id)

    def reviews(self, run_id: str) -> Sequence[Any]:
        """A run's Auditor calls in order."""
        with self.db.read() as conn:
            return attempts.list_reviews(conn, run_id)

    def reviews_used(self, run_id: str, phase_id: str) -> int:
        """How many times the Auditor was called on a phase."""
        last = self.last_review(run_id, phase_id)
        return int(last.number) if last is not None else 0

    def gate(self, run_id: str, phase_id: str, attempt: Attempt) -> Change:
        """Capture the attempt's change, store it, then run the scope checks.

        Raises ScopeViolation (after recording) when any rule is broken.
        """
        view = self._view(run_id)
        phase = _phase(view, phase_id)
        git = self._repo_git(view)
        project_ci, project_gate = project_config(git, view.run.base_commit)
        change = self.capture(run_id, phase_id, attempt)
        stage = self._strategy(run_id)["adoption_stage"]
        scope = PhaseScope(  # builder modes cap changes from adoption stage 2 (SPEC §11)
            paths=tuple(phase.scope or ()),
            task_category=phase.task_category,
            builder_mode=BuilderMode(phase.builder_mode) if phase.builder_mode
            and stage >= 2 else None,
        )
        policy = self.settings.gate
        if project_gate.forbidden_paths is not None:
            policy = policy.model_copy(update={"forbidden_paths": project_gate.forbidden_paths})
        refusals = check_changes(change.files, scope, policy)
        if change.truncated and not refusals:
            refusals = [Refusal(f"({len(change.diff)} bytes)", "diff_too_large",
                                f"the diff exceeds {self.settings.max_diff_bytes} bytes")]
        if refusals:
            self._refuse(run_id, phase, attempt.number, refusals)
            raise ScopeViolation(refusals)
        with self.db.write() as conn:
            attempts.set_gate_outcome(conn, run_id, phase_id, attempt.number, [])
        self.verifier.static_checks(view, phase, attempt, change, project_ci, project_gate)
        return change

    def ci(self, run_id: str, phase_id: str, attempt: Attempt, outcome_if_green: str
           ) -> PreflightResult:
        """CI on the attempt's worktree with the profile its strategy chose (SPEC §10); the
        attempt ends `outcome_if_green` (`ready` or `green`) or `failed` with the runs."""
        view = self._view(run_id)
        phase = _phase(view, phase_id)
        planned = next(p for p in self._strategy(run_id)["phases"]
                       if p["phase_id"] == phase_id)
        return self.verifier.run_ci(view, phase, attempt, self._repo_git(view),
                                    planned["ci_profile"], planned["high_risk"],
                                    planned["ci_max_attempts"], outcome_if_green)

    # -- snapshots ---------------------------------------------------------------------

    def snapshot(self, run_id: str, phase_id: str, number: int, tokens: int) -> Snapshot:
        """Commit a gated attempt and the phase's issue file; tag it. Idempotent."""
        view = self._view(run_id)
        phase = _phase(view, phase_id)
        with self.db.read() as conn:
            attempt = attempts.get_attempt(conn, run_id, phase_id, number)
            rows, links = issues.run_issues(conn, run_id)
            seen = issues.backlog_for_keys(conn, view.run.project_id,
                                           [r.issue_key for r in rows])
        if attempt.gate_status != "passed":
            raise Conflict(f"attempt {number} of phase {phase_id!r} is {attempt.gate_status}, "
                           "not passed; only a gated change is committed")
        document = phase_issue_document(phase, {r.issue_key: r for r in rows}, links,
                                        {b.issue_key: b for b in seen})
        request = SnapshotRequest(
            run_id=run_id, phase_id=phase_id, seq=phase.phase_index, title=phase.name,
            base=attempt.base_commit, diff=attempt.diff, tokens=tokens,
            extra_files={committed_issues_path(run_id, phase.phase_index, phase_id):
                         document_text(document).encode()},
        )
        taken = take_snapshot(self._repo_git(view), request)
        crash_point("snapshot_committed")
        with self.db.write() as conn:
            attempts.record_snapshot(conn, run_id, phase_id, number, taken.commit,
                                     taken.tag.removeprefix("refs/tags/"))
        return taken

    def commit_summaries(self, run_id: str, files: dict[str, bytes]) -> str | None:
        """Commit the finished run's views (`files`, rendered from the database: its
        summaries, tier, phase and issue files, strategy; never what else lies in its
        folder) to its integration branch; the new commit, or None when the branch
        already holds it, the run has no repository, or the run was promoted (main holds
        its branch: nothing more goes on it)."""
        view = self._view(run_id)
        if view.run.repo_path is None or view.run.promoted_commit is not None:
            return None
        return commit_summary(self._repo_git(view), run_id, {
            f".autonomous_runs/{run_id}/{rel}": data for rel, data in files.items()})

    def clear_stale_locks(self, run_id: str) -> list[Path]:
        """Remove git's lock files of the run's own refs (integration branch, snapshot
        tags, scratch branches) that a git command killed with a dead engine left; the
        caller holds the run's lease, so no one else writes these refs."""
        view = self._view(run_id)
        if view.run.repo_path is None:
            return []
        return refs.clear_stale_locks(self._repo_git(view), (
            integration_ref(run_id), snapshot_tags(run_id), f"{SCRATCH_PREFIX}{run_id}/"))

    def cleanup_stale(self, run_id: str) -> list[Path]:
        """Remove attempt worktrees (and scratch branches) left by dead processes in the
        run's repository; returns their paths."""
        view = self._view(run_id)
        if view.run.repo_path is None:
            return []
        return Worktrees(self._repo_git(view), self.settings.data_dir).cleanup_stale()

    def snapshot_of(self, run_id: str, phase_id: str) -> Any:
        """A phase's recorded snapshot, or None."""
        with self.db.read() as conn:
            return attempts.get_snapshot(conn, run_id, phase_id)

    def snapshots(self, run_id: str) -> Sequence[Any]:
        """A run's snapshots, in the order they were made."""
        with self.db.read() as conn:
            return attempts.list_snapshots(conn, run_id)

    # -- status and promotion ------------------------------------------------------------

    def status(self, run_id: str) -> IntegrationStatus | None:
        """Where the run's integration branch stands; None when the run has no repo."""
        view = self._view(run_id)
        if view.run.repo_path is None:
            return None
        return integration_status(self._repo_git(view), run_id, view.run.main_branch,
                                  view.run.base_commit)

    def promote(
        self, run_id: str, actor: str, repo: Path | None = None, dry_run: bool = False
    ) -> PromotionResult:
        """Promote an eligible run's integration branch to main (or show how)."""
        view = self._view(run_id)
        blockers = promotion_blockers(view.run, view.tiers)
        if blockers:
            raise PromotionRefused(run_id, blockers)
        git = self._repo_git(view) if repo is None else self._run_repository(view, repo)
        if view.run.base_commit is not None:
            recorded = {s.commit for s in self.snapshots(run_id)}
            foreign = foreign_commits(git, run_id, view.run.base_commit, recorded,
                                      self._rendered(run_id))
            if foreign:  # e.g. by a process a builder left running: never gated
                raise PromotionRefused(run_id, [
                    f"{integration_ref(run_id).removeprefix('refs/heads/')} holds a commit "
                    f"Autopack did not make: {c}"
                    for c in foreign])
        main_branch = view.run.main_branch or "main"
        plan = plan_promotion(git, run_id, main_branch, self.settings.promotion_merge)
        if dry_run:
            return PromotionResult(run_id, True, plan, plan.old)
        commit = promote(git, plan)
        already = plan.action is PromotionAction.UP_TO_DATE and view.run.promoted_commit
        if not already:
            with self.db.write() as conn:
                runs.record_promotion(conn, run_id, commit, plan.action.value, actor)
        return PromotionResult(run_id, False, plan, commit)

    # -- helpers -------------------------------------------------------------------------

    def _run_repository(self, view: RunView, path: Path) -> Git:
        """`path` as the run's repository (a clone or a move of it): it must hold the
        run's integration branch and base commit, or it is another repository."""
        git = self._checked_git("--repo", path)
        branch = integration_ref(view.run.run_id)
        # the run's own commits: its base, and its snapshots (a look-alike repository
        # with a run of the same id has the base and the branch, not these)
        commits = [view.run.base_commit, *(s.commit for s in self.snapshots(view.run.run_id))]
        if refs.current(git, branch) is None or any(
                commit is not None and git.run("merge-base", "--is-ancestor", commit, branch,
                                               check=False).returncode != 0
                for commit in commits):
            raise InvalidInput("--repo", f"{path} is not the repository of run "
                               f"{view.run.run_id!r}: it has no "
                               f"{branch.removeprefix('refs/heads/')} or not the run's base")
        return git

    def _checked_git(self, where: str, path: Path) -> Git:
        try:
            is_dir = path.is_dir()
        except OSError as exc:  # e.g. a path too long for the system
            raise InvalidInput(where, f"{str(path)!r} cannot be looked up: "
                               f"{exc.strerror}") from None
        if not is_dir:
            raise InvalidInput(where, f"{str(path)!r} is not a directory")
        git = self.git(path)
        if git.run("rev-parse", "--git-dir", check=False).returncode != 0:
            raise InvalidInput(where, f"{str(path)!r} is not a git repository")
        return git

    def _strategy(self, run_id: str) -> dict[str, Any]:
        with self.db.read() as conn:
            strategy: dict[str, Any] = json.loads(runs.get_strategy(conn, run_id).document)
        return strategy

    def _view(self, run_id: str) -> RunView:
        with self.db.read() as conn:
            return runs.get_run(conn, run_id)

    def _repo_git(self, view: RunView) -> Git:
        if view.run.repo_path is None:
            raise Conflict(f"run {view.run.run_id!r} has no repository")
        if not Path(view.run.repo_path).is_dir():
            raise Conflict(f"run {view.run.run_id!r}: its repository {view.run.repo_path} "
                           "no longer exists")
        return self.git(view.run.repo_path)

    def _store(self, run_id: str, phase_id: str, number: int, change: Change) -> None:
        with self.db.write() as conn:
            attempts.store_change(conn, run_id, phase_id, number, change)

    def _refuse(self, run_id: str, phase: Any, number: int, refusals: Sequence[Refusal]) -> None:
        with self.db.write() as conn:
            attempts.set_gate_outcome(conn, run_id, phase.phase_id, number, refusals)
        for refusal in refusals:
            self._record_issue(run_id, phase.phase_id, gate_issue(refusal))


def _phase(view: RunView, phase_id: str) -> Any:
    try:
        return view.phase(phase_id)
    except KeyError:
        raise NotFound("phase", phase_id) from None
