"""Benchmark the scan: BANKING77 train (10k) and 100k synthetic 384-d rows; the Explore map in Chromium.

    .venv/bin/python -m bench.bench_scan                   # everything, writes bench/results/scan.md
    .venv/bin/python -m bench.bench_scan --parts banking   # one part: banking, embed, pca, synthetic, page

Parts (each runs its measurements in fresh subprocesses, as a user's CLI run or server would):

- ``banking``: cold scan of BANKING77 train per step (new process, empty workspace: includes importing
  torch, loading the model and numba's UMAP compilation), then the warm re-scan (same inputs) in a
  new process and in the same process.
- ``embed``: embedding throughput of :func:`labelaudit.embed.embed_texts` against a bare
  ``SentenceTransformer.encode`` of the same 10k texts in the same process (ratio; goal >= 0.9).
- ``pca``: the projection with and without PCA-to-50 first on the 10k BANKING77 embeddings: time
  and how many of each row's 15 nearest neighbours (cosine, 384-d) stay among its 15 nearest on the map.
- ``synthetic``: 100k synthetic 384-d rows (a mixture of 100 Gaussian blobs, normalised): time and peak
  resident memory of projection and clustering (RSS sampled every 0.1 s, attributed to the step).
- ``page``: the Explore page of the 100k scan in headless Chromium against a bare Plotly page of the
  same (sampled) points, and of all 100k points.
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
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "scan.md"
PY = sys.executable
ENV = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONPATH=str(ROOT))


def run_py(code: str, timeout: float = 3600) -> dict:
    """Run PRELUDE + ``code`` in a fresh Python; it prints one JSON object on its last stdout line."""
    t = time.perf_counter()
    out = subprocess.run(
        [PY, "-c", PRELUDE + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=ENV,
        timeout=timeout,
    )
    wall = time.perf_counter() - t
    if out.returncode != 0:
        raise RuntimeError(f"benchmark subprocess failed:\n{out.stderr[-4000:]}")
    res = json.loads(out.stdout.strip().splitlines()[-1])
    res["process_wall_s"] = wall
    return res


# Shared by the subprocesses: the BANKING77 train split and an RSS sampler that attributes peaks to steps.
PRELUDE = """
import json, os, sys, threading, time
import numpy as np
from labelaudit.io import load_dataset

def banking_train():
    ds = load_dataset("sample_data/banking77")
    return ds.subset(ds.split_mask("train"))

def rss_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0

class StepMemory:
    '''progress callback that records the peak RSS (MiB) seen during each step.'''
    def __init__(self):
        self.step = "start"; self.peak = {}; self.base = rss_mib(); self._stop = False
        threading.Thread(target=self._run, daemon=True).start()
    def __call__(self, step, done, total):
        self.step = step.split(":")[0]
    def _run(self):
        while not self._stop:
            self.peak[self.step] = max(self.peak.get(self.step, 0.0), rss_mib()); time.sleep(0.1)
    def stop(self):
        self._stop = True; time.sleep(0.15); return self.peak
