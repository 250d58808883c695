"""``labelaudit agreement ANNOTATIONS [--method mv|ds|mace] --out ITEMS [--annotators-out FILE]``.

Prints the agreement statistics and writes the per-item consensus table (and optionally the
per-annotator table), CSV or Parquet by extension. Standalone: labels are free strings and the
classes are the sorted unique labels. Exit 0 ok, 1 invalid annotations, 2 bad usage.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from labelaudit.cli import check_output_path
from labelaudit.csvfile import write_csv
from labelaudit.errors import DataError, Problem, UsageError

ITEM_COLUMNS = ["item_id", "consensus_label", "consensus_confidence", "n_ratings", "agreement"]
ANNOTATOR_COLUMNS = ["annotator_id", "competence", "n_labels", "agreement"]
OUT_SUFFIXES = (".csv", ".parquet")


def register(sub: argparse._SubParsersAction) -> None:
    from labelaudit.agreement.methods import all_truth_methods

    p = sub.add_parser(
        "agreement", help="rater agreement and consensus labels from several annotators' labels"
    )
    p.add_argument(
        "annotations",
        help="long-format table: item_id, annotator_id, label[, timestamp] (CSV/TSV/Parquet/JSONL)",
    )
    p.add_argument(
        "--method",
        choices=[n for n, m in all_truth_methods().items() if not m.needs_probs],
        default="auto",
        help="consensus: auto (default: majority vote, Dawid–Skene or MACE, whichever the held-out "
        "ratings support best; the output says which and why), or one method",
    )
    p.add_argument(
        "--tie-break",
        choices=["random", "rarer"],
        default="random",
        help="majority-vote ties: random (seeded) or the rarer class (default random)",
    )
    p.add_argument(
        "--seed", type=int, default=0, help="random seed for ties and MACE restarts (default 0)"
    )
    p.add_argument(
        "--min-overlap",
        type=int,
        default=10,
        help="items two annotators must share for Cohen's kappa (default 10)",
    )
    p.add_argument("--encoding", help="text encoding of the annotations file (default UTF-8)")
    p.add_argument(
        "--out",
        required=True,
        help="per-item table: item_id, consensus_label, consensus_confidence, "
        "n_ratings, agreement (.csv or .parquet)",
    )
    p.add_argument(
        "--annotators-out",
        help="per-annotator table: annotator_id, competence, n_labels, agreement",
    )
    p.set_defaults(func=run)


def _check_out(path: str, flag: str) -> Path:
    return check_output_path(path, flag, OUT_SUFFIXES)


def _write(df: pd.DataFrame, p: Path) -> None:
    if p.suffix.lower() == ".parquet":
        df.to_parquet(p, index=False)
    else:
        write_csv(df, p)


def run(args: argparse.Namespace) -> int:
    from labelaudit.agreement import Ratings, analyse_annotations
    from labelaudit.io import read_table
    from labelaudit.progress import TqdmProgress

    out = _check_out(args.out, "--out")
    ann_out = _check_out(args.annotators_out, "--annotators-out") if args.annotators_out else None
    if args.min_overlap < 1:
        raise UsageError("--min-overlap must be at least 1")
    table = read_table(args.annotations, encoding=args.encoding, what="annotations")
    ratings = Ratings.from_frame(table, file=Path(args.annotations).name)
    if ratings.k < 2:
        raise DataError(
            Problem(
                f"every rating is the label '{ratings.classes[0]}'",
                "at least two different labels",
                file=Path(args.annotations).name,
                column="label",
            )
        )
    progress = TqdmProgress()
    report = analyse_annotations(
        ratings,
        method=args.method,
        seed=args.seed,
        tie_break=args.tie_break,
        min_overlap=args.min_overlap,
        progress=progress,
    )
    progress.close()
    print("\n".join(report.summary_lines()))
    _write(report.items[ITEM_COLUMNS], out)
    print(f"wrote {len(report.items):,} items to {out}")
    if ann_out:
        _write(
            report.annotators[ANNOTATOR_COLUMNS + ["agreement_with_consensus", "likely_spammer"]],
            ann_out,
        )
        print(f"wrote {len(report.annotators):,} annotators to {ann_out}")
    return 0
