"""Review as a team, against SQLite and a real PostgreSQL: identities in the log, roles, assignments
with overlap, blind double review, consensus, adjudication (final), agreement, and the live queue."""

from __future__ import annotations

import multiprocessing as mp
import os
import threading
import uuid

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from labelaudit.errors import UsageError
from labelaudit.review import team
from labelaudit.review.identity import Identity, leads_from_env, resolve_identity, role_for
from labelaudit.review.live import LiveQueue
from labelaudit.review.session import ReviewSession, ShownItem
from labelaudit.review.store import ConflictError, FinalDecisionError, ReviewStore

PG_URL = os.environ.get("LABELAUDIT_TEST_PG_URL")
LEAD = Identity("lea@example.com", auth="oidc", role="lead", subject="https://idp|lea")


@pytest.fixture
def version() -> str:
    return uuid.uuid4().hex[:20]


def who(name: str, role: str = "reviewer") -> Identity:
    return Identity(name, auth="oidc", role=role, subject=f"https://idp|{name}")  # type: ignore[arg-type]


def items(n: int) -> list[str]:
    return [str(i) for i in range(n)]


# --------------------------------------------------------------------------- identity and roles
def test_resolve_identity_rules():
    leads = frozenset({"lea@example.com"})
    login = {"email": "Lea@Example.com", "name": "Lea", "sub": "42", "iss": "https://idp"}
    lead = resolve_identity(login=login, login_configured=True, typed_name="bo", leads=leads)
    assert lead == Identity("lea@example.com", auth="oidc", role="lead", subject="https://idp|42")
    # With login configured a typed name is never accepted, whatever it claims.
    assert resolve_identity(login=None, login_configured=True, typed_name="lea@example.com") is None
    typed = resolve_identity(login=None, login_configured=False, typed_name=" bo ", leads=leads)
    assert typed == Identity("bo", auth="typed", role="reviewer")
    # Nobody named as lead: everyone is one (a single reviewer keeps every action).
    assert role_for(["bo"], frozenset()) == "lead"
    assert leads_from_env({"LABELAUDIT_LEADS": " A@x.org ,b "}) == {"a@x.org", "b"}
    with pytest.raises(UsageError, match="e-mail"):
        resolve_identity(login={"sub": "1"}, login_configured=True, typed_name=None, leads=leads)


@pytest.mark.parametrize(
    ("name", "message"),
    [("", "needs a name"), ("a" * 121, "at most 120"), ("ana\nbo", "control character")],
)
def test_bad_names_are_refused(name, message):
    with pytest.raises(UsageError, match=message):
        Identity(name)


def test_every_decision_records_how_the_reviewer_was_identified(store, version):
    store.record(
        dataset_version=version,
        item_id="1",
        reviewer=LEAD.name,
        action="keep",
        old_label="a",
        new_label=None,
        identity=LEAD,
    )
    typed = Identity("bo", auth="typed")
    store.record(
        dataset_version=version,
        item_id="2",
        reviewer="bo",
        action="change",
        old_label="a",
        new_label="b",
        identity=typed,
    )
    store.undo(
        dataset_version=version,
        item_id="2",
        reviewer="bo",
        seen_decision_id=store.latest_decision_id(version, "2"),
        identity=typed,
    )
    store.record(
        dataset_version=version,
        item_id="3",
        reviewer="cli",
        action="keep",
        old_label="a",
        new_label=None,
    )
    log = store.log(version)
    assert log[["reviewer", "auth", "role", "capacity"]].values.tolist() == [
        [LEAD.name, "oidc", "lead", "single"],
        ["bo", "typed", "reviewer", "single"],
        ["bo", "typed", "reviewer", "single"],
        ["cli", "script", "reviewer", "single"],
    ]
    with pytest.raises(UsageError, match="identity is"):
        store.record(
            dataset_version=version,
            item_id="4",
            reviewer="bo",
            action="keep",
            old_label="a",
            new_label=None,
            identity=LEAD,
        )


