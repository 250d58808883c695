"""Learn from the reviewers: how often each detector's flags hold up, and a combiner fitted on the decisions.

Every decision in force is a labelled example about the detectors: the item was flagged (or not) by
each detector, ranked somewhere by the scan's combined score, and the reviewer either changed its
label or did not. This module turns those examples into

- **estimated precision** of each detector's flags and of the combined flag, overall and per class
  and cluster where there are :data:`MIN_GROUP_DECISIONS` decisions, with 95% Wilson intervals
  (Wilson 1927), which stay honest for small samples and for 0 % or 100 %;
- a **learnt combiner**: a calibrated scikit-learn model on per-row features (each detector's
  score, the number of flags, the suggestion's probability, class and cluster statistics and
  decision-based target encodings of class, cluster and class pair), cross-validated so no item is
  ever scored by a model that saw its decision (:func:`fit_learnt`);
- a **calibrated static ranking**: Platt scaling of the scan's own order, used for the estimated
  precision while the learnt combiner is not in force (:func:`static_estimate`);
- **active-learning scores** for items labelled by several annotators (cleanlab's ActiveLab).

A *label change* is defined as on the ROI page (:mod:`labelaudit.roi`): the decision in force is
``accept`` or ``change``; ``keep``, ``ambiguous`` and ``remove`` are not label changes.

The learnt combiner is fitted once there are at least :data:`MIN_EACH_OUTCOME` decisions with a
label change and as many without (:data:`LEARN_RULE`), and it is put in force only when, validated
forward in review order (:func:`forward_check`: trained on the earlier decisions, scored on the
later, deeper ones), its AUROC beats the static ranking's by a margin whose paired bootstrap 95%
interval excludes 0 (:data:`BOOTSTRAP_ROUNDS` resamples); otherwise the static ranking stays and
the reason says why. In force it re-orders the static order's next :data:`RERANK_WINDOW` undecided
rows, and fills those places from the next 2 x :data:`RERANK_WINDOW` when a second forward check
of that pick (:func:`pull_check`) gains precision with an interval above 0.

Why the rule is that strict, and why the numeric features are bounded: the decisions come from the
top of the queue, so the learnt model is always applied to rows ranked *below* everything it was
trained on. With standardised features a linear model extrapolates there without bound: a
slightly negative weight on the static rank, learnt on a narrow band at the top, put rows from the
bottom of the dataset at the head of the queue (bench/results/learn.md: precision of the next 200
fell from 0.69 to 0.24 in one seed). Numeric features now go through a quantile transform fitted on
the training decisions (``QuantileTransformer``), which maps values outside the training range to
its bounds, so a row below the reviewed band scores like the lowest reviewed rows, not beyond them.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from labelaudit import roi
from labelaudit.dataset import LABEL, Dataset
from labelaudit.errors import DataError, Problem, UsageError

#: Decisions that count as a label change (the ROI page's definition).
CHANGED_ACTIONS = roi.RELABELS
#: Fewest decisions of each outcome (label changed / not changed) before a combiner is learnt.
MIN_EACH_OUTCOME = 20
#: Fewest decisions in a class or cluster before its precision is shown.
MIN_GROUP_DECISIONS = 10
#: Fewest decisions before the static ranking is calibrated into an estimated precision.
MIN_DECISIONS_FOR_ESTIMATE = 10
#: Outer cross-validation folds of the learnt combiner (and of the static calibration).
N_FOLDS = 5
#: Paired bootstrap resamples of the decisions for the switch-on rule.
BOOTSTRAP_ROUNDS = 400
#: The learnt combiner re-orders only this many of the next undecided rows of the static order.
RERANK_WINDOW = 200
#: Forward check: train on the decisions before each cut (a share of the review order), score the
#: next block of decisions (up to the next cut), as the queue uses the model.
FORWARD_CUTS = (0.5, 0.625, 0.75, 0.875)
#: Pulls: a learnt fit in force may fill its window from the next 2 x RERANK_WINDOW undecided rows
#: of the static order, a row of the deeper half entering when its learnt percentile within that
#: pool beats the window's rows by one of these margins (percentile points, the largest first).
PULL_MARGINS = (0.3, 0.2, 0.1, 0.0)
LEARN_RULE = (
    f"a combiner is learnt once at least {MIN_EACH_OUTCOME} reviewed items had their label changed "
    f"and at least {MIN_EACH_OUTCOME} did not; it re-orders the next {RERANK_WINDOW} items of the "
    "static ranking only when, trained on the earlier decisions, it ranks the later (deeper) ones "
    "better than the static ranking does, by an AUROC margin whose paired bootstrap 95% interval "
    "excludes 0 (the forward check); it may also pull items from the next "
    f"{RERANK_WINDOW} below them into those {RERANK_WINDOW} places when the same forward check, "
    "played as the queue plays it (the earlier half of each later block in the static order against "
    "the learnt pick of as many from the whole block), gains precision with a paired bootstrap 95% "
    "interval above 0"
)
MODELS = ("logistic", "boosting")
STATIC, LEARNT = "static", "learnt"

OUTCOME_COLUMNS = [
    "item_id",
    "row",
    "action",
    "changed",
    "audit",
    "queue",
    "flagged",
    "decision_id",
    "review_order",
]
ESTIMATE_COLUMNS = [
    "scope",
    "by",
    "group",
    "reviewed",
    "changed",
    "precision",
    "precision_low",
    "precision_high",
]


# --------------------------------------------------------------------------- decisions -> outcomes
def reviewed_outcomes(
    ds: Dataset,
    log: pd.DataFrame,
    *,
    scan_table: pd.DataFrame | None = None,
    cutoff_decision_id: int | None = None,
) -> pd.DataFrame:
    """One row per item with a decision in force: was its label changed?

    ``log``: :meth:`ReviewStore.log` for ``ds.content_hash``; ``cutoff_decision_id``: use only log
    rows with ``decision_id`` <= it (the decisions a ranking was fitted on). Columns
    :data:`OUTCOME_COLUMNS`: ``row`` (int, dataset row), ``changed`` (bool: accept or change),
    ``audit`` (bool: decided as an audit item, ``shown["audit"]``), ``queue`` (the queue it was
    decided from, ``shown["queue"]``, "" when not recorded), ``flagged`` (bool: the combined
    flag when it was decided, see :func:`labelaudit.roi.flagged_at_decision`), in review order.
    Items unknown to ``ds`` (another dataset version) are left out.

    >>> reviewed_outcomes(ds, store.log(ds.content_hash))[["item_id", "changed"]]   # doctest: +SKIP
    """
    if cutoff_decision_id is not None and len(log):
        log = log[log["decision_id"] <= cutoff_decision_id]
    dec = roi.effective_decisions(log)
    dec = dec[dec["item_id"].isin(ds.id_to_row)].reset_index(drop=True)
    rows = np.array([ds.id_to_row[i] for i in dec["item_id"]], dtype=np.int64)
    audit = np.array(
        [bool(s.get("audit")) if isinstance(s, dict) else False for s in dec["shown"]], dtype=bool
    )
    out = pd.DataFrame(
        {
            "item_id": dec["item_id"].astype(str),
            "row": rows,
            "action": dec["action"].astype(str),
            "changed": dec["action"].isin(CHANGED_ACTIONS).to_numpy(dtype=bool),
            "audit": audit,
            "queue": [str(s.get("queue", "")) if isinstance(s, dict) else "" for s in dec["shown"]],
            "flagged": roi.flagged_at_decision(ds, dec, scan_table),
            "decision_id": dec["decision_id"].astype(np.int64),
            "review_order": np.arange(len(dec), dtype=np.int64),
        },
        columns=OUTCOME_COLUMNS,
    )
    return out


# --------------------------------------------------------------------------- precision estimates
def _estimate_row(scope: str, by: str, group: str, changed: np.ndarray) -> dict[str, Any]:
    n, k = int(len(changed)), int(np.sum(changed))
    low, high = roi.wilson_interval(k, n)
    return {
        "scope": scope,
        "by": by,
        "group": group,
        "reviewed": n,
        "changed": k,
        "precision": k / n if n else math.nan,
        "precision_low": low,
        "precision_high": high,
    }


def precision_estimates(
    ds: Dataset,
    outcomes: pd.DataFrame,
    *,
    scan_table: pd.DataFrame | None = None,
    details: Mapping[str, Any] | None = None,
    min_group: int = MIN_GROUP_DECISIONS,
) -> pd.DataFrame:
    """Estimated precision of every detector's flags and of the combined flag.

    Precision of a flag = share of the reviewed items it flagged whose label was changed, with a 95%
    Wilson interval. ``scope`` is ``"combined"`` (the scan's ``is_label_issue`` as shown when
    decided) or a detector name (its flags from ``details["flags"]`` or ``is_issue_<name>``
    columns); ``by`` is ``"all"``, ``"class"`` (given label) or ``"cluster"`` (the scan table's
    ``cluster``), the latter two only for groups with at least ``min_group`` reviewed flagged items.
    ``outcomes``: :func:`reviewed_outcomes`. Columns :data:`ESTIMATE_COLUMNS`; a scope with no
    reviewed flagged item has one "all" row with ``reviewed`` 0 and NaN precision.

    >>> est = precision_estimates(ds, outcomes, scan_table=res.table, details=res.detection.details)  # doctest: +SKIP
    >>> est[est["by"] == "all"][["scope", "reviewed", "precision"]]                              # doctest: +SKIP
    """
    rows = outcomes["row"].to_numpy(dtype=np.int64)
    changed = outcomes["changed"].to_numpy(dtype=bool)
    given = ds.frame[LABEL].to_numpy(dtype=object)[rows]
    cluster = None
    if scan_table is not None and "cluster" in scan_table and len(scan_table) == ds.n:
        cluster = scan_table["cluster"].to_numpy()[rows]
    scopes: dict[str, np.ndarray] = {"combined": outcomes["flagged"].to_numpy(dtype=bool)}
    for name, flags in roi.detector_flags(details, scan_table, ds.n).items():
        scopes[name] = flags[rows] if len(rows) else np.zeros(0, dtype=bool)
    out = []
    for scope, hit in scopes.items():
        out.append(_estimate_row(scope, "all", "all", changed[hit]))
        groupings = [("class", given)] + ([("cluster", cluster)] if cluster is not None else [])
        for by, values in groupings:
            sub = pd.Series(changed[hit]).groupby(pd.Series(values[hit]).astype(str), sort=True)
            for g, s in sub:
                if len(s) >= min_group:
                    out.append(_estimate_row(scope, by, str(g), s.to_numpy(dtype=bool)))
    return pd.DataFrame(out, columns=ESTIMATE_COLUMNS)


def detector_track_record(
    row: int,
    estimates: pd.DataFrame,
    *,
    scan_table: pd.DataFrame | None = None,
    details: Mapping[str, Any] | None = None,
    n_rows: int,
) -> pd.DataFrame:
    """How often the detectors that flag ``row`` have been right so far (for the review card).

    One row per detector flagging ``row`` (and ``"combined"`` when the combined flag is on), from
    ``estimates`` (:func:`precision_estimates`, its ``by == "all"`` rows): columns ``detector``,
    ``reviewed`` (flags of it reviewed so far), ``changed``, ``precision``, ``precision_low``,
    ``precision_high``; most precise first, detectors without reviewed flags last.
    """
    overall = estimates[estimates["by"] == "all"].set_index("scope")
    names = [n for n, f in roi.detector_flags(details, scan_table, n_rows).items() if f[row]]
    if (
        scan_table is not None
        and "is_label_issue" in scan_table
        and len(scan_table) == n_rows
        and bool(scan_table["is_label_issue"].fillna(False).iloc[row])
    ):
        names.append("combined")
    recs = []
    for n in names:
        if n in overall.index:
            r = overall.loc[n]
            recs.append(
                (
                    n,
                    int(r["reviewed"]),
                    int(r["changed"]),
                    r["precision"],
                    r["precision_low"],
                    r["precision_high"],
                )
            )
        else:
            recs.append((n, 0, 0, math.nan, math.nan, math.nan))
    df = pd.DataFrame(
        recs,
        columns=["detector", "reviewed", "changed", "precision", "precision_low", "precision_high"],
    )
    return df.sort_values(
        "precision", ascending=False, na_position="last", kind="stable"
    ).reset_index(drop=True)


def track_record_text(record: pd.DataFrame) -> str:
    """One plain sentence for the card: 'knn: 34 of 50 flags confirmed (68%, 95% CI 54-79%); …'."""
    parts = []
    for r in record.itertuples():
        if r.reviewed:
            parts.append(
                f"{r.detector}: {r.changed} of {r.reviewed} reviewed flags changed "
                f"({r.precision:.0%}, 95% CI {r.precision_low:.0%}-{r.precision_high:.0%})"
            )
        else:
            parts.append(f"{r.detector}: no reviewed flags yet")
    return "; ".join(parts) if parts else "No detector flags this item."


# --------------------------------------------------------------------------- static order
def static_order(scan_table: pd.DataFrame) -> np.ndarray:
    """Row indices in the scan's ranking (the Review page's default queue): flagged rows first, then
    by descending ``label_issue_score``, ties in dataset order. int64 (N,)."""
    n = len(scan_table)
    score = pd.to_numeric(scan_table["label_issue_score"], errors="coerce").fillna(0).to_numpy()
    flag = (
        scan_table["is_label_issue"].fillna(False).astype(bool).to_numpy()
        if "is_label_issue" in scan_table
        else np.zeros(n, dtype=bool)
    )
    return np.lexsort((np.arange(n), -score, ~flag)).astype(np.int64)


def static_rank_score(scan_table: pd.DataFrame) -> np.ndarray:
    """The static ranking as a score in [0, 1]: 1 for the first row of the queue, 0 for the last. float64 (N,)."""
    order = static_order(scan_table)
    n = len(order)
    out = np.zeros(n)
    out[order] = 1.0 - np.arange(n) / max(n - 1, 1)
    return out


# --------------------------------------------------------------------------- features
def ranking_features(
    ds: Dataset, scan_table: pd.DataFrame, details: Mapping[str, Any] | None = None
) -> tuple[pd.DataFrame, list[str], list[str]]:
    """Per-row features of the learnt combiner: ``(frame, categorical columns, numeric columns)``.

    Numeric (float64): the static rank score, ``label_issue_score``, ``n_flags``, the combined flag,
    ``suggested_label_prob``, whether the suggestion differs from the given label, every
    ``score_<detector>``, the class's size (log) and flagged share, and — when the scan has clusters —
    the cluster's size (log), flagged share, mean score and the share of its rows with the row's
    given label. Categorical (str): the given label, the class pair ``given -> suggested`` and the
    cluster; the model target-encodes them from the training decisions only.
    """
    if len(scan_table) != ds.n:
        raise UsageError(f"the scan table has {len(scan_table)} rows but the dataset has {ds.n}")
    if "label_issue_score" not in scan_table:
        raise UsageError("the scan table has no label_issue_score: run the scan with detection")
    n = ds.n
    given = ds.frame[LABEL].astype(str).to_numpy(dtype=object)
    score = pd.to_numeric(scan_table["label_issue_score"], errors="coerce").fillna(0).to_numpy()
    flag = (
        scan_table["is_label_issue"].fillna(False).astype(bool).to_numpy()
        if "is_label_issue" in scan_table
        else np.zeros(n, dtype=bool)
    )
    f: dict[str, Any] = {
        "static_rank": static_rank_score(scan_table),
        "label_issue_score": score,
        "flagged": flag.astype(float),
    }
    if "n_flags" in scan_table:
        f["n_flags"] = pd.to_numeric(scan_table["n_flags"], errors="coerce").fillna(0).to_numpy()
    sug = (
        scan_table["suggested_label"].astype(str).to_numpy(dtype=object)
        if "suggested_label" in scan_table
        else given
    )
    if "suggested_label_prob" in scan_table:
        f["suggested_label_prob"] = (
            pd.to_numeric(scan_table["suggested_label_prob"], errors="coerce").fillna(0).to_numpy()
        )
    f["suggestion_differs"] = (sug != given).astype(float)
    for col in scan_table.columns:
        if str(col).startswith("score_"):
            f[str(col)] = pd.to_numeric(scan_table[col], errors="coerce").fillna(0).to_numpy()
    g = pd.Series(given)
    class_size = g.map(g.value_counts()).to_numpy(dtype=float)
    f["class_log_size"] = np.log1p(class_size)
    f["class_flag_rate"] = pd.Series(flag).groupby(g).transform("mean").to_numpy(dtype=float)
    cats: dict[str, Any] = {
        "given_label": given,
        "class_pair": np.array(
            [f"{a} -> {b}" for a, b in zip(given, sug, strict=True)], dtype=object
        ),
    }
    if "cluster" in scan_table:
        c = pd.Series(scan_table["cluster"].to_numpy()).astype(str)
        size = c.map(c.value_counts()).to_numpy(dtype=float)
        f["cluster_log_size"] = np.log1p(size)
        f["cluster_flag_rate"] = pd.Series(flag).groupby(c).transform("mean").to_numpy(dtype=float)
        f["cluster_mean_score"] = (
            pd.Series(score).groupby(c).transform("mean").to_numpy(dtype=float)
        )
        same = pd.DataFrame({"c": c, "g": g})
        pair_size = same.groupby(["c", "g"])["g"].transform("size").to_numpy(dtype=float)
        f["cluster_label_share"] = pair_size / size
        cats["cluster"] = c.to_numpy(dtype=object)
    num = pd.DataFrame({k: np.asarray(v, dtype=np.float64) for k, v in f.items()})
    cat = pd.DataFrame(cats)
    frame = pd.concat([num, cat], axis=1)
    return frame, list(cat.columns), list(num.columns)


def model_matrix(frame: pd.DataFrame, categorical: list[str], numeric: list[str]) -> np.ndarray:
    """The features as one float64 ndarray (N, C + F): categorical columns first, as integer codes
    (the target encoder treats each code as a category), then the numeric columns."""
    out = np.empty((len(frame), len(categorical) + len(numeric)), dtype=np.float64)
    for j, c in enumerate(categorical):
        out[:, j] = pd.factorize(frame[c].astype(str), sort=True)[0]
    for j, c in enumerate(numeric):
        out[:, len(categorical) + j] = frame[c].to_numpy(dtype=np.float64)
    return out


def make_model(kind: str, categorical: list[str], numeric: list[str], *, seed: int = 0) -> Any:
    """The combiner: target encoding of the categorical columns (cross-fitted on the training
    decisions, scikit-learn's ``TargetEncoder``) and quantile-transformed numeric columns (bounded to
    the training range: no extrapolation) into an L2-regularised
    logistic regression (``"logistic"``) or a small gradient-boosting model (``"boosting"``).
    Uncalibrated: :func:`fit_learnt` calibrates its out-of-fold scores by Platt scaling."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import QuantileTransformer, TargetEncoder

    if kind not in MODELS:
        raise UsageError(f"unknown combiner model {kind!r}; choose one of {', '.join(MODELS)}")
    # Columns by position: the features arrive as one float ndarray (categorical codes first,
    # :func:`model_matrix`), which keeps pandas and object arrays out of the many small fits.
    n_cat = len(categorical)
    pre = ColumnTransformer(
        [
            (
                "target",
                TargetEncoder(
                    target_type="binary", cv=StratifiedKFold(3, shuffle=True, random_state=seed)
                ),
                list(range(n_cat)),
            ),
            # Bounded: values outside the training decisions' range map to its ends (no
            # extrapolation below the reviewed band; see the module docstring).
            (
                "numeric",
                QuantileTransformer(n_quantiles=50, subsample=None, random_state=seed),
                list(range(n_cat, n_cat + len(numeric))),
            ),
        ]
    )
    clf: Any
    if kind == "logistic":
        clf = LogisticRegression(C=1.0, max_iter=2000)
    else:
        clf = HistGradientBoostingClassifier(
            max_iter=150,
            learning_rate=0.05,
            max_leaf_nodes=15,
            min_samples_leaf=10,
            l2_regularization=1.0,
            random_state=seed,
        )
    return Pipeline([("features", pre), ("model", clf)])


