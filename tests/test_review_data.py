"""A tiny dataset and scan table shared by the review tests (builders only; no tests here)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from labelaudit.dataset import Dataset

CLASSES = ["card_arrival", "card_delivery_estimate", "refund_not_showing_up"]
N = 40
N_TEST = 8


def toy_dataset(seed: int = 0) -> Dataset:
    """40 rows, 3 classes, the last 8 in the protected test split; pred_probs, embeddings, annotations,
    class descriptions and a metadata column. Row 3's text and row 5's metadata look like formulas."""
    rng = np.random.default_rng(seed)
    labels = [CLASSES[i % 3] for i in range(N)]
    texts = [f"query number {i} about {labels[i].replace('_', ' ')}" for i in range(N)]
    texts[3] = '=HYPERLINK("http://evil.example","click")'
    texts[4] = "<b>bold</b> & <script>alert(1)</script>"
    frame = pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(N)],
            "text": texts,
            "label": labels,
            "split": ["train"] * (N - N_TEST) + ["test"] * N_TEST,
            "channel": ["app"] * N,
        }
    )
    frame.loc[5, "channel"] = "@SUM(A1:A9)"
    probs = rng.dirichlet(np.ones(3), size=N)
    probs[0] = [
        0.05,
        0.9,
        0.05,
    ]  # row 0 is labelled card_arrival but the model says card_delivery_estimate
    emb = rng.normal(size=(N, 8)).astype(np.float32)
    emb[1] = emb[0] + 0.01  # row 1 is row 0's nearest neighbour
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    ann = pd.DataFrame(
        {
            "item_id": ["r0", "r0", "r0", "r1"],
            "annotator_id": ["x", "y", "z", "x"],
            "label": [
                "card_delivery_estimate",
                "card_delivery_estimate",
                "card_arrival",
                "card_arrival",
            ],
        }
    )
    return Dataset(
        frame=frame,
        classes=list(CLASSES),
        source="toy.csv",
        pred_probs=probs,
        embeddings=emb,
        annotations=ann,
        class_descriptions={"card_delivery_estimate": "when will my card arrive (before it ships)"},
    )


def toy_scan_table(ds: Dataset) -> pd.DataFrame:
    """A scan table shaped like ScanResult.table: rows 0, 7 and 35 (test) flagged, scores decreasing."""
    n = ds.n
    score = np.linspace(0.5, 0.0, n)
    flagged = np.zeros(n, dtype=bool)
    flagged[[0, 7, 35]] = True
    score[[0, 7, 35]] = [0.95, 0.97, 0.9]
    sugg = ds.pred_probs.argmax(1)
    return pd.DataFrame(
        {
            "id": ds.ids,
            "given_label": ds.label_names,
            "split": ds.frame["split"],
            "label_issue_score": score,
            "is_label_issue": flagged,
            "suggested_label": np.asarray(ds.classes, dtype=object)[sugg],
            "suggested_label_prob": ds.pred_probs.max(1),
            "n_flags": flagged.astype(int),
            "score_confident_learning": score,
            "is_issue_confident_learning": flagged,
            "suggested_confident_learning": sugg,
            "evidence_confident_learning": ["model disagrees"] * n,
            "score_knn": score / 2,
        }
    )
