"""The Verifier on real pytest projects in temp dirs: flaky, failing, hanging and crashing
tests, a scrubbed environment, bounded logs, bad configuration, and `autopack gate`."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from pydantic import ValidationError

from autopack.ci.config import CiConfig, Profile
from autopack.ci.preflight import run_preflight
from autopack.ci.runner import Isolation, command_environment, run_command
from autopack.domain.errors import ConfigError
from autopack.project_config import load_project_config, parse_project_config
from tests.integration.ci_helpers import BIN, PYTEST, need_bwrap, project_toml
from tests.processes import ends

AUTOPACK = str(Path(sys.executable).with_name("autopack"))


def project(root: Path, tests: str) -> Path:
    (root / "tests").mkdir(parents=True)
    (root / "tests" / "test_it.py").write_text(textwrap.dedent(tests))
    return root


def config(**fields: object) -> CiConfig:
    env = {"PATH": f"{BIN}:/usr/bin:/bin", **fields.pop("env", {})}  # type: ignore[dict-item]
    return CiConfig(profiles={"normal": Profile(commands=[PYTEST])}, backoff_seconds=0.5,
                    env=env, **fields)  # type: ignore[arg-type]


def test_a_flaky_test_is_green_on_retry_and_recorded_minor(tmp_path: Path) -> None:
    counter = tmp_path / "counter"  # outside the repository
    repo = project(tmp_path / "repo", f"""
        from pathlib import Path
        def test_sometimes():
            p = Path({str(counter)!r})
            n = int(p.read_text()) if p.exists() else 0
            p.write_text(str(n + 1))
            assert n >= 1
        def test_always():
            assert True
        """)
    waits: list[float] = []
    result = run_preflight(config(), "normal", repo, tmp_path / "logs", sleep=waits.append)
    assert (result.green, result.attempts, waits) == (True, 2, [0.5])
    assert [(i.issue_key, i.severity) for i in result.issues] == [
        ("flaky_test__tests.test_it::test_sometimes", "minor")]


def test_a_failing_test_exhausts_attempts_with_backoff(tmp_path: Path) -> None:
    repo = project(tmp_path / "repo", """
        def test_broken():
            assert 1 == 2
        """)
    waits: list[float] = []
    result = run_preflight(config(), "normal", repo, tmp_path / "logs", sleep=waits.append)
    assert (result.green, result.attempts, waits) == (False, 3, [0.5, 1.0])
    [issue] = result.issues
    assert (issue.issue_key, issue.severity) == ("ci_test_failure__tests.test_it::test_broken",
                                                 "minor")
    assert issue.evidence_refs[0] == "tests.test_it::test_broken"
    assert Path(issue.evidence_refs[1]).read_text().count("test_broken") >= 1
    strict = run_preflight(config(max_attempts=1), "normal", repo, tmp_path / "logs2",
                           strict_failures=True, sleep=waits.append)
    assert strict.issues[0].severity == "major"


def test_the_ci_run_budget_stops_retries(tmp_path: Path) -> None:
    repo = project(tmp_path / "repo", "def test_broken():\n    assert False\n")
    result = run_preflight(config(), "normal", repo, tmp_path / "logs", runs_left=1,
                           sleep=lambda s: None)
    assert (result.attempts, result.green) == (1, False)
    assert result.stopped_early == "the CI run budget is spent after 1 runs"


def test_a_hanging_test_is_killed_at_the_timeout_with_its_children(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    repo = project(tmp_path / "repo", f"""
        import subprocess, time
        from pathlib import Path
        def test_hangs():
            child = subprocess.Popen(["sleep", "600"])
            Path({str(pid_file)!r}).write_text(str(child.pid))
            time.sleep(600)
        """)
    result = run_preflight(config(max_attempts=1, timeout_seconds=5), "normal", repo,
                           tmp_path / "logs")
    assert not result.green and result.runs[0][0].timed_out
    assert [i.issue_key for i in result.issues] == [
        "ci_timeout__python_-m_pytest_-q_-p_no:cacheprovider_--junitxml_junit"]
    # killed, so it ends within moments (a SIGKILL takes effect when the process is next
    # scheduled); left alone it would sleep for ten minutes
    assert ends(int(pid_file.read_text()), within=60), "the test's child outlived the timeout"


def test_a_crash_without_junit_is_a_command_failure_with_its_tail(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    crash = CiConfig(profiles={"normal": Profile(commands=[
        "python -c 'import sys; print(\"boom here\"); sys.exit(3)'"])}, max_attempts=1,
        env={"PATH": f"{BIN}:/usr/bin:/bin"})
    result = run_preflight(crash, "normal", repo, tmp_path / "logs")
    [issue] = result.issues
    assert issue.category == "ci_command_failure" and "exit 3" in issue.description
    assert "boom here" in issue.description
    missing = CiConfig(profiles={"normal": Profile(commands=["no-such-tool --check"])},
                       max_attempts=1)
    [gone] = run_preflight(missing, "normal", repo, tmp_path / "logs2").issues
    assert "exit 127" in gone.description and "not found" in gone.description


def test_secrets_never_reach_a_test_command(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-openai")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-secret")
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_secret")
    seen = tmp_path / "env.json"
    repo = project(tmp_path / "repo", f"""
        import json, os
        def test_env():
            open({str(seen)!r}, "w").write(json.dumps(dict(os.environ)))
        """)
    result = run_preflight(config(max_attempts=1, pass_env=["HOME"]), "normal", repo,
                           tmp_path / "logs")
    assert result.green
    env = json.loads(seen.read_text())
    assert not {"OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GITHUB_TOKEN"} & set(env)
    assert "sk-" not in seen.read_text() and "ghp_" not in seen.read_text()
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        command_environment(["OPENAI_API_KEY"])


@pytest.mark.parametrize("name", [
    "AWS_ACCESS_KEY_ID", "AWS_SESSION_TOKEN", "AZURE_OPENAI_KEY", "KEY", "STRIPE_KEY",
    "DATABASE_URL", "SENTRY_DSN", "NPM_AUTH", "GPG_PASSPHRASE", "DB_URL", "SESSION_ID",
    "GOOGLE_APPLICATION_CREDENTIALS", "MONGO_CONNECTION_STRING",
    # the README said `*_AUTH*` while these passed (and reached the builder)
    "HTTP_AUTHORIZATION", "NPM_AUTHKEY", "REGISTRY_AUTH_KEY", "PROXY_AUTHORISATION",
])
def test_pass_env_refuses_names_that_hold_secrets(name: str) -> None:
    with pytest.raises(ConfigError, match=name):
        command_environment([name])


@pytest.mark.parametrize("name", ["HOME", "LANG", "PYTHONPATH", "GIT_AUTHOR_NAME",
                                  "KEYBOARD", "MONKEY", "AUTHOR"])
def test_pass_env_keeps_ordinary_names(name: str) -> None:
    command_environment([name])


def test_a_gigabyte_of_output_leaves_a_bounded_log(tmp_path: Path) -> None:
    done = run_command("head -c 1073741824 /dev/zero | tr '\\0' 'x'; echo; echo END",
                       tmp_path, tmp_path / "big.log", timeout=120,
                       env={"PATH": "/usr/bin:/bin"}, max_log_bytes=1024 * 1024)
    assert done.exit_code == 0 and done.log_truncated
    assert done.output_bytes > 1_000_000_000
    assert (tmp_path / "big.log").stat().st_size < 1024 * 1024 + 4096
    assert "output truncated" in (tmp_path / "big.log").read_text()[-200:]
    assert done.tail.endswith("END\n")


def test_unusable_junit_is_an_issue(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    for name, command in (
        ("malformed", "echo '<testsuite><testcase' > {junit}"),
        ("huge", "truncate -s 100M {junit}"),
    ):
        cfg = CiConfig(profiles={"normal": Profile(commands=[command])}, max_attempts=1,
                       env={"PATH": "/usr/bin:/bin"})
        result = run_preflight(cfg, "normal", repo, tmp_path / name)
        assert result.green  # the command itself succeeded, but its JUnit is unusable
        assert [i.category for i in result.issues] == ["ci_junit"], name
        cfg_red = CiConfig(profiles={"normal": Profile(commands=[command + "; exit 1"])},
                           max_attempts=1, env={"PATH": "/usr/bin:/bin"})
        red = run_preflight(cfg_red, "normal", repo, tmp_path / f"{name}-red")
        categories = {i.category for i in red.issues}
        assert {"ci_junit", "ci_command_failure"} <= categories, (name, red.issues)


@pytest.mark.parametrize(("toml", "where", "message"), [
    ("[ci.profiles.normal]\ncommands = []\n", ": $.ci.profiles.normal.commands",
     "at least 1 item"),
    ("[ci.profiles.normal]\ncommands = ['pytest --out={report}']\n",
     ": $.ci.profiles.normal.commands", "unknown placeholder {report}"),
    ("[ci]\nmax_attempts = 0\n", ": $.ci.max_attempts", "greater than or equal to 1"),
    ("[ci]\ncolour = 'blue'\n", ": $.ci.colour", "Extra inputs"),
    ("[ci\n", "autopack.toml", "malformed TOML"),
])
def test_bad_ci_configuration_names_the_key(tmp_path: Path, toml: str, where: str,
                                            message: str) -> None:
    (tmp_path / "autopack.toml").write_text(toml)
    with pytest.raises(ConfigError) as refused:
        load_project_config(tmp_path)
    assert where in refused.value.where and message in refused.value.message


def test_cli_gate_and_the_playbook_script(tmp_path: Path) -> None:
    repo = project(tmp_path / "repo", "def test_ok():\n    assert True\n")
    (repo / "autopack.toml").write_text(
        project_toml([PYTEST, "python -c 'raise SystemExit(1)'"]))
    env = {**os.environ, "AUTOPACK_DATA_DIR": str(tmp_path / "data")}
    green = subprocess.run([AUTOPACK, "gate", "--repo", str(repo), "--json"], env=env,
                           capture_output=True, text=True, timeout=300, check=False)
    assert green.returncode == 0, green.stderr
    assert json.loads(green.stdout)["green"] is True
    red = subprocess.run(["bash", "scripts/preflight_gate.sh", "--profile", "strict", "--repo",
                          str(repo)], env={**env, "AUTOPACK": AUTOPACK},
                         capture_output=True, text=True, timeout=300, check=False,
                         cwd=Path(__file__).resolve().parents[2])
    assert red.returncode == 1 and "RED after 2 attempt(s)" in red.stdout
    unknown = subprocess.run([AUTOPACK, "gate", "--repo", str(repo), "--profile", "lax"],
                             env=env, capture_output=True, text=True, timeout=60, check=False)
    assert unknown.returncode == 2 and "--profile" in unknown.stderr


def test_init_writes_config_and_workflows_and_never_overwrites(tmp_path: Path) -> None:
    repo = tmp_path / "target"
    repo.mkdir()
    done = subprocess.run([AUTOPACK, "init", "--repo", str(repo), "--ci", "github"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    written = sorted(p.relative_to(repo).as_posix() for p in repo.rglob("*") if p.is_file())
    assert written == [".github/workflows/autopack-preflight.yml",
                       ".github/workflows/autopack-promotion.yml", "autopack.toml"]
    parsed = parse_project_config((repo / "autopack.toml").read_text(), "autopack.toml")
    ci, gate = parsed.ci, parsed.gate
    assert set(ci.profiles) == {"normal", "strict"} and gate.static_checks == []
    assert "autopack/integration/**" in (repo / ".github/workflows/autopack-preflight.yml"
                                         ).read_text()
    assert "autopack promotion check" in (repo / ".github/workflows/autopack-promotion.yml"
                                          ).read_text()
    (repo / "autopack.toml").write_text("# mine\n")
    again = subprocess.run([AUTOPACK, "init", "--repo", str(repo)], capture_output=True,
                           text=True, timeout=60, check=False)
    assert again.returncode == 2 and "already exists" in again.stderr
    assert (repo / "autopack.toml").read_text() == "# mine\n"
    other = subprocess.run([AUTOPACK, "init", "--repo", str(repo), "--ci", "gitlab"],
                           capture_output=True, text=True, timeout=60, check=False)
    assert other.returncode == 2 and "--ci" in other.stderr


@pytest.mark.parametrize("link", ["outside", "nowhere"])
def test_init_writes_nothing_through_a_link(tmp_path: Path, link: str) -> None:
    """A repository's `.github` linked elsewhere had init write the workflows there; a
    dangling `.github/workflows` link ended in a traceback after autopack.toml was
    written."""
    repo = tmp_path / "target"
    (repo / ".github").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (repo / ".github" / "workflows").symlink_to(outside if link == "outside"
                                                else tmp_path / "nowhere")
    done = subprocess.run([AUTOPACK, "init", "--repo", str(repo), "--ci", "github"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2, done.stderr
    assert f"{repo / '.github' / 'workflows'}: is a link" in done.stderr
    assert list(outside.iterdir()) == [] and not (repo / "autopack.toml").exists()


def test_bwrap_isolation_lets_a_command_write_only_its_checkout(tmp_path: Path) -> None:
    need_bwrap()
    import uuid

    repo = tmp_path / "repo"
    repo.mkdir()
    beside = tmp_path / "beside.txt"  # under /tmp: the command gets a private /tmp
    outside = Path("/var/tmp") / f"autopack-escape-{uuid.uuid4().hex}"  # read-only
    cfg = CiConfig(isolation="bwrap", max_attempts=1, env={"PATH": "/usr/bin:/bin"},
                   profiles={"normal": Profile(commands=["touch inside.txt", f"touch {beside}"]),
                             "strict": Profile(commands=[f"touch {outside}"])})
    try:
        assert run_preflight(cfg, "normal", repo, tmp_path / "logs").green
        assert (repo / "inside.txt").exists() and not beside.exists()
        escaped = run_preflight(cfg, "strict", repo, tmp_path / "logs2")
        assert not escaped.green and not outside.exists()
        assert "Read-only file system" in escaped.runs[0][0].tail
    finally:
        outside.unlink(missing_ok=True)


def test_under_bwrap_a_command_cannot_read_autopacks_environment(tmp_path: Path) -> None:
    """Secrets are scrubbed from a command's environment, but Autopack's own stayed
    readable at /proc/<its pid>/environ (the sandbox saw every process): a command now
    runs in its own process namespace."""
    need_bwrap()
    repo = tmp_path / "repo"
    repo.mkdir()
    marker = "autopack-secret-" + os.urandom(8).hex()
    host = textwrap.dedent(f"""
        from pathlib import Path
        from autopack.ci.runner import Isolation, run_command
        done = run_command("grep -l -a {marker} /proc/[0-9]*/environ; ls /proc | grep -c '^[0-9]'",
                           Path({str(repo)!r}), Path({str(tmp_path / 'cmd.log')!r}), 60,
                           {{"PATH": "/usr/bin:/bin"}},
                           isolation=Isolation("bwrap", (), None))
        print(done.tail)
        """)
    out = subprocess.run([sys.executable, "-c", host], capture_output=True, text=True,
                         env={**os.environ, "OPENAI_API_KEY": marker}, timeout=120,
                         check=True).stdout
    assert "/environ" not in out, out  # no process holding the secret is visible
    assert int(out.split()[-1]) < 10, out  # the sandbox's own few processes only


def test_under_bwrap_a_command_holds_no_capability_even_when_root_starts_it(
    tmp_path: Path,
) -> None:
    """bubblewrap started by root kept every capability: a command remounted `/`
    writable (then moved main, wrote the user's checkout and $HOME) and unmounted the
    private /proc to read Autopack's environment."""
    need_bwrap()
    repo = tmp_path / "repo"
    repo.mkdir()
    victim = Path("/var/tmp") / f"autopack-remount-{os.urandom(6).hex()}"
    attack = (f"grep CapEff /proc/self/status; mount -o remount,bind,rw / "
              f"&& echo REMOUNTED; umount -l /proc && echo UNMOUNTED; touch {victim}")
    done = run_command(attack, repo, tmp_path / "cmd.log", 60, {"PATH": "/usr/bin:/bin"},
                       isolation=Isolation("bwrap"))
    try:
        assert "CapEff:\t0000000000000000" in done.tail, done.tail
        assert "REMOUNTED" not in done.tail and "UNMOUNTED" not in done.tail
        assert done.exit_code != 0 and not victim.exists()
    finally:
        victim.unlink(missing_ok=True)


def test_under_bwrap_a_command_reaches_no_local_service_unless_network_is_on(
    tmp_path: Path,
) -> None:
    """A sandboxed builder asked a local `autopack serve` (no token on loopback) to
    execute a run in another repository without a sandbox: commands now get a network
    of their own (and no /run sockets) unless `[ci] network = true`."""
    need_bwrap()
    repo = tmp_path / "repo"
    repo.mkdir()
    with socket.socket() as service:
        service.bind(("127.0.0.1", 0))
        service.listen(8)
        port = service.getsockname()[1]
        probe = (f"python3 -c \"import socket; socket.create_connection(('127.0.0.1', {port}),"
                 f" timeout=10); print('CONNECTED')\"")
        cut_off = run_command(probe, repo, tmp_path / "off.log", 60,
                              {"PATH": "/usr/bin:/bin"}, isolation=Isolation("bwrap"))
        allowed = run_command(probe, repo, tmp_path / "on.log", 60, {"PATH": "/usr/bin:/bin"},
                              isolation=Isolation("bwrap", network=True))
    assert cut_off.exit_code != 0 and "Connection refused" in cut_off.tail, cut_off.tail
    assert allowed.exit_code == 0 and "CONNECTED" in allowed.tail, allowed.tail
    assert CiConfig(isolation="bwrap", network=True).isolation_for().network
    assert not CiConfig(isolation="bwrap").isolation_for().network


def test_a_missing_isolation_tool_is_a_clear_error(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    cfg = CiConfig(isolation="bwrap", max_attempts=1,
                   profiles={"normal": Profile(commands=["true"])})
    with pytest.raises(ConfigError, match="bwrap is not installed"):
        run_preflight(cfg, "normal", repo, tmp_path / "logs")
    docker = CiConfig(isolation="docker", image="python:3.11", max_attempts=1,
                      profiles={"normal": Profile(commands=["true"])})
    with pytest.raises(ConfigError, match="docker is not installed"):
        run_preflight(docker, "normal", repo, tmp_path / "logs")
    with pytest.raises(ValidationError, match='isolation = "docker" needs an image'):
        CiConfig(isolation="docker")


def test_a_command_planting_links_in_its_log_folder_never_gets_a_file_written_or_read(
    tmp_path: Path
) -> None:
    """The log folder is the command's to write (its {junit} lives there): links it plants
    at the next attempt's log name or as its report lead nowhere."""
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    plant = tmp_path / "plant.sh"
    plant.write_text(textwrap.dedent(f"""\
        dir=$(dirname "$1")
        for n in 1 2 3; do ln -sf {victim} "$dir/attempt$n-cmd0.log"; done
        ln -sf {victim} "$1"
        exit 1
        """))
    repo = tmp_path / "repo"
    repo.mkdir()
    ci = CiConfig(profiles={"normal": Profile(commands=[f"sh {plant} {{junit}}"])},
                  backoff_seconds=0, max_attempts=3, env={"PATH": "/usr/bin:/bin"})
    result = run_preflight(ci, "normal", repo, tmp_path / "logs", sleep=lambda _s: None)
    assert (result.green, result.attempts) == (False, 3)
    assert victim.read_text() == "precious\n"  # no log was written through a link
    assert "precious" not in json.dumps([i.description for i in result.issues])
