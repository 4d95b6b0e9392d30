"""trueprob.evaluate_table / fit_table / read_table on pyarrow, pandas and polars tables."""

from __future__ import annotations

import math

import numpy as np
import pytest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

import trueprob  # noqa: E402
from trueprob.calibrators import BBQ, TemperatureScaling, VectorScaling  # noqa: E402
from trueprob.io import FileFormatError  # noqa: E402
from trueprob.streaming import evaluate_path  # noqa: E402
from trueprob.tables import table_source  # noqa: E402

K = 4
METRICS = ("nll", "brier", "accuracy", "ece", "mce", "rmsce", "classwise_ece",
           "class_conditional_ece", "ece_debiased")


@pytest.fixture(scope="module")
def data() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(11)
    z = (rng.normal(size=(1000, K)) * 2.5).astype(np.float32)
    y = rng.integers(0, K, size=1000)
    w = rng.random(1000) * 2
    return {"logits": z, "labels": y, "w": w}


def _columns(data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    cols = {f"logit_{k}": data["logits"][:, k] for k in range(K)}
    return cols | {"y": data["labels"], "weight": data["w"]}


def _assert_same(report, expected, rtol=1e-10):
    for name in METRICS:
        got, want = getattr(report, name), getattr(expected, name)
        assert math.isclose(got, want, rel_tol=rtol, abs_tol=1e-13), (name, got, want)


def test_arrow_columns_equal_evaluate_on_the_arrays(data):
    t = pa.table(_columns(data))
    report = trueprob.evaluate_table(t, logits="logit_*", labels="y", sample_weight="weight",
                                     batch_rows=128)
    expected = trueprob.evaluate(data["labels"], logits=data["logits"], sample_weight=data["w"])
    _assert_same(report, expected)
    assert report.n == 1000


def test_equals_evaluate_path_on_the_same_table_as_parquet(data, tmp_path):
    t = pa.table(_columns(data))
    path = tmp_path / "preds.parquet"
    pq.write_table(t, path)
    a = trueprob.evaluate_table(t, logits="logit_0,logit_1,logit_2,logit_3", labels="y",
                                batch_rows=300, binning="mass", unit="bits")
    b = evaluate_path(path, logits="logit_*", labels="y", batch_rows=300, binning="mass",
                      unit="bits")
    assert a.to_dict() == b.to_dict()


def test_list_column_probs_soft_targets_and_names_as_a_list(data):
    q = np.exp(data["logits"].astype(np.float64))
    q /= q.sum(axis=1, keepdims=True)
    soft = np.full((1000, K), 0.1)
    soft[np.arange(1000), data["labels"]] += 1 - 0.1 * K
    t = pa.table({"p": list(q), **{f"t{k}": soft[:, k] for k in range(K)}})
    report = trueprob.evaluate_table(t, probs="p", targets=["t0", "t1", "t2", "t3"],
                                     batch_rows=97)
    _assert_same(report, trueprob.evaluate(probs=q, targets=soft))
    assert report.entropy is not None


def test_auto_detection_and_top_label_inputs(data):
    z = data["logits"].astype(np.float64)
    q = np.exp(z - z.max(1, keepdims=True))
    q /= q.sum(1, keepdims=True)
    t = pa.table({"confidences": q.max(1), "predictions": q.argmax(1),
                  "labels": data["labels"]})
    report = trueprob.evaluate_table(t, n_classes=K, batch_rows=250)
    expected = trueprob.evaluate(data["labels"], confidences=q.max(1),
                                 predictions=q.argmax(1), n_classes=K)
    assert report.ece == pytest.approx(expected.ece, rel=1e-12)
    assert report.nll is None and "nll" in report.unavailable


def test_pandas_frame_is_converted_one_batch_at_a_time(data):
    import types

    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(_columns(data))
    source = table_source(frame)
    record_batches = source._record_batches(["y", "logit_0"], 300)
    assert isinstance(record_batches, types.GeneratorType)  # slices converted on demand
    first = next(record_batches)
    assert isinstance(first, pa.RecordBatch) and first.num_columns == 2
    assert [first.num_rows] + [b.num_rows for b in record_batches] == [300, 300, 300, 100]
    report = trueprob.evaluate_table(frame, logits="logit_*", labels="y",
                                     sample_weight="weight", batch_rows=300)
    _assert_same(report, trueprob.evaluate(data["labels"], logits=data["logits"],
                                           sample_weight=data["w"]))


def test_pandas_list_column(data):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"z": list(data["logits"]), "labels": data["labels"]})
    report = trueprob.evaluate_table(frame, logits="z", batch_rows=333)
    _assert_same(report, trueprob.evaluate(data["labels"], logits=data["logits"]))


