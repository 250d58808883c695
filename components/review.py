"""The Review page's widgets: reviewer identity, the item card, the action bar, bulk decisions, export.

Decisions are written in button callbacks, before the page reruns: the callback records the
decision with the item's latest decision id *as it was when the item was first shown*
(``state.REVIEW_SHOWN``), so a decision made meanwhile by someone else raises ConflictError
instead of being overwritten. "Saved" is shown only after ``ReviewStore.record`` returned, i.e.
after the transaction committed.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from components import state
from components.text import md_escape
from labelaudit.dataset import LABEL, Dataset
from labelaudit.errors import DataError, UsageError
from labelaudit.review.export import cleaned_dataset, decision_log, to_csv_bytes, to_parquet_bytes
from labelaudit.review.queue import (
    RANKING_SOURCE,
    ItemEvidence,
    apply_bulk,
    bulk_targets,
    current_labels,
    label_before,
)
from labelaudit.review.store import ConflictError, ReviewStore

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


# --------------------------------------------------------------------------- caches
@st.cache_resource(show_spinner=False)
def get_store(url: str) -> ReviewStore:
    """One ReviewStore (engine + connection pool, thread-safe) per database URL, shared by sessions."""
    return ReviewStore(url)


def current_scan(ds: Dataset) -> Any | None:
    """The stored scan of ``ds`` with this session's options, or None (the page never runs the scan)."""
    try:
        from components.scan import cached_scan
    except ImportError:  # the scan component is optional for reviewing
        return None
    try:
        return cached_scan(ds)
    except (DataError, UsageError, KeyError):
        return None


@st.cache_data(show_spinner=False, max_entries=8)
def export_bytes(
    workspace_root: str, dataset_hash: str, db_url: str, log_version: int, removed: str
) -> dict[str, bytes]:
    """CSV / Parquet of the cleaned dataset and CSV of the log; ``log_version`` (newest decision id)
    keys the cache so a new decision invalidates it."""
    from components.data import load_workspace_dataset

    ds = load_workspace_dataset(workspace_root, dataset_hash)
    store = get_store(db_url)
    clean = cleaned_dataset(ds, store.current(dataset_hash), removed=removed)  # type: ignore[arg-type]
    log = decision_log(store, dataset_hash)
    return {
        "csv": to_csv_bytes(clean),
        "parquet": to_parquet_bytes(clean),
        "log_csv": to_csv_bytes(log),
    }


# --------------------------------------------------------------------------- identity
def login_name() -> str | None:
    """The signed-in user's name or e-mail when the deployment configures login, else None."""
    try:
        user = st.user
        if getattr(user, "is_logged_in", False):
            return str(user.get("name") or user.get("email") or "") or None
    except Exception:  # login not configured, or an older Streamlit: fall back to asking
        return None
    return None


def render_reviewer_identity() -> str:
    """The reviewer's name: from login, else asked once per session (stops the page until given)."""
    ss = st.session_state
    name = login_name() or ss.get(state.REVIEWER)
    if name:
        ss[state.REVIEWER] = name
        return str(name)
    with st.form("reviewer_form"):
        typed = st.text_input("Your name (recorded with every decision)", key="reviewer_name_input")
        submitted = st.form_submit_button("Start reviewing", type="primary")
    if submitted and typed.strip():
        ss[state.REVIEWER] = typed.strip()
        st.rerun()
    if submitted:
        st.warning("Enter a name first.")
    st.stop()
    raise AssertionError("unreachable")


# --------------------------------------------------------------------------- the item shown
def note_shown(store: ReviewStore, ds: Dataset, ev: ItemEvidence, source: str) -> dict:
    """Remember what the reviewer is looking at, and the item's latest decision id at first sight."""
    ss = st.session_state
    shown = ss.get(state.REVIEW_SHOWN)
    if not shown or shown.get("item_id") != ev.item_id:
        shown = {
            "item_id": ev.item_id,
            "seen": store.latest_decision_id(ds.content_hash, ev.item_id),
            "shown": ev.shown(source),
            "suggested": ev.suggested_label,
        }
        ss[state.REVIEW_SHOWN] = shown
    return shown


