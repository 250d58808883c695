"""Loading and validation: the bad-input corpus (tests/data/bad), in the library, the CLI and the app."""

from __future__ import annotations

import csv
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labelaudit.cli import main
from labelaudit.errors import DataError
from labelaudit.io import load_dataset, validate
from tests.conftest import BAD, ROOT, SAMPLE, shown_text

GOOD = BAD / "good.csv"

# (case, data file, options, substrings every message must contain somewhere)
CASES = [
    ("missing file", "nope.csv", {}, ["nope.csv", "no such file"]),
    ("empty file", "empty.csv", {}, ["empty.csv", "empty (0 bytes)"]),
    ("header only", "header_only.csv", {}, ["header_only.csv", "no data rows"]),
    ("binary", "binary.csv", {}, ["binary.csv", "UTF-8"]),
    ("wrong encoding", "cp1252.csv", {}, ["cp1252.csv", "line 2", "not valid UTF-8", "--encoding"]),
    ("unsupported type", "data.xlsx", {}, ["data.xlsx", "unsupported file type", ".csv"]),
    ("malformed csv", "ragged.csv", {}, ["ragged.csv", "malformed CSV", "row 2"]),
    ("bad jsonl", "bad.jsonl", {}, ["bad.jsonl", "row 2", "not valid JSON"]),
    (
        "duplicate header",
        "duplicate_columns.csv",
        {},
        ["duplicate_columns.csv", "repeats column names", "text"],
    ),
    (
        "missing label column",
        "no_label.csv",
        {},
        ["no_label.csv", "no label column", "--label-col"],
    ),
    (
        "ambiguous label column",
        "ambiguous_label.csv",
        {},
        ["ambiguous_label.csv", "'label'", "'category'", "--label-col"],
    ),
    (
        "named column absent",
        "good.csv",
        {"text_col": "body"},
        ["good.csv", "column 'body'", "no column named"],
    ),
    (
        "empty text",
        "empty_text.csv",
        {},
        ["empty_text.csv", "row 2", "column 'text'", "empty text"],
    ),
    (
        "missing label",
        "missing_label.csv",
        {},
        ["missing_label.csv", "row 4", "column 'label'", "missing label"],
    ),
    (
        "duplicate ids",
        "duplicate_ids.csv",
        {},
        ["duplicate_ids.csv", "column 'id'", "'a2'", "rows 2, 5"],
    ),
    (
        "single class",
        "single_class.csv",
        {},
        ["single_class.csv", "same label", "at least two classes"],
    ),
    (
        "probs wrong width",
        "good.csv",
        {"probs": "probs_wrong_width.npy"},
        ["probs_wrong_width.npy", "2 columns", "3 columns"],
    ),
    (
        "probs negative",
        "good.csv",
        {"probs": "probs_negative.npy"},
        ["probs_negative.npy", "negative", "row 4"],
    ),
    (
        "probs bad sum",
        "good.csv",
        {"probs": "probs_bad_sum.npy"},
        ["probs_bad_sum.npy", "row 2", "sum to 3"],
    ),
    ("probs nan", "good.csv", {"probs": "probs_nan.npy"}, ["probs_nan.npy", "NaN", "row 3"]),
    (
        "probs wrong length",
        "good.csv",
        {"probs": "probs_wrong_length.npy"},
        ["probs_wrong_length.npy", "4 rows", "6 dataset rows"],
    ),
    (
        "embeddings wrong length",
        "good.csv",
        {"embeddings": "embeddings_wrong_length.npy"},
        ["embeddings_wrong_length.npy", "(8, 8)", "(6, D)"],
    ),
    (
        "dynamics wrong shape",
        "good.csv",
        {"dynamics": "dynamics_wrong_shape.npy"},
        ["dynamics_wrong_shape.npy", "(3, 6, 4)", "(E, 6, 3)"],
    ),
    (
        "pickled npy refused",
        "good.csv",
        {"embeddings": "pickled.npy"},
        ["pickled.npy", "without pickling"],
    ),
    (
        "annotation unknown label",
        "good.csv",
        {"annotations": "annotations_unknown_label.csv"},
        ["annotations_unknown_label.csv", "row 2", "column 'label'", "card_arival"],
    ),
    (
        "annotation unknown item",
        "good.csv",
        {"annotations": "annotations_unknown_item.csv"},
        ["annotations_unknown_item.csv", "row 2", "column 'item_id'", "zz9"],
    ),
    (
        "annotation missing column",
        "good.csv",
        {"annotations": "annotations_missing_column.csv"},
        ["annotations_missing_column.csv", "annotator_id"],
    ),
    (
        "label outside class list",
        "good.csv",
        {"classes": "classes_missing_one.json"},
        ["good.csv", "card_payment_fee_charged", "not in the class list"],
    ),
]
FILE_OPTIONS = ("probs", "annotations", "dynamics", "embeddings", "classes")


