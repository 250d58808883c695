"""ReviewStore.record_many writes in bulk: the same results as writing the decisions one by one.

The row-by-row reference is :meth:`ReviewStore.append_in` called for each request inside one
transaction (what record_many did before it wrote in bulk). Both run on their own dataset versions
of the same database with the same history and the same clock, on SQLite and PostgreSQL; ids are
compared by their rank in the version's log (PostgreSQL sequences skip ids of rolled-back rows).
"""

from __future__ import annotations

import itertools
import json
import os
import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from labelaudit.review import store_health
from labelaudit.review.identity import Identity
from labelaudit.review.store import BATCH_ROWS, ConflictError, FinalDecisionError, ReviewStore

PG_URL = os.environ.get("LABELAUDIT_TEST_PG_URL")
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
LEAD = Identity("lee", auth="typed", role="lead")


def _clock():
    n = itertools.count()
    return lambda: T0 + timedelta(seconds=next(n))


def _req(v, item, *, seen, action="change", new="b", reviewer="labelstudio:ana", **kw):
    return dict(
        dataset_version=v,
        item_id=item,
        reviewer=reviewer,
        action=action,
        old_label="a",
        new_label=new,
        comment=f"on {item}",
        shown={"task": item},
        seen_decision_id=seen,
        **kw,
    )


def _seed(store: ReviewStore, v: str) -> None:
    """h1: a change; h2: a change undone (nothing in force, an undo on top); adj: a lead's
    adjudication; adj_undo: an adjudication, a lead's change on it, that change undone (the
    adjudication is in force again, under an undo)."""
    s = store.with_clock(_clock())

    def rec(item, **kw):
        kw.setdefault("seen_decision_id", s.latest_decision_id(v, item))
        return s.record(dataset_version=v, item_id=item, old_label="a", **kw)

    def undo(item, **kw):
        s.undo(
            dataset_version=v, item_id=item, seen_decision_id=s.latest_decision_id(v, item), **kw
        )

    rec("h1", reviewer="ana", action="change", new_label="c")
    rec("h2", reviewer="ana", action="change", new_label="c")
    undo("h2", reviewer="ana")
    for item in ("adj", "adj_undo"):
        rec(
            item,
            reviewer="lee",
            action="change",
            new_label="d",
            identity=LEAD,
            capacity="adjudication",
        )
    rec("adj_undo", reviewer="lee", action="keep", new_label=None, identity=LEAD)
    undo("adj_undo", reviewer="lee", identity=LEAD)


def _batch(name: str, store: ReviewStore, v: str, w: str) -> list[dict]:
    """The requests of a scenario on versions ``v`` and ``w``, seen ids read from the store now."""
    latest = store.latest_decision_ids(v)
    fresh = {i: latest.get(i) for i in ("h1", "h2", "adj", "adj_undo")}
    if (
        name == "ok"
    ):  # new items, items with history (an undo on top), a lead over a final one, 2 versions
        return [
            _req(v, "n1", seen=None),
            _req(v, "h1", seen=fresh["h1"], action="keep", new=None),
            _req(w, "n1", seen=None, action="remove", new=None),
            _req(v, "h2", seen=fresh["h2"], action="accept", new="e"),
            _req(v, "adj", seen=fresh["adj"], reviewer="lee", identity=LEAD, new="f"),
            _req(v, "n2", seen=None, action="ambiguous", new=None),
        ]
    if name == "stale":  # h1 was decided since it was shown
        return [_req(v, "n1", seen=None), _req(v, "h1", seen=None)]
    if name == "duplicate":  # the same item twice: the second saw no decision, the first wrote one
        return [_req(v, "n1", seen=None), _req(v, "n2", seen=None), _req(v, "n1", seen=None)]
    if name == "final":  # an adjudication in force (directly / under a lead's undo): lead only
        return [_req(v, "n1", seen=None), _req(v, "adj", seen=fresh["adj"])]
    if name == "final_under_undo":
        return [_req(v, "n1", seen=None), _req(v, "adj_undo", seen=fresh["adj_undo"])]
    raise AssertionError(name)


def _row_by_row(store: ReviewStore, requests: list[dict]):
    with store.engine.begin() as conn:
        return [
            store.append_in(conn, store.prepare(**r), r.get("seen_decision_id")) for r in requests
        ]


def _run(fn):
    try:
        return fn(), None
    except (ConflictError, FinalDecisionError) as e:
        return None, e


def _state(store: ReviewStore, versions: list[str], out, error) -> dict:
    """Everything both paths must agree on, ids replaced by their rank in the version's log."""
    rank: dict[int, int] = {}
    logs = {}
    for k, v in enumerate(versions):
        log = store.log(v)
        rank.update({int(i): (k, n) for n, i in enumerate(log["decision_id"])})
        logs[k] = log.assign(decision_id=[rank[int(i)] for i in log["decision_id"]]).drop(
            columns="dataset_version"
        )
    for log in logs.values():  # an undo's `shown` names the id it cancels
        log["shown"] = [
            {k: rank[v] if k == "undoes" else v for k, v in json.loads(x).items()}
            for x in log["shown"]
        ]

    def norm(d):
        if d is None:
            return None
        return (
            rank.get(d.id, "rolled back"),  # a conflict may name a decision of its own batch
            d.item_id,
            d.reviewer,
            d.decided_at,
            d.action,
            d.old_label,
            d.new_label,
            d.comment,
            d.shown,
            rank.get(d.undoes_id) if d.undoes_id else None,
            d.auth,
            d.role,
            d.capacity,
        )

    currents = {}
    for k, v in enumerate(versions):
        cur = store.current(v)
        for col in ("decision_id", "latest_decision_id"):
            cur[col] = [rank[int(i)] for i in cur[col]]
        currents[k] = cur.to_dict("records")
    heads = {
        k: {i: rank[d] for i, d in store.latest_decision_ids(v).items()}
        for k, v in enumerate(versions)
    }
    return {
        "returned": [norm(d) for d in out] if out is not None else None,
        "error": (type(error).__name__, norm(error.latest)) if error is not None else None,
        "log": {k: log.to_dict("records") for k, log in logs.items()},
        "current": currents,
        "heads": heads,
    }


