"""The ROI report: renders self-contained HTML with the figures and numbers; escapes dataset text; CLI."""

from __future__ import annotations

import re
import shutil
import tempfile
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import labelaudit.reporting as report
from labelaudit import roi
from labelaudit.review.store import ReviewStore
from labelaudit.simulate_review import simulated_clock
from tests.test_roi import T0, clustered

EVIL = "<script>alert('x')</script>"
#: reviewer -> a review database holding the fixture's decisions, written once per test session.
_DECIDED: dict[str, Path] = {}


class Collector(HTMLParser):
    """Element ids, script tags (and whether any loads from the network), table cells."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.scripts = 0
        self.remote_scripts = 0
        self.cells: list[str] = []
        self._in_cell = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.append(a["id"])
        if tag == "script":
            self.scripts += 1
            self.remote_scripts += bool(a.get("src"))
        self._in_cell = tag in ("td", "th")

    def handle_endtag(self, tag):
        self._in_cell = False

    def handle_data(self, data):
        if self._in_cell:
            self.cells.append(data)


def reviewed_setup(tmp_path, *, reviewer: str = "ana"):
    """A clustered dataset whose class names carry markup, 35% flipped train rows, all reviewed."""
    ds_true, x = clustered(n_per_class=50, seed=7)
    classes = ["c0", "a<b>&c", "c2"]
    frame = ds_true.frame.copy()
    frame["label"] = frame["label"].map(dict(zip(ds_true.classes, classes, strict=True)))
    from labelaudit.dataset import Dataset

    ds_true = Dataset(frame=frame, classes=classes, embeddings=x)
    rng = np.random.default_rng(0)
    train_rows = np.flatnonzero(~ds_true.test_mask)
    flip = rng.choice(train_rows, size=int(0.35 * len(train_rows)), replace=False)
    noisy = ds_true.labels.copy()
    noisy[flip] = (noisy[flip] + 1) % 3
    ds = ds_true.with_labels(noisy)
    h = ds.content_hash
    keep_rows = np.setdiff1d(train_rows, flip)[:10]
    db = tmp_path / "review.sqlite"
    if (
        reviewer in _DECIDED
    ):  # every decision is a durable (fsync'ed) commit: record them once per session
        shutil.copyfile(_DECIDED[reviewer], db)
        store = ReviewStore(f"sqlite:///{db}")
    else:
        # one time per decision, and one for the finding
        times = [T0 + timedelta(seconds=12 * i) for i in range(len(flip) + len(keep_rows) + 1)]
        store = ReviewStore(f"sqlite:///{db}", clock=simulated_clock(times))
        for r in flip:
            store.record(
                dataset_version=h,
                item_id=f"r{r}",
                reviewer=reviewer,
                action="change",
                old_label=classes[noisy[r]],
                new_label=classes[ds_true.labels[r]],
            )
        for r in keep_rows:
            store.record(
                dataset_version=h,
                item_id=f"r{r}",
                reviewer=reviewer,
                action="keep",
                old_label=classes[noisy[r]],
                new_label=None,
            )
        store.add_finding(
            dataset_version=h, kind="class_pair", target="c0 vs a<b>&c", note=EVIL, author="dee"
        )
        store.close()  # checkpoints the WAL into the file
        _DECIDED[reviewer] = Path(tempfile.mkdtemp(prefix="roi-decided-")) / "review.sqlite"
        shutil.copyfile(db, _DECIDED[reviewer])
        store = ReviewStore(f"sqlite:///{db}")
    flagged = np.zeros(ds.n, dtype=bool)
    flagged[flip] = True
    flagged[keep_rows[:5]] = True
    scan_table = pd.DataFrame(
        {
            "id": ds.frame["id"],
            "is_label_issue": flagged,
            "label_issue_score": flagged.astype(float),
        }
    )
    details = {
        "flags": {"knn": flagged, "confident_learning": np.isin(np.arange(ds.n), flip)},
        "confident_joint": [[40, 5, 0], [0, 40, 5], [5, 0, 40]],
    }
    return ds, x, store, scan_table, details


def reviewed_report(tmp_path: Path, workspace, **setup):
    """(dataset, its report) from :func:`reviewed_setup` (``setup``: its keywords)."""
    ds, x, store, scan_table, details = reviewed_setup(tmp_path, **setup)
    try:
        rep = report.compute_report(
            ds,
            store.log(ds.content_hash),
            store.findings(ds.content_hash),
            scan_table=scan_table,
            details=details,
            embeddings=x,
            workspace=workspace,
        )
    finally:
        store.close()
    return ds, rep


@pytest.fixture
def built(tmp_path, workspace):
    return reviewed_report(tmp_path, workspace)


def test_report_renders_figures_numbers_and_findings(built, tmp_path):
    ds, rep = built
    path = report.write_report(rep, tmp_path / "out" / "roi.html")
    text = path.read_text(encoding="utf-8")
    c = Collector()
    c.feed(text)
    for fid in report.FIGURE_IDS:
        assert fid in c.ids, fid
    assert c.remote_scripts == 0  # plotly.js is inlined: opens offline
    assert len(re.findall(r"Plotly\.newPlot", text)) == len(report.FIGURE_IDS)
    cells = " | ".join(c.cells)
    s = rep.summary
    assert f"{s.n_reviewed:,}" in cells and s.n_reviewed == s.counts["change"] + s.counts["keep"]
    ba = rep.before_after
    assert ba is not None
    acc_before = f"{ba.metrics['accuracy_before'].value:.1%}"
    assert acc_before in cells and f"{ba.metrics['accuracy_after'].value:.1%}" in cells
    assert "Accuracy change per 100 items reviewed" in cells
    assert EVIL in cells  # the finding is there, as text
    assert "simulated-banner" not in c.ids


def test_report_escapes_dataset_and_user_text(built):
    _, rep = built
    text = report.render_html(rep)
    assert EVIL not in text and "<script>alert" not in text
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in text
    assert "a<b>&c" not in text  # the class name, in tables and inside the chart JSON
    assert "a&lt;b&gt;&amp;c" in text


def test_simulated_decisions_get_the_banner(tmp_path, workspace):
    ds, rep = reviewed_report(tmp_path, workspace, reviewer=roi.SIMULATED_REVIEWER)
    c = Collector()
    c.feed(report.render_html(rep))
    assert rep.simulated and "simulated-banner" in c.ids


def test_report_without_decisions(workspace):
    ds, x = clustered(seed=1)
    empty = ReviewStore(f"sqlite:///{workspace.root / 'r.sqlite'}")
    try:
        rep = report.compute_report(
            ds,
            empty.log(ds.content_hash),
            empty.findings(ds.content_hash),
            scan_table=None,
            details=None,
            embeddings=x,
        )
    finally:
        empty.close()
    text = report.render_html(rep)
    assert rep.before_after is None and "No review decisions yet" in text
    assert "fig-decisions" in text and "fig-curve" not in text


# --------------------------------------------------------------------------- CLI
def store_fake_scan(ds, ws, scan_table, details):
    """A stored scan without UMAP or a model: the table and details the report reads."""
    from labelaudit.detect import Detection
    from labelaudit.scanning import ScanResult, _store, scan_params

    table = scan_table.assign(
        given_label=ds.frame["label"], split=ds.frame["split"], x=0.0, y=0.0, cluster=0
    )
    det = Detection(table=scan_table[["is_label_issue", "label_issue_score"]], details=details)
    _store(
        ds,
        ws,
        ScanResult(
            table=table,
            embeddings=ds.embeddings,
            clusters=pd.DataFrame({"cluster": [0]}),
            detection=det,
            params=scan_params(ds),
        ),
    )


def test_cli_writes_the_report(tmp_path, workspace, capsys):
    from labelaudit.cli import main

    ds, x, store, scan_table, details = reviewed_setup(tmp_path)
    store.close()
    workspace.save_dataset(ds)
    store_fake_scan(ds, workspace, scan_table, details)
    out = tmp_path / "roi.html"
    code = main(
        [
            "report",
            "--workspace",
            str(workspace.root),
            "--db",
            f"sqlite:///{tmp_path / 'review.sqlite'}",
            "--out",
            str(out),
        ]
    )
    assert code == 0, capsys.readouterr().err
    assert "items reviewed" in capsys.readouterr().out
    text = out.read_text(encoding="utf-8")
    assert "fig-before-after" in text and "fig-precision-detector" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--out", "roi.pdf"], "use a .html"),
        (["--out", "missing-folder/roi.html"], "does not exist"),
        (["--out", "roi.html", "--dataset", "zzz"], "matches 0 datasets"),
    ],
)
def test_cli_bad_usage_exits_2(tmp_path, workspace, capsys, monkeypatch, args, message):
    from labelaudit.cli import main

    monkeypatch.chdir(tmp_path)
    ds, _ = clustered(seed=2)
    workspace.save_dataset(ds)
    assert main(["report", "--workspace", str(workspace.root), *args]) == 2
    assert message in capsys.readouterr().err
