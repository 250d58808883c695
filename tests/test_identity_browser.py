"""Real browser, real login: Chromium signs in to the running app through the stub OpenID Connect
provider (tests/oidc_stub.py) with Streamlit's own st.login (Authlib: discovery, PKCE, the RS256
id_token checked against the JWKS), as a reviewer and as a lead.

One app and one provider for the module (both stopped also when a test fails): the app reads its
``[auth]`` table from a temporary secrets file (``--secrets.files``), as a deployment's
``.streamlit/secrets.toml``. Checked: the store records the signed-in identity (e-mail, ``oidc``,
the provider's ``iss|sub``) for every decision; the lead's audit view and decision log say which
identities were signed in and which typed; a reviewer reaches neither a lead action nor another
reviewer's assignment through the URL, a typed-name cookie or a forged login cookie; signing out
goes through the provider's end-session endpoint and ends the login.
"""

from __future__ import annotations

import io
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from labelaudit.review import team
from labelaudit.review.identity import Identity
from labelaudit.review.store import ReviewStore
from labelaudit.workspace import Workspace
from tests.conftest import StreamlitServer, free_port, wait_for_app
from tests.oidc_stub import OIDCStub, StubUser
from tests.test_review_data import toy_dataset

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ANA, BO, LEA = "ana@example.com", "bo@example.com", "lea@example.com"
ITEM_JS = """() => { const m = document.body.innerText.match(/Item (\\S+) · given label/);
  return m ? m[1] : null; }"""
DONE = "Nothing left to review"
USER_COOKIE = "_streamlit_user"
#: Where the provider's redirect lands in the end: the app's root (the app may add ?dataset=).
APP_ROOT = r"^http://127\.0\.0\.1:{port}/(\?.*)?$"


@dataclass
class Deployment:
    url: str
    stub: OIDCStub
    server: StreamlitServer
    store: ReviewStore
    version: str
    assigned: dict[str, list[str]]


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    root = tmp_path_factory.mktemp("oidc")
    ds = toy_dataset()
    ws = Workspace(root / "ws")
    h = ws.save_dataset(ds)
    port = free_port()
    redirect = f"http://127.0.0.1:{port}/oauth2callback"
    users = [StubUser(ANA, sub="s-ana"), StubUser(BO, sub="s-bo"), StubUser(LEA, sub="s-lea")]
    saved_db_url = os.environ.pop("LABELAUDIT_DB_URL", None)  # the workspace's own SQLite
    stub = OIDCStub([redirect], users).start()
    server = store = None
    try:
        secrets_file = root / ".streamlit" / "secrets.toml"
        secrets_file.parent.mkdir()
        secrets_file.write_text(stub.secrets_toml(redirect))
        store = ReviewStore(ws.database_url)
        # Before login was configured, someone typed a name and decided an item.
        store.record(
            dataset_version=h,
            item_id="r30",
            reviewer="bo",
            action="keep",
            old_label=ds.frame.loc[30, "label"],
            new_label=None,
            identity=Identity("bo", auth="typed"),
        )
        lead = Identity(LEA, auth="oidc", role="lead", subject=f"{stub.issuer}|s-lea")
        team.create_assignment(
            store,
            dataset_version=h,
            item_ids=[f"r{i}" for i in range(10, 16)],
            reviewers=[ANA, BO],
            overlap_share=0.0,
            lead=lead,
        )
        book = team.assignment_book(store, h)
        server = StreamlitServer(
            ws.root,
            h,
            env={"LABELAUDIT_LEADS": LEA},
            args=["--secrets.files", str(secrets_file)],
            port=port,
        )
        yield Deployment(
            server.url, stub, server, store, h, {n: book.queue_for(n) for n in (ANA, BO)}
        )
    finally:
        if server is not None:
            server.stop()
        stub.stop()
        if store is not None:
            store.close()
        if saved_db_url is not None:
            os.environ["LABELAUDIT_DB_URL"] = saved_db_url


