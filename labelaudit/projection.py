"""Low-dimensional views of the embeddings: the 2-D map and the space clusters are found in.

UMAP (McInnes, Healy & Melville 2018, arXiv:1802.03426) with a fixed seed. High-dimensional input
is first reduced with PCA when there are enough rows for that to pay (see :data:`PCA_MIN_ROWS`;
measured in bench/bench_scan.py). One UMAP fit gives the 2-D map, and the clusters are found on
that map (:data:`CLUSTER_DIMS`; a second, 10-D fit for clustering was dropped: on the bundled
sample it cost as much as the map and HDBSCAN on the map agrees with the true labels about as well,
bench/results/first_run.md, "One UMAP fit or two"). The fit uses the scan's own cosine k-NN graph
of the embeddings (:mod:`labelaudit.neighbours`), given to UMAP as ``precomputed_knn``, so the map's
neighbourhoods are the ones the detectors and the review card use.

The background job fits the map in a process of its own (:func:`start_worker`) while the
detectors run on the other core: UMAP's seeded optimisation is single-threaded and its numba code
holds the GIL, so a thread would stall the detectors.

Above :data:`FIT_MAX_ROWS` rows UMAP is fitted on a seeded random sample of that many rows and every
other row is placed at the similarity-weighted mean of its already placed neighbours in the shared
graph (repeated until every row is placed), as UMAP's own ``transform`` initialises new points
(umap-learn docs, "Transforming New Data"); time and memory then grow linearly in N.

umap (and through it numba) is imported only inside the functions here, so importing this module
is cheap. umap-learn compiles most of its numba functions without numba's on-disk cache (only
pynndescent's are cached), so every new process compiled them again: 10-20 s of a first map on a
quiet 2-core machine (bench/results/first_run.md). :func:`import_umap` turns numba's cache on for
umap's module-level functions before their first compilation (``Dispatcher.enable_caching``, the
call numba's own ``cache=True`` makes); ``make install`` fills the cache (``scripts/warm_numba.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from labelaudit.progress import ProgressFn, no_progress

if TYPE_CHECKING:
    from labelaudit.neighbours import NeighbourGraph

#: PCA to this many dimensions before UMAP when the input is wider.
PCA_DIMS = 50
#: ... and only from this many rows on: below it UMAP is fast anyway and PCA changes the neighbours.
PCA_MIN_ROWS = 5000
#: Dimensions of the space the clusters are found in (HDBSCAN degrades in high dimensions). 2 means
#: the 2-D map itself: one UMAP fit, not a second 10-D one (see :func:`map_and_cluster_space`).
CLUSTER_DIMS = 2
#: Below this many rows UMAP is not meaningful; a PCA view is returned instead.
MIN_UMAP_ROWS = 16
N_NEIGHBORS = 15
#: Most rows UMAP (and HDBSCAN, :mod:`labelaudit.clustering`) is fitted on; the rest are placed.
FIT_MAX_ROWS = 100_000
#: Passes of placing rows from their placed neighbours before the leftovers go to the centroid.
PLACE_PASSES = 20
#: Rows placed per vectorised step (bounds the (rows, k, d) temporary).
PLACE_BLOCK = 65_536


def fit_sample(n: int, max_rows: int = FIT_MAX_ROWS, *, seed: int = 0) -> np.ndarray:
    """Sorted int64 row numbers to fit on: all rows when n <= max_rows, else a seeded sample."""
    if n <= max_rows:
        return np.arange(n, dtype=np.int64)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=max_rows, replace=False)).astype(np.int64)


def place_by_graph(
    values: np.ndarray, sample: np.ndarray, graph: NeighbourGraph, *, passes: int = PLACE_PASSES
) -> np.ndarray:
    """Values (N, d) for every row of ``graph``: ``values`` (len(sample), d) at the rows ``sample``,
    every other row the similarity-weighted mean of its placed neighbours, pass after pass (a row
    is placed once at least one neighbour is; :func:`labelaudit.neighbours.spread_over_graph`);
    rows still unplaced get the mean of the placed ones. O(passes x N x k x d) time, O(N x d) memory.
    """
    from labelaudit.neighbours import spread_over_graph

    v = np.asarray(values, dtype=np.float32)
    out = np.zeros((graph.n, v.shape[1]), dtype=np.float32)
    out[sample] = v

    def fill(rows: np.ndarray, nb: np.ndarray, w: np.ndarray) -> np.ndarray:
        total = w.sum(axis=1)
        ok = total > 0
        out[rows[ok]] = np.einsum("ik,ikd->id", w[ok], out[nb[ok]]) / total[ok, None]
        return ok

    placed = spread_over_graph(graph, sample, fill, passes=passes, block=PLACE_BLOCK)
    if not placed.all():
        out[~placed] = out[placed].mean(axis=0)
    return out


def pca_reduce(x: np.ndarray, n_components: int, *, seed: int = 0) -> np.ndarray:
    """PCA of ``x`` (N, D) to (N, min(n_components, D, N)) float32, zero-padded to ``n_components``."""
    from sklearn.decomposition import PCA

    x = np.asarray(x, dtype=np.float32)
    n, d = x.shape
    k = max(1, min(n_components, d, n))
    if n < 2:
        out = np.zeros((n, k), dtype=np.float32)
    else:
        out = (
            PCA(n_components=k, random_state=seed, svd_solver="auto")
            .fit_transform(x)
            .astype(np.float32)
        )
    if k < n_components:
        out = np.hstack([out, np.zeros((n, n_components - k), dtype=np.float32)])
    return out


def prepare_for_umap(
    embeddings: np.ndarray,
    *,
    seed: int = 0,
    pca_dims: int = PCA_DIMS,
    pca_min_rows: int = PCA_MIN_ROWS,
) -> np.ndarray:
    """The input UMAP sees: PCA to ``pca_dims`` when D > pca_dims and N >= pca_min_rows, else as is."""
    x = np.asarray(embeddings, dtype=np.float32)
    if x.shape[1] > pca_dims and x.shape[0] >= pca_min_rows:
        return pca_reduce(x, pca_dims, seed=seed)
    return x


#: umap's modules whose module-level numba functions get numba's on-disk cache (:func:`import_umap`).
UMAP_NUMBA_MODULES = ("umap.umap_", "umap.layouts", "umap.utils", "umap.spectral", "umap.distances")
_UMAP_CACHING = False


def import_umap():
    """The ``umap`` package, with numba's on-disk cache enabled for the numba functions of
    :data:`UMAP_NUMBA_MODULES` (once per process). A function numba cannot cache (no writable
    cache directory, no source file) keeps compiling in memory, as before."""
    global _UMAP_CACHING
    import contextlib
    import importlib

    import umap

    if not _UMAP_CACHING:
        from numba.core.dispatcher import Dispatcher

        for name in UMAP_NUMBA_MODULES:
            for fn in vars(importlib.import_module(name)).values():
                if isinstance(fn, Dispatcher):
                    # RuntimeError: "cannot cache function ...: no locator available"
                    with contextlib.suppress(RuntimeError):
                        fn.enable_caching()
        _UMAP_CACHING = True
    return umap


def shared_neighbours(x: np.ndarray, *, n_neighbors: int = N_NEIGHBORS, seed: int = 0):
    """The approximate k-NN graph of ``x`` (NN-descent), as UMAP's ``precomputed_knn`` tuple."""
    import_umap()
    from umap.umap_ import nearest_neighbors

    idx, dists, index = nearest_neighbors(
        x, n_neighbors, "euclidean", {}, False, np.random.RandomState(seed), low_memory=True
    )
    return idx, dists, index


