"""Keeping the review database's decisions safe: a manifest, a check on open, rolling backups, restore.

The decision log is append-only, so the number of decisions and the highest decision id only grow.
Every write adds its committed decisions to a **manifest**, a small JSON file beside the database
(``review.sqlite.manifest.json`` for SQLite; ``review-<hash>.manifest.json`` in the workspace for a
database server). Opening a store compares the database with it: a database that was truncated,
replaced by an older copy or emptied holds fewer decisions than the manifest, and is refused with
:class:`~labelaudit.errors.StoreCorrupt` instead of being read as "0 decided". SQLite files are also
checked with ``PRAGMA quick_check`` (https://www.sqlite.org/pragma.html#pragma_quick_check) first.

SQLite databases get **rolling backups** in ``<database>.backups/``, taken with SQLite's online backup
API (https://docs.python.org/3/library/sqlite3.html#sqlite3.Connection.backup, a consistent copy
while others keep reading and writing): when a writer opens a database that changed since the newest
backup, after every ``backup_every`` decisions, on close, and before new tables are created. The
newest ``keep`` are kept. :func:`restore_backup` (``labelaudit review restore``) puts one back; the
damaged file is moved aside, never deleted.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import sqlite3
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from labelaudit.errors import StoreCorrupt, StoreError

MANIFEST_FORMAT = 1
DECISIONS_TABLE = "review_decisions"
_thread_lock = threading.Lock()


def _new_lock_after_fork() -> None:
    """A forked child gets a free lock (the parent's upkeep thread may have held it at the fork)."""
    global _thread_lock
    _thread_lock = threading.Lock()


os.register_at_fork(after_in_child=_new_lock_after_fork)


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL (None for an in-memory database or another kind of database)."""
    try:
        u = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        return None
    if u.get_backend_name() != "sqlite":
        return None
    db = u.database or ""
    if not db or db == ":memory:" or db.startswith("file:"):
        return None
    return Path(db).expanduser().resolve()


def redacted(url: str) -> str:
    """The URL without its password, to name a database in messages and the manifest."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "(an invalid database URL)"


def default_manifest_path(url: str) -> Path | None:
    """``<file>.manifest.json`` beside a SQLite file; None for other databases (the workspace names
    one for them: :meth:`labelaudit.workspace.Workspace.review_manifest_path`)."""
    db = sqlite_path(url)
    return None if db is None else db.with_name(db.name + ".manifest.json")


def workspace_manifest_path(root: Path, url: str) -> Path:
    """The manifest of a non-SQLite database used from the workspace ``root``."""
    digest = hashlib.sha256(redacted(url).encode()).hexdigest()[:12]
    return root / f"review-{digest}.manifest.json"


def backup_dir(db: Path) -> Path:
    return db.with_name(db.name + ".backups")


# --------------------------------------------------------------------------- manifest
@dataclass(frozen=True)
class Manifest:
    """What the database held after the last write: ``decisions`` rows, the highest id
    ``last_decision_id``, when (``updated_at``, UTC ISO) and which database."""

    last_decision_id: int
    decisions: int
    updated_at: str
    database: str

    def describe(self) -> str:
        return f"{self.decisions:,} decision(s) up to id {self.last_decision_id}"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Serialise read-modify-write of ``path`` across threads and processes (a ``.lock`` beside it)."""
    with _thread_lock:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock


def read_manifest(path: Path | None) -> Manifest | None:
    """The manifest at ``path``; None when there is none. A damaged manifest is StoreCorrupt."""
    if path is None or not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Manifest(
            last_decision_id=int(data["last_decision_id"]),
            decisions=int(data["decisions"]),
            updated_at=str(data.get("updated_at", "")),
            database=str(data.get("database", "")),
        )
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise StoreCorrupt(
            f"the review manifest {path} cannot be read ({type(e).__name__}: {e}); expected the "
            "JSON that labelaudit writes after every decision. Check the database with "
            "`labelaudit review check`; if it holds every decision, delete the manifest and it is "
            "written again from the database"
        ) from e


def _write_manifest(path: Path, m: Manifest) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(
                {
                    "format": MANIFEST_FORMAT,
                    "database": m.database,
                    "last_decision_id": m.last_decision_id,
                    "decisions": m.decisions,
                    "updated_at": m.updated_at,
                },
                f,
                indent=1,
            )
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def add_to_manifest(path: Path, database: str, new_ids: list[int]) -> Manifest:
    """Count the committed decisions ``new_ids`` in the manifest (under a file lock)."""
    with _locked(path):
        old = read_manifest(path)
        m = Manifest(
            last_decision_id=max([old.last_decision_id if old else 0, *new_ids]),
            decisions=(old.decisions if old else 0) + len(new_ids),
            updated_at=_now(),
            database=database,
        )
        _write_manifest(path, m)
        return m


def set_manifest(path: Path, database: str, last_id: int, count: int, *, exact: bool) -> Manifest:
    """Write the database's own figures; ``exact=False`` never lowers what the manifest holds (a
    writer opening the database), ``exact=True`` sets them (after a restore)."""
    with _locked(path):
        old = None if exact else read_manifest(path)
        m = Manifest(
            last_decision_id=max(last_id, old.last_decision_id if old else 0),
            decisions=max(count, old.decisions if old else 0),
            updated_at=_now(),
            database=database,
        )
        if old is None or m != old:
            _write_manifest(path, m)
        return m


# --------------------------------------------------------------------------- checks
def _restore_hint(db: Path | None) -> str:
    if db is None:
        return (
            "Restore the database from your server's backups, or if the loss is intended, delete "
            "the manifest"
        )
    return (
        f"Restore the newest good backup with `labelaudit review restore --db sqlite:///{db}` "
        f"(`labelaudit review backups --db sqlite:///{db}` lists them; the damaged file is kept "
        "aside). Stop the app and other labelaudit commands on this database first"
    )


def corrupt(
    database: str, found: str, expected: str, db: Path | None, manifest: Path | None
) -> StoreCorrupt:
    where = f" (manifest {manifest})" if manifest is not None else ""
    return StoreCorrupt(
        f"the review database {database} cannot be trusted: {found}; expected {expected}{where}. "
        f"Nothing was read or written. {_restore_hint(db)}"
    )


def folder_writable(folder: Path) -> bool:
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".labelaudit-write-check-")
    except OSError:
        return False
    os.close(fd)
    os.unlink(probe)
    return True


def read_only_target(db: Path) -> str | None:
    """A SQLite URI that reads ``db`` where nothing can write it: a WAL database in a read-only
    folder cannot create its ``-shm`` file, so it is opened ``immutable`` (safe there: no writer can
    change it either). None when a plain open works."""
    if Path(f"{db}-shm").exists() or folder_writable(db.parent):
        return None
    return f"file:{db}?mode=ro&immutable=1"


def quick_check(db: Path, timeout: float) -> list[str]:
    """``PRAGMA quick_check`` of a SQLite file: [] when it is sound, else what SQLite reports.
    A file that cannot be opened at all (permissions) raises StoreError: that is not damage."""
    target = read_only_target(db)
    con: sqlite3.Connection | None = None
    try:
        con = (
            sqlite3.connect(target, uri=True, timeout=timeout)
            if target
            else sqlite3.connect(str(db), timeout=timeout)
        )
        con.execute("PRAGMA query_only=ON")
        rows = [str(r[0]) for r in con.execute("PRAGMA quick_check").fetchall()]
    except sqlite3.Error as e:
        if con is not None:
            con.close()
        name = getattr(e, "sqlite_errorname", "") or ""
        if name.startswith(("SQLITE_CANTOPEN", "SQLITE_READONLY", "SQLITE_PERM", "SQLITE_AUTH")):
            raise StoreError(
                f"cannot open the review database {db}: {e}; expected a file this user can read "
                "(and, for a writer, write). Fix: check the permissions of the file and its folder"
            ) from e
        return [str(e)]
    con.close()
    return [] if rows == ["ok"] else rows[:5]


def check_sqlite_file(
    db: Path, manifest_path: Path | None, database: str, timeout: float
) -> Manifest | None:
    """Before the store opens ``db``: refuse a file that is missing, empty or damaged while the
    manifest says it held decisions (and a damaged one in any case). Returns the manifest."""
    m = read_manifest(manifest_path)
    expected = (
        f"{m.describe()}, as recorded at {m.updated_at}" if m is not None else "a sound SQLite file"
    )
    saved = m is not None and m.decisions > 0
    if not db.exists():
        if saved:
            raise corrupt(database, "the file does not exist", expected, db, manifest_path)
        return m
    size = db.stat().st_size
    if size == 0:
        if saved:
            raise corrupt(
                database,
                "the file is empty (0 bytes): it was truncated",
                expected,
                db,
                manifest_path,
            )
        return m
    problems = quick_check(db, timeout)
    if problems:
        raise corrupt(
            database,
            f"the file ({size:,} bytes) is damaged: PRAGMA quick_check reports "
            + "; ".join(problems),
            expected,
            db,
            manifest_path,
        )
    return m


def check_counts(
    database: str,
    last_id: int,
    count: int,
    m: Manifest | None,
    db: Path | None,
    manifest_path: Path | None,
) -> None:
    """Refuse a database holding fewer decisions, or a lower newest id, than the manifest."""
    if m is None or (count >= m.decisions and last_id >= m.last_decision_id):
        return
    raise corrupt(
        database,
        f"it holds {count:,} decision(s) up to id {last_id}: decisions were lost (a truncated, "
        "replaced or emptied database)",
        f"{m.describe()}, as recorded at {m.updated_at}",
        db,
        manifest_path,
    )


# --------------------------------------------------------------------------- backups
@dataclass(frozen=True)
class BackupInfo:
    """One backup file: when it was taken, what it holds, and whether it passes quick_check."""

    path: Path
    taken_at: str
    decisions: int
    last_decision_id: int
    sound: bool
    problem: str = ""

    def describe(self) -> str:
        state = "sound" if self.sound else f"DAMAGED ({self.problem})"
        return (
            f"{self.path.name}: taken {self.taken_at}, {self.decisions:,} decision(s) up to id "
            f"{self.last_decision_id}, {state}"
        )


def _counts(con: sqlite3.Connection) -> tuple[int, int]:
    has = con.execute(
        "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (DECISIONS_TABLE,)
    ).fetchone()
    if not has:
        return 0, 0
    last, count = con.execute(
        f"SELECT coalesce(max(decision_id), 0), count(*) FROM {DECISIONS_TABLE}"
    ).fetchone()
    return int(last), int(count)


def backup_sqlite(db: Path, *, keep: int, timeout: float = 30.0, if_new: bool = False) -> Path:
    """Copy ``db`` into its backup folder with SQLite's online backup API and keep the newest
    ``keep`` backups. Readers and writers carry on meanwhile; the copy is consistent, and its name
    carries the newest decision id the copy holds (read from the copy: a decision committed while
    the copy runs is in it). With ``if_new``, no copy is made when the newest backup already holds
    the database's newest decision (say, a backup that was due at 20 decisions and ran after 22
    were committed, then the close that found 2 uncounted): the newest backup is returned, and the
    roll keeps ``keep`` different states instead of two copies of one."""
    folder = backup_dir(db)
    folder.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(str(db), timeout=timeout)
    try:
        if if_new:
            newest = backup_files(db)
            if newest and _last_id_in_name(newest[0]) == _counts(src)[0]:
                return newest[0]
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{db.stem}-{stamp}.", suffix=".tmp")
        os.close(fd)
        try:
            dst = sqlite3.connect(tmp)
            try:
                src.backup(dst)
                last, _ = _counts(dst)
            finally:
                dst.close()
            final = folder / f"{db.stem}-{stamp}-d{last}.sqlite"
            os.replace(tmp, final)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    finally:
        src.close()
    for old in backup_files(db)[keep:]:
        with contextlib.suppress(OSError):
            old.unlink()
    return final


def backup_files(db: Path) -> list[Path]:
    """The backups of ``db``, newest first."""
    folder = backup_dir(db)
    if not folder.is_dir():
        return []
    return sorted(folder.glob(f"{db.stem}-*.sqlite"), key=lambda p: p.name, reverse=True)


def _last_id_in_name(path: Path) -> int | None:
    tail = path.stem.rsplit("-d", 1)[-1]
    return int(tail) if tail.isdigit() else None


def describe_backup(path: Path) -> BackupInfo:
    stamp = path.stem.split("-")[-2] if path.stem.count("-") >= 2 else ""
    try:
        taken = datetime.strptime(stamp, "%Y%m%dT%H%M%S%fZ").strftime("%Y-%m-%d %H:%M:%S UTC")
    except ValueError:
        taken = datetime.fromtimestamp(path.stat().st_mtime, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    problems = quick_check(path, 5.0)
    if problems:
        return BackupInfo(path, taken, 0, 0, False, "; ".join(problems))
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        last, count = _counts(con)
    except sqlite3.Error as e:
        return BackupInfo(path, taken, 0, 0, False, str(e))
    finally:
        con.close()
    return BackupInfo(path, taken, count, last, True)


def list_backups(db: Path) -> list[BackupInfo]:
    """Every backup of ``db``, newest first, each checked."""
    return [describe_backup(p) for p in backup_files(db)]


@dataclass(frozen=True)
class Restored:
    backup: BackupInfo
    moved_aside: list[Path]
    manifest: Manifest | None
    lost: int  # decisions the manifest had recorded beyond the backup (0 when unknown)


def restore_backup(
    db: Path, backup: Path | None, manifest_path: Path | None, database: str
) -> Restored:
    """Put ``backup`` (default: the newest sound one) back as ``db``; the current file and its
    ``-wal``/``-shm`` are renamed ``<name>.damaged-<time>`` first, and the manifest is set to the
    restored figures. Raises StoreCorrupt when there is no sound backup."""
    infos = list_backups(db)
    if backup is not None:
        path = Path(backup)
        if not path.is_absolute() and not path.exists():
            path = backup_dir(db) / path
        if not path.exists():
            names = ", ".join(i.path.name for i in infos) or "none"
            raise corrupt(
                database, f"there is no backup {backup}", f"one of: {names}", db, manifest_path
            )
        chosen = describe_backup(path)
        if not chosen.sound:
            raise corrupt(
                database,
                f"the backup {path.name} is damaged too ({chosen.problem})",
                "a sound backup",
                db,
                manifest_path,
            )
    else:
        sound = [i for i in infos if i.sound]
        if not sound:
            raise StoreCorrupt(
                f"no sound backup of {db} in {backup_dir(db)} "
                f"({len(infos)} backup file(s) found, none passes PRAGMA quick_check); nothing was "
                "changed"
            )
        chosen = sound[0]
    before = read_manifest(manifest_path) if manifest_path is not None else None
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    moved: list[Path] = []
    for suffix in ("", "-wal", "-shm"):
        f = db.with_name(db.name + suffix)
        if f.exists():
            aside = db.with_name(f"{db.name}{suffix}.damaged-{stamp}")
            os.replace(f, aside)
            moved.append(aside)
    fd, tmp = tempfile.mkstemp(dir=db.parent, prefix=f".{db.name}.", suffix=".restore")
    os.close(fd)
    try:
        src = sqlite3.connect(f"file:{chosen.path}?mode=ro", uri=True)
        dst = sqlite3.connect(tmp)
        try:
            src.backup(dst)
        finally:
            dst.close()
            src.close()
        os.replace(tmp, db)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    m = None
    if manifest_path is not None:
        m = set_manifest(
            manifest_path, database, chosen.last_decision_id, chosen.decisions, exact=True
        )
    lost = max(0, before.decisions - chosen.decisions) if before is not None else 0
    return Restored(chosen, moved, m, lost)
