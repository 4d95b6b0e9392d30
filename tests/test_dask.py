"""Tests of `trueprob.dask`: the cluster result equals the streaming and in-memory results.

References are `trueprob.evaluate` and `TemperatureScaling().fit` on all rows in memory and
`trueprob.streaming` on the same files (independent paths: one prepare over all rows; one
process reading batches in order). A LocalCluster with 2 workers (threads) keeps this fast;
the worker-kill test uses worker processes.
"""

from __future__ import annotations

import math
import os
import signal
import threading
import time

import numpy as np
import pytest

import trueprob
from trueprob import streaming
from trueprob.calibrators.temperature import TemperatureScaling

dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
da = pytest.importorskip("dask.array")

import trueprob.dask as tpd  # noqa: E402  (after the skips: needs dask)

RTOL = 1e-11


def make(rng, n, k=6, dtype=np.float32):
    z = rng.normal(size=(n, k)) * 3.0
    q = np.exp(z / 2 - (z / 2).max(1, keepdims=True))
    q /= q.sum(1, keepdims=True)
    y = (q.cumsum(1) < rng.random(n)[:, None]).sum(1).clip(0, k - 1)
    return z.astype(dtype), y.astype(np.int64)


def assert_reports_close(got, want, rtol=RTOL):
    a, b = got.to_dict(), want.to_dict()
    assert a.keys() == b.keys()
    for key in a:
        _close(a[key], b[key], rtol, key)


def _close(x, y, rtol, where):
    if isinstance(x, dict):
        for k in x:
            _close(x[k], y[k], rtol, f"{where}.{k}")
    elif isinstance(x, list):
        assert len(x) == len(y), where
        for i, (u, v) in enumerate(zip(x, y, strict=True)):
            _close(u, v, rtol, f"{where}[{i}]")
    elif isinstance(x, float) and isinstance(y, float):
        assert math.isclose(x, y, rel_tol=rtol, abs_tol=1e-15), (where, x, y)
    else:
        assert x == y, (where, x, y)


def write_columns(path, z, y, row_group_size):
    cols = {f"logit_{j}": z[:, j] for j in range(z.shape[1])}
    cols["y"] = y
    pq.write_table(pa.table(cols), path, row_group_size=row_group_size)


def write_list(path, z, y, row_group_size):
    values = pa.FixedSizeListArray.from_arrays(pa.array(z.ravel()), z.shape[1])
    pq.write_table(pa.table({"logits": values, "labels": y}), path,
                   row_group_size=row_group_size)


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """A folder of 3 Parquet shards (one column per class), 30,000 rows x 6 classes."""
    rng = np.random.default_rng(7)
    z, y = make(rng, 30_000)
    folder = tmp_path_factory.mktemp("ds")
    for i, rows in enumerate((slice(0, 12_000), slice(12_000, 12_001), slice(12_001, None))):
        write_columns(folder / f"part-{i}.parquet", z[rows], y[rows], row_group_size=2000)
    return folder, z, y


# ---------------------------------------------------------------- evaluate
@pytest.mark.parametrize("binning", ["width", "mass"])
def test_parquet_folder_equals_streaming_and_memory(client, dataset, binning):
    folder, z, y = dataset
    got = tpd.evaluate(folder, logits="logit_*", labels="y", partition_rows=5000,
                       binning=binning, client=client)
    assert_reports_close(got, trueprob.evaluate(y, logits=z, binning=binning))
    streamed = streaming.evaluate_path(folder, logits="logit_*", labels="y", binning=binning)
    assert_reports_close(got, streamed)
    assert got.settings.edges == streamed.settings.edges


def test_result_does_not_depend_on_workers_or_tree(client, dataset):
    """Same parts: the same bytes on 2 workers, on the threaded scheduler, any fan-in order."""
    folder, _, _ = dataset
    on_cluster = tpd.evaluate(folder, logits="logit_*", labels="y", partition_rows=4000,
                              client=client)
    local = tpd.evaluate(folder, logits="logit_*", labels="y", partition_rows=4000)
    assert on_cluster.to_dict() == local.to_dict()
    wide = tpd.evaluate(folder, logits="logit_*", labels="y", partition_rows=4000,
                        split_every=100, client=client)
    assert_reports_close(wide, on_cluster)


def test_list_column_and_arrays(client, tmp_path):
    rng = np.random.default_rng(11)
    z, y = make(rng, 9000, k=4)
    write_list(tmp_path / "list.parquet", z, y, row_group_size=1000)
    want = trueprob.evaluate(y, logits=z)
    assert_reports_close(tpd.evaluate(tmp_path / "list.parquet", partition_rows=2500,
                                      client=client), want)
    got = tpd.evaluate(da.from_array(y, chunks=2000), logits=da.from_array(z, chunks=(3000, 2)),
                       client=client)
    assert_reports_close(got, want)


