"""The README stays in step with the code: its reference tables are generated from the registries
(scripts/readme_tables.py), every command it names exists, and every link it makes resolves."""

from __future__ import annotations

import re

import pytest

from labelaudit.cli import build_parser
from scripts import readme_tables
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_readme_tables_are_the_registries():
    # Fails after a detector, format, companion, truth-inference method, command or page is added
    # until `python scripts/readme_tables.py` rewrites the tables: no table is edited by hand.
    assert readme_tables.render(README) == README, (
        "README.md is out of step with the registries: run scripts/readme_tables.py"
    )
    assert readme_tables.main(["--check"]) == 0


def test_every_table_lists_what_its_registry_holds():
    from components.pages import PAGES
    from labelaudit.agreement.methods import all_truth_methods
    from labelaudit.detectors.registry import all_detectors
    from labelaudit.io.formats import all_formats

    for name in all_detectors():
        assert f"| `{name}` |" in README, name
    for method in all_truth_methods():
        assert f"| `{method}` |" in README, method
    for fmt in all_formats():
        assert all(f"`{s}`" in readme_tables.formats_table() for s in fmt.suffixes), fmt.name
    for page in PAGES:
        assert page.summary, f"{page.path} needs a docstring saying what the page shows"
        assert f"| {page.title} | {page.section} | {page.summary} |" in README, page.title
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    for command in sub.choices:
        assert f"| `labelaudit {command}` |" in README, command


@pytest.fixture
def registered_elsewhere():
    """A detector, a format and a truth-inference method registered as a new module would."""
    from labelaudit.agreement import methods
    from labelaudit.detectors import registry
    from labelaudit.io import formats

    @registry.register("example_detector", requires=("texts",), description="a planted detector")
    def example_detector(ctx):  # pragma: no cover - never run, only listed
        raise AssertionError

    @formats.register_format("Example", suffixes=(".example",), description="a planted format")
    def read_example(path, encoding):  # pragma: no cover
        raise AssertionError

    @methods.register_truth_method("example", title="a planted method")
    def example_method(ratings, inputs):  # pragma: no cover
        raise AssertionError

    yield
    registry._REGISTRY.pop("example_detector")
    formats._REGISTRY.pop(".example")
    methods._REGISTRY.pop("example")


def test_a_new_registration_reaches_its_table_without_a_readme_edit(registered_elsewhere):
    new = readme_tables.render(README)
    assert "| `example_detector` | `texts` | yes | a planted detector |" in new
    assert "| Example | `.example` | yes | a planted format |" in new
    assert "| `example` | a planted method | no |" in new
    assert new != README  # and the check above then fails until the script is run


def test_a_new_page_file_reaches_the_pages_table(tmp_path, monkeypatch):
    from components import pages

    (tmp_path / "zeta.py").write_text(
        '"""Zeta page: a planted page | with a pipe."""\n\n'
        'PAGE = {"title": "Zeta", "icon": ":material/star:", "section": "Find", "order": 5}\n'
    )
    monkeypatch.setattr(pages, "PAGES", pages.discover_pages(tmp_path))
    assert readme_tables.pages_table().splitlines()[-1] == (
        "| Zeta | Find | A planted page \\| with a pipe. |"
    )


def test_a_readme_block_without_a_table_or_a_table_without_a_block_is_named():
    with pytest.raises(ValueError, match=r"README block 'nonsense' has no table"):
        readme_tables.render(
            README + "\n<!-- generated: nonsense (x) -->\n<!-- end generated: nonsense -->\n"
        )
    without = re.sub(
        r"<!-- generated: formats .*?<!-- end generated: formats -->", "", README, flags=re.S
    )
    with pytest.raises(ValueError, match=r"README has no block for \['formats'\]"):
        readme_tables.render(without)


def test_a_stale_table_fails_the_check(tmp_path, monkeypatch):
    stale = README.replace("| `knn` | `embeddings` |", "| `knn` | `pred_probs` |")
    assert stale != README
    (tmp_path / "README.md").write_text(stale, encoding="utf-8")
    monkeypatch.setattr(readme_tables, "README", tmp_path / "README.md")
    assert readme_tables.main(["--check"]) == 1
    assert readme_tables.main([]) == 0
    assert (tmp_path / "README.md").read_text(encoding="utf-8") == README


def test_every_command_the_readme_names_exists():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    mentioned = set(re.findall(r"`labelaudit (\w+)", README))
    assert mentioned <= set(sub.choices), (
        f"README mentions unknown commands: {sorted(mentioned - set(sub.choices))}"
    )


def test_linked_docs_exist():
    for link in re.findall(r"\]\(((?:docs|examples)/[^)]+)\)", README):
        assert (ROOT / link).exists(), link
