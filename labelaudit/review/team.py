"""Review as a team: assignments, blind double review, agreement between reviewers, adjudication.

A lead splits a queue (the ranking, a cluster, a selection) across named reviewers
(:func:`create_assignment`). A chosen share of the items, drawn at random, goes to two reviewers
(*overlap*); every other item to exactly one. Each reviewer works through their own items in the
queue's order.

- **Single items** are decided into the log as any decision is (:meth:`ReviewStore.record`).
- **Overlap items** are reviewed blind (:func:`record_blind`): each review goes into its own log
  (``review_blind_decisions``, append-only, one head per item and slot, the same conflict rules)
  and neither reviewer sees the other's. When the second review lands, in the same transaction: if
  both say the same (:func:`rating`) the agreed decision enters the log as a ``consensus``; if not,
  the item waits in the lead's adjudication queue (:func:`adjudication_queue`), and the lead's
  decision (:func:`adjudicate`) is recorded as ``adjudication``: final, only a lead can change it.
- **Agreement** on the overlap items (:func:`team_agreement`) uses the agreement module's own
  statistics (Cohen's kappa per pair of reviewers, raw agreement, agreement per class).

Invariants: an item is held by at most one slot-0 row among the open assignments of a dataset
version, so two reviewers never receive the same non-overlap item (checked under a lock when an
assignment is created); an overlap item's two slots belong to two different reviewers; a blind
review can be written only by the reviewer holding the slot.

Example::

    a = create_assignment(store, dataset_version=h, item_ids=queue[:3000], reviewers=names,
                          overlap_share=0.1, lead=lead)
    book = assignment_book(store, h)
    book.queue_for("ana")[:3]             # ana's items, in the queue's order
    team_agreement(store, h).pairs        # Cohen's kappa per pair of reviewers
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from labelaudit.errors import UsageError
from labelaudit.review.identity import Identity, clean_name, name_key, require_lead, same_name
from labelaudit.review.store import (
    RELABEL_ACTIONS,
    ConflictError,
    Decision,
    FinalDecisionError,
    ReviewStore,
    _utc,
    assignment_events_table,
    assignment_items_table,
    assignments_table,
    blind_decisions_table,
    blind_heads_table,
    blind_identities_table,
    effective_stack,
    heads_table,
)

#: What a review "says", for agreement: the label it leaves, or one of these two.
REMOVED, AMBIGUOUS = "(removed)", "(ambiguous)"
#: Largest share of items reviewed twice.
MAX_OVERLAP = 1.0


def rating(action: str, new_label: str | None) -> str:
    """What a decision says about the item, for agreement: the label it leaves (accept, change,
    keep), ``(ambiguous)`` or ``(removed)``. Accepting a suggestion equal to the given label says
    the same as keeping it.

    >>> rating("accept", "refund"), rating("keep", "card"), rating("remove", None)
    ('refund', 'card', '(removed)')
    """
    if action == "remove":
        return REMOVED
    if action == "ambiguous":
        return AMBIGUOUS
    return str(new_label)


# --------------------------------------------------------------------------- assignments
@dataclass(frozen=True)
class AssignedSlot:
    """One reviewer's hold on one item: ``slot`` 0, or 1 for the second review of an overlap item."""

    assignment_id: int
    item_id: str
    slot: int
    reviewer: str
    position: int
    overlap: bool


@dataclass(frozen=True)
class Assignment:
    """What :func:`create_assignment` stored: the split per reviewer and the items left out because
    an open assignment already holds them."""

    assignment_id: int
    name: str
    n_items: int
    n_overlap: int
    per_reviewer: dict[str, int]
    excluded: int

    def summary(self) -> str:
        per = ", ".join(f"{r} {n:,}" for r, n in self.per_reviewer.items())
        out = f"assignment {self.assignment_id} '{self.name}': {self.n_items:,} items ({per})"
        if self.n_overlap:
            out += f", {self.n_overlap:,} reviewed twice"
        if self.excluded:
            out += f"; {self.excluded:,} left out (already assigned)"
        return out


def _split(n: int, overlap_idx: np.ndarray, reviewers: list[str]) -> list[list[int]]:
    """Reviewer indices per item: one for single items, two (different) for overlap items.

    Least-loaded first, so loads differ by at most one review; the pair for an overlap item is the
    one that shares the fewest overlap items so far, so every pair gets about the same number for
    its kappa.
    """
    r = len(reviewers)
    loads = [0] * r
    heap = [(0, j) for j in range(r)]
    pair_count = np.zeros((r, r), dtype=np.int64)
    is_overlap = np.zeros(n, dtype=bool)
    is_overlap[overlap_idx] = True
    out: list[list[int]] = []
    for i in range(n):
        if is_overlap[i]:
            best: tuple[int, int, int, int] | None = None
            for a in range(r):
                for b in range(a + 1, r):
                    key = (int(pair_count[a, b]), max(loads[a], loads[b]), loads[a] + loads[b], a)
                    if best is None or key < best:
                        best = (*key[:3], a * r + b)
            assert best is not None
            a, b = divmod(best[3], r)
            if loads[b] < loads[a]:  # the less loaded one takes slot 0 (alternates who goes first)
                a, b = b, a
            pair_count[min(a, b), max(a, b)] += 1
            loads[a] += 1
            loads[b] += 1
            out.append([a, b])
            heap = [(loads[j], j) for j in range(r)]
            heapq.heapify(heap)
        else:
            while True:
                load, j = heapq.heappop(heap)
                if load == loads[j]:
                    break
            loads[j] += 1
            heapq.heappush(heap, (loads[j], j))
            out.append([j])
    return out


