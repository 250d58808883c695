"""Truth inference from several ratings per item: majority vote and Dawid–Skene.

Both return a :class:`TruthResult`: a posterior over classes per item (I, K), the consensus class and
what the method learned about each annotator. MACE lives in ``mace.py``; the CROWDLAB combination
with model probabilities in ``crowdlab.py``.

Reference: A. P. Dawid and A. M. Skene (1979), "Maximum likelihood estimation of observer
error-rates using the EM algorithm", Applied Statistics 28(1):20–28.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from scipy.special import logsumexp

from labelaudit.agreement.ratings import Ratings
from labelaudit.errors import UsageError

TieBreak = Literal["random", "model", "rarer"]


@dataclass
class TruthResult:
    """Output of a truth-inference method.

    ``posterior``: float64 (I, K), rows sum to 1. ``consensus``: int64 (I,) class index.
    ``competence``: float64 (J,) in [0, 1] or None (how often the annotator is right, by the method's
    own model). ``confusion``: float64 (J, K, K) row-stochastic P(annotator says l | truth k) or None.
    ``details``: method report (ties, iterations, log-likelihood trace, converged, …).
    """

    method: str
    posterior: np.ndarray
    consensus: np.ndarray
    competence: np.ndarray | None = None
    confusion: np.ndarray | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def confidence(self) -> np.ndarray:
        """Posterior probability of the consensus class, (I,) in [0, 1]."""
        return self.posterior[np.arange(len(self.consensus)), self.consensus]

    @property
    def entropy(self) -> np.ndarray:
        """Posterior entropy normalised by log K, (I,) in [0, 1]; 0 = certain."""
        p = np.clip(self.posterior, 1e-300, 1.0)
        k = self.posterior.shape[1]
        return (
            np.clip(-(self.posterior * np.log(p)).sum(axis=1) / np.log(k), 0.0, 1.0)
            if k > 1
            else np.zeros(len(p))
        )


def vote_shares(ratings: Ratings) -> np.ndarray:
    """Each item's share of votes per class, float64 (I, K), rows sum to 1."""
    counts = ratings.counts
    return counts / counts.sum(axis=1, keepdims=True)


def majority_vote(
    ratings: Ratings,
    *,
    tie_break: TieBreak = "random",
    seed: int = 0,
    pred_probs: np.ndarray | None = None,
) -> TruthResult:
    """Most voted class per item, with an explicit rule for ties.

    ``tie_break``: ``"random"`` (uniform among the tied classes, seeded), ``"model"`` (the tied class
    the model gives the highest probability; needs ``pred_probs`` float (I, K) aligned with
    ``ratings.item_ids``), ``"rarer"`` (the tied class with fewer votes over the whole dataset; then
    the lower class index). ``details["ties"]`` counts the items that needed the rule.
    Posterior = vote shares.

    Example:
        >>> r = Ratings.from_frame(pd.DataFrame(
        ...     {"item_id": ["a", "a"], "annotator_id": ["x", "y"], "label": ["p", "q"]}))
        >>> majority_vote(r, tie_break="rarer").details["ties"]      # doctest: +SKIP
        1
    """
    shares = vote_shares(ratings)
    top = shares.max(axis=1, keepdims=True)
    tied = np.isclose(shares, top)
    n_tied = tied.sum(axis=1)
    if tie_break == "random":
        rng = np.random.default_rng(seed)
        score = tied * rng.random(shares.shape)
    elif tie_break == "model":
        if pred_probs is None:
            raise UsageError(
                "tie_break='model' needs pred_probs (the dataset has no predicted probabilities)"
            )
        score = tied * (np.asarray(pred_probs, dtype=np.float64) + 1e-12)
    elif tie_break == "rarer":
        total = ratings.counts.sum(axis=0)
        rarity = 1.0 / (1.0 + total) + 1e-9 * (
            ratings.k - np.arange(ratings.k)
        )  # lower index wins exact ties
        score = tied * rarity[None, :]
    else:
        raise UsageError(f"unknown tie_break {tie_break!r}; use random, model or rarer")
    consensus = np.argmax(np.where(tied, score, -1.0), axis=1).astype(np.int64)
    return TruthResult(
        "mv",
        shares,
        consensus,
        details={"ties": int((n_tied > 1).sum()), "tie_break": tie_break, "seed": seed},
    )


def dawid_skene(
    ratings: Ratings,
    *,
    max_iter: int = 100,
    tol: float = 1e-7,
    smoothing: float = 0.0,
    init: np.ndarray | None = None,
) -> TruthResult:
    """Dawid–Skene EM: class priors, one confusion matrix per annotator, and a posterior per item.

    Starts from the soft vote shares (Dawid & Skene 1979) unless ``init`` (I, K) is given; stops when
    the log-likelihood improves by less than ``tol`` (relative) or after ``max_iter`` iterations.
    ``smoothing`` >= 0 is added to every confusion count before normalising (0 reproduces the
    paper; a small value keeps unseen confusions possible). Vectorised: each iteration is two
    sparse products over the M ratings.

    ``details``: ``priors`` (K,), ``iterations``, ``log_likelihood`` (final), ``trace`` (per iteration),
    ``converged``. ``competence[j]`` = sum_k prior_k * P(j says k | truth k).

    Example: on the 1979 patient table (45 items, 5 observers) the priors come out near
    (0.3996, 0.4220, 0.1118, 0.0667) and the log-likelihood near -192.89.
    """
    if smoothing < 0:
        raise UsageError(f"smoothing must be >= 0, got {smoothing}")
    k = ratings.k
    post = vote_shares(ratings) if init is None else np.asarray(init, dtype=np.float64)
    by_item = ratings.item_incidence
    by_annotator_label = ratings.annotator_label_incidence
    trace: list[float] = []
    converged = False
    priors = conf = None
    for _ in range(max_iter):
        # M-step: priors and per-annotator confusion from the current soft labels.
        priors = post.mean(axis=0)
        counts = (by_annotator_label @ post[ratings.item]).reshape(
            ratings.n_annotators, k, k
        )  # (J, said, truth)
        counts = counts.transpose(0, 2, 1) + smoothing  # (J, truth, said)
        with np.errstate(invalid="ignore", divide="ignore"):
            conf = counts / counts.sum(axis=2, keepdims=True)
        conf = np.nan_to_num(conf, nan=1.0 / k)
        # E-step: log P(truth = t, ratings of i) = log prior_t + sum over i's ratings of log conf[j, t, said].
        with np.errstate(divide="ignore"):
            log_conf = np.log(conf)
            log_joint = (
                np.log(priors)[None, :] + by_item @ log_conf[ratings.annotator, :, ratings.label]
            )
        norm = logsumexp(log_joint, axis=1, keepdims=True)
        post = np.exp(log_joint - norm)
        trace.append(float(norm.sum()))
        if len(trace) > 1 and abs(trace[-1] - trace[-2]) <= tol * max(1.0, abs(trace[-2])):
            converged = True
            break
    assert priors is not None and conf is not None
    priors = post.mean(axis=0)
    competence = (conf[:, np.arange(k), np.arange(k)] * priors[None, :]).sum(axis=1)
    return TruthResult(
        "ds",
        post,
        np.argmax(post, axis=1).astype(np.int64),
        competence=competence,
        confusion=conf,
        details={
            "priors": priors,
            "iterations": len(trace),
            "log_likelihood": trace[-1],
            "trace": trace,
            "converged": converged,
            "smoothing": smoothing,
        },
    )
