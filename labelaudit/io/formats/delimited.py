"""CSV, TSV and plain-text tables (``.txt``: tab-separated when its header line holds a tab)."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pandas as pd

from labelaudit.errors import DataError, Problem
from labelaudit.io.formats import register_format
from labelaudit.io.formats._text import decode_text


@register_format("CSV", suffixes=(".csv",), description="comma-separated, UTF-8 unless told")
def read_csv(path: Path, encoding: str | None) -> pd.DataFrame:
    return _read_delimited(path, decode_text(path, encoding), ",")


@register_format("TSV", suffixes=(".tsv",), description="tab-separated, UTF-8 unless told")
def read_tsv(path: Path, encoding: str | None) -> pd.DataFrame:
    return _read_delimited(path, decode_text(path, encoding), "\t")


@register_format(
    "Text table", suffixes=(".txt",), description="tab-separated if the header has a tab, else CSV"
)
def read_txt(path: Path, encoding: str | None) -> pd.DataFrame:
    content = decode_text(path, encoding)
    return _read_delimited(path, content, "\t" if "\t" in content.split("\n", 1)[0] else ",")


def _read_delimited(path: Path, content: str, sep: str) -> pd.DataFrame:
    try:
        return pd.read_csv(
            io.StringIO(content),
            sep=sep,
            dtype=str,
            keep_default_na=False,
            na_values=[],
            skip_blank_lines=True,
        )
    except pd.errors.ParserError as e:
        m = re.search(r"line (\d+)", str(e))
        bad_line = int(m.group(1)) if m else None
        raise DataError(
            Problem(
                f"malformed {'TSV' if sep == chr(9) else 'CSV'}: {e}".rstrip(),
                "the same number of fields on every line",
                file=path.name,
                row=(bad_line - 1) if bad_line else None,  # pandas counts the header as line 1
                fix="quote fields that contain the separator or a line break",
            )
        ) from None
    except pd.errors.EmptyDataError:
        raise DataError(
            Problem("the file has no columns", "a header row", file=path.name)
        ) from None
