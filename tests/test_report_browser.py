"""The HTML report opens in a real Chromium from a file:// URL with the network cut, and draws its charts."""

from __future__ import annotations

import importlib

import pytest

from tests.test_report import reviewed_setup

# the module, not the labelaudit.report() facade of the same name
report = importlib.import_module("labelaudit.report")


@pytest.mark.browser
def test_report_draws_its_charts_offline(page, tmp_path, workspace):
    ds, x, store, scan_table, details = reviewed_setup(tmp_path)
    try:
        rep = report.compute_report(ds, store.log(ds.content_hash), store.findings(ds.content_hash),
                                    scan_table=scan_table, details=details, embeddings=x, workspace=workspace)
    finally:
        store.close()
    path = report.write_report(rep, tmp_path / "roi.html")
    requested: list[str] = []

    def block_network(route):
        requested.append(route.request.url)
        route.abort()

    page.route("http*://**/*", block_network)  # nothing may come from the network
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(path.as_uri())
    for fid in report.FIGURE_IDS:
        page.wait_for_selector(f"#{fid} svg.main-svg", timeout=30_000)
    # bars were drawn (not just empty axes), and the numbers are on the page
    assert page.locator("#fig-decisions .bars path").count() >= 2
    assert page.locator("#fig-curve .scatterlayer .trace").count() == 2
    assert "Items reviewed" in page.locator("#headline").inner_text()
    assert page.locator("#findings").inner_text().count("<script>alert") == 1  # shown as text, never run
    assert not requested and not errors
