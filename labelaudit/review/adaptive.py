"""The queue in force: which ranking orders the remaining items, when it is refitted, and the audit slots.

The Review page, the Label issues page and ``labelaudit queue`` all call :func:`queue_in_force`,
so they show the same queue. The rules:

- **Settings** live in the review store (``review_settings``, append-only; the latest value of a
  name wins), so every session and the command line follow them: ``rerank_every`` (N, default
  :data:`DEFAULT_RERANK_EVERY`), ``audit_share`` (0 = audit mode off) and ``combiner_model``.
- **Re-ranking.** A ranking is fitted (:func:`labelaudit.review.learn.fit_learnt`) and recorded in
  ``review_rankings`` when asked for (*on demand*) or once N decisions were made since the last one
  (*auto*). It is fitted on the decisions in force up to its ``cutoff_decision_id`` and stays in
  force until the next one, so the queue does not shift under a reviewer between two re-rankings.
  Fits are deterministic: any process recomputes the same one from the log (and caches it in the
  workspace).
- **Decided items are never reordered.** They leave the remaining queue. The full order
  (:attr:`QueueInForce.full_order`) lists them first, in the order they were decided, then the
  remaining queue.
- **Audit slots** (:mod:`labelaudit.review.audit`) are interleaved into the remaining queue while
  ``audit_share`` > 0. Nothing on the card says so; the decision stores ``shown["audit"]``.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from labelaudit.dataset import Dataset
from labelaudit.errors import UsageError
from labelaudit.progress import ProgressFn, no_progress
from labelaudit.review import audit as audit_mod
from labelaudit.review import learn
from labelaudit.review.queue import RANKING_SOURCE
from labelaudit.review.store import ReviewStore, rankings_table, settings_table

#: Re-rank after this many decisions by default.
DEFAULT_RERANK_EVERY = 20
#: Bump when a fit changes for the same decisions (cached fits are then recomputed).
LEARN_VERSION = 4
#: Columns of :attr:`QueueInForce.queue` (``labelaudit queue`` writes the first five).
QUEUE_COLUMNS = [
    "id",
    "queue_rank",
    "ranking",
    "label_issue_score",
    "estimated_precision",
    "audit",
    "row",
]
CLI_COLUMNS = QUEUE_COLUMNS[:5]


# --------------------------------------------------------------------------- settings
@dataclass
class ReviewSettings:
    """How the queue adapts. ``rerank_every``: N >= 1; ``audit_share``: in [0, 0.5]; ``combiner_model``:
    one of :data:`labelaudit.review.learn.MODELS`."""

    rerank_every: int = DEFAULT_RERANK_EVERY
    audit_share: float = 0.0
    combiner_model: str = "logistic"

    @property
    def audit_on(self) -> bool:
        return self.audit_share > 0


def check_setting(name: str, value: Any) -> Any:
    """The value, validated; UsageError naming the setting and the allowed range otherwise."""
    if name == "rerank_every":
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise UsageError(
                f"rerank_every must be a whole number of decisions >= 1, got {value!r}"
            )
        return int(value)
    if name == "audit_share":
        try:
            share = float(value)
        except (TypeError, ValueError):
            share = math.nan
        if not 0 <= share <= 0.5:
            raise UsageError(f"audit_share must be between 0 and 0.5 (e.g. 0.05), got {value!r}")
        return share
    if name == "combiner_model":
        if value not in learn.MODELS:
            raise UsageError(
                f"combiner_model must be one of {', '.join(learn.MODELS)}, got {value!r}"
            )
        return str(value)
    raise UsageError(
        f"unknown review setting {name!r}; known: {', '.join(asdict(ReviewSettings()))}"
    )


def save_setting(
    store: ReviewStore, dataset_version: str, name: str, value: Any, *, set_by: str
) -> None:
    """Append a setting value (validated by :func:`check_setting`); the newest wins."""
    value = check_setting(name, value)
    with store.engine.begin() as conn:
        conn.execute(
            settings_table.insert().values(
                dataset_version=dataset_version,
                name=name,
                value=json.dumps(value),
                set_by=str(set_by),
                set_at=store.clock(),
            )
        )


def load_settings(store: ReviewStore, dataset_version: str) -> ReviewSettings:
    """The settings in force for ``dataset_version`` (defaults for names never set)."""
    with store.reading() as conn:
        rows = conn.execute(
            sa.select(settings_table.c.name, settings_table.c.value)
            .where(settings_table.c.dataset_version == dataset_version)
            .order_by(settings_table.c.setting_id)
        ).all()
    out = ReviewSettings()
    for name, value in rows:
        try:
            setattr(out, name, check_setting(name, json.loads(value)))
        except (UsageError, ValueError):
            continue  # a value written by a newer version: keep the default
    return out


# --------------------------------------------------------------------------- ranking records
@dataclass
class RankingRecord:
    """One ranking put in force (a row of ``review_rankings``)."""

    ranking_id: int
    cutoff_decision_id: int
    ranking: str
    trigger: str
    n_decisions: int
    n_changed: int
    auroc_learnt: float | None
    auroc_static: float | None
    note: str
    requested_by: str
    created_at: datetime


def _nan_to_none(v: float) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def record_ranking(
    store: ReviewStore,
    dataset_version: str,
    fit: learn.Fit,
    *,
    cutoff_decision_id: int,
    trigger: str,
    requested_by: str,
) -> RankingRecord:
    """Record that ``fit`` (fitted on decisions up to ``cutoff_decision_id``) is now in force."""
    values = dict(
        dataset_version=dataset_version,
        cutoff_decision_id=int(cutoff_decision_id),
        ranking=fit.ranking,
        trigger=trigger,
        n_decisions=fit.n_decisions,
        n_changed=fit.n_changed,
        auroc_learnt=_nan_to_none(fit.auroc if fit.model else math.nan),
        auroc_static=_nan_to_none(fit.auroc_static),
        note=fit.reason,
        requested_by=str(requested_by),
        created_at=store.clock(),
    )
    with store.engine.begin() as conn:
        rid = conn.execute(
            rankings_table.insert().values(**values).returning(rankings_table.c.ranking_id)
        ).scalar_one()
    return RankingRecord(
        ranking_id=int(rid),
        **{k: v for k, v in values.items() if k != "dataset_version"},  # type: ignore[arg-type]
    )


def ranking_history(store: ReviewStore, dataset_version: str) -> list[RankingRecord]:
    """Every ranking put in force for ``dataset_version``, oldest first."""
    c = rankings_table.c
    with store.reading() as conn:
        rows = conn.execute(
            sa.select(rankings_table)
            .where(c.dataset_version == dataset_version)
            .order_by(c.ranking_id)
        ).all()
    out = []
    for r in rows:
        m = dict(r._mapping)
        m.pop("dataset_version")
        ts = m["created_at"]
        m["created_at"] = ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
        out.append(RankingRecord(**m))
    return out


def latest_ranking(store: ReviewStore, dataset_version: str) -> RankingRecord | None:
    """The ranking in force (the newest record), or None before the first re-ranking."""
    hist = ranking_history(store, dataset_version)
    return hist[-1] if hist else None


# --------------------------------------------------------------------------- cached fits
_ARRAY_FIELDS = ("probability", "in_support", "window")
_FLOAT_FIELDS = (
    "auroc",
    "auroc_static",
    "gain_low",
    "gain_high",
    "forward_auroc",
    "forward_auroc_static",
    "pull_margin",
    "pull_gain",
    "pull_gain_low",
    "pull_gain_high",
)


def _fit_params(
    outcomes: pd.DataFrame, scan_table: pd.DataFrame, model: str, seed: int, cutoff: int
) -> dict[str, Any]:
    import hashlib

    h = hashlib.sha256()
    for rec in outcomes[["item_id", "changed", "audit"]].itertuples(index=False):
        h.update(f"{rec[0]}\x1f{int(rec[1])}{int(rec[2])}\x1e".encode())
    return {
        "cutoff": int(cutoff),
        "decisions": h.hexdigest()[:20],
        "scan": audit_mod.scan_fingerprint(scan_table),
        "model": model,
        "seed": int(seed),
        "version": LEARN_VERSION,
    }


def _fit_cached(
    ds: Dataset,
    scan_table: pd.DataFrame,
    outcomes: pd.DataFrame,
    *,
    details: Mapping[str, Any] | None,
    model: str,
    seed: int,
    cutoff: int,
    workspace: Any,
) -> learn.Fit:
    def compute() -> learn.Fit:
        return learn.fit_learnt(ds, scan_table, outcomes, details=details, model=model, seed=seed)

    if workspace is None:
        return compute()
    params = _fit_params(outcomes, scan_table, model, seed, cutoff)
    key = ds.content_hash
    if workspace.has(key, "learnt_ranking_meta", params, ext="json") and workspace.has(
        key, "learnt_ranking", params, ext="parquet"
    ):
        meta: dict[str, Any] = workspace.load(key, "learnt_ranking_meta", params, ext="json")
        arrays = workspace.load(key, "learnt_ranking", params, ext="parquet")
        for k in _FLOAT_FIELDS:
            meta[k] = math.nan if meta.get(k) is None else float(meta[k])
        has_window = bool(meta.pop("has_window", False))
        return learn.Fit(
            probability=arrays["probability"].to_numpy(dtype=np.float64),
            in_support=arrays["in_support"].to_numpy(dtype=bool),
            window=arrays["window"].to_numpy(dtype=bool) if has_window else None,
            **meta,
        )
    fit = compute()
    arrays = {"probability": fit.probability, "in_support": fit.in_support}
    if fit.window is not None:
        arrays["window"] = fit.window
    workspace.save(key, "learnt_ranking", pd.DataFrame(arrays), params, ext="parquet")
    meta = {k: v for k, v in asdict(fit).items() if k not in _ARRAY_FIELDS}
    meta = {k: _nan_to_none(v) if isinstance(v, float) else v for k, v in meta.items()}
    meta["has_window"] = fit.window is not None
    workspace.save(key, "learnt_ranking_meta", meta, params, ext="json")  # last: marks it complete
    return fit


# --------------------------------------------------------------------------- the queue in force
@dataclass
class QueueInForce:
    """The ranking in force and the remaining queue it gives.

    ``queue``: columns :data:`QUEUE_COLUMNS`, one row per undecided item, ``queue_rank`` 1 = next;
    ``estimated_precision`` is the chance that the row's label needs a change (NaN where the
    decisions do not reach that far down the ranking, or before there are enough decisions);
    ``audit`` marks audit slots (never shown to the reviewer). ``order``: every row (int64 (N,)) in
    the ranking in force. ``estimated_precision``: float64 (N,), for every row (out-of-fold for
    decided ones).
    """

    fit: learn.Fit
    record: RankingRecord | None
    settings: ReviewSettings
    plan: audit_mod.AuditPlan | None
    outcomes: pd.DataFrame
    order: np.ndarray
    queue: pd.DataFrame
    refitted: bool
    decisions_since_rerank: int
    full_order: list[str] = field(default_factory=list)

    @property
    def ranking(self) -> str:
        return self.fit.ranking

    @property
    def estimated_precision(self) -> np.ndarray:
        return self.fit.estimated_precision

    @property
    def next_rerank_in(self) -> int:
        """Decisions until the next automatic re-ranking."""
        return max(self.settings.rerank_every - self.decisions_since_rerank, 0)

    def flagged_order(self, scan_table: pd.DataFrame) -> list[str]:
        """:attr:`full_order` (decided first, then the remaining queue) without the rows the scan
        does not flag (``is_label_issue``); audit slots stay, since they are drawn from outside the top.
        All of it when the table has no flags."""
        if "is_label_issue" not in scan_table:
            return self.full_order
        flags = scan_table["is_label_issue"].fillna(False).astype(bool)
        keep = set(scan_table.loc[flags, "id"].astype(str))
        keep |= set(self.queue.loc[self.queue["audit"], "id"].astype(str))
        return [i for i in self.full_order if i in keep]

    def is_audit(self, item_id: str) -> bool:
        hit = self.queue.loc[self.queue["id"] == str(item_id), "audit"]
        return bool(hit.iloc[0]) if len(hit) else False

    def describe(self) -> str:
        """Which ranking is in force, how and when it was fitted, and when it is refitted (plain text)."""
        text = f"Ranking in force: {self.fit.ranking}: {self.fit.describe()}"
        if self.record is not None:
            when = self.record.created_at.strftime("%Y-%m-%d %H:%M UTC")
            text += (
                f" Re-ranked {when} ({self.record.trigger}, by {self.record.requested_by}) on the "
                f"decisions up to #{self.record.cutoff_decision_id}."
            )
        text += (
            f" Next automatic re-ranking after {self.next_rerank_in:,} more decision(s) "
            f"(every {self.settings.rerank_every:,})."
        )
        return text


def _remaining_queue(
    ds: Dataset,
    scan_table: pd.DataFrame,
    fit: learn.Fit,
    order: np.ndarray,
    outcomes: pd.DataFrame,
    plan: audit_mod.AuditPlan | None,
    share: float,
) -> pd.DataFrame:
    decided = np.zeros(ds.n, dtype=bool)
    decided[outcomes["row"].to_numpy(dtype=np.int64)] = True
    ranked = order[~decided[order]]
    sequence = ranked
    audit_flag = np.zeros(len(ranked), dtype=bool)
    if plan is not None and share > 0 and len(plan.items):
        id_to_row = ds.id_to_row
        pending = [
            id_to_row[i]
            for i in plan.items["item_id"].astype(str)
            if i in id_to_row and not decided[id_to_row[i]]
        ]
        after = outcomes[outcomes["decision_id"] > plan.cutoff_decision_id]
        d = int((after["queue"] == RANKING_SOURCE).sum())  # audit decisions come from it too
        a = int(after["audit"].sum())
        slots = audit_slots_for(share, d, a, len(ranked))
        placed = np.zeros(ds.n, dtype=bool)
        seq = np.empty(len(ranked), dtype=np.int64)
        ai = ri = 0
        for j in range(len(ranked)):
            row = -1
            if slots[j]:
                while ai < len(pending) and placed[pending[ai]]:
                    ai += 1
                if ai < len(pending):
                    row = pending[ai]
                    ai += 1
                    audit_flag[j] = True
            if row < 0:
                while placed[ranked[ri]]:
                    ri += 1
                row = int(ranked[ri])
                ri += 1
            placed[row] = True
            seq[j] = row
        sequence = seq
    score = pd.to_numeric(scan_table["label_issue_score"], errors="coerce").to_numpy(dtype=float)
    return pd.DataFrame(
        {
            "id": ds.ids[sequence].astype(str),
            "queue_rank": np.arange(1, len(sequence) + 1, dtype=np.int64),
            "ranking": fit.ranking,
            "label_issue_score": score[sequence],
            "estimated_precision": fit.estimated_precision[sequence],
            "audit": audit_flag,
            "row": sequence.astype(np.int64),
        },
        columns=QUEUE_COLUMNS,
    )


def audit_slots_for(share: float, d: int, a: int, n: int) -> np.ndarray:
    """:func:`labelaudit.review.audit.audit_slots` (named here so the queue and its tests share it)."""
    return audit_mod.audit_slots(share, d, a, n)


def queue_in_force(
    store: ReviewStore,
    ds: Dataset,
    scan_table: pd.DataFrame,
    *,
    details: Mapping[str, Any] | None = None,
    workspace: Any = None,
    seed: int = 0,
    rerank: bool = False,
    auto: bool = True,
    requested_by: str = "auto",
) -> QueueInForce:
    """The ranking in force for ``ds`` and its remaining queue; refits first when due.

    ``rerank``: refit now (*on demand*); ``auto``: refit when ``rerank_every`` decisions were made
    since the ranking in force (a page view or ``labelaudit queue`` may thus record a new ranking).
    ``scan_table``/``details``: the scan's table and detection details. Fits are cached in
    ``workspace`` (a :class:`~labelaudit.workspace.Workspace`) when given.

    >>> q = queue_in_force(store, ds, res.table, details=res.detection.details, workspace=ws)  # doctest: +SKIP
    >>> q.queue[["id", "queue_rank", "ranking", "estimated_precision"]].head()               # doctest: +SKIP
    """
    h = ds.content_hash
    log = store.log(h)
    outcomes = learn.reviewed_outcomes(ds, log, scan_table=scan_table)
    settings = load_settings(store, h)
    record = latest_ranking(store, h)
    cutoff_then = record.cutoff_decision_id if record is not None else 0
    since = int((outcomes["decision_id"] > cutoff_then).sum())
    due = rerank or (auto and since >= settings.rerank_every)
    refitted = False
    if due:
        cutoff = int(log["decision_id"].max()) if len(log) else 0
        fit = _fit_cached(
            ds,
            scan_table,
            outcomes,
            details=details,
            model=settings.combiner_model,
            seed=seed,
            cutoff=cutoff,
            workspace=workspace,
        )
        record = record_ranking(
            store,
            h,
            fit,
            cutoff_decision_id=cutoff,
            trigger="on demand" if rerank else "auto",
            requested_by=requested_by,
        )
        refitted, since = True, 0
    elif record is not None:
        fit = _fit_cached(
            ds,
            scan_table,
            learn.reviewed_outcomes(
                ds, log, scan_table=scan_table, cutoff_decision_id=record.cutoff_decision_id
            ),
            details=details,
            model=settings.combiner_model,
            seed=seed,
            cutoff=record.cutoff_decision_id,
            workspace=workspace,
        )
    else:
        fit = learn.static_estimate(scan_table, outcomes, seed=seed)
        if not len(outcomes):
            fit.reason = "No decisions yet: the static ranking is in force."
    order = learn.ranked_rows(fit, scan_table)
    plan = audit_mod.load_audit_plan(store, h)
    queue = _remaining_queue(ds, scan_table, fit, order, outcomes, plan, settings.audit_share)
    full = (
        outcomes.sort_values("review_order")["item_id"].astype(str).tolist() + queue["id"].tolist()
    )
    return QueueInForce(
        fit=fit,
        record=record,
        settings=settings,
        plan=plan,
        outcomes=outcomes,
        order=order,
        queue=queue,
        refitted=refitted,
        decisions_since_rerank=since,
        full_order=full,
    )


# --------------------------------------------------------------------------- audit mode
def start_audit(
    store: ReviewStore,
    ds: Dataset,
    scan_table: pd.DataFrame,
    *,
    share: float = audit_mod.DEFAULT_SHARE,
    created_by: str,
    n_items: int = audit_mod.DEFAULT_SAMPLE,
    seed: int = 0,
    redraw: bool = False,
) -> audit_mod.AuditPlan:
    """Switch audit mode on at ``share``; draws and stores the audit sample when there is none yet,
    when the scan changed since, or with ``redraw``. Returns the plan in force."""
    share = check_setting("audit_share", share)
    if share <= 0:
        raise UsageError("an audit share above 0 is needed to switch audit mode on (e.g. 0.05)")
    h = ds.content_hash
    plan = audit_mod.load_audit_plan(store, h)
    if (
        redraw
        or plan is None
        or (
            plan.scan_fingerprint
            and plan.scan_fingerprint != audit_mod.scan_fingerprint(scan_table)
        )
    ):
        log = store.log(h)
        current = store.current(h)
        plan = audit_mod.draw_audit_plan(
            ds,
            scan_table,
            decided_ids=set(current["item_id"].astype(str)),
            cutoff_decision_id=int(log["decision_id"].max()) if len(log) else 0,
            n_items=n_items,
            seed=seed,
        )
        plan = audit_mod.save_audit_plan(store, h, plan, created_by=created_by)
    save_setting(store, h, "audit_share", share, set_by=created_by)
    return plan


def stop_audit(store: ReviewStore, ds: Dataset, *, set_by: str) -> None:
    """Switch audit mode off (the sample and its decisions stay for the estimate)."""
    save_setting(store, ds.content_hash, "audit_share", 0.0, set_by=set_by)


def remaining_errors(
    q: QueueInForce, ds: Dataset, scan_table: pd.DataFrame, *, seed: int = 0
) -> audit_mod.RemainingErrors:
    """The audit's estimate of the errors left (see
    :func:`labelaudit.review.audit.estimate_remaining_errors`; valid whichever queue is in force)."""
    return audit_mod.estimate_remaining_errors(ds, scan_table, q.outcomes, q.plan, seed=seed)


# --------------------------------------------------------------------------- suggestions
@dataclass
class SuggestionRefit:
    """Out-of-fold probabilities refitted with the reviewed labels fixed. ``probs``: float64 (N, K)."""

    probs: np.ndarray
    cutoff_decision_id: int
    n_decisions: int
    seconds: float


def refit_suggestions(
    ds: Dataset,
    embeddings: np.ndarray,
    log: pd.DataFrame,
    *,
    workspace: Any = None,
    seed: int = 0,
    n_splits: int = 5,
    progress: ProgressFn = no_progress,
) -> SuggestionRefit:
    """Refit the out-of-fold model with every reviewed label fixed to the reviewer's choice.

    The same stratified K-fold logistic regression as the scan (:func:`labelaudit.detectors.oof.
    out_of_fold_probs`) on ``embeddings`` (float (N, D)), trained on the labels after the decisions
    (removed rows left out of training; they keep a uniform row). Each row's probabilities come from
    a model that did not train on it, so the suggestion for the next item draws on what reviewers
    decided about similar ones. Stored in ``workspace`` under the decisions' digest, with a pointer
    to the latest refit (:func:`latest_suggestion_refit`).
    """
    from labelaudit import roi
    from labelaudit.detectors.oof import cached_out_of_fold_probs

    emb = np.asarray(embeddings, dtype=np.float32)
    if len(emb) != ds.n:
        raise UsageError(f"embeddings have {len(emb)} rows but the dataset has {ds.n}")
    started = time.perf_counter()
    dec = roi.effective_decisions(log)
    dec = dec[dec["item_id"].isin(ds.id_to_row)]
    labels = roi.labels_after_review(ds, dec)
    keep = labels >= 0
    cutoff = int(log["decision_id"].max()) if len(log) else 0
    key = f"{ds.content_hash}-refit-{roi.decisions_digest(log)}"
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sub, _ = cached_out_of_fold_probs(
            emb[keep],
            labels[keep],
            n_classes=ds.k,
            key=key,
            workspace=workspace,
            n_splits=n_splits,
            seed=seed,
            progress=progress,
        )
    probs = np.full((ds.n, ds.k), 1.0 / ds.k)
    probs[keep] = sub
    out = SuggestionRefit(probs, cutoff, len(dec), time.perf_counter() - started)
    if workspace is not None:
        workspace.save(ds.content_hash, "suggestions_refit", probs, {"cutoff": cutoff})
        workspace.save(
            ds.content_hash,
            "suggestions_refit_latest",
            {"cutoff": cutoff, "n_decisions": len(dec), "seconds": out.seconds},
            ext="json",
        )
    return out


def latest_suggestion_refit(workspace: Any, ds: Dataset) -> SuggestionRefit | None:
    """The newest :func:`refit_suggestions` result stored for ``ds``, or None."""
    if workspace is None or not workspace.has(
        ds.content_hash, "suggestions_refit_latest", ext="json"
    ):
        return None
    meta = workspace.load(ds.content_hash, "suggestions_refit_latest", ext="json")
    params = {"cutoff": int(meta["cutoff"])}
    if not workspace.has(ds.content_hash, "suggestions_refit", params):
        return None
    probs = workspace.load(ds.content_hash, "suggestions_refit", params)
    return SuggestionRefit(
        probs, int(meta["cutoff"]), int(meta["n_decisions"]), float(meta["seconds"])
    )


def with_refit_suggestions(
    scan_table: pd.DataFrame, refit: SuggestionRefit, classes: list[str]
) -> pd.DataFrame:
    """A copy of the scan table whose ``suggested_label`` / ``suggested_label_prob`` come from ``refit``."""
    t = scan_table.copy()
    top = refit.probs.argmax(axis=1)
    t["suggested_label"] = np.asarray(classes, dtype=object)[top]
    t["suggested_label_prob"] = refit.probs[np.arange(len(top)), top]
    return t


# --------------------------------------------------------------------------- for the ROI page and report
@dataclass
class LearningSummary:
    """What the ROI page and the report show about learning from the decisions: the ranking in force
    (``ranking_text``), the estimated precision of every detector's and the combined flag
    (:func:`labelaudit.review.learn.precision_estimates`) and the audit's estimate of the errors left."""

    ranking: str
    ranking_text: str
    n_decisions: int
    auroc_learnt: float
    auroc_static: float
    precision: pd.DataFrame
    remaining: audit_mod.RemainingErrors
    audit_share: float


def learning_summary(
    store: ReviewStore,
    ds: Dataset,
    scan_table: pd.DataFrame,
    *,
    details: Mapping[str, Any] | None = None,
    workspace: Any = None,
    seed: int = 0,
) -> LearningSummary:
    """The :class:`LearningSummary` of ``ds`` now. Reads only: never records a re-ranking."""
    q = queue_in_force(
        store, ds, scan_table, details=details, workspace=workspace, seed=seed, auto=False
    )
    return LearningSummary(
        ranking=q.ranking,
        ranking_text=q.describe(),
        n_decisions=q.fit.n_decisions,
        auroc_learnt=q.fit.auroc if q.fit.model else math.nan,
        auroc_static=q.fit.auroc_static,
        precision=learn.precision_estimates(ds, q.outcomes, scan_table=scan_table, details=details),
        remaining=remaining_errors(q, ds, scan_table, seed=seed),
        audit_share=q.settings.audit_share,
    )