def umap_fit(
    x: np.ndarray,
    n_components: int,
    *,
    seed: int = 0,
    n_neighbors: int = N_NEIGHBORS,
    min_dist: float = 0.1,
    knn=None,
) -> np.ndarray:
    """UMAP of ``x`` (N, D) to float32 (N, n_components); seeded, so deterministic (and single-threaded)."""
    import warnings

    umap = import_umap()
    n = x.shape[0]
    kw = {}
    if knn is not None:
        kw["precomputed_knn"] = knn
    reducer = umap.UMAP(
        n_components=n_components,
        n_neighbors=min(n_neighbors, n - 1),
        min_dist=min_dist,
        metric="euclidean",
        random_state=seed,
        init="spectral" if n > 64 else "random",
        **kw,
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="n_jobs value", category=UserWarning)
        # The shared graph comes without UMAP's own search index: no transform needed here.
        warnings.filterwarnings("ignore", message="precomputed_knn", category=UserWarning)
        return np.asarray(reducer.fit_transform(x), dtype=np.float32)


def map_and_cluster_space(
    embeddings: np.ndarray,
    *,
    seed: int = 0,
    cluster_dims: int = CLUSTER_DIMS,
    pca_min_rows: int = PCA_MIN_ROWS,
    progress: ProgressFn = no_progress,
    graph: NeighbourGraph | None = None,
    fit_max_rows: int = FIT_MAX_ROWS,
) -> tuple[np.ndarray, np.ndarray]:
    """The 2-D map (N, 2) and the clustering space (N, <= cluster_dims), both float32.

    2-D input is returned as is for both. Fewer than :data:`MIN_UMAP_ROWS` rows get a PCA view.
    Reports ``progress("projection", done, 3)`` after the neighbour graph and each fit.
    ``graph``: the cosine k-NN graph of ``embeddings`` (at least 14 neighbours), used as UMAP's
    ``precomputed_knn`` and to place rows beyond a ``fit_max_rows`` sample; built here when None.

    >>> xy, space = map_and_cluster_space(np.random.rand(500, 384).astype("float32"))  # doctest: +SKIP
    >>> xy.shape, space.shape                                                           # doctest: +SKIP
    ((500, 2), (500, 10))
    """
    e = np.asarray(embeddings, dtype=np.float32)
    n, d = e.shape
    progress("projection", 0, 3)
    if d <= 2:
        xy = e if d == 2 else np.hstack([e, np.zeros((n, 2 - d), dtype=np.float32)])
        progress("projection", 3, 3)
        return xy.copy(), e.copy()
    if n < MIN_UMAP_ROWS:
        progress("projection", 3, 3)
        return pca_reduce(e, 2, seed=seed), pca_reduce(e, min(cluster_dims, d), seed=seed)
    sample = fit_sample(n, fit_max_rows, seed=seed)
    sampled = len(sample) < n
    if sampled and graph is None:
        from labelaudit.neighbours import build_neighbour_graph

        graph = build_neighbour_graph(e, k=N_NEIGHBORS - 1, seed=seed)
    es = e[sample] if sampled else e
    x = prepare_for_umap(es, seed=seed, pca_min_rows=pca_min_rows)
    m = len(x)
    # The shared graph is used at every size: below 4,096 rows UMAP's own exact path computes all
    # pairwise distances through a Python callable (2.25 M calls for the first pass's 1,500 rows)
    # and compiles a parallel k-NN search in every process (bench/results/first_run.md).
    knn = None
    if not sampled and graph is not None and graph.k >= min(N_NEIGHBORS, m) - 1:
        knn = graph.umap_knn(min(N_NEIGHBORS, m))
    elif m >= 4096:
        if sampled:
            from labelaudit.neighbours import build_neighbour_graph

            knn = build_neighbour_graph(es, k=N_NEIGHBORS - 1, seed=seed).umap_knn(N_NEIGHBORS)
        else:
            knn = shared_neighbours(x, seed=seed)
    progress("projection", 1, 3)
    xy = umap_fit(x, 2, seed=seed, knn=knn)
    progress("projection", 2, 3)
    if cluster_dims <= 2:
        space = xy.copy()  # the clusters are found on the map: one fit
    elif d <= cluster_dims:
        space = e.copy() if not sampled else np.asarray(es, dtype=np.float32)
    else:
        # min_dist=0 packs clusters tightly: better for density clustering (UMAP docs, "clustering").
        space = umap_fit(x, cluster_dims, seed=seed, min_dist=0.0, knn=knn)
    if sampled:
        assert graph is not None
        xy = place_by_graph(xy, sample, graph)
        if cluster_dims <= 2:
            space = xy.copy()
        else:
            space = e.copy() if d <= cluster_dims else place_by_graph(space, sample, graph)
    progress("projection", 3, 3)
    return xy, space