def new_page(browser):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    page = ctx.new_page()
    page.set_default_timeout(60_000)
    return ctx, page


def open_review(page, dep: Deployment) -> None:
    page.goto(f"{dep.url}/review")
    wait_for_app(page)


def sign_in(browser, dep: Deployment, email: str):
    """A fresh browser that clicks Sign in on the Review page and consents at the provider as
    ``email``; returns (context, page) back on the Review page, signed in."""
    dep.stub.next_user = email
    ctx, page = new_page(browser)
    open_review(page, dep)
    assert page.get_by_label("Your name").count() == 0  # login configured: no typed names
    n_tokens = len(dep.stub.of("token"))
    page.get_by_role("button", name="Sign in").click()
    # app -> /auth/login -> the provider's /authorize -> /oauth2callback -> the app's root
    page.wait_for_url(re.compile(APP_ROOT.format(port=dep.server.port)))
    assert len(dep.stub.of("token")) == n_tokens + 1
    wait_for_app(page)
    open_review(page, dep)
    page.get_by_text(f"Reviewing as {email} (signed in").wait_for()
    # The login lives in Streamlit's signed, HTTP-only cookie (what the forged-cookie test imitates).
    assert [c["httpOnly"] for c in ctx.cookies() if c["name"] == USER_COOKIE] == [True]
    assert dep.stub.of("authorize")[-1] == {
        "user": email,
        "pkce": True,
        "scope": ["openid", "email", "profile"],
    }
    assert dep.stub.of("token")[-1] == {"status": 200, "error": None, "pkce": True}
    return ctx, page


def current_item(page) -> str | None:
    page.wait_for_function(
        f"() => {{ const f = {ITEM_JS}; return f() !== null || "
        f"document.body.innerText.includes({json.dumps(DONE)}); }}"
    )
    return page.evaluate(ITEM_JS)


def decide(page, button: str = "Keep given label") -> str:
    item = current_item(page)
    assert item is not None
    page.get_by_role("button", name=button).click()
    page.wait_for_function(
        f"() => {{ const f = {ITEM_JS}; return f() !== {json.dumps(item)} || "
        f"document.body.innerText.includes({json.dumps(DONE)}); }}"
    )
    return item


def no_lead_actions(page) -> None:
    for text in ("Bulk decision", "Export", "Label Studio", "Queue settings"):
        assert page.get_by_text(text, exact=False).count() == 0, text
    assert page.get_by_text("Team", exact=True).count() == 0
    assert page.get_by_text("Adjudication", exact=False).count() == 0


def test_a_signed_in_reviewer_is_recorded_and_held_to_their_own_assignment(browser, deployment):
    dep = deployment
    ctx, page = sign_in(browser, dep, ANA)
    try:
        page.get_by_text(f"Reviewing as {ANA} (signed in)", exact=True).wait_for()
        page.get_by_text("Your assignment").wait_for()
        no_lead_actions(page)

        first = decide(page)
        assert first in dep.assigned[ANA]
        d = dep.store.log(dep.version).set_index("item_id").loc[first]
        assert (d.reviewer, d.auth, d.role, d.subject) == (
            ANA,
            "oidc",
            "reviewer",
            f"{dep.stub.issuer}|s-ana",
        )

        # Nothing in the URL or in a cookie the browser can write changes who this is.
        page.context.add_cookies(
            [{"name": "labelaudit_reviewer", "value": "lea%40example.com", "url": dep.url}]
        )
        page.goto(
            f"{dep.url}/review?review_mode=team&mode=adjudicate&role=lead"
            f"&reviewer={LEA}&item={dep.assigned[BO][0]}"
        )
        wait_for_app(page)
        page.get_by_text(f"Reviewing as {ANA} (signed in)", exact=True).wait_for()
        no_lead_actions(page)
        seen = [first]
        while (item := current_item(page)) is not None:
            assert item not in dep.assigned[BO], "another reviewer's item reached ana"
            seen.append(decide(page))
        assert sorted(seen) == sorted(dep.assigned[ANA])
        log = dep.store.log(dep.version)
        mine = log[log["reviewer"] == ANA]
        assert sorted(mine["item_id"]) == sorted(dep.assigned[ANA])
        assert set(mine["auth"]) == {"oidc"} and set(mine["role"]) == {"reviewer"}
        assert page.locator("[data-testid='stException']").count() == 0, dep.server.log()

        # Signing out goes through the provider's end-session endpoint and ends the login.
        page.get_by_role("button", name="Sign out").click()
        # Wait for the provider to see the end-session request: right after the click the page can
        # still be on the app's path, so waiting for the path alone raced the redirect (flaky).
        deadline = time.monotonic() + 30
        while not dep.stub.of("logout") and time.monotonic() < deadline:
            page.wait_for_timeout(100)
        page.wait_for_function(
            "() => !location.pathname.startsWith('/auth') && !location.pathname.startsWith('/oauth2')"
        )
        wait_for_app(page)
        assert dep.stub.of("logout")[-1]["user"] == ANA
        assert not [c for c in page.context.cookies() if c["name"].startswith(USER_COOKIE)]
        open_review(page, dep)
        page.get_by_role("button", name="Sign in").wait_for()
        assert page.get_by_text("Reviewing as").count() == 0
    finally:
        ctx.close()


