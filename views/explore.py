"""Explore: the 2-D map of every text, coloured by label, cluster, suggestion or score; clusters; selection."""

import numpy as np
import pandas as pd
import streamlit as st

from components import state
from components.data import require_dataset
from components.label_issues import MAX_TABLE_ROWS
from components.review import send_to_review
from components.scan import (
    box_ids,
    build_map_figure,
    build_map_spec,
    color_options,
    map_rows,
    render_box_map,
    render_scan_options,
    require_results,
    selection_ids,
)
from components.text import md_escape
from labelaudit.dataset import TEXT
from labelaudit.plots import map_legend
from labelaudit.tables import ids_present, text_matches, texts_of_ids, top_positions

#: Its entry in the navigation (components/pages.py reads it without running the page).
PAGE = {"title": "Explore", "icon": ":material/scatter_plot:", "section": "Find", "order": 20}

#: Most ids put in a shareable URL; larger selections are not shared by URL (the page says so).
MAX_URL_IDS = 200

st.title("Explore")
# While the full scan runs, ds and res may be its first pass: a stratified sample (a dataset of its own)
ds, res, options_json = require_results(require_dataset())
ss = st.session_state
ws_root = ss[state.WORKSPACE]
table = res.table
row_ids = table["id"].astype(str)

# A shared URL (?cluster=3 or ?ids=a&ids=b) sets the view once per session; later the view writes the URL.
if not ss.get(state.EXPLORE_URL_READ):
    ss[state.EXPLORE_URL_READ] = True
    qp = st.query_params
    if qp.get("cluster", "").lstrip("-").isdigit() and int(qp["cluster"]) in set(
        res.clusters["cluster"]
    ):
        ss[state.EXPLORE_CLUSTER] = int(qp["cluster"])
    if qp.get_all("ids"):
        ss[state.SELECTION] = ids_present(row_ids, qp.get_all("ids"))

# Clicks in the cluster table (drawn further down) and on the map arrive before they are drawn.
picked = (ss.get(state.EXPLORE_CLUSTER_TABLE) or {}).get("selection", {}).get("rows", [])
if picked != ss.get(state.EXPLORE_LAST_CLUSTER_PICK, []):
    ss[state.EXPLORE_LAST_CLUSTER_PICK] = picked
    ss[state.EXPLORE_CLUSTER] = int(res.clusters["cluster"].iloc[picked[0]]) if picked else None
cluster = ss.get(state.EXPLORE_CLUSTER)

with st.expander("Scan settings"):
    render_scan_options(key_prefix=state.SCAN_OPTIONS_EXPLORE)
    st.caption("Stored scan · " + ", ".join(f"{k} {v:.1f} s" for k, v in res.timings.items()))

c1, c2, c3 = st.columns([1, 2, 1.3])
color_by = c1.selectbox("Colour by", color_options(table), key=state.EXPLORE_COLOR)
classes = c2.multiselect("Classes (empty = all)", ds.classes, key=state.EXPLORE_CLASSES)
if cluster is not None:
    c3.write(f"Cluster filter: **{'noise' if cluster < 0 else cluster}**")
    if c3.button("Clear cluster filter", key=state.EXPLORE_CLEAR_CLUSTER):
        ss[state.EXPLORE_CLUSTER] = None
        st.rerun()

