"""Q4's held-out MCB and the recommendation (trueprob.analysis.recalibration).

Checked against: ``trueprob compare`` run on the same files (the recommendation's numbers are
compare's numbers); a cross-fitted temperature recomputed here with numpy folds and a scalar
minimiser; the identity S = UNC - DSC + MCB; and the real CIFAR-100 DenseNet-121 of Mukhoti et
al. 2020, where temperature barely helps and top-label binning does.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax

from trueprob.analysis.recalibration import Rows, recommend, recoverable
from trueprob.cli import main


def _drawn(rng: np.random.Generator, n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    z = rng.normal(size=(n, k)) * 2
    q = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    return z, (q.cumsum(1) < rng.random((n, 1))).sum(1)


def test_cross_fitted_temperature_matches_numpy_folds(rng):
    z, y = _drawn(rng, 1500, 4)
    r = recoverable(Rows.of(y, logits=2.5 * z), unit="nats", n_folds=5, random_state=3)
    folds = np.random.default_rng(3).permutation(1500) % 5
    losses = np.empty(1500)
    for f in range(5):
        tr, te = folds != f, folds == f

        def nll(t: float, zt: np.ndarray = 2.5 * z[tr], yt: np.ndarray = y[tr]) -> float:
            return float(-np.mean(log_softmax(zt / t, axis=1)[np.arange(len(yt)), yt]))

        t = minimize_scalar(nll, bounds=(0.2, 20), method="bounded",
                            options={"xatol": 1e-10}).x
        losses[te] = -log_softmax(2.5 * z[te] / t, axis=1)[np.arange(te.sum()), y[te]]
    assert r.held_out["temperature"] == pytest.approx(losses.mean(), rel=1e-6)
    score = -np.mean(log_softmax(2.5 * z, axis=1)[np.arange(1500), y])
    assert r.score == pytest.approx(score, rel=1e-12)
    assert r.score == pytest.approx(r.unc - r.dsc + r.mcb, abs=1e-12)
    assert r.mcb == pytest.approx(score - min(r.held_out.values()), abs=1e-12)
    assert r.temperature == pytest.approx(score - losses.mean(), rel=1e-5)


def test_recommendation_equals_compare_on_the_same_files(tmp_path, rng):
    z, y = _drawn(rng, 4000, 4)
    z = np.where(z == z.max(1, keepdims=True), z * 2.0, z)  # the top logit alone too large
    np.savez(tmp_path / "val.npz", logits=z[:2000], labels=y[:2000])
    np.savez(tmp_path / "test.npz", logits=z[2000:], labels=y[2000:])
    rec = recommend(Rows.of(y[:2000], logits=z[:2000]), Rows.of(y[2000:], logits=z[2000:]),
                    source=str(tmp_path / "val.npz"), unit="bits")
    runner = CliRunner()
    rows = {}
    for wrap, methods in (("top-label", "isotonic,histogram"),
                          ("one-vs-rest", "temperature,vector,isotonic,histogram")):
        out = runner.invoke(main, ["compare", "--fit", str(tmp_path / "val.npz"), "--eval",
                                   str(tmp_path / "test.npz"), "--methods", methods,
                                   "--multiclass", wrap, "--unit", "bits", "--format", "json",
                                   "--quiet"])
        assert out.exit_code == 0, out.output
        for row in json.loads(out.stdout)["rows"]:
            key = row["method"] if row["method"] in ("temperature", "vector", "uncalibrated") \
                else f"{wrap} {row['method']}"
            rows[key] = row
    assert rec.nll_before == rows["uncalibrated"]["nll"]
    for c in rec.candidates:
        if c.name in rows:
            assert (c.nll, c.ece, c.accuracy) == (rows[c.name]["nll"], rows[c.name]["ece"],
                                                  rows[c.name]["accuracy"]), c.name
    assert rec.best is not None and rec.best.nll == min(
        c.nll for c in rec.candidates if c.excluded is None)
    assert rec.command() == (f"trueprob fit {tmp_path / 'val.npz'} --method "
                             f"{rec.best.method}"
                             + (f" --multiclass {rec.best.multiclass}"
                                if rec.best.multiclass else "") + " -o calibrator.json")
    # the held-out split counts the recommendation: MCB >= what it recovers
    held = recoverable(Rows.of(y[2000:], logits=z[2000:])).with_recommendation(rec)
    assert held.mcb >= rec.best.gain - 1e-12


def test_nothing_helps_a_calibrated_model_and_soft_targets_work(rng):
    z, y = _drawn(rng, 6000, 3)
    rec = recommend(Rows.of(y[:3000], logits=z[:3000]), Rows.of(y[3000:], logits=z[3000:]),
                    source="val.npz")
    assert not rec.helps  # calibrated by construction: no map helps significantly
    q = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    counts = np.stack([rng.multinomial(5, row) for row in q])
    soft = recoverable(Rows.of(counts=counts, logits=3 * z), unit="bits")
    t = counts / counts.sum(1, keepdims=True)
    pbar = t.mean(0)
    assert soft.unc == pytest.approx(-np.sum(pbar * np.log2(pbar)), rel=1e-12)
    ce = -np.mean(np.sum(t * log_softmax(3 * z, axis=1), axis=1)) / math.log(2)
    assert soft.score == pytest.approx(ce, rel=1e-12)
    assert soft.mcb > 0.1 and soft.family is not None  # 3z is over-confident


@pytest.mark.data
def test_cifar100_densenet_recommends_a_top_label_map(shared_data):
    d = shared_data / "mukhoti2020-cifar-logits"
    val = np.load(d / "cifar100_densenet121_brier_val.npz")
    test = np.load(d / "cifar100_densenet121_brier_test.npz")
    rows = Rows.of(test["labels"], logits=test["logits"])
    rec = recommend(Rows.of(val["labels"], logits=val["logits"]), rows,
                    source="val.npz", unit="bits")
    assert rec.best is not None and rec.best.multiclass == "top-label" and rec.helps
    temperature = next(c for c in rec.candidates if c.name == "temperature")
    assert rec.best.gain > 5 * temperature.gain  # binning recovers far more than T
    ovr = next(c for c in rec.candidates if c.name == "histogram (one-vs-rest)")
    assert ovr.excluded is not None and "changes the accuracy by" in ovr.excluded
    held = recoverable(rows, unit="bits").with_recommendation(rec)
    assert held.mcb >= rec.best.gain and held.family is not None
