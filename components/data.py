"""Cached access to the current dataset."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from components import state
from components.pages import DATA, render_page_link
from components.text import md_escape
from labelaudit.dataset import Dataset
from labelaudit.plots import build_class_balance_spec, build_text_length_spec
from labelaudit.workspace import Workspace


@st.cache_resource(show_spinner=False, max_entries=4)
def load_workspace_dataset(workspace_root: str, dataset_hash: str) -> Dataset:
    """The dataset stored under ``dataset_hash``; shared by every session, treat as read-only."""
    return Workspace(workspace_root).load_dataset(dataset_hash)


def current_workspace() -> Workspace:
    return Workspace(st.session_state[state.WORKSPACE])


def current_dataset() -> Dataset | None:
    h = st.session_state.get(state.DATASET_HASH)
    if not h:
        return None
    return load_workspace_dataset(st.session_state[state.WORKSPACE], h)


def require_dataset() -> Dataset:
    """Page guard: the current dataset, or a pointer to the Data page and a stop. Also starts the
    dataset's background scan when it is missing and shows its progress in the sidebar."""
    from components.scan import render_scan_sidebar  # components.scan imports this module

    ds = current_dataset()
    if ds is None:
        st.info(
            "Load a dataset first: the bundled BANKING77 sample, an upload, or a path on the server."
        )
        render_page_link(DATA)
        st.stop()
        raise AssertionError("unreachable")  # st.stop() raises
    render_scan_sidebar(ds)
    return ds


# --------------------------------------------------------------------------- loading from the Data page
SAMPLE_DIR = Path(__file__).resolve().parents[1] / "sample_data" / "banking77"


def _companion_uploads() -> dict[str, tuple[str, list[str]]]:
    from labelaudit.io.companions import all_companions

    return {
        c.name: (c.upload_label, list(c.upload_types)) for c in all_companions() if c.upload_types
    }


def _dataset_upload() -> tuple[str, list[str]]:
    from labelaudit.io.formats import all_formats, table_suffixes

    names = ", ".join(f.name for f in all_formats())
    return f"Dataset ({names})", [s.lstrip(".") for s in table_suffixes()]


#: The Data page's companion uploads, {load_dataset option: (label, file types)}, from the registry.
COMPANION_UPLOADS = _companion_uploads()
#: The dataset uploader's label and file types: every registered table format.
DATASET_UPLOAD_LABEL, DATASET_UPLOAD_TYPES = _dataset_upload()


def save_upload(workspace_root: str, uploaded) -> Path:
    """Store an uploaded file under the workspace, named by its content hash (uploads are never executed)."""
    import hashlib

    data = uploaded.getvalue()
    digest = hashlib.sha256(data).hexdigest()[:16]
    folder = Path(workspace_root) / "uploads" / digest
    folder.mkdir(parents=True, exist_ok=True)
    name = Path(uploaded.name).name or "upload"
    target = folder / name
    if not target.exists():
        target.write_bytes(data)
    return target


@st.cache_data(show_spinner=False, max_entries=16)
def read_columns(path: str, mtime: float, encoding: str | None) -> tuple[list[str], str | None]:
    """Column names of a data file (or folder), or the problem reading it."""
    from labelaudit.errors import DataError
    from labelaudit.io import read_table

    p = Path(path)
    try:
        if p.is_dir():
            return [], None
        return list(read_table(p, encoding=encoding).columns), None
    except DataError as e:
        return [], "\n".join(str(x) for x in e.problems)


def server_path(typed: str) -> tuple[Path | None, str | None]:
    """A path typed on the Data page, resolved, if inside the data roots; else (None, why refused).

    Nothing is read from a refused path (not even whether it exists).
    """
    from labelaudit.errors import DataError
    from labelaudit.security import check_server_path

    try:
        return check_server_path(typed), None
    except DataError as e:
        return None, "\n".join(str(p) for p in e.problems)


#: load_dataset options that name a file.
PATH_OPTIONS = tuple(COMPANION_UPLOADS)


def load_into_session(data: str | Path, *, server_paths: bool = True, **options) -> bool:
    """Load and validate ``data``; on success store it in the workspace and make it current.

    With ``server_paths`` (the default) ``data`` and every companion path must lie inside the data
    roots (:mod:`labelaudit.security`); uploads stored in the workspace pass ``server_paths=False``
    for the files the page itself saved. Problems are kept in session state for the Data page to
    show; never raises DataError.
    """
    from labelaudit.errors import DataError, UsageError
    from labelaudit.io import load_dataset
    from labelaudit.security import check_server_path

    ws = current_workspace()
    try:
        if server_paths:
            data = check_server_path(data)
            for k in PATH_OPTIONS:
                if options.get(k):
                    options[k] = str(check_server_path(options[k]))
        ds = load_dataset(data, **{k: v for k, v in options.items() if v not in (None, "")})
    except DataError as e:
        st.session_state[state.LOAD_PROBLEMS] = [str(p) for p in e.problems]
        return False
    except UsageError as e:
        st.session_state[state.LOAD_PROBLEMS] = [str(e)]
        return False
    st.session_state[state.LOAD_PROBLEMS] = []
    state.set_dataset(ws.save_dataset(ds))
    return True


# --------------------------------------------------------------------------- summary widgets
def render_dataset_summary(ds: Dataset) -> None:
    """Rows, classes, splits, class balance, text lengths, companions, mapping, warnings."""
    s = ds.summary()
    cols = st.columns(4)
    cols[0].metric("Rows", f"{s['rows']:,}")
    cols[1].metric("Classes", f"{s['classes']:,}")
    cols[2].metric("Median text length", f"{s['median_text_length']:.0f} chars")
    cols[3].metric("Largest / smallest class", f"{s['imbalance_ratio']:.1f}x")
    splits = s["rows_per_split"]
    if list(splits) != ["(none)"]:
        st.caption(
            "Splits: "
            + " · ".join(f"{k}: {v:,} rows" for k, v in splits.items())
            + (
                "  — the test split is protected: evaluation only, never changed by bulk actions."
                if ds.has_test_split
                else ""
            )
        )
    st.caption(f"Source: {md_escape(ds.source)} · dataset version {ds.content_hash}")

    left, right = st.columns(2)
    balance, balance_spec = build_class_balance_spec(ds.class_counts())
    left.vega_lite_chart(balance, balance_spec, width="stretch")
    lengths, lengths_spec = build_text_length_spec(ds.frame["text"].str.len())
    right.vega_lite_chart(lengths, lengths_spec, width="stretch")

    with st.expander("Columns and companions", expanded=True):
        st.dataframe(
            [{"role": k, "source column": v} for k, v in s["mapping"].items()]
            + [{"role": k, "source column": v} for k, v in s["companions"].items()],
            hide_index=True,
            width="stretch",
        )
        if not s["companions"]:
            st.caption(
                "No companions: predicted probabilities are computed out-of-fold, embeddings with the "
                "bundled model, and training dynamics by training a head on the embeddings."
            )
    if ds.warnings:
        with st.expander(f"Validation warnings ({len(ds.warnings)})", expanded=True):
            for w in ds.warnings:
                st.warning(md_escape(str(w)), icon=":material/warning:")  # labels are data
    st.subheader("First rows")
    st.dataframe(ds.frame.head(200), hide_index=True, width="stretch")