def _resolve(data: str, options: dict) -> tuple[str, dict]:
    opts = {k: str(BAD / v) if k in FILE_OPTIONS else v for k, v in options.items()}
    return str(BAD / data), opts


@pytest.mark.parametrize(("case", "data", "options", "needles"), CASES, ids=[c[0] for c in CASES])
def test_library_reports_each_bad_input_clearly(case, data, options, needles):
    path, opts = _resolve(data, options)
    with pytest.raises(DataError) as err:
        load_dataset(path, **opts)
    text = str(err.value)
    for needle in needles:
        assert needle in text, f"{case}: {needle!r} not in {text!r}"


@pytest.mark.parametrize(("case", "data", "options", "needles"), CASES, ids=[c[0] for c in CASES])
def test_cli_validate_exits_1_with_one_line_per_problem(case, data, options, needles, capsys):
    path, opts = _resolve(data, options)
    argv = ["validate", path]
    for k, v in opts.items():
        argv += [f"--{k.replace('_', '-')}", v]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, f"{case}: {needle!r} not in {err!r}"


# The app offers only existing columns in its selectors, so "named column absent" cannot arise there.
APP_CASES = [c for c in CASES if "text_col" not in c[2]]


@pytest.mark.parametrize(
    ("case", "data", "options", "needles"), APP_CASES, ids=[c[0] for c in APP_CASES]
)
def test_app_data_page_shows_each_problem(case, data, options, needles, workspace):
    from streamlit.testing.v1 import AppTest

    path, opts = _resolve(data, options)
    at = AppTest.from_file(str(ROOT / "views/data.py"), default_timeout=60)
    at.session_state["workspace"] = str(workspace.root)
    at.run()
    at.radio(key="data_source").set_value("Path on the server").run()
    at.text_input[0].input(path).run()
    for k, v in opts.items():
        if k in FILE_OPTIONS:
            at.text_input(key=f"path_{k}").input(v).run()
    at.button(key="load_button").click().run()
    assert not at.exception, at.exception
    shown = "\n".join(shown_text(e.value) for e in at.error)
    for needle in needles:
        assert needle in shown, f"{case}: {needle!r} not in {shown!r}"
    assert "dataset_hash" not in at.session_state


def test_cli_entry_point_exit_codes():
    exe = [sys.executable, "-m", "labelaudit"]
    ok = subprocess.run([*exe, "validate", str(GOOD)], capture_output=True, text=True, cwd=ROOT)
    assert ok.returncode == 0, ok.stderr
    assert "6 rows, 3 classes" in ok.stdout and "valid" in ok.stdout
    bad = subprocess.run(
        [*exe, "validate", str(BAD / "empty_text.csv")], capture_output=True, text=True, cwd=ROOT
    )
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    usage = subprocess.run([*exe, "validate"], capture_output=True, text=True, cwd=ROOT)
    assert usage.returncode == 2


def test_file_far_larger_than_memory_is_refused_before_reading(tmp_path):
    huge = tmp_path / "huge.csv"
    with open(huge, "wb") as f:
        f.write(b"id,text,label\n")
        f.truncate(2**40)  # 1 TiB, sparse: costs no disk, cannot fit in any memory
    with pytest.raises(DataError) as err:
        load_dataset(huge)
    assert (
        "huge.csv" in str(err.value)
        and "TiB" not in str(err.value)
        and "GiB of memory" in str(err.value)
    )


def test_wrong_encoding_loads_when_the_encoding_is_given():
    ds = load_dataset(BAD / "cp1252.csv", encoding="cp1252")
    assert ds.frame.loc[0, "text"] == "caf\u00e9 card payment"


