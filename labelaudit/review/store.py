"""The review store: an append-only log of reviewers' decisions in a real database.

Every decision is one row that is never updated or deleted; an item's current label is the result of
folding its decisions in order (an ``undo`` row cancels the latest decision it has not cancelled yet).
SQLite (a file in the workspace) is the default; any SQLAlchemy URL works, e.g.
``postgresql+psycopg://user@127.0.0.1:5432/labelaudit``.

Two reviewers never silently overwrite each other: a reviewer passes the id of the item's latest
decision at the time the item was shown (``seen_decision_id``); if another decision landed since,
:class:`ConflictError` is raised and nothing is written. The check and the insert happen in one
transaction that holds a lock on the item's *head row* (``review_heads``: one row per dataset
version and item, pointing at its latest decision): ``SELECT … FOR UPDATE`` on PostgreSQL,
``BEGIN IMMEDIATE`` on SQLite. A call returns only after its transaction committed, so a decision is
durable once ``record`` returns (SQLite runs with ``synchronous=FULL``).
"""

from __future__ import annotations

import copy
import json
import os
import sqlite3
import tempfile
import threading
import warnings
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool

from labelaudit.errors import StoreBusy, StoreCorrupt, StoreError, UsageError
from labelaudit.review import store_health as health
from labelaudit.review.identity import Identity

#: Actions a reviewer can take. ``undo`` is appended by :meth:`ReviewStore.undo`.
ACTIONS = ("accept", "change", "keep", "ambiguous", "remove", "undo")
#: Actions whose new label must be given (a class name).
RELABEL_ACTIONS = ("accept", "change")
FINDING_KINDS = ("cluster", "item", "class_pair", "note")

LOG_COLUMNS = [
    "decision_id",
    "dataset_version",
    "item_id",
    "reviewer",
    "decided_at",
    "action",
    "old_label",
    "new_label",
    "comment",
    "shown",
]
CURRENT_COLUMNS = [
    "item_id",
    "action",
    "final_label",
    "reviewer",
    "decided_at",
    "decision_id",
    "latest_decision_id",
]
#: Who decided and how they were identified (:mod:`labelaudit.review.identity`), after LOG_COLUMNS in
#: :meth:`ReviewStore.log`: ``auth`` (oidc | typed | import | script), ``subject`` (for oidc the
#: provider's ``iss|sub``, else empty), ``role`` (reviewer | lead), ``capacity`` (see
#: :data:`CAPACITIES`). Decisions logged before identities were kept have None.
IDENTITY_COLUMNS = ["auth", "subject", "role", "capacity"]
#: In what capacity a decision was made: one reviewer alone (``single``), a bulk decision, the
#: agreement of two blind reviews (``consensus``), a lead settling a disagreement (``adjudication``,
#: final: only a lead can change it), or an import from another tool.
CAPACITIES = ("single", "bulk", "consensus", "adjudication", "import")
FINDING_COLUMNS = ["finding_id", "kind", "target", "note", "author", "created_at"]
#: How a finding's author was identified, after FINDING_COLUMNS in :meth:`ReviewStore.findings`:
#: ``author_auth`` (oidc | typed | import | script) and ``author_subject`` (oidc: ``iss|sub``);
#: None for findings pinned before authors' identities were kept.
FINDING_IDENTITY_COLUMNS = ["author_auth", "author_subject"]

