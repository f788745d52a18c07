"""The run engine: drives a created run through SPEC §3, one phase at a time — builder
attempt, gate, CI, the Auditor when the strategy or a failure loop calls for it,
snapshot — with budgets checked before every step, and ends it in DONE_SUCCESS or the
matching DONE_FAILED_* state.

Every step commits its effects through the Supervisor's services before the next starts
(phase moves, token charges, issues, stored attempts and their outcomes, Auditor verdicts,
snapshots), so the database always says where a run is, and `run()` on a run whose
process died continues from there: a stored `ready` attempt is snapshotted, a `green`
one goes back to the Auditor, an attempt cut short is marked `interrupted` and the next
one starts.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from autopack.builders.offline import CommandAuditor, CommandContext, choose_builder
from autopack.builders.protocol import (
    Auditor,
    BuilderRequest,
    BuilderResult,
    ReviewRequest,
    SuggestedIssue,
    Usage,
    Verdict,
    VerdictKind,
)
from autopack.ci.runner import check_isolation, command_environment
from autopack.db.issues import IssueReport
from autopack.db.models import utcnow
from autopack.db.runs import PhaseStatusUpdate, RunView
from autopack.domain.categories import SafetyProfile
from autopack.domain.errors import Conflict, InvalidInput, PolicyViolation
from autopack.domain.promotion import promotion_blockers, tier_cleanliness, tier_flags
from autopack.domain.states import PhaseState, RunState
from autopack.issues.rules import IssueSource, Severity
from autopack.plan.spec import RunSpec
from autopack.project_config import ProjectConfig
from autopack.supervisor.faults import crash_point
from autopack.supervisor.incident import write_incident
from autopack.supervisor.lease import drive_lease
from autopack.supervisor.service import Supervisor
from autopack.supervisor.verify import check_committed_config
from autopack.vcs.git import GitError
from autopack.vcs.scope import ScopeViolation
from autopack.vcs.workspace import Attempt, PatchDoesNotApply

ACTOR = "engine"


LOW_SIGNAL_REPEATS = 2
"""Failed attempts in a row that changed nothing or failed the same way before the
Auditor is called (SPEC §9: repeated low-signal Builder attempts → Auditor)."""


@dataclass(frozen=True)
class Failure:
    """Why a phase (or one attempt of it) did not complete: a DONE_FAILED_* reason and a
    sentence. A `final` failure ends the phase at once; others may be retried."""

    reason: str
    detail: str
    final: bool = False


Make = Callable[[Attempt, Path], BuilderResult]
"""Changes an attempt's worktree (a Builder, or the Auditor's patch) given its log dir."""


@dataclass(frozen=True)
class EngineOptions:
    """How a run is driven: builder and auditor names, where the plan's files are."""

    builder: str = "auto"
    auditor: str | None = None
    plan_dir: Path = Path(".")
    extras: dict[str, dict[str, str]] = field(default_factory=dict)
    on_step: Callable[[RunView, str], None] | None = None
    """Called after every state change with the run as it now is and what happened."""


