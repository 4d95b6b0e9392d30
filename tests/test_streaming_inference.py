"""Bootstrap intervals and consistency tests of datasets read in batches
(trueprob.streaming.bootstrap_path / consistency_test_path), against the in-memory functions."""

from __future__ import annotations

import numpy as np
import pytest

import trueprob
from trueprob.streaming import bootstrap_path, consistency_test_path


def _data(rng, n: int, k: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    z = rng.normal(size=(n, k)) * 1.5
    q = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    return scale * z, (q.cumsum(1) < rng.random((n, 1))).sum(1)


def _write(folder, parts: int, **arrays: np.ndarray) -> None:
    n = len(next(iter(arrays.values())))
    for i, idx in enumerate(np.array_split(np.arange(n), parts)):
        np.savez(folder / f"part{i}.npz", **{k: v[idx] for k, v in arrays.items()})


@pytest.mark.parametrize(("binning", "method", "weighted"),
                         [("width", "percentile", False), ("mass", "bca", True)])
def test_bootstrap_path_equals_bootstrap_on_all_rows(tmp_path, rng, binning, method, weighted):
    z, y = _data(rng, 2500, 4, 2.0)
    w = rng.uniform(0.5, 2.0, size=2500) if weighted else None
    arrays = {"logits": z, "labels": y} | ({"sample_weight": w} if weighted else {})
    _write(tmp_path, 3, **arrays)
    a = bootstrap_path(tmp_path, batch_rows=400, binning=binning, method=method,
                       n_replicates=80, random_state=5, quiet=True)
    b = trueprob.bootstrap(y, logits=z, sample_weight=w, binning=binning, method=method,
                           n_replicates=80, random_state=5)
    assert a.n_blocks == b.n_blocks == 256
    assert a.intervals.keys() == b.intervals.keys() and len(a.intervals) >= 10
    for name, iv in a.intervals.items():
        assert (iv.low, iv.high) == pytest.approx(
            (b.intervals[name].low, b.intervals[name].high), rel=1e-9, abs=1e-14), name
    assert a.report.ece == pytest.approx(b.report.ece, rel=1e-12)


def test_consistency_test_path(tmp_path, rng):
    z, y = _data(rng, 1200, 3, 1.0)  # calibrated
    _write(tmp_path, 2, logits=z, labels=y)
    for statistic in ("ece", "classwise_ece"):
        one = consistency_test_path(tmp_path / "part0.npz", batch_rows=10_000,
                                    statistic=statistic, n_resamples=150, random_state=2,
                                    quiet=True)
        ref = trueprob.consistency_test(y[:600], logits=z[:600], statistic=statistic,
                                        n_resamples=150, random_state=2)
        assert (one.value, one.p_value, one.null_mean) == \
            pytest.approx((ref.value, ref.p_value, ref.null_mean), rel=1e-12)
        many = consistency_test_path(tmp_path, batch_rows=250, statistic=statistic,
                                     n_resamples=150, random_state=2, quiet=True)
        full = trueprob.consistency_test(y, logits=z, statistic=statistic, n_resamples=150,
                                         random_state=2)
        assert many.value == pytest.approx(full.value, rel=1e-12)
        assert many.p_value > 0.01
    over = tmp_path / "over"
    over.mkdir()
    _write(over, 2, logits=3 * z, labels=y)
    assert consistency_test_path(over, batch_rows=250, n_resamples=99,
                                 quiet=True).p_value == 0.01


def test_errors_name_the_file_and_the_row(tmp_path, rng):
    z, y = _data(rng, 600, 3, 1.0)
    y[450] = 7  # row 150 of the second file
    _write(tmp_path, 2, logits=z, labels=y)
    with pytest.raises(ValueError, match=r"part1\.npz: .*row 150"):
        consistency_test_path(tmp_path, batch_rows=100, n_resamples=5, quiet=True)
    with pytest.raises(ValueError, match=r"part1\.npz: .*row 150"):
        bootstrap_path(tmp_path, batch_rows=100, n_replicates=5, quiet=True)
    soft = tmp_path / "soft"
    soft.mkdir()
    np.savez(soft / "s.npz", logits=z, targets=np.full((600, 3), 1 / 3))
    with pytest.raises(ValueError, match=r"s\.npz: the consistency test draws labels from the "
                                         "predicted distributions: it needs hard labels"):
        consistency_test_path(soft, quiet=True)
    with pytest.raises(ValueError, match="n_replicates must be an integer >= 2"):
        bootstrap_path(soft, n_replicates=1)


def test_cli_streams_bootstrap_and_tests(tmp_path, rng):
    import json

    from click.testing import CliRunner

    from trueprob.cli import main

    z, y = _data(rng, 1500, 3, 2.0)
    _write(tmp_path, 3, logits=z, labels=y)
    res = CliRunner().invoke(main, ["evaluate", str(tmp_path), "--bootstrap", "60", "--test",
                                    "--resamples", "99", "--seed", "3", "--batch-rows", "200",
                                    "--format", "json", "-q"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    ref = trueprob.bootstrap(y, logits=z, n_replicates=60, random_state=3, unit="bits")
    assert out["ci"]["ece"]["low"] == pytest.approx(ref.intervals["ece"].low, rel=1e-9)
    assert out["ci"]["nll"]["high"] == pytest.approx(ref.intervals["nll"].high, rel=1e-9)
    assert out["p_values"] == {"ece": 0.01, "classwise_ece": 0.01}  # logits 2x: rejected
    assert out["skce"] is None
    res = CliRunner().invoke(main, ["evaluate", str(tmp_path), "--test", "--dask", "local:1"])
    assert res.exit_code == 2 and "need one process" in res.output
