"""Memory at 1M rows without changing results: INCV's held-out predictions in row blocks and its two
halves one after the other above a copy size, and the dynamics memo holding the stored
(memory-mapped) run instead of the trained one."""

from __future__ import annotations

import numpy as np
import pytest

from labelaudit import dynamics
from labelaudit.detectors import incv as incv_mod
from labelaudit.workspace import Workspace


@pytest.fixture
def blobs():
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(4, 16))
    y = np.repeat(np.arange(4), 75)
    x = centres[y] + 0.9 * rng.normal(size=(len(y), 16))
    y[:20] = (y[:20] + 1) % 4
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), y


def test_incv_in_blocks_and_one_fit_at_a_time_gives_the_same_result(blobs, monkeypatch):
    x, y = blobs
    ref = incv_mod.incv(x, y, n_classes=4, seed=0)
    seen: list = []
    real = dynamics.map_on_cores

    def spy(fn, items, **kw):
        seen.append(kw.get("workers"))
        return real(fn, items, **kw)

    monkeypatch.setattr(dynamics, "map_on_cores", spy)
    monkeypatch.setattr(incv_mod, "PREDICT_BLOCK", 7)  # many short blocks, the last one shorter
    monkeypatch.setattr(incv_mod, "PARALLEL_COPY_BYTES", 0)  # every round: one fit at a time
    got = incv_mod.incv(x, y, n_classes=4, seed=0)
    assert seen and all(w == 1 for w in seen)
    for k in ("selected", "removed"):
        np.testing.assert_array_equal(got[k], ref[k])
    # float32 products of 7 rows and of 150 take other BLAS kernels: the last bits may differ
    np.testing.assert_allclose(got["heldout_probs"], ref["heldout_probs"], rtol=1e-5, atol=1e-9)
    assert got["noise_rate"] == ref["noise_rate"] and got["rounds_run"] == ref["rounds_run"]
    assert ref["removed"].any() and not ref["selected"].all()  # the comparison means something


def test_incv_fits_both_halves_at_once_below_the_copy_size(blobs, monkeypatch):
    x, y = blobs
    seen: list = []
    real = dynamics.map_on_cores

    def spy(fn, items, **kw):
        seen.append(kw.get("workers"))
        return real(fn, items, **kw)

    monkeypatch.setattr(dynamics, "map_on_cores", spy)
    incv_mod.incv(x, y, n_classes=4, seed=0)
    assert seen and all(w is None for w in seen)


def test_memo_holds_the_stored_memory_mapped_run(blobs, tmp_path):
    x, y = blobs
    ws = Workspace(tmp_path / "ws")
    dynamics._MEMO.clear()
    run = dynamics.cached_dynamics(x, y, n_classes=4, workspace=ws, epochs=3)
    fresh = dynamics.train_dynamics(x, y, n_classes=4, epochs=3)
    assert isinstance(run.logits, np.memmap)  # read back from the workspace, not held in memory
    np.testing.assert_array_equal(run.logits, fresh.logits)
    np.testing.assert_array_equal(run.checkpoints, fresh.checkpoints)
    assert dynamics.cached_dynamics(x, y, n_classes=4, workspace=ws, epochs=3) is run
    aum = dynamics.cached_aum(x, y, n_classes=4, workspace=ws, epochs=3)
    want = dynamics.area_under_margin(x, y, n_classes=4, epochs=3)
    np.testing.assert_array_equal(aum.aum, want.aum)
    np.testing.assert_array_equal(aum.is_mislabeled, want.is_mislabeled)
    dynamics._MEMO.clear()
