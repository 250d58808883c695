"""Iterative noisy cross-validation (INCV) after Chen, Liao, Chen & Zhang 2019, "Understanding and
Utilizing Deep Neural Networks Trained with Noisy Labels" (ICML), Algorithm 2.

Each round splits the still-undecided rows into two halves; a model trained on the rows selected so
far plus one half predicts the other half, and held-out rows whose prediction agrees with their
label are selected as clean; among the disagreeing ones, the fraction with the largest loss is set
aside as noisy. Then the halves swap. Rows never selected need review. A logistic regression on the
embeddings stands in for the paper's deep network. The noise rate comes from the first round's
cross-validation accuracy through the paper's symmetric-noise relation
``accuracy = (1 - e)^2 + e^2 / (K - 1)``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from labelaudit.detectors.base import DetectionContext, DetectorDetails, DetectorResult
from labelaudit.detectors.registry import register
from labelaudit.typed_json import serialisable

DEFAULT_ROUNDS = 4
#: Inverse regularisation of the per-half logistic regressions.
DEFAULT_C = 10.0
#: The two halves of a round are fitted at the same time (on two cores) while the training rows of
#: one fit (a float32 copy: scikit-learn needs a contiguous array) take at most this many bytes;
#: above it (350k rows of 384-d), one after the other, so a round holds one such copy, not two.
PARALLEL_COPY_BYTES = 512 << 20
#: Rows per block of the held-out predictions (no copy of the held-out half's embeddings).
PREDICT_BLOCK = 65_536


def noise_rate_from_accuracy(accuracy: float, n_classes: int) -> float:
    """Solve ``accuracy = (1 - e)^2 + e^2 / (K - 1)`` for the noise rate e in [0, (K - 1) / K].

    >>> round(noise_rate_from_accuracy(0.81 + 0.01 / 9, 10), 3)
    0.1
    """
    a = n_classes / (n_classes - 1)
    disc = 1.0 - a * (1.0 - float(np.clip(accuracy, 0.0, 1.0)))
    return float(np.clip((1.0 - np.sqrt(max(disc, 0.0))) / a, 0.0, (n_classes - 1) / n_classes))


def _fit_predict(
    x: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray, k: int, seed: int
) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression

    from labelaudit import dynamics

    probs = np.zeros((len(test), k))
    classes = np.unique(y[train])
    if len(classes) < 2:  # nothing to learn: predict the only class
        probs[:, classes] = 1.0
        return probs
    model = LogisticRegression(C=DEFAULT_C, max_iter=200, random_state=seed)
    # one BLAS thread, as the out-of-fold folds (labelaudit.detectors.oof.fit_fold)
    with warnings.catch_warnings(), dynamics.single_blas_thread():
        warnings.simplefilter("ignore")
        model.fit(x[train], y[train])
        for s in range(0, len(test), PREDICT_BLOCK):  # per row (float32: last bits may differ)
            rows = test[s : s + PREDICT_BLOCK]
            probs[s : s + len(rows), model.classes_] = model.predict_proba(x[rows])
    return probs


def incv(
    embeddings: np.ndarray,
    labels: np.ndarray,
    *,
    n_classes: int,
    rounds: int = DEFAULT_ROUNDS,
    seed: int = 0,
) -> dict:
    """Run INCV; returns ``selected`` (bool (N,), judged clean), ``removed`` (bool (N,), set aside as
    noisy), ``heldout_probs`` (float64 (N, K), the last held-out prediction of each row),
    ``noise_rate`` (in [0, 1]) and ``rounds_run``.

    >>> out = incv(X, y, n_classes=3, rounds=2)  # doctest: +SKIP
    """
    from labelaudit.dynamics import map_on_cores

    x = np.asarray(embeddings, dtype=np.float32)
    y = np.asarray(labels, dtype=np.int64)
    n = len(y)
    rng = np.random.default_rng(seed)
    selected = np.zeros(n, dtype=bool)
    removed = np.zeros(n, dtype=bool)
    heldout = np.full((n, n_classes), 1.0 / n_classes)
    noise_rate = 0.0
    remove_ratio = 0.0
    rounds_run = 0
    for r in range(rounds):
        candidates = np.flatnonzero(~selected & ~removed)
        if len(candidates) < 4:
            break
        rounds_run += 1
        perm = rng.permutation(candidates)
        halves = (perm[: len(perm) // 2], perm[len(perm) // 2 :])
        chosen, dropped, agreed = [], [], 0
        pairs = (halves, halves[::-1])
        kept = np.flatnonzero(selected)
        # The two halves' fits depend only on the rows selected before this round: on two cores.

        def fit(
            ab: tuple[np.ndarray, np.ndarray], kept: np.ndarray = kept, r: int = r
        ) -> np.ndarray:
            return _fit_predict(x, y, np.concatenate([kept, ab[0]]), ab[1], n_classes, seed + r)

        copy_bytes = (len(kept) + max(len(h) for h in halves)) * x.shape[1] * x.itemsize
        fits = map_on_cores(fit, pairs, workers=None if copy_bytes <= PARALLEL_COPY_BYTES else 1)
        for (_, b), p in zip(pairs, fits, strict=True):
            heldout[b] = p
            agree = p.argmax(axis=1) == y[b]
            agreed += int(agree.sum())
            chosen.append(b[agree])
            if remove_ratio > 0:
                # Among disagreeing rows, set aside the largest-loss share (remove_ratio x |selected|).
                loss = -np.log(np.clip(p[np.arange(len(b)), y[b]], 1e-12, 1.0))
                n_drop = min(int(round(remove_ratio * agree.sum())), int((~agree).sum()))
                if n_drop:
                    worst = np.argsort(-np.where(agree, -np.inf, loss), kind="stable")[:n_drop]
                    dropped.append(b[worst])
        if r == 0:
            accuracy = agreed / len(candidates)
            noise_rate = noise_rate_from_accuracy(accuracy, n_classes)
            remove_ratio = noise_rate / max(1.0 - noise_rate, 1e-6)
            # The first round removes too: recompute its drops with the now known ratio.
            for b, c in zip(halves[::-1], chosen, strict=True):
                disagree = np.setdiff1d(b, c)
                loss = -np.log(np.clip(heldout[disagree, y[disagree]], 1e-12, 1.0))
                n_drop = min(int(round(remove_ratio * len(c))), len(disagree))
                dropped.append(disagree[np.argsort(-loss, kind="stable")[:n_drop]])
        for c in chosen:
            selected[c] = True
        for d in dropped:
            removed[d] = True
    return {
        "selected": selected,
        "removed": removed,
        "heldout_probs": heldout,
        "noise_rate": noise_rate,
        "rounds_run": rounds_run,
    }


@serialisable
@dataclass(frozen=True)
class IncvDetails(DetectorDetails):
    estimated_noise_rate: float
    rounds: int
    n_selected: int
    n_removed: int


@register(
    "incv",
    requires=("embeddings",),
    cost=4,
    description="iterative noisy cross-validation (Chen et al. 2019): rows never selected as clean",
)
def incv_detector(ctx: DetectionContext) -> DetectorResult:
    assert ctx.embeddings is not None  # required by the registration
    out = incv(
        ctx.embeddings,
        ctx.labels,
        n_classes=ctx.n_classes,
        rounds=DEFAULT_ROUNDS if ctx.options.incv_rounds is None else ctx.options.incv_rounds,
        seed=ctx.seed,
    )
    p = out["heldout_probs"]
    rows = np.arange(ctx.n)
    flagged = ~out["selected"]
    top = p.argmax(axis=1)
    # Held-out disbelief in the given label; rows set aside as noisy rank above the undecided ones.
    score = 0.5 * (1.0 - p[rows, ctx.labels]) + 0.5 * (flagged.astype(float) + out["removed"]) / 2
    names = ctx.class_names
    evidence = [
        ("set aside as noisy" if rem else "never agreed with its held-out prediction")
        + f"; held-out model says '{names[t]}'"
        if f
        else ""
        for f, rem, t in zip(flagged, out["removed"], top, strict=True)
    ]
    return DetectorResult(
        "incv",
        score=np.clip(score, 0, 1),
        is_issue=flagged,
        suggested_label=top,
        suggested_prob=p[rows, top],
        evidence=evidence,
        details=IncvDetails(
            estimated_noise_rate=float(out["noise_rate"]),
            rounds=int(out["rounds_run"]),
            n_selected=int(out["selected"].sum()),
            n_removed=int(out["removed"].sum()),
        ),
    )
