"""Label Studio files without a server: labeling configs and project exports (tests/data/labelstudio)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labelaudit.errors import DataError
from labelaudit.integrations.labelstudio import (
    classification_config_xml,
    load_export_dataset,
    looks_like_labelstudio_export,
    parse_export,
    parse_label_config,
)

DATA = Path(__file__).parent / "data" / "labelstudio"
EXPORT = DATA / "project-export.json"
CONFIG = DATA / "label_config.xml"


def _problem(exc: pytest.ExceptionInfo) -> object:
    assert len(exc.value.problems) >= 1
    return exc.value.problems[0]


# --------------------------------------------------------------------------- configs
def test_config_gives_text_field_control_and_every_class():
    cfg = parse_label_config(CONFIG.read_text())
    assert (cfg.text_field, cfg.control) == ("text", "sentiment")
    assert cfg.classes == [
        "positive",
        "negative",
        "neutral",
        "mixed",
    ]  # config order, unused included


def test_config_aliases_map_to_class_names():
    cfg = parse_label_config(
        '<View><Text name="t" value="$body"/><Choices name="c" toName="t">'
        '<Choice value="Positive" alias="pos"/><Choice value="Negative" alias="neg"/></Choices></View>'
    )
    assert cfg.text_field == "body" and cfg.class_of("pos") == "Positive"


def test_own_config_reads_back_and_ignores_the_flag_control():
    cfg = parse_label_config(classification_config_xml(["a", "b & c", 'say "hi"']))
    assert cfg.control == "label" and cfg.classes == ["a", "b & c", 'say "hi"']


BAD_CONFIGS = [
    (
        '<View><Text name="t" value="$text"/><Labels name="ner" toName="t"><Label value="PER"/></Labels></View>',
        "no Choices control (found Labels 'ner')",
    ),
    (
        '<View><Text name="t" value="$text"/><Choices name="c" toName="t" choice="multiple">'
        '<Choice value="a"/><Choice value="b"/></Choices></View>',
        'allows several choices per item (choice="multiple")',
    ),
    (
        '<View><Text name="t" value="$text"/><Choices name="c1" toName="t"><Choice value="a"/><Choice value="b"/>'
        '</Choices><Choices name="c2" toName="t"><Choice value="x"/><Choice value="y"/></Choices></View>',
        "several Choices controls",
    ),
    (
        '<View><Image name="img" value="$image"/><Choices name="c" toName="img"><Choice value="a"/>'
        '<Choice value="b"/></Choices></View>',
        "not a Text object",
    ),
    (
        '<View><Text name="t" value="$text"/><Choices name="c" toName="t"><Choice value="a"/></Choices></View>',
        "1 choice(s)",
    ),
    ("<View><Text name='t' value='$text'>", "not valid XML"),
]


@pytest.mark.parametrize(
    "xml,found", BAD_CONFIGS, ids=["ner", "multi", "two-controls", "image", "one-class", "broken"]
)
def test_non_single_choice_configs_get_a_clear_message(xml, found):
    with pytest.raises(DataError) as e:
        parse_label_config(xml, file="config.xml")
    p = _problem(e)
    assert found in p.found and p.file == "config.xml" and p.expected


def test_config_control_option_picks_one_of_several():
    xml = BAD_CONFIGS[2][0]
    assert parse_label_config(xml, control="c2").classes == ["x", "y"]
    with pytest.raises(DataError, match="no Choices control named 'c3'"):
        parse_label_config(xml, control="c3")


# --------------------------------------------------------------------------- the export as a dataset
def test_export_is_recognised_by_its_content(tmp_path):
    assert looks_like_labelstudio_export(EXPORT)
    other = tmp_path / "rows.json"
    other.write_text(json.dumps([{"text": "a", "label": "x"}]))
    assert not looks_like_labelstudio_export(other)


def test_export_loads_as_dataset_with_every_annotator():
    ds = load_export_dataset(EXPORT, label_config=CONFIG)
    # tasks 14 (no annotation) and 15 (skipped) have no label: left out, with a warning naming them
    assert ds.ids.tolist() == ["11", "12", "13", "16"]
    assert ds.classes == ["positive", "negative", "neutral", "mixed"]
    labels = dict(zip(ds.ids, ds.label_names, strict=True))
    assert labels == {"11": "positive", "12": "negative", "13": "neutral", "16": "neutral"}
    # 11: majority of 3; 12: a tie goes to the earliest annotation; 13: the ground truth wins
    ann = ds.annotations
    assert len(ann) == 8 and ann["annotator_id"].nunique() == 4
    assert set(ann["annotator_id"]) == {"user 1", "user 2", "user 3", "dee@example.com"}
    assert ann["timestamp"].notna().all()
    frame = ds.frame.set_index("id")
    assert (
        frame.loc["11", "ls_prediction"] == "positive"
        and frame.loc["11", "ls_prediction_score"] == 0.91
    )
    assert frame.loc["13", "source"] == "web" and frame.loc["16", "ls_task_id"] == 16
    (warn,) = [w for w in ds.warnings if "no label yet" in w.found]
    assert "14, 15" in warn.found and warn.file == EXPORT.name


def test_export_without_config_infers_control_and_classes():
    ds = load_export_dataset(EXPORT)
    assert ds.classes == ["negative", "neutral", "positive"]  # only the classes used, sorted
    assert ds.n == 4


def test_label_col_naming_a_data_field_gives_the_label(tmp_path):
    tasks = json.loads(EXPORT.read_text())
    for t, lab in zip(
        tasks, ["positive", "negative", "negative", "neutral", "neutral", "positive"], strict=True
    ):
        t["data"]["gold"] = lab
    f = tmp_path / "export.json"
    f.write_text(json.dumps(tasks))
    ds = load_export_dataset(f, label_config=CONFIG, label_col="gold")
    assert ds.n == 6 and ds.frame.set_index("id").loc["14", "label"] == "neutral"
    assert len(ds.annotations) == 8


def _write(tmp_path, tasks) -> Path:
    f = tmp_path / "export.json"
    f.write_text(tasks if isinstance(tasks, str) else json.dumps(tasks))
    return f


def _task(**over):
    t = json.loads(EXPORT.read_text())[0]
    t.update(over)
    return t


def _multi():
    t = _task()
    t["annotations"][0]["result"][0]["value"]["choices"] = ["positive", "negative"]
    return [t]


def _wrong_type():
    t = _task()
    t["annotations"][1]["result"][0]["type"] = "labels"
    return [t]


def _unknown_class():
    t = _task()
    t["annotations"][2]["result"][0]["value"]["choices"] = ["furious"]
    return [t]


BAD_EXPORTS = [
    ("[{not json", None, None, "not valid JSON"),
    ({"data": {"text": "x"}}, None, None, "a single task"),
    ([], None, None, "no tasks"),
    ([{"id": 1, "data": {"text": "x"}, "completions": []}], 1, "completions", "before 1.0"),
    ([_task(data="text")], 1, "data", "'data' is str"),
    ([_task(data={"body": "x"})], 1, "data.text", "text field is missing"),
    (_multi(), 1, "annotations[0].result[0].value.choices", "multi-label"),
    (_wrong_type(), 1, "annotations[1].result[0].type", "type 'labels'"),
    (_unknown_class(), 1, "annotations[2].result[0].value.choices", "'furious' is not one of"),
    ([_task(), _task()], 2, "id", "also the id of task 1"),
]


@pytest.mark.parametrize(
    "content,row,field,found",
    BAD_EXPORTS,
    ids=[
        "json",
        "object",
        "empty",
        "old-version",
        "data",
        "text",
        "multi",
        "type",
        "class",
        "dup-id",
    ],
)
def test_bad_exports_name_file_task_field(tmp_path, content, row, field, found):
    f = _write(tmp_path, content)
    with pytest.raises(DataError) as e:
        load_export_dataset(f, label_config=CONFIG)
    p = _problem(e)
    assert p.file == "export.json" and found in p.found and p.expected
    assert p.row == row and p.column == field


def test_export_of_ner_results_without_config_is_refused(tmp_path):
    t = _task(predictions=[])
    for a in t["annotations"]:
        a["result"] = [
            {"from_name": "ner", "to_name": "text", "type": "labels", "value": {"labels": ["PER"]}}
        ]
    with pytest.raises(DataError, match="not single-choice text classification") as e:
        parse_export([t], file="ner.json")
    assert "3 'labels'" in str(e.value)


def test_export_with_no_labelled_task_says_so(tmp_path):
    f = _write(tmp_path, [_task(annotations=[])])
    with pytest.raises(DataError, match="no task has a label"):
        load_export_dataset(f, label_config=CONFIG)


def test_load_dataset_and_the_cli_read_an_export(capsys):
    from labelaudit.cli import main
    from labelaudit.io import load_dataset

    ds = load_dataset(EXPORT)
    assert ds.n == 4 and len(ds.annotations) == 8 and ds.source == str(EXPORT)
    assert main(["validate", str(EXPORT)]) == 0
    out = capsys.readouterr().out
    assert "8 labels from 4 annotators on 4 items" in out and "valid" in out
