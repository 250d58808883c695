"""One reviewer's pass over a queue: which item is on screen, skips, undo, and the decision rules.

The Review page keeps one :class:`ReviewSession` per browser session and calls it from its button
callbacks; a script or a notebook can drive a review the same way. Nothing here draws or caches.

The rules, in one place:

- **Which item.** :meth:`ReviewSession.pick` returns the item forced back on screen (after a
  conflict or an undo), else the first queue item not passed this session, else the first passed
  one (skipping moves an item behind every item not yet passed).
- **What was seen.** :meth:`ReviewSession.show` remembers, the first time an item is on screen, its
  latest decision id and what the reviewer saw; a decision is recorded against *that* id, so a
  decision made meanwhile by someone else raises :class:`~labelaudit.review.store.ConflictError`
  in the store instead of being overwritten.
- **Deciding.** :meth:`ReviewSession.decide` records the decision and moves on; on a conflict the
  item stays on screen, now checked against the other decision. :meth:`ReviewSession.undo` cancels
  this session's last decision and brings its item back. Each returns an :class:`Outcome` to show;
  none raises for a conflict or a refused decision.

Example:
    >>> session = ReviewSession(dataset_version=ds.content_hash)                 # doctest: +SKIP
    >>> queue = build_queue(ds, scan_table=res.table)                           # doctest: +SKIP
    >>> item = session.pick(queue)                                              # doctest: +SKIP
    >>> session.show(store, item_evidence(ds, item, scan_table=res.table), "ranking")  # doctest: +SKIP
    >>> session.decide(store, ds, reviewer="ana", action="accept").message      # doctest: +SKIP
    'Saved: accept → refund on item 17 (decision 1).'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from labelaudit.dataset import Dataset
from labelaudit.errors import UsageError
from labelaudit.review.queue import ItemEvidence, current_labels, label_before
from labelaudit.review.store import ConflictError, ReviewStore

OutcomeKind = Literal["saved", "conflict", "error"]


@dataclass(frozen=True)
class Outcome:
    """What an action did, for the reviewer: ``kind`` "saved", "conflict" (nothing written: the
    item changed meanwhile) or "error" (refused, e.g. a missing label); ``message`` in plain words
    (it carries ids, labels and names typed by people: show it as plain text)."""

    kind: OutcomeKind
    message: str


@dataclass
class ShownItem:
    """The item on screen: its id, its latest decision id when first shown (None: undecided), what
    the reviewer saw (stored with the decision) and the suggested label (what "accept" sets)."""

    item_id: str
    seen: int | None
    shown: dict[str, Any]
    suggested: str | None


@dataclass(frozen=True)
class LastDecision:
    """This session's latest decision, the one "undo" cancels."""

    item_id: str
    decision_id: int


