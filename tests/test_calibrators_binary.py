"""Platt scaling, beta calibration and the multiclass wrappers (OneVsRest, TopLabel).

Reference values are hand-computed (saturated fits have closed forms), or computed a second way
(scikit-learn's LogisticRegression, scipy.optimize.minimize with bounds, a linear solve), or are
identities of the maps (renormalised rows, kept argmax, exact save/load).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.special import expit, log_expit, logsumexp

from trueprob.calibrators.base import CalibratorFormatError, NotFittedError, from_dict, load
from trueprob.calibrators.binary import BetaCalibration, PlattScaling
from trueprob.calibrators.multiclass import (
    OneVsRest,
    TopLabel,
    one_vs_rest_log_odds,
    top_label_log_odds,
)
from trueprob.calibrators.nonparametric import (
    HistogramBinning,
    IsotonicCalibration,
    ScalingBinning,
)

BINARY = [PlattScaling, BetaCalibration, IsotonicCalibration, HistogramBinning, ScalingBinning]


def nll_binary(logp: np.ndarray, y: np.ndarray) -> float:
    return float(-np.mean(logp[np.arange(y.size), y]))


def bernoulli_data(rng: np.random.Generator, n: int, scale: float = 1.0):
    """Calibrated log-odds z (y ~ Bernoulli(sigmoid z)), reported as scale * z."""
    z = rng.normal(size=n) * 1.5
    y = (rng.random(n) < expit(z)).astype(np.int64)
    return z * scale, y


# --------------------------------------------------------------------------- Platt


def test_platt_saturated_hand_case():
    # two distinct scores: s = 0 has 1 positive in 4 rows, s = 1 has 3 in 4. Two parameters
    # fit both frequencies exactly: b = logit(1/4) = -ln 3, a + b = logit(3/4) = ln 3.
    s = np.array([0.0] * 4 + [1.0] * 4)
    y = np.array([1, 0, 0, 0, 1, 1, 1, 0])
    cal = PlattScaling().fit(y, logits=s)
    assert cal.intercept_ == pytest.approx(-math.log(3), abs=1e-12)
    assert cal.coef_ == pytest.approx(2 * math.log(3), abs=1e-12)
    p = np.exp(cal.predict_logproba(logits=np.array([0.0, 1.0])))[:, 1]
    np.testing.assert_allclose(p, [0.25, 0.75], atol=1e-13)


def test_platt_weights_soft_targets_and_counts_agree():
    # the same calibration set as above, written three other ways
    s2 = np.array([0.0, 0.0, 1.0, 1.0])
    weighted = PlattScaling().fit(np.array([1, 0, 1, 0]), logits=s2,
                                  sample_weight=np.array([1.0, 3.0, 3.0, 1.0]))
    soft = PlattScaling().fit(targets=np.array([0.25, 0.75]), logits=np.array([0.0, 1.0]))
    counts = PlattScaling().fit(counts=np.array([[3, 1], [1, 3]]), logits=np.array([0.0, 1.0]))
    for cal in (weighted, soft, counts):
        assert cal.intercept_ == pytest.approx(-math.log(3), abs=1e-12)
        assert cal.coef_ == pytest.approx(2 * math.log(3), abs=1e-12)


def test_platt_matches_sklearn_logistic_regression(rng):
    # scikit-learn 1.9.1, LogisticRegression(C=inf) (no penalty), lbfgs: a second optimiser.
    sklearn = pytest.importorskip("sklearn.linear_model")
    s, y = bernoulli_data(rng, 3000, scale=2.5)
    w = rng.uniform(0.5, 2.0, size=s.size)
    cal = PlattScaling().fit(y, logits=s, sample_weight=w)
    ref = sklearn.LogisticRegression(C=np.inf, tol=1e-12, max_iter=10_000).fit(
        s[:, None], y, sample_weight=w)
    assert cal.coef_ == pytest.approx(float(ref.coef_[0, 0]), rel=1e-6)
    assert cal.intercept_ == pytest.approx(float(ref.intercept_[0]), rel=1e-6, abs=1e-8)
    assert cal.coef_ == pytest.approx(1 / 2.5, rel=0.1)  # undoes the known over-confidence


def test_platt_probs_input_is_logit_of_p():
    p = np.array([0.1, 0.4, 0.4, 0.7, 0.9, 0.2])
    y = np.array([0, 1, 0, 1, 0, 1])
    a = PlattScaling().fit(y, probs=p)
    b = PlattScaling().fit(y, logits=np.log(p) - np.log1p(-p))
    assert a.coef_ == pytest.approx(b.coef_, rel=1e-12)
    assert a.intercept_ == pytest.approx(b.intercept_, rel=1e-12, abs=1e-14)
    assert a.kind_ == "probs" and b.kind_ == "logits"


def test_platt_separable_and_one_class_errors():
    with pytest.raises(ValueError, match=r"separate the classes perfectly .* does not exist"):
        PlattScaling().fit(np.array([0, 0, 1, 1]), logits=np.array([-1.0, 0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match=r"needs both classes .* no positive target mass"):
        PlattScaling().fit(np.array([0, 0, 0]), logits=np.array([-1.0, 0.0, 1.0]))
    # quasi-separation (the classes only meet at one tied score) is separation too
    with pytest.raises(ValueError, match="separate the classes perfectly"):
        PlattScaling().fit(np.array([0, 1, 0, 1]), logits=np.array([-1.0, 0.0, 0.0, 1.0]))


# --------------------------------------------------------------------------- beta


def test_platt_smooth_targets_are_platts_and_fit_separable_data(rng):
    # separable scores: the plain MLE does not exist; with Platt's (1999) targets
    # (N+ + 1) / (N+ + 2) and 1 / (N- + 2) the map is the minimiser of the Bernoulli NLL on
    # those targets, found here by a general-purpose optimiser
    s = np.concatenate([rng.normal(-3, 1, 30).clip(max=-0.1), rng.normal(3, 1, 20).clip(0.1)])
    y = np.r_[np.zeros(30), np.ones(20)].astype(int)
    with pytest.raises(ValueError, match=r"smooth_targets=True"):
        PlattScaling().fit(y, logits=s)
    cal = PlattScaling(smooth_targets=True).fit(y, logits=s)
    t = np.where(y == 1, 21 / 22, 1 / 32)

    def nll(theta):
        z = theta[0] * s + theta[1]
        return -np.sum(t * log_expit(z) + (1 - t) * log_expit(-z))

    ref = minimize(nll, [1.0, 0.0], method="BFGS", options={"gtol": 1e-10}).x
    assert cal.coef_ == pytest.approx(ref[0], rel=1e-5)
    assert cal.intercept_ == pytest.approx(ref[1], abs=1e-5)
    # integer weights count as repeated rows in N+ and N- too
    w = rng.integers(1, 4, size=s.size)
    weighted = PlattScaling(smooth_targets=True).fit(y, logits=s, sample_weight=w)
    repeated = PlattScaling(smooth_targets=True).fit(np.repeat(y, w), logits=np.repeat(s, w))
    assert weighted.coef_ == pytest.approx(repeated.coef_, rel=1e-9)
    with pytest.raises(ValueError, match="smooth_targets must be True or False"):
        PlattScaling(smooth_targets="yes").fit(y, logits=s)


def test_platt_converges_on_saturated_scores():
    # GaussianNB's iris probabilities reach 1e-286 and exactly 1 (log-odds near -657 and the
    # +708 floor); from the identity start the Hessian of those rows underflows and Newton's
    # direction is useless: the fit stopped with 'did not converge' (bench/README.md's
    # tp:platt-smoothed row); the bound step gets it going, and the result is the optimum a
    # general-purpose optimiser finds on the rescaled problem
    pytest.importorskip("sklearn")
    from sklearn.datasets import load_iris
    from sklearn.model_selection import StratifiedKFold
    from sklearn.naive_bayes import GaussianNB

    X, y = load_iris(return_X_y=True)
    train, held = next(StratifiedKFold(5, shuffle=True, random_state=1).split(X, y))
    q = GaussianNB().fit(X[train], y[train]).predict_proba(X[held])[:, 0]
    a = (y[held] == 0).astype(int)
    cal = PlattScaling(smooth_targets=True).fit(a, probs=q)
    s = np.log(np.maximum(q, 1e-308)) - np.log(np.maximum(1 - q, 1e-308))
    n_pos, n_neg = a.sum(), (1 - a).sum()
    t = np.where(a == 1, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))
    scale = np.abs(s).max()

    def nll(theta):  # in u = s / scale, so the optimiser sees a well-conditioned problem
        z = theta[0] * (s / scale) + theta[1]
        return -np.sum(t * log_expit(z) + (1 - t) * log_expit(-z))

    ref = minimize(nll, [1.0, 0.0], method="BFGS", options={"gtol": 1e-10}).x
    assert cal.coef_ * scale == pytest.approx(ref[0], rel=1e-3)
    assert cal.intercept_ == pytest.approx(ref[1], abs=1e-3)


def test_a_file_saved_before_smooth_targets_loads_with_its_default(rng):
    s = rng.normal(size=200)
    y = (rng.random(200) < expit(s)).astype(int)
    data = json.loads(PlattScaling().fit(y, logits=s).to_json())
    del data["params"]["smooth_targets"]   # as written by trueprob before the parameter
    old = from_dict(data)
    assert old.smooth_targets is False
    np.testing.assert_array_equal(old.predict_logproba(logits=s),
                                  PlattScaling().fit(y, logits=s).predict_logproba(logits=s))
    del data["params"]["tol"]              # a parameter that was always there stays required
    with pytest.raises(CalibratorFormatError, match="params must have exactly the keys"):
        from_dict(data)


def test_beta_saturated_three_points_linear_solve():
    # three distinct p with frequencies f: the MLE fits all three exactly when the solution of
    # a log p - b log(1 - p) + c = logit(f) has a, b >= 0 (checked), found here by a solve.
    p = np.array([0.2, 0.5, 0.8])
    f = np.array([0.25, 0.5, 0.875])
    n = np.array([4, 4, 8])
    x = np.stack([np.log(p), -np.log1p(-p), np.ones(3)], axis=1)
    a, b, c = np.linalg.solve(x, np.log(f) - np.log1p(-f))
    assert a >= 0 and b >= 0
    pos = (f * n).astype(int)
    probs = np.repeat(p, n)
    y = np.concatenate([[1] * k + [0] * (m - k) for k, m in zip(pos, n, strict=True)])
    cal = BetaCalibration().fit(y, probs=probs)
    assert (cal.a_, cal.b_, cal.c_) == pytest.approx((a, b, c), abs=1e-9)


def test_beta_constraint_matches_bounded_optimiser(rng):
    # an inverted-U miscalibration makes the unconstrained fit put a < 0; the constrained MLE
    # is compared with L-BFGS-B under the bounds a, b >= 0 (a second, independent method).
    p = rng.uniform(0.01, 0.99, size=4000)
    true = expit(-1.5 * np.log(p) - 0.3 * (-np.log1p(-p)) - 1.0)
    y = (rng.random(p.size) < true).astype(int)
    cal = BetaCalibration().fit(y, probs=p)
    x1, x2 = np.log(p), -np.log1p(-p)

    def nll(theta: np.ndarray) -> float:
        f = theta[0] * x1 + theta[1] * x2 + theta[2]
        return float(np.sum(np.logaddexp(0, f) - y * f))

    ref = minimize(nll, np.array([1.0, 1.0, 0.0]), method="L-BFGS-B",
                   bounds=[(0, None), (0, None), (None, None)],
                   options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 10_000})
    assert cal.a_ == 0.0  # the bound is active
    assert nll(np.array([cal.a_, cal.b_, cal.c_])) <= ref.fun + 1e-8
    assert (cal.b_, cal.c_) == pytest.approx((ref.x[1], ref.x[2]), abs=1e-4)


def test_beta_identity_on_beta_calibrated_data(rng):
    p = rng.uniform(0.02, 0.98, size=20_000)
    y = (rng.random(p.size) < p).astype(int)
    cal = BetaCalibration().fit(y, probs=p)
    assert (cal.a_, cal.b_, cal.c_) == pytest.approx((1.0, 1.0, 0.0), abs=0.1)


def test_beta_one_class_error():
    with pytest.raises(ValueError, match="BetaCalibration needs both classes"):
        BetaCalibration().fit(np.array([1, 1, 1]), probs=np.array([0.2, 0.5, 0.9]))


# --------------------------------------------------------------------------- all binary


@pytest.mark.parametrize("cls", BINARY)
def test_near_identity_on_calibrated_data(cls, rng):
    z, y = bernoulli_data(rng, 40_000)
    cal = cls().fit(y, logits=z)
    zt, yt = bernoulli_data(rng, 20_000)
    p = expit(zt)
    q = np.exp(cal.predict_logproba(logits=zt))[:, 1]
    # a calibrated model stays (nearly) where it was: the binned maps move p by at most the
    # width of a bin plus noise, the parametric ones by noise only
    tol = 0.02 if cls in (PlattScaling, BetaCalibration) else 0.12
    assert np.quantile(np.abs(q - p), 0.95) < tol
    before = nll_binary(np.stack([log_expit(-zt), log_expit(zt)], 1), yt)
    after = nll_binary(cal.predict_logproba(logits=zt), yt)
    assert after < before + 0.01


@pytest.mark.parametrize("cls", BINARY)
def test_lowers_test_nll_on_overconfident_data(cls, rng):
    z, y = bernoulli_data(rng, 20_000, scale=3.0)  # logits three times too large
    cal = cls().fit(y, logits=z)
    zt, yt = bernoulli_data(rng, 20_000, scale=3.0)
    before = nll_binary(np.stack([log_expit(-zt), log_expit(zt)], 1), yt)
    after = nll_binary(cal.predict_logproba(logits=zt), yt)
    assert after < before - 0.05


@pytest.mark.parametrize("cls", BINARY)
def test_save_load_predict_bit_identical(cls, rng, tmp_path):
    z, y = bernoulli_data(rng, 2000, scale=2.0)
    cal = cls().fit(y, logits=z)
    path = tmp_path / "cal.json"
    cal.save(path)
    back = load(path)
    assert type(back) is cls and back.get_params() == cal.get_params()
    zt = rng.normal(size=500) * 3
    np.testing.assert_array_equal(back.predict_logproba(logits=zt),
                                  cal.predict_logproba(logits=zt))
    # the library raises the plain OSError (the CLI turns it into "pass --force")
    with pytest.raises(FileExistsError, match=r"cal\.json"):
        cal.save(path)
    cal.save(path, force=True)


@pytest.mark.parametrize("cls", BINARY)
def test_errors_before_fit_and_clone(cls):
    cal = cls()
    with pytest.raises(NotFittedError, match=f"this {cls.__name__} is not fitted yet"):
        cal.predict_logproba(logits=np.array([0.0, 1.0]))
    with pytest.raises(NotFittedError):
        cal.to_dict()
    sklearn_base = pytest.importorskip("sklearn.base")
    twin = sklearn_base.clone(cal)
    assert type(twin) is cls and twin.get_params() == cal.get_params() and twin is not cal


@pytest.mark.parametrize("cls", BINARY)
def test_binary_calibrator_refuses_multiclass_scores(cls, rng):
    z = rng.normal(size=(30, 3))
    y = rng.integers(0, 3, size=30)
    with pytest.raises(ValueError, match=rf"{cls.__name__} is a binary calibrator .* K=3 .*"
                                         rf"OneVsRest\(base={cls.__name__}\(\)\)"):
        cls().fit(y, logits=z)


@pytest.mark.parametrize("cls", BINARY)
def test_rows_with_zero_weight_are_dropped_and_integer_weights_repeat(cls, rng):
    z, y = bernoulli_data(rng, 400, scale=2.0)
    w = rng.integers(0, 3, size=z.size).astype(float)
    a = cls().fit(y, logits=z, sample_weight=w)
    rep = np.repeat(np.arange(z.size), w.astype(int))
    if cls is ScalingBinning:  # the split is by rows, so repetition changes it; check drops only
        keep = w > 0
        b = cls().fit(y[keep], logits=z[keep], sample_weight=w[keep])
    else:
        b = cls().fit(y[rep], logits=z[rep])
    zt = rng.normal(size=200) * 3
    np.testing.assert_allclose(a.predict_logproba(logits=zt), b.predict_logproba(logits=zt),
                               rtol=1e-9, atol=1e-9)


def test_bad_parameters_are_named():
    z, y = np.array([-1.0, 0.5, 0.0, 1.0]), np.array([0, 0, 1, 1])
    with pytest.raises(ValueError, match=r"PlattScaling: max_iter must be a positive integer; "
                                         r"got 0"):
        PlattScaling(max_iter=0).fit(y, logits=z)
    with pytest.raises(ValueError, match=r"BetaCalibration: tol must be a positive finite"):
        BetaCalibration(tol=-1.0).fit(y, probs=expit(z))
    with pytest.raises(ValueError, match="invalid parameter 'maxiter' for PlattScaling"):
        PlattScaling().set_params(maxiter=3)
    with pytest.raises(TypeError, match="unexpected keyword argument 'logit'"):
        PlattScaling().fit(y, logit=z)  # type: ignore[call-arg]


def test_loaded_values_are_checked():
    cal = BetaCalibration().fit(np.array([0, 1, 0, 1, 1]),
                                probs=np.array([0.2, 0.3, 0.5, 0.6, 0.8]))
    data = cal.to_dict()
    data["fitted"]["a_"] = -0.5
    with pytest.raises(CalibratorFormatError, match=r"a_ must be a finite number >= 0"):
        from_dict(data)
    data = cal.to_dict()
    data["fitted"]["kind_"] = "scores"
    with pytest.raises(CalibratorFormatError, match="kind_ must be 'logits' or 'probs'"):
        from_dict(data)


@pytest.mark.torch
@pytest.mark.parametrize("cls", BINARY)
def test_torch_inputs_and_module_match_numpy(cls, rng):
    torch = pytest.importorskip("torch")
    z, y = bernoulli_data(rng, 2000, scale=2.0)
    cal = cls().fit(y, logits=z)
    zt = rng.normal(size=300) * 3
    ref = cal.predict_logproba(logits=zt)
    got = cal.predict_logproba(logits=torch.from_numpy(zt))
    assert isinstance(got, torch.Tensor) and got.dtype == torch.float64
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-12, atol=1e-12)
    module = cal.to_torch()
    np.testing.assert_allclose(module(torch.from_numpy(zt)).numpy(), ref, rtol=1e-12,
                               atol=1e-12)
    out32 = cal.predict_logproba(logits=torch.from_numpy(zt.astype(np.float32)))
    assert out32.dtype == torch.float32


# --------------------------------------------------------------------------- wrappers


def test_one_vs_rest_log_odds_exact_and_stable():
    q = np.array([[0.7, 0.2, 0.1], [0.25, 0.25, 0.5]])
    expected = np.log(q) - np.log1p(-q)
    np.testing.assert_allclose(one_vs_rest_log_odds(np, np.log(q)), expected, rtol=1e-13)
    # a confidence of 1 - 2e-22: log(1 - q) from 1 - q would be log(0); here it is exact
    z = np.array([[50.0, 0.0, 0.0]])
    s = one_vs_rest_log_odds(np, z)
    np.testing.assert_allclose(s[0], [50.0 - math.log(2.0), -50.0 - math.log1p(math.exp(-50)),
                                      -50.0 - math.log1p(math.exp(-50))], rtol=1e-15)
    top, st = top_label_log_odds(np, z)
    assert top.tolist() == [0] and st[0] == pytest.approx(50.0 - math.log(2.0), rel=1e-15)


def test_one_vs_rest_is_per_class_fits_then_renormalised(rng, synthetic_logits):
    z, y = synthetic_logits(rng, 3000, 4, scale=2.0)
    w = rng.uniform(0.5, 1.5, size=y.size)
    ovr = OneVsRest(base=PlattScaling()).fit(y, logits=z, sample_weight=w)
    zt, _ = synthetic_logits(rng, 500, 4, scale=2.0)
    # second way: per-class logits log q_k - log(1 - q_k) computed naively, one Platt each
    q = np.exp(z - logsumexp(z, axis=1, keepdims=True))
    qt = np.exp(zt - logsumexp(zt, axis=1, keepdims=True))
    cols = []
    for k in range(4):
        cal = PlattScaling().fit((y == k).astype(int), logits=np.log(q[:, k] / (1 - q[:, k])),
                                 sample_weight=w)
        cols.append(np.exp(cal.predict_logproba(logits=np.log(qt[:, k] / (1 - qt[:, k]))))[:, 1])
        assert ovr.calibrators_[k].coef_ == pytest.approx(cal.coef_, rel=1e-9)
    p = np.stack(cols, axis=1)
    np.testing.assert_allclose(np.exp(ovr.predict_logproba(logits=zt)),
                               p / p.sum(axis=1, keepdims=True), rtol=1e-9)


def test_top_label_output_row(rng, synthetic_logits):
    z, y = synthetic_logits(rng, 3000, 5, scale=2.5)
    tl = TopLabel(base=PlattScaling()).fit(y, logits=z)
    # the base fit is Platt on (top-label log-odds, correctness), fitted here directly
    c = np.exp(z - logsumexp(z, axis=1, keepdims=True))
    yhat, conf = c.argmax(1), c.max(1)
    ref = PlattScaling().fit((yhat == y).astype(int), probs=conf)
    assert tl.calibrator_.coef_ == pytest.approx(ref.coef_, rel=1e-9)
    zt, _ = synthetic_logits(rng, 400, 5, scale=2.5)
    qt = np.exp(zt - logsumexp(zt, axis=1, keepdims=True))
    out = np.exp(tl.predict_logproba(logits=zt))
    top = qt.argmax(1)
    assert np.array_equal(out.argmax(1), top)
    np.testing.assert_allclose(out.sum(1), 1.0, rtol=1e-12)
    c_new = np.exp(ref.predict_logproba(probs=qt.max(1)))[:, 1]
    rows = np.arange(zt.shape[0])
    # where the argmax floor does not bind (c' above the runner-up's share r / (1 + r)):
    # c' from the base calibrator, the other classes in their original proportions
    r = np.sort(qt, 1)[:, -2] / (1 - qt.max(1))
    free = c_new > r / (1 + r) + 1e-6
    assert free.mean() > 0.5
    expected = qt * ((1 - c_new) / (1 - qt.max(1)))[:, None]
    expected[rows, top] = c_new
    # (the reference forms 1 - c naively, so it is good to about 1e-16 / (1 - c) only)
    np.testing.assert_allclose(out[free], expected[free], rtol=1e-7, atol=1e-15)


def test_top_label_keeps_argmax_when_confidence_would_fall_below_runner_up():
    # labels unrelated to the scores: the calibrated confidence collapses towards the
    # accuracy (about 1/K), below the runner-up's share for many rows; the floor keeps argmax
    rng = np.random.default_rng(3)
    z = rng.normal(size=(2000, 4)) * 3
    y = rng.integers(0, 4, size=2000)
    for base in (PlattScaling(), IsotonicCalibration(), HistogramBinning()):
        tl = TopLabel(base=base).fit(y, logits=z)
        q = tl.predict_logproba(logits=z)
        assert np.array_equal(q.argmax(1), z.argmax(1)), type(base).__name__
        np.testing.assert_allclose(np.exp(q).sum(1), 1.0, rtol=1e-12)
        # float32 in, float32 out: the argmax survives the rounding, also through a float32
        # softmax of the output (what trueprob.evaluate computes from these as logits)
        q32 = tl.predict_logproba(logits=z.astype(np.float32))
        assert q32.dtype == np.float32
        e = np.exp(q32 - q32.max(1, keepdims=True))
        assert np.array_equal((e / e.sum(1, keepdims=True)).argmax(1), z.argmax(1))
        # the floor is exercised: for some rows the base alone would have put the top class
        # below the runner-up, and the output's top entry is above the base's value there
        base_c = np.exp(tl.calibrator_.predict_logproba(logits=top_label_log_odds(np, z)[1]))
        raised = np.exp(q).max(1) > base_c[:, 1] + 1e-12
        assert raised.sum() > 20, type(base).__name__
        assert np.all(np.exp(q).max(1) >= base_c[:, 1] - 1e-12)


def test_top_label_soft_targets_use_probability_of_the_top_class():
    z = np.array([[2.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 3.0], [0.5, 0.0], [0.0, 0.2]])
    t = np.array([[0.9, 0.1], [0.3, 0.7], [0.6, 0.4], [0.2, 0.8], [0.5, 0.5], [0.45, 0.55]])
    tl = TopLabel(base=PlattScaling()).fit(targets=t, logits=z)
    top, s = top_label_log_odds(np, z)
    a = t[np.arange(6), top]
    ref = PlattScaling().fit(targets=a, logits=s)
    assert tl.calibrator_.coef_ == pytest.approx(ref.coef_, rel=1e-12)
    assert tl.calibrator_.intercept_ == pytest.approx(ref.intercept_, rel=1e-12, abs=1e-14)


@pytest.mark.parametrize("wrapper", [OneVsRest, TopLabel])
@pytest.mark.parametrize("cls", BINARY)
def test_wrappers_lower_test_nll_and_round_trip(wrapper, cls, rng, synthetic_logits, tmp_path):
    z, y = synthetic_logits(rng, 6000, 4, scale=3.0)  # over-confident by a factor 3
    zt, yt = synthetic_logits(rng, 6000, 4, scale=3.0)
    cal = wrapper(base=cls()).fit(y, logits=z)
    logq = zt - logsumexp(zt, axis=1, keepdims=True)
    rows = np.arange(yt.size)
    before = -logq[rows, yt].mean()
    out = cal.predict_logproba(logits=zt)
    assert -out[rows, yt].mean() < before - 0.1
    np.testing.assert_allclose(np.exp(out).sum(1), 1.0, rtol=1e-12)
    path = tmp_path / "cal.json"
    cal.save(path)
    back = load(path)
    assert type(back) is wrapper and type(back.base) is cls
    np.testing.assert_array_equal(back.predict_logproba(logits=zt), out)


def test_wrapper_default_base_clone_and_errors(rng, synthetic_logits):
    z, y = synthetic_logits(rng, 500, 3)
    ovr = OneVsRest()
    assert ovr.base is None  # stored unchanged; None means PlattScaling()
    ovr.fit(y, logits=z)
    assert all(type(c) is PlattScaling for c in ovr.calibrators_)
    sklearn_base = pytest.importorskip("sklearn.base")
    twin = sklearn_base.clone(OneVsRest(base=IsotonicCalibration(clip=1e-3)))
    assert twin.base.clip == 1e-3
    with pytest.raises(NotFittedError, match="this TopLabel is not fitted yet"):
        TopLabel().predict_logproba(logits=z)
    from trueprob.calibrators.temperature import TemperatureScaling

    with pytest.raises(TypeError, match=r"OneVsRest: base must be a binary calibrator .*"
                                        r"PlattScaling.*; got TemperatureScaling"):
        OneVsRest(base=TemperatureScaling()).fit(y, logits=z)
    with pytest.raises(ValueError, match=r"fitted on K=3 classes; .* have K=4 columns"):
        ovr.predict_logproba(logits=np.zeros((2, 4)))
    # a class absent from the calibration set: Platt has no MLE for it; the class is named
    with pytest.raises(ValueError, match=r"OneVsRest, class 2: PlattScaling needs both classes"):
        OneVsRest().fit(np.where(y == 2, 0, y), logits=z)


def test_wrapper_saved_form_is_plain_and_checked(rng, synthetic_logits):
    z, y = synthetic_logits(rng, 500, 3)
    ovr = OneVsRest(base=HistogramBinning(n_bins=5)).fit(y, logits=z)
    data = json.loads(ovr.to_json())
    assert data["params"]["base"] == {"class": "HistogramBinning",
                                      "params": {"n_bins": 5, "binning": "mass", "clip": 1e-6}}
    assert len(data["fitted"]["calibrators_"]) == 3
    assert set(data["fitted"]["calibrators_"][0]) == {"class", "params", "fitted"}
    bad = json.loads(ovr.to_json())
    bad["fitted"]["calibrators_"][1]["class"] = "os.system"
    with pytest.raises(CalibratorFormatError, match=r"fitted.calibrators_: unknown calibrator "
                                                    r"class 'os.system'"):
        from_dict(bad)
    bad = json.loads(ovr.to_json())
    bad["fitted"]["calibrators_"][0]["fitted"]["values_"]["data"][0] = 2.0
    with pytest.raises(CalibratorFormatError, match=r"values_ must be in"):
        from_dict(bad)
    bad = json.loads(ovr.to_json())
    bad["fitted"]["calibrators_"] = bad["fitted"]["calibrators_"][:2]
    with pytest.raises(CalibratorFormatError, match="list of n_classes_=3 calibrators"):
        from_dict(bad)
    bad = json.loads(ovr.to_json())
    bad["params"]["base"] = {"class": "PlattScaling", "params": {"max_iter": 100, "tol": 1e-12}}
    with pytest.raises(CalibratorFormatError, match=r"calibrators_\[0\] must be a fitted "
                                                    r"PlattScaling"):
        from_dict(bad)
    bad = json.loads(ovr.to_json())
    del bad["fitted"]["calibrators_"][2]["fitted"]
    with pytest.raises(CalibratorFormatError, match=r"calibrators_\[2\] must be a fitted"):
        from_dict(bad)


@pytest.mark.torch
@pytest.mark.parametrize("wrapper", [OneVsRest, TopLabel])
def test_wrapper_torch_module_matches_numpy(wrapper, rng, synthetic_logits):
    torch = pytest.importorskip("torch")
    z, y = synthetic_logits(rng, 2000, 4, scale=2.0)
    cal = wrapper(base=IsotonicCalibration()).fit(y, probs=np.exp(
        z - logsumexp(z, axis=1, keepdims=True)))
    assert cal.kind_ == "probs"
    zt, _ = synthetic_logits(rng, 300, 4, scale=2.0)
    qt = np.exp(zt - logsumexp(zt, axis=1, keepdims=True))
    ref = cal.predict_logproba(probs=qt)
    got = cal.to_torch()(torch.from_numpy(qt))
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(cal.predict_logproba(probs=torch.from_numpy(qt)).numpy(), ref,
                               rtol=1e-12, atol=1e-12)