def _lock_assignments(conn: Connection) -> None:
    """Serialise assignment changes: SQLite holds the database write lock already (BEGIN
    IMMEDIATE); PostgreSQL takes a table lock that conflicts with itself but not with readers."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("LOCK TABLE review_assignment_items IN SHARE ROW EXCLUSIVE MODE")


def _open_assignment_ids(conn: Connection, dataset_version: str) -> list[int]:
    a, e = assignments_table.c, assignment_events_table.c
    closed = sa.select(e.assignment_id).where(
        (e.dataset_version == dataset_version) & (e.kind == "closed")
    )
    return [
        int(r[0])
        for r in conn.execute(
            sa.select(a.assignment_id)
            .where((a.dataset_version == dataset_version) & a.assignment_id.not_in(closed))
            .order_by(a.assignment_id)
        ).all()
    ]


def create_assignment(
    store: ReviewStore,
    *,
    dataset_version: str,
    item_ids: Sequence[str],
    reviewers: Sequence[str],
    overlap_share: float,
    lead: Identity,
    name: str = "",
    source: str = "",
    seed: int = 0,
) -> Assignment:
    """Split ``item_ids`` (in review order) across ``reviewers``; a lead only.

    ``overlap_share`` in [0, 1]: the share of items (drawn at random with ``seed``) that two
    different reviewers review blind; needs two reviewers or more when above 0. Items already held
    by an open assignment of ``dataset_version`` are left out (:attr:`Assignment.excluded`), under
    a lock, so that no two open assignments hold the same item. Raises UsageError for a non-lead,
    an empty list, repeated reviewer names or a share out of range; nothing is written then.

    >>> a = create_assignment(store, dataset_version=h, item_ids=["1", "2", "3", "4"],
    ...                       reviewers=["ana", "bo"], overlap_share=0.5, lead=lead)  # doctest: +SKIP
    >>> a.per_reviewer                                                              # doctest: +SKIP
    {'ana': 3, 'bo': 3}
    """
    require_lead(lead, "create assignments")
    names = [clean_name(r) for r in reviewers]
    if not names:
        raise UsageError("an assignment needs at least one reviewer")
    keys = [name_key(n) for n in names]
    if len(set(keys)) != len(keys):
        dup = sorted({n for n in names if keys.count(name_key(n)) > 1})
        raise UsageError(
            f"reviewer names repeat: {', '.join(dup)} (names are compared without case); give "
            "each reviewer once"
        )
    share = float(overlap_share)
    if not 0.0 <= share <= MAX_OVERLAP:
        raise UsageError(f"overlap share {overlap_share!r} is outside [0, 1]")
    if share > 0 and len(names) < 2:
        raise UsageError("an overlap needs at least two reviewers (each item goes to two of them)")
    wanted = list(dict.fromkeys(str(i) for i in item_ids))
    if not wanted:
        raise UsageError("an assignment needs at least one item")
    c = assignment_items_table.c
    now = store.clock()
    with store.engine.begin() as conn:
        _lock_assignments(conn)
        open_ids = _open_assignment_ids(conn, dataset_version)
        taken: set[str] = set()
        if open_ids:
            taken = {
                r[0]
                for r in conn.execute(
                    sa.select(c.item_id)
                    .where((c.dataset_version == dataset_version) & c.assignment_id.in_(open_ids))
                    .distinct()
                ).all()
            }
        items = [i for i in wanted if i not in taken]
        if not items:
            raise UsageError(
                f"all {len(wanted):,} items are held by open assignments already; close one first"
            )
        n = len(items)
        n_overlap = int(round(share * n)) if len(names) > 1 else 0
        rng = np.random.default_rng(seed)
        overlap_idx = np.sort(rng.choice(n, size=n_overlap, replace=False)).astype(np.int64)
        split = _split(n, overlap_idx, names)
        assignment_id = int(
            conn.execute(
                assignments_table.insert()
                .values(
                    dataset_version=dataset_version,
                    name=name.strip() or f"{n:,} items for {len(names)} reviewers",
                    source=source or "",
                    reviewers=json.dumps(names),
                    overlap_share=share,
                    seed=int(seed),
                    n_items=n,
                    n_overlap=n_overlap,
                    created_by=lead.name,
                    created_at=now,
                )
                .returning(assignments_table.c.assignment_id)
            ).scalar_one()
        )
        rows = [
            {
                "assignment_id": assignment_id,
                "item_id": item,
                "slot": slot,
                "dataset_version": dataset_version,
                "reviewer": names[j],
                "position": pos,
                "overlap": len(who) > 1,
            }
            for pos, (item, who) in enumerate(zip(items, split, strict=True))
            for slot, j in enumerate(who)
        ]
        for start in range(0, len(rows), 5000):
            conn.execute(assignment_items_table.insert(), rows[start : start + 5000])
        stored_name = conn.execute(
            sa.select(assignments_table.c.name).where(
                assignments_table.c.assignment_id == assignment_id
            )
        ).scalar_one()
    per = {r: 0 for r in names}
    for who in split:
        for j in who:
            per[names[j]] += 1
    return Assignment(assignment_id, stored_name, n, n_overlap, per, len(wanted) - n)


def close_assignment(
    store: ReviewStore, *, dataset_version: str, assignment_id: int, lead: Identity
) -> None:
    """Close an assignment (a lead only): its undecided items return to the common queue; the
    decisions and blind reviews already made stay."""
    require_lead(lead, "close assignments")
    with store.engine.begin() as conn:
        _lock_assignments(conn)
        if int(assignment_id) not in _open_assignment_ids(conn, dataset_version):
            raise UsageError(f"assignment {assignment_id} is not open for this dataset")
        conn.execute(
            assignment_events_table.insert().values(
                assignment_id=int(assignment_id),
                dataset_version=dataset_version,
                kind="closed",
                detail="{}",
                by=lead.name,
                at=store.clock(),
            )
        )


def move_open_items(
    store: ReviewStore,
    *,
    dataset_version: str,
    assignment_id: int,
    from_reviewer: str,
    to_reviewer: str,
    lead: Identity,
) -> tuple[int, int]:
    """Give ``from_reviewer``'s undecided items of an open assignment to ``to_reviewer`` (a lead
    only); returns ``(moved, kept)``: overlap items whose other review ``to_reviewer`` already
    holds stay where they are (one person never reviews an item twice)."""
    require_lead(lead, "change the queue for others")
    src, dst = clean_name(from_reviewer), clean_name(to_reviewer)
    if same_name(src, dst):
        raise UsageError("moving items needs two different reviewers")
    c = assignment_items_table.c
    with store.engine.begin() as conn:
        _lock_assignments(conn)
        if int(assignment_id) not in _open_assignment_ids(conn, dataset_version):
            raise UsageError(f"assignment {assignment_id} is not open for this dataset")
        # Names compare by name_key, in Python: SQLite's lower() folds ASCII only.
        held = conn.execute(
            sa.select(c.item_id, c.slot, c.overlap, c.reviewer).where(
                c.assignment_id == int(assignment_id)
            )
        ).all()
        rows = [(r[0], r[1], r[2]) for r in held if same_name(r[3], src)]
        if not rows:
            raise UsageError(f"{src} holds no item of assignment {assignment_id}")
        items = [r[0] for r in rows]
        done_main = _main_in_force(conn, dataset_version, items)
        blind = _blind_in_force(conn, dataset_version, items)
        dst_holds = {r[0] for r in held if same_name(r[3], dst)}
        moved = kept = 0
        for item, slot, overlap in rows:
            if item in done_main or (overlap and (item, slot) in blind):
                continue
            if item in dst_holds:
                kept += 1
                continue
            conn.execute(
                assignment_items_table.update()
                .where(
                    (c.assignment_id == int(assignment_id)) & (c.item_id == item) & (c.slot == slot)
                )
                .values(reviewer=dst)
            )
            moved += 1
        conn.execute(
            assignment_events_table.insert().values(
                assignment_id=int(assignment_id),
                dataset_version=dataset_version,
                kind="moved",
                detail=json.dumps({"from": src, "to": dst, "moved": moved, "kept": kept}),
                by=lead.name,
                at=store.clock(),
            )
        )
    return moved, kept


@dataclass(frozen=True)
class AssignmentBook:
    """The open assignments of a dataset version, as read at ``version``: who holds which item.

    ``slots``: one row per slot (columns assignment_id, item_id, slot, reviewer, position,
    overlap), ordered by assignment then position; ``assignments``: one row per open assignment.
    """

    dataset_version: str
    version: tuple[int, int, int]
    slots: pd.DataFrame
    assignments: pd.DataFrame

    @property
    def empty(self) -> bool:
        return self.slots.empty

    @cached_property
    def _by_item(self) -> dict[str, list[AssignedSlot]]:
        out: dict[str, list[AssignedSlot]] = {}
        for r in self.slots.itertuples(index=False):
            out.setdefault(r.item_id, []).append(
                AssignedSlot(
                    int(r.assignment_id),
                    r.item_id,
                    int(r.slot),
                    r.reviewer,
                    int(r.position),
                    bool(r.overlap),
                )
            )
        return out

    # Reviewers are matched by labelaudit.review.identity.name_key ("Ana" holds what "ana " was
    # given); names are shown as they were typed when the assignment was made.
    @cached_property
    def _keys(self) -> pd.Series:
        return self.slots["reviewer"].map(name_key)

    def slot_of(self, item_id: str, reviewer: str) -> AssignedSlot | None:
        """``reviewer``'s slot on ``item_id``, None when they hold none."""
        key = name_key(reviewer)
        return next(
            (s for s in self._by_item.get(item_id, ()) if name_key(s.reviewer) == key), None
        )

    def holders(self, item_id: str) -> list[str]:
        return [s.reviewer for s in self._by_item.get(item_id, ())]

    def reviewers(self) -> list[str]:
        """Every reviewer holding a slot, in the order of first appearance (one spelling each: the
        first one used)."""
        first: dict[str, str] = {}
        for name in self.slots["reviewer"].tolist():
            first.setdefault(name_key(name), name)
        return list(first.values())

    def slots_of(self, reviewer: str) -> pd.DataFrame:
        """``reviewer``'s rows of :attr:`slots` (oldest assignment first, in its queue's order)."""
        return self.slots[self._keys == name_key(reviewer)]

    def queue_for(self, reviewer: str) -> list[str]:
        """``reviewer``'s items, oldest assignment first, each in its queue's order."""
        return self.slots_of(reviewer)["item_id"].tolist()

    def hidden_from(self, reviewer: str) -> frozenset[str]:
        """Items other reviewers hold and ``reviewer`` does not: never in ``reviewer``'s queue."""
        others = set(self.slots.loc[self._keys != name_key(reviewer), "item_id"])
        return frozenset(others - set(self.queue_for(reviewer)))


