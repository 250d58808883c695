"""Every CSV labelaudit writes reads back to the same values; spreadsheet formulas are neutralised."""

from __future__ import annotations

import csv
import io
import subprocess
import sys

import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from labelaudit.csvfile import (
    needs_neutralising,
    neutralise,
    neutralise_formulas,
    read_csv_back,
    restore,
    restore_formulas,
    to_csv_bytes,
    write_csv,
)
from labelaudit.errors import DataError
from labelaudit.io import load_dataset, read_table
from tests.conftest import ROOT

#: Arbitrary Unicode without NUL (refused, see below) and without lone surrogates (not UTF-8).
TEXT = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40
)
#: Texts built from the characters that break CSV files and spreadsheets.
NASTY = st.lists(
    st.sampled_from(
        [
            "=",
            "+",
            "-",
            "@",
            "\uff1d",
            "\uff0b",
            "\uff0d",
            "\uff20",
            "'",
            '"',
            ",",
            ";",
            "\t",
            "\r",
            "\n",
            "\r\n",
            " ",
            "\u3000",
            "\xa0",
            "1",
            "A1",
            "SUM(",
            ")",
            "é",
            "日本",
            "🏷️",
        ]
    ),
    max_size=8,
).map("".join)
CELL = st.one_of(TEXT, NASTY)


def _frame(rows: list[tuple[str, str, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["id", "text", "label"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(CELL, CELL, CELL), min_size=1, max_size=6))
@example([("1", "a\rb", "x")])  # the reported defect: a bare CR was written unquoted
@example([("-1", "=1+1", " =cmd|' /C calc'!A0")])
@example([("p\x1fq", "\t=x", "\uff1dA1")])
def test_any_text_reads_back_to_the_same_values(rows):
    df = _frame(rows)
    data = to_csv_bytes(df)
    back = read_csv_back(data)
    pd.testing.assert_frame_equal(back, df, check_dtype=False)
    # and the standard library's reader agrees, row for row, cell for cell (no row is lost)
    parsed = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    assert len(parsed) == len(df) + 1
    restored = [[restore(c) for c in r] for r in parsed[1:]]
    assert restored == [list(r) for r in rows]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(CELL, CELL), min_size=1, max_size=5))
def test_labelaudits_own_reader_reads_an_export_back(tmp_path_factory, rows):
    """`labelaudit validate` of a written file finds every row with its label (no shifted rows)."""
    texts = [f"t{i} {t}" for i, (t, _) in enumerate(rows)]  # never empty: a dataset needs a text
    labels = [f"c{i % 2} {lab}".strip() for i, (_, lab) in enumerate(rows)]
    df = pd.DataFrame({"id": [str(i) for i in range(len(rows))], "text": texts, "label": labels})
    path = write_csv(df, tmp_path_factory.mktemp("csv") / "out.csv")
    back = restore_formulas(read_table(path))
    assert back["text"].tolist() == texts
    assert back["label"].tolist() == labels


