"""The Review page's widgets: reviewer identity, the item card, the action bar, bulk decisions, export.

The review rules (which item, skip, undo, conflicts) are :class:`labelaudit.review.session.ReviewSession`'s;
this module keeps one per browser session (``state.REVIEW_SESSION``) and calls it from button
callbacks, which run before the page reruns. A decision is checked against the item's latest
decision id *as it was when the item was first shown*, so a decision made meanwhile by someone else
is reported instead of overwritten. "Saved" is shown only after ``ReviewStore.record`` returned,
i.e. after the transaction committed.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Callable
from typing import Any

import pandas as pd
import streamlit as st

from components import state
from components.data import load_workspace_dataset
from components.pages import REVIEW, switch_to
from components.scan import cached_scan, stored_scan
from components.store import get_store, render_pending
from components.text import md_escape
from labelaudit.dataset import LABEL, Dataset
from labelaudit.errors import DataError, StoreError, UsageError
from labelaudit.review.export import (
    check_export,
    cleaned_dataset,
    decision_log,
    to_csv_bytes,
    to_parquet_bytes,
)
from labelaudit.review.identity import Identity
from labelaudit.review.live import LiveQueue, positions_of
from labelaudit.review.queue import (
    RANKING_SOURCE,
    BulkRequest,
    ClassExemplars,
    ItemEvidence,
    build_queue,
    bulk_clusters,
    bulk_targets,
    class_exemplars,
    cluster_slice,
    duplicate_groups,
    grid_rows,
    item_evidence,
    suggestion_map,
    typical_rows,
)
from labelaudit.review.session import LastBatch, Outcome, QueuePlan, ReviewSession
from labelaudit.review.store import Decision, ReviewStore
from labelaudit.review.team import AssignmentBook, pair_for
from labelaudit.scanning import ScanResult

#: Keyboard shortcuts of the action bar (Streamlit reserves C and R).
SHORTCUTS = {
    "accept": "A",
    "change": "L",
    "keep": "K",
    "ambiguous": "M",
    "remove": "X",
    "skip": "S",
    "undo": "U",
}
BULK_ACTIONS = ("accept", "change", "keep", "ambiguous", "remove")
#: The bulk form's "no filter" choice of given label.
ANY_LABEL = "(any)"


# --------------------------------------------------------------------------- caches
def current_scan(ds: Dataset) -> ScanResult | None:
    """The stored scan of ``ds`` with this session's options, or None (the page never runs the scan)."""
    try:
        return cached_scan(ds)
    except (DataError, UsageError, KeyError):
        return None


@st.cache_resource(show_spinner=False, max_entries=16)
def queue_order(
    workspace_root: str,
    dataset_hash: str,
    options_json: str,
    scanned: bool,
    selection: tuple[str, ...] | None,
    flagged_only: bool,
) -> tuple[str, ...]:
    """Every item of the queue in review order, decided ones included (:func:`build_queue`), built
    once per change of what it depends on: the dataset, the stored scan (``options_json``, and
    ``scanned``: whether it exists yet), the handed-over ``selection`` and ``flagged_only``.
    Shared by sessions and immutable."""
    ds = load_workspace_dataset(workspace_root, dataset_hash)
    scan = stored_scan(workspace_root, dataset_hash, options_json) if scanned else None
    pred_probs = scan.detection.pred_probs if scan is not None and scan.detection else None
    return tuple(
        build_queue(
            ds,
            scan_table=scan.table if scan is not None else None,
            selection=selection,
            pred_probs=pred_probs if pred_probs is not None else ds.pred_probs,
            include_decided=True,
            flagged_only=flagged_only,
        )
    )


@st.cache_data(show_spinner=False, max_entries=8)
def export_bytes(
    workspace_root: str, dataset_hash: str, db_url: str, log_version: int, removed: str
) -> dict[str, bytes]:
    """CSV / Parquet of the cleaned dataset and CSV of the log; ``log_version`` (newest decision id)
    keys the cache so a new decision invalidates it."""
    ds = load_workspace_dataset(workspace_root, dataset_hash)
    store = get_store(db_url)
    clean = cleaned_dataset(ds, store.current(dataset_hash), removed=removed)  # type: ignore[arg-type]
    log = decision_log(store, dataset_hash)
    return {
        "csv": _csv_or_problem(clean, "the cleaned dataset"),
        "parquet": to_parquet_bytes(clean),
        "log_csv": _csv_or_problem(log, "the decision log"),
    }


def _csv_or_problem(df, what: str) -> bytes:
    """CSV bytes; a text CSV cannot carry (a NUL character) becomes a one-line note to download instead."""
    from labelaudit.errors import DataError

    try:
        return to_csv_bytes(df, what=what)
    except DataError as e:
        return f"not written as CSV: {e}\r\n".encode()


# --------------------------------------------------------------------------- the session
def review_session(ds: Dataset) -> ReviewSession:
    """This browser session's :class:`ReviewSession` on ``ds``; a new one for another dataset version."""
    ss = st.session_state
    session = ss.get(state.REVIEW_SESSION)
    if not isinstance(session, ReviewSession) or session.dataset_version != ds.content_hash:
        session = ss[state.REVIEW_SESSION] = ReviewSession(dataset_version=ds.content_hash)
    return session


def flash(outcome: Outcome | None) -> None:
    """Keep ``outcome`` to show on the next run (a callback runs before the page redraws)."""
    if outcome is not None:
        st.session_state[state.REVIEW_FLASH] = outcome


def render_flash() -> None:
    """Show the outcome of the last action (set by a callback before this run)."""
    render_outcome(st.session_state.pop(state.REVIEW_FLASH, None))


