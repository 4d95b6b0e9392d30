"""Smooth ECE (Błasiok & Nakkiran 2023, arXiv:2309.12236): kernel-smoothed calibration error.

Written from the paper's definitions (SPEC.md notation; f_i the score, y_i the outcome, w_i the
weight, W = sum_i w_i):

- reflected Gaussian kernel on [0, 1]:
  K_s(t, u) = sum_{m in Z} [phi_s(t - u + 2m) + phi_s(t + u + 2m)], phi_s the N(0, s^2) density
  (the density at t of u + s Z folded back into [0, 1] at both ends);
- smoothed residual r_s(t) = sum_i w_i K_s(t, f_i) (y_i - f_i) / sum_i w_i K_s(t, f_i) and
  smoothed density delta_s(t) = (1/W) sum_i w_i K_s(t, f_i);
- smECE_s = int_0^1 |r_s(t)| delta_s(t) dt = (1/W) int_0^1 |sum_i w_i K_s(t, f_i)(y_i - f_i)| dt;
- the bandwidth s* solves smECE_{s*} = s* (smECE_s decreases in s, so it is unique; found by
  Brent's bracketing method on [1e-3, 1]); the smooth ECE is smECE_{s*}.

Top-label (``(N, K)`` inputs or ``confidences=``): f_i = c_i, y_i = a_i. Binary (1-D inputs):
f_i = q_i1 (the positive-class probability), y_i = 1[y_i = 1] (or t_i1 for soft targets).
The computation (exact cosine moments, or a bounded-memory grid) is described in
:mod:`trueprob.stats.smooth`.
"""

from __future__ import annotations

from typing import Any

from trueprob.metrics._common import inputs_of, label_options
from trueprob.stats.smooth import (
    DEFAULT_GRID,
    SIGMA_MIN,
    SmoothECEStats,
    SmoothReliability,
    check_bandwidth,
    check_n_points,
)

__all__ = ["SIGMA_MIN", "SmoothReliability", "smooth_ece", "smooth_reliability"]


@label_options
def smooth_reliability(
    labels: Any = None,
    /,
    *,
    logits: Any = None,
    probs: Any = None,
    targets: Any = None,
    counts: Any = None,
    sample_weight: Any = None,
    confidences: Any = None,
    predictions: Any = None,
    bandwidth: float | None = None,
    n_grid: int | None = DEFAULT_GRID,
    n_points: int = 1001,
) -> SmoothReliability:
    """Smooth ECE with its bandwidth and the smoothed reliability curve (for diagrams).

    smECE_s = (1/W) int_0^1 |sum_i w_i K_s(t, f_i)(y_i - f_i)| dt with the reflected Gaussian
    kernel K_s on [0, 1], at the fixed point s* = smECE_{s*} (Błasiok & Nakkiran 2023). The
    curve is the Nadaraya-Watson smoothing of f and y with the same kernel, on ``n_points``
    equally spaced t.

    Parameters
    ----------
    labels : array (N,), optional
        Hard labels; or pass ``targets=`` (soft, (N, K) or (N,) for binary) or ``counts=``.
    logits, probs : array (N, K), or (N,) for binary
        Model outputs; exactly one is given (never guessed). (N, K): top-label smooth ECE of
        c_i = max_k q_ik against a_i; (N,): the positive class q_i1 against 1[y_i = 1].
    targets, counts : array, optional
        Soft labels or annotator votes; then a_i = p_{i, yhat_i} (top-label) or t_i1 (binary).
    sample_weight : array (N,), optional
        Row weights w_i >= 0, not all zero.
    confidences, predictions : array (N,), optional
        Top-label mode: c_i and yhat_i only.
    bandwidth : float, optional
        A fixed s >= 1e-3 instead of the fixed point.
    n_grid : int or None
        Grid cells G of the bounded-memory state (default 2**16): |error| <= about
        0.121 (s G)^-2 (1/W) sum_i w_i |y_i - f_i| (2.8e-9 x mean|y - f| at s = 0.1).
        ``None``: exact cosine moments of every row (about 3e4 flops per row, still O(1)
        memory).
    n_points : int
        Points of the returned curve (default 1001).

    Returns
    -------
    SmoothReliability
        ``ece``, ``bandwidth`` and the curve (``t``, ``density``, ``confidence``,
        ``accuracy``, ``residual``).

    Examples
    --------
    >>> import numpy as np
    >>> from trueprob.metrics.smooth import smooth_reliability
    >>> q = np.array([0.9, 0.8, 0.3, 0.6, 0.2, 0.7])
    >>> y = np.array([1, 0, 0, 1, 0, 1])
    >>> r = smooth_reliability(y, probs=q, n_points=5)
    >>> round(r.ece, 4), round(r.bandwidth, 4), r.bandwidth_rule
    (0.1386, 0.1386, 'fixed point')
    >>> np.round(r.accuracy, 3)
    array([0.   , 0.024, 0.676, 0.688, 0.714])
    """
    sigma = check_bandwidth(bandwidth)
    n_points = check_n_points(n_points)
    stats = SmoothECEStats(n_grid)
    inputs = inputs_of(labels, logits, probs, targets, counts, sample_weight, confidences,
                       predictions)
    stats.update_inputs(inputs)
    return stats.finalize(bandwidth=sigma, n_points=n_points)


@label_options
def smooth_ece(
    labels: Any = None,
    /,
    *,
    logits: Any = None,
    probs: Any = None,
    targets: Any = None,
    counts: Any = None,
    sample_weight: Any = None,
    confidences: Any = None,
    predictions: Any = None,
    bandwidth: float | None = None,
    n_grid: int | None = DEFAULT_GRID,
) -> float:
    """Smooth ECE (Błasiok & Nakkiran 2023): smECE_{s*} with s* = smECE_{s*}.

    smECE_s = int_0^1 |r_s(t)| delta_s(t) dt = (1/W) int_0^1 |sum_i w_i K_s(t, f_i)(y_i - f_i)| dt,
    K_s the reflected Gaussian kernel on [0, 1]; top-label (f = c_i, y = a_i) for (N, K)
    inputs, the positive class (f = q_i1, y = 1[y_i = 1]) for 1-D binary inputs. Parameters
    as :func:`smooth_reliability`: ``bandwidth`` fixes s, ``n_grid=None`` computes the exact
    cosine moments of every row instead of the 2**16-cell grid.

    Examples
    --------
    >>> import numpy as np
    >>> from trueprob.metrics.smooth import smooth_ece
    >>> logits = np.array([[2.0, 0.0, 0.0], [0.0, 3.0, 0.0], [1.0, 0.0, 2.0], [0.0, 0.5, 0.0]])
    >>> round(smooth_ece(np.array([0, 1, 0, 2]), logits=logits, n_grid=None), 4)
    0.2048
    >>> round(smooth_ece(np.array([0, 1, 0, 2]), logits=logits, bandwidth=0.1), 4)
    0.2605
    """
    return smooth_reliability(
        labels, logits=logits, probs=probs, targets=targets, counts=counts,
        sample_weight=sample_weight, confidences=confidences, predictions=predictions,
        bandwidth=bandwidth, n_grid=n_grid, n_points=2,
    ).ece
