"""The incident pack of a failed run: `{run folder}/incident/`, for the person who reads
it afterwards. Everything in it is read from the database, so it can be rewritten."""

from __future__ import annotations

from typing import Any

from autopack.artefacts.atomic import real_folder, write_bytes_atomic, write_text_atomic
from autopack.db import attempts, runs
from autopack.domain.states import PhaseState
from autopack.jsontext import document_text
from autopack.supervisor.service import Supervisor


def write_incident(sup: Supervisor, run_id: str) -> None:
    """Write `incident/` for a run that ended in DONE_FAILED_*."""
    view = sup.get_run(run_id)
    with sup.db.read() as conn:
        events = runs.list_events(conn, run_id)
        failing = next((p for p in view.phases if p.state == PhaseState.FAILED.value), None)
        last = attempts.last_attempt(conn, run_id, failing.phase_id) if failing else None
        commands = (attempts.command_runs_of(conn, run_id, failing.phase_id, last.number)
                    if failing and last else [])
        reviews = attempts.list_reviews(conn, run_id)
        strategy = runs.get_strategy(conn, run_id).document
    layout = sup.artefacts.layout(run_id)
    folder = real_folder(layout.root, "incident")  # a planted link is refused, not followed
    ending = next((e for e in reversed(events) if e.entity == "run"), None)
    detail = ending.reason if ending and ending.reason else ""
    failure = {"run_id": run_id, "state": view.run.state,
               "failure_reason": view.run.failure_reason, "detail": detail,
               "failing_phase": failing.phase_id if failing else None,
               "at": view.run.completed_at.isoformat() if view.run.completed_at else None}
    write_text_atomic(folder / "failure.json", document_text(failure))
    if last is not None:
        write_bytes_atomic(folder / "last_diff.patch", bytes(last.diff))
        write_text_atomic(folder / "last_gate.json", document_text({
            "attempt": last.number, "gate_status": last.gate_status,
            "refusals": list(last.refusals)}))
    tails = [f"$ {c.command}\n(exit {c.exit_code}{', timed out' if c.timed_out else ''}; "
             f"log {c.log_path})\n{c.output_tail}\n" for c in commands]
    write_text_atomic(folder / "log_tails.txt", "\n".join(tails) or "(no commands ran)\n")
    write_text_atomic(folder / "issues.json", document_text(sup.issue_index(run_id)))
    write_text_atomic(folder / "reviews.json", document_text([
        {"phase_id": r.phase_id, "number": r.number, "attempt": r.attempt_number,
         "reason": r.reason, "verdict": r.verdict, "notes": r.notes, "patch": r.patch,
         "tokens": r.tokens} for r in reviews]))
    write_text_atomic(folder / "strategy.json", strategy)  # the run's strategy file
    write_text_atomic(folder / "budgets.json", document_text(_budgets(view)))
    write_text_atomic(folder / "README.md", _readme(failure, last is not None, len(commands)))


def _budgets(view: Any) -> dict[str, Any]:
    run = view.run
    return {
        "run": {"tokens_used": run.tokens_used, "token_cap": run.token_cap,
                "ci_runs_used": run.ci_runs_used,
                "minor_issues": run.minor_issues_count,
                "max_minor_issues_total": run.max_minor_issues_total,
                "max_duration_minutes": run.max_duration_minutes},
        "tiers": [{"tier_id": t.tier_id, "tokens_used": t.tokens_used, "token_cap": t.token_cap,
                   "ci_runs_used": t.ci_runs_used, "ci_run_cap": t.ci_run_cap}
                  for t in view.tiers],
        "phases": [{"phase_id": p.phase_id, "state": p.state, "attempts": p.builder_attempts,
                    "max_builder_attempts": p.max_builder_attempts,
                    "tokens_used": p.tokens_used, "incident_token_cap": p.incident_token_cap}
                   for p in view.phases],
    }


def _readme(failure: dict[str, Any], has_diff: bool, commands: int) -> str:
    lines = [
        f"# Incident: run {failure['run_id']}",
        "",
        f"The run ended in `{failure['state']}`"
        + (f" at phase `{failure['failing_phase']}`." if failure["failing_phase"] else "."),
        "",
        f"Why: {failure['detail'] or failure['failure_reason']}",
        "",
        "What is here:",
        "",
        "- `failure.json` — the end state, the reason, the failing phase.",
    ]
    if has_diff:
        lines += ["- `last_diff.patch` — the failing phase's last attempted change "
                  "(not committed anywhere).",
                  "- `last_gate.json` — what the gate said about it."]
    lines += [f"- `log_tails.txt` — the end of each command of that attempt ({commands}).",
              "- `issues.json` — every issue of the run (the run issue index).",
              "- `reviews.json` — every Auditor call: why, on which attempt, its verdict, "
              "notes and patch.",
              "- `strategy.json` — the frozen strategy the run followed.",
              "- `budgets.json` — what was spent against each cap.",
              "",
              "Nothing of this run reached `main`; its integration branch holds only the "
              "phases that passed.", ""]
    return "\n".join(lines)