def flash(kind: str, message: str) -> None:
    st.session_state[state.REVIEW_FLASH] = (kind, message)


def render_flash() -> None:
    """Show the outcome of the last action (set by a callback before this run)."""
    msg = st.session_state.pop(state.REVIEW_FLASH, None)
    if not msg:
        return
    kind, text = msg
    text = md_escape(text)  # carries ids, labels, names and comments typed by people
    if kind == "saved":
        st.toast("Saved", icon=":material/check:")
        st.success(text, icon=":material/check:")
    elif kind == "conflict":
        st.warning(text, icon=":material/group:")
    else:
        st.error(text, icon=":material/error:")


def _decide(store: ReviewStore, ds: Dataset, reviewer: str, action: str) -> None:
    """Button callback: record ``action`` on the item shown, with the seen id from first sight."""
    ss = st.session_state
    shown = ss.get(state.REVIEW_SHOWN)
    if not shown:
        return
    item = shown["item_id"]
    labels_now = current_labels(ds, store.current(ds.content_hash))
    old = label_before(ds, labels_now, item)
    new = None
    if action == "accept":
        new = shown.get("suggested")
    elif action == "change":
        new = ss.get(f"review_label_{item}")
    comment = str(ss.get(f"review_comment_{item}") or "").strip()
    try:
        d = store.record(
            dataset_version=ds.content_hash,
            item_id=item,
            reviewer=reviewer,
            action=action,
            old_label=old,
            new_label=new,
            comment=comment,
            shown=shown["shown"],
            seen_decision_id=shown["seen"],
        )
    except ConflictError as e:
        # Show the item again with the other decision in view; the next decision is checked against it.
        ss[state.REVIEW_FORCE] = item
        ss[state.REVIEW_SHOWN] = dict(shown, seen=e.latest.id)
        flash(
            "conflict",
            f"Not saved: this item changed after it was shown to you. {e.latest.describe()}. "
            "Look again and decide.",
        )
        return
    except UsageError as e:
        flash("error", str(e))
        return
    ss[state.REVIEW_LAST] = {"item_id": item, "decision_id": d.id}
    _skip(item)  # move on, also when decided items stay in the queue
    label = f" → {d.new_label}" if d.action in ("accept", "change") else ""
    flash("saved", f"Saved: {d.action}{label} on item {item} (decision {d.id}).")


def _skip(item_id: str) -> None:
    """Move ``item_id`` behind every item not yet passed this session."""
    ss = st.session_state
    skipped = [i for i in ss.get(state.REVIEW_SKIPPED, []) if i != item_id]
    ss[state.REVIEW_SKIPPED] = skipped + [item_id]
    ss.pop(state.REVIEW_SHOWN, None)
    if ss.get(state.REVIEW_FORCE) == item_id:
        ss.pop(state.REVIEW_FORCE)


def _undo(store: ReviewStore, ds: Dataset, reviewer: str) -> None:
    ss = st.session_state
    last = ss.get(state.REVIEW_LAST)
    if not last:
        return
    try:
        u = store.undo(
            dataset_version=ds.content_hash,
            item_id=last["item_id"],
            reviewer=reviewer,
            seen_decision_id=last["decision_id"],
        )
    except ConflictError as e:
        flash(
            "conflict", f"Not undone: the item changed since your decision. {e.latest.describe()}."
        )
        ss.pop(state.REVIEW_LAST, None)
        return
    except UsageError as e:
        flash("error", str(e))
        return
    ss.pop(state.REVIEW_LAST, None)
    ss[state.REVIEW_FORCE] = last["item_id"]  # decide it again
    ss.pop(state.REVIEW_SHOWN, None)
    flash("saved", f"Undone: item {last['item_id']} is back to {u.new_label} (decision {u.id}).")


def _pin(store: ReviewStore, ds: Dataset, reviewer: str, item_id: str) -> None:
    """Button callback: pin the item as a finding (kind "item") for the ROI page and report."""
    note = str(st.session_state.get(f"review_pin_note_{item_id}") or "").strip()
    fid = store.add_finding(
        dataset_version=ds.content_hash, kind="item", target=item_id, note=note, author=reviewer
    )
    flash("saved", f"Pinned item {item_id} as finding {fid}.")


