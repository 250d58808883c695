"""Learning from the decisions: outcomes, estimated precision, the learnt combiner (leakage, fallbacks)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from labelaudit import roi
from labelaudit.errors import DataError, UsageError
from labelaudit.review import learn
from tests.learn_data import outcomes_for, world
from tests.test_review_data import toy_dataset, toy_scan_table


@pytest.fixture(scope="module")
def synthetic():
    return world(1500, seed=3)


def log_frame(rows):
    """A ReviewStore.log-shaped frame from (decision_id, item, action, new_label, shown) tuples."""
    import json

    return pd.DataFrame(
        {
            "decision_id": [r[0] for r in rows],
            "dataset_version": "v",
            "item_id": [r[1] for r in rows],
            "reviewer": "ana",
            "decided_at": pd.Timestamp("2026-01-01", tz="UTC"),
            "action": [r[2] for r in rows],
            "old_label": "card_arrival",
            "new_label": [r[3] for r in rows],
            "comment": "",
            "shown": [json.dumps(r[4] if len(r) > 4 else {}) for r in rows],
        }
    )


# --------------------------------------------------------------------------- outcomes
def test_outcomes_follow_the_roi_definition_undos_audit_and_cutoff():
    ds = toy_dataset()
    table = toy_scan_table(ds)
    log = log_frame(
        [
            (1, "r0", "accept", "card_delivery_estimate", {"is_label_issue": True}),
            (2, "r1", "change", "refund_not_showing_up"),
            (3, "r2", "keep", "refund_not_showing_up"),
            (4, "r3", "remove", None, {"audit": True, "queue": "ranking"}),
            (5, "r4", "ambiguous", "card_arrival"),
            (6, "r2", "undo", "card_arrival", {"undoes": 3}),
            (7, "nope", "change", "card_arrival"),  # another dataset version's item
        ]
    )
    out = learn.reviewed_outcomes(ds, log, scan_table=table)
    assert out["item_id"].tolist() == ["r0", "r1", "r3", "r4"]
    # a label change is accept or change, as on the ROI page; remove and ambiguous are not
    assert out["changed"].tolist() == [True, True, False, False]
    assert out["audit"].tolist() == [False, False, True, False]
    assert out["queue"].tolist() == ["", "", "ranking", ""]
    assert out["flagged"].tolist() == [True, False, False, False]
    assert out["row"].tolist() == [0, 1, 3, 4]
    early = learn.reviewed_outcomes(ds, log, scan_table=table, cutoff_decision_id=3)
    assert early["item_id"].tolist() == ["r0", "r1", "r2"]  # the undo came later


# --------------------------------------------------------------------------- precision
def test_precision_estimates_count_flags_with_wilson_intervals(synthetic):
    ds, table, truth = synthetic
    rows = learn.static_order(table)[:300]
    out = outcomes_for(ds, rows, truth, table=table)
    est = learn.precision_estimates(ds, out, scan_table=table, min_group=15)
    overall = est[est["by"] == "all"].set_index("scope")
    assert set(overall.index) == {"combined", "good", "classy", "noisy"}
    for name in ("good", "classy", "noisy"):
        hit = table[f"is_issue_{name}"].to_numpy()[rows]
        n, k = int(hit.sum()), int(truth[rows][hit].sum())
        assert overall.loc[name, "reviewed"] == n and overall.loc[name, "changed"] == k
        assert overall.loc[name, "precision"] == pytest.approx(k / n)
        assert (overall.loc[name, "precision_low"], overall.loc[name, "precision_high"]) == (
            pytest.approx(roi.wilson_interval(k, n))
        )
    # the informative detector's flags hold up more often than the random one's
    assert overall.loc["good", "precision"] > overall.loc["noisy", "precision"]
    per_class = est[(est["by"] == "class") & (est["scope"] == "good")]
    assert len(per_class) and (per_class["reviewed"] >= 15).all()
    assert set(est[est["by"] == "cluster"]["group"]) <= {str(c) for c in range(12)}


def test_precision_without_reviewed_flags_is_nan_and_track_record_says_so():
    ds = toy_dataset()
    table = toy_scan_table(ds)
    out = outcomes_for(ds, [1, 2], np.zeros(ds.n, dtype=bool), table=table)  # unflagged rows only
    est = learn.precision_estimates(ds, out, scan_table=table)
    row = est[(est["scope"] == "confident_learning") & (est["by"] == "all")].iloc[0]
    assert row["reviewed"] == 0 and math.isnan(row["precision"])
    rec = learn.detector_track_record(0, est, scan_table=table, n_rows=ds.n)
    assert set(rec["detector"]) == {"confident_learning", "combined"}
    assert "no reviewed flags yet" in learn.track_record_text(rec)


def test_track_record_names_each_flagging_detector(synthetic):
    ds, table, truth = synthetic
    rows = learn.static_order(table)[:200]
    est = learn.precision_estimates(
        ds, outcomes_for(ds, rows, truth, table=table), scan_table=table
    )
    target = int(np.flatnonzero(table["is_issue_good"] & ~table["is_issue_noisy"])[0])
    rec = learn.detector_track_record(target, est, scan_table=table, n_rows=ds.n)
    assert "good" in set(rec["detector"]) and "noisy" not in set(rec["detector"])
    good = rec.set_index("detector").loc["good"]
    text = learn.track_record_text(rec)
    assert f"good: {int(good['changed'])} of {int(good['reviewed'])} reviewed flags changed" in text


# --------------------------------------------------------------------------- static calibration
def test_static_estimate_needs_decisions_and_says_why():
    ds, table, truth = world(300, seed=1)
    fit = learn.static_estimate(table, outcomes_for(ds, learn.static_order(table)[:4], truth))
    assert np.isnan(fit.probability).all() and "at least 10 decisions" in fit.reason


def test_static_estimate_one_sided_is_smoothed_and_not_extrapolated():
    ds, table, _ = world(300, seed=1)
    rows = learn.static_order(table)[:12]
    all_changed = np.ones(ds.n, dtype=bool)
    fit = learn.static_estimate(table, outcomes_for(ds, rows, all_changed))
    p = fit.estimated_precision
    # Platt's smoothed targets: 12 changes give (12 + 1) / (12 + 2), never a flat 100 %
    assert np.nanmax(p) < 1.0 and np.nanmin(p) > 0.8
    assert "All 12 decisions so far changed the label" in fit.reason
    # rows ranked below the lowest decided one get no estimate
    below = learn.static_order(table)[12:]
    assert np.isnan(p[below]).all() and not np.isnan(p[rows]).any()


def test_static_estimate_is_monotone_in_the_static_rank(synthetic):
    ds, table, truth = synthetic
    order = learn.static_order(table)
    rows = np.concatenate([order[:150], order[600:650], order[-50:]])
    fit = learn.static_estimate(table, outcomes_for(ds, rows, truth))
    undecided = np.setdiff1d(order, rows)
    p = fit.probability[order[np.isin(order, undecided)]]
    assert (np.diff(p) <= 1e-12).all()  # in queue order, never rising


# --------------------------------------------------------------------------- learnt combiner
@pytest.mark.parametrize(
    ("n_changed", "n_kept", "message"),
    [
        (0, 0, "No decisions yet"),
        (30, 0, "30 label changes and 0 without"),
        (19, 25, "at least 20 of each"),
    ],
)
def test_learnt_combiner_falls_back_and_says_why(n_changed, n_kept, message):
    ds, table, truth = world(600, seed=2)
    err, ok = np.flatnonzero(truth), np.flatnonzero(~truth)
    rows = np.concatenate([err[:n_changed], ok[:n_kept]])
    fit = learn.fit_learnt(ds, table, outcomes_for(ds, rows, truth))
    assert fit.ranking == learn.STATIC and message in fit.reason
    assert (learn.ranked_rows(fit, table) == learn.static_order(table)).all()


def test_learnt_combiner_beats_the_static_ranking_where_it_can(synthetic):
    ds, table, truth = synthetic
    order = learn.static_order(table)
    rows = order[:300]
    out = outcomes_for(ds, rows, truth, table=table)
    fit = learn.fit_learnt(ds, table, out, pulls=False)
    assert fit.ranking == learn.LEARNT, fit.reason
    assert fit.auroc > fit.auroc_static
    assert fit.forward_auroc > fit.forward_auroc_static and fit.gain_low > 0
    assert fit.n_forward == len(rows) // 2  # the later half of the decisions, scored forward
    assert "Forward check" in fit.describe() and "re-orders the next 200 items" in fit.describe()
    decided = set(rows.tolist())
    w = learn.RERANK_WINDOW
    learnt_next = [r for r in learn.ranked_rows(fit, table) if r not in decided]
    static_next = [r for r in order if r not in decided]
    # it re-orders the static ranking's next window only, and puts more errors at its head
    assert set(learnt_next[:w]) == set(static_next[:w])
    assert learnt_next[w:] == static_next[w:]
    assert truth[learnt_next[:50]].mean() > truth[static_next[:50]].mean() + 0.1
    # without the window the same model orders the whole queue
    whole = learn.fit_learnt(ds, table, out, window=None)
    assert whole.ranking == learn.LEARNT and whole.window is None
    whole_next = [r for r in learn.ranked_rows(whole, table) if r not in decided][:150]
    assert truth[whole_next].mean() > truth[static_next[:150]].mean() + 0.1


def test_learnt_estimates_are_calibrated_on_unseen_rows(synthetic):
    ds, table, truth = synthetic
    rng = np.random.default_rng(0)
    rows = rng.choice(
        ds.n, size=500, replace=False
    )  # a random sample: the whole range is in support
    fit = learn.fit_learnt(ds, table, outcomes_for(ds, rows, truth))
    rest = np.setdiff1d(np.arange(ds.n), rows)
    p, y = fit.probability[rest], truth[rest]
    edges = np.quantile(p, [0, 0.5, 0.8, 0.95, 1])
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        b = (p >= lo) & (p <= hi)
        assert abs(p[b].mean() - y[b].mean()) < 0.1  # reliability within 10 points per bin


class Recording:
    """An estimator that remembers every row it was fitted on and refuses to score one of them."""

    fitted: list[set] = []

    def __init__(self):
        self.rows: set = set()

    def fit(self, x, y):
        self.rows = {tuple(r) for r in np.asarray(x)}
        Recording.fitted.append(self.rows)
        self.p = float(np.mean(y))
        return self

    def predict_proba(self, x):
        seen = [tuple(r) in self.rows for r in np.asarray(x)]
        assert not any(seen), "an item was scored by a model trained on it"
        return np.column_stack([np.full(len(x), 1 - self.p), np.full(len(x), self.p)])


def test_the_combiner_never_scores_an_item_it_was_trained_on(synthetic):
    ds, table, truth = synthetic
    rows = learn.static_order(table)[:200]
    Recording.fitted = []
    fit = learn.fit_learnt(
        ds,
        table,
        outcomes_for(ds, rows, truth),
        estimator_factory=lambda c, n, s: Recording(),
    )
    # five folds, the final model and one per block of the forward check
    assert len(Recording.fitted) == learn.N_FOLDS + 1 + len(learn.FORWARD_CUTS)
    assert fit.n_forward == len(rows) // 2
    assert not np.isnan(fit.probability).any()


def test_no_memorisation_leaks_into_the_out_of_fold_auroc(synthetic):
    """Outcomes are coin flips and every row carries a unique score: a model that scored rows it was
    trained on would find them; out of fold, the AUROC stays at chance."""
    ds, table, _ = synthetic
    rng = np.random.default_rng(5)
    noise = table.assign(score_unique=rng.random(ds.n))
    coin = rng.random(ds.n) < 0.5
    rows = rng.choice(ds.n, size=300, replace=False)
    fit = learn.fit_learnt(ds, noise, outcomes_for(ds, rows, coin), model="boosting")
    assert abs(fit.auroc - 0.5) < 0.12


def test_a_learnt_fit_reorders_only_its_window_of_the_static_order():
    ds, table, _ = world(50, seed=0)
    order = learn.static_order(table)
    decided = order[[0, 2]]
    window = learn.rerank_window(table, decided, 5)
    assert set(np.flatnonzero(window)) == set(order[[1, 3, 4, 5, 6]])  # next 5 undecided
    prob = np.zeros(ds.n)
    prob[order[6]], prob[order[4]], prob[order[30]] = 0.9, 0.8, 0.99  # order[30]: outside
    fit = learn.Fit(
        learn.LEARNT, prob, np.ones(ds.n, bool), 2, 1, 0.8, 0.7, model="logistic", window=window
    )
    ranked = learn.ranked_rows(fit, table).tolist()
    assert ranked[:5] == [order[6], order[4], order[1], order[3], order[5]]
    assert ranked[5:] == [r for r in order if r not in ranked[:5]]  # the rest: static order


def test_pulls_fill_the_window_from_deeper_rows_when_the_forward_check_supports_it(synthetic):
    """Same decisions (the static order's first 300): with pulls the learnt queue's next 200 may
    hold rows from the static order's next 400, and holds more errors than the static next 200."""
    ds, table, truth = synthetic
    order = learn.static_order(table)
    rows = order[:300]
    fit = learn.fit_learnt(ds, table, outcomes_for(ds, rows, truth, table=table))
    assert fit.ranking == learn.LEARNT and fit.pulls, fit.describe()
    assert fit.pull_gain_low > 0 and fit.pull_margin in learn.PULL_MARGINS
    assert fit.window_size == learn.RERANK_WINDOW and fit.window.sum() == 2 * learn.RERANK_WINDOW
    assert "fills the next 200 places from the next 400 items" in fit.describe()
    decided = set(rows.tolist())
    w = learn.RERANK_WINDOW
    learnt_next = [r for r in learn.ranked_rows(fit, table) if r not in decided]
    static_next = [r for r in order if r not in decided]
    assert set(learnt_next[:w]) <= set(static_next[: 2 * w])
    assert set(learnt_next[:w]) != set(static_next[:w])  # something was pulled in
    assert sorted(learnt_next) == sorted(static_next)  # nothing lost, nothing decided comes back
    assert truth[learnt_next[:w]].mean() > truth[static_next[:w]].mean()


def test_pull_pick_needs_the_margin_to_enter_the_window():
    p = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.05])  # pool in the static order
    # margin 0: the best 5 by percentile, wherever they are in the pool
    assert np.flatnonzero(learn.pull_pick(p, 5, 0.0)).tolist() == [4, 5, 6, 7, 8]
    # margin 0.35: a deeper row needs 0.35 more percentile than the window row it displaces
    assert np.flatnonzero(learn.pull_pick(p, 5, 0.35)).tolist() == [3, 4, 6, 7, 8]
    # a margin no row clears keeps the window as it is
    assert np.flatnonzero(learn.pull_pick(p, 5, 1.0)).tolist() == [0, 1, 2, 3, 4]
    assert learn.pull_pick(p[:3], 5, 0.0).all()  # a pool smaller than the window: all of it


