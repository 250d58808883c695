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
3. **Estimate** (:func:`estimate_remaining_errors`). In each stratum the audited items form a
   random sample of the stratum's items that the ranked review has not taken. Audited items the
   ranking in force would already have shown are left out of the sample, because the ranked
   review would have decided them. From *e* label changes among *n* audited items, the stratum's
   *U* undecided items hold about ``U * e / n`` errors, with a Jeffreys interval on its rate. The
   total's interval is a Jeffreys interval on the stratified error rate at its effective sample
   size (Korn & Graubard 1998), times the undecided rows (:func:`stratified_interval`). A stratum
   with fewer than :data:`MIN_PER_STRATUM` audited items is merged into its neighbour (collapsed
   strata). Below :data:`MIN_AUDIT_DECISIONS` audited items overall there is no estimate, and the
   ROI projection keeps the noise-matrix assumption and says why.
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
    out because the ranking in force would already have shown them.
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
    order: np.ndarray | None = None,
    min_total: int = MIN_AUDIT_DECISIONS,
    min_per_stratum: int = MIN_PER_STRATUM,
    level: float = 0.95,
    seed: int = 0,
) -> RemainingErrors:
    """Estimate the label errors left among the undecided rows from the audit decisions.

    ``outcomes``: :func:`labelaudit.review.learn.reviewed_outcomes` (its ``audit`` and ``changed``
    columns); ``plan``: the audit plan in force; ``order``: every row in the order of the ranking
    in force (:func:`labelaudit.review.learn.ranked_rows`; default the static order), used to
    leave out audited items the ranked review would already have reached. See the module doc for
    the estimator. Deterministic for a seed.

    >>> est = estimate_remaining_errors(ds, res.table, outcomes, plan)   # doctest: +SKIP
    >>> est.total, est.low, est.high                                     # doctest: +SKIP
    """
    from scipy.stats import beta

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
    decided = np.zeros(ds.n, dtype=bool)
    decided[outcomes["row"].to_numpy(dtype=np.int64)] = True
    members = set(plan.items["item_id"].astype(str))
    aud = outcomes[outcomes["audit"].to_numpy(dtype=bool) & outcomes["item_id"].isin(members)]
    rows = aud["row"].to_numpy(dtype=np.int64)
    changed = aud["changed"].to_numpy(dtype=bool)
    # Audited items that the ranking in force puts before its first undecided row would have
    # been decided by the ranked review: they are not a sample of what it left.
    order = (
        order if order is not None else np.argsort(-static_rank_score(scan_table), kind="stable")
    )
    position = np.empty(ds.n, dtype=np.int64)
    position[np.asarray(order, dtype=np.int64)] = np.arange(ds.n)
    frontier = position[~decided].min() if (~decided).any() else ds.n
    keep = position[rows] > frontier
    n_excluded = int((~keep).sum())
    rows, changed = rows[keep], changed[keep]
    empty.n_audited, empty.n_excluded = len(rows), n_excluded
    if len(rows) < min_total:
        empty.reason = (
            f"Not enough audit decisions for an estimate of the errors left: {len(rows)} usable "
            f"({n_excluded} more were overtaken by the ranked review); at least {min_total} are needed."
        )
        return empty
    n_strata = len(plan.strata)
    groups = [[h] for h in range(n_strata)]
    counts = np.bincount(stratum[rows], minlength=n_strata)
    groups = _collapse(groups, counts, min_per_stratum)
    recs = []
    z = (1 - level) / 2
    for g in groups:
        in_g = np.isin(stratum, g)
        u = int((in_g & ~decided).sum())
        s = np.isin(stratum[rows], g)
        n, e = int(s.sum()), int(changed[s].sum())
        a, b = e + 0.5, n - e + 0.5
        part = plan.strata[plan.strata["stratum"].isin(g)]
        recs.append(
            {
                "stratum": "+".join(str(h) for h in g),
                "rank_from": float(part["rank_from"].min()),
                "rank_to": float(part["rank_to"].max()),
                "rows": int(in_g.sum()),
                "undecided": u,
                "audited": n,
                "errors": e,
                "rate": e / n,
                "rate_low": float(beta.ppf(z, a, b)),
                "rate_high": float(beta.ppf(1 - z, a, b)),
                "remaining": u * e / n,
                "remaining_low": u * float(beta.ppf(z, a, b)),
                "remaining_high": u * float(beta.ppf(1 - z, a, b)),
            }
        )
    table = pd.DataFrame(recs, columns=STRATA_COLUMNS)
    low, high = stratified_interval(
        table["undecided"].to_numpy(dtype=float),
        table["audited"].to_numpy(dtype=float),
        table["errors"].to_numpy(dtype=float),
        level=level,
    )
    return RemainingErrors(
        total=float(table["remaining"].sum()),
        low=low,
        high=high,
        enough=True,
        reason="",
        n_audited=len(rows),
        n_excluded=n_excluded,
        n_undecided=n_undecided,
        strata=table,
        level=level,
    )


def stratified_interval(
    undecided: np.ndarray, audited: np.ndarray, errors: np.ndarray, *, level: float = 0.95
) -> tuple[float, float]:
    """Interval for the total errors among the undecided rows from a stratified sample.

    The stratified error rate ``p = sum(W_h e_h / n_h)`` (W_h = the stratum's share of the undecided
    rows) gets a Jeffreys interval at its effective sample size ``n_eff = p (1 - p) / Var(p)``,
    at most the number audited (Korn & Graubard 1998's method for small counts from survey data,
    with the Jeffreys instead of the Clopper-Pearson interval). The total is the undecided count
    times it. With no error seen, ``n_eff`` is the number audited.

    >>> [round(v) for v in stratified_interval(np.array([500, 1500]), np.array([10, 30]), np.array([2, 1]))]
    [52, 245]
    """
    from scipy.stats import beta

    u = float(undecided.sum())
    if u <= 0:
        return (0.0, 0.0)
    w = undecided / u
    rate = np.divide(errors, audited, out=np.zeros(len(w)), where=audited > 0)
    p = float((w * rate).sum())
    var = float((w**2 * rate * (1 - rate) / np.maximum(audited - 1, 1)).sum())
    n_total = float(audited.sum())
    n_eff = n_total if var <= 0 or p in (0.0, 1.0) else min(p * (1 - p) / var, n_total)
    x = p * n_eff
    z = (1 - level) / 2
    low = 0.0 if x <= 0 else float(beta.ppf(z, x + 0.5, n_eff - x + 0.5))
    high = 1.0 if x >= n_eff else float(beta.ppf(1 - z, x + 0.5, n_eff - x + 0.5))
    return (u * low, u * high)


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
