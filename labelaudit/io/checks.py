"""Checks every input shares, whatever reads it: headers, cell values, class lists, companion arrays
and the size bounds of every input dimension.

``validate``, ``scan``, the library and the Data page all load through
:func:`labelaudit.io.load_dataset`, so a check written here holds everywhere. Each check reports to
a :class:`~labelaudit.errors.Report` (file, row, column, found, expected, fix) and returns what the
caller may use; none raises anything but :class:`~labelaudit.errors.DataError`. A companion reader
calls :func:`check_array` with its own
:class:`ArraySpec`, so a new companion gets the dtype, shape, finiteness and magnitude checks by
declaring what it expects.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from labelaudit.errors import Report, UsageError
from labelaudit.io.rows import rows_of, rows_text

# ----------------------------------------------------------------------------- bounds


@dataclass(frozen=True)
class Limits:
    """Bounds on every input dimension; beyond one, the input is refused before slow parsing.

    Each bound can be raised with an environment variable of the same name in capitals, prefixed
    ``LABELAUDIT_`` (``LABELAUDIT_MAX_ROWS=20000000``).
    """

    #: A data or companion file larger than this is refused before it is read.
    max_file_bytes: int = 8 * 2**30
    #: Rows of a table (dataset, annotations, scores).
    max_rows: int = 10_000_000
    #: Columns of a table.
    max_columns: int = 10_000
    #: Characters in one column name.
    max_column_name_chars: int = 1_000
    #: Characters in one text (the embedding model reads the first few hundred tokens).
    max_text_chars: int = 1_000_000
    #: Characters in one label, id or split value.
    max_value_chars: int = 10_000
    #: Elements of a companion array (probabilities, embeddings, dynamics).
    max_array_elements: int = 2_000_000_000


def limits() -> Limits:
    """The bounds in force: the defaults of :class:`Limits`, each overridable from the environment.

    Example:
        >>> limits().max_rows >= 1_000_000
        True
    """
    values = {}
    for name in Limits.__dataclass_fields__:
        var = f"LABELAUDIT_{name.upper()}"
        raw = os.environ.get(var, "").strip()
        if raw:
            try:
                values[name] = int(raw.replace("_", ""))
            except ValueError:
                raise UsageError(f"{var}={raw!r} is not a whole number of {_UNITS[name]}") from None
            if values[name] < 1:
                raise UsageError(f"{var}={raw!r}: a bound must be at least 1")
    return Limits(**values)


_UNITS = {
    "max_file_bytes": "bytes",
    "max_rows": "rows",
    "max_columns": "columns",
    "max_column_name_chars": "characters",
    "max_text_chars": "characters",
    "max_value_chars": "characters",
    "max_array_elements": "values",
}


def bound_fix(name: str) -> str:
    """How to raise bound ``name`` (``"max_rows"``): the environment variable that does it."""
    return f"sample or split the input, or raise the bound with LABELAUDIT_{name.upper()}"


def bound_error(rep: Report, name: str, file: str, found: str, expected: str) -> bool:
    """Record that an input is over the bound ``name`` (with how to raise it); returns False."""
    rep.error(found, expected, file=file, fix=bound_fix(name))
    return False


def check_file_bytes(size: int, file: str, rep: Report, what: str = "file") -> bool:
    """True when a file of ``size`` bytes is within ``max_file_bytes``; else an error in ``rep``."""
    bound = limits().max_file_bytes
    if size > bound:
        found = f"the {what} is {size / 2**30:.2f} GiB, above the bound of {bound / 2**30:.2f} GiB"
        return bound_error(rep, "max_file_bytes", file, found, f"a file of at most {bound:,} bytes")
    return True


def check_row_count(n_rows: int, file: str, rep: Report) -> bool:
    """True when ``n_rows`` is within ``max_rows``; else an error in ``rep``."""
    bound = limits().max_rows
    if n_rows > bound:
        found = f"{n_rows:,} rows or more, above the bound of {bound:,} rows"
        return bound_error(rep, "max_rows", file, found, f"at most {bound:,} rows")
    return True


# ----------------------------------------------------------------------------- headers


def check_header(columns: Sequence[object], file: str, rep: Report) -> bool:
    """True when the column names are usable: within the width bounds, none empty, none repeated
    once surrounding spaces are stripped (``text, text`` names the same column twice, and pandas
    renames a repeated ``text`` to ``text.1``). Errors go to ``rep``."""
    lim = limits()
    ok = True
    if len(columns) > lim.max_columns:
        found = f"{len(columns):,} columns, above the bound of {lim.max_columns:,}"
        return bound_error(rep, "max_columns", file, found, f"at most {lim.max_columns:,} columns")
    names = [str(c).strip() for c in columns]
    long = [n for n in names if len(n) > lim.max_column_name_chars]
    if long:
        rep.error(
            f"a column name of {len(long[0]):,} characters (starting {long[0][:40]!r})",
            f"column names of at most {lim.max_column_name_chars:,} characters",
            file=file,
            fix="check that the first line is a header and the separator is right",
        )
        ok = False
    raw = [str(c) for c in columns]
    repeated = _repeated_names(names, raw)
    if repeated:
        shown = ", ".join(
            f"'{name}' ({' and '.join(repr(r) for r in spellings)})"
            if len(set(spellings)) > 1
            else f"'{name}'"
            for name, spellings in repeated.items()
        )
        rep.error(
            f"the header repeats column names: {shown}",
            "unique column names (surrounding spaces do not count)",
            file=file,
            fix="rename one of the repeated columns",
        )
        ok = False
    return ok


def _repeated_names(names: list[str], raw: list[str]) -> dict[str, list[str]]:
    """``{stripped name: its spellings}`` for names that occur more than once."""
    by_name: dict[str, list[str]] = {}
    for n, r in zip(names, raw, strict=True):
        by_name.setdefault(n, []).append(r)
    out = {n: rs for n, rs in by_name.items() if len(rs) > 1}
    # pandas' mangling of a repeated CSV header: "text", "text.1", "text.2"
    present = set(names)
    for n, r in zip(names, raw, strict=True):
        m = re.fullmatch(r"(.+)\.(\d+)", n)
        if m and m.group(1) in present and m.group(1) not in out:
            out[m.group(1)] = [m.group(1), r]
    return out


# ----------------------------------------------------------------------------- cells

#: Cell values that are not flat: Parquet list/struct columns, JSON arrays and objects.
_NESTED_TYPES = (dict, list, tuple, set, np.ndarray)


def check_table(df: pd.DataFrame, file: str, rep: Report, *, nested: tuple[str, ...] = ()) -> bool:
    """True when a raw table is usable as rows: within the row bound, a clean header
    (:func:`check_header`) and flat cells (:func:`check_cells`; columns whose names fully match a
    pattern of ``nested`` may hold lists). Errors go to ``rep``."""
    if not check_row_count(len(df), file, rep):
        return False
    if not check_header(list(df.columns), file, rep):
        return False
    flat = [c for c in df.columns if not any(re.fullmatch(p, str(c).strip()) for p in nested)]
    return check_cells(df[flat] if len(flat) < len(df.columns) else df, file, rep)


def check_cells(df: pd.DataFrame, file: str, rep: Report, *, max_chars: int | None = None) -> bool:
    """True when every cell is a flat value: no nested lists or objects (they would be turned into
    their ``repr``), no NUL character in any text, no text longer than ``max_chars`` (default
    ``max_text_chars``). Errors name the column and the rows.
    """
    bound = limits().max_text_chars if max_chars is None else max_chars
    ok = True
    for c in df.columns:
        sr = df[c]
        if sr.dtype.kind not in "OU" and not isinstance(sr.dtype, pd.StringDtype):
            continue
        kind = pd.api.types.infer_dtype(sr, skipna=True)
        if kind not in ("string", "empty"):
            nested = np.fromiter(
                (isinstance(v, _NESTED_TYPES) for v in sr), dtype=bool, count=len(sr)
            )
            if nested.any():
                rows = rows_of(nested)
                first = sr[nested].iloc[0]
                rep.error(
                    f"{len(rows)} nested value(s) ({type(first).__name__}, e.g. {_short(first)}) "
                    f"in {rows_text(rows)}",
                    "one plain value (text or number) per cell",
                    file=file,
                    column=str(c),
                    fix="flatten the column (one column per field) or drop it before loading",
                )
                ok = False
                continue
        if kind == "string":
            strs = sr.fillna("")
        else:
            strs = sr.where(sr.map(lambda v: isinstance(v, str)), "")
        nul = strs.str.contains("\x00", regex=False).to_numpy(dtype=bool)
        if nul.any():
            rows = rows_of(nul)
            rep.error(
                f"a NUL character (\\x00) in {rows_text(rows)}",
                "text without NUL characters",
                file=file,
                column=str(c),
                fix="remove the NUL bytes (the file may be partly binary or badly exported)",
            )
            ok = False
        long = (strs.str.len() > bound).to_numpy(dtype=bool)
        if long.any():
            rows = rows_of(long)
            rep.error(
                f"{len(rows)} value(s) longer than {bound:,} characters in {rows_text(rows)}",
                f"at most {bound:,} characters per value",
                file=file,
                column=str(c),
                fix=bound_fix("max_text_chars" if max_chars is None else "max_value_chars"),
            )
            ok = False
    return ok


def _short(v: object, n: int = 40) -> str:
    r = repr(v.tolist() if isinstance(v, np.ndarray) else v)
    return r if len(r) <= n else r[: n - 3] + "..."


# ----------------------------------------------------------------------------- class lists


def label_key(label: str) -> str:
    """What two labels that look alike share: NFKC-normalised, case-folded, runs of whitespace as
    one space, and a number in one spelling (``1``, ``1.0`` and ``01`` share ``1``).

    Example:
        >>> label_key("Card  Arrival") == label_key("card arrival")
        True
        >>> label_key("1.0") == label_key("1"), label_key("cafe\\u0301") == label_key("caf\\u00e9")
        (True, True)
    """
    k = " ".join(unicodedata.normalize("NFKC", label).casefold().split())
    try:
        x = float(k)
    except ValueError:
        return k
    if np.isfinite(x):
        return repr(int(x)) if x.is_integer() and abs(x) < 2**63 else repr(x)
    return k


def lookalike_groups(labels: Iterable[str]) -> list[list[str]]:
    """Groups of distinct labels that differ only by case, whitespace, Unicode normalisation or the
    spelling of a number, each sorted, largest group first.

    Example:
        >>> lookalike_groups(["pos", "Pos", "neg", "1", "1.0", "2"])
        [['1', '1.0'], ['Pos', 'pos']]
    """
    by_key: dict[str, set[str]] = {}
    for lab in labels:
        by_key.setdefault(label_key(lab), set()).add(lab)
    groups = [sorted(g) for g in by_key.values() if len(g) > 1]
    return sorted(groups, key=lambda g: (-len(g), g))


def check_class_list(
    classes: Sequence[str], file: str, rep: Report, column: str | None = None
) -> bool:
    """True when ``classes`` has no repeated name; errors for repeats, one warning listing the
    groups
    of look-alike classes (they stay separate classes, since they may be meant)."""
    seen: dict[str, int] = {}
    for c in classes:
        seen[c] = seen.get(c, 0) + 1
    dup = [c for c, n in seen.items() if n > 1]
    if dup:
        rep.error(
            f"the class list repeats {len(dup)} name(s): {dup[:5]}",
            "each class once",
            file=file,
            fix="remove the repeated names from the class list",
        )
    warn_lookalikes(list(seen), file, rep, column=column)
    return not dup


def warn_lookalikes(
    labels: Sequence[str],
    file: str,
    rep: Report,
    column: str | None = None,
    counts: dict[str, int] | None = None,
) -> list[list[str]]:
    """Warn (once, every group shown) when labels differ only by case, whitespace, Unicode form or
    number spelling; they are kept as separate classes. Returns the groups."""
    groups = lookalike_groups(labels)
    if groups:

        def one(lab: str, group: list[str]) -> str:
            # labels that differ only in Unicode form print alike: show their code points
            nfc = [unicodedata.normalize("NFC", g) for g in group]
            shown = ascii(lab) if len(set(nfc)) < len(group) else repr(lab)
            if counts and lab in counts:
                n = counts[lab]
                return f"{shown} ({n:,} row{'' if n == 1 else 's'})"
            return shown

        shown = "; ".join(" vs ".join(one(lab, g) for lab in g) for g in groups[:10])
        more = f"; and {len(groups) - 10} more group(s)" if len(groups) > 10 else ""
        rep.warn(
            f"{len(groups)} group(s) of labels that differ only by case, spacing, Unicode form or "
            f"number spelling, kept as separate classes: {shown}{more}",
            "one spelling per class",
            file=file,
            column=column,
            fix="if they are the same class, rewrite its labels to one spelling in the data",
        )
    return groups


# ----------------------------------------------------------------------------- companion arrays


#: Values of a companion array checked at once by :func:`check_array` (a float64 block of 32 MiB
#: and its masks), so checking a large array costs O(block) memory, not a float64 copy of it.
CHECK_BLOCK_ELEMENTS = 2**22


@dataclass(frozen=True)
class ArraySpec:
    """What a companion array must be.

    ``shape`` has one entry per dimension: an int (that exact size) or None (any size >= 1);
    ``symbols`` names each dimension in messages (``("N", "D")``) and ``names`` says what it is
    (``("rows", "dimensions")``); the dimension named ``"rows"`` is the one problems cite rows of.
    ``max_abs`` bounds the magnitude: values beyond it overflow the float32 arithmetic downstream
    (an L2 norm of D values squares them).
    """

    what: str
    shape: tuple[int | None, ...]
    symbols: tuple[str, ...]
    names: tuple[str, ...]
    dtype: type = np.float32
    max_abs: float = 1e6


#: What each refused NumPy dtype kind holds, for messages.
_KIND_NAMES = {
    "U": "text",
    "S": "bytes",
    "O": "Python objects",
    "b": "booleans",
    "c": "complex numbers",
    "M": "dates",
    "m": "durations",
    "V": "records",
}


def check_dtype(arr: np.ndarray, what: str, file: str, rep: Report) -> bool:
    """True for real numbers (int, unsigned, float); strings, objects, booleans, complex are
    refused."""
    if arr.dtype.kind in "fiu":
        return True
    rep.error(
        f"an array of {_KIND_NAMES.get(arr.dtype.kind, 'non-numbers')} (dtype {str(arr.dtype)!r})",
        f"real numbers (float) for the {what}",
        file=file,
        fix="save the array as float32 or float64",
    )
    return False


def check_array(arr: object, spec: ArraySpec, file: str, rep: Report) -> np.ndarray | None:
    """``arr`` as a ``spec.dtype`` array when it is a real numeric array of ``spec.shape`` with
    finite values within ``spec.max_abs``; else None with one error in ``rep``.

    Refused, each with its own message: non-arrays, strings, objects, booleans, complex numbers,
    another number of dimensions or size, empty dimensions, more than ``max_array_elements``
    elements, NaN or infinity and values beyond the magnitude bound (both with their rows).

    Example:
        >>> spec = ArraySpec("embeddings", (3, None), ("N", "D"), ("rows", "dimensions"))
        >>> check_array(np.ones((3, 2)), spec, "e.npy", Report()).dtype
        dtype('float32')
        >>> rep = Report()
        >>> check_array(np.array([["a"]] * 3), spec, "e.npy", rep) is None
        True
        >>> rep.errors[0].found
        "an array of text (dtype '<U1')"
    """
    if not isinstance(arr, np.ndarray):
        try:
            arr = np.asarray(arr)
        except (ValueError, TypeError):
            rep.error(
                f"a {type(arr).__name__} that is not an array",
                f"a numeric array for the {spec.what}",
                file=file,
            )
            return None
    if not check_dtype(arr, spec.what, file, rep):
        return None
    shape_text = (
        "("
        + ", ".join(
            s if n is None else str(n) for n, s in zip(spec.shape, spec.symbols, strict=True)
        )
        + ")"
    )
    expected = f"shape {shape_text}: " + " x ".join(spec.names)
    if arr.ndim != len(spec.shape):
        rep.error(f"an array of shape {arr.shape}", expected, file=file)
        return None
    for size, want, name in zip(arr.shape, spec.shape, spec.names, strict=True):
        if (want is not None and size != want) or size == 0:
            rep.error(
                f"an array of shape {arr.shape} ({size} {name})",
                expected,
                file=file,
                fix="one entry per dataset row, in the dataset's row order"
                if name == "rows"
                else None,
            )
            return None
    bound = limits().max_array_elements
    if arr.size > bound:
        found = f"{arr.size:,} values, above the bound of {bound:,}"
        bound_error(rep, "max_array_elements", file, found, f"at most {bound:,} values")
        return None
    axis = spec.names.index("rows") if "rows" in spec.names else 0
    # In blocks of rows, each one converted to float64 on its own: a float64 copy of the whole
    # array and its masks (measured: 9.3 GiB RSS for 1M x 384 float32 embeddings) never exist.
    rows = np.moveaxis(arr, axis, 0)
    n_rows = rows.shape[0]
    per_row = max(1, int(np.prod(rows.shape[1:])))
    step = max(1, CHECK_BLOCK_ELEMENTS // per_row)
    nonfinite = np.zeros(n_rows, dtype=bool)
    big = np.zeros(n_rows, dtype=bool)
    largest = 0.0
    for start in range(0, n_rows, step):
        block = np.asarray(rows[start : start + step], dtype=np.float64).reshape(-1, per_row)
        finite = np.isfinite(block)
        nonfinite[start : start + step] = ~finite.all(axis=1)
        size = np.abs(np.where(finite, block, 0.0))
        big[start : start + step] = (size > spec.max_abs).any(axis=1)
        largest = max(largest, float(size.max(initial=0.0)))
    if nonfinite.any():
        rep.error(
            f"NaN or infinite values in {rows_text(rows_of(nonfinite))}",
            f"finite numbers for the {spec.what}",
            file=file,
        )
        return None
    if big.any():
        rep.error(
            f"values as large as {largest:.3g} in {rows_text(rows_of(big))}",
            f"magnitudes of at most {spec.max_abs:g} for the {spec.what}",
            file=file,
            fix="check that the file holds the intended values (scale or normalise them)",
        )
        return None
    return arr.astype(spec.dtype, copy=False)
