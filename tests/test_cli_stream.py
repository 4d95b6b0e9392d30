"""`trueprob evaluate` over a folder or a glob (streamed) and on a Dask cluster."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

import trueprob
from trueprob.cli import main


@pytest.fixture
def shards(tmp_path, rng, synthetic_logits):
    z, y = synthetic_logits(rng, 3000, 5, scale=2.0)
    folder = tmp_path / "preds"
    folder.mkdir()
    for i, part in enumerate(np.array_split(np.arange(3000), 3)):
        np.savez(folder / f"part-{i}.npz", logits=z[part], labels=y[part])
    return folder, z, y


def invoke(*args: str) -> dict:
    result = CliRunner().invoke(main, ["evaluate", *args, "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


@pytest.mark.parametrize("how", ["folder", "glob"])
def test_folder_and_glob_stream_to_the_in_memory_report(shards, how):
    folder, z, y = shards
    target = str(folder) if how == "folder" else str(folder / "part-*.npz")
    out = invoke(target, "--batch-rows", "256")
    ref = trueprob.evaluate(y, logits=z, unit="bits").to_dict()
    for key in ("n", "accuracy", "nll", "brier", "ece", "classwise_ece", "ks"):
        assert out[key] == pytest.approx(ref[key], rel=1e-12), key


def test_missing_file_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(main, ["evaluate", str(tmp_path / "nope.npz")])
    assert result.exit_code == 2
    assert "does not exist" in result.output


@pytest.mark.slow
def test_dask_local_cluster(shards):
    pytest.importorskip("distributed")
    folder, z, y = shards
    out = invoke(str(folder), "--dask", "local:1")
    assert out["ece"] == pytest.approx(trueprob.evaluate(y, logits=z).ece, rel=1e-12)


@pytest.mark.parametrize("method", ["temperature", "vector"])
def test_fit_over_a_folder_equals_the_in_memory_fit(shards, tmp_path, method):
    from trueprob.calibrators import TemperatureScaling, VectorScaling, load

    folder, z, y = shards
    out = tmp_path / f"{method}.json"
    result = CliRunner().invoke(main, ["fit", "--method", method, str(folder), "-o", str(out)])
    assert result.exit_code == 0, result.output
    cal = load(out)
    ref = (TemperatureScaling() if method == "temperature" else VectorScaling()).fit(
        y, logits=z)
    np.testing.assert_allclose(cal.predict_logproba(logits=z), ref.predict_logproba(logits=z),
                               rtol=1e-6, atol=1e-8)


def test_fit_streaming_refuses_methods_that_need_the_rows(shards, tmp_path):
    folder, _, _ = shards
    result = CliRunner().invoke(main, ["fit", "--method", "isotonic", str(folder), "-o",
                                       str(tmp_path / "c.json")])
    assert result.exit_code == 2
    assert "needs the rows in memory" in result.output
