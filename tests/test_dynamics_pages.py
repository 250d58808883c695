"""The Training dynamics and Influence pages, driven by AppTest with a small dataset carrying its embeddings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from labelaudit.dataset import Dataset
from labelaudit.training_view import search_rows
from labelaudit.workspace import Workspace

ROOT = Path(__file__).resolve().parents[1]


def make_dataset(n: int = 120, k: int = 3, d: int = 12, with_pairs: bool = False) -> Dataset:
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(k, d)) * 3
    y = np.arange(n) % k
    x = centers[y] + rng.normal(size=(n, d))
    y[:6] = (y[:6] + 1) % k  # a few wrong labels
    classes = [f"class_{c}" for c in range(k)]
    frame = pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(n)],
            "text": [f"<b>text</b> number {i}" for i in range(n)],
            "label": [classes[c] for c in y],
            "split": ["test" if i % 10 == 9 else "train" for i in range(n)],
        }
    )
    pairs = None
    if with_pairs:
        pairs = pd.DataFrame(
            {
                "train_id": ["r1", "r2", "r3"],
                "query_id": ["r9", "r9", "r19"],
                "score": [0.5, -0.2, 0.1],
            }
        )
    emb = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    return Dataset(frame=frame, classes=classes, embeddings=emb, pair_scores=pairs)


@pytest.fixture()
def stored(tmp_path):
    ws = Workspace(tmp_path / "ws")
    ds = make_dataset(with_pairs=True)
    return str(ws.root), ws.save_dataset(ds)


def app(page: str, stored, **state) -> AppTest:
    at = AppTest.from_file(str(ROOT / "views" / f"{page}.py"), default_timeout=120)
    at.session_state["workspace"], at.session_state["dataset_hash"] = stored
    for k, v in state.items():
        at.session_state[k] = v
    return at


def test_dynamics_page_prepares_then_draws_the_data_map(stored):
    at = app("dynamics", stored).run()
    assert not at.exception
    assert [b.label for b in at.button] == ["Prepare"]
    at.button[0].click().run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert (
        sum(
            int(metrics[r].replace(",", ""))
            for r in ("easy-to-learn", "ambiguous", "hard-to-learn")
        )
        == 108
    )
    table = at.dataframe[0].value
    assert len(table) == 108 and table["confidence"].is_monotonic_increasing
    assert not table["id"].isin([f"r{i}" for i in range(9, 120, 10)]).any(), (
        "test rows are not training rows"
    )
    # Dataset text stays plain: no markdown element carries it.
    assert all("number" not in m.value for m in at.markdown)


def test_dynamics_page_region_filter_and_trajectory(stored):
    at = app("dynamics", stored).run()
    at.button[0].click().run()
    at.multiselect(key="dynamics_regions").set_value(["hard-to-learn"]).run()
    assert not at.exception
    shown = at.dataframe[0].value
    assert (shown["region"] == "hard-to-learn").all()
    at.session_state["dynamics_row"] = "r0"
    at.run()
    assert any("r0 · given label" in t.value for t in at.text)
    # the map (Vega-Lite: no Plotly bundle on opening) and the trajectory (Plotly, on a click)
    assert len(at.get("vega_lite_chart")) == 1 and len(at.get("plotly_chart")) == 1


def test_influence_page_explains_a_row(stored):
    at = app("influence", stored).run()
    assert [b.label for b in at.button] == ["Prepare"]
    at.button[0].click().run()
    assert not at.exception
    ranking = at.dataframe[-1].value
    assert ranking["self_influence"].is_monotonic_decreasing and len(ranking) == 108
    at.text_input(key="influence_search").set_value("number 9").run()
    at.button(key="influence_use_pick").click().run()
    assert not at.exception
    assert at.session_state["influence_query"] == "r9"
    props, opps = at.dataframe[0].value, at.dataframe[1].value
    assert (props["score"] > 0).all() and (opps["score"] < 0).all()
    assert "positive = helpful" in " ".join(m.value for m in at.markdown)
    ext = at.dataframe[2].value  # imported pairs for r9
    assert ext["train_id"].tolist() == ["r1", "r2"]


def test_influence_page_tracin(stored):
    at = app("influence", stored, influence_query="r5").run()
    at.button[0].click().run()
    at.radio(key="influence_method").set_value("tracin").run()
    assert not at.exception
    assert len(at.dataframe[0].value) == 20


@pytest.mark.parametrize(
    "query, expected",
    [
        ("r7", ["r7"]),
        ("NUMBER 11", ["r11"] + [f"r{i}" for i in range(110, 120)]),
        ("r1", ["r1"]),  # an id matches exactly, not as a prefix of r10…
        ("   ", []),
        ("no such words", []),
    ],
)
def test_search_rows(query, expected):
    frame = make_dataset().frame
    assert search_rows(frame, query)["id"].tolist() == expected


def test_dynamics_page_uses_imported_logits(tmp_path):
    ds = make_dataset()
    logits = np.zeros((4, ds.n, ds.k), dtype=np.float32)
    logits[:, :, 0] = 3.0  # every row confidently class_0 at every epoch
    ds.dynamics = logits
    ws = Workspace(tmp_path / "ws")
    at = app("dynamics", (str(ws.root), ws.save_dataset(ds))).run()
    at.button[0].click().run()
    assert not at.exception
    assert any("imported (4 epochs)" in c.value for c in at.caption)
    table = at.dataframe[0].value
    assert set(table.loc[table["given_label"] == "class_0", "region"]) == {"easy-to-learn"}
    assert set(table.loc[table["given_label"] != "class_0", "region"]) == {"hard-to-learn"}
