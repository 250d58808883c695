"""Scale benchmark (issue 14): the scan's steps on up to 1M synthetic 384-d rows, time and peak memory
per step, each next to the bare library call that does the same work (the peer) in the same process.

    .venv/bin/python -m bench.bench_scale --rows 1000000            # every part at 1M rows
    .venv/bin/python -m bench.bench_scale --rows 100000 --parts exact_vs_hnsw
    .venv/bin/python -m bench.bench_scale --rows 20000 --parts ray  # Ray engine vs local engine

Data: a mixture of 50 Gaussian classes in 384 dimensions (unit rows, written as a float32 ``.npy``
and opened memory-mapped, as the scan opens its stored embeddings), with 5 % of the labels moved to
the nearest other class (planted flips). Out-of-sample probabilities come with the data (a noisy
softmax over the distances to the class centres), so the detectors that need them run without the
out-of-fold fits; those are measured on their own (part ``oof``).

Parts (each in a fresh subprocess, so the peak resident memory (RSS, sampled every 0.05 s; VmHWM at the
end) belongs to that part alone):

- ``graph``: :func:`labelaudit.neighbours.build_neighbour_graph` (faiss IVF above 10k rows; HNSW with
  ``BENCH_SCALE_METHOD=hnsw``) against the bare library's build + search with the same parameters;
  recall@10 against the exact neighbours of 1,000 random rows.
- ``detect``: :func:`labelaudit.detect.detect_label_issues` on the stored graph with the detectors
  knn, near_duplicates, confident_learning and self_confidence; peer: cleanlab's bare
  ``find_label_issues`` on the same probabilities. Average precision of the planted flips.
- ``cluster``: HDBSCAN on a 200k sample of a 10-d view + graph votes for the rest
  (:func:`labelaudit.clustering.cluster_points`), and the placement of the rest of a 100k-sample map
  (:func:`labelaudit.projection.place_by_graph`); peer: the bare HDBSCAN fit on the sample.
- ``mapfit``: the map fitted on every row against fitted on a 10k sample with the rest placed
  through the graph (part ``graph`` first: ``--parts graph,mapfit``): time, memory, neighbours and
  classes kept (:func:`part_mapfit`).
- ``exact_vs_hnsw``: the kNN detector on the exact graph against the approximate graph (IVF;
  ``BENCH_SCALE_METHOD=hnsw``: HNSW), graph build included (time, CPU-s, recall, AP).
- ``oof``: out-of-fold logistic regression (5 folds) against one bare sklearn fit of the same size.
- ``scan``: one whole default scan (the app's options: every default detector, the default
  combiner) with the embeddings and probabilities given, per step as the scan reports its steps;
  stored where bench/bench_pages_scale.py opens it.
- ``step``: detector steps alone (``BENCH_SCALE_DETECTOR=self_influence``, or a comma-separated
  list run in order in one process) on the data of part ``scan``, computed afresh in a scratch
  workspace: wall, CPU-s and peak RSS of each step, the planted-flip AP of its score.
- ``ray``: the same scan on the local engine and on the Ray engine (a local cluster: a head that only
  schedules, then one worker node of 1 CPU, then a second one: the speed-up per added worker).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
D, CLASSES, FLIP_SHARE = 384, 50, 0.05


# --------------------------------------------------------------------------- measurement helpers
def _status_mib(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1]) / 1024
    return 0.0


def rss_mib() -> float:
    """Resident memory (VmRSS), MiB: anonymous memory plus the file pages mapped and resident
    (memory-mapped arrays that were read)."""
    return _status_mib("VmRSS:")


def rss_anon_mib() -> float:
    """Anonymous resident memory (RssAnon), MiB: what the process itself holds; the resident pages
    of memory-mapped files (RssFile) are the kernel's page cache, dropped under memory pressure."""
    return _status_mib("RssAnon:")


def record_step(name: str, figures: dict) -> None:
    """One finished step: its line on stderr (at once) and its JSON line appended to the part's
    partial file (``BENCH_SCALE_PARTIAL``), so a part that is cut short still leaves its finished
    steps. Every step of every part is reported here."""
    load = os.getloadavg()
    print(
        f"  {name}: {figures['seconds']:.1f} s wall, {figures['cpu_seconds']:.1f} CPU-s, peak RSS "
        f"{figures['peak_rss_mib']:.0f} MiB (anonymous {figures.get('peak_rss_anon_mib', 0):.0f}), "
        f"load {load[0]:.1f}",
        file=sys.stderr,
        flush=True,
    )
    partial = os.environ.get("BENCH_SCALE_PARTIAL")
    if partial:
        with open(partial, "a") as f:
            f.write(
                json.dumps({"step": name, **figures, "load": [round(v, 1) for v in load]}) + "\n"
            )


class Peak:
    """Peak RSS and peak anonymous RSS (MiB) while the ``with`` block runs, sampled every 0.05 s."""

    def __enter__(self) -> Peak:
        self.peak = rss_mib()
        self.peak_anon = rss_anon_mib()
        self._stop = False
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        self.t0 = time.perf_counter()
        return self

    def _run(self) -> None:
        while not self._stop:
            self.peak = max(self.peak, rss_mib())
            self.peak_anon = max(self.peak_anon, rss_anon_mib())
            time.sleep(0.05)

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self.t0
        self._stop = True
        self._t.join()
        self.peak = max(self.peak, rss_mib())
        self.peak_anon = max(self.peak_anon, rss_anon_mib())


