"""Training dynamics and influence in the app: cached loaders, the "Prepare" guard, and the figures.

A page view only *loads* stored artifacts (embeddings, the recorded training run, the influence
model's weights, self-influence); training runs only when the user presses the button, with
progress. Everything is keyed by workspace root and dataset content hash (and query / method), never
by session state. The tables themselves (``dynamics_table``, ``dynamics_view``,
``self_influence_ranking``, ``search_rows``, ``prepare``) are plain functions in
:mod:`labelaudit.training_view`; this module caches them and draws (``build_*_figure``).
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd
import streamlit as st

from components import state
from components.data import load_workspace_dataset
from components.progress import StatusProgress
from labelaudit import training_view
from labelaudit.dataset import Dataset
from labelaudit.dynamics import (
    DEFAULT_EPOCHS,
)
from labelaudit.errors import DataError, UsageError
from labelaudit.influence import (
    external_influence_table,
    influence_table,
)
from labelaudit.plots import hover_text
from labelaudit.training_view import (  # the view-model lives in the core
    DynamicsView,
    is_prepared,
    prepare,
    stored_embeddings,
)
from labelaudit.workspace import Workspace

#: Colours of the data-map regions (colour-blind-safe Okabe-Ito hues).
REGION_COLOURS = {"easy-to-learn": "#009E73", "ambiguous": "#E69F00", "hard-to-learn": "#D55E00"}
SIGN_CONVENTION = (
    "Sign convention: **positive = helpful**: the training row lowers the chosen row's loss "
    "(removing it would raise the loss); negative = harmful."
)


class _NotPrepared(Exception):
    """Raised inside cached loaders when an artifact is not stored yet, so the miss is not cached."""


# --------------------------------------------------------------------------- embeddings and preparation
def require_prepared(ds: Dataset, workspace_root: str, *, influence: bool) -> None:
    """Page guard: continue when the artifacts are stored. The scan's detectors store exactly what
    these pages read (the same training run, AUM, influence head and self-influence), so while
    the background scan runs the page shows its progress and fills in when it is stored; only
    when the scan is stored without them (a scan limited to some detectors) or automatic scans
    are off does the page offer the Prepare button."""
    from components.scan import ensure_scan, render_scan_waiting
    from labelaudit import jobs

    ws = Workspace(workspace_root)
    if is_prepared(ds, ws, influence=influence):
        return
    scan_status = ensure_scan(ds)
    if scan_status is not None and scan_status.state in (jobs.RUNNING, jobs.FAILED):
        render_scan_waiting(ds, scan_status, what="the training run and influence for this page")
        return
    what = (
        "embeds the texts (unless the scan already did), trains a softmax head for "
        f"{DEFAULT_EPOCHS} epochs recording every row's logits, and runs two AUM runs with threshold samples"
    )
    if ds.dynamics is not None:
        what = "uses the imported per-epoch logits and runs two AUM runs on the embeddings"
    if influence:
        what += (
            "; then fits the L2-regularised softmax head to its optimum and computes every training row's "
            "self-influence"
        )
    st.info(
        f"This dataset ({ds.n:,} rows) has not been prepared for this page yet. Preparing {what}. "
        "Results are stored in the workspace, so this runs once."
    )
    if st.button(
        "Prepare", type="primary", icon=":material/play_arrow:", key=state.DYNAMICS_PREPARE
    ):
        with st.status("Preparing…", expanded=True) as status:
            progress = StatusProgress(status, "Preparing")
            try:
                prepare(ds, ws, influence=influence, progress=progress)
            except (DataError, UsageError) as e:
                status.update(label="Preparing failed", state="error", expanded=True)
                st.error(str(e), icon=":material/error:")
                st.stop()
            status.update(label="Prepared", state="complete", expanded=False)
        st.rerun()
    st.stop()


# --------------------------------------------------------------------------- training dynamics
@st.cache_resource(show_spinner=False, max_entries=4)
def load_dynamics(workspace_root: str, dataset_hash: str) -> DynamicsView:
    """The data map of the training rows from stored artifacts (raises _NotPrepared, not cached, if missing)."""
    ds = load_workspace_dataset(workspace_root, dataset_hash)
    view = training_view.dynamics_view(ds, Workspace(workspace_root))
    if view is None:
        raise _NotPrepared
    return view


def dynamics_view(ds: Dataset, workspace_root: str) -> DynamicsView:
    return load_dynamics(workspace_root, ds.content_hash)


def build_data_map_figure(table: pd.DataFrame, colour: pd.Series, colour_name: str):
    """Scattergl of variability (x) against confidence (y); row id in customdata[0]; escaped hover."""
    import plotly.graph_objects as go

    esc = lambda s: html.escape(str(s), quote=False)  # noqa: E731
    custom = np.column_stack(
        [
            table["id"].astype(str).to_numpy(dtype=object),
            table["id"].map(esc).to_numpy(dtype=object),
            table["given_label"].map(esc).to_numpy(dtype=object),
            hover_text(table["text"]),
            colour.map(lambda v: esc(v) if isinstance(v, str) else f"{v:.3g}").to_numpy(
                dtype=object
            ),
        ]
    )
    if not pd.api.types.is_numeric_dtype(colour) or pd.api.types.is_bool_dtype(colour):
        marker = {
            "color": colour.map(lambda r: REGION_COLOURS.get(r, "#999999")).to_numpy(dtype=object),
            "size": 5,
            "opacity": 0.75,
        }
    else:
        marker = {
            "color": colour.to_numpy(dtype=float),
            "colorscale": "Viridis",
            "size": 5,
            "opacity": 0.75,
            "showscale": True,
            "colorbar": {"title": {"text": colour_name}},
        }
    fig = go.Figure(
        go.Scattergl(
            x=table["variability"].to_numpy(),
            y=table["confidence"].to_numpy(),
            mode="markers",
            marker=marker,
            customdata=custom,
            hovertemplate=(
                "<b>%{customdata[1]}</b> · %{customdata[2]}<br>confidence %{y:.2f}, variability %{x:.2f}<br>"
                f"{html.escape(colour_name)}: %{{customdata[4]}}<br>%{{customdata[3]}}<extra></extra>"
            ),
        )
    )
    fig.update_layout(
        height=560,
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        dragmode="select",
        xaxis={"title": {"text": "variability (std of p(given label) over epochs)"}},
        yaxis={"title": {"text": "confidence (mean p(given label))"}, "range": [-0.02, 1.02]},
        showlegend=False,
    )
    return fig


def build_trajectory_figure(probs: np.ndarray, label: str):
    """Line of p(given label) after each epoch (probs: (E,))."""
    import plotly.graph_objects as go

    fig = go.Figure(
        go.Scatter(
            x=np.arange(1, len(probs) + 1),
            y=probs,
            mode="lines+markers",
            hovertemplate="epoch %{x}: %{y:.3f}<extra></extra>",
        )
    )
    fig.update_layout(
        height=280,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        title={"text": f"p({html.escape(label, quote=False)}) over epochs"},
        xaxis={"title": {"text": "epoch"}, "dtick": 1},
        yaxis={"title": {"text": "probability of the given label"}, "range": [0, 1]},
    )
    return fig


# --------------------------------------------------------------------------- influence
@st.cache_data(show_spinner=False, max_entries=32)
def query_influence(
    workspace_root: str, dataset_hash: str, query_id: str, method: str
) -> pd.DataFrame:
    """Every training row's influence on ``query_id`` (most helpful first); see influence_table."""
    ds = load_workspace_dataset(workspace_root, dataset_hash)
    ws = Workspace(workspace_root)
    emb = stored_embeddings(ds, ws)
    if emb is None:
        raise _NotPrepared
    return influence_table(ds, emb, query_id, method=method, workspace=ws)


@st.cache_data(show_spinner=False, max_entries=4)
def self_influence_ranking(workspace_root: str, dataset_hash: str) -> pd.DataFrame:
    """Training rows by self-influence, highest first (see labelaudit.training_view)."""
    ds = load_workspace_dataset(workspace_root, dataset_hash)
    out = training_view.self_influence_ranking(ds, Workspace(workspace_root))
    if out is None:
        raise _NotPrepared
    return out


def external_influence(ds: Dataset, query_id: str) -> pd.DataFrame | None:
    return external_influence_table(ds, query_id)
