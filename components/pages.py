"""Every page of the dashboard, found in ``views/``: its file, title, icon and navigation section.

Each page file declares its own entry at the top level, a literal read here with :mod:`ast` (the
page is not run)::

    PAGE = {"title": "Annotators", "icon": ":material/groups:", "section": "Find", "order": 40}

``order`` places it in the navigation (sections appear in the order of their first page); the keys
are the fields of :class:`Page` (``default``, ``needs_dataset`` too). ``app.py`` builds the
navigation from :data:`PAGES`; links and page switches name a page by its constant
(``switch_to(REVIEW)``), never by its path; the tests and the README check walk the same list.
Adding a page: one file in ``views/`` with its ``PAGE``, and its test. Paths are relative to the
folder of ``app.py``, as ``st.Page`` and ``st.switch_page`` expect.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import streamlit as st

from components.routes import MISSING_PAGE_PARAM


@dataclass(frozen=True)
class Page:
    """One page: ``path`` of its script (``views/<name>.py``), ``title`` in the navigation and the
    README's table, ``icon`` (a Material symbol), ``section`` of the navigation, ``default``
    (the page ``/`` opens), ``needs_dataset`` (the page starts with the "Load a dataset first"
    guard)."""

    path: str
    title: str
    icon: str
    section: str
    default: bool = False
    needs_dataset: bool = True
    #: What the page shows, for the README's page table: the first line of the page file's
    #: docstring without its "Title:" lead (``discover_pages`` fills it in).
    summary: str = ""

    @property
    def url_path(self) -> str:
        """The page's URL path (``/review``): Streamlit derives it from the file name."""
        return "/" + self.path.rsplit("/", 1)[-1].removesuffix(".py")


#: The folder of the page files (beside ``components/``, in a checkout and in the installed wheel).
VIEWS = Path(__file__).resolve().parents[1] / "views"


