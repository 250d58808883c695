"""NDJSON (newline-delimited JSON, https://github.com/ndjson/ndjson-spec): one JSON object per line.

The same rows as JSON Lines; a file of its own because it is the worked example of adding a format
in CONTRIBUTING.md: this module plus ``tests/test_format_ndjson.py`` is the whole change. The Data
page's upload list, folders of split files and ``labelaudit validate`` pick it up from the registry.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from labelaudit.io.formats import register_format
from labelaudit.io.formats._text import decode_text
from labelaudit.io.formats.jsonlines import parse_json_rows


@register_format("NDJSON", suffixes=(".ndjson",), description="newline-delimited JSON objects")
def read_ndjson(path: Path, encoding: str | None) -> pd.DataFrame:
    return parse_json_rows(path, decode_text(path, encoding), whole_document=False)
