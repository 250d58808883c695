"""Benchmark of the review store and the export.

Run: ``.venv/bin/python -m bench.bench_review [--pg-url URL] [--n 500] [--out bench/results/review.md]``

Without ``--pg-url`` (or LABELAUDIT_TEST_PG_URL) a throwaway PostgreSQL is started on loopback with
scripts/pg_test_server.sh and stopped afterwards.

1. write: sequential ``ReviewStore.record`` (check-and-insert in one locked transaction, committed
   on return) against the peer "plain INSERT, one transaction per row" on the same database: the price
   of the conflict check. SQLite (WAL, synchronous=FULL) and PostgreSQL.
2. contention: 4 processes decide the same items at once: exactly one decision per item must win.
3. read/export: ``current()`` over 10,000 decisions, and the BANKING77 export (13,083 rows,
   1,000 decisions) as CSV and Parquet.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing as mp
import os
import platform
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_data" / "banking77"
COMMAND = ".venv/bin/python -m bench.bench_review"


def _timed_records(store, version: str, n: int) -> np.ndarray:
    lat = np.empty(n)
    for i in range(n):
        t = time.perf_counter()
        store.record(
            dataset_version=version,
            item_id=str(i),
            reviewer="bench",
            action="change",
            old_label="a",
            new_label="b",
            shown={"score": 0.5, "queue": "bench"},
            seen_decision_id=None,
        )
        lat[i] = time.perf_counter() - t
    return lat


def _timed_plain_inserts(store, version: str, n: int) -> np.ndarray:
    from labelaudit.review.store import decisions_table

    lat = np.empty(n)
    for i in range(n):
        t = time.perf_counter()
        with store.engine.begin() as conn:
            conn.execute(
                decisions_table.insert().values(
                    dataset_version=version,
                    item_id=str(i),
                    reviewer="bench",
                    action="change",
                    old_label="a",
                    new_label="b",
                    comment="",
                    shown=json.dumps({"score": 0.5, "queue": "bench"}),
                    decided_at=dt.datetime.now(dt.UTC),
                )
            )
        lat[i] = time.perf_counter() - t
    return lat


def bench_write(url: str, n: int) -> dict:
    from labelaudit.review.store import ReviewStore

    store = ReviewStore(url)
    _timed_records(store, uuid.uuid4().hex[:20], 20)  # warm the pool
    ours = _timed_records(store, uuid.uuid4().hex[:20], n)
    plain = _timed_plain_inserts(store, uuid.uuid4().hex[:20], n)
    store.close()
    return {
        "n": n,
        "ours_per_s": n / ours.sum(),
        "ours_p50_ms": 1e3 * np.median(ours),
        "ours_p95_ms": 1e3 * np.quantile(ours, 0.95),
        "plain_per_s": n / plain.sum(),
        "plain_p50_ms": 1e3 * np.median(plain),
    }


def _contender(url: str, version: str, items: int, barrier, out) -> None:
    from labelaudit.review.store import ConflictError, ReviewStore

    store = ReviewStore(url)
    won = lost = 0
    barrier.wait()
    started = time.perf_counter()
    for i in range(items):
        try:
            store.record(
                dataset_version=version,
                item_id=str(i),
                reviewer=f"p{os.getpid()}",
                action="keep",
                old_label="a",
                new_label=None,
                seen_decision_id=None,
            )
            won += 1
        except ConflictError:
            lost += 1
    out.put((won, lost, time.perf_counter() - started))
    store.close()


def bench_contention(url: str, procs: int = 4, items: int = 100) -> dict:
    from labelaudit.review.store import ReviewStore

    ctx = mp.get_context("spawn")
    version = uuid.uuid4().hex[:20]
    barrier, out = ctx.Barrier(procs), ctx.Queue()
    ps = [
        ctx.Process(target=_contender, args=(url, version, items, barrier, out))
        for _ in range(procs)
    ]
    for p in ps:
        p.start()
    results = [out.get(timeout=600) for _ in ps]
    elapsed = max(r[2] for r in results)  # from the common start (barrier) to the last process done
    for p in ps:
        p.join()
    store = ReviewStore(url)
    log = store.log(version)
    store.close()
    return {
        "procs": procs,
        "items": items,
        "won": sum(r[0] for r in results),
        "conflicts": sum(r[1] for r in results),
        "rows": len(log),
        "items_with_one_row": int((log.groupby("item_id").size() == 1).sum()),
        "attempts_per_s": procs * items / elapsed,
    }


def bench_read_export(url: str) -> dict:
    from labelaudit.io import load_dataset
    from labelaudit.review.export import cleaned_dataset, to_csv_bytes, to_parquet_bytes
    from labelaudit.review.store import ReviewStore

    store = ReviewStore(url)
    version = uuid.uuid4().hex[:20]
    from labelaudit.review.store import decisions_table, heads_table

    rows = [
        dict(
            dataset_version=version,
            item_id=str(i),
            reviewer="bench",
            action="keep",
            old_label="a",
            new_label="a",
            comment="",
            shown="{}",
            decided_at=dt.datetime.now(dt.UTC),
        )
        for i in range(10_000)
    ]
    with store.engine.begin() as conn:  # bulk-load the log directly: we time the reads here
        conn.execute(decisions_table.insert(), rows)
        conn.execute(
            heads_table.insert(),
            [
                dict(dataset_version=version, item_id=str(i), latest_decision_id=i + 1)
                for i in range(10_000)
            ],
        )
    t = time.perf_counter()
    cur = store.current(version)
    t_current = time.perf_counter() - t
    ds = load_dataset(SAMPLE)
    rng = np.random.default_rng(0)
    picked = rng.choice(ds.n, size=1000, replace=False)
    v2 = ds.content_hash + "-bench-" + uuid.uuid4().hex[:6]
    labels = ds.label_names
    for j, r in enumerate(picked):
        action = ("accept", "keep", "remove", "ambiguous")[j % 4]
        store.record(
            dataset_version=v2,
            item_id=ds.ids[r],
            reviewer="bench",
            action=action,
            old_label=labels[r],
            new_label=ds.classes[0] if action == "accept" else None,
            seen_decision_id=None,
        )
    cur2 = store.current(v2)
    t = time.perf_counter()
    clean = cleaned_dataset(ds, cur2, removed="flag")
    t_clean = time.perf_counter() - t
    t = time.perf_counter()
    csv = to_csv_bytes(clean)
    t_csv = time.perf_counter() - t
    t = time.perf_counter()
    pq = to_parquet_bytes(clean)
    t_pq = time.perf_counter() - t
    t = time.perf_counter()
    clean.to_csv(index=False).encode()  # the peer: same frame, no neutralisation
    t_plain_csv = time.perf_counter() - t
    store.close()
    return {
        "current_rows": len(cur),
        "current_s": t_current,
        "export_rows": len(clean),
        "clean_s": t_clean,
        "csv_s": t_csv,
        "csv_mb": len(csv) / 1e6,
        "parquet_s": t_pq,
        "parquet_mb": len(pq) / 1e6,
        "plain_csv_s": t_plain_csv,
    }


def start_pg() -> tuple[str, str]:
    out = subprocess.run(
        [str(ROOT / "scripts" / "pg_test_server.sh"), "start"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    env = dict(
        line.removeprefix("export ").split("=", 1)
        for line in out.splitlines()
        if line.startswith("export ")
    )
    return env["LABELAUDIT_TEST_PG_URL"].strip("'"), env["LABELAUDIT_TEST_PG_DIR"].strip("'")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pg-url", default=os.environ.get("LABELAUDIT_TEST_PG_URL"))
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "review.md"))
    args = ap.parse_args()
    pg_dir = None
    pg_url = args.pg_url
    if not pg_url:
        pg_url, pg_dir = start_pg()
    tmp = tempfile.mkdtemp(prefix="bench-review-")
    backends = {"SQLite": f"sqlite:///{tmp}/review.sqlite", "PostgreSQL 15": pg_url}
    results = {}
    try:
        for name, url in backends.items():
            print(f"{name}: write", flush=True)
            w = bench_write(url, args.n)
            print(f"{name}: contention", flush=True)
            c = bench_contention(url)
            print(f"{name}: read/export", flush=True)
            r = bench_read_export(url)
            results[name] = (w, c, r)
            print(name, w, c, r, flush=True)
    finally:
        if pg_dir:
            subprocess.run(
                [str(ROOT / "scripts" / "pg_test_server.sh"), "stop", pg_dir], check=False
            )
    write_report(results, args)


def write_report(results: dict, args: argparse.Namespace) -> None:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    cmd = COMMAND + (f" --n {args.n}" if args.n != 500 else "")
    lines = [
        "# Review store and export: measured figures",
        "",
        f"Command: `{cmd}` (PostgreSQL: a throwaway 15.x server on loopback started by "
        "scripts/pg_test_server.sh, default settings, fsync on).",
        f"Machine: 2-core x86_64, 24 GiB, no GPU ({platform.python_implementation()} {platform.python_version()}, "
        f"SQLAlchemy {sa.__version__}). Date: {now}. Every figure below comes from that one run.",
        "",
        "## 1. Writing decisions (sequential, one reviewer)",
        "",
        f"{args.n} decisions on distinct items. *ours* = `ReviewStore.record`: head-row lock, conflict check, "
        "insert, head update, commit (durable on return). *peer* = a plain INSERT of the same row, one "
        "transaction each, no conflict check.",
        "",
        "| database | ours: decisions/s | ours: p50 / p95 ms | peer: inserts/s | peer p50 ms | ours / peer throughput |",
        "|---|---|---|---|---|---|",
    ]
    for name, (w, _c, _r) in results.items():
        lines.append(
            f"| {name} | {w['ours_per_s']:.0f} | {w['ours_p50_ms']:.2f} / {w['ours_p95_ms']:.2f} | "
            f"{w['plain_per_s']:.0f} | {w['plain_p50_ms']:.2f} | {w['ours_per_s'] / w['plain_per_s']:.2f} |"
        )
    lines += [
        "",
        "## 2. Contention: 4 processes decide the same 100 items at once",
        "",
        "Each process tries every item with `seen_decision_id=None`; exactly one may win per item. "
        "attempts/s = all attempts / time from the common start to the last process done.",
        "",
        "| database | attempts | won | conflicts | rows written | items with exactly one row | attempts/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, (_w, c, _r) in results.items():
        lines.append(
            f"| {name} | {c['procs'] * c['items']} | {c['won']} | {c['conflicts']} | {c['rows']} | "
            f"{c['items_with_one_row']} of {c['items']} | {c['attempts_per_s']:.0f} |"
        )
    lines += [
        "",
        "## 3. Reading and export",
        "",
        "`current()` folds the whole log of a dataset version (10,000 decisions). Export: BANKING77 "
        "(13,083 rows) with 1,000 decisions, removed rows flagged. *peer* for CSV = pandas `to_csv` "
        "without formula neutralisation.",
        "",
        "| database | current() 10k s | cleaned_dataset s | CSV s (MB) | peer plain CSV s | CSV / peer | Parquet s (MB) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, (_w, _c, r) in results.items():
        lines.append(
            f"| {name} | {r['current_s']:.3f} | {r['clean_s']:.3f} | {r['csv_s']:.3f} ({r['csv_mb']:.1f}) | "
            f"{r['plain_csv_s']:.3f} | {r['csv_s'] / r['plain_csv_s']:.2f} | "
            f"{r['parquet_s']:.3f} ({r['parquet_mb']:.1f}) |"
        )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
