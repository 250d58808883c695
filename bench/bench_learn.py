"""Learning from the reviewers (issue 13): the learnt queue, the audit's estimate of the errors left, refit time.

    .venv/bin/python -m bench.bench_learn [--workspace DIR] [--seeds 5] [--coverage-runs 4]
        [--parts quality,coverage,timing,suggestions] [--detectors core|all] [--out bench/results/learn.md]

On the BANKING77 sample with 5 % planted flips in the train rows (``labelaudit.simulate_review.
plant_flips``; ``uniform``: to any other intent, ``nearest``: to the intent whose embedding centroid
is nearest), each flipped dataset scanned once (``labelaudit.scan``; the 5 core detectors unless
``--detectors all``), and the seeded simulated reviewer of ``scripts/simulate_review.py``
(``replay_adaptive_review``: the queue in force, re-ranked every N decisions, through a real
SQLite review store):

1. quality: precision of the next 200 items after 100, 200 and 400 reviewed, the learnt queue
   against the static ranking (the scan's rank average), seeds 0..S-1 per flip mode;
2. coverage: the audit's estimate of the planted flips still unreviewed (10 % audit share, 600
   decisions) against the truth, and how often its 95 % interval covers it, over 5 flip seeds x R
   audit seeds per mode (20 runs with the defaults); the peer is the noise-matrix projection of the
   ROI page on the same decisions;
3. timing: refit and re-rank at 10k and 100k rows (400 and 2,000 decisions), against a bare
   scikit-learn logistic regression fitted once on the same features (the peer); Platt scaling by
   Newton against scikit-learn;
4. suggestions: the out-of-fold model refitted with 400 reviewed labels fixed, against the scan's.

Writes bench/results/learn.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_data" / "banking77"
OUT = ROOT / "bench" / "results" / "learn.md"
CORE = ["self_confidence", "confident_learning", "knn", "near_duplicates", "incv"]
MODES = ("uniform", "nearest")
CHECKPOINTS = (100, 200, 400)
NEXT = 200


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, 24 GiB, Python {platform.python_version()}, CPU only"


def load() -> str:
    return "load average " + ", ".join(f"{v:.1f}" for v in os.getloadavg())


def mean_sd(values: list[float]) -> str:
    v = [x for x in values if x == x]
    if not v:
        return "n/a"
    sd = statistics.stdev(v) if len(v) > 1 else 0.0
    return f"{statistics.mean(v):.3f} ± {sd:.3f}"


# --------------------------------------------------------------------------- data
class Bench:
    def __init__(self, workspace: str, detectors: list[str] | None, db_dir: Path):
        from labelaudit.io import load_dataset
        from labelaudit.scanning import get_embeddings
        from labelaudit.workspace import Workspace

        self.ws = Workspace(workspace)
        self.ds = load_dataset(SAMPLE)
        t = time.perf_counter()
        self.emb = get_embeddings(self.ds, workspace=self.ws)
        self.embed_seconds = time.perf_counter() - t
        self.detectors = detectors
        self.db_dir = db_dir
        db_dir.mkdir(parents=True, exist_ok=True)
        self.scan_seconds: dict[tuple[str, int], float] = {}

    def flipped(self, mode: str, seed: int):
        """(flipped dataset, answer key, scan result) for one flip mode and seed; scanned once."""
        from labelaudit.scanning import scan
        from labelaudit.simulate_review import plant_flips

        ds, key = plant_flips(self.ds, self.emb, rate=0.05, seed=seed, mode=mode)
        t = time.perf_counter()
        res = scan(ds, workspace=self.ws, seed=0, detectors=self.detectors)
        self.scan_seconds[(mode, seed)] = time.perf_counter() - t
        return ds, key, res

    def store(self, name: str):
        from labelaudit.review.store import ReviewStore

        path = self.db_dir / f"{name}.sqlite"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return ReviewStore(f"sqlite:///{path}")


def flip_share(ids, flips: set[str]) -> float:
    ids = list(ids)
    return sum(i in flips for i in ids) / len(ids) if ids else float("nan")


# --------------------------------------------------------------------------- 1. quality
def part_quality(b: Bench, seeds: int) -> list[str]:
    from labelaudit.review import adaptive, learn
    from labelaudit.simulate_review import replay_adaptive_review

    rows = []
    for mode in MODES:
        for seed in range(seeds):
            ds, key, res = b.flipped(mode, seed)
            flips = set(key["id"])
            order = ds.ids[learn.static_order(res.table)].astype(str)
            got: dict[int, tuple] = {}

            def grab(n, q, got=got, flips=flips):
                if n in CHECKPOINTS:
                    got[n] = (
                        flip_share(q.queue["id"].head(NEXT), flips),
                        q.ranking,
                        q.fit.auroc,
                        q.fit.auroc_static,
                        q.fit.seconds,
                        flip_share(q.outcomes["item_id"], flips),
                    )

            store = b.store(f"quality-{mode}-{seed}")
            details = res.detection.details if res.detection is not None else {}
            t = time.perf_counter()
            replay_adaptive_review(
                store,
                ds,
                key,
                res.table,
                n_items=max(CHECKPOINTS),
                details=details,
                workspace=b.ws,
                rerank_every=20,
                seed=seed,
                on_queue=grab,
            )
            grab(
                max(CHECKPOINTS),
                adaptive.queue_in_force(
                    store,
                    ds,
                    res.table,
                    details=details,
                    workspace=b.ws,
                    seed=seed,
                    auto=False,
                    rerank=True,
                ),
            )
            replay_secs = time.perf_counter() - t
            store.close()
            for r in CHECKPOINTS:
                p_learnt, ranking, auc, auc_static, fit_secs, found = got[r]
                rows.append(
                    {
                        "mode": mode,
                        "seed": seed,
                        "reviewed": r,
                        "static_next": flip_share(order[r : r + NEXT], flips),
                        "learnt_next": p_learnt,
                        "static_found": flip_share(order[:r], flips),
                        "learnt_found": found,
                        "ranking": ranking,
                        "auroc": auc,
                        "auroc_static": auc_static,
                        "fit_seconds": fit_secs,
                    }
                )
            print(pd.DataFrame(rows).tail(3).to_string(), f"replay {replay_secs:.0f} s", flush=True)
    df = pd.DataFrame(rows)
    df.to_csv(b.db_dir / "quality.csv", index=False)
    lines = [
        "## 1. Precision of the next 200 items: learnt queue against the static ranking",
        "",
        f"5 % planted flips in the train rows of the sample (500 of {b.ds.n:,} rows), seeds 0-{seeds - 1} per mode; the "
        "simulated reviewer decides down the queue in force, re-ranked every 20 decisions (the learnt combiner from "
        "the first re-ranking with at least 20 decisions of each outcome whose cross-validated AUROC is not below the "
        "static ranking's); the static arm decides down the scan's ranking. Precision = share of planted flips among "
        "the next 200 undecided items of each arm's queue (mean ± standard deviation over seeds). "
        "*found* = share of planted flips among the items reviewed so far.",
        "",
        "| flips | reviewed | static: next 200 | learnt: next 200 | ratio learnt / static | static: found | learnt: found | learnt in force | CV AUROC learnt / static |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for mode in MODES:
        for r in CHECKPOINTS:
            d = df[(df["mode"] == mode) & (df["reviewed"] == r)]
            ratio = d["learnt_next"].mean() / d["static_next"].mean()
            lines.append(
                f"| {mode} | {r} | {mean_sd(d['static_next'].tolist())} | {mean_sd(d['learnt_next'].tolist())} | "
                f"{ratio:.2f} | {mean_sd(d['static_found'].tolist())} | {mean_sd(d['learnt_found'].tolist())} | "
                f"{int((d['ranking'] == 'learnt').sum())} of {len(d)} | "
                f"{mean_sd(d['auroc'].tolist())} / {mean_sd(d['auroc_static'].tolist())} |"
            )
    lines += [
        "",
        "Per seed (precision of the next 200, static → learnt): "
        + "; ".join(
            f"{m} {r}: "
            + ", ".join(
                f"{a:.2f}→{c:.2f}"
                for a, c in df[(df["mode"] == m) & (df["reviewed"] == r)][
                    ["static_next", "learnt_next"]
                ].itertuples(index=False)
            )
            for m in MODES
            for r in CHECKPOINTS
        ),
        "",
        "Scan wall time per flipped dataset (detection only; embeddings, map and clusters are shared): "
        + ", ".join(f"{m} {s}: {v:.0f} s" for (m, s), v in b.scan_seconds.items())
        + f". {load()} at the end of this part.",
        "",
    ]
    return lines


# --------------------------------------------------------------------------- 2. coverage
def part_coverage(b: Bench, seeds: int, runs: int) -> list[str]:
    from labelaudit import roi
    from labelaudit.review import adaptive
    from labelaudit.simulate_review import replay_adaptive_review

    rows = []
    for mode in MODES:
        for seed in range(seeds):
            ds, key, res = b.flipped(mode, seed)
            flips = set(key["id"])
            details = res.detection.details if res.detection is not None else {}
            for run in range(runs):
                audit_seed = 100 + run
                store = b.store(f"coverage-{mode}-{seed}-{run}")
                replay_adaptive_review(
                    store,
                    ds,
                    key,
                    res.table,
                    n_items=600,
                    details=details,
                    workspace=b.ws,
                    rerank_every=50,
                    audit_share=0.1,
                    seed=audit_seed,
                )
                q = adaptive.queue_in_force(
                    store,
                    ds,
                    res.table,
                    details=details,
                    workspace=b.ws,
                    seed=audit_seed,
                    auto=False,
                )
                est = adaptive.remaining_errors(q, ds, res.table, seed=audit_seed)
                decided = set(q.outcomes["item_id"])
                truth = len(flips - decided)
                summary = roi.summarise_review(
                    ds, store.log(ds.content_hash), scan_table=res.table, details=details
                )
                n_est, _ = roi.estimated_label_errors(details, res.table, n_rows=ds.n)
                proj = roi.project(summary, estimated_errors=n_est)
                store.close()
                rows.append(
                    {
                        "mode": mode,
                        "seed": seed,
                        "run": run,
                        "truth": truth,
                        "estimate": est.total,
                        "low": est.low,
                        "high": est.high,
                        "covered": est.low <= truth <= est.high,
                        "n_audited": est.n_audited,
                        "n_excluded": est.n_excluded,
                        "noise_matrix": proj.remaining_errors,
                        "ranking": q.ranking,
                    }
                )
                print(rows[-1], flush=True)
    df = pd.DataFrame(rows)
    df.to_csv(b.db_dir / "coverage.csv", index=False)
    lines = [
        "## 2. Errors left: the audit's estimate against the truth",
        "",
        f"Each run: 600 decisions down the queue in force (re-ranked every 50), 10 % of them audit items drawn from a "
        f"stratified sample of 1,000; flip seeds 0-{seeds - 1} x audit seeds 100-{99 + runs} per mode. Truth = planted "
        "flips not yet decided. Peer: the ROI page's noise-matrix projection on the same decisions (confident "
        "learning's estimate of all label errors x the precision reviewers saw - labels fixed); it counts "
        "BANKING77's natural errors too, which the simulated reviewer keeps, so it is not expected to match planted "
        "flips exactly.",
        "",
        "| flips | runs | true flips left (mean) | audit estimate (mean) | mean abs. error | 95 % interval covers the truth | mean interval width | audit decisions used (mean) | noise-matrix projection (mean) | its mean abs. error | abs. error ratio audit / noise matrix |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for mode in (*MODES, "both"):
        d = df if mode == "both" else df[df["mode"] == mode]
        err = (d["estimate"] - d["truth"]).abs()
        nm = (d["noise_matrix"].astype(float) - d["truth"]).abs()
        lines.append(
            f"| {mode} | {len(d)} | {d['truth'].mean():.1f} | {d['estimate'].mean():.1f} | {err.mean():.1f} | "
            f"{int(d['covered'].sum())} of {len(d)} ({d['covered'].mean():.0%}) | {(d['high'] - d['low']).mean():.1f} | "
            f"{d['n_audited'].mean():.1f} | {d['noise_matrix'].astype(float).mean():.1f} | {nm.mean():.1f} | "
            f"{err.mean() / nm.mean():.2f} |"
        )
    lines += ["", f"{load()} at the end of this part.", ""]
    return lines


# --------------------------------------------------------------------------- 3. timing
def _timed(fn, repeat: int = 3) -> tuple[float, float, object]:
    walls, cpus, out = [], [], None
    for _ in range(repeat):
        c, w = time.process_time(), time.perf_counter()
        out = fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return statistics.median(walls), statistics.median(cpus), out


def _scaled(ds, key, table, n: int, seed: int = 0):
    """A dataset and scan table of ``n`` rows built from the flipped sample (tiled past its size)."""
    from labelaudit.dataset import Dataset

    rng = np.random.default_rng(seed)
    reps = int(np.ceil(n / ds.n))
    idx = np.tile(np.arange(ds.n), reps)[:n]
    frame = ds.frame.iloc[idx].reset_index(drop=True).copy()
    frame["id"] = [
        f"{i}-{r}"
        for r, i in zip(np.repeat(np.arange(reps), ds.n)[:n], ds.frame["id"].iloc[idx], strict=True)
    ]
    t = table.iloc[idx].reset_index(drop=True).copy()
    t["id"] = frame["id"]
    score_cols = [c for c in t.columns if str(c).startswith("score_")] + ["label_issue_score"]
    for c in score_cols:  # jitter so the tiled copies do not tie
        t[c] = np.clip(t[c].to_numpy(dtype=float) + rng.normal(0, 1e-4, n), 0, 1)
    flips = set(key["id"])
    truth = np.array([i.split("-", 1)[1] in flips for i in frame["id"]])
    return (
        Dataset(
            frame=frame[["id", "text", "label", "split"]],
            classes=list(ds.classes),
            source=f"tiled {n}",
        ),
        t,
        truth,
    )


def part_timing(b: Bench) -> list[str]:
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    from labelaudit.review import adaptive, learn

    ds0, key, res = b.flipped("nearest", 0)
    lines = [
        "## 3. Time to refit and re-rank",
        "",
        "Refit = `learn.fit_learnt` (features, 5 outer folds x calibrated logistic regression with 3 inner folds, "
        "final fit, scoring every row) + the remaining queue (`ranked_rows` and the queue with its columns); the "
        "decisions are the top of the static ranking plus every 20th row below it, outcomes from the planted flips. "
        "Peer: one bare `LogisticRegression` fit on the same feature matrix and a `predict_proba` of every row (no "
        "cross-validation, no calibration). Median of 3; wall and CPU seconds.",
        "",
        "| rows | decisions | refit + re-rank wall | CPU | peer wall | peer CPU | ratio (CPU) | static calibration wall | features wall |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for n, n_dec in ((10_000, 400), (100_000, 2_000)):
        ds, table, truth = _scaled(ds0, key, res.table, n)
        order = learn.static_order(table)
        step = max(len(order) // n_dec, 1)
        rows = np.unique(
            np.concatenate([order[: n_dec // 2], order[n_dec // 2 :: step][: n_dec // 2]])
        )
        out = _outcomes(ds, rows, truth)

        def refit(ds=ds, table=table, out=out):
            fit = learn.fit_learnt(ds, table, out)
            return adaptive._remaining_queue(
                ds, table, fit, learn.ranked_rows(fit, table), out, None, 0.0
            ), fit

        w, c, (_, fit) = _timed(refit)
        frame, cats, nums = learn.ranking_features(ds, table)
        x = learn.model_matrix(frame, cats, nums)

        def bare(x=x, rows=rows, out=out):
            with threadpool_limits(1):
                m = LogisticRegression(max_iter=2000).fit(x[rows], out["changed"].to_numpy())
                return m.predict_proba(x)[:, 1]

        pw, pc, _ = _timed(bare)
        sw, _, _ = _timed(lambda table=table, out=out: learn.static_estimate(table, out))
        fw, _, _ = _timed(lambda ds=ds, table=table: learn.ranking_features(ds, table))
        lines.append(
            f"| {n:,} | {len(rows):,} ({int(out['changed'].sum())} changed) | {w:.2f} s | {c:.2f} s | {pw:.3f} s | "
            f"{pc:.3f} s | {c / max(pc, 1e-9):.0f}x | {sw:.3f} s | {fw:.3f} s |"
        )
        print(lines[-1], fit.ranking, flush=True)
    # Platt by Newton against scikit-learn
    rng = np.random.default_rng(0)
    xs = rng.random((400, 1))
    ys = rng.random(400) < xs[:, 0]
    grid = np.linspace(0, 1, 10_000).reshape(-1, 1)

    def sk():
        n_pos, n_neg = int(ys.sum()), int((~ys).sum())
        t = np.where(ys, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))
        with threadpool_limits(1):
            m = LogisticRegression(C=1e6, max_iter=1000, tol=1e-10).fit(
                np.concatenate([xs, xs]),
                np.r_[np.ones(400), np.zeros(400)],
                sample_weight=np.r_[t, 1 - t],
            )
            return m.predict_proba(grid)[:, 1]

    tw, _, ours = _timed(lambda: learn._platt(xs, ys, grid), repeat=5)
    sw, _, ref = _timed(sk, repeat=5)
    lines += [
        "",
        f"Platt scaling (400 decisions, 10,000 rows scored): Newton in numpy {tw * 1000:.1f} ms, scikit-learn "
        f"`LogisticRegression` with the same soft targets {sw * 1000:.1f} ms (ratio {sw / tw:.0f}x); max abs. "
        f"difference {np.abs(np.asarray(ours) - np.asarray(ref)).max():.1e}.",
        "",
        f"{load()} at the end of this part; under load wall times are upper bounds and CPU seconds are the better guide.",
        "",
    ]
    return lines


def _outcomes(ds, rows, truth) -> pd.DataFrame:
    rows = np.asarray(rows, dtype=np.int64)
    return pd.DataFrame(
        {
            "item_id": ds.ids[rows].astype(str),
            "row": rows,
            "action": np.where(truth[rows], "change", "keep"),
            "changed": truth[rows],
            "audit": False,
            "queue": "ranking",
            "flagged": False,
            "decision_id": np.arange(1, len(rows) + 1),
            "review_order": np.arange(len(rows)),
        }
    )


# --------------------------------------------------------------------------- 4. suggestions
def part_suggestions(b: Bench) -> list[str]:
    from labelaudit.review import adaptive
    from labelaudit.simulate_review import replay_adaptive_review

    lines = ["## 4. Suggestions refitted with the reviewed labels fixed", ""]
    for mode in MODES:
        ds, key, res = b.flipped(mode, 0)
        details = res.detection.details if res.detection is not None else {}
        store = b.store(f"suggestions-{mode}")
        replay_adaptive_review(
            store,
            ds,
            key,
            res.table,
            n_items=400,
            details=details,
            workspace=b.ws,
            rerank_every=20,
            seed=0,
        )
        log = store.log(ds.content_hash)
        decided = set(log["item_id"])
        store.close()
        t = time.perf_counter()
        refit = adaptive.refit_suggestions(ds, res.embeddings, log, workspace=b.ws, seed=0)
        secs = time.perf_counter() - t
        original = dict(zip(key["id"], key["original_label"], strict=True))
        left = [i for i in key["id"] if i not in decided]
        rows = np.array([ds.id_to_row[i] for i in left])
        truth = np.array([ds.classes.index(original[i]) for i in left])
        before = np.asarray(res.detection.pred_probs)[rows].argmax(axis=1)
        after = refit.probs[rows].argmax(axis=1)
        lines.append(
            f"- {mode} flips, seed 0, after 400 decisions: of the {len(left)} planted flips still undecided, the "
            f"suggestion restores the original intent for {(before == truth).mean():.1%} with the scan's out-of-fold "
            f"model and {(after == truth).mean():.1%} after the refit ({(after == truth).sum() - (before == truth).sum():+d} "
            f"rows); refit wall time {secs:.0f} s (5 folds of logistic regression on {ds.n:,} x "
            f"{res.embeddings.shape[1]} embeddings, {load()})."
        )
        print(lines[-1], flush=True)
    return [*lines, ""]


# --------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--workspace", default="/tmp/labelaudit-bench-learn")
    p.add_argument("--db-dir", default="/dev/shm/labelaudit-bench-learn")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--coverage-runs", type=int, default=4)
    p.add_argument("--parts", default="quality,coverage,timing,suggestions")
    p.add_argument("--detectors", choices=("core", "all"), default="core")
    p.add_argument("--out", default=str(OUT))
    args = p.parse_args(argv)
    parts = [x.strip() for x in args.parts.split(",") if x.strip()]
    b = Bench(args.workspace, CORE if args.detectors == "core" else None, Path(args.db_dir))
    command = (
        f".venv/bin/python -m bench.bench_learn --workspace {args.workspace} --seeds {args.seeds} "
        f"--coverage-runs {args.coverage_runs} --parts {','.join(parts)} --detectors {args.detectors}"
    )
    started = datetime.now(UTC)
    lines = [
        "# Learning from the reviewers (issue 13)",
        "",
        f"Command: `{command}`  ",
        f"Machine: {machine()}; shared with other jobs ({load()} at the start).  ",
        f"Date: {started:%Y-%m-%d %H:%M} UTC. Detectors: "
        + (
            ", ".join(CORE) + " (the 5 core detectors)"
            if args.detectors == "core"
            else "every default detector"
        )
        + f". Embeddings: all-MiniLM-L6-v2 ({b.embed_seconds:.0f} s, cached in the workspace).",
        "",
    ]
    for part in parts:
        t = time.perf_counter()
        if part == "quality":
            lines += part_quality(b, args.seeds)
        elif part == "coverage":
            lines += part_coverage(b, args.seeds, args.coverage_runs)
        elif part == "timing":
            lines += part_timing(b)
        elif part == "suggestions":
            lines += part_suggestions(b)
        else:
            raise SystemExit(f"unknown part {part}")
        print(f"== {part}: {time.perf_counter() - t:.0f} s", flush=True)
        Path(args.out).write_text(
            "\n".join(lines) + "\n", encoding="utf-8"
        )  # partial results survive
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
