"""Every metric on small inputs whose values were computed by hand (the arithmetic is in the
comments), including SPEC.md's edge cases: confidence exactly 0 and 1, values exactly on an
edge k/B, empty bins, ties in the argmax, a class absent from the labels."""

from __future__ import annotations

import math

import numpy as np
import pytest

import trueprob
from trueprob import metrics

# K = 3, B = 5 equal-width right-closed bins: (0, .2], (.2, .4], (.4, .6], (.6, .8], (.8, 1]
P = np.array([
    [0.6, 0.3, 0.1],    # y=0: c=.6 (bin 2), pred 0, correct
    [0.2, 0.8, 0.0],    # y=0: c=.8 (bin 3: ceil(4.0)-1 = 3, the edge .8 closes bin 3), wrong
    [0.5, 0.5, 0.0],    # y=1: tie -> pred 0 (lowest index), c=.5 (bin 2), wrong
    [0.0, 0.05, 0.95],  # y=1: c=.95 (bin 4), pred 2, wrong
])
Y = np.array([0, 0, 1, 1])  # class 2 never occurs as a label


def test_scores_by_hand():
    r = trueprob.evaluate(Y, probs=P, n_bins=5)
    assert r.accuracy == pytest.approx(0.25)
    assert r.nll == pytest.approx(-(math.log(.6) + math.log(.2) + math.log(.5)
                                    + math.log(.05)) / 4, rel=1e-14)
    # row Brier: .16+.09+.01 = .26; .64+.64 = 1.28; .25+.25 = .5; .9025+.9025 = 1.805
    assert r.brier == pytest.approx(3.845 / 4, rel=1e-14)
    bits = trueprob.evaluate(Y, probs=P, n_bins=5, unit="bits")
    assert bits.nll == pytest.approx(r.nll / math.log(2), rel=1e-14)


def test_top_label_ece_family_by_hand():
    r = trueprob.evaluate(Y, probs=P, n_bins=5)
    # bin 2: rows 1, 3 -> conf .55, acc .5; bin 3: conf .8, acc 0; bin 4: conf .95, acc 0
    assert r.ece == pytest.approx(2 / 4 * 0.05 + 1 / 4 * 0.8 + 1 / 4 * 0.95, rel=1e-12)
    assert r.mce == pytest.approx(0.95)
    assert r.rmsce == pytest.approx(math.sqrt(0.5 * 0.0025 + 0.25 * 0.64 + 0.25 * 0.9025))
    # debiased: bin 2 (n=2): .05^2 - .5*.5/1 = -.2475; bins 3, 4 have n=1: no correction
    debiased_sq = 0.5 * -0.2475 + 0.25 * 0.64 + 0.25 * 0.9025
    assert r.ece_debiased == pytest.approx(math.sqrt(debiased_sq), rel=1e-12)
    weights = [b.weight for b in r.bins]
    assert weights == [0.0, 0.0, 2.0, 1.0, 1.0]  # empty bins reported with weight 0
    assert math.isnan(r.bins[0].confidence)
    assert r.bins[2].gap == pytest.approx(0.05)
    # the same numbers from the single-metric functions
    assert metrics.top_label_ece(Y, probs=P, n_bins=5) == pytest.approx(r.ece, rel=1e-15)
    assert metrics.max_calibration_error(Y, probs=P, n_bins=5) == r.mce
    assert metrics.rms_calibration_error(Y, probs=P, n_bins=5) == pytest.approx(r.rmsce)
    assert metrics.debiased_l2_calibration_error(Y, probs=P, n_bins=5) == \
        pytest.approx(r.ece_debiased)


def test_classwise_by_hand_with_absent_class():
    # class 0: q = .6 .2 .5 0 (bins 2 0 2 0), t = 1 1 0 0:
    #   bin 0: q mean .1, t mean .5 -> .4 * 2/4; bin 2: .55 vs .5 -> .05 * 2/4  => .225
    # class 1: q = .3 .8 .5 .05 (bins 1 3 2 0), t = 0 0 1 1: (.3 + .8 + .5 + .95)/4 = .6375
    # class 2 (absent from labels): q = .1 0 0 .95 (bins 0 0 0 4), t = 0:
    #   bin 0: (.1/3) * 3/4 = .025; bin 4: .95/4 = .2375  => .2625
    per_class = [0.225, 0.6375, 0.2625]
    r = trueprob.evaluate(Y, probs=P, n_bins=5)
    assert r.classwise_ece_per_class == pytest.approx(per_class, rel=1e-12)
    assert r.classwise_ece == pytest.approx(sum(per_class) / 3, rel=1e-12)
    assert metrics.classwise_ece(Y, probs=P, n_bins=5, reduce="sum") == \
        pytest.approx(sum(per_class), rel=1e-12)