def render_outcome(outcome: object) -> None:
    """An :class:`Outcome` as a success, warning (conflict) or error box; nothing for anything else.
    The message carries ids, labels, names and comments typed by people: shown as plain text."""
    if not isinstance(outcome, Outcome):
        # Hold the alert's place: without it every element after it moves one position up when a
        # click brings no message (skip after a decision), and the browser rebuilds the card
        # instead of updating it (bench_review_ui --profile: skip 560 ms of browser script vs 367).
        st.empty()
        return
    text = md_escape(outcome.message)
    if outcome.kind == "saved":  # no toast as well: one element less to draw per decision
        st.success(text, icon=":material/check:")
    elif outcome.kind == "conflict":
        st.warning(text, icon=":material/group:")
    else:
        st.error(text, icon=":material/error:")


def _decide(store: ReviewStore, ds: Dataset, who: Identity, action: str) -> None:
    """Button callback: record ``action`` on the item shown, with the label and comment typed."""
    ss = st.session_state
    session = review_session(ds)
    item = session.shown.item_id if session.shown is not None else ""
    mine = ss.get(state.REVIEW_FORM_ITEM) == item  # the form's label and comment are this item's
    flash(
        session.decide(
            store,
            ds,
            reviewer=who.name,
            identity=who,
            action=action,
            new_label=ss.get(state.REVIEW_LABEL) if mine else None,
            comment=str(ss.get(state.REVIEW_COMMENT) or "") if mine else "",
        )
    )


def _skip(ds: Dataset, item_id: str) -> None:
    review_session(ds).skip(item_id)


def _back(ds: Dataset) -> None:
    if review_session(ds).back() is None:
        flash(Outcome("error", "Nothing before this item in this session."))


def _jump(ds: Dataset) -> None:
    """Button callback: show the item picked (a decided one) or typed (any id) next."""
    ss = st.session_state
    typed = str(ss.get(state.REVIEW_JUMP_ID) or "").strip()
    item = typed or str(ss.get(state.REVIEW_JUMP_PICK) or "")
    if not item:
        flash(Outcome("error", "Pick a decided item or type an item id first."))
        return
    if item not in ds.id_to_row:
        flash(Outcome("error", f"No row with id {item!r} in the dataset."))
        return
    review_session(ds).jump(item)
    ss[state.REVIEW_JUMP_ID] = ""


def _undo(store: ReviewStore, ds: Dataset, who: Identity) -> None:
    flash(review_session(ds).undo(store, reviewer=who.name, identity=who))


def _pin(store: ReviewStore, ds: Dataset, who: Identity, item_id: str) -> None:
    """Button callback: pin the item as a finding (kind "item") for the ROI page and report."""
    note = str(st.session_state.get(state.REVIEW_PIN_NOTE) or "").strip()
    try:
        fid = store.add_finding(
            dataset_version=ds.content_hash,
            kind="item",
            target=item_id,
            note=note,
            author=who.name,
            identity=who,
        )
    except StoreError as e:  # busy: nothing written; the note stays in its box to pin again
        flash(Outcome("busy", f"Not pinned: {e}. Press Pin again to retry."))
        return
    flash(Outcome("saved", f"Pinned item {item_id} as finding {fid}."))


# --------------------------------------------------------------------------- drawing
def render_item_card(ev: ItemEvidence, *, current: Decision | None = None) -> None:
    """The item: text, given label, split, class descriptions, suggestions. Dataset text is drawn only as
    plain text (st.code / st.text / st.dataframe), never as Markdown."""
    top = st.columns([3, 2])
    with top[0]:
        st.code(ev.text, language=None, wrap_lines=True)
        # One text block for the item's line, an earlier decision and the class descriptions:
        # each element is one more delta for the browser to apply on every decision.
        lines = [
            f"Item {ev.item_id} · given label: {ev.given_label}"
            + (f" · split: {ev.split}" if ev.split else "")
        ]
        if current is not None:
            final = "(removed)" if current.action == "remove" else (current.new_label or "")
            lines.append(f"Decided already: {current.action} → {final} by {current.reviewer}")
        lines += [f"{name}: {desc}" for name, desc in ev.descriptions.items()]
        st.text("\n".join(lines))
        if ev.in_test_split:
            st.info(
                "This row is in the protected test split: bulk actions never change it.",
                icon=":material/shield:",
            )
    with top[1]:
        # One plain-text block (heading, bars, score), not a heading, a data grid and a line: the
        # card redraws on every decision and each element is one more for the browser to update.
        lines = ["Suggested labels"]
        if ev.suggestions:
            width = max(len(n) for n, _ in ev.suggestions[:5])
            lines += [
                f"{n.ljust(width)}  {p:5.1%}  {'█' * int(round(p * 20))}"
                for n, p in ev.suggestions[:5]
            ]
        else:
            lines.append(
                "No model probabilities: run the scan, or load predicted probabilities with the data."
            )
        if ev.label_issue_score is not None:
            lines.append(
                f"Label-issue score {ev.label_issue_score:.3f}"
                + (" · flagged" if ev.is_label_issue else "")
            )
        st.text("\n".join(lines))


