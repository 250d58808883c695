"""Independent single-threaded fits on every core (issue 16, the scan's speed):
:func:`labelaudit.dynamics.map_on_cores` and the process-wide one-BLAS-thread limit it shares.

The out-of-fold folds, INCV's two halves and the self-influence blocks run through it; their
results must not depend on the number of threads.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
from threadpoolctl import threadpool_info

from labelaudit import dynamics, influence
from labelaudit.detectors.incv import incv
from labelaudit.detectors.oof import out_of_fold_probs
from labelaudit.influence import InfluenceModel


def _blas_threads() -> set[int]:
    return {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}


def test_results_in_input_order_with_progress_counts():
    seen: list[int] = []
    out = dynamics.map_on_cores(lambda x: x * x, list(range(7)), workers=3, done=seen.append)
    assert out == [x * x for x in range(7)]
    assert seen == list(range(1, 8))


def test_two_workers_run_on_two_threads():
    barrier = threading.Barrier(2, timeout=10)  # both items must be running at once

    def item(_: int) -> str:
        barrier.wait()
        return threading.current_thread().name

    names = dynamics.map_on_cores(item, [0, 1], workers=2)
    assert len(set(names)) == 2


def test_an_error_in_an_item_reaches_the_caller():
    def item(x: int) -> int:
        if x == 2:
            raise ValueError("bad item 2")
        return x

    with pytest.raises(ValueError, match="bad item 2"):
        dynamics.map_on_cores(item, [0, 1, 2, 3], workers=2)


def test_the_blas_limit_holds_until_the_last_thread_leaves():
    if not _blas_threads():
        pytest.skip("no BLAS library found by threadpoolctl")
    before = _blas_threads()
    first_left = threading.Event()
    inside: list[set[int]] = []

    def early() -> None:
        with dynamics.single_blas_thread():
            pass
        first_left.set()

    with dynamics.single_blas_thread():
        t = threading.Thread(target=early)
        t.start()
        t.join()
        assert first_left.is_set()
        inside.append(_blas_threads())  # the other thread left: still one thread here
    assert inside == [{1}]
    assert _blas_threads() == before


def test_workers_env_sets_the_thread_count(monkeypatch):
    monkeypatch.setenv(dynamics.WORKERS_ENV, "3")
    assert dynamics.cpu_workers() == 3
    monkeypatch.setenv(dynamics.WORKERS_ENV, "zero")
    assert dynamics.cpu_workers() >= 1


@pytest.fixture
def blobs():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(4, 16))
    y = np.repeat(np.arange(4), 60)
    x = centres[y] + 0.8 * rng.normal(size=(len(y), 16))
    y[:12] = (y[:12] + 1) % 4  # a few flipped labels
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), y


def test_fits_do_not_depend_on_the_number_of_threads(blobs, monkeypatch):
    x, y = blobs
    out = {}
    for workers in ("1", "2"):
        monkeypatch.setenv(dynamics.WORKERS_ENV, workers)
        probs, _ = out_of_fold_probs(x, y, n_classes=4, seed=0)
        inc = incv(x, y, n_classes=4, seed=0)
        monkeypatch.setattr(influence, "MAX_DENSE_PARAMS", 0)  # the block path of a large head
        model = InfluenceModel.fit(x, y, n_classes=4)
        values, _ = model.self_influence()
        blocks = model.block_hessians()
        out[workers] = (probs, inc["heldout_probs"], inc["selected"], blocks, values)
    for a, b in zip(out["1"], out["2"], strict=True):
        np.testing.assert_array_equal(a, b)