def test_class_conditional_by_hand():
    # predicted 0: rows 1, 3 (bin 2, conf .55, acc .5): .05 * 2/4; predicted 1: row 2 .8 * 1/4;
    # predicted 2: row 4 .95 * 1/4
    r = trueprob.evaluate(Y, probs=P, n_bins=5)
    assert r.class_conditional_ece == pytest.approx(0.025 + 0.2 + 0.2375, rel=1e-12)
    # a case where it differs from the top-label ECE: two classes in the same bin
    c = np.array([0.9, 0.9])
    y = np.array([0, 0])
    pred = np.array([0, 1])
    # top-label: one bin, conf .9, acc .5 -> .4; class-conditional: .1/2 + .9/2 = .5
    assert metrics.top_label_ece(y, confidences=c, predictions=pred) == pytest.approx(0.4)
    assert metrics.class_conditional_ece(y, confidences=c, predictions=pred) == \
        pytest.approx(0.5)


def test_ks_by_hand():
    # sorted by c: .5 (a 0) +.5; .6 (a 1) -.4; .8 (a 0) +.8; .95 (a 0) +.95 -> cum max 1.85
    assert metrics.ks_calibration_error(Y, probs=P) == pytest.approx(1.85 / 4)
    assert trueprob.evaluate(Y, probs=P).ks == pytest.approx(1.85 / 4)
    # ties enter together: two rows at c=.7, one right and one wrong: S(.7) = (.7 - 1 + .7)/2
    c = np.array([0.7, 0.7])
    y = np.array([1, 0])
    pred = np.array([1, 1])
    assert metrics.ks_calibration_error(y, confidences=c, predictions=pred) == \
        pytest.approx(0.2)
    assert metrics.ks_calibration_error(y[::-1], confidences=c, predictions=pred) == \
        pytest.approx(0.2)


@pytest.mark.parametrize(("closed", "expected_bins"), [
    # c = 0, .25, .5, 1 with B = 4: right-closed (j/4, (j+1)/4] puts .25 in bin 0, 0 in bin 0,
    # 1 in bin 3; left-closed [j/4, (j+1)/4) puts .25 in bin 1 and 1.0 in the last bin.
    ("right", [2, 1, 0, 1]),
    ("left", [1, 1, 1, 1]),
])
def test_edges_zero_and_one(closed, expected_bins):
    c = np.array([0.0, 0.25, 0.5, 1.0])
    y = np.array([0, 0, 0, 0])
    pred = np.array([0, 0, 1, 0])
    t = metrics.reliability_table(y, confidences=c, predictions=pred, n_bins=4, closed=closed)
    assert [b.count for b in t.bins] == expected_bins


def test_edge_arithmetic_is_float64_ceil():
    # SPEC: index = clip(ceil(B*c) - 1, 0, B-1) in float64. 15 * 0.2 is exactly 3.0 in
    # float64, so 0.2 closes bin 2; the float32 number nearest 0.2 is 0.20000000298..., which
    # is above the edge: bin 3. With B = 10, 0.1 + 0.2 = 0.30000000000000004 is above .3.
    c = np.array([0.2, float(np.float32(0.2))])
    t = metrics.reliability_table(np.zeros(2, int), confidences=c,
                                  predictions=np.zeros(2, int))
    assert [j for j, b in enumerate(t.bins) if b.count] == [2, 3]
    c = np.array([0.3, 0.1 + 0.2])
    t = metrics.reliability_table(np.zeros(2, int), confidences=c,
                                  predictions=np.zeros(2, int), n_bins=10)
    assert [j for j, b in enumerate(t.bins) if b.count] == [2, 3]


def test_confidence_one_from_float32_softmax_goes_to_last_bin():
    z = np.array([[30.0, 0.0], [0.0, 30.0]], dtype=np.float32)  # softmax = 1.0 in float32
    t = metrics.reliability_table(np.array([0, 0]), logits=z)
    assert t.bins[-1].count == 2
    assert t.bins[-1].confidence == 1.0
    assert t.bins[-1].accuracy == 0.5


def test_equal_mass_edges_by_hand():
    c = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    y = np.zeros(6, int)
    t = metrics.reliability_table(y, confidences=c, predictions=y, n_bins=3, binning="mass")
    # weighted quantiles at 1/3, 2/3: smallest c with cumulative weight >= 2 -> .2, >= 4 -> .4
    assert [(b.lower, b.upper, b.count) for b in t.bins] == [
        (0.0, 0.2, 2), (0.2, 0.4, 2), (0.4, 1.0, 2)]
    # ties are never split: four rows at .3 share one bin, the next bin is empty
    c = np.array([0.3, 0.3, 0.3, 0.3, 0.5, 0.6])
    t = metrics.reliability_table(y, confidences=c, predictions=y, n_bins=3, binning="mass")
    assert [b.count for b in t.bins] == [4, 0, 2]
    # weights move the quantiles: weight 3 on .1 puts the first edge at .1
    t = metrics.reliability_table(np.zeros(3, int), confidences=np.array([0.1, 0.5, 0.9]),
                                  predictions=np.zeros(3, int), n_bins=2, binning="mass",
                                  sample_weight=np.array([3.0, 1.0, 1.0]))
    assert [(b.upper, b.count) for b in t.bins] == [(0.1, 1), (1.0, 2)]


