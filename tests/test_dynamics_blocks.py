"""The per-epoch logits (E, N, K) are read in blocks of rows (the data map, margins, forgetting,
AUM): the same values as one pass over all rows, without (E, N, K) float64 temporaries."""

from __future__ import annotations

import numpy as np
import pandas as pd

from labelaudit import dynamics


def run_data(n: int = 700, d: int = 12, k: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(np.float32)
    y = (x[:, :k].argmax(axis=1) + (rng.random(n) < 0.1)) % k
    return x, y.astype(np.int64), k


def test_blocks_of_rows_give_the_values_of_one_pass(monkeypatch):
    x, y, k = run_data()
    run = dynamics.train_dynamics(x, y, n_classes=k, epochs=6)
    monkeypatch.setattr(dynamics, "LOGIT_BLOCK_ROWS", 10**9)
    whole = (
        dynamics.data_map(run.logits, y),
        dynamics.margins(run.logits, y),
        dynamics.forgetting_events(run.logits, y),
        dynamics.given_label_probs(run.logits, y),
    )
    monkeypatch.setattr(dynamics, "LOGIT_BLOCK_ROWS", 64)  # 11 blocks, the last one short
    pd.testing.assert_frame_equal(dynamics.data_map(run.logits, y), whole[0])
    np.testing.assert_array_equal(dynamics.margins(run.logits, y), whole[1])
    events, never = dynamics.forgetting_events(run.logits, y)
    np.testing.assert_array_equal(events, whole[2][0])
    np.testing.assert_array_equal(never, whole[2][1])
    np.testing.assert_array_equal(dynamics.given_label_probs(run.logits, y), whole[3])


def test_logits_of_the_checkpoints_are_the_recorded_logits_and_aum_needs_none(monkeypatch):
    x, y, k = run_data()
    run = dynamics.train_dynamics(x, y, n_classes=k, epochs=5)
    bare = dynamics.train_dynamics(x, y, n_classes=k, epochs=5, record_logits=False)
    assert bare.logits.shape == (5, 0, k)
    np.testing.assert_array_equal(bare.checkpoints, run.checkpoints)  # the same training
    for e in range(5):
        np.testing.assert_allclose(
            dynamics.checkpoint_logits(run.checkpoints[e], x), run.logits[e], rtol=1e-5, atol=1e-5
        )
    monkeypatch.setattr(dynamics, "LOGIT_BLOCK_ROWS", 100)
    np.testing.assert_allclose(
        dynamics.mean_margin(x, run.checkpoints, y),
        dynamics.margins(run.logits, y).mean(axis=0),
        atol=1e-4,
    )
