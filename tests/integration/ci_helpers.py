"""Helpers for Verifier tests: a CI configuration for pytest projects, bubblewrap."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

BIN = str(Path(sys.executable).parent)
PYTEST = "python -m pytest -q -p no:cacheprovider --junitxml={junit}"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def project_toml(strict: list[str], static_checks: list[str] | None = None,
                 normal: list[str] | None = None) -> str:
    """An autopack.toml: two attempts without backoff, pytest as the normal profile."""
    text = (f'[ci]\nmax_attempts = 2\nbackoff_seconds = 0\n'
            f'env = {{ PATH = "{BIN}:/usr/bin:/bin" }}\n'
            f'[ci.profiles.normal]\ncommands = {json.dumps(normal or [PYTEST])}\n'
            f'[ci.profiles.strict]\ncommands = {json.dumps(strict)}\n')
    if static_checks is not None:
        text += f"[gate]\nstatic_checks = {json.dumps(static_checks)}\n"
    return text



def need_bwrap() -> None:
    """Skip without bubblewrap locally; in CI its absence is a failure."""
    if shutil.which("bwrap") is None:
        if IN_CI:
            pytest.fail("bubblewrap is missing; .ci/run installs it")
        pytest.skip("bubblewrap is not installed here")
