"""The Review page when the review database is busy or damaged (issue 19), driven by AppTest.

Before: a held write lock gave an unhandled exception after 33 s; a truncated database showed an
empty review. Now: a decision the database was too busy to take is kept with a Retry button and is
saved by it (label and comment included); a damaged database is a message with how to restore it.
"""

from __future__ import annotations

import os

import pytest

from tests.store_lock import release
from tests.test_review_page import button, open_page, shown


@pytest.fixture
def setup(tmp_path, monkeypatch):
    from labelaudit.workspace import Workspace
    from tests.test_review_data import toy_dataset

    monkeypatch.delenv("LABELAUDIT_DB_URL", raising=False)
    monkeypatch.setenv("LABELAUDIT_DB_BUSY_TIMEOUT", "0.5")
    ws = Workspace(tmp_path / "ws")
    ds = toy_dataset()
    h = ws.save_dataset(ds)
    return ws, ds, h


def test_busy_database_keeps_the_decision_and_retry_saves_it(setup, write_lock):
    ws, ds, h = setup
    at = open_page(ws, h)
    assert not at.exception
    item = shown(at).item_id
    holder = write_lock(ws.root / "review.sqlite")
    at.selectbox(key="review_label").set_value("refund_not_showing_up")
    at.text_input(key="review_comment").set_value("a refund, surely")
    button(at, "review_change").click().run()
    assert not at.exception
    assert any("Not saved yet" in w.value for w in at.warning)
    assert shown(at).item_id == item  # the item stays on screen
    pending = at.session_state["review_session"].pending
    assert pending is not None and pending.new_label == "refund_not_showing_up"
    store = ws.review_store(read_only=True)
    assert len(store.log(h)) == 0  # nothing written meanwhile
    release(holder)
    button(at, "review_retry").click().run()
    assert not at.exception
    assert any("Saved" in s.value for s in at.success)
    assert at.session_state["review_session"].pending is None
    d = store.log(h).iloc[-1]
    assert (d.item_id, d.action, d.new_label, d.comment) == (
        item,
        "change",
        "refund_not_showing_up",
        "a refund, surely",
    )
    store.close()


def test_damaged_database_is_a_message_with_the_restore_command(setup):
    ws, ds, h = setup
    store = ws.review_store()
    store.record(
        dataset_version=h,
        item_id=ds.ids[0],
        reviewer="ana",
        action="keep",
        old_label=str(ds.frame["label"].iat[0]),
        new_label=None,
    )
    store.close()
    os.truncate(ws.root / "review.sqlite", 0)
    at = open_page(ws, h)
    assert not at.exception
    assert any("cannot be used right now" in e.value for e in at.error)
    said = "\n".join(str(t.value) for t in at.text)
    assert "the file is empty (0 bytes)" in said and "labelaudit review restore" in said
    assert any(b.key == "review_retry_open" for b in at.button)
    assert not at.code  # no item shown from an empty log
