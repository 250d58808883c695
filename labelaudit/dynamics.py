"""Training dynamics of a softmax head on the embeddings: data maps, forgetting events, AUM.

A small model (multinomial logistic regression with L2) is trained for E epochs with seeded
mini-batch SGD, and every row's logits are recorded after each epoch: an (E, N, K) array, the same
shape as imported dynamics (``Dataset.dynamics``). From it:

- **Data maps** (Swayamdipta et al. 2020, "Dataset Cartography"): per row, *confidence* = mean over
  epochs of the probability of the given label, *variability* = its standard deviation, and
  *correctness* = the fraction of epochs in which the argmax is the given label. Regions (our
  thresholds, parameters of :func:`data_map`): **ambiguous** = the top third by variability (the
  paper's 33% subsets); of the rest, **hard-to-learn** = confidence < 0.5, **easy-to-learn** = the
  others. Mislabelled rows concentrate in hard-to-learn.
- **Forgetting events** (Toneva et al. 2019): a row is forgotten when it goes from correct at one
  epoch to incorrect at the next (recorded per epoch here, not per mini-batch); rows never learned
  count as the most forgotten.
- **Area under the margin** (Pleiss et al. 2020): the margin is the given label's logit minus the
  largest other logit; AUM is its mean over epochs. Threshold samples (N/(K+1) rows relabelled to an
  extra fake class) show what AUM a surely-wrong label gets; rows whose AUM is below the 99th
  percentile of the threshold samples' AUM are flagged, as in the paper. Two runs with disjoint
  threshold sets give every row a score from a run where its own label was kept.

Checkpoints (weights after each epoch) are kept for TracIn (:func:`labelaudit.influence.tracin`).
"""

from __future__ import annotations

import contextlib
import hashlib
import mmap
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from labelaudit.hashing import update_blocks
from labelaudit.progress import ProgressFn, no_progress
from labelaudit.workspace import Workspace, as_workspace

_Run = TypeVar("_Run")

DEFAULT_EPOCHS = 20
DEFAULT_BATCH_SIZE = 32
#: Rows per block when per-epoch logits (E, N, K) are turned into probabilities or margins: the
#: float64 temporaries are (E, block, K) (at 20 epochs and 50 classes, 131 MB), never (E, N, K)
#: (measured: a 1M-row scan's data map took over 23 GB of RSS and was killed; bench_scale scan).
LOGIT_BLOCK_ROWS = 16_384
#: SGD step size for unit-norm sentence embeddings: large enough that most rows are learned within
#: the run, small enough that the data map still spreads (measured on BANKING77).
DEFAULT_LR = 5.0
DEFAULT_L2 = 1e-4
#: Fraction of rows called ambiguous (highest variability), as the paper's 33% subsets.
AMBIGUOUS_FRACTION = 1 / 3
#: Confidence below which a non-ambiguous row is hard-to-learn.
HARD_CONFIDENCE = 0.5
#: Percentile of the threshold samples' AUM used as the cut-off (Pleiss et al. 2020).
AUM_PERCENTILE = 99.0

REGIONS = ("easy-to-learn", "ambiguous", "hard-to-learn")


def training_population(ds) -> np.ndarray:
    """The rows every trained model of dynamics and influence learns from: bool (N,).

    Every row outside the protected ``test`` split, or every row when the dataset has none. The
    test split is the yardstick of the ROI page's before/after, so its labels must not shape a
    model whose output suggests changes to the training labels. The datamap, forgetting, AUM and
    self-influence detectors, the Training dynamics and Influence pages and
    :func:`labelaudit.training_dynamics` all train on these rows; rows outside are still scored,
    as held-out rows of the same model.

    >>> import pandas as pd
    >>> from labelaudit.io import load_dataset
    >>> ds = load_dataset(pd.DataFrame({"text": list("abcd"), "label": list("xyxy"),
    ...                                 "split": ["train", "train", "test", "train"]}))
    >>> training_population(ds).tolist()
    [True, True, False, True]
    """
    return ~ds.test_mask if ds.has_test_split else np.ones(ds.n, dtype=bool)


@dataclass
class DynamicsRun:
    """One recorded training run. ``logits`` float32 (E, N, K) after each epoch; ``checkpoints``
    float32 (E, K, D+1) weights (bias last) after each epoch; ``learning_rates`` float64 (E,)."""

    logits: np.ndarray
    checkpoints: np.ndarray
    learning_rates: np.ndarray

    @property
    def epochs(self) -> int:
        return int(self.logits.shape[0])


