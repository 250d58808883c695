"""The Annotators page, driven by AppTest with a dataset injected into session state."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT, wait_for_app

PAGE = str(ROOT / "views/annotators.py")


def _dataset(
    with_annotations: bool = True, with_probs: bool = False, annotator_prefix: str = "sim_"
):
    from labelaudit.io import load_dataset

    rng = np.random.default_rng(0)
    classes = ["a<b>", "beta", "gamma"]
    n = 60
    labels = rng.integers(0, 3, n)
    frame = pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(n)],
            "text": [f"text <i>{i}</i>" for i in range(n)],
            "label": [classes[k] for k in labels],
        }
    )
    ann = None
    if with_annotations:
        rows = []
        for i in range(40):
            for a in range(4):
                lab = labels[i] if rng.random() < 0.8 - 0.2 * (a == 3) else rng.integers(0, 3)
                rows.append((f"r{i}", f"{annotator_prefix}rater{a}", classes[lab]))
            rows.append((f"r{i}", f"{annotator_prefix}spam<script>", classes[rng.integers(0, 3)]))
        ann = pd.DataFrame(rows, columns=["item_id", "annotator_id", "label"])
    probs = None
    if with_probs:
        probs = np.full((n, 3), 0.1)
        probs[np.arange(n), labels] = 0.8
    return load_dataset(frame, annotations=ann, probs=probs, classes=classes)


def _page(workspace, ds) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.session_state["workspace"] = str(workspace.root)
    at.session_state["dataset_hash"] = workspace.save_dataset(ds)
    return at


def test_without_annotations_the_page_says_what_to_load(workspace):
    at = _page(workspace, _dataset(with_annotations=False)).run()
    assert not at.exception
    assert any("item_id" in i.value and "annotator_id" in i.value for i in at.info)
    assert not at.selectbox


@pytest.mark.parametrize("method", ["mace", "ds", "mv"])
def test_the_page_draws_every_part_for_each_method(workspace, method):
    at = _page(workspace, _dataset()).run()
    assert not at.exception
    at.selectbox(key="annotators_method").set_value(method).run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Ratings"] == "200" and metrics["Annotators"] == "5"
    assert any("simulated" in w.value for w in at.warning)
    charts = at.get("plotly_chart")
    assert len(charts) == 4  # kappa heatmap, competence, confusion, agreement per class
    assert any(s for s in at.dataframe)
    stats = at.dataframe[0].value
    assert "Fleiss' kappa" in stats["statistic"].tolist()
    # Untrusted names are escaped in chart labels: no raw tag reaches Plotly.
    spec = "".join(c.proto.spec for c in charts)
    assert "<script>" not in spec and "&lt;script&gt;" in spec
    assert "a<b>" not in spec
    # The per-item table is stored in the workspace for reuse.
    h = at.session_state["dataset_hash"]
    from components.annotators import artifact_params

    assert workspace.has(h, "agreement_items", artifact_params(method, 0), ext="parquet")


def test_real_annotator_ids_show_no_simulated_notice(workspace):
    at = _page(workspace, _dataset(annotator_prefix="")).run()
    assert not at.exception
    assert not any("simulated" in w.value for w in at.warning)


def test_crowdlab_is_offered_only_with_predicted_probabilities(workspace):
    at = _page(workspace, _dataset()).run()
    assert "crowdlab" not in at.selectbox(key="annotators_method").options
    at = _page(workspace, _dataset(with_probs=True)).run()
    assert "CROWDLAB (with the model)" in at.selectbox(key="annotators_method").options
    at.selectbox(key="annotators_method").set_value("crowdlab").run()
    assert not at.exception


def test_choosing_an_annotator_shows_their_confusion(workspace):
    at = _page(workspace, _dataset()).run()
    at.selectbox(key="annotators_selected").set_value("sim_rater3").run()
    assert not at.exception
    assert any("sim_rater3:" in c.value and "labels" in c.value for c in at.caption)


def _in_app(workspace, ds) -> AppTest:
    """The whole app (so st.switch_page can find the Review page), opened on the Annotators page."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state["workspace"] = str(workspace.root)
    at.session_state["dataset_hash"] = workspace.save_dataset(ds)
    return at.switch_page("views/annotators.py").run()


def test_send_disputed_items_to_review(workspace):
    at = _in_app(workspace, _dataset())
    assert [t.value for t in at.title] == ["Annotators"]
    at.number_input(key="annotators_queue_size").set_value(7).run()
    at.button(key="send_disputed").click().run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Review"]
    queue = at.session_state["review_queue"]
    assert len(queue) == 7 and all(q.startswith("r") for q in queue)
    assert at.session_state["review_queue_source"] == "most disputed items (Annotators)"
    # Ordered by disagreement: the first item disagrees at least as much as the last.
    from labelaudit.agreement import Ratings, analyse_annotations

    ds = _dataset()
    items = analyse_annotations(Ratings.from_dataset(ds), method="mace").items.set_index("item_id")
    assert items.loc[queue[0], "disagreement"] >= items.loc[queue[-1], "disagreement"]


def test_bundled_sample_page_renders(workspace, sample_dataset):
    at = _page(workspace, sample_dataset).run()
    assert not at.exception
    assert any("simulated" in w.value for w in at.warning)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Annotators"] == "12" and metrics["Likely spammers"] == "2"
    items = workspace.load(
        at.session_state["dataset_hash"],
        "agreement_items",
        {"method": "auto", "seed": 0},  # the page's default: chosen from the ratings
        ext="parquet",
    )
    assert any("chosen by held" in c.value for c in at.caption)  # which method, and why
    assert any("Likely spammers: 2" in m.value for m in at.markdown)
    assert len(items) == 1500 and json.dumps(items.columns.tolist())


