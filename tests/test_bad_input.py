"""Bad input (issue 19): a clear message naming file, row and column, never a traceback, never a
silent surprise. One test per defect found by the probe, then the class of fault it stands for."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from labelaudit.cli import main
from labelaudit.errors import DataError, Report
from labelaudit.io import load_dataset, validate
from labelaudit.io.checks import ArraySpec, check_array, label_key, lookalike_groups
from labelaudit.io.companions.embeddings import embeddings_spec

ROWS = "id,text,label\n" + "".join(f"d{i},text number {i},{'ab'[i % 2]}\n" for i in range(6))


def _csv(tmp_path, body: str, name: str = "data.csv"):
    p = tmp_path / name
    p.write_text(body, encoding="utf-8")
    return p


def _errors(problems) -> list[str]:
    return [str(p) for p in problems if p.severity == "error"]


def _warnings(problems) -> list[str]:
    return [str(p) for p in problems if p.severity == "warning"]


# ----------------------------------------------------------------------------- headers


@pytest.mark.parametrize(
    "header",
    ["text, text,label", "text,text ,label", " text,text,label", "text,label,text.1"],
)
def test_a_header_repeating_a_name_after_stripping_is_refused(tmp_path, header, capsys):
    # before: pandas kept "text" and " text" apart, then the stripped names collided (traceback)
    p = _csv(tmp_path, header + "\na,b,x\nc,d,y\n")
    ds, problems = validate(p)
    assert ds is None
    (msg,) = _errors(problems)
    assert "data.csv" in msg and "repeats column names" in msg and "'text'" in msg
    assert main(["validate", str(p)]) == 1
    assert "repeats column names" in capsys.readouterr().err


def test_a_dataframe_with_repeated_columns_is_refused():
    df = pd.DataFrame([["a", "b", "x"], ["c", "d", "y"]], columns=["text", " text", "label"])
    with pytest.raises(DataError, match="repeats column names"):
        load_dataset(df)


def test_too_many_columns_is_refused_with_the_bound(tmp_path, monkeypatch):
    monkeypatch.setenv("LABELAUDIT_MAX_COLUMNS", "4")
    p = _csv(tmp_path, "id,text,label,a,b\nd1,x,p,1,2\nd2,y,q,3,4\n")
    ds, problems = validate(p)
    assert ds is None
    assert "5 columns, above the bound of 4" in _errors(problems)[0]
    assert "LABELAUDIT_MAX_COLUMNS" in _errors(problems)[0]


def test_a_huge_column_name_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("LABELAUDIT_MAX_COLUMN_NAME_CHARS", "20")
    p = _csv(tmp_path, "id,text,label," + "x" * 30 + "\nd1,a,p,1\nd2,b,q,2\n")
    ds, problems = validate(p)
    assert ds is None
    assert "a column name of 30 characters" in _errors(problems)[0]


# ----------------------------------------------------------------------------- bounds


def test_too_many_rows_is_refused_with_the_bound(tmp_path, monkeypatch):
    monkeypatch.setenv("LABELAUDIT_MAX_ROWS", "5")
    ds, problems = validate(_csv(tmp_path, ROWS))
    assert ds is None
    msg = _errors(problems)[0]
    assert "above the bound of 5 rows" in msg and "LABELAUDIT_MAX_ROWS" in msg


def test_a_file_above_the_size_bound_is_refused_before_reading(tmp_path, monkeypatch):
    monkeypatch.setenv("LABELAUDIT_MAX_FILE_BYTES", "50")
    ds, problems = validate(_csv(tmp_path, ROWS))
    assert ds is None
    assert "above the bound of" in _errors(problems)[0]


def test_a_text_above_the_length_bound_is_refused_with_its_row(tmp_path, monkeypatch):
    monkeypatch.setenv("LABELAUDIT_MAX_TEXT_CHARS", "100")
    body = ROWS + "d9," + "w" * 101 + ",a\n"
    ds, problems = validate(_csv(tmp_path, body))
    assert ds is None
    msg = _errors(problems)[0]
    assert "longer than 100 characters" in msg and "row 7" in msg and "column 'text'" in msg


def test_a_label_above_the_value_bound_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("LABELAUDIT_MAX_VALUE_CHARS", "10")
    body = ROWS + "d9,some text," + "l" * 11 + "\n"
    ds, problems = validate(_csv(tmp_path, body))
    assert ds is None
    assert any("longer than 10 characters" in m and "label" in m for m in _errors(problems))


# ----------------------------------------------------------------------------- NUL and nesting


def test_a_nul_byte_after_the_first_100k_characters_is_refused(tmp_path):
    # before: only the first 100,000 characters were looked at
    body = ROWS + "".join(f"e{i},{'x' * 100},a\n" for i in range(1200)) + "e9,bad\x00text,b\n"
    assert body.index("\x00") > 100_000
    ds, problems = validate(_csv(tmp_path, body))
    assert ds is None
    msg = _errors(problems)[0]
    assert "NUL byte at line 1208" in msg and "data.csv" in msg


def test_a_nul_character_in_parquet_text_is_refused_with_its_row(tmp_path):
    p = tmp_path / "d.parquet"
    pd.DataFrame({"text": ["a", "b\x00c", "d"], "label": ["x", "y", "x"]}).to_parquet(p)
    ds, problems = validate(p)
    assert ds is None
    msg = _errors(problems)[0]
    assert "NUL character" in msg and "row 2" in msg and "column 'text'" in msg


@pytest.mark.parametrize(
    "values",
    [[["x"], ["y"], ["x"]], [{"a": 1}, {"a": 2}, {"a": 1}]],
    ids=["list", "struct"],
)
def test_nested_parquet_values_are_refused_with_column_and_row(tmp_path, values):
    # before: a list or struct label became the string "['x']"
    p = tmp_path / "d.parquet"
    pd.DataFrame({"text": ["a", "b", "c"], "label": values}).to_parquet(p)
    ds, problems = validate(p)
    assert ds is None
    msg = _errors(problems)[0]
    assert "nested value" in msg and "column 'label'" in msg and "rows 1, 2, 3" in msg


def test_nested_json_values_are_refused_with_column_and_row(tmp_path):
    p = tmp_path / "d.jsonl"
    rows = [
        {"text": "a", "label": "x", "meta": 1},
        {"text": "b", "label": "y", "meta": {"source": "web"}},
        {"text": "c", "label": "x", "meta": 3},
    ]
    p.write_text("\n".join(json.dumps(r) for r in rows))
    ds, problems = validate(p)
    assert ds is None
    msg = _errors(problems)[0]
    assert "nested value" in msg and "column 'meta'" in msg and "row 2" in msg


# ----------------------------------------------------------------------------- class lists


def test_lookalike_labels_are_kept_apart_with_a_warning_that_shows_the_groups(tmp_path, capsys):
    # before: 'Pos' and 'pos', '1' and '1.0', NFC and NFD 'café' became separate classes silently
    body = "text,label\na,Pos\nb,pos\nc,pos\nd,1\ne,1.0\nf,caf\u00e9\ng,cafe\u0301\nh,neg\n"
    p = _csv(tmp_path, body)
    ds, problems = validate(p)
    assert ds is not None and ds.k == 7
    (msg,) = _warnings(problems)
    assert "3 group(s)" in msg
    assert "'Pos' (1 row) vs 'pos' (2 rows)" in msg
    assert "'1' (1 row) vs '1.0' (1 row)" in msg
    assert "'cafe\\u0301'" in msg and "'caf\\xe9'" in msg
    assert "neg" not in msg
    assert main(["validate", str(p)]) == 0
    assert "differ only by case" in capsys.readouterr().out


def test_lookalike_keys():
    assert label_key(" Card\u00a0 Arrival ") == label_key("card arrival")
    assert label_key("01") == label_key("1") == label_key("1.0") == label_key("1e0")
    assert label_key("1.5") != label_key("15")
    assert lookalike_groups(["a", "b", "c"]) == []


def test_a_class_list_that_repeats_a_name_is_refused(tmp_path):
    classes = tmp_path / "classes.json"
    classes.write_text(json.dumps(["a", "b", "a"]))
    ds, problems = validate(_csv(tmp_path, ROWS), classes=str(classes))
    assert ds is None
    msg = _errors(problems)[0]
    assert "classes.json" in msg and "repeats 1 name(s): ['a']" in msg


# ----------------------------------------------------------------------------- annotations


def test_repeated_annotations_collapse_to_the_latest_with_a_warning(tmp_path):
    # before: the same annotator's two labels for one item counted as two ratings
    ann = _csv(
        tmp_path,
        "item_id,annotator_id,label\nd0,w1,a\nd0,w1,b\nd0,w2,a\nd1,w1,b\n",
        "annotations.csv",
    )
    ds, problems = validate(_csv(tmp_path, ROWS), annotations=str(ann))
    assert ds is not None
    assert len(ds.annotations) == 3
    kept = ds.annotations.query("item_id == 'd0' and annotator_id == 'w1'")["label"].tolist()
    assert kept == ["b"]  # the last row in the file
    (msg,) = _warnings(problems)
    assert "item 'd0' by 'w1' in rows 1, 2" in msg and "dropped 1 row(s): row 1" in msg


def test_repeated_annotations_with_timestamps_keep_the_latest_time(tmp_path):
    ann = _csv(
        tmp_path,
        "item_id,annotator_id,label,timestamp\n"
        "d0,w1,b,2024-05-02T00:00:00Z\nd0,w1,a,2024-05-01T00:00:00Z\nd0,w2,a,2024-05-01T00:00:00Z\n",
        "annotations.csv",
    )
    ds, problems = validate(_csv(tmp_path, ROWS), annotations=str(ann))
    assert ds is not None and len(ds.annotations) == 2
    kept = ds.annotations.query("item_id == 'd0' and annotator_id == 'w1'")["label"].tolist()
    assert kept == ["b"]
    assert "latest by timestamp" in _warnings(problems)[0]


# ----------------------------------------------------------------------------- companion arrays

BAD_EMBEDDINGS = [
    ("text", np.array([["0.1", "0.2"]] * 6), "an array of text"),
    ("complex", np.ones((6, 2), dtype=complex), "complex numbers"),
    ("booleans", np.ones((6, 2), dtype=bool), "booleans"),
    ("objects", np.array([[0.1, None]] * 6, dtype=object), "Python objects"),
    ("1-D", np.ones(6), "shape (6,)"),
    ("3-D", np.ones((6, 2, 2)), "shape (6, 2, 2)"),
    ("rows", np.ones((5, 2)), "(5 rows)"),
    ("no dimensions", np.ones((6, 0)), "(0 dimensions)"),
    ("NaN", np.where(np.eye(6, 2) > 0, np.nan, 1.0), "NaN or infinite values in rows 1, 2"),
    ("inf", np.where(np.eye(6, 2) > 0, np.inf, 1.0), "NaN or infinite"),
    # finite as float64 but infinite once scan casts to float32 (before: passed validate)
    ("overflow", np.full((6, 2), 1e300), "values as large as 1e+300 in rows 1, 2, 3"),
    # finite in float32, but the L2 norm overflows
    ("huge", np.full((6, 2), 1e20, dtype=np.float32), "magnitudes of at most"),
]


@pytest.mark.parametrize("case,arr,needle", BAD_EMBEDDINGS, ids=[c[0] for c in BAD_EMBEDDINGS])
def test_bad_embeddings_are_refused_by_validate(tmp_path, case, arr, needle):
    with pytest.raises(DataError, match=re.escape(needle)):
        load_dataset(_csv(tmp_path, ROWS), embeddings=arr)
    if arr.dtype == object:
        return  # a .npy of objects is refused earlier: it would need unpickling
    p = tmp_path / "embeddings.npy"
    np.save(p, arr)
    ds, problems = validate(_csv(tmp_path, ROWS), embeddings=str(p))
    assert ds is None
    msg = "\n".join(_errors(problems))
    assert "embeddings.npy" in msg and needle in msg


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    arr=hnp.arrays(
        dtype=st.sampled_from([np.float16, np.float32, np.float64, np.int64]),
        shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=5),
    )
)
def test_embeddings_validate_accepts_are_usable_by_scan(arr):
    """Whatever the embeddings check accepts, scan's first step (L2 normalisation in float32)
    turns into finite unit-or-zero rows: validate runs the checks scan relies on."""
    from labelaudit.embed import normalise_rows

    n = arr.shape[0] if arr.ndim else 0
    out = check_array(arr, embeddings_spec(n), "e.npy", Report())
    if out is None:
        return
    e = normalise_rows(out)
    assert e.dtype == np.float32 and np.isfinite(e).all()
    norms = np.linalg.norm(e, axis=1)
    assert np.all((np.abs(norms - 1) < 1e-3) | (norms == 0))


@pytest.mark.parametrize(
    "arr,needle",
    [
        (np.array([["0.5", "0.5"]] * 6), "an array of text"),
        (np.full((6, 2), 0.5 + 0j), "complex numbers"),
        (np.full((6, 2), True), "booleans"),
    ],
    ids=["text", "complex", "bool"],
)
def test_string_and_complex_probabilities_are_refused(tmp_path, arr, needle):
    # before: astype(float64) turned "0.5" into 0.5 and dropped the imaginary part
    p = tmp_path / "pred_probs.npy"
    np.save(p, arr)
    ds, problems = validate(_csv(tmp_path, ROWS), probs=str(p))
    assert ds is None
    assert needle in _errors(problems)[0] and "pred_probs.npy" in _errors(problems)[0]
    with pytest.raises(DataError, match=needle):
        load_dataset(_csv(tmp_path, ROWS), probs=arr)


@pytest.mark.parametrize(
    "arr,needle",
    [
        (np.ones((3, 6, 2), dtype=complex), "complex numbers"),
        (np.full((3, 6, 2), 1e300), "values as large as"),
        (np.array([[["1", "2"]] * 6] * 3), "an array of text"),
    ],
    ids=["complex", "overflow", "text"],
)
def test_bad_dynamics_are_refused(tmp_path, arr, needle):
    p = tmp_path / "dynamics.npy"
    np.save(p, arr)
    ds, problems = validate(_csv(tmp_path, ROWS), dynamics=str(p))
    assert ds is None
    assert needle in "\n".join(_errors(problems))


def test_check_array_names_the_rows_of_bad_values():
    spec = ArraySpec("logits", (None, 4, 2), ("E", "N", "K"), ("epochs", "rows", "classes"))
    arr = np.zeros((2, 4, 2))
    arr[1, 2, 0] = np.nan
    rep = Report()
    assert check_array(arr, spec, "d.npy", rep) is None
    assert "row 3" in rep.errors[0].found


def test_a_bound_that_is_not_a_number_is_a_usage_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LABELAUDIT_MAX_ROWS", "lots")
    assert main(["validate", str(_csv(tmp_path, ROWS))]) == 2
    assert "LABELAUDIT_MAX_ROWS='lots' is not a whole number of rows" in capsys.readouterr().err


# ----------------------------------------------------------------------------- chunked reading


def test_a_csv_read_in_chunks_is_the_same_table(tmp_path, monkeypatch):
    import labelaudit.io.formats.delimited as delimited

    body = ROWS + 'd9,"a text with a\nline break, a comma and ""quotes""",b\n'
    p = _csv(tmp_path, body)
    whole = load_dataset(p).frame
    monkeypatch.setattr(delimited, "CHUNK_ROWS", 2)
    chunked = load_dataset(p).frame
    pd.testing.assert_frame_equal(whole, chunked)
    assert chunked["text"].iloc[-1] == 'a text with a\nline break, a comma and "quotes"'


