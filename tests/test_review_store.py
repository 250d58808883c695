"""The review store against SQLite and a real PostgreSQL: append-only log, undo, conflicts, crashes."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest

from labelaudit.errors import UsageError
from labelaudit.review.identity import Identity
from labelaudit.review.store import (
    CURRENT_COLUMNS,
    IDENTITY_COLUMNS,
    LOG_COLUMNS,
    ConflictError,
    ReviewStore,
)

ROOT = Path(__file__).resolve().parents[1]
PG_URL = os.environ.get("LABELAUDIT_TEST_PG_URL")


@pytest.fixture
def version() -> str:
    # A fresh dataset version per test keeps tests independent on the shared PostgreSQL database.
    return uuid.uuid4().hex[:20]


def decide(store, version, item, action, *, old="a", new=None, reviewer="ana", seen="latest", **kw):
    if seen == "latest":
        seen = store.latest_decision_id(version, item)
    return store.record(
        dataset_version=version,
        item_id=item,
        reviewer=reviewer,
        action=action,
        old_label=old,
        new_label=new,
        seen_decision_id=seen,
        **kw,
    )


def test_record_returns_committed_decision_and_log_has_every_field(store, version):
    d = decide(
        store,
        version,
        "7",
        "change",
        new="b",
        comment="=cmd|' /C calc'!A0",
        shown={"score_cl": 0.93, "suggested": "b", "queue": "ranking"},
    )
    assert d.id > 0 and d.decided_at.tzinfo is not None
    assert d.new_label == "b" and d.shown["score_cl"] == 0.93
    log = store.log(version)
    assert list(log.columns) == LOG_COLUMNS + IDENTITY_COLUMNS
    row = log.iloc[0]
    assert (row.auth, row.role, row.capacity) == ("script", "reviewer", "single")
    assert (
        row.decision_id,
        row.item_id,
        row.reviewer,
        row.action,
        row.old_label,
        row.new_label,
    ) == (d.id, "7", "ana", "change", "a", "b")
    assert '"score_cl": 0.93' in row.shown and row.comment.startswith("=cmd")
    assert str(log["decided_at"].dt.tz) == "UTC"
    # Another version's decisions stay out of this version's log.
    assert len(store.log(uuid.uuid4().hex)) == 0


@pytest.mark.parametrize(
    ("action", "new", "final"),
    [
        ("accept", "b", "b"),
        ("change", "c", "c"),
        ("keep", None, "a"),
        ("ambiguous", None, "a"),
        ("remove", "ignored", None),
    ],
)
def test_current_final_label_per_action(store, version, action, new, final):
    decide(store, version, "1", action, new=new)
    cur = store.current(version)
    assert list(cur.columns) == CURRENT_COLUMNS
    assert cur.loc[0, "action"] == action
    assert (cur.loc[0, "final_label"] if final is not None else None) == final
    if final is None:
        assert cur.loc[0, "final_label"] is None


@pytest.mark.parametrize(
    ("action", "new", "message"),
    [
        ("delete", None, "unknown review action"),
        ("accept", None, "needs the new label"),
        ("change", "", "needs the new label"),
    ],
)
def test_bad_calls_raise_usage_error_and_write_nothing(store, version, action, new, message):
    with pytest.raises(UsageError, match=message):
        decide(store, version, "1", action, new=new)
    assert len(store.log(version)) == 0


def test_latest_decision_wins(store, version):
    decide(store, version, "1", "change", new="b")
    decide(store, version, "1", "change", old="b", new="c", reviewer="bo")
    cur = store.current(version).set_index("item_id")
    assert cur.loc["1", "final_label"] == "c" and cur.loc["1", "reviewer"] == "bo"
    assert len(store.log(version)) == 2  # append-only


def test_undo_appends_and_restores_previous_state(store, version):
    first = decide(store, version, "1", "change", new="b")
    second = decide(store, version, "1", "remove", old="b")
    assert store.current(version).loc[0, "final_label"] is None
    u1 = store.undo(
        dataset_version=version, item_id="1", reviewer="ana", seen_decision_id=second.id
    )
    assert (u1.action, u1.undoes_id, u1.old_label, u1.new_label) == ("undo", second.id, None, "b")
    cur = store.current(version)
    assert (cur.loc[0, "action"], cur.loc[0, "final_label"], cur.loc[0, "decision_id"]) == (
        "change",
        "b",
        first.id,
    )
    assert cur.loc[0, "latest_decision_id"] == u1.id
    # A second undo cancels the first decision: the item is undecided again.
    u2 = store.undo(dataset_version=version, item_id="1", reviewer="ana", seen_decision_id=u1.id)
    assert (u2.undoes_id, u2.new_label) == (first.id, "a")
    assert len(store.current(version)) == 0
    with pytest.raises(UsageError, match="no decision to undo"):
        store.undo(dataset_version=version, item_id="1", reviewer="ana", seen_decision_id=u2.id)
    assert store.log(version)["action"].tolist() == [
        "change",
        "remove",
        "undo",
        "undo",
    ]  # nothing deleted


def test_undo_through_record(store, version):
    d = decide(store, version, "1", "keep")
    u = store.record(
        dataset_version=version,
        item_id="1",
        reviewer="ana",
        action="undo",
        old_label="a",
        new_label=None,
        seen_decision_id=d.id,
    )
    assert u.undoes_id == d.id and len(store.current(version)) == 0


def test_stale_view_raises_conflict_and_writes_nothing(store, version):
    shown_to_bo = store.latest_decision_id(version, "1")  # None: bo sees an undecided item
    ana = decide(store, version, "1", "change", new="b")
    with pytest.raises(ConflictError) as e:
        decide(store, version, "1", "keep", reviewer="bo", seen=shown_to_bo)
    assert e.value.latest.id == ana.id and e.value.latest.reviewer == "ana"
    assert "ana" in str(e.value)
    assert len(store.log(version)) == 1
    # Shown again with the fresh id, bo can decide.
    bo = decide(store, version, "1", "keep", old="b", reviewer="bo", seen=ana.id)
    assert store.latest_decision_id(version, "1") == bo.id
    # An undo from a stale view conflicts too.
    with pytest.raises(ConflictError):
        store.undo(dataset_version=version, item_id="1", reviewer="ana", seen_decision_id=ana.id)


def test_concurrent_threads_exactly_one_wins_per_item(store, version):
    n_threads, items = 6, [str(i) for i in range(5)]
    barrier = threading.Barrier(n_threads)
    outcomes: list[tuple[str, str]] = []
    lock = threading.Lock()

    def worker(name: str) -> None:
        barrier.wait()
        for item in items:
            try:
                decide(store, version, item, "keep", reviewer=name, seen=None)
                result = "won"
            except ConflictError:
                result = "conflict"
            with lock:
                outcomes.append((item, result))

    threads = [threading.Thread(target=worker, args=(f"r{i}",)) for i in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for item in items:
        results = sorted(r for i, r in outcomes if i == item)
        assert results == ["conflict"] * (n_threads - 1) + ["won"]
    assert len(store.log(version)) == len(items)


def _process_worker(url: str, version: str, barrier, queue) -> None:
    s = ReviewStore(url)
    barrier.wait()
    try:
        d = s.record(
            dataset_version=version,
            item_id="x",
            reviewer=f"p{os.getpid()}",
            action="keep",
            old_label="a",
            new_label=None,
            seen_decision_id=None,
        )
        queue.put(("won", d.id))
    except ConflictError as e:
        queue.put(("conflict", e.latest.id))
    s.close()


def test_concurrent_processes_exactly_one_wins(db_url, version, monkeypatch):
    # A spawned child re-imports the parent's __main__; after an AppTest in the same session that is a page
    # script. Give the children an empty __main__ so they run only the worker.
    import sys
    import types

    monkeypatch.setitem(sys.modules, "__main__", types.ModuleType("__main__"))
    ctx = mp.get_context("spawn")
    n = 4
    barrier, queue = ctx.Barrier(n), ctx.Queue()
    procs = [
        ctx.Process(target=_process_worker, args=(db_url, version, barrier, queue))
        for _ in range(n)
    ]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in range(n)]
    for p in procs:
        p.join(60)
    won = [r for r in results if r[0] == "won"]
    assert len(won) == 1
    # Every loser was shown the winner's decision.
    assert all(r == ("conflict", won[0][1]) for r in results if r[0] == "conflict")
    assert len(ReviewStore(db_url).log(version)) == 1


WRITER = """
import sys
from labelaudit.review.store import ReviewStore
url, version, start = sys.argv[1], sys.argv[2], int(sys.argv[3])
store = ReviewStore(url)
for i in range(start, start + 100000):
    item = str(i)
    d = store.record(dataset_version=version, item_id=item, reviewer="crash", action="change", old_label="a",
                     new_label="b", seen_decision_id=None, shown={"i": i})
    print(d.id, flush=True)  # acknowledged: the UI would now say 'Saved'
