"""Top-label recalibration from confidences and predictions alone (no vectors).

Every number is checked against a second computation: the vector path of TopLabel on the
same rows, scikit-learn's isotonic regression, a binary calibrator fitted directly on
(confidence, correctness), or the formula by hand.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.special import softmax, xlogy
from sklearn.isotonic import IsotonicRegression

import trueprob
from trueprob.calibrators import (
    BBQ,
    ENIR,
    BetaCalibration,
    HistogramBinning,
    IsotonicCalibration,
    OneVsRest,
    PlattScaling,
    ScalingBinning,
    TopLabel,
    from_dict,
    load,
)
from trueprob.calibrators.binary import log_sigmoid
from trueprob.calibrators.by_name import make_top_label_calibrator, top_label_refusal
from trueprob.calibrators.compare import Candidate, compare_calibrators, top_label_losses
from trueprob.calibrators.multiclass import top_label_log_odds

BASES = (PlattScaling, BetaCalibration, IsotonicCalibration, HistogramBinning, ScalingBinning,
         BBQ, ENIR)


@pytest.fixture
def over_confident(rng):
    """Logits three times too large (true temperature 3), labels drawn from the truth."""
    z = rng.normal(size=(3000, 5)) * 3
    truth = softmax(z / 3, axis=1)
    y = (truth.cumsum(axis=1) < rng.random((3000, 1))).sum(axis=1).clip(0, 4)
    q = softmax(z, axis=1)
    return z, y, q.max(axis=1), q.argmax(axis=1)


def unfloored(cal: TopLabel, z: np.ndarray) -> np.ndarray:
    """The vector path's calibrated confidence before its argmax floor: sigmoid(f(s))."""
    _, s = top_label_log_odds(np, z)
    return np.exp(log_sigmoid(np, cal.calibrator_._log_odds(np, s)))


@pytest.mark.parametrize("base", BASES, ids=lambda b: b.__name__)
def test_confidences_fit_the_same_map_as_the_vector_path(over_confident, base):
    z, y, c, yhat = over_confident
    vector = TopLabel(base=base()).fit(y, logits=z)
    top = TopLabel(base=base()).fit(y, confidences=c, predictions=yhat)
    assert top.kind_ == "confidences" and top.n_classes_ is None
    assert top.calibrator_.kind_ == "probs"
    out = top.predict_confidences(confidences=c, predictions=yhat)
    np.testing.assert_allclose(out, unfloored(vector, z), rtol=0, atol=1e-12)
    # the vector path also keeps the argmax: its confidence is max(c', runner-up floor)
    q = softmax(z, axis=1)
    q2 = np.sort(q, axis=1)[:, -2]
    floor = q2 / (1.0 - c + q2)  # r / (1 + r), r = q_(2) / (1 - c)
    top_vector = np.exp(vector.predict_logproba(logits=z)).max(axis=1)
    np.testing.assert_allclose(top_vector, np.maximum(out, floor), rtol=0, atol=1e-9)


def test_isotonic_steps_are_identical(over_confident):
    z, y, c, yhat = over_confident
    vector = TopLabel(base=IsotonicCalibration()).fit(y, logits=z)
    top = TopLabel(base=IsotonicCalibration()).fit(y, confidences=c, predictions=yhat)
    np.testing.assert_array_equal(top.calibrator_.values_, vector.calibrator_.values_)
    np.testing.assert_allclose(top.calibrator_.thresholds_, vector.calibrator_.thresholds_,
                               rtol=1e-12)
    # and the step values are scikit-learn's isotonic regression of correctness on c
    ref = IsotonicRegression(y_min=0, y_max=1).fit_transform(c, (y == yhat).astype(float))
    cal = TopLabel(base=IsotonicCalibration(clip=0.0)).fit(y, confidences=c, predictions=yhat)
    np.testing.assert_allclose(cal.predict_confidences(confidences=c, predictions=yhat), ref,
                               atol=1e-12)


def test_hand_case():
    # PAV by hand: correctness (1, 0, 1, 1) at c = .6 .7 .8 .9 -> (.5, .5, 1, 1)
    c = np.array([0.6, 0.7, 0.8, 0.9])
    yhat = np.array([0, 1, 1, 2])
    cal = TopLabel(base=IsotonicCalibration(clip=0.0)).fit(np.array([0, 0, 1, 2]),
                                                           confidences=c, predictions=yhat)
    assert cal.predict_confidences(confidences=c, predictions=yhat).tolist() == [
        0.5, 0.5, 1.0, 1.0]