@dataclass
class ReviewSession:
    """One reviewer's position in a queue of ``dataset_version``, kept across page reruns.

    ``skipped``: ids passed this session, oldest first (decided items count as passed);
    ``forced``: an item to show next whatever the queue says; ``last``: the decision "undo" cancels;
    ``shown``: the item on screen.
    """

    dataset_version: str
    skipped: list[str] = field(default_factory=list)
    forced: str | None = None
    last: LastDecision | None = None
    shown: ShownItem | None = None

    # ------------------------------------------------------------------ which item
    def pick(self, queue: Sequence[str]) -> str | None:
        """The item to show from ``queue`` (ids in review order), or None when nothing is left.

        >>> s = ReviewSession("v1", skipped=["a"])
        >>> s.pick(["a", "b"]), s.pick(["a"]), s.pick([])
        ('b', 'a', None)
        """
        if self.forced:
            return self.forced
        passed = set(self.skipped)
        fresh = next((i for i in queue if i not in passed), None)
        if fresh is not None:
            return fresh
        in_queue = set(queue)
        return next((i for i in self.skipped if i in in_queue), None)

    def show(self, store: ReviewStore, ev: ItemEvidence, source: str) -> ShownItem:
        """Note that ``ev``'s item is on screen, from queue ``source``; the first time only, read its
        latest decision id (what a decision is checked against) and what the reviewer sees."""
        if self.shown is None or self.shown.item_id != ev.item_id:
            self.shown = ShownItem(
                item_id=ev.item_id,
                seen=store.latest_decision_id(self.dataset_version, ev.item_id),
                shown=ev.shown(source),
                suggested=ev.suggested_label,
            )
        return self.shown

    def skip(self, item_id: str) -> None:
        """Move ``item_id`` behind every item not yet passed this session.

        >>> s = ReviewSession("v1", skipped=["a", "b"], forced="a")
        >>> s.skip("a"); s.skipped, s.forced
        (['b', 'a'], None)
        """
        self.skipped = [i for i in self.skipped if i != item_id] + [item_id]
        if self.shown is not None and self.shown.item_id == item_id:
            self.shown = None
        if self.forced == item_id:
            self.forced = None

    # ------------------------------------------------------------------ deciding
    def decide(
        self,
        store: ReviewStore,
        ds: Dataset,
        *,
        reviewer: str,
        action: str,
        new_label: str | None = None,
        comment: str = "",
    ) -> Outcome | None:
        """Record ``action`` on the item on screen, checked against its decision id at first sight;
        None when no item is on screen.

        ``action``: accept (sets the suggested label), change (sets ``new_label``), keep, ambiguous or
        remove. Saved: remembered for undo, and the session moves on. Conflict: nothing written, the
        item stays on screen and the next decision is checked against the other one. Refused (a
        missing label, an empty reviewer name): an "error" outcome, nothing changes.
        """
        shown = self.shown
        if shown is None:
            return None
        if ds.content_hash != self.dataset_version:
            raise UsageError(
                f"this review session is on dataset version {self.dataset_version}, not {ds.content_hash}"
            )
        item = shown.item_id
        old = label_before(ds, current_labels(ds, store.current(ds.content_hash)), item)
        label = shown.suggested if action == "accept" else new_label if action == "change" else None
        try:
            d = store.record(
                dataset_version=self.dataset_version,
                item_id=item,
                reviewer=reviewer,
                action=action,
                old_label=old,
                new_label=label,
                comment=comment.strip(),
                shown=shown.shown,
                seen_decision_id=shown.seen,
            )
        except ConflictError as e:
            self.forced = item
            self.shown = ShownItem(item, e.latest.id, shown.shown, shown.suggested)
            return Outcome(
                "conflict",
                f"Not saved: this item changed after it was shown to you. {e.latest.describe()}. "
                "Look again and decide.",
            )
        except UsageError as e:
            return Outcome("error", str(e))
        self.last = LastDecision(item, d.id)
        self.skip(item)  # move on, also when decided items stay in the queue
        relabel = f" → {d.new_label}" if d.action in ("accept", "change") else ""
        return Outcome("saved", f"Saved: {d.action}{relabel} on item {item} (decision {d.id}).")

    def undo(self, store: ReviewStore, *, reviewer: str) -> Outcome | None:
        """Cancel this session's last decision and bring its item back on screen; None when there
        is none. A conflict (someone decided the item since) writes nothing and forgets the undo."""
        last = self.last
        if last is None:
            return None
        try:
            u = store.undo(
                dataset_version=self.dataset_version,
                item_id=last.item_id,
                reviewer=reviewer,
                seen_decision_id=last.decision_id,
            )
        except ConflictError as e:
            self.last = None
            return Outcome(
                "conflict",
                f"Not undone: the item changed since your decision. {e.latest.describe()}.",
            )
        except UsageError as e:
            return Outcome("error", str(e))
        self.last = None
        self.forced = last.item_id  # decide it again
        self.shown = None
        return Outcome(
            "saved", f"Undone: item {last.item_id} is back to {u.new_label} (decision {u.id})."
        )
