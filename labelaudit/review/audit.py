"""Audit mode: a random, score-stratified share of the queue, and from it an estimate of the errors left.

A ranked review only ever looks where the detectors point, so it cannot say how many label errors
it has not reached. The audit sample can. It works in four steps:

1. **Draw once** (:func:`draw_audit_plan`). The rows still undecided are split into score
   strata by their position in the scan's ranking (default: the top 5 %, 5-15 %, 15-35 %, 35-65 %
   and the rest). A seeded random sample is drawn in each stratum, proportional to its size
   (largest remainders). The sample's presentation order interleaves the strata so that every
   prefix keeps those proportions, and follows a random order within each stratum. The plan is
   stored in the review store (``review_audit_plans`` / ``review_audit_items``).
2. **Interleave** (:func:`audit_slots`). While audit mode is on with share *s*, the next item
   of the ranked queue is an audit item whenever fewer than ``floor(s * (d + 1))`` of the *d*
   ranked-queue decisions since the plan were audit decisions. The item is the first undecided
   one in the plan's order. The reviewer is not told. The decision stores ``shown["audit"] = True``.
3. **Estimate** (:func:`estimate_remaining_errors`), valid whichever queue decided the other rows.
   Rows above the static ranking's first undecided row are all decided, so nothing is left there;
   they and the audit items among them are left out (``n_excluded``). Below it, a queue may have
   decided some rows and not others (the learnt queue picks the likeliest errors of a window), so
   the audited items are *not* a random sample of what is left. They are, one at a time: the audit
   slot takes the first undecided item of the plan's random order, so the item audited at time
   *t* is a uniform draw from the stratum's rows still undecided at *t* (*U_t* of them). The
   errors left now are the errors among those *U_t* rows minus the label changes decided in the
   stratum from *t* on (*F_t*, known). So each audit decision gives ``U_t * y - F_t`` (*y* = 1
   when its label was changed), an unbiased estimate of the stratum's errors left now, whatever
   the other decisions were. The stratum's estimate is their average weighted by ``1 / U_t**2``
   (later draws, from a smaller pool, weigh more); its variance is
   ``sum(w**2 U_t**2 p_t (1 - p_t)) / sum(w)**2`` with ``p_t = (estimate + F_t) / U_t`` (the
   draws' errors are martingale differences, hence uncorrelated). With the static queue only audit
   decisions fall below the first undecided row, and this is about the usual stratified estimate
   ``U * e / n``.
   The total is the sum over strata (shown at least 0; a stratum's share is shown at least 0).
   Its interval is a Jeffreys interval on the error rate of the undecided rows at its effective
   sample size (Korn & Graubard 1998), times the undecided rows (:func:`effective_size_interval`);
   each stratum's the same on its own. A stratum with fewer than :data:`MIN_PER_STRATUM` audited
   items is merged into its neighbour (collapsed strata). Below :data:`MIN_AUDIT_DECISIONS`
   audited items overall there is no estimate, and the ROI projection keeps the noise-matrix
   assumption and says why. ``found`` in the strata table: label changes decided in the stratum
   since the plan.
4. **Label change** means what it means on the ROI page: the decision in force is accept or change.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from labelaudit.dataset import Dataset
from labelaudit.errors import UsageError
from labelaudit.review.learn import static_rank_score
from labelaudit.review.store import ReviewStore, audit_items_table, audit_plans_table

#: Upper edges of the score strata, as shares of the undecided rows in ranking order.
DEFAULT_EDGES = (0.05, 0.15, 0.35, 0.65)
#: Rows drawn into an audit plan (or every undecided row when there are fewer).
DEFAULT_SAMPLE = 1000
#: Share of the queue given to audit items when audit mode is switched on without a share.
DEFAULT_SHARE = 0.05
#: Fewest audited items (outside the part the ranking already covered) before remaining errors are estimated.
MIN_AUDIT_DECISIONS = 30
#: Fewest audited items per stratum; smaller strata are merged into a neighbour.
MIN_PER_STRATUM = 5

STRATA_COLUMNS = [
    "stratum",
    "rank_from",
    "rank_to",
    "rows",
    "undecided",
    "audited",
    "errors",
    "found",
    "rate",
    "rate_low",
    "rate_high",
    "remaining",
    "remaining_low",
    "remaining_high",
]


# --------------------------------------------------------------------------- the plan
@dataclass
class AuditPlan:
    """A stratified audit sample. ``strata``: one row per stratum with ``stratum`` (0 = top),
    ``rank_high`` / ``rank_low`` (the static rank scores it spans, 1 = top of the queue),
    ``rank_from`` / ``rank_to`` (shares of the undecided rows, e.g. 0.05 to 0.15), ``rows``
    (undecided rows in it when drawn) and ``sampled``. ``items``: ``item_id``, ``stratum``,
    ``position`` (0 = the first audit slot takes it), in position order. ``scan_fingerprint``
    identifies the ranking the strata were cut from."""

    cutoff_decision_id: int
    seed: int
    strata: pd.DataFrame
    items: pd.DataFrame
    scan_fingerprint: str
    plan_id: int | None = None
    created_by: str = ""
    created_at: datetime | None = None

    def stratum_of(self, scan_table: pd.DataFrame) -> np.ndarray:
        """Stratum of every row of the scan (by its static rank score), int64 (N,)."""
        rank = static_rank_score(scan_table)
        lows = self.strata["rank_low"].to_numpy(dtype=float)
        # stratum h holds rank scores in (low_h, high_h]; the last stratum reaches down to 0
        out = np.searchsorted(-lows, -rank, side="left")
        return np.minimum(out, len(lows) - 1).astype(np.int64)


def scan_fingerprint(scan_table: pd.DataFrame) -> str:
    """A short hash of the scan's ranking (its score and flag columns)."""
    import hashlib

    score = pd.to_numeric(scan_table["label_issue_score"], errors="coerce").fillna(0).to_numpy()
    h = hashlib.sha256(np.ascontiguousarray(score, dtype=np.float64).tobytes())
    if "is_label_issue" in scan_table:
        h.update(scan_table["is_label_issue"].fillna(False).astype(bool).to_numpy().tobytes())
    return h.hexdigest()[:16]


