"""The scan: embeddings, a 2-D map, clusters and label-issue detection, computed once and cached.

:func:`scan` runs every step (each cached on its own in the workspace, so changing only the labels
re-uses the embeddings and the map) and stores the whole :class:`ScanResult` under the dataset's
content hash and the scan parameters. :func:`load_cached_scan` reads it back without importing
umap, numba, torch or sentence-transformers: that is what a page view calls.

Workspace artifacts (see :mod:`labelaudit.workspace`)::

    <text_hash>/embeddings-*.npy      float32 (N, D), per model; read memory-mapped
    <text_hash>/knn_indices-*.npy     the shared neighbour graph (N, 15), per embeddings,
    <text_hash>/knn_sims-*.npy        with knn_indices
    <text_hash>/map_xy-*.npy          float32 (N, 2), per embeddings and seed
    <text_hash>/cluster_space-*.npy   float32 (N, d), same key
    <text_hash>/clusters-*.npy        int64 (N,), per space, method, K, seed
    <content_hash>/scan_table-*.parquet, scan_clusters-*.parquet, scan_pred_probs-*.npy,
    <content_hash>/scan_meta-*.json   written last: its presence marks a complete scan
    <content_hash>/agreement_*        with annotations: the Annotators page's default report
                                      (:mod:`labelaudit.agreement.stored`)
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from typing import Any, TypedDict, Unpack

import numpy as np
import pandas as pd

from labelaudit import detect, typed_json
from labelaudit.dataset import ID, LABEL, SPLIT, Dataset
from labelaudit.detect import Detection, DetectionDetails
from labelaudit.detectors import registry
from labelaudit.engine import Engine
from labelaudit.errors import UsageError
from labelaudit.neighbours import (
    NeighbourGraph,
    cached_neighbour_graph,
    graph_key,
    load_stored_graph,
)
from labelaudit.progress import ProgressFn, no_progress
from labelaudit.workspace import Workspace, as_workspace

#: Bump when the scan's output changes for the same inputs: old cached scans are then ignored.
SCAN_VERSION = 6  # 4: typed detection details; 5: UMAP on the shared cosine graph; 6: clusters
# found on the 2-D map (one UMAP fit, not a second 10-D one)
#: Columns of ScanResult.table before the detection columns.
BASE_COLUMNS = ["id", "given_label", "split", "x", "y", "cluster"]


@dataclass
class ScanResult:
    """Everything the scan found, row-aligned with the dataset.

    - ``table``: N rows in dataset order; ``id``, ``given_label``, ``split``, ``x``, ``y``
      (float32 map coordinates), ``cluster`` (int, -1 = noise), then every column of
      :attr:`labelaudit.detect.Detection.table` (``label_issue_score``, ``suggested_label``, …).
    - ``embeddings``: float32 (N, D), L2-normalised.
    - ``clusters``: one row per cluster, see :func:`labelaudit.clustering.summarise_clusters`,
      plus ``mean_issue_score`` / ``issue_rate`` when detection provides them.
    - ``detection``: the detector output (its ``pred_probs`` and typed ``details`` read back
      exactly).
    - ``params``: the scan parameters; ``timings``: seconds per step (``load`` on a cached read).
    - ``neighbour_graph``: the k-NN graph every step shared (memory-mapped from the workspace on a
      cached read; None when it was not stored).
    """

    table: pd.DataFrame
    embeddings: np.ndarray
    clusters: pd.DataFrame
    detection: Detection | None
    params: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    neighbour_graph: NeighbourGraph | None = None

    @property
    def n(self) -> int:
        return len(self.table)


# --------------------------------------------------------------------------- keys
def embeddings_key(ds: Dataset, model: str | os.PathLike | None = None) -> str:
    """What the embeddings are: ``given:<digest>`` for precomputed ones, else the model's id (with
    the embedding backend after it when that is not torch:
    :func:`labelaudit.embed.embeddings_id`)."""
    if ds.given_embeddings_digest is not None:
        return f"given:{ds.given_embeddings_digest}"
    from labelaudit.embed import embeddings_id

    return embeddings_id(model)


class ScanSettings(TypedDict, total=False):
    """The options of :func:`scan` that key its stored result (the defaults are :func:`scan`'s)."""

    model: str | os.PathLike | None
    seed: int
    cluster_method: str
    n_clusters: int | None
    detectors: list[str] | None
    combiner: str


def scan_params(
    ds: Dataset,
    *,
    model: str | os.PathLike | None = None,
    seed: int = 0,
    cluster_method: str = "hdbscan",
    n_clusters: int | None = None,
    detectors: list[str] | None = None,
    combiner: str = "quality",
) -> dict[str, Any]:
    """The parameters a scan's cache entry is keyed by (with defaults resolved)."""
    from labelaudit.clustering import METHODS

    if cluster_method not in METHODS:
        raise UsageError(
            f"unknown clustering method '{cluster_method}'; choose one of {list(METHODS)}"
        )
    if n_clusters is not None and n_clusters < 1:
        raise UsageError(f"--n-clusters must be at least 1, got {n_clusters}")
    if cluster_method == "kmeans" and n_clusters is None:
        n_clusters = ds.k  # one cluster per class is the natural first look for label auditing
    k_clusters = None if cluster_method == "hdbscan" or n_clusters is None else int(n_clusters)
    return {
        "embeddings": embeddings_key(ds, model),
        "seed": int(seed),
        "cluster_method": cluster_method,
        "n_clusters": k_clusters,
        "detectors": sorted(detectors) if detectors else None,
        **({} if combiner == "rank_average" else {"combiner": combiner}),
        "version": SCAN_VERSION,
        "detect_version": getattr(detect, "VERSION", 0),
    }


# --------------------------------------------------------------------------- steps
def get_embeddings(
    ds: Dataset,
    *,
    workspace: Workspace | str | None = None,
    model: str | os.PathLike | None = None,
    progress: ProgressFn = no_progress,
    engine: Engine | None = None,
) -> np.ndarray:
    """float32 (N, D) L2-normalised embeddings of ``ds.texts``.

    ``ds.embeddings`` when the dataset came with them (not copied when already unit length); else
    computed with ``model`` (default: the bundled all-MiniLM-L6-v2) and cached in the workspace
    under ``ds.text_hash`` and the model, and returned memory-mapped from there (read-only).
    """
    from labelaudit.embed import embed_texts, normalise_rows

    if ds.embeddings is not None:
        progress("embedding", ds.n, ds.n)
        return normalise_rows(ds.embeddings)
    ws = as_workspace(workspace)

    def compute() -> np.ndarray:
        if engine is not None and engine.name != "local":
            return embed_texts(ds.texts, model=model, progress=progress, engine=engine)
        return embed_texts(ds.texts, model=model, progress=progress)

    if ws is None:
        return compute()
    key = {"model": embeddings_key(ds, model)}
    if ws.has(ds.text_hash, "embeddings", key):
        progress("embedding", ds.n, ds.n)
    return ws.cached(ds.text_hash, "embeddings", key, compute, mmap=True)


def _graph(
    ds: Dataset,
    emb: np.ndarray,
    params: dict,
    ws: Workspace | None,
    progress: ProgressFn,
    engine: Engine | None = None,
) -> NeighbourGraph:
    return cached_neighbour_graph(
        emb,
        workspace=ws,
        key=ds.text_hash,
        embeddings_key=params["embeddings"],
        seed=params["seed"],
        progress=progress,
        engine=engine,
    )


def _map_and_space(
    ds: Dataset,
    emb: np.ndarray,
    params: dict,
    ws: Workspace | None,
    progress: ProgressFn,
    graph: NeighbourGraph | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    from labelaudit import projection

    key, _ = _map_keys(params)
    if (
        ws is not None
        and ws.has(ds.text_hash, "map_xy", key)
        and ws.has(ds.text_hash, "cluster_space", key)
    ):
        progress("projection", 3, 3)
        return ws.load(ds.text_hash, "map_xy", key), ws.load(ds.text_hash, "cluster_space", key)
    xy, space = projection.map_and_cluster_space(
        emb, seed=params["seed"], progress=progress, graph=graph
    )
    if ws is not None:
        ws.save(ds.text_hash, "cluster_space", space, key)
        ws.save(ds.text_hash, "map_xy", xy, key)
    return xy, space


def _map_keys(params: dict) -> tuple[dict, dict]:
    """The workspace keys of the map / clustering space and of the clusters."""
    space_key = {k: params[k] for k in ("embeddings", "seed")} | {"version": SCAN_VERSION}
    cluster_key = {
        k: params[k] for k in ("embeddings", "seed", "cluster_method", "n_clusters", "version")
    }
    return space_key, cluster_key


def _submit_map(
    ds: Dataset,
    emb: np.ndarray,
    params: dict,
    ws: Workspace | None,
    graph: NeighbourGraph | None,
) -> Any:
    """The map and its clusters (:func:`labelaudit.projection.map_and_clusters`) submitted to the
    worker process, when one runs, the rows are at most ``WORKER_MAX_ROWS`` and the map is not
    stored yet; else None (computed here, in order)."""
    from labelaudit import projection

    worker = projection.running_worker()
    if worker is None or ds.n > projection.WORKER_MAX_ROWS:
        return None
    space_key, _ = _map_keys(params)
    if ws is not None and ws.has(ds.text_hash, "map_xy", space_key):
        return None
    try:
        return worker.submit(
            projection.map_and_clusters,
            np.array(emb, dtype=np.float32),  # a plain copy: a memory map does not travel
            seed=params["seed"],
            graph=graph,
            cluster_method=params["cluster_method"],
            n_clusters=params["n_clusters"],
        )
    except RuntimeError:  # the worker was shut down or broke: compute here
        return None


#: The detectors that read the training-dynamics runs
#: (:func:`labelaudit.dynamics.population_dynamics`).
DYNAMICS_DETECTORS = ("datamap", "forgetting", "aum")


def _claim(path: str) -> bool:
    """Take the work named by the file ``path``: True for the first process to ask, False after."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except (FileExistsError, FileNotFoundError):  # taken, or the scan is over (its folder gone)
        return False
    return True


def _if_claimed(claim: str, fn: Any, *args: Any) -> bool:
    """In the worker: ``fn(*args)`` unless the scan's process took the work first (its claim file
    exists): True when it ran here."""
    if not _claim(claim):
        return False
    fn(*args)
    return True


class _Beside:
    """Work queued in the worker that either process may do, whichever gets to it first: the worker
    when it is free before the scan's process reaches the step that reads it, else the scan's own
    process (the step then computes it, as in order, and the worker skips it). Both store it in
    the workspace under the same keys, so the result does not depend on who did it."""

    def __init__(self, claim: str, future: Any):
        self.claim, self.future = claim, future
        self.resolved = False

    def here(self) -> bool:
        """Called where the scan's process needs the work: True when it is to compute it itself
        (the worker had not started it), False when the worker did it (waited for; a run that
        failed there is left to the caller too, which finds nothing stored and computes it)."""
        if self.resolved:
            return False
        self.resolved = True
        if _claim(self.claim):
            return True
        with contextlib.suppress(Exception):
            return not self.future.result()
        return True


def _submit_beside(claims: str, name: str, fn: Any, *args: Any) -> _Beside | None:
    """``fn(*args)`` queued in the worker as work either process may do (:class:`_Beside`)."""
    from labelaudit import projection

    worker = projection.running_worker()
    if worker is None:
        return None
    claim = os.path.join(claims, name)
    try:
        return _Beside(claim, worker.submit(_if_claimed, claim, fn, *args))
    except RuntimeError:  # the worker was shut down or broke
        return None


def _population_runs(
    labels: np.ndarray,
    train: np.ndarray,
    emb: np.ndarray,
    n_classes: int,
    root: str,
    seed: int,
) -> None:
    """In the worker: the training-dynamics and AUM runs the dynamics detectors read
    (:func:`labelaudit.detectors.training_dynamics.context_dynamics` with AUM), stored in the
    workspace at ``root`` under the keys they look for; nothing is returned."""
    from labelaudit.dynamics import population_dynamics

    population_dynamics(
        labels,
        n_classes=n_classes,
        train=train,
        embeddings=emb,
        workspace=Workspace(root),
        seed=seed,
        with_aum=True,
    )


def _self_influence_run(x: np.ndarray, y: np.ndarray, n_classes: int, root: str) -> None:
    """In the worker: the influence head and the self-influence values the ``self_influence``
    detector reads (:func:`labelaudit.detectors.self_influence.detect_self_influence`: the same
    calls, keys and BLAS threads), stored in the workspace at ``root``."""
    from labelaudit import dynamics
    from labelaudit.influence import cached_model, cached_self_influence

    ws = Workspace(root)
    with dynamics.single_blas_thread():
        cached_self_influence(x, y, n_classes=n_classes, workspace=ws)
        cached_model(x, y, n_classes=n_classes, workspace=ws)


def _scan_detectors(detectors: list[str] | None) -> set[str]:
    return set(detectors or [s.name for s in registry.all_detectors().values() if s.default])


def _beside_ok(ds: Dataset, ws: Workspace | None) -> bool:
    from labelaudit import projection

    return (
        projection.running_worker() is not None
        and ws is not None
        and ds.n <= projection.WORKER_MAX_ROWS
    )


def _submit_dynamics(
    ds: Dataset,
    emb: np.ndarray,
    params: dict,
    ws: Workspace | None,
    detectors: list[str] | None,
    claims: str,
) -> _Beside | None:
    """The dynamics detectors' training runs queued in the worker (stored in ``ws``, where those
    detectors then read them; :class:`_Beside`), when a worker runs, there is a workspace, the
    dataset brings no dynamics of its own and a dynamics detector is among the scan's; else None."""
    from labelaudit.dynamics import training_population
    from labelaudit.neighbours import normalise_rows

    if not _beside_ok(ds, ws) or ds.dynamics is not None:
        return None
    if not _scan_detectors(detectors) & set(DYNAMICS_DETECTORS):
        return None
    assert ws is not None
    return _submit_beside(
        claims,
        "dynamics",
        _population_runs,
        ds.labels,
        training_population(ds),
        np.array(normalise_rows(emb), dtype=np.float32),  # what the detectors are given
        ds.k,
        str(ws.root),
        params["seed"],
    )


