"""Label Studio round trip: push N tasks and pull N decisions against a local server, next to the bare
SDK doing the same HTTP work (import of the same task JSON; download of the same export).

    .venv/bin/python -m bench.bench_labelstudio [--sizes 1000 10000]

Starts a server from the test template (tests/labelstudio_server.py) unless LABEL_STUDIO_URL and
LABEL_STUDIO_API_KEY name one. Annotations are made in one request with Label Studio's
``predictions_to_annotations`` action (each task's suggestion becomes its annotation), so the pull has
N decisions to take. Writes bench/results/labelstudio.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from labelaudit.integrations.labelstudio import LabelStudioConnection, pull_decisions, push_queue
from labelaudit.integrations.labelstudio.sync import build_tasks
from labelaudit.io import load_dataset
from labelaudit.review.store import ReviewStore
from tests.labelstudio_server import server_python, start_from_template

OUT = Path(__file__).resolve().parent / "results" / "labelstudio.md"


def _sdk(url: str, token: str, code: str, payload: str = "") -> tuple[str, float]:
    prelude = (
        "import sys, json, time\nfrom label_studio_sdk import LabelStudio\n"
        "c = LabelStudio(base_url=sys.argv[1], api_key=sys.stdin.readline().strip(), timeout=600)\n"
        "payload = sys.stdin.read()\n"
    )
    t0 = time.perf_counter()
    out = subprocess.run(
        [str(server_python()), "-c", prelude + code, url],
        input=token + "\n" + payload,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout, time.perf_counter() - t0


def dataset(n: int):
    rng = np.random.default_rng(0)
    classes = [f"class_{k}" for k in range(10)]
    df = pd.DataFrame(
        {
            "id": [str(i) for i in range(n)],
            "text": [f"customer message number {i} about {classes[i % 10]}" for i in range(n)],
            "label": [classes[i % 10] for i in range(n)],
        }
    )
    return load_dataset(df, probs=rng.dirichlet(np.ones(10), size=n))


def record_many_by_row(store: ReviewStore, requests: list[dict]) -> list:
    """The row-by-row ``record_many`` of before the bulk write: each decision's own statements
    (:meth:`ReviewStore.append_in`) in one transaction. The "before" of the same run."""
    with store.engine.begin() as conn:
        return [
            store.append_in(conn, store.prepare(**r), r.get("seen_decision_id")) for r in requests
        ]


def run_size(conn: LabelStudioConnection, n: int, *, by_row: bool = True) -> dict:
    ds = dataset(n)
    ws = Path(tempfile.mkdtemp(prefix="bench-ls-"))
    store = ReviewStore(f"sqlite:///{ws / 'review.sqlite'}")
    ids = ds.ids.tolist()
    t0 = time.perf_counter()
    r = push_queue(conn, ds, store, item_ids=ids, workspace=ws, title=f"bench push {n}")
    push_s = time.perf_counter() - t0
    # peer: the bare SDK importing the same task JSON into a fresh project, in the same batches
    tasks = json.dumps(build_tasks(ds, ids))
    cfg = json.dumps(conn.project(r.project)["label_config"])
    _, peer_push_s = _sdk(
        conn.url,
        conn.token,
        f"p = c.projects.create(title='bench peer {n}', label_config={cfg})\n"
        "ts = json.loads(payload)\n"
        "for i in range(0, len(ts), 1000):\n"
        "    c.projects.import_tasks(p.id, request=ts[i:i+1000], return_task_ids=True)\n",
        tasks,
    )
    _, annotate_s = _sdk(
        conn.url,
        conn.token,
        f"c.actions.create(id='predictions_to_annotations', project={r.project}, "
        "selected_items={'all': True, 'excluded': []})\n",
    )
    before_s = None
    if by_row:  # the same pull with the row-by-row write, on a copy of the store and sync state
        ws_row = Path(tempfile.mkdtemp(prefix="bench-ls-row-"))
        shutil.copytree(ws, ws_row, dirs_exist_ok=True)
        row_store = ReviewStore(f"sqlite:///{ws_row / 'review.sqlite'}")
        row_store.record_many = lambda reqs, s=row_store: record_many_by_row(s, reqs)  # type: ignore[method-assign]
        t0 = time.perf_counter()
        pull_decisions(conn, ds, row_store, project=r.project, workspace=ws_row)
        before_s = time.perf_counter() - t0
        row_store.close()
    t0 = time.perf_counter()
    res = pull_decisions(conn, ds, store, project=r.project, workspace=ws)
    pull_s = time.perf_counter() - t0
    _, peer_pull_s = _sdk(
        conn.url,
        conn.token,
        f"raw = b''.join(c.projects.exports.download_sync({r.project}, export_type='JSON'))\n"
        "json.loads(raw)\n",
    )
    store.close()
    return {
        "n": n,
        "push_s": push_s,
        "peer_push_s": peer_push_s,
        "annotate_s": annotate_s,
        "pull_s": pull_s,
        "pull_by_row_s": before_s,
        "peer_pull_s": peer_pull_s,
        "decisions": len(res.saved),
        "load": os.getloadavg()[0],
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument(
        "--no-by-row", action="store_true", help="skip the row-by-row pull (the before figure)"
    )
    args = ap.parse_args()
    server = None
    if os.environ.get("LABEL_STUDIO_URL") and os.environ.get("LABEL_STUDIO_API_KEY"):
        url, token = os.environ["LABEL_STUDIO_URL"], os.environ["LABEL_STUDIO_API_KEY"]
    else:
        server = start_from_template()
        url, token = server.url, server.token
    try:
        conn = LabelStudioConnection(url, token=token, timeout=600, python=str(server_python()))
        version = conn.check()["version"]
        rows = []
        for n in args.sizes:
            rows.append(run_size(conn, n, by_row=not args.no_by_row))
            _write(args.sizes, version, rows)  # each size as soon as it is measured
    finally:
        if server is not None:
            server.stop()


def _write(sizes: list[int], version: str, rows: list[dict]) -> None:
    lines = [
        "# Label Studio round trip: measured figures",
        "",
        "Command: `.venv/bin/python -m bench.bench_labelstudio --sizes "
        + " ".join(map(str, sizes))
        + "` against a local Label Studio "
        + f"{version} (SQLite, `label-studio start` development server on loopback).",
        f"Machine: 2-core x86_64, 24 GiB, no GPU (CPython {platform.python_version()}). Date: "
        + time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        + ". Every figure below comes from that one run.",
        "",
        "*push* = `push_queue`: build the tasks (text, given label, suggestion as a prediction, evidence), "
        "send them through the official SDK in batches of 1,000 (in its own venv, through the bridge), "
        "record what was sent. *peer push* = the bare SDK importing the same task JSON into a new "
        "project in the same batches. *pull* = `pull_decisions`: download the export through the SDK, "
        "parse and check it, plan the decisions with the conflict rules, write them in one transaction "
        "(SQLite) with `record_many`'s bulk write. *pull, row by row* = the same pull on a copy of "
        "the store, writing each decision with its own statements (`append_in`, the record_many of "
        "before), measured first in the same run. *peer pull* = the bare SDK downloading the same export and parsing the JSON. The "
        "annotations were made in one request (`predictions_to_annotations`).",
        "",
        "| tasks | push s | peer push s | push / peer | pull s (decisions) | pull, row by row s | peer pull s | pull / peer | row by row / peer | load average |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['n']:,} | {r['push_s']:.1f} | {r['peer_push_s']:.1f} | {r['push_s'] / r['peer_push_s']:.2f} "
            f"| {r['pull_s']:.1f} ({r['decisions']:,}) | {_opt(r['pull_by_row_s'])} "
            f"| {r['peer_pull_s']:.1f} | {r['pull_s'] / r['peer_pull_s']:.2f} "
            f"| {_opt(r['pull_by_row_s'], r['peer_pull_s'])} "
            f"| {r['load']:.1f} |"
        )
    OUT.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def _opt(x: float | None, per: float | None = None) -> str:
    if x is None:
        return "not run"
    return f"{x / per:.2f}" if per else f"{x:.1f}"


if __name__ == "__main__":
    main()
