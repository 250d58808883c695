"""The one CSV writer: every CSV labelaudit writes (export, scan and agreement tables, influence,
the app's downloads) comes from :func:`to_csv_bytes` / :func:`write_csv`.

Two promises:

* **It reads back to the same values.** Cells are quoted when they hold a comma, a quote, a carriage
  return or a line feed (RFC 4180, rows end in CRLF), so a text with a bare ``\\r`` stays one cell of
  one row. A NUL character cannot be carried (labelaudit's reader, like most CSV readers, refuses
  NUL as a sign of a binary file): writing one is refused with the row and column, and the advice to
  use Parquet. A missing value (None/NaN) is written as an empty cell.
* **A spreadsheet does not run a cell as a formula.** A text cell that a spreadsheet would evaluate
  gets one leading apostrophe (OWASP, "CSV Injection"): a cell whose first character is ``=``, ``+``,
  ``-``, ``@``, a tab, a carriage return or a line feed, or whose first character after leading
  whitespace (spaces, tabs, line breaks, no-break and full-width spaces) is one of ``= + - @`` or their
  full-width forms ``＝ ＋ － ＠``. Plain numbers (``-1``, ``+3.5``, ``-2e-3``) are left as they are:
  a spreadsheet reads them as numbers, and ids like ``-1`` stay readable.

Restoring the original values (:func:`restore_formulas`): a cell that starts with an apostrophe had
one added if the rest of the cell would itself be neutralised, so remove the first character of
exactly those cells. Cells that start with an apostrophe for their own reasons (``'tis``) are
written unchanged, and a cell that was already neutralised (``'=1``) is escaped once more
(``''=1``), so the rule is exact: ``restore_formulas(read_back) == original``.
Parquet files keep the values unchanged (typed data, never evaluated).
"""

from __future__ import annotations

import csv
import io
import os
import re
import tempfile
from pathlib import Path

import pandas as pd

from labelaudit.errors import DataError, Problem

#: First characters that make a spreadsheet evaluate a cell (ASCII and full-width forms).
FORMULA_CHARS = frozenset("=+-@\uff1d\uff0b\uff0d\uff20")
#: Characters that, at the very start of a cell, make some spreadsheets evaluate or shift it.
CONTROL_STARTS = frozenset("\t\r\n")
#: A plain number: what a spreadsheet shows as a number, never runs.
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def _is_formula(text: str) -> bool:
    if not text:
        return False
    if text[0] in CONTROL_STARTS:
        return True
    stripped = text.lstrip()  # str.lstrip drops every Unicode whitespace (NBSP, U+3000, ...)
    if not stripped or stripped[0] not in FORMULA_CHARS:
        return False
    return not (len(stripped) == len(text) and _NUMBER.fullmatch(text))


def needs_neutralising(text: str) -> bool:
    """Whether :func:`neutralise` adds an apostrophe to ``text``.

    Example:
        >>> [needs_neutralising(t) for t in ["=1+1", " =cmd", "\\uff1dA1", "-1", "ok", "'=x"]]
        [True, True, True, False, False, True]
    """
    # An apostrophe is neither whitespace nor a formula character, so this is "is a formula, or is
    # apostrophes followed by something that needs neutralising": the rule that makes restore exact.
    return _is_formula(text.lstrip("'"))


def neutralise(value: object) -> object:
    """``value`` with a leading apostrophe when a spreadsheet would run it; non-text unchanged."""
    return "'" + value if isinstance(value, str) and needs_neutralising(value) else value


def restore(value: object) -> object:
    """The inverse of :func:`neutralise`: ``restore(neutralise(v)) == v`` for every string."""
    if isinstance(value, str) and value.startswith("'") and needs_neutralising(value[1:]):
        return value[1:]
    return value


def _text_columns(df: pd.DataFrame) -> list:
    return [
        c
        for c in df.columns
        if df[c].dtype == object
        or pd.api.types.is_string_dtype(df[c])
        or isinstance(df[c].dtype, pd.CategoricalDtype)
    ]


def neutralise_formulas(df: pd.DataFrame) -> pd.DataFrame:
    """A copy with every text cell (and column name) passed through :func:`neutralise`.

    Example:
        >>> neutralise_formulas(pd.DataFrame({"t": ["=1+1", "ok", "-2", " @SUM(A1)"]}))["t"].tolist()
        ["'=1+1", 'ok', '-2', "' @SUM(A1)"]
    """
    out = df.copy()
    out.columns = [neutralise(c) for c in out.columns]
    for col in _text_columns(out):
        out[col] = out[col].astype(object).map(neutralise)
    return out


def restore_formulas(df: pd.DataFrame) -> pd.DataFrame:
    """The values before :func:`neutralise_formulas` (column names included), for a CSV read back.

    Example:
        >>> restore_formulas(pd.DataFrame({"t": ["'=1+1", "'tis", "''=x"]}))["t"].tolist()
        ['=1+1', "'tis", "'=x"]
    """
    out = df.copy()
    out.columns = [restore(c) for c in out.columns]
    for col in _text_columns(out):
        out[col] = out[col].astype(object).map(restore)
    return out


def _check_no_nul(df: pd.DataFrame, what: str) -> None:
    for j, col in enumerate(df.columns):
        if isinstance(col, str) and "\x00" in col:
            raise DataError(_nul_problem(what, None, f"(header, column {j + 1})"))
    for col in _text_columns(df):
        hits = df[col].astype(object).map(lambda v: isinstance(v, str) and "\x00" in v)
        if hits.any():
            row = int(hits.to_numpy().argmax()) + 1
            raise DataError(_nul_problem(what, row, str(col)))


def _nul_problem(what: str, row: int | None, column: str) -> Problem:
    return Problem(
        "a NUL character, which CSV readers (labelaudit's included) refuse as binary data",
        "text without NUL characters in a CSV file",
        file=what,
        row=row,
        column=column,
        fix="export as Parquet (.parquet), which keeps every character, or remove the NUL",
    )


def to_csv_bytes(df: pd.DataFrame, *, what: str = "CSV output") -> bytes:
    """UTF-8 CSV of ``df`` (no index; formulas neutralised; CR/LF/quotes quoted; CRLF rows).

    ``what`` names the output in the message of a refused NUL character (:class:`DataError`).
    """
    _check_no_nul(df, what)
    buf = io.StringIO()
    neutralise_formulas(df).to_csv(
        buf, index=False, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL, doublequote=True
    )
    return buf.getvalue().encode("utf-8")


def write_csv(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write :func:`to_csv_bytes` of ``df`` to ``path`` atomically (a temporary file, then a rename)."""
    p = Path(path)
    data = to_csv_bytes(df, what=p.name)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p


def read_csv_back(data: bytes | str | os.PathLike) -> pd.DataFrame:
    """A CSV written by :func:`to_csv_bytes` (bytes, or a file path) as text cells, formulas restored.

    Every cell is a ``str`` (empty for a missing value), as labelaudit's own reader returns them.
    """
    raw = data if isinstance(data, bytes) else Path(data).read_bytes()
    df = pd.read_csv(
        io.BytesIO(raw), dtype=str, keep_default_na=False, na_values=[], encoding="utf-8"
    )
    return restore_formulas(df)