def _submit_self_influence(
    ds: Dataset, emb: np.ndarray, ws: Workspace | None, detectors: list[str] | None, claims: str
) -> _Beside | None:
    """The self-influence detector's head and values queued in the worker (:class:`_Beside`), when
    a worker runs, there is a workspace and the detector is among the scan's; else None."""
    from labelaudit.dynamics import training_population
    from labelaudit.neighbours import normalise_rows

    if not _beside_ok(ds, ws) or "self_influence" not in _scan_detectors(detectors):
        return None
    assert ws is not None
    train = training_population(ds)
    x = np.asarray(normalise_rows(emb), dtype=np.float32)  # what the detector is given
    return _submit_beside(
        claims,
        "self_influence",
        _self_influence_run,
        np.array(x if train.all() else x[train], dtype=np.float32),
        ds.labels[train],
        ds.k,
        str(ws.root),
    )


def _agreement_in_worker(root: str, content_hash: str) -> None:
    """In the worker: the Annotators page's report of the stored dataset, stored beside it."""
    ws = Workspace(root)
    _store_agreement(ws.load_dataset(content_hash), ws, no_progress)


def _submit_agreement(ds: Dataset, ws: Workspace | None, claims: str) -> _Beside | None:
    """The Annotators page's report (:func:`_store_agreement`) queued in the worker
    (:class:`_Beside`), when one runs, there is a workspace (the dataset is stored there) and the
    dataset has annotations."""
    if not _beside_ok(ds, ws) or ds.annotations is None or ds.annotations.empty:
        return None
    assert ws is not None
    return _submit_beside(claims, "agreement", _agreement_in_worker, str(ws.root), ds.content_hash)


