"""Training dynamics and influence in the app: cached loaders, the "Prepare" guard, and the figures.

A page view only *loads* stored artifacts (embeddings, the recorded training run, the influence
model's weights, self-influence); training runs only when the user presses the button, with
progress. Everything is keyed by workspace root and dataset content hash (and query / method), never
by session state. Pure helpers (``dynamics_table``, ``search_rows``, ``build_*_figure``) take plain
frames and arrays so they are testable without a running app.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

import numpy as np
import pandas as pd
import streamlit as st

from components import state
from components.data import load_workspace_dataset
from components.progress import StatusProgress
from labelaudit.dataset import ID, LABEL, TEXT, Dataset
from labelaudit.dynamics import (
    DEFAULT_EPOCHS,
    cached_aum,
    cached_dynamics,
    data_map,
    dynamics_stored,
    forgetting_events,
    given_label_probs,
    training_population,
)
from labelaudit.errors import DataError, UsageError
from labelaudit.influence import (
    cached_model,
    cached_self_influence,
    external_influence_table,
    influence_stored,
    influence_table,
)
from labelaudit.plots import hover_text
from labelaudit.progress import ProgressFn, no_progress
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
def stored_embeddings(ds: Dataset, ws: Workspace) -> np.ndarray | None:
    """The dataset's embeddings if given or already stored in the workspace by the scan, else None."""
    from labelaudit.scan import embeddings_key, get_embeddings

    if ds.embeddings is not None or ws.has(
        ds.text_hash, "embeddings", {"model": embeddings_key(ds)}
    ):
        return get_embeddings(ds, workspace=ws)
    return None


def prepare(
    ds: Dataset, ws: Workspace, *, influence: bool, progress: ProgressFn = no_progress
) -> None:
    """Compute and store what the pages read: embeddings, the training run, AUM and (when
    ``influence``) the influence model and self-influence of the training rows."""
    from labelaudit.scan import get_embeddings

    emb = get_embeddings(ds, workspace=ws, progress=progress)
    train = training_population(ds)
    x, y = emb[train], ds.labels[train]
    if ds.dynamics is None:
        cached_dynamics(x, y, n_classes=ds.k, workspace=ws, progress=progress)
    cached_aum(x, y, n_classes=ds.k, workspace=ws, progress=progress)
    if influence:
        progress("fitting the influence model", 0, 1)
        cached_model(x, y, n_classes=ds.k, workspace=ws)
        progress("fitting the influence model", 1, 1)
        cached_self_influence(x, y, n_classes=ds.k, workspace=ws, progress=progress)


def is_prepared(ds: Dataset, ws: Workspace, *, influence: bool) -> bool:
    """Whether :func:`prepare` has stored everything (cheap: file checks after loading embeddings)."""
    emb = stored_embeddings(ds, ws)
    if emb is None:
        return False
    train = training_population(ds)
    x, y = emb[train], ds.labels[train]
    if ds.dynamics is None:
        ok = dynamics_stored(x, y, n_classes=ds.k, workspace=ws)
    else:
        ok = _aum_only_stored(x, y, ds.k, ws)  # imported logits: only AUM is trained here
    return bool(ok and (not influence or influence_stored(x, y, n_classes=ds.k, workspace=ws)))


def _aum_only_stored(x: np.ndarray, y: np.ndarray, k: int, ws: Workspace) -> bool:
    from labelaudit.dynamics import _aum_params, array_key

    return ws.has(
        array_key(np.asarray(x, np.float32), np.asarray(y, np.int64)),
        "aum",
        _aum_params(k, 0, DEFAULT_EPOCHS),
        "json",
    )


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
@dataclass
class DynamicsView:
    """``table``: one row per training row (id, text, given_label, confidence, variability, correctness,
    region, forgetting, never_learned, aum, aum_flag); ``trajectories``: (E, n_train) probability of
    the given label per epoch; ``source``: where the logits came from."""

    table: pd.DataFrame
    trajectories: np.ndarray
    source: str


