"""Learning from the reviewers (issue 13): the learnt queue, the audit's estimate of the errors left, refit time.

    .venv/bin/python -m bench.bench_learn [--workspace DIR] [--seeds 0,1,2,3,4] [--arms static,learnt,...]
        [--coverage-runs 4] [--parts quality,coverage,timing,suggestions] [--detectors core|all]
        [--out bench/results/learn.md]

On the BANKING77 sample with 5 % planted flips in the train rows (``labelaudit.simulate_review.
plant_flips``; ``uniform``: to any other intent, ``nearest``: to the intent whose embedding centroid
is nearest), each flipped dataset scanned once (``labelaudit.scan``; the 5 core detectors unless
``--detectors all``; cached in the workspace):

1. quality (:func:`direct_review`: a reviewer who knows the planted flips decides down each arm's
   queue, re-ranked every 20 decisions, without the store): precision of the next 200 items and
   the yield after 100, 200 and 400 reviewed, each arm of :data:`ARMS` against the static ranking
   (the scan's rank average), paired by seed;
2. coverage (the seeded simulated reviewer of ``scripts/simulate_review.py``,
   ``replay_adaptive_review``: the queue in force through a real SQLite review store): the audit's
   estimate of the planted flips still unreviewed (10 % audit share, 600 decisions) against the
   truth, and how often its 95 % interval covers it, over flip seeds x R audit seeds per mode; the
   peer is the noise-matrix projection of the ROI page on the same decisions;
3. timing: refit and re-rank at 10k and 100k rows (400 and 2,000 decisions), against a bare
   scikit-learn logistic regression fitted once on the same features (the peer); Platt scaling by
   Newton against scikit-learn;
4. suggestions: the out-of-fold model refitted with 400 reviewed labels fixed, against the scan's.

Writes bench/results/learn.md (``--out``).
"""

from __future__ import annotations

import argparse
import math
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
def _static_arm(ds, table, details, out):
    from labelaudit.review import learn

    return learn.static_order(table), None


def _learnt_arm(window, pulls=True):
    def arm(ds, table, details, out):
        from labelaudit.review import learn

        fit = learn.fit_learnt(ds, table, out, details=details, window=window, pulls=pulls)
        return learn.ranked_rows(fit, table), fit

    return arm


def _unchecked_pulls_arm(ds, table, details, out):
    """The learnt queue with pulls at margin 0 whenever the learnt combiner is in force, the pull
    check's verdict ignored (bench only: measures what that check refuses)."""
    from labelaudit.review import learn

    checked = learn.pull_check
    learn.pull_check = lambda blocks, seed=0: (0.0, *checked(blocks, seed=seed)[1:])
    try:
        fit = learn.fit_learnt(ds, table, out, details=details)
    finally:
        learn.pull_check = checked
    return learn.ranked_rows(fit, table), fit


#: The queues compared: the scan's static order; the learnt combiner as shipped (it fills the next
#: RERANK_WINDOW places from the next 2 x RERANK_WINDOW undecided rows of the static order, pulls
#: and the re-ordering each switched on by its forward check); the same without pulls (session 3's
#: rule: it only re-orders the next RERANK_WINDOW); the learnt combiner over the whole queue.
ARMS = {
    "static": _static_arm,
    "learnt": _learnt_arm(200),
    "learnt-window-only": _learnt_arm(200, pulls=False),
    "learnt-whole-queue": _learnt_arm(None),
    "learnt-unchecked-pulls": _unchecked_pulls_arm,
}


def direct_review(ds, table, details, truth, arm, *, every: int = 20, upto: int = 400):
    """A reviewer who knows ``truth`` decides down the queue ``arm`` gives, re-ranked every
    ``every`` decisions (the queue stays fixed in between, as on the Review page). No store, no
    ambiguous/remove decisions. Returns {reviewed: (precision of the next NEXT, found so far, fit)}."""
    decided: list[int] = []
    is_dec = np.zeros(ds.n, bool)
    res = {}
    order, fit = arm(ds, table, details, _outcomes(ds, [], truth, table))
    while True:
        n = len(decided)
        if n and n % every == 0:
            order, fit = arm(ds, table, details, _outcomes(ds, decided, truth, table))
        rem = order[~is_dec[order]]
        if n in CHECKPOINTS:
            res[n] = (
                float(truth[rem[:NEXT]].mean()),
                float(truth[decided].mean()) if n else math.nan,
                fit,
            )
        if n >= upto:
            return res
        take = rem[:every]
        decided.extend(take.tolist())
        is_dec[take] = True


