"""Consistency resampling test (Bröcker & Smith 2007): exact small cases, size and power."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import trueprob
from trueprob.inference import consistency_test


def test_two_row_case_has_the_exact_null_distribution():
    # two rows with confidence .5 in one bin: under H0 the number of correct predictions is
    # Binomial(2, .5), so T* = |k/2 - .5| is .5 with probability 1/2 and 0 with probability 1/2.
    # Observed: both wrong -> T = .5, p = P(T* >= .5) = 1/2.
    probs = np.array([[0.5, 0.5], [0.5, 0.5]])
    y = np.array([1, 1])
    res = consistency_test(y, probs=probs, n_resamples=4000, random_state=0)
    assert res.value == pytest.approx(0.5)
    assert res.p_value == pytest.approx(0.5, abs=0.03)
    assert res.null_mean == pytest.approx(0.25, abs=0.02)


def test_classwise_small_case_by_hand():
    # one row, q = (.8, .2), y = 1. Classwise ECE with one row: class 0 |t0 - .8|, class 1
    # |t1 - .2|; y* = 0 (prob .8) gives (.2 + .2)/2 = .2, y* = 1 gives (.8 + .8)/2 = .8.
    # Observed (y = 1): .8 -> p = P(T* >= .8) = .2
    res = consistency_test(np.array([1]), probs=np.array([[0.8, 0.2]]),
                           statistic="classwise_ece", n_resamples=4000, random_state=1)
    assert res.value == pytest.approx(0.8)
    assert res.p_value == pytest.approx(0.2, abs=0.03)


@pytest.mark.slow
def test_p_values_are_uniform_under_h0():
    # labels drawn from the predicted distributions: the p-values must be uniform
    p_values = []
    for seed in range(150):
        rng = np.random.default_rng(seed)
        z = rng.normal(size=(400, 3)) * 2
        q = np.exp(z) / np.exp(z).sum(1, keepdims=True)
        y = (q.cumsum(1) < rng.random((400, 1))).sum(1)
        p_values.append(consistency_test(y, probs=q, n_resamples=199,
                                         random_state=seed).p_value)
    assert stats.kstest(p_values, "uniform").pvalue > 0.01


def test_rejects_scaled_logits(rng, synthetic_logits):
    z, y = synthetic_logits(rng, 3000, 5)
    assert consistency_test(y, logits=z, random_state=0).p_value > 0.01
    over = consistency_test(y, logits=2.5 * z, n_resamples=500, random_state=0)
    assert over.p_value == pytest.approx(1 / 501)
    cw = consistency_test(y, logits=2.5 * z, statistic="classwise_ece", n_resamples=200,
                          random_state=0)
    assert cw.p_value == pytest.approx(1 / 201)


@pytest.mark.data
@pytest.mark.parametrize("model", ["resnet50", "resnet110", "wrn26-10", "densenet121"])
def test_rejects_uncalibrated_mukhoti_cifar100(shared_data, model):
    d = np.load(shared_data / "mukhoti2020-cifar-logits" / f"cifar100_{model}_brier_test.npz")
    res = consistency_test(d["labels"], logits=d["logits"], n_resamples=200, random_state=0)
    assert res.p_value == pytest.approx(1 / 201)
    assert res.value == pytest.approx(trueprob.evaluate(d["labels"], logits=d["logits"]).ece)


def test_bad_options():
    with pytest.raises(ValueError, match="statistic must be one of"):
        consistency_test(np.array([0]), probs=np.array([[0.5, 0.5]]), statistic="mce")
    with pytest.raises(ValueError, match="n_resamples must be a positive integer"):
        consistency_test(np.array([0]), probs=np.array([[0.5, 0.5]]), n_resamples=0)


@pytest.mark.parametrize("weighted", [False, True])
def test_null_bin_sums_have_the_poisson_binomial_moments(weighted):
    """Under H0 each bin's resampled outcome sum is sum_i w_i Bernoulli(c_i): mean sum w c,
    variance sum w^2 c (1 - c) (checked on 4000 resamples, in two batches)."""
    from trueprob.core.binning import Binning
    from trueprob.inference import ConsistencyStats

    rng = np.random.default_rng(11)
    z = rng.normal(size=(400, 3)) * 2
    y = rng.integers(0, 3, size=400)
    w = rng.uniform(0.2, 3.0, size=400) if weighted else np.ones(400)
    state = ConsistencyStats("ece", 3, n_resamples=4000, random_state=0)
    state.update(y[:150], logits=z[:150], sample_weight=w[:150] if weighted else None)
    state.update(y[150:], logits=z[150:], sample_weight=w[150:] if weighted else None)
    q = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    c = q.max(1)
    cell = Binning(15, "right").index(np, c)
    mean = np.bincount(cell, w * c, 15)
    var = np.bincount(cell, w * w * c * (1 - c), 15)
    null = state.null
    ok = var > 0
    se = np.sqrt(var[ok] / 4000)
    assert np.all(np.abs(null.mean(0)[ok] - mean[ok]) < 4.5 * se)
    assert null.var(0)[ok] == pytest.approx(var[ok], rel=0.15)
    assert np.all(null[:, ~ok] == 0)


def test_top_label_test_runs_on_confidences_alone_and_equals_the_full_vector_one():
    # under H0 the prediction is right with probability c_i, so the top-label test needs only
    # (c_i, prediction): from confidences it gives the very p-value of the full vectors
    rng = np.random.default_rng(4)
    z = rng.normal(size=(1500, 5)) * 2.5
    q = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    y = (q.cumsum(axis=1) < rng.random((1500, 1))).sum(axis=1)
    full = trueprob.consistency_test(y, logits=1.5 * z, n_resamples=300, random_state=2)
    qq = np.exp(1.5 * z) / np.exp(1.5 * z).sum(axis=1, keepdims=True)
    top = trueprob.consistency_test(y, confidences=qq.max(axis=1), predictions=qq.argmax(axis=1),
                                    n_classes=5, n_resamples=300, random_state=2)
    assert top.p_value == pytest.approx(full.p_value, abs=1e-12)
    assert top.value == pytest.approx(full.value, rel=1e-12)
    assert top.null_mean == pytest.approx(full.null_mean, rel=1e-12)
    with pytest.raises(ValueError, match="statistic='classwise_ece' needs the whole vectors"):
        trueprob.consistency_test(y, confidences=qq.max(axis=1), predictions=qq.argmax(axis=1),
                                  n_classes=5, statistic="classwise_ece")
