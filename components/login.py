"""Who is reviewing, on the page: the signed-in user or a typed name remembered by the browser.

With login configured (an ``[auth]`` table in ``.streamlit/secrets.toml``, docs/review.md), the
page shows *Sign in* (Streamlit's ``st.login``: OpenID Connect, the code flow with PKCE) and takes
the identity from ``st.user``; typed names are refused. Without it, the page asks for a name once
and the browser remembers it in a cookie (:data:`REVIEWER_COOKIE`), so a reload does not ask again.

The rules are :mod:`labelaudit.review.identity`'s: the role is derived from the identity on every
run, never read from the browser, so a URL or a session-state value cannot make anyone a lead.
A configuration that cannot work (a key missing, Authlib not installed) is named here, with the
file and the key, before anyone clicks *Sign in*.
"""

from __future__ import annotations

import importlib.util
import json
from typing import Any
from urllib.parse import quote, unquote

import streamlit as st

from components import state
from components.text import md_escape
from labelaudit.dataset import Dataset
from labelaudit.errors import UsageError
from labelaudit.review import team
from labelaudit.review.identity import (
    DEFAULT_PROVIDER,
    Identity,
    auth_config_problems,
    clean_name,
    login_providers,
    resolve_identity,
)
from labelaudit.review.store import ReviewStore

#: The cookie that remembers a typed reviewer name in the browser (a year; this site only).
REVIEWER_COOKIE = "labelaudit_reviewer"
COOKIE_SECONDS = 365 * 24 * 3600


def auth_section() -> dict[str, Any] | None:
    """The deployment's ``[auth]`` table (secrets), or None when login is not configured."""
    try:
        if "auth" not in st.secrets:
            return None
        return dict(st.secrets["auth"].to_dict())
    except Exception:  # no secrets file at all, or one Streamlit cannot parse
        return None


def login_configured() -> bool:
    """True when the deployment configures login (an ``[auth]`` section in its secrets)."""
    return auth_section() is not None


def login_problems(auth: dict[str, Any]) -> list[str]:
    """Why ``st.login`` cannot work with ``auth`` here (empty when it can)."""
    problems = auth_config_problems(auth)
    if importlib.util.find_spec("authlib") is None:
        problems.append(
            "Authlib is not installed: reinstall labelaudit (it depends on streamlit[auth]) or "
            "`pip install 'streamlit[auth]'`"
        )
    return problems


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


def _sign_in_buttons(auth: dict[str, Any]) -> None:
    providers = login_providers(auth)
    for name in providers:
        default = name == DEFAULT_PROVIDER
        st.button(
            "Sign in" if default or len(providers) == 1 else f"Sign in with {name}",
            type="primary",
            key=state.REVIEW_SIGN_IN if default else state.key_for(state.REVIEW_SIGN_IN, name),
            on_click=st.login,
            args=() if default else (name,),
        )


def known_identity() -> Identity | None:
    """Who is at the page, without asking or drawing anything: the signed-in user (``st.user``);
    without login configured, the typed name this session or this browser remembers; else None.
    For pages that record who did something but must not stop for it (the ROI page's findings).
    Claims that identify nobody (e.g. an unverified address) give None: the Review page says why."""
    ss = st.session_state
    typed = None
    if ss.get(state.REVIEWER_REMEMBERED) not in ("forget", "forgotten"):
        typed = ss.get(state.REVIEWER) or _cookie_name()
    try:
        return resolve_identity(
            login=login_claims(), login_configured=login_configured(), typed_name=typed
        )
    except UsageError:
        return None


def render_sign_in(reason: str) -> None:
    """With login configured and nobody signed in: why to sign in and the *Sign in* button(s), or
    what keeps login from working."""
    auth = auth_section()
    if auth is None:
        return
    problems = login_problems(auth)
    if problems:
        st.error(
            "Login is configured but cannot work yet:\n\n"
            + "\n".join(f"- {md_escape(p)}" for p in problems),
            icon=":material/error:",
        )
        return
    st.info(reason, icon=":material/login:")
    _sign_in_buttons(auth)


def render_identity() -> Identity:
    """Who is reviewing (shown at the top); stops the page until it is known.

    With login configured: the signed-in user, else a "Sign in" button (typed names are refused);
    a configuration that cannot work is named instead. Without: the name typed once and
    remembered in the browser.
    """
    ss = st.session_state
    auth = auth_section()
    configured = auth is not None
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
    except UsageError as e:  # claims that identify nobody: say why, and let them switch accounts
        st.error(md_escape(e), icon=":material/error:")
        if claims:
            st.button("Sign out", key=state.REVIEW_SIGN_OUT, on_click=st.logout)
        st.stop()
        raise AssertionError("unreachable") from None
    if who is None and auth is not None:
        problems = login_problems(auth)
        if problems:
            st.error(
                "Login is configured but cannot work yet. Fix the deployment's secrets, then "
                "restart the app:\n\n" + "\n".join(f"- {md_escape(p)}" for p in problems),
                icon=":material/error:",
            )
            st.stop()
        st.info("Sign in to review: every decision records who made it.", icon=":material/login:")
        _sign_in_buttons(auth)
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


def render_identities(store: ReviewStore, ds: Dataset) -> None:
    """The audit log's identities (lead's Team view): who decided, signed in or typed."""
    st.subheader("Who decided: signed in or typed")
    who = team.identities_in_log(store, ds.content_hash)
    if who.empty:
        st.caption("No decisions yet.")
        return
    n_typed = int(who.loc[who["auth"] != "oidc", "decisions"].sum())
    st.caption(
        "A signed-in identity was vouched for by the login provider (subject = issuer|sub); a "
        "typed name was not: anyone could have typed it."
        + (f" {n_typed:,} decisions in the log were not made signed in." if n_typed else "")
    )
    st.dataframe(
        who.drop(columns=["auth"]),
        hide_index=True,
        width="stretch",
        key=state.TEAM_IDENTITIES,
        column_config={
            "first_decision": st.column_config.DatetimeColumn("first decision (UTC)"),
            "last_decision": st.column_config.DatetimeColumn("last decision (UTC)"),
            "blind_reviews": st.column_config.NumberColumn("blind reviews"),
        },
    )