def same_state(ds, table, details, truth, arm):
    """Protocol (b): after the same ``r`` decisions (the first ``r`` of the static order, decided by
    a reviewer who knows ``truth``), the precision of the next NEXT undecided items of ``arm``'s
    ranking. Returns {r: (precision of the next NEXT, found so far, fit)}."""
    from labelaudit.review import learn

    order = learn.static_order(table)
    res = {}
    for r in CHECKPOINTS:
        decided = order[:r]
        ranked, fit = arm(ds, table, details, _outcomes(ds, decided, truth, table))
        is_dec = np.zeros(ds.n, bool)
        is_dec[decided] = True
        rem = ranked[~is_dec[ranked]]
        res[r] = (float(truth[rem[:NEXT]].mean()), float(truth[decided].mean()), fit)
    return res


def part_quality(b: Bench, seeds: list[int], arms: list[str], modes=MODES) -> list[str]:
    rows = []
    # seed-major (nearest 0, uniform 0, nearest 1, ...): a run cut short still covers both modes
    for seed, mode in [(s, m) for s in seeds for m in modes]:
        ds, key, res = b.flipped(mode, seed)
        flips = set(key["id"])
        truth = np.array([i in flips for i in ds.ids.astype(str)])
        details = res.detection.details if res.detection is not None else {}
        for protocol in ("own", "same"):
            for name in arms:
                t = time.perf_counter()
                if protocol == "own":
                    got = direct_review(
                        ds, res.table, details, truth, ARMS[name], upto=max(CHECKPOINTS)
                    )
                else:
                    got = same_state(ds, res.table, details, truth, ARMS[name])
                for r, (nxt, found, fit) in got.items():
                    rows.append(
                        {
                            "protocol": protocol,
                            "mode": mode,
                            "seed": seed,
                            "arm": name,
                            "reviewed": r,
                            "next": nxt,
                            "found": found,
                            "yield": (found * r + nxt * NEXT) / (r + NEXT) if r else nxt,
                            "ranking": "static" if fit is None else fit.ranking,
                            "pulls": bool(fit is not None and fit.pulls),
                            "pull_gain_low": math.nan if fit is None else fit.pull_gain_low,
                            "fwd_learnt": math.nan if fit is None else fit.forward_auroc,
                            "fwd_static": math.nan if fit is None else fit.forward_auroc_static,
                            "fit_seconds": math.nan if fit is None else fit.seconds,
                        }
                    )
                print(
                    protocol,
                    mode,
                    seed,
                    name,
                    " ".join(f"{r}:{v[0]:.3f}/{v[1]:.3f}" for r, v in got.items()),
                    f"{time.perf_counter() - t:.0f} s",
                    load(),
                    flush=True,
                )
                pd.DataFrame(rows).to_csv(b.db_dir / "quality.csv", index=False)
    df = pd.DataFrame(rows)
    df.to_csv(b.db_dir / "quality.csv", index=False)
    lines = quality_lines(df, b.ds.n, b.scan_seconds)
    return [*lines[:-1], f"{load()} at the end of this part.", ""]


