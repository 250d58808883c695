"""Export the reviewed dataset and the decision log, as CSV or Parquet.

The cleaned dataset has one row per original row (removed rows dropped, or kept and flagged), with
``id``, ``text``, ``final_label``, ``original_label``, ``action`` (empty when undecided),
``reviewer``, ``decided_at`` (ISO 8601 UTC), ``split`` and the source's metadata columns. Load it
back with ``--label-col final_label``.

CSV files come from the one writer, :mod:`labelaudit.csvfile`: they read back to the same values
(quoted CR/LF), and cells a spreadsheet would run as a formula get a leading apostrophe that
:func:`labelaudit.csvfile.restore_formulas` removes again; Parquet keeps the values unchanged (it
is typed data, never evaluated).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Literal

import pandas as pd

from labelaudit.csvfile import neutralise_formulas, restore_formulas, to_csv_bytes
from labelaudit.dataset import ID, LABEL, SPLIT, TEXT, Dataset
from labelaudit.errors import UsageError
from labelaudit.review.store import ReviewStore

__all__ = [
    "cleaned_dataset",
    "decision_log",
    "export_review",
    "file_format",
    "log_path_for",
    "neutralise_formulas",
    "restore_formulas",
    "to_csv_bytes",
    "to_parquet_bytes",
    "write_table",
]

RemovedMode = Literal["drop", "flag"]
FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def cleaned_dataset(
    ds: Dataset, current: pd.DataFrame, *, removed: RemovedMode = "drop"
) -> pd.DataFrame:
    """The dataset with the review applied, one row per kept row (N rows minus removed ones).

    ``current``: :meth:`ReviewStore.current` for ``ds.content_hash``. ``removed="drop"`` leaves
    removed rows out; ``"flag"`` keeps them with ``removed=True`` and an empty ``final_label``.

    >>> cleaned_dataset(ds, store.current(ds.content_hash), removed="flag").columns[:4].tolist()  # doctest: +SKIP
    ['id', 'text', 'final_label', 'original_label']
    """
    if removed not in ("drop", "flag"):
        raise UsageError(f"removed rows: 'drop' or 'flag', got {removed!r}")
    f = ds.frame
    cur = (
        current.set_index("item_id")
        if len(current)
        else pd.DataFrame(columns=["action", "final_label", "reviewer", "decided_at"])
    )
    ids = f[ID]
    action = ids.map(cur["action"]).fillna("").astype(str)
    decided = action != ""
    final = ids.map(cur["final_label"]).where(decided, f[LABEL]).astype(object)
    final[action == "remove"] = None
    decided_at = pd.to_datetime(ids.map(cur["decided_at"]), utc=True)
    out = pd.DataFrame(
        {
            ID: ids,
            TEXT: f[TEXT],
            "final_label": final,
            "original_label": f[LABEL],
            "action": action,
            "reviewer": ids.map(cur["reviewer"]).fillna("").astype(str),
            "decided_at": decided_at.map(lambda t: "" if pd.isna(t) else t.isoformat()),
            SPLIT: f[SPLIT],
        }
    )
    if removed == "flag":
        out["removed"] = action == "remove"
    else:
        out = out[action != "remove"]
    for col in ds.metadata_columns:
        if col not in out:
            out[col] = f.loc[out.index, col]
    return out.reset_index(drop=True)


def decision_log(store: ReviewStore, dataset_version: str | None) -> pd.DataFrame:
    """The decision log (:data:`~labelaudit.review.store.LOG_COLUMNS`) with ``decided_at`` as ISO 8601 text."""
    log = store.log(dataset_version)
    log["decided_at"] = log["decided_at"].map(lambda t: t.isoformat())
    return log


def to_parquet_bytes(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return buf.getvalue()


def file_format(path: str | Path) -> str:
    """'csv' or 'parquet' from the file name; UsageError otherwise."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise UsageError(
            f"cannot tell the export format of {path}: use a .csv or .parquet file name"
        )
    return FORMATS[suffix]


def write_table(df: pd.DataFrame, path: str | Path) -> Path:
    """Write ``df`` as CSV (formulas neutralised) or Parquet, chosen by the suffix; atomic rename."""
    p = Path(path)
    fmt = file_format(p)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.tmp")
    tmp.write_bytes(to_csv_bytes(df, what=p.name) if fmt == "csv" else to_parquet_bytes(df))
    tmp.replace(p)
    return p


def log_path_for(out: str | Path) -> Path:
    """Where ``export --log`` writes the decision log: ``clean.csv`` -> ``clean.decisions.csv``."""
    p = Path(out)
    return p.with_name(f"{p.stem}.decisions{p.suffix}")


def export_review(
    ds: Dataset,
    store: ReviewStore,
    *,
    out: str | Path,
    removed: RemovedMode = "drop",
    log: bool = False,
) -> list[Path]:
    """Write the cleaned dataset to ``out`` (.csv or .parquet) and, with ``log``, the decision log next
    to it (:func:`log_path_for`). Returns the paths written."""
    file_format(out)  # fail before any work on a bad name
    written = [
        write_table(cleaned_dataset(ds, store.current(ds.content_hash), removed=removed), out)
    ]
    if log:
        written.append(write_table(decision_log(store, ds.content_hash), log_path_for(out)))
    return written