def render_typical(
    ev: ItemEvidence, typical: dict[str, pd.DataFrame], method: str, descriptions: dict[str, str]
) -> None:
    """For the given and the suggested class: its description when the data has one and a few
    typical rows, then the method, as one plain-text block (dataset text)."""
    lines: list[str] = []
    for name, rows in typical.items():
        role = "given" if name == ev.given_label else "suggested"
        head = f"{name} ({role})"
        if name == ev.given_label and name == ev.suggested_label:
            head = f"{name} (given and suggested)"
        lines.append(head + (f": {descriptions[name]}" if descriptions.get(name) else ""))
        if rows.empty:
            lines.append("  no other row of this class outside the test split")
        else:
            lines += [
                f"  {i}: {t if len(t) <= 200 else t[:199] + '…'}"
                for i, t in zip(rows["id"], rows["text"], strict=True)
            ]
    # The method as the block's last line, not a caption: one element less per decision.
    lines.append(f"Typical rows: {method} among the rows of each class outside the test split.")
    st.text("\n".join(lines))


#: The evidence under the card, one at a time (a segmented control, not tabs: tabs send every
#: tab's content on every decision, bench_review_ui --profile).
EVIDENCE_VIEWS = ("Typical rows", "Detectors", "Nearest neighbours", "Annotators")


def render_item_evidence(
    ev: ItemEvidence,
    typical: dict[str, pd.DataFrame] | None = None,
    method: str = "",
    descriptions: dict[str, str] | None = None,
) -> None:
    """One of: typical rows of the given and suggested class, each detector's score and evidence,
    nearest neighbours with labels, annotators' votes (the reviewer picks which; the choice stays
    from item to item)."""
    view = st.segmented_control(
        "Evidence",
        EVIDENCE_VIEWS,
        default=EVIDENCE_VIEWS[0],
        key=state.REVIEW_EVIDENCE,
        label_visibility="collapsed",
    )
    if view is None or view == EVIDENCE_VIEWS[0]:  # clicking the selected one again clears it
        render_typical(ev, typical or {}, method, descriptions or {})
    elif view == EVIDENCE_VIEWS[1]:
        if ev.detectors.empty:
            st.caption("No detector scores yet: run the scan on the Label issues page.")
        else:
            st.dataframe(ev.detectors, hide_index=True, width="stretch")
    elif view == EVIDENCE_VIEWS[2]:
        if ev.neighbours.empty:
            st.caption("No embeddings yet: run the scan to see the nearest neighbours.")
        else:
            st.dataframe(
                ev.neighbours,
                hide_index=True,
                width="stretch",
                column_config={"similarity": st.column_config.NumberColumn(format="%.3f")},
            )
    elif ev.votes.empty:
        st.caption("No annotator labels for this item.")
    else:
        st.dataframe(ev.votes, hide_index=True, width="stretch")


def render_action_bar(store: ReviewStore, ds: Dataset, ev: ItemEvidence, who: Identity) -> None:
    """Accept / choose a label / keep / ambiguous / remove (one form; Enter = accept), then skip and undo."""
    suggested = ev.suggested_label
    options = list(ds.classes)
    default = options.index(suggested) if suggested in options else options.index(ev.given_label)
    args = (store, ds, who)
    accept_label = (
        f"Accept: {md_escape(suggested)}" + (" (= given)" if suggested == ev.given_label else "")
        if suggested
        else "Accept suggestion"
    )
    buttons = [  # order matters: Enter in the form presses the first button
        ("accept", accept_label, state.REVIEW_ACCEPT),
        ("change", "Set chosen label", state.REVIEW_CHANGE),
        ("keep", "Keep given label", state.REVIEW_KEEP),
        ("ambiguous", "Ambiguous", state.REVIEW_AMBIGUOUS),
        ("remove", "Remove row", state.REVIEW_REMOVE),
    ]
    ss = st.session_state
    if ss.get(state.REVIEW_FORM_ITEM) != ev.item_id:  # another item: its own defaults
        ss[state.REVIEW_FORM_ITEM] = ev.item_id
        ss[state.REVIEW_LABEL] = options[default]
        ss[state.REVIEW_COMMENT] = ""
        ss[state.REVIEW_PIN_NOTE] = ""
        ss.pop(state.REVIEW_DIALOG, None)  # a dialog is about the item it was opened on
    # One key per widget (not per item): the browser updates the form in place on the next item.
    # Rows are horizontal containers, not st.columns: one block per row instead of one per column
    # plus the row (bench_review_ui --profile counts the deltas a click sends).
    with st.form(state.REVIEW_FORM, border=True):
        with st.container(horizontal=True):
            st.selectbox("Label (type to search)", options, key=state.REVIEW_LABEL)
            st.text_input("Comment (optional)", key=state.REVIEW_COMMENT)
        with st.container(horizontal=True):
            for action, label, key in buttons:
                st.form_submit_button(
                    label,
                    type="primary" if action == "accept" else "secondary",
                    disabled=action == "accept" and suggested is None,
                    on_click=_decide,
                    args=(*args, action),
                    shortcut=SHORTCUTS[action],
                    key=key,
                    width="stretch",
                )
    last = review_session(ds).last
    with st.container(horizontal=True):  # Skip, Undo last, Pin finding, Back, Go to…
        st.button(
            "Skip",
            on_click=_skip,
            args=(ds, ev.item_id),
            shortcut=SHORTCUTS["skip"],
            key=state.REVIEW_SKIP,
            width="stretch",
        )
        st.button(
            "Undo last",
            on_click=_undo,
            args=args,
            disabled=last is None,
            shortcut=SHORTCUTS["undo"],
            key=state.REVIEW_UNDO,
            width="stretch",
            help=None
            if last is None
            else f"Undo your grid decision on {len(last.items)} items (one step)"
            if isinstance(last, LastBatch)
            else f"Undo your last decision (item {last.item_id})",
        )
        st.button(
            "Pin finding",
            icon=":material/push_pin:",
            key=state.REVIEW_PIN_OPEN,
            on_click=_open_dialog,
            args=("pin",),
            width="stretch",
        )
        st.button(
            "Back",
            on_click=_back,
            args=(ds,),
            key=state.REVIEW_BACK,
            width="stretch",
            help="Show the previous item of this session again",
        )
        st.button(
            "Go to…",
            icon=":material/history:",
            key=state.REVIEW_JUMP_OPEN,
            on_click=_open_dialog,
            args=("jump",),
            width="stretch",
        )
        # Dialogs, not popovers: a popover's widgets are sent with every card (each decision), a
        # dialog's only while it is open. Opened last in the row, so nothing in it moves.
        if ss.get(state.REVIEW_DIALOG) == "pin":
            _pin_dialog(store, ds, who, ev.item_id)
        elif ss.get(state.REVIEW_DIALOG) == "jump":
            _jump_dialog(ds)