"""


def part_banking(ws: Path) -> dict:
    cold = run_py(f"""
        from labelaudit.scanning import scan
        ds = banking_train()
        mem = StepMemory()
        t = time.perf_counter()
        res = scan(ds, workspace={str(ws)!r}, progress=mem)
        total = time.perf_counter() - t
        print(json.dumps({{"rows": ds.n, "timings": res.timings, "scan_call_s": total, "peak_rss_mib": mem.stop(),
                          "clusters": int((res.clusters["cluster"] >= 0).sum()),
                          "noise_rows": int((res.table["cluster"] < 0).sum()),
                          "weighted_purity": float((res.clusters.query("cluster >= 0")["purity"]
                                                    * res.clusters.query("cluster >= 0")["size"]).sum()
                                                   / max(1, res.clusters.query("cluster >= 0")["size"].sum()))}}))
    """)
    warm = run_py(f"""
        t0 = time.perf_counter()
        from labelaudit.scanning import scan
        ds = banking_train()
        t = time.perf_counter()
        res = scan(ds, workspace={str(ws)!r})
        first = time.perf_counter() - t
        t = time.perf_counter()
        res = scan(ds, workspace={str(ws)!r})
        second = time.perf_counter() - t
        heavy = [m for m in ("umap", "numba", "torch", "sentence_transformers") if m in sys.modules]
        print(json.dumps({{"warm_scan_new_process_s": first, "warm_scan_same_process_s": second,
                          "load_s": res.timings.get("load"), "heavy_modules_imported": heavy}}))
    """)
    return {"cold": cold, "warm": warm}


def part_embed(rows: int) -> dict:
    return run_py(f"""
        from labelaudit.embed import embed_texts, load_model
        texts = banking_train().texts[:{rows}]
        model = load_model()
        model.encode(texts[:256])  # warm-up: first-call overheads
        runs = {{"bare": [], "labelaudit": []}}
        for _ in range(2):  # alternate so drift on a shared machine hits both
            t = time.perf_counter(); model.encode(texts); runs["bare"].append(time.perf_counter() - t)
            t = time.perf_counter(); embed_texts(texts); runs["labelaudit"].append(time.perf_counter() - t)
        best = {{k: min(v) for k, v in runs.items()}}
        print(json.dumps({{"rows": len(texts), "runs_s": runs, "best_s": best,
                          "texts_per_s": {{k: len(texts) / v for k, v in best.items()}},
                          "ratio_labelaudit_over_bare": best["bare"] / best["labelaudit"]}}))
    """)


def part_pca(ws: Path) -> dict:
    return run_py(f"""
        from labelaudit.scanning import get_embeddings
        from labelaudit import projection
        from sklearn.neighbors import NearestNeighbors
        ds = banking_train()
        emb = get_embeddings(ds, workspace={str(ws)!r})
        # numba compilation (UMAP and, from 4,096 rows, NN-descent), not timed
        projection.map_and_cluster_space(emb[:4500], seed=0, pca_min_rows=0)
        projection.map_and_cluster_space(emb[:4500], seed=0, pca_min_rows=10**9)
        k = 15
        true = NearestNeighbors(n_neighbors=k + 1).fit(emb).kneighbors(emb, return_distance=False)[:, 1:]
        out = {{}}
        for name, min_rows in (("no_pca", 10**9), ("pca50_first", 0)):
            t = time.perf_counter()
            xy, space = projection.map_and_cluster_space(emb, seed=0, pca_min_rows=min_rows)
            secs = time.perf_counter() - t
            got = NearestNeighbors(n_neighbors=k + 1).fit(xy).kneighbors(xy, return_distance=False)[:, 1:]
            kept = np.mean([len(set(a) & set(b)) / k for a, b in zip(true, got)])
            out[name] = {{"seconds": secs, "knn15_preserved_on_map": float(kept)}}
        out["ratio_pca_time_over_no_pca"] = out["pca50_first"]["seconds"] / out["no_pca"]["seconds"]
        print(json.dumps(out))
    """)


def part_synthetic(ws: Path, n: int) -> dict:
    return run_py(
        f"""
        import pandas as pd
        from labelaudit import detect
        from labelaudit.detect import Detection
        from labelaudit.scanning import scan
        from labelaudit.workspace import Workspace
        rng = np.random.default_rng(0)
        n, d, blobs = {n}, 384, 100
        centres = rng.standard_normal((blobs, d)).astype(np.float32)
        which = rng.integers(0, blobs, n)
        emb = centres[which] + 0.6 * rng.standard_normal((n, d)).astype(np.float32)
        emb /= np.linalg.norm(emb, axis=1, keepdims=True)
        words = [f"w{{i}}" for i in range(500)]
        texts = [f"topic{{b}} " + " ".join(rng.choice(words, 4)) + f" row{{i}}" for i, b in enumerate(which)]
        labels = [f"class{{b % 20}}" for b in which]
        ds = load_dataset(pd.DataFrame({{"text": texts, "label": labels}}), embeddings=emb)
        Workspace({str(ws)!r}).save_dataset(ds)
        # Detection is benchmarked by its own issue; keep it out of these figures.
        detect.detect_label_issues = lambda ds, e, **kw: Detection(table=pd.DataFrame(index=range(ds.n)))
        from labelaudit import projection
        projection.map_and_cluster_space(emb[:500], seed=0)  # numba compilation, not timed
        mem = StepMemory()
        res = scan(ds, workspace={str(ws)!r}, progress=mem)
        peak = mem.stop()
        print(json.dumps({{"rows": n, "dims": d, "timings": res.timings, "peak_rss_mib": peak,
                          "baseline_rss_mib": mem.base, "dataset_hash": ds.content_hash,
                          "clusters": int((res.clusters["cluster"] >= 0).sum()),
                          "noise_rows": int((res.table["cluster"] < 0).sum())}}))
    """,
        timeout=7200,
    )


def part_page_setup(ws: Path, n: int) -> str:
    """A stored 100k-row scan for the page part without UMAP: the synthetic rows' 2-D PCA is given as
    embeddings (2-D input is used as the map as is). Page cost depends on the stored points, not on
    how they were projected; UMAP's own cost is the synthetic part."""
    res = run_py(f"""
        import pandas as pd
        from labelaudit import detect
        from labelaudit.detect import Detection
        from labelaudit.projection import pca_reduce
        from labelaudit.scanning import scan
        from labelaudit.workspace import Workspace
        rng = np.random.default_rng(0)
        n, d, blobs = {n}, 384, 100
        centres = rng.standard_normal((blobs, d)).astype(np.float32)
        which = rng.integers(0, blobs, n)
        emb = centres[which] + 0.6 * rng.standard_normal((n, d)).astype(np.float32)
        xy = pca_reduce(emb, 2)
        words = [f"w{{i}}" for i in range(500)]
        texts = [f"topic{{b}} " + " ".join(rng.choice(words, 4)) + f" row{{i}}" for i, b in enumerate(which)]
        labels = [f"class{{b % 20}}" for b in which]
        ds = load_dataset(pd.DataFrame({{"text": texts, "label": labels}}), embeddings=xy)
        Workspace({str(ws)!r}).save_dataset(ds)
        detect.detect_label_issues = lambda ds, e, **kw: Detection(table=pd.DataFrame(index=range(ds.n)))
        scan(ds, workspace={str(ws)!r})
        print(json.dumps({{"dataset_hash": ds.content_hash}}))
    """)
    return str(res["dataset_hash"])


