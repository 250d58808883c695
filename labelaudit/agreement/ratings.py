"""Annotations in long format, encoded once as integer arrays for every agreement and truth method.

A :class:`Ratings` holds M ratings of I items by J annotators over K classes as three int64 arrays
(``item``, ``annotator``, ``label``) plus the names they index. Validation happens here, at the edge;
the metric and inference functions assume a valid ``Ratings`` and never check again.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
from scipy import sparse

from labelaudit.errors import DataError, Problem

#: Column names of the long format (see labelaudit.io.companions.annotations).
ITEM, ANNOTATOR, LABEL = "item_id", "annotator_id", "label"
_ALIASES = {
    "item": ITEM,
    "task": ITEM,
    "id": ITEM,
    "orig_id": ITEM,
    "annotator": ANNOTATOR,
    "worker": ANNOTATOR,
    "worker_id": ANNOTATOR,
    "rater": ANNOTATOR,
    "rater_id": ANNOTATOR,
    "response": LABEL,
}


@dataclass(frozen=True, eq=False)
class Ratings:
    """M ratings: rating m says annotator ``annotator[m]`` gave item ``item[m]`` the class ``label[m]``.

    ``item_ids`` (I,), ``annotator_ids`` (J,) and ``classes`` (K,) are the names behind the indices.
    The same annotator may rate an item more than once (Dawid & Skene's observer 1 does); every
    rating counts.

    Example:
        >>> r = Ratings.from_frame(pd.DataFrame({"item_id": ["a", "a", "b"], "annotator_id": ["x", "y", "x"],
        ...                                      "label": ["pos", "neg", "pos"]}))
        >>> r.n_items, r.n_annotators, r.classes
        (2, 2, ['neg', 'pos'])
    """

    item: np.ndarray
    annotator: np.ndarray
    label: np.ndarray
    item_ids: np.ndarray
    annotator_ids: np.ndarray
    classes: list[str]

    @property
    def n_ratings(self) -> int:
        return int(len(self.item))

    @property
    def n_items(self) -> int:
        return int(len(self.item_ids))

    @property
    def n_annotators(self) -> int:
        return int(len(self.annotator_ids))

    @property
    def k(self) -> int:
        return len(self.classes)

    @cached_property
    def counts(self) -> np.ndarray:
        """Votes per item and class, float64 (I, K)."""
        out = np.zeros((self.n_items, self.k))
        np.add.at(out, (self.item, self.label), 1.0)
        return out

    @cached_property
    def n_per_item(self) -> np.ndarray:
        """Ratings per item, int64 (I,)."""
        return np.bincount(self.item, minlength=self.n_items).astype(np.int64)

    @cached_property
    def n_per_annotator(self) -> np.ndarray:
        """Ratings per annotator, int64 (J,)."""
        return np.bincount(self.annotator, minlength=self.n_annotators).astype(np.int64)

    @cached_property
    def item_incidence(self) -> sparse.csr_matrix:
        """(I, M) 0/1 matrix: sums per-rating rows into per-item rows with one sparse product."""
        m = self.n_ratings
        return sparse.csr_matrix((np.ones(m), (self.item, np.arange(m))), shape=(self.n_items, m))

    @cached_property
    def annotator_label_incidence(self) -> sparse.csr_matrix:
        """(J*K, M) 0/1 matrix; row j*K + l collects the ratings in which annotator j said class l."""
        m = self.n_ratings
        rows = self.annotator * self.k + self.label
        return sparse.csr_matrix(
            (np.ones(m), (rows, np.arange(m))), shape=(self.n_annotators * self.k, m)
        )

    def to_frame(self) -> pd.DataFrame:
        """Back to long format with names: item_id, annotator_id, label."""
        return pd.DataFrame(
            {
                ITEM: self.item_ids[self.item],
                ANNOTATOR: self.annotator_ids[self.annotator],
                LABEL: np.asarray(self.classes, dtype=object)[self.label],
            }
        )

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_frame(
        cls,
        df: pd.DataFrame,
        *,
        classes: list[str] | None = None,
        file: str = "<annotations>",
        item_order: list[str] | None = None,
    ) -> Ratings:
        """Encode a long-format table (item_id, annotator_id, label[, timestamp]).

        ``classes``: the class list (labels outside it are an error); default the sorted unique labels.
        ``item_order``: ids fixing the item order (e.g. dataset order); items not rated are left out.
        Raises :class:`DataError` with one problem per kind of defect (missing columns, empty values,
        unknown labels, fewer than one rating).
        """
        df = df.rename(
            columns={
                c: _ALIASES[str(c).lower()]
                for c in df.columns
                if str(c).lower() in _ALIASES and _ALIASES[str(c).lower()] not in df.columns
            }
        )
        missing = [c for c in (ITEM, ANNOTATOR, LABEL) if c not in df.columns]
        if missing:
            raise DataError(
                Problem(
                    f"missing column(s) {missing} among {list(map(str, df.columns))}",
                    "columns item_id, annotator_id, label[, timestamp]",
                    file=file,
                    fix="rename the columns (worker/rater -> annotator_id, item/task -> item_id)",
                )
            )
        if df.empty:
            raise DataError(Problem("no ratings (0 rows)", "at least one rating", file=file))
        cols = {c: _as_str_series(df[c]) for c in (ITEM, ANNOTATOR, LABEL)}
        problems = []
        for c, s in cols.items():
            blank = (s == "").to_numpy()
            if blank.any():
                rows = (np.flatnonzero(blank) + 1).tolist()
                problems.append(
                    Problem(
                        f"{len(rows)} empty value(s) in rows {_rows_text(rows)}",
                        f"a {c} in every row",
                        file=file,
                        column=c,
                    )
                )
        if classes is None:
            classes = sorted(set(cols[LABEL][cols[LABEL] != ""].tolist()))
        else:
            unknown = (~cols[LABEL].isin(classes) & (cols[LABEL] != "")).to_numpy()
            if unknown.any():
                rows = (np.flatnonzero(unknown) + 1).tolist()
                vals = sorted(set(cols[LABEL][unknown].tolist()))
                problems.append(
                    Problem(
                        f"label(s) {vals[:5]} in rows {_rows_text(rows)} are not classes",
                        f"one of the {len(classes)} classes",
                        file=file,
                        column=LABEL,
                    )
                )
        if problems:
            raise DataError(problems)
        if item_order is not None:
            order = {v: i for i, v in enumerate(item_order)}
            rated = sorted(set(cols[ITEM].tolist()), key=lambda v: order.get(v, len(order)))
            item_ids = np.asarray(rated, dtype=object)
            lookup = {v: i for i, v in enumerate(rated)}
            item = cols[ITEM].map(lookup).to_numpy(dtype=np.int64)
        else:
            item, item_ids = pd.factorize(cols[ITEM], sort=False)
        annotator, annotator_ids = pd.factorize(cols[ANNOTATOR], sort=True)
        class_index = {c: i for i, c in enumerate(classes)}
        label = cols[LABEL].map(class_index).to_numpy(dtype=np.int64)
        return cls(
            item=np.asarray(item, dtype=np.int64),
            annotator=np.asarray(annotator, dtype=np.int64),
            label=label,
            item_ids=np.asarray(item_ids, dtype=object),
            annotator_ids=np.asarray(annotator_ids, dtype=object),
            classes=[str(c) for c in classes],
        )

    @classmethod
    def from_dataset(cls, ds) -> Ratings:
        """The ratings of a loaded :class:`~labelaudit.dataset.Dataset` (already validated), in dataset order."""
        if ds.annotations is None:
            raise DataError(
                Problem(
                    "the dataset has no annotations",
                    "a companion file item_id, annotator_id, label",
                    fix="load annotations (annotations*.csv beside the data, or --annotations FILE)",
                )
            )
        return cls.from_frame(
            ds.annotations, classes=list(ds.classes), item_order=ds.frame["id"].tolist()
        )


def _as_str_series(col: pd.Series) -> pd.Series:
    """Stripped strings, "" for missing; floats that are whole numbers lose their ".0" (ids read as floats)."""
    missing = col.isna().to_numpy()
    if pd.api.types.is_float_dtype(col):
        out = col.map(lambda v: "" if pd.isna(v) else _as_str(v))
    else:
        out = col.astype(str)  # vectorised: element-wise map was the slowest step on 100k ratings
    out = out.str.strip()
    out[missing] = ""
    return out.reset_index(drop=True)


def _as_str(v: object) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _rows_text(rows: list[int], limit: int = 5) -> str:
    head = ", ".join(map(str, rows[:limit]))
    return head + (f" and {len(rows) - limit} more" if len(rows) > limit else "")
