"""Issue 15 "no behaviour changed": quality figures of one code tree, to compare two trees exactly.

    .venv/bin/python -m bench.bench_behaviour_check [--out FILE.json]

Run it once in a checkout of the commit before a refactor and once after (each with its own code
on ``PYTHONPATH``), then compare the two outputs. It measures, without the embedding model:

1. truth inference (what ``labelaudit agreement --method mv|ds|mace`` runs) against the gold labels
   of Snow et al. (2008) temporal ordering and word sense (../shared/benchmarks/multiannotator),
   as in ``bench.bench_agreement``;
2. the training-dynamics detectors (datamap, forgetting, aum) and knn with the rank average on a
   seeded synthetic set (2,000 rows, 10 classes, 64-d clustered embeddings, 5 % labels flipped to
   another class at random): each score's AP against the flips, a digest of the whole detection
   table, and whether a second run read back from the workspace gives the same table.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SNOW = ROOT.parent / "shared" / "benchmarks" / "multiannotator"


def truth_accuracy() -> dict[str, float]:
    from bench.bench_agreement import ours

    out = {}
    for name in ("temp", "wsd"):
        df = pd.read_csv(SNOW / f"{name}.standardized.tsv", sep="\t", dtype=str)
        long = df.rename(
            columns={"orig_id": "item_id", "!amt_worker_ids": "annotator_id", "response": "label"}
        )[["item_id", "annotator_id", "label"]]
        gold = df.groupby("orig_id")["gold"].first()
        for method, (consensus, _, _) in ours(long).items():
            out[f"{name} {method}"] = round(float((consensus.loc[gold.index] == gold).mean()), 4)
    return out


def detector_figures() -> dict[str, object]:
    from sklearn.metrics import average_precision_score

    import labelaudit as la
    from labelaudit.detect import detect_label_issues
    from labelaudit.workspace import Workspace

    rng = np.random.default_rng(0)
    n, k, d = 2000, 10, 64
    centres = rng.normal(size=(k, d))
    truth = rng.integers(0, k, n)
    x = (centres[truth] + rng.normal(scale=1.5, size=(n, d))).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    flipped = rng.random(n) < 0.05
    given = np.where(flipped, (truth + rng.integers(1, k, n)) % k, truth)
    frame = pd.DataFrame(
        {"id": [str(i) for i in range(n)], "text": [f"t{i}" for i in range(n)], "label": given}
    )
    ds = la.load_dataset(frame.astype({"label": str}))
    ws = Workspace(tempfile.mkdtemp(prefix="behaviour-check-"))
    names = ["datamap", "forgetting", "aum", "knn"]
    first = detect_label_issues(ds, x, workspace=ws, seed=0, detectors=names)
    again = detect_label_issues(ds, x, workspace=ws, seed=0, detectors=names)
    table = first.table
    scores = [c for c in table.columns if c == "label_issue_score" or c.startswith("score_")]
    digest = hashlib.sha256(pd.util.hash_pandas_object(table, index=True).values.tobytes())
    return {
        "errors": int(flipped.sum()),
        "ap": {c: round(float(average_precision_score(flipped, table[c])), 4) for c in scores},
        "table_sha256": digest.hexdigest()[:16],
        "reload_equal": bool(again.table.equals(table)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", help="also write the figures here as JSON")
    args = ap.parse_args()
    import labelaudit

    figures = {
        "code": str(Path(labelaudit.__file__).parent),
        "truth_accuracy": truth_accuracy(),
        "detectors": detector_figures(),
    }
    text = json.dumps(figures, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
