"""Tests of `trueprob.streaming`: datasets read in batches give the in-memory results.

Every streamed number is checked against `trueprob.evaluate` / `TemperatureScaling().fit` on
the same rows held in memory (an independent code path: one prepare over all rows), and the
equal-mass edges against `trueprob.core.binning.equal_mass_edges` (a sort of all values).
"""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import trueprob
from trueprob import streaming
from trueprob.calibrators.temperature import DegenerateFitWarning, TemperatureScaling
from trueprob.core.binning import equal_mass_edges
from trueprob.io import FileFormatError

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

#: relative tolerance of "equal up to floating-point rounding" (sums of ~1e5 float64 terms)
RTOL = 1e-11


def make(rng, n=20_000, k=7, dtype=np.float32):
    """Over-confident logits and labels drawn from softmax(z / 2)."""
    z = rng.normal(size=(n, k)) * 3.0
    q = np.exp(z / 2 - (z / 2).max(1, keepdims=True))
    q /= q.sum(1, keepdims=True)
    y = (q.cumsum(1) < rng.random(n)[:, None]).sum(1).clip(0, k - 1)
    return z.astype(dtype), y.astype(np.int64)


def assert_reports_close(got, want, rtol=RTOL):
    """Every field of two reports equal up to rounding (strings and counts exactly)."""
    a, b = got.to_dict(), want.to_dict()
    assert a.keys() == b.keys()
    for key in a:
        _close(a[key], b[key], rtol, key)


def _close(x, y, rtol, where):
    if isinstance(x, dict):
        assert x.keys() == y.keys(), where
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


def write_columns(path, z, y, w=None, row_group_size=4096):
    cols = {f"logit_{j}": z[:, j] for j in range(z.shape[1])}
    cols["y"] = y
    if w is not None:
        cols["w"] = w
    pq.write_table(pa.table(cols), path, row_group_size=row_group_size)


def write_list(path, z, y, row_group_size=5000):
    values = pa.FixedSizeListArray.from_arrays(pa.array(z.ravel()), z.shape[1])
    pq.write_table(pa.table({"logits": values, "labels": y}), path,
                   row_group_size=row_group_size)


# ---------------------------------------------------------------- datasets
def test_dataset_files_folder_glob_and_errors(tmp_path):
    for name in ("part-10.parquet", "part-2.parquet", "sub/part-1.parquet", "_SUCCESS",
                 ".hidden.parquet", "_tmp/part-0.parquet", "notes.txt"):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    got = [p.relative_to(tmp_path).as_posix() for p in streaming.dataset_files(tmp_path)]
    assert got == ["part-2.parquet", "part-10.parquet", "sub/part-1.parquet"]
    pattern = str(tmp_path / "part-*.parquet")
    assert [p.name for p in streaming.dataset_files(pattern)] == ["part-2.parquet",
                                                                  "part-10.parquet"]
    with pytest.raises(FileNotFoundError, match=r"the pattern matches no file"):
        streaming.dataset_files(str(tmp_path / "nothing-*.parquet"))
    with pytest.raises(FileNotFoundError, match=r"missing\.parquet: no such file or folder"):
        streaming.dataset_files(tmp_path / "missing.parquet")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"empty: the folder holds no readable files"):
        streaming.dataset_files(tmp_path / "empty")
    with pytest.raises(TypeError, match=r"path must be a file, a folder or a glob .*got int"):
        streaming.dataset_files(3)


@pytest.mark.parametrize("binning", ["width", "mass"])
def test_parquet_layouts_agree_with_each_other_and_with_memory(tmp_path, rng, binning):
    z, y = make(rng)
    write_columns(tmp_path / "cols.parquet", z, y)
    write_list(tmp_path / "list.parquet", z, y)
    by_columns = streaming.evaluate_path(tmp_path / "cols.parquet", logits="logit_*",
                                         labels="y", batch_rows=3000, binning=binning)
    by_list = streaming.evaluate_path(tmp_path / "list.parquet", batch_rows=3000,
                                      binning=binning)
    # the same rows in the same batches: the same bytes, whichever layout was read
    assert by_columns.to_dict() == by_list.to_dict()
    assert_reports_close(by_columns, trueprob.evaluate(y, logits=z, binning=binning))
    assert by_columns.n == len(y)


