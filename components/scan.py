"""The scan in the app: cached loading, the "Run scan" guard with progress, and the map figure.

A page view only ever *loads* a stored scan (:func:`labelaudit.scan.load_cached_scan`, no umap);
the scan itself runs only when the user presses "Run scan".
"""

from __future__ import annotations

import json

import numpy as np
import streamlit as st

from components import state
from components.data import load_workspace_dataset
from components.progress import StatusProgress
from labelaudit.dataset import Dataset
from labelaudit.errors import DataError, UsageError
from labelaudit.plots import HOVER_CHARS, build_map_figure, color_options, hover_text, palette  # noqa: F401
from labelaudit.scan import MAX_MAP_POINTS, ScanResult, load_cached_scan, map_sample, scan

DEFAULT_OPTIONS = {"cluster_method": "hdbscan", "n_clusters": None, "seed": 0}


class _NotScanned(Exception):
    """Raised inside the cached loader so that a missing scan is not cached."""


def scan_options() -> dict:
    """The scan options of this session (defaults until the user changes them)."""
    return dict(st.session_state.get(state.SCAN_OPTIONS) or DEFAULT_OPTIONS)


def scan_options_key(options: dict | None = None) -> str:
    """``options`` (default: the session's) as the JSON string that keys every cached scan read."""
    return json.dumps(options or scan_options(), sort_keys=True)


@st.cache_resource(show_spinner=False, max_entries=4)
def load_scan(workspace_root: str, dataset_hash: str, options_json: str) -> ScanResult:
    """The stored scan for these arguments; raises _NotScanned when there is none (not cached)."""
    ds = load_workspace_dataset(workspace_root, dataset_hash)
    res = load_cached_scan(ds, workspace=workspace_root, **json.loads(options_json))
    if res is None:
        raise _NotScanned
    return res


def stored_scan(workspace_root: str, dataset_hash: str, options_json: str) -> ScanResult | None:
    """The stored scan for these arguments (cached), or None when it has not run."""
    try:
        return load_scan(workspace_root, dataset_hash, options_json)
    except _NotScanned:
        return None


def cached_scan(ds: Dataset, options: dict | None = None) -> ScanResult | None:
    """The stored scan of ``ds`` with ``options`` (default: the session's), or None."""
    return stored_scan(
        st.session_state[state.WORKSPACE], ds.content_hash, scan_options_key(options)
    )


def run_scan_with_progress(ds: Dataset, options: dict) -> ScanResult | None:
    """Run the scan inside st.status with a progress bar per step (counts and time left)."""
    with st.status("Scanning: embedding, map, clusters, detectors…", expanded=True) as status:
        progress = StatusProgress(status, "Scanning")
        try:
            res = scan(
                ds, workspace=st.session_state[state.WORKSPACE], progress=progress, **options
            )
        except (DataError, UsageError) as e:
            status.update(label="Scan failed", state="error")
            st.error(str(e), icon=":material/error:")
            return None
        steps = ", ".join(f"{k} {v:.1f} s" for k, v in res.timings.items())
        status.update(label=f"Scan complete ({steps})", state="complete", expanded=False)
    return res


def _options_from_widgets(key_prefix: str) -> dict:
    ss = st.session_state
    current = scan_options()
    method = ss.get(state.key_for(key_prefix, "method"), current["cluster_method"])
    k = (
        ss.get(state.key_for(key_prefix, "k"), current.get("n_clusters") or 0)
        if method == "kmeans"
        else 0
    )
    return {
        "cluster_method": method,
        "n_clusters": int(k) or None,
        "seed": int(ss.get(state.key_for(key_prefix, "seed"), current.get("seed", 0))),
    }


def _sync_options(key_prefix: str) -> None:
    # on_change runs before the rerun, so the page guard already sees the new options.
    st.session_state[state.SCAN_OPTIONS] = _options_from_widgets(key_prefix)


def render_scan_options(*, key_prefix: str = state.SCAN_OPTIONS_EXPLORE) -> dict:
    """Clustering method, K and seed widgets; stores and returns the chosen options."""
    current = scan_options()
    sync = {"on_change": _sync_options, "args": (key_prefix,)}
    c1, c2, c3 = st.columns(3)
    c1.selectbox(
        "Clustering",
        ["hdbscan", "kmeans"],
        index=["hdbscan", "kmeans"].index(current["cluster_method"]),
        key=state.key_for(key_prefix, "method"),
        help="HDBSCAN finds the number of clusters and leaves outliers "
        "unclustered; KMeans makes exactly K clusters (default: one per class).",
        **sync,
    )
    if (
        st.session_state.get(state.key_for(key_prefix, "method"), current["cluster_method"])
        == "kmeans"
    ):
        c2.number_input(
            "Clusters (K; 0 = one per class)",
            min_value=0,
            max_value=1000,
            value=int(current.get("n_clusters") or 0),
            key=state.key_for(key_prefix, "k"),
            **sync,
        )
    c3.number_input(
        "Seed",
        min_value=0,
        max_value=2**31 - 1,
        value=int(current.get("seed", 0)),
        key=state.key_for(key_prefix, "seed"),
        **sync,
    )
    options = _options_from_widgets(key_prefix)
    st.session_state[state.SCAN_OPTIONS] = options
    return options


def require_scan(ds: Dataset) -> ScanResult:
    """Page guard: the stored scan of ``ds``; otherwise a "Run scan" button, and a stop.

    Running the scan shows st.status + st.progress, then reruns the page, which finds it stored.
    """
    res = cached_scan(ds)
    if res is not None:
        return res
    st.info(
        f"This dataset ({ds.n:,} rows) has not been scanned with these options yet. The scan embeds every "
        "text, draws a 2-D map, finds clusters and runs the label-issue detectors; it is stored in the "
        "workspace, so it runs once."
    )
    options = render_scan_options(key_prefix=state.SCAN_OPTIONS_GUARD)
    clicked = st.button(
        "Run scan", type="primary", key=state.RUN_SCAN, icon=":material/play_arrow:"
    )
    if clicked and run_scan_with_progress(ds, options) is not None:
        st.rerun()
    st.stop()
    raise AssertionError("unreachable")  # st.stop() raises


@st.cache_data(show_spinner=False, max_entries=16)
def map_rows(
    workspace_root: str,
    dataset_hash: str,
    options_json: str,
    cluster: int | None,
    classes: tuple[str, ...],
    max_points: int = MAX_MAP_POINTS,
) -> tuple[np.ndarray, int]:
    """(row indices to draw, number of rows in view): the filtered rows, stratified by label when many."""
    res = load_scan(workspace_root, dataset_hash, options_json)
    t = res.table
    mask = np.ones(len(t), dtype=bool)
    if cluster is not None:
        mask &= (t["cluster"] == cluster).to_numpy()
    if classes:
        mask &= t["given_label"].isin(classes).to_numpy()
    rows = np.flatnonzero(mask)
    picked = rows[map_sample(t["given_label"].to_numpy()[rows], max_points=max_points)]
    return picked, len(rows)


def selection_ids(event) -> list[str]:
    """Row ids of the points in a plotly_chart selection event (customdata[0])."""
    try:
        points = event["selection"]["points"]
    except (KeyError, TypeError):
        return []
    ids = []
    for p in points:
        cd = p.get("customdata")
        if cd:
            ids.append(str(cd[0] if isinstance(cd, list | tuple) else cd))
    return list(dict.fromkeys(ids))
