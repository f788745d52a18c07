"""autopack.toml: every section, defaults, and errors naming the key."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import pytest

from autopack.domain.errors import ConfigError
from autopack.project_config import load_project_config, parse_project_config


def test_no_file_means_every_default() -> None:
    config = parse_project_config(None, "autopack.toml")
    assert (config.project.id, config.project.main_branch, config.builder.name,
            config.auditor.name) == ("default", "main", "auto", "none")
    assert config.budgets.run.token_cap == 5_000_000
    assert set(config.ci.profiles) == {"normal", "strict"}


def test_the_init_template_is_a_valid_config() -> None:
    text = (resources.files("autopack.ci") / "templates" / "autopack.toml").read_text()
    assert parse_project_config(text, "template").ci.max_attempts == 3


def test_every_section() -> None:
    config = parse_project_config("""
[project]
id = "shop"
main_branch = "trunk"
safety_profile = "safety_critical"
default_run_scope = "single_tier"
ruleset = ".autopack/project_ruleset_v2.json"
[builder]
name = "command"
timeout_seconds = 60
[auditor]
name = "command"
command = "python review.py"
[budgets.run]
token_cap = 100000
max_duration_minutes = 0.5
max_minor_issues_total = 4
[budgets.tier]
ci_runs_per_phase = 3
[budgets.phase]
max_builder_attempts = 2
incident_token_cap = 5000
""", "autopack.toml")
    assert (config.project.id, config.project.safety_profile.value) == ("shop",
                                                                         "safety_critical")
    assert (config.builder.name, config.auditor.command) == ("command", "python review.py")
    assert (config.budgets.run.max_duration_minutes, config.budgets.tier.ci_runs_per_phase,
            config.budgets.phase.incident_token_cap) == (0.5, 3, 5000)


@pytest.mark.parametrize(("text", "where", "message"), [
    ("[colours]\nx = 1\n", "$.colours", "Extra inputs"),
    ("[project]\nid = '../x'\n", "$.project.id", "String should match"),
    ("[project]\nsafety_profile = 'reckless'\n", "$.project.safety_profile", "Input should be"),
    ("[budgets.run]\ntoken_cap = 0\n", "$.budgets.run.token_cap", "greater than 0"),
    ("[budgets.run]\nmax_duration_minutes = -1\n", "$.budgets.run.max_duration_minutes",
     "greater than 0"),
    ("[budgets.phase]\nretries = 2\n", "$.budgets.phase.retries", "Extra inputs"),
    ("[builder]\nname = 'gpt'\n", "$.builder.name", "Input should be"),
    ("[auditor]\nname = 'command'\n", "$.auditor", 'needs `command = "..."`'),
    ("[gate]\nstatic_checks = ['ruff {files}']\n", "$.gate.static_checks",
     "unknown placeholder {files}"),
    # each of these crashed a run midway (IndexError, ValueError from the OS) before
    ("[ci]\nprofiles = {}\n", "$.ci.profiles", "at least 1 item"),
    ("[ci]\nenv = {\"A=B\" = \"x\"}\n", "$.ci.env", "'A=B' is not an environment variable"),
    ("[ci]\nenv = {A = \"x\\u0000y\"}\n", "$.ci.env", "A: a value holds no NUL"),
    ("[ci]\npass_env = [\"1X\"]\n", "$.ci.pass_env", "'1X' is not an environment"),
    ("[project]\nruleset = '/etc/passwd'\n", "$.project.ruleset", "not a path inside"),
    ("[project]\nruleset = '../rules.json'\n", "$.project.ruleset", "not a path inside"),
    ("[budgets.run]\nmax_duration_minutes = inf\n", "$.budgets.run.max_duration_minutes",
     "finite number"),
    # a NUL in a command: a traceback from the OS at the first gate, at every resume
    ("[ci.profiles.normal]\ncommands = [\"x\\u0000y\"]\n", "$.ci.profiles.normal.commands[0]",
     "NUL"),
    ("[gate]\nstatic_checks = [\"x\\u0000\"]\n", "$.gate.static_checks[0]", "NUL"),
    ("[auditor]\nname = 'command'\ncommand = \"x\\u0000\"\n", "$.auditor.command", "NUL"),
    ("[budgets.run]\ntoken_cap = " + "1" * 5000 + "\n", None, "4300"),
])
def test_bad_values_name_the_key(text: str, where: str | None, message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_project_config(text, "autopack.toml")
    assert refused.value.where == ("autopack.toml" if where is None
                                   else f"autopack.toml: {where}")
    assert message in refused.value.message


def test_a_config_that_is_not_a_regular_file_is_refused_not_waited_on(tmp_path: Path) -> None:
    """A FIFO at autopack.toml blocked its reader forever."""
    os.mkfifo(tmp_path / "autopack.toml")
    with pytest.raises(ConfigError, match="is not a regular file"):
        load_project_config(tmp_path)
