"""The queue that learns, on the page: the ranking in force, re-ranking, audit mode, track records.

The rules are :mod:`labelaudit.review.adaptive`'s (the same queue as ``labelaudit queue``). Here:
the cache that builds the queue in force once per ranking (``ranking_token``: the ranking record,
the settings, the audit plan), the check after each decision whether a re-ranking is due (reads
only the decisions since the ranking's cutoff), the lead's settings, and the card's track record.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from components import state
from components.data import load_workspace_dataset
from components.label_issues import PRECISION_COLUMN  # the Label issues table's column
from components.scan import load_scan
from components.store import get_store
from components.text import md_escape
from labelaudit.dataset import Dataset
from labelaudit.errors import DataError, UsageError
from labelaudit.review import adaptive, learn
from labelaudit.review import audit as audit_mod
from labelaudit.review.identity import Identity, require_lead
from labelaudit.review.session import rerank_due
from labelaudit.review.store import ReviewStore
from labelaudit.scanning import ScanResult
from labelaudit.workspace import Workspace

#: The review queue kinds a page offers.
RANKED, ACTIVE = "ranking in force", "one more annotation (active learning)"


def _seed(options_json: str) -> int:
    try:
        return int(json.loads(options_json).get("seed", 0))
    except (ValueError, TypeError, AttributeError):
        return 0


def ranking_token(store: ReviewStore, dataset_version: str) -> tuple[Any, ...]:
    """What the queue in force depends on besides the scan: the ranking record, the settings and
    the audit plan. Three small reads; a new token rebuilds the queue."""
    record = adaptive.latest_ranking(store, dataset_version)
    settings = adaptive.load_settings(store, dataset_version)
    plan = audit_mod.load_audit_plan(store, dataset_version)
    return (
        record.ranking_id if record is not None else 0,
        record.cutoff_decision_id if record is not None else 0,
        settings.rerank_every,
        settings.audit_share,
        settings.combiner_model,
        plan.plan_id if plan is not None else 0,
    )


@st.cache_resource(show_spinner=False, max_entries=8)
def queue_in_force(
    workspace_root: str, dataset_hash: str, db_url: str, options_json: str, token: tuple
) -> adaptive.QueueInForce:
    """:func:`labelaudit.review.adaptive.queue_in_force` (never re-ranks here), once per ``token``
    (:func:`ranking_token`). Shared by sessions: treat it as read-only."""
    ds = load_workspace_dataset(workspace_root, dataset_hash)
    res = load_scan(workspace_root, dataset_hash, options_json)
    return adaptive.queue_in_force(
        get_store(db_url),
        ds,
        res.table,
        details=res.detection.details if res.detection else None,
        workspace=Workspace(workspace_root),
        seed=_seed(options_json),
        auto=False,
    )


def rerank_if_due(
    store: ReviewStore,
    ds: Dataset,
    scan: ScanResult,
    workspace_root: str,
    options_json: str,
    who: Identity,
    *,
    now: bool = False,
) -> adaptive.QueueInForce | None:
    """Re-rank when ``rerank_every`` items were decided since the ranking in force (anyone's
    decisions), or ``now`` (on demand, a lead). Returns the new queue, None when nothing was due."""
    h = ds.content_hash
    if now:
        require_lead(who, "re-rank the queue for everyone")
    else:
        record = adaptive.latest_ranking(store, h)
        settings = adaptive.load_settings(store, h)
        cutoff = record.cutoff_decision_id if record is not None else 0
        if not rerank_due(store, h, cutoff=cutoff, every=settings.rerank_every):
            return None
    with st.spinner("Re-ranking the queue on the decisions so far…"):
        q = adaptive.queue_in_force(
            store,
            ds,
            scan.table,
            details=scan.detection.details if scan.detection else None,
            workspace=Workspace(workspace_root),
            seed=_seed(options_json),
            rerank=now,
            auto=True,
            requested_by=who.name,
        )
    return q


@st.cache_resource(show_spinner=False, max_entries=8)
def flagged_order(
    workspace_root: str, dataset_hash: str, db_url: str, options_json: str, token: tuple
) -> tuple[str, ...]:
    """:meth:`~labelaudit.review.adaptive.QueueInForce.flagged_order`, once per ranking (shared,
    immutable)."""
    q = queue_in_force(workspace_root, dataset_hash, db_url, options_json, token)
    res = load_scan(workspace_root, dataset_hash, options_json)
    return tuple(q.flagged_order(res.table))


@st.cache_data(show_spinner=False, max_entries=4)
def active_learning_order(workspace_root: str, dataset_hash: str, options_json: str) -> list[str]:
    """Annotated items, the one most in need of one more annotation first (cleanlab's ActiveLab)."""
    ds = load_workspace_dataset(workspace_root, dataset_hash)
    res = load_scan(workspace_root, dataset_hash, options_json)
    probs = res.detection.pred_probs if res.detection is not None else None
    probs = probs if probs is not None else ds.pred_probs  # as `labelaudit queue` does
    if probs is None:
        raise UsageError("the active-learning queue needs predicted probabilities: run the scan")
    return learn.active_learning_scores(ds, probs)["id"].astype(str).tolist()


@st.cache_data(show_spinner=False, max_entries=8)
def precision_so_far(
    workspace_root: str, dataset_hash: str, db_url: str, options_json: str, newest_decision: int
) -> pd.DataFrame:
    """:func:`labelaudit.review.learn.precision_estimates` on the decisions up to ``newest_decision``
    (its key: recomputed after each decision)."""
    ds = load_workspace_dataset(workspace_root, dataset_hash)
    res = load_scan(workspace_root, dataset_hash, options_json)
    store = get_store(db_url)
    outcomes = learn.reviewed_outcomes(ds, store.log(dataset_hash), scan_table=res.table)
    return learn.precision_estimates(
        ds, outcomes, scan_table=res.table, details=res.detection.details if res.detection else None
    )


def refit_cutoff(workspace_root: str, ds: Dataset) -> int:
    """The decision id the latest suggestion refit was fitted up to (0: none); a small JSON read."""
    ws = Workspace(workspace_root)
    if not ws.has(ds.content_hash, "suggestions_refit_latest", ext="json"):
        return 0
    try:
        return int(ws.load(ds.content_hash, "suggestions_refit_latest", ext="json")["cutoff"])
    except (KeyError, TypeError, ValueError, OSError):
        return 0


@st.cache_resource(show_spinner=False, max_entries=2)
def stored_refit(
    workspace_root: str, dataset_hash: str, cutoff: int
) -> adaptive.SuggestionRefit | None:
    """The stored suggestion refit (float (N, K) probabilities), loaded once per ``cutoff``."""
    ds = load_workspace_dataset(workspace_root, dataset_hash)
    refit = adaptive.latest_suggestion_refit(Workspace(workspace_root), ds)
    return refit if refit is not None and refit.cutoff_decision_id == cutoff else None


def run_suggestion_refit(
    store: ReviewStore, ds: Dataset, scan: ScanResult, workspace_root: str, options_json: str
) -> bool:
    """Refit the suggestions on the decisions so far, with progress; True when done."""
    from components.progress import StatusProgress

    with st.status("Refitting the suggestions on the decisions…", expanded=True) as status:
        try:
            r = adaptive.refit_suggestions(
                ds,
                scan.embeddings,
                store.log(ds.content_hash),
                workspace=Workspace(workspace_root),
                seed=_seed(options_json),
                progress=StatusProgress(status, "Refitting"),
            )
        except (DataError, UsageError) as e:
            status.update(label="Refit failed", state="error")
            st.error(md_escape(str(e)), icon=":material/error:")
            return False
        status.update(
            label=f"Suggestions refitted on {r.n_decisions:,} decisions in {r.seconds:.1f} s",
            state="complete",
            expanded=False,
        )
    return True


# --------------------------------------------------------------------------- drawing
def render_ranking(q: adaptive.QueueInForce) -> None:
    """Which ranking orders the queue and how it was fitted (one plain paragraph)."""
    st.caption(md_escape(q.describe()))


def render_queue_settings(
    store: ReviewStore,
    ds: Dataset,
    scan: ScanResult,
    workspace_root: str,
    options_json: str,
    who: Identity,
    q: adaptive.QueueInForce,
) -> None:
    """The lead's controls: re-rank now, re-rank every N decisions, audit mode on/off and its share."""
    h = ds.content_hash
    with st.popover("Queue settings", icon=":material/tune:"):
        if st.button("Re-rank now", key=state.REVIEW_RERANK, icon=":material/refresh:"):
            try:
                new = rerank_if_due(store, ds, scan, workspace_root, options_json, who, now=True)
            except (DataError, UsageError) as e:
                st.error(md_escape(str(e)), icon=":material/error:")
            else:
                if new is not None:
                    st.rerun()
        every = st.number_input(
            "Re-rank after every N decisions",
            min_value=1,
            max_value=100_000,
            value=int(q.settings.rerank_every),
            key=state.REVIEW_RERANK_EVERY,
        )
        if st.button("Save", key=state.REVIEW_SAVE_RERANK_EVERY):
            adaptive.save_setting(store, h, "rerank_every", int(every), set_by=who.name)
            st.rerun()
        if st.button(
            "Refit suggestions on the decisions",
            key=state.REVIEW_REFIT_SUGGESTIONS,
            icon=":material/model_training:",
            help="Refit the out-of-fold model with every reviewed label fixed, so suggestions use "
            "what reviewers decided about similar items",
        ) and run_suggestion_refit(store, ds, scan, workspace_root, options_json):
            st.rerun()
        cutoff = refit_cutoff(workspace_root, ds)
        st.caption(
            f"Suggestions: refitted on the decisions up to #{cutoff}."
            if cutoff
            else "Suggestions: from the scan's out-of-fold model."
        )
        st.divider()
        on = q.settings.audit_on
        st.markdown(
            "**Audit mode** " + (f"on: {q.settings.audit_share:.0%} of the queue" if on else "off")
        )
        st.caption(
            "A share of the queue drawn at random, stratified by score, from items the ranking did not "
            "put on top; reviewers are not told which. Their decisions estimate how many errors are "
            "left (ROI page)."
        )
        share = st.number_input(
            "Audit share, %",
            min_value=1,
            max_value=50,
            value=max(1, int(round(100 * (q.settings.audit_share or audit_mod.DEFAULT_SHARE)))),
            key=state.REVIEW_AUDIT_SHARE,
        )
        c = st.columns(2)
        if c[0].button("Start audit" if not on else "Update share", key=state.REVIEW_AUDIT_START):
            try:
                adaptive.start_audit(
                    store, ds, scan.table, share=share / 100.0, created_by=who.name
                )
            except (DataError, UsageError) as e:
                st.error(md_escape(str(e)), icon=":material/error:")
            else:
                st.rerun()
        if c[1].button("Stop audit", key=state.REVIEW_AUDIT_STOP, disabled=not on):
            adaptive.stop_audit(store, ds, set_by=who.name)
            st.rerun()


def _pct(v: float) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.0%}"