# --------------------------------------------------------------------------- a process beside
#: The map's own process (:func:`start_worker`), or None: UMAP's numba code holds the GIL for a
#: whole epoch, so beside the detectors it runs in a process, not a thread.
_WORKER = None
#: Most rows handed to the worker (pickled: the embeddings and the graph are copied once); larger
#: maps are computed in the scan's own process, as before.
WORKER_MAX_ROWS = FIT_MAX_ROWS


def _warm_worker() -> None:
    """In the worker: import umap and hdbscan and load UMAP's compiled functions from numba's
    cache with a tiny fit through the scan's path (a graph given), so the first real fit pays none
    of it."""
    from labelaudit.neighbours import build_neighbour_graph

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    map_and_clusters(x, seed=0, graph=build_neighbour_graph(x, k=N_NEIGHBORS - 1, seed=0))


def start_worker():
    """Start, once per process, a process of its own for the map and its clusters
    (:func:`map_and_clusters`), and warm it at once (:func:`_warm_worker`: umap's import and
    numba's cached functions, seconds that then overlap the embedding). A spawned process (never
    forked: the scan's process has torch's threads). Returns the executor; :func:`stop_worker`
    ends it."""
    global _WORKER
    if _WORKER is None:
        import multiprocessing
        import sys
        import types
        from concurrent.futures import ProcessPoolExecutor

        pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
        # A spawned process first imports the caller's main script again (multiprocessing's
        # preparation) unless that is a module run with -m. The worker needs nothing from it, and
        # a script's top level may not be importable twice (a Streamlit page run by AppTest, a
        # notebook): the process starts, at this first submit, behind a bare __main__.
        main = sys.modules.get("__main__")
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            pool.submit(_warm_worker)
        finally:
            if main is not None:
                sys.modules["__main__"] = main
        _WORKER = pool
    return _WORKER


def running_worker():
    """The executor :func:`start_worker` started in this process, or None."""
    return _WORKER


def stop_worker() -> None:
    """End the worker (its pending work is cancelled)."""
    global _WORKER
    if _WORKER is not None:
        _WORKER.shutdown(wait=True, cancel_futures=True)
        _WORKER = None


def map_and_clusters(
    embeddings: np.ndarray,
    *,
    seed: int = 0,
    graph: NeighbourGraph | None = None,
    cluster_method: str = "hdbscan",
    n_clusters: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`map_and_cluster_space` and the clusters found in its space
    (:func:`labelaudit.clustering.cluster_points`): ``(xy, space, clusters)``. What the worker
    computes beside the detectors; the same numbers as the two calls in the scan's own process."""
    from labelaudit.clustering import cluster_points

    xy, space = map_and_cluster_space(embeddings, seed=seed, graph=graph)
    clusters = cluster_points(
        space, method=cluster_method, n_clusters=n_clusters, seed=seed, graph=graph
    )
    return xy, space, clusters
