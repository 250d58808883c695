"""Typed results: every detector's details is a dataclass, and a stored scan reads back exactly.

``test_scan_save_load_compare_equal`` runs the real detectors on 300 rows of the bundled sample
(fake embeddings and PCA instead of the model and UMAP, so it takes seconds), stores the scan and
compares the loaded one with the fresh one field by field: types, dtypes, shapes and values.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from labelaudit import projection, typed_json
from labelaudit.detect import Detection, DetectionDetails
from labelaudit.detectors import registry
from labelaudit.detectors.base import DetectorDetails
from labelaudit.scanning import load_cached_scan, scan
from tests.test_scan import fake_vectors


def round_trip(value):
    return typed_json.decode(json.loads(json.dumps(typed_json.encode(value))))


@pytest.mark.parametrize(
    "value",
    [
        np.array([[1.0, np.nan], [np.inf, -0.0]]),
        np.array([0.1, 1 / 3], dtype=np.float32),
        np.arange(6, dtype=np.int64).reshape(2, 3),
        np.array([True, False]),
        np.array(["a", None, "ç"], dtype=object),
        np.zeros((0, 3), dtype=np.int64),
        np.float32(0.1),
        np.int64(7),
        (1, "two", [3.5]),
        {"a": [np.int16(1)], "b": {"c": None}},
        0.1 + 0.2,
    ],
)
def test_values_read_back_exactly(value):
    back = round_trip(value)
    assert typed_json.same(back, value)
    if isinstance(value, np.ndarray):
        assert back.dtype == value.dtype and back.shape == value.shape


def test_same_tells_dtypes_and_types_apart():
    assert not typed_json.same(np.array([1, 2]), np.array([1.0, 2.0]))
    assert not typed_json.same([1, 2], (1, 2))
    assert not typed_json.same(np.array([1.0, np.nan]), np.array([1.0, 2.0]))
    assert typed_json.same(np.array([1.0, np.nan]), np.array([1.0, np.nan]))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"opaque": object()}, r"value\['opaque'\]: cannot store object"),
        ({1: "x"}, "key 1 is int; keys must be str"),
        (np.array([object()], dtype=object), "only str or None"),
        ({"__ndarray__": 1}, "reserved"),
    ],
)
def test_what_cannot_be_stored_raises_instead_of_being_dropped(value, message):
    with pytest.raises(TypeError, match=message):
        typed_json.encode(value)


def test_an_unregistered_dataclass_is_refused_and_unknown_names_are_not_imported():
    @dataclasses.dataclass
    class Unregistered:
        x: int = 1

    with pytest.raises(TypeError, match="not registered"):
        typed_json.encode(Unregistered())
    with pytest.raises(ValueError, match="unknown stored type 'os.system'"):
        typed_json.decode({"__dataclass__": "os.system", "fields": {}})


def test_detection_refuses_unknown_detail_fields():
    table = pd.DataFrame({"label_issue_score": [0.5]})
    assert Detection(table=table, details={"probs_source": "given"}).details.probs_source == "given"
    with pytest.raises(TypeError, match=r"unknown field\(s\) \['opaque'\]"):
        Detection(table=table, details={"opaque": 1})


def test_details_read_by_name_like_the_dicts_they_replace():
    d = DetectionDetails(probs_source="given", flags={"knn": np.array([True])})
    assert d["probs_source"] == "given" and d.get("flags")["knn"].tolist() == [True]
    assert d.get("noise_matrix") is None and "noise_matrix" not in d
    assert d.get("top3_labels", "fallback") == "fallback"
    with pytest.raises(KeyError):
        d["no_such_field"]


@pytest.fixture
def fast_map(monkeypatch):
    """PCA instead of UMAP and hashed word vectors instead of the model: the rest is real."""
    from labelaudit import embed

    monkeypatch.setattr(
        projection,
        "umap_fit",
        lambda x, n_components, *, seed=0, n_neighbors=15, min_dist=0.1, knn=None: (
            projection.pca_reduce(x, n_components, seed=seed)
        ),
    )
    monkeypatch.setattr(
        embed,
        "embed_texts",
        lambda texts, *, model=None, batch_size=64, device=None, progress=None: fake_vectors(texts),
    )


def test_scan_save_load_compare_equal(small_dataset, workspace, fast_map):
    ds = small_dataset
    fresh = scan(ds, workspace=workspace, cluster_method="kmeans")
    assert fresh.detection is not None
    details = fresh.detection.details
    # Every default detector ran, and each reports a details dataclass of its own.
    assert set(details.detectors) == {n for n, s in registry.all_detectors().items() if s.default}
    for name, d in details.detector_details.items():
        assert isinstance(d, DetectorDetails) and dataclasses.is_dataclass(d), name
    assert details.noise_matrix is not None and details.noise_matrix.dtype == np.float64

    loaded = load_cached_scan(ds, workspace=workspace, cluster_method="kmeans")
    assert loaded is not None and loaded.detection is not None
    assert typed_json.same(loaded.detection.details, details)
    for name, d in details.detector_details.items():
        assert type(loaded.detection.details.detector_details[name]) is type(d), name
    pd.testing.assert_frame_equal(loaded.table, fresh.table)
    pd.testing.assert_frame_equal(loaded.detection.table, fresh.detection.table)
    pd.testing.assert_frame_equal(loaded.clusters, fresh.clusters)
    assert typed_json.same(loaded.detection.pred_probs, fresh.detection.pred_probs)
    assert typed_json.same(loaded.embeddings, fresh.embeddings)