def pick_item(queue: list[str]) -> str | None:
    """The item to show: one forced back (conflict, undo), else the first not skipped this session,
    else the first skipped one (skipping moves an item to the end)."""
    ss = st.session_state
    forced = ss.get(state.REVIEW_FORCE)
    if forced:
        return str(forced)
    skipped = ss.get(state.REVIEW_SKIPPED, [])
    fresh = [i for i in queue if i not in set(skipped)]
    if fresh:
        return fresh[0]
    rest = [i for i in skipped if i in set(queue)]
    return rest[0] if rest else None


# --------------------------------------------------------------------------- drawing
def render_item_card(ev: ItemEvidence, *, current: pd.Series | None = None) -> None:
    """The item: text, given label, split, class descriptions, suggestions. Dataset text is drawn only as
    plain text (st.code / st.text / st.dataframe), never as Markdown."""
    top = st.columns([3, 2])
    with top[0]:
        st.markdown("**Text**")
        st.code(ev.text, language=None, wrap_lines=True)
        st.text(
            f"Item {ev.item_id} · given label: {ev.given_label}"
            + (f" · split: {ev.split}" if ev.split else "")
        )
        if current is not None:
            final = (
                current["final_label"] if isinstance(current["final_label"], str) else "(removed)"
            )
            st.text(f"Decided already: {current['action']} → {final} by {current['reviewer']}")
        if ev.in_test_split:
            st.info(
                "This row is in the protected test split: bulk actions never change it.",
                icon=":material/shield:",
            )
        for name, desc in ev.descriptions.items():
            st.text(f"{name}: {desc}")
    with top[1]:
        st.markdown("**Suggested labels**")
        if ev.suggestions:
            sug = pd.DataFrame(ev.suggestions, columns=["label", "probability"])
            st.dataframe(
                sug,
                hide_index=True,
                width="stretch",
                column_config={
                    "probability": st.column_config.ProgressColumn(
                        "probability", min_value=0.0, max_value=1.0, format="%.2f"
                    )
                },
            )
        else:
            st.caption(
                "No model probabilities: run the scan, or load predicted probabilities with the data."
            )
        if ev.label_issue_score is not None:
            st.text(
                f"Label-issue score {ev.label_issue_score:.3f}"
                + (" · flagged" if ev.is_label_issue else "")
            )


def render_item_evidence(ev: ItemEvidence) -> None:
    """Tabs: each detector's score and evidence, nearest neighbours with labels, annotators' votes."""
    ev_tabs = st.tabs(["Detectors", "Nearest neighbours", "Annotators"])
    with ev_tabs[0]:
        if ev.detectors.empty:
            st.caption("No detector scores yet: run the scan on the Label issues page.")
        else:
            st.dataframe(ev.detectors, hide_index=True, width="stretch")
    with ev_tabs[1]:
        if ev.neighbours.empty:
            st.caption("No embeddings yet: run the scan to see the nearest neighbours.")
        else:
            st.dataframe(
                ev.neighbours,
                hide_index=True,
                width="stretch",
                column_config={"similarity": st.column_config.NumberColumn(format="%.3f")},
            )
    with ev_tabs[2]:
        if ev.votes.empty:
            st.caption("No annotator labels for this item.")
        else:
            st.dataframe(ev.votes, hide_index=True, width="stretch")


