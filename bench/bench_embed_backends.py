"""ONNX Runtime against torch for the embedding step (issue 16), in one process on the same texts.

    .venv/bin/python -m bench.bench_embed_backends                # 2,000 BANKING77 train rows
    .venv/bin/python -m bench.bench_embed_backends --rows 10003   # all of them

For each backend of :data:`labelaudit.embed.BACKENDS` (torch, onnx float32, onnx int8): seconds to
embed the texts (after a warm-up call; the ONNX export at first use is timed apart), texts per
second and the ratio to torch; the cosine of each row's vector to torch's (mean and minimum); and
the average precision of the planted flips (5 % of the rows given a uniformly drawn other class,
seed 0) under the cheap detectors (confident learning, kNN, near-duplicates, self-confidence)
run on each backend's vectors. Returns the markdown section that bench_first_run writes.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
#: Rule of issue 16 for making an ONNX backend the CPU default.
MIN_COSINE, MAX_AP_DROP = 0.99, 0.005


def planted(rows: int, seed: int = 0):
    """The first ``rows`` BANKING77 train rows with 5 % uniform flips: (dataset, flipped mask)."""
    import pandas as pd

    from labelaudit.io import load_dataset

    df = pd.read_csv(ROOT / "sample_data" / "banking77" / "train.csv").head(rows)
    df = df.rename(columns={"category": "label"})
    df.insert(0, "id", [str(i) for i in range(len(df))])
    rng = np.random.default_rng(seed)
    classes = sorted(df["label"].astype(str).unique())
    flip = rng.random(len(df)) < 0.05
    labels = df["label"].astype(str).to_numpy(dtype=object)
    for i in np.flatnonzero(flip):
        others = [c for c in classes if c != labels[i]]
        labels[i] = others[rng.integers(len(others))]
    df["label"] = labels
    return load_dataset(df[["id", "text", "label"]]), flip


def run(rows: int) -> tuple[list[str], dict]:
    from sklearn.metrics import average_precision_score

    from labelaudit import embed
    from labelaudit.detect import detect_label_issues
    from labelaudit.first_pass import DETECTORS

    ds, flip = planted(rows)
    texts = list(ds.texts)
    out: dict[str, dict] = {}
    vecs: dict[str, np.ndarray] = {}
    load0 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as cache:
        os.environ[embed.ONNX_CACHE_ENV] = cache  # a fresh export, timed
        for backend in embed.BACKENDS:
            t = time.perf_counter()
            enc = embed.load_encoder(backend=backend, device="cpu")
            enc.encode(texts[:64])  # warm-up
            ready = time.perf_counter() - t
            t = time.perf_counter()
            v = embed.embed_texts(texts, backend=backend, device="cpu")
            secs = time.perf_counter() - t
            vecs[backend] = v
            det = detect_label_issues(ds, v, detectors=list(DETECTORS), seed=0)
            ap = average_precision_score(flip, det.table["label_issue_score"].to_numpy())
            out[backend] = {"load_s": ready, "s": secs, "ap": float(ap)}
    load1 = os.getloadavg()[0]
    ref = vecs["torch"]
    lines = [
        "## ONNX Runtime against torch: the embedding step (issue 16)",
        "",
        f"Command: `.venv/bin/python -m bench.bench_embed_backends --rows {rows}`; load average "
        f"{load0:.1f} at the start and {load1:.1f} at the end (speed figures are from a loaded machine "
        "when it is above 2; ratios are in one process, same texts). "
        f"{rows:,} BANKING77 train texts, 5 % planted uniform flips (seed 0); AP of the flips under "
        f"the cheap detectors ({', '.join(DETECTORS)}) on each backend's vectors.",
        "",
        "| backend | export + load + warm-up (s) | embed (s) | texts/s | speed vs torch | cosine to torch: mean / min | planted-flip AP | AP − torch's |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    verdicts = {}
    for b, r in out.items():
        cos = (vecs[b] * ref).sum(axis=1)
        r["cos_mean"], r["cos_min"] = float(cos.mean()), float(cos.min())
        dap = r["ap"] - out["torch"]["ap"]
        lines.append(
            f"| {b} | {r['load_s']:,.1f} | {r['s']:,.1f} | {rows / r['s']:,.0f} | "
            f"{out['torch']['s'] / r['s']:.2f}x | {r['cos_mean']:.4f} / {r['cos_min']:.4f} | "
            f"{r['ap']:.4f} | {dap:+.4f} |"
        )
        if b != "torch":
            verdicts[b] = r["cos_mean"] >= MIN_COSINE and abs(dap) <= MAX_AP_DROP
    lines += [
        "",
        "Rule for the CPU default (issue 16): mean cosine ≥ 0.99 and AP within 0.005 of torch's: "
        + "; ".join(f"{b} {'passes' if ok else 'fails'}" for b, ok in verdicts.items())
        + ".",
    ]
    return lines, out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=2000)
    args = ap.parse_args(argv)
    lines, _ = run(args.rows)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
