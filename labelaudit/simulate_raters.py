"""Simulated multi-rater labels for a labelled dataset — for demos and tests, never for conclusions.

The generator is documented so that its output can be read for what it is:

- ``n_items`` items are drawn without replacement (seeded) from the rows given; each item's *true*
  class is taken to be its given label.
- A pool of ``n_raters`` honest raters has accuracies spread evenly between ``accuracy_range``
  (e.g. 0.95 … 0.65). Items have a difficulty d ~ Beta(1, 4); a rater with accuracy a is right on an
  item with probability a * (1 - d / 2), so hard items gather disagreement from everyone.
- When an honest rater is wrong they pick a *semantically close* class: class closeness is the
  cosine similarity between class centroids of TF-IDF vectors of the texts (no model needed), and
  the wrong class is drawn from a softmax of closeness / ``temperature`` over the other classes.
- ``n_spammers`` spammers: the first answers uniformly at random; the second (if any) answers
  its favourite class 70 % of the time and a random class otherwise.
- Each item gets between ``raters_per_item[0]`` and ``raters_per_item[1]`` distinct raters drawn
  from the whole pool (spammers included), so raters overlap pairwise.

Every annotator id starts with :data:`SIMULATED_PREFIX` ("sim_") so the app can say the labels are
simulated.

Example:
    >>> df = simulate_ratings(texts, labels, classes, n_items=100, seed=0)     # doctest: +SKIP
    >>> df.columns.tolist()                                                    # doctest: +SKIP
    ['item_id', 'annotator_id', 'label']
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

#: Every simulated annotator id starts with this.
SIMULATED_PREFIX = "sim_"


@dataclass(frozen=True)
class RaterProfile:
    annotator_id: str
    kind: str  # "honest", "random spammer" or "lazy spammer"
    accuracy: float  # for honest raters: accuracy on an item of difficulty 0; NaN for spammers


def is_simulated(annotator_ids: list[str] | np.ndarray | pd.Series) -> bool:
    """True when every annotator id carries the simulated prefix."""
    ids = [str(a) for a in annotator_ids]
    return bool(ids) and all(a.startswith(SIMULATED_PREFIX) for a in ids)


def class_closeness(texts: list[str], labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Cosine similarity of TF-IDF class centroids, float64 (K, K) with the diagonal set to -inf."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.preprocessing import normalize

    tfidf = TfidfVectorizer(sublinear_tf=True, min_df=2, ngram_range=(1, 2)).fit_transform(texts)
    onehot = np.zeros((len(labels), n_classes))
    onehot[np.arange(len(labels)), labels] = 1.0
    centroids = normalize(np.asarray((tfidf.T @ onehot).T))
    sim = centroids @ centroids.T
    np.fill_diagonal(sim, -np.inf)
    return sim


def simulate_ratings(
    texts: list[str],
    labels: np.ndarray,
    classes: list[str],
    *,
    ids: list[str] | None = None,
    n_items: int = 1500,
    n_raters: int = 10,
    n_spammers: int = 2,
    raters_per_item: tuple[int, int] = (3, 5),
    accuracy_range: tuple[float, float] = (0.95, 0.65),
    temperature: float = 0.05,
    seed: int = 0,
) -> tuple[pd.DataFrame, list[RaterProfile]]:
    """Simulated ratings in long format for ``n_items`` of the rows.

    ``texts`` (N,), ``labels`` int (N,) class indices, ``classes`` (K,) names, ``ids`` (N,) item ids
    (default the row numbers as strings). Returns ``(ratings, profiles)``: ratings with columns
    ``item_id``, ``annotator_id``, ``label`` (class name), sorted by item then annotator; profiles
    describe each rater. Deterministic for a given ``seed``.
    """
    labels = np.asarray(labels, dtype=np.int64)
    n, k = len(labels), len(classes)
    lo, hi = raters_per_item
    pool = n_raters + n_spammers
    if not (1 <= lo <= hi <= pool):
        raise ValueError(f"raters_per_item {raters_per_item} must be within 1..{pool}")
    ids = [str(i) for i in range(n)] if ids is None else [str(i) for i in ids]
    rng = np.random.default_rng(seed)
    closeness = class_closeness(texts, labels, k)
    confuse = np.exp(
        (
            closeness
            - np.nanmax(np.where(np.isinf(closeness), np.nan, closeness), axis=1, keepdims=True)
        )
        / temperature
    )
    confuse /= confuse.sum(
        axis=1, keepdims=True
    )  # (K, K) which wrong class a rater picks for truth k

    accuracies = np.linspace(accuracy_range[0], accuracy_range[1], n_raters)
    profiles = [
        RaterProfile(f"{SIMULATED_PREFIX}rater{r + 1:02d}", "honest", float(a))
        for r, a in enumerate(accuracies)
    ]
    spam_kinds = ["random spammer", "lazy spammer"]
    profiles += [
        RaterProfile(f"{SIMULATED_PREFIX}spammer{s + 1}", spam_kinds[s % 2], float("nan"))
        for s in range(n_spammers)
    ]
    favourite = rng.integers(0, k, size=n_spammers)

    rows = np.sort(rng.choice(n, size=min(n_items, n), replace=False))
    difficulty = rng.beta(1.0, 4.0, size=len(rows))
    out = []
    for row, d in zip(rows.tolist(), difficulty.tolist(), strict=True):
        truth = labels[row]
        for r in np.sort(rng.choice(pool, size=rng.integers(lo, hi + 1), replace=False)).tolist():
            prof = profiles[r]
            if prof.kind == "honest":
                right = rng.random() < prof.accuracy * (1 - d / 2)
                said = truth if right else rng.choice(k, p=confuse[truth])
            elif prof.kind == "random spammer":
                said = rng.integers(0, k)
            else:
                said = favourite[r - n_raters] if rng.random() < 0.7 else rng.integers(0, k)
            out.append((ids[row], prof.annotator_id, classes[int(said)]))
    return pd.DataFrame(out, columns=["item_id", "annotator_id", "label"]), profiles


def simulate_skewed_crowd(
    *,
    n_items: int = 4000,
    n_raters: int = 176,
    majority_share: float = 0.88,
    ratings_per_item: int = 3,
    spammer_share: float = 0.1,
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    """A skewed, sparse binary crowd with gold, for benchmarks and tests of truth inference.

    - Item truth: ``"neg"`` with probability ``majority_share``, else ``"pos"``.
    - Rater load is heavy-tailed: weights ~ LogNormal(0, 1.5), and rater ``r000`` alone takes 35 %
      of the ratings (one very busy rater next to many occasional ones).
    - ``spammer_share`` of the raters are spammers: half answer uniformly at random, half say the
      majority class 97 % of the time. Everyone else is careful: P(pos | pos) ~ Beta(8, 2) and
      P(neg | neg) ~ Beta(20, 1.5), per rater.
    - Each item gets ``ratings_per_item`` distinct raters drawn by load.

    Returns (ratings ``item_id, annotator_id, label``; gold per item id; rater kind per annotator
    id: ``careful`` / ``random spammer`` / ``majority spammer``). Seeded.
    """
    rng = np.random.default_rng(seed)
    truth = rng.random(n_items) > majority_share  # True = the minority class
    weight = rng.lognormal(0.0, 1.5, n_raters)
    weight[0] = weight[1:].sum() * 0.35 / 0.65
    weight /= weight.sum()
    kind = np.full(n_raters, "careful", dtype=object)
    n_spam = int(spammer_share * n_raters)
    spam = rng.choice(np.arange(1, n_raters), n_spam, replace=False)
    kind[spam[: n_spam // 2]] = "random spammer"
    kind[spam[n_spam // 2 :]] = "majority spammer"
    sens, spec = rng.beta(8, 2, n_raters), rng.beta(20, 1.5, n_raters)
    raters = np.stack(
        [rng.choice(n_raters, ratings_per_item, replace=False, p=weight) for _ in range(n_items)]
    )
    item = np.repeat(np.arange(n_items), ratings_per_item)
    who = raters.ravel()
    u = rng.random(len(who))
    careful = np.where(truth[item], u < sens[who], u > spec[who])
    says_pos = np.select(
        [kind[who] == "random spammer", kind[who] == "majority spammer"],
        [u < 0.5, u < 0.03],
        careful,
    )
    ids = np.array([f"i{i}" for i in range(n_items)], dtype=object)
    names = np.array([f"r{j:03d}" for j in range(n_raters)], dtype=object)
    ratings = pd.DataFrame(
        {
            "item_id": ids[item],
            "annotator_id": names[who],
            "label": np.where(says_pos, "pos", "neg"),
        }
    )
    gold = pd.Series(np.where(truth, "pos", "neg"), index=ids, name="gold")
    return ratings, gold, pd.Series(kind, index=names, name="kind")
