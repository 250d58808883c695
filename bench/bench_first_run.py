"""Benchmark the first run (issue 16): the background scan the app starts on its own, on the bundled
sample (or its first ``--rows`` train rows) with an empty workspace.

    .venv/bin/python -m bench.bench_first_run                 # the whole sample (13,083 rows)
    .venv/bin/python -m bench.bench_first_run --rows 2000     # a quicker slice

Measures, as the app runs it (``labelaudit.jobs.start_scan`` in process mode, a process of its own):

- seconds from the start until the first pass is stored (a provisional map on Explore and a
  provisional queue on Label issues; goal: within 60 s) and until the full scan is stored (the
  moment every page fills in);
- the seconds of each step from the job's own status file, and the whole scan against the embedding
  step alone (goal: at most 1.3x);
- the estimate the app showed before the start, against the measured time;
- a page view of the stored results: ``load_cached_scan`` (and ``load_first_pass``) in a new
  process (goal: under 2 s);
- with ``--parts onnx`` (default both): ONNX Runtime against torch for the embedding step
  (:mod:`bench.bench_embed_backends`, ``--onnx-rows`` texts);
- with ``--parts clusters``: one UMAP fit or two: HDBSCAN on the 2-D map against HDBSCAN on a
  second, 10-D UMAP fit (``min_dist=0``, what the scan did before), on the whole sample's
  embeddings (cached in ``.labelaudit-bench``): the seconds of each fit, adjusted Rand index and
  NMI against the 10-D clusters and against the given labels, the noise share, and the map's
  trustworthiness@10 (scikit-learn, on a seeded 3,000-row sample);
- with ``--parts embed``: the scan's embedding call (:func:`labelaudit.embed.embed_texts`: length
  sorted chunks, batch 64) against a bare ``SentenceTransformer.encode`` of the same texts
  (sentence-transformers' defaults: batch 32, its own length sort), in one process, each run twice
  in alternation after a warm-up (``--embed-rows`` sample texts): texts per second and the ratio.

Writes its sections into bench/results/first_run.md (each replaces the section of the same heading;
the file's other sections are kept), with the command and the load average (``os.getloadavg``) at
start and end next to the figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "first_run.md"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=0, help="first N rows of the sample (0 = all)")
    ap.add_argument("--parts", default="scan,onnx", help="comma-separated: scan, onnx")
    ap.add_argument("--onnx-rows", type=int, default=2000)
    ap.add_argument("--embed-rows", type=int, default=4000)
    ap.add_argument(
        "--no-alone",
        dest="alone",
        action="store_false",
        help="scan part: skip timing the embedding alone in a new process after the scan",
    )
    ap.add_argument(
        "--stored-embeddings",
        action="store_true",
        help="scan part: the workspace starts with every text's embeddings (the sample's and the "
        "first pass's, from .labelaudit-bench): times only what follows the embedding",
    )
    ap.add_argument(
        "--until",
        choices=("full", "first-pass"),
        default="full",
        help="first-pass: stop the job once the first pass is stored (the 60 s goal alone)",
    )
    args = ap.parse_args(argv)
    parts = set(args.parts.split(","))
    lines: list[str] = []
    if "scan" in parts:
        lines += scan_part(args)
    if "onnx" in parts:
        from bench.bench_embed_backends import run

        lines += ([""] if lines else []) + run(args.onnx_rows)[0]
    if "embed" in parts:
        lines += ([""] if lines else []) + embed_part(args.embed_rows)
    if "clusters" in parts:
        lines += ([""] if lines else []) + clusters_part()
    write_sections(RESULTS, lines)
    print("\n".join(lines))


def write_sections(path: Path, lines: list[str]) -> None:
    """Put each ``## `` section of ``lines`` into ``path``: a section with the same heading is
    replaced, a new one goes at the top (the newest run first); every other section of the file
    is kept (the quiet-machine figures of an earlier run are not overwritten by a run of another
    part)."""

    def split(text_lines: list[str]) -> list[list[str]]:
        out: list[list[str]] = []
        for line in text_lines:
            if line.startswith("## ") or not out:
                out.append([])
            out[-1].append(line)
        return out

    old = split(path.read_text(encoding="utf-8").splitlines()) if path.exists() else []
    new = split(lines)
    heads = {sec[0]: sec for sec in new if sec and sec[0].startswith("## ")}
    kept = [heads.pop(sec[0], sec) if sec and sec[0] in heads else sec for sec in old]
    merged = [sec for sec in new if sec and sec[0] in heads] + kept
    body = "\n\n".join("\n".join(sec).rstrip("\n") for sec in merged)
    path.write_text(body.rstrip("\n") + "\n", encoding="utf-8")


def embed_part(rows: int) -> list[str]:
    """The scan's embed_texts against a bare SentenceTransformer.encode, same texts, one process."""
    import numpy as np
    import torch

    from labelaudit import embed
    from labelaudit.io import load_dataset

    ds = load_dataset(ROOT / "sample_data" / "banking77")
    texts = list(ds.texts[:rows])
    model = embed.load_model(None)
    load_start = os.getloadavg()
    started_at = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    model.encode(texts[:256], show_progress_bar=False)  # warm-up
    runs: dict[str, list[float]] = {"scan": [], "bare": []}
    out: dict[str, np.ndarray] = {}
    for _ in range(2):
        for name in ("scan", "bare"):
            t = time.perf_counter()
            if name == "scan":
                out[name] = embed.embed_texts(texts)
            else:
                out[name] = model.encode(
                    texts, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
                )
            runs[name].append(time.perf_counter() - t)
    load_end = os.getloadavg()
    cos = float(np.min(np.sum(out["scan"] * out["bare"], axis=1)))
    best = {k: min(v) for k, v in runs.items()}
    return [
        "## The embedding step in the scan against a bare model call (issue 16)",
        "",
        f"Command: `.venv/bin/python -m bench.bench_first_run --parts embed --embed-rows {rows}`; "
        f"{started_at}; load average {load_start[0]:.1f} at the start and {load_end[0]:.1f} at "
        f"the end; torch {torch.__version__}, {torch.get_num_threads()} intra-op threads. "
        f"The first {len(texts):,} texts of the bundled sample, one process, after a warm-up "
        "call; each call run twice in alternation, the faster run kept.",
        "",
        "| call | seconds (both runs) | texts/s (faster run) |",
        "|---|---:|---:|",
        f"| the scan's `embed_texts` (length-sorted chunks of {embed.CHUNK_SIZE}, batch "
        f"{embed.DEFAULT_BATCH_SIZE}) | {runs['scan'][0]:.1f}, {runs['scan'][1]:.1f} | "
        f"{len(texts) / best['scan']:,.0f} |",
        f"| bare `SentenceTransformer.encode` (batch 32) | {runs['bare'][0]:.1f}, "
        f"{runs['bare'][1]:.1f} | {len(texts) / best['bare']:,.0f} |",
        f"| scan / bare (time) | {best['scan'] / best['bare']:.2f}x | |",
        "",
        f"Same vectors: the lowest cosine between the two calls' rows is {cos:.6f}.",
    ]