def step(out: dict, name: str, fn):
    """Run ``fn`` as one measured step: wall seconds, CPU seconds of this process (every thread),
    peak RSS and peak anonymous RSS, stored in ``out[name]`` and reported by :func:`record_step`."""
    cpu0 = time.process_time()
    with Peak() as p:
        value = fn()
    cpu = time.process_time() - cpu0
    out[name] = {
        "seconds": round(p.seconds, 2),
        "cpu_seconds": round(cpu, 2),
        "peak_rss_mib": round(p.peak),
        "peak_rss_anon_mib": round(p.peak_anon),
    }
    record_step(name, out[name])
    return value


# --------------------------------------------------------------------------- data
def make_data(folder: Path, n: int, seed: int = 0) -> dict:
    """Unit float32 embeddings (memmapped .npy), true and noisy labels, probabilities, flipped rows."""
    folder.mkdir(parents=True, exist_ok=True)
    emb_path = folder / f"emb_{n}.npy"
    meta = folder / f"labels_{n}.npz"
    if emb_path.exists() and meta.exists():
        return {"emb": emb_path, "meta": meta}
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((CLASSES, D)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    y = rng.integers(0, CLASSES, n)
    emb = np.lib.format.open_memmap(emb_path, mode="w+", dtype=np.float32, shape=(n, D))
    probs = np.empty((n, CLASSES), dtype=np.float32)
    block = 65_536
    for s in range(0, n, block):
        e = min(n, s + block)
        x = centres[y[s:e]] + 0.07 * rng.standard_normal((e - s, D)).astype(np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        emb[s:e] = x
        logits = 8.0 * (x @ centres.T) + rng.gumbel(size=(e - s, CLASSES)).astype(np.float32)
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs[s:e] = p / p.sum(axis=1, keepdims=True)
    emb.flush()
    del emb
    # flips to the nearest other class centre (semantically close, as in the planted-flip benchmark)
    sim = centres @ centres.T
    np.fill_diagonal(sim, -np.inf)
    nearest = sim.argmax(axis=1)
    flipped = np.sort(rng.choice(n, int(FLIP_SHARE * n), replace=False))
    noisy = y.copy()
    noisy[flipped] = nearest[y[flipped]]
    np.savez(meta, y=y, noisy=noisy, flipped=flipped, probs=probs)
    return {"emb": emb_path, "meta": meta}


def load(folder: Path, n: int):
    paths = make_data(folder, n)
    emb = np.load(paths["emb"], mmap_mode="r")
    m = np.load(paths["meta"])
    return emb, m["noisy"], m["flipped"], m["probs"].astype(np.float64)


def average_precision(score: np.ndarray, flipped: np.ndarray) -> float:
    from sklearn.metrics import average_precision_score

    truth = np.zeros(len(score), dtype=bool)
    truth[flipped] = True
    return float(average_precision_score(truth, score))


# --------------------------------------------------------------------------- parts (child side)
def part_graph(folder: Path, n: int) -> dict:
    """The scan's graph (:func:`labelaudit.neighbours.build_neighbour_graph`; above the exact limit its
    stages, index build, query of every row and island repair, timed apart from one index), recall@10
    of 1,000 random rows against exact for several settings of the query on that same index (IVF:
    cells probed; HNSW: ef), and the bare library peer with the same parameters (skipped with
    ``BENCH_SCALE_PEERS=0``). ``BENCH_SCALE_METHOD=hnsw`` measures the HNSW path instead of the
    default (IVF above the exact limit)."""
    from labelaudit import neighbours as nb

    emb, *_ = load(folder, n)
    method = nb.choose_method(n, os.environ.get("BENCH_SCALE_METHOD", "auto"))
    out: dict = {"rows": n, "method": method}
    index = None
    if method in ("ivf", "hnsw"):
        x = nb.normalise_rows(emb)
        if method == "ivf":
            out["ivf"] = {"cells": nb.ivf_cells(n)}
            index = step(out, "ivf_index_build", lambda: nb.ivf_index(x, seed=0))
            # the scan's rule: the seeded sample's exact neighbours, then the fewest probes that
            # reach the target recall on it (neighbours.choose_nprobe)
            sample = step(out, "sample_exact_neighbours", lambda: nb.sample_exact_neighbours(x, 10))
            choice = step(out, "choose_nprobe", lambda: nb.choose_nprobe(index, x, *sample))
            out["ivf"].update(choice.as_info())
        else:
            out["hnsw"] = [nb.HNSW_M, nb.HNSW_EF_CONSTRUCTION, nb.HNSW_EF_SEARCH]
            index = step(out, "hnsw_index_build", lambda: nb.hnsw_index(x, seed=0))
        # the scan's path (graph_from_index) in its two halves: every row queried with the
        # lost searches redone exactly, then the island rows searched exactly
        rows, sims = step(
            out,
            f"{method}_query_every_row",
            lambda: nb.graph_from_index(index, x, nb.SCAN_K, island_gap=None),
        )
        islands = nb.island_rows(sims, rows)
        out["island_rows"] = len(islands)
        step(out, "island_repair", lambda: nb.research_exactly(x, rows, sims, islands))
        g = nb.NeighbourGraph(rows, sims, method)
        names: tuple[str, ...] = (
            f"{method}_index_build",
            f"{method}_query_every_row",
            "island_repair",
        )
        if method == "ivf":
            names += ("sample_exact_neighbours", "choose_nprobe")
        parts = [out[s] for s in names]
        out["labelaudit_graph"] = {
            "seconds": round(sum(p["seconds"] for p in parts), 2),
            "cpu_seconds": round(sum(p["cpu_seconds"] for p in parts), 2),
            "peak_rss_mib": max(p["peak_rss_mib"] for p in parts),
        }
    else:
        g = step(out, "labelaudit_graph", lambda: nb.build_neighbour_graph(emb, k=nb.SCAN_K))
    np.save(folder / f"graph_idx_{n}.npy", g.indices)
    np.save(folder / f"graph_sim_{n}.npy", g.similarities)

    rng = np.random.default_rng(1)
    q = np.sort(rng.choice(n, min(1000, n), replace=False))
    x = np.asarray(emb)
    exact = []
    for s in range(0, len(q), 25):  # 25 x N similarities at a time (100 MB at 1M rows)
        rows = q[s : s + 25]
        sims = x[rows] @ x.T
        sims[np.arange(len(rows)), rows] = -np.inf
        # a copy: a view would keep each 25 x N int64 partition alive (8 GB at 1M rows)
        exact.extend(np.argpartition(-sims, 10, axis=1)[:, :10].copy())

    def recall_of(found) -> float:
        return round(
            sum(len(set(a) & set(b[:10])) for a, b in zip(exact, found, strict=True))
            / (len(q) * 10),
            4,
        )

    out["recall_at_10"] = recall_of(g.indices[q])
    if isinstance(index, nb.IVFIndex):  # raw index recall, before the repairs
        out["raw_recall_at_10_by_nprobe"] = {}
        chosen = index.nprobe
        for nprobe in sorted({2, 4, 6, 8, 12, 16, chosen}):
            index.nprobe = nprobe
            lab = index.search(x[q], 11)
            found = [r[r != i][:10] for r, i in zip(lab, q, strict=True)]
            out["raw_recall_at_10_by_nprobe"][str(nprobe)] = recall_of(found)
        index.nprobe = chosen
    elif index is not None:
        out["recall_at_10_by_ef"] = {}
        for ef in (64, 100, 128, 160):
            index.set_ef(ef)
            lab, _ = index.knn_query(np.ascontiguousarray(x[q]), k=11)
            found = [r[r != i][:10] for r, i in zip(lab.astype(np.int64), q, strict=True)]
            out["recall_at_10_by_ef"][str(ef)] = recall_of(found)
    index = None  # freed before the peer builds its own
    if method == "exact":
        return out
    if os.environ.get("BENCH_SCALE_PEERS", "1") == "0":
        out["bare_library_build_query"] = "skipped (BENCH_SCALE_PEERS=0)"
        return out

    def bare_hnswlib():
        import hnswlib

        index = hnswlib.Index(space="ip", dim=D)
        index.init_index(
            max_elements=n, ef_construction=nb.HNSW_EF_CONSTRUCTION, M=nb.HNSW_M, random_seed=0
        )
        index.add_items(x, np.arange(n))
        index.set_ef(nb.HNSW_EF_SEARCH)
        return index.knn_query(x, k=nb.SCAN_K + 1)

    def bare_faiss():
        import faiss

        cells = nb.ivf_cells(n)
        ix = faiss.IndexIVFFlat(faiss.IndexFlatIP(D), D, cells, faiss.METRIC_INNER_PRODUCT)
        sample = np.sort(
            np.random.default_rng(0).choice(n, min(n, nb.IVF_TRAIN_PER_CELL * cells), replace=False)
        )
        ix.train(np.ascontiguousarray(x[sample]))
        for a in range(0, n, 50_000):
            ix.add(np.ascontiguousarray(x[a : a + 50_000]))
        ix.nprobe = out["ivf"]["nprobe"]  # the same probes as the library chose
        return [
            ix.search(np.ascontiguousarray(x[a : a + 50_000]), nb.SCAN_K + 1)
            for a in range(0, n, 50_000)
        ]

    step(out, "bare_library_build_query", bare_faiss if method == "ivf" else bare_hnswlib)
    out["ratio_labelaudit_over_bare"] = round(
        out["labelaudit_graph"]["seconds"] / out["bare_library_build_query"]["seconds"], 3
    )
    out["cpu_ratio_labelaudit_over_bare"] = round(
        out["labelaudit_graph"]["cpu_seconds"] / out["bare_library_build_query"]["cpu_seconds"], 3
    )
    return out


def stored_graph(folder: Path, n: int):
    from labelaudit.neighbours import NeighbourGraph

    return NeighbourGraph(
        np.load(folder / f"graph_idx_{n}.npy", mmap_mode="r"),
        np.load(folder / f"graph_sim_{n}.npy", mmap_mode="r"),
        "stored",
    )


def dataset(noisy: np.ndarray, probs: np.ndarray):
    import pandas as pd

    from labelaudit.dataset import Dataset

    n = len(noisy)
    classes = [f"c{i:02d}" for i in range(CLASSES)]
    frame = pd.DataFrame(
        {
            "id": np.arange(n).astype(str),
            "text": [f"row {i}" for i in range(n)],
            "label": np.asarray(classes, dtype=object)[noisy],
            "split": "",
        }
    )
    return Dataset(frame=frame, classes=classes, pred_probs=probs)


def part_detect(folder: Path, n: int) -> dict:
    from cleanlab.filter import find_label_issues

    from labelaudit.detect import DEFAULT_COMBINER, detect_label_issues

    emb, noisy, flipped, probs = load(folder, n)
    graph = stored_graph(folder, n)
    # The default combiner ("quality") fits the 5-fold embedding head as its reference model even
    # when probabilities are given; BENCH_SCALE_COMBINER=rank_average measures detection without it.
    combiner = os.environ.get("BENCH_SCALE_COMBINER", DEFAULT_COMBINER)
    out: dict = {"rows": n, "combiner": combiner}
    ds = step(out, "dataset", lambda: dataset(noisy, probs))
    det = step(
        out,
        "labelaudit_detect",
        lambda: detect_label_issues(
            ds,
            emb,
            detectors=["knn", "near_duplicates", "confident_learning", "self_confidence"],
            neighbour_graph=graph,
            combiner=combiner,
        ),
    )
    step(out, "bare_cleanlab_find_label_issues", lambda: find_label_issues(noisy, probs, n_jobs=1))
    out["ratio_labelaudit_detect_over_bare_cleanlab"] = round(
        out["labelaudit_detect"]["seconds"] / out["bare_cleanlab_find_label_issues"]["seconds"], 3
    )
    out["ap_planted_flips"] = {
        "ensemble": round(average_precision(det.table["label_issue_score"].to_numpy(), flipped), 4)
    }
    for c in det.table.columns:
        if c.startswith("score_"):
            out["ap_planted_flips"][c[6:]] = round(
                average_precision(det.table[c].to_numpy(), flipped), 4
            )
    return out


def nearest_10(space: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The 10 nearest rows in ``space`` (exact, Euclidean, the row itself left out) of each of
    ``rows``, shape (len(rows), 10), unordered; the (100, N) distances one block at a time."""
    x = np.asarray(space, dtype=np.float32)
    sq = (x * x).sum(axis=1)
    out = []
    for s in range(0, len(rows), 100):
        r = rows[s : s + 100]
        d = sq[r][:, None] - 2 * x[r] @ x.T + sq[None, :]
        d[np.arange(len(r)), r] = np.inf
        out.append(np.argpartition(d, 10, axis=1)[:, :10])
    return np.concatenate(out) if out else np.empty((0, 10), dtype=np.int64)


def kept_at_10(space: np.ndarray, graph, rows: np.ndarray) -> float:
    """Share of each of ``rows``' 10 nearest graph neighbours (cosine, full dimension) that are
    among its 10 nearest rows in ``space`` (exact, Euclidean): how well the view keeps neighbours."""
    near = nearest_10(space, rows)
    hits = sum(
        len(set(a) & set(b))
        for a, b in zip(near, np.asarray(graph.indices[rows, :10]), strict=True)
    )
    return round(hits / (len(rows) * 10), 4)


def part_map(folder: Path, n: int) -> dict:
    """The scan's map and clustering space (:func:`labelaudit.projection.map_and_cluster_space` on the
    stored graph: UMAP fitted on a 100k sample above 100k rows, the rest placed through the graph),
    and how well the 10-d space keeps each row's 10 nearest graph neighbours, for fitted and placed
    rows apart. Saves the space for the ``cluster`` part."""
    from labelaudit import projection

    emb, *_ = load(folder, n)
    graph = stored_graph(folder, n)
    out: dict = {"rows": n, "fit_rows": min(n, projection.FIT_MAX_ROWS)}
    xy, space = step(
        out,
        "labelaudit_map_and_cluster_space",
        lambda: projection.map_and_cluster_space(emb, seed=0, graph=graph),
    )
    np.save(folder / f"space_{n}.npy", space)
    np.save(folder / f"xy_{n}.npy", xy)
    sample = projection.fit_sample(n, projection.FIT_MAX_ROWS, seed=0)
    rng = np.random.default_rng(2)
    fitted = rng.choice(sample, min(500, len(sample)), replace=False)
    out["kept_at_10_fitted_rows"] = kept_at_10(space, graph, fitted)
    rest = np.setdiff1d(np.arange(n), sample)
    if len(rest):
        placed = rng.choice(rest, min(500, len(rest)), replace=False)
        out["kept_at_10_placed_rows"] = kept_at_10(space, graph, placed)
    return out


#: Rows the map is fitted on in the ``mapfit`` part's sampled fit (the rest placed through the graph).
MAPFIT_SAMPLE_ROWS = 10_000


def same_class_at_10(space: np.ndarray, classes: np.ndarray, rows: np.ndarray) -> float:
    """Fraction of each of ``rows``' 10 nearest rows in ``space`` (Euclidean, itself left out) that
    have its generating class: how well a map keeps the data's class structure."""
    near = nearest_10(space, rows)
    return round(int((classes[near] == classes[rows][:, None]).sum()) / (len(rows) * 10), 4)


def part_mapfit(folder: Path, n: int) -> dict:
    """UMAP fitted on every row against fitted on a :data:`MAPFIT_SAMPLE_ROWS` sample with the rest
    placed through the shared graph (what the scan does above ``projection.FIT_MAX_ROWS``), on the
    same rows and graph: seconds, CPU-s and peak memory of each, and for 1,000 seeded rows (fitted
    and placed rows apart for the sampled fit) the share of their 10 graph neighbours kept among
    their 10 nearest in the 10-d clustering space and in the 2-d map, and the share of their 10
    nearest in each with their generating class."""
    from labelaudit import projection

    emb, *_ = load(folder, n)
    classes = np.load(make_data(folder, n)["meta"])["y"]
    graph = stored_graph(folder, n)
    projection.import_umap()  # numba's compile is not part of either fit
    out: dict = {"rows": n, "sample_rows": MAPFIT_SAMPLE_ROWS}
    rng = np.random.default_rng(3)
    rows = np.sort(rng.choice(n, min(1000, n), replace=False))
    sample = projection.fit_sample(n, MAPFIT_SAMPLE_ROWS, seed=0)
    in_sample = np.isin(rows, sample)
    for name, fit_rows in (("whole_fit", n), ("sample_and_place", MAPFIT_SAMPLE_ROWS)):
        xy, space = step(
            out,
            name,
            lambda fit_rows=fit_rows: projection.map_and_cluster_space(
                emb, seed=0, graph=graph, fit_max_rows=fit_rows
            ),
        )
        groups = {"all": rows}
        if fit_rows < n:
            groups |= {"fitted": rows[in_sample], "placed": rows[~in_sample]}
        for g, r in groups.items():
            if len(r) == 0:
                continue
            out[f"{name}/{g}/rows"] = int(len(r))
            out[f"{name}/{g}/kept_at_10_map"] = kept_at_10(xy, graph, r)
            out[f"{name}/{g}/same_class_at_10_map"] = same_class_at_10(xy, classes, r)
            if not np.array_equal(space, xy):  # with CLUSTER_DIMS 2 the clusters use the map
                out[f"{name}/{g}/kept_at_10_space"] = kept_at_10(space, graph, r)
                out[f"{name}/{g}/same_class_at_10_space"] = same_class_at_10(space, classes, r)
        del xy, space
    return out


def part_cluster(folder: Path, n: int) -> dict:
    import hdbscan

    from labelaudit import clustering, projection

    emb, *_ = load(folder, n)
    graph = stored_graph(folder, n)
    out: dict = {"rows": n}
    stored_space = folder / f"space_{n}.npy"
    if stored_space.exists():  # the ``map`` part's UMAP space, as the scan clusters it
        out["space"] = "umap 10-d (part map)"
        space = np.load(stored_space)
    else:  # a 10-d random projection (no UMAP in this part)
        out["space"] = "random projection 10-d"
        rng = np.random.default_rng(0)
        proj = rng.standard_normal((D, 10)).astype(np.float32)
        space = step(
            out,
            "space_10d",
            lambda: np.concatenate(
                [np.asarray(emb[s : s + 65536]) @ proj for s in range(0, n, 65536)]
            ),
        )
    labels = step(
        out,
        "labelaudit_cluster_points",
        lambda: clustering.cluster_points(space, graph=graph, seed=0),
    )
    out["clusters"] = int(labels.max() + 1)
    out["noise_share"] = round(float((labels < 0).mean()), 4)
    m = np.load(folder / f"labels_{n}.npz")
    from sklearn.metrics import adjusted_rand_score

    out["adjusted_rand_vs_true_class"] = round(float(adjusted_rand_score(m["y"], labels)), 4)
    if os.environ.get("BENCH_SCALE_PEERS", "1") != "0":
        sample = projection.fit_sample(n, clustering.FIT_MAX_ROWS, seed=0)
        mcs = clustering.default_min_cluster_size(len(sample))
        step(
            out,
            "bare_hdbscan_on_the_sample",
            lambda: hdbscan.HDBSCAN(min_cluster_size=mcs, min_samples=min(5, mcs)).fit_predict(
                np.asarray(space[sample], dtype=np.float64)
            ),
        )
    if not stored_space.exists():
        msample = projection.fit_sample(n, projection.FIT_MAX_ROWS, seed=0)
        xy = space[msample, :2]
        step(out, "place_by_graph_2d", lambda: projection.place_by_graph(xy, msample, graph))
    return out


def part_exact_vs_hnsw(folder: Path, n: int) -> dict:
    from labelaudit.detectors.base import DetectionContext
    from labelaudit.detectors.knn import knn_disagreement
    from labelaudit.neighbours import build_neighbour_graph

    emb, noisy, flipped, _ = load(folder, n)
    out: dict = {"rows": n}
    x = np.asarray(emb)
    res = {}
    approx = os.environ.get("BENCH_SCALE_METHOD", "ivf")
    out["approximate"] = approx
    for method in ("exact", approx):

        def run(method=method):
            g = build_neighbour_graph(x, k=10, method=method)
            ctx = DetectionContext(labels=noisy, n_classes=CLASSES, embeddings=x, neighbour_graph=g)
            return g, knn_disagreement(ctx)

        res[method] = step(out, f"knn_detector_{method}", run)
    out["speedup_approximate_over_exact"] = round(
        out["knn_detector_exact"]["seconds"] / out[f"knn_detector_{approx}"]["seconds"], 2
    )
    out["cpu_speedup_approximate_over_exact"] = round(
        out["knn_detector_exact"]["cpu_seconds"] / out[f"knn_detector_{approx}"]["cpu_seconds"], 2
    )
    out["recall_at_10"] = round(res[approx][0].recall(res["exact"][0], 10), 4)
    ap = {m: average_precision(r[1].score, flipped) for m, r in res.items()}
    out["knn_ap"] = {m: round(v, 4) for m, v in ap.items()}
    out["knn_ap_difference"] = round(ap[approx] - ap["exact"], 4)
    return out


def part_oof(folder: Path, n: int) -> dict:
    import warnings

    from sklearn.linear_model import LogisticRegression

    from labelaudit.detectors.oof import out_of_fold_probs

    emb, noisy, flipped, _ = load(folder, n)
    out: dict = {"rows": n}
    probs, acc = step(
        out, "labelaudit_oof_5_folds", lambda: out_of_fold_probs(emb, noisy, n_classes=CLASSES)
    )
    train = np.arange(n)[: int(0.8 * n)]

    def bare():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return LogisticRegression(C=10.0, max_iter=300).fit(
                np.asarray(emb)[train], noisy[train]
            )

    step(out, "bare_sklearn_one_fit_80pct", bare)
    out["ratio_oof_over_one_bare_fit"] = round(
        out["labelaudit_oof_5_folds"]["seconds"] / out["bare_sklearn_one_fit_80pct"]["seconds"], 2
    )
    out["oof_accuracy"] = round(acc, 4)
    out["self_confidence_ap"] = round(average_precision(1 - probs[np.arange(n), noisy], flipped), 4)
    return out


def part_ray(folder: Path, n: int) -> dict:
    import pandas as pd
    import ray
    from ray.cluster_utils import Cluster

    from labelaudit.engine import get_engine
    from labelaudit.io import load_dataset
    from labelaudit.scanning import scan

    emb, noisy, *_ = load(folder, n)
    frame = pd.DataFrame(
        {"text": [f"row {i}" for i in range(n)], "label": [f"c{c:02d}" for c in noisy]}
    )
    ds = load_dataset(frame, embeddings=np.asarray(emb))
    out: dict = {"rows": n}
    tmp = Path(tempfile.mkdtemp(prefix="bench_ray_"))
    detectors = ["knn", "near_duplicates", "confident_learning", "self_confidence"]
    local = step(
        out, "local_engine_scan", lambda: scan(ds, workspace=tmp / "l", detectors=detectors)
    )
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    try:
        c.add_node(num_cpus=1)
        c.wait_for_nodes()
        eng = get_engine("ray", address=c.address)
        one = step(
            out,
            "ray_engine_scan_1_worker",
            lambda: scan(ds, workspace=tmp / "r1", detectors=detectors, engine=eng),
        )
        c.add_node(num_cpus=1)  # the second worker node: the speed-up per added worker
        c.wait_for_nodes()
        remote = step(
            out,
            "ray_engine_scan_2_workers",
            lambda: scan(ds, workspace=tmp / "r", detectors=detectors, engine=eng),
        )
        eng.close()
        out["same_flags_1_worker"] = bool(
            (
                one.table["is_label_issue"].to_numpy() == remote.table["is_label_issue"].to_numpy()
            ).all()
        )
        out["speedup_2_workers_over_1"] = round(
            out["ray_engine_scan_1_worker"]["seconds"]
            / out["ray_engine_scan_2_workers"]["seconds"],
            3,
        )
    finally:
        ray.shutdown()
        c.shutdown()
    out["ratio_ray_over_local"] = round(
        out["ray_engine_scan_2_workers"]["seconds"] / out["local_engine_scan"]["seconds"], 3
    )
    out["same_flags"] = bool(
        (
            local.table["is_label_issue"].to_numpy() == remote.table["is_label_issue"].to_numpy()
        ).all()
    )
    out["max_score_difference"] = float(
        np.abs(local.table["label_issue_score"] - remote.table["label_issue_score"]).max()
    )
    return out


class StepClock:
    """The scan's progress callback, timing each step it reports: wall seconds and CPU-s from the
    step's first report to the next step's first report, and the peak RSS and anonymous RSS in
    between (sampled every 0.05 s). Each finished step is reported at once by :func:`record_step`."""

    def __init__(self) -> None:
        self.steps: dict[str, dict] = {}
        self.order: list[str] = []
        self.current: str | None = None
        self._stop = False
        self._t = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> StepClock:
        self._t.start()
        return self

    def _sample(self) -> None:
        while not self._stop:
            cur = self.current
            if cur is not None:
                s = self.steps[cur]
                s["peak_rss_mib"] = max(s["peak_rss_mib"], round(rss_mib()))
                s["peak_rss_anon_mib"] = max(s["peak_rss_anon_mib"], round(rss_anon_mib()))
            time.sleep(0.05)

    def _close(self) -> None:
        cur = self.current
        if cur is None:
            return
        s = self.steps[cur]
        s["seconds"] = round(s["seconds"] + time.perf_counter() - s.pop("_t0"), 2)
        s["cpu_seconds"] = round(s["cpu_seconds"] + time.process_time() - s.pop("_c0"), 2)
        s["peak_rss_mib"] = max(s["peak_rss_mib"], round(rss_mib()))
        s["peak_rss_anon_mib"] = max(s["peak_rss_anon_mib"], round(rss_anon_mib()))
        s["load"] = [round(v, 1) for v in os.getloadavg()]
        record_step(cur, {k: v for k, v in s.items() if k != "load"})

    def __call__(self, name: str, done: int = 0, total: int = 0, *args, **kwargs) -> None:
        if name == self.current:
            return
        self._close()
        s = self.steps.setdefault(
            name,
            {
                "seconds": 0.0,
                "cpu_seconds": 0.0,
                "peak_rss_mib": 0,
                "peak_rss_anon_mib": 0,
                "reports": 0,
            },
        )
        if name not in self.order:
            self.order.append(name)
        s["reports"] += 1
        s["_t0"], s["_c0"] = time.perf_counter(), time.process_time()
        self.current = name

    def __exit__(self, *exc) -> None:
        self._close()
        self.current = None
        self._stop = True
        self._t.join()


#: Another workspace for part ``scan`` (default ``pages_ws_N``): e.g. one holding only the stored
#: neighbour graph, map and clusters (hard links), so the detectors run afresh while the stored
#: scan the pages bench opens stays as it is.
SCAN_WORKSPACE_ENV = "BENCH_SCALE_SCAN_WS"


def part_scan(folder: Path, n: int) -> dict:
    """One whole default :func:`labelaudit.scanning.scan` (the app's scan options, the default
    combiner, every default detector) of the N-row data with its embeddings and probabilities given,
    stored in the workspace ``pages_ws_N`` that bench/bench_pages_scale.py opens (so the pages are
    timed on this very scan). Wall, CPU-s and peak RSS per step as the scan reports its steps;
    the neighbour graph's measured recall and chosen nprobe; AP of the planted flips."""
    from bench.bench_pages_scale import dataset as pages_dataset
    from labelaudit.commands.app import APP_SCAN_OPTIONS
    from labelaudit.scanning import scan
    from labelaudit.workspace import Workspace

    _, _, flipped, _ = load(folder, n)
    out: dict = {"rows": n, "options": APP_SCAN_OPTIONS}
    ws = Workspace(os.environ.get(SCAN_WORKSPACE_ENV) or folder / f"pages_ws_{n}")
    out["workspace"] = str(ws.root)
    ds = step(out, "dataset", lambda: pages_dataset(folder, n))
    step(out, "save_dataset", lambda: ws.save_dataset(ds))
    cpu0, t0 = time.process_time(), time.perf_counter()
    with StepClock() as clock:
        res = scan(ds, workspace=ws, progress=clock, **APP_SCAN_OPTIONS)
    out["scan"] = {
        "seconds": round(time.perf_counter() - t0, 1),
        "cpu_seconds": round(time.process_time() - cpu0, 1),
        "process_peak_rss_mib_so_far": round(vm_hwm_mib()),
    }
    out["scan_steps"] = {name: clock.steps[name] for name in clock.order}
    out["scan_timings"] = {k: round(v, 1) for k, v in res.timings.items()}
    g = res.neighbour_graph
    out["neighbour_graph"] = {"method": g.method, **g.info} if g is not None else None
    table = res.table
    out["ap_planted_flips"] = {
        "ensemble": round(average_precision(table["label_issue_score"].to_numpy(), flipped), 4)
    }
    for c in table.columns:
        if c.startswith("score_"):
            out["ap_planted_flips"][c[6:]] = round(
                average_precision(np.nan_to_num(table[c].to_numpy(dtype=float)), flipped), 4
            )
    out["flagged_rows"] = int(table["is_label_issue"].sum())
    return out


#: The detectors ``--parts step`` runs, in order, in one process (comma-separated names).
STEP_DETECTORS_ENV = "BENCH_SCALE_DETECTOR"


def part_step(folder: Path, n: int) -> dict:
    """Detector steps alone, on the N-row data of part ``scan`` (the same dataset, embeddings and
    probabilities given), each computed afresh in a scratch workspace (``step_ws_N_PID``, removed
    at the end; nothing is read back from an earlier scan): wall, CPU-s and peak RSS of each step,
    with the RSS held before it, and the planted-flip AP of its score. The detectors are
    ``BENCH_SCALE_DETECTOR`` (comma-separated, run in that order in one process, e.g.
    ``datamap,forgetting`` as the scan runs them; default ``self_influence``). One step at 1M
    rows takes minutes where the whole scan takes 45."""
    import shutil

    from bench.bench_pages_scale import dataset as pages_dataset
    from labelaudit.detect import run_available
    from labelaudit.detectors.base import DetectionContext
    from labelaudit.neighbours import normalise_rows
    from labelaudit.workspace import Workspace

    names = [d.strip() for d in os.environ.get(STEP_DETECTORS_ENV, "self_influence").split(",")]
    _, _, flipped, _ = load(folder, n)
    out: dict = {"rows": n, "detectors": names}
    ds = step(out, "dataset", lambda: pages_dataset(folder, n))
    root = folder / f"step_ws_{n}_{os.getpid()}"  # runs of other steps may run meanwhile
    shutil.rmtree(root, ignore_errors=True)
    ctx = DetectionContext(
        labels=ds.labels,
        n_classes=ds.k,
        embeddings=normalise_rows(ds.embeddings),
        pred_probs=np.asarray(ds.pred_probs, dtype=np.float64),
        texts=ds.texts,
        dynamics=ds.dynamics,
        seed=0,
        ids=ds.ids,
        classes=list(ds.classes),
        content_hash=ds.content_hash,
        dataset=ds,
        workspace=Workspace(root),
    )
    out["ap_planted_flips"] = {}
    for name in names:
        out[f"rss_before_{name}_mib"] = round(rss_mib())
        res = step(out, name, lambda name=name: run_available(ctx, [name])[0][name])
        out["ap_planted_flips"][name] = round(average_precision(res.score, flipped), 4)
        out[f"flagged_{name}"] = int(np.asarray(res.is_issue).sum())
        del res
    shutil.rmtree(root, ignore_errors=True)
    return out


PARTS = {
    "graph": part_graph,
    "detect": part_detect,
    "map": part_map,
    "mapfit": part_mapfit,
    "cluster": part_cluster,
    "exact_vs_hnsw": part_exact_vs_hnsw,
    "oof": part_oof,
    "ray": part_ray,
    "scan": part_scan,
    "step": part_step,
}


# --------------------------------------------------------------------------- driver
def machine() -> str:
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()}-core {platform.machine()}, {mem:.0f} GiB, no GPU, Python {platform.python_version()}"


def vm_hwm_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def child(part: str, folder: Path, n: int) -> None:
    out = PARTS[part](folder, n)
    out["process_peak_rss_mib"] = round(vm_hwm_mib())
    print(json.dumps(out))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--parts", default="graph,detect,cluster")
    ap.add_argument("--data", default=str(Path(tempfile.gettempdir()) / "labelaudit_bench_scale"))
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--json", default=str(RESULTS / "scale.json"))
    args = ap.parse_args(argv)
    folder = Path(args.data)
    if args.child:
        child(args.child, folder, args.rows)
        return 0
    raw = json.loads(Path(args.json).read_text()) if Path(args.json).exists() else {}
    make_data(folder, args.rows)
    for part in [p.strip() for p in args.parts.split(",") if p.strip()]:
        print(f"{part} at {args.rows:,} rows", file=sys.stderr, flush=True)
        started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        partial = folder / f"partial_{part}_{args.rows}.jsonl"
        partial.unlink(missing_ok=True)
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.bench_scale",
                "--child",
                part,
                "--rows",
                str(args.rows),
                "--data",
                str(folder),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,  # the child's step lines go straight to stderr, as they end
            text=True,
            env=dict(os.environ, PYTHONPATH=str(ROOT), BENCH_SCALE_PARTIAL=str(partial)),
        )
        if proc.returncode != 0:
            print(f"part {part} failed (exit {proc.returncode})", file=sys.stderr)
            steps = partial.read_text().splitlines() if partial.exists() else []
            res = {
                "rows": args.rows,
                "incomplete": f"exit {proc.returncode}; only the steps below finished",
                "finished_steps": [json.loads(line) for line in steps],
            }
        else:
            res = json.loads(proc.stdout.strip().splitlines()[-1])
        res["started"] = started
        res["load_average_after"] = os.getloadavg()
        res["machine"] = machine()
        res["command"] = f".venv/bin/python -m bench.bench_scale --rows {args.rows} --parts {part}"
        for var in (
            "BENCH_SCALE_COMBINER",
            "BENCH_SCALE_PEERS",
            "BENCH_SCALE_METHOD",
            STEP_DETECTORS_ENV,
            SCAN_WORKSPACE_ENV,
        ):
            if var in os.environ:
                res["command"] = f"{var}={os.environ[var]} " + res["command"]
        # re-read: another run (other rows) may have written meanwhile
        raw = json.loads(Path(args.json).read_text()) if Path(args.json).exists() else {}
        key = f"{part}@{args.rows}"
        if part == "step":  # one entry per detector list
            key = f"step:{os.environ.get(STEP_DETECTORS_ENV, 'self_influence')}@{args.rows}"
        raw[key] = res
        Path(args.json).write_text(json.dumps(raw, indent=1) + "\n")  # written as soon as measured
        print(json.dumps(res), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
