"""Bad input on the Data page (issue 19): the problem in an alert, never a traceback; look-alike
labels shown as a warning."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT, shown_text


def _load_path(workspace, path, monkeypatch) -> AppTest:
    # the data roots (issue 19, security) must include the test's folder
    monkeypatch.setenv("LABELAUDIT_DATA_ROOTS", str(path.parent))
    at = AppTest.from_file(str(ROOT / "views/data.py"), default_timeout=120)
    at.session_state["workspace"] = str(workspace.root)
    at.run()
    at.radio(key="data_source").set_value("Path on the server").run()
    at.text_input[0].input(str(path)).run()
    assert not at.exception
    at.button(key="load_button").click().run()
    assert not at.exception
    return at


def test_a_header_repeating_a_name_after_stripping_shows_the_problem(
    workspace, tmp_path, monkeypatch
):
    # before: a traceback on the Data page (the stripped names collided)
    p = tmp_path / "dup.csv"
    p.write_text("text, text,label\na,b,x\nc,d,y\n")
    at = _load_path(workspace, p, monkeypatch)
    errors = [shown_text(e.value) for e in at.error]
    assert any("repeats column names" in e and "dup.csv" in e for e in errors), errors
    assert "dataset_hash" not in at.session_state


def test_lookalike_labels_are_shown_as_a_warning(workspace, tmp_path, monkeypatch):
    p = tmp_path / "look.csv"
    p.write_text("text,label\na,Pos\nb,pos\nc,neg\nd,neg\n")
    at = _load_path(workspace, p, monkeypatch)
    assert "dataset_hash" in at.session_state
    warnings = [shown_text(w.value) for w in at.warning]
    assert any("differ only by case" in w and "Pos" in w and "pos" in w for w in warnings), warnings


def test_a_problem_naming_hostile_column_names_is_shown_as_plain_text(
    workspace, tmp_path, monkeypatch
):
    # before: the Data page rendered load problems as Markdown, so a column name in the message
    # became a live link or an image fetched from another host
    p = tmp_path / "hostile.csv"
    p.write_text("text,![x](http://evil.example/t.png),[y](http://evil.example)\na,b,c\n")
    at = _load_path(workspace, p, monkeypatch)
    errors = [e.value for e in at.error]
    assert errors, "a file without a label column must be refused"
    assert not any("](http" in e for e in errors), errors  # escaped: \]\(http
    assert any("evil.example" in shown_text(e) for e in errors), errors
