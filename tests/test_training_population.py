"""One training-population rule for dynamics and influence: the datamap, forgetting and aum detectors,
the facade ``la.training_dynamics`` and the Training dynamics page's table give the same numbers for
the same row, with the same column names (issue 15)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import labelaudit as la
from labelaudit.detect import detect_label_issues
from labelaudit.dynamics import DEFAULT_EPOCHS, forgetting_score, training_population
from labelaudit.training_view import DYNAMICS_COLUMNS, dynamics_view, prepare
from labelaudit.workspace import Workspace
from tests.test_public_api import _clustered


@pytest.fixture(scope="module")
def three_ways(tmp_path_factory):
    ds, emb, _ = _clustered(n_per_class=30, flip=6, test_rows=20)
    ds.embeddings = emb  # the page reads the dataset's own embeddings: no model download
    ws = Workspace(tmp_path_factory.mktemp("population_ws"))
    det = detect_label_issues(ds, emb, workspace=ws, detectors=["datamap", "forgetting", "aum"])
    facade = la.training_dynamics(ds, embeddings=emb, workspace=ws)
    prepare(ds, ws, influence=False)
    view = dynamics_view(ds, ws)
    assert view is not None
    return ds, det, facade, view


def test_the_rule_is_every_row_outside_the_test_split(three_ways):
    ds, _, facade, view = three_ways
    train = training_population(ds)
    assert 0 < (~train).sum() == ds.test_mask.sum() == 20
    assert facade["in_training"].tolist() == train.tolist()
    assert view.table["id"].tolist() == ds.ids[train].tolist()
    assert view.trajectories.shape == (DEFAULT_EPOCHS, int(train.sum()))


def test_the_page_table_is_the_facade_on_the_training_rows(three_ways):
    _, _, facade, view = three_ways
    assert list(facade.columns) == list(view.table.columns) == list(DYNAMICS_COLUMNS)
    on_train = facade[facade["in_training"]].reset_index(drop=True)
    pd.testing.assert_frame_equal(view.table, on_train)


def test_the_detectors_agree_with_the_facade_row_by_row(three_ways):
    ds, det, facade, _ = three_ways
    t = det.table  # aligned with the dataset, as the facade is
    np.testing.assert_allclose(t["score_datamap"], 1 - facade["confidence"], atol=1e-12)
    expected = forgetting_score(
        facade["forgetting_events"].to_numpy(), facade["never_learned"].to_numpy(), DEFAULT_EPOCHS
    )
    np.testing.assert_allclose(t["score_forgetting"], expected)
    np.testing.assert_array_equal(det.details.detector_details["aum"].aum, facade["aum"])
    train = facade["in_training"].to_numpy()
    assert np.isnan(facade.loc[~train, "aum"]).all() and not facade.loc[~train, "aum_flag"].any()
    assert (t["score_aum"].to_numpy()[~train] == 0).all()
    # the region in the datamap evidence is the page's region, held-out rows included
    evidence = det.details.evidence["datamap"]
    for i, region in enumerate(facade["region"]):
        assert evidence[i].endswith(f"({region})"), (i, evidence[i], region)
    regions = det.details.detector_details["datamap"].regions
    assert regions == facade["region"].value_counts().to_dict()


def test_the_ambiguous_cut_is_taken_over_the_training_rows(three_ways):
    _, _, facade, _ = three_ways
    train = facade[facade["in_training"]]
    cut = np.quantile(train["variability"], 2 / 3)
    ambiguous = facade["region"] == "ambiguous"
    assert ambiguous.any()
    assert (facade.loc[ambiguous, "variability"] >= cut).all()
    assert (facade.loc[~ambiguous, "variability"] < cut).all()