@pytest.mark.parametrize("scenario", ["ok", "stale", "duplicate", "final", "final_under_undo"])
def test_bulk_record_many_matches_row_by_row(store, scenario):
    results = []
    for path in ("bulk", "row"):
        v, w = uuid.uuid4().hex[:20], uuid.uuid4().hex[:20]
        _seed(store, v)
        s = store.with_clock(_clock())
        requests = _batch(scenario, s, v, w)
        before = len(s.log(v))
        if path == "bulk":
            out, error = _run(lambda s=s, r=requests: s.record_many(r))
        else:
            out, error = _run(lambda s=s, r=requests: _row_by_row(s, r))
        if error is not None:  # all or nothing
            assert len(s.log(v)) == before and len(s.log(w)) == 0
        results.append(_state(s, [v, w], out, error))
    bulk, row = results
    assert bulk == row
    expected_error = {
        "ok": None,
        "stale": "ConflictError",
        "duplicate": "ConflictError",
        "final": "FinalDecisionError",
        "final_under_undo": "FinalDecisionError",
    }[scenario]
    assert (bulk["error"] or [None])[0] == expected_error
    if scenario == "ok":
        assert [r[1] for r in bulk["returned"]] == ["n1", "h1", "n1", "h2", "adj", "n2"]
        assert bulk["returned"][4][12] == "single" and bulk["returned"][4][11] == "lead"
    if scenario == "duplicate":  # the conflict names the decision the batch itself wrote first
        assert bulk["error"][1][1] == "n1" and bulk["error"][1][2] == "labelstudio:ana"


def test_an_adjudication_under_an_undo_stays_final_for_record(store):
    v = uuid.uuid4().hex[:20]
    _seed(store, v)
    with pytest.raises(FinalDecisionError) as e:
        store.record(
            dataset_version=v,
            item_id="adj_undo",
            reviewer="ana",
            action="keep",
            old_label="d",
            new_label=None,
            seen_decision_id=store.latest_decision_id(v, "adj_undo"),
        )
    assert e.value.latest.capacity == "adjudication"
    assert store.history(v, "adj_undo")[0].capacity == "adjudication"


def test_a_batch_larger_than_one_statement_is_counted_once_in_the_manifest(tmp_path, monkeypatch):
    n = 2 * BATCH_ROWS + 17
    store = ReviewStore(f"sqlite:///{tmp_path / 'r.sqlite'}", backup_every=50)
    calls = {"manifest": 0, "backup": 0}
    real_add, real_backup = store_health.add_to_manifest, store.backup

    def add(*a, **k):
        calls["manifest"] += 1
        return real_add(*a, **k)

    def backup(**k):
        calls["backup"] += 1
        return real_backup(**k)

    monkeypatch.setattr(store_health, "add_to_manifest", add)
    monkeypatch.setattr(store, "backup", backup)
    v = uuid.uuid4().hex[:20]
    out = store.record_many([_req(v, str(i), seen=None) for i in range(n)])
    assert [d.item_id for d in out] == [str(i) for i in range(n)]
    assert [d.id for d in out] == sorted(d.id for d in out)
    assert store.latest_decision_ids(v) == {d.item_id: d.id for d in out}
    assert store.flush(30)  # written after the commit, off the writer's thread
    assert calls == {"manifest": 1, "backup": 1}
    m = store_health.read_manifest(store.manifest_path)
    assert (m.decisions, m.last_decision_id) == (n, out[-1].id)
    monkeypatch.undo()
    store.close()
    assert store_health.list_backups(tmp_path / "r.sqlite")[0].decisions == n


def test_two_batches_on_the_same_items_at_once_one_wins_whole(db_url):
    v = uuid.uuid4().hex[:20]
    items = [str(i) for i in range(300)]
    stores = [ReviewStore(db_url) for _ in range(2)]
    barrier = threading.Barrier(2)
    results: list = [None, None]

    def go(k):
        # opposite orders: the heads are locked in item order, so neither waits for the other forever
        order = items if k == 0 else items[::-1]
        barrier.wait()
        try:
            results[k] = len(
                stores[k].record_many([_req(v, i, seen=None, reviewer=f"r{k}") for i in order])
            )
        except ConflictError as e:
            results[k] = e

    threads = [threading.Thread(target=go, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(isinstance(r, ConflictError) for r in results) == [False, True]
    log = stores[0].log(v)
    winner = f"r{[k for k in (0, 1) if not isinstance(results[k], ConflictError)][0]}"
    assert len(log) == 300 and set(log["reviewer"]) == {winner} and log["item_id"].is_unique
    for s in stores:
        s.close()
