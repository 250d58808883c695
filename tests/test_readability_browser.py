"""Readable at 77 classes, in Chromium (issue 16): on a dataset with the bundled sample's 77 class
names, the Label issues page's charts (the confusion matrix and the other matrix views) draw every
label without clipping or overlap, the class filter and the toggle show their whole text, and the
retrain chart's ticks differ. Asserted on the bounding boxes of the SVG tick texts
(getBoundingClientRect) and on the widths of the filter's option texts, not on screenshots."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.conftest import StreamlitServer, wait_for_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PORT = 8643

#: JavaScript: for each Vega-Lite chart of squares drawn as SVG on the page (the confusion
#: matrix), its axis-label and axis-title boxes (x: a bottom axis, x2: a top one, y) and its SVG's
#: box, as BOXES gives for Plotly.
VEGA_BOXES = r"""
() => [...document.querySelectorAll("[data-testid='stVegaLiteChart']")]
  .filter(chart => chart.querySelector('g.mark-symbol')).map((chart, i) => {
  const svg = chart.querySelector('svg.marks');
  const box = e => { const r = e.getBoundingClientRect();
                     return {x0: r.left, y0: r.top, x1: r.right, y1: r.bottom,
                             text: (e.textContent || '').trim()}; };
  const out = {chart: 100 + i, svg: svg ? box(svg) : null, x: [], x2: [], y: [], titles: []};
  if (!svg) return out;
  const mid = (svg.getBoundingClientRect().top + svg.getBoundingClientRect().bottom) / 2;
  for (const axis of chart.querySelectorAll('g.role-axis')) {
    const name = axis.getAttribute('aria-label') || '';
    const labels = [...axis.querySelectorAll('.role-axis-label text')]
      .filter(e => (e.textContent || '').trim() && e.getBoundingClientRect().width > 0).map(box);
    if (name.startsWith('Y')) out.y.push(...labels);
    else if (labels.length && labels[0].y0 < mid) out.x2.push(...labels);
    else out.x.push(...labels);
    out.titles.push(...[...axis.querySelectorAll('.role-axis-title text')].map(box));
  }
  return out;
}).filter(c => c.svg && (c.x.length + c.y.length) > 0)
"""

#: JavaScript: for each Plotly chart on the page, its tick and axis-title boxes and its SVG's box.
BOXES = r"""
() => [...document.querySelectorAll("[data-testid='stPlotlyChart']")].map((chart, i) => {
  const svg = chart.querySelector('svg.main-svg');
  const box = e => { const r = e.getBoundingClientRect();
                     return {x0: r.left, y0: r.top, x1: r.right, y1: r.bottom,
                             text: (e.textContent || '').trim()}; };
  const ticks = sel => [...chart.querySelectorAll(sel)]
      .filter(e => (e.textContent || '').trim() && e.getBoundingClientRect().width > 0)
      .map(box);
  return {chart: i, svg: svg ? box(svg) : null,
          x: ticks('.xtick text'), x2: ticks('.x2tick text'), y: ticks('.ytick text'),
          titles: ticks('.g-xtitle text, .g-ytitle text, .gtitle')};
})
"""


def _overlap(a: dict, b: dict) -> float:
    """The share of the smaller box covered by the other."""
    w = min(a["x1"], b["x1"]) - max(a["x0"], b["x0"])
    h = min(a["y1"], b["y1"]) - max(a["y0"], b["y0"])
    if w <= 0 or h <= 0:
        return 0.0
    small = min(
        (a["x1"] - a["x0"]) * (a["y1"] - a["y0"]), (b["x1"] - b["x0"]) * (b["y1"] - b["y0"])
    )
    return w * h / max(small, 1e-9)


def readability_problems(charts: list[dict], *, unique_ticks: bool = False) -> list[str]:
    """Ticks outside their chart's SVG (clipped), ticks of one axis covering each other by more
    than 20 % of the smaller box, axis titles over ticks, and (``unique_ticks``) repeated tick
    texts on an axis (six "93.0%" ticks say nothing)."""
    out = []
    for c in charts:
        svg = c["svg"]
        if svg is None:
            continue
        for axis in ("x", "x2", "y"):
            ticks = c.get(axis, [])
            for t in ticks:
                if (
                    t["x0"] < svg["x0"] - 1
                    or t["x1"] > svg["x1"] + 1
                    or t["y0"] < svg["y0"] - 1
                    or t["y1"] > svg["y1"] + 1
                ):
                    out.append(f"chart {c['chart']}: {axis} tick {t['text']!r} clipped")
            for a, b in zip(ticks, ticks[1:], strict=False):
                if _overlap(a, b) > 0.2:
                    out.append(f"chart {c['chart']}: {axis} ticks {a['text']!r} / {b['text']!r}")
            texts = [t["text"] for t in ticks]
            if unique_ticks and len(set(texts)) < len(texts):
                out.append(f"chart {c['chart']}: repeated {axis} ticks {texts}")
        for title in c["titles"]:
            if title["y0"] < svg["y0"] - 1 or title["x0"] < svg["x0"] - 1:
                out.append(f"chart {c['chart']}: title {title['text']!r} clipped")
            for t in c["x"] + c.get("x2", []) + c["y"]:
                if _overlap(title, t) > 0.2:
                    out.append(f"chart {c['chart']}: title {title['text']!r} over {t['text']!r}")
    return out


def test_the_checks_find_overlap_clipping_and_repeats():
    svg = {"x0": 0, "y0": 0, "x1": 100, "y1": 100, "text": ""}
    t = lambda x0, text="a": {"x0": x0, "y0": 10, "x1": x0 + 10, "y1": 20, "text": text}  # noqa: E731
    ok = {"chart": 0, "svg": svg, "x": [t(0, "a"), t(12, "b")], "y": [], "titles": []}
    assert readability_problems([ok], unique_ticks=True) == []
    bad = {"chart": 0, "svg": svg, "x": [t(0), t(5), t(95)], "y": [], "titles": []}
    found = readability_problems([bad], unique_ticks=True)
    assert any("ticks 'a' / 'a'" in f for f in found)
    assert any("clipped" in f for f in found) and any("repeated" in f for f in found)


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from labelaudit.io import load_dataset
    from labelaudit.workspace import Workspace
    from tests.conftest import ROOT

    classes = sorted(
        pd.read_csv(ROOT / "sample_data" / "banking77" / "train.csv")["category"]
        .astype(str)
        .unique()
    )
    assert len(classes) == 77
    rng = np.random.default_rng(0)
    per = 14
    labels = np.repeat(np.arange(77), per)
    centres = rng.normal(size=(77, 16)) * 2
    emb = (centres[labels] + rng.normal(size=(len(labels), 16))).astype(np.float32)
    given = labels.copy()
    flip = rng.random(len(given)) < 0.06
    given[flip] = (given[flip] + 1 + rng.integers(0, 76, flip.sum())) % 77
    frame = pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(len(given))],
            "text": [f"text {i} of {classes[c]}" for i, c in enumerate(labels)],
            "label": [classes[c] for c in given],
            "split": ["test" if i % 4 == 0 else "train" for i in range(len(given))],
        }
    )
    ws = Workspace(tmp_path_factory.mktemp("readability") / "ws")
    ds = load_dataset(frame, embeddings=emb)
    h = ws.save_dataset(ds)
    server = StreamlitServer(ws.root, None, {"LABELAUDIT_SCAN_RUNNER": "process"}, port=PORT)
    yield server, h, ws
    server.stop()


def _scanned(server, h, page) -> None:
    page.goto(f"{server.url}/label_issues?dataset={h}")
    wait_for_app(page)
    page.locator("[data-testid='stSidebar']").get_by_text("Scan stored").wait_for(timeout=600_000)


def test_confusion_matrix_and_class_chart_are_readable_at_77_classes(app, page):
    server, h, _ = app
    _scanned(server, h, page)
    page.goto(f"{server.url}/label_issues?dataset={h}")
    wait_for_app(page)
    # the matrix shown on opening is Vega-Lite (SVG): one square per non-empty cell
    page.locator("[data-testid='stVegaLiteChart'] g.mark-symbol path").first.wait_for(
        timeout=120_000
    )
    page.wait_for_timeout(500)
    charts = page.evaluate(VEGA_BOXES)
    assert charts and max(len(c["y"]) for c in charts) == 77, [len(c["y"]) for c in charts]
    # every predicted label is drawn too: even columns on the bottom axis, odd ones on the top
    assert max(len(c["x"]) + len(c["x2"]) for c in charts) == 77
    problems = readability_problems(charts)
    # the other matrix views (the noise matrix, issues per class), one drawn at a time
    views = page.locator("[data-testid='stMain'] [data-testid='stButtonGroup'] button")
    assert views.count() == 3
    for i in range(1, views.count()):
        views.nth(i).click()
        wait_for_app(page)
        page.locator("[data-testid='stPlotlyChart'] .ytick text").first.wait_for(timeout=60_000)
        page.wait_for_timeout(500)
        problems += readability_problems(page.evaluate(BOXES))
    assert not problems, problems[:20]


#: JavaScript: texts of the open multiselect's options and of the toggles, each with its
#: visible and its full width (a truncated text is wider than its box).
CLIPPED_TEXTS = r"""
() => [...document.querySelectorAll("[role='option'], [data-testid='stCheckbox'] label p, "
    + "[data-testid='stWidgetLabel'] p, [data-testid='stBaseButton-primary'] p")]
  .filter(e => (e.textContent || '').trim() && e.getBoundingClientRect().width > 0)
  .map(e => { const inner = e.querySelector('span, div') || e;
              return {text: e.textContent.trim(), client: e.clientWidth, scroll: e.scrollWidth,
                      inner: inner.scrollWidth, box: inner.clientWidth}; })