def assignments_version(store: ReviewStore, dataset_version: str) -> tuple[int, int, int]:
    """A token that changes whenever an assignment is created, closed or changed (cache key)."""
    a, e = assignments_table.c, assignment_events_table.c
    with store._reading() as conn:
        n_a = conn.execute(
            sa.select(sa.func.coalesce(sa.func.max(a.assignment_id), 0)).where(
                a.dataset_version == dataset_version
            )
        ).scalar_one()
        n_e = conn.execute(
            sa.select(sa.func.coalesce(sa.func.max(e.event_id), 0)).where(
                e.dataset_version == dataset_version
            )
        ).scalar_one()
        count = conn.execute(
            sa.select(sa.func.count()).where(a.dataset_version == dataset_version)
        ).scalar_one()
    return int(n_a), int(n_e), int(count)


def assignment_book(store: ReviewStore, dataset_version: str) -> AssignmentBook:
    """Read the open assignments of ``dataset_version`` (:class:`AssignmentBook`)."""
    version = assignments_version(store, dataset_version)
    c, a = assignment_items_table.c, assignments_table.c
    with store._reading() as conn:
        open_ids = _open_assignment_ids(conn, dataset_version)
        rows = (
            conn.execute(
                sa.select(c.assignment_id, c.item_id, c.slot, c.reviewer, c.position, c.overlap)
                .where(c.assignment_id.in_(open_ids))
                .order_by(c.assignment_id, c.position, c.slot)
            ).all()
            if open_ids
            else []
        )
        meta = (
            conn.execute(
                sa.select(
                    a.assignment_id,
                    a.name,
                    a.source,
                    a.reviewers,
                    a.overlap_share,
                    a.n_items,
                    a.n_overlap,
                    a.created_by,
                    a.created_at,
                )
                .where(a.assignment_id.in_(open_ids))
                .order_by(a.assignment_id)
            ).all()
            if open_ids
            else []
        )
    slots = pd.DataFrame(
        [tuple(r) for r in rows],
        columns=["assignment_id", "item_id", "slot", "reviewer", "position", "overlap"],
    )
    assignments = pd.DataFrame(
        [tuple(r) for r in meta],
        columns=[
            "assignment_id",
            "name",
            "source",
            "reviewers",
            "overlap_share",
            "n_items",
            "n_overlap",
            "created_by",
            "created_at",
        ],
    )
    assignments["reviewers"] = assignments["reviewers"].map(json.loads)
    assignments["created_at"] = pd.to_datetime(assignments["created_at"], utc=True)
    return AssignmentBook(dataset_version, version, slots, assignments)


