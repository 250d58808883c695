"""Load test of review as a team: R simulated reviewers (processes) each deciding ~M assigned items
against PostgreSQL, through the same store and queue logic as the Review page.

Run: ``.venv/bin/python -m bench.bench_team_load [--reviewers 10] [--per-reviewer 1000]
[--overlap 0.1] [--pg-url URL] [--out bench/results/team_load.md]``

Without ``--pg-url`` (or LABELAUDIT_TEST_PG_URL) a throwaway PostgreSQL is started on loopback with
scripts/pg_test_server.sh and stopped afterwards. A lead creates one assignment over the items with
an overlap share reviewed blind by two reviewers; then every reviewer, in its own process, runs the
page's loop: :class:`~labelaudit.review.live.LiveQueue` picks the next item,
:class:`~labelaudit.review.session.ReviewSession` shows and decides it (a blind review on overlap
items), the live queue reads the new decisions. Latency = one decision round trip (decide, refresh,
pick the next). Afterwards the log is checked: every single item has exactly one decision, every
overlap item exactly one blind review per slot and then a consensus or a place in the adjudication
queue; nothing lost, nothing duplicated.
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing as mp
import os
import platform
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
COMMAND = ".venv/bin/python -m bench.bench_team_load"
ACTIONS = ("keep", "change", "keep", "ambiguous")


def dataset(n: int, k: int = 10):
    from labelaudit.io import load_dataset

    classes = [f"class_{j}" for j in range(k)]
    df = pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(n)],
            "text": [f"message {i}" for i in range(n)],
            "label": [classes[i % k] for i in range(n)],
        }
    )
    return load_dataset(df)


def review_as(url: str, n: int, name: str, seed: int) -> dict:
    """One reviewer's loop until their queue is empty; per-decision latencies and outcome counts."""
    from labelaudit.review import team
    from labelaudit.review.identity import Identity
    from labelaudit.review.live import LiveQueue
    from labelaudit.review.queue import ItemEvidence
    from labelaudit.review.session import QUEUE_MODE, ReviewSession, plan_queue
    from labelaudit.review.store import ReviewStore

    ds = dataset(n)
    h = ds.content_hash
    store = ReviewStore(url)
    who = Identity(name, auth="typed", role="reviewer")
    book = team.assignment_book(store, h)
    plan = plan_queue(
        who,
        mode=QUEUE_MODE,
        base_order=ds.ids.astype(str).tolist(),
        base_source="ranking",
        book=book,
    )
    live = LiveQueue.start(store, h, plan.order, my_slots=plan.my_slots, hidden=plan.hidden)
    session = ReviewSession(h)
    rng = np.random.default_rng(seed)
    lat: list[float] = []
    kinds: dict[str, int] = {}
    item = live.pick(store, session)
    while item is not None:
        row = ds.id_to_row[item]
        given = str(ds.frame["label"].iat[row])
        other = ds.classes[(ds.classes.index(given) + 1) % ds.k]
        ev = ItemEvidence(item, row, str(ds.texts[row]), given, "", suggestions=[(other, 0.6)])
        t = time.perf_counter()
        session.show(
            store, ev, plan.source, slot=book.slot_of(item, name), held_by=book.holders(item)
        )
        action = ACTIONS[int(rng.integers(len(ACTIONS)))]
        out = session.decide(
            store,
            ds,
            reviewer=name,
            identity=who,
            action=action,
            new_label=other if action == "change" else None,
        )
        kind = out.kind if out is not None else "none"
        kinds[kind] = kinds.get(kind, 0) + 1
        if kind != "saved":
            session.skip(item)  # never loop on one item
        live.refresh(store)
        item = live.pick(store, session)
        lat.append(time.perf_counter() - t)
    store.close()
    return {"name": name, "latencies": lat, "kinds": kinds, "n_items": len(plan.order)}


def _worker(args: tuple) -> dict:
    return review_as(*args)


@dataclass
class LoadResult:
    reviewers: int
    items: int
    overlap_items: int
    reviews: int
    seconds: float
    per_second: float
    p50_ms: float
    p95_ms: float
    lost: int
    duplicated: int
    not_saved: int
    consensus: int
    waiting_for_lead: int
    #: The folded log under the concurrent writers: a watcher's store called current() and
    #: latest_decision_ids() throughout the run; consistent = both equal a fresh store's full
    #: read at the end. repairs = reads that found a decision committed after a higher id.
    cache_consistent: bool = False
    cache_reads: int = 0
    cache_repairs: int = 0