def test_send_differing_items_to_review(workspace):
    at = _in_app(workspace, _dataset())
    at.button(key="send_differing").click().run()
    assert not at.exception
    assert (
        at.session_state["review_queue_source"]
        == "consensus differs from the given label (Annotators)"
    )
    assert len(at.session_state["review_queue"]) > 0


@pytest.mark.parametrize(
    "with_probs, rules", [(False, ["random", "rarer"]), (True, ["random", "rarer", "model"])]
)
def test_majority_vote_tie_rules_are_offered_and_reported(workspace, with_probs, rules):
    at = _page(workspace, _dataset(with_probs=with_probs)).run()
    assert not at.radio  # only for majority vote
    at.selectbox(key="annotators_method").set_value("mv").run()
    assert at.radio(key="annotators_tie_break").options == [
        {"random": "at random (seed 0)", "rarer": "the rarer class", "model": "the model's choice"}[
            r
        ]
        for r in rules
    ]
    for rule in rules:
        at.radio(key="annotators_tie_break").set_value(rule).run()
        assert not at.exception
        assert any(f"tie break: {rule}" in c.value and "ties:" in c.value for c in at.caption)


@pytest.mark.browser
@pytest.mark.slow
def test_in_chromium_kappa_hover_and_send_to_review(streamlit_server, page):
    server = streamlit_server(dataset=_dataset())
    page.goto(server.url)
    wait_for_app(page)
    page.get_by_role("link", name="Annotators", exact=True).first.click()
    wait_for_app(page)
    page.get_by_text("These annotations are").wait_for(timeout=90_000)
    heatmap = page.locator(".js-plotly-plot").first
    heatmap.wait_for(timeout=90_000)
    box = heatmap.locator(".nsewdrag").first.bounding_box()
    assert box is not None
    # Hover a cell off the diagonal: the label names the pair, kappa and the items in common.
    page.mouse.move(box["x"] + box["width"] * 0.7, box["y"] + box["height"] * 0.1)
    hover = page.locator(".hoverlayer .hovertext").first
    hover.wait_for(timeout=30_000)
    assert "items in common" in (hover.text_content() or "")
    assert page.locator("[data-testid='stException']").count() == 0, server.log()
    page.get_by_role("tab", name="Disputed items").click()
    page.get_by_role("button", name="most disputed items to review").click()
    page.wait_for_url("**/review?*", timeout=60_000)  # the page keeps ?dataset= in the URL
    wait_for_app(page)
    assert page.locator("[data-testid='stException']").count() == 0, server.log()


@pytest.mark.parametrize("with_probs", [False, True])
def test_a_stored_report_reads_back_whole(workspace, with_probs):
    """The report the scan stores (labelaudit.agreement.stored) reads back equal in every part."""
    from labelaudit import typed_json
    from labelaudit.agreement.stored import (
        DEFAULT_SETTINGS,
        compute_report,
        load_report,
        save_report,
        settings_params,
    )

    ds = _dataset(with_probs=with_probs)
    workspace.save_dataset(ds)
    params = settings_params(**DEFAULT_SETTINGS)
    assert load_report(workspace, ds, params) is None
    report = compute_report(ds, **DEFAULT_SETTINGS)
    save_report(workspace, ds.content_hash, report, params)
    back = load_report(workspace, ds, params)
    assert back is not None
    assert back.method == report.method and back.notes == report.notes
    assert back.statistics == report.statistics
    for name in ("items", "annotators", "pairs", "per_class"):
        pd.testing.assert_frame_equal(getattr(back, name), getattr(report, name), check_dtype=False)
    np.testing.assert_array_equal(back.confusion, report.confusion)
    for name in ("posterior", "consensus", "competence", "confusion"):
        a, b = getattr(back.truth, name), getattr(report.truth, name)
        assert (a is None) == (b is None), name
        if a is not None:
            np.testing.assert_array_equal(a, b)
    assert typed_json.same(back.truth.details, report.truth.details)
    assert back.summary_lines() == report.summary_lines()
    # another dataset (other ratings) does not read it
    other = _dataset(with_probs=with_probs, annotator_prefix="x_")
    assert load_report(workspace, other, params) is None


def test_the_scan_stores_the_report_so_the_first_view_writes_nothing(workspace, tmp_path):
    """Issue 16: a page view of stored results computes nothing: after the scan, the Annotators
    page's first view (a new server process: empty caches) adds no file to the workspace."""
    from labelaudit.scanning import scan

    ds = _dataset()
    rng = np.random.default_rng(1)
    ds.embeddings = rng.normal(size=(ds.n, 8)).astype(np.float32)
    scan(ds, workspace=workspace, detectors=["knn", "self_confidence"])
    before = {p: p.stat().st_mtime_ns for p in workspace.root.rglob("*") if p.is_file()}
    assert any("agreement_report" in p.name for p in before)
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.session_state["workspace"] = str(workspace.root)
    at.session_state["dataset_hash"] = ds.content_hash
    at.run()
    assert not at.exception
    assert at.metric and at.metric[0].label == "Ratings"
    after = {p: p.stat().st_mtime_ns for p in workspace.root.rglob("*") if p.is_file()}
    written = sorted(
        str(p.relative_to(workspace.root))
        for p in after
        if before.get(p) != after[p] and "jobs" not in p.parts and "review" not in p.name
    )
    assert written == []
    # a scan stored before the report was part of it: scanning again stores the report
    for p in workspace.root.rglob("agreement_*"):
        p.unlink()
    scan(ds, workspace=workspace, detectors=["knn", "self_confidence"])
    assert any(workspace.root.rglob("agreement_report-*.json"))
