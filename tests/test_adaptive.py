"""The queue in force, against a real review store: settings, re-ranking, decided items, audit slots."""

from __future__ import annotations

import os
import uuid

import numpy as np
import pytest

from labelaudit.errors import UsageError
from labelaudit.review import adaptive, audit, learn
from labelaudit.review.store import ReviewStore
from tests.learn_data import world

PG_URL = os.environ.get("LABELAUDIT_TEST_PG_URL")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'review.sqlite'}"
    elif not PG_URL:
        pytest.skip("LABELAUDIT_TEST_PG_URL is not set (make test starts a PostgreSQL and sets it)")
    else:
        url = PG_URL
    s = ReviewStore(url)
    yield s
    s.close()


@pytest.fixture
def setup():
    ds, table, truth = world(800, seed=4)
    # a fresh dataset version per test keeps tests independent on a shared PostgreSQL
    ds.__dict__["content_hash"] = uuid.uuid4().hex[:20]
    return ds, table, truth


def decide(store, ds, truth, item_id, *, audit_item=False, queue="ranking"):
    row = ds.id_to_row[item_id]
    given = ds.label_names[row]
    wrong = bool(truth[row])
    other = next(c for c in ds.classes if c != given)
    shown = {"queue": queue}
    if audit_item:
        shown["audit"] = True
    return store.record(
        dataset_version=ds.content_hash,
        item_id=item_id,
        reviewer="ana",
        action="change" if wrong else "keep",
        old_label=given,
        new_label=other if wrong else given,
        shown=shown,
        seen_decision_id=store.latest_decision_id(ds.content_hash, item_id),
    )


def review_next(store, ds, table, truth, n, **kw):
    """Decide the next ``n`` items of the queue in force, as the Review page would (audit flags kept)."""
    for _ in range(n):
        q = adaptive.queue_in_force(store, ds, table, **kw)
        first = q.queue.iloc[0]
        decide(store, ds, truth, first["id"], audit_item=bool(first["audit"]))


# --------------------------------------------------------------------------- settings
def test_settings_are_stored_latest_wins_and_validated(store, setup):
    ds, _, _ = setup
    h = ds.content_hash
    assert adaptive.load_settings(store, h) == adaptive.ReviewSettings()
    adaptive.save_setting(store, h, "rerank_every", 5, set_by="ana")
    adaptive.save_setting(store, h, "rerank_every", 7, set_by="ben")
    adaptive.save_setting(store, h, "audit_share", 0.1, set_by="ana")
    s = adaptive.load_settings(store, h)
    assert (s.rerank_every, s.audit_share, s.audit_on) == (7, 0.1, True)
    for name, value, message in [
        ("rerank_every", 0, "whole number of decisions >= 1"),
        ("rerank_every", 2.5, "whole number"),
        ("audit_share", 0.9, "between 0 and 0.5"),
        ("combiner_model", "forest", "one of logistic, boosting"),
        ("colour", 1, "unknown review setting"),
    ]:
        with pytest.raises(UsageError, match=message):
            adaptive.save_setting(store, h, name, value, set_by="ana")


# --------------------------------------------------------------------------- the ranking in force
def test_before_any_decision_the_static_ranking_is_in_force(store, setup):
    ds, table, _ = setup
    q = adaptive.queue_in_force(store, ds, table)
    assert q.ranking == "static" and q.record is None and not q.refitted
    assert "No decisions yet" in q.describe()
    assert q.queue.columns.tolist() == adaptive.QUEUE_COLUMNS
    assert q.queue["row"].tolist() == learn.static_order(table).tolist()
    assert q.queue["queue_rank"].tolist() == list(range(1, ds.n + 1))
    assert q.queue["estimated_precision"].isna().all()  # nothing to calibrate on yet