def render_track_record(
    row: int, estimates: pd.DataFrame, scan: ScanResult, ds: Dataset, estimated: float | None
) -> None:
    """How often this item's detectors have been right so far, and the estimate for this row."""
    record = learn.detector_track_record(
        row,
        estimates,
        scan_table=scan.table,
        details=scan.detection.details if scan.detection else None,
        n_rows=ds.n,
    )
    lead = (
        f"Estimated chance this label needs a change: {_pct(estimated)}. "
        if estimated is not None and not np.isnan(estimated)
        else ""
    )
    st.caption(md_escape(lead + "Track record so far — " + learn.track_record_text(record)))


# --------------------------------------------------------------------------- the page's queue
@dataclass
class CommonQueue:
    """The queue everyone shares before assignments: ``order`` (ids), its ``source`` name, a
    ``key`` that changes with it, the queue in force ``q`` (None without a scan or for a handed-over
    selection) and its audit slots."""

    order: Sequence[str]
    source: str
    key: tuple
    q: adaptive.QueueInForce | None = None
    audit: frozenset[str] = frozenset()


def common_queue(
    store: ReviewStore,
    ds: Dataset,
    scan: ScanResult | None,
    who: Identity,
    workspace_root: str,
    options_json: str,
    *,
    selection: Sequence[str] | None,
    source: str,
    kind: str,
    flagged_only: bool,
) -> CommonQueue:
    """The common queue: the ranking in force (re-ranked first when due), the active-learning
    queue, a handed-over selection, or without a scan the model's probabilities / data order."""
    from components.review import queue_order

    h = ds.content_hash
    order: Sequence[str]
    if scan is not None and selection is None and kind == ACTIVE:
        order = active_learning_order(workspace_root, h, options_json)
        return CommonQueue(order, "active learning", ("active", len(order)))
    if scan is not None and selection is None:
        if rerank_if_due(store, ds, scan, workspace_root, options_json, who) is not None:
            st.toast("The queue was re-ranked on the decisions so far.", icon=":material/refresh:")
        key = ranking_token(store, h)
        q = queue_in_force(workspace_root, h, store.url, options_json, key)
        order = (
            flagged_order(workspace_root, h, store.url, options_json, key)
            if flagged_only
            else q.full_order
        )
        return CommonQueue(order, source, key, q, frozenset(q.queue.loc[q.queue["audit"], "id"]))
    order = queue_order(
        workspace_root,
        h,
        options_json,
        scan is not None,
        None if selection is None else tuple(selection),
        flagged_only,
    )
    return CommonQueue(order, source, ("static",))


