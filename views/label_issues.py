"""Label issues: rows whose given label probably needs review, ranked, with the evidence of each detector."""

import numpy as np
import streamlit as st

from components import state
from components.data import require_dataset
from components.label_issues import (
    cached_issue_table,
    render_combiner,
    render_issue_table,
    render_issues_per_class,
    render_noise_matrix,
    render_probability_source,
    render_row_details,
    selected_cells,
)
from components.review import send_to_review
from components.review_learn import PRECISION_COLUMN, estimated_precision
from components.scan import require_results
from components.text import md_escape
from labelaudit.errors import DataError, UsageError
from labelaudit.plots import BOX, CELL, build_confusion_spec
from labelaudit.tables import (
    CELL_ROW_COLUMNS,
    CellChoice,
    cell_rows,
    confusion_cells,
    confusion_counts,
    detector_names,
    disagreements,
    filter_issues,
    issues_queue_source,
    most_confused_pairs,
)

#: Its entry in the navigation (components/pages.py reads it without running the page).
PAGE = {"title": "Label issues", "icon": ":material/report:", "section": "Find", "order": 30}

st.title("Label issues")
full_ds = require_dataset()
# While the full scan runs, ds and res may be its first pass: a stratified sample (a dataset of its own)
ds, res, options_json = require_results(full_ds)
ss = st.session_state
det = res.detection
if det is None or "label_issue_score" not in res.table:
    st.warning("This scan has no label-issue detection. Run the scan again from the Explore page.")
    st.stop()
details = det.details
rule = (
    details.get("issue_rule") or "flagged by at least half of the detectors run, and at least two"
)
st.caption(
    "Flags mean **needs review**, not *is wrong*: each detector is a reason to look again, and a row "
    f"needs review when {md_escape(rule)}. Rank first, then decide in the Review page."
)
render_probability_source(details)
render_combiner(details)

try:
    table = cached_issue_table(ss[state.WORKSPACE], ds.content_hash, options_json)
except (DataError, UsageError) as e:
    st.error(md_escape(e))
    st.stop()
learnt = (  # the decisions are on the full dataset's queue: none for a first pass
    estimated_precision(ss[state.WORKSPACE], ds, options_json) if ds is full_ds else None
)
if learnt is not None:  # what the reviewers' decisions say about each row (issue 13)
    table = table.assign(**{PRECISION_COLUMN: learnt[0][table["row"].to_numpy()]})
detectors = detector_names(res.table)
n_flagged = int(table["needs review"].sum())
m1, m2, m3, m4 = st.columns(4)
m1.metric(
    "Rows needing review",
    f"{n_flagged:,} ({n_flagged / max(ds.n, 1):.1%})",
    help=f"{rule}; a reason to look again, not a verdict",
)
m2.metric("Detectors", len(detectors))
noise = (
    details.get("detector_details", {}).get("confident_learning", {}).get("estimated_noise_rate")
)
m3.metric(
    "Estimated noise rate",
    "n/a" if noise is None else f"{noise:.1%}",
    help="confident learning's joint",
)
m4.metric("Rows", f"{ds.n:,}")
for w in details.get("warnings", []):
    st.warning(md_escape(w))
skipped = details.get("skipped") or {}
if skipped:
    st.caption("Not run: " + "; ".join(f"{k} ({v})" for k, v in skipped.items()))

# ----------------------------------------------------------------------------- filters
# The class filter has a row of its own: its options are as wide as the widget, and the longest
# BANKING77 name (48 characters) was cut off in a quarter of the page (tests/test_readability_browser.py).
classes = st.multiselect(
    "Given label", ds.classes, key=state.ISSUES_CLASSES, placeholder="all classes"
)
f2, f3, f4 = st.columns([1, 2, 2])  # wide enough for the toggle label in one line
clusters = []
if "cluster" in table:
    clusters = f2.multiselect(
        "Cluster",
        sorted(int(c) for c in table["cluster"].unique()),
        key=state.ISSUES_CLUSTERS,
        placeholder="all",
        help="-1 = rows in no cluster",
    )
chosen_detectors = f3.multiselect(
    "Flagged by", detectors, key=state.ISSUES_DETECTORS, placeholder="any detector"
)
only_flagged = f4.toggle("Only rows needing review", value=True, key=state.ISSUES_ONLY_FLAGGED)
view = filter_issues(
    table, classes=classes, clusters=clusters, detectors=chosen_detectors, only_flagged=only_flagged
)

