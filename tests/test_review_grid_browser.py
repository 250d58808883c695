"""Real browser: the Review card's typical rows, and the grid mode: its table, ticking rows on its
canvas, Apply (the outcome where the click was, a fresh selection) and Undo. The grid's logic is
also tested with AppTest in test_review_page.py and test_review_grid.py."""

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
    page.locator("[class*='st-key-grid_table'] [data-testid='stDataFrame']").wait_for()
    page.get_by_text(re.compile(r"^0 of \d+ rows selected")).wait_for()
    assert page.locator("[data-testid='stException']").count() == 0, server.log()


GRID = "[class*='st-key-grid_table'] [data-testid='stDataFrame']"


def _grid(page):
    """The grid's data table, once the page holds one: after a decision or an undo the table is
    drawn under a new key (a fresh selection), and until the rerun has finished the browser may
    still hold the previous one beside it (seen at load ~12: two tables, a strict-mode error)."""
    page.wait_for_function(
        f"() => document.querySelectorAll({GRID!r}).length === 1", timeout=60_000, polling=50
    )
    return page.locator(GRID)


def _open_grid(page, server) -> None:
    page.goto(server.url + "/review")
    wait_for_app(page)
    page.get_by_label("Your name").fill("Grid Gil")
    page.get_by_role("button", name="Start reviewing").click()
    wait_for_app(page)
    page.locator(".st-key-review_keep button").wait_for()
    page.get_by_text("Grid: decide many similar rows at once").click()
    _grid(page).wait_for()
    page.get_by_text(re.compile(r"^0 of \d+ rows selected")).wait_for()


def _select_rows(page, rows: list[int]) -> None:
    """Tick the row markers of the grid (a canvas: clicked where the first column's rows are)."""
    grid = _grid(page)
    grid.hover()  # the row markers show on hover
    box = grid.bounding_box()
    assert box is not None
    for i, r in enumerate(rows):
        # header 35 px, then 35 px per row; the marker column is the first ~30 px
        page.mouse.click(box["x"] + 15, box["y"] + 35 + 35 * r + 17)
        page.get_by_text(re.compile(rf"^{i + 1} of \d+ rows selected")).wait_for()


def _in_view(page, locator) -> bool:
    box = locator.bounding_box()
    return (
        box is not None
        and box["y"] >= 0
        and box["y"] + box["height"] <= page.viewport_size["height"]
    )


def test_grid_apply_says_saved_where_the_click_was(streamlit_server, page, tmp_path, monkeypatch):
    # Before: "Saved" was drawn above the table and above the card, both scrolled out of view,
    # and the browser kept the ticked row positions, so after a decision the rows that moved up
    # showed ticked (and went with the next click) although nobody picked them.
    monkeypatch.delenv("LABELAUDIT_DB_URL", raising=False)
    ds = toy_dataset()
    server = streamlit_server(workspace=tmp_path / "ws", dataset=ds)
    _open_grid(page, server)
    rows = page.locator("[class*='st-key-grid_table'] [role=row]")
    _grid(page).hover()
    rows.nth(3).wait_for(state="attached")
    first_ids = [t.split("query")[0].split("<b>")[0] for t in rows.all_inner_texts()[1:4]]
    assert first_ids == ["r35", "r4", "r22"]  # r35 is in the protected test split
    _select_rows(page, [1, 2])
    apply = page.get_by_role("button", name="Apply to 2 selected rows")
    apply.click()
    saved = page.get_by_text(re.compile(r"^Saved 2 decisions \(accept\)"))
    saved.first.wait_for(timeout=30_000)
    wait_for_app(page)
    grid_box = page.locator("[data-testid='stExpander']", has_text="Grid: decide many similar rows")
    in_grid = grid_box.get_by_text(re.compile(r"^Saved 2 decisions"))
    in_grid.wait_for()  # the one above the card is drawn first, in the same run
    assert in_grid.count() == 1 and _in_view(page, in_grid), in_grid.bounding_box()
    from labelaudit.review.store import ReviewStore
    from labelaudit.workspace import Workspace

    store = ReviewStore(Workspace(tmp_path / "ws").database_url)
    try:
        assert store.log(ds.content_hash)["item_id"].tolist() == ["r4", "r22"]
    finally:
        store.close()
    # the decided rows left the grid and nothing is ticked: one more tick selects one row
    page.get_by_text(re.compile(r"^0 of 38 rows selected")).wait_for()
    _grid(page).hover()
    rows.nth(3).wait_for(state="attached")
    assert not {"r4", "r22"} & {t.split("query")[0] for t in rows.all_inner_texts()[1:4]}
    page.mouse.move(5, 5)  # off the data grid
    # undo is one step for the whole grid decision, also said where the click was
    page.get_by_role("button", name="Undo the grid decision").click()
    undone = grid_box.get_by_text(re.compile(r"^Undone: the grid decision on 2 items"))
    undone.wait_for(timeout=30_000)
    assert _in_view(page, undone)
    wait_for_app(page)
    # the rows are back (40, as before the decision) and nothing is ticked, and the grid stays
    # open: one tick selects one row, not three
    page.get_by_text(re.compile(r"^0 of 40 rows selected")).wait_for()
    _select_rows(page, [1])  # waits for "1 of N rows selected"
    assert page.get_by_text(re.compile(r"^1 of 40 rows selected")).is_visible()
    assert page.locator("[data-testid='stException']").count() == 0, server.log()
