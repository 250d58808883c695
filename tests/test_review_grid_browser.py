"""Real browser: the Review card's typical rows, and grid mode (select rows in the data grid, decide
them in one step, undo them in one step)."""

from __future__ import annotations

import re

import pytest

from labelaudit.review.store import ReviewStore
from labelaudit.workspace import Workspace
from tests.conftest import wait_for_app
from tests.test_review_data import toy_dataset

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_typical_rows_and_grid_mode(streamlit_server, page, tmp_path, monkeypatch):
    monkeypatch.delenv("LABELAUDIT_DB_URL", raising=False)
    ds = toy_dataset()
    server = streamlit_server(workspace=tmp_path / "ws", dataset=ds)
    page.goto(server.url)
    wait_for_app(page)
    page.get_by_role("link", name="Review").first.click()
    wait_for_app(page)
    page.get_by_label("Your name").fill("Grid Gil")
    page.get_by_role("button", name="Start reviewing").click()
    wait_for_app(page)
    page.locator(".st-key-review_keep button").wait_for()
    # the first tab under the card: the typical rows of the given and the suggested class
    typical = page.get_by_text("(given", exact=False).first
    typical.wait_for()
    assert page.get_by_text("Typical rows: highest self-confidence").count() == 1

    page.get_by_text("Grid: decide many similar rows at once").click()
    grid = page.locator(".st-key-grid_table [data-testid='stDataFrame']")
    grid.wait_for()
    page.get_by_text(re.compile(r"^0 of \d+ rows selected")).wait_for()
    box = grid.bounding_box()
    assert box is not None
    for row in (0, 1):  # the row markers (checkbox column) of the first two rows
        page.mouse.click(box["x"] + 15, box["y"] + 35 + 35 * row + 17)
        wait_for_app(page)
    page.get_by_text(re.compile(r"^2 of \d+ rows selected")).wait_for()
    page.get_by_role("button", name="Apply to 2 selected rows").click()
    page.get_by_text("Saved 2 decisions").first.wait_for()
    wait_for_app(page)
    assert page.locator("[data-testid='stException']").count() == 0, server.log()
    store = ReviewStore(Workspace(tmp_path / "ws").database_url)
    log = store.log(ds.content_hash)
    assert log["action"].tolist() == ["accept", "accept"]
    assert all('"grid": true' in s for s in log["shown"]) and set(log["reviewer"]) == {"Grid Gil"}

    page.get_by_role("button", name="Undo the grid decision").click()
    page.get_by_text("Undone: the grid decision on 2 items").first.wait_for()
    wait_for_app(page)
    assert store.log(ds.content_hash)["action"].tolist()[-2:] == ["undo", "undo"]
    assert len(store.current(ds.content_hash)) == 0
    store.close()
