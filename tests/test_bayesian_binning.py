"""BBQ and ENIR (trueprob.calibrators.bayesian) against netcal 1.4.0 and by hand.

Reference values: tests/reference/bayesian_binning_netcal.json, written by
tools/make_bayesian_binning_reference.py with netcal 1.4.0 (its wheel unpacked, not
installed; the file records the versions and the command).
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy.special import gammaln

from trueprob.calibrators import BBQ, ENIR, OneVsRest, TopLabel, from_dict
from trueprob.calibrators.bayesian import bbq_bin_range, model_weights, near_isotonic_path

REPO = Path(__file__).resolve().parents[1]
REF = json.loads((REPO / "tests" / "reference" / "bayesian_binning_netcal.json").read_text())


def _recipes():
    spec = importlib.util.spec_from_file_location(
        "make_ref", REPO / "tools" / "make_bayesian_binning_reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


RECIPES = _recipes()


def _inputs(case: str) -> tuple[np.ndarray, np.ndarray]:
    entry = REF["cases"][case]
    make = RECIPES.binary_case if entry["kind"] == "binary" else RECIPES.multiclass_case
    return make(**entry["recipe"])


# --------------------------------------------------------------------------- netcal


def test_reference_records_its_provenance():
    assert REF["netcal"] == "1.4.0"
    assert "make_bayesian_binning_reference.py" in REF["command"]


@pytest.mark.parametrize("case", ["binary_300", "binary_2000"])
def test_bbq_matches_netcal_binary(case):
    # netcal sums its log-likelihoods in float32 (torch BCE), trueprob in float64: the model
    # weights differ in the 7th digit, the predictions by up to 7.3e-6 (measured)
    p, y = _inputs(case)
    ref = REF["cases"][case]["bbq"]
    cal = BBQ(clip=0.0).fit(y, probs=p)
    assert cal.model_weights_.size == ref["n_models"]
    fitted = np.exp(cal.predict_logproba(probs=p[:len(ref["fit_inputs"])]))[:, 1]
    np.testing.assert_allclose(fitted, ref["fit_inputs"], atol=2e-5, rtol=0)
    grid = np.exp(cal.predict_logproba(probs=np.asarray(REF["grid"])))[:, 1]
    np.testing.assert_allclose(grid, ref["grid"], atol=2e-5, rtol=0)


def test_bbq_one_vs_rest_matches_netcal_multiclass():
    q, y = _inputs("multiclass_600_k3")
    ref = REF["cases"]["multiclass_600_k3"]["bbq"]
    cal = OneVsRest(base=BBQ(clip=0.0)).fit(y, probs=q)
    fitted = np.exp(cal.predict_logproba(probs=q[:len(ref["fit_inputs"])]))
    np.testing.assert_allclose(fitted, ref["fit_inputs"], atol=2e-5, rtol=0)
    g = np.asarray(REF["grid"])[:, None]
    rows = np.concatenate([g, (1 - g) * 0.6, (1 - g) * 0.4], axis=1)
    np.testing.assert_allclose(np.exp(cal.predict_logproba(probs=rows)), ref["grid"],
                               atol=2e-5, rtol=0)


def test_near_isotonic_path_matches_netcal_until_its_merge_bookkeeping_departs():
    # netcal 1.4.0's mPAVA merges a chain of three or more groups that meet at the same
    # lambda but keeps the rows of only the first two in the merged group (its __merge_groups
    # concatenates items[i] and items[i+1] before items[i+1] has absorbed items[i+2]); the
    # sizes, and so the later slopes, then differ. Up to that point the paths agree exactly:
    # the first two models' values, and every group size except those chained merges.
    p, y = _inputs("binary_300")
    ref = REF["cases"]["binary_300"]["nir_path"]
    path = near_isotonic_path(p, y.astype(np.float64), np.ones_like(p))
    for m in (0, 1):
        assert path[m][1].size == len(ref[m]["values"])
        np.testing.assert_allclose(path[m][1], ref[m]["values"], rtol=0, atol=1e-12)
    assert path[0][2].tolist() == ref[0]["sizes"]
    # model 1: groups built from at most two model-0 groups have netcal's sizes
    first_sizes = path[0][2]
    bounds0 = path[0][0]
    bounds1 = path[1][0]
    merged_from = np.searchsorted(bounds0, bounds1) - np.searchsorted(
        bounds0, np.concatenate([[0.0], bounds1[:-1]]))
    ok = merged_from <= 2
    assert ok.sum() >= 0.8 * ok.size
    np.testing.assert_array_equal(path[1][2][ok], np.asarray(ref[1]["sizes"])[ok])
    assert np.all(np.asarray(ref[1]["sizes"])[~ok] < path[1][2][~ok])
    assert first_sizes.sum() == path[1][2].sum() == 300


# --------------------------------------------------------------------------- by hand


def test_path_ends_at_the_isotonic_fit():
    from sklearn.isotonic import IsotonicRegression

    p, y = _inputs("binary_300")
    upper, values, weights = near_isotonic_path(p, y.astype(np.float64), np.ones_like(p))[-1]
    assert np.all(np.diff(values) >= -1e-12) and weights.sum() == 300
    iso = IsotonicRegression().fit(p, y).predict(p)
    mine = values[np.searchsorted(upper[:-1], p, side="left")]
    np.testing.assert_allclose(mine, iso, atol=1e-12)


def test_bbq_bdeu_by_hand():
    # N = 10 rows: B ranges over {1, 2}; equal-width bins; BDeu with N' = 2, p_b = midpoints
    p = np.array([0.05, 0.15, 0.3, 0.35, 0.45, 0.55, 0.6, 0.7, 0.85, 0.95])
    y = np.array([0, 0, 1, 0, 0, 1, 0, 1, 1, 1])
    assert bbq_bin_range(10) == range(1, 3)
    cal = BBQ(score="bdeu", elbow=None, clip=0.0).fit(y, probs=p)

    def member(b: int) -> tuple[float, np.ndarray]:
        edges = np.linspace(0, 1, b + 1)
        idx = np.clip(np.ceil(p * b) - 1, 0, b - 1).astype(int)
        a0 = 2.0 / b
        log_ml, values = 0.0, []
        for j in range(b):
            n, m = np.sum(idx == j), np.sum(y[idx == j])
            mid = (edges[j] + edges[j + 1]) / 2
            al, be = a0 * mid, a0 * (1 - mid)
            log_ml += (math.lgamma(a0) - math.lgamma(n + a0) + math.lgamma(m + al)
                       - math.lgamma(al) + math.lgamma(n - m + be) - math.lgamma(be))
            values.append((m + al) / (n + a0))
        return log_ml, np.array(values)

    (l1, v1), (l2, v2) = member(1), member(2)
    w2 = 1 / (1 + math.exp(l1 - l2))
    np.testing.assert_allclose(cal.model_weights_, [1 - w2, w2], rtol=1e-12)
    new = np.array([0.2, 0.8])
    expected = (1 - w2) * v1[0] + w2 * v2[[0, 1]]
    got = np.exp(cal.predict_logproba(probs=new))[:, 1]
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert gammaln(2.0) == 0.0  # (scipy and math agree on the Gamma function used above)


def test_model_weights_and_elbow_by_hand():
    scores = np.array([100.0, 100.0, 101.0, 140.0])
    omega = np.exp((100.0 - scores) / 2)
    keep, w = model_weights(scores, None)
    np.testing.assert_allclose(w, omega / omega.sum())
    # elbow: ranked (1, 1, e^-0.5, ~0); skip the tie, then keep while drop / var > alpha
    keep, w = model_weights(scores, 1e-3)
    var = np.var(omega)
    assert (omega[1] - omega[2]) / var > 1e-3 and (omega[2] - omega[3]) / var > 1e-3
    assert sorted(keep.tolist()) == [0, 1, 2, 3]
    keep, _ = model_weights(scores, 10.0)
    assert sorted(keep.tolist()) == [0, 1]


# --------------------------------------------------------------------------- properties


@pytest.mark.parametrize("cls", [BBQ, ENIR])
def test_integer_weights_equal_repeated_rows(cls):
    p, y = _inputs("binary_300")
    w = np.random.default_rng(3).integers(0, 3, size=p.size)
    rows = np.repeat(np.arange(p.size), w)
    a = cls().fit(y, probs=p, sample_weight=w)
    b = cls().fit(y[rows], probs=p[rows])
    grid = np.asarray(REF["grid"])
    np.testing.assert_allclose(a.predict_logproba(probs=grid), b.predict_logproba(probs=grid),
                               rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("cal", [BBQ(), BBQ(score="bdeu", binning="mass", elbow=None),
                                 ENIR(), ENIR(score="aic")])
def test_save_load_round_trip_and_wrappers(cal):
    q, y = _inputs("multiclass_600_k3")
    for wrapper in (OneVsRest, TopLabel):
        fitted = wrapper(base=cal).fit(y, probs=q)
        again = from_dict(json.loads(fitted.to_json()))
        np.testing.assert_array_equal(again.predict_logproba(probs=q[:50]),
                                      fitted.predict_logproba(probs=q[:50]))
    p, yb = _inputs("binary_300")
    out = np.exp(type(cal)(**cal.get_params()).fit(yb, logits=np.log(p / (1 - p)))
                 .predict_logproba(logits=np.linspace(-5, 5, 11)))[:, 1]
    if cal.score != "aic":  # AIC's light penalty keeps wiggly members (ENIR: near the data)
        assert np.all(np.diff(out) >= -0.05)  # close to monotone on over-confident scores


def test_enir_is_between_its_members():
    p, y = _inputs("binary_2000")
    cal = ENIR(clip=0.0).fit(y, probs=p)
    grid = np.asarray(REF["grid"])
    members = np.stack([v[np.searchsorted(u[:-1], grid, side="left")]
                        for u, v in zip(cal.upper_, cal.values_, strict=True)])
    got = np.exp(cal.predict_logproba(probs=grid))[:, 1]
    np.testing.assert_allclose(got, cal.model_weights_ @ members, rtol=1e-12)


@pytest.mark.parametrize(("make", "match"), [
    (lambda: BBQ(score="bdeu2"), r"BBQ: score must be one of \['bic', 'aic', 'bdeu'\]; "
                                 r"got 'bdeu2'"),
    (lambda: BBQ(binning="quantile"), "BBQ: binning must be 'width' or 'mass'; got 'quantile'"),
    (lambda: ENIR(score="bdeu"), r"ENIR: score must be one of \['bic', 'aic'\]; got 'bdeu'"),
    (lambda: ENIR(elbow=-1), "ENIR: elbow must be None or a finite number >= 0; got -1"),
    (lambda: BBQ(clip=0.7), r"BBQ: clip must be a number in \[0, 0.5\); got 0.7"),
])
def test_bad_parameters(make, match):
    p, y = _inputs("binary_300")
    with pytest.raises(ValueError, match=match):
        make().fit(y, probs=p)
