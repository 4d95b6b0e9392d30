"""Metrics as functions: validate the inputs, build the mergeable state, finalise.

Each function computes one number with SPEC.md's definition; ``trueprob.evaluate`` computes all
of them in one pass.
"""

from trueprob.metrics.calibration import (
    ReliabilityTable,
    class_conditional_ece,
    classwise_ece,
    debiased_l2_calibration_error,
    ks_calibration_error,
    max_calibration_error,
    reliability_table,
    rms_calibration_error,
    top_label_ece,
)
from trueprob.metrics.conventions import (
    CONVENTIONS,
    calibration_error,
    kull2019_calibration_error,
    kumar2019_calibration_error,
    netcal_calibration_error,
    relplot_binned_ece,
    sklearn_calibration_error,
    torchmetrics_calibration_error,
)
from trueprob.metrics.scores import (
    CrossEntropySplit,
    accuracy,
    binary_brier_score,
    brier_score,
    cross_entropy_split,
    log_loss,
)
from trueprob.metrics.skce import SKCEResult, median_heuristic, skce
from trueprob.metrics.smooth import SmoothReliability, smooth_ece, smooth_reliability

__all__ = [
    "CONVENTIONS",
    "CrossEntropySplit",
    "ReliabilityTable",
    "SKCEResult",
    "SmoothReliability",
    "accuracy",
    "binary_brier_score",
    "brier_score",
    "calibration_error",
    "class_conditional_ece",
    "classwise_ece",
    "cross_entropy_split",
    "debiased_l2_calibration_error",
    "ks_calibration_error",
    "kull2019_calibration_error",
    "kumar2019_calibration_error",
    "log_loss",
    "max_calibration_error",
    "median_heuristic",
    "netcal_calibration_error",
    "reliability_table",
    "relplot_binned_ece",
    "rms_calibration_error",
    "skce",
    "sklearn_calibration_error",
    "smooth_ece",
    "smooth_reliability",
    "top_label_ece",
    "torchmetrics_calibration_error",
]
