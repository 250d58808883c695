"""The review store never loses decisions silently (issue 19).

A truncated, damaged, emptied or replaced database is refused with a message that names the file,
what was found, what was expected and how to restore it (export, report, the library, the app's
store); rolling backups are taken with SQLite's backup API and ``labelaudit review restore`` puts one
back; a write lock held by another process never blocks a reader, and a writer gets StoreBusy (a
clear message, exit 3 in the CLI), never a raw OperationalError; the Review session keeps a decision
the database was too busy to take and saves it on retry.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

import labelaudit as la
from labelaudit.cli import main
from labelaudit.errors import StoreBusy, StoreCorrupt, StoreError, UsageError
from labelaudit.review import store_health
from labelaudit.review.queue import item_evidence
from labelaudit.review.session import ReviewSession
from labelaudit.review.store import ReviewStore
from labelaudit.workspace import Workspace
from tests.store_lock import release
from tests.test_review_data import toy_dataset

N_DECISIONS = 30
PG_URL = os.environ.get("LABELAUDIT_TEST_PG_URL")


@pytest.fixture
def ds():
    return toy_dataset()


def decide_many(store: ReviewStore, ds, n: int, *, start: int = 0) -> None:
    for i in range(start, start + n):
        item = ds.ids[i]
        store.record(
            dataset_version=ds.content_hash,
            item_id=item,
            reviewer="ana",
            action="keep",
            old_label=str(ds.frame.set_index("id").loc[item, "label"]),
            new_label=None,
            seen_decision_id=store.latest_decision_id(ds.content_hash, item),
        )


@pytest.fixture
def reviewed(tmp_path, ds) -> Workspace:
    """A workspace with the toy dataset and N_DECISIONS decisions, store closed."""
    ws = Workspace(tmp_path / "ws")
    ws.save_dataset(ds)
    store = ws.review_store()
    decide_many(store, ds, N_DECISIONS)
    store.close()
    return ws


def db_file(ws: Workspace) -> Path:
    return ws.root / "review.sqlite"


def truncate(path: Path, how: str) -> None:
    for extra in ("-wal", "-shm"):  # what a crash or a careless copy leaves: the main file only
        Path(f"{path}{extra}").unlink(missing_ok=True)
    size = path.stat().st_size
    os.truncate(path, 0 if how == "empty" else size // 2)


def export_argv(ws: Workspace, out: Path) -> list[str]:
    return ["export", "--workspace", str(ws.root), "--out", str(out)]


# --------------------------------------------------------------------------- detection
@pytest.mark.parametrize(
    ("how", "found"),
    [("empty", "the file is empty (0 bytes)"), ("half", "PRAGMA quick_check reports")],
)
def test_export_refuses_a_truncated_database(reviewed, tmp_path, capsys, how, found):
    # Before: 0 bytes exported the original labels with "0 decided" (403 decisions silently lost);
    # half the file gave a traceback.
    truncate(db_file(reviewed), how)
    out = tmp_path / "clean.csv"
    assert main(export_argv(reviewed, out)) == 3
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert str(db_file(reviewed)) in err and found in err
    assert f"expected {N_DECISIONS} decision(s) up to id {N_DECISIONS}" in err
    assert "labelaudit review restore" in err
    assert not out.exists()


@pytest.mark.parametrize("how", ["empty", "half"])
def test_report_and_the_library_refuse_a_truncated_database(reviewed, ds, tmp_path, capsys, how):
    truncate(db_file(reviewed), how)
    out = tmp_path / "roi.html"
    assert main(["report", "--workspace", str(reviewed.root), "--out", str(out)]) == 3
    assert "cannot be trusted" in capsys.readouterr().err and not out.exists()
    with pytest.raises(StoreCorrupt, match="cannot be trusted"):
        la.export(ds, out=tmp_path / "x.csv", workspace=reviewed)
    with pytest.raises(StoreCorrupt, match="labelaudit review restore"):
        la.report(ds, workspace=reviewed, retrain=False)
    with pytest.raises(StoreCorrupt):  # a writer (the app, an import) refuses it too
        ReviewStore(reviewed.database_url)


def test_a_deleted_or_older_database_is_refused(reviewed, ds, tmp_path, capsys):
    db = db_file(reviewed)
    old = tmp_path / "old.sqlite"
    shutil.copy(db, old)  # a copy with N_DECISIONS decisions
    store = reviewed.review_store()
    decide_many(store, ds, 5, start=N_DECISIONS)
    store.close()
    shutil.copy(old, db)  # replaced by the older copy: 5 decisions gone
    with pytest.raises(StoreCorrupt) as e:
        reviewed.review_store(read_only=True)
    assert f"holds {N_DECISIONS} decision(s)" in str(e.value)
    assert f"expected {N_DECISIONS + 5} decision(s)" in str(e.value)
    db.unlink()
    assert main(export_argv(reviewed, tmp_path / "c.csv")) == 3
    assert "the file does not exist" in capsys.readouterr().err


def test_damage_inside_the_file_is_found_without_a_manifest(tmp_path, ds):
    url = f"sqlite:///{tmp_path / 'r.sqlite'}"
    store = ReviewStore(url)
    decide_many(store, ds, 30)
    store.close()
    (tmp_path / "r.sqlite.manifest.json").unlink()
    raw = bytearray((tmp_path / "r.sqlite").read_bytes())
    page = 4096
    raw[2 * page : 3 * page] = b"\xff" * page  # a page of the log overwritten
    (tmp_path / "r.sqlite").write_bytes(raw)
    with pytest.raises(StoreCorrupt, match="PRAGMA quick_check reports"):
        ReviewStore(url, read_only=True)


def test_a_fresh_workspace_exports_nothing_and_creates_no_database(tmp_path, ds, capsys):
    ws = Workspace(tmp_path / "ws")
    ws.save_dataset(ds)
    assert main(export_argv(ws, tmp_path / "c.csv")) == 0
    assert "0 decided" in capsys.readouterr().out
    assert not db_file(ws).exists()  # a reader writes nothing


def test_the_manifest_counts_every_writer_and_ignores_rolled_back_writes(tmp_path, ds):
    from labelaudit.review.store import ConflictError

    ws = Workspace(tmp_path / "ws")
    a, b = ws.review_store(), ws.review_store()
    decide_many(a, ds, 3)
    decide_many(b, ds, 2, start=3)
    with pytest.raises(ConflictError):  # rolled back: not counted
        b.record(
            dataset_version=ds.content_hash,
            item_id=ds.ids[0],
            reviewer="bo",
            action="keep",
            old_label="x",
            new_label=None,
            seen_decision_id=None,
        )
    b.record_many(
        [
            dict(
                dataset_version=ds.content_hash,
                item_id=ds.ids[9],
                reviewer="labelstudio:cy",
                action="keep",
                old_label="x",
                new_label=None,
            )
        ]
    )
    assert a.flush(30) and b.flush(30)  # the manifest is written off the writer's thread
    m = store_health.read_manifest(ws.review_manifest_path())
    assert m is not None and (m.decisions, m.last_decision_id) == (6, 6)
    a.close()
    b.close()


# --------------------------------------------------------------------------- backups
def test_backups_roll_and_keep_the_newest(tmp_path, ds):
    url = f"sqlite:///{tmp_path / 'r.sqlite'}"
    store = ReviewStore(url, backup_every=5, backups_kept=3)
    for start in range(0, 20, 5):
        decide_many(store, ds, 5, start=start)
        # The due backup is taken off the writer's thread: wait for it, so that it holds exactly
        # these decisions (the next ones would otherwise be committed while it copies).
        assert store.flush(30)
    decide_many(store, ds, 2, start=20)
    store.close()  # the decisions since the last backup: backed up on close
    infos = store_health.list_backups(tmp_path / "r.sqlite")
    assert all(i.sound for i in infos)
    assert [i.decisions for i in infos] == [22, 20, 15]  # newest first, the oldest two rolled off
    assert [store_health._last_id_in_name(i.path) for i in infos] == [22, 20, 15]
    con = sqlite3.connect(infos[0].path)
    assert con.execute("SELECT count(*) FROM review_decisions").fetchone()[0] == 22
    con.close()


def test_a_backup_already_holding_every_decision_is_not_copied_again(tmp_path, ds):
    """A rolling backup that would hold the same decisions as the newest one is not taken: two
    copies of one state would push a different, older state out of the roll. This happens when a
    due backup runs (off the writer's thread) after more decisions were committed, which the count
    reports again at close; or, as here, when ``labelaudit review backup`` ran meanwhile."""
    db = tmp_path / "r.sqlite"
    store = ReviewStore(f"sqlite:///{db}", backup_every=5, backups_kept=3)
    decide_many(store, ds, 5)
    assert store.flush(30)  # the backup due at 5
    decide_many(store, ds, 2, start=5)
    assert store.flush(30)
    store_health.backup_sqlite(db, keep=3)  # another process backs up the 7 decisions
    store.close()  # 2 decisions since this store's last backup, all of them in the newest backup
    assert [i.decisions for i in store_health.list_backups(db)] == [7, 5]
    # Reopened unchanged: no backup on open.
    store = ReviewStore(f"sqlite:///{db}", backup_every=5, backups_kept=3)
    assert [i.decisions for i in store_health.list_backups(db)] == [7, 5]
    decide_many(store, ds, 1, start=7)
    store.close()  # one new decision: backed up
    assert [i.decisions for i in store_health.list_backups(db)] == [8, 7, 5]


def test_restore_after_truncation(reviewed, ds, tmp_path, capsys):
    truncate(db_file(reviewed), "half")
    assert main(["review", "check", "--workspace", str(reviewed.root)]) == 3
    capsys.readouterr()
    assert main(["review", "backups", "--workspace", str(reviewed.root)]) == 0
    listing = capsys.readouterr().out
    assert f"{N_DECISIONS} decision(s) up to id {N_DECISIONS}, sound" in listing
    assert main(["review", "restore", "--workspace", str(reviewed.root)]) == 0
    said = capsys.readouterr().out
    assert "restored" in said and ".damaged-" in said
    assert list(reviewed.root.glob("review.sqlite.damaged-*"))  # the damaged file is kept
    out = tmp_path / "clean.csv"
    assert main(export_argv(reviewed, out)) == 0
    assert f"{N_DECISIONS} decided" in capsys.readouterr().out
    assert (pd.read_csv(out)["action"] == "keep").sum() == N_DECISIONS
    store = reviewed.review_store()  # writable again, and counting on from there
    decide_many(store, ds, 1, start=N_DECISIONS)
    store.close()
    assert main(["review", "check", "--workspace", str(reviewed.root)]) == 0


def test_restore_of_an_older_backup_says_what_is_lost(tmp_path, ds, capsys):
    db = tmp_path / "r.sqlite"
    url = f"sqlite:///{db}"
    store = ReviewStore(url, backup_every=10)
    decide_many(store, ds, 10)  # one backup at 10 (taken off the writer's thread: wait for it)
    assert store.flush(30)
    decide_many(store, ds, 2, start=10)  # none yet of the last 2
    assert store.flush(30)
    os.truncate(db, 0)
    infos = store_health.list_backups(db)
    assert [i.decisions for i in infos] == [10]
    assert main(["review", "restore", "--db", url, infos[0].path.name]) == 0
    assert "2 more decision(s) than this backup holds" in capsys.readouterr().out
    assert len(ReviewStore(url, read_only=True).log()) == 10


def test_restore_without_a_sound_backup_changes_nothing(tmp_path, capsys):
    db = tmp_path / "r.sqlite"
    db.write_bytes(b"not a database")
    assert main(["review", "restore", "--db", f"sqlite:///{db}"]) == 3
    assert "no sound backup" in capsys.readouterr().err
    assert db.read_bytes() == b"not a database"
    assert main(["review", "backups", "--db", "postgresql://u@127.0.0.1/x"]) == 2


# --------------------------------------------------------------------------- a held write lock
def test_readers_never_wait_for_a_held_write_lock(reviewed, ds, tmp_path, capsys, write_lock):
    # Before: ReviewStore() ran create_all under BEGIN IMMEDIATE: export waited 62 s, then a traceback.
    holder = write_lock(db_file(reviewed))
    os.environ["LABELAUDIT_DB_BUSY_TIMEOUT"] = "1"  # a reader that waited would fail: exit 3
    try:
        out = tmp_path / "clean.csv"
        assert main(export_argv(reviewed, out)) == 0
        assert f"{N_DECISIONS} decided" in capsys.readouterr().out
        assert la.export(ds, out=tmp_path / "lib.csv", workspace=reviewed)
        writer = reviewed.review_store()  # opening a writer needs no lock either
        assert len(writer.current(ds.content_hash)) == N_DECISIONS
    finally:
        del os.environ["LABELAUDIT_DB_BUSY_TIMEOUT"]
    release(holder)
    writer.close()


def test_a_held_write_lock_is_storebusy_and_nothing_is_lost(reviewed, ds, write_lock):
    # Before: record() raised a raw sqlite3.OperationalError after 30 s.
    store = reviewed.review_store(busy_timeout=0.5)
    holder = write_lock(db_file(reviewed))
    with pytest.raises(StoreBusy) as e:
        decide_many(store, ds, 1, start=N_DECISIONS)
    assert "busy" in str(e.value) and "Nothing was written" in str(e.value)
    assert str(db_file(reviewed)) in str(e.value)
    with pytest.raises(StoreBusy):
        store.add_finding(
            dataset_version=ds.content_hash, kind="note", target="x", note="n", author="ana"
        )
    release(holder)
    decide_many(store, ds, 1, start=N_DECISIONS)
    assert len(store.log()) == N_DECISIONS + 1
    store.close()


def test_the_cli_says_busy_with_exit_3(reviewed, ds, tmp_path, capsys, write_lock, monkeypatch):
    from labelaudit.commands import queue as queue_cmd

    monkeypatch.setenv("LABELAUDIT_DB_BUSY_TIMEOUT", "0.5")
    holder = write_lock(db_file(reviewed))

    def writes_a_decision(_args) -> int:  # a command that writes, as `labelstudio pull` does
        decide_many(reviewed.review_store(), ds, 1, start=N_DECISIONS)
        return 0

    monkeypatch.setattr(queue_cmd, "run", writes_a_decision)  # registered when main() parses
    argv = [
        "queue",
        "data.csv",
        "--workspace",
        str(reviewed.root),
        "--out",
        str(tmp_path / "q.csv"),
    ]
    assert main(argv) == 3
    err = capsys.readouterr().err
    assert err.startswith("error: the review database") and "is busy" in err
    assert "Traceback" not in err
    release(holder)


def test_the_review_session_keeps_a_busy_decision_and_saves_it_on_retry(reviewed, ds, write_lock):
    store = reviewed.review_store(busy_timeout=0.5)
    session = ReviewSession(dataset_version=ds.content_hash)
    item = session.pick([ds.ids[N_DECISIONS]])
    assert item is not None
    session.show(store, item_evidence(ds, item), "ranking")
    holder = write_lock(db_file(reviewed))
    out = session.decide(
        store, ds, reviewer="ana", action="change", new_label="card_arrival", comment="typo"
    )
    assert out is not None and out.kind == "busy" and "press Retry" in out.message
    assert session.pending is not None and session.pending.new_label == "card_arrival"
    assert session.pick([ds.ids[N_DECISIONS + 1]]) == item  # still on screen
    assert len(store.log()) == N_DECISIONS  # nothing written
    release(holder)
    again = session.retry(store, ds, reviewer="ana")
    assert again is not None and again.kind == "saved"
    assert session.pending is None
    last = store.log().iloc[-1]
    assert (last["item_id"], last["new_label"], last["comment"]) == (item, "card_arrival", "typo")
    store.close()


def test_a_read_only_store_refuses_writes(reviewed, ds):
    store = reviewed.review_store(read_only=True)
    with pytest.raises(UsageError, match="read-only"):
        decide_many(store, ds, 1, start=N_DECISIONS)
    store.close()


def test_store_errors_are_one_family():
    assert issubclass(StoreBusy, StoreError) and issubclass(StoreCorrupt, StoreError)
    assert not issubclass(StoreError, UsageError)


@pytest.mark.postgres
def test_postgres_row_lock_held_elsewhere_is_storebusy_readers_go_on(ds):
    if not PG_URL:
        pytest.skip("LABELAUDIT_TEST_PG_URL is not set (make test starts a PostgreSQL and sets it)")
    import uuid

    version = f"busy-{uuid.uuid4().hex[:12]}"
    store = ReviewStore(PG_URL, busy_timeout=0.5)
    store.record(
        dataset_version=version,
        item_id="a",
        reviewer="ana",
        action="keep",
        old_label="x",
        new_label=None,
    )
    holder = textwrap.dedent(
        """
        import sys, psycopg
        url, version = sys.argv[1].replace("postgresql+psycopg", "postgresql"), sys.argv[2]
        con = psycopg.connect(url)
        con.execute(
            "SELECT 1 FROM review_heads WHERE dataset_version = %s AND item_id = 'a' FOR UPDATE",
            (version,),
        )
        print("locked", flush=True)
        sys.stdin.read()
        """
    )
    p = subprocess.Popen(
        [sys.executable, "-c", holder, store.url, version],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert p.stdout is not None and p.stdout.readline().strip() == "locked"
        with pytest.raises(StoreBusy, match="busy"):
            store.record(
                dataset_version=version,
                item_id="a",
                reviewer="bo",
                action="keep",
                old_label="x",
                new_label=None,
                seen_decision_id=store.latest_decision_id(version, "a"),
            )
        reader = ReviewStore(PG_URL, read_only=True)
        assert len(reader.log(version)) == 1  # readers are not blocked by the row lock
        reader.close()
    finally:
        release(p)
    store.record(
        dataset_version=version,
        item_id="a",
        reviewer="bo",
        action="keep",
        old_label="x",
        new_label=None,
        seen_decision_id=store.latest_decision_id(version, "a"),
    )
    assert len(store.log(version)) == 2
    store.close()


@pytest.mark.postgres
def test_postgres_database_that_lost_decisions_is_refused_via_the_workspace_manifest(tmp_path):
    if not PG_URL:
        pytest.skip("LABELAUDIT_TEST_PG_URL is not set (make test starts a PostgreSQL and sets it)")
    import uuid

    import sqlalchemy as sa

    ws = Workspace(tmp_path / "ws")
    version = f"lost-{uuid.uuid4().hex[:12]}"
    store = ws.review_store(PG_URL)
    for item in ("a", "b", "c"):
        store.record(
            dataset_version=version,
            item_id=item,
            reviewer="ana",
            action="keep",
            old_label="x",
            new_label=None,
        )
    assert store.flush(30)
    manifest = ws.review_manifest_path(PG_URL)
    assert manifest.parent == ws.root and store_health.read_manifest(manifest) is not None
    with store.engine.begin() as conn:  # what a restore of an old dump or a wrong DELETE does
        for table in ("review_decision_identities", "review_decisions", "review_heads"):
            conn.execute(sa.text(f"DELETE FROM {table} WHERE dataset_version = :v"), {"v": version})
    store.close()
    with pytest.raises(StoreCorrupt, match="decisions were lost"):
        ws.review_store(PG_URL, read_only=True)


# --------------------------------------------------------------------------- a crash after the click
CRASHING_REVIEWER = textwrap.dedent(
    """
    import os, signal, sys, time
    from labelaudit.review import store_health
    from labelaudit.review.store import ReviewStore

    url, manifest, version, n, hold = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
    if hold == "hold":  # the manifest writer is still busy when the process dies
        real = store_health.add_to_manifest
        store_health.add_to_manifest = lambda *a, **k: (time.sleep(30), real(*a, **k))[1]
    store = ReviewStore(url, manifest=manifest)
    for i in range(n):
        d = store.record(dataset_version=version, item_id=f"i{i}", reviewer="ana", action="keep",
                         old_label="x", new_label=None, seen_decision_id=None)
        print(d.id, flush=True)  # the click returned: the reviewer sees the next item
    os.kill(os.getpid(), signal.SIGKILL)  # a crash: no close, no flush, no interpreter exit
    """
)


def _crash_store_url(kind: str, tmp_path: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'r.sqlite'}"
    if not PG_URL:
        pytest.skip("LABELAUDIT_TEST_PG_URL is not set (make test starts a PostgreSQL and sets it)")
    return PG_URL


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
@pytest.mark.parametrize("hold", ["hold", "race"])
def test_a_crash_after_the_click_loses_no_decision_and_leaves_a_readable_manifest(
    tmp_path, kind, hold
):
    # The manifest is written after the commit, off the click path (ReviewStore._Upkeep): a process
    # killed right after record() returned must keep every decision it returned, and leave a
    # manifest that can be read and does not make the database look truncated. "hold": the manifest
    # writer is still busy at the kill (the manifest lags the database); "race": 40 decisions, the
    # writer running behind them, killed at once after the last.
    import uuid

    url = _crash_store_url(kind, tmp_path)
    manifest = tmp_path / "review.manifest.json"
    version = f"crash-{uuid.uuid4().hex[:12]}"
    n = 1 if hold == "hold" else 40
    run = subprocess.run(
        [sys.executable, "-c", CRASHING_REVIEWER, url, str(manifest), version, str(n), hold],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert run.returncode == -9, run.stderr  # killed, as a crash
    returned = [int(x) for x in run.stdout.split()]
    assert len(returned) == n
    before = store_health.read_manifest(manifest)  # readable (or not written yet): never raises
    if hold == "hold":
        assert before is None or before.last_decision_id < returned[-1]  # it lagged at the kill
    reader = ReviewStore(url, read_only=True, manifest=manifest)  # not refused as truncated
    assert sorted(reader.log(version)["decision_id"].tolist()) == returned
    reader.close()
    writer = ReviewStore(url, manifest=manifest)  # a writer opening it counts what the log holds
    after = store_health.read_manifest(manifest)
    assert after is not None and after.last_decision_id >= returned[-1]
    assert len(writer.current(version)) == n
    writer.close()


def test_a_forked_child_neither_counts_nor_waits_for_its_parents_pending_manifest(
    tmp_path, monkeypatch
):
    # Fork while the parent's upkeep thread holds the manifest lock with a decision pending: the
    # child must not count the parent's decision again (an over-counting manifest would make the
    # database look truncated) nor wait for a thread it does not have.
    import threading

    url = f"sqlite:///{tmp_path / 'r.sqlite'}"
    store = ReviewStore(url)
    held, go = threading.Event(), threading.Event()
    real = store_health.add_to_manifest

    def slow_add(*a, **k):
        with store_health._thread_lock:  # hold the lock as the real write does
            held.set()
            go.wait(30)
        return real(*a, **k)

    monkeypatch.setattr(store_health, "add_to_manifest", slow_add)
    store.record(
        dataset_version="v",
        item_id="a",
        reviewer="ana",
        action="keep",
        old_label="x",
        new_label=None,
    )
    assert held.wait(30)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its own decision, counted once, without waiting
        ok = "no"
        try:
            monkeypatch.undo()
            assert store.flush(5)  # nothing of the parent's is pending here
            store.record(
                dataset_version="v",
                item_id="b",
                reviewer="bo",
                action="keep",
                old_label="x",
                new_label=None,
            )
            assert store.flush(30)
            ok = "yes"
        finally:
            os.write(write, ok.encode())
            os._exit(0)
    os.close(write)
    assert os.read(read, 8) == b"yes"
    os.waitpid(pid, 0)
    go.set()
    assert store.flush(30)
    m = store_health.read_manifest(store.manifest_path)
    assert (m.decisions, m.last_decision_id) == (2, 2)  # each decision counted once
    store.close()
