"""Metrics from sufficient statistics, vectorised over leading axes (replicates, blocks).

The same functions finalise one state (leading shape ()) and a thousand bootstrap replicates
(leading shape (B,)), so a bootstrap interval is computed by exactly the formulas of the point
estimate.
"""

from __future__ import annotations

import numpy as np

# indices into the float64 sums vector of an EvaluationStats
W, NLL, BRIER, CORRECT, ENTROPY, KL, W_VECTOR = range(7)
N_SUMS = 7


def bin_means(weight: np.ndarray, sums: np.ndarray) -> np.ndarray:
    """sums / weight per bin; NaN for empty bins (weight 0)."""
    nonempty = weight > 0
    return np.where(nonempty, sums / np.where(nonempty, weight, 1.0), np.nan)


def binned_errors(weight: np.ndarray, sum_score: np.ndarray, sum_outcome: np.ndarray,
                  total: np.ndarray) -> dict[str, np.ndarray]:
    """Per-group binned calibration errors; inputs (..., G, B), ``total`` W of shape (...).

    Returns arrays of shape (..., G): ``ece`` = sum_b (W_b/W)|acc_b - conf_b|, ``l2`` =
    sum_b (W_b/W)(acc_b - conf_b)^2, ``mce`` = max over non-empty bins of |acc_b - conf_b|,
    ``debiased_l2`` = sum_b (W_b/W)[(acc_b - conf_b)^2 - acc_b(1 - acc_b)/(n_b - 1)] with
    n_b = W_b (frequency weights) and no correction where n_b <= 1. Empty bins add nothing.
    """
    nonempty = weight > 0
    conf = bin_means(weight, sum_score)
    acc = bin_means(weight, sum_outcome)
    absgap = np.where(nonempty, np.abs(conf - acc), 0.0)
    frac = weight / np.asarray(total)[..., None, None]
    acc0 = np.where(nonempty, acc, 0.0)
    correction = np.where(weight > 1, acc0 * (1.0 - acc0) / np.where(weight > 1, weight - 1,
                                                                      1.0), 0.0)
    return {
        "ece": np.sum(frac * absgap, axis=-1),
        "l2": np.sum(frac * absgap**2, axis=-1),
        "mce": np.max(absgap, axis=-1),
        "debiased_l2": np.sum(frac * (absgap**2 - correction), axis=-1),
    }


def ks_null_scale(weight: np.ndarray, sum_score: np.ndarray, total: float) -> float:
    """sigma = sqrt(sum_j W_j cbar_j (1 - cbar_j)) / W over a confidence grid (cells j, cell
    means cbar_j): the standard deviation of the KS cumulative residual at t = 1 when the labels
    are drawn from the predicted distribution (frequency weights; cell means stand in for the
    rows' own c_i, which by concavity can only overstate it)."""
    c = bin_means(weight, sum_score)
    var = np.where(weight > 0, weight * np.nan_to_num(c) * (1.0 - np.nan_to_num(c)), 0.0)
    return float(np.sqrt(np.sum(var))) / float(total)


def ks_from_grid(sum_score: np.ndarray, sum_outcome: np.ndarray,
                 total: np.ndarray) -> np.ndarray:
    """max_j |(1/W) sum_{cells <= j} (sum w c - sum w a)| over a grid (..., cells)."""
    resid = np.cumsum(sum_score - sum_outcome, axis=-1) / np.asarray(total)[..., None]
    return np.max(np.abs(resid), axis=-1)
