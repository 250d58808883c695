"""``labelaudit report [--workspace DIR] [--dataset HASH] [--db URL] --out FILE.html``: the ROI report.

One self-contained HTML file (charts inlined, opens offline): decisions, precision of suggestions,
reviewer time, before/after accuracy with bootstrap intervals, the accuracy curve, the projection
and the pinned findings. Uses the stored scan of the dataset (runs it when there is none).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from labelaudit.cli import (
    add_reviewed_dataset_options,
    check_writable_file,
    open_workspace,
    reviewed_dataset_hash,
)
from labelaudit.errors import UsageError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report", help="write the data-ROI report (self-contained HTML) for a reviewed dataset"
    )
    add_reviewed_dataset_options(p)
    p.add_argument(
        "--next",
        type=int,
        default=100,
        dest="next_n",
        help="projection: the next N items to review (default 100)",
    )
    p.add_argument(
        "--seed", type=int, default=0, help="seed of the retraining and the bootstrap (default 0)"
    )
    p.add_argument("--out", required=True, help="output file (.html)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from labelaudit.progress import TqdmProgress
    from labelaudit.reporting import compute_report, find_scan, write_report
    from labelaudit.scanning import scan

    out = Path(args.out)
    if out.suffix.lower() not in (".html", ".htm"):
        raise UsageError(f"--out {args.out}: the report is HTML; use a .html file name")
    if not out.parent.exists():
        raise UsageError(f"--out {args.out}: the folder {out.parent} does not exist")
    check_writable_file(out, "--out")
    if args.next_n < 1:
        raise UsageError("--next must be at least 1")
    ws = open_workspace(
        args.workspace,
        write=True,
        why="the report stores its scan and retraining there so that the next report is fast",
    )
    store = ws.review_store(args.db, read_only=True)
    bar = TqdmProgress()
    try:
        log_all = store.log()
        decided = (
            log_all.groupby("dataset_version")["item_id"].nunique().to_dict()
            if len(log_all)
            else {}
        )
        h = reviewed_dataset_hash(args, ws, decided)
        ds = ws.load_dataset(h)
        res = find_scan(ds, ws)
        if res is None:
            print(f"no stored scan of {h}: scanning it first", file=sys.stderr)
            res = scan(ds, workspace=ws, seed=args.seed, progress=bar)
        details = res.detection.details if res.detection is not None else {}
        learning = None
        if "label_issue_score" in res.table:
            from labelaudit.review.adaptive import learning_summary

            learning = learning_summary(
                store, ds, res.table, details=details, workspace=ws, seed=args.seed
            )
        rep = compute_report(
            ds,
            store.log(h),
            store.findings(h),
            scan_table=res.table,
            details=details,
            embeddings=res.embeddings,
            workspace=ws,
            next_n=args.next_n,
            seed=args.seed,
            progress=bar,
            learning=learning,
        )
    finally:
        bar.close()
        store.close()
    write_report(rep, out)
    s = rep.summary
    print(
        f"{ds.source} ({h}): {s.n_reviewed:,} items reviewed"
        + (" (simulated)" if rep.simulated else "")
        + f"; wrote {out}"
    )
    return 0
