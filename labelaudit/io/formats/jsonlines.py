"""JSON Lines (one object per line) and JSON (an array of objects, or JSON Lines in a .json file)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from labelaudit.errors import DataError, Problem
from labelaudit.io.formats import register_format
from labelaudit.io.formats._text import decode_text


@register_format("JSON Lines", suffixes=(".jsonl",), description="one JSON object per line")
def read_json_lines(path: Path, encoding: str | None) -> pd.DataFrame:
    return parse_json_rows(path, decode_text(path, encoding), whole_document=False)


@register_format(
    "JSON",
    suffixes=(".json",),
    description="an array of objects, or one object per line",
    in_folders=False,  # a .json beside split files is the class list (categories.json)
)
def read_json(path: Path, encoding: str | None) -> pd.DataFrame:
    return parse_json_rows(path, decode_text(path, encoding), whole_document=True)


def parse_json_rows(path: Path, content: str, *, whole_document: bool) -> pd.DataFrame:
    """One row per JSON object line of ``content`` (blank lines skipped); with ``whole_document``,
    a document that is one array of objects is read too. DataError naming the line otherwise."""
    rows = []
    for lineno, line in enumerate(content.splitlines(), start=1):
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
    return pd.DataFrame(rows)
