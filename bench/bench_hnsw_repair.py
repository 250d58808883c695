"""HNSW rows whose search lost itself, with and without the exact repair of labelaudit.neighbours.query_hnsw:
the share of such rows, recall@10 against exact and the kNN detector AP, on the scale data at 10k rows
with deliberately weak index settings (where lost searches are common). Needs the cached exact 10k graph
(bench_index_choice --rows 10000 first).

    PYTHONPATH=. .venv/bin/python -m bench.bench_hnsw_repair
"""

import json
import os
from pathlib import Path

import numpy as np

from bench.bench_index_choice import knn_ap, recall
from bench.bench_scale import load
from labelaudit import neighbours as nb

folder = Path("/tmp/labelaudit_bench_scale")
n = 10000
emb, noisy, flipped, _ = load(folder, n)
x = np.ascontiguousarray(emb)
ex_rows = np.load(folder / "exact_idx_10000.npy")
ex_sims = np.load(folder / "exact_sim_10000.npy")
print("exact AP", knn_ap(x, noisy, flipped, ex_rows, ex_sims)[1])
for m, efc, ef in [(4, 16, 12), (8, 32, 16)]:
    idx = nb.hnsw_index(x, seed=0, m=m, ef_construction=efc, num_threads=2)
    idx.set_ef(max(ef, 11))
    lab, _ = idx.knn_query(x, k=11, num_threads=2)
    lab = lab.astype(np.int64)
    own = np.arange(n)[:, None]
    lost = ~(lab == own).any(axis=1)
    o = np.argsort(lab == own, axis=1, kind="stable")[:, :10]
    raw = np.take_along_axis(lab, o, axis=1)
    rs = np.einsum("ij,ikj->ik", x, x[raw]).astype(np.float32)
    r2, s2 = nb.query_hnsw(idx, x, 0, n, 10, ef=ef, num_threads=2)
    print(
        json.dumps(
            {
                "M": m,
                "efc": efc,
                "ef": ef,
                "lost_share": round(float(lost.mean()), 4),
                "recall_without": round(recall(raw, ex_rows), 4),
                "ap_without": round(knn_ap(x, noisy, flipped, raw, rs)[1], 4),
                "recall_with": round(recall(r2, ex_rows), 4),
                "ap_with": round(knn_ap(x, noisy, flipped, r2, s2)[1], 4),
                "load": os.getloadavg()[0],
            }
        ),
        flush=True,
    )
