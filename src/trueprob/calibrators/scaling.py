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

F is convex; it is minimised (:mod:`trueprob.calibrators._linear_fit`, the one solver of
the in-memory fit and of the fits by passes) by trust-region Newton-CG (scipy's
``trust-ncg``) with the exact gradient and exact Hessian-vector products, then polished by
plain Newton steps (dense exact Hessian for few parameters, conjugate gradients otherwise), to
a gradient norm below ``tol``.
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

from trueprob._array import device
from trueprob.calibrators._fitdata import FitData, fit_arrays, predict_inputs
from trueprob.calibrators._linear_fit import (
    _minimise,
    _Objective,
    _Summed,
)
from trueprob.calibrators.base import Calibrator, CalibratorFormatError
from trueprob.calibrators.temperature import (
    DegenerateFitWarning,
    _check_kind_k,
    _check_scalar,
    check_k,
)
from trueprob.core.special import logsumexp

#: the default grid of ``reg_lambda="cv"``
LAMBDA_GRID = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0)
_REGS = ("l2", "odir")


def _log_softmax(x: np.ndarray) -> np.ndarray:
    m = x.max(axis=1, keepdims=True)
    s = x - m
    return s - np.log(np.exp(s).sum(axis=1, keepdims=True))


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
            return scores - logsumexp(xp, scores, axis=1, keepdims=True)
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
        check_k(s, self.n_classes_, name, kind)
        if not self._log_softmax_input and kind != self.kind_:
            raise ValueError(f"this {name} was fitted on {self.kind_}; pass {self.kind_}=, "
                             f"not {kind}= (the map is not the same on the other scale)")
        x = self._inputs(s, kind)
        w = xp.asarray(self.coef_, dtype=s.dtype, device=device(s))
        b = xp.asarray(self.intercept_, dtype=s.dtype, device=device(s))
        out = x * w if self._diagonal else x @ xp.permute_dims(w, (1, 0))
        out = out + b
        return out - logsumexp(xp, out, axis=1, keepdims=True)

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