# dask 2026.8.0's read_parquet calls reset_index(inplace=True), deprecated in pandas 3.1
@pytest.mark.filterwarnings("ignore:The inplace keyword in DataFrame.reset_index:"
                            "pandas.errors.Pandas4Warning")
def test_dask_dataframe_columns_and_list_column(client, tmp_path):
    dd = pytest.importorskip("dask.dataframe")
    rng = np.random.default_rng(12)
    z, y = make(rng, 9000, k=4)
    want = trueprob.evaluate(y, logits=z)
    write_columns(tmp_path / "cols.parquet", z, y, row_group_size=1000)
    write_list(tmp_path / "list.parquet", z, y, row_group_size=1000)
    frame = dd.read_parquet(tmp_path / "cols.parquet", split_row_groups=3)
    assert frame.npartitions > 1
    assert_reports_close(tpd.evaluate(frame, logits="logit_*", labels="y", client=client),
                         want)
    frame = dd.read_parquet(tmp_path / "list.parquet")
    assert_reports_close(tpd.evaluate(frame, client=client), want)


def test_weights_soft_targets_and_calibrator(client, tmp_path):
    rng = np.random.default_rng(3)
    z, y = make(rng, 6000, k=3, dtype=np.float64)
    counts = rng.multinomial(10, [0.2, 0.3, 0.5], size=len(y))
    w = rng.uniform(0, 2, size=len(y))
    got = tpd.evaluate(None, logits=da.from_array(z, chunks=(1000, 3)),
                       counts=da.from_array(counts, chunks=(1500, 3)),
                       sample_weight=da.from_array(w, chunks=700), unit="bits", client=client)
    assert_reports_close(got, trueprob.evaluate(logits=z, counts=counts, sample_weight=w,
                                                unit="bits"))
    ts = TemperatureScaling().fit(y, logits=z)
    np.savez(tmp_path / "v.npz", logits=z, labels=y)
    got = tpd.evaluate(tmp_path / "v.npz", calibrator=ts, client=client)
    assert_reports_close(got, trueprob.evaluate(y, logits=ts.predict_logproba(logits=z)))


def test_errors(client, tmp_path):
    z = da.zeros((10, 3), chunks=5)
    y = da.zeros(10, chunks=5, dtype=np.int64)
    with pytest.raises(TypeError, match=r"with dask arrays pass the labels positionally"):
        tpd.evaluate(logits=z, labels=y)
    with pytest.raises(TypeError, match=r"data must be a path, a dask DataFrame, or dask "
                       r"arrays .*got list"):
        tpd.evaluate([1, 2], logits=z)
    with pytest.raises(TypeError, match=r"with a path, logits= names a column or array"):
        tpd.evaluate(tmp_path / "x.parquet", logits=z)
    with pytest.raises(ValueError, match=r"labels has 9 rows but logits has 10"):
        tpd.evaluate(y[:9], logits=z)
    with pytest.raises(ValueError, match=r"split_every must be an integer >= 2; got 1"):
        tpd.evaluate(y, logits=z, split_every=1)
    bad = np.zeros((10, 3))
    bad[7, 2] = np.inf
    with pytest.raises(ValueError, match=r"<dask array block 1>: logits must be finite "
                       r"\(no NaN or inf\); row 2 is"):
        tpd.evaluate(y, logits=da.from_array(bad, chunks=5), client=client)
    from trueprob.cli._dask import dask_client, parse_local

    with pytest.raises(ValueError, match=r"--dask must be 'local' or 'local:N' with N >= 1 "
                       r"workers; got 'local:0'"):
        parse_local("local:0")
    with pytest.raises(ValueError, match=r"pass --scheduler ADDRESS or --dask local\[:N\], "
                       r"not both"), dask_client(scheduler="tcp://x:1", local="local"):
        pass
    # the library's own messages name its arguments, not the CLI's options
    with pytest.raises(ValueError, match=r"a local cluster is 'local' or 'local:N' with "
                       r"N >= 1 workers; got 'local:0'"):
        tpd.local_workers("local:0")
    with pytest.raises(ValueError, match=r"give scheduler= or local=, not both; got "
                       r"scheduler='tcp://x:1' and local='local'"), \
            tpd.cluster_client(scheduler="tcp://x:1", local="local"):
        pass
    with pytest.raises(TypeError, match=r"source must be a path or a dask DataFrame"):
        tpd.evaluate_path(y, logits=z)