def test_polars_frame(data):
    pl = pytest.importorskip("polars")
    frame = pl.DataFrame(_columns(data))
    report = trueprob.evaluate_table(frame, logits="logit_*", labels="y", batch_rows=256)
    _assert_same(report, trueprob.evaluate(data["labels"], logits=data["logits"]))


def test_arrow_batches_are_slices_of_batch_rows(data):
    source = table_source(pa.table(_columns(data)))
    sizes = [len(b["y"]) for b in source.batches(["y", "logit_0"], 128)]
    assert sizes == [128] * 7 + [104]


# --------------------------------------------------------------------------- fit


def test_fit_table_equals_fitting_the_arrays(data):
    t = pa.table(_columns(data))
    cal = trueprob.fit_table(t, "temperature", logits="logit_*", labels="y")
    ref = TemperatureScaling().fit(data["labels"], logits=data["logits"])
    assert cal.temperature_ == pytest.approx(ref.temperature_, rel=1e-12)
    vec = trueprob.fit_table(t, VectorScaling(), logits="logit_*", labels="y",
                             sample_weight="weight")
    ref = VectorScaling().fit(data["labels"], logits=data["logits"], sample_weight=data["w"])
    np.testing.assert_allclose(vec.coef_, ref.coef_, rtol=1e-10)
    bbq = trueprob.fit_table(t, "bbq", multiclass="top-label", logits="logit_*", labels="y")
    assert type(bbq).__name__ == "TopLabel" and isinstance(bbq.calibrator_, BBQ)


def test_read_table_matches_the_columns(data):
    arrays = trueprob.read_table(pa.table(_columns(data)), labels="y", logits="logit_*")
    np.testing.assert_array_equal(arrays["logits"], data["logits"])
    np.testing.assert_array_equal(arrays["labels"], data["labels"])
    assert set(arrays) == {"logits", "labels"}


# --------------------------------------------------------------------------- errors


def test_errors_name_the_column_and_the_table(data):
    t = pa.table(_columns(data))
    with pytest.raises(FileFormatError, match=r"<pyarrow.Table>: labels: no column named "
                                              r"'label'; columns in the file: 'logit_0'"):
        trueprob.evaluate_table(t, logits="logit_*", labels="label")
    both = pa.table({"logits": list(data["logits"]), "probs": list(data["logits"]),
                     "labels": data["labels"]})
    with pytest.raises(FileFormatError, match="found more than one kind of model output"):
        trueprob.evaluate_table(both)
    nulls = pa.table({"logit_0": pa.array([0.0, None]), "logit_1": [1.0, 2.0],
                      "labels": [0, 1]})
    with pytest.raises(FileFormatError, match=r"column 'logit_0' has 1 null value\(s\)"):
        trueprob.evaluate_table(nulls)
    with pytest.raises(TypeError, match="table must be a pyarrow Table or RecordBatch, a "
                                        "pandas or polars DataFrame"):
        trueprob.evaluate_table(data["logits"], labels="y")
    with pytest.raises(ValueError, match="batch_rows must be a positive integer; got 0"):
        trueprob.evaluate_table(t, logits="logit_*", labels="y", batch_rows=0)
    top = pa.table({"confidences": [0.9, 0.8], "predictions": [0, 1], "labels": [0, 0]})
    with pytest.raises(ValueError, match="fit_table needs logits= or probs="):
        trueprob.fit_table(top)
    bad = pa.table({"logit_0": [1.0, np.nan], "logit_1": [0.0, 0.0], "labels": [0, 1]})
    with pytest.raises(ValueError, match=r"<pyarrow.Table>: .*row 1"):
        trueprob.evaluate_table(bad)


def test_pandas_column_names_must_be_strings():
    pd = pytest.importorskip("pandas")
    with pytest.raises(TypeError, match="every column name of a DataFrame must be a string"):
        trueprob.evaluate_table(pd.DataFrame({0: [0.1], 1: [0.9]}))
