"""Page script runs on a stored scan: seconds each page's script takes, without a browser.

    .venv/bin/python -m bench.bench_page_scripts --workspace /tmp/labelaudit_bench_scale/pages_ws_N
    .venv/bin/python -m bench.bench_page_scripts --workspace W --app-root /path/to/older/checkout
    python -m bench.bench_page_scripts --workspace W --pages review --reviewer ana --read-scan

What a page view costs on the server, apart from the browser's own start and drawing (those are in
bench/bench_pages_scale.py and bench/bench_page_views.py): each page of ``--pages`` is run with
Streamlit's ``AppTest`` in a fresh Python process on the workspace's stored dataset and scan, once
*cold* (the process's first view: it reads the stored scan into Streamlit's caches) and then
``--repeats`` times *warm* (a new session each time, as a new browser tab, the caches loaded). The
run fails if a page raises or shows an exception, and reports whether any workspace file changed
(a view must not compute or store anything).

``--reviewer``: each session signed in under that name (the Review page then draws its card and,
for a lead, the bulk and export panels). ``--read-scan``: afterwards, in a fresh process, the parts
of reading the stored scan timed one by one (the ``scan_meta`` JSON's load and its details'
decoding, the scan table's Parquet).

``--app-root``: the checkout whose ``app.py``, ``components/``, ``views/`` and ``labelaudit/`` are
timed (default this one), so an older commit is measured in the same run as this one
(``git worktree add /tmp/old <commit>``): the ratio is the figure. Results are appended to
``--json`` (default bench/results/page_scripts.json), one record per run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import textwrap
from pathlib import Path

from bench.bench_pages_scale import snapshot  # the files a view must not change

ROOT = Path(__file__).resolve().parents[1]
PAGES = ("explore", "label_issues", "review")

#: Run in the child, with the app root first on sys.path and as the working directory.
CHILD = textwrap.dedent(
    """
    import json, sys, time
    from streamlit.testing.v1 import AppTest
    from labelaudit.workspace import Workspace

    root, workspace, page, repeats = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    reviewer = sys.argv[5]
    ws = Workspace(workspace)
    datasets = list(ws.datasets())
    if len(datasets) != 1:
        raise SystemExit(f"{workspace}: expected one stored dataset, found {len(datasets)}")
    runs = []
    for i in range(1 + repeats):
        at = AppTest.from_file(f"{root}/views/{page}.py", default_timeout=900)
        at.session_state["workspace"] = str(ws.root)
        at.session_state["dataset_hash"] = datasets[0]
        if reviewer:  # signed in: the Review page draws its card (and the lead's panels)
            at.session_state["reviewer"] = reviewer
        t = time.perf_counter()
        at.run()
        seconds = time.perf_counter() - t
        problems = [str(e.value)[:300] for e in at.exception]
        problems += [e.value[:300] for e in at.error]
        runs.append({"seconds": round(seconds, 3), "problems": problems})
    print(json.dumps(runs))
    """
)

#: ``--read-scan``, in the child: the parts of reading the stored scan, each timed once, in order,
#: in a fresh process (the files in the page cache: run it after a page run).
READ_SCAN = textwrap.dedent(
    """
    import glob, json, sys, time
    t0 = time.perf_counter()
    import pandas as pd
    from labelaudit import typed_json
    from labelaudit.detectors import registry
    import labelaudit.scanning
    registry.all_detectors()
    out = {"imports_seconds": time.perf_counter() - t0}
    art = sys.argv[1] + "/artifacts"
    (meta,) = glob.glob(art + "/*/scan_meta-*.json")
    (table,) = glob.glob(art + "/*/scan_table-*.parquet")
    def timed(name, fn):
        t = time.perf_counter()
        value = fn()
        out[name] = time.perf_counter() - t
        return value
    d = timed("scan_meta_json_load_seconds", lambda: json.load(open(meta)))
    timed("details_decode_seconds", lambda: typed_json.decode(d["detection_details"]))
    timed("scan_table_parquet_seconds", lambda: pd.read_parquet(table))
    import os
    out["scan_meta_mb"] = os.path.getsize(meta) / 1e6
    print(json.dumps({k: round(v, 3) for k, v in out.items()}))
    """
)


def read_scan(app_root: Path, workspace: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(app_root), HF_HUB_OFFLINE="1")
    proc = subprocess.run(
        [sys.executable, "-c", READ_SCAN, str(workspace)],
        cwd=str(app_root),
        env=env,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise SystemExit(
            f"--read-scan at {app_root}: exit {proc.returncode}\n{proc.stderr[-3000:]}"
        )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def git_commit(root: Path) -> str:
    try:
        return subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def time_page(app_root: Path, workspace: Path, page: str, repeats: int, reviewer: str = "") -> dict:
    env = dict(os.environ, PYTHONPATH=str(app_root), HF_HUB_OFFLINE="1", LABELAUDIT_WARM_CACHES="0")
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(app_root), str(workspace), page, str(repeats), reviewer],
        cwd=str(app_root),
        env=env,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise SystemExit(f"{page} at {app_root}: exit {proc.returncode}\n{proc.stderr[-3000:]}")
    runs = json.loads(proc.stdout.strip().splitlines()[-1])
    problems = [p for r in runs for p in r["problems"]]
    if problems:
        raise SystemExit(f"{page} at {app_root} showed: {problems[:3]}")
    return {
        "cold_seconds": runs[0]["seconds"],
        "warm_seconds": [r["seconds"] for r in runs[1:]],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workspace", required=True, help="a workspace holding one scanned dataset")
    ap.add_argument("--app-root", default=str(ROOT))
    ap.add_argument("--pages", nargs="+", default=list(PAGES), choices=PAGES)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--reviewer", default="", help="signed in as this name (Review: the card)")
    ap.add_argument(
        "--read-scan", action="store_true", help="also time the parts of reading the stored scan"
    )
    ap.add_argument("--json", default=str(ROOT / "bench" / "results" / "page_scripts.json"))
    args = ap.parse_args(argv)
    workspace, app_root = Path(args.workspace).resolve(), Path(args.app_root).resolve()
    before = snapshot(workspace)
    record: dict = {
        "started": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join(["python -m bench.bench_page_scripts", *sys.argv[1:]]),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "load_before": round(os.getloadavg()[0], 1),
        "workspace": str(workspace),
        "app_root": str(app_root),
        "commit": git_commit(app_root),
        "reviewer": args.reviewer or None,
        "pages": {},
    }
    for page in args.pages:
        record["pages"][page] = time_page(app_root, workspace, page, args.repeats, args.reviewer)
        print(page, record["pages"][page], flush=True)
    if args.read_scan:
        record["read_scan"] = read_scan(app_root, workspace)
        print("read_scan", record["read_scan"], flush=True)
    record["load_after"] = round(os.getloadavg()[0], 1)
    changed = sorted(k for k, v in snapshot(workspace).items() if before.get(k) != v)
    record["workspace_files_changed"] = changed
    path = Path(args.json)
    runs = json.loads(path.read_text()) if path.exists() else []
    runs.append(record)
    path.write_text(json.dumps(runs, indent=1) + "\n")
    print(json.dumps(record))
    return 1 if changed else 0


if __name__ == "__main__":
    raise SystemExit(main())
