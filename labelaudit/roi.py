"""Return on the review: what the decisions changed, what they cost, and what is left to fix.

Everything here is computed from the stored decision log (:meth:`ReviewStore.log`) and the data;
nothing is estimated from outside. Definitions (the page and the report repeat them):

- **Reviewed items**: items with a decision in force after undos (an undo cancels the latest
  decision it has not cancelled yet; an item whose decisions were all undone is undecided again).
- **Precision of suggestions**: over reviewed items the detectors *flagged* (``is_label_issue``
  as shown to the reviewer, else from the scan table), the share whose label was changed:
  ``(accept + change) / (accept + change + keep + ambiguous + remove)``. *Remove* and *ambiguous*
  count against precision (the suggestion did not lead to a new label); the separate
  **problem rate** ``(accept + change + remove + ambiguous) / reviewed`` counts every decision that
  did not confirm the given label. By detector: over reviewed rows that detector flagged.
- **Reviewer time**: per reviewer, gaps between consecutive decisions (undos included, bulk
  decisions left out: one click decides many rows); gaps longer than :data:`BREAK_SECONDS` are
  breaks and ignored. Median seconds per item = median of the remaining gaps.
- **Before/after**: a multinomial logistic regression on the embeddings (same seed and
  hyper-parameters as the out-of-fold detector) trained on the original labels and on the labels
  after the decisions (removed rows dropped), both evaluated on the protected split.
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from labelaudit.dataset import ID, LABEL, Dataset
from labelaudit.progress import ProgressFn, no_progress
from labelaudit.review.identity import name_key

if TYPE_CHECKING:
    from labelaudit.review.audit import RemainingErrors

#: Reviewer name the demo simulation writes; the page and the report then say it is a simulation.
SIMULATED_REVIEWER = "simulated-reviewer"
#: Gaps between two decisions of one reviewer longer than this (seconds) are breaks, not work.
BREAK_SECONDS = 600.0
#: Decisions whose label changed.
RELABELS = ("accept", "change")
#: Fewest reviewed flagged rows a precision or a projection is given for; below it the page and
#: the report say there are too few decisions instead of extrapolating (two decisions say nothing).
MIN_DECISIONS_FOR_ESTIMATES = 10
#: The effective actions, in display order.
DECISION_ACTIONS = ("accept", "change", "keep", "ambiguous", "remove")
#: Share of rows held out for evaluation when the dataset has no test split.
HOLDOUT_FRACTION = 0.2
#: Paired bootstrap resamples over evaluation rows.
BOOTSTRAP_RESAMPLES = 1000
#: Retraining points on the accuracy curve (plus the start).
N_CHECKPOINTS = 10
#: Bump when before/after output changes for the same inputs (cached results are then ignored).
VERSION = 1

EFFECTIVE_COLUMNS = [
    "item_id",
    "action",
    "final_label",
    "old_label",
    "reviewer",
    "decided_at",
    "decision_id",
    "shown",
    "review_order",
]


# --------------------------------------------------------------------------- the decision log
def _shown(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    try:
        out = json.loads(value or "{}")
    except (TypeError, ValueError):
        return {}
    return out if isinstance(out, dict) else {}


def effective_decisions(log: pd.DataFrame) -> pd.DataFrame:
    """The decision in force for every reviewed item, in review order.

    ``log``: :meth:`ReviewStore.log` for one dataset version (columns ``decision_id``, ``item_id``,
    ``reviewer``, ``decided_at``, ``action``, ``old_label``, ``new_label``, ``shown``). Undo rows
    cancel the decision named by their ``shown["undoes"]`` (as the store writes them). Returns
    columns :data:`EFFECTIVE_COLUMNS`: ``final_label`` is None for removed rows, ``shown`` a dict,
    ``review_order`` 0..R-1 by the id of the decision in force.

    >>> log = pd.DataFrame({"decision_id": [1, 2, 3], "item_id": ["a", "b", "b"], "reviewer": "ana",
    ...     "decided_at": pd.Timestamp("2026-01-01", tz="UTC"), "action": ["change", "keep", "undo"],
    ...     "old_label": ["x", "y", "y"], "new_label": ["y", "y", "y"], "shown": ["{}", "{}", '{"undoes": 2}']})
    >>> effective_decisions(log)[["item_id", "action", "final_label"]].values.tolist()
    [['a', 'change', 'y']]
    """
    stacks: dict[str, list[dict[str, Any]]] = {}
    for rec in log.sort_values("decision_id", kind="stable").to_dict("records"):
        item = str(rec["item_id"])
        shown = _shown(rec.get("shown"))
        if rec["action"] == "undo":
            undoes = shown.get("undoes")
            stack = stacks.get(item, [])
            if undoes is not None:
                stacks[item] = [r for r in stack if int(r["decision_id"]) != int(undoes)]
            elif stack:  # an undo without a target cancels the latest decision in force
                stack.pop()
            continue
        rec = dict(rec, item_id=item, shown=shown)
        stacks.setdefault(item, []).append(rec)
    rows = []
    for item, stack in stacks.items():
        if not stack:
            continue
        top = stack[-1]
        final = None if top["action"] == "remove" else top["new_label"]
        action = top["action"]
        if action in RELABELS and final is not None and final == top["old_label"]:
            action = "keep"  # accepting a suggestion equal to the given label changes nothing
        rows.append(
            (
                item,
                action,
                final,
                top["old_label"],
                top["reviewer"],
                top["decided_at"],
                int(top["decision_id"]),
                top["shown"],
            )
        )
    df = pd.DataFrame(rows, columns=EFFECTIVE_COLUMNS[:-1])
    df = df.sort_values("decision_id", kind="stable").reset_index(drop=True)
    df["final_label"] = df["final_label"].astype(object).where(df["final_label"].notna(), None)
    df["review_order"] = np.arange(len(df), dtype=np.int64)
    return df


def decisions_digest(log: pd.DataFrame) -> str:
    """A short hash of the decision log (ids, items, actions, labels): the cache key of retrained results."""
    h = hashlib.sha256()
    for rec in log.sort_values("decision_id", kind="stable")[
        ["decision_id", "item_id", "action", "new_label", "shown"]
    ].itertuples(index=False):
        h.update("\x1f".join("" if v is None else str(v) for v in rec).encode("utf-8"))
        h.update(b"\x1e")
    return h.hexdigest()[:20]


def labels_after_review(ds: Dataset, decisions: pd.DataFrame) -> np.ndarray:
    """Class index of every row after the decisions: int64 (N,), -1 for removed rows.

    ``decisions``: :func:`effective_decisions`. Rows without a decision keep their given label;
    decisions naming an unknown item or class are ignored (they belong to another dataset version).
    """
    labels = ds.labels.copy()
    index = {c: i for i, c in enumerate(ds.classes)}
    for item, final, action in zip(
        decisions["item_id"], decisions["final_label"], decisions["action"], strict=True
    ):
        row = ds.id_to_row.get(str(item))
        if row is None:
            continue
        if action == "remove":
            labels[row] = -1
        elif final in index:
            labels[row] = index[final]
    return labels


def is_simulated(decisions: pd.DataFrame) -> bool:
    """True when any decision in force was written by the demo simulation."""
    return bool(len(decisions)) and bool((decisions["reviewer"] == SIMULATED_REVIEWER).any())


# --------------------------------------------------------------------------- precision
def wilson_interval(successes: int, n: int, *, z: float = 1.959964) -> tuple[float, float]:
    """95% Wilson score interval for a proportion (Wilson 1927); (nan, nan) when n == 0.

    >>> [round(v, 3) for v in wilson_interval(8, 10)]
    [0.49, 0.943]
    """
    if n <= 0:
        return (math.nan, math.nan)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


PRECISION_COLUMNS = [
    "group",
    "reviewed",
    "accept",
    "change",
    "keep",
    "ambiguous",
    "remove",
    "precision",
    "precision_low",
    "precision_high",
    "problem_rate",
]


def _precision_row(group: str, actions: pd.Series) -> dict[str, Any]:
    counts = {a: int((actions == a).sum()) for a in DECISION_ACTIONS}
    n = int(len(actions))
    changed = counts["accept"] + counts["change"]
    low, high = wilson_interval(changed, n)
    return {
        "group": group,
        "reviewed": n,
        **counts,
        "precision": changed / n if n else math.nan,
        "precision_low": low,
        "precision_high": high,
        "problem_rate": (n - counts["keep"]) / n if n else math.nan,
    }


def precision_table(
    actions: pd.Series, groups: pd.Series | np.ndarray | None = None
) -> pd.DataFrame:
    """Precision of suggestions per group (one row per group, most reviewed first).

    ``actions``: effective actions of the reviewed suggestions; ``groups``: a label per action
    (class, detector…), or None for one row named "all". Columns :data:`PRECISION_COLUMNS`:
    ``precision`` = (accept + change) / reviewed, with its 95% Wilson interval; ``problem_rate`` =
    share not kept as is. Precision is NaN for a group with no reviewed rows.
    """
    actions = pd.Series(actions).reset_index(drop=True)
    if groups is None:
        rows = [_precision_row("all", actions)]
    else:
        g = pd.Series(np.asarray(groups, dtype=object))
        rows = [_precision_row(str(name), actions[g == name]) for name in pd.unique(g)]
    df = pd.DataFrame(rows, columns=PRECISION_COLUMNS)
    return df.sort_values(
        ["reviewed", "group"], ascending=[False, True], kind="stable"
    ).reset_index(drop=True)


def flagged_at_decision(
    ds: Dataset, decisions: pd.DataFrame, scan_table: pd.DataFrame | None
) -> np.ndarray:
    """bool (R,): was each reviewed item flagged when it was decided? ``shown["is_label_issue"]``
    when the decision stored it, else the scan table's ``is_label_issue`` for that row, else False."""
    scan_flags = None
    if scan_table is not None and "is_label_issue" in scan_table and len(scan_table) == ds.n:
        scan_flags = scan_table["is_label_issue"].fillna(False).astype(bool).to_numpy()
    out = np.zeros(len(decisions), dtype=bool)
    for i, (item, shown) in enumerate(zip(decisions["item_id"], decisions["shown"], strict=True)):
        v = shown.get("is_label_issue") if isinstance(shown, dict) else None
        if v is not None:
            out[i] = bool(v)
        elif scan_flags is not None and item in ds.id_to_row:
            out[i] = bool(scan_flags[ds.id_to_row[item]])
    return out


