"""Real browser: select points on the Explore map (a box on the Vega-Lite map it opens with, and a
box on the Plotly map the lasso toggle draws) and see the selected rows fill the table."""

from __future__ import annotations

import pytest

from labelaudit.scanning import scan
from tests.conftest import wait_for_app
from tests.test_scan import fakes, topic_dataset  # noqa: F401  (fixture)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def drag_over(page, box: dict, inset: float = 3) -> None:
    """A mouse drag from one corner of ``box`` (a bounding box) to the other."""
    x0, y0 = box["x"] + inset, box["y"] + inset
    x1, y1 = box["x"] + box["width"] - inset, box["y"] + box["height"] - inset
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move((x0 + x1) / 2, (y0 + y1) / 2, steps=10)
    page.mouse.move(x1, y1, steps=10)
    page.mouse.up()


@pytest.fixture
def explore(fakes, workspace, streamlit_server, page):  # noqa: F811
    ds = topic_dataset()
    scan(
        ds, workspace=workspace
    )  # stored: the server only loads it (its fakes are not needed there)
    server = streamlit_server(workspace=workspace.root, dataset=ds)
    page.goto(f"{server.url}/explore")  # directly, as a shared URL would
    wait_for_app(page)
    page.get_by_text("Rows in view (120)").wait_for(timeout=60_000)
    return server


def test_box_selection_fills_the_table_and_the_url(explore, page):
    # The map a page view opens with is Vega-Lite (no Plotly bundle): a canvas.
    chart = page.locator("[data-testid='stVegaLiteChart'] canvas").first
    chart.wait_for(timeout=60_000)
    assert page.locator("[data-testid='stPlotlyChart']").count() == 0
    box = chart.bounding_box()
    assert box is not None
    drag_over(page, box)  # a box over the whole map selects every point
    page.get_by_text("Selected rows (120)").wait_for(timeout=60_000)
    wait_for_app(page)
    assert page.locator("[data-testid='stException']").count() == 0, explore.log()
    page.get_by_role("button", name="Send selection to review").wait_for()
    # The selection is in the URL, so the view can be shared.
    page.wait_for_function("() => window.location.search.includes('ids=r')")


def test_the_lasso_toggle_draws_plotly_and_its_selection_fills_the_table(explore, page):
    page.get_by_text("Lasso selection", exact=False).first.click()
    drag = page.locator("[data-testid='stPlotlyChart'] .nsewdrag").first
    drag.wait_for(timeout=60_000)
    box = drag.bounding_box()
    assert box is not None
    drag_over(page, box)
    page.get_by_text("Selected rows (120)").wait_for(timeout=60_000)
    wait_for_app(page)
    assert page.locator("[data-testid='stException']").count() == 0, explore.log()
