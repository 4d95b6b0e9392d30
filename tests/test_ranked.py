"""The reliability of the k-th ranked probability (trueprob.stats.ranked, trueprob.metrics.ranked).

Checked against: a case computed by hand; the same rows in chunks (merge = one shot); integer
weights = repeated rows; and, for the z-test, the spread of z over many label draws from a
calibrated model (its variance is exact under calibration, so z has SD about 1).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from trueprob.metrics.ranked import ranked_reliability, ranked_reliability_of
from trueprob.stats.ranked import RankedStats


def _draw(rng: np.random.Generator, q: np.ndarray) -> np.ndarray:
    return (q.cumsum(1) < rng.random((q.shape[0], 1))).sum(1)


def test_hand_computed_case():
    # rows: q sorted (0.6, 0.3, 0.1) with y = class of rank 2; (0.5, 0.3, 0.2) with y = top
    q = np.array([[0.6, 0.3, 0.1], [0.3, 0.5, 0.2]])
    y = np.array([1, 1])
    r = ranked_reliability(y, probs=q, n_bins=10)
    second, third, pooled = r.groups
    # rank 2: scores 0.3 (y hit) and 0.3 (miss) in bin (0.2, 0.3]: conf 0.3, freq 0.5
    assert second.mean_probability == pytest.approx(0.3)
    assert second.frequency == pytest.approx(0.5)
    assert second.gap == pytest.approx(0.2) and second.ece == pytest.approx(0.2)
    # rank 3: 0.1 (miss) in (0, 0.1], 0.2 (miss) in (0.1, 0.2]: ECE = (0.1 + 0.2) / 2
    assert third.ece == pytest.approx(0.15) and third.frequency == 0.0
    # pooled pairs: (0.3, 1), (0.1, 0), (0.3, 0), (0.2, 0): bins 0.1 | 0.2 | 0.3 (two pairs)
    assert pooled.pairs == 4 and pooled.weight == pytest.approx(4.0)
    assert pooled.ece == pytest.approx((0.1 + 0.2 + 2 * abs(0.3 - 0.5)) / 4)
    # z of rank 2: (1 - 0.6) / sqrt(0.3 * 0.7 * 2)
    assert second.z == pytest.approx(0.4 / math.sqrt(0.42))
    assert second.p_value == pytest.approx(math.erfc(abs(second.z) / math.sqrt(2)))
    # pooled variance: sum of q_(1)(1 - q_(1)) = 0.24 + 0.25; outcome sum 1, score sum 0.9
    assert pooled.z == pytest.approx((1 - 0.9) / math.sqrt(0.49))


def test_chunks_merge_to_the_one_shot_state_and_weights_repeat_rows(rng):
    z = rng.normal(size=(900, 5)) * 2
    q = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    y = _draw(rng, q)
    whole = RankedStats(5).update(y, logits=z)
    parts = [RankedStats(5).update(y[i:i + 300], logits=z[i:i + 300]) for i in (0, 300, 600)]
    merged = parts[0].merge(parts[1]).merge(parts[2])
    for name, arr in whole.arrays().items():
        np.testing.assert_allclose(merged.arrays()[name], arr, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(merged.sum_var, whole.sum_var, rtol=1e-12)
    w = rng.integers(0, 3, 900)
    weighted = ranked_reliability(y, logits=z, sample_weight=w.astype(float))
    repeated = ranked_reliability(np.repeat(y, w), logits=np.repeat(z, w, axis=0))
    for a, b in zip(weighted.groups, repeated.groups, strict=True):
        assert a.ece == pytest.approx(b.ece, abs=1e-12)
        assert a.gap == pytest.approx(b.gap, abs=1e-12)
        assert a.weight == pytest.approx(b.weight)


def test_z_has_unit_spread_when_calibrated_and_finds_over_confidence(rng):
    z = rng.normal(size=(400, 4)) * 1.5
    q = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    zs = np.array([[g.z for g in ranked_reliability(_draw(rng, q), probs=q).groups]
                   for _ in range(300)])
    assert np.all(np.abs(zs.mean(0)) < 0.2)
    assert np.all(np.abs(zs.std(0) - 1) < 0.15)
    over = ranked_reliability(_draw(rng, q), logits=4 * z)
    assert over.group("rank 2").gap > 0.05 and over.group("rank 2").p_value < 1e-6


def test_soft_targets_have_no_test_and_bad_inputs_are_named(rng):
    z = rng.normal(size=(50, 3))
    q = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    soft = ranked_reliability(targets=q, logits=z)
    assert all(math.isnan(g.p_value) for g in soft.groups)
    assert soft.group("rank 2").gap == pytest.approx(0.0, abs=1e-12)  # t = q: no gap
    with pytest.raises(ValueError, match=r"n_classes must be an integer >= 2; got 1"):
        RankedStats(1)
    with pytest.raises(ValueError, match=r"the inputs have K=3 classes; this state was made "
                                         r"for K=4"):
        RankedStats(4).update_inputs(_inputs(z))
    with pytest.raises(KeyError, match="no group 'rank 9'"):
        soft.group("rank 9")
    two = ranked_reliability(np.array([0, 1]), probs=np.array([[0.7, 0.3], [0.4, 0.6]]))
    assert [g.name for g in two.groups] == ["rank 2", "below the top"]
    assert ranked_reliability_of(RankedStats(3)).groups == ()


def _inputs(z: np.ndarray):
    from trueprob._validation import prepare

    return prepare(np.zeros(len(z), dtype=int), logits=z)
