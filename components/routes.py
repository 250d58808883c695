"""Page URLs that Streamlit's server cannot serve: a nested path (``/review/42``, ``/a/b``) or a
page with a trailing slash (``/review/``).

Streamlit answers every unknown path with its ``index.html``, whose scripts and styles are linked
relative to the page (``./static/js/...``). One path segment deep that resolves to the server's
root; two deep it resolves to ``/review/static/js/...``, which the server again answers with
``index.html``, so the browser gets HTML for every script and shows an empty white page with no word
of what went wrong. :class:`PagePathRedirect` (an ASGI middleware of ``serve.py``'s ``st.App``)
sends such a browser navigation, before Streamlit sees it, to a URL that renders:

- ``/review/`` → ``/review`` (the page itself);
- ``/a/b`` → ``/?missing_page=a/b``: the default page, which says there is no such page
  (``components.pages.render_unknown_page_notice``).

The query string is kept (``?dataset=<hash>`` still opens the dataset). Only navigations are
redirected (GET or HEAD asking for HTML, outside Streamlit's own routes); scripts, the websocket,
uploads, media, components and the health check pass untouched. No Streamlit import: it is plain
ASGI, tested without a server.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: The query parameter naming the page a browser asked for when the default page opens instead.
MISSING_PAGE_PARAM = "missing_page"
#: First path segments that are Streamlit's own routes (starlette_routes.BASE_ROUTE_*, the auth
#: routes) or its static files, never a page: left to Streamlit at any depth.
STREAMLIT_PREFIXES = frozenset(
    {"_stcore", "static", "media", "component", "app", "auth", "oauth2callback", "~"}
)


def redirect_target(path: str, query: str, base_path: str = "") -> str | None:
    """Where a browser asking for ``path`` (``query`` without its ``?``) should go instead, or None
    when Streamlit serves it as it is. ``base_path``: the server's ``server.baseUrlPath``.

    >>> redirect_target("/review/", "dataset=ab12")
    '/review?dataset=ab12'
    >>> redirect_target("/a/b", "")
    '/?missing_page=a%2Fb'
    >>> redirect_target("/review", "") is None, redirect_target("/static/js/x.js", "") is None
    (True, True)
    """
    base = [p for p in base_path.split("/") if p]
    parts = [p for p in path.split("/") if p]
    if parts[: len(base)] != base:
        return None  # outside the app's base path: not ours to judge
    parts = parts[len(base) :]
    if not parts or parts[0] in STREAMLIT_PREFIXES or "." in parts[-1]:
        return None  # the root, Streamlit's routes, or a file (favicon.png, manifest.json)
    prefix = "/" + "/".join(quote(p, safe="") for p in base)
    if len(parts) == 1:
        if not path.endswith("/"):
            return None  # a page: Streamlit's own page routing (and its unknown-page alias)
        return f"{prefix.rstrip('/')}/{quote(parts[0], safe='')}" + (f"?{query}" if query else "")
    kept = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != MISSING_PAGE_PARAM]
    params = urlencode([(MISSING_PAGE_PARAM, "/".join(parts)), *kept])
    return f"{prefix.rstrip('/')}/?{params}"


class PagePathRedirect:
    """ASGI middleware: a 302 to :func:`redirect_target` for a browser's page navigation that
    Streamlit would answer with a blank page; everything else goes on to ``app`` unchanged."""

    def __init__(self, app: ASGIApp, base_path: str | Callable[[], str] = "") -> None:
        self.app = app
        self._base_path = base_path

    def base_path(self) -> str:
        return self._base_path() if callable(self._base_path) else self._base_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") == "http" and scope.get("method") in ("GET", "HEAD"):
            headers = dict(scope.get("headers") or [])
            accept = headers.get(b"accept", b"").decode("latin-1")
            if "text/html" in accept:
                query = scope.get("query_string", b"").decode("latin-1")
                target = redirect_target(scope.get("path", "/"), query, self.base_path())
                if target is not None:
                    await send(
                        {
                            "type": "http.response.start",
                            "status": 302,
                            "headers": [
                                (b"location", target.encode("latin-1")),
                                (b"content-length", b"0"),
                                (b"cache-control", b"no-cache"),
                            ],
                        }
                    )
                    await send({"type": "http.response.body", "body": b""})
                    return
        await self.app(scope, receive, send)
