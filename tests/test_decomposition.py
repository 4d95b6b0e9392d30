"""Score decompositions S = MCB - DSC + UNC."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import trueprob
from trueprob import decompose

REFERENCE = json.loads((Path(__file__).parent / "reference" /
                        "decomposition_model_diagnostics.json").read_text())


def _reference_case(name: str, data: Path | None) -> tuple[np.ndarray, np.ndarray]:
    """The (p, y) pairs of tools/make_decomposition_reference.py, rebuilt by the same recipe."""
    if name == "synthetic_beta_ties":
        rng = np.random.default_rng(12345)
        p = np.round(rng.beta(2, 2, size=2000), 2)
        y = (rng.random(2000) < p**1.5).astype(float)
        return p, y
    if data is None:
        pytest.skip("needs ../shared/data")
    if name == "cifar100_resnet110_brier_top_label":
        d = np.load(data / "mukhoti2020-cifar-logits" / "cifar100_resnet110_brier_test.npz")
        z = d["logits"].astype(np.float64)
        q = np.exp(z - z.max(1, keepdims=True))
        q /= q.sum(1, keepdims=True)
        return q.max(1), (q.argmax(1) == d["labels"]) * 1.0
    h = np.load(data / "hollance-confidences" / "markus93__probs_resnet110_c100_logits.npz")
    c = h["confidence"].astype(np.float64)
    a = (h["preds"] == h["labels"]) * 1.0
    keep = ~((c == 1.0) & (a == 0))
    return c[keep], a[keep]


@pytest.mark.parametrize("name", sorted(REFERENCE["cases"]))
@pytest.mark.parametrize("score", ["log", "brier"])
def test_agrees_with_model_diagnostics(name, score, optional_data):
    # reference: model-diagnostics' CORP decompose (version and command in the JSON file)
    p, y = _reference_case(name, optional_data)
    d = decompose(y.astype(np.int64), probs=p, score=score, unit="nats")
    ref = REFERENCE["cases"][name][score]
    assert d.target == "binary"
    assert d.score == pytest.approx(ref["score"], rel=1e-8, abs=1e-10)
    assert d.mcb == pytest.approx(ref["miscalibration"], rel=1e-8, abs=1e-10)
    assert d.dsc == pytest.approx(ref["discrimination"], rel=1e-8, abs=1e-10)
    assert d.unc == pytest.approx(ref["uncertainty"], rel=1e-8, abs=1e-10)


def test_brier_binned_murphy_by_hand():
    # 2 bins of B=2: (0, .5] holds p = .2, .4 (y 0, 1), (.5, 1] holds p = .6, .8, .8 (y 1 1 0)
    p = np.array([0.2, 0.4, 0.6, 0.8, 0.8])
    y = np.array([0, 1, 1, 1, 0])
    d = decompose(y, probs=p, score="brier", estimator="binned", n_bins=2)
    # S(q) = (.04 + .36 + .16 + .04 + .64) / 5; r = (.5, .5, 2/3, 2/3, 2/3)
    s_q = (0.04 + 0.36 + 0.16 + 0.04 + 0.64) / 5
    s_r = (0.25 + 0.25 + (1 / 3) ** 2 * 2 + (2 / 3) ** 2) / 5
    unc = 0.6 * 0.4  # prior .6: (.36*2 + .16*3)/5 = .24
    assert d.score == pytest.approx(s_q)
    assert d.recalibrated == pytest.approx(s_r)
    assert d.unc == pytest.approx(unc)
    assert d.mcb == pytest.approx(s_q - s_r)
    # Murphy / Stephenson et al. 2008: MCB = mean (q - r)^2 - 2 * (within-bin covariance of q
    # and y); bin 1: (-.1)(-.5) + (.1)(.5) = .1; bin 2: q mean 2.2/3, y mean 2/3:
    # (-.4/3)(1/3) + (.2/3)(1/3) + (.2/3)(-2/3) = -.2/3; DSC = mean (r - prior)^2
    r = np.array([0.5, 0.5, 2 / 3, 2 / 3, 2 / 3])
    within_cov = 0.1 - 0.2 / 3
    assert d.mcb == pytest.approx(np.mean((p - r) ** 2) - 2 * within_cov / 5)
    assert d.dsc == pytest.approx(np.mean((r - 0.6) ** 2))


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 200), score=st.sampled_from(
    ["log", "brier"]), weighted=st.booleans())
def test_isotonic_identity_and_signs(seed, n, score, weighted):
    rng = np.random.default_rng(seed)
    p = np.round(rng.random(n), int(rng.integers(1, 4)))  # ties
    p = np.clip(p, 0.01, 0.99)
    y = (rng.random(n) < p).astype(np.int64)
    w = rng.random(n) + 0.1 if weighted else None
    d = decompose(y, probs=p, score=score, sample_weight=w, unit="nats")
    assert d.score == pytest.approx(d.mcb - d.dsc + d.unc, rel=1e-12, abs=1e-14)
    assert d.mcb >= -1e-12
    assert d.dsc >= -1e-12
    b = decompose(y, probs=p, score="brier", estimator="binned", sample_weight=w)
    assert b.dsc >= -1e-12  # binned MCB can be negative (within-bin covariance), DSC cannot
    assert b.score == pytest.approx(b.mcb - b.dsc + b.unc, rel=1e-12, abs=1e-14)


def test_log_uncertainty_is_label_entropy_and_dsc_is_mutual_information(rng, synthetic_logits):
    z, y = synthetic_logits(rng, 4000, 4)
    d = decompose(y, logits=z, estimator="temperature", unit="bits")
    freq = np.bincount(y, minlength=4) / len(y)
    assert d.unc == pytest.approx(-np.sum(freq * np.log2(freq)), rel=1e-12)
    assert d.mutual_information == d.dsc
    assert d.score == pytest.approx(trueprob.evaluate(y, logits=z, unit="bits").nll, rel=1e-12)
    assert d.score == pytest.approx(d.mcb - d.dsc + d.unc, rel=1e-12)
    # calibrated synthetic data: almost nothing to recover out of sample
    assert abs(d.mcb) < 0.01


def test_cross_fitted_mcb_grows_with_miscalibration(rng, synthetic_logits):
    z, y = synthetic_logits(rng, 3000, 5)
    calibrated = decompose(y, logits=z, estimator="temperature")
    over = decompose(y, logits=3 * z, estimator="temperature")
    assert over.mcb > 0.2 > calibrated.mcb
    assert over.n_folds == 5 and over.target == "vector"


def test_cross_fitted_dirichlet(rng, synthetic_logits):
    pytest.importorskip("trueprob.calibrators.scaling")
    z, y = synthetic_logits(rng, 3000, 5)
    dirichlet = decompose(y, logits=3 * z, estimator="dirichlet", score="brier")
    assert dirichlet.mcb > 0
    assert dirichlet.score == pytest.approx(dirichlet.mcb - dirichlet.dsc + dirichlet.unc)


def test_classwise_is_the_mean_of_per_class(rng, synthetic_logits):
    z, y = synthetic_logits(rng, 1000, 3, scale=2.0)
    d = decompose(y, logits=z, reduction="classwise", score="brier")
    assert len(d.per_class) == 3
    assert d.mcb == pytest.approx(np.mean([c.mcb for c in d.per_class]))
    k0 = decompose((y == 0).astype(int),
                   probs=np.exp(z[:, 0]) / np.exp(z).sum(1), score="brier")
    assert d.per_class[0].mcb == pytest.approx(k0.mcb, rel=1e-10)


def test_soft_targets_carry_the_entropy_split(rng):
    q = rng.dirichlet(np.ones(4), size=500)
    counts = rng.multinomial(20, q)
    d = decompose(probs=q, counts=counts, estimator="temperature")
    r = trueprob.evaluate(probs=q, counts=counts, unit="bits")
    assert d.entropy == pytest.approx(r.entropy)
    assert d.kl == pytest.approx(r.kl)
    assert d.score == pytest.approx(d.entropy + d.kl, rel=1e-10)
    assert math.isfinite(d.mcb)


def test_bad_options():
    y, p = np.array([0, 1]), np.array([0.3, 0.6])
    with pytest.raises(ValueError, match="score must be 'log' or 'brier'; got 'crps'"):
        decompose(y, probs=p, score="crps")
    with pytest.raises(ValueError, match="estimator must be one of"):
        decompose(y, probs=p, estimator="platt")
    with pytest.raises(ValueError, match="reduction must be 'top_label' or 'classwise'"):
        decompose(y, probs=p, reduction="vector")
    with pytest.raises(ValueError, match="n_folds must be an integer >= 2; got 1"):
        decompose(y, probs=p, n_folds=1)
