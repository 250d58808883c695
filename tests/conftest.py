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
    """The real app in a subprocess (``streamlit run serve.py``: app.py as ``labelaudit app``
    serves it) on a free loopback port."""

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
                str(ROOT / "serve.py"),
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


#: Page-side helpers for a Vega-Lite chart drawn by Streamlit. ``view(chart)``: the chart's Vega
#: View, found in the React state of Streamlit's chart component (a ref holding an object with
#: Vega's ``scenegraph``/``origin``/``runAsync``; null while the view is being torn down or
#: rebuilt). ``items(view)``: the marks' items with a datum, in drawing order (the last drawn is on
#: top, and Vega picks it first), with their bounds in the coordinates of the view's element.
_VEGA_JS = r"""
const isView = (v) => v && typeof v.scenegraph === 'function' && typeof v.origin === 'function'
  && typeof v.runAsync === 'function' && typeof v.container === 'function';
const view = (chart) => {
  for (const node of [chart, ...chart.querySelectorAll('*')]) {
    const key = Object.keys(node).find((k) => k.startsWith('__reactFiber$'));
    if (!key) continue;
    for (let f = node[key], up = 0; f && up < 40; f = f.return, up++) {
      for (let h = f.memoizedState, i = 0; h && typeof h === 'object' && 'next' in h && i < 300;
           h = h.next, i++) {
        const s = h.memoizedState;
        if (s && typeof s === 'object' && 'current' in s && isView(s.current)) {
          const v = s.current, c = v.container();
          return c && c.isConnected && chart.contains(c) ? v : null;
        }
      }
    }
    return null;  // the first node with a fiber is the chart's own: its ancestors hold its state
  }
  return null;
};
const items = (v) => {
  const out = [];
  const [ox, oy] = v.origin();
  const walk = (mark, dx, dy) => {
    for (const it of mark.items || []) {
      if (mark.marktype === 'group') {
        for (const m of it.items || []) walk(m, dx + (it.x || 0), dy + (it.y || 0));
      } else if (it.datum && it.bounds && !it.bounds.empty()) {
        const b = it.bounds;
        out.push({datum: it.datum, x1: dx + b.x1, y1: dy + b.y1, x2: dx + b.x2, y2: dy + b.y2,
                  marktype: mark.marktype});
      }
    }
  };
  walk(v.scenegraph().root, ox, oy);
  return out;
};
"""

#: ``({match, quietMs}) => point or false``, polled: the viewport position of a point on the item
#: whose datum has every field of ``match`` (compared as strings), on the chart holding it, once
#: that chart is settled: the app's script is idle, its view exists, and the view and the item's
#: position have not changed for ``quietMs`` (a rerun can tear a chart's view down and build a new
#: one after the script has ended: the view is rebuilt when the chart's width was 0 during the
#: run). The point is the item's centre, or a point near it, that no item drawn later covers.
_VEGA_POINT = (
    "({match, quietMs}) => {"
    + _VEGA_JS
    + r"""
  const app = document.querySelector('[data-testid="stApp"]');
  const idle = app && app.getAttribute('data-test-script-state') === 'notRunning'
    && !document.querySelector('[data-testid="stStatusWidget"]');
  const st = (window.__laVegaSettle = window.__laVegaSettle || {});
  const keyOf = JSON.stringify(match);
  const fits = (d) => Object.entries(match).every(([k, v]) => d[k] !== undefined
    && String(d[k]) === String(v));
  let found = null;
  for (const chart of document.querySelectorAll('[data-testid="stVegaLiteChart"]')) {
    const v = view(chart);
    if (!v) continue;
    const all = items(v);
    if (!all.some((it) => fits(it.datum))) continue;
    found = {v, chart, all};
    break;
  }
  if (!idle || !found) { delete st[keyOf]; return false; }
  const el = found.v.container().querySelector('canvas.marks, svg.marks') || found.v.container();
  let r = el.getBoundingClientRect();
  const all = found.all;
  const exposed = (at) => {  // a point of item ``at`` that no item drawn later covers, or null
    const it = all[at];
    const later = all.slice(at + 1).filter((o) => o.marktype === it.marktype);
    const cx = (it.x1 + it.x2) / 2, cy = (it.y1 + it.y2) / 2;
    const side = Math.min(it.x2 - it.x1, it.y2 - it.y1);
    for (const [fx, fy] of [[0, 0], [0.3, 0], [-0.3, 0], [0, 0.3], [0, -0.3],
                            [0.2, 0.2], [-0.2, 0.2], [0.2, -0.2], [-0.2, -0.2]]) {
      const x = cx + fx * side, y = cy + fy * side;
      if (!later.some((o) => x >= o.x1 && x <= o.x2 && y >= o.y1 && y <= o.y2)) return [x, y];
    }
    return null;
  };
  let at = -1, p = null;
  for (let i = all.length - 1; i >= 0 && !p; i--) {  // the topmost match first
    if (fits(all[i].datum)) { p = exposed(i); at = i; }
  }
  if (!p) { delete st[keyOf]; return {covered: true}; }
  const it = all[at];
  if (r.top + it.y1 < 0 || r.top + it.y2 > window.innerHeight) {
    found.chart.scrollIntoView({block: 'center'});
    r = el.getBoundingClientRect();
  }
  const pos = {x: r.left + p[0], y: r.top + p[1],
               box: {x: r.left + it.x1, y: r.top + it.y1, width: it.x2 - it.x1, height: it.y2 - it.y1}};
  const sig = JSON.stringify(pos);
  const now = performance.now();
  const prev = st[keyOf];
  if (!prev || prev.view !== found.v || prev.sig !== sig) {
    st[keyOf] = {view: found.v, sig, since: now};
    return false;
  }
  return now - prev.since >= quietMs ? pos : false;
}"""
)


def vega_point(page, match: dict, *, quiet_ms: int = 400, timeout: float = 60_000) -> dict:
    """Where to point the mouse at the Vega-Lite item whose datum has ``match``'s fields: ``{x, y,
    box}`` in viewport coordinates (``box``: the item's bounds), read from the chart's Vega view
    once the chart is settled (see :data:`_VEGA_POINT`), never from a DOM element that a rerun may
    replace. Fails when the item is covered by items drawn after it at every point tried."""
    handle = page.wait_for_function(
        _VEGA_POINT, arg={"match": match, "quietMs": quiet_ms}, timeout=timeout, polling=100
    )
    pos = handle.json_value()
    assert not pos.get("covered"), f"the item {match} is covered by others on its chart"
    return pos


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
