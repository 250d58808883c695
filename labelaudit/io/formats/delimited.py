"""CSV, TSV and plain-text tables (``.txt``: tab-separated when its header line holds a tab).

The file is checked block by block (encoding, NUL bytes), then pandas parses it from disk in chunks
of rows: the bytes and the decoded text are never held whole beside the table (bench/bench_memory.py
measures the peak), and a file with more rows than the bound is refused at the first chunk past it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from labelaudit.errors import DataError, Problem, Report
from labelaudit.io.checks import check_header, check_row_count
from labelaudit.io.formats import register_format
from labelaudit.io.formats._text import check_text_file

#: Rows parsed per chunk.
CHUNK_ROWS = 200_000


@register_format("CSV", suffixes=(".csv",), description="comma-separated, UTF-8 unless told")
def read_csv(path: Path, encoding: str | None) -> pd.DataFrame:
    return _read_delimited(path, check_text_file(path, encoding), ",")


@register_format("TSV", suffixes=(".tsv",), description="tab-separated, UTF-8 unless told")
def read_tsv(path: Path, encoding: str | None) -> pd.DataFrame:
    return _read_delimited(path, check_text_file(path, encoding), "\t")


@register_format(
    "Text table", suffixes=(".txt",), description="tab-separated if the header has a tab, else CSV"
)
def read_txt(path: Path, encoding: str | None) -> pd.DataFrame:
    enc = check_text_file(path, encoding)
    with open(path, encoding=enc, newline="") as f:
        first = f.readline()
    return _read_delimited(path, enc, "\t" if "\t" in first else ",")


def _read_delimited(path: Path, encoding: str, sep: str) -> pd.DataFrame:
    options = {
        "sep": sep,
        "dtype": str,
        "keep_default_na": False,
        "na_values": [],
        "skip_blank_lines": True,
        "encoding": encoding,
    }
    rep = Report()
    try:
        header = pd.read_csv(path, nrows=0, **options).columns  # type: ignore[call-overload]
        if not check_header(list(header), path.name, rep):  # a wide header: refuse before the body
            rep.raise_if_errors()
        chunks = []
        rows = 0
        reader = pd.read_csv(path, chunksize=CHUNK_ROWS, **options)  # type: ignore[call-overload]
        with reader:
            for chunk in reader:
                rows += len(chunk)
                if not check_row_count(rows, path.name, rep):
                    rep.raise_if_errors()
                chunks.append(chunk)
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
    if not chunks:
        return pd.DataFrame(columns=header)
    if len(chunks) == 1:
        return chunks[0]
    return pd.concat(chunks, ignore_index=True, copy=False)