def quality_lines(df: pd.DataFrame, n_rows: int, scan_seconds: dict | None = None) -> list[str]:
    """The quality section from the rows of :func:`part_quality` (also rebuilt from its CSV with
    ``--quality-csv``). Modes, seeds and arms are the ones the rows hold."""
    modes = [m for m in MODES if m in set(df["mode"])]
    arms = [a for a in ARMS if a in set(df["arm"])]
    seeds_of = {m: sorted(set(df[df["mode"] == m]["seed"])) for m in modes}
    lines = [
        "## 1. Precision of the next 200 items: learnt queue against the static ranking",
        "",
        f"5 % planted flips in the train rows of the sample (500 of {n_rows:,} rows); seeds per mode: "
        + "; ".join(f"{m} {', '.join(map(str, seeds_of[m]))}" for m in modes)
        + ". The static ranking is the scan's (main's default combiner, quality-gated). A reviewer who "
        "knows the planted flips decides (no store, no ambiguous/remove decisions). Two protocols:",
        "",
        "- **(a) own queue** (`direct_review`, what a team lives through): each arm reviews down its own "
        "queue, re-ranked every 20 decisions, so after r reviewed the arms are in different states. "
        "*found* = planted flips per reviewed item so far; *yield* = planted flips per item over the "
        "first r + 200 (found and next 200 together: an arm that found more already leaves fewer for its "
        "next 200).",
        "- **(b) same state** (`same_state`): after the same r decisions (the first r of the static "
        "order), the precision of each ranking's next 200 undecided items.",
        "",
        "*next 200* = share of planted flips among the next 200 undecided items of the arm's queue; mean "
        "± standard deviation over seeds; *paired diff.* = arm minus static on the same seed and "
        "protocol (mean, and min to max over seeds). Arms: `static`; `learnt` = as shipped (re-orders "
        "the static order's next 200 undecided items, switched on by the forward AUROC check, and pulls "
        "items from the next 200 below them into those places when the forward pull check's 95 % "
        "interval is above 0); `learnt-window-only` = session 3's rule (no pulls); "
        "`learnt-whole-queue` = the same model ordering the whole queue; `learnt-unchecked-pulls` = pulls "
        "at margin 0 whenever the learnt combiner is in force, the pull check ignored (what the check refuses).",
        "",
        "| protocol | flips | reviewed | arm | next 200 | paired diff. next 200 | found | yield of reviewed + 200 | paired diff. yield | learnt in force | pulls on | forward AUROC learnt / static |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    key = ["protocol", "mode", "seed", "reviewed"]
    base = df[df["arm"] == "static"].set_index(key)

    def paired(d, col):
        ix = d.set_index(key)
        diff = ix[col] - base[col].reindex(ix.index)
        return f"{diff.mean():+.3f} ({diff.min():+.3f} to {diff.max():+.3f})"

    for protocol in ("own", "same"):
        label = "(a) own queue" if protocol == "own" else "(b) same state"
        for mode in modes:
            for r in CHECKPOINTS:
                for name in arms:
                    d = df[
                        (df["protocol"] == protocol)
                        & (df["mode"] == mode)
                        & (df["reviewed"] == r)
                        & (df["arm"] == name)
                    ]
                    if not len(d):
                        continue
                    st = name == "static"
                    on = f"{int((d['ranking'] == 'learnt').sum())} of {len(d)}"
                    pulls = f"{int(d['pulls'].astype(bool).sum())} of {len(d)}"
                    fwd = (
                        mean_sd(d["fwd_learnt"].tolist())
                        + " / "
                        + mean_sd(d["fwd_static"].tolist())
                    )
                    found = "" if protocol == "same" and not st else mean_sd(d["found"].tolist())
                    lines.append(
                        f"| {label} | {mode} | {r} | {name} | {mean_sd(d['next'].tolist())} | "
                        f"{'' if st else paired(d, 'next')} | {found} | "
                        f"{mean_sd(d['yield'].tolist()) if protocol == 'own' else ''} | "
                        f"{'' if st or protocol == 'same' else paired(d, 'yield')} | "
                        f"{'' if st else on} | {'' if st else pulls} | {'' if st else fwd} |"
                    )
    fs = df["fit_seconds"].dropna()
    per_seed = []
    for protocol in ("own", "same"):
        for m in modes:
            for r in CHECKPOINTS:
                d = df[(df["protocol"] == protocol) & (df["mode"] == m) & (df["reviewed"] == r)]
                st = d[d["arm"] == "static"].set_index("seed")["next"]
                le = d[d["arm"] == "learnt"].set_index("seed")["next"]
                if len(le):
                    per_seed.append(
                        f"{protocol} {m} {r}: "
                        + ", ".join(f"{st.get(s, math.nan):.2f}→{v:.2f}" for s, v in le.items())
                    )
    lines += [
        "",
        "Per seed (next 200, static → learnt): " + "; ".join(per_seed) + ".",
        "",
        f"Fit time per re-ranking inside this part (13,083 rows, 20-400 decisions, under the load "
        f"below): median {fs.median():.2f} s, max {fs.max():.2f} s."
        + (
            " Scan wall time per flipped dataset (0-1 s when cached): "
            + ", ".join(f"{m} {s}: {v:.0f} s" for (m, s), v in scan_seconds.items())
            + "."
            if scan_seconds
            else ""
        ),
        "",
    ]
    return lines


# --------------------------------------------------------------------------- 2. coverage
def previous_estimate(ds, table, q) -> float:
    """The estimate as shipped before the depletion correction (main 52cef67), for the same run:
    audited items behind the first undecided row *of the order in force* left out, the others taken
    as a random sample of each plan stratum's undecided rows (``U * e / n``, strata not collapsed)."""
    plan, out = q.plan, q.outcomes
    position = np.empty(ds.n, dtype=np.int64)
    position[np.asarray(q.order, dtype=np.int64)] = np.arange(ds.n)
    decided = np.zeros(ds.n, dtype=bool)
    decided[out["row"].to_numpy(dtype=np.int64)] = True
    stratum = plan.stratum_of(table)
    aud = out[out["audit"].to_numpy(dtype=bool)]
    rows = aud["row"].to_numpy(dtype=np.int64)
    keep = position[rows] > position[~decided].min()
    rows, changed = rows[keep], aud["changed"].to_numpy(dtype=bool)[keep]
    total = 0.0
    for h in range(len(plan.strata)):
        here = stratum[rows] == h
        if here.any():
            total += float(((stratum == h) & ~decided).sum() * changed[here].mean())
    return total


def part_coverage(
    b: Bench, seeds: list[int], runs: int, modes: list[str], share: float = 0.1
) -> list[str]:
    from labelaudit import roi
    from labelaudit.review import adaptive
    from labelaudit.simulate_review import replay_adaptive_review

    rows = []
    started = time.perf_counter()
    for mode in modes:
        for seed in seeds:
            ds, key, res = b.flipped(mode, seed)
            flips = set(key["id"])
            details = res.detection.details if res.detection is not None else {}
            for run in range(runs):
                audit_seed = 100 + run
                store = b.store(f"coverage-{mode}-{seed}-{run}-{share:g}")
                rankings: list[str] = []
                replay_adaptive_review(
                    store,
                    ds,
                    key,
                    res.table,
                    n_items=600,
                    details=details,
                    workspace=b.ws,
                    rerank_every=50,
                    audit_share=share,
                    seed=audit_seed,
                    # the reviewer changes exactly the planted flips: the estimand is then the truth
                    ambiguous_rate=0.0,
                    remove_rate=0.0,
                    on_queue=lambda _n, q, rankings=rankings: rankings.append(q.ranking),
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
                        "previous": previous_estimate(ds, res.table, q),
                        "noise_matrix": proj.remaining_errors,
                        "ranking": q.ranking,
                        "learnt_fits": sum(r == "learnt" for r in rankings),
                        "share": share,
                        "load": os.getloadavg()[0],
                    }
                )
                print(rows[-1], flush=True)
                pd.DataFrame(rows).to_csv(b.db_dir / "coverage.csv", index=False)  # survives a stop
    df = pd.DataFrame(rows)
    return coverage_lines(df, seeds, runs, time.perf_counter() - started)