def _open_dialog(name: str) -> None:
    """Button callback: the dialog ``name`` is open (drawn on every run until it is closed)."""
    st.session_state[state.REVIEW_DIALOG] = name


def _close_dialog() -> None:
    """The dialog's dismissal (its x, Escape, a click outside) and its done: closed."""
    st.session_state.pop(state.REVIEW_DIALOG, None)


def _in_dialog(callback: Callable[..., None], *args: Any) -> None:
    """Button callback in a dialog: runs ``callback``, keeping the outcome it flashes for the
    dialog (:func:`_close_or_say`) instead of the card."""
    ss = st.session_state
    before = ss.pop(state.REVIEW_FLASH, None)
    callback(*args)
    ss[state.REVIEW_DIALOG_OUTCOME] = ss.pop(state.REVIEW_FLASH, None)
    if before is not None:
        ss[state.REVIEW_FLASH] = before


def _close_or_say(ok: Callable[[Outcome], bool]) -> None:
    """In a dialog whose button was pressed: when the outcome passes ``ok`` (or there is none),
    close it and rerun the app (the card shows the outcome), else show the outcome in the dialog,
    which stays open with what was typed."""
    outcome = st.session_state.pop(state.REVIEW_DIALOG_OUTCOME, None)
    if not isinstance(outcome, Outcome) or ok(outcome):
        flash(outcome)
        _close_dialog()
        st.rerun()
    render_outcome(outcome)


@st.dialog("Pin finding", on_dismiss=_close_dialog)
def _pin_dialog(store: ReviewStore, ds: Dataset, who: Identity, item_id: str) -> None:
    """The note and the pin button (a busy database: said here, the note kept to pin again)."""
    note = st.text_input("Note for the ROI report", key=state.REVIEW_PIN_NOTE)
    if st.button(
        "Pin this item",
        key=state.REVIEW_PIN,
        type="primary",
        on_click=_in_dialog,
        args=(_pin, store, ds, who, item_id),
        disabled=not note.strip(),
    ):
        _close_or_say(lambda o: o.kind == "saved")


@st.dialog("Go to an item", on_dismiss=_close_dialog)
def _jump_dialog(ds: Dataset) -> None:
    """A decided item of this session, or any id (an unknown one: said here, the dialog open)."""
    decided = list(reversed(review_session(ds).decided))
    st.selectbox(
        "Decided in this session (newest first)",
        decided,
        index=None,
        placeholder="none yet" if not decided else "pick one",
        key=state.REVIEW_JUMP_PICK,
    )
    st.text_input("Or any item id", key=state.REVIEW_JUMP_ID)
    if st.button(
        "Show it", key=state.REVIEW_JUMP, type="primary", on_click=_in_dialog, args=(_jump, ds)
    ):
        _close_or_say(lambda o: False)  # a jump flashes only its refusals


def render_shortcuts() -> None:
    """The keyboard shortcuts, drawn once by the page (outside the card: it never changes)."""
    st.caption(
        "Keys: "
        + " · ".join(f"{k} {v}" for v, k in SHORTCUTS.items())
        + " · Enter in the form = accept"
    )


def render_progress(progress: Any) -> None:
    c = st.columns(3)
    c[0].metric("Decided in this queue", f"{progress.done:,} of {progress.total:,}")
    c[1].metric("Remaining", f"{progress.remaining:,}")
    rate = progress.acceptance_rate
    c[2].metric(
        "Suggestions accepted",
        "–" if rate is None else f"{rate:.0%}",
        help="Share of all decisions in force on this dataset that accepted the suggested label.",
    )
    if progress.total:
        st.progress(progress.done / progress.total)