def test_pull_check_accepts_a_model_that_ranks_deeper_rows_and_refuses_one_that_does_not():
    rng = np.random.default_rng(0)
    blocks_good, blocks_bad = [], []
    for _ in range(4):
        n = 60
        static = np.sort(rng.random(n))[::-1]
        y = rng.random(n) < 0.4  # the static order says nothing within the block
        good = np.where(y, rng.beta(5, 2, n), rng.beta(2, 5, n))
        blocks_good.append((y, good, static))
        blocks_bad.append((y, 1 - good, static))
    margin, gain, low, high = learn.pull_check(blocks_good)
    assert margin in learn.PULL_MARGINS and low > 0 and gain > 0.1
    margin, gain, low, high = learn.pull_check(blocks_bad)
    assert math.isnan(margin) and low <= 0
    assert all(math.isnan(v) for v in learn.pull_check([]))


def test_ranked_rows_with_pulls_fills_the_window_from_its_pool():
    ds, table, _ = world(50, seed=0)
    order = learn.static_order(table)
    pool = learn.rerank_window(table, order[:0], 10)  # the first 10 of the static order
    prob = np.zeros(ds.n)
    prob[order[:10]] = [0.5, 0.1, 0.2, 0.3, 0.4, 0.9, 0.05, 0.06, 0.8, 0.07]
    prob[order[20]] = 0.99  # outside the pool: never pulled
    fit = learn.Fit(
        learn.LEARNT,
        prob,
        np.ones(ds.n, bool),
        40,
        20,
        0.8,
        0.7,
        model="logistic",
        window=pool,
        window_size=5,
        pull_margin=0.0,
    )
    assert fit.pulls
    ranked = learn.ranked_rows(fit, table).tolist()
    assert ranked[:5] == [order[5], order[8], order[0], order[4], order[3]]
    assert ranked[5:] == [r for r in order if r not in ranked[:5]]  # the rest: static order


