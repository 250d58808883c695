"""The wheel carries the dashboard: build it, install it into a fresh venv, run it outside a
checkout.

The fresh venv reuses this venv's installed dependencies (a ``.pth`` line; no download, no
``--system-site-packages`` needed) but not its editable labelaudit, and only the wheel is installed
(``--no-deps``), so everything labelaudit, ``app.py``, ``components/`` and ``views/`` comes from the
wheel. ``labelaudit app`` is started from an empty folder and a real Chromium checks a page renders;
``la.show()`` starts its own server the same way.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT, free_port, wait_for_app

pytestmark = [pytest.mark.slow]

SOURCES = [
    "pyproject.toml",
    "README.md",
    "app.py",
    "serve.py",
    "labelaudit",
    "components",
    "views",
    "sample_data",
]


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in SOURCES:
        p = ROOT / name
        if p.is_dir():
            shutil.copytree(p, src / name, ignore=ignore)
        else:
            shutil.copy2(p, src / name)
    dist = tmp / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w"]
        + [str(dist), str(src)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = dist.glob("labelaudit-*.whl")
    venv = tmp / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120
    )
    py = venv / "bin" / "python"
    site = subprocess.run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # The dependencies of this venv, appended after the fresh venv's own site-packages.
    Path(site, "_reuse_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "-q"]
        + ["--no-index", str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return venv


def run_py(venv: Path, code: str, cwd: Path) -> str:
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-c", code],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env=clean_env(),
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "LABELAUDIT_DATASET")}
    return dict(env, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")


def test_the_wheel_holds_the_dashboard_and_imports_outside_a_checkout(wheel_venv, tmp_path):
    out = run_py(
        wheel_venv,
        "import labelaudit, components, components.pages\n"
        "from labelaudit.commands.app import APP_SCRIPT\n"
        "from components.data import SAMPLE_DIR\n"
        "print(labelaudit.__file__); print(components.__file__); print(APP_SCRIPT)\n"
        "print(APP_SCRIPT.exists(), (APP_SCRIPT.parent / 'views' / 'review.py').exists(),"
        " (SAMPLE_DIR / 'train.csv').exists())\n",
        tmp_path,
    )
    lines = out.split("\n")
    for path in lines[:3]:
        assert Path(path).is_relative_to(wheel_venv), path
    assert lines[3] == "True True True"


@pytest.mark.browser
def test_labelaudit_app_from_the_wheel_renders_a_page(wheel_venv, tmp_path, page):
    port = free_port()
    log = open(tmp_path / "app.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [str(wheel_venv / "bin" / "labelaudit"), "app", "--port", str(port), "--host", "127.0.0.1"]
        + ["--workspace", str(tmp_path / "ws")],
        cwd=tmp_path,
        env=clean_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, (tmp_path / "app.log").read_text()
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "app.log").read_text()
            time.sleep(0.3)
        page.goto(url)
        wait_for_app(page)
        page.get_by_role("heading", name="Data").wait_for()
        assert page.locator("[data-testid='stException']").count() == 0
        page.get_by_text("Bundled sample: BANKING77").first.wait_for()  # drawn after the heading
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        log.close()


def test_show_from_the_wheel_starts_the_dashboard(wheel_venv, tmp_path):
    out = run_py(
        wheel_venv,
        "import urllib.request, pandas as pd, labelaudit as la\n"
        "df = pd.DataFrame({'text': ['card lost', 'top up failed', 'where is my card'],"
        " 'label': ['lost_card', 'top_up', 'lost_card']})\n"
        "dash = la.show(df, workspace='ws')\n"
        "try:\n"
        "    base = dash.url.split('/?')[0]\n"
        "    with urllib.request.urlopen(base + '/_stcore/health', timeout=5) as r:\n"
        "        print(r.status)\n"
        "finally:\n"
        "    dash.stop()\n",
        tmp_path,
    )
    assert out.strip().splitlines()[-1] == "200"
