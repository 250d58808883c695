"""Label issues page: the cached ranked table and the widgets that draw it.

The table, filters and matrices are plain functions in :mod:`labelaudit.tables` (a notebook gets the
same); the figures are built by :mod:`labelaudit.plots`. Here: the one cache wrapper that builds the
ranked table from the stored scan (keyed by workspace, dataset hash and scan options), and the
``render_*`` functions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from components import state
from components.data import load_workspace_dataset
from components.scan import load_scan
from components.text import md_escape
from labelaudit.dataset import Dataset
from labelaudit.neighbours import NeighbourGraph
from labelaudit.plots import (
    BOX,
    CELL,
    build_issues_per_class_figure,
    build_noise_matrix_figure,
    build_weights_spec,
    interval_mask,
)
from labelaudit.review.queue import nearest_neighbours
from labelaudit.tables import ISSUE_TABLE_LEAD, evidence_lines, issue_table, issues_per_class

#: The column the review decisions add (components.review_learn.PRECISION_COLUMN).
PRECISION_COLUMN = "estimated precision"
#: Rows drawn in the ranked table at once (the filters narrow larger sets; "Send to review" takes all).
MAX_TABLE_ROWS = 5000


@st.cache_resource(show_spinner=False, max_entries=4)
def cached_issue_table(workspace_root: str, dataset_hash: str, options_json: str) -> pd.DataFrame:
    """:func:`labelaudit.tables.issue_table` of the stored scan for these arguments. One shared
    frame, not a copy per call (``st.cache_data`` unpickles a copy on every read: 1.7 s of each
    Label issues view at 1M rows): callers derive new frames (``assign``, filters) and never
    change it in place."""
    ds = load_workspace_dataset(workspace_root, dataset_hash)
    res = load_scan(workspace_root, dataset_hash, options_json)
    return issue_table(
        res.table, ds.texts, res.detection.details if res.detection else {}, ds.classes
    )


# --------------------------------------------------------------------------- drawing
def render_probability_source(details: Mapping[str, Any]) -> None:
    source = details.get("probs_source")
    if source == "given":
        st.caption(
            f"Predicted probabilities: **given with the dataset** (out-of-sample, from your model); they "
            f"agree with the given label on {details.get('pred_accuracy', float('nan')):.1%} of rows."
        )
    elif source == "out-of-fold":
        st.caption(
            "Predicted probabilities: **out-of-fold**: 5-fold cross-validated logistic regression on the "
            f"embeddings, never scored on a row it trained on; out-of-fold accuracy against the given "
            f"labels {details.get('oof_accuracy', float('nan')):.1%}."
        )


#: Names the pages show for the stored combiner names.
COMBINER_LABELS = {
    "quality_gated": "quality-gated (the better model's detectors, probes, label model)",
    "trust_weighted": "trust-weighted (label model over every detector)",
    "rank_average": "rank average (equal weights)",
}


def render_combiner(details: Mapping[str, Any]) -> None:
    """Which combiner ran, why, the "needs review" rule and each detector's weight (a bar per
    detector), in an expander; nothing for scans stored before weights were kept."""
    weights = details.get("combiner_weights") or {}
    if not weights:
        return
    name = details.get("combiner") or "rank_average"
    with st.expander(f"Combined ranking: {COMBINER_LABELS.get(name, name)}"):
        if details.get("combiner_rationale"):
            st.caption(f"Why these weights: {md_escape(details['combiner_rationale'])}.")
        rule = details.get("issue_rule")
        est = details.get("flag_expected_precision")
        span = details.get("flag_precision_range")
        if span is not None and span[1] - span[0] >= 0.005:
            est_text = f"; expected precision {span[0]:.0%} to {span[1]:.0%} (two model estimates)"
        elif est is not None:
            est_text = f"; expected precision {est:.0%} (model estimate, not a measurement)"
        else:
            est_text = (
                "; expected precision cannot be estimated (no noise matrix, or nothing flagged)"
            )
        if rule:
            st.caption(f"Needs review: {md_escape(rule)}{est_text}.")
        order = sorted(weights, key=lambda n: (-float(weights[n]), n))
        st.caption(
            "Weight of each detector in the combined score: "
            + ", ".join(f"{md_escape(n)} {float(weights[n]):.2f}" for n in order)
        )
        data, spec = build_weights_spec(weights)
        st.vega_lite_chart(data, spec, width="stretch")


def render_issue_table(view: pd.DataFrame, detectors: list[str], *, key: str) -> int | None:
    """The ranked table (first MAX_TABLE_ROWS rows of ``view``); returns the selected dataset row or None."""
    shown = view.head(MAX_TABLE_ROWS)
    if len(view) > MAX_TABLE_ROWS:
        st.caption(
            f"Showing the {MAX_TABLE_ROWS:,} highest-ranked of {len(view):,} rows; filter to narrow."
        )
    learnt = [PRECISION_COLUMN] if PRECISION_COLUMN in shown else []  # from the review decisions
    cols = ISSUE_TABLE_LEAD + learnt + detectors + (["cluster"] if "cluster" in shown else [])
    config = {
        "text": st.column_config.TextColumn("text", width="large"),
        "combined score": st.column_config.ProgressColumn(
            "combined score", min_value=0.0, max_value=1.0, format="%.2f"
        ),
        "needs review": st.column_config.CheckboxColumn(
            "needs review", help="flagged by at least half of the detectors, and at least two"
        ),
        **{f"p {j}": st.column_config.NumberColumn(f"p {j}", format="%.2f") for j in (1, 2, 3)},
        **{d: st.column_config.NumberColumn(d, format="%.2f") for d in detectors},
        PRECISION_COLUMN: st.column_config.NumberColumn(
            PRECISION_COLUMN,
            format="percent",
            help="Estimated chance that this label needs a change, learnt from the review decisions",
        ),
    }
    event = st.dataframe(
        shown[cols],
        hide_index=True,
        width="stretch",
        column_config=config,
        key=key,
        on_select="rerun",
        selection_mode="single-row",
    )
    picked = event.selection.rows if event is not None and hasattr(event, "selection") else []
    return int(shown["row"].iloc[picked[0]]) if picked else None


def selected_cells(event, cells: np.ndarray) -> list[tuple[int, int]]:
    """(given, predicted) pairs of the squares selected on the confusion chart
    (:func:`labelaudit.plots.build_confusion_spec`; ``cells`` from
    :func:`labelaudit.tables.confusion_cells`): the squares whose centres the box covers when
    there is a box, else the clicked square; only cells that exist, in ``cells`` order."""
    selection = _selection(event)
    cells = np.asarray(cells, dtype=np.int64).reshape(-1, 2)
    box = selection.get(BOX) or {}
    if box:
        inside = interval_mask(box, cells[:, 1], cells[:, 0], x_field="p", y_field="g")
        return [(int(g), int(p)) for g, p in cells[inside]]
    known = {(int(g), int(p)) for g, p in cells}
    out = []
    for point in selection.get(CELL) or []:
        try:
            gp = (int(point["g"]), int(point["p"]))
        except (KeyError, TypeError, ValueError):
            continue
        if gp in known and gp not in out:
            out.append(gp)
    return out


def _selection(event) -> Mapping[str, Any]:
    """The ``selection`` of a chart's event (an st.vega_lite_chart state or its dict), or {}."""
    try:
        sel = event["selection"]  # type: ignore[index]
    except (KeyError, TypeError, IndexError):
        sel = getattr(event, "selection", None)
    return sel if isinstance(sel, Mapping) else {}


