"""``labelaudit scan DATA [options] --out FILE``: embeddings, 2-D map, clusters and detector scores per row."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from labelaudit.cli import add_data_options, check_output_path, load_from_args, open_workspace
from labelaudit.csvfile import write_csv
from labelaudit.errors import UsageError

OUT_SUFFIXES = (".parquet", ".csv")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "scan", help="embed, map and cluster the texts and score every row; write one row per item"
    )
    add_data_options(p)
    p.add_argument(
        "--workspace",
        help="folder for cached artifacts (default .labelaudit or $LABELAUDIT_WORKSPACE)",
    )
    p.add_argument(
        "--model",
        help="sentence-transformers model folder, or a hub name already in the local cache "
        "(offline; default: the bundled all-MiniLM-L6-v2)",
    )
    p.add_argument(
        "--cluster", choices=["hdbscan", "kmeans"], default="hdbscan", help="clustering method"
    )
    p.add_argument(
        "--n-clusters", type=int, help="number of clusters for kmeans (default: number of classes)"
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (UMAP, KMeans, detectors)")
    p.add_argument(
        "--combiner",
        choices=["quality", "rank_average", "trust"],
        default="quality",
        help="how the detectors' scores are combined: quality-gated (default: the better model's "
        "detectors, probes and a label model; docs/detectors.md), equal-weight rank average "
        "or trust-weighted (weights learnt from the detectors' agreement, no reviewer labels)",
    )
    p.add_argument(
        "--detectors", help="comma-separated detector names (default: every one the data can feed)"
    )
    p.add_argument(
        "--engine",
        choices=["local", "ray"],
        default="local",
        help="where the parallel steps run: this process (default) or a Ray cluster (docs/scale.md)",
    )
    p.add_argument(
        "--ray-address",
        help="Ray cluster to use with --engine ray (default $RAY_ADDRESS; neither: a local Ray runtime)",
    )
    p.add_argument("--clusters-out", help="also write the cluster summaries (.parquet or .csv)")
    p.add_argument("--out", required=True, help="output file, .parquet or .csv")
    p.set_defaults(func=run)


def _check_out(path: str, flag: str) -> Path:
    return check_output_path(path, flag, OUT_SUFFIXES)


def _write(df, out: Path) -> None:
    if out.suffix.lower() == ".csv":
        df = df.copy()
        for c in df.columns:  # lists (representative ids) as plain text in CSV
            if df[c].map(lambda v: isinstance(v, list)).any():
                df[c] = df[c].map(lambda v: "|".join(map(str, v)) if isinstance(v, list) else v)
        write_csv(df, out)
    else:
        df.to_parquet(out, index=False)


def run(args: argparse.Namespace) -> int:
    from labelaudit.progress import TqdmProgress
    from labelaudit.scanning import scan

    out = _check_out(args.out, "--out")
    clusters_out = _check_out(args.clusters_out, "--clusters-out") if args.clusters_out else None
    ws = open_workspace(
        args.workspace, write=True, why="the scan stores its embeddings, map and scores there"
    )
    if (
        args.model
        and args.model.startswith(("/", ".", "~"))
        and not Path(args.model).expanduser().exists()
    ):
        raise UsageError(f"--model {args.model}: no such folder")
    if args.n_clusters is not None and args.cluster != "kmeans":
        raise UsageError("--n-clusters applies to --cluster kmeans only")
    if args.ray_address and args.engine != "ray":
        raise UsageError("--ray-address needs --engine ray")
    ds = load_from_args(args)
    for w in ds.warnings:  # look-alike labels, collapsed repeats, …: said before the long work
        print(f"warning: {w}", file=sys.stderr)
    detectors = (
        [d.strip() for d in args.detectors.split(",") if d.strip()] if args.detectors else None
    )
    bar = TqdmProgress()
    try:
        res = scan(
            ds,
            workspace=ws,
            model=args.model,
            seed=args.seed,
            cluster_method=args.cluster,
            n_clusters=args.n_clusters,
            detectors=detectors,
            combiner=args.combiner,
            progress=bar,
            engine=args.engine,
            ray_address=args.ray_address,
        )
    finally:
        bar.close()
    _write(res.table, out)
    if clusters_out is not None:
        _write(res.clusters, clusters_out)
    n_clusters = int((res.clusters["cluster"] >= 0).sum())
    noise = int((res.table["cluster"] < 0).sum())
    steps = ", ".join(f"{k} {v:.1f} s" for k, v in res.timings.items())
    print(
        f"{ds.source}: {ds.n:,} rows -> {out} ({len(res.table.columns)} columns); "
        f"{n_clusters} clusters, {noise:,} unclustered rows; {steps}",
        file=sys.stdout,
    )
    if res.neighbour_graph is not None:
        print(res.neighbour_graph.describe(), file=sys.stdout)
    d = res.detection.details if res.detection is not None else None
    if d is not None and d.combiner_weights:
        weights = ", ".join(f"{n} {w:.2f}" for n, w in d.combiner_weights.items())
        span = d.flag_precision_range
        if span is not None and span[1] - span[0] >= 0.005:
            expected = f"; expected precision of the flag {span[0]:.2f} to {span[1]:.2f} (two model estimates)"
        elif d.flag_expected_precision is not None:
            expected = (
                f"; expected precision of the flag {d.flag_expected_precision:.2f} (model estimate)"
            )
        else:
            expected = "; expected precision of the flag cannot be estimated"
        print(
            f"combined ranking: {d.combiner} (weights: {weights}); needs review: {d.issue_rule}{expected}",
            file=sys.stdout,
        )
        if d.combiner_rationale:
            print(f"combiner: {d.combiner_rationale}", file=sys.stdout)
    return 0
