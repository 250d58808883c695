"""A seeded, documented review simulation, so the ROI page has real decisions to compute from in a demo.

What it does, step by step (every number the ROI page then shows is computed from what this writes):

1. **Plant flips.** A seeded share of the *train* rows (never the test split) get a wrong label: the
   class whose embedding centroid is nearest to the row's true class (one of the 3 nearest, seeded),
   so the flips look like real confusions (card_arrival -> card_delivery_estimate), not noise.
   The original labels are the **answer key**.
2. **Save the flipped dataset** in the workspace (:meth:`Workspace.save_dataset`): it is a dataset
   version of its own, and the simulated decisions attach to its content hash. The sample itself
   is left untouched.
3. **Scan** the flipped dataset (embeddings and map are shared with the sample through the text hash).
4. **Replay a reviewer** down the ranked queue (:func:`labelaudit.review.queue.build_queue`) through
   :class:`ReviewStore`, as reviewer ``simulated-reviewer``: a planted flip is *accepted* when the
   suggestion restores the original label, else *changed* to the original label; a row that was not
   flipped is *kept* (the simulated reviewer knows only the answer key, so it keeps BANKING77's own
   natural label errors too). A seeded small share is marked *ambiguous* or *removed*, and a few
   decisions are made wrong, then undone and redone. Gaps between decisions are drawn from a
   log-normal distribution (median :data:`MEDIAN_SECONDS`) with a coffee break every 60-120 items.

The decisions carry simulated timestamps: the store stamps decisions with its clock, and the replay
records through a store whose clock is the simulated one (:func:`simulated_clock`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from labelaudit.dataset import ID, Dataset
from labelaudit.errors import UsageError
from labelaudit.progress import ProgressFn, no_progress
from labelaudit.roi import SIMULATED_REVIEWER

if TYPE_CHECKING:
    from labelaudit.review.store import Clock

#: Median seconds between two simulated decisions (a careful reviewer reading evidence).
MEDIAN_SECONDS = 18.0
#: Spread of the log-normal gaps (sigma of the log).
GAP_SIGMA = 0.6
#: When the simulated session starts (fixed, so reruns give the same log).
START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
ANSWER_KEY = "simulation_answer_key"
SIMULATION_META = "simulation_meta"


#: How planted flips choose the wrong class: one of the 3 classes whose centroid is nearest (the
#: demo), the single nearest one, or any other class uniformly.
FLIP_MODES = ("similar", "nearest", "uniform")


def plant_flips(
    ds: Dataset,
    embeddings: np.ndarray,
    *,
    rate: float = 0.05,
    seed: int = 0,
    mode: str = "similar",
) -> tuple[Dataset, pd.DataFrame]:
    """Flip a seeded ``rate`` of the train rows (or of all rows when there is no test split, never
    test rows) to another class; returns ``(flipped dataset, answer key)``.

    ``mode`` (:data:`FLIP_MODES`): ``"similar"`` flips to one of the 3 classes whose embedding
    centroid is nearest (seeded), ``"nearest"`` to the nearest one, ``"uniform"`` to any other
    class. ``embeddings``: float (N, D) row-aligned. The answer key has columns ``id``,
    ``original_label``, ``planted_label``, one row per flipped row.

    >>> flipped, key = plant_flips(ds, emb, rate=0.05, seed=0)   # doctest: +SKIP
    >>> (flipped.label_names != ds.label_names).sum() == len(key)  # doctest: +SKIP
    True
    """
    if not 0 < rate < 1:
        raise UsageError(f"the flip rate must be between 0 and 1, got {rate}")
    if mode not in FLIP_MODES:
        raise UsageError(f"unknown flip mode {mode!r}; choose one of {', '.join(FLIP_MODES)}")
    rng = np.random.default_rng(seed)
    x = np.asarray(embeddings, dtype=np.float64)
    labels = ds.labels
    centroids = np.zeros((ds.k, x.shape[1]))
    for k in range(ds.k):
        rows = labels == k
        if rows.any():
            centroids[k] = x[rows].mean(axis=0)
    norms = np.linalg.norm(centroids, axis=1, keepdims=True)
    sims = (centroids / np.maximum(norms, 1e-12)) @ (centroids / np.maximum(norms, 1e-12)).T
    np.fill_diagonal(sims, -np.inf)
    nearest = np.argsort(-sims, axis=1)[:, : min(3, ds.k - 1)]  # the class itself sorts last
    eligible = np.flatnonzero(~ds.test_mask)
    n_flip = int(round(rate * len(eligible)))
    chosen = np.sort(rng.choice(eligible, size=n_flip, replace=False))
    new = labels.copy()
    if mode == "similar":
        new[chosen] = nearest[labels[chosen], rng.integers(0, nearest.shape[1], size=n_flip)]
    elif mode == "nearest":
        new[chosen] = nearest[labels[chosen], 0]
    else:
        new[chosen] = (labels[chosen] + rng.integers(1, ds.k, size=n_flip)) % ds.k
    key = pd.DataFrame(
        {
            "id": ds.frame[ID].to_numpy(dtype=object)[chosen],
            "original_label": np.asarray(ds.classes, dtype=object)[labels[chosen]],
            "planted_label": np.asarray(ds.classes, dtype=object)[new[chosen]],
        }
    )
    flipped = ds.with_labels(new)
    flipped.source = f"{ds.source} with {n_flip} planted label flips (seed {seed}, simulation)"
    return flipped, key


def simulated_clock(times: Iterable[datetime]) -> Clock:
    """A store :data:`~labelaudit.review.store.Clock` that returns the next of ``times`` at each call
    (``ReviewStore(url, clock=...)`` or ``store.with_clock(...)``); raises StopIteration past the end.

    >>> tick = simulated_clock([START, START + timedelta(seconds=5)])
    >>> tick().second, tick().second
    (0, 5)
    """
    return functools.partial(next, iter(times))


def decision_times(
    n: int, *, seed: int = 0, start: datetime = START, median_seconds: float = MEDIAN_SECONDS
) -> list[datetime]:
    """``n`` increasing timestamps: log-normal gaps (median ``median_seconds``), a 15-40 min break
    every 60-120 decisions."""
    rng = np.random.default_rng(seed + 1)
    gaps = rng.lognormal(mean=math.log(median_seconds), sigma=GAP_SIGMA, size=n)
    next_break = int(rng.integers(60, 121))
    t, out = start, []
    for i in range(n):
        if i == next_break:
            t += timedelta(minutes=float(rng.uniform(15, 40)))
            next_break += int(rng.integers(60, 121))
        t += timedelta(seconds=float(gaps[i]))
        out.append(t)
    return out


@dataclass
class SimulationResult:
    dataset_hash: str
    n_flipped: int
    n_reviewed: int
    actions: dict[str, int]
    flips_found: int


def simulated_decision(
    item: str,
    given: str,
    suggested: str | None,
    original: dict[str, str],
    rng: np.random.Generator,
    *,
    ambiguous_rate: float = 0.03,
    remove_rate: float = 0.01,
) -> tuple[str, str | None]:
    """What the simulated reviewer decides on one item: ``(action, new label)``.

    ``original``: answer key {flipped id: original label}. A planted flip is accepted when the
    suggestion restores the original label, else changed to it; other rows are kept. A seeded
    ``ambiguous_rate`` of items is marked ambiguous and ``remove_rate`` of unflipped ones removed.
    """
    u = rng.random()
    if item in original and u >= ambiguous_rate:
        truth = original[item]
        return ("accept" if suggested == truth else "change"), truth
    if u < ambiguous_rate:
        return "ambiguous", given
    if item not in original and u < ambiguous_rate + remove_rate:
        return "remove", None
    return "keep", given


def replay_review(
    store: Any,
    ds: Dataset,
    answer_key: pd.DataFrame,
    scan_table: pd.DataFrame,
    *,
    n_items: int = 500,
    seed: int = 0,
    ambiguous_rate: float = 0.03,
    remove_rate: float = 0.01,
    mistake_rate: float = 0.01,
    progress: ProgressFn = no_progress,
) -> dict[str, int]:
    """Replay a reviewer over the first ``n_items`` of the ranked queue; returns action counts.

    ``ds``: the flipped dataset; ``answer_key``: :func:`plant_flips`' key; ``scan_table``: the
    scan of ``ds``. Decisions are recorded through ``store`` (a :class:`ReviewStore`) under
    ``ds.content_hash`` as :data:`~labelaudit.roi.SIMULATED_REVIEWER`, with simulated timestamps.
    """
    from labelaudit.review.queue import build_queue, item_evidence

    h = ds.content_hash
    if store.latest_decision_ids(h):
        raise UsageError(
            f"dataset {h} already has review decisions; simulate into a fresh workspace"
        )
    rng = np.random.default_rng(seed + 2)
    original = dict(zip(answer_key["id"], answer_key["original_label"], strict=True))
    queue = build_queue(ds, scan_table=scan_table)[:n_items]
    # The store stamps with the simulated times; a mistake takes three records.
    store = store.with_clock(simulated_clock(decision_times(len(queue) * 3, seed=seed)))
    counts: dict[str, int] = {}
    for i, item in enumerate(queue):
        progress("simulated review", i, len(queue))
        ev = item_evidence(ds, item, scan_table=scan_table)
        shown = ev.shown("ranking")
        given = ev.given_label
        action, new_label = simulated_decision(
            item,
            given,
            ev.suggested_label,
            original,
            rng,
            ambiguous_rate=ambiguous_rate,
            remove_rate=remove_rate,
        )
        seen = None
        if rng.random() < mistake_rate:  # decide wrongly first, notice, undo
            wrong = "keep" if action != "keep" else "ambiguous"
            d = store.record(
                dataset_version=h,
                item_id=item,
                reviewer=SIMULATED_REVIEWER,
                action=wrong,
                old_label=given,
                new_label=given,
                shown=shown,
                seen_decision_id=None,
            )
            u_ = store.undo(
                dataset_version=h,
                item_id=item,
                reviewer=SIMULATED_REVIEWER,
                seen_decision_id=d.id,
            )
            seen = u_.id
            counts["undo"] = counts.get("undo", 0) + 1
        store.record(
            dataset_version=h,
            item_id=item,
            reviewer=SIMULATED_REVIEWER,
            action=action,
            old_label=given,
            new_label=new_label,
            shown=shown,
            seen_decision_id=seen,
            comment="simulated from the answer key",
        )
        counts[action] = counts.get(action, 0) + 1
    progress("simulated review", len(queue), len(queue))
    return counts


def replay_adaptive_review(
    store: Any,
    ds: Dataset,
    answer_key: pd.DataFrame,
    scan_table: pd.DataFrame,
    *,
    n_items: int,
    details: Mapping[str, Any] | None = None,
    workspace: Any = None,
    rerank_every: int | None = None,
    audit_share: float = 0.0,
    audit_items: int | None = None,
    seed: int = 0,
    ambiguous_rate: float = 0.03,
    remove_rate: float = 0.01,
    on_queue: Any = None,
    progress: ProgressFn = no_progress,
) -> dict[str, int]:
    """Replay the simulated reviewer down the *queue in force*, as the Review page serves it.

    Like :func:`replay_review`, but the queue comes from
    :func:`labelaudit.review.adaptive.queue_in_force`: it is re-ranked every ``rerank_every``
    decisions (the learnt combiner once the decisions allow it), and with ``audit_share`` > 0 audit
    items are interleaved (their decisions carry ``shown["audit"]``). ``on_queue(n_decided, q)`` is
    called with every queue fetched (at the start and after each re-ranking). No undos; decisions
    are stamped with the store's clock. Returns the action counts.
    """
    from labelaudit.review import adaptive, audit
    from labelaudit.review.queue import RANKING_SOURCE, item_evidence

    h = ds.content_hash
    if store.latest_decision_ids(h):
        raise UsageError(
            f"dataset {h} already has review decisions; simulate into a fresh database"
        )
    if rerank_every is not None:
        adaptive.save_setting(store, h, "rerank_every", rerank_every, set_by=SIMULATED_REVIEWER)
    if audit_share > 0:
        adaptive.start_audit(
            store,
            ds,
            scan_table,
            share=audit_share,
            created_by=SIMULATED_REVIEWER,
            seed=seed,
            n_items=audit.DEFAULT_SAMPLE if audit_items is None else audit_items,
        )
    rng = np.random.default_rng(seed + 2)
    original = dict(zip(answer_key["id"], answer_key["original_label"], strict=True))
    counts: dict[str, int] = {}
    done = 0
    while done < n_items:
        q = adaptive.queue_in_force(
            store,
            ds,
            scan_table,
            details=details,
            workspace=workspace,
            seed=seed,
            requested_by=SIMULATED_REVIEWER,
        )
        if on_queue is not None:
            on_queue(done, q)
        if q.queue.empty:
            break
        # The queue stays as it is until the next re-ranking is due: decide that many items.
        batch = q.queue.head(min(max(q.next_rerank_in, 1), n_items - done))
        for item, is_audit in zip(batch["id"], batch["audit"], strict=True):
            progress("simulated review", done, n_items)
            ev = item_evidence(ds, item, scan_table=scan_table)
            shown = ev.shown(RANKING_SOURCE)
            if is_audit:
                shown["audit"] = True
            action, new_label = simulated_decision(
                item,
                ev.given_label,
                ev.suggested_label,
                original,
                rng,
                ambiguous_rate=ambiguous_rate,
                remove_rate=remove_rate,
            )
            store.record(
                dataset_version=h,
                item_id=item,
                reviewer=SIMULATED_REVIEWER,
                action=action,
                old_label=ev.given_label,
                new_label=new_label,
                shown=shown,
                seen_decision_id=None,
                comment="simulated from the answer key",
            )
            counts[action] = counts.get(action, 0) + 1
            done += 1
    progress("simulated review", done, n_items)
    return counts


def run_simulation(
    *,
    workspace: Any,
    data: str,
    db_url: str | None = None,
    rate: float = 0.05,
    n_items: int = 500,
    seed: int = 0,
    warm_roi: bool = True,
    progress: ProgressFn = no_progress,
) -> SimulationResult:
    """Plant flips in ``data``, save and scan the flipped dataset, replay the review, and (with
    ``warm_roi``) compute the ROI retraining so the page opens fast. Returns what was done."""
    from labelaudit.io import load_dataset
    from labelaudit.scanning import get_embeddings, scan

    ds = load_dataset(data)
    emb = get_embeddings(ds, workspace=workspace, progress=progress)
    flipped, key = plant_flips(ds, emb, rate=rate, seed=seed)
    h = workspace.save_dataset(flipped)
    workspace.save(h, ANSWER_KEY, key, ext="parquet")
    workspace.save(
        h,
        SIMULATION_META,
        {
            "source": ds.source,
            "rate": rate,
            "seed": seed,
            "n_items": n_items,
            "n_flipped": len(key),
            "reviewer": SIMULATED_REVIEWER,
        },
        ext="json",
    )
    flipped = workspace.load_dataset(h)
    res = scan(flipped, workspace=workspace, seed=seed, progress=progress)
    store = workspace.review_store(db_url)
    try:
        counts = replay_review(
            store, flipped, key, res.table, n_items=n_items, seed=seed, progress=progress
        )
        store.add_finding(
            dataset_version=h,
            kind="note",
            target="simulation",
            note=f"Decisions replayed from an answer key of {len(key)} planted flips "
            f"(seed {seed}); not a human review.",
            author=SIMULATED_REVIEWER,
        )
        log = store.log(h)
    finally:
        store.close()
    if warm_roi:
        from labelaudit import roi

        roi.before_after(
            flipped, res.embeddings, log, workspace=workspace, seed=seed, progress=progress
        )
    queue_ids = set(log["item_id"])
    found = int(sum(1 for i in key["id"] if i in queue_ids))
    return SimulationResult(
        dataset_hash=h,
        n_flipped=len(key),
        n_reviewed=len(queue_ids),
        actions=counts,
        flips_found=found,
    )


def load_answer_key(workspace: Any, dataset_hash: str) -> pd.DataFrame | None:
    """The answer key a simulation stored for ``dataset_hash``, or None when it is not a simulation."""
    if not workspace.has(dataset_hash, ANSWER_KEY, ext="parquet"):
        return None
    return workspace.load(dataset_hash, ANSWER_KEY, ext="parquet")


def main(argv: list[str] | None = None) -> int:
    """``python scripts/simulate_review.py [--workspace DIR] [--data DIR] [--rate 0.05] [--items 500] [--seed 0]``."""
    import argparse
    import os
    import sys
    from pathlib import Path

    from labelaudit.progress import TqdmProgress
    from labelaudit.workspace import Workspace

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sample = Path(__file__).resolve().parents[1] / "sample_data" / "banking77"
    p = argparse.ArgumentParser(prog="simulate_review", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--workspace", help="workspace folder (default: LABELAUDIT_WORKSPACE or .labelaudit)"
    )
    p.add_argument(
        "--data",
        default=str(sample),
        help="dataset to plant flips in (default: the BANKING77 sample)",
    )
    p.add_argument("--db", help="review database URL (default: the workspace's)")
    p.add_argument(
        "--rate", type=float, default=0.05, help="share of train rows to flip (default 0.05)"
    )
    p.add_argument(
        "--items", type=int, default=500, help="items the simulated reviewer decides (default 500)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-roi", action="store_true", help="do not precompute the ROI retraining")
    args = p.parse_args(argv)
    ws = Workspace(args.workspace)
    bar = TqdmProgress()
    try:
        r = run_simulation(
            workspace=ws,
            data=args.data,
            db_url=args.db,
            rate=args.rate,
            n_items=args.items,
            seed=args.seed,
            warm_roi=not args.no_roi,
            progress=bar,
        )
    except UsageError as e:
        print(f"usage error: {e}", file=sys.stderr)
        return 2
    finally:
        bar.close()
    print(
        f"planted {r.n_flipped} flips; simulated reviewer decided {r.n_reviewed} items "
        f"({', '.join(f'{k} {v}' for k, v in sorted(r.actions.items()))}); {r.flips_found} of the flips were in the "
        f"reviewed part of the queue"
    )
    print(f"flipped dataset: {r.dataset_hash} in {ws.root}")
    print(
        f"open it:  LABELAUDIT_DATASET={r.dataset_hash} labelaudit app --workspace {ws.root}   (then the ROI page)"
    )
    print(
        f"report:   labelaudit report --workspace {ws.root} --dataset {r.dataset_hash} --out roi_report.html"
    )
    return 0
