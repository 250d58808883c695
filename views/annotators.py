"""Annotators page: rater agreement, annotator competence and consensus labels."""

import streamlit as st

from components import annotators as ui
from components import state
from components.data import require_dataset
from labelaudit.agreement import METHODS
from labelaudit.errors import DataError, UsageError
from labelaudit.tables import tie_breaks_for, truth_methods_for

#: Its entry in the navigation (components/pages.py reads it without running the page).
PAGE = {"title": "Annotators", "icon": ":material/groups:", "section": "Find", "order": 40}

st.title("Annotators")
ds = require_dataset()
if ds.annotations is None or ds.annotations.empty:
    ui.render_no_annotations_note()
    st.stop()

methods = truth_methods_for(ds.pred_probs is not None)
if st.session_state.get(state.ANNOTATORS_METHOD) not in methods:
    st.session_state[state.ANNOTATORS_METHOD] = methods[0]
method = st.selectbox(
    "Consensus method",
    methods,
    format_func=lambda m: METHODS[m],
    key=state.ANNOTATORS_METHOD,
    help="MACE and Dawid–Skene weigh annotators by their estimated competence; CROWDLAB also "
    "uses the model's predicted probabilities.",
)
tie_break = "random"
if method == "mv":
    rules = tie_breaks_for(ds.pred_probs is not None)
    if st.session_state.get(state.ANNOTATORS_TIE_BREAK) not in rules:
        st.session_state[state.ANNOTATORS_TIE_BREAK] = "random"
    tie_break = (
        st.radio(
            "Break ties",
            list(rules),
            format_func=lambda r: rules[r],
            horizontal=True,
            key=state.ANNOTATORS_TIE_BREAK,
        )
        or "random"
    )
try:
    with st.spinner("Computing agreement and consensus…"):
        report = ui.load_agreement_report(
            st.session_state[state.WORKSPACE], ds.content_hash, method, 0, tie_break
        )
except (DataError, UsageError) as e:
    st.error(str(e), icon=":material/error:")
    st.stop()

ui.render_simulated_notice(report)
ui.render_statistics(report)
tabs = st.tabs(
    [
        "Pairwise agreement",
        "Competence",
        "Confusion per annotator",
        "Disputed items",
        "Consensus vs given label",
        "Agreement per class",
    ]
)
with tabs[0]:
    ui.render_kappa_heatmap(report)
with tabs[1]:
    ui.render_competence_chart(report)
with tabs[2]:
    ui.render_annotator_confusion(report)
with tabs[3]:
    ui.render_disputed_items(report, ds)
with tabs[4]:
    ui.render_consensus_vs_given(report, ds)
with tabs[5]:
    ui.render_class_agreement(report)
