"""Label-issue detection over a whole dataset: out-of-sample probabilities, every detector, the ensemble.

``detect_label_issues`` is what the scan calls. It never gives a detector in-sample predictions:
the probabilities are the user's (assumed out-of-sample, as the loader documents) or out-of-fold.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd

from labelaudit.dataset import Dataset
from labelaudit.detectors import registry
from labelaudit.detectors.base import (
    DetectionContext,
    DetectorDetails,
    DetectorResult,
    FieldAccess,
)
from labelaudit.detectors.combiner import (
    OTHER_FAMILY,
    QUALITY_ISSUE_RULE,
    TRUST_FALLBACK,
    TRUST_ISSUE_RULE,
    Combination,
    combined_score,
    detector_families,
    expected_precision,
    flag_precision,
    flag_precision_range,
    heldout_reference,
    learn_combination,
    learn_trust,
    quality_expected_precision,
    quality_flags,
    quality_score,
    trusted_flags,
)
from labelaudit.detectors.ensemble import ISSUE_RULE, Combiner, combine, rank_average
from labelaudit.detectors.oof import cached_out_of_fold_probs
from labelaudit.dynamics import as_workspace
from labelaudit.engine import Engine
from labelaudit.errors import DataError, UsageError

# normalise_rows is idempotent to the bit: the detectors' trained runs keep the keys the pages read
from labelaudit.neighbours import NeighbourGraph, nearest_neighbours, normalise_rows
from labelaudit.progress import ProgressFn, no_progress
from labelaudit.typed_json import serialisable

__all__ = ["Detection", "DetectionDetails", "detect_label_issues", "nearest_neighbours"]

PROBS_GIVEN, PROBS_OOF = "given", "out-of-fold"
#: Named combiners (:mod:`labelaudit.detectors.combiner`, docs/detectors.md "Combiners"):
#: "quality" (quality-gated label model), "trust" (label model over every detector) and
#: "rank_average" (equal weights, the benchmark baseline). Measured in bench/results/detectors_combiner.md.
COMBINERS = ("quality", "rank_average", "trust")
#: The combiner used when none is chosen.
DEFAULT_COMBINER = "quality"
#: Bump when detection output changes for the same inputs (the scan keys its cache on it).
#: 11: the flag's precision range reaches down to the rate-matched noise-matrix estimate;
#: 10: the trust combiner falls back to the quality weights when agreement cannot identify the
#: detectors' accuracies, and gives its rationale; 9: the flag's precision as a range (noise-matrix and label-model posteriors); 8: errors to similar classes (rank-0 probes, the probability family's share, no accuracy
#: dominance) and the flag's expected precision from the noise matrix; 7: with given
#: probabilities, the quality combiner's embedding-family reference is the kNN detector's
#: held-out prediction (no second out-of-fold fit); 6: quality-gated probes follow the estimated error structure, families hold half the weight
#: each, and it is the default; 5: the quality-gated combiner and its rationale; 4: combiner
#: weights and the trust-weighted combiner; 3: training population (issue 16)
VERSION = 11


@serialisable
@dataclass(frozen=True)
class DetectionDetails(FieldAccess):
    """What a detection found besides its table (every field optional; ``None`` = not computed).

    Fields can also be read by name (``details["flags"]``, ``details.get("noise_matrix")``). A stored
    scan reads these back exactly (:mod:`labelaudit.typed_json`).
    """

    #: Where the probabilities came from: "given" or "out-of-fold".
    probs_source: str | None = None
    #: Out-of-fold accuracy against the given labels (None when the probabilities were given).
    oof_accuracy: float | None = None
    #: Share of rows whose most probable class is the given label.
    pred_accuracy: float | None = None
    #: Detectors that ran, in order; ``skipped``: {detector: why it did not run}.
    detectors: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    #: The ensemble's is-issue rule (text) and the combiner's name.
    issue_rule: str | None = None
    combiner: str | None = None
    #: {detector: weight in the combined score}, summing to 1 (equal for the rank average).
    combiner_weights: dict[str, float] = field(default_factory=dict)
    #: Expected precision of the "needs review" flag (:data:`combiner.FLAG_PRECISION_RULE`: from the
    #: probabilities and confident learning's noise matrix), or None when it cannot be estimated.
    flag_expected_precision: float | None = None
    #: [low, high] for the flag's precision (:data:`combiner.FLAG_PRECISION_RANGE_RULE`: between the
    #: noise-matrix posterior above and the label model's posterior), or None when it cannot be
    #: estimated; low == high when only the first can be computed.
    flag_precision_range: list[float] | None = None
    #: Why the combiner weighed the detectors as it did (one sentence; None for fixed weights).
    combiner_rationale: str | None = None
    #: {class name: rows needing review}.
    issues_per_class: dict[str, int] = field(default_factory=dict)
    #: int64 / float64 (N, 3): the three most probable classes per row and their probabilities.
    top3_labels: np.ndarray | None = None
    top3_probs: np.ndarray | None = None
    #: Per detector, row-aligned: is-issue flags (bool (N,)), evidence lines, suggested classes.
    flags: dict[str, np.ndarray] = field(default_factory=dict)
    evidence: dict[str, list[str]] = field(default_factory=dict)
    suggestions: dict[str, np.ndarray] = field(default_factory=dict)
    #: Each detector's own artifacts (a :class:`DetectorDetails` dataclass per detector).
    detector_details: dict[str, DetectorDetails] = field(default_factory=dict)
    #: Warnings raised while computing the probabilities (e.g. fewer folds).
    warnings: list[str] = field(default_factory=list)
    #: float (K, K) from confident learning, when it ran (see its details for the convention).
    noise_matrix: np.ndarray | None = None
    confident_joint: np.ndarray | None = None


@dataclass
class Detection:
    """``table``: N rows aligned with the dataset, columns ``label_issue_score``, ``is_label_issue``,
    ``suggested_label`` (class name), ``suggested_label_prob``, ``n_flags`` and one ``score_<detector>``
    per detector. ``details``: detector-level artifacts (noise matrix, OOF accuracy, …), a
    :class:`DetectionDetails` (a dict of its fields is accepted and converted)."""

    table: pd.DataFrame
    pred_probs: np.ndarray | None = None
    details: DetectionDetails = field(default_factory=DetectionDetails)

    def __post_init__(self) -> None:
        if isinstance(self.details, dict):
            unknown = sorted(set(self.details) - {f.name for f in fields(DetectionDetails)})
            if unknown:
                raise TypeError(
                    f"Detection details: unknown field(s) {unknown}; "
                    f"expected fields of DetectionDetails"
                )
            self.details = DetectionDetails(**self.details)


def detect_label_issues(
    ds: Dataset,
    embeddings: np.ndarray,
    *,
    workspace: Any = None,
    seed: int = 0,
    detectors: list[str] | None = None,
    progress: ProgressFn = no_progress,
    n_splits: int = 5,
    combiner: Combiner | str = DEFAULT_COMBINER,
    neighbour_graph: NeighbourGraph | None = None,
    engine: Engine | None = None,
) -> Detection:
    """Run the label-issue detectors on ``ds`` (embeddings: float32 (N, D), L2-normalised).

    ``detectors``: names to run (default: every default detector whose inputs exist). Probabilities
    are ``ds.pred_probs`` when given, else ``n_splits``-fold out-of-fold logistic regression on the
    embeddings (cached in ``workspace`` when one is passed). ``details`` holds: ``probs_source``
    ("given" / "out-of-fold"), ``oof_accuracy`` (None when given), ``pred_accuracy``,
    ``noise_matrix`` (K, K) and ``confident_joint`` (from confident learning, when it ran),
    ``issues_per_class`` {class: rows needing review}, ``top3_labels`` / ``top3_probs`` (N, 3),
    ``flags`` / ``evidence`` {detector: per-row}, ``detector_details``, ``skipped``, ``warnings``,
    ``issue_rule``, ``combiner`` and ``combiner_weights`` {detector: weight},
    ``flag_expected_precision`` and ``flag_precision_range``. ``combiner``: one of :data:`COMBINERS` or a callable
    ``{name: DetectorResult} -> scores``. ``neighbour_graph``: the k-NN graph of the embeddings
    when the caller built one (the scan does); the kNN and near-duplicate detectors then share it
    instead of building their own. ``engine``: where the out-of-fold folds run
    (:mod:`labelaudit.engine`; default this process).

    >>> det = detect_label_issues(ds, emb, workspace=Workspace(".labelaudit"))  # doctest: +SKIP
    >>> det.table.sort_values("label_issue_score", ascending=False).head()  # doctest: +SKIP
    """
    if len(embeddings) != ds.n:
        raise UsageError(f"embeddings have {len(embeddings)} rows but the dataset has {ds.n}")
    emb = normalise_rows(embeddings)
    labels = ds.labels
    workspace = as_workspace(workspace)  # a folder path works as well as a Workspace
    notes: list[str] = []

    def embedding_head_probs() -> tuple[np.ndarray, float]:
        """Out-of-fold probabilities of the head on the embeddings (cached in the workspace)."""
        return cached_out_of_fold_probs(
            emb,
            labels,
            n_classes=ds.k,
            key=ds.content_hash,
            workspace=workspace,
            n_splits=n_splits,
            seed=seed,
            progress=progress,
            engine=engine,
        )

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if ds.pred_probs is not None:
            probs, source, oof_accuracy = (
                np.asarray(ds.pred_probs, dtype=np.float64),
                PROBS_GIVEN,
                None,
            )
        else:
            probs, oof_accuracy = embedding_head_probs()
            source = PROBS_OOF
    notes.extend(str(w.message) for w in caught if issubclass(w.category, UserWarning))

    ctx = DetectionContext(
        labels=labels,
        n_classes=ds.k,
        embeddings=emb,
        pred_probs=probs,
        texts=ds.texts,
        dynamics=ds.dynamics,
        seed=seed,
        ids=ds.ids,
        classes=list(ds.classes),
        content_hash=ds.content_hash,
        dataset=ds,
        workspace=workspace,
        neighbour_graph=neighbour_graph,
    )
    results, skipped = run_available(ctx, detectors, progress=progress)
    if not results:
        raise UsageError("no detector could run on this dataset")
    if isinstance(combiner, str) and combiner not in COMBINERS:
        raise UsageError(f"unknown combiner {combiner!r}; use one of {', '.join(COMBINERS)}")
    issue_rule, rationale = ISSUE_RULE, None
    label_model_precision: Callable[[np.ndarray], float | None] | None = None
    weights = {n: 1.0 / len(results) for n in results}

    def quality_combination() -> Combination:
        fams = detector_families(results)
        ref_labels, ref_name = None, "the embedding head"
        if source == PROBS_GIVEN and OTHER_FAMILY in fams.values():
            # The embedding family's model, to compare the two models' quality: an out-of-sample
            # prediction a detector already made (kNN's neighbours), never a second 5-fold fit.
            held = heldout_reference(results)
            if held is not None:
                ref_labels, ref_name = held[1], f"the {held[0]} detector's held-out prediction"
        return learn_combination(
            results,
            labels=labels,
            probs=probs,
            reference_labels=ref_labels,
            reference_name=ref_name,
            families=fams,
            seed=seed,
        )

    trust = learn_trust(results) if combiner == "trust" else None
    if combiner == "quality" or (trust is not None and not trust.identifiable):
        # The trust combiner falls back to the default's weights when agreement cannot tell
        # the detectors apart (combiner.identifiability), and says so.
        comb = quality_combination()
        weights = comb.weights
        ens = combine(results, pred_probs=probs, combiner=lambda r: quality_score(r, comb))
        ens.is_issue = quality_flags(results, comb)
        issue_rule = QUALITY_ISSUE_RULE
        combiner_name, rationale = "quality_gated", comb.rationale
        if trust is not None:
            combiner_name = "trust_weighted"
            rationale = (
                f"{TRUST_FALLBACK}{trust.why_not_identifiable}; quality weights: {comb.rationale}"
            )
        label_model_precision = lambda f: quality_expected_precision(f, comb)  # noqa: E731
    elif trust is not None:
        tr = trust
        weights = tr.weights
        rationale = (
            "trust: label model over every detector's votes (three or more detectors agree "
            "pairwise beyond chance, so each one's accuracy is identifiable)"
        )
        ens = combine(results, pred_probs=probs, combiner=lambda r: combined_score(r, tr))
        ens.is_issue = trusted_flags(results, tr)
        issue_rule = TRUST_ISSUE_RULE
        combiner_name = "trust_weighted"
        label_model_precision = lambda f: expected_precision(f, tr)  # noqa: E731
    else:
        fn = rank_average if combiner == "rank_average" else combiner
        assert callable(fn)
        ens = combine(results, pred_probs=probs, combiner=fn)
        combiner_name = getattr(fn, "__name__", type(fn).__name__)

    classes = np.asarray(ds.classes, dtype=object)
    table = pd.DataFrame(
        {
            "label_issue_score": ens.score,
            "is_label_issue": ens.is_issue,
            "suggested_label": classes[ens.suggested_label],
            "suggested_label_prob": ens.suggested_prob,
            "n_flags": ens.n_flags,
        }
    )
    for name, r in results.items():
        table[f"score_{name}"] = r.score
    cl = results.get("confident_learning")
    # The flag's expected precision, the same rule for every combiner (combiner.FLAG_PRECISION_RULE)
    nm = None if cl is None else cl.details.get("noise_matrix")
    expected = flag_precision(ens.is_issue, labels, probs, nm)
    # The range's other end: the combiner's label model, else (fixed weights, or a single kept
    # detector) the label model over every detector; none with one detector, whose posterior
    # would be its own votes (0 or 1), not an estimate.
    lm_estimate = None
    if len(results) > 1:
        if label_model_precision is not None:
            lm_estimate = label_model_precision(ens.is_issue)
        if lm_estimate is None:
            lm_estimate = expected_precision(ens.is_issue, learn_trust(results))
    rate = None if cl is None else cl.details.get("estimated_noise_rate")
    span = flag_precision_range(ens.is_issue, labels, probs, nm, lm_estimate, rate)
    details = DetectionDetails(
        probs_source=source,
        oof_accuracy=None if oof_accuracy is None else float(oof_accuracy),
        pred_accuracy=float((probs.argmax(axis=1) == labels).mean()),
        detectors=list(results),
        skipped=skipped,
        issue_rule=issue_rule,
        combiner=combiner_name,
        combiner_weights={n: float(w) for n, w in weights.items()},
        flag_expected_precision=expected,
        flag_precision_range=None if span is None else [float(span[0]), float(span[1])],
        combiner_rationale=rationale,
        issues_per_class={
            str(c): int(v)
            for c, v in zip(
                ds.classes, np.bincount(labels[ens.is_issue], minlength=ds.k), strict=True
            )
        },
        top3_labels=ens.top_labels,
        top3_probs=ens.top_probs,
        flags={n: r.is_issue for n, r in results.items()},
        evidence={n: list(r.evidence) for n, r in results.items()},
        suggestions={n: r.suggested_label for n, r in results.items()},
        detector_details={n: r.details for n, r in results.items()},
        warnings=notes,
        noise_matrix=None if cl is None else cl.details.get("noise_matrix"),
        confident_joint=None if cl is None else cl.details.get("confident_joint"),
    )
    return Detection(table=table, pred_probs=probs, details=details)


def run_available(
    ctx: DetectionContext, names: list[str] | None = None, *, progress: ProgressFn = no_progress
) -> tuple[dict[str, DetectorResult], dict[str, str]]:
    """Run the chosen (default: every default, runnable) detector; a detector that finds the data
    unusable (DataError) is skipped with its reason instead of failing the whole detection."""
    available = registry.all_detectors()
    unknown = sorted(set(names or []) - set(available))
    if unknown:
        raise UsageError(f"unknown detector(s) {unknown}; available: {sorted(available)}")
    specs = registry.runnable(ctx, names)
    skipped = {
        n: "its inputs are missing" for n in (names or []) if n not in {s.name for s in specs}
    }
    results: dict[str, DetectorResult] = {}
    for i, spec in enumerate(specs):
        progress(f"detector: {spec.name}", i, len(specs))
        try:
            results[spec.name] = spec.fn(ctx)
        except DataError as e:
            skipped[spec.name] = str(e)
    progress("detectors", len(specs), len(specs))
    return results, skipped
