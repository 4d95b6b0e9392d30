"""Bootstrap intervals from blocked sufficient statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

import trueprob
from trueprob import EvaluationStats


def test_report_equals_evaluate(rng, synthetic_logits):
    z, y = synthetic_logits(rng, 3000, 5, scale=2.0)
    res = trueprob.bootstrap(y, logits=z, n_replicates=50, random_state=1)
    assert res.report.to_dict() == trueprob.evaluate(y, logits=z).to_dict()
    assert res.n_blocks == 256
    assert set(res.intervals) == {"accuracy", "nll", "brier", "ece", "mce", "rmsce",
                                  "ece_debiased", "classwise_ece", "class_conditional_ece", "ks"}


@pytest.mark.parametrize("resampling", ["multinomial", "poisson"])
def test_small_n_is_the_exact_row_bootstrap(rng, synthetic_logits, resampling):
    # N <= max_blocks: every row is its own block, so replicate b must equal evaluate() with
    # sample_weight = the multiplicity of each row in that replicate (drawn with the same seed)
    z, y = synthetic_logits(rng, 120, 3, scale=2.0)
    res = trueprob.bootstrap(y, logits=z, n_replicates=20, random_state=7,
                             resampling=resampling)
    assert res.n_blocks == 120
    gen = np.random.default_rng(7)
    weights = (gen.multinomial(120, np.full(120, 1 / 120), size=20)
               if resampling == "multinomial" else gen.poisson(1.0, size=(20, 120)))
    for b in range(20):
        ref = trueprob.evaluate(y, logits=z, sample_weight=weights[b].astype(float))
        for name in ("accuracy", "nll", "brier", "ece", "mce", "rmsce", "ece_debiased",
                     "classwise_ece", "class_conditional_ece"):
            assert res.replicates[name][b] == pytest.approx(getattr(ref, name), rel=1e-10,
                                                            abs=1e-12), name


def test_blocked_state_sums_to_the_plain_state(rng, synthetic_logits):
    z, y = synthetic_logits(rng, 500, 4)
    inputs = trueprob._validation.prepare(y, logits=z)
    blocked = EvaluationStats(4, n_blocks=7)
    for chunk in inputs.chunks(rows=64):
        block = rng.integers(0, 7, size=chunk.n_rows)
        blocked.update_chunk(np, chunk, block)
    plain = EvaluationStats(4, n_blocks=1).update_inputs(inputs).finalize().to_dict()
    got = blocked.finalize().to_dict()
    for key in ("accuracy", "nll", "brier", "ece", "mce", "classwise_ece", "rmsce"):
        assert got[key] == pytest.approx(plain[key], rel=1e-12), key
    with pytest.raises(ValueError, match=r"block= .* is needed exactly when n_blocks > 1"):
        blocked.update_chunk(np, next(inputs.chunks()))


def test_accuracy_interval_matches_binomial_standard_error(rng, synthetic_logits):
    # the spread of the accuracy replicates is the binomial standard error sqrt(p(1-p)/N)
    z, y = synthetic_logits(rng, 20_000, 4)
    res = trueprob.bootstrap(y, logits=z, n_replicates=1000, random_state=3)
    p = res.report.accuracy
    se = math.sqrt(p * (1 - p) / 20_000)
    assert np.std(res.replicates["accuracy"]) == pytest.approx(se, rel=0.15)
    iv = res.intervals["accuracy"]
    assert iv.low < p < iv.high
    assert (iv.high - iv.low) == pytest.approx(2 * 1.96 * se, rel=0.2)


def test_bca_agrees_with_scipy_on_the_accuracy(rng, synthetic_logits):
    # scipy.stats.bootstrap (BCa, row resampling) on the per-row correctness
    z, y = synthetic_logits(rng, 150, 3, scale=2.0)
    correct = (z.argmax(1) == y).astype(float)
    ref = stats.bootstrap((correct,), np.mean, n_resamples=4000, method="BCa",
                          random_state=0).confidence_interval
    res = trueprob.bootstrap(y, logits=z, n_replicates=4000, method="bca", random_state=0)
    iv = res.intervals["accuracy"]
    assert iv.method == "bca"
    assert iv.low == pytest.approx(ref.low, abs=0.02)
    assert iv.high == pytest.approx(ref.high, abs=0.02)


def test_intervals_widen_with_level_and_are_seeded(rng, synthetic_logits):
    z, y = synthetic_logits(rng, 2000, 3)
    a = trueprob.bootstrap(y, logits=z, n_replicates=300, level=0.9, random_state=5)
    b = trueprob.bootstrap(y, logits=z, n_replicates=300, level=0.99, random_state=5)
    c = trueprob.bootstrap(y, logits=z, n_replicates=300, level=0.9, random_state=5)
    assert b.intervals["ece"].low <= a.intervals["ece"].low
    assert b.intervals["ece"].high >= a.intervals["ece"].high
    assert a.intervals == c.intervals
    assert a.to_dict()["nll"]["level"] == 0.9


def test_top_label_mode_has_intervals_for_top_label_fields():
    rng = np.random.default_rng(0)
    c = rng.uniform(0.3, 1.0, size=400)
    pred = rng.integers(0, 3, size=400)
    y = np.where(rng.random(400) < c, pred, (pred + 1) % 3)
    res = trueprob.bootstrap(y, confidences=c, predictions=pred, n_replicates=100,
                             random_state=0)
    assert "nll" not in res.intervals
    assert {"accuracy", "ece", "ks"} <= set(res.intervals)


def test_bad_options():
    y, z = np.array([0, 1]), np.zeros((2, 2))
    with pytest.raises(ValueError, match="n_replicates must be an integer >= 2; got 1"):
        trueprob.bootstrap(y, logits=z, n_replicates=1)
    with pytest.raises(ValueError, match=r"level must be in \(0, 1\), e.g. 0.95; got 95"):
        trueprob.bootstrap(y, logits=z, level=95)
    with pytest.raises(ValueError, match=r"method must be one of \('bias-corrected', "
                                         r"'percentile', 'bca'\); got 'bc'"):
        trueprob.bootstrap(y, logits=z, method="bc")
    with pytest.raises(ValueError, match="resampling must be 'multinomial' or 'poisson'"):
        trueprob.bootstrap(y, logits=z, resampling="rows")


def test_one_row_is_refused_by_name():
    with pytest.raises(ValueError, match=r"the bootstrap resamples rows and needs at least 2; "
                                         r"got 1 row"):
        trueprob.bootstrap(np.array([0]), logits=np.array([[1.0, 0.0]]), n_replicates=10)


def test_extreme_weights_give_the_unweighted_intervals():
    # only weight ratios matter: constant 1e300 weights are rescaled, not overflowed
    rng = np.random.default_rng(3)
    z, y = rng.normal(size=(300, 3)), rng.integers(0, 3, 300)
    plain = trueprob.bootstrap(y, logits=z, n_replicates=50, random_state=1)
    heavy = trueprob.bootstrap(y, logits=z, sample_weight=np.full(300, 1e300), n_replicates=50,
                               random_state=1)
    for name in ("ece", "nll", "accuracy"):
        assert heavy.intervals[name].low == pytest.approx(plain.intervals[name].low, rel=1e-9)
        assert heavy.intervals[name].high == pytest.approx(plain.intervals[name].high, rel=1e-9)