def train_dynamics(
    embeddings: np.ndarray,
    labels: np.ndarray,
    *,
    n_classes: int,
    epochs: int = DEFAULT_EPOCHS,
    batch_size: int = DEFAULT_BATCH_SIZE,
    lr: float = DEFAULT_LR,
    l2: float = DEFAULT_L2,
    seed: int = 0,
    train_mask: np.ndarray | None = None,
    record_logits: bool = True,
    logits_out: np.ndarray | None = None,
    progress: ProgressFn = no_progress,
) -> DynamicsRun:
    """Train a softmax head with mini-batch SGD and record every row's logits after each epoch.

    ``record_logits=False``: only the checkpoints are kept (``logits`` is (E, 0, K)); the logits of
    any rows are then ``x @ W[:, :D].T + W[:, D]`` of a checkpoint (:func:`checkpoint_logits`).
    The bias is the last weight column, applied without appending a column of ones to a copy of
    the embeddings (no (N, D + 1) copy). ``logits_out``: a float32 (E, N, K) array the logits are
    written into instead of a new one, e.g. a workspace file's writable memory map
    (:meth:`labelaudit.workspace.Workspace.writing_npy`): each epoch's pages are written out and let
    go after it, so the run never holds more than one epoch's (N, K) logits in memory.

    ``embeddings``: float (N, D); ``labels``: int (N,) in [0, K); ``train_mask``: (N,) bool, rows to
    train on (default all; logits are recorded for every row). Deterministic for a given ``seed``.
    NumPy float32 matrix products: one epoch on BANKING77 (10k x 384, K=77) takes well under a
    second.

    >>> x, y = np.eye(4, dtype=np.float32), np.array([0, 1, 0, 1])
    >>> run = train_dynamics(x, y, n_classes=2, epochs=3)
    >>> run.logits.shape, run.checkpoints.shape
    ((3, 4, 2), (3, 2, 5))
    """
    x = np.asarray(embeddings, dtype=np.float32)
    d = x.shape[1]
    labels = np.asarray(labels, dtype=np.int64)
    rows = np.flatnonzero(
        np.ones(len(x), bool) if train_mask is None else np.asarray(train_mask, bool)
    )
    rng = np.random.default_rng(seed)
    w = np.zeros((n_classes, d + 1), dtype=np.float32)
    onehot = np.eye(n_classes, dtype=np.float32)
    shape = (epochs, len(x) if record_logits else 0, n_classes)
    if logits_out is not None:
        if logits_out.shape != shape or logits_out.dtype != np.float32:
            raise ValueError(
                f"logits_out must be float32 {shape}, got {logits_out.dtype} {logits_out.shape}"
            )
        logits = logits_out
    else:
        logits = np.empty(shape, dtype=np.float32)
    checkpoints = np.empty((epochs, n_classes, d + 1), dtype=np.float32)
    # One BLAS thread: the steps multiply (32, D) by (D, K) matrices, far too small to share, and
    # OpenBLAS's second thread spinning for each one cost 27x the CPU time (BANKING77 train, 10k
    # rows: 48.6 s vs 1.8 s CPU, 217.6 s vs 15.6 s wall at load 15-17; bench/results/first_run.md).
    with single_blas_thread():
        for e in range(epochs):
            order = rng.permutation(rows)
            for s in range(0, len(order), batch_size):
                b = order[s : s + batch_size]
                xb = x[b]
                z = xb @ w[:, :d].T + w[:, d]
                z -= z.max(axis=1, keepdims=True)
                p = np.exp(z)
                p /= p.sum(axis=1, keepdims=True)
                p -= onehot[labels[b]]
                grad = np.empty_like(w)
                grad[:, :d] = p.T @ xb
                grad[:, d] = p.sum(axis=0)
                w -= lr * (grad / len(b) + l2 * w)
            if record_logits:
                logits[e] = checkpoint_logits(w, x)
                if logits_out is not None:
                    drop_mapped_pages(logits[e])
            checkpoints[e] = w
            progress("training dynamics", e + 1, epochs)
    return DynamicsRun(logits, checkpoints, np.full(epochs, lr))


