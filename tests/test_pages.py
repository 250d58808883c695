"""The page registry (components/pages.py) is the one list of pages: every page file is in it, every
entry has its file, and app.py's navigation is built from it."""

from __future__ import annotations

import ast

import pytest

from components.pages import PAGES, Page, navigation
from tests.conftest import ROOT


def test_every_page_file_is_registered_and_every_entry_has_its_file():
    files = {f"views/{p.name}" for p in (ROOT / "views").glob("*.py") if p.name != "__init__.py"}
    registered = [p.path for p in PAGES]
    assert len(registered) == len(set(registered))
    assert set(registered) == files


def test_one_default_page_and_titles_and_url_paths_are_unique():
    assert [p for p in PAGES if p.default] == [PAGES[0]]
    assert len({p.title for p in PAGES}) == len(PAGES)
    assert len({p.url_path for p in PAGES}) == len(PAGES)
    assert Page("views/review.py", "Review", ":material/rule:", "Fix").url_path == "/review"


def test_navigation_keeps_sections_and_order():
    nav = navigation()
    assert list(nav) == list(dict.fromkeys(p.section for p in PAGES))
    assert [len(pages) for pages in nav.values()] == [
        sum(p.section == section for p in PAGES) for section in nav
    ]


def test_a_page_name_streamlit_does_not_route_gets_the_default_page_hidden_under_it():
    """Streamlit serves the default page at the root only; an unrouted name (its file name
    ``data``, a typo) would open Streamlit's "Page not found" dialog, which leaves the page inert
    (tests/test_browser_data.py). The default page is registered under it, hidden; names that are
    not one plain path segment are not."""
    from components.pages import page_entries

    default = next(p for p in PAGES if p.default)

    def hidden(entries):
        return [kw for _, kw in entries if kw.get("visibility") == "hidden"]

    assert hidden(page_entries()) == [] and hidden(page_entries(None)) == []
    for name in ("data", "reveiw"):
        (alias,) = hidden(page_entries(name))
        assert alias["url_path"] == name and alias["page"] == default.path
    assert hidden(page_entries("a/b")) == [] and hidden(page_entries("<b>x</b>")) == []
    roots = [kw["title"] for _, kw in page_entries() if kw["url_path"] == ""]
    assert roots == [default.title]  # the default page reserves no name but the root
    assert len(navigation("data")[default.section]) == 1 + sum(
        p.section == default.section for p in PAGES
    )


def test_no_page_path_is_spelled_outside_the_registry():
    """st.switch_page / st.page_link / st.Page take a registry entry's path, never a literal."""
    offenders = []
    for path in [
        ROOT / "app.py",
        *(ROOT / "components").glob("*.py"),
        *(ROOT / "views").glob("*.py"),
    ]:
        if path.name == "pages.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and node.value.startswith("views/")
                and node.value.endswith(".py")
            ):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.value!r}")
    assert not offenders, offenders


def test_a_new_page_is_one_file_with_its_page_entry(tmp_path):
    from components.pages import discover_pages

    (tmp_path / "zeta.py").write_text(
        'import streamlit as st\n\nPAGE = {"title": "Zeta", "icon": ":material/star:", '
        '"section": "Find", "order": 5}\n\nraise SystemExit("a page is parsed, never run")\n'
    )
    (tmp_path / "alpha.py").write_text(
        'PAGE = {"title": "Alpha", "icon": ":material/home:", "section": "Data", "order": 1,\n'
        '        "default": True, "needs_dataset": False}\n'
    )
    pages = discover_pages(tmp_path)
    name = tmp_path.name
    assert pages == (
        Page(f"{name}/alpha.py", "Alpha", ":material/home:", "Data", True, False),
        Page(f"{name}/zeta.py", "Zeta", ":material/star:", "Find"),
    )
    assert pages[1].url_path == "/zeta"


@pytest.mark.parametrize(
    "source, message",
    [
        ("import streamlit as st\n", "no top-level PAGE"),
        ('PAGE = {"title": "X"}\n', "PAGE must be a dict with title, icon, section and order"),
        ("PAGE = make_page()\n", "line 1: PAGE must be a literal dict"),
    ],
)
def test_a_page_without_a_proper_entry_is_named(tmp_path, source, message):
    from components.pages import discover_pages

    (tmp_path / "broken.py").write_text(source)
    with pytest.raises(ValueError, match=message) as err:
        discover_pages(tmp_path)
    assert str(err.value).startswith("broken.py")