def test_probabilities_slightly_off_are_renormalised_with_a_warning():
    ds = load_dataset(GOOD, probs=BAD / "probs_slightly_off.npy")
    assert np.allclose(ds.pred_probs.sum(axis=1), 1)
    assert any("renormalised" in str(w) for w in ds.warnings)


def test_sample_folder_loads_splits_in_order_and_ids_are_row_numbers():
    ds = load_dataset(SAMPLE)
    assert ds.n == 13_083 and ds.k == 77
    assert ds.frame["split"].iloc[0] == "train" and ds.frame["split"].iloc[-1] == "test"
    assert int(ds.split_mask("train").sum()) == 10_003 and int(ds.test_mask.sum()) == 3_080
    assert ds.frame["id"].iloc[5] == "5"
    assert ds.mapping["text"].startswith("text") and ds.mapping["label"].startswith("category")


def test_column_mapping_detection_says_what_it_chose_and_explicit_mapping_wins():
    df = pd.DataFrame(
        {"utterance": ["a b c", "d e f"], "intent": ["x", "y"], "comment": ["1", "2"]}
    )
    ds = load_dataset(df)
    assert ds.mapping["text"] == "utterance (detected by name)"
    assert ds.mapping["label"] == "intent (detected by name)"
    assert list(ds.frame["id"]) == ["0", "1"]
    assert "comment" in ds.metadata_columns
    ds2 = load_dataset(df, text_col="comment", label_col="intent")
    assert ds2.mapping["text"] == "comment (given)"


def test_readers_agree_across_formats(tmp_path):
    df = pd.read_csv(GOOD, dtype=str)
    df.to_parquet(tmp_path / "d.parquet")
    df.to_parquet(tmp_path / "d.pq")
    df.to_json(tmp_path / "d.jsonl", orient="records", lines=True)
    df.to_json(tmp_path / "d.ndjson", orient="records", lines=True)
    (tmp_path / "d.json").write_text(df.to_json(orient="records", indent=1), encoding="utf-8")
    df.to_csv(tmp_path / "d.tsv", sep="\t", index=False)
    df.to_csv(tmp_path / "d.txt", sep="\t", index=False)
    files = [GOOD, *(tmp_path / f"d{s}" for s in (".parquet", ".pq", ".jsonl", ".ndjson"))]
    files += [tmp_path / "d.json", tmp_path / "d.tsv", tmp_path / "d.txt"]
    hashes = {load_dataset(p).content_hash for p in files}
    hashes.add(load_dataset(df).content_hash)
    assert len(hashes) == 1


def test_validate_returns_problems_instead_of_raising():
    ds, problems = validate(BAD / "duplicate_ids.csv")
    assert ds is None and problems and problems[0].column == "id"


text_strategy = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    min_size=1,
    max_size=40,
).filter(lambda s: s.strip() != "")


@given(
    texts=st.lists(text_strategy, min_size=2, max_size=30),
    labels=st.lists(st.sampled_from(["a", "b", "c"]), min_size=2, max_size=30),
)
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_any_texts_round_trip_through_csv_unchanged(tmp_path_factory, texts, labels):
    n = min(len(texts), len(labels))
    labels = labels[:n]
    if len(set(labels)) < 2:
        labels = ["a", "b"] + labels[2:]
    df = pd.DataFrame({"text": texts[:n], "label": labels})
    path = tmp_path_factory.mktemp("rt") / "d.csv"
    df.to_csv(
        path, index=False, quoting=csv.QUOTE_ALL
    )  # pandas leaves a lone CR unquoted otherwise
    ds = load_dataset(path)
    assert ds.texts == [t for t in df["text"]]
    assert sorted(ds.classes) == sorted(set(labels))
    assert (np.asarray(ds.classes)[ds.labels] == np.asarray(labels)).all()


@given(shuffle_seed=st.integers(0, 2**16))
@settings(max_examples=10, deadline=None)
def test_content_hash_changes_with_any_label_and_not_with_reload(shuffle_seed):
    df = pd.read_csv(GOOD, dtype=str)
    a = load_dataset(df)
    assert load_dataset(df.copy()).content_hash == a.content_hash
    rng = np.random.default_rng(shuffle_seed)
    i = int(rng.integers(len(df)))
    changed = df.copy()
    changed.loc[i, "label"] = (
        "exchange_rate" if changed.loc[i, "label"] != "exchange_rate" else "card_arrival"
    )
    assert load_dataset(changed).content_hash != a.content_hash
    assert load_dataset(changed).text_hash == a.text_hash


