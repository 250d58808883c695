"""How the HNSW index is tuned (issue 14): hnswlib's M, ef_construction and query-time ef against the
exact neighbour graph on the scale benchmark's data (bench/bench_scale.py: 50 Gaussian classes in
384-d, 5 % nearest-class label flips), all in one run.

For every (M, ef_construction) the index is built once; every ef then queries all N rows (the work
the scan does). Reported per setting: build and query seconds, recall@10 over all N rows against the
exact graph, the kNN detector's average precision of the planted flips on that graph against the
same detector on the exact graph, and the speed-up of graph + detector against exact graph + detector
(the issue's goals: recall@10 >= 0.95, AP within 0.005 of exact, >= 10x faster at 100k).

    .venv/bin/python -m bench.bench_index_choice --rows 100000
    .venv/bin/python -m bench.bench_index_choice --rows 100000 --settings 16:100,24:100 --efs 64,128
    .venv/bin/python -m bench.bench_index_choice --rows 10000 --faiss   # + faiss-cpu IndexHNSWFlat
    .venv/bin/python -m bench.bench_index_choice --rows 100000 --settings none \
        --pca 64:16:100:64:40,128:16:100:64:40 --ivf 316:8,316:16       # cheaper paths (below)

Cheaper paths (the 10x goal), each finished like the library's graph (a row whose search misses
itself searched exactly, every candidate re-scored by exact cosine in the full dimension, island rows
searched exactly, :mod:`labelaudit.neighbours`):

- ``--pca P:M:EFC:EF:C``: hnswlib (L2) on a P-dimensional PCA projection (scikit-learn ``PCA``
  fitted on 20,000 random rows), C candidates per row re-scored in the full dimension;
- ``--ivf NLIST:NPROBE``: faiss-cpu ``IndexIVFFlat`` (inner product; k-means cells trained on
  64 x NLIST random rows), NPROBE cells searched per query (needs faiss-cpu in the venv).

- ``--library NPROBE,...``: the library's own default path above the exact limit
  (:func:`labelaudit.neighbours.ivf_index` with its cell count, then
  :func:`labelaudit.neighbours.graph_from_index`: lost searches redone exactly, exact re-scoring,
  island rows searched exactly), one index, every NPROBE in turn; the stages timed apart.

- ``--real EMB.npy``: instead of the synthetic data, stored sentence embeddings (e.g. a scan's
  ``embeddings-*.npy`` of the bundled sample): recall@10 and CPU-seconds of the exact graph, the
  library's IVF path at each ``--library`` nprobe and its HNSW path (no labels: no AP).

The exact graph is cached next to the data (``--data``), so a second run with other settings only
builds the indexes; its time is the one measured when it was built (recorded in the JSON).
``--faiss`` needs faiss-cpu in the venv (not a labelaudit dependency); it was the library compared
when hnswlib was chosen (bench/results/scale.md).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.bench_scale import CLASSES, average_precision, load, machine

ROOT = Path(__file__).resolve().parents[1]
K = 10


def knn_ap(
    x: np.ndarray, noisy: np.ndarray, flipped: np.ndarray, rows: np.ndarray, sims: np.ndarray
):
    """The kNN detector on a given graph: (seconds, AP of the planted flips)."""
    from labelaudit.detectors.base import DetectionContext
    from labelaudit.detectors.knn import knn_disagreement
    from labelaudit.neighbours import NeighbourGraph

    t = time.perf_counter()
    g = NeighbourGraph(np.asarray(rows[:, :K]), np.asarray(sims[:, :K]))
    ctx = DetectionContext(labels=noisy, n_classes=CLASSES, embeddings=x, neighbour_graph=g)
    res = knn_disagreement(ctx)
    return time.perf_counter() - t, average_precision(res.score, flipped)


def recall(approx: np.ndarray, exact: np.ndarray) -> float:
    """Mean share of each row's K exact neighbours found (blocks: no (N, K, K) temporary at 1M)."""
    hits = 0
    for s in range(0, len(exact), 65_536):
        a, b = approx[s : s + 65_536, :K], exact[s : s + 65_536, :K]
        hits += int((a[:, :, None] == b[:, None, :]).any(axis=2).sum())
    return hits / (len(exact) * K)


