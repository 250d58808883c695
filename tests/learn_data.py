"""A synthetic review world for the learning and audit tests (builders only; no tests here).

N rows, K classes, a seeded set of true label errors, and a scan table whose detectors see them
with different quality: ``good`` is informative everywhere, ``classy`` only in the first two
classes, ``noisy`` flags at random. The static rank average gives them equal weight, so a combiner
that learns from decisions has something to gain.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from labelaudit.dataset import Dataset
from labelaudit.detectors.base import rank_normalise

CLASSES = ["alpha", "beta", "gamma", "delta", "epsilon"]


def world(
    n: int = 1200, *, error_rate: float = 0.08, seed: int = 0
) -> tuple[Dataset, pd.DataFrame, np.ndarray]:
    """``(dataset, scan table, truth)``; ``truth`` bool (N,): the given label is wrong."""
    rng = np.random.default_rng(seed)
    k = len(CLASSES)
    labels = rng.integers(0, k, size=n)
    truth = rng.random(n) < error_rate
    cluster = rng.integers(0, 12, size=n)
    good = np.clip(np.where(truth, rng.beta(5, 2, n), rng.beta(2, 5, n)), 0, 1)
    in_classy = labels < 2
    classy = np.clip(np.where(truth & in_classy, rng.beta(8, 1.5, n), rng.beta(2, 4, n)), 0, 1)
    noisy = rng.random(n)
    scores = {"good": good, "classy": classy, "noisy": noisy}
    flags = {name: s > 0.7 for name, s in scores.items()}
    combined = np.mean([rank_normalise(s) for s in scores.values()], axis=0)
    n_flags = np.sum(list(flags.values()), axis=0)
    # The model's suggestion disagrees with most wrong labels and with some right ones.
    disagrees = np.where(truth, rng.random(n) < 0.8, rng.random(n) < 0.2)
    suggested = np.where(disagrees, (labels + 1 + rng.integers(0, k - 1, n)) % k, labels)
    frame = pd.DataFrame(
        {
            "id": [f"i{i}" for i in range(n)],
            "text": [f"text {i}" for i in range(n)],
            "label": np.asarray(CLASSES, dtype=object)[labels],
            "split": "train",
        }
    )
    ds = Dataset(frame=frame, classes=list(CLASSES), source="synthetic")
    table = pd.DataFrame(
        {
            "id": frame["id"],
            "given_label": frame["label"],
            "split": "train",
            "cluster": cluster,
            "label_issue_score": combined,
            "is_label_issue": n_flags >= 2,
            "suggested_label": np.asarray(CLASSES, dtype=object)[suggested],
            "suggested_label_prob": rng.uniform(0.3, 0.9, n),
            "n_flags": n_flags,
            **{f"score_{k_}": v for k_, v in scores.items()},
            **{f"is_issue_{k_}": v for k_, v in flags.items()},
        }
    )
    return ds, table, truth


def outcomes_for(ds: Dataset, rows, truth: np.ndarray, *, audit=None, table=None) -> pd.DataFrame:
    """The :func:`labelaudit.review.learn.reviewed_outcomes` frame a reviewer who knows ``truth``
    would produce after deciding ``rows`` in that order (errors changed, others kept)."""
    rows = np.asarray(rows, dtype=np.int64)
    audit = np.zeros(len(rows), dtype=bool) if audit is None else np.asarray(audit, dtype=bool)
    flagged = (
        table["is_label_issue"].to_numpy()[rows] if table is not None else np.zeros(len(rows), bool)
    )
    return pd.DataFrame(
        {
            "item_id": ds.ids[rows].astype(str),
            "row": rows,
            "action": np.where(truth[rows], "change", "keep"),
            "changed": truth[rows],
            "audit": audit,
            "queue": "ranking",
            "flagged": flagged,
            "decision_id": np.arange(1, len(rows) + 1, dtype=np.int64),
            "review_order": np.arange(len(rows), dtype=np.int64),
        }
    )


def audited_review(
    ds: Dataset,
    table: pd.DataFrame,
    truth: np.ndarray,
    *,
    n_decisions: int,
    share: float,
    seed: int,
    n_sample: int = 1000,
    window: int = 0,
    learnt_score: np.ndarray | None = None,
):
    """A reviewer who knows ``truth`` goes down the static ranking for ``n_decisions`` decisions,
    taking an audit item whenever :func:`labelaudit.review.audit.audit_slots` says so. Returns
    ``(outcomes, plan)``. With ``window`` > 0 the queue is a selective one like the learnt queue:
    the next ranked item is the one with the highest ``learnt_score`` (float (N,)) among the static
    ranking's next ``window`` undecided rows, so the rows it passes over stay undecided."""
    from labelaudit.review import audit, learn

    plan = audit.draw_audit_plan(ds, table, n_items=n_sample, seed=seed)
    order = learn.static_order(table)
    row_of = ds.id_to_row
    pending = [row_of[i] for i in plan.items["item_id"]]
    decided = np.zeros(ds.n, dtype=bool)
    rows, is_audit = [], []
    a = ai = ri = 0
    for d in range(n_decisions):
        take = None
        if audit.audit_slots(share, d, a, 1)[0]:
            while ai < len(pending) and decided[pending[ai]]:
                ai += 1
            if ai < len(pending):
                take, a = pending[ai], a + 1
                ai += 1
        flag = take is not None
        if take is None and window > 0 and learnt_score is not None:
            ahead = order[~decided[order]][:window]
            take = int(ahead[np.argmax(learnt_score[ahead])])
        elif take is None:
            while decided[order[ri]]:
                ri += 1
            take = int(order[ri])
        decided[take] = True
        rows.append(take)
        is_audit.append(flag)
    return outcomes_for(ds, rows, truth, audit=is_audit, table=table), plan
