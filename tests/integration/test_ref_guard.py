"""Only promotion can write main: every ref update goes through `refs.update_ref`, which
refuses refs outside Autopack's namespaces without a grant that only promotion makes."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import autopack
from autopack.domain.errors import Conflict, PolicyViolation
from autopack.vcs import refs
from autopack.vcs.git import Git
from tests.gitutil import git, make_repo

SRC = Path(autopack.__file__).parent


def _modules() -> dict[str, ast.Module]:
    return {p.relative_to(SRC).as_posix(): ast.parse(p.read_text())
            for p in sorted(SRC.rglob("*.py"))}


def _names_used(tree: ast.Module) -> set[str]:
    used = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            used.add(node.attr)
        elif isinstance(node, ast.Name):
            used.add(node.id)
        elif isinstance(node, ast.alias):
            used.add(node.name.split(".")[-1])
    return used


def test_only_promotion_makes_a_grant_and_only_refs_moves_refs() -> None:
    modules = _modules()
    granting = {m for m, t in modules.items() if "PromotionGrant" in _names_used(t)}
    assert granting == {"vcs/refs.py", "vcs/promotion.py"}
    unguarded = {m for m, t in modules.items() if "_update_ref_unguarded" in _names_used(t)}
    assert unguarded == {"vcs/refs.py"}  # (defined in vcs/git.py)


def test_only_the_git_runner_and_the_command_runner_start_processes() -> None:
    spawning = set()
    for module, tree in _modules().items():
        names = _names_used(tree)
        if names & {"subprocess", "system", "popen", "execv", "execvp", "spawnv", "pty"}:
            spawning.add(module)
    assert spawning == {"vcs/git.py", "ci/runner.py"}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo")


@pytest.mark.parametrize("args", [
    ("update-ref", "refs/heads/main", "HEAD~0"), ("branch", "-f", "main", "HEAD"),
    ("push", ".", "HEAD:main"), ("reset", "--hard"), ("commit", "-m", "x"),
    ("tag", "v1"), ("merge", "main"), ("checkout", "-b", "x"), ("switch", "-c", "x"),
    ("symbolic-ref", "HEAD", "refs/heads/x"), ("fetch", "."), ("rebase", "main"),
])
def test_the_git_runner_refuses_ref_writing_commands(repo: Path, args: tuple[str, ...]) -> None:
    before = git(repo, "for-each-ref")
    with pytest.raises(PolicyViolation, match="refs move only through"):
        Git(repo).run(*args)
    assert git(repo, "for-each-ref") == before


@pytest.mark.parametrize("ref", [
    "refs/heads/main", "refs/heads/feature", "refs/tags/v1", "refs/heads/autopack",
    "refs/heads/autopack/../main", "refs/heads/autopackx/y", "refs/remotes/origin/main",
    "HEAD", "main",
])
def test_update_ref_refuses_every_ref_outside_autopacks_namespaces(repo: Path, ref: str) -> None:
    head = git(repo, "rev-parse", "HEAD")
    before = git(repo, "for-each-ref")
    with pytest.raises(PolicyViolation):
        refs.update_ref(Git(repo), ref, head, None, reason="attack")
    with pytest.raises(PolicyViolation):  # a grant for another ref does not help
        refs.update_ref(Git(repo), ref, head, None, reason="attack",
                        grant=refs.PromotionGrant(ref="refs/heads/other", run_id="r"))
    assert git(repo, "for-each-ref") == before


def test_update_ref_is_compare_and_swap(repo: Path) -> None:
    head = git(repo, "rev-parse", "HEAD")
    runner = Git(repo)
    refs.update_ref(runner, "refs/heads/autopack/x", head, None, reason="create")
    with pytest.raises(Conflict, match="expected at nothing"):
        refs.update_ref(runner, "refs/heads/autopack/x", head, None, reason="again")
    with pytest.raises(Conflict):
        refs.update_ref(runner, "refs/heads/autopack/x", head, "1" * 40, reason="stale")
    assert refs.current(runner, "refs/heads/autopack/x") == head


def test_a_ref_whose_lock_file_exists_is_refused_naming_the_file(repo: Path) -> None:
    """It was refused as "expected at nothing but is at nothing". The run's own lock
    files are cleared under its lease; others (a live git's) are left alone."""
    head = git(repo, "rev-parse", "HEAD")
    runner = Git(repo)
    lock = repo / ".git/refs/heads/autopack/integration/r1.lock"
    lock.parent.mkdir(parents=True)
    lock.write_text("")
    other = repo / ".git/refs/heads/autopack/integration/r2.lock"
    other.write_text("")
    with pytest.raises(refs.RefLocked, match=f"{lock} exists"):
        refs.update_ref(runner, "refs/heads/autopack/integration/r1", head, None, reason="x")
    assert refs.clear_stale_locks(runner, ["refs/heads/autopack/integration/r1",
                                           "refs/tags/autopack/snapshots/r1/"]) == [lock]
    refs.update_ref(runner, "refs/heads/autopack/integration/r1", head, None, reason="x")
    assert other.exists()
    with pytest.raises(PolicyViolation):  # Autopack's own refs only
        refs.clear_stale_locks(runner, ["refs/heads/main"])


def test_a_branch_checked_out_in_a_worktree_is_not_moved(repo: Path, tmp_path: Path) -> None:
    """Its checkout's HEAD would follow while its index and files stayed behind."""
    head = git(repo, "rev-parse", "HEAD")
    runner = Git(repo)
    refs.update_ref(runner, "refs/heads/autopack/x", head, None, reason="create")
    git(repo, "commit", "-q", "--allow-empty", "-m", "next")
    nxt = git(repo, "rev-parse", "HEAD")
    git(repo, "worktree", "add", "-q", str(tmp_path / "elsewhere"), "autopack/x")
    with pytest.raises(Conflict, match=f"autopack/x is checked out at {tmp_path}/elsewhere"):
        refs.update_ref(runner, "refs/heads/autopack/x", nxt, head, reason="move")
    assert refs.current(runner, "refs/heads/autopack/x") == head
    git(repo, "-C", str(tmp_path / "elsewhere"), "switch", "-q", "--detach")
    refs.update_ref(runner, "refs/heads/autopack/x", nxt, head, reason="move")
    assert refs.current(runner, "refs/heads/autopack/x") == nxt


def test_a_symbolic_ref_in_autopacks_namespace_is_not_written_through(repo: Path) -> None:
    """A builder (isolation "none") made `autopack/integration/x` a symbolic ref to main:
    Autopack's snapshot then moved main."""
    head = git(repo, "rev-parse", "HEAD")
    git(repo, "symbolic-ref", "refs/heads/autopack/integration/x", "refs/heads/main")
    git(repo, "commit", "-q", "--allow-empty", "-m", "next")
    nxt = git(repo, "rev-parse", "HEAD")
    git(repo, "update-ref", "refs/heads/main", head, nxt)
    runner = Git(repo)
    with pytest.raises(PolicyViolation, match="symbolic ref to refs/heads/main"):
        refs.update_ref(runner, "refs/heads/autopack/integration/x", nxt, head, reason="x")
    with pytest.raises(PolicyViolation, match="symbolic ref"):
        refs.delete_ref(runner, "refs/heads/autopack/integration/x", head, reason="x")
    assert git(repo, "rev-parse", "refs/heads/main") == head


def test_git_variables_of_the_caller_never_redirect_a_command(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = make_repo(tmp_path / "other", {"f": "other\n"})
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))
    monkeypatch.setenv("GIT_INDEX_FILE", str(tmp_path / "evil-index"))
    assert Git(repo).text("rev-parse", "HEAD") == git(repo, "rev-parse", "HEAD")
    assert not (tmp_path / "evil-index").exists()


def test_a_failing_git_command_names_command_exit_code_and_output(repo: Path) -> None:
    from autopack.vcs.git import GitError

    with pytest.raises(GitError) as failed:
        Git(repo).run("cat-file", "-p", "no-such-object")
    assert failed.value.command[-3:] == ["cat-file", "-p", "no-such-object"]
    assert failed.value.returncode == 128
    assert "no-such-object" in failed.value.output_tail
    assert "`git cat-file -p no-such-object` exited 128" in str(failed.value)


def test_a_fresh_repository_may_get_its_first_branch_but_no_other_may(
    repo: Path, tmp_path: Path
) -> None:
    head = git(repo, "rev-parse", "HEAD")
    with pytest.raises(PolicyViolation, match="already has refs"):
        refs.start_empty_repository(Git(repo), "refs/heads/main", head, reason="attack")
    assert git(repo, "rev-parse", "main") == head
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    runner = Git(fresh)
    runner.run("init", "-q", "-b", "main")
    tree = runner.text("write-tree")
    commit = runner.run("commit-tree", tree, "-m", "first").text
    refs.start_empty_repository(runner, "refs/heads/main", commit, reason="first commit")
    assert git(fresh, "rev-parse", "main") == commit