# --------------------------------------------------------------------------- blind reviews
@dataclass(frozen=True)
class BlindOutcome:
    """What :func:`record_blind` did: the blind review (as a :class:`Decision` whose id is the
    blind id), and, when it completed a pair, ``status`` "agreed" (with the ``consensus`` decision
    now in the log) or "disagreed" (waiting for the lead); "waiting" while the other review is out."""

    review: Decision
    status: str
    consensus: Decision | None = None


def _blind_to_decision(row: Any) -> Decision:
    m = row._mapping
    return Decision(
        id=int(m["blind_id"]),
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
        auth=m["auth"],
        role=m["role"],
        capacity="blind",
    )


def _blind_history(conn: Connection, dv: str, item: str, slot: int) -> list[Decision]:
    b = blind_decisions_table.c
    rows = conn.execute(
        sa.select(blind_decisions_table)
        .where((b.dataset_version == dv) & (b.item_id == item) & (b.slot == slot))
        .order_by(b.blind_id)
    ).all()
    return [_blind_to_decision(r) for r in rows]


def _blind_in_force(
    conn: Connection, dv: str, items: Sequence[str]
) -> dict[tuple[str, int], Decision]:
    """(item, slot) -> its blind review in force, for ``items``."""
    b = blind_decisions_table.c
    out: dict[tuple[str, int], Decision] = {}
    ids = list(dict.fromkeys(items))
    for start in range(0, len(ids), 500):
        rows = conn.execute(
            sa.select(blind_decisions_table)
            .where((b.dataset_version == dv) & b.item_id.in_(ids[start : start + 500]))
            .order_by(b.blind_id)
        ).all()
        per: dict[tuple[str, int], list[Decision]] = {}
        for r in rows:
            per.setdefault((r._mapping["item_id"], int(r._mapping["slot"])), []).append(
                _blind_to_decision(r)
            )
        for key, history in per.items():
            stack = effective_stack(history)
            if stack:
                out[key] = stack[-1]
    return out


def _main_in_force(conn: Connection, dv: str, items: Sequence[str]) -> dict[str, Decision]:
    """item -> its decision in force in the log, for ``items`` (inside ``conn``)."""
    from labelaudit.review.store import _row_to_decision, _with_identity, decisions_table

    c = decisions_table.c
    out: dict[str, Decision] = {}
    ids = list(dict.fromkeys(items))
    for start in range(0, len(ids), 500):
        rows = conn.execute(
            _with_identity(sa.select(decisions_table))
            .where((c.dataset_version == dv) & c.item_id.in_(ids[start : start + 500]))
            .order_by(c.decision_id)
        ).all()
        per: dict[str, list[Decision]] = {}
        for r in rows:
            d = _row_to_decision(r)
            per.setdefault(d.item_id, []).append(d)
        for item, history in per.items():
            stack = effective_stack(history)
            if stack:
                out[item] = stack[-1]
    return out