def test_an_exported_bare_carriage_return_passes_validate(tmp_path):
    df = pd.DataFrame(
        {"id": ["1", "2"], "text": ["line one\rstill one", "two"], "label": ["a", "b"]}
    )
    path = write_csv(df, tmp_path / "cr.csv")
    r = subprocess.run(
        [sys.executable, "-m", "labelaudit", "validate", str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    ds = load_dataset(path)
    assert ds.frame["text"].tolist() == ["line one\rstill one", "two"]


@given(CELL)
@settings(max_examples=500, deadline=None)
def test_restore_undoes_neutralise_exactly(text):
    assert restore(neutralise(text)) == text
    # an independent statement of the rule: what a spreadsheet would run starts with an apostrophe
    runs = bool(text) and (
        text[0] in "\t\r\n"
        or (text.lstrip()[:1] in set("=+-@\uff1d\uff0b\uff0d\uff20") and not _plain_number(text))
    )
    if runs:
        assert neutralise(text) == "'" + text


def _plain_number(text: str) -> bool:
    import re

    return re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?", text) is not None


@pytest.mark.parametrize(
    "cell",
    [
        "=1+1",
        "+1+1",
        "-1+1",
        "@SUM(A1)",
        " =1+1",  # leading space before =
        "   @x",
        "\u3000=1",  # full-width space
        "\xa0=1",  # no-break space
        "\uff1d1+1",  # full-width equals
        "\uff0bA1",
        "\uff20A1",
        "\t=1",
        "\r=1",
        "\n=1",
        "\tplain",  # a leading tab alone
        "\nplain",
        "-",
        "'=1+1",  # already neutralised by someone: escaped again, so restore is exact
    ],
)
def test_cells_a_spreadsheet_would_run_are_neutralised(cell):
    assert needs_neutralising(cell)
    assert neutralise(cell) == "'" + cell


@pytest.mark.parametrize("cell", ["-1", "+3", "-2.5", "-2e-3", "1", "0.5", "ok", "'tis", "a=b", ""])
def test_numbers_and_plain_text_stay_readable(cell):
    assert not needs_neutralising(cell)
    assert neutralise(cell) == cell


def test_numeric_ids_survive_a_round_trip_unchanged():
    df = pd.DataFrame(
        {"id": ["-1", "-2", "007"], "text": ["a", "b", "c"], "label": ["x", "y", "x"]}
    )
    raw = to_csv_bytes(df).decode()
    assert "\r\n-1,a,x\r\n" in raw and "'-" not in raw
    assert read_csv_back(raw.encode())["id"].tolist() == ["-1", "-2", "007"]


def test_column_names_are_neutralised_and_restored():
    df = pd.DataFrame({"=cmd": ["1"], "ok": ["2"]})
    raw = to_csv_bytes(df).decode()
    assert raw.startswith("'=cmd,ok\r\n")
    assert read_csv_back(raw.encode()).columns.tolist() == ["=cmd", "ok"]


def test_a_nul_character_is_refused_with_row_and_column():
    df = pd.DataFrame({"id": ["1", "2"], "text": ["fine", "bad\x00text"], "label": ["a", "b"]})
    with pytest.raises(DataError) as err:
        to_csv_bytes(df, what="clean.csv")
    text = str(err.value)
    assert "clean.csv" in text and "row 2" in text and "column 'text'" in text
    assert "Parquet" in text


def test_missing_values_are_empty_cells_and_other_types_are_kept():
    df = pd.DataFrame({"a": ["x", None], "n": [1.5, float("nan")], "b": [True, False]})
    raw = to_csv_bytes(df).decode()
    assert raw == "a,n,b\r\nx,1.5,True\r\n,,False\r\n"


def test_neutralise_formulas_leaves_non_text_columns_alone():
    df = pd.DataFrame({"n": [-1, 2], "t": ["-x", "y"]})
    out = neutralise_formulas(df)
    assert out["n"].tolist() == [-1, 2] and out["t"].tolist() == ["'-x", "y"]


# --------------------------------------------------------------------------- every writer is this one
def test_every_csv_writer_in_the_product_uses_labelaudit_csvfile():
    """No module writes CSV another way (pandas to_csv, csv.writer) than labelaudit.csvfile."""
    offenders = []
    for folder in ("labelaudit", "components", "views", "scripts"):
        for f in (ROOT / folder).rglob("*.py"):
            if f.name == "csvfile.py":
                continue
            src = f.read_text(encoding="utf-8")
            if ".to_csv(" in src or "csv.writer(" in src or "csv.DictWriter(" in src:
                offenders.append(str(f.relative_to(ROOT)))
    assert offenders == []


def test_the_review_export_writes_through_the_one_writer(tmp_path):
    from labelaudit.review.export import to_csv_bytes as export_bytes
    from labelaudit.review.export import write_table

    assert export_bytes is to_csv_bytes
    df = _frame([("1", "a\rb", "=x")])
    p = write_table(df, tmp_path / "clean.csv")
    assert read_csv_back(p).equals(df)
