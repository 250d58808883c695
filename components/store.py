"""The review store shared by every session and page: one engine (and connection pool) per database."""

from __future__ import annotations

import streamlit as st

from labelaudit.review.store import ReviewStore, normalise_url
from labelaudit.workspace import Workspace


@st.cache_resource(show_spinner=False)
def _store(normalised_url: str) -> ReviewStore:
    return ReviewStore(normalised_url)


def get_store(url: str) -> ReviewStore:
    """The one :class:`ReviewStore` of a database URL (spellings of one URL share it; its
    SQLAlchemy engine is thread-safe, so every session uses the same one)."""
    return _store(normalise_url(url))


def workspace_store(workspace_root: str) -> ReviewStore:
    """The store of the workspace: ``$LABELAUDIT_DB_URL``, else ``review.sqlite`` in the workspace."""
    return get_store(Workspace(workspace_root).database_url)
