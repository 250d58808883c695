"""The shared neighbour graph: exact below the threshold, IVF above it (HNSW on request; recall
against exact),
exact similarities, stored memory-mapped, reused; placement and cluster votes through the graph."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from labelaudit import clustering, neighbours
from labelaudit.dataset import sha256_of_array
from labelaudit.detectors.base import DetectionContext
from labelaudit.detectors.near_duplicates import NEAR_DUPLICATE_COSINE, duplicate_partners
from labelaudit.neighbours import (
    NeighbourGraph,
    build_neighbour_graph,
    cached_neighbour_graph,
    choose_method,
    exact_neighbours,
    normalise_rows,
)
from labelaudit.projection import fit_sample, place_by_graph
from labelaudit.workspace import Workspace


def clustered(n: int, d: int = 64, blobs: int = 20, noise: float = 0.8, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((blobs, d)).astype(np.float32)
    which = rng.integers(0, blobs, n)
    x = centres[which] + noise * rng.standard_normal((n, d)).astype(np.float32)
    return normalise_rows(x), which


def test_auto_is_exact_up_to_the_threshold_then_ivf():
    assert choose_method(neighbours.EXACT_MAX_ROWS) == "exact"
    assert choose_method(neighbours.EXACT_MAX_ROWS + 1) == "ivf"
    assert choose_method(10, "hnsw") == "hnsw"
    assert choose_method(10, "ivf") == "ivf"
    with pytest.raises(ValueError, match="unknown neighbour search"):
        choose_method(10, "annoy")


def test_hnsw_recall_against_exact_and_exact_similarities():
    x, _ = clustered(6000, d=384, blobs=50)
    exact = build_neighbour_graph(x, k=10, method="exact")
    approx = build_neighbour_graph(x, k=10, method="hnsw", seed=0)
    assert approx.method == "hnsw" and approx.indices.shape == (6000, 10)
    assert approx.recall(exact, 10) >= 0.95
    # never the row itself, sorted by decreasing similarity, similarities are the true cosines
    assert not (approx.indices == np.arange(6000)[:, None]).any()
    assert (np.diff(approx.similarities, axis=1) <= 1e-6).all()
    true = np.einsum("ij,ikj->ik", x, x[approx.indices])
    np.testing.assert_allclose(approx.similarities, true, atol=1e-5)


def test_ivf_recall_against_exact_and_exact_similarities():
    x, _ = clustered(6000, d=384, blobs=50)
    exact = build_neighbour_graph(x, k=10, method="exact")
    approx = build_neighbour_graph(x, k=10, method="ivf", seed=0)
    assert approx.method == "ivf" and approx.indices.shape == (6000, 10)
    assert approx.recall(exact, 10) >= 0.95
    assert not (approx.indices == np.arange(6000)[:, None]).any()
    assert (approx.indices >= 0).all()
    assert (np.diff(approx.similarities, axis=1) <= 1e-6).all()
    true = np.einsum("ij,ikj->ik", x, x[approx.indices])
    np.testing.assert_allclose(approx.similarities, true, atol=1e-5)
    # the same graph again (seeded cells): stored graphs do not change between runs
    again = build_neighbour_graph(x, k=10, method="ivf", seed=0)
    np.testing.assert_array_equal(again.indices, approx.indices)


def test_ivf_searches_that_come_back_short_are_searched_exactly():
    # 2,000 rows in 500 cells, one probed: a cell holds ~4 rows, so most searches for 8 + 1
    # candidates return empty slots (-1); those rows get their exact neighbours, never a -1
    x, _ = clustered(2000, d=32, blobs=10, noise=0.5, seed=8)
    index = neighbours.ivf_index(x, seed=0, cells=500, nprobe=1, num_threads=1)
    raw = index.search(x, 9)
    short = (raw < 0).any(axis=1)
    assert short.sum() > 500  # the situation the repair is for
    rows, sims = neighbours.query_ivf(index, x, 0, 2000, 8, num_threads=1)
    exact, exact_sims = exact_neighbours(x, k=8)
    np.testing.assert_array_equal(rows[short], exact[short])
    np.testing.assert_allclose(sims[short], exact_sims[short], atol=1e-6)
    assert (rows >= 0).all() and not (rows == np.arange(2000)[:, None]).any()


def test_a_missing_faiss_is_named_with_the_install_command(monkeypatch):
    import sys

    from labelaudit.errors import UsageError

    monkeypatch.setitem(sys.modules, "faiss", None)  # import faiss raises ImportError
    x, _ = clustered(50)
    with pytest.raises(
        UsageError, match="faiss-cpu, which is not installed.*pip install faiss-cpu"
    ):
        build_neighbour_graph(x, k=3, method="ivf")


def test_ivf_index_survives_pickling_with_the_same_graph():
    # the Ray engine broadcasts the index through the object store (pickled)
    import pickle

    x, _ = clustered(3000, d=48)
    index = neighbours.ivf_index(x, seed=0, nprobe=3, num_threads=1)
    back = pickle.loads(pickle.dumps(index))
    assert (back.cells, len(back), back.nprobe) == (index.cells, 3000, 3)
    a = neighbours.graph_from_index(index, x, 10, num_threads=1)
    b = neighbours.graph_from_index(back, x, 10, num_threads=1)
    np.testing.assert_array_equal(a[0], b[0])


def test_a_weak_ivf_index_gives_the_exact_graphs_classes_after_the_repairs():
    # classes split over many cells and one cell probed: rows at a cell's edge miss neighbours
    # of their class; the island repair finds the rows whose neighbours are far and redoes them
    rng = np.random.default_rng(9)
    centres = rng.standard_normal((30, 256))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    which = rng.integers(0, 30, 6000)
    x = normalise_rows(
        (centres[which] + 0.09 * rng.standard_normal((6000, 256))).astype(np.float32)
    )
    exact, _ = exact_neighbours(x, k=10)
    weak = {"cells": 300, "nprobe": 1, "num_threads": 1}
    raw, _ = neighbours.ivf_neighbours(x, k=10, island_gap=None, **weak)
    full, _ = neighbours.ivf_neighbours(x, k=10, **weak)
    g_raw, g_full = NeighbourGraph(raw, raw * 0.0), NeighbourGraph(full, full * 0.0)
    ex = NeighbourGraph(exact, exact * 0.0)
    assert g_raw.recall(ex) < 0.9  # what the repairs are for
    assert g_full.recall(ex) >= g_raw.recall(ex)
    assert ((which[full] != which[:, None]).sum(axis=1) > 5).sum() <= 2


def test_recall_is_measured_not_assumed():
    x, _ = clustered(500)
    exact = build_neighbour_graph(x, k=5)
    wrong = NeighbourGraph(np.roll(exact.indices, 1, axis=0), exact.similarities)
    assert exact.recall(exact) == 1.0
    assert wrong.recall(exact) < 0.5


def test_exact_graph_matches_brute_force():
    x, _ = clustered(700, d=16)
    rows, sims = exact_neighbours(x, k=7)
    s = x @ x.T
    np.fill_diagonal(s, -np.inf)
    np.testing.assert_allclose(sims, -np.sort(-s, axis=1)[:, :7], atol=1e-6)
    np.testing.assert_allclose(np.take_along_axis(s, rows, axis=1), sims, atol=1e-6)


@pytest.mark.parametrize("method", ["ivf", "hnsw"])
def test_near_duplicates_reported_only_above_the_true_cosine_on_the_approximate_graph(method):
    x, _ = clustered(3000, d=32, noise=0.3)
    x[100] = x[200]  # an exact embedding duplicate
    x[300] = normalise_rows(x[301:302] + 0.01)[0]
    graph = build_neighbour_graph(x, k=10, method=method)
    ctx = DetectionContext(
        labels=np.zeros(3000, dtype=np.int64), n_classes=2, embeddings=x, neighbour_graph=graph
    )
    partners = duplicate_partners(ctx)
    assert 200 in partners[100].tolist() and 301 in partners[300].tolist()
    for r, p in partners.items():
        assert (x[p] @ x[r] >= NEAR_DUPLICATE_COSINE - 1e-6).all()


def test_cached_graph_is_stored_memory_mapped_and_reused(tmp_path, monkeypatch):
    ws = Workspace(tmp_path)
    x, _ = clustered(400)
    g = cached_neighbour_graph(x, workspace=ws, key="t", embeddings_key="e", k=6)
    calls = []
    monkeypatch.setattr(
        neighbours, "build_neighbour_graph", lambda *a, **k: calls.append(1) or None
    )
    again = cached_neighbour_graph(x, workspace=ws, key="t", embeddings_key="e", k=6)
    assert calls == []
    assert isinstance(again.indices, np.memmap) and isinstance(again.similarities, np.memmap)
    np.testing.assert_array_equal(again.indices, g.indices)


def test_normalise_rows_does_not_copy_unit_memmaps(tmp_path):
    x, _ = clustered(300)
    p = tmp_path / "e.npy"
    np.save(p, x)
    m = np.load(p, mmap_mode="r")
    assert np.shares_memory(normalise_rows(m), m)  # a view of the map, not a copy
    raw = np.ones((3, 4), dtype=np.float32)
    out = normalise_rows(raw)
    assert out is not raw and np.allclose(np.linalg.norm(out, axis=1), 1)
    zeros = normalise_rows(np.zeros((2, 3)))
    assert not zeros.any()


def test_array_hash_in_blocks_equals_the_whole_bytes():
    a = np.random.default_rng(0).standard_normal((150_000, 3)).astype(np.float32)
    assert sha256_of_array(a).hexdigest() == hashlib.sha256(a.tobytes()).hexdigest()
    strided = a[:, :2]
    assert sha256_of_array(strided).hexdigest() == hashlib.sha256(strided.tobytes()).hexdigest()


def test_umap_knn_puts_each_row_first_at_distance_zero():
    x, _ = clustered(200)
    g = build_neighbour_graph(x, k=14)
    idx, dist, index = g.umap_knn(15)
    assert idx.shape == (200, 15) and index is None
    assert (idx[:, 0] == np.arange(200)).all() and (dist[:, 0] == 0).all()
    np.testing.assert_allclose(dist[:, 1:], 1 - g.similarities, atol=1e-6)
    with pytest.raises(ValueError, match="holds 14"):
        g.umap_knn(20)


def test_place_by_graph_puts_rows_among_their_neighbours():
    x, which = clustered(3000, d=16, blobs=5, noise=0.3)
    g = build_neighbour_graph(x, k=10)
    sample = fit_sample(3000, 300, seed=0)
    coords = np.eye(5, dtype=np.float32)[which[sample]]  # one-hot of the blob as a "map"
    placed = place_by_graph(coords, sample, g)
    np.testing.assert_array_equal(placed[sample], coords)
    assert (placed.argmax(axis=1) == which).mean() > 0.99


def test_clustering_past_the_fit_sample_assigns_every_row_by_its_neighbours():
    x, which = clustered(4000, d=8, blobs=4, noise=0.15, seed=3)
    g = build_neighbour_graph(x, k=10)
    out = clustering.cluster_points(x, graph=g, fit_max_rows=1000, seed=0)
    assert out.shape == (4000,)
    # every blob is (mostly) one cluster
    agree = pd.crosstab(which, out).max(axis=1).sum() / 4000
    assert agree > 0.9
    full = clustering.cluster_points(x, seed=0)
    assert pd.crosstab(which, full).max(axis=1).sum() / 4000 > 0.9


def test_vote_by_graph_majority_and_unreachable_rows_are_noise():
    g = NeighbourGraph(
        np.array([[1, 2], [0, 2], [0, 1], [4, 4], [3, 3]]),
        np.array([[0.9, 0.8], [0.9, 0.5], [0.8, 0.5], [0.9, 0.9], [0.9, 0.9]], dtype=np.float32),
    )
    out = clustering.vote_by_graph(np.array([7, 7]), np.array([0, 1]), g)
    assert out.tolist() == [7, 7, 7, -1, -1]


def test_ctfidf_groups_rows_in_one_pass_like_per_cluster_joins():
    texts = ["card lost", "lost my card", "refund please", "want a refund", "noise here"]
    cl = np.array([0, 0, 1, 1, -1])
    kw = clustering.ctfidf_keywords(texts, cl, n_keywords=2)
    assert "card" in kw[0] and "refund" in kw[1]
    summary = clustering.summarise_clusters(
        cl, texts=texts, labels=list("aabbc"), ids=list("vwxyz"), vectors=np.eye(5)
    )
    assert summary["cluster"].tolist() == [0, 1, -1]
    assert summary["size"].tolist() == [2, 2, 1]
    assert summary["representative_ids"].tolist() == [["v", "w"], ["x", "y"], ["z"]]


def test_spread_over_graph_reads_only_rows_known_before_each_pass():
    # a chain 0 - 1 - 2 - 3: one hop per pass, so after one pass only row 1 knows a value
    g = NeighbourGraph(
        np.array([[1], [0], [1], [2]]), np.array([[0.9], [0.9], [0.9], [0.9]], dtype=np.float32)
    )
    seen = []

    def fill(rows, nb, w):
        seen.append(rows.tolist())
        return w.sum(axis=1) > 0

    done = neighbours.spread_over_graph(g, np.array([0]), fill, passes=1)
    assert done.tolist() == [True, True, False, False] and seen == [[1, 2, 3]]
    done = neighbours.spread_over_graph(g, np.array([0]), lambda r, nb, w: w.sum(axis=1) > 0)
    assert done.all()
    # a pass that fills nothing stops the loop (no wasted passes)
    calls = []
    neighbours.spread_over_graph(
        g, np.array([3]), lambda r, nb, w: calls.append(1) or np.zeros(len(r), bool), passes=5
    )
    assert len(calls) == 1


def test_card_neighbours_come_from_the_graph_without_reading_the_embeddings():
    x, _ = clustered(2000, d=32)
    g = build_neighbour_graph(x, k=8)
    rows, sims = neighbours.nearest_neighbours(None, 17, k=5, graph=g)
    exact_rows, exact_sims = neighbours.nearest_neighbours(x, 17, k=5)
    np.testing.assert_array_equal(rows, exact_rows)
    np.testing.assert_allclose(sims, exact_sims, atol=1e-6)
    # more neighbours than the graph holds: the exact search over the embeddings
    assert len(neighbours.nearest_neighbours(x, 17, k=12, graph=g)[0]) == 12
    with pytest.raises(ValueError, match="need the embeddings"):
        neighbours.nearest_neighbours(None, 17, k=12, graph=g)
    # the exact search gives cosines also for rows that are not unit length (no normalised copy)
    r, s = neighbours.nearest_neighbours(x * 3.0, 17, k=5)
    np.testing.assert_array_equal(r, exact_rows)
    np.testing.assert_allclose(s, exact_sims, atol=1e-6)


def test_card_evidence_reads_the_scan_graph(monkeypatch):
    from labelaudit.io import load_dataset
    from labelaudit.review import queue

    x, _ = clustered(300, d=16)
    frame = pd.DataFrame({"text": [f"t{i}" for i in range(300)], "label": ["a", "b"] * 150})
    ds = load_dataset(frame)
    g = build_neighbour_graph(x, k=6)
    ev = queue.item_evidence(ds, ds.frame["id"].iloc[3], embeddings=None, neighbour_graph=g)
    assert ev.neighbours["id"].tolist() == ds.frame["id"].to_numpy()[g.indices[3, :5]].tolist()


def test_companion_arrays_are_hashed_streamed_with_the_same_digest(tmp_path, monkeypatch):
    import tracemalloc

    from labelaudit import hashing

    x = np.random.default_rng(0).standard_normal((40_000, 64)).astype(np.float32)
    p = tmp_path / "e.npy"
    np.save(p, x)
    m = np.load(p, mmap_mode="r")

    class Whole(hashing.CanonicalHash):  # the old encoding: raw(a.tobytes()) of the whole array
        def raw_array(self, a):
            self.raw(np.ascontiguousarray(a).tobytes())

    monkeypatch.setattr(hashing, "ARRAY_BLOCK_BYTES", 1 << 16)
    for arr in (m, x[:, ::3], np.asfortranarray(x[:500]), np.zeros((0, 4)), np.float64(2.5)):
        a, b = hashing.CanonicalHash("x"), Whole("x")
        a.array(arr)
        b.array(arr)
        assert a.hexdigest() == b.hexdigest()
    tracemalloc.start()
    h = hashing.CanonicalHash("x")
    h.array(m)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < m.nbytes / 20  # blocks of 64 KiB, not the 10 MB array


def test_hnsw_rows_whose_search_got_lost_are_searched_exactly():
    # a deliberately poor index (2 links, tiny candidate lists) loses many searches in 20 classes
    x, _ = clustered(4000, d=64, blobs=20, noise=0.5, seed=4)
    index = neighbours.hnsw_index(x, seed=0, m=2, ef_construction=8, num_threads=1)
    index.set_ef(6)
    raw, _ = index.knn_query(x, k=6, num_threads=1)
    lost = ~(raw == np.arange(4000)[:, None]).any(axis=1)
    assert lost.sum() > 20  # the situation the repair is for
    rows, sims = neighbours.query_hnsw(index, x, 0, 4000, 5, ef=6, num_threads=1)
    exact, _ = exact_neighbours(x, k=5)
    # every lost row now has its exact neighbours
    np.testing.assert_array_equal(rows[lost], exact[lost])
    assert not (rows == np.arange(4000)[:, None]).any()


def test_refinement_keeps_every_closer_neighbour_and_finds_neighbours_of_neighbours():
    x, _ = clustered(3000, d=32, blobs=10, noise=0.6, seed=5)
    exact, exact_sims = exact_neighbours(x, k=8)
    # a damaged graph: each row keeps only its 2 nearest, the other 6 slots are random rows
    rng = np.random.default_rng(0)
    damaged = exact.copy()
    damaged[:, 2:] = rng.integers(0, 3000, (3000, 6))
    own = damaged == np.arange(3000)[:, None]
    damaged[own] = (np.nonzero(own)[0] + 1) % 3000  # never the row itself
    x64 = x.astype(np.float64)
    before = np.full(damaged.shape, -np.inf)
    for r, cand in enumerate(damaged):  # distinct candidates only (random rows can repeat)
        u = np.unique(cand)
        before[r, : len(u)] = np.sort(x64[u] @ x64[r])[::-1]
    rows, sims = neighbours.refine_graph(x, damaged, refine_from=2)
    assert not (rows == np.arange(3000)[:, None]).any()
    assert all(len(set(r)) == 8 for r in rows[:200])  # no candidate twice
    # row by row, the k-th best similarity never gets worse ...
    assert (sims >= before.astype(np.float32) - 1e-6).all()

    # ... and the neighbours' neighbours bring back exact neighbours the damaged graph had lost
    def hits(g):
        return (g[:, :, None] == exact[:, None, :]).any(axis=2).mean()

    assert hits(damaged) < 0.26 and hits(rows) > 0.3
    np.testing.assert_allclose(sims[:, 0], exact_sims[:, 0], atol=1e-6)


def test_island_rows_are_found_and_searched_exactly():
    # rows whose neighbours all sit in another blob (what an HNSW row linked into the wrong region
    # at insertion returns) are the rows flagged, and an exact search gives them their true ones
    x, which = clustered(3000, d=64, blobs=10, noise=0.5, seed=6)
    rows, sims = exact_neighbours(x, k=10)
    # on an exact graph only the odd outlier (far from rows that are close to each other) is flagged
    outliers = neighbours.island_rows(sims, rows)
    assert len(outliers) < 10
    islands = np.arange(0, 3000, 97)
    bad_rows, bad_sims = rows.copy(), sims.copy()
    for r in islands:
        other = np.flatnonzero(which != which[r])[:10]
        bad_rows[r] = other
        bad_sims[r] = x[other] @ x[r]
    islands = np.setdiff1d(islands, outliers)
    flagged = neighbours.island_rows(bad_sims, bad_rows)
    np.testing.assert_array_equal(np.setdiff1d(flagged, outliers), islands)
    neighbours.research_exactly(x, bad_rows, bad_sims, islands)
    np.testing.assert_array_equal(bad_rows, rows)
    np.testing.assert_allclose(bad_sims, sims, atol=1e-6)


def test_a_weak_hnsw_index_gives_the_exact_graphs_classes_after_the_repairs():
    # well-separated classes in 256-d (within-class cosine ~0.35, between ~0, as in the scale
    # benchmark) and a poor index (4 links, short lists): hundreds of rows end among another class's
    # rows; after the lost-search and island repairs (almost) none does
    rng = np.random.default_rng(7)
    centres = rng.standard_normal((30, 256))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    which = rng.integers(0, 30, 6000)
    x = normalise_rows(
        (centres[which] + 0.09 * rng.standard_normal((6000, 256))).astype(np.float32)
    )
    exact, _ = exact_neighbours(x, k=10)
    assert (which[exact] == which[:, None]).all()
    weak = {"m": 4, "ef_construction": 12, "ef": 11, "num_threads": 1}
    raw, _ = neighbours.hnsw_neighbours(x, k=10, refine_from=0, island_gap=None, **weak)
    assert ((which[raw] != which[:, None]).sum(axis=1) > 5).sum() > 100  # what the repairs are for
    rows, _ = neighbours.hnsw_neighbours(x, k=10, **weak)
    assert ((which[rows] != which[:, None]).sum(axis=1) > 5).sum() <= 2


def test_exact_repair_search_holds_a_bounded_block_with_the_same_result(monkeypatch):
    # the exact search behind the HNSW repairs splits its rows so that at most
    # EXACT_BLOCK_ELEMENTS similarities are held at once (at 1M rows a 1,024-row block held 12 GB);
    # the candidates are the same as from one unbounded block, and each row comes first in its own
    x, _ = clustered(2000, d=32, seed=3)
    rows = np.array([5, 17, 400, 1999, 1000, 3, 1500])
    whole = neighbours._exact_candidates(x, rows, 11)
    seen: list[int] = []
    real_asarray = np.asarray

    def spy(a, *args, **kwargs):
        out = real_asarray(a, *args, **kwargs)
        if out.ndim == 2 and out.shape[1] == x.shape[1] and out.shape[0] < len(x):
            seen.append(out.shape[0])  # the query rows of one block
        return out

    monkeypatch.setattr(neighbours, "EXACT_BLOCK_ELEMENTS", 2 * len(x))
    monkeypatch.setattr(neighbours.np, "asarray", spy)
    blocked = neighbours._exact_candidates(x, rows, 11)
    monkeypatch.undo()
    assert seen and max(seen) == 2  # 2 rows x N similarities at a time
    np.testing.assert_array_equal(np.sort(blocked, axis=1), np.sort(whole, axis=1))
    sims = x[rows] @ x.T
    sims[np.arange(len(rows)), rows] = np.inf
    expect = np.argsort(-sims, axis=1, kind="stable")[:, :11]
    np.testing.assert_array_equal(np.sort(blocked, axis=1), np.sort(expect, axis=1))


def spread_classes(n: int = 8000, d: int = 128, classes: int = 40, seed: int = 3):
    """Tight classes in many small cells: each class's rows fall into several of 400 cells, so a
    fixed 6 probes miss part of every row's neighbours (the 1M-row situation, at test size)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((classes, d))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    which = rng.integers(0, classes, n)
    return normalise_rows((centres[which] + 0.09 * rng.standard_normal((n, d))).astype(np.float32))


