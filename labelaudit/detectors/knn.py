"""kNN label disagreement in embedding space, and the neighbour search the other parts reuse.

A row whose nearest neighbours (cosine similarity of sentence embeddings) mostly carry another
label is suspicious; the neighbours' similarity-weighted vote is the suggestion.
"""

from __future__ import annotations

import numpy as np

from labelaudit.detectors.base import DetectionContext, DetectorResult
from labelaudit.detectors.registry import register

DEFAULT_K = 10
#: Rows per block of the brute-force similarity product (block x N float32 in memory).
BLOCK_ROWS = 1024


def normalise_rows(embeddings: np.ndarray) -> np.ndarray:
    """float32 copy with unit-length rows (zero rows stay zero)."""
    x = np.asarray(embeddings, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def neighbour_graph(embeddings: np.ndarray, *, k: int = DEFAULT_K) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` most cosine-similar other rows of every row, exact (brute force, in blocks).

    ``embeddings``: (N, D). Returns ``(rows, sims)``: int64 (N, k') and float32 (N, k') with
    k' = min(k, N - 1), each row sorted by decreasing similarity (ties by row number). A row is never
    its own neighbour.

    >>> rows, sims = neighbour_graph(np.eye(3), k=1); rows.shape
    (3, 1)
    """
    x = normalise_rows(embeddings)
    n = len(x)
    k = max(0, min(k, n - 1))
    rows = np.zeros((n, k), dtype=np.int64)
    sims = np.zeros((n, k), dtype=np.float32)
    if k == 0:
        return rows, sims
    for start in range(0, n, BLOCK_ROWS):
        stop = min(n, start + BLOCK_ROWS)
        s = x[start:stop] @ x.T
        s[np.arange(stop - start), np.arange(start, stop)] = -np.inf
        part = (
            np.argpartition(-s, k - 1, axis=1)[:, :k]
            if k < n - 1
            else np.argsort(-s, axis=1)[:, :k]
        )
        part_sims = np.take_along_axis(s, part, axis=1)
        # Sort by similarity, then row number, so results do not depend on argpartition's tie order.
        order = np.lexsort((part, -part_sims), axis=1)
        rows[start:stop] = np.take_along_axis(part, order, axis=1)
        sims[start:stop] = np.take_along_axis(part_sims, order, axis=1)
    return rows, sims


def nearest_neighbours(
    embeddings: np.ndarray, row: int, *, k: int = 10
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` rows most cosine-similar to ``row`` (itself excluded), most similar first.

    Returns ``(rows int64 (k',), sims float32 (k',))``; O(N·D), fine for one row at a time.

    >>> nearest_neighbours(np.array([[1, 0], [0.9, 0.1], [0, 1]]), 0, k=1)[0]
    array([1])
    """
    x = normalise_rows(embeddings)
    s = x @ x[row]
    s[row] = -np.inf
    k = max(0, min(k, len(x) - 1))
    order = np.lexsort((np.arange(len(s)), -s))[:k]
    return order.astype(np.int64), s[order].astype(np.float32)


def shared_graph(ctx: DetectionContext, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The context's neighbour graph with at least ``k`` neighbours, computed once per detection run."""
    assert ctx.embeddings is not None  # the registry runs these detectors only with embeddings
    have = ctx.extra.get("_neighbour_graph")
    if have is None or have[0].shape[1] < min(k, ctx.n - 1):
        have = neighbour_graph(ctx.embeddings, k=k)
        ctx.extra["_neighbour_graph"] = have
    return have[0][:, :k], have[1][:, :k]


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


@register(
    "knn",
    requires=("embeddings",),
    cost=2,
    description="share of the 10 nearest neighbours (cosine, similarity-weighted) with another label",
)
def knn_disagreement(ctx: DetectionContext) -> DetectorResult:
    k = int(ctx.extra.get("knn_k", DEFAULT_K))
    rows, sims = shared_graph(ctx, k)
    shares = neighbour_votes(ctx.labels, rows, sims, ctx.n_classes)
    idx = np.arange(ctx.n)
    own = shares[idx, ctx.labels]
    top = shares.argmax(axis=1)
    top_share = shares[idx, top]
    flagged = (top != ctx.labels) & (top_share > 0.5)
    names = ctx.extra.get("classes") or [str(i) for i in range(ctx.n_classes)]
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
        details={"k": rows.shape[1]},
    )
