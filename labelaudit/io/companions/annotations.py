"""The ``annotations`` companion: labels from several people, long format.

Columns ``item_id`` (an id of the dataset), ``annotator_id``, ``label`` (a class of the dataset)
and optionally ``timestamp`` (read as UTC). Common other names (``worker``, ``rater``, ``task``, …)
are accepted for the first two.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from labelaudit.dataset import Dataset
from labelaudit.errors import Report
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
    """The annotations as ``item_id, annotator_id, label[, timestamp]`` strings (UTC timestamps);
    None with errors in ``rep`` for missing columns, empty values, unknown items or labels."""
    if isinstance(ann, pd.DataFrame):
        df, file = ann.copy(), "<annotations>"
        df.columns = [str(c) for c in df.columns]
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
                f"unreadable timestamps in {rows_text(rows)}, e.g. {df['timestamp'][bad].iloc[0]!r}",
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
    return out


def _check_known(out: pd.DataFrame, ds: Dataset, file: str, rep: Report) -> None:
    unknown_items = ~out["item_id"].isin(ds.id_to_row) & (out["item_id"] != "")
    if unknown_items.any():
        rows = rows_of(unknown_items)
        rep.error(
            f"{len(rows)} row(s) name items that are not in the dataset, e.g. '{out['item_id'][unknown_items].iloc[0]}' "
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
    dup = out.duplicated(subset=["item_id", "annotator_id"], keep=False)
    if dup.any() and "timestamp" not in out.columns:
        rep.warn(
            f"{int(dup.sum())} rows repeat an (item, annotator) pair; each repeat counts as a separate rating",
            "",
            file=file,
        )