# --------------------------------------------------------------------------- assignments
def test_split_is_balanced_and_overlap_pairs_are_spread(store, version):
    names = [f"r{i}" for i in range(5)]
    a = team.create_assignment(
        store,
        dataset_version=version,
        item_ids=items(1000),
        reviewers=names,
        overlap_share=0.1,
        lead=LEAD,
        seed=3,
    )
    assert a.n_items == 1000 and a.n_overlap == 100
    assert sum(a.per_reviewer.values()) == 1100
    assert max(a.per_reviewer.values()) - min(a.per_reviewer.values()) <= 1
    book = team.assignment_book(store, version)
    s = book.slots
    # Non-overlap items: exactly one holder; overlap items: two different reviewers.
    per_item = s.groupby("item_id")["reviewer"].agg(list)
    assert (per_item.map(len) <= 2).all()
    two = per_item[per_item.map(len) == 2]
    assert len(two) == 100 and all(len(set(r)) == 2 for r in two)
    # Every one of the 10 pairs shares 10 items (balanced kappas).
    pairs = two.map(lambda r: tuple(sorted(r))).value_counts()
    assert len(pairs) == 10 and pairs.min() >= 9 and pairs.max() <= 11
    # Each reviewer's queue keeps the source order.
    q = book.queue_for("r0")
    assert q == sorted(q, key=int)
    assert book.hidden_from("r0") == frozenset(set(per_item.index) - set(q))


def test_open_assignments_never_share_an_item(store, version):
    team.create_assignment(
        store,
        dataset_version=version,
        item_ids=items(10),
        reviewers=["ana"],
        overlap_share=0,
        lead=LEAD,
    )
    b = team.create_assignment(
        store,
        dataset_version=version,
        item_ids=items(15),
        reviewers=["bo", "cy"],
        overlap_share=0.2,
        lead=LEAD,
    )
    assert b.n_items == 5 and b.excluded == 10
    with pytest.raises(UsageError, match="held by open assignments"):
        team.create_assignment(
            store,
            dataset_version=version,
            item_ids=items(5),
            reviewers=["dee"],
            overlap_share=0,
            lead=LEAD,
        )
    team.close_assignment(
        store, dataset_version=version, assignment_id=b.assignment_id - 1, lead=LEAD
    )
    c = team.create_assignment(
        store,
        dataset_version=version,
        item_ids=items(5),
        reviewers=["dee"],
        overlap_share=0,
        lead=LEAD,
    )
    assert c.n_items == 5


def _create_worker(url, version, names, barrier, queue):
    s = ReviewStore(url)
    barrier.wait()
    try:
        a = team.create_assignment(
            s,
            dataset_version=version,
            item_ids=items(200),
            reviewers=names,
            overlap_share=0.1,
            lead=LEAD,
        )
        queue.put(a.n_items)
    except UsageError:
        queue.put(0)
    s.close()


def test_concurrent_leads_never_assign_an_item_twice(db_url, version, monkeypatch):
    import sys
    import types

    monkeypatch.setitem(sys.modules, "__main__", types.ModuleType("__main__"))
    ReviewStore(db_url).close()  # tables exist before the race
    ctx = mp.get_context("spawn")
    barrier, queue = ctx.Barrier(3), ctx.Queue()
    procs = [
        ctx.Process(
            target=_create_worker, args=(db_url, version, [f"p{k}a", f"p{k}b"], barrier, queue)
        )
        for k in range(3)
    ]
    for p in procs:
        p.start()
    got = sorted(queue.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(60)
    assert got == [0, 0, 200]
    book = team.assignment_book(ReviewStore(db_url), version)
    assert book.slots.groupby("item_id")["assignment_id"].nunique().max() == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"reviewers": []}, "at least one reviewer"),
        ({"reviewers": ["ana", "ANA"]}, "repeat"),
        ({"overlap_share": 1.5}, "outside"),
        ({"reviewers": ["ana"], "overlap_share": 0.2}, "two reviewers"),
        ({"item_ids": []}, "at least one item"),
        ({"lead": Identity("bo", role="reviewer")}, "only a lead"),
    ],
)
def test_bad_assignments_are_refused(store, version, kwargs, message):
    args = dict(
        dataset_version=version,
        item_ids=items(10),
        reviewers=["ana", "bo"],
        overlap_share=0.1,
        lead=LEAD,
    )
    args.update(kwargs)
    with pytest.raises(UsageError, match=message):
        team.create_assignment(store, **args)
    assert team.assignment_book(store, version).empty


