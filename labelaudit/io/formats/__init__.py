"""The table formats a dataset (and a table companion) can be read from: suffix -> reader.

Every module in this package registers its readers with :func:`register_format`; :func:`all_formats`
imports each module on first use, so adding a format is adding a file here plus its test (see
CONTRIBUTING.md). Modules whose name starts with ``_`` hold shared helpers and register nothing.

A reader takes ``(path, encoding)`` and returns the raw table as a DataFrame. It raises
:class:`~labelaudit.errors.DataError` naming the file (and the row, when there is one) for content
it cannot parse. It need not check that the file exists, is small enough, has rows or has unique
column names: :func:`labelaudit.io.read_table` does that once for every format. Text formats read
every column as ``str`` so ids like ``007`` keep their zeros.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from labelaudit.plugins import import_submodules

TableReader = Callable[[Path, "str | None"], pd.DataFrame]


@dataclass(frozen=True)
class TableFormat:
    """One readable table format."""

    #: Shown to users: "CSV", "Parquet", "JSON Lines".
    name: str
    #: Lower-case file suffixes with the dot, e.g. (".csv",).
    suffixes: tuple[str, ...]
    read: TableReader
    #: One line for the README and the Data page.
    description: str
    #: Files with these suffixes in a dataset folder are split files (``.json`` is not:
    #: categories.json).
    in_folders: bool = True


_REGISTRY: dict[str, TableFormat] = {}


def register_format(
    name: str, *, suffixes: tuple[str, ...], description: str, in_folders: bool = True
) -> Callable[[TableReader], TableReader]:
    """Decorator: register ``fn(path, encoding) -> DataFrame`` as the reader of ``suffixes``.

    Example:
        >>> @register_format("Example", suffixes=(".example",), description="doc only")
        ... def read_example(path, encoding):
        ...     return pd.DataFrame({"text": ["a"], "label": ["x"]})
        >>> format_for(Path("d.example")).name
        'Example'
        >>> _ = _REGISTRY.pop(".example")
    """
    bad = [s for s in suffixes if not s.startswith(".") or s != s.lower()]
    if bad:
        raise ValueError(f"suffixes must be lower case and start with a dot, got {bad}")

    def deco(fn: TableReader) -> TableReader:
        fmt = TableFormat(name, tuple(suffixes), fn, description, in_folders)
        for s in suffixes:
            if s in _REGISTRY and _REGISTRY[s].read is not fn:
                raise ValueError(f"suffix {s} is already read by the {_REGISTRY[s].name} reader")
            _REGISTRY[s] = fmt
        return fn

    return deco


def all_formats() -> list[TableFormat]:
    """Every registered format, each once, in the order of their first suffix."""
    import_submodules(__name__)
    seen: dict[str, TableFormat] = {}
    for fmt in _REGISTRY.values():
        seen.setdefault(fmt.name, fmt)
    return sorted(seen.values(), key=lambda f: f.suffixes[0])


def format_for(path: Path) -> TableFormat | None:
    """The format that reads ``path`` (by its suffix, case-insensitive), or None."""
    all_formats()
    return _REGISTRY.get(path.suffix.lower())


def table_suffixes(*, in_folders: bool = False) -> list[str]:
    """Every readable suffix, sorted (only those that are split files in a folder if
    ``in_folders``).

    Example:
        >>> ".csv" in table_suffixes() and ".json" not in table_suffixes(in_folders=True)
        True
    """
    return sorted(s for f in all_formats() for s in f.suffixes if f.in_folders or not in_folders)
