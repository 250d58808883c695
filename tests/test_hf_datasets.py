"""Hugging Face datasets in and out: save_to_disk folders, their Arrow files, Parquet with features."""

from __future__ import annotations

import datasets
import pandas as pd
import pytest

from labelaudit.errors import DataError
from labelaudit.integrations.hf import export_hf, is_hf_file, is_hf_folder, load_hf_dataset
from labelaudit.review.store import ReviewStore

NAMES = ["negative", "positive", "unused"]


@pytest.fixture
def hf_dir(tmp_path):
    feats = datasets.Features(
        {
            "idx": datasets.Value("int64"),
            "sentence": datasets.Value("string"),
            "label": datasets.ClassLabel(names=NAMES),
        }
    )
    train = datasets.Dataset.from_dict(
        {"idx": [0, 1, 2, 3], "sentence": ["good", "bad", "fine", "meh"], "label": [1, 0, 1, 0]},
        features=feats,
    )
    test = datasets.Dataset.from_dict(
        {"idx": [4, 5], "sentence": ["great", "awful"], "label": [1, 0]}, features=feats
    )
    datasets.DatasetDict({"train": train, "test": test}).save_to_disk(str(tmp_path / "dd"))
    train.save_to_disk(str(tmp_path / "one"))
    train.to_parquet(str(tmp_path / "train.parquet"))
    return tmp_path


def test_dataset_dict_folder_keeps_classlabel_names_and_splits(hf_dir):
    assert is_hf_folder(hf_dir / "dd") and not is_hf_folder(hf_dir)
    ds = load_hf_dataset(hf_dir / "dd")
    assert ds.classes == NAMES  # ClassLabel order, the unused class kept
    assert ds.splits == ["train", "test"] and ds.has_test_split
    assert ds.ids.tolist() == ["0", "1", "2", "3", "4", "5"]
    assert ds.label_names.tolist() == [
        "positive",
        "negative",
        "positive",
        "negative",
        "positive",
        "negative",
    ]


@pytest.mark.parametrize("which", ["one", "arrow", "parquet"])
def test_single_dataset_arrow_and_parquet_read_alike(hf_dir, which):
    path = {
        "one": hf_dir / "one",
        "arrow": next((hf_dir / "one").glob("*.arrow")),
        "parquet": hf_dir / "train.parquet",
    }[which]
    if which != "one":
        assert is_hf_file(path)
    ds = load_hf_dataset(path)
    assert ds.classes == NAMES and ds.n == 4 and ds.texts[0] == "good"


def test_plain_parquet_is_not_taken_for_a_hf_file(tmp_path):
    pd.DataFrame({"text": ["a", "b"], "label": ["x", "y"]}).to_parquet(tmp_path / "p.parquet")
    assert not is_hf_file(tmp_path / "p.parquet")


def test_a_label_index_without_a_name_is_reported(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    good = datasets.Dataset.from_dict(
        {"text": ["a", "b"], "label": [0, 1]},
        features=datasets.Features(
            {"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["x", "y"])}
        ),
    )
    good.to_parquet(str(tmp_path / "g.parquet"))
    table = pq.read_table(tmp_path / "g.parquet")
    bad = table.set_column(1, "label", pa.array([0, 7], type=pa.int64()))
    pq.write_table(bad.replace_schema_metadata(table.schema.metadata), tmp_path / "bad.parquet")
    with pytest.raises(DataError) as e:
        load_hf_dataset(tmp_path / "bad.parquet")
    p = e.value.problems[0]
    assert p.file == "bad.parquet" and p.row == 2 and p.column == "label" and "index 7" in p.found


def test_a_broken_folder_is_a_clear_message(hf_dir):
    (hf_dir / "dd" / "dataset_dict.json").write_text("{not json")
    with pytest.raises(DataError) as e:
        load_hf_dataset(hf_dir / "dd")
    assert e.value.problems[0].file == "dd" and "Hugging Face dataset" in e.value.problems[0].found


def test_export_reads_back_with_load_from_disk_and_names_intact(hf_dir, tmp_path):
    ds = load_hf_dataset(hf_dir / "dd")
    store = ReviewStore(f"sqlite:///{tmp_path / 'r.sqlite'}")
    store.record(
        dataset_version=ds.content_hash,
        item_id="1",
        reviewer="ana",
        action="change",
        old_label="negative",
        new_label="unused",
    )
    store.record(
        dataset_version=ds.content_hash,
        item_id="2",
        reviewer="ana",
        action="remove",
        old_label="positive",
        new_label=None,
    )
    out = export_hf(ds, store, out=tmp_path / "clean")
    back = datasets.load_from_disk(str(out))
    assert isinstance(back, datasets.DatasetDict) and set(back) == {"train", "test"}
    feat = back["train"].features["final_label"]
    assert isinstance(feat, datasets.ClassLabel) and feat.names == NAMES
    rows = back["train"].to_pandas().set_index("id")
    assert "2" not in rows.index  # removed rows are dropped
    assert feat.int2str(int(rows.loc["1", "final_label"])) == "unused"
    assert back["train"].features["original_label"].names == NAMES
    # and labelaudit reads its own export back, names and splits intact
    again = load_hf_dataset(out, label_col="final_label")
    assert again.classes == NAMES and again.n == 5 and again.splits == ["train", "test"]
    store.close()


def test_load_dataset_recognises_hf_folders_and_files(hf_dir):
    from labelaudit.io import load_dataset

    assert load_dataset(hf_dir / "dd").classes == NAMES
    assert load_dataset(hf_dir / "train.parquet").classes == NAMES
