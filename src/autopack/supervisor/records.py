"""What the Supervisor's parts are handed to record issues with."""

from __future__ import annotations

from collections.abc import Callable

from autopack.db.issues import IssueReport

RecordIssue = Callable[[str, str, IssueReport], object]
"""(run_id, phase_id, report) -> anything: records one observation of an issue."""
