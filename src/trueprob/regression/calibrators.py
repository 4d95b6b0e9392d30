"""Recalibration of predictive distributions: variance scaling and isotonic quantile
recalibration, saved and loaded through the calibrator base class's plain-data format.

- :class:`VarianceScaling` multiplies every predicted scale by one factor s, fitted by maximum
  likelihood: the regression twin of temperature scaling (which divides every logit by T).
- :class:`IsotonicQuantileRecalibration` (Kuleshov, Fenner, Ermon 2018) learns a monotone map R
  of [0, 1] with R(F_i(y_i)) uniform on the calibration set; the recalibrated CDF is R o F_i.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from trueprob._array import as_array, device, is_array, namespace, to_numpy
from trueprob.calibrators.base import BaseCalibrator, CalibratorFormatError
from trueprob.regression import core
from trueprob.regression._validation import check_levels, prepare_regression
from trueprob.regression.families import PARAMETRIC, QuantileSet

#: recalibrated PIT levels are kept in [PIT_CLIP, 1 - PIT_CLIP] so quantiles stay finite
PIT_CLIP = 1e-12


def _host_rows(observed: Any, predictive: Any, sample_weight: Any, owner: str
               ) -> tuple[str, np.ndarray, np.ndarray, np.ndarray, Any]:
    """(family, z, scale, w, df) of a calibration set as float64 numpy arrays (rows with
    w > 0 only); ``df`` is a float, an array or None."""
    if isinstance(predictive, QuantileSet):
        raise TypeError(f"{owner} needs a parametric predictive distribution (Gaussian, "
                        f"Laplace, StudentT); got a QuantileSet")
    inputs = prepare_regression(observed, predictive, sample_weight=sample_weight)
    zs, scales, ws, dfs = [], [], [], []
    for chunk in inputs.chunks():
        n = chunk.n_rows
        y, loc = to_numpy(chunk.observed), to_numpy(chunk.loc)
        scale = np.full(n, chunk.scale) if isinstance(chunk.scale, float) \
            else to_numpy(chunk.scale)
        zs.append((y - loc) / scale)
        scales.append(scale)
        ws.append(np.ones(n) if chunk.weights is None else to_numpy(chunk.weights))
        if chunk.df is not None and not isinstance(chunk.df, float):
            dfs.append(to_numpy(chunk.df))
    z, scale, w = np.concatenate(zs), np.concatenate(scales), np.concatenate(ws)
    df = inputs.params.get("df")
    if dfs:
        df = np.concatenate(dfs)
    keep = w > 0
    if not np.any(keep):
        raise ValueError("sample_weight sums to 0; at least one row needs a positive weight")
    if not np.all(keep):
        z, scale, w = z[keep], scale[keep], w[keep]
        if isinstance(df, np.ndarray):
            df = df[keep]
    return inputs.family, z, scale, w, df


def _mean_nll(family: str, z: np.ndarray, scale: np.ndarray, w: np.ndarray, df: Any,
              s: float) -> float:
    """Weighted mean NLL with every scale multiplied by s."""
    rows = np.log(scale * s) - core.standard_logpdf(family, np, z / s, df)
    return float(np.dot(w, rows) / w.sum())


def _t_scale(z: np.ndarray, w: np.ndarray, df: Any, max_iter: int, tol: float
             ) -> tuple[float, int, bool]:
    """Maximum-likelihood log-scale r = log s of a Student-t with fixed df (see VarianceScaling).

    f(r) = W r + sum_i w_i (v_i + 1)/2 log(1 + z_i^2 e^{-2r} / v_i) is convex in r with
    f'(r) = W - sum_i w_i (v_i + 1) a_i / (1 + a_i) (increasing), a_i = z_i^2 e^{-2r} / v_i,
    and f''(r) = sum_i w_i 2 (v_i + 1) a_i / (1 + a_i)^2. Newton steps in r, kept inside a
    bracket [lo, hi] with f'(lo) < 0 < f'(hi) (bisection when a step leaves it).
    """
    v = np.asarray(df, dtype=np.float64)
    total = float(w.sum())
    z2v = z * z / v

    def grad_hess(r: float) -> tuple[float, float]:
        a = z2v * math.exp(-2.0 * r)
        g = total - float(np.sum(w * (v + 1.0) * a / (1.0 + a)))
        h = float(np.sum(w * 2.0 * (v + 1.0) * a / (1.0 + a) ** 2))
        return g, h

    r = math.log(float(np.dot(w, np.abs(z)) / total))
    lo, hi = r - 1.0, r + 1.0
    while grad_hess(lo)[0] >= 0:
        lo -= 2.0 * (r - lo)
    while grad_hess(hi)[0] <= 0:
        hi += 2.0 * (hi - r)
    for it in range(1, max_iter + 1):
        g, h = grad_hess(r)
        if g < 0:
            lo = r
        elif g > 0:
            hi = r
        else:
            return r, it, True
        step = g / h if h > 0 else math.inf
        trial = r - step
        if not lo < trial < hi:
            trial = 0.5 * (lo + hi)
        if abs(trial - r) <= tol * max(1.0, abs(r)):
            return trial, it, True
        r = trial
    return r, max_iter, False


def _quantiles(predictive: Any, u: np.ndarray) -> np.ndarray:
    """F_i^{-1}(u_j) (N, M) of a parametric predictive distribution (numpy float64)."""
    loc = np.asarray(to_numpy(predictive.loc), dtype=np.float64)
    scale = np.asarray(to_numpy(predictive.scale) if is_array(predictive.scale)
                       else predictive.scale, dtype=np.float64)
    df = None
    if predictive.family == "student_t":
        df = np.asarray(to_numpy(predictive.df) if is_array(predictive.df)
                        else predictive.df, dtype=np.float64)
        df = df[:, None] if df.ndim == 1 else df
    z = core.standard_ppf(predictive.family, np.asarray(u, np.float64)[None, :], df)
    scale = scale[:, None] if scale.ndim == 1 else scale
    return np.asarray(loc[:, None] + scale * z, dtype=np.float64)


class RegressionCalibrator(BaseCalibrator):
    """Base of the regression calibrators: maps of predictive distributions.

    ``fit(observed, predictive, sample_weight=...)`` with observed values y (N,) and their
    predictive distributions (:mod:`trueprob.regression.families`). They do not predict class
    probabilities: ``predict_logproba`` / ``predict_proba`` raise a TypeError that says what to
    call instead. Saved and loaded like every calibrator (:func:`trueprob.calibrators.load`).
    """

    _base = True

    #: what to call instead of predict_logproba (the TypeError's advice)
    _predict_instead: ClassVar[str] = "predict"

    def fit(self, observed: Any, predictive: Any, /, *,
            sample_weight: Any = None) -> RegressionCalibrator:  # pragma: no cover
        """Fit on a calibration set (observed values and predictive distributions)."""
        raise NotImplementedError

    def predict_logproba(self, **inputs: Any) -> Any:
        raise TypeError(f"{type(self).__name__} maps predictive distributions, not class "
                        f"scores; use {self._predict_instead}")

    def predict_proba(self, **inputs: Any) -> Any:
        return self.predict_logproba(**inputs)


class VarianceScaling(RegressionCalibrator):
    """Variance scaling: sigma_i -> s sigma_i with one factor s > 0 fitted by maximum likelihood.

    The regression twin of temperature scaling: the locations (the point predictions) stay,
    every predicted scale is multiplied by s, and s minimises the weighted NLL of the
    calibration set, sum_i w_i [log(s sigma_i) - log f_0(z_i / s)], z_i = (y_i - mu_i) / sigma_i:

    - Gaussian: s^2 = sum_i w_i z_i^2 / W (closed form; Levi et al. 2019 call it std scaling);
    - Laplace: s = sum_i w_i |z_i| / W (closed form);
    - Student-t with its df fixed: the unique root of W = sum_i w_i (v + 1) a_i / (1 + a_i),
      a_i = z_i^2 / (v s^2); the NLL is convex in log s, solved by safeguarded Newton steps.

    s > 1 means the model was over-confident (its intervals too narrow). The Gaussian and
    Laplace factors are ratios of sums, also available from a mergeable state
    (:meth:`trueprob.regression.RegressionStats.scale_factor`).

    Parameters
    ----------
    max_iter : int
        Newton steps allowed for the Student-t; 100.
    tol : float
        Stop when a Newton step in log s is below tol (relative); 1e-13.

    Attributes
    ----------
    scale_factor_ : float
        s.
    family_ : str
        The family it was fitted on (and applies to).
    nll_before_, nll_after_ : float
        Weighted mean NLL of the calibration set (nats) at s = 1 and at the fitted s.
    n_iter_ : int
        Newton steps (0 for the closed forms).

    Examples
    --------
    >>> import numpy as np
    >>> from trueprob.regression import Gaussian, VarianceScaling
    >>> y = np.array([2.0, -2.0, 4.0, -4.0])
    >>> vs = VarianceScaling().fit(y, Gaussian(mean=np.zeros(4), std=1.0))
    >>> vs.scale_factor_            # sqrt((4 + 4 + 16 + 16) / 4)
    3.1622776601683795
    >>> vs.predict(Gaussian(mean=np.zeros(1), std=2.0)).std
    6.324555320336759
    """

    _fitted_attrs = ("scale_factor_", "family_", "nll_before_", "nll_after_", "n_iter_")

    def __init__(self, *, max_iter: int = 100, tol: float = 1e-13) -> None:
        self.max_iter = max_iter
        self.tol = tol

    _predict_instead = "predict(predictive)"

    def fit(
        self, observed: Any, predictive: Any, /, *, sample_weight: Any = None
    ) -> VarianceScaling:
        """Fit s on a calibration set (observed values and parametric predictions)."""
        name = type(self).__name__
        mi = self.max_iter
        if isinstance(mi, bool) or not isinstance(mi, int) or mi < 1:
            raise ValueError(f"{name}: max_iter must be a positive integer; got {mi!r}")
        tol = self.tol
        if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not tol > 0:
            raise ValueError(f"{name}: tol must be a positive number; got {tol!r}")
        family, z, scale, w, df = _host_rows(observed, predictive, sample_weight, name)
        total = float(w.sum())
        if not np.any(z != 0):
            raise ValueError(f"{name}: every observed value equals its predicted location, so "
                             f"the likelihood grows without bound as s -> 0; no finite fit")
        n_iter = 0
        if family == "gaussian":
            s = math.sqrt(float(np.dot(w, z * z)) / total)
        elif family == "laplace":
            s = float(np.dot(w, np.abs(z))) / total
        else:
            v = np.broadcast_to(np.asarray(df, dtype=np.float64), z.shape)
            if not float(np.sum(w[z != 0] * (v[z != 0] + 1.0))) > total:
                raise ValueError(
                    f"{name}: too many rows with y exactly at the predicted location (weight "
                    f"share >= df / (df + 1)); the Student-t likelihood grows without bound as "
                    f"s -> 0")
            r, n_iter, converged = _t_scale(z, w, df, mi, float(tol))
            if not converged:
                raise ValueError(f"{name} did not converge in max_iter={mi} Newton steps")
            s = math.exp(r)
        self.scale_factor_ = float(s)
        self.family_ = family
        self.nll_before_ = _mean_nll(family, z, scale, w, df, 1.0)
        self.nll_after_ = _mean_nll(family, z, scale, w, df, s)
        self.n_iter_ = int(n_iter)
        return self

    def predict(self, predictive: Any) -> Any:
        """The same predictive family with every scale multiplied by ``scale_factor_``."""
        self._check_fitted()
        if not isinstance(predictive, PARAMETRIC):
            raise TypeError(f"predict needs Gaussian, Laplace or StudentT predictions; got "
                            f"{type(predictive).__name__}")
        if predictive.family != self.family_:
            raise ValueError(f"this VarianceScaling was fitted on {self.family_} predictions; "
                             f"got {predictive.family}")
        scale = predictive.scale
        if not is_array(scale) and np.ndim(scale) > 0:
            scale = np.asarray(scale, dtype=np.float64)
        return predictive.with_scale(scale * self.scale_factor_)

    def _check_loaded(self) -> None:
        s = self.scale_factor_
        if isinstance(s, bool) or not isinstance(s, (int, float)) or not (
                math.isfinite(s) and s > 0):
            raise CalibratorFormatError(f"scale_factor_ must be a finite number > 0; got {s!r}")
        self.scale_factor_ = float(s)
        if self.family_ not in core.FAMILIES:
            raise CalibratorFormatError(f"family_ must be one of {list(core.FAMILIES)}; got "
                                        f"{self.family_!r}")
        for name in ("nll_before_", "nll_after_"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise CalibratorFormatError(f"{name} must be a number; got {v!r}")
            setattr(self, name, float(v))
        n = self.n_iter_
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise CalibratorFormatError(f"n_iter_ must be an integer >= 0; got {n!r}")


class IsotonicQuantileRecalibration(RegressionCalibrator):
    """Isotonic quantile recalibration (Kuleshov, Fenner, Ermon 2018, Algorithm 1).

    On a calibration set with PIT values u_i = F_i(y_i) the method fits a non-decreasing map
    R: [0, 1] -> [0, 1] to the points (u_i, P_hat(u_i)), P_hat(p) = (1/W) sum_j w_j 1[u_j <= p]
    the weighted empirical CDF of the PIT values. These points are already non-decreasing in
    u, so the isotonic fit is P_hat itself at the distinct u values (ties pooled); between them
    R is linear (as scikit-learn's IsotonicRegression predicts, which the paper used), with
    R(0) = 0 and R(1) = 1 added. The recalibrated CDF of a row is R(F_i(y)), its p-quantile
    F_i^{-1}(R^{-1}(p)); on the calibration set R(u_i) is uniform (up to ties).

    Fitting keeps every distinct PIT value of the calibration set (O(N) memory and saved
    size); the recalibrated distribution has no closed-form NLL or CRPS, so evaluate it with
    :meth:`predict_quantiles` (a :class:`~trueprob.regression.QuantileSet`) or
    :meth:`predict_cdf`.

    Attributes
    ----------
    pit_ : ndarray (M,)
        Knots of R in PIT space (increasing, from 0 to 1).
    cdf_ : ndarray (M,)
        R at the knots (increasing, from 0 to 1).
    family_ : str

    Examples
    --------
    >>> import numpy as np
    >>> from trueprob.regression import Gaussian, IsotonicQuantileRecalibration
    >>> y = np.array([-0.2, 0.1, 0.3, -0.4])   # far less spread than std=1 claims
    >>> cal = IsotonicQuantileRecalibration().fit(y, Gaussian(mean=np.zeros(4), std=1.0))
    >>> cal.predict_cdf(y, Gaussian(mean=np.zeros(4), std=1.0)).round(4)
    array([0.5 , 0.75, 1.  , 0.25])
    """

    _fitted_attrs = ("pit_", "cdf_", "family_")

    def __init__(self) -> None:
        pass

    _predict_instead = "predict_cdf or predict_quantiles"

    def fit(
        self, observed: Any, predictive: Any, /, *, sample_weight: Any = None
    ) -> IsotonicQuantileRecalibration:
        """Fit R on a calibration set (observed values and parametric predictions)."""
        family, z, _, w, df = _host_rows(observed, predictive, sample_weight,
                                         type(self).__name__)
        u = np.asarray(core.standard_cdf(family, np, z, df), dtype=np.float64)
        order = np.argsort(u, kind="stable")
        u, w = u[order], w[order]
        first = np.flatnonzero(np.concatenate([[True], u[1:] != u[:-1]]))
        cum = np.cumsum(np.add.reduceat(w, first))
        knots, values = u[first], cum / cum[-1]
        values[-1] = 1.0
        if knots[0] > 0:
            knots, values = np.concatenate([[0.0], knots]), np.concatenate([[0.0], values])
        if knots[-1] < 1:
            knots, values = np.concatenate([knots, [1.0]]), np.concatenate([values, [1.0]])
        self.pit_, self.cdf_, self.family_ = knots, values, family
        return self

    def transform_pit(self, u: Any) -> Any:
        """R(u): recalibrated PIT levels (numpy or the input's namespace)."""
        self._check_fitted()
        out = np.interp(to_numpy(u) if is_array(u) else np.asarray(u, np.float64),
                        self.pit_, self.cdf_)
        return as_array(out, namespace(u), device(u)) if is_array(u) else out

    def inverse_pit(self, p: Any) -> np.ndarray:
        """R^{-1}(p) for levels p (numpy), clipped to [1e-12, 1 - 1e-12]."""
        self._check_fitted()
        strict = np.concatenate([[True], np.diff(self.cdf_) > 0])
        out = np.interp(np.asarray(p, np.float64), self.cdf_[strict], self.pit_[strict])
        return np.clip(out, PIT_CLIP, 1.0 - PIT_CLIP)

    def _check_family(self, predictive: Any) -> None:
        if not isinstance(predictive, PARAMETRIC):
            raise TypeError(f"needs Gaussian, Laplace or StudentT predictions; got "
                            f"{type(predictive).__name__}")
        if predictive.family != self.family_:
            raise ValueError(f"this {type(self).__name__} was fitted on {self.family_} "
                             f"predictions; got {predictive.family}")

    def predict_cdf(self, observed: Any, predictive: Any, /) -> Any:
        """R(F_i(y_i)) per row: the recalibrated PIT values."""
        from trueprob.regression.metrics import pit_values

        self._check_fitted()
        self._check_family(predictive)
        return self.transform_pit(pit_values(observed, predictive))

    def predict_quantiles(self, predictive: Any, levels: Any) -> QuantileSet:
        """The recalibrated quantiles F_i^{-1}(R^{-1}(p)) at ``levels``, as a QuantileSet
        (numpy float64)."""
        self._check_fitted()
        self._check_family(predictive)
        p = check_levels(levels, "levels")
        return QuantileSet(quantiles=_quantiles(predictive, self.inverse_pit(p)), levels=p)

    def _check_loaded(self) -> None:
        for name in ("pit_", "cdf_"):
            v = getattr(self, name)
            if not isinstance(v, np.ndarray) or v.ndim != 1 or v.size < 2 or \
                    not np.all(np.isfinite(v)) or np.any((v < 0) | (v > 1)) or \
                    np.any(np.diff(v) < 0):
                raise CalibratorFormatError(
                    f"{name} must be a non-decreasing 1-D array of at least 2 numbers in "
                    f"[0, 1]; got {v!r}")
            setattr(self, name, v.astype(np.float64))
        if self.pit_.shape != self.cdf_.shape:
            raise CalibratorFormatError("pit_ and cdf_ must have the same length")
        if self.family_ not in core.FAMILIES:
            raise CalibratorFormatError(f"family_ must be one of {list(core.FAMILIES)}; got "
                                        f"{self.family_!r}")
