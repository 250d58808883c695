"""Label-issue detectors: one contract for all, correctness on planted flips, no leakage, awkward inputs."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from labelaudit.dataset import Dataset
from labelaudit.detect import detect_label_issues
from labelaudit.detectors import registry
from labelaudit.detectors.base import DetectionContext, DetectorResult
from labelaudit.detectors.ensemble import combine, min_flags_for, rank_average
from labelaudit.detectors.incv import noise_rate_from_accuracy
from labelaudit.detectors.oof import SmallClassWarning, out_of_fold_probs
from labelaudit.errors import DataError, UsageError
from labelaudit.neighbours import nearest_neighbours, neighbour_graph, normalise_rows

#: Detectors whose scores are a pure function of each row's data (no random splits).
PERMUTATION_EXACT = {"self_confidence", "confident_learning", "knn", "near_duplicates"}


def blobs(
    n: int = 240, k: int = 3, d: int = 16, n_flips: int = 20, seed: int = 0, spread: float = 3.0
):
    """Separable gaussian blobs with ``n_flips`` labels moved to the next class. Returns X, noisy y, flipped rows."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(k, d)) * spread
    y = np.arange(n) % k
    x = (centers[y] + rng.normal(size=(n, d))).astype(np.float32)
    flips = np.sort(rng.choice(n, n_flips, replace=False))
    noisy = y.copy()
    noisy[flips] = (y[flips] + 1) % k
    return x, noisy, flips


def make_dataset(
    labels: np.ndarray, k: int, texts: list[str] | None = None, pred_probs=None
) -> Dataset:
    n = len(labels)
    classes = [f"class_{c}" for c in range(k)]
    frame = pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(n)],
            "text": texts or [f"text number {i}" for i in range(n)],
            "label": [classes[c] for c in labels],
            "split": "",
        }
    )
    return Dataset(frame=frame, classes=classes, pred_probs=pred_probs)


@pytest.fixture(scope="module")
def contract_context() -> DetectionContext:
    x, y, _ = blobs()
    probs, _ = out_of_fold_probs(x, y, n_classes=3, seed=0)
    rng = np.random.default_rng(1)
    dynamics = np.stack(
        [np.log(probs + 1e-3) * (e + 1) / 4 + rng.normal(0, 0.1, probs.shape) for e in range(4)]
    ).astype(np.float32)
    texts = [f"text {i}" for i in range(len(y))]
    texts[7] = texts[8]  # one exact duplicate pair
    return DetectionContext(
        labels=y,
        n_classes=3,
        embeddings=normalise_rows(x),
        pred_probs=probs,
        texts=texts,
        dynamics=dynamics,
        seed=0,
        ids=np.array([f"r{i}" for i in range(len(y))], dtype=object),
        classes=["a", "b", "c"],
    )


def _run(name: str, ctx: DetectionContext) -> DetectorResult:
    spec = registry.all_detectors()[name]
    missing = [r for r in spec.requires if getattr(ctx, r) is None]
    # Every detector is held to the contract: a fixture without its inputs is a test bug, not a skip.
    assert not missing, f"the contract fixture lacks {missing}, which {name} needs: add them"
    return spec.fn(ctx)


def _permuted(ctx: DetectionContext, perm: np.ndarray) -> DetectionContext:
    return DetectionContext(
        labels=ctx.labels[perm],
        n_classes=ctx.n_classes,
        embeddings=ctx.embeddings[perm],
        pred_probs=ctx.pred_probs[perm],
        texts=[ctx.texts[i] for i in perm],
        dynamics=ctx.dynamics[:, perm],
        seed=ctx.seed,
        ids=ctx.ids[perm],
        classes=ctx.classes,
    )