# --------------------------------------------------------------------------- blind double review
def _overlap_setup(store, version, n=20, share=1.0):
    team.create_assignment(
        store,
        dataset_version=version,
        item_ids=items(n),
        reviewers=["ana", "bo"],
        overlap_share=share,
        lead=LEAD,
    )
    return team.assignment_book(store, version)


def _blind(store, version, book, item, name, action, label=None, **kw):
    slot = book.slot_of(item, name)
    return team.record_blind(
        store,
        dataset_version=version,
        item_id=item,
        slot=slot.slot,
        identity=who(name),
        action=action,
        old_label="a",
        new_label=label,
        seen_blind_id=team.blind_head(store, version, item, slot.slot),
        seen_decision_id=store.latest_decision_id(version, item),
        **kw,
    )


def test_agreeing_reviews_become_a_consensus_and_disagreeing_go_to_the_lead(store, version):
    book = _overlap_setup(store, version)
    first = _blind(store, version, book, "0", "ana", "change", "b")
    assert first.status == "waiting" and store.log(version).empty  # nothing in force yet
    second = _blind(store, version, book, "0", "bo", "accept", "b")
    assert second.status == "agreed" and second.consensus is not None
    log = store.log(version)
    assert log[["item_id", "new_label", "capacity"]].values.tolist() == [["0", "b", "consensus"]]
    # Both blind reviews keep the signed-in subject (issuer|sub), and the consensus names both.
    assert second.consensus.shown["double_review"]["subjects"] == [
        "https://idp|ana",
        "https://idp|bo",
    ]
    _blind(store, version, book, "1", "ana", "keep")
    out = _blind(store, version, book, "1", "bo", "remove")
    assert out.status == "disagreed" and out.consensus is None
    assert team.adjudication_queue(store, version) == ["1"]
    pairs = team.double_reviews(store, version).set_index("item_id")
    assert pairs.loc["0", "status"] == "agreed" and pairs.loc["1", "status"] == "disagreed"
    assert (pairs.loc["1", "rating_a"], pairs.loc["1", "rating_b"]) == ("a", team.REMOVED)
    # Only a lead adjudicates; the decision is final.
    with pytest.raises(UsageError, match="only a lead"):
        team.adjudicate(
            store,
            dataset_version=version,
            item_id="1",
            lead=who("ana"),
            action="keep",
            old_label="a",
            new_label=None,
            seen_decision_id=None,
        )
    d = team.adjudicate(
        store,
        dataset_version=version,
        item_id="1",
        lead=LEAD,
        action="change",
        old_label="a",
        new_label="c",
        seen_decision_id=None,
    )
    assert (
        d.final
        and d.capacity == "adjudication"
        and d.shown["adjudication"]["ratings"] == ["a", team.REMOVED]
    )
    assert team.adjudication_queue(store, version) == []
    with pytest.raises(FinalDecisionError, match="final"):
        store.record(
            dataset_version=version,
            item_id="1",
            reviewer="ana",
            action="keep",
            old_label="c",
            new_label=None,
            seen_decision_id=d.id,
            identity=who("ana"),
        )
    # A lead may still change it.
    store.record(
        dataset_version=version,
        item_id="1",
        reviewer=LEAD.name,
        action="keep",
        old_label="c",
        new_label=None,
        seen_decision_id=d.id,
        identity=LEAD,
    )


def test_a_blind_review_is_only_for_the_slot_holder(store, version):
    book = _overlap_setup(store, version, n=4, share=0.5)
    single = next(i for i in items(4) if len(book.holders(i)) == 1)
    overlap = next(i for i in items(4) if len(book.holders(i)) == 2)
    holder = book.holders(overlap)[0]
    with pytest.raises(UsageError, match="not assigned to cy"):
        team.record_blind(
            store,
            dataset_version=version,
            item_id=overlap,
            slot=0,
            identity=who("cy"),
            action="keep",
            old_label="a",
            new_label=None,
            seen_blind_id=None,
            seen_decision_id=None,
        )
    other = next(n for n in ("ana", "bo") if n != holder)
    with pytest.raises(UsageError, match=f"not assigned to {other}"):
        team.record_blind(
            store,
            dataset_version=version,
            item_id=overlap,
            slot=book.slot_of(overlap, holder).slot,
            identity=who(other),
            action="keep",
            old_label="a",
            new_label=None,
            seen_blind_id=None,
            seen_decision_id=None,
        )
    with pytest.raises(UsageError, match="reviewed once"):
        _blind(store, version, book, single, book.holders(single)[0], "keep")


