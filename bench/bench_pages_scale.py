"""Pages at scale (issue 14): Explore, Label issues and Review in a real Chromium on a stored scan
of N rows, against the same pages on a stored scan of 10k rows, in one run.

    .venv/bin/python -m bench.bench_pages_scale --sizes 10000 1000000 --port-base 8630

Data: the scale benchmark's synthetic rows (bench/bench_scale.py: 50 Gaussian classes in 384-d, 5 %
nearest-class flips, out-of-sample probabilities), given to the dataset as its embeddings and
probabilities, with short plain texts. For each size the workspace (``--data``/pages_ws_N) is
scanned once with the app's own scan options (``APP_SCAN_OPTIONS``: the scan the app looks for)
unless it already holds that scan; a later run reuses it.

The app (``streamlit run app.py``, the workspace and dataset given as ``labelaudit app`` gives them,
background scans left on) is opened in headless Chromium, each page twice in a fresh browser context
(``cold``: the server's first read of the stored scan; ``warm``: the cached one). Per view:

- time to a usable page: from ``page.goto`` until the script run is over (the app's run state), no
  element is a loading skeleton, and the page's working element is drawn and visible (``READY_JS``;
  Explore: the map and "Rows in view"; Label issues: the matrix and the ranked table; Review: after
  giving a name, the card's decision buttons, and separately the seconds from "Start reviewing" to
  the card);
- the review queue's build (``build_queue`` on the stored scan, as the Review page builds it), timed
  in this process;
- bytes the browser received over the Streamlit websocket during the view (all frames: what a
  table or a Vega-Lite chart holds arrives as Arrow bytes in them);
- the most rows any table element holds (``aria-rowcount`` of the data grids) and the points on
  the Plotly plots (trace lengths, ``_fullData[i]._length``; Vega-Lite marks are not counted):
  what reached the browser;
- that no page view recomputed: the workspace's files (datasets, artifacts, jobs; not the review
  store and logs) are listed with size and mtime before the server starts and after the last view,
  and must be the same.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bench.bench_review_ui import CHROMIUM, CHROMIUM_ARGS, Server, _wait_idle
from bench.bench_scale import CLASSES, load

ROOT = Path(__file__).resolve().parents[1]
COMMAND = ".venv/bin/python -m bench.bench_pages_scale"
PAGES = ("explore", "label_issues", "review")
#: Rows in the largest table element and points on the plots, read in the browser.
GRID_ROWS_JS = """() => Math.max(0, ...Array.from(
  document.querySelectorAll('[data-testid="stDataFrame"] [aria-rowcount]'),
  e => Number(e.getAttribute('aria-rowcount')) || 0))"""
PLOT_POINTS_JS = """() => Array.from(document.querySelectorAll('.js-plotly-plot')).reduce(
  (s, p) => s + (p._fullData || []).reduce((t, tr) => t + (tr._length || 0), 0), 0)"""
#: Not scan artifacts: written by reviewing and by the server itself.
NOT_ARTIFACTS = ("review.sqlite", "streamlit", ".log")
#: A page is usable when the script run is over by the app's own run state (as tests/conftest.py's
#: ``wait_for_app``: the running indicator shows only once a run has lasted 500 ms), no element is
#: still a loading skeleton, and what the page is for is drawn and visible: a chart (Plotly or
#: Vega-Lite: Explore's map and Label issues' matrix open as Vega-Lite since main c22494c) with its
#: canvas or SVG, and on Label issues a data grid with its canvas. Visible matters: Label issues
#: also holds a Vega-Lite chart inside a closed expander, the first chart in document order, and
#: waiting for that one to be visible hung the bench (> 4 min at 10k rows, 10:19 UTC).
READY_JS = """(want) => {
  const app = document.querySelector('[data-testid="stApp"]');
  const s = app && app.getAttribute('data-test-script-state');
  if (!(s === 'notRunning' || s === 'compilationError')) return false;
  if (document.querySelector('[data-testid="stStatusWidget"], [data-testid="stSkeleton"]'))
    return false;
  const shown = (e) => { const r = e.getBoundingClientRect(); return r.width > 0 && r.height > 0; };
  const drawn = (sel, inner) => Array.from(document.querySelectorAll(sel)).some(
    (e) => shown(e) && Array.from(e.querySelectorAll(inner)).some(shown));
  const chart = drawn('[data-testid="stVegaLiteChart"]', 'canvas, svg')
    || drawn('[data-testid="stPlotlyChart"]', '.main-svg');
  const grid = drawn('[data-testid="stDataFrame"]', '[data-testid="data-grid-canvas"], canvas');
  const text = document.querySelector('[data-testid="stMain"]')?.innerText || '';
  if (want === 'explore') return chart && text.includes('Rows in view');
  if (want === 'label_issues') return chart && grid;
  return true;
}"""


def dataset(folder: Path, n: int):
    """The scale data as a labelaudit Dataset (embeddings and probabilities given)."""
    from labelaudit.io import load_dataset

    emb, noisy, _, probs = load(folder, n)
    classes = np.asarray([f"topic_{c:02d}" for c in range(CLASSES)], dtype=object)
    frame = pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(n)],
            "text": [f"message {i} about {classes[c]}" for i, c in enumerate(noisy)],
            "label": classes[noisy],
        }
    )
    return load_dataset(frame, embeddings=np.asarray(emb), probs=probs)


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``root`` but the review store and logs: (size, mtime_ns)."""
    out = {}
    for p in root.rglob("*"):
        rel = str(p.relative_to(root))
        if p.is_file() and not any(s in rel for s in NOT_ARTIFACTS):
            st = p.stat()
            out[rel] = (st.st_size, st.st_mtime_ns)
    return out


