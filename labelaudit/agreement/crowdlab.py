"""CROWDLAB: consensus from annotators and a model together (cleanlab.multiannotator).

Reference: H. W. Goh, U. Tkachenko and J. Mueller (2022), "CROWDLAB: Supervised learning to infer
consensus labels and quality scores for data with multiple annotators", arXiv:2210.06812.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from labelaudit.agreement.ratings import Ratings
from labelaudit.agreement.truth import TruthResult
from labelaudit.errors import DataError, Problem


def crowdlab(ratings: Ratings, pred_probs: np.ndarray) -> TruthResult:
    """Combine the ratings with out-of-sample model probabilities (``pred_probs`` float (I, K), rows in
    ``ratings.item_ids`` order) using cleanlab's ``get_label_quality_multiannotator``.

    cleanlab gives a consensus label and a quality score per item, so
    ``posterior`` puts the consensus quality score on the consensus class and spreads the rest over
    the other classes in proportion to the model's probabilities. ``competence`` is cleanlab's
    annotator quality in [0, 1]. Repeated ratings of an item by one annotator keep the last.
    """
    from cleanlab.multiannotator import get_label_quality_multiannotator

    probs = np.asarray(pred_probs, dtype=np.float64)
    if probs.shape != (ratings.n_items, ratings.k):
        raise DataError(
            Problem(
                f"predicted probabilities of shape {probs.shape}",
                f"({ratings.n_items}, {ratings.k}): one row per rated item",
                file="<pred_probs>",
            )
        )
    wide = np.full((ratings.n_items, ratings.n_annotators), np.nan)
    wide[ratings.item, ratings.annotator] = ratings.label
    frame = pd.DataFrame(wide, columns=[str(a) for a in ratings.annotator_ids])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = get_label_quality_multiannotator(frame, probs, verbose=False)
    quality = out["label_quality"]
    consensus = quality["consensus_label"].to_numpy(dtype=np.int64)
    score = np.clip(quality["consensus_quality_score"].to_numpy(dtype=np.float64), 0, 1)
    rest = probs.copy()
    rest[np.arange(len(consensus)), consensus] = 0.0
    rest_sum = rest.sum(axis=1, keepdims=True)
    rest = np.where(rest_sum > 0, rest / np.maximum(rest_sum, 1e-300), 1.0 / max(ratings.k - 1, 1))
    rest[np.arange(len(consensus)), consensus] = 0.0
    posterior = rest * (1 - score)[:, None]
    posterior[np.arange(len(consensus)), consensus] = score
    posterior /= posterior.sum(axis=1, keepdims=True)
    stats = out["annotator_stats"].reindex([str(a) for a in ratings.annotator_ids])
    competence = np.clip(stats["annotator_quality"].to_numpy(dtype=np.float64), 0, 1)
    return TruthResult(
        "crowdlab",
        posterior,
        consensus,
        competence=competence,
        details={"consensus_quality_score": score},
    )