def detector_flags(
    details: Mapping[str, Any] | None, scan_table: pd.DataFrame | None, n: int
) -> dict[str, np.ndarray]:
    """Per-detector flags, bool (N,) each: the detection details' ``flags`` (as the scan stores them),
    else ``is_issue_<detector>`` columns of the scan table. Empty when neither is there."""
    out: dict[str, np.ndarray] = {}
    for name, values in ((details or {}).get("flags") or {}).items():
        arr = np.asarray(values, dtype=bool)
        if arr.shape == (n,):
            out[str(name)] = arr
    if not out and scan_table is not None and len(scan_table) == n:
        for col in scan_table.columns:
            if str(col).startswith("is_issue_"):
                out[str(col)[len("is_issue_") :]] = (
                    scan_table[col].fillna(False).astype(bool).to_numpy()
                )
    return out


# --------------------------------------------------------------------------- reviewer time
@dataclass
class ReviewerTime:
    """Time spent reviewing, from the decision timestamps. Seconds; NaN when there are no gaps."""

    median_seconds: float
    active_seconds: float
    n_gaps: int
    n_breaks: int
    break_seconds: float = BREAK_SECONDS

    @property
    def items_per_hour(self) -> float:
        return (
            3600.0 / self.median_seconds
            if self.median_seconds and self.median_seconds > 0
            else math.nan
        )


