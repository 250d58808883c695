"""Rater agreement and truth inference over annotations from several people.

:func:`analyse_annotations` is the one entry point the CLI and the app use: agreement statistics,
a consensus per item from the chosen method, and a profile per annotator.

Example:
    >>> from labelaudit.agreement import Ratings, analyse_annotations
    >>> report = analyse_annotations(Ratings.from_dataset(ds), method="mace", seed=0)   # doctest: +SKIP
    >>> report.items.head()                                                            # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from labelaudit.agreement import spammers
from labelaudit.agreement.methods import MethodTitles, TruthInputs, run_truth_method
from labelaudit.agreement.metrics import (
    MIN_PAIR_OVERLAP,
    Statistic,
    agreement_statistics,
    annotator_agreement,
    annotator_confusion,
    class_agreement,
    cohen_kappa_pairs,
    item_agreement,
)
from labelaudit.agreement.ratings import Ratings
from labelaudit.agreement.truth import TieBreak, TruthResult, majority_vote
from labelaudit.progress import ProgressFn, no_progress

Method = Literal["auto", "mv", "ds", "mace", "crowdlab"]
#: {name: title} of every registered truth-inference method (labelaudit.agreement.methods).
METHODS: Mapping[str, str] = MethodTitles()
#: The likely-spammer rule (labelaudit.agreement.spammers): kappa with the consensus, competence, cap.
SPAMMER_COMPETENCE = spammers.MAX_COMPETENCE
SPAMMER_MIN_LABELS = spammers.MIN_LABELS
#: How many likely spammers the summary lists (all of them are in the annotators table).
SPAMMERS_LISTED = 10

__all__ = [
    "METHODS",
    "AgreementReport",
    "Ratings",
    "Statistic",
    "TruthResult",
    "analyse_annotations",
    "infer_truth",
]


@dataclass
class AgreementReport:
    """Everything the CLI prints and the Annotators page draws.

    ``items``: one row per rated item (I rows, dataset order when built from a dataset):
    ``item_id``, ``consensus_label``, ``consensus_confidence`` in [0, 1], ``n_ratings``, ``agreement``
    (share of agreeing rating pairs, NaN with one rating), ``entropy`` (posterior, normalised to [0, 1]),
    ``vote_label`` (plain majority), ``n_labels_used``, ``disagreement`` in [0, 1] (1 - agreement,
    with single-rated items at 0) — sorted as given, not by disagreement.
    ``annotators``: ``annotator_id``, ``competence`` in [0, 1], ``n_labels``, ``agreement`` (with the
    other raters), ``agreement_with_consensus``, ``kappa_with_consensus``, ``likely_spammer`` (the
    rule in :data:`labelaudit.agreement.spammers.RULE`), ``spammer_rank`` (1 = strongest evidence,
    0 = not flagged), ``spammer_evidence`` (plain text).
    ``pairs``: Cohen's kappa per annotator pair (see ``cohen_kappa_pairs``). ``per_class``: specific
    agreement per class. ``confusion``: int64 (J, K, K) counts of (consensus, annotator's label).
    """

    ratings: Ratings
    method: str
    statistics: list[Statistic]
    truth: TruthResult
    items: pd.DataFrame
    annotators: pd.DataFrame
    pairs: pd.DataFrame
    per_class: pd.DataFrame
    confusion: np.ndarray
    notes: list[str] = field(default_factory=list)

    def summary_lines(self) -> list[str]:
        r = self.ratings
        lines = [
            f"{r.n_ratings:,} ratings of {r.n_items:,} items by {r.n_annotators:,} annotators, {r.k} classes",
            *[f"  {s}" for s in self.statistics],
        ]
        kappas = self.pairs["kappa"].dropna()
        if len(kappas):
            lines.append(
                f"  Cohen's kappa over {len(kappas):,} annotator pairs with >= {MIN_PAIR_OVERLAP} items in common: "
                f"median {kappas.median():.4f} (min {kappas.min():.4f}, max {kappas.max():.4f})"
            )
        else:
            lines.append(
                f"  Cohen's kappa: undefined (no annotator pair shares {MIN_PAIR_OVERLAP} or more items)"
            )
        lines.append(
            f"consensus by {METHODS[self.method]}: "
            f"{int((self.items['consensus_label'] != self.items['vote_label']).sum()):,} items "
            "differ from the plain vote"
        )
        for key in ("ties", "iterations", "converged", "log_likelihood"):
            if key in self.truth.details:
                v = self.truth.details[key]
                lines.append(
                    f"  {key.replace('_', ' ')}: {v:.4f}"
                    if isinstance(v, float)
                    else f"  {key}: {v}"
                )
        flagged = self.annotators[self.annotators["likely_spammer"]].sort_values("spammer_rank")
        names = [str(a) for a in flagged["annotator_id"].head(SPAMMERS_LISTED)]
        more = (
            f", … ({len(flagged) - SPAMMERS_LISTED} more)" if len(flagged) > SPAMMERS_LISTED else ""
        )
        lines.append(f"likely spammers: {', '.join(names) + more if names else 'none'}")
        lines.append(f"  rule: {spammers.RULE}")
        for _, row in flagged.head(SPAMMERS_LISTED).iterrows():
            lines.append(
                f"  {row['spammer_rank']}. {row['annotator_id']}: {row['spammer_evidence']}"
            )
        lines.extend(self.notes)
        return lines


def infer_truth(
    ratings: Ratings,
    *,
    method: Method | str = "mace",
    seed: int = 0,
    tie_break: TieBreak = "random",
    pred_probs: np.ndarray | None = None,
    progress: ProgressFn = no_progress,
) -> TruthResult:
    """Run one truth-inference method. ``pred_probs`` float (I, K) in ``ratings.item_ids`` order is
    needed for ``method="crowdlab"`` and ``tie_break="model"``. Methods are looked up in
    :mod:`labelaudit.agreement.methods` (a new one registers itself there)."""
    inputs = TruthInputs(seed=seed, tie_break=tie_break, pred_probs=pred_probs, progress=progress)
    return run_truth_method(method, ratings, inputs)


def analyse_annotations(
    ratings: Ratings,
    *,
    method: Method | str = "auto",
    seed: int = 0,
    tie_break: TieBreak = "random",
    pred_probs: np.ndarray | None = None,
    min_overlap: int = MIN_PAIR_OVERLAP,
    progress: ProgressFn = no_progress,
) -> AgreementReport:
    """Agreement statistics, consensus per item and a profile per annotator.

    ``method``: ``auto`` (default: majority vote, Dawid–Skene or MACE, whichever gives the held-out
    ratings the highest likelihood; ``report.method`` is the one chosen and ``notes`` say why),
    ``mv``, ``ds``, ``mace`` or ``crowdlab`` (needs ``pred_probs``). Competence
    comes from the method when it models annotators (DS, MACE, CROWDLAB); for ``mv`` it is the
    annotator's agreement with the consensus. Deterministic for a given ``seed``.
    """
    stats = agreement_statistics(ratings)
    truth = infer_truth(
        ratings,
        method=method,
        seed=seed,
        tie_break=tie_break,
        pred_probs=pred_probs,
        progress=progress,
    )
    chosen_note = truth.details.get("chosen_by")
    method = truth.method  # type: ignore[assignment]  # "auto" resolves to the method it chose
    vote = majority_vote(ratings, tie_break="random", seed=seed)
    names = np.asarray(ratings.classes, dtype=object)
    agree = item_agreement(ratings)
    items = pd.DataFrame(
        {
            "item_id": ratings.item_ids,
            "consensus_label": names[truth.consensus],
            "consensus_confidence": truth.confidence,
            "n_ratings": ratings.n_per_item,
            "agreement": agree,
            "entropy": truth.entropy,
            "vote_label": names[vote.consensus],
            "n_labels_used": (ratings.counts > 0).sum(axis=1),
            "disagreement": np.nan_to_num(1.0 - agree, nan=0.0),
        }
    )
    annotators = annotator_agreement(ratings, truth.consensus)
    competence = (
        truth.competence
        if truth.competence is not None
        else annotators["agreement_with_consensus"].to_numpy()
    )
    annotators.insert(1, "competence", competence)
    # MACE's competence is P(not spamming) by construction; DS / CROWDLAB competence is accuracy,
    # which a rater who always says the majority class of a skewed set scores high on: kappa decides.
    spam_competence = truth.competence if truth.method == "mace" else None
    spam = spammers.spammer_table(ratings, truth.consensus, spam_competence)
    for col in spam.columns:
        annotators[col] = spam[col].to_numpy()
    notes = [f"consensus method {METHODS[method]}: {chosen_note}"] if chosen_note else []
    capped = spammers.spammer_note(spam, ratings, spam_competence)
    if capped:
        notes.append(capped)
    if truth.competence is None:
        notes.append(
            "competence = agreement with the consensus (majority vote does not model annotators)"
        )
    return AgreementReport(
        ratings=ratings,
        method=method,
        statistics=stats,
        truth=truth,
        items=items,
        annotators=annotators,
        pairs=cohen_kappa_pairs(ratings, min_overlap=min_overlap),
        per_class=class_agreement(ratings),
        confusion=annotator_confusion(ratings, truth.consensus),
        notes=notes,
    )
