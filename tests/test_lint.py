"""The code stays lint-clean and formatted (ruff) and type-checks (mypy), as configured in pyproject.toml."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT

LINTED = ["labelaudit", "components", "views", "tests", "bench", "scripts", "app.py"]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=ROOT)


def test_ruff_is_clean():
    out = _run("ruff", "check", *LINTED)
    assert out.returncode == 0, out.stdout + out.stderr


def test_ruff_format_is_applied():
    out = _run("ruff", "format", "--check", *LINTED)
    assert out.returncode == 0, "run `ruff format` (make lint):\n" + out.stdout + out.stderr


@pytest.mark.slow
def test_mypy_on_the_core_is_clean():
    out = _run("mypy")
    assert out.returncode == 0, out.stdout + out.stderr
