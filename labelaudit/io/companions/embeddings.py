"""The ``embeddings`` companion: precomputed embeddings, float32 of shape (N, D)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from labelaudit.errors import Report
from labelaudit.io.companions.arrays import load_npy


def read_embeddings(emb: str | Path | np.ndarray, n: int, rep: Report) -> np.ndarray | None:
    """One finite numeric vector per dataset row from an array or an (N, D) ``.npy``; None with an
    error in ``rep`` for another shape, non-numeric, NaN or infinite values."""
    file = "<embeddings>" if isinstance(emb, np.ndarray) else Path(emb).name
    arr = emb if isinstance(emb, np.ndarray) else load_npy(Path(emb), rep)
    if arr is None:
        return None
    if arr.ndim != 2 or arr.shape[0] != n:
        rep.error(
            f"an array of shape {arr.shape}",
            f"shape ({n}, D): one embedding per dataset row",
            file=file,
        )
        return None
    if arr.dtype.kind not in "fiu" or not np.isfinite(arr).all():
        rep.error("non-numeric, NaN or infinite values", "finite numbers", file=file)
        return None
    return arr.astype(np.float32)
