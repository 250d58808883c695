"""The training-dynamics heads with NumPy's BLAS on its default threads against one thread (issue 16).

    .venv/bin/python -m bench.bench_dynamics_threads

BANKING77's test split (the bundled sample's ``test`` rows, 3,080), 5 % uniform planted flips
(``bench.detector_cases.plant_flips``, seed 0); the datamap run (K classes) and the two AUM runs
(K+1 classes) of :mod:`labelaudit.dynamics`, once as before (no thread limit) and once as the scan
runs them (:func:`labelaudit.dynamics.single_blas_thread`), in one process: wall and CPU seconds,
the load average, and the planted-flip AP of each (the datamap score 1 - confidence, AUM's rank of
-AUM, as the detectors score). Embeddings: the bench workspace (``.labelaudit-bench``), computed
there on first use.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    from scipy.stats import rankdata
    from sklearn.metrics import average_precision_score as aps

    import labelaudit.dynamics as d
    from bench.detector_cases import plant_flips
    from labelaudit.io import load_dataset
    from labelaudit.scanning import get_embeddings
    from labelaudit.workspace import Workspace

    ds = load_dataset(ROOT / "sample_data" / "banking77")
    emb = get_embeddings(ds, workspace=Workspace(ROOT / ".labelaudit-bench"))
    x, y = emb[ds.test_mask], ds.labels[ds.test_mask]
    noisy, rows = plant_flips(y, x, ds.k, rate=0.05, kind="uniform", seed=0)
    truth = np.zeros(len(y), bool)
    truth[rows] = True
    limited = d.single_blas_thread
    for mode in ("before (default BLAS threads)", "after (one BLAS thread)"):
        d.single_blas_thread = contextlib.nullcontext if mode.startswith("before") else limited
        t, c = time.perf_counter(), time.process_time()
        run = d.train_dynamics(x, noisy, n_classes=ds.k)
        dm = d.data_map(run.logits, noisy)
        a = d.area_under_margin(x, noisy, n_classes=ds.k)
        print(
            f"{mode}: datamap AP {aps(truth, 1 - dm.confidence.to_numpy()):.4f}, "
            f"aum AP {aps(truth, rankdata(-a.aum)):.4f}, wall {time.perf_counter() - t:.1f} s, "
            f"cpu {time.process_time() - c:.1f} s, load {os.getloadavg()[0]:.1f}",
            flush=True,
        )
    d.single_blas_thread = limited


if __name__ == "__main__":
    main()