class Clock:
    """Wall and CPU seconds (every thread of this process) of named stages."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    def __call__(self, name: str, fn):
        t, c = time.perf_counter(), time.process_time()
        out = fn()
        self.wall[name] = round(time.perf_counter() - t, 2)
        self.cpu[name] = round(time.process_time() - c, 2)
        return out


def finish_graph(x: np.ndarray, cand: np.ndarray, k: int, clock: Clock):
    """The ``k``-NN graph from ``cand`` (N, C) candidate rows of any index (normally the row itself
    among them), finished as the library finishes the HNSW graph: a row whose own row is missing
    is searched exactly, candidates re-scored by exact cosine in the full dimension, then the
    island rows searched exactly. Returns (rows, sims, lost rows, island rows)."""
    from labelaudit import neighbours as nb

    n = len(x)
    own = np.arange(n)[:, None]

    def lost_repair():
        lost = np.flatnonzero(~(cand == own).any(axis=1))
        if len(lost):
            cand[lost] = nb._exact_candidates(x, lost, cand.shape[1])
        return lost

    lost = clock("lost_search_repair", lost_repair)

    def rescore():
        rows = np.empty((n, k), dtype=np.int64)
        sims = np.empty((n, k), dtype=np.float32)
        for a in range(0, n, nb.SIM_BLOCK):
            b = min(n, a + nb.SIM_BLOCK)
            c = cand[a:b]
            sc = np.einsum("ij,ikj->ik", x[a:b], x[c])
            sc[c == own[a:b]] = -np.inf
            best = np.argpartition(-sc, k - 1, axis=1)[:, :k]
            rows[a:b], sims[a:b] = nb._sort_rows(
                np.take_along_axis(c, best, axis=1), np.take_along_axis(sc, best, axis=1)
            )
        return rows, sims

    rows, sims = clock("exact_rescore", rescore)

    def islands():
        which = nb.island_rows(sims, rows)
        nb.research_exactly(x, rows, sims, which)
        return which

    which = clock("island_repair", islands)
    return rows, sims, len(lost), len(which)


def pca_candidates(x: np.ndarray, p: int, m: int, efc: int, ef: int, c: int, threads: int, clock):
    """C candidates per row from hnswlib (L2) on a P-d PCA projection of ``x``."""
    import hnswlib
    from sklearn.decomposition import PCA

    n = len(x)
    rng = np.random.default_rng(0)
    sample = np.sort(rng.choice(n, min(n, 20_000), replace=False))
    pca = clock("pca_fit", lambda: PCA(n_components=p, random_state=0).fit(x[sample]))
    z = clock(
        "pca_project",
        lambda: np.concatenate(
            [pca.transform(x[a : a + 65_536]).astype(np.float32) for a in range(0, n, 65_536)]
        ),
    )

    def build():
        ix = hnswlib.Index(space="l2", dim=p)
        ix.init_index(max_elements=n, ef_construction=efc, M=m, random_seed=0)
        ix.add_items(z, np.arange(n), num_threads=threads)
        return ix

    ix = clock("index_build", build)

    def query():
        ix.set_ef(max(ef, c))
        return ix.knn_query(z, k=c, num_threads=threads)[0].astype(np.int64)

    return clock("index_query", query)


def ivf_candidates(x: np.ndarray, nlist: int, nprobe: int, k: int, threads: int, clock):
    """k + 1 candidates per row (the row itself normally first) from faiss-cpu IndexIVFFlat."""
    import faiss

    faiss.omp_set_num_threads(threads)
    n, d = x.shape
    rng = np.random.default_rng(0)
    sample = np.sort(rng.choice(n, min(n, 64 * nlist), replace=False))

    def build():
        quantizer = faiss.IndexFlatIP(d)
        ix = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
        ix.train(np.ascontiguousarray(x[sample]))
        ix.add(x)
        return ix, quantizer

    ix, _quantizer = clock("index_build", build)

    def query():
        ix.nprobe = nprobe
        return np.concatenate(
            [ix.search(x[a : a + 50_000], k + 1)[1] for a in range(0, n, 50_000)]
        ).astype(np.int64)

    return clock("index_query", query)


def library_ivf(args, x, noisy, flipped, ex_rows, ex_ap, ex_cpu, ex_sec, ex_det, raw, res, key):
    """The library's IVF path (``--library``): one index, each nprobe queried and finished as the
    scan finishes it; rows under ``index@N/library_ivf``."""
    from labelaudit import neighbours as nb

    res = dict(res, command=res["command"] + f" --library {args.library}", library_ivf=[])
    res.pop("hnswlib", None)
    res.pop("cheaper_paths", None)
    clock = Clock()
    index = clock("index_build", lambda: nb.ivf_index(x, seed=0, num_threads=args.threads))
    for nprobe in (int(v) for v in args.library.split(",")):
        index.nprobe = nprobe
        c = Clock()
        c.wall["index_build"], c.cpu["index_build"] = (
            clock.wall["index_build"],
            clock.cpu["index_build"],
        )
        rows, sims = c(
            "query_every_row",
            lambda: nb.graph_from_index(index, x, K, island_gap=None, num_threads=args.threads),
        )
        which = nb.island_rows(sims, rows)
        c(
            "island_repair",
            lambda rows=rows, sims=sims, which=which: nb.research_exactly(x, rows, sims, which),
        )
        det, ap_ = knn_ap(x, noisy, flipped, rows, sims)
        wall, cpu = sum(c.wall.values()), sum(c.cpu.values())
        row = {
            "path": "library_ivf",
            "cells": index.cells,
            "nprobe": nprobe,
            "wall_seconds": c.wall,
            "cpu_seconds": c.cpu,
            "graph_wall_seconds": round(wall, 2),
            "graph_cpu_seconds": round(cpu, 2),
            "island_rows_repaired": int(len(which)),
            "recall_at_10": round(recall(rows, ex_rows), 4),
            "knn_ap": round(ap_, 4),
            "knn_ap_minus_exact": round(ap_ - ex_ap, 4),
            "detector_seconds": round(det, 2),
            "speedup_over_exact_wall": round((ex_sec + ex_det) / (wall + det), 2),
            "speedup_over_exact_cpu": round((ex_cpu + ex_det) / (cpu + det), 2) if ex_cpu else None,
            "load_average_after": [round(v, 1) for v in os.getloadavg()],
        }
        res["library_ivf"].append(row)
        print(json.dumps(row), flush=True)
        raw[key + "/library_ivf"] = res
        Path(args.json).write_text(json.dumps(raw, indent=1) + "\n")


def real_embeddings(args) -> int:
    """``--real``: exact, the library's IVF at each nprobe and its HNSW path on stored embeddings."""
    from labelaudit import neighbours as nb

    x = nb.normalise_rows(np.load(args.real, mmap_mode="r"))
    n = len(x)
    started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    clock = Clock()
    ex_rows, _ = clock("exact", lambda: nb.exact_neighbours(x, k=K))
    res: dict = {
        "rows": n,
        "embeddings": Path(args.real).name,
        "started": started,
        "machine": machine(),
        "threads": args.threads,
        "command": f".venv/bin/python -m bench.bench_index_choice --real {Path(args.real).name} "
        f"--library {args.library} --threads {args.threads}",
        "exact": {"wall_seconds": clock.wall["exact"], "cpu_seconds": clock.cpu["exact"]},
        "ivf": [],
    }
    index = clock("ivf_build", lambda: nb.ivf_index(x, seed=0, num_threads=args.threads))
    for nprobe in (int(v) for v in (args.library or "6").split(",")):
        index.nprobe = nprobe
        c = Clock()
        rows, _ = c("graph", lambda: nb.graph_from_index(index, x, K, num_threads=args.threads))
        cpu = clock.cpu["ivf_build"] + c.cpu["graph"]
        res["ivf"].append(
            {
                "cells": index.cells,
                "nprobe": nprobe,
                "cpu_seconds": round(cpu, 2),
                "wall_seconds": round(clock.wall["ivf_build"] + c.wall["graph"], 2),
                "recall_at_10": round(recall(rows, ex_rows), 4),
                "cpu_speedup_over_exact": round(clock.cpu["exact"] / cpu, 2),
                "load_average_after": [round(v, 1) for v in os.getloadavg()],
            }
        )
        print(json.dumps(res["ivf"][-1]), flush=True)
    c = Clock()
    rows, _ = c("hnsw", lambda: nb.hnsw_neighbours(x, k=K, num_threads=args.threads))
    res["hnsw"] = {
        "setting": [nb.HNSW_M, nb.HNSW_EF_CONSTRUCTION, nb.HNSW_EF_SEARCH],
        "cpu_seconds": c.cpu["hnsw"],
        "wall_seconds": c.wall["hnsw"],
        "recall_at_10": round(recall(rows, ex_rows), 4),
        "cpu_speedup_over_exact": round(clock.cpu["exact"] / c.cpu["hnsw"], 2),
        "load_average_after": [round(v, 1) for v in os.getloadavg()],
    }
    print(json.dumps(res["hnsw"]), flush=True)
    raw = json.loads(Path(args.json).read_text()) if Path(args.json).exists() else {}
    raw[f"real@{n}"] = res
    Path(args.json).write_text(json.dumps(raw, indent=1) + "\n")
    return 0


