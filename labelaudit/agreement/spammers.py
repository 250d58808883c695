"""Which raters are likely spammers: a ranked, capped list with its evidence.

A rater is a **likely spammer** when their labels agree with the consensus no better than chance:
Cohen's kappa between their labels and the other raters' consensus on the items they rated (see
:func:`kappa_with_others`) is below :data:`MAX_KAPPA`. Chance accounts for their own label mix, so a
rater who says the majority class of a skewed set every time (88 % raw agreement, kappa 0) is
caught, and careful raters of a skewed set are not. With a method that models competence (MACE,
Dawid–Skene, CROWDLAB) the model must agree: competence below :data:`MAX_COMPETENCE` too, over at
least :data:`MIN_LABELS` ratings; without one (majority vote) kappa alone decides, over at least
:data:`MIN_LABELS_KAPPA_ONLY`.
Competence alone does not decide: MACE with a uniform truth prior gave a low competence to raters
whose majority-class ratings it could explain as spamming towards that class, which on a skewed
crowd called most raters spammers; and kappa alone is noisy on a skewed set with few ratings (a
careful rater who saw one minority item and missed it has kappa 0).

At most :data:`MAX_SHARE` of the raters with enough ratings are flagged (the lowest kappa first);
when more fall under the rule the crowd as a whole agrees little, which the report says instead.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from labelaudit.agreement.ratings import Ratings

#: Fewer ratings than this are too few to call anyone a spammer.
MIN_LABELS = 10
#: Without a model's competence, kappa alone needs more ratings.
MIN_LABELS_KAPPA_ONLY = 20
#: A model's competence must be below this too (when the method models raters).
MAX_COMPETENCE = 0.3
#: Agreement with the consensus beyond chance (Cohen's kappa) below this = no better than chance.
MAX_KAPPA = 0.2
#: Never flag more than this share of the raters that have enough ratings.
MAX_SHARE = 0.25
#: Rule, as shown on the Annotators page and by ``labelaudit agreement``.
RULE = (
    f"Cohen's kappa with the consensus below {MAX_KAPPA} (no better than chance) and the model's "
    f"competence below {MAX_COMPETENCE}, over at least {MIN_LABELS} ratings (kappa alone over at "
    f"least {MIN_LABELS_KAPPA_ONLY} when the method has no competence); at most {MAX_SHARE:.0%} "
    "of the raters with enough ratings, lowest kappa first"
)


def kappa_with_others(ratings: Ratings) -> np.ndarray:
    """Cohen's kappa between each rater's labels and a consensus they did not vote in, float64 (J,).

    For each rating the reference is the plain majority of the *other* ratings of the item; where
    those tie, or there are none, the rating is left out (a consensus the rater voted in would hand
    them the tie). Leaving the rater's
    own vote out matters with few ratings per item: with 3, a rater who answers at random still
    "agrees" with a consensus that includes their vote on two thirds of the items. NaN when chance
    agreement is 1 (the rater and the reference each used one class throughout) or nothing is left.
    """
    k, j = ratings.k, ratings.n_annotators
    others = ratings.counts[ratings.item].astype(np.float64)  # (M, K) votes on the rating's item
    others[np.arange(ratings.n_ratings), ratings.label] -= 1.0
    top = others.max(axis=1, keepdims=True)
    tied = (others == top).sum(axis=1) > 1
    reference = others.argmax(axis=1)
    keep = (top[:, 0] > 0) & ~tied
    table = np.zeros((j, k, k))
    np.add.at(
        table,
        (ratings.annotator[keep], reference[keep], ratings.label[keep]),
        1.0,
    )
    n = table.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        observed = np.trace(table, axis1=1, axis2=2) / n
        chance = (table.sum(axis=2) * table.sum(axis=1)).sum(axis=1) / n**2
        kappa = (observed - chance) / (1.0 - chance)
    kappa[np.isclose(chance, 1.0) | (n == 0)] = np.nan
    return kappa


def spammer_table(
    ratings: Ratings, consensus: np.ndarray, competence: np.ndarray | None = None
) -> pd.DataFrame:
    """Per rater (J rows, annotator order): ``kappa_with_consensus``, ``likely_spammer`` (the rule in
    :data:`RULE`), ``spammer_rank`` (1 = strongest evidence, 0 = not flagged) and
    ``spammer_evidence`` (one plain-text line, "" when not flagged)."""
    kappa = kappa_with_others(ratings)
    n = ratings.n_per_annotator
    eligible, under = _rule(ratings, kappa, competence)
    cap = int(np.floor(MAX_SHARE * int(eligible.sum())))
    order = np.lexsort((-n, np.nan_to_num(kappa, nan=1.0)))  # lowest kappa, then most ratings
    flagged = [int(i) for i in order if under[i]][: max(cap, 0)]
    rank = np.zeros(ratings.n_annotators, dtype=np.int64)
    rank[flagged] = np.arange(1, len(flagged) + 1)
    hit = (consensus[ratings.item] == ratings.label).astype(float)
    raw = np.bincount(ratings.annotator, weights=hit, minlength=ratings.n_annotators) / np.maximum(
        n, 1
    )
    evidence = [""] * ratings.n_annotators
    for i in flagged:
        comp = "" if competence is None else f"; model competence {competence[i]:.2f}"
        evidence[i] = (
            f"agrees with the consensus on {raw[i]:.0%} of {int(n[i])} ratings, "
            f"kappa with the other raters {kappa[i]:.2f} (chance level 0){comp}"
        )
    return pd.DataFrame(
        {
            "kappa_with_consensus": kappa,
            "likely_spammer": rank > 0,
            "spammer_rank": rank,
            "spammer_evidence": evidence,
        }
    )


def _rule(
    ratings: Ratings, kappa: np.ndarray, competence: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """(eligible, meets the rule), bool (J,) each."""
    n = ratings.n_per_annotator
    chance_level = np.nan_to_num(kappa, nan=1.0) < MAX_KAPPA
    if competence is None:
        eligible = n >= MIN_LABELS_KAPPA_ONLY
        return eligible, eligible & chance_level
    eligible = n >= MIN_LABELS
    return eligible, eligible & chance_level & (np.asarray(competence) < MAX_COMPETENCE)


def spammer_note(
    table: pd.DataFrame, ratings: Ratings, competence: np.ndarray | None = None
) -> str | None:
    """A line for the report when the cap held back raters that meet the rule, else None."""
    kappa = table["kappa_with_consensus"].to_numpy()
    eligible, rule = _rule(ratings, kappa, competence)
    under = int(rule.sum())
    shown = int(table["likely_spammer"].sum())
    if under > shown:
        return (
            f"{under} of {int(eligible.sum())} raters with enough ratings agree with the consensus "
            f"no better than chance; only the {shown} lowest are flagged (cap {MAX_SHARE:.0%}): the crowd "
            "as a whole agrees little, so check the task and the consensus before trusting any rater"
        )
    return None
