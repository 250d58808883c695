"""The ROI page's caches and widgets: the report numbers, the retraining with progress, findings, download."""

from __future__ import annotations

import html
import math
import time
from collections.abc import Callable

import pandas as pd
import streamlit as st

from components import state
from components.data import load_workspace_dataset
from components.login import login_configured, render_sign_in
from components.progress import StatusProgress
from components.store import get_store
from components.text import md_escape
from labelaudit import roi
from labelaudit.errors import DataError, UsageError
from labelaudit.reporting import (
    RoiReport,
    compute_report,
    figure_accuracy_curve,
    figure_before_after,
    figure_decisions,
    figure_precision_by_detector,
    render_html,
)
from labelaudit.review.identity import Identity, leads_from_env, role_for
from labelaudit.review.store import FINDING_KINDS, ReviewStore
from labelaudit.review.team import IDENTIFIED_AS
from labelaudit.workspace import Workspace

DEFAULT_NEXT_N = 100


@st.cache_data(show_spinner=False, max_entries=8)
def cached_report(
    workspace_root: str,
    dataset_hash: str,
    db_url: str,
    log_digest: str,
    n_findings: int,
    options_json: str,
    next_n: int,
    learn_token: tuple = (),
) -> RoiReport:
    """The report numbers for these decisions (``log_digest``) and findings; uses a stored retraining
    only (never retrains here). The digest and the findings count key the cache, so a new decision or
    finding recomputes it; ``learn_token`` (the ranking in force, the settings, the audit plan:
    :func:`components.review_learn.ranking_token`) too. Includes what was learnt from the decisions
    (:func:`labelaudit.review.adaptive.learning_summary`: the estimated precision, the ranking in
    force and the audit's estimate of the errors left, which the projection then uses)."""
    import json

    from components.scan import load_scan
    from labelaudit.review.adaptive import learning_summary

    ds = load_workspace_dataset(workspace_root, dataset_hash)
    res = load_scan(workspace_root, dataset_hash, options_json)
    store = get_store(db_url)
    details = res.detection.details if res.detection is not None else {}
    seed = int(json.loads(options_json).get("seed", 0))
    learning = None
    if "label_issue_score" in res.table:
        learning = learning_summary(
            store,
            ds,
            res.table,
            details=details,
            workspace=Workspace(workspace_root),
            seed=seed,
        )
    return compute_report(
        ds,
        store.log(dataset_hash),
        store.findings(dataset_hash),
        scan_table=res.table,
        details=details,
        embeddings=res.embeddings,
        workspace=Workspace(workspace_root),
        next_n=next_n,
        seed=seed,
        retrain=False,
        learning=learning,
    )


@st.cache_data(show_spinner=False, max_entries=4)
def cached_report_html(
    workspace_root: str,
    dataset_hash: str,
    db_url: str,
    log_digest: str,
    n_findings: int,
    options_json: str,
    next_n: int,
    learn_token: tuple = (),
) -> bytes:
    """The HTML report (several MB with plotly.js inlined) for the same key as :func:`cached_report`."""
    rep = cached_report(
        workspace_root,
        dataset_hash,
        db_url,
        log_digest,
        n_findings,
        options_json,
        next_n,
        learn_token,
    )
    return render_html(rep).encode("utf-8")


def run_retraining(ds, res, log: pd.DataFrame, workspace_root: str, seed: int) -> bool:
    """Retrain the head at every checkpoint inside st.status with a progress bar; True when done."""
    started = time.monotonic()
    with st.status(
        "Retraining the head on the labels before and after the review…", expanded=True
    ) as status:
        progress = StatusProgress(status, "Retraining")
        try:
            roi.before_after(
                ds,
                res.embeddings,
                log,
                workspace=Workspace(workspace_root),
                seed=seed,
                progress=progress,
            )
        except (DataError, UsageError) as e:
            status.update(label="Retraining failed", state="error", expanded=True)
            st.error(str(e), icon=":material/error:")
            return False
        status.update(
            label=f"Retrained in {time.monotonic() - started:.0f} s",
            state="complete",
            expanded=False,
        )
    return True


