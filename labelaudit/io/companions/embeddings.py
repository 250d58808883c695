"""The ``embeddings`` companion: precomputed embeddings, float32 of shape (N, D)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from labelaudit.dataset import Dataset
from labelaudit.errors import Report
from labelaudit.io.checks import ArraySpec, check_array
from labelaudit.io.companions import register_companion
from labelaudit.io.companions.arrays import load_npy


def embeddings_spec(n: int) -> ArraySpec:
    """What scan needs of precomputed embeddings: one finite real vector per row, magnitudes whose
    squares sum without overflowing float32 (``normalise_rows`` takes their L2 norm)."""
    return ArraySpec("embeddings", (n, None), ("N", "D"), ("rows", "dimensions"))


def read_embeddings(emb: str | Path | np.ndarray, n: int, rep: Report) -> np.ndarray | None:
    """One finite real vector per dataset row from an array or an (N, D) ``.npy``, checked by
    :func:`labelaudit.io.checks.check_array` against :func:`embeddings_spec`; None with an error in
    ``rep`` otherwise. Rows that are all zeros have no direction: a warning names them."""
    file = "<embeddings>" if isinstance(emb, np.ndarray) else Path(emb).name
    arr = emb if isinstance(emb, np.ndarray) else load_npy(Path(emb), rep)
    if arr is None:
        return None
    out = check_array(arr, embeddings_spec(n), file, rep)
    if out is None:
        return None
    zero = ~out.any(axis=1)
    if zero.any():
        from labelaudit.io.rows import rows_of, rows_text

        rep.warn(
            f"{int(zero.sum())} all-zero embedding(s) in {rows_text(rows_of(zero))}: they have no "
            "direction, so they count as unlike every other row",
            "",
            file=file,
        )
    return out


@register_companion(
    "embeddings",
    help="precomputed embeddings, (N, D) .npy",
    doc="precomputed embeddings, (N, D) `.npy`",
    folder_prefixes=("embeddings",),
    upload_label="Precomputed embeddings (N x D)",
    upload_types=("npy",),
    stored=(("embeddings", "npy"),),
    order=40,
)
def embeddings_companion(source: str | Path | np.ndarray, ds: Dataset, rep: Report) -> None:
    ds.embeddings = read_embeddings(source, ds.n, rep)
