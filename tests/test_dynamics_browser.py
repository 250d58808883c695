"""Real browser: box-select on the data map fills the linked table; the Influence page explains a searched row."""

from __future__ import annotations

import pytest

from labelaudit.training_view import prepare
from tests.conftest import wait_for_app
from tests.test_dynamics_pages import make_dataset

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _open(page, server, path: str) -> None:
    # The root first: a first session opened directly on a page runs it without app.py's navigation.
    page.goto(server.url)
    page.get_by_role("heading", name="Data").first.wait_for(timeout=90_000)
    page.goto(f"{server.url}/{path}")
    wait_for_app(page)


def test_data_map_box_selection_fills_the_table(workspace, streamlit_server, page):
    ds = make_dataset()
    workspace.save_dataset(ds)
    prepare(ds, workspace, influence=False)  # stored: the page only loads
    server = streamlit_server(workspace=workspace.root, dataset=ds)
    _open(page, server, "dynamics")
    page.get_by_text("Rows in view (108, least confident first)").wait_for(timeout=60_000)
    drag = page.locator("[data-testid='stPlotlyChart'] .nsewdrag").first
    drag.wait_for(timeout=60_000)
    box = drag.bounding_box()
    assert box is not None
    x0, y0 = box["x"] + 2, box["y"] + 2
    x1, y1 = box["x"] + box["width"] - 2, box["y"] + box["height"] - 2
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move((x0 + x1) / 2, (y0 + y1) / 2, steps=10)
    page.mouse.move(x1, y1, steps=10)
    page.mouse.up()
    page.get_by_text("Selected (108, least confident first)").wait_for(timeout=60_000)
    wait_for_app(page)
    assert page.locator("[data-testid='stException']").count() == 0, server.log()


def test_influence_page_search_and_explain(workspace, streamlit_server, page):
    ds = make_dataset()
    workspace.save_dataset(ds)
    prepare(ds, workspace, influence=True)
    server = streamlit_server(workspace=workspace.root, dataset=ds)
    _open(page, server, "influence")
    page.get_by_text("positive = helpful").first.wait_for(timeout=60_000)
    page.get_by_label("Find a row by id or text").fill("r7")
    page.keyboard.press("Enter")
    wait_for_app(page)
    page.get_by_role("button", name="Explain this row").click()
    page.get_by_text("Proponents", exact=False).first.wait_for(timeout=60_000)
    page.get_by_text("Opponents", exact=True).wait_for()
    wait_for_app(page)
    assert page.locator("[data-testid='stException']").count() == 0, server.log()
    # The dataset's text is shown as plain text, never as HTML.
    assert page.get_by_text("<b>text</b> number 7").count() >= 1
