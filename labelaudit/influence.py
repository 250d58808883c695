"""Influence functions (Koh & Liang 2017) for an L2-regularised softmax head on the embeddings.

The model: weights ``W`` of shape (K, D+1) (the last column is the bias; rows of ``x`` get a
trailing 1), trained to the minimum of::

    L(W) = (1/N) * sum_i w_i * CE(softmax(W x_i), y_i) + (l2/2) * ||W||^2      (w_i = 1 by default)

This model has closed forms: a row's gradient is the outer product ``(p_i - e_{y_i}) x_i^T``, and the
Hessian is ``(1/N) sum_i A_i ⊗ x_i x_i^T + l2 I`` with ``A_i = diag(p_i) - p_i p_i^T``.

Sign convention, everywhere in labelaudit: **positive influence = helpful** — removing the
training row would *increase* the query's loss. To first order (Koh & Liang 2017, eq. 2)::

    influence(j -> q) = (1/N) * g_q^T H^{-1} g_j          (g = gradient of the row's loss)

Self-influence ``(1/N) g_j^T H^{-1} g_j >= 0`` is the predicted increase of row j's own loss when it
is left out: rows the model can only fit by memorising them (atypical or mislabelled) score high.

Solves are exact: a dense Cholesky factor when the parameter count is small, otherwise conjugate
gradient on Hessian-vector products (never a dense Hessian: for K=77, D=384 it would take 7 GB),
preconditioned with the exact per-class diagonal blocks of the Hessian. Self-influence for every
row at that size uses those blocks as the Hessian (an approximation, measured against the exact
answer in tests/test_influence.py and bench/results/influence.md) and then recomputes the highest
rows exactly.

Memory: the model keeps the embeddings it is given (a memory-mapped float32 ``.npy`` stays on disk)
and every pass over the rows (the fit's loss and gradient, the probabilities, Hessian-vector
products, the Hessian blocks, self-influence) reads them in blocks of :data:`ROW_BLOCK` rows,
augmented with the bias column per block: no (N, D+1) float64 copy (3.1 GB at 1M x 384), only
O(N K) arrays (probabilities, residuals). Up to ``ROW_BLOCK`` rows a pass is one block, the same
products as one whole-array pass.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import linalg, optimize

from labelaudit.dynamics import training_population
from labelaudit.progress import ProgressFn, no_progress

#: Default L2 strength (on the mean loss) of the influence model.
DEFAULT_L2 = 1e-3
#: Up to this many parameters K*(D+1) the Hessian is formed densely and factorised (<= 288 MB).
MAX_DENSE_PARAMS = 6000
#: Relative residual at which conjugate gradient stops (the solve is then exact to ~1e-8).
CG_RTOL = 1e-8
#: Rows per block of every pass over the rows (25 MB of float32 / 50 MB of float64 at D = 384).
ROW_BLOCK = 16_384


def _blocks(n: int, block: int | None = None) -> list[tuple[int, int]]:
    b = block or ROW_BLOCK
    return [(s, min(s + b, n)) for s in range(0, n, b)] or [(0, 0)]


def augment(embeddings: np.ndarray) -> np.ndarray:
    """float64 (N, D+1): the embeddings with a trailing column of ones (the bias input)."""
    x = np.asarray(embeddings, dtype=np.float64)
    return np.hstack([x, np.ones((len(x), 1))])


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of (…, K) logits, numerically stable."""
    z = logits - logits.max(axis=-1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=-1, keepdims=True)
    return z


def _loss_and_grad(
    w_flat: np.ndarray, xa: np.ndarray, onehot: np.ndarray, weights: np.ndarray, l2: float
) -> tuple[float, np.ndarray]:
    n, k = onehot.shape
    w = w_flat.reshape(k, xa.shape[1])
    logits = xa @ w.T
    m = logits.max(axis=1, keepdims=True)
    lse = m[:, 0] + np.log(np.exp(logits - m).sum(axis=1))
    ce = lse - (logits * onehot).sum(axis=1)
    p = np.exp(logits - lse[:, None])
    loss = float((weights * ce).sum() / n + 0.5 * l2 * (w * w).sum())
    grad = ((p - onehot) * weights[:, None]).T @ xa / n + l2 * w
    return loss, grad.ravel()


