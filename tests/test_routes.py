"""components/routes.py: which browser navigations serve.py's middleware redirects, and that it
passes everything else to Streamlit untouched (plain ASGI, no server)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from components.routes import MISSING_PAGE_PARAM, PagePathRedirect, redirect_target


@pytest.mark.parametrize(
    "path, query, base, want",
    [
        ("/", "", "", None),
        ("/review", "dataset=ab", "", None),  # a page: Streamlit routes it
        ("/reveiw", "", "", None),  # an unknown page one level deep: the app's alias says so
        ("/review/", "dataset=ab", "", "/review?dataset=ab"),
        ("/a/b", "", "", f"/?{MISSING_PAGE_PARAM}=a%2Fb"),
        ("/a/b/", "dataset=ab", "", f"/?{MISSING_PAGE_PARAM}=a%2Fb&dataset=ab"),
        (
            "/review/42",
            f"{MISSING_PAGE_PARAM}=x&dataset=ab",
            "",
            f"/?{MISSING_PAGE_PARAM}=review%2F42&dataset=ab",
        ),
        ("/a b/<c>", "", "", f"/?{MISSING_PAGE_PARAM}=a+b%2F%3Cc%3E"),
        ("/static/js/index.js", "", "", None),
        ("/_stcore/health", "", "", None),
        ("/_stcore/upload_file/s/f", "", "", None),
        ("/media/abc.png", "", "", None),
        ("/component/x/index.html", "", "", None),
        ("/app/static/x.csv", "", "", None),
        ("/auth/login", "", "", None),
        ("/favicon.png", "", "", None),
        ("/a/b.js", "", "", None),  # a file: not a page navigation
        ("/labelaudit/review/", "", "labelaudit", "/labelaudit/review"),
        ("/labelaudit/a/b", "", "/labelaudit/", f"/labelaudit/?{MISSING_PAGE_PARAM}=a%2Fb"),
        ("/labelaudit", "", "labelaudit", None),
        ("/other/a/b", "", "labelaudit", None),  # outside the base path
    ],
)
def test_redirect_target(path, query, base, want):
    assert redirect_target(path, query, base) == want


def _call(path: str, *, method: str = "GET", accept: str = "text/html", kind: str = "http"):
    seen: list[dict] = []
    sent: list[dict] = []

    async def app(scope, receive, send):
        seen.append(scope)

    async def send(message):
        sent.append(message)

    async def receive():
        return {"type": "http.request"}

    scope = {
        "type": kind,
        "method": method,
        "path": path,
        "query_string": b"dataset=ab",
        "headers": [(b"accept", accept.encode())],
    }
    # In a thread of its own: another test's event loop may still run in this one (asyncio.run
    # refuses to start there; seen in the full suite after the Playwright tests).
    coro = PagePathRedirect(app, base_path=lambda: "")(scope, receive, send)
    worker = threading.Thread(target=asyncio.run, args=(coro,))
    worker.start()
    worker.join(30)
    return seen, sent


def test_a_nested_navigation_gets_a_302_and_never_reaches_streamlit():
    seen, sent = _call("/a/b")
    assert seen == []
    assert sent[0]["status"] == 302
    location = dict(sent[0]["headers"])[b"location"]
    assert location == f"/?{MISSING_PAGE_PARAM}=a%2Fb&dataset=ab".encode()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"path": "/a/b", "accept": "*/*"},  # a script or fetch, not a page navigation
        {"path": "/a/b", "method": "POST"},
        {"path": "/a/b", "kind": "websocket"},
        {"path": "/review"},
        {"path": "/_stcore/stream"},
    ],
    ids=["not html", "post", "websocket", "a page", "streamlit route"],
)
def test_everything_else_passes_untouched(kwargs):
    seen, sent = _call(**kwargs)
    assert len(seen) == 1 and sent == []
