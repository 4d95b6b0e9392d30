"""Regression metrics as functions: proper scores and calibration of predictive distributions.

:func:`evaluate_regression` computes every number in one pass through a
:class:`~trueprob.regression.stats.RegressionStats`; the per-row functions (:func:`crps_rows`,
:func:`nll_rows`, :func:`pit_values`) return one value per row in the inputs' namespace.
"""

from __future__ import annotations

import math
from typing import Any

from trueprob._array import Array, as_array, device
from trueprob.core.options import check_unit
from trueprob.regression import core
from trueprob.regression._validation import RegressionChunk, RegressionInputs, prepare_regression
from trueprob.regression.stats import RegressionStats
from trueprob.results import RegressionReport


def evaluate_regression(
    observed: Any,
    predictive: Any,
    /,
    *,
    sample_weight: Any = None,
    coverage_levels: Any = None,
    calibration_levels: Any = None,
    n_pit_bins: int | None = None,
    unit: str = "nats",
) -> RegressionReport:
    """Evaluate predictive distributions against observed values, in one pass.

    With N rows, weights w_i (W = sum w_i), observed y_i and predictive CDFs F_i (location
    mu_i, scale sigma_i, z_i = (y_i - mu_i) / sigma_i for the parametric families):

    - ``nll`` = (1/W) sum_i w_i (-log f_i(y_i)) (nats; bits with ``unit="bits"``);
    - ``crps`` = (1/W) sum_i w_i CRPS(F_i, y_i), CRPS(F, y) = int (F(x) - 1[x >= y])^2 dx, in
      closed form for Gaussian, Laplace and Student-t (:mod:`trueprob.regression.core`), and
      by the pinball-loss average (2/M) sum_j rho_{p_j}(y - q_j) for a quantile set;
    - PIT u_i = F_i(y_i); calibration means u is uniform on [0, 1]. ``calibration`` lists
      p_hat_j = (1/W) sum_i w_i 1[u_i <= p_j] (for a quantile set, 1[y_i <= q_ij]);
    - ``quantile_calibration_error`` = sum_j (p_j - p_hat_j)^2 over the calibration levels
      (Kuleshov, Fenner, Ermon 2018, with weights w_j = 1; default p_j = 0.1, ..., 0.9, a
      quantile set's own levels);
    - ``pit_ece`` = (1/G) sum_{c=1}^{G} |F_PIT(c/G) - c/G|, F_PIT the weighted empirical CDF
      of the PIT values, on the state's grid of G = 1000 cells: a Riemann sum of
      int_0^1 |F_PIT(u) - u| du, which it matches within 2/G. For a quantile set it is the mean
      over its levels of |p_hat_j - p_j|. Both are 0 for a calibrated model (in the limit)
      and are at most 1/2;
    - ``coverage``: for each nominal level a, the weighted share of rows with y_i inside the
      central interval [F_i^{-1}((1 - a)/2), F_i^{-1}((1 + a)/2)], and its mean width;
    - ``dispersion`` = (1/W) sum_i w_i z_i^2: 1 on average for calibrated Gaussians, above 1
      when the predicted spread is too small (its square root is the Gaussian variance-scaling
      factor);
    - ``pit_histogram``: the PIT values in B bins (default 20) with their expected shares.

    Parameters
    ----------
    observed : array (N,)
        The observed values y_i.
    predictive : Gaussian, Laplace, StudentT or QuantileSet
        The predictive distribution of each row (:mod:`trueprob.regression.families`).
    sample_weight : array (N,), optional
        Row weights w_i >= 0, not all zero.
    coverage_levels, calibration_levels : sequence of float, optional
        See :class:`~trueprob.regression.stats.RegressionStats`.
    n_pit_bins : int, optional
        Bins of the PIT histogram (parametric; must divide 1000).
    unit : {"nats", "bits"}
        Unit of the NLL.

    Returns
    -------
    RegressionReport

    Notes
    -----
    Extra memory is one chunk of about 2**19 rows whatever N; the state holds about 2,000
    numbers. Per-row ``df`` of a Student-t and every Student-t CDF are computed with scipy
    on the host (torch has no incomplete beta function).

    Examples
    --------
    >>> import numpy as np
    >>> from trueprob.regression import Gaussian, evaluate_regression
    >>> y = np.array([0.0, 1.0, -1.0, 2.0])
    >>> r = evaluate_regression(y, Gaussian(mean=np.zeros(4), std=1.0))
    >>> round(r.nll, 4)          # (1/4) sum (y^2 / 2 + log(2 pi) / 2)
    1.6689
    >>> r.coverage[0].level, r.coverage[0].observed   # |y| <= 0.674 for one row of four
    (0.5, 0.25)
    """
    inputs = prepare_regression(observed, predictive, sample_weight=sample_weight)
    stats = RegressionStats(
        quantile_levels=inputs.levels, coverage_levels=coverage_levels,
        calibration_levels=calibration_levels)
    return stats.update_inputs(inputs).finalize(n_pit_bins=n_pit_bins, unit=unit)


