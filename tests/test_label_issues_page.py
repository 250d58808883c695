"""The Label issues page (AppTest, state injected) and its pure helpers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from components.label_issues import selected_cells
from labelaudit.dataset import Dataset
from labelaudit.tables import confusion_cells, confusion_counts

N, K, D = 180, 3, 12
PAGE = str(Path(__file__).resolve().parents[1] / "views" / "label_issues.py")


def planted_dataset() -> tuple[Dataset, np.ndarray]:
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(K, D)) * 3
    y = np.arange(N) % K
    emb = (centers[y] + rng.normal(size=(N, D))).astype(np.float32)
    flips = np.sort(rng.choice(N, 12, replace=False))
    y[flips] = (y[flips] + 1) % K
    classes = [
        "card <b>lost</b>",
        "refund",
        "top up",
    ]  # markup in a class name must stay plain text
    frame = pd.DataFrame(
        {
            "id": [f"q{i}" for i in range(N)],
            "text": [f"question number {i}" for i in range(N)],
            "label": [classes[c] for c in y],
            "split": "",
        }
    )
    return Dataset(frame=frame, classes=classes, embeddings=emb), flips


@pytest.fixture(scope="module")
def scanned(tmp_path_factory):
    """A real scan of the planted dataset (the 2-D map is replaced by the first embedding axes: no UMAP)."""
    import labelaudit.scanning as scan_mod
    from labelaudit.workspace import Workspace

    ds, flips = planted_dataset()
    ws = Workspace(tmp_path_factory.mktemp("issues_ws"))
    orig = scan_mod._map_and_space
    scan_mod._map_and_space = lambda ds, emb, params, ws, progress, *_: (
        emb[:, :2].copy(),
        emb[:, :5].copy(),
    )
    try:
        h = ws.save_dataset(ds)
        scan_mod.scan(
            ws.load_dataset(h),
            workspace=ws,
            seed=0,
            detectors=["self_confidence", "confident_learning", "knn", "near_duplicates"],
        )
    finally:
        scan_mod._map_and_space = orig
    return ws, h, flips


def page(scanned) -> AppTest:
    ws, h, _ = scanned
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.session_state["workspace"] = str(ws.root)
    at.session_state["dataset_hash"] = h
    at.session_state["scan_options"] = {
        "cluster_method": "hdbscan",
        "n_clusters": None,
        "seed": 0,
        "detectors": ["self_confidence", "confident_learning", "knn", "near_duplicates"],
    }
    return at


def test_page_ranks_planted_flips_and_says_where_probabilities_come_from(scanned):
    at = page(scanned).run()
    assert not at.exception, at.exception
    assert any("out-of-fold" in c.value for c in at.caption)
    assert any("needs review" in c.value for c in at.caption)
    ranked = at.dataframe[0].value
    assert {
        "text",
        "given label",
        "suggestion 1",
        "p 1",
        "suggestion 2",
        "combined score",
        "knn",
        "cluster",
    } <= set(ranked.columns)
    flipped_ids = {f"q{i}" for i in scanned[2]}
    top = ranked["id"].head(12).tolist()
    assert len(flipped_ids.intersection(top)) >= 10
    assert ranked["combined score"].is_monotonic_decreasing
    assert at.metric[0].value.startswith(f"{len(ranked):,} (")
    # which combiner ran and each detector's weight (issue 12)
    assert any(e.label.startswith("Combined ranking:") for e in at.expander)
    weights = next(c.value for c in at.caption if c.value.startswith("Weight of each detector"))
    assert all(d in weights for d in ("self\\_confidence", "confident\\_learning", "knn"))


def test_filters_narrow_the_table_and_a_cell_lists_its_rows(scanned):
    at = page(scanned).run()
    all_flagged = len(at.dataframe[0].value)
    at.multiselect(key="issues_classes").set_value(["refund"]).run()
    by_class = at.dataframe[0].value
    assert 0 < len(by_class) < all_flagged and set(by_class["given label"]) == {"refund"}
    at.toggle(key="issues_only_flagged").set_value(False).run()
    assert len(at.dataframe[0].value) == int(
        (planted_dataset()[0].frame["label"] == "refund").sum()
    )
    cells = at.selectbox(key="issues_cell")
    assert len(cells.options) > 1
    n_frames = len(at.dataframe)
    cells.set_value(cells.options[1]).run()
    assert not at.exception and len(at.dataframe) == n_frames + 1
    listed = at.dataframe[-1].value
    assert len(listed) >= 1 and listed["given label"].nunique() == 1


def test_the_shared_cached_table_is_never_changed_by_a_view(scanned, monkeypatch):
    """cached_issue_table is an st.cache_resource: every session reads the one frame, so a view
    that changed it in place (a filter, a column added, a sort) would change every later view."""
    import components.label_issues as li
    from components.label_issues import cached_issue_table
    from components.scan import scan_options_key

    ws, h, _ = scanned
    built = []
    real = li.issue_table
    monkeypatch.setattr(li, "issue_table", lambda *a, **k: built.append(1) or real(*a, **k))
    cached_issue_table.clear()
    at = page(scanned).run()
    key = (str(ws.root), h, scan_options_key(at.session_state["scan_options"]))
    shared = cached_issue_table(*key)
    assert built == [1]  # the page's own frame, not one built for this test
    before = shared.copy(deep=True)
    at.multiselect(key="issues_classes").set_value(["refund"]).run()
    at.toggle(key="issues_only_flagged").set_value(False).run()
    at.multiselect(key="issues_detectors").set_value(["knn"]).run()
    cells = at.selectbox(key="issues_cell")
    cells.set_value(cells.options[1]).run()
    assert not at.exception
    assert cached_issue_table(*key) is shared
    pd.testing.assert_frame_equal(shared, before)


def test_send_to_review_puts_the_filtered_ids_in_the_queue(scanned):
    at = page(scanned).run()
    ids = at.dataframe[0].value["id"].tolist()
    send = next(b for b in at.button if b.label.startswith("Send"))
    send.click().run()
    assert at.session_state["review_queue"] == ids
    assert at.session_state["review_queue_source"].startswith("Label issues")


def test_page_without_a_dataset_points_to_the_data_page(tmp_path):
    at = AppTest.from_file(PAGE, default_timeout=30)
    at.session_state["workspace"] = str(tmp_path)
    at.run()
    assert not at.exception and "Load a dataset first" in at.info[0].value


# ----------------------------------------------------------------------------- widget glue
def test_selected_cells_reads_the_chart_event():
    # cells: (0, 0), (0, 1), (1, 1), (2, 0)
    cells = confusion_cells(confusion_counts(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 0]), 3))
    click = {"selection": {"cell": [{"g": 2, "p": 0}, {"g": 9, "p": 9}, {"x": 1}], "box": {}}}
    assert selected_cells(click, cells) == [(2, 0)]  # an unknown or malformed cell is ignored
    assert selected_cells(None, cells) == [] and selected_cells({}, cells) == []
    # a box: the cells whose centres it covers (predicted 0..1, given 0..1.2), click ignored
    box = {"selection": {"cell": [{"g": 2, "p": 0}], "box": {"p": [-0.4, 1.3], "g": [1.2, -0.3]}}}
    assert selected_cells(box, cells) == [(0, 0), (0, 1), (1, 1)]