def draw_audit_plan(
    ds: Dataset,
    scan_table: pd.DataFrame,
    *,
    decided_ids: Any = (),
    cutoff_decision_id: int = 0,
    n_items: int = DEFAULT_SAMPLE,
    edges: tuple[float, ...] = DEFAULT_EDGES,
    seed: int = 0,
) -> AuditPlan:
    """Draw a stratified random audit sample from the undecided rows (pure; see the module doc).

    ``edges``: increasing shares in (0, 1) where the strata end (``(0.05, 0.15)`` gives the top 5 %,
    5-15 % and the rest); ``n_items``: sample size (at most the undecided rows); ``decided_ids``:
    items with a decision in force now (left out); ``cutoff_decision_id``: the newest decision id
    when drawn. Deterministic for a seed.

    >>> plan = draw_audit_plan(ds, res.table, decided_ids=set(current["item_id"]), seed=0)  # doctest: +SKIP
    >>> plan.strata[["stratum", "rows", "sampled"]]                                         # doctest: +SKIP
    """
    edges = tuple(float(e) for e in edges)
    if any(not 0 < e < 1 for e in edges) or list(edges) != sorted(set(edges)):
        raise UsageError(f"audit strata edges must increase strictly within (0, 1), got {edges}")
    if n_items < 1:
        raise UsageError(f"the audit sample needs at least 1 item, got {n_items}")
    if len(scan_table) != ds.n:
        raise UsageError(f"the scan table has {len(scan_table)} rows but the dataset has {ds.n}")
    rng = np.random.default_rng(seed)
    rank = static_rank_score(scan_table)
    ids = ds.ids.astype(str)
    undecided = np.flatnonzero(~np.isin(ids, list(set(map(str, decided_ids)))))
    if not len(undecided):
        raise UsageError("every item is decided already: nothing left to audit")
    order = undecided[np.argsort(-rank[undecided], kind="stable")]  # top of the queue first
    m = len(order)
    cuts = sorted({0, m, *(int(round(e * m)) for e in edges)})
    bounds = [(a, b) for a, b in zip(cuts[:-1], cuts[1:], strict=True) if b > a]
    sizes = np.array([b - a for a, b in bounds], dtype=np.int64)
    n = min(int(n_items), m)
    quota = _largest_remainder(sizes, n)
    strata, picks = [], []
    for h, ((a, b), q) in enumerate(zip(bounds, quota, strict=True)):
        members = order[a:b]
        chosen = rng.permutation(members)[:q]
        picks.append(list(chosen))
        strata.append(
            {
                "stratum": h,
                "rank_high": float(rank[members[0]]),
                "rank_low": float(rank[members[-1]]) if b < m else 0.0,
                "rank_from": a / m,
                "rank_to": b / m,
                "rows": int(b - a),
                "sampled": int(q),
            }
        )
    # Boundaries between strata sit halfway between the last row of one and the first of the next.
    for h in range(len(strata) - 1):
        mid = (strata[h]["rank_low"] + strata[h + 1]["rank_high"]) / 2
        strata[h]["rank_low"] = mid
        strata[h + 1]["rank_high"] = mid
    weights = sizes / sizes.sum()
    taken = np.zeros(len(sizes), dtype=np.int64)
    sequence: list[tuple[str, int]] = []
    for k in range(n):  # largest deficit first: every prefix keeps the proportions
        deficit = (k + 1) * weights - taken
        deficit[taken >= quota] = -np.inf
        h = int(np.argmax(deficit))
        sequence.append((ids[picks[h][taken[h]]], h))
        taken[h] += 1
    items = pd.DataFrame(
        {
            "item_id": [i for i, _ in sequence],
            "stratum": np.array([h for _, h in sequence], dtype=np.int64),
            "position": np.arange(len(sequence), dtype=np.int64),
        }
    )
    return AuditPlan(
        cutoff_decision_id=int(cutoff_decision_id),
        seed=int(seed),
        strata=pd.DataFrame(strata),
        items=items,
        scan_fingerprint=scan_fingerprint(scan_table),
    )


