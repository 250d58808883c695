"""Training dynamics: the data map (variability vs confidence), region filters, a linked table, a row's trajectory."""

import numpy as np
import streamlit as st

from components import state
from components.data import require_dataset
from components.dynamics import (
    REGION_COLOURS,
    build_data_map_figure,
    build_trajectory_figure,
    dynamics_view,
    require_prepared,
)
from components.label_issues import MAX_TABLE_ROWS
from components.review import send_to_review
from components.scan import cached_scan, render_box_map, selection_ids
from labelaudit.dynamics import AMBIGUOUS_FRACTION, HARD_CONFIDENCE, REGIONS
from labelaudit.plots import build_data_map_spec
from labelaudit.training_view import colour_options

#: Its entry in the navigation (components/pages.py reads it without running the page).
PAGE = {"title": "Training dynamics", "icon": ":material/timeline:", "section": "Find", "order": 50}

st.title("Training dynamics")
ds = require_dataset()
ss = st.session_state
ws_root = ss[state.WORKSPACE]
require_prepared(ds, ws_root, influence=False)
view = dynamics_view(ds, ws_root)
table = view.table
scan = cached_scan(ds)
scan_table = None
if scan is not None:  # detector scores of the stored scan, aligned to the training rows by id
    scan_table = scan.table.set_index(scan.table["id"].astype(str)).reindex(table["id"].astype(str))

st.caption(
    f"Logits: {view.source}. Data maps after Swayamdipta et al. (2020): confidence = mean probability of "
    f"the given label over epochs, variability = its standard deviation. Regions: ambiguous = top "
    f"{AMBIGUOUS_FRACTION:.0%} by variability; of the rest, hard-to-learn = confidence < {HARD_CONFIDENCE}, "
    "else easy-to-learn. Mislabelled rows gather in hard-to-learn."
)
counts = table["region"].value_counts()
m1, m2, m3, m4 = st.columns(4)
m1.metric("easy-to-learn", f"{counts.get('easy-to-learn', 0):,}")
m2.metric("ambiguous", f"{counts.get('ambiguous', 0):,}")
m3.metric("hard-to-learn", f"{counts.get('hard-to-learn', 0):,}")
m4.metric(
    "AUM below cut-off",
    f"{int(table['aum_flag'].sum()):,}",
    help="Area under the margin (Pleiss et al. 2020) below the 99th percentile of fake-class threshold samples",
)

c1, c2 = st.columns([1, 2])
colour_by = c1.selectbox("Colour by", colour_options(table, scan_table), key=state.DYNAMICS_COLOUR)
regions = c2.multiselect(
    "Regions", list(REGIONS), default=list(REGIONS), key=state.DYNAMICS_REGIONS
)
in_view = np.flatnonzero(table["region"].isin(regions).to_numpy())
if colour_by in table or scan_table is None:  # colour_options offers scan columns only with a scan
    colour = table[colour_by]
else:
    colour = scan_table[colour_by].reset_index(drop=True)

if len(in_view) == 0:
    st.warning("No rows in the chosen regions.")
    st.stop()
lasso = st.toggle(
    "Lasso selection (draws the map with Plotly, slower to open)",
    key=state.DYNAMICS_LASSO,
    help="The data map opens as a Vega-Lite chart: drag a box to select, the wheel zooms, "
    "Shift-drag pans. Plotly adds a free-hand lasso and a click on a point (and loads a 4.7 MB "
    "script in this tab).",
)
shown_colour = colour.iloc[in_view].reset_index(drop=True)
if lasso:
    st.plotly_chart(
        build_data_map_figure(table.iloc[in_view], shown_colour, colour_by),
        on_select="rerun",
        selection_mode=("box", "lasso", "points"),
        key=state.DYNAMICS_MAP,
        width="stretch",
    )
    picked = set(selection_ids(ss.get(state.DYNAMICS_MAP)))
else:
    map_data, map_spec = build_data_map_spec(
        table.iloc[in_view], shown_colour, colour_by, region_colours=REGION_COLOURS
    )
    picked = set(
        render_box_map(
            map_data,
            map_spec,
            key=state.DYNAMICS_MAP_BOX,
            x_field="variability",
            y_field="confidence",
        )
    )
st.caption(
    f"{len(in_view):,} training rows. Drag a box "
    + ("or lasso " if lasso else "(wheel: zoom, Shift-drag: pan) ")
    + "to list rows below; click a row in the table to draw its trajectory."
)

rows = in_view[table["id"].iloc[in_view].astype(str).isin(picked).to_numpy()] if picked else in_view
cols = [
    "id",
    "text",
    "given_label",
    "predicted_label",
    "confidence",
    "variability",
    "correctness",
    "region",
    "forgetting_events",
    "never_learned",
    "aum",
    "aum_flag",
]
shown = table.iloc[rows][cols].sort_values("confidence", kind="stable")
st.subheader(f"{'Selected' if picked else 'Rows in view'} ({len(shown):,}, least confident first)")
# A table element holds every row it is sent: at most MAX_TABLE_ROWS of them (the least confident);
# "Send to review" still takes them all.
drawn = shown.head(MAX_TABLE_ROWS)
if len(shown) > MAX_TABLE_ROWS:
    st.caption(
        f"Showing the {MAX_TABLE_ROWS:,} least confident of {len(shown):,} rows; pick regions or "
        "drag a box on the map to narrow."
    )
pick = st.dataframe(
    drawn,
    hide_index=True,
    width="stretch",
    on_select="rerun",
    selection_mode="single-row",
    key=state.DYNAMICS_TABLE,
    column_config={
        "confidence": st.column_config.NumberColumn(format="%.3f"),
        "variability": st.column_config.NumberColumn(format="%.3f"),
        "correctness": st.column_config.NumberColumn(format="%.2f"),
        "aum": st.column_config.NumberColumn("AUM", format="%.2f"),
    },
)
chosen = pick.selection.rows if pick is not None and hasattr(pick, "selection") else []
if chosen:
    ss[state.DYNAMICS_ROW] = str(drawn["id"].iloc[chosen[0]])
b1, b2 = st.columns(2)
if b1.button(
    f"Send these {len(shown):,} rows to review", icon=":material/rule:", key=state.DYNAMICS_SEND
):
    send_to_review(
        shown["id"].astype(str).tolist(),
        f"Training dynamics: {len(shown):,} rows, least confident first",
    )
if picked and b2.button("Use as the app's selection", key=state.DYNAMICS_SELECT):
    ss[state.SELECTION] = shown["id"].astype(str).tolist()

row_id = ss.get(state.DYNAMICS_ROW)
position = {i: p for p, i in enumerate(table["id"].astype(str).tolist())}
if row_id in position:
    p = position[row_id]
    st.subheader("Trajectory")
    st.text(
        f"{row_id} · given label: {table['given_label'].iloc[p]} · region: {table['region'].iloc[p]}"
    )
    st.text(str(table["text"].iloc[p]))
    st.plotly_chart(
        build_trajectory_figure(view.trajectories[:, p], str(table["given_label"].iloc[p])),
        width="stretch",
        key=state.DYNAMICS_TRAJECTORY,
    )
else:
    st.caption(
        "Click a row of the table to see its probability of the given label over the epochs."
    )
