"""The README stays in step with the code: every CLI command and every documented page exists, and back."""

from __future__ import annotations

import re

from labelaudit.cli import build_parser
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_every_cli_command_is_in_the_readme_and_every_mentioned_one_exists():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    commands = set(sub.choices)
    mentioned = set(re.findall(r"`labelaudit (\w+)", README))
    assert commands - {"app"} <= mentioned | {"app"}, (
        f"undocumented commands: {sorted(commands - mentioned)}"
    )
    assert mentioned <= commands, (
        f"README mentions unknown commands: {sorted(mentioned - commands)}"
    )


def test_every_page_in_the_navigation_is_in_the_readme_table():
    from components.pages import ABOUT, PAGES

    for page in PAGES:
        if page is ABOUT:
            continue
        assert re.search(rf"^\| [^|]*{re.escape(page.title.split()[0])}", README, re.M), (
            f"page {page.title!r} not in README"
        )


def test_linked_docs_exist():
    for link in re.findall(r"\]\(((?:docs|examples)/[^)]+)\)", README):
        assert (ROOT / link).exists(), link