def test_core_never_imports_streamlit():
    code = (
        "import sys, labelaudit, labelaudit.io, labelaudit.cli, labelaudit.workspace;"
        "import importlib, pkgutil;"
        "[importlib.import_module('labelaudit.' + m.name) for m in pkgutil.walk_packages(labelaudit.__path__)"
        " if not m.ispkg and m.name != '__main__'];"
        "import labelaudit.detectors.registry as r; r.all_detectors();"
        "assert 'streamlit' not in sys.modules, 'streamlit imported by the core'"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr


def _write_cartography(folder, ids, logits_by_epoch):
    import json

    folder.mkdir(parents=True, exist_ok=True)
    for e, logits in enumerate(logits_by_epoch):
        with open(folder / f"dynamics_epoch_{e}.jsonl", "w") as f:
            for guid, row in zip(ids, logits, strict=True):
                f.write(
                    json.dumps({"guid": guid, f"logits_epoch_{e}": row.tolist(), "gold": 0}) + "\n"
                )


def test_cartography_dynamics_are_read_in_dataset_order(tmp_path):
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 6, 3)).astype(np.float32)
    ids = ["a1", "a2", "a3", "a4", "a5", "a6"]
    order = [5, 0, 3, 1, 4, 2]  # files list rows in another order than the dataset
    _write_cartography(tmp_path / "td", [ids[i] for i in order], [lg[order] for lg in logits])
    ds = load_dataset(GOOD, dynamics=tmp_path / "td")
    assert ds.dynamics.shape == (3, 6, 3)
    assert np.allclose(ds.dynamics, logits)


def test_cartography_with_an_unknown_guid_is_refused(tmp_path):
    logits = np.zeros((2, 6, 3), dtype=np.float32)
    _write_cartography(tmp_path / "td", ["a1", "a2", "a3", "a4", "a5", "zz"], logits)
    with pytest.raises(DataError) as err:
        load_dataset(GOOD, dynamics=tmp_path / "td")
    assert (
        "dynamics_epoch_0.jsonl" in str(err.value)
        and "row 6" in str(err.value)
        and "guid" in str(err.value)
    )


def test_external_scores_per_row_and_per_pair(tmp_path):
    rows = pd.DataFrame({"id": ["a1", "a3"], "my_score": [0.2, 0.9]})
    ds = load_dataset(GOOD, scores=rows)
    assert ds.row_scores["my_score"].tolist() == [0.2, 0.9] and ds.pair_scores is None
    pairs = tmp_path / "influence.csv"
    pd.DataFrame({"train_id": ["a1", "a2"], "query_id": ["a5", "a5"], "score": [0.5, -0.1]}).to_csv(
        pairs, index=False
    )
    ds2 = load_dataset(GOOD, scores=pairs)
    assert ds2.pair_scores["score"].tolist() == [0.5, -0.1] and ds2.row_scores is None
    bad = tmp_path / "bad_pairs.csv"
    pd.DataFrame(
        {"train_id": ["a1", "nope"], "query_id": ["a5", "a5"], "score": [0.5, "x"]}
    ).to_csv(bad, index=False)
    with pytest.raises(DataError) as err:
        load_dataset(GOOD, scores=bad)
    text = str(err.value)
    assert (
        "bad_pairs.csv" in text
        and "column 'score'" in text
        and "column 'train_id'" in text
        and "row 2" in text
    )


def test_annotations_with_timestamps_and_folder_companions(tmp_path):
    import shutil

    folder = tmp_path / "data"
    folder.mkdir()
    shutil.copy(GOOD, folder / "train.csv")
    pd.DataFrame(
        {
            "item_id": ["a1", "a1", "a3"],
            "annotator_id": ["w1", "w2", "w1"],
            "label": ["card_arrival", "exchange_rate", "exchange_rate"],
            "timestamp": ["2024-05-01T12:00:00Z", "2024-05-01T12:01:00Z", "2024-05-02T08:00:00Z"],
        }
    ).to_csv(folder / "annotations_team.csv", index=False)
    ds = load_dataset(folder)
    assert ds.n == 6 and ds.annotations is not None and len(ds.annotations) == 3
    assert str(ds.annotations["timestamp"].dt.tz) == "UTC"
    assert set(ds.frame["split"]) == {"train"}