"""


def test_the_class_filter_and_toggle_show_their_whole_text(app, page):
    server, h, _ = app
    _scanned(server, h, page)
    page.goto(f"{server.url}/label_issues?dataset={h}")
    wait_for_app(page)
    page.locator("[data-testid='stDataFrame']").first.wait_for(timeout=120_000)
    page.locator("[data-testid='stMultiSelect']").first.click()
    page.locator("[role='option']").first.wait_for(timeout=30_000)
    texts = page.evaluate(CLIPPED_TEXTS)
    options = [t for t in texts if t["text"] and "_" in t["text"]]
    assert len(options) >= 10, texts[:5]  # the class names are listed
    clipped = [t for t in texts if t["scroll"] > t["client"] + 1 or t["inner"] > t["box"] + 1]
    assert not clipped, clipped[:10]
    assert any("Only rows needing review" in t["text"] for t in texts), texts[-10:]


def test_the_retrain_chart_ticks_differ_when_the_curve_barely_moves(page):
    """The ROI page's retrain chart, drawn by Plotly in Chromium (bundled plotly.js, no network):
    a curve moving between 93.02 % and 93.08 % had six "93.0%" ticks."""
    import plotly.io as pio

    from labelaudit import roi
    from labelaudit.reporting import figure_accuracy_curve

    curve = pd.DataFrame(
        {
            "n_reviewed": [0, 10, 20, 30, 40],
            "accuracy": [0.9302, 0.9304, 0.9305, 0.9307, 0.9308],
            "macro_f1": [0.9303, 0.9303, 0.9306, 0.9306, 0.9307],
        }
    )
    ba = roi.BeforeAfter(
        n_reviewed=40,
        n_relabelled_train=3,
        n_removed_train=0,
        n_train_before=900,
        n_train_after=900,
        n_eval=300,
        eval_source="test split",
        metrics={},
        curve=curve,
        params={},
    )
    html = pio.to_html(figure_accuracy_curve(ba), include_plotlyjs=True, full_html=True)
    page.set_content(html.replace("<body>", "<body><div data-testid='stPlotlyChart'>", 1))
    page.locator(".ytick text").first.wait_for(timeout=30_000)
    charts = page.evaluate(BOXES)
    assert charts and len(charts[0]["y"]) >= 3, charts
    assert not readability_problems(charts, unique_ticks=True)