@pytest.mark.parametrize("name", sorted(registry.all_detectors()))
def test_detector_contract(name, contract_context):
    ctx = contract_context
    r = _run(name, replace(ctx, neighbour_graph=None))
    assert isinstance(r, DetectorResult) and r.name == name
    for arr in (r.score, r.is_issue, r.suggested_label, r.suggested_prob, r.evidence):
        assert len(arr) == ctx.n
    assert r.score.min() >= 0 and r.score.max() <= 1 and np.isfinite(r.score).all()
    assert ((r.suggested_label >= 0) & (r.suggested_label < ctx.n_classes)).all()
    assert ((r.suggested_prob >= 0) & (r.suggested_prob <= 1)).all()
    assert all(isinstance(e, str) for e in r.evidence)
    # Determinism under a seed.
    again = _run(name, replace(ctx, neighbour_graph=None))
    np.testing.assert_array_equal(r.score, again.score)
    np.testing.assert_array_equal(r.is_issue, again.is_issue)
    # Shuffling the rows shuffles the scores (exactly where nothing random is involved).
    perm = np.random.default_rng(3).permutation(ctx.n)
    shuffled = _run(name, _permuted(ctx, perm))
    if name in PERMUTATION_EXACT:
        np.testing.assert_allclose(shuffled.score, r.score[perm], atol=1e-6)  # float32 sums
        np.testing.assert_array_equal(shuffled.is_issue, r.is_issue[perm])
    else:
        # Random splits or training order: the most suspicious rows must still mostly agree.
        top = 20  # the fixture's number of planted flips
        before = set(perm.argsort()[np.argsort(-r.score, kind="stable")[:top]].tolist())
        after = set(np.argsort(-shuffled.score, kind="stable")[:top].tolist())
        assert len(before & after) >= top // 2, f"top-{top} overlap {len(before & after)}"


@pytest.mark.parametrize("name", ["self_confidence", "confident_learning", "knn", "incv"])
def test_detector_finds_planted_flips(name):
    x, y, flips = blobs(n=300, n_flips=24, seed=2)
    x = normalise_rows(x)  # as detect_label_issues does
    probs, _ = out_of_fold_probs(x, y, n_classes=3, seed=0)
    ctx = DetectionContext(
        labels=y, n_classes=3, embeddings=normalise_rows(x), pred_probs=probs, seed=0
    )
    r = registry.all_detectors()[name].fn(ctx)
    top = np.argsort(-r.score, kind="stable")[: len(flips)]
    assert np.isin(top, flips).mean() >= 0.85, "precision at the number of flips"
    truth = np.zeros(len(y), bool)
    truth[flips] = True
    assert r.is_issue[truth].mean() >= 0.8, "recall of the flag"
    assert (r.is_issue & ~truth).sum() <= 6, "few false flags on separable data"
    # The suggestion is the true class for most flipped rows.
    assert (r.suggested_label[flips] == (y[flips] - 1) % 3).mean() >= 0.8


def test_near_duplicates_flags_conflicting_copies_and_names_partners():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(120, 32))  # unrelated directions: no accidental near duplicates
    y = np.arange(120) % 3
    texts = [f"distinct text {i}" for i in range(len(y))]
    texts[10], texts[11] = "Card got declined ", "card got   DECLINED"  # exact after normalising
    y[10], y[11] = 0, 1
    x[20] = x[21] * 1.0001  # near duplicates in embedding space
    y[20], y[21], y[22] = 2, 0, 0
    x[22] = x[21]
    ids = np.array([f"id{i}" for i in range(len(y))], dtype=object)
    ctx = DetectionContext(
        labels=y,
        n_classes=3,
        embeddings=normalise_rows(x),
        texts=texts,
        ids=ids,
        classes=["a", "b", "c"],
    )
    r = registry.all_detectors()["near_duplicates"].fn(ctx)
    assert set(np.flatnonzero(r.is_issue)) == {10, 11, 20}
    assert "id11" in r.evidence[10] and "id10" in r.evidence[11]
    assert "id21" in r.evidence[20] and "'a'" in r.evidence[20]
    assert r.suggested_label[20] == 0 and r.score[20] == 1.0 and r.score[21] == 0.5
    assert [10, 11] in r.details["conflicting_groups"] and [20, 21, 22] in r.details[
        "conflicting_groups"
    ]