def test_float32_confidences_keep_their_dtype(over_confident):
    _, y, c, yhat = over_confident
    cal = TopLabel(base=PlattScaling()).fit(y, confidences=c, predictions=yhat)
    out32 = cal.predict_confidences(confidences=c.astype(np.float32), predictions=yhat)
    assert out32.dtype == np.float32
    # the float32 rounding of c moves log(1 - c) by up to eps32 / (1 - c)
    np.testing.assert_allclose(out32, cal.predict_confidences(confidences=c,
                                                               predictions=yhat), atol=2e-5)


# ----------------------------------------------------------------- soft targets and counts


def test_soft_targets_score_the_mass_on_the_predicted_class(rng, over_confident):
    _, _, c, yhat = over_confident
    t = rng.dirichlet(np.ones(5), size=c.shape[0])
    a = t[np.arange(c.shape[0]), yhat]
    cal = TopLabel(base=PlattScaling()).fit(targets=t, confidences=c, predictions=yhat)
    assert cal.n_classes_ == 5
    # the same fit, by the binary calibrator on (c, a) with soft binary targets
    ref = PlattScaling().fit(targets=a, probs=c)
    expected = np.exp(ref.predict_logproba(probs=c))[:, 1]
    np.testing.assert_allclose(cal.predict_confidences(confidences=c, predictions=yhat),
                               expected, rtol=1e-9)
    # counts are their row fractions
    counts = rng.integers(0, 4, size=(c.shape[0], 5))
    counts[:, 0] += 1
    by_counts = TopLabel(base=PlattScaling()).fit(counts=counts, confidences=c,
                                                  predictions=yhat)
    by_fraction = TopLabel(base=PlattScaling()).fit(
        targets=counts / counts.sum(axis=1, keepdims=True), confidences=c, predictions=yhat)
    np.testing.assert_allclose(by_counts.calibrator_.coef_, by_fraction.calibrator_.coef_,
                               rtol=1e-9)


def test_weights_are_repetitions(over_confident):
    _, y, c, yhat = over_confident
    w = np.tile([1, 2, 0], 1000)
    weighted = TopLabel(base=IsotonicCalibration()).fit(y, confidences=c, predictions=yhat,
                                                        sample_weight=w)
    rows = np.repeat(np.arange(3000), w)
    repeated = TopLabel(base=IsotonicCalibration()).fit(y[rows], confidences=c[rows],
                                                        predictions=yhat[rows])
    np.testing.assert_array_equal(weighted.predict_confidences(confidences=c, predictions=yhat),
                                  repeated.predict_confidences(confidences=c, predictions=yhat))


# ----------------------------------------------------------------- saved form


def test_json_round_trip_keeps_the_keys(tmp_path, over_confident):
    z, y, c, yhat = over_confident
    top = TopLabel(base=ENIR()).fit(y, confidences=c, predictions=yhat)
    vector = TopLabel(base=ENIR()).fit(y, logits=z)
    saved = top.to_dict()
    assert saved.keys() == vector.to_dict().keys()
    assert saved["fitted"].keys() == vector.to_dict()["fitted"].keys()
    assert saved["fitted"]["kind_"] == "confidences" and saved["fitted"]["n_classes_"] is None
    top.save(tmp_path / "tl.json")
    loaded = load(tmp_path / "tl.json")
    assert isinstance(loaded, TopLabel) and loaded.to_dict() == saved
    np.testing.assert_array_equal(loaded.predict_confidences(confidences=c, predictions=yhat),
                                  top.predict_confidences(confidences=c, predictions=yhat))
    # a TopLabel fitted on vectors applies to top-label outputs too, after loading
    again = from_dict(json.loads(vector.to_json()))
    np.testing.assert_allclose(again.predict_confidences(confidences=c, predictions=yhat),
                               top.predict_confidences(confidences=c, predictions=yhat),
                               atol=1e-12)


def test_a_hand_edited_n_classes_is_refused(over_confident):
    _, y, c, yhat = over_confident
    data = TopLabel().fit(y, confidences=c, predictions=yhat).to_dict()
    data["fitted"]["kind_"] = "logits"  # n_classes_ null is only for confidences
    with pytest.raises(ValueError, match="n_classes_ must be an integer >= 2; got None"):
        from_dict(data)
    data["fitted"]["kind_"] = "scores"
    with pytest.raises(ValueError, match=r"kind_ must be one of \['logits', 'probs', "
                                         r"'confidences'\]"):
        from_dict(data)


# ----------------------------------------------------------------- vectors from a top-label map


