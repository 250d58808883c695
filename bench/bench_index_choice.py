"""Which HNSW library builds the neighbour graph: hnswlib against faiss-cpu's IndexHNSWFlat, same
parameters, same data, same run (inner product on unit rows), build + query of every row, and
recall@10 against the exact neighbours of 1,000 random rows. faiss-cpu is not a labelaudit
dependency: install it in the venv to run this (``.venv/bin/pip install faiss-cpu``).

    .venv/bin/python -m bench.bench_index_choice 10000 100000
"""

from __future__ import annotations

import sys
import time

import numpy as np


def data(n: int, d: int = 384, blobs: int = 100, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((blobs, d)).astype(np.float32)
    w = rng.integers(0, blobs, n)
    x = c[w] + 1.5 * rng.standard_normal((n, d)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def exact(x: np.ndarray, q: np.ndarray, k: int) -> np.ndarray:
    s = x[q] @ x.T
    s[np.arange(len(q)), q] = -np.inf
    return np.argsort(-s, axis=1)[:, :k]


def recall(lab: np.ndarray, q: np.ndarray, ex: np.ndarray, k: int) -> float:
    got = [set(r[r != i][:k]) for r, i in zip(lab[q], q, strict=True)]
    return float(np.mean([len(g & set(e)) / k for g, e in zip(got, ex, strict=True)]))


def main(sizes: list[int]) -> None:
    import faiss
    import hnswlib

    k = 10
    for n in sizes:
        x = data(n)
        q = np.random.default_rng(1).choice(n, 1000, replace=False)
        ex = exact(x, q, k)
        for m, efc, ef in [(16, 100, 64), (16, 200, 100), (32, 200, 100)]:
            t = time.perf_counter()
            p = hnswlib.Index(space="ip", dim=x.shape[1])
            p.init_index(max_elements=n, ef_construction=efc, M=m, random_seed=0)
            p.add_items(x, np.arange(n), num_threads=2)
            p.set_ef(ef)
            lab, _ = p.knn_query(x, k=k + 1, num_threads=2)
            th = time.perf_counter() - t
            rh = recall(lab, q, ex, k)
            faiss.omp_set_num_threads(2)
            t = time.perf_counter()
            ix = faiss.IndexHNSWFlat(x.shape[1], m, faiss.METRIC_INNER_PRODUCT)
            ix.hnsw.efConstruction = efc
            ix.add(x)
            ix.hnsw.efSearch = ef
            _, lab = ix.search(x, k + 1)
            tf = time.perf_counter() - t
            rf = recall(lab, q, ex, k)
            print(
                f"n={n} M={m} efc={efc} ef={ef}: hnswlib {th:.1f} s recall {rh:.4f} | "
                f"faiss {tf:.1f} s recall {rf:.4f}",
                flush=True,
            )


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [10_000])
