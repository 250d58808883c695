"""The README's reference tables, generated from the registries they describe.

Usage: .venv/bin/python scripts/readme_tables.py [--check]

Each table sits in README.md between two markers::

    <!-- generated: formats (scripts/readme_tables.py; edit the registry, not this table) -->
    | format | ... |
    <!-- end generated: formats -->

Without ``--check`` the tables are rewritten in place from the registries (companions, input
formats, pages, detectors, truth-inference methods, CLI commands); with it, nothing is written and
the exit status is 1 when README.md is out of step (``tests/test_docs.py`` runs the same check).
Adding a detector, a format, a companion, a method, a command or a page is then a change to its own
file; running this script brings the README along.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

README = ROOT / "README.md"
COMMAND = "scripts/readme_tables.py"


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    """A Markdown table; a ``|`` inside a cell is escaped so it cannot open a column."""

    def line(cells: tuple[str, ...]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(header), "|" + "---|" * len(header), *map(line, rows)])


def _code(names: tuple[str, ...] | list[str]) -> str:
    return ", ".join(f"`{n}`" for n in names) or "—"


def companions_table() -> str:
    from labelaudit.io.companions import readme_table

    return readme_table()


def formats_table() -> str:
    from labelaudit.io.formats import all_formats

    return _table(
        ("format", "file names", "as a split file in a folder", "what it holds"),
        [
            (f.name, _code(f.suffixes), "yes" if f.in_folders else "no", f.description)
            for f in all_formats()
        ],
    )


def pages_table() -> str:
    from components.pages import PAGES

    return _table(
        ("page", "section", "what you see"),
        [(p.title, p.section, p.summary) for p in PAGES],
    )


def detectors_table() -> str:
    from labelaudit.detectors.registry import all_detectors

    return _table(
        ("detector", "needs", "in a default scan", "what it scores"),
        [
            (f"`{s.name}`", _code(s.requires), "yes" if s.default else "no", s.description)
            for s in all_detectors().values()
        ],
    )


def truth_methods_table() -> str:
    from labelaudit.agreement.methods import all_truth_methods

    return _table(
        ("`--method`", "method", "needs model probabilities"),
        [
            (f"`{m.name}`", m.title, "yes" if m.needs_probs else "no")
            for m in all_truth_methods().values()
        ],
    )


def commands_table() -> str:
    from labelaudit.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    helps = {a.dest: a.help or "" for a in sub._get_subactions()}
    return _table(
        ("command", "what it does"),
        [(f"`labelaudit {name}`", helps.get(name, "")) for name in sorted(sub.choices)],
    )


#: Marker name -> the function that makes its table.
TABLES: dict[str, Callable[[], str]] = {
    "companions": companions_table,
    "formats": formats_table,
    "pages": pages_table,
    "detectors": detectors_table,
    "truth-methods": truth_methods_table,
    "commands": commands_table,
}

_BLOCK = re.compile(
    r"(?P<open><!-- generated: (?P<name>[\w-]+) [^\n]*-->\n)(?P<body>.*?)"
    r"(?P<close><!-- end generated: (?P=name) -->)",
    re.S,
)


def render(text: str, tables: dict[str, Callable[[], str]] = TABLES) -> str:
    """``text`` with every generated block's body replaced by its table. A block whose name has no
    table, or a table with no block, is a ValueError naming it (so neither can go missing)."""
    found: list[str] = []

    def fill(m: re.Match[str]) -> str:
        name = m["name"]
        if name not in tables:
            raise ValueError(f"README block {name!r} has no table; known: {sorted(tables)}")
        found.append(name)
        return m["open"] + tables[name]() + "\n" + m["close"]

    out = _BLOCK.sub(fill, text)
    missing = sorted(set(tables) - set(found))
    if missing:
        raise ValueError(
            f"README has no block for {missing}; add "
            + " ".join(
                f"'<!-- generated: {n} ({COMMAND}) -->' ... '<!-- end generated: {n} -->'"
                for n in missing
            )
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when README.md is out of step")
    args = parser.parse_args(argv)
    text = README.read_text(encoding="utf-8")
    new = render(text)
    if args.check:
        if new != text:
            print(f"README.md is out of step with the registries; run {COMMAND}", file=sys.stderr)
            return 1
        return 0
    if new != text:
        README.write_text(new, encoding="utf-8")
        print("README.md: tables rewritten")
    else:
        print("README.md: already in step")
    return 0


if __name__ == "__main__":
    sys.exit(main())
