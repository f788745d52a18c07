"""The Verifier as the Supervisor runs it: static checks at GATE and the CI step.

The project's `[ci]` and `[gate]` are read from autopack.toml *at the run's base
commit*, so a builder cannot loosen them by editing the file in its attempt. Every CI
execution is counted against the phase's tier and the run; every finding is recorded as
an issue (`static_check`, `test` or `ci`).
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from autopack.artefacts.atomic import real_folder
from autopack.artefacts.layout import RunLayout
from autopack.ci.config import CiConfig, GateConfig
from autopack.ci.preflight import CiIssue, PreflightResult, run_preflight
from autopack.ci.runner import check_isolation, command_environment, run_command
from autopack.db import attempts, runs
from autopack.db.database import Database
from autopack.db.issues import IssueReport
from autopack.db.runs import RunView
from autopack.issues.rules import IssueSource, Severity, issue_key
from autopack.project_config import parse_project_config
from autopack.settings import Settings
from autopack.supervisor.records import RecordIssue
from autopack.vcs.changes import Change
from autopack.vcs.git import Git
from autopack.vcs.workspace import Attempt


def project_config(git: Git, base: str | None) -> tuple[CiConfig, GateConfig]:
    """`[ci]` and `[gate]` of autopack.toml as committed at `base` (defaults without it)."""
    if base is None:
        config = parse_project_config(None, "autopack.toml")
    else:
        shown = git.run("show", f"{base}:autopack.toml", check=False)
        text = shown.stdout.decode("utf-8", "replace") if shown.returncode == 0 else None
        config = parse_project_config(text, f"autopack.toml@{base[:12]}")
    return config.ci, config.gate


def check_committed_config(git: Git, base: str | None) -> None:
    """Refuse (ConfigError) autopack.toml as committed at `base` when it does not parse
    or its isolation cannot run here: a run reads its `[ci]` and `[gate]` there."""
    ci, _gate = project_config(git, base)
    check_isolation(ci.isolation_for())


class Verifier:
    """Static checks and CI for attempts of runs."""

    def __init__(self, settings: Settings, db: Database, record_issue: RecordIssue) -> None:
        self.settings = settings
        self.db = db
        self._record_issue = record_issue

    def log_dir(self, run_id: str, phase_id: str, number: int, *sub: str) -> Path:
        """Where one attempt's command logs go, made as real folders (no link on the way:
        a command can write its own log folder): `{run folder}/logs/{phase}/attempt-{n}/`
        and `sub` folders under it."""
        layout = RunLayout(self.settings.runs_dir, run_id)
        real_folder(layout.root.parent, layout.root.name)
        return real_folder(layout.root, "logs", phase_id, f"attempt-{number}", *sub)

    def evidence(self, ref: str) -> str:
        """A log path as issue evidence: relative to the runs folder (`{run_id}/logs/...`),
        so issue files committed to the integration branch name no local directories."""
        path = Path(ref)
        try:
            return path.resolve().relative_to(self.settings.runs_dir.resolve()).as_posix()
        except ValueError:
            return ref

    def static_checks(self, view: RunView, phase: Any, attempt: Attempt, change: Change,
                      ci: CiConfig, gate: GateConfig) -> list[IssueReport]:
        """Run `[gate] static_checks` on the changed files; each failure a minor issue."""
        changed = [f.path for f in change.files if f.status != "D"]
        env = command_environment(ci.pass_env, ci.env)
        logs = self.log_dir(view.run.run_id, phase.phase_id, attempt.number)
        isolation = ci.isolation_for(logs)
        if gate.static_checks:
            logs.mkdir(parents=True, exist_ok=True)
            check_isolation(isolation)
        found = []
        ran = []
        for k, command in enumerate(gate.static_checks):
            if "{changed_files}" in command and not changed:
                continue
            text = command.format(changed_files=" ".join(shlex.quote(p) for p in changed),
                                  repo=shlex.quote(str(attempt.path)))
            done = run_command(text, attempt.path, logs / f"static-{k}.log",
                               ci.timeout_seconds, env, ci.max_log_bytes, isolation=isolation)
            ran.append((0, done))
            if done.exit_code == 0:
                continue
            report = IssueReport(
                issue_key=issue_key("static_check", command), severity=Severity.MINOR,
                source=IssueSource.STATIC_CHECK, category="static_check",
                evidence_refs=(self.evidence(str(done.log_path)),),
                description=f"`{command}` exited {done.exit_code}: {done.tail[-1500:]}",
            )
            self._record_issue(view.run.run_id, phase.phase_id, report)
            found.append(report)
        with self.db.write() as conn:
            attempts.record_command_runs(conn, view.run.run_id, phase.phase_id,
                                         attempt.number, "static_check", ran)
        return found

    def run_ci(self, view: RunView, phase: Any, attempt: Attempt, git: Git, profile: str,
               high_risk: bool, max_attempts: int, outcome_if_green: str) -> PreflightResult:
        """The preflight gate in the attempt's worktree, retried up to the smaller of the
        project's `[ci] max_attempts` and the phase's planned `ci_max_attempts`; CI runs
        counted and the attempt's outcome (`outcome_if_green`, else `failed`) set in one
        transaction; issues recorded."""
        ci, _gate = project_config(git, view.run.base_commit)
        ci = ci.model_copy(update={"max_attempts": min(ci.max_attempts, max_attempts)})
        if profile not in ci.profiles:
            profile = "strict" if "strict" in ci.profiles else sorted(ci.profiles)[0]
        tier = view.tier(phase.tier_id)
        runs_left = max(0, tier.ci_run_cap - tier.ci_runs_used)
        result = run_preflight(
            ci, profile, attempt.path, self.log_dir(view.run.run_id, phase.phase_id,
                                                    attempt.number, "ci"),
            strict_failures=profile == "strict" or high_risk, runs_left=runs_left,
        )
        for issue in result.issues:  # before the outcome: a crash in between redoes CI
            self._record_issue(view.run.run_id, phase.phase_id, _report(
                issue, tuple(self.evidence(ref) for ref in issue.evidence_refs)))
        with self.db.write() as conn:
            if result.runs:
                runs.add_ci_runs(conn, view.run.run_id, phase.tier_id, len(result.runs))
            attempts.record_command_runs(
                conn, view.run.run_id, phase.phase_id, attempt.number, "ci",
                [(n, done) for n, ran in enumerate(result.runs, 1) for done in ran])
            attempts.set_outcome(conn, view.run.run_id, phase.phase_id, attempt.number,
                                 "failed" if result.failure else outcome_if_green,
                                 result.failure)
        return result


def _report(issue: CiIssue, evidence_refs: tuple[str, ...]) -> IssueReport:
    source = IssueSource.TEST if issue.category in ("ci_test_failure", "flaky_test") \
        else IssueSource.CI
    return IssueReport(issue_key=issue.issue_key, severity=Severity(issue.severity),
                       source=source, category=issue.category,
                       evidence_refs=evidence_refs, description=issue.description)