def dynamics_table(
    ds: Dataset,
    logits: np.ndarray,
    aum: np.ndarray | None = None,
    aum_flag: np.ndarray | None = None,
    rows: np.ndarray | None = None,
) -> pd.DataFrame:
    """The per-row table of the data map for ``rows`` of ``ds`` (default all) from (E, n, K) ``logits``."""
    rows = np.arange(ds.n) if rows is None else rows
    labels = ds.labels[rows]
    dm = data_map(logits, labels)
    events, never = forgetting_events(logits, labels)
    t = pd.DataFrame(
        {
            "id": ds.frame[ID].to_numpy()[rows],
            "text": ds.frame[TEXT].to_numpy()[rows],
            "given_label": ds.frame[LABEL].to_numpy()[rows],
        }
    )
    for c in ("confidence", "variability", "correctness", "region"):
        t[c] = dm[c].to_numpy()
    t["forgetting"] = events
    t["never_learned"] = never
    t["predicted"] = np.asarray(ds.classes, dtype=object)[dm["mean_pred"].to_numpy()]
    if aum is not None:
        t["aum"] = aum
        t["aum_flag"] = aum_flag
    return t


@st.cache_resource(show_spinner=False, max_entries=4)
def load_dynamics(workspace_root: str, dataset_hash: str) -> DynamicsView:
    """The data map of the training rows from stored artifacts (raises _NotPrepared, not cached, if missing)."""
    ds = load_workspace_dataset(workspace_root, dataset_hash)
    ws = Workspace(workspace_root)
    if not is_prepared(ds, ws, influence=False):
        raise _NotPrepared
    emb = stored_embeddings(ds, ws)
    if emb is None:
        raise _NotPrepared
    train = training_population(ds)
    rows = np.flatnonzero(train)
    x, y = emb[train], ds.labels[train]
    if ds.dynamics is not None:
        logits, source = (
            np.asarray(ds.dynamics)[:, train],
            f"imported ({ds.dynamics.shape[0]} epochs)",
        )
    else:
        logits = cached_dynamics(x, y, n_classes=ds.k, workspace=ws).logits
        source = f"softmax head trained on the embeddings ({logits.shape[0]} epochs, seeded mini-batch SGD)"
    aum = cached_aum(x, y, n_classes=ds.k, workspace=ws)
    table = dynamics_table(ds, logits, aum.aum, aum.is_mislabeled, rows)
    return DynamicsView(table, given_label_probs(logits, y), source)


def dynamics_view(ds: Dataset, workspace_root: str) -> DynamicsView:
    return load_dynamics(workspace_root, ds.content_hash)


def colour_options(table: pd.DataFrame, scan_table: pd.DataFrame | None) -> list[str]:
    """What the data map can be coloured by: region, the dynamics columns, then the scan's detector scores."""
    opts = ["region", "correctness", "forgetting", "aum"]
    if scan_table is not None:
        opts += [
            c for c in scan_table.columns if c.startswith("score_") or c == "label_issue_score"
        ]
    return [
        o
        for o in opts
        if o in table.columns or (scan_table is not None and o in scan_table.columns)
    ]


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
    """Training rows by self-influence, highest first: id, text, given_label, predicted, self_influence, exact."""
    ds = load_workspace_dataset(workspace_root, dataset_hash)
    ws = Workspace(workspace_root)
    emb = stored_embeddings(ds, ws)
    if emb is None:
        raise _NotPrepared
    train = training_population(ds)
    x, y = emb[train], ds.labels[train]
    values, exact = cached_self_influence(x, y, n_classes=ds.k, workspace=ws)
    model = cached_model(x, y, n_classes=ds.k, workspace=ws)
    frame = ds.frame.loc[train]
    out = pd.DataFrame(
        {
            "id": frame[ID].to_numpy(),
            "text": frame[TEXT].to_numpy(),
            "given_label": frame[LABEL].to_numpy(),
            "predicted": np.asarray(ds.classes, dtype=object)[model.probs.argmax(axis=1)],
            "self_influence": values,
            "exact": exact,
        }
    )
    return out.sort_values("self_influence", ascending=False, kind="stable").reset_index(drop=True)


def external_influence(ds: Dataset, query_id: str) -> pd.DataFrame | None:
    return external_influence_table(ds, query_id)


def search_rows(frame: pd.DataFrame, query: str, *, limit: int = 200) -> pd.DataFrame:
    """Rows whose id equals ``query`` or whose text contains it (case-insensitive, plain substring)."""
    q = query.strip()
    if not q:
        return frame.head(0)
    exact = frame[ID].astype(str) == q
    contains = frame[TEXT].str.contains(q, case=False, regex=False, na=False)
    hits = frame[exact | contains]
    return pd.concat([hits[exact[hits.index]], hits[~exact[hits.index]]]).head(limit)
