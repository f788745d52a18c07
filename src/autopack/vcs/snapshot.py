"""Snapshots: a gated diff committed on the integration branch, with a tag.

The commit is built without a working tree — the integration tip is read into a
temporary index, the stored canonical diff and the phase's issue files are added, and
`commit-tree` makes the commit — so it needs nothing but the diff the attempt stored.
Repeating the step after a crash finds the work done (the tag, or a tip commit carrying
this run's and phase's trailers) and neither commits again nor moves the tag.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from autopack.domain.errors import Conflict
from autopack.vcs import refs
from autopack.vcs.git import Git
from autopack.vcs.integration import integration_ref


@dataclass(frozen=True)
class SnapshotRequest:
    """What one phase's snapshot commits."""

    run_id: str
    phase_id: str
    seq: int
    """The phase's position in the run (k of `{k:02d}-{phase_id}`)."""
    title: str
    base: str
    """The integration tip the diff was made against."""
    diff: bytes
    extra_files: Mapping[str, bytes]
    """Repo-relative path -> content, committed with the diff (the phase's issue files)."""
    tokens: int


@dataclass(frozen=True)
class Snapshot:
    """A phase's snapshot commit and tag; `created` is False when it already existed."""

    commit: str
    tag: str
    created: bool


def snapshot_tags(run_id: str) -> str:
    """The folder of a run's snapshot tags (a ref prefix ending in `/`)."""
    return f"refs/tags/autopack/snapshots/{run_id}/"


def snapshot_tag(run_id: str, seq: int, phase_id: str) -> str:
    """The full tag ref of a phase's snapshot."""
    return f"{snapshot_tags(run_id)}{seq:02d}-{phase_id}"


def take_snapshot(git: Git, request: SnapshotRequest) -> Snapshot:
    """Commit and tag one phase's snapshot, or find the one already made."""
    tag = snapshot_tag(request.run_id, request.seq, request.phase_id)
    tagged = refs.current(git, tag)
    if tagged is not None:
        return Snapshot(tagged, tag, created=False)
    branch = integration_ref(request.run_id)
    tip = refs.current(git, branch)
    if tip is None:
        raise Conflict(f"{branch} does not exist; the run's integration branch is missing")
    if _is_snapshot_of(git, tip, request):
        commit, created = tip, False
    elif tip != request.base:
        raise Conflict(
            f"{branch} is at {tip[:12]}, not at {request.base[:12]} where phase "
            f"{request.phase_id!r} started; its diff is not committed"
        )
    else:
        commit, created = _commit(git, request), True
        refs.update_ref(git, branch, commit, tip,
                        reason=f"autopack: snapshot {request.run_id}/{request.phase_id}")
    refs.update_ref(git, tag, commit, None,
                    reason=f"autopack: snapshot tag {request.run_id}/{request.phase_id}")
    return Snapshot(commit, tag, created)


def trailers(run_id: str, phase_id: str, tokens: int) -> str:
    """The trailer block that marks a snapshot commit."""
    return f"Autopack-Run: {run_id}\nAutopack-Phase: {phase_id}\nAutopack-Tokens: {tokens}\n"


def _is_snapshot_of(git: Git, commit: str, request: SnapshotRequest) -> bool:
    body = git.text("show", "-s", "--format=%B", commit)
    lines = set(body.splitlines())
    return {f"Autopack-Run: {request.run_id}", f"Autopack-Phase: {request.phase_id}"} <= lines


def commit_summary(git: Git, run_id: str, files: Mapping[str, bytes]) -> str | None:
    """Commit a finished run's summaries (`files`: repo path -> content) on top of its
    integration tip, so a promotion workflow reads them from the branch; None when the
    tip already holds exactly these files (a repeat after a crash commits nothing)."""
    branch = integration_ref(run_id)
    tip = refs.current(git, branch)
    if tip is None:
        raise Conflict(f"{branch} does not exist; the run's integration branch is missing")
    tree = _tree(git, tip, b"", files)
    if tree == git.text("rev-parse", f"{tip}^{{tree}}"):
        return None
    message = (f"autopack: run summary of {run_id}\n\n"
               f"The run's summaries, tier and phase files and issue index as it ended.\n\n"
               f"Autopack-Run: {run_id}\nAutopack-Summary: final\n")
    commit = git.run("commit-tree", tree, "-p", tip, "-F", "-", input=message.encode()).text
    refs.update_ref(git, branch, commit, tip, reason=f"autopack: run summary {run_id}")
    return commit


def _tree(git: Git, base: str, diff: bytes, files: Mapping[str, bytes]) -> str:
    """The tree of `base` with `diff` applied and `files` written, built in a temporary
    index (no working tree is touched)."""
    with tempfile.TemporaryDirectory(prefix="autopack-index-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        git.run("read-tree", base, env=env)
        if diff.strip():
            git.run("apply", "--cached", "--binary", "--whitespace=nowarn", "-",
                    input=diff, env=env)
        if files:
            paths = sorted(files)
            staged = []
            for k, path in enumerate(paths):  # one hash-object for all files
                blob = Path(tmp) / f"blob-{k}"
                blob.write_bytes(files[path])
                staged.append(f"{blob}\n")
            oids = git.run("hash-object", "-w", "--no-filters", "--stdin-paths",
                           input="".join(staged).encode()).text.split()
            entries = "".join(f"100644 {oid}\t{path}\n" for oid, path in zip(oids, paths,
                                                                             strict=True))
            git.run("update-index", "--index-info", input=entries.encode(), env=env)
        return git.text("write-tree", env=env)


def _commit(git: Git, request: SnapshotRequest) -> str:
    tree = _tree(git, request.base, request.diff, request.extra_files)
    message = (
        f"autopack: {request.phase_id}: {request.title}\n\n"
        f"Phase {request.seq} of run {request.run_id}, gated and green.\n\n"
        + trailers(request.run_id, request.phase_id, request.tokens)
    )
    return git.run("commit-tree", tree, "-p", request.base, "-F", "-",
                   input=message.encode()).text