def _distinct_reviewers(names: pd.Series) -> list[str]:
    """One entry per person (names compared by :func:`~labelaudit.review.identity.name_key`), shown
    in the spelling of that person's first decision.

    >>> _distinct_reviewers(pd.Series(["Ana", "bo", " ana", "ANA"]))
    ['Ana', 'bo']
    """
    first = names.groupby(names.map(name_key), sort=False).first()
    return sorted(first.tolist(), key=name_key)


def reviewer_time(log: pd.DataFrame, *, break_seconds: float = BREAK_SECONDS) -> ReviewerTime:
    """Median seconds per decision from the gaps between consecutive decisions of each reviewer.

    ``log``: the decision log (undos included: undoing and re-deciding is work). Bulk decisions
    (``shown["bulk"]``) are left out; gaps over ``break_seconds`` are breaks and ignored.

    >>> t = pd.to_datetime(["2026-01-01 10:00:00", "2026-01-01 10:00:20", "2026-01-01 10:00:50",
    ...                     "2026-01-01 11:00:00"], utc=True)
    >>> log = pd.DataFrame({"reviewer": "ana", "decided_at": t, "shown": "{}", "decision_id": range(4)})
    >>> reviewer_time(log).median_seconds   # gaps 20, 30; the hour-long one is a break
    25.0
    """
    if not len(log):
        return ReviewerTime(math.nan, 0.0, 0, 0, break_seconds)
    bulk = (
        log["shown"].map(lambda s: bool(_shown(s).get("bulk")))
        if "shown" in log
        else pd.Series(False, index=log.index)
    )
    df = log.loc[~bulk.to_numpy(), ["reviewer", "decided_at"]].copy()
    df["decided_at"] = pd.to_datetime(df["decided_at"], utc=True)
    gaps: list[float] = []
    breaks = 0
    # One person whatever the spelling ("Ana" and "ana"): names compare by the review store's key.
    for _, g in df.groupby(df["reviewer"].map(name_key), sort=True):
        secs = g["decided_at"].sort_values().diff().dt.total_seconds().dropna().to_numpy()
        breaks += int((secs > break_seconds).sum())
        gaps.extend(secs[secs <= break_seconds].tolist())
    if not gaps:
        return ReviewerTime(math.nan, 0.0, 0, breaks, break_seconds)
    return ReviewerTime(
        float(np.median(gaps)), float(np.sum(gaps)), len(gaps), breaks, break_seconds
    )


