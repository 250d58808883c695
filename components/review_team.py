"""Review as a team, on the page: who is reviewing, the lead's team panel, the adjudication card.

Who is reviewing (:func:`render_identity`): the signed-in user when the deployment configures
Streamlit's OpenID Connect login (``[auth]`` in ``.streamlit/secrets.toml``, docs/review.md), else a
typed name that the browser remembers in a cookie (:data:`REVIEWER_COOKIE`), so a reload does not
ask again. The role comes from :func:`labelaudit.review.identity.resolve_identity` on every run,
never from the browser: a URL or a session-state value cannot make anyone a lead.

The team panel (:func:`render_team_panel`, leads only) creates and closes assignments and shows
everyone's progress, the agreement on the items reviewed twice, and the pairs' status. The rules
are :mod:`labelaudit.review.team`'s; this module only reads, calls and draws.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote, unquote

import pandas as pd
import streamlit as st

from components import state
from components.text import md_escape
from labelaudit.dataset import Dataset
from labelaudit.errors import UsageError
from labelaudit.review import team
from labelaudit.review.identity import Identity, clean_name, resolve_identity
from labelaudit.review.session import ADJUDICATE_MODE, QUEUE_MODE
from labelaudit.review.store import ReviewStore

#: The cookie that remembers a typed reviewer name in the browser (a year; this site only).
REVIEWER_COOKIE = "labelaudit_reviewer"
COOKIE_SECONDS = 365 * 24 * 3600
#: The Review page's modes (leads see all three).
TEAM_MODE = "team"
MODE_LABELS = {QUEUE_MODE: "My queue", ADJUDICATE_MODE: "Adjudication", TEAM_MODE: "Team"}


# --------------------------------------------------------------------------- identity
def login_configured() -> bool:
    """True when the deployment configures login (an ``[auth]`` section in its secrets)."""
    try:
        return "auth" in st.secrets
    except Exception:  # no secrets file at all
        return False


def login_claims() -> dict[str, Any] | None:
    """The signed-in user's claims (``st.user``), or None when nobody is signed in."""
    try:
        user = st.user
        if getattr(user, "is_logged_in", False):
            return dict(user.to_dict())
    except Exception:  # an older Streamlit, or login not set up
        return None
    return None


def _cookie_name() -> str | None:
    try:
        raw = st.context.cookies.get(REVIEWER_COOKIE)
    except Exception:
        return None
    if not isinstance(raw, str) or not raw:  # (a test harness without a browser has no cookies)
        return None
    try:
        return clean_name(unquote(raw))
    except UsageError:
        return None


def _remember(name: str | None) -> None:
    """Set (or, with None, delete) the reviewer cookie in this browser."""
    value = "" if name is None else quote(name, safe="")
    age = 0 if name is None else COOKIE_SECONDS
    cookie = f"{REVIEWER_COOKIE}={value}; path=/; max-age={age}; SameSite=Strict"
    # json.dumps: the value is percent-encoded already; the quoting keeps the script literal intact.
    st.html(
        f"<script>document.cookie = {json.dumps(cookie)};</script>", unsafe_allow_javascript=True
    )


def _forget() -> None:
    ss = st.session_state
    ss.pop(state.REVIEWER, None)
    ss[state.REVIEWER_REMEMBERED] = "forget"


def render_identity() -> Identity:
    """Who is reviewing (shown at the top); stops the page until it is known.

    With login configured: the signed-in user, else a "Sign in" button (typed names are refused).
    Without: the name typed once and remembered in the browser.
    """
    ss = st.session_state
    configured = login_configured()
    claims = login_claims()
    if ss.get(state.REVIEWER_REMEMBERED) == "forget":
        _remember(None)
        ss[state.REVIEWER_REMEMBERED] = "forgotten"
        typed = ss.get(state.REVIEWER)
    else:
        typed = ss.get(state.REVIEWER) or (
            None if ss.get(state.REVIEWER_REMEMBERED) == "forgotten" else _cookie_name()
        )
    try:
        who = resolve_identity(login=claims, login_configured=configured, typed_name=typed)
    except UsageError as e:
        st.error(str(e), icon=":material/error:")
        st.stop()
        raise AssertionError("unreachable") from None
    if who is None and configured:
        st.info("Sign in to review: every decision records who made it.", icon=":material/login:")
        st.button("Sign in", type="primary", key=state.REVIEW_SIGN_IN, on_click=st.login)
        st.stop()
    if who is None:
        with st.form("reviewer_form"):
            name = st.text_input(
                "Your name (recorded with every decision; this browser remembers it)",
                key=state.REVIEWER_NAME_INPUT,
            )
            submitted = st.form_submit_button("Start reviewing", type="primary")
        if submitted:
            try:
                ss[state.REVIEWER] = clean_name(name)
            except UsageError as e:
                st.warning(f"{e}: enter a name first." if not name.strip() else str(e))
            else:
                st.rerun()
        st.stop()
        raise AssertionError("unreachable")
    if who.auth == "typed":
        ss[state.REVIEWER] = who.name
        if ss.get(state.REVIEWER_REMEMBERED) != who.name and _cookie_name() != who.name:
            _remember(who.name)
        ss[state.REVIEWER_REMEMBERED] = who.name
    return who


def render_identity_bar(who: Identity) -> None:
    """ "Reviewing as …" with how the name was established, and sign out / not you."""
    c = st.columns([5, 1])
    c[0].text(f"Reviewing as {who.describe()}")
    if who.auth == "oidc":
        c[1].button("Sign out", key=state.REVIEW_SIGN_OUT, on_click=st.logout, width="stretch")
    else:
        c[1].button(
            "Not you?",
            key=state.REVIEW_FORGET_NAME,
            on_click=_forget,
            width="stretch",
            help="Forget this name in this browser and ask again",
        )


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
