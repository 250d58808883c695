"""Training dynamics: data-map coordinates and regions, forgetting events, AUM with threshold samples,
the recorded run (determinism, caching), and the four detectors on planted flips."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from labelaudit import dynamics as dy
from labelaudit.detectors import registry
from labelaudit.detectors.base import DetectionContext


def blobs(
    n: int = 300, k: int = 3, d: int = 16, n_flips: int = 24, seed: int = 2, spread: float = 3.0
):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(k, d)) * spread
    y = np.arange(n) % k
    x = centers[y] + rng.normal(size=(n, d))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    flips = np.sort(rng.choice(n, n_flips, replace=False))
    noisy = y.copy()
    noisy[flips] = (y[flips] + 1) % k
    return x, noisy, flips, y


def logits_from_probs(p_given_per_epoch: list[float]) -> np.ndarray:
    """(E, 1, 2) logits whose class-0 probability follows ``p_given_per_epoch``."""
    p = np.asarray(p_given_per_epoch)
    return np.stack([np.log(p), np.log(1 - p)], axis=-1)[:, None, :]


@pytest.mark.parametrize(
    "probs, confidence, variability, correctness",
    [
        ([0.9, 0.9, 0.9, 0.9], 0.9, 0.0, 1.0),
        ([0.1, 0.3, 0.7, 0.9], 0.5, np.std([0.1, 0.3, 0.7, 0.9]), 0.5),
        ([0.2, 0.2, 0.2, 0.2], 0.2, 0.0, 0.0),
    ],
)
def test_data_map_coordinates(probs, confidence, variability, correctness):
    dm = dy.data_map(logits_from_probs(probs), np.array([0]))
    assert dm.loc[0, "confidence"] == pytest.approx(confidence)
    assert dm.loc[0, "variability"] == pytest.approx(variability)
    assert dm.loc[0, "correctness"] == pytest.approx(correctness)


def test_data_map_regions():
    rows = [
        [0.95] * 4,
        [0.9] * 4,
        [0.1, 0.5, 0.9, 0.4],
        [0.05] * 4,
        [0.1] * 4,
        [0.8, 0.85, 0.9, 0.95],
    ]
    logits = np.concatenate([logits_from_probs(r) for r in rows], axis=1)
    dm = dy.data_map(logits, np.zeros(len(rows), dtype=np.int64))
    assert dm["region"].tolist() == [
        "easy-to-learn",
        "easy-to-learn",
        "ambiguous",
        "hard-to-learn",
        "hard-to-learn",
        "ambiguous",
    ]


@pytest.mark.parametrize(
    "correct_per_epoch, events, never",
    [
        ([1, 1, 1, 1], 0, False),
        ([0, 1, 1, 1], 0, False),
        ([1, 0, 1, 0], 2, False),
        ([0, 1, 0, 0], 1, False),
        ([0, 0, 0, 0], 0, True),
    ],
)
def test_forgetting_events(correct_per_epoch, events, never):
    probs = [0.9 if c else 0.1 for c in correct_per_epoch]
    ev, nl = dy.forgetting_events(logits_from_probs(probs), np.array([0]))
    assert ev[0] == events and nl[0] == never
    score = dy.forgetting_score(ev, nl, len(probs))[0]
    assert score == (1.0 if never else events / len(probs))


def test_never_learned_outranks_any_forgetting_count():
    ev = np.array([0, 1, 10, 0])
    nl = np.array([False, False, False, True])
    s = dy.forgetting_score(ev, nl, 20)
    assert s.argmax() == 3 and (s <= 1).all()


def test_margins():
    z = np.array([[[3.0, 1.0, 2.0], [0.0, 5.0, 1.0]]])
    np.testing.assert_allclose(dy.margins(z, np.array([0, 0])), [[1.0, -5.0]])


def test_train_dynamics_is_seeded_and_learns():
    x, y, _, _ = blobs(n_flips=0)
    a = dy.train_dynamics(x, y, n_classes=3, epochs=5, seed=1)
    b = dy.train_dynamics(x, y, n_classes=3, epochs=5, seed=1)
    c = dy.train_dynamics(x, y, n_classes=3, epochs=5, seed=2)
    assert a.logits.shape == (5, len(y), 3) and a.checkpoints.shape == (5, 3, x.shape[1] + 1)
    np.testing.assert_array_equal(a.logits, b.logits)
    assert not np.array_equal(a.logits, c.logits)
    assert (a.logits[-1].argmax(1) == y).mean() > 0.95
    # The checkpoint reproduces the recorded logits (bias is the last column).
    np.testing.assert_allclose(
        np.hstack([x, np.ones((len(x), 1))]) @ a.checkpoints[-1].T, a.logits[-1], atol=1e-4
    )


def test_train_mask_rows_are_recorded_but_not_trained():
    x, y, _, _ = blobs(n_flips=0)
    mask = np.ones(len(y), bool)
    mask[:3] = False
    y_bad = y.copy()
    y_bad[:3] = (y[:3] + 1) % 3  # wrong labels on rows the model never trains on change nothing
    a = dy.train_dynamics(x, y, n_classes=3, epochs=3, train_mask=mask)
    b = dy.train_dynamics(x, y_bad, n_classes=3, epochs=3, train_mask=mask)
    np.testing.assert_array_equal(a.logits, b.logits)


def test_aum_threshold_samples_flag_planted_flips():
    x, y, flips, _ = blobs()
    res = dy.area_under_margin(x, y, n_classes=3, epochs=10, seed=0)
    set1, set2 = res.threshold_rows
    assert len(set1) == len(set2) == len(y) // 4 and not set(set1) & set(set2)
    assert np.isfinite(res.aum).all(), "every row gets a score from one of the two runs"
    truth = np.zeros(len(y), bool)
    truth[flips] = True
    assert res.is_mislabeled[truth].mean() >= 0.8
    assert (res.is_mislabeled & ~truth).sum() <= 10
    assert res.aum[truth].mean() < res.aum[~truth].mean()


def test_cached_dynamics_round_trips_through_the_workspace(workspace):
    x, y, _, _ = blobs(n=60)
    dy._MEMO.clear()
    first = dy.cached_dynamics(x, y, n_classes=3, workspace=workspace)
    files = sorted(p.name for p in (workspace.root / "artifacts").rglob("*.npy"))
    assert any(f.startswith("dynamics-logits") for f in files)
    dy._MEMO.clear()
    again = dy.cached_dynamics(x, y, n_classes=3, workspace=workspace)
    np.testing.assert_array_equal(first.logits, again.logits)
    np.testing.assert_array_equal(first.checkpoints, again.checkpoints)
    aum1 = dy.cached_aum(x, y, n_classes=3, workspace=workspace)
    dy._MEMO.clear()
    aum2 = dy.cached_aum(x, y, n_classes=3, workspace=workspace)
    np.testing.assert_array_equal(aum1.aum, aum2.aum)
    np.testing.assert_array_equal(aum1.is_mislabeled, aum2.is_mislabeled)


@pytest.mark.parametrize(
    "name, min_precision, min_flag_precision, min_flag_recall",
    [
        ("datamap", 0.8, 0.7, 0.8),
        ("forgetting", 0.6, 0.5, 0.5),
        ("aum", 0.8, 0.7, 0.8),
        ("self_influence", 0.6, 0.6, 0.5),
    ],
)
def test_detectors_find_planted_flips(name, min_precision, min_flag_precision, min_flag_recall):
    x, y, flips, clean = blobs()
    ctx = DetectionContext(labels=y, n_classes=3, embeddings=x, seed=0)
    r = registry.all_detectors()[name].fn(ctx)
    top = np.argsort(-r.score, kind="stable")[: len(flips)]
    assert np.isin(top, flips).mean() >= min_precision, "precision at the number of flips"
    truth = np.zeros(len(y), bool)
    truth[flips] = True
    assert truth[r.is_issue].mean() >= min_flag_precision, "precision of the flag"
    assert r.is_issue[truth].mean() >= min_flag_recall, "recall of the flag"
    assert (r.suggested_label[flips] == clean[flips]).mean() >= 0.7


def test_imported_dynamics_are_used_when_given():
    x, y, _, _ = blobs(n=60, n_flips=0)
    fake = np.zeros((3, len(y), 3), dtype=np.float32)
    fake[:, :, 0] = 4.0  # every row "confidently class 0"
    ctx = DetectionContext(labels=y, n_classes=3, embeddings=x, dynamics=fake)
    r = registry.all_detectors()["datamap"].fn(ctx)
    np.testing.assert_array_equal(r.is_issue, y != 0)
    assert (r.suggested_label == 0).all()


def test_detectors_cache_in_the_context_workspace(tmp_path):
    from labelaudit.workspace import Workspace

    x, y, _, _ = blobs(n=90)
    dy._MEMO.clear()
    ctx = DetectionContext(
        labels=y, n_classes=3, embeddings=x, workspace=Workspace(tmp_path / "ws")
    )
    for name in ("datamap", "aum", "self_influence"):
        registry.all_detectors()[name].fn(ctx)
    stored = [p.name for p in (tmp_path / "ws" / "artifacts").rglob("*.*")]
    for prefix in (
        "dynamics-logits-",
        "dynamics-checkpoints-",
        "aum-",
        "influence-head-",
        "self-influence-",
    ):
        assert any(n.startswith(prefix) for n in stored), prefix


@settings(max_examples=40, deadline=None)
@given(
    arrays(
        np.float32,
        st.tuples(st.integers(2, 6), st.integers(1, 12), st.integers(2, 5)),
        elements=st.floats(-20, 20, width=32),
    )
)
def test_data_map_and_forgetting_ranges(logits):
    e, n, k = logits.shape
    labels = np.arange(n) % k
    dm = dy.data_map(logits, labels)
    for c in ("confidence", "variability", "correctness"):
        assert ((dm[c] >= 0) & (dm[c] <= 1)).all()
    assert dm["region"].isin(dy.REGIONS).all()
    ev, nl = dy.forgetting_events(logits, labels)
    assert ((ev >= 0) & (ev <= e // 2)).all()
    s = dy.forgetting_score(ev, nl, e)
    assert ((s >= 0) & (s <= 1)).all() and (s[nl] == 1).all()


def test_training_population_leaves_out_the_protected_test_split():
    from labelaudit.dynamics import training_population
    from labelaudit.io import load_dataset

    frame = pd.DataFrame(
        {
            "text": list("abcde"),
            "label": list("xyxyx"),
            "split": ["train", "test", "", "dev", "test"],
        }
    )
    assert training_population(load_dataset(frame)).tolist() == [True, False, True, True, False]
    no_test = load_dataset(frame.assign(split="train"))
    assert training_population(no_test).tolist() == [True] * 5
