"""Every page of the dashboard, named once: its file, title, icon and navigation section.

``app.py`` builds the navigation from :data:`PAGES`; links and page switches name a page by its
constant (``switch_to(REVIEW)``), never by its path; the tests and the README check walk the same
list. Adding a page: a file in ``views/``, one :class:`Page` here (in :data:`PAGES`), and its test.
Paths are relative to the folder of ``app.py``, as ``st.Page`` and ``st.switch_page`` expect.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st


@dataclass(frozen=True)
class Page:
    """One page: ``path`` of its script (``views/<name>.py``), ``title`` in the navigation and the
    README's table, ``icon`` (a Material symbol), ``section`` of the navigation, ``default``
    (the page ``/`` opens), ``needs_dataset`` (the page starts with the "Load a dataset first" guard)."""

    path: str
    title: str
    icon: str
    section: str
    default: bool = False
    needs_dataset: bool = True

    @property
    def url_path(self) -> str:
        """The page's URL path (``/review``): Streamlit derives it from the file name."""
        return "/" + self.path.rsplit("/", 1)[-1].removesuffix(".py")


DATA = Page(
    "views/data.py",
    "Data",
    ":material/database:",
    "Data",
    default=True,
    needs_dataset=False,
)
EXPLORE = Page("views/explore.py", "Explore", ":material/scatter_plot:", "Find")
LABEL_ISSUES = Page("views/label_issues.py", "Label issues", ":material/report:", "Find")
ANNOTATORS = Page("views/annotators.py", "Annotators", ":material/groups:", "Find")
DYNAMICS = Page("views/dynamics.py", "Training dynamics", ":material/timeline:", "Find")
INFLUENCE = Page("views/influence.py", "Influence", ":material/hub:", "Find")
REVIEW = Page("views/review.py", "Review", ":material/rule:", "Fix")
ROI = Page("views/roi.py", "ROI", ":material/trending_up:", "Fix")
ABOUT = Page("views/about.py", "About", ":material/info:", "Help", needs_dataset=False)

#: Every page, in navigation order (sections appear in the order of their first page).
PAGES: tuple[Page, ...] = (
    DATA,
    EXPLORE,
    LABEL_ISSUES,
    ANNOTATORS,
    DYNAMICS,
    INFLUENCE,
    REVIEW,
    ROI,
    ABOUT,
)


def navigation() -> dict[str, list[st.Page]]:
    """The ``st.navigation`` argument: section -> its pages, from :data:`PAGES`."""
    sections: dict[str, list[st.Page]] = {}
    for p in PAGES:
        sections.setdefault(p.section, []).append(
            st.Page(p.path, title=p.title, icon=p.icon, default=p.default)
        )
    return sections


def unknown_page_requested(url: str | None, base_path: str = "") -> str | None:
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
    known = {p.url_path.strip("/") for p in PAGES}
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
    if name is not None:
        st.warning(
            f"There is no page **/{md_escape(name[:80])}** here, so this is the Data page. The pages: "
            + ", ".join(p.title for p in PAGES)
            + ".",
            icon=":material/link_off:",
        )


def switch_to(page: Page) -> None:
    """Open ``page`` (ends this run, as ``st.switch_page`` does)."""
    st.switch_page(page.path)


def render_page_link(page: Page, label: str | None = None) -> None:
    """A link to ``page``; a page run on its own (AppTest) has no navigation, so it says where instead."""
    text = label or f"Go to the {page.title} page"
    try:
        st.page_link(page.path, label=text, icon=page.icon)
    except st.errors.StreamlitAPIException:
        st.caption(f"Open the {page.title} page from the sidebar.")
