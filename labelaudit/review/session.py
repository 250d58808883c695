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
- **A busy or damaged database.** When the store cannot save (another process holds the write lock
  longer than the store waits, :class:`~labelaudit.errors.StoreBusy`), nothing is written, the item
  stays on screen and the decision is kept as :attr:`ReviewSession.pending`;
  :meth:`ReviewSession.retry` saves it again. A decision is never lost without a word.
- **Where a decision goes.** Into the log, except an overlap item of an assignment that this
  reviewer holds: a blind review (:func:`labelaudit.review.team.record_blind`); and, in the lead's
  adjudication queue, an adjudication (:func:`labelaudit.review.team.adjudicate`). A reviewer is
  refused an item that other reviewers hold.
- **Going back.** :meth:`ReviewSession.back` shows the previous item again and
  :meth:`ReviewSession.jump` any item (a decided one, to look at it or decide again);
  :attr:`ReviewSession.decided` lists what this session decided, newest last.
- **Many similar rows at once.** :meth:`ReviewSession.decide_grid` records one decision per
  selected row (accept each row's suggestion, change to one label, or keep the given label) in one
  transaction, each checked against the decision id it had when the grid was drawn: one conflict
  and nothing is written. Test-split rows are left out, as bulk decisions leave them. Undo cancels
  the whole grid decision as one step, again in one transaction.

Example:
    >>> session = ReviewSession(dataset_version=ds.content_hash)                 # doctest: +SKIP
    >>> queue = build_queue(ds, scan_table=res.table)                           # doctest: +SKIP
    >>> item = session.pick(queue)                                              # doctest: +SKIP
    >>> session.show(store, item_evidence(ds, item, scan_table=res.table), "ranking")  # doctest: +SKIP
    >>> session.decide(store, ds, reviewer="ana", action="accept").message      # doctest: +SKIP
    'Saved: accept → refund on item 17 (decision 1).'
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from labelaudit.dataset import LABEL, Dataset
from labelaudit.errors import StoreError, UsageError
from labelaudit.review import team
from labelaudit.review.identity import Identity, same_name
from labelaudit.review.queue import ItemEvidence
from labelaudit.review.store import ConflictError, ReviewStore

OutcomeKind = Literal["saved", "conflict", "error", "busy"]


@dataclass(frozen=True)
class Outcome:
    """What an action did, for the reviewer: ``kind`` "saved", "conflict" (nothing written: the
    item changed meanwhile), "error" (refused, e.g. a missing label) or "busy" (the database could
    not save it now; the decision is kept to retry); ``message`` in plain words
    (it carries ids, labels and names typed by people: show it as plain text)."""

    kind: OutcomeKind
    message: str


@dataclass
class ShownItem:
    """The item on screen: its id, its latest decision id when first shown (None: undecided), what
    the reviewer saw (stored with the decision) and the suggested label (what "accept" sets).

    ``slot``: this reviewer's assignment slot on the item (an overlap slot makes the decision a
    blind review, checked against ``seen_blind``); ``held_by``: the reviewers holding it;
    ``adjudicate``: the lead decides a disagreement (recorded as final)."""

    item_id: str
    seen: int | None
    shown: dict[str, Any]
    suggested: str | None
    slot: team.AssignedSlot | None = None
    seen_blind: int | None = None
    held_by: tuple[str, ...] = ()
    adjudicate: bool = False
    #: The item's label in force as read right after it was first shown (None: not read yet). A
    #: decision replaces it without reading it again: had anything landed since ``seen``, the
    #: store refuses the decision anyway (ConflictError), so the label cannot be stale.
    label: str | None = None

    @property
    def blind(self) -> bool:
        return self.slot is not None and self.slot.overlap and not self.adjudicate


@dataclass(frozen=True)
class LastDecision:
    """This session's latest decision, the one "undo" cancels (``blind_slot``: a blind review of
    that slot, whose id ``decision_id`` is)."""

    item_id: str
    decision_id: int
    blind_slot: int | None = None


@dataclass(frozen=True)
class LastBatch:
    """This session's latest grid decision: every (item id, decision id) it wrote; "undo" cancels
    them all in one transaction."""

    items: tuple[tuple[str, int], ...]

    @property
    def item_id(self) -> str:
        """The first item (what the card brings back after the undo)."""
        return self.items[0][0]


#: What a grid decision can do to each selected row ("keep": reject the suggestion).
GRID_ACTIONS = ("accept", "change", "keep")


@dataclass(frozen=True)
class PendingDecision:
    """A decision the database could not save yet (busy): what :meth:`ReviewSession.retry` saves."""

    item_id: str
    action: str
    new_label: str | None
    comment: str
    reason: str

    def describe(self) -> str:
        label = f" → {self.new_label}" if self.action == "change" and self.new_label else ""
        note = f" with the comment {self.comment!r}" if self.comment else ""
        return f"{self.action}{label} on item {self.item_id}{note}"


@dataclass
class ReviewSession:
    """One reviewer's position in a queue of ``dataset_version``, kept across page reruns.

    ``skipped``: ids passed this session, oldest first (decided items count as passed);
    ``forced``: an item to show next whatever the queue says; ``last``: the decision "undo" cancels;
    ``shown``: the item on screen; ``visited``: items shown this session, oldest first (for back);
    ``decided``: items this session decided and did not undo, newest last (to jump back to one;
    the grid leaves them out);
    ``pending``: a decision the database could not save yet (see :meth:`retry`).
    """

    dataset_version: str
    skipped: list[str] = field(default_factory=list)
    forced: str | None = None
    last: LastDecision | LastBatch | None = None
    shown: ShownItem | None = None
    visited: list[str] = field(default_factory=list)
    pending: PendingDecision | None = None
    decided: list[str] = field(default_factory=list)

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

    def show(
        self,
        store: ReviewStore,
        ev: ItemEvidence,
        source: str,
        *,
        slot: team.AssignedSlot | None = None,
        held_by: Sequence[str] = (),
        adjudicate: bool = False,
        audit: bool = False,
    ) -> ShownItem:
        """Note that ``ev``'s item is on screen, from queue ``source``; the first time only, read its
        latest decision id (what a decision is checked against) and what the reviewer sees.
        ``slot``, ``held_by``, ``adjudicate``: see :class:`ShownItem`; ``audit``: the item is an
        audit slot of the queue (stored with the decision as ``shown["audit"]``, never drawn)."""
        if self.shown is None or self.shown.item_id != ev.item_id:
            blind = slot is not None and slot.overlap and not adjudicate
            what = ev.shown(source)
            if audit:
                what["audit"] = True
            self.shown = ShownItem(
                item_id=ev.item_id,
                seen=store.latest_decision_id(self.dataset_version, ev.item_id),
                shown=what,
                suggested=ev.suggested_label,
                slot=slot,
                seen_blind=team.blind_head(store, self.dataset_version, ev.item_id, slot.slot)
                if blind and slot is not None
                else None,
                held_by=tuple(held_by),
                adjudicate=adjudicate,
            )
            if not self.visited or self.visited[-1] != ev.item_id:
                self.visited.append(ev.item_id)
        elif self.shown.suggested != ev.suggested_label:
            # the suggestions changed while on screen (refitted): accept sets what is shown now
            what = ev.shown(source)
            if self.shown.shown.get("audit"):
                what["audit"] = True
            self.shown.shown, self.shown.suggested = what, ev.suggested_label
        return self.shown

    def note_label(self, in_force: Any, given_label: str) -> None:
        """Keep the label in force of the item on screen (its decision in force ``in_force``, a
        :class:`~labelaudit.review.store.Decision` or None, read after :meth:`show`), once."""
        if self.shown is None or self.shown.label is not None:
            return
        if in_force is not None and in_force.action != "remove" and in_force.new_label is not None:
            self.shown.label = str(in_force.new_label)
        else:
            self.shown.label = str(given_label)

    def back(self) -> str | None:
        """Show the item before the one on screen again (None when there is none); pressing it
        again goes one further back.

        >>> s = ReviewSession("v1", visited=["a", "b"], shown=ShownItem("b", None, {}, None))
        >>> s.back(), s.forced
        ('a', 'a')
        """
        history = list(self.visited)
        if self.shown is not None and history and history[-1] == self.shown.item_id:
            history.pop()
        if not history:
            return None
        target = history.pop()
        self.visited = history  # show() appends it again
        self.jump(target)
        return target

    def jump(self, item_id: str) -> None:
        """Show ``item_id`` next, whatever the queue says (a decided item: to look or decide again)."""
        self.forced = str(item_id)
        if self.shown is not None and self.shown.item_id != item_id:
            self.shown = None

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
        identity: Identity | None = None,
    ) -> Outcome | None:
        """Record ``action`` on the item on screen, checked against its decision id at first sight;
        None when no item is on screen. ``identity``: who decides (its name wins over ``reviewer``;
        default: ``reviewer`` from a script).

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
        self.pending = None  # a conflict or a refusal ends a pending retry; busy sets it again
        try:
            who = identity or Identity(reviewer, auth="script")
            if (
                shown.held_by
                and not any(same_name(who.name, h) for h in shown.held_by)
                and not who.is_lead
            ):
                raise UsageError(
                    f"item {item} is assigned to {', '.join(shown.held_by)}; only they or a lead "
                    "can decide it"
                )
            old = shown.label if shown.label is not None else label_now(store, ds, item)
            label = (
                shown.suggested if action == "accept" else new_label if action == "change" else None
            )
            common = dict(
                dataset_version=self.dataset_version,
                item_id=item,
                action=action,
                old_label=old,
                new_label=label,
                comment=comment.strip(),
                shown=shown.shown,
                seen_decision_id=shown.seen,
            )
            if shown.blind and shown.slot is not None:
                out = team.record_blind(
                    store,
                    slot=shown.slot.slot,
                    identity=who,
                    seen_blind_id=shown.seen_blind,
                    **common,  # type: ignore[arg-type]
                )
                self.last = LastDecision(item, out.review.id, blind_slot=shown.slot.slot)
                self._decided([item])
                self.skip(item)
                return Outcome(
                    "saved",
                    f"Saved your review of item {item} ({out.review.action}). This item is "
                    "reviewed twice, blind: the other review is not shown; the two are compared "
                    "when both are in.",
                )
            if shown.adjudicate:
                d = team.adjudicate(store, lead=who, **common)  # type: ignore[arg-type]
            else:
                d = store.record(reviewer=who.name, identity=who, **common)  # type: ignore[arg-type]
        except ConflictError as e:
            self.forced = item
            self.shown = ShownItem(
                item,
                e.latest.id if e.latest.capacity != "blind" else shown.seen,
                shown.shown,
                shown.suggested,
                shown.slot,
                e.latest.id if e.latest.capacity == "blind" else shown.seen_blind,
                shown.held_by,
                shown.adjudicate,
            )
            return Outcome(
                "conflict",
                f"Not saved: this item changed after it was shown to you. {e.latest.describe()}. "
                "Look again and decide.",
            )
        except UsageError as e:
            return Outcome("error", str(e))
        except StoreError as e:  # busy or damaged: nothing written; keep the decision to retry
            self.pending = PendingDecision(item, action, new_label, comment, str(e))
            self.forced = item
            return Outcome(
                "busy",
                f"Not saved yet: {e}. Your decision ({self.pending.describe()}) is kept: press "
                "Retry to save it.",
            )
        self.pending = None
        self.last = LastDecision(item, d.id)
        self._decided([item])
        self.skip(item)  # move on, also when decided items stay in the queue
        relabel = f" → {d.new_label}" if d.action in ("accept", "change") else ""
        final = " It is final." if d.final else ""
        return Outcome(
            "saved", f"Saved: {d.action}{relabel} on item {item} (decision {d.id}).{final}"
        )

    def retry(
        self, store: ReviewStore, ds: Dataset, *, reviewer: str, identity: Identity | None = None
    ) -> Outcome | None:
        """Save the :attr:`pending` decision again (None when there is none). Its item is put
        back on screen first, so the decision is checked against what the reviewer saw."""
        pending = self.pending
        if pending is None:
            return None
        if self.shown is None or self.shown.item_id != pending.item_id:
            return Outcome(
                "error",
                f"item {pending.item_id} is no longer on screen; show it again to decide it",
            )
        return self.decide(
            store,
            ds,
            reviewer=reviewer,
            action=pending.action,
            new_label=pending.new_label,
            comment=pending.comment,
            identity=identity,
        )

    def _decided(self, items: Iterable[str]) -> None:
        new = list(dict.fromkeys(items))
        self.decided = [i for i in self.decided if i not in set(new)] + new

    def _undecided(self, items: list[str]) -> None:
        """After an undo: the first item comes back on the card to be decided again, and none of
        them counts as decided here any more (a grid undo puts its rows back in the grid)."""
        self.last = None
        self.forced = items[0]
        self.shown = None
        gone = set(items)
        self.decided = [i for i in self.decided if i not in gone]

    def decide_grid(
        self,
        store: ReviewStore,
        ds: Dataset,
        *,
        item_ids: Sequence[str],
        action: str,
        reviewer: str,
        seen: dict[str, int | None],
        new_label: str | None = None,
        suggestions: dict[str, str] | None = None,
        comment: str = "",
        source: str = "grid",
        hidden: Iterable[str] = (),
        identity: Identity | None = None,
    ) -> Outcome:
        """Record ``action`` on every row of ``item_ids`` in one transaction (see the module
        docstring). ``seen``: each row's latest decision id when the grid was drawn (None: none);
        ``suggestions``: {item id: suggested label} (what accept sets; rows without one are left
        out); ``hidden``: rows other reviewers hold (refused). Returns the outcome to show; a
        saved grid decision is what :meth:`undo` cancels next."""
        if ds.content_hash != self.dataset_version:
            raise UsageError(
                f"this review session is on dataset version {self.dataset_version}, not {ds.content_hash}"
            )
        who = identity or Identity(reviewer, auth="script")
        if action not in GRID_ACTIONS:
            return Outcome("error", f"a grid decision is accept, change or keep, not {action!r}")
        if action == "change" and new_label not in ds.classes:
            return Outcome("error", f"choose the new label for the selection (got {new_label!r})")
        wanted = list(dict.fromkeys(str(i) for i in item_ids))
        if not wanted:
            return Outcome("error", "select at least one row first")
        held = set(hidden) & set(wanted)
        if held and not who.is_lead:
            return Outcome(
                "error",
                f"{len(held)} selected rows are assigned to other reviewers (e.g. item "
                f"{sorted(held)[0]}); leave them out",
            )
        test = ds.test_mask
        rows = [(i, ds.id_to_row.get(i)) for i in wanted]
        unknown = [i for i, r in rows if r is None]
        if unknown:
            return Outcome("error", f"no row with id {unknown[0]!r} in the dataset")
        protected = [i for i, r in rows if r is not None and test[r]]
        targets = [i for i in wanted if i not in set(protected)]
        in_force = store.in_force(self.dataset_version, targets) if targets else {}
        decisions: list[dict[str, Any]] = []
        no_suggestion: list[str] = []
        for item in targets:
            d = in_force.get(item)
            old = (
                d.new_label
                if d is not None and d.action != "remove" and d.new_label is not None
                else str(ds.frame[LABEL].iat[ds.id_to_row[item]])
            )
            label = new_label if action == "change" else None
            what: dict[str, Any] = {"queue": source, "grid": True, "grid_size": len(targets)}
            if action == "accept":
                label = (suggestions or {}).get(item)
                if label not in ds.classes:
                    no_suggestion.append(item)
                    continue
                what["suggested_label"] = label
            decisions.append(
                dict(
                    dataset_version=self.dataset_version,
                    item_id=item,
                    reviewer=who.name,
                    action=action,
                    old_label=old,
                    new_label=label,
                    comment=comment.strip(),
                    shown=what,
                    seen_decision_id=seen.get(item),
                    identity=who,
                )
            )
        if not decisions:
            why = "in the protected test split" if protected else "without a suggestion"
            return Outcome("error", f"nothing to save: every selected row is {why}")
        try:
            saved = store.record_many(decisions)
        except ConflictError as e:
            return Outcome(
                "conflict",
                f"Nothing saved: item {e.latest.item_id} changed after the grid was shown. "
                f"{e.latest.describe()}. Look again and decide.",
            )
        except UsageError as e:
            return Outcome("error", f"Nothing saved: {e}")
        except StoreError as e:
            return Outcome("busy", f"Nothing saved: {e}. Press the button again to retry.")
        self.last = LastBatch(tuple((d.item_id, int(d.id)) for d in saved))
        self._decided(d.item_id for d in saved)
        for d in saved:
            if self.shown is not None and self.shown.item_id == d.item_id:
                self.shown = None
            if self.forced == d.item_id:
                self.forced = None
        parts = [f"Saved {len(saved)} decisions ({action}"]
        parts[0] += f" → {new_label})" if action == "change" else ")"
        if protected:
            parts.append(f"{len(protected)} in the protected test split left out")
        if no_suggestion:
            parts.append(f"{len(no_suggestion)} without a suggestion left out")
        return Outcome("saved", ", ".join(parts) + ". Undo cancels them all.")

    def undo(
        self, store: ReviewStore, *, reviewer: str, identity: Identity | None = None
    ) -> Outcome | None:
        """Cancel this session's last decision (or grid decision, as one step) and bring its item
        back on screen; None when there is none. A conflict (someone decided the item since) writes
        nothing and forgets the undo."""
        last = self.last
        if last is None:
            return None
        who = identity or Identity(reviewer, auth="script")
        if isinstance(last, LastBatch):
            return self._undo_batch(store, last, who)
        try:
            if last.blind_slot is not None:
                team.undo_blind(
                    store,
                    dataset_version=self.dataset_version,
                    item_id=last.item_id,
                    slot=last.blind_slot,
                    identity=who,
                    seen_blind_id=last.decision_id,
                )
                self._undecided([last.item_id])
                return Outcome("saved", f"Undone: your review of item {last.item_id}.")
            u = store.undo(
                dataset_version=self.dataset_version,
                item_id=last.item_id,
                reviewer=who.name,
                seen_decision_id=last.decision_id,
                identity=who,
            )
        except ConflictError as e:
            self.last = None
            return Outcome(
                "conflict",
                f"Not undone: the item changed since your decision. {e.latest.describe()}.",
            )
        except UsageError as e:
            return Outcome("error", str(e))
        except StoreError as e:  # nothing written: the last decision stays undoable
            return Outcome("busy", f"Not undone: {e}. Press Undo again to retry.")
        self._undecided([last.item_id])
        return Outcome(
            "saved", f"Undone: item {last.item_id} is back to {u.new_label} (decision {u.id})."
        )

    def _undo_batch(self, store: ReviewStore, last: LastBatch, who: Identity) -> Outcome:
        try:
            store.undo_many(
                dataset_version=self.dataset_version,
                items=list(last.items),
                reviewer=who.name,
                identity=who,
            )
        except ConflictError as e:
            self.last = None
            return Outcome(
                "conflict",
                f"Not undone: item {e.latest.item_id} changed since the grid decision. "
                f"{e.latest.describe()}. Nothing was undone.",
            )
        except UsageError as e:
            return Outcome("error", str(e))
        except StoreError as e:
            return Outcome("busy", f"Not undone: {e}. Press Undo again to retry.")
        self._undecided([i for i, _ in last.items])
        return Outcome("saved", _undo_grid_message(len(last.items)))


def _undo_grid_message(n: int) -> str:
    return f"Undone: the grid decision on {n} items (one step)."


def label_now(store: ReviewStore, ds: Dataset, item_id: str) -> str:
    """The ``old_label`` of a decision on ``item_id``: its label now (the decision in force), the
    given label when undecided or removed. Reads that item's decisions only, never the whole log."""
    d = store.in_force(ds.content_hash, [item_id]).get(item_id)
    if d is not None and d.action != "remove" and d.new_label is not None:
        return d.new_label
    return str(ds.frame[LABEL].iat[ds.id_to_row[item_id]])