def test_reading_path_does_not_change_the_result(tmp_path, rng):
    """C- and Fortran-ordered arrays, a structured .npy and Parquet: identical reports."""
    z, y = make(rng, n=9000, k=5, dtype=np.float64)
    np.savez(tmp_path / "c.npz", logits=np.ascontiguousarray(z), labels=y)
    np.savez(tmp_path / "f.npz", logits=np.asfortranarray(z), labels=y)
    records = np.empty(len(y), dtype=[("logits", "f8", (5,)), ("labels", "i8")])
    records["logits"], records["labels"] = z, y
    np.save(tmp_path / "rec.npy", records)
    write_list(tmp_path / "list.parquet", z, y, row_group_size=1000)
    reports = [streaming.evaluate_path(tmp_path / name, batch_rows=2500).to_dict()
               for name in ("c.npz", "f.npz", "rec.npy", "list.parquet")]
    assert all(r == reports[0] for r in reports[1:])


def test_batch_size_moves_only_rounding(tmp_path, rng):
    z, y = make(rng, n=12_345)
    w = rng.uniform(0, 3, size=len(y))
    write_columns(tmp_path / "d.parquet", z, y, w, row_group_size=1000)
    want = trueprob.evaluate(y, logits=z, sample_weight=w, unit="bits", reduce="sum")
    for rows in (777, 5000, 100_000):
        got = streaming.evaluate_path(tmp_path / "d.parquet", logits="logit_*", labels="y",
                                      sample_weight="w", batch_rows=rows, unit="bits",
                                      reduce="sum")
        assert_reports_close(got, want)


def test_folder_of_shards_equals_their_concatenation(tmp_path, rng):
    z, y = make(rng, n=10_000)
    cuts = [0, 2500, 2501, 7000, 10_000]
    (tmp_path / "ds").mkdir()
    for i in range(4):
        rows = slice(cuts[i], cuts[i + 1])
        write_columns(tmp_path / "ds" / f"part-{i}.parquet", z[rows], y[rows])
    (tmp_path / "ds" / "_SUCCESS").write_text("")
    seen = []
    got = streaming.evaluate_path(tmp_path / "ds", logits="logit_*", labels="y",
                                  batch_rows=1024, on_rows=seen.append)
    assert sum(seen) == len(y)
    assert_reports_close(got, trueprob.evaluate(y, logits=z))
    glob = streaming.evaluate_path(str(tmp_path / "ds" / "part-*.parquet"), logits="logit_*",
                                   labels="y", batch_rows=1024)
    assert glob.to_dict() == got.to_dict()


def test_shards_with_different_classes_are_refused(tmp_path, rng):
    z, y = make(rng, n=100, k=4)
    (tmp_path / "ds").mkdir()
    write_list(tmp_path / "ds" / "a.parquet", z, y)
    write_list(tmp_path / "ds" / "b.parquet", z[:, :3], y % 3)
    with pytest.raises(FileFormatError, match=r"b\.parquet: its fields logits \(N, 3\), "
                       r"labels \(N,\) differ from those of .*a\.parquet \(logits \(N, 4\)"):
        streaming.evaluate_path(tmp_path / "ds")


def test_soft_targets_counts_probs_and_binary(tmp_path, rng):
    n, k = 5000, 4
    z, _ = make(rng, n=n, k=k, dtype=np.float64)
    q = np.exp(z - z.max(1, keepdims=True))
    q /= q.sum(1, keepdims=True)
    counts = rng.multinomial(20, q[:, ::-1] * 0.5 + 0.5 / k)
    np.savez(tmp_path / "c.npz", probs=q, counts=counts)
    got = streaming.evaluate_path(tmp_path / "c.npz", batch_rows=999)
    assert_reports_close(got, trueprob.evaluate(probs=q, counts=counts))
    assert got.entropy is not None
    yb = (rng.random(n) < 0.3).astype(np.int64)
    np.savez(tmp_path / "b.npz", logits=z[:, 0], labels=yb)
    assert_reports_close(streaming.evaluate_path(tmp_path / "b.npz", batch_rows=700),
                         trueprob.evaluate(yb, logits=z[:, 0]))


