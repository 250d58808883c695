"""Benchmark: click-to-next-item on the Review page in a real Chromium, against a bare Streamlit page.

Run: ``.venv/bin/python -m bench.bench_review_ui [--sizes 10000 1000000] [--clicks 20]
[--out bench/results/review_ui.md]``

For each size, a synthetic dataset (N rows, 10 classes, out-of-sample probabilities; no scan, so the
queue follows the model's probabilities) is stored in a throwaway workspace and the real app is
started on it (``streamlit run app.py``, SQLite review store). In headless Chromium the benchmark
opens the Review page, gives a name, then clicks *Keep given label* ``--clicks`` times, timing each
click until the card shows the next item's id. The peer, in the same run and browser: a Streamlit
page holding one ``st.button`` and a counter, timed from the click until the counter changes (one
full rerun of the smallest possible page). The goal of issue 18: click-to-next <= 1.5 x the
peer's rerun, and under 1 s on a quiet machine, at 10k and at 1M rows.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
COMMAND = ".venv/bin/python -m bench.bench_review_ui"
CHROMIUM = os.environ.get("LABELAUDIT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
#: Not passed to the servers: the review store is the workspace's SQLite file.
DROP_ENV = ("LABELAUDIT_DB_URL", "LABELAUDIT_LEADS")
BARE_PAGE = """
import streamlit as st
st.session_state.setdefault("n", 0)
if st.button("Click"):
    st.session_state["n"] += 1
st.text(f"clicks: {st.session_state['n']}")
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``streamlit run SCRIPT`` on a free loopback port; stopped by :meth:`stop` (process group)."""

    def __init__(self, script: Path, env: dict[str, str], log: Path):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = open(log, "w")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                str(script),
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
            ],
            cwd=ROOT,
            env={**{k: v for k, v in os.environ.items() if k not in DROP_ENV}, **env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"streamlit exited early; see {log}")
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2):
                    return
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"streamlit did not start; see {log}")

    def stop(self) -> None:
        import signal

        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self._log.close()


def synthetic(n: int, k: int = 10, seed: int = 0):
    from labelaudit.io import load_dataset

    rng = np.random.default_rng(seed)
    classes = [f"class_{j}" for j in range(k)]
    labels = rng.integers(0, k, size=n)
    df = pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(n)],
            "text": [
                f"customer message number {i} about {classes[j]}" for i, j in enumerate(labels)
            ],
            "label": np.asarray(classes, dtype=object)[labels],
        }
    )
    probs = rng.dirichlet(np.ones(k), size=n)
    return load_dataset(df, probs=probs)


def _wait_idle(page, timeout: float = 300_000) -> None:
    page.wait_for_selector("[data-testid='stApp']", timeout=timeout)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=timeout
    )


ITEM_JS = """() => { const m = document.body.innerText.match(/Item (\\S+) · given label/);
  return m ? m[1] : null; }"""


def time_review(page, url: str, clicks: int) -> list[float]:
    page.goto(url + "/review")
    _wait_idle(page)
    page.get_by_label("Your name").fill("bench")
    page.get_by_role("button", name="Start reviewing").click()
    page.get_by_role("button", name="Keep given label").wait_for(timeout=600_000)
    _wait_idle(page)
    out = []
    for _ in range(clicks):
        before = page.evaluate(ITEM_JS)
        t = time.perf_counter()
        page.get_by_role("button", name="Keep given label").click()
        page.wait_for_function(
            f"() => {{ const f = {ITEM_JS}; const v = f(); return v && v !== {before!r}; }}",
            timeout=120_000,
        )
        out.append(time.perf_counter() - t)
        _wait_idle(page)
    return out


def time_bare(page, url: str, clicks: int) -> list[float]:
    page.goto(url)
    _wait_idle(page)
    page.get_by_text("clicks: 0").wait_for()
    out = []
    for i in range(clicks):
        t = time.perf_counter()
        page.get_by_role("button", name="Click").click()
        page.get_by_text(f"clicks: {i + 1}", exact=True).wait_for()
        out.append(time.perf_counter() - t)
        _wait_idle(page)
    return out


def _stats(xs: list[float]) -> tuple[float, float]:
    a = np.asarray(xs[2:] if len(xs) > 4 else xs)  # the first clicks warm caches up
    return float(np.median(a)), float(np.percentile(a, 90))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000])
    ap.add_argument("--clicks", type=int, default=20)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "review_ui.md"))
    args = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright

    from labelaudit.workspace import Workspace

    rows = []
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        bare_script = Path(tmp) / "bare_button.py"
        bare_script.write_text(BARE_PAGE, encoding="utf-8")
        for n in args.sizes:
            ws = Workspace(Path(tmp) / f"ws{n}")
            t = time.perf_counter()
            h = ws.save_dataset(synthetic(n))
            print(f"{n:,} rows stored in {time.perf_counter() - t:.1f} s", flush=True)
            env = {"LABELAUDIT_WORKSPACE": str(ws.root), "LABELAUDIT_DATASET": h}
            app = Server(ROOT / "app.py", env, Path(tmp) / f"app{n}.log")
            bare = Server(bare_script, {}, Path(tmp) / f"bare{n}.log")
            try:
                ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
                page = ctx.new_page()
                page.set_default_timeout(120_000)
                review = time_review(page, app.url, args.clicks)
                peer = time_bare(page, bare.url, args.clicks)
                ctx.close()
            finally:
                app.stop()
                bare.stop()
            rm, r90 = _stats(review)
            pm, p90 = _stats(peer)
            rows.append((n, rm, r90, pm, p90, rm / pm, os.getloadavg()[0]))
            print(
                f"{n:,} rows: click-to-next median {rm * 1000:.0f} ms (p90 {r90 * 1000:.0f}); bare "
                f"button rerun median {pm * 1000:.0f} ms (p90 {p90 * 1000:.0f}); ratio {rm / pm:.2f}",
                flush=True,
            )
        browser.close()
    lines = [
        "# Review page: click to next item (issue 18)",
        "",
        f"Command: `{COMMAND} --sizes {' '.join(map(str, args.sizes))} --clicks {args.clicks}`",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"Chromium headless (Debian), {dt.date.today().isoformat()}; load average at the start "
        f"{load_before[0]:.1f} (1 min).",
        "",
        "Each click on *Keep given label* is timed until the card shows the next item's id (SQLite "
        "review store in the workspace; queue from the model's probabilities). Peer, same run and "
        "browser: a Streamlit page with one `st.button` and a counter, timed until the counter "
        f"changes. Medians and 90th percentiles over {args.clicks} clicks (the first two left out: "
        "caches warming up). Goal: ratio <= 1.5, and under 1 s on a quiet machine.",
        "",
        "| rows | click-to-next, median | p90 | bare button rerun, median | p90 | ratio | load (1 min) after |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n, rm, r90, pm, p90, ratio, load in rows:
        lines.append(
            f"| {n:,} | {rm * 1000:.0f} ms | {r90 * 1000:.0f} ms | {pm * 1000:.0f} ms | "
            f"{p90 * 1000:.0f} ms | {ratio:.2f} | {load:.1f} |"
        )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
