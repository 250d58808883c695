"""Benchmark: click-to-next-item on the Review page in a real Chromium, against a bare Streamlit page.

Run: ``.venv/bin/python -m bench.bench_review_ui [--sizes 10000 1000000] [--clicks 20]
[--out bench/results/review_ui.md] [--profile] [--port-base 8650]``

For each size, a synthetic dataset (N rows, 10 classes, out-of-sample probabilities; no scan, so the
queue follows the model's probabilities) is stored in a throwaway workspace and the real app is
started on it (``streamlit run app.py``, SQLite review store). In headless Chromium the benchmark
opens the Review page, gives a name, then repeats a reviewer's pattern of clicks (Keep given label,
Skip, Undo last: :data:`PATTERN`), timing each click until the card shows another item's id. The
peer, in the same run and browser: a Streamlit page holding one ``st.button`` and a counter, timed
from the click until the counter changes (one full rerun of the smallest possible page). Its click
follows each review click at once, so both see the same load; the report gives the ratio of the
medians and the median of the per-click ratios. The goal of issue 18: click-to-next <= 1.5 x the
peer's rerun, and under 1 s on a quiet machine, at 10k and at 1M rows.

``--profile`` adds a per-click profile per action (medians): on the server, every script run
the click caused (:mod:`bench.review_ui_profile`: wall and CPU time, deltas sent, named steps such
as the store write, the manifest, the live queue), and in the browser the Chrome DevTools
Performance metrics (script, layout, style recalculation, all main-thread tasks) from the click
until the page is idle. ``--port-base P`` puts the servers on ports P and P+1 (a shared machine:
each user their own range) instead of free ports.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
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
if st.button("Click", key="click"):
    st.session_state["n"] += 1
st.text(f"clicks: {st.session_state['n']}")
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``streamlit run SCRIPT`` on a loopback port (a free one unless given); stopped by
    :meth:`stop` (process group)."""

    def __init__(self, script: Path, env: dict[str, str], log: Path, port: int | None = None):
        self.port = port or _free_port()
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
    """Until the script run is over, by the app's own run state: Streamlit shows its running
    indicator only once a run has lasted 500 ms, so its absence said nothing about a click's run,
    and the next click could start while the previous run was still sending or collecting."""
    page.wait_for_selector("[data-testid='stApp']", timeout=timeout)
    page.wait_for_function(
        "() => { const a = document.querySelector('[data-testid=\"stApp\"]');"
        " const s = a && a.getAttribute('data-test-script-state');"
        " return (s === 'notRunning' || s === 'compilationError')"
        " && !document.querySelector('[data-testid=\"stStatusWidget\"]'); }",
        timeout=timeout,
        polling=20,
    )


#: The item id on the card. Reads the textContent of the st.text elements only: body.innerText
#: forces a layout of the whole page on every poll, which cost the measured page itself ~2 s of
#: browser CPU per click (CDP Performance metrics).
ITEM_JS = """() => { for (const e of document.querySelectorAll('[data-testid="stText"]')) {
  const m = e.textContent.match(/^Item (\\S+) · given label/); if (m) return m[1]; }
  return null; }"""


#: What a reviewer does, in a repeating pattern: decisions, a skip, an undo (each changes the item).
PATTERN = ("keep", "keep", "skip", "keep", "undo")
BUTTONS = {"keep": "Keep given label", "skip": "Skip", "undo": "Undo last"}
#: The buttons by their widget keys (Streamlit's ``st-key-<key>`` class): a role locator computes
#: ARIA roles over the whole page on every click, browser work the page itself does not do.
BUTTON_KEYS = {"keep": "review_keep", "skip": "review_skip", "undo": "review_undo"}


def open_review(page, url: str) -> None:
    page.goto(url + "/review")
    _wait_idle(page)
    page.get_by_label("Your name").fill("bench")
    page.get_by_role("button", name="Start reviewing").click()
    page.get_by_role("button", name=BUTTONS["keep"]).wait_for(timeout=600_000)
    _wait_idle(page)


#: Chrome DevTools Performance metrics kept per click (seconds of main-thread time).
CDP_METRICS = ("TaskDuration", "ScriptDuration", "LayoutDuration", "RecalcStyleDuration")


