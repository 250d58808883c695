"""Self-influence (Koh & Liang 2017) of every row under the L2 softmax head: detector "self_influence".

A row the model can fit only by bending towards it (high ``g^T H^-1 g``) is atypical for its label,
often because the label is wrong. Flag rule: the head's own prediction is another class and the log
self-influence is more than 1 robust standard deviation (1.4826 MAD) above the median (chosen on
BANKING77 with planted flips, see bench/results/influence.md). See :mod:`labelaudit.influence`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from labelaudit import dynamics
from labelaudit.detectors.base import (
    DetectionContext,
    DetectorDetails,
    DetectorResult,
    rank_normalise,
)
from labelaudit.detectors.registry import register
from labelaudit.detectors.training_dynamics import context_population
from labelaudit.influence import augment, cached_model, cached_self_influence, softmax
from labelaudit.typed_json import serialisable

#: Robust z-score (of log self-influence) above which a row the head misclassifies is flagged.
FLAG_Z = 1.0


def outlier_flags(values: np.ndarray, *, z: float = FLAG_Z) -> np.ndarray:
    """Rows whose log value is more than ``z`` robust standard deviations above the median."""
    lv = np.log(np.maximum(values, 1e-300))
    med = np.median(lv)
    mad = 1.4826 * np.median(np.abs(lv - med))
    return lv > med + z * max(mad, 1e-12)


@serialisable
@dataclass(frozen=True)
class SelfInfluenceDetails(DetectorDetails):
    #: Rows whose self-influence was computed exactly (the rest: the cheaper approximation).
    exact_rows: int
    flagged: int


@register(
    "self_influence",
    requires=("embeddings",),
    cost=5,
    description="Self-influence (Koh & Liang 2017) of each row on its own loss under an L2 softmax head",
)
def detect_self_influence(ctx: DetectionContext) -> DetectorResult:
    ws = ctx.workspace
    assert ctx.embeddings is not None  # the registry runs this detector only with embeddings
    # The head and the values of the training population: what the Influence page reads (same
    # workspace keys). Rows outside it are not in the head's loss: score 0, no flag, its prediction.
    train = context_population(ctx)
    # No (N, D) copy when every row trains (a boolean index copies even then: 1.5 GB at 1M x 384)
    x = ctx.embeddings if train.all() else ctx.embeddings[train]
    y = ctx.labels[train]
    # One BLAS thread, as the other trained detectors (bench/results/first_run.md)
    with dynamics.single_blas_thread():
        values, exact = cached_self_influence(x, y, n_classes=ctx.n_classes, workspace=ws)
        model = cached_model(x, y, n_classes=ctx.n_classes, workspace=ws)
    n = len(ctx.labels)
    probs = np.empty((n, ctx.n_classes))
    probs[train] = model.probs
    if not train.all():
        probs[~train] = softmax(augment(ctx.embeddings[~train]) @ model.weights.T)
    pred = probs.argmax(axis=1)
    flags = np.zeros(n, dtype=bool)
    flags[train] = outlier_flags(values) & (pred[train] != y)
    score = np.zeros(n)
    score[train] = rank_normalise(values)
    evidence = [""] * n
    for i, v, e in zip(np.flatnonzero(train), values, exact, strict=True):
        evidence[i] = (
            f"self-influence {v:.2e}{' (exact)' if e else ''}"
            f"{', high and misfit: suspicious' if flags[i] else ''}"
        )
    return DetectorResult(
        name="self_influence",
        score=score,
        is_issue=flags,
        suggested_label=pred,
        suggested_prob=probs.max(axis=1),
        evidence=evidence,
        details=SelfInfluenceDetails(exact_rows=int(exact.sum()), flagged=int(flags.sum())),
    )
