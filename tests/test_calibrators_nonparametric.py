"""Isotonic calibration (PAV), histogram binning and scaling-binning.

PAV is checked against scipy.optimize.isotonic_regression (scipy >= 1.12) and against a
direct maximisation of the Bernoulli likelihood over monotone maps; binning against bins built
a second way (np.quantile's inverted CDF, which is the weighted-quantile rule of SPEC.md for
unit weights); scaling-binning against the three steps of Kumar et al. (2019) redone by hand.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import isotonic_regression, minimize
from scipy.special import expit, log_expit

from trueprob.calibrators.base import CalibratorFormatError, from_dict
from trueprob.calibrators.binary import PlattScaling
from trueprob.calibrators.nonparametric import (
    HistogramBinning,
    IsotonicCalibration,
    ScalingBinning,
    isotonic_steps,
    pav,
)


def fitted_at(thresholds: np.ndarray, values: np.ndarray, s: np.ndarray) -> np.ndarray:
    """The step map at s: the value of the last block starting at or below s."""
    idx = np.clip(np.searchsorted(thresholds, s, side="right") - 1, 0, values.size - 1)
    return values[idx]


# --------------------------------------------------------------------------- PAV


def test_pav_hand_case():
    # 1, 3, 2, 4 with weights 1, 1, 2, 1: 3 and 2 pool to (3 + 2*2) / 3 = 7/3
    starts, means = pav(np.array([1.0, 3.0, 2.0, 4.0]), np.array([1.0, 1.0, 2.0, 1.0]))
    assert starts.tolist() == [0, 1, 3]
    np.testing.assert_allclose(means, [1.0, 7 / 3, 4.0], rtol=1e-15)


@pytest.mark.parametrize("seed", range(5))
def test_pav_matches_scipy(seed):
    rng = np.random.default_rng(seed)
    n = 500
    y = rng.random(n) + np.linspace(0, 1, n) * rng.uniform(0, 2)
    w = rng.uniform(0.1, 3.0, size=n)
    starts, means = pav(y, w)
    ours = np.repeat(means, np.diff(np.append(starts, n)))
    ref = isotonic_regression(y, weights=w, increasing=True).x
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_isotonic_steps_pool_ties_then_match_scipy(seed):
    rng = np.random.default_rng(seed)
    n = 2000
    s = np.round(rng.normal(size=n), 1)  # many ties
    t = (rng.random(n) < expit(2 * s)).astype(float)
    w = rng.uniform(0.2, 2.0, size=n)
    thresholds, values = isotonic_steps(s, t, w)
    # second way: pool ties by np.unique, then scipy's PAV on the group means
    uniq, inv = np.unique(s, return_inverse=True)
    gw = np.bincount(inv, weights=w)
    gy = np.bincount(inv, weights=w * t) / gw
    ref = isotonic_regression(gy, weights=gw).x
    np.testing.assert_allclose(fitted_at(thresholds, values, uniq), ref, rtol=1e-12, atol=1e-14)
    # every row with the same score gets the same value
    assert np.all(np.diff(values) > 0)


def test_ties_are_pooled_before_pav():
    # s = 0 has one positive and one negative (mean 1/2) after a positive at s = -1: pooled,
    # 1 > 1/2 violates monotonicity, so all three share 2/3. Without pooling the tie, the
    # sorted order (1, 0 | 1) would decide the answer.
    thresholds, values = isotonic_steps(np.array([-1.0, 0.0, 0.0]), np.array([1.0, 1.0, 0.0]),
                                        np.ones(3))
    assert thresholds.tolist() == [-1.0]
    np.testing.assert_allclose(values, [2 / 3])
    thresholds, values = isotonic_steps(np.array([-1.0, 0.0, 0.0]), np.array([1.0, 0.0, 1.0]),
                                        np.ones(3))
    np.testing.assert_allclose(values, [2 / 3])


def test_isotonic_maximises_bernoulli_likelihood_among_monotone_maps():
    rng = np.random.default_rng(7)
    n = 60
    s = np.sort(rng.normal(size=n))
    t = (rng.random(n) < expit(1.5 * s)).astype(float)
    w = rng.uniform(0.5, 2.0, size=n)
    cal = IsotonicCalibration(clip=0.0).fit(t.astype(int), logits=s, sample_weight=w)
    m = fitted_at(cal.thresholds_, cal.values_, s)

    def nll_of(p: np.ndarray) -> float:
        p = np.clip(p, 1e-300, 1 - 1e-16)
        return float(-np.sum(w * (t * np.log(p) + (1 - t) * np.log1p(-p))))

    # second way: maximise the likelihood directly over monotone maps (log-odds = first value
    # plus cumulative non-negative increments), with a generic optimiser
    def objective(theta: np.ndarray) -> float:
        f = theta[0] + np.concatenate([[0.0], np.cumsum(np.logaddexp(0, theta[1:]))])
        return float(np.sum(w * (np.logaddexp(0, f) - t * f)))

    start = np.concatenate([[-3.0], np.full(n - 1, -2.0)])
    ref = minimize(objective, start, method="L-BFGS-B", options={"maxiter": 20_000,
                                                                 "ftol": 1e-14})
    assert nll_of(m) <= ref.fun + 1e-9
    assert nll_of(m) == pytest.approx(ref.fun, abs=0.05)


def test_isotonic_step_map_hand_case():
    p = np.array([0.1, 0.3, 0.3, 0.6, 0.8])
    y = np.array([0, 1, 0, 0, 1])
    cal = IsotonicCalibration(clip=0.0).fit(y, probs=p)
    np.testing.assert_allclose(cal.values_, [0.0, 1 / 3, 1.0])
    # blocks start at p = 0.1, 0.3, 0.8; a score takes the block starting at or below it
    q = np.exp(cal.predict_logproba(probs=np.array([0.05, 0.1, 0.29, 0.3, 0.79, 0.8, 0.99])))
    np.testing.assert_allclose(q[:, 1], [0.0, 0.0, 0.0, 1 / 3, 1 / 3, 1.0, 1.0], atol=1e-15)
    assert np.isneginf(cal.predict_logproba(probs=np.array([0.05]))[0, 1])


def test_isotonic_clip_keeps_log_probabilities_finite():
    cal = IsotonicCalibration().fit(np.array([0, 0, 1, 1, 0, 1]),
                                    probs=np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.9]))
    logp = cal.predict_logproba(probs=np.array([0.05, 0.95]))
    np.testing.assert_allclose(logp[:, 1], [np.log(1e-6), np.log1p(-1e-6)], rtol=1e-9)
    with pytest.raises(ValueError, match=r"IsotonicCalibration: clip must be a number in "
                                         r"\[0, 0.5\); got 0.7"):
        IsotonicCalibration(clip=0.7).fit(np.array([0, 1]), probs=np.array([0.2, 0.8]))


def test_isotonic_is_invariant_to_monotone_transforms_of_the_score():
    rng = np.random.default_rng(11)
    z = rng.normal(size=300) * 2
    y = (rng.random(300) < expit(z)).astype(int)
    a = IsotonicCalibration().fit(y, logits=z)
    b = IsotonicCalibration().fit(y, probs=expit(z))
    np.testing.assert_allclose(a.values_, b.values_, rtol=1e-12)


# --------------------------------------------------------------------------- histogram


def test_histogram_width_hand_case():
    p = np.array([0.1, 0.2, 0.35, 0.4, 0.7, 0.9])
    y = np.array([0, 0, 1, 0, 1, 1])
    cal = HistogramBinning(n_bins=4, binning="width", clip=0.0).fit(y, probs=p)
    # bins (0, .25], (.25, .5], (.5, .75], (.75, 1]: means 0, 1/2, 1, 1
    np.testing.assert_allclose(cal.values_, [0.0, 0.5, 1.0, 1.0])
    np.testing.assert_allclose(cal.bin_weight_, [2, 2, 1, 1])
    np.testing.assert_allclose(cal.edges_, [0, 0.25, 0.5, 0.75, 1.0])
    q = np.exp(cal.predict_logproba(probs=np.array([0.24, 0.26, 0.6, 0.99])))[:, 1]
    np.testing.assert_allclose(q, [0.0, 0.5, 1.0, 1.0], atol=1e-15)


def test_histogram_empty_bin_gets_its_centre():
    p = np.array([0.1, 0.15, 0.9, 0.95])
    y = np.array([0, 1, 1, 1])
    cal = HistogramBinning(n_bins=4, binning="width").fit(y, probs=p)
    np.testing.assert_allclose(cal.values_, [0.5, 0.375, 0.625, 1.0])
    np.testing.assert_allclose(cal.bin_weight_, [2, 0, 0, 2])


@pytest.mark.parametrize("seed", range(3))
def test_histogram_mass_bins_match_quantiles(seed):
    rng = np.random.default_rng(seed)
    n, b = 1000, 10
    z = rng.normal(size=n) * 2
    y = (rng.random(n) < expit(z)).astype(int)
    cal = HistogramBinning(n_bins=b).fit(y, logits=z)
    p = np.exp(log_expit(z))
    # second way: inner edges are the inverted-CDF quantiles j/B of p (unit weights)
    inner = np.quantile(p, np.arange(1, b) / b, method="inverted_cdf")
    np.testing.assert_allclose(cal.edges_[1:-1], inner, rtol=0, atol=0)
    idx = np.searchsorted(inner, p, side="left")  # right-closed bins
    ref = np.array([y[idx == j].mean() for j in range(b)])
    np.testing.assert_allclose(cal.values_, ref, rtol=1e-12)
    assert np.all(cal.bin_weight_ == n / b)


def test_histogram_bad_binning_named():
    with pytest.raises(ValueError, match=r"HistogramBinning: binning must be 'width' or "
                                         r"'mass'; got 'quantile'"):
        HistogramBinning(binning="quantile").fit(np.array([0, 1]), probs=np.array([0.2, 0.7]))
    with pytest.raises(ValueError, match=r"HistogramBinning: n_bins must be a positive integer"):
        HistogramBinning(n_bins=0).fit(np.array([0, 1]), probs=np.array([0.2, 0.7]))


# --------------------------------------------------------------------------- scaling-binning


def test_scaling_binning_redone_by_hand():
    rng = np.random.default_rng(5)
    n, b = 2001, 8
    z = rng.normal(size=n) * 3
    y = (rng.random(n) < expit(z / 3)).astype(int)
    cal = ScalingBinning(n_bins=b, fit_fraction=0.4, random_state=17).fit(y, logits=z)
    perm = np.random.default_rng(17).permutation(n)
    first, second = perm[:800], perm[800:]
    # step 1: Platt on the first part
    platt = PlattScaling().fit(y[first], logits=z[first])
    assert (cal.coef_, cal.intercept_) == (platt.coef_, platt.intercept_)
    # step 2: equal-mass bins of the scaled values of the second part
    g = np.exp(log_expit(platt.coef_ * z[second] + platt.intercept_))
    inner = np.quantile(g, np.arange(1, b) / b, method="inverted_cdf")
    np.testing.assert_array_equal(cal.edges_[1:-1], inner)
    # step 3: the mean scaled value (not the mean label) of each bin
    idx = np.searchsorted(inner, g, side="left")
    mu = np.array([g[idx == j].mean() for j in range(b)])
    label_means = np.array([y[second][idx == j].mean() for j in range(b)])
    np.testing.assert_allclose(cal.values_, mu, rtol=1e-12)
    assert not np.allclose(cal.values_, label_means, atol=1e-3)
    out = np.exp(cal.predict_logproba(logits=z))[:, 1]
    assert set(np.round(out, 12)) <= set(np.round(mu, 12))


def test_scaling_binning_seed_and_size_errors():
    z = np.linspace(-2, 2, 12)
    y = np.array([0, 1] * 6)
    with pytest.raises(ValueError, match=r"needs at least 2 rows to fit the scaling map and "
                                         r"n_bins=10 rows to bin; 12 rows"):
        ScalingBinning().fit(y, logits=z)
    with pytest.raises(ValueError, match=r"random_state must be a non-negative integer seed; "
                                         r"got None"):
        ScalingBinning(n_bins=2, random_state=None).fit(y, logits=z)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"fit_fraction must be in \(0, 1\); got 1.0"):
        ScalingBinning(fit_fraction=1.0).fit(y, logits=z)
    a = ScalingBinning(n_bins=3, random_state=1).fit(y, logits=z)
    b = ScalingBinning(n_bins=3, random_state=1).fit(y, logits=z)
    np.testing.assert_array_equal(a.values_, b.values_)


# --------------------------------------------------------------------------- saved form


def test_loaded_tables_are_checked():
    rng = np.random.default_rng(2)
    z = rng.normal(size=200)
    y = (rng.random(200) < expit(z)).astype(int)
    iso = IsotonicCalibration().fit(y, logits=z)
    data = iso.to_dict()
    data["fitted"]["values_"]["data"] = data["fitted"]["values_"]["data"][::-1]
    with pytest.raises(CalibratorFormatError, match=r"values_ must be in \[0.0, 1.0\] without "
                                                    r"NaN, non-decreasing"):
        from_dict(data)
    hist = HistogramBinning(n_bins=4).fit(y, logits=z)
    data = hist.to_dict()
    data["fitted"]["edges_"] = {"dtype": "float64", "shape": [3], "data": [0.0, 0.5, 1.0]}
    with pytest.raises(CalibratorFormatError, match=r"edges_ must have shape \(5,\)"):
        from_dict(data)
    data = hist.to_dict()
    data["fitted"]["edges_"]["data"][0] = 0.1
    with pytest.raises(CalibratorFormatError, match="edges_ must run from 0 to 1"):
        from_dict(data)