def _loss_and_grad_blocks(
    w_flat: np.ndarray,
    x: np.ndarray,
    labels: np.ndarray,
    weights: np.ndarray,
    l2: float,
    block: int | None = None,
) -> tuple[float, np.ndarray]:
    """:func:`_loss_and_grad` of the augmented ``x`` (N, D) and one-hot ``labels``, summed over row
    blocks (each block augmented and made float64 on its own): the same loss and gradient without
    the (N, D+1) float64 copy and the (N, K) one-hot; one block is :func:`_loss_and_grad` itself."""
    n, d1 = len(x), x.shape[1] + 1
    k = len(w_flat) // d1
    w = w_flat.reshape(k, d1)
    ce_sum = 0.0
    grad = np.zeros((k, d1))
    for s, e in _blocks(n, block):
        xa = augment(x[s:e])
        logits = xa @ w.T
        m = logits.max(axis=1, keepdims=True)
        lse = m[:, 0] + np.log(np.exp(logits - m).sum(axis=1))
        rows = np.arange(e - s)
        ce = lse - logits[rows, labels[s:e]]
        p = np.exp(logits - lse[:, None])
        p[rows, labels[s:e]] -= 1.0
        ce_sum += float((weights[s:e] * ce).sum())
        grad += (p * weights[s:e, None]).T @ xa
    loss = float(ce_sum / n + 0.5 * l2 * (w * w).sum())
    return loss, (grad / n + l2 * w).ravel()