"""


def _stream_then_kill(url: str, version: str, start: int, n_acks: int) -> list[int]:
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, url, version, str(start)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    acked: list[int] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        acked.append(int(line))
        if len(acked) >= n_acks:
            os.kill(proc.pid, signal.SIGKILL)  # mid-stream: the next record may be half-way through
            break
    proc.wait(30)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read() if proc.stderr else ""
    return acked


def test_sigkill_mid_stream_loses_no_acknowledged_decision(db_url, version):
    acked = _stream_then_kill(db_url, version, 0, 60)
    # Restart: a new process opens the store and streams on; earlier decisions are all there.
    acked += _stream_then_kill(db_url, version, 10_000, 30)
    log = ReviewStore(db_url).log(version)
    assert set(acked) <= set(log["decision_id"].tolist())
    assert log["decision_id"].is_unique
    # Whatever got in beyond the acknowledged ones is complete rows, never torn ones.
    assert log["new_label"].eq("b").all() and log["shown"].str.startswith('{"i": ').all()


def test_findings_roundtrip(store, version):
    fid = store.add_finding(
        dataset_version=version,
        kind="class_pair",
        target="card_arrival|card_delivery_estimate",
        note="these two classes overlap",
        author="ana",
    )
    f = store.findings(version)
    assert f.loc[0, "finding_id"] == fid and f.loc[0, "kind"] == "class_pair"
    assert f.loc[0, "created_at"].tzinfo is not None
    with pytest.raises(UsageError):
        store.add_finding(dataset_version=version, kind="bogus", target="", note="", author="ana")


def test_a_finding_records_how_its_author_was_identified(store, version):
    ana = Identity("ana@example.com", auth="oidc", subject="https://idp|7")
    store.add_finding(
        dataset_version=version, kind="note", target="-", note="a", author=ana.name, identity=ana
    )
    bo = Identity("bo", auth="typed")
    store.add_finding(
        dataset_version=version, kind="note", target="-", note="b", author="bo", identity=bo
    )
    store.add_finding(dataset_version=version, kind="note", target="-", note="c", author="cli")
    f = store.findings(version)
    assert f[["author", "author_auth", "author_subject"]].values.tolist() == [
        ["ana@example.com", "oidc", "https://idp|7"],
        ["bo", "typed", ""],
        ["cli", "script", ""],
    ]
    with pytest.raises(UsageError, match="identity is 'bo'"):  # the identity must be the author
        store.add_finding(
            dataset_version=version, kind="note", target="-", note="d", author="ana", identity=bo
        )
    assert len(store.findings(version)) == 3


def older_database(tmp_path, table, write) -> str:
    """A SQLite review database written by ``write(store)`` before ``table`` existed."""
    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    store = ReviewStore(url)
    write(store)
    with store.engine.begin() as conn:
        conn.exec_driver_sql(f"DROP TABLE {table}")
    store.close()
    return url


def test_findings_of_a_database_from_before_author_identities(tmp_path, version):
    url = older_database(
        tmp_path,
        "review_finding_identities",
        lambda s: s.add_finding(
            dataset_version=version, kind="note", target="-", note="n", author="ana"
        ),
    )
    old = ReviewStore(url, read_only=True)  # reads it as it is: creates nothing
    f = old.findings(version)
    assert f["note"].tolist() == ["n"] and f["author_auth"].isna().all()
    old.close()
    writer = ReviewStore(url)  # a writer adds the missing table; the old finding stays unknown
    writer.add_finding(dataset_version=version, kind="note", target="-", note="m", author="bo")
    assert writer.findings(version)["author_auth"].tolist() == [None, "script"]
    writer.close()


def test_log_of_a_database_from_before_decision_identities_read_only(tmp_path, version):
    url = older_database(
        tmp_path, "review_decision_identities", lambda s: decide(s, version, "1", "change", new="b")
    )
    old = ReviewStore(url, read_only=True)  # reads it as it is: creates nothing
    log = old.log(version)
    assert log["new_label"].tolist() == ["b"] and log["auth"].isna().all()
    assert old.current(version)["item_id"].tolist() == ["1"]
    old.close()


def test_two_stores_on_one_database_share_state(db_url, version):
    a, b = ReviewStore(db_url), ReviewStore(db_url)
    d = decide(a, version, "1", "keep")
    assert b.latest_decision_id(version, "1") == d.id
    assert b.current(version)["item_id"].tolist() == ["1"]


# --------------------------------------------------------------------------- record_many (all or none)
def _req(version, item, action="change", new="b", seen=None, reviewer="labelstudio:ana"):
    return dict(
        dataset_version=version,
        item_id=item,
        reviewer=reviewer,
        action=action,
        old_label="a",
        new_label=new,
        seen_decision_id=seen,
    )


def test_record_many_writes_every_decision(store: ReviewStore, version):
    out = store.record_many([_req(version, "1"), _req(version, "2", action="keep", new=None)])
    assert [d.item_id for d in out] == ["1", "2"]
    cur = store.current(version).set_index("item_id")
    assert cur.loc["1", "final_label"] == "b" and cur.loc["2", "final_label"] == "a"
    assert store.latest_decision_id(version, "2") == out[1].id


def test_record_many_conflict_writes_nothing(store: ReviewStore, version):
    first = store.record(
        dataset_version=version,
        item_id="2",
        reviewer="bo",
        action="keep",
        old_label="a",
        new_label=None,
    )
    with pytest.raises(ConflictError) as e:
        store.record_many([_req(version, "1"), _req(version, "2", seen=None)])
    assert e.value.latest.id == first.id
    assert store.log(version)["item_id"].tolist() == ["2"]  # item 1 was not written either
    assert store.latest_decision_id(version, "1") is None


@pytest.mark.parametrize(
    "bad",
    [dict(action="undo"), dict(action="change", new=None), dict(reviewer=" ")],
    ids=["undo", "change-without-label", "no-reviewer"],
)
def test_record_many_rejects_bad_requests_before_writing(store: ReviewStore, version, bad):
    with pytest.raises(UsageError):
        store.record_many([_req(version, "1"), _req(version, "2", **bad)])
    assert len(store.log(version)) == 0


def test_record_many_of_nothing(store: ReviewStore, version):
    assert store.record_many([]) == []


def test_the_store_stamps_with_its_clock_and_with_clock_shares_the_database(db_url, version):
    import doctest
    from datetime import UTC, datetime, timedelta

    import labelaudit.simulate_review
    from labelaudit.simulate_review import simulated_clock

    t0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    store = ReviewStore(db_url, clock=simulated_clock([t0, t0 + timedelta(seconds=30)]))
    try:
        d = store.record(
            dataset_version=version,
            item_id="a",
            reviewer="ana",
            action="keep",
            old_label="x",
            new_label=None,
        )
        assert d.decided_at == t0
        store.add_finding(dataset_version=version, kind="note", target="-", note="n", author="ana")
        assert store.findings(version)["created_at"].iloc[0] == t0 + timedelta(seconds=30)
        later = store.with_clock(lambda: t0 + timedelta(hours=1))
        assert later.engine is store.engine and store.clock is not later.clock
        later.record(
            dataset_version=version,
            item_id="b",
            reviewer="ana",
            action="keep",
            old_label="x",
            new_label=None,
        )
        assert store.log(version)["decided_at"].tolist() == [
            t0,
            t0 + timedelta(hours=1),
        ]
        wall = ReviewStore(db_url)
        before = datetime.now(UTC)
        e = wall.record(
            dataset_version=version,
            item_id="c",
            reviewer="ana",
            action="keep",
            old_label="x",
            new_label=None,
        )
        assert (
            before - timedelta(seconds=1)
            <= e.decided_at
            <= datetime.now(UTC) + timedelta(seconds=1)
        )
        wall.close()
    finally:
        store.close()
    result = doctest.testmod(labelaudit.simulate_review, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 1 and result.failed == 0


# --------------------------------------------------------------------------- the folded log
def _cold(url: str, version: str):
    """current() and latest_decision_ids() of a fresh store: one full read, no fold kept."""
    fresh = ReviewStore(url, read_only=True)
    try:
        return fresh.current(version), fresh.latest_decision_ids(version)
    finally:
        fresh.close()


def test_current_folds_only_the_new_rows_and_equals_a_full_read(store, db_url, version):
    for i in range(12):
        decide(store, version, str(i % 5), "change", new=f"b{i}")
        if i % 4 == 3:
            store.undo(
                dataset_version=version,
                item_id=str(i % 5),
                reviewer="ana",
                seen_decision_id=store.latest_decision_id(version, str(i % 5)),
            )
        cur, latest = store.current(version), store.latest_decision_ids(version)
        cold_cur, cold_latest = _cold(db_url, version)
        assert cur.equals(cold_cur) and latest == cold_latest
    fold = store._folds[version]
    assert fold.count == len(store.log(version)) and fold.repairs == 0
    # A rerun with nothing new reads no row and rebuilds nothing; the caller gets its own copy.
    changes, frame = fold.changes, fold.frame
    again = store.current(version)
    assert fold.changes == changes and fold.frame is frame and again.equals(frame)
    again.loc[0, "final_label"] = "scribbled"
    assert store.current(version).equals(frame)
    # Another version has its own fold; another store on the same database sees the same.
    decide(store, "other-" + version, "1", "keep")
    assert len(store.current("other-" + version)) == 1
    other = ReviewStore(db_url)
    decide(other, version, "9", "remove")
    assert store.current(version).equals(_cold(db_url, version)[0])
    assert store.latest_decision_ids(version)["9"] == other.latest_decision_id(version, "9")
    other.close()


@pytest.mark.postgres
@pytest.mark.skipif(not PG_URL, reason="LABELAUDIT_TEST_PG_URL is not set")
def test_a_decision_committed_after_a_higher_id_is_not_missed():
    # PostgreSQL hands out ids before commit: a slow transaction can commit id 1 after id 2 was
    # read. The fold must notice (its row count falls short) and fold the late row's item again.
    version = uuid.uuid4().hex[:20]
    store = ReviewStore(PG_URL)
    slow = store.engine.connect()
    tx = slow.begin()
    values = store.prepare(
        dataset_version=version,
        item_id="late",
        reviewer="ana",
        action="change",
        old_label="a",
        new_label="b",
    )
    late = store.append_in(slow, values, None)  # id allocated, not committed
    early = decide(store, version, "early", "keep")
    assert early.id > late.id
    assert store.current(version)["item_id"].tolist() == ["early"]
    tx.commit()
    slow.close()
    cur = store.current(version)
    assert sorted(cur["item_id"]) == ["early", "late"]
    assert cur.equals(_cold(PG_URL, version)[0])
    assert store.latest_decision_ids(version) == {"early": early.id, "late": late.id}
    assert store._folds[version].repairs == 1
    # An undo of the late row, committed normally, folds on top of the repaired item.
    store.undo(dataset_version=version, item_id="late", reviewer="ana", seen_decision_id=late.id)
    assert store.current(version)["item_id"].tolist() == ["early"]
    store.close()


def test_a_writer_adds_the_version_id_index_to_an_older_database(tmp_path, version):
    import sqlalchemy as sa

    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    store = ReviewStore(url)
    decide(store, version, "1", "keep")
    with store.engine.begin() as conn:
        conn.exec_driver_sql("DROP INDEX ix_review_decisions_version_id")
    store.close()
    reader = ReviewStore(url, read_only=True)  # a reader creates nothing, and still reads
    assert reader.current(version)["item_id"].tolist() == ["1"]
    with reader.reading() as conn:
        names = {ix["name"] for ix in sa.inspect(conn).get_indexes("review_decisions")}
    assert "ix_review_decisions_version_id" not in names
    reader.close()
    writer = ReviewStore(url)
    with writer.reading() as conn:
        names = {ix["name"] for ix in sa.inspect(conn).get_indexes("review_decisions")}
        plan = conn.exec_driver_sql(
            "EXPLAIN QUERY PLAN SELECT decision_id, item_id FROM review_decisions "
            "WHERE decision_id > 5 AND dataset_version = 'v' ORDER BY decision_id"
        ).all()
    assert "ix_review_decisions_version_id" in names
    assert "ix_review_decisions_version_id" in " ".join(str(r[-1]) for r in plan)
    writer.close()


def test_record_returns_the_row_as_the_log_reads_it_back(store, version):
    who = Identity("ana", auth="typed", role="lead")
    made = [
        decide(store, version, "1", "change", new="b", identity=who, comment="c", shown={"s": 1}),
        decide(store, version, "1", "keep", old="b", identity=who),
        decide(store, version, "2", "remove", identity=who),
        store.undo(
            dataset_version=version,
            item_id="2",
            reviewer="ana",
            seen_decision_id=store.latest_decision_id(version, "2"),
            identity=who,
        ),
    ]
    for d in made:
        assert d == store.decision(d.id)


def test_the_current_frame_is_patched_for_the_changed_items_only(store, db_url, version):
    for i in range(40):
        decide(store, version, str(i), "change", new="b")
    store.current(version)
    fold = store._folds[version]
    asked: list[list[str]] = []
    rows = fold._rows
    fold._rows = lambda items: rows(asked.append(list(items)) or asked[-1])  # type: ignore[method-assign]
    for step, item in enumerate(["3", "3", "17", "39"]):  # few items changed: the frame is patched
        if step == 1:
            store.undo(
                dataset_version=version,
                item_id=item,
                reviewer="ana",
                seen_decision_id=store.latest_decision_id(version, item),
            )
        else:
            decide(store, version, item, "remove")
        cur = store.current(version)
        assert asked[-1] == [item]  # only that item's row rebuilt
        assert not fold.dirty and cur.equals(_cold(db_url, version)[0])
    store.undo(
        dataset_version=version,
        item_id="3",
        reviewer="ana",
        seen_decision_id=store.latest_decision_id(version, "3"),
    )  # every decision on "3" undone: its row leaves the frame
    cur = store.current(version)
    assert "3" not in set(cur["item_id"]) and cur.equals(_cold(db_url, version)[0])
