"""The review rules without Streamlit (labelaudit.review.session): which item, skip, decide, conflict,
undo; and a bulk request. A real SQLite store; the Review page runs the same code (test_review_page)."""

from __future__ import annotations

import doctest

import pytest

import labelaudit.review.session
from labelaudit.review.queue import BulkRequest, build_queue, item_evidence
from labelaudit.review.session import LastDecision, ReviewSession
from labelaudit.review.store import ReviewStore
from tests.test_review_data import toy_dataset


@pytest.fixture
def review(tmp_path):
    ds = toy_dataset()
    store = ReviewStore(f"sqlite:///{tmp_path / 'review.sqlite'}")
    yield ds, store, ReviewSession(dataset_version=ds.content_hash)
    store.close()


def show_next(session, store, ds, queue):
    item = session.pick(queue)
    session.show(store, item_evidence(ds, item), "ranking")
    return item


def test_doctests_pass():
    result = doctest.testmod(labelaudit.review.session, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 2 and result.failed == 0


@pytest.mark.parametrize(
    ("skipped", "forced", "queue", "expected"),
    [
        ([], None, ["a", "b"], "a"),
        (["a"], None, ["a", "b"], "b"),
        (["b", "a"], None, ["a", "b"], "b"),  # all passed: the one passed longest ago
        (["x", "a"], None, ["a"], "a"),  # passed ids outside the queue are ignored
        ([], "z", ["a"], "z"),  # forced back wins, even outside the queue
        ([], None, [], None),
    ],
)
def test_pick(skipped, forced, queue, expected):
    assert ReviewSession("v", skipped=skipped, forced=forced).pick(queue) == expected


def test_accept_saves_what_was_shown_and_moves_on(review):
    ds, store, session = review
    queue = build_queue(ds, pred_probs=ds.pred_probs)
    first = show_next(session, store, ds, queue)
    suggested = session.shown.suggested
    out = session.decide(store, ds, reviewer="ana", action="accept")
    assert out.kind == "saved" and f"on item {first}" in out.message
    d = store.log(ds.content_hash).iloc[0]
    assert (d.item_id, d.action, d.new_label, d.reviewer) == (first, "accept", suggested, "ana")
    assert '"queue": "ranking"' in d.shown
    assert session.last == LastDecision(first, int(d.decision_id))
    assert session.shown is None and session.pick(queue) != first


def test_change_needs_a_label_and_refusal_changes_nothing(review):
    ds, store, session = review
    item = show_next(session, store, ds, ["r2"])
    out = session.decide(store, ds, reviewer="ana", action="change", new_label=None)
    assert out.kind == "error" and "needs the new label" in out.message
    assert session.shown.item_id == item and session.last is None
    assert len(store.log(ds.content_hash)) == 0
    out = session.decide(
        store,
        ds,
        reviewer="ana",
        action="change",
        new_label="refund_not_showing_up",
        comment=" why ",
    )
    assert out.kind == "saved"
    assert store.log(ds.content_hash).iloc[0].comment == "why"


def test_a_decision_made_meanwhile_is_a_conflict_and_the_item_stays(review):
    ds, store, session = review
    item = show_next(session, store, ds, ["r2", "r3"])
    store.record(
        dataset_version=ds.content_hash,
        item_id=item,
        reviewer="bo",
        action="keep",
        old_label="x",
        new_label=None,
    )
    out = session.decide(store, ds, reviewer="ana", action="remove")
    assert out.kind == "conflict" and "bo: keep" in out.message
    assert store.log(ds.content_hash)["reviewer"].tolist() == ["bo"]
    assert session.pick(["r2", "r3"]) == item  # forced back on screen
    # Now checked against bo's decision: deciding again works.
    assert session.decide(store, ds, reviewer="ana", action="ambiguous").kind == "saved"
    assert store.current(ds.content_hash).set_index("item_id").loc[item, "action"] == "ambiguous"
    assert session.forced is None


def test_undo_brings_the_item_back_and_a_conflicting_undo_writes_nothing(review):
    ds, store, session = review
    assert session.undo(store, reviewer="ana") is None  # nothing to undo yet
    item = show_next(session, store, ds, ["r2", "r3"])
    session.decide(store, ds, reviewer="ana", action="keep")
    assert session.decided == [item]
    out = session.undo(store, reviewer="ana")
    assert out.kind == "saved" and f"item {item} is back" in out.message
    assert session.decided == []  # undone: no longer among this session's decisions
    assert store.log(ds.content_hash)["action"].tolist() == ["keep", "undo"]
    assert session.pick(["r2", "r3"]) == item and session.last is None
    show_next(session, store, ds, ["r2", "r3"])
    session.decide(store, ds, reviewer="ana", action="keep")
    store.undo(
        dataset_version=ds.content_hash,
        item_id=item,
        reviewer="bo",
        seen_decision_id=store.latest_decision_id(ds.content_hash, item),
    )
    out = session.undo(store, reviewer="ana")
    assert out.kind == "conflict" and session.last is None
    assert store.log(ds.content_hash)["reviewer"].tolist() == ["ana", "ana", "ana", "bo"]


def test_skip_moves_the_item_behind_the_others(review):
    ds, store, session = review
    first = show_next(session, store, ds, ["r2", "r3"])
    session.skip(first)
    assert session.shown is None and session.pick(["r2", "r3"]) == "r3"
    session.skip("r3")
    assert session.pick(["r2", "r3"]) == "r2"


def test_a_session_of_another_dataset_version_refuses_to_decide(review):
    ds, store, _ = review
    other = ReviewSession("another-version")
    other.show(store, item_evidence(ds, "r2"), "ranking")
    with pytest.raises(Exception, match="another-version"):
        other.decide(store, ds, reviewer="ana", action="keep")


def test_bulk_request_applies_and_reports_conflicts(review):
    ds, store, _ = review
    seen = store.latest_decision_ids(ds.content_hash)
    req = BulkRequest(ids=["r2", "r3", "r33"], action="keep", source="cluster 1", seen=seen)
    assert req.describe() == "keep"
    assert (
        BulkRequest(ids=[], action="change", source="", seen={}, new_label="refund").describe()
        == "change → refund"
    )
    store.record(
        dataset_version=ds.content_hash,
        item_id="r3",
        reviewer="bo",
        action="keep",
        old_label="x",
        new_label=None,
    )
    res = req.apply(store, ds, reviewer="ana")
    assert [d.item_id for d in res.saved] == ["r2"]
    assert res.conflicts == ["r3"] and res.skipped_test == ["r33"]


def test_bulk_targets_from_the_scan_table():
    import pandas as pd

    from labelaudit.review.queue import (
        bulk_clusters,
        cluster_slice,
        suggestion_map,
        without_decided,
    )

    ds = toy_dataset()
    table = pd.DataFrame(
        {
            "id": ds.frame["id"],
            "cluster": [i % 3 - 1 for i in range(ds.n)],  # -1, 0, 1, -1, ...
            "suggested_label": ds.frame["label"].iloc[::-1].to_numpy(),
        }
    )
    assert bulk_clusters(table) == [0, 1] and bulk_clusters(None) == []
    assert bulk_clusters(table.drop(columns="cluster")) == []
    in_zero = cluster_slice(ds, table, 0)
    assert in_zero == [f"r{i}" for i in range(1, ds.n, 3)]
    label = ds.frame["label"].iloc[1]
    assert cluster_slice(ds, table, 0, label) == [
        i for i in in_zero if ds.frame.set_index("id").loc[i, "label"] == label
    ]
    assert suggestion_map(table)["r0"] == ds.frame["label"].iloc[-1]
    assert suggestion_map(table.drop(columns="suggested_label")) is None
    assert without_decided(["a", "b", "c"], ["b", "z"]) == ["a", "c"]


# --------------------------------------------------------------------------- grid decisions
def test_grid_decision_is_one_transaction_and_one_undo(review):
    ds, store, session = review
    h = ds.content_hash
    ids = ["r2", "r5", "r33"]  # r33 is in the protected test split
    seen = {i: store.latest_decision_id(h, i) for i in ids}
    out = session.decide_grid(
        store,
        ds,
        item_ids=ids,
        action="change",
        new_label="card_arrival",
        reviewer="ana",
        seen=seen,
    )
    assert (
        out.kind == "saved" and "Saved 2 decisions" in out.message and "test split" in out.message
    )
    log = store.log(h)
    assert log[["item_id", "action", "new_label"]].values.tolist() == [
        ["r2", "change", "card_arrival"],
        ["r5", "change", "card_arrival"],
    ]
    assert all('"grid": true' in s for s in log["shown"])
    assert session.decided == ["r2", "r5"]
    out = session.undo(store, reviewer="ana")
    assert out.kind == "saved" and "2 items" in out.message
    assert store.log(h)["action"].tolist() == ["change", "change", "undo", "undo"]
    assert len(store.current(h)) == 0 and session.last is None
    # back in the grid, and the first of them on the card
    assert session.decided == [] and session.forced == "r2"


def test_grid_conflict_writes_nothing(review):
    ds, store, session = review
    h = ds.content_hash
    seen = {i: store.latest_decision_id(h, i) for i in ["r2", "r6"]}
    # bo decides r6 after the grid was drawn
    store.record(
        dataset_version=h,
        item_id="r6",
        reviewer="bo",
        action="keep",
        old_label=ds.frame.loc[6, "label"],
        new_label=None,
        seen_decision_id=None,
    )
    out = session.decide_grid(
        store, ds, item_ids=["r2", "r6"], action="keep", reviewer="ana", seen=seen
    )
    assert out.kind == "conflict" and "item r6" in out.message
    assert store.log(h)["reviewer"].tolist() == ["bo"]  # r2 not written either


def test_grid_accept_uses_each_rows_suggestion_and_refuses_held_rows(review):
    ds, store, session = review
    h = ds.content_hash
    sug = {"r2": "card_arrival", "r3": "card_delivery_estimate"}
    seen = {"r2": None, "r3": None, "r4": None}
    out = session.decide_grid(
        store,
        ds,
        item_ids=["r2", "r3", "r4"],
        action="accept",
        suggestions=sug,
        reviewer="ana",
        seen=seen,
    )
    assert out.kind == "saved" and "1 without a suggestion" in out.message
    cur = store.current(h).set_index("item_id")
    assert cur.loc["r2", "final_label"] == "card_arrival"
    assert cur.loc["r3", "final_label"] == "card_delivery_estimate"
    from labelaudit.review.identity import Identity

    ana = Identity("ana", role="reviewer")
    out = session.decide_grid(
        store,
        ds,
        item_ids=["r7"],
        action="keep",
        reviewer="ana",
        seen={"r7": None},
        hidden={"r7"},
        identity=ana,
    )
    assert out.kind == "error" and "assigned to other reviewers" in out.message
    assert "r7" not in set(store.log(h)["item_id"])


def test_typical_rows_are_the_most_self_confident_of_the_class():
    import numpy as np

    from labelaudit.review.queue import (
        EXEMPLAR_BY_CENTRALITY,
        EXEMPLAR_BY_CONFIDENCE,
        class_exemplars,
        typical_rows,
    )

    ds = toy_dataset()
    ex = class_exemplars(ds, pred_probs=ds.pred_probs, k=3)
    assert ex.method == EXEMPLAR_BY_CONFIDENCE
    k = ds.classes.index("card_arrival")
    rows = ex.rows[k]
    train = ~ds.test_mask
    members = np.flatnonzero((ds.labels == k) & train)
    conf = ds.pred_probs[members, k]
    assert list(rows) == list(members[np.argsort(-conf, kind="stable")[:3]])
    assert not ds.test_mask[rows].any()
    t = typical_rows(ds, ex, "card_arrival", exclude=ds.frame["id"].iloc[rows[0]])
    assert len(t) == 2 and list(t.columns) == ["id", "text"]
    # ids and texts read once with the rows; the card reads no column of the dataset
    for j, name in enumerate(ds.classes):
        assert list(ex.ids[j]) == ds.frame["id"].iloc[ex.rows[j]].astype(str).tolist()
        assert list(ex.texts[j]) == ds.frame["text"].iloc[ex.rows[j]].astype(str).tolist()
        bare = type(ex)(rows=ex.rows, method=ex.method)  # without them: read from the frame
        assert typical_rows(ds, bare, name).equals(typical_rows(ds, ex, name))
    assert typical_rows(ds, ex, "no such class").empty
    # without probabilities: closest to the class centroid
    ex2 = class_exemplars(ds, embeddings=ds.embeddings, k=2)
    assert ex2.method == EXEMPLAR_BY_CENTRALITY
    e = ds.embeddings[members].astype(float)
    c = e.sum(0) / np.linalg.norm(e.sum(0))
    assert list(ex2.rows[k]) == list(members[np.argsort(-(e @ c), kind="stable")[:2]])
