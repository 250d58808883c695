"""JSON Lines (one object per line) and JSON (an array of objects, or JSON Lines in a .json
file)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from labelaudit.errors import DataError, Problem, Report
from labelaudit.io.checks import check_row_count, limits
from labelaudit.io.formats import register_format
from labelaudit.io.formats._text import check_text_file, decode_text


@register_format("JSON Lines", suffixes=(".jsonl",), description="one JSON object per line")
def read_json_lines(path: Path, encoding: str | None) -> pd.DataFrame:
    return stream_json_lines(path, encoding)


def stream_json_lines(path: Path, encoding: str | None) -> pd.DataFrame:
    """One row per JSON object line, read line by line after a streaming encoding/NUL check (the
    whole text is never held)."""
    enc = check_text_file(path, encoding)
    with open(path, encoding=enc) as f:
        return parse_json_rows(path, f, whole_document=False)


@register_format(
    "JSON",
    suffixes=(".json",),
    description="an array of objects, or one object per line",
    in_folders=False,  # a .json beside split files is the class list (categories.json)
)
def read_json(path: Path, encoding: str | None) -> pd.DataFrame:
    return parse_json_rows(path, decode_text(path, encoding), whole_document=True)


def parse_json_rows(
    path: Path, content: str | Iterable[str], *, whole_document: bool
) -> pd.DataFrame:
    """One row per JSON object line of ``content`` (a text, or its lines; blank lines skipped);
    with ``whole_document`` (``content`` a text), a document that is one array of objects is read
    too. DataError naming the line otherwise, or for JSON nested too deeply to parse."""
    text = content if isinstance(content, str) else ""
    lines = content.splitlines() if isinstance(content, str) else content
    try:
        return _parse_json_rows(path, lines, whole_document=whole_document, content=text)
    except RecursionError:
        raise DataError(
            Problem(
                "JSON nested too deeply to read",
                "one flat JSON object per row",
                file=path.name,
                fix="flatten the values (one field per column)",
            )
        ) from None


def _parse_json_rows(
    path: Path, lines: Iterable[str], *, whole_document: bool, content: str
) -> pd.DataFrame:
    rows = []
    bound = limits().max_rows
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            if whole_document and lineno == 1:
                try:
                    data = json.loads(content)
                except json.JSONDecodeError:
                    raise DataError(
                        Problem(
                            f"not valid JSON ({e.msg})",
                            "JSON Lines: one object per line",
                            file=path.name,
                            row=lineno,
                        )
                    ) from None
                if isinstance(data, list) and all(isinstance(r, dict) for r in data):
                    rep = Report()
                    if not check_row_count(len(data), path.name, rep):
                        rep.raise_if_errors()
                    return pd.DataFrame(data)
            raise DataError(
                Problem(
                    f"line {lineno} is not valid JSON ({e.msg})",
                    "one JSON object per line",
                    file=path.name,
                    row=lineno,
                )
            ) from None
        if not isinstance(obj, dict):
            raise DataError(
                Problem(
                    f"line {lineno} is a JSON {type(obj).__name__}",
                    "a JSON object per line",
                    file=path.name,
                    row=lineno,
                )
            )
        rows.append(obj)
        if len(rows) > bound:  # refused at the first row past the bound, not after parsing all
            rep = Report()
            check_row_count(len(rows), path.name, rep)
            rep.raise_if_errors()
    return pd.DataFrame(rows)