def test_top_label_mode_needs_n_classes(tmp_path, rng):
    c = rng.uniform(0.2, 1.0, size=300)
    p = rng.integers(0, 5, size=300)
    y = np.where(rng.random(300) < c, p, (p + 1) % 5)
    np.savez(tmp_path / "t.npz", confidences=c, predictions=p, labels=y)
    with pytest.raises(ValueError, match=r"n_classes= is needed for top-label inputs"):
        streaming.evaluate_path(tmp_path / "t.npz")
    got = streaming.evaluate_path(tmp_path / "t.npz", n_classes=5, batch_rows=64)
    assert_reports_close(got, trueprob.evaluate(y, confidences=c, predictions=p, n_classes=5))


def test_errors_name_the_file_and_the_row_in_it(tmp_path, rng):
    z, y = make(rng, n=3000, k=3, dtype=np.float64)
    z[2345, 1] = np.nan
    np.savez(tmp_path / "bad.npz", logits=z, labels=y)
    with pytest.raises(ValueError, match=r"bad\.npz: logits must be finite \(no NaN or inf\); "
                       r"row 2345 is \["):
        streaming.evaluate_path(tmp_path / "bad.npz", batch_rows=1000)
    np.savez(tmp_path / "nolabels.npz", logits=z)
    with pytest.raises(ValueError, match=r"nolabels\.npz: no targets found"):
        streaming.evaluate_path(tmp_path / "nolabels.npz")
    y[1500] = 9
    np.savez(tmp_path / "label.npz", logits=np.nan_to_num(z), labels=y)
    with pytest.raises(ValueError, match=r"label\.npz: labels must be in 0\.\.2 \(K=3\); "
                       r"row 1500 is 9"):
        streaming.evaluate_path(tmp_path / "label.npz", batch_rows=1000)
    with pytest.raises(ValueError, match=r"batch_rows must be a positive integer; got 0"):
        streaming.evaluate_path(tmp_path / "label.npz", batch_rows=0)
    with pytest.raises(ValueError, match=r"binning must be 'width' or 'mass'; got 'quantile'"):
        streaming.evaluate_path(tmp_path / "label.npz", binning="quantile")
    with pytest.raises(ValueError, match=r"unit must be 'nats' or 'bits'; got 'bytes'"):
        streaming.evaluate_path(tmp_path / "label.npz", unit="bytes")


def test_calibrator_is_applied_per_batch(tmp_path, rng):
    z, y = make(rng, n=6000, k=5, dtype=np.float64)
    np.savez(tmp_path / "v.npz", logits=z, labels=y)
    ts = TemperatureScaling().fit(y, logits=z)
    got = streaming.evaluate_path(tmp_path / "v.npz", calibrator=ts, batch_rows=1000)
    assert_reports_close(got, trueprob.evaluate(y, logits=ts.predict_logproba(logits=z)))
    assert got.ece < trueprob.evaluate(y, logits=z).ece


def test_stats_travel_and_merge_with_other_streams(tmp_path, rng):
    z, y = make(rng, n=8000)
    write_list(tmp_path / "a.parquet", z[:3000], y[:3000])
    write_list(tmp_path / "b.parquet", z[3000:], y[3000:])
    a = streaming.stats_from_path(tmp_path / "a.parquet", batch_rows=1000)
    b = streaming.stats_from_path(tmp_path / "b.parquet", batch_rows=1000)
    merged = trueprob.EvaluationStats.from_bytes(a.to_bytes()).merge(
        trueprob.EvaluationStats.from_bytes(b.to_bytes()))
    assert_reports_close(merged.finalize(), trueprob.evaluate(y, logits=z))


# ---------------------------------------------------------------- equal-mass edges
def search_edges(values, weights, n_bins, parts=3):
    """QuantileSearch over ``parts`` slices of the values (each pass merges the parts)."""
    keys = streaming.confidence_keys(values)
    search = streaming.QuantileSearch(n_bins)
    while (plan := search.plan()) is not None:
        merged = None
        for chunk in np.array_split(np.arange(len(keys)), parts):
            w = None if weights is None else weights[chunk]
            merged = streaming.merge_search(merged, streaming.search_pass(plan, keys[chunk], w))
        total = len(keys) if weights is None else float(weights.sum())
        search.update(plan, merged, total)
    return search.edges(), search.passes


