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
    ref = trueprob.evaluate(y, logits=z).to_dict()
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
