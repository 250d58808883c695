"""Which truth-inference method the ratings support: held-out likelihood of the ratings.

Each candidate (majority vote, Dawid–Skene, MACE) is fitted on the ratings with a seeded share held
out (at most one per item, only from items and raters that keep other ratings), then scored by the
mean log-probability it gives the held-out ratings: sum over t of P(item's truth = t | the other
ratings) * P(this rater says the held-out label | t). Majority vote's rater model is the one it
implies: right with the rater's (smoothed) agreement with the vote, else any other class alike.
The method with the highest held-out log-likelihood is chosen; ties go to the simpler method.
Nothing but the ratings is used.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from labelaudit.agreement.methods import TruthInputs, register_truth_method, run_truth_method
from labelaudit.agreement.ratings import Ratings
from labelaudit.agreement.truth import TruthResult

#: Candidates, simplest first (ties go to the simpler one).
CANDIDATES = ("mv", "ds", "mace")
#: Share of the ratings held out.
HELD_OUT_SHARE = 0.2


@dataclass
class MethodChoice:
    method: str
    #: Mean held-out log-likelihood per rating, per candidate.
    scores: dict[str, float]
    n_held_out: int

    @property
    def reason(self) -> str:
        parts = ", ".join(f"{m} {v:.4f}" for m, v in self.scores.items())
        return (
            f"chosen by held-out likelihood of the ratings ({self.n_held_out:,} ratings held out; "
            f"mean log-likelihood: {parts})"
        )


def _split(ratings: Ratings, seed: int) -> tuple[Ratings, np.ndarray]:
    rng = np.random.default_rng(seed)
    order = rng.permutation(ratings.n_ratings)
    per_item = ratings.n_per_item.copy()
    per_rater = ratings.n_per_annotator.copy()
    held: list[int] = []
    taken = np.zeros(ratings.n_items, dtype=bool)
    budget = int(HELD_OUT_SHARE * ratings.n_ratings)
    for m in order:
        if len(held) >= budget:
            break
        i, j = ratings.item[m], ratings.annotator[m]
        if taken[i] or per_item[i] < 2 or per_rater[j] < 2:
            continue
        held.append(int(m))
        taken[i] = True
        per_item[i] -= 1
        per_rater[j] -= 1
    out = np.zeros(ratings.n_ratings, dtype=bool)
    out[held] = True
    keep = ~out
    train = Ratings(
        item=ratings.item[keep],
        annotator=ratings.annotator[keep],
        label=ratings.label[keep],
        item_ids=ratings.item_ids,
        annotator_ids=ratings.annotator_ids,
        classes=list(ratings.classes),
    )
    return train, np.flatnonzero(out)


def _says(method: str, train: Ratings, truth: TruthResult) -> np.ndarray:
    """P(rater j says a | truth t), float64 (J, K, K)."""
    k = train.k
    if method == "ds" and truth.confusion is not None:
        return np.asarray(truth.confusion)
    if method == "mace" and truth.competence is not None:
        theta = truth.competence[:, None, None]
        xi = np.asarray(truth.details["spamming"])[:, None, :]
        return theta * np.eye(k)[None] + (1 - theta) * np.broadcast_to(xi, (len(theta), k, k))
    hits = (truth.consensus[train.item] == train.label).astype(float)
    n = np.bincount(train.annotator, minlength=train.n_annotators).astype(float)
    acc = (np.bincount(train.annotator, weights=hits, minlength=train.n_annotators) + 1) / (n + 2)
    off = (1 - acc) / max(k - 1, 1)
    return off[:, None, None] * (1 - np.eye(k))[None] + acc[:, None, None] * np.eye(k)[None]


def choose_method(ratings: Ratings, *, seed: int = 0) -> MethodChoice:
    """The candidate with the best held-out log-likelihood (see the module docstring)."""
    from labelaudit.agreement import infer_truth

    train, held = _split(ratings, seed)
    scores: dict[str, float] = {}
    if len(held) == 0:
        return MethodChoice("mv", {m: float("nan") for m in CANDIDATES}, 0)
    for method in CANDIDATES:
        truth = infer_truth(train, method=method, seed=seed)  # type: ignore[arg-type]
        says = _says(method, train, truth)
        i, j, a = ratings.item[held], ratings.annotator[held], ratings.label[held]
        p = (truth.posterior[i] * says[j, :, a]).sum(axis=1)
        scores[method] = float(np.mean(np.log(np.clip(p, 1e-6, 1.0))))
    best = max(CANDIDATES, key=lambda m: (round(scores[m], 4), -CANDIDATES.index(m)))
    return MethodChoice(best, scores, len(held))


@register_truth_method("auto", title="chosen from the ratings (held-out likelihood)", order=0)
def _auto(ratings: Ratings, inputs: TruthInputs) -> TruthResult:
    """The candidate the held-out ratings support best, run on all the ratings."""
    choice = choose_method(ratings, seed=inputs.seed)
    res = run_truth_method(choice.method, ratings, inputs)
    res.details["chosen_by"] = choice.reason
    res.details["held_out_log_likelihood"] = choice.scores
    return res
