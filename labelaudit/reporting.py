"""The ROI charts and the self-contained HTML report for leaders.

The figures are built here once and used by both the ROI page and the report. The report is one
HTML file with plotly.js inlined (it opens offline, from a file:// URL or an e-mail attachment);
every piece of dataset or user text in it (class names, findings, source names) is HTML-escaped,
and text inside charts has ``<``, ``>`` and ``&`` escaped too (plotly renders a subset of HTML).
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from labelaudit import roi
from labelaudit.dataset import Dataset
from labelaudit.progress import ProgressFn, no_progress

ACTION_COLOURS = {
    "accept": "#2e7d32",
    "change": "#66bb6a",
    "keep": "#90a4ae",
    "ambiguous": "#ffb300",
    "remove": "#e53935",
}
#: Figure ids in the report, in order.
FIGURE_IDS = (
    "fig-decisions",
    "fig-before-after",
    "fig-curve",
    "fig-precision-detector",
    "fig-precision-class",
)


def chart_text(value: Any) -> str:
    """Text safe to put in a plotly label or hover: ``&``, ``<`` and ``>`` escaped.

    >>> chart_text("<b>x</b> & y")
    '&lt;b&gt;x&lt;/b&gt; &amp; y'
    """
    return html.escape(str(value), quote=False)


# --------------------------------------------------------------------------- figures
def _layout(fig: Any, title: str, height: int = 360) -> Any:
    fig.update_layout(
        title=title,
        height=height,
        margin={"t": 50, "b": 50, "l": 60, "r": 20},
        template="plotly_white",
        legend={"orientation": "h", "yanchor": "top", "y": -0.25},
    )
    # automargin: the margins grow to fit tick labels and axis titles instead of clipping them
    fig.update_xaxes(automargin=True)
    fig.update_yaxes(automargin=True)
    return fig


def figure_decisions(summary: roi.ReviewSummary) -> Any:
    """Bar chart: effective decisions per action."""
    import plotly.graph_objects as go

    actions = list(roi.DECISION_ACTIONS)
    counts = [summary.counts[a] for a in actions]
    fig = go.Figure(
        go.Bar(
            x=actions,
            y=counts,
            marker_color=[ACTION_COLOURS[a] for a in actions],
            text=counts,
            textposition="outside",
            hovertemplate="%{x}: %{y} items<extra></extra>",
        )
    )
    fig.update_yaxes(title="items")
    return _layout(fig, f"Decisions in force ({summary.n_reviewed:,} items reviewed)")


def _precision_bars(table: pd.DataFrame, title: str, *, axis_title: str) -> Any:
    import plotly.graph_objects as go

    t = table[table["reviewed"] > 0]
    p = t["precision"].to_numpy(dtype=float)
    fig = go.Figure(
        go.Bar(
            x=[chart_text(g) for g in t["group"]],
            y=p,
            error_y={
                "type": "data",
                "symmetric": False,
                "array": t["precision_high"].to_numpy(dtype=float) - p,
                "arrayminus": p - t["precision_low"].to_numpy(dtype=float),
            },
            customdata=np.stack(
                [t["reviewed"].to_numpy(), (t["accept"] + t["change"]).to_numpy()], axis=1
            )
            if len(t)
            else None,
            hovertemplate="%{x}: %{y:.0%} (%{customdata[1]} of %{customdata[0]} "
            "changed)<extra></extra>",
            marker_color="#1565c0",
        )
    )
    fig.update_yaxes(title="precision (label changed)", range=[0, 1.05], tickformat=".0%")
    fig.update_xaxes(title=axis_title)
    return _layout(fig, title)


def figure_precision_by_detector(summary: roi.ReviewSummary) -> Any:
    """Precision of each detector's flags among reviewed rows, with 95% Wilson intervals."""
    return _precision_bars(
        summary.by_detector,
        "Precision by detector (reviewed rows it flagged)",
        axis_title="detector",
    )