def coverage_lines(df: pd.DataFrame, seeds: list[int], runs: int, seconds: float) -> list[str]:
    share = float(df["share"].iloc[0]) if "share" in df else 0.1
    lines = [
        f"## 2. Errors left: the audit's estimate against the truth (audit share {share:.0%})",
        "",
        f"Each run: 600 decisions down the queue in force (re-ranked every 50; the learnt queue whenever "
        f"its checks put it in force), {share:.0%} of them audit items drawn from a stratified sample of 1,000; "
        f"flip seeds {', '.join(map(str, seeds))} x audit seeds 100-{99 + runs} per mode. The simulated "
        "reviewer changes exactly the planted flips (ambiguous and remove rates 0), so the truth = planted "
        "flips not yet decided is what the estimate estimates. *previous* = the estimator shipped before this "
        "fix (main 52cef67) on the same decisions (`previous_estimate`). Peer: the ROI page's noise-matrix "
        "projection on the same decisions (confident learning's estimate of all label errors x the precision "
        "reviewers saw - labels fixed); it counts BANKING77's natural errors too, which the simulated reviewer "
        "keeps, so it is not expected to match planted flips exactly.",
        "",
        "| flips | ranking in force at the end | runs | true flips left (mean) | audit estimate (mean) | mean error (bias) | mean abs. error | 95 % interval covers the truth | mean interval width | audit decisions used (mean) | previous estimator (mean) | its mean error | noise-matrix projection (mean) | its mean abs. error |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    groups = []
    for mode in (*sorted(set(df["mode"])), "both"):
        d = df if mode == "both" else df[df["mode"] == mode]
        groups.append((mode, "any", d))
        for ranking in ("static", "learnt"):
            groups.append((mode, ranking, d[d["ranking"] == ranking]))
    for mode, ranking, d in groups:
        if not len(d):
            continue
        err = d["estimate"] - d["truth"]
        prev = d["previous"] - d["truth"]
        nm = (d["noise_matrix"].astype(float) - d["truth"]).abs()
        lines.append(
            f"| {mode} | {ranking} | {len(d)} | {d['truth'].mean():.1f} | {d['estimate'].mean():.1f} | "
            f"{err.mean():+.1f} | {err.abs().mean():.1f} | "
            f"{int(d['covered'].sum())} of {len(d)} ({d['covered'].mean():.0%}) | {(d['high'] - d['low']).mean():.1f} | "
            f"{d['n_audited'].mean():.1f} | {d['previous'].mean():.1f} | {prev.mean():+.1f} | "
            f"{d['noise_matrix'].astype(float).mean():.1f} | {nm.mean():.1f} |"
        )
    lines += [
        "",
        f"Wall time of this part {seconds:.0f} s; load average (1 min) over the runs "
        f"{df['load'].min():.1f}-{df['load'].max():.1f}; {load()} at the end.",
        "",
    ]
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
    # the tiled copies of a planted flip are flips (ids are "<original id>-<copy>")
    truth = np.array([i in flips for i in ds.ids.astype(str)])[idx]
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
        "Refit = `learn.fit_learnt` (features, 5 outer folds and a final fit of the logistic regression, Platt "
        "scaling of the out-of-fold scores, the forward check's 4 fits with its bootstrap, the pull check, scoring "
        "every row; all of it runs whichever ranking the checks then put in force) + the remaining queue (`ranked_rows` and the queue with its columns); the "
        "decisions are the top of the static ranking plus every 20th row below it, outcomes from the planted flips. "
        "Peer: one bare `LogisticRegression` fit on the same feature matrix and a `predict_proba` of every row (no "
        "cross-validation, no calibration). Median of 3; wall and CPU seconds.",
        "",
        "| rows | decisions | refit + re-rank wall | CPU | peer wall | peer CPU | ratio (CPU) | static calibration wall | features wall | ranking it gave |",
        "|---|---|---|---|---|---|---|---|---|---|",
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
            f"{pc:.3f} s | {c / max(pc, 1e-9):.0f}x | {sw:.3f} s | {fw:.3f} s | "
            f"{fit.ranking}{' with pulls' if fit.pulls else ''} |"
        )
        print(lines[-1], flush=True)
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


