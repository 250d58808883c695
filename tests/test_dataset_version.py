"""Dataset versions cannot collide; a workspace of the old format is not trusted, and not lost."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from labelaudit.dataset import Dataset
from labelaudit.errors import UsageError
from labelaudit.hashing import CanonicalHash
from labelaudit.workspace import Workspace
from labelaudit.workspace_format import FORMAT_FILE, WORKSPACE_FORMAT, read_format

CLASSES = ["x", "y"]


def _ds(ids, texts=None, labels=None, splits=None, meta=None, **kw) -> Dataset:
    n = len(ids)
    frame = pd.DataFrame(
        {
            "id": list(ids),
            "text": list(texts or [f"t{i}" for i in range(n)]),
            "label": list(labels or ["x"] * n),
            "split": list(splits or [""] * n),
        }
    )
    for k, v in (meta or {}).items():
        frame[k] = v
    return Dataset(frame=frame, classes=kw.pop("classes", CLASSES), **kw)


# --------------------------------------------------------------------------- the reported collisions
def test_ids_with_the_old_field_separator_get_different_versions():
    a = _ds(["p\x1fq", "r"])
    b = _ds(["p", "q\x1fr"])
    assert a.content_hash != b.content_hash


def test_texts_with_the_old_text_separator_get_different_keys():
    a = _ds(["1", "2"], texts=["a\x00b", "c"])
    b = _ds(["1", "2"], texts=["a", "b\x00c"])
    assert a.text_hash != b.text_hash
    assert a.content_hash != b.content_hash


def test_labels_splits_and_classes_cannot_trade_characters():
    base = dict(ids=["1", "2"])
    assert (
        _ds(**base, labels=["x\x1fy", "y"], classes=["x\x1fy", "y"]).content_hash
        != _ds(**base, labels=["x", "y\x1fy"], classes=["x", "y\x1fy"]).content_hash
    )
    assert (
        _ds(**base, classes=["a\x1fb", "c"]).content_hash
        != _ds(**base, classes=["a", "b\x1fc"]).content_hash
    )


def test_metadata_names_types_and_missing_values_are_part_of_the_version():
    ids = ["1", "2"]
    plain = _ds(ids, meta={"m": ["1", "2"]}).content_hash
    assert _ds(ids, meta={"n": ["1", "2"]}).content_hash != plain  # renamed column
    assert _ds(ids, meta={"m": [1, 2]}).content_hash != plain  # numbers, not text
    assert (
        _ds(ids, meta={"m": [None, "2"]}).content_hash
        != _ds(ids, meta={"m": ["None", "2"]}).content_hash
    )
    assert (
        _ds(ids, meta={"m": ["a", "b"], "k": ["c", "d"]}).content_hash
        != _ds(ids, meta={"k": ["c", "d"], "m": ["a", "b"]}).content_hash
    )  # column order


def test_companions_and_descriptions_are_part_of_the_version():
    ids = ["1", "2"]
    base = _ds(ids).content_hash
    probs = np.array([[0.5, 0.5], [0.2, 0.8]])
    assert _ds(ids, pred_probs=probs).content_hash != base
    assert (
        _ds(ids, pred_probs=probs).content_hash != _ds(ids, pred_probs=probs.T.copy()).content_hash
    )
    same_bytes_other_shape = np.zeros((4, 2), np.float32)
    assert (
        _ds(ids, embeddings=np.zeros((2, 4), np.float32)).content_hash
        != _ds(ids, dynamics=same_bytes_other_shape).content_hash
    )
    assert (
        _ds(ids, dynamics=np.zeros((1, 2, 2), np.float32)).content_hash
        != _ds(ids, dynamics=np.zeros((2, 1, 2), np.float32)).content_hash
    )
    assert _ds(ids, class_descriptions={"x": "an x"}).content_hash != base


def test_the_version_ignores_where_the_data_came_from():
    a = _ds(["1", "2"], source="a.csv")
    b = _ds(["1", "2"], source="elsewhere/b.csv")
    assert a.content_hash == b.content_hash


# --------------------------------------------------------------------------- the property
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=6)
ROWS = st.lists(
    st.tuples(TEXT, TEXT, st.sampled_from(["x", "y"]), TEXT, TEXT), min_size=1, max_size=5
)


def _from_rows(rows) -> Dataset:
    frame = pd.DataFrame(rows, columns=["id", "text", "label", "split", "meta"])
    return Dataset(frame=frame, classes=CLASSES)


@settings(max_examples=400, deadline=None)
@given(ROWS, ROWS)
@example(  # the reported collision: ids "p\x1fq", "r" vs "p", "q\x1fr"
    [("p\x1fq", "t", "x", "", ""), ("r", "u", "x", "", "")],
    [("p", "t", "x", "", ""), ("q\x1fr", "u", "x", "", "")],
)
def test_distinct_datasets_get_distinct_versions(a, b):
    da, db = _from_rows(a), _from_rows(b)
    same = a == b
    assert (da.content_hash == db.content_hash) == same
    assert (da.text_hash == db.text_hash) == ([r[1] for r in a] == [r[1] for r in b])


@settings(max_examples=200, deadline=None)
@given(st.lists(TEXT, max_size=6), st.lists(TEXT, max_size=6))
def test_the_encoding_is_injective_on_string_lists(a, b):
    ha, hb = CanonicalHash("t"), CanonicalHash("t")
    ha.strings(a)
    hb.strings(b)
    assert (ha.hexdigest(64) == hb.hexdigest(64)) == (a == b)


# --------------------------------------------------------------------------- workspace format
def test_a_new_workspace_records_its_format(tmp_path):
    ws = Workspace(tmp_path / "ws")
    assert read_format(ws.root) == WORKSPACE_FORMAT
    assert ws.notes == []
    assert Workspace(ws.root).notes == []


def _old_workspace(tmp_path, decisions: int = 2):
    """A format-1 workspace: no workspace.json, a dataset under an old-style key, an artifact under
    it, and review decisions recorded under that key."""
    from labelaudit.review.store import ReviewStore

    ws = Workspace(tmp_path / "ws")
    ds = _ds(["a", "b", "c"], labels=["x", "y", "x"])
    new = ws.save_dataset(ds)
    old = "0123456789abcdef0123"
    (ws.root / "datasets" / new).rename(ws.root / "datasets" / old)
    ws.save(old, "detector_output", np.arange(3), {"p": 1})
    store = ReviewStore(ws.database_url)
    for item in ["a", "b"][:decisions]:
        store.record(
            dataset_version=old,
            item_id=item,
            reviewer="ana",
            action="change",
            old_label="x",
            new_label="y",
        )
    store.close()
    (ws.root / FORMAT_FILE).unlink()
    return ws.root, old, new


def test_an_old_workspace_is_upgraded_with_a_note_and_no_lost_decision(tmp_path, capsys):
    from labelaudit.review.store import ReviewStore

    root, old, new = _old_workspace(tmp_path)
    ws = Workspace(root)
    text = "\n".join(ws.notes)
    assert "older labelaudit (format 1)" in text and "not used" in text
    assert f"{old} -> {new}" in text
    assert "2 row(s) moved" in text or "row(s) moved" in text
    assert "note:" in capsys.readouterr().err
    # old keys are not trusted: the old dataset folder and the artifact are gone from the keyed folders
    assert ws.datasets() == [new]
    assert not ws.has(old, "detector_output", {"p": 1})
    aside = root / "format-1-ignored"
    assert (aside / "datasets" / old / "meta.json").exists()
    assert (aside / "artifacts" / old).exists()
    # decisions follow the dataset to its new version
    cur = ReviewStore(ws.database_url).current(new)
    assert sorted(cur["item_id"]) == ["a", "b"]
    assert ReviewStore(ws.database_url).current(old).empty
    assert ws.load_dataset(new).frame["id"].tolist() == ["a", "b", "c"]
    # once upgraded, nothing more happens
    assert Workspace(root).notes == []


def test_two_processes_opening_an_old_workspace_upgrade_it_once(tmp_path):
    import subprocess
    import sys

    root, old, new = _old_workspace(tmp_path, decisions=1)
    code = "from labelaudit.workspace import Workspace; import sys; Workspace(sys.argv[1])"
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(root)], stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    errs = [p.communicate(timeout=120)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), errs
    assert sum("older labelaudit" in e for e in errs) == 1
    assert not (root / "format-1-ignored-2").exists()
    assert Workspace(root).datasets() == [new]


def test_an_unreadable_old_dataset_stays_aside_and_is_named(tmp_path):
    root, old, new = _old_workspace(tmp_path, decisions=0)
    (root / "datasets" / old / "frame.parquet").write_bytes(b"not parquet")
    ws = Workspace(root)
    assert any("could not read" in n and old in n for n in ws.notes)
    assert ws.datasets() == []


def test_a_workspace_of_a_newer_format_is_refused(tmp_path):
    root = tmp_path / "ws"
    root.mkdir()
    (root / FORMAT_FILE).write_text(json.dumps({"format": WORKSPACE_FORMAT + 1}))
    with pytest.raises(UsageError, match="newer labelaudit"):
        Workspace(root)


def test_the_cli_prints_the_upgrade_note(tmp_path):
    import subprocess
    import sys

    from tests.conftest import BAD, ROOT

    root, old, new = _old_workspace(tmp_path, decisions=1)
    shutil.copy(BAD / "good.csv", tmp_path / "good.csv")
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "labelaudit",
            "export",
            "--workspace",
            str(root),
            "--dataset",
            new,
            "--out",
            str(tmp_path / "o.csv"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert "older labelaudit" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(st.characters(blacklist_categories=("Cs",)), max_size=8), max_size=8))
def test_the_fast_arrow_path_feeds_the_same_bytes_as_value_by_value(values):
    import labelaudit.hashing as hashing

    fast = CanonicalHash("t")
    fast.strings(pd.Series(values, dtype=object))
    slow = CanonicalHash("t")
    original = hashing._arrow_strings
    hashing._arrow_strings = lambda v: None
    try:
        slow.strings(values)
    finally:
        hashing._arrow_strings = original
    assert fast.hexdigest(64) == slow.hexdigest(64)


def test_texts_with_lone_surrogates_are_hashed_too():
    def ds(text):
        frame = pd.DataFrame(
            {"id": ["1", "2"], "text": [text, "b"], "label": ["x", "y"], "split": ["", ""]},
            dtype=object,
        )
        return Dataset(frame=frame, classes=CLASSES)

    assert ds("\ud800").text_hash != ds("\ud801").text_hash
    assert ds("\ud800").content_hash != ds("\ud801").content_hash
