"""The map beside the detectors (issue 16): fitted in a process of its own, the same numbers.

The background job starts :func:`labelaudit.projection.start_worker`; the scan then hands its map
and clusters to that process and runs the detectors meanwhile. UMAP (real, seeded) in the worker
must give exactly what it gives in the scan's own process, and the scan must store the same table.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from labelaudit import projection, scanning
from labelaudit.io import load_dataset
from labelaudit.neighbours import build_neighbour_graph
from labelaudit.scanning import load_cached_scan, scan
from labelaudit.workspace import Workspace


def blobs(n: int = 600, d: int = 16, k: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``k`` well separated unit-norm blobs of ``n`` rows in ``d`` dimensions, and their labels."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d)) * 4
    labels = np.arange(n) % k
    x = (centres[labels] + rng.normal(size=(n, d))).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True), labels


@pytest.fixture
def worker():
    w = projection.start_worker()
    yield w
    projection.stop_worker()
    assert projection.running_worker() is None


def test_the_workers_map_and_clusters_are_the_ones_computed_here(worker):
    x, _ = blobs()
    graph = build_neighbour_graph(x, k=14, seed=0)
    here = projection.map_and_clusters(x, seed=0, graph=graph)
    there = worker.submit(projection.map_and_clusters, x, seed=0, graph=graph).result()
    assert projection.start_worker() is worker  # one per process
    for a, b in zip(here, there, strict=True):
        np.testing.assert_array_equal(a, b)
    assert here[0].shape == (600, 2) and len(np.unique(here[2][here[2] >= 0])) >= 2


def _dataset():
    x, labels = blobs()
    df = pd.DataFrame(
        {"id": [f"r{i}" for i in range(len(x))], "text": [f"t{i}" for i in range(len(x))]}
    )
    df["label"] = np.array(["a", "b", "c", "d"])[labels]
    ds = load_dataset(df)
    ds.embeddings = x
    return ds


def test_a_scan_with_the_worker_stores_what_a_scan_without_it_stores(tmp_path, monkeypatch):
    ds = _dataset()
    steps: list[str] = []
    alone = scan(ds, workspace=Workspace(tmp_path / "a"), detectors=["knn"])
    projection.start_worker()
    try:
        # the map must come from the worker: computing it in this process fails the test
        def not_here(*a, **kw):
            raise AssertionError("the map was computed in the scan's process")

        monkeypatch.setattr(projection, "map_and_cluster_space", not_here)
        ws = Workspace(tmp_path / "b")
        beside = scan(ds, workspace=ws, detectors=["knn"], progress=lambda s, d, t: steps.append(s))
    finally:
        projection.stop_worker()
    pd.testing.assert_frame_equal(alone.table, beside.table)
    pd.testing.assert_frame_equal(alone.clusters, beside.clusters)
    assert {"projection", "clustering", "detector: knn"} <= set(steps)
    again = load_cached_scan(ds, workspace=ws, detectors=["knn"])
    assert again is not None
    pd.testing.assert_frame_equal(again.table, beside.table)


def test_without_a_worker_the_scan_maps_in_order(tmp_path):
    assert projection.running_worker() is None
    steps: list[str] = []
    scan(
        _dataset(),
        workspace=Workspace(tmp_path / "ws"),
        detectors=["knn"],
        progress=lambda s, d, t: steps.append(s),
    )
    order = list(dict.fromkeys(steps))
    assert order.index("clustering") < order.index("detector: knn")


def test_a_dead_worker_leaves_the_map_to_the_scans_process(tmp_path):
    ds = _dataset()
    w = projection.start_worker()
    try:
        w.submit(_exit).exception()  # the worker process dies: its pool is broken
        res = scan(ds, workspace=Workspace(tmp_path / "ws"), detectors=["knn"])
    finally:
        projection.stop_worker()
    alone = scan(ds, workspace=Workspace(tmp_path / "a"), detectors=["knn"])
    pd.testing.assert_frame_equal(alone.table, res.table)


def _exit() -> None:
    import os

    os._exit(1)


def test_the_worker_is_skipped_above_its_row_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(projection, "WORKER_MAX_ROWS", 100)
    projection.start_worker()
    try:
        ds = _dataset()
        assert scanning._submit_map(ds, ds.embeddings, scanning.scan_params(ds), None, None) is None
    finally:
        projection.stop_worker()


def _worker_first(monkeypatch) -> None:
    """The work queued beside (scanning._Beside) is done by the worker: the scan waits for each
    piece as it is queued, so the scan's process never gets to it first."""
    inner = scanning._submit_beside

    def waiting(*a, **kw):
        b = inner(*a, **kw)
        if b is not None:
            assert b.future.result() is True  # the worker ran it
        return b

    monkeypatch.setattr(scanning, "_submit_beside", waiting)