# --------------------------------------------------------------------------- review summary
@dataclass
class ReviewSummary:
    """What the review did so far. ``precision`` has one row ("all" flagged items reviewed);
    ``precision_unflagged`` the same over reviewed rows nobody flagged (the base rate a random
    review would find); ``by_class`` groups flagged items by given label, ``by_detector`` by the
    detector(s) that flagged the row (a row counts once for each detector that flagged it)."""

    n_reviewed: int
    counts: dict[str, int]
    n_log_rows: int
    n_undos: int
    reviewers: list[str]
    simulated: bool
    precision: pd.DataFrame
    precision_unflagged: pd.DataFrame
    by_class: pd.DataFrame
    by_detector: pd.DataFrame
    time: ReviewerTime
    decisions: pd.DataFrame = field(repr=False)

    @property
    def n_relabelled(self) -> int:
        return self.counts["accept"] + self.counts["change"]

    @property
    def overall_precision(self) -> float:
        return float(self.precision["precision"].iloc[0]) if len(self.precision) else math.nan

    @property
    def n_flagged_reviewed(self) -> int:
        return int(self.precision["reviewed"].iloc[0]) if len(self.precision) else 0

    @property
    def too_few_decisions(self) -> bool:
        """Fewer reviewed flagged rows than :data:`MIN_DECISIONS_FOR_ESTIMATES`: no precision or
        projection is shown, only the counts."""
        return self.n_flagged_reviewed < MIN_DECISIONS_FOR_ESTIMATES


def summarise_review(
    ds: Dataset,
    log: pd.DataFrame,
    *,
    scan_table: pd.DataFrame | None = None,
    details: Mapping[str, Any] | None = None,
    break_seconds: float = BREAK_SECONDS,
) -> ReviewSummary:
    """Counts, precision (overall, by class, by detector) and reviewer time of one dataset's review.

    ``log``: :meth:`ReviewStore.log` for ``ds.content_hash``; ``scan_table``: the scan's N-row
    table (for flags when a decision did not store them); ``details``: the detection details (its
    ``flags`` per detector).

    >>> s = summarise_review(ds, store.log(ds.content_hash), scan_table=res.table,
    ...                      details=res.detection.details)   # doctest: +SKIP
    >>> s.counts, s.overall_precision                            # doctest: +SKIP
    """
    dec = effective_decisions(log)
    dec = dec[dec["item_id"].isin(ds.id_to_row)].reset_index(drop=True)
    counts = {a: int((dec["action"] == a).sum()) for a in DECISION_ACTIONS}
    flagged = flagged_at_decision(ds, dec, scan_table)
    rows = np.array([ds.id_to_row[i] for i in dec["item_id"]], dtype=np.int64)
    given = (
        ds.frame[LABEL].to_numpy(dtype=object)[rows] if len(rows) else np.array([], dtype=object)
    )
    sug = dec.loc[flagged, "action"]
    by_class = (
        precision_table(sug, given[flagged])
        if flagged.any()
        else precision_table(sug.iloc[:0], np.array([], dtype=object))
    )
    det_rows = []
    for name, flags in detector_flags(details, scan_table, ds.n).items():
        hit = flags[rows] if len(rows) else np.zeros(0, dtype=bool)
        det_rows.append(_precision_row(name, dec.loc[hit, "action"]))
    by_detector = pd.DataFrame(det_rows, columns=PRECISION_COLUMNS)
    by_detector = by_detector.sort_values(
        "precision", ascending=False, kind="stable", na_position="last"
    ).reset_index(drop=True)
    return ReviewSummary(
        n_reviewed=len(dec),
        counts=counts,
        n_log_rows=len(log),
        n_undos=int((log["action"] == "undo").sum()) if len(log) else 0,
        reviewers=_distinct_reviewers(dec["reviewer"]),
        simulated=is_simulated(dec),
        precision=precision_table(sug),
        precision_unflagged=precision_table(dec.loc[~flagged, "action"]),
        by_class=by_class,
        by_detector=by_detector,
        time=reviewer_time(log, break_seconds=break_seconds),
        decisions=dec,
    )


# --------------------------------------------------------------------------- metrics
def macro_f1(truth: np.ndarray, pred: np.ndarray, n_classes: int) -> float:
    """Macro-averaged F1 over the classes present in ``truth`` or ``pred`` (as scikit-learn's
    ``f1_score(average="macro")``): mean of 2·TP / (2·TP + FP + FN). ints in [0, K)."""
    return float(
        _macro_f1_many(np.asarray(truth)[None, :], np.asarray(pred)[None, :], n_classes)[0]
    )


def _macro_f1_many(truth: np.ndarray, pred: np.ndarray, k: int) -> np.ndarray:
    """Row-wise macro-F1 of (B, M) truth/pred matrices."""
    b = truth.shape[0]
    offset = (np.arange(b) * k)[:, None]
    tp = np.bincount((offset + truth)[truth == pred], minlength=b * k).reshape(b, k)
    n_true = np.bincount((offset + truth).ravel(), minlength=b * k).reshape(b, k)
    n_pred = np.bincount((offset + pred).ravel(), minlength=b * k).reshape(b, k)
    denom = n_true + n_pred  # = 2TP + FP + FN
    present = denom > 0
    f1 = np.where(present, 2 * tp / np.maximum(denom, 1), 0.0)
    return f1.sum(axis=1) / np.maximum(present.sum(axis=1), 1)


@dataclass
class Interval:
    """A point estimate with its 95% percentile-bootstrap interval."""

    value: float
    low: float
    high: float


