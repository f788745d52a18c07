"""JUnit XML into per-test outcomes (junitparser), with a size limit."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from junitparser import Error, Failure, JUnitXml, Skipped, TestSuite

from autopack.ci.command_files import UnreadableFile, read_left_file


class Outcome(StrEnum):
    """What happened to one test."""

    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"


class JUnitProblem(Exception):
    """A JUnit file that cannot be used: too large or not JUnit XML."""


@dataclass(frozen=True)
class TestOutcome:
    """One test's result; `test_id` is `classname::name` (pytest: `tests.test_x::test_y`)."""

    test_id: str
    outcome: Outcome
    message: str = ""


def read_junit(path: Path, max_bytes: int) -> list[TestOutcome]:
    """The outcomes in a JUnit XML file; JUnitProblem when it is too large or malformed."""
    try:  # never through a link (to a file the command cannot read), nor from a FIFO
        data = read_left_file(path, max_bytes)
    except UnreadableFile as exc:
        raise JUnitProblem(str(exc)) from None
    try:
        xml = JUnitXml.fromstring(data)
    except Exception as exc:  # junitparser raises lxml/ElementTree errors of several kinds
        raise JUnitProblem(f"{path.name} is not JUnit XML: {exc}") from None
    suites = [xml] if isinstance(xml, TestSuite) else list(xml)
    outcomes = []
    for suite in suites:
        for case in suite:
            name = f"{case.classname}::{case.name}" if case.classname else str(case.name)
            results = case.result
            bad = [r for r in results if isinstance(r, Failure | Error)]
            if bad:
                outcome, message = Outcome.FAILED, (bad[0].message or "")[:500]
            elif any(isinstance(r, Skipped) for r in results):
                outcome, message = Outcome.SKIPPED, ""
            else:
                outcome, message = Outcome.PASSED, ""
            outcomes.append(TestOutcome(name, outcome, message))
    return outcomes
