"""The preflight gate (SPEC §10): run a profile up to `max_attempts` times with backoff
until it is green, and turn what happened into issues.

- a test red in one attempt and green in a later one is flaky: minor `flaky_test__{id}`;
- a test still red in the last attempt: `ci_test_failure__{id}` (major under the strict
  profile or for high-risk work, else minor), evidence the test id and the log;
- a command that fails without naming a failing test: `ci_command_failure__{command}`
  with its log tail; a timeout: `ci_timeout__{command}`; unusable JUnit: an issue too;
- it stops early when the CI runs left in the budget are spent.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from autopack.ci.config import CiConfig
from autopack.ci.junit import JUnitProblem, Outcome, read_junit
from autopack.ci.runner import (
    CommandResult,
    Limits,
    check_isolation,
    command_environment,
    run_command,
)
from autopack.issues.rules import issue_key


@dataclass(frozen=True)
class CiIssue:
    """An issue the gate found (recorded with source `ci` when it runs inside a run)."""

    issue_key: str
    severity: str
    category: str
    description: str
    evidence_refs: tuple[str, ...]


@dataclass
class PreflightResult:
    """The gate's outcome: green or not, every command run, and the issues."""

    green: bool
    attempts: int
    runs: list[list[CommandResult]] = field(default_factory=list)
    issues: list[CiIssue] = field(default_factory=list)
    stopped_early: str | None = None

    @property
    def failure(self) -> str | None:
        """Why the gate is not green (None when it is)."""
        if self.stopped_early:
            return self.stopped_early
        if self.green:
            return None
        failing = ", ".join(i.issue_key for i in self.issues) or "commands failed"
        return f"CI stayed red after {self.attempts} run(s): {failing}"


def run_preflight(
    config: CiConfig, profile: str, cwd: Path, log_dir: Path, *,
    changed_files: Sequence[str] = (), strict_failures: bool | None = None,
    runs_left: int | None = None, sleep: Callable[[float], None] = time.sleep,
) -> PreflightResult:
    """Run `profile` in `cwd` until green or out of attempts (or of CI runs)."""
    commands = config.profiles[profile].commands
    env = command_environment(config.pass_env, config.env)
    limits = Limits(config.cpu_seconds, config.memory_bytes, config.file_bytes)
    log_dir.mkdir(parents=True, exist_ok=True)
    isolation = config.isolation_for(log_dir)
    check_isolation(isolation)
    major = strict_failures if strict_failures is not None else profile == "strict"
    history: dict[str, list[Outcome]] = {}
    result = PreflightResult(green=False, attempts=0)
    last_problems: list[CiIssue] = []
    for attempt in range(1, config.max_attempts + 1):
        if runs_left is not None and attempt > runs_left:
            result.stopped_early = f"the CI run budget is spent after {attempt - 1} runs"
            break
        result.attempts = attempt
        ran, problems, failing = [], [], False
        for n, command in enumerate(commands):
            junit = log_dir / f"attempt{attempt}-cmd{n}.junit.xml"
            junit.unlink(missing_ok=True)
            text = command.format(junit=shlex.quote(str(junit)), repo=shlex.quote(str(cwd)),
                                  changed_files=" ".join(shlex.quote(f) for f in changed_files))
            done = run_command(text, cwd, log_dir / f"attempt{attempt}-cmd{n}.log",
                               config.timeout_seconds, env, config.max_log_bytes, limits,
                               isolation)
            ran.append(done)
            named_failure = False
            if done.timed_out:
                problems.append(_issue("ci_timeout", command, "major", "ci_timeout",
                                       f"killed after {config.timeout_seconds:g} s", done))
            elif junit.exists():
                try:
                    for outcome in read_junit(junit, config.max_junit_bytes):
                        history.setdefault(outcome.test_id, []).append(outcome.outcome)
                        named_failure |= outcome.outcome is Outcome.FAILED
                except JUnitProblem as exc:
                    problems.append(_issue("ci_junit_unusable", command, "minor",
                                           "ci_junit", str(exc), done))
            if done.exit_code != 0 and not done.timed_out and not named_failure:
                problems.append(_issue("ci_command_failure", command, "major",
                                       "ci_command_failure",
                                       f"exit {done.exit_code}: {done.tail[-800:]}", done))
            failing |= done.exit_code != 0 or named_failure
        result.runs.append(ran)
        last_problems = problems
        if not failing:
            result.green = True
            break
        if attempt < config.max_attempts:
            sleep(config.backoff_seconds * 2 ** (attempt - 1))
    # A green run drops the failures of its last attempt, never an unusable JUnit file.
    kept = [p for p in last_problems if not result.green or p.category == "ci_junit"]
    result.issues = _test_issues(history, result, major) + kept
    return result


def _issue(prefix: str, command: str, severity: str, category: str, detail: str,
           done: CommandResult) -> CiIssue:
    return CiIssue(issue_key(prefix, command), severity, category,
                   f"`{command}`: {detail}"[:2000], (str(done.log_path),))


def _test_issues(history: dict[str, list[Outcome]], result: PreflightResult, major: bool
                 ) -> list[CiIssue]:
    found = []
    log = str(result.runs[-1][0].log_path) if result.runs and result.runs[-1] else ""
    for test_id, outcomes in sorted(history.items()):
        red = [o is Outcome.FAILED for o in outcomes]
        if not any(red):
            continue
        if red[-1]:
            found.append(CiIssue(issue_key("ci_test_failure", test_id),
                                 "major" if major else "minor", "ci_test_failure",
                                 f"{test_id} failed in the last attempt", (test_id, log)))
        else:
            found.append(CiIssue(issue_key("flaky_test", test_id), "minor", "flaky_test",
                                 f"{test_id} failed, then passed on a retry", (test_id, log)))
    return found