def stored_workspace(folder: Path, n: int) -> tuple[Path, str, dict]:
    """The workspace holding the app's scan of the N-row data (scanned here when missing)."""
    from labelaudit.commands.app import APP_SCAN_OPTIONS
    from labelaudit.scanning import load_cached_scan, scan
    from labelaudit.workspace import Workspace

    ws = Workspace(folder / f"pages_ws_{n}")
    t = time.perf_counter()
    ds = dataset(folder, n)
    h = ws.save_dataset(ds)
    info: dict = {"dataset_seconds": round(time.perf_counter() - t, 1)}
    res = load_cached_scan(ds, workspace=ws, **APP_SCAN_OPTIONS)
    if res is None:
        t, c = time.perf_counter(), time.process_time()
        res = scan(ds, workspace=ws, **APP_SCAN_OPTIONS)
        info["scan_seconds"] = round(time.perf_counter() - t, 1)
        info["scan_cpu_seconds"] = round(time.process_time() - c, 1)
        info["scan_steps"] = {k: round(v, 1) for k, v in res.timings.items()}
        info["scan_load_after"] = round(os.getloadavg()[0], 1)
    else:
        info["scan"] = "stored (an earlier run)"
    info["queue_build_seconds"] = queue_build_seconds(ds, res)
    return ws.root, h, info


def queue_build_seconds(ds, res, repeats: int = 3) -> list[float]:
    """Seconds to build the review queue from the stored scan, as the Review page builds it
    (``components.review.queue_order``: the whole ranking, decided rows included), each repeat."""
    from labelaudit.review.queue import build_queue

    probs = res.detection.pred_probs if res.detection is not None else None
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        q = build_queue(
            ds,
            scan_table=res.table,
            pred_probs=probs if probs is not None else ds.pred_probs,
            include_decided=True,
        )
        out.append(round(time.perf_counter() - t, 3))
        assert len(q) == ds.n, (len(q), ds.n)
    return out


def view(browser, url: str, page_name: str) -> dict:
    """One view of ``page_name`` in a fresh context: seconds to usable, websocket bytes, rows."""
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = ctx.new_page()
    page.set_default_timeout(900_000)
    received = [0, 0]  # bytes, frames

    def on_ws(ws) -> None:
        def frame(payload) -> None:
            received[0] += len(payload)
            received[1] += 1

        ws.on("framereceived", frame)

    page.on("websocket", on_ws)
    t = time.perf_counter()
    page.goto(f"{url}/{page_name}")
    start_to_card = None
    if page_name == "review":
        _wait_idle(page, 900_000)
        page.get_by_label("Your name").fill("bench")
        clicked = time.perf_counter()
        page.get_by_role("button", name="Start reviewing").click()
        page.get_by_role("button", name="Keep given label").wait_for()
        _wait_idle(page, 900_000)
        start_to_card = round(time.perf_counter() - clicked, 2)
    else:
        page.wait_for_function(READY_JS, arg=page_name, timeout=900_000, polling=50)
    seconds = time.perf_counter() - t
    time.sleep(0.5)  # frames still in flight after the script finished
    out = {
        "seconds": round(seconds, 2),
        "start_to_card": start_to_card,
        "ws_bytes": received[0],
        "ws_frames": received[1],
        "table_rows_max": int(page.evaluate(GRID_ROWS_JS)),
        "plot_points": int(page.evaluate(PLOT_POINTS_JS)),
        "exceptions": page.locator("[data-testid='stException']").count(),
    }
    ctx.close()
    return out


