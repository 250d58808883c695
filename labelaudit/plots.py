"""Plotly figures of scan results, for the app and for notebooks (no Streamlit here).

Dataset text reaches a figure only through :func:`hover_text`, which truncates and HTML-escapes it.
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd

#: Characters of text shown on hover.
HOVER_CHARS = 160
#: A qualitative palette long enough for many classes (Plotly's Alphabet + Dark24 + Light24).
_PALETTE: list[str] = []


def palette() -> list[str]:
    global _PALETTE
    if not _PALETTE:
        import plotly.express as px

        _PALETTE = (
            list(px.colors.qualitative.Alphabet)
            + list(px.colors.qualitative.Dark24)
            + list(px.colors.qualitative.Light24)
        )
    return _PALETTE


def hover_text(texts: pd.Series | list[str], *, max_chars: int = HOVER_CHARS) -> np.ndarray:
    """Texts truncated to ``max_chars`` and HTML-escaped (Plotly hover renders a subset of HTML)."""
    out = []
    for t in texts:
        t = str(t)
        t = t if len(t) <= max_chars else t[: max_chars - 1] + "…"
        out.append(html.escape(t, quote=False))
    return np.asarray(out, dtype=object)


def color_options(table: pd.DataFrame) -> list[str]:
    """What the map can be coloured by: categories first, then numeric score columns."""
    opts = ["given label", "cluster"]
    if "suggested_label" in table:
        opts.append("suggested label")
    skip = {"x", "y", "cluster"}
    opts += [
        c
        for c in table.columns
        if c not in skip
        and pd.api.types.is_numeric_dtype(table[c])
        and not pd.api.types.is_bool_dtype(table[c])
    ]
    return opts


def _category_column(table: pd.DataFrame, color_by: str) -> pd.Series | None:
    if color_by == "given label":
        return table["given_label"].astype(str)
    if color_by == "cluster":
        return table["cluster"].map(lambda c: "noise" if c < 0 else f"cluster {c}")
    if color_by == "suggested label":
        return table["suggested_label"].astype(str)
    return None


def build_map_figure(table: pd.DataFrame, texts: pd.Series, *, color_by: str = "given label"):
    """One Scattergl trace of ``table`` rows (x, y); raw row id in customdata[0]; hover with escaped text.

    ``table`` is a :class:`~labelaudit.scan.ScanResult` table (or a slice of it). Example, in a notebook::

        res = labelaudit.scan(ds)
        build_map_figure(res.table, ds.frame["text"], color_by="label_issue_score")   # shows the map

    ``texts``: the rows' texts, aligned with ``table``. Categories get a fixed colour per value
    (no legend: one trace keeps WebGL fast; the hover names the value); numbers get a colour bar.
    """
    import plotly.graph_objects as go

    cats = _category_column(table, color_by)
    label_col = table["given_label"].astype(str).map(lambda s: html.escape(s, quote=False))
    custom = np.column_stack(
        [
            table["id"].astype(str).to_numpy(dtype=object),
            label_col.to_numpy(dtype=object),
            table["cluster"].to_numpy(dtype=object),
            hover_text(texts),
            (
                cats.map(lambda s: html.escape(s, quote=False))
                if cats is not None
                else table[color_by].map(lambda v: f"{v:.3g}")
            ).to_numpy(dtype=object),
            table["id"]
            .astype(str)
            .map(lambda s: html.escape(s, quote=False))
            .to_numpy(dtype=object),
        ]
    )
    if cats is not None:
        values = sorted(cats.unique().tolist())
        colors = palette()
        # Past the palette, hues spaced by the golden angle keep every category distinct.
        lookup = {
            v: colors[i] if i < len(colors) else f"hsl({(i * 137.508) % 360:.0f},65%,45%)"
            for i, v in enumerate(values)
        }
        marker = {"color": cats.map(lookup).to_numpy(dtype=object), "size": 5, "opacity": 0.8}
    else:
        marker = {
            "color": table[color_by].to_numpy(dtype=float),
            "colorscale": "Viridis",
            "size": 5,
            "opacity": 0.8,
            "showscale": True,
            "colorbar": {"title": {"text": color_by}},
        }
    trace = go.Scattergl(
        x=table["x"].to_numpy(),
        y=table["y"].to_numpy(),
        mode="markers",
        marker=marker,
        customdata=custom,
        hovertemplate=(
            "<b>%{customdata[5]}</b> · %{customdata[1]} · cluster %{customdata[2]}<br>"
            f"{html.escape(color_by)}: %{{customdata[4]}}<br>%{{customdata[3]}}<extra></extra>"
        ),
    )
    fig = go.Figure(trace)
    fig.update_layout(
        height=620,
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        dragmode="select",
        xaxis={"visible": False},
        yaxis={"visible": False},
        showlegend=False,
    )
    return fig
