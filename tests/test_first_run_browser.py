"""The first ten minutes in a real browser (issue 16), one server for the module: the scan starts
on its own with its progress in the sidebar and an open status box, the page fills in without a
button, the dataset stays in the URL across pages and reloads, data strings stay text on the
charts, an unknown page says so, no Deploy button."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from tests.conftest import StreamlitServer, vega_point, wait_for_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]

EVIL_CLASS = '<a href="http://evil.example">fraud</a>'
EVIL_ID = "r298`[pwn](http://evil.example)`"


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from labelaudit.io import load_dataset
    from labelaudit.workspace import Workspace

    rng = np.random.default_rng(0)
    n = 150
    labels = np.arange(n) % 3
    emb = np.hstack(
        [np.eye(3)[labels] * 3 + rng.normal(size=(n, 3)), rng.normal(size=(n, 5))]
    ).astype(np.float32)
    classes = [EVIL_CLASS, "refund", "top up"]
    frame = pd.DataFrame(
        {
            "id": [EVIL_ID if i == 1 else f"q{i}" for i in range(n)],
            "text": [f"question {i} about {classes[c]}" for i, c in enumerate(labels)],
            "label": [classes[c] for c in labels],
            "split": ["test" if i % 5 == 0 else "train" for i in range(n)],
        }
    )
    ws = Workspace(tmp_path_factory.mktemp("first_run") / "ws")
    h = ws.save_dataset(load_dataset(frame, embeddings=emb))
    server = StreamlitServer(ws.root, None, {"LABELAUDIT_SCAN_RUNNER": "process"})
    yield server, h
    server.stop()


def test_the_scan_starts_on_its_own_and_the_page_fills_in(app, page):
    server, h = app
    page.goto(f"{server.url}/explore?dataset={h}")
    wait_for_app(page)
    sidebar = page.locator("[data-testid='stSidebar']")
    # While it runs: the sidebar and the page both show the live bar (before, the page's box showed
    # a tick and collapsed at once, so its bar was never seen).
    running = page.get_by_text("is being scanned in the background")
    if running.count():
        main = page.locator("[data-testid='stMain']")
        main.locator("[data-testid='stProgress']").first.wait_for(timeout=30_000)
        assert (
            main.locator("[data-testid='stExpander'] details:not([open])").count() <= 1
        )  # settings only
        sidebar.get_by_text("Scan running in the background").wait_for(timeout=30_000)
    assert page.get_by_role("button", name="Run scan").count() == 0
    # No click: the map appears when the background scan is stored.
    page.locator("[data-testid='stVegaLiteChart'] canvas").first.wait_for(timeout=600_000)
    sidebar.get_by_text("Scan stored").wait_for(timeout=30_000)
    assert page.locator("[data-testid='stException']").count() == 0, server.log()
    assert f"dataset={h}" in page.url


def test_the_dataset_stays_in_the_url_across_pages_and_reloads(app, page):
    server, h = app
    page.goto(f"{server.url}/?dataset={h}")
    wait_for_app(page)
    page.get_by_role("link", name="Label issues").first.click()
    wait_for_app(page)
    page.get_by_text("Rows needing review").first.wait_for(timeout=60_000)
    assert f"dataset={h}" in page.url
    page.reload()
    wait_for_app(page)
    page.get_by_text("Rows needing review").first.wait_for(timeout=60_000)
    assert page.get_by_text("Load a dataset first").count() == 0


def test_class_names_with_markup_stay_text_on_the_charts(app, page):
    server, h = app
    page.goto(f"{server.url}/?dataset={h}")
    wait_for_app(page)
    chart = page.locator("[data-testid='stVegaLiteChart']").first
    chart.wait_for(timeout=60_000)
    chart.locator("svg .mark-text, svg text").first.wait_for(timeout=60_000)
    # Before: Plotly turned the class name into a live link on the class-balance axis. Vega draws
    # it as SVG text.
    assert page.locator("a[href*='evil.example']").count() == 0
    ticks = chart.locator("svg text").evaluate_all("els => els.map(e => e.textContent || '')")
    assert any(EVIL_CLASS in t for t in ticks), ticks
    # its tooltip shows the name as text too
    chart.locator("svg .mark-rect path").first.hover()
    assert page.locator("a[href*='evil.example']").count() == 0


#: The tooltip of a Vega chart (vega-tooltip's element), its text and whether it holds a link.
TOOLTIP = """() => { const t = document.getElementById('vg-tooltip-element');
  return t && t.classList.contains('visible')
    ? {text: t.textContent, links: t.querySelectorAll('a').length, html: t.innerHTML} : null; }"""


def _tooltip_of(page, match: dict, shown: str) -> dict:
    """Hovers the item whose datum has ``match``'s fields (its place read from the chart's Vega
    view, see :func:`tests.conftest.vega_point`) and returns its tooltip once one shows ``shown``:
    a plain part of the string under test, in the tooltip's text whether the string is kept as
    text or (the bug) rendered as markup."""
    at = vega_point(page, match)
    page.mouse.move(at["x"] - 6, at["y"] - 6)
    page.mouse.move(at["x"], at["y"], steps=3)
    page.wait_for_function(
        f"() => {{ const t = ({TOOLTIP})(); return t && t.text.includes({shown!r}); }}",
        timeout=10_000,
    )
    return page.evaluate(TOOLTIP)


@pytest.mark.parametrize(
    "path", ["explore", "label_issues", "dynamics"], ids=["map", "confusion matrix", "data map"]
)
def test_class_names_and_ids_with_markup_stay_text_on_the_selection_charts(app, page, path):
    """The charts a page opens with (Vega-Lite, with selections): the class name with a link and
    the id with markdown are text on the axis (SVG) and in the tooltip, never a link."""
    server, h = app
    page.goto(f"{server.url}/?dataset={h}")
    wait_for_app(page)
    page.locator("[data-testid='stSidebar']").get_by_text("Scan stored").wait_for(timeout=600_000)
    page.goto(f"{server.url}/{path}?dataset={h}")
    wait_for_app(page)
    if path == "label_issues":
        chart = page.locator("[data-testid='stVegaLiteChart']").filter(
            has=page.locator("g.mark-symbol")
        )
        chart.locator("g.mark-symbol path").first.wait_for(timeout=60_000)
        labels = chart.locator(".role-axis-label text").evaluate_all(
            "els => els.map(e => e.textContent || '')"
        )
        assert labels.count(EVIL_CLASS) >= 2, labels  # on the given and the predicted axis
        tip = _tooltip_of(page, {"given": EVIL_CLASS}, "fraud")
    else:
        page.locator("[data-testid='stVegaLiteChart'] canvas").first.wait_for(timeout=60_000)
        tip = _tooltip_of(page, {"label": EVIL_CLASS}, "fraud")
    assert EVIL_CLASS in tip["text"] and tip["links"] == 0, tip
    assert page.locator("a[href*='evil.example']").count() == 0
    if path != "label_issues":  # the tooltip names the row by its id, as text: the id with
        # markdown stays a literal string (no code element, no link)
        tip = _tooltip_of(page, {"id": EVIL_ID}, "r298")
        assert EVIL_ID in tip["text"], tip
        assert "<code>" not in tip["html"] and tip["links"] == 0, tip
    assert page.locator("[data-testid='stException']").count() == 0, server.log()


def test_an_unknown_page_says_so_and_there_is_no_deploy_button(app, page):
    server, h = app
    page.goto(f"{server.url}/reveiw?dataset={h}")
    wait_for_app(page)
    page.get_by_text(re.compile("There is no page")).wait_for(timeout=60_000)
    assert page.get_by_role("button", name="Deploy").count() == 0


@pytest.mark.parametrize(
    "path, heading",
    [("a/b", "There is no page"), ("review/42", "There is no page"), ("review/", None)],
    ids=["nested unknown", "under a real page", "trailing slash"],
)
def test_a_nested_page_url_renders_instead_of_a_blank_page(app, page, path, heading):
    """Streamlit alone answers /a/b with its index.html, whose scripts are linked relative to the
    page (./static/js/... -> /a/static/js/..., again index.html): a white page and no word.
    serve.py's middleware sends it to a page that renders, with the dataset kept in the URL."""
    server, h = app
    page.goto(f"{server.url}/{path}?dataset={h}")
    wait_for_app(page)
    assert f"dataset={h}" in page.url
    if heading is None:  # /review/ is the Review page itself
        assert page.url.startswith(f"{server.url}/review?"), page.url
        page.locator("[data-testid='stSidebar']").wait_for(timeout=30_000)
        page.get_by_text("Review", exact=False).first.wait_for(timeout=30_000)
        assert page.get_by_text(re.compile("There is no page")).count() == 0
    else:
        notice = page.get_by_text(re.compile("There is no page"))
        notice.wait_for(timeout=60_000)
        assert f"/{path}" in notice.inner_text()
    assert page.locator("[data-testid='stException']").count() == 0, server.log()