def _outcomes(ds, rows, truth, table=None) -> pd.DataFrame:
    """The outcomes frame (:func:`labelaudit.review.learn.reviewed_outcomes`) of a reviewer who
    knows ``truth`` and decided ``rows`` in that order (planted flips changed, the rest kept)."""
    rows = np.asarray(rows, dtype=np.int64)
    flagged = (
        table["is_label_issue"].fillna(False).to_numpy(bool)[rows]
        if table is not None and "is_label_issue" in table
        else np.zeros(len(rows), bool)
    )
    return pd.DataFrame(
        {
            "item_id": ds.ids[rows].astype(str),
            "row": rows,
            "action": np.where(truth[rows], "change", "keep"),
            "changed": truth[rows],
            "audit": False,
            "queue": "ranking",
            "flagged": flagged,
            "decision_id": np.arange(1, len(rows) + 1),
            "review_order": np.arange(len(rows)),
        }
    )


# --------------------------------------------------------------------------- 4. suggestions
def part_suggestions(b: Bench, seeds: list[int], modes=MODES) -> list[str]:
    from labelaudit.review import adaptive
    from labelaudit.simulate_review import replay_adaptive_review

    lines = [
        "## 4. Suggestions refitted with the reviewed labels fixed",
        "",
        "The seeded simulated reviewer (`replay_adaptive_review`, the queue in force through a SQLite store, "
        "re-ranked every 20) decides 400 items; then `adaptive.refit_suggestions` refits the out-of-fold "
        "logistic regression with those labels fixed. Accuracy = share of the planted flips not yet reviewed "
        "whose suggestion (the arg max) is the original intent: the scan's out-of-fold model (before) against "
        "the refit (after), on the same rows.",
        "",
        "| flips | seed | flips not yet reviewed | before | after | rows gained | refit wall |",
        "|---|---|---|---|---|---|---|",
    ]
    got = []
    for seed, mode in [(s, m) for s in seeds for m in modes]:
        ds, key, res = b.flipped(mode, seed)
        details = res.detection.details if res.detection is not None else {}
        store = b.store(f"suggestions-{mode}-{seed}")
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
        before = np.asarray(res.detection.pred_probs)[rows].argmax(axis=1) == truth
        after = refit.probs[rows].argmax(axis=1) == truth
        got.append((mode, before.mean(), after.mean()))
        lines.append(
            f"| {mode} | {seed} | {len(left)} | {before.mean():.3f} | {after.mean():.3f} | "
            f"{int(after.sum()) - int(before.sum()):+d} | {secs:.0f} s |"
        )
        print(lines[-1], load(), flush=True)
    lines.append("")
    for mode in modes:
        d = [(bf, af) for m, bf, af in got if m == mode]
        if d:
            diff = [af - bf for bf, af in d]
            lines.append(
                f"- {mode}: before {mean_sd([x[0] for x in d])}, after {mean_sd([x[1] for x in d])}; "
                f"paired difference {statistics.mean(diff):+.3f} (min {min(diff):+.3f}, max {max(diff):+.3f}) "
                f"over {len(d)} seeds."
            )
    return [
        *lines,
        "",
        f"{load()} at the end of this part (refit: 5 folds on 13,083 x 384 embeddings).",
        "",
    ]


