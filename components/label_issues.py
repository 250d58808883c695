"""Label issues page: the ranked table, the confusion and noise matrices, neighbours, and their caches.

Pure helpers (``issue_table``, ``confusion_counts``, ``filter_issues``) take plain frames and arrays
so they are testable without Streamlit; ``render_*`` functions draw; the one ``st.cache_data``
wrapper builds the ranked table from the stored scan, keyed by workspace, dataset hash and scan options.
"""

from __future__ import annotations

import html
import json

import numpy as np
import pandas as pd
import streamlit as st

from components.data import load_workspace_dataset
from components.scan import load_scan
from labelaudit.detect import nearest_neighbours

#: Rows drawn in the ranked table at once (the filters narrow larger sets; "Send to review" takes all).
MAX_TABLE_ROWS = 5000
#: Label columns of the ranked table, in order.
TABLE_LEAD = [
    "id",
    "text",
    "given label",
    "suggestion 1",
    "p 1",
    "suggestion 2",
    "p 2",
    "suggestion 3",
    "p 3",
    "combined score",
    "needs review",
    "flags",
]


def detector_names(table: pd.DataFrame) -> list[str]:
    """Detectors present in a scan table (from its ``score_<name>`` columns)."""
    return [c.removeprefix("score_") for c in table.columns if c.startswith("score_")]


def issue_table(
    scan_table: pd.DataFrame, texts: list[str], details: dict, classes: list[str]
) -> pd.DataFrame:
    """One row per dataset row, ranked by combined score (most suspicious first).

    Columns: ``row`` (position in the dataset), TABLE_LEAD, one ``<detector>`` score column per
    detector, ``cluster`` (when the scan has clusters) and ``flagged_by`` (list of detector names).
    """
    names = np.asarray(classes, dtype=object)
    top_labels = np.asarray(
        details.get("top3_labels", np.zeros((len(scan_table), 0))), dtype=np.int64
    )
    top_probs = np.asarray(
        details.get("top3_probs", np.zeros((len(scan_table), 0))), dtype=np.float64
    )
    out = pd.DataFrame(
        {
            "row": np.arange(len(scan_table)),
            "id": scan_table["id"].astype(str).to_numpy(),
            "text": texts,
            "given label": scan_table["given_label"].astype(str).to_numpy(),
        }
    )
    for j in range(3):
        has = top_labels.ndim == 2 and top_labels.shape[1] > j
        out[f"suggestion {j + 1}"] = names[top_labels[:, j]] if has else ""
        out[f"p {j + 1}"] = top_probs[:, j] if has else np.nan
    out["combined score"] = scan_table["label_issue_score"].to_numpy()
    out["needs review"] = scan_table["is_label_issue"].to_numpy(dtype=bool)
    out["flags"] = scan_table["n_flags"].to_numpy()
    dets = detector_names(scan_table)
    for d in dets:
        out[d] = scan_table[f"score_{d}"].to_numpy()
    if "cluster" in scan_table:
        out["cluster"] = scan_table["cluster"].to_numpy()
    flags = details.get("flags", {})
    flag_arrays = {d: np.asarray(flags[d], dtype=bool) for d in dets if d in flags}
    out["flagged_by"] = [[d for d, f in flag_arrays.items() if f[r]] for r in range(len(out))]
    return out.sort_values(
        ["combined score", "row"], ascending=[False, True], kind="stable"
    ).reset_index(drop=True)


def filter_issues(
    table: pd.DataFrame,
    *,
    classes: list[str] | None = None,
    clusters: list[int] | None = None,
    detectors: list[str] | None = None,
    only_flagged: bool = True,
) -> pd.DataFrame:
    """Rows of :func:`issue_table` matching every filter (empty/None = no filter); ``detectors``: any of them flagged it."""
    keep = np.ones(len(table), dtype=bool)
    if only_flagged:
        keep &= table["needs review"].to_numpy(dtype=bool)
    if classes:
        keep &= table["given label"].isin(classes).to_numpy()
    if clusters and "cluster" in table:
        keep &= table["cluster"].isin(clusters).to_numpy()
    if detectors:
        wanted = set(detectors)
        keep &= np.fromiter(
            (bool(wanted.intersection(f)) for f in table["flagged_by"]),
            dtype=bool,
            count=len(table),
        )
    return table[keep]


