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
    # No-op on arrays that are not a map
    plain = np.ones(10)
    dynamics.drop_mapped_pages(plain)
    np.testing.assert_array_equal(plain, 1.0)
    # A writable map's writes go to its file before its pages are let go: none is lost
    w = np.load(tmp_path / "logits.npy", mmap_mode="r+")
    w[0, 0, 0] = 7.0
    dynamics.drop_mapped_pages(w[0])
    assert w[0, 0, 0] == 7.0
    assert np.load(tmp_path / "logits.npy", mmap_mode="r")[0, 0, 0] == 7.0


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


def _rss_kib() -> tuple[int, int]:
    """(RssFile, RssShmem) of this process in KiB: a shared file map's written pages are one of
    the two, by kernel version."""
    got = {"RssFile:": 0, "RssShmem:": 0}
    with open("/proc/self/status") as f:
        for line in f:
            key = line.split(":")[0] + ":"
            if key in got:
                got[key] = int(line.split()[1])
    return got["RssFile:"], got["RssShmem:"]


def test_a_run_trained_into_a_workspace_file_holds_one_epoch_and_equals_the_run_in_memory(
    tmp_path,
):
    """cached_dynamics writes the (E, N, K) logits straight into the workspace's .npy (each
    epoch's pages written out and let go), instead of holding them all until they are stored."""
    from labelaudit.workspace import Workspace

    x, y, k = run_data(n=60_000, d=16, k=40)
    e = 8  # 8 x 60,000 x 40 float32: 77 MB
    in_memory = dynamics.train_dynamics(x, y, n_classes=k, epochs=e)
    ws = Workspace(tmp_path / "ws")
    held = []

    real = dynamics.train_dynamics

    def watched(*a, **kw):
        out = kw["logits_out"]
        before = sum(_rss_kib())
        run = real(*a, **kw)
        held.append(sum(_rss_kib()) - before)
        assert run.logits is out
        return run

    dynamics._MEMO.clear()
    try:
        import unittest.mock as mock

        with mock.patch.object(dynamics, "train_dynamics", watched):
            stored = dynamics.cached_dynamics(x, y, n_classes=k, workspace=ws, epochs=e)
    finally:
        dynamics._MEMO.clear()
    assert isinstance(stored.logits, np.memmap) and stored.logits.shape == (e, 60_000, k)
    np.testing.assert_array_equal(np.asarray(stored.logits), in_memory.logits)
    np.testing.assert_array_equal(stored.checkpoints, in_memory.checkpoints)
    assert len(held) == 1
    # one epoch is 9.6 MB; all of them 77 MB: the file's pages were let go epoch by epoch
    assert held[0] < in_memory.logits.nbytes // 1024 // 4, held
    # a new process (or a cleared memo) reads the same stored run
    again = dynamics.cached_dynamics(x, y, n_classes=k, workspace=ws, epochs=e)
    np.testing.assert_array_equal(np.asarray(again.logits), in_memory.logits)
    dynamics._MEMO.clear()


def test_a_training_run_that_fails_leaves_no_file_behind(tmp_path, monkeypatch):
    from labelaudit.workspace import Workspace

    x, y, k = run_data(n=500)
    ws = Workspace(tmp_path / "ws")

    def fail(*a, progress=None, **kw):
        raise RuntimeError("stopped")

    monkeypatch.setattr(dynamics, "train_dynamics", fail)
    dynamics._MEMO.clear()
    with pytest.raises(RuntimeError, match="stopped"):
        dynamics.cached_dynamics(x, y, n_classes=k, workspace=ws, epochs=3)
    assert not [p for p in (ws.root / "artifacts").rglob("*") if p.is_file()]
    dynamics._MEMO.clear()


def test_logits_out_must_have_the_run_s_shape():
    x, y, k = run_data(n=50)
    with pytest.raises(ValueError, match="logits_out must be float32"):
        dynamics.train_dynamics(
            x, y, n_classes=k, epochs=2, logits_out=np.zeros((2, 50, k), np.float64)
        )
