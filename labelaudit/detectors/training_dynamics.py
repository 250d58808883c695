"""Detectors from training dynamics: data-map confidence ("datamap") and forgetting events ("forgetting").

Both read per-epoch logits: the imported ``ctx.dynamics`` when given, else a softmax head trained on
``ctx.embeddings`` (see :mod:`labelaudit.dynamics`; cached in ``ctx.workspace`` when given).
Dynamics are in-sample by nature: they describe how hard each row is to fit with its given label.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from labelaudit.detectors.base import DetectionContext, DetectorDetails, DetectorResult
from labelaudit.detectors.registry import register
from labelaudit.dynamics import (
    HARD_CONFIDENCE,
    PopulationDynamics,
    forgetting_score,
    population_dynamics,
    training_population,
)
from labelaudit.typed_json import serialisable


def context_population(ctx: DetectionContext) -> np.ndarray:
    """bool (N,): the rows the trained heads learn from (:func:`labelaudit.dynamics.training_population`
    of the context's dataset; every row without one)."""
    n = len(ctx.labels)
    return training_population(ctx.dataset) if ctx.dataset is not None else np.ones(n, dtype=bool)


def context_dynamics(ctx: DetectionContext, *, with_aum: bool = False) -> PopulationDynamics:
    """The context's :class:`~labelaudit.dynamics.PopulationDynamics`: imported dynamics, or a run
    trained on the training population's embeddings (cached under the keys the Training dynamics
    page and :func:`labelaudit.training_dynamics` read, so the scan's run is theirs); rows outside
    the population are scored by the same run's checkpoints, and the data map's ambiguous cut is
    taken over the population, as on the page."""
    return population_dynamics(
        ctx.labels,
        n_classes=ctx.n_classes,
        train=context_population(ctx),
        embeddings=ctx.embeddings,
        dynamics=None if ctx.dynamics is None else np.asarray(ctx.dynamics),
        workspace=ctx.workspace,
        seed=ctx.seed,
        with_aum=with_aum,
    )


@serialisable
@dataclass(frozen=True)
class DataMapDetails(DetectorDetails):
    #: Rows per data-map region (easy-to-learn, ambiguous, hard-to-learn).
    regions: dict[str, int]


@serialisable
@dataclass(frozen=True)
class ForgettingDetails(DetectorDetails):
    never_learned: int
    forgotten_at_least_once: int


@register(
    "datamap",
    requires=("embeddings",),
    cost=3,
    description="Data maps (Swayamdipta et al. 2020): low mean probability of the given label over training epochs",
)
def detect_datamap(ctx: DetectionContext) -> DetectorResult:
    dm = context_dynamics(ctx).map
    evidence = [
        f"data map: confidence {c:.2f}, variability {v:.2f}, correct in {k:.0%} of epochs ({r})"
        for c, v, k, r in zip(dm.confidence, dm.variability, dm.correctness, dm.region, strict=True)
    ]
    return DetectorResult(
        name="datamap",
        score=np.clip(1.0 - dm.confidence.to_numpy(), 0, 1),
        # Flag: confidence < 0.5 and the epoch-averaged prediction is another class. The hard-to-learn
        # region alone is too wide (a third of BANKING77 with 10 % flips: precision 0.29), and flips
        # learned late sit in "ambiguous", which a region rule would miss.
        is_issue=((dm.confidence < HARD_CONFIDENCE) & (dm.mean_pred != ctx.labels)).to_numpy(),
        suggested_label=dm.mean_pred.to_numpy(),
        suggested_prob=dm.mean_pred_prob.to_numpy(),
        evidence=evidence,
        details=DataMapDetails(
            regions={str(k): int(v) for k, v in dm.region.value_counts().items()}
        ),
    )


@register(
    "forgetting",
    requires=("embeddings",),
    cost=3,
    description="Forgetting events (Toneva et al. 2019): learned then forgotten across epochs; never learned = most",
)
def detect_forgetting(ctx: DetectionContext) -> DetectorResult:
    pop = context_dynamics(ctx)
    events, never = pop.events, pop.never_learned
    score = forgetting_score(events, never, pop.logits.shape[0])
    dm = pop.map
    evidence = [
        "never learned in any epoch" if nl else (f"forgotten {e} time(s)" if e else "")
        for e, nl in zip(events, never, strict=True)
    ]
    return DetectorResult(
        name="forgetting",
        score=score,
        is_issue=never,
        suggested_label=dm.mean_pred.to_numpy(),
        suggested_prob=dm.mean_pred_prob.to_numpy(),
        evidence=evidence,
        details=ForgettingDetails(
            never_learned=int(never.sum()),
            forgotten_at_least_once=int((events > 0).sum()),
        ),
    )
