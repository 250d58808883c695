"""``labelaudit agreement``: statistics on stdout, item and annotator tables, exit codes."""

from __future__ import annotations

import pandas as pd
import pytest

from labelaudit.cli import main
from tests.conftest import SAMPLE, SHARED


@pytest.fixture
def temp_annotations(tmp_path):
    df = pd.read_csv(
        SHARED / "benchmarks/multiannotator/temp.standardized.tsv", sep="\t", dtype=str
    )
    p = tmp_path / "temp.csv"
    df.rename(columns={"orig_id": "item", "!amt_worker_ids": "worker", "response": "label"})[
        ["item", "worker", "label"]
    ].to_csv(p, index=False)
    return p


@pytest.mark.parametrize(
    "method, out_name", [("mv", "items.csv"), ("ds", "items.parquet"), ("mace", "items.csv")]
)
def test_writes_items_and_annotators(temp_annotations, tmp_path, capsys, method, out_name):
    out, ann = tmp_path / out_name, tmp_path / "annotators.csv"
    code = main(
        [
            "agreement",
            str(temp_annotations),
            "--method",
            method,
            "--out",
            str(out),
            "--annotators-out",
            str(ann),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "Krippendorff's alpha: 0.2234" in printed and "Fleiss' kappa: 0.2232" in printed
    items = (
        pd.read_parquet(out)
        if out.suffix == ".parquet"
        else pd.read_csv(out, dtype={"item_id": str})
    )
    assert items.columns.tolist() == [
        "item_id",
        "consensus_label",
        "consensus_confidence",
        "n_ratings",
        "agreement",
    ]
    assert len(items) == 462 and (items["n_ratings"] == 10).all()
    assert items["consensus_confidence"].between(0, 1).all()
    annotators = pd.read_csv(ann)
    assert annotators.columns[:4].tolist() == [
        "annotator_id",
        "competence",
        "n_labels",
        "agreement",
    ]
    assert annotators["n_labels"].sum() == 4620


def test_the_simulated_sample_file_works_standalone(tmp_path, capsys):
    code = main(
        ["agreement", str(SAMPLE / "annotations_simulated.csv"), "--out", str(tmp_path / "i.csv")]
    )
    assert code == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("likely spammers: "))
    assert sorted(line.removeprefix("likely spammers: ").split(", ")) == [
        "sim_spammer1",
        "sim_spammer2",
    ]
    assert "1. sim_spammer" in out and "kappa with the other raters" in out
    assert "Fleiss' kappa: undefined (items have different numbers of ratings" in out


@pytest.mark.parametrize(
    "content, message",
    [
        ("item_id,label\n1,a\n", "missing column(s) ['annotator_id']"),
        ("item_id,annotator_id,label\n1,u,a\n2,,b\n", "empty value(s) in rows 2"),
        ("item_id,annotator_id,label\n1,u,a\n2,v,a\n", "at least two different labels"),
    ],
)
def test_bad_annotations_exit_1_with_one_line_per_problem(tmp_path, capsys, content, message):
    p = tmp_path / "ann.csv"
    p.write_text(content)
    assert main(["agreement", str(p), "--out", str(tmp_path / "o.csv")]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert all(line.startswith("error: ") for line in err.strip().splitlines())


@pytest.mark.parametrize(
    "args",
    [
        ["--out", "x.txt"],
        ["--out", "/no/such/folder/x.csv"],
        ["--out", "x.csv", "--min-overlap", "0"],
    ],
)
def test_bad_usage_exits_2(temp_annotations, tmp_path, capsys, args, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["agreement", str(temp_annotations), *args]) == 2
    assert "usage error" in capsys.readouterr().err


def test_missing_file_exits_1(tmp_path, capsys):
    assert main(["agreement", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "o.csv")]) == 1
    assert "no such file" in capsys.readouterr().err
