"""The ``annotations`` companion: labels from several people, long format.

Columns ``item_id`` (an id of the dataset), ``annotator_id``, ``label`` (a class of the dataset)
and optionally ``timestamp`` (read as UTC). Common other names (``worker``, ``rater``, ``task``,
…) are accepted for the first two.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from labelaudit.dataset import Dataset
from labelaudit.errors import Report
from labelaudit.io.checks import check_table
from labelaudit.io.companions import register_companion
from labelaudit.io.rows import rows_of, rows_text, scalar_str
from labelaudit.io.tables import read_table

REQUIRED = ["item_id", "annotator_id", "label"]
#: Other names for the required columns (lower case) -> the canonical name.
ALIASES = {
    "item": "item_id",
    "task": "item_id",
    "id": "item_id",
    "annotator": "annotator_id",
    "worker": "annotator_id",
    "worker_id": "annotator_id",
    "rater": "annotator_id",
    "rater_id": "annotator_id",
}


def read_annotations(
    ann: str | Path | pd.DataFrame, ds: Dataset, rep: Report
) -> pd.DataFrame | None:
    """The annotations as ``item_id, annotator_id, label[, timestamp]`` strings (UTC timestamps),
    one rating per (item, annotator) (:func:`collapse_repeats`); None with errors in ``rep`` for
    missing columns, empty values, unknown items or labels."""
    if isinstance(ann, pd.DataFrame):
        df, file = ann.copy(), "<annotations>"
        if not check_table(df, file, rep):
            return None
        df.columns = [str(c).strip() for c in df.columns]
    else:
        df, file = read_table(ann, what="annotations"), Path(ann).name
    df = df.rename(
        columns={
            c: ALIASES[c.lower()]
            for c in df.columns
            if c.lower() in ALIASES and ALIASES[c.lower()] not in df.columns
        }
    )
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        rep.error(
            f"missing column(s) {missing} among {list(df.columns)}",
            "columns item_id, annotator_id, label[, timestamp]",
            file=file,
        )
        return None
    out = pd.DataFrame(
        {c: df[c].map(lambda v: "" if pd.isna(v) else scalar_str(v)).str.strip() for c in REQUIRED}
    )
    if "timestamp" in df.columns:
        ts = pd.to_datetime(df["timestamp"], errors="coerce", utc=True)
        bad = ts.isna() & df["timestamp"].notna() & (df["timestamp"].astype(str).str.strip() != "")
        if bad.any():
            rows = rows_of(bad)
            rep.error(
                f"unreadable timestamps in {rows_text(rows)}, e.g. "
                f"{df['timestamp'][bad].iloc[0]!r}",
                "ISO 8601 times such as 2024-05-01T12:00:00Z",
                file=file,
                column="timestamp",
            )
        out["timestamp"] = ts
    for c in REQUIRED:
        blank = out[c] == ""
        if blank.any():
            rows = rows_of(blank)
            rep.error(
                f"{len(rows)} empty value(s) in {rows_text(rows)}",
                f"a {c} in every row",
                file=file,
                column=c,
            )
    _check_known(out, ds, file, rep)
    return collapse_repeats(out, file, rep)


def _check_known(out: pd.DataFrame, ds: Dataset, file: str, rep: Report) -> None:
    unknown_items = ~out["item_id"].isin(ds.id_to_row) & (out["item_id"] != "")
    if unknown_items.any():
        rows = rows_of(unknown_items)
        rep.error(
            f"{len(rows)} row(s) name items that are not in the dataset, "
            f"e.g. '{out['item_id'][unknown_items].iloc[0]}' "
            f"in {rows_text(rows)}",
            "item_id values that are ids of the dataset",
            file=file,
            column="item_id",
            fix="check that the dataset's id column is mapped (--id-col) and matches",
        )
    unknown_labels = ~out["label"].isin(ds.classes) & (out["label"] != "")
    if unknown_labels.any():
        rows = rows_of(unknown_labels)
        vals = sorted(out["label"][unknown_labels].unique().tolist())
        rep.error(
            f"label(s) {vals[:5]} in {rows_text(rows)} are not classes of the dataset",
            f"one of the dataset's {ds.k} classes",
            file=file,
            column="label",
        )


def collapse_repeats(out: pd.DataFrame, file: str, rep: Report) -> pd.DataFrame:
    """One rating per (item, annotator): the latest by timestamp when there is one (ties and missing
    times: the later row in the file), else the last row. A warning names the pairs and the rows
    dropped, since a repeat would otherwise count as a second, independent rating."""
    out = out.reset_index(drop=True)
    pair = ["item_id", "annotator_id"]
    if "timestamp" in out.columns:
        # missing times (NaT) are the smallest int64, so they count as the oldest
        order = np.argsort(out["timestamp"].array.asi8, kind="stable")
    else:
        order = np.arange(len(out))
    ranked = out.iloc[order]
    drop = np.zeros(len(out), dtype=bool)
    drop[order] = ranked.duplicated(subset=pair, keep="last").to_numpy()
    if not drop.any():
        return out
    repeated = out.duplicated(subset=pair, keep=False).to_numpy()
    first = out[repeated].iloc[0]
    example_rows = rows_of(
        (out["item_id"] == first["item_id"]) & (out["annotator_id"] == first["annotator_id"])
    )
    n_pairs = int(out[repeated].drop_duplicates(subset=pair).shape[0])
    kept = "latest by timestamp" if "timestamp" in out.columns else "last in the file"
    rep.warn(
        f"{n_pairs} (item, annotator) pair(s) are rated more than once, e.g. item "
        f"'{first['item_id']}' by '{first['annotator_id']}' in {rows_text(example_rows)}; kept one "
        f"rating per pair (the {kept}) and dropped {int(drop.sum())} row(s): "
        f"{rows_text(rows_of(drop))}",
        "one rating per annotator per item",
        file=file,
        fix="remove the repeats, or keep only each annotator's final label",
    )
    return out[~drop].reset_index(drop=True)


@register_companion(
    "annotations",
    help="labels from several annotators: item_id, annotator_id, label[, timestamp]",
    doc="labels from several people, long format `item_id, annotator_id, label[, timestamp]` "
    "(CSV/Parquet)",
    folder_prefixes=("annotations",),
    upload_label="Annotations: item_id, annotator_id, label[, timestamp]",
    upload_types=("csv", "tsv", "parquet", "pq", "jsonl", "ndjson"),
    stored=(("annotations", "parquet"),),
    order=20,
)
def annotations_companion(source: str | Path | pd.DataFrame, ds: Dataset, rep: Report) -> None:
    ds.annotations = read_annotations(source, ds, rep)
