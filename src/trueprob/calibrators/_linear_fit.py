"""The objective of a linear recalibration map and its minimiser, shared by every executor.

F(theta) = (1/W) sum_i w_i [logsumexp(S_i) - t_i . S_i] + penalty (+ gauge), S_i = W x_i + b
(see :mod:`trueprob.calibrators.scaling`). :class:`_Objective` evaluates it on rows in memory;
:class:`_Summed` on sums over the rows computed by passes (streamed files, Dask partitions).
Both go through one solver, :func:`_minimise`: trust-region Newton-CG (scipy's ``trust-ncg``)
with exact Hessian-vector products, then plain Newton steps to the gradient's floor.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.optimize import minimize

from trueprob.calibrators._fitdata import FitData

#: weight of the gauge term (see ``_Objective.gauge``); any positive value gives the same map
GAUGE = 1.0


class _Penalised:
    """The parameters of a linear map and its penalty: theta = (W.ravel(), b) for a full W,
    (w, b) for a diagonal one; the penalty 0.5 (theta - c)' P (theta - c), P diagonal, and the
    gauge term (see :meth:`gauge`). The data term is the subclass's."""

    def __init__(self, k: int, *, diagonal: bool, reg: str, lam: float, mu: float) -> None:
        self.k = int(k)
        self.diagonal = diagonal
        k = self.k
        # penalty: 0.5 * theta' P theta - a' theta + const, P diagonal (stored as a vector)
        n_w = k if diagonal else k * k
        pw = np.zeros(n_w)
        pb = np.zeros(k)
        eye = np.ones(k) if diagonal else np.eye(k).ravel()
        if reg == "l2":
            c = lam / (2 * k) if diagonal else lam / (k * (k + 1))
            pw[:] = c
            pb[:] = c
            self.centre = np.concatenate([eye, np.zeros(k)])  # penalised distance from I
        else:  # odir: off-diagonal entries and the intercepts
            if not diagonal:
                off = 1.0 - np.eye(k).ravel()
                pw[:] = off * (lam / (k * (k - 1)))
            pb[:] = mu / k
            self.centre = np.zeros(n_w + k)
        self.pen = 2.0 * np.concatenate([pw, pb])  # Hessian diagonal of the penalty
        self.gauge_w = not np.any(pw) and not diagonal
        self.gauge_b = not np.any(pb)

    def unpack(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        k = self.k
        n_w = k if self.diagonal else k * k
        w = theta[:n_w] if self.diagonal else theta[:n_w].reshape(k, k)
        return w, theta[n_w:]

    def n_params(self) -> int:
        return int(self.pen.size)

    def identity(self) -> np.ndarray:
        k = self.k
        eye = np.ones(k) if self.diagonal else np.eye(k).ravel()
        return np.concatenate([eye, np.zeros(k)])

    def canonical(self, theta: np.ndarray) -> np.ndarray:
        """The member of theta's softmax-equivalence class closest to the identity, along the
        directions the penalty leaves free."""
        w, b = self.unpack(theta.copy())
        if self.gauge_w and not self.diagonal:
            dev = w - np.eye(self.k)
            w = w - dev.mean(axis=0, keepdims=True)
        if self.gauge_b:
            b = b - b.mean()
        return np.concatenate([np.ravel(w), b])

    def penalty(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """The penalty and gauge terms of F at theta: (value, gradient)."""
        d = theta - self.centre
        gd = self.gauge(theta - self.identity())
        return 0.5 * float(d @ (self.pen * d)) + 0.5 * float(gd @ gd) / GAUGE, \
            self.pen * d + gd

    def penalty_hess(self) -> np.ndarray:
        """The (constant) Hessian of the penalty and gauge terms."""
        h = np.diag(self.pen)
        if self.gauge_w or self.gauge_b:
            h += np.stack([self.gauge(e) for e in np.eye(h.shape[0])], axis=1)
        return h

    def gauge(self, d: np.ndarray) -> np.ndarray:
        """GAUGE * (projection of d onto the directions softmax ignores and no penalty fixes).

        Adding u_k to column k of W (for all rows) or c to every b_j leaves every softmax
        unchanged. Where the penalty leaves these directions free, F gets the extra term
        GAUGE / 2 * ||P (theta - I)||^2 (P this projection): it changes no prediction and no
        NLL, makes the Hessian non-singular, and picks the optimum closest to the identity.
        """
        out = np.zeros_like(d)
        if not (self.gauge_w or self.gauge_b):
            return out
        dw, db = self.unpack(d)
        ow, ob = self.unpack(out)
        if self.gauge_w:
            ow[...] = GAUGE * dw.mean(axis=0, keepdims=True)
        if self.gauge_b:
            ob[...] = GAUGE * db.mean()
        return out

class _Objective(_Penalised):
    """F(theta) of a linear map on fixed inputs: value, gradient, Hessian-vector products.

    Q = softmax(S) of the last point evaluated is cached for ``hessp`` (scipy asks for it at
    the point it just evaluated).
    """

    def __init__(self, x: np.ndarray, data: FitData, rows: np.ndarray | None, *,
                 diagonal: bool, reg: str, lam: float, mu: float) -> None:
        super().__init__(int(x.shape[1]), diagonal=diagonal, reg=reg, lam=lam, mu=mu)
        self.x = x if rows is None else x[rows]
        self.labels = data.labels if rows is None or data.labels is None \
            else data.labels[rows]
        self.soft = data.soft_targets if rows is None or data.soft_targets is None \
            else data.soft_targets[rows]
        w = data.weights if rows is None else data.weights[rows]
        self.w = w / w.sum()
        self._theta: np.ndarray | None = None
        self._q: np.ndarray | None = None

    def scores(self, theta: np.ndarray) -> np.ndarray:
        w, b = self.unpack(theta)
        s = self.x * w if self.diagonal else self.x @ w.T
        return s + b

    def nll(self, theta: np.ndarray) -> float:
        """The weighted NLL alone (no penalty)."""
        s = self.scores(theta)
        lse = _lse_rows(s)
        return float(self.w @ (lse - self._target_dot(s)))

    def _target_dot(self, s: np.ndarray) -> np.ndarray:
        if self.labels is not None:
            return np.take_along_axis(s, self.labels[:, None], axis=1)[:, 0]
        assert self.soft is not None
        return np.einsum("ij,ij->i", self.soft, s)

    def value_and_grad(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        s = self.scores(theta)
        lse = _lse_rows(s)
        f = float(self.w @ (lse - self._target_dot(s)))
        q = np.exp(s - lse[:, None])
        self._theta, self._q = theta.copy(), q
        g = q * self.w[:, None]  # dF/dS_i = w_i (q_i - t_i) / W
        if self.labels is not None:
            np.subtract.at(g, (np.arange(len(g)), self.labels), self.w)
        else:
            assert self.soft is not None
            g -= self.soft * self.w[:, None]
        grad = np.concatenate([self._weight_grad(g), g.sum(axis=0)])
        pf, pg = self.penalty(theta)
        return f + pf, grad + pg

    def _weight_grad(self, g: np.ndarray) -> np.ndarray:
        if self.diagonal:
            return np.einsum("ij,ij->j", g, self.x)
        return (g.T @ self.x).ravel()

    def hessp(self, theta: np.ndarray, v: np.ndarray) -> np.ndarray:
        if self._theta is None or not np.array_equal(theta, self._theta):
            self.value_and_grad(theta)
        q = self._q
        assert q is not None
        d = self.scores_of_direction(v)
        qd = q * d
        r = (qd - q * qd.sum(axis=1, keepdims=True)) * self.w[:, None]
        return np.concatenate([self._weight_grad(r), r.sum(axis=0)]) + self.pen * v \
            + self.gauge(v)

    def hess(self, theta: np.ndarray) -> np.ndarray:
        """The exact Hessian of F (dense; for few parameters).

        With phi_ijp the derivative of S_ij by parameter (j, p) (x_ip and 1 for a full W;
        x_ij and 1 for a diagonal one): H = sum_i w_i (delta_jl q_ij - q_ij q_il)
        phi_ijp phi_ilr / W, plus the penalty's diagonal.
        """
        if self._theta is None or not np.array_equal(theta, self._theta):
            self.value_and_grad(theta)
        q = self._q
        assert q is not None
        n, k = q.shape
        p = 2 if self.diagonal else k + 1
        h = np.zeros((k * p, k * p))
        block = np.zeros((k, p, p))
        rows = max(1, (1 << 22) // (k * p))  # bounded temporaries: (rows, K p) at a time
        for start in range(0, n, rows):
            stop = min(start + rows, n)
            x = self.x[start:stop]
            wq = q[start:stop] * self.w[start:stop, None]
            ones = np.ones((stop - start, 1))
            if self.diagonal:
                phi = np.stack([x, np.broadcast_to(ones, x.shape)], axis=2)  # (n, K, 2)
                a0, a1, a2 = wq.sum(axis=0), (wq * x).sum(axis=0), (wq * x * x).sum(axis=0)
                block += np.stack([np.stack([a2, a1], axis=1), np.stack([a1, a0], axis=1)],
                                  axis=1)
            else:
                xt = np.concatenate([x, ones], axis=1)
                phi = np.broadcast_to(xt[:, None, :], (stop - start, k, k + 1))
                block += np.stack([(xt * wq[:, j:j + 1]).T @ xt for j in range(k)])
            u = (q[start:stop, :, None] * phi).reshape(stop - start, k * p)
            h -= (u * self.w[start:stop, None]).T @ u
        for j in range(k):
            h[j * p:(j + 1) * p, j * p:(j + 1) * p] += block[j]
        # from the (j, p) order to theta's order: weights first, then intercepts
        if self.diagonal:
            order = np.concatenate([np.arange(k) * 2, np.arange(k) * 2 + 1])
        else:
            aa = np.arange(k * p) % p
            weights = (aa < k)
            order = np.concatenate([np.flatnonzero(weights), np.flatnonzero(~weights)])
        return h[np.ix_(order, order)] + self.penalty_hess()

    def scores_of_direction(self, v: np.ndarray) -> np.ndarray:
        vw, vb = self.unpack(v)
        s = self.x * vw if self.diagonal else self.x @ vw.T
        return s + vb


class _Summed(_Penalised):
    """F(theta) of vector scaling from sums over the rows: ``run_pass(w, b)`` returns
    [W, sum_i w_i f_i, gradient (2K), Hessian (2K x 2K)] of the data term at (w, b) (one pass
    over the data, e.g. :func:`trueprob.streaming.vector_sums` added over every part; the
    in-memory fit is the same sums over one chunk). Each new theta costs one pass; the
    Hessian of that pass answers every ``hessp`` at theta.
    """

    def __init__(self, run_pass: Callable[[np.ndarray, np.ndarray], np.ndarray], k: int, *,
                 reg: str, lam: float, mu: float) -> None:
        super().__init__(k, diagonal=True, reg=reg, lam=lam, mu=mu)
        self.run_pass = run_pass
        self.passes = 0
        self._seen: dict[bytes, tuple[float, np.ndarray, np.ndarray]] = {}

    def _at(self, theta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """(NLL, its gradient, its Hessian) at theta, from the pass at theta."""
        key = np.asarray(theta, dtype=np.float64).tobytes()
        if key not in self._seen:
            k = self.k
            sums = np.asarray(self.run_pass(theta[:k].copy(), theta[k:].copy()))
            self.passes += 1
            total = float(sums[0])
            if not total > 0:
                raise ValueError("sample_weight must not be all zero; the weights sum to 0")
            if len(self._seen) >= 8:  # scipy asks again only for its last few points
                self._seen.pop(next(iter(self._seen)))
            self._seen[key] = (float(sums[1]) / total, sums[2:2 + 2 * k] / total,
                               sums[2 + 2 * k:].reshape(2 * k, 2 * k) / total)
        return self._seen[key]

    def nll(self, theta: np.ndarray) -> float:
        return self._at(theta)[0]

    def value_and_grad(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        nll, grad, _ = self._at(theta)
        pf, pg = self.penalty(theta)
        return nll + pf, grad + pg

    def hess(self, theta: np.ndarray) -> np.ndarray:
        return self._at(theta)[2] + self.penalty_hess()

    def hessp(self, theta: np.ndarray, v: np.ndarray) -> np.ndarray:
        return self.hess(theta) @ v


def _lse_rows(s: np.ndarray) -> np.ndarray:
    m = s.max(axis=1)
    return m + np.log(np.exp(s - m[:, None]).sum(axis=1))


#: up to this many parameters, the final Newton polish solves with the dense Hessian
DENSE_HESSIAN_PARAMS = 300


def _minimise(obj: _Objective | _Summed, theta0: np.ndarray, tol: float,
              max_iter: int) -> tuple[np.ndarray, bool, int]:
    """Trust-region Newton-CG with exact Hessian-vector products (scipy's trust-ncg), then
    plain Newton steps; measured here, this beat trust-exact with the dense Hessian already
    for K = 10 matrix scaling (N P^2 per Hessian against 2 N P per product, P parameters)."""
    dense = obj.n_params() <= DENSE_HESSIAN_PARAMS
    res = minimize(obj.value_and_grad, theta0, jac=True, hessp=obj.hessp,
                   method="trust-ncg", options={"gtol": tol, "maxiter": max_iter})
    theta = res.x
    grad = obj.value_and_grad(theta)[1]
    # a strong penalty scales the gradient (and its rounding) up: measure tol against it
    tol = tol * (1.0 + float(obj.pen.max(initial=0.0)) * float(np.linalg.norm(theta)))
    # the trust region stops once predicted decreases of F fall below its rounding; plain
    # Newton steps (which only need the gradient) then take the gradient to its floor
    for _ in range(3):
        norm = float(np.linalg.norm(grad))
        if norm <= tol:
            break
        step = _newton_step(obj, theta, grad, dense)
        trial = theta + step
        trial_grad = obj.value_and_grad(trial)[1]
        if not np.linalg.norm(trial_grad) < norm:
            break
        theta, grad = trial, trial_grad
    converged = bool(np.linalg.norm(grad) <= tol)
    return obj.canonical(theta), converged, int(res.nit)


def _newton_step(obj: _Objective | _Summed, theta: np.ndarray, grad: np.ndarray,
                 dense: bool) -> np.ndarray:
    """-H^+ g: least squares with the dense Hessian, else conjugate gradients on H v."""
    if dense:
        return -np.linalg.lstsq(obj.hess(theta), grad, rcond=None)[0]
    from scipy.sparse.linalg import LinearOperator, cg

    n = grad.size
    op = LinearOperator((n, n), matvec=lambda v: obj.hessp(theta, v), dtype=np.float64)
    step, _ = cg(op, -grad, rtol=1e-12, maxiter=2 * n)
    return np.asarray(step)