def _lock_head(conn: Connection, table: sa.Table, key_values: dict[str, Any], column: str) -> int:
    """Create the head row if missing, lock it (FOR UPDATE on PostgreSQL; SQLite holds the write
    lock) and return the id it points at (0 = none)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    conn.execute(insert(table).values(**key_values, **{column: 0}).on_conflict_do_nothing())
    cond = sa.and_(*(table.c[k] == v for k, v in key_values.items()))
    return int(conn.execute(sa.select(table.c[column]).where(cond).with_for_update()).scalar_one())


def _held_slot(conn: Connection, dv: str, item: str, slot: int, reviewer: str) -> AssignedSlot:
    """The open slot (item, slot) of ``reviewer``; UsageError when it is not theirs (or closed)."""
    c = assignment_items_table.c
    open_ids = _open_assignment_ids(conn, dv)
    row = conn.execute(
        sa.select(c.assignment_id, c.reviewer, c.position, c.overlap).where(
            (c.dataset_version == dv)
            & (c.item_id == item)
            & (c.slot == slot)
            & c.assignment_id.in_(open_ids or [-1])
        )
    ).first()
    if row is None or not same_name(row[1], reviewer):
        raise UsageError(f"item {item} is not assigned to {reviewer} for review")
    return AssignedSlot(int(row[0]), item, slot, row[1], int(row[2]), bool(row[3]))


def blind_head(store: ReviewStore, dataset_version: str, item_id: str, slot: int) -> int | None:
    """Id of the newest blind review of (item, slot), None when it has none: pass it back as
    ``seen_blind_id``."""
    h = blind_heads_table.c
    with store._reading() as conn:
        v = conn.execute(
            sa.select(h.latest_blind_id).where(
                (h.dataset_version == dataset_version) & (h.item_id == item_id) & (h.slot == slot)
            )
        ).scalar()
    return int(v) if v else None


def record_blind(
    store: ReviewStore,
    *,
    dataset_version: str,
    item_id: str,
    slot: int,
    identity: Identity,
    action: str,
    old_label: str,
    new_label: str | None,
    comment: str = "",
    shown: dict | None = None,
    seen_blind_id: int | None,
    seen_decision_id: int | None,
) -> BlindOutcome:
    """Record ``identity``'s blind review of an overlap item they hold, in one transaction.

    Checked as :meth:`ReviewStore.record` checks a decision: ``seen_decision_id`` against the log
    (the item decided meanwhile, e.g. by the lead: :class:`ConflictError`), ``seen_blind_id``
    against this slot's own reviews (the same reviewer in two tabs). When the other slot's review
    is in force, the pair is settled in the same transaction: the same :func:`rating` writes a
    ``consensus`` decision into the log; different ratings leave the item to the lead. UsageError
    when the slot is not ``identity``'s; nothing is written on any error.
    """
    values = store.prepare(
        dataset_version=dataset_version,
        item_id=item_id,
        reviewer=identity.name,
        action=action,
        old_label=old_label,
        new_label=new_label,
        comment=comment,
        shown=shown,
        identity=identity,
    )
    item = values["item_id"]
    with store.engine.begin() as conn:
        held = _held_slot(conn, dataset_version, item, int(slot), identity.name)
        if not held.overlap:
            raise UsageError(f"item {item} is reviewed once: record it in the log, not blind")
        latest = _lock_head(
            conn,
            heads_table,
            {"dataset_version": dataset_version, "item_id": item},
            "latest_decision_id",
        )
        if latest != (seen_decision_id or 0):
            raise ConflictError(store._get(conn, latest))
        mine = _lock_head(
            conn,
            blind_heads_table,
            {"dataset_version": dataset_version, "item_id": item, "slot": int(slot)},
            "latest_blind_id",
        )
        if mine != (seen_blind_id or 0):
            raise ConflictError(_blind_get(conn, mine))
        blind_id = _insert_blind(conn, store, values, held)
        review = _blind_get(conn, blind_id)
        other = effective_stack(_blind_history(conn, dataset_version, item, 1 - int(slot)))
        if not other:
            return BlindOutcome(review, "waiting")
        first = other[-1]
        if rating(first.action, first.new_label) != rating(review.action, review.new_label):
            return BlindOutcome(review, "disagreed")
        consensus_values = store.prepare(
            dataset_version=dataset_version,
            item_id=item,
            reviewer=identity.name,
            action=review.action,
            old_label=old_label,
            new_label=review.new_label,
            comment="",
            shown={
                "double_review": {
                    "assignment_id": held.assignment_id,
                    "blind_ids": sorted([first.id, review.id]),
                    "reviewers": [first.reviewer, review.reviewer],
                    "subjects": [_blind_subject(conn, first.id), _blind_subject(conn, review.id)],
                }
            },
            identity=identity,
            capacity="consensus",
        )
        consensus = store.append_in(conn, consensus_values, latest or None)
    return BlindOutcome(review, "agreed", consensus)


def _insert_blind(
    conn: Connection, store: ReviewStore, values: dict[str, Any], held: AssignedSlot
) -> int:
    row = {
        k: values[k]
        for k in (
            "dataset_version",
            "item_id",
            "reviewer",
            "action",
            "old_label",
            "new_label",
            "comment",
            "shown",
            "undoes_id",
            "auth",
            "role",
        )
    }
    row.update(assignment_id=held.assignment_id, slot=held.slot, decided_at=store.clock())
    blind_id = int(
        conn.execute(
            blind_decisions_table.insert().values(**row).returning(blind_decisions_table.c.blind_id)
        ).scalar_one()
    )
    if values.get("subject"):
        conn.execute(
            blind_identities_table.insert().values(blind_id=blind_id, subject=values["subject"])
        )
    h = blind_heads_table.c
    conn.execute(
        blind_heads_table.update()
        .where(
            (h.dataset_version == values["dataset_version"])
            & (h.item_id == values["item_id"])
            & (h.slot == held.slot)
        )
        .values(latest_blind_id=blind_id)
    )
    return blind_id


def _blind_subject(conn: Connection, blind_id: int) -> str:
    """The OpenID Connect subject of a blind review ("" when it was not signed in)."""
    bi = blind_identities_table.c
    found = conn.execute(sa.select(bi.subject).where(bi.blind_id == blind_id)).scalar()
    return str(found or "")


def _blind_get(conn: Connection, blind_id: int) -> Decision:
    b = blind_decisions_table.c
    return _blind_to_decision(
        conn.execute(sa.select(blind_decisions_table).where(b.blind_id == blind_id)).one()
    )


def undo_blind(
    store: ReviewStore,
    *,
    dataset_version: str,
    item_id: str,
    slot: int,
    identity: Identity,
    seen_blind_id: int,
) -> tuple[Decision, Decision | None]:
    """Cancel ``identity``'s latest blind review in force of (item, slot); returns the blind undo
    row and, when that review had completed an agreeing pair, the undo of the consensus in the log.

    Refused (nothing written): ConflictError when the slot or the consensus changed since; a
    :class:`FinalDecisionError` once the lead adjudicated; UsageError when there is nothing to undo
    or the slot is not ``identity``'s.
    """
    item = str(item_id)
    with store.engine.begin() as conn:
        held = _held_slot(conn, dataset_version, item, int(slot), identity.name)
        latest = _lock_head(
            conn,
            heads_table,
            {"dataset_version": dataset_version, "item_id": item},
            "latest_decision_id",
        )
        mine = _lock_head(
            conn,
            blind_heads_table,
            {"dataset_version": dataset_version, "item_id": item, "slot": int(slot)},
            "latest_blind_id",
        )
        if mine != (seen_blind_id or 0):
            raise ConflictError(_blind_get(conn, mine))
        stack = effective_stack(_blind_history(conn, dataset_version, item, int(slot)))
        if not stack:
            raise UsageError(f"item {item} has no review of yours to undo")
        cancelled = stack[-1]
        undone: Decision | None = None
        in_force = _main_in_force(conn, dataset_version, [item]).get(item)
        if in_force is not None and in_force.final:
            raise FinalDecisionError(in_force)
        if (
            in_force is not None
            and in_force.capacity == "consensus"
            and cancelled.id in in_force.shown.get("double_review", {}).get("blind_ids", [])
        ):
            if latest != in_force.id:
                raise ConflictError(store._get(conn, latest))
            undo_values = dict(
                dataset_version=dataset_version,
                item_id=item,
                reviewer=identity.name,
                action="undo",
                comment="",
                auth=identity.auth,
                subject=identity.subject,
                role=identity.role,
                capacity="consensus",
            )
            undone = store.append_in(conn, undo_values, latest)
        values = dict(
            dataset_version=dataset_version,
            item_id=item,
            reviewer=identity.name,
            action="undo",
            old_label=cancelled.new_label,
            new_label=cancelled.old_label,
            comment="",
            shown=json.dumps({"undoes": cancelled.id}),
            undoes_id=cancelled.id,
            auth=identity.auth,
            role=identity.role,
        )
        blind_id = _insert_blind(conn, store, values, held)
        return _blind_get(conn, blind_id), undone


# --------------------------------------------------------------------------- the pairs
PAIR_COLUMNS = [
    "assignment_id",
    "item_id",
    "position",
    "reviewer_a",
    "rating_a",
    "reviewer_b",
    "rating_b",
    "status",
    "final_label",
    "decided_by",
]


def double_reviews(store: ReviewStore, dataset_version: str) -> pd.DataFrame:
    """One row per overlap item of every assignment (open or closed): columns :data:`PAIR_COLUMNS`.

    ``rating_a`` / ``rating_b``: slot 0's and slot 1's review in force (:func:`rating`; None while
    missing); ``status``: ``waiting`` (a review is missing), ``agreed`` (consensus in the log),
    ``disagreed`` (waiting for the lead), ``adjudicated`` (the lead's final decision), or
    ``decided`` (the log has another decision in force, e.g. the lead's before the pair was
    complete); ``final_label`` and ``decided_by`` from the log's decision in force.
    """
    c = assignment_items_table.c
    with store._reading() as conn:
        rows = conn.execute(
            sa.select(c.assignment_id, c.item_id, c.slot, c.reviewer, c.position)
            .where((c.dataset_version == dataset_version) & c.overlap)
            .order_by(c.assignment_id, c.position, c.slot)
        ).all()
        items = list(dict.fromkeys(r[1] for r in rows))
        blind = _blind_in_force(conn, dataset_version, items)
        main = _main_in_force(conn, dataset_version, items)
    pairs: dict[tuple[int, str], dict[str, Any]] = {}
    for aid, item, slot, reviewer, position in rows:
        p = pairs.setdefault(
            (int(aid), item),
            {"assignment_id": int(aid), "item_id": item, "position": int(position)},
        )
        suffix = "a" if int(slot) == 0 else "b"
        p[f"reviewer_{suffix}"] = reviewer
        d = blind.get((item, int(slot)))
        p[f"rating_{suffix}"] = None if d is None else rating(d.action, d.new_label)
    out = []
    for p in pairs.values():
        d = main.get(p["item_id"])
        a, b = p.get("rating_a"), p.get("rating_b")
        if d is not None and d.capacity == "adjudication":
            status = "adjudicated"
        elif d is not None and d.capacity == "consensus":
            status = "agreed"
        elif d is not None:
            status = "decided"
        elif a is None or b is None:
            status = "waiting"
        else:
            status = "agreed" if a == b else "disagreed"
        p["status"] = status
        p["final_label"] = None if d is None else rating(d.action, d.new_label)
        p["decided_by"] = None if d is None else d.reviewer
        out.append(p)
    return pd.DataFrame(out, columns=PAIR_COLUMNS)


def adjudication_queue(store: ReviewStore, dataset_version: str) -> list[str]:
    """Overlap items whose two blind reviews disagree and that the lead has not decided yet, in the
    assignments' order."""
    pairs = double_reviews(store, dataset_version)
    return pairs.loc[pairs["status"] == "disagreed", "item_id"].drop_duplicates().tolist()


def pair_for(store: ReviewStore, dataset_version: str, item_id: str) -> list[Decision]:
    """The two blind reviews in force of an overlap item (slot order): what the lead sees when
    adjudicating. Reviewers never get this."""
    with store._reading() as conn:
        blind = _blind_in_force(conn, dataset_version, [item_id])
    return [blind[k] for k in sorted(blind)]


def adjudicate(
    store: ReviewStore,
    *,
    dataset_version: str,
    item_id: str,
    lead: Identity,
    action: str,
    old_label: str,
    new_label: str | None,
    comment: str = "",
    shown: dict | None = None,
    seen_decision_id: int | None,
) -> Decision:
    """The lead's final decision on a disagreement: recorded in the log as ``adjudication``, with
    both blind reviews in ``shown``; only a lead may change it afterwards."""
    require_lead(lead, "adjudicate")
    pair = pair_for(store, dataset_version, item_id)
    shown = dict(shown or {})
    shown["adjudication"] = {
        "blind_ids": [d.id for d in pair],
        "reviewers": [d.reviewer for d in pair],
        "ratings": [rating(d.action, d.new_label) for d in pair],
    }
    return store.record(
        dataset_version=dataset_version,
        item_id=item_id,
        reviewer=lead.name,
        action=action,
        old_label=old_label,
        new_label=new_label,
        comment=comment,
        shown=shown,
        seen_decision_id=seen_decision_id,
        identity=lead,
        capacity="adjudication",
    )


# --------------------------------------------------------------------------- progress, agreement
@dataclass(frozen=True)
class TeamAgreement:
    """Agreement between reviewers on their blind double reviews.

    ``pairs``: Cohen's kappa per pair of reviewers (:func:`labelaudit.agreement.metrics.
    cohen_kappa_pairs`: annotator_a, annotator_b, overlap, agreement, kappa, reason); ``raw``: raw
    agreement over all complete pairs; ``per_class``: specific agreement per rating
    (:func:`~labelaudit.agreement.metrics.class_agreement`); ``n_items``: items with both reviews.
    """

    n_items: int
    raw: Any
    pairs: pd.DataFrame
    per_class: pd.DataFrame = field(default_factory=pd.DataFrame)


def team_agreement(
    store: ReviewStore, dataset_version: str, *, classes: Sequence[str] | None = None
) -> TeamAgreement:
    """Agreement on the overlap items both reviewers have reviewed (the statistics of the
    Annotators page, :mod:`labelaudit.agreement.metrics`, on the reviews' :func:`rating`).

    ``classes``: the dataset's classes (the two rating categories ``(ambiguous)`` and ``(removed)``
    are added); default: the ratings used. Pairs need 10 shared items for a kappa (the agreement
    module's ``MIN_PAIR_OVERLAP``); below that the ``reason`` column says so.
    """
    from labelaudit.agreement.metrics import Statistic, class_agreement, cohen_kappa_pairs
    from labelaudit.agreement.metrics import raw_agreement as raw_stats
    from labelaudit.agreement.ratings import Ratings

    pairs = double_reviews(store, dataset_version)
    complete = pairs.dropna(subset=["rating_a", "rating_b"])
    if complete.empty:
        none = Statistic("raw agreement", None, 0, "no overlap item has both reviews yet")
        return TeamAgreement(0, none, pd.DataFrame(), pd.DataFrame())
    long = pd.concat(
        [
            pd.DataFrame(
                {
                    "item_id": complete["item_id"].astype(str)
                    + "#"
                    + complete["assignment_id"].astype(str),
                    "annotator_id": complete[f"reviewer_{s}"],
                    "label": complete[f"rating_{s}"],
                }
            )
            for s in ("a", "b")
        ],
        ignore_index=True,
    )
    used = set(long["label"])
    cats = list(
        dict.fromkeys([*(classes or sorted(used - {REMOVED, AMBIGUOUS})), AMBIGUOUS, REMOVED])
    )
    cats += sorted(used - set(cats))
    ratings = Ratings.from_frame(long, classes=cats)
    _, per_pair = raw_stats(ratings)
    per_class = class_agreement(ratings)
    per_class = per_class[per_class["n_ratings"] > 0].reset_index(drop=True)
    return TeamAgreement(len(complete), per_pair, cohen_kappa_pairs(ratings), per_class)


OVERVIEW_COLUMNS = [
    "reviewer",
    "assigned",
    "decided",
    "remaining",
    "overlap_assigned",
    "overlap_decided",
    "last_decision",
]


def team_overview(
    store: ReviewStore, dataset_version: str, book: AssignmentBook | None = None
) -> pd.DataFrame:
    """Per reviewer of the open assignments: columns :data:`OVERVIEW_COLUMNS`. ``decided`` counts
    items the reviewer no longer has to look at (their review in force, or a decision in the log);
    ``last_decision``: time of their newest decision or blind review (UTC, NaT when none)."""
    from labelaudit.review.store import decisions_table

    book = book or assignment_book(store, dataset_version)
    if book.empty:
        return pd.DataFrame(columns=OVERVIEW_COLUMNS)
    slots = book.slots
    items = slots["item_id"].drop_duplicates().tolist()
    with store._reading() as conn:
        main = _main_in_force(conn, dataset_version, items)
        blind = _blind_in_force(
            conn, dataset_version, slots.loc[slots["overlap"], "item_id"].tolist()
        )
        names = book.reviewers()
        d, bc = decisions_table.c, blind_decisions_table.c
        # Per spelling in SQL, then per person (name_key) here: "Ana" and "ana" are one reviewer.
        last: dict[str, list[Any]] = {}
        for table, col in ((d, d.decided_at), (bc, bc.decided_at)):
            for who, at in conn.execute(
                sa.select(table.reviewer, sa.func.max(col))
                .where(table.dataset_version == dataset_version)
                .group_by(table.reviewer)
            ).all():
                if at is not None:
                    last.setdefault(name_key(who), []).append(at)
    done = [
        r.item_id in main or (bool(r.overlap) and (r.item_id, int(r.slot)) in blind)
        for r in slots.itertuples(index=False)
    ]
    t = slots.assign(done=done, _key=slots["reviewer"].map(name_key))
    out = []
    for name in names:
        mine = t[t["_key"] == name_key(name)]
        times = [pd.Timestamp(_utc(x)) for x in last.get(name_key(name), [])]
        out.append(
            {
                "reviewer": name,
                "assigned": len(mine),
                "decided": int(mine["done"].sum()),
                "remaining": int((~mine["done"]).sum()),
                "overlap_assigned": int(mine["overlap"].sum()),
                "overlap_decided": int((mine["overlap"] & mine["done"]).sum()),
                "last_decision": max(times) if times else pd.NaT,
            }
        )
    return pd.DataFrame(out, columns=OVERVIEW_COLUMNS)


def blind_touched_since(
    store: ReviewStore, dataset_version: str, after_id: int
) -> tuple[int, list[tuple[str, int]]]:
    """``(newest blind id, (item, slot) pairs with a blind review above after_id)``, for a live
    queue; reads only the new rows."""
    b = blind_decisions_table.c
    with store._reading() as conn:
        rows = conn.execute(
            sa.select(b.blind_id, b.item_id, b.slot)
            .where((b.blind_id > after_id) & (b.dataset_version == dataset_version))
            .order_by(b.blind_id)
        ).all()
    newest = int(rows[-1][0]) if rows else after_id
    return newest, list(dict.fromkeys((r[1], int(r[2])) for r in rows))


def newest_blind_id(store: ReviewStore) -> int:
    """The highest blind review id (any dataset version), 0 when none."""
    with store._reading() as conn:
        return int(
            conn.execute(sa.select(sa.func.max(blind_decisions_table.c.blind_id))).scalar() or 0
        )


def blind_done(
    store: ReviewStore, dataset_version: str, keys: Sequence[tuple[str, int]]
) -> set[tuple[str, int]]:
    """Which of the (item, slot) ``keys`` have a blind review in force."""
    with store._reading() as conn:
        found = _blind_in_force(conn, dataset_version, [k[0] for k in keys])
    return {k for k in keys if k in found}


def is_relabel(action: str) -> bool:
    return action in RELABEL_ACTIONS


#: Columns of :func:`identities_in_log`.
IDENTITY_LOG_COLUMNS = [
    "reviewer",
    "spellings",
    "identified",
    "auth",
    "subject",
    "decisions",
    "blind_reviews",
    "first_decision",
    "last_decision",
]
#: How each ``auth`` reads in :func:`identities_in_log` (None: decided before identities were kept).
IDENTIFIED_AS = {
    "oidc": "signed in",
    "typed": "typed, not verified",
    "import": "imported",
    "script": "script",
}


def identities_in_log(store: ReviewStore, dataset_version: str) -> pd.DataFrame:
    """Who decided on ``dataset_version`` and how each was identified: one row per (person, auth,
    subject), columns :data:`IDENTITY_LOG_COLUMNS`, signed-in identities first.

    A person is a :func:`~labelaudit.review.identity.name_key`: "Ana" and "ana" typed on two days
    are one row. ``reviewer`` is the first spelling used, ``spellings`` every spelling as typed
    (", "-separated, in order of first use); the log itself keeps each decision's name as typed.
    ``identified`` is plain text (:data:`IDENTIFIED_AS`, "unknown (before identities were kept)"
    for old rows); ``decisions`` counts rows of the log (undo rows included), ``blind_reviews`` the
    blind reviews of double-reviewed items (which enter the log only as their consensus or
    adjudication). Counted in the database (one grouped query per table), never by reading the log.

    The same name can appear twice, e.g. once typed and once signed in: the audit question is
    exactly which decisions a login vouched for.
    """
    from labelaudit.review.store import decision_identities_table, decisions_table

    d, ident, bc = decisions_table.c, decision_identities_table.c, blind_decisions_table.c
    with store._reading() as conn:
        main_rows = conn.execute(
            sa.select(
                d.reviewer,
                ident.auth,
                ident.subject,
                sa.func.count(),
                sa.func.min(d.decided_at),
                sa.func.max(d.decided_at),
                sa.func.min(d.decision_id),
            )
            .outerjoin_from(
                decisions_table, decision_identities_table, ident.decision_id == d.decision_id
            )
            .where(d.dataset_version == dataset_version)
            .group_by(d.reviewer, ident.auth, ident.subject)
        ).all()
        blind_rows = conn.execute(
            sa.select(
                bc.reviewer,
                bc.auth,
                sa.func.count(),
                sa.func.max(bc.decided_at),
                sa.func.min(bc.blind_id),
            )
            .where(bc.dataset_version == dataset_version)
            .group_by(bc.reviewer, bc.auth)
        ).all()
    people: dict[tuple[str, str, str], dict[str, Any]] = {}

    def person(name: str, auth: str, subject: str, first_id: tuple[int, int]) -> dict[str, Any]:
        p = people.setdefault(
            (name_key(name), auth, subject),
            {"names": {}, "decisions": 0, "blind_reviews": 0, "first": [], "last": []},
        )
        p["names"][name] = min(p["names"].get(name, first_id), first_id)
        return p

    for name, auth, subject, n, first, last, first_id in main_rows:
        p = person(name, auth or "", subject or "", (0, int(first_id)))
        p["decisions"] += int(n)
        p["first"].append(_utc(first))
        p["last"].append(_utc(last))
    # Blind reviews keep no subject: join them to the reviewer's signed-in row when there is one.
    subjects: dict[tuple[str, str], str] = {}
    for k, _a, _s in sorted(people):
        subjects.setdefault((k, _a), _s)
    for name, auth, n, last, first_id in blind_rows:
        subject = subjects.get((name_key(name), auth or ""), "")
        p = person(name, auth or "", subject, (1, int(first_id)))
        p["blind_reviews"] += int(n)
        p["last"].append(_utc(last))
    out = []
    for (_key, auth, subject), p in people.items():
        names = sorted(p["names"], key=p["names"].__getitem__)
        out.append(
            {
                "reviewer": names[0],
                "spellings": ", ".join(names),
                "identified": IDENTIFIED_AS.get(auth, "unknown (before identities were kept)"),
                "auth": auth or None,
                "subject": subject,
                "decisions": p["decisions"],
                "blind_reviews": p["blind_reviews"],
                "first_decision": pd.Timestamp(min(p["first"])) if p["first"] else pd.NaT,
                "last_decision": pd.Timestamp(max(p["last"])) if p["last"] else pd.NaT,
            }
        )
    df = pd.DataFrame(out, columns=IDENTITY_LOG_COLUMNS)
    for col in ("first_decision", "last_decision"):
        df[col] = pd.to_datetime(df[col], utc=True)
    order = df["auth"].map({"oidc": 0, "typed": 1}).fillna(2)
    df = df.assign(_o=order, _k=df["reviewer"].map(name_key)).sort_values(
        ["_o", "_k"], kind="stable"
    )
    return df[IDENTITY_LOG_COLUMNS].reset_index(drop=True)
