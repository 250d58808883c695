"""Cached access to the current dataset."""

from __future__ import annotations

import streamlit as st

from components import state
from labelaudit.dataset import Dataset
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
    """Page guard: the current dataset, or a pointer to the Data page and a stop."""
    ds = current_dataset()
    if ds is None:
        st.info("Load a dataset first: the bundled BANKING77 sample, an upload, or a path on the server.")
        st.page_link("pages/data.py", label="Go to the Data page", icon=":material/database:")
        st.stop()
    return ds
