"""Switching datasets mid-review resets everything tied to the old one, on every page; the URL names
the dataset (issue 16). The whole app (app.py, st.navigation) driven by AppTest."""

from __future__ import annotations

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from components import state
from components.pages import DATA, PAGES, REVIEW
from labelaudit.workspace import Workspace
from tests.conftest import ROOT, shown_text
from tests.test_review_data import toy_dataset


@pytest.fixture
def two_datasets(tmp_path, monkeypatch):
    monkeypatch.delenv("LABELAUDIT_DB_URL", raising=False)
    monkeypatch.delenv("LABELAUDIT_DATASET", raising=False)
    ws = Workspace(tmp_path / "ws")
    monkeypatch.setenv("LABELAUDIT_WORKSPACE", str(ws.root))
    first = ws.save_dataset(toy_dataset())
    other = tmp_path / "other.csv"
    pd.DataFrame(
        {
            "id": [f"s{i}" for i in range(30)],
            "text": [f"another question {i}" for i in range(30)],
            "label": ["left", "right", "middle"] * 10,
        }
    ).to_csv(other, index=False)
    return ws, first, other


def _app(first: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    at.query_params[state.DATASET_QUERY_PARAM] = first
    at.session_state[state.REVIEWER] = "ana"
    return at


def test_switching_datasets_mid_review_resets_every_page(two_datasets):
    ws, first, other = two_datasets
    at = _app(first).run()
    assert not at.exception and at.session_state[state.DATASET_HASH] == first
    # Mid-review on the first dataset: a decision, an undo, a hand-made queue, a selection, filters.
    at.switch_page(REVIEW.path).run()
    assert not at.exception
    assert at.session_state[state.REVIEW_SESSION].shown.item_id.startswith("r")
    next(b for b in at.button if b.key == state.REVIEW_KEEP).click().run()
    next(b for b in at.button if b.key == state.REVIEW_KEEP).click().run()
    next(b for b in at.button if b.key == state.REVIEW_UNDO).click().run()
    assert not at.exception
    at.session_state[state.QUEUE] = ["r3", "r7"]
    at.session_state[state.QUEUE_SOURCE] = "Explore: 2 rows selected on the map"
    at.session_state[state.SELECTION] = ["r3", "r7"]
    at.session_state[state.EXPLORE_CLUSTER] = 2
    at.session_state[state.ISSUES_CLASSES] = ["card_arrival"]
    at.session_state[state.ROI_FINDING_NOTE] = "draft about r3"
    # Another dataset from the Data page.
    at.switch_page(DATA.path).run()
    at.radio(key=state.DATA_SOURCE).set_value("Path on the server").run()
    at.text_input[0].input(str(other)).run()
    at.button(key=state.DATA_LOAD).click().run()
    assert not at.exception, at.exception
    second = at.session_state[state.DATASET_HASH]
    assert second != first and second in ws.datasets()
    assert at.query_params[state.DATASET_QUERY_PARAM] in (second, [second])
    for key in (
        state.QUEUE,
        state.QUEUE_SOURCE,
        state.REVIEW_SESSION,
        state.EXPLORE_CLUSTER,
        state.ISSUES_CLASSES,
        state.ROI_FINDING_NOTE,
    ):
        assert key not in at.session_state, key
    assert at.session_state[state.SELECTION] == []
    assert at.session_state[state.REVIEWER] == "ana"  # who reviews is not tied to the data
    # Every page now works on the second dataset only.
    for page in PAGES:
        at.switch_page(page.path).run()
        assert not at.exception, (page.path, at.exception)
        shown_text = " ".join(shown_text(e.value) for e in [*at.error, *at.warning])
        assert "no row with id" not in shown_text, page.path
    at.switch_page(REVIEW.path).run()
    assert at.session_state[state.REVIEW_SESSION].shown.item_id.startswith("s")


def test_a_reload_reopens_the_dataset_named_in_the_url(two_datasets):
    ws, first, _ = two_datasets
    at = _app(first).run()
    at.switch_page(REVIEW.path).run()
    assert at.query_params[state.DATASET_QUERY_PARAM] in (
        first,
        [first],
    )  # kept across page switches
    # A reload is a new session with the same URL.
    again = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    again.query_params[state.DATASET_QUERY_PARAM] = first
    again.run()
    assert again.session_state[state.DATASET_HASH] == first


def test_a_url_naming_an_unknown_dataset_says_so(two_datasets):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    at.query_params[state.DATASET_QUERY_PARAM] = "0" * 16
    at.run()
    assert not at.exception and state.DATASET_HASH not in at.session_state
    assert any("does not hold" in shown_text(e.value) for e in at.error)
