"""Influence functions for the softmax head: exactness of the Hessian algebra, leave-one-out retraining,
the sign convention, the block approximation's error, TracIn, and the ``influence`` command."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import pearsonr, spearmanr

from labelaudit import influence as inf
from labelaudit.cli import main


def blobs(
    n: int = 200, k: int = 3, d: int = 6, n_flips: int = 12, seed: int = 0, spread: float = 1.5
):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(k, d)) * spread
    y = np.arange(n) % k
    x = centers[y] + rng.normal(size=(n, d))
    flips = np.sort(rng.choice(n, n_flips, replace=False))
    noisy = y.copy()
    noisy[flips] = (y[flips] + 1) % k
    return x, noisy, flips, centers


@pytest.fixture(scope="module")
def small_model():
    x, y, flips, centers = blobs()
    return inf.InfluenceModel.fit(x, y, n_classes=3, l2=1e-2), x, y, flips, centers


def test_gradient_matches_finite_differences():
    x, y, _, _ = blobs(n=30, d=3)
    xa, onehot = inf.augment(x), np.eye(3)[y]
    w = np.random.default_rng(0).normal(size=3 * 4)
    _, g = inf._loss_and_grad(w, xa, onehot, np.ones(len(x)), 0.1)
    eps = 1e-6
    num = [
        (
            inf._loss_and_grad(w + eps * e, xa, onehot, np.ones(len(x)), 0.1)[0]
            - inf._loss_and_grad(w - eps * e, xa, onehot, np.ones(len(x)), 0.1)[0]
        )
        / (2 * eps)
        for e in np.eye(len(w))
    ]
    np.testing.assert_allclose(g, num, rtol=1e-5, atol=1e-8)


def test_hvp_dense_hessian_and_cg_agree(small_model):
    m, x, y, _, _ = small_model
    rng = np.random.default_rng(1)
    v = rng.normal(size=(2, m.k, x.shape[1] + 1))
    h = m.dense_hessian()
    np.testing.assert_allclose(m.hvp(v).reshape(2, -1), v.reshape(2, -1) @ h.T, atol=1e-12)
    # The dense Hessian is the numerical Jacobian of the gradient.
    w0 = m.weights.ravel()
    onehot = np.eye(m.k)[y]
    eps = 1e-6
    col = (
        inf._loss_and_grad(w0 + eps * np.eye(len(w0))[5], m.xa, onehot, np.ones(m.n), m.l2)[1]
        - inf._loss_and_grad(w0 - eps * np.eye(len(w0))[5], m.xa, onehot, np.ones(m.n), m.l2)[1]
    ) / (2 * eps)
    np.testing.assert_allclose(h[:, 5], col, atol=1e-6)
    g = m.gradients(x[:3], y[:3])
    dense = m.solve(g)
    cg, iters = inf.conjugate_gradient(m.hvp, g, precondition=m._block_solve)
    assert iters < 100
    np.testing.assert_allclose(cg, dense, rtol=1e-6, atol=1e-9)


def test_leave_one_out_retraining_matches_predicted_influence():
    """Koh & Liang's check: really retrain without each training row and compare the query's loss change."""
    x, y, _, centers = blobs(n=150, d=5, seed=3)
    l2 = 1e-2
    m = inf.InfluenceModel.fit(x, y, n_classes=3, l2=l2)
    rng = np.random.default_rng(4)
    xq, yq = centers[1] + rng.normal(size=5), 1
    predicted = m.influence_on(xq, yq)
    base = inf.per_row_loss(m.weights, xq[None], np.array([yq]))[0]
    rows = np.argsort(-np.abs(predicted))[:25]
    actual = []
    for j in rows:
        w = np.ones(m.n)
        w[j] = 0.0  # leave row j out, keeping the 1/N scaling of the objective
        wj = inf.fit_softmax_head(
            x, y, n_classes=3, l2=l2, sample_weight=w, init=m.weights, gtol=1e-12
        )
        actual.append(inf.per_row_loss(wj, xq[None], np.array([yq]))[0] - base)
    # Positive influence = helpful = removing the row increases the query's loss.
    assert pearsonr(predicted[rows], actual)[0] >= 0.95
    assert np.mean(np.sign(predicted[rows]) == np.sign(actual)) >= 0.9


def test_sign_convention_same_label_copy_helps_and_flipped_copy_harms(small_model):
    _, x, y, _, _ = small_model
    q = 0
    x2 = np.vstack([x, x[q], x[q]])
    y2 = np.concatenate([y, [y[q], (y[q] + 1) % 3]])
    m = inf.InfluenceModel.fit(x2, y2, n_classes=3, l2=1e-2)
    scores = m.influence_on(x[q], y[q])
    assert scores[-2] > 0 > scores[-1]
    assert scores[-2] >= np.quantile(scores, 0.8)
    assert scores[-1] == scores.min(), "a contradicting copy of the query is its most harmful row"


def test_self_influence_is_exact_when_dense_and_high_for_flips(small_model):
    m, x, y, flips, _ = small_model
    values, exact = m.self_influence()
    assert exact.all() and (values > 0).all()
    g = m.gradients(x[:4], y[:4])
    direct = (np.linalg.solve(m.dense_hessian(), g.reshape(4, -1).T).T * g.reshape(4, -1)).sum(
        1
    ) / m.n
    np.testing.assert_allclose(values[:4], direct, rtol=1e-8)
    truth = np.zeros(m.n, bool)
    truth[flips] = True
    top = np.argsort(-values)[: len(flips)]
    assert truth[top].mean() >= 0.7


@pytest.mark.parametrize("l2", [1e-3, 1e-2, 1e-1])
def test_block_hessian_self_influence_error_against_exact(monkeypatch, l2):
    """The large-model path (block Hessian) against the exact dense answer: ranks nearly identical."""
    x, y, _, _ = blobs(n=300, k=5, d=8, seed=5)
    m = inf.InfluenceModel.fit(x, y, n_classes=5, l2=l2)
    exact, _ = m.self_influence()
    monkeypatch.setattr(inf, "MAX_DENSE_PARAMS", 0)
    approx, flagged = m.self_influence(exact_top=10)
    assert spearmanr(exact, approx).statistic >= 0.97
    # The refined rows are exact (conjugate gradient), and they are the approximation's top rows.
    assert flagged.sum() == 10
    np.testing.assert_allclose(approx[flagged], exact[flagged], rtol=1e-6)
    top_exact = set(np.argsort(-exact)[:15])
    assert len(top_exact & set(np.flatnonzero(flagged))) >= 8


def test_tracin_equals_explicit_gradient_dot_products():
    x, y, _, _ = blobs(n=40, d=4)
    rng = np.random.default_rng(2)
    ckpts = rng.normal(size=(3, 3, 5))
    lrs = np.array([0.5, 0.3, 0.1])
    xq, yq = x[0] + 0.1, 2
    got = inf.tracin(ckpts, lrs, x, y, xq, yq)
    want = np.zeros(len(x))
    for w, lr in zip(ckpts, lrs, strict=True):
        m = inf.InfluenceModel(weights=w, x=x, labels=y, l2=0.0)
        gq = m.gradients(xq, [yq])[0].ravel()
        want += lr * m.gradients(x, y).reshape(len(x), -1) @ gq
    np.testing.assert_allclose(got, want, rtol=1e-10)
    self_t = inf.tracin_self(ckpts, lrs, x, y)
    np.testing.assert_allclose(self_t[3], inf.tracin(ckpts, lrs, x, y, x[3], y[3])[3], rtol=1e-10)


# --------------------------------------------------------------------------- CLI
@pytest.fixture()
def cli_data(tmp_path):
    x, y, _, _ = blobs(n=90, k=3, d=8)
    n = len(y)
    frame = pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(n)],
            "text": [f"row number {i}" for i in range(n)],
            "label": [f"c{c}" for c in y],
            "split": ["test" if i % 10 == 0 else "train" for i in range(n)],
        }
    )
    frame.to_csv(tmp_path / "data.csv", index=False)
    np.save(tmp_path / "emb.npy", (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32))
    return tmp_path


@pytest.mark.parametrize("method", ["influence", "tracin"])
def test_influence_command_writes_ranked_training_rows(cli_data, method):
    out = cli_data / "out.csv"
    code = main(
        [
            "influence",
            str(cli_data / "data.csv"),
            "--embeddings",
            str(cli_data / "emb.npy"),
            "--workspace",
            str(cli_data / "ws"),
            "--query",
            "r10",
            "--top",
            "5",
            "--method",
            method,
            "--out",
            str(out),
        ]
    )
    assert code == 0
    df = pd.read_csv(out)
    assert list(df.columns) == ["train_id", "text", "label", "score", "rank", "direction"]
    assert len(df) == 10 and set(df["direction"]) == {"helpful", "harmful"}
    assert df["score"].is_monotonic_decreasing and (df["score"].iloc[:5] > 0).all()
    assert not df["train_id"].isin([f"r{i}" for i in range(0, 90, 10)]).any(), (
        "test rows never train"
    )
    assert df["rank"].iloc[0] == 1


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["--query", "nope"], 2, "no row with id 'nope'"),
        (["--query", "r1", "--top", "0"], 2, "--top"),
    ],
)
def test_influence_command_bad_usage(cli_data, capsys, args, code, message):
    got = main(
        [
            "influence",
            str(cli_data / "data.csv"),
            "--embeddings",
            str(cli_data / "emb.npy"),
            "--workspace",
            str(cli_data / "ws"),
            "--out",
            str(cli_data / "o.csv"),
            *args,
        ]
    )
    assert got == code
    assert message in capsys.readouterr().err
