"""A combined ranking that weighs each detector by how far it can be trusted on this dataset.

No reviewer labels are used. Each detector is treated as a noisy rater of "this label is wrong",
as weak-supervision label models do (Ratner et al. 2017, "Snorkel: rapid training data creation
with weak supervision", VLDB; Dawid & Skene 1979 for the model): it votes for the m rows it ranks
highest, m being the estimated number of label errors (confident learning's estimate when it ran,
else the median number of rows the detectors flag). A two-class Dawid–Skene model fitted by EM over
those votes gives every detector a sensitivity a and a false-positive rate b; its weight is the log
odds ratio log(a (1 - b) / (b (1 - a))), floored at 0, so a detector that votes like chance gets
nothing. The combined score is the weighted mean of the rank-normalised scores.

The label model's posterior also estimates the precision of any ranking among its top m rows;
those estimates are reported. A guard that switched to the best *estimated* single detector was
tried and dropped: the posterior is dominated by the correlated detectors, so it picked
self-confidence where confident learning was far better (20news: AP 0.43 instead of 0.90;
bench/results/detectors_combiner.md).

The "needs review" flag follows the same weights: a row needs review when detectors holding at
least half of the total weight flag it. Its expected precision is the mean posterior over the
flagged rows (a model estimate, not a measurement).

Deterministic (no randomness) and invariant to row order (ranks with shared ties, thresholds by
value).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from labelaudit.detectors.base import DetectorResult, rank_normalise

#: Documented rule for the trust-weighted "needs review" flag.
TRUST_ISSUE_RULE = "flagged by detectors holding at least half of the trust weight"
#: EM iterations of the label model (it converges in far fewer on every benchmark case).
N_ITER = 100


@dataclass
class Trust:
    """What the label model learnt. ``weights`` sum to 1 (detector -> weight)."""

    weights: dict[str, float]
    sensitivity: dict[str, float]
    false_positive_rate: dict[str, float]
    #: Estimated number of label errors the votes used.
    n_errors: int
    #: Label-model estimate of P(label is wrong) per row, float64 (N,).
    posterior: np.ndarray
    #: Estimated precision in the top ``n_errors`` rows, per candidate ranking.
    estimated_precision: dict[str, float] = field(default_factory=dict)


def estimated_errors(results: Mapping[str, DetectorResult]) -> int:
    """How many label errors to expect: confident learning's noise-rate estimate when it ran, else
    the median number of rows the detectors flag; at least 1, at most half the rows."""
    n = len(next(iter(results.values())).score)
    cl = results.get("confident_learning")
    rate = None if cl is None else cl.details.get("estimated_noise_rate")
    if rate is not None and np.isfinite(rate) and rate > 0:
        m = int(round(float(rate) * n))
    else:
        m = int(np.median([r.n_issues for r in results.values()]))
    return int(np.clip(m, 1, max(1, n // 2)))


def _label_model(votes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two-class Dawid–Skene over boolean votes (N, D): (posterior (N,), sensitivity (D,), fpr (D,))."""
    z = votes.mean(axis=1)  # start from the share of detectors voting "wrong"
    a = b = np.zeros(votes.shape[1])
    for _ in range(N_ITER):
        prior = float(np.clip(z.mean(), 1e-6, 1 - 1e-6))
        a = np.clip((z @ votes) / max(z.sum(), 1e-12), 1e-4, 1 - 1e-4)
        b = np.clip(((1 - z) @ votes) / max((1 - z).sum(), 1e-12), 1e-4, 1 - 1e-4)
        log1 = np.log(prior) + votes @ np.log(a) + (~votes) @ np.log(1 - a)
        log0 = np.log(1 - prior) + votes @ np.log(b) + (~votes) @ np.log(1 - b)
        new = 1.0 / (1.0 + np.exp(np.clip(log0 - log1, -700, 700)))
        if np.max(np.abs(new - z)) < 1e-9:
            z = new
            break
        z = new
    return z, a, b


def _top(score: np.ndarray, m: int) -> np.ndarray:
    """Rows whose score reaches the m-th highest value (ties at the threshold all in)."""
    return score >= np.sort(score)[-m]


def learn_trust(results: Mapping[str, DetectorResult]) -> Trust:
    """Fit the label model over ``results`` (at least one) and choose the combined ranking."""
    if not results:
        raise ValueError("no detector results to combine")
    names = list(results)
    ranks = np.stack([rank_normalise(results[n].score) for n in names], axis=1)
    m = estimated_errors(results)
    votes = np.stack([_top(ranks[:, j], m) for j in range(len(names))], axis=1)
    post, a, b = _label_model(votes)
    raw = np.clip(np.log(a * (1 - b) / (b * (1 - a))), 0.0, None)
    if raw.sum() <= 0:
        raw = np.ones(len(names))
    w = raw / raw.sum()
    mean = ranks @ w
    precision = {"weighted mean": float(post[_top(mean, m)].mean())}
    for j, n in enumerate(names):
        precision[n] = float(post[votes[:, j]].mean())
    return Trust(
        weights={n: float(x) for n, x in zip(names, w, strict=True)},
        sensitivity={n: float(x) for n, x in zip(names, a, strict=True)},
        false_positive_rate={n: float(x) for n, x in zip(names, b, strict=True)},
        n_errors=m,
        posterior=post,
        estimated_precision=precision,
    )


def trust_weighted(results: Mapping[str, DetectorResult]) -> np.ndarray:
    """The trust-weighted combined score, float64 (N,) in [0, 1] (see the module docstring).

    >>> a = DetectorResult("a", [0.1, 0.9, 0.2], [0, 1, 0], [0, 0, 0], [1, 1, 1], ["", "", ""])
    >>> trust_weighted({"a": a}).tolist()
    [0.0, 1.0, 0.5]
    """
    return combined_score(results, learn_trust(results))


def combined_score(results: Mapping[str, DetectorResult], trust: Trust) -> np.ndarray:
    total = sum(trust.weights.values())
    out = sum(w * rank_normalise(results[n].score) for n, w in trust.weights.items() if w > 0)
    return np.clip(np.asarray(out, dtype=np.float64) / total, 0.0, 1.0)


def trusted_flags(results: Mapping[str, DetectorResult], trust: Trust) -> np.ndarray:
    """Rows flagged by detectors holding at least half of the weight, bool (N,)."""
    total = sum(trust.weights.values())
    share = sum(w * results[n].is_issue.astype(np.float64) for n, w in trust.weights.items())
    return np.asarray(share, dtype=np.float64) >= 0.5 * total - 1e-12


def expected_precision(flags: np.ndarray, trust: Trust) -> float | None:
    """Label-model estimate of the precision of ``flags`` (None when nothing is flagged)."""
    return float(trust.posterior[flags].mean()) if flags.any() else None
