"""The ``scores`` companion: scores computed by another tool.

Per row: an ``id`` column plus numeric columns (``Dataset.row_scores``). Per pair: ``train_id,
query_id, score`` with positive = the training row helps the query (``Dataset.pair_scores``).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from labelaudit.dataset import ID, Dataset
from labelaudit.errors import Report
from labelaudit.io.checks import check_table
from labelaudit.io.companions import register_companion
from labelaudit.io.rows import rows_of, rows_text, scalar_str
from labelaudit.io.tables import read_table

PAIR_COLUMNS = {"train_id", "query_id", "score"}


def read_scores(
    scores: str | Path | pd.DataFrame, ds: Dataset, rep: Report
) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """``(row_scores, pair_scores)``, one of them None; errors in ``rep`` for non-numeric scores,
    ids not in the dataset and repeated ids."""
    if isinstance(scores, pd.DataFrame):
        df, file = scores.copy(), "<scores>"
        if not check_table(df, file, rep):
            return None, None
        df.columns = [str(c).strip() for c in df.columns]
    else:
        df, file = read_table(scores, what="scores"), Path(scores).name
    cols = set(df.columns)
    if cols >= PAIR_COLUMNS:
        return None, _pair_scores(df, ds, file, rep)
    if ID not in cols:
        rep.error(
            f"columns {sorted(cols)}",
            "per-row scores with an 'id' column, or pairs with train_id, query_id, score",
            file=file,
        )
        return None, None
    return _row_scores(df, ds, file, rep), None


def _pair_scores(df: pd.DataFrame, ds: Dataset, file: str, rep: Report) -> pd.DataFrame:
    out = pd.DataFrame(
        {
            "train_id": df["train_id"].map(scalar_str),
            "query_id": df["query_id"].map(scalar_str),
            "score": pd.to_numeric(df["score"], errors="coerce"),
        }
    )
    if out["score"].isna().any():
        rows = rows_of(out["score"].isna())
        rep.error(f"non-numeric scores in {rows_text(rows)}", "numbers", file=file, column="score")
    unknown = ~out["train_id"].isin(ds.id_to_row)
    if unknown.any():
        rows = rows_of(unknown)
        rep.error(
            f"train_id values not in the dataset in {rows_text(rows)}",
            "dataset ids",
            file=file,
            column="train_id",
        )
    return out


def _row_scores(df: pd.DataFrame, ds: Dataset, file: str, rep: Report) -> pd.DataFrame:
    out = df.copy()
    out[ID] = out[ID].map(scalar_str)
    for c in out.columns:
        if c == ID:
            continue
        num = pd.to_numeric(out[c], errors="coerce")
        if num.isna().any():
            rows = rows_of(num.isna())
            rep.error(f"non-numeric values in {rows_text(rows)}", "numbers", file=file, column=c)
        out[c] = num
    unknown = ~out[ID].isin(ds.id_to_row)
    if unknown.any():
        rows = rows_of(unknown)
        rep.error(
            f"ids not in the dataset in {rows_text(rows)}", "dataset ids", file=file, column=ID
        )
    if out[ID].duplicated().any():
        rep.error("ids repeated", "one row per id", file=file, column=ID)
    return out


@register_companion(
    "scores",
    help="external scores: per row (id + numeric columns) or per pair (train_id, query_id, score)",
    doc="per-row scores (`id` + numeric columns) or per-pair influence "
    "(`train_id, query_id, score`; positive = helpful)",
    folder_prefixes=("scores", "influence"),
    upload_label="External scores: per row (id, ...) or per pair (train_id, query_id, score)",
    upload_types=("csv", "parquet", "pq"),
    stored=(("row_scores", "parquet"), ("pair_scores", "parquet")),
    order=50,
)
def scores_companion(source: str | Path | pd.DataFrame, ds: Dataset, rep: Report) -> None:
    ds.row_scores, ds.pair_scores = read_scores(source, ds, rep)