def part_page(ws: Path, dataset_hash: str) -> dict:
    sys.path.insert(0, str(ROOT))
    import numpy as np
    import plotly.graph_objects as go
    from playwright.sync_api import sync_playwright

    from components.scan import build_map_figure
    from labelaudit.scanning import MAX_MAP_POINTS, load_cached_scan, map_sample
    from labelaudit.workspace import Workspace
    from tests.conftest import CHROMIUM, CHROMIUM_ARGS, StreamlitServer, wait_for_app

    wsp = Workspace(ws)
    ds = wsp.load_dataset(dataset_hash)
    res = load_cached_scan(ds, workspace=wsp)
    assert res is not None, "run the synthetic part first"
    rows = map_sample(res.table["given_label"].to_numpy(), max_points=MAX_MAP_POINTS)
    texts = ds.frame["text"]
    tmp = Path(tempfile.mkdtemp())
    pages = {}
    for name, idx in (
        ("bare_plotly_same_points", rows),
        ("bare_plotly_all_points", np.arange(ds.n)),
    ):
        fig: go.Figure = build_map_figure(res.table.iloc[idx], texts.iloc[idx])
        p = tmp / f"{name}.html"
        fig.write_html(p, include_plotlyjs=True, full_html=True)
        pages[name] = p
    ready_js = "() => { const g = document.querySelector('.js-plotly-plot'); return g && g._fullLayout && document.querySelector('.js-plotly-plot .nsewdrag'); }"
    out: dict = {"points_drawn_by_app": int(len(rows)), "rows": int(ds.n)}
    server = StreamlitServer(ws, dataset_hash)
    try:
        with sync_playwright() as pw:
            b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            for attempt in range(3):
                for name, p in pages.items():
                    pg = b.new_page(viewport={"width": 1400, "height": 1000})
                    t = time.perf_counter()
                    pg.goto(p.as_uri(), wait_until="commit", timeout=300_000)
                    pg.wait_for_function(ready_js, timeout=300_000)
                    out.setdefault(name + "_s", []).append(time.perf_counter() - t)
                    pg.close()
                pg = b.new_page(viewport={"width": 1400, "height": 1000})
                pg.goto(server.url)
                pg.get_by_role("heading", name="Data").first.wait_for(timeout=120_000)
                t = time.perf_counter()
                pg.goto(f"{server.url}/explore")
                pg.wait_for_function(ready_js, timeout=300_000)
                wait_for_app(pg)
                key = "app_explore_first_view_s" if attempt == 0 else "app_explore_repeat_view_s"
                out.setdefault(key, []).append(time.perf_counter() - t)
                pg.close()
            b.close()
    finally:
        server.stop()
    best = {k: min(v) for k, v in out.items() if isinstance(v, list)}
    out["best_s"] = best
    out["ratio_app_repeat_over_bare_same_points"] = (
        best["app_explore_repeat_view_s"] / best["bare_plotly_same_points_s"]
    )
    out["ratio_app_first_over_bare_same_points"] = (
        best["app_explore_first_view_s"] / best["bare_plotly_same_points_s"]
    )
    out["ratio_app_repeat_over_bare_all_points"] = (
        best["app_explore_repeat_view_s"] / best["bare_plotly_all_points_s"]
    )
    return out


