"""Review as a team, on the page: the mode picker, the lead's team panel, the adjudication card.

Who is reviewing is :mod:`components.login`'s (the signed-in user or a typed name); the role
comes from :func:`labelaudit.review.identity.resolve_identity` on every run, never from the
browser: a URL or a session-state value cannot make anyone a lead.

The team panel (:func:`render_team_panel`, leads only) creates and closes assignments and shows
everyone's progress, the agreement on the items reviewed twice, and the pairs' status. The rules
are :mod:`labelaudit.review.team`'s; this module only reads, calls and draws.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import streamlit as st

from components import state
from components.text import md_escape
from labelaudit.dataset import Dataset
from labelaudit.errors import UsageError
from labelaudit.review import team
from labelaudit.review.identity import Identity
from labelaudit.review.session import ADJUDICATE_MODE, QUEUE_MODE
from labelaudit.review.store import ReviewStore

#: The Review page's modes (leads see all three).
TEAM_MODE = "team"
MODE_LABELS = {QUEUE_MODE: "My queue", ADJUDICATE_MODE: "Adjudication", TEAM_MODE: "Team"}


def render_mode_picker(who: Identity, n_adjudication: int) -> str:
    """My queue / Adjudication / Team for a lead (a reviewer always gets their queue)."""
    if not who.is_lead:
        return QUEUE_MODE
    labels = dict(MODE_LABELS)
    labels[ADJUDICATE_MODE] = f"Adjudication ({n_adjudication:,})"
    mode = st.segmented_control(
        "View",
        list(labels),
        format_func=labels.__getitem__,
        default=QUEUE_MODE,
        key=state.REVIEW_MODE,
        label_visibility="collapsed",
    )
    return str(mode or QUEUE_MODE)


# --------------------------------------------------------------------------- the adjudication card
def render_blind_pair(pair: Sequence[Any]) -> None:
    """The two blind reviews of a disagreement, for the lead (plain text: names and comments are typed)."""
    st.markdown("**The two blind reviews**")
    rows = [
        {
            "reviewer": d.reviewer,
            "says": team.rating(d.action, d.new_label),
            "action": d.action,
            "comment": d.comment or "",
            "at": d.decided_at,
        }
        for d in pair
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    st.caption("Your decision is final: only a lead can change it afterwards.")


# --------------------------------------------------------------------------- the team panel
def _names(raw: str) -> list[str]:
    return [p.strip() for p in raw.replace("\n", ",").split(",") if p.strip()]


def render_team_panel(
    store: ReviewStore,
    ds: Dataset,
    who: Identity,
    *,
    sources: Mapping[str, Sequence[str]],
    clusters: Mapping[str, Sequence[str]] | None = None,
) -> None:
    """The lead's panel: create an assignment from one of ``sources`` (name -> ids in review order)
    or a cluster (``clusters``: name -> ids), close one, everyone's progress, agreement, the pairs."""
    h = ds.content_hash
    book = team.assignment_book(store, h)
    st.subheader("Assignments")
    with st.form("assign_form", border=True):
        choices = list(sources) + [f"cluster {c}" for c in (clusters or {})]
        c1, c2 = st.columns([3, 1])
        source = c1.selectbox("Items from", choices, key=state.ASSIGN_SOURCE)
        size = c2.number_input(
            "How many (from the top)",
            min_value=1,
            max_value=max(1, ds.n),
            value=min(200, max(1, ds.n)),
            step=50,
            key=state.ASSIGN_SIZE,
        )
        reviewers = st.text_input(
            "Reviewers (names or e-mail addresses, comma-separated, as they sign in)",
            key=state.ASSIGN_REVIEWERS,
        )
        c3, c4 = st.columns([1, 2])
        overlap = c3.slider(
            "Reviewed twice (blind), %",
            min_value=0,
            max_value=50,
            value=10,
            key=state.ASSIGN_OVERLAP,
            help="This share of the items goes to two reviewers; neither sees the other's decision. "
            "Disagreements go to your adjudication queue.",
        )
        name = c4.text_input("Name (optional)", key=state.ASSIGN_NAME)
        create = st.form_submit_button("Create assignment", type="primary", key=state.ASSIGN_CREATE)
    if create:
        if source.startswith("cluster ") and clusters:
            ids = list(clusters[source.removeprefix("cluster ")])
        else:
            ids = list(sources.get(source, ()))
        try:
            a = team.create_assignment(
                store,
                dataset_version=h,
                item_ids=ids[: int(size)],
                reviewers=_names(reviewers),
                overlap_share=overlap / 100.0,
                lead=who,
                name=name,
                source=source,
            )
        except UsageError as e:
            st.error(md_escape(str(e)), icon=":material/error:")
        else:
            st.success(md_escape("Created " + a.summary() + "."), icon=":material/check:")
            book = team.assignment_book(store, h)

    if book.assignments.empty:
        st.caption("No open assignments: everyone reviews the common queue.")
    else:
        st.markdown("**Open assignments**")
        for r in book.assignments.itertuples(index=False):
            c = st.columns([5, 1])
            c[0].text(
                f"#{r.assignment_id} {r.name}: {int(r.n_items):,} items for "
                f"{', '.join(r.reviewers)}; {int(r.n_overlap):,} reviewed twice; "
                f"from {r.source or 'a queue'}, by {r.created_by}"
            )
            if c[1].button(
                "Close",
                key=state.key_for(state.ASSIGN_CLOSE, r.assignment_id),
                help="Undecided items go back to the common queue; decisions stay.",
                width="stretch",
            ):
                try:
                    team.close_assignment(
                        store, dataset_version=h, assignment_id=int(r.assignment_id), lead=who
                    )
                except UsageError as e:
                    st.error(md_escape(str(e)), icon=":material/error:")
                else:
                    st.rerun()

    st.subheader("Progress per reviewer")
    overview = team.team_overview(store, h, book)
    if overview.empty:
        st.caption("Nobody holds assigned items.")
    else:
        st.dataframe(
            overview,
            hide_index=True,
            width="stretch",
            key=state.TEAM_OVERVIEW,
            column_config={
                "last_decision": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
            },
        )

    st.subheader("Agreement on the items reviewed twice")
    agree = team.team_agreement(store, h, classes=list(ds.classes))
    if not agree.n_items:
        st.caption(
            "No item has both blind reviews yet. Agreement (Cohen's kappa per pair of reviewers, raw "
            "agreement, per class) appears here as the pairs come in."
        )
    else:
        raw = agree.raw
        cols = st.columns(3)
        cols[0].metric("Items with both reviews", f"{agree.n_items:,}")
        cols[1].metric(
            "Raw agreement",
            "–" if raw.value is None else f"{raw.value:.0%}",
            help=raw.reason or None,
        )
        pairs = double_pairs = team.double_reviews(store, h)
        cols[2].metric("Waiting for you", f"{int((pairs['status'] == 'disagreed').sum()):,}")
        st.markdown("**Cohen's kappa per pair of reviewers**")
        st.dataframe(agree.pairs, hide_index=True, width="stretch", key=state.TEAM_PAIRS)
        if not agree.per_class.empty:
            st.markdown("**Agreement per class**")
            st.dataframe(
                agree.per_class, hide_index=True, width="stretch", key=state.TEAM_PER_CLASS
            )
        with st.expander(f"Every item reviewed twice ({len(double_pairs):,})"):
            st.dataframe(double_pairs, hide_index=True, width="stretch", key=state.TEAM_DOUBLE)
