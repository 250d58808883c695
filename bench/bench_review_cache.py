"""Benchmark: ``ReviewStore.current()`` and ``latest_decision_ids()`` at 100,000 decisions, before
and after the folded log (the store keeps each version's log folded per item and reads only the rows
added since the previous call), on SQLite and PostgreSQL.

Run: ``.venv/bin/python -m bench.bench_review_cache [--n 100000] [--pg-url URL]
[--out bench/results/review_cache.md]``

Without ``--pg-url`` (or LABELAUDIT_TEST_PG_URL) a throwaway PostgreSQL is started on loopback with
scripts/pg_test_server.sh and stopped afterwards. The version is filled by bulk INSERTs of
decisions, identities and heads (a fixture: how the rows got there does not change the reads), 90%
of the items with one decision and 10% with a second. Timed, each the median of 5 calls:

- *before*: the code as it was (``current()``: read every decision of the version and fold them;
  ``latest_decision_ids()``: read every head row of the version), kept here as the peer;
- *cold*: a new store's first call (one full read into the fold);
- *rerun, nothing new*: the next call (what a page rerun pays);
- *after 1 new decision*: a decision recorded, then the call (the fold reads one row);
- ``touched_since(newest - 10)`` (the live queue, every click) with and without the
  ``(dataset_version, decision_id)`` index.

Each figure is checked: the folded result equals a fresh store's full read.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
COMMAND = ".venv/bin/python -m bench.bench_review_cache"
REPEAT = 5


def fill(store, version: str, n: int) -> None:
    """``n`` decisions in ``version``: items 0..0.9n-1 once (change), the first 0.1n a second time
    (keep); with their identities and heads, in bulk."""
    from labelaudit.review.store import (
        decision_identities_table,
        decisions_table,
        heads_table,
    )

    m = n - n // 10
    t0 = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    rows = [
        dict(
            dataset_version=version,
            item_id=f"i{i % m}",
            reviewer=f"reviewer{i % 10}",
            decided_at=t0 + dt.timedelta(milliseconds=i),
            action="change" if i < m else "keep",
            old_label="a",
            new_label="b",
            comment="",
            shown='{"queue": "bench"}',
            undoes_id=None,
        )
        for i in range(n)
    ]
    latest: dict[str, int] = {}
    with store.engine.begin() as conn:
        for start in range(0, n, 5000):
            chunk = rows[start : start + 5000]
            ids = [
                int(r[0])
                for r in conn.execute(
                    decisions_table.insert().returning(
                        decisions_table.c.decision_id, sort_by_parameter_order=True
                    ),
                    chunk,
                ).all()
            ]
            conn.execute(
                decision_identities_table.insert(),
                [
                    dict(
                        decision_id=i,
                        dataset_version=version,
                        auth="typed",
                        subject="",
                        role="reviewer",
                        capacity="single",
                    )
                    for i in ids
                ],
            )
            for r, i in zip(chunk, ids, strict=True):
                latest[r["item_id"]] = i
        heads = [
            dict(dataset_version=version, item_id=k, latest_decision_id=v)
            for k, v in latest.items()
        ]
        for start in range(0, len(heads), 5000):
            conn.execute(heads_table.insert(), heads[start : start + 5000])


def current_before(store, version: str) -> pd.DataFrame:
    """``ReviewStore.current()`` as it was before the folded log (the peer): every decision of
    the version read and folded on each call."""
    from labelaudit.review.store import CURRENT_COLUMNS, decisions_table

    c = decisions_table.c
    with store.reading() as conn:
        rows = conn.execute(
            sa.select(
                c.item_id,
                c.action,
                c.new_label,
                c.reviewer,
                c.decided_at,
                c.decision_id,
                c.undoes_id,
            )
            .where(c.dataset_version == version)
            .order_by(c.decision_id)
        ).all()
    stacks: dict[str, list[tuple]] = {}
    latest: dict[str, int] = {}
    for r in rows:
        item, action, undoes = r[0], r[1], r[6]
        stack = stacks.setdefault(item, [])
        if action == "undo":
            stacks[item] = [d for d in stack if d[5] != undoes]
        else:
            stack.append(tuple(r))
        latest[item] = r[5]
    out = [(*stack[-1][:6], latest[item]) for item, stack in stacks.items() if stack]
    df = pd.DataFrame(out, columns=CURRENT_COLUMNS)
    df["decided_at"] = pd.to_datetime(df["decided_at"], utc=True)
    df["final_label"] = df["final_label"].astype(object).where(df["final_label"].notna(), None)
    return df.sort_values("decision_id", kind="stable").reset_index(drop=True)


def latest_before(store, version: str) -> dict[str, int]:
    """``latest_decision_ids()`` as it was: every head row of the version."""
    from labelaudit.review.store import heads_table

    h = heads_table.c
    with store.reading() as conn:
        rows = conn.execute(
            sa.select(h.item_id, h.latest_decision_id).where(
                (h.dataset_version == version) & (h.latest_decision_id > 0)
            )
        ).all()
    return {r[0]: int(r[1]) for r in rows}


def _median(fn, repeat: int = REPEAT) -> float:
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return float(np.median(ts))


def _decide(store, version: str, item: str) -> None:
    store.record(
        dataset_version=version,
        item_id=item,
        reviewer="bench",
        action="change",
        old_label="a",
        new_label="c",
        seen_decision_id=store.latest_decision_id(version, item),
    )


def bench_backend(url: str, n: int) -> dict:
    from labelaudit.review.store import ReviewStore, decisions_table

    store = ReviewStore(url)
    version = uuid.uuid4().hex[:20]
    t = time.perf_counter()
    fill(store, version, n)
    fill_s = time.perf_counter() - t
    out: dict = {"n": n, "fill_s": fill_s, "load_start": os.getloadavg()[0]}
    out["current_before"] = _median(lambda: current_before(store, version))
    out["latest_before"] = _median(lambda: latest_before(store, version))

    def cold(what: str) -> float:
        ts = []
        for _ in range(3):
            fresh = ReviewStore(url, read_only=True)
            t = time.perf_counter()
            getattr(fresh, what)(version)
            ts.append(time.perf_counter() - t)
            fresh.close()
        return float(np.median(ts))

    out["current_cold"] = cold("current")
    out["latest_cold"] = cold("latest_decision_ids")
    store.current(version)
    out["current_rerun"] = _median(lambda: store.current(version))
    out["latest_rerun"] = _median(lambda: store.latest_decision_ids(version))
    ts_cur, ts_lat = [], []
    for k in range(REPEAT):
        _decide(store, version, f"i{k}")
        t = time.perf_counter()
        store.current(version)
        ts_cur.append(time.perf_counter() - t)
        _decide(store, version, f"i{k + REPEAT}")
        t = time.perf_counter()
        store.latest_decision_ids(version)
        ts_lat.append(time.perf_counter() - t)
    out["current_one_new"] = float(np.median(ts_cur))
    out["latest_one_new"] = float(np.median(ts_lat))
    # undo one decision, then the check against a full read
    store.undo(
        dataset_version=version,
        item_id="i0",
        reviewer="bench",
        seen_decision_id=store.latest_decision_id(version, "i0"),
    )
    warm_cur, warm_lat = store.current(version), store.latest_decision_ids(version)
    fresh = ReviewStore(url, read_only=True)
    out["equal"] = bool(
        warm_cur.equals(fresh.current(version))
        and warm_cur.equals(current_before(store, version))
        and warm_lat == latest_before(store, version)
    )
    fresh.close()
    newest = store.newest_decision_id()
    out["touched_with_index"] = _median(lambda: store.touched_since(version, newest - 10))
    index = next(
        ix for ix in decisions_table.indexes if ix.name == "ix_review_decisions_version_id"
    )
    with store.engine.begin() as conn:
        index.drop(conn)
    try:
        out["touched_without_index"] = _median(lambda: store.touched_since(version, newest - 10))
    finally:
        with store.engine.begin() as conn:
            index.create(conn)
    out["load_end"] = os.getloadavg()[0]
    store.close()
    return out


def report(results: dict[str, dict], args: argparse.Namespace) -> str:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Review store: the folded log at 100,000 decisions (issue 17 follow-up)",
        "",
        f"Command: `{COMMAND} --n {args.n}` (PostgreSQL: a throwaway server on loopback from "
        "scripts/pg_test_server.sh, default settings, fsync on).",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"SQLAlchemy {sa.__version__}; {now}; load average (1 min) per database below.",
        "",
        "One dataset version holding the decisions (90% of the items decided once, 10% twice). "
        "*before* = the code before this change, in the same run (every decision / head of the "
        "version read on each call); *cold* = a new store's first call (one full read into the "
        "fold); *rerun* = the next call with nothing new (a page rerun); *1 new* = a decision "
        "recorded, then the call. Median of 5 calls (cold: of 3). *equal*: the folded result equals "
        "a full read after the decisions and an undo.",
        "",
        "| database | decisions | call | before ms | cold ms | rerun ms | 1 new ms | before / rerun "
        "| before / 1 new | equal | load start / end |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for name, r in results.items():
        for call, key in (("current()", "current"), ("latest_decision_ids()", "latest")):
            b, c, w, o = (r[f"{key}_{s}"] for s in ("before", "cold", "rerun", "one_new"))
            lines.append(
                f"| {name} | {r['n']:,} | {call} | {b * 1e3:.1f} | {c * 1e3:.1f} | {w * 1e3:.1f} | "
                f"{o * 1e3:.1f} | {b / w:.0f} | {b / o:.0f} | {'yes' if r['equal'] else 'NO'} | "
                f"{r['load_start']:.1f} / {r['load_end']:.1f} |"
            )
    lines += [
        "",
        "`touched_since(newest - 10)` (what the live queue reads on every click), ms, median of 5:",
        "",
        "| database | decisions | without the (dataset_version, decision_id) index | with it | ratio |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        a, b = r["touched_without_index"], r["touched_with_index"]
        lines.append(f"| {name} | {r['n']:,} | {a * 1e3:.1f} | {b * 1e3:.1f} | {a / b:.0f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--pg-url", default=os.environ.get("LABELAUDIT_TEST_PG_URL"))
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "review_cache.md"))
    args = ap.parse_args(argv)
    from bench.bench_review import start_pg

    pg_dir = None
    pg_url = args.pg_url
    if not pg_url:
        pg_url, pg_dir = start_pg()
    tmp = tempfile.mkdtemp(prefix="bench-review-cache-")
    results = {}
    try:
        for name, url in (("SQLite", f"sqlite:///{tmp}/review.sqlite"), ("PostgreSQL", pg_url)):
            print(f"{name}: {args.n:,} decisions", flush=True)
            results[name] = bench_backend(url, args.n)
            print(name, results[name], flush=True)
    finally:
        if pg_dir:
            subprocess.run(
                [str(ROOT / "scripts" / "pg_test_server.sh"), "stop", pg_dir], check=False
            )
    text = report(results, args)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text, encoding="utf-8")
    print(text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
