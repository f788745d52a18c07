"""Attacks on the governed apply path. Each must be refused naming the path and the rule,
recorded as a gate issue with the attempt's evidence, and leave nothing behind: no
commit, no file outside the repository, the user's checkout byte-identical, main where
it was."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from autopack.vcs.scope import ScopeViolation
from autopack.vcs.workspace import Attempt
from tests.gitutil import git
from tests.integration.helpers import table_rows
from tests.integration.vcs_fixtures import Project


@pytest.fixture
def db_url(sqlite_url: str) -> str:
    """The attacks are about git; one database (SQLite) is enough for them."""
    return sqlite_url


def _new_file_diff(path: str, body: bytes = b"x\n", mode: str = "100644") -> bytes:
    encoded = path.encode()
    lines = body.decode().splitlines()
    hunk = "".join(f"+{line}\n" for line in lines).encode()
    return (b"diff --git a/" + encoded + b" b/" + encoded + b"\n"
            + f"new file mode {mode}\n".encode()
            + b"--- /dev/null\n+++ b/" + encoded + b"\n"
            + f"@@ -0,0 +1,{len(lines)} @@\n".encode() + hunk)


def _outside(project: Project) -> Path:
    return project.repo.parent / "outside"


def diff_into_git_hooks(a: Attempt, p: Project) -> None:
    a.apply_diff(_new_file_diff(".git/hooks/pre-commit", b"#!/bin/sh\ntouch /tmp/pwned\n",
                                "100755"))


def files_into_git_hooks(a: Attempt, p: Project) -> None:
    a.write_files({".git/hooks/post-checkout": b"#!/bin/sh\nexit 0\n"})


def diff_to_parent_dir(a: Attempt, p: Project) -> None:
    a.apply_diff(_new_file_diff("../outside"))


def files_to_parent_dir(a: Attempt, p: Project) -> None:
    a.write_files({"../outside": b"escaped\n"})


def files_to_deep_parent_dir(a: Attempt, p: Project) -> None:
    a.write_files({"src/../../../outside": b"escaped\n"})


def files_to_absolute_path(a: Attempt, p: Project) -> None:
    a.write_files({str(_outside(p)): b"escaped\n"})


def worktree_symlink_to_etc_passwd(a: Attempt, p: Project) -> None:
    os.symlink("/etc/passwd", a.path / "src" / "passwd")


def worktree_symlink_up_and_out(a: Attempt, p: Project) -> None:
    os.symlink("../../outside", a.path / "src" / "up")


def worktree_symlink_chain_out(a: Attempt, p: Project) -> None:
    """Each link alone looks inside; together l2 is the repository's parent's parent."""
    os.symlink(".", a.path / "l0")
    os.symlink("l0/..", a.path / "l1")
    os.symlink("l1/..", a.path / "l2")


def diff_symlink_to_etc_passwd(a: Attempt, p: Project) -> None:
    a.apply_diff(_new_file_diff("src/passwd", b"/etc/passwd", "120000")
                 .replace(b"+/etc/passwd\n", b"+/etc/passwd\n\\ No newline at end of file\n"))


def files_through_a_symlinked_dir(a: Attempt, p: Project) -> None:
    os.symlink(str(p.repo.parent), a.path / "src" / "door")
    a.write_files({"src/door/outside": b"escaped\n"})


def worktree_fifty_megabytes(a: Attempt, p: Project) -> None:
    with open(a.path / "src" / "big.bin", "wb") as handle:
        handle.truncate(50 * 1024 * 1024)


def files_dots_as_unicode_leader(a: Attempt, p: Project) -> None:
    a.write_files({"src/\u2025/outside": b"x\n"})


def files_dots_with_zero_width_space(a: Attempt, p: Project) -> None:
    a.write_files({"src/.\u200b./x": b"x\n"})


def files_dots_with_hangul_filler(a: Attempt, p: Project) -> None:
    a.write_files({"src/.\u3164./x": b"x\n"})


def files_fullwidth_dots(a: Attempt, p: Project) -> None:
    a.write_files({"src/\uff0e\uff0e/x": b"x\n"})


def files_backslash_dots(a: Attempt, p: Project) -> None:
    a.write_files({"..\\..\\outside": b"x\n"})


def diff_backslash_dots(a: Attempt, p: Project) -> None:
    a.apply_diff(_new_file_diff("src\\..\\..\\outside"))


def diff_unicode_dots(a: Attempt, p: Project) -> None:
    a.apply_diff(_new_file_diff("src/\u2025/outside"))


def files_git_dir_spelled_differently(a: Attempt, p: Project) -> None:
    a.write_files({".GIT\u200c/config": b"[core]\n"})


def files_git_dir_with_trailing_dot(a: Attempt, p: Project) -> None:
    a.write_files({".git./hooks/pre-push": b"#!/bin/sh\n"})


def files_git_dir_in_capitals(a: Attempt, p: Project) -> None:
    a.write_files({"src/.GIT/config": b"[core]\n"})


def worktree_forbidden_workflow(a: Attempt, p: Project) -> None:
    (a.path / ".github/workflows/evil.yml").write_text("on: push\njobs: {}\n")


def files_into_autonomous_runs(a: Attempt, p: Project) -> None:
    a.write_files({".autonomous_runs/run-1/run_summary.md": b"forged\n"})


def worktree_submodule(a: Attempt, p: Project) -> None:
    sub = a.path / "vendor" / "lib"
    sub.mkdir(parents=True)
    git(sub, "init", "-q", "-b", "main")
    (sub / "x").write_text("x\n")
    git(sub, "add", "x")
    git(sub, "commit", "-q", "-m", "sub")


def diff_submodule(a: Attempt, p: Project) -> None:
    a.apply_diff(b"diff --git a/vendor/lib b/vendor/lib\nnew file mode 160000\n"
                 b"index 0000000..1234567890123456789012345678901234567890\n"
                 b"--- /dev/null\n+++ b/vendor/lib\n@@ -0,0 +1 @@\n"
                 b"+Subproject commit 1234567890123456789012345678901234567890\n")


ATTACKS: list[tuple[Callable[[Attempt, Project], None], str, str]] = [
    (diff_into_git_hooks, ".git/hooks/pre-commit", "git_dir"),
    (files_into_git_hooks, ".git/hooks/post-checkout", "git_dir"),
    (diff_to_parent_dir, "../outside", "unsafe_path"),
    (files_to_parent_dir, "../outside", "unsafe_path"),
    (files_to_deep_parent_dir, "src/../../../outside", "unsafe_path"),
    (files_to_absolute_path, "<absolute>", "unsafe_path"),
    (worktree_symlink_to_etc_passwd, "src/passwd", "symlink_escape"),
    (worktree_symlink_up_and_out, "src/up", "symlink_escape"),
    (diff_symlink_to_etc_passwd, "src/passwd", "symlink_escape"),
    (worktree_symlink_chain_out, "l1", "symlink_escape"),
    (files_through_a_symlinked_dir, "src/door/outside", "symlink_escape"),
    (worktree_fifty_megabytes, "src/big.bin", "file_too_large"),
    (files_dots_as_unicode_leader, "src/\u2025/outside", "unsafe_path"),
    (files_dots_with_zero_width_space, "src/.\u200b./x", "unsafe_path"),
    (files_dots_with_hangul_filler, "src/.\u3164./x", "unsafe_path"),
    (files_fullwidth_dots, "src/\uff0e\uff0e/x", "unsafe_path"),
    (files_backslash_dots, "..\\..\\outside", "unsafe_path"),
    (diff_backslash_dots, "src\\..\\..\\outside", "unsafe_path"),
    (diff_unicode_dots, "src/\u2025/outside", "unsafe_path"),
    (files_git_dir_spelled_differently, ".GIT\u200c/config", "unsafe_path"),
    (files_git_dir_with_trailing_dot, ".git./hooks/pre-push", "git_dir"),
    (files_git_dir_in_capitals, "src/.GIT/config", "git_dir"),
    (worktree_forbidden_workflow, ".github/workflows/evil.yml", "forbidden_path"),
    (files_into_autonomous_runs, ".autonomous_runs/run-1/run_summary.md", "forbidden_path"),
    (worktree_submodule, "vendor/lib", "submodule"),
    (diff_submodule, "vendor/lib", "submodule"),
]


@pytest.mark.parametrize(("attack", "path", "rule"), ATTACKS,
                         ids=[a[0].__name__ for a in ATTACKS])
def test_attack_is_refused_recorded_and_leaves_nothing(
    project: Project, attack: Callable[[Attempt, Project], None], path: str, rule: str
) -> None:
    project.start()
    base = project.integration_tip()
    if path == "<absolute>":
        path = str(_outside(project))
    worktree: Path | None = None
    with pytest.raises(ScopeViolation) as refused, \
            project.sup.apply.attempt("run-1", "P1") as attempt:
        worktree = attempt.path
        attack(attempt, project)
        project.sup.apply.gate("run-1", "P1", attempt)
    assert any((r.path, r.rule) == (path, rule) for r in refused.value.refusals), \
        refused.value.refusals
    assert path in str(refused.value) and rule in str(refused.value)
    # Nothing committed, nothing left, nothing outside.
    assert project.integration_tip() == base
    assert git(project.repo, "for-each-ref", "refs/tags/autopack") == ""
    assert git(project.repo, "branch", "--list", "autopack/scratch/*") == ""
    assert not _outside(project).exists() and not Path("/tmp/pwned").exists()
    assert not (project.sup.settings.data_dir / "outside").exists()
    assert worktree is not None and not worktree.exists()
    project.assert_untouched()
    # Recorded: the attempt with its evidence, and an issue per refusal.
    url = project.sup.settings.database_url
    attempts = table_rows(url, "attempts")
    assert [(a["number"], a["gate_status"]) for a in attempts] == [(1, "refused")]
    assert {"path": path, "rule": rule} in [
        {k: r[k] for k in ("path", "rule")} for r in attempts[0]["refusals"]]  # type: ignore[attr-defined]
    assert attempts[0]["diff"], "the refused change is kept as evidence"
    issues = table_rows(url, "issues")
    assert any(i["source"] == "gate" and i["category"] == f"gate_{rule}"
               and i["severity"] == "major" for i in issues)
    index = project.sup.issue_index("run-1")
    assert any(k.startswith(f"gate_{rule}__") for k in index["issues_by_key"])


def test_forbidden_path_is_allowed_when_the_task_category_allows_it(project: Project) -> None:
    project.sup.settings.gate.category_allowed_paths = {"orchestrator": [".github/"]}
    project.start(task_category="orchestrator")
    with project.sup.apply.attempt("run-1", "P1") as attempt:
        worktree_forbidden_workflow(attempt, project)
        change = project.sup.apply.gate("run-1", "P1", attempt)
    assert [f.path for f in change.files] == [".github/workflows/evil.yml"]
    project.assert_untouched()


def test_changes_outside_the_phase_scope_are_refused(project: Project) -> None:
    project.start(scope=["src/"])
    with pytest.raises(ScopeViolation, match=r"tests/test_extra\.py: outside_scope"), \
            project.sup.apply.attempt("run-1", "P1") as attempt:
        attempt.write_files({"src/ok.py": b"OK = 1\n", "tests/test_extra.py": b"x = 1\n"})
        project.sup.apply.gate("run-1", "P1", attempt)
    project.assert_untouched()


def test_builder_mode_limits_files_and_lines(project: Project) -> None:
    project.start(builder_mode="tweak_light")
    with pytest.raises(ScopeViolation) as refused, \
            project.sup.apply.attempt("run-1", "P1") as attempt:
        attempt.write_files({f"src/m{i}.py": b"x = 1\n" * 100 for i in range(3)})
        project.sup.apply.gate("run-1", "P1", attempt)
    rules = {r.rule for r in refused.value.refusals}
    assert rules == {"too_many_files", "too_many_lines"}
    assert "builder mode tweak_light allows 2" in str(refused.value)
    project.assert_untouched()


def test_binary_files_are_refused_unless_allowed(project: Project) -> None:
    project.start(phases=(2,))
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))
    with pytest.raises(ScopeViolation, match=r"src/logo\.png: binary_file"), \
            project.sup.apply.attempt("run-1", "P1") as attempt:
        attempt.write_files({"src/logo.png": png})
        project.sup.apply.gate("run-1", "P1", attempt)
    project.sup.settings.gate.allow_binary = True
    with project.sup.apply.attempt("run-1", "P2") as attempt:
        attempt.write_files({"src/logo.png": png})
        project.sup.apply.gate("run-1", "P2", attempt)
    project.assert_untouched()


def test_a_user_hook_never_runs_during_an_attempt(project: Project) -> None:
    """Autopack's git commands run no hooks (a post-checkout hook would run on worktree add)."""
    marker = project.repo.parent / "hook-ran"
    hook = project.repo / ".git" / "hooks" / "post-checkout"
    hook.write_text(f"#!/bin/sh\ntouch {marker}\n")
    hook.chmod(0o755)
    project.start()
    with project.sup.apply.attempt("run-1", "P1") as attempt:
        attempt.write_files({"src/x.py": b"x = 1\n"})
        project.sup.apply.gate("run-1", "P1", attempt)
    project.sup.apply.snapshot("run-1", "P1", 1, tokens=0)
    assert not marker.exists()
    hook.unlink()
    project.assert_untouched()