def paired_bootstrap(
    truth: np.ndarray,
    pred_before: np.ndarray,
    pred_after: np.ndarray,
    *,
    n_classes: int,
    n_resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> dict[str, Interval]:
    """Accuracy and macro-F1 of both predictions and their change, with paired bootstrap intervals.

    The same resampled evaluation rows score both models (Efron & Tibshirani 1993; the paired
    design of Koehn 2004), so the interval of the change excludes the test-set sampling noise both
    share. Keys: ``accuracy_before``, ``accuracy_after``, ``accuracy_change``, and the same for
    ``macro_f1``. ``truth``/``pred_*``: int (M,) in [0, K), M >= 1.
    """
    truth, pb, pa = (np.asarray(a, dtype=np.int64) for a in (truth, pred_before, pred_after))
    m = len(truth)
    rng = np.random.default_rng(seed)
    out: dict[str, Interval] = {}
    point = {
        "accuracy_before": float((pb == truth).mean()),
        "accuracy_after": float((pa == truth).mean()),
        "macro_f1_before": macro_f1(truth, pb, n_classes),
        "macro_f1_after": macro_f1(truth, pa, n_classes),
    }
    samples: dict[str, list[np.ndarray]] = {k: [] for k in point}
    chunk = max(1, min(n_resamples, 2_000_000 // max(m, 1)))  # bound memory: chunk x M index matrix
    done = 0
    while done < n_resamples:
        size = min(chunk, n_resamples - done)
        idx = rng.integers(0, m, size=(size, m))
        t, b, a = truth[idx], pb[idx], pa[idx]
        samples["accuracy_before"].append((b == t).mean(axis=1))
        samples["accuracy_after"].append((a == t).mean(axis=1))
        samples["macro_f1_before"].append(_macro_f1_many(t, b, n_classes))
        samples["macro_f1_after"].append(_macro_f1_many(t, a, n_classes))
        done += size
    arr = {k: np.concatenate(v) for k, v in samples.items()}
    for k, v in point.items():
        lo, hi = np.percentile(arr[k], [2.5, 97.5])
        out[k] = Interval(v, float(lo), float(hi))
    for metric in ("accuracy", "macro_f1"):
        diff = arr[f"{metric}_after"] - arr[f"{metric}_before"]
        lo, hi = np.percentile(diff, [2.5, 97.5])
        out[f"{metric}_change"] = Interval(
            point[f"{metric}_after"] - point[f"{metric}_before"], float(lo), float(hi)
        )
    return out


# --------------------------------------------------------------------------- before / after
def evaluation_split(
    ds: Dataset, *, seed: int = 0, holdout_fraction: float = HOLDOUT_FRACTION
) -> tuple[np.ndarray, np.ndarray, str]:
    """``(train_mask, eval_mask, source)``: bool (N,) masks and a description.

    With a test split: train on every other row, evaluate on the test split (which bulk actions
    never change). Without one: a seeded held-out share chosen by a hash of each row's id (so it
    does not move when labels change or rows are removed); it is evaluation only, never trained on.
    """
    if ds.has_test_split:
        test = ds.test_mask.copy()
        return ~test, test, "the dataset's test split"
    digest = (
        np.array(
            [
                int(hashlib.sha256(f"{seed}\x00{i}".encode()).hexdigest()[:8], 16)
                for i in ds.frame[ID]
            ],
            dtype=np.float64,
        )
        / 16**8
    )
    held = digest < holdout_fraction
    return ~held, held, f"a seeded held-out {holdout_fraction:.0%} of rows (no test split)"


def _fit_predict(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_eval: np.ndarray,
    *,
    seed: int,
    C: float,
    max_iter: int,
) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=C, max_iter=max_iter, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore"
        )  # ConvergenceWarning: same budget both times, so the comparison is fair
        model.fit(x_train, y_train)
    return np.asarray(model.classes_)[model.predict_proba(x_eval).argmax(axis=1)].astype(np.int64)


@dataclass
class BeforeAfter:
    """The retrained head before and after the review. Metrics are :class:`Interval` in [0, 1];
    changes per 100 reviewed items in points of the metric (x100 = percentage points)."""

    n_reviewed: int
    n_relabelled_train: int
    n_removed_train: int
    n_train_before: int
    n_train_after: int
    n_eval: int
    eval_source: str
    metrics: dict[str, Interval]
    curve: pd.DataFrame  # n_reviewed, accuracy, macro_f1
    params: dict[str, Any]

    def change_per_100(self, metric: str = "accuracy") -> float:
        if not self.n_reviewed:
            return math.nan
        return self.metrics[f"{metric}_change"].value / self.n_reviewed * 100

    def to_json(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if k not in ("metrics", "curve")}
        d["metrics"] = {k: asdict(v) for k, v in self.metrics.items()}
        d["curve"] = self.curve.to_dict("list")
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> BeforeAfter:
        d = dict(d)
        d["metrics"] = {k: Interval(**v) for k, v in d["metrics"].items()}
        d["curve"] = pd.DataFrame(d["curve"])
        return cls(**d)


def before_after(
    ds: Dataset,
    embeddings: np.ndarray,
    log: pd.DataFrame,
    *,
    workspace: Any = None,
    seed: int = 0,
    C: float | None = None,
    max_iter: int | None = None,
    n_checkpoints: int = N_CHECKPOINTS,
    n_resamples: int = BOOTSTRAP_RESAMPLES,
    progress: ProgressFn = no_progress,
) -> BeforeAfter:
    """Retrain the head on the labels before and after the review; evaluate on the protected split.

    ``embeddings``: float (N, D) row-aligned with ``ds``; ``log``: :meth:`ReviewStore.log` for
    ``ds.content_hash``. Evaluation truth: the reviewed label of an evaluation row where it has one
    (removed evaluation rows are left out), else its given label; the same truth scores both models.
    The curve retrains at ``n_checkpoints`` points along the review order (decisions applied in the
    order they were made). Stored in ``workspace`` under the dataset and the decisions' digest, so a
    repeat call with the same decisions reads the result back.

    >>> ba = before_after(ds, res.embeddings, store.log(ds.content_hash), workspace=ws)  # doctest: +SKIP
    >>> ba.metrics["accuracy_change"].value, ba.change_per_100("accuracy")               # doctest: +SKIP
    """
    x, params = _before_after_params(
        ds,
        embeddings,
        log,
        seed=seed,
        C=C,
        max_iter=max_iter,
        n_checkpoints=n_checkpoints,
        n_resamples=n_resamples,
    )

    def compute() -> dict[str, Any]:
        return _before_after(ds, x, log, params=params, progress=progress).to_json()

    if workspace is None:
        return BeforeAfter.from_json(compute())
    return BeforeAfter.from_json(
        workspace.cached(ds.content_hash, "roi_before_after", params, compute, ext="json")
    )


def stored_before_after(
    ds: Dataset,
    embeddings: np.ndarray,
    log: pd.DataFrame,
    *,
    workspace: Any,
    seed: int = 0,
    n_checkpoints: int = N_CHECKPOINTS,
    n_resamples: int = BOOTSTRAP_RESAMPLES,
) -> BeforeAfter | None:
    """The :func:`before_after` result stored in ``workspace`` for exactly these decisions, or None
    (never retrains: what a page view calls)."""
    _, params = _before_after_params(
        ds,
        embeddings,
        log,
        seed=seed,
        C=None,
        max_iter=None,
        n_checkpoints=n_checkpoints,
        n_resamples=n_resamples,
    )
    if workspace is None or not workspace.has(
        ds.content_hash, "roi_before_after", params, ext="json"
    ):
        return None
    return BeforeAfter.from_json(
        workspace.load(ds.content_hash, "roi_before_after", params, ext="json")
    )


def _before_after_params(
    ds: Dataset,
    embeddings: np.ndarray,
    log: pd.DataFrame,
    *,
    seed: int,
    C: float | None,
    max_iter: int | None,
    n_checkpoints: int,
    n_resamples: int,
) -> tuple[np.ndarray, dict[str, Any]]:
    from labelaudit.detectors.oof import DEFAULT_C, DEFAULT_MAX_ITER
    from labelaudit.errors import UsageError

    x = np.asarray(embeddings, dtype=np.float32)
    if len(x) != ds.n:
        raise UsageError(f"embeddings have {len(x)} rows but the dataset has {ds.n}")
    params = {
        "decisions": decisions_digest(log),
        "seed": seed,
        "C": DEFAULT_C if C is None else C,
        "max_iter": DEFAULT_MAX_ITER if max_iter is None else max_iter,
        "n_checkpoints": n_checkpoints,
        "n_resamples": n_resamples,
        "holdout": HOLDOUT_FRACTION,
        "embeddings": hashlib.sha256(np.ascontiguousarray(x).tobytes()).hexdigest()[:16],
        "version": VERSION,
    }
    return x, params


def _before_after(
    ds: Dataset, x: np.ndarray, log: pd.DataFrame, *, params: dict[str, Any], progress: ProgressFn
) -> BeforeAfter:
    from labelaudit.errors import DataError, Problem

    seed, C, max_iter = params["seed"], params["C"], params["max_iter"]
    dec = effective_decisions(log)
    dec = dec[dec["item_id"].isin(ds.id_to_row)].reset_index(drop=True)
    train, held, source = evaluation_split(ds, seed=seed)
    after = labels_after_review(ds, dec)
    truth_all = after
    eval_rows = np.flatnonzero(held & (truth_all >= 0))
    if not len(eval_rows):
        raise DataError(
            Problem(
                "no rows to evaluate on",
                "a test split or enough rows for a held-out part",
                fix="load a dataset with a 'test' split",
            )
        )
    truth = truth_all[eval_rows]
    before_labels = ds.labels
    train_rows = np.flatnonzero(train)
    if len(np.unique(before_labels[train_rows])) < 2:
        raise DataError(
            Problem(
                "the training part has fewer than two classes", "at least two classes to train on"
            )
        )

    rows_in_order = np.array([ds.id_to_row[i] for i in dec["item_id"]], dtype=np.int64)
    n = len(dec)
    # Always the start and the end (the before/after models); ~n_checkpoints points in between.
    n_points = max(int(params["n_checkpoints"]), 1)
    checkpoints = sorted(
        {0, n} | set(np.round(np.linspace(0, n, n_points + 1)).astype(int).tolist())
    )
    total = len(checkpoints)
    preds: dict[int, np.ndarray] = {}
    curve = []
    for i, c in enumerate(checkpoints):
        progress("retraining the head", i, total)
        labels = before_labels.copy()
        applied = rows_in_order[:c]
        labels[applied] = after[applied]
        keep = train_rows[labels[train_rows] >= 0]
        pred = _fit_predict(x[keep], labels[keep], x[eval_rows], seed=seed, C=C, max_iter=max_iter)
        preds[c] = pred
        curve.append((c, float((pred == truth).mean()), macro_f1(truth, pred, ds.k)))
    progress("retraining the head", total, total)
    metrics = paired_bootstrap(
        truth,
        preds[0],
        preds[checkpoints[-1]],
        n_classes=ds.k,
        n_resamples=params["n_resamples"],
        seed=seed,
    )
    changed_train = train & (after != before_labels)
    return BeforeAfter(
        n_reviewed=n,
        n_relabelled_train=int((changed_train & (after >= 0)).sum()),
        n_removed_train=int((train & (after < 0)).sum()),
        n_train_before=len(train_rows),
        n_train_after=int((after[train_rows] >= 0).sum()),
        n_eval=len(eval_rows),
        eval_source=source,
        metrics=metrics,
        curve=pd.DataFrame(curve, columns=["n_reviewed", "accuracy", "macro_f1"]),
        params=dict(params),
    )


# --------------------------------------------------------------------------- projection
def estimated_label_errors(
    details: Mapping[str, Any] | None, scan_table: pd.DataFrame | None, *, n_rows: int | None = None
) -> tuple[float | None, str]:
    """The detection's estimate of how many rows carry a wrong label, and where it comes from.

    Confident learning's calibrated confident joint (Northcutt, Jiang & Chuang 2021): its
    off-diagonal mass estimates the label errors. Given as counts it is used as is; normalised to
    a joint distribution (summing to 1, as the scan stores it) it is scaled by the number of rows
    (``n_rows``, default the scan table's length). Without it, the number of rows the ensemble
    flagged. ``(None, reason)`` when neither is available.
    """
    cj = (details or {}).get("confident_joint")
    if cj is not None:
        m = np.asarray(cj, dtype=np.float64)
        n = n_rows if n_rows is not None else (len(scan_table) if scan_table is not None else None)
        if m.ndim == 2 and m.shape[0] == m.shape[1] and np.isfinite(m).all():
            off = float(m.sum() - np.trace(m))
            if abs(m.sum() - 1.0) > 1e-6:  # counts
                return off, "confident learning (off-diagonal of the confident joint)"
            if n:
                return (
                    off * n,
                    f"confident learning (off-diagonal share {off:.2%} of the joint x {n:,} rows)",
                )
    if scan_table is not None and "is_label_issue" in scan_table:
        return float(
            scan_table["is_label_issue"].fillna(False).astype(bool).sum()
        ), "rows flagged by the detectors"
    return None, "no scan: run the scan for a noise estimate"


@dataclass
class Projection:
    """What the next ``next_n`` reviews are expected to bring. Every field derives from the
    stored decisions and the detection; ``assumptions`` says how, in plain sentences."""

    next_n: int
    estimated_errors: float | None
    estimate_source: str
    fixed_so_far: int
    confirmed_share: float
    remaining_errors: float | None
    recent_precision: float
    expected_fixes: float
    accuracy_gain_per_fix: float | None
    expected_accuracy_gain: float | None
    seconds_per_item: float
    expected_hours: float
    assumptions: list[str]
    #: 95 % interval of ``remaining_errors`` when it comes from an audit (else None), and where
    #: ``remaining_errors`` comes from: "audit" or "noise matrix".
    remaining_low: float | None = None
    remaining_high: float | None = None
    remaining_source: str = "noise matrix"


def project(
    summary: ReviewSummary,
    *,
    estimated_errors: float | None,
    estimate_source: str = "",
    before_after_result: BeforeAfter | None = None,
    next_n: int = 100,
    recent_window: int = 100,
    audit_estimate: RemainingErrors | None = None,
    min_decisions: int = MIN_DECISIONS_FOR_ESTIMATES,
) -> Projection:
    """Project the next ``next_n`` reviews from what the review so far observed.

    Remaining errors = estimated errors x overall precision (the share of flagged rows reviewers
    confirmed) - labels already fixed, at least 0 (the noise-matrix assumption) — unless
    ``audit_estimate`` (a :class:`labelaudit.review.audit.RemainingErrors`) has enough audit
    decisions: then its estimate and 95 % interval, from a random stratified sample of the undecided
    rows, replace the assumption. Expected fixes = ``next_n`` x precision of the
    last ``recent_window`` reviewed suggestions (the queue gets cleaner further down), at most the
    remaining errors. Expected accuracy gain = expected fixes x the accuracy gained per fix so far.
    Hours = ``next_n`` x median seconds per item. With fewer than ``min_decisions`` reviewed
    flagged rows there is no precision to scale by: remaining errors and expected fixes are left
    out (None / NaN) and the first assumption says so.
    """
    too_few = summary.n_flagged_reviewed < min_decisions
    p = summary.overall_precision if not too_few else math.nan
    fixed = summary.n_relabelled
    dec = summary.decisions
    recent = dec.tail(recent_window) if len(dec) else dec
    p_recent = (
        float(recent["action"].isin(RELABELS).mean())
        if len(recent) >= min_decisions and not too_few
        else math.nan
    )
    audited = audit_estimate is not None and audit_estimate.enough
    if audit_estimate is not None and audited:
        remaining: float | None = float(audit_estimate.total)
    elif estimated_errors is not None and not math.isnan(p):
        remaining = max(estimated_errors * p - fixed, 0.0)
    else:
        remaining = None
    fixes = next_n * p_recent if not math.isnan(p_recent) else math.nan
    if remaining is not None and not math.isnan(fixes):
        fixes = min(fixes, remaining)
    gain_per_fix = None
    if before_after_result is not None and fixed:
        gain_per_fix = before_after_result.metrics["accuracy_change"].value / fixed
    exp_gain = gain_per_fix * fixes if gain_per_fix is not None and not math.isnan(fixes) else None
    secs = summary.time.median_seconds
    hours = next_n * secs / 3600 if not math.isnan(secs) else math.nan
    if audit_estimate is not None and audited:
        scaled_left = (
            None
            if estimated_errors is None or math.isnan(p)
            else max(estimated_errors * p - fixed, 0.0)
        )
        error_lines = [
            f"Label errors left among the undecided rows: {audit_estimate.describe()}. The audit items were drawn at "
            "random, stratified by score, so this estimate replaces the noise-matrix assumption "
            f"(which would say {_fmt(scaled_left, ',.0f')}).",
            f"Labels fixed so far: {fixed:,} (accept + change).",
        ]
    else:
        error_lines = [
            f"Estimated label errors in the dataset: {_fmt(estimated_errors, '.0f')} "
            f"({estimate_source or 'unknown source'}).",
            f"Reviewers confirmed {_fmt_pct(p)} of the flagged rows they saw (changed the label); "
            "the estimate is scaled by this share, on the assumption that unreviewed flagged rows "
            "are confirmed as often.",
            f"Labels fixed so far: {fixed:,} (accept + change); they are subtracted from the scaled estimate.",
        ]
        if audit_estimate is not None and audit_estimate.reason:
            error_lines.append(f"Not from the audit: {audit_estimate.reason}")
    if too_few:
        error_lines.insert(
            0,
            f"Too few decisions to extrapolate: {summary.n_flagged_reviewed:,} reviewed flagged rows, at "
            f"least {min_decisions} needed; precision and projections are left out until then.",
        )
    assumptions = [
        *error_lines,
        f"The next {next_n:,} items are assumed to be confirmed as often as the last {len(recent):,} reviewed "
        f"({_fmt_pct(p_recent)}); the ranked queue usually gets cleaner further down, so this is optimistic.",
        (
            "Each fixed label is assumed to add the accuracy the fixes so far added on average "
            f"({_fmt(None if gain_per_fix is None else gain_per_fix * 100, '+.4f')} points per fix); "
            "returns usually diminish."
        )
        if gain_per_fix is not None
        else "No accuracy gain per fix yet: it needs decisions that changed labels and the before/after retraining.",
        f"Reviewer time: the median gap between consecutive decisions ({_fmt(secs, '.0f')} s per item; gaps over "
        f"{summary.time.break_seconds / 60:.0f} min are breaks and not counted).",
    ]
    return Projection(
        next_n=next_n,
        estimated_errors=estimated_errors,
        estimate_source=estimate_source,
        fixed_so_far=fixed,
        confirmed_share=p,
        remaining_errors=remaining,
        recent_precision=p_recent,
        expected_fixes=fixes,
        accuracy_gain_per_fix=gain_per_fix,
        expected_accuracy_gain=exp_gain,
        seconds_per_item=secs,
        expected_hours=hours,
        assumptions=assumptions,
        remaining_low=float(audit_estimate.low) if audit_estimate is not None and audited else None,
        remaining_high=float(audit_estimate.high)
        if audit_estimate is not None and audited
        else None,
        remaining_source="audit" if audited else "noise matrix",
    )


def _fmt(v: float | None, spec: str) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def _fmt_pct(v: float | None) -> str:
    return "n/a" if v is None or math.isnan(v) else f"{v:.1%}"
