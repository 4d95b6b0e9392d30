"""Non-parametric binary calibrators: isotonic regression, histogram binning, scaling-binning.

Each maps the model's binary log-odds s (see :mod:`trueprob.calibrators.binary`) through a
step function to a calibrated probability p', fitted on a calibration set with weights w_i and
targets t_i in [0, 1] (hard labels, soft targets or count fractions). Every fitted value is a
weighted mean of targets (or, for scaling-binning, of scaled scores) over a group of rows, which
is also the maximum of the weighted Bernoulli likelihood over that group.

A fitted value can be exactly 0 or 1 (a group with only one class); its log-probability would
be -inf, so predictions clip p' to [clip, 1 - clip] (``clip=0`` keeps the exact values).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from trueprob._array import Array, as_array, device
from trueprob.calibrators.base import CalibratorFormatError
from trueprob.calibrators.binary import (
    BinaryCalibrator,
    check_positive_int,
    check_scalar,
    log_sigmoid,
    platt_fit,
)
from trueprob.core.binning import Binning, equal_mass_edges
from trueprob.core.options import BinningName, check_binning

# --------------------------------------------------------------------------- helpers


def _check_clip(clip: Any, owner: str) -> float:
    if isinstance(clip, bool) or not isinstance(clip, (int, float)) or not 0 <= clip < 0.5:
        raise ValueError(f"{owner}: clip must be a number in [0, 0.5); got {clip!r}")
    return float(clip)


def _prob_log_odds(xp: Any, p: Array, clip: float) -> Array:
    """log(p) - log(1 - p) of p clipped to [clip, 1 - clip]; +-inf at exactly 0 and 1."""
    p = xp.clip(p, clip, 1.0 - clip)
    inner = (p > 0) & (p < 1)
    safe = xp.where(inner, p, xp.full_like(p, 0.5))
    lo = xp.log(safe) - xp.log1p(-safe)
    return xp.where(inner, lo, xp.where(p <= 0, -xp.inf, xp.inf))


def _prob(xp: Any, s: Array) -> Array:
    """sigmoid(s) as exp(log_sigmoid(s)): fit and predict use this one formula, so a
    calibration row equal to a bin edge lands in the same bin at fit and predict time."""
    return xp.exp(log_sigmoid(xp, s))


def _lookup(xp: Any, table: np.ndarray, index: Array) -> Array:
    return xp.take(as_array(table, xp, device(index)), index)


def _check_array(value: Any, name: str, owner: str, *, shape: tuple[int, ...] | None = None,
                 low: float | None = None, high: float | None = None,
                 increasing: bool = False) -> np.ndarray:
    if not isinstance(value, np.ndarray) or value.ndim != 1:
        raise CalibratorFormatError(f"{owner}: {name} must be a 1-D array; got {value!r}")
    arr = value.astype(np.float64)
    if shape is not None and arr.shape != shape:
        raise CalibratorFormatError(
            f"{owner}: {name} must have shape {shape}; got {arr.shape}"
        )
    finite = np.isfinite(arr) if low is not None or high is not None else ~np.isnan(arr)
    if not np.all(finite) \
            or (low is not None and np.any(arr < low)) \
            or (high is not None and np.any(arr > high)) \
            or (increasing and np.any(np.diff(arr) < 0)):
        rng = f" in [{low}, {high}]" if low is not None else ""
        order = ", non-decreasing" if increasing else ""
        raise CalibratorFormatError(
            f"{owner}: {name} must be{rng} without NaN{order}; got {arr.tolist()}"
        )
    return arr


# --------------------------------------------------------------------------- PAV


def pav(y: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted pool-adjacent-violators: the non-decreasing fit of ``y`` in its given order.

    Minimises sum_j w_j (m_j - y_j)^2 over m_1 <= ... <= m_n (w_j > 0). Returns
    ``(starts, means)``: the index where each block of the solution starts and the block's
    weighted mean; blocks with equal means are merged, so means are strictly increasing.

    Examples
    --------
    >>> starts, means = pav(np.array([1.0, 3.0, 2.0, 4.0]), np.array([1.0, 1.0, 1.0, 1.0]))
    >>> starts.tolist(), means.tolist()
    ([0, 1, 3], [1.0, 2.5, 4.0])
    """
    start: list[int] = []
    mean: list[float] = []
    weight: list[float] = []
    # plain Python floats: element access on numpy arrays would dominate the loop
    for j, (m, v) in enumerate(zip(np.asarray(y, np.float64).tolist(),
                                   np.asarray(w, np.float64).tolist(), strict=True)):
        s = j
        # pool while the previous block's mean is not below this one's
        while mean and mean[-1] >= m:
            pw = weight.pop()
            pm = mean.pop()
            s = start.pop()
            m = (pw * pm + v * m) / (pw + v)
            v += pw
        start.append(s)
        mean.append(m)
        weight.append(v)
    return np.asarray(start, dtype=np.int64), np.asarray(mean, dtype=np.float64)


