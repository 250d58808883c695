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
BATCH_ROWS_TEXT = "900"  # labelaudit.review.store.BATCH_ROWS


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


def _import_requests(version: str, n: int) -> list[dict]:
    from labelaudit.review.identity import Identity

    who = Identity("labelstudio:ana@example.com", auth="import")
    return [
        dict(
            dataset_version=version,
            item_id=str(i),
            reviewer=who.name,
            action=("change", "keep", "accept", "remove")[i % 4],
            old_label="a",
            new_label="b" if i % 4 in (0, 2) else None,
            comment=f"Label Studio project 1, task {i}, annotation {i}",
            shown={"queue": "labelstudio", "task": i, "annotation": i, "suggested_label": "b"},
            seen_decision_id=None,
            identity=who,
            capacity="import",
        )
        for i in range(n)
    ]


def record_many_by_row(store, requests: list[dict]) -> list:
    """record_many as it was before the bulk write: each decision's own statements, one transaction."""
    with store.engine.begin() as conn:
        return [
            store.append_in(conn, store.prepare(**r), r.get("seen_decision_id")) for r in requests
        ]


def bench_batch(url: str, sizes: list[int], by_row_max: int) -> list[dict]:
    """record_many (bulk) against the row-by-row write of the same requests, then the reads a
    Review-page click makes on the version with the most decisions."""
    from labelaudit.review.store import ReviewStore

    store = ReviewStore(url)
    out = []
    version = None
    for n in sizes:
        row = {"n": n, "by_row_s": None}
        if n <= by_row_max:
            reqs = _import_requests(uuid.uuid4().hex[:20], n)
            t = time.perf_counter()
            record_many_by_row(store, reqs)
            row["by_row_s"] = time.perf_counter() - t
        version = uuid.uuid4().hex[:20]
        reqs = _import_requests(version, n)
        t = time.perf_counter()
        store.record_many(reqs)
        row["bulk_s"] = time.perf_counter() - t
        row["load"] = os.getloadavg()[0]
        out.append(row)
        print(row, flush=True)
    # Reads per click on the largest version (median of 5)
    reads = {
        "current()": lambda: store.current(version),
        "latest_decision_ids()": lambda: store.latest_decision_ids(version),
        "in_force(50 items)": lambda: store.in_force(
            version, [str(i) for i in range(0, 5000, 100)]
        ),
        "touched_since(newest - 10)": lambda: store.touched_since(
            version, store.newest_decision_id() - 10
        ),
        "history(1 item)": lambda: store.history(version, "7"),
    }
    timings = {}
    for name, fn in reads.items():
        ts = []
        for _ in range(5):
            t = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t)
        timings[name] = float(np.median(ts))
    store.close()
    return [{"rows": out, "reads": timings, "reads_n": sizes[-1]}]


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
    ap.add_argument(
        "--batch",
        type=int,
        nargs="+",
        default=[10_000, 100_000],
        help="record_many sizes (section 4); the row-by-row peer runs up to --by-row-max",
    )
    ap.add_argument("--by-row-max", type=int, default=10_000)
    ap.add_argument(
        "--only-batch", action="store_true", help="only section 4 (record_many and the reads)"
    )
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
            w = c = r = None
            if not args.only_batch:
                print(f"{name}: write", flush=True)
                w = bench_write(url, args.n)
                print(f"{name}: contention", flush=True)
                c = bench_contention(url)
                print(f"{name}: read/export", flush=True)
                r = bench_read_export(url)
            print(f"{name}: record_many", flush=True)
            b = bench_batch(url, args.batch, args.by_row_max)[0]
            results[name] = (w, c, r, b)
            print(name, w, c, r, b, flush=True)
    finally:
        if pg_dir:
            subprocess.run(
                [str(ROOT / "scripts" / "pg_test_server.sh"), "stop", pg_dir], check=False
            )
    write_report(results, args)


def write_report(results: dict, args: argparse.Namespace) -> None:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    cmd = COMMAND + (f" --n {args.n}" if args.n != 500 else "")
    if args.only_batch:
        cmd += " --only-batch"
    if args.batch != [10_000, 100_000]:
        cmd += " --batch " + " ".join(map(str, args.batch))
    lines = [
        "# Review store and export: measured figures",
        "",
        f"Command: `{cmd}` (PostgreSQL: a throwaway 15.x server on loopback started by "
        "scripts/pg_test_server.sh, default settings, fsync on).",
        f"Machine: 2-core x86_64, 24 GiB, no GPU ({platform.python_implementation()} {platform.python_version()}, "
        f"SQLAlchemy {sa.__version__}). Date: {now}. Every figure below comes from that one run.",
        "",
        "Load average during the run: "
        + ", ".join(f"{name} {b['rows'][-1]['load']:.1f}" for name, (*_x, b) in results.items())
        + " (the machine was shared; speed figures are from a loaded machine).",
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
    for name, (w, _c, _r, _b) in results.items():
        if w is None:
            lines.append(f"| {name} | not run | | | | |")
            continue
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
    for name, (_w, c, _r, _b) in results.items():
        if c is None:
            lines.append(f"| {name} | not run | | | | | |")
            continue
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
    for name, (_w, _c, r, _b) in results.items():
        if r is None:
            lines.append(f"| {name} | not run | | | | | |")
            continue
        lines.append(
            f"| {name} | {r['current_s']:.3f} | {r['clean_s']:.3f} | {r['csv_s']:.3f} ({r['csv_mb']:.1f}) | "
            f"{r['plain_csv_s']:.3f} | {r['csv_s'] / r['plain_csv_s']:.2f} | "
            f"{r['parquet_s']:.3f} ({r['parquet_mb']:.1f}) |"
        )
    lines += [
        "",
        "## 4. Importing decisions in one batch (`record_many`, e.g. a Label Studio pull)",
        "",
        "Decisions on distinct new items, one transaction, with identities (auth=import). *bulk* = "
        "`record_many`: heads created and locked, histories read, decisions/identities/heads written "
        f"with one multi-row statement per {BATCH_ROWS_TEXT} items. *row by row* = the same requests "
        "through `append_in` one by one in one transaction (the record_many of before), same run.",
        "",
        "| database | decisions | bulk s | row by row s | row by row / bulk | bulk decisions/s |",
        "|---|---|---|---|---|---|",
    ]
    for name, (*_x, b) in results.items():
        for row in b["rows"]:
            by_row = row["by_row_s"]
            lines.append(
                f"| {name} | {row['n']:,} | {row['bulk_s']:.2f} | "
                + (f"{by_row:.2f} | {by_row / row['bulk_s']:.1f}" if by_row else "not run | ")
                + f" | {row['n'] / row['bulk_s']:,.0f} |"
            )
    lines += [
        "",
        "Reads a Review-page click makes, on the version holding the largest batch "
        "(median of 5, ms):",
        "",
        "| database | decisions in the version | "
        + " | ".join(next(iter(results.values()))[3]["reads"])
        + " |",
        "|---|---|" + "---|" * len(next(iter(results.values()))[3]["reads"]),
    ]
    for name, (*_x, b) in results.items():
        lines.append(
            f"| {name} | {b['reads_n']:,} | "
            + " | ".join(f"{1e3 * v:.1f}" for v in b["reads"].values())
            + " |"
        )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
