"""Regression calibrators by name, the predictive distribution they give, and their scores.

What ``trueprob fit --task regression`` / ``apply`` / ``report --fit`` do with a
:class:`~trueprob.regression.VarianceScaling` or an
:class:`~trueprob.regression.IsotonicQuantileRecalibration`, as library functions:

- :data:`METHODS` names them (``variance-scaling``, ``isotonic-quantile``);
- :func:`recalibrate` gives the recalibrated predictive distribution: the same family with every
  scale multiplied by s (variance scaling), or the quantiles F_i^{-1}(R^{-1}(p_j)) at
  :data:`RECALIBRATED_LEVELS` as a :class:`~trueprob.regression.QuantileSet` (isotonic quantile
  recalibration changes the shape of the CDF, R o F_i, which no (location, scale) pair holds);
- :func:`recalibration_scores` scores a calibration set before and after, in one record.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from trueprob.regression.calibrators import (
    IsotonicQuantileRecalibration,
    RegressionCalibrator,
    VarianceScaling,
    _quantiles,
)
from trueprob.regression.families import QuantileSet

#: CLI / report name -> regression calibrator class
METHODS: dict[str, type[RegressionCalibrator]] = {
    "variance-scaling": VarianceScaling,
    "isotonic-quantile": IsotonicQuantileRecalibration,
}
#: the levels at which an isotonic quantile recalibration is written out: they hold the
#: central intervals of level 0.2, 0.4, 0.5, 0.6, 0.8, 0.9 and 0.95 and the default
#: calibration levels 0.1, ..., 0.9 of :func:`trueprob.regression.evaluate_regression`
RECALIBRATED_LEVELS = (0.025, 0.05, 0.1, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.9,
                       0.95, 0.975)
#: the central interval whose coverage :func:`recalibration_scores` reports
SCORED_COVERAGE = 0.9


def make_regression_calibrator(method: str) -> RegressionCalibrator:
    """An unfitted regression calibrator by name (:data:`METHODS`).

    Examples
    --------
    >>> make_regression_calibrator("variance-scaling")
    VarianceScaling(max_iter=100, tol=1e-13)
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}; got {method!r}")
    return METHODS[method]()


def recalibrate(calibrator: RegressionCalibrator, predictive: Any, /, *,
                levels: Any = RECALIBRATED_LEVELS) -> Any:
    """The recalibrated predictive distribution of each row.

    - :class:`VarianceScaling`: the same family with scale s sigma_i (``levels`` unused);
    - :class:`IsotonicQuantileRecalibration`: a :class:`QuantileSet` of the recalibrated
      quantiles F_i^{-1}(R^{-1}(p_j)) at ``levels`` (default :data:`RECALIBRATED_LEVELS`).

    Examples
    --------
    >>> from trueprob.regression import Gaussian
    >>> y = np.array([2.0, -2.0, 4.0, -4.0])
    >>> vs = VarianceScaling().fit(y, Gaussian(np.zeros(4), 1.0))
    >>> float(recalibrate(vs, Gaussian(np.zeros(1), 1.0)).std)
    3.1622776601683795
    """
    if isinstance(calibrator, VarianceScaling):
        return calibrator.predict(predictive)
    if isinstance(calibrator, IsotonicQuantileRecalibration):
        return calibrator.predict_quantiles(predictive, levels)
    raise TypeError(f"calibrator must be a VarianceScaling or an "
                    f"IsotonicQuantileRecalibration; got {type(calibrator).__name__}")


@dataclass(frozen=True)
class RecalibrationScores:
    """A calibration set scored before and after recalibration.

    ``score`` names the scored quantity ("NLL" in ``unit`` for variance scaling, "PIT ECE"
    for isotonic quantile recalibration); ``coverage_before`` / ``coverage_after`` are the
    weighted shares of observations inside the central interval of level
    ``coverage_level``.
    """

    method: str
    n: int
    score: str
    unit: str | None
    before: float
    after: float
    coverage_level: float
    coverage_before: float
    coverage_after: float

    def line(self) -> str:
        """One line: ``NLL 2.10 -> 1.83 bits; 90 % interval coverage 0.62 -> 0.90``."""
        unit = f" {self.unit}" if self.unit else ""
        return (f"{self.score} {self.before:.6f} -> {self.after:.6f}{unit}; "
                f"{self.coverage_level:.0%} central-interval coverage "
                f"{self.coverage_before:.4f} -> {self.coverage_after:.4f}")


def recalibration_scores(calibrator: RegressionCalibrator, observed: Any, predictive: Any, /,
                         *, sample_weight: Any = None, unit: str = "bits"
                         ) -> RecalibrationScores:
    """Score ``(observed, predictive)`` before and after ``calibrator`` (fitted).

    Variance scaling: the weighted mean NLL (1/W) sum_i w_i (-log f_i(y_i)) in ``unit``, of
    the given and of the rescaled distributions. Isotonic quantile recalibration: the PIT ECE
    (1/M) sum_j |p_hat_j - p_j| at the M = 15 :data:`RECALIBRATED_LEVELS`, with p_hat_j the
    share of rows with y_i <= q_ij, for the given distribution's quantiles F_i^{-1}(p_j) and
    the recalibrated ones F_i^{-1}(R^{-1}(p_j)) (both on the same levels, so comparable; the
    recalibrated CDF has no density, hence no NLL). Both: the coverage of the central
    interval of level :data:`SCORED_COVERAGE`.

    Examples
    --------
    >>> from trueprob.regression import Gaussian
    >>> rng = np.random.default_rng(0)
    >>> y = rng.normal(size=4000) * 2.0
    >>> model = Gaussian(np.zeros(4000), 1.0)               # std half the true one
    >>> s = recalibration_scores(VarianceScaling().fit(y, model), y, model)
    >>> s.score, round(s.coverage_before, 2), round(s.coverage_after, 2)
    ('NLL', 0.59, 0.9)
    """
    from trueprob.regression.metrics import evaluate_regression

    after = recalibrate(calibrator, predictive)
    if isinstance(calibrator, VarianceScaling):
        name, score, shown = "variance-scaling", "NLL", unit
        before = predictive
    else:
        name, score, shown = "isotonic-quantile", "PIT ECE", None
        levels = np.asarray(RECALIBRATED_LEVELS)
        before = QuantileSet(quantiles=_quantiles(predictive, levels), levels=levels)
    kw: dict[str, Any] = {"sample_weight": sample_weight, "unit": unit,
                          "coverage_levels": [SCORED_COVERAGE]}
    r0 = evaluate_regression(observed, before, **kw)
    r1 = evaluate_regression(observed, after, **kw)

    def value(r: Any) -> float:
        v = r.nll if score == "NLL" else r.pit_ece
        return math.nan if v is None else float(v)

    return RecalibrationScores(name, r0.n, score, shown, value(r0), value(r1), SCORED_COVERAGE,
                               float(r0.coverage[0].observed), float(r1.coverage[0].observed))


__all__ = ["METHODS", "RECALIBRATED_LEVELS", "SCORED_COVERAGE", "RecalibrationScores",
           "make_regression_calibrator", "recalibrate", "recalibration_scores"]
