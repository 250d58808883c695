"""The first pass: a map and a provisional top of the queue within a minute, before the full scan.

The full scan of a dataset embeds every text, then trains the detectors' models (minutes on a CPU).
The first pass runs before it, in the same background job (:mod:`labelaudit.jobs`), on a stratified
sample of the rows (every class keeps its share, and at least a few rows):

1. the sample's texts are embedded first, and those vectors are kept: the full scan's embedding
   step then embeds only the other rows and assembles all of them (nothing is embedded twice);
2. the sample is scanned as a dataset of its own (:func:`labelaudit.scanning.scan`) with the cheap
   detectors only (:data:`DETECTORS`): its map, clusters and ranked queue are stored in the
   workspace under the sample's content hash, like any scan;
3. a small record under the full dataset's content hash names that sample, so every page can find
   it (:func:`load_first_pass`) until the full scan is stored, which replaces it.

>>> fp = load_first_pass(ws, ds, {"seed": 0})        # doctest: +SKIP
>>> fp.sample.n, fp.result.table["label_issue_score"].max()   # doctest: +SKIP
(1500, 0.97)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from labelaudit.dataset import ID, Dataset
from labelaudit.progress import ProgressFn, no_progress
from labelaudit.workspace import Workspace

#: Rows in the first pass's sample (``LABELAUDIT_FIRST_PASS_ROWS`` overrides; 0 turns it off).
#: Sized so that embedding them takes well under a minute on a 2-core CPU (bench/results/first_run.md).
ROWS = 1500
#: A first pass only pays when the full scan is much larger than it.
MIN_FACTOR = 3
#: The detectors of the first pass: those that need only the embeddings or the out-of-fold
#: probabilities (seconds), none that trains a model over epochs (datamap, AUM, INCV, self-influence).
DETECTORS = ["confident_learning", "knn", "near_duplicates", "self_confidence"]
#: Rows of each class kept in the sample at least (or all it has).
MIN_PER_CLASS = 5
ROWS_ENV = "LABELAUDIT_FIRST_PASS_ROWS"
#: Set to 0 to keep the sample's scan in the job's own process before the full embedding (as before
#: it ran in the map's worker beside the full embedding: :func:`labelaudit.jobs.run_job`), for an
#: A/B run of the same code.
BESIDE_ENV = "LABELAUDIT_FIRST_PASS_BESIDE"
#: Bump when the first pass's record changes.
VERSION = 1


def beside_wanted() -> bool:
    """Whether the job hands the sample's scan to the map's worker (``LABELAUDIT_FIRST_PASS_BESIDE``
    not 0)."""
    return os.environ.get(BESIDE_ENV, "1").strip() != "0"


def sample_rows_target() -> int:
    raw = os.environ.get(ROWS_ENV, "").strip()
    try:
        return max(int(raw), 0) if raw else ROWS
    except ValueError:
        return ROWS


def wanted(ds: Dataset, rows: int | None = None) -> bool:
    """Whether ``ds`` gets a first pass: it is at least MIN_FACTOR times the sample."""
    target = sample_rows_target() if rows is None else rows
    return target > 0 and ds.n >= MIN_FACTOR * target


def sample_mask(ds: Dataset, rows: int | None = None, *, seed: int = 0) -> np.ndarray:
    """bool (N,): a stratified sample of ``rows`` rows by given label (each class its share, at
    least MIN_PER_CLASS rows or all it has); deterministic for a seed."""
    from labelaudit.scanning import map_sample

    target = sample_rows_target() if rows is None else rows
    picked = map_sample(
        np.asarray(ds.label_names), max_points=target, min_per_stratum=MIN_PER_CLASS, seed=seed
    )
    mask = np.zeros(ds.n, dtype=bool)
    mask[picked] = True
    return mask


def first_pass_options(options: dict[str, Any]) -> dict[str, Any]:
    """The scan options of the sample's scan: the full scan's, with the cheap detectors only."""
    return {**options, "detectors": list(DETECTORS)}


def _record_key(ds: Dataset, options: dict[str, Any]) -> dict[str, Any]:
    from labelaudit.scanning import scan_params

    return {"full": scan_params(ds, **options), "first_pass": VERSION}


@dataclass
class FirstPass:
    """A stored first pass: ``sample`` (the sampled rows as a dataset of their own, ids kept),
    ``result`` (its scan: map, clusters, the cheap detectors' ranking), ``options`` (the sample's
    scan options, for reading it again) and ``n_full`` (rows of the whole dataset)."""

    sample: Dataset
    result: Any  # labelaudit.scanning.ScanResult
    options: dict[str, Any]
    n_full: int

    def describe(self) -> str:
        return (
            f"a stratified sample of {self.sample.n:,} of the {self.n_full:,} rows, cheap detectors "
            f"only ({', '.join(d.replace('_', ' ') for d in DETECTORS)})"
        )


def _stored_sample(ws: Workspace, ds: Dataset, options: dict[str, Any]) -> Dataset | None:
    """The sample the stored first pass of ``ds`` (for the full-scan ``options``) scanned, or None."""
    key = _record_key(ds, options)
    if not ws.has(ds.content_hash, "first_pass", key, ext="json"):
        return None
    record = ws.load(ds.content_hash, "first_pass", key, ext="json")
    try:
        return ws.load_dataset(record["sample_hash"])
    except (OSError, KeyError, ValueError):
        return None


def load_first_pass(ws: Workspace, ds: Dataset, options: dict[str, Any]) -> FirstPass | None:
    """The stored first pass of ``ds`` for the full-scan ``options``, or None (no umap, no torch)."""
    from labelaudit.scanning import load_cached_scan

    sample = _stored_sample(ws, ds, options)
    if sample is None:
        return None
    opts = first_pass_options(options)
    res = load_cached_scan(sample, workspace=ws, **opts)
    if res is None:
        return None
    return FirstPass(sample=sample, result=res, options=opts, n_full=ds.n)


def _embeddings_key(ds: Dataset, options: dict[str, Any]) -> dict[str, Any]:
    from labelaudit.scanning import embeddings_key

    return {"model": embeddings_key(ds, options.get("model"))}


def embed_sample(
    ws: Workspace,
    ds: Dataset,
    options: dict[str, Any],
    *,
    progress: ProgressFn = no_progress,
    rows: int | None = None,
) -> Dataset | None:
    """Step 1 of the first pass: draw the sample of ``ds``, store it as a dataset and its
    embeddings where its scan (and :func:`full_embeddings`) read them; the sample, or None when
    ``ds`` gets no first pass (:func:`wanted`). Reported as ``first pass: embedding``."""
    from labelaudit.scanning import get_embeddings

    if not wanted(ds, rows):
        return None
    sample = ds.subset(sample_mask(ds, rows, seed=int(options.get("seed", 0))))
    ws.save_dataset(sample)

    def step(name: str, done: int, total: int) -> None:
        progress(f"first pass: {name}", done, total)

    get_embeddings(sample, workspace=ws, model=options.get("model"), progress=step)
    return sample


def scan_sample(
    ws: Workspace,
    ds: Dataset,
    sample: Dataset,
    options: dict[str, Any],
    *,
    progress: ProgressFn = no_progress,
) -> FirstPass:
    """Steps 2 and 3 of the first pass: scan ``sample`` (of ``ds``) with the cheap detectors and
    store it with the record that names it. Its steps are reported as ``first pass: <step>``."""
    from labelaudit.scanning import scan

    def step(name: str, done: int, total: int) -> None:
        progress(f"first pass: {name}", done, total)

    opts = first_pass_options(options)
    res = scan(sample, workspace=ws, progress=step, agreement=False, **opts)
    ws.save(
        ds.content_hash,
        "first_pass",
        {"sample_hash": sample.content_hash, "n_sample": sample.n, "n_full": ds.n},
        _record_key(ds, options),
        ext="json",
    )
    return FirstPass(sample=sample, result=res, options=opts, n_full=ds.n)


def scan_sample_stored(root: str, content_hash: str, sample_hash: str, options: dict) -> dict:
    """:func:`scan_sample` of the datasets stored in the workspace at ``root`` (what the background
    job hands to its worker process, so that the sample's map and detectors run while the job
    embeds the other rows); returns the sample scan's seconds per step."""
    ws = Workspace(root)
    fp = scan_sample(ws, ws.load_dataset(content_hash), ws.load_dataset(sample_hash), options)
    return dict(fp.result.timings)