class Engine:
    """Drives one run to a terminal state."""

    def __init__(self, sup: Supervisor, config: ProjectConfig, options: EngineOptions) -> None:
        self.sup = sup
        self.config = config
        self.options = options
        env = command_environment(config.ci.pass_env, config.ci.env)
        self.context = CommandContext(env=env, timeout_seconds=config.builder.timeout_seconds,
                                      max_log_bytes=config.ci.max_log_bytes,
                                      isolation=config.ci.isolation_for())
        # builder, static-check, CI and Auditor commands all run under this isolation:
        # a tool that cannot run here is refused before any run starts or resumes
        check_isolation(self.context.isolation)
        self.auditor = self._auditor()

    def check(self, phase_ids: Iterable[str]) -> None:
        """Refuse (InvalidInput), before anything runs, a phase the chosen builder cannot
        build."""
        for phase_id in phase_ids:
            choose_builder(self.options.builder, self.options.extras.get(phase_id, {}),
                           phase_id, self.context)

    def check_new_run(self, spec: RunSpec) -> None:
        """Refuse, before anything is written, a run this engine could not drive: a phase
        no builder can take; a repository, main branch or id git refuses; autopack.toml
        at the base commit unreadable, or its isolation unavailable here."""
        self.check(p.phase_id for p in spec.phases)
        binding = self.sup.apply.check_binding(spec)
        if binding is not None:
            check_committed_config(self.sup.apply.git(binding.path), binding.base_commit)

    def run(self, run_id: str) -> RunView:
        """Drive the run until it is terminal, then leave its record (summaries committed
        to the integration branch; the incident pack of a failed run); return it as it
        ended. A run that is already terminal only gets its record brought up to date.

        Holds the run's lease throughout: RunBusy when another engine is driving it.
        NotFound for an unknown run, before the lease would create its folder."""
        self.sup.get_run(run_id)
        with drive_lease(self.sup.artefacts.layout(run_id), self.sup.db):
            if not RunState(self.sup.get_run(run_id).run.state).is_terminal:
                self._drive(run_id)
            return self._finish(run_id)

    def _finish(self, run_id: str) -> RunView:
        view, note = record_end(self.sup, run_id)
        if note and self.options.on_step is not None:
            self.options.on_step(view, note)
        return view

    def _drive(self, run_id: str) -> None:
        strategy = self.sup.strategy(run_id)
        planned = {p["phase_id"]: p for p in strategy["phases"]}
        self.sup.apply.clear_stale_locks(run_id)  # left by git killed with a dead engine
        self.sup.apply.restore_branch(run_id)  # its creator died before making it
        self.sup.apply.cleanup_stale(run_id)  # worktrees a dead engine left behind
        unreadable = self.sup.apply.committed_config_problem(run_id)
        if unreadable is not None:  # resuming would meet it again at every gate
            ended = self.sup.fail_run(run_id, "ENVIRONMENT", f"the run's autopack.toml "
                                      f"cannot be read: {unreadable}", ACTOR)
            if self.options.on_step is not None:
                self.options.on_step(ended, f"run {ended.run.state}: {unreadable}")
            return
        for phase in self.sup.get_run(run_id).phases:
            if PhaseState(phase.state).is_terminal:
                continue
            try:
                failure = self._phase(run_id, phase.phase_id, planned[phase.phase_id])
            except (GitError, OSError) as exc:
                failure = Failure("ENVIRONMENT", f"git or the filesystem failed: {exc}")
            except PolicyViolation as exc:  # e.g. a link a command planted in the run folder
                failure = Failure("POLICY_VIOLATION", str(exc))
            if failure is None:
                crash_point("phase_complete")
            if failure is not None:
                ended = self.sup.fail_run(run_id, failure.reason, failure.detail, ACTOR)
                if self.options.on_step is not None:
                    self.options.on_step(ended, f"run {ended.run.state}: {failure.detail}")
                return

    # -- one phase ---------------------------------------------------------------------

    def _phase(self, run_id: str, phase_id: str, planned: dict[str, Any]) -> Failure | None:
        """Attempts at one phase until it completes or fails; None when it completed."""
        if self.sup.apply.snapshot_of(run_id, phase_id) is not None:
            self._walk_to_complete(run_id, phase_id)  # the process died after it
            return None
        last = self.sup.apply.last_attempt(run_id, phase_id)
        if last is not None and last.outcome == "ready":  # died before its snapshot
            return self._complete(run_id, phase_id, last.number)
        if last is not None and last.outcome == "pending":  # died during it
            self.sup.apply.conclude(run_id, phase_id, last.number, "interrupted",
                                    "the process died during this attempt")
        extras = self.options.extras.get(phase_id, {})
        try:
            builder = choose_builder(self.options.builder, extras, phase_id, self.context)
        except InvalidInput as exc:
            # `check` refused the plan's own phases before the run began: this is one the
            # strategy added (debt cleanup), which a person has to take on
            return Failure("REQUIRES_HUMAN_REVIEW",
                           f"no builder can take phase {phase_id}: {exc.message}", final=True)
        feedback = (last.failure or "") if last is not None else ""
        pending = self._unanswered(run_id, phase_id, last)
        failure = Failure("POLICY_VIOLATION" if last is not None
                          and last.gate_status == "refused" else "BUILD_FAILURE",
                          feedback or "no attempt completed")
        while True:
            spent = self._budget_spent(run_id, phase_id)
            if spent:
                return Failure("BUDGET_EXHAUSTED", spent, final=True)
            if pending is not None:  # a restart found the Auditor's turn
                after = self._audit(run_id, phase_id, planned, *pending)
                pending = None
            else:
                phase = self.sup.get_run(run_id).phase(phase_id)
                if phase.builder_attempts >= planned["max_builder_attempts"]:
                    return Failure(failure.reason, f"{planned['max_builder_attempts']} "
                                   f"attempts spent; last: {failure.detail}")
                request = self._request(run_id, phase_id, extras, feedback)

                def build(attempt: Attempt, logs: Path, r: BuilderRequest = request
                          ) -> BuilderResult:
                    return builder.build(r, attempt, logs)
                outcome = self._attempt(run_id, phase_id, planned, "builder", build)
                if isinstance(outcome, int):  # green
                    if planned["auto_apply"]:
                        return self._complete(run_id, phase_id, outcome)
                    after = self._audit(run_id, phase_id, planned, "auto_apply_disabled",
                                        outcome)
                elif outcome.final:
                    return outcome
                elif self._low_signal(run_id, phase_id) and self._auditor_available(
                        run_id, phase_id, planned):
                    failure = outcome
                    last = self.sup.apply.last_attempt(run_id, phase_id)
                    after = self._audit(run_id, phase_id, planned, "low_signal_attempts",
                                        last.number, outcome.detail)
                else:
                    failure, after = outcome, outcome.detail
            if after is None:
                return None
            if isinstance(after, Failure):
                if after.final:
                    return after
                failure, after = after, after.detail
            feedback = after

    def _attempt(self, run_id: str, phase_id: str, planned: dict[str, Any], author: str,
                 make: Make) -> int | Failure:
        """One attempt through the governed path — make, gate, CI — returning the attempt
        number when it is green, else why it failed (stored with the attempt)."""
        if self._state(run_id, phase_id) is not PhaseState.EXECUTING:
            self._move(run_id, phase_id, PhaseState.EXECUTING)
        ready = planned["auto_apply"] or author == "auditor"
        number = 0
        try:
            with self.sup.apply.attempt(run_id, phase_id, author) as attempt:
                number = attempt.number
                if author == "builder":  # spent once begun, however it ends
                    self._charge(run_id, phase_id, Usage(), builder_attempt=True)
                crash_point("attempt_opened")
                logs = self.sup.apply.verifier.log_dir(run_id, phase_id, number)
                failure = self._verify(run_id, phase_id, make, attempt, logs, author,
                                       "ready" if ready else "green")
        except ScopeViolation as exc:  # refused at intake (a diff with unsafe paths)
            failure = Failure("POLICY_VIOLATION", f"the gate refused the change: {exc}")
        if failure is not None:
            self.sup.apply.conclude(run_id, phase_id, number, "failed", failure.detail)
        crash_point("concluded")
        return failure if failure is not None else number

    def _verify(self, run_id: str, phase_id: str, make: Make, attempt: Attempt, logs: Path,
                author: str, outcome_if_green: str) -> Failure | None:
        """Make the change, gate it, run CI; None when green (the attempt is then marked
        `outcome_if_green` with its CI runs, in one transaction)."""
        result = make(attempt, logs / author)
        self._charge(run_id, phase_id, result.usage, builder_attempt=False)
        self._suggested(run_id, phase_id, result.suggested_issues,
                        IssueSource.BUILDER_SELF_DOUBT if author == "builder"
                        else IssueSource.AUDITOR)
        crash_point("built")
        if not result.ok:
            self.sup.apply.capture(run_id, phase_id, attempt)
            return Failure("BUILD_FAILURE", f"the {author} failed: {result.summary}")
        self._move(run_id, phase_id, PhaseState.GATE)
        try:
            self.sup.apply.gate(run_id, phase_id, attempt)
        except ScopeViolation as exc:
            return Failure("POLICY_VIOLATION", f"the gate refused the change: {exc}")
        crash_point("gated")
        self._move(run_id, phase_id, PhaseState.CI_RUNNING)
        ci = self.sup.apply.ci(run_id, phase_id, attempt, outcome_if_green)
        crash_point("ci_done")
        if ci.stopped_early:
            return Failure("BUDGET_EXHAUSTED", ci.stopped_early, final=True)
        if ci.failure:
            return Failure("BUILD_FAILURE", ci.failure)
        return None

    def _complete(self, run_id: str, phase_id: str, number: int) -> Failure | None:
        """Commit a ready attempt as the phase's snapshot and complete the phase; unless
        the run went over a cap on the way (SPEC §9: exceeding one fails the run), or the
        phase is its tier's last and the tier ends not_clean under safety_critical (SPEC
        §4). Both are decided before the snapshot: completing a run's last phase ends the
        run in DONE_SUCCESS, which nothing may turn into a failure afterwards."""
        over = self._run_over_budget(run_id)
        if over is not None:
            return Failure("BUDGET_EXHAUSTED", over, final=True)
        held = self._tier_policy(run_id, phase_id)
        if held is not None:
            return held
        tokens = self.sup.get_run(run_id).phase(phase_id).tokens_used
        self.sup.apply.snapshot(run_id, phase_id, number, tokens)
        crash_point("snapshot_recorded")
        self._walk_to_complete(run_id, phase_id)
        return None

    def _run_over_budget(self, run_id: str) -> str | None:
        """Why the run has exceeded its token cap, duration or minor-issue total, or None."""
        run = self.sup.get_run(run_id).run
        minutes = _minutes_since(run.created_at)
        if run.tokens_used > run.token_cap:
            return f"run tokens {run.tokens_used} exceed the cap {run.token_cap}"
        if run.minor_issues_count > run.max_minor_issues_total:
            return (f"{run.minor_issues_count} minor issues exceed max_minor_issues_total "
                    f"{run.max_minor_issues_total}")
        if minutes > run.max_duration_minutes:
            return (f"{minutes:.2f} minutes exceed max_duration_minutes "
                    f"{run.max_duration_minutes}")
        return None

    # -- the Auditor ---------------------------------------------------------------------

    def _audit(self, run_id: str, phase_id: str, planned: dict[str, Any], reason: str,
               number: int, failure: str = "") -> Failure | str | None:
        """Ask the Auditor about attempt `number` and act on its verdicts until the phase
        completes (None), must stop (a Failure), or goes back to the Builder (its notes).

        `approve` lets a green change through (or, on a failing one, hands the notes back
        to the Builder); `escalate` ends the run as requiring human review; `revise` with
        a patch is applied on top of the reviewed change and takes the whole gate/CI path
        (a green revision is the Auditor's own change and needs no second approval);
        `revise` without one goes back to the Builder. After `max_auditor_attempts` calls
        the phase fails as requiring human review.
        """
        while True:
            recorded = self.sup.apply.last_review(run_id, phase_id)
            if recorded is not None and recorded.attempt_number == number:
                # answered before a restart: act on the recorded verdict, do not ask again
                verdict = Verdict(verdict=VerdictKind(recorded.verdict), notes=recorded.notes,
                                  patch=recorded.patch)
            else:
                if self.auditor is None:
                    return Failure("REQUIRES_HUMAN_REVIEW", "auto_apply is false for this "
                                   "phase and no Auditor is configured to approve it",
                                   final=True)
                if (self.sup.apply.reviews_used(run_id, phase_id)
                        >= planned["max_auditor_attempts"]):
                    return Failure("REQUIRES_HUMAN_REVIEW", f"the Auditor's "
                                   f"{planned['max_auditor_attempts']} attempts did not "
                                   f"resolve the phase ({reason}); last: "
                                   f"{failure or 'not approved'}", final=True)
                spent = self._budget_spent(run_id, phase_id)
                if spent:
                    return Failure("BUDGET_EXHAUSTED", spent, final=True)
                verdict = self._review(run_id, phase_id, planned, reason, number, failure)
            if verdict.verdict is VerdictKind.ESCALATE:
                return Failure("REQUIRES_HUMAN_REVIEW",
                               f"the Auditor escalated: {verdict.notes}", final=True)
            if verdict.verdict is VerdictKind.APPROVE:
                if reason == "auto_apply_disabled":
                    self.sup.apply.conclude(run_id, phase_id, number, "ready")
                    return self._complete(run_id, phase_id, number)
                return f"the Auditor reviewed the failing attempts: {verdict.notes}"
            if not verdict.patch:
                return Failure("BUILD_FAILURE",
                               f"the Auditor asked for a revision: {verdict.notes}")
            reviewed = self.sup.apply.stored_attempt(run_id, phase_id, number)
            base = b"" if reviewed.diff_truncated else bytes(reviewed.diff)
            outcome = self._attempt(run_id, phase_id, planned, "auditor",
                                    _revision(base, verdict.patch.encode()))
            if isinstance(outcome, int):
                return self._complete(run_id, phase_id, outcome)
            if outcome.final:
                return outcome
            reason, failure = "revision_failed", outcome.detail
            number = self.sup.apply.last_attempt(run_id, phase_id).number

    def _unanswered(self, run_id: str, phase_id: str, last: Any
                    ) -> tuple[str, int, str] | None:
        """After a restart: the Auditor call (reason, attempt, failure) the phase was at, if
        it was at one — a green attempt awaiting approval, an attempt the Auditor already
        answered (also when the revision it asked for was cut short), or a failed
        revision of the Auditor's own."""
        if last is None:
            return None
        review = self.sup.apply.last_review(run_id, phase_id)
        if last.author == "auditor" and last.outcome in ("pending", "interrupted") \
                and review is not None:  # the Auditor's revision was cut short: redo it
            return review.reason, review.attempt_number, ""
        if last.outcome not in ("green", "failed"):
            return None
        if review is not None and review.attempt_number == last.number:
            return review.reason, last.number, last.failure or ""
        if last.outcome == "green":
            return "auto_apply_disabled", last.number, ""
        if last.author == "auditor":
            return "revision_failed", last.number, last.failure or ""
        return None

    def _review(self, run_id: str, phase_id: str, planned: dict[str, Any], reason: str,
                number: int, failure: str) -> Verdict:
        """One Auditor call on a checkout of attempt `number`; recorded and charged."""
        assert self.auditor is not None
        phase = self.sup.get_run(run_id).phase(phase_id)
        with self.sup.apply.checkout(run_id, phase_id, number) as checkout:
            logs = self.sup.apply.verifier.log_dir(run_id, phase_id, number)
            diff = bytes(self.sup.apply.stored_attempt(run_id, phase_id, number).diff)
            verdict = self.auditor.review(ReviewRequest(
                run_id=run_id, phase_id=phase_id, name=phase.name,
                description=phase.description, task_category=phase.task_category,
                complexity=phase.complexity, auditor_profile=planned.get("auditor_profile"),
                reason=reason, diff=diff.decode("utf-8", "replace")[:1_000_000],
                logs={"failure": failure} if failure else {},
            ), checkout.path, logs / "auditor")
        self._charge(run_id, phase_id, verdict.usage, builder_attempt=False)
        self._suggested(run_id, phase_id, tuple(verdict.issues), IssueSource.AUDITOR)
        self.sup.apply.record_review(run_id, phase_id, number, reason, verdict.verdict.value,
                                     verdict.notes, verdict.patch, verdict.usage.total)
        crash_point("reviewed")
        return verdict

    def _tier_policy(self, run_id: str, phase_id: str) -> Failure | None:
        """Before a tier's last phase completes: under `safety_critical` a not_clean tier
        fails the run as requiring human review (SPEC §4); otherwise tier summaries do
        not block."""
        view = self.sup.get_run(run_id)
        if view.run.adoption_stage == 0:  # SPEC §11: global caps only
            return None
        tier_id = view.phase(phase_id).tier_id
        if any(not PhaseState(p.state).is_terminal for p in view.phases
               if p.tier_id == tier_id and p.phase_id != phase_id):
            return None
        flags = tier_flags(view.tier(tier_id))
        if flags and view.run.safety_profile == SafetyProfile.SAFETY_CRITICAL.value:
            return Failure("REQUIRES_HUMAN_REVIEW", f"tier {tier_id} is not_clean under "
                           f"safety_critical: {'; '.join(flags)}", final=True)
        return None

    # -- helpers -------------------------------------------------------------------------

    def _auditor(self) -> Auditor | None:
        name = self.options.auditor or self.config.auditor.name
        if name == "none":
            return None
        if name != "command":
            raise InvalidInput("--auditor", f"{name!r} is not an offline auditor (none, "
                               "command)")
        if not self.config.auditor.command:
            raise InvalidInput("--auditor", 'the command auditor needs [auditor] command')
        return CommandAuditor(self.config.auditor.command, CommandContext(
            env=self.context.env, timeout_seconds=self.config.auditor.timeout_seconds,
            max_log_bytes=self.context.max_log_bytes, isolation=self.context.isolation))

    def _walk_to_complete(self, run_id: str, phase_id: str) -> None:
        path = (PhaseState.EXECUTING, PhaseState.GATE, PhaseState.CI_RUNNING,
                PhaseState.COMPLETE)
        state = self._state(run_id, phase_id)
        start = path.index(state) + 1 if state in path else 0
        for step in path[start:]:
            self._move(run_id, phase_id, step)

    def _request(self, run_id: str, phase_id: str, extras: dict[str, str], feedback: str
                 ) -> BuilderRequest:
        phase = self.sup.get_run(run_id).phase(phase_id)
        return BuilderRequest(
            run_id=run_id, phase_id=phase_id, name=phase.name, description=phase.description,
            task_category=phase.task_category, complexity=phase.complexity,
            builder_mode=phase.builder_mode,
            allowed_scope=tuple(phase.scope) if phase.scope is not None else None,
            attempt_number=phase.builder_attempts + 1, plan_dir=self.options.plan_dir,
            extras=extras, feedback=feedback)

    def _low_signal(self, run_id: str, phase_id: str) -> bool:
        """The Builder's last LOW_SIGNAL_REPEATS failed attempts made the same change or
        failed the same way (numbers aside): another try is unlikely to tell more."""
        failed = [a for a in self.sup.apply.failed_attempts(run_id, phase_id)
                  if a.author == "builder"][:LOW_SIGNAL_REPEATS]
        if len(failed) < LOW_SIGNAL_REPEATS:
            return False
        return (len({a.diff_sha256 for a in failed}) == 1
                or len({re.sub(r"\d+", "#", a.failure or "") for a in failed}) == 1)

    def _auditor_available(self, run_id: str, phase_id: str, planned: dict[str, Any]) -> bool:
        return (self.auditor is not None and self.sup.apply.reviews_used(run_id, phase_id)
                < planned["max_auditor_attempts"])

    def _state(self, run_id: str, phase_id: str) -> PhaseState:
        return PhaseState(self.sup.get_run(run_id).phase(phase_id).state)

    def _move(self, run_id: str, phase_id: str, state: PhaseState) -> None:
        _result, view = self.sup.update_phase_status(run_id, phase_id,
                                                     PhaseStatusUpdate(state), ACTOR)
        if self.options.on_step is not None:
            self.options.on_step(view, f"{phase_id} {state.value}")

    def _charge(self, run_id: str, phase_id: str, usage: Usage, builder_attempt: bool) -> None:
        phase = self.sup.get_run(run_id).phase(phase_id)
        self.sup.update_phase_status(run_id, phase_id, PhaseStatusUpdate(
            PhaseState(phase.state), tokens_used=phase.tokens_used + usage.total,
            builder_attempts=phase.builder_attempts + (1 if builder_attempt else 0)), ACTOR)

    def _suggested(self, run_id: str, phase_id: str, issues: tuple[SuggestedIssue, ...],
                   source: IssueSource = IssueSource.BUILDER_SELF_DOUBT) -> None:
        for issue in issues:
            self.sup.record_issue(run_id, phase_id, IssueReport(
                issue.issue_key, Severity(issue.severity), source, issue.category,
                description=issue.description))

    def _budget_spent(self, run_id: str, phase_id: str) -> str | None:
        """Why the run may not take another step, or None (SPEC §9)."""
        view = self.sup.get_run(run_id)
        run, phase = view.run, view.phase(phase_id)
        tier = view.tier(phase.tier_id)
        minutes = _minutes_since(run.created_at)
        checks = [
            (run.tokens_used >= run.token_cap,
             f"run tokens {run.tokens_used} reached the cap {run.token_cap}"),
            (minutes >= run.max_duration_minutes,
             f"{minutes:.2f} minutes reached max_duration_minutes {run.max_duration_minutes}"),
            (run.minor_issues_count > run.max_minor_issues_total,
             f"{run.minor_issues_count} minor issues exceed {run.max_minor_issues_total}"),
            (tier.tokens_used >= tier.token_cap,
             f"tier {tier.tier_id} tokens {tier.tokens_used} reached its cap {tier.token_cap}"),
            (phase.tokens_used >= phase.incident_token_cap,
             f"phase {phase_id} tokens {phase.tokens_used} reached its incident_token_cap "
             f"{phase.incident_token_cap}"),
        ]
        return next((why for spent, why in checks if spent), None)