def render_action_bar(store: ReviewStore, ds: Dataset, ev: ItemEvidence, reviewer: str) -> None:
    """Accept / choose a label / keep / ambiguous / remove (one form; Enter = accept), then skip and undo."""
    suggested = ev.suggested_label
    options = list(ds.classes)
    default = options.index(suggested) if suggested in options else options.index(ev.given_label)
    args = (store, ds, reviewer)
    with st.form(f"review_form_{ev.item_id}", border=True):
        c1, c2 = st.columns([2, 3])
        c1.selectbox(
            "Label (type to search)", options, index=default, key=f"review_label_{ev.item_id}"
        )
        c2.text_input("Comment (optional)", key=f"review_comment_{ev.item_id}")
        b = st.columns(5)
        # Order matters: Enter in the form presses the first button.
        with b[0]:
            same = suggested == ev.given_label
            st.form_submit_button(
                f"Accept: {md_escape(suggested)}" + (" (= given)" if same else "")
                if suggested
                else "Accept suggestion",
                type="primary",
                disabled=suggested is None,
                on_click=_decide,
                args=(*args, "accept"),
                shortcut=SHORTCUTS["accept"],
                key="review_accept",
                width="stretch",
            )
        with b[1]:
            st.form_submit_button(
                "Set chosen label",
                on_click=_decide,
                args=(*args, "change"),
                shortcut=SHORTCUTS["change"],
                key="review_change",
                width="stretch",
            )
        with b[2]:
            st.form_submit_button(
                "Keep given label",
                on_click=_decide,
                args=(*args, "keep"),
                shortcut=SHORTCUTS["keep"],
                key="review_keep",
                width="stretch",
            )
        with b[3]:
            st.form_submit_button(
                "Ambiguous",
                on_click=_decide,
                args=(*args, "ambiguous"),
                shortcut=SHORTCUTS["ambiguous"],
                key="review_ambiguous",
                width="stretch",
            )
        with b[4]:
            st.form_submit_button(
                "Remove row",
                on_click=_decide,
                args=(*args, "remove"),
                shortcut=SHORTCUTS["remove"],
                key="review_remove",
                width="stretch",
            )
    c = st.columns([1, 1, 1, 3])
    with c[2].popover("Pin finding", icon=":material/push_pin:", width="stretch"):
        note = st.text_input("Note for the ROI report", key=f"review_pin_note_{ev.item_id}")
        st.button(
            "Pin this item",
            key="review_pin",
            on_click=_pin,
            args=(store, ds, reviewer, ev.item_id),
            disabled=not note.strip(),
        )
    c[0].button(
        "Skip",
        on_click=_skip,
        args=(ev.item_id,),
        shortcut=SHORTCUTS["skip"],
        key="review_skip",
        width="stretch",
    )
    last = st.session_state.get(state.REVIEW_LAST)
    c[1].button(
        "Undo last",
        on_click=_undo,
        args=args,
        disabled=not last,
        shortcut=SHORTCUTS["undo"],
        key="review_undo",
        width="stretch",
        help=None if not last else f"Undo your last decision (item {last['item_id']})",
    )
    c[3].caption(
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
    reviewer: str,
    *,
    queue_ids: list[str],
    source: str,
    scan_table: pd.DataFrame | None,
) -> None:
    """Apply one decision to a selection, after a confirmation that shows the count and the protected rows."""
    ss = st.session_state
    with st.expander("Bulk decision on a selection"):
        targets = ["the current queue (" + md_escape(source) + ")"]
        if scan_table is not None and "cluster" in scan_table:
            targets.append("a cluster slice")
        target = st.radio("Apply to", targets, horizontal=True, key="bulk_target")
        if target == "a cluster slice":
            clusters = sorted(int(c) for c in scan_table["cluster"].unique() if c >= 0)  # type: ignore[index]
            c1, c2 = st.columns(2)
            cluster = c1.selectbox("Cluster", clusters, key="bulk_cluster")
            given = c2.selectbox(
                "Given label (optional)", ["(any)"] + list(ds.classes), key="bulk_given"
            )
            mask = (scan_table["cluster"] == cluster).to_numpy()  # type: ignore[index]
            if given != "(any)":
                mask &= (ds.frame[LABEL] == given).to_numpy()
            ids = ds.frame.loc[mask, "id"].tolist()
            source_name = f"cluster {cluster}" + ("" if given == "(any)" else f" / {given}")
        else:
            ids, source_name = list(queue_ids), source
        c1, c2, c3 = st.columns(3)
        action = c1.selectbox(
            "Decision",
            BULK_ACTIONS,
            key="bulk_action",
            format_func=lambda a: "accept each row's suggestion" if a == "accept" else a,
        )
        new_label = (
            c2.selectbox("New label", list(ds.classes), key="bulk_label")
            if action == "change"
            else None
        )
        comment = c3.text_input("Comment", key="bulk_comment")
        ok, protected = bulk_targets(ds, ids)
        st.text(
            f"{len(ok):,} rows would change · {len(protected):,} in the protected test split are skipped"
        )
        if st.button("Review bulk decision…", disabled=not ok, key="bulk_prepare"):
            suggestions = None
            if action == "accept" and scan_table is not None and "suggested_label" in scan_table:
                suggestions = dict(
                    zip(
                        scan_table["id"].astype(str),
                        scan_table["suggested_label"].astype(str),
                        strict=True,
                    )
                )
            ss[state.REVIEW_BULK] = {
                "ids": ok + protected,
                "action": action,
                "new_label": new_label,
                "suggestions": suggestions,
                "comment": comment,
                "source": source_name,
                "seen": store.latest_decision_ids(ds.content_hash),
            }
        pending = ss.get(state.REVIEW_BULK)
        if pending:
            n_ok, n_prot = (len(x) for x in bulk_targets(ds, pending["ids"]))
            what = pending["action"] + (
                f" → {pending['new_label']}" if pending["new_label"] else ""
            )
            st.warning(
                md_escape(f"Apply '{what}' to {n_ok:,} rows of {pending['source']}? ")
                + f"{n_prot:,} rows in the protected test split will be skipped.",
                icon=":material/warning:",
            )
            c1, c2 = st.columns(2)
            if c1.button(f"Confirm: apply to {n_ok:,} rows", type="primary", key="bulk_confirm"):
                try:
                    res = apply_bulk(
                        store,
                        ds,
                        item_ids=pending["ids"],
                        action=pending["action"],
                        reviewer=reviewer,
                        seen=pending["seen"],
                        new_label=pending["new_label"],
                        comment=pending["comment"],
                        source=pending["source"],
                        suggestions=pending.get("suggestions"),
                    )
                except UsageError as e:
                    flash("error", str(e))
                else:
                    flash("saved", "Bulk decision: " + res.summary() + ".")
                ss.pop(state.REVIEW_BULK, None)
                st.rerun()
            if c2.button("Cancel", key="bulk_cancel"):
                ss.pop(state.REVIEW_BULK, None)
                st.rerun()


