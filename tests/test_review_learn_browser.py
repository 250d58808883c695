"""Real browser: the lead re-ranks the queue on demand and switches audit mode on (issue 13)."""

from __future__ import annotations

import time

import pytest

from labelaudit.review import adaptive
from tests.conftest import wait_for_app
from tests.test_review_team_browser import open_review
from tests.test_review_team_page import scanned  # noqa: F401 (a stored synthetic scan)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_rerank_and_audit_from_the_queue_settings(scanned, streamlit_server, browser):  # noqa: F811
    ws, ds, h, store = scanned
    server = streamlit_server(workspace=ws.root, dataset=h, env={"LABELAUDIT_LEADS": "lea"})
    ctx, page = open_review(browser, server.url, "lea")
    page.get_by_text("Ranking in force: static").wait_for()
    page.get_by_text("Track record so far").wait_for()
    for _ in range(3):
        item = page.evaluate("() => document.body.innerText.match(/Item (\\S+) · given/)[1]")
        page.get_by_role("button", name="Keep given label").click()
        page.wait_for_function(
            "(old) => { const m = document.body.innerText.match(/Item (\\S+) · given/); "
            "return m && m[1] !== old; }",
            arg=item,
        )
    wait_for_app(page)
    page.get_by_role("button", name="Queue settings").first.click()
    page.get_by_role("button", name="Re-rank now").click()
    page.get_by_text("on demand, by lea").wait_for()
    rec = adaptive.latest_ranking(store, h)
    assert rec is not None and rec.trigger == "on demand" and rec.cutoff_decision_id == 3
    wait_for_app(page)
    page.get_by_role("button", name="Queue settings").first.click()
    page.get_by_role("button", name="Start audit").click()
    deadline = time.monotonic() + 60
    while adaptive.load_settings(store, h).audit_share == 0 and time.monotonic() < deadline:
        time.sleep(0.3)
    assert adaptive.load_settings(store, h).audit_share == pytest.approx(0.05)
    wait_for_app(page)
    page.reload()  # a fresh session: the popover starts closed, the name is remembered
    wait_for_app(page)
    page.get_by_role("button", name="Queue settings").first.click()
    page.get_by_text("on: 5% of the queue").wait_for()
    assert page.locator("[data-testid='stException']").count() == 0, server.log()
    ctx.close()
