"""The per-epoch logits (E, N, K) are read in blocks of rows (the data map, margins, forgetting,
AUM): the same values as one pass over all rows, without (E, N, K) float64 temporaries."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

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


def _rss_file_kib() -> int | None:
    """This process's resident file-backed pages (``RssFile`` in /proc/self/status), or None."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("RssFile:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _mapped_logits(tmp_path, e=4, n=100_000, k=40, seed=0):
    """A stored (E, N, K) float32 run of 64 MB, opened as the workspace opens it (read-only map)."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((e, n, k), dtype=np.float32)
    y = rng.integers(0, k, n)
    np.save(tmp_path / "logits.npy", z)
    return np.load(tmp_path / "logits.npy", mmap_mode="r"), y, z.nbytes // 1024


def test_drop_mapped_pages_lets_go_of_the_resident_pages_of_a_read_only_map(tmp_path):
    m, _, kib = _mapped_logits(tmp_path)
    if _rss_file_kib() is None:
        pytest.skip("no RssFile in /proc/self/status on this system")
    before = _rss_file_kib()
    float(np.asarray(m[:, :, 0]).sum() + np.asarray(m).sum())  # every page read once
    read = _rss_file_kib() - before
    assert read > kib // 2  # the measure sees the map (else the next assert means nothing)
    dynamics.drop_mapped_pages(np.asarray(m)[:, 10:20])  # a view of a view finds the map
    assert _rss_file_kib() - before < kib // 4
    assert float(np.asarray(m).sum()) == float(np.load(tmp_path / "logits.npy").sum())  # reads back
    # No-op on arrays that are not a read-only map (a writable map's pages are its writes)
    plain = np.ones(10)
    dynamics.drop_mapped_pages(plain)
    np.testing.assert_array_equal(plain, 1.0)
    w = np.load(tmp_path / "logits.npy", mmap_mode="r+")
    w[0, 0, 0] = 7.0
    dynamics.drop_mapped_pages(w)
    assert w[0, 0, 0] == 7.0


def test_block_passes_over_a_mapped_run_leave_it_unresident_with_the_same_values(
    tmp_path, monkeypatch
):
    m, y, kib = _mapped_logits(tmp_path)
    if _rss_file_kib() is None:
        pytest.skip("no RssFile in /proc/self/status on this system")
    monkeypatch.setattr(dynamics, "LOGIT_BLOCK_ROWS", 8_192)  # 13 blocks, the last one short
    passes = {
        "data_map": lambda z: dynamics.data_map(z, y),
        "margins": lambda z: dynamics.margins(z, y),
        "forgetting": lambda z: dynamics.forgetting_events(z, y),
        "given_label_probs": lambda z: dynamics.given_label_probs(z, y),
    }
    got = {}
    for name, fn in passes.items():
        before = _rss_file_kib()
        got[name] = fn(m)
        assert _rss_file_kib() - before < kib // 4, name  # one block at most stays resident
    monkeypatch.setattr(dynamics, "drop_mapped_pages", lambda a: None)
    for name, fn in passes.items():
        want = fn(m)
        if name == "data_map":
            pd.testing.assert_frame_equal(got[name], want)
        elif name == "forgetting":
            np.testing.assert_array_equal(got[name][0], want[0])
            np.testing.assert_array_equal(got[name][1], want[1])
        else:
            np.testing.assert_array_equal(got[name], want)
