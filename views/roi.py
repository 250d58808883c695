"""Data ROI: what the review changed, what it cost, what is left, and a report to share."""

import functools

import streamlit as st

from components import roi as roi_ui
from components import state
from components.data import require_dataset
from components.login import known_identity
from components.review_learn import ranking_token
from components.scan import require_scan, scan_options, scan_options_key
from components.store import workspace_store
from labelaudit import roi
from labelaudit.errors import DataError, UsageError
from labelaudit.reporting import definitions

#: Its entry in the navigation (components/pages.py reads it without running the page).
PAGE = {"title": "ROI", "icon": ":material/trending_up:", "section": "Fix", "order": 80}

st.title("Data ROI")
ds = require_dataset()
res = require_scan(ds)
ws_root = st.session_state[state.WORKSPACE]
store = workspace_store(ws_root)
options = scan_options()
log = store.log(ds.content_hash)
findings = store.findings(ds.content_hash)
next_n = int(st.session_state.setdefault(state.ROI_NEXT_N, roi_ui.DEFAULT_NEXT_N))
report_key = (
    ws_root,
    ds.content_hash,
    store.url,
    roi.decisions_digest(log),
    len(findings),
    scan_options_key(options),
    next_n,
    ranking_token(store, ds.content_hash),
)
try:
    rep = roi_ui.cached_report(*report_key)
except (DataError, UsageError) as e:
    st.error(str(e), icon=":material/error:")
    st.stop()

roi_ui.render_simulation_notice(rep)
if not rep.summary.n_reviewed:
    st.info(
        "No review decisions yet for this dataset version. Decide some items on the Review page; this page "
        "then shows what they changed. For a demo, `make demo` (or `scripts/simulate_review.py`) "
        "replays a seeded review on planted flips."
    )
roi_ui.render_headline(rep)

st.header("Before / after")
if rep.before_after is not None:
    roi_ui.render_before_after(rep)
elif rep.summary.n_reviewed:
    st.caption(rep.before_after_note or "The retraining has not run for these decisions yet.")
    n_fits = roi.N_CHECKPOINTS + 1
    clicked = st.button(
        f"Retrain and compare ({n_fits} fits of the head on {ds.n:,} rows)",
        type="primary",
        key=state.ROI_RETRAIN,
        icon=":material/model_training:",
    )
    if clicked and roi_ui.run_retraining(ds, res, log, ws_root, int(options.get("seed", 0))):
        roi_ui.cached_report.clear()
        roi_ui.cached_report_html.clear()
        st.rerun()

if rep.summary.n_reviewed:
    st.header("Review so far")
    roi_ui.render_review_so_far(rep)

st.header("Learning from the decisions")
roi_ui.render_learning(rep)

st.header("Projection")
st.number_input(
    "Next N items to review", min_value=1, max_value=100_000, step=50, key=state.ROI_NEXT_N
)
roi_ui.render_projection(rep)

st.header("Findings")
roi_ui.render_findings(store, ds.content_hash, findings, known_identity())

st.header("Report")
# Built when the button is clicked (the HTML with plotly.js inlined took 1.4 s of the first ROI view
# in a fresh server, and again after every decision), cached for the same key.
roi_ui.render_download(rep, functools.partial(roi_ui.cached_report_html, *report_key))
with st.expander("How the numbers are computed"):
    for d in definitions():
        st.markdown(f"- {d}")