def test_ivf_nprobe_is_chosen_by_measured_recall_where_six_probes_are_not_enough():
    x = spread_classes()
    exact = NeighbourGraph(*exact_neighbours(x, k=10))
    fixed, _ = neighbours.ivf_neighbours(x, k=10, cells=400, nprobe=6, num_threads=1)
    assert NeighbourGraph(fixed, fixed * 0.0).recall(exact) < 0.95  # what the choice is for
    info: dict = {}
    rows, _ = neighbours.ivf_neighbours(x, k=10, cells=400, nprobe=None, num_threads=1, info=info)
    p = info["nprobe"]
    assert p > 6 and info["target_met"] and info["cells"] == 400
    assert info["index_recall"] >= neighbours.IVF_TARGET_RECALL
    # the fewest probes that reach the target on the sample: one fewer misses it
    assert info["tried"][str(p - 1)] < neighbours.IVF_TARGET_RECALL
    # on every row, against the exact graph: the whole graph and faiss's own search at that nprobe
    assert NeighbourGraph(rows, rows * 0.0).recall(exact) >= 0.95
    index = neighbours.ivf_index(x, seed=0, cells=400, nprobe=p, num_threads=1)
    labels = index.search(x, 11, num_threads=1)
    own = np.argsort(labels == np.arange(len(x))[:, None], axis=1, kind="stable")[:, :10]
    raw = np.take_along_axis(labels, own, axis=1)
    assert NeighbourGraph(raw, raw * 0.0).recall(exact) >= 0.95


