"""Real browser: the app starts, the Data page loads the bundled sample and shows its summary."""

from __future__ import annotations

import pytest

from tests.conftest import wait_for_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_sample_loads_in_chromium(streamlit_server, page):
    server = streamlit_server()
    page.goto(server.url)
    wait_for_app(page)
    page.get_by_role("button", name="Load").click()
    page.get_by_text("train: 10,003 rows").wait_for(timeout=90_000)
    page.locator("[data-testid='stMetric']", has_text="Rows").filter(has_text="13,083").wait_for()
    page.locator("[data-testid='stMetric']", has_text="Classes").filter(has_text="77").wait_for()
    # Every page of the navigation opens without an exception once data is loaded.
    for title in ["About", "Data"]:
        page.get_by_role("link", name=title).first.click()
        wait_for_app(page)
        assert page.locator("[data-testid='stException']").count() == 0, server.log()


def test_cli_preloaded_dataset_is_shown_on_open(streamlit_server, page, sample_dataset):
    server = streamlit_server(dataset=sample_dataset)
    page.goto(server.url)
    wait_for_app(page)
    page.get_by_text("train: 10,003 rows").wait_for(timeout=90_000)


def test_a_page_url_opened_directly_runs_through_the_app_navigation(
    streamlit_server, page, sample_dataset
):
    # Regression: with the pages in a folder named pages/, Streamlit ran /review without app.py (no dataset,
    # a raw file list in the sidebar).
    server = streamlit_server(dataset=sample_dataset)
    page.goto(f"{server.url}/review")
    wait_for_app(page)
    page.get_by_text("Your name (recorded with every decision").first.wait_for(timeout=90_000)
    nav = page.locator("[data-testid='stSidebarNav']").inner_text()
    assert "Label issues" in nav and "Training dynamics" in nav and "app" not in nav.split()
    assert page.get_by_text("Load a dataset first").count() == 0


@pytest.mark.parametrize("path", ["data", "reveiw"], ids=["the data page's name", "unknown"])
def test_the_sidebar_takes_a_click_when_the_app_is_opened_at_a_page_name_it_does_not_route(
    streamlit_server, page, sample_dataset, path
):
    # Regression: opened at /data?dataset=<hash> (the Data page's file name; Streamlit serves the
    # default page at the root only), Streamlit opened its "Page not found" dialog, which made
    # every other element inert: the sidebar links did not take a click for 30 s.
    from labelaudit.workspace import Workspace

    server = streamlit_server(dataset=sample_dataset)
    h = sample_dataset.content_hash
    assert h in Workspace(server.workspace).datasets()
    page.goto(f"{server.url}/{path}?dataset={h}")
    wait_for_app(page)
    page.get_by_text("train: 10,003 rows").wait_for(timeout=90_000)  # the Data page, with its data
    assert page.locator("[data-testid='stDialog']").count() == 0
    warned = page.get_by_text("There is no page").count()
    assert warned == (1 if path == "reveiw" else 0)
    page.locator("[data-testid='stSidebarNav'] a", has_text="About").first.click(timeout=5_000)
    page.get_by_role("heading", name="About labelaudit").first.wait_for(timeout=30_000)
    assert f"dataset={h}" in page.url
    # Back through the sidebar: the Data page at the root, no longer under the unknown name it was
    # opened at: the notice is gone (it follows the page's URL, not the session's first one).
    page.locator("[data-testid='stSidebarNav'] a", has_text="Data").first.click(timeout=5_000)
    page.get_by_text("train: 10,003 rows").wait_for(timeout=60_000)
    wait_for_app(page)
    assert page.get_by_text("There is no page").count() == 0