def figure_precision_by_class(summary: roi.ReviewSummary, *, top: int = 20) -> Any:
    """Precision among reviewed flagged rows of the ``top`` most reviewed given labels."""
    return _precision_bars(
        summary.by_class.head(top),
        f"Precision by given label (top {top} by items reviewed)",
        axis_title="given label",
    )


def percent_axis(values) -> dict[str, Any]:
    """y-axis settings for shares in [0, 1]: enough decimals that the ticks differ. A curve moving
    between 93.02 % and 93.08 % with ".1%" ticks reads "93.0%" six times.

    >>> percent_axis([0.9302, 0.9308])["tickformat"]
    '.2%'
    >>> percent_axis([0.5, 0.9])["tickformat"]
    '.0%'
    """
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=float)
    if not len(v):
        return {"tickformat": ".0%"}
    span = float(v.max() - v.min())
    if span == 0:  # a flat line: a small window around it, one decimal
        return {"tickformat": ".1%", "range": [float(v[0]) - 0.005, float(v[0]) + 0.005]}
    decimals = next((d for d, limit in ((0, 0.05), (1, 0.005), (2, 0.0005)) if span >= limit), 3)
    return {"tickformat": f".{decimals}%"}


def figure_accuracy_curve(ba: roi.BeforeAfter) -> Any:
    """Accuracy and macro-F1 of the retrained head against items reviewed, in review order."""
    import plotly.graph_objects as go

    c = ba.curve
    fig = go.Figure()
    for column, name in (("accuracy", "accuracy"), ("macro_f1", "macro-F1")):
        fig.add_trace(
            go.Scatter(
                x=c["n_reviewed"],
                y=c[column],
                mode="lines+markers",
                name=name,
                hovertemplate=f"%{{x}} reviewed: {name} %{{y:.2%}}<extra></extra>",
            )
        )
    fig.update_xaxes(title="items reviewed (in review order)")
    fig.update_yaxes(
        title=f"on {ba.n_eval:,} evaluation rows",
        **percent_axis([*c["accuracy"], *c["macro_f1"]]),
    )
    return _layout(fig, "Accuracy of the retrained head as the review goes on")