def test_blind_conflicts_and_undo(store, version):
    book = _overlap_setup(store, version, n=3)
    slot = book.slot_of("0", "ana").slot
    first = _blind(store, version, book, "0", "ana", "keep")
    # The same reviewer in a second tab, still looking at the old state: refused.
    with pytest.raises(ConflictError):
        team.record_blind(
            store,
            dataset_version=version,
            item_id="0",
            slot=slot,
            identity=who("ana"),
            action="remove",
            old_label="a",
            new_label=None,
            seen_blind_id=None,
            seen_decision_id=None,
        )
    # The lead decided the item meanwhile: bo's blind review is refused, nothing written.
    lead_d = store.record(
        dataset_version=version,
        item_id="2",
        reviewer=LEAD.name,
        action="keep",
        old_label="a",
        new_label=None,
        identity=LEAD,
    )
    with pytest.raises(ConflictError):
        team.record_blind(
            store,
            dataset_version=version,
            item_id="2",
            slot=book.slot_of("2", "bo").slot,
            identity=who("bo"),
            action="remove",
            old_label="a",
            new_label=None,
            seen_blind_id=None,
            seen_decision_id=None,
        )
    assert lead_d.id == store.latest_decision_id(version, "2")
    # Undo of the second review also undoes the consensus it made.
    second = _blind(store, version, book, "0", "bo", "keep")
    assert second.status == "agreed"
    undo, undone = team.undo_blind(
        store,
        dataset_version=version,
        item_id="0",
        slot=book.slot_of("0", "bo").slot,
        identity=who("bo"),
        seen_blind_id=second.review.id,
    )
    assert undo.action == "undo" and undone is not None and undone.action == "undo"
    assert "0" not in set(store.current(version)["item_id"])
    assert team.double_reviews(store, version).set_index("item_id").loc["0", "status"] == "waiting"
    assert first.review.id  # ana's review still stands


