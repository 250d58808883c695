"""The pages' tables, filters and matrices (labelaudit.tables) and their figures, without Streamlit."""

from __future__ import annotations

import doctest

import numpy as np
import pandas as pd
import pytest

import labelaudit.tables
from labelaudit.plots import (
    build_confusion_figure,
    build_issues_per_class_figure,
    build_noise_matrix_figure,
)
from labelaudit.tables import (
    cell_rows,
    confusion_cells,
    confusion_counts,
    disagreements,
    evidence_lines,
    filter_issues,
    issue_table,
    issues_per_class,
    issues_queue_source,
)


def test_module_doctests_pass():
    result = doctest.testmod(labelaudit.tables, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 10 and result.failed == 0


@pytest.fixture
def table() -> pd.DataFrame:
    scan = pd.DataFrame(
        {
            "id": ["a", "b", "c"],
            "given_label": ["x", "y", "x"],
            "cluster": [0, 1, 1],
            "label_issue_score": [0.2, 0.9, 0.5],
            "is_label_issue": [False, True, True],
            "n_flags": [0, 2, 1],
            "score_knn": [0.1, 0.8, 0.6],
            "score_cl": [0.3, 0.9, 0.2],
        }
    )
    details = {
        "top3_labels": [[0, 1], [0, 1], [1, 0]],
        "top3_probs": [[0.9, 0.1], [0.7, 0.3], [0.6, 0.4]],
        "flags": {"knn": [False, True, True], "cl": [False, True, False]},
    }
    return issue_table(scan, ["t0", "t1", "t2"], details, ["x", "y"])


def test_issue_table_ranks_and_names_suggestions_and_flags(table):
    assert table["id"].tolist() == ["b", "c", "a"]
    assert table["row"].tolist() == [1, 2, 0]
    assert table["suggestion 1"].tolist() == ["x", "y", "x"]
    assert (table["suggestion 3"] == "").all() and table["p 3"].isna().all()
    assert table["flagged_by"].tolist() == [["knn", "cl"], ["knn"], []]
    assert {"knn", "cl", "cluster"} <= set(table.columns)


def test_issue_table_without_details_has_empty_suggestions():
    scan = pd.DataFrame(
        {
            "id": [1, 2],
            "given_label": ["x", "y"],
            "label_issue_score": [0.5, 0.5],
            "is_label_issue": [True, False],
            "n_flags": [1, 0],
        }
    )
    t = issue_table(scan, ["t0", "t1"], {}, ["x", "y"])
    assert t["id"].tolist() == ["1", "2"]  # ties in dataset order; ids as strings
    assert (t["suggestion 1"] == "").all() and t["flagged_by"].tolist() == [[], []]
    assert "cluster" not in t


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, ["b", "c"]),
        ({"detectors": ["cl"]}, ["b"]),
        ({"detectors": ["cl", "knn"]}, ["b", "c"]),
        ({"classes": ["x"], "only_flagged": False}, ["c", "a"]),
        ({"clusters": [0], "only_flagged": False}, ["a"]),
        ({"clusters": [], "classes": [], "detectors": []}, ["b", "c"]),
        ({"classes": ["nope"]}, []),
    ],
)
def test_filter_issues(table, filters, expected):
    assert filter_issues(table, **filters)["id"].tolist() == expected


def test_issues_queue_source_names_every_filter():
    assert issues_queue_source() == "Label issues: needing review"
    assert (
        issues_queue_source(classes=["x", "y"], clusters=[1], only_flagged=False)
        == "Label issues: classes x, y; clusters [1]; all rows"
    )


def test_confusion_counts_cells_and_disagreements():
    given, predicted = np.array([0, 0, 1, 2, 2, 2]), np.array([0, 1, 1, 0, 0, 1])
    m = confusion_counts(given, predicted, 3)
    assert m.tolist() == [[1, 1, 0], [0, 1, 0], [2, 1, 0]]
    assert confusion_cells(m).tolist() == [[0, 0], [0, 1], [1, 1], [2, 0], [2, 1]]
    assert disagreements(m) == [(2, 0, 2), (0, 1, 1), (2, 1, 1)]


def test_cell_rows_lists_the_rows_of_the_chosen_cells_in_table_order(table):
    given = np.array([0, 1, 0])  # rows a, b, c
    predicted = np.array([0, 0, 1])
    assert cell_rows(table, given, predicted, [(1, 0)])["id"].tolist() == ["b"]
    assert cell_rows(table, given, predicted, [(1, 0), (0, 1)])["id"].tolist() == ["b", "c"]
    assert cell_rows(table, given, predicted, []).empty