def test_neighbour_graph_matches_sklearn():
    from sklearn.neighbors import NearestNeighbors

    x = np.random.default_rng(0).normal(size=(300, 8)).astype(np.float32)
    rows, sims = neighbour_graph(x, k=5)
    nn = NearestNeighbors(n_neighbors=6, metric="cosine").fit(x)
    dist, idx = nn.kneighbors(x)
    np.testing.assert_array_equal(rows, idx[:, 1:])
    np.testing.assert_allclose(sims, 1 - dist[:, 1:], atol=1e-5)
    one, one_sims = nearest_neighbours(x, 17, k=5)
    np.testing.assert_array_equal(one, rows[17])


def test_the_neighbour_graph_is_built_once_per_detection_and_a_given_one_is_used(monkeypatch):
    import labelaudit.neighbours as nb

    calls = []
    real = nb.build_neighbour_graph

    def counting(embeddings, *, k):
        calls.append(k)
        return real(embeddings, k=k)

    monkeypatch.setattr(nb, "build_neighbour_graph", counting)
    x, y, _ = blobs(n=150, n_flips=10, seed=8)
    detect_label_issues(make_dataset(y, 3), x, detectors=["knn", "near_duplicates"])
    assert calls == [10]  # knn and near_duplicates share one graph
    # A graph handed in (e.g. shared with the map) is read, not rebuilt.
    calls.clear()
    given = real(normalise_rows(x), k=12)
    ctx = DetectionContext(
        labels=y, n_classes=3, embeddings=normalise_rows(x), neighbour_graph=given
    )
    r = registry.all_detectors()["knn"].fn(ctx)
    assert calls == [] and ctx.neighbour_graph is given and r.details["k"] == 10
    assert ctx.neighbours(5).k == 5
    np.testing.assert_array_equal(ctx.neighbours(12).indices, given.indices)
    assert calls == []


def test_rank_average_and_issue_rule():
    def result(name, score, flags):
        n = len(score)
        return DetectorResult(name, score, flags, np.zeros(n, int), np.zeros(n), [""] * n)

    a = result("a", [0.1, 0.2, 0.9, 0.5], [False, False, True, True])
    b = result("b", [0.0, 0.7, 0.8, 0.1], [False, True, True, False])
    c = result("c", [0.3, 0.1, 0.2, 0.9], [False, False, True, False])
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.3, 0.5], [0.4, 0.4, 0.2]])
    e = combine({"a": a, "b": b, "c": c}, pred_probs=probs)
    np.testing.assert_allclose(e.score, rank_average({"a": a, "b": b, "c": c}))
    assert e.score.argmax() == 2 and e.score.min() >= 0 and e.score.max() <= 1
    assert e.n_flags.tolist() == [0, 1, 3, 1]
    assert e.is_issue.tolist() == [False, False, True, False]  # two agreeing detectors needed
    assert combine({"a": a}, pred_probs=probs).is_issue.tolist() == [False, False, True, True]
    assert e.suggested_label.tolist() == [0, 1, 2, 0] and e.top_labels.shape == (4, 3)
    # A replaceable combiner: maximum instead of the rank average.
    e_max = combine(
        {"a": a, "b": b},
        pred_probs=probs,
        combiner=lambda rs: np.max([r.score for r in rs.values()], axis=0),
    )
    np.testing.assert_allclose(e_max.score, [0.1, 0.7, 0.9, 0.5])


@pytest.mark.parametrize(
    "n_detectors, needed", [(1, 1), (2, 2), (3, 2), (4, 2), (5, 3), (9, 5), (10, 5)]
)
def test_needs_review_takes_half_the_detectors_and_at_least_two(n_detectors, needed):
    n = 4
    results = {
        f"d{i}": DetectorResult(
            f"d{i}",
            np.linspace(0, 1, n),
            np.arange(n) < (i % n) + 1,
            np.zeros(n, int),
            np.zeros(n),
            [""] * n,
        )
        for i in range(n_detectors)
    }
    e = combine(results, pred_probs=np.full((n, 2), 0.5))
    assert min_flags_for(n_detectors) == needed
    np.testing.assert_array_equal(e.is_issue, e.n_flags >= needed)


def test_noise_rate_inverts_the_symmetric_noise_relation():
    for k in (2, 5, 77):
        for e in (0.0, 0.05, 0.2, 0.4):
            acc = (1 - e) ** 2 + e**2 / (k - 1)
            assert noise_rate_from_accuracy(acc, k) == pytest.approx(e, abs=1e-9)


