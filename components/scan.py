"""The scan in the app: cached loading, the background scan and its progress, and the map figure.

A page view only ever *loads* a stored scan (:func:`labelaudit.scanning.load_cached_scan`, no umap).
The scan itself runs in a background process (:mod:`labelaudit.jobs`), started as soon as a
dataset is current (no button); its progress, read from the workspace, shows in the sidebar of
every page and on the pages that wait for it, which fill in when it is stored.
"""

from __future__ import annotations

import json

import numpy as np
import streamlit as st

from components import state
from components.data import load_workspace_dataset
from components.progress import StatusProgress
from labelaudit import first_pass, jobs
from labelaudit.commands.app import APP_SCAN_OPTIONS
from labelaudit.dataset import Dataset
from labelaudit.errors import DataError, UsageError
from labelaudit.first_pass import FirstPass
from labelaudit.jobs import JobStatus
from labelaudit.plots import (  # noqa: F401
    BOX,
    HOVER_CHARS,
    build_map_figure,
    build_map_spec,
    color_options,
    hover_text,
    interval_mask,
    palette,
)
from labelaudit.scanning import MAX_MAP_POINTS, ScanResult, load_cached_scan, map_sample, scan

#: Scan options until the user changes them; `labelaudit app DATA` starts its scan with the same.
DEFAULT_OPTIONS = dict(APP_SCAN_OPTIONS)


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
            status.update(label="Scan failed", state="error", expanded=True)
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
    c1, c2, c3 = st.columns(3)
    c1.selectbox(
        "Clustering",
        ["hdbscan", "kmeans"],
        index=["hdbscan", "kmeans"].index(current["cluster_method"]),
        key=state.key_for(key_prefix, "method"),
        help="HDBSCAN finds the number of clusters and leaves outliers "
        "unclustered; KMeans makes exactly K clusters (default: one per class).",
        on_change=_sync_options,
        args=(key_prefix,),
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
            on_change=_sync_options,
            args=(key_prefix,),
        )
    c3.number_input(
        "Seed",
        min_value=0,
        max_value=2**31 - 1,
        value=int(current.get("seed", 0)),
        key=state.key_for(key_prefix, "seed"),
        on_change=_sync_options,
        args=(key_prefix,),
    )
    options = _options_from_widgets(key_prefix)
    st.session_state[state.SCAN_OPTIONS] = options
    return options


def _require_scan_by_button(ds: Dataset) -> None:
    """Without automatic scans (LABELAUDIT_SCAN_RUNNER=off): a "Run scan" button, and a stop."""
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


# --------------------------------------------------------------------------- the background scan
def ensure_scan(ds: Dataset, options: dict | None = None) -> JobStatus | None:
    """Start the background scan of ``ds`` with ``options`` (default: the session's) unless it is
    stored or already running (in this server or another process); its status (None when
    automatic scans are off and none ran)."""
    from labelaudit.workspace import Workspace

    jobs.reap()
    return jobs.start_scan(
        Workspace(st.session_state[state.WORKSPACE]), ds, options or scan_options()
    )


def _job_status(ds: Dataset, options: dict | None = None) -> JobStatus | None:
    from labelaudit.workspace import Workspace

    return jobs.read_status(
        Workspace(st.session_state[state.WORKSPACE]), ds, options or scan_options()
    )


def _draw_status(status: JobStatus) -> None:
    st.progress(status.fraction(), text=status.step_text())
    if status.finished:
        st.caption("Done: " + ", ".join(f"{k} {v:,.0f} s" for k, v in status.finished.items() if k))
    st.caption(status.overall_text())


@st.fragment(run_every=1.5)
def _live_progress(
    dataset_hash: str, options_json: str, *, in_sidebar: bool, wants_first_pass: bool = False
) -> None:
    """Redrawn every 1.5 s while the scan runs; when it is stored, reruns the app so that every page
    fills in (a page waiting for the scan shows it at once). ``wants_first_pass``: the page waits
    for the first pass too, and reruns as soon as it is stored."""
    ds = load_workspace_dataset(st.session_state[state.WORKSPACE], dataset_hash)
    status = _job_status(ds, json.loads(options_json))
    if status is None or status.state != jobs.RUNNING or (wants_first_pass and status.first_pass):
        st.rerun()
        return
    if in_sidebar:
        st.markdown("**Scan running in the background**")
        if status.first_pass:
            st.caption(
                "First pass ready: Explore and Label issues show a provisional map and queue "
                "from a sample until the full scan is stored."
            )
    _draw_status(status)


def render_scan_sidebar(ds: Dataset) -> None:
    """The scan of the current dataset in the sidebar of every page: started when missing, its
    progress (step, counts, time left, the estimate) while it runs, a line when it is stored."""
    status = ensure_scan(ds)
    with st.sidebar:
        if status is None or status.state == jobs.STOPPED:
            st.caption("Not scanned yet (automatic scans are off): the Explore page runs it.")
        elif status.state == jobs.RUNNING:
            _live_progress(ds.content_hash, scan_options_key(), in_sidebar=True)
        elif status.state == jobs.FAILED:
            st.error(f"Scan failed: {status.error}", icon=":material/error:")
        else:
            st.caption(f"Scan stored: {ds.n:,} rows, every page reads it.")


