"""`trueprob evaluate --task multilabel|regression`: the documented JSON keys."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from trueprob.cli import main
from trueprob.multilabel import evaluate_multilabel
from trueprob.regression import Gaussian, QuantileSet, evaluate_regression


@pytest.fixture
def regression_file(tmp_path):
    rng = np.random.default_rng(0)
    mu = rng.normal(size=500)
    sd = np.exp(rng.normal(size=500) * 0.3)
    y = mu + 1.5 * sd * rng.normal(size=500)
    path = tmp_path / "reg.npz"
    np.savez(path, mu=mu, sd=sd, y=y, q_05=mu - 1.645 * sd, q_50=mu, q_95=mu + 1.645 * sd)
    return path, mu, sd, y


def invoke(*args: str) -> dict:
    result = CliRunner().invoke(main, ["evaluate", *args, "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_regression_gaussian_keys_and_values(regression_file):
    path, mu, sd, y = regression_file
    out = invoke(str(path), "--task", "regression", "--mean", "mu", "--std", "sd",
                 "--observed", "y", "--coverage", "0.5,0.9")
    ref = evaluate_regression(y, Gaussian(mu, sd), coverage_levels=[0.5, 0.9], unit="bits")
    assert {"n", "nll", "crps", "pit_ece", "coverage"} <= out.keys()
    assert out["nll"] == ref.nll and out["crps"] == ref.crps
    assert set(out["coverage"]) == {"0.5", "0.9"}
    # the same through --labels (the documented name) instead of --observed
    assert invoke(str(path), "--task", "regression", "--mean", "mu", "--std", "sd",
                  "--labels", "y", "--coverage", "0.5,0.9")["crps"] == ref.crps


def test_regression_quantiles(regression_file):
    path, mu, sd, y = regression_file
    out = invoke(str(path), "--task", "regression", "--quantiles", "q_*", "--levels",
                 "0.05,0.5,0.95", "--labels", "y")
    q = np.stack([mu - 1.645 * sd, mu, mu + 1.645 * sd], axis=1)
    assert out["crps"] == evaluate_regression(y, QuantileSet(q, [0.05, 0.5, 0.95])).crps
    assert out["nll"] is None


def test_regression_usage_errors(regression_file):
    path, *_ = regression_file
    result = CliRunner().invoke(main, ["evaluate", str(path), "--task", "regression",
                                       "--mean", "mu", "--labels", "y"])
    assert result.exit_code == 2 and "needs --std" in result.output


@pytest.mark.parametrize(("args", "flag"), [
    (("--task", "regression", "--mean", "mu", "--std", "sd", "--labels", "y",
      "--confidences", "mu"), "--confidences"),
    (("--task", "regression", "--mean", "mu", "--std", "sd", "--labels", "y",
      "--bootstrap", "100"), "--bootstrap"),
    (("--task", "regression", "--mean", "mu", "--std", "sd", "--labels", "y",
      "--logits", "mu"), "--logits"),
    (("--task", "multilabel", "--logits", "mu", "--labels", "y", "--mean", "mu"), "--mean"),
    (("--task", "multilabel", "--logits", "mu", "--labels", "y", "--test"), "--test"),
    (("--logits", "mu", "--labels", "y", "--std", "sd"), "--std"),
])
def test_options_a_task_does_not_read_are_refused(regression_file, args, flag):
    # an option the chosen --task would ignore is a usage error naming it (it was silently
    # ignored: '--task regression --confidences c' printed the regression numbers)
    path, *_ = regression_file
    result = CliRunner().invoke(main, ["evaluate", str(path), *args])
    assert result.exit_code == 2, result.output
    assert f"{flag} does not apply to trueprob evaluate --task" in result.output


def test_multilabel_keys_and_values(tmp_path):
    rng = np.random.default_rng(1)
    z = rng.normal(size=(400, 3))
    y = (rng.random((400, 3)) < 1 / (1 + np.exp(-2 * z))).astype(int)
    path = tmp_path / "ml.npz"
    np.savez(path, **{f"z{j}": z[:, j] for j in range(3)}, **{f"y{j}": y[:, j] for j in range(3)})
    out = invoke(str(path), "--task", "multilabel", "--logits", "z*", "--labels", "y*")
    ref = evaluate_multilabel(y, logits=z, unit="bits")
    assert out["n_labels"] == 3
    assert out["micro"]["ece"] == ref.micro.ece and out["macro"]["nll"] == ref.macro.nll
