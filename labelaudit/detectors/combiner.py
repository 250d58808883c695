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
least half of the total weight flag it. The label model's mean posterior over the flagged rows
(:func:`expected_precision`) was measured up to 0.39 too high, and :func:`flag_precision`
(class-conditional noise with confident learning's noise matrix) up to 0.30 too low where the model
absorbed the errors; the scan reports the range between the two, widened below where confident
learning's noise rate exceeds the posterior's own (:func:`flag_precision_range`).

Deterministic (no randomness) and invariant to row order (ranks with shared ties, thresholds by
value).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
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
    #: Whether the detectors' agreement can tell how far each one is to be trusted
    #: (:func:`identifiability`); when not, ``why_not_identifiable`` says why and the scan falls
    #: back to the quality-gated combiner's weights (:data:`TRUST_FALLBACK`).
    identifiable: bool = True
    why_not_identifiable: str = ""


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


#: Two detectors *agree* when their votes co-occur beyond chance by at least this many standard
#: errors: phi * sqrt(N) >= AGREEMENT_Z, phi being the correlation of their boolean votes (under
#: independence phi * sqrt(N) is about standard normal, so 3 is rarely reached by chance).
AGREEMENT_Z = 3.0
#: What the trust combiner reports when it cannot learn its weights, before the reason.
TRUST_FALLBACK = "trust: not identifiable, fell back to quality weights because "


def agreement_z(votes: np.ndarray) -> np.ndarray:
    """float64 (D, D): phi * sqrt(N) of every pair of boolean vote columns (N, D); 0 on the
    diagonal and for a column that votes all or nothing."""
    v = np.asarray(votes, dtype=np.float64)
    n = len(v)
    p = v.mean(axis=0)
    sd = np.sqrt(p * (1 - p))
    cov = (v.T @ v) / max(n, 1) - np.outer(p, p)
    denom = np.outer(sd, sd)
    phi = np.divide(cov, denom, out=np.zeros_like(cov), where=denom > 0)
    np.fill_diagonal(phi, 0.0)
    return phi * np.sqrt(n)


def identifiability(
    names: list[str], votes: np.ndarray, posterior: np.ndarray, raw_weights: np.ndarray
) -> str:
    """Why the label model's weights cannot be trusted, or "" when they can.

    A two-class latent-class model is identified from conditionally independent raters only when
    at least three of them carry information about the hidden class (Allman, Matias & Rhodes 2009,
    Annals of Statistics 37(6A), Kruskal's theorem): two raters' agreement fixes only the product
    of their informativeness, and a rater that agrees with nobody is indistinguishable from noise,
    informative or not. So the weights are taken as identifiable when some three detectors agree
    pairwise (:data:`AGREEMENT_Z`) and the fit is not degenerate (some detector votes better than
    chance, and the posterior expects between one and N - 1 errors)."""
    d = len(names)
    if d == 1:
        return ""
    z = agreement_z(votes)
    agree = z >= AGREEMENT_Z
    i, j = np.unravel_index(int(np.argmax(z)), z.shape)
    strongest = f"the strongest agreement is z = {z[i, j]:.1f} between {names[i]} and {names[j]}"
    if d == 2:
        return (
            f"only two detectors ran ({strongest}): their agreement fixes only the product of "
            "their accuracies, and the label model needs three to tell each one's"
        )
    if not agree.any():
        return (
            f"no two of the {d} detectors agree beyond chance ({strongest}, below "
            f"{AGREEMENT_Z:g}): agreement cannot tell an informative detector from noise"
        )
    a = agree.astype(np.int64)
    if not np.trace(a @ a @ a):  # no triangle: no three detectors agree pairwise
        pairs = int(agree.sum() // 2)
        return (
            f"no three of the {d} detectors agree pairwise beyond chance ({pairs} agreeing "
            f"pair{'s' if pairs != 1 else ''}; {strongest}): the label model needs three to "
            "tell each one's accuracy"
        )
    if raw_weights.sum() <= 0:
        return "the label model's fit is degenerate: no detector votes better than chance"
    expected = float(posterior.sum())
    if not 1.0 <= expected <= len(posterior) - 1.0:
        return (
            f"the label model's fit is degenerate: it expects {expected:.1f} label errors among "
            f"{len(posterior)} rows"
        )
    return ""


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
    why_not = identifiability(names, votes, post, raw)
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
        identifiable=not why_not,
        why_not_identifiable=why_not,
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


# ----------------------------------------------------------------------------- quality-gated combiner
#: Documented rule for the quality-gated "needs review" flag (the same weights as the score).
QUALITY_ISSUE_RULE = "flagged by detectors holding at least half of the combiner's weight"
#: A probability source *dominates* another when its accuracy against the given labels is higher by
#: at least this many paired standard errors (McNemar-style z on the per-row differences).
DOMINANCE_Z = 3.0
#: ... and its errors beyond the estimated noise rate (confident learning's) must be at most
#: 1 / DOMINANCE_RATIO of the other's: significance alone is not enough at thousands of rows
#: (BANKING77 test, clean-label given model: accuracy 0.862 vs 0.847, z = 3.8, yet the embedding
#: detectors are as good as the given probabilities there). Chosen by judgement, not fitted.
DOMINANCE_RATIO = 1.5
#: Probes planted to choose among the detectors that are functions of (probabilities, label).
PROBE_SHARE, PROBE_MIN, PROBE_MAX, PROBE_REPEATS = 0.10, 50, 2000, 3
#: Probability detectors within this much probe AP of the best one are all kept. Chosen on the
#: benchmark sets (bench/results/detectors_combiner.md), so it is tuned, not validated: uniform
#: probes give CIFAR-10 0.977 vs 0.946 (the two together beat either on real errors), BANKING77
#: uniform flips 0.679 vs 0.641 and 20news 0.943 vs 0.898 (only the better one should count).
PROBE_TOLERANCE = 0.035
#: Where probes take their new label: "estimated" (the default: the error structure estimated from
#: the most confidently flagged rows, :func:`estimate_error_structure`), "uniform" over the other
#: classes, or "noise_matrix" (drawn from confident learning's estimated noise matrix). The
#: noise-matrix probes were measured biased towards the normalised margin (BANKING77 test, uniform
#: 5 % flips: probe AP 0.62 vs 0.53 for self-confidence, real AP 0.83 vs 0.97), as the estimated
#: matrix mixes the model's own confusions into the noise; uniform probes order them as the real
#: errors do there but drop confident learning on flips to the nearest intent (probe AP 0.97 vs
#: 0.68, real AP 0.59 vs 0.76; bench/results/detectors_combiner.md).
PROBE_DESTINATION = "estimated"
#: Errors to similar classes: when the estimated error structure's share at rank 0 (the given label
#: is the class the model finds most likely after its suggestion) exceeds what errors to a random
#: class give by at least this share of the rest, ``(share - u) / (1 - u) >= SIMILAR_CLASS_EXCESS``
#: with u = 1 / (K - 1), the data's errors are taken to be to similar classes. Measured on the
#: tuning cases (BANKING77 test): 0.42-0.56 with flips to the nearest intent, 0.01-0.07 with uniform
#: flips (bench/results/detectors_combiner.md); the threshold sits between, chosen by judgement.
SIMILAR_CLASS_EXCESS = 0.2
#: In that regime the probes are planted at rank 0 only (flips to the class the model finds most
#: likely after the label: what a similar-class error looks like), and the probability family holds
#: this share of the weight when both families are kept, instead of half. The embedding detectors
#: are models on the same noisy labels in the embedding space where the similar classes are
#: neighbours, and on such errors they trail the best probability detector (AP 0.45-0.72 against
#: 0.75-0.81 on BANKING77 test). Chosen on the tuning cases (the smallest share from the grid
#: 0.5, 0.6, ..., 1.0 that keeps every tuning case within 0.01 of its best single detector;
#: bench/results/detectors_combiner.md, "Similar-class regime"); the BANKING77 train cases were
#: run with it frozen.
SIMILAR_CLASS_PROBS_SHARE = 0.8
#: Families: detectors reading only the probabilities, and those reading anything else (the
#: embeddings, texts or training trajectories: in labelaudit, models trained on the embeddings).
PROBS_FAMILY, OTHER_FAMILY = "probabilities", "embeddings"


@dataclass
class Combination:
    """What the quality-gated combiner learnt (no reviewer labels). ``weights`` sum to 1."""

    weights: dict[str, float]
    #: detector -> family (:data:`PROBS_FAMILY` or :data:`OTHER_FAMILY`).
    families: dict[str, str]
    #: family -> accuracy of its probability model against the given labels (None = unknown).
    source_accuracy: dict[str, float | None]
    #: Paired z of (probabilities - embedding head) accuracy; None when one source is missing.
    dominance_z: float | None
    #: The family kept alone because its model dominates, or None (both kept).
    dominant: str | None
    #: Mean AP of each probability detector on planted probes, and those kept.
    probe_ap: dict[str, float]
    chosen_probs_detectors: list[str]
    #: The label model over the kept detectors (None when only one detector is kept).
    trust: Trust | None
    #: The estimated error structure the probes followed (None: uniform probes).
    error_structure: ErrorStructure | None = None
    #: True when the estimated structure says the errors are to similar classes
    #: (:data:`SIMILAR_CLASS_EXCESS`): rank-0 probes, and the probability family holds
    #: :data:`SIMILAR_CLASS_PROBS_SHARE` of the weight.
    similar_class_errors: bool = False
    #: One plain sentence saying why the weights are what they are.
    rationale: str = ""


def _canonical_order(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """A row order that depends only on the rows' contents (so probes are row-order invariant)."""
    keys = [np.round(probs[:, j], 12) for j in range(probs.shape[1] - 1, -1, -1)]
    return np.lexsort([*keys, labels])


def _other_classes_by_probability(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """int64 (N, K-1): per row, the classes other than its label, most probable first (ties by
    class index, so the order depends only on the row's contents)."""
    n, k = probs.shape
    order = np.argsort(-probs, axis=1, kind="stable")
    keep = order != labels[:, None]
    out = order[keep].reshape(n, k - 1)
    return out.astype(np.int64)


def plant_probes(
    labels: np.ndarray,
    probs: np.ndarray,
    noise_matrix: np.ndarray | None,
    *,
    seed: int,
    structure: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Flip a random share of the labels the way the data's own errors look.

    With ``structure`` (float (K-1,), :func:`estimate_error_structure`): a probed row gets the
    class at rank r among the classes other than its label, ordered by the row's own probabilities,
    r drawn from ``structure`` (rank 0 = the class the model finds most likely after the label).
    Else with ``noise_matrix``: a row labelled j gets class i with probability proportional to the
    estimated P(given = i | true = j) (confident learning's noise matrix, Northcutt et al. 2021);
    else uniform over the other classes. Returns (probed labels, probe mask). Deterministic for
    ``seed`` and invariant to row order."""
    n, k = probs.shape
    rng = np.random.default_rng(seed)
    order = _canonical_order(labels, probs)
    m = int(np.clip(round(PROBE_SHARE * n), min(PROBE_MIN, n // 2), PROBE_MAX))
    picked = order[np.sort(rng.choice(n, m, replace=False))]
    out = labels.copy()
    if structure is not None and k > 1:
        share = np.asarray(structure, dtype=np.float64)
        ranks = rng.choice(k - 1, m, p=share / share.sum())
        others = _other_classes_by_probability(probs[picked], labels[picked])
        out[picked] = others[np.arange(m), ranks]
    else:
        trans = (
            np.ones((k, k)) if noise_matrix is None else np.nan_to_num(np.asarray(noise_matrix).T)
        )
        np.fill_diagonal(trans, 0.0)  # trans[j, i] ~ P(given = i | true = j), i != j
        bad = trans.sum(axis=1) <= 0
        trans[bad] = 1.0
        np.fill_diagonal(trans, 0.0)
        trans /= trans.sum(axis=1, keepdims=True)
        cum = np.cumsum(trans[labels[picked]], axis=1)
        new = (cum < rng.random(m)[:, None] * cum[:, -1:]).sum(axis=1)
        out[picked] = np.minimum(new, k - 1)
    mask = np.zeros(n, dtype=bool)
    mask[picked] = out[picked] != labels[picked]
    return out, mask


@dataclass
class ErrorStructure:
    """Where the given labels of the most confidently flagged rows sit in their own predictions."""

    #: float (K-1,): share of those rows whose given label is at rank r among the classes other
    #: than the row's most probable other class (rank 0 = the second most probable class).
    rank_share: np.ndarray
    #: How many rows the estimate rests on.
    n_rows: int
    #: Share at rank 0, and what errors to a uniformly random class would give (1 / (K - 1)).
    share_next: float
    uniform_share_next: float

    @property
    def excess_next(self) -> float:
        """(share_next - u) / (1 - u): 0 for errors to a random class, 1 when every error is to
        the class the model finds most likely after its suggestion."""
        u = self.uniform_share_next
        return (self.share_next - u) / (1.0 - u) if u < 1 else 0.0

    @property
    def similar_classes(self) -> bool:
        """Whether the errors look like errors to similar classes (:data:`SIMILAR_CLASS_EXCESS`)."""
        return self.excess_next >= SIMILAR_CLASS_EXCESS


def estimate_error_structure(
    results: Mapping[str, DetectorResult], labels: np.ndarray, probs: np.ndarray, m: int
) -> ErrorStructure | None:
    """The structure of this data's label errors, from the rows every detector in ``results``
    (the probability detectors whose choice is at stake) flags *and* ranks among its ``m`` most
    suspicious: requiring all of them keeps the model's own confusions out as far as the
    candidates can, and favours none of them. For each such row: the rank of its given label
    among the classes other than its most probable other class (the likely true class), by the
    row's probabilities. Errors to a random class spread evenly over the K - 1 ranks; errors to a
    similar class (a neighbouring intent) sit at rank 0. None when no row qualifies or K < 3."""
    n, k = probs.shape
    if k < 3 or not results:
        return None
    sel = np.ones(n, dtype=bool)
    for r in results.values():
        sel &= np.asarray(r.is_issue, dtype=bool) & _top(np.asarray(r.score), m)
    if not sel.any():
        return None
    rows = np.flatnonzero(sel)
    lab = labels[rows]
    p = probs[rows]
    masked = p.copy()
    masked[np.arange(len(rows)), lab] = -np.inf
    suggested = masked.argmax(axis=1)
    others = _other_classes_by_probability(p, suggested)  # classes other than the suggestion
    rank = np.argmax(others == lab[:, None], axis=1)
    counts = np.bincount(rank, minlength=k - 1)[: k - 1].astype(np.float64)
    share = counts / counts.sum()
    return ErrorStructure(
        rank_share=share,
        n_rows=int(len(rows)),
        share_next=float(share[0]),
        uniform_share_next=1.0 / (k - 1),
    )


def _average_precision(score: np.ndarray, truth: np.ndarray) -> float:
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(truth, score)) if truth.any() else float("nan")


def probe_ap(
    fns: Mapping[str, Callable[[np.ndarray], np.ndarray]],
    labels: np.ndarray,
    probs: np.ndarray,
    noise_matrix: np.ndarray | None,
    *,
    seed: int = 0,
    structure: np.ndarray | None = None,
) -> dict[str, float]:
    """Mean AP (probe vs untouched rows) of each ``fns[name](probed labels) -> scores`` over
    :data:`PROBE_REPEATS` probe draws. Untouched rows include the real errors, so the values are
    lower than a clean-data AP; only their order is used."""
    aps: dict[str, list[float]] = {n: [] for n in fns}
    for r in range(PROBE_REPEATS):
        probed, mask = plant_probes(labels, probs, noise_matrix, seed=seed + r, structure=structure)
        for name, fn in fns.items():
            aps[name].append(_average_precision(np.asarray(fn(probed)), mask))
    return {n: float(np.nanmean(v)) if v else float("nan") for n, v in aps.items()}


def paired_accuracy_z(labels: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """z of the paired difference in accuracy of sources a and b: probabilities (N, K), scored by
    their argmax, or predicted classes (N,)."""
    pa = a.argmax(axis=1) if a.ndim == 2 else a
    pb = b.argmax(axis=1) if b.ndim == 2 else b
    d = (pa == labels).astype(np.float64) - (pb == labels)
    sd = float(d.std(ddof=1)) if len(d) > 1 else 0.0
    if sd == 0.0:
        return 0.0 if d.mean() == 0 else float(np.sign(d.mean()) * np.inf)
    return float(d.mean() / (sd / np.sqrt(len(d))))


#: Detectors whose suggested label comes from a model on the embeddings that never saw the row
#: (kNN: the row's neighbours, never the row itself; INCV: held-out halves), in order of
#: preference. When the probabilities are given, the first that ran stands for the embedding
#: family's model in the source-quality comparison, so the scan never fits a second out-of-fold
#: head for it. kNN first: its accuracy against the given labels is the closer to the 5-fold
#: head's on the benchmark cases (bench/results/detectors_combiner.md, "Reference model").
HELDOUT_SUGGESTERS = ("knn", "incv")


def heldout_reference(results: Mapping[str, DetectorResult]) -> tuple[str, np.ndarray] | None:
    """(detector, int64 (N,) predicted classes) of the first of :data:`HELDOUT_SUGGESTERS` in
    ``results``, or None: an out-of-sample prediction of the embedding family the detectors have
    already made."""
    for name in HELDOUT_SUGGESTERS:
        if name in results:
            return name, np.asarray(results[name].suggested_label, dtype=np.int64)
    return None


def learn_combination(
    results: Mapping[str, DetectorResult],
    *,
    labels: np.ndarray,
    probs: np.ndarray,
    reference_probs: np.ndarray | None = None,
    reference_labels: np.ndarray | None = None,
    reference_name: str = "the embedding head",
    families: Mapping[str, str] | None = None,
    probe_fns: Mapping[str, Callable[[np.ndarray], np.ndarray]] | None = None,
    seed: int = 0,
) -> Combination:
    """The quality-gated combination of ``results`` (see docs/detectors.md, "Combiners").

    ``probs``: the probabilities the probability detectors read (given or out-of-fold);
    ``reference_probs``: the embedding head's out-of-fold probabilities, or ``reference_labels``
    (int (N,)): out-of-sample predicted classes of a model on the embeddings (e.g.
    :func:`heldout_reference`), named ``reference_name`` in the rationale; with neither, the
    embedding family's model is taken to be the one behind ``probs`` (no family dominates);
    ``families``: detector -> family (default: from the registry's inputs);
    ``probe_fns``: detector -> function of the labels giving its scores on ``probs`` (default: the
    registered probability-only detectors rerun on probed labels).

    1. Source quality: a family whose model is more accurate against the given labels by at least
       :data:`DOMINANCE_Z` paired standard errors, with errors beyond the estimated noise rate at
       most 1 / :data:`DOMINANCE_RATIO` of the other's, is kept alone (a much better model dominates).
    2. Among the probability detectors, the one with the highest AP on planted probes (flips that
       follow the errors' estimated structure, :data:`PROBE_DESTINATION`) and any within
       :data:`PROBE_TOLERANCE` of it represent the family; the others get no weight. When that
       structure says the errors are to similar classes (:data:`SIMILAR_CLASS_EXCESS`), the probes
       are planted at rank 0 only, no family dominates by accuracy (step 1 is skipped) and the
       probability family holds :data:`SIMILAR_CLASS_PROBS_SHARE` of the weight in step 3.
    3. The kept detectors are weighted by the Dawid–Skene label model of :func:`learn_trust`;
       when both families are kept, each family's weights are rescaled to hold half of the total
       (each family is one model: the label model would count its correlated detectors again).
    """
    if not results:
        raise ValueError("no detector results to combine")
    labels = np.asarray(labels, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float64)
    fam = dict(families) if families is not None else detector_families(results)
    p_names = [n for n in results if fam.get(n) == PROBS_FAMILY]
    o_names = [n for n in results if fam.get(n) != PROBS_FAMILY]
    acc_p = float((probs.argmax(axis=1) == labels).mean())
    acc_o: float | None = None
    z: float | None = None
    if reference_labels is None and reference_probs is not None:
        reference_labels = np.asarray(reference_probs, dtype=np.float64).argmax(axis=1)
    if reference_labels is not None and o_names:
        reference_labels = np.asarray(reference_labels, dtype=np.int64)
        acc_o = float((reference_labels == labels).mean())
        z = paired_accuracy_z(labels, probs, reference_labels)
    elif o_names:
        acc_o = acc_p
    structure: ErrorStructure | None = None
    similar = False
    if p_names and PROBE_DESTINATION == "estimated":
        structure = estimate_error_structure(
            {n: results[n] for n in p_names}, labels, probs, estimated_errors(results)
        )
        similar = structure is not None and structure.similar_classes
    dominant = None
    # With errors to similar classes accuracy against the given labels is no measure of quality:
    # a model that has learnt the systematic flips agrees with the noisy labels more, so neither
    # family dominates by it (BANKING77 train, 10 % flips to the nearest intent: the embedding
    # head agrees 0.810 with the noisy labels, the stronger given model 0.788).
    if z is not None and acc_o is not None and p_names and o_names and not similar:
        cl = results.get("confident_learning")
        noise = cl.details.get("estimated_noise_rate") if cl is not None else None
        noise = float(noise) if noise is not None and np.isfinite(noise) else 0.0
        ex_p = max(1.0 - acc_p - noise, 1e-3)
        ex_o = max(1.0 - acc_o - noise, 1e-3)
        if z >= DOMINANCE_Z and ex_o >= DOMINANCE_RATIO * ex_p:
            dominant = PROBS_FAMILY
        elif z <= -DOMINANCE_Z and ex_p >= DOMINANCE_RATIO * ex_o:
            dominant = OTHER_FAMILY

    aps: dict[str, float] = {}
    chosen: list[str] = []
    if p_names and dominant != OTHER_FAMILY:
        if len(p_names) > 1:
            fns = (
                dict(probe_fns) if probe_fns is not None else _registered_probe_fns(probs, p_names)
            )
            cl = results.get("confident_learning")
            nm = None if cl is None else cl.details.get("noise_matrix")
            nm = nm if PROBE_DESTINATION == "noise_matrix" else None
            shares = None if structure is None else structure.rank_share
            if similar and shares is not None:  # errors to similar classes: rank-0 probes
                shares = np.eye(len(shares))[0]
            aps = probe_ap(
                {n: fns[n] for n in p_names if n in fns},
                labels,
                probs,
                nm,
                seed=seed,
                structure=shares,
            )
            top = max(aps.get(n, -1.0) for n in p_names)
            chosen = [n for n in p_names if aps.get(n, -1.0) >= top - PROBE_TOLERANCE]
        else:
            chosen = list(p_names)

    if dominant == PROBS_FAMILY:
        kept = chosen
    elif dominant == OTHER_FAMILY:
        kept = o_names
    else:
        kept = o_names + chosen
    kept = kept or list(results)
    trust = learn_trust({n: results[n] for n in kept}) if len(kept) > 1 else None
    weights = {n: 0.0 for n in results}
    if trust is None:
        weights[kept[0]] = 1.0
    else:
        weights.update(trust.weights)
    balanced = dominant is None and bool(chosen) and any(weights[n] > 0 for n in o_names)
    if balanced:
        # Each family is one source (one model behind it): the label model assumes conditionally
        # independent raters and counts the correlated embedding detectors several times over,
        # so each family's label-model weights are rescaled to hold half of the total.
        # With errors to similar classes the probability family holds SIMILAR_CLASS_PROBS_SHARE.
        p_share = SIMILAR_CLASS_PROBS_SHARE if similar else 0.5
        for group, share in ((chosen, p_share), (o_names, 1.0 - p_share)):
            total = sum(weights[n] for n in group)
            for n in group:
                weights[n] = share * weights[n] / total if total > 0 else 0.0
    if dominant == PROBS_FAMILY:
        why = (
            f"the probabilities (accuracy {acc_p:.3f} against the given labels) are clearly better "
            f"than {reference_name} ({acc_o:.3f}, paired z = {z:.1f}): {' and '.join(chosen)} alone"
        )
    elif dominant == OTHER_FAMILY:
        why = (
            f"{reference_name} (accuracy {acc_o:.3f}) is clearly better than the probabilities "
            f"({acc_p:.3f}, paired z = {z:.1f}): the label model over the embedding detectors"
        )
    else:
        parts = (["the embedding detectors"] if o_names else []) + (
            [f"{' and '.join(chosen)} (best of the probability detectors on planted probes)"]
            if chosen
            else []
        )
        why = "label model over " + " and ".join(parts)
        if balanced and similar:
            why += (
                f", the probability detectors holding {SIMILAR_CLASS_PROBS_SHARE:.0%} of the "
                "weight (errors to similar classes)"
            )
        elif balanced:
            why += ", each family holding half of the weight"
    if structure is not None:
        why += (
            f"; {structure.share_next:.0%} of {structure.n_rows} confidently flagged rows have the "
            f"given label as the next most likely class ({structure.uniform_share_next:.0%} for "
            "errors to a random class)"
        )
        why += (
            ": errors to similar classes, probes planted there"
            if similar
            else ": probes follow that estimated structure"
        )
    return Combination(
        weights=weights,
        families={n: fam.get(n, OTHER_FAMILY) for n in results},
        source_accuracy={PROBS_FAMILY: acc_p, OTHER_FAMILY: acc_o},
        dominance_z=z,
        dominant=dominant,
        probe_ap=aps,
        chosen_probs_detectors=chosen,
        trust=trust,
        error_structure=structure,
        similar_class_errors=similar,
        rationale=why,
    )


def detector_families(results: Mapping[str, DetectorResult]) -> dict[str, str]:
    """detector -> family from the registry: :data:`PROBS_FAMILY` when it reads only the
    probabilities, else :data:`OTHER_FAMILY` (unregistered names count as other)."""
    from labelaudit.detectors import registry

    specs = registry.all_detectors()
    return {
        n: PROBS_FAMILY
        if n in specs and tuple(specs[n].requires) == ("pred_probs",)
        else OTHER_FAMILY
        for n in results
    }


def _registered_probe_fns(
    probs: np.ndarray, names: list[str]
) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    from labelaudit.detectors import registry
    from labelaudit.detectors.base import DetectionContext

    specs = registry.all_detectors()

    def make(name: str) -> Callable[[np.ndarray], np.ndarray]:
        def run(lab: np.ndarray) -> np.ndarray:
            ctx = DetectionContext(labels=lab, n_classes=probs.shape[1], pred_probs=probs)
            return specs[name].fn(ctx).score

        return run

    return {n: make(n) for n in names if n in specs}


def quality_score(results: Mapping[str, DetectorResult], comb: Combination) -> np.ndarray:
    """The combined score under ``comb``'s weights, float64 (N,) in [0, 1]."""
    return combined_score(results, Trust(comb.weights, {}, {}, 0, np.zeros(0)))


def quality_flags(results: Mapping[str, DetectorResult], comb: Combination) -> np.ndarray:
    """Rows flagged by detectors holding at least half of ``comb``'s weight, bool (N,)."""
    return trusted_flags(results, Trust(comb.weights, {}, {}, 0, np.zeros(0)))


#: Documented rule for the "needs review" flag's expected precision (every combiner).
FLAG_PRECISION_RULE = (
    "mean over the flagged rows of P(given label is wrong | the row's probabilities and given "
    "label) under class-conditional noise with confident learning's estimated noise matrix; "
    "cannot be estimated without that matrix"
)


def error_probability(
    labels: np.ndarray, probs: np.ndarray, noise_matrix: np.ndarray | None
) -> np.ndarray | None:
    """Per row, P(the given label is wrong) under class-conditional label noise, float64 (N,), or
    None when it cannot be estimated (no noise matrix, or one with non-finite entries).

    ``noise_matrix[i, j]`` = P(given = i | true = j) (confident learning's estimate, cleanlab's
    convention; Northcutt, Jiang & Chuang 2021) and the probabilities are taken as the true
    class's posterior given the row: by Bayes, P(true = y | x, given = y) = T[y, y] p_y /
    sum_j T[y, j] p_j. Measured calibrated when the probabilities are the clean-label posterior
    and the matrix is exact, and within about 0.1 of the measured precision on most benchmark
    cases (bench/results/detectors_combiner.md, "Expected precision").
    """
    if noise_matrix is None:
        return None
    t = np.asarray(noise_matrix, dtype=np.float64)
    p = np.asarray(probs, dtype=np.float64)
    if t.shape != (p.shape[1], p.shape[1]) or not np.isfinite(t).all():
        return None
    y = np.asarray(labels, dtype=np.int64)
    rows = np.arange(len(y))
    same = t[y, y] * p[rows, y]
    total = np.einsum("ij,ij->i", t[y, :], p)
    # a row whose given label the matrix and the model both call impossible: wrong for sure
    q = np.where(total > 0, 1.0 - same / np.where(total > 0, total, 1.0), 1.0)
    return np.clip(q, 0.0, 1.0)


def flag_precision(
    flags: np.ndarray, labels: np.ndarray, probs: np.ndarray, noise_matrix: np.ndarray | None
) -> float | None:
    """Expected precision of ``flags`` (:data:`FLAG_PRECISION_RULE`): the mean of
    :func:`error_probability` over the flagged rows; None when nothing is flagged or it cannot be
    estimated."""
    flags = np.asarray(flags, dtype=bool)
    q = error_probability(labels, probs, noise_matrix)
    return None if q is None or not flags.any() else float(q[flags].mean())


#: Documented rule for the range the scan reports for the flag's precision.
FLAG_PRECISION_RANGE_RULE = (
    "between model estimates that err in opposite directions: the noise-matrix posterior "
    "(too low when the model absorbed the errors it was fitted on), the label model's posterior "
    "over the detectors' votes (too high when the detectors share a model and agree on hard rows), "
    "and the noise-matrix posterior scaled by the posterior's own noise rate over confident "
    "learning's (low when the noise matrix counts the model's confusions between similar classes "
    "as label noise); a single value when only the first can be computed, none when neither can"
)


def rate_agreement(
    labels: np.ndarray, probs: np.ndarray, noise_matrix: np.ndarray | None, noise_rate: float | None
) -> float | None:
    """min(1, mean error probability over every row / confident learning's noise rate), or None
    when either is unknown.

    Both are estimates of the same noise rate from the same matrix and probabilities: the
    posterior's mean (:func:`error_probability`) and confident learning's count of confidently
    off-diagonal rows. Where the count is the larger, the matrix holds off-diagonal mass that the
    probabilities do not back: on the BANKING77 cases with strong given probabilities and flips to
    the nearest intent, confident learning's rate was 1.3-1.5x the planted plus natural-candidate
    rate (0.170 vs 0.116 at 10 % flips) while the posterior's mean stayed near it (0.129), and the
    noise-matrix estimate of the flag's precision was 0.03-0.12 too high
    (bench/results/detectors_combiner.md, "Expected precision")."""
    if noise_rate is None or not np.isfinite(noise_rate) or noise_rate <= 0:
        return None
    q = error_probability(labels, probs, noise_matrix)
    return None if q is None else float(min(1.0, q.mean() / float(noise_rate)))


def flag_precision_range(
    flags: np.ndarray,
    labels: np.ndarray,
    probs: np.ndarray,
    noise_matrix: np.ndarray | None,
    label_model_estimate: float | None,
    noise_rate: float | None = None,
) -> tuple[float, float] | None:
    """(low, high) for the precision of ``flags`` (:data:`FLAG_PRECISION_RANGE_RULE`).

    The ends are the lowest and highest of :func:`flag_precision`, ``label_model_estimate`` (the
    label model's mean posterior over the flagged rows, :func:`expected_precision`) and, with
    ``noise_rate`` (confident learning's estimated noise rate), :func:`flag_precision` times
    :func:`rate_agreement`. With only the first, low == high; None when it cannot be estimated
    (nothing flagged, no usable noise matrix). On the benchmark cases the range holds the measured
    precision far more often than any end alone (bench/results/detectors_combiner.md, "Expected
    precision").
    """
    point = flag_precision(flags, labels, probs, noise_matrix)
    if point is None:
        return None
    ends = [point]
    ratio = rate_agreement(labels, probs, noise_matrix, noise_rate)
    if ratio is not None:
        ends.append(point * ratio)
    if label_model_estimate is not None and np.isfinite(label_model_estimate):
        ends.append(float(np.clip(label_model_estimate, 0.0, 1.0)))
    return (min(ends), max(ends))


def quality_expected_precision(flags: np.ndarray, comb: Combination) -> float | None:
    """The label model's estimate of the flag's precision (None with a single kept detector).
    Measured up to 0.39 too high on the benchmark cases; the scan reports :func:`flag_precision`."""
    return None if comb.trust is None else expected_precision(flags, comb.trust)
