"""The Label issues page in a real Chromium: a click on a confusion-matrix square, or a box drawn
around it, lists that cell's rows (the matrix is Vega-Lite: no Plotly bundle on opening)."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from tests.conftest import vega_point, wait_for_app
from tests.test_label_issues_page import planted_dataset

#: Notes in the page when the app's script starts its next run (``window.__laRunSeen``): the
#: rerun a selection sends, which may start after the test's next call.
RUN_SEEN = """() => { window.__laRunSeen = false;
  const a = document.querySelector('[data-testid="stApp"]');
  new MutationObserver(() => {
    if (a.getAttribute('data-test-script-state') === 'running') window.__laRunSeen = true;
  }).observe(a, {attributes: true, attributeFilter: ['data-test-script-state']}); }"""


@pytest.mark.browser
@pytest.mark.slow
def test_click_on_confusion_cell_lists_its_rows(streamlit_server, page, tmp_path):
    from labelaudit.workspace import Workspace

    scan_mod = importlib.import_module("labelaudit.scanning")
    ds, _ = planted_dataset()
    ws = Workspace(tmp_path / "ws")
    h = ws.save_dataset(ds)
    orig = scan_mod._map_and_space
    scan_mod._map_and_space = lambda ds, emb, params, ws, progress, *_: (
        emb[:, :2].copy(),
        emb[:, :5].copy(),
    )
    try:  # the app's default scan options: every default detector
        res = scan_mod.scan(ws.load_dataset(h), workspace=ws, seed=0)
    finally:
        scan_mod._map_and_space = orig
    predicted = np.asarray(res.detection.pred_probs).argmax(axis=1)
    counts = np.zeros((ds.k, ds.k), dtype=int)
    np.add.at(counts, (ds.labels, predicted), 1)
    cells = [tuple(c) for c in np.argwhere(counts > 0)]  # the figure's point order
    point = max(
        (i for i, (g, p) in enumerate(cells) if g != p), key=lambda i: cells[i][0]
    )  # away from the modebar
    g, p = cells[point]

    server = streamlit_server(workspace=ws.root, dataset=h)
    page.goto(server.url)  # the entry script first: it sets up the session state
    wait_for_app(page)
    page.get_by_role("link", name="Label issues", exact=True).first.click()
    squares = page.locator("[data-testid='stVegaLiteChart'] g.mark-symbol").first.locator("path")
    squares.first.wait_for(timeout=120_000)
    wait_for_app(page)
    assert page.locator("[data-testid='stException']").count() == 0, server.log()
    assert page.locator("[data-testid='stPlotlyChart']").count() == 0
    page.screenshot(
        path=str(tmp_path / "label_issues.png"), full_page=True
    )  # kept for a failing run
    assert squares.count() == len(cells)  # one square per non-empty cell, in confusion_cells order
    frames_before = page.locator("[data-testid='stDataFrame']").count()
    # Where the square is, from the chart's Vega view once it is settled: a rerun can rebuild the
    # chart after the script has ended (its DOM elements are then new ones), so the square is
    # looked up again after every rerun and never held across one.
    at = vega_point(page, {"g": int(g), "p": int(p)})
    # A click on the square lists its rows.
    page.mouse.click(at["x"], at["y"])
    page.wait_for_function(
        f"() => document.querySelectorAll(\"[data-testid='stDataFrame']\").length > {frames_before}",
        timeout=60_000,
    )
    wait_for_app(page)
    assert page.locator("[data-testid='stException']").count() == 0, server.log()
    assert page.locator("[data-testid='stDataFrame']").count() == frames_before + 1
    assert page.get_by_text("question number").count() > 0
    page.get_by_text("Rows in the 1 square selected on the chart").wait_for()
    # A box drawn around it (from just outside one corner to the other) lists the same square.
    box = vega_point(page, {"g": int(g), "p": int(p)})["box"]
    page.evaluate(RUN_SEEN)
    page.mouse.move(box["x"] - 3, box["y"] - 3)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] + 3, box["y"] + box["height"] + 3, steps=5)
    page.mouse.up()
    page.wait_for_function("() => window.__laRunSeen === true", timeout=30_000)  # its rerun
    wait_for_app(page)
    page.get_by_text("Rows in the 1 square selected on the chart").wait_for(timeout=60_000)
    assert page.locator("[data-testid='stException']").count() == 0, server.log()
    assert page.locator("[data-testid='stDataFrame']").count() == frames_before + 1
