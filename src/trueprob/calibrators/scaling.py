"""Linear recalibration maps fitted by maximum likelihood: vector, matrix and Dirichlet scaling.

Each map sends a row's scores x_i (length K) to calibrated log-probabilities

    log r_i = log_softmax(W x_i + b)

with, in SPEC.md's notation,

- vector scaling (Guo et al. 2017): x_i = z_i (logits, or log q_i), W = diag(w);
- matrix scaling (Guo et al. 2017): x_i = z_i, W a full K x K matrix;
- Dirichlet calibration (Kull et al. 2019): x_i = log q_i (log_softmax of the logits, or the
  log of the given probabilities), W a full K x K matrix.

(W, b) minimise the penalised weighted NLL

    F(W, b) = (1/W_tot) sum_i w_i [ logsumexp(W x_i + b) - t_i . (W x_i + b) ] + penalty,

t_i the one-hot, soft or normalised-count target (the multinomial likelihood). Penalties
(lambda = ``reg_lambda``, mu = ``reg_mu``, defaulting to lambda):

- ``reg="l2"``: lambda / (K (K + 1)) * ( sum_jk (W - I)_jk^2 + sum_j b_j^2 ), a pull towards
  the identity map (dirichletcal's ``reg_format="identity"`` with ``reg_norm=True``; for vector
  scaling the sum runs over the K diagonal entries and the normaliser is 2K);
- ``reg="odir"`` (Kull et al. 2019, "off-diagonal and intercept regularisation"):
  lambda / (K (K - 1)) * sum_{j != k} W_jk^2 + mu / K * sum_j b_j^2.

F is convex; it is minimised by trust-region Newton-CG (scipy's ``trust-ncg``) with the exact
gradient and exact Hessian-vector products, then polished by plain Newton steps (dense exact
Hessian for few parameters, conjugate gradients otherwise), to a gradient norm below ``tol``.
softmax is unchanged by adding u_k to column k of W for all rows and c to every b_j, so without a
penalty on them the optimum is a set; a gauge term that no prediction sees then picks its
member closest to the identity (columns of W - I and b centred), which keeps the Hessian
non-singular. ``reg_lambda="cv"`` picks lambda (and mu = lambda)
from a log grid by k-fold cross-validated NLL, then refits on all rows.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
from scipy.optimize import minimize

from trueprob._array import device
from trueprob.calibrators._fitdata import FitData, fit_arrays, predict_inputs
from trueprob.calibrators.base import Calibrator, CalibratorFormatError
from trueprob.calibrators.temperature import (
    DegenerateFitWarning,
    _check_kind_k,
    _check_scalar,
    _logsumexp,
)

#: weight of the gauge term (see ``_Objective.gauge``); any positive value gives the same map
GAUGE = 1.0
#: the default grid of ``reg_lambda="cv"``
LAMBDA_GRID = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0)
_REGS = ("l2", "odir")


def _log_softmax(x: np.ndarray) -> np.ndarray:
    m = x.max(axis=1, keepdims=True)
    s = x - m
    return s - np.log(np.exp(s).sum(axis=1, keepdims=True))


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


class _LinearScaling(Calibrator):
    """Shared fitting and prediction of the linear maps (see the module docstring)."""

    _diagonal: ClassVar[bool] = False
    _log_softmax_input: ClassVar[bool] = False
    _fitted_attrs: ClassVar[tuple[str, ...]] = (
        "coef_", "intercept_", "kind_", "n_classes_", "reg_lambda_", "converged_", "n_iter_",
        "nll_before_", "nll_after_",
    )

    reg: str
    reg_lambda: float | str
    reg_mu: float | None
    cv: int
    lambda_grid: tuple[float, ...] | list[float] | None
    random_state: int
    tol: float
    max_iter: int

    # ------------------------------------------------------------------ parameters
    def _check_params(self) -> None:
        if self.reg not in _REGS:
            raise ValueError(f"reg must be one of {list(_REGS)}; got {self.reg!r}")
        lam = self.reg_lambda
        if not (lam == "cv" or (_is_number(lam) and float(lam) >= 0)):
            raise ValueError(f"reg_lambda must be a number >= 0 or 'cv'; got {lam!r}")
        mu = self.reg_mu
        if mu is not None and not (_is_number(mu) and float(mu) >= 0):
            raise ValueError(f"reg_mu must be None (same as reg_lambda) or a number >= 0; "
                             f"got {mu!r}")
        if isinstance(self.cv, bool) or not isinstance(self.cv, int) or self.cv < 2:
            raise ValueError(f"cv must be an integer >= 2 (folds); got {self.cv!r}")
        grid = self.lambda_grid
        if grid is not None and (isinstance(grid, str) or len(grid) == 0 or not all(
                _is_number(v) and float(v) >= 0 for v in grid)):
            raise ValueError(f"lambda_grid must be None or a non-empty list of numbers >= 0; "
                             f"got {grid!r}")
        if not (_is_number(self.tol) and float(self.tol) > 0):
            raise ValueError(f"tol must be a number > 0; got {self.tol!r}")
        if isinstance(self.max_iter, bool) or not isinstance(self.max_iter, int) \
                or self.max_iter < 1:
            raise ValueError(f"max_iter must be a positive integer; got {self.max_iter!r}")
        if isinstance(self.random_state, bool) or not isinstance(self.random_state, int):
            raise ValueError(f"random_state must be an integer; got {self.random_state!r}")

    # ------------------------------------------------------------------ fit
    def fit(
        self, labels: Any = None, /, *, logits: Any = None, probs: Any = None,
        targets: Any = None, counts: Any = None, sample_weight: Any = None,
    ) -> _LinearScaling:
        """Fit (W, b) on a calibration set; returns self.

        Exactly one of ``logits`` / ``probs`` (N, K) (or (N,) for binary) and one of
        ``labels`` (N,), ``targets`` (N, K) or ``counts`` (N, K); ``sample_weight`` (N,) is
        optional. Errors are those of :func:`trueprob.evaluate`.
        """
        self._check_params()
        data = fit_arrays(labels, logits=logits, probs=probs, targets=targets, counts=counts,
                          sample_weight=sample_weight)
        self.kind_ = data.kind
        self.n_classes_ = data.n_classes
        x = self._inputs(data.scores, data.kind)
        if self.reg_lambda == "cv":
            lam = self._cross_validate(x, data)
        else:
            lam = float(self.reg_lambda)
        obj = self._objective(x, data, None, lam)
        theta, converged, n_iter = _minimise(obj, obj.identity(), float(self.tol),
                                             self.max_iter)
        if not converged:
            warnings.warn(
                f"{type(self).__name__} did not reach a gradient norm of tol={self.tol!r} in "
                f"max_iter={self.max_iter} iterations", DegenerateFitWarning, stacklevel=2)
        w, b = obj.unpack(theta)
        self.coef_ = np.array(w, dtype=np.float64)
        self.intercept_ = np.array(b, dtype=np.float64)
        self.reg_lambda_ = lam
        self.converged_ = converged
        self.n_iter_ = n_iter
        self.nll_before_ = obj.nll(obj.identity())
        self.nll_after_ = obj.nll(theta)
        return self

    def _objective(self, x: np.ndarray, data: FitData, rows: np.ndarray | None,
                   lam: float) -> _Objective:
        mu = lam if self.reg_mu is None else float(self.reg_mu)
        return _Objective(x, data, rows, diagonal=self._diagonal, reg=self.reg, lam=lam, mu=mu)

    def _inputs(self, scores: Any, kind: str) -> Any:
        """x_i of the map: the scores, or log-probabilities for Dirichlet calibration."""
        if self._log_softmax_input and kind == "logits":
            if isinstance(scores, np.ndarray):
                return _log_softmax(scores)
            from trueprob._array import namespace

            xp = namespace(scores)
            return scores - _logsumexp(xp, scores)
        return scores

    def _cross_validate(self, x: np.ndarray, data: FitData) -> float:
        """reg_lambda by k-fold cross-validated NLL (grid scanned from large to small)."""
        grid = sorted({float(v) for v in (self.lambda_grid or LAMBDA_GRID)}, reverse=True)
        n = data.n_rows
        if n < self.cv:
            raise ValueError(f"reg_lambda='cv' needs at least cv={self.cv} rows; got {n}")
        order = np.random.default_rng(self.random_state).permutation(n)
        folds = np.array_split(order, self.cv)
        scores = np.zeros(len(grid))
        for held in folds:
            train = np.setdiff1d(order, held, assume_unique=True)
            test_obj = self._objective(x, data, held, 0.0)
            theta = None
            for j, lam in enumerate(grid):
                obj = self._objective(x, data, train, lam)
                start = obj.identity() if theta is None else theta  # warm start
                theta, _, _ = _minimise(obj, start, float(self.tol), self.max_iter)
                share = float(data.weights[held].sum() / data.weights.sum())
                scores[j] += share * test_obj.nll(theta)
        self.cv_nll_ = scores
        best = int(np.argmin(scores))  # first minimum: ties go to the larger lambda
        return grid[best]

    # ------------------------------------------------------------------ predict
    def predict_logproba(
        self, *, logits: Any = None, probs: Any = None,
    ) -> Any:
        """Calibrated log-probabilities log_softmax(W x_i + b), in the input's namespace/dtype.

        x_i are the logits (or log q_i) for vector and matrix scaling, which must be given
        in the form they were fitted on; Dirichlet calibration takes either (its x_i is the
        log-probability vector in both cases). (N,) binary inputs give (N, 2) outputs.
        """
        self._check_fitted()
        xp, s, kind = predict_inputs(logits=logits, probs=probs)
        name = type(self).__name__
        if int(s.shape[1]) != self.n_classes_:
            raise ValueError(f"the scores have K={int(s.shape[1])} columns but this {name} was "
                             f"fitted with K={self.n_classes_}")
        if not self._log_softmax_input and kind != self.kind_:
            raise ValueError(f"this {name} was fitted on {self.kind_}; pass {self.kind_}=, "
                             f"not {kind}= (the map is not the same on the other scale)")
        x = self._inputs(s, kind)
        w = xp.asarray(self.coef_, dtype=s.dtype, device=device(s))
        b = xp.asarray(self.intercept_, dtype=s.dtype, device=device(s))
        out = x * w if self._diagonal else x @ xp.permute_dims(w, (1, 0))
        out = out + b
        return out - _logsumexp(xp, out)

    # ------------------------------------------------------------------ persistence
    def _check_loaded(self) -> None:
        _check_kind_k(self)
        k = self.n_classes_
        shape = (k,) if self._diagonal else (k, k)
        for name, want in (("coef_", shape), ("intercept_", (k,))):
            value = getattr(self, name)
            if not isinstance(value, np.ndarray) or value.shape != want \
                    or value.dtype != np.float64 or not np.all(np.isfinite(value)):
                got = value.shape if isinstance(value, np.ndarray) else type(value).__name__
                raise CalibratorFormatError(
                    f"{name} must be a finite float64 array of shape {want}; got {got}")
        lam = self.reg_lambda_
        if not _is_number(lam) or not float(lam) >= 0:
            raise CalibratorFormatError(f"reg_lambda_ must be a number >= 0; got {lam!r}")
        self.reg_lambda_ = float(lam)
        _check_scalar(self, "converged_", bool)
        _check_scalar(self, "n_iter_", int)
        _check_scalar(self, "nll_before_", float)
        _check_scalar(self, "nll_after_", float)
        try:
            self._check_params()
        except ValueError as exc:
            raise CalibratorFormatError(f"params: {exc}") from exc

    def to_torch(self) -> Any:
        """A ``torch.nn.Module`` mapping logits (or probabilities, when fitted on ``probs=``)
        to the calibrated log-probabilities of :meth:`predict_logproba`."""
        from trueprob.calibrators._torch import linear_module

        self._check_fitted()
        return linear_module(self.coef_, self.intercept_, self.kind_,
                             log_softmax_input=self._log_softmax_input and self.kind_ == "logits")


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool) \
        and math.isfinite(float(x))


_PARAMS_DOC = """
    Parameters
    ----------
    reg : {"l2", "odir"}
        The penalty (module docstring): "l2" pulls the map towards the identity; "odir"
        penalises off-diagonal weights and intercepts (Kull et al. 2019).
    reg_lambda : float or "cv"
        lambda, or "cv" to choose it (with mu = lambda unless ``reg_mu`` is set) from
        ``lambda_grid`` by ``cv``-fold cross-validated NLL.
    reg_mu : float or None
        mu, the intercept penalty of "odir" (None: equal to lambda).
    cv : int
        Folds of ``reg_lambda="cv"`` (rows shuffled with ``random_state``).
    lambda_grid : list of float or None
        Candidates of ``reg_lambda="cv"`` (None: 1e-4, 1e-3, ..., 1e3).
    random_state : int
        Seed of the fold assignment.
    tol : float
        Stop when the gradient norm of F is below tol * (1 + p ||theta||), p the largest
        penalty weight (the gradient's own rounding grows with p).
    max_iter : int
        Most trust-region iterations.

    Attributes
    ----------
    coef_ : ndarray
        W: (K, K), or the diagonal (K,) for vector scaling.
    intercept_ : ndarray (K,)
        b.
    kind_ : {"logits", "probs"}
        What the map was fitted on.
    n_classes_ : int
        K.
    reg_lambda_ : float
        The lambda used (chosen by cross-validation for ``reg_lambda="cv"``; the held-out
        NLL of each grid value is then in ``cv_nll_``, not saved).
    converged_ : bool
        Whether the gradient norm reached ``tol``.
    n_iter_ : int
        Trust-region iterations of the final fit.
    nll_before_, nll_after_ : float
        Weighted NLL (nats per row, no penalty) of the fit set under the identity map and
        under the fitted map.
"""


class VectorScaling(_LinearScaling):
    __doc__ = """Vector scaling (Guo et al. 2017): r_i = softmax(w * x_i + b), x_i the logits.

    K weights and K intercepts fitted by penalised maximum likelihood (module docstring);
    ``reg="l2"`` with lambda pulls (w, b) towards (1, 0).
    """ + _PARAMS_DOC + """
    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=(2000, 3)) * 2
    >>> y = np.array([rng.choice(3, p=np.exp(r) / np.exp(r).sum()) for r in z])
    >>> vs = VectorScaling().fit(y, logits=3 * z)   # logits made 3x too large
    >>> np.round(1 / vs.coef_)
    array([3., 3., 3.])
    """

    _diagonal = True

    def __init__(self, *, reg: str = "l2", reg_lambda: float | str = 0.0,
                 reg_mu: float | None = None, cv: int = 5,
                 lambda_grid: list[float] | None = None, random_state: int = 0,
                 tol: float = 1e-9, max_iter: int = 200) -> None:
        self.reg = reg
        self.reg_lambda = reg_lambda
        self.reg_mu = reg_mu
        self.cv = cv
        self.lambda_grid = lambda_grid
        self.random_state = random_state
        self.tol = tol
        self.max_iter = max_iter

    def fit_passes(self, run_pass: Callable[[np.ndarray, np.ndarray], np.ndarray], *,
                   kind: str, n_classes: int) -> VectorScaling:
        """Fit on data seen only through passes; returns self.

        ``run_pass(w, b)`` returns the sums of :func:`trueprob.streaming.vector_sums` at
        (w, b) added over all rows: [W, sum_i w_i f_i, gradient (2K), Hessian (2K x 2K)]
        (``kind``: "logits", or "probs" for scores that are floored log-probabilities). F
        and the solver are those of :meth:`fit` (trust-region Newton on the exact Hessian of
        each pass, then Newton steps); each new point is one pass, so ``n_iter_`` counts the
        passes. ``reg_lambda`` must be a number: cross-validation needs the rows in memory.
        """
        self._check_params()
        if self.reg_lambda == "cv":
            raise ValueError("reg_lambda='cv' needs the rows in memory; give a number for a "
                             "fit by passes")
        k = int(n_classes)
        lam = float(self.reg_lambda)
        mu = lam if self.reg_mu is None else float(self.reg_mu)
        obj = _Summed(run_pass, k, reg=self.reg, lam=lam, mu=mu)
        nll_before = obj.nll(obj.identity())
        theta, converged, _ = _minimise(obj, obj.identity(), float(self.tol), self.max_iter)
        if not converged:
            warnings.warn(f"VectorScaling did not reach a gradient norm of tol={self.tol!r} in "
                          f"max_iter={self.max_iter} passes", DegenerateFitWarning,
                          stacklevel=2)
        w, b = obj.unpack(theta)
        self.coef_ = np.array(w, dtype=np.float64)
        self.intercept_ = np.array(b, dtype=np.float64)
        self.kind_ = "logits" if kind == "logits" else "probs"
        self.n_classes_ = k
        self.reg_lambda_ = lam
        self.converged_ = converged
        self.nll_before_ = float(nll_before)
        self.nll_after_ = obj.nll(theta)
        self.n_iter_ = obj.passes
        return self


class MatrixScaling(_LinearScaling):
    __doc__ = """Matrix scaling (Guo et al. 2017): r_i = softmax(W x_i + b), x_i the logits, W full.

    K^2 + K parameters fitted by penalised maximum likelihood (module docstring). Without a
    penalty it overfits small calibration sets with many classes (Guo et al. 2017); ODIR
    with a cross-validated lambda is the default.
    """ + _PARAMS_DOC + """
    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=(2000, 3)) * 2
    >>> y = np.array([rng.choice(3, p=np.exp(r) / np.exp(r).sum()) for r in z])
    >>> ms = MatrixScaling(reg_lambda=0.0).fit(y, logits=z)   # already calibrated
    >>> bool(np.abs(ms.coef_ - np.eye(3)).max() < 0.15)
    True
    """

    def __init__(self, *, reg: str = "odir", reg_lambda: float | str = "cv",
                 reg_mu: float | None = None, cv: int = 5,
                 lambda_grid: list[float] | None = None, random_state: int = 0,
                 tol: float = 1e-9, max_iter: int = 200) -> None:
        self.reg = reg
        self.reg_lambda = reg_lambda
        self.reg_mu = reg_mu
        self.cv = cv
        self.lambda_grid = lambda_grid
        self.random_state = random_state
        self.tol = tol
        self.max_iter = max_iter


class DirichletCalibration(_LinearScaling):
    __doc__ = """Dirichlet calibration (Kull et al. 2019): r_i = softmax(W log q_i + b).

    log q_i is log_softmax of the logits, or the log of the given probabilities (zero
    floored), so a calibrator fitted on either applies to either. Parameters are fitted by
    penalised maximum likelihood (module docstring); ODIR with a cross-validated lambda is
    the default, as in Kull et al. 2019.
    """ + _PARAMS_DOC + """
    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=(2000, 3)) * 2
    >>> y = np.array([rng.choice(3, p=np.exp(r) / np.exp(r).sum()) for r in z])
    >>> dc = DirichletCalibration(reg_lambda=0.0).fit(y, logits=z / 2)  # under-confident
    >>> true = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    >>> bool(np.abs(dc.predict_proba(logits=z / 2) - true).mean() < 0.01)
    True
    """

    _log_softmax_input = True

    def __init__(self, *, reg: str = "odir", reg_lambda: float | str = "cv",
                 reg_mu: float | None = None, cv: int = 5,
                 lambda_grid: list[float] | None = None, random_state: int = 0,
                 tol: float = 1e-9, max_iter: int = 200) -> None:
        self.reg = reg
        self.reg_lambda = reg_lambda
        self.reg_mu = reg_mu
        self.cv = cv
        self.lambda_grid = lambda_grid
        self.random_state = random_state
        self.tol = tol
        self.max_iter = max_iter