def test_forward_check_sees_a_model_that_fails_deeper_down():
    """Early decisions reward a high feature value, later (deeper) ones a low one: a random-fold
    check on all of them is mixed; the forward check, which scores the later decisions with a model
    fitted on the earlier ones, finds the model worse than the static ranking and keeps it off."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    n = 400
    x = rng.random((n, 1))
    static = rng.random(n)
    early = np.arange(n) < n // 2
    y = np.where(early, x[:, 0] > 0.5, x[:, 0] < 0.5) ^ (rng.random(n) < 0.1)
    y = y | (static > 0.9)  # the static ranking is a little informative everywhere
    auc, auc_static, n_scored, low, high = learn.forward_check(
        x, y, static, np.arange(n), lambda: LogisticRegression()
    )
    assert n_scored == n // 2 and auc < 0.5 < auc_static and high < 0
    # the same model on decisions whose pattern holds all the way down clearly wins
    y2 = (x[:, 0] > 0.5) ^ (rng.random(n) < 0.1)
    auc, auc_static, _, low, _ = learn.forward_check(
        x, y2, static, np.arange(n), lambda: LogisticRegression()
    )
    assert auc > 0.8 and low > 0


def test_ranked_rows_orders_by_probability_ties_in_static_order():
    ds, table, _ = world(50, seed=0)
    order = learn.static_order(table)
    prob = np.zeros(ds.n)
    prob[order[10]] = 0.9  # jumps to the front; the rest keep the static order
    fit = learn.Fit(learn.LEARNT, prob, np.ones(ds.n, bool), 40, 20, 0.8, 0.7, model="logistic")
    ranked = learn.ranked_rows(fit, table)
    assert ranked[0] == order[10]
    assert ranked[1:].tolist() == [r for r in order if r != order[10]]


def test_features_cover_detectors_flags_classes_and_clusters(synthetic):
    ds, table, _ = synthetic
    frame, cats, nums = learn.ranking_features(ds, table)
    assert len(frame) == ds.n
    assert {"given_label", "class_pair", "cluster"} == set(cats)
    for col in ("score_good", "score_classy", "score_noisy", "n_flags", "suggested_label_prob"):
        assert col in nums
    assert {"class_flag_rate", "cluster_label_share", "cluster_flag_rate"} <= set(nums)
    assert np.isfinite(frame[nums].to_numpy()).all()
    with pytest.raises(UsageError, match="rows but the dataset has"):
        learn.ranking_features(ds, table.iloc[:10])
    with pytest.raises(UsageError, match="unknown combiner model"):
        learn.make_model("forest", cats, nums)


# --------------------------------------------------------------------------- active learning
def test_active_learning_scores_are_cleanlabs():
    from cleanlab.multiannotator import get_active_learning_scores

    ds = toy_dataset()
    out = learn.active_learning_scores(ds, ds.pred_probs)
    assert set(out["id"]) == {"r0", "r1"}
    wide = pd.DataFrame(
        {"x": [0, 0], "y": [1, np.nan], "z": [0, np.nan]}
    )  # r0: delivery, delivery, arrival; r1: arrival
    wide.loc[0] = [1, 1, 0]
    wide.loc[1] = [0, np.nan, np.nan]
    expected, _ = get_active_learning_scores(wide, ds.pred_probs[[0, 1]])
    got = out.set_index("id").loc[["r0", "r1"], "active_learning_score"].to_numpy()
    assert got == pytest.approx(expected)
    assert out["active_learning_score"].is_monotonic_increasing
    assert out.set_index("id").loc["r0", "n_annotations"] == 3


def test_active_learning_without_annotations_says_so():
    ds, _, _ = world(30, seed=0)
    with pytest.raises(DataError, match="no annotations"):
        learn.active_learning_scores(ds, np.full((ds.n, ds.k), 1 / ds.k))


def test_platt_fit_matches_scikit_learn():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = rng.random((200, 1))
    y = rng.random(200) < x[:, 0]
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    t = np.where(y, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))
    ref = LogisticRegression(C=1e6, max_iter=1000, tol=1e-10).fit(
        np.concatenate([x, x]),
        np.concatenate([np.ones(200), np.zeros(200)]),
        sample_weight=np.concatenate([t, 1 - t]),
    )
    grid = np.linspace(0, 1, 11).reshape(-1, 1)
    assert learn._platt(x, y, grid) == pytest.approx(ref.predict_proba(grid)[:, 1], abs=1e-5)


# --------------------------------------------------------------------------- switch-on rule
def test_auroc_gain_interval_is_paired_and_centred_on_the_gain():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(1)
    y = rng.random(300) < 0.4
    static = rng.random(300) + 0.3 * y
    learnt = static + 0.8 * y  # better everywhere
    low, high = learn.auroc_gain_interval(y, learnt, static)
    gain = roc_auc_score(y, learnt) - roc_auc_score(y, static)
    assert low < gain < high and low > 0
    # the same scores: no gain, an interval of exactly 0 (the rule needs it above 0)
    assert learn.auroc_gain_interval(y, static, static) == (0.0, 0.0)
    # vectorised AUROC equals scikit-learn's, ties included
    s = np.round(static, 1)
    assert learn._auroc_many(y[None, :], s[None, :])[0] == pytest.approx(roc_auc_score(y, s))


def test_a_combiner_that_does_not_clearly_beat_the_static_ranking_stays_off(synthetic):
    """Outcomes follow the static ranking alone: the learnt model cannot beat it by a margin the
    bootstrap trusts, so the static ranking stays and the reason gives the interval."""
    ds, table, _ = synthetic
    rng = np.random.default_rng(4)
    rank = learn.static_rank_score(table)
    truth = rng.random(ds.n) < rank**8  # errors depend on the static rank only
    rows = learn.static_order(table)[:300]
    fit = learn.fit_learnt(ds, table, outcomes_for(ds, rows, truth, table=table))
    assert fit.ranking == learn.STATIC
    assert "bootstrap interval" in fit.reason and "does not exclude 0" in fit.reason
    assert not fit.gain_low > 0
    assert (learn.ranked_rows(fit, table) == learn.static_order(table)).all()