def declared_page(path: Path) -> dict[str, Any]:
    """The ``PAGE = {...}`` literal of the page file ``path`` (the file is parsed, not run)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and node.targets[0].id == "PAGE"
        ):
            try:
                meta = ast.literal_eval(node.value)
            except ValueError as e:
                raise ValueError(
                    f"{path.name}, line {node.lineno}: PAGE must be a literal dict ({e})"
                ) from None
            if not isinstance(meta, dict) or not {"title", "icon", "section", "order"} <= set(meta):
                raise ValueError(
                    f"{path.name}: PAGE must be a dict with title, icon, section and order; "
                    f"found {meta!r}"
                )
            return meta
    raise ValueError(f"{path.name}: no top-level PAGE = {{...}} entry (see components/pages.py)")


def page_summary(path: Path) -> str:
    """The first line of the page file's docstring, without a leading "Title:" or "Title page:"
    ("" without a docstring).

    >>> page_summary(VIEWS / "annotators.py")
    'Rater agreement, annotator competence and consensus labels.'
    """
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    doc = (ast.get_docstring(tree) or "").strip().splitlines()
    if not doc:
        return ""  # tests/test_docs.py requires one of every real page
    first = re.sub(r"^[^:.]{1,40}:\s+", "", doc[0].strip())
    return first[:1].upper() + first[1:]


def discover_pages(folder: Path = VIEWS) -> tuple[Page, ...]:
    """A :class:`Page` for every ``*.py`` in ``folder``, by ``order`` (then file name)."""
    entries = []
    for path in sorted(folder.glob("*.py")):
        if path.name == "__init__.py":
            continue
        meta = dict(declared_page(path))
        order = meta.pop("order")
        page = Page(f"{folder.name}/{path.name}", **meta, summary=page_summary(path))
        entries.append((order, path.name, page))
    return tuple(page for _, _, page in sorted(entries, key=lambda e: (e[0], e[1])))


#: Every page, in navigation order.
PAGES: tuple[Page, ...] = discover_pages()
_BY_FILE = {p.path.rsplit("/", 1)[-1].removesuffix(".py"): p for p in PAGES}

# The pages other code links to.
DATA = _BY_FILE["data"]
EXPLORE = _BY_FILE["explore"]
LABEL_ISSUES = _BY_FILE["label_issues"]
ANNOTATORS = _BY_FILE["annotators"]
DYNAMICS = _BY_FILE["dynamics"]
INFLUENCE = _BY_FILE["influence"]
REVIEW = _BY_FILE["review"]
ROI = _BY_FILE["roi"]
ABOUT = _BY_FILE["about"]
#: The page names Streamlit routes by URL (every page but the default one, which is the root).
_ROUTED = frozenset(p.url_path.strip("/") for p in PAGES if not p.default)


def navigation(requested: str | None = None) -> dict[str, list[st.Page]]:
    """The ``st.navigation`` argument: section -> its pages, from :data:`PAGES`.

    The default page is served at the root (``/``). ``requested``: the page name of the URL the
    browser asked for (:func:`requested_page`); when no page has it (``data``, the default page's
    own file name, or a mistyped ``reveiw``), the default page is also registered, hidden, under
    that name. Without it Streamlit runs the default page and opens its "Page not found" dialog,
    which left every other element inert (opened at ``/data?dataset=...``, the sidebar links did
    not take a click for 30 s in Playwright); the Data page then says the page is unknown
    (:func:`render_unknown_page_notice`), except for ``data``, which is its own name."""
    sections: dict[str, list[st.Page]] = {}
    for section, kwargs in page_entries(requested):
        sections.setdefault(section, []).append(st.Page(**kwargs))
    return sections


def page_entries(requested: str | None = None) -> list[tuple[str, dict[str, Any]]]:
    """(section, ``st.Page`` arguments) of each page :func:`navigation` registers, in order."""
    out: list[tuple[str, dict[str, Any]]] = [
        (
            p.section,
            {
                "page": p.path,
                "title": p.title,
                "icon": p.icon,
                "default": p.default,
                "url_path": "" if p.default else None,  # the root only: it reserves no other name
            },
        )
        for p in PAGES
    ]
    if requested is not None and _ALIAS.fullmatch(requested):
        default = next(p for p in PAGES if p.default)
        out.append(
            (
                default.section,
                {
                    "page": default.path,
                    "title": default.title,
                    "icon": default.icon,
                    "url_path": requested,
                    "visibility": "hidden",
                },
            )
        )
    return out


#: Page names the default page may be registered under (one path segment, no markup).
_ALIAS = re.compile(r"[A-Za-z0-9_-]{1,80}")


def requested_page() -> str | None:
    """The page name of the URL this session's browser asked for when no page has it (e.g.
    ``data`` or ``reveiw``), else None (also without a browser connection: AppTest)."""
    try:
        url = st.context.url
        base = str(st.get_option("server.baseUrlPath") or "")
    except Exception:  # no browser connection (AppTest)
        return None
    name = unknown_page_requested(url, base, known=_ROUTED)
    return name


def unknown_page_requested(
    url: str | None, base_path: str = "", *, known: frozenset[str] | None = None
) -> str | None:
    """The page name in ``url`` (``st.context.url``) when no page has it, else None. Streamlit runs
    the default page for an unknown URL without a word; the Data page says so instead.

    >>> unknown_page_requested("http://localhost:8501/reveiw")
    'reveiw'
    >>> unknown_page_requested("http://localhost:8501/review") is None
    True
    """
    from urllib.parse import unquote, urlparse

    if not url:
        return None
    parts = [p for p in unquote(urlparse(url).path).split("/") if p]
    base = [p for p in base_path.split("/") if p]
    if base and parts[: len(base)] == base:
        parts = parts[len(base) :]
    if not parts:
        return None
    if known is None:
        known = frozenset(p.url_path.strip("/") for p in PAGES)
    name = "/".join(parts)
    return None if name in known else name


def render_unknown_page_notice() -> None:
    """On the default page: a warning when the browser asked for a page that does not exist."""
    from components.text import md_escape

    try:
        url = st.context.url
        base = str(st.get_option("server.baseUrlPath") or "")
    except Exception:  # no browser connection (AppTest)
        return
    name = unknown_page_requested(url, base)
    if name is None:  # a nested path (``/a/b``): serve.py's middleware sent it here, named
        name = st.query_params.get(MISSING_PAGE_PARAM) or None
    if name is not None:
        st.warning(
            f"There is no page **/{md_escape(name[:80])}** here, so this is the Data page. "
            "The pages: " + ", ".join(p.title for p in PAGES) + ".",
            icon=":material/link_off:",
        )


def switch_to(page: Page) -> None:
    """Open ``page`` (ends this run, as ``st.switch_page`` does)."""
    st.switch_page(page.path)


def render_page_link(page: Page, label: str | None = None) -> None:
    """A link to ``page``; a page run on its own (AppTest) has no navigation, so it says where
    instead."""
    text = label or f"Go to the {page.title} page"
    try:
        st.page_link(page.path, label=text, icon=page.icon)
    except st.errors.StreamlitAPIException:
        st.caption(f"Open the {page.title} page from the sidebar.")
