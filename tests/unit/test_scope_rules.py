"""Scope rules as pure functions: paths, symlinks, scope entries, sizes, modes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autopack.domain.categories import BuilderMode
from autopack.domain.paths import in_any, path_problem, symlink_problem
from autopack.vcs.scope import ChangedFile, GatePolicy, PhaseScope, check_changes

SAFE = ["src/app.py", "a", "docs/guide/intro.md", "src/.gitignore", "x/.github-notes",
        "src/café.py", "tests/test_..._edge.py", "src/.gitkeep", "a/b..c/d"]


@pytest.mark.parametrize("path", SAFE)
def test_plain_relative_paths_pass(path: str) -> None:
    assert path_problem(path) is None


@pytest.mark.parametrize(("path", "rule"), [
    ("", "unsafe_path"), ("/etc/passwd", "unsafe_path"), ("C:/x", "unsafe_path"),
    ("../x", "unsafe_path"), ("a/../../x", "unsafe_path"), ("a//b", "unsafe_path"),
    ("a/./b", "unsafe_path"), ("a/", "unsafe_path"), ("a\\b", "unsafe_path"),
    ("a/\x00b", "unsafe_path"), ("a/\nb", "unsafe_path"), ("a/\u2025/b", "unsafe_path"),
    ("a/\uff0e\uff0e/b", "unsafe_path"), ("a/.\u200b./b", "unsafe_path"),
    ("a/.\u3164./b", "unsafe_path"), ("a/\udcff", "unsafe_path"),
    (".git/config", "git_dir"), ("src/.git/hooks/x", "git_dir"), (".GIT/config", "git_dir"),
    (".git./x", "git_dir"), (".git /x", "git_dir"), ("GIT~1/config", "git_dir"),
    ("\uff0egit/config", "git_dir"),
])
def test_unsafe_paths_are_refused_with_their_rule(path: str, rule: str) -> None:
    problem = path_problem(path)
    assert problem is not None and problem[0] == rule


_INVISIBLE = st.sampled_from(["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u3164",
                              "\u00ad", "\u034f"])


@given(st.lists(st.sampled_from(["src", "a", "lib"]), max_size=3), _INVISIBLE,
       st.sampled_from(["..", ".git"]), st.integers(0, 2))
def test_dot_dot_and_git_hidden_behind_invisible_characters_are_refused(
    prefix: list[str], invisible: str, hidden: str, where: int
) -> None:
    spelled = hidden[:where] + invisible + hidden[where:]
    assert path_problem("/".join([*prefix, spelled, "x"])) is not None


@pytest.mark.parametrize(("link", "target", "refused"), [
    ("src/l", "app.py", False), ("src/l", "../README.md", False), ("a/b/l", "../../x", False),
    ("src/l", "/etc/passwd", True), ("src/l", "../../x", True), ("l", "..", True),
    ("src/l", "../.git/config", True), ("src/l", "", True), ("src/l", "..\\x", True),
    ("l0", ".", False), ("src/l", "./../README.md", False), ("l", "a/./b", False),
    # a chain: l1 -> l0/.. is `.` on paper, the repository's parent when l0 -> .
    ("l1", "l0/..", True), ("pw", "l9/../etc/passwd", True), ("src/l", "../x/../y", True),
])
def test_symlinks_may_point_only_inside_the_repository(
    link: str, target: str, refused: bool
) -> None:
    assert (symlink_problem(link, target) is not None) is refused


@pytest.mark.parametrize(("path", "entries", "inside"), [
    ("src/app.py", ["src/"], True), ("src2/app.py", ["src/"], False),
    ("src/app.py", ["src"], True), ("src", ["src"], True), ("srcx", ["src"], False),
    ("src/app.py", ["src/*.py"], True), ("src/a/b.py", ["tests/", "src/a/b.py"], True),
    ("docs/x.md", ["src/", "tests/"], False),
])
def test_scope_entries_are_prefixes_files_or_globs(
    path: str, entries: list[str], inside: bool
) -> None:
    assert in_any(path, entries) is inside


def _file(path: str, **fields: object) -> ChangedFile:
    return ChangedFile(path=path, status=str(fields.pop("status", "M")), **fields)  # type: ignore[arg-type]


def _rules(changes: list[ChangedFile], scope: PhaseScope = PhaseScope(),
           policy: GatePolicy | None = None) -> set[tuple[str, str]]:
    return {(r.path, r.rule) for r in check_changes(changes, scope, policy or GatePolicy())}


def test_every_content_rule_names_path_and_rule() -> None:
    changes = [
        _file("src/big.bin", new_size=6 * 1024 * 1024, binary=True),
        _file("src/link", new_mode="120000", symlink_target="/etc/passwd"),
        _file("vendor/lib", new_mode="160000"),
        _file(".gitmodules"),
        _file(".github/workflows/ci.yml"),
        _file("tests/test_x.py"),
    ]
    found = _rules(changes, PhaseScope(paths=("src/", "vendor/", ".github/", ".gitmodules")))
    assert found == {
        ("src/big.bin", "file_too_large"), ("src/big.bin", "binary_file"),
        ("src/link", "symlink_escape"), ("vendor/lib", "submodule"),
        (".gitmodules", "submodule"), (".github/workflows/ci.yml", "forbidden_path"),
        ("tests/test_x.py", "outside_scope"),
    }


def test_a_rename_is_checked_at_both_ends() -> None:
    found = _rules([_file("src/a.py", status="R", old_path=".github/x.yml")],
                   PhaseScope(paths=("src/",)))
    assert found == {(".github/x.yml", "forbidden_path"), (".github/x.yml", "outside_scope")}


def test_deleting_a_large_or_binary_file_is_fine() -> None:
    assert _rules([_file("src/old.bin", status="D", new_size=0, binary=True)]) == set()


def test_a_category_may_be_allowed_a_forbidden_path() -> None:
    policy = GatePolicy(category_allowed_paths={"orchestrator": [".github/"]})
    change = [_file(".github/workflows/ci.yml")]
    assert _rules(change, PhaseScope(task_category="orchestrator"), policy) == set()
    assert _rules(change, PhaseScope(task_category="docs"), policy) == {
        (".github/workflows/ci.yml", "forbidden_path")}


def test_autopack_toml_is_forbidden_whatever_the_projects_list() -> None:
    """A split plan's next part reads [ci] and [gate] where the part before ended: a
    builder loosening autopack.toml (forbidden_paths = [], CI `true`) loosened them."""
    change = [_file("autopack.toml")]
    for policy in (GatePolicy(), GatePolicy(forbidden_paths=[])):
        assert _rules(change, PhaseScope(), policy) == {("autopack.toml", "forbidden_path")}
    allowed = GatePolicy(category_allowed_paths={"orchestrator": ["autopack.toml"]})
    assert _rules(change, PhaseScope(task_category="orchestrator"), allowed) == set()


@pytest.mark.parametrize(("mode", "files", "lines", "expected"), [
    (BuilderMode.TWEAK_LIGHT, 2, 200, set()),
    (BuilderMode.TWEAK_LIGHT, 3, 10, {"too_many_files"}),
    (BuilderMode.TWEAK_LIGHT, 1, 201, {"too_many_lines"}),
    (BuilderMode.SCHEMA_HEAVY, 25, 3_000, set()),
    (BuilderMode.SCHEMA_HEAVY, 26, 3_001, {"too_many_files", "too_many_lines"}),
    (None, 200, 20_000, set()),
    (None, 201, 1, {"too_many_files"}),
])
def test_builder_modes_limit_files_and_lines(
    mode: BuilderMode | None, files: int, lines: int, expected: set[str]
) -> None:
    per_file, rest = divmod(lines, files)
    changes = [_file(f"src/f{i}.py", added_lines=per_file + (1 if i < rest else 0))
               for i in range(files)]
    found = check_changes(changes, PhaseScope(builder_mode=mode), GatePolicy())
    assert {r.rule for r in found} == expected