# ----------------------------------------------------------------------------- detect_label_issues
def test_detect_label_issues_end_to_end(workspace):
    x, y, flips = blobs(n=300, n_flips=24, seed=5)
    texts = [f"text {i}" for i in range(len(y))]
    ds = make_dataset(y, 3, texts)
    det = detect_label_issues(ds, x, workspace=workspace, seed=0)
    t = det.table
    expected = {
        "label_issue_score",
        "is_label_issue",
        "suggested_label",
        "suggested_label_prob",
        "n_flags",
    }
    assert expected <= set(t.columns) and len(t) == ds.n
    assert {f"score_{n}" for n in det.details["detectors"]} <= set(t.columns)
    assert {"self_confidence", "confident_learning", "knn", "incv", "near_duplicates"} <= set(
        det.details["detectors"]
    )
    assert t["label_issue_score"].between(0, 1).all()
    assert set(t["suggested_label"]) <= set(ds.classes)
    assert det.details["probs_source"] == "out-of-fold" and 0.8 < det.details["oof_accuracy"] <= 1
    assert np.asarray(det.details["noise_matrix"]).shape == (3, 3)
    assert np.asarray(det.details["top3_labels"]).shape == (ds.n, 3)
    top = np.argsort(-t["label_issue_score"].to_numpy())[: len(flips)]
    assert np.isin(top, flips).mean() >= 0.85
    flagged = np.flatnonzero(t["is_label_issue"].to_numpy())
    assert np.isin(flagged, flips).mean() >= 0.8 and np.isin(flips, flagged).mean() >= 0.8
    assert sum(det.details["issues_per_class"].values()) == len(flagged)
    # Cached: a second run reads the out-of-fold probabilities from the workspace.
    import labelaudit.detectors.oof as oof

    def boom(*a, **k):
        raise AssertionError("recomputed")

    orig = oof.out_of_fold_probs
    oof.out_of_fold_probs = boom
    try:
        again = detect_label_issues(ds, x, workspace=workspace, seed=0)
    finally:
        oof.out_of_fold_probs = orig
    np.testing.assert_allclose(again.pred_probs, det.pred_probs)


def test_a_workspace_given_as_a_folder_path_caches_like_a_workspace(tmp_path, monkeypatch):
    # detect_label_issues(workspace="a/folder") used to reach the out-of-fold cache as a str and fail.
    x, y, _ = blobs(n=150, n_flips=10, seed=7)
    ds = make_dataset(y, 3)
    det = detect_label_issues(ds, x, workspace=str(tmp_path / "ws"), detectors=["self_confidence"])
    import labelaudit.detectors.oof as oof

    def boom(*a, **k):
        raise AssertionError("recomputed")

    monkeypatch.setattr(oof, "out_of_fold_probs", boom)
    again = detect_label_issues(ds, x, workspace=tmp_path / "ws", detectors=["self_confidence"])
    np.testing.assert_allclose(again.pred_probs, det.pred_probs)


def test_given_probabilities_are_used_and_reported():
    x, y, _ = blobs(n=150, n_flips=10, seed=6)
    given = np.full((150, 3), 0.1)
    given[np.arange(150), (y + 1) % 3] = 0.8  # a model that disagrees with every label
    det = detect_label_issues(make_dataset(y, 3, pred_probs=given), x)
    assert det.details["probs_source"] == "given" and det.details["oof_accuracy"] is None
    np.testing.assert_allclose(det.pred_probs, given)
    assert det.details["pred_accuracy"] == 0.0