def machine() -> str:
    import torch

    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{os.cpu_count()}-core {platform.machine()}, {mem:.0f} GiB, no GPU "
        f"(torch {torch.__version__}, CUDA available: {torch.cuda.is_available()}), Python {platform.python_version()}"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--parts", default="banking,embed,pca,synthetic,page")
    ap.add_argument("--synthetic-rows", type=int, default=100_000)
    ap.add_argument(
        "--embed-rows", type=int, default=10_003, help="BANKING77 train texts in the embedding part"
    )
    ap.add_argument(
        "--banking-workspace",
        help="reuse this workspace for the BANKING77 parts (default: a temporary one)",
    )
    ap.add_argument(
        "--json",
        default=str(ROOT / "bench" / "results" / "scan_latest.json"),
        help="raw figures of this run (merged into an existing file); scan.json holds the quoted runs",
    )
    args = ap.parse_args(argv)
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    raw: dict = json.loads(Path(args.json).read_text()) if Path(args.json).exists() else {}
    raw["machine"] = machine()
    raw["date"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    with tempfile.TemporaryDirectory(prefix="bench_scan_") as tmp:
        ws_bank, ws_syn = (
            Path(args.banking_workspace or Path(tmp) / "banking"),
            Path(tmp) / "synthetic",
        )
        for part in parts:
            t = time.perf_counter()
            print(f"[bench_scan] {part} …", file=sys.stderr, flush=True)
            if part == "banking":
                raw["banking"] = part_banking(ws_bank)
            elif part == "embed":
                raw["embed"] = part_embed(args.embed_rows)
            elif part == "pca":
                raw["pca"] = part_pca(ws_bank)
            elif part == "synthetic":
                raw["synthetic"] = part_synthetic(ws_syn, args.synthetic_rows)
            elif part == "page":
                if "synthetic" in parts:
                    h = raw["synthetic"]["dataset_hash"]
                else:
                    h = part_page_setup(ws_syn, args.synthetic_rows)
                    raw["page_setup"] = (
                        "2-D PCA of the synthetic rows as the map (no UMAP); see part_page_setup"
                    )
                raw["page"] = part_page(ws_syn, h)
            else:
                raise SystemExit(f"unknown part {part}")
            raw.setdefault("load_average_1min_at_end", {})[part] = os.getloadavg()[0]
            print(
                f"[bench_scan] {part} done in {time.perf_counter() - t:.0f} s",
                file=sys.stderr,
                flush=True,
            )
            Path(args.json).write_text(json.dumps(raw, indent=1))
    print(json.dumps(raw, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
