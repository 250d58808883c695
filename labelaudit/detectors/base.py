"""The one contract every label-error detector honours.

A detector looks at a dataset (through a :class:`DetectionContext`) and returns a
:class:`DetectorResult`: for each of the N rows a suspicion score in [0, 1] (higher = more likely
that the given label is wrong), an is-issue flag, a suggested label with its probability, and a
short human-readable line of evidence. Detector-level artifacts (a noise matrix, a noise-rate
estimate, an out-of-fold accuracy) go in ``details``. The ensemble combines results without knowing
which detector made them; one parametrised test checks every detector against this contract.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd


@dataclass
class DetectionContext:
    """Everything a detector may use. Arrays are row-aligned with the dataset (N rows).

    ``pred_probs`` are always out-of-sample (given by the user, or out-of-fold); detectors must
    never see in-sample predictions.
    """

    labels: np.ndarray  # int64 (N,), given labels as class indices in [0, K)
    n_classes: int
    embeddings: np.ndarray | None = None  # float32 (N, D), L2-normalised
    pred_probs: np.ndarray | None = None  # float64 (N, K), out-of-sample
    texts: list[str] | None = None
    dynamics: np.ndarray | None = None  # float32 (E, N, K) logits per epoch
    seed: int = 0
    #: Extra inputs a detector may need (e.g. a workspace for its own caching).
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return int(len(self.labels))


@dataclass
class DetectorResult:
    """Per-row output of one detector. All arrays have length N."""

    name: str
    score: np.ndarray  # float64 in [0, 1]; higher = more suspicious
    is_issue: np.ndarray  # bool
    suggested_label: np.ndarray  # int64 class index in [0, K)
    suggested_prob: np.ndarray  # float64 in [0, 1]
    evidence: list[str]  # one short plain-text line per row ("" when nothing to say)
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.score = np.asarray(self.score, dtype=np.float64)
        self.is_issue = np.asarray(self.is_issue, dtype=bool)
        self.suggested_label = np.asarray(self.suggested_label, dtype=np.int64)
        self.suggested_prob = np.asarray(self.suggested_prob, dtype=np.float64)
        n = len(self.score)
        lengths = {
            len(self.is_issue),
            len(self.suggested_label),
            len(self.suggested_prob),
            len(self.evidence),
        }
        if lengths != {n}:
            raise ValueError(
                f"detector {self.name}: arrays of different lengths {sorted(lengths)} (N={n})"
            )
        if n and (
            not np.isfinite(self.score).all() or self.score.min() < 0 or self.score.max() > 1
        ):
            raise ValueError(f"detector {self.name}: scores outside [0, 1]")

    @property
    def n_issues(self) -> int:
        return int(self.is_issue.sum())

    def to_frame(self) -> pd.DataFrame:
        """Columns ``score_<name>``, ``is_issue_<name>``, ``suggested_<name>``, ``evidence_<name>``."""
        return pd.DataFrame(
            {
                f"score_{self.name}": self.score,
                f"is_issue_{self.name}": self.is_issue,
                f"suggested_{self.name}": self.suggested_label,
                f"evidence_{self.name}": self.evidence,
            }
        )


def rank_normalise(values: np.ndarray) -> np.ndarray:
    """Map values to [0, 1] by rank (ties share their mean rank); the largest value maps to 1."""
    from scipy.stats import rankdata

    v = np.asarray(values, dtype=np.float64)
    if len(v) <= 1:
        return np.zeros(len(v))
    r = rankdata(v, method="average")
    return (r - 1) / (len(v) - 1)