def _largest_remainder(sizes: np.ndarray, n: int) -> np.ndarray:
    """Split ``n`` over groups proportionally to ``sizes`` (Hamilton's method), never above a size."""
    exact = sizes / sizes.sum() * n
    quota = np.minimum(np.floor(exact).astype(np.int64), sizes)
    order = np.argsort(-(exact - quota), kind="stable")
    i = 0
    while quota.sum() < n:
        h = order[i % len(order)]
        if quota[h] < sizes[h]:
            quota[h] += 1
        i += 1
    return quota


# --------------------------------------------------------------------------- storing the plan
def save_audit_plan(
    store: ReviewStore, dataset_version: str, plan: AuditPlan, *, created_by: str
) -> AuditPlan:
    """Store ``plan`` (one transaction) and return it with its ``plan_id``."""
    now = store.clock()
    strata = {"strata": plan.strata.to_dict("records"), "scan_fingerprint": plan.scan_fingerprint}
    with store.engine.begin() as conn:
        plan_id = int(
            conn.execute(
                audit_plans_table.insert()
                .values(
                    dataset_version=dataset_version,
                    cutoff_decision_id=plan.cutoff_decision_id,
                    seed=plan.seed,
                    strata=json.dumps(strata, sort_keys=True),
                    created_by=str(created_by),
                    created_at=now,
                )
                .returning(audit_plans_table.c.plan_id)
            ).scalar_one()
        )
        if len(plan.items):
            conn.execute(
                audit_items_table.insert(),
                [
                    {
                        "plan_id": plan_id,
                        "item_id": str(r.item_id),
                        "dataset_version": dataset_version,
                        "stratum": int(r.stratum),
                        "position": int(r.position),
                    }
                    for r in plan.items.itertuples()
                ],
            )
    plan.plan_id, plan.created_by, plan.created_at = plan_id, str(created_by), now
    return plan


