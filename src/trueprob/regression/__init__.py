"""Regression: proper scores and calibration of predictive distributions.

A regression model that outputs a mean and a standard deviation (Gaussian NLL training), a
location and scale (Laplace, Student-t) or a set of quantiles (pinball-loss training) makes a
probabilistic statement about each y_i; this package asks whether it holds: NLL and CRPS
(proper scores), the PIT histogram and its calibration error, quantile calibration (Kuleshov et
al. 2018) and the coverage of central intervals, in one pass with a fixed-size mergeable state;
and repairs it: variance scaling (the maximum-likelihood scale factor, the regression twin of
temperature scaling) and isotonic quantile recalibration.
"""

from trueprob.regression.calibrators import IsotonicQuantileRecalibration, VarianceScaling
from trueprob.regression.families import Gaussian, Laplace, QuantileSet, StudentT
from trueprob.regression.metrics import (
    crps,
    crps_rows,
    evaluate_regression,
    nll,
    nll_rows,
    pit_values,
)
from trueprob.regression.recalibration import (
    RecalibrationScores,
    recalibrate,
    recalibration_scores,
)
from trueprob.regression.stats import RegressionStats
from trueprob.results import (
    CoverageRow,
    LevelRow,
    PitHistogram,
    RegressionReport,
    RegressionSettings,
)

__all__ = [
    "CoverageRow",
    "Gaussian",
    "IsotonicQuantileRecalibration",
    "Laplace",
    "LevelRow",
    "PitHistogram",
    "QuantileSet",
    "RecalibrationScores",
    "RegressionReport",
    "RegressionSettings",
    "RegressionStats",
    "StudentT",
    "VarianceScaling",
    "crps",
    "crps_rows",
    "evaluate_regression",
    "nll",
    "nll_rows",
    "pit_values",
    "recalibrate",
    "recalibration_scores",
]
