"""SKCE (Widmann, Lindsten, Zachariah 2019): trueprob.metrics.skce.

Evidence: plain double loops over pairs in this file (hand-sized and N = 150), the estimators'
identities (block size 2 = linear, block size N = unbiased), their expectations over many
seeded calibrated and miscalibrated data sets, the tests' rejection of logits scaled by 3 and
their p-values under H0.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.distance import pdist
from scipy.stats import kstest

from trueprob.metrics.skce import median_heuristic, skce


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def calibrated(rng: np.random.Generator, n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Logits z and labels drawn from softmax(z): calibrated by construction."""
    z = rng.normal(size=(n, k)) * 1.5
    q = softmax(z)
    y = np.minimum((q.cumsum(1) < rng.random(n)[:, None]).sum(1), k - 1)
    return z, y


def loop_terms(q: np.ndarray, e: np.ndarray, nu: float) -> np.ndarray:
    """H[i, j] = exp(-||q_i - q_j|| / nu) (e_i - q_i).(e_j - q_j) by a plain double loop."""
    n = q.shape[0]
    h = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            kappa = math.exp(-math.sqrt(sum((q[i, c] - q[j, c]) ** 2
                                            for c in range(q.shape[1]))) / nu)
            h[i, j] = kappa * sum((e[i, c] - q[i, c]) * (e[j, c] - q[j, c])
                                  for c in range(q.shape[1]))
    return h


# ----------------------------------------------------------------------------- by hand
def test_four_rows_by_hand():
    q = np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4], [0.1, 0.9]])
    y = np.array([1, 1, 0, 1])
    # rows' residuals e - q: (-0.8, 0.8), (-0.3, 0.3), (0.4, -0.4), (-0.1, 0.1)
    # ||q_0 - q_1|| = ||q_2 - q_3|| = sqrt(0.5): h_01 = e^-0.7071 * 0.48, h_23 = e^-0.7071 * -0.08
    k = math.exp(-math.sqrt(0.5))
    linear = skce(y, probs=q, estimator="linear", bandwidth=1.0)
    assert linear.estimate == pytest.approx((0.48 * k - 0.08 * k) / 2, abs=1e-15)
    assert linear.std_error == pytest.approx(abs(0.48 * k + 0.08 * k) / 2, abs=1e-15)
    e = np.eye(2)[y]
    h = loop_terms(q, e, 1.0)
    u = (h.sum() - np.trace(h)) / 12
    unbiased = skce(y, probs=q, bandwidth=1.0, n_resamples=0)
    assert unbiased.estimate == pytest.approx(u, abs=1e-15)
    assert math.isnan(unbiased.p_value)
    assert unbiased.test == "none"
    block = skce(y, probs=q, estimator="block", block_size=2, bandwidth=1.0)
    assert block.estimate == pytest.approx(linear.estimate, abs=1e-15)


def test_unbiased_and_standard_error_equal_double_loop(rng):
    z, y = calibrated(rng, 150, 3)
    q = softmax(z * 2.0)  # miscalibrated: the statistic is not degenerate
    e = np.eye(3)[y]
    nu = 0.37
    h = loop_terms(q, e, nu)
    n = 150
    off = ~np.eye(n, dtype=bool)
    u = h[off].mean()
    h1 = (h.sum(1) - np.diag(h)) / (n - 1)
    zeta1 = h1.var()
    zeta2 = (h[off] ** 2).mean() - u * u
    se = math.sqrt((4 * (n - 2) * zeta1 + 2 * zeta2) / (n * (n - 1)))
    r = skce(y, probs=q, bandwidth=nu, n_resamples=0)
    assert r.estimate == pytest.approx(u, rel=1e-11)
    assert r.std_error == pytest.approx(se, rel=1e-9)
    # blocks of 10 and the linear estimator from the same matrix
    blocks = [h[b * 10:(b + 1) * 10, b * 10:(b + 1) * 10] for b in range(15)]
    values = [(x.sum() - np.trace(x)) / 90 for x in blocks]
    r = skce(y, probs=q, estimator="block", block_size=10, bandwidth=nu)
    assert r.estimate == pytest.approx(np.mean(values), rel=1e-11)
    assert r.std_error == pytest.approx(np.std(values, ddof=1) / math.sqrt(15), rel=1e-9)
    pairs = [h[2 * i, 2 * i + 1] for i in range(75)]
    assert skce(y, probs=q, estimator="linear", bandwidth=nu).estimate == \
        pytest.approx(np.mean(pairs), rel=1e-11)


def test_more_rows_than_one_pair_block(rng):
    # 2500 rows: 3 x 3 blocks of 1024 pairs, the diagonal blocks and the off-diagonal ones
    z, y = calibrated(rng, 2500, 4)
    q = softmax(z * 1.5)
    r = skce(y, probs=q, bandwidth=0.5, n_resamples=0)
    e = np.eye(4)[y] - q
    sq = (q * q).sum(1)
    total = 0.0
    for a in range(0, 2500, 500):
        d2 = sq[a:a + 500, None] + sq[None, :] - 2 * q[a:a + 500] @ q.T
        hh = np.exp(-np.sqrt(np.maximum(d2, 0)) / 0.5) * (e[a:a + 500] @ e.T)
        total += hh.sum() - np.trace(hh[:, a:a + 500])
    assert r.estimate == pytest.approx(total / (2500 * 2499), rel=1e-10)
    assert r.n == 2500


