"""A review queue kept current by reading only what changed: the next item in a few milliseconds.

:class:`LiveQueue` holds one reviewer's view of a queue: its order (built once per change of the
queue, shared and never copied), which items are done, a pointer to the first item that may still
be open, and the progress count. :meth:`LiveQueue.refresh` reads only the decisions logged since
the last refresh (``ReviewStore.touched_since``) and re-folds just those items, so a decision costs
the same at 10,000 and at 1,000,000 rows; the whole log is read once when the queue starts, and
again every :data:`RESYNC_SECONDS` as a safety net (PostgreSQL may commit a lower id after a higher
one). Before an item is handed out, its own state is read once more (:meth:`LiveQueue.pick`), so a
decision made a moment ago elsewhere is never shown as open.

"Done" means: a decision in force in the log, or, for an overlap item this reviewer holds, their
own blind review in force (:mod:`labelaudit.review.team`). Items other reviewers hold (``hidden``)
are never offered.

Example::

    live = LiveQueue.start(store, ds.content_hash, order)
    item = live.pick(store, session)            # the next item to show
    live.refresh(store)                         # after a decision: reads the new rows only
    live.done_count, live.total
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from labelaudit.review.store import Decision, ReviewStore

if TYPE_CHECKING:
    from labelaudit.review.session import ReviewSession

#: Seconds between two full re-reads of the decided items.
RESYNC_SECONDS = 60.0


def positions_of(order: Sequence[str]) -> dict[str, int]:
    """``{item id: index in order}`` (first occurrence), to share between the sessions of a queue."""
    out: dict[str, int] = {}
    for i, item in enumerate(order):
        out.setdefault(item, i)
    return out


@dataclass
class LiveQueue:
    """One reviewer's queue over ``order`` (see the module docstring). Create with :meth:`start`.

    ``my_slots``: item -> the blind slot this reviewer holds on an overlap item; ``hidden``: items
    held by other reviewers; ``include_decided``: offer done items too (to look at them again).
    """

    dataset_version: str
    order: Sequence[str]
    positions: Mapping[str, int]
    include_decided: bool = False
    my_slots: Mapping[str, int] = field(default_factory=dict)
    hidden: frozenset[str] = frozenset()
    clock: Callable[[], float] = time.monotonic
    main_done: set[str] = field(default_factory=set)
    blind_done: set[str] = field(default_factory=set)
    cursor: int = 0
    blind_cursor: int = 0
    pointer: int = 0
    done_count: int = 0
    synced_at: float = 0.0
    #: ``(item, its decision in force or None)`` as :meth:`pick` read it in this call (None when it
    #: read nothing): the card shows it instead of reading the item again.
    checked: tuple[str, Decision | None] | None = None

    @classmethod
    def start(
        cls,
        store: ReviewStore,
        dataset_version: str,
        order: Sequence[str],
        *,
        positions: Mapping[str, int] | None = None,
        include_decided: bool = False,
        my_slots: Mapping[str, int] | None = None,
        hidden: frozenset[str] = frozenset(),
        clock: Callable[[], float] = time.monotonic,
    ) -> LiveQueue:
        """Read the done items once and return the queue. ``positions``: :func:`positions_of`
        ``order`` when already built (shared between sessions)."""
        live = cls(
            dataset_version,
            order,
            positions if positions is not None else positions_of(order),
            include_decided,
            dict(my_slots or {}),
            frozenset(hidden),
            clock,
        )
        live.resync(store)
        return live

    # ------------------------------------------------------------------ state
    @property
    def total(self) -> int:
        """Items of the queue this reviewer may get (hidden ones left out)."""
        return self._total

    def done(self, item: str) -> bool:
        return item in self.main_done or item in self.blind_done

    def resync(self, store: ReviewStore) -> None:
        """Read every done item again (on start, and every :data:`RESYNC_SECONDS`)."""
        from labelaudit.review import team

        cursor = store.newest_decision_id()  # first, so rows landing meanwhile are read again later
        blind_cursor = team.newest_blind_id(store) if self.my_slots else 0
        current = store.current(self.dataset_version)
        self.main_done = set(current["item_id"])
        self.blind_done = (
            {
                k[0]
                for k in team.blind_done(store, self.dataset_version, list(self.my_slots.items()))
            }
            if self.my_slots
            else set()
        )
        self.cursor, self.blind_cursor = cursor, blind_cursor
        in_queue = [i for i in self.positions if i not in self.hidden]
        self._total = len(in_queue)
        self.done_count = sum(1 for i in self.main_done | self.blind_done if self._counts(i))
        self.pointer = 0
        self.synced_at = self.clock()

    def _counts(self, item: str) -> bool:
        return item in self.positions and item not in self.hidden

    def _set(self, item: str, *, main: bool | None = None, blind: bool | None = None) -> None:
        was = self.done(item)
        if main is not None:
            (self.main_done.add if main else self.main_done.discard)(item)
        if blind is not None:
            (self.blind_done.add if blind else self.blind_done.discard)(item)
        now = self.done(item)
        if was != now and self._counts(item):
            self.done_count += 1 if now else -1
            if not now:  # open again (an undo): the pointer must see it
                self.pointer = min(self.pointer, self.positions[item])

    def refresh(self, store: ReviewStore) -> int:
        """Fold the decisions logged since the last refresh; returns how many items changed state."""
        from labelaudit.review import team

        if self.clock() - self.synced_at > RESYNC_SECONDS:
            self.resync(store)
            return 0
        newest, touched = store.touched_since(self.dataset_version, self.cursor)
        changed = 0
        if touched:
            in_force = store.in_force(self.dataset_version, touched)
            for item in touched:
                before = self.done(item)
                self._set(item, main=item in in_force)
                changed += before != self.done(item)
        self.cursor = newest
        if self.my_slots:
            newest_b, keys = team.blind_touched_since(
                store, self.dataset_version, self.blind_cursor
            )
            mine = [(i, s) for i, s in keys if self.my_slots.get(i) == s]
            if mine:
                done = team.blind_done(store, self.dataset_version, mine)
                for key in mine:
                    before = self.done(key[0])
                    self._set(key[0], blind=key in done)
                    changed += before != self.done(key[0])
            self.blind_cursor = newest_b
        return changed

    def check(self, store: ReviewStore, item: str) -> bool:
        """Read ``item``'s own state now (one indexed read); True when it is done."""
        from labelaudit.review import team

        decision = store.in_force(self.dataset_version, [item]).get(item)
        self.checked = (item, decision)
        self._set(item, main=decision is not None)
        slot = self.my_slots.get(item)
        if slot is not None:
            self._set(
                item, blind=bool(team.blind_done(store, self.dataset_version, [(item, slot)]))
            )
        return self.done(item)

    # ------------------------------------------------------------------ picking
    def _open(self, item: str, passed: set[str]) -> bool:
        return (
            item not in passed
            and item not in self.hidden
            and (self.include_decided or not self.done(item))
        )

    def candidate(self, session: ReviewSession, *, also_passed: Sequence[str] = ()) -> str | None:
        """The item :meth:`pick` would show, from what is known (no read): the forced item, else
        the first open item not passed this session, else the first passed one still open.
        ``also_passed``: treat these as passed too (to look one item ahead)."""
        if session.forced and session.forced not in also_passed:
            return session.forced
        passed = set(session.skipped).union(also_passed)
        self.pointer = self._safe_pointer()
        i, n = self.pointer, len(self.order)
        while i < n and not self._open(self.order[i], passed):
            i += 1
        if i < n:
            return self.order[i]
        return next(
            (
                s
                for s in session.skipped
                if s in self.positions
                and s not in self.hidden
                and s not in also_passed
                and (self.include_decided or not self.done(s))
            ),
            None,
        )

    def _safe_pointer(self) -> int:
        """The pointer moved over items that stay closed whatever the session does: hidden ones
        and done ones (unless done items are shown). Passed items stay: skips are per session."""
        i, n = self.pointer, len(self.order)
        while i < n:
            item = self.order[i]
            if item not in self.hidden and (self.include_decided or not self.done(item)):
                break
            i += 1
        return i

    def pick(self, store: ReviewStore, session: ReviewSession) -> str | None:
        """The next item to show, checked against the store first (a decision made elsewhere a
        moment ago is never shown as open); None when nothing is left. The state read
        of the item handed out is kept in :attr:`checked`."""
        self.checked = None
        for _ in range(1000):  # each round closes an item: bounded
            item = self.candidate(session)
            if item is None or session.forced == item or self.include_decided:
                return item
            if not self.check(store, item):
                return item
        return self.candidate(session)

    def peek_next(self, session: ReviewSession, current: str | None) -> str | None:
        """The item that would follow ``current`` once it is decided or skipped: what to prepare
        before the click."""
        return self.candidate(session, also_passed=[current] if current else [])
