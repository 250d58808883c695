"""The trained heads with NumPy's BLAS on its default threads against one thread (issue 16).

    .venv/bin/python -m bench.bench_dynamics_threads               # the dynamics heads alone
    .venv/bin/python -m bench.bench_dynamics_threads --detection   # the whole detection

``--detection``: :func:`labelaudit.detect.detect_label_issues` (every default detector, the default
combiner, no workspace) on the bench_detectors case ``banking-test-uniform-5`` (BANKING77 test
split, 3,080 rows, 5 % uniform planted flips, seed 0), once with every
:func:`labelaudit.dynamics.single_blas_thread` a no-op (as before) and once as the scan runs it,
in one process (the process-wide memo of trained runs cleared in between): seconds per step from
the progress reports, wall and CPU seconds, and the planted-flip AP of the combined score and of
each detector.

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
import sys
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


def _step_timer(steps: dict[str, float]):
    """A progress callback that adds each step's seconds (first report to the next step's) to
    ``steps``; call it once more with any name at the end."""
    last: list = [None, time.perf_counter()]

    def progress(step: str, done: int, total: int) -> None:
        now = time.perf_counter()
        if last[0] is not None:
            steps[last[0]] = steps.get(last[0], 0.0) + now - last[1]
        if step != last[0]:
            last[0] = step
        last[1] = now

    return progress


def detection() -> None:
    from sklearn.metrics import average_precision_score as aps

    import labelaudit.dynamics as d
    from bench.detector_cases import _noisy, _source
    from labelaudit.detect import detect_label_issues

    ds, emb = _source("banking-test-uniform-5")
    labels, truth = _noisy("banking-test-uniform-5", ds, emb)
    noisy = ds.with_labels(labels)
    limited = d.single_blas_thread
    for mode in ("before (default BLAS threads)", "after (one BLAS thread)"):
        d.single_blas_thread = contextlib.nullcontext if mode.startswith("before") else limited
        d._MEMO.clear()
        steps: dict[str, float] = {}
        progress = _step_timer(steps)
        t, c = time.perf_counter(), time.process_time()
        det = detect_label_issues(noisy, emb, seed=0, progress=progress)
        progress("end", 0, 0)
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        aps_ = {n: aps(truth, det.table[f"score_{n}"].to_numpy()) for n in det.details.detectors}
        print(
            f"{mode}: combined AP {aps(truth, det.table['label_issue_score'].to_numpy()):.4f}, "
            f"wall {wall:.1f} s, cpu {cpu:.1f} s, load {os.getloadavg()[0]:.1f}",
            flush=True,
        )
        print("  AP: " + ", ".join(f"{n} {v:.4f}" for n, v in aps_.items()), flush=True)
        print("  steps (s): " + ", ".join(f"{k} {v:.1f}" for k, v in steps.items()), flush=True)
    d.single_blas_thread = limited


if __name__ == "__main__":
    detection() if "--detection" in sys.argv[1:] else main()
