"""Out-of-fold predicted probabilities ("noisy cross-validation") and the self-confidence baseline.

Every row's probabilities come from a logistic regression that never saw that row, so they are
out-of-sample like the probabilities a user may bring. Detectors only ever see these (or the given
ones): in-sample predictions memorise the given labels and would hide the very errors we look for.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from labelaudit.detectors.base import DetectionContext, DetectorResult
from labelaudit.detectors.registry import register
from labelaudit.errors import DataError, Problem
from labelaudit.progress import ProgressFn, no_progress

if TYPE_CHECKING:
    from labelaudit.engine import Engine

#: Inverse regularisation strength of the logistic regression on (L2-normalised) sentence embeddings.
DEFAULT_C = 10.0
DEFAULT_MAX_ITER = 300


class SmallClassWarning(UserWarning):
    """A class too small for the requested folds; the documented fallback was used."""


def fold_plan(
    labels: np.ndarray, n_classes: int, *, n_splits: int = 5
) -> tuple[int, np.ndarray, list[str]]:
    """How many folds can be used and which classes are single rows.

    Returns ``(n_splits_used, singleton_classes, notes)``. Fallback rules: folds are reduced to the
    smallest class count that is at least 2; classes with one row are left out of training (each of
    their rows gets the class prior as its prediction). Raises DataError with fewer than two
    classes of at least two rows each.

    >>> fold_plan(np.array([0, 0, 0, 1, 1, 2]), 3, n_splits=5)[:2]
    (2, array([2]))
    """
    counts = np.bincount(labels, minlength=n_classes)
    present = np.flatnonzero(counts)
    if len(present) < 2:
        raise DataError(
            Problem(
                f"every row has the same label ({len(present)} class present)",
                "at least two classes to find label errors",
                fix="load a dataset with rows of at least two classes",
            )
        )
    trainable = np.flatnonzero(counts >= 2)
    if len(trainable) < 2:
        raise DataError(
            Problem(
                "fewer than two classes have two or more rows",
                "at least two classes with two or more rows each for cross-validation",
                fix="add rows to the small classes or merge them",
            )
        )
    notes = []
    singletons = np.flatnonzero(counts == 1)
    smallest = int(counts[trainable].min())
    used = max(2, min(n_splits, smallest))
    if used < n_splits:
        notes.append(
            f"the smallest class has {smallest} rows: using {used} folds instead of {n_splits}"
        )
    if len(singletons):
        notes.append(
            f"{len(singletons)} class(es) with a single row: their rows get the class prior "
            "as prediction, not a cross-validated one"
        )
    return used, singletons, notes


def out_of_fold_probs(
    embeddings: np.ndarray,
    labels: np.ndarray,
    *,
    n_classes: int | None = None,
    n_splits: int = 5,
    seed: int = 0,
    C: float = DEFAULT_C,
    max_iter: int = DEFAULT_MAX_ITER,
    progress: ProgressFn = no_progress,
    engine: Engine | None = None,
) -> tuple[np.ndarray, float]:
    """Stratified K-fold logistic-regression probabilities for every row, never in-sample.

    The folds are independent: ``engine`` (default: this process, on its cores:
    :func:`labelaudit.dynamics.map_on_cores`) runs them,
    e.g. as Ray tasks (:mod:`labelaudit.engine`); the result does not depend on where they ran
    beyond floating-point summation order.

    ``embeddings``: float (N, D); ``labels``: int (N,) in [0, K). Returns ``(probs, oof_accuracy)``
    with ``probs`` float64 (N, K), rows summing to 1, and ``oof_accuracy`` in [0, 1] (agreement of
    the argmax with the given labels, itself a noisy-label accuracy). Small classes follow
    :func:`fold_plan` and emit a :class:`SmallClassWarning`.

    >>> probs, acc = out_of_fold_probs(X, y, n_splits=5, seed=0)  # doctest: +SKIP
    """
    from sklearn.model_selection import StratifiedKFold

    from labelaudit.engine import LOCAL

    labels = np.asarray(labels, dtype=np.int64)
    X = np.asarray(embeddings, dtype=np.float32)
    k = int(n_classes if n_classes is not None else labels.max() + 1)
    n = len(labels)
    used, singletons, notes = fold_plan(labels, k, n_splits=n_splits)
    for note in notes:
        warnings.warn(note, SmallClassWarning, stacklevel=2)
    probs = np.zeros((n, k), dtype=np.float64)
    prior = np.bincount(labels, minlength=k) / n
    single_rows = np.isin(labels, singletons)
    probs[single_rows] = prior
    rows = np.flatnonzero(~single_rows)
    folds = StratifiedKFold(n_splits=used, shuffle=True, random_state=seed)
    plan = [(rows[train], rows[test]) for train, test in folds.split(rows, labels[rows])]
    progress("out-of-fold predictions", 0, used)
    eng = engine or LOCAL
    if eng is LOCAL:  # the folds on this machine's cores, with progress after each
        from labelaudit.dynamics import map_on_cores

        results = map_on_cores(
            lambda fold: fit_fold(fold, X=X, labels=labels, C=C, max_iter=max_iter, seed=seed),
            plan,
            done=lambda k: progress("out-of-fold predictions", k, used),
        )
    else:
        shared = {"X": X, "labels": labels, "C": C, "max_iter": max_iter, "seed": seed}
        results = eng.map(fit_fold, plan, shared=shared)
    for (_, test), (classes, fold_probs) in zip(plan, results, strict=True):
        # Classes absent from this training fold get probability 0.
        probs[np.ix_(test, classes)] = fold_probs
    progress("out-of-fold predictions", used, used)
    probs /= probs.sum(axis=1, keepdims=True)
    accuracy = float((probs.argmax(axis=1) == labels).mean())
    return probs, accuracy


def fit_fold(
    fold: tuple[np.ndarray, np.ndarray],
    *,
    X: np.ndarray,
    labels: np.ndarray,
    C: float,
    max_iter: int,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """One fold: fit on ``fold[0]``, predict ``fold[1]``; returns ``(classes_, probs)``.

    NumPy's BLAS runs on one thread here (:func:`labelaudit.dynamics.single_blas_thread`): its
    (rows, D) x (D, K) products are too small to gain from a second thread, and on a busy 2-core
    machine the spinning second thread cost 9x the wall time (bench/results/first_run.md).
    """
    from sklearn.linear_model import LogisticRegression

    from labelaudit import dynamics

    train, test = fold
    model = LogisticRegression(C=C, max_iter=max_iter, random_state=seed)
    with warnings.catch_warnings(), dynamics.single_blas_thread():
        warnings.simplefilter("ignore")  # ConvergenceWarning: a few more iterations change little
        model.fit(X[train], labels[train])
        return model.classes_, model.predict_proba(X[test])


def cached_out_of_fold_probs(
    embeddings: np.ndarray,
    labels: np.ndarray,
    *,
    n_classes: int,
    key: str,
    workspace: Any = None,
    n_splits: int = 5,
    seed: int = 0,
    C: float = DEFAULT_C,
    max_iter: int = DEFAULT_MAX_ITER,
    progress: ProgressFn = no_progress,
    engine: Engine | None = None,
) -> tuple[np.ndarray, float]:
    """:func:`out_of_fold_probs`, stored in ``workspace`` under ``key`` (a content hash) and the params.

    The embeddings' digest is part of the params, so another embedding model never reuses them.
    """
    labels = np.asarray(labels, dtype=np.int64)

    def compute() -> np.ndarray:
        return out_of_fold_probs(
            embeddings,
            labels,
            n_classes=n_classes,
            n_splits=n_splits,
            seed=seed,
            C=C,
            max_iter=max_iter,
            progress=progress,
            engine=engine,
        )[0]

    if workspace is None:
        probs = compute()
    else:
        from labelaudit.dataset import sha256_of_array

        # Fed in row blocks: the same digest as the whole array's bytes, without an (N, D) copy.
        digest = sha256_of_array(np.asarray(embeddings, dtype=np.float32)).hexdigest()[:16]
        params = {
            "n_splits": n_splits,
            "seed": seed,
            "C": C,
            "max_iter": max_iter,
            "embeddings": digest,
            "n_classes": n_classes,
            "version": 1,
        }
        if workspace.has(key, "oof_probs", params):  # a cached run still reports its fallbacks
            for note in fold_plan(labels, n_classes, n_splits=n_splits)[2]:
                warnings.warn(note, SmallClassWarning, stacklevel=2)
        probs = workspace.cached(key, "oof_probs", params, compute)
    return probs, float((probs.argmax(axis=1) == labels).mean())


@register(
    "self_confidence",
    requires=("pred_probs",),
    cost=0,
    description="1 - the out-of-sample probability of the given label; flags rows whose argmax differs",
)
def self_confidence(ctx: DetectionContext) -> DetectorResult:
    """The plain baseline: how little probability the model gives the given label."""
    p = ctx.pred_probs
    assert p is not None  # required by the registration
    rows = np.arange(ctx.n)
    given = p[rows, ctx.labels]
    top = p.argmax(axis=1)
    flagged = top != ctx.labels
    evidence = [
        f"model gives the given label {g:.2f}, another label {t:.2f}" if f else ""
        for g, t, f in zip(given, p[rows, top], flagged, strict=True)
    ]
    return DetectorResult(
        "self_confidence",
        score=np.clip(1.0 - given, 0, 1),
        is_issue=flagged,
        suggested_label=top,
        suggested_prob=p[rows, top],
        evidence=evidence,
    )
