"""The influence head reads its rows in blocks (memory at 1M rows): every pass gives the result of
one whole-array pass, the model keeps the embeddings it was given (no (N, D+1) copy), and the
content hash of the workspace keys is the digest of the whole bytes."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from labelaudit import dynamics
from labelaudit import influence as inf


def blobs(n: int = 257, k: int = 4, d: int = 7, seed: int = 0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(k, d)) * 1.5
    y = np.arange(n) % k
    x = (centers[y] + rng.normal(size=(n, d))).astype(np.float32)
    flips = rng.choice(n, 15, replace=False)
    y[flips] = (y[flips] + 1) % k
    return x, y


@pytest.mark.parametrize("block", [1, 10, 64])
def test_blocked_loss_and_gradient_equal_the_whole_array_pass(block):
    x, y = blobs()
    rng = np.random.default_rng(1)
    w = rng.normal(size=4 * 8)
    weights = rng.uniform(0, 2, size=len(x))
    want = inf._loss_and_grad(w, inf.augment(x), np.eye(4)[y], weights, 0.05)
    got = inf._loss_and_grad_blocks(w, x, y, weights, 0.05, block)
    assert got[0] == pytest.approx(want[0], rel=1e-12)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-10, atol=1e-14)
    one = inf._loss_and_grad_blocks(w, x, y, weights, 0.05, len(x))
    assert one[0] == want[0]  # one block: the very same products
    np.testing.assert_array_equal(one[1], want[1])


def whole_block_self_influence(m: inf.InfluenceModel) -> np.ndarray:
    """The block-Hessian self-influence as it was computed before the row blocks: whole arrays."""
    from scipy import linalg

    xa = inf.augment(m.x)
    x32 = xa.astype(np.float32)
    c = (m.probs * (1 - m.probs) / m.n).astype(np.float32)
    r = m.residuals
    out = np.zeros(m.n)
    for a in range(m.k):
        h = ((x32 * c[:, a : a + 1]).T @ x32).astype(np.float64)
        h[np.diag_indices_from(h)] += m.l2
        inv_t = linalg.solve_triangular(np.linalg.cholesky(h), np.eye(len(h)), lower=True).T
        yy = x32 @ inv_t.astype(np.float32)
        out += r[:, a] ** 2 * np.einsum("nd,nd->n", yy, yy, dtype=np.float64)
    return out / m.n


def test_every_pass_in_small_blocks_equals_one_block(monkeypatch):
    x, y = blobs()
    whole = inf.InfluenceModel.fit(x, y, n_classes=4, l2=1e-2)
    monkeypatch.setattr(inf, "ROW_BLOCK", 16)  # 17 blocks, the last one short
    blocked = inf.InfluenceModel.fit(x, y, n_classes=4, l2=1e-2)
    np.testing.assert_allclose(blocked.weights, whole.weights, rtol=1e-6, atol=1e-8)
    # The same weights from here on, so each pass is compared alone.
    blocked = inf.InfluenceModel(weights=whole.weights, x=x, labels=y, l2=1e-2)
    np.testing.assert_allclose(blocked.probs, whole.probs, rtol=1e-12)
    np.testing.assert_allclose(blocked.dense_hessian(), whole.dense_hessian(), atol=1e-12)
    v = np.random.default_rng(2).normal(size=(3, 4, 8))
    np.testing.assert_allclose(blocked.hvp(v), whole.hvp(v), atol=1e-12)
    np.testing.assert_allclose(blocked.block_hessians(), whole.block_hessians(), rtol=1e-5)
    np.testing.assert_allclose(
        blocked.influence_on(x[3], int(y[3])), whole.influence_on(x[3], int(y[3])), atol=1e-12
    )
    dense_b, _ = blocked.self_influence()
    dense_w, _ = whole.self_influence()
    np.testing.assert_allclose(dense_b, dense_w, rtol=1e-9)
    # The large-model path: the block Hessian stands in, the top rows exact by CG.
    monkeypatch.setattr(inf, "MAX_DENSE_PARAMS", 0)
    approx_b, exact_b = blocked.self_influence(exact_top=5)
    approx_w, exact_w = whole.self_influence(exact_top=5)
    np.testing.assert_array_equal(exact_b, exact_w)
    np.testing.assert_allclose(approx_b, approx_w, rtol=1e-5)
    # ... and equal to the pre-block computation on whole arrays (float32 products: rtol 1e-5).
    only_blocks, _ = blocked.self_influence()
    np.testing.assert_allclose(only_blocks, whole_block_self_influence(whole), rtol=1e-5)


def test_model_keeps_the_given_embeddings_without_a_copy(tmp_path):
    x, y = blobs()
    path = tmp_path / "emb.npy"
    np.save(path, x)
    mm = np.load(path, mmap_mode="r")
    m = inf.InfluenceModel.fit(mm, y, n_classes=4, l2=1e-2)
    assert m.x is mm or np.shares_memory(m.x, mm)
    ref = inf.InfluenceModel.fit(x, y, n_classes=4, l2=1e-2)
    np.testing.assert_array_equal(m.weights, ref.weights)
    np.testing.assert_array_equal(m.self_influence()[0], ref.self_influence()[0])
    np.testing.assert_array_equal(m.xa, inf.augment(x))


@pytest.mark.parametrize(
    "a",
    [
        np.arange(5_000_000, dtype=np.float32).reshape(-1, 50),  # 20 MB: two blocks
        np.asfortranarray(np.arange(600, dtype=np.float64).reshape(20, 30)),
        np.array(3.5),
        np.zeros((0, 4), dtype=np.float32),
        np.arange(10, dtype=np.int64),
    ],
)
def test_array_key_is_the_digest_of_the_whole_bytes(a):
    h = hashlib.sha256()
    c = np.ascontiguousarray(a)
    h.update(f"{c.shape}{c.dtype}".encode())
    h.update(c.tobytes())
    assert dynamics.array_key(a) == h.hexdigest()[:20]