def test_identities_between_estimators(rng):
    z, y = calibrated(rng, 64, 5)
    kw = {"logits": z * 1.7, "bandwidth": 0.8}
    lin = skce(y, estimator="linear", **kw)
    two = skce(y, estimator="block", block_size=2, **kw)
    assert (two.estimate, two.std_error, two.p_value) == \
        pytest.approx((lin.estimate, lin.std_error, lin.p_value), rel=1e-13)
    # two blocks of 32: the mean of the unbiased estimator of each half
    halves = skce(y, estimator="block", block_size=32, **kw)
    first = skce(y[:32], logits=kw["logits"][:32], bandwidth=0.8, n_resamples=0)
    second = skce(y[32:], logits=kw["logits"][32:], bandwidth=0.8, n_resamples=0)
    assert halves.estimate == pytest.approx((first.estimate + second.estimate) / 2, rel=1e-12)
    # 65 rows with blocks of 2: the last row is dropped
    z65, y65 = calibrated(rng, 65, 5)
    assert skce(y65, logits=z65, estimator="linear", bandwidth=0.8).n == 64


def test_soft_targets_and_counts(rng):
    z, y = calibrated(rng, 40, 3)
    onehot = np.eye(3)[y]
    a = skce(y, logits=z, bandwidth=0.6, n_resamples=0).estimate
    assert skce(targets=onehot, logits=z, bandwidth=0.6, n_resamples=0).estimate == \
        pytest.approx(a, abs=1e-15)
    votes = rng.integers(0, 5, size=(40, 3)) + onehot.astype(np.int64)
    t = votes / votes.sum(1, keepdims=True)
    want = loop_terms(softmax(z), t, 0.6)
    u = (want.sum() - np.trace(want)) / (40 * 39)
    assert skce(counts=votes, logits=z, bandwidth=0.6, n_resamples=0).estimate == \
        pytest.approx(u, rel=1e-11)
    assert skce(targets=t, logits=z, bandwidth=0.6, n_resamples=0).estimate == \
        pytest.approx(u, rel=1e-11)


def test_soft_targets_estimate_the_same_skce(rng):
    """With t_i the label's distribution, h built from t has the expectation of h built from
    labels drawn from t (h is linear in each outcome): the means over 300 data sets agree."""
    soft, hard = [], []
    for _ in range(300):
        z = rng.normal(size=(60, 3))
        t = softmax(z)
        y = np.minimum((t.cumsum(1) < rng.random(60)[:, None]).sum(1), 2)
        q = softmax(1.8 * z)  # the model is over-confident
        soft.append(skce(targets=t, probs=q, bandwidth=0.5, n_resamples=0).estimate)
        hard.append(skce(y, probs=q, bandwidth=0.5, n_resamples=0).estimate)
    diff = np.array(hard) - np.array(soft)
    assert abs(diff.mean()) <= 3 * diff.std(ddof=1) / math.sqrt(diff.size)
    assert np.mean(soft) > 0


def test_median_heuristic_all_pairs_and_subsample(rng):
    q = softmax(rng.normal(size=(300, 4)))
    assert median_heuristic(q) == pytest.approx(np.median(pdist(q)), rel=1e-15)
    big = softmax(rng.normal(size=(4999, 4)))
    rows = np.round(np.linspace(0, 4998, 2000)).astype(int)
    assert median_heuristic(big) == pytest.approx(np.median(pdist(big[rows])), rel=1e-15)
    r = skce(rng.integers(0, 4, 300), probs=q, estimator="linear")
    assert r.bandwidth == pytest.approx(np.median(pdist(q)), rel=1e-15)


# ----------------------------------------------------------------------------- statistics
def test_unbiased_mean_zero_on_calibrated_data(rng):
    """200 calibrated data sets of 120 rows: each estimator's mean is within 3 standard errors
    of 0."""
    values: dict[str, list[float]] = {"unbiased": [], "linear": [], "block": []}
    for _ in range(200):
        z, y = calibrated(rng, 120, 4)
        for est in values:
            kw = {"n_resamples": 0} if est == "unbiased" else {}
            values[est].append(skce(y, logits=z, estimator=est, bandwidth=0.5, **kw).estimate)
    for est, v in values.items():
        v = np.asarray(v)
        assert abs(v.mean()) <= 3 * v.std(ddof=1) / math.sqrt(v.size), est


