"""The nearest-neighbour graph of the embeddings, shared by every part that needs neighbours.

:class:`NeighbourGraph` is the one shape the detectors read: for each of the N rows, its ``k``
most cosine-similar other rows (``indices``) and their similarities (``similarities``), most
similar first. :func:`build_neighbour_graph` is the one place that decides how the graph is found
(today an exact brute-force search in blocks); a detection run builds it once and every detector
reads it through :meth:`labelaudit.detectors.base.DetectionContext.neighbours`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Rows per block of the brute-force similarity product (block x N float32 in memory).
BLOCK_ROWS = 1024


def normalise_rows(embeddings: np.ndarray) -> np.ndarray:
    """float32 copy with unit-length rows (zero rows stay zero)."""
    x = np.asarray(embeddings, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


@dataclass(frozen=True)
class NeighbourGraph:
    """The ``k`` nearest other rows of every row.

    ``indices``: int64 (N, k), row numbers, each row sorted by decreasing similarity (ties by row
    number), never the row itself. ``similarities``: float32 (N, k), cosine similarity in [-1, 1].

    >>> g = build_neighbour_graph(np.eye(3), k=1)
    >>> g.k, g.indices.shape
    (1, (3, 1))
    """

    indices: np.ndarray
    similarities: np.ndarray

    def __post_init__(self) -> None:
        if self.indices.shape != self.similarities.shape or self.indices.ndim != 2:
            raise ValueError(
                f"neighbour graph: indices {self.indices.shape} and similarities "
                f"{self.similarities.shape} must be the same (N, k) shape"
            )

    @property
    def n(self) -> int:
        return int(self.indices.shape[0])

    @property
    def k(self) -> int:
        return int(self.indices.shape[1])

    def first(self, k: int) -> NeighbourGraph:
        """The same graph cut to each row's ``k`` nearest neighbours (all of them when k >= self.k)."""
        return NeighbourGraph(self.indices[:, :k], self.similarities[:, :k])


def build_neighbour_graph(embeddings: np.ndarray, *, k: int) -> NeighbourGraph:
    """The graph of the ``k`` most cosine-similar other rows of ``embeddings`` (N, D).

    Exact (brute force, in blocks of :data:`BLOCK_ROWS` rows); k is capped at N - 1.
    """
    rows, sims = neighbour_graph(embeddings, k=k)
    return NeighbourGraph(rows, sims)


def neighbour_graph(embeddings: np.ndarray, *, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
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
