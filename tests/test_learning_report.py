"""The ROI projection and the report use what was learnt: the audit's estimate, the ranking in force."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from labelaudit import roi
from labelaudit.reporting import compute_report, headline_numbers, render_html
from labelaudit.review import adaptive
from labelaudit.review.store import ReviewStore
from labelaudit.simulate_review import replay_adaptive_review
from tests.learn_data import world


@pytest.fixture(scope="module")
def reviewed(tmp_path_factory):
    import pandas as pd

    ds, table, truth = world(900, seed=8)
    ds.__dict__["content_hash"] = uuid.uuid4().hex[:20]
    wrong = np.flatnonzero(truth)
    key = pd.DataFrame(
        {
            "id": ds.ids[wrong],
            "original_label": [
                next(c for c in ds.classes if c != ds.label_names[r]) for r in wrong
            ],
        }
    )
    store = ReviewStore(f"sqlite:///{tmp_path_factory.mktemp('learning') / 'r.sqlite'}")
    replay_adaptive_review(
        store, ds, key, table, n_items=240, rerank_every=60, audit_share=0.25, audit_items=300
    )
    yield ds, table, truth, store
    store.close()


def test_the_projection_uses_the_audit_when_it_has_enough(reviewed):
    ds, table, truth, store = reviewed
    learning = adaptive.learning_summary(store, ds, table)
    assert learning.remaining.enough, learning.remaining.reason
    summary = roi.summarise_review(ds, store.log(ds.content_hash), scan_table=table)
    p = roi.project(summary, estimated_errors=500.0, audit_estimate=learning.remaining)
    assert p.remaining_source == "audit"
    assert p.remaining_errors == pytest.approx(learning.remaining.total)
    assert p.remaining_low <= p.remaining_errors <= p.remaining_high
    assert "replaces the noise-matrix assumption" in p.assumptions[0]
    noise = roi.project(summary, estimated_errors=500.0)
    assert noise.remaining_source == "noise matrix" and noise.remaining_low is None
    assert f"would say {noise.remaining_errors:,.0f}" in p.assumptions[0]


def test_without_enough_audit_the_projection_keeps_the_noise_matrix_and_says_why(reviewed):
    ds, table, _, store = reviewed
    from labelaudit.review import audit

    thin = audit.RemainingErrors(
        float("nan"),
        float("nan"),
        float("nan"),
        False,
        "Not enough audit decisions (12)",
        12,
        0,
        10,
    )
    summary = roi.summarise_review(ds, store.log(ds.content_hash), scan_table=table)
    p = roi.project(summary, estimated_errors=100.0, audit_estimate=thin)
    assert p.remaining_source == "noise matrix"
    assert "Not from the audit: Not enough audit decisions (12)" in p.assumptions


def test_the_report_shows_the_ranking_precision_and_errors_left(reviewed):
    ds, table, _, store = reviewed
    learning = adaptive.learning_summary(store, ds, table)
    rep = compute_report(
        ds,
        store.log(ds.content_hash),
        store.findings(ds.content_hash),
        scan_table=table,
        details=None,
        embeddings=None,
        learning=learning,
    )
    text = render_html(rep)
    assert 'id="learning"' in text and "Ranking in force" in text
    assert 'id="estimated-precision"' in text and "<td>good</td>" in text
    assert 'id="errors-left"' in text and "from the audit" in text
    head = dict(headline_numbers(rep))
    assert "from the audit" in head["Estimated label errors left"]
    # the learning summary only reads: no ranking was recorded by computing it
    before = len(adaptive.ranking_history(store, ds.content_hash))
    adaptive.learning_summary(store, ds, table)
    assert len(adaptive.ranking_history(store, ds.content_hash)) == before