def test_auto_rerank_after_n_decisions_then_fixed_until_the_next(store, setup):
    ds, table, truth = setup
    adaptive.save_setting(store, ds.content_hash, "rerank_every", 10, set_by="ana")
    review_next(store, ds, table, truth, 9)
    q9 = adaptive.queue_in_force(store, ds, table)
    assert q9.record is None and q9.next_rerank_in == 1
    decide(store, ds, truth, q9.queue["id"].iloc[0])
    q10 = adaptive.queue_in_force(store, ds, table)
    assert q10.refitted and q10.record.trigger == "auto" and q10.record.n_decisions == 10
    assert q10.ranking == "static" and "at least 20 of each" in q10.fit.reason
    # between two re-rankings the queue only loses the decided item; nothing is reshuffled
    decide(store, ds, truth, q10.queue["id"].iloc[3])
    q11 = adaptive.queue_in_force(store, ds, table)
    assert not q11.refitted and q11.record.ranking_id == q10.record.ranking_id
    assert q11.queue["id"].tolist() == [i for i in q10.queue["id"] if i != q10.queue["id"].iloc[3]]
    assert len(adaptive.ranking_history(store, ds.content_hash)) == 1


def test_rerank_on_demand_learns_and_never_reorders_decided_items(store, setup):
    ds, table, truth = setup
    h = ds.content_hash
    adaptive.save_setting(store, h, "rerank_every", 1000, set_by="ana")
    order = learn.static_order(table)
    # enough decisions of both outcomes: the top of the queue plus some rows further down
    rows = list(order[:60]) + list(order[200:260])
    for r in rows:
        decide(store, ds, truth, ds.ids[r])
    before = adaptive.queue_in_force(store, ds, table)
    assert before.ranking == "static"
    q = adaptive.queue_in_force(store, ds, table, rerank=True, requested_by="ana")
    assert q.refitted and q.record.trigger == "on demand" and q.record.requested_by == "ana"
    assert q.ranking == "learnt", q.fit.reason
    assert q.record.auroc_learnt == pytest.approx(q.fit.auroc)
    assert "cross-validated AUROC" in q.describe() and "on demand" in q.describe()
    decided = [ds.ids[r] for r in rows]
    for state in (before, q):
        assert state.full_order[: len(decided)] == decided  # decided items keep their order, first
        assert not set(state.queue["id"]) & set(decided)
        assert sorted(state.full_order) == sorted(ds.ids)
    assert (
        q.queue["id"].tolist() != before.queue["id"].tolist()
    )  # the remaining queue was re-ranked
    assert q.queue["ranking"].eq("learnt").all()
    # the fit is reproduced from the log by another process (here: a cold workspace-less call)
    again = adaptive.queue_in_force(store, ds, table)
    assert not again.refitted and again.queue["id"].tolist() == q.queue["id"].tolist()


def test_fits_are_cached_in_the_workspace(store, setup, workspace):
    ds, table, truth = setup
    for r in learn.static_order(table)[:20]:
        decide(store, ds, truth, ds.ids[r])
    first = adaptive.queue_in_force(store, ds, table, workspace=workspace)
    assert first.refitted
    second = adaptive.queue_in_force(store, ds, table, workspace=workspace)
    assert np.array_equal(first.fit.probability, second.fit.probability, equal_nan=True)
    assert second.fit.reason == first.fit.reason


# --------------------------------------------------------------------------- audit mode
def test_audit_slots_interleave_and_are_recorded_with_the_decision(store, setup):
    ds, table, truth = setup
    h = ds.content_hash
    adaptive.save_setting(store, h, "rerank_every", 1000, set_by="ana")
    review_next(store, ds, table, truth, 5)
    with pytest.raises(UsageError, match="above 0"):
        adaptive.start_audit(store, ds, table, share=0.0, created_by="ana")
    plan = adaptive.start_audit(store, ds, table, share=0.1, created_by="ana", n_items=200)
    assert plan.plan_id and plan.cutoff_decision_id > 0
    stored = audit.load_audit_plan(store, h)
    assert stored.items.equals(plan.items) and stored.scan_fingerprint == plan.scan_fingerprint
    q = adaptive.queue_in_force(store, ds, table)
    assert q.queue["audit"].to_numpy().nonzero()[0][:3].tolist() == [9, 19, 29]
    first_audit = q.queue[q.queue["audit"]].iloc[0]
    assert first_audit["id"] == plan.items["item_id"].iloc[0]
    review_next(store, ds, table, truth, 10)
    out = learn.reviewed_outcomes(ds, store.log(h))
    assert out["audit"].sum() == 1 and out.loc[out["audit"], "item_id"].iloc[0] == first_audit["id"]
    # the queue written for other tools does not say which items are audit items
    assert "audit" not in adaptive.CLI_COLUMNS
    # switching off keeps the sample but stops the slots
    adaptive.stop_audit(store, ds, set_by="ana")
    off = adaptive.queue_in_force(store, ds, table)
    assert not off.queue["audit"].any() and off.plan is not None
    # a second start reuses the sample
    again = adaptive.start_audit(store, ds, table, share=0.05, created_by="ben")
    assert again.plan_id == plan.plan_id