def run_first_pass(
    ws: Workspace,
    ds: Dataset,
    options: dict[str, Any],
    *,
    progress: ProgressFn = no_progress,
    rows: int | None = None,
) -> FirstPass | None:
    """Scan a stratified sample of ``ds`` with the cheap detectors and store it (see the module
    doc); None when ``ds`` is too small for a first pass to pay (:func:`wanted`). Its steps are
    reported as ``first pass: <step>``. (:func:`embed_sample` then :func:`scan_sample`.)"""
    if not wanted(ds, rows):
        return None
    existing = load_first_pass(ws, ds, options)
    if existing is not None:
        return existing
    sample = embed_sample(ws, ds, options, progress=progress, rows=rows)
    assert sample is not None
    return scan_sample(ws, ds, sample, options, progress=progress)


def full_embeddings(
    ws: Workspace,
    ds: Dataset,
    options: dict[str, Any],
    *,
    progress: ProgressFn = no_progress,
    sample: Dataset | None = None,
) -> bool:
    """Store the embeddings of every row of ``ds`` where the full scan reads them, re-using the
    first pass's (``sample``: its sample, when its scan is not stored yet; else the stored first
    pass's): only the rows outside the sample are embedded. False (nothing done) when the dataset
    brings its own embeddings, they are stored already or there is no first pass."""
    from labelaudit.embed import embed_texts

    if ds.embeddings is not None:
        return False
    key = _embeddings_key(ds, options)
    if ws.has(ds.text_hash, "embeddings", key):
        return False
    if sample is None:
        sample = _stored_sample(ws, ds, options)
    if sample is None:
        return False
    skey = _embeddings_key(sample, options)
    if not ws.has(sample.text_hash, "embeddings", skey):
        return False
    sample_emb = ws.load(sample.text_hash, "embeddings", skey, mmap=True)
    in_sample = ds.frame[ID].isin(set(sample.frame[ID])).to_numpy()
    # The sample keeps dataset order (Dataset.subset), so its rows line up with in_sample's.
    done = int(in_sample.sum())
    n = ds.n
    texts = ds.texts
    rest = np.flatnonzero(~in_sample)

    def step(name: str, k: int, total: int) -> None:
        progress("embedding", done + k, n)

    progress("embedding", done, n)
    rest_emb = embed_texts([texts[i] for i in rest], model=options.get("model"), progress=step)
    out = np.empty((n, sample_emb.shape[1]), dtype=np.float32)
    out[in_sample] = sample_emb
    out[rest] = rest_emb
    ws.save(ds.text_hash, "embeddings", out, key)
    progress("embedding", n, n)
    return True
