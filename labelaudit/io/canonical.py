"""Validation of the canonical frame: ``id, text, label, split`` plus metadata, and the class list.

The invariants established here are the ones :class:`~labelaudit.dataset.Dataset` documents.
"""

from __future__ import annotations

import pandas as pd

from labelaudit.dataset import ID, LABEL, SPLIT, TEXT
from labelaudit.errors import Report
from labelaudit.io.checks import check_cells, limits, warn_lookalikes
from labelaudit.io.columns import ColumnMapping, is_prob_column
from labelaudit.io.rows import rows_of, rows_text, scalar_str


def canonical_frame(df: pd.DataFrame, cols: ColumnMapping, file: str, rep: Report) -> pd.DataFrame:
    """The frame with columns ``id, text, label, split`` then the source's metadata columns.

    Every cell of the four canonical columns is a ``str`` (missing values become ``""``); ids are
    the 0-based row numbers when there is no id column. Empty texts, missing labels and missing or
    repeated ids go to ``rep`` as errors naming their rows. Probability columns are left out (they
    are the ``probs`` companion); a metadata column named like a canonical one becomes
    ``meta_<name>``.
    """
    assert cols.text is not None and cols.label is not None

    def as_str(col: str) -> pd.Series:
        sr = df[col]
        if isinstance(sr.dtype, pd.StringDtype):
            # text formats give pandas' Arrow-backed str columns: already text, and a detour
            # through Python objects would hold every text twice (bench/bench_memory.py)
            return sr.fillna("")
        missing = sr.isna()
        out = sr.astype(object).where(~missing, "")
        out = out.map(lambda v: v if isinstance(v, str) else scalar_str(v))
        return out.astype(object)

    text = as_str(cols.text)
    empty = text.str.strip() == ""
    if empty.any():
        rows = rows_of(empty)
        rep.error(
            f"{len(rows)} empty text(s) in {rows_text(rows)}",
            "a non-empty text in every row",
            file=file,
            column=cols.text,
            fix="remove those rows or fill in their text",
        )
    label = as_str(cols.label).str.strip()
    nolab = label == ""
    if nolab.any():
        rows = rows_of(nolab)
        rep.error(
            f"{len(rows)} missing label(s) in {rows_text(rows)}",
            "a label in every row",
            file=file,
            column=cols.label,
            fix="label those rows or remove them",
        )
    if cols.id:
        ids = as_str(cols.id).str.strip()
        _check_ids(ids, cols.id, file, rep)
    else:
        ids = pd.Series([str(r) for r in range(len(df))], dtype=object)
    split = (
        as_str(cols.split).str.strip() if cols.split else pd.Series([""] * len(df), dtype=object)
    )

    short = {cols.label: label, cols.id: ids, cols.split: split}
    check_cells(
        pd.DataFrame({c: _values(v) for c, v in short.items() if c}),
        file,
        rep,
        max_chars=limits().max_value_chars,
    )

    used = {cols.text, cols.label, cols.id, cols.split}
    meta_cols = [c for c in df.columns if c not in used and not is_prob_column(c)]
    frame = pd.DataFrame(
        {
            ID: _values(ids),
            TEXT: _values(text),
            LABEL: _values(label),
            SPLIT: _values(split),
        }
    )
    for c in meta_cols:
        name = c if c not in (ID, TEXT, LABEL, SPLIT) else f"meta_{c}"
        frame[name] = _values(df[c])
    return frame


def _values(sr: pd.Series) -> object:
    """The column's values without its index; Arrow-backed text stays Arrow-backed (``to_numpy``
    would turn every text into a Python object, several times its size)."""
    return sr.array if isinstance(sr.dtype, pd.StringDtype) else sr.to_numpy()


def _check_ids(ids: pd.Series, column: str, file: str, rep: Report) -> None:
    blank = ids == ""
    if blank.any():
        rows = rows_of(blank)
        rep.error(
            f"{len(rows)} missing id(s) in {rows_text(rows)}",
            "an id in every row",
            file=file,
            column=column,
        )
    dup = ids.duplicated(keep=False) & ~blank
    if dup.any():
        first = ids[dup].iloc[0]
        rows = rows_of(ids == first)
        rep.error(
            f"{int(ids[dup].nunique())} id(s) appear more than once, e.g. '{first}' in "
            f"{rows_text(rows)}",
            "unique ids",
            file=file,
            column=column,
            fix="deduplicate the rows or pick another id column",
        )


def resolve_classes(
    labels: pd.Series, class_list: list[str] | None, column: str, file: str, rep: Report
) -> list[str]:
    """The class list: ``class_list`` when given (every label must be in it), else the sorted
    labels.

    ``labels`` is the canonical label column (``""`` for a missing label, already reported). Labels
    outside a given list, a list that repeats a name, and fewer than two classes among the labels
    are errors in ``rep``; labels that differ only by case, spacing, Unicode form or number spelling
    (``Pos``/``pos``, ``1``/``1.0``) are a warning that shows every such group.
    """
    given = labels != ""
    counts = labels[given].value_counts()
    present = sorted(counts.index.tolist())
    if class_list is None:
        class_list = present
        warn_lookalikes(present, file, rep, column=column, counts=counts.to_dict())
    else:
        unknown = sorted(set(present) - set(class_list))
        if unknown:
            rows = rows_of(labels.isin(unknown))
            rep.error(
                f"label(s) {unknown[:5]} in {rows_text(rows)} are not in the class list",
                f"one of the {len(class_list)} listed classes",
                file=file,
                column=column,
            )
    if len(set(present)) < 2 and given.any():
        rep.error(
            f"every row has the same label '{present[0]}'" if present else "no labels",
            "at least two classes",
            file=file,
            column=column,
            fix="label errors need at least two classes to tell apart",
        )
    return list(class_list)