@pytest.mark.parametrize("collect", [streaming.SEARCH_COLLECT, 0])
@given(st.data())
def test_quantile_search_equals_the_sorted_quantiles(collect, data):
    """Histogram refinement (collect=0 forces it down to single keys) and collection both
    give the edges of a full sort, with ties, zeros, ones and integer weights."""
    n = data.draw(st.integers(1, 300))
    pool = data.draw(st.sampled_from(["continuous", "ties", "float32"]))
    seed = data.draw(st.integers(0, 2**32 - 1))
    r = np.random.default_rng(seed)
    if pool == "continuous":
        v = r.random(n)
    elif pool == "ties":
        v = r.choice([0.0, 0.25, 0.5, 1.0, 1.0 - 2**-52], size=n)
    else:
        v = r.random(n).astype(np.float32).astype(np.float64)
    w = data.draw(st.sampled_from([None, "int", "zeros"]))
    weights = None if w is None else r.integers(0 if w == "zeros" else 1, 4, size=n) \
        .astype(np.float64)
    if weights is not None and weights.sum() == 0:
        weights[0] = 1.0
    b = data.draw(st.integers(1, 20))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(streaming.edges, "SEARCH_COLLECT", collect)
        edges, passes = search_edges(v, weights, b)
    np.testing.assert_array_equal(edges, equal_mass_edges(v, weights, b))
    assert passes <= 5


def test_quantile_search_is_exact_on_a_large_tied_stream(tmp_path, rng):
    """Saturated rows (confidence exactly 1.0) and a continuum: edges of the full sort."""
    z, y = make(rng, n=200_000, k=3, dtype=np.float32)
    z[:50_000] *= 40.0  # float32 softmax saturates: c = 1.0 exactly
    np.savez(tmp_path / "s.npz", logits=z, labels=y)
    got = streaming.evaluate_path(tmp_path / "s.npz", batch_rows=30_000, binning="mass",
                                  n_bins=20)
    want = trueprob.evaluate(y, logits=z, binning="mass", n_bins=20)
    assert got.settings.edges == want.settings.edges
    assert_reports_close(got, want)


# ---------------------------------------------------------------- temperature
@pytest.mark.parametrize("case", ["labels", "weights", "counts", "probs"])
def test_streamed_temperature_equals_in_memory_fit(tmp_path, rng, case):
    z, y = make(rng, n=30_000, k=6, dtype=np.float32)
    kwargs = {}
    if case == "labels":
        np.savez(tmp_path / "d.npz", logits=z, labels=y)
        want = TemperatureScaling().fit(y, logits=z)
    elif case == "weights":
        w = rng.uniform(0, 2, size=len(y))
        np.savez(tmp_path / "d.npz", logits=z, labels=y, sample_weight=w)
        want = TemperatureScaling().fit(y, logits=z, sample_weight=w)
    elif case == "counts":
        counts = rng.multinomial(5, np.full(6, 1 / 6), size=len(y))
        counts[np.arange(len(y)), y] += 3
        np.savez(tmp_path / "d.npz", logits=z, counts=counts)
        want = TemperatureScaling().fit(logits=z, counts=counts)
    else:
        q = np.exp(z - z.max(1, keepdims=True))
        q /= q.sum(1, keepdims=True)
        q[0] = 0.0
        q[0, y[0]] = 1.0  # exact zeros: log floored as in the in-memory fit
        np.savez(tmp_path / "d.npz", probs=q, labels=y)
        want = TemperatureScaling().fit(y, probs=q)
    got = streaming.fit_temperature_path(tmp_path / "d.npz", batch_rows=4096, **kwargs)
    assert got.converged_ and got.kind_ == want.kind_ and got.n_classes_ == 6
    assert got.temperature_ == pytest.approx(want.temperature_, rel=1e-12)
    assert got.nll_before_ == pytest.approx(want.nll_before_, rel=1e-12)
    assert got.nll_after_ == pytest.approx(want.nll_after_, rel=1e-12)
    assert got.n_iter_ <= 8