def test_a_confidence_map_applies_to_vectors(over_confident):
    z, y, c, yhat = over_confident
    # a continuous map (a step map may put a row that sits on a step's edge on either side:
    # s from the logits and s from the rounded c differ in the last bits)
    cal = TopLabel(base=BetaCalibration()).fit(y, confidences=c, predictions=yhat)
    q = np.exp(cal.predict_logproba(logits=z))
    np.testing.assert_allclose(q.sum(axis=1), 1.0, atol=1e-12)
    assert np.array_equal(q.argmax(axis=1), yhat)
    out = cal.predict_confidences(confidences=c, predictions=yhat)
    q2 = np.sort(softmax(z, axis=1), axis=1)[:, -2]
    np.testing.assert_allclose(q.max(axis=1), np.maximum(out, q2 / (1.0 - c + q2)), atol=1e-9)
    with pytest.raises(ValueError, match="fitted on top-label confidences: its module"):
        cal.to_torch()


# ----------------------------------------------------------------- refusals


@pytest.mark.parametrize("method", ["temperature", "vector", "matrix", "dirichlet"])
def test_vector_methods_are_refused_with_the_methods_that_work(method):
    with pytest.raises(ValueError, match=r"transforms the whole probability vector .* cannot "
                                         r"be fitted on top-label confidences and predictions "
                                         r"alone; the methods that work top-label are platt, "
                                         r"beta, isotonic, histogram, scaling-binning, bbq, "
                                         r"enir"):
        make_top_label_calibrator(method)
    assert top_label_refusal("platt") is None
    assert type(make_top_label_calibrator("bbq").base) is BBQ


def test_bad_inputs_are_named(over_confident):
    z, y, c, yhat = over_confident
    with pytest.raises(TypeError, match="not both"):
        TopLabel().fit(y, logits=z, confidences=c, predictions=yhat)
    with pytest.raises(TypeError, match="confidences= and predictions= go together"):
        TopLabel().fit(y, confidences=c)
    with pytest.raises(TypeError, match="n_classes= is for top-label inputs"):
        TopLabel().fit(y, logits=z, n_classes=5)
    with pytest.raises(TypeError, match="unexpected keyword argument 'confidences'"):
        OneVsRest().fit(y, confidences=c, predictions=yhat)  # needs every class's score
    bad = c.copy()
    bad[7] = 1.5
    with pytest.raises(ValueError, match=r"confidences .* row 7"):
        TopLabel().fit(y, confidences=bad, predictions=yhat)
    cal = TopLabel().fit(y, confidences=c, predictions=yhat, n_classes=5)
    assert cal.n_classes_ == 5
    wrong = yhat.copy()
    wrong[3] = 5
    with pytest.raises(ValueError, match=r"predictions must be in 0..4 \(K=5\); row 3 is 5"):
        cal.predict_confidences(confidences=c, predictions=wrong)
    wrong[3] = -1
    unknown_k = TopLabel().fit(y, confidences=c, predictions=yhat)
    with pytest.raises(ValueError, match=r"predictions must be .*; row 3 is -1"):
        unknown_k.predict_confidences(confidences=c, predictions=wrong)
    with pytest.raises(ValueError, match="predictions must be integer class indices; row 0"):
        unknown_k.predict_confidences(confidences=c, predictions=yhat + 0.5)


# ----------------------------------------------------------------- scores and comparison


def by_hand(c: np.ndarray, a: np.ndarray) -> tuple[float, float]:
    """Top-label NLL (bits) and Brier of correctness, from the formula."""
    with np.errstate(divide="ignore"):
        nll = -(xlogy(a, c) + xlogy(1 - a, 1 - c))
    return float(np.mean(nll) / np.log(2)), float(np.mean((c - a) ** 2))


def ece_by_hand(c: np.ndarray, a: np.ndarray, n_bins: int = 15) -> float:
    idx = np.clip(np.ceil(n_bins * c) - 1, 0, n_bins - 1).astype(int)
    total = 0.0
    for b in range(n_bins):
        rows = idx == b
        if rows.any():
            total += rows.mean() * abs(a[rows].mean() - c[rows].mean())
    return total


def test_top_label_losses_by_hand(over_confident):
    _, y, c, yhat = over_confident
    split = {"confidences": c, "predictions": yhat, "labels": y}
    nll, brier = top_label_losses(split)
    ref_nll, ref_brier = by_hand(c, (y == yhat).astype(float))
    assert nll == pytest.approx(ref_nll, rel=1e-12)
    assert brier == pytest.approx(ref_brier, rel=1e-12)
    # a wrong prediction at confidence exactly 1 costs an infinite log loss, honestly
    c1 = c.copy()
    c1[np.flatnonzero(y != yhat)[0]] = 1.0
    assert top_label_losses({**split, "confidences": c1})[0] == np.inf


