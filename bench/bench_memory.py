"""Peak memory of loading a CSV, per byte on disk: the figure the memory guard's factor comes from.

Run: ``.venv/bin/python -m bench.bench_memory [--sizes-mb 20 100 200] [--out bench/results/memory.md]``

For each size, a CSV of BANKING77 rows repeated until the file reaches it (``id, text, label,
split``) is loaded in a fresh process, and the process's peak resident memory above what it used
just before the call (``ru_maxrss`` minus ``VmRSS``) is divided by the file's size. Two texts: the
sample as it is (ASCII, 1 byte per character in memory) and the same texts with one emoji each (a
text with a character above U+FFFF takes 4 bytes per character in CPython). The peer is
``pandas.read_csv(path, dtype=str)`` alone, in the same kind of fresh process.
``labelaudit.io.memory`` sets its factors (CSV, JSON Lines) and allowance from these figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_data" / "banking77"
COMMAND = ".venv/bin/python -m bench.bench_memory"

_CHILD = r"""
import json, resource, sys
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
kind, path = sys.argv[1], sys.argv[2]
import pandas as pd
import labelaudit.io as lio
before = rss()
if kind == "ours":
    ds = lio.load_dataset(path)
    rows = ds.n
else:
    if path.endswith(".jsonl"):
        rows = len(pd.read_json(path, lines=True, dtype=False))
    elif path.endswith(".parquet"):
        rows = len(pd.read_parquet(path))
    else:
        rows = len(pd.read_csv(path, dtype=str, keep_default_na=False))
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"rows": rows, "before": before, "peak": peak}))
"""


def make_csv(path: Path, size: int, emoji: bool) -> int:
    """Write BANKING77 rows (repeated, ids made unique) until ``path`` holds ``size`` bytes."""
    import pandas as pd

    base = pd.read_csv(SAMPLE / "train.csv", dtype=str)
    text_col = "text" if "text" in base.columns else base.columns[0]
    label_col = "category" if "category" in base.columns else "label"
    texts = base[text_col].tolist()
    labels = base[label_col].tolist()
    if emoji:
        texts = [t + " \U0001f642" for t in texts]
    written = 0
    i = 0
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write("id,text,label,split\n")
        while written < size:
            block = []
            for t, lab in zip(texts, labels, strict=True):
                t = '"' + t.replace('"', '""') + '"'
                block.append(f"r{i},{t},{lab},train\n")
                i += 1
            chunk = "".join(block)
            f.write(chunk)
            written += len(chunk.encode("utf-8"))
    return path.stat().st_size


def measure(kind: str, path: Path) -> dict:
    env = dict(os.environ, LABELAUDIT_MEMORY_LIMIT_BYTES=str(2**40))  # the guard must not refuse
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, kind, str(path)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env=env,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes-mb", type=int, nargs="+", default=[20, 100, 200])
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "memory.md"))
    args = ap.parse_args(argv)
    load = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for emoji in (False, True):
            for mb in args.sizes_mb if not emoji else args.sizes_mb[-2:]:
                path = Path(tmp) / f"data_{mb}{'_emoji' if emoji else ''}.csv"
                size = make_csv(path, mb * 10**6, emoji)
                ours = measure("ours", path)
                peer = measure("peer", path)
                r = {
                    "text": "one emoji per text" if emoji else "ASCII (sample as is)",
                    "mb": size / 1e6,
                    "rows": ours["rows"],
                    "ours": (ours["peak"] - ours["before"]) / size,
                    "peer": (peer["peak"] - peer["before"]) / size,
                    "ours_gib": (ours["peak"] - ours["before"]) / 2**30,
                }
                rows.append(r)
                print(json.dumps(r), flush=True)
                path.unlink()
        # JSON Lines: one size, the sample's texts
        mb = args.sizes_mb[-1]
        csv_path = Path(tmp) / "for_jsonl.csv"
        make_csv(csv_path, mb * 10**6, False)
        import pandas as pd

        frame = pd.read_csv(csv_path, dtype=str)
        csv_path.unlink()
        for label, suffix in (
            ("ASCII, JSON Lines", ".jsonl"),
            ("ASCII, Parquet (snappy)", ".parquet"),
        ):
            path = Path(tmp) / f"data_{mb}{suffix}"
            if suffix == ".jsonl":
                frame.to_json(path, orient="records", lines=True, force_ascii=False)
            else:
                frame.to_parquet(path, index=False)
            size = path.stat().st_size
            ours = measure("ours", path)
            peer = measure("peer", path)
            r = {
                "text": label,
                "suffix": suffix,
                "mb": size / 1e6,
                "rows": ours["rows"],
                "ours": (ours["peak"] - ours["before"]) / size,
                "peer": (peer["peak"] - peer["before"]) / size,
                "ours_gib": (ours["peak"] - ours["before"]) / 2**30,
            }
            rows.append(r)
            print(json.dumps(r), flush=True)
            path.unlink()
        del frame
    lines = [
        "# Memory of loading a CSV",
        "",
        f"Command: `{COMMAND} --sizes-mb {' '.join(map(str, args.sizes_mb))}`",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, CPython {platform.python_version()}; "
        f"load average {load[0]:.1f} at the start (memory figures do not depend on load). "
        f"Date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC.",
        "",
        "Peak resident memory of the loading process above its level just before the call, divided "
        "by the file's size on disk. *ours* = `labelaudit.load_dataset(path)` (read, validate, "
        "canonical frame); *peer* = `pandas.read_csv(path, dtype=str)` alone "
        "(`pandas.read_json(path, lines=True)` for JSON Lines, `pandas.read_parquet` for Parquet).",
        "",
        "| texts | file MB | rows | ours: peak / file size | ours: peak GiB | peer: peak / file size | ours / peer |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['text']} | {r['mb']:.0f} | {r['rows']:,} | {r['ours']:.1f}x | {r['ours_gib']:.2f} "
            f"| {r['peer']:.1f}x | {r['ours'] / r['peer']:.2f} |"
        )
    from labelaudit.io.memory import memory_needed

    lines += [
        "",
        "The memory guard refuses a file before reading it when `memory_needed(path)` (file size x "
        "the format's factor + a fixed allowance, `labelaudit/io/memory.py`) exceeds the available "
        "memory. Its estimate next to each measured peak (it must be the larger):",
        "",
        "| texts | file MB | measured peak GiB | guard's estimate GiB |",
        "|---|---|---|---|",
    ]
    for r in rows:
        suffix = r.get("suffix", ".csv")
        est = memory_needed(int(r["mb"] * 1e6), suffix) / 2**30
        lines.append(f"| {r['text']} | {r['mb']:.0f} | {r['ours_gib']:.2f} | {est:.2f} |")
    Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
