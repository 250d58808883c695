"""The ``probs`` companion: out-of-sample predicted probabilities, float64 of shape (N, K)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from labelaudit.dataset import Dataset
from labelaudit.errors import Report
from labelaudit.io.checks import check_dtype
from labelaudit.io.columns import ID_NAMES, PROB_PREFIXES
from labelaudit.io.companions import register_companion
from labelaudit.io.companions.arrays import load_npy
from labelaudit.io.rows import rows_of, rows_text
from labelaudit.io.tables import read_table

#: Probability rows whose sum is off by at most this are renormalised with a warning; beyond it,
#: refused.
PROB_SUM_TOLERANCE = 1e-2
#: Row sums closer to 1 than this are taken as exact (float noise), not renormalised.
PROB_SUM_EXACT = 1e-6


def read_probs(probs: str | Path | np.ndarray, n: int, k: int, rep: Report) -> np.ndarray | None:
    """Probabilities from an array, an (N, K) ``.npy`` or a table of K numeric columns (an id column
    is ignored), checked by :func:`check_prob_matrix`; None with errors in ``rep`` otherwise."""
    if isinstance(probs, np.ndarray):
        return check_prob_matrix(probs, n, k, "<pred_probs>", rep)
    p = Path(probs)
    if p.suffix.lower() == ".npy":
        arr = load_npy(p, rep)
        return None if arr is None else check_prob_matrix(arr, n, k, p.name, rep)
    df = read_table(p, what="probabilities")
    cols = [c for c in df.columns if c not in ID_NAMES]
    try:
        arr = df[cols].apply(pd.to_numeric, errors="raise").to_numpy()
    except (ValueError, TypeError) as e:
        rep.error(f"non-numeric probability values ({e})", "numbers in [0, 1]", file=p.name)
        return None
    return check_prob_matrix(arr, n, k, p.name, rep)


def probs_from_columns(
    df: pd.DataFrame, cols: list[str], classes: list[str], file: str, rep: Report
) -> np.ndarray | None:
    """Probabilities from ``prob_<class>`` columns of the data, one per class, in class order."""
    by_class = {}
    for c in cols:
        name = next(c[len(pfx) :] for pfx in PROB_PREFIXES if c.startswith(pfx))
        by_class[name] = c
    missing = [c for c in classes if c not in by_class]
    extra = [c for c in by_class if c not in classes]
    if missing or extra:
        rep.error(
            f"probability columns do not match the classes (missing {missing[:5]}, unknown "
            f"{extra[:5]})",
            "one prob_<class> column per class",
            file=file,
        )
        return None
    arr = df[[by_class[c] for c in classes]].apply(pd.to_numeric, errors="coerce").to_numpy()
    return check_prob_matrix(arr, len(df), len(classes), file, rep)


def check_prob_matrix(p: np.ndarray, n: int, k: int, file: str, rep: Report) -> np.ndarray | None:
    """``p`` as float64 (N, K) with rows summing to 1, or None with an error in ``rep``.

    Refused: strings, objects, booleans and complex numbers, another shape, NaN or infinite values,
    negative values, rows summing further than ``PROB_SUM_TOLERANCE`` from 1. Rows closer than that
    are renormalised with a warning.
    """
    if not check_dtype(p, "probabilities", file, rep):
        return None
    if p.ndim != 2:
        rep.error(
            f"an array of shape {p.shape}", f"a 2-D array (N={n} rows, K={k} classes)", file=file
        )
        return None
    if p.shape[0] != n:
        rep.error(
            f"{p.shape[0]} rows of probabilities for {n} dataset rows",
            f"{n} rows, one per dataset row, in the same order",
            file=file,
        )
        return None
    if p.shape[1] != k:
        rep.error(
            f"{p.shape[1]} columns of probabilities",
            f"{k} columns, one per class in class order",
            file=file,
            fix="pass the class list (--classes) if some classes have no rows",
        )
        return None
    p = p.astype(np.float64)
    bad = ~np.isfinite(p).all(axis=1)
    if bad.any():
        rows = rows_of(bad)
        rep.error(
            f"NaN or infinite probabilities in {rows_text(rows)}",
            "finite numbers in [0, 1]",
            file=file,
        )
        return None
    neg = (p < 0).any(axis=1)
    if neg.any():
        rows = rows_of(neg)
        rep.error(
            f"negative probabilities in {rows_text(rows)} (smallest {p.min():.3g})",
            "probabilities in [0, 1]",
            file=file,
            fix="pass softmax probabilities, not logits",
        )
        return None
    sums = p.sum(axis=1)
    off = np.abs(sums - 1)
    far = off > PROB_SUM_TOLERANCE
    if far.any():
        rows = rows_of(far)
        rep.error(
            f"probability {rows_text(rows)} sum to {sums[far][0]:.4g}, not 1",
            f"each row summing to 1 (within {PROB_SUM_TOLERANCE})",
            file=file,
            fix="pass softmax probabilities, not logits or scores",
        )
        return None
    if (off > PROB_SUM_EXACT).any():
        rep.warn(
            f"{int((off > PROB_SUM_EXACT).sum())} probability rows sum to 1 only within "
            f"{off.max():.2g}; renormalised",
            "",
            file=file,
        )
        p = p / sums[:, None]
    return p


@register_companion(
    "probs",
    help="predicted probabilities, (N, K) .npy or a CSV/Parquet with K columns",
    doc="out-of-sample predicted probabilities, (N, K) `.npy`, a CSV/Parquet of K columns, or "
    "`prob_<class>` columns in the data; K columns in class order (sorted class names, or "
    "`--classes`)",
    folder_prefixes=("pred_probs",),
    upload_label="Predicted probabilities (N x K)",
    upload_types=("npy", "csv", "parquet", "pq"),
    stored=(("pred_probs", "npy"),),
    order=10,
)
def probs_companion(source: str | Path | np.ndarray, ds: Dataset, rep: Report) -> None:
    ds.pred_probs = read_probs(source, ds.n, ds.k, rep)
