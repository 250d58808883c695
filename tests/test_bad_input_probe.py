"""A probe of hostile inputs (issue 19): whatever the file, ``validate`` returns problems and
``load_dataset`` raises :class:`DataError`; no other exception type ever comes out, and every
message names what it is about. A table of hand-made hostile files, then Hypothesis over bytes,
tables and companion arrays."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from labelaudit.errors import DataError
from labelaudit.io import load_dataset, validate

GOOD = "id,text,label\n" + "".join(f"d{i},text {i},{'ab'[i % 2]}\n" for i in range(6))


def _write(p, content):
    if isinstance(content, bytes):
        p.write_bytes(content)
    else:
        p.write_text(content, encoding="utf-8")
    return p


HOSTILE = [
    ("bom only", ".csv", b"\xef\xbb\xbf"),
    ("header of separators", ".csv", ",,,,\n,,,,\n"),
    ("blank names", ".csv", " , ,label\na,b,c\n"),
    ("one column", ".csv", "text\na\nb\n"),
    ("quote never closed", ".csv", 'text,label\n"a,b\n'),
    ("CR only line ends", ".csv", "text,label\ra,x\rb,y\r"),
    ("NUL in the header", ".csv", "te\x00xt,label\na,x\n"),
    ("utf-16", ".csv", "text,label\na,x\nb,y\n".encode("utf-16")),
    ("truncated utf-8", ".csv", b"text,label\na,x\nb,\xe2\x82"),
    ("tsv in csv", ".csv", "text\tlabel\na\tx\nb\ty\n"),
    ("labels all numbers", ".csv", "text,label\na,1\nb,1.0\nc,01\nd,2\n"),
    ("json scalar", ".json", "42"),
    ("json list of lists", ".json", "[[1, 2], [3, 4]]"),
    ("json nested label", ".jsonl", '{"text": "a", "label": ["x"]}\n{"text": "b", "label": "y"}\n'),
    ("json null label", ".jsonl", '{"text": "a", "label": null}\n{"text": "b", "label": "y"}\n'),
    ("json numbers as text", ".jsonl", '{"text": 1, "label": 2}\n{"text": 3, "label": 4}\n'),
    ("json huge number", ".jsonl", '{"text": "a", "label": 1e400}\n{"text": "b", "label": "y"}\n'),
    ("json deep nesting", ".jsonl", '{"text": ' + "[" * 5000 + "]" * 5000 + ', "label": "x"}\n'),
    ("jsonl with array lines", ".jsonl", "[1]\n[2]\n"),
    ("parquet garbage", ".parquet", b"PAR1" + b"\x00" * 64 + b"PAR1"),
    ("tsv ragged", ".tsv", "text\tlabel\na\tb\tc\n"),
    ("txt empty lines only", ".txt", "\n\n\n"),
    ("wrong suffix", ".xls", "text,label\na,b\n"),
]


@pytest.mark.parametrize("case,suffix,content", HOSTILE, ids=[c[0] for c in HOSTILE])
def test_hostile_files_give_clean_problems(tmp_path, case, suffix, content):
    p = _write(tmp_path / f"data{suffix}", content)
    ds, problems = validate(p)
    assert ds is not None or problems
    for prob in problems:
        assert str(prob) and prob.found
    if ds is None:
        with pytest.raises(DataError):
            load_dataset(p)


def test_hostile_parquet_values_give_clean_problems(tmp_path):
    frames = [
        pd.DataFrame({"text": ["a", "b"], "label": [b"x", b"y"]}),
        pd.DataFrame({"text": ["a", None], "label": ["x", "y"]}),
        pd.DataFrame({"text": ["a", "b"], "label": [1.5, float("nan")]}),
        pd.DataFrame({"text": ["a", "b"], "label": pd.to_datetime(["2024-01-01", "2024-01-02"])}),
        pd.DataFrame({"text": [["a"], ["b"]], "label": ["x", "y"]}),
        pd.DataFrame({"text": ["a", "b"], "label": [{"k": 1}, {"k": 2}]}),
        pd.DataFrame({"text": ["a", "b"], "label": [True, False]}),
    ]
    for i, df in enumerate(frames):
        p = tmp_path / f"f{i}.parquet"
        df.to_parquet(p)
        ds, problems = validate(p)
        assert ds is not None or problems, i


def _data(tmp_path):
    return _write(tmp_path / "data.csv", GOOD)


COMPANIONS = [
    ("probs", np.array([["a", "b"]] * 6)),
    ("probs", np.full((6, 2), 0.5 + 0.5j)),
    ("probs", np.full((6, 2), np.nan)),
    ("probs", np.ones((6, 2, 1))),
    ("probs", np.empty((0, 2))),
    ("embeddings", np.full((6, 3), np.finfo(np.float64).max)),
    ("embeddings", np.array([[1, 2]] * 6, dtype=np.uint64) * np.uint64(2**63)),
    ("embeddings", np.ones((6,), dtype=[("a", "f4")])),
    ("dynamics", np.ones((1, 6, 2))),
    ("dynamics", np.ones((2, 6, 2), dtype=np.float16) * np.float16(60000)),
    ("annotations", pd.DataFrame({"item_id": ["d0"], "annotator_id": [["w"]], "label": ["a"]})),
    ("annotations", pd.DataFrame({"item_id": [None], "annotator_id": ["w"], "label": ["a"]})),
    ("scores", pd.DataFrame({"id": ["d0", "d0"], "s": ["x", 1]})),
    ("scores", pd.DataFrame([[1, 2]], columns=["id", "id"])),
    ("classes", ["a", "b", "a"]),
    ("classes", ["a"]),
]


@pytest.mark.parametrize(
    "option,value", COMPANIONS, ids=[f"{c[0]}-{i}" for i, c in enumerate(COMPANIONS)]
)
def test_hostile_companions_give_clean_problems(tmp_path, option, value):
    ds, problems = validate(_data(tmp_path), **{option: value})
    assert ds is not None or problems


def test_hostile_companion_files_give_clean_problems(tmp_path):
    cases = {
        "probs.npy": b"\x93NUMPY garbage",
        "emb.npy": b"",
        "classes.json": b"\xff\xfe not json",
        "dyn.npy": b"\x93NUMPY\x01\x00v\x00{'descr': '<f8', 'fortran_order': False, 'shape': (9,), }",
        "ann.csv": "item_id,annotator_id,label\n",
        "scores.csv": "id,score\nd0,1\nd0,2\n",
    }
    options = {
        "probs.npy": "probs",
        "emb.npy": "embeddings",
        "classes.json": "classes",
        "dyn.npy": "dynamics",
        "ann.csv": "annotations",
        "scores.csv": "scores",
    }
    for name, content in cases.items():
        p = _write(tmp_path / name, content)
        ds, problems = validate(_data(tmp_path), **{options[name]: str(p)})
        assert ds is None and problems, name


PROBE = settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))


@PROBE
@given(
    content=st.binary(max_size=400),
    suffix=st.sampled_from([".csv", ".tsv", ".txt", ".jsonl", ".json", ".parquet"]),
)
def test_arbitrary_bytes_never_raise_anything_but_a_data_error(tmp_path_factory, content, suffix):
    p = tmp_path_factory.mktemp("probe") / f"data{suffix}"
    p.write_bytes(content)
    ds, problems = validate(p)
    assert ds is not None or problems


_cell = st.one_of(
    st.text(max_size=12),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.none(),
    st.booleans(),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
)


@PROBE
@given(
    rows=st.lists(
        st.fixed_dictionaries(
            {"text": _cell, "label": _cell}, optional={"id": _cell, " text": _cell}
        ),
        min_size=1,
        max_size=8,
    ),
    suffix=st.sampled_from([".jsonl", ".json", "frame"]),
)
def test_arbitrary_json_rows_and_frames_give_clean_problems(tmp_path_factory, rows, suffix):
    if suffix == "frame":
        data = pd.DataFrame(rows)
    else:
        data = tmp_path_factory.mktemp("probe") / f"data{suffix}"
        text = "\n".join(json.dumps(r) for r in rows) if suffix == ".jsonl" else json.dumps(rows)
        data.write_text(text, encoding="utf-8")
    ds, problems = validate(data)
    assert ds is not None or problems


@PROBE
@given(
    arr=hnp.arrays(
        dtype=st.one_of(
            hnp.floating_dtypes(),
            hnp.integer_dtypes(),
            hnp.complex_number_dtypes(),
            hnp.boolean_dtypes(),
            hnp.unicode_string_dtypes(max_len=3),
        ),
        shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6),
    ),
    option=st.sampled_from(["probs", "embeddings", "dynamics"]),
)
def test_arbitrary_companion_arrays_give_clean_problems(tmp_path_factory, arr, option):
    data = tmp_path_factory.mktemp("probe") / "data.csv"
    data.write_text(GOOD, encoding="utf-8")
    ds, problems = validate(data, **{option: arr})
    assert ds is not None or problems
    if ds is not None:
        got = getattr(ds, "pred_probs" if option == "probs" else option)
        assert np.isfinite(got).all()