def require_scan(ds: Dataset) -> ScanResult:
    """Page guard: the stored scan of ``ds``; otherwise its background scan's progress (started
    if needed, no button), and a stop; the page fills in when the scan is stored."""
    res = cached_scan(ds)
    if res is not None:
        return res
    status = ensure_scan(ds)
    if status is not None and status.state == jobs.COMPLETE:  # stored between the two reads
        res = cached_scan(ds)
        if res is not None:
            return res
    if status is None or status.state == jobs.STOPPED:  # automatic scans are off
        _require_scan_by_button(ds)
    assert status is not None
    render_scan_waiting(ds, status, what="the map, clusters and label issues", options=True)
    raise AssertionError("unreachable")  # render_scan_waiting stops


def _first_pass(ds: Dataset) -> FirstPass | None:
    from labelaudit.workspace import Workspace

    return first_pass.load_first_pass(
        Workspace(st.session_state[state.WORKSPACE]), ds, scan_options()
    )


def require_results(ds: Dataset) -> tuple[Dataset, ScanResult, str]:
    """Page guard of the pages that can show the first pass (Explore, Label issues): ``(dataset
    shown, its scan, the options key of that scan)``. The full scan when it is stored; else, while
    it runs, the first pass (:mod:`labelaudit.first_pass`: a stratified sample with the cheap
    detectors, as a dataset of its own) under a note that says so, with the full scan's progress,
    replaced when the full scan lands; else the scan's progress and a stop (as :func:`require_scan`)."""
    res = cached_scan(ds)
    if res is not None:
        return ds, res, scan_options_key()
    status = ensure_scan(ds)
    if status is not None and status.state == jobs.COMPLETE:
        res = cached_scan(ds)
        if res is not None:
            return ds, res, scan_options_key()
    if status is None or status.state == jobs.STOPPED:
        _require_scan_by_button(ds)
    assert status is not None
    fp = _first_pass(ds) if status.state == jobs.RUNNING else None
    if fp is None:
        render_scan_waiting(
            ds, status, what="the map, clusters and label issues", options=True, first_pass_too=True
        )
        raise AssertionError("unreachable")
    render_first_pass_note(ds, fp)
    return fp.sample, fp.result, scan_options_key(fp.options)


def render_first_pass_note(ds: Dataset, fp: FirstPass) -> None:
    """What a page shows while it shows the first pass: which rows and detectors, and the full
    scan's live progress (the page is replaced when the full scan is stored)."""
    with st.container(border=True):
        st.markdown(
            f":orange-badge[Provisional] **First pass**: {fp.describe()}. The full scan of every "
            "row, with every detector, is running in the background; this page is replaced by its "
            "results when it is stored."
        )
        _live_progress(ds.content_hash, scan_options_key(), in_sidebar=False)


def render_scan_waiting(
    ds: Dataset,
    status: JobStatus,
    *,
    what: str,
    options: bool = False,
    first_pass_too: bool = False,
) -> None:
    """A page that needs the scan while it runs (its live progress; the page fills in when it is
    stored) or after it failed (the problem and "Try again"); then a stop."""
    if status.state == jobs.FAILED:
        st.error(f"The scan of this dataset failed: {status.error}", icon=":material/error:")
        if st.button("Try again", type="primary", key=state.RUN_SCAN, icon=":material/replay:"):
            from labelaudit.workspace import Workspace

            jobs.clear_failed(Workspace(st.session_state[state.WORKSPACE]), ds, scan_options())
            st.rerun()
        st.stop()
    st.info(
        f"This dataset ({ds.n:,} rows) is being scanned in the background: every text embedded, a 2-D "
        f"map, clusters and the label-issue detectors, which compute {what}. It started on its own "
        "and is stored in the workspace, so it runs once; this page fills in when it finishes "
        "(other pages stay usable).",
        icon=":material/hourglass_top:",
    )
    if first_pass_too and first_pass.wanted(ds):
        st.caption(
            "A first pass on a stratified sample comes first: a provisional map and queue within "
            "about a minute."
        )
    # A bordered box, not st.status: a status container turns "complete" (a tick, collapsed) when its
    # `with` block exits, which is at once here, so the live bar inside it was never seen.
    with st.container(border=True):
        st.markdown("**Scanning…**")
        _live_progress(
            ds.content_hash, scan_options_key(), in_sidebar=False, wants_first_pass=first_pass_too
        )
    if options:
        with st.expander("Scan settings (a change starts another scan)"):
            render_scan_options(key_prefix=state.SCAN_OPTIONS_GUARD)
    st.stop()


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


def box_ids(event, data, *, x_field: str = "x", y_field: str = "y") -> list[str]:
    """Row ids (``data["id"]``, in ``data`` order) of the points inside the box of a Vega-Lite
    chart's selection event (:data:`labelaudit.plots.BOX`); ``data``: the frame the chart drew."""
    try:
        box = event["selection"][BOX]
    except (KeyError, TypeError):
        box = getattr(getattr(event, "selection", None), BOX, None)
    if not box:
        return []
    inside = interval_mask(box, data[x_field], data[y_field], x_field=x_field, y_field=y_field)
    return data["id"].astype(str)[inside].tolist()


def render_box_map(
    data, spec: dict, *, key: str, x_field: str = "x", y_field: str = "y"
) -> list[str]:
    """Draw a Vega-Lite map with a box selection (:data:`labelaudit.plots.BOX`; the Explore map and
    the Training dynamics data map) across the page's width; the ids of the rows inside the box
    (:func:`box_ids` on ``data``'s ``x_field`` and ``y_field``), [] without one. ``key``: the
    chart's session-state key (a page may read the box from it before drawing the chart)."""
    event = st.vega_lite_chart(
        data, spec, on_select="rerun", selection_mode=[BOX], key=key, width="stretch"
    )
    return box_ids(event, data, x_field=x_field, y_field=y_field)