def render_bulk(
    store: ReviewStore,
    ds: Dataset,
    who: Identity,
    *,
    queue_ids: list[str],
    source: str,
    scan_table: pd.DataFrame | None,
) -> None:
    """Apply one decision to a selection, after a confirmation that shows the count and the protected rows."""
    ss = st.session_state
    with st.expander("Bulk decision on a selection"):
        targets = ["the current queue (" + md_escape(source) + ")"]
        clusters = bulk_clusters(scan_table)
        if clusters:
            targets.append("a cluster slice")
        target = st.radio("Apply to", targets, horizontal=True, key=state.BULK_TARGET)
        if target == "a cluster slice" and scan_table is not None:
            c1, c2 = st.columns(2)
            cluster = c1.selectbox("Cluster", clusters, key=state.BULK_CLUSTER)
            given = c2.selectbox(
                "Given label (optional)", [ANY_LABEL] + list(ds.classes), key=state.BULK_GIVEN
            )
            given_label = None if given == ANY_LABEL else given
            ids = cluster_slice(ds, scan_table, cluster, given_label)
            source_name = f"cluster {cluster}" + ("" if given_label is None else f" / {given}")
        else:
            ids, source_name = list(queue_ids), source
        c1, c2, c3 = st.columns(3)
        action = c1.selectbox(
            "Decision",
            BULK_ACTIONS,
            key=state.BULK_ACTION,
            format_func=lambda a: "accept each row's suggestion" if a == "accept" else a,
        )
        new_label = (
            c2.selectbox("New label", list(ds.classes), key=state.BULK_LABEL)
            if action == "change"
            else None
        )
        comment = c3.text_input("Comment", key=state.BULK_COMMENT)
        ok, protected = bulk_targets(ds, ids)
        st.text(
            f"{len(ok):,} rows would change · {len(protected):,} in the protected test split are skipped"
        )
        if st.button("Review bulk decision…", disabled=not ok, key=state.BULK_PREPARE):
            ss[state.REVIEW_BULK] = BulkRequest(
                ids=ok + protected,
                action=action,
                source=source_name,
                seen=store.latest_decision_ids(ds.content_hash),
                new_label=new_label,
                comment=comment,
                suggestions=suggestion_map(scan_table) if action == "accept" else None,
            )
        pending = ss.get(state.REVIEW_BULK)
        if isinstance(pending, BulkRequest):
            n_ok, n_prot = (len(x) for x in bulk_targets(ds, pending.ids))
            st.warning(
                md_escape(f"Apply '{pending.describe()}' to {n_ok:,} rows of {pending.source}? ")
                + f"{n_prot:,} rows in the protected test split will be skipped.",
                icon=":material/warning:",
            )
            c1, c2 = st.columns(2)
            if c1.button(
                f"Confirm: apply to {n_ok:,} rows", type="primary", key=state.BULK_CONFIRM
            ):
                try:
                    res = pending.apply(store, ds, reviewer=who.name, identity=who)
                except UsageError as e:
                    flash(Outcome("error", str(e)))
                except StoreError as e:  # busy: nothing written, the request stays to confirm again
                    flash(Outcome("busy", f"Not saved: {e}. Press Confirm again to retry."))
                    st.rerun()
                else:
                    flash(Outcome("saved", "Bulk decision: " + res.summary() + "."))
                ss.pop(state.REVIEW_BULK, None)
                st.rerun()
            if c2.button("Cancel", key=state.BULK_CANCEL):
                ss.pop(state.REVIEW_BULK, None)
                st.rerun()


def render_export(store: ReviewStore, ds: Dataset, workspace_root: str, who: Identity) -> None:
    """Download buttons: cleaned dataset (CSV, Parquet) and the decision log, for a lead only.

    The rule is the library's (:func:`~labelaudit.review.export.check_export`, as for the CLI's
    ``labelaudit export --as``), checked here and again when a button builds its file, not left to
    the page: ``who`` comes from :func:`components.login.render_identity`, which derives the role
    on every run and never reads it from the URL or the session state."""
    try:
        check_export(store, ds.content_hash, who)
    except UsageError as e:
        st.caption(md_escape(f"Export: {e}. A lead exports the reviewed dataset."))
        return
    with st.expander("Export"):
        removed = st.radio(
            "Removed rows",
            ["drop", "flag"],
            horizontal=True,
            key=state.EXPORT_REMOVED,
            help="drop: leave them out; flag: keep them with removed=True and no final label",
        )
        h = ds.content_hash

        def fresh(kind: str) -> Callable[[], bytes]:
            # Built when the button is clicked, from the decisions as they are then: decisions made
            # in the item fragment since this part of the page was drawn are included.
            def build() -> bytes:
                check_export(store, h, who)  # the file is built for the identity drawn with it
                latest = max(store.latest_decision_ids(h).values(), default=0)
                return export_bytes(workspace_root, h, store.url, latest, removed)[kind]

            return build

        stem = f"labelaudit-{ds.content_hash[:8]}"
        c = st.columns(3)
        c[0].download_button(
            "Cleaned dataset (CSV)",
            fresh("csv"),
            file_name=f"{stem}-reviewed.csv",
            mime="text/csv",
            key=state.DOWNLOAD_CSV,
            on_click="ignore",
        )
        c[1].download_button(
            "Cleaned dataset (Parquet)",
            fresh("parquet"),
            file_name=f"{stem}-reviewed.parquet",
            mime="application/octet-stream",
            key=state.DOWNLOAD_PARQUET,
            on_click="ignore",
        )
        c[2].download_button(
            "Decision log (CSV)",
            fresh("log_csv"),
            file_name=f"{stem}-decisions.csv",
            mime="text/csv",
            key=state.DOWNLOAD_LOG,
            on_click="ignore",
        )
        st.caption(
            "CSV cells a spreadsheet would run as a formula (=, +, -, @, also after spaces) get a "
            "leading ' (plain numbers such as -1 do not); docs/review.md says how to restore them. "
            "Command line: labelaudit export --out FILE."
        )


def send_to_review(ids: list[str], source: str) -> None:
    """Hand ``ids`` (in review order) to the Review page as its queue, named ``source``, and open it."""
    st.session_state[state.QUEUE] = [str(i) for i in ids]
    st.session_state[state.QUEUE_SOURCE] = source
    switch_to(REVIEW)


def queue_source() -> tuple[list[str] | None, str]:
    """The selection handed over by another page (ids, description), or (None, 'ranking')."""
    ss = st.session_state
    q = ss.get(state.QUEUE)
    if q is None:
        return None, RANKING_SOURCE
    return [str(i) for i in q], str(ss.get(state.QUEUE_SOURCE) or "selection")


