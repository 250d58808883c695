"""The Data page, driven by AppTest: load the sample, show problems for bad input."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from tests.conftest import BAD, ROOT, shown_text


def _page(workspace) -> AppTest:
    at = AppTest.from_file(str(ROOT / "views/data.py"), default_timeout=120)
    at.session_state["workspace"] = str(workspace.root)
    return at


def test_loading_the_sample_shows_its_summary(workspace):
    at = _page(workspace).run()
    assert not at.exception
    at.button(key="load_button").click().run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Rows"] == "13,083"
    assert metrics["Classes"] == "77"
    assert any("train: 10,003 rows" in c.value for c in at.caption)
    assert at.session_state["dataset_hash"] in workspace.datasets()


def test_a_bad_server_path_shows_the_problem_not_a_traceback(workspace):
    at = _page(workspace).run()
    at.radio(key="data_source").set_value("Path on the server").run()
    at.text_input[0].input(str(BAD / "empty_text.csv")).run()
    at.button(key="load_button").click().run()
    assert not at.exception
    errors = [shown_text(e.value) for e in at.error]
    assert any("empty text" in e and "row 2" in e and "empty_text.csv" in e for e in errors), errors
    assert "dataset_hash" not in at.session_state


def test_every_page_that_needs_a_dataset_guards_without_one(workspace):
    from components.pages import PAGES

    guarded = [p for p in PAGES if p.needs_dataset]
    assert len(guarded) >= 7
    for page in guarded:
        at = AppTest.from_file(str(ROOT / page.path), default_timeout=60)
        at.session_state["workspace"] = str(workspace.root)
        at.run()
        assert not at.exception, page.path
        assert any("Load a dataset first" in i.value for i in at.info), page.path