def render_export(store: ReviewStore, ds: Dataset, workspace_root: str) -> None:
    """Download buttons: cleaned dataset (CSV, Parquet) and the decision log."""
    with st.expander("Export"):
        removed = st.radio(
            "Removed rows",
            ["drop", "flag"],
            horizontal=True,
            key="export_removed",
            help="drop: leave them out; flag: keep them with removed=True and no final label",
        )
        latest = max(store.latest_decision_ids(ds.content_hash).values(), default=0)
        data = export_bytes(workspace_root, ds.content_hash, store.url, latest, removed)
        stem = f"labelaudit-{ds.content_hash[:8]}"
        c = st.columns(3)
        c[0].download_button(
            "Cleaned dataset (CSV)",
            data["csv"],
            file_name=f"{stem}-reviewed.csv",
            mime="text/csv",
            key="download_csv",
            on_click="ignore",
        )
        c[1].download_button(
            "Cleaned dataset (Parquet)",
            data["parquet"],
            file_name=f"{stem}-reviewed.parquet",
            mime="application/octet-stream",
            key="download_parquet",
            on_click="ignore",
        )
        c[2].download_button(
            "Decision log (CSV)",
            data["log_csv"],
            file_name=f"{stem}-decisions.csv",
            mime="text/csv",
            key="download_log",
            on_click="ignore",
        )
        st.caption(
            "CSV cells starting with =, +, -, @ are prefixed with ' so spreadsheets do not run them. "
            "Command line: labelaudit export --out FILE."
        )


def queue_source() -> tuple[list[str] | None, str]:
    """The selection handed over by another page (ids, description), or (None, 'ranking')."""
    ss = st.session_state
    q = ss.get(state.QUEUE)
    if q is None:
        return None, RANKING_SOURCE
    return [str(i) for i in q], str(ss.get(state.QUEUE_SOURCE) or "selection")