def figure_before_after(ba: roi.BeforeAfter) -> Any:
    """Grouped bars: accuracy and macro-F1 before and after, with 95% bootstrap intervals."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for when, colour in (("before", "#90a4ae"), ("after", "#2e7d32")):
        vals = [ba.metrics[f"{m}_{when}"] for m in ("accuracy", "macro_f1")]
        fig.add_trace(
            go.Bar(
                name=f"{when} review",
                x=["accuracy", "macro-F1"],
                y=[v.value for v in vals],
                marker_color=colour,
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": [v.high - v.value for v in vals],
                    "arrayminus": [v.value - v.low for v in vals],
                },
                hovertemplate="%{x} " + when + ": %{y:.2%}<extra></extra>",
            )
        )
    lows = [
        ba.metrics[f"{m}_{w}"].low for m in ("accuracy", "macro_f1") for w in ("before", "after")
    ]
    fig.update_yaxes(tickformat=".1%", range=[max(0.0, min(lows) - 0.05), 1.0])
    fig.update_layout(barmode="group")
    return _layout(fig, "Before / after (95% paired-bootstrap intervals)")


# --------------------------------------------------------------------------- the report
@dataclass
class RoiReport:
    """Everything the ROI page and the report show, for one dataset version."""

    dataset_source: str
    dataset_hash: str
    n_rows: int
    summary: roi.ReviewSummary
    projection: roi.Projection
    before_after: roi.BeforeAfter | None
    findings: pd.DataFrame
    before_after_note: str = ""
    generated_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    #: Learning from the decisions (labelaudit.review.adaptive.LearningSummary), when computed.
    learning: Any = None

    @property
    def simulated(self) -> bool:
        return self.summary.simulated


def compute_report(
    ds: Dataset,
    log: pd.DataFrame,
    findings: pd.DataFrame,
    *,
    scan_table: pd.DataFrame | None,
    details: Mapping[str, Any] | None,
    embeddings: np.ndarray | None,
    workspace: Any = None,
    next_n: int = 100,
    seed: int = 0,
    retrain: bool = True,
    progress: ProgressFn = no_progress,
    learning: Any = None,
) -> RoiReport:
    """Summary, before/after (when there are decisions and embeddings), projection and findings.

    ``learning``: :func:`labelaudit.review.adaptive.learning_summary` — the ranking in force, the
    estimated precision of every flag and the audit's estimate of the errors left, which the
    projection uses instead of the noise-matrix assumption when there are enough audit decisions.

    ``log``/``findings``: :meth:`ReviewStore.log` / :meth:`ReviewStore.findings` for
    ``ds.content_hash``; ``scan_table``/``details``/``embeddings``: the scan's. The retraining is
    cached in ``workspace`` under the decisions' digest; with ``retrain=False`` only a stored result
    is used (a page view never blocks on retraining).
    """
    from labelaudit.errors import DataError

    summary = roi.summarise_review(ds, log, scan_table=scan_table, details=details)
    ba, note = None, ""
    if summary.n_reviewed and embeddings is not None:
        try:
            if retrain:
                ba = roi.before_after(
                    ds, embeddings, log, workspace=workspace, seed=seed, progress=progress
                )
            else:
                ba = roi.stored_before_after(ds, embeddings, log, workspace=workspace, seed=seed)
                note = (
                    ""
                    if ba is not None
                    else "The before/after retraining has not run for these decisions yet."
                )
        except DataError as e:
            note = str(e)
    elif not summary.n_reviewed:
        note = "No review decisions yet: the before/after needs at least one."
    else:
        note = "No embeddings (run the scan) for the before/after retraining."
    est, source = roi.estimated_label_errors(details, scan_table, n_rows=ds.n)
    proj = roi.project(
        summary,
        estimated_errors=est,
        estimate_source=source,
        before_after_result=ba,
        next_n=next_n,
        audit_estimate=None if learning is None else learning.remaining,
    )
    return RoiReport(
        dataset_source=ds.source,
        dataset_hash=ds.content_hash,
        n_rows=ds.n,
        summary=summary,
        projection=proj,
        before_after=ba,
        findings=findings,
        before_after_note=note,
        learning=learning,
    )


def _pct(v: float | None, spec: str = ".1%") -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def _num(v: float | None, spec: str = ",.0f") -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def headline_numbers(rep: RoiReport) -> list[tuple[str, str]]:
    """(label, value) pairs shown at the top of the page and the report; plain text."""
    s, p, ba = rep.summary, rep.projection, rep.before_after
    rows = [
        ("Items reviewed", f"{s.n_reviewed:,}"),
        ("Labels changed (accept + change)", f"{s.n_relabelled:,}"),
        (
            "Precision of suggestions",
            f"too few decisions ({s.n_flagged_reviewed:,} flagged rows reviewed, at least "
            f"{roi.MIN_DECISIONS_FOR_ESTIMATES} needed)"
            if s.too_few_decisions
            else f"{_pct(s.overall_precision)} of {s.n_flagged_reviewed:,} flagged rows reviewed",
        ),
        ("Median time per item", f"{_num(s.time.median_seconds, '.0f')} s"),
    ]
    if ba is not None:
        a, f = ba.metrics["accuracy_change"], ba.metrics["macro_f1_change"]
        rows += [
            (
                "Accuracy before → after",
                f"{_pct(ba.metrics['accuracy_before'].value)} → "
                f"{_pct(ba.metrics['accuracy_after'].value)}",
            ),
            (
                "Accuracy change (95% CI)",
                f"{a.value * 100:+.2f} points ({a.low * 100:+.2f} to {a.high * 100:+.2f})",
            ),
            (
                "Macro-F1 change (95% CI)",
                f"{f.value * 100:+.2f} points ({f.low * 100:+.2f} to {f.high * 100:+.2f})",
            ),
            (
                "Accuracy change per 100 items reviewed",
                f"{ba.change_per_100('accuracy') * 100:+.2f} points",
            ),
        ]
    rows += [
        (
            "Estimated label errors left",
            _num(p.remaining_errors)
            + (
                f" (95% interval {_num(p.remaining_low)} to {_num(p.remaining_high)}, from the "
                "audit)"
                if p.remaining_source == "audit"
                else ""
            ),
        ),
        (f"Next {p.next_n:,} reviews: expected fixes", _num(p.expected_fixes, ",.1f")),
        (f"Next {p.next_n:,} reviews: reviewer hours", _num(p.expected_hours, ",.1f")),
    ]
    if p.expected_accuracy_gain is not None:
        rows.append(
            (
                f"Next {p.next_n:,} reviews: expected accuracy gain",
                f"{p.expected_accuracy_gain * 100:+.2f} points",
            )
        )
    return rows


def report_figures(rep: RoiReport) -> dict[str, Any]:
    """Figure id -> plotly figure, for what the data supports."""
    figs: dict[str, Any] = {"fig-decisions": figure_decisions(rep.summary)}
    if rep.before_after is not None:
        figs["fig-before-after"] = figure_before_after(rep.before_after)
        figs["fig-curve"] = figure_accuracy_curve(rep.before_after)
    if len(rep.summary.by_detector):
        figs["fig-precision-detector"] = figure_precision_by_detector(rep.summary)
    if len(rep.summary.by_class):
        figs["fig-precision-class"] = figure_precision_by_class(rep.summary)
    return figs


def definitions() -> list[str]:
    """How the numbers are defined (the page and the report show the same sentences)."""
    return [
        "Items reviewed: items with a decision in force after undos.",
        "Precision of suggestions: among reviewed rows the detectors flagged, the share whose "
        "label was changed "
        "(accept or change). Remove and ambiguous count as not changed; the problem rate counts "
        "everything but keep.",
        "Reviewer time: gaps between consecutive decisions of each reviewer; gaps over "
        f"{roi.BREAK_SECONDS / 60:.0f} "
        "minutes are breaks and ignored; bulk decisions are left out.",
        "Before/after: a multinomial logistic regression on the sentence embeddings (seeded, same "
        "hyper-parameters "
        "both times) trained on the original labels and on the labels after the decisions (removed "
        "rows dropped), "
        "both scored on the protected split, whose reviewed labels are the truth where they exist. "
        "Intervals: "
        f"{roi.BOOTSTRAP_RESAMPLES:,} paired bootstrap resamples of the evaluation rows, "
        "2.5th-97.5th percentiles.",
    ]


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;
  margin:2em auto;padding:0 1em;color:#222}
h1{margin-bottom:.2em} .meta{color:#666} table{border-collapse:collapse;margin:1em 0}
td,th{border-bottom:1px solid #ddd;padding:.35em .8em;text-align:left;vertical-align:top}
.banner{background:#fff3cd;border:1px solid #e0b000;padding:.8em 1em;border-radius:6px;
  font-weight:600}
.fig{margin:1.5em 0} .num{font-variant-numeric:tabular-nums}
"""


