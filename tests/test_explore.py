"""The Explore page with AppTest (scan stored beforehand with the fakes of test_scan), and the map figure."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from labelaudit.scanning import scan
from tests.conftest import ROOT
from tests.test_scan import fakes, topic_dataset  # noqa: F401  (fixture)


def _page(workspace, ds) -> AppTest:
    at = AppTest.from_file(str(ROOT / "views/explore.py"), default_timeout=120)
    at.session_state["workspace"] = str(workspace.root)
    at.session_state["dataset_hash"] = workspace.save_dataset(ds)
    return at


def _charts(at: AppTest) -> list:
    """The map: a Vega-Lite chart on opening (a Plotly one with the lasso toggle on)."""
    return at.get("vega_lite_chart") + at.get("plotly_chart")


def _map(at: AppTest) -> tuple[pd.DataFrame, dict]:
    """(data, spec) of the Vega-Lite map as sent to the browser (its data is Arrow IPC)."""
    import pyarrow as pa

    proto = at.get("vega_lite_chart")[0].proto
    return pa.ipc.open_stream(proto.data.data).read_pandas(), json.loads(proto.spec)


def _n_points(at: AppTest) -> int:
    return len(_map(at)[0])


@pytest.fixture
def scanned(fakes, workspace):  # noqa: F811
    ds = topic_dataset()
    res = scan(ds, workspace=workspace)
    return ds, res


def test_unscanned_dataset_offers_run_scan_then_shows_the_map(fakes, workspace):  # noqa: F811
    ds = topic_dataset()
    at = _page(workspace, ds).run()
    assert not at.exception
    assert any("has not been scanned" in i.value for i in at.info)
    assert not _charts(at)
    at.button(key="run_scan").click().run()
    assert not at.exception
    assert fakes.embed == 1 and fakes.detect == 1
    data, spec = _map(at)
    assert len(spec["layer"]) == 1 and spec["layer"][0]["mark"]["type"] == "circle"
    assert len(data) == ds.n and set(data["id"]) == set(ds.ids)


def test_injected_selection_fills_the_table_and_the_url(scanned, workspace):
    ds, res = scanned
    at = _page(workspace, ds)
    picked = ["r3", "r10", "r50"]
    at.session_state["selection"] = picked
    at.run()
    assert not at.exception
    assert "Selected rows (3)" in [s.value for s in at.subheader]
    table = at.dataframe[0].value
    assert sorted(table["id"]) == sorted(picked)
    assert table["text"].tolist() == [ds.texts[ds.id_to_row[i]] for i in table["id"]]
    scores = table["label_issue_score"].to_numpy()
    assert (np.diff(scores) <= 0).all()  # most suspicious first
    assert at.query_params["ids"] == picked


def test_a_box_on_the_map_selects_its_rows_once(scanned, workspace):
    """A box drawn on the Vega-Lite map (its selection event, as the browser sends it) selects the
    rows inside it; "Clear selection" is not undone by the box still drawn; the lasso toggle draws
    the map with Plotly and keeps the selection."""
    ds, res = scanned
    at = _page(workspace, ds).run()
    data, _ = _map(at)
    x0, x1 = np.quantile(data["x"], [0.2, 0.6])
    y0, y1 = float(data["y"].min()) - 1, float(data["y"].max()) + 1
    inside = set(data.loc[(data["x"] >= x0) & (data["x"] <= x1), "id"])
    assert 0 < len(inside) < ds.n
    at.session_state["explore_map_box"] = {"selection": {"box": {"x": [x1, x0], "y": [y0, y1]}}}
    at.run()
    assert not at.exception
    assert set(at.session_state["selection"]) == inside
    assert f"Selected rows ({len(inside):,})" in [s.value for s in at.subheader]
    at.button(key="explore_clear_selection").click().run()
    assert at.session_state["selection"] == []
    at.toggle(key="explore_lasso").set_value(True).run()
    assert not at.exception
    assert len(at.get("plotly_chart")) == 1 and not at.get("vega_lite_chart")
    assert at.session_state["selection"] == []


def test_send_selection_to_review(scanned, workspace):
    ds, res = scanned
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state["workspace"] = str(workspace.root)
    at.session_state["dataset_hash"] = workspace.save_dataset(ds)
    at.session_state["selection"] = ["r3", "r10", "r50"]
    at.switch_page("views/explore.py").run()
    assert not at.exception
    at.button(key="explore_send").click().run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Review"]
    queue = at.session_state["review_queue"]
    by_score = (
        res.table.set_index("id")
        .loc[["r3", "r10", "r50"], "label_issue_score"]
        .sort_values(ascending=False)
    )
    assert queue == by_score.index.tolist()
    assert "Explore" in at.session_state["review_queue_source"]


def test_cluster_from_the_url_filters_map_and_rows(scanned, workspace):
    ds, res = scanned
    big = res.clusters[res.clusters["cluster"] >= 0].iloc[0]
    at = _page(workspace, ds)
    at.query_params["cluster"] = str(int(big["cluster"]))
    at.run()
    assert not at.exception
    assert at.session_state["explore_cluster"] == int(big["cluster"])
    assert _n_points(at) == big["size"]
    assert f"Rows in view ({big['size']:,})" in [s.value for s in at.subheader]
    assert at.query_params["cluster"] in (str(int(big["cluster"])), [str(int(big["cluster"]))])
    at.button(key="explore_select_view").click().run()
    assert len(at.session_state["selection"]) == big["size"]
    at.button(key="explore_clear_cluster").click().run()
    assert at.session_state["explore_cluster"] is None
    assert _n_points(at) == ds.n


def test_class_filter_and_colour_by_score(scanned, workspace):
    ds, res = scanned
    at = _page(workspace, ds).run()
    at.multiselect(key="explore_classes").set_value(["card"]).run()
    assert not at.exception
    assert _n_points(at) == int((ds.label_names == "card").sum())
    at.selectbox(key="explore_color").set_value("label_issue_score").run()
    assert not at.exception
    colour = _map(at)[1]["layer"][0]["encoding"]["color"]
    assert colour["type"] == "quantitative" and colour["title"] == "label_issue_score"


def test_cluster_table_lists_every_cluster(scanned, workspace):
    ds, res = scanned
    at = _page(workspace, ds).run()
    cl = at.dataframe[-1].value
    assert cl["cluster"].tolist() == res.clusters["cluster"].tolist()
    assert cl["size"].sum() == ds.n
    assert {"keywords", "purity", "representatives", "mean_issue_score"} <= set(cl.columns)


def test_map_figure_escapes_text_and_keeps_ids():
    from components.scan import build_map_figure

    table = pd.DataFrame(
        {
            "id": ["a", "b<"],
            "given_label": ["x&y", "z"],
            "cluster": [0, -1],
            "x": [0.0, 1.0],
            "y": [1.0, 0.0],
            "score": [0.1, 0.9],
        }
    )
    texts = pd.Series(["<script>alert(1)</script>", "long " * 100])
    fig = build_map_figure(table, texts, color_by="given label")
    assert len(fig.data) == 1 and fig.data[0].type == "scattergl"
    custom = fig.data[0].customdata
    assert [c[0] for c in custom] == ["a", "b<"]  # raw id: the selection reads it back
    assert "<script>" not in custom[0][3] and "&lt;script&gt;" in custom[0][3]
    assert custom[0][1] == "x&amp;y" and custom[1][5] == "b&lt;"
    assert "customdata[0]" not in fig.data[0].hovertemplate  # the raw id is never rendered
    assert len(custom[1][3]) <= 160 and custom[1][3].endswith("…")
    numeric = build_map_figure(table, texts, color_by="score")
    assert list(numeric.data[0].marker.color) == [0.1, 0.9]


def test_changing_scan_settings_offers_a_new_scan_reusing_the_map(scanned, workspace, fakes):  # noqa: F811
    ds, res = scanned
    at = _page(workspace, ds).run()
    at.selectbox(key="explore_method").set_value("kmeans").run()
    assert any("has not been scanned" in i.value for i in at.info)
    at.number_input(key="require_scan_k").set_value(4).run()
    umap_calls = fakes.umap
    at.button(key="run_scan").click().run()
    assert not at.exception
    assert fakes.umap == umap_calls  # same texts and seed: the map is reused
    assert at.session_state["scan_options"] == {
        "cluster_method": "kmeans",
        "n_clusters": 4,
        "seed": 0,
    }
    assert at.dataframe[-1].value["cluster"].tolist() == [0, 1, 2, 3]


def test_search_rings_matches_on_the_map_and_fills_the_table(scanned, workspace):
    # What users of Spotlight / Argilla expect: text search that highlights points, filters that
    # drive the map and the table together, and a legend for the colours.
    ds, res = scanned
    at = _page(workspace, ds).run()
    word = ds.texts[0].split()[0]
    expected = {i for i, t in zip(ds.ids, ds.texts, strict=True) if word.lower() in t.lower()}
    at.text_input(key="explore_search").set_value(word).run()
    assert not at.exception
    data, spec = _map(at)
    assert len(spec["layer"]) == 2 and spec["layer"][1]["transform"] == [{"filter": "datum.match"}]
    assert set(data.loc[data["match"], "id"]) == expected
    shown = next(d.value for d in at.dataframe if "text" in d.value.columns)
    assert set(shown["id"]) == expected
    assert any(f"{len(expected):,} rows contain" in c.value for c in at.caption)
    legend = next(d.value for d in at.dataframe if "category" in d.value.columns)
    assert set(legend["category"]) == set(ds.classes) and legend["rows"].sum() == ds.n


def test_the_map_data_is_sent_compact_with_the_same_values(scanned, workspace):
    """The Vega-Lite map's data as the browser gets it (Arrow): float32 coordinates, class names as
    a dictionary (each name once), the tooltip text cut to MAP_TOOLTIP_CHARS, and the same values
    the table holds; colouring by a score keeps it numeric; no search, no "match" column."""
    import pyarrow as pa

    from labelaudit.plots import MAP_TOOLTIP_CHARS

    ds, res = scanned
    at = _page(workspace, ds).run()
    proto = at.get("vega_lite_chart")[0].proto
    arrow = pa.ipc.open_stream(proto.data.data).read_all()
    assert arrow.schema.field("x").type == pa.float32()
    assert pa.types.is_dictionary(arrow.schema.field("label").type)
    data = arrow.to_pandas()
    assert "match" not in data
    table = res.table.set_index(res.table["id"].astype(str))
    assert data["label"].astype(str).tolist() == table.loc[data["id"], "given_label"].tolist()
    np.testing.assert_allclose(data["x"], table.loc[data["id"], "x"], rtol=1e-6)
    texts = dict(zip(ds.frame["id"].astype(str), ds.frame["text"], strict=True))
    assert all(len(t) <= MAP_TOOLTIP_CHARS for t in data["text"])
    assert all(
        texts[i].startswith(t.rstrip("…")) for i, t in zip(data["id"], data["text"], strict=True)
    )

    at.selectbox(key="explore_color").set_value("label_issue_score").run()
    assert not at.exception
    data, spec = _map(at)
    assert data["colour"].dtype == np.float32
    assert spec["layer"][0]["encoding"]["color"]["type"] == "quantitative"
