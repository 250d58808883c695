"""Combine the detectors' results into one ranking, one "needs review" flag and one suggestion.

The combiner is replaceable: any callable taking ``{name: DetectorResult}`` and returning scores in
[0, 1]. The default, :func:`rank_average`, maps each detector's scores to ranks in [0, 1] and averages
them, so detectors on different scales weigh the same. A row **needs review** (``is_issue``) when
at least half of the m detectors that ran flag it, and at least two (``min(m, max(2, ceil(m / 2)))``):
a fixed "two flags" rule grows loose as detectors are added (BANKING77, 5 % planted flips, 9
detectors: precision 0.38 at two flags, 0.57 at five, recall 1.00 and 0.996; bench/results/detectors.md).
Flags mean "needs review", never "is wrong".

Not a detector module: it registers nothing (the registry imports it harmlessly).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from labelaudit.detectors.base import DetectorResult, rank_normalise

Combiner = Callable[[Mapping[str, DetectorResult]], np.ndarray]
#: Documented rule for the combined flag.
ISSUE_RULE = "flagged by at least half of the detectors run, and at least two"


def min_flags_for(n_detectors: int) -> int:
    """Flags a row needs to be "needs review" when ``n_detectors`` ran: min(m, max(2, ceil(m / 2))).

    >>> [min_flags_for(m) for m in (1, 2, 3, 5, 9)]
    [1, 2, 2, 3, 5]
    """
    return min(n_detectors, max(2, -(-n_detectors // 2)))


def rank_average(
    results: Mapping[str, DetectorResult], *, weights: Mapping[str, float] | None = None
) -> np.ndarray:
    """Weighted mean of the rank-normalised scores, float64 (N,) in [0, 1].

    >>> a = DetectorResult("a", [0.1, 0.9], [0, 1], [0, 0], [1, 1], ["", ""])
    >>> rank_average({"a": a}).tolist()
    [0.0, 1.0]
    """
    if not results:
        raise ValueError("no detector results to combine")
    total, weight_sum = np.zeros(len(next(iter(results.values())).score)), 0.0
    for name, r in results.items():
        w = 1.0 if weights is None else float(weights.get(name, 1.0))
        total = total + w * rank_normalise(r.score)
        weight_sum += w
    return np.clip(total / weight_sum, 0.0, 1.0)


def count_flags(results: Mapping[str, DetectorResult]) -> np.ndarray:
    """How many detectors flag each row, int64 (N,)."""
    return np.sum([r.is_issue for r in results.values()], axis=0).astype(np.int64)


def top_labels(probs: np.ndarray, *, top: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """The ``top`` most probable classes per row and their probabilities: int64 and float64 (N, top)."""
    top = min(top, probs.shape[1])
    order = np.argsort(-probs, axis=1, kind="stable")[:, :top]
    return order.astype(np.int64), np.take_along_axis(probs, order, axis=1)


@dataclass
class EnsembleResult:
    score: np.ndarray  # float64 (N,) in [0, 1]
    is_issue: np.ndarray  # bool (N,)
    n_flags: np.ndarray  # int64 (N,)
    suggested_label: np.ndarray  # int64 (N,)
    suggested_prob: np.ndarray  # float64 (N,)
    top_labels: np.ndarray  # int64 (N, 3)
    top_probs: np.ndarray  # float64 (N, 3)


def combine(
    results: Mapping[str, DetectorResult],
    *,
    pred_probs: np.ndarray,
    combiner: Combiner = rank_average,
    min_flags: int | None = None,
) -> EnsembleResult:
    """The ensemble over ``results`` (at least one). Suggestions come from ``pred_probs`` (N, K),
    which are out-of-sample: the argmax, which may equal the given label (then: keep it).

    >>> e = combine({"a": a}, pred_probs=np.array([[0.8, 0.2], [0.3, 0.7]]))  # doctest: +SKIP
    """
    score = np.asarray(combiner(results), dtype=np.float64)
    n_flags = count_flags(results)
    need = min_flags_for(len(results)) if min_flags is None else min_flags
    labels, probs = top_labels(pred_probs)
    return EnsembleResult(
        score=score,
        is_issue=n_flags >= need,
        n_flags=n_flags,
        suggested_label=labels[:, 0],
        suggested_prob=probs[:, 0],
        top_labels=labels,
        top_probs=probs,
    )
