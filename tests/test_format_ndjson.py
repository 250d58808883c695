"""The NDJSON reader (labelaudit/io/formats/ndjson.py): the worked example of adding a format.

One module registers the reader; these tests show what the registry then gives for free: the
loader, folders of split files, the Data page's upload list and a clear error naming file and line.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from labelaudit.errors import DataError
from labelaudit.io import load_dataset, table_suffixes
from labelaudit.io.formats import format_for

ROWS = [
    {"id": "a1", "text": "card blocked", "label": "card"},
    {"id": "a2", "text": "refund please", "label": "refund"},
    {"id": "a3", "text": "lost my card", "label": "card"},
]


def write_ndjson(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_an_ndjson_file_loads_like_the_same_csv(tmp_path):
    ds = load_dataset(write_ndjson(tmp_path / "d.ndjson", ROWS))
    pd.DataFrame(ROWS).to_csv(tmp_path / "d.csv", index=False)
    assert ds.ids.tolist() == ["a1", "a2", "a3"] and ds.classes == ["card", "refund"]
    assert ds.content_hash == load_dataset(tmp_path / "d.csv").content_hash
    assert format_for(tmp_path / "D.NDJSON").name == "NDJSON"


def test_ndjson_split_files_in_a_folder(tmp_path):
    write_ndjson(tmp_path / "train.ndjson", ROWS[:2])
    write_ndjson(tmp_path / "test.ndjson", ROWS[2:])
    ds = load_dataset(tmp_path)
    assert ds.frame["split"].tolist() == ["train", "train", "test"]


def test_a_bad_line_names_the_file_and_the_line(tmp_path):
    p = tmp_path / "d.ndjson"
    p.write_text(json.dumps(ROWS[0]) + "\n[1, 2]\n", encoding="utf-8")
    with pytest.raises(DataError) as e:
        load_dataset(p)
    problem = e.value.problems[0]
    assert problem.file == "d.ndjson" and problem.row == 2
    assert "line 2 is a JSON list" in str(e.value)


def test_the_data_page_accepts_what_the_readers_read():
    from components.data import COMPANION_UPLOADS, DATASET_UPLOAD_TYPES

    assert {"ndjson", "pq", "jsonl", "parquet", "csv"} <= set(DATASET_UPLOAD_TYPES)
    assert set(DATASET_UPLOAD_TYPES) == {s.lstrip(".") for s in table_suffixes()}
    assert "pq" in COMPANION_UPLOADS["probs"][1]
