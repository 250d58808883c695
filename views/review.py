"""Review: decide on suspected label errors one at a time (or in bulk); every decision is kept."""

import streamlit as st

from components import state
from components.data import require_dataset
from components.review import (
    current_scan,
    queue_order,
    queue_source,
    render_action_bar,
    render_bulk,
    render_export,
    render_flash,
    render_item_card,
    render_item_evidence,
    render_progress,
    render_reviewer_identity,
    review_session,
)
from components.scan import scan_options_key
from components.store import workspace_store
from labelaudit.errors import DataError, UsageError
from labelaudit.review.queue import item_evidence, review_progress, without_decided

st.title("Review")
ds = require_dataset()
reviewer = render_reviewer_identity()
ss = st.session_state
ws_root = ss[state.WORKSPACE]
try:
    store = workspace_store(ws_root)
    current = store.current(ds.content_hash)
except Exception as e:  # a wrong LABELAUDIT_DB_URL or an unreachable server: say so, no traceback
    st.error(f"Cannot open the review database: {type(e).__name__}: {e}", icon=":material/error:")
    st.stop()

scan = current_scan(ds)
table = scan.table if scan is not None else None
selection, source = queue_source()
session = review_session(ds)

top = st.columns([3, 2, 2])
top[0].text(f"Reviewer: {reviewer} · queue: {source}")
include_decided = top[1].toggle("Show decided items", key=state.REVIEW_INCLUDE_DECIDED)
flagged_only = top[2].toggle(
    "Flagged only",
    value=False,
    key=state.REVIEW_FLAGGED_ONLY,
    disabled=table is None or selection is not None,
)
if selection is not None and st.button(
    "Back to the full ranking", key=state.REVIEW_CLEAR_SELECTION
):
    ss.pop(state.QUEUE, None)
    ss.pop(state.QUEUE_SOURCE, None)
    st.rerun()
if scan is None:
    st.info(
        "No scan yet: the queue follows the model's probabilities when the data came with them, else the "
        "data order. Run the scan on the Label issues page to rank by every detector.",
        icon=":material/info:",
    )

order = queue_order(
    ws_root,
    ds.content_hash,
    scan_options_key(),
    scan is not None,
    None if selection is None else tuple(selection),
    flagged_only,
)
queue = list(order) if include_decided else without_decided(order, current["item_id"])
render_flash()
render_progress(review_progress(order, current))

item = session.pick(queue)
if item is None:
    st.success("Nothing left to review in this queue.", icon=":material/done_all:")
else:
    pred_probs = scan.detection.pred_probs if scan is not None and scan.detection else None
    try:
        ev = item_evidence(
            ds,
            item,
            scan_table=table,
            pred_probs=pred_probs if pred_probs is not None else ds.pred_probs,
            embeddings=scan.embeddings if scan is not None else None,
            detection_details=scan.detection.details
            if scan is not None and scan.detection
            else None,
        )
    except (DataError, UsageError) as e:
        st.error(str(e), icon=":material/error:")
        st.stop()
    session.show(store, ev, source)
    done = current[current["item_id"] == item]
    render_item_card(ev, current=done.iloc[0] if len(done) else None)
    render_action_bar(store, ds, ev, reviewer)  # above the evidence: no scrolling to decide
    render_item_evidence(ev)

render_bulk(store, ds, reviewer, queue_ids=list(order), source=source, scan_table=table)
render_export(store, ds, ws_root)
