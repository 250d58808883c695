"""What the decisions teach, on the pages (AppTest): the Label issues table's estimated precision
column, and the Review page's active-learning queue for multiply-annotated items (issue 13)."""

from __future__ import annotations

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from labelaudit.review import learn
from labelaudit.review.store import ReviewStore
from tests.test_label_issues_page import page, scanned  # noqa: F401 (a real scan of 180 rows)
from tests.test_review_team_page import PAGE as REVIEW_PAGE
from tests.test_review_team_page import texts

COLUMN = "estimated precision"


def test_the_label_issues_table_gains_an_estimated_precision_column(scanned):  # noqa: F811
    ws, h, flips = scanned
    at = page(scanned).run()
    assert not at.exception, at.exception
    before = at.dataframe[0].value
    assert COLUMN in before.columns and before[COLUMN].isna().all()
    assert any("appears once reviewers have decided some rows" in c.value for c in at.caption)

    # 12 decisions down the table's ranking (the static one): planted flips changed, others kept
    ds = ws.load_dataset(h)
    ranked_ids = before["id"].astype(str).tolist()
    flipped = {f"q{i}" for i in flips}
    store = ReviewStore(ws.database_url)
    try:
        for item in ranked_ids[:12]:
            row = ds.id_to_row[item]
            given = ds.label_names[row]
            other = next(c for c in ds.classes if c != given)
            wrong = item in flipped
            store.record(
                dataset_version=h,
                item_id=item,
                reviewer="ana",
                action="change" if wrong else "keep",
                old_label=given,
                new_label=other if wrong else given,
                shown={"queue": "ranking"},
                seen_decision_id=None,
            )
    finally:
        store.close()
    at = page(scanned).run()
    assert not at.exception, at.exception
    after = at.dataframe[0].value.set_index("id")
    est = after.loc[ranked_ids, COLUMN].to_numpy(dtype=float)
    assert np.isfinite(est[:12]).all() and ((est[:12] > 0) & (est[:12] < 1)).all()
    # blank below the lowest-ranked reviewed row (it would extrapolate there)
    assert np.isnan(est[12:]).all()
    assert any(
        "from 12 review decisions (static ranking)" in c.value.replace("\\", "") for c in at.caption
    )


@pytest.fixture
def annotated(tmp_path, monkeypatch):
    """A stored scan of a dataset whose items carry several annotators' labels."""
    from labelaudit.workspace import Workspace
    from tests.test_report import store_fake_scan
    from tests.test_review_data import toy_dataset, toy_scan_table

    monkeypatch.delenv("LABELAUDIT_DB_URL", raising=False)
    ws = Workspace(tmp_path / "ws")
    h = ws.save_dataset(toy_dataset())
    loaded = ws.load_dataset(h)
    assert loaded.annotations is not None and loaded.pred_probs is not None
    store_fake_scan(loaded, ws, toy_scan_table(loaded), {})
    return ws, loaded, h


def test_the_review_page_offers_the_active_learning_queue(annotated):
    ws, ds, h = annotated
    at = AppTest.from_file(REVIEW_PAGE, default_timeout=90)
    at.session_state["workspace"] = str(ws.root)
    at.session_state["dataset_hash"] = h
    at.session_state["reviewer"] = "ana"
    at.run()
    assert not at.exception, at.exception
    kind = at.radio(key="review_queue_kind")
    assert "one more annotation (active learning)" in list(kind.options)
    kind.set_value("one more annotation (active learning)").run()
    assert not at.exception, at.exception
    expected = learn.active_learning_scores(ds, ds.pred_probs)["id"].astype(str).tolist()
    shown = at.session_state["review_session"].shown
    assert shown is not None and shown.item_id == expected[0], texts(at)