def fit_softmax_head(
    embeddings: np.ndarray,
    labels: np.ndarray,
    *,
    n_classes: int,
    l2: float = DEFAULT_L2,
    sample_weight: np.ndarray | None = None,
    init: np.ndarray | None = None,
    gtol: float = 1e-9,
    max_iter: int = 2000,
) -> np.ndarray:
    """Weights (K, D+1) minimising the L2-regularised mean cross-entropy (L-BFGS, deterministic).

    ``embeddings``: (N, D); ``labels``: int (N,) in [0, K); ``sample_weight``: (N,) >= 0 (a weight of
    0 leaves a row out while keeping the 1/N scaling, as in leave-one-out influence checks).

    The loss and gradient are summed over row blocks (:func:`_loss_and_grad_blocks`): ``embeddings``
    is read as given (memory-mapped stays on disk), never copied whole.

    >>> W = fit_softmax_head(np.eye(3), np.array([0, 1, 2]), n_classes=3)
    >>> W.shape
    (3, 4)
    """
    x = np.asarray(embeddings)
    labels = np.asarray(labels, dtype=np.int64)
    weights = (
        np.ones(len(x)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    )
    w0 = (
        np.zeros(n_classes * (x.shape[1] + 1))
        if init is None
        else np.asarray(init, dtype=np.float64).ravel()
    )
    res = optimize.minimize(
        _loss_and_grad_blocks,
        w0,
        args=(x, labels, weights, l2),
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": max_iter, "gtol": gtol, "ftol": 0.0, "maxcor": 30},
    )
    return res.x.reshape(n_classes, x.shape[1] + 1)


def per_row_loss(weights: np.ndarray, embeddings: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Cross-entropy of each row under ``weights`` (K, D+1): float64 (N,)."""
    p = row_probs(weights, embeddings)
    return -np.log(np.clip(p[np.arange(len(p)), labels], 1e-300, None))


def row_probs(weights: np.ndarray, embeddings: np.ndarray) -> np.ndarray:
    """float64 (N, K) softmax of ``augment(embeddings) @ weights.T``, computed in row blocks."""
    x = np.asarray(embeddings)
    out = np.empty((len(x), weights.shape[0]))
    for s, e in _blocks(len(x)):
        out[s:e] = softmax(augment(x[s:e]) @ weights.T)
    return out


def conjugate_gradient(
    matvec, rhs: np.ndarray, *, precondition=None, rtol: float = CG_RTOL, max_iter: int = 500
) -> tuple[np.ndarray, int]:
    """Solve ``A x = b`` for a batch of right-hand sides with (preconditioned) conjugate gradient.

    ``matvec`` and ``precondition`` map arrays shaped like ``rhs`` (B, …) to the same shape, one
    system per leading index; ``A`` must be symmetric positive definite. Stops when every system's
    residual norm is below ``rtol`` times its right-hand side's. Returns ``(x, iterations)``.
    """
    prec = precondition or (lambda v: v)
    axes = tuple(range(1, rhs.ndim))

    def dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return (a * b).sum(axis=axes)

    def col(v: np.ndarray) -> np.ndarray:
        return v.reshape((-1,) + (1,) * (rhs.ndim - 1))

    x = np.zeros_like(rhs)
    r = rhs.copy()
    z = prec(r)
    p = z.copy()
    rz = dot(r, z)
    bnorm = np.sqrt(dot(rhs, rhs))
    bnorm[bnorm == 0] = 1.0
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 (the count is returned)
        ap = matvec(p)
        alpha = rz / np.maximum(dot(p, ap), 1e-300)
        x += col(alpha) * p
        r -= col(alpha) * ap
        if (np.sqrt(dot(r, r)) <= rtol * bnorm).all():
            break
        z = prec(r)
        rz_new = dot(r, z)
        p = z + col(rz_new / np.maximum(rz, 1e-300)) * p
        rz = rz_new
    return x, it


@dataclass
class InfluenceModel:
    """A trained softmax head with exact Hessian solves, for influence queries.

    Build with :meth:`fit`. ``weights`` (K, D+1); ``x`` (N, D) training embeddings, kept as given
    (read in row blocks, augmented per block); ``labels`` (N,); ``probs`` (N, K) in-sample
    probabilities at the optimum.
    """

    weights: np.ndarray
    x: np.ndarray
    labels: np.ndarray
    l2: float
    probs: np.ndarray = field(init=False)
    _chol: tuple | None = field(default=None, init=False, repr=False)
    _block_chol: np.ndarray | None = field(default=None, init=False, repr=False)
    stats: dict = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self.probs = row_probs(self.weights, self.x)

    @property
    def xa(self) -> np.ndarray:
        """float64 (N, D+1): the augmented embeddings, a whole copy (small data and checks only)."""
        return augment(self.x)

    def _rows(self, s: int, e: int, dtype: type = np.float64) -> np.ndarray:
        """Rows s:e augmented with the bias column, in ``dtype``."""
        xb: np.ndarray = np.asarray(self.x[s:e], dtype=dtype)
        return np.hstack([xb, np.ones((len(xb), 1), dtype=dtype)])

    @classmethod
    def fit(
        cls,
        embeddings: np.ndarray,
        labels: np.ndarray,
        *,
        n_classes: int,
        l2: float = DEFAULT_L2,
        weights: np.ndarray | None = None,
    ) -> InfluenceModel:
        """Train the head on (embeddings (N, D), labels (N,)) — or take trained ``weights`` — and wrap it."""
        labels = np.asarray(labels, dtype=np.int64)
        w = (
            fit_softmax_head(embeddings, labels, n_classes=n_classes, l2=l2)
            if weights is None
            else weights
        )
        return cls(
            weights=np.asarray(w, dtype=np.float64), x=np.asarray(embeddings), labels=labels, l2=l2
        )

    # ------------------------------------------------------------------ shapes
    @property
    def n(self) -> int:
        return len(self.x)

    @property
    def k(self) -> int:
        return self.weights.shape[0]

    @property
    def n_params(self) -> int:
        return self.weights.size

    @property
    def residuals(self) -> np.ndarray:
        """(N, K) ``p_i - e_{y_i}``: row i's loss gradient is ``outer(residuals[i], xa[i])``."""
        r = self.probs.copy()
        r[np.arange(self.n), self.labels] -= 1.0
        return r

    def gradients(self, embeddings: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """Loss gradients of any rows (M, D) with labels (M,) at the optimum: (M, K, D+1)."""
        xa = augment(np.atleast_2d(embeddings))
        r = softmax(xa @ self.weights.T)
        r[np.arange(len(r)), np.asarray(labels)] -= 1.0
        return r[:, :, None] * xa[:, None, :]

    # ------------------------------------------------------------------ Hessian
    def hvp(self, v: np.ndarray) -> np.ndarray:
        """Hessian times a batch of directions ``v`` (B, K, D+1) -> (B, K, D+1); never forms H."""
        out = np.zeros_like(v, dtype=np.float64)
        for s, e in _blocks(self.n):
            xa = self._rows(s, e)
            z = np.einsum("bkd,nd->bnk", v, xa, optimize=True)  # (B, rows, K) = V x_i
            p = self.probs[None, s:e]
            az = p * z - p * (p * z).sum(axis=2, keepdims=True)  # A_i z without forming A_i
            out += np.einsum("bnk,nd->bkd", az, xa, optimize=True)
        return out / self.n + self.l2 * v

    def dense_hessian(self) -> np.ndarray:
        """The (P, P) Hessian, P = K*(D+1), parameters ordered as ``weights.ravel()``."""
        n, d1 = self.n, self.x.shape[1] + 1
        k = self.k
        blocks = np.zeros((k, d1, k, d1))
        for s, e in _blocks(n):
            xa, probs = self._rows(s, e), self.probs[s:e]
            for a in range(k):
                coef = -probs[:, a : a + 1] * probs  # A_i[a, :] = p_a (e_a - p)
                coef[:, a] += probs[:, a]
                blocks[a] += np.einsum("nd,nl,ne->dle", xa, coef, xa, optimize=True)
        blocks /= n
        h = blocks.reshape(k * d1, k * d1)
        h[np.diag_indices_from(h)] += self.l2
        return h

    def block_hessians(self) -> np.ndarray:
        """The K diagonal blocks of the Hessian, (K, D+1, D+1): ``X^T diag(p_k (1-p_k)) X / N + l2 I``.

        Products in float32 per row block (twice the speed of float64 products; relative error
        ~1e-6, harmless for a preconditioner and for the block approximation), summed over the
        blocks in float64.
        """
        from labelaudit.dynamics import map_on_cores

        d1 = self.x.shape[1] + 1
        c = (self.probs * (1 - self.probs) / self.n).astype(np.float32)
        out = np.zeros((self.k, d1, d1))

        def block(a: int) -> None:  # the classes are independent: on every core
            for s, e in _blocks(self.n):
                x32 = self._rows(s, e, np.float32)
                out[a] += (x32 * c[s:e, a : a + 1]).T @ x32
            out[a][np.diag_indices(d1)] += self.l2

        map_on_cores(block, range(self.k))
        return out

    def _blocks_factor(self) -> np.ndarray:
        if self._block_chol is None:
            self._block_chol = np.linalg.cholesky(self.block_hessians())
        return self._block_chol

    def _block_solve(self, v: np.ndarray) -> np.ndarray:
        """Apply the inverse block-diagonal Hessian to (B, K, D+1)."""
        chol = self._blocks_factor()
        out = np.empty_like(v)
        for a in range(self.k):
            out[:, a] = linalg.cho_solve((chol[a], True), v[:, a].T).T
        return out

    def use_dense(self) -> bool:
        return self.n_params <= MAX_DENSE_PARAMS

    def solve(self, g: np.ndarray, *, rtol: float = CG_RTOL) -> np.ndarray:
        """Exact ``H^{-1} g`` for a batch g (B, K, D+1): dense Cholesky or preconditioned CG."""
        g = np.asarray(g, dtype=np.float64)
        if self.use_dense():
            if self._chol is None:
                self._chol = linalg.cho_factor(self.dense_hessian())
            flat = g.reshape(len(g), -1).T
            return linalg.cho_solve(self._chol, flat).T.reshape(g.shape)
        x, iters = conjugate_gradient(self.hvp, g, precondition=self._block_solve, rtol=rtol)
        self.stats["cg_iterations"] = iters
        return x

    # ------------------------------------------------------------------ influence
    def influence_on(self, query_embedding: np.ndarray, query_label: int) -> np.ndarray:
        """Influence of every training row on one query row: float64 (N,), positive = helpful.

        One exact solve ``u = H^{-1} g_q``, then ``(1/N) g_j . u`` for all j via the closed-form
        gradients (cost O(N K D)).

        >>> m = InfluenceModel.fit(np.eye(4), np.array([0, 1, 0, 1]), n_classes=2)
        >>> m.influence_on(np.eye(4)[0], 0).shape
        (4,)
        """
        g = self.gradients(query_embedding, np.array([int(query_label)]))
        u = self.solve(g)[0]  # (K, D+1)
        r = self.residuals
        out = np.empty(self.n)
        for s, e in _blocks(self.n):
            out[s:e] = np.einsum("nk,nk->n", r[s:e], self._rows(s, e) @ u.T)
        return out / self.n

    def self_influence(
        self,
        *,
        exact_top: int = 0,
        progress: ProgressFn = no_progress,
        batch: int = 64,
        time_budget: float | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Self-influence ``(1/N) g_j^T H^{-1} g_j`` of every training row, float64 (N,) >= 0.

        Exact (dense) when the parameters fit :data:`MAX_DENSE_PARAMS`. Otherwise the exact per-class
        diagonal blocks of H stand in for H, and the ``exact_top`` highest rows are then recomputed
        exactly by conjugate gradient (stopping early if ``time_budget`` seconds run out). Returns
        ``(values, exact)`` where ``exact`` (N,) bool marks the rows computed exactly.
        """
        r = self.residuals
        exact = np.zeros(self.n, dtype=bool)
        if self.use_dense():
            progress("self-influence", 0, self.n)
            if self._chol is None:
                self._chol = linalg.cho_factor(self.dense_hessian())
            out = np.empty(self.n)
            step = max(1, 200_000 // self.n_params)
            for s in range(0, self.n, step):
                g = (r[s : s + step, :, None] * self._rows(s, s + step)[:, None, :]).reshape(
                    -1, self.n_params
                )
                u = linalg.cho_solve(self._chol, g.T)
                out[s : s + step] = np.einsum("pb,bp->b", u, g)
                progress("self-influence", min(s + step, self.n), self.n)
            exact[:] = True
            return out / self.n, exact
        # Block approximation: g^T Hb^{-1} g = sum_k r_k^2 |L_k^{-1} x|^2, with L_k^{-1} formed once per
        # class so the N rows go through one matrix product (faster than N triangular solves).
        from labelaudit.dynamics import cpu_workers, map_on_cores

        chol = self._blocks_factor()
        eye = np.eye(self.x.shape[1] + 1)
        out = np.zeros(self.n)

        def norms(
            a: int,
        ) -> np.ndarray:  # |L_a^-1 x|^2 of every row, (N,), a block of rows at a time
            inv_t = linalg.solve_triangular(chol[a], eye, lower=True).T.astype(np.float32)
            q = np.empty(self.n)
            for s, e in _blocks(self.n):
                y = self._rows(s, e, np.float32) @ inv_t  # (rows, D+1)
                q[s:e] = np.einsum("nd,nd->n", y, y, dtype=np.float64)
            return q

        # The classes on every core, a few at a time (memory: one (N,) array per thread), summed in
        # class order: the same values as one class after the other.
        step = cpu_workers()
        for a0 in range(0, self.k, step):
            group = range(a0, min(a0 + step, self.k))
            for a, q in zip(group, map_on_cores(norms, group), strict=True):
                out += r[:, a] ** 2 * q
            progress("self-influence (block Hessian)", group[-1] + 1, self.k)
        out /= self.n
        top = np.argsort(-out, kind="stable")[:exact_top]
        started = time.monotonic()
        for s in range(0, len(top), batch):
            if time_budget is not None and time.monotonic() - started > time_budget:
                break
            rows = top[s : s + batch]
            g = r[rows, :, None] * augment(self.x[rows])[:, None, :]
            u = self.solve(g)
            out[rows] = (u * g).sum(axis=(1, 2)) / self.n
            exact[rows] = True
            progress("self-influence (exact, top rows)", min(s + batch, len(top)), len(top))
        return out, exact


def tracin(
    checkpoints: np.ndarray,
    learning_rates: np.ndarray,
    embeddings: np.ndarray,
    labels: np.ndarray,
    query_embedding: np.ndarray,
    query_label: int,
) -> np.ndarray:
    """TracIn (Pruthi et al. 2020) of every row on one query over saved checkpoints: float64 (N,).

    ``checkpoints``: (E, K, D+1) weights after each epoch; ``learning_rates``: (E,). Score_j =
    sum_t lr_t * g_q(t) . g_j(t); positive = helpful (a gradient step on j lowered the query's loss).
    For the softmax head ``g_q . g_j = (r_q . r_j)(x_q . x_j)``, so no gradient is materialised.
    """
    xa = augment(embeddings)
    xq = augment(np.atleast_2d(query_embedding))[0]
    xdot = xa @ xq
    out = np.zeros(len(xa))
    for w, lr in zip(checkpoints, learning_rates, strict=True):
        r = softmax(xa @ w.T)
        r[np.arange(len(r)), labels] -= 1.0
        rq = softmax(w @ xq)
        rq[query_label] -= 1.0
        out += lr * (r @ rq) * xdot
    return out


def tracin_self(
    checkpoints: np.ndarray, learning_rates: np.ndarray, embeddings: np.ndarray, labels: np.ndarray
) -> np.ndarray:
    """TracIn self-influence ``sum_t lr_t ||g_j(t)||^2`` of every row: float64 (N,) >= 0."""
    xa = augment(embeddings)
    xnorm = (xa * xa).sum(axis=1)
    out = np.zeros(len(xa))
    for w, lr in zip(checkpoints, learning_rates, strict=True):
        r = softmax(xa @ w.T)
        r[np.arange(len(r)), labels] -= 1.0
        out += lr * (r * r).sum(axis=1) * xnorm
    return out


# ---------------------------------------------------------------------- caching shared by detectors and pages
def cached_model(
    embeddings: np.ndarray,
    labels: np.ndarray,
    *,
    n_classes: int,
    l2: float = DEFAULT_L2,
    workspace=None,
) -> InfluenceModel:
    """:meth:`InfluenceModel.fit` whose weights are stored in ``workspace`` (if any) and memoised."""
    from labelaudit.dynamics import array_key, memoised
    from labelaudit.workspace import as_workspace

    workspace = as_workspace(workspace)
    emb = np.asarray(embeddings, np.float32)
    labels = np.asarray(labels, np.int64)
    key = array_key(emb, labels)
    params = {"l2": l2, "k": n_classes}

    def compute() -> InfluenceModel:
        fit = lambda: fit_softmax_head(emb, labels, n_classes=n_classes, l2=l2)  # noqa: E731
        w = workspace.cached(key, "influence-head", params, fit) if workspace is not None else fit()
        return InfluenceModel.fit(emb, labels, n_classes=n_classes, l2=l2, weights=w)

    return memoised(
        ("influence-model", key, l2, n_classes, str(getattr(workspace, "root", ""))), compute
    )


def influence_stored(
    embeddings: np.ndarray,
    labels: np.ndarray,
    *,
    n_classes: int,
    workspace,
    l2: float = DEFAULT_L2,
    exact_top: int = 0,
) -> bool:
    """Whether :func:`cached_model` and :func:`cached_self_influence` would load, not compute."""
    from labelaudit.dynamics import array_key

    key = array_key(np.asarray(embeddings, np.float32), np.asarray(labels, np.int64))
    return bool(
        workspace.has(key, "influence-head", {"l2": l2, "k": n_classes})
        and workspace.has(key, "self-influence", _self_influence_params(n_classes, l2, exact_top))
    )


def _self_influence_params(n_classes: int, l2: float, exact_top: int) -> dict:
    return {"l2": l2, "k": n_classes, "exact_top": exact_top, "dense_max": MAX_DENSE_PARAMS}


def cached_self_influence(
    embeddings: np.ndarray,
    labels: np.ndarray,
    *,
    n_classes: int,
    l2: float = DEFAULT_L2,
    exact_top: int = 0,
    workspace=None,
    progress: ProgressFn = no_progress,
) -> tuple[np.ndarray, np.ndarray]:
    """:meth:`InfluenceModel.self_influence` stored in ``workspace`` (if any): ``(values, exact)``."""
    from labelaudit.dynamics import array_key, memoised
    from labelaudit.workspace import as_workspace

    workspace = as_workspace(workspace)
    emb = np.asarray(embeddings, np.float32)
    labels = np.asarray(labels, np.int64)
    key = array_key(emb, labels)
    params = _self_influence_params(n_classes, l2, exact_top)

    def compute() -> tuple[np.ndarray, np.ndarray]:
        def run() -> np.ndarray:
            model = cached_model(emb, labels, n_classes=n_classes, l2=l2, workspace=workspace)
            values, exact = model.self_influence(exact_top=exact_top, progress=progress)
            return np.stack([values, exact.astype(np.float64)])

        both = (
            workspace.cached(key, "self-influence", params, run) if workspace is not None else run()
        )
        return both[0], both[1].astype(bool)

    return memoised(
        ("self-influence", key, tuple(sorted(params.items())), str(getattr(workspace, "root", ""))),
        compute,
    )


# ---------------------------------------------------------------------- dataset-level views (CLI and pages)
METHODS = ("influence", "tracin")


def query_row(ds, query_id: str) -> int:
    """Row index of ``query_id``; raises UsageError naming the id when it is not in the dataset."""
    from labelaudit.errors import UsageError

    row = ds.id_to_row.get(str(query_id))
    if row is None:
        raise UsageError(
            f"no row with id '{query_id}' in {ds.source} ({ds.n:,} rows); pass one of its ids"
        )
    return row


def influence_table(
    ds,
    embeddings: np.ndarray,
    query_id: str,
    *,
    method: str = "influence",
    l2: float = DEFAULT_L2,
    workspace=None,
) -> pd.DataFrame:
    """Influence of every training row on the row ``query_id``, most helpful first.

    ``embeddings``: (N, D) aligned with ``ds``. ``method``: ``"influence"`` (exact influence function
    of the L2 softmax head) or ``"tracin"`` (over the checkpoints of the training-dynamics run).
    Returns columns ``train_id, text, label, score, rank`` (score > 0 = helpful; rank 1 = most helpful).

    >>> influence_table(ds, emb, "42").head(3)                 # doctest: +SKIP
    """
    from labelaudit.dataset import ID, LABEL, TEXT
    from labelaudit.errors import UsageError

    if method not in METHODS:
        raise UsageError(f"unknown influence method '{method}'; choose one of {list(METHODS)}")
    q = query_row(ds, query_id)
    train = training_population(ds)
    emb = np.asarray(embeddings, dtype=np.float32)
    labels = ds.labels
    if method == "influence":
        model = cached_model(emb[train], labels[train], n_classes=ds.k, l2=l2, workspace=workspace)
        scores = model.influence_on(emb[q], int(labels[q]))
    else:
        from labelaudit.dynamics import cached_dynamics

        run = cached_dynamics(emb[train], labels[train], n_classes=ds.k, workspace=workspace)
        scores = tracin(
            run.checkpoints.astype(np.float64),
            run.learning_rates,
            emb[train],
            labels[train],
            emb[q],
            int(labels[q]),
        )
    frame = ds.frame.loc[train, [ID, TEXT, LABEL]].reset_index(drop=True)
    out = pd.DataFrame(
        {"train_id": frame[ID], "text": frame[TEXT], "label": frame[LABEL], "score": scores}
    )
    out = out.sort_values("score", ascending=False, kind="stable").reset_index(drop=True)
    out["rank"] = np.arange(1, len(out) + 1)
    return out


def external_influence_table(ds, query_id: str) -> pd.DataFrame | None:
    """Imported pair scores (``ds.pair_scores``) on ``query_id`` as the same columns, or None."""
    from labelaudit.dataset import LABEL, TEXT

    if ds.pair_scores is None:
        return None
    ps = ds.pair_scores[ds.pair_scores["query_id"] == str(query_id)]
    rows = ps["train_id"].map(ds.id_to_row)
    out = pd.DataFrame(
        {
            "train_id": ps["train_id"].to_numpy(),
            "text": ds.frame[TEXT].to_numpy()[rows],
            "label": ds.frame[LABEL].to_numpy()[rows],
            "score": ps["score"].to_numpy(dtype=float),
        }
    )
    out = out.sort_values("score", ascending=False, kind="stable").reset_index(drop=True)
    out["rank"] = np.arange(1, len(out) + 1)
    return out


def top_both_ways(table: pd.DataFrame, top: int) -> pd.DataFrame:
    """The ``top`` most helpful and ``top`` most harmful rows of a sorted influence table, with a
    ``direction`` column (helpful / harmful), still sorted by score."""
    helpful = table.head(top)
    harmful = table.iloc[max(top, len(table) - top) :]
    out = pd.concat([helpful, harmful]).drop_duplicates("train_id")
    out["direction"] = np.where(out["score"] > 0, "helpful", "harmful")
    return out.reset_index(drop=True)
