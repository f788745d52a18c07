"""The offline Builders and Auditor: `command`, `patch`, `auto`, and the `command` Auditor.

Commands run through the Verifier's runner (scrubbed environment, timeout killing the
process group, capped log, optional isolation). A command builder may report usage and
issues by writing JSON to the files named by `AUTOPACK_USAGE_FILE`
(`{"input_tokens": n, "output_tokens": m}`) and `AUTOPACK_ISSUES_FILE` (a list of
`{issue_key, severity?, category?, description?}`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from pydantic import TypeAdapter, ValidationError

from autopack.artefacts.atomic import write_text_atomic
from autopack.builders.protocol import (
    BuilderRequest,
    BuilderResult,
    ReviewRequest,
    SuggestedIssue,
    Usage,
    Verdict,
    VerdictKind,
)
from autopack.ci.command_files import UnreadableFile, read_left_file
from autopack.ci.runner import Isolation, run_command
from autopack.domain.errors import InvalidInput
from autopack.vcs.workspace import Attempt, PatchDoesNotApply

_ISSUES = TypeAdapter(list[SuggestedIssue])


@dataclass(frozen=True)
class CommandContext:
    """How builder and auditor commands run: environment, timeout, isolation, log cap."""

    env: Mapping[str, str] = field(default_factory=dict)
    timeout_seconds: float = 1800
    max_log_bytes: int = 10 * 1024 * 1024
    isolation: Isolation = field(default_factory=Isolation)

    def isolation_for(self, log_dir: Path) -> Isolation:
        return replace(self.isolation, writable=(log_dir.resolve(),))


@dataclass(frozen=True)
class CommandBuilder:
    """Runs the phase's `command` in the attempt's worktree; the diff is what changed."""

    context: CommandContext = field(default_factory=CommandContext)
    name: str = "command"

    def build(self, request: BuilderRequest, attempt: Attempt, log_dir: Path) -> BuilderResult:
        command = request.extras.get("command")
        if not command:
            return BuilderResult(False, summary=f"phase {request.phase_id} has no command")
        log_dir.mkdir(parents=True, exist_ok=True)
        usage_file, issues_file = log_dir / "usage.json", log_dir / "issues.json"
        feedback_file = log_dir / "feedback.txt"
        write_text_atomic(feedback_file, request.feedback)  # replaces a planted link
        for stale in (usage_file, issues_file):
            stale.unlink(missing_ok=True)
        env = {**self.context.env, "AUTOPACK_RUN_ID": request.run_id,
               "AUTOPACK_PHASE_ID": request.phase_id,
               "AUTOPACK_ATTEMPT": str(request.attempt_number),
               "AUTOPACK_FEEDBACK_FILE": str(feedback_file),
               "AUTOPACK_USAGE_FILE": str(usage_file), "AUTOPACK_ISSUES_FILE": str(issues_file)}
        done = run_command(command, attempt.path, log_dir / "builder.log",
                           self.context.timeout_seconds, env, self.context.max_log_bytes,
                           isolation=self.context.isolation_for(log_dir))
        try:
            left = _left(usage_file)
            usage = Usage() if left is None else Usage.model_validate_json(left)
            left = _left(issues_file)
            issues = () if left is None else tuple(_ISSUES.validate_json(left))
        except (ValidationError, UnreadableFile) as exc:
            why = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
            return BuilderResult(False, summary=f"the command's usage or issues file is "
                                 f"invalid: {why}", log_path=done.log_path)
        if done.timed_out:
            return BuilderResult(False, usage, f"`{command}` timed out after "
                                 f"{self.context.timeout_seconds:g} s", done.log_path, issues)
        if done.exit_code != 0:
            return BuilderResult(False, usage, f"`{command}` exited {done.exit_code}: "
                                 f"{done.tail[-1500:]}", done.log_path, issues)
        return BuilderResult(True, usage, done.tail[-1500:], done.log_path, issues)


LEFT_FILE_BYTES = 1024 * 1024
"""The most a command's usage or issues file may hold."""


def _left(path: Path) -> bytes | None:
    """What the command left at `path` (None: nothing); UnreadableFile for a link, a
    FIFO (reading it would wait forever) or an oversized file."""
    try:
        return read_left_file(path, LEFT_FILE_BYTES)
    except FileNotFoundError:
        return None


@dataclass(frozen=True)
class PatchBuilder:
    """Applies the phase's `patch` file (relative to the plan's folder)."""

    name: str = "patch"

    def build(self, request: BuilderRequest, attempt: Attempt, log_dir: Path) -> BuilderResult:
        patch = request.extras.get("patch")
        if not patch:
            return BuilderResult(False, summary=f"phase {request.phase_id} has no patch")
        path = Path(patch) if Path(patch).is_absolute() else request.plan_dir / patch
        try:
            diff = path.read_bytes()
        except OSError as exc:
            return BuilderResult(False, summary=f"cannot read the patch {path}: {exc}")
        try:
            attempt.apply_diff(diff)
        except PatchDoesNotApply as exc:
            return BuilderResult(False, summary=str(exc))
        return BuilderResult(True, summary=f"applied {path}")


def choose_builder(name: str, extras: Mapping[str, str], phase_id: str,
                   context: CommandContext) -> CommandBuilder | PatchBuilder:
    """The builder `name` (`auto`, `command`, `patch`) for one phase; InvalidInput when the
    phase gives it nothing to work with."""
    if name == "auto":
        name = "command" if extras.get("command") else "patch" if extras.get("patch") else ""
        if not name:
            raise InvalidInput(f"phase {phase_id}", "has neither `command` nor `patch`, and "
                               "no LLM builder is available offline")
    if name == "command":
        if not extras.get("command"):
            raise InvalidInput(f"phase {phase_id}", "the command builder needs `- command:`")
        return CommandBuilder(context)
    if name == "patch":
        if not extras.get("patch"):
            raise InvalidInput(f"phase {phase_id}", "the patch builder needs `- patch:`")
        return PatchBuilder()
    raise InvalidInput("--builder", f"{name!r} is not an offline builder (auto, command, "
                       "patch)")


@dataclass(frozen=True)
class CommandAuditor:
    """`[auditor] name = "command"`: the review request as JSON on stdin; the verdict as
    the last line of stdout (`{"verdict": "approve|revise|escalate", ...}`)."""

    command: str
    context: CommandContext = field(default_factory=CommandContext)
    name: str = "command"

    def review(self, request: ReviewRequest, cwd: Path, log_dir: Path) -> Verdict:
        log_dir.mkdir(parents=True, exist_ok=True)
        done = run_command(self.command, cwd, log_dir / "auditor.log",
                           self.context.timeout_seconds, self.context.env,
                           self.context.max_log_bytes,
                           isolation=self.context.isolation_for(log_dir),
                           stdin=json.dumps(asdict(request)).encode())
        lines = [line for line in done.tail.splitlines() if line.strip()]
        if done.exit_code != 0 or not lines:
            return _escalate(f"the auditor command exited {done.exit_code} without a verdict")
        try:
            return Verdict.model_validate_json(lines[-1])
        except ValidationError as exc:
            return _escalate(f"the auditor's last line is not a verdict: "
                             f"{exc.errors()[0]['msg']}")


def _escalate(notes: str) -> Verdict:
    return Verdict(verdict=VerdictKind.ESCALATE, notes=notes)