# --------------------------------------------------------------------------- the fast path
@st.cache_data(show_spinner=False, max_entries=256)
def cached_evidence(
    workspace_root: str,
    dataset_hash: str,
    options_json: str,
    scanned: bool,
    item_id: str,
    refit_cutoff: int = 0,
) -> ItemEvidence:
    """:func:`item_evidence` of one item, computed once (the next item is prepared before the click).
    ``refit_cutoff`` > 0: the suggestions come from the out-of-fold model refitted on the decisions
    up to that id (:func:`labelaudit.review.adaptive.refit_suggestions`)."""
    ds = load_workspace_dataset(workspace_root, dataset_hash)
    scan = stored_scan(workspace_root, dataset_hash, options_json) if scanned else None
    det = scan.detection if scan is not None else None
    pred_probs = det.pred_probs if det is not None else None
    table = scan.table if scan is not None else None
    if refit_cutoff and table is not None:
        from components.review_learn import stored_refit
        from labelaudit.review.adaptive import with_refit_suggestions

        refit = stored_refit(workspace_root, dataset_hash, refit_cutoff)
        if refit is not None:
            table = with_refit_suggestions(table, refit, list(ds.classes))
            pred_probs = refit.probs
    return item_evidence(
        ds,
        item_id,
        scan_table=table,
        pred_probs=pred_probs if pred_probs is not None else ds.pred_probs,
        embeddings=scan.embeddings if scan is not None else None,
        detection_details=det.details if det is not None else None,
        neighbour_graph=scan.neighbour_graph if scan is not None else None,
    )


@st.cache_resource(show_spinner=False, max_entries=8)
def cached_exemplars(
    workspace_root: str, dataset_hash: str, options_json: str, scanned: bool
) -> ClassExemplars:
    """:func:`class_exemplars` of the dataset (every class at once: one sort), computed once per
    dataset and scan and shared by sessions (read-only): the scan's probabilities, else the data's,
    else the embeddings' class centroids."""
    ds = load_workspace_dataset(workspace_root, dataset_hash)
    scan = stored_scan(workspace_root, dataset_hash, options_json) if scanned else None
    det = scan.detection if scan is not None else None
    probs = det.pred_probs if det is not None and det.pred_probs is not None else ds.pred_probs
    emb = scan.embeddings if scan is not None else ds.embeddings
    return class_exemplars(ds, pred_probs=probs, embeddings=emb, k=TYPICAL_ROWS + 1)


#: Typical rows shown per class on the card.
TYPICAL_ROWS = 3


def typical_for(ds: Dataset, ex: ClassExemplars, ev: ItemEvidence) -> dict[str, pd.DataFrame]:
    """The typical rows of the item's given class and of its suggested class (the item left out)."""
    names = [ev.given_label] + ([ev.suggested_label] if ev.suggested_label else [])
    return {
        name: typical_rows(ds, ex, name, exclude=ev.item_id).head(TYPICAL_ROWS)
        for name in dict.fromkeys(names)
    }


def live_queue(store: ReviewStore, ds: Dataset, plan: QueuePlan, token: tuple) -> LiveQueue:
    """This session's :class:`LiveQueue` over ``plan`` (a new one when ``token`` changed), brought
    up to date by reading only the decisions since the last run."""
    ss = st.session_state
    held = ss.get(state.REVIEW_LIVE)
    if isinstance(held, tuple) and len(held) == 2 and held[0] == token:
        live = held[1]
        live.refresh(store)
        return live
    live = LiveQueue.start(
        store,
        ds.content_hash,
        plan.order,
        positions=queue_positions(plan.order),
        include_decided=bool(ss.get(state.REVIEW_INCLUDE_DECIDED)),
        my_slots=plan.my_slots,
        hidden=plan.hidden,
    )
    ss[state.REVIEW_LIVE] = (token, live)
    return live


_POSITIONS: dict[int, tuple[Any, dict[str, int]]] = {}


def queue_positions(order: Any) -> dict[str, int]:
    """``{id: index}`` of an order, shared by every session on the same (cached, immutable) order."""
    hit = _POSITIONS.get(id(order))
    if hit is not None and hit[0] is order:
        return hit[1]
    pos = positions_of(order)
    if len(_POSITIONS) > 16:
        _POSITIONS.clear()
    _POSITIONS[id(order)] = (order, pos)
    return pos


def progress_text(done: int, total: int) -> str:
    """The card's progress line: decided of total, and what remains."""
    return f"Decided in this queue: {done:,} of {total:,} · remaining {max(total - done, 0):,}"


def render_live_progress(live: LiveQueue) -> None:
    """One progress bar with its numbers as its text (one element, not two metrics in columns)."""
    value = min(live.done_count / live.total, 1.0) if live.total else 0.0
    st.progress(value, text=progress_text(live.done_count, live.total))


