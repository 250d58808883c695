"""The companion registry (labelaudit/io/companions/) drives the loader, the CLI, the workspace,
the Data page's uploads and the README table; a companion registered in a test shows up in all."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from labelaudit.cli import build_parser, data_kwargs
from labelaudit.io import companions as reg
from labelaudit.io import load_dataset
from labelaudit.io.folder import folder_companion_role, folder_prefixes
from tests.conftest import ROOT

DF = pd.DataFrame({"id": ["a", "b"], "text": ["x y", "z w"], "label": ["p", "q"]})


def test_the_known_companions_in_reading_order():
    names = [c.name for c in reg.all_companions()]
    assert names == ["probs", "annotations", "dynamics", "embeddings", "scores", "classes"]
    assert folder_prefixes()["influence"] == "scores"
    assert reg.companion("probs").stored == (("pred_probs", "npy"),)


def test_readme_table_is_the_registry():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert reg.readme_table() in readme


def test_every_companion_has_a_cli_flag_and_upload_types():
    validate = build_parser().parse_args(["validate", "d.csv", "--probs", "p.npy"])
    assert data_kwargs(validate)["probs"] == "p.npy"
    for c in reg.all_companions():
        assert c.upload_label and c.upload_types, c.name
        args = build_parser().parse_args(["validate", "d.csv", c.flag, "f"])
        assert getattr(args, c.name) == "f"


def test_unknown_companion_keyword_is_refused():
    with pytest.raises(TypeError, match=r"unknown companion\(s\) \['nonsense'\]"):
        load_dataset(DF, nonsense="x")


@pytest.fixture
def weights_companion():
    """A new companion registered as a module would: per-row weights, stored as row_scores."""

    @reg.register_companion(
        "weights",
        help="per-row weights, (N,) .npy",
        doc="per-row weights",
        folder_prefixes=("weights",),
        upload_label="Row weights (N)",
        upload_types=("npy",),
        stored=(),
        order=55,
    )
    def read_weights(source, ds, rep):
        w = np.load(source, allow_pickle=False) if not isinstance(source, np.ndarray) else source
        if w.shape != (ds.n,):
            rep.error(f"shape {w.shape}", f"shape ({ds.n},)", file="<weights>")
            return
        ds.row_scores = pd.DataFrame({"id": ds.ids, "weight": w})

    yield reg.companion("weights")
    reg._REGISTRY.pop("weights")


def test_a_new_companion_is_read_everywhere(weights_companion, tmp_path):
    ds = load_dataset(DF, weights=np.array([0.5, 2.0]))
    assert ds.row_scores["weight"].tolist() == [0.5, 2.0]
    DF.to_csv(tmp_path / "train.csv", index=False)
    np.save(tmp_path / "weights_v1.npy", np.array([1.0, 3.0]))
    assert folder_companion_role(tmp_path / "weights_v1.npy") == "weights"
    assert load_dataset(tmp_path).row_scores["weight"].tolist() == [1.0, 3.0]
    args = build_parser().parse_args(["validate", "d.csv", "--weights", "w.npy"])
    assert data_kwargs(args)["weights"] == "w.npy"
    assert "| `--weights` | per-row weights |" in reg.readme_table()