_metadata = sa.MetaData()
decisions_table = sa.Table(
    "review_decisions",
    _metadata,
    sa.Column("decision_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("dataset_version", sa.String(64), nullable=False),
    sa.Column("item_id", sa.Text, nullable=False),
    sa.Column("reviewer", sa.Text, nullable=False),
    sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("old_label", sa.Text, nullable=True),  # None only for an undo of a removal
    sa.Column("new_label", sa.Text, nullable=True),  # None for remove
    sa.Column("comment", sa.Text, nullable=False, default=""),
    sa.Column("shown", sa.Text, nullable=False, default="{}"),  # JSON: what the reviewer saw
    sa.Column("undoes_id", sa.Integer, nullable=True),  # for undo rows: the decision it cancels
    sa.Index("ix_review_decisions_version_item", "dataset_version", "item_id"),
    # "the rows of a version after id X" (touched_since, the folded log's refresh) as a range scan:
    # with the index above alone, SQLite walks every row of the version instead.
    sa.Index("ix_review_decisions_version_id", "dataset_version", "decision_id"),
)
heads_table = sa.Table(
    "review_heads",
    _metadata,
    sa.Column("dataset_version", sa.String(64), primary_key=True),
    sa.Column("item_id", sa.Text, primary_key=True),
    sa.Column("latest_decision_id", sa.Integer, nullable=False, default=0),  # 0 = no decision yet
)
findings_table = sa.Table(
    "review_findings",
    _metadata,
    sa.Column("finding_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("dataset_version", sa.String(64), nullable=False, index=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("target", sa.Text, nullable=False),
    sa.Column("note", sa.Text, nullable=False),
    sa.Column("author", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)
# Who pinned each finding and how they were identified (as review_decision_identities for the log).
finding_identities_table = sa.Table(
    "review_finding_identities",
    _metadata,
    sa.Column("finding_id", sa.Integer, primary_key=True),
    sa.Column("auth", sa.String(16), nullable=False),  # oidc | typed | import | script
    sa.Column("subject", sa.Text, nullable=False, default=""),  # oidc: issuer|sub
    sa.Column("role", sa.String(16), nullable=False),  # reviewer | lead
)

# Learning from the decisions (labelaudit.review.learn / audit / adaptive read and write these; all
# append-only like the log): settings per dataset version (the latest row of a name wins), the
# rankings put in force, and the audit sample drawn for the estimate of the errors left.
settings_table = sa.Table(
    "review_settings",
    _metadata,
    sa.Column("setting_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("dataset_version", sa.String(64), nullable=False, index=True),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("value", sa.Text, nullable=False),  # JSON
    sa.Column("set_by", sa.Text, nullable=False),
    sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
)
rankings_table = sa.Table(
    "review_rankings",
    _metadata,
    sa.Column("ranking_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("dataset_version", sa.String(64), nullable=False, index=True),
    # The ranking was fitted on the decisions in force among log rows with decision_id <= this.
    sa.Column("cutoff_decision_id", sa.Integer, nullable=False),
    sa.Column("ranking", sa.String(16), nullable=False),  # static | learnt
    sa.Column("trigger", sa.String(16), nullable=False),  # auto | on demand
    sa.Column("n_decisions", sa.Integer, nullable=False),
    sa.Column("n_changed", sa.Integer, nullable=False),
    sa.Column("auroc_learnt", sa.Float, nullable=True),
    sa.Column("auroc_static", sa.Float, nullable=True),
    sa.Column("note", sa.Text, nullable=False, default=""),
    sa.Column("requested_by", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)
audit_plans_table = sa.Table(
    "review_audit_plans",
    _metadata,
    sa.Column("plan_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("dataset_version", sa.String(64), nullable=False, index=True),
    # Decisions with an id above this were made after the sample was drawn.
    sa.Column("cutoff_decision_id", sa.Integer, nullable=False),
    sa.Column("seed", sa.Integer, nullable=False),
    sa.Column("strata", sa.Text, nullable=False),  # JSON: edges and sizes of the score strata
    sa.Column("created_by", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)
audit_items_table = sa.Table(
    "review_audit_items",
    _metadata,
    sa.Column("plan_id", sa.Integer, primary_key=True),
    sa.Column("item_id", sa.Text, primary_key=True),
    sa.Column("dataset_version", sa.String(64), nullable=False, index=True),
    sa.Column("stratum", sa.Integer, nullable=False),
    sa.Column("position", sa.Integer, nullable=False),  # order in which audit slots take them
)

# Review as a team (labelaudit.review.team reads and writes these). Who made each decision of the log
# and how they were identified: one row per decision, written in the decision's own transaction.
decision_identities_table = sa.Table(
    "review_decision_identities",
    _metadata,
    sa.Column("decision_id", sa.Integer, primary_key=True),
    sa.Column("dataset_version", sa.String(64), nullable=False, index=True),
    sa.Column("auth", sa.String(16), nullable=False),  # oidc | typed | import | script
    sa.Column("subject", sa.Text, nullable=False, default=""),  # oidc: issuer|sub
    sa.Column("role", sa.String(16), nullable=False),  # reviewer | lead
    sa.Column("capacity", sa.String(16), nullable=False),  # CAPACITIES
)
# Assignments: a lead splits a queue across named reviewers; overlap items get a second slot.
assignments_table = sa.Table(
    "review_assignments",
    _metadata,
    sa.Column("assignment_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("dataset_version", sa.String(64), nullable=False, index=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("reviewers", sa.Text, nullable=False),  # JSON list, in the order given
    sa.Column("overlap_share", sa.Float, nullable=False),
    sa.Column("seed", sa.Integer, nullable=False),
    sa.Column("n_items", sa.Integer, nullable=False),
    sa.Column("n_overlap", sa.Integer, nullable=False),
    sa.Column("created_by", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)
assignment_items_table = sa.Table(
    "review_assignment_items",
    _metadata,
    sa.Column("assignment_id", sa.Integer, primary_key=True),
    sa.Column("item_id", sa.Text, primary_key=True),
    sa.Column("slot", sa.Integer, primary_key=True),  # 0; 1 = the second review of an overlap item
    sa.Column("dataset_version", sa.String(64), nullable=False),
    sa.Column("reviewer", sa.Text, nullable=False),
    sa.Column("position", sa.Integer, nullable=False),  # rank in the assignment's source order
    sa.Column("overlap", sa.Boolean, nullable=False),
    sa.Index("ix_review_assignment_items_version_reviewer", "dataset_version", "reviewer"),
    sa.Index("ix_review_assignment_items_version_item", "dataset_version", "item_id"),
)
# Closing an assignment, moving a reviewer's open slots to another: append-only, newest last.
assignment_events_table = sa.Table(
    "review_assignment_events",
    _metadata,
    sa.Column("event_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("assignment_id", sa.Integer, nullable=False, index=True),
    sa.Column("dataset_version", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # closed | moved
    sa.Column("detail", sa.Text, nullable=False),  # JSON
    sa.Column("by", sa.Text, nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
)
# Blind reviews of overlap items: the same append-only rules as the log, one head per (item, slot).
# Neither reviewer sees the other's; agreeing pairs become a consensus decision in the log,
# disagreeing ones wait for a lead's adjudication.
blind_decisions_table = sa.Table(
    "review_blind_decisions",
    _metadata,
    sa.Column("blind_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("dataset_version", sa.String(64), nullable=False),
    sa.Column("assignment_id", sa.Integer, nullable=False),
    sa.Column("item_id", sa.Text, nullable=False),
    sa.Column("slot", sa.Integer, nullable=False),
    sa.Column("reviewer", sa.Text, nullable=False),
    sa.Column("auth", sa.String(16), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("old_label", sa.Text, nullable=True),
    sa.Column("new_label", sa.Text, nullable=True),
    sa.Column("comment", sa.Text, nullable=False, default=""),
    sa.Column("shown", sa.Text, nullable=False, default="{}"),
    sa.Column("undoes_id", sa.Integer, nullable=True),
    sa.Index("ix_review_blind_decisions_version_item", "dataset_version", "item_id"),
)
# The OpenID Connect subject (issuer|sub) of a signed-in blind review, as review_decision_identities
# holds it for the log (the review row itself keeps name, auth and role).
blind_identities_table = sa.Table(
    "review_blind_identities",
    _metadata,
    sa.Column("blind_id", sa.Integer, primary_key=True),
    sa.Column("subject", sa.Text, nullable=False),
)
blind_heads_table = sa.Table(
    "review_blind_heads",
    _metadata,
    sa.Column("dataset_version", sa.String(64), primary_key=True),
    sa.Column("item_id", sa.Text, primary_key=True),
    sa.Column("slot", sa.Integer, primary_key=True),
    sa.Column("latest_blind_id", sa.Integer, nullable=False, default=0),
)


@dataclass(frozen=True)
class Decision:
    """One row of the decision log. ``decided_at`` is timezone-aware UTC."""

    id: int
    dataset_version: str
    item_id: str
    reviewer: str
    decided_at: datetime
    action: str
    old_label: str | None
    new_label: str | None
    comment: str = ""
    shown: dict[str, Any] = field(default_factory=dict)
    undoes_id: int | None = None
    #: How the reviewer was identified, their role and the decision's capacity (IDENTITY_COLUMNS);
    #: None for decisions logged before identities were kept.
    auth: str | None = None
    role: str | None = None
    capacity: str | None = None

    @property
    def final(self) -> bool:
        """An adjudication: final, only a lead may change it."""
        return self.capacity == "adjudication"

    @property
    def decision_id(self) -> int:
        return self.id

    def describe(self) -> str:
        """'alice: change card_arrival → card_delivery_estimate (2026-11-24 01:02 UTC)' as plain text."""
        if self.action in RELABEL_ACTIONS:
            what = f"{self.action} {self.old_label} → {self.new_label}"
        elif self.action == "undo":
            what = f"undo (label back to {self.new_label})"
        else:
            what = f"{self.action} ({self.old_label})"
        when = self.decided_at.strftime("%Y-%m-%d %H:%M:%S UTC")
        note = f" — {self.comment}" if self.comment else ""
        return f"{self.reviewer}: {what} at {when}{note}"


class ConflictError(Exception):
    """The item got a newer decision after it was shown; nothing was written."""

    def __init__(self, latest: Decision):
        self.latest = latest
        super().__init__(f"item {latest.item_id} was decided meanwhile by {latest.describe()}")


class FinalDecisionError(UsageError):
    """The item's decision in force is a lead's adjudication: final, only a lead may change it."""

    def __init__(self, latest: Decision):
        self.latest = latest
        super().__init__(
            f"item {latest.item_id} was adjudicated by the lead {latest.reviewer}: that decision is "
            "final, only a lead can change it"
        )


#: What stamps decisions and findings: a function returning the time now, timezone-aware, in UTC.
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The wall clock in UTC: the store's default :data:`Clock`."""
    return datetime.now(UTC)


def normalise_url(url: str) -> str:
    """Use the installed psycopg 3 driver for plain ``postgresql://`` URLs."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


_READ_ONLY = "labelaudit_read_only"
#: How long a write waits for another process's write lock before :class:`StoreBusy` (seconds);
#: ``LABELAUDIT_DB_BUSY_TIMEOUT`` overrides it.
DEFAULT_BUSY_TIMEOUT = 30.0
#: Rolling SQLite backups: one after this many decisions (and on open and close), this many kept.
BACKUP_EVERY = 25
BACKUPS_KEPT = 5
#: Keys per statement when a batch reads or writes many items (SQLite allows 999 parameters in a
#: statement on old builds; PostgreSQL 65,535).
BATCH_ROWS = 900
# Connection.info keys: ids of decisions inserted in the open transaction, and once committed.
_NEW_IDS = "labelaudit_new_decision_ids"
_COMMITTED_IDS = "labelaudit_committed_decision_ids"

_SQLITE_BUSY = {"SQLITE_BUSY", "SQLITE_LOCKED"}
_SQLITE_CORRUPT = {"SQLITE_CORRUPT", "SQLITE_NOTADB"}
_PG_BUSY = {"55P03", "40P01"}  # lock_not_available (lock_timeout), deadlock_detected


def _busy_timeout(value: float | None) -> float:
    if value is not None:
        return float(value)
    env = os.environ.get("LABELAUDIT_DB_BUSY_TIMEOUT")
    try:
        return float(env) if env else DEFAULT_BUSY_TIMEOUT
    except ValueError as e:
        raise UsageError(
            f"LABELAUDIT_DB_BUSY_TIMEOUT={env!r}: expected a number of seconds, e.g. 30"
        ) from e


def _error_kind(exc: BaseException) -> str | None:
    """'busy', 'corrupt' or None for a DBAPI exception."""
    name = getattr(exc, "sqlite_errorname", None)
    if isinstance(exc, sqlite3.Error):
        text = str(exc).lower()
        if name in _SQLITE_BUSY or "database is locked" in text or "is busy" in text:
            return "busy"
        if name in _SQLITE_CORRUPT or "malformed" in text or "not a database" in text:
            return "corrupt"
        if (name or "").startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN")) or "readonly" in text:
            return "readonly"
        return None
    if getattr(exc, "sqlstate", None) in _PG_BUSY:
        return "busy"
    return None


def _check_writable(db: Path, what: str) -> None:
    """A writer needs the SQLite file and its folder (journal, backups, manifest) writable: say so
    on open, before any work, instead of failing at the first decision."""
    try:
        if db.exists():
            with open(db, "r+b"):
                pass
        folder = db.parent
        if not folder.exists():
            raise FileNotFoundError(f"no folder {folder}")
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".labelaudit-write-check-")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise StoreError(
            f"the review database {what} cannot be written: {e.strerror or e}. Expected a writable "
            f"file in a writable folder ({db.parent}: SQLite writes its journal there). Fix: make "
            "them writable, or pass --db / LABELAUDIT_DB_URL with another database (commands that "
            "only read, such as `labelaudit export`, work on a read-only database)"
        ) from e


def _make_engine(url: str, *, read_only: bool, busy_timeout: float, what: str) -> Engine:
    url = normalise_url(url)
    ms = int(busy_timeout * 1000)
    if url.startswith("sqlite"):
        # Let SQLAlchemy emit BEGIN itself so every write transaction is BEGIN IMMEDIATE: the write lock
        # is taken before the conflict check, which makes check-and-insert atomic across processes.
        # A read-only store never writes, never asks for the write lock, never changes the file.
        engine = sa.create_engine(url, connect_args={"timeout": busy_timeout})

        @sa.event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            dbapi_conn.isolation_level = None  # the driver must not BEGIN on its own
            cur = dbapi_conn.cursor()
            cur.execute(f"PRAGMA busy_timeout={ms}")
            if read_only:
                cur.execute("PRAGMA query_only=ON")
            else:
                cur.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
                cur.execute("PRAGMA synchronous=FULL")  # committed = on disk, even with WAL
            cur.close()

        @sa.event.listens_for(engine, "begin")
        def _on_begin(conn):  # type: ignore[no-untyped-def]
            # Reads need no write lock; with WAL they see the last committed state without waiting.
            ro = read_only or conn.get_execution_options().get(_READ_ONLY, False)
            conn.exec_driver_sql("BEGIN DEFERRED" if ro else "BEGIN IMMEDIATE")

    else:
        options = f"-c lock_timeout={ms}"
        if read_only:
            options += " -c default_transaction_read_only=on"
        args: dict[str, Any] = {}
        if url.startswith("postgresql"):
            args["options"] = options
        engine = sa.create_engine(url, pool_pre_ping=True, connect_args=args)

    @sa.event.listens_for(engine, "handle_error")
    def _on_error(ctx):  # type: ignore[no-untyped-def]
        exc = ctx.original_exception
        kind = _error_kind(exc)
        if kind == "busy":
            raise StoreBusy(
                f"the review database {what} is busy: another process has held its write lock "
                f"for more than {busy_timeout:g} s ({exc}). Nothing was written; decisions saved "
                "before are safe. Try again when the other process (a scan, an import, another "
                "reviewer's save) has finished; LABELAUDIT_DB_BUSY_TIMEOUT sets how long to wait"
            ) from exc
        if kind == "readonly":
            raise StoreError(
                f"the review database {what} cannot be written: {exc}. Nothing was written. Fix: "
                "make the database file and its folder writable (commands that only read, such as "
                "`labelaudit export`, work on a read-only database)"
            ) from exc
        if kind == "corrupt":
            raise StoreCorrupt(
                f"the review database {what} is damaged: {exc}. Nothing was written. "
                "`labelaudit review check` tells what is wrong and `labelaudit review restore` "
                "puts the newest good backup back (stop the app first)"
            ) from exc

    return engine


def _utc(ts: Any) -> datetime:
    """SQLite hands back naive datetimes (we store UTC); PostgreSQL aware ones."""
    if isinstance(ts, str):
        ts = datetime.fromisoformat(ts)
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def _row_to_decision(row: Any, identity: dict[str, Any] | None = None) -> Decision:
    """A log row (with the identity columns, or ``identity`` for a row just inserted)."""
    m = row._mapping if identity is None else {**row._mapping, **identity}
    return Decision(
        auth=m.get("auth"),
        role=m.get("role"),
        capacity=m.get("capacity"),
        id=int(m["decision_id"]),
        dataset_version=m["dataset_version"],
        item_id=m["item_id"],
        reviewer=m["reviewer"],
        decided_at=_utc(m["decided_at"]),
        action=m["action"],
        old_label=m["old_label"],
        new_label=m["new_label"],
        comment=m["comment"] or "",
        shown=json.loads(m["shown"] or "{}"),
        undoes_id=m["undoes_id"],
    )


def effective_stack(history: list[Decision]) -> list[Decision]:
    """The decisions still in force after undos, oldest first (``history`` ordered by id).

    >>> # change, keep, undo  ->  [change]   (the undo cancelled the keep)
    """
    stack: list[Decision] = []
    for d in history:
        if d.action == "undo":
            stack = [s for s in stack if s.id != d.undoes_id]
        else:
            stack.append(d)
    return stack


#: The log columns a fold keeps per decision (the order :meth:`_Fold.add` reads them in).
_FOLD_COLUMNS = [
    decisions_table.c[n]
    for n in (
        "item_id",
        "action",
        "new_label",
        "reviewer",
        "decided_at",
        "decision_id",
        "undoes_id",
    )
]


@dataclass
class _Fold:
    """One dataset version's log folded per item, kept by the store between reads.

    ``stacks``: item -> its decisions still in force, oldest first (plain tuples of
    :data:`_FOLD_COLUMNS`); ``latest``: item -> its newest decision id; ``ids``: every decision id
    folded; ``cursor``: the highest of them; ``count``: how many; ``changes``: bumped whenever a
    read folded something (the frame of :meth:`ReviewStore.current` is rebuilt then);
    ``refreshes``/``repairs``: reads, and reads that found rows committed late.
    """

    cursor: int = 0
    count: int = 0
    stacks: dict[str, list[tuple]] = field(default_factory=dict)
    latest: dict[str, int] = field(default_factory=dict)
    ids: set[int] = field(default_factory=set)
    changes: int = 0
    frame: pd.DataFrame | None = None
    frame_changes: int = -1
    refreshes: int = 0
    repairs: int = 0
    #: Items changed since :attr:`frame` was built (the frame is patched for them, not rebuilt).
    dirty: set[str] = field(default_factory=set)

    def add(self, rows: Any) -> None:
        """Fold ``rows`` (ordered by id, all above the cursor)."""
        for r in rows:
            item, action, undoes, decision_id = r[0], r[1], r[6], int(r[5])
            stack = self.stacks.setdefault(item, [])
            if action == "undo":
                self.stacks[item] = [d for d in stack if d[5] != undoes]
            else:
                stack.append(tuple(r))
            self.latest[item] = decision_id
            self.dirty.add(item)
            self.ids.add(decision_id)
            self.cursor = max(self.cursor, decision_id)
            self.count += 1
        if rows:
            self.changes += 1

    def refold(self, item: str, history: Any) -> None:
        """Replace ``item``'s state by the fold of its whole ``history`` (ordered by id)."""
        stack: list[tuple] = []
        for r in history:
            decision_id = int(r[5])
            if decision_id not in self.ids:
                self.ids.add(decision_id)
                self.count += 1
            if r[1] == "undo":
                stack = [d for d in stack if d[5] != r[6]]
            else:
                stack.append(tuple(r))
        if history:
            self.stacks[item] = stack
            self.latest[item] = max(int(r[5]) for r in history)
        self.dirty.add(item)
        self.changes += 1

    def to_frame(self) -> pd.DataFrame:
        """The frame of :meth:`ReviewStore.current`: the last one with the changed items' rows
        replaced when few changed, else built anew."""
        if self.frame is not None and len(self.dirty) * 10 < max(len(self.stacks), 1):
            dirty = self.dirty
            kept = self.frame[~self.frame["item_id"].isin(dirty)]
            new = self._rows(i for i in dirty)
            df = pd.concat([kept, new], ignore_index=True) if len(new) else kept
        else:
            df = self._rows(self.stacks)
        self.dirty = set()
        return df.sort_values("decision_id", kind="stable").reset_index(drop=True)

    def _rows(self, items: Any) -> pd.DataFrame:
        out = [
            (*self.stacks[item][-1][:6], self.latest[item])
            for item in items
            if self.stacks.get(item)
        ]
        df = pd.DataFrame(out, columns=CURRENT_COLUMNS)
        df["decided_at"] = pd.to_datetime(df["decided_at"], utc=True)  # naive (SQLite) = UTC
        df["final_label"] = df["final_label"].astype(object).where(df["final_label"].notna(), None)
        return df


class _Upkeep:
    """The manifest and backup upkeep of one store, on a thread of its own: a committed decision is
    durable when ``record`` returns (the database's own commit), and counting it in the manifest
    (a file lock, a write and an fsync) or taking a backup need not delay the reviewer's next item.

    ``submit`` queues the ids of committed decisions; one thread writes them, every id queued since
    its last write in one manifest update, and ends when nothing is left (so an idle store holds no
    thread). Until it has written, the manifest counts fewer decisions than the database: the safe
    direction, since the check on open refuses only a database holding *fewer* than the manifest,
    and a writer opening the database raises the manifest to the database's figures. The manifest is
    replaced atomically, so a crash at any moment leaves the previous or the new one, both readable.
    The thread is not a daemon: a normal interpreter exit waits for the pending write."""

    def __init__(self, work: Callable[[list[int]], None]):
        self._work = work
        self._reset()
        _UPKEEPS.add(self)

    def _reset(self) -> None:
        """A fresh state; in a forked child too, which must neither count its parent's pending ids
        (the parent does: counting them twice would make the database look truncated) nor wait for
        a thread that was not forked with it."""
        self._cond = threading.Condition()
        self._pending: list[int] = []
        self._running = False

    def submit(self, ids: list[int]) -> None:
        with self._cond:
            self._pending.extend(ids)
            if self._running:
                return
            self._running = True
        try:
            threading.Thread(target=self._run, name="labelaudit-store-upkeep").start()
        except RuntimeError:  # the interpreter is shutting down: no new threads, write it here
            self._run()

    def _run(self) -> None:
        while True:
            with self._cond:
                batch, self._pending = self._pending, []
                if not batch:
                    self._running = False
                    self._cond.notify_all()
                    return
            try:
                self._work(batch)
            except BaseException:  # never leave flush() waiting on a thread that died
                with self._cond:
                    self._running = False
                    self._cond.notify_all()
                raise

    def flush(self, timeout: float | None = None) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: not self._running and not self._pending, timeout)


_UPKEEPS: weakref.WeakSet[_Upkeep] = weakref.WeakSet()


def _upkeep_after_fork() -> None:
    for upkeep in list(_UPKEEPS):
        upkeep._reset()


os.register_at_fork(after_in_child=_upkeep_after_fork)


class ReviewStore:
    """Append-only decision log and pinned findings, in any SQLAlchemy database.

    Thread-safe and shareable between Streamlit sessions (one engine with a connection pool); several
    processes may use the same database at once. ``clock`` stamps decisions and findings (default:
    the wall clock in UTC); a replay or a test passes its own (:meth:`with_clock`).

    Example::

        store = ReviewStore("sqlite:///review.sqlite")
        d = store.record(dataset_version=ds.content_hash, item_id="17", reviewer="ana", action="change",
                         old_label="card_arrival", new_label="card_delivery_estimate",
                         seen_decision_id=store.latest_decision_id(ds.content_hash, "17"))
        store.current(ds.content_hash)   # one row per decided item
    """

    _create_lock = threading.Lock()

    def __init__(
        self,
        url: str,
        *,
        clock: Clock = utc_now,
        read_only: bool = False,
        busy_timeout: float | None = None,
        manifest: str | os.PathLike | None = None,
        backup_every: int = BACKUP_EVERY,
        backups_kept: int = BACKUPS_KEPT,
    ):
        """Open the store at ``url`` (any SQLAlchemy URL).

        ``read_only``: for commands that only read (export, report): never takes the write lock,
        never creates tables or files; writing raises UsageError. ``busy_timeout``: seconds a write
        waits for another process's lock before :class:`~labelaudit.errors.StoreBusy` (default
        :data:`DEFAULT_BUSY_TIMEOUT` or ``LABELAUDIT_DB_BUSY_TIMEOUT``). ``manifest``: the file that
        counts the decisions saved (default: beside a SQLite file; see
        :mod:`labelaudit.review.store_health`). The database is checked on open (``PRAGMA
        quick_check`` for SQLite, and against the manifest) and a damaged, truncated or emptied one
        raises :class:`~labelaudit.errors.StoreCorrupt` naming the file, what was found, what was
        expected and how to restore it. A writer keeps rolling backups of a SQLite file: on open
        when it changed since the newest backup, every ``backup_every`` decisions, on close and
        before creating tables; the newest ``backups_kept`` are kept.
        """
        self.url = normalise_url(url)
        self.clock = clock
        #: The log of each dataset version folded per item, brought up to date on each read by
        #: the rows added since (:meth:`current`, :meth:`latest_decision_ids`).
        self._folds: dict[str, _Fold] = {}
        self._fold_lock = threading.Lock()
        self.read_only = read_only
        self.busy_timeout = _busy_timeout(busy_timeout)
        self.sqlite_file = health.sqlite_path(self.url)
        self.manifest_path = (
            Path(manifest) if manifest is not None else health.default_manifest_path(self.url)
        )
        self.backup_every = max(1, int(backup_every))
        self.backups_kept = max(1, int(backups_kept))
        self._since_backup = 0
        self._counter_lock = threading.Lock()
        self._upkeep = _Upkeep(self._upkeep_now)
        self.described = health.redacted(self.url)
        #: Tables of the schema a read-only store found missing (an older database): not read.
        self._absent: frozenset[str] = frozenset()
        manifest_now = None
        if self.sqlite_file is not None:
            manifest_now = health.check_sqlite_file(
                self.sqlite_file, self.manifest_path, self.described, self.busy_timeout
            )
        else:
            manifest_now = health.read_manifest(self.manifest_path)
        empty_file = self.sqlite_file is not None and (
            not self.sqlite_file.exists() or self.sqlite_file.stat().st_size == 0
        )
        if not read_only and self.sqlite_file is not None:
            _check_writable(self.sqlite_file, self.described)
        if read_only and empty_file:
            # Nothing saved yet (the check above passed): read an empty schema, create no file.
            self.engine = sa.create_engine(
                "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
            )
            _metadata.create_all(self.engine)
            return
        engine_url = self.url
        if read_only and self.sqlite_file is not None:
            target = health.read_only_target(self.sqlite_file)
            if target is not None:  # a read-only folder: read the file as it is
                engine_url = f"sqlite:///{target}&uri=true"
        self.engine = _make_engine(
            engine_url, read_only=read_only, busy_timeout=self.busy_timeout, what=self.described
        )
        missing = self._missing_tables()
        if missing and not read_only:
            self._create(missing)
        elif missing:
            self._absent = frozenset(t.name for t in missing)
        if not read_only and decisions_table not in missing:
            self._create_indexes()
        if len(missing) == len(_metadata.tables):  # read-only on a database without the schema
            last, count = 0, 0
        else:
            last, count = self._figures()
        health.check_counts(
            self.described, last, count, manifest_now, self.sqlite_file, self.manifest_path
        )
        if read_only:
            return
        self._install_manifest_hooks()
        if self.manifest_path is not None:
            self._safely(
                health.set_manifest,
                self.manifest_path,
                self.described,
                last,
                count,
                exact=False,
            )
        if self.sqlite_file is not None and count:
            self.backup(if_new=True)  # when it changed since the newest backup

    def _missing_tables(self) -> list[sa.Table]:
        """Tables of the schema the database lacks (read in a deferred transaction: no lock)."""
        with self._reading() as conn:
            names = set(sa.inspect(conn).get_table_names())
        return [t for t in _metadata.sorted_tables if t.name not in names]

    def _create(self, missing: list[sa.Table]) -> None:
        """Create only the missing tables, under the write lock; back up first when there is data."""
        if self.sqlite_file is not None and len(missing) < len(_metadata.tables):
            self.backup()  # before a migration
        with self._create_lock:
            try:
                _metadata.create_all(self.engine, tables=missing)
            except StoreBusy:
                raise
            except sa.exc.DBAPIError:
                # Another process created the tables between our check and our CREATE: they exist now.
                _metadata.create_all(self.engine, tables=missing)

    def _create_indexes(self) -> None:
        """Indexes of the schema an older database lacks (the tables exist): created once, by a
        writer; an index changes no row."""
        with self._reading() as conn:  # no write lock unless one is missing
            have = {ix["name"] for ix in sa.inspect(conn).get_indexes(decisions_table.name)}
        wanted = [ix for ix in decisions_table.indexes if ix.name not in have]
        if not wanted:
            return
        try:
            with self.engine.begin() as conn:
                for index in wanted:
                    index.create(conn, checkfirst=True)
        except StoreBusy:
            raise
        except sa.exc.DBAPIError:  # another process created it between the check and ours
            pass

    def _figures(self) -> tuple[int, int]:
        """(highest decision id, number of decisions) in the log."""
        c = decisions_table.c
        with self._reading() as conn:
            row = conn.execute(
                sa.select(sa.func.coalesce(sa.func.max(c.decision_id), 0), sa.func.count())
            ).one()
        return int(row[0]), int(row[1])

    def _safely(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Manifest and backup upkeep after a commit: a failure warns, never fails the decision
        (it is committed already)."""
        try:
            return fn(*args, **kwargs)
        except (OSError, sqlite3.Error, StoreCorrupt) as e:
            warnings.warn(
                f"review store upkeep ({getattr(fn, '__name__', fn)}) failed for "
                f"{self.described}: {type(e).__name__}: {e}",
                RuntimeWarning,
                stacklevel=3,
            )
            return None

    def _install_manifest_hooks(self) -> None:
        """Count every committed decision in the manifest, whichever module wrote it (the log, team
        reviews, imports): ids noted by :meth:`_append_in`, kept on commit, dropped on rollback,
        counted when the connection goes back to the pool (after its commit), if they exist."""

        @sa.event.listens_for(self.engine, "commit")
        def _on_commit(conn):  # type: ignore[no-untyped-def]
            ids = conn.info.pop(_NEW_IDS, None)
            if ids:
                conn.info.setdefault(_COMMITTED_IDS, []).extend(ids)

        @sa.event.listens_for(self.engine, "rollback")
        def _on_rollback(conn):  # type: ignore[no-untyped-def]
            conn.info.pop(_NEW_IDS, None)

        @sa.event.listens_for(self.engine.pool, "checkin")
        def _on_checkin(dbapi_conn, record):  # type: ignore[no-untyped-def]
            ids = record.info.pop(_COMMITTED_IDS, None) if record is not None else None
            record.info.pop(_NEW_IDS, None) if record is not None else None
            if ids and dbapi_conn is not None:
                self._after_commit(dbapi_conn, ids)

    def _after_commit(self, dbapi_conn: Any, ids: list[int]) -> None:
        """After a commit, on the writer's thread: which ids are in the log (one indexed read on
        the connection that wrote them); the manifest and the backup are handed to the upkeep
        thread (:class:`_Upkeep`), so the caller returns once the decision is committed."""
        present = self._safely(self._present, dbapi_conn, ids)
        if present:
            self._upkeep.submit(present)

    def _upkeep_now(self, present: list[int]) -> None:
        """Count ``present`` in the manifest (one write for every id given), then take a backup
        when one is due (run by the upkeep thread)."""
        if self.manifest_path is not None:
            self._safely(health.add_to_manifest, self.manifest_path, self.described, present)
        if self.sqlite_file is None:
            return
        with self._counter_lock:
            self._since_backup += len(present)
            due = self._since_backup >= self.backup_every
        if due:
            self.backup(if_new=True)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until the manifest counts, and the backups take, every decision committed so far
        through this store (they are written after the commit, off the caller's thread). True when
        done, False when ``timeout`` seconds passed first. :meth:`close` flushes."""
        return self._upkeep.flush(timeout)

    def _present(self, dbapi_conn: Any, ids: list[int]) -> list[int]:
        """Which of ``ids`` are in the log (committed), read on the raw connection, :data:`BATCH_ROWS`
        ids per statement."""
        mark = "%s" if self.sqlite_file is None else "?"
        found: list[int] = []
        cur = dbapi_conn.cursor()
        try:
            for start in range(0, len(ids), BATCH_ROWS):
                chunk = [int(i) for i in ids[start : start + BATCH_ROWS]]
                cur.execute(
                    "SELECT decision_id FROM review_decisions WHERE decision_id IN "
                    f"({','.join([mark] * len(chunk))})",
                    chunk,
                )
                found.extend(int(r[0]) for r in cur.fetchall())
        finally:
            cur.close()
            if self.sqlite_file is None:
                dbapi_conn.rollback()  # psycopg opened a transaction for the read
        return found

    def backup(self, *, if_new: bool = False) -> Path | None:
        """A backup of a SQLite store now (the online backup API); its path, None for other
        databases or a read-only store. Keeps the newest ``backups_kept``. With ``if_new`` (the
        rolling backups), none is taken when the newest backup already holds the newest decision:
        a due backup runs off the writer's thread and may hold decisions committed after it fell
        due, which the count then reports again (at close, or at the next due backup)."""
        if self.sqlite_file is None or self.read_only:
            return None
        with self._counter_lock:
            self._since_backup = 0
        path: Path | None = self._safely(
            health.backup_sqlite,
            self.sqlite_file,
            keep=self.backups_kept,
            timeout=self.busy_timeout,
            if_new=if_new,
        )
        return path

    def __repr__(self) -> str:
        return f"ReviewStore({self.engine.url.render_as_string(hide_password=True)!r})"

    def close(self) -> None:
        """Write the manifest for every committed decision (:meth:`flush`), back up a SQLite store
        that got decisions since its last backup, then release it."""
        if not self.read_only:
            self.flush()
        if self._since_backup and not self.read_only:
            self.backup(if_new=True)
        self.engine.dispose()

    def with_clock(self, clock: Clock) -> ReviewStore:
        """The same database (the same engine and pool) stamping with ``clock``, e.g. a replay's
        simulated times; close only the original.

        >>> times = iter([datetime(2026, 11, 2, 9, 0, tzinfo=UTC)])
        >>> replay = store.with_clock(lambda: next(times))     # doctest: +SKIP
        """
        other = copy.copy(self)
        other.clock = clock
        return other

    # ------------------------------------------------------------------ writing
    def record(
        self,
        *,
        dataset_version: str,
        item_id: str,
        reviewer: str,
        action: str,
        old_label: str,
        new_label: str | None,
        comment: str = "",
        shown: dict | None = None,
        seen_decision_id: int | None = None,
        identity: Identity | None = None,
        capacity: str = "single",
    ) -> Decision:
        """Append one decision and return it (with ``id`` and UTC ``decided_at``) once committed.

        ``action`` is one of :data:`ACTIONS`. ``new_label`` is required for accept/change, ignored for
        remove (stored as None) and defaults to ``old_label`` for keep/ambiguous. ``shown``: JSON-able
        dict of what the reviewer saw (scores, suggestion, queue source). ``seen_decision_id``: the
        item's latest decision id when it was shown (None when it had none); raises
        :class:`ConflictError` if the item has a newer one now, writing nothing.
        ``identity``: who decided and how they were identified (default: ``reviewer`` from a
        script); its name must be ``reviewer``. ``capacity``: one of :data:`CAPACITIES`. An item
        whose decision in force is an adjudication can be changed by a lead only
        (:class:`FinalDecisionError`, nothing written).
        """
        if action == "undo":
            return self.undo(
                dataset_version=dataset_version,
                item_id=item_id,
                reviewer=reviewer,
                seen_decision_id=seen_decision_id,
                comment=comment,
                identity=identity,
            )
        values = self._values(
            dataset_version=dataset_version,
            item_id=item_id,
            reviewer=reviewer,
            action=action,
            old_label=old_label,
            new_label=new_label,
            comment=comment,
            shown=shown,
            identity=identity,
            capacity=capacity,
        )
        return self._append(values, seen_decision_id)

    def undo(
        self,
        *,
        dataset_version: str,
        item_id: str,
        reviewer: str,
        seen_decision_id: int | None,
        comment: str = "",
        identity: Identity | None = None,
    ) -> Decision:
        """Append an ``undo`` that cancels the item's latest decision still in force; never deletes.

        The undo row's ``old_label`` is the label before the undo (None if the item was removed) and
        its ``new_label`` the label restored. Raises :class:`UsageError` when nothing is left to undo
        and :class:`ConflictError` as :meth:`record` does.
        """
        values = dict(
            dataset_version=dataset_version,
            item_id=str(item_id),
            reviewer=str(reviewer).strip(),
            action="undo",
            comment=comment or "",
        )
        values.update(_signature(values["reviewer"], identity, "single"))
        return self._append(values, seen_decision_id)

    def record_many(self, decisions: list[dict[str, Any]]) -> list[Decision]:
        """Append several decisions in one transaction: all of them, or none.

        Each dict holds the keyword arguments of :meth:`record` (``undo`` is not accepted). The same
        checks apply to each, in the order given, exactly as if :meth:`record` wrote them one after
        the other inside one transaction (a later request on an item sees the decision an earlier
        one wrote); if any raises (:class:`ConflictError` for an item decided since its
        ``seen_decision_id``, :class:`FinalDecisionError`, :class:`UsageError`, a database error),
        nothing at all is written. Used by imports of decisions made elsewhere (a Label Studio
        pull), which must not land half-way.

        The batch is written in bulk: the items' head rows are created and locked (in item order,
        so two batches never deadlock) and their histories read with one statement per
        :data:`BATCH_ROWS` items, then the decisions, identities and heads are written with one
        multi-row statement each, rather than six statements per decision. The manifest and the
        backup counter are updated once, after the commit.
        """
        prepared = [(self._values(**d), d.get("seen_decision_id")) for d in decisions]
        self._writable()
        if not prepared:
            return []
        with self.engine.begin() as conn:
            return self._append_many_in(conn, prepared)

    def _append_many_in(
        self, conn: Connection, prepared: list[tuple[dict[str, Any], int | None]]
    ) -> list[Decision]:
        """:meth:`_append_in` for each of ``prepared`` in order, in bulk (see :meth:`record_many`).

        The checks run in Python on the heads and histories read under the lock; rows wait in a
        segment that is written when the batch ends or when a request reaches an item the segment
        already holds (its check must see that decision's id, known only once it is inserted)."""
        keys = sorted({(v["dataset_version"], v["item_id"]) for v, _ in prepared})
        self._ensure_heads(conn, keys)
        heads = self._lock_heads(conn, keys)
        histories = self._histories(conn, [k for k in keys if heads.get(k)])
        known = {d.id: d for h in histories.values() for d in h}
        stacks = {k: effective_stack(h) for k, h in histories.items()}
        out: list[Decision] = []
        segment: list[tuple[tuple[str, str], dict[str, Any], dict[str, Any]]] = []
        in_segment: set[tuple[str, str]] = set()
        for values, seen in prepared:
            values = dict(values)
            signature = {k: values.pop(k) for k in _SIGNATURE_KEYS}
            key = (values["dataset_version"], values["item_id"])
            if key in in_segment:
                self._write_segment(conn, segment, heads, stacks, known, out)
                segment, in_segment = [], set()
            latest = heads[key]
            if latest != (seen or 0):  # the transaction rolls back
                raise ConflictError(known.get(latest) or self._get(conn, latest))
            if latest and signature["role"] != "lead":
                stack = stacks.get(key)
                if stack and stack[-1].final:
                    raise FinalDecisionError(stack[-1])
            values["decided_at"] = self.clock()
            segment.append((key, values, signature))
            in_segment.add(key)
        self._write_segment(conn, segment, heads, stacks, known, out)
        return out

    def _write_segment(
        self,
        conn: Connection,
        segment: list[tuple[tuple[str, str], dict[str, Any], dict[str, Any]]],
        heads: dict[tuple[str, str], int],
        stacks: dict[tuple[str, str], list[Decision]],
        known: dict[int, Decision],
        out: list[Decision],
    ) -> None:
        """Insert the segment's decisions (ids in request order), their identities, and move the
        heads; the decisions go to ``out`` and the in-memory state the next checks read."""
        if not segment:
            return
        rows = conn.execute(
            decisions_table.insert().returning(*decisions_table.c, sort_by_parameter_order=True),
            [values for _, values, _ in segment],
        ).all()
        ids = [int(r.decision_id) for r in rows]
        if len(ids) != len(segment):  # never expected: the driver must return one row per insert
            raise StoreError(f"inserted {len(segment)} decisions but got {len(ids)} ids back")
        conn.execute(
            decision_identities_table.insert(),
            [
                dict(decision_id=i, dataset_version=key[0], **signature)
                for i, (key, _, signature) in zip(ids, segment, strict=True)
            ],
        )
        h = heads_table.c
        conn.execute(
            heads_table.update()
            .where(
                (h.dataset_version == sa.bindparam("b_dv")) & (h.item_id == sa.bindparam("b_item"))
            )
            .values(latest_decision_id=sa.bindparam("b_id")),
            [
                dict(b_dv=key[0], b_item=key[1], b_id=i)
                for i, (key, _, _) in zip(ids, segment, strict=True)
            ],
        )
        conn.info.setdefault(_NEW_IDS, []).extend(ids)  # counted in the manifest on commit
        for row, (key, _, signature) in zip(rows, segment, strict=True):
            d = _row_to_decision(row, signature)
            heads[key] = d.id
            known[d.id] = d
            stacks.setdefault(key, []).append(d)
            out.append(d)

    def _ensure_heads(self, conn: Connection, keys: list[tuple[str, str]]) -> None:
        """:meth:`_ensure_head` for many ``(dataset_version, item_id)`` keys (sorted by the caller)."""
        if conn.dialect.name not in ("postgresql", "sqlite"):
            for dv, item in keys:
                self._ensure_head(conn, dv, item)
            return
        insert = _dialect_insert(conn)
        for start in range(0, len(keys), BATCH_ROWS):
            conn.execute(
                insert(heads_table).on_conflict_do_nothing(),
                [
                    dict(dataset_version=dv, item_id=item, latest_decision_id=0)
                    for dv, item in keys[start : start + BATCH_ROWS]
                ],
            )

    def _lock_heads(
        self, conn: Connection, keys: list[tuple[str, str]]
    ) -> dict[tuple[str, str], int]:
        """The latest decision id of each key, read with a row lock (PostgreSQL; SQLite holds the
        write lock already), in item order."""
        h = heads_table.c
        out: dict[tuple[str, str], int] = {}
        for dv, items in _by_version(keys):
            for start in range(0, len(items), BATCH_ROWS):
                chunk = items[start : start + BATCH_ROWS]
                rows = conn.execute(
                    sa.select(h.item_id, h.latest_decision_id)
                    .where((h.dataset_version == dv) & h.item_id.in_(chunk))
                    .order_by(h.item_id)
                    .with_for_update()
                ).all()
                out.update(((dv, r[0]), int(r[1])) for r in rows)
        return out

    def _histories(
        self, conn: Connection, keys: list[tuple[str, str]]
    ) -> dict[tuple[str, str], list[Decision]]:
        """Every decision (with its identity) of each key, oldest first."""
        c = decisions_table.c
        out: dict[tuple[str, str], list[Decision]] = {}
        for dv, items in _by_version(keys):
            for start in range(0, len(items), BATCH_ROWS):
                rows = conn.execute(
                    _with_identity(sa.select(decisions_table), self._absent)
                    .where(
                        (c.dataset_version == dv) & c.item_id.in_(items[start : start + BATCH_ROWS])
                    )
                    .order_by(c.decision_id)
                ).all()
                for r in rows:
                    d = _row_to_decision(r)
                    out.setdefault((dv, d.item_id), []).append(d)
        return out

    def undo_many(
        self,
        *,
        dataset_version: str,
        items: list[tuple[str, int]],
        reviewer: str,
        identity: Identity | None = None,
        comment: str = "",
    ) -> list[Decision]:
        """Undo several items' latest decisions in one transaction: all of them, or none.

        ``items``: (item id, the decision id the caller saw as its latest, i.e. the one to undo).
        The checks of :meth:`undo` apply to each (:class:`ConflictError` when an item was decided
        since, :class:`UsageError` when nothing is left to undo); any failure writes nothing. The
        undo of a grid decision on the Review page (one step for the whole selection).
        """
        self._writable()
        who = str(reviewer).strip()
        out: list[Decision] = []
        with self.engine.begin() as conn:
            for item_id, seen in items:
                values = dict(
                    dataset_version=dataset_version,
                    item_id=str(item_id),
                    reviewer=who,
                    action="undo",
                    comment=comment or "",
                )
                values.update(_signature(who, identity, "single"))
                out.append(self._append_in(conn, values, seen))
        return out

    def _values(
        self,
        *,
        dataset_version: str,
        item_id: str,
        reviewer: str,
        action: str,
        old_label: str,
        new_label: str | None,
        comment: str = "",
        shown: dict | None = None,
        seen_decision_id: int | None = None,
        identity: Identity | None = None,
        capacity: str = "single",
    ) -> dict[str, Any]:
        if action not in ACTIONS or action == "undo":
            raise UsageError(
                f"unknown review action {action!r}; expected one of {', '.join(ACTIONS[:-1])}"
            )
        if action in RELABEL_ACTIONS and not new_label:
            raise UsageError(f"action {action!r} needs the new label")
        if action == "remove":
            new_label = None
        elif action in ("keep", "ambiguous"):
            new_label = new_label or old_label
        if not reviewer or not str(reviewer).strip():
            raise UsageError("a decision needs the reviewer's name")
        return dict(
            dataset_version=dataset_version,
            item_id=str(item_id),
            reviewer=str(reviewer).strip(),
            action=action,
            old_label=old_label,
            new_label=new_label,
            comment=comment or "",
            shown=json.dumps(shown or {}, default=_json_default, sort_keys=True),
            undoes_id=None,
            **_signature(str(reviewer).strip(), identity, capacity),
        )

    def _writable(self) -> None:
        if self.read_only:
            raise UsageError(
                f"the review store {self.described} was opened read-only; open it with "
                "ReviewStore(url) to record decisions"
            )

    def _append(self, values: dict[str, Any], seen_decision_id: int | None) -> Decision:
        self._writable()
        with self.engine.begin() as conn:
            return self._append_in(conn, values, seen_decision_id)

    def append_in(
        self, conn: Connection, values: dict[str, Any], seen_decision_id: int | None
    ) -> Decision:
        """:meth:`record` inside the caller's transaction ``conn`` (``store.engine.begin()``), with
        ``values`` from :meth:`prepare`: for writes that must land together with other rows (a
        blind review and the consensus it completes, :mod:`labelaudit.review.team`)."""
        return self._append_in(conn, dict(values), seen_decision_id)

    def prepare(self, **kwargs: Any) -> dict[str, Any]:
        """The checked row :meth:`record` would write for ``kwargs`` (its keyword arguments, no
        undo); raises UsageError as it does. For :meth:`append_in`."""
        kwargs.pop("seen_decision_id", None)
        return self._values(**kwargs)

    def _append_in(
        self, conn: Connection, values: dict[str, Any], seen_decision_id: int | None
    ) -> Decision:
        signature = {k: values.pop(k) for k in _SIGNATURE_KEYS}
        dv, item = values["dataset_version"], values["item_id"]
        key = (heads_table.c.dataset_version == dv) & (heads_table.c.item_id == item)
        self._ensure_head(conn, dv, item)
        # Row lock on the head (PostgreSQL); SQLite already holds the database write lock (BEGIN IMMEDIATE).
        latest = conn.execute(
            sa.select(heads_table.c.latest_decision_id).where(key).with_for_update()
        ).scalar_one()
        if latest != (seen_decision_id or 0):
            raise ConflictError(self._get(conn, latest))  # the caller's transaction rolls back
        if latest and signature["role"] != "lead":
            head = self._get(conn, latest)
            in_force = head if head.action != "undo" else None
            if in_force is None:  # an undo on top: the decision in force is below it
                stack = effective_stack(self._history(conn, dv, item))
                in_force = stack[-1] if stack else None
            if in_force is not None and in_force.final:
                raise FinalDecisionError(in_force)
        if values["action"] == "undo":
            stack = effective_stack(self._history(conn, dv, item))
            if not stack:
                raise UsageError(f"item {item} has no decision to undo")
            cancelled = stack[-1]
            values.update(
                old_label=cancelled.new_label,
                new_label=cancelled.old_label,
                undoes_id=cancelled.id,
                shown=json.dumps({"undoes": cancelled.id}),
            )
        values["decided_at"] = self.clock()
        new_id = conn.execute(
            decisions_table.insert().values(**values).returning(decisions_table.c.decision_id)
        ).scalar_one()
        conn.execute(heads_table.update().where(key).values(latest_decision_id=new_id))
        conn.execute(
            decision_identities_table.insert().values(
                decision_id=new_id, dataset_version=dv, **signature
            )
        )
        conn.info.setdefault(_NEW_IDS, []).append(int(new_id))  # counted in the manifest on commit
        # The row just written, as _get would read it back (one SELECT less inside the write lock).
        return Decision(
            id=int(new_id),
            dataset_version=dv,
            item_id=item,
            reviewer=values["reviewer"],
            decided_at=_utc(values["decided_at"]),
            action=values["action"],
            old_label=values.get("old_label"),
            new_label=values.get("new_label"),
            comment=values.get("comment") or "",
            shown=json.loads(values.get("shown") or "{}"),
            undoes_id=values.get("undoes_id"),
            auth=signature["auth"],
            role=signature["role"],
            capacity=signature["capacity"],
        )

    def _ensure_head(self, conn: Connection, dv: str, item: str) -> None:
        if conn.dialect.name not in (
            "postgresql",
            "sqlite",
        ):  # other databases: insert if missing under the transaction's own isolation
            exists = conn.execute(
                sa.select(heads_table.c.item_id).where(
                    (heads_table.c.dataset_version == dv) & (heads_table.c.item_id == item)
                )
            ).first()
            if exists is None:
                conn.execute(
                    heads_table.insert().values(
                        dataset_version=dv, item_id=item, latest_decision_id=0
                    )
                )
            return
        conn.execute(
            _dialect_insert(conn)(heads_table)
            .values(dataset_version=dv, item_id=item, latest_decision_id=0)
            .on_conflict_do_nothing()
        )

    def add_finding(
        self,
        *,
        dataset_version: str,
        kind: str,
        target: str,
        note: str,
        author: str,
        identity: Identity | None = None,
    ) -> int:
        """Pin a finding for the ROI page and report; returns its id. ``kind`` in :data:`FINDING_KINDS`.

        ``identity``: who pins it and how they were identified, kept beside the finding as a
        decision's is (default: ``author`` from a script); its name must be ``author``.
        """
        self._writable()
        if kind not in FINDING_KINDS:
            raise UsageError(
                f"unknown finding kind {kind!r}; expected one of {', '.join(FINDING_KINDS)}"
            )
        signature = _signature(str(author).strip(), identity, "single")
        signature.pop("capacity")
        with self.engine.begin() as conn:
            finding_id = int(
                conn.execute(
                    findings_table.insert()
                    .values(
                        dataset_version=dataset_version,
                        kind=kind,
                        target=str(target),
                        note=note or "",
                        author=str(author).strip(),
                        created_at=self.clock(),
                    )
                    .returning(findings_table.c.finding_id)
                ).scalar_one()
            )
            conn.execute(
                finding_identities_table.insert().values(finding_id=finding_id, **signature)
            )
        return finding_id

    # ------------------------------------------------------------------ reading
    def _reading(self) -> Connection:
        """A connection for reads only: ``BEGIN DEFERRED`` on SQLite, never the write lock."""
        return self.engine.connect().execution_options(**{_READ_ONLY: True})

    def reading(self) -> Connection:
        """:meth:`_reading` for modules that query the store's tables themselves."""
        return self._reading()

    def _get(self, conn: Connection, decision_id: int) -> Decision:
        row = conn.execute(
            _with_identity(sa.select(decisions_table), self._absent).where(
                decisions_table.c.decision_id == decision_id
            )
        ).one()
        return _row_to_decision(row)

    def _history(self, conn: Connection, dv: str, item: str) -> list[Decision]:
        rows = conn.execute(
            _with_identity(sa.select(decisions_table), self._absent)
            .where((decisions_table.c.dataset_version == dv) & (decisions_table.c.item_id == item))
            .order_by(decisions_table.c.decision_id)
        ).all()
        return [_row_to_decision(r) for r in rows]

    def decision(self, decision_id: int) -> Decision:
        with self._reading() as conn:
            return self._get(conn, decision_id)

    def history(self, dataset_version: str, item_id: str) -> list[Decision]:
        """Every decision on one item, oldest first."""
        with self._reading() as conn:
            return self._history(conn, dataset_version, str(item_id))

    def latest_decision_id(self, dataset_version: str, item_id: str) -> int | None:
        """Id of the item's newest decision (undos included), None when it has none. Pass it back as
        ``seen_decision_id``."""
        with self._reading() as conn:
            v = conn.execute(
                sa.select(heads_table.c.latest_decision_id).where(
                    (heads_table.c.dataset_version == dataset_version)
                    & (heads_table.c.item_id == str(item_id))
                )
            ).scalar()
        return int(v) if v else None

    def latest_decision_ids(self, dataset_version: str) -> dict[str, int]:
        """``{item_id: latest decision id}`` for every item with a decision (undos included: the
        id of the item's newest row). From the folded log (see :meth:`current`): a call reads only
        the decisions logged since the previous one."""
        with self._fold_lock:
            fold = self._folded(dataset_version)
            return dict(fold.latest)

    def log(self, dataset_version: str | None = None) -> pd.DataFrame:
        """The decision log, oldest first: columns :data:`LOG_COLUMNS` (``shown`` as a JSON string,
        ``decided_at`` UTC) then :data:`IDENTITY_COLUMNS` (who decided, how they were identified,
        in what capacity; None for decisions logged before identities were kept)."""
        q = _with_identity(
            sa.select(*[decisions_table.c[c] for c in LOG_COLUMNS]), self._absent
        ).order_by(decisions_table.c.decision_id)
        if dataset_version is not None:
            q = q.where(decisions_table.c.dataset_version == dataset_version)
        with self._reading() as conn:
            rows = conn.execute(q).all()
        df = pd.DataFrame([tuple(r) for r in rows], columns=LOG_COLUMNS + IDENTITY_COLUMNS)
        df["decided_at"] = pd.to_datetime(df["decided_at"], utc=True)  # naive (SQLite) = UTC
        df["comment"] = df["comment"].fillna("")
        return df

    def current(self, dataset_version: str) -> pd.DataFrame:
        """One row per item with a decision in force: columns :data:`CURRENT_COLUMNS`.

        ``action`` is the effective action after undos; ``final_label`` the label now (None when
        removed); ``reviewer``, ``decided_at`` and ``decision_id`` are those of that effective
        decision; ``latest_decision_id`` is the newest row for the item (an undo, perhaps). Items
        whose decisions were all undone are absent (undecided again).

        The store keeps each version's log folded per item and brings it up to date on each call
        by reading only the rows added since (:class:`_Fold`), so a rerun does not read the whole
        table again; the frame is rebuilt only when something changed. The result is a copy.
        """
        with self._fold_lock:
            fold = self._folded(dataset_version)
            if fold.frame is None or fold.frame_changes != fold.changes:
                fold.frame = fold.to_frame()
                fold.frame_changes = fold.changes
            return fold.frame.copy()

    def _folded(self, dataset_version: str) -> _Fold:
        """The folded log of ``dataset_version``, brought up to date (hold ``_fold_lock``).

        One read snapshot (SQLite: one deferred transaction; PostgreSQL: REPEATABLE READ) gives the
        rows above the fold's cursor and the version's row count. The log is append-only, so when
        the fold's rows plus the new ones make that count, nothing is missing. When they do not, a
        transaction with a lower id committed after a higher one was folded (PostgreSQL hands out
        ids before commit): the ids at or below the cursor that the fold lacks are found, and only
        their items are folded again from their own history.
        """
        fold = self._folds.get(dataset_version)
        if fold is None:
            fold = self._folds[dataset_version] = _Fold()
        c = decisions_table.c
        conn = self._reading()
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn:
            rows = conn.execute(
                sa.select(*_FOLD_COLUMNS)
                .where((c.dataset_version == dataset_version) & (c.decision_id > fold.cursor))
                .order_by(c.decision_id)
            ).all()
            total = int(
                conn.execute(
                    sa.select(sa.func.count()).where(c.dataset_version == dataset_version)
                ).scalar_one()
            )
            fold.refreshes += 1
            fold.add(rows)
            if fold.count != total:
                self._repair(conn, dataset_version, fold)
        return fold

    def _repair(self, conn: Connection, dataset_version: str, fold: _Fold) -> None:
        """Fold the rows at or below the cursor that ``fold`` lacks (committed late), item by item."""
        c = decisions_table.c
        ids = {
            int(r[0])
            for r in conn.execute(
                sa.select(c.decision_id).where(
                    (c.dataset_version == dataset_version) & (c.decision_id <= fold.cursor)
                )
            ).all()
        }
        missing = sorted(ids - fold.ids)
        items: set[str] = set()
        for start in range(0, len(missing), BATCH_ROWS):
            items.update(
                r[0]
                for r in conn.execute(
                    sa.select(c.item_id).where(
                        c.decision_id.in_(missing[start : start + BATCH_ROWS])
                    )
                ).all()
            )
        histories: dict[str, list[Any]] = {i: [] for i in items}
        ordered = sorted(items)
        for start in range(0, len(ordered), BATCH_ROWS):
            for r in conn.execute(
                sa.select(*_FOLD_COLUMNS)
                .where(
                    (c.dataset_version == dataset_version)
                    & c.item_id.in_(ordered[start : start + BATCH_ROWS])
                    & (c.decision_id <= fold.cursor)
                )
                .order_by(c.decision_id)
            ).all():
                histories[r[0]].append(r)
        for item, history in histories.items():
            fold.refold(item, history)
        fold.repairs += 1

    def touched_since(self, dataset_version: str, after_id: int) -> tuple[int, list[str]]:
        """``(newest decision id, ids of the items with a decision above after_id)``: what a live
        queue must look at again (:class:`labelaudit.review.live.LiveQueue`); reads only the new
        rows (the primary key is the log order). On PostgreSQL a transaction may commit after one
        with a higher id, so a caller that must not miss a row checks it again (the live queue
        checks each item before showing it and re-reads everything now and then).

        >>> store.touched_since(h, 0)        # doctest: +SKIP
        (3, ['17', '4'])
        """
        c = decisions_table.c
        with self._reading() as conn:
            rows = conn.execute(
                sa.select(c.decision_id, c.item_id)
                .where((c.decision_id > after_id) & (c.dataset_version == dataset_version))
                .order_by(c.decision_id)
            ).all()
        newest = int(rows[-1][0]) if rows else after_id
        return newest, list(dict.fromkeys(r[1] for r in rows))

    def newest_decision_id(self) -> int:
        """The highest decision id in the log (any dataset version), 0 when empty."""
        c = decisions_table.c
        with self._reading() as conn:
            return int(conn.execute(sa.select(sa.func.max(c.decision_id))).scalar() or 0)

    def in_force(self, dataset_version: str, item_ids: list[str]) -> dict[str, Decision]:
        """The decision in force of each of ``item_ids`` that has one (after undos): one indexed
        read per 500 items, never the whole log."""
        c = decisions_table.c
        out: dict[str, Decision] = {}
        ids = list(dict.fromkeys(str(i) for i in item_ids))
        with self._reading() as conn:
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                rows = conn.execute(
                    _with_identity(sa.select(decisions_table), self._absent)
                    .where((c.dataset_version == dataset_version) & c.item_id.in_(chunk))
                    .order_by(c.decision_id)
                ).all()
                histories: dict[str, list[Decision]] = {}
                for r in rows:
                    d = _row_to_decision(r)
                    histories.setdefault(d.item_id, []).append(d)
                for item, history in histories.items():
                    stack = effective_stack(history)
                    if stack:
                        out[item] = stack[-1]
        return out

    def findings(self, dataset_version: str) -> pd.DataFrame:
        """Pinned findings, oldest first: columns :data:`FINDING_COLUMNS` then
        :data:`FINDING_IDENTITY_COLUMNS` (how the author was identified)."""
        q = sa.select(*[findings_table.c[c] for c in FINDING_COLUMNS])
        if finding_identities_table.name in self._absent:  # read-only, older database
            q = q.add_columns(sa.null(), sa.null())
        else:
            fi = finding_identities_table.c
            q = q.add_columns(fi.auth, fi.subject).outerjoin_from(
                findings_table,
                finding_identities_table,
                fi.finding_id == findings_table.c.finding_id,
            )
        with self._reading() as conn:
            rows = conn.execute(
                q.where(findings_table.c.dataset_version == dataset_version).order_by(
                    findings_table.c.finding_id
                )
            ).all()
        df = pd.DataFrame(
            [tuple(r) for r in rows], columns=FINDING_COLUMNS + FINDING_IDENTITY_COLUMNS
        )
        for col in FINDING_IDENTITY_COLUMNS:  # None (not NaN) for findings from before
            df[col] = df[col].astype(object).where(df[col].notna(), None)
        df["created_at"] = pd.to_datetime(df["created_at"], utc=True)
        return df


_SIGNATURE_KEYS = ("auth", "subject", "role", "capacity")


def _signature(reviewer: str, identity: Identity | None, capacity: str) -> dict[str, Any]:
    """The identity row of a decision (popped off the values before the log insert)."""
    if capacity not in CAPACITIES:
        raise UsageError(f"unknown capacity {capacity!r}; expected one of {', '.join(CAPACITIES)}")
    if identity is None:
        identity = Identity(reviewer, auth="script", role="reviewer")
    elif identity.name != reviewer:
        raise UsageError(
            f"the decision names reviewer {reviewer!r} but the identity is {identity.name!r}"
        )
    return {
        "auth": identity.auth,
        "subject": identity.subject,
        "role": identity.role,
        "capacity": capacity,
    }


def _dialect_insert(conn: Connection) -> Any:
    """The INSERT construct with ON CONFLICT of the connection's dialect (PostgreSQL or SQLite)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    return insert


def _by_version(keys: list[tuple[str, str]]) -> list[tuple[str, list[str]]]:
    """``(dataset_version, item_id)`` keys grouped by version, items in the keys' order."""
    groups: dict[str, list[str]] = {}
    for dv, item in keys:
        groups.setdefault(dv, []).append(item)
    return list(groups.items())


def _with_identity(query: sa.Select, absent: frozenset[str] = frozenset()) -> sa.Select:
    """``query`` on the log with the identity columns of each decision (outer join: old rows).
    ``absent``: tables a read-only store found missing; without the identity table (a database from
    before it, opened read-only) the columns are NULL, as for old rows."""
    if decision_identities_table.name in absent:
        return query.add_columns(*[sa.null().label(c) for c in IDENTITY_COLUMNS])
    ident = decision_identities_table.c
    return query.add_columns(ident.auth, ident.subject, ident.role, ident.capacity).outerjoin_from(
        decisions_table,
        decision_identities_table,
        ident.decision_id == decisions_table.c.decision_id,
    )


def _json_default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.bool_):
        return bool(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)