def test_old_cluster_names_warn_and_still_work():
    with pytest.warns(DeprecationWarning, match=r"use trueprob.dask.local_workers"):
        assert tpd.parse_local("local:3") == 3
    with pytest.warns(DeprecationWarning, match=r"use trueprob.dask.cluster_client"), \
            tpd.dask_client() as client:
        assert client is None


def test_evaluate_path_takes_the_streaming_arguments_and_gives_its_report(tmp_path):
    from trueprob.streaming import evaluate_path

    rng = np.random.default_rng(11)
    z, y = make(rng, 5000, k=4)
    write_columns(tmp_path / "d.parquet", z, y, row_group_size=700)
    options = {"logits": "logit_*", "labels": "y", "batch_rows": 300, "n_bins": 10,
               "binning": "mass", "unit": "bits"}
    got = tpd.evaluate_path(tmp_path / "d.parquet", **options, partition_rows=1400,
                            quiet=True)
    want = evaluate_path(tmp_path / "d.parquet", **options, quiet=True)
    assert got.n == want.n == 5000
    for field in ("ece", "nll", "brier", "classwise_ece", "accuracy"):
        assert getattr(got, field) == pytest.approx(getattr(want, field), rel=1e-12, abs=1e-15)
    assert [r.upper for r in got.bins] == [r.upper for r in want.bins]


def test_inputs_without_rows_or_with_different_parts_are_refused(client, tmp_path):
    # every map-reduce (the report, its equal-mass search, the two fits) checks for rows
    empty_y = da.from_array(np.empty(0, dtype=np.int64), chunks=5)
    empty_z = da.from_array(np.empty((0, 3)), chunks=5)
    calls = [lambda: tpd.evaluate(empty_y, logits=empty_z, client=client),
             lambda: tpd.evaluate(empty_y, logits=empty_z, binning="mass", client=client),
             lambda: tpd.fit_temperature(empty_y, logits=empty_z, client=client),
             lambda: tpd.fit_vector_scaling(empty_y, logits=empty_z, client=client)]
    for call in calls:
        with pytest.raises(ValueError, match=r"^<dask arrays>: no rows; at least one row is "
                                             r"needed$"):
            call()
    # two files whose parts disagree on K: the fits' reductions name both
    rng = np.random.default_rng(0)
    for name, k in (("a.npz", 3), ("b.npz", 4)):
        np.savez(tmp_path / name, logits=rng.normal(size=(50, k)),
                 labels=rng.integers(0, k, 50))
    with pytest.raises(ValueError, match=r"the parts differ: logits with K=3 and logits "
                                         r"with K=4"):
        tpd.fit_temperature(tmp_path, client=client)
    with pytest.raises(ValueError, match=r"the parts differ in their inputs: "
                                         r"\[\('logits', 3\), \('logits', 4\)\]"):
        tpd.fit_vector_scaling(tmp_path, client=client)


def test_row_numbers_in_errors_count_from_the_file(client, tmp_path):
    z = np.zeros((6000, 3), dtype=np.float32)
    y = np.zeros(6000, dtype=np.int64)
    y[4321] = 3
    write_list(tmp_path / "bad.parquet", z, y, row_group_size=1000)
    with pytest.raises(ValueError, match=r"bad\.parquet: labels must be in 0\.\.2 \(K=3\); "
                       r"row 4321 is 3"):
        tpd.evaluate(tmp_path / "bad.parquet", partition_rows=2000, client=client)


# ---------------------------------------------------------------- temperature
def test_distributed_temperature_equals_in_memory(client, dataset):
    folder, z, y = dataset
    got = tpd.fit_temperature(folder, logits="logit_*", labels="y", partition_rows=5000,
                              client=client)
    want = TemperatureScaling().fit(y, logits=z)
    assert got.converged_
    assert got.temperature_ == pytest.approx(want.temperature_, rel=1e-12)
    assert got.nll_after_ == pytest.approx(want.nll_after_, rel=1e-12)
    assert got.nll_before_ == pytest.approx(want.nll_before_, rel=1e-12)
    w = np.linspace(0, 2, len(y))
    arrays = tpd.fit_temperature(da.from_array(y, chunks=4000),
                                 logits=da.from_array(z, chunks=(7000, 6)),
                                 sample_weight=da.from_array(w, chunks=5000), client=client)
    assert arrays.temperature_ == pytest.approx(
        TemperatureScaling().fit(y, logits=z, sample_weight=w).temperature_, rel=1e-12)


