"""Confident learning (Northcutt, Jiang & Chuang 2021, JAIR 70) through ``cleanlab``.

The confident joint counts rows whose out-of-sample probability for another class clears that
class's average self-confidence; pruning by the estimated noise rate flags the rows. The score is
``1 - `` cleanlab's normalised-margin label quality (the ranking the paper used for its candidates).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from labelaudit.detectors.base import DetectionContext, DetectorDetails, DetectorResult
from labelaudit.detectors.registry import register
from labelaudit.typed_json import serialisable


@serialisable
@dataclass(frozen=True)
class ConfidentLearningDetails(DetectorDetails):
    #: float (K, K): noise_matrix[i][j] = P(given label = i | true label = j), cleanlab's convention.
    noise_matrix: np.ndarray
    #: float (K, K): the confident joint, normalised to sum 1.
    confident_joint: np.ndarray
    #: int (K,): flagged rows per given class.
    issues_per_class: np.ndarray
    estimated_noise_rate: float


@register(
    "confident_learning",
    requires=("pred_probs",),
    cost=1,
    description="cleanlab confident learning: pruned by noise rate, scored by normalised margin",
)
def confident_learning(ctx: DetectionContext) -> DetectorResult:
    from cleanlab.count import compute_confident_joint, estimate_latent
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    p, labels, k = ctx.pred_probs, ctx.labels, ctx.n_classes
    assert p is not None  # required by the registration
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # cleanlab warns about classes without rows; handled below
        cj = compute_confident_joint(labels, p)
        flagged = find_label_issues(labels, p, confident_joint=cj, n_jobs=1)
        quality = get_label_quality_scores(labels, p, method="normalized_margin")
        try:
            py, noise_matrix, inverse_noise_matrix = estimate_latent(cj, labels)
        except (
            ValueError,
            ZeroDivisionError,
            IndexError,
        ):  # degenerate joint (e.g. a class with no rows)
            noise_matrix = np.full((k, k), np.nan)
    rows = np.arange(ctx.n)
    masked = p.copy()
    masked[rows, labels] = -1.0
    other = masked.argmax(axis=1)
    names = ctx.class_names
    evidence = [
        f"confidently '{names[o]}' (p={p[r, o]:.2f}) rather than the given label" if f else ""
        for r, o, f in zip(rows, other, flagged, strict=True)
    ]
    joint = cj / max(cj.sum(), 1)
    return DetectorResult(
        "confident_learning",
        score=np.clip(1.0 - quality, 0.0, 1.0),
        is_issue=flagged,
        suggested_label=other,
        suggested_prob=p[rows, other],
        evidence=evidence,
        details=ConfidentLearningDetails(
            noise_matrix=np.asarray(noise_matrix, dtype=np.float64),
            confident_joint=np.asarray(joint, dtype=np.float64),
            issues_per_class=np.bincount(labels[flagged], minlength=k),
            estimated_noise_rate=float(1.0 - np.trace(joint)),
        ),
    )
