"""The review store shared by every session and page: one engine (and connection pool) per database,
and what the Review page shows when the database is busy or damaged."""

from __future__ import annotations

import os

import streamlit as st

from components import state
from labelaudit.dataset import Dataset
from labelaudit.errors import StoreError
from labelaudit.review.identity import Identity
from labelaudit.review.session import ReviewSession
from labelaudit.review.store import ReviewStore, normalise_url
from labelaudit.workspace import Workspace

#: How long a save from the app waits for another process's write lock before it says the database
#: is busy (seconds; LABELAUDIT_DB_BUSY_TIMEOUT overrides it): a reviewer is not kept waiting 30 s.
APP_BUSY_TIMEOUT = 10.0


@st.cache_resource(show_spinner=False)
def _store(normalised_url: str) -> ReviewStore:
    busy = None if os.environ.get("LABELAUDIT_DB_BUSY_TIMEOUT") else APP_BUSY_TIMEOUT
    return ReviewStore(normalised_url, busy_timeout=busy)


def get_store(url: str) -> ReviewStore:
    """The one :class:`ReviewStore` of a database URL (spellings of one URL share it; its
    SQLAlchemy engine is thread-safe, so every session uses the same one)."""
    return _store(normalise_url(url))


def workspace_store(workspace_root: str) -> ReviewStore:
    """The store of the workspace: ``$LABELAUDIT_DB_URL``, else ``review.sqlite`` in the workspace."""
    return get_store(Workspace(workspace_root).database_url)


def render_store_error(e: Exception) -> None:
    """The database could not be opened or read: say why (busy, damaged and how to restore, or
    unreachable) as plain text, with a button that tries again."""
    if isinstance(e, StoreError):
        st.error("The review database cannot be used right now.", icon=":material/error:")
        st.text(str(e))
    else:  # a wrong LABELAUDIT_DB_URL or an unreachable server
        st.error("Cannot open the review database.", icon=":material/error:")
        st.text(f"{type(e).__name__}: {e}")
    st.button("Try again", key=state.REVIEW_RETRY_OPEN, icon=":material/refresh:")


def _retry(store: ReviewStore, ds: Dataset, session: ReviewSession, who: Identity) -> None:
    outcome = session.retry(store, ds, reviewer=who.name, identity=who)
    if outcome is not None:
        st.session_state[state.REVIEW_FLASH] = outcome


def render_pending(store: ReviewStore, ds: Dataset, session: ReviewSession, who: Identity) -> None:
    """A decision the database was too busy to save: what it is, why, and a Retry button. The
    decision stays in the session (and the form keeps the label and comment) until it is saved."""
    pending = session.pending
    if pending is None:
        return
    st.warning(
        "Not saved yet: the review database was busy. Your decision is kept; press Retry to save it.",
        icon=":material/hourglass_top:",
    )
    st.text(f"Kept: {pending.describe()}\nWhy: {pending.reason}")
    st.button(
        "Retry saving",
        key=state.REVIEW_RETRY,
        type="primary",
        icon=":material/refresh:",
        on_click=_retry,
        args=(store, ds, session, who),
    )