def test_rows_past_the_bound_are_refused_at_the_first_chunk_past_it(tmp_path, monkeypatch):
    import labelaudit.io.formats.delimited as delimited

    monkeypatch.setenv("LABELAUDIT_MAX_ROWS", "3")
    monkeypatch.setattr(delimited, "CHUNK_ROWS", 2)
    # a malformed line after the bound is never parsed: the bound is what is reported
    body = ROWS + "".join(f"e{i},t,a\n" for i in range(50)) + 'broken,"unclosed\n'
    ds, problems = validate(_csv(tmp_path, body))
    assert ds is None
    (msg,) = _errors(problems)
    assert "4 rows or more, above the bound of 3 rows" in msg


def test_the_memory_guard_uses_the_measured_factor(tmp_path, monkeypatch):
    from labelaudit.io.memory import MEMORY_ALLOWANCE_BYTES, MEMORY_FACTOR, memory_needed

    p = _csv(tmp_path, ROWS)
    need = memory_needed(p.stat().st_size, ".csv")
    assert need == p.stat().st_size * MEMORY_FACTOR + MEMORY_ALLOWANCE_BYTES
    monkeypatch.setenv("LABELAUDIT_MEMORY_LIMIT_BYTES", str(int(need) - 1))
    ds, problems = validate(p)
    assert ds is None and "GiB of memory" in _errors(problems)[0]
    monkeypatch.setenv("LABELAUDIT_MEMORY_LIMIT_BYTES", str(int(need) + 1))
    assert validate(p)[0] is not None


def test_every_bound_is_documented_in_the_readme():
    from labelaudit.io.checks import Limits
    from tests.conftest import ROOT

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in Limits.__dataclass_fields__:
        assert f"LABELAUDIT_{name.upper()}" in readme, name
