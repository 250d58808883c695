"""``labelaudit export --out FILE``: the reviewed dataset (and the decision log) as CSV or Parquet."""

from __future__ import annotations

import argparse
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
        "export", help="write the reviewed dataset (final labels, decisions) as CSV or Parquet"
    )
    add_reviewed_dataset_options(p)
    p.add_argument(
        "--removed",
        choices=("drop", "flag"),
        default="drop",
        help="removed rows: leave out (default) or keep with removed=True",
    )
    p.add_argument(
        "--log",
        action="store_true",
        help="also write the decision log next to FILE (NAME.decisions.EXT)",
    )
    p.add_argument("--out", required=True, help="output file, .csv or .parquet")
    p.add_argument(
        "--as",
        dest="as_name",
        metavar="NAME",
        help="who exports: needed when the review store is used with roles, and then NAME must "
        "be a lead (LABELAUDIT_LEADS); a dataset reviewed without roles exports for anyone",
    )
    p.set_defaults(func=run)


def pick_dataset(hashes: list[str], wanted: str | None, decided: dict[str, int], root: str) -> str:
    """The dataset to export: ``wanted`` (a hash or unique prefix), else the only one, else the only one
    with decisions; a UsageError that lists the choices otherwise."""
    if wanted:
        matches = [h for h in hashes if h.startswith(wanted)]
        if len(matches) == 1:
            return matches[0]
        raise UsageError(
            f"--dataset {wanted} matches {len(matches)} datasets in {root}; choose one of: "
            + _choices(hashes, decided)
        )
    if not hashes:
        raise UsageError(
            f"no dataset in the workspace {root}; give DATA (as to `labelaudit scan`), "
            "run `labelaudit scan DATA --workspace W` first, or pass --workspace"
        )
    if len(hashes) == 1:
        return hashes[0]
    reviewed = [h for h in hashes if decided.get(h)]
    if len(reviewed) == 1:
        return reviewed[0]
    raise UsageError(
        f"{len(hashes)} datasets in {root}; say which with --dataset HASH: "
        + _choices(hashes, decided)
    )


def _choices(hashes: list[str], decided: dict[str, int]) -> str:
    return ", ".join(f"{h} ({decided.get(h, 0)} decisions)" for h in hashes)


def run(args: argparse.Namespace) -> int:
    from labelaudit.review.export import export_review, exporter, file_format, log_path_for

    file_format(args.out)
    out = Path(args.out)
    check_writable_file(out, "--out")  # a missing folder is created: its nearest parent is checked
    if args.log:
        check_writable_file(log_path_for(out), "--log (the decision log beside --out)")
    ws = open_workspace(args.workspace, write=False)  # export only reads the workspace
    store = ws.review_store(args.db, read_only=True)
    try:
        log = store.log()
        decided = log.groupby("dataset_version")["item_id"].nunique().to_dict() if len(log) else {}
        h = reviewed_dataset_hash(args, ws, decided)
        ds = ws.load_dataset(h)
        who = exporter(args.as_name, store, h) if args.as_name else None
        written = export_review(
            ds, store, out=args.out, removed=args.removed, log=args.log, identity=who
        )
        cur = store.current(h)
        print(
            f"{ds.source} ({h}): {ds.n:,} rows, {len(cur):,} decided "
            f"({int((cur['action'] == 'remove').sum()) if len(cur) else 0:,} removed, {args.removed})"
        )
        for p in written:
            print(f"wrote {p}")
    finally:
        store.close()
    return 0
