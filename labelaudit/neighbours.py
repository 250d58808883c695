"""The nearest-neighbour graph of the embeddings, shared by every part that needs neighbours.

:class:`NeighbourGraph` is the one shape its consumers read: for each of the N rows, its ``k``
most cosine-similar other rows (``indices``) and their similarities (``similarities``), most
similar first. :func:`build_neighbour_graph` is the one place that decides how the graph is found:

- up to :data:`EXACT_MAX_ROWS` rows, an exact brute-force search in blocks of :data:`BLOCK_ROWS`
  rows (memory O(BLOCK_ROWS x N) at a time, time O(N^2 D): cheap at that size);
- above it, by default, an inverted-file index (IVF: k-means cells, each query scanning the rows of
  its ``nprobe`` nearest cells; Jégou, Douze & Schmid 2011, "Product quantization for
  nearest neighbor search", TPAMI) from the ``faiss-cpu`` package (``IndexIVFFlat``, inner product
  on unit vectors = cosine, :func:`ivf_cells` cells). ``nprobe`` is chosen by measurement for each
  index (:func:`choose_nprobe`): the fewest cells at which a seeded sample of rows finds
  :data:`IVF_TARGET_RECALL` of its exact 10 nearest neighbours, recorded in the graph's ``info``. Chosen over hnswlib's HNSW (Malkov & Yashunin
  2018, arXiv:1603.09320; still available as ``method="hnsw"``) by measurement: at 100k rows of the
  scale benchmark, equal recall and kNN average precision for several times fewer CPU-seconds
  (bench/results/scale.md).

Whatever the index, the similarity of every returned pair is recomputed exactly from the
embeddings, so consumers that threshold on a cosine (near-duplicates) see true values, and two kinds
of failed search are detected and redone exactly: a row the index does not return for itself (a
lost search), and an "island" row, whose neighbours are much farther from it than they are from
their own neighbours (:data:`ISLAND_GAP`; for HNSW: the row was linked into the wrong region when it
was inserted; for IVF: a row at the edge of its cells whose neighbours lie in cells not probed).

A scan builds the graph once (:func:`cached_neighbour_graph`, stored in the workspace under the
embeddings' key) and hands it to the projection (UMAP's ``precomputed_knn``), the detectors (through
:meth:`labelaudit.detectors.base.DetectionContext.neighbours`) and the review card.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from labelaudit.progress import ProgressFn, no_progress

if TYPE_CHECKING:
    from labelaudit.engine import Engine

#: Rows per block of the brute-force similarity product (block x N float32 in memory).
BLOCK_ROWS = 1024
#: Most similarities held at once by an exact search of some rows against all N
#: (:func:`_exact_candidates`: the repairs of the HNSW graph): 2**25 float32 plus their int64
#: partition order, ~384 MiB, so a block is min(BLOCK_ROWS, this // N) rows. Without it a
#: 1,024-row block at 1M rows held 4 GB of similarities and 8 GB of order (measured: over 14 GiB RSS).
EXACT_BLOCK_ELEMENTS = 2**25
#: Largest N searched exactly by default; above it the IVF index is used (bench/bench_scale.py).
EXACT_MAX_ROWS = 10_000
#: IVF (faiss ``IndexIVFFlat``): cells probed per query when a caller fixes it (``ivf_index``'s
#: starting value; the scan chooses it by measurement, :func:`choose_nprobe`). Measured at 100k rows
#: (316 cells) of the scale benchmark: recall@10 0.978; at 1M rows (1,000 cells) only 0.680
#: (bench/results/scale.md), which is why the scan no longer uses a constant.
IVF_NPROBE = 6
#: The recall@10 the scan's IVF search is raised to: after the index is trained, the cells probed
#: per query grow until a seeded sample of :data:`IVF_TUNE_QUERIES` rows finds this share of its
#: exact 10 nearest neighbours (:func:`choose_nprobe`). Above the issue's goal of 0.95 by a margin
#: for the sample's error (the standard error of a 500-row mean recall near 0.97 is below 0.005).
IVF_TARGET_RECALL = 0.97
#: Neighbours per row the recall of :data:`IVF_TARGET_RECALL` is measured on (recall@10).
IVF_RECALL_AT = 10
#: Rows of the seeded sample whose exact neighbours the probed cells are chosen against (an exact
#: search of these rows against all N: O(IVF_TUNE_QUERIES x N x D), ~1 % of the graph's cost at 1M).
IVF_TUNE_QUERIES = 500
#: Bounds of the chosen number of probed cells (never more than the index's cells). At 64 of
#: sqrt(N) cells a query scans 64 / sqrt(N) of the rows (6.4 % at 1M): if the target is not reached
#: there, the graph is built at 64 and the scan records that it was not (``target_met``).
IVF_NPROBE_MIN = 1
IVF_NPROBE_MAX = 64
#: k-means training rows per IVF cell (faiss warns below 39 per centroid), a seeded random sample.
IVF_TRAIN_PER_CELL = 64
#: Rows added to / searched in the IVF index per call (bounds the contiguous copy of a chunk).
IVF_CHUNK = 50_000
#: Neighbours the scan's shared graph holds: UMAP's 15 (itself included) and the detectors' 10.
SCAN_K = 15
#: HNSW parameters: links per node, build-time and query-time candidate list sizes. Measured in
#: bench/bench_scale.py for recall@10 against the exact graph.
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 100
HNSW_EF_SEARCH = 128
#: Rows added to / queried from the index per call (progress granularity, bounded extra memory).
HNSW_CHUNK = 50_000
#: Rows per exact re-scoring step of the returned pairs ((SIM_BLOCK, k, D) float32 gathered at once).
SIM_BLOCK = 4096
#: Rows per engine work item of the graph search (one Ray task each on the Ray engine).
SHARD_ROWS = 16_384
#: After an HNSW search every row's candidates are widened by the neighbours of its first
#: REFINE_FROM neighbours and re-scored exactly (one local join of NN-descent, Dong, Moses & Li 2011,
#: "Efficient k-nearest neighbor graph construction for generic similarity measures", WWW): a row
#: whose search reached its region only partly gets the rest from its neighbours. 0 turns it off:
#: the default, because at 100k rows of the scale benchmark it raised recall@10 by about 0.01 and
#: left the kNN detector's AP unchanged (bench/results/scale.md), while the island repair below
#: closed the AP gap on its own.
REFINE_FROM = 0
#: A row whose mean similarity to its neighbours is this much below its neighbours' own mean
#: similarity to theirs is searched again exactly: its search reached it through a link into
#: another region (an "island": the row was linked to the wrong region when it was inserted), so
#: it finds itself and then only that region's rows. Measured on the scale benchmark's data
#: (bench/results/scale.md): on the exact graph no row's gap exceeds 0.083 at 10k rows; island rows
#: of an HNSW graph have gaps of 0.146 and more.
ISLAND_GAP = 0.1
#: Rows per vectorised refinement step (bounds the (rows, k + REFINE_FROM * k, D) float32 gather).
REFINE_BLOCK = 512
METHODS = ("auto", "exact", "ivf", "hnsw")
#: Bump when the graph changes for the same inputs (cached graphs are then rebuilt).
GRAPH_VERSION = 5  # 2: lost HNSW searches redone exactly; 3: exact candidates re-scored in float64;
# 4: HNSW island rows (ISLAND_GAP) searched exactly; 5: IVF cells probed chosen by measured recall
#: Extra candidates the exact search re-scores beyond k (covers float32 near-ties at the boundary).
RESCORE_MARGIN = 8
#: Query rows per float64 re-scoring step (bounds the (rows, k + margin, D) float64 gather).
RESCORE_ROWS = 256


def normalise_rows(embeddings: np.ndarray) -> np.ndarray:
    """Unit-length float32 rows (zero rows stay zero); rows already unit length are not copied.

    A float32 array (or memory map) whose rows all have norm 1 within float32 rounding (1e-5) or 0
    is returned as is (a view, no copy), so a memory-mapped (N, D) file is never loaded; otherwise a
    normalised float32 copy. Idempotent to the bit, so normalising twice gives the same bytes and
    the same workspace keys (the detectors' trained runs are keyed by the hash of these arrays).
    """
    x = np.asarray(embeddings, dtype=np.float32)
    if x.ndim == 2 and len(x) and _unit_rows(x):
        return x
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


def _unit_rows(x: np.ndarray, *, block: int = 65_536, tol: float = 1e-5) -> bool:
    """True when every row has norm 1 (within ``tol``) or 0: checked in blocks (no (N, D) temporary)."""
    for start in range(0, len(x), block):
        n = np.sqrt(np.einsum("ij,ij->i", x[start : start + block], x[start : start + block]))
        if not np.all((np.abs(n - 1.0) < tol) | (n == 0.0)):
            return False
    return True


@dataclass(frozen=True)
class NeighbourGraph:
    """The ``k`` nearest other rows of every row.

    ``indices``: int64 (N, k), row numbers, each row sorted by decreasing similarity (ties by row
    number), never the row itself. ``similarities``: float32 (N, k), cosine similarity in [-1, 1].
    ``method``: how it was found ("exact", "ivf" or "hnsw"). ``info``: how well, measured when it
    was built (JSON-safe, stored with the graph): for an approximate graph ``sample_rows``, and
    ``graph_recall``, the recall@10 of that seeded sample of rows against their exact neighbours;
    for IVF also the cells, the chosen ``nprobe``, ``target_recall``, ``index_recall`` (the index's
    own search at that nprobe, before the repairs), ``target_met`` and every nprobe ``tried``
    (:func:`choose_nprobe`). Empty for a graph stored before version 5.

    >>> g = build_neighbour_graph(np.eye(3), k=1)
    >>> g.k, g.indices.shape, g.method, g.info["graph_recall"]
    (1, (3, 1), 'exact', 1.0)
    """

    indices: np.ndarray
    similarities: np.ndarray
    method: str = "exact"
    info: dict = field(default_factory=dict, compare=False)

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
        return NeighbourGraph(self.indices[:, :k], self.similarities[:, :k], self.method, self.info)

    def describe(self) -> str:
        """One sentence on how the graph was found and its measured recall (the scan's output)."""
        i = self.info
        text = f"neighbour graph: {self.method}, {self.n:,} rows x {self.k} neighbours"
        if self.method == "ivf" and "nprobe" in i:
            text += (
                f"; {i['nprobe']} of {i['cells']:,} IVF cells probed, chosen for recall@"
                f"{i['recall_at']} >= {i['target_recall']}"
                + (
                    ""
                    if i.get("target_met", True)
                    else f" (NOT reached at the bound {i['nprobe']})"
                )
            )
        if "graph_recall" in i and self.method != "exact":
            text += (
                f"; measured recall@{i['recall_at']} {i['graph_recall']:.3f} on "
                f"{i['sample_rows']:,} sampled rows against their exact neighbours"
            )
        return text

    def row(self, r: int, k: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Row ``r``'s nearest rows and similarities, the first ``k`` (all when None)."""
        return self.indices[r, :k], self.similarities[r, :k]

    def umap_knn(self, n_neighbors: int) -> tuple[np.ndarray, np.ndarray, None]:
        """UMAP's ``precomputed_knn``: each row itself first (distance 0), then its
        ``n_neighbors - 1`` nearest, as cosine distances (1 - similarity); no search index."""
        m = n_neighbors - 1
        if m > self.k:
            raise ValueError(f"the graph holds {self.k} neighbours, UMAP asks for {m}")
        idx = np.empty((self.n, m + 1), dtype=np.int64)
        idx[:, 0] = np.arange(self.n)
        idx[:, 1:] = self.indices[:, :m]
        dist = np.zeros((self.n, m + 1), dtype=np.float32)
        dist[:, 1:] = np.clip(1.0 - self.similarities[:, :m], 0.0, 2.0)
        return idx, dist, None

    def recall(self, exact: NeighbourGraph, k: int | None = None) -> float:
        """Mean share of each row's ``k`` exact neighbours that this graph also has (recall@k)."""
        k = min(k or exact.k, self.k, exact.k)
        if self.n == 0 or k == 0:
            return 1.0
        a, b = self.indices[:, :k], exact.indices[:, :k]
        hits = (a[:, :, None] == b[:, None, :]).any(axis=2).sum()
        return float(hits) / (self.n * k)


def choose_method(n: int, method: str = "auto", *, exact_max_rows: int = EXACT_MAX_ROWS) -> str:
    """``"exact"``, ``"ivf"`` or ``"hnsw"`` for ``n`` rows: ``auto`` is exact up to
    ``exact_max_rows``, IVF above."""
    if method not in METHODS:
        raise ValueError(f"unknown neighbour search '{method}'; choose one of {list(METHODS)}")
    if method == "auto":
        return "exact" if n <= exact_max_rows else "ivf"
    return method


def build_neighbour_graph(
    embeddings: np.ndarray,
    *,
    k: int,
    method: str = "auto",
    seed: int = 0,
    num_threads: int | None = None,
    progress: ProgressFn = no_progress,
    engine: Engine | None = None,
) -> NeighbourGraph:
    """The graph of the ``k`` most cosine-similar other rows of ``embeddings`` (N, D).

    ``method``: "exact" (brute force in blocks), "ivf" (approximate, faiss-cpu IndexIVFFlat),
    "hnsw" (approximate, hnswlib) or "auto" (exact up to :data:`EXACT_MAX_ROWS` rows, IVF above).
    k is capped at N - 1. Progress: ``neighbour graph``. ``engine`` (:mod:`labelaudit.engine`):
    where the row blocks are searched (exact: each block against all rows; ivf / hnsw: the index is
    built here and broadcast, shards of queries run there).
    """
    x = normalise_rows(embeddings)
    chosen = choose_method(len(x), method)
    progress("neighbour graph", 0, len(x))
    if chosen == "exact":
        rows, sims = exact_neighbours(x, k=k, progress=progress, engine=engine)
        return NeighbourGraph(rows, sims, chosen, {"graph_recall": 1.0})
    kk = max(0, min(k, len(x) - 1))
    info: dict = {}
    sample, truth = sample_exact_neighbours(x, min(IVF_RECALL_AT, kk), seed=seed)
    if chosen == "ivf":
        rows, sims = ivf_neighbours(
            x,
            k=k,
            seed=seed,
            num_threads=num_threads,
            nprobe=None,
            sample=(sample, truth),
            info=info,
            progress=progress,
            engine=engine,
        )
    else:
        rows, sims = hnsw_neighbours(
            x, k=k, seed=seed, num_threads=num_threads, progress=progress, engine=engine
        )
    info.update(
        recall_at=int(truth.shape[1]),
        sample_rows=int(len(sample)),
        graph_recall=round(sample_recall(rows[sample], truth), 4),
    )
    return NeighbourGraph(rows, sims, chosen, info)


def sample_exact_neighbours(
    x: np.ndarray, k: int, *, seed: int = 0, rows: int = IVF_TUNE_QUERIES
) -> tuple[np.ndarray, np.ndarray]:
    """A seeded random sample of ``rows`` row numbers of the unit rows ``x`` (sorted, int64) and
    the set of each one's ``k`` exact nearest other rows (int64 (rows, k), in no particular order):
    what an approximate graph's recall is measured against. O(rows x N x D)."""
    n = len(x)
    m = min(rows, n)
    sample = np.sort(np.random.default_rng([seed, 14]).choice(n, m, replace=False)).astype(np.int64)
    if k <= 0 or m == 0:
        return sample, np.zeros((m, 0), dtype=np.int64)
    cand = _exact_candidates(x, sample, k + 1)  # the row itself among them (its similarity: inf)
    keep = np.argsort(cand == sample[:, None], axis=1, kind="stable")[:, :k]
    return sample, np.take_along_axis(cand, keep, axis=1)


def sample_recall(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean share of each row's ``truth`` (rows, k) neighbours among its first k of ``found``."""
    if truth.size == 0:
        return 1.0
    k = truth.shape[1]
    f = np.asarray(found)[:, :k]
    return float((f[:, :, None] == truth[:, None, :]).any(axis=2).sum()) / truth.size


@dataclass(frozen=True)
class ProbeChoice:
    """What :func:`choose_nprobe` measured: the chosen ``nprobe``, the sample's recall at it, and
    the recall at every nprobe it tried."""

    nprobe: int
    recall: float
    target: float
    met: bool
    tried: dict[int, float]

    def as_info(self) -> dict:
        return {
            "nprobe": self.nprobe,
            "target_recall": self.target,
            "index_recall": round(self.recall, 4),
            "target_met": self.met,
            "tried": {str(p): round(r, 4) for p, r in sorted(self.tried.items())},
        }


def choose_nprobe(
    index: IVFIndex,
    x: np.ndarray,
    sample: np.ndarray,
    truth: np.ndarray,
    *,
    target: float = IVF_TARGET_RECALL,
    lo: int = IVF_NPROBE_MIN,
    hi: int = IVF_NPROBE_MAX,
    num_threads: int | None = None,
) -> ProbeChoice:
    """The fewest cells probed per query (between ``lo`` and ``hi``, at most the index's cells)
    at which the index's own search of the ``sample`` rows finds at least ``target`` of their
    ``truth`` neighbours (recall@k, the row itself not counted).

    IVF-Flat scores every row of a probed cell exactly, and more probes search a superset of
    cells, so recall does not fall as nprobe grows: the search doubles nprobe from ``lo`` until the
    target is met (or ``hi`` is reached), then bisects between the last miss and the first hit.
    Each try is one search of the sample (O(len(sample) x nprobe x N / cells x D)); deterministic
    for the same index and sample. When even ``hi`` misses, ``hi`` is chosen and ``met`` is False.
    """
    hi = max(1, min(hi, index.cells))
    lo = max(1, min(lo, hi))
    k = truth.shape[1]
    q = np.ascontiguousarray(x[sample])
    tried: dict[int, float] = {}

    def recall_at(p: int) -> float:
        if p not in tried:
            index.nprobe = p
            labels = index.search(q, min(k + 1, len(index)), num_threads=num_threads)
            # the row itself dropped (it is normally first); empty slots (-1) never match
            order = np.argsort(labels == sample[:, None], axis=1, kind="stable")[:, :k]
            tried[p] = sample_recall(np.take_along_axis(labels, order, axis=1), truth)
        return tried[p]

    miss, p = lo - 1, lo
    while recall_at(p) < target and p < hi:
        miss, p = p, min(hi, 2 * p)
    if recall_at(p) >= target:
        while p - miss > 1:  # the smallest hit in (miss, p]
            mid = (miss + p) // 2
            if recall_at(mid) >= target:
                p = mid
            else:
                miss = mid
    index.nprobe = p
    return ProbeChoice(p, tried[p], target, tried[p] >= target, tried)


def _sort_rows(part: np.ndarray, part_sims: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row by decreasing similarity, then row number (independent of search tie order)."""
    order = np.lexsort((part, -part_sims), axis=1)
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(part_sims, order, axis=1)


def exact_block(x: np.ndarray, start: int, stop: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact ``k`` nearest other rows of rows ``start:stop`` of the unit rows ``x`` (one block)."""
    n = len(x)
    s = x[start:stop] @ x.T
    s[np.arange(stop - start), np.arange(start, stop)] = -np.inf
    # BLAS sums in an order that depends on the block shape and the threads, so two processes can
    # disagree in the last float32 bit and swap near-tied neighbours (measured: 0.7972219 vs
    # 0.7972218 between the driver and a Ray worker, which changed a kNN vote). The k + margin
    # candidates are re-scored in float64 by einsum (same summation order for every pair), then
    # sorted by that score and row number: the same graph in every process and block layout.
    m = min(k + RESCORE_MARGIN, n - 1)
    part = np.argpartition(-s, m - 1, axis=1)[:, :m] if m < n - 1 else np.argsort(-s, axis=1)[:, :m]
    part = part.astype(np.int64)
    q = np.asarray(x[start:stop], dtype=np.float64)
    exact = np.empty(part.shape, dtype=np.float64)
    for a in range(0, len(part), RESCORE_ROWS):
        b = a + RESCORE_ROWS
        exact[a:b] = np.einsum("rd,rmd->rm", q[a:b], np.asarray(x[part[a:b]], dtype=np.float64))
    order = np.lexsort((part, -exact), axis=1)[:, :k]
    rows = np.take_along_axis(part, order, axis=1)
    return rows, np.take_along_axis(exact, order, axis=1).astype(np.float32)


def _exact_shard(span: tuple[int, int], *, x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``span[0]:span[1]`` of the exact graph, block by block (one engine work item)."""
    parts = [exact_block(x, s, min(span[1], s + BLOCK_ROWS), k) for s in range(*span, BLOCK_ROWS)]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _spans(n: int, step: int) -> list[tuple[int, int]]:
    return [(s, min(n, s + step)) for s in range(0, n, step)]


def exact_neighbours(
    embeddings: np.ndarray,
    *,
    k: int = 10,
    progress: ProgressFn = no_progress,
    engine: Engine | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` most cosine-similar other rows of every row, exact (brute force, in blocks).

    Returns ``(rows, sims)``: int64 (N, k') and float32 (N, k') with k' = min(k, N - 1), each row
    sorted by decreasing similarity (ties by row number). A row is never its own neighbour.
    """
    x = normalise_rows(embeddings)
    n = len(x)
    k = max(0, min(k, n - 1))
    rows = np.zeros((n, k), dtype=np.int64)
    sims = np.zeros((n, k), dtype=np.float32)
    if k == 0:
        return rows, sims
    if engine is not None and engine.name != "local":
        spans = _spans(n, SHARD_ROWS)
        for (a, b), (r, s) in zip(
            spans, engine.map(_exact_shard, spans, shared={"x": x, "k": k}), strict=True
        ):
            rows[a:b], sims[a:b] = r, s
        progress("neighbour graph", n, n)
        return rows, sims
    for start in range(0, n, BLOCK_ROWS):
        stop = min(n, start + BLOCK_ROWS)
        rows[start:stop], sims[start:stop] = exact_block(x, start, stop, k)
        progress("neighbour graph", stop, n)
    return rows, sims


def neighbour_graph(embeddings: np.ndarray, *, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Exact ``(rows, sims)`` of :func:`exact_neighbours` (kept for callers of the old name).

    >>> rows, sims = neighbour_graph(np.eye(3), k=1); rows.shape
    (3, 1)
    """
    return exact_neighbours(embeddings, k=k)


def hnsw_index(
    x: np.ndarray,
    *,
    seed: int = 0,
    num_threads: int | None = None,
    m: int = HNSW_M,
    ef_construction: int = HNSW_EF_CONSTRUCTION,
    progress: ProgressFn = no_progress,
) -> Any:
    """An hnswlib index (inner product) over the unit rows ``x``, labels = row numbers."""
    import hnswlib

    n, d = x.shape
    index = hnswlib.Index(space="ip", dim=d)
    index.init_index(max_elements=max(n, 1), ef_construction=ef_construction, M=m, random_seed=seed)
    threads = num_threads or -1
    for start in range(0, n, HNSW_CHUNK):
        stop = min(n, start + HNSW_CHUNK)
        index.add_items(
            np.ascontiguousarray(x[start:stop]), np.arange(start, stop), num_threads=threads
        )
        progress("neighbour graph", stop // 2, n)
    return index


def query_hnsw(
    index: Any,
    x: np.ndarray,
    start: int,
    stop: int,
    k: int,
    *,
    ef: int = HNSW_EF_SEARCH,
    num_threads: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest other rows of rows ``start:stop`` from ``index``, exact similarities, sorted.

    Asks the index for k + 1 (the row itself is normally among them) and drops the row itself; a
    row the index misses gets its farthest returned candidate in its place, so the shape holds.
    """
    index.set_ef(max(ef, k + 1))
    labels, _ = index.knn_query(
        np.ascontiguousarray(x[start:stop]),
        k=min(k + 1, index.get_current_count()),
        num_threads=num_threads or -1,
    )
    return finish_candidates(x, start, stop, labels.astype(np.int64), k)


def finish_candidates(
    x: np.ndarray, start: int, stop: int, labels: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``start:stop`` of the graph from an index's candidates ``labels`` (rows, >= k + 1,
    int64; -1 for a slot the index left empty): lost searches redone exactly, the row itself
    dropped, every pair re-scored by exact cosine, sorted."""
    q = np.ascontiguousarray(x[start:stop])
    own = np.arange(start, stop)[:, None]
    # Every queried row is in the index, so a search that did not return the row itself (or left a
    # slot empty) ended in the wrong region (in well-separated classes: among another class's
    # rows). Those rows are searched exactly instead of keeping wrong neighbours.
    lost = np.flatnonzero(~(labels == own).any(axis=1) | (labels < 0).any(axis=1))
    if len(lost):
        labels[lost] = _exact_candidates(x, start + lost, labels.shape[1])
    # The row itself (normally among the k + 1) moves last; then keep the first k candidates.
    order = np.argsort(labels == own, axis=1, kind="stable")[:, :k]
    part = np.take_along_axis(labels, order, axis=1)
    # Exact cosine for every returned pair (the index's distances are float approximations), in
    # sub-blocks so the (rows, k, D) gather stays small.
    sims = np.empty(part.shape, dtype=np.float32)
    for s in range(0, len(part), SIM_BLOCK):
        e = s + SIM_BLOCK
        sims[s:e] = np.einsum("ij,ikj->ik", q[s:e], x[part[s:e]])
    return _sort_rows(part, sims)


def ivf_cells(n: int) -> int:
    """IVF cells for ``n`` rows: about sqrt(n), so a query scans about nprobe x sqrt(n) rows and
    a cell holds sqrt(n) rows, well above k (measured at 100k and 1M rows: bench/results/scale.md)."""
    return max(1, int(round(float(np.sqrt(max(n, 1))))))


class IVFIndex:
    """A faiss-cpu ``IndexIVFFlat`` (inner product) over unit rows, labels = row numbers, and the
    cells each query probes. Picklable (faiss's own serialisation), so the Ray engine can broadcast
    it to the query tasks."""

    def __init__(self, index: Any, nprobe: int = IVF_NPROBE):
        self.index = index
        self.nprobe = int(nprobe)

    @property
    def cells(self) -> int:
        return int(self.index.nlist)

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def __reduce__(self) -> tuple[Any, tuple[Any, int]]:
        import faiss

        return (_ivf_from_bytes, (faiss.serialize_index(self.index), self.nprobe))

    def search(self, q: np.ndarray, k: int, *, num_threads: int | None = None) -> np.ndarray:
        """The ``k`` best row numbers for each row of ``q`` (int64, -1 where fewer were found)."""
        import faiss

        before = faiss.omp_get_max_threads()
        if num_threads:
            faiss.omp_set_num_threads(num_threads)
        try:
            self.index.nprobe = min(self.nprobe, self.cells)
            _, labels = self.index.search(np.ascontiguousarray(q, dtype=np.float32), k)
        finally:
            faiss.omp_set_num_threads(before)
        return labels.astype(np.int64)


def _faiss() -> Any:
    try:
        import faiss
    except ImportError:
        from labelaudit.errors import UsageError

        raise UsageError(
            "the neighbour graph of more than "
            f"{EXACT_MAX_ROWS:,} rows uses faiss-cpu, which is not installed here: "
            "pip install faiss-cpu (a labelaudit dependency; make install installs it), "
            "or pass method='exact' or 'hnsw'"
        ) from None
    return faiss


def _ivf_from_bytes(data: np.ndarray, nprobe: int) -> IVFIndex:
    import faiss

    return IVFIndex(faiss.deserialize_index(data), nprobe)


def ivf_index(
    x: np.ndarray,
    *,
    seed: int = 0,
    num_threads: int | None = None,
    cells: int | None = None,
    nprobe: int = IVF_NPROBE,
    progress: ProgressFn = no_progress,
) -> IVFIndex:
    """An IVF index over the unit rows ``x``: k-means cells trained on a seeded sample of
    :data:`IVF_TRAIN_PER_CELL` rows per cell, then every row added in chunks (labels = row numbers).
    Raises UsageError naming the package when faiss-cpu is not installed."""
    faiss = _faiss()

    n, d = x.shape
    nlist = min(cells or ivf_cells(n), max(n, 1))
    before = faiss.omp_get_max_threads()
    if num_threads:
        faiss.omp_set_num_threads(num_threads)
    try:
        quantizer = faiss.IndexFlatIP(d)
        index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = seed
        rng = np.random.default_rng(seed)
        train = np.sort(rng.choice(n, min(n, IVF_TRAIN_PER_CELL * nlist), replace=False))
        index.train(np.ascontiguousarray(x[train], dtype=np.float32))
        for start in range(0, n, IVF_CHUNK):
            stop = min(n, start + IVF_CHUNK)
            index.add(np.ascontiguousarray(x[start:stop], dtype=np.float32))
            progress("neighbour graph", stop // 4, n)
    finally:
        faiss.omp_set_num_threads(before)
    return IVFIndex(index, nprobe)


def query_ivf(
    index: IVFIndex,
    x: np.ndarray,
    start: int,
    stop: int,
    k: int,
    *,
    num_threads: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Like :func:`query_hnsw` for an :class:`IVFIndex`: k + 1 candidates, lost searches redone
    exactly, the row itself dropped, exact similarities, sorted."""
    labels = index.search(x[start:stop], min(k + 1, len(index)), num_threads=num_threads)
    return finish_candidates(x, start, stop, labels, k)


def ivf_neighbours(
    embeddings: np.ndarray,
    *,
    k: int = 10,
    seed: int = 0,
    num_threads: int | None = None,
    cells: int | None = None,
    nprobe: int | None = IVF_NPROBE,
    target_recall: float = IVF_TARGET_RECALL,
    nprobe_max: int = IVF_NPROBE_MAX,
    sample: tuple[np.ndarray, np.ndarray] | None = None,
    island_gap: float | None = ISLAND_GAP,
    info: dict | None = None,
    progress: ProgressFn = no_progress,
    engine: Engine | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Approximate ``(rows, sims)`` like :func:`exact_neighbours`, from an IVF index
    (:func:`ivf_index`), finished like the HNSW graph (:func:`graph_from_index`).

    ``nprobe=None``: the cells probed are chosen by measurement (:func:`choose_nprobe`, up to
    ``nprobe_max``) for recall@10 >= ``target_recall`` on ``sample`` (row numbers and their exact
    neighbours, :func:`sample_exact_neighbours`; drawn here when not given). ``info``, when given,
    receives the cells and what the choice measured (:meth:`ProbeChoice.as_info`)."""
    x = normalise_rows(embeddings)
    n = len(x)
    k = max(0, min(k, n - 1))
    if k == 0:
        return np.zeros((n, 0), dtype=np.int64), np.zeros((n, 0), dtype=np.float32)
    index = ivf_index(
        x,
        seed=seed,
        num_threads=num_threads,
        cells=cells,
        nprobe=IVF_NPROBE if nprobe is None else nprobe,
        progress=progress,
    )
    if info is not None:
        info["cells"] = index.cells
    if nprobe is None:
        if sample is None:
            sample = sample_exact_neighbours(x, min(IVF_RECALL_AT, k), seed=seed)
        choice = choose_nprobe(
            index, x, *sample, target=target_recall, hi=nprobe_max, num_threads=num_threads
        )
        if info is not None:
            info.update(choice.as_info())
    elif info is not None:
        info["nprobe"] = index.nprobe
    rows, sims = graph_from_index(
        index,
        x,
        k,
        refine_from=0,
        island_gap=island_gap,
        num_threads=num_threads,
        progress=progress,
        engine=engine,
    )
    progress("neighbour graph", n, n)
    return rows, sims


def _exact_candidates(x: np.ndarray, rows: np.ndarray, m: int) -> np.ndarray:
    """The ``m`` most similar rows of ``x`` to each of ``rows`` (the row itself included), exact."""
    n = len(x)
    out = np.empty((len(rows), m), dtype=np.int64)
    block = max(1, min(BLOCK_ROWS, EXACT_BLOCK_ELEMENTS // max(n, 1)))
    for s in range(0, len(rows), block):
        r = rows[s : s + block]
        sims = np.asarray(x[r], dtype=np.float32) @ np.asarray(x).T
        sims[np.arange(len(r)), r] = np.inf  # itself first, as a successful search returns it
        # the m largest are the last m after partitioning at n - m (no negated copy)
        out[s : s + len(r)] = np.argpartition(sims, n - m, axis=1)[:, n - m :]
    return out


def refine_rows(
    x: np.ndarray,
    rows: np.ndarray,
    start: int,
    stop: int,
    *,
    refine_from: int = REFINE_FROM,
    block: int = REFINE_BLOCK,
) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``start:stop`` of the graph ``rows`` (N, k) re-chosen among their neighbours and the
    neighbours of their first ``refine_from`` neighbours, by exact cosine of the unit rows ``x``.

    The current neighbours are among the candidates, so no row loses a closer neighbour: the
    result is at least as good as the input, row by row. Reads ``rows`` only (the caller writes
    the result elsewhere), so the outcome does not depend on the order of blocks or shards.
    Returns int64 and float32 (stop - start, k), sorted like every graph row. O(rows x k x
    refine_from x D).
    """
    g = np.asarray(rows)
    k = g.shape[1]
    f = min(refine_from, k)
    out_rows = np.empty((stop - start, k), dtype=np.int64)
    out_sims = np.empty((stop - start, k), dtype=np.float32)
    for a in range(start, stop, block):
        b = min(stop, a + block)
        own = g[a:b]
        cand = np.concatenate([own, g[own[:, :f]].reshape(b - a, -1)], axis=1)
        cand = np.sort(cand, axis=1)
        drop = cand == np.arange(a, b)[:, None]  # the row itself
        drop[:, 1:] |= cand[:, 1:] == cand[:, :-1]  # a candidate met twice
        q = np.asarray(x[a:b], dtype=np.float32)
        sims = np.einsum("ij,ikj->ik", q, np.asarray(x[cand], dtype=np.float32))
        sims[drop] = -np.inf
        best = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        r, s = _sort_rows(
            np.take_along_axis(cand, best, axis=1), np.take_along_axis(sims, best, axis=1)
        )
        out_rows[a - start : b - start], out_sims[a - start : b - start] = r, s
    return out_rows, out_sims


def island_rows(sims: np.ndarray, rows: np.ndarray, *, gap: float = ISLAND_GAP) -> np.ndarray:
    """Rows whose mean similarity to their neighbours is more than ``gap`` below the mean, over
    those neighbours, of their own mean similarity to their neighbours (int64, sorted)."""
    mean = np.asarray(sims, dtype=np.float64).mean(axis=1)
    around = np.empty_like(mean)
    g = np.asarray(rows)
    for a in range(0, len(g), SPREAD_BLOCK):
        around[a : a + SPREAD_BLOCK] = mean[g[a : a + SPREAD_BLOCK]].mean(axis=1)
    return np.flatnonzero(around - mean > gap).astype(np.int64)


def research_exactly(x: np.ndarray, rows: np.ndarray, sims: np.ndarray, which: np.ndarray) -> None:
    """Rows ``which`` of the graph (``rows``, ``sims``, written in place) searched exactly."""
    k = rows.shape[1]
    if len(which) == 0 or k == 0:
        return
    cand = _exact_candidates(x, which, k + 1)
    cand = np.take_along_axis(cand, np.argsort(cand == which[:, None], axis=1, kind="stable"), 1)
    part = cand[:, :k]
    s = np.empty(part.shape, dtype=np.float32)
    for a in range(0, len(part), SIM_BLOCK):
        b = a + SIM_BLOCK
        q = np.asarray(x[which[a:b]], dtype=np.float32)
        s[a:b] = np.einsum("ij,ikj->ik", q, np.asarray(x[part[a:b]], dtype=np.float32))
    rows[which], sims[which] = _sort_rows(part, s)


def _refine_shard(
    span: tuple[int, int], *, x: np.ndarray, rows: np.ndarray, refine_from: int
) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``span[0]:span[1]`` of :func:`refine_rows` (one engine work item)."""
    return refine_rows(x, rows, span[0], span[1], refine_from=refine_from)


def refine_graph(
    x: np.ndarray,
    rows: np.ndarray,
    *,
    refine_from: int = REFINE_FROM,
    engine: Engine | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`refine_rows` for every row: the whole graph after one neighbours-of-neighbours pass."""
    n, k = rows.shape
    new_rows = np.empty((n, k), dtype=np.int64)
    new_sims = np.empty((n, k), dtype=np.float32)
    spans = _spans(n, SHARD_ROWS)
    if engine is not None and engine.name != "local":
        parts = engine.map(
            _refine_shard, spans, shared={"x": x, "rows": rows, "refine_from": refine_from}
        )
    else:
        parts = [refine_rows(x, rows, a, b, refine_from=refine_from) for a, b in spans]
    for (a, b), (r, s) in zip(spans, parts, strict=True):
        new_rows[a:b], new_sims[a:b] = r, s
    return new_rows, new_sims


def _query_index(
    index: Any,
    x: np.ndarray,
    start: int,
    stop: int,
    k: int,
    *,
    ef: int = HNSW_EF_SEARCH,
    num_threads: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(index, IVFIndex):
        return query_ivf(index, x, start, stop, k, num_threads=num_threads)
    return query_hnsw(index, x, start, stop, k, ef=ef, num_threads=num_threads)


def _hnsw_shard(
    span: tuple[int, int], *, index: Any, x: np.ndarray, k: int, ef: int
) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``span[0]:span[1]`` of the graph from a broadcast index (one engine work item)."""
    return _query_index(index, x, span[0], span[1], k, ef=ef)


def hnsw_neighbours(
    embeddings: np.ndarray,
    *,
    k: int = 10,
    seed: int = 0,
    num_threads: int | None = None,
    ef: int = HNSW_EF_SEARCH,
    m: int = HNSW_M,
    ef_construction: int = HNSW_EF_CONSTRUCTION,
    refine_from: int = REFINE_FROM,
    island_gap: float | None = ISLAND_GAP,
    progress: ProgressFn = no_progress,
    engine: Engine | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Approximate ``(rows, sims)`` like :func:`exact_neighbours`, from an HNSW index, then one
    neighbours-of-neighbours refinement (:func:`refine_graph`; ``refine_from=0``: none)."""
    x = normalise_rows(embeddings)
    n = len(x)
    k = max(0, min(k, n - 1))
    rows = np.zeros((n, k), dtype=np.int64)
    sims = np.zeros((n, k), dtype=np.float32)
    if k == 0:
        return rows, sims
    index = hnsw_index(
        x,
        seed=seed,
        num_threads=num_threads,
        m=m,
        ef_construction=ef_construction,
        progress=progress,
    )
    rows, sims = graph_from_index(
        index,
        x,
        k,
        ef=ef,
        refine_from=refine_from,
        island_gap=island_gap,
        num_threads=num_threads,
        progress=progress,
        engine=engine,
    )
    progress("neighbour graph", n, n)
    return rows, sims


def graph_from_index(
    index: Any,
    x: np.ndarray,
    k: int,
    *,
    ef: int = HNSW_EF_SEARCH,
    refine_from: int = REFINE_FROM,
    island_gap: float | None = ISLAND_GAP,
    num_threads: int | None = None,
    progress: ProgressFn = no_progress,
    engine: Engine | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The graph of the unit rows ``x`` from an index holding all of them (hnswlib, or an
    :class:`IVFIndex`, whose ``ef`` is unused): every row queried (lost searches redone exactly,
    :func:`finish_candidates`), one neighbours-of-neighbours refinement
    (:func:`refine_graph`, skipped when ``refine_from`` is 0), then the island rows
    (:func:`island_rows`, skipped when ``island_gap`` is None) searched exactly."""
    n = len(x)
    rows = np.zeros((n, k), dtype=np.int64)
    sims = np.zeros((n, k), dtype=np.float32)
    if engine is not None and engine.name != "local":
        spans = _spans(n, SHARD_ROWS)
        shared = {"index": index, "x": x, "k": k, "ef": ef}
        for (a, b), (r, s) in zip(
            spans, engine.map(_hnsw_shard, spans, shared=shared), strict=True
        ):
            rows[a:b], sims[a:b] = r, s
    else:
        for start in range(0, n, HNSW_CHUNK):
            stop = min(n, start + HNSW_CHUNK)
            rows[start:stop], sims[start:stop] = _query_index(
                index, x, start, stop, k, ef=ef, num_threads=num_threads
            )
            progress("neighbour graph", n // 2 + stop // 2, n)
    if refine_from > 0:
        rows, sims = refine_graph(x, rows, refine_from=refine_from, engine=engine)
    if island_gap is not None:
        research_exactly(x, rows, sims, island_rows(sims, rows, gap=island_gap))
    return rows, sims


def graph_key(embeddings_key: str, n: int, *, k: int = SCAN_K, method: str = "auto") -> dict:
    """The workspace parameters of a stored graph (what it depends on)."""
    chosen = choose_method(n, method)
    key = {
        "embeddings": embeddings_key,
        "k": int(k),
        "method": chosen,
        "hnsw": [HNSW_M, HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH, REFINE_FROM]
        if chosen == "hnsw"
        else None,
        "version": GRAPH_VERSION,
    }
    if chosen == "ivf":
        # the rule that chooses nprobe, not the nprobe it chose: the key is known before the build
        key["ivf"] = [
            ivf_cells(n),
            ["target recall", IVF_TARGET_RECALL, IVF_RECALL_AT, IVF_TUNE_QUERIES],
            [IVF_NPROBE_MIN, IVF_NPROBE_MAX],
            IVF_TRAIN_PER_CELL,
            ISLAND_GAP,
        ]
    return key


def load_stored_graph(workspace: Any, key: str, params: dict) -> NeighbourGraph | None:
    """The graph stored under ``key`` with ``params`` (:func:`graph_key`), memory-mapped, with its
    ``info`` (empty when none was stored); None when no complete graph is stored."""
    if workspace is None or not workspace.has(key, "knn_sims", params):
        return None
    info = (
        workspace.load(key, "knn_info", params, ext="json")
        if workspace.has(key, "knn_info", params, ext="json")
        else {}
    )
    return NeighbourGraph(
        workspace.load(key, "knn_indices", params, mmap=True),
        workspace.load(key, "knn_sims", params, mmap=True),
        params["method"],
        info,
    )


def cached_neighbour_graph(
    embeddings: np.ndarray,
    *,
    workspace: Any,
    key: str,
    embeddings_key: str,
    k: int = SCAN_K,
    method: str = "auto",
    seed: int = 0,
    progress: ProgressFn = no_progress,
    engine: Engine | None = None,
) -> NeighbourGraph:
    """:func:`build_neighbour_graph`, stored in ``workspace`` (two ``.npy`` and the graph's ``info``
    as ``knn_info`` JSON, under ``key``) and read back memory-mapped on later calls with the same
    embeddings, k and method (:func:`load_stored_graph`)."""
    n = len(embeddings)
    params = graph_key(embeddings_key, n, k=k, method=method)
    stored = load_stored_graph(workspace, key, params)
    if stored is not None:
        progress("neighbour graph", n, n)
        return stored
    g = build_neighbour_graph(
        embeddings, k=k, method=method, seed=seed, progress=progress, engine=engine
    )
    if workspace is not None:
        workspace.save(key, "knn_info", g.info, params, ext="json")
        workspace.save(key, "knn_indices", g.indices, params)
        workspace.save(key, "knn_sims", g.similarities, params)  # second: marks the graph complete
    return g


#: Rows filled per vectorised step of :func:`spread_over_graph` (bounds the (rows, k, ...) temporaries).
SPREAD_BLOCK = 65_536
#: Passes of :func:`spread_over_graph` before it gives up on rows no known row reaches.
SPREAD_PASSES = 20


def spread_over_graph(
    graph: NeighbourGraph,
    known: np.ndarray,
    fill: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray],
    *,
    passes: int = SPREAD_PASSES,
    block: int = SPREAD_BLOCK,
) -> np.ndarray:
    """Propagate values from the ``known`` rows to the rest along the graph, pass after pass.

    ``known``: int row numbers (or a bool mask) that have a value. In each pass every row without a
    value is offered its neighbours that had one *before the pass* (so the result does not depend
    on block order), weighted by ``max(similarity, 0) + 1e-6`` (0 for neighbours without a value):
    ``fill(rows, neighbours, weights)`` gets int64 (m,), int64 (m, k), float64 (m, k) and writes the
    values of the rows it can fill itself, returning a bool (m,) mask of those. Stops when every row
    has a value, after ``passes`` passes, or when a pass fills nothing. Returns the bool (N,) mask
    of rows that have a value. O(passes x N x k) time; the shared loop of the map placement
    (:func:`labelaudit.projection.place_by_graph`) and the cluster votes
    (:func:`labelaudit.clustering.vote_by_graph`).
    """
    known = np.asarray(known)
    done = known.copy() if known.dtype == bool else np.zeros(graph.n, dtype=bool)
    if known.dtype != bool:
        done[known] = True
    for _ in range(passes):
        todo = np.flatnonzero(~done)
        if len(todo) == 0:
            break
        before = done.copy()
        for start in range(0, len(todo), block):
            rows = todo[start : start + block]
            nb = np.asarray(graph.indices[rows])
            w = (
                np.clip(np.asarray(graph.similarities[rows], dtype=np.float64), 0.0, None) + 1e-6
            ) * before[nb]
            done[rows[fill(rows, nb, w)]] = True
        if done.sum() == before.sum():
            break
    return done


def nearest_neighbours(
    embeddings: np.ndarray | None,
    row: int,
    *,
    k: int = 10,
    graph: NeighbourGraph | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` rows most cosine-similar to ``row`` (itself excluded), most similar first.

    Returns ``(rows int64 (k',), sims float32 (k',))``. With the scan's ``graph`` holding at least
    ``k`` neighbours (k capped at N - 1) the answer is its row: O(k), nothing else is read (the
    review card and the Label issues details at any N). Otherwise an exact search of ``row``
    against all rows of ``embeddings``, in blocks of rows (no normalised (N, D) copy): O(N D).

    >>> nearest_neighbours(np.array([[1, 0], [0.9, 0.1], [0, 1]]), 0, k=1)[0]
    array([1])
    """
    n = graph.n if graph is not None else len(embeddings) if embeddings is not None else 0
    k = max(0, min(k, n - 1))
    if graph is not None and graph.k >= k:
        return (
            np.array(graph.indices[row, :k], dtype=np.int64),
            np.array(graph.similarities[row, :k], dtype=np.float32),
        )
    if embeddings is None:
        raise ValueError("the neighbours of a row need the embeddings or a large enough graph")
    e = np.asarray(embeddings)
    n = len(e)
    q = np.asarray(e[row], dtype=np.float32)
    qn = float(np.linalg.norm(q))
    s = np.empty(n, dtype=np.float32)
    for start in range(0, n, 65_536):
        b = np.asarray(e[start : start + 65_536], dtype=np.float32)
        norms = np.linalg.norm(b, axis=1) * qn
        s[start : start + len(b)] = np.divide(
            b @ q, norms, out=np.zeros(len(b), dtype=np.float32), where=norms > 0
        )
    s[row] = -np.inf
    order = np.lexsort((np.arange(n), -s))[:k]
    return order.astype(np.int64), s[order].astype(np.float32)