def _waiting(progress: ProgressFn, beside: dict[str, _Beside | None]) -> ProgressFn:
    """``progress``, which settles the work queued beside (:class:`_Beside`) for the first step
    that reads it (``beside``: step name -> work; a step is reported just before it runs): the
    worker's result is waited for, or the step computes it here when the worker had not started
    it."""
    pending = {step: b for step, b in beside.items() if b is not None}

    def report(step: str, done: int, total: int) -> None:
        progress(step, done, total)
        b = pending.pop(step, None)
        if b is not None:
            b.here()

    return report


def _finish_map(
    beside: Any,
    ds: Dataset,
    emb: np.ndarray,
    params: dict,
    ws: Workspace | None,
    progress: ProgressFn,
    graph: NeighbourGraph | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Wait for the worker's map and clusters and store them as the in-order steps do (the same
    keys); when the worker failed, compute them here."""
    from concurrent.futures.process import BrokenProcessPool

    progress("projection", 0, 3)
    try:
        xy, space, cluster = beside.result()
    except BrokenProcessPool:  # the worker died (out of memory, killed): the same, here
        xy, space = _map_and_space(ds, emb, params, ws, progress, graph)
        return xy, space, _clusters(ds, space, params, ws, progress, graph)
    progress("projection", 3, 3)
    progress("clustering", 0, 1)
    cluster = np.asarray(cluster, dtype=np.int64)
    if ws is not None:
        space_key, cluster_key = _map_keys(params)
        ws.save(ds.text_hash, "cluster_space", space, space_key)
        ws.save(ds.text_hash, "map_xy", xy, space_key)
        ws.save(ds.text_hash, "clusters", cluster, cluster_key)
    progress("clustering", 1, 1)
    return xy, space, cluster


def _clusters(
    ds: Dataset,
    space: np.ndarray,
    params: dict,
    ws: Workspace | None,
    progress: ProgressFn,
    graph: NeighbourGraph | None = None,
) -> np.ndarray:
    from labelaudit.clustering import cluster_points

    _, key = _map_keys(params)
    progress("clustering", 0, 1)

    def compute() -> np.ndarray:
        return cluster_points(
            space,
            method=params["cluster_method"],
            n_clusters=params["n_clusters"],
            seed=params["seed"],
            graph=graph,
        )

    out = compute() if ws is None else ws.cached(ds.text_hash, "clusters", key, compute)
    progress("clustering", 1, 1)
    return np.asarray(out, dtype=np.int64)


def _add_issue_density(clusters: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """Per-cluster mean suspicion and flagged share: where the suspected errors concentrate."""
    g = table.groupby("cluster")
    if "label_issue_score" in table:
        clusters["mean_issue_score"] = (
            clusters["cluster"].map(g["label_issue_score"].mean()).astype(float)
        )
    if "is_label_issue" in table:
        clusters["issue_rate"] = clusters["cluster"].map(g["is_label_issue"].mean()).astype(float)
    return clusters


# --------------------------------------------------------------------------- public
def scan(
    ds: Dataset,
    *,
    workspace: Workspace | str | None = None,
    model: str | os.PathLike | None = None,
    seed: int = 0,
    cluster_method: str = "hdbscan",
    n_clusters: int | None = None,
    detectors: list[str] | None = None,
    combiner: str = "quality",
    progress: ProgressFn = no_progress,
    engine: str | Engine | None = None,
    ray_address: str | None = None,
    agreement: bool = True,
) -> ScanResult:
    """Embed, map, cluster and run label-issue detection on ``ds``; cached in ``workspace``.

    ``engine``: where the parallel parts run (:mod:`labelaudit.engine`): ``"local"`` (default, this
    process) or ``"ray"`` (a Ray cluster at ``ray_address`` / ``RAY_ADDRESS``, else a local Ray
    runtime). The engine is not part of the cache key: both write the same workspace artifacts.
    ``agreement``: also store the Annotators page's report when ``ds`` has annotations (the first
    pass, a sample, leaves it out).

    Progress steps: ``embedding`` (rows), ``neighbour graph`` (rows), ``projection`` (3 stages),
    ``clustering``, then those of
    :func:`labelaudit.detect.detect_label_issues`, then ``agreement`` when the dataset has
    annotations (the Annotators page's report, stored in the workspace). A repeat call with the
    same dataset and parameters reads the stored result (well under 2 s for 10k rows) and
    recomputes nothing.

    >>> res = scan(ds, workspace="ws", seed=0)          # doctest: +SKIP
    >>> res.table.columns[:6].tolist()                    # doctest: +SKIP
    ['id', 'given_label', 'split', 'x', 'y', 'cluster']
    """
    ws = as_workspace(workspace)
    params = scan_params(
        ds,
        model=model,
        seed=seed,
        cluster_method=cluster_method,
        n_clusters=n_clusters,
        detectors=detectors,
        combiner=combiner,
    )
    if ws is not None:
        # the dataset goes with its scan, so that `labelaudit report/export --workspace W` and the
        # app find it
        ws.save_dataset(ds)
        cached = _load(ds, ws, params)
        if cached is not None:
            if agreement:  # a scan stored before the report was part of it
                _store_agreement(ds, ws, progress)
            return cached
    from labelaudit.engine import get_engine

    eng = get_engine(engine, address=ray_address)
    try:
        return _scan(
            ds,
            ws,
            params,
            eng,
            model=model,
            seed=seed,
            detectors=detectors,
            combiner=combiner,
            progress=progress,
            agreement=agreement,
        )
    finally:
        if eng is not engine:  # made here from a name: release it (a local Ray runtime stops)
            eng.close()


def _scan(
    ds: Dataset,
    ws: Workspace | None,
    params: dict[str, Any],
    eng: Engine,
    *,
    model: str | os.PathLike | None,
    seed: int,
    detectors: list[str] | None,
    combiner: str,
    progress: ProgressFn,
    agreement: bool = True,
) -> ScanResult:
    from labelaudit.clustering import summarise_clusters

    timings: dict[str, float] = {}
    t0 = t = time.perf_counter()
    emb = get_embeddings(ds, workspace=ws, model=model, progress=progress, engine=eng)
    timings["embedding"] = time.perf_counter() - t
    t = time.perf_counter()
    graph = _graph(ds, emb, params, ws, progress, eng)
    timings["neighbour_graph"] = time.perf_counter() - t
    # With a worker process (labelaudit.projection.start_worker: the background job starts one),
    # the map and its clusters are computed there, beside the detectors (the longest piece that
    # cannot be split: first in its queue); then the training-dynamics runs, the self-influence
    # values and the Annotators report, each done by whichever process gets to it first
    # (_Beside). Without a worker, everything here, in order.
    import shutil
    import tempfile

    claims = tempfile.mkdtemp(prefix="labelaudit-claims-")
    dynamics_beside = influence_beside = agreement_beside = None
    try:
        beside = _submit_map(ds, emb, params, ws, graph)
        dynamics_beside = _submit_dynamics(ds, emb, params, ws, detectors, claims)
        influence_beside = _submit_self_influence(ds, emb, ws, detectors, claims)
        agreement_beside = _submit_agreement(ds, ws, claims) if agreement else None
        if beside is None:
            t = time.perf_counter()
            xy, space = _map_and_space(ds, emb, params, ws, progress, graph)
            timings["projection"] = time.perf_counter() - t
            t = time.perf_counter()
            cluster = _clusters(ds, space, params, ws, progress, graph)
            timings["clustering"] = time.perf_counter() - t
        t = time.perf_counter()
        waits = {f"detector: {name}": dynamics_beside for name in DYNAMICS_DETECTORS}
        waits["detector: self_influence"] = influence_beside
        detection = detect.detect_label_issues(
            ds,
            emb,
            workspace=ws,
            seed=seed,
            detectors=detectors,
            progress=_waiting(progress, waits),
            combiner=combiner,
            neighbour_graph=graph,
            engine=eng,
        )
        timings["detection"] = time.perf_counter() - t
        has_annotations = ds.annotations is not None and not ds.annotations.empty
        if agreement and ws is not None and has_annotations:
            # before the map: while the worker still fits it, the report is made here
            t = time.perf_counter()
            progress("agreement", 0, 1)
            if agreement_beside is not None:
                agreement_beside.here()  # done by the worker (waited for) or now, here
            _store_agreement(ds, ws, progress)
            progress("agreement", 1, 1)
            timings["agreement"] = time.perf_counter() - t
        if beside is not None:
            t = time.perf_counter()
            xy, space, cluster = _finish_map(beside, ds, emb, params, ws, progress, graph)
            timings["projection"] = time.perf_counter() - t  # what the scan waited for
            timings["clustering"] = 0.0
    finally:
        for b in (dynamics_beside, influence_beside, agreement_beside):
            if b is not None and not b.resolved:
                _claim(b.claim)  # not needed after all: the worker skips it
        shutil.rmtree(claims, ignore_errors=True)
    t = time.perf_counter()
    clusters = summarise_clusters(
        cluster, texts=ds.texts, labels=ds.label_names, ids=ds.ids, vectors=emb
    )
    timings["clustering"] += time.perf_counter() - t
    table = pd.DataFrame(
        {
            "id": ds.frame[ID].to_numpy(dtype=object),
            "given_label": ds.frame[LABEL].to_numpy(dtype=object),
            "split": ds.frame[SPLIT].to_numpy(dtype=object),
            "x": xy[:, 0].astype(np.float32),
            "y": xy[:, 1].astype(np.float32),
            "cluster": cluster,
        }
    )
    det = detection.table.reset_index(drop=True)
    extra = [c for c in det.columns if c not in BASE_COLUMNS]
    if len(det) == ds.n and extra:
        table = pd.concat([table, det[extra]], axis=1)
    clusters = _add_issue_density(clusters, table)
    timings["total"] = time.perf_counter() - t0
    result = ScanResult(
        table=table,
        embeddings=emb,
        clusters=clusters,
        detection=detection,
        params=params,
        timings=timings,
        neighbour_graph=graph,
    )
    if ws is not None:
        _store(ds, ws, result)
    return result


def _store_agreement(ds: Dataset, ws: Workspace, progress: ProgressFn) -> None:
    """The Annotators page's first view, stored with the scan (:mod:`labelaudit.agreement.stored`):
    rater agreement and consensus under its default settings, so that a page view computes nothing.
    Annotations that cannot be analysed (a DataError) leave it to the page, which says why."""
    from labelaudit.agreement.stored import (
        DEFAULT_SETTINGS,
        has_report,
        settings_params,
        stored_report,
    )
    from labelaudit.errors import DataError

    if ds.annotations is None or ds.annotations.empty:
        return
    if has_report(ws, ds.content_hash, settings_params(**DEFAULT_SETTINGS)):
        return
    progress("agreement", 0, 1)
    with contextlib.suppress(DataError, UsageError):
        stored_report(ws, ds)
    progress("agreement", 1, 1)


def load_cached_scan(
    ds: Dataset, *, workspace: Workspace | str, **settings: Unpack[ScanSettings]
) -> ScanResult | None:
    """The stored scan of ``ds`` run with ``settings`` (the cache-keying options of :func:`scan`,
    with its defaults), or None when it was never run. Fast: no umap.

    >>> load_cached_scan(ds, workspace="ws", seed=0)      # doctest: +SKIP
    """
    ws = as_workspace(workspace)
    assert ws is not None
    return _load(ds, ws, scan_params(ds, **settings))


# --------------------------------------------------------------------------- storage
def _store(ds: Dataset, ws: Workspace, res: ScanResult) -> None:
    key, p = ds.content_hash, res.params
    ws.save(key, "scan_table", res.table, p, ext="parquet")
    ws.save(key, "scan_clusters", res.clusters, p, ext="parquet")
    det = res.detection
    if det is not None and det.pred_probs is not None:
        ws.save(key, "scan_pred_probs", np.asarray(det.pred_probs), p)
    meta = {
        "params": p,
        "timings": res.timings,
        "n_rows": ds.n,
        "detection_columns": [] if det is None else [str(c) for c in det.table.columns],
        # Typed JSON: reads back exactly (arrays, dtypes, detector dataclasses); raises on anything
        # it cannot store rather than dropping it.
        "detection_details": None if det is None else typed_json.encode(det.details, "details"),
        "has_pred_probs": det is not None and det.pred_probs is not None,
    }
    ws.save(key, "scan_meta", meta, p, ext="json")  # last: marks the scan complete


def _load(ds: Dataset, ws: Workspace, params: dict[str, Any]) -> ScanResult | None:
    key = ds.content_hash
    if not ws.has(key, "scan_meta", params, ext="json"):
        return None
    t = time.perf_counter()
    meta = ws.load(key, "scan_meta", params, ext="json")
    table = ws.load(key, "scan_table", params, ext="parquet")
    clusters = ws.load(key, "scan_clusters", params, ext="parquet")
    if "representative_ids" in clusters:
        clusters["representative_ids"] = clusters["representative_ids"].map(list)
    if ds.embeddings is not None:
        from labelaudit.neighbours import normalise_rows

        emb = normalise_rows(ds.embeddings)
    else:
        emb_key = {"model": params["embeddings"]}
        if not ws.has(ds.text_hash, "embeddings", emb_key):
            return None  # the embeddings were deleted: rescan
        emb = ws.load(ds.text_hash, "embeddings", emb_key, mmap=True)
    graph = load_stored_graph(ws, ds.text_hash, graph_key(params["embeddings"], ds.n))
    pred_probs = ws.load(key, "scan_pred_probs", params) if meta.get("has_pred_probs") else None
    cols = [c for c in meta.get("detection_columns", []) if c in table.columns]
    stored = meta.get("detection_details")
    if stored is not None:
        registry.all_detectors()  # registers every detector's details class before decoding
    details = DetectionDetails() if stored is None else typed_json.decode(stored)
    detection = Detection(table=table[cols].copy(), pred_probs=pred_probs, details=details)
    timings = dict(meta.get("timings", {}))
    timings["load"] = time.perf_counter() - t
    return ScanResult(
        table=table,
        embeddings=emb,
        clusters=clusters,
        detection=detection,
        params=params,
        timings=timings,
        neighbour_graph=graph,
    )


# --------------------------------------------------------------------------- map sampling
#: Most points drawn on the map; beyond it a stratified sample is drawn (tables keep every row).
MAX_MAP_POINTS = 20_000


def map_sample(
    strata: np.ndarray,
    *,
    max_points: int = MAX_MAP_POINTS,
    min_per_stratum: int = 20,
    seed: int = 0,
) -> np.ndarray:
    """Row indices to draw (sorted int64): every row when N <= max_points, else a stratified sample.

    Each stratum (e.g. given label) keeps its share of ``max_points`` but at least
    ``min_per_stratum`` rows (or all it has), so small classes stay visible; the floors are paid for
    by the largest strata, so exactly ``max_points`` rows are drawn unless the floors alone need
    more. Deterministic for a seed.

    >>> rows = map_sample(np.repeat(["a", "b"], [30_000, 100]), max_points=1000)
    >>> len(rows), int((rows >= 30_000).sum())    # class "b" keeps 20 rows
    (1000, 20)
    """
    strata = np.asarray(strata)
    n = len(strata)
    if n <= max_points:
        return np.arange(n, dtype=np.int64)
    rng = np.random.default_rng(seed)
    values, inverse, counts = np.unique(strata, return_inverse=True, return_counts=True)
    floor = np.minimum(counts, min_per_stratum)
    quota = np.maximum(np.floor(counts * max_points / n).astype(np.int64), floor)
    # Settle the difference to max_points on the largest strata first.
    diff = max_points - int(quota.sum())
    for s in np.argsort(-counts, kind="stable"):
        if diff == 0:
            break
        step = (
            min(diff, int(counts[s] - quota[s]))
            if diff > 0
            else -min(-diff, int(quota[s] - floor[s]))
        )
        quota[s] += step
        diff -= step
    picked = [
        rng.choice(np.flatnonzero(inverse == s), size=int(quota[s]), replace=False)
        for s in range(len(values))
    ]
    return np.sort(np.concatenate(picked)).astype(np.int64)
