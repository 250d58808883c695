"""Truth inference on skewed, sparse crowds (issue 12): ours against crowd-kit in the same run.

    .venv/bin/python -m bench.bench_agreement_skewed

Writes bench/results/agreement_skewed.md. The crowds come from
:func:`labelaudit.simulate_raters.simulate_skewed_crowd` (88 % one class, 3 ratings per item, one
rater with 35 % of the ratings, lognormal load for the rest, 10 % spammers). crowd-kit runs MACE with
one restart: it reseeds every restart with the same random state, so one restart is its whole answer.
crowd-kit's "likely spammers" use our old rule on its MACE competence (knowing probability < 0.3 over
at least 10 ratings), as it has no rule of its own.
"""

from __future__ import annotations

import os
import platform
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from labelaudit.agreement import Ratings, analyse_annotations, infer_truth
from labelaudit.agreement.mace import mace
from labelaudit.simulate_raters import simulate_skewed_crowd

OUT = Path(__file__).resolve().parent / "results" / "agreement_skewed.md"
CROWDS = [(4000, 176, 0), (4000, 176, 1), (800, 60, 0)]


def main() -> None:
    from crowdkit.aggregation import MACE, DawidSkene, MajorityVote

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    lines = [
        "# Truth inference on skewed crowds (issue 12)",
        "",
        "Command: `.venv/bin/python -m bench.bench_agreement_skewed`  ",
        f"Date: {datetime.now(UTC):%Y-%m-%d %H:%M UTC}; load average at start {load}  ",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores; Python {platform.python_version()}",
        "",
        "Accuracy of the consensus against the simulated gold; spammers: flagged / of them real spammers",
        "(real spammers with >= 10 ratings in brackets). `MACE (uniform prior)` is our MACE with the",
        "paper's uniform truth prior, i.e. the behaviour before this fix.",
        "",
        "| crowd | ratings | raters | median / max load | majority share | MV ours | MV crowd-kit | DS ours | DS crowd-kit | MACE ours | MACE (uniform prior) | MACE crowd-kit | spammers ours (MACE) | spammers crowd-kit MACE rule | MACE s ours / crowd-kit |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for n_items, n_raters, seed in CROWDS:
        long, gold, kind = simulate_skewed_crowd(n_items=n_items, n_raters=n_raters, seed=seed)
        r = Ratings.from_frame(long)
        truth = gold.loc[r.item_ids].to_numpy()
        names = np.asarray(r.classes)

        def acc(consensus: np.ndarray, truth: np.ndarray = truth, names=names) -> float:
            return float(np.mean(names[consensus] == truth))

        t = time.perf_counter()
        ours_mace = acc(mace(r, seed=0).consensus)
        ours_secs = time.perf_counter() - t
        uniform = acc(mace(r, seed=0, truth_prior="uniform").consensus)
        ours_mv = acc(infer_truth(r, method="mv").consensus)
        ours_ds = acc(infer_truth(r, method="ds").consensus)
        report = analyse_annotations(r, method="mace", seed=0)
        real = kind.loc[r.annotator_ids].to_numpy() != "careful"
        enough = r.n_per_annotator >= 10
        flagged = report.annotators["likely_spammer"].to_numpy()

        crowd = long.rename(columns={"item_id": "task", "annotator_id": "worker"})
        ck_mv = MajorityVote().fit_predict(crowd).loc[r.item_ids].to_numpy()
        ck_ds = DawidSkene(n_iter=100).fit_predict(crowd).loc[r.item_ids].to_numpy()
        t = time.perf_counter()
        ck = MACE(n_restarts=1, random_state=0).fit(crowd)
        ck_secs = time.perf_counter() - t
        ck_mace = ck.labels_.loc[r.item_ids].to_numpy()
        workers = list(crowd["worker"].drop_duplicates())  # crowd-kit's factorize order
        knowing = dict(zip(workers, ck.spamming_[:, 1], strict=True))
        ck_comp = np.array([knowing[a] for a in r.annotator_ids])
        ck_flag = (ck_comp < 0.3) & enough
        load_counts = long["annotator_id"].value_counts()
        lines.append(
            f"| {n_items} items, seed {seed} | {len(long):,} | {r.n_annotators} | "
            f"{load_counts.median():.0f} / {load_counts.max():,} | {(gold == 'neg').mean():.3f} | "
            f"{ours_mv:.4f} | {np.mean(ck_mv == truth):.4f} | {ours_ds:.4f} | {np.mean(ck_ds == truth):.4f} | "
            f"**{ours_mace:.4f}** | {uniform:.4f} | {np.mean(ck_mace == truth):.4f} | "
            f"{int(flagged.sum())} / {int((flagged & real).sum())} ({int((real & enough).sum())}) | "
            f"{int(ck_flag.sum())} / {int((ck_flag & real).sum())} | {ours_secs:.1f} / {ck_secs:.1f} |"
        )
        print(lines[-1], flush=True)
    lines += [
        "",
        "On the shared crowds with gold (Snow et al. 2008), see the agreement section: the fix keeps",
        "MACE at or above crowd-kit there (temporal 0.9437 with the new defaults).",
        "",
    ]
    OUT.write_text("\n".join(lines), encoding="utf-8")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