# ---------------------------------------------------------------- processes and faults
@pytest.mark.slow
@pytest.mark.parametrize("bar", [False, True], ids=["no-bar", "bar"])
def test_killed_worker_gives_the_same_result(tmp_path, monkeypatch, capsys, bar):
    """SIGKILL one of two worker processes while the evaluation runs: the lost tasks are
    recomputed and the report is byte-for-byte the undisturbed one. With a progress bar
    drawn the partition states are futures held by the client; losing some must not change
    the result either."""
    if bar:
        from trueprob import _progress

        monkeypatch.setattr(_progress, "progress_enabled",
                            lambda *, quiet=None, stream=None: not quiet)
    rng = np.random.default_rng(5)
    z, y = make(rng, 120_000, k=10)
    write_columns(tmp_path / "d.parquet", z, y, row_group_size=6000)
    options = {"logits": "logit_*", "labels": "y", "partition_rows": 6000, "batch_rows": 2000,
               "split_every": 4}
    # the same parts and tree on the threaded scheduler give the same bytes (tested above)
    undisturbed = tpd.evaluate(tmp_path / "d.parquet", **options, quiet=True)
    with tpd.cluster_client(local="local:2") as c:
        pids = c.run(os.getpid)
        victim = sorted(pids)[0]
        result: dict[str, object] = {}

        def run():
            result["report"] = tpd.evaluate(tmp_path / "d.parquet", client=c, **options)

        thread = threading.Thread(target=run)
        thread.start()
        scheduler = c.cluster.scheduler
        deadline = time.monotonic() + 60
        # wait until the victim holds finished states (they are lost with it)
        while time.monotonic() < deadline:
            held = [ts for ts in list(scheduler.tasks.values()) if ts.state == "memory"
                    and any(ws.address == victim for ws in ts.who_has)]
            if len(held) >= 2:
                break
            time.sleep(0.01)
        assert thread.is_alive(), "the evaluation ended before the worker could be killed"
        os.kill(pids[victim], signal.SIGKILL)
        thread.join(timeout=120)
        assert not thread.is_alive()
        assert victim not in c.scheduler_info()["workers"]  # the killed worker is gone
    assert result["report"].to_dict() == undisturbed.to_dict()
    assert_reports_close(undisturbed, trueprob.evaluate(y, logits=z))
    drawn = capsys.readouterr().err
    assert ("evaluating" in drawn and "/20" in drawn) is bar  # 20 parts of 6000 rows


def test_distributed_vector_scaling_equals_in_memory(client, dataset):
    from trueprob.calibrators.scaling import VectorScaling

    folder, z, y = dataset
    zz = z * np.array([2.0, 1.0, 0.5, 1.5, 1.0, 3.0], dtype=np.float32)
    got = tpd.fit_vector_scaling(None, logits=da.from_array(zz, chunks=(7000, 6)),
                                 targets=da.from_array(np.eye(6)[y], chunks=(9000, 6)),
                                 reg_lambda=0.1, client=client)
    want = VectorScaling(reg_lambda=0.1).fit(y, logits=zz)
    assert got.converged_
    np.testing.assert_allclose(got.coef_, want.coef_, rtol=0, atol=1e-8)
    np.testing.assert_allclose(got.intercept_, want.intercept_, rtol=0, atol=1e-8)
    from_path = tpd.fit_vector_scaling(folder, logits="logit_*", labels="y",
                                       partition_rows=5000, client=client)
    np.testing.assert_allclose(from_path.coef_, VectorScaling().fit(y, logits=z).coef_,
                               rtol=0, atol=1e-8)


@pytest.mark.slow
def test_cli_dask_run_over_files_that_differ_names_the_file_without_worker_logs(tmp_path):
    # a worker's failure reaches the user once, as the CLI's message naming the file and row;
    # distributed's own logs (the worker's traceback, cancelled tasks) stay off stderr
    import subprocess
    import sys

    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    rng = np.random.default_rng(0)
    z, y = rng.normal(size=(100, 3)), rng.integers(0, 3, 100)
    pq.write_table(pa.table({"logit_0": z[:, 0], "logit_1": z[:, 1], "logit_2": z[:, 2],
                             "labels": y}), tmp_path / "a.parquet")
    pq.write_table(pa.table({"logit_0": z[:, 0], "logit_1": z[:, 1], "labels": y}),
                   tmp_path / "b.parquet")
    code = "from trueprob.cli import main; main()"
    out = subprocess.run([sys.executable, "-c", code, "evaluate", str(tmp_path / "*.parquet"),
                          "--dask", "local:1", "-q"], capture_output=True, text=True,
                         timeout=300, check=False)
    assert out.returncode == 1
    assert "b.parquet: labels must be in 0..1 (K=2); row 1 is 2" in out.stderr
    assert "Traceback" not in out.stderr and "distributed" not in out.stderr, out.stderr