def run_size(browser, folder: Path, n: int, port: int | None) -> dict:
    root, h, info = stored_workspace(folder, n)
    before = snapshot(root)
    env = {"LABELAUDIT_WORKSPACE": str(root), "LABELAUDIT_DATASET": h}
    app = Server(ROOT / "serve.py", env, folder / f"pages_app_{n}.log", port)
    views = []
    try:
        for name in PAGES:
            for visit in ("cold", "warm"):
                v = {"page": name, "visit": visit, **view(browser, app.url, name)}
                v["load"] = round(os.getloadavg()[0], 1)
                views.append(v)
                print(json.dumps({"rows": n, **v}), flush=True)
    finally:
        app.stop()
    after = snapshot(root)
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    log = (folder / f"pages_app_{n}.log").read_text(errors="replace")
    return {
        "rows": n,
        **info,
        "views": views,
        "artifacts_changed": changed,
        "scan_started_by_a_view": "Scanning" in log or bool(changed),
    }


def report(runs: list[dict], started: str, load0: float, argv: str) -> list[str]:
    base = {(v["page"], v["visit"]): v for v in runs[0]["views"]}
    lines = [
        "## Pages on a stored scan (Chromium)",
        "",
        f"Command: `{COMMAND} {argv}`",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, Chromium headless (Debian), {started}; load average at the "
        f"start {load0:.1f} (1 min).",
        "",
        f"*ratio*: seconds to usable over the same page and visit at {runs[0]['rows']:,} rows.",
        "",
        "| rows | page | visit | seconds to usable | ratio | websocket bytes | table rows (max) "
        "| Plotly points | Start reviewing to card (s) | exceptions | load (1 min) |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        for v in r["views"]:
            b = base[(v["page"], v["visit"])]
            card = "" if v.get("start_to_card") is None else f"{v['start_to_card']:.2f}"
            lines.append(
                f"| {r['rows']:,} | {v['page']} | {v['visit']} | {v['seconds']:.2f} | "
                f"{v['seconds'] / b['seconds']:.2f} | {v['ws_bytes']:,} | "
                f"{v['table_rows_max']:,} | "
                f"{v['plot_points']:,} | {card} | {v['exceptions']} | {v['load']} |"
            )
    lines.append("")
    for r in runs:
        scan_note = (
            f"scanned in this run in {r['scan_seconds']} s wall / {r['scan_cpu_seconds']} CPU-s "
            f"(steps {r['scan_steps']}, load {r['scan_load_after']})"
            if "scan_seconds" in r
            else r.get("scan", "")
        )
        lines.append(
            f"- {r['rows']:,} rows: {scan_note}; review queue built from the stored scan "
            f"(build_queue, as the Review page builds it) in {r['queue_build_seconds']} s "
            f"(each of 3 repeats); workspace files changed by the page views: "
            f"{r['artifacts_changed'] or 'none'}; a scan started by a view: "
            f"{'yes' if r['scan_started_by_a_view'] else 'no'}."
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000])
    ap.add_argument("--data", default=str(Path(tempfile.gettempdir()) / "labelaudit_bench_scale"))
    ap.add_argument("--port-base", type=int, default=None, help="servers on this port and up")
    ap.add_argument("--json", default=str(ROOT / "bench" / "results" / "scale_pages.json"))
    args = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright

    folder = Path(args.data)
    started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    load0 = os.getloadavg()[0]
    runs = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        for i, n in enumerate(args.sizes):
            port = args.port_base + i if args.port_base else None
            runs.append(run_size(browser, folder, n, port))
            raw = json.loads(Path(args.json).read_text()) if Path(args.json).exists() else {}
            raw[f"pages@{n}"] = {"started": started, **runs[-1]}
            Path(args.json).write_text(json.dumps(raw, indent=1) + "\n")
        browser.close()
    flags = f"--sizes {' '.join(map(str, args.sizes))}" + (
        f" --port-base {args.port_base}" if args.port_base else ""
    )
    print("\n".join(report(runs, started, load0, flags)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