def _here_first(monkeypatch) -> list:
    """The scan's process takes every piece queued beside before the worker can: the worker skips
    them (its results, False, are checked by the caller) and the steps compute them in order."""
    inner = scanning._submit_beside
    made: list = []

    def claimed(claims, name, fn, *args):
        assert scanning._claim(os.path.join(claims, name))
        b = inner(claims, name, fn, *args)
        made.append(b)
        return b

    monkeypatch.setattr(scanning, "_submit_beside", claimed)
    return made


DYNAMICS_AND_INFLUENCE = ["datamap", "forgetting", "aum", "self_influence", "knn"]


def _not_here(*a, **kw):
    raise AssertionError("trained in the scan's process, not in the worker")


def test_the_dynamics_and_influence_runs_come_from_the_worker_and_equal_those_trained_here(
    tmp_path, monkeypatch
):
    from labelaudit import dynamics, influence

    ds = _dataset()
    alone = scan(ds, workspace=Workspace(tmp_path / "a"), detectors=DYNAMICS_AND_INFLUENCE)
    dynamics._MEMO.clear()
    projection.start_worker()
    try:
        _worker_first(monkeypatch)
        # the worker trains them (its own process, not patched) and stores them in the workspace
        monkeypatch.setattr(dynamics, "train_dynamics", _not_here)
        monkeypatch.setattr(influence, "fit_softmax_head", _not_here)
        beside = scan(ds, workspace=Workspace(tmp_path / "b"), detectors=DYNAMICS_AND_INFLUENCE)
    finally:
        projection.stop_worker()
    pd.testing.assert_frame_equal(alone.table, beside.table)
    for name in ("datamap", "forgetting", "aum", "self_influence"):
        np.testing.assert_array_equal(
            alone.table[f"score_{name}"].to_numpy(), beside.table[f"score_{name}"].to_numpy()
        )


def test_work_the_scan_reaches_first_is_done_there_and_skipped_by_the_worker(tmp_path, monkeypatch):
    from labelaudit import dynamics

    ds = _dataset()
    alone = scan(ds, workspace=Workspace(tmp_path / "a"), detectors=DYNAMICS_AND_INFLUENCE)
    dynamics._MEMO.clear()
    projection.start_worker()
    try:
        made = _here_first(monkeypatch)
        trained: list[int] = []
        inner = dynamics.train_dynamics

        def counted(*a, **kw):
            trained.append(1)
            return inner(*a, **kw)

        monkeypatch.setattr(dynamics, "train_dynamics", counted)
        here = scan(ds, workspace=Workspace(tmp_path / "b"), detectors=DYNAMICS_AND_INFLUENCE)
    finally:
        projection.stop_worker()
    assert len(made) == 2 and all(b.future.result() is False for b in made)  # skipped there
    assert trained  # trained in this process
    pd.testing.assert_frame_equal(alone.table, here.table)


def _annotated():
    x, labels = blobs()
    names = np.array(["a", "b", "c", "d"])
    ids = [f"r{i}" for i in range(len(x))]
    df = pd.DataFrame({"id": ids, "text": [f"t{i}" for i in range(len(x))], "label": names[labels]})
    rng = np.random.default_rng(1)
    ann = pd.DataFrame(
        [
            (
                ids[i],
                f"rater{a}",
                names[labels[i]] if rng.random() < 0.8 else names[rng.integers(4)],
            )
            for i in range(120)
            for a in range(3)
        ],
        columns=["item_id", "annotator_id", "label"],
    )
    ds = load_dataset(df, annotations=ann)
    ds.embeddings = x
    return ds


def test_the_annotators_report_is_stored_by_the_worker_as_it_is_here(tmp_path, monkeypatch):
    from labelaudit.agreement import stored

    ds = _annotated()
    ws_a, ws_b = Workspace(tmp_path / "a"), Workspace(tmp_path / "b")
    scan(ds, workspace=ws_a, detectors=["knn"])
    projection.start_worker()
    try:

        def not_here(*a, **kw):
            raise AssertionError("the report was computed in the scan's process")

        _worker_first(monkeypatch)
        monkeypatch.setattr(stored, "compute_report", not_here)
        steps: list[str] = []
        scan(ds, workspace=ws_b, detectors=["knn"], progress=lambda s, d, t: steps.append(s))
    finally:
        projection.stop_worker()
    monkeypatch.undo()
    params = stored.settings_params(**stored.DEFAULT_SETTINGS)
    a, b = stored.load_report(ws_a, ds, params), stored.load_report(ws_b, ds, params)
    assert a is not None and b is not None and "agreement" in steps
    pd.testing.assert_frame_equal(a.items, b.items)


