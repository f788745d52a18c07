"""Property: for any sequence of recorded issues, counts are distinct keys by severity.

Runs against the real service on SQLite: each example is a fresh run in one database.
"""

from __future__ import annotations

import itertools
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autopack.db.issues import IssueReport
from autopack.issues.rules import IssueSource, Severity
from autopack.plan.spec import RunSpec
from autopack.settings import Settings
from autopack.supervisor.service import Supervisor
from tests.conftest import run_body

PHASE_TIER = {"P1": "T1", "P2": "T1", "P3": "T2"}
records = st.lists(st.tuples(st.sampled_from(sorted(PHASE_TIER)),
                             st.sampled_from(["a", "b", "c", "d", "e"]),
                             st.sampled_from([Severity.MINOR, Severity.MAJOR])),
                   min_size=1, max_size=25)
_ids = itertools.count()


def _expected(calls: list[tuple[str, str, Severity]], owner: str | None) -> tuple[int, int]:
    worst: dict[str, Severity] = {}
    for _, key, severity in calls:
        worst[key] = Severity.MAJOR if Severity.MAJOR in (worst.get(key), severity) else severity
    keys = {k for p, k, _ in calls if owner is None or owner in (p, PHASE_TIER[p])}
    majors = sum(worst[k] is Severity.MAJOR for k in keys)
    return len(keys) - majors, majors


def test_counts_equal_distinct_keys(tmp_path: Path) -> None:
    supervisor = Supervisor(Settings(database_url=f"sqlite:///{tmp_path}/p.db",
                                     runs_dir=tmp_path / "runs"))
    supervisor.start()

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(records)
    def check(calls: list[tuple[str, str, Severity]]) -> None:
        run_id = f"prop-{next(_ids)}"
        # Its own project, so backlog aging from earlier examples does not apply.
        spec = RunSpec.model_validate(run_body(run_id, project_id=run_id))
        supervisor.create_run(spec, "test")
        for phase, key, severity in calls:
            supervisor.record_issue(run_id, phase, IssueReport(key, severity,
                                                               IssueSource.TEST, "c"))
        view = supervisor.get_run(run_id)
        index = supervisor.issue_index(run_id)
        assert (view.run.minor_issues_count, view.run.major_issues_count) == _expected(
            calls, None)
        for tier in view.tiers:
            assert (tier.minor_issues_count, tier.major_issues_count) == _expected(
                calls, tier.tier_id)
        for phase in view.phases:
            assert (phase.minor_issues_count, phase.major_issues_count) == _expected(
                calls, phase.phase_id)
        assert sum(i["occurrence_count"] for i in index["issues_by_key"].values()) == len(calls)

    try:
        check()
    finally:
        supervisor.close()
