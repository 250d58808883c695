"""``labelaudit influence DATA [options] --query ID --out FILE``: training rows ranked by their influence on one row.

Writes ``train_id, text, label, score, rank, direction`` (score > 0: the training row helps the
query, i.e. removing it would raise the query's loss; rank 1 = most helpful) for the ``--top`` most
helpful and most harmful training rows. Training rows are those outside the ``test`` split.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from labelaudit.cli import add_data_options, load_from_args
from labelaudit.csvfile import write_csv
from labelaudit.errors import UsageError

OUT_SUFFIXES = (".csv", ".parquet", ".jsonl")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "influence", help="rank training rows by their influence on one row (helpful and harmful)"
    )
    add_data_options(p)
    p.add_argument("--workspace", help="folder for derived artifacts (default .labelaudit)")
    p.add_argument("--query", required=True, help="id of the row to explain (any split)")
    p.add_argument(
        "--top",
        type=int,
        default=20,
        help="how many most helpful and most harmful rows (default 20)",
    )
    p.add_argument(
        "--method",
        choices=["influence", "tracin"],
        default="influence",
        help="exact influence function of the softmax head (default) or TracIn over its training run",
    )
    p.add_argument(
        "--l2", type=float, default=None, help="L2 strength of the influence model (default 1e-3)"
    )
    p.add_argument("--out", required=True, help="output file: .csv, .parquet or .jsonl")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from labelaudit.influence import DEFAULT_L2, influence_table, query_row, top_both_ways
    from labelaudit.progress import TqdmProgress
    from labelaudit.scanning import get_embeddings
    from labelaudit.workspace import Workspace

    out = Path(args.out)
    if out.suffix.lower() not in OUT_SUFFIXES:
        raise UsageError(
            f"--out {out.name}: unsupported file type; use one of {', '.join(OUT_SUFFIXES)}"
        )
    if args.top < 1:
        raise UsageError(f"--top {args.top}: give a positive number of rows")
    ds = load_from_args(args)
    query_row(ds, args.query)  # fail on a wrong id before any computing
    ws = Workspace(args.workspace)
    bar = TqdmProgress()
    emb = get_embeddings(ds, workspace=ws, progress=bar)
    bar.close()
    table = influence_table(
        ds, emb, args.query, method=args.method, l2=args.l2 or DEFAULT_L2, workspace=ws
    )
    result = top_both_ways(table, args.top)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".csv":
        write_csv(result, out)
    elif out.suffix.lower() == ".parquet":
        result.to_parquet(out, index=False)
    else:
        result.to_json(out, orient="records", lines=True, force_ascii=False)
    print(f"{len(result)} training rows ({args.method}) on query {args.query} -> {out}")
    return 0
