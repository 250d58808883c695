"""Real browser: box-select on the data map fills the linked table; the Influence page explains a searched row."""

from __future__ import annotations

import pytest

from labelaudit.training_view import prepare
from tests.conftest import wait_for_app
from tests.test_dynamics_pages import make_dataset
from tests.test_explore_browser import drag_over

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _open(page, server, path: str) -> None:
    # The root first: a first session opened directly on a page runs it without app.py's navigation.
    page.goto(server.url)
    page.get_by_role("heading", name="Data").first.wait_for(timeout=90_000)
    page.goto(f"{server.url}/{path}")
    wait_for_app(page)


@pytest.mark.parametrize("lasso", [False, True], ids=["vega-lite box", "plotly (lasso toggle)"])
def test_data_map_box_selection_fills_the_table(workspace, streamlit_server, page, lasso):
    ds = make_dataset()
    workspace.save_dataset(ds)
    prepare(ds, workspace, influence=False)  # stored: the page only loads
    server = streamlit_server(workspace=workspace.root, dataset=ds)
    _open(page, server, "dynamics")
    page.get_by_text("Rows in view (108, least confident first)").wait_for(timeout=60_000)
    if lasso:
        page.get_by_text("Lasso selection", exact=False).first.click()
        drag = page.locator("[data-testid='stPlotlyChart'] .nsewdrag").first
    else:  # the map a page view opens with: Vega-Lite, no Plotly bundle
        drag = page.locator("[data-testid='stVegaLiteChart'] canvas").first
    drag.wait_for(timeout=60_000)
    assert page.locator("[data-testid='stPlotlyChart']").count() == (1 if lasso else 0)
    box = drag.bounding_box()
    assert box is not None
    if lasso:
        drag_over(page, box, inset=2)
    else:
        # Vega-Lite starts a box inside the plot only (the canvas holds the axes too): from the
        # plot's bottom-right corner, above the x axis (its labels and title: ~75 px), to beyond
        # its top-left corner
        x0, y0 = box["x"] + box["width"] - 6, box["y"] + box["height"] - 80
        page.mouse.move(x0, y0)
        page.mouse.down()
        page.mouse.move(x0 - 200, y0 - 200, steps=10)
        page.mouse.move(box["x"] + 1, box["y"] + 1, steps=10)
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
