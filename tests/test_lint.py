"""The code style and type checks of `make lint`, run by the test suite so that CI enforces them."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.helpers import ROOT


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_ruff_finds_nothing():
    done = _run("ruff", "check", ".")
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.slow
def test_mypy_finds_nothing():
    done = _run("mypy", "stancelens", "model", "training", "serve", "batch", "bench")
    assert done.returncode == 0, done.stdout + done.stderr