def test_a_forged_login_cookie_is_not_a_login(browser, deployment):
    dep = deployment
    ctx, page = new_page(browser)
    try:
        forged = json.dumps(
            {"email": LEA, "sub": "s-lea", "iss": dep.stub.issuer, "is_logged_in": True}
        )
        page.context.add_cookies([{"name": USER_COOKIE, "value": forged, "url": dep.url}])
        open_review(page, dep)
        page.get_by_role("button", name="Sign in").wait_for()
        assert page.get_by_text("Reviewing as").count() == 0
    finally:
        ctx.close()


def test_a_signed_in_lead_sees_who_was_signed_in_and_who_typed(browser, deployment):
    dep = deployment
    ctx, page = sign_in(browser, dep, LEA)
    try:
        page.get_by_text(f"Reviewing as {LEA} (signed in, lead)", exact=True).wait_for()
        item = decide(page, "Keep given label")
        d = dep.store.log(dep.version).set_index("item_id").loc[item]
        assert (d.reviewer, d.auth, d.role, d.subject) == (
            LEA,
            "oidc",
            "lead",
            f"{dep.stub.issuer}|s-lea",
        )

        # The decision log the lead downloads says how every reviewer was identified.
        page.get_by_text("Export", exact=True).click()
        with page.expect_download() as dl:
            page.get_by_role("button", name="Decision log (CSV)").click()
        log = pd.read_csv(io.BytesIO(Path(dl.value.path()).read_bytes()), keep_default_na=False)
        by_reviewer = log.groupby("reviewer")["auth"].agg(set).to_dict()
        assert by_reviewer["bo"] == {"typed"}
        assert by_reviewer[LEA] == {"oidc"}
        signed = log[log["auth"] == "oidc"]
        assert (signed["subject"].str.startswith(f"{dep.stub.issuer}|s-")).all()
        assert (log.loc[log["auth"] == "typed", "subject"] == "").all()

        # The Team view names the identities of the log, signed in or typed.
        page.get_by_text("Team", exact=True).click()
        page.get_by_text("Who decided: signed in or typed").wait_for()
        page.get_by_text("1 decisions in the log were not made signed in").wait_for()
        assert page.locator("[data-testid='stException']").count() == 0, dep.server.log()
        got = team.identities_in_log(dep.store, dep.version)
        identified = dict(zip(got["reviewer"], got["identified"], strict=True))
        assert identified[LEA] == "signed in" and identified["bo"] == "typed, not verified"
        assert identified.get(ANA, "signed in") == "signed in"  # when the reviewer test ran
    finally:
        ctx.close()
