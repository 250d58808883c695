"""Reading one table file, whatever its format: the checks every format shares, then its reader."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from labelaudit.errors import DataError, Problem, Report
from labelaudit.io.checks import check_table
from labelaudit.io.formats import format_for, table_suffixes
from labelaudit.io.memory import check_size


def read_table(
    path: str | Path,
    *,
    encoding: str | None = None,
    what: str = "data",
    nested: tuple[str, ...] = (),
) -> pd.DataFrame:
    """Read a table file (CSV, TSV, Parquet, JSON Lines, … see :mod:`labelaudit.io.formats`).

    Returns the raw rows, shape (rows, columns), with stripped column names; text formats give
    ``str`` columns so ids like ``007`` keep their zeros. Raises DataError naming the file for a
    missing, unsupported, unreadable, empty, undecodable or oversized file, and for repeated column
    names, nested cells, NUL characters and sizes beyond the bounds of :mod:`labelaudit.io.checks`.
    ``what`` names the file's role in messages ("annotations", "scores");
    columns whose names fully match one of the patterns ``nested`` may hold lists (cartography's
    ``logits_epoch_<e>``).

    Example:
        >>> read_table("tests/data/bad/good.csv").columns.tolist()   # doctest: +SKIP
        ['id', 'text', 'label']
    """
    path = Path(path)
    rep = Report()
    if not path.exists():
        raise DataError(
            Problem(f"no such file: {path}", f"a path to the {what} file", file=path.name)
        )
    if path.is_dir():
        raise DataError(Problem(f"{path} is a folder", f"a {what} file", file=path.name))
    fmt = format_for(path)
    if fmt is None:
        raise DataError(
            Problem(
                f"unsupported file type '{path.suffix.lower() or '(none)'}'",
                f"one of {', '.join(table_suffixes())}",
                file=path.name,
                fix="export the data as CSV or Parquet",
            )
        )
    if not check_size(path, rep):
        rep.raise_if_errors()
    try:
        df = fmt.read(path, encoding)
    except OSError as e:
        raise DataError(
            Problem(f"cannot read the file ({e.strerror or e})", "a readable file", file=path.name)
        ) from None
    if df.empty:
        raise DataError(
            Problem(
                "the file has a header but no data rows"
                if len(df.columns)
                else "the file has no rows",
                "at least one data row",
                file=path.name,
            )
        )
    if not check_table(df, path.name, rep, nested=nested):
        rep.raise_if_errors()
    df.columns = [str(c).strip() for c in df.columns]
    return df
