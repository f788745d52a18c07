"""The command runner used by CI and static checks.

A command runs through `/bin/sh -c` in a given directory, in its own process group, with
an environment built from an allow-list (so provider API keys and other secrets never
reach it), resource limits, and a timeout that kills the whole group. Its output goes to
a log file capped at `max_log_bytes` (the rest is counted and dropped, with a marker);
a bounded tail is kept for the database.
"""

from __future__ import annotations

import contextlib
import os
import re
import resource
import shutil
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO

from autopack.domain.errors import ConfigError

SAFE_VARIABLES = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TERM", "TMPDIR", "TZ",
                  "USER", "LOGNAME", "SHELL", "VIRTUAL_ENV", "CI")
SECRET_NAME = re.compile(
    r"API_?KEY|ACCESS_?KEY|TOKEN|SECRET|PASSWORD|PASSWD|PASSPHRASE|CREDENTIAL|PRIVATE_?KEY"
    r"|(^|_)KEY$|(^|_)AUTH(_|$)|AUTHORI[SZ]ATION|AUTH_?KEY|SESSION|COOKIE|(^|_)DSN$|DATABASE_URL|(^|_)DB_URL$"
    r"|CONN(ECTION)?_?STR|^AWS_|^AZURE_|^GOOGLE_APPLICATION_CREDENTIALS$",
    re.IGNORECASE)
"""Names of variables that hold secrets (or URLs that usually carry one)."""
TAIL_CHARS = 4000


@dataclass(frozen=True)
class Limits:
    """Resource limits of a command (None: the inherited limit)."""

    cpu_seconds: int | None = None
    memory_bytes: int | None = None
    file_bytes: int | None = None


@dataclass(frozen=True)
class Isolation:
    """Where a command runs: `none` (as is), `bwrap` (bubblewrap: the whole filesystem
    read-only but `writable`, a private /tmp) or `docker` (in `image`, `writable` mounted)."""

    kind: str = "none"
    writable: tuple[Path, ...] = ()
    image: str | None = None
    network: bool = False
    """bwrap/docker: reach the network (else only the command's own loopback)."""


def check_isolation(isolation: Isolation) -> None:
    """A clear ConfigError when the chosen isolation cannot run here."""
    if isolation.kind == "none":
        return
    tool = "bwrap" if isolation.kind == "bwrap" else "docker"
    if shutil.which(tool) is None:
        hint = "apt install bubblewrap" if tool == "bwrap" else "install Docker"
        raise ConfigError("ci.isolation", f"{isolation.kind!r} is chosen but {tool} is not "
                          f"installed ({hint}), or set isolation = \"none\"")
    if isolation.kind == "docker":
        if not isolation.image:
            raise ConfigError("ci.image", "isolation = \"docker\" needs an image")
        probe = subprocess.run(["docker", "info"], capture_output=True, check=False,
                               timeout=30)
        if probe.returncode != 0:
            raise ConfigError("ci.isolation", "docker is installed but its daemon does not "
                              "answer (`docker info` failed)")


def _argv(command: str, cwd: Path, env: Mapping[str, str], isolation: Isolation | None,
          name: str) -> list[str]:
    if isolation is None or isolation.kind == "none":
        return ["/bin/sh", "-c", command]
    if isolation.kind == "bwrap":
        binds = [arg for path in (cwd, *isolation.writable)
                 for arg in ("--bind", str(path), str(path))]
        # its own process namespace: Autopack's process (whose /proc/<pid>/environ
        # still holds the secrets scrubbed from the command's) is not there to read; no
        # capabilities (bwrap started by root keeps them all otherwise, and with them
        # a command remounts / writable); without network, no socket of another
        # process either (an `autopack serve` on loopback would run commands for it)
        offline = [] if isolation.network else ["--unshare-net", "--tmpfs", "/run"]
        return ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--unshare-pid",
                "--proc", "/proc", "--tmpfs", "/tmp", *offline, *binds, "--cap-drop", "ALL",
                "--die-with-parent", "--new-session", "--chdir", str(cwd),
                "/bin/sh", "-c", command]
    mounts = [arg for path in (cwd, *isolation.writable) for arg in ("-v", f"{path}:{path}")]
    envs = [arg for key in sorted(env) for arg in ("-e", key)]
    offline = [] if isolation.network else ["--network", "none"]
    return ["docker", "run", "--rm", "--name", name, *offline, *mounts, *envs, "-w", str(cwd),
            str(isolation.image), "/bin/sh", "-c", command]


@dataclass(frozen=True)
class CommandResult:
    """How a command ended."""

    command: str
    exit_code: int
    timed_out: bool
    seconds: float
    log_path: Path
    tail: str
    output_bytes: int
    log_truncated: bool


