"""Background scans (issue 16): started without a button, progress in the workspace, one job per
scan across processes, a dead job started again, and the pages fill in when the scan is stored."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from labelaudit import jobs
from labelaudit.jobs import COMPLETE, RUNNING, STOPPED, FileProgress, JobStatus
from labelaudit.scanning import load_cached_scan
from labelaudit.workspace import Workspace
from tests.conftest import ROOT
from tests.test_scan import fakes, topic_dataset  # noqa: F401  (fixture)

OPTIONS = {"cluster_method": "hdbscan", "n_clusters": None, "seed": 0}


def test_file_progress_writes_steps_counts_and_time_left(tmp_path, monkeypatch):
    monkeypatch.setattr(jobs, "WRITE_EVERY", 0.0)  # no throttling in this test
    path = tmp_path / "job.json"
    status = JobStatus(state=RUNNING, started=time.time())
    progress = FileProgress(path, status)
    progress("embedding", 0, 100)
    status.step_started -= 10  # ten seconds into the step
    progress("embedding", 50, 100)
    raw = json.loads(path.read_text())
    assert raw["step"] == "embedding" and raw["done"] == 50 and raw["total"] == 100
    text = jobs._read_status(path).step_text()
    assert text.startswith("embedding: 50 of 100") and "s left" in text
    progress("projection", 1, 3)
    progress.finish(COMPLETE)
    done = jobs._read_status(path)
    assert done.state == COMPLETE and set(done.finished) == {"embedding", "projection"}


def test_a_running_job_whose_process_died_reads_as_stopped(tmp_path):
    ws = Workspace(tmp_path / "ws")
    ds = topic_dataset()
    ws.save_dataset(ds)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    name = jobs.job_name(ds.content_hash, jobs._scan_params(ds, OPTIONS))
    path, lock, _ = jobs._paths(ws, name)
    jobs._write_status(path, JobStatus(state=RUNNING, pid=dead.pid, started=time.time()))
    lock.write_text(str(dead.pid))
    st = jobs.read_status(ws, ds, OPTIONS)
    assert st is not None and st.state == STOPPED


def test_runner_off_starts_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv(jobs.RUNNER_ENV, "off")
    ws = Workspace(tmp_path / "ws")
    assert jobs.start_scan(ws, topic_dataset(), OPTIONS) is None
    assert not list((ws.root / "jobs").glob("*.json"))


def test_inline_job_stores_the_scan_once_and_times_the_estimate(fakes, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setenv(jobs.RUNNER_ENV, "inline")
    ws = Workspace(tmp_path / "ws")
    ds = topic_dataset()
    rough, source = jobs.estimate(ws, ds.n)
    assert rough > 0 and "quiet 2-core machine" in source
    st = jobs.start_scan(ws, ds, OPTIONS)
    assert st is not None and st.state == COMPLETE
    assert load_cached_scan(ds, workspace=ws, **OPTIONS) is not None
    assert {"embedding", "projection", "clustering"} <= set(st.finished)
    assert jobs.start_scan(ws, ds, OPTIONS).state == COMPLETE and fakes.embed == 1
    seconds, source = jobs.estimate(ws, 10 * ds.n)
    assert "earlier scan" in source and seconds > 0
    assert not list((ws.root / "jobs").glob("*.lock"))  # released


def test_a_failed_scan_is_not_retried_until_asked(tmp_path, monkeypatch):
    monkeypatch.setenv(jobs.RUNNER_ENV, "inline")
    ws = Workspace(tmp_path / "ws")
    ds = topic_dataset()
    calls = []

    def broken(*a, **kw):
        calls.append(1)
        raise RuntimeError("disk on fire")

    import importlib

    monkeypatch.setattr(importlib.import_module("labelaudit.scanning"), "scan", broken)
    st = jobs.start_scan(ws, ds, OPTIONS)
    assert st.state == jobs.FAILED and "disk on fire" in st.error
    assert jobs.start_scan(ws, ds, OPTIONS).state == jobs.FAILED and len(calls) == 1
    jobs.clear_failed(ws, ds, OPTIONS)
    jobs.start_scan(ws, ds, OPTIONS)
    assert len(calls) == 2


def test_explore_fills_in_without_a_button(fakes, workspace, monkeypatch):  # noqa: F811
    monkeypatch.setenv(jobs.RUNNER_ENV, "inline")
    ds = topic_dataset()
    at = AppTest.from_file(str(ROOT / "views/explore.py"), default_timeout=120)
    at.session_state["workspace"] = str(workspace.root)
    at.session_state["dataset_hash"] = workspace.save_dataset(ds)
    at.run()
    assert not at.exception
    assert not [b for b in at.button if b.label == "Run scan"]
    assert at.get("vega_lite_chart") and fakes.embed == 1
    assert any("Scan stored" in c.value for c in at.sidebar.caption)


def _write_small(tmp_path) -> tuple[Workspace, object]:
    from labelaudit.io import load_dataset

    rng = np.random.default_rng(0)
    n = 60
    labels = np.arange(n) % 3
    emb = (np.eye(3)[labels] * 3 + rng.normal(size=(n, 3))).astype(np.float32)
    emb = np.hstack([emb, rng.normal(size=(n, 5)).astype(np.float32)])
    frame = pd.DataFrame(
        {"id": [f"q{i}" for i in range(n)], "text": [f"t {i}" for i in range(n)], "label": labels}
    )
    ds = load_dataset(frame, embeddings=emb)
    ws = Workspace(tmp_path / "ws")
    ws.save_dataset(ds)
    return ws, ds


@pytest.mark.slow
def test_a_background_process_scans_once_and_a_killed_one_is_restarted(tmp_path, monkeypatch):
    monkeypatch.setenv(jobs.RUNNER_ENV, "process")
    ws, ds = _write_small(tmp_path)
    first = jobs.start_scan(ws, ds, OPTIONS)
    assert first is not None and first.state == RUNNING and first.estimate_seconds
    # Asked again (another page, another session) while it runs: the same job.
    again = jobs.start_scan(ws, ds, OPTIONS)
    assert again.pid == first.pid
    os.kill(first.pid, 9)  # a server restart, a kill
    deadline = time.monotonic() + 30
    while jobs.read_status(ws, ds, OPTIONS).state != STOPPED and time.monotonic() < deadline:
        time.sleep(0.2)
        jobs.reap()
    assert jobs.read_status(ws, ds, OPTIONS).state == STOPPED
    restarted = jobs.start_scan(ws, ds, OPTIONS)
    assert restarted.state == RUNNING and restarted.pid != first.pid
    deadline = time.monotonic() + 600
    while jobs.read_status(ws, ds, OPTIONS).state == RUNNING and time.monotonic() < deadline:
        time.sleep(0.5)
    st = jobs.read_status(ws, ds, OPTIONS)
    assert st.state == COMPLETE, (st, (ws.root / "jobs").glob("*.log"))
    assert load_cached_scan(ds, workspace=ws, **OPTIONS) is not None
    jobs.reap()


def test_the_scan_stores_what_the_dynamics_and_influence_pages_read(tmp_path):
    # Training dynamics "Prepare" took 250 s and Influence 89 s, training again what the scan's
    # detectors had trained: both now read the detectors' runs (same rows, same workspace keys).
    from labelaudit.detect import detect_label_issues
    from labelaudit.io import load_dataset
    from labelaudit.scanning import get_embeddings
    from labelaudit.training_view import is_prepared

    rng = np.random.default_rng(1)
    n = 90
    labels = np.arange(n) % 3
    emb = (np.eye(3)[labels] * 2 + rng.normal(size=(n, 3))).astype(np.float32)
    frame = pd.DataFrame(
        {
            "id": [f"q{i}" for i in range(n)],
            "text": [f"t {i}" for i in range(n)],
            "label": [f"c{c}" for c in labels],
            "split": ["test" if i % 6 == 0 else "train" for i in range(n)],
        }
    )
    ds = load_dataset(frame, embeddings=emb)
    ws = Workspace(tmp_path / "ws")
    assert not is_prepared(ds, ws, influence=True)
    det = detect_label_issues(
        ds,
        get_embeddings(ds, workspace=ws),
        workspace=ws,
        detectors=["datamap", "forgetting", "aum", "self_influence"],
    )
    assert is_prepared(ds, ws, influence=True)
    # Rows outside the training population are still scored by the same run, never trained on.
    test_rows = ds.test_mask
    assert np.isfinite(det.table["score_datamap"].to_numpy()[test_rows]).all()
    assert (det.table["score_aum"].to_numpy()[test_rows] == 0).all()


def test_labelaudit_app_starts_the_scan_before_the_server(fakes, tmp_path, monkeypatch, capsys):  # noqa: F811
    # `make run` / `labelaudit app DATA`: the scan is on its way before the first page is opened,
    # with the options the app reads (the same job the sidebar then shows).
    from components.scan import DEFAULT_OPTIONS
    from labelaudit.commands import app

    monkeypatch.setenv(jobs.RUNNER_ENV, "inline")
    ws = Workspace(tmp_path / "ws")
    ds = topic_dataset()
    ws.save_dataset(ds)
    app._start_scan(ws, ds)
    assert jobs.read_status(ws, ds, DEFAULT_OPTIONS).state == COMPLETE
    assert "scan: stored" in capsys.readouterr().out


def test_the_estimate_is_the_measured_job_scaled_per_row(tmp_path):
    """Before any scan: the quiet machine's measured job (bench/results/first_run.md: the sample's
    13,083 rows, 72.5 s of timed steps of a 78.3 s job); after one: this workspace's last complete
    job, its whole wall time (first pass included) per row. A failed or running job is no guide."""
    ws = Workspace(tmp_path / "ws")
    seconds, source = jobs.estimate(ws, 13_083)
    assert abs(seconds - 72.5) < 0.5 and "measured" in source
    (ws.root / "jobs").mkdir(parents=True)
    done = JobStatus(state=COMPLETE, started=1000.0, updated=1100.0, n_rows=1_000)
    jobs._write_status(ws.root / "jobs" / "scan-a-b.json", done)
    failed = JobStatus(state=jobs.FAILED, started=1000.0, updated=1001.0, n_rows=1_000)
    jobs._write_status(ws.root / "jobs" / "scan-c-d.json", failed)
    seconds, source = jobs.estimate(ws, 2_000)
    assert seconds == pytest.approx(200.0) and "1,000 rows here" in source