def record_end(sup: Supervisor, run_id: str) -> tuple[RunView, str]:
    """Bring a terminal run's record up to date: its files, the incident pack of a failed
    run, its summaries committed to the integration branch. Returns the run and a note
    on the commit ("" when there was nothing to commit)."""
    view = sup.regenerate(run_id)
    if RunState(view.run.state) is not RunState.DONE_SUCCESS:
        write_incident(sup, run_id)
    try:
        commit = sup.apply.commit_summaries(run_id, sup.rendered(run_id))
    except (GitError, OSError, Conflict, PolicyViolation) as exc:
        return view, f"the run summaries were not committed: {exc}"
    return view, f"run summaries committed as {commit[:12]}" if commit else ""


def _revision(base: bytes, patch: bytes) -> Make:
    """The Auditor's patch as a change maker: the reviewed change, then the patch."""
    def make(attempt: Attempt, _logs: Path) -> BuilderResult:
        try:
            if base.strip():
                attempt.apply_diff(base)
            attempt.apply_diff(patch)
        except PatchDoesNotApply as exc:
            return BuilderResult(False, summary=f"the Auditor's patch does not apply: {exc}")
        return BuilderResult(True, summary="applied the Auditor's patch")
    return make


def _minutes_since(start: datetime) -> float:
    """Wall-clock minutes from `start` to now (the duration budget's measure)."""
    return (utcnow() - _aware(start)).total_seconds() / 60


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=utcnow().tzinfo)


