"""components/warm.py: a dataset's stored results read in the background into the caches the pages
use, so a page's first view in a fresh server finds them loaded (issue 16, page views)."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

import components.scan as scan_ui
from components import warm
from components.dynamics import load_dynamics
from components.label_issues import cached_issue_table
from labelaudit.scanning import scan
from tests.conftest import ROOT
from tests.test_scan import fakes, topic_dataset  # noqa: F401  (fixture)


@pytest.fixture
def fresh_caches(monkeypatch):
    """Empty caches and no warm-up remembered, as in a new server process."""
    for f in (scan_ui.load_scan, scan_ui.map_rows, cached_issue_table, load_dynamics):
        f.clear()
    monkeypatch.setattr(warm, "_DONE", {})
    monkeypatch.setattr(warm, "_RUNNING", {})
    monkeypatch.setattr(warm, "_ENDED", {})
    monkeypatch.setattr(warm, "TIMINGS", {})
    monkeypatch.delenv("LABELAUDIT_WARM_CACHES", raising=False)
    yield
    for f in (scan_ui.load_scan, scan_ui.map_rows, cached_issue_table, load_dynamics):
        f.clear()


def _files(root) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in root.rglob("*")
        if p.is_file()
    }


def test_the_steps_are_named_once():
    assert tuple(name for name, _ in warm.warm_steps("w", "h", "{}")) == warm.STEPS


def test_the_imports_step_names_what_the_page_files_import(tmp_path):
    (tmp_path / "a.py").write_text(
        "import numpy as np\nfrom components.review import x\nfrom . import y\n"
        "def f():\n    import scipy\n"
    )
    (tmp_path / "b.py").write_text("import streamlit as st\nfrom components.review import z\n")
    (tmp_path / "explore.py").write_text("import pandas\n")
    assert warm.page_imports(tmp_path) == [
        "numpy",
        "components.review",
        "streamlit",
        "pandas",
        *warm.DRAW_IMPORTS["explore.py"],
    ]  # the top level only, no relative imports, no repeats; a page's draw-time imports after it
    real = warm.page_imports()
    assert "components.review" in real and "labelaudit.plots" in real
    # in navigation order: the Explore page's modules (and its legend's Styler) before the ROI's
    assert real.index("pandas.io.formats.style") < real.index("components.roi")


def test_a_stored_scan_is_read_in_the_background_and_the_page_finds_it_loaded(
    fakes,  # noqa: F811
    workspace,
    fresh_caches,
    monkeypatch,
):
    ds = topic_dataset()
    scan(ds, workspace=workspace)
    h = workspace.save_dataset(ds)
    options = scan_ui.scan_options_key(scan_ui.DEFAULT_OPTIONS)
    reads = []
    real = scan_ui.load_cached_scan
    monkeypatch.setattr(
        scan_ui, "load_cached_scan", lambda *a, **k: reads.append(1) or real(*a, **k)
    )
    before = _files(workspace.root)

    thread = warm.warm_stored_results(str(workspace.root), h, options)
    assert thread is not None and thread.name == "labelaudit-warm"
    assert warm.warm_stored_results(str(workspace.root), h, options) is None  # one at a time
    thread.join(120)
    key = (str(workspace.root), h, options)
    # the scan and the map sample are loaded; the training run and self-influence are not stored,
    # so those steps found nothing and computed nothing (self_influence_ranking would compute)
    assert {"scan", "map"} <= set(warm.TIMINGS[key])
    assert not {"dynamics", "self-influence"} & warm._DONE[key]
    assert reads == [1]
    assert _files(workspace.root) == before  # nothing computed, nothing written

    # the Explore page's first view reads nothing again: its loaders' caches are warm
    at = AppTest.from_file(str(ROOT / "views/explore.py"), default_timeout=120)
    at.session_state["workspace"] = str(workspace.root)
    at.session_state["dataset_hash"] = h
    at.run()
    assert not at.exception and at.get("vega_lite_chart")
    assert reads == [1]

    # what was missing is tried again, but not at every page view
    assert warm.warm_stored_results(str(workspace.root), h, options) is None
    monkeypatch.setattr(warm, "RETRY_SECONDS", 0.0)
    again = warm.warm_stored_results(str(workspace.root), h, options)
    assert again is not None
    again.join(120)
    assert reads == [1]  # the loaded steps are not read again


def test_nothing_stored_reads_nothing_and_can_be_switched_off(
    fakes,  # noqa: F811
    workspace,
    fresh_caches,
    monkeypatch,
):
    ds = topic_dataset()
    h = workspace.save_dataset(ds)
    options = scan_ui.scan_options_key(scan_ui.DEFAULT_OPTIONS)
    before = _files(workspace.root)
    thread = warm.warm_stored_results(str(workspace.root), h, options)
    assert thread is not None
    thread.join(120)
    # only the pages' imports, which need nothing stored
    assert warm._DONE[(str(workspace.root), h, options)] == {"imports"}
    assert _files(workspace.root) == before
    assert fakes.embed == 0 and fakes.detect == 0  # no scan was started or run

    monkeypatch.setenv("LABELAUDIT_WARM_CACHES", "0")
    monkeypatch.setattr(warm, "RETRY_SECONDS", 0.0)
    assert warm.warm_stored_results(str(workspace.root), h, options) is None


def test_a_stored_training_run_is_read_in_the_background(workspace, fresh_caches, monkeypatch):
    """With the training run and self-influence stored (prepared as the scan stores them), both
    are loaded, and the Training dynamics page's first view computes its data map no more."""
    from components.dynamics import self_influence_ranking
    from labelaudit import training_view
    from tests.test_dynamics_pages import make_dataset

    ds = make_dataset()
    h = workspace.save_dataset(ds)
    training_view.prepare(ds, workspace, influence=True)
    self_influence_ranking.clear()
    views = []
    real = training_view.dynamics_view
    monkeypatch.setattr(
        training_view, "dynamics_view", lambda *a, **k: views.append(1) or real(*a, **k)
    )
    before = _files(workspace.root)
    options = scan_ui.scan_options_key(scan_ui.DEFAULT_OPTIONS)
    thread = warm.warm_stored_results(str(workspace.root), h, options)
    assert thread is not None
    thread.join(120)
    key = (str(workspace.root), h, options)
    assert {"dynamics", "self-influence"} <= warm._DONE[key]
    assert views == [1]
    assert _files(workspace.root) == before

    at = AppTest.from_file(str(ROOT / "views/dynamics.py"), default_timeout=120)
    at.session_state["workspace"] = str(workspace.root)
    at.session_state["dataset_hash"] = h
    at.run()
    assert not at.exception and at.get("vega_lite_chart")
    assert views == [1]
    self_influence_ranking.clear()