# --------------------------------------------------------------------------- fitting
@dataclass
class Fit:
    """A ranking fitted on decisions. Arrays are row-aligned with the dataset (N).

    ``probability``: float64 (N,) in [0, 1], the estimated chance that the row's label needs a change
    — out-of-fold for the decided rows (never from a model that saw the row), from the model fitted on
    every decision for the rest; NaN when nothing could be fitted. ``in_support``: bool (N,), the row
    is ranked no lower than the lowest-ranked decided item (elsewhere the estimate extrapolates and is
    not shown). ``auroc``: cross-validated AUROC on the decisions; ``auroc_static``: the static
    ranking's AUROC on the same decisions. ``window``: bool (N,), the rows a learnt fit re-orders
    (the next :data:`RERANK_WINDOW` undecided rows of the static order; None: every row).
    ``forward_auroc`` / ``forward_auroc_static``: the forward check (:func:`forward_check`) on its
    ``n_forward`` later decisions; ``gain_low`` / ``gain_high``: its paired bootstrap interval.
    """

    ranking: str
    probability: np.ndarray
    in_support: np.ndarray
    n_decisions: int
    n_changed: int
    auroc: float
    auroc_static: float
    model: str = ""
    reason: str = ""
    seconds: float = 0.0
    features: list[str] = field(default_factory=list)
    #: 95% paired bootstrap interval of the forward AUROC gain of the learnt model over the static ranking.
    gain_low: float = math.nan
    gain_high: float = math.nan
    forward_auroc: float = math.nan
    forward_auroc_static: float = math.nan
    n_forward: int = 0
    window: np.ndarray | None = None
    #: Rows the window holds (its first ``window_size`` rows of the static order are the window;
    #: the rest of ``window`` is the pool pulls come from). 0: every row of ``window``.
    window_size: int = 0
    #: Percentile margin a pooled row needs to enter the window (NaN: no pulls).
    pull_margin: float = math.nan
    #: The forward check of pulls: precision gain of the learnt pick over the static order's and
    #: its 95% paired bootstrap interval (NaN when not checked).
    pull_gain: float = math.nan
    pull_gain_low: float = math.nan
    pull_gain_high: float = math.nan

    @property
    def pulls(self) -> bool:
        """The window may take rows from deeper in the static order (a pull margin is set)."""
        return self.window is not None and self.pull_margin == self.pull_margin

    @property
    def estimated_precision(self) -> np.ndarray:
        """``probability`` where the row is in the decisions' support, else NaN (float64 (N,))."""
        return np.where(self.in_support, self.probability, np.nan)

    def describe(self) -> str:
        """How the ranking was fitted, in one plain sentence."""
        if self.ranking == LEARNT:
            if self.window is None:
                reach = "orders the whole queue"
            elif self.pulls:
                reach = (
                    f"fills the next {self.window_size:,} places from the next "
                    f"{int(self.window.sum()):,} items of the static ranking (a deeper item enters "
                    f"when its learnt percentile beats the window's by {self.pull_margin:.2f}; "
                    f"forward check of that pick: precision {self.pull_gain:+.3f} against the "
                    f"static order, 95% interval {self.pull_gain_low:+.3f} to "
                    f"{self.pull_gain_high:+.3f})"
                )
            else:
                reach = f"re-orders the next {int(self.window.sum()):,} items of the static ranking"
                if self.pull_gain == self.pull_gain:
                    reach += (
                        f" (pulling deeper items in did not pass the forward check: precision "
                        f"{self.pull_gain:+.3f}, 95% interval {self.pull_gain_low:+.3f} to "
                        f"{self.pull_gain_high:+.3f})"
                    )
            return (
                f"learnt combiner ({self.model}, calibrated) fitted on {self.n_decisions:,} decisions "
                f"({self.n_changed:,} label changes); it {reach}. Forward check (trained on the "
                f"earlier decisions, scored on the {self.n_forward:,} later ones): AUROC "
                f"{self.forward_auroc:.3f} against {self.forward_auroc_static:.3f} for the static "
                f"ranking (gain 95% bootstrap interval {self.gain_low:+.3f} to {self.gain_high:+.3f}, "
                f"above 0); cross-validated AUROC {self.auroc:.3f} against {self.auroc_static:.3f}. "
                f"The rule: {LEARN_RULE}."
            )
        text = "static ranking of the scan (its combined score)"
        if self.n_decisions >= MIN_DECISIONS_FOR_ESTIMATE:
            text += (
                f"; its estimated precision calibrated on {self.n_decisions:,} decisions "
                f"({self.n_changed:,} label changes)"
            )
        return text + (f". {self.reason}" if self.reason else ".")


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-9, 1 - 1e-9)
    return np.log(p / (1 - p))