def test_no_in_sample_predictions_reach_the_detectors(monkeypatch):
    """Random labels on high-dimensional noise: a model scored in-sample memorises the labels (high
    probability on the given label); out-of-fold it cannot do better than chance. Fails on leakage."""
    rng = np.random.default_rng(0)
    n, k, d = 240, 3, 300
    x = rng.normal(size=(n, d)).astype(np.float32)
    y = rng.integers(0, k, n)
    seen = {}

    def spy(ctx):
        seen["probs"] = ctx.pred_probs.copy()
        return registry.all_detectors()["self_confidence"].fn(ctx)

    monkeypatch.setitem(
        registry._REGISTRY, "spy", registry.DetectorSpec("spy", spy, ("pred_probs",), "", 0)
    )
    det = detect_label_issues(make_dataset(y, k), x, detectors=["spy"])
    given_prob = seen["probs"][np.arange(n), y]
    assert given_prob.mean() < 0.5, (
        f"detectors saw in-sample probabilities (mean p(given) {given_prob.mean():.2f})"
    )
    np.testing.assert_array_equal(seen["probs"], det.pred_probs)
    # The check has teeth: the same model scored in-sample is far above chance.
    from sklearn.linear_model import LogisticRegression

    in_sample = LogisticRegression(C=10.0, max_iter=300).fit(x, y).predict_proba(x)[np.arange(n), y]
    assert in_sample.mean() > 0.9


# ----------------------------------------------------------------------------- awkward inputs
def test_two_classes():
    x, y, flips = blobs(n=120, k=2, n_flips=8, seed=7)
    det = detect_label_issues(make_dataset(y, 2), x)
    assert np.isin(np.argsort(-det.table["label_issue_score"].to_numpy())[:8], flips).mean() >= 0.75


def test_classes_smaller_than_folds_use_fewer_folds():
    x, y, _ = blobs(n=120, k=3, n_flips=0, seed=8)
    keep = np.ones(len(y), bool)
    keep[np.flatnonzero(y == 2)[3:]] = False  # class 2 keeps 3 rows
    with pytest.warns(SmallClassWarning, match="using 3 folds"):
        probs, acc = out_of_fold_probs(x[keep], y[keep], n_classes=3, n_splits=5)
    assert probs.shape == (keep.sum(), 3) and np.allclose(probs.sum(axis=1), 1)
    det = detect_label_issues(make_dataset(y[keep], 3), x[keep])
    assert any("using 3 folds" in w for w in det.details["warnings"])


def test_single_row_class_gets_the_prior():
    x, y, _ = blobs(n=61, k=3, n_flips=0, seed=9)
    y[:] = np.arange(61) % 2
    y[60] = 2
    with pytest.warns(SmallClassWarning, match="single row"):
        probs, _ = out_of_fold_probs(x, y, n_classes=3)
    np.testing.assert_allclose(probs[60], np.bincount(y, minlength=3) / 61)
    assert (probs[:60, 2] == 0).all()


@pytest.mark.parametrize(
    "labels, match",
    [
        (np.zeros(20, int), "same label"),
        (np.array([0] * 19 + [1]), "fewer than two classes"),
    ],
)
def test_unusable_labels_give_a_clear_error(labels, match):
    x = np.random.default_rng(0).normal(size=(len(labels), 4))
    with pytest.raises(DataError, match=match):
        detect_label_issues(make_dataset(labels, 2), x)


def test_unknown_detector_and_wrong_shape_are_usage_errors():
    x, y, _ = blobs(n=60, n_flips=0)
    with pytest.raises(UsageError, match="unknown detector"):
        detect_label_issues(make_dataset(y, 3), x, detectors=["nope"])
    with pytest.raises(UsageError, match="rows"):
        detect_label_issues(make_dataset(y, 3), x[:10])


# ----------------------------------------------------------------------------- properties
@settings(max_examples=40, deadline=None)
@given(
    scores=arrays(
        np.float64,
        st.tuples(st.integers(1, 4), st.integers(2, 30)),
        elements=st.floats(0, 1, allow_nan=False),
    )
)
def test_rank_average_is_in_range_and_follows_a_lone_detector(scores):
    results = {
        f"d{i}": DetectorResult(
            f"d{i}", s, s > 0.5, np.zeros(len(s), int), np.zeros(len(s)), [""] * len(s)
        )
        for i, s in enumerate(scores)
    }
    combined = rank_average(results)
    assert combined.shape == (scores.shape[1],) and combined.min() >= 0 and combined.max() <= 1
    lone = rank_average({"d0": results["d0"]})
    order = np.argsort(scores[0], kind="stable")
    assert np.all(np.diff(lone[order]) >= -1e-12)  # monotone in the detector's own score