def card_learning(
    store: ReviewStore,
    ds: Dataset,
    scan: ScanResult,
    workspace_root: str,
    options_json: str,
    q: adaptive.QueueInForce | None,
) -> Callable[[Any], None]:
    """What the card shows about learning: a function of the item's evidence, for the fragment
    (the estimates are read per decision, keyed by the newest decision id)."""
    estimated = q.estimated_precision if q is not None else None

    def draw(ev: Any) -> None:
        try:
            est = precision_so_far(
                workspace_root,
                ds.content_hash,
                store.url,
                options_json,
                store.newest_decision_id(),
            )
        except (DataError, UsageError) as e:
            st.caption(md_escape(str(e)))
            return
        value = float(estimated[ev.row]) if estimated is not None else None
        render_track_record(ev.row, est, scan, ds, value)

    return draw


def estimated_precision(
    workspace_root: str, ds: Dataset, options_json: str
) -> tuple[np.ndarray, str] | None:
    """Per dataset row, the estimated chance that its label needs a change under the ranking in
    force (NaN beyond the decisions' support), and one sentence on where it comes from; None when
    the review database cannot be read."""
    from components.store import workspace_store

    try:
        store = workspace_store(workspace_root)
        token = ranking_token(store, ds.content_hash)
        if token[0] == 0:  # no ranking recorded yet: the static estimate follows every decision
            token = (*token, store.newest_decision_id())
        q = queue_in_force(workspace_root, ds.content_hash, store.url, options_json, token)
    except (DataError, UsageError):
        return None
    except Exception:  # an unreachable review database: the table still shows, without the column
        return None
    fit = q.fit
    if fit.n_decisions:
        note = (
            f"{PRECISION_COLUMN}: the estimated chance that the row's label needs a change, from "
            f"{fit.n_decisions:,} review decisions ({fit.ranking} ranking); blank below the "
            "lowest-ranked reviewed row, where it would extrapolate."
        )
    else:
        note = (
            f"{PRECISION_COLUMN}: appears once reviewers have decided some rows "
            f"(at least {learn.MIN_DECISIONS_FOR_ESTIMATE})."
        )
    return q.estimated_precision, note