def test_the_worker_starts_when_the_main_script_cannot_be_imported_again(tmp_path, monkeypatch):
    import sys
    import types

    script = tmp_path / "page.py"
    script.write_text("raise AssertionError('a main script imported twice')\n")
    main = types.ModuleType("__main__")
    main.__file__ = str(script)
    main.__spec__ = None
    monkeypatch.setitem(sys.modules, "__main__", main)
    try:
        w = projection.start_worker()
        assert w.submit(abs, -3).result() == 3
    finally:
        projection.stop_worker()
    assert sys.modules["__main__"] is main


def test_the_job_starts_the_worker_on_two_cores_unless_told_not_to(monkeypatch):
    from labelaudit import jobs

    monkeypatch.setenv("LABELAUDIT_CPU_WORKERS", "2")
    monkeypatch.delenv(jobs.MAP_WORKER_ENV, raising=False)
    assert jobs.map_worker_wanted()
    monkeypatch.setenv(jobs.MAP_WORKER_ENV, "0")
    assert not jobs.map_worker_wanted()
    monkeypatch.delenv(jobs.MAP_WORKER_ENV)
    monkeypatch.setenv("LABELAUDIT_CPU_WORKERS", "1")
    assert not jobs.map_worker_wanted()


def _job_dataset():
    """800 rows with their embeddings and an annotations table: big enough for a first pass of
    200 rows (LABELAUDIT_FIRST_PASS_ROWS), every default detector and the Annotators report."""
    x, labels = blobs(n=800, k=4, seed=3)
    names = np.array(["a", "b", "c", "d"])
    rng = np.random.default_rng(2)
    flip = rng.random(len(x)) < 0.08  # some wrong labels, for the detectors to find
    given = np.where(flip, (labels + 1) % 4, labels)
    ids = [f"r{i}" for i in range(len(x))]
    df = pd.DataFrame(
        {
            "id": ids,
            "text": [f"t{i}" for i in range(len(x))],
            "label": names[given],
            "split": ["test" if i % 5 == 0 else "train" for i in range(len(x))],
        }
    )
    ann = pd.DataFrame(
        [(ids[i], f"rater{a}", names[labels[i]]) for i in range(0, 300, 3) for a in range(3)],
        columns=["item_id", "annotator_id", "label"],
    )
    ds = load_dataset(df, annotations=ann)
    ds.embeddings = x
    return ds


def test_the_job_with_the_worker_stores_exactly_what_the_job_in_order_stores(tmp_path, monkeypatch):
    # The agreement test of the scheduling (issue 16): the first pass beside the embedding, the
    # map, the dynamics and influence runs and the report beside the detectors change where the
    # work runs, never a score, a flag or a coordinate.
    from labelaudit import dynamics, first_pass, jobs
    from labelaudit.agreement import stored

    monkeypatch.setenv(first_pass.ROWS_ENV, "200")
    monkeypatch.setenv(jobs.RUNNER_ENV, "inline")
    ds = _job_dataset()
    options = {"cluster_method": "hdbscan", "n_clusters": None, "seed": 0}
    runs = {}
    for name, worker in (("in order", False), ("with the worker", True)):
        ws = Workspace(tmp_path / name.replace(" ", "_"))
        ws.save_dataset(ds)
        dynamics._MEMO.clear()
        assert jobs.run_job(str(ws.root), ds.content_hash, options, worker=worker) == 0
        assert projection.running_worker() is None  # the job stopped its worker
        st = jobs.read_status(ws, ds, options)
        assert st is not None and st.state == jobs.COMPLETE and st.first_pass
        assert bool(st.beside) is worker  # the first pass's scan ran in the worker
        runs[name] = (ws, load_cached_scan(ds, workspace=ws, **options))
    (ws_a, a), (ws_b, b) = runs["in order"], runs["with the worker"]
    assert a is not None and b is not None
    pd.testing.assert_frame_equal(a.table, b.table)  # scores, flags, map, clusters: bit for bit
    pd.testing.assert_frame_equal(a.clusters, b.clusters)
    np.testing.assert_array_equal(a.detection.pred_probs, b.detection.pred_probs)
    assert a.detection.details.detectors == b.detection.details.detectors
    assert {"datamap", "aum", "incv", "self_influence"} <= set(a.detection.details.detectors)
    fa, fb = (first_pass.load_first_pass(w, ds, options) for w in (ws_a, ws_b))
    assert fa is not None and fb is not None
    pd.testing.assert_frame_equal(fa.result.table, fb.result.table)
    params = stored.settings_params(**stored.DEFAULT_SETTINGS)
    ra, rb = stored.load_report(ws_a, ds, params), stored.load_report(ws_b, ds, params)
    assert ra is not None and rb is not None
    pd.testing.assert_frame_equal(ra.items, rb.items)
