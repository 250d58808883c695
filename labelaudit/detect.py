"""Label-issue detection over a whole dataset: out-of-sample probabilities, every detector, the ensemble.

(Interface fixed for the scan; the detectors issue fills it in.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from labelaudit.dataset import Dataset
from labelaudit.progress import ProgressFn, no_progress


@dataclass
class Detection:
    """``table``: N rows aligned with the dataset, columns ``label_issue_score``, ``is_label_issue``,
    ``suggested_label`` (class name), ``suggested_label_prob``, ``n_flags`` and one ``score_<detector>``
    per detector. ``details``: detector-level artifacts (noise matrix, OOF accuracy, …)."""

    table: pd.DataFrame
    pred_probs: np.ndarray | None = None
    details: dict[str, Any] = field(default_factory=dict)


def detect_label_issues(ds: Dataset, embeddings: np.ndarray, *, workspace: Any = None, seed: int = 0,
                        detectors: list[str] | None = None, progress: ProgressFn = no_progress) -> Detection:
    """Run the label-issue detectors on ``ds`` (embeddings: float32 (N, D), L2-normalised)."""
    return Detection(table=pd.DataFrame(index=range(ds.n)))