search = st.text_input(
    "Search the texts (matches are ringed on the map and fill the table)",
    key=state.EXPLORE_SEARCH,
    placeholder="e.g. refund",
).strip()
lasso = st.toggle(
    "Lasso selection (draws the map with Plotly, slower to open)",
    key=state.EXPLORE_LASSO,
    help="The map opens as a Vega-Lite chart: drag a box to select, the wheel zooms, Shift-drag "
    "pans. Plotly adds a free-hand lasso (and loads a 4.7 MB script in this tab).",
)
rows, n_in_view = map_rows(ws_root, ds.content_hash, options_json, cluster, tuple(classes))
texts = ds.frame[TEXT]
matches = text_matches(texts, search) if search else None
legend = map_legend(table, color_by)
colours = None if legend is None else dict(zip(legend["category"], legend["colour"], strict=True))
highlight = None if matches is None else matches[rows]
map_data, map_spec = build_map_spec(
    table.iloc[rows], texts.iloc[rows], color_by=color_by, colours=colours, highlight=highlight
)
# The chart is drawn below; its selection of the last run is already in the session. A selection
# is applied once, when it changes (switching the chart's kind is no change).
mode = "lasso" if lasso else "box"
chart_ids = (
    selection_ids(ss.get(state.EXPLORE_MAP))
    if lasso
    else box_ids(ss.get(state.EXPLORE_MAP_BOX), map_data)
)
last_mode, last_ids = ss.get(state.EXPLORE_LAST_CHART_IDS) or (mode, [])
if mode == last_mode and chart_ids != last_ids:
    ss[state.SELECTION] = chart_ids
ss[state.EXPLORE_LAST_CHART_IDS] = (mode, chart_ids)
selection = ids_present(row_ids, ss.get(state.SELECTION, []))
if n_in_view == 0:
    st.warning("No rows match these filters.")
else:
    if lasso:
        fig = build_map_figure(
            table.iloc[rows],
            texts.iloc[rows],
            color_by=color_by,
            colours=colours,
            highlight=highlight,
        )
        st.plotly_chart(
            fig,
            on_select="rerun",
            selection_mode=("box", "lasso"),
            key=state.EXPLORE_MAP,
            width="stretch",
        )
    else:
        render_box_map(map_data, map_spec, key=state.EXPLORE_MAP_BOX)
    if len(rows) < n_in_view:
        st.caption(
            f"The map draws a sample of {len(rows):,} of the {n_in_view:,} rows in view, stratified by "
            "given label so small classes stay visible. Counts and scores below use every row."
        )
    else:
        st.caption(
            f"{n_in_view:,} rows. Drag "
            + ("a box or lasso" if lasso else "a box (wheel: zoom, Shift-drag: pan)")
            + " on the map to select rows."
        )
    if matches is not None:
        st.caption(
            f"{int(matches.sum()):,} rows contain “{md_escape(search)}” "
            f"({int(matches[rows].sum()):,} of them on the map as drawn)."
        )

# ------------------------------------------------------------------ selected rows
score_cols = [
    c for c in ("label_issue_score", "suggested_label", "suggested_label_prob") if c in table
]
shown = ["id", "given_label", "cluster"] + score_cols


def most_suspicious(row_index: np.ndarray) -> np.ndarray:
    """At most MAX_TABLE_ROWS of ``row_index`` for a table, the most suspicious first kept (the
    order rows_frame sorts by), with a caption when rows are left out: a table element holds what
    the browser is sent, so it never gets every row of a large dataset."""
    if len(row_index) <= MAX_TABLE_ROWS:
        return row_index
    if "label_issue_score" in table:
        score = table["label_issue_score"].to_numpy()[row_index]
        keep = top_positions(score, MAX_TABLE_ROWS)
    else:
        keep = np.arange(MAX_TABLE_ROWS)
    st.caption(
        f"Showing the {MAX_TABLE_ROWS:,} most suspicious of {len(row_index):,} rows; "
        "pick a cluster or classes, or search, to narrow."
    )
    return row_index[keep]


def rows_frame(row_index: np.ndarray) -> pd.DataFrame:
    df = table.iloc[row_index][shown].copy()
    df.insert(1, "text", texts.iloc[row_index].to_numpy())
    if "label_issue_score" in df:
        df = df.sort_values("label_issue_score", ascending=False, kind="stable")
    return df.reset_index(drop=True)


