"""Plotly figures of scan results, for the app and for notebooks (no Streamlit here).

Dataset text reaches a figure only through :func:`hover_text`, which truncates and HTML-escapes it.
"""

from __future__ import annotations

import html
from typing import Any

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
        for i, v in enumerate(sorted(set(_as_list(values))))
    }


def _as_list(values) -> list:
    """``values`` as a Python list, in one call for a pandas or NumPy column (iterating a pandas
    string column value by value costs ~3 us a row: 40 ms at the sample's 13k rows, paid on every
    rerun of a map page)."""
    return values.tolist() if hasattr(values, "tolist") else list(values)


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


def build_weights_spec(weights: dict[str, float]) -> tuple[pd.DataFrame, dict]:
    """(data, Vega-Lite spec): one horizontal bar per detector, its weight in the combined score,
    the heaviest on top (ties by name). A spec, not ``st.bar_chart``: that imports Altair (over a
    second on the first Label issues view of a fresh server at load 9; bench/results/page_views.md).

    >>> data, spec = build_weights_spec({"knn": 0.2, "cl": 0.5, "aum": 0.2})
    >>> data["detector"].tolist(), spec["encoding"]["y"]["sort"]
    (['cl', 'aum', 'knn'], None)
    """
    order = sorted(weights, key=lambda n: (-float(weights[n]), n))
    data = pd.DataFrame(
        {"detector": [str(n) for n in order], "weight": [float(weights[n]) for n in order]}
    )
    spec = {
        "height": 28 * len(order),
        "mark": {"type": "bar"},
        "encoding": {
            # sort None: the data's order (heaviest first), drawn top to bottom
            "y": {
                "field": "detector",
                "type": "nominal",
                "sort": None,
                "title": None,
                "axis": {"labelLimit": 360},
            },
            "x": {"field": "weight", "type": "quantitative", "title": "weight"},
            "tooltip": [
                {"field": "detector", "type": "nominal"},
                {"field": "weight", "type": "quantitative", "format": ".2f"},
            ],
        },
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


# --------------------------------------------------------------------------- Vega-Lite with selections
# The charts a page opens with are Vega-Lite specs (drawn by st.vega_lite_chart with
# on_select="rerun"): Plotly's 4.7 MB bundle cost every new browser tab ~1.5 s of script before
# its first chart (bench/results/page_views.md). Data strings (class names, ids, texts) go in as
# data values, never into a Vega expression or markup: axis labels are read from a parameter
# holding the names (``classNames[datum.value]``, the expression is fixed), tooltips are escaped by
# Vega's tooltip handler, and the SVG renderer draws text as DOM text.
#: Name of the box (interval) selection parameter of the map specs and of the confusion spec.
BOX = "box"
#: Name of the click (point) selection parameter of the confusion spec.
CELL = "cell"
#: A scales-bound parameter: the mouse wheel zooms, a drag with Shift held pans, a double click
#: resets. Not a selection the page listens to (the pages pass ``selection_mode=[BOX, ...]``).
_ZOOM: dict[str, Any] = {
    "name": "zoom",
    "select": {
        "type": "interval",
        "zoom": "wheel!",
        "translate": "[pointerdown[event.shiftKey], window:pointerup] > window:pointermove!",
    },
    "bind": "scales",
}
#: The box: a drag without Shift; the wheel zooms the chart, not the box.
_BOX: dict[str, Any] = {
    "name": BOX,
    "select": {
        "type": "interval",
        "encodings": ["x", "y"],
        "on": "[pointerdown[!event.shiftKey], window:pointerup] > window:pointermove!",
        "zoom": False,
        "translate": False,
    },
}


#: Characters of a row's text in a Vega-Lite map's tooltip: the text is most of the chart's data
#: (every drawn row's, sent to the browser with the chart), and 100 keeps nine in ten of the
#: sample's texts whole (median 46 characters).
MAP_TOOLTIP_CHARS = 100


def _compact(data: pd.DataFrame) -> pd.DataFrame:
    """``data`` as a chart sends it small: floats as float32 (a map needs no more), integers as
    int32 and repeated strings (class names, regions) dictionary-encoded (a pandas Categorical is
    sent as an Arrow dictionary: each value once, an index per row). The values are unchanged
    (category names are the strings themselves), so Vega reads the same data; the Explore map's
    data shrank from 2.08 to 1.14 MB at 13,083 rows (bench/results/page_views.md)."""
    out = {}
    for name, col in data.items():
        if pd.api.types.is_bool_dtype(col):
            out[name] = col
        elif pd.api.types.is_float_dtype(col):
            out[name] = col.astype(np.float32)
        elif pd.api.types.is_integer_dtype(col):
            out[name] = col.astype(np.int32)
        elif name in ("label", "colour", "region"):
            out[name] = pd.Categorical(col)
        else:
            out[name] = col
    return pd.DataFrame(out)


def truncated(texts, *, max_chars: int = HOVER_CHARS) -> list[str]:
    """Texts cut to ``max_chars`` for a tooltip (plain text: Vega's tooltip escapes it)."""
    out = []
    for t in _as_list(texts):
        t = str(t)
        out.append(t if len(t) <= max_chars else t[: max_chars - 1] + "…")
    return out


def interval_mask(box, x, y, *, x_field: str = "x", y_field: str = "y") -> np.ndarray:
    """Bool per point: inside the box of a Vega-Lite interval selection (``box``: the
    selection's value, ``{x_field: [lo, hi], y_field: [lo, hi]}``; empty or missing: none).

    >>> interval_mask({"x": [0, 1], "y": [1, 0]}, [0.5, 2.0], [0.5, 0.5]).tolist()
    [True, False]
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    try:
        (x0, x1), (y0, y1) = box[x_field], box[y_field]
    except (KeyError, TypeError, ValueError):
        return np.zeros(len(x), dtype=bool)
    xlo, xhi = sorted((float(x0), float(x1)))
    ylo, yhi = sorted((float(y0), float(y1)))
    return (x >= xlo) & (x <= xhi) & (y >= ylo) & (y <= yhi)


def _colour_encoding(values: pd.Series, title: str, colours: dict[str, str] | None) -> dict:
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return {
            "field": "colour",
            "type": "quantitative",
            "scale": {"scheme": "viridis"},
            "title": title,
            "legend": {"orient": "right"},
        }
    cats = sorted(set(values.astype(str).tolist()))
    lookup = dict(colours) if colours is not None else category_colours(cats)
    return {
        "field": "colour",
        "type": "nominal",
        "scale": {"domain": cats, "range": [lookup.get(c, "#999999") for c in cats]},
        "legend": None,  # the page's colour table is the legend (77 classes do not fit one)
    }


def build_map_spec(
    table: pd.DataFrame,
    texts: pd.Series,
    *,
    color_by: str = "given label",
    colours: dict[str, str] | None = None,
    highlight: np.ndarray | None = None,
    height: int = 620,
) -> tuple[pd.DataFrame, dict]:
    """(data, Vega-Lite spec) of the Explore map: a canvas scatter of ``table``'s rows (x, y),
    coloured as :func:`build_map_figure` (same colours), a tooltip with the id, label, cluster,
    colour value and text, and a box selection (:data:`BOX`, read with :func:`interval_mask` on
    the returned data's x and y). ``highlight``: rows ringed in a second layer.

    >>> data, spec = build_map_spec(pd.DataFrame({"id": ["a"], "x": [0.0], "y": [1.0],
    ...     "given_label": ["<b>c</b>"], "cluster": [0]}), pd.Series(["t"]))
    >>> data["label"].tolist(), spec["layer"][0]["params"][0]["name"]
    (['<b>c</b>'], 'box')
    """
    cats = _category_column(table, color_by)
    colour = cats if cats is not None else table[color_by].astype(float)
    data = pd.DataFrame(
        {
            "id": table["id"].astype(str).to_numpy(),
            "x": table["x"].to_numpy(dtype=float),
            "y": table["y"].to_numpy(dtype=float),
            "label": table["given_label"].astype(str).to_numpy(),
            "cluster": table["cluster"].to_numpy(),
            "colour": colour.to_numpy(),
            "text": truncated(texts, max_chars=MAP_TOOLTIP_CHARS),
        }
    )
    if highlight is not None:
        data["match"] = np.asarray(highlight, dtype=bool)
    data = _compact(data)
    colour_title = color_by
    tooltip = [
        {"field": "id", "type": "nominal"},
        {"field": "label", "type": "nominal", "title": "given label"},
        {"field": "cluster", "type": "quantitative"},
        {
            "field": "colour",
            "type": "nominal" if cats is not None else "quantitative",
            "title": colour_title,
            **({} if cats is not None else {"format": ".3g"}),
        },
        {"field": "text", "type": "nominal"},
    ]
    hidden = {"axis": None, "scale": {"zero": False}}
    points = {
        "mark": {"type": "circle", "size": 22, "opacity": 0.8},
        "params": [_BOX, _ZOOM],
        "encoding": {
            "x": {"field": "x", "type": "quantitative", **hidden},
            "y": {"field": "y", "type": "quantitative", **hidden},
            "color": _colour_encoding(colour, colour_title, colours),
            "tooltip": tooltip,
        },
    }
    layers = [points]
    if highlight is not None and data["match"].any():
        layers.append(
            {
                "transform": [{"filter": "datum.match"}],
                "mark": {
                    "type": "point",
                    "size": 110,
                    "stroke": "#111111",
                    "strokeWidth": 2,
                    "filled": False,
                },
                "encoding": {
                    "x": {"field": "x", "type": "quantitative"},
                    "y": {"field": "y", "type": "quantitative"},
                    "tooltip": tooltip,
                },
            }
        )
    spec = {
        "height": height,
        "layer": layers,
        "config": {"view": {"stroke": None}},
        # canvas: thousands of points; the map has no text of its own (the tooltip is escaped)
        "usermeta": {"embedOptions": {"renderer": "canvas"}},
    }
    return data, spec


def build_data_map_spec(
    table: pd.DataFrame,
    colour: pd.Series,
    colour_name: str,
    *,
    region_colours: dict[str, str],
    height: int = 560,
) -> tuple[pd.DataFrame, dict]:
    """(data, Vega-Lite spec) of the Training dynamics data map: variability (x) against
    confidence (y) of ``table``'s rows, coloured by ``colour`` (regions by ``region_colours``,
    numbers by a colour scale), a tooltip, and a box selection (:data:`BOX` on the fields
    ``variability`` and ``confidence``; :func:`interval_mask` reads it)."""
    data = pd.DataFrame(
        {
            "id": table["id"].astype(str).to_numpy(),
            "variability": table["variability"].to_numpy(dtype=float),
            "confidence": table["confidence"].to_numpy(dtype=float),
            "label": table["given_label"].astype(str).to_numpy(),
            "colour": colour.to_numpy(),
            "text": truncated(table["text"], max_chars=MAP_TOOLTIP_CHARS),
        }
    )
    data = _compact(data)
    numeric = pd.api.types.is_numeric_dtype(colour) and not pd.api.types.is_bool_dtype(colour)
    if numeric:
        col = _colour_encoding(colour, colour_name, None)
    else:
        cats = sorted(set(colour.astype(str).tolist()))
        col = {
            "field": "colour",
            "type": "nominal",
            "title": colour_name,
            "scale": {"domain": cats, "range": [region_colours.get(c, "#999999") for c in cats]},
            "legend": {"orient": "top"},
        }
    spec = {
        "height": height,
        "mark": {"type": "circle", "size": 22, "opacity": 0.75},
        "params": [{**_BOX, "select": {**_BOX["select"], "encodings": ["x", "y"]}}, _ZOOM],
        "encoding": {
            "x": {
                "field": "variability",
                "type": "quantitative",
                "title": "variability (std of p(given label) over epochs)",
                "scale": {"zero": True},
            },
            "y": {
                "field": "confidence",
                "type": "quantitative",
                "title": "confidence (mean p(given label))",
                "scale": {"domain": [-0.02, 1.02], "nice": False},
            },
            "color": col,
            "tooltip": [
                {"field": "id", "type": "nominal"},
                {"field": "label", "type": "nominal", "title": "given label"},
                {"field": "confidence", "type": "quantitative", "format": ".2f"},
                {"field": "variability", "type": "quantitative", "format": ".2f"},
                {
                    "field": "colour",
                    "type": "quantitative" if numeric else "nominal",
                    "title": colour_name,
                    **({"format": ".3g"} if numeric else {}),
                },
                {"field": "text", "type": "nominal"},
            ],
        },
        "usermeta": {"embedOptions": {"renderer": "canvas"}},
    }
    return data, spec


def build_confusion_spec(counts: np.ndarray, classes: list[str]) -> tuple[pd.DataFrame, dict]:
    """(data, Vega-Lite spec): given (rows) against predicted (columns) labels as squares, one per
    non-empty cell in :func:`labelaudit.tables.confusion_cells` order, coloured by log(1 + rows),
    red-edged off the diagonal. A click selects a square (:data:`CELL`, fields ``g`` and ``p``), a
    drag selects the squares whose centres it covers (:data:`BOX` on ``p`` and ``g``); the wheel
    zooms. Axis labels are the class names, read from a parameter (never parsed as markup or
    code); past :data:`CONFUSION_STAGGER_FROM` classes the predicted labels alternate between the
    bottom axis (even columns) and a top one (odd), so none covers its neighbour.

    >>> data, spec = build_confusion_spec(np.array([[2, 1], [0, 3]]), ["a", "<b>b</b>"])
    >>> data[["g", "p", "rows"]].values.tolist(), spec["params"][0]["value"]
    ([[0, 0, 2], [0, 1, 1], [1, 1, 3]], ['a', '<b>b</b>'])
    """
    from labelaudit.tables import confusion_cells

    k = len(classes)
    cells = confusion_cells(counts)
    gi, pi = cells[:, 0], cells[:, 1]
    n = np.asarray(counts)[gi, pi]
    names = [str(c) for c in classes]
    data = pd.DataFrame(
        {
            "g": gi,
            "p": pi,
            "given": [names[g] for g in gi],
            "predicted": [names[p] for p in pi],
            "rows": n,
            "log_rows": np.log1p(n),
            "off": gi != pi,
        }
    )
    side = max(4, min(28, int(560 / max(k, 1))))
    domain = [-0.5, k - 0.5]
    label = {
        "labelExpr": "classNames[datum.value]",
        "labelFontSize": CONFUSION_TICK_FONT,
        "labelLimit": 400,
        "grid": False,
        "tickMinStep": 1,
    }
    stagger = k > CONFUSION_STAGGER_FROM
    x_axis = {
        **label,
        "title": "predicted label",
        "values": list(range(0, k, 2)) if stagger else list(range(k)),
        "labelAngle": -90,
        "orient": "bottom",
    }
    y_axis = {**label, "title": "given label", "values": list(range(k))}
    scale = {"domain": domain, "nice": False, "zero": False}
    squares = {
        "mark": {"type": "square", "size": side * side, "strokeWidth": 1, "opacity": 1},
        "params": [
            {"name": CELL, "select": {"type": "point", "fields": ["g", "p"], "on": "click"}},
            {**_BOX, "select": {**_BOX["select"], "encodings": ["x", "y"]}},
            _ZOOM,
        ],
        "encoding": {
            "x": {"field": "p", "type": "quantitative", "scale": scale, "axis": x_axis},
            "y": {
                "field": "g",
                "type": "quantitative",
                "scale": {**scale, "reverse": True},
                "axis": y_axis,
            },
            "color": {
                "field": "log_rows",
                "type": "quantitative",
                "scale": {"scheme": "blues"},
                "title": "log(1+rows)",
            },
            "stroke": {"condition": {"test": "datum.off", "value": "#c0392b"}, "value": "#999999"},
            "tooltip": [
                {"field": "given", "type": "nominal"},
                {"field": "predicted", "type": "nominal"},
                {"field": "rows", "type": "quantitative", "format": ","},
            ],
        },
    }
    layers: list[dict] = [squares]
    if stagger:  # the odd columns' labels on a top axis of the same scale (no marks drawn)
        layers.append(
            {
                "mark": {"type": "square", "opacity": 0},
                "encoding": {
                    "x": {
                        "field": "p",
                        "type": "quantitative",
                        "scale": scale,
                        "axis": {
                            **x_axis,
                            "values": list(range(1, k, 2)),
                            "orient": "top",
                            "title": None,
                        },
                    },
                    "y": {
                        "field": "g",
                        "type": "quantitative",
                        "scale": {**scale, "reverse": True},
                        "axis": y_axis,
                    },
                },
            }
        )
    spec = {
        # the names as a parameter's value (data), read by the fixed label expressions
        "params": [{"name": "classNames", "value": names}],
        "height": max(300, CONFUSION_ROW_PX * k),
        "layer": layers,
        **({"resolve": {"axis": {"x": "independent"}}} if stagger else {}),
        # the width fits the page, the height is the rows' (axis labels are added around it: with
        # Streamlit's default "fit" they were squeezed into it, and half the names hidden)
        "autosize": {"type": "fit-x", "contains": "padding"},
        # SVG: the axis labels are DOM text (what the readability and markup checks read)
        "usermeta": {"embedOptions": {"renderer": "svg"}},
    }
    return data, spec