# --------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--workspace", default="/tmp/labelaudit-bench-learn")
    p.add_argument("--db-dir", default="/dev/shm/labelaudit-bench-learn")
    p.add_argument("--seeds", default="0,1,2,3,4", help="flip seeds, comma-separated")
    p.add_argument("--arms", default=",".join(ARMS), help="queues compared in the quality part")
    p.add_argument("--modes", default=",".join(MODES), help="flip modes of the quality part")
    p.add_argument("--coverage-runs", type=int, default=4)
    p.add_argument(
        "--audit-share", type=float, default=0.1, help="audit share of the coverage part"
    )
    p.add_argument("--parts", default="quality,coverage,timing,suggestions")
    p.add_argument("--detectors", choices=("core", "all"), default="core")
    p.add_argument("--out", default=str(OUT))
    p.add_argument(
        "--quality-csv",
        help="print the quality section rebuilt from a quality.csv of an earlier (or cut-short) run",
    )
    p.add_argument(
        "--coverage-csv",
        help="print the coverage section rebuilt from a coverage.csv (or several merged) of earlier runs",
    )
    args = p.parse_args(argv)
    if args.quality_csv:
        print("\n".join(quality_lines(pd.read_csv(args.quality_csv), 13_083)))
        return 0
    if args.coverage_csv:
        d = pd.read_csv(args.coverage_csv)
        runs = int(d["run"].max()) + 1
        print("\n".join(coverage_lines(d, sorted(set(d["seed"])), runs, math.nan)))
        return 0
    parts = [x.strip() for x in args.parts.split(",") if x.strip()]
    seeds = [int(x) for x in args.seeds.split(",") if x.strip()]
    arms = [x.strip() for x in args.arms.split(",") if x.strip()]
    unknown = [a for a in arms if a not in ARMS]
    if unknown:
        raise SystemExit(f"unknown arm(s) {', '.join(unknown)}; known: {', '.join(ARMS)}")
    if "static" not in arms:
        arms.insert(0, "static")  # the paired differences need it
    b = Bench(args.workspace, CORE if args.detectors == "core" else None, Path(args.db_dir))
    command = (
        f".venv/bin/python -m bench.bench_learn --workspace {args.workspace} --seeds {args.seeds} "
        f"--arms {','.join(arms)} --modes {args.modes} --coverage-runs {args.coverage_runs} --audit-share {args.audit_share:g} --parts {','.join(parts)} "
        f"--detectors {args.detectors}"
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
            lines += part_quality(b, seeds, arms, [m for m in args.modes.split(",") if m])
        elif part == "coverage":
            lines += part_coverage(
                b,
                seeds,
                args.coverage_runs,
                [m for m in args.modes.split(",") if m],
                share=args.audit_share,
            )
        elif part == "timing":
            lines += part_timing(b)
        elif part == "suggestions":
            lines += part_suggestions(b, seeds, [m for m in args.modes.split(",") if m])
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