def test_compare_on_top_label_outputs(over_confident):
    _, y, c, yhat = over_confident
    fit = {"confidences": c[:1500], "predictions": yhat[:1500], "labels": y[:1500]}
    held = {"confidences": c[1500:], "predictions": yhat[1500:], "labels": y[1500:]}
    comparison = compare_calibrators(fit, held, quiet=True)
    assert comparison.top_label and comparison.n_classes is None
    assert [r.name for r in comparison.rows] == [
        "uncalibrated"] + [f"{m} (top-label)" for m in ("platt", "beta", "isotonic",
                                                        "histogram", "scaling-binning", "bbq",
                                                        "enir")]
    a = (held["labels"] == held["predictions"]).astype(float)
    for row in comparison.rows:
        conf = held["confidences"] if row.calibrator is None else \
            row.calibrator.predict_confidences(confidences=held["confidences"],
                                               predictions=held["predictions"])
        nll, brier = by_hand(conf, a)
        assert row.nll == pytest.approx(nll, rel=1e-10)
        assert row.brier == pytest.approx(brier, rel=1e-10)
        assert row.ece == pytest.approx(ece_by_hand(conf, a), abs=1e-12)
        assert row.accuracy == pytest.approx(a.mean()) and row.classwise_ece is None
    best = comparison.best
    assert best is not None
    assert best.nll == min(r.nll for r in comparison.rows)
    assert "accuracy is" in comparison.notes[0]
    # a vector method on top-label outputs is a skipped row saying why
    only = compare_calibrators(fit, held, [Candidate("temperature", "top-label")], quiet=True)
    assert "transforms the whole probability vector" in only.rows[1].skipped
    with pytest.raises(ValueError, match="the evaluation split has logits"):
        compare_calibrators(fit, {"logits": np.zeros((3, 2)), "labels": np.zeros(3, int)},
                            quiet=True)


# ----------------------------------------------------------------- decomposition


@pytest.mark.parametrize("score", ["log", "brier"])
def test_decompose_confidences_against_sklearn(over_confident, score):
    z, y, c, yhat = over_confident
    a = (y == yhat).astype(float)
    d = trueprob.decompose(y, confidences=c, predictions=yhat, score=score)
    assert (d.target, d.estimator) == ("top_label", "isotonic")
    r = IsotonicRegression(y_min=0, y_max=1).fit_transform(c, a)
    prior = np.full_like(c, a.mean())
    if score == "log":
        def s(f):
            return by_hand(f, a)[0]
    else:
        def s(f):
            return by_hand(f, a)[1]
    assert d.score == pytest.approx(s(c), rel=1e-12)
    assert d.mcb == pytest.approx(s(c) - s(r), rel=1e-9)
    assert d.dsc == pytest.approx(s(prior) - s(r), rel=1e-9)
    assert d.unc == pytest.approx(s(prior), rel=1e-12)
    # the identity, to the rounding of three float64 subtractions
    assert d.score == pytest.approx(d.mcb - d.dsc + d.unc, rel=0, abs=4e-16 * (1 + d.unc))
    # the vector path's top-label decomposition of the same rows
    v = trueprob.decompose(y, logits=z, score=score, reduction="top_label")
    assert v.score == pytest.approx(d.score, rel=1e-9)
    assert v.mcb == pytest.approx(d.mcb, rel=1e-9)


def test_decompose_binned_and_refusals(over_confident):
    _, y, c, yhat = over_confident
    a = (y == yhat).astype(float)
    d = trueprob.decompose(y, confidences=c, predictions=yhat, score="brier",
                           estimator="binned", n_bins=10)
    idx = np.clip(np.ceil(10 * c) - 1, 0, 9).astype(int)
    means = np.bincount(idx, a, 10) / np.maximum(np.bincount(idx, minlength=10), 1)
    assert d.mcb == pytest.approx(by_hand(c, a)[1] - by_hand(means[idx], a)[1], rel=1e-9)
    for kw in ({"estimator": "temperature"}, {"estimator": "dirichlet"},
               {"reduction": "classwise"}):
        with pytest.raises(ValueError, match="allow only the top-label decomposition"):
            trueprob.decompose(y, confidences=c, predictions=yhat, **kw)
