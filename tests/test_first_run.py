"""The first ten minutes (issue 16): how the app is run, and progress that stays visible."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_production_runs_watch_no_files_and_hide_deploy():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert config["server"]["fileWatcherType"] == "none"
    assert config["server"]["runOnSave"] is False
    assert config["client"]["toolbarMode"] == "viewer"
    assert config["browser"]["gatherUsageStats"] is False


def test_labelaudit_app_passes_the_same_flags():
    from labelaudit.commands.app import streamlit_command

    cmd = streamlit_command(8501)
    flags = dict(zip(cmd[5::2], cmd[6::2], strict=False))
    assert flags["--server.fileWatcherType"] == "none"
    assert flags["--client.toolbarMode"] == "viewer"
    assert flags["--server.runOnSave"] == "false"


class _Status:
    def __init__(self):
        self.updates: list[dict] = []

    def update(self, **kw):
        self.updates.append(kw)


def test_status_progress_keeps_the_box_open():
    # An st.status update without expanded= clears the field and the browser collapses the box.
    from components.progress import StatusProgress

    status = _Status()
    progress = StatusProgress(status, "Scanning")
    progress("embedding", 0, 10)
    progress("embedding", 5, 10)
    progress("projection", 1, 3)
    assert len(status.updates) == 2
    assert all(u.get("expanded") is True for u in status.updates)


def test_box_selection_and_pick_whichever_came_last_wins():
    # Before: a box selection on the confusion chart silently overrode "Or pick a disagreement".
    from labelaudit.tables import CellChoice

    classes = ["a", "b", "c"]
    c = CellChoice().update(chart=[], pick=(0, 1))
    assert c.cells == [(0, 1)] and "labelled a, predicted b" in c.heading(classes, 4)
    c = c.update(chart=[(2, 0), (1, 0)], pick=(0, 1))  # then a box on the chart
    assert c.source == "chart" and c.cells == [(2, 0), (1, 0)]
    assert "2 squares selected on the chart: 9" in c.heading(classes, 9)
    c = c.update(chart=[(2, 0), (1, 0)], pick=(1, 2))  # then another pick
    assert c.source == "pick" and c.cells == [(1, 2)]
    c = c.update(chart=[(2, 0), (1, 0)], pick=None)  # the pick cleared: the box again
    assert c.source == "chart"
    assert CellChoice().update(chart=[], pick=None).cells == []


def test_most_confused_pairs_lead_with_the_largest():
    import numpy as np

    from labelaudit.tables import most_confused_pairs

    counts = np.array([[8, 1, 1], [4, 6, 0], [0, 2, 8]])
    pairs = most_confused_pairs(counts, ["a", "b", "c"], top=2)
    assert pairs[["given", "predicted", "rows"]].values.tolist() == [["b", "a", 4], ["c", "b", 2]]
    assert pairs["share of given"].tolist() == [0.4, 0.2]


def test_a_zero_change_shows_no_green_arrow():
    from components.roi import _points_delta

    assert _points_delta(0.00001) == {
        "delta": "±0.00 points",
        "delta_color": "off",
        "delta_arrow": "off",
    }
    assert _points_delta(0.012) == {"delta": "+1.20 points"}