def render_html(rep: RoiReport) -> str:
    """The report as one self-contained HTML document (plotly.js inlined once; no network
    needed)."""
    e = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>Data ROI report: "
        f"{e(rep.dataset_source)}</title><style>{_CSS}</style></head><body>",
        "<h1>Data ROI report</h1>",
        f'<p class="meta">Dataset: {e(rep.dataset_source)} · version {e(rep.dataset_hash)} · '
        f"{rep.n_rows:,} rows · "
        f"generated {e(rep.generated_at.strftime('%Y-%m-%d %H:%M UTC'))}</p>",
    ]
    if rep.simulated:
        parts.append(
            '<p class="banner" id="simulated-banner">Simulated demo: these decisions were replayed '
            "by "
            f"{e(roi.SIMULATED_REVIEWER)} from an answer key of planted label flips, not made by "
            "people. "
            "Every number below is computed from them as it would be from a real review.</p>"
        )
    parts.append('<h2>Headline numbers</h2><table id="headline">')
    for label, value in headline_numbers(rep):
        parts.append(f'<tr><th>{e(label)}</th><td class="num">{e(value)}</td></tr>')
    parts.append("</table>")
    if rep.before_after_note:
        parts.append(f"<p>{e(rep.before_after_note)}</p>")
    if rep.before_after is not None:
        ba = rep.before_after
        parts.append(
            f"<p>Trained on {ba.n_train_before:,} rows before and {ba.n_train_after:,} after "
            f"({ba.n_relabelled_train:,} relabelled, {ba.n_removed_train:,} removed); evaluated on "
            f"{ba.n_eval:,} rows of {e(ba.eval_source)}.</p>"
        )
    figs = report_figures(rep)
    first = True
    for fid in FIGURE_IDS:
        if fid not in figs:
            continue
        parts.append(
            '<div class="fig">'
            + figs[fid].to_html(
                full_html=False,
                include_plotlyjs=first,
                div_id=fid,
                config={"displaylogo": False, "responsive": True},
            )
            + "</div>"
        )
        first = False
    s = rep.summary
    parts.append("<h2>Decisions</h2><table><tr><th>action</th><th>items</th></tr>")
    for a in roi.DECISION_ACTIONS:
        parts.append(f"<tr><td>{e(a)}</td><td class='num'>{s.counts[a]:,}</td></tr>")
    parts.append(
        f"</table><p>{s.n_log_rows:,} rows in the decision log, {s.n_undos:,} of them undos; "
        "reviewers: "
        f"{e(', '.join(s.reviewers) or 'none')}.</p>"
    )
    if len(s.by_detector):
        parts.append(
            "<h2>Precision by detector</h2>"
            + _table(s.by_detector.rename(columns={"group": "detector"}))
        )
    if rep.learning is not None:
        parts.append(_learning_html(rep.learning))
    parts.append(
        "<h2>Projection</h2><ul>"
        + "".join(f"<li>{e(a)}</li>" for a in rep.projection.assumptions)
        + "</ul>"
    )
    parts.append("<h2>Findings</h2>")
    if len(rep.findings):
        parts.append(
            '<table id="findings"><tr><th>kind</th><th>target</th><th>note</th><th>by</th>'
            "<th>when</th></tr>"
        )
        for f in rep.findings.itertuples():
            when = pd.Timestamp(f.created_at).strftime("%Y-%m-%d %H:%M")
            parts.append(
                f"<tr><td>{e(str(f.kind))}</td><td>{e(str(f.target))}</td><td>{e(str(f.note))}</td>"
                f"<td>{e(str(f.author))}</td><td>{e(when)}</td></tr>"
            )
        parts.append("</table>")
    else:
        parts.append("<p>No findings pinned yet.</p>")
    parts.append(
        "<h2>Definitions</h2><ul>" + "".join(f"<li>{e(d)}</li>" for d in definitions()) + "</ul>"
    )
    parts.append("</body></html>")
    return "\n".join(parts)


