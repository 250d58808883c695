"""The one contract every label-error detector honours.

A detector looks at a dataset (through a :class:`DetectionContext`) and returns a
:class:`DetectorResult`: for each of the N rows a suspicion score in [0, 1] (higher = more likely
that the given label is wrong), an is-issue flag, a suggested label with its probability, and a
short human-readable line of evidence. Detector-level artifacts (a noise matrix, a noise-rate
estimate, an out-of-fold accuracy) go in ``details``: a :class:`DetectorDetails` dataclass of the
detector's own, registered with :func:`labelaudit.typed_json.serialisable` so that a stored scan
reads it back exactly. The ensemble combines results without knowing
which detector made them; one parametrised test checks every detector against this contract.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from labelaudit.typed_json import serialisable

if TYPE_CHECKING:
    from labelaudit.dataset import Dataset
    from labelaudit.neighbours import NeighbourGraph
    from labelaudit.workspace import Workspace


@dataclass(frozen=True)
class DetectorOptions:
    """Knobs of individual detectors; ``None`` = the detector's own default."""

    #: Neighbours per row for "knn" (default :data:`labelaudit.detectors.knn.DEFAULT_K`).
    knn_k: int | None = None
    #: Rounds of "incv" (default :data:`labelaudit.detectors.incv.DEFAULT_ROUNDS`).
    incv_rounds: int | None = None


@dataclass
class DetectionContext:
    """Everything a detector may use. Arrays are row-aligned with the dataset (N rows).

    ``pred_probs`` are always out-of-sample (given by the user, or out-of-fold); detectors must
    never see in-sample predictions. The neighbour graph is built on first use by
    :meth:`neighbours` and shared by every detector of the run (or given, e.g. by the scan).
    """

    labels: np.ndarray  # int64 (N,), given labels as class indices in [0, K)
    n_classes: int
    embeddings: np.ndarray | None = None  # float32 (N, D), L2-normalised
    pred_probs: np.ndarray | None = None  # float64 (N, K), out-of-sample
    texts: list[str] | None = None
    dynamics: np.ndarray | None = None  # float32 (E, N, K) logits per epoch
    seed: int = 0
    #: Row ids (N,), to name rows in evidence; ``None`` = "row <number>".
    ids: np.ndarray | None = None
    #: Class names by index (K,); ``None`` = the indices as strings.
    classes: list[str] | None = None
    #: The dataset's content hash (see :attr:`labelaudit.dataset.Dataset.content_hash`), if known.
    content_hash: str | None = None
    #: The dataset the arrays came from, if any (detectors read the typed fields above first).
    dataset: Dataset | None = None
    #: Where detectors store what they train (keyed by content); ``None`` = nothing stored.
    workspace: Workspace | None = None
    options: DetectorOptions = field(default_factory=DetectorOptions)
    #: The k-NN graph of ``embeddings``; built once by :meth:`neighbours` when not given.
    neighbour_graph: NeighbourGraph | None = None

    @property
    def n(self) -> int:
        return int(len(self.labels))

    @property
    def class_names(self) -> list[str]:
        """Class names by index: ``classes``, or ``"0"``, ``"1"``, … when not given."""
        return list(self.classes) if self.classes else [str(i) for i in range(self.n_classes)]

    def neighbours(self, k: int) -> NeighbourGraph:
        """The ``k`` nearest other rows of every row (cosine), built once per context and reused.

        Needs ``embeddings``. A request for more neighbours than the graph holds rebuilds it with
        the larger k (k is capped at N - 1).
        """
        from labelaudit.neighbours import build_neighbour_graph

        if self.embeddings is None:
            raise ValueError("the neighbour graph needs embeddings")
        have = self.neighbour_graph
        if have is None or have.k < min(k, self.n - 1):
            have = self.neighbour_graph = build_neighbour_graph(self.embeddings, k=k)
        return have.first(k)


class FieldAccess(Mapping[str, Any]):
    """Read a dataclass's fields by name too (``d["k"]``, ``d.get("k", default)``, ``"k" in d``).

    For callers (pages, notebooks, older code) that read results as the plain dicts they used to be;
    a field that is ``None`` counts as absent, as a missing key did. Equality stays the dataclass's.
    """

    def _names(self) -> list[str]:
        return [f.name for f in dataclasses.fields(self)]  # type: ignore[arg-type]

    def __getitem__(self, key: str) -> Any:
        if key not in self._names():
            raise KeyError(key)
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        value = getattr(self, key, None) if key in self._names() else None
        return default if value is None else value

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not None

    def __iter__(self) -> Iterator[str]:
        return iter([k for k in self._names() if getattr(self, k) is not None])

    def __len__(self) -> int:
        return sum(1 for _ in self)


@serialisable
@dataclass(frozen=True)
class DetectorDetails(FieldAccess):
    """A detector's own artifacts; each detector subclasses it (an empty one says nothing)."""


@dataclass
class DetectorResult:
    """Per-row output of one detector. All arrays have length N."""

    name: str
    score: np.ndarray  # float64 in [0, 1]; higher = more suspicious
    is_issue: np.ndarray  # bool
    suggested_label: np.ndarray  # int64 class index in [0, K)
    suggested_prob: np.ndarray  # float64 in [0, 1]
    evidence: list[str]  # one short plain-text line per row ("" when nothing to say)
    details: DetectorDetails = field(default_factory=DetectorDetails)

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
        if not isinstance(self.details, DetectorDetails):
            raise TypeError(
                f"detector {self.name}: details must be a DetectorDetails dataclass, "
                f"got {type(self.details).__name__}"
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