@st.fragment
def render_review_fragment(
    store: ReviewStore,
    ds: Dataset,
    who: Identity,
    plan: QueuePlan,
    token: tuple,
    book: AssignmentBook | None,
    workspace_root: str,
    options_json: str,
    scan: ScanResult | None,
    learning: Callable[[ItemEvidence], None] | None = None,
    refit_cutoff: int = 0,
) -> None:
    """The part of the page a decision, skip or undo redraws: progress, the item, the action bar,
    the evidence. Runs as a fragment: a click reruns only this, never the whole page; the queue
    reads only the decisions made since the last run, and the next item's evidence is prepared
    while the reviewer reads this one."""
    session = review_session(ds)
    live = live_queue(store, ds, plan, token)
    render_flash()
    render_pending(store, ds, session, who)  # a decision the database was too busy to save
    render_live_progress(live)
    item = live.pick(store, session)
    if item is None:
        st.success("Nothing left to review in this queue.", icon=":material/done_all:")
        return
    try:
        ev = cached_evidence(
            workspace_root, ds.content_hash, options_json, scan is not None, item, refit_cutoff
        )
    except (DataError, UsageError) as e:
        st.error(str(e), icon=":material/error:")
        return
    slot = book.slot_of(item, who.name) if book is not None else None
    holders = book.holders(item) if book is not None else []
    session.show(
        store,
        ev,
        plan.source,
        slot=slot,
        held_by=holders,
        adjudicate=plan.adjudicate,
        audit=item in plan.audit,
    )
    if live.checked is not None and live.checked[0] == item:  # read by pick() just now
        current = live.checked[1]
    else:
        current = store.in_force(ds.content_hash, [item]).get(item)
    session.note_label(current, ev.given_label)
    if plan.adjudicate:
        from components.review_team import render_blind_pair

        render_blind_pair(pair_for(store, ds.content_hash, item))
    render_item_card(ev, current=current)
    if session.shown is not None and session.shown.blind:
        st.caption("This item is reviewed twice, blind: you do not see the other review.")
    render_action_bar(store, ds, ev, who)  # above the evidence: no scrolling to decide
    if learning is not None:
        learning(ev)
    ex = cached_exemplars(workspace_root, ds.content_hash, options_json, scan is not None)
    render_item_evidence(ev, typical_for(ds, ex, ev), ex.method, ds.class_descriptions)
    nxt = live.peek_next(session, item)
    if nxt is not None:  # ready before the click
        with contextlib.suppress(DataError, UsageError):
            cached_evidence(
                workspace_root, ds.content_hash, options_json, scan is not None, nxt, refit_cutoff
            )


_FROZEN: list[bool] = []


def serving() -> bool:
    """True in a session a browser opened on a ``streamlit run`` server: its request came with a
    ``Host`` header. Not in an AppTest, a notebook or a bare script (no request). ``sys.argv`` is
    no sign: ``streamlit run`` sets it to the page script and its arguments before the first run,
    so the earlier test on it (``run`` in argv) was never true in a server and the freeze below
    never ran there."""
    try:
        return bool(st.context.headers.get("Host"))
    except Exception:  # no script run context (a bare import): not a server session
        return False


def freeze_loaded() -> bool:
    """Once per server process, after the Review page's first run: collect, then move every object
    alive (the imported modules, the loaded dataset, queue and caches, all kept for the process's
    life) into the collector's permanent generation (:func:`gc.freeze`), so the full collection
    Streamlit runs after every script run (``runner.postScriptGC``) no longer walks them on each
    click. Objects made later are collected as before. Returns whether it froze now.

    Only in a server (:func:`serving`): in a test process the freeze would outlive the test."""
    if _FROZEN or not serving():
        return False
    _FROZEN.append(True)
    gc.collect()
    gc.freeze()
    return True


# --------------------------------------------------------------------------- grid mode
GRID_QUEUE = "the next rows of this queue"
GRID_CLUSTER_SLICE = "a cluster slice"
GRID_DUPLICATES = "a duplicate group"
GRID_ACTIONS_SHOWN = {
    "accept": "accept each row's suggestion",
    "change": "change to one label",
    "keep": "reject the suggestions (keep the given labels)",
}


def _grid_apply(
    store: ReviewStore,
    ds: Dataset,
    who: Identity,
    ids: list[str],
    seen: dict[str, int | None],
    suggestions: dict[str, str],
    source: str,
    hidden: frozenset[str],
) -> None:
    """Button callback: the grid decision on the selected rows, one transaction."""
    ss = st.session_state
    action = str(ss.get(state.GRID_ACTION) or "keep")
    outcome = review_session(ds).decide_grid(
        store,
        ds,
        item_ids=ids,
        action=action,
        reviewer=who.name,
        identity=who,
        seen=seen,
        new_label=ss.get(state.GRID_LABEL) if action == "change" else None,
        suggestions=suggestions,
        comment=str(ss.get(state.GRID_COMMENT) or ""),
        source=source,
        hidden=hidden,
    )
    ss[state.GRID_FLASH] = outcome
    if outcome.kind == "saved":
        _new_grid_table()  # the selection is decided: start afresh
        ss[state.GRID_RERUN] = True
        flash(outcome)  # also above the card, which the app rerun redraws


def _grid_undo(store: ReviewStore, ds: Dataset, who: Identity) -> None:
    outcome = review_session(ds).undo(store, reviewer=who.name, identity=who)
    if outcome is not None:
        st.session_state[state.GRID_FLASH] = outcome
        st.session_state[state.GRID_RERUN] = outcome.kind == "saved"
        if outcome.kind == "saved":
            _new_grid_table()
            flash(outcome)


def _grid_table_key() -> str:
    version = int(st.session_state.get(state.GRID_VERSION, 0))
    return state.key_for(state.GRID_TABLE, version) if version else state.GRID_TABLE


def _new_grid_table() -> None:
    """Drop the grid's selection in the browser as well as here. The browser keeps a data grid's
    selected row positions across reruns of the same widget, so after a decision the rows that
    moved up into those positions would show ticked (and be sent with the next click) although
    nobody picked them: a table under a new key starts with none selected."""
    ss = st.session_state
    ss.pop(_grid_table_key(), None)
    ss[state.GRID_VERSION] = int(ss.get(state.GRID_VERSION, 0)) + 1


