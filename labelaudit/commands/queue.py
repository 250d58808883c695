"""``labelaudit queue DATA [options] --out FILE``: the remaining review queue in the order now in force.

The same queue the Review page shows (:func:`labelaudit.review.adaptive.queue_in_force`), so a
script or another labeling tool can work through it: columns ``id``, ``queue_rank`` (1 = next),
``ranking`` (``static`` or ``learnt``), ``label_issue_score`` and ``estimated_precision`` (the
estimated chance that the row's label needs a change; empty where the decisions do not reach that
far down the ranking). Uses the newest stored scan of DATA, or scans it first.
"""

from __future__ import annotations

import argparse
import sys

from labelaudit.cli import add_data_options, check_output_path, load_from_args
from labelaudit.errors import DataError, Problem, UsageError

OUT_SUFFIXES = (".csv", ".parquet")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "queue",
        help="write the remaining review queue (the order in force, learnt from the decisions) as CSV or Parquet",
    )
    add_data_options(p)
    p.add_argument(
        "--workspace", help="workspace folder (default: LABELAUDIT_WORKSPACE or .labelaudit)"
    )
    p.add_argument(
        "--db",
        help="review database URL (default: LABELAUDIT_DB_URL or review.sqlite in the workspace)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the scan (if run) and of the fits")
    p.add_argument(
        "--rerank",
        action="store_true",
        help="refit the ranking on every decision now (else it is refitted every N decisions)",
    )
    p.add_argument(
        "--rerank-every",
        type=int,
        metavar="N",
        help="store the setting: re-rank automatically after every N decisions (default 20)",
    )
    p.add_argument(
        "--audit-share",
        type=float,
        metavar="S",
        help="store the setting: give a share S of the queue to random audit items (e.g. 0.05; 0 = off)",
    )
    p.add_argument(
        "--active-learning",
        action="store_true",
        help="write the queue of multi-annotated items that most need another annotation instead",
    )
    p.add_argument(
        "--by", default="cli", help="name recorded with settings and re-rankings (default: cli)"
    )
    p.add_argument("--out", required=True, help="output file, .csv or .parquet")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from labelaudit.progress import TqdmProgress
    from labelaudit.reporting import find_scan
    from labelaudit.review import adaptive
    from labelaudit.review.export import write_table
    from labelaudit.review.learn import active_learning_scores
    from labelaudit.scanning import scan
    from labelaudit.workspace import Workspace

    out = check_output_path(args.out, "--out", OUT_SUFFIXES)
    if args.rerank_every is not None:
        adaptive.check_setting("rerank_every", args.rerank_every)
    if args.audit_share is not None:
        adaptive.check_setting("audit_share", args.audit_share)
    ds = load_from_args(args)
    ws = Workspace(args.workspace)
    bar = TqdmProgress()
    try:
        res = find_scan(ds, ws)
        if res is None:
            print(f"no stored scan of {ds.source}: scanning it first", file=sys.stderr)
            res = scan(ds, workspace=ws, seed=args.seed, progress=bar)
    finally:
        bar.close()
    details = res.detection.details if res.detection is not None else {}
    if "label_issue_score" not in res.table:
        raise UsageError(
            "the stored scan has no label-issue detection: run `labelaudit scan` again"
        )
    store = ws.review_store(args.db)
    try:
        h = ds.content_hash
        if args.rerank_every is not None:
            adaptive.save_setting(store, h, "rerank_every", args.rerank_every, set_by=args.by)
        if args.audit_share is not None:
            if args.audit_share > 0:
                adaptive.start_audit(
                    store, ds, res.table, share=args.audit_share, created_by=args.by, seed=args.seed
                )
            else:
                adaptive.stop_audit(store, ds, set_by=args.by)
        if args.active_learning:
            if ds.annotations is None:
                raise DataError(
                    Problem(
                        "the dataset has no annotations",
                        "labels from several annotators for the active-learning queue",
                        fix="pass --annotations FILE (item_id, annotator_id, label)",
                    )
                )
            probs = res.detection.pred_probs if res.detection is not None else None
            probs = probs if probs is not None else ds.pred_probs
            if probs is None:
                raise UsageError(
                    "the active-learning queue needs model probabilities: run the scan"
                )
            al = active_learning_scores(ds, probs)
            decided = set(store.current(h)["item_id"].astype(str))
            al = al[~al["id"].isin(decided)].reset_index(drop=True)
            al.insert(1, "queue_rank", range(1, len(al) + 1))
            write_table(
                al[["id", "queue_rank", "active_learning_score", "n_annotations", "n_labels"]], out
            )
            print(
                f"{ds.source} ({h}): {len(al):,} multi-annotated items left -> {out} "
                "(cleanlab ActiveLab, lowest score first)"
            )
            return 0
        q = adaptive.queue_in_force(
            store,
            ds,
            res.table,
            details=details,
            workspace=ws,
            seed=args.seed,
            rerank=args.rerank,
            requested_by=args.by,
        )
        write_table(q.queue[adaptive.CLI_COLUMNS], out)
        print(f"{ds.source} ({h}): {len(q.queue):,} items left of {ds.n:,} -> {out}")
        print(q.describe())
        if q.plan is not None:
            print(
                "Errors left: "
                + adaptive.remaining_errors(q, ds, res.table, seed=args.seed).describe()
            )
    finally:
        store.close()
    return 0