def confusion_counts(given: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """int64 (K, K): row = given label, column = predicted label."""
    m = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(m, (given, predicted), 1)
    return m


@st.cache_data(show_spinner=False, max_entries=4)
def cached_issue_table(workspace_root: str, dataset_hash: str, options_json: str) -> pd.DataFrame:
    """:func:`issue_table` of the stored scan for these arguments."""
    ds = load_workspace_dataset(workspace_root, dataset_hash)
    res = load_scan(workspace_root, dataset_hash, options_json)
    return issue_table(
        res.table, ds.texts, res.detection.details if res.detection else {}, ds.classes
    )


def options_key(options: dict) -> str:
    return json.dumps(options, sort_keys=True)


# --------------------------------------------------------------------------- drawing
def render_probability_source(details: dict) -> None:
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


def render_issue_table(view: pd.DataFrame, detectors: list[str], *, key: str) -> int | None:
    """The ranked table (first MAX_TABLE_ROWS rows of ``view``); returns the selected dataset row or None."""
    shown = view.head(MAX_TABLE_ROWS)
    if len(view) > MAX_TABLE_ROWS:
        st.caption(
            f"Showing the {MAX_TABLE_ROWS:,} highest-ranked of {len(view):,} rows; filter to narrow."
        )
    cols = TABLE_LEAD + detectors + (["cluster"] if "cluster" in shown else [])
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


def confusion_figure(counts: np.ndarray, classes: list[str]):
    """Squares on a grid (a scatter, so a click selects a cell); colour and size by row count.

    Point i is cell ``confusion_cells(counts)[i]`` (also in its customdata). Row = given label, column = predicted.
    """
    import plotly.graph_objects as go

    k = len(classes)
    cells = confusion_cells(counts)
    gi, pi = cells[:, 0], cells[:, 1]
    c = counts[gi, pi]
    names = [html.escape(str(x), quote=False) for x in classes]
    nz = np.ones(len(c), dtype=bool)
    hover = [
        f"given {names[g]}<br>predicted {names[p]}<br>{n:,} rows"
        for g, p, n in zip(gi, pi, c, strict=True)
    ]
    size = max(4, min(28, int(560 / max(k, 1))))
    fig = go.Figure(
        go.Scatter(
            x=pi[nz],
            y=gi[nz],
            mode="markers",
            customdata=np.column_stack([gi[nz], pi[nz]]),
            hovertext=hover,
            hoverinfo="text",
            marker={
                "symbol": "square",
                "size": size,
                "color": np.log1p(c[nz]),
                "colorscale": "Blues",
                "line": {"width": 1, "color": np.where(gi[nz] == pi[nz], "#999", "#c0392b")},
                "colorbar": {"title": "log(1+rows)"},
            },
        )
    )
    ticks = {"tickmode": "array", "tickvals": list(range(k)), "ticktext": names}
    fig.update_layout(
        xaxis={"title": "predicted label", **ticks, "range": [-0.5, k - 0.5]},
        yaxis={"title": "given label", **ticks, "autorange": "reversed"},
        height=max(380, min(1200, 18 * k + 180)),
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        dragmode="select",
        clickmode="event+select",
    )  # top margin: room for the modebar
    return fig


def confusion_cells(counts: np.ndarray) -> np.ndarray:
    """(given, predicted) of every non-empty cell, int64 (M, 2), in the order :func:`confusion_figure` draws them."""
    return np.argwhere(counts > 0).astype(np.int64)


def selected_cells(event, cells: np.ndarray) -> list[tuple[int, int]]:
    """(given, predicted) pairs of the squares selected on the confusion figure (``cells`` from :func:`confusion_cells`)."""
    try:
        points = event.selection.points  # type: ignore[union-attr]
    except AttributeError:
        points = (
            (event or {}).get("selection", {}).get("points", []) if isinstance(event, dict) else []
        )
    out = []
    for p in points:
        i = p.get("point_index", p.get("point_number"))
        if i is not None and 0 <= int(i) < len(cells):
            out.append((int(cells[int(i)][0]), int(cells[int(i)][1])))
    return out


def render_noise_matrix(noise_matrix, classes: list[str]) -> None:
    import plotly.graph_objects as go

    m = np.asarray(noise_matrix, dtype=np.float64)
    if m.ndim != 2 or not np.isfinite(m).any():
        st.info("No noise matrix: confident learning did not run on this scan.")
        return
    names = [html.escape(str(x), quote=False) for x in classes]
    fig = go.Figure(
        go.Heatmap(
            z=m,
            x=names,
            y=names,
            colorscale="Reds",
            zmin=0,
            zmax=1,
            hovertemplate="true %{x}<br>given %{y}<br>P(given | true) = %{z:.3f}<extra></extra>",
        )
    )
    fig.update_layout(
        xaxis_title="true label (estimated)",
        yaxis_title="given label",
        yaxis_autorange="reversed",
        height=max(380, min(1200, 18 * len(classes) + 160)),
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
    )
    st.plotly_chart(fig, width="stretch", key="noise_matrix")
    st.caption(
        "Estimated by confident learning (cleanlab): column = true class, row = given label; "
        "off-diagonal mass is the estimated rate at which one class was labelled as another."
    )


def render_issues_per_class(issues_per_class: dict, class_counts: pd.Series) -> None:
    import plotly.graph_objects as go

    s = pd.Series(issues_per_class, dtype=float).reindex(class_counts.index, fill_value=0)
    frame = pd.DataFrame(
        {
            "class": s.index.astype(str),
            "rows needing review": s.to_numpy(),
            "share of class": s.to_numpy() / class_counts.clip(lower=1).to_numpy(),
        }
    )
    frame = frame.sort_values("rows needing review", ascending=False)
    fig = go.Figure(
        go.Bar(
            x=[html.escape(c, quote=False) for c in frame["class"]],
            y=frame["rows needing review"],
            customdata=frame["share of class"],
            hovertemplate="%{x}<br>%{y} rows (%{customdata:.1%} of the class)<extra></extra>",
        )
    )
    fig.update_layout(
        yaxis_title="rows needing review", height=380, margin={"l": 10, "r": 10, "t": 10, "b": 10}
    )
    st.plotly_chart(fig, width="stretch", key="issues_per_class")


def render_row_details(
    row: int,
    table: pd.DataFrame,
    details: dict,
    embeddings: np.ndarray,
    texts: list[str],
    labels: np.ndarray,
    ids: np.ndarray,
    *,
    k: int = 10,
) -> None:
    """The selected row: text, suggestions, each detector's evidence, and its nearest neighbours."""
    r = table.loc[table["row"] == row].iloc[0]
    st.markdown(f"**Row `{html.escape(str(r['id']))}`**: given label and text:")
    st.text(f"{r['given label']}\n{r['text']}")
    sugg = [
        f"{r[f'suggestion {j}']} ({r[f'p {j}']:.2f})"
        for j in (1, 2, 3)
        if r[f"suggestion {j}"] != ""
    ]
    st.text("Suggested: " + ", ".join(sugg))
    evidence = details.get("evidence", {})
    lines = [
        f"{d}: {evidence[d][row]}" for d in evidence if row < len(evidence[d]) and evidence[d][row]
    ]
    if lines:
        st.text("Evidence (needs review, not proof):\n" + "\n".join(lines))
    nn_rows, sims = nearest_neighbours(embeddings, row, k=k)
    st.dataframe(
        pd.DataFrame(
            {
                "id": ids[nn_rows].astype(str),
                "similarity": sims,
                "label": labels[nn_rows],
                "text": [texts[i] for i in nn_rows],
            }
        ),
        hide_index=True,
        width="stretch",
        key="issue_neighbours",
        column_config={"similarity": st.column_config.NumberColumn(format="%.3f")},
    )
