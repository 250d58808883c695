"""Shared fixtures: datasets, workspaces, a real Streamlit server, and a real headless Chromium."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_data" / "banking77"
BAD = Path(__file__).resolve().parent / "data" / "bad"
SHARED = ROOT.parent / "shared"
CHROMIUM = os.environ.get("LABELAUDIT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# The app reads server paths only inside the data roots (labelaudit.security). Tests type paths of
# tests/data and of pytest's temporary folders; tests/test_security.py sets its own roots.
os.environ.setdefault(
    "LABELAUDIT_DATA_ROOTS",
    os.pathsep.join([str(Path(__file__).resolve().parent / "data"), tempfile.gettempdir()]),
)
# No scan starts on its own in tests (a page view would otherwise scan the 13k-row sample in the
# background); the tests of automatic scans set "inline" or "process" themselves (labelaudit.jobs).
os.environ.setdefault("LABELAUDIT_SCAN_RUNNER", "off")


# --------------------------------------------------------------------------- data
@pytest.fixture(scope="session")
def sample_dataset():
    """The bundled BANKING77 sample (train + test splits, with its companions). Read-only."""
    from labelaudit.io import load_dataset

    return load_dataset(SAMPLE)


@pytest.fixture(scope="session")
def small_dataset(sample_dataset):
    """300 BANKING77 train rows from 5 classes: quick to embed and train on. Read-only."""
    import numpy as np

    keep = sample_dataset.classes[:5]
    mask = sample_dataset.frame["label"].isin(keep).to_numpy() & sample_dataset.split_mask("train")
    rows = np.flatnonzero(mask)[:300]
    sub = np.zeros(sample_dataset.n, dtype=bool)
    sub[rows] = True
    ds = sample_dataset.subset(sub)
    ds.classes = keep
    ds.__dict__.pop("labels", None)
    return ds


@pytest.fixture
def workspace(tmp_path):
    from labelaudit.workspace import Workspace

    return Workspace(tmp_path / "ws")


# --------------------------------------------------------------------------- server
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class StreamlitServer:
    """The real app in a subprocess (``streamlit run app.py``) on a free loopback port."""

    def __init__(
        self,
        workspace: Path,
        dataset_hash: str | None = None,
        env: dict[str, str] | None = None,
        args: list[str] | None = None,
        port: int | None = None,
    ):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workspace = Path(workspace)
        self.log_path = self.workspace / f"streamlit-{self.port}.log"
        self.workspace.mkdir(parents=True, exist_ok=True)
        full_env = dict(
            os.environ,
            LABELAUDIT_WORKSPACE=str(self.workspace),
            HF_HUB_OFFLINE="1",
            TRANSFORMERS_OFFLINE="1",
            **(env or {}),
        )
        if dataset_hash:
            full_env["LABELAUDIT_DATASET"] = dataset_hash
        self._log = open(self.log_path, "w")  # noqa: SIM115 (open for the server's lifetime; closed in stop)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                str(ROOT / "app.py"),
                "--server.headless",
                "true",
                "--browser.gatherUsageStats",
                "false",
                "--server.port",
                str(self.port),
                "--server.address",
                "127.0.0.1",
                "--server.fileWatcherType",
                "none",
                *(args or []),
            ],
            cwd=ROOT,
            env=full_env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._wait_healthy()

    def _wait_healthy(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"streamlit exited early:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"streamlit did not become healthy in {timeout} s:\n{self.log()}")

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-5000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            import signal

            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self._log.close()


@pytest.fixture
def streamlit_server(tmp_path) -> Iterator[Callable[..., StreamlitServer]]:
    """Factory: ``server = streamlit_server(workspace=..., dataset=ds_or_hash)``; stopped after the test.

    Passing a Dataset saves it to the workspace first, so the app opens with it loaded (as
    ``labelaudit app DATA`` does).
    """
    started: list[StreamlitServer] = []

    def start(
        workspace: Path | None = None, dataset=None, env: dict[str, str] | None = None
    ) -> StreamlitServer:
        from labelaudit.workspace import Workspace

        ws = Workspace(workspace or tmp_path / "ws")
        h = (
            ws.save_dataset(dataset)
            if dataset is not None and not isinstance(dataset, str)
            else dataset
        )
        server = StreamlitServer(ws.root, h, env)
        started.append(server)
        return server

    yield start
    for s in started:
        s.stop()


# --------------------------------------------------------------------------- browser
@pytest.fixture(scope="session")
def browser():
    """A real headless Chromium (Debian's), driven by Playwright. Never downloads a browser."""
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: `make test` installs it (apt package chromium)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser, tmp_path):
    """A fresh browser page (1400x1000) with downloads enabled; screenshots on failure go to tmp_path."""
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    pg = ctx.new_page()
    pg.set_default_timeout(60_000)
    yield pg
    ctx.close()


def wait_for_app(page, timeout: float = 90_000) -> None:
    """Wait until Streamlit has finished running the script: the app's own run state
    (``data-test-script-state`` on ``stApp``) says it is not running. The 'running' indicator
    (``stStatusWidget``) is no such signal: Streamlit shows it only once a run has lasted 500 ms,
    so a run that started less than 500 ms ago (every rerun after a quick click) looked finished,
    and a test read the page in the middle of it (seen in the grid browser test at load ~6-12)."""
    page.wait_for_selector("[data-testid='stApp']", timeout=timeout)
    page.wait_for_function(
        "() => { const a = document.querySelector('[data-testid=\"stApp\"]');"
        " const s = a && a.getAttribute('data-test-script-state');"
        " return (s === 'notRunning' || s === 'compilationError')"
        " && !document.querySelector('[data-testid=\"stStatusWidget\"]'); }",
        timeout=timeout,
        polling=50,
    )


# --------------------------------------------------------------------------- review store
@pytest.fixture
def write_lock() -> Iterator[Callable]:
    """``write_lock(db_path)``: a real second process holds the SQLite write lock of ``db_path``
    until ``tests.store_lock.release(p)`` or the end of the test."""
    from tests.store_lock import hold_write_lock, release

    procs: list = []

    def hold(db: Path):  # type: ignore[no-untyped-def]
        p = hold_write_lock(db)
        procs.append(p)
        return p

    yield hold
    for p in procs:
        release(p)


_MD_ESCAPED = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|<>~$:])")


def shown_text(value: object) -> str:
    """An alert's text as the reader sees it: the app backslash-escapes Markdown in untrusted text
    (components.text.md_escape), which AppTest reports verbatim."""
    return _MD_ESCAPED.sub(r"\1", str(value))


# The review store on both databases (used by the store, batch and team tests).
TEST_PG_URL = os.environ.get("LABELAUDIT_TEST_PG_URL")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request, tmp_path) -> str:
    """A review-store URL: SQLite in tmp_path, and PostgreSQL when make test started one."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'review.sqlite'}"
    if not TEST_PG_URL:
        pytest.skip("LABELAUDIT_TEST_PG_URL is not set (make test starts a PostgreSQL and sets it)")
    return TEST_PG_URL


@pytest.fixture
def store(db_url):
    """A :class:`ReviewStore` on ``db_url``, closed afterwards."""
    from labelaudit.review.store import ReviewStore

    s = ReviewStore(db_url)
    yield s
    s.close()