# --------------------------------------------------------------------------- which queue
#: The Review page's modes: a reviewer's own queue, the lead's adjudication queue.
QUEUE_MODE, ADJUDICATE_MODE = "queue", "adjudicate"
ASSIGNMENT_SOURCE, ADJUDICATION_SOURCE = "assignment", "adjudication"


@dataclass(frozen=True)
class QueuePlan:
    """What one person reviews now: ``order`` (ids in review order), the ``source`` stored with
    each decision (``shown["queue"]``), the blind slots they hold (``my_slots``: item -> slot of an
    overlap item), the items never offered to them (``hidden``: held by others in open
    assignments), whether decisions are adjudications, and which items are audit slots."""

    source: str
    order: Sequence[str]
    my_slots: dict[str, int] = field(default_factory=dict)
    hidden: frozenset[str] = frozenset()
    adjudicate: bool = False
    audit: frozenset[str] = frozenset()


def plan_queue(
    identity: Identity,
    *,
    mode: str,
    base_order: Sequence[str],
    base_source: str,
    book: team.AssignmentBook | None = None,
    adjudication: Sequence[str] = (),
    audit: Iterable[str] = (),
) -> QueuePlan:
    """The queue ``identity`` works through.

    ``mode`` :data:`ADJUDICATE_MODE` (a lead only): the disagreements waiting for the lead
    (``adjudication``, from :func:`labelaudit.review.team.adjudication_queue`). Otherwise: the
    person's own items when an open assignment holds some for them (``book``), in the assignment's
    order, their overlap items reviewed blind; else the common queue ``base_order`` without the
    items that open assignments hold for others. ``audit``: audit slots of ``base_order``.

    >>> ana = Identity("ana", role="reviewer")
    >>> plan_queue(ana, mode="queue", base_order=["1", "2"], base_source="ranking").order
    ['1', '2']
    """
    if mode == ADJUDICATE_MODE:
        from labelaudit.review.identity import require_lead

        require_lead(identity, "adjudicate disagreements")
        return QueuePlan(ADJUDICATION_SOURCE, list(adjudication), adjudicate=True)
    if mode != QUEUE_MODE:
        raise UsageError(
            f"unknown review mode {mode!r}; expected {QUEUE_MODE} or {ADJUDICATE_MODE}"
        )
    if book is not None and not book.empty:
        mine = book.slots_of(identity.name)  # names compare by name_key ("Ana" = "ana")
        if len(mine):
            slots = {
                str(r.item_id): int(r.slot) for r in mine.itertuples(index=False) if bool(r.overlap)
            }
            return QueuePlan(
                ASSIGNMENT_SOURCE,
                mine["item_id"].astype(str).tolist(),
                my_slots=slots,
                hidden=book.hidden_from(identity.name),
            )
        held = frozenset(book.slots["item_id"].astype(str))
        return QueuePlan(base_source, base_order, hidden=held, audit=frozenset(audit))
    return QueuePlan(base_source, base_order, audit=frozenset(audit))


def rerank_due(store: ReviewStore, dataset_version: str, *, cutoff: int, every: int) -> bool:
    """True when ``every`` items or more were decided after decision ``cutoff`` (the ranking in
    force's): reads only the decisions since, so a page can ask after every decision."""
    _, touched = store.touched_since(dataset_version, cutoff)
    return len(touched) >= every
