"""Inter-rater agreement: raw agreement, Cohen's, Fleiss', Randolph's kappa, Krippendorff's alpha.

Every statistic is a :class:`Statistic`: a value, or ``None`` with the reason it is undefined (one
class only, expected agreement 1, no overlap). Nothing here returns a silent 0 for "cannot say".

References: Cohen 1960; Fleiss 1971, "Measuring nominal scale agreement among many raters";
Randolph 2005, "Free-marginal multirater kappa"; Krippendorff 2011, "Computing Krippendorff's alpha-reliability".
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from labelaudit.agreement.ratings import Ratings

#: Cohen's kappa is only reported for annotator pairs that rated at least this many items in common.
MIN_PAIR_OVERLAP = 10


@dataclass(frozen=True)
class Statistic:
    """One agreement figure. ``value`` is None when undefined, and ``reason`` says why."""

    name: str
    value: float | None
    n: int = 0  # items (or pairs) it was computed on
    reason: str = ""

    @property
    def defined(self) -> bool:
        return self.value is not None

    def __str__(self) -> str:
        if self.value is None:
            return f"{self.name}: undefined ({self.reason})"
        return f"{self.name}: {self.value:.4f} (n={self.n:,})"


def _pair_terms(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Agreeing ordered pairs and all ordered pairs of ratings per item, (I,) each."""
    n = counts.sum(axis=1)
    return (counts * (counts - 1)).sum(axis=1), n * (n - 1)


def raw_agreement(ratings: Ratings) -> tuple[Statistic, Statistic]:
    """Observed agreement between two ratings of the same item, in [0, 1].

    Returns ``(per_item, per_pair)``: ``per_item`` averages each item's share of agreeing rating pairs
    with every item weighted equally (Fleiss' P-bar); ``per_pair`` pools all pairs, so items with
    more raters weigh more (an item with n raters carries n(n-1)/2 pairs). Items with one rating
    carry no pair and are left out.

    Example: two items rated (a, a, b) and (a, a): per_item = (1/3 + 1) / 2 = 0.667, per_pair = 2/4 = 0.5.
    """
    agree, pairs = _pair_terms(ratings.counts)
    used = pairs > 0
    if not used.any():
        why = "no item has two or more ratings"
        return Statistic("raw agreement (per item)", None, 0, why), Statistic(
            "raw agreement (per pair)", None, 0, why
        )
    per_item = float(np.mean(agree[used] / pairs[used]))
    per_pair = float(agree.sum() / pairs.sum())
    n = int(used.sum())
    return Statistic("raw agreement (per item)", per_item, n), Statistic(
        "raw agreement (per pair)", per_pair, n
    )


def item_agreement(ratings: Ratings) -> np.ndarray:
    """Share of agreeing rating pairs per item, float64 (I,) in [0, 1]; NaN for items with one rating.

    Example: an item rated (a, a, b) has 2 agreeing ordered pairs of 6, so 1/3.
    """
    agree, pairs = _pair_terms(ratings.counts)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(pairs > 0, agree / np.maximum(pairs, 1), np.nan)


def fleiss_kappa(ratings: Ratings) -> Statistic:
    """Fleiss' kappa (Fleiss 1971); defined only when every item has the same number n >= 2 of ratings.

    kappa = (P-bar - P_e) / (1 - P_e) with P_e the sum of squared overall class shares.
    Example: the 10 items x 14 raters x 5 classes table of Fleiss (1971, via Wikipedia) gives 0.2099.
    """
    counts = ratings.counts
    n = counts.sum(axis=1)
    if len(n) == 0:
        return Statistic("Fleiss' kappa", None, 0, "no ratings")
    if n.min() != n.max():
        return Statistic(
            "Fleiss' kappa",
            None,
            len(n),
            f"items have different numbers of ratings ({int(n.min())} to {int(n.max())})",
        )
    if n[0] < 2:
        return Statistic("Fleiss' kappa", None, len(n), "every item has a single rating")
    p_bar = float(np.mean((counts * (counts - 1)).sum(axis=1) / (n * (n - 1))))
    shares = counts.sum(axis=0) / counts.sum()
    p_e = float((shares**2).sum())
    if np.isclose(p_e, 1.0):
        return Statistic(
            "Fleiss' kappa", None, len(n), "expected agreement is 1 (only one class was used)"
        )
    return Statistic("Fleiss' kappa", (p_bar - p_e) / (1 - p_e), len(n))


