"""Parametric recalibration by maximum likelihood: temperature, vector, matrix, Dirichlet.

Reference values are computed independently in each test (closed forms, finite differences,
scipy optimisers on separately written objectives) or come from published tables, cited where
they are stored.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy.optimize import brentq, minimize_scalar
from scipy.special import log_softmax, logsumexp, softmax

import trueprob
from trueprob.calibrators._fitdata import fit_arrays
from trueprob.calibrators.base import NotFittedError
from trueprob.calibrators.scaling import (
    DirichletCalibration,
    MatrixScaling,
    VectorScaling,
    _Objective,
)
from trueprob.calibrators.temperature import (
    DegenerateFitWarning,
    TemperatureScaling,
    _Passes,
    grid_temperatures,
)

MUKHOTI = "mukhoti2020-cifar-logits"
MODELS = [
    "cifar10_resnet50_brier", "cifar10_resnet110_brier", "cifar10_wrn26-10_brier",
    "cifar10_densenet121_brier", "cifar10_resnet50_flsd53", "cifar10_resnet110_flsd53",
    "cifar10_wrn26-10_flsd53", "cifar10_densenet121_flsd53", "cifar100_resnet50_brier",
    "cifar100_resnet110_brier", "cifar100_wrn26-10_brier", "cifar100_densenet121_brier",
]

# Post-temperature-scaling test ECE (%) and the temperature chosen by the grid-ECE protocol,
# as published:
# - CIFAR-10: github.com/torrvision/focal_calibration README (commit 475422a6), table
#   "CIFAR-10 test set ECE %", columns "Brier Loss (T)" and "FLSD-53 (T)", printed as
#   "ECE (T)".
# - CIFAR-100: Mukhoti et al. 2020, arXiv:2002.09437v2, Table 1 (ECE pre and post temperature
#   scaling, T in brackets), Brier-loss column; the values were read from the table as
#   reproduced in the AdaFocal paper (Ghosh, Schaaf, Gormley, NeurIPS 2022), whose
#   ResNet-50 row was checked against the arXiv v2 table by a second stored source.
PUBLISHED = {
    "cifar10_resnet50_brier": (1.08, 1.1), "cifar10_resnet110_brier": (1.25, 1.2),
    "cifar10_wrn26-10_brier": (1.25, 1.0), "cifar10_densenet121_brier": (1.53, 1.0),
    "cifar10_resnet50_flsd53": (0.95, 1.1), "cifar10_resnet110_flsd53": (1.07, 1.1),
    "cifar10_wrn26-10_flsd53": (0.84, 0.9), "cifar10_densenet121_flsd53": (1.22, 1.0),
    "cifar100_resnet50_brier": (3.64, 1.1), "cifar100_resnet110_brier": (4.65, 1.2),
    "cifar100_wrn26-10_brier": (2.70, 1.1), "cifar100_densenet121_brier": (2.29, 1.1),
}


def _load(shared_data, name: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    arrays = np.load(shared_data / MUKHOTI / f"{name}_{split}.npz")
    return arrays["logits"], arrays["labels"]


def _nll(labels: np.ndarray, logp: np.ndarray) -> float:
    return float(-np.mean(logp[np.arange(len(labels)), labels]))


def _draw(rng: np.random.Generator, z: np.ndarray) -> np.ndarray:
    """Labels drawn from softmax(z), row by row (inverse CDF)."""
    q = softmax(z, axis=1)
    u = rng.random(len(z))[:, None]
    return np.minimum((q.cumsum(axis=1) < u).sum(axis=1), z.shape[1] - 1)


# ---------------------------------------------------------------------- temperature: math
def test_temperature_closed_form():
    # two classes, every row's logit margin is 4 and 3 of 4 rows are right: the MLE puts
    # q = 3/4 on the argmax, i.e. sigmoid(4 / T) = 3/4, T = 4 / log 3.
    z = np.array([[4.0, 0.0], [0.0, 4.0], [4.0, 0.0], [0.0, 4.0]] * 5)
    y = np.array([0, 1, 1, 1] * 5)
    ts = TemperatureScaling().fit(y, logits=z)
    assert ts.temperature_ == pytest.approx(4 / math.log(3), rel=1e-15)
    assert ts.converged_
    assert ts.nll_before_ == pytest.approx(0.75 * math.log1p(math.exp(-4))
                                           + 0.25 * math.log1p(math.exp(4)), rel=1e-14)
    # at the optimum the NLL is the entropy of Bernoulli(3/4)
    assert ts.nll_after_ == pytest.approx(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)),
                                          rel=1e-14)


def test_temperature_derivatives_match_finite_differences(rng):
    z = rng.normal(size=(300, 5)) * 3
    y = rng.integers(0, 5, 300)
    w = rng.random(300)
    passes = _Passes(fit_arrays(y, logits=z, sample_weight=w), threads=1)
    passes.first_pass()
    for beta in (0.3, 1.0, 2.5):
        f, g, h, t = passes.derivatives(beta)
        assert f == pytest.approx(passes.value(beta), rel=1e-14)
        # independent f: the weighted NLL of softmax(beta z) with scipy
        nll = logsumexp(beta * z, axis=1) - beta * z[np.arange(300), y]
        assert f == pytest.approx(np.average(nll, weights=w), rel=1e-13)
        eps = 1e-5
        fp, gp, hp, _ = passes.derivatives(beta + eps)
        fm, gm, hm, _ = passes.derivatives(beta - eps)
        assert g == pytest.approx((fp - fm) / (2 * eps), rel=1e-7, abs=1e-9)
        assert h == pytest.approx((gp - gm) / (2 * eps), rel=1e-7, abs=1e-9)
        assert t == pytest.approx((hp - hm) / (2 * eps), rel=1e-6, abs=1e-8)


def test_temperature_float32_stage_and_threads_give_the_float64_optimum(rng):
    # large enough for the subsample start and the float32 stage (N * K > 4 * 2**18)
    z = rng.normal(size=(120_000, 10)) * 2
    y = _draw(rng, z)
    logits = (3 * z).astype(np.float32)
    one = TemperatureScaling(n_threads=1).fit(y, logits=logits)
    two = TemperatureScaling(n_threads=2).fit(y, logits=logits)
    assert one.temperature_ == two.temperature_  # per-block sums added in a fixed order
    z64 = logits.astype(np.float64)

    def grad(beta: float) -> float:  # f'(beta) written independently with scipy
        return float(np.mean((softmax(beta * z64, axis=1) * z64).sum(axis=1)
                             - z64[np.arange(len(y)), y]))

    beta = brentq(grad, 0.1, 1.0, xtol=1e-300, rtol=1e-15)
    assert one.temperature_ * beta == pytest.approx(1.0, abs=4e-15)
    assert one.temperature_ == pytest.approx(3.0, rel=0.02)
    assert one.n_iter_ <= 4  # first pass, float32 pass(es), float64 pass


def test_temperature_fit_uses_one_thread_pool_and_shuts_it_down(rng, monkeypatch):
    # every pass of a fit (first pass, subsample start, float32 and float64 Halley, and the
    # grid search's final NLL) runs in one pool, started once and shut down when fit returns
    import trueprob.calibrators._temperature_fit as passes_module
    import trueprob.calibrators.temperature as temperature

    pools = []

    class Counting(passes_module.ThreadPoolExecutor):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.jobs = 0
            self.closed = False
            pools.append(self)

        def submit(self, *args, **kwargs):
            self.jobs += 1
            return super().submit(*args, **kwargs)

        def shutdown(self, *args, **kwargs):
            self.closed = True
            super().shutdown(*args, **kwargs)

    monkeypatch.setattr(passes_module, "ThreadPoolExecutor", Counting)
    z = rng.normal(size=(120_000, 10)) * 2  # subsample start and float32 stage both run
    y = _draw(rng, z)
    runs = []
    original = temperature._Passes._run
    monkeypatch.setattr(temperature._Passes, "_run",
                        lambda self, *a: runs.append(self.threads) or original(self, *a))
    ts = TemperatureScaling(n_threads=2).fit(y, logits=z)
    assert len(pools) == 1 and pools[0].closed
    assert len(runs) > ts.n_iter_ + 1  # the subsample passes ran in it too
    assert pools[0].jobs == sum(runs)  # one job per thread per pass
    one = TemperatureScaling(n_threads=1).fit(y, logits=z)
    assert len(pools) == 1  # one thread: no pool at all
    assert one.temperature_ == ts.temperature_
    TemperatureScaling(method="grid-ece", n_threads=2).fit(y, logits=z)
    assert len(pools) == 2 and pools[1].closed and pools[1].jobs == 2 * 2  # f(1), f(1/T)
    # a fit that fails still shuts its pool down
    monkeypatch.setattr(temperature, "_halley", lambda *a: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        TemperatureScaling(n_threads=2).fit(y, logits=z)
    assert len(pools) == 3 and pools[2].closed


def test_temperature_idempotent_on_calibrated_data(rng):
    z = rng.normal(size=(40_000, 4)) * 2
    y = _draw(rng, z)
    ts = TemperatureScaling().fit(y, logits=z)
    assert ts.temperature_ == pytest.approx(1.0, abs=0.03)


def test_temperature_recovers_known_miscalibration_and_lowers_test_nll(rng):
    z = rng.normal(size=(40_000, 6)) * 1.5
    y = _draw(rng, z)
    fit, test = slice(0, 20_000), slice(20_000, None)
    ts = TemperatureScaling().fit(y[fit], logits=3 * z[fit])
    assert ts.temperature_ == pytest.approx(3.0, rel=0.05)
    before = _nll(y[test], log_softmax(3 * z[test], axis=1))
    after = _nll(y[test], ts.predict_logproba(logits=3 * z[test]))
    assert after < before - 0.1


def test_temperature_soft_targets_counts_weights_and_probs(rng):
    z = rng.normal(size=(400, 3)) * 2
    counts = sum(np.eye(3, dtype=np.int64)[_draw(rng, z)] for _ in range(5))  # 5 votes a row
    by_counts = TemperatureScaling().fit(counts=counts, logits=z).temperature_
    by_targets = TemperatureScaling().fit(
        targets=counts / counts.sum(axis=1, keepdims=True), logits=z).temperature_
    assert by_counts == pytest.approx(by_targets, rel=1e-14)
    # integer weights = repeated rows
    y = _draw(rng, z)
    reps = rng.integers(0, 3, 400)
    weighted = TemperatureScaling().fit(y, logits=z, sample_weight=reps).temperature_
    repeated = TemperatureScaling().fit(np.repeat(y, reps), logits=np.repeat(z, reps, axis=0))
    assert weighted == pytest.approx(repeated.temperature_, rel=1e-13)
    # hard labels = one-hot soft targets
    onehot = np.eye(3)[y]
    assert TemperatureScaling().fit(targets=onehot, logits=z).temperature_ == pytest.approx(
        TemperatureScaling().fit(y, logits=z).temperature_, rel=1e-14)
    # probabilities: log q differs from z by a row constant, so the same T
    assert TemperatureScaling().fit(y, probs=softmax(z, axis=1)).temperature_ == \
        pytest.approx(TemperatureScaling().fit(y, logits=z).temperature_, rel=1e-10)


def test_temperature_binary_one_column(rng):
    s = rng.normal(size=500) * 3
    y = (rng.random(500) < 1 / (1 + np.exp(-s / 3))).astype(int)
    ts = TemperatureScaling().fit(y, logits=s)
    two = TemperatureScaling().fit(y, logits=np.stack([np.zeros(500), s], axis=1))
    assert ts.temperature_ == pytest.approx(two.temperature_, rel=1e-14)
    out = ts.predict_proba(logits=s)
    assert out.shape == (500, 2)
    np.testing.assert_allclose(out[:, 1], 1 / (1 + np.exp(-s / ts.temperature_)), rtol=1e-13)


def test_temperature_separable_data_warns_and_gives_the_limit():
    z = np.array([[3.0, 1.0, 0.0], [0.0, 2.0, 2.0], [0.0, 0.0, 5.0]])
    y = np.array([0, 1, 2])  # every label has its row's largest logit (row 1: a tie)
    with pytest.warns(DegenerateFitWarning, match="separable"):
        ts = TemperatureScaling().fit(y, logits=z)
    assert ts.temperature_ == 0.0
    assert not ts.converged_
    assert ts.nll_after_ == pytest.approx(math.log(2) / 3)  # the tie row keeps q = 1/2
    logp = ts.predict_logproba(logits=z)
    np.testing.assert_allclose(np.exp(logp), [[1, 0, 0], [0, 0.5, 0.5], [0, 0, 1]])


def test_temperature_uninformative_and_constant_scores_warn():
    z = np.array([[2.0, 0.0], [2.0, 0.0], [0.0, 2.0], [0.0, 2.0]])
    y = np.array([1, 1, 0, 0])  # always wrong: uniform predictions are best
    with pytest.warns(DegenerateFitWarning, match="T -> inf"):
        ts = TemperatureScaling().fit(y, logits=z)
    assert ts.temperature_ == math.inf
    np.testing.assert_allclose(ts.predict_proba(logits=z), 0.5)
    assert ts.nll_after_ == pytest.approx(math.log(2))
    with pytest.warns(DegenerateFitWarning, match="constant"):
        ts = TemperatureScaling().fit(np.array([0, 1]), logits=np.ones((2, 3)))
    assert ts.temperature_ == 1.0


def test_temperature_predict_keeps_namespace_and_dtype(rng):
    torch = pytest.importorskip("torch")
    z = rng.normal(size=(50, 4))
    ts = TemperatureScaling().fit(_draw(rng, z), logits=z * 2)
    out32 = ts.predict_logproba(logits=z.astype(np.float32))
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32, log_softmax(z / ts.temperature_, axis=1), rtol=1e-5)
    t = ts.predict_proba(logits=torch.from_numpy(z))
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float64
    np.testing.assert_allclose(t.numpy(), softmax(z / ts.temperature_, axis=1), rtol=1e-14)


def test_temperature_errors(rng):
    z = rng.normal(size=(20, 3)) * 2
    y = _draw(rng, z)
    with pytest.raises(ValueError, match=r"method must be one of \['nll', 'grid-ece'\]; got 'ece'"):
        TemperatureScaling(method="ece").fit(y, logits=z)
    with pytest.raises(ValueError, match="max_iter must be a positive integer; got 0"):
        TemperatureScaling(max_iter=0).fit(y, logits=z)
    with pytest.raises(ValueError, match="n_threads must be None"):
        TemperatureScaling(n_threads=-1).fit(y, logits=z)
    with pytest.raises(NotFittedError, match="not fitted yet"):
        TemperatureScaling().predict_proba(logits=z)
    ts = TemperatureScaling().fit(y, logits=z)
    with pytest.raises(ValueError, match="logits has K=4 columns but this "
                                         "TemperatureScaling was fitted with K=3"):
        ts.predict_logproba(logits=np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"logits must be finite \(no NaN or inf\); row 1"):
        ts.predict_logproba(logits=np.array([[0.0, 1, 2], [np.nan, 0, 0]]))
    with pytest.raises(ValueError, match="sample_weight must not be all zero"):
        TemperatureScaling().fit(y, logits=z, sample_weight=np.zeros(20))
    with pytest.raises(TypeError, match="pass exactly one of logits=, probs="):
        TemperatureScaling().fit(y)


def test_grid_temperatures_are_the_accumulated_sums():
    grid = grid_temperatures()
    t = 0.0
    for i, value in enumerate(grid):
        t = 0.1 if i == 0 else t + 0.1
        assert value == t
    assert 1.0 not in grid and 0.9999999999999999 in grid


# ---------------------------------------------------------------------- temperature: data
@pytest.mark.data
@pytest.mark.parametrize("name", MODELS)
def test_nll_temperature_is_the_full_data_optimum(shared_data, name):
    z, y = _load(shared_data, name, "val")
    ts = TemperatureScaling().fit(y, logits=z)
    z64 = z.astype(np.float64)
    rows = np.arange(len(y))

    def nll(beta: float) -> float:
        return float(np.mean(logsumexp(beta * z64, axis=1) - beta * z64[rows, y]))

    ref = minimize_scalar(nll, bracket=(0.2, 1.0, 5.0), method="brent", tol=1e-12)
    assert ts.temperature_ * ref.x == pytest.approx(1.0, rel=1e-6)
    # tighter: the root of f' (scipy softmax), to float64 resolution
    beta = brentq(lambda b: float(np.mean((softmax(b * z64, axis=1) * z64).sum(axis=1)
                                          - z64[rows, y])), 0.2, 5.0, xtol=1e-300, rtol=1e-15)
    assert ts.temperature_ * beta == pytest.approx(1.0, abs=5e-15)
    assert ts.nll_after_ == pytest.approx(nll(beta), rel=1e-13)
    assert ts.nll_before_ == pytest.approx(nll(1.0), rel=1e-13)
    assert ts.converged_ and ts.n_iter_ <= 6


@pytest.mark.data
@pytest.mark.parametrize("name", MODELS)
def test_grid_ece_reproduces_mukhoti_2020(shared_data, name):
    z_val, y_val = _load(shared_data, name, "val")
    z_test, y_test = _load(shared_data, name, "test")
    ts = TemperatureScaling(method="grid-ece").fit(y_val, logits=z_val)
    ece = trueprob.evaluate(y_test, logits=z_test / ts.temperature_).ece * 100
    published_ece, published_t = PUBLISHED[name]
    assert round(ts.temperature_, 1) == published_t
    assert round(ece, 2) == published_ece


# ---------------------------------------------------------------------- linear maps
LINEAR = [
    (VectorScaling, True, "l2"),
    (MatrixScaling, False, "l2"),
    (MatrixScaling, False, "odir"),
    (DirichletCalibration, False, "odir"),
]


@pytest.mark.parametrize(("diagonal", "reg", "lam"), [
    (True, "l2", 0.7), (True, "odir", 0.7), (False, "l2", 0.7), (False, "odir", 0.7),
    (True, "odir", 0.0), (False, "odir", 0.0),  # unpenalised: the gauge term is active
])
def test_linear_objective_gradient_and_hessian(rng, diagonal, reg, lam):
    k, n = 4, 60
    z = rng.normal(size=(n, k))
    data = fit_arrays(targets=softmax(rng.normal(size=(n, k)), axis=1), logits=z,
                      sample_weight=rng.random(n))
    obj = _Objective(z, data, None, diagonal=diagonal, reg=reg, lam=lam, mu=0.3 * lam)
    theta = obj.identity() + rng.normal(size=obj.n_params()) * 0.4
    f, g = obj.value_and_grad(theta)
    # F written independently: weighted soft-label cross-entropy plus the penalty
    w, b = obj.unpack(theta)
    s = z * w + b if diagonal else z @ w.T + b
    t = data.soft_targets
    nll = np.average(-(t * log_softmax(s, axis=1)).sum(axis=1), weights=data.weights)
    dev = theta - obj.centre
    gauge = 0.0
    if lam == 0.0:  # columns of W - I (full W) and b centred: GAUGE / 2 * squared means
        gw, gb = obj.unpack(theta - obj.identity())
        gauge = 0.5 * (0.0 if diagonal else k * (gw.mean(axis=0) ** 2).sum()) \
            + 0.5 * k * gb.mean() ** 2
        assert np.linalg.eigvalsh(obj.hess(theta)).min() > 1e-3  # non-singular
    assert f == pytest.approx(nll + 0.5 * dev @ (obj.pen * dev) + gauge, rel=1e-13)
    eps = 1e-6
    basis = np.eye(theta.size)
    fd = [(obj.value_and_grad(theta + eps * e)[0] - obj.value_and_grad(theta - eps * e)[0])
          / (2 * eps) for e in basis]
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)
    hfd = np.array([(obj.value_and_grad(theta + eps * e)[1]
                     - obj.value_and_grad(theta - eps * e)[1]) / (2 * eps) for e in basis])
    h = obj.hess(theta)
    np.testing.assert_allclose(h, hfd, rtol=1e-6, atol=1e-8)
    v = rng.normal(size=theta.size)
    np.testing.assert_allclose(obj.hessp(theta, v), h @ v, rtol=1e-12, atol=1e-14)


def test_penalties_are_the_documented_ones():
    k = 3
    data = fit_arrays(np.array([0, 1, 2]), logits=np.eye(3))
    theta = np.arange(k * k + k, dtype=float)
    w, b = theta[:9].reshape(3, 3), theta[9:]
    l2 = _Objective(np.eye(3), data, None, diagonal=False, reg="l2", lam=2.0, mu=2.0)
    d = theta - l2.centre
    expected = 2.0 / (k * (k + 1)) * (((w - np.eye(3)) ** 2).sum() + (b ** 2).sum())
    assert 0.5 * d @ (l2.pen * d) == pytest.approx(expected)
    odir = _Objective(np.eye(3), data, None, diagonal=False, reg="odir", lam=2.0, mu=5.0)
    d = theta - odir.centre
    off = (w ** 2).sum() - (np.diag(w) ** 2).sum()
    assert 0.5 * d @ (odir.pen * d) == pytest.approx(2.0 / (k * (k - 1)) * off
                                                     + 5.0 / k * (b ** 2).sum())


@pytest.mark.parametrize(("cls", "diagonal", "reg"), LINEAR)
def test_linear_maps_idempotent_on_calibrated_data(rng, cls, diagonal, reg):
    z = rng.normal(size=(20_000, 3)) * 2
    y = _draw(rng, z)
    cal = cls(reg=reg, reg_lambda=0.0).fit(y, logits=z)
    eye = np.ones(3) if diagonal else np.eye(3)
    assert np.abs(cal.coef_ - eye).max() < 0.1
    assert np.abs(cal.intercept_).max() < 0.1
    assert cal.converged_


@pytest.mark.parametrize(("cls", "diagonal", "reg"), LINEAR)
def test_linear_maps_undo_known_miscalibration(rng, cls, diagonal, reg):
    z = rng.normal(size=(30_000, 3)) * 1.5
    y = _draw(rng, z)
    fit, test = slice(0, 15_000), slice(15_000, None)
    cal = cls(reg=reg, reg_lambda=0.0).fit(y[fit], logits=3 * z[fit])
    before = _nll(y[test], log_softmax(3 * z[test], axis=1))
    after = _nll(y[test], cal.predict_logproba(logits=3 * z[test]))
    best = _nll(y[test], log_softmax(z[test], axis=1))
    assert after < before - 0.1
    assert after == pytest.approx(best, abs=0.01)
    if cls is VectorScaling:
        np.testing.assert_allclose(cal.coef_, 1 / 3, atol=0.03)


def test_strong_penalties_pull_to_their_targets(rng):
    z = rng.normal(size=(2000, 3)) * 2
    y = _draw(rng, z * 3)
    l2 = MatrixScaling(reg="l2", reg_lambda=1e9).fit(y, logits=z)
    np.testing.assert_allclose(l2.coef_, np.eye(3), atol=1e-5)
    np.testing.assert_allclose(l2.intercept_, 0, atol=1e-5)
    odir = MatrixScaling(reg="odir", reg_lambda=1e9).fit(y, logits=z)
    off = odir.coef_ - np.diag(np.diag(odir.coef_))
    np.testing.assert_allclose(off, 0, atol=1e-5)
    np.testing.assert_allclose(np.diag(odir.coef_), 3.0, rtol=0.1)  # a temperature fit


def test_linear_soft_targets_and_counts(rng):
    z = rng.normal(size=(300, 3))
    counts = sum(np.eye(3, dtype=np.int64)[_draw(rng, 2 * z)] for _ in range(4))
    a = DirichletCalibration(reg_lambda=0.1).fit(counts=counts, logits=z)
    b = DirichletCalibration(reg_lambda=0.1).fit(
        targets=counts / counts.sum(axis=1, keepdims=True), logits=z)
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=1e-9, atol=1e-11)


def test_dirichlet_takes_logits_or_probs_matrix_does_not(rng):
    z = rng.normal(size=(500, 3)) * 2
    y = _draw(rng, z / 2)
    dc = DirichletCalibration(reg_lambda=0.01).fit(y, logits=z)
    np.testing.assert_allclose(dc.predict_logproba(probs=softmax(z, axis=1)),
                               dc.predict_logproba(logits=z), atol=1e-12)
    same = DirichletCalibration(reg_lambda=0.01).fit(y, probs=softmax(z, axis=1))
    np.testing.assert_allclose(same.coef_, dc.coef_, atol=1e-8)
    ms = MatrixScaling(reg_lambda=0.01).fit(y, logits=z)
    with pytest.raises(ValueError, match="this MatrixScaling was fitted on logits; pass "
                                         "logits=, not probs="):
        ms.predict_logproba(probs=softmax(z, axis=1))


def test_cross_validated_lambda(rng):
    z = rng.normal(size=(600, 3)) * 2
    y = _draw(rng, 2 * z)
    grid = [1e-3, 1.0, 1e3]
    ms = MatrixScaling(reg_lambda="cv", lambda_grid=grid, cv=3).fit(y, logits=z)
    assert ms.reg_lambda_ in grid
    assert ms.cv_nll_.shape == (3,)
    assert ms.reg_lambda_ == sorted(grid, reverse=True)[int(np.argmin(ms.cv_nll_))]
    # recompute the held-out NLL of the chosen lambda by hand, fold by fold
    order = np.random.default_rng(0).permutation(600)
    total = 0.0
    for held in np.array_split(order, 3):
        train = np.setdiff1d(order, held)
        fold = MatrixScaling(reg_lambda=ms.reg_lambda_).fit(y[train], logits=z[train])
        total += len(held) / 600 * _nll(y[held], fold.predict_logproba(logits=z[held]))
    chosen = sorted(grid, reverse=True).index(ms.reg_lambda_)
    assert ms.cv_nll_[chosen] == pytest.approx(total, rel=1e-6)


def test_linear_errors(rng):
    z = rng.normal(size=(20, 3))
    y = rng.integers(0, 3, 20)
    with pytest.raises(ValueError, match=r"reg must be one of \['l2', 'odir'\]; got 'l1'"):
        MatrixScaling(reg="l1").fit(y, logits=z)
    with pytest.raises(ValueError, match="reg_lambda must be a number >= 0 or 'cv'; got -1"):
        MatrixScaling(reg_lambda=-1).fit(y, logits=z)
    with pytest.raises(ValueError, match="cv must be an integer >= 2"):
        DirichletCalibration(cv=1).fit(y, logits=z)
    with pytest.raises(ValueError, match="lambda_grid must be None or a non-empty list"):
        DirichletCalibration(lambda_grid=[]).fit(y, logits=z)
    vs = VectorScaling().fit(y, logits=z)
    with pytest.raises(ValueError, match="logits has K=2 columns but this VectorScaling"):
        vs.predict_logproba(logits=np.zeros((3, 2)))
    fitted = TemperatureScaling().fit(np.array([0, 1, 2, 0]), logits=np.eye(3)[[0, 1, 2, 1]] * 2)
    with pytest.raises(ValueError, match="probs has K=2 columns but this TemperatureScaling"):
        fitted.predict_logproba(probs=np.full((3, 2), 0.5))


@pytest.mark.data
def test_linear_maps_lower_test_nll_on_real_logits(shared_data):
    z_val, y_val = _load(shared_data, "cifar10_resnet110_brier", "val")
    z_test, y_test = _load(shared_data, "cifar10_resnet110_brier", "test")
    raw = _nll(y_test, log_softmax(z_test.astype(np.float64), axis=1))
    ts = TemperatureScaling().fit(y_val, logits=z_val)
    after_t = _nll(y_test, ts.predict_logproba(logits=z_test.astype(np.float64)))
    assert after_t < raw
    for cal in (VectorScaling(), MatrixScaling(reg_lambda=1.0),
                DirichletCalibration(reg_lambda=1.0)):
        cal.fit(y_val, logits=z_val)
        assert cal.converged_
        assert cal.nll_after_ < cal.nll_before_
        assert _nll(y_test, cal.predict_logproba(logits=z_test.astype(np.float64))) < raw


# ---------------------------------------------------------------------- torch export
@pytest.mark.torch
@pytest.mark.parametrize("kind", ["logits", "probs"])
def test_torch_modules_equal_predict_logproba(rng, kind):
    torch = pytest.importorskip("torch")
    z = rng.normal(size=(200, 4)) * 2
    y = _draw(rng, z / 2)
    x = z if kind == "logits" else softmax(z, axis=1)
    cals = [TemperatureScaling().fit(y, **{kind: x}), VectorScaling().fit(y, **{kind: x}),
            MatrixScaling(reg_lambda=0.1).fit(y, **{kind: x}),
            DirichletCalibration(reg_lambda=0.1).fit(y, **{kind: x})]
    xt = torch.from_numpy(x)
    for cal in cals:
        module = cal.to_torch()
        expected = cal.predict_logproba(**{kind: x})
        np.testing.assert_allclose(module(xt).numpy(), expected, rtol=0, atol=1e-14)
        exported = torch.export.export(module, (xt,))
        np.testing.assert_allclose(exported.module()(xt).numpy(), expected, rtol=0, atol=1e-14)


@pytest.mark.torch
def test_linear_maps_predict_on_torch_tensors(rng):
    torch = pytest.importorskip("torch")
    z = rng.normal(size=(100, 3)) * 2
    y = _draw(rng, z)
    for cal in (VectorScaling(), MatrixScaling(reg_lambda=0.1),
                DirichletCalibration(reg_lambda=0.1)):
        cal.fit(y, logits=z)
        out = cal.predict_logproba(logits=torch.from_numpy(z))
        assert isinstance(out, torch.Tensor) and out.dtype == torch.float64
        np.testing.assert_allclose(out.numpy(), cal.predict_logproba(logits=z), atol=1e-14)
        out32 = cal.predict_proba(logits=torch.from_numpy(z.astype(np.float32)))
        assert out32.dtype == torch.float32


@pytest.mark.torch
def test_torch_module_of_the_separable_limit_and_binary():
    torch = pytest.importorskip("torch")
    z = np.array([[3.0, 1.0, 0.0], [0.0, 2.0, 2.0]])
    with pytest.warns(DegenerateFitWarning):
        ts = TemperatureScaling().fit(np.array([0, 1]), logits=z)
    out = ts.to_torch()(torch.from_numpy(z)).numpy()
    np.testing.assert_array_equal(out, ts.predict_logproba(logits=z))
    s = np.array([-1.0, 0.5, 2.0, 3.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateFitWarning)
        tb = TemperatureScaling().fit(np.array([0, 1, 0, 1]), logits=s)
    np.testing.assert_allclose(tb.to_torch()(torch.from_numpy(s)).numpy(),
                               tb.predict_logproba(logits=s), atol=1e-15)
