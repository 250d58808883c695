"""Strings from the data never become markup on the surface they land on (issue 16): Plotly tick
labels, titles and hovers, and markdown headers."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from components.text import md_escape
from labelaudit import plots

EVIL_CLASS = '<a href="http://evil.example">fraud</a>'
EVIL_ID = "r298`[pwn](http://evil.example)`"
#: Markup labelaudit itself puts in hover templates; anything else is data that escaped.
OWN_TAGS = re.compile(r"</?(br|b|i|extra)>")


def _strings(obj):
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _strings(v)
    elif isinstance(obj, list | tuple):
        for v in obj:
            yield from _strings(v)
    elif isinstance(obj, np.ndarray) and obj.dtype == object:
        for v in obj.ravel():
            yield from _strings(v)


def assert_no_live_markup(fig) -> None:
    """No string in the figure holds a tag other than labelaudit's own hover markup."""
    for s in _strings(fig.to_plotly_json()):
        assert "<" not in OWN_TAGS.sub("", s), s


def test_class_balance_keeps_class_names_as_plain_text():
    # Before: px.bar put the raw class name on Plotly tick labels, which render HTML: a live
    # external link. The chart is now Vega-Lite, which draws labels and tooltips as text (the
    # browser test reads the tick back: tests/test_first_run_browser.py); the name goes in as it
    # is (escaping it would show "&lt;a") and nothing in the spec turns data into markup.
    counts = pd.Series({EVIL_CLASS: 5, "refund": 3})
    data, spec = plots.build_class_balance_spec(counts)
    assert data["class"].tolist() == [EVIL_CLASS, "refund"]
    assert EVIL_CLASS not in json.dumps(spec["encoding"]["tooltip"])
    assert spec["usermeta"]["embedOptions"]["renderer"] == "svg"
    assert "labelExpr" not in json.dumps(spec) and "href" not in json.dumps(spec["encoding"])


@pytest.mark.parametrize("color_by", ["given label", "suggested label", "cluster", "score"])
def test_map_escapes_every_data_string(color_by):
    table = pd.DataFrame(
        {
            "id": [EVIL_ID, "b"],
            "given_label": [EVIL_CLASS, "x"],
            "suggested_label": ["<img src=x onerror=alert(1)>", EVIL_CLASS],
            "cluster": [0, -1],
            "x": [0.0, 1.0],
            "y": [0.0, 1.0],
            "score": [0.1, 0.9],
        }
    )
    fig = plots.build_map_figure(
        table, pd.Series(["<script>alert(1)</script>", "plain"]), color_by=color_by
    )
    # customdata[0] is the raw id the selection reads back; it is never rendered
    fig.data[0].customdata = [row[1:] for row in fig.data[0].customdata]
    assert_no_live_markup(fig)


def test_label_issue_figures_escape_class_names():
    classes = [EVIL_CLASS, "b", "c"]
    counts = np.array([[5, 2, 0], [1, 4, 0], [0, 0, 3]])
    assert_no_live_markup(plots.build_confusion_figure(counts, classes))
    assert_no_live_markup(plots.build_noise_matrix_figure(np.eye(3) * 0.9 + 0.03, classes))
    per_class = pd.DataFrame(
        {"class": classes, "rows needing review": [1, 2, 0], "share of class": [0.1, 0.2, 0.0]}
    )
    assert_no_live_markup(plots.build_issues_per_class_figure(per_class))


def test_md_escape_keeps_an_id_inside_its_header():
    # Before: f"**Row `{id}`**" let a backtick in the id close the code span and open a link.
    text = f"**Row {md_escape(EVIL_ID)}**"
    assert "](" not in text.replace("\\]\\(", "") and "\\`" in text


def _expressions(spec) -> list[str]:
    """Every Vega expression in a spec (label expressions, filters, tests, event streams)."""
    out = []
    if isinstance(spec, dict):
        for k, v in spec.items():
            if k in (
                "labelExpr",
                "filter",
                "test",
                "expr",
                "on",
                "translate",
                "zoom",
            ) and isinstance(v, str):
                out.append(v)
            out += _expressions(v)
    elif isinstance(spec, list):
        for v in spec:
            out += _expressions(v)
    return out


def test_vega_specs_keep_data_strings_as_data():
    """The Vega-Lite charts the pages open with (the map, the data map, the confusion matrix):
    class names, ids and texts are data values (or a parameter's value), never part of an
    expression, a format or markup; the browser test reads them back as text
    (tests/test_first_run_browser.py)."""
    table = pd.DataFrame(
        {
            "id": [EVIL_ID, "b"],
            "given_label": [EVIL_CLASS, "x"],
            "cluster": [0, -1],
            "x": [0.0, 1.0],
            "y": [0.0, 1.0],
        }
    )
    texts = pd.Series(["<script>alert(1)</script>", "plain"])
    dyn = table.assign(
        variability=[0.1, 0.2], confidence=[0.5, 0.9], text=texts, region=[EVIL_CLASS, "x"]
    )
    specs = [
        plots.build_map_spec(table, texts, highlight=np.array([True, False])),
        plots.build_data_map_spec(dyn, dyn["region"], "region", region_colours={}),
        plots.build_confusion_spec(np.array([[5, 2], [1, 4]]), [EVIL_CLASS, EVIL_ID]),
    ]
    for data, spec in specs:
        text = json.dumps(spec)
        for expr in _expressions(spec):
            assert "evil" not in expr and "alert" not in expr, expr
        assert '"html"' not in text and "<script" not in text
        strings = set(data.select_dtypes(include="object").stack().astype(str))
        assert EVIL_CLASS in strings or EVIL_ID in strings
    # the confusion axis names come from a parameter holding them as they are (shown as SVG text)
    _, spec = specs[2]
    assert spec["params"][0]["value"] == [EVIL_CLASS, EVIL_ID]
    assert all(
        e in ("classNames[datum.value]", "datum.off")
        or "pointer" in e
        or e == "click"
        or e == "wheel!"
        for e in _expressions(spec)
    ), _expressions(spec)
