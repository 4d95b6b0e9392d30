"""`trueprob evaluate --bootstrap/--ci/--test/--convention`: the documented JSON objects."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

import trueprob
from trueprob.cli import main
from trueprob.metrics import calibration_error


@pytest.fixture
def preds(tmp_path, rng, synthetic_logits):
    z, y = synthetic_logits(rng, 600, 4, scale=2.5)  # over-confident
    path = tmp_path / "p.npz"
    np.savez(path, logits=z, labels=y)
    return path, z, y


def run(*args: str) -> dict:
    result = CliRunner().invoke(main, ["evaluate", *args, "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_ci_object_matches_library_bootstrap(preds):
    path, z, y = preds
    out = run(str(path), "--bootstrap", "200", "--ci", "0.9", "--seed", "3")
    ref = trueprob.bootstrap(y, logits=z, n_replicates=200, level=0.9, random_state=3,
                             unit="bits")
    assert set(out["ci"]["ece"]) == {"estimate", "low", "high", "upper", "level", "method"}
    assert out["ci"]["ece"]["low"] == ref.intervals["ece"].low
    assert out["ci"]["ece"]["estimate"] == ref.intervals["ece"].estimate
    assert out["ci"]["nll"]["high"] == ref.intervals["nll"].high
    assert out["ci"]["ece"]["level"] == 0.9
    assert out["ci"]["ece"]["method"] == "bias-corrected percentile"
    assert out["ci"]["nll"]["method"] == "percentile"
    # the plug-in value stays under its SPEC.md name; the interval is about the corrected one
    assert out["ci"]["nll"]["estimate"] == out["nll"]
    assert out["ci"]["ece"]["estimate"] < out["ece"]
    assert out["ece"] == trueprob.evaluate(y, logits=z).ece


def test_p_values_object(preds):
    path, z, y = preds
    out = run(str(path), "--test", "--resamples", "99")
    assert {"ece", "classwise_ece"} <= set(out["p_values"])
    assert out["p_values"]["ece"] == pytest.approx(0.01)  # (1 + 0) / (1 + 99): rejected
    ref = trueprob.consistency_test(y, logits=z, n_resamples=99, random_state=0)
    assert out["p_values"]["ece"] == ref.p_value


def test_convention_object(preds):
    path, z, y = preds
    out = run(str(path), "--convention", "torchmetrics")
    conv = out["convention"]
    assert conv["name"] == "torchmetrics"
    assert conv["ece"] == calibration_error(y, logits=z, convention="torchmetrics")
    assert {"ece", "rmsce", "mce"} <= set(conv)


def test_table_output_lists_intervals_and_p_values(preds):
    path, _, _ = preds
    result = CliRunner().invoke(main, ["evaluate", str(path), "--bootstrap", "50", "--test",
                                       "--resamples", "20"])
    assert result.exit_code == 0, result.output
    assert "95% interval" in result.output
    assert "p-value (ece; H0: labels drawn from the predicted distribution)" in result.output
