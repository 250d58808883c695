"""The Review page driven by AppTest: identity, accept, conflict, undo, skip, bulk, export."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from labelaudit.review.store import ReviewStore
from labelaudit.workspace import Workspace
from tests.test_review_data import toy_dataset

PAGE = str(Path(__file__).resolve().parents[1] / "views" / "review.py")


@pytest.fixture
def setup(tmp_path, monkeypatch):
    monkeypatch.delenv("LABELAUDIT_DB_URL", raising=False)
    ws = Workspace(tmp_path / "ws")
    ds = toy_dataset()
    h = ws.save_dataset(ds)
    store = ReviewStore(ws.database_url)
    yield ws, ds, h, store
    store.close()


def open_page(ws, h, reviewer: str | None = "ana", **state) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.session_state["workspace"] = str(ws.root)
    at.session_state["dataset_hash"] = h
    if reviewer:
        at.session_state["reviewer"] = reviewer
    for k, v in state.items():
        at.session_state[k] = v
    return at.run()


def texts(at) -> str:
    return "\n".join(str(t.value) for t in at.text) + "\n".join(str(c.value) for c in at.code)


def shown(at):
    """The item on screen (the page's ReviewSession.shown)."""
    return at.session_state["review_session"].shown


def button(at, key):
    return next(b for b in at.button if b.key == key)


def progress(at) -> str:
    """The card's progress line (one progress bar whose text carries the numbers)."""
    return next(p.proto.text for p in at.get("progress") if "Decided in this queue" in p.proto.text)


def test_asks_reviewer_name_once(setup):
    ws, ds, h, _ = setup
    at = open_page(ws, h, reviewer=None)
    assert not at.exception
    assert (
        at.text_input(key="reviewer_name_input") is not None and not at.code
    )  # no item before a name
    at.text_input(key="reviewer_name_input").set_value("Bea")
    button(at, "FormSubmitter:reviewer_form-Start reviewing").click().run()
    assert at.session_state["reviewer"] == "Bea"
    assert "Reviewing as Bea (typed, not verified, lead)" in texts(at)


def test_accept_suggestion_is_saved_with_what_was_shown(setup):
    ws, ds, h, store = setup
    at = open_page(ws, h)
    assert not at.exception
    # Without a scan the queue follows ds.pred_probs: the least self-confident row first.
    first = shown(at).item_id
    assert first in texts(at) and ds.frame.set_index("id").loc[first, "text"] in texts(at)
    suggested = shown(at).suggested
    button(at, "review_accept").click().run()
    assert not at.exception
    log = store.log(h)
    assert log[["item_id", "action", "new_label", "reviewer"]].values.tolist() == [
        [first, "accept", suggested, "ana"]
    ]
    assert '"queue": "ranking"' in log.loc[0, "shown"]
    assert any("Saved" in s.value for s in at.success)
    assert shown(at).item_id != first  # next item
    assert progress(at) == f"Decided in this queue: 1 of {ds.n:,} · remaining {ds.n - 1:,}"


def test_change_with_comment_keep_remove(setup):
    ws, ds, h, store = setup
    at = open_page(ws, h)
    item = shown(at).item_id
    at.selectbox(key="review_label").set_value("refund_not_showing_up")
    at.text_input(key="review_comment").set_value("looks like a refund")
    button(at, "review_change").click().run()
    d = store.log(h).iloc[-1]
    assert (d.item_id, d.action, d.new_label, d.comment) == (
        item,
        "change",
        "refund_not_showing_up",
        "looks like a refund",
    )
    second = shown(at).item_id
    button(at, "review_remove").click().run()
    assert store.current(h).set_index("item_id").loc[second, "action"] == "remove"


def test_conflict_warns_and_shows_item_again(setup):
    ws, ds, h, store = setup
    at = open_page(ws, h)
    item = shown(at).item_id
    # Another reviewer decides the same item while ana looks at it.
    store.record(
        dataset_version=h,
        item_id=item,
        reviewer="bo",
        action="keep",
        old_label=ds.frame.set_index("id").loc[item, "label"],
        new_label=None,
        seen_decision_id=None,
    )
    button(at, "review_accept").click().run()
    assert not at.exception
    warning = " ".join(w.value for w in at.warning).replace("\\", "")  # Markdown escapes
    assert "Not saved" in warning and "bo: keep" in warning
    assert store.log(h)["reviewer"].tolist() == ["bo"]  # ana's decision was not written
    assert shown(at).item_id == item  # shown again
    assert "Decided already: keep" in texts(at)
    # Deciding again now works, against bo's decision.
    button(at, "review_ambiguous").click().run()
    assert store.log(h)["reviewer"].tolist() == ["bo", "ana"]
    assert store.current(h).set_index("item_id").loc[item, "action"] == "ambiguous"


def test_undo_and_skip(setup):
    ws, ds, h, store = setup
    at = open_page(ws, h)
    first = shown(at).item_id
    button(at, "review_keep").click().run()
    assert button(at, "review_undo").disabled is False
    button(at, "review_undo").click().run()
    assert store.log(h)["action"].tolist() == ["keep", "undo"]
    assert len(store.current(h)) == 0
    assert shown(at).item_id == first  # back on screen
    button(at, "review_skip").click().run()
    second = shown(at).item_id
    assert second != first and first in at.session_state["review_session"].skipped


def test_selection_queue_and_bulk_skips_test_split(setup):
    ws, ds, h, store = setup
    ids = ["r2", "r3", "r33", "r34"]  # r32.. are in the test split
    at = open_page(ws, h, review_queue=ids, review_queue_source="cluster 4")
    assert shown(at).item_id == "r2"
    assert "Queue: cluster 4" in texts(at)
    at.selectbox(key="bulk_action").set_value("remove").run()
    assert "2 rows would change · 2 in the protected test split are skipped" in texts(at)
    button(at, "bulk_prepare").click().run()
    assert any("Apply 'remove' to 2 rows" in w.value for w in at.warning)
    assert len(store.log(h)) == 0  # nothing before the confirmation
    button(at, "bulk_confirm").click().run()
    assert not at.exception
    cur = store.current(h)
    assert sorted(cur["item_id"]) == ["r2", "r3"]
    assert any("skipped 2 in the protected test split" in s.value for s in at.success)


def test_dataset_text_is_never_markdown(setup):
    ws, ds, h, _ = setup
    at = open_page(ws, h, review_queue=["r4"], review_queue_source="selection")
    assert "<script>" in texts(at)
    assert all("<script>" not in m.value for m in at.markdown)


def test_bad_database_url_is_an_error_not_a_traceback(setup, monkeypatch):
    ws, ds, h, _ = setup
    monkeypatch.setenv(
        "LABELAUDIT_DB_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2"
    )
    at = open_page(ws, h)
    assert not at.exception
    assert any("Cannot open the review database" in e.value for e in at.error)


def test_show_decided_items_moves_on_after_each_decision(setup):
    ws, ds, h, store = setup
    at = open_page(ws, h, review_queue=["r2", "r3"], review_queue_source="selection")
    at.toggle(key="review_include_decided").set_value(True).run()
    button(at, "review_keep").click().run()
    assert shown(at).item_id == "r3"
    button(at, "review_keep").click().run()
    # Both decided: the queue starts over with the decided items, showing their decisions.
    assert shown(at).item_id == "r2"
    assert "Decided already: keep" in texts(at)


def test_comments_and_labels_are_escaped_in_alerts(setup):
    ws, ds, h, store = setup
    at = open_page(ws, h)
    item = shown(at).item_id
    store.record(
        dataset_version=h,
        item_id=item,
        reviewer="**mallory**",
        action="keep",
        old_label=ds.frame.set_index("id").loc[item, "label"],
        new_label=None,
        comment="![t](http://evil.example/t.png)",
        seen_decision_id=None,
    )
    button(at, "review_keep").click().run()
    (warning,) = [w.value for w in at.warning]
    assert "\\*\\*mallory\\*\\*" in warning and "\\!\\[t\\]\\(http" in warning


def test_pin_item_as_finding(setup):
    ws, ds, h, store = setup
    at = open_page(ws, h)
    item = shown(at).item_id
    assert not [t for t in at.text_input if t.key == "review_pin_note"]  # in a closed dialog
    button(at, "review_pin_open").click().run()
    at.text_input(key="review_pin_note").set_value("refund vs card confusion").run()
    button(at, "review_pin").click().run()
    f = store.findings(h)
    assert f[["kind", "target", "note", "author"]].values.tolist() == [
        ["item", item, "refund vs card confusion", "ana"]
    ]
    assert shown(at).item_id == item  # pinning is not a decision
    assert any(f"Pinned item {item}" in s.value.replace("\\", "") for s in at.success)
    assert not [t for t in at.text_input if t.key == "review_pin_note"]  # the dialog closed


def test_pin_on_a_busy_database_says_so_in_the_dialog_and_keeps_the_note(setup, monkeypatch):
    from labelaudit.errors import StoreError

    ws, ds, h, store = setup
    at = open_page(ws, h)

    def busy(self, **_kw):
        raise StoreError("the database is locked")

    original = ReviewStore.add_finding
    monkeypatch.setattr(ReviewStore, "add_finding", busy)
    button(at, "review_pin_open").click().run()
    at.text_input(key="review_pin_note").set_value("a note").run()
    button(at, "review_pin").click().run()
    assert not at.exception
    assert any("Not pinned" in e.value for e in at.error)
    assert at.text_input(key="review_pin_note").value == "a note"  # the dialog is still open
    monkeypatch.setattr(ReviewStore, "add_finding", original)  # free again: pin once more
    button(at, "review_pin").click().run()
    assert store.findings(h)["note"].tolist() == ["a note"]
    assert not [t for t in at.text_input if t.key == "review_pin_note"]


def test_bulk_accept_without_a_scan_says_why(setup):
    ws, ds, h, store = setup
    at = open_page(ws, h, review_queue=["r2", "r3"], review_queue_source="selection")
    at.selectbox(key="bulk_action").set_value("accept").run()
    button(at, "bulk_prepare").click().run()
    button(at, "bulk_confirm").click().run()
    assert not at.exception
    assert any("run the scan first" in e.value for e in at.error)
    assert len(store.log(h)) == 0


# --------------------------------------------------------------------------- peers' features
def test_go_back_and_jump_to_a_decided_item(setup):
    ws, ds, h, store = setup
    at = open_page(ws, h)
    first = shown(at).item_id
    button(at, "review_keep").click().run()
    second = shown(at).item_id
    button(at, "review_keep").click().run()
    assert shown(at).item_id not in (first, second)
    button(at, "review_jump_open").click().run()
    at.selectbox(key="review_jump_pick").set_value(first)
    button(at, "review_jump").click().run()
    assert not at.exception
    assert shown(at).item_id == first and "Decided already: keep" in texts(at)
    assert not [b for b in at.button if b.key == "review_jump"]  # the dialog closed
    button(at, "review_back").click().run()
    assert shown(at).item_id != first
    # any id can be typed; an unknown one is said plainly, in the dialog, which stays open
    button(at, "review_jump_open").click().run()
    at.text_input(key="review_jump_id").set_value("no-such-id")
    button(at, "review_jump").click().run()
    assert any("No row with id 'no-such-id'" in e.value.replace("\\", "") for e in at.error)
    assert at.text_input(key="review_jump_id").value == "no-such-id"


def test_typical_rows_of_given_and_suggested_class(setup):
    ws, ds, h, _ = setup
    at = open_page(ws, h, review_queue=["r0"], review_queue_source="selection")
    assert shown(at).item_id == "r0"
    out = texts(at)
    # r0: given card_arrival, suggested card_delivery_estimate (toy_dataset's planted row)
    assert "card_arrival (given)" in out and "card_delivery_estimate (suggested)" in out
    from labelaudit.review.queue import class_exemplars

    ex = class_exemplars(ds, pred_probs=ds.pred_probs, k=4)
    best = [
        str(ds.frame["id"].iloc[r])
        for r in ex.rows[ds.classes.index("card_delivery_estimate")]
        if str(ds.frame["id"].iloc[r]) != "r0"
    ][0]
    assert f"\n  {best}: " in out  # indented under its class (one text block)
    assert "highest self-confidence" in texts(at)


def test_grid_decides_the_selection_in_one_step_and_undoes_it(setup):
    ws, ds, h, store = setup
    at = open_page(ws, h, review_queue=["r2", "r3", "r5", "r33"], review_queue_source="cluster 4")
    grid = next(d for d in at.dataframe if list(d.value.columns)[:2] == ["id", "text"])
    assert grid.value["id"].tolist() == ["r2", "r3", "r5", "r33"]
    at.session_state["grid_table"] = {"selection": {"rows": [0, 2, 3], "columns": []}}
    at.selectbox(key="grid_action").set_value("change").run()
    at.selectbox(key="grid_label").set_value("card_arrival").run()
    assert "3 of 4 rows selected · 1 in the protected test split are left out" in texts(at)
    button(at, "grid_apply").click().run()
    assert not at.exception
    log = store.log(h)
    assert log[["item_id", "action", "new_label"]].values.tolist() == [
        ["r2", "change", "card_arrival"],
        ["r5", "change", "card_arrival"],
    ]
    assert any("Saved 2 decisions" in s.value for s in at.success)
    assert progress(at).startswith("Decided in this queue: 2 of")  # the card's progress follows
    button(at, "grid_undo").click().run()
    assert store.log(h)["action"].tolist()[-2:] == ["undo", "undo"]
    assert len(store.current(h)) == 0


def test_the_evidence_picker_shows_one_view_and_keeps_it_for_the_next_item(setup):
    ws, ds, h, _ = setup
    at = open_page(ws, h)
    # the typical rows' method is the last line of their text block, the other views' notes captions
    captions = lambda: " ".join(c.value for c in at.caption) + texts(at)  # noqa: E731
    assert "Typical rows:" in captions() and "No detector scores yet" not in captions()
    at.segmented_control(key="review_evidence").set_value("Detectors").run()
    assert "No detector scores yet" in captions() and "Typical rows:" not in captions()
    first = shown(at).item_id
    button(at, "review_keep").click().run()
    assert shown(at).item_id != first and "No detector scores yet" in captions()
    at.segmented_control(key="review_evidence").set_value("Annotators").run()
    assert "No annotator labels for this item." in captions()
    at.segmented_control(key="review_evidence").set_value(None).run()  # cleared: typical rows
    assert "Typical rows:" in captions()


def _serving_script() -> None:
    import streamlit as st

    from components.review import serving

    st.text(f"serving={serving()}")


def test_the_loaded_objects_are_frozen_once_and_only_in_a_server(monkeypatch):
    """freeze_loaded: gc.freeze once per server process, never in a test or a notebook. Whether
    it runs in a real server (a browser's session) is seen in the bench: streamlit.gc_collect
    per click (bench/results/review_ui.md)."""
    from components import review

    at = AppTest.from_function(_serving_script).run()
    assert [t.value for t in at.text] == ["serving=False"]  # an AppTest has no browser request
    assert not review.serving()  # no script run context at all
    calls: list[str] = []
    monkeypatch.setattr(review, "_FROZEN", [])
    monkeypatch.setattr(review.gc, "freeze", lambda: calls.append("freeze"))
    monkeypatch.setattr(review.gc, "collect", lambda *a: calls.append("collect") or 0)
    assert not review.freeze_loaded() and calls == []
    monkeypatch.setattr(review, "serving", lambda: True)
    assert review.freeze_loaded() and calls == ["collect", "freeze"]
    assert not review.freeze_loaded() and calls == ["collect", "freeze"]  # once
