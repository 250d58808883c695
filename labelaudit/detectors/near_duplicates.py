"""Exact and near-duplicate texts whose labels conflict: cheap and precise.

Two rows are duplicates when their texts match after case-folding and collapsing white space, or
their embeddings have cosine similarity of at least 0.95 (searched among each row's 10 nearest
neighbours). Each row is judged against its own duplicates, not a transitive group (chains of
near-duplicates can link unrelated texts): it needs review when its label is not the strict
majority among itself and its duplicates (on a tie, every tied row does).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from labelaudit.detectors.base import DetectionContext, DetectorDetails, DetectorResult
from labelaudit.detectors.registry import register
from labelaudit.typed_json import serialisable

NEAR_DUPLICATE_COSINE = 0.95
#: Neighbours searched per row for near duplicates.
SEARCH_K = 10
#: Partner ids named in one line of evidence.
MAX_NAMED = 5


def _normalise_text(t: str) -> str:
    return re.sub(r"\s+", " ", t.casefold()).strip()


def duplicate_partners(
    ctx: DetectionContext, *, threshold: float = NEAR_DUPLICATE_COSINE
) -> dict[int, np.ndarray]:
    """For every row with at least one duplicate: its duplicates' rows (sorted int64, itself excluded)."""
    partners: dict[int, set[int]] = {}
    if ctx.texts is not None:
        by_text: dict[str, list[int]] = {}
        for r, t in enumerate(ctx.texts):
            by_text.setdefault(_normalise_text(t), []).append(r)
        for same in by_text.values():
            if len(same) > 1:
                for r in same:
                    partners.setdefault(r, set()).update(same)
    if ctx.embeddings is not None and ctx.n > 1:
        graph = ctx.neighbours(SEARCH_K)
        rows, sims = graph.indices, graph.similarities
        src, col = np.nonzero(sims >= threshold)
        for a, b in zip(src.tolist(), rows[src, col].tolist(), strict=True):
            partners.setdefault(a, set()).add(b)
            partners.setdefault(b, set()).add(a)  # similarity is symmetric
    return {r: np.array(sorted(p - {r}), dtype=np.int64) for r, p in partners.items() if p - {r}}


def duplicate_groups(partners: dict[int, np.ndarray], n: int) -> list[list[int]]:
    """Connected groups of duplicates (for display), each sorted, groups sorted by first row."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    if not partners:
        return []
    src = np.concatenate([np.full(len(p), r) for r, p in partners.items()])
    dst = np.concatenate(list(partners.values()))
    _, comp = connected_components(
        coo_matrix((np.ones(len(src)), (src, dst)), shape=(n, n)), directed=False
    )
    members = np.array(sorted(partners))
    groups: dict[int, list[int]] = {}
    for r in members.tolist():
        groups.setdefault(int(comp[r]), []).append(r)
    return sorted(groups.values(), key=lambda g: g[0])


@serialisable
@dataclass(frozen=True)
class NearDuplicatesDetails(DetectorDetails):
    duplicate_groups: int
    #: Row numbers of each group of near-duplicates whose given labels differ.
    conflicting_groups: list[list[int]]
    #: The cosine similarity above which two rows count as near-duplicates.
    threshold: float


@register(
    "near_duplicates",
    requires=("embeddings",),
    cost=3,
    description="exact or near-duplicate texts (cosine >= 0.95) carrying different labels",
)
def near_duplicates(ctx: DetectionContext) -> DetectorResult:
    n, k = ctx.n, ctx.n_classes
    score = np.zeros(n)
    flagged = np.zeros(n, dtype=bool)
    suggested = ctx.labels.copy()
    suggested_prob = np.zeros(n)
    evidence = [""] * n
    ids = ctx.ids
    names = ctx.class_names
    partners = duplicate_partners(ctx)
    for r, p in partners.items():
        lab = ctx.labels[r]
        counts = np.bincount(ctx.labels[p], minlength=k)
        counts[lab] += 1
        if counts[lab] == len(p) + 1:
            continue  # all its duplicates agree
        majority = int(counts.argmax())  # lowest class index among ties: independent of row order
        tie = (counts == counts[majority]).sum() > 1
        score[r] = (len(p) + 1 - counts[lab]) / len(p)  # share of its duplicates labelled otherwise
        suggested[r] = majority
        suggested_prob[r] = counts[majority] / (len(p) + 1)
        if tie or lab != majority:
            flagged[r] = True
            other = [q for q in p.tolist() if ctx.labels[q] != lab]
            shown = ", ".join(
                str(ids[q]) if ids is not None else f"row {q}" for q in other[:MAX_NAMED]
            )
            if len(other) > MAX_NAMED:
                shown += f" and {len(other) - MAX_NAMED} more"
            labels = sorted({names[ctx.labels[q]] for q in other})
            evidence[r] = f"duplicate of {shown} labelled {', '.join(repr(x) for x in labels)}"
    groups = duplicate_groups(partners, n)
    conflicting = [g for g in groups if len(set(ctx.labels[g].tolist())) > 1]
    return DetectorResult(
        "near_duplicates",
        score=np.clip(score, 0, 1),
        is_issue=flagged,
        suggested_label=suggested,
        suggested_prob=suggested_prob,
        evidence=evidence,
        details=NearDuplicatesDetails(
            duplicate_groups=len(groups),
            conflicting_groups=[[int(r) for r in g] for g in conflicting],
            threshold=float(NEAR_DUPLICATE_COSINE),
        ),
    )
