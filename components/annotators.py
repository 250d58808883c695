"""The Annotators page's cached computation and widgets.

One cached function reads the stored :class:`~labelaudit.agreement.AgreementReport` for
(workspace, dataset hash, method, seed) or computes and stores it
(:mod:`labelaudit.agreement.stored`); the ``render_*`` functions draw
its parts. Dataset text and annotator ids are untrusted: tables go through ``st.dataframe`` and
Plotly hover text is HTML-escaped.
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from components import state
from components.data import load_workspace_dataset
from components.review import send_to_review
from components.text import md_escape
from labelaudit.agreement import METHODS, AgreementReport
from labelaudit.agreement.spammers import RULE as SPAMMER_RULE
from labelaudit.agreement.stored import settings_params, stored_report
from labelaudit.dataset import Dataset
from labelaudit.simulate_raters import is_simulated
from labelaudit.tables import disputed_order, items_with_text, kappa_matrix
from labelaudit.workspace import Workspace

#: Annotators shown in the kappa heatmap at most (the ones with the most labels).
MAX_HEATMAP_ANNOTATORS = 40
#: Annotators drawn in the competence bar chart at most.
MAX_CHART_ANNOTATORS = 60
#: Items sent to review from the disputed list by default.
DEFAULT_QUEUE_SIZE = 100
DISPUTED_SOURCE = "most disputed items (Annotators)"
DIFFERING_SOURCE = "consensus differs from the given label (Annotators)"


def _esc(value: object) -> str:
    return html.escape(str(value), quote=False)


@st.cache_resource(show_spinner=False, max_entries=8)
def load_agreement_report(
    workspace_root: str, dataset_hash: str, method: str, seed: int, tie_break: str = "random"
) -> AgreementReport:
    """Agreement, consensus and annotator profiles of the stored dataset; shared, treat as read-only.

    Read from the workspace when stored (the scan stores the page's default settings,
    :data:`labelaudit.agreement.stored.DEFAULT_SETTINGS`, so a first view computes nothing); other
    settings are computed once and stored (:func:`labelaudit.agreement.stored.stored_report`),
    with the per-item table as ``agreement_items`` for other pages and notebooks.
    """
    ds = load_workspace_dataset(workspace_root, dataset_hash)
    return stored_report(
        Workspace(workspace_root), ds, {"method": method, "seed": seed, "tie_break": tie_break}
    )


def artifact_params(method: str, seed: int, tie_break: str = "random") -> dict:
    """Params of the stored ``agreement_items`` artifact (tie_break only matters for majority vote)."""
    return settings_params(method, seed, tie_break)


def render_no_annotations_note() -> None:
    st.info(
        "This dataset has no annotations from several people, so there is no rater agreement to show. "
        "Load a companion file in long format, one row per label given: `item_id` (an id of the dataset), "
        "`annotator_id`, `label` (one of the dataset's classes) and optionally `timestamp`. Put it beside "
        "the data as `annotations*.csv`, upload it on the Data page, or pass `--annotations FILE`.",
        icon=":material/groups:",
    )
    st.code(
        "item_id,annotator_id,label\n17,alice,card_arrival\n17,bob,card_delivery_estimate\n",
        language="csv",
    )


def render_simulated_notice(report: AgreementReport) -> None:
    if is_simulated(report.ratings.annotator_ids):
        st.warning(
            "These annotations are **simulated** (annotator ids start with `sim_`): seeded raters of varied "
            "competence who confuse similar intents, plus two spammers — see docs/agreement.md. They show "
            "how the page works; they say nothing about the real labelling of this dataset.",
            icon=":material/science:",
        )


def render_statistics(report: AgreementReport) -> None:
    r = report.ratings
    cols = st.columns(4)
    cols[0].metric("Ratings", f"{r.n_ratings:,}")
    cols[1].metric("Items rated", f"{r.n_items:,}")
    cols[2].metric("Annotators", f"{r.n_annotators:,}")
    cols[3].metric("Likely spammers", f"{int(report.annotators['likely_spammer'].sum())}")
    rows = [
        {"statistic": s.name, "value": s.value, "items": s.n, "undefined because": s.reason}
        for s in report.statistics
    ]
    st.dataframe(
        pd.DataFrame(rows),
        hide_index=True,
        width="stretch",
        column_config={"value": st.column_config.NumberColumn(format="%.4f")},
    )
    details = report.truth.details
    bits = [
        f"{k.replace('_', ' ')}: {details[k]:.2f}"
        if isinstance(details[k], float)
        else f"{k.replace('_', ' ')}: {details[k]}"
        for k in ("ties", "tie_break", "iterations", "converged", "log_likelihood")
        if k in details
    ]
    st.caption(
        f"Consensus by {METHODS[report.method]}" + (f" — {', '.join(bits)}" if bits else "") + ". "
        "Kappa and alpha: 1 = perfect agreement, 0 = what chance gives, below 0 = worse than chance."
    )
    for note in report.notes:
        st.caption(md_escape(note))


def render_kappa_heatmap(report: AgreementReport) -> None:
    ann = report.annotators.sort_values("n_labels", ascending=False)
    names = ann["annotator_id"].astype(str).tolist()[:MAX_HEATMAP_ANNOTATORS]
    if len(ann) > MAX_HEATMAP_ANNOTATORS:
        st.caption(f"The {MAX_HEATMAP_ANNOTATORS} annotators with the most labels of {len(ann):,}.")
    kappa, overlap, agree = kappa_matrix(report.pairs, names)
    labels = [_esc(a) for a in names]
    custom = np.dstack([overlap, np.nan_to_num(agree, nan=-1)])
    fig = go.Figure(
        go.Heatmap(
            z=kappa,
            x=labels,
            y=labels,
            customdata=custom,
            zmin=-1,
            zmax=1,
            colorscale="RdBu",
            colorbar={"title": "Cohen's κ"},
            hovertemplate="%{y} × %{x}<br>κ = %{z:.3f}<br>items in common: %{customdata[0]}"
            "<br>raw agreement: %{customdata[1]:.3f}<extra></extra>",
            hoverongaps=False,
        )
    )
    fig.update_layout(
        height=max(350, 22 * len(names) + 150),
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        yaxis={"autorange": "reversed"},
    )
    st.plotly_chart(fig, width="stretch", key=state.ANNOTATORS_KAPPA)
    undefined = report.pairs["kappa"].isna().sum()
    st.caption(
        f"Blank cells: pairs with fewer than the minimum items in common or undefined κ "
        f"({int(undefined)} of {len(report.pairs):,} pairs that share any item)."
    )


#: Likely spammers listed by name on the page (all of them stay in the annotators table).
MAX_LISTED_SPAMMERS = 10


def render_spammer_list(report: AgreementReport) -> None:
    """The likely spammers, strongest evidence first, capped, each with its evidence (plain text)."""
    flagged = report.annotators[report.annotators["likely_spammer"]].sort_values("spammer_rank")
    st.markdown(f"**Likely spammers: {len(flagged)}** — rule: {md_escape(SPAMMER_RULE)}.")
    if flagged.empty:
        return
    st.dataframe(
        flagged.head(MAX_LISTED_SPAMMERS)[
            ["spammer_rank", "annotator_id", "n_labels", "spammer_evidence"]
        ].rename(columns={"spammer_rank": "rank", "spammer_evidence": "evidence"}),
        hide_index=True,
        width="stretch",
    )
    if len(flagged) > MAX_LISTED_SPAMMERS:
        st.caption(f"… and {len(flagged) - MAX_LISTED_SPAMMERS} more in the table below.")


def render_competence_chart(report: AgreementReport) -> None:
    ann = report.annotators
    if len(ann) > MAX_CHART_ANNOTATORS:
        st.caption(
            f"The {MAX_CHART_ANNOTATORS} annotators with the most labels of {len(ann):,}; all are in the table."
        )
        ann = ann.nlargest(MAX_CHART_ANNOTATORS, "n_labels")
    ann = ann.sort_values("competence")
    colors = np.where(ann["likely_spammer"], "#d62728", "#1f77b4")
    fig = go.Figure(
        go.Bar(
            x=ann["competence"],
            y=[_esc(a) for a in ann["annotator_id"]],
            orientation="h",
            marker_color=colors,
            text=[f"{n:,} labels" for n in ann["n_labels"]],
            textposition="auto",
            customdata=np.c_[ann["n_labels"], ann["agreement_with_consensus"]],
            hovertemplate="%{y}<br>competence %{x:.3f}<br>%{customdata[0]} labels<br>"
            "agrees with consensus %{customdata[1]:.1%}<extra></extra>",
        )
    )
    fig.update_layout(
        height=max(300, 24 * len(ann) + 80),
        xaxis={"range": [0, 1], "title": "competence"},
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
    )
    st.plotly_chart(fig, width="stretch", key=state.ANNOTATORS_COMPETENCE)
    label = {
        "mace": "MACE's θ: the probability the annotator labels from knowledge rather than at random",
        "ds": "Dawid–Skene: the prior-weighted diagonal of the annotator's confusion matrix",
        "crowdlab": "CROWDLAB annotator quality (agreement with the model-aided consensus)",
        "mv": "agreement with the majority-vote consensus",
    }[report.method]
    st.caption(f"Competence = {label}. Red: likely spammer.")
    render_spammer_list(report)
    st.dataframe(
        report.annotators,
        hide_index=True,
        width="stretch",
        column_config={
            c: st.column_config.NumberColumn(format="%.3f")
            for c in ("competence", "agreement", "agreement_with_consensus")
        },
    )


def render_annotator_confusion(report: AgreementReport) -> None:
    names = report.annotators["annotator_id"].astype(str).tolist()
    current = st.session_state.get(state.ANNOTATORS_SELECTED)
    if current not in names:
        st.session_state[state.ANNOTATORS_SELECTED] = names[0]
    who = st.selectbox("Annotator", names, key=state.ANNOTATORS_SELECTED)
    j = names.index(who)
    conf = report.confusion[j]
    used = np.flatnonzero((conf.sum(axis=0) + conf.sum(axis=1)) > 0)
    classes = np.asarray(report.ratings.classes, dtype=object)
    sub = conf[np.ix_(used, used)]
    right = int(np.trace(conf))
    total = int(conf.sum())
    st.caption(
        f"{who}: {total:,} labels, {right:,} equal to the consensus ({right / max(total, 1):.1%}). "
        f"Rows: consensus; columns: what {who} said. Only the {len(used)} classes involved are shown."
    )
    ticks = [_esc(c) for c in classes[used]]
    fig = go.Figure(
        go.Heatmap(
            z=sub,
            x=ticks,
            y=ticks,
            colorscale="Blues",
            hovertemplate="consensus %{y}<br>said %{x}<br>%{z} labels<extra></extra>",
        )
    )
    fig.update_layout(
        height=max(350, 16 * len(used) + 200),
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        yaxis={"autorange": "reversed"},
        xaxis={"title": "annotator's label"},
    )
    st.plotly_chart(fig, width="stretch", key=state.ANNOTATORS_CONFUSION)
    off = conf.copy()
    np.fill_diagonal(off, 0)
    top = np.dstack(np.unravel_index(np.argsort(off, axis=None)[::-1], off.shape))[0]
    rows = [
        {"consensus": classes[t], "said": classes[s], "labels": int(off[t, s])}
        for t, s in top[:10]
        if off[t, s] > 0
    ]
    if rows:
        st.markdown("Most frequent confusions")
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")


def render_disputed_items(report: AgreementReport, ds: Dataset) -> None:
    items = disputed_order(items_with_text(report.items, ds.frame, ds.id_to_row))
    disputed = items[items["disagreement"] > 0]
    st.caption(
        f"{len(disputed):,} of {len(items):,} rated items have at least one disagreeing pair of ratings."
    )
    cols = [
        "item_id",
        "text",
        "given_label",
        "consensus_label",
        "consensus_confidence",
        "agreement",
        "n_ratings",
        "n_labels_used",
    ]
    st.dataframe(
        disputed[cols].head(500),
        hide_index=True,
        width="stretch",
        column_config={
            "consensus_confidence": st.column_config.ProgressColumn(min_value=0, max_value=1),
            "agreement": st.column_config.NumberColumn(format="%.2f"),
        },
    )
    if len(disputed):
        n = st.number_input(
            "Items to send",
            min_value=1,
            max_value=len(disputed),
            value=min(DEFAULT_QUEUE_SIZE, len(disputed)),
            step=10,
            key=state.ANNOTATORS_QUEUE_SIZE,
        )
        if st.button(
            f"Send the {int(n)} most disputed items to review",
            icon=":material/rule:",
            key=state.ANNOTATORS_SEND_DISPUTED,
        ):
            send_to_review(disputed["item_id"].head(int(n)).tolist(), DISPUTED_SOURCE)


def render_consensus_vs_given(report: AgreementReport, ds: Dataset) -> None:
    items = items_with_text(report.items, ds.frame, ds.id_to_row)
    differ = items[items["consensus_label"] != items["given_label"]].sort_values(
        "consensus_confidence", ascending=False
    )
    n = len(items)
    st.metric(
        "Consensus differs from the given label",
        f"{len(differ):,} of {n:,} ({len(differ) / max(n, 1):.1%})",
    )
    st.dataframe(
        differ[
            [
                "item_id",
                "text",
                "given_label",
                "consensus_label",
                "consensus_confidence",
                "n_ratings",
            ]
        ],
        hide_index=True,
        width="stretch",
        column_config={
            "consensus_confidence": st.column_config.ProgressColumn(min_value=0, max_value=1)
        },
    )
    if len(differ) and st.button(
        f"Send these {len(differ):,} items to review",
        icon=":material/rule:",
        key=state.ANNOTATORS_SEND_DIFFERING,
    ):
        send_to_review(differ["item_id"].tolist(), DIFFERING_SOURCE)


def render_class_agreement(report: AgreementReport) -> None:
    per = report.per_class[report.per_class["n_ratings"] > 0].sort_values("agreement")
    fig = go.Figure(
        go.Bar(
            x=per["agreement"],
            y=[_esc(c) for c in per["label"]],
            orientation="h",
            customdata=per["n_ratings"],
            hovertemplate="%{y}<br>specific agreement %{x:.3f}<br>%{customdata} ratings<extra></extra>",
        )
    )
    fig.update_layout(
        height=max(300, 16 * len(per) + 80),
        xaxis={"range": [0, 1], "title": "specific agreement"},
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
    )
    st.plotly_chart(fig, width="stretch", key=state.ANNOTATORS_CLASS_AGREEMENT)
    st.caption(
        "Specific agreement of a class: of the rating pairs that involve that class, the share in which "
        "both raters chose it. Low values mark classes whose guidelines are unclear."
    )
