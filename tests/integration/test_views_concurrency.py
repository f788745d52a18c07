"""Views stay equal to the database when writers race outside the API's writer lane.

The engine's threads, `autopack run` processes and the API change runs concurrently.
Each writes the views it touched from a read made while it holds the run folder's lock,
so whatever the order in which the writers get the lock, the files must end equal to a
regeneration.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from autopack.artefacts.writer import ArtefactWriter
from autopack.db.issues import IssueReport
from autopack.db.runs import PhaseStatusUpdate
from autopack.domain.states import PhaseState
from autopack.issues.rules import IssueSource, Severity
from autopack.plan.spec import RunSpec
from autopack.settings import Settings
from autopack.supervisor.service import Supervisor
from tests.conftest import run_body
from tests.integration.helpers import views

WRITERS, ROUNDS = 8, 15


def test_racing_writers_leave_views_equal_to_the_database(settings: Settings) -> None:
    """Writers commit while the test holds the run folder's lock, then all race for it:
    the kernel picks who writes first, so in most rounds older versions write after
    newer ones."""
    supervisor = Supervisor(settings)
    supervisor.start()
    try:
        supervisor.create_run(RunSpec.model_validate(run_body("race")), "test")
        supervisor.update_phase_status("race", "P1", PhaseStatusUpdate(PhaseState.EXECUTING),
                                       "test")

        def write(i: int) -> None:
            if i % 2:
                supervisor.update_phase_status("race", "P1", PhaseStatusUpdate(
                    PhaseState.EXECUTING, builder_attempts=1, tokens_used=100 * i), "test")
            else:
                supervisor.record_issue("race", f"P{1 + i % 3}", IssueReport(
                    f"key_{i % 5}", Severity.MINOR, IssueSource.TEST, "test_failure"))

        for round_ in range(ROUNDS):
            before = supervisor.run_version("race")
            with ThreadPoolExecutor(WRITERS) as pool:
                with ArtefactWriter(settings.runs_dir).locked("race"):
                    done = [pool.submit(write, round_ * WRITERS + i) for i in range(WRITERS)]
                    # every writer has committed and now waits for the lock
                    while supervisor.run_version("race") < before + WRITERS:
                        assert not any(f.done() and f.exception() for f in done)
                for future in done:
                    future.result()
            written = views(settings.runs_dir)
            supervisor.regenerate("race")  # what the database says, written afresh
            assert views(settings.runs_dir) == written, f"round {round_}"
    finally:
        supervisor.close()


def test_a_record_in_one_phase_leaves_the_other_phases_alone(settings: Settings) -> None:
    """Recounting issues rewrites only rows whose counts change, so another phase's
    `updated_at`, and so its file, stay as they were."""
    supervisor = Supervisor(settings)
    supervisor.start()
    try:
        supervisor.create_run(RunSpec.model_validate(run_body("calm")), "test")
        supervisor.record_issue("calm", "P3", IssueReport(
            "key_3", Severity.MINOR, IssueSource.TEST, "test_failure"))
        before = supervisor.get_run("calm").phase("P3")
        supervisor.record_issue("calm", "P1", IssueReport(
            "key_1", Severity.MINOR, IssueSource.TEST, "test_failure"))
        after = supervisor.get_run("calm")
        assert after.phase("P3") == before
        assert after.phase("P1").minor_issues_count == 1
        written = views(settings.runs_dir)
        supervisor.regenerate("calm")
        assert views(settings.runs_dir) == written
    finally:
        supervisor.close()
