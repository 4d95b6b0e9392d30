"""`trueprob report` over a folder, a glob or --stream: the streamed analysis behind the CLI."""

from __future__ import annotations

import re

import numpy as np
import pytest
from click.testing import CliRunner

import trueprob
from trueprob.calibrators import TemperatureScaling
from trueprob.cli import main

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


def _shards(folder, z: np.ndarray, y: np.ndarray, parts: int = 3) -> None:
    folder.mkdir(exist_ok=True)
    for i, idx in enumerate(np.array_split(np.arange(len(y)), parts)):
        table = pa.table({**{f"logit_{j}": z[idx, j] for j in range(z.shape[1])},
                          "y": y[idx]})
        pq.write_table(table, folder / f"part-{i}.parquet", row_group_size=300)


@pytest.fixture
def data(tmp_path, rng):
    def make(n: int) -> tuple[np.ndarray, np.ndarray]:
        u = rng.normal(size=(n, 4)) * 1.5
        q = np.exp(u) / np.exp(u).sum(1, keepdims=True)
        return 2.0 * u, (q.cumsum(1) < rng.random((n, 1))).sum(1)

    (z, y), (zv, yv) = make(2400), make(1500)
    _shards(tmp_path / "test", z, y)
    _shards(tmp_path / "val", zv, yv)
    return tmp_path, z, y, zv, yv


def _run(*args: str) -> object:
    return CliRunner().invoke(main, ["report", *args, "--replicates", "20", "--resamples",
                                     "30", "-q"])


def test_folder_and_glob_report_the_in_memory_numbers(data):
    root, z, y, _, _ = data
    expected = trueprob.evaluate(y, logits=z, unit="bits")
    for source in (str(root / "test"), str(root / "test" / "part-*.parquet")):
        res = _run(source, "--logits", "logit_*", "--labels", "y", "--batch-rows", "500",
                   "--format", "markdown", "-o", "-")
        assert res.exit_code == 0, res.output
        assert f"{expected.ece:.4f}" in res.output
        assert f"{expected.nll:.4f}" in res.output
        assert "temperature fitted on all rows (in-sample)" in res.output
        assert "read in batches of at most 500 rows" in res.output


def test_fit_on_a_folder_in_passes_and_html_written_atomically(data):
    root, z, y, zv, yv = data
    out = root / "r.html"
    res = _run(str(root / "test"), "--logits", "logit_*", "--labels", "y", "--fit",
               str(root / "val"), "-o", str(out))
    assert res.exit_code == 0, res.output
    t = TemperatureScaling().fit(yv, logits=zv).temperature_
    page = out.read_text()
    assert f"temperature {t:.2f}" in page
    assert "in passes over batches" in page
    after = trueprob.evaluate(y, logits=z / t, unit="bits")
    assert f"{after.nll:.4f}" in page
    assert page.count("<img") >= 3 and "http://" not in page and "https://" not in page
    # a failing run (a column that does not exist) leaves the earlier report intact
    res = _run(str(root / "test"), "--logits", "nope_*", "--labels", "y", "-o", str(out),
               "--force")
    assert res.exit_code == 1 and "nope_*" in res.output
    assert out.read_text() == page


def test_stream_flag_on_one_file_equals_the_in_memory_report(data, tmp_path):
    _, z, y, _, _ = data
    np.savez(tmp_path / "one.npz", logits=z, labels=y)
    streamed = _run(str(tmp_path / "one.npz"), "--stream", "--format", "markdown", "-o", "-")
    memory = _run(str(tmp_path / "one.npz"), "--format", "markdown", "-o", "-")
    assert streamed.exit_code == 0 and memory.exit_code == 0, streamed.output + memory.output

    def summary(text: str) -> list[str]:  # the point estimates of the summary table
        rows = [line for line in text.splitlines() if line.startswith("| ECE |")
                or line.startswith("| log loss |") or line.startswith("| Brier |")]
        return [re.split(r"\s*\|\s*", r)[2] for r in rows]

    assert summary(streamed.output) == summary(memory.output) != []


def test_usage_errors(data):
    root, *_ = data
    res = _run(str(root / "test"), "--logits", "logit_*", "--labels", "y", "--fit",
               str(root / "val"), "--method", "isotonic", "-o", "-")
    assert res.exit_code == 2 and "--method temperature or vector" in res.output
    res = CliRunner().invoke(main, ["report", str(root / "test"), "--task", "regression",
                                    "--mean", "m", "--std", "s", "--labels", "y", "-o", "-"])
    assert res.exit_code == 2 and "reads one file into memory" in res.output
    res = _run(str(root / "missing"), "-o", "-")
    assert res.exit_code == 2 and "does not exist" in res.output
    res = _run("-", "--stream", "-o", "-")
    assert res.exit_code == 2 and "not stdin" in res.output