def randolph_kappa(ratings: Ratings) -> Statistic:
    """Randolph's free-marginal multirater kappa (Randolph 2005): (P-bar - 1/K) / (1 - 1/K).

    P-bar is the per-item raw agreement over items with at least two ratings, so unequal numbers of
    ratings are allowed. Needs K >= 2 classes. Example: Fleiss' 10 x 14 table gives 0.2225.
    """
    if ratings.k < 2:
        return Statistic("Randolph's kappa", None, 0, "fewer than two classes")
    per_item, _ = raw_agreement(ratings)
    if per_item.value is None:
        return Statistic("Randolph's kappa", None, 0, per_item.reason)
    chance = 1.0 / ratings.k
    return Statistic("Randolph's kappa", (per_item.value - chance) / (1 - chance), per_item.n)


def krippendorff_alpha(ratings: Ratings) -> Statistic:
    """Krippendorff's alpha, nominal, with missing ratings (the ``krippendorff`` package on value counts).

    Example: Krippendorff's (2011) 4 coders x 12 units reliability example gives 0.7434.
    """
    import krippendorff

    counts = ratings.counts
    pairable = counts.sum(axis=1) >= 2
    if not pairable.any():
        return Statistic("Krippendorff's alpha", None, 0, "no item has two or more ratings")
    used = counts[pairable]
    if (used.sum(axis=0) > 0).sum() < 2:
        return Statistic(
            "Krippendorff's alpha",
            None,
            int(pairable.sum()),
            "only one class among pairable ratings (expected disagreement is 0)",
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = float(krippendorff.alpha(value_counts=used, level_of_measurement="nominal"))
    if not np.isfinite(value):
        return Statistic(
            "Krippendorff's alpha", None, int(pairable.sum()), "expected disagreement is 0"
        )
    return Statistic("Krippendorff's alpha", value, int(pairable.sum()))


def cohen_kappa_pairs(ratings: Ratings, *, min_overlap: int = MIN_PAIR_OVERLAP) -> pd.DataFrame:
    """Cohen's kappa for every annotator pair that rated at least one item in common.

    Returns one row per pair with overlap >= 1: ``annotator_a``, ``annotator_b``, ``overlap`` (items
    both rated), ``agreement`` (raw, in [0, 1]), ``kappa`` (NaN when the overlap is below
    ``min_overlap`` or kappa is undefined) and ``reason`` ("" when defined). When an annotator rated an
    item several times, their first rating is used.

    All pairs at once with sparse products (scikit-learn's ``cohen_kappa_score`` one pair at a time
    took seconds for a few thousand pairs, see bench/results/agreement.md); the tests check every
    pair against it.

    Example:
        >>> cohen_kappa_pairs(ratings).sort_values("kappa").head(3)      # doctest: +SKIP
    """
    from scipy import sparse

    first = pd.DataFrame(
        {"i": ratings.item, "j": ratings.annotator, "l": ratings.label}
    ).drop_duplicates(["i", "j"])
    i, j, lab = (first[c].to_numpy() for c in ("i", "j", "l"))
    n_items, n_ann, k = ratings.n_items, ratings.n_annotators, ratings.k
    ones = np.ones(len(i))
    rated = sparse.csr_matrix((ones, (i, j)), shape=(n_items, n_ann))
    said = sparse.csr_matrix(
        (ones, (i * k + lab, j)), shape=(n_items * k, n_ann)
    )  # (item, class) x annotator
    overlap = (rated.T @ rated).toarray()
    agree = (said.T @ said).toarray()
    # marg[c][a, b]: items both rated where a said c. Expected agreement = sum_c marg[c] * marg[c].T / n^2.
    expected = np.zeros((n_ann, n_ann))
    for c in range(k):
        in_class = sparse.csr_matrix(
            (ones[lab == c], (i[lab == c], j[lab == c])), shape=(n_items, n_ann)
        )
        marg = (in_class.T @ rated).toarray()
        expected += marg * marg.T
    ja, jb = np.nonzero(np.triu(overlap, k=1) > 0)
    n = overlap[ja, jb]
    p_o = agree[ja, jb] / n
    p_e = expected[ja, jb] / n**2
    enough = n >= min_overlap
    degenerate = np.isclose(p_e, 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        kappa = np.where(
            enough & ~degenerate, (p_o - p_e) / np.where(degenerate, 1.0, 1 - p_e), np.nan
        )
    reason = np.where(
        ~enough,
        [f"only {int(x)} item(s) in common (need {min_overlap})" for x in n],
        np.where(degenerate, "expected agreement is 1 (both used a single class)", ""),
    )
    return pd.DataFrame(
        {
            "annotator_a": ratings.annotator_ids[ja],
            "annotator_b": ratings.annotator_ids[jb],
            "overlap": n.astype(np.int64),
            "agreement": p_o,
            "kappa": kappa,
            "reason": reason,
        }
    )


def class_agreement(ratings: Ratings) -> pd.DataFrame:
    """Specific agreement per class (Fleiss 1971's p_j-conditional form), in [0, 1].

    For class k: the share of rating pairs that involve a k rating in which the other rating is also k,
    sum_i n_ik (n_ik - 1) / sum_i n_ik (n_i - 1). Low values mark classes raters disagree about.
    Columns ``label``, ``n_ratings``, ``agreement`` (NaN when the class was never used on an item with
    two or more ratings) and ``reason``.

    Example: items rated (a, a, b), (a, a, a), (b, b) give a: 8/10 = 0.8 and b: 2/4 = 0.5.
    """
    counts = ratings.counts
    n = counts.sum(axis=1, keepdims=True)
    num = (counts * (counts - 1)).sum(axis=0)
    den = (counts * (n - 1)).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        value = np.where(den > 0, num / np.maximum(den, 1), np.nan)
    reason = np.where(den > 0, "", "never used on an item with two or more ratings")
    return pd.DataFrame(
        {
            "label": ratings.classes,
            "n_ratings": counts.sum(axis=0).astype(np.int64),
            "agreement": value,
            "reason": reason,
        }
    )


def annotator_agreement(ratings: Ratings, consensus: np.ndarray) -> pd.DataFrame:
    """Per annotator: agreement with the other raters and with a consensus labelling.

    ``consensus``: int64 (I,) class index per item. Columns ``annotator_id``, ``n_labels``,
    ``agreement`` (mean over their ratings of the share of the *other* ratings of the item that are
    the same class; NaN when none of their items has another rating) and ``agreement_with_consensus``
    (share of their ratings equal to the consensus, in [0, 1]).

    Example:
        >>> annotator_agreement(ratings, majority_vote(ratings).consensus)   # doctest: +SKIP
    """
    counts = ratings.counts
    same_others = counts[ratings.item, ratings.label] - 1  # the rating itself is not another rater
    others = ratings.n_per_item[ratings.item] - 1
    j = ratings.annotator
    has = others > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(has, same_others / np.maximum(others, 1), 0.0)
        total = np.bincount(j, weights=share, minlength=ratings.n_annotators)
        n_has = np.bincount(j, weights=has.astype(float), minlength=ratings.n_annotators)
        agreement = np.where(n_has > 0, total / np.maximum(n_has, 1), np.nan)
    hit = (consensus[ratings.item] == ratings.label).astype(float)
    with_consensus = np.bincount(j, weights=hit, minlength=ratings.n_annotators) / np.maximum(
        ratings.n_per_annotator, 1
    )
    return pd.DataFrame(
        {
            "annotator_id": ratings.annotator_ids,
            "n_labels": ratings.n_per_annotator,
            "agreement": agreement,
            "agreement_with_consensus": with_consensus,
        }
    )


def annotator_confusion(ratings: Ratings, reference: np.ndarray) -> np.ndarray:
    """Counts of (reference class, annotator's class) per annotator, int64 (J, K, K).

    ``reference``: int64 (I,) class per item (usually the consensus); row = reference, column = given.
    """
    out = np.zeros((ratings.n_annotators, ratings.k, ratings.k), dtype=np.int64)
    np.add.at(out, (ratings.annotator, reference[ratings.item], ratings.label), 1)
    return out


def agreement_statistics(ratings: Ratings) -> list[Statistic]:
    """All whole-dataset statistics, in the order the CLI prints them."""
    per_item, per_pair = raw_agreement(ratings)
    return [
        per_item,
        per_pair,
        fleiss_kappa(ratings),
        randolph_kappa(ratings),
        krippendorff_alpha(ratings),
    ]
