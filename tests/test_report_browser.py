"""The HTML report opens in a real Chromium from a file:// URL with the network cut, and draws its charts."""

from __future__ import annotations

import pytest

import labelaudit.reporting as report
from tests.test_report import reviewed_report, reviewed_setup


@pytest.mark.browser
def test_report_draws_its_charts_offline(page, tmp_path, workspace):
    ds, rep = reviewed_report(tmp_path, workspace)
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
    assert (
        page.locator("#findings").inner_text().count("<script>alert") == 1
    )  # shown as text, never run
    assert not requested and not errors


@pytest.mark.browser
@pytest.mark.slow
def test_download_the_report_from_the_roi_page(streamlit_server, page, tmp_path, monkeypatch):
    """The real app: open the ROI page, see the numbers and charts, download the report and open it."""
    import shutil

    from tests.conftest import wait_for_app
    from tests.test_report import store_fake_scan

    monkeypatch.delenv("LABELAUDIT_DB_URL", raising=False)
    from labelaudit.workspace import Workspace

    ws = Workspace(tmp_path / "ws")
    ds, x, store, scan_table, details = reviewed_setup(tmp_path)
    log = store.log(ds.content_hash)
    store.close()
    shutil.copyfile(tmp_path / "review.sqlite", ws.root / "review.sqlite")
    ws.save_dataset(ds)
    store_fake_scan(ds, ws, scan_table, details)
    res = report.find_scan(
        ws.load_dataset(ds.content_hash), ws
    )  # the page's embeddings (normalised on load)
    report.roi.before_after(
        ds, res.embeddings, log, workspace=ws
    )  # stored: the page shows it, no retrain button
    server = streamlit_server(workspace=ws.root, dataset=ds.content_hash)
    page.goto(server.url)
    wait_for_app(page)
    page.get_by_role("heading", name="Data").first.wait_for()
    page.get_by_role("link", name="ROI").first.click()
    wait_for_app(page)
    page.get_by_role("heading", name="Before / after").wait_for()
    assert page.locator("[data-testid='stException']").count() == 0, server.log()
    page.locator("[data-testid='stPlotlyChart'] svg.main-svg").first.wait_for()
    with page.expect_download() as info:
        page.get_by_role("button", name="Download the report").click()
    path = tmp_path / "downloaded.html"
    info.value.save_as(path)
    text = path.read_text(encoding="utf-8")
    assert "Data ROI report" in text and "fig-before-after" in text
    page.goto(path.as_uri())
    page.wait_for_selector("#fig-curve svg.main-svg", timeout=30_000)