def load_audit_plan(store: ReviewStore, dataset_version: str) -> AuditPlan | None:
    """The newest audit plan of ``dataset_version``, or None when none was drawn."""
    with store.reading() as conn:
        row = conn.execute(
            sa.select(audit_plans_table)
            .where(audit_plans_table.c.dataset_version == dataset_version)
            .order_by(audit_plans_table.c.plan_id.desc())
            .limit(1)
        ).first()
        if row is None:
            return None
        m = row._mapping
        items = conn.execute(
            sa.select(
                audit_items_table.c.item_id,
                audit_items_table.c.stratum,
                audit_items_table.c.position,
            )
            .where(audit_items_table.c.plan_id == m["plan_id"])
            .order_by(audit_items_table.c.position)
        ).all()
    meta = json.loads(m["strata"])
    created = m["created_at"]
    if created is not None and created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    return AuditPlan(
        cutoff_decision_id=int(m["cutoff_decision_id"]),
        seed=int(m["seed"]),
        strata=pd.DataFrame(meta["strata"]),
        items=pd.DataFrame(
            [tuple(r) for r in items], columns=["item_id", "stratum", "position"]
        ).astype({"stratum": np.int64, "position": np.int64}),
        scan_fingerprint=str(meta.get("scan_fingerprint", "")),
        plan_id=int(m["plan_id"]),
        created_by=str(m["created_by"]),
        created_at=created,
    )


# --------------------------------------------------------------------------- interleaving
def audit_slots(
    share: float, n_ranked_decisions: int, n_audit_decisions: int, n: int
) -> np.ndarray:
    """Which of the next ``n`` queue positions are audit slots, bool (n,).

    Position j (0-based) is an audit slot when the audit decisions so far, plus the slots before
    it, are fewer than ``floor(share * (d + j + 1))``, where d = ``n_ranked_decisions`` (ranked-queue
    decisions since the plan, audit ones included) and a = ``n_audit_decisions``.

    >>> audit_slots(0.1, 0, 0, 25).nonzero()[0].tolist()
    [9, 19]
    """
    if not 0 <= share < 1:
        raise UsageError(f"the audit share must be in [0, 1), got {share}")
    out = np.zeros(n, dtype=bool)
    a = int(n_audit_decisions)
    for j in range(n):
        if a < math.floor(share * (n_ranked_decisions + j + 1) + 1e-9):
            out[j] = True
            a += 1
    return out


# --------------------------------------------------------------------------- the estimate
@dataclass
class RemainingErrors:
    """The estimate of label errors still among the undecided rows, from the audit.

    ``total`` (point), ``low`` / ``high`` (95 % interval) are counts of rows; NaN when ``enough``
    is False (then ``reason`` says why). ``strata``: columns :data:`STRATA_COLUMNS`, one row per
    (collapsed) stratum. ``n_audited``: audited items used; ``n_excluded``: audited items left
    out because every row above them in the static ranking is decided now (nothing is left to
    estimate there).
    """

    total: float
    low: float
    high: float
    enough: bool
    reason: str
    n_audited: int
    n_excluded: int
    n_undecided: int
    strata: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=STRATA_COLUMNS))
    level: float = 0.95

    def describe(self) -> str:
        if not self.enough:
            return self.reason
        return (
            f"{self.total:,.0f} label errors estimated among the {self.n_undecided:,} undecided rows "
            f"({self.level:.0%} interval {self.low:,.0f} to {self.high:,.0f}), from {self.n_audited:,} "
            f"audit decisions in {len(self.strata)} score strata"
        )


