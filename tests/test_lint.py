"""The code stays lint-clean and formatted (ruff), type-checks (mypy: core, components, views) and
keeps its layers (import-linter contracts), as configured in pyproject.toml."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

LINTED = ["labelaudit", "components", "views", "tests", "bench", "scripts", "app.py", "serve.py"]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=ROOT)


def test_ruff_is_clean():
    out = _run("ruff", "check", *LINTED)
    assert out.returncode == 0, out.stdout + out.stderr


def _ruff_config() -> dict:
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["ruff"]


def test_the_formatter_and_the_linter_share_one_line_length():
    # E501 measures against `line-length`, the width `ruff format` writes; no second number.
    ruff = _ruff_config()
    assert "max-line-length" not in ruff["lint"].get("pycodestyle", {})
    assert "E501" not in ruff["lint"].get("ignore", [])
    assert ruff["line-length"] == 100


def test_every_line_length_exemption_names_a_file_that_still_needs_it():
    # Exemptions are by file, never by folder or glob, and each goes when its file is wrapped.
    exempt = [f for f, rules in ruff_ignores().items() if "E501" in rules]
    assert all("*" not in f and (ROOT / f).is_file() for f in exempt), exempt
    out = _run(
        "ruff",
        "check",
        "--select",
        "E501",
        "--output-format",
        "concise",
        "--isolated",
        "--line-length",
        str(_ruff_config()["line-length"]),
        *exempt,
    )
    still_long = {line.split(":")[0] for line in out.stdout.splitlines() if " E501 " in line}
    assert set(exempt) <= still_long, (
        f"no line over the limit any more, delete their E501 entry in pyproject.toml: "
        f"{sorted(set(exempt) - still_long)}"
    )


def ruff_ignores() -> dict[str, list[str]]:
    return _ruff_config()["lint"].get("per-file-ignores", {})


def test_ruff_format_is_applied():
    out = _run("ruff", "format", "--check", *LINTED)
    assert out.returncode == 0, "run `ruff format` (make lint):\n" + out.stdout + out.stderr


def test_import_layer_contracts_are_kept():
    # The core imports no app code and no Streamlit; views do not import views; components do
    # not import views (pyproject.toml [tool.importlinter]).
    exe = Path(sys.executable).with_name("lint-imports")
    out = subprocess.run([str(exe), "--no-cache"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "3 kept, 0 broken" in out.stdout, out.stdout


def test_a_broken_layer_is_reported(tmp_path):
    # The contracts can fail: a core module importing components is caught.
    bad = tmp_path / "pkg"
    (bad / "core").mkdir(parents=True)
    (bad / "ui").mkdir()
    (bad / "__init__.py").write_text("")
    (bad / "core" / "__init__.py").write_text("import pkg.ui\n")
    (bad / "ui" / "__init__.py").write_text("")
    (tmp_path / ".importlinter").write_text(
        "[importlinter]\nroot_package = pkg\n\n[importlinter:contract:1]\nname = core\n"
        "type = forbidden\nsource_modules = pkg.core\nforbidden_modules = pkg.ui\n"
    )
    exe = Path(sys.executable).with_name("lint-imports")
    out = subprocess.run(
        [str(exe), "--no-cache"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
    )
    assert out.returncode == 1 and "pkg.core -> pkg.ui" in out.stdout, out.stdout


@pytest.mark.slow
def test_mypy_is_clean():
    out = _run("mypy")
    assert out.returncode == 0, out.stdout + out.stderr
