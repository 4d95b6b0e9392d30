"""Multi-label: per-label scores and calibration errors, micro/macro aggregates by hand, the
mergeable state, per-label calibrators recovering known miscalibration, decompositions."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import trueprob
from trueprob.calibrators.base import from_dict
from trueprob.calibrators.binary import PlattScaling
from trueprob.calibrators.nonparametric import IsotonicCalibration
from trueprob.calibrators.temperature import TemperatureScaling
from trueprob.multilabel import (
    MultilabelStats,
    PerLabelCalibration,
    decompose_multilabel,
    evaluate_multilabel,
)

Q = np.array([[0.9, 0.2], [0.6, 0.1], [0.3, 0.8], [0.4, 0.6]])
Y = np.array([[1, 0], [0, 0], [1, 1], [0, 0]])


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def test_per_label_micro_and_macro_by_hand():
    r = evaluate_multilabel(Y, probs=Q, n_bins=2, label_names=["cat", "dog"])
    a, b = r.per_label
    # label 0: BCE = -(log .9 + log .4 + log .3 + log .6) / 4; Brier (.01 + .36 + .49 + .16) / 4
    assert a.nll == pytest.approx(-(math.log(.9) + math.log(.4) + math.log(.3)
                                    + math.log(.6)) / 4, rel=1e-14)
    assert a.brier == pytest.approx(0.255)
    assert (a.prevalence, a.mean_prob) == (0.5, pytest.approx(0.55))
    # bins (0, .5], (.5, 1]: conf .35 / acc .5 and conf .75 / acc .5
    assert a.ece == pytest.approx(0.5 * 0.15 + 0.5 * 0.25)
    assert a.mce == pytest.approx(0.25)
    assert a.rmsce == pytest.approx(math.sqrt(0.5 * 0.15**2 + 0.5 * 0.25**2))
    # label 1: conf .15 / acc 0 and conf .7 / acc .5
    assert b.ece == pytest.approx(0.5 * 0.15 + 0.5 * 0.2)
    assert b.brier == pytest.approx((0.04 + 0.01 + 0.04 + 0.36) / 4)
    # micro: 8 pairs pooled; bins: (q .3 .4 .2 .1, y 1 0 0 0) and (q .9 .6 .8 .6, y 1 0 1 0)
    assert r.micro.ece == pytest.approx(0.5 * 0.0 + 0.5 * abs(2.9 / 4 - 0.5))
    assert r.micro.mce == pytest.approx(0.225)
    assert r.micro.brier == pytest.approx((1.02 + 0.45) / 8)
    assert r.micro.nll == pytest.approx((a.nll + b.nll) / 2)  # every label has weight W
    assert r.macro.ece == pytest.approx((0.2 + 0.175) / 2)
    assert r.macro.mce == pytest.approx((0.25 + 0.2) / 2)
    assert [w.name for w in r.worst] == ["cat", "dog"]
    assert r.worst[0].bins[1].confidence == pytest.approx(0.75)
    assert r.bins[1].weight == 4.0 and r.bins[1].accuracy == 0.5
    d = r.to_dict()
    assert d["micro"]["ece"] == r.micro.ece and d["worst_labels"][0]["name"] == "cat"
    assert "| ece |" in r.to_markdown()


def test_each_label_equals_the_binary_evaluation(rng):
    n, k = 3000, 4
    z = rng.normal(size=(n, k)) * 2
    y = (rng.random((n, k)) < sigmoid(0.7 * z + 0.3)).astype(int)
    w = rng.random(n)
    r = evaluate_multilabel(y, logits=z, sample_weight=w)
    for j in range(k):
        ref = trueprob.evaluate(y[:, j], logits=z[:, j], sample_weight=w)
        m = r.per_label[j]
        assert m.nll == pytest.approx(ref.nll, rel=1e-12)
        assert 2 * m.brier == pytest.approx(ref.brier, rel=1e-12)  # two-column form is twice
        # the classwise reliability of class 1 is the positive-class reliability
        assert m.ece == pytest.approx(ref.classwise_ece_per_class[1], rel=1e-12)
    assert r.macro.ece == pytest.approx(np.mean([m.ece for m in r.per_label]))


def test_logits_are_exact_and_agree_with_probabilities():
    z = np.array([[50.0, -50.0, 0.3]])
    y = np.array([[0, 1, 1]])
    r = evaluate_multilabel(y, logits=z)
    assert [m.nll for m in r.per_label] == pytest.approx([50.0, 50.0, math.log1p(math.exp(-.3))])
    z2 = np.random.default_rng(1).normal(size=(200, 3))
    y2 = (z2 > 0.2).astype(int)
    a = evaluate_multilabel(y2, logits=z2)
    b = evaluate_multilabel(y2, probs=sigmoid(z2))
    assert a.micro.nll == pytest.approx(b.micro.nll, rel=1e-12)
    assert a.macro.ece == pytest.approx(b.macro.ece, rel=1e-12)


def test_zero_probability_on_an_observed_label_is_infinite():
    with pytest.warns(trueprob.InfiniteLossWarning, match="infinite for 1 label"):
        r = evaluate_multilabel(np.array([[1, 0], [0, 0]]), probs=np.array([[0.0, 0.1],
                                                                          [0.5, 0.2]]))
    assert r.per_label[0].nll == math.inf and r.per_label[0].n_infinite_nll == 1
    assert math.isfinite(r.per_label[1].nll) and r.micro.nll == math.inf


def test_chunks_merge_bytes_and_weights(rng):
    n, k = 2000, 3
    z = rng.normal(size=(n, k)) * 3
    y = (rng.random((n, k)) < sigmoid(z / 2)).astype(int)
    w = rng.integers(0, 3, size=n).astype(float)
    one = evaluate_multilabel(y, logits=z, sample_weight=w)
    parts = [MultilabelStats(k).update(y[a:a + 300], logits=z[a:a + 300],
                                       sample_weight=w[a:a + 300]) for a in range(0, n, 300)]
    state = parts[0]
    for p in parts[1:]:
        state = p + state
    for s in (state, MultilabelStats.from_bytes(state.to_bytes())):
        got = s.finalize()
        for agg in ("micro", "macro"):
            for f in ("nll", "brier", "ece", "mce", "rmsce", "ece_debiased"):
                assert getattr(getattr(got, agg), f) == pytest.approx(
                    getattr(getattr(one, agg), f), rel=1e-12), (agg, f)
    rep = np.repeat(np.arange(n), w.astype(int))
    repeated = evaluate_multilabel(y[rep], logits=z[rep])
    assert repeated.micro.ece == pytest.approx(one.micro.ece, rel=1e-12)
    assert repeated.macro.nll == pytest.approx(one.macro.nll, rel=1e-12)


@pytest.mark.torch
def test_numpy_equals_torch(rng):
    torch = pytest.importorskip("torch")
    z = rng.normal(size=(500, 3))
    y = (rng.random((500, 3)) < 0.4).astype(np.int64)
    a = evaluate_multilabel(y, logits=z)
    b = evaluate_multilabel(torch.tensor(y), logits=torch.tensor(z))
    assert b.micro.ece == pytest.approx(a.micro.ece, rel=1e-12)
    assert [m.nll for m in b.per_label] == pytest.approx([m.nll for m in a.per_label],
                                                         rel=1e-12)
    cal = PerLabelCalibration(base=IsotonicCalibration()).fit(y, logits=z)
    out = cal.predict_proba(logits=torch.tensor(z))
    assert isinstance(out, torch.Tensor)
    np.testing.assert_allclose(out.numpy(), cal.predict_proba(logits=z), rtol=1e-12)


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"labels": np.array([[1, 2]]), "probs": np.array([[0.5, 0.5]])}, ValueError,
     r"labels must be 0 or 1 \(multi-label: one column per label\); row 0 is \[1, 2\]"),
    ({"labels": np.array([[1, 0]]), "probs": np.array([[0.5, 1.5]])}, ValueError,
     r"probs must be in \[0, 1\]; row 0 is \[0.5, 1.5\]"),
    ({"labels": np.array([[1, 0]]), "probs": np.array([[0.5, 0.5, 0.1]])}, ValueError,
     r"labels must have the shape of probs, \(N, L\) = \(1, 3\); got \(1, 2\)"),
    ({"labels": np.array([1, 0]), "logits": np.array([0.5, 0.5])}, ValueError,
     r"logits must be \(N, L\): one column per label"),
    ({"labels": np.array([[1]]), "logits": np.zeros((1, 1)), "probs": np.zeros((1, 1))},
     TypeError, "pass exactly one of logits= or probs="),
    ({"labels": np.array([[1]]), "logits": np.array([[np.inf]])}, ValueError,
     r"logits must be finite \(no NaN or inf\); row 0 is \[inf\]"),
])
def test_validation_messages(kwargs, error, match):
    labels = kwargs.pop("labels")
    with pytest.raises(error, match=match):
        evaluate_multilabel(labels, **kwargs)


# --------------------------------------------------------------------------- calibrators


def _miscalibrated(rng, n, a, b):
    z = rng.normal(size=(n, len(a))) * 2.5
    p = sigmoid(np.asarray(a) * z + np.asarray(b))
    return z, (rng.random(p.shape) < p).astype(int), p


def test_per_label_platt_recovers_known_slopes_and_intercepts(rng):
    a, b = [0.5, 1.0, 2.0], [0.3, -0.5, 0.0]
    z, y, _ = _miscalibrated(rng, 40000, a, b)
    cal = PerLabelCalibration().fit(y, logits=z)
    for j, c in enumerate(cal.calibrators_):
        assert isinstance(c, PlattScaling)
        assert c.coef_ == pytest.approx(a[j], rel=0.05)
        assert c.intercept_ == pytest.approx(b[j], abs=0.05)


def test_per_label_temperature_recovers_known_temperatures(rng):
    temps = [0.5, 1.0, 2.0, 4.0]
    z, y, _ = _miscalibrated(rng, 20000, [1 / t for t in temps], [0.0] * 4)
    cal = PerLabelCalibration(base=TemperatureScaling()).fit(y, logits=z)
    assert [c.temperature_ for c in cal.calibrators_] == pytest.approx(temps, rel=0.05)
    z, y, _ = _miscalibrated(rng, 10000, [0.5] * 3, [0.0] * 3)
    shared = PerLabelCalibration(base=TemperatureScaling(), shared=True).fit(y, logits=z)
    assert len(shared.calibrators_) == 1
    assert shared.calibrators_[0].temperature_ == pytest.approx(2.0, rel=0.03)
    assert shared.predict_logits(logits=z) == pytest.approx(z / shared.calibrators_[0]
                                                            .temperature_, rel=1e-12)


def test_per_label_isotonic_recovers_the_true_map_on_held_out_rows(rng):
    a, b = [0.4, 2.5], [1.0, -1.0]
    z, y, _ = _miscalibrated(rng, 40000, a, b)
    zt, yt, pt = _miscalibrated(rng, 20000, a, b)
    cal = PerLabelCalibration(base=IsotonicCalibration()).fit(y, logits=z)
    q = cal.predict_proba(logits=zt)
    assert np.mean(np.abs(q - pt), axis=0) == pytest.approx([0.0, 0.0], abs=0.02)
    before = evaluate_multilabel(yt, logits=zt)
    after = evaluate_multilabel(yt, logits=cal.predict_logits(logits=zt))
    assert before.macro.ece > 0.1
    assert after.macro.ece < 0.02


def test_calibrator_plain_data_round_trip_and_errors(rng):
    z, y, _ = _miscalibrated(rng, 3000, [0.5, 2.0], [0.2, 0.0])
    for base in (None, TemperatureScaling(), IsotonicCalibration(clip=1e-4)):
        cal = PerLabelCalibration(base=base).fit(y, logits=z)
        back = from_dict(json.loads(cal.to_json()))
        assert isinstance(back, PerLabelCalibration)
        np.testing.assert_array_equal(back.predict_logits(logits=z), cal.predict_logits(logits=z))
    y_bad = y.copy()
    y_bad[:, 1] = 0
    with pytest.raises(ValueError, match="PerLabelCalibration, label dog: PlattScaling needs "
                                         "both classes"):
        PerLabelCalibration().fit(y_bad, logits=z, label_names=["cat", "dog"])
    with pytest.raises(TypeError, match="base must be a binary calibrator"):
        PerLabelCalibration(base="platt").fit(y, logits=z)
    cal = PerLabelCalibration().fit(y, logits=z)
    with pytest.raises(ValueError, match="fitted on L=2 labels; the scores have L=3"):
        cal.predict_logits(logits=np.zeros((1, 3)))
    d = cal.to_dict()
    d["fitted"]["n_labels_"] = 3
    with pytest.raises(ValueError, match="calibrators_ must be a list of 3 fitted"):
        from_dict(d)


# --------------------------------------------------------------------------- decomposition


def test_decompose_multilabel_matches_binary_decompositions(rng):
    z, y, _ = _miscalibrated(rng, 2000, [0.5, 1.5], [0.5, 0.0])
    d = decompose_multilabel(y, logits=z)
    for j in range(2):
        ref = trueprob.decompose(y[:, j], logits=z[:, j])
        assert d.per_label[j].mcb == pytest.approx(ref.mcb, rel=1e-12)
        assert d.per_label[j].dsc == pytest.approx(ref.dsc, rel=1e-12)
    pooled = trueprob.decompose(y.ravel(), logits=z.ravel())
    assert d.micro.score == pytest.approx(pooled.score, rel=1e-12)
    m = d.macro
    assert m.score == pytest.approx(m.mcb - m.dsc + m.unc, rel=1e-12)
    assert m.mcb == pytest.approx(np.mean([p.mcb for p in d.per_label]))
    # label 0 (slope 0.5: over-confident) loses more to miscalibration than label 1
    assert d.per_label[0].mcb > d.per_label[1].mcb