if selection:
    st.subheader(f"Selected rows ({len(selection):,})")
    sel_rows = np.array([ds.id_to_row[i] for i in selection], dtype=np.int64)
    selected = rows_frame(sel_rows)
    st.dataframe(
        rows_frame(most_suspicious(sel_rows)),
        hide_index=True,
        width="stretch",
        key=state.EXPLORE_SELECTED_ROWS,
    )
    b1, b2 = st.columns(2)
    if b1.button(
        "Send selection to review", type="primary", icon=":material/rule:", key=state.EXPLORE_SEND
    ):
        send_to_review(  # most suspicious first
            selected["id"].astype(str).tolist(),
            f"Explore: {len(selected):,} rows selected on the map",
        )
    if b2.button("Clear selection", key=state.EXPLORE_CLEAR_SELECTION):
        ss[state.SELECTION] = []
        st.rerun()
elif n_in_view:
    in_view = np.flatnonzero(
        (table["cluster"] == cluster).to_numpy()
        if cluster is not None
        else np.ones(len(table), dtype=bool)
    )
    if classes:
        in_view = in_view[table["given_label"].iloc[in_view].isin(classes).to_numpy()]
    if matches is not None:
        in_view = in_view[matches[in_view]]
    st.subheader(
        f"Rows in view ({len(in_view):,})" + (" matching the search" if matches is not None else "")
    )
    st.dataframe(
        rows_frame(most_suspicious(in_view)),
        hide_index=True,
        width="stretch",
        key=state.EXPLORE_VIEW_ROWS,
    )
    if st.button(f"Select all {len(in_view):,} rows in view", key=state.EXPLORE_SELECT_VIEW):
        ss[state.SELECTION] = table["id"].iloc[in_view].astype(str).tolist()
        st.rerun()

if legend is not None and n_in_view:
    with st.expander(f"Colours: {md_escape(color_by)} ({len(legend):,})"):
        st.dataframe(
            legend.style.map(lambda c: f"background-color: {c}; color: {c}", subset=["colour"]),
            hide_index=True,
            width="stretch",
            key=state.EXPLORE_LEGEND,
            column_config={"colour": st.column_config.TextColumn("colour", width="small")},
        )
        st.caption("Type in the table's search (its toolbar) to find a class.")

# ------------------------------------------------------------------ clusters
st.subheader("Clusters")
st.caption(
    "Click a row to show only that cluster. Keywords by class-based TF-IDF; purity is the share of the "
    "most common given label; cluster -1 holds the rows HDBSCAN left unclustered."
)
cl = res.clusters.copy()
id_text = texts_of_ids(row_ids, texts, [str(i) for ids in cl["representative_ids"] for i in ids])
cl["representatives"] = cl["representative_ids"].map(
    lambda ids: " | ".join(id_text.get(str(i), "") for i in ids)
)
cols = [
    c
    for c in (
        "cluster",
        "size",
        "keywords",
        "top_label",
        "purity",
        "labels",
        "mean_issue_score",
        "issue_rate",
        "representatives",
    )
    if c in cl
]
st.dataframe(
    cl[cols],
    hide_index=True,
    width="stretch",
    on_select="rerun",
    selection_mode="single-row",
    key=state.EXPLORE_CLUSTER_TABLE,
    column_config={
        "purity": st.column_config.ProgressColumn(
            "purity", min_value=0.0, max_value=1.0, format="%.2f"
        ),
        "mean_issue_score": st.column_config.NumberColumn("mean issue score", format="%.2f"),
        "issue_rate": st.column_config.NumberColumn("flagged share", format="%.2f"),
    },
)

# ------------------------------------------------------------------ shareable URL
if cluster is not None:
    st.query_params["cluster"] = str(cluster)
elif "cluster" in st.query_params:
    del st.query_params["cluster"]
if selection and len(selection) <= MAX_URL_IDS:
    st.query_params["ids"] = selection
else:
    if "ids" in st.query_params:
        del st.query_params["ids"]
    if len(selection) > MAX_URL_IDS:
        st.caption(
            f"Selections of more than {MAX_URL_IDS} rows are not put in the page URL; share a cluster instead."
        )