def exact_graph(folder: Path, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    from labelaudit.neighbours import exact_neighbours

    n = len(x)
    pi, ps, pt = (
        folder / f"exact_idx_{n}.npy",
        folder / f"exact_sim_{n}.npy",
        folder / f"exact_{n}.json",
    )
    if pi.exists() and ps.exists() and pt.exists():
        return np.load(pi), np.load(ps), json.loads(pt.read_text())["seconds"]
    t, c = time.perf_counter(), time.process_time()
    rows, sims = exact_neighbours(x, k=K)
    sec, cpu = time.perf_counter() - t, time.process_time() - c
    np.save(pi, rows)
    np.save(ps, sims)
    pt.write_text(
        json.dumps({"seconds": sec, "cpu_seconds": cpu, "load_average_after": os.getloadavg()})
    )
    return rows, sims, sec


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument(
        "--settings", default="16:100,16:200,24:100,32:200", help="M:ef_construction,..."
    )
    ap.add_argument("--efs", default="64,100,128,160")
    ap.add_argument("--refine", default="0,5", help="refine_from values (0 = no refinement)")
    ap.add_argument("--island-gaps", default="off,0.1", help="island_gap values ('off' = none)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--faiss", action="store_true")
    ap.add_argument("--pca", default="", help="P:M:EFC:EF:C,... (PCA + hnswlib, full-d re-score)")
    ap.add_argument("--ivf", default="", help="NLIST:NPROBE,... (faiss-cpu IndexIVFFlat)")
    ap.add_argument(
        "--library", default="", help="NPROBE,... (labelaudit's IVF path, neighbours.ivf_index)"
    )
    ap.add_argument("--data", default=str(Path(tempfile.gettempdir()) / "labelaudit_bench_scale"))
    ap.add_argument("--json", default=str(ROOT / "bench" / "results" / "scale_index.json"))
    ap.add_argument("--real", default="", help="EMB.npy: stored sentence embeddings (recall only)")
    args = ap.parse_args(argv)
    if args.real:
        return real_embeddings(args)

    from labelaudit.neighbours import graph_from_index, hnsw_index, island_rows

    folder = Path(args.data)
    n = args.rows
    emb, noisy, flipped, _ = load(folder, n)
    x = np.ascontiguousarray(emb)
    started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    ex_rows, ex_sims, ex_sec = exact_graph(folder, x)
    ex_cpu = json.loads((folder / f"exact_{n}.json").read_text()).get("cpu_seconds")
    ex_det, ex_ap = knn_ap(x, noisy, flipped, ex_rows, ex_sims)
    print(f"exact graph {ex_sec:.1f} s, kNN detector {ex_det:.1f} s, AP {ex_ap:.4f}", flush=True)
    raw = json.loads(Path(args.json).read_text()) if Path(args.json).exists() else {}
    res: dict = {
        "rows": n,
        "started": started,
        "machine": machine(),
        "threads": args.threads,
        "command": f".venv/bin/python -m bench.bench_index_choice --rows {n} "
        f"--settings {args.settings} --efs {args.efs} --refine {args.refine} "
        f"--island-gaps {args.island_gaps}",
        "exact": {
            "graph_cpu_seconds": json.loads((folder / f"exact_{n}.json").read_text()).get(
                "cpu_seconds"
            ),
            "graph_seconds": round(ex_sec, 2),
            "detector_seconds": round(ex_det, 2),
            "knn_ap": round(ex_ap, 4),
        },
        "hnswlib": [],
    }
    key = f"index@{n}"
    cheap = [("pca", v) for v in args.pca.split(",") if v] + [
        ("ivf", v) for v in args.ivf.split(",") if v
    ]
    if cheap:
        res["command"] += (f" --pca {args.pca}" if args.pca else "") + (
            f" --ivf {args.ivf}" if args.ivf else ""
        )
        res["cheaper_paths"] = []
    for kind, setting in cheap:
        clock = Clock()
        vals = [int(v) for v in setting.split(":")]
        if kind == "pca":
            cand = pca_candidates(x, *vals, threads=args.threads, clock=clock)
        else:
            cand = ivf_candidates(x, *vals, k=K, threads=args.threads, clock=clock)
        rows, sims, lost, islands = finish_graph(x, cand, K, clock)
        del cand
        det, ap_ = knn_ap(x, noisy, flipped, rows, sims)
        wall, cpu = sum(clock.wall.values()), sum(clock.cpu.values())
        row = {
            "path": kind,
            "setting": setting,
            "wall_seconds": clock.wall,
            "cpu_seconds": clock.cpu,
            "graph_wall_seconds": round(wall, 2),
            "graph_cpu_seconds": round(cpu, 2),
            "lost_searches": lost,
            "island_rows_repaired": islands,
            "recall_at_10": round(recall(rows, ex_rows), 4),
            "knn_ap": round(ap_, 4),
            "knn_ap_minus_exact": round(ap_ - ex_ap, 4),
            "speedup_over_exact_wall": round((ex_sec + ex_det) / (wall + det), 2),
            "speedup_over_exact_cpu": round((ex_cpu + ex_det) / (cpu + det), 2) if ex_cpu else None,
            "load_average_after": [round(v, 1) for v in os.getloadavg()],
        }
        res["cheaper_paths"].append(row)
        print(json.dumps(row), flush=True)
        raw[key + "/cheaper"] = res
        Path(args.json).write_text(json.dumps(raw, indent=1) + "\n")
    if args.library:
        library_ivf(args, x, noisy, flipped, ex_rows, ex_ap, ex_cpu, ex_sec, ex_det, raw, res, key)
    for setting in [v for v in args.settings.split(",") if v != "none"]:
        m, efc = (int(v) for v in setting.split(":"))
        t, c = time.perf_counter(), time.process_time()
        index = hnsw_index(x, seed=0, m=m, ef_construction=efc, num_threads=args.threads)
        build, build_cpu = time.perf_counter() - t, time.process_time() - c
        for ef in (int(v) for v in args.efs.split(",")):
            for refine in (int(v) for v in args.refine.split(",")):
                for gap_s in args.island_gaps.split(","):
                    gap = None if gap_s == "off" else float(gap_s)
                    t, c = time.perf_counter(), time.process_time()
                    # the library's path after the index: queries (lost searches redone exactly),
                    # neighbours-of-neighbours refinement, island rows searched exactly
                    rows, sims = graph_from_index(
                        index,
                        x,
                        K,
                        ef=ef,
                        refine_from=refine,
                        island_gap=gap,
                        num_threads=args.threads,
                    )
                    query, query_cpu = time.perf_counter() - t, time.process_time() - c
                    np.save(folder / f"hnsw_idx_{n}_{m}_{efc}_{ef}_{refine}_{gap_s}.npy", rows)
                    det, ap_ = knn_ap(x, noisy, flipped, rows, sims)
                    row = {
                        "M": m,
                        "ef_construction": efc,
                        "ef": ef,
                        "refine_from": refine,
                        "island_gap": gap,
                        "build_seconds": round(build, 2),
                        "query_seconds": round(query, 2),
                        # CPU seconds (all threads): less dependent on the machine's load than
                        # wall time; the speed-up below is in CPU seconds for that reason
                        "build_cpu_seconds": round(build_cpu, 2),
                        "query_cpu_seconds": round(query_cpu, 2),
                        "recall_at_10": round(recall(rows, ex_rows), 4),
                        "island_rows_left": int(len(island_rows(sims, rows))),
                        "knn_ap": round(ap_, 4),
                        "knn_ap_minus_exact": round(ap_ - ex_ap, 4),
                        "speedup_over_exact_wall": round(
                            (ex_sec + ex_det) / (build + query + det), 2
                        ),
                        "speedup_over_exact_cpu": round(
                            (ex_cpu + ex_det) / (build_cpu + query_cpu + det), 2
                        )
                        if ex_cpu
                        else None,
                        "load_average_after": [round(v, 1) for v in os.getloadavg()],
                    }
                    res["hnswlib"].append(row)
                    print(json.dumps(row), flush=True)
                    raw[key] = res
                    Path(args.json).write_text(json.dumps(raw, indent=1) + "\n")
        del index
    if args.faiss:
        import faiss

        faiss.omp_set_num_threads(args.threads)
        res["faiss"] = []
        for setting in args.settings.split(","):
            m, efc = (int(v) for v in setting.split(":"))
            t = time.perf_counter()
            ix = faiss.IndexHNSWFlat(x.shape[1], m, faiss.METRIC_INNER_PRODUCT)
            ix.hnsw.efConstruction = efc
            ix.add(x)
            build = time.perf_counter() - t
            for ef in (int(v) for v in args.efs.split(",")):
                ix.hnsw.efSearch = ef
                t = time.perf_counter()
                _, lab = ix.search(x, K + 1)
                query = time.perf_counter() - t
                own = lab == np.arange(n)[:, None]
                lab = np.take_along_axis(lab, np.argsort(own, axis=1, kind="stable"), axis=1)
                row = {
                    "M": m,
                    "ef_construction": efc,
                    "ef": ef,
                    "build_seconds": round(build, 2),
                    "query_seconds": round(query, 2),
                    "recall_at_10": round(recall(lab, ex_rows), 4),
                }
                res["faiss"].append(row)
                print("faiss", json.dumps(row), flush=True)
        raw[key] = res
        Path(args.json).write_text(json.dumps(raw, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