def command_environment(
    pass_env: Sequence[str] = (), extra: Mapping[str, str] | None = None,
    source: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The allow-listed variables of `source` (default: ours), `pass_env`, then `extra`.

    A secret-looking name (`*_API_KEY`, `*TOKEN*`, `*SECRET*`, ...) in `pass_env` is a
    configuration error: secrets are never handed to test commands.
    """
    origin = os.environ if source is None else source
    for name in pass_env:
        if SECRET_NAME.search(name):
            raise ConfigError("ci.pass_env", f"{name!r} looks like a secret; it is never "
                              "passed to CI commands")
    env = {k: origin[k] for k in (*SAFE_VARIABLES, *pass_env) if k in origin}
    env.update(extra or {})
    return env


def _new_log(path: Path) -> BinaryIO:
    """A new, empty log file at `path`. Commands can write their log folder, so whatever
    one left at this name (a symbolic link to a file elsewhere, say) is removed first,
    and the file is created exclusively and never through a link."""
    with contextlib.suppress(FileNotFoundError):
        if path.is_symlink() or not path.is_dir():
            path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o644)
    return os.fdopen(fd, "wb")


def run_command(
    command: str, cwd: Path, log_path: Path, timeout: float, env: Mapping[str, str],
    max_log_bytes: int = 10 * 1024 * 1024, limits: Limits | None = None,
    isolation: Isolation | None = None, stdin: bytes | None = None,
) -> CommandResult:
    """Run `command` (with `stdin` on its standard input, if given); never raises for the
    command's own failure (see the exit code)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    name = f"autopack-{uuid.uuid4().hex[:12]}"
    with _new_log(log_path) as log:
        log.write(f"$ {command}\n".encode())
        proc = subprocess.Popen(
            _argv(command, cwd, env, isolation, name), cwd=cwd, env=dict(env),
            stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=_limiter(limits) if limits else None,
        )
        assert proc.stdout is not None
        sink = _Sink(log, max_log_bytes)
        reader = threading.Thread(target=sink.drain, args=(proc.stdout,), daemon=True)
        reader.start()
        if stdin is not None:
            threading.Thread(target=_feed, args=(proc.stdin, stdin), daemon=True).start()
        timed_out = False
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            if isolation is not None and isolation.kind == "docker":
                subprocess.run(["docker", "kill", name], capture_output=True, check=False,
                               timeout=60)
        except BaseException:  # interrupted (Ctrl-C): the command must not live on
            _kill_group(proc.pid)
            proc.wait()
            raise
        _kill_group(proc.pid)  # also whatever the command left running
        proc.wait()
        reader.join(timeout=10)
        proc.stdout.close()
        if timed_out:
            log.write(f"\n[autopack: killed after {timeout:g} s]\n".encode())
        if sink.dropped:
            log.write(f"\n[autopack: output truncated; {sink.dropped} more bytes dropped]\n"
                      .encode())
    return CommandResult(
        command=command, exit_code=proc.returncode, timed_out=timed_out,
        seconds=time.monotonic() - start, log_path=log_path, tail=sink.tail(),
        output_bytes=sink.total, log_truncated=sink.dropped > 0,
    )


class _Sink:
    """Copies output to the log up to a cap, counts the rest, keeps a tail."""

    def __init__(self, log: BinaryIO, cap: int) -> None:
        self.log = log
        self.cap = cap
        self.written = 0
        self.total = 0
        self.dropped = 0
        self._tail = b""

    def drain(self, stream: IO[bytes]) -> None:
        read = getattr(stream, "read1", stream.read)
        write = self.log.write
        while chunk := read(65536):
            self.total += len(chunk)
            room = self.cap - self.written
            if room > 0:
                write(chunk[:room])
                self.written += min(room, len(chunk))
            self.dropped += max(0, len(chunk) - max(room, 0))
            self._tail = (self._tail + chunk)[-TAIL_CHARS * 2:]

    def tail(self) -> str:
        return self._tail.decode("utf-8", "replace")[-TAIL_CHARS:]


def _feed(pipe: IO[bytes] | None, data: bytes) -> None:
    """Write a command's standard input, then close it (a command may stop reading)."""
    if pipe is None:
        return
    with contextlib.suppress(BrokenPipeError, OSError):
        pipe.write(data)
    with contextlib.suppress(BrokenPipeError, OSError):
        pipe.close()


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _limiter(limits: Limits) -> Callable[[], None]:
    def apply() -> None:
        for kind, value in ((resource.RLIMIT_CPU, limits.cpu_seconds),
                            (resource.RLIMIT_AS, limits.memory_bytes),
                            (resource.RLIMIT_FSIZE, limits.file_bytes)):
            if value is not None:
                resource.setrlimit(kind, (value, value))
    return apply
