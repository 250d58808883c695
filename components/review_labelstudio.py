"""The Review page's Label Studio actions: send the queue to a project, pull the decisions made there.

Shown to leads when the deployment sets ``LABEL_STUDIO_URL`` and ``LABEL_STUDIO_API_KEY``
(the token is never shown, logged or written to the workspace; :mod:`labelaudit.integrations.
labelstudio` passes it to the official SDK on stdin). The rules (one task per item, the suggestion
as a prediction, conflicts kept as decided here) are :func:`~labelaudit.integrations.labelstudio.
push_queue` and :func:`~labelaudit.integrations.labelstudio.pull_decisions`'.
"""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from components import state
from components.progress import StatusProgress
from components.review import render_outcome
from components.text import md_escape
from labelaudit.dataset import Dataset
from labelaudit.errors import DataError, UsageError
from labelaudit.integrations.labelstudio import (
    LabelStudioConnection,
    LabelStudioError,
    pull_decisions,
    push_queue,
    sent_projects,
)
from labelaudit.integrations.labelstudio.client import TOKEN_ENV, URL_ENV
from labelaudit.review.identity import Identity, require_lead
from labelaudit.review.queue import without_decided
from labelaudit.review.session import Outcome
from labelaudit.review.store import ReviewStore
from labelaudit.scanning import ScanResult

#: Items sent at once by default.
DEFAULT_LIMIT = 200


def _show_last() -> None:
    render_outcome(st.session_state.pop(state.REVIEW_LS_FLASH, None))


def render_labelstudio(
    store: ReviewStore,
    ds: Dataset,
    who: Identity,
    workspace_root: str,
    scan: ScanResult | None,
    order: Sequence[str],
) -> None:
    """ "Send to Label Studio" (the next undecided items of the queue) and "Pull decisions" (a lead's)."""
    if not who.is_lead:
        return
    with st.expander("Label Studio"):
        _show_last()
        if not LabelStudioConnection.configured():
            st.caption(
                f"Set {URL_ENV} and {TOKEN_ENV} where the app runs to send this queue to a Label "
                "Studio project and take the decisions made there back (docs/integrations.md)."
            )
            return
        try:
            conn = LabelStudioConnection.from_env()
        except UsageError as e:
            st.error(md_escape(str(e)), icon=":material/error:")
            return
        st.text(f"Server: {conn.url} (token from {TOKEN_ENV}, never shown)")
        h = ds.content_hash
        sent = [s for s in sent_projects(workspace_root, h) if s.url == conn.url]
        c = st.columns([2, 2, 3])
        limit = c[0].number_input(
            "Items to send",
            min_value=1,
            max_value=max(1, len(order)),
            value=min(DEFAULT_LIMIT, max(1, len(order))),
            key=state.LS_LIMIT,
        )
        projects = {f"project {s.project} ({len(s.items):,} items sent)": s.project for s in sent}
        target = c[1].selectbox("Project", ["a new project", *projects], key=state.LS_PROJECT)
        project = projects.get(str(target))
        b = st.columns(2)
        if b[0].button("Send to Label Studio", key=state.LS_SEND, icon=":material/upload:"):
            _send(conn, store, ds, who, workspace_root, scan, order, int(limit), project)
            st.rerun()
        if b[1].button(
            "Pull decisions",
            key=state.LS_PULL,
            icon=":material/download:",
            disabled=not projects,
            help=None if projects else "Send the queue to a project first",
        ):
            if project is None and sent:
                project = sent[0].project
            _pull(conn, store, ds, who, workspace_root, project)
            st.rerun()


def _send(conn, store, ds, who, workspace_root, scan, order, limit, project) -> None:
    ss = st.session_state
    try:
        require_lead(who, "send the queue to Label Studio")
        items = without_decided(order, store.current(ds.content_hash)["item_id"])[:limit]
        if not items:
            raise UsageError("nothing undecided left in this queue to send")
        with st.status(f"Sending {len(items):,} items to Label Studio…", expanded=True) as status:
            r = push_queue(
                conn,
                ds,
                store,
                item_ids=list(items),
                workspace=workspace_root,
                scan=scan,
                project=project,
                progress=StatusProgress(status, "Label Studio"),
            )
            status.update(label="Sent", state="complete", expanded=False)
    except (LabelStudioError, UsageError, DataError) as e:
        ss[state.REVIEW_LS_FLASH] = Outcome("error", f"Not sent: {e}")
        return
    ss[state.REVIEW_LS_FLASH] = Outcome(
        "saved", r.summary().capitalize() + f". Open {conn.url}/projects/{r.project} to label them."
    )


def _pull(conn, store, ds, who, workspace_root, project) -> None:
    ss = st.session_state
    try:
        require_lead(who, "pull decisions from Label Studio")
        if project is None:
            raise UsageError("choose the project to pull from")
        with st.status("Pulling decisions from Label Studio…", expanded=True) as status:
            res = pull_decisions(
                conn,
                ds,
                store,
                project=int(project),
                workspace=workspace_root,
                progress=StatusProgress(status, "Label Studio"),
            )
            status.update(label="Pulled", state="complete", expanded=False)
    except (LabelStudioError, UsageError, DataError) as e:
        ss[state.REVIEW_LS_FLASH] = Outcome("error", f"Nothing pulled: {e}")
        return
    text = res.summary().capitalize() + "."
    notes = [c.describe() for c in res.conflicts] + [h.describe() for h in res.held]
    if notes:
        text += " " + " ".join(n + "." for n in notes[:20])
    warn = res.conflicts or res.held
    ss[state.REVIEW_LS_FLASH] = Outcome("conflict" if warn else "saved", text)
