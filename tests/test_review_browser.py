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


def test_pin_and_go_to_are_dialogs(streamlit_server, page, tmp_path, monkeypatch):
    """The "Pin finding" and "Go to…" buttons open dialogs (their widgets are not on the card
    until then): a pin closes its dialog and says so on the card; a dismissed dialog stays closed
    through the next decision; an unknown id is said in the dialog, which stays open; a decided
    item is shown."""
    monkeypatch.delenv("LABELAUDIT_DB_URL", raising=False)
    ds = toy_dataset()
    server = streamlit_server(workspace=tmp_path / "ws", dataset=ds)
    page.goto(server.url)
    wait_for_app(page)
    page.get_by_role("link", name="Review").first.click()
    wait_for_app(page)
    page.get_by_label("Your name").fill("Dee")
    page.get_by_role("button", name="Start reviewing").click()
    wait_for_app(page)
    dialog = page.locator("[role='dialog']")
    page.get_by_role("button", name="Keep given label").wait_for()
    assert page.get_by_label("Note for the ROI report").count() == 0

    page.get_by_role("button", name="Pin finding").click()
    dialog.get_by_label("Note for the ROI report").fill("a finding")
    dialog.get_by_label("Note for the ROI report").press("Enter")
    wait_for_app(page)
    dialog.get_by_role("button", name="Pin this item").click()
    page.get_by_text("Pinned item").wait_for()
    dialog.wait_for(state="detached")
    store = ReviewStore(Workspace(tmp_path / "ws").database_url)
    assert store.findings(ds.content_hash)["note"].tolist() == ["a finding"]

    page.get_by_role("button", name="Keep given label").click()
    page.get_by_text("Saved: keep").wait_for()
    wait_for_app(page)
    page.get_by_role("button", name="Go to…").click()
    dialog.get_by_label("Or any item id").wait_for()
    page.keyboard.press("Escape")  # dismissed
    dialog.wait_for(state="detached")
    wait_for_app(page)
    page.get_by_role("button", name="Skip").click()
    wait_for_app(page)
    assert dialog.count() == 0  # the next run of the card did not open it again

    page.get_by_role("button", name="Go to…").click()
    dialog.get_by_label("Or any item id").fill("no-such-id")
    dialog.get_by_label("Or any item id").press("Enter")
    wait_for_app(page)
    dialog.get_by_role("button", name="Show it").click()
    dialog.get_by_text("No row with id").wait_for()
    (decided,) = store.log(ds.content_hash)["item_id"].tolist()
    dialog.get_by_label("Or any item id").fill(decided)
    dialog.get_by_label("Or any item id").press("Enter")
    wait_for_app(page)
    dialog.get_by_role("button", name="Show it").click()
    dialog.wait_for(state="detached")
    page.get_by_text("Decided already: keep").wait_for()
    assert page.locator("[data-testid='stException']").count() == 0, server.log()
    store.close()