# --------------------------------------------------------------------------- drawing
def _fmt_pct(v: float | None) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.1%}"


def _points_delta(change: float) -> dict:
    """st.metric delta arguments for a change (a fraction) in points: no arrow or colour when it
    rounds to zero (a green arrow on "+0.00" claims a gain that is not there)."""
    text = f"{change * 100:+.2f} points"
    if math.isnan(change) or text in ("+0.00 points", "-0.00 points"):
        return {"delta": "±0.00 points", "delta_color": "off", "delta_arrow": "off"}
    return {"delta": text}


def render_simulation_notice(rep: RoiReport) -> None:
    if rep.simulated:
        st.warning(
            f"**Simulated demo.** These decisions were replayed by `{roi.SIMULATED_REVIEWER}` from an answer "
            "key of planted label flips (scripts/simulate_review.py), not made by people. Every number below "
            "is computed from them exactly as it would be from a real review.",
            icon=":material/science:",
        )


def render_headline(rep: RoiReport) -> None:
    s = rep.summary
    c = st.columns(4)
    c[0].metric("Items reviewed", f"{s.n_reviewed:,}")
    c[1].metric("Labels changed", f"{s.n_relabelled:,}", help="accept + change")
    c[2].metric(
        "Precision of suggestions",
        f"too few decisions ({s.n_flagged_reviewed} of {roi.MIN_DECISIONS_FOR_ESTIMATES})"
        if s.too_few_decisions
        else _fmt_pct(s.overall_precision),
        help=f"Share of the {s.n_flagged_reviewed:,} reviewed flagged rows whose label was changed. "
        "Remove and ambiguous count as not changed.",
    )
    c[3].metric(
        "Median time per item",
        "n/a" if math.isnan(s.time.median_seconds) else f"{s.time.median_seconds:.0f} s",
        help=f"Gaps between consecutive decisions of a reviewer; gaps over {s.time.break_seconds / 60:.0f} min "
        "are breaks and ignored.",
    )


def render_before_after(rep: RoiReport) -> None:
    ba = rep.before_after
    if ba is None:
        return
    m = ba.metrics
    c = st.columns(4)
    c[0].metric(
        "Accuracy after",
        _fmt_pct(m["accuracy_after"].value),
        **_points_delta(m["accuracy_change"].value),
    )
    c[1].metric(
        "Macro-F1 after",
        _fmt_pct(m["macro_f1_after"].value),
        **_points_delta(m["macro_f1_change"].value),
    )
    c[2].metric(
        "Accuracy change per 100 reviewed", f"{ba.change_per_100('accuracy') * 100:+.2f} points"
    )
    c[3].metric(
        "95% CI of the accuracy change (points)",
        f"{m['accuracy_change'].low * 100:+.2f} to {m['accuracy_change'].high * 100:+.2f}",
    )
    left, right = st.columns(2)
    left.plotly_chart(figure_before_after(ba), width="stretch", key=state.ROI_BEFORE_AFTER)
    right.plotly_chart(figure_accuracy_curve(ba), width="stretch", key=state.ROI_CURVE)
    st.caption(
        f"Trained on {ba.n_train_before:,} rows before and {ba.n_train_after:,} after "
        f"({ba.n_relabelled_train:,} relabelled, {ba.n_removed_train:,} removed); evaluated on {ba.n_eval:,} rows "
        f"of {ba.eval_source}, whose reviewed labels are the truth where they exist."
    )


