"""The dataset version (Dataset.content_hash) next to the separator-joined hash it replaced.

.venv/bin/python -m bench.bench_hash            (writes bench/results/hash.md)

Both hash the same synthetic frame (id, text, label, split, one metadata column) in the same
process; the best of three runs each. The peer is the format-1 hash (fields joined with \\x1f, texts
with \\x00, metadata through pandas.util.hash_pandas_object), kept here only as the baseline.
"""

from __future__ import annotations

import hashlib
import os
import platform
import time
from pathlib import Path

import pandas as pd

from labelaudit.dataset import Dataset

OUT = Path(__file__).resolve().parent / "results" / "hash.md"
SIZES = (100_000, 1_000_000)


def frame(n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [str(i) for i in range(n)],
            "text": [f"text number {i} about things {i % 97}" for i in range(n)],
            "label": [("x", "y")[i % 2] for i in range(n)],
            "split": ["train"] * n,
            "meta": [f"m{i % 5}" for i in range(n)],
        }
    )


def separator_hash(ds: Dataset) -> str:
    """The format-1 version: what issue 19 found colliding."""
    h = hashlib.sha256()
    for t in ds.frame["text"].tolist():
        h.update(t.encode("utf-8"))
        h.update(b"\x00")
    text_hash = h.hexdigest()[:20]
    h = hashlib.sha256()
    h.update(text_hash.encode())
    for col in ("id", "label", "split"):
        h.update("\x1f".join(ds.frame[col].tolist()).encode("utf-8"))
    h.update("\x1f".join(ds.classes).encode("utf-8"))
    meta = ds.frame[ds.metadata_columns].astype(str)
    h.update(pd.util.hash_pandas_object(meta, index=False).to_numpy().tobytes())
    return h.hexdigest()[:20]


def best_of(fn, df: pd.DataFrame, runs: int = 3) -> float:
    best = float("inf")
    for _ in range(runs):
        ds = Dataset(frame=df, classes=["x", "y"])  # fresh: content_hash is cached per object
        t = time.perf_counter()
        fn(ds)
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    load = os.getloadavg()
    rows = []
    for n in SIZES:
        df = frame(n)
        new = best_of(lambda ds: ds.content_hash, df)
        old = best_of(separator_hash, df)
        rows.append(f"| {n:,} | {new:.3f} | {old:.3f} | {new / old:.2f} |")
    OUT.write_text(
        "\n".join(
            [
                "# Dataset version hash",
                "",
                "`.venv/bin/python -m bench.bench_hash` — the length-prefixed dataset version "
                "(labelaudit/hashing.py) against the separator-joined hash it replaced, same frame, "
                "same process, best of 3.",
                f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
                f"{platform.python_version()}; load average {load[0]:.1f} at the start.",
                "",
                "| rows | content_hash (s) | old separator hash (s) | ratio new/old |",
                "|---:|---:|---:|---:|",
                *rows,
                "",
            ]
        ),
        encoding="utf-8",
    )
    print(OUT.read_text(encoding="utf-8"))


if __name__ == "__main__":
    main()