def test_an_unreachable_recall_target_uses_the_bound_and_says_so():
    x = spread_classes(4000)
    info: dict = {}
    neighbours.ivf_neighbours(
        x, k=10, cells=400, nprobe=None, nprobe_max=3, num_threads=1, info=info
    )
    assert info["nprobe"] == 3 and info["target_met"] is False
    assert info["index_recall"] < neighbours.IVF_TARGET_RECALL
    assert set(info["tried"]) == {"1", "2", "3"}


def test_the_chosen_nprobe_and_recall_are_stored_with_the_graph_and_the_key_is_fixed(tmp_path):
    ws = Workspace(tmp_path)
    x = spread_classes(3000)
    key_before = neighbours.graph_key("e", 3000, method="ivf")
    g = cached_neighbour_graph(x, workspace=ws, key="t", embeddings_key="e", method="ivf")
    assert neighbours.graph_key("e", 3000, method="ivf") == key_before  # known before the build
    assert g.info["nprobe"] >= 1 and g.info["sample_rows"] == 500 and g.info["recall_at"] == 10
    assert 0.0 <= g.info["graph_recall"] <= 1.0
    back = cached_neighbour_graph(x, workspace=ws, key="t", embeddings_key="e", method="ivf")
    assert isinstance(back.indices, np.memmap) and back.info == g.info
    assert f"{g.info['nprobe']} of {g.info['cells']:,} IVF cells probed" in back.describe()
    assert "measured recall@10" in back.describe()
    # the same data again: the same choice and the same graph (deterministic)
    again = build_neighbour_graph(x, k=neighbours.SCAN_K, method="ivf")
    assert again.info == g.info
    np.testing.assert_array_equal(again.indices, g.indices)


def test_the_graph_recall_recorded_is_the_recall_of_its_sample():
    x, _ = clustered(3000, d=48)
    g = build_neighbour_graph(x, k=10, method="hnsw")
    sample, truth = neighbours.sample_exact_neighbours(x, 10)
    exact, _ = exact_neighbours(x, k=10)
    # the sample's truth is the exact graph's rows (as sets)
    assert (np.sort(truth, axis=1) == np.sort(exact[sample], axis=1)).all()
    assert g.info["graph_recall"] == round(neighbours.sample_recall(g.indices[sample], truth), 4)
    assert build_neighbour_graph(x, k=10, method="exact").info["graph_recall"] == 1.0