def run_report(sup: Supervisor, run_id: str) -> dict[str, Any]:
    """The one JSON document `autopack run --json` prints."""
    view = sup.get_run(run_id)
    run = view.run
    by_phase = {s.phase_id: s for s in sup.apply.snapshots(run_id)}
    reviews: dict[str, list[str]] = {}
    for review in sup.apply.reviews(run_id):
        reviews.setdefault(review.phase_id, []).append(f"{review.reason}:{review.verdict}")
    return {
        "run_id": run.run_id, "state": run.state, "failure_reason": run.failure_reason,
        "integration_branch": f"autopack/integration/{run.run_id}" if run.repo_path else None,
        "promotion_eligible_to_main": not promotion_blockers(run, view.tiers),
        "tokens_used": run.tokens_used, "ci_runs_used": run.ci_runs_used,
        "debt_status": run.debt_status,
        "tiers": [{"tier_id": t.tier_id, "state": t.state,
                   "cleanliness": tier_cleanliness(t).value,
                   "minor_issues": t.minor_issues_count, "major_issues": t.major_issues_count}
                  for t in view.tiers],
        "phases": [{"phase_id": p.phase_id, "tier_id": p.tier_id, "state": p.state,
                    "attempts": p.builder_attempts, "tokens_used": p.tokens_used,
                    "auditor_reviews": reviews.get(p.phase_id, []),
                    "snapshot_commit": by_phase[p.phase_id].commit
                    if p.phase_id in by_phase else None,
                    "snapshot_tag": by_phase[p.phase_id].tag
                    if p.phase_id in by_phase else None}
                   for p in view.phases],
        "strategy_version": sup.strategy(run_id)["version"],
        "terminal": RunState(run.state).is_terminal,
    }
