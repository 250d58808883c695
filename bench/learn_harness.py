"""Diagnostic harness for the learnt queue (issue 13): a reviewer who knows the planted flips decides
down the queue, re-ranked every 20 decisions, without the review store (faster than bench_learn's
replay; no ambiguous/remove decisions). Prints the precision of the next 200 at 100/200/400 reviewed
and (ranking, CV AUROC learnt, static AUROC) of the fit in force.

    .venv/bin/python -m bench.learn_harness current,static nearest,uniform 0,1

Needs the scans cached by bench.bench_learn in /tmp/labelaudit-bench-learn.
"""

import sys
import time

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))
from pathlib import Path

import numpy as np
import pandas as pd

from bench.bench_learn import CORE, Bench
from labelaudit.review import learn

CHECK = (100, 200, 400)


def outcomes(ds, rows, truth, table):
    rows = np.asarray(rows, dtype=np.int64)
    return pd.DataFrame(
        {
            "item_id": ds.ids[rows].astype(str),
            "row": rows,
            "action": np.where(truth[rows], "change", "keep"),
            "changed": truth[rows],
            "audit": False,
            "queue": "ranking",
            "flagged": table["is_label_issue"].fillna(False).to_numpy(bool)[rows],
            "decision_id": np.arange(1, len(rows) + 1),
            "review_order": np.arange(len(rows)),
        }
    )


def run(ds, table, details, truth, ranker, every=20, upto=400):
    decided = []
    is_dec = np.zeros(ds.n, bool)
    res = {}
    order = learn.static_order(table)
    info = None
    while len(decided) <= upto:
        if len(decided) and len(decided) % every == 0:
            order, info = ranker(ds, table, details, outcomes(ds, decided, truth, table))
        rem = order[~is_dec[order]]
        if len(decided) in CHECK:
            res[len(decided)] = (truth[rem[:200]].mean(), info)
        if len(decided) == upto:
            break
        take = rem[:every]
        decided.extend(take.tolist())
        is_dec[take] = True
    return res


def static(ds, table, details, out):
    return learn.static_order(table), None


def current(ds, table, details, out):
    fit = learn.fit_learnt(ds, table, out, details=details)
    return learn.ranked_rows(fit, table), (
        fit.ranking,
        round(fit.auroc, 3),
        round(fit.auroc_static, 3),
    )


VARIANTS = {"static": static, "current": current}

if __name__ == "__main__":
    names = sys.argv[1].split(",")
    modes = sys.argv[2].split(",") if len(sys.argv) > 2 else ["nearest", "uniform"]
    seeds = [int(s) for s in sys.argv[3].split(",")] if len(sys.argv) > 3 else [0, 1]
    import importlib.util

    if len(sys.argv) > 4:
        spec = importlib.util.spec_from_file_location("v", sys.argv[4])
        v = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(v)
        VARIANTS.update(v.VARIANTS)
    b = Bench("/tmp/labelaudit-bench-learn", CORE, Path("/dev/shm/lh"))
    for mode in modes:
        for seed in seeds:
            ds, key, r = b.flipped(mode, seed)
            flips = set(key["id"])
            truth = np.array([i in flips for i in ds.ids.astype(str)])
            details = r.detection.details if r.detection is not None else {}
            for name in names:
                t = time.time()
                out = run(ds, r.table, details, truth, VARIANTS[name])
                print(
                    mode,
                    seed,
                    name,
                    " ".join(
                        f"{k}:{v[0]:.2f}{'' if v[1] is None else v[1]}" for k, v in out.items()
                    ),
                    f"{time.time() - t:.0f}s",
                    flush=True,
                )