def clusters_part() -> list[str]:
    """HDBSCAN on the 2-D map against HDBSCAN on a second, 10-D UMAP fit: time and agreement."""
    import numpy as np
    from sklearn.manifold import trustworthiness
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    from labelaudit import projection, scanning
    from labelaudit.clustering import cluster_points
    from labelaudit.io import load_dataset
    from labelaudit.neighbours import SCAN_K, build_neighbour_graph

    ds = load_dataset(ROOT / "sample_data" / "banking77")
    emb = np.asarray(scanning.get_embeddings(ds, workspace=ROOT / ".labelaudit-bench"))
    load_start = os.getloadavg()
    started_at = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    graph = build_neighbour_graph(emb, k=SCAN_K, seed=0)
    x = projection.prepare_for_umap(emb, seed=0)
    knn = graph.umap_knn(projection.N_NEIGHBORS)
    projection.import_umap()
    projection.umap_fit(x[:500], 2, seed=0)  # numba's cached functions loaded, not timed

    def timed(fn):
        t = time.perf_counter()
        out = fn()
        return out, time.perf_counter() - t

    xy, t_map = timed(lambda: projection.umap_fit(x, 2, seed=0, knn=knn))
    space, t_10 = timed(lambda: projection.umap_fit(x, 10, seed=0, min_dist=0.0, knn=knn))
    ten, t_c10 = timed(lambda: cluster_points(space, seed=0))
    two, t_c2 = timed(lambda: cluster_points(xy, seed=0))
    load_end = os.getloadavg()
    y = ds.labels
    rows = np.sort(np.random.default_rng(0).choice(ds.n, 3000, replace=False))
    trust = trustworthiness(emb[rows], xy[rows], n_neighbors=10, metric="cosine")

    def row(name: str, c: np.ndarray, fit: float, clus: float) -> str:
        ok = c != -1
        return (
            f"| {name} | {fit:.1f} | {clus:.2f} | {int(c.max()) + 1} | {(~ok).mean():.1%} | "
            f"{adjusted_rand_score(ten, c):.4f} / {normalized_mutual_info_score(ten, c):.4f} | "
            f"{adjusted_rand_score(y, c):.4f} / {normalized_mutual_info_score(y, c):.4f} | "
            f"{adjusted_rand_score(y[ok], c[ok]):.4f} / "
            f"{normalized_mutual_info_score(y[ok], c[ok]):.4f} |"
        )

    return [
        "## One UMAP fit or two: the clusters on the 2-D map (issue 16)",
        "",
        "Command: `.venv/bin/python -m bench.bench_first_run --parts clusters`; "
        f"{started_at}; load average {load_start[0]:.1f} at the start and {load_end[0]:.1f} at "
        f"the end. The bundled sample's {ds.n:,} rows ({ds.k} classes), their stored embeddings, "
        "the scan's shared cosine graph given to UMAP (seeded, so single-threaded), HDBSCAN with "
        "the scan's settings. ARI / NMI: scikit-learn's adjusted Rand index and normalised mutual "
        "information (noise, -1, counted as one more cluster); 'clustered rows' leaves the noise out.",
        "",
        "| clusters found on | extra UMAP fit (s) | HDBSCAN (s) | clusters | noise | "
        "ARI / NMI vs the 10-D clusters | ARI / NMI vs given labels | "
        "the same, clustered rows only |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        row("a second UMAP fit, 10-D, min_dist 0 (before)", ten, t_10, t_c10),
        row("the 2-D map (now: one fit)", two, 0.0, t_c2),
        "",
        f"The 2-D map itself is the same either way: {t_map:.1f} s, trustworthiness@10 "
        f"{trust:.4f} (cosine, 3,000 seeded rows).",
    ]


