"""Benchmark the first run (issue 16): the background scan the app starts on its own, on the bundled
sample (or its first ``--rows`` train rows) with an empty workspace.

    .venv/bin/python -m bench.bench_first_run                 # the whole sample (13,083 rows)
    .venv/bin/python -m bench.bench_first_run --rows 2000     # a quicker slice

Measures, as the app runs it (``labelaudit.jobs.start_scan`` in process mode, a process of its own):

- seconds from the start until the first pass is stored (a provisional map on Explore and a
  provisional queue on Label issues; goal: within 60 s) and until the full scan is stored (the
  moment every page fills in);
- the seconds of each step from the job's own status file, and the whole scan against the embedding
  step alone (goal: at most 1.3x);
- the estimate the app showed before the start, against the measured time;
- a page view of the stored results: ``load_cached_scan`` (and ``load_first_pass``) in a new
  process (goal: under 2 s);
- with ``--parts onnx`` (default both): ONNX Runtime against torch for the embedding step
  (:mod:`bench.bench_embed_backends`, ``--onnx-rows`` texts).

Writes bench/results/first_run.md with the command and the load average (``os.getloadavg``) at start
and end next to the figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "first_run.md"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=0, help="first N rows of the sample (0 = all)")
    ap.add_argument("--parts", default="scan,onnx", help="comma-separated: scan, onnx")
    ap.add_argument("--onnx-rows", type=int, default=2000)
    ap.add_argument(
        "--until",
        choices=("full", "first-pass"),
        default="full",
        help="first-pass: stop the job once the first pass is stored (the 60 s goal alone)",
    )
    args = ap.parse_args(argv)
    parts = set(args.parts.split(","))
    lines: list[str] = []
    if "scan" in parts:
        lines += scan_part(args)
    if "onnx" in parts:
        from bench.bench_embed_backends import run

        lines += ([""] if lines else []) + run(args.onnx_rows)[0]
    RESULTS.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


def scan_part(args) -> list[str]:
    os.environ["LABELAUDIT_SCAN_RUNNER"] = "process"
    from labelaudit import jobs
    from labelaudit.io import load_dataset
    from labelaudit.workspace import Workspace

    ds = load_dataset(ROOT / "sample_data" / "banking77")
    if args.rows:
        import numpy as np

        ds = ds.subset(np.arange(ds.n) < args.rows)
    options = {"cluster_method": "hdbscan", "n_clusters": None, "seed": 0}
    load_start = os.getloadavg()
    started_at = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace(Path(tmp) / "ws")
        ws.save_dataset(ds)
        t0 = time.perf_counter()
        first = jobs.start_scan(ws, ds, options)
        assert first is not None
        estimate, source = first.estimate_seconds, first.estimate_source
        first_pass_at = None
        while True:
            st = jobs.read_status(ws, ds, options)
            if first_pass_at is None and st is not None and st.first_pass:
                first_pass_at = time.perf_counter() - t0
                if args.until == "first-pass":
                    os.kill(st.pid, signal.SIGTERM)
                    break
            if st is None or st.state != jobs.RUNNING:
                break
            time.sleep(0.5)
            jobs.reap()
        stored = time.perf_counter() - t0
        partial = args.until == "first-pass"
        if not partial and (st is None or st.state != jobs.COMPLETE):
            raise SystemExit(f"scan did not complete: {st}")
        steps = dict(st.finished)
        code = (
            "import json,time,sys\n"
            "t=time.perf_counter()\n"
            "from labelaudit.workspace import Workspace\n"
            "from labelaudit.scanning import load_cached_scan\n"
            f"ws=Workspace({str(ws.root)!r}); ds=ws.load_dataset({ds.content_hash!r})\n"
            f"r=load_cached_scan(ds, workspace=ws, **{options!r})\n"
            "s=time.perf_counter()-t\n"
            "from labelaudit.first_pass import load_first_pass\n"
            "t=time.perf_counter()\n"
            f"fp=load_first_pass(ws, ds, {options!r})\n"
            "print(json.dumps({'s': s, 'ok': r is not None, 'fp_s': time.perf_counter()-t, 'fp': fp is not None}))\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
        )
        page = json.loads(out.stdout.strip().splitlines()[-1])
    load_end = os.getloadavg()
    embedding = steps.get("embedding", 0.0)
    step_total = sum(steps.values())
    embedding += steps.get("first pass: embedding", 0.0)  # the sample's rows, embedded once
    cmd = (
        "`.venv/bin/python -m bench.bench_first_run --parts scan"
        + (f" --rows {args.rows}" if args.rows else "")
        + (" --until first-pass" if partial else "")
        + "`"
    )
    full_rows = (
        [f"| step: {k} | {v:,.1f} s |" for k, v in steps.items() if k.startswith("first pass")]
        if partial
        else [
            f"| start → full scan stored (every page fills in) | {stored:,.1f} s |",
            *(f"| step: {k} | {v:,.1f} s |" for k, v in steps.items()),
            f"| whole scan / embedding step alone | {step_total / embedding:.2f}x (goal ≤ 1.3x) |",
            f"| page view of the stored scan (`load_cached_scan`, new process, imports included) | {page['s']:.2f} s |",
        ]
    )
    lines = [
        "## First run: the background scan (issue 16)",
        "",
        f"Command: {cmd}; {started_at}; load average {load_start[0]:.1f} at the start and "
        f"{load_end[0]:.1f} at the end (other jobs shared the 2 cores: absolute seconds are upper bounds).",
        f"Dataset: the bundled sample, {ds.n:,} rows, {ds.k} classes; empty workspace; the scan started "
        "by `labelaudit.jobs.start_scan` in a process of its own, as the app starts it.",
        "",
        "| measure | value |",
        "|---|---:|",
        "| start → first pass stored (provisional map and queue; goal ≤ 60 s) | "
        + ("none (dataset too small)" if first_pass_at is None else f"{first_pass_at:,.1f} s")
        + " |",
        *full_rows,
        f"| estimate shown before the start ({source}) | {estimate:,.0f} s |",
        f"| page view of the first pass (`load_first_pass`, after the imports above) | {page['fp_s']:.2f} s |",
        "",
        "Steps are the job's own status file (`<workspace>/jobs/*.json`): a step lasts from its first "
        "progress report to the next step's; the whole scan includes the first pass. The goals of "
        "issue 16 are for a quiet 2-core machine.",
    ]
    return lines


if __name__ == "__main__":
    main()