def test_soft_targets_split_by_hand():
    q = np.array([[0.25, 0.5, 0.25]])
    t = np.array([[0.5, 0.5, 0.0]])
    r = trueprob.evaluate(probs=q, targets=t)
    ce = -(0.5 * math.log(0.25) + 0.5 * math.log(0.5))
    assert r.nll == pytest.approx(ce, rel=1e-14)
    assert r.entropy == pytest.approx(math.log(2), rel=1e-14)
    assert r.kl == pytest.approx(0.5 * math.log(2), rel=1e-14)
    assert r.accuracy == 0.5  # pred = class 1; an annotator agrees with probability .5
    # Brier against p: (.25 - .5)^2 + 0 + .25^2
    assert r.brier == pytest.approx(0.125)
    # counts: the multinomial NLL per annotation, same numbers as the normalised targets
    rc = trueprob.evaluate(probs=q, counts=np.array([[2, 2, 0]]))
    assert rc.to_dict() | {"targets": "targets"} == r.to_dict()
    # from logits: log q exact, same split
    rz = trueprob.evaluate(logits=np.log(q), targets=t)
    assert rz.nll == pytest.approx(ce, rel=1e-14)
    assert rz.kl == pytest.approx(0.5 * math.log(2), rel=1e-12)
    split = metrics.cross_entropy_split(probs=q, targets=t, unit="bits")
    assert split.cross_entropy == pytest.approx(split.entropy + split.kl, rel=1e-14)
    assert split.entropy == pytest.approx(1.0)


def test_binary_inputs_by_hand():
    p = np.array([0.8, 0.3])
    y = np.array([1, 0])
    r = trueprob.evaluate(y, probs=p)
    assert r.n_classes == 2
    assert r.nll == pytest.approx(-(math.log(0.8) + math.log(0.7)) / 2)
    # two-column Brier: 2 * .2^2 and 2 * .3^2 -> mean .13; the binary form is half of it
    assert r.brier == pytest.approx(0.13)
    assert metrics.binary_brier_score(y, probs=p) == pytest.approx(0.065)
    # a logit z gives softmax((0, z)) = (1 - sigmoid(z), sigmoid(z))
    z = np.log(p / (1 - p))
    rz = trueprob.evaluate(y, logits=z)
    assert rz.nll == pytest.approx(r.nll, rel=1e-12)
    assert rz.brier == pytest.approx(r.brier, rel=1e-12)
    with pytest.raises(ValueError, match="binary_brier_score needs binary inputs"):
        metrics.binary_brier_score(Y, probs=P)


def test_log_loss_infinite_from_probabilities_warns():
    q = np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]])
    y = np.array([1, 0, 0])
    with pytest.warns(trueprob.InfiniteLossWarning, match="2 row"):
        r = trueprob.evaluate(y, probs=q)
    assert r.nll == math.inf
    assert r.n_infinite_nll == 2
    assert r.to_dict()["nll"] == "inf"
    # a zero-weight row with probability 0 on its label does not count
    r = trueprob.evaluate(y[1:2], probs=q[1:2])
    assert math.isfinite(r.nll)
    with pytest.warns(trueprob.InfiniteLossWarning, match="1 row"):
        trueprob.evaluate(y, probs=q, sample_weight=np.array([0.0, 1.0, 1.0]))
    # sklearn's convention: clip to [eps, 1 - eps]
    eps = np.finfo(np.float64).eps
    expected = -(2 * math.log(eps) + math.log(0.5)) / 3
    assert metrics.log_loss(y, probs=q, clip=eps) == pytest.approx(expected, rel=1e-12)


def test_logits_nll_has_no_clipping():
    # a logit gap of 800 gives probability ~e^-800 (0 in float64) but a finite loss of 800
    z = np.array([[800.0, 0.0]])
    r = trueprob.evaluate(np.array([1]), logits=z)
    assert r.nll == pytest.approx(800.0, rel=1e-15)


def test_top_label_mode_reports_what_it_cannot_compute():
    c = np.array([0.9, 0.6])
    pred = np.array([1, 0])
    r = trueprob.evaluate(np.array([1, 1]), confidences=c, predictions=pred)
    assert r.nll is None and r.brier is None and r.classwise_ece is None
    assert "full probability vector" in r.unavailable["nll"]
    assert "full probability vector" in r.unavailable["classwise_ece"]
    assert r.accuracy == 0.5
    # the same top-label numbers as from the full vectors with those confidences
    q = np.array([[0.1, 0.9], [0.6, 0.4]])
    full = trueprob.evaluate(np.array([1, 1]), probs=q)
    for name in ("accuracy", "ece", "mce", "rmsce", "ece_debiased", "ks",
                 "class_conditional_ece"):
        assert getattr(r, name) == pytest.approx(getattr(full, name), rel=1e-15), name


def test_classwise_bins_stay_equal_width_under_mass_binning():
    r_width = trueprob.evaluate(Y, probs=P, n_bins=5)
    r_mass = trueprob.evaluate(Y, probs=P, n_bins=5, binning="mass")
    assert r_mass.classwise_ece == r_width.classwise_ece
    assert r_mass.settings.binning == "mass"