class Probe:
    """What ``--profile`` records around each review click: the wall-clock window (to match the
    server's script runs) and the browser's CDP Performance metrics."""

    def __init__(self, page) -> None:
        self.cdp = page.context.new_cdp_session(page)
        self.cdp.send("Performance.enable")
        self.clicks: list[dict] = []

    def metrics(self) -> dict[str, float]:
        got = self.cdp.send("Performance.getMetrics")["metrics"]
        return {m["name"]: float(m["value"]) for m in got if m["name"] in CDP_METRICS}


def click_review(page, action: str, probe: Probe | None = None) -> float:
    """Seconds from the click on ``action`` until the card shows another item's id."""
    before = page.evaluate(ITEM_JS)
    m0 = probe.metrics() if probe is not None else {}
    w0 = time.time()
    t = time.perf_counter()
    page.locator(f".st-key-{BUTTON_KEYS[action]} button").first.click()
    page.wait_for_function(
        f"() => {{ const f = {ITEM_JS}; const v = f(); return v && v !== {before!r}; }}",
        timeout=120_000,
        polling=20,
    )
    dt = time.perf_counter() - t
    _wait_idle(page)
    if probe is not None:
        m1 = probe.metrics()
        probe.clicks.append(
            dict(
                action=action,
                window=(w0, time.time()),
                browser={k: m1.get(k, 0.0) - m0.get(k, 0.0) for k in CDP_METRICS},
            )
        )
    return dt


def open_bare(page, url: str) -> None:
    page.goto(url)
    _wait_idle(page)
    page.get_by_text("clicks: 0").wait_for()


def click_bare(page, i: int) -> float:
    """Seconds from the click until the counter shows ``i``: one rerun of the smallest page."""
    t = time.perf_counter()
    page.locator(".st-key-click button").click()
    # The same wait as click_review (a function polled every 20 ms): a locator's wait retries on a
    # backoff, which put the bare reruns at ~110 or ~205 ms depending on which retry saw the text.
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=\"stText\"]')]"
        f".some(e => e.textContent === 'clicks: {i}')",
        timeout=120_000,
        polling=20,
    )
    dt = time.perf_counter() - t
    _wait_idle(page)
    return dt


def time_pairs(
    review_page, bare_page, clicks: int, warm: int, probe: Probe | None = None
) -> list[tuple[str, float, float]]:
    """``warm`` + ``clicks`` rounds of one review click (actions from :data:`PATTERN`) followed at
    once by one bare-page click, so both see the same machine load; the warm rounds are dropped."""
    out = []
    for i in range(warm + clicks):
        action = PATTERN[i % len(PATTERN)]
        r = click_review(review_page, action, probe if i >= warm else None)
        b = click_bare(bare_page, i + 1)
        if i >= warm:
            out.append((action, r, b))
    return out


