"""Bootstrap intervals from replicates: percentile, BCa and bias-corrected percentile.

Every interval names the estimate it is about, and ``low <= estimate <= high`` always.

Why a bias correction: a binned calibration error is a sum of absolute (or squared) bin gaps,
sum_b (W_b/W) |acc_b - conf_b|. Sampling noise in a gap makes its absolute value larger on
average, so the plug-in value is biased upward (by about sigma_b sqrt(2/pi) per bin when the
true gap is 0, sigma_b the bin's standard error), and a bootstrap replicate adds the same bias
again: the percentile interval of the replicates sits above the plug-in value, which sits above
the truth. ``docs/uncertainty.md`` (``bench/coverage.py``) measured percentile coverage 0 for a
calibrated model and about 0.5 at a true ECE of 0.03 with N = 2000.

The bias-corrected percentile interval (Efron & Tibshirani 1993, section 10.6, applied to the
whole replicate distribution) estimates the bias as b = mean(theta*) - theta and

- estimate: theta_bc = max(0, theta - b);
- interval: the percentile interval moved by twice the bias (once for the replicates' own
  bias, once for the estimate's), [q_(a/2) - 2b, q_(1-a/2) - 2b], with both half-widths about
  theta_bc stretched by w = min(3, 1 + b / theta_bc), and cut at 0. The stretch: the bias
  b(theta) of a binned error shrinks as the error grows, so theta - b(theta) varies more than
  theta (by the factor 1 - b'(theta)); w is a cheap stand-in for that factor, 1 where the
  bias is negligible, and it is what brought coverage near nominal at true errors of
  0.01-0.03 in the study;
- where the bias is at least a quarter of the corrected estimate (theta_bc < 4 b) the noise
  of the bins dominates the error, the data cannot tell the error from 0, and the lower end
  is 0 (the study found two-sided intervals with a positive lower end cover almost never
  there);
- one-sided upper bound at the same level: U = theta_bc + w (q_(level) - 2b - theta_bc),
  "the error is at most U with ``level`` confidence", the statement that stays honest when
  the true error is 0.

Each is widened, if need be, to contain its estimate.
"""

from __future__ import annotations

import numpy as np
from scipy import special

#: Report fields whose plug-in value is biased upward by bin noise (sums of |gap| or gap^2,
#: maxima of |gap|): their default interval is the bias-corrected percentile interval.
BIASED_FIELDS = ("ece", "mce", "rmsce", "classwise_ece", "class_conditional_ece", "ks")
METHODS = ("bias-corrected", "percentile", "bca")
#: theta_bc < BIAS_DOMINATED * bias: the interval's lower end is 0.
BIAS_DOMINATED = 4.0
#: Largest stretch w of the bias-corrected interval's half-widths.
MAX_STRETCH = 3.0


def finite(reps: np.ndarray) -> np.ndarray:
    """The finite replicates (a replicate with no weight left in a bin group can give NaN)."""
    reps = np.asarray(reps, dtype=np.float64)
    return reps[np.isfinite(reps)]


def percentile_interval(theta: float, reps: np.ndarray,
                        level: float) -> tuple[float, float, float, float]:
    """(estimate, low, high, upper): theta, the (1 -+ level)/2 quantiles of the replicates
    widened to contain theta, and the one-sided ``level`` quantile (at least theta)."""
    lo, hi, up = np.quantile(reps, [(1 - level) / 2, (1 + level) / 2, level])
    return theta, min(float(lo), theta), max(float(hi), theta), max(float(up), theta)


def bca_interval(theta: float, reps: np.ndarray, jack: np.ndarray,
                 level: float) -> tuple[float, float, float, float]:
    """(estimate, low, high, upper) of the BCa interval (Efron 1987), widened to contain theta.

    z0 = Phi^-1(#{theta* < theta} / B) (ties count half), acceleration
    a = sum_g d_g^3 / (6 (sum_g d_g^2)^(3/2)) with d_g = mean(jack) - jack_g from the
    leave-one-block-out values; level alpha goes to Phi(z0 + (z0 + z_alpha)/(1 - a(z0 + z_alpha))).
    """
    below = (np.sum(reps < theta) + 0.5 * np.sum(reps == theta)) / reps.size
    below = float(np.clip(below, 1.0 / (reps.size + 1), reps.size / (reps.size + 1)))
    z0 = float(special.ndtri(below))
    jk = finite(jack)
    d = jk.mean() - jk if jk.size else np.zeros(1)
    denom = 6.0 * float(np.sum(d**2)) ** 1.5
    a = float(np.sum(d**3)) / denom if denom > 0 else 0.0

    def adjusted(alpha: float) -> float:
        z = float(special.ndtri(alpha))
        return float(special.ndtr(z0 + (z0 + z) / (1 - a * (z0 + z))))

    qs = [adjusted((1 - level) / 2), adjusted((1 + level) / 2), adjusted(level)]
    lo, hi, up = np.quantile(reps, qs)
    return theta, min(float(lo), theta), max(float(hi), theta), max(float(up), theta)


def bias_corrected_interval(theta: float, reps: np.ndarray,
                            level: float) -> tuple[float, float, float, float]:
    """(estimate, low, high, upper) of the bias-corrected percentile interval (module doc).

    Examples
    --------
    Replicates centred 0.005 above the plug-in value 0.045: the estimate moves down by 0.005,
    the interval by 0.01 to [0.031, 0.049], and its half-widths (0.009) are stretched by
    w = 1 + 0.005 / 0.04 = 1.125.

    >>> import numpy as np
    >>> reps = 0.05 + np.linspace(-0.01, 0.01, 1001)          # mean 0.05
    >>> est, low, high, up = bias_corrected_interval(0.045, reps, 0.9)
    >>> round(est, 6), round(low, 6), round(high, 6), round(up, 6)
    (0.04, 0.029875, 0.050125, 0.049)
    """
    bias = float(np.mean(reps)) - theta
    est = max(0.0, theta - bias)
    lo, hi, up = (float(v) - 2 * bias for v in
                  np.quantile(reps, [(1 - level) / 2, (1 + level) / 2, level]))
    stretch = 1.0
    if bias > 0:
        stretch = MAX_STRETCH if est <= 0 else min(MAX_STRETCH, 1.0 + bias / est)
    low = max(0.0, est - stretch * (est - lo))
    if est < BIAS_DOMINATED * bias:
        low = 0.0
    high = max(est + stretch * (hi - est), est)
    upper = max(est + stretch * (up - est), est)
    return est, min(low, est), high, upper


def interval_method(name: str, method: str) -> str:
    """The method one field gets: ``"bias-corrected"`` applies to :data:`BIASED_FIELDS` only
    (the other fields get the percentile interval)."""
    if method == "bias-corrected":
        return "bias-corrected percentile" if name in BIASED_FIELDS else "percentile"
    return method
