"""The first ten minutes (issue 16): how the app is run, and progress that stays visible."""

from __future__ import annotations

import os
import time
import tomllib
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

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


# --------------------------------------------------------------------------- the first pass
from labelaudit import embed as _embed  # noqa: E402
from labelaudit import first_pass, jobs  # noqa: E402
from labelaudit.jobs import JobStatus  # noqa: E402
from labelaudit.scanning import load_cached_scan  # noqa: E402
from labelaudit.scanning import scan as _scan  # noqa: E402
from labelaudit.workspace import Workspace  # noqa: E402
from tests.test_scan import fakes, topic_dataset  # noqa: E402,F401  (fixture)

FP_OPTIONS = {"cluster_method": "hdbscan", "n_clusters": None, "seed": 0}


def _count_texts(monkeypatch) -> list[int]:
    """Wrap the (fake) embedder: the number of texts of each call."""
    sizes: list[int] = []
    inner = _embed.embed_texts

    def counting(texts, **kw):
        sizes.append(len(texts))
        return inner(texts, **kw)

    monkeypatch.setattr(_embed, "embed_texts", counting)
    return sizes


def test_the_job_stores_a_first_pass_then_the_full_scan_embedding_each_text_once(
    fakes,  # noqa: F811
    tmp_path,
    monkeypatch,
):
    monkeypatch.setenv(jobs.RUNNER_ENV, "inline")
    monkeypatch.setenv(first_pass.ROWS_ENV, "30")
    sizes = _count_texts(monkeypatch)
    ws = Workspace(tmp_path / "ws")
    ds = topic_dataset()  # 120 rows, 3 classes of 40
    st = jobs.start_scan(ws, ds, FP_OPTIONS)
    assert st is not None and st.state == jobs.COMPLETE and st.first_pass
    fp = first_pass.load_first_pass(ws, ds, FP_OPTIONS)
    assert fp is not None and fp.sample.n == 30 and fp.n_full == ds.n
    # stratified: every class keeps its share of the sample
    assert sorted(np.unique(fp.sample.label_names, return_counts=True)[1]) == [10, 10, 10]
    assert fp.result.detection.details["detectors"] == []  # fake detection: no detector list
    assert {"first pass: embedding", "embedding"} <= set(st.finished)
    # nothing embedded twice: the sample's 30 texts, then the other 90
    assert sizes == [30, 90]
    full = load_cached_scan(ds, workspace=ws, **FP_OPTIONS)
    assert full is not None
    rows = ds.frame["id"].isin(set(fp.sample.ids)).to_numpy()
    np.testing.assert_array_equal(
        np.asarray(full.embeddings)[rows], np.asarray(fp.result.embeddings)
    )
    # the first pass's timing is no guide to a full scan's estimate
    assert "120 rows" in jobs.estimate(ws, 1000)[1]


def test_small_datasets_get_no_first_pass(fakes, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setenv(first_pass.ROWS_ENV, "50")  # 120 rows < 3 x 50
    ws = Workspace(tmp_path / "ws")
    ds = topic_dataset()
    assert not first_pass.wanted(ds)
    assert first_pass.run_first_pass(ws, ds, FP_OPTIONS) is None
    monkeypatch.setenv(first_pass.ROWS_ENV, "0")  # off
    assert not first_pass.wanted(ds)


def _running_with_first_pass(ws, ds, monkeypatch):
    """The state a page sees while the full scan runs after its first pass: a first pass stored,
    and a job status "running" owned by a live process (this one), so nothing new starts."""
    monkeypatch.setenv(jobs.RUNNER_ENV, "process")
    monkeypatch.setenv(first_pass.ROWS_ENV, "30")
    ws.save_dataset(ds)
    assert first_pass.run_first_pass(ws, ds, FP_OPTIONS) is not None
    path, lock, _ = jobs._paths(
        ws, jobs.job_name(ds.content_hash, jobs._scan_params(ds, FP_OPTIONS))
    )
    now = time.time()
    jobs._write_status(
        path,
        JobStatus(
            state=jobs.RUNNING,
            step="embedding",
            done=40,
            total=120,
            started=now,
            updated=now,
            step_started=now,
            pid=os.getpid(),
            n_rows=ds.n,
            first_pass=True,
        ),
    )
    lock.write_text(str(os.getpid()))


@pytest.mark.parametrize("page", ["explore", "label_issues"])
def test_pages_show_the_first_pass_then_the_full_scan(fakes, tmp_path, monkeypatch, page):  # noqa: F811
    from labelaudit import detect

    fake = detect.detect_label_issues

    def with_flags(*a, **kw):  # the columns the Label issues table reads besides the fake's
        det = fake(*a, **kw)
        det.table["n_flags"] = det.table["is_label_issue"].astype(int)
        return det

    monkeypatch.setattr(detect, "detect_label_issues", with_flags)
    ws = Workspace(tmp_path / "ws")
    ds = topic_dataset()
    _running_with_first_pass(ws, ds, monkeypatch)
    at = AppTest.from_file(str(ROOT / f"views/{page}.py"), default_timeout=120)
    at.session_state["workspace"] = str(ws.root)
    at.session_state["dataset_hash"] = ds.content_hash
    at.run()
    assert not at.exception, at.exception
    shown = " ".join(m.value for m in at.markdown)
    assert "Provisional" in shown and "30 of the 120 rows" in shown
    if page == "explore":
        assert at.get("vega_lite_chart")
        assert any("30 rows" in c.value for c in at.caption)
    else:
        assert any(s.value.startswith("Ranked rows") for s in at.subheader)
    # The full scan lands: the same session shows it, without the note.
    monkeypatch.setenv(jobs.RUNNER_ENV, "off")
    _scan(ds, workspace=ws, **FP_OPTIONS)
    at.run()
    assert not at.exception
    assert "Provisional" not in " ".join(m.value for m in at.markdown)
    if page == "explore":
        assert any("120 rows" in c.value for c in at.caption)
