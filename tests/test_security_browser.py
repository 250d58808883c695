"""Real browser: the app makes no request off this machine, and a refused path shows nothing of the file."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import pytest

from tests.conftest import BAD, wait_for_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}


def _off_machine(urls: list[str]) -> list[str]:
    out = []
    for u in urls:
        parts = urlsplit(u)
        if parts.scheme in ("data", "blob", "about", "chrome", "chrome-extension"):
            continue
        if parts.hostname not in LOCAL_HOSTS:
            out.append(u)
    return out


def test_no_page_requests_anything_outside_this_machine(streamlit_server, page):
    from components.pages import PAGES
    from labelaudit.io import load_dataset

    server = streamlit_server(dataset=load_dataset(BAD / "good.csv"))
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(server.url)
    wait_for_app(page)
    page.get_by_text("Summary").first.wait_for()
    for p in PAGES:
        page.get_by_role("link", name=p.title).first.click()
        wait_for_app(page)
        page.wait_for_timeout(500)  # let icons, fonts and the favicon load
    assert any(urlsplit(u).hostname == "127.0.0.1" for u in requests)  # the recorder works
    assert _off_machine(requests) == [], server.log()
    # the icon font the pages use is served by the app itself
    assert any("MaterialSymbols" in u for u in requests), requests
    favicon = page.evaluate("document.querySelector(\"link[rel='shortcut icon']\").href")
    assert _off_machine([favicon]) == [], favicon


def test_the_recorder_sees_a_request_off_the_machine(streamlit_server, page):
    """The check above could fail: a page that loads an outside image is caught."""
    server = streamlit_server()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.route(
        "**/*",
        lambda route: (
            route.abort() if "example.invalid" in route.request.url else route.continue_()
        ),
    )
    page.goto(server.url)
    wait_for_app(page)
    page.evaluate("() => { const i = new Image(); i.src = 'https://example.invalid/x.png'; }")
    page.wait_for_timeout(300)
    assert _off_machine(requests) == ["https://example.invalid/x.png"]


def test_a_credentials_file_outside_the_roots_never_reaches_the_page(
    streamlit_server, page, tmp_path
):
    secret = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"
    outside = tmp_path / "outside"
    outside.mkdir()
    creds = outside / "credentials.csv"
    creds.write_text(f"text,label,aws_secret_access_key\nlogin,root,{secret}\n", encoding="utf-8")
    launch = tmp_path / "launch"
    (launch / "data").mkdir(parents=True)
    (launch / "data" / "link.csv").symlink_to(creds)
    server = streamlit_server(
        env={"LABELAUDIT_LAUNCH_DIR": str(launch), "LABELAUDIT_DATA_ROOTS": ""}
    )
    page.goto(server.url)
    wait_for_app(page)
    page.get_by_text("Path on the server").click()
    wait_for_app(page)
    box = page.get_by_label("Path to a data file")
    for typed in (str(creds), "data/link.csv", "data/../../outside/credentials.csv"):
        box.fill(typed)
        box.press("Enter")
        wait_for_app(page)
        page.get_by_text("is refused").first.wait_for()
        page.get_by_role("button", name="Load").click(force=True)
        wait_for_app(page)
        html = page.content()
        assert secret not in html and "aws_secret_access_key" not in html
    ws = server.workspace
    assert not (ws / "datasets").exists() or not os.listdir(ws / "datasets")
