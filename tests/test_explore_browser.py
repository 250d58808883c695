"""Real browser: box-select points on the Explore map and see the selected rows fill the table."""

from __future__ import annotations

import pytest

from labelaudit.scanning import scan
from tests.conftest import wait_for_app
from tests.test_scan import fakes, topic_dataset  # noqa: F401  (fixture)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_box_selection_fills_the_table_and_the_url(fakes, workspace, streamlit_server, page):  # noqa: F811
    ds = topic_dataset()
    scan(
        ds, workspace=workspace
    )  # stored: the server only loads it (its fakes are not needed there)
    server = streamlit_server(workspace=workspace.root, dataset=ds)
    page.goto(f"{server.url}/explore")  # directly, as a shared URL would
    wait_for_app(page)
    drag = page.locator("[data-testid='stPlotlyChart'] .nsewdrag").first
    drag.wait_for(timeout=60_000)
    page.get_by_text("Rows in view (120)").wait_for()
    box = drag.bounding_box()
    assert box is not None
    # A box over the whole plot area selects every point.
    x0, y0 = box["x"] + 3, box["y"] + 3
    x1, y1 = box["x"] + box["width"] - 3, box["y"] + box["height"] - 3
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move((x0 + x1) / 2, (y0 + y1) / 2, steps=10)
    page.mouse.move(x1, y1, steps=10)
    page.mouse.up()
    page.get_by_text("Selected rows (120)").wait_for(timeout=60_000)
    wait_for_app(page)
    assert page.locator("[data-testid='stException']").count() == 0, server.log()
    page.get_by_role("button", name="Send selection to review").wait_for()
    # The selection is in the URL, so the view can be shared.
    page.wait_for_function("() => window.location.search.includes('ids=r')")