def render_noise_matrix(noise_matrix, classes: list[str]) -> None:
    fig = build_noise_matrix_figure(noise_matrix, classes)
    if fig is None:
        st.info("No noise matrix: confident learning did not run on this scan.")
        return
    st.plotly_chart(fig, width="stretch", key=state.ISSUES_NOISE_MATRIX)
    st.caption(
        "Estimated by confident learning (cleanlab): column = true class, row = given label; "
        "off-diagonal mass is the estimated rate at which one class was labelled as another."
    )


def render_issues_per_class(counts: dict, class_counts: pd.Series) -> None:
    fig = build_issues_per_class_figure(issues_per_class(counts, class_counts))
    st.plotly_chart(fig, width="stretch", key=state.ISSUES_PER_CLASS)


def render_row_details(
    row: int,
    table: pd.DataFrame,
    details: Mapping[str, Any],
    ds: Dataset,
    embeddings: np.ndarray | None,
    *,
    k: int = 10,
    graph: NeighbourGraph | None = None,
) -> None:
    """The selected row: text, suggestions, each detector's evidence, and its nearest neighbours
    (read from the scan's ``graph`` when given: no search over every row)."""
    r = table.loc[table["row"] == row].iloc[0]
    # md_escape, not a code span: an id holding a backtick would close the span and let markdown through
    st.markdown(f"**Row {md_escape(r['id'])}**: given label and text:")
    st.text(f"{r['given label']}\n{r['text']}")
    sugg = [
        f"{r[f'suggestion {j}']} ({r[f'p {j}']:.2f})"
        for j in (1, 2, 3)
        if r[f"suggestion {j}"] != ""
    ]
    st.text("Suggested: " + ", ".join(sugg))
    lines = evidence_lines(details, row)
    if lines:
        st.text("Evidence (needs review, not proof):\n" + "\n".join(lines))
    neighbours = nearest_neighbours(ds, row, embeddings, k=k, graph=graph)
    st.dataframe(
        neighbours[["id", "similarity", "label", "text"]],
        hide_index=True,
        width="stretch",
        key=state.ISSUES_NEIGHBOURS,
        column_config={"similarity": st.column_config.NumberColumn(format="%.3f")},
    )
