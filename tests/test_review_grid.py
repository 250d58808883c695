"""The Review page's grid mode on a group of near-duplicates whose labels conflict (issue 16: "a grid
mode to decide many similar rows (a cluster slice, a duplicate group) at once"). AppTest with a
stored scan whose near-duplicates detector found groups."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from labelaudit.detect import DetectionDetails
from labelaudit.detectors.near_duplicates import NearDuplicatesDetails
from labelaudit.review.queue import duplicate_groups
from labelaudit.review.store import ReviewStore
from labelaudit.workspace import Workspace
from tests.test_report import store_fake_scan
from tests.test_review_data import toy_dataset, toy_scan_table

PAGE = str(Path(__file__).resolve().parents[1] / "views" / "review.py")
#: Row numbers of toy_dataset (row i is labelled CLASSES[i % 3]): two groups with mixed labels.
GROUPS = [[2, 4], [9, 10, 11]]


def _details() -> DetectionDetails:
    nd = NearDuplicatesDetails(duplicate_groups=2, conflicting_groups=GROUPS, threshold=0.95)
    return DetectionDetails(detectors=["near_duplicates"], detector_details={"near_duplicates": nd})


@pytest.fixture
def scanned(tmp_path, monkeypatch):
    monkeypatch.delenv("LABELAUDIT_DB_URL", raising=False)
    ws = Workspace(tmp_path / "ws")
    ds = toy_dataset()
    h = ws.save_dataset(ds)
    table = toy_scan_table(ds).drop(columns=["given_label", "split"])
    store_fake_scan(ds, ws, table, _details())
    store = ReviewStore(ws.database_url)
    yield ws, ds, h, store
    store.close()


def test_duplicate_groups_are_id_lists_largest_first():
    ds = toy_dataset()
    assert duplicate_groups(ds, _details()) == [["r9", "r10", "r11"], ["r2", "r4"]]
    assert duplicate_groups(ds, None) == [] and duplicate_groups(ds, DetectionDetails()) == []
    # row numbers outside the dataset (a details file of another version) are left out
    bad = NearDuplicatesDetails(duplicate_groups=1, conflicting_groups=[[1, 999]], threshold=0.95)
    assert duplicate_groups(ds, DetectionDetails(detector_details={"near_duplicates": bad})) == []


def test_grid_decides_a_duplicate_group_at_once(scanned):
    ws, ds, h, store = scanned
    at = AppTest.from_file(PAGE, default_timeout=90)
    at.session_state["workspace"] = str(ws.root)
    at.session_state["dataset_hash"] = h
    at.session_state["reviewer"] = "ana"
    at.run()
    assert not at.exception, at.exception
    at.radio(key="grid_source").set_value("a duplicate group").run()
    group = at.selectbox(key="grid_group")
    assert group.options == [
        "1: 3 rows, labelled card_arrival, card_delivery_estimate, refund_not_showing_up",
        "2: 2 rows, labelled card_delivery_estimate, refund_not_showing_up",
    ]
    grid = next(d for d in at.dataframe if list(d.value.columns)[:2] == ["id", "text"])
    assert grid.value["id"].tolist() == ["r9", "r10", "r11"]
    group.set_value(1).run()
    grid = next(d for d in at.dataframe if list(d.value.columns)[:2] == ["id", "text"])
    assert grid.value["id"].tolist() == ["r2", "r4"]
    at.session_state["grid_table"] = {"selection": {"rows": [0, 1], "columns": []}}
    at.selectbox(key="grid_action").set_value("change").run()
    at.selectbox(key="grid_label").set_value("card_arrival").run()
    next(b for b in at.button if b.key == "grid_apply").click().run()
    assert not at.exception, at.exception
    log = store.log(h)
    assert log[["item_id", "action", "new_label"]].values.tolist() == [
        ["r2", "change", "card_arrival"],
        ["r4", "change", "card_arrival"],
    ]
    assert all("near-duplicate group of r2" in shown for shown in log["shown"])
    assert any("Saved 2 decisions" in s.value for s in at.success)
