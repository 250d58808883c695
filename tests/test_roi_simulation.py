"""The seeded review simulation: flips only train rows, replays decisions from the answer key, says it is simulated."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from labelaudit import roi
from labelaudit.errors import UsageError
from labelaudit.review.store import ReviewStore
from labelaudit.simulate_review import decision_times, plant_flips, replay_review
from tests.test_roi import clustered


def test_plant_flips_is_seeded_and_never_touches_the_test_split():
    ds, x = clustered(n_per_class=80, seed=3)
    flipped, key = plant_flips(ds, x, rate=0.1, seed=0)
    changed = flipped.label_names != ds.label_names
    assert changed.sum() == len(key) == round(0.1 * (~ds.test_mask).sum())
    assert not (changed & ds.test_mask).any()
    assert (key["original_label"] != key["planted_label"]).all()
    assert key["id"].tolist() == ds.frame.loc[changed, "id"].tolist()
    again, key2 = plant_flips(ds, x, rate=0.1, seed=0)
    assert key2.equals(key) and again.content_hash == flipped.content_hash
    assert not plant_flips(ds, x, rate=0.1, seed=1)[1]["id"].equals(key["id"])
    with pytest.raises(UsageError):
        plant_flips(ds, x, rate=1.5)


def test_decision_times_are_increasing_with_breaks():
    t = pd.Series(decision_times(300, seed=0))
    gaps = t.diff().dt.total_seconds().dropna()
    assert (gaps > 0).all()
    assert 10 < gaps[gaps < 600].median() < 30
    assert (gaps > 600).sum() >= 2  # coffee breaks every 60-120 decisions


def test_replay_restores_the_answer_key(tmp_path):
    ds, x = clustered(n_per_class=60, seed=5)
    flipped, key = plant_flips(ds, x, rate=0.15, seed=0)
    # a scan table whose ranking puts the planted flips first, suggesting the original label for half of them
    score = np.zeros(flipped.n)
    is_flip = flipped.frame["id"].isin(key["id"]).to_numpy()
    score[is_flip] = 1.0
    suggested = flipped.frame["label"].to_numpy(dtype=object).copy()
    original = dict(zip(key["id"], key["original_label"], strict=True))
    for i, item in enumerate(flipped.frame["id"]):
        if item in original and i % 2 == 0:
            suggested[i] = original[item]
    table = pd.DataFrame(
        {
            "id": flipped.frame["id"],
            "label_issue_score": score,
            "is_label_issue": is_flip,
            "suggested_label": suggested,
            "suggested_label_prob": 0.9,
        }
    )
    store = ReviewStore(f"sqlite:///{tmp_path / 'r.sqlite'}")
    try:
        n_items = len(key) + 10
        counts = replay_review(
            store,
            flipped,
            key,
            table,
            n_items=n_items,
            seed=0,
            ambiguous_rate=0.0,
            remove_rate=0.0,
            mistake_rate=0.0,
        )
        assert counts.get("accept", 0) + counts.get("change", 0) == len(key)
        assert counts.get("accept", 0) > 0 and counts.get("change", 0) > 0 and counts["keep"] == 10
        log = store.log(flipped.content_hash)
        dec = roi.effective_decisions(log)
        assert roi.is_simulated(dec) and set(log["reviewer"]) == {roi.SIMULATED_REVIEWER}
        after = roi.labels_after_review(flipped, dec)
        assert (after == ds.labels).all()  # every planted flip restored, nothing else changed
        s = roi.summarise_review(flipped, log, scan_table=table)
        assert s.overall_precision == 1.0 and 10 < s.time.median_seconds < 30
        with pytest.raises(UsageError, match="already has review decisions"):
            replay_review(store, flipped, key, table, n_items=5)
    finally:
        store.close()


def test_replay_with_mistakes_undoes_them(tmp_path):
    ds, x = clustered(n_per_class=40, seed=6)
    flipped, key = plant_flips(ds, x, rate=0.2, seed=0)
    table = pd.DataFrame(
        {"id": flipped.frame["id"], "label_issue_score": 0.5, "is_label_issue": False}
    )
    store = ReviewStore(f"sqlite:///{tmp_path / 'r.sqlite'}")
    try:
        counts = replay_review(store, flipped, key, table, n_items=40, seed=0, mistake_rate=0.3)
        log = store.log(flipped.content_hash)
        assert counts["undo"] == int((log["action"] == "undo").sum()) > 0
        assert len(roi.effective_decisions(log)) == 40
        assert len(store.current(flipped.content_hash)) == 40
    finally:
        store.close()