def checkpoint_logits(w: np.ndarray, x: np.ndarray) -> np.ndarray:
    """float32 (N, K) logits of the rows ``x`` (N, D) under the weights ``w`` (K, D + 1), bias last,
    in blocks of rows (no (N, D + 1) copy of ``x``)."""
    d = w.shape[1] - 1
    out = np.empty((len(x), w.shape[0]), dtype=np.float32)
    for a in range(0, len(x), 65_536):
        out[a : a + 65_536] = np.asarray(x[a : a + 65_536], dtype=np.float32) @ w[:, :d].T + w[:, d]
    return out


_BLAS_LOCK = threading.Lock()
_BLAS_DEPTH = 0
_BLAS_LIMITS: Any = None


@contextlib.contextmanager
def single_blas_thread() -> Iterator[None]:
    """A context in which NumPy's BLAS runs on one thread (threadpoolctl, a scikit-learn
    dependency). threadpoolctl's limit is process-wide, so the contexts of several threads
    (:func:`map_on_cores`) share one: the first to enter sets it, the last to leave restores it
    (each thread restoring on its own would put the others back on two spinning threads)."""
    global _BLAS_DEPTH, _BLAS_LIMITS
    from threadpoolctl import threadpool_limits

    with _BLAS_LOCK:
        if _BLAS_DEPTH == 0:
            _BLAS_LIMITS = threadpool_limits(limits=1, user_api="blas")
        _BLAS_DEPTH += 1
    try:
        yield
    finally:
        with _BLAS_LOCK:
            _BLAS_DEPTH -= 1
            if _BLAS_DEPTH == 0:
                _BLAS_LIMITS.restore_original_limits()
                _BLAS_LIMITS = None


#: Threads of :func:`map_on_cores` (``LABELAUDIT_CPU_WORKERS`` overrides; 1: one after the other).
WORKERS_ENV = "LABELAUDIT_CPU_WORKERS"


def cpu_workers() -> int:
    """Threads for independent single-threaded fits: ``LABELAUDIT_CPU_WORKERS``, else the cores
    this process may run on."""
    raw = os.environ.get(WORKERS_ENV, "").strip()
    if raw.isdigit() and int(raw) > 0:
        return int(raw)
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not on Linux
        return max(os.cpu_count() or 1, 1)


_T = TypeVar("_T")
_R = TypeVar("_R")


def map_on_cores(
    fn: Callable[[_T], _R],
    items: Sequence[_T],
    *,
    workers: int | None = None,
    done: Callable[[int], None] | None = None,
) -> list[_R]:
    """``[fn(x) for x in items]``, the items on up to ``workers`` threads (default
    :func:`cpu_workers`), every one with NumPy's BLAS on one thread. For independent fits whose
    products are too small to gain from a second BLAS thread (scikit-learn's lbfgs logistic
    regressions, the influence head's blocks): NumPy, BLAS and scikit-learn's loss release the GIL,
    so two fits use two cores where BLAS on two threads mostly spun. The results do not depend on
    the number of threads (each call is independent). ``done(k)`` is called after each finished
    item with the count so far (in the calling thread)."""
    n_workers = min(workers or cpu_workers(), len(items))
    with single_blas_thread():
        if n_workers <= 1:
            out = []
            for i, x in enumerate(items):
                out.append(fn(x))
                if done is not None:
                    done(i + 1)
            return out
        from concurrent.futures import ThreadPoolExecutor, as_completed

        with ThreadPoolExecutor(n_workers, thread_name_prefix="labelaudit-fit") as pool:
            futures = {pool.submit(fn, x): i for i, x in enumerate(items)}
            results: dict[int, _R] = {}
            for k, fut in enumerate(as_completed(futures), start=1):
                results[futures[fut]] = fut.result()
                if done is not None:
                    done(k)
        return [results[i] for i in range(len(items))]


def population_logits(run: DynamicsRun, embeddings: np.ndarray, train: np.ndarray) -> np.ndarray:
    """(E, N, K) logits of every row from a run trained on the rows ``train`` (bool (N,)) only:
    the recorded logits for those, each epoch's checkpoint applied to the others (held-out rows of
    the same model). ``run`` is the run of ``embeddings[train]``, as :func:`cached_dynamics` of the
    training population stores it for the detectors and the Training dynamics page alike.

    >>> x = np.eye(3, dtype=np.float32)
    >>> run = train_dynamics(x[:2], np.array([0, 1]), n_classes=2, epochs=2)
    >>> population_logits(run, x, np.array([True, True, False])).shape
    (2, 3, 2)
    """
    train = np.asarray(train, dtype=bool)
    if train.all():
        return run.logits
    x = np.asarray(embeddings, dtype=np.float32)
    e, _, k = run.logits.shape
    out = np.empty((e, len(x), k), dtype=np.float32)
    out[:, train] = run.logits
    held = x[~train]
    for i in range(e):
        out[i, ~train] = checkpoint_logits(run.checkpoints[i], held)
    return out