@st.fragment
def render_grid(
    store: ReviewStore,
    ds: Dataset,
    who: Identity,
    plan: QueuePlan,
    scan: ScanResult | None,
) -> None:
    """Grid mode: many similar rows (the next rows of the queue, a cluster slice, or a group of
    near-duplicates with conflicting labels) in one table;
    select rows and accept their suggestions, change them to one label or keep the given labels,
    in one transaction; undo is one step. Runs as a fragment: selecting rows redraws only this."""
    ss = st.session_state
    if ss.pop(state.GRID_RERUN, False):  # decided: the card and the progress show it too
        st.rerun(scope="app")
    session = review_session(ds)
    table = scan.table if scan is not None else None
    outcome = ss.pop(state.GRID_FLASH, None)
    # Open or closed is the reviewer's, kept by key on the server: an expander's ``expanded``
    # that changes between runs (it followed the outcome) made Chromium close the grid on the
    # next tick after a decision or an undo (the browser test failed 2 runs in 3 at load ~11).
    with st.expander(
        "Grid: decide many similar rows at once",
        icon=":material/grid_view:",
        key=state.GRID_OPEN,
        on_change="rerun",
    ):
        det = scan.detection if scan is not None else None
        groups = duplicate_groups(ds, det.details if det is not None else None)
        sources = [GRID_QUEUE] + ([GRID_CLUSTER_SLICE] if bulk_clusters(table) else [])
        sources += [GRID_DUPLICATES] if groups else []
        c = st.columns([2, 1])
        src = c[0].radio("Rows", sources, horizontal=True, key=state.GRID_SOURCE)
        hidden = plan.hidden | frozenset(plan.my_slots)  # blind overlap items: one at a time
        if src == GRID_CLUSTER_SLICE and table is not None:
            cluster = c[1].selectbox("Cluster", bulk_clusters(table), key=state.GRID_CLUSTER)
            candidates = cluster_slice(ds, table, cluster)
            source = f"grid: cluster {cluster}"
        elif src == GRID_DUPLICATES and groups:
            g = c[1].selectbox(
                "Group",
                range(len(groups)),
                format_func=lambda i: _group_title(ds, groups[i], i),
                key=state.GRID_GROUP,
            )
            candidates = groups[min(int(g or 0), len(groups) - 1)]
            source = f"grid: near-duplicate group of {candidates[0]}"
        else:
            done = set(session.decided)
            candidates = [i for i in plan.order[: 5 * GRID_LIMIT] if i not in done]
            source = f"grid: {plan.source}"
        candidates = [i for i in candidates if i not in hidden]
        in_force = store.in_force(ds.content_hash, candidates[:GRID_LIMIT])
        probs = det.pred_probs if det is not None else None
        grid = grid_rows(
            ds, candidates, scan_table=table, pred_probs=probs, in_force=in_force, limit=GRID_LIMIT
        )
        if grid.empty:
            st.caption("No rows to show here.")
            render_outcome(outcome)
            return
        picked = st.dataframe(
            grid,
            hide_index=True,
            width="stretch",
            height=min(38 + 35 * len(grid), 420),
            on_select="rerun",
            selection_mode="multi-row",
            key=_grid_table_key(),
            column_config={"test": st.column_config.CheckboxColumn("test split")},
        )
        chosen = [int(r) for r in picked.selection.rows] if picked is not None else []
        ids = grid["id"].iloc[chosen].tolist()
        c = st.columns([2, 2, 2])
        action = c[0].selectbox(
            "Decision",
            list[str](GRID_ACTIONS_SHOWN),
            format_func=lambda a: GRID_ACTIONS_SHOWN[a],
            key=state.GRID_ACTION,
        )
        if action == "change":
            c[1].selectbox("New label", list(ds.classes), key=state.GRID_LABEL)
        c[2].text_input("Comment (optional)", key=state.GRID_COMMENT)
        seen = {i: store.latest_decision_id(ds.content_hash, i) for i in ids}
        suggestions = dict(zip(grid["id"], grid["suggested"], strict=True))
        n_test = int(grid["test"].iloc[chosen].sum()) if chosen else 0
        st.text(
            f"{len(ids):,} of {len(grid):,} rows selected"
            + (f" · {n_test:,} in the protected test split are left out" if n_test else "")
        )
        b = st.columns(2)
        b[0].button(
            f"Apply to {len(ids):,} selected rows",
            type="primary",
            disabled=not ids,
            key=state.GRID_APPLY,
            on_click=_grid_apply,
            args=(store, ds, who, ids, seen, suggestions, source, plan.hidden),
        )
        last = session.last
        b[1].button(
            "Undo the grid decision",
            disabled=not isinstance(last, LastBatch),
            key=state.GRID_UNDO,
            on_click=_grid_undo,
            args=(store, ds, who),
        )
        # Under the buttons, where the click was: above the table it is scrolled out of view.
        render_outcome(outcome)


def _group_title(ds: Dataset, ids: list[str], i: int) -> str:
    """A selectbox option for a near-duplicate group: its rows and given labels (plain text: a
    selectbox option is not Markdown)."""
    labels = ds.frame[LABEL].iloc[[ds.id_to_row[x] for x in ids]].astype(str)
    shown = ", ".join(sorted(set(labels))[:3])
    return f"{i + 1}: {len(ids)} rows, labelled {shown}" + ("…" if labels.nunique() > 3 else "")


#: Rows in one grid.
GRID_LIMIT = 50
