"""Real browser: accept a suggestion on the Review page and find it in the downloaded export."""

from __future__ import annotations

import pandas as pd
import pytest

from labelaudit.review.store import ReviewStore
from labelaudit.workspace import Workspace
from tests.conftest import wait_for_app
from tests.test_review_data import toy_dataset

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_accept_in_browser_then_export(streamlit_server, page, tmp_path, monkeypatch):
    monkeypatch.delenv("LABELAUDIT_DB_URL", raising=False)
    ds = toy_dataset()
    server = streamlit_server(workspace=tmp_path / "ws", dataset=ds)
    page.goto(server.url)
    wait_for_app(page)
    page.get_by_role("heading", name="Data").first.wait_for()
    page.get_by_role(
        "link", name="Review"
    ).first.click()  # through the navigation: app.py sets up the session
    wait_for_app(page)
    page.get_by_label("Your name").fill("Browser Bea")
    page.get_by_role("button", name="Start reviewing").click()
    wait_for_app(page)
    accept = page.get_by_role("button", name="Accept:")
    accept.wait_for()
    suggested = (
        accept.inner_text()
        .split("Accept:", 1)[1]
        .strip()
        .splitlines()[0]
        .replace("(= given)", "")
        .strip()
    )
    accept.click()
    page.get_by_text("Saved: accept").wait_for()
    wait_for_app(page)
    assert page.locator("[data-testid='stException']").count() == 0, server.log()

    store = ReviewStore(Workspace(tmp_path / "ws").database_url)
    log = store.log(ds.content_hash)
    assert log["action"].tolist() == ["accept"] and log.loc[0, "reviewer"] == "Browser Bea"
    item = log.loc[0, "item_id"]
    assert log.loc[0, "new_label"] == suggested

    page.get_by_text("Export", exact=True).click()
    with page.expect_download() as info:
        page.get_by_role("button", name="Cleaned dataset (CSV)").click()
    path = tmp_path / "download.csv"
    info.value.save_as(path)
    exported = pd.read_csv(path, keep_default_na=False).set_index("id")
    assert exported.loc[item, "final_label"] == suggested
    assert (
        exported.loc[item, "action"] == "accept" and exported.loc[item, "reviewer"] == "Browser Bea"
    )
    assert (exported["action"] != "").sum() == 1
    assert exported.loc["r3", "text"].startswith(
        "'=HYPERLINK"
    )  # formula neutralised in the download