def test_streamed_temperature_degenerate_cases_warn_like_the_fit(tmp_path):
    z = np.array([[3.0, 0.0], [0.0, 2.0], [1.0, 4.0]] * 10)
    y = np.array([0, 1, 1] * 10)
    np.savez(tmp_path / "sep.npz", logits=z, labels=y)
    with pytest.warns(DegenerateFitWarning, match=r"the calibration set is separable"):
        got = streaming.fit_temperature_path(tmp_path / "sep.npz", batch_rows=7)
    with pytest.warns(DegenerateFitWarning, match=r"the calibration set is separable"):
        want = TemperatureScaling().fit(y, logits=z)
    assert (got.temperature_, got.converged_) == (want.temperature_, want.converged_) \
        == (0.0, False)
    assert got.nll_after_ == pytest.approx(want.nll_after_, abs=1e-15)
    np.savez(tmp_path / "flat.npz", logits=np.zeros((5, 3)), labels=np.arange(5) % 3)
    with pytest.warns(DegenerateFitWarning, match=r"constant across classes"):
        assert streaming.fit_temperature_path(tmp_path / "flat.npz").temperature_ == 1.0
    np.savez(tmp_path / "conf.npz", confidences=np.ones(3), predictions=np.zeros(3, int),
             labels=np.zeros(3, int))
    with pytest.raises(ValueError, match=r"conf\.npz: temperature scaling needs logits= or "
                       r"probs= \(the whole vector\)"):
        streaming.fit_temperature_path(tmp_path / "conf.npz")


# ---------------------------------------------------------------- memory
def test_memory_of_a_pass_does_not_grow_with_rows(tmp_path, rng):
    """Peak traced allocations of a streamed evaluation: the same for 4x the rows."""
    z, y = make(rng, n=400_000, k=10)
    write_columns(tmp_path / "small.parquet", z[:50_000], y[:50_000], row_group_size=4096)
    write_columns(tmp_path / "large.parquet", z, y, row_group_size=4096)

    def peak(name):
        tracemalloc.start()
        try:
            streaming.evaluate_path(tmp_path / name, logits="logit_*", labels="y",
                                    batch_rows=4096)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    small, large = peak("small.parquet"), peak("large.parquet")
    assert large < 1.25 * small, (small, large)
    # the state is fixed-size (KS grid 2 MB, smooth-ECE grid 1.6 MB, bins): below the logits
    assert large < z.nbytes


# ---------------------------------------------------------------- real data
def test_real_logits_streamed_equal_in_memory(shared_data, tmp_path):
    path = shared_data / "mukhoti2020-cifar-logits"
    file = sorted(path.glob("*cifar100*test.npz")) or sorted(path.glob("*test.npz"))
    arrays = dict(np.load(file[0]))
    got = streaming.evaluate_path(file[0], batch_rows=1234)
    assert_reports_close(got, trueprob.evaluate(arrays["labels"], logits=arrays["logits"]))
    val = file[0].with_name(file[0].name.replace("test", "val"))
    if val.exists():
        v = dict(np.load(val))
        ts = streaming.fit_temperature_path(val, batch_rows=1000)
        assert ts.temperature_ == pytest.approx(
            TemperatureScaling().fit(v["labels"], logits=v["logits"]).temperature_, rel=1e-12)


# ---------------------------------------------------------------- vector scaling
@pytest.mark.parametrize("options", [{}, {"reg_lambda": 0.5},
                                     {"reg": "odir", "reg_lambda": 1.0, "reg_mu": 0.3}])