def test_linear_and_unbiased_agree_in_expectation(rng):
    """Logits scaled by 2 (over-confident): over 400 data sets the linear and block means agree
    with the unbiased mean within 4 standard errors of the paired difference (4, not 3: two
    comparisons at 3 would fail one seed in 200 by chance; a 3000-seed run gave differences of
    0.5 and 0.2 standard errors), and all are clearly positive."""
    lin, unb, blk = [], [], []
    for _ in range(400):
        z, y = calibrated(rng, 100, 3)
        unb.append(skce(y, logits=2 * z, bandwidth=0.5, n_resamples=0).estimate)
        lin.append(skce(y, logits=2 * z, estimator="linear", bandwidth=0.5).estimate)
        blk.append(skce(y, logits=2 * z, estimator="block", block_size=10,
                        bandwidth=0.5).estimate)
    unb_a = np.asarray(unb)
    for other in (np.asarray(lin), np.asarray(blk)):
        d = other - unb_a
        assert abs(d.mean()) <= 4 * d.std(ddof=1) / math.sqrt(d.size)
        assert other.mean() > 5 * other.std(ddof=1) / math.sqrt(other.size)
    assert unb_a.mean() > 10 * unb_a.std(ddof=1) / math.sqrt(unb_a.size)


def test_tests_reject_logits_scaled_by_three(rng):
    z, y = calibrated(rng, 20000, 5)
    assert skce(y, logits=3 * z, estimator="linear").p_value < 1e-3
    assert skce(y, logits=3 * z, estimator="block").p_value < 1e-6
    r = skce(y[:1000], logits=3 * z[:1000], n_resamples=200, random_state=1)
    assert r.p_value == pytest.approx(1 / 201)  # no replicate reaches U
    # and the calibrated logits are not rejected
    assert skce(y, logits=z, estimator="block").p_value > 1e-3


@pytest.mark.slow
@pytest.mark.parametrize(("estimator", "n"), [("linear", 200), ("block", 320),
                                              ("unbiased", 80)])
def test_p_values_uniform_under_h0(rng, estimator, n):
    """300 calibrated data sets: the p-values' distribution is not far from uniform (KS test
    at the 0.1% level) and about 5% of them fall below 0.05."""
    p = []
    for _ in range(300):
        z, y = calibrated(rng, n, 3)
        kw = {"n_resamples": 199, "random_state": rng} if estimator == "unbiased" else {}
        p.append(skce(y, logits=z, estimator=estimator, **kw).p_value)
    p_arr = np.asarray(p)
    assert kstest(p_arr, "uniform").pvalue > 1e-3
    # Binomial(300, 0.05): mean 15, sd 3.8
    assert 3 <= np.count_nonzero(p_arr < 0.05) <= 30


def test_bootstrap_is_seeded(rng):
    z, y = calibrated(rng, 60, 3)
    a = skce(y, logits=z, n_resamples=99, random_state=7)
    b = skce(y, logits=z, n_resamples=99, random_state=7)
    assert a.p_value == b.p_value
    assert a.n_resamples == 99
    assert a.test.startswith("bootstrap of the degenerate U-statistic")


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"estimator": "quadratic"}, ValueError, r"estimator must be one of .*got 'quadratic'"),
    ({"block_size": 4}, ValueError, "block_size applies to estimator='block' only"),
    ({"estimator": "block", "block_size": 1}, ValueError, "block_size must be an integer >= 2"),
    ({"estimator": "block", "block_size": 4.0}, ValueError, "block_size must be an integer"),
    ({"estimator": "block", "block_size": 6}, ValueError,
     r"estimator='block' needs at least 12 rows \(2 blocks of 6\); got 10"),
    ({"bandwidth": 0.0}, ValueError, "bandwidth must be a finite number > 0; got 0.0"),
    ({"bandwidth": "1"}, TypeError, "bandwidth must be a positive number or None; got '1'"),
    ({"n_resamples": -1}, ValueError, "n_resamples must be an integer >= 0; got -1"),
])
def test_bad_options(rng, kwargs, error, match):
    z, y = calibrated(rng, 10, 3)
    with pytest.raises(error, match=match):
        skce(y, logits=z, **kwargs)


def test_bad_inputs(rng):
    with pytest.raises(ValueError, match="needs at least 4 rows"):
        skce(np.array([0, 1, 0]), probs=np.array([0.2, 0.5, 0.4]), estimator="linear")
    with pytest.raises(ValueError, match="median distance between predictions is 0"):
        skce(np.array([0, 1, 0]), probs=np.array([0.5, 0.5, 0.5]))
    with pytest.raises(TypeError, match="unexpected keyword argument 'confidences'"):
        skce(np.array([0, 1]), confidences=np.array([0.5, 0.6]))  # type: ignore[call-arg]
    with pytest.raises(ValueError, match=r"labels must be in 0\.\.2"):
        skce(np.array([0, 3]), logits=rng.normal(size=(2, 3)))


@pytest.mark.torch
def test_torch_equals_numpy(rng):
    torch = pytest.importorskip("torch")
    z, y = calibrated(rng, 300, 4)
    for est in ("unbiased", "linear", "block"):
        kw = {"n_resamples": 0} if est == "unbiased" else {}
        a = skce(y, logits=z, estimator=est, **kw)
        b = skce(torch.from_numpy(y), logits=torch.from_numpy(z), estimator=est, **kw)
        assert b.estimate == pytest.approx(a.estimate, rel=1e-12)
        assert b.bandwidth == pytest.approx(a.bandwidth, rel=1e-12)