def _learning_html(learning: Any) -> str:
    """The report's section on learning from the decisions (every value escaped)."""
    e = html.escape
    out = [
        '<h2 id="learning">Learning from the decisions</h2>',
        f"<p>{e(learning.ranking_text)}</p>",
    ]
    est = learning.precision
    overall = est[est["by"] == "all"]
    if len(overall):
        out.append(
            "<h3>Estimated precision of the flags</h3><p>Share of reviewed flagged items whose "
            "label was "
            "changed, with 95% Wilson intervals.</p>"
        )
        out.append(
            '<table id="estimated-precision"><tr><th>flag</th><th>reviewed</th><th>changed</th>'
            "<th>precision</th><th>95% interval</th></tr>"
        )
        for r in overall.itertuples():
            out.append(
                f"<tr><td>{e(str(r.scope))}</td><td>{r.reviewed:,}</td><td>{r.changed:,}</td>"
                f"<td>{_pct(r.precision)}</td><td>{_pct(r.precision_low)} to "
                f"{_pct(r.precision_high)}</td></tr>"
            )
        out.append("</table>")
    groups = est[est["by"] != "all"]
    if len(groups):
        out.append(
            f"<p>Per class and cluster (groups with at least 10 reviewed flags): {len(groups):,} "
            "rows; "
            "the ROI page lists them.</p>"
        )
    rem = learning.remaining
    out.append('<h3 id="errors-left">Errors left (audit)</h3>')
    if rem.enough:
        out.append(f"<p>{e(rem.describe())}.</p>")
        out.append(
            "<table><tr><th>stratum</th><th>ranking share</th><th>undecided</th><th>audited</th>"
            "<th>errors</th><th>error rate (95% interval)</th><th>errors left (95% "
            "interval)</th></tr>"
        )
        for r in rem.strata.itertuples():
            out.append(
                f"<tr><td>{e(str(r.stratum))}</td><td>{r.rank_from:.0%}-{r.rank_to:.0%}</td>"
                f"<td>{r.undecided:,}</td><td>{r.audited:,}</td><td>{r.errors:,}</td>"
                f"<td>{_pct(r.rate)} ({_pct(r.rate_low)}-{_pct(r.rate_high)})</td>"
                f"<td>{_num(r.remaining)} "
                f"({_num(r.remaining_low)}-{_num(r.remaining_high)})</td></tr>"
            )
        out.append("</table>")
    else:
        out.append(f"<p>{e(rem.reason)}</p>")
    return "".join(out)


