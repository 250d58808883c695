"""Area under the margin (Pleiss et al. 2020) with threshold samples: detector "aum".

Trains two (K+1)-class softmax heads on the training population's ``ctx.embeddings`` (disjoint
threshold sets), cached in ``ctx.workspace`` when given; rows outside the population score 0.
See :func:`labelaudit.dynamics.area_under_margin`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from labelaudit.detectors.base import (
    DetectionContext,
    DetectorDetails,
    DetectorResult,
    rank_normalise,
)
from labelaudit.detectors.registry import register
from labelaudit.detectors.training_dynamics import context_dynamics
from labelaudit.typed_json import serialisable


@serialisable
@dataclass(frozen=True)
class AumDetails(DetectorDetails):
    #: The AUM cut-off of each threshold-sample fit.
    thresholds: list[float]
    flagged: int
    #: float (N,): each row's area under the margin (NaN outside the training population).
    aum: np.ndarray


@register(
    "aum",
    requires=("embeddings",),
    cost=4,
    description="Area under the margin (Pleiss et al. 2020), cut-off from fake-class threshold samples",
)
def detect_aum(ctx: DetectionContext) -> DetectorResult:
    assert ctx.embeddings is not None  # the registry runs this detector only with embeddings
    # Trained on the training population (the run the Training dynamics page shows); AUM is a
    # margin during training, so rows outside it get no score (0) and no flag.
    pop = context_dynamics(ctx, with_aum=True)
    train, res, dm = pop.train, pop.aum, pop.map
    assert res is not None  # embeddings are present
    n = len(ctx.labels)
    score, flags = np.zeros(n), np.zeros(n, dtype=bool)
    score[train], flags[train] = rank_normalise(-res.aum), res.is_mislabeled
    aum_all = np.full(n, np.nan)
    aum_all[train] = res.aum
    evidence = [""] * n
    for i, a, t, f in zip(
        np.flatnonzero(train), res.aum, res.threshold, res.is_mislabeled, strict=True
    ):
        evidence[i] = f"AUM {a:.2f} (cut-off {t:.2f}){': below, likely mislabelled' if f else ''}"
    return DetectorResult(
        name="aum",
        score=score,
        is_issue=flags,
        suggested_label=dm.mean_pred.to_numpy(),
        suggested_prob=dm.mean_pred_prob.to_numpy(),
        evidence=evidence,
        details=AumDetails(
            thresholds=[float(t) for t in res.thresholds],
            flagged=int(res.is_mislabeled.sum()),
            aum=aum_all,
        ),
    )