def embedding_alone(ds) -> float:
    """Seconds to load the model and embed every text of ``ds`` in a new process with nothing
    beside it (the scan's own embedding steps may share the cores with the map's worker)."""
    code = (
        "import json,sys,time\n"
        "t=time.perf_counter()\n"
        "from labelaudit import embed\n"
        "from labelaudit.io import load_dataset\n"
        f"ds=load_dataset({str(ROOT / 'sample_data' / 'banking77')!r})\n"
        f"texts=list(ds.texts[:{ds.n}])\n"
        "t=time.perf_counter()\n"
        "embed.embed_texts(texts)\n"
        "print(json.dumps({'s': time.perf_counter()-t}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    return float(json.loads(out.stdout.strip().splitlines()[-1])["s"])


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a live process (``/proc/<pid>/stat``), None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / _TICK


def _children(pid: int) -> list[int]:
    try:
        return [
            int(c)
            for t in Path(f"/proc/{pid}/task").iterdir()
            for c in (t / "children").read_text().split()
        ]
    except (OSError, ValueError):
        return []


class CpuBySteps:
    """CPU seconds of the job's process and of its worker processes (the map's), added to the step
    the job's status file names at each poll: which process did the work of each step, and how
    much of the two cores the job used while it ran."""

    def __init__(self) -> None:
        self.last: dict[int, float] = {}
        self.job: dict[str, float] = {}
        self.worker: dict[str, float] = {}
        self.wall: dict[str, float] = {}
        self.t = time.perf_counter()

    def poll(self, pid: int, step: str) -> None:
        now = time.perf_counter()
        step = step or "starting"
        self.wall[step] = self.wall.get(step, 0.0) + now - self.t
        self.t = now
        for p, into in [(pid, self.job)] + [(c, self.worker) for c in _children(pid)]:
            cpu = _cpu_seconds(p)
            if cpu is None:
                continue
            into[step] = into.get(step, 0.0) + cpu - self.last.get(p, 0.0)
            self.last[p] = cpu

    def rows(self) -> list[str]:
        steps = list(dict.fromkeys([*self.wall, *self.job, *self.worker]))
        out = [
            "| step (as the status file named it at each poll) | wall s | job process CPU s | "
            "worker CPU s | cores busy |",
            "|---|---:|---:|---:|---:|",
        ]
        for s in steps:
            w, j, k = self.wall.get(s, 0.0), self.job.get(s, 0.0), self.worker.get(s, 0.0)
            out.append(f"| {s} | {w:,.1f} | {j:,.1f} | {k:,.1f} | {(j + k) / w if w else 0:.2f} |")
        w, j, k = sum(self.wall.values()), sum(self.job.values()), sum(self.worker.values())
        out.append(f"| all | {w:,.1f} | {j:,.1f} | {k:,.1f} | {(j + k) / w if w else 0:.2f} |")
        return out


def store_embeddings(ws, ds) -> None:
    """Put the embeddings of every text of ``ds`` and of its first pass's sample into ``ws``
    (computed once into .labelaudit-bench), so the job's embedding steps only read them."""
    import numpy as np

    from labelaudit import first_pass, scanning

    emb = np.asarray(scanning.get_embeddings(ds, workspace=ROOT / ".labelaudit-bench"))
    ws.save(ds.text_hash, "embeddings", emb, {"model": scanning.embeddings_key(ds)})
    if first_pass.wanted(ds):
        mask = first_pass.sample_mask(ds, seed=0)
        sample = ds.subset(mask)
        ws.save(
            sample.text_hash, "embeddings", emb[mask], {"model": scanning.embeddings_key(sample)}
        )


def rebased(steps: dict[str, float], stored: float, n: int) -> list[str]:
    """`labelaudit.jobs.ROUGH_SECONDS_PER_ROW` re-based on this run (to paste after a quiet run):
    the embedding, map, graph and clustering steps (first pass included) per row, and the rest of
    the start → stored time under "detection", so the estimate is this run's wall time."""

    def part(name: str) -> float:
        return steps.get(name, 0.0) + steps.get(f"first pass: {name}", 0.0)

    parts = {k: part(k) for k in ("embedding", "projection", "neighbour graph", "clustering")}
    parts["detection"] = stored - sum(parts.values())
    body = ", ".join(f'"{k}": {v:.1f} / {n:_}' for k, v in parts.items())
    return [
        "",
        f"`labelaudit.jobs.ROUGH_SECONDS_PER_ROW` re-based on this run (its sum is the start → "
        f"stored time, {stored:,.1f} s; use it only from a quiet machine): `{{{body}}}`.",
    ]


def scan_part(args) -> list[str]:
    os.environ["LABELAUDIT_SCAN_RUNNER"] = "process"
    from labelaudit import jobs
    from labelaudit.io import load_dataset
    from labelaudit.workspace import Workspace

    ds = load_dataset(ROOT / "sample_data" / "banking77")
    if args.rows:
        import numpy as np

        ds = ds.subset(np.arange(ds.n) < args.rows)
    options = {"cluster_method": "hdbscan", "n_clusters": None, "seed": 0}
    load_start = os.getloadavg()
    started_at = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace(Path(tmp) / "ws")
        ws.save_dataset(ds)
        if args.stored_embeddings:
            store_embeddings(ws, ds)
        t0 = time.perf_counter()
        first = jobs.start_scan(ws, ds, options)
        assert first is not None
        estimate, source = first.estimate_seconds, first.estimate_source
        first_pass_at = None
        cpu = CpuBySteps()
        while True:
            st = jobs.read_status(ws, ds, options)
            if st is not None and st.pid:
                cpu.poll(st.pid, st.step)
            if first_pass_at is None and st is not None and st.first_pass:
                first_pass_at = time.perf_counter() - t0
                if args.until == "first-pass":
                    os.kill(st.pid, signal.SIGTERM)
                    break
            if st is None or st.state != jobs.RUNNING:
                break
            time.sleep(0.25)
            jobs.reap()
        stored = time.perf_counter() - t0
        partial = args.until == "first-pass"
        if not partial and (st is None or st.state != jobs.COMPLETE):
            raise SystemExit(f"scan did not complete: {st}")
        if not partial:
            # The scan is stored a moment before the job writes its last step's time (its
            # finish): wait for that, or the last step (agreement) is missing from the sum.
            status_file = (
                ws.root
                / "jobs"
                / f"{jobs.job_name(ds.content_hash, jobs._scan_params(ds, options))}.json"
            )
            for _ in range(60):
                raw = json.loads(status_file.read_text(encoding="utf-8"))
                if raw.get("state") == jobs.COMPLETE:
                    st.finished = raw.get("finished", st.finished)
                    st.beside = raw.get("beside", {})
                    break
                time.sleep(0.5)
        steps = dict(st.finished)
        beside = dict(getattr(st, "beside", {}) or {})
        code = (
            "import json,time,sys\n"
            "t=time.perf_counter()\n"
            "from labelaudit.workspace import Workspace\n"
            "from labelaudit.scanning import load_cached_scan\n"
            f"ws=Workspace({str(ws.root)!r}); ds=ws.load_dataset({ds.content_hash!r})\n"
            f"r=load_cached_scan(ds, workspace=ws, **{options!r})\n"
            "s=time.perf_counter()-t\n"
            "from labelaudit.first_pass import load_first_pass\n"
            "t=time.perf_counter()\n"
            f"fp=load_first_pass(ws, ds, {options!r})\n"
            "print(json.dumps({'s': s, 'ok': r is not None, 'fp_s': time.perf_counter()-t, 'fp': fp is not None}))\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
        )
        page = json.loads(out.stdout.strip().splitlines()[-1])
        alone = embedding_alone(ds) if args.alone else None
    load_end = os.getloadavg()
    embedding = steps.get("embedding", 0.0)
    step_total = sum(steps.values())
    embedding += steps.get("first pass: embedding", 0.0)  # the sample's rows, embedded once
    cmd = (
        "`.venv/bin/python -m bench.bench_first_run --parts scan"
        + (f" --rows {args.rows}" if args.rows else "")
        + (" --until first-pass" if partial else "")
        + (" --stored-embeddings" if args.stored_embeddings else "")
        + "`"
    )
    full_rows = (
        [f"| step: {k} | {v:,.1f} s |" for k, v in steps.items() if k.startswith("first pass")]
        if partial
        else [
            f"| start → full scan stored (every page fills in) | {stored:,.1f} s |",
            *(f"| step: {k} | {v:,.1f} s |" for k, v in steps.items()),
            *(f"| beside the steps, in the worker: {k} | {v:,.1f} s |" for k, v in beside.items()),
            f"| the steps after the embedding (all steps − the two embedding steps) | "
            f"{step_total - embedding:,.1f} s |",
            *(
                []
                if embedding < 1.0  # --stored-embeddings: nothing embedded in the job
                else [
                    f"| whole scan (its steps) / its embedding steps | {step_total / embedding:.2f}x"
                    " (goal ≤ 1.3x) |",
                    f"| the same with the process start and model load: start → stored / "
                    f"embedding steps | {stored / embedding:.2f}x |",
                ]
            ),
            *(
                []
                if alone is None
                else [
                    f"| the embedding alone: model load + every text, a new process, nothing "
                    f"beside it | {alone:,.1f} s |",
                    f"| whole scan (steps) / the embedding alone | {step_total / alone:.2f}x |",
                    f"| start → stored / the embedding alone | {stored / alone:.2f}x |",
                ]
            ),
            f"| page view of the stored scan (`load_cached_scan`, new process, imports included) | {page['s']:.2f} s |",
        ]
    )
    in_order = os.environ.get(jobs.MAP_WORKER_ENV, "1").strip() == "0"
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    ).stdout.strip()
    lines = [
        "## First run: the background scan"
        + (", every step in order (LABELAUDIT_MAP_WORKER=0)" if in_order else "")
        + (
            ", after the embedding (embeddings stored before the start)"
            if args.stored_embeddings
            else ""
        )
        + " (issue 16)",
        "",
        f"Command: {'LABELAUDIT_MAP_WORKER=0 ' if in_order else ''}{cmd}; commit {commit}"
        f"{' with uncommitted changes' if dirty else ''}; {started_at}; load average {load_start[0]:.1f} at the start and "
        f"{load_end[0]:.1f} at the end (other jobs shared the 2 cores: absolute seconds are upper bounds).",
        f"Dataset: the bundled sample, {ds.n:,} rows, {ds.k} classes; empty workspace; the scan started "
        "by `labelaudit.jobs.start_scan` in a process of its own, as the app starts it.",
        "",
        "| measure | value |",
        "|---|---:|",
        "| start → first pass stored (provisional map and queue; goal ≤ 60 s) | "
        + ("none (dataset too small)" if first_pass_at is None else f"{first_pass_at:,.1f} s")
        + " |",
        *full_rows,
        f"| estimate shown before the start ({source}) | {estimate:,.0f} s |",
        *(
            []
            if partial or not estimate
            else [
                f"| estimate / measured (goal within ±{jobs.ESTIMATE_TOLERANCE:.0%} on a quiet "
                f"machine) | {estimate / stored:.2f} "
                f"({'within' if abs(estimate / stored - 1) <= jobs.ESTIMATE_TOLERANCE else 'outside'}) |"
            ]
        ),
        f"| page view of the first pass (`load_first_pass`, after the imports above) | {page['fp_s']:.2f} s |",
        "",
        "Steps are the job's own status file (`<workspace>/jobs/*.json`): a step lasts from its first "
        "progress report to the next step's. The steps follow one another in the job's process, so "
        "their sum is its wall time from the first report to the last. With the map's worker (the "
        "job's default on 2+ cores) the first pass's scan (all but its embedding) runs in the "
        "worker while the job embeds the other rows ('beside the steps' rows: not in the sum), and "
        "the full map and its clusters are fitted there while the detectors run (the 'projection' "
        "step is only what the job still waited for after them); the dynamics runs, the "
        "self-influence values and the Annotators report are done by whichever process is free "
        "first. The goals of issue 16 are for a quiet 2-core machine.",
        *([] if partial or args.stored_embeddings else rebased(steps, stored, ds.n)),
        "",
        "CPU seconds by step, sampled every 0.25 s from `/proc` (the job's process, and its map "
        "worker's; 'cores busy' is their CPU over the wall time: 2.00 is both cores):",
        "",
        *cpu.rows(),
    ]
    return lines


if __name__ == "__main__":
    main()
