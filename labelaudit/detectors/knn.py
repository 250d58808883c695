"""kNN label disagreement in embedding space (neighbours from the context's shared graph).

A row whose nearest neighbours (cosine similarity of sentence embeddings) mostly carry another
label is suspicious; the neighbours' similarity-weighted vote is the suggestion.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from labelaudit.detectors.base import DetectionContext, DetectorDetails, DetectorResult
from labelaudit.detectors.registry import register
from labelaudit.typed_json import serialisable

DEFAULT_K = 10


def neighbour_votes(
    labels: np.ndarray, rows: np.ndarray, sims: np.ndarray, n_classes: int
) -> np.ndarray:
    """Similarity-weighted label shares of each row's neighbours, float64 (N, K), rows sum to 1."""
    w = np.clip(sims.astype(np.float64), 0.0, None) + 1e-6  # negative similarity carries no vote
    votes = np.zeros((len(rows), n_classes))
    np.add.at(
        votes, (np.repeat(np.arange(len(rows)), rows.shape[1]), labels[rows].ravel()), w.ravel()
    )
    total = votes.sum(axis=1, keepdims=True)
    return votes / np.where(total > 0, total, 1.0)


@serialisable
@dataclass(frozen=True)
class KnnDetails(DetectorDetails):
    #: Neighbours per row actually used (capped at N - 1).
    k: int


@register(
    "knn",
    requires=("embeddings",),
    cost=2,
    description="share of the 10 nearest neighbours (cosine, similarity-weighted) with another label",
)
def knn_disagreement(ctx: DetectionContext) -> DetectorResult:
    graph = ctx.neighbours(DEFAULT_K if ctx.options.knn_k is None else ctx.options.knn_k)
    rows, sims = graph.indices, graph.similarities
    shares = neighbour_votes(ctx.labels, rows, sims, ctx.n_classes)
    idx = np.arange(ctx.n)
    own = shares[idx, ctx.labels]
    top = shares.argmax(axis=1)
    top_share = shares[idx, top]
    flagged = (top != ctx.labels) & (top_share > 0.5)
    names = ctx.class_names
    evidence = [
        f"{s:.0%} of the {rows.shape[1]} nearest neighbours say '{names[t]}'" if f else ""
        for s, t, f in zip(top_share, top, flagged, strict=True)
    ]
    return DetectorResult(
        "knn",
        score=np.clip(1.0 - own, 0.0, 1.0),
        is_issue=flagged,
        suggested_label=top,
        suggested_prob=top_share,
        evidence=evidence,
        details=KnnDetails(k=int(rows.shape[1])),
    )