def run_load(
    url: str, *, reviewers: int, per_reviewer: int, overlap: float, processes: bool = True
) -> LoadResult:
    """Create the assignment, run every reviewer at once, check the log. ``processes`` False runs
    them in threads (for a quick test)."""
    from labelaudit.review import team
    from labelaudit.review.identity import Identity
    from labelaudit.review.store import ReviewStore

    n_items = int(round(reviewers * per_reviewer / (1 + overlap)))
    ds = dataset(n_items)
    h = ds.content_hash
    store = ReviewStore(url)
    names = [f"reviewer{j:02d}" for j in range(reviewers)]
    a = team.create_assignment(
        store,
        dataset_version=h,
        item_ids=ds.ids.astype(str).tolist(),
        reviewers=names,
        overlap_share=overlap,
        lead=Identity("lead", role="lead"),
    )
    jobs = [(url, n_items, name, j) for j, name in enumerate(names)]
    watcher = ReviewStore(url)
    stop = threading.Event()

    def watch() -> None:  # a page that rereads current() while the team decides
        while not stop.is_set():
            watcher.current(h)
            watcher.latest_decision_ids(h)
            stop.wait(0.05)

    watching = threading.Thread(target=watch, daemon=True)
    watching.start()
    t = time.perf_counter()
    try:
        if processes:
            with mp.get_context("spawn").Pool(reviewers) as pool:
                results = pool.map(_worker, jobs)
        else:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(reviewers) as ex:
                results = list(ex.map(_worker, jobs))
    finally:
        stop.set()
        watching.join()
    seconds = time.perf_counter() - t
    fresh = ReviewStore(url, read_only=True)
    cache_consistent = bool(
        watcher.current(h).equals(fresh.current(h))
        and watcher.latest_decision_ids(h) == fresh.latest_decision_ids(h)
    )
    fold = watcher._folds[h]
    cache_reads, cache_repairs = fold.refreshes, fold.repairs
    fresh.close()
    watcher.close()
    lat = np.concatenate([np.asarray(r["latencies"]) for r in results])
    saved = sum(r["kinds"].get("saved", 0) for r in results)

    # the checks: nothing lost, nothing duplicated
    book = team.assignment_book(store, h)
    slots = book.slots
    single = set(slots.loc[~slots["overlap"], "item_id"])
    pairs = team.double_reviews(store, h)
    log = store.log(h)
    per_item = log.groupby("item_id").size() if len(log) else pd.Series(dtype=int)
    dup_main = int((per_item > 1).sum())
    lost_single = len(single - set(log["item_id"]))
    incomplete = int(pairs[["rating_a", "rating_b"]].isna().any(axis=1).sum())
    from labelaudit.review.store import blind_decisions_table

    with store.engine.connect() as conn:
        import sqlalchemy as sa

        b = blind_decisions_table.c
        blind = pd.DataFrame(
            conn.execute(sa.select(b.item_id, b.slot).where(b.dataset_version == h)).all(),
            columns=["item_id", "slot"],
        )
    dup_blind = int((blind.groupby(["item_id", "slot"]).size() > 1).sum()) if len(blind) else 0
    store.close()
    return LoadResult(
        reviewers=reviewers,
        items=a.n_items,
        overlap_items=a.n_overlap,
        reviews=saved,
        seconds=seconds,
        per_second=saved / seconds,
        p50_ms=float(np.percentile(lat, 50) * 1000) if len(lat) else float("nan"),
        p95_ms=float(np.percentile(lat, 95) * 1000) if len(lat) else float("nan"),
        lost=lost_single + incomplete,
        duplicated=dup_main + dup_blind,
        not_saved=sum(sum(v for k, v in r["kinds"].items() if k != "saved") for r in results),
        consensus=int((pairs["status"] == "agreed").sum()),
        waiting_for_lead=int((pairs["status"] == "disagreed").sum()),
        cache_consistent=cache_consistent,
        cache_reads=cache_reads,
        cache_repairs=cache_repairs,
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reviewers", type=int, default=10)
    ap.add_argument("--per-reviewer", type=int, default=1000)
    ap.add_argument("--overlap", type=float, default=0.1)
    ap.add_argument("--pg-url", default=os.environ.get("LABELAUDIT_TEST_PG_URL"))
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "team_load.md"))
    args = ap.parse_args(argv)
    from bench.bench_review import start_pg

    pg_dir = None
    url = args.pg_url
    if not url:
        url, pg_dir = start_pg()
    load = os.getloadavg()[0]
    try:
        r = run_load(
            url, reviewers=args.reviewers, per_reviewer=args.per_reviewer, overlap=args.overlap
        )
    finally:
        if pg_dir:
            subprocess.run(
                [str(ROOT / "scripts" / "pg_test_server.sh"), "stop", pg_dir], check=False
            )
    print(r)
    lines = [
        "# Review as a team: load test against PostgreSQL (issue 18)",
        "",
        f"Command: `{COMMAND} --reviewers {args.reviewers} --per-reviewer {args.per_reviewer} "
        f"--overlap {args.overlap}` (a throwaway PostgreSQL on loopback from scripts/pg_test_server.sh, "
        "default settings, fsync on).",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{dt.date.today().isoformat()}; load average (1 min) {load:.1f} at the start, "
        f"{os.getloadavg()[0]:.1f} at the end.",
        "",
        f"One assignment of {r.items:,} items for {r.reviewers} reviewers, {r.overlap_items:,} of them "
        "reviewed twice, blind. Every reviewer runs in its own process the Review page's loop (LiveQueue "
        "pick, ReviewSession show + decide, LiveQueue refresh), all at once. Latency = one decision "
        "round trip.",
        "",
        "| reviewers | reviews saved | wall s | reviews/s | p50 ms | p95 ms | lost | duplicated | not saved (refused/conflict) | consensus | to the lead |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {r.reviewers} | {r.reviews:,} | {r.seconds:.1f} | {r.per_second:.1f} | {r.p50_ms:.1f} | "
        f"{r.p95_ms:.1f} | {r.lost} | {r.duplicated} | {r.not_saved} | {r.consensus:,} | "
        f"{r.waiting_for_lead:,} |",
        "",
        "The folded log under these writers: a watcher in the main process called `current()` and "
        f"`latest_decision_ids()` every 50 ms during the run ({r.cache_reads:,} folded reads, "
        f"{r.cache_repairs:,} of them found a decision committed after a higher id and folded its "
        "item again); at the end both equal a fresh store's full read: "
        f"**{'yes' if r.cache_consistent else 'NO'}**.",
    ]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