def _table(df: pd.DataFrame) -> str:
    e = html.escape
    cols = [c for c in df.columns if c not in ("precision_low", "precision_high")]
    out = ["<table><tr>" + "".join(f"<th>{e(str(c))}</th>" for c in cols) + "</tr>"]
    for rec in df[cols].itertuples(index=False):
        cells = []
        for c, v in zip(cols, rec, strict=True):
            cells.append(_pct(v) if c in ("precision", "problem_rate") else str(v))
        out.append("<tr>" + "".join(f"<td>{e(x)}</td>" for x in cells) + "</tr>")
    return "".join(out) + "</table>"


def write_report(rep: RoiReport, path: str | Path) -> Path:
    """Write :func:`render_html` to ``path`` (atomic rename) and return it."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.tmp")
    tmp.write_text(render_html(rep), encoding="utf-8")
    tmp.replace(p)
    return p


def find_scan(ds: Dataset, workspace: Any) -> Any:
    """The most recent stored scan of ``ds`` in ``workspace`` (whatever options it ran with), or
    None.

    Reads the parameters from each stored ``scan_meta`` and loads the newest that is still complete.
    """
    from labelaudit.scanning import load_cached_scan

    folder = Path(workspace.root) / "artifacts" / ds.content_hash
    metas = (
        sorted(folder.glob("scan_meta-*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
        if folder.exists()
        else []
    )
    import json

    for meta in metas:
        try:
            params = json.loads(meta.read_text(encoding="utf-8"))["params"]
            res = load_cached_scan(
                ds,
                workspace=workspace,
                seed=params["seed"],
                cluster_method=params["cluster_method"],
                n_clusters=params["n_clusters"],
                detectors=params["detectors"],
            )
        except (KeyError, ValueError, OSError):
            continue
        if res is not None:
            return res
    return None