def drop_mapped_pages(a: np.ndarray) -> None:
    """Let go of the resident pages of a file-backed memory-mapped array (``np.load(...,
    mmap_mode="r")``, :meth:`Workspace.writing_npy`'s writable map, or a view of either): they stay
    in the kernel's page cache and fault back in on the next read, but no longer count in this
    process's resident memory. A writable map is written to its file first (a shared file
    mapping's pages are the file's, so nothing written is lost). The block loops over the stored
    (E, N, K) logits call it after each block, and :func:`train_dynamics` after each epoch it
    writes, so 4 GB of logits (1M rows, 20 epochs, 50 classes) never stay resident. No-op for
    other arrays."""
    m: Any = a
    while m is not None and getattr(m, "_mmap", None) is None:
        m = getattr(m, "base", None)
    mm = getattr(m, "_mmap", None)
    mode = getattr(m, "mode", None)
    if mm is None or mode not in ("r", "r+", "w+") or not hasattr(mm, "madvise"):
        return
    with contextlib.suppress(OSError, ValueError):
        if mode != "r":
            mm.flush()
        mm.madvise(mmap.MADV_DONTNEED)


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=-1, keepdims=True)


def given_label_probs(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Probability of each row's given label after each epoch: float64 (E, N), in blocks of
    :data:`LOGIT_BLOCK_ROWS` rows."""
    z = np.asarray(logits)
    labels = np.asarray(labels, dtype=np.int64)
    out = np.empty(z.shape[:2], dtype=np.float64)
    for a in range(0, z.shape[1], LOGIT_BLOCK_ROWS):
        b = min(z.shape[1], a + LOGIT_BLOCK_ROWS)
        p = _softmax(np.asarray(z[:, a:b], dtype=np.float64))
        out[:, a:b] = p[:, np.arange(b - a), labels[a:b]]
        drop_mapped_pages(z)
    return out


def data_map(
    logits: np.ndarray,
    labels: np.ndarray,
    *,
    ambiguous_fraction: float = AMBIGUOUS_FRACTION,
    hard_confidence: float = HARD_CONFIDENCE,
    population: np.ndarray | None = None,
) -> pd.DataFrame:
    """Dataset-cartography coordinates for every row.

    ``logits``: (E, N, K); ``labels``: int (N,). Returns a DataFrame of N rows with ``confidence``,
    ``variability``, ``correctness`` (all in [0, 1]), ``region`` (one of :data:`REGIONS`),
    ``mean_pred`` (argmax of the epoch-averaged probabilities) and ``mean_pred_prob``.
    ``population`` (bool (N,), default every row): the rows whose variability sets the ambiguous
    cut (the training population); the other rows are placed by the same cut.

    >>> z = np.zeros((2, 3, 2)); z[:, :, 0] = 5
    >>> data_map(z, np.array([0, 0, 1]))["region"].tolist()
    ['easy-to-learn', 'easy-to-learn', 'hard-to-learn']
    """
    z = np.asarray(logits)
    labels = np.asarray(labels, dtype=np.int64)
    n = z.shape[1]
    conf, var, correct = np.empty(n), np.empty(n), np.empty(n)
    mean_pred, mean_prob = np.empty(n, dtype=np.int64), np.empty(n)
    # In blocks of rows: every figure is per row, so the blocks give the same values as one pass
    for a in range(0, n, LOGIT_BLOCK_ROWS):
        b = min(n, a + LOGIT_BLOCK_ROWS)
        p = _softmax(np.asarray(z[:, a:b], dtype=np.float64))
        py = p[:, np.arange(b - a), labels[a:b]]
        conf[a:b], var[a:b] = py.mean(axis=0), py.std(axis=0)
        correct[a:b] = (p.argmax(axis=2) == labels[None, a:b]).mean(axis=0)
        mean_p = p.mean(axis=0)
        mean_pred[a:b], mean_prob[a:b] = mean_p.argmax(axis=1), mean_p.max(axis=1)
        drop_mapped_pages(z)
    ref = var if population is None else var[np.asarray(population, dtype=bool)]
    cut = np.quantile(ref, 1 - ambiguous_fraction) if len(ref) else 0.0
    # Ties at the cut (e.g. all-constant variability) must not make every row ambiguous.
    ambiguous = (var >= cut) & (var > ref.min()) if len(ref) else np.zeros(n, bool)
    region = np.where(
        ambiguous, "ambiguous", np.where(conf < hard_confidence, "hard-to-learn", "easy-to-learn")
    )
    return pd.DataFrame(
        {
            "confidence": conf,
            "variability": var,
            "correctness": correct,
            "region": region,
            "mean_pred": mean_pred,
            "mean_pred_prob": mean_prob,
        }
    )


def forgetting_events(logits: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Forgetting events per row (Toneva et al. 2019), from per-epoch logits (E, N, K).

    Returns ``(events, never_learned)``: int (N,) transitions correct -> incorrect between
    consecutive epochs, and bool (N,) rows never classified correctly.

    >>> z = np.array([[[1., 0]], [[0, 1]], [[1, 0]], [[0, 1]]])   # correct, wrong, correct, wrong
    >>> forgetting_events(z, np.array([0]))
    (array([2]), array([False]))
    """
    z, labels = np.asarray(logits), np.asarray(labels)
    correct = np.empty(z.shape[:2], dtype=bool)
    for a in range(0, z.shape[1], LOGIT_BLOCK_ROWS):  # argmax of (E, N, K) makes (E, N) int64
        correct[:, a : a + LOGIT_BLOCK_ROWS] = (
            z[:, a : a + LOGIT_BLOCK_ROWS].argmax(axis=2) == labels[None, a : a + LOGIT_BLOCK_ROWS]
        )
        drop_mapped_pages(z)
    events = (correct[:-1] & ~correct[1:]).sum(axis=0)
    never = np.logical_not(correct.any(axis=0))
    return events.astype(np.int64), never


def forgetting_score(events: np.ndarray, never_learned: np.ndarray, epochs: int) -> np.ndarray:
    """Events scaled to [0, 1] by the epoch count; never-learned rows get 1 (more than any
    count)."""
    return np.where(never_learned, 1.0, events / max(epochs, 1))


def margins(logits: np.ndarray, assigned: np.ndarray) -> np.ndarray:
    """Margin of each row's assigned label after each epoch: its logit minus the largest other,
    (E, N), in blocks of :data:`LOGIT_BLOCK_ROWS` rows."""
    z = np.asarray(logits)
    assigned = np.asarray(assigned, dtype=np.int64)
    out = np.empty(z.shape[:2], dtype=np.float64)
    for a in range(0, z.shape[1], LOGIT_BLOCK_ROWS):
        b = min(z.shape[1], a + LOGIT_BLOCK_ROWS)
        zb = np.array(z[:, a:b], dtype=np.float64)  # a copy: the own logit is masked below
        rows = np.arange(b - a)
        own = zb[:, rows, assigned[a:b]]
        zb[:, rows, assigned[a:b]] = -np.inf
        out[:, a:b] = own - zb.max(axis=2)
        drop_mapped_pages(z)
    return out


def mean_margin(x: np.ndarray, checkpoints: np.ndarray, assigned: np.ndarray) -> np.ndarray:
    """float64 (N,): the mean over the checkpoints (E, K, D + 1) of :func:`margins` of the rows
    ``x`` (N, D) under each, without holding the (E, N, K) logits (AUM: Pleiss et al. 2020)."""
    assigned = np.asarray(assigned, dtype=np.int64)
    total = np.zeros(len(x), dtype=np.float64)
    for a in range(0, len(x), LOGIT_BLOCK_ROWS):
        b = min(len(x), a + LOGIT_BLOCK_ROWS)
        z = np.stack([checkpoint_logits(w, x[a:b]) for w in checkpoints])
        total[a:b] = margins(z, assigned[a:b]).sum(axis=0)
    return total / max(len(checkpoints), 1)


@dataclass
class AUMResult:
    """``aum`` float64 (N,) (from the run where the row kept its label); ``threshold`` (N,) the
    cut-off of that run; ``is_mislabeled`` = aum < threshold; ``threshold_rows`` the two disjoint
    sets of threshold samples; ``thresholds`` the two runs' cut-offs."""

    aum: np.ndarray
    threshold: np.ndarray
    is_mislabeled: np.ndarray
    threshold_rows: tuple[np.ndarray, np.ndarray]
    thresholds: tuple[float, float]


def area_under_margin(
    embeddings: np.ndarray,
    labels: np.ndarray,
    *,
    n_classes: int,
    epochs: int = DEFAULT_EPOCHS,
    seed: int = 0,
    percentile: float = AUM_PERCENTILE,
    progress: ProgressFn = no_progress,
    **train_options,
) -> AUMResult:
    """AUM with threshold samples (Pleiss et al. 2020) for every row: two runs, disjoint threshold
    sets.

    Each run relabels N/(K+1) random rows to a fake class K, trains a (K+1)-class head and records
    margins; the cut-off is the ``percentile`` of the threshold samples' AUM. Needs N >= 2 (K+1)/K.

    >>> x, y = np.eye(6, dtype=np.float32), np.array([0, 1] * 3)
    >>> r = area_under_margin(x, y, n_classes=2, epochs=3)
    >>> r.aum.shape, r.is_mislabeled.dtype
    ((6,), dtype('bool'))
    """
    labels = np.asarray(labels, dtype=np.int64)
    n = len(labels)
    rng = np.random.default_rng(seed)
    size = max(1, n // (n_classes + 1))
    perm = rng.permutation(n)
    sets = (np.sort(perm[:size]), np.sort(perm[size : 2 * size]))
    aum = np.full(n, np.nan)
    threshold = np.full(n, np.nan)
    cutoffs = []
    for r, rows in enumerate(sets):
        assigned = labels.copy()
        assigned[rows] = n_classes

        def report(step: str, done: int, total: int, r: int = r) -> None:
            progress(f"AUM run {r + 1} of 2", done, total)

        run = train_dynamics(
            embeddings,
            assigned,
            n_classes=n_classes + 1,
            epochs=epochs,
            seed=seed + 1 + r,
            progress=report,
            record_logits=False,  # the margins are taken from the checkpoints, block by block
            **train_options,
        )
        run_aum = mean_margin(np.asarray(embeddings, dtype=np.float32), run.checkpoints, assigned)
        cut = float(np.percentile(run_aum[rows], percentile))
        cutoffs.append(cut)
        # Rows that were threshold samples in run 1 take run 2's value, and vice versa.
        take = np.isnan(aum)
        take[rows] = False
        aum[take] = run_aum[take]
        threshold[take] = cut
    return AUMResult(aum, threshold, aum < threshold, sets, (cutoffs[0], cutoffs[1]))


# ------------------------------------------------------------- caching shared by the detectors
_MEMO: dict[tuple, object] = {}
_MEMO_SIZE = 6


def array_key(*arrays: np.ndarray) -> str:
    """A short content hash of arrays (shape, dtype and bytes): the workspace key for derived
    runs."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.asarray(a)
        if a.ndim == 0:
            a = a.reshape(1)
        h.update(f"{a.shape}{a.dtype}".encode())
        update_blocks(h, a)  # in row blocks: no whole copy of 1.5 GB (1M x 384 float32) to hash it
    return h.hexdigest()[:20]


def memoised(key: tuple, compute):
    """Process-wide memo (a few entries) so detectors sharing one run train it once."""
    if key not in _MEMO:
        if len(_MEMO) >= _MEMO_SIZE:
            _MEMO.pop(next(iter(_MEMO)))
        _MEMO[key] = compute()
    return _MEMO[key]


def _stored_run(
    kind: str,
    embeddings: np.ndarray,
    labels: np.ndarray,
    params: dict,
    workspace: Workspace | str | os.PathLike | None,
    load: Callable[[Workspace, str], _Run | None],
    train: Callable[[str], _Run],
    save: Callable[[Workspace, str, _Run], None] | None,
) -> _Run:
    """The run ``kind`` of a head on ``(embeddings, labels)`` with ``params``: memoised per process
    and workspace; read from the workspace by ``load`` (None = not stored), else ``train``-ed (given
    the key) and written there by ``save`` (None: ``train`` stored it and returned the stored run).
    Keyed by :func:`array_key` of the inputs and by ``params``."""
    ws = as_workspace(workspace)
    key = array_key(np.asarray(embeddings, np.float32), np.asarray(labels, np.int64))

    def compute() -> _Run:
        stored = None if ws is None else load(ws, key)
        if stored is not None:
            return stored
        run = train(key)
        if ws is not None and save is not None:
            save(ws, key, run)
            # The memo keeps the stored copy (the logits memory-mapped), not the run in memory:
            # 4 GB of (E, N, K) logits at 1M rows otherwise stay resident for every later step.
            stored = load(ws, key)
            if stored is not None:
                return stored
        return run

    memo_key = (kind, key, tuple(sorted(params.items())), str(getattr(ws, "root", "")))
    return memoised(memo_key, compute)


def _dynamics_params(n_classes: int, seed: int, epochs: int) -> dict:
    return {
        "seed": seed,
        "epochs": epochs,
        "lr": DEFAULT_LR,
        "l2": DEFAULT_L2,
        "batch": DEFAULT_BATCH_SIZE,
        "k": n_classes,
    }


def _aum_params(n_classes: int, seed: int, epochs: int) -> dict:
    return {
        "seed": seed,
        "epochs": epochs,
        "lr": DEFAULT_LR,
        "l2": DEFAULT_L2,
        "k": n_classes,
        "pct": AUM_PERCENTILE,
    }


def dynamics_stored(
    embeddings: np.ndarray,
    labels: np.ndarray,
    *,
    n_classes: int,
    workspace,
    seed: int = 0,
    epochs: int = DEFAULT_EPOCHS,
    aum: bool = True,
) -> bool:
    """Whether :func:`cached_dynamics` (and, with ``aum``, :func:`cached_aum`) would load, not
    train."""
    key = array_key(np.asarray(embeddings, np.float32), np.asarray(labels, np.int64))
    p = _dynamics_params(n_classes, seed, epochs)
    ok = workspace.has(key, "dynamics-logits", p) and workspace.has(key, "dynamics-checkpoints", p)
    return bool(
        ok and (not aum or workspace.has(key, "aum", _aum_params(n_classes, seed, epochs), "json"))
    )


def cached_dynamics(
    embeddings: np.ndarray,
    labels: np.ndarray,
    *,
    n_classes: int,
    workspace=None,
    seed: int = 0,
    epochs: int = DEFAULT_EPOCHS,
    progress: ProgressFn = no_progress,
) -> DynamicsRun:
    """:func:`train_dynamics` with default options, stored in ``workspace`` (if any) and
    memoised."""
    params = _dynamics_params(n_classes, seed, epochs)

    def load(ws: Workspace, key: str) -> DynamicsRun | None:
        names = ("dynamics-logits", "dynamics-checkpoints")
        if not all(ws.has(key, name, params) for name in names):
            return None
        # memory-mapped: (E, N, K) float32 is 4 GB at 1M rows, 20 epochs and 50 classes
        logits, checkpoints = (ws.load(key, name, params, mmap=True) for name in names)
        return DynamicsRun(logits, checkpoints, np.full(epochs, DEFAULT_LR))

    ws = as_workspace(workspace)

    def train(key: str) -> DynamicsRun:
        if ws is None:
            return train_dynamics(
                embeddings, labels, n_classes=n_classes, epochs=epochs, seed=seed, progress=progress
            )
        # The (E, N, K) logits go straight into the workspace's file (4 GB at 1M rows, 20 epochs,
        # 50 classes: before, held in memory until stored); the checkpoints are small.
        shape = (epochs, len(labels), n_classes)
        with ws.writing_npy(key, "dynamics-logits", params, shape, np.float32) as out:
            run = train_dynamics(
                embeddings,
                labels,
                n_classes=n_classes,
                epochs=epochs,
                seed=seed,
                logits_out=out,
                progress=progress,
            )
            ws.save(key, "dynamics-checkpoints", run.checkpoints, params)
        del run, out
        stored = load(ws, key)  # the stored file, memory-mapped
        assert stored is not None
        return stored

    return _stored_run("dynamics", embeddings, labels, params, ws, load, train, None)


def cached_aum(
    embeddings: np.ndarray,
    labels: np.ndarray,
    *,
    n_classes: int,
    workspace=None,
    seed: int = 0,
    epochs: int = DEFAULT_EPOCHS,
    progress: ProgressFn = no_progress,
) -> AUMResult:
    """:func:`area_under_margin` stored in ``workspace`` (if any) and memoised."""
    params = _aum_params(n_classes, seed, epochs)

    def load(ws: Workspace, key: str) -> AUMResult | None:
        if not ws.has(key, "aum", params, "json"):
            return None
        d = ws.load(key, "aum", params, "json")
        aum, thr = np.asarray(d["aum"]), np.asarray(d["threshold"])
        sets = (np.asarray(d["set1"], dtype=np.int64), np.asarray(d["set2"], dtype=np.int64))
        return AUMResult(aum, thr, aum < thr, sets, tuple(d["thresholds"]))

    def save(ws: Workspace, key: str, res: AUMResult) -> None:
        stored = {
            "aum": res.aum,
            "threshold": res.threshold,
            "set1": res.threshold_rows[0],
            "set2": res.threshold_rows[1],
            "thresholds": list(res.thresholds),
        }
        ws.save(key, "aum", stored, params, "json")

    def train(_key: str) -> AUMResult:
        return area_under_margin(
            embeddings, labels, n_classes=n_classes, epochs=epochs, seed=seed, progress=progress
        )

    return _stored_run("aum", embeddings, labels, params, workspace, load, train, save)


@dataclass
class PopulationDynamics:
    """The training dynamics of one dataset under the one population rule
    (:func:`training_population`).

    ``train`` bool (N,): the rows the heads learn from. ``logits`` float32 (E, N, K): the imported
    dynamics, or the run trained on the training rows (its recorded logits for them, its checkpoints
    applied to the others: :func:`population_logits`). ``map``: :func:`data_map` of every row, the
    ambiguous cut taken over the training rows. ``events`` int (N,) and ``never_learned`` bool (N,):
    :func:`forgetting_events`. ``aum``: :func:`area_under_margin` of the training rows (aligned to
    ``np.flatnonzero(train)``), or None when not asked for or without embeddings. ``source`` says
    where the logits came from. The detectors (datamap, forgetting, aum), the Training dynamics
    page and :func:`labelaudit.training_dynamics` all read this, so they agree row by row.
    """

    train: np.ndarray
    logits: np.ndarray
    map: pd.DataFrame
    events: np.ndarray
    never_learned: np.ndarray
    aum: AUMResult | None
    source: str


def population_dynamics(
    labels: np.ndarray,
    *,
    n_classes: int,
    train: np.ndarray,
    embeddings: np.ndarray | None = None,
    dynamics: np.ndarray | None = None,
    workspace=None,
    seed: int = 0,
    epochs: int = DEFAULT_EPOCHS,
    with_aum: bool = False,
    progress: ProgressFn = no_progress,
) -> PopulationDynamics:
    """:class:`PopulationDynamics` of rows with int ``labels`` (N,): imported ``dynamics`` (E, N, K)
    when given, else a run of :func:`cached_dynamics` on ``embeddings[train]`` (float (N, D)); with
    ``with_aum`` (and embeddings) also :func:`cached_aum` of the training rows. Cached in
    ``workspace`` under the keys every caller shares.

    >>> x = np.eye(4, dtype=np.float32)
    >>> pop = population_dynamics(np.array([0, 1, 0, 1]), n_classes=2, embeddings=x,
    ...                           train=np.array([True, True, True, False]), epochs=3)
    >>> pop.logits.shape, len(pop.map), pop.aum is None
    ((3, 4, 2), 4, True)
    """
    labels = np.asarray(labels, dtype=np.int64)
    train = np.asarray(train, dtype=bool)
    # The dynamics run and the AUM runs of the same rows, under the keys every caller shares.
    shared = {
        "n_classes": n_classes,
        "workspace": workspace,
        "seed": seed,
        "epochs": epochs,
        "progress": progress,
    }
    if dynamics is not None:
        logits = np.asarray(dynamics)
        source = f"imported ({logits.shape[0]} epochs)"
    else:
        if embeddings is None:
            raise ValueError("population_dynamics needs embeddings or imported dynamics")
        rows = embeddings if train.all() else embeddings[train]  # no (N, D) copy when all train
        run = cached_dynamics(rows, labels[train], **shared)
        logits = population_logits(run, embeddings, train)
        source = (
            f"softmax head trained on the embeddings ({logits.shape[0]} epochs, "
            "seeded mini-batch SGD)"
        )
    aum = None
    if with_aum and embeddings is not None:
        rows = embeddings if train.all() else embeddings[train]
        aum = cached_aum(rows, labels[train], **shared)
    events, never = forgetting_events(logits, labels)
    return PopulationDynamics(
        train=train,
        logits=logits,
        map=data_map(logits, labels, population=train),
        events=events,
        never_learned=never,
        aum=aum,
        source=source,
    )
