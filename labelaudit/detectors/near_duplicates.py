"""Exact and near-duplicate texts whose labels conflict: cheap and precise.

Two rows are duplicates when their texts match after case-folding and collapsing white space, or
their embeddings have cosine similarity of at least 0.95 (within each row's nearest neighbours).
Duplicates form groups (connected components); in a group with more than one label, every row whose
label is not the group's strict majority needs review (on a tie, all of them do).
"""

from __future__ import annotations

import re

import numpy as np

from labelaudit.detectors.base import DetectionContext, DetectorResult
from labelaudit.detectors.knn import shared_graph
from labelaudit.detectors.registry import register

NEAR_DUPLICATE_COSINE = 0.95
#: Neighbours searched per row for near duplicates.
SEARCH_K = 10


def _normalise_text(t: str) -> str:
    return re.sub(r"\s+", " ", t.casefold()).strip()


def duplicate_groups(ctx: DetectionContext, *, threshold: float = NEAR_DUPLICATE_COSINE) -> list[np.ndarray]:
    """Groups (sorted row arrays, each of 2+ rows) of exact or near-duplicate texts, sorted by first row."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    src, dst = [], []
    if ctx.texts is not None:
        first: dict[str, int] = {}
        for r, t in enumerate(ctx.texts):
            key = _normalise_text(t)
            if key in first:
                src.append(first[key])
                dst.append(r)
            else:
                first[key] = r
    if ctx.embeddings is not None and ctx.n > 1:
        rows, sims = shared_graph(ctx, SEARCH_K)
        close = sims >= threshold
        src.extend(np.repeat(np.arange(ctx.n), rows.shape[1])[close.ravel()].tolist())
        dst.extend(rows[close].tolist())
    if not src:
        return []
    graph = coo_matrix((np.ones(len(src)), (src, dst)), shape=(ctx.n, ctx.n))
    _, component = connected_components(graph, directed=False)
    sizes = np.bincount(component)
    order = np.argsort(component, kind="stable")
    groups = np.split(order, np.cumsum(sizes)[:-1])
    return sorted((np.sort(g) for g in groups if len(g) > 1), key=lambda g: int(g[0]))


@register("near_duplicates", requires=("embeddings",), cost=3,
          description="exact or near-duplicate texts (cosine >= 0.95) carrying different labels")
def near_duplicates(ctx: DetectionContext) -> DetectorResult:
    n, k = ctx.n, ctx.n_classes
    score = np.zeros(n)
    flagged = np.zeros(n, dtype=bool)
    suggested = ctx.labels.copy()
    suggested_prob = np.zeros(n)
    evidence = [""] * n
    ids = ctx.extra.get("ids")
    names = ctx.extra.get("classes") or [str(i) for i in range(k)]
    groups = duplicate_groups(ctx)
    conflicting = []
    for g in groups:
        labels = ctx.labels[g]
        counts = np.bincount(labels, minlength=k)
        if (counts > 0).sum() < 2:
            continue
        conflicting.append(g)
        majority = int(counts.argmax())  # lowest class index among ties: independent of row order
        tie = (counts == counts[majority]).sum() > 1
        for r, lab in zip(g, labels, strict=True):
            others = len(g) - 1
            score[r] = (len(g) - counts[lab]) / others  # share of its duplicates labelled otherwise
            suggested[r] = majority
            suggested_prob[r] = counts[majority] / len(g)
            if tie or lab != majority:
                flagged[r] = True
                partners = [p for p in g if p != r and ctx.labels[p] != lab]
                shown = ", ".join(str(ids[p]) if ids is not None else f"row {p}" for p in partners[:5])
                if len(partners) > 5:
                    shown += f" and {len(partners) - 5} more"
                other = sorted({names[ctx.labels[p]] for p in partners})
                evidence[r] = f"duplicate of {shown} labelled {', '.join(repr(o) for o in other)}"
    return DetectorResult(
        "near_duplicates", score=np.clip(score, 0, 1), is_issue=flagged, suggested_label=suggested,
        suggested_prob=suggested_prob, evidence=evidence,
        details={"duplicate_groups": len(groups), "conflicting_groups": [g.tolist() for g in conflicting],
                 "threshold": NEAR_DUPLICATE_COSINE},
    )
