"""Review: decide on suspected label errors one at a time (or in bulk), alone or as a team."""

from typing import Any

import streamlit as st

from components import review_learn as learn_ui
from components import state
from components.data import require_dataset
from components.login import render_identities, render_identity, render_identity_bar
from components.review import (
    current_scan,
    freeze_loaded,
    queue_source,
    render_bulk,
    render_export,
    render_grid,
    render_review_fragment,
    render_shortcuts,
)
from components.review_labelstudio import render_labelstudio
from components.review_team import TEAM_MODE, render_mode_picker, render_team_panel
from components.scan import scan_options_key
from components.store import render_store_error, workspace_store
from labelaudit.errors import DataError, UsageError
from labelaudit.review import team
from labelaudit.review.queue import bulk_clusters, cluster_slice, without_decided
from labelaudit.review.session import plan_queue

#: Its entry in the navigation (components/pages.py reads it without running the page).
PAGE = {"title": "Review", "icon": ":material/rule:", "section": "Fix", "order": 70}

st.title("Review")
ds = require_dataset()
who = render_identity()
ss = st.session_state
ws_root = ss[state.WORKSPACE]
h = ds.content_hash
try:
    store = workspace_store(ws_root)
    book = team.assignment_book(store, h)
    adjudication = team.adjudication_queue(store, h) if who.is_lead else []
except Exception as e:  # busy, damaged, a wrong LABELAUDIT_DB_URL, a server down: no traceback
    render_store_error(e)
    st.stop()

render_identity_bar(who)
mode = render_mode_picker(who, len(adjudication))
scan = current_scan(ds)
table = scan.table if scan is not None else None
options_json = scan_options_key()
selection, source = queue_source()

top = st.columns([3, 2, 2])
kind = learn_ui.RANKED
if scan is not None and selection is None and ds.annotations is not None:
    kind = top[0].radio(
        "Queue", [learn_ui.RANKED, learn_ui.ACTIVE], horizontal=True, key=state.REVIEW_QUEUE_KIND
    )
else:
    top[0].text(f"Queue: {source}")
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

try:
    common = learn_ui.common_queue(
        store,
        ds,
        scan,
        who,
        ws_root,
        options_json,
        selection=selection,
        source=source,
        kind=kind,
        flagged_only=flagged_only,
    )
except (DataError, UsageError) as e:
    st.error(str(e), icon=":material/error:")
    st.stop()
order, source, q = common.order, common.source, common.q

if scan is None:
    st.info(
        "No scan yet: the queue follows the model's probabilities when the data came with them, else the "
        "data order. Run the scan on the Label issues page to rank by every detector.",
        icon=":material/info:",
    )
elif q is not None:
    c = st.columns([5, 1])
    with c[0]:
        learn_ui.render_ranking(q)
    if who.is_lead:
        with c[1]:
            learn_ui.render_queue_settings(store, ds, scan, ws_root, options_json, who, q)

if mode == TEAM_MODE:
    undecided = without_decided(order, store.current(h)["item_id"])
    sources = {f"the queue in force ({source}), undecided": undecided}
    clusters = {
        str(c): without_decided(cluster_slice(ds, table, c, None), set(order) - set(undecided))
        for c in bulk_clusters(table)
    }
    render_team_panel(store, ds, who, sources=sources, clusters=clusters)
    render_identities(store, ds)
    st.stop()

plan = plan_queue(
    who,
    mode=mode,
    base_order=order,
    base_source=source,
    book=book,
    adjudication=adjudication,
    audit=common.audit,
)
ends = (plan.order[0], plan.order[-1]) if len(plan.order) else ()
token: tuple[Any, ...] = (
    h,
    who.name,
    who.role,
    mode,
    plan.source,
    include_decided,
    book.version,
    common.key,
)
token += (flagged_only, len(plan.order), *ends)
if plan.source == "assignment":
    st.caption(
        f"Your assignment: {len(plan.order):,} items"
        + (f", {len(plan.my_slots):,} of them reviewed twice, blind" if plan.my_slots else "")
        + "."
    )
learning = (
    learn_ui.card_learning(store, ds, scan, ws_root, options_json, q) if scan is not None else None
)
refit = learn_ui.refit_cutoff(ws_root, ds) if scan is not None else 0
render_review_fragment(
    store, ds, who, plan, token, book, ws_root, options_json, scan, learning, refit
)
render_shortcuts()
render_grid(store, ds, who, plan, scan)
freeze_loaded()  # once per server process: the loaded objects leave the per-click collection

if who.is_lead:
    render_bulk(store, ds, who, queue_ids=list(order), source=source, scan_table=table)
    render_export(store, ds, ws_root, who)
    render_labelstudio(store, ds, who, ws_root, scan, order)
