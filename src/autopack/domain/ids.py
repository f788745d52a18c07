"""Identifiers: one pattern for run, tier and phase ids, safe as a path segment."""

from __future__ import annotations

import re

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def is_valid_id(value: str) -> bool:
    """True when `value` is a legal run, tier or phase id (the whole string)."""
    return _ID_RE.fullmatch(value) is not None


def check_id(value: str) -> str:
    """Return `value` if it is a legal id, else raise ValueError saying why."""
    if is_valid_id(value):
        return value
    shown = value if len(value) <= 40 else value[:40] + "..."
    raise ValueError(
        f"{shown!r} is not a valid id: 1-128 characters of letters, digits, '.', '_' "
        "or '-', starting with a letter or digit"
    )


_RUNS_FOLDER_OWN = re.compile(r"project_issue_backlog(\..+)?\.json", re.IGNORECASE)


def names_a_runs_folder_file(run_id: str) -> bool:
    """True when a run folder called `run_id` would take the place of a file the runs
    folder keeps beside its runs: a project's `project_issue_backlog[.{project}].json`
    (in any case: some filesystems ignore it)."""
    return _RUNS_FOLDER_OWN.fullmatch(run_id) is not None


def slug(text: str, fallback: str, max_length: int = 60) -> str:
    """A filesystem-safe lower-case slug of `text`, or `fallback` when nothing is left."""
    cleaned = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:max_length].strip("_")
    return cleaned or fallback
