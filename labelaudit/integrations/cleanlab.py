"""cleanlab in and out: its outputs as per-row scores, and labelaudit's scan in cleanlab's shapes.

- :func:`scores_from_cleanlab`: a ``Datalab`` issue table (``lab.get_issues()``: ``is_<type>_issue``
  and ``<type>_score`` columns, score 1 = clean) or ``find_label_issues`` output (a boolean mask or
  indices ranked worst first) as the per-row scores companion (``id`` + columns in [0, 1], higher =
  more suspicious, as every detector here).
- :func:`cleanlab_inputs`: ``labels`` (N,) int, ``pred_probs`` (N, K) and ``features`` (N, D) from a
  :class:`~labelaudit.scanning.ScanResult`, ready for ``cleanlab.Datalab(...).find_issues(...)`` or
  ``cleanlab.filter.find_label_issues``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from labelaudit.dataset import ID, Dataset
from labelaudit.errors import DataError, Problem


def scores_from_cleanlab(ds: Dataset, result: Any, *, name: str = "cleanlab") -> pd.DataFrame:
    """cleanlab's output on ``ds`` (rows in dataset order) as a scores table for ``load_dataset(scores=...)``.

    ``result``: a Datalab issues DataFrame (N rows), a boolean mask (N,), or an int array of row
    indices (``return_indices_ranked_by``: worst first). Datalab scores become ``1 - score`` (their 1
    is clean); a mask gives 1/0; ranked indices give 1 for the worst down to just above 0.

    >>> from cleanlab import Datalab                                               # doctest: +SKIP
    >>> lab = Datalab(data={"label": ds.labels}, label_name="label")               # doctest: +SKIP
    >>> lab.find_issues(pred_probs=res.detection.pred_probs, features=res.embeddings)  # doctest: +SKIP
    >>> ds2 = load_dataset(path, scores=scores_from_cleanlab(ds, lab.get_issues()))   # doctest: +SKIP
    """
    n = ds.n
    out = pd.DataFrame({ID: ds.frame[ID].to_numpy()})
    if isinstance(result, pd.DataFrame):
        if len(result) != n:
            raise DataError(
                Problem(
                    f"{len(result)} rows of cleanlab issues for {n} dataset rows",
                    "one row per dataset row, in dataset order",
                    file="<cleanlab issues>",
                )
            )
        cols = [c for c in result.columns if str(c).endswith("_score")]
        if not cols:
            raise DataError(
                Problem(
                    f"columns {list(result.columns)[:8]}",
                    "Datalab's <issue>_score columns (lab.get_issues())",
                    file="<cleanlab issues>",
                )
            )
        for c in cols:
            v = pd.to_numeric(result[c], errors="coerce").to_numpy(dtype=np.float64)
            if not np.isfinite(v).all() or (v < 0).any() or (v > 1).any():
                raise DataError(
                    Problem(
                        "scores outside [0, 1] or missing",
                        "Datalab scores in [0, 1]",
                        file="<cleanlab issues>",
                        column=str(c),
                    )
                )
            out[f"{name}_{str(c)[: -len('_score')]}"] = 1.0 - v
        for c in result.columns:
            if str(c).startswith("is_") and str(c).endswith("_issue"):
                out[f"{name}_{c}"] = result[c].astype(bool).astype(float).to_numpy()
        return out
    arr = np.asarray(result)
    if arr.dtype == bool:
        if arr.shape != (n,):
            raise DataError(
                Problem(f"a mask of shape {arr.shape}", f"shape ({n},)", file="<cleanlab mask>")
            )
        out[f"{name}_label_issue"] = arr.astype(float)
        return out
    if arr.ndim == 1 and arr.dtype.kind in "iu":
        if len(set(arr.tolist())) != len(arr) or (len(arr) and (arr.min() < 0 or arr.max() >= n)):
            raise DataError(
                Problem(
                    "repeated or out-of-range row indices",
                    f"distinct indices in 0..{n - 1}",
                    file="<cleanlab indices>",
                )
            )
        score = np.zeros(n)
        m = len(arr)
        score[arr] = (m - np.arange(m)) / m  # worst first -> 1, the last flagged -> 1/m
        out[f"{name}_label_issue_rank"] = score
        return out
    raise DataError(
        Problem(
            f"a {type(result).__name__}",
            "a Datalab issues DataFrame, a boolean mask or ranked indices",
            file="<cleanlab result>",
        )
    )


def cleanlab_inputs(ds: Dataset, scan: Any) -> dict[str, np.ndarray]:
    """``{"labels": int64 (N,), "pred_probs": float64 (N, K), "features": float32 (N, D)}`` from a scan
    of ``ds``: the given labels as class indices (``ds.classes`` order), the scan's out-of-sample
    probabilities and its L2-normalised embeddings."""
    if scan.detection is None or scan.detection.pred_probs is None:
        raise DataError(Problem("the scan has no predicted probabilities", "a scan with detection"))
    probs = np.asarray(scan.detection.pred_probs, dtype=np.float64)
    feats = np.asarray(scan.embeddings, dtype=np.float32)
    if len(probs) != ds.n or len(feats) != ds.n:
        raise DataError(
            Problem(
                f"a scan of {len(probs)} rows for {ds.n} dataset rows", "the scan of this dataset"
            )
        )
    return {"labels": ds.labels.copy(), "pred_probs": probs, "features": feats}
