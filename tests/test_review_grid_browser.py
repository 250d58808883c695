"""Real browser: the Review card's typical rows, and the grid mode's table. (Selecting rows in the
grid and applying a decision is tested with AppTest in test_review_page.py; a browser test of the
click on the grid's row markers is still to do.)"""

from __future__ import annotations

import re

import pytest

from tests.conftest import wait_for_app
from tests.test_review_data import toy_dataset

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_typical_rows_and_grid_table(streamlit_server, page, tmp_path, monkeypatch):
    monkeypatch.delenv("LABELAUDIT_DB_URL", raising=False)
    ds = toy_dataset()
    server = streamlit_server(workspace=tmp_path / "ws", dataset=ds)
    page.goto(server.url + "/review")  # a page URL opened directly
    wait_for_app(page)
    page.get_by_label("Your name").fill("Grid Gil")
    page.get_by_role("button", name="Start reviewing").click()
    wait_for_app(page)
    page.locator(".st-key-review_keep button").wait_for()
    # the first tab under the card: the typical rows of the given and the suggested class
    typical = page.get_by_text("(given", exact=False).first
    typical.wait_for()
    assert page.get_by_text("Typical rows: highest self-confidence").count() == 1

    # the grid under the card: its rows in a data grid with row selection
    page.get_by_text("Grid: decide many similar rows at once").click()
    page.locator(".st-key-grid_table [data-testid='stDataFrame']").wait_for()
    page.get_by_text(re.compile(r"^0 of \d+ rows selected")).wait_for()
    assert page.locator("[data-testid='stException']").count() == 0, server.log()