def render_review_so_far(rep: RoiReport) -> None:
    s = rep.summary
    left, right = st.columns(2)
    left.plotly_chart(figure_decisions(s), width="stretch", key=state.ROI_DECISIONS)
    if len(s.by_detector):
        right.plotly_chart(
            figure_precision_by_detector(s), width="stretch", key=state.ROI_PRECISION_DETECTOR
        )
    else:
        right.info("No per-detector flags in the scan.")
    unflagged = s.precision_unflagged.iloc[0]
    if unflagged["reviewed"]:
        st.caption(
            f"Rows reviewed that no detector flagged: {int(unflagged['reviewed']):,}, of which "
            f"{_fmt_pct(unflagged['precision'])} had their label changed (the base rate without suggestions)."
        )
    # reviewer names are typed by users: plain text, never markdown
    st.text(
        f"{s.n_log_rows:,} rows in the decision log ({s.n_undos:,} undos); reviewers: {', '.join(s.reviewers)}."
    )
    with st.expander("Precision by given label"):
        st.dataframe(
            s.by_class,
            hide_index=True,
            width="stretch",
            column_config={
                "group": "given label",
                "precision": st.column_config.NumberColumn(format="percent"),
                "precision_low": st.column_config.NumberColumn(format="percent"),
                "precision_high": st.column_config.NumberColumn(format="percent"),
                "problem_rate": st.column_config.NumberColumn(format="percent"),
            },
        )


def render_projection(rep: RoiReport) -> None:
    p = rep.projection
    c = st.columns(4)
    c[0].metric(
        "Estimated label errors left",
        "n/a" if p.remaining_errors is None else f"{p.remaining_errors:,.0f}",
    )
    c[1].metric(
        f"Expected fixes in the next {p.next_n:,}",
        "n/a" if math.isnan(p.expected_fixes) else f"{p.expected_fixes:,.1f}",
    )
    c[2].metric(
        "Reviewer hours", "n/a" if math.isnan(p.expected_hours) else f"{p.expected_hours:,.1f}"
    )
    c[3].metric(
        "Expected accuracy gain",
        "n/a"
        if p.expected_accuracy_gain is None
        else f"{p.expected_accuracy_gain * 100:+.2f} points",
    )
    st.markdown("**Assumptions**")
    for a in p.assumptions:  # our own sentences and numbers, no dataset text
        st.markdown(f"- {a}")


def render_findings(
    store: ReviewStore, dataset_hash: str, findings: pd.DataFrame, who: Identity | None
) -> None:
    """The pinned findings as a table (plain text) and a small form to pin one.

    ``who``: the person at the page (:func:`components.login.known_identity`). Signed in, a
    finding records that identity as a decision does, and no name is asked for. With login
    configured and nobody signed in, the page offers *Sign in* instead of the form. Without login,
    the form asks for a name (prefilled with the one this browser remembers), recorded as typed.
    """
    if len(findings):
        shown = findings.assign(identified=findings["author_auth"].map(IDENTIFIED_AS).fillna(""))
        st.dataframe(
            shown[["kind", "target", "note", "author", "identified", "created_at"]],
            hide_index=True,
            width="stretch",
        )
    else:
        st.caption("No findings pinned yet.")
    signed_in = who is not None and who.authenticated
    if not signed_in and login_configured():
        render_sign_in("Sign in to pin a finding: it records who pinned it.")
        return
    with st.form("roi_finding_form", clear_on_submit=True):
        c1, c2 = st.columns([1, 3])
        kind = c1.selectbox("Kind", FINDING_KINDS, key=state.ROI_FINDING_KIND)
        target = c2.text_input(
            "Cluster, item id or class pair",
            key=state.ROI_FINDING_TARGET,
            placeholder="card_arrival vs card_delivery_estimate",
        )
        note = st.text_area(
            "Note", key=state.ROI_FINDING_NOTE, placeholder="the guideline is ambiguous"
        )
        if signed_in and who is not None:
            st.text(f"Pinned as {who.describe()}")
            author = who.name
        else:
            author = st.text_input(
                "Your name",
                value=who.name if who is not None else "",
                key=state.ROI_FINDING_AUTHOR,
            )
        submitted = st.form_submit_button("Pin finding", icon=":material/push_pin:")
    if submitted:
        if not note.strip() or not author.strip():
            st.warning("A finding needs a note and your name.")
            return
        try:
            if signed_in and who is not None:
                by = who
            else:
                by = Identity(author, auth="typed", role=role_for([author], leads_from_env()))
            store.add_finding(
                dataset_version=dataset_hash,
                kind=kind,
                target=target.strip() or "-",
                note=note.strip(),
                author=by.name,
                identity=by,
            )
        except UsageError as e:
            st.error(md_escape(str(e)))
            return
        if not signed_in:
            st.session_state[state.REVIEWER] = st.session_state.get(state.REVIEWER) or by.name
        st.rerun()