def estimate_remaining_errors(
    ds: Dataset,
    scan_table: pd.DataFrame,
    outcomes: pd.DataFrame,
    plan: AuditPlan | None,
    *,
    min_total: int = MIN_AUDIT_DECISIONS,
    min_per_stratum: int = MIN_PER_STRATUM,
    level: float = 0.95,
    seed: int = 0,
) -> RemainingErrors:
    """Estimate the label errors left among the undecided rows from the audit decisions.

    ``outcomes``: :func:`labelaudit.review.learn.reviewed_outcomes` (its ``audit``, ``changed``,
    ``decision_id`` and ``review_order`` columns); ``plan``: the audit plan in force. Valid
    whichever queue decided the other rows (static or learnt): see the module doc for the
    estimator. ``seed`` is accepted for a stable signature; the estimate is deterministic.

    >>> est = estimate_remaining_errors(ds, res.table, outcomes, plan)   # doctest: +SKIP
    >>> est.total, est.low, est.high                                     # doctest: +SKIP
    """
    del seed
    n_undecided = ds.n - len(outcomes)
    empty = RemainingErrors(math.nan, math.nan, math.nan, False, "", 0, 0, n_undecided, level=level)
    if plan is None:
        empty.reason = "No audit sample yet: switch audit mode on to estimate the errors left."
        return empty
    if plan.scan_fingerprint and plan.scan_fingerprint != scan_fingerprint(scan_table):
        empty.reason = (
            "The scan changed since the audit sample was drawn: draw a new audit sample for an "
            "estimate on this ranking."
        )
        return empty
    stratum = plan.stratum_of(scan_table)
    d_rows = outcomes["row"].to_numpy(dtype=np.int64)
    d_changed = outcomes["changed"].to_numpy(dtype=bool)
    d_time = outcomes["review_order"].to_numpy(dtype=np.int64)
    before_plan = outcomes["decision_id"].to_numpy(dtype=np.int64) <= plan.cutoff_decision_id
    decided = np.zeros(ds.n, dtype=bool)
    decided[d_rows] = True
    # Rows above the static ranking's first undecided row are all decided: none is left there, so
    # neither they nor the audit items among them enter the estimate.
    order = np.argsort(-static_rank_score(scan_table), kind="stable")
    position = np.empty(ds.n, dtype=np.int64)
    position[order] = np.arange(ds.n)
    frontier = int(position[~decided].min()) if (~decided).any() else ds.n
    live = position >= frontier  # the part of the ranking the estimate is about
    live[d_rows[before_plan]] = False  # decided before the plan was drawn: not in its population
    members = plan.items["item_id"].astype(str).to_numpy()
    is_draw = (
        outcomes["audit"].to_numpy(dtype=bool)
        & np.isin(outcomes["item_id"].astype(str).to_numpy(), members)
        & ~before_plan
    )
    usable = is_draw & live[d_rows]
    n_excluded = int((is_draw & ~usable).sum())
    n_used = int(usable.sum())
    empty.n_audited, empty.n_excluded = n_used, n_excluded
    if n_used < min_total:
        empty.reason = (
            f"Not enough audit decisions for an estimate of the errors left: {n_used} usable "
            f"({n_excluded} more were overtaken by the ranked review); at least {min_total} are needed."
        )
        return empty
    n_strata = len(plan.strata)
    counts = np.bincount(stratum[d_rows[usable]], minlength=n_strata)
    groups = _collapse([[h] for h in range(n_strata)], counts, min_per_stratum)
    recs, total, var_total = [], 0.0, 0.0
    for g in groups:
        in_g = np.isin(stratum, g) & live
        est, var, n, e, found = _depletion_corrected(
            in_g, d_rows, d_changed, d_time, usable & in_g[d_rows], before_plan
        )
        u = int((in_g & ~decided).sum())
        total += est
        var_total += var
        p = min(max(est, 0.0) / u, 1.0) if u else 0.0
        lo, hi = effective_size_interval(p, var / u**2 if u else 0.0, n, level=level)
        part = plan.strata[plan.strata["stratum"].isin(g)]
        recs.append(
            {
                "stratum": "+".join(str(h) for h in g),
                "rank_from": float(part["rank_from"].min()),
                "rank_to": float(part["rank_to"].max()),
                "rows": int(np.isin(stratum, g).sum()),
                "undecided": u,
                "audited": n,
                "errors": e,
                "found": found,
                "rate": p,
                "rate_low": lo,
                "rate_high": hi,
                "remaining": max(est, 0.0),
                "remaining_low": u * lo,
                "remaining_high": u * hi,
            }
        )
    table = pd.DataFrame(recs, columns=STRATA_COLUMNS)
    p_all = min(max(total, 0.0) / n_undecided, 1.0) if n_undecided else 0.0
    low, high = effective_size_interval(
        p_all, var_total / n_undecided**2 if n_undecided else 0.0, n_used, level=level
    )
    return RemainingErrors(
        total=max(total, 0.0),
        low=n_undecided * low,
        high=n_undecided * high,
        enough=True,
        reason="",
        n_audited=n_used,
        n_excluded=n_excluded,
        n_undecided=n_undecided,
        strata=table,
        level=level,
    )