# --------------------------------------------------------------------------- per row
def _rows(inputs: RegressionInputs, fn: Any) -> Array:
    xp = inputs.xp
    parts = [fn(xp, chunk) for chunk in inputs.chunks()]
    return parts[0] if len(parts) == 1 else xp.concat(parts)


def _z(chunk: RegressionChunk) -> Array:
    return (chunk.observed - chunk.loc) / chunk.scale


def crps_rows(observed: Any, predictive: Any, /) -> Array:
    """CRPS(F_i, y_i) per row (float64, the inputs' namespace); see :func:`evaluate_regression`.

    >>> import numpy as np
    >>> from trueprob.regression import Laplace
    >>> crps_rows(np.array([0.0, 1.0]), Laplace(loc=np.zeros(2), scale=1.0)).round(6)
    array([0.25    , 0.617879])
    """
    inputs = prepare_regression(observed, predictive)

    def fn(xp: Any, chunk: RegressionChunk) -> Array:
        if inputs.family == "quantiles":
            levels = as_array(inputs.levels, xp, device(chunk.observed))
            return core.quantile_crps(xp, chunk.observed, chunk.quantiles, levels)
        return chunk.scale * core.standard_crps(inputs.family, xp, _z(chunk), chunk.df)

    return _rows(inputs, fn)


def crps(observed: Any, predictive: Any, /, *, sample_weight: Any = None) -> float:
    """Mean CRPS, (1/W) sum_i w_i CRPS(F_i, y_i).

    >>> import numpy as np
    >>> from trueprob.regression import Gaussian
    >>> round(crps(np.array([0.0]), Gaussian(mean=np.zeros(1), std=1.0)), 6)  # (sqrt 2 - 1)/sqrt pi
    0.233695
    """
    return evaluate_regression(observed, predictive, sample_weight=sample_weight,
                               coverage_levels=[]).crps


def nll_rows(observed: Any, predictive: Any, /) -> Array:
    """-log f_i(y_i) per row in nats (parametric families only).

    >>> import numpy as np
    >>> from trueprob.regression import Gaussian
    >>> nll_rows(np.array([0.0]), Gaussian(mean=np.zeros(1), std=np.e)).round(6)  # 1 + log(2 pi)/2
    array([1.918939])
    """
    inputs = prepare_regression(observed, predictive)
    _need_parametric(inputs, "nll_rows")

    def fn(xp: Any, chunk: RegressionChunk) -> Array:
        scale = chunk.scale
        log_scale = math.log(scale) if isinstance(scale, float) else xp.log(scale)
        return log_scale - core.standard_logpdf(inputs.family, xp, _z(chunk), chunk.df)

    return _rows(inputs, fn)


def nll(observed: Any, predictive: Any, /, *, sample_weight: Any = None,
        unit: str = "nats") -> float:
    """Mean negative log-likelihood (1/W) sum_i w_i (-log f_i(y_i)).

    >>> import numpy as np
    >>> from trueprob.regression import Laplace
    >>> round(nll(np.array([1.0]), Laplace(loc=np.zeros(1), scale=1.0)), 6)  # 1 + log 2
    1.693147
    """
    check_unit(unit)
    inputs = prepare_regression(observed, predictive, sample_weight=sample_weight)
    _need_parametric(inputs, "nll")
    stats = RegressionStats(coverage_levels=[]).update_inputs(inputs)
    value = stats.finalize(unit=unit).nll
    assert value is not None
    return value


def pit_values(observed: Any, predictive: Any, /) -> Array:
    """The probability integral transform u_i = F_i(y_i) per row (parametric families).

    Uniform on [0, 1] when the predictive distributions are calibrated. Needs O(N) memory;
    :func:`evaluate_regression` keeps only a histogram of them.

    >>> import numpy as np
    >>> from trueprob.regression import Gaussian
    >>> pit_values(np.array([0.0, 1.96]), Gaussian(mean=np.zeros(2), std=1.0)).round(4)
    array([0.5  , 0.975])
    """
    inputs = prepare_regression(observed, predictive)
    _need_parametric(inputs, "pit_values")
    return _rows(inputs, lambda xp, chunk: core.standard_cdf(inputs.family, xp, _z(chunk),
                                                             chunk.df))


def _need_parametric(inputs: RegressionInputs, what: str) -> None:
    if inputs.family == "quantiles":
        raise TypeError(f"{what} needs a parametric predictive distribution (Gaussian, Laplace, "
                        f"StudentT); a QuantileSet has no density or continuous CDF")
