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

Three fields get their own rule, each chosen from what ``bench/coverage.py`` measured:

- ``ks``: the lower end is 0 unless the KS statistic rejects "calibrated" at the interval's
  level. Under that hypothesis the cumulative residual S(t) = (1/W) sum_{c_i <= t} (c_i - a_i)
  is a martingale in t whose increments have variance c_i (1 - c_i) / W^2, so KS / sigma,
  sigma^2 = sum_i c_i (1 - c_i) / W^2, is at most sup_{s <= 1} |B(s)| of a Brownian motion B
  (Arrieta-Ibarra, Gujral, Tannen, Tygert & Xu 2022, "Metrics of calibration for probabilistic
  predictions", JMLR 23(351)); the lower end is 0 while KS <= sigma x_level, x_level the
  ``level`` quantile of sup|B| (2.2414 at 0.95). sigma is read off the KS grid's cell means
  (frequency weights, as the debiased ECE counts them). The bootstrap ratio rule below does not
  separate a calibrated model from a small KS error: the study's 95th percentile of
  theta_bc / b under calibration ranged from 9 to 16.
- ``ece_debiased``: the estimator (Kumar et al. 2019) is already unbiased for the squared
  error, so its replicates are centred on the sample's plug-in squared error, not on the
  estimate; the interval is the percentile interval of the squared replicates moved down by
  that offset (b2 = mean(theta*^2) - theta^2), then square-rooted with negative ends at 0.
  The plain percentile interval covered 0.53-0.87 at true errors 0.01-0.03, N = 2000.
- ``mce``: the largest gap over bins is dominated by nearly empty bins, and no interval the
  study tried covered it from below (a positive lower end missed the truth in up to 40 % of
  samples at N = 2000); the data bound it from above only. The interval is [0, U_2], U_2 the
  bias-corrected two-sided upper end, and ``upper`` the one-sided bound: "the MCE is at most
  U".

And one rule for ``class_conditional_ece`` with few rows per class: with fewer than
:data:`MIN_ROWS_PER_CLASS` rows per class on average (N / K), the rows predicted as a class
fill its bins with one or two rows each, the bin gaps saturate and the bootstrap replicates are
no noisier than the sample, so their mean cannot show the bias; the lower end is 0. The study
measured two-sided coverage 0.00 at K = 100, N = 500 (N / K = 5), calibrated or not, and near
nominal from N / K = 20.

Each is widened, if need be, to contain its estimate.
"""

from __future__ import annotations

import numpy as np
from scipy import special

#: Report fields whose plug-in value is biased upward by bin noise (sums of |gap| or gap^2,
#: maxima of |gap|): their default interval is about the bias-corrected estimate.
BIASED_FIELDS = ("ece", "mce", "rmsce", "classwise_ece", "class_conditional_ece", "ks")
METHODS = ("bias-corrected", "percentile", "bca")
#: theta_bc < BIAS_DOMINATED[field] * bias: the interval's lower end is 0. Each is above the
#: 95th percentile of theta_bc / bias that the coverage study measured on calibrated models
#: (K = 3 and 10, N = 500 to 10^4): ece 4.0-5.2, rmsce 2.9-4.8, classwise 2.1-2.8,
#: class-conditional 2.2-3.0. KS uses the test of the module doc instead (0: no ratio rule).
BIAS_DOMINATED = {"ece": 6.0, "mce": 6.0, "rmsce": 5.0, "classwise_ece": 4.0,
                  "class_conditional_ece": 4.0, "ks": 0.0}
#: class_conditional_ece with fewer rows per class than this (N / K): the lower end is 0
MIN_ROWS_PER_CLASS = 20.0
#: The method each field gets under ``method="bias-corrected"`` (every other field: percentile).
DEFAULT_METHODS = {
    "ece": "bias-corrected percentile",
    "rmsce": "bias-corrected percentile",
    "classwise_ece": "bias-corrected percentile",
    "class_conditional_ece": "bias-corrected percentile",
    "ks": "bias-corrected percentile (KS test at 0)",
    "mce": "upper bound",
    "ece_debiased": "debiased percentile",
}
#: Methods whose interval is about the bias-corrected estimate theta - b (not the plug-in).
BIAS_CORRECTED = ("bias-corrected percentile", "bias-corrected percentile (KS test at 0)",
                  "upper bound")
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


def bias_corrected_interval(theta: float, reps: np.ndarray, level: float,
                            dominated: float = 4.0) -> tuple[float, float, float, float]:
    """(estimate, low, high, upper) of the bias-corrected percentile interval (module doc);
    the lower end is 0 where the estimate is under ``dominated`` times the bias.

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
    if est < dominated * bias:
        low = 0.0
    high = max(est + stretch * (hi - est), est)
    upper = max(est + stretch * (up - est), est)
    return est, min(low, est), high, upper


def debiased_interval(theta: float, reps: np.ndarray,
                      level: float) -> tuple[float, float, float, float]:
    """(estimate, low, high, upper) for the debiased ECE (module doc): the squared replicates'
    percentile interval moved down by b2 = mean(theta*^2) - theta^2, square-rooted.

    Examples
    --------
    >>> import numpy as np
    >>> reps = np.sqrt(np.linspace(0.0005, 0.0015, 1001))   # squares: mean 0.001
    >>> est, low, high, up = debiased_interval(0.02, reps, 0.9)   # theta^2 = 0.0004
    >>> round(est, 4), round(low, 4), round(high, 4), round(up, 4)
    (0.02, 0.0, 0.0292, 0.0283)
    """
    squares = np.square(reps)
    shift = float(np.mean(squares)) - theta * theta
    lo, hi, up = (float(np.sqrt(max(float(v) - shift, 0.0))) for v in
                  np.quantile(squares, [(1 - level) / 2, (1 + level) / 2, level]))
    return theta, min(lo, theta), max(hi, theta), max(up, theta)


def sup_brownian_quantile(level: float) -> float:
    """x with P(sup_{s <= 1} |B(s)| <= x) = level for a standard Brownian motion B.

    P(sup |B| <= x) = (4 / pi) sum_{k >= 0} (-1)^k / (2k + 1) exp(-(2k + 1)^2 pi^2 / (8 x^2))
    (Feller 1951; Borodin & Salminen, Handbook of Brownian Motion, 1.1.4).

    >>> round(sup_brownian_quantile(0.95), 4), round(sup_brownian_quantile(0.9), 4)
    (2.2414, 1.96)
    """
    from scipy.optimize import brentq

    def cdf(x: float) -> float:
        k = np.arange(60)
        return float(4 / np.pi * np.sum((-1.0) ** k / (2 * k + 1)
                                        * np.exp(-((2 * k + 1) ** 2) * np.pi**2 / (8 * x * x))))

    return float(brentq(lambda x: cdf(x) - level, 0.3, 10.0, xtol=1e-12))


def ks_rejects(theta: float, ks_scale: float | None, level: float) -> bool:
    """Whether a KS calibration error ``theta`` rejects "calibrated" at ``level`` (module doc):
    theta > ks_scale * :func:`sup_brownian_quantile` (level). Without a scale: True."""
    if ks_scale is None or not np.isfinite(ks_scale):
        return True
    return theta > ks_scale * sup_brownian_quantile(level)


def interval_for(name: str, method: str, theta: float, reps: np.ndarray, level: float, *,
                 jack: np.ndarray | None = None, ks_scale: float | None = None,
                 rows_per_class: float | None = None
                 ) -> tuple[str, tuple[float, float, float, float]]:
    """(method used, (estimate, low, high, upper)) of field ``name``'s interval: the one
    dispatch from a method name to an interval, shared by :func:`trueprob.bootstrap` and
    ``bench/coverage.py``. ``jack`` (leave-one-block-out values) is needed by ``"bca"``;
    ``ks_scale`` (sigma of the module doc) by the KS rule of ``"bias-corrected"``, and
    ``rows_per_class`` (N / K) by its class-conditional rule (None: not applied)."""
    used = interval_method(name, method)
    if used == "bca":
        if jack is None:
            raise ValueError("method 'bca' needs the leave-one-block-out values (jack=)")
        return used, bca_interval(theta, reps, jack, level)
    if used == "percentile":
        return used, percentile_interval(theta, reps, level)
    if used == "debiased percentile":
        return used, debiased_interval(theta, reps, level)
    est, low, high, upper = bias_corrected_interval(theta, reps, level, BIAS_DOMINATED[name])
    few_rows = (name == "class_conditional_ece" and rows_per_class is not None
                and rows_per_class < MIN_ROWS_PER_CLASS)
    if (used == "upper bound" or few_rows
            or (name == "ks" and not ks_rejects(theta, ks_scale, level))):
        low = 0.0
    return used, (est, low, high, upper)


def interval_method(name: str, method: str) -> str:
    """The method one field gets: ``"bias-corrected"`` gives each field its
    :data:`DEFAULT_METHODS` entry (the fields not listed get the percentile interval)."""
    if method == "bias-corrected":
        return DEFAULT_METHODS.get(name, "percentile")
    return method