def _depletion_corrected(
    population: np.ndarray,
    rows: np.ndarray,
    changed: np.ndarray,
    when: np.ndarray,
    draws: np.ndarray,
    before_plan: np.ndarray,
) -> tuple[float, float, int, int, int]:
    """The depletion-corrected estimate of the errors left in one stratum (see the module doc).

    ``population``: bool (N,), the stratum's rows the estimate is about; ``rows`` / ``changed`` /
    ``when`` (review order) / ``draws`` (bool: a usable audit decision) / ``before_plan``: one entry
    per decision in force. Returns ``(estimate, variance, audited, label changes among them,
    label changes found in the stratum since the plan)``.
    """
    size = int(population.sum())
    mine = population[rows] & ~before_plan
    t_mine, c_mine = np.sort(when[mine]), changed[mine][np.argsort(when[mine], kind="stable")]
    # label changes decided at or after each time: suffix sums over the stratum's decisions
    after = np.concatenate([np.cumsum(c_mine[::-1])[::-1], [0]])
    t_draw, y = when[draws], changed[draws].astype(float)
    k = np.searchsorted(t_mine, t_draw, side="left")  # the stratum's decisions before each draw
    pool = (size - k).astype(float)  # undecided rows of the stratum just before each draw
    later = after[k].astype(float)  # label changes decided from that draw on (it included)
    x = pool * y - later
    w = 1.0 / pool**2
    est = float((w * x).sum() / w.sum())
    rate = np.clip((max(est, 0.0) + later) / pool, 0.0, 1.0)
    var = float((w**2 * pool**2 * rate * (1 - rate)).sum() / w.sum() ** 2)
    return est, var, int(draws.sum()), int(y.sum()), int(c_mine.sum())


def effective_size_interval(
    rate: float, variance: float, n: int, *, level: float = 0.95
) -> tuple[float, float]:
    """A Jeffreys interval for an error rate estimated with ``variance`` from ``n`` audited items,
    at the effective sample size ``n_eff = rate (1 - rate) / variance`` (at most ``n``; Korn &
    Graubard 1998's method for small counts from survey data, with the Jeffreys instead of the
    Clopper-Pearson interval). With no error seen (rate 0) or no variance, ``n_eff`` is ``n``.

    >>> [round(v, 4) for v in effective_size_interval(0.0, 0.0, 60)]
    [0.0, 0.0408]
    """
    from scipy.stats import beta

    if n <= 0:
        return (0.0, 1.0)
    p = min(max(float(rate), 0.0), 1.0)
    n_eff = float(n) if variance <= 0 or p in (0.0, 1.0) else min(p * (1 - p) / variance, float(n))
    x = p * n_eff
    z = (1 - level) / 2
    low = 0.0 if x <= 0 else float(beta.ppf(z, x + 0.5, n_eff - x + 0.5))
    high = 1.0 if x >= n_eff else float(beta.ppf(1 - z, x + 0.5, n_eff - x + 0.5))
    return (low, high)


def _collapse(groups: list[list[int]], counts: np.ndarray, minimum: int) -> list[list[int]]:
    """Merge strata with fewer than ``minimum`` sampled items into the next lower one (the last into
    the one above), until every group has enough or one group is left."""
    groups = [list(g) for g in groups]
    while len(groups) > 1:
        sizes = [int(counts[g].sum()) for g in groups]
        small = [i for i, s in enumerate(sizes) if s < minimum]
        if not small:
            break
        i = small[0]
        j = i + 1 if i + 1 < len(groups) else i - 1
        lo, hi = sorted((i, j))
        groups[lo] = groups[lo] + groups[hi]
        del groups[hi]
    return groups