def render_download(rep: RoiReport, html_bytes: bytes | Callable[[], bytes]) -> None:
    """The report's download button; ``html_bytes`` may be a callable, called only when the
    button is clicked (in a thread of its own, as Streamlit runs a deferred download)."""
    st.download_button(
        "Download the report (HTML, opens offline)",
        data=html_bytes,
        file_name=f"roi_report_{rep.dataset_hash[:8]}.html",
        mime="text/html",
        icon=":material/download:",
        key=state.ROI_DOWNLOAD,
    )
    st.caption(
        "Same numbers and charts as this page, plus findings and definitions; or run "
        f"`labelaudit report --dataset {html.escape(rep.dataset_hash)} --out roi.html`."
    )


def _num(v: float | None, fmt: str = "{:,.0f}") -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else fmt.format(v)


def render_learning(rep: RoiReport) -> None:
    """What the decisions taught: the ranking in force, every detector's estimated precision (with
    its interval, per class and cluster where there are enough decisions), and the audit's count of
    the errors left."""
    learning = rep.learning
    if learning is None:
        st.caption("Learning from the decisions needs a scan with a combined label-issue score.")
        return
    st.text(learning.ranking_text)  # names typed by people (who re-ranked): plain text
    c = st.columns(3)
    c[0].metric("Ranking in force", learning.ranking)
    c[1].metric(
        "Cross-validated AUROC, learnt",
        _num(learning.auroc_learnt, "{:.3f}"),
        help="On the decisions, out of fold: how well the learnt combiner separates changed labels from kept ones.",
    )
    c[2].metric("AUROC of the static ranking", _num(learning.auroc_static, "{:.3f}"))
    st.markdown("**Estimated precision of each detector's flags** (95% Wilson interval)")
    est = learning.precision
    overall = est[est["by"] == "all"]
    pct = st.column_config.NumberColumn(format="percent")
    cfg = {"precision": pct, "precision_low": pct, "precision_high": pct}
    if overall.empty:
        st.caption("No reviewed flags yet.")
    else:
        st.dataframe(
            overall.drop(columns=["by", "group"]),
            hide_index=True,
            width="stretch",
            column_config=cfg,
            key=state.ROI_LEARN_PRECISION,
        )
    groups = est[est["by"] != "all"]
    if len(groups):
        with st.expander(
            f"Per class and per cluster ({len(groups):,} groups with enough decisions)"
        ):
            st.dataframe(groups, hide_index=True, width="stretch", column_config=cfg)
    st.markdown("**Label errors left (audit)**")
    rem = learning.remaining
    c = st.columns(3)
    c[0].metric("Errors left (estimate)", _num(rem.total) if rem.enough else "n/a")
    c[1].metric(
        f"{rem.level:.0%} interval",
        f"{_num(rem.low)} to {_num(rem.high)}" if rem.enough else "n/a",
    )
    c[2].metric("Audit decisions", f"{rem.n_audited:,}")
    st.caption(
        rem.describe()
        + (
            ""
            if learning.audit_share
            else " Audit mode is off: a lead switches it on in the Review page's queue settings."
        )
    )
    if rem.enough and len(rem.strata):
        with st.expander("Error rate per score stratum"):
            st.dataframe(rem.strata, hide_index=True, width="stretch", key=state.ROI_LEARN_STRATA)
