"""`trueprob decompose`: JSON keys and values equal to trueprob.decompose."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

import trueprob
from trueprob.cli import main


def test_decompose_json_equals_library(tmp_path, rng, synthetic_logits):
    z, y = synthetic_logits(rng, 800, 4, scale=2.0)
    path = tmp_path / "preds.npz"
    np.savez(path, logits=z, labels=y)
    result = CliRunner().invoke(main, ["decompose", str(path), "--format", "json",
                                       "--score", "brier", "--estimator", "binned"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert {"score", "mcb", "dsc", "unc", "unit", "estimator"} <= out.keys()
    ref = trueprob.decompose(y, logits=z, score="brier", estimator="binned")
    assert out["mcb"] == ref.mcb and out["unc"] == ref.unc
    assert out["unit"] is None and out["estimator"] == "binned"


def test_decompose_table_speaks_bits(tmp_path, rng, synthetic_logits):
    z, y = synthetic_logits(rng, 500, 3)
    path = tmp_path / "p.npz"
    np.savez(path, logits=z, labels=y)
    result = CliRunner().invoke(main, ["decompose", str(path)])
    assert result.exit_code == 0, result.output
    assert "bits per example" in result.output and "miscalibration" in result.output


def test_decompose_data_error_exit_1(tmp_path):
    path = tmp_path / "p.npz"
    np.savez(path, logits=np.zeros((3, 2)))
    result = CliRunner().invoke(main, ["decompose", str(path)])
    assert result.exit_code == 1
    assert "no targets found" in result.output


def test_default_splits_the_whole_vector_like_every_other_command(tmp_path):
    # the default is the log loss of the whole predicted vector: its score equals evaluate's
    # NLL in bits (not the top-label binary log score), recalibrated by cross-fitted temperature
    rng = np.random.default_rng(2)
    z = rng.normal(size=(600, 5)) * 3
    q = np.exp(z / 3) / np.exp(z / 3).sum(axis=1, keepdims=True)
    y = np.array([rng.choice(5, p=row) for row in q])
    np.savez(tmp_path / "p.npz", logits=z, labels=y)
    out = json.loads(CliRunner().invoke(main, ["decompose", str(tmp_path / "p.npz"),
                                               "--format", "json"]).stdout)
    assert out["target"] == "vector" and out["estimator"] == "temperature"
    assert out["score"] == pytest.approx(trueprob.evaluate(y, logits=z, unit="bits").nll,
                                         rel=1e-12)
    assert out["score"] == pytest.approx(out["mcb"] - out["dsc"] + out["unc"], abs=1e-12)
    lib = trueprob.decompose(y, logits=z)
    assert (lib.estimator, lib.target) == ("temperature", "vector")
    assert trueprob.decompose(y, logits=z, reduction="top_label").target == "top_label"