def test_evidence_lines_skip_rows_without_evidence():
    details = {"evidence": {"knn": ["", "most neighbours say y"], "cl": ["off-diagonal"]}}
    assert evidence_lines(details, 0) == ["cl: off-diagonal"]
    assert evidence_lines(details, 1) == ["knn: most neighbours say y"]
    assert evidence_lines({}, 0) == []


def test_issues_per_class_shares_and_order():
    out = issues_per_class({"b": 3, "a": 1}, pd.Series({"a": 2, "b": 6, "c": 0}))
    assert out["class"].tolist() == ["b", "a", "c"]
    assert out["share of class"].tolist() == [0.5, 0.5, 0.0]


def test_figures_escape_class_names():
    classes = ["<b>x</b>", "y"]
    counts = np.array([[3, 1], [0, 2]])
    fig = build_confusion_figure(counts, classes)
    assert len(fig.data[0].x) == len(confusion_cells(counts))
    assert fig.layout.yaxis.ticktext[0] == "&lt;b&gt;x&lt;/b&gt;"
    assert "<b>x</b>" not in fig.to_json()
    heat = build_noise_matrix_figure([[0.9, 0.1], [0.2, 0.8]], classes)
    assert heat is not None and heat.data[0].x[0] == "&lt;b&gt;x&lt;/b&gt;"
    assert build_noise_matrix_figure(None, classes) is None
    assert build_noise_matrix_figure([[np.nan]], classes) is None
    bars = build_issues_per_class_figure(
        issues_per_class({"<b>x</b>": 1}, pd.Series({"<b>x</b>": 2}))
    )
    assert bars.data[0].x[0] == "&lt;b&gt;x&lt;/b&gt;"


def test_the_annotators_tables_are_plain_functions():
    # The Annotators page's matrices and orderings, reachable from a notebook (no Streamlit).
    import labelaudit as la
    from labelaudit.agreement import Ratings, analyse_annotations
    from labelaudit.tables import disputed_order, items_with_text, kappa_matrix

    ds = la.load_dataset(
        pd.DataFrame({"id": ["i1", "i2", "i3"], "text": ["a", "b", "c"], "label": ["x", "y", "x"]}),
        annotations=pd.DataFrame(
            {
                "item_id": ["i1", "i1", "i2", "i2", "i3", "i3"],
                "annotator_id": ["ann", "bob", "ann", "bob", "ann", "bob"],
                "label": ["x", "x", "y", "x", "x", "x"],
            }
        ),
    )
    report = analyse_annotations(Ratings.from_dataset(ds), method="mv", min_overlap=1)
    kappa, overlap, agree = kappa_matrix(report.pairs, ["ann", "bob"])
    assert overlap.tolist() == [[0, 3], [3, 0]]
    assert agree[0, 1] == agree[1, 0] == pytest.approx(2 / 3)
    items = disputed_order(items_with_text(report.items, ds.frame, ds.id_to_row))
    assert items["item_id"].iloc[0] == "i2"  # the one item the raters disagree on comes first
    assert items.set_index("item_id").loc["i2", ["text", "given_label"]].tolist() == ["b", "y"]


def test_truth_methods_and_tie_breaks_follow_the_probabilities():
    from labelaudit.agreement.methods import all_truth_methods
    from labelaudit.tables import tie_breaks_for, truth_methods_for

    needs = {n for n, m in all_truth_methods().items() if m.needs_probs}
    assert set(truth_methods_for(True)) == set(all_truth_methods())
    assert set(truth_methods_for(False)) == set(all_truth_methods()) - needs
    assert "model" in tie_breaks_for(True) and "model" not in tie_breaks_for(False)


def test_top_positions_equals_the_stable_sort_it_replaces():
    from labelaudit.tables import top_positions

    rng = np.random.default_rng(3)
    for n, k in [(1, 1), (10, 3), (1000, 50), (1000, 999), (1000, 1000), (1000, 0)]:
        for score in (
            rng.random(n),
            rng.integers(0, 4, n).astype(float),  # many ties at the cut
            np.where(rng.random(n) < 0.97, np.nan, rng.random(n)),  # fewer numbers than k
        ):
            want = np.sort(np.argsort(-score, kind="stable")[:k])
            np.testing.assert_array_equal(top_positions(score, k), want)


def test_ids_present_and_texts_of_ids_keep_only_rows_of_the_table():
    from labelaudit.tables import ids_present, texts_of_ids

    ids = pd.Series([f"r{i}" for i in range(1000)])
    texts = pd.Series([f"text {i}" for i in range(1000)])
    assert ids_present(ids, ["r5", "nope", "r5", "r999"]) == ["r5", "r5", "r999"]
    assert ids_present(ids, []) == []
    assert texts_of_ids(ids, texts, ["r7", "r7", "x", "r0"]) == {"r7": "text 7", "r0": "text 0"}