def read_runs(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def profile_rows(n: int, probe: Probe, runs: list[dict]) -> list[dict]:
    """Per action, the medians over its clicks of: the server's script runs started inside the
    click's window (count, wall, CPU, deltas, each named step) and the browser's CDP metrics."""
    per_click = []
    for c in probe.clicks:
        lo, hi = c["window"]
        mine = [r for r in runs if lo <= r["start"] <= hi]
        parts: dict[str, float] = {}
        kinds: dict[str, int] = {}
        for r in mine:
            for k, v in r["parts"].items():
                parts[k] = parts.get(k, 0.0) + v
            for k, v in r.get("delta_types", {}).items():
                kinds[k] = kinds.get(k, 0) + v
        per_click.append(
            dict(
                action=c["action"],
                runs=len(mine),
                fragment_runs=sum(1 for r in mine if r["fragment"]),
                wall=sum(r["wall"] for r in mine),
                cpu=sum(r["cpu"] for r in mine),
                deltas=sum(r["deltas"] for r in mine),
                delta_kb=sum(r["delta_bytes"] for r in mine) / 1024,
                kinds=kinds,
                parts=parts,
                browser=c["browser"],
            )
        )
    out = []
    for action in dict.fromkeys(c["action"] for c in per_click):
        cs = [c for c in per_click if c["action"] == action]
        names = sorted({k for c in cs for k in c["parts"]})
        kinds = sorted({k for c in cs for k in c["kinds"]})
        out.append(
            dict(
                n=n,
                action=action,
                clicks=len(cs),
                runs=_med([c["runs"] for c in cs]),
                fragment_runs=_med([c["fragment_runs"] for c in cs]),
                wall=_med([c["wall"] for c in cs]),
                cpu=_med([c["cpu"] for c in cs]),
                deltas=_med([c["deltas"] for c in cs]),
                delta_kb=_med([c["delta_kb"] for c in cs]),
                kinds={k: _med([c["kinds"].get(k, 0) for c in cs]) for k in kinds},
                parts={k: _med([c["parts"].get(k, 0.0) for c in cs]) for k in names},
                browser={k: _med([c["browser"][k] for c in cs]) for k in CDP_METRICS},
            )
        )
    return out


def profile_lines(rows: list[dict]) -> list[str]:
    lines = [
        "",
        "Per-click profile (`--profile`), medians per action: server = the script runs the click "
        "caused (button callbacks included), browser = Chrome DevTools Performance metrics from "
        "the click until the page is idle.",
        "",
        "| rows | action | clicks | server runs (fragment) | server wall | server CPU | deltas (KiB) "
        "| browser tasks | script | layout | style |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        b = r["browser"]
        lines.append(
            f"| {r['n']:,} | {r['action']} | {r['clicks']} | {r['runs']:.0f} "
            f"({r['fragment_runs']:.0f}) | {r['wall'] * 1000:.0f} ms | {r['cpu'] * 1000:.0f} ms | "
            f"{r['deltas']:.0f} ({r['delta_kb']:.1f}) | {b['TaskDuration'] * 1000:.0f} ms | "
            f"{b['ScriptDuration'] * 1000:.0f} ms | {b['LayoutDuration'] * 1000:.0f} ms | "
            f"{b['RecalcStyleDuration'] * 1000:.0f} ms |"
        )
    lines += [
        "",
        "Named server steps (median ms per click; inclusive, so nested steps overlap):",
        "",
    ]
    names = sorted({k for r in rows for k in r["parts"]})
    lines.append("| rows | action | " + " | ".join(names) + " |")
    lines.append("|---:|---|" + "---:|" * len(names))
    for r in rows:
        cells = " | ".join(f"{r['parts'].get(k, 0.0) * 1000:.1f}" for k in names)
        lines.append(f"| {r['n']:,} | {r['action']} | {cells} |")
    lines += ["", "Deltas the click's runs sent, by what they draw (median per click):", ""]
    kinds = sorted({k for r in rows for k in r["kinds"]})
    lines.append("| rows | action | " + " | ".join(kinds) + " |")
    lines.append("|---:|---|" + "---:|" * len(kinds))
    for r in rows:
        cells = " | ".join(f"{r['kinds'].get(k, 0):.0f}" for k in kinds)
        lines.append(f"| {r['n']:,} | {r['action']} | {cells} |")
    return lines


def _med(xs) -> float:
    return float(np.median(np.asarray(xs, dtype=float)))


def _p90(xs) -> float:
    return float(np.percentile(np.asarray(xs, dtype=float), 90))


def summarise(n: int, pairs: list[tuple[str, float, float]], load: float) -> list[dict]:
    """One row for all clicks, then one per action: medians, p90s, the ratio of the medians and
    the median of the per-click ratios (each review click over the bare click right after it)."""
    rows = []
    groups = [("all", pairs)] + [
        (a, [p for p in pairs if p[0] == a]) for a in dict.fromkeys(PATTERN)
    ]
    for name, ps in groups:
        if not ps:
            continue
        r = [p[1] for p in ps]
        b = [p[2] for p in ps]
        rows.append(
            dict(
                n=n,
                action=name,
                clicks=len(ps),
                review_med=_med(r),
                review_p90=_p90(r),
                bare_med=_med(b),
                bare_p90=_p90(b),
                ratio=_med(r) / _med(b),
                paired=_med([x / y for x, y in zip(r, b, strict=True)]),
                load=load,
            )
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000])
    ap.add_argument("--clicks", type=int, default=20, help="timed rounds per size")
    ap.add_argument("--warm", type=int, default=3, help="untimed rounds first (caches warming up)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "review_ui.md"))
    ap.add_argument("--profile", action="store_true", help="add the per-click profile")
    ap.add_argument("--port-base", type=int, default=None, help="servers on this port and the next")
    args = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright

    from labelaudit.workspace import Workspace

    rows: list[dict] = []
    profiles: list[dict] = []
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
            # No background scan: it would compete for the CPU and redraw the sidebar every 1.5 s.
            env = {
                "LABELAUDIT_WORKSPACE": str(ws.root),
                "LABELAUDIT_DATASET": h,
                "LABELAUDIT_SCAN_RUNNER": "off",
            }
            runs_file = Path(tmp) / f"runs{n}.jsonl"
            if args.profile:
                hook = Path(tmp) / "profile_hook"
                hook.mkdir(exist_ok=True)
                (hook / "sitecustomize.py").write_text("import bench.review_ui_profile\n")
                env["PYTHONPATH"] = os.pathsep.join([str(hook), str(ROOT)])
                env["LABELAUDIT_UI_PROFILE"] = str(runs_file)
            base = args.port_base
            app = Server(ROOT / "serve.py", env, Path(tmp) / f"app{n}.log", base)
            bare = Server(bare_script, {}, Path(tmp) / f"bare{n}.log", base + 1 if base else None)
            try:
                contexts = [
                    browser.new_context(viewport={"width": 1400, "height": 1000}) for _ in range(2)
                ]
                review_page, bare_page = (c.new_page() for c in contexts)
                for p in (review_page, bare_page):
                    p.set_default_timeout(120_000)
                open_review(review_page, app.url)
                open_bare(bare_page, bare.url)
                probe = Probe(review_page) if args.profile else None
                pairs = time_pairs(review_page, bare_page, args.clicks, args.warm, probe)
                if probe is not None:
                    profiles += profile_rows(n, probe, read_runs(runs_file))
                for c in contexts:
                    c.close()
            finally:
                app.stop()
                bare.stop()
            found = summarise(n, pairs, os.getloadavg()[0])
            rows += found
            for r in found:
                print(
                    f"{n:,} rows, {r['action']}: click-to-next median {r['review_med'] * 1000:.0f} ms "
                    f"(p90 {r['review_p90'] * 1000:.0f}); bare rerun median {r['bare_med'] * 1000:.0f} "
                    f"ms (p90 {r['bare_p90'] * 1000:.0f}); ratio {r['ratio']:.2f}, paired {r['paired']:.2f}",
                    flush=True,
                )
        browser.close()
    lines = [
        "# Review page: click to next item (issue 18)",
        "",
        f"Command: `{COMMAND} --sizes {' '.join(map(str, args.sizes))} --clicks {args.clicks}"
        + (" --profile" if args.profile else "")
        + "`",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"Chromium headless (Debian), {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; load average at "
        f"the start {load_before[0]:.1f} (1 min).",
        "",
        "Each round clicks one action on the Review page (pattern "
        + ", ".join(PATTERN)
        + ") and times it until the card shows another item's id (SQLite review store in the "
        "workspace; queue from the model's probabilities); right after it, in the same browser, one "
        "click on a Streamlit page holding one `st.button` and a counter, timed until the counter "
        f"changes (the peer: one rerun of the smallest page). {args.warm} warm-up rounds, then "
        f"{args.clicks} timed. *ratio*: median over median; *paired*: median of each click's ratio "
        "to the bare click right after it (robust to the load changing during the run). Goal: "
        "ratio <= 1.5, and under 1 s on a quiet machine.",
        "",
        "| rows | action | clicks | click-to-next, median | p90 | bare rerun, median | p90 | ratio | paired | load (1 min) after |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['n']:,} | {r['action']} | {r['clicks']} | {r['review_med'] * 1000:.0f} ms | "
            f"{r['review_p90'] * 1000:.0f} ms | {r['bare_med'] * 1000:.0f} ms | "
            f"{r['bare_p90'] * 1000:.0f} ms | {r['ratio']:.2f} | {r['paired']:.2f} | {r['load']:.1f} |"
        )
    if profiles:
        lines += profile_lines(profiles)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
