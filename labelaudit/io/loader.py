"""The public loader: rows, columns, the canonical frame, classes, then the companions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from labelaudit.dataset import SPLIT, Dataset
from labelaudit.errors import DataError, Problem, Report
from labelaudit.io.canonical import canonical_frame, resolve_classes
from labelaudit.io.checks import check_table
from labelaudit.io.columns import is_prob_column, map_columns
from labelaudit.io.companions import all_companions
from labelaudit.io.companions.classes import read_classes
from labelaudit.io.companions.probs import probs_from_columns
from labelaudit.io.folder import folder_companions, read_folder
from labelaudit.io.sources import source_reader
from labelaudit.io.tables import read_table


def load_dataset(
    data: str | Path | pd.DataFrame,
    *,
    text_col: str | None = None,
    label_col: str | None = None,
    id_col: str | None = None,
    split_col: str | None = None,
    probs: str | Path | np.ndarray | None = None,
    annotations: str | Path | pd.DataFrame | None = None,
    dynamics: str | Path | np.ndarray | None = None,
    embeddings: str | Path | np.ndarray | None = None,
    scores: str | Path | pd.DataFrame | None = None,
    classes: list[str] | str | Path | None = None,
    encoding: str | None = None,
    **more: Any,
) -> Dataset:
    """Load, map and validate a dataset and its companions.

    ``data`` is a CSV/TSV/Parquet/JSONL file, a folder of split files (``train.csv``, ``test.csv``,
    … become the ``split`` column; a ``categories.json`` beside them gives the class list), or a
    DataFrame. Columns are detected by name unless given. Without an id column, ids are the 0-based
    row numbers as strings.

    Companions: ``probs`` (N, K) ``.npy`` or columns named ``prob_<class>``; ``annotations`` long
    format ``item_id, annotator_id, label[, timestamp]``; ``dynamics`` (E, N, K) ``.npy`` or a
    folder / glob of cartography ``dynamics_epoch_*.jsonl``; ``embeddings`` (N, D) ``.npy``;
    ``scores`` per-row (``id`` + numeric columns) or per-pair (``train_id, query_id, score``). Any
    other companion registered in :mod:`labelaudit.io.companions` is passed by its name in ``more``.

    Returns a valid :class:`Dataset` (non-fatal problems in ``.warnings``); raises
    :class:`~labelaudit.errors.DataError` listing every problem otherwise.

    Example:
        >>> ds = load_dataset("sample_data/banking77")          # doctest: +SKIP
        >>> ds.n, ds.k                                           # doctest: +SKIP
        (13083, 77)
    """
    rep = Report()
    readable = {c.name for c in all_companions() if c.read is not None}
    unknown = sorted(set(more) - readable)
    if unknown:
        raise TypeError(
            f"load_dataset() got unknown companion(s) {unknown}; known: {sorted(readable)}"
        )
    given = {
        "probs": probs,
        "annotations": annotations,
        "dynamics": dynamics,
        "embeddings": embeddings,
        "scores": scores,
        **more,
    }
    companions: dict[str, Any] = {name: given.get(name) for name in sorted(readable)}
    class_list: list[str] | None = None
    descriptions: dict[str, str] = {}

    # ---- the rows
    if isinstance(data, pd.DataFrame):
        if data.empty:
            raise DataError(
                Problem("the DataFrame has no rows", "at least one row", file="<DataFrame>")
            )
        file = source = "<DataFrame>"
        if not check_table(data, file, rep):
            rep.raise_if_errors()
        df = data.copy()
        df.columns = [str(c).strip() for c in df.columns]
    else:
        path = Path(data)
        source = str(path)
        other = source_reader(path)
        if other is not None:
            passed = {k: v for k, v in companions.items() if v is not None}
            return other[1](
                path,
                text_col=text_col,
                label_col=label_col,
                id_col=id_col,
                split_col=split_col,
                encoding=encoding,
                **({"classes": classes} if classes is not None else {}),
                **passed,
            )
        if path.is_dir():
            df, file, class_list, descriptions = read_folder(path, encoding, split_col, rep)
            for name, found in folder_companions(path).items():
                if companions.get(name) is None:  # what the caller passed wins
                    companions[name] = found
            if split_col is None and SPLIT in df.columns:
                split_col = SPLIT
        else:
            df = read_table(path, encoding=encoding)
            file = path.name
    rep.raise_if_errors()

    # ---- columns and the canonical frame
    cols = map_columns(
        df,
        text_col=text_col,
        label_col=label_col,
        id_col=id_col,
        split_col=split_col,
        file=file,
        rep=rep,
    )
    rep.raise_if_errors()
    frame = canonical_frame(df, cols, file, rep)
    if classes is not None:
        class_list, descriptions = read_classes(classes, rep)
    assert cols.label is not None
    class_list = resolve_classes(frame["label"], class_list, cols.label, file, rep)
    rep.raise_if_errors()
    ds = Dataset(
        frame=frame,
        classes=class_list,
        source=source,
        class_descriptions=descriptions,
        mapping=cols.how,
    )

    # ---- companions
    _read_companions(ds, companions, df, file, rep)
    rep.raise_if_errors()
    ds.warnings = rep.warnings
    return ds


def _read_companions(
    ds: Dataset, companions: dict[str, Any], df: pd.DataFrame, file: str, rep: Report
) -> None:
    """Each registered companion that was given (or found in the folder), in reading order."""
    prob_cols = [c for c in df.columns if is_prob_column(c)]
    if companions.get("probs") is None and prob_cols:
        ds.pred_probs = probs_from_columns(df, prob_cols, ds.classes, file, rep)
    for c in all_companions():
        source = companions.get(c.name)
        if c.read is not None and source is not None:
            c.read(source, ds, rep)


def validate(
    data: str | Path | pd.DataFrame, **options: Any
) -> tuple[Dataset | None, list[Problem]]:
    """Load ``data`` like :func:`load_dataset` but return ``(dataset or None, problems)`` instead of
    raising.

    Example:
        >>> ds, problems = validate("tests/data/bad/duplicate_ids.csv")   # doctest: +SKIP
        >>> ds is None, problems[0].column                                # doctest: +SKIP
        (True, 'id')
    """
    try:
        ds = load_dataset(data, **options)
    except DataError as e:
        return None, e.problems
    return ds, list(ds.warnings)