left, right = st.columns([2, 1])
left.subheader(f"Ranked rows ({len(view):,})")
if right.button(
    f"Send {len(view):,} rows to review",
    type="primary",
    disabled=view.empty,
    icon=":material/rule:",
):
    send_to_review(
        view["id"].astype(str).tolist(),
        issues_queue_source(
            classes=classes,
            clusters=clusters,
            detectors=chosen_detectors,
            only_flagged=only_flagged,
        ),
    )
picked_row = render_issue_table(view, detectors, key=state.ISSUES_TABLE)
if picked_row is not None:
    with st.container(border=True):
        render_row_details(
            picked_row, table, details, ds, res.embeddings, graph=res.neighbour_graph
        )
else:
    st.caption("Select a row to see its evidence and nearest neighbours.")
if learnt is not None:
    st.caption(learnt[1])

# ----------------------------------------------------------------------------- matrices
# One view at a time (not st.tabs, which draws all three): each is a chart of K x K cells, and a
# page view pays for every chart it draws (bench/results/page_views.md). The first one, shown on
# opening, is Vega-Lite (no Plotly bundle for a new tab); the other two load Plotly when chosen.
MATRIX_VIEWS = ["Given vs predicted", "Estimated noise matrix", "Issues per class"]
matrix_view = (
    st.segmented_control(
        "Matrix",
        MATRIX_VIEWS,
        default=MATRIX_VIEWS[0],
        key=state.ISSUES_MATRIX_VIEW,
        label_visibility="collapsed",
    )
    or MATRIX_VIEWS[0]
)
if matrix_view == MATRIX_VIEWS[0]:
    if det.pred_probs is None:
        st.info("This scan kept no predicted probabilities.")
    else:
        predicted = np.asarray(det.pred_probs).argmax(axis=1)
        counts = confusion_counts(ds.labels, predicted, ds.k)
        st.markdown("**Most-confused pairs** (given label, predicted out-of-sample)")
        st.dataframe(
            most_confused_pairs(counts, ds.classes),
            hide_index=True,
            width="stretch",
            key=state.ISSUES_PAIRS,
            column_config={
                "share of given": st.column_config.ProgressColumn(
                    "share of given", min_value=0.0, max_value=1.0, format="percent"
                )
            },
        )
        labels = {
            f"{ds.classes[g]} → {ds.classes[p]} ({n:,})": (g, p)
            for g, p, n in disagreements(counts)
        }
        choice = st.selectbox(
            "Or pick a disagreement",
            [""] + list(labels),
            key=state.ISSUES_CELL,
            format_func=lambda s: s or "(none)",
        )
        # The chart is drawn below; its selection of the last run is already in the session.
        cell_order = confusion_cells(counts)
        chosen = (ss.get(state.ISSUES_CELL_CHOICE) or CellChoice()).update(
            chart=selected_cells(ss.get(state.ISSUES_CONFUSION), cell_order),
            pick=labels.get(choice),
        )
        ss[state.ISSUES_CELL_CHOICE] = chosen
        if chosen.cells:
            rows = cell_rows(table, ds.labels, predicted, chosen.cells)
            st.markdown("**" + md_escape(chosen.heading(ds.classes, len(rows))) + "**")
            if chosen.source == "chart" and choice:
                st.caption("The box selection on the chart replaced the pick from the list.")
            elif chosen.source == "pick" and chosen.chart:
                st.caption("The pick from the list replaced the box selection on the chart.")
            st.dataframe(
                rows[CELL_ROW_COLUMNS],
                hide_index=True,
                width="stretch",
                key=state.ISSUES_CELL_ROWS,
            )
        st.caption(
            "The matrix: rows given label, columns predicted label. Red-edged squares are "
            "disagreements; click a square, or drag a box around squares, to list their rows; "
            "the mouse wheel zooms, Shift-drag pans, a double click resets."
        )
        cm_data, cm_spec = build_confusion_spec(counts, ds.classes)
        st.vega_lite_chart(
            cm_data,
            cm_spec,
            on_select="rerun",
            selection_mode=[CELL, BOX],
            key=state.ISSUES_CONFUSION,
            width="stretch",
        )
elif matrix_view == MATRIX_VIEWS[1]:
    render_noise_matrix(details.get("noise_matrix"), ds.classes)
else:
    render_issues_per_class(details.get("issues_per_class", {}), ds.class_counts())
