"""Regression: CRPS closed forms (integration, properscoring, scoringrules), NLL, PIT, quantile
calibration, coverage, variance scaling, isotonic quantile recalibration, the mergeable state."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import integrate, optimize, stats

from trueprob.calibrators.base import from_dict
from trueprob.regression import (
    Gaussian,
    IsotonicQuantileRecalibration,
    Laplace,
    QuantileSet,
    RegressionStats,
    StudentT,
    VarianceScaling,
    crps,
    crps_rows,
    evaluate_regression,
    nll,
    nll_rows,
    pit_values,
)
from trueprob.regression.stats import PIT_CELLS

REFERENCE = Path(__file__).parent / "reference" / "crps_reference.json"
SCIPY = {"gaussian": lambda m, s, df: stats.norm(m, s),
         "laplace": lambda m, s, df: stats.laplace(m, s),
         "student_t": lambda m, s, df: stats.t(df, m, s)}


def make(family: str, loc, scale, df=None):
    if family == "gaussian":
        return Gaussian(mean=loc, std=scale)
    if family == "laplace":
        return Laplace(loc=loc, scale=scale)
    return StudentT(loc=loc, scale=scale, df=df)


def integrated_crps(dist, y: float) -> float:
    """int_{-inf}^{y} F^2 + int_{y}^{inf} (1 - F)^2, split at the median for the kink."""
    m = float(dist.median())
    lo, hi = sorted([m, y])

    def left(x):
        return dist.cdf(x) ** 2

    def right(x):
        return dist.sf(x) ** 2

    total = integrate.quad(left, -np.inf, lo, limit=200, epsabs=1e-13)[0]
    total += integrate.quad(left if y > m else right, lo, hi, limit=200, epsabs=1e-13)[0]
    total += integrate.quad(right, hi, np.inf, limit=200, epsabs=1e-13)[0]
    return total


# --------------------------------------------------------------------------- CRPS


@pytest.mark.parametrize(("family", "df"), [("gaussian", None), ("laplace", None),
                                            ("student_t", 1.3), ("student_t", 2.5),
                                            ("student_t", 30.0)])
def test_crps_closed_form_equals_numerical_integration(family, df):
    y = np.array([-4.0, -0.7, 0.0, 0.3, 2.2, 9.0])
    loc = np.array([0.5, -1.0, 0.0, 0.3, 1.0, 0.0])
    scale = np.array([2.0, 0.3, 1.0, 1.5, 0.8, 3.0])
    ours = crps_rows(y, make(family, loc, scale, df))
    ref = [integrated_crps(SCIPY[family](loc[i], scale[i], df), y[i]) for i in range(6)]
    np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=1e-12)


def test_crps_matches_properscoring_and_scoringrules():
    """Reference values written by tools/make_crps_reference.py (library versions inside)."""
    data = json.loads(REFERENCE.read_text())
    seen = set()
    for case in data["cases"]:
        y = np.asarray(case["observed"])
        fam = case["family"]
        if fam == "quantiles":
            pred = QuantileSet(quantiles=np.asarray(case["quantiles"]), levels=case["levels"])
            rtol = 1e-12
        else:
            pred = make(fam, np.asarray(case["loc"]), np.asarray(case["scale"]), case.get("df"))
            # properscoring's crps_quadrature integrates numerically (abs. error ~1e-9)
            rtol = 1e-8 if case["library"] == "properscoring" and fam != "gaussian" else 1e-12
        np.testing.assert_allclose(crps_rows(y, pred), case["crps"], rtol=rtol, atol=1e-12,
                                   err_msg=f"{fam} vs {case['library']}")
        seen.add((fam, case["library"]))
    assert ("gaussian", "properscoring") in seen and ("student_t", "scoringrules") in seen
    assert ("quantiles", "scoringrules") in seen and ("laplace", "scoringrules") in seen


def test_crps_textbook_values():
    # Gaussian at the mean: sigma (sqrt(2) - 1) / sqrt(pi); Laplace at the location: b / 4
    assert crps(np.array([0.0]), Gaussian(mean=np.zeros(1), std=2.0)) == pytest.approx(
        2 * (math.sqrt(2) - 1) / math.sqrt(math.pi), rel=1e-14)
    assert crps(np.array([1.0]), Laplace(loc=np.ones(1), scale=3.0)) == pytest.approx(0.75)


def test_quantile_crps_by_hand_and_its_limit():
    # levels (.25, .75), quantiles (-1, 1), y = 2: pinball .25*3 + .75*1 = 1.5; CRPS = 2/2*1.5
    pred = QuantileSet(quantiles=np.array([[-1.0, 1.0]]), levels=[0.25, 0.75])
    assert float(crps_rows(np.array([2.0]), pred)[0]) == pytest.approx(1.5)
    # many evenly spread quantiles of N(0, 1) approach the closed form
    y = np.array([-1.3, 0.2, 2.5])
    lv = np.arange(1, 2000) / 2000
    q = np.broadcast_to(stats.norm.ppf(lv), (3, lv.size))
    approx = crps_rows(y, QuantileSet(quantiles=q, levels=lv))
    exact = crps_rows(y, Gaussian(mean=np.zeros(3), std=1.0))
    np.testing.assert_allclose(approx, exact, rtol=2e-3)


# --------------------------------------------------------------------------- NLL


@pytest.mark.parametrize(("family", "df"), [("gaussian", None), ("laplace", None),
                                            ("student_t", 1.5), ("student_t", 7.0)])
def test_nll_rows_equal_scipy_logpdf(family, df, rng):
    y, loc = rng.normal(size=50) * 3, rng.normal(size=50)
    scale = np.exp(rng.normal(size=50))
    ref = -SCIPY[family](loc, scale, df).logpdf(y)
    np.testing.assert_allclose(nll_rows(y, make(family, loc, scale, df)), ref, rtol=1e-12)


def test_nll_units_and_weights():
    y = np.array([0.0, 1.0, 3.0])
    pred = Gaussian(mean=np.zeros(3), std=1.0)
    w = np.array([1.0, 2.0, 0.0])
    rows = 0.5 * y**2 + 0.5 * math.log(2 * math.pi)
    expect = (rows[0] + 2 * rows[1]) / 3
    assert nll(y, pred, sample_weight=w) == pytest.approx(expect, rel=1e-14)
    assert nll(y, pred, sample_weight=w, unit="bits") == pytest.approx(expect / math.log(2))


# --------------------------------------------------------------------------- PIT / calibration


def test_pit_of_correctly_specified_gaussians_is_uniform(rng):
    n = 20000
    mu, sd = rng.normal(size=n) * 3, np.exp(rng.normal(size=n) * 0.5)
    y = mu + sd * rng.normal(size=n)
    u = pit_values(y, Gaussian(mean=mu, std=sd))
    assert stats.kstest(u, "uniform").pvalue > 0.01
    report = evaluate_regression(y, Gaussian(mean=mu, std=sd))
    assert report.pit_ece < 0.01
    assert report.quantile_calibration_error < 1e-3
    assert report.dispersion == pytest.approx(1.0, abs=0.03)
    # the same data with the spread halved: far from uniform
    u_bad = pit_values(y, Gaussian(mean=mu, std=sd / 2))
    assert stats.kstest(u_bad, "uniform").pvalue < 1e-12
    assert evaluate_regression(y, Gaussian(mean=mu, std=sd / 2)).pit_ece > 0.05


def test_pit_ece_by_hand():
    # every PIT value 0.5: int_0^1 |1[u >= .5] - u| du = 1/8 + 1/8, exact on the 1000-cell grid
    y = np.zeros(4)
    r = evaluate_regression(y, Gaussian(mean=np.zeros(4), std=1.0))
    assert r.pit_ece == pytest.approx(0.25, abs=1e-12)
    assert r.pit_histogram.observed[9] == 1.0 and sum(r.pit_histogram.weight) == 4.0


def test_pit_ece_grid_within_two_cells_of_the_integral(rng):
    y = rng.normal(size=3000) * 1.7 + 0.4
    pred = Gaussian(mean=np.zeros(3000), std=1.0)
    u = np.sort(pit_values(y, pred))
    # int_0^1 |F(u) - u| du for the empirical CDF F, integrated exactly piece by piece
    knots = np.concatenate([[0.0], u, [1.0]])
    level = np.arange(u.size + 1) / u.size

    def piece(a, b, c):  # int_a^b |c - x| dx
        if c <= a:
            return (b - a) * ((a + b) / 2 - c)
        if c >= b:
            return (b - a) * (c - (a + b) / 2)
        return ((c - a) ** 2 + (b - c) ** 2) / 2

    exact = sum(piece(knots[j], knots[j + 1], level[j]) for j in range(u.size + 1))
    got = evaluate_regression(y, pred).pit_ece
    assert abs(got - exact) <= 2.0 / PIT_CELLS
    assert exact > 0.05  # a real miscalibration, not a trivial case


def test_calibration_and_coverage_by_hand():
    # N(0, 1): PIT of 0, 1, -2, 0.5 is .5, .8413, .0228, .6915
    y = np.array([0.0, 1.0, -2.0, 0.5])
    r = evaluate_regression(y, Gaussian(mean=np.zeros(4), std=1.0),
                            calibration_levels=[0.25, 0.5, 0.6, 0.75], coverage_levels=[0.5, 0.9])
    assert [c.observed for c in r.calibration] == [0.25, 0.5, 0.5, 0.75]
    assert r.quantile_calibration_error == pytest.approx(0.1**2)
    # |y| <= 0.6745 for y = 0, 0.5; |y| <= 1.6449 for 0, 1, 0.5
    assert [c.observed for c in r.coverage] == [0.5, 0.75]
    assert r.coverage[1].mean_width == pytest.approx(2 * stats.norm.ppf(0.95), rel=1e-14)
    d = r.to_dict()
    assert d["coverage"] == {"0.5": 0.5, "0.9": 0.75}
    for key in ("n", "nll", "crps", "pit_ece", "coverage"):
        assert key in d


def test_quantile_set_calibration_coverage_and_histogram_by_hand():
    levels = [0.1, 0.5, 0.9]
    q = np.array([[-1.0, 0.0, 1.0]] * 5)
    y = np.array([-2.0, -0.5, 0.0, 0.5, 3.0])
    r = evaluate_regression(y, QuantileSet(quantiles=q, levels=levels))
    # y <= q_j: level .1: 1 of 5; .5: 3 of 5 (0 <= 0 counts); .9: 4 of 5
    assert [c.observed for c in r.calibration] == [0.2, 0.6, 0.8]
    assert r.quantile_calibration_error == pytest.approx(0.1**2 + 0.1**2 + 0.1**2)
    assert r.pit_ece == pytest.approx(0.1)
    assert [c.level for c in r.coverage] == [0.8]          # the only symmetric pair
    assert r.coverage[0].observed == pytest.approx(0.6)    # -0.5, 0, 0.5 in [-1, 1]
    assert r.coverage[0].mean_width == 2.0
    assert r.pit_histogram.edges == (0.0, 0.1, 0.5, 0.9, 1.0)
    assert r.pit_histogram.count == (1, 2, 1, 1)           # y = 0 is in (-1, 0]
    assert r.pit_histogram.expected == pytest.approx((0.1, 0.4, 0.4, 0.1))
    assert r.nll is None and "nll" in r.unavailable


def test_coverage_of_correct_student_t(rng):
    n = 20000
    loc, scale = rng.normal(size=n), np.exp(rng.normal(size=n) * 0.3)
    y = loc + scale * rng.standard_t(4.0, size=n)
    r = evaluate_regression(y, StudentT(loc=loc, scale=scale, df=4.0))
    for row in r.coverage:  # binomial sd <= 0.0036
        assert row.observed == pytest.approx(row.level, abs=0.015)
    per_row_df = evaluate_regression(y, StudentT(loc=loc, scale=scale, df=np.full(n, 4.0)))
    for a, b in zip(per_row_df.coverage, r.coverage, strict=True):
        assert (a.level, a.observed) == (b.level, b.observed)
        assert a.mean_width == pytest.approx(b.mean_width, rel=1e-13)
    assert per_row_df.crps == pytest.approx(r.crps, rel=1e-13)


# --------------------------------------------------------------------------- variance scaling


@pytest.mark.parametrize("family", ["gaussian", "laplace", "student_t"])
def test_variance_scaling_recovers_a_known_factor(family, rng):
    n, s_true, df = 40000, 2.5, 5.0
    loc, scale = rng.normal(size=n), np.exp(rng.normal(size=n) * 0.4)
    noise = {"gaussian": rng.normal(size=n), "laplace": rng.laplace(size=n),
             "student_t": rng.standard_t(df, size=n)}[family]
    y = loc + s_true * scale * noise
    vs = VarianceScaling().fit(y, make(family, loc, scale, df))
    assert vs.scale_factor_ == pytest.approx(s_true, rel=0.02)
    assert vs.nll_after_ < vs.nll_before_
    # the fitted s minimises the NLL (a second, independent method: a bounded 1-D search)
    res = optimize.minimize_scalar(
        lambda s: float(np.mean(nll_rows(y, make(family, loc, scale * s, df)))),
        bounds=(0.5, 10), method="bounded", options={"xatol": 1e-10})
    assert vs.scale_factor_ == pytest.approx(res.x, rel=1e-6)
    assert vs.nll_after_ == pytest.approx(res.fun, rel=1e-12)
    scaled = vs.predict(make(family, loc, scale, df))
    assert np.allclose(scaled.scale, scale * vs.scale_factor_)


def test_variance_scaling_closed_forms_by_hand_and_from_the_state():
    y = np.array([1.0, -3.0, 2.0])
    pred = Gaussian(mean=np.zeros(3), std=np.array([1.0, 1.0, 2.0]))  # z = 1, -3, 1
    assert VarianceScaling().fit(y, pred).scale_factor_ == pytest.approx(math.sqrt(11 / 3))
    lap = Laplace(loc=np.zeros(3), scale=np.array([1.0, 1.0, 2.0]))
    assert VarianceScaling().fit(y, lap).scale_factor_ == pytest.approx(5 / 3)
    assert RegressionStats().update(y, pred).scale_factor("gaussian") == pytest.approx(
        math.sqrt(11 / 3))
    assert RegressionStats().update(y, lap).scale_factor("laplace") == pytest.approx(5 / 3)
    with pytest.raises(ValueError, match="needs the rows"):
        RegressionStats().update(y, StudentT(loc=np.zeros(3), scale=1.0, df=3.0)).scale_factor(
            "student_t")


def test_variance_scaling_errors_and_plain_data():
    with pytest.raises(ValueError, match="every observed value equals its predicted location"):
        VarianceScaling().fit(np.zeros(3), Gaussian(mean=np.zeros(3), std=1.0))
    with pytest.raises(TypeError, match="needs a parametric predictive distribution"):
        VarianceScaling().fit(np.zeros(1), QuantileSet(quantiles=np.zeros((1, 1)), levels=[0.5]))
    vs = VarianceScaling().fit(np.array([1.0, -2.0]), Laplace(loc=np.zeros(2), scale=1.0))
    with pytest.raises(ValueError, match="fitted on laplace predictions; got gaussian"):
        vs.predict(Gaussian(mean=np.zeros(1), std=1.0))
    back = from_dict(json.loads(vs.to_json()))
    assert isinstance(back, VarianceScaling) and back.scale_factor_ == vs.scale_factor_
    bad = vs.to_dict()
    bad["fitted"]["scale_factor_"] = -1.0
    with pytest.raises(ValueError, match="scale_factor_ must be a finite number > 0"):
        from_dict(bad)


# --------------------------------------------------------------------------- isotonic


def test_isotonic_quantile_recalibration_fixes_held_out_calibration(rng):
    n = 20000
    mu, sd = rng.normal(size=2 * n), np.exp(rng.normal(size=2 * n) * 0.3)
    y = mu + 0.5 + 2.0 * sd * rng.laplace(size=2 * n)  # biased, too narrow, wrong shape
    pred = Gaussian(mean=mu, std=sd)
    fit, test = slice(0, n), slice(n, 2 * n)
    cal = IsotonicQuantileRecalibration().fit(y[fit], Gaussian(mean=mu[fit], std=sd[fit]))
    held = Gaussian(mean=mu[test], std=sd[test])
    before = evaluate_regression(y[test], held)
    u = cal.predict_cdf(y[test], held)
    assert before.pit_ece > 0.05
    assert stats.kstest(u, "uniform").pvalue > 0.001
    levels = np.arange(1, 20) / 20
    after = evaluate_regression(y[test], cal.predict_quantiles(held, levels))
    assert after.pit_ece < 0.01
    for row in after.coverage:
        assert row.observed == pytest.approx(row.level, abs=0.02)
    assert pred.family == "gaussian"
    back = from_dict(json.loads(cal.to_json()))
    np.testing.assert_array_equal(back.predict_cdf(y[test], held), u)


def test_isotonic_map_by_hand():
    # PIT values .5, .75 (twice, tied), .25 with unit weights: R = ECDF at the distinct values
    z = stats.norm.ppf([0.5, 0.75, 0.75, 0.25])
    cal = IsotonicQuantileRecalibration().fit(z, Gaussian(mean=np.zeros(4), std=1.0))
    np.testing.assert_allclose(cal.pit_, [0.0, 0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(cal.cdf_, [0.0, 0.25, 0.5, 1.0, 1.0])
    assert cal.transform_pit(0.625) == pytest.approx(0.75)   # linear between knots
    assert cal.inverse_pit([0.75])[0] == pytest.approx(0.625)


# --------------------------------------------------------------------------- state


def _data(rng, n=5000):
    mu, sd = rng.normal(size=n), np.exp(rng.normal(size=n) * 0.3)
    return mu + sd * rng.standard_t(5.0, size=n), mu, sd


def _numbers(report) -> dict:
    d = report.to_dict()
    d.pop("n")
    return d


@pytest.mark.parametrize("family", ["gaussian", "laplace", "student_t", "quantiles"])
def test_chunks_merges_and_bytes_equal_one_shot(family, rng):
    y, mu, sd = _data(rng)
    if family == "quantiles":
        lv = np.array([0.05, 0.25, 0.5, 0.75, 0.95])
        pred = QuantileSet(quantiles=mu[:, None] + sd[:, None] * stats.norm.ppf(lv), levels=lv)
        new = lambda: RegressionStats(quantile_levels=lv)  # noqa: E731
        cut = lambda a, b: QuantileSet(quantiles=pred.quantiles[a:b], levels=lv)  # noqa: E731
    else:
        pred = make(family, mu, sd, 4.0)
        new = RegressionStats
        cut = lambda a, b: make(family, mu[a:b], sd[a:b], 4.0)  # noqa: E731
    one = evaluate_regression(y, pred)
    parts = [new().update(y[a:a + 700], cut(a, a + 700)) for a in range(0, y.size, 700)]
    merged = parts[0]
    for p in parts[1:]:
        merged = merged.merge(p)
    tree = (parts[0] + parts[1]) + parts[2]
    for p in parts[3:]:
        tree = p + tree
    for state in (merged, tree, RegressionStats.from_bytes(merged.to_bytes())):
        a, b = _numbers(state.finalize()), _numbers(one)
        assert a.keys() == b.keys()
        for key in ("nll", "crps", "pit_ece", "quantile_calibration_error", "dispersion"):
            if b[key] is None:
                assert a[key] is None
            else:
                assert a[key] == pytest.approx(b[key], rel=1e-12, abs=1e-15), key
        assert a["coverage"] == pytest.approx(b["coverage"], rel=1e-12)
        assert a["pit_histogram"]["count"] == b["pit_histogram"]["count"]


def test_state_size_does_not_depend_on_n(rng):
    sizes = []
    for n in (10, 10000):
        y, mu, sd = _data(rng, n)
        sizes.append(len(RegressionStats().update(y, Gaussian(mean=mu, std=sd)).to_bytes()))
    assert sizes[0] == sizes[1]


def test_weights_repetition_and_zero_weight(rng):
    y, mu, sd = _data(rng, 300)
    w = rng.integers(0, 4, size=300)
    pred = Gaussian(mean=mu, std=sd)
    weighted = evaluate_regression(y, pred, sample_weight=w)
    rep = np.repeat(np.arange(300), w)
    repeated = evaluate_regression(y[rep], Gaussian(mean=mu[rep], std=sd[rep]))
    a, b = _numbers(weighted), _numbers(repeated)
    for key in ("nll", "crps", "pit_ece", "quantile_calibration_error", "dispersion"):
        assert a[key] == pytest.approx(b[key], rel=1e-11), key
    assert a["coverage"] == pytest.approx(b["coverage"], rel=1e-12)
    # weights add up like repeated rows; counts are rows with positive weight (SPEC.md)
    assert a["pit_histogram"]["weight"] == b["pit_histogram"]["weight"]
    dropped = evaluate_regression(y[w > 0], Gaussian(mean=mu[w > 0], std=sd[w > 0]),
                                  sample_weight=w[w > 0])
    assert dropped.pit_histogram.count == weighted.pit_histogram.count
    assert dropped.crps == pytest.approx(weighted.crps, rel=1e-13)


@pytest.mark.torch
def test_numpy_equals_torch(rng):
    torch = pytest.importorskip("torch")
    y, mu, sd = _data(rng, 2000)
    w = rng.random(2000)
    for family in ("gaussian", "laplace", "student_t"):
        a = evaluate_regression(y, make(family, mu, sd, 4.0), sample_weight=w)
        t = [torch.tensor(v) for v in (y, mu, sd, w)]
        b = evaluate_regression(t[0], make(family, t[1], t[2], 4.0), sample_weight=t[3])
        for key in ("nll", "crps", "pit_ece", "quantile_calibration_error", "dispersion"):
            assert getattr(b, key) == pytest.approx(getattr(a, key), rel=1e-12), (family, key)
        assert b.pit_histogram == a.pit_histogram
    lv = [0.1, 0.5, 0.9]
    q = mu[:, None] + sd[:, None] * stats.norm.ppf(lv)
    a = evaluate_regression(y, QuantileSet(quantiles=q, levels=lv))
    b = evaluate_regression(torch.tensor(y), QuantileSet(quantiles=torch.tensor(q), levels=lv))
    assert b.crps == pytest.approx(a.crps, rel=1e-13) and b.calibration == a.calibration
    u = pit_values(torch.tensor(y), StudentT(loc=torch.tensor(mu), scale=1.0, df=3.0))
    assert isinstance(u, torch.Tensor)


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(("call", "error", "match"), [
    (lambda: evaluate_regression(np.zeros(2), Gaussian(mean=np.zeros(2), std=np.array([1, 0]))),
     ValueError, r"std must be > 0; row 1 is 0"),
    (lambda: evaluate_regression(np.array([0.0, np.nan]), Gaussian(mean=np.zeros(2), std=1.0)),
     ValueError, r"observed must be finite \(no NaN or inf\); row 1 is nan"),
    (lambda: evaluate_regression(np.zeros(2), Laplace(loc=np.zeros(3), scale=1.0)),
     ValueError, "loc has 3 rows but observed has 2"),
    (lambda: evaluate_regression(np.zeros(2), StudentT(loc=np.zeros(2), scale=1.0, df=1.0)),
     ValueError, r"df must be a finite number > 1; got 1.0"),
    (lambda: evaluate_regression(np.zeros(2), StudentT(loc=np.zeros(2), scale=1.0,
                                                       df=np.array([3.0, 0.5]))),
     ValueError, r"df must be > 1 .*row 1 is 0.5"),
    (lambda: evaluate_regression(np.zeros(1), QuantileSet(quantiles=np.array([[1.0, 0.0]]),
                                                          levels=[0.2, 0.8])),
     ValueError, r"quantiles must be non-decreasing along each row .*row 0 is \[1, 0\]"),
    (lambda: evaluate_regression(np.zeros(1), QuantileSet(quantiles=np.zeros((1, 2)),
                                                          levels=[0.8, 0.2])),
     ValueError, "levels must be strictly increasing"),
    (lambda: evaluate_regression(np.zeros(1), QuantileSet(quantiles=np.zeros((1, 2)),
                                                          levels=[0.0, 0.2])),
     ValueError, r"levels must be in \(0, 1\); entry 0 is 0.0"),
    (lambda: evaluate_regression(np.zeros(1), QuantileSet(quantiles=np.zeros((1, 2)),
                                                          levels=[0.2, 0.8]),
                                 coverage_levels=[0.9]),
     ValueError, "coverage level 0.9 needs the quantile levels 0.05 and 0.95"),
    (lambda: evaluate_regression(np.zeros(2), np.zeros(2)),
     TypeError, "predictive must be Gaussian"),
    (lambda: evaluate_regression(np.zeros((2, 1)), Gaussian(mean=np.zeros(2), std=1.0)),
     ValueError, r"observed must be 1-D"),
    (lambda: evaluate_regression(np.zeros(2), Gaussian(mean=np.zeros(2), std=1.0),
                                 sample_weight=np.array([1.0, -1.0])),
     ValueError, r"sample_weight must be >= 0; row 1 is -1"),
    (lambda: evaluate_regression(np.zeros(2), Gaussian(mean=np.zeros(2), std=1.0),
                                 n_pit_bins=7),
     ValueError, "n_pit_bins must be a positive integer dividing the 1000 PIT cells"),
    (lambda: RegressionStats().update(np.zeros(1), QuantileSet(quantiles=np.zeros((1, 1)),
                                                               levels=[0.5])),
     ValueError, "this state was made for a parametric family"),
])
def test_validation_messages(call, error, match):
    with pytest.raises(error, match=match):
        call()