def _auroc(y: np.ndarray, s: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    if len(np.unique(y)) < 2:
        return math.nan
    return float(roc_auc_score(y, s))


def _support(static_rank: np.ndarray, rows: np.ndarray) -> np.ndarray:
    if not len(rows):
        return np.zeros(len(static_rank), dtype=bool)
    return static_rank >= static_rank[rows].min() - 1e-12


def _outer_folds(y: np.ndarray, seed: int) -> Any:
    from sklearn.model_selection import StratifiedKFold

    k = int(min(N_FOLDS, np.bincount(y.astype(int), minlength=2).min()))
    return StratifiedKFold(max(k, 2), shuffle=True, random_state=seed)


def static_estimate(scan_table: pd.DataFrame, outcomes: pd.DataFrame, *, seed: int = 0) -> Fit:
    """The static ranking, calibrated into an estimated precision by Platt scaling.

    A logistic regression of "label changed" on the static rank score with Platt's smoothed targets
    ((n+ + 1) / (n+ + 2) and 1 / (n- + 2): never exactly 0 or 1 from a few decisions); out-of-fold
    for decided rows. Needs :data:`MIN_DECISIONS_FOR_ESTIMATE` decisions; with fewer, or before
    any, ``probability`` is NaN and ``reason`` says why. The ranking itself is the scan's.
    """
    rank = static_rank_score(scan_table)
    rows = outcomes["row"].to_numpy(dtype=np.int64)
    y = outcomes["changed"].to_numpy(dtype=bool)
    n, k = len(rows), int(y.sum())
    fit = Fit(
        STATIC,
        np.full(len(rank), np.nan),
        _support(rank, rows),
        n,
        k,
        math.nan,
        _auroc(y, rank[rows]) if n else math.nan,
    )
    if n < MIN_DECISIONS_FOR_ESTIMATE:
        fit.reason = (
            f"Estimated precision needs at least {MIN_DECISIONS_FOR_ESTIMATE} decisions; "
            f"there {'is' if n == 1 else 'are'} {n}."
        )
        return fit
    x = rank.reshape(-1, 1)
    fit.probability = _platt(x[rows], y, x)
    if k and k < n:
        pred = np.empty(n)
        for train, test in _outer_folds(y, seed).split(rows, y):
            pred[test] = _platt(x[rows[train]], y[train], x[rows[test]])
        fit.probability[rows] = pred
    fit.auroc = fit.auroc_static
    if k in (0, n):
        fit.reason = (
            f"All {n} decisions so far {'changed' if k else 'kept'} the label: the estimate is "
            "Platt's smoothed target, not a fitted trend."
        )
    return fit


def _platt(x_train: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Platt (1999) scaling with smoothed targets: a 1-feature logistic regression on soft targets
    ((n+ + 1) / (n+ + 2) for changed, 1 / (n- + 2) for kept), fitted by Newton's method.

    Two parameters: Newton converges in a few steps, 50-100x faster than a scikit-learn fit
    (measured in bench/bench_learn.py); the test checks it against ``LogisticRegression``."""
    xt = np.asarray(x_train, dtype=np.float64).ravel()
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    t = np.where(y, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))
    a = np.column_stack([xt, np.ones(len(xt))])
    w = np.zeros(2)
    for _ in range(100):
        p = 1 / (1 + np.exp(-(a @ w)))
        grad = a.T @ (p - t) + 1e-6 * w
        hess = (a * (p * (1 - p))[:, None]).T @ a + 1e-6 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-10:
            break
    z = np.column_stack([np.asarray(x, dtype=np.float64).ravel(), np.ones(len(x))]) @ w
    return 1 / (1 + np.exp(-z))


def learn_blocker(outcomes: pd.DataFrame) -> str | None:
    """Why no combiner can be learnt from these decisions yet (None when one can)."""
    n = len(outcomes)
    k = int(outcomes["changed"].sum()) if n else 0
    if n == 0:
        return "No decisions yet: the static ranking stays until reviewers decide some items."
    if k < MIN_EACH_OUTCOME or n - k < MIN_EACH_OUTCOME:
        return (
            f"Not enough decisions of both outcomes to learn from: {k} label changes and {n - k} "
            f"without; the rule is at least {MIN_EACH_OUTCOME} of each."
        )
    return None


def fit_learnt(
    ds: Dataset,
    scan_table: pd.DataFrame,
    outcomes: pd.DataFrame,
    *,
    details: Mapping[str, Any] | None = None,
    model: str = "logistic",
    seed: int = 0,
    estimator_factory: Any = None,
    window: int | None = RERANK_WINDOW,
    pulls: bool = True,
) -> Fit:
    """Fit the learnt combiner on the decided items and score every row.

    Decided rows are scored out-of-fold (stratified :data:`N_FOLDS`-fold cross-validation: the
    model that scores a row never saw its decision); the other rows by a model fitted on every
    decision. ``ranking`` is ``"learnt"`` when :func:`learn_blocker` allows it and the forward
    check (:func:`forward_check`: trained on the earlier decisions, scored on the later ones) beats
    the static ranking by a gain whose bootstrap interval excludes 0; else the static calibration
    (:func:`static_estimate`) is returned with ``reason`` saying why. A learnt fit re-orders only
    ``window`` rows (the next undecided rows of the static order, :func:`rerank_window`; None:
    the whole queue); with ``pulls`` it may fill that window from the next ``2 * window`` when
    :func:`pull_check` supports it (:attr:`Fit.pull_margin`). ``estimator_factory``: ``(categorical, numeric, seed) -> estimator``
    (default :func:`make_model` with ``model``), for tests.

    >>> fit = fit_learnt(ds, res.table, reviewed_outcomes(ds, log, scan_table=res.table))  # doctest: +SKIP
    >>> fit.ranking, fit.auroc, fit.auroc_static                                          # doctest: +SKIP
    ('learnt', 0.83, 0.71)
    """
    started = time.perf_counter()
    blocker = learn_blocker(outcomes)
    if blocker is not None:
        fit = static_estimate(scan_table, outcomes, seed=seed)
        fit.reason = " ".join(x for x in (blocker, fit.reason) if x)
        fit.seconds = time.perf_counter() - started
        return fit
    frame, cats, nums = ranking_features(ds, scan_table, details)

    def make_ranker() -> Any:
        if estimator_factory is not None:
            return estimator_factory(cats, nums, seed)
        return make_model(model, cats, nums, seed=seed)

    rows = outcomes["row"].to_numpy(dtype=np.int64)
    y = outcomes["changed"].to_numpy(dtype=bool).astype(int)
    x_all = model_matrix(frame, cats, nums)
    x_dec = x_all[rows]
    raw = np.empty(len(rows))
    fold = np.empty(len(rows), dtype=np.int64)
    decided = np.zeros(ds.n, dtype=bool)
    decided[rows] = True
    rest = np.flatnonzero(~decided)
    prob = np.empty(ds.n)
    # One thread: these are many tiny fits, and BLAS threads only fight over a busy machine's cores.
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore")  # convergence / small-fold notes: the CV AUROC is the judge
        for f, (train, test) in enumerate(_outer_folds(y, seed).split(x_dec, y)):
            est = make_ranker()
            est.fit(x_dec[train], y[train])
            raw[test] = _logit(est.predict_proba(x_dec[test])[:, 1])
            fold[test] = f
        final = make_ranker()
        final.fit(x_dec, y)
        raw_rest = _logit(final.predict_proba(x_all[rest])[:, 1]) if len(rest) else np.zeros(0)
    # Platt scaling on the out-of-fold scores (Platt 1999): the undecided rows through a map fitted
    # on every decided row's out-of-fold score; each decided row through one fitted on the other
    # folds' only, so neither the model nor its calibration ever saw the row it scores.
    yb = y.astype(bool)
    if len(rest):
        prob[rest] = _platt(raw, yb, raw_rest)
    oof = np.empty(len(rows))
    for f in np.unique(fold):
        inside = fold == f
        oof[inside] = _platt(raw[~inside], yb[~inside], raw[inside])
    prob[rows] = oof
    rank = frame["static_rank"].to_numpy()
    auroc, auroc_static = _auroc(y, oof), _auroc(y, rank[rows])
    fit = Fit(
        LEARNT,
        prob,
        _support(rank, rows),
        len(rows),
        int(y.sum()),
        auroc,
        auroc_static,
        model=model,
        features=cats + nums,
    )
    order = outcomes["review_order"].to_numpy(dtype=np.int64)
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore")
        blocks = forward_blocks(x_dec, y, rank[rows], order, make_ranker)
    fwd = forward_check_blocks(blocks, seed=seed)
    fit.forward_auroc, fit.forward_auroc_static, fit.n_forward = fwd[0], fwd[1], fwd[2]
    low, high = fwd[3], fwd[4]
    fit.gain_low, fit.gain_high = low, high
    if window is not None:
        margin, gain, g_low, g_high = pull_check(blocks, seed=seed) if pulls else (math.nan,) * 4
        fit.pull_gain, fit.pull_gain_low, fit.pull_gain_high = gain, g_low, g_high
        fit.window_size = int(window)
        if margin == margin:
            fit.pull_margin = margin
            fit.window = rerank_window(scan_table, rows, 2 * window)
        else:
            fit.window = rerank_window(scan_table, rows, window)
    if not low > 0:
        static = static_estimate(scan_table, outcomes, seed=seed)
        static.auroc = auroc
        static.model = model
        static.gain_low, static.gain_high = low, high
        static.forward_auroc, static.forward_auroc_static = fwd[0], fwd[1]
        static.n_forward = fwd[2]
        if fwd[2]:
            static.reason = (
                f"The learnt combiner ({model}) did not clearly beat the static ranking in the "
                f"forward check: trained on the earlier decisions, it ranked the {fwd[2]:,} later "
                f"ones with AUROC {fwd[0]:.3f} against {fwd[1]:.3f} for the static ranking (gain "
                f"95% bootstrap interval {low:+.3f} to {high:+.3f}, which does not exclude 0), so "
                f"the static ranking stays (cross-validated AUROC {auroc:.3f} against "
                f"{auroc_static:.3f})."
            )
        else:
            static.reason = (
                f"The forward check needs later decisions of both outcomes after earlier ones of "
                f"both: none of its blocks of the {len(rows):,} decisions in review order had "
                "them, so the static ranking stays."
            )
        fit = static
    fit.seconds = time.perf_counter() - started
    return fit


def rerank_window(scan_table: pd.DataFrame, decided_rows: np.ndarray, size: int) -> np.ndarray:
    """The rows a learnt fit re-orders: the first ``size`` undecided rows of the static order.
    bool (N,)."""
    order = static_order(scan_table)
    decided = np.zeros(len(order), dtype=bool)
    decided[np.asarray(decided_rows, dtype=np.int64)] = True
    out = np.zeros(len(order), dtype=bool)
    out[order[~decided[order]][: int(size)]] = True
    return out


def forward_check(
    x: np.ndarray,
    y: np.ndarray,
    static: np.ndarray,
    review_order: np.ndarray,
    make: Any,
    *,
    cuts: tuple[float, ...] = FORWARD_CUTS,
    seed: int = 0,
) -> tuple[float, float, int, float, float]:
    """Validate the learnt combiner the way the queue uses it: forward in review order.

    The decisions are sorted by ``review_order``; for each cut (a share of them) a model from
    ``make()`` is fitted on the decisions before it and scores the block up to the next cut (the
    last block runs to the end). Those later decisions lie below the earlier ones in the queue, so
    this sees what a random-fold cross-validation on the decided band cannot: whether the model
    still ranks well deeper down. Within each block both scores are turned into percentile ranks
    (the re-ranker only orders items against others of its window), pooled over blocks, and
    compared by AUROC with a paired bootstrap interval of the gain (:func:`auroc_gain_interval`).
    A block counts when its training decisions and the block itself hold both outcomes.

    ``x``: the decided rows' features (n, F); ``y``: int/bool (n,) label changed; ``static``: the
    static rank score of the decided rows (n,). Returns ``(auroc learnt, auroc static, n scored,
    gain low, gain high)``; NaNs and 0 when no block counted.
    """
    return forward_check_blocks(
        forward_blocks(x, y, static, review_order, make, cuts=cuts), seed=seed
    )


def forward_blocks(
    x: np.ndarray,
    y: np.ndarray,
    static: np.ndarray,
    review_order: np.ndarray,
    make: Any,
    *,
    cuts: tuple[float, ...] = FORWARD_CUTS,
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The forward fits of :func:`forward_check`: one ``(y, learnt probability, static rank
    score)`` per block that counts (its training decisions and the block hold both outcomes)."""
    y = np.asarray(y).astype(bool)
    idx = np.argsort(np.asarray(review_order), kind="stable")
    n = len(idx)
    bounds = [int(round(c * n)) for c in cuts] + [n]
    out = []
    for start, end in zip(bounds[:-1], bounds[1:], strict=True):
        train, test = idx[:start], idx[start:end]
        if len(np.unique(y[train])) < 2 or len(np.unique(y[test])) < 2:
            continue
        est = make()
        est.fit(x[train], y[train].astype(int))
        out.append((y[test], est.predict_proba(x[test])[:, 1], np.asarray(static)[test]))
    return out


def forward_check_blocks(
    blocks: list[tuple[np.ndarray, np.ndarray, np.ndarray]], *, seed: int = 0
) -> tuple[float, float, int, float, float]:
    """:func:`forward_check` on the blocks of :func:`forward_blocks`."""
    from scipy.stats import rankdata

    if not blocks:
        return (math.nan, math.nan, 0, math.nan, math.nan)
    yl = np.concatenate([b[0] for b in blocks])
    ls = np.concatenate([rankdata(b[1]) / len(b[1]) for b in blocks])
    ss = np.concatenate([rankdata(b[2]) / len(b[2]) for b in blocks])
    low, high = auroc_gain_interval(yl, ls, ss, seed=seed)
    return (_auroc(yl, ls), _auroc(yl, ss), len(yl), low, high)


def pull_pick(probability: np.ndarray, size: int, margin: float) -> np.ndarray:
    """Which of a pool (rows in the static order) fill a window of ``size``: the ``size`` best by
    learnt percentile within the pool, a row past the first ``size`` needing ``margin`` more;
    ties in the static order. bool (len(pool),)."""
    from scipy.stats import rankdata

    p = np.asarray(probability, dtype=np.float64)
    n = len(p)
    if n <= size:
        return np.ones(n, dtype=bool)
    score = rankdata(p) / n - np.where(np.arange(n) < size, 0.0, margin)
    out = np.zeros(n, dtype=bool)
    out[np.lexsort((np.arange(n), -score))[:size]] = True
    return out


def pull_check(
    blocks: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    *,
    margins: tuple[float, ...] = PULL_MARGINS,
    rounds: int = BOOTSTRAP_ROUNDS,
    seed: int = 0,
) -> tuple[float, float, float, float]:
    """The forward check of pulls, played as the queue plays them: in each forward block (the
    decisions after a cut, scored by the model fitted before it), the earlier half in the static
    order stands for the window and the later half for the pool below it; :func:`pull_pick` with
    each margin picks as many from the whole block. The gain is the precision (share of label
    changes) of the pick minus the window's, pooled over blocks, with a paired bootstrap 95%
    percentile interval over the blocks' decisions. Returns ``(margin, gain, low, high)`` for the
    margin with the highest lower bound when that bound is above 0, else ``(NaN, gain, low, high)``
    of that best margin (NaNs when no block counted)."""
    if not blocks:
        return (math.nan,) * 4
    best: tuple[float, float, float, float] | None = None
    rng = np.random.default_rng(seed + 104729)
    n_all = sum(len(b[0]) for b in blocks)
    idx = rng.integers(0, n_all, size=(rounds, n_all))
    for margin in margins:
        contrib, base = [], []
        for y, p, static in blocks:
            order = np.lexsort((np.arange(len(static)), -static))  # the block in the static order
            size = len(order) // 2
            if size == 0:
                continue
            window = np.zeros(len(order), dtype=bool)
            window[:size] = True
            pick = pull_pick(p[order], size, margin)
            yo = y[order].astype(float)
            contrib.append(yo * (pick.astype(float) - window))
            base.append(window.astype(float))
        c, w = np.concatenate(contrib), np.concatenate(base)
        if w.sum() == 0:
            continue
        gain = float(c.sum() / w.sum())
        ci, wi = c[idx[:, : len(c)] % len(c)], w[idx[:, : len(c)] % len(c)]
        with np.errstate(invalid="ignore", divide="ignore"):
            boot = ci.sum(axis=1) / wi.sum(axis=1)
        boot = boot[np.isfinite(boot)]
        low, high = float(np.quantile(boot, 0.025)), float(np.quantile(boot, 0.975))
        if best is None or low > best[2]:
            best = (margin, gain, low, high)
    if best is None:
        return (math.nan,) * 4
    return best if best[2] > 0 else (math.nan, best[1], best[2], best[3])


def _auroc_many(y: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """AUROC of each row of ``scores`` (B, n) against the matching row of ``y`` (B, n) (bool), by
    the Mann-Whitney rank sum with average ranks for ties; NaN where a row is one-sided."""
    from scipy.stats import rankdata

    r = rankdata(scores, axis=1)
    n_pos = y.sum(axis=1)
    n_neg = y.shape[1] - n_pos
    u = (r * y).sum(axis=1) - n_pos * (n_pos + 1) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((n_pos > 0) & (n_neg > 0), u / (n_pos * n_neg), np.nan)


def auroc_gain_interval(
    y: np.ndarray,
    learnt: np.ndarray,
    static: np.ndarray,
    *,
    rounds: int = BOOTSTRAP_ROUNDS,
    seed: int = 0,
) -> tuple[float, float]:
    """95% paired bootstrap interval (percentile) of AUROC(learnt) - AUROC(static) on the same
    decisions: ``y`` bool (n,) label changed, ``learnt`` the out-of-fold probabilities, ``static``
    the static rank score of the decided rows. Both scores are resampled with the same rows, so the
    interval is about the difference, not two separate AUROCs (Efron & Tibshirani 1993, ch. 13)."""
    y = np.asarray(y, dtype=bool)
    rng = np.random.default_rng(seed + 7919)
    idx = rng.integers(0, len(y), size=(rounds, len(y)))
    yb = y[idx]
    diff = _auroc_many(yb, np.asarray(learnt)[idx]) - _auroc_many(yb, np.asarray(static)[idx])
    diff = diff[~np.isnan(diff)]
    if not len(diff):
        return (math.nan, math.nan)
    return float(np.quantile(diff, 0.025)), float(np.quantile(diff, 0.975))


def ranked_rows(fit: Fit, scan_table: pd.DataFrame) -> np.ndarray:
    """Every row in the order of ``fit``. int64 (N,).

    Static fit: the static order. Learnt fit: the rows of ``fit.window`` (the next undecided rows of
    the static order) first, by the learnt probability (descending; ties in the static order), then
    every other row in the static order; with no window, every row by the learnt probability. With
    pulls (:attr:`Fit.pulls`) the first ``fit.window_size`` places go to :func:`pull_pick` of the
    window's pool, and its other rows keep their static places after them."""
    order = static_order(scan_table)
    if fit.ranking != LEARNT:
        return order
    pos = np.empty(len(order), dtype=np.int64)
    pos[order] = np.arange(len(order))
    if fit.window is None:
        return np.lexsort((pos, -fit.probability)).astype(np.int64)
    inside = fit.window.astype(bool)
    if fit.pulls and fit.window_size and inside.sum() > fit.window_size:
        pool = order[inside[order]]  # the pool in the static order
        picked = np.zeros(len(order), dtype=bool)
        picked[pool[pull_pick(fit.probability[pool], fit.window_size, fit.pull_margin)]] = True
        inside = picked
    return np.lexsort((pos, -np.where(inside, fit.probability, 0.0), ~inside)).astype(np.int64)


# --------------------------------------------------------------------------- active learning
def active_learning_scores(ds: Dataset, pred_probs: np.ndarray) -> pd.DataFrame:
    """Which multi-annotated items most need one more annotation: cleanlab's ActiveLab score
    (``cleanlab.multiannotator.get_active_learning_scores``; Goh & Mueller 2023), lower = more
    informative, in [0, 1].

    ``pred_probs``: float (N, K) out-of-sample probabilities row-aligned with ``ds`` (the scan's).
    Returns the annotated items, most informative first: columns ``id``, ``active_learning_score``,
    ``n_annotations``, ``n_labels`` (distinct labels given), ``majority_label``. Raises
    :class:`DataError` when the dataset has no annotations.

    >>> active_learning_scores(ds, res.detection.pred_probs).head()   # doctest: +SKIP
    """
    from cleanlab.multiannotator import get_active_learning_scores

    from labelaudit.agreement.ratings import Ratings

    probs = np.asarray(pred_probs, dtype=np.float64)
    if probs.shape != (ds.n, ds.k):
        raise UsageError(f"pred_probs of shape {probs.shape}; expected ({ds.n}, {ds.k})")
    ratings = Ratings.from_dataset(ds)
    wide = np.full((ratings.n_items, ratings.n_annotators), np.nan)
    wide[ratings.item, ratings.annotator] = ratings.label
    frame = pd.DataFrame(wide, columns=[str(a) for a in ratings.annotator_ids])
    rows = np.array([ds.id_to_row[str(i)] for i in ratings.item_ids], dtype=np.int64)
    if ratings.k < 2 or ratings.n_items < 1:
        raise DataError(Problem("too few annotations", "annotations of at least one item"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scores, _ = get_active_learning_scores(frame, probs[rows])
    counts = ratings.counts  # (I, K) ratings per item and class
    majority = np.asarray(ds.classes, dtype=object)[counts.argmax(axis=1)]
    out = pd.DataFrame(
        {
            "id": ratings.item_ids.astype(str),
            "active_learning_score": np.asarray(scores, dtype=np.float64),
            "n_annotations": counts.sum(axis=1).astype(np.int64),
            "n_labels": (counts > 0).sum(axis=1).astype(np.int64),
            "majority_label": majority,
        }
    )
    return out.sort_values(["active_learning_score", "id"], kind="stable").reset_index(drop=True)