def test_flagged_order_keeps_flagged_rows_and_audit_slots_in_the_order_in_force(store, setup):
    ds, table, truth = setup
    adaptive.save_setting(store, ds.content_hash, "rerank_every", 1000, set_by="ana")
    review_next(store, ds, table, truth, 3)
    adaptive.start_audit(store, ds, table, share=0.1, created_by="ana", n_items=200)
    q = adaptive.queue_in_force(store, ds, table)
    flags = table.assign(is_label_issue=np.arange(len(table)) % 7 == 0)
    got = q.flagged_order(flags)
    audit_ids = set(q.queue.loc[q.queue["audit"], "id"])
    flagged_ids = set(flags.loc[flags["is_label_issue"], "id"].astype(str))
    assert audit_ids and not audit_ids <= flagged_ids  # the test would see audit slots dropped
    assert got == [i for i in q.full_order if i in flagged_ids | audit_ids]
    assert q.flagged_order(table.drop(columns="is_label_issue", errors="ignore")) == q.full_order


def test_remaining_errors_from_the_queue_in_force(store, setup):
    ds, table, truth = setup
    h = ds.content_hash
    adaptive.save_setting(store, h, "rerank_every", 1000, set_by="ana")
    adaptive.start_audit(store, ds, table, share=0.3, created_by="ana", n_items=300)
    review_next(store, ds, table, truth, 120)
    q = adaptive.queue_in_force(store, ds, table)
    est = adaptive.remaining_errors(q, ds, table)
    assert est.enough, est.reason
    decided = np.zeros(ds.n, bool)
    decided[q.outcomes["row"]] = True
    assert est.n_undecided == int((~decided).sum())
    assert est.low <= truth[~decided].sum() <= est.high


# --------------------------------------------------------------------------- the simulated reviewer
@pytest.mark.parametrize("mode", ["similar", "nearest", "uniform"])
def test_flip_modes(mode):
    from labelaudit.simulate_review import plant_flips
    from tests.test_roi import clustered

    ds, x = clustered(n_per_class=80, seed=3)
    flipped, key = plant_flips(ds, x, rate=0.1, seed=0, mode=mode)
    assert (key["original_label"] != key["planted_label"]).all()
    assert not ((flipped.label_names != ds.label_names) & ds.test_mask).any()
    if mode == "nearest":  # one wrong class per true class
        assert key.groupby("original_label")["planted_label"].nunique().max() == 1
    with pytest.raises(UsageError, match="unknown flip mode"):
        plant_flips(ds, x, rate=0.1, mode="sideways")


def test_adaptive_replay_follows_the_queue_in_force(store, setup):
    import pandas as pd

    from labelaudit.simulate_review import replay_adaptive_review

    ds, table, truth = setup
    wrong = np.flatnonzero(truth)
    key = pd.DataFrame(
        {
            "id": ds.ids[wrong],
            "original_label": [
                next(c for c in ds.classes if c != ds.label_names[r]) for r in wrong
            ],
        }
    )
    seen = []
    counts = replay_adaptive_review(
        store,
        ds,
        key,
        table,
        n_items=90,
        rerank_every=30,
        audit_share=0.1,
        audit_items=100,
        on_queue=lambda n, q: seen.append((n, q.ranking, q.refitted)),
    )
    assert sum(counts.values()) == 90
    assert [n for n, _, _ in seen] == [0, 30, 60]
    assert [r for _, _, r in seen] == [False, True, True]
    out = learn.reviewed_outcomes(ds, store.log(ds.content_hash))
    assert out["audit"].sum() == 9  # every 10th decision
    assert out.loc[out["changed"], "item_id"].isin(key["id"]).all()
    with pytest.raises(UsageError, match="already has review decisions"):
        replay_adaptive_review(store, ds, key, table, n_items=5)
