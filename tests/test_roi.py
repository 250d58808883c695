"""ROI arithmetic on small fixtures with hand-computed answers; before/after retraining; projection."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from labelaudit import roi
from labelaudit.dataset import Dataset
from labelaudit.review.store import ReviewStore
from labelaudit.simulate_review import simulated_clock

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def make_dataset(
    labels: list[str], splits: list[str] | None = None, classes: list[str] | None = None
) -> Dataset:
    n = len(labels)
    frame = pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(n)],
            "text": [f"text {i}" for i in range(n)],
            "label": labels,
            "split": splits or [""] * n,
        }
    )
    return Dataset(frame=frame, classes=classes or sorted(set(labels)))


@pytest.fixture
def store(tmp_path):
    s = ReviewStore(f"sqlite:///{tmp_path / 'review.sqlite'}")
    yield s
    s.close()


def record_at(store, seconds: float, **kw):
    return store.with_clock(simulated_clock([T0 + timedelta(seconds=seconds)])).record(**kw)


@pytest.fixture
def reviewed(store):
    """Seven rows decided by one reviewer; the answers below are computed by hand.

    row given decision          flagged  t (s)
    r0  a     accept -> b       yes      0
    r1  a     change -> c       yes      20
    r2  b     keep              yes      50
    r3  c     ambiguous         yes      60
    r4  a     remove            no       100
    r5  b     keep, then undo   no       110, 115   (undecided again)
    r6  b     change -> a       no       2000       (after a 31-minute break)
    """
    ds = make_dataset(["a", "a", "b", "c", "a", "b", "b", "c"])
    h = ds.content_hash
    common = dict(dataset_version=h, reviewer="ana")
    record_at(store, 0, item_id="r0", action="accept", old_label="a", new_label="b", **common)
    record_at(store, 20, item_id="r1", action="change", old_label="a", new_label="c", **common)
    record_at(store, 50, item_id="r2", action="keep", old_label="b", new_label=None, **common)
    record_at(store, 60, item_id="r3", action="ambiguous", old_label="c", new_label=None, **common)
    record_at(store, 100, item_id="r4", action="remove", old_label="a", new_label=None, **common)
    d = record_at(store, 110, item_id="r5", action="keep", old_label="b", new_label=None, **common)
    store.with_clock(simulated_clock([T0 + timedelta(seconds=115)])).undo(
        dataset_version=h, item_id="r5", reviewer="ana", seen_decision_id=d.id
    )
    record_at(store, 2000, item_id="r6", action="change", old_label="b", new_label="a", **common)
    scan_table = pd.DataFrame(
        {
            "id": ds.frame["id"],
            "is_label_issue": [True, True, True, True, False, False, False, False],
        }
    )
    details = {
        "flags": {
            "d1": [True, False, True, False, False, False, False, False],
            "d2": [False, True, False, False, False, False, True, False],
        }
    }
    return ds, store.log(h), scan_table, details


def test_effective_decisions_match_the_store(store, reviewed):
    ds, log, _, _ = reviewed
    dec = roi.effective_decisions(log)
    cur = store.current(ds.content_hash)
    assert (
        dec["item_id"].tolist() == cur["item_id"].tolist() == ["r0", "r1", "r2", "r3", "r4", "r6"]
    )
    assert dec["action"].tolist() == cur["action"].tolist()
    assert dec["final_label"].tolist() == ["b", "c", "b", "c", None, "a"]
    assert dec["review_order"].tolist() == list(range(6))


def test_review_summary_by_hand(reviewed):
    ds, log, scan_table, details = reviewed
    s = roi.summarise_review(ds, log, scan_table=scan_table, details=details)
    assert s.n_reviewed == 6
    assert s.counts == {"accept": 1, "change": 2, "keep": 1, "ambiguous": 1, "remove": 1}
    assert s.n_undos == 1 and s.n_log_rows == 8
    assert s.reviewers == ["ana"] and not s.simulated
    # flagged and reviewed: r0 accept, r1 change, r2 keep, r3 ambiguous -> 2 of 4 changed
    row = s.precision.iloc[0]
    assert (row["reviewed"], row["precision"], row["problem_rate"]) == (4, 0.5, 0.75)
    assert row["precision_low"] < 0.5 < row["precision_high"]
    # unflagged: r4 remove, r6 change -> 1 of 2 changed
    assert s.precision_unflagged.iloc[0]["precision"] == 0.5
    by_class = s.by_class.set_index("group")["precision"].to_dict()
    assert by_class == {"a": 1.0, "b": 0.0, "c": 0.0}
    by_det = s.by_detector.set_index("group")[["reviewed", "precision"]]
    assert by_det.loc["d1"].tolist() == [2, 0.5]  # r0 accept, r2 keep
    assert by_det.loc["d2"].tolist() == [2, 1.0]  # r1 change, r6 change
    # gaps 20, 30, 10, 40, 10, 5 (undo included) and a 1885 s break: median 15 s
    assert s.time.median_seconds == 15.0
    assert s.time.active_seconds == 115.0 and s.time.n_gaps == 6 and s.time.n_breaks == 1


def test_flags_stored_with_the_decision_win_over_the_scan(store):
    ds = make_dataset(["a", "b", "a"])
    record_at(
        store,
        0,
        dataset_version=ds.content_hash,
        item_id="r0",
        reviewer="ana",
        action="keep",
        old_label="a",
        new_label=None,
        shown={"is_label_issue": True},
    )
    dec = roi.effective_decisions(store.log(ds.content_hash))
    scan_table = pd.DataFrame({"is_label_issue": [False, False, False]})
    assert roi.flagged_at_decision(ds, dec, scan_table).tolist() == [True]


@pytest.mark.parametrize(
    ("gaps", "cutoff", "median", "breaks"),
    [
        ([10, 20, 30], 600, 20.0, 0),
        ([10, 20, 3000], 600, 15.0, 1),
        ([700, 800], 600, math.nan, 2),
        ([5, 700], 1000, 352.5, 0),
    ],
)
def test_reviewer_time_table(gaps, cutoff, median, breaks):
    t = T0 + pd.to_timedelta(np.concatenate([[0], np.cumsum(gaps)]), unit="s")
    log = pd.DataFrame(
        {"reviewer": "ana", "decided_at": t, "shown": "{}", "decision_id": range(len(t))}
    )
    rt = roi.reviewer_time(log, break_seconds=cutoff)
    assert (math.isnan(median) and math.isnan(rt.median_seconds)) or rt.median_seconds == median
    assert rt.n_breaks == breaks


def test_reviewer_time_per_reviewer_and_without_bulk():
    times = T0 + pd.to_timedelta([0, 5, 10, 40, 41, 42], unit="s")
    log = pd.DataFrame(
        {
            "reviewer": ["ana", "bo", "ana", "bo", "ana", "ana"],
            "decided_at": times,
            "shown": ["{}", "{}", "{}", "{}", '{"bulk": true}', '{"bulk": true}'],
            "decision_id": range(6),
        }
    )
    rt = roi.reviewer_time(log)
    assert rt.n_gaps == 2 and rt.median_seconds == 22.5  # ana 0->10, bo 5->40; bulk rows left out


def test_one_reviewer_whatever_the_spelling():
    # "Ana" and " ana" are one person (identity.name_key), as on the Review page's audit log:
    # one reviewer in the summary, and her gaps measured across both spellings.
    times = T0 + pd.to_timedelta([0, 10, 20], unit="s")
    log = pd.DataFrame(
        {
            "reviewer": ["Ana", " ana", "ANA"],
            "decided_at": times,
            "shown": "{}",
            "decision_id": range(3),
        }
    )
    rt = roi.reviewer_time(log)
    assert rt.n_gaps == 2 and rt.median_seconds == 10.0
    assert roi._distinct_reviewers(pd.Series(["Ana", "bo", " ana", "ANA", "Bo"])) == ["Ana", "bo"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_macro_f1_matches_sklearn(seed):
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 6, size=200)
    pred = np.where(
        rng.random(200) < 0.7, truth, rng.integers(0, 7, size=200)
    )  # class 6 only predicted
    assert roi.macro_f1(truth, pred, 7) == pytest.approx(f1_score(truth, pred, average="macro"))


def test_paired_bootstrap_same_predictions_zero_change():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 3, 300)
    pred = np.where(rng.random(300) < 0.8, truth, (truth + 1) % 3)
    m = roi.paired_bootstrap(truth, pred, pred, n_classes=3, n_resamples=200, seed=0)
    assert (
        m["accuracy_change"].value == m["accuracy_change"].low == m["accuracy_change"].high == 0.0
    )
    acc = m["accuracy_before"]
    assert acc.low < acc.value < acc.high
    again = roi.paired_bootstrap(truth, pred, pred, n_classes=3, n_resamples=200, seed=0)
    assert again["macro_f1_before"] == m["macro_f1_before"]


def test_paired_bootstrap_detects_a_real_improvement():
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 4, 1000)
    before = np.where(rng.random(1000) < 0.7, truth, (truth + 1) % 4)
    after = np.where(rng.random(1000) < 0.5, truth, before)  # fixes about half the mistakes
    m = roi.paired_bootstrap(truth, before, after, n_classes=4, n_resamples=300, seed=0)
    assert m["accuracy_change"].low > 0.05
    assert m["macro_f1_change"].low > 0


def test_wilson_interval_known_value():
    low, high = roi.wilson_interval(8, 10)
    assert (round(low, 3), round(high, 3)) == (0.49, 0.943)
    assert all(math.isnan(v) for v in roi.wilson_interval(0, 0))


# --------------------------------------------------------------------------- before / after
def clustered(
    n_per_class: int = 60, k: int = 3, dim: int = 8, seed: int = 0, test_share: float = 0.3
):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, dim)) * 3
    y = np.repeat(np.arange(k), n_per_class)
    x = centres[y] + rng.normal(size=(len(y), dim))
    classes = [f"c{i}" for i in range(k)]
    splits = np.where(rng.random(len(y)) < test_share, "test", "train")
    ds = make_dataset([classes[i] for i in y], splits.tolist(), classes)
    return ds, x.astype(np.float32)


def test_before_after_recovers_from_planted_flips(store, workspace):
    ds_true, x = clustered()
    rng = np.random.default_rng(3)
    train_rows = np.flatnonzero(~ds_true.test_mask)
    flip = rng.choice(train_rows, size=int(0.35 * len(train_rows)), replace=False)
    noisy = ds_true.labels.copy()
    noisy[flip] = (noisy[flip] + 1) % ds_true.k
    ds = ds_true.with_labels(noisy)
    h = ds.content_hash
    for j, r in enumerate(flip):
        record_at(
            store,
            10 * j,
            dataset_version=h,
            item_id=f"r{r}",
            reviewer="ana",
            action="change",
            old_label=ds.classes[noisy[r]],
            new_label=ds.classes[ds_true.labels[r]],
        )
    log = store.log(h)
    ba = roi.before_after(ds, x, log, workspace=workspace, n_checkpoints=4, n_resamples=200)
    assert ba.n_reviewed == len(flip) and ba.n_relabelled_train == len(flip)
    assert ba.n_eval == int(ds.test_mask.sum()) and "test split" in ba.eval_source
    assert ba.metrics["accuracy_after"].value >= ba.metrics["accuracy_before"].value
    assert ba.curve["n_reviewed"].iloc[0] == 0 and ba.curve["n_reviewed"].iloc[-1] == len(flip)
    assert len(ba.curve) == 5
    assert ba.curve["accuracy"].iloc[0] == ba.metrics["accuracy_before"].value
    assert ba.curve["accuracy"].iloc[-1] == ba.metrics["accuracy_after"].value
    assert ba.change_per_100() == pytest.approx(
        ba.metrics["accuracy_change"].value / len(flip) * 100
    )
    # cached under the decisions' digest: a second call reads it back, a new decision recomputes
    stored = list((workspace.root / "artifacts" / h).glob("roi_before_after-*.json"))
    assert len(stored) == 1
    assert (
        roi.before_after(
            ds, x, log, workspace=workspace, n_checkpoints=4, n_resamples=200
        ).to_json()
        == ba.to_json()
    )
    spare = int(np.setdiff1d(train_rows, flip)[0])
    record_at(
        store,
        99999,
        dataset_version=h,
        item_id=f"r{spare}",
        reviewer="ana",
        action="remove",
        old_label=ds.frame["label"][spare],
        new_label=None,
    )
    ba2 = roi.before_after(
        ds, x, store.log(h), workspace=workspace, n_checkpoints=4, n_resamples=200
    )
    assert len(list((workspace.root / "artifacts" / h).glob("roi_before_after-*.json"))) == 2
    assert ba2.n_reviewed == len(flip) + 1 and ba2.n_removed_train == 1
    assert ba2.n_train_after == ba.n_train_after - 1


def test_reviewed_test_labels_are_the_truth_and_never_trained_on(store):
    ds, x = clustered(seed=4)
    test_row = int(np.flatnonzero(ds.test_mask)[0])
    other = ds.classes[(ds.labels[test_row] + 1) % ds.k]
    record_at(
        store,
        0,
        dataset_version=ds.content_hash,
        item_id=f"r{test_row}",
        reviewer="ana",
        action="change",
        old_label=ds.frame["label"][test_row],
        new_label=other,
    )
    ba = roi.before_after(ds, x, store.log(ds.content_hash), n_checkpoints=1, n_resamples=50)
    assert ba.n_train_before == ba.n_train_after == int((~ds.test_mask).sum())
    assert ba.n_relabelled_train == 0
    # both models score against the reviewed test label: the same truth, so the same accuracy
    assert ba.metrics["accuracy_change"].value == 0.0


def test_protected_split_is_never_changed_by_bulk_actions(store):
    """Through the review module's bulk API: test rows are skipped, so the evaluation truth and the
    held-out rows stay as they were."""
    from labelaudit.review.queue import apply_bulk

    ds, _ = clustered(seed=5)
    test_ids = ds.frame.loc[ds.test_mask, "id"].tolist()[:5]
    train_ids = ds.frame.loc[~ds.test_mask, "id"].tolist()[:5]
    res = apply_bulk(
        store,
        ds,
        item_ids=test_ids + train_ids,
        action="change",
        new_label=ds.classes[0],
        reviewer="ana",
        seen={},
    )
    assert sorted(res.skipped_test) == sorted(test_ids)
    after = roi.labels_after_review(ds, roi.effective_decisions(store.log(ds.content_hash)))
    assert (after[ds.test_mask] == ds.labels[ds.test_mask]).all()
    train_mask, eval_mask, _ = roi.evaluation_split(ds)
    assert (eval_mask == ds.test_mask).all() and (train_mask == ~ds.test_mask).all()


def test_holdout_without_test_split_is_stable_and_seeded():
    ds = make_dataset(["a", "b"] * 200)
    train, held, source = roi.evaluation_split(ds, seed=0)
    assert not (train & held).any() and (train | held).all()
    assert 0.1 < held.mean() < 0.3 and "held-out" in source
    relabelled = ds.with_labels(["a"] * 400)  # labels change, the held-out rows do not
    assert (roi.evaluation_split(relabelled, seed=0)[1] == held).all()
    assert not (roi.evaluation_split(ds, seed=1)[1] == held).all()
    sub = ds.subset(np.arange(400) % 2 == 0)  # removing rows keeps the others where they were
    assert (roi.evaluation_split(sub, seed=0)[1] == held[::2]).all()


# --------------------------------------------------------------------------- projection
def test_projection_by_hand(reviewed):
    ds, log, scan_table, details = reviewed
    s = roi.summarise_review(ds, log, scan_table=scan_table, details=details)
    est, source = roi.estimated_label_errors(
        {"confident_joint": [[50, 3, 1], [2, 40, 4], [0, 10, 30]]}, None
    )
    assert est == 20.0 and "confident" in source
    p = roi.project(s, estimated_errors=est, estimate_source=source, next_n=10, min_decisions=1)
    # 20 estimated x 0.5 confirmed - 3 fixed = 7 remaining; recent precision 3/6 -> 5 fixes in 10 reviews
    assert p.remaining_errors == 7.0
    assert p.recent_precision == 0.5 and p.expected_fixes == 5.0
    assert p.expected_hours == pytest.approx(10 * 15 / 3600)
    assert p.accuracy_gain_per_fix is None and p.expected_accuracy_gain is None
    assert any("15 s per item" in a for a in p.assumptions)
    capped = roi.project(s, estimated_errors=8.0, next_n=100, min_decisions=1)
    assert capped.remaining_errors == 1.0 and capped.expected_fixes == 1.0


def test_estimate_from_a_normalised_joint_scales_by_rows():
    joint = np.array([[0.45, 0.05], [0.02, 0.48]])  # 7% of the mass off the diagonal
    est, source = roi.estimated_label_errors({"confident_joint": joint.tolist()}, None, n_rows=1000)
    assert est == pytest.approx(70.0) and "1,000 rows" in source
    table = pd.DataFrame({"is_label_issue": [False] * 200})
    assert roi.estimated_label_errors({"confident_joint": joint}, table)[0] == pytest.approx(14.0)


def test_estimate_falls_back_to_flagged_rows():
    table = pd.DataFrame({"is_label_issue": [True, False, True]})
    assert roi.estimated_label_errors({}, table) == (2.0, "rows flagged by the detectors")
    assert roi.estimated_label_errors(None, None)[0] is None


def test_summary_of_an_empty_log():
    ds = make_dataset(["a", "b"])
    log = pd.DataFrame(
        columns=[
            "decision_id",
            "dataset_version",
            "item_id",
            "reviewer",
            "decided_at",
            "action",
            "old_label",
            "new_label",
            "comment",
            "shown",
        ]
    )
    s = roi.summarise_review(ds, log)
    assert (
        s.n_reviewed == 0 and math.isnan(s.overall_precision) and math.isnan(s.time.median_seconds)
    )
    p = roi.project(s, estimated_errors=None)
    assert p.remaining_errors is None


# --------------------------------------------------------------------------- issue 16 defects
def test_accepting_a_suggestion_equal_to_the_given_label_is_no_change(store):
    # The page said "Labels changed 1, 100% had their label changed" while the retraining said
    # "0 relabelled": an accept whose suggestion is the given label changed nothing.
    ds = make_dataset(["a", "b", "a"])
    h = ds.content_hash
    common = dict(dataset_version=h, reviewer="ana")
    record_at(store, 0, item_id="r0", action="accept", old_label="a", new_label="a", **common)
    record_at(store, 10, item_id="r1", action="accept", old_label="b", new_label="a", **common)
    s = roi.summarise_review(ds, store.log(h))
    assert s.counts["accept"] == 1 and s.counts["keep"] == 1 and s.n_relabelled == 1
    after = roi.labels_after_review(ds, s.decisions)
    assert int((after != ds.labels).sum()) == s.n_relabelled


def test_two_decisions_are_too_few_to_extrapolate(store):
    ds = make_dataset(["a", "b", "a", "b"])
    h = ds.content_hash
    common = dict(dataset_version=h, reviewer="ana")
    record_at(store, 0, item_id="r0", action="change", old_label="a", new_label="b", **common)
    record_at(store, 10, item_id="r1", action="change", old_label="b", new_label="a", **common)
    table = pd.DataFrame({"id": ds.frame["id"], "is_label_issue": [True, True, False, False]})
    s = roi.summarise_review(ds, store.log(h), scan_table=table)
    assert s.too_few_decisions and s.n_flagged_reviewed == 2
    p = roi.project(s, estimated_errors=50.0, next_n=100)
    assert p.remaining_errors is None and math.isnan(p.expected_fixes)
    assert (
        "Too few decisions" in p.assumptions[0]
        and str(roi.MIN_DECISIONS_FOR_ESTIMATES) in p.assumptions[0]
    )