def _redirect_to_users_repository(attempt: Attempt, project: Project) -> None:
    """The builder points the worktree's `.git` file at the user's own repository."""
    (attempt.path / ".git").write_text(f"gitdir: {project.repo / '.git'}\n")


def _redirect_to_a_fake_repository_with_a_filter(attempt: Attempt, project: Project) -> None:
    """The builder points the worktree's `.git` at a repository it made, whose config
    runs a program as a clean filter on the next `git add`."""
    marker = project.repo.parent / "filter-ran"
    fake = attempt.path / "fake"
    real = git(attempt.path, "rev-parse", "--absolute-git-dir")
    common = Path(git(attempt.path, "rev-parse", "--git-common-dir"))
    if not common.is_absolute():
        common = attempt.path / common
    (fake / "objects" / "info").mkdir(parents=True)
    (fake / "objects" / "info" / "alternates").write_text(f"{common / 'objects'}\n")
    (fake / "refs").mkdir()
    (fake / "HEAD").write_text((Path(real) / "HEAD").read_text())
    (fake / "index").write_bytes((Path(real) / "index").read_bytes())
    (fake / "info").mkdir()
    (fake / "info" / "exclude").write_text("/fake/\n")
    leak = attempt.path / "leak.sh"
    leak.write_text(f"#!/bin/sh\nenv > {marker}\ncat\n")
    leak.chmod(0o755)
    (fake / "config").write_text(
        "[core]\n\trepositoryformatversion = 0\n"
        f'[filter "x"]\n\tclean = {leak}\n')
    (attempt.path / ".gitattributes").write_text("*.txt filter=x\n")
    (attempt.path / ".git").write_text(f"gitdir: {fake}\n")


@pytest.mark.parametrize(("redirect", "refused"), [
    (_redirect_to_users_repository, None),
    # the planted repository is only files in the worktree now: captured, and refused
    (_redirect_to_a_fake_repository_with_a_filter, "fake/index: binary_file"),
])
def test_a_rewritten_worktree_git_file_never_redirects_autopacks_git(
    project: Project, redirect: Callable[[Attempt, Project], None], refused: str | None
) -> None:
    """Autopack's own git commands in an attempt keep the repository the worktree had
    when it was made: a builder rewriting `.git` there neither gets its filter run by our
    `git add` (with our environment) nor has our `git add` write the user's index."""
    project.start()
    with contextlib.ExitStack() as stack:
        if refused:
            stack.enter_context(pytest.raises(ScopeViolation, match=refused))
        with project.sup.apply.attempt("run-1", "P1") as attempt:
            redirect(attempt, project)
            attempt.write_files({"src/b.txt": b"b\n"})
            change = project.sup.apply.gate("run-1", "P1", attempt)
        assert "src/b.txt" in [f.path for f in change.files]
    assert not (project.repo.parent / "filter-ran").exists()
    project.assert_untouched()
