"""The in-memory dataset every part of labelaudit works on.

A :class:`Dataset` is validated on construction by :func:`labelaudit.io.load_dataset`; code that
receives one may assume its invariants (documented on the class) and does not check again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from labelaudit.errors import Problem
from labelaudit.hashing import CanonicalHash, update_blocks

#: Canonical column names in :attr:`Dataset.frame`.
ID, TEXT, LABEL, SPLIT = "id", "text", "label", "split"
#: Name of the split that is protected: evaluation only, never changed by bulk actions.
TEST_SPLIT = "test"


@dataclass(eq=False)
class Dataset:
    """A text-classification dataset with its optional companions.

    Invariants (checked by the loader):

    - ``frame`` has a 0..N-1 RangeIndex and the columns ``id`` (unique ``str``), ``text``
      (non-empty ``str``), ``label`` (``str``, one of ``classes``) and ``split`` (``str``, ``""``
      when the data has no split), followed by any metadata columns of the source.
    - ``classes`` lists K >= 2 class names; column k of every (…, K) array is ``classes[k]``.
    - ``pred_probs``: float64 (N, K), rows sum to 1, out-of-sample predictions from the user's model.
    - ``annotations``: long format with columns ``item_id`` (an ``id`` of ``frame``),
      ``annotator_id`` (str), ``label`` (one of ``classes``) and optionally ``timestamp``.
    - ``dynamics``: float32 (E, N, K) logits recorded after each of E training epochs.
    - ``embeddings``: float32 (N, D) precomputed embeddings.
    - ``row_scores``: per-row scores from another tool, ``id`` plus numeric columns, one row per id.
    - ``pair_scores``: influence computed elsewhere, columns ``train_id``, ``query_id``, ``score``
      (positive = the training row helps the query).
    """

    frame: pd.DataFrame
    classes: list[str]
    source: str = "<DataFrame>"
    pred_probs: np.ndarray | None = None
    annotations: pd.DataFrame | None = None
    dynamics: np.ndarray | None = None
    embeddings: np.ndarray | None = None
    row_scores: pd.DataFrame | None = None
    pair_scores: pd.DataFrame | None = None
    class_descriptions: dict[str, str] = field(default_factory=dict)
    #: Which source column became each canonical column, and how it was chosen.
    mapping: dict[str, str] = field(default_factory=dict)
    #: Non-fatal problems found while loading (renormalised probabilities, guessed columns…).
    warnings: list[Problem] = field(default_factory=list)

    # ----------------------------------------------------------------- basic views
    @property
    def n(self) -> int:
        return len(self.frame)

    @property
    def k(self) -> int:
        return len(self.classes)

    @property
    def ids(self) -> np.ndarray:
        return self.frame[ID].to_numpy(dtype=object)

    @property
    def texts(self) -> list[str]:
        return self.frame[TEXT].tolist()

    @cached_property
    def labels(self) -> np.ndarray:
        """Given labels as class indices, int64 of shape (N,)."""
        index = {c: i for i, c in enumerate(self.classes)}
        return self.frame[LABEL].map(index).to_numpy(dtype=np.int64)

    @property
    def label_names(self) -> np.ndarray:
        return self.frame[LABEL].to_numpy(dtype=object)

    @property
    def splits(self) -> list[str]:
        return [s for s in self.frame[SPLIT].unique().tolist() if s]

    @property
    def has_test_split(self) -> bool:
        return bool((self.frame[SPLIT] == TEST_SPLIT).any())

    def split_mask(self, name: str) -> np.ndarray:
        return (self.frame[SPLIT] == name).to_numpy()

    @property
    def test_mask(self) -> np.ndarray:
        """Rows of the protected test split (all False when there is none)."""
        return self.split_mask(TEST_SPLIT)

    @cached_property
    def id_to_row(self) -> dict[str, int]:
        return {i: r for r, i in enumerate(self.frame[ID].tolist())}

    @property
    def metadata_columns(self) -> list[str]:
        return [c for c in self.frame.columns if c not in (ID, TEXT, LABEL, SPLIT)]

    # ----------------------------------------------------------------- hashing
    @cached_property
    def text_hash(self) -> str:
        """Hash of the texts alone (in row order): the key for embeddings and projections.

        Length-prefixed (:mod:`labelaudit.hashing`): no two different lists of texts share it.
        """
        h = CanonicalHash("texts")
        h.strings(self.frame[TEXT])
        return h.hexdigest()

    @cached_property
    def content_hash(self) -> str:
        """Hash of everything loaded: rows, classes, class descriptions and companions. The dataset
        version. Every column (name, dtype, values) and companion is encoded unambiguously
        (:mod:`labelaudit.hashing`), so two different datasets never share a version; the source
        path and the column mapping are not part of it (moving a file keeps its version).
        """
        h = CanonicalHash("dataset")
        h.tag("texts")
        h.strings([self.text_hash])
        h.tag("frame")
        h.frame(self.frame, skip=[TEXT])  # the texts are in text_hash
        h.tag("classes")
        h.strings(list(self.classes))
        h.tag("class_descriptions")
        items = sorted(self.class_descriptions.items())
        h.strings([k for k, _ in items])
        h.strings([str(v) for _, v in items])
        for name in ("pred_probs", "dynamics", "embeddings"):
            h.tag(name)
            h.array(getattr(self, name))
        for name in ("annotations", "row_scores", "pair_scores"):
            h.tag(name)
            h.frame(getattr(self, name))
        return h.hexdigest()

    @cached_property
    def given_embeddings_digest(self) -> str | None:
        """The first 16 hex digits of the sha256 of the given embeddings (their shape, then their
        bytes; :func:`sha256_of_array`), None without them: what a scan of precomputed embeddings
        is keyed by (:func:`labelaudit.scanning.embeddings_key`). Computed once per dataset
        object: 1.3 s for 1M x 384 float32 on this 2-core machine, which every page view paid
        when it asked whether the scan was stored."""
        if self.embeddings is None:
            return None
        a = np.asarray(self.embeddings)
        return str(sha256_of_array(a, prefix=str(a.shape).encode()).hexdigest()[:16])

    # ----------------------------------------------------------------- summaries
    def class_counts(self) -> pd.Series:
        """Rows per class, in ``classes`` order (classes without rows show 0)."""
        return self.frame[LABEL].value_counts().reindex(self.classes, fill_value=0)

    def summary(self) -> dict:
        counts = self.class_counts()
        lengths = self.frame[TEXT].str.len()
        return {
            "source": self.source,
            "rows": self.n,
            "classes": self.k,
            "rows_per_split": {
                s or "(none)": int(c) for s, c in self.frame[SPLIT].value_counts().items()
            },
            "smallest_class": (str(counts.idxmin()), int(counts.min())),
            "largest_class": (str(counts.idxmax()), int(counts.max())),
            "imbalance_ratio": float(counts.max() / max(counts.min(), 1)),
            "median_text_length": float(lengths.median()),
            "companions": self.companions(),
            "mapping": dict(self.mapping),
            "warnings": len(self.warnings),
        }

    def companions(self) -> dict[str, str]:
        out = {}
        if self.pred_probs is not None:
            out["pred_probs"] = (
                f"{self.pred_probs.shape[0]} x {self.pred_probs.shape[1]} predicted probabilities"
            )
        if self.annotations is not None:
            a = self.annotations
            out["annotations"] = (
                f"{len(a)} labels from {a['annotator_id'].nunique()} annotators on {a['item_id'].nunique()} items"
            )
        if self.dynamics is not None:
            e, n, k = self.dynamics.shape
            out["dynamics"] = f"{e} epochs x {n} rows x {k} classes of logits"
        if self.embeddings is not None:
            out["embeddings"] = (
                f"{self.embeddings.shape[0]} x {self.embeddings.shape[1]} embeddings"
            )
        if self.row_scores is not None:
            out["row_scores"] = (
                f"external scores: {', '.join(c for c in self.row_scores.columns if c != ID)}"
            )
        if self.pair_scores is not None:
            out["pair_scores"] = f"{len(self.pair_scores)} external influence pairs"
        return out

    def with_labels(self, labels: np.ndarray | list[str]) -> Dataset:
        """A copy whose given labels are replaced (class indices or names); companions are kept."""
        labels = np.asarray(labels)
        names = (
            np.asarray(self.classes, dtype=object)[labels] if labels.dtype.kind in "iu" else labels
        )
        frame = self.frame.copy()
        frame[LABEL] = pd.Series(names, dtype=object).astype(str).to_numpy()
        return Dataset(
            frame=frame,
            classes=list(self.classes),
            source=self.source,
            pred_probs=self.pred_probs,
            annotations=self.annotations,
            dynamics=self.dynamics,
            embeddings=self.embeddings,
            row_scores=self.row_scores,
            pair_scores=self.pair_scores,
            class_descriptions=dict(self.class_descriptions),
            mapping=dict(self.mapping),
            warnings=list(self.warnings),
        )

    def subset(self, mask: np.ndarray) -> Dataset:
        """Rows where ``mask`` is true, with row-aligned companions sliced to match."""
        mask = np.asarray(mask, dtype=bool)
        keep_ids = set(self.frame.loc[mask, ID])
        ann = self.annotations
        if ann is not None:
            ann = ann[ann["item_id"].isin(keep_ids)].reset_index(drop=True)
        rs = self.row_scores
        if rs is not None:
            rs = rs[rs[ID].isin(keep_ids)].reset_index(drop=True)
        return Dataset(
            frame=self.frame.loc[mask].reset_index(drop=True),
            classes=list(self.classes),
            source=self.source,
            pred_probs=None if self.pred_probs is None else self.pred_probs[mask],
            annotations=ann,
            dynamics=None if self.dynamics is None else self.dynamics[:, mask],
            embeddings=None if self.embeddings is None else self.embeddings[mask],
            row_scores=rs,
            pair_scores=self.pair_scores,
            class_descriptions=dict(self.class_descriptions),
            mapping=dict(self.mapping),
            warnings=list(self.warnings),
        )


def sha256_of_array(arr: np.ndarray, *, prefix: bytes = b"") -> Any:
    """sha256 of ``prefix`` + the array's C-order bytes, fed in blocks of rows
    (:func:`labelaudit.hashing.update_blocks`: no (N, D) copy)."""
    h = hashlib.sha256(prefix)
    update_blocks(h, np.asarray(arr))
    return h