def isotonic_steps(s: np.ndarray, t: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Isotonic regression of t on s with ties pooled: ``(thresholds, values)`` of the steps.

    Rows with equal s form one group (weight sum_i w_i, value the weighted mean target), so
    they always share one fitted value; PAV (:func:`pav`) then runs over the groups sorted by
    s. ``thresholds[j]`` is the smallest s of block j and ``values[j]`` its weighted mean
    target. Rows with w_i = 0 are ignored.
    """
    keep = w > 0
    s, t, w = s[keep], t[keep], w[keep]
    order = np.argsort(s, kind="stable")
    s, t, w = s[order], t[order], w[order]
    first = np.flatnonzero(np.concatenate([[True], s[1:] != s[:-1]]))
    gw = np.add.reduceat(w, first)
    gy = np.add.reduceat(w * t, first) / gw
    starts, means = pav(gy, gw)
    return s[first][starts], np.clip(means, 0.0, 1.0)


# --------------------------------------------------------------------------- isotonic


class IsotonicCalibration(BinaryCalibrator):
    """Isotonic calibration: the monotone map of maximum Bernoulli likelihood (PAV, ties pooled).

    Among all non-decreasing maps m of the model's log-odds s, the weighted least-squares fit
    min sum_i w_i (m(s_i) - t_i)^2 found by pool-adjacent-violators also maximises the
    weighted Bernoulli likelihood sum_i w_i [t_i log m(s_i) + (1 - t_i) log(1 - m(s_i))]
    (an isotonic fit minimises every Bregman divergence at once; Barlow et al. 1972, Brümmer
    and du Preez 2013). Rows with equal scores form one group and share one value. Because the
    map depends only on the order of the scores, fitting on s or on p = sigmoid(s) is the same.

    The fitted map is a **step function**, not an interpolation: block j of the solution (rows
    with thresholds_[j] <= s < thresholds_[j+1]) gets values_[j], the weighted mean target of
    its rows, and a new score gets the value of the last block starting at or below it (the
    first block's value below all of them). Steps keep the in-sample property that each output
    value equals the mean outcome of the rows that get it (so the fit is calibrated on its
    calibration set), depend only on the order of the scores (not on whether one interpolates
    in s or in p), and give the same likelihood as any monotone interpolation at the fitted
    points, which is all the data determine.

    Parameters
    ----------
    clip : float
        Predictions are clipped to [clip, 1 - clip] so that log-probabilities stay finite;
        1e-6. ``clip=0`` returns the exact values (0 or 1 give -inf log-probabilities).

    Attributes
    ----------
    thresholds_ : ndarray (M,)
        Smallest log-odds of each block (increasing).
    values_ : ndarray (M,)
        Calibrated probability of each block (increasing).
    kind_ : {"logits", "probs"}
        What it was fitted on (and what :meth:`to_torch`'s module takes).

    Notes
    -----
    Needs all rows of the calibration set in memory: one sort, then PAV as a linear pass in
    Python (about 2-4 s per million rows on one core).

    Examples
    --------
    >>> import numpy as np
    >>> from trueprob.calibrators.nonparametric import IsotonicCalibration
    >>> p = np.array([0.1, 0.3, 0.3, 0.6, 0.8])
    >>> y = np.array([0, 1, 0, 0, 1])
    >>> cal = IsotonicCalibration(clip=0.0).fit(y, probs=p)
    >>> cal.values_.tolist()
    [0.0, 0.3333333333333333, 1.0]
    >>> np.exp(cal.predict_logproba(probs=np.array([0.2, 0.7])))[:, 1].round(4).tolist()
    [0.0, 0.3333]
    """

    _fitted_attrs = ("thresholds_", "values_", "kind_")

    def __init__(self, *, clip: float = 1e-6) -> None:
        self.clip = clip

    def _fit_log_odds(self, s: np.ndarray, t: np.ndarray, w: np.ndarray) -> None:
        _check_clip(self.clip, type(self).__name__)
        self.thresholds_, self.values_ = isotonic_steps(s, t, w)

    def _log_odds(self, xp: Any, s: Array) -> Array:
        clip = _check_clip(self.clip, type(self).__name__)
        thresholds = as_array(self.thresholds_, xp, device(s))
        idx = xp.searchsorted(thresholds, s, side="right") - 1
        idx = xp.clip(idx, 0, int(self.values_.shape[0]) - 1)
        return _prob_log_odds(xp, _lookup(xp, self.values_, idx), clip)

    def _check_loaded(self) -> None:
        name = type(self).__name__
        self.thresholds_ = _check_array(self.thresholds_, "thresholds_", name, increasing=True)
        self.values_ = _check_array(self.values_, "values_", name,
                                    shape=self.thresholds_.shape, low=0.0, high=1.0,
                                    increasing=True)
        if self.values_.size == 0:
            raise CalibratorFormatError(f"{name}: values_ must not be empty")
        self._check_kind()



# --------------------------------------------------------------------------- binning


def _bin_means(binning: Binning, x: np.ndarray, v: np.ndarray,
               w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(weighted mean of v, weight) per bin of x; an empty bin gets its centre and weight 0."""
    b = binning.n_bins
    idx = binning.index(np, x)
    weight = np.bincount(idx, weights=w, minlength=b)
    total = np.bincount(idx, weights=w * v, minlength=b)
    edges = binning.edge_array()
    centre = (edges[:-1] + edges[1:]) / 2.0
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(weight > 0, total / np.where(weight > 0, weight, 1.0), centre)
    return np.clip(means, 0.0, 1.0), weight


class HistogramBinning(BinaryCalibrator):
    """Histogram binning (Zadrozny and Elkan 2001): the mean outcome of the model's bin.

    The model's probabilities p_i = sigmoid(s_i) are put into B bins, and a new p gets the
    weighted mean target of its bin on the calibration set,

        p'(p) = sum_{i in bin(p)} w_i t_i / sum_{i in bin(p)} w_i,

    which is the maximum-likelihood (Bernoulli) constant for each bin. Bins are right-closed
    as in SPEC.md ("Binning"): ``binning="mass"`` (default, Zadrozny and Elkan's equal-
    frequency bins) puts the edges at weighted quantiles of the calibration p (ties never
    split); ``binning="width"`` uses (j/B, (j+1)/B]. A bin with no calibration rows gets its
    centre (e_j + e_{j+1}) / 2, i.e. roughly the identity map there; ``bin_weight_`` says
    which bins were empty.

    Parameters
    ----------
    n_bins : int
        B; 10, as in Zadrozny and Elkan (2001).
    binning : {"mass", "width"}
        Equal-mass or equal-width bins.
    clip : float
        Predictions are clipped to [clip, 1 - clip]; 1e-6 (see the module docstring).

    Attributes
    ----------
    edges_ : ndarray (B + 1,)
        Bin edges in probability, from 0 to 1.
    values_ : ndarray (B,)
        Calibrated probability of each bin.
    bin_weight_ : ndarray (B,)
        Calibration weight W_b of each bin.
    kind_ : {"logits", "probs"}
        What it was fitted on (and what :meth:`to_torch`'s module takes).

    Examples
    --------
    >>> import numpy as np
    >>> from trueprob.calibrators.nonparametric import HistogramBinning
    >>> p = np.array([0.1, 0.2, 0.35, 0.4, 0.7, 0.9])
    >>> y = np.array([0, 0, 1, 0, 1, 1])
    >>> cal = HistogramBinning(n_bins=2, binning="width").fit(y, probs=p)
    >>> cal.values_.tolist(), cal.bin_weight_.tolist()
    ([0.25, 1.0], [4.0, 2.0])
    """

    _fitted_attrs = ("edges_", "values_", "bin_weight_", "kind_")

    def __init__(self, *, n_bins: int = 10, binning: BinningName = "mass",
                 clip: float = 1e-6) -> None:
        self.n_bins = n_bins
        self.binning = binning
        self.clip = clip

    def _binning(self, edges: np.ndarray | None = None) -> Binning:
        name = type(self).__name__
        n_bins = check_positive_int(self.n_bins, "n_bins", name)
        if check_binning(self.binning, name) == "width":
            return Binning(n_bins)
        edges = self.edges_ if edges is None else edges
        return Binning(n_bins, edges=tuple(float(e) for e in edges))

    def _fit_log_odds(self, s: np.ndarray, t: np.ndarray, w: np.ndarray) -> None:
        name = type(self).__name__
        n_bins = check_positive_int(self.n_bins, "n_bins", name)
        check_binning(self.binning, name)
        _check_clip(self.clip, name)
        p = _prob(np, s)
        edges = equal_mass_edges(p, w, n_bins) if self.binning == "mass" else None
        binning = self._binning(edges) if edges is not None else Binning(n_bins)
        self.values_, self.bin_weight_ = _bin_means(binning, p, t, w)
        self.edges_ = binning.edge_array()

    def _log_odds(self, xp: Any, s: Array) -> Array:
        clip = _check_clip(self.clip, type(self).__name__)
        p = _prob(xp, s)
        idx = self._binning().index(xp, p)
        return _prob_log_odds(xp, _lookup(xp, self.values_, idx), clip)

    def _check_loaded(self) -> None:
        _check_binned_state(self, with_weight=True)



def _check_binned_state(cal: Any, *, with_weight: bool) -> None:
    name = type(cal).__name__
    cal._check_kind()
    n_bins = check_positive_int(cal.n_bins, "n_bins", name)
    cal.edges_ = _check_array(cal.edges_, "edges_", name, shape=(n_bins + 1,), low=0.0,
                              high=1.0, increasing=True)
    if cal.edges_[0] != 0.0 or cal.edges_[-1] != 1.0:
        raise CalibratorFormatError(f"{name}: edges_ must run from 0 to 1; got "
                                    f"{cal.edges_.tolist()}")
    cal.values_ = _check_array(cal.values_, "values_", name, shape=(n_bins,), low=0.0,
                               high=1.0)
    if with_weight:
        cal.bin_weight_ = _check_array(cal.bin_weight_, "bin_weight_", name, shape=(n_bins,),
                                       low=0.0, high=math.inf)


# --------------------------------------------------------------------------- scaling-binning


class ScalingBinning(BinaryCalibrator):
    """Scaling-binning (Kumar, Liang, Ma 2019): Platt scaling, then binned and averaged.

    The calibration rows are shuffled (seed ``random_state``) and split in two:

    1. on the first ``fit_fraction`` of them, fit Platt scaling g(s) = sigmoid(a s + b)
       (maximum Bernoulli likelihood, :class:`~trueprob.calibrators.binary.PlattScaling`);
    2. on the rest, compute g(s_i) and put B equal-mass bins on these values (edges at their
       weighted quantiles, right-closed, ties never split);
    3. on the same rows, set each bin's value to the weighted mean of the **scaled values**
       g(s_i) in it, mu_b = sum_{i in b} w_i g(s_i) / sum_{i in b} w_i (not the mean label).

    The calibrated probability of a new score is mu_{bin(g(s))}. Steps 2 and 3 use no labels.
    The paper draws the bins (its T2) and the bin means (its T3) from two further disjoint
    sets; here they share the second part (the authors' code, p-lambda/verified_calibration,
    runs all three steps on the same rows). Averaging g instead of labels gives a map with
    finitely many values (so its calibration error can be estimated by binning) whose bin
    values vary like means of smooth values, not of noisy labels.

    Parameters
    ----------
    n_bins : int
        B; 10.
    fit_fraction : float
        Share of the rows used to fit Platt scaling, in (0, 1); 0.5.
    random_state : int
        Seed of the row shuffle (``np.random.default_rng(random_state)``); 0.

    Attributes
    ----------
    coef_, intercept_ : float
        The Platt map (a, b).
    edges_ : ndarray (B + 1,)
        Bin edges on g, from 0 to 1.
    values_ : ndarray (B,)
        mu_b, the mean scaled value of each bin (an empty bin gets its centre).
    kind_ : {"logits", "probs"}
        What it was fitted on (and what :meth:`to_torch`'s module takes).

    Examples
    --------
    >>> import numpy as np
    >>> from trueprob.calibrators.nonparametric import ScalingBinning
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=400) * 2
    >>> y = (rng.random(400) < 1 / (1 + np.exp(-z))).astype(int)
    >>> cal = ScalingBinning(n_bins=5).fit(y, logits=z)
    >>> out = np.exp(cal.predict_logproba(logits=z))[:, 1]
    >>> len(np.unique(out))   # one value per bin
    5
    """

    _fitted_attrs = ("coef_", "intercept_", "edges_", "values_", "kind_")

    def __init__(self, *, n_bins: int = 10, fit_fraction: float = 0.5,
                 random_state: int = 0) -> None:
        self.n_bins = n_bins
        self.fit_fraction = fit_fraction
        self.random_state = random_state

    def _fit_log_odds(self, s: np.ndarray, t: np.ndarray, w: np.ndarray) -> None:
        name = type(self).__name__
        n_bins = check_positive_int(self.n_bins, "n_bins", name)
        frac = self.fit_fraction
        if isinstance(frac, bool) or not isinstance(frac, (int, float)) or not 0 < frac < 1:
            raise ValueError(f"{name}: fit_fraction must be in (0, 1); got {frac!r}")
        seed = self.random_state
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"{name}: random_state must be a non-negative integer seed; "
                             f"got {seed!r}")
        n = s.shape[0]
        n_fit = round(frac * n)
        if n_fit < 2 or n - n_fit < n_bins:
            raise ValueError(
                f"{name} needs at least 2 rows to fit the scaling map and n_bins={n_bins} rows "
                f"to bin; {n} rows with fit_fraction={frac} give {n_fit} and {n - n_fit}"
            )
        perm = np.random.default_rng(int(seed)).permutation(n)
        first, second = perm[:n_fit], perm[n_fit:]
        a, b, _ = platt_fit(s[first], t[first], w[first], max_iter=100, tol=1e-12,
                            owner=f"{name} (scaling step)")
        g = _prob(np, a * s[second] + b)
        edges = equal_mass_edges(g, w[second], n_bins)
        binning = Binning(n_bins, edges=tuple(float(e) for e in edges))
        self.values_, _ = _bin_means(binning, g, g, w[second])
        self.coef_, self.intercept_, self.edges_ = a, b, binning.edge_array()

    def _log_odds(self, xp: Any, s: Array) -> Array:
        g = _prob(xp, self.coef_ * s + self.intercept_)
        binning = Binning(int(self.n_bins), edges=tuple(float(e) for e in self.edges_))
        return _prob_log_odds(xp, _lookup(xp, self.values_, binning.index(xp, g)), 0.0)

    def _check_loaded(self) -> None:
        name = type(self).__name__
        self.coef_ = check_scalar(self.coef_, "coef_", name)
        self.intercept_ = check_scalar(self.intercept_, "intercept_", name)
        _check_binned_state(self, with_weight=False)


__all__ = ["HistogramBinning", "IsotonicCalibration", "ScalingBinning", "isotonic_steps", "pav"]