def test_two_blind_reviews_landing_at_once_settle_the_pair_once(store, version):
    book = _overlap_setup(store, version, n=30)
    barrier = threading.Barrier(2)
    errors: list[Exception] = []

    def review(name):
        s = ReviewStore(store.url)
        barrier.wait()
        try:
            for i in items(30):
                _blind(s, version, book, i, name, "keep")
        except Exception as e:  # noqa: BLE001 (reported below)
            errors.append(e)
        s.close()

    threads = [threading.Thread(target=review, args=(n,)) for n in ("ana", "bo")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    log = store.log(version)
    assert len(log) == 30 and log["item_id"].is_unique and set(log["capacity"]) == {"consensus"}


def test_team_agreement_matches_sklearn(store, version):
    names = ["ana", "bo", "cy"]
    team.create_assignment(
        store,
        dataset_version=version,
        item_ids=items(120),
        reviewers=names,
        overlap_share=0.5,
        lead=LEAD,
        seed=1,
    )
    book = team.assignment_book(store, version)
    rng = np.random.default_rng(0)
    labels = ["a", "b", "c"]
    for item in items(120):
        truth = labels[int(item) % 3]
        for name in book.holders(item):
            if len(book.holders(item)) < 2:
                continue
            said = truth if rng.random() < 0.7 else labels[rng.integers(3)]
            _blind(store, version, book, item, name, "change", said)
    agreement = team.team_agreement(store, version, classes=labels)
    pairs = team.double_reviews(store, version).dropna(subset=["rating_a", "rating_b"])
    assert agreement.n_items == len(pairs) == 60
    for row in agreement.pairs.itertuples():
        both = pairs[
            pairs[["reviewer_a", "reviewer_b"]].apply(set, axis=1)
            == {row.annotator_a, row.annotator_b}
        ]
        a = np.where(both["reviewer_a"] == row.annotator_a, both["rating_a"], both["rating_b"])
        b = np.where(both["reviewer_a"] == row.annotator_a, both["rating_b"], both["rating_a"])
        assert row.overlap == len(both)
        assert row.agreement == pytest.approx(float(np.mean(a == b)))
        assert row.kappa == pytest.approx(cohen_kappa_score(a, b))
    assert agreement.raw.value == pytest.approx(
        float(np.mean(pairs["rating_a"] == pairs["rating_b"]))
    )
    assert set(agreement.per_class["label"]) <= set(labels)


def test_overview_and_moving_open_items(store, version):
    team.create_assignment(
        store,
        dataset_version=version,
        item_ids=items(10),
        reviewers=["ana", "bo"],
        overlap_share=0.2,
        lead=LEAD,
    )
    book = team.assignment_book(store, version)
    ana = book.queue_for("ana")
    store.record(
        dataset_version=version,
        item_id=ana[0],
        reviewer="ana",
        action="keep",
        old_label="a",
        new_label=None,
        identity=who("ana"),
    ) if not book.slot_of(ana[0], "ana").overlap else _blind(
        store, version, book, ana[0], "ana", "keep"
    )
    ov = team.team_overview(store, version).set_index("reviewer")
    assert ov.loc["ana", "decided"] == 1 and ov.loc["ana", "remaining"] == len(ana) - 1
    assert ov.loc["bo", "decided"] == 0
    with pytest.raises(UsageError, match="only a lead"):
        team.move_open_items(
            store,
            dataset_version=version,
            assignment_id=1 + 0 * 0,
            from_reviewer="ana",
            to_reviewer="cy",
            lead=who("bo"),
        )
    aid = int(book.slots["assignment_id"].iloc[0])
    moved, kept = team.move_open_items(
        store,
        dataset_version=version,
        assignment_id=aid,
        from_reviewer="ana",
        to_reviewer="cy",
        lead=LEAD,
    )
    assert moved == len(ana) - 1 and kept == 0
    after = team.assignment_book(store, version)
    assert after.queue_for("ana") == ana[:1] and len(after.queue_for("cy")) == moved


# --------------------------------------------------------------------------- the live queue
def test_live_queue_reads_only_new_decisions_and_follows_undo(store, version):
    order = items(50)
    live = LiveQueue.start(store, version, order)
    session = ReviewSession(version)
    assert live.pick(store, session) == "0" and live.total == 50
    # Someone else decides 0 and 1: the next pick skips them without a full re-read.
    for i in ("0", "1"):
        store.record(
            dataset_version=version,
            item_id=i,
            reviewer="bo",
            action="keep",
            old_label="a",
            new_label=None,
        )
    assert live.refresh(store) == 2 and live.done_count == 2
    assert live.pick(store, session) == "2"
    # Decided by a third party between the refresh and the pick: checked before showing.
    store.record(
        dataset_version=version,
        item_id="2",
        reviewer="cy",
        action="keep",
        old_label="a",
        new_label=None,
    )
    assert live.pick(store, session) == "3"
    # An undo opens an item again, behind the pointer.
    store.undo(
        dataset_version=version,
        item_id="0",
        reviewer="bo",
        seen_decision_id=store.latest_decision_id(version, "0"),
    )
    live.refresh(store)
    assert live.pick(store, session) == "0" and live.done_count == 2
    session.skip("0")
    assert live.peek_next(session, "3") == "4"


def test_live_queue_hides_items_held_by_others_and_tracks_blind_reviews(store, version):
    book = _overlap_setup(store, version, n=6, share=0.5)
    mine = {
        s.item_id: s.slot for s in (book.slot_of(i, "ana") for i in items(6)) if s and s.overlap
    }
    live = LiveQueue.start(
        store,
        version,
        items(10),
        my_slots=mine,
        hidden=book.hidden_from("ana"),
    )
    session = ReviewSession(version)
    seen = []
    while (item := live.pick(store, session)) is not None:
        seen.append(item)
        session.skip(item)
        if len(seen) > 20:
            break
    assert set(seen) == set(items(10)) - book.hidden_from("ana")
    first = next(iter(mine))
    _blind(store, version, book, first, "ana", "keep")
    live.refresh(store)
    assert live.done(first)


def test_session_routes_blind_reviews_and_refuses_items_held_by_others(store, version, tmp_path):
    from tests.test_review_data import toy_dataset

    ds = toy_dataset()
    ids = ds.frame["id"].tolist()[:4]
    team.create_assignment(
        store,
        dataset_version=ds.content_hash,
        item_ids=ids,
        reviewers=["ana", "bo"],
        overlap_share=0.5,
        lead=LEAD,
    )
    book = team.assignment_book(store, ds.content_hash)
    overlap = next(i for i in ids if len(book.holders(i)) == 2)
    single_bo = next(i for i in ids if book.holders(i) == ["bo"])
    from labelaudit.review.queue import item_evidence

    s = ReviewSession(ds.content_hash)
    s.show(
        store,
        item_evidence(ds, overlap),
        "assignment",
        slot=book.slot_of(overlap, "ana"),
        held_by=book.holders(overlap),
    )
    out = s.decide(store, ds, reviewer="ana", action="keep", identity=who("ana"))
    assert out.kind == "saved" and "blind" in out.message
    assert store.log(ds.content_hash).empty  # a blind review is not a decision in force
    assert s.undo(store, reviewer="ana", identity=who("ana")).kind == "saved"
    s2 = ReviewSession(ds.content_hash)
    s2.show(store, item_evidence(ds, single_bo), "ranking", held_by=book.holders(single_bo))
    refused = s2.decide(store, ds, reviewer="ana", action="keep", identity=who("ana"))
    assert refused.kind == "error" and "assigned to bo" in refused.message
    assert isinstance(s2.shown, ShownItem) and store.log(ds.content_hash).empty


# --------------------------------------------------------------------------- one form of a name
def test_names_match_without_case_or_surrounding_blanks_and_are_shown_as_typed(store, version):
    import pandas as pd

    from labelaudit.io import load_dataset
    from labelaudit.review.identity import name_key, same_name
    from labelaudit.review.session import plan_queue

    ids = [f"r{i}" for i in range(6)]
    frame = pd.DataFrame({"id": ids, "text": [f"t {i}" for i in ids], "label": ["a", "b"] * 3})
    ds = load_dataset(frame.assign(run=version))  # a version of its own (a shared PostgreSQL)
    version = ds.content_hash

    assert name_key("  Ana ") == name_key("ANA") == "ana"
    assert same_name("Straße", "STRASSE") and not same_name("Ana", "Anna")
    with pytest.raises(UsageError, match="compared without case"):
        team.create_assignment(
            store,
            dataset_version=version,
            item_ids=ids[:4],
            reviewers=["Ana", "ana "],
            overlap_share=0.0,
            lead=LEAD,
        )
    team.create_assignment(
        store,
        dataset_version=version,
        item_ids=ids,
        reviewers=["Ana", "Bo"],
        overlap_share=0.5,
        lead=LEAD,
        seed=1,
    )
    book = team.assignment_book(store, version)
    typed = Identity(" ana", auth="typed")  # the name as typed at the Review page, other case
    assert typed.name == "ana"
    mine = book.queue_for("Ana")
    assert mine and book.queue_for(typed.name) == mine
    assert book.hidden_from("ana") == book.hidden_from("Ana")
    plan = plan_queue(typed, mode="queue", base_order=ids, base_source="ranking", book=book)
    assert plan.source == "assignment" and list(plan.order) == mine
    overlap = next(i for i in mine if i in plan.my_slots)
    single = next(i for i in mine if i not in plan.my_slots)

    # A blind review and a single decision by "ana" are held to "Ana"'s slots, stored as typed.
    slot = book.slot_of(overlap, "ana")
    assert slot is not None and slot.reviewer == "Ana"
    out = team.record_blind(
        store,
        dataset_version=version,
        item_id=overlap,
        slot=slot.slot,
        identity=typed,
        action="keep",
        old_label="a",
        new_label=None,
        seen_blind_id=None,
        seen_decision_id=None,
    )
    assert out.review.reviewer == "ana"
    session = ReviewSession(dataset_version=version)
    session.shown = ShownItem(single, None, {}, None, held_by=tuple(book.holders(single)))
    got = session.decide(store, ds, reviewer="ana", action="keep", identity=typed)
    assert got is not None and got.kind == "saved", got
    # Someone else ("Bo") still cannot decide it; "BO" can decide Bo's items.
    bo_item = book.queue_for("Bo")[0]
    bo_session = ReviewSession(dataset_version=version)
    bo_session.shown = ShownItem(single, store.latest_decision_id(version, single), {}, None,
                                 held_by=tuple(book.holders(single)))  # fmt: skip
    refused = bo_session.decide(store, ds, reviewer="Bo", action="keep", identity=who("Bo"))
    assert refused is not None and refused.kind == "error" and "assigned to Ana" in refused.message
    assert book.slot_of(bo_item, "BO") is not None

    # Progress and the audit log count "Ana" and "ana" as one person, shown as typed.
    overview = team.team_overview(store, version, book).set_index("reviewer")
    assert list(overview.index) == ["Ana", "Bo"]
    assert overview.loc["Ana", "decided"] == 2 and overview.loc["Ana", "last_decision"] is not None
    store.record(
        dataset_version=version,
        item_id="x",
        reviewer="Ana",
        action="keep",
        old_label="a",
        new_label=None,
        identity=Identity("Ana", auth="typed"),
    )
    ids = team.identities_in_log(store, version)
    typed_rows = ids[ids["auth"] == "typed"]
    assert typed_rows[["reviewer", "spellings", "decisions", "blind_reviews"]].values.tolist() == [
        ["ana", "ana, Ana", 2, 1]
    ]
    # Nothing stored was rewritten: each row keeps its name as typed.
    assert store.log(version)["reviewer"].tolist() == ["ana", "Ana"]

    # Moving items follows the same rule.
    moved, _ = team.move_open_items(
        store,
        dataset_version=version,
        assignment_id=int(book.assignments["assignment_id"].iloc[0]),
        from_reviewer="BO",
        to_reviewer="ana",
        lead=LEAD,
    )
    assert moved > 0
    with pytest.raises(UsageError, match="two different reviewers"):
        team.move_open_items(
            store,
            dataset_version=version,
            assignment_id=int(book.assignments["assignment_id"].iloc[0]),
            from_reviewer="Ana",
            to_reviewer=" ANA",
            lead=LEAD,
        )


def test_leads_are_matched_by_the_same_name_key():
    from labelaudit.review.identity import leads_from_env

    leads = leads_from_env({"LABELAUDIT_LEADS": " Straße , Lea@Example.com"})
    assert role_for(["STRASSE"], leads) == "lead" and role_for(["lea@example.COM"], leads) == "lead"
    assert role_for(["Strase"], leads) == "reviewer"


def test_a_decision_replaces_the_label_read_when_the_item_was_shown(store, version, monkeypatch):
    import pandas as pd

    from labelaudit.io import load_dataset
    from labelaudit.review import session as session_mod
    from labelaudit.review.queue import ItemEvidence

    frame = pd.DataFrame({"id": ["r0", "r1"], "text": ["t0", "t1"], "label": ["a", "b"]})
    ds = load_dataset(frame.assign(run=version))
    h = ds.content_hash
    first = store.record(
        dataset_version=h, item_id="r0", reviewer="bo", action="change", old_label="a",
        new_label="c",
    )  # fmt: skip
    s = ReviewSession(dataset_version=h)
    s.show(store, ItemEvidence("r0", 0, "t0", "a", "", suggestions=[("b", 0.6)]), "ranking")
    s.note_label(store.in_force(h, ["r0"]).get("r0"), "a")
    assert s.shown is not None and s.shown.label == "c" and s.shown.seen == first.id

    def unread(*_a, **_k):  # the label is known: the decision reads nothing more
        raise AssertionError("label_now read the item again")

    monkeypatch.setattr(session_mod, "label_now", unread)
    out = s.decide(store, ds, reviewer="ana", action="keep")
    assert out is not None and out.kind == "saved"
    assert store.log(h)["old_label"].tolist() == ["a", "c"]

    # Noted, then decided elsewhere: the store refuses it, so a stale label is never written.
    s2 = ReviewSession(dataset_version=h)
    s2.show(store, ItemEvidence("r1", 1, "t1", "b", "", suggestions=[("a", 0.6)]), "ranking")
    s2.note_label(None, "b")
    store.record(
        dataset_version=h, item_id="r1", reviewer="bo", action="change", old_label="b",
        new_label="c", seen_decision_id=None,
    )  # fmt: skip
    out = s2.decide(store, ds, reviewer="ana", action="keep")
    assert out is not None and out.kind == "conflict"
    assert store.log(h)["item_id"].tolist() == ["r0", "r0", "r1"]