def test_a_server_started_on_a_dataset_reads_its_stored_scan_before_any_page_view(
    fakes,  # noqa: F811
    workspace,
    fresh_caches,
):
    """serve.py's start-up hook: the launch dataset (LABELAUDIT_DATASET, as `labelaudit app DATA`
    sets it) is read under the app's default scan options, with no session and no page run."""
    ds = topic_dataset()
    scan(ds, workspace=workspace, **scan_ui.DEFAULT_OPTIONS)
    h = workspace.save_dataset(ds)
    before = _files(workspace.root)
    thread = warm.warm_at_start(
        {"LABELAUDIT_WORKSPACE": str(workspace.root), "LABELAUDIT_DATASET": h}
    )
    assert thread is not None and thread.name == "labelaudit-warm-start"
    thread.join(120)
    key = (str(workspace.root), h, scan_ui.scan_options_key(scan_ui.DEFAULT_OPTIONS))
    assert {"imports", "scan", "map"} <= warm._DONE[key]
    assert _files(workspace.root) == before  # read, never computed or written


@pytest.mark.parametrize(
    "environ",
    [{}, {"LABELAUDIT_DATASET": "0123456789abcdef"}],
    ids=["no launch dataset", "a dataset the workspace does not hold"],
)
def test_without_a_launch_dataset_only_the_modules_are_imported(workspace, fresh_caches, environ):
    thread = warm.warm_at_start({"LABELAUDIT_WORKSPACE": str(workspace.root), **environ})
    assert thread is not None
    thread.join(60)
    assert warm._DONE == {} and warm._RUNNING == {}
    import sys

    assert "components.roi" in sys.modules and "streamlit.emojis" in sys.modules


def test_warming_at_start_can_be_switched_off(monkeypatch, fresh_caches):
    monkeypatch.setenv("LABELAUDIT_WARM_CACHES", "0")
    assert warm.warm_at_start({"LABELAUDIT_DATASET": "x"}) is None
