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


def category_colours(values) -> dict[str, str]:
    """A fixed colour per category (sorted; past the palette, hues spaced by the golden angle keep
    every category distinct). Pass the colours of the whole table to :func:`build_map_figure` so a
    filtered map and the legend (:func:`map_legend`) keep the same colours."""
    colors = palette()
    return {
        v: colors[i] if i < len(colors) else f"hsl({(i * 137.508) % 360:.0f},65%,45%)"
        for i, v in enumerate(sorted(set(values)))
    }


def map_legend(table: pd.DataFrame, color_by: str) -> pd.DataFrame | None:
    """The colour of each category of ``color_by`` and its rows (most first): ``category``,
    ``colour``, ``rows``; None for a numeric colouring (the map has a colour bar). Category names
    are as in the data (a table shows them as text)."""
    cats = _category_column(table, color_by)
    if cats is None:
        return None
    colours = category_colours(cats)
    counts = cats.value_counts()
    return pd.DataFrame(
        {
            "category": counts.index.astype(str),
            "colour": [colours[c] for c in counts.index],
            "rows": counts.to_numpy(),
        }
    )


def build_map_figure(
    table: pd.DataFrame,
    texts: pd.Series,
    *,
    color_by: str = "given label",
    colours: dict[str, str] | None = None,
    highlight: np.ndarray | None = None,
):
    """One Scattergl trace of ``table`` rows (x, y); raw row id in customdata[0]; hover with escaped text.

    ``table`` is a :class:`~labelaudit.scanning.ScanResult` table (or a slice of it). Example, in a notebook::

        res = labelaudit.scan(ds)
        build_map_figure(res.table, ds.frame["text"], color_by="label_issue_score")   # shows the map

    ``texts``: the rows' texts, aligned with ``table``. Categories get a fixed colour per value
    (``colours``, default :func:`category_colours` of these rows; no legend on the figure: one
    trace keeps WebGL fast, :func:`map_legend` is the legend); numbers get a colour bar.
    ``highlight``: bool per row (e.g. a text search's matches), drawn again on top as larger,
    outlined points in a second trace with the same customdata (a selection reads either).
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
        lookup = dict(colours) if colours is not None else category_colours(cats)
        for v in set(cats) - set(lookup):
            lookup[v] = "#999999"
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
    if highlight is not None and np.asarray(highlight, dtype=bool).any():
        hit = np.asarray(highlight, dtype=bool)
        fig.add_trace(
            go.Scattergl(
                x=table["x"].to_numpy()[hit],
                y=table["y"].to_numpy()[hit],
                mode="markers",
                marker={
                    "color": "rgba(0,0,0,0)",
                    "size": 11,
                    "line": {"width": 2, "color": "#111111"},
                },
                customdata=custom[hit],
                hovertemplate=trace.hovertemplate,
                name="matches",
            )
        )
    fig.update_layout(
        height=620,
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        dragmode="select",
        xaxis={"visible": False},
        yaxis={"visible": False},
        showlegend=False,
    )
    return fig


def _escaped(names) -> list[str]:
    return [html.escape(str(x), quote=False) for x in names]


# --------------------------------------------------------------------------- data summary
# The Data page's charts are Vega-Lite specifications (plain dicts, drawn by st.vega_lite_chart or
# any Vega-Lite renderer): they need no selection, and Vega-Lite's renderer costs a fresh browser
# tab a fraction of what Plotly's bundle does (bench/results/page_views.md). Vega draws axis
# labels as SVG text and its tooltips escape HTML, so data strings go in as they are, never as markup.
def build_class_balance_spec(
    class_counts: pd.Series, *, max_tick_labels: int = 40
) -> tuple[pd.DataFrame, dict]:
    """(data, Vega-Lite spec): bars of rows per class, largest first (``class_counts``: class name
    -> rows, e.g. :meth:`labelaudit.dataset.Dataset.class_counts`). Tick labels are hidden past
    ``max_tick_labels`` classes (the tooltip names each bar). Class names stay plain text.

    >>> data, spec = build_class_balance_spec(pd.Series({"b": 1, "a": 3}))
    >>> data["class"].tolist(), spec["encoding"]["x"]["sort"]
    (['a', 'b'], '-y')
    """
    counts = class_counts.sort_values(ascending=False, kind="stable")
    data = pd.DataFrame({"class": counts.index.astype(str), "rows": counts.to_numpy()})
    many = len(data) > max_tick_labels
    spec = {
        "title": "Class balance",
        "height": 300,
        "mark": {"type": "bar"},
        "encoding": {
            "x": {
                "field": "class",
                "type": "nominal",
                "sort": "-y",
                "axis": {"labels": not many, "ticks": not many, "labelLimit": 360},
                "title": "class",
            },
            "y": {"field": "rows", "type": "quantitative", "title": "rows"},
            "tooltip": [
                {"field": "class", "type": "nominal"},
                {"field": "rows", "type": "quantitative", "format": ","},
            ],
        },
        # SVG: axis labels are DOM text (what the readability and markup checks read)
        "usermeta": {"embedOptions": {"renderer": "svg"}},
    }
    return data, spec


def build_text_length_spec(lengths, *, bins: int = 50) -> tuple[pd.DataFrame, dict]:
    """(data, Vega-Lite spec): a histogram of text lengths in characters, binned here (``bins``
    bars are sent, not one value per row).

    >>> data, _ = build_text_length_spec([1, 2, 2, 9], bins=4)
    >>> int(data["rows"].sum())
    4
    """
    v = np.asarray(lengths, dtype=float)
    v = v[np.isfinite(v)]
    counts, edges = np.histogram(v, bins=bins) if len(v) else (np.zeros(0), np.zeros(1))
    data = pd.DataFrame(
        {"from": edges[:-1], "to": edges[1:], "rows": np.asarray(counts, dtype=np.int64)}
    )
    spec = {
        "title": "Text length",
        "height": 300,
        "mark": {"type": "bar"},
        "encoding": {
            "x": {
                "field": "from",
                "type": "quantitative",
                "bin": {"binned": True},
                "title": "characters",
            },
            "x2": {"field": "to"},
            "y": {"field": "rows", "type": "quantitative", "title": "rows"},
            "tooltip": [
                {"field": "from", "type": "quantitative", "format": ".0f", "title": "from"},
                {"field": "to", "type": "quantitative", "format": ".0f", "title": "to"},
                {"field": "rows", "type": "quantitative", "format": ","},
            ],
        },
        "usermeta": {"embedOptions": {"renderer": "svg"}},
    }
    return data, spec


# --------------------------------------------------------------------------- label issues
#: Tick label font of the confusion figure (px), the pixels per row of it, and the number of
#: classes above which its predicted-label ticks alternate between a bottom and a top axis.
CONFUSION_TICK_FONT = 10
CONFUSION_ROW_PX = 15
CONFUSION_STAGGER_FROM = 30


def build_confusion_figure(counts: np.ndarray, classes: list[str]):
    """Given (rows) against predicted (columns) labels as squares on a grid, one per non-empty cell;
    colour by log(1 + rows), red edge off the diagonal.

    A scatter rather than a heatmap, so that a click or a box selects cells: point ``i`` is cell
    ``labelaudit.tables.confusion_cells(counts)[i]`` (also in its customdata). ``counts``: int (K, K)
    from :func:`labelaudit.tables.confusion_counts`. Class names are HTML-escaped.
    """
    import plotly.graph_objects as go

    from labelaudit.tables import confusion_cells

    k = len(classes)
    cells = confusion_cells(counts)
    gi, pi = cells[:, 0], cells[:, 1]
    c = counts[gi, pi]
    names = _escaped(classes)
    hover = [
        f"given {names[g]}<br>predicted {names[p]}<br>{n:,} rows"
        for g, p, n in zip(gi, pi, c, strict=True)
    ]
    size = max(4, min(28, int(560 / max(k, 1))))
    fig = go.Figure(
        go.Scatter(
            x=pi,
            y=gi,
            mode="markers",
            customdata=np.column_stack([gi, pi]),
            hovertext=hover,
            hoverinfo="text",
            marker={
                "symbol": "square",
                "size": size,
                "color": np.log1p(c),
                "colorscale": "Blues",
                "line": {"width": 1, "color": np.where(gi == pi, "#999", "#c0392b")},
                "colorbar": {"title": "log(1+rows)"},
            },
        )
    )
    font = {"size": CONFUSION_TICK_FONT}
    ticks = {"tickmode": "array", "tickvals": list(range(k)), "ticktext": names, "tickfont": font}
    xrange = [-0.5, k - 0.5]
    if k > CONFUSION_STAGGER_FROM:
        # Many classes: the predicted labels alternate between the bottom axis (even columns) and
        # a top one (odd columns), so each axis has twice the room per label and none covers its
        # neighbour; every label is still drawn (and the hover names each cell).
        even, odd = list(range(0, k, 2)), list(range(1, k, 2))
        xaxis = {
            **ticks,
            "tickvals": even,
            "ticktext": [names[i] for i in even],
            "title": "predicted label",
            "range": xrange,
            "tickangle": -90,
        }
        fig.add_trace(  # an empty trace on the top axis, so that Plotly draws it
            go.Scatter(x=[], y=[], xaxis="x2", showlegend=False, hoverinfo="skip")
        )
        xaxis2 = {
            **ticks,
            "tickvals": odd,
            "ticktext": [names[i] for i in odd],
            "overlaying": "x",
            "matches": "x",
            "side": "top",
            "range": xrange,
            "tickangle": -90,
        }
    else:
        xaxis, xaxis2 = {"title": "predicted label", **ticks, "range": xrange}, None
    fig.update_layout(
        xaxis=xaxis,
        yaxis={"title": "given label", **ticks, "autorange": "reversed"},
        # a row per label, each at least a label's height (no cap: the page scrolls)
        height=max(380, CONFUSION_ROW_PX * k + 260),
        margin={"l": 10, "r": 10, "t": 40, "b": 10},  # top margin: room for the modebar
        dragmode="select",
        clickmode="event+select",
    )
    if xaxis2 is not None:
        fig.update_layout(xaxis2=xaxis2)
    return fig


def build_noise_matrix_figure(noise_matrix, classes: list[str]):
    """Heatmap of confident learning's estimated P(given | true), (K, K); None when there is none
    (not a 2-D matrix, or no finite value). Class names are HTML-escaped."""
    import plotly.graph_objects as go

    m = np.asarray(noise_matrix if noise_matrix is not None else np.nan, dtype=np.float64)
    if m.ndim != 2 or not np.isfinite(m).any():
        return None
    names = _escaped(classes)
    fig = go.Figure(
        go.Heatmap(
            z=m,
            x=names,
            y=names,
            colorscale="Reds",
            zmin=0,
            zmax=1,
            hovertemplate="true %{x}<br>given %{y}<br>P(given | true) = %{z:.3f}<extra></extra>",
        )
    )
    fig.update_layout(
        xaxis_title="true label (estimated)",
        yaxis_title="given label",
        yaxis_autorange="reversed",
        height=max(380, min(1200, 18 * len(classes) + 160)),
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
    )
    return fig


def build_issues_per_class_figure(per_class: pd.DataFrame):
    """Bars of rows needing review per class (``per_class`` from
    :func:`labelaudit.tables.issues_per_class`); the share of the class on hover."""
    import plotly.graph_objects as go

    fig = go.Figure(
        go.Bar(
            x=_escaped(per_class["class"]),
            y=per_class["rows needing review"],
            customdata=per_class["share of class"],
            hovertemplate="%{x}<br>%{y} rows (%{customdata:.1%} of the class)<extra></extra>",
        )
    )
    fig.update_layout(
        yaxis_title="rows needing review", height=380, margin={"l": 10, "r": 10, "t": 10, "b": 10}
    )
    return fig