def test_streamed_vector_scaling_equals_in_memory_fit(tmp_path, rng, options):
    from trueprob.calibrators.scaling import VectorScaling

    n, k = 12_000, 4
    z = rng.normal(size=(n, k)) * 2
    q = np.exp(z - z.max(1, keepdims=True))
    q /= q.sum(1, keepdims=True)
    y = (q.cumsum(1) < rng.random(n)[:, None]).sum(1).clip(0, k - 1)
    zz = (z * np.array([3.0, 1.0, 0.5, 2.0]) + np.array([0.3, -0.2, 0.0, 0.1])) \
        .astype(np.float32)
    w = rng.uniform(0, 2, n)
    np.savez(tmp_path / "v.npz", logits=zz, labels=y, sample_weight=w)
    got = streaming.fit_vector_scaling_path(tmp_path / "v.npz", batch_rows=2500, **options)
    want = VectorScaling(**options).fit(y, logits=zz, sample_weight=w)
    assert got.converged_ and got.kind_ == "logits" and got.n_iter_ <= 15
    # one solver (VectorScaling.fit_passes = fit's trust-region Newton) on the same sums up
    # to the order of additions: the fits agree to rounding, not only to the tolerance
    # (the former hand-written streamed Newton agreed to ~3e-9)
    np.testing.assert_allclose(got.coef_, want.coef_, rtol=0, atol=1e-11)
    np.testing.assert_allclose(got.intercept_, want.intercept_, rtol=0, atol=1e-11)
    assert got.nll_before_ == pytest.approx(want.nll_before_, rel=1e-13)
    # with a penalty the NLL's gradient at the optimum is not 0: parameters within 1e-10
    # move it by ~1e-11
    assert got.nll_after_ == pytest.approx(want.nll_after_, rel=1e-9)
    np.testing.assert_allclose(got.predict_proba(logits=zz), want.predict_proba(logits=zz),
                               atol=1e-7)


# ---------------------------------------------------------------- the driver
def test_driver_fills_one_state_from_batches_like_one_call_on_all_rows(rng):
    from trueprob.stats import EvaluationStats

    z, y = make(rng, n=5000, k=5)
    w = rng.uniform(0, 2, 5000)
    batches = [streaming.prepare_batch({"logits": z[i:i + 1200], "labels": y[i:i + 1200],
                                        "sample_weight": w[i:i + 1200]}, start=i)
               for i in range(0, 5000, 1200)]
    got = streaming.fill_stats(batches, n_bins=12, closed="right")
    want = EvaluationStats(5, n_bins=12).update(y, logits=z, sample_weight=w)
    assert got.input_kinds == {"logits"} and got.target_kinds == want.target_kinds
    assert_reports_close(got.finalize(), want.finalize(), rtol=1e-12)
    # the plain state is the same whichever driver fills it: the blocked one's point state
    blocked = streaming.fill_blocked(batches, n_bins=12, closed="right", edges=None,
                                     binning="width", max_blocks=16,
                                     rng=np.random.default_rng(0))
    assert blocked.n_rows == 5000 and blocked.blocked.n_blocks == 16
    assert_reports_close(blocked.point.finalize(), want.finalize(), rtol=1e-12)


def test_driver_refuses_no_rows_and_a_change_of_k(rng):
    with pytest.raises(ValueError, match=r"the dataset has no rows; at least one row is needed"):
        streaming.fill_stats([], n_bins=15, closed="right")
    assert streaming.fill_stats([], n_bins=15, closed="right", required=False) is None
    z, y = make(rng, n=20, k=3)
    first = streaming.prepare_batch({"logits": z, "labels": y}, source="a.npz")
    other = streaming.prepare_batch({"logits": np.zeros((4, 4)), "labels": np.zeros(4, int)},
                                    source="b.npz")
    with pytest.raises(ValueError, match=r"b\.npz: the model outputs have K=4 classes, earlier "
                       r"batches K=3"):
        streaming.fill_stats([first, other], n_bins=15, closed="right")
    bad = z.copy()
    bad[7, 1] = np.nan
    late = streaming.prepare_batch({"logits": bad, "labels": y}, source="c.npz", start=100)
    with pytest.raises(ValueError, match=r"c\.npz: .*row 107"):
        streaming.fill_stats([first, late], n_bins=15, closed="right")


def test_vector_fit_by_passes_needs_a_fixed_lambda():
    from trueprob.calibrators.scaling import VectorScaling

    with pytest.raises(ValueError, match=r"reg_lambda='cv' needs the rows in memory"):
        VectorScaling(reg_lambda="cv").fit_passes(lambda w, b: np.zeros(2 + 4 + 4),
                                                  kind="logits", n_classes=1)
