"""The run engine, first cut: drives a created run through SPEC §3 inline, one phase at a
time — builder attempt, gate, CI, (Auditor when the strategy says `auto_apply = false`),
snapshot — with budgets checked before every step, and ends it in DONE_SUCCESS or the
matching DONE_FAILED_* state.

Each step commits its effects through the Supervisor's services (phase moves, token
charges, issues, stored attempts, snapshots), so the database always shows where a run
is. Resuming a run whose process died (`autopack resume`) is not part of this cut.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from autopack.builders.offline import CommandAuditor, CommandContext, choose_builder
from autopack.builders.protocol import (
    Auditor,
    BuilderRequest,
    ReviewRequest,
    SuggestedIssue,
    Usage,
    VerdictKind,
)
from autopack.ci.runner import command_environment
from autopack.db.issues import IssueReport
from autopack.db.models import utcnow
from autopack.db.runs import PhaseStatusUpdate, RunView
from autopack.domain.categories import SafetyProfile
from autopack.domain.errors import InvalidInput
from autopack.domain.promotion import promotion_blockers, tier_cleanliness, tier_flags
from autopack.domain.states import PhaseState, RunState
from autopack.issues.rules import IssueSource, Severity
from autopack.project_config import ProjectConfig
from autopack.supervisor.incident import write_incident
from autopack.supervisor.service import Supervisor
from autopack.vcs.git import GitError
from autopack.vcs.scope import ScopeViolation

ACTOR = "engine"


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
                                      isolation=config.ci.isolation, image=config.ci.image)
        self.auditor = self._auditor()

    def check(self, view: RunView) -> None:
        """Refuse, before anything runs, a phase the chosen builder cannot build."""
        for phase in view.phases:
            choose_builder(self.options.builder, self.options.extras.get(phase.phase_id, {}),
                           phase.phase_id, self.context)

    def run(self, run_id: str) -> RunView:
        """Drive the run until it is terminal; return it as it ended."""
        strategy = self.sup.strategy(run_id)
        planned = {p["phase_id"]: p for p in strategy["phases"]}
        self.sup.apply.cleanup_stale(run_id)  # worktrees a dead engine left behind
        for phase in self.sup.get_run(run_id).phases:
            if PhaseState(phase.state).is_terminal:
                continue
            try:
                failure = self._phase(run_id, phase.phase_id, planned[phase.phase_id])
            except (GitError, OSError) as exc:
                failure = ("ENVIRONMENT", f"git or the filesystem failed: {exc}")
            if failure is None:
                failure = self._tier_policy(run_id, phase.tier_id)
            if failure is not None:
                ended = self.sup.fail_run(run_id, failure[0], failure[1], ACTOR)
                write_incident(self.sup, run_id)
                if self.options.on_step is not None:
                    self.options.on_step(ended, f"run {ended.run.state}: {failure[1]}")
                return ended
        return self.sup.get_run(run_id)

    # -- one phase ---------------------------------------------------------------------

    def _phase(self, run_id: str, phase_id: str, planned: dict[str, Any]
               ) -> tuple[str, str] | None:
        state = self._state(run_id, phase_id)
        if self.sup.apply.snapshot_of(run_id, phase_id) is not None:
            self._walk_to_complete(run_id, phase_id, state)  # the process died after it
            return None
        spent = self._budget_spent(run_id, phase_id)
        if spent:
            return "BUDGET_EXHAUSTED", spent
        if state is not PhaseState.EXECUTING:  # QUEUED, or an attempt cut short by a crash
            self._move(run_id, phase_id, PhaseState.EXECUTING)
        extras = self.options.extras.get(phase_id, {})
        builder = choose_builder(self.options.builder, extras, phase_id, self.context)
        feedback = ""
        last: tuple[str, str] = ("BUILD_FAILURE", "its attempts were spent before a restart")
        used = self.sup.get_run(run_id).phase(phase_id).builder_attempts
        for _ in range(max(0, planned["max_builder_attempts"] - used)):
            spent = self._budget_spent(run_id, phase_id)
            if spent:
                return "BUDGET_EXHAUSTED", spent
            outcome = self._attempt(run_id, phase_id, planned, builder, extras, feedback)
            if outcome is None:
                return None
            kind, detail = outcome
            if kind in ("REQUIRES_HUMAN_REVIEW", "BUDGET_EXHAUSTED"):
                return kind, detail
            last, feedback = (kind, detail), detail
            if self._state(run_id, phase_id) is not PhaseState.EXECUTING:
                self._move(run_id, phase_id, PhaseState.EXECUTING)
        return last[0], f"{planned['max_builder_attempts']} attempts spent; last: {last[1]}"

    def _attempt(self, run_id: str, phase_id: str, planned: dict[str, Any], builder: Any,
                 extras: dict[str, str], feedback: str) -> tuple[str, str] | None:
        """One attempt; None when the phase completed, else (failure kind, detail)."""
        view = self.sup.get_run(run_id)
        phase = view.phase(phase_id)
        request = BuilderRequest(
            run_id=run_id, phase_id=phase_id, name=phase.name, description=phase.description,
            task_category=phase.task_category, complexity=phase.complexity,
            builder_mode=phase.builder_mode,
            allowed_scope=tuple(phase.scope) if phase.scope is not None else None,
            attempt_number=phase.builder_attempts + 1, plan_dir=self.options.plan_dir,
            extras=extras, feedback=feedback)
        with self.sup.apply.attempt(run_id, phase_id) as attempt:
            logs = self.sup.apply.verifier.log_dir(run_id, phase_id, attempt.number)
            result = builder.build(request, attempt, logs / "builder")
            self._charge(run_id, phase_id, result.usage, builder_attempt=True)
            self._suggested(run_id, phase_id, result.suggested_issues)
            if not result.ok:
                return "BUILD_FAILURE", f"the builder failed: {result.summary}"
            self._move(run_id, phase_id, PhaseState.GATE)
            try:
                change = self.sup.apply.gate(run_id, phase_id, attempt)
            except ScopeViolation as exc:
                return "POLICY_VIOLATION", f"the gate refused the change: {exc}"
            self._move(run_id, phase_id, PhaseState.CI_RUNNING)
            ci = self.sup.apply.ci(run_id, phase_id, attempt)
            if ci.stopped_early:
                return "BUDGET_EXHAUSTED", ci.stopped_early
            if not ci.green:
                failing = ", ".join(i.issue_key for i in ci.issues) or "commands failed"
                return "BUILD_FAILURE", f"CI stayed red after {ci.attempts} run(s): {failing}"
            if not planned["auto_apply"]:
                verdict = self._review(run_id, phase, planned, change.diff, attempt.path, logs)
                if verdict is not None:
                    return verdict
            tokens = self.sup.get_run(run_id).phase(phase_id).tokens_used
        self.sup.apply.snapshot(run_id, phase_id, attempt.number, tokens)
        self._move(run_id, phase_id, PhaseState.COMPLETE)
        return None

    def _review(self, run_id: str, phase: Any, planned: dict[str, Any], diff: bytes,
                cwd: Path, logs: Path) -> tuple[str, str] | None:
        """The Auditor's verdict on a change the strategy will not auto-apply."""
        if self.auditor is None:
            return ("REQUIRES_HUMAN_REVIEW", "auto_apply is false for this phase and no "
                    "Auditor is configured to approve it")
        verdict = self.auditor.review(ReviewRequest(
            run_id=run_id, phase_id=phase.phase_id, name=phase.name,
            description=phase.description, task_category=phase.task_category,
            complexity=phase.complexity, auditor_profile=planned.get("auditor_profile"),
            reason="auto_apply_disabled", diff=diff.decode("utf-8", "replace")[:1_000_000],
        ), cwd, logs / "auditor")
        self._charge(run_id, phase.phase_id, verdict.usage, builder_attempt=False)
        self._suggested(run_id, phase.phase_id, tuple(verdict.issues), IssueSource.AUDITOR)
        if verdict.verdict is VerdictKind.APPROVE:
            return None
        if verdict.verdict is VerdictKind.ESCALATE:
            return "REQUIRES_HUMAN_REVIEW", f"the Auditor escalated: {verdict.notes}"
        return "BUILD_FAILURE", f"the Auditor asked for a revision: {verdict.notes}"

    def _tier_policy(self, run_id: str, tier_id: str) -> tuple[str, str] | None:
        """After a tier's last phase: under `safety_critical` a not_clean tier fails the run
        as requiring human review (SPEC §4); otherwise tier summaries do not block."""
        view = self.sup.get_run(run_id)
        if any(not PhaseState(p.state).is_terminal for p in view.phases
               if p.tier_id == tier_id):
            return None
        flags = tier_flags(view.tier(tier_id))
        if flags and view.run.safety_profile == SafetyProfile.SAFETY_CRITICAL.value:
            return ("REQUIRES_HUMAN_REVIEW",
                    f"tier {tier_id} is not_clean under safety_critical: {'; '.join(flags)}")
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
            max_log_bytes=self.context.max_log_bytes, isolation=self.context.isolation,
            image=self.context.image))

    def _walk_to_complete(self, run_id: str, phase_id: str, state: PhaseState) -> None:
        path = (PhaseState.EXECUTING, PhaseState.GATE, PhaseState.CI_RUNNING,
                PhaseState.COMPLETE)
        start = path.index(state) + 1 if state in path else 0
        for step in path[start:]:
            self._move(run_id, phase_id, step)

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
        minutes = (utcnow() - _aware(run.created_at)).total_seconds() / 60
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


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=utcnow().tzinfo)


def summary_document(view: RunView, strategy: dict[str, Any], snapshots: list[Any]
                     ) -> dict[str, Any]:
    """The one JSON document `autopack run --json` prints."""
    run = view.run
    by_phase = {s.phase_id: s for s in snapshots}
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
                    "snapshot_commit": by_phase[p.phase_id].commit
                    if p.phase_id in by_phase else None,
                    "snapshot_tag": by_phase[p.phase_id].tag
                    if p.phase_id in by_phase else None}
                   for p in view.phases],
        "strategy_version": strategy["version"],
        "terminal": RunState(run.state).is_terminal,
    }
