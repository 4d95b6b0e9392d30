"""Tests of the file readers (`trueprob.io`): every format, auto-detection, every error path.

Every value is checked against the arrays that were written to the file (or, for the real
CSVs, against the .npz of the same model published alongside them).
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pytest

from trueprob.io import FileFormatError, iter_inputs, read_inputs
from trueprob.io.fields import natural_key

RNG = np.random.default_rng(20240601)


def logits_labels(n: int = 23, k: int = 4, dtype: type = np.float32) -> tuple[np.ndarray, ...]:
    z = RNG.normal(size=(n, k)).astype(dtype)
    y = RNG.integers(0, k, size=n)
    return z, y


def concat(batches: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}


def assert_same(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    assert set(got) == set(want)
    for key, value in want.items():
        np.testing.assert_array_equal(got[key], value, err_msg=key)
        assert got[key].shape == np.shape(value), key


# ---------------------------------------------------------------- names and their order
def test_natural_sort_orders_digit_runs_by_value():
    names = ["logit_10", "logit_2", "logit_1", "logit_0", "logit_11", "logit_9"]
    assert sorted(names, key=natural_key) == [
        "logit_0", "logit_1", "logit_2", "logit_9", "logit_10", "logit_11"]


# ---------------------------------------------------------------- npz
def test_npz_auto_detects_canonical_names_and_keeps_dtypes(tmp_path):
    z, y = logits_labels()
    w = RNG.uniform(size=len(y))
    path = tmp_path / "val.npz"
    np.savez(path, logits=z, labels=y, sample_weight=w, other=np.arange(3))
    got = read_inputs(path)
    assert_same(got, {"logits": z, "labels": y, "sample_weight": w})
    assert got["logits"].dtype == np.float32


def test_npz_explicit_names_and_compressed(tmp_path):
    z, y = logits_labels()
    path = tmp_path / "out.npz"
    np.savez_compressed(path, scores=z, truth=y)
    got = read_inputs(str(path), probs=None, logits="scores", labels="truth")
    assert_same(got, {"logits": z, "labels": y})


def test_npz_glob_over_one_array_per_class_in_natural_order(tmp_path):
    z, y = logits_labels(k=12)
    path = tmp_path / "cols.npz"
    np.savez(path, y=y, **{f"z{j}": z[:, j] for j in range(12)})
    got = read_inputs(path, logits="z*", labels="y")
    assert_same(got, {"logits": z, "labels": y})  # z2 before z10, so the columns are in order
    listed = read_inputs(path, logits="z1,z0", labels="y")
    np.testing.assert_array_equal(listed["logits"], z[:, [1, 0]])
    as_list = read_inputs(path, logits=["z0", "z1"], labels="y")
    np.testing.assert_array_equal(as_list["logits"], z[:, :2])


def test_npz_iter_inputs_batches_concatenate_to_read_inputs(tmp_path):
    z, y = logits_labels(n=1001)
    path = tmp_path / "big.npz"
    np.savez(path, logits=z, labels=y)
    batches = list(iter_inputs(path, batch_rows=100))
    assert [len(b["labels"]) for b in batches] == [100] * 10 + [1]
    assert_same(concat(batches), {"logits": z, "labels": y})


def test_stdin_npz(monkeypatch):
    z, y = logits_labels()
    buffer = io.BytesIO()
    np.savez(buffer, logits=z, labels=y)

    class Stdin:
        def __init__(self, data: bytes) -> None:
            self.buffer = io.BytesIO(data)

    monkeypatch.setattr(sys, "stdin", Stdin(buffer.getvalue()))
    assert_same(read_inputs("-"), {"logits": z, "labels": y})
    monkeypatch.setattr(sys, "stdin", Stdin(b"logits,labels\n1,2\n"))
    with pytest.raises(FileFormatError, match=r"<stdin>: not an \.npz archive"):
        read_inputs("-")
    monkeypatch.setattr(sys, "stdin", Stdin(b""))
    with pytest.raises(FileFormatError, match=r"<stdin>: empty input; expected an \.npz"):
        read_inputs("-")


# ---------------------------------------------------------------- npy
def test_structured_npy_with_a_subarray_field(tmp_path):
    z, y = logits_labels(n=17, k=5)
    rec = np.zeros(17, dtype=[("logits", "f4", (5,)), ("labels", "i8"), ("note", "f8")])
    rec["logits"], rec["labels"] = z, y
    path = tmp_path / "records.npy"
    np.save(path, rec)
    assert_same(read_inputs(path), {"logits": z, "labels": y})
    assert_same(concat(list(iter_inputs(path, batch_rows=4))), {"logits": z, "labels": y})


def test_plain_npy_is_one_array_named_after_the_file(tmp_path):
    z, _ = logits_labels()
    np.save(tmp_path / "logits.npy", z)
    assert_same(read_inputs(tmp_path / "logits.npy"), {"logits": z})
    q = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    np.save(tmp_path / "scores.npy", q)
    assert_same(read_inputs(tmp_path / "scores.npy", probs="*"), {"probs": q})
    with pytest.raises(FileFormatError, match=r"scores\.npy: no model outputs found: no array "
                       r"named 'logits' or 'probs'.*'scores'.*logits= \(CLI: --logits\)"):
        read_inputs(tmp_path / "scores.npy")


def test_fortran_ordered_npy_is_read_correctly(tmp_path):
    z, _ = logits_labels(n=11, k=3, dtype=np.float64)
    path = tmp_path / "logits.npy"
    np.save(path, np.asfortranarray(z))
    assert_same(read_inputs(path), {"logits": z})
    batches = list(iter_inputs(path, batch_rows=4))
    assert [len(b["logits"]) for b in batches] == [4, 4, 3]
    assert_same(concat(batches), {"logits": z})


def test_empty_arrays_give_zero_rows(tmp_path):
    path = tmp_path / "empty.npz"
    np.savez(path, logits=np.zeros((0, 3), np.float32), labels=np.zeros(0, np.int64))
    got = read_inputs(path)
    assert got["logits"].shape == (0, 3)
    assert got["labels"].shape == (0,)
    assert list(iter_inputs(path, batch_rows=8)) == []


# ---------------------------------------------------------------- csv
def write_csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    lines = [",".join(header)] + [",".join(str(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_csv_logit_prefix_columns_in_natural_order(tmp_path):
    k = 11
    z, y = logits_labels(n=9, k=k, dtype=np.float64)
    header = ["labels"] + [f"logit_{j}" for j in range(k)]
    # columns written in a shuffled order: natural sort must restore 0, 1, ..., 10
    order = [10, 2, 0, 9, 1, 3, 4, 5, 6, 7, 8]
    header = ["labels"] + [f"logit_{j}" for j in order]
    path = write_csv(tmp_path / "p.csv", header,
                     [[y[i]] + [repr(float(z[i, j])) for j in order] for i in range(9)])
    got = read_inputs(path)
    assert_same(got, {"logits": z, "labels": y})
    assert got["labels"].dtype == np.int64
    assert got["logits"].dtype == np.float64
    assert_same(concat(list(iter_inputs(path, batch_rows=2))), got)


def test_csv_counts_confidences_weights_and_spaces(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("\ufeffprob_0, prob_1 ,count_0,count_1,sample_weight\n"
                    "0.25, 0.75,1,3,2.0\n\n0.5,0.5,2,2,0.5\n")
    got = read_inputs(path)
    assert_same(got, {"probs": np.array([[0.25, 0.75], [0.5, 0.5]]),
                      "counts": np.array([[1, 3], [2, 2]]),
                      "sample_weight": np.array([2.0, 0.5])})
    assert got["counts"].dtype == np.int64


def test_csv_non_integer_labels_are_left_to_validation(tmp_path):
    path = write_csv(tmp_path / "l.csv", ["logit_0", "logit_1", "y"],
                     [[0.0, 1.0, "1.0"], [1.0, 0.0, "0.5"]])
    got = read_inputs(path, labels="y")
    assert got["labels"].dtype == np.float64
    np.testing.assert_array_equal(got["labels"], [1.0, 0.5])


@pytest.mark.data
def test_real_hollance_csvs_match_their_npz(shared_data):
    folder = shared_data / "hollance-confidences"
    pairs = [("csv/markus93/probs_resnet110_c10_logits.csv",
              "markus93__probs_resnet110_c10_logits.npz"),
             ("csv/markus93/probs_resnet50_birds_logits.csv",
              "markus93__probs_resnet50_birds_logits.npz"),
             ("csv/other/snacks.csv", "other__snacks.npz")]
    for csv_name, npz_name in pairs:
        names = {"labels": "true_label", "predictions": "pred_label",
                 "confidences": "confidence"}
        got = read_inputs(folder / csv_name, **names)
        with np.load(folder / npz_name) as ref:
            want = {"labels": ref["labels"], "predictions": ref["preds"],
                    "confidences": ref["confidence"]}
        assert_same(got, want)
        streamed = concat(list(iter_inputs(folder / csv_name, batch_rows=1000, **names)))
        assert_same(streamed, got)


@pytest.mark.data
def test_real_npz_logits_match_np_load(shared_data):
    folder = shared_data / "mukhoti2020-cifar-logits"
    path = folder / "cifar10_resnet50_brier_val.npz"
    with np.load(path) as ref:
        want = {"logits": ref["logits"], "labels": ref["labels"]}
    assert_same(read_inputs(path), want)
    assert_same(concat(list(iter_inputs(path, batch_rows=777))), want)


# ---------------------------------------------------------------- parquet
def parquet_modules():
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    return pa, pq


def test_parquet_one_column_per_class(tmp_path):
    pa, pq = parquet_modules()
    z, y = logits_labels(n=30, k=12)
    table = pa.table({"y": y, **{f"logit_{j}": z[:, j] for j in range(12)}})
    pq.write_table(table, tmp_path / "cols.parquet")
    got = read_inputs(tmp_path / "cols.parquet", labels="y")
    assert_same(got, {"logits": z, "labels": y})
    assert got["logits"].dtype == np.float32


@pytest.mark.parametrize("list_type", ["list", "large_list", "fixed_size_list"])
def test_parquet_list_column(tmp_path, list_type):
    pa, pq = parquet_modules()
    z, y = logits_labels(n=25, k=7)
    value = pa.float32()
    typ = {"list": pa.list_(value), "large_list": pa.large_list(value),
           "fixed_size_list": pa.list_(value, 7)}[list_type]
    table = pa.table({"logits": pa.array(list(z), type=typ), "labels": y})
    pq.write_table(table, tmp_path / "lists.parquet", row_group_size=6)
    assert_same(read_inputs(tmp_path / "lists.parquet"), {"logits": z, "labels": y})
    assert_same(concat(list(iter_inputs(tmp_path / "lists.parquet", batch_rows=4))),
                {"logits": z, "labels": y})


def test_parquet_streaming_over_many_row_groups(tmp_path):
    pa, pq = parquet_modules()
    z, y = logits_labels(n=1000, k=5)
    w = RNG.uniform(size=1000)
    table = pa.table({"labels": y, "sample_weight": w,
                      **{f"prob_{j}": z[:, j] for j in range(5)}})
    path = tmp_path / "many.parquet"
    pq.write_table(table, path, row_group_size=37)
    assert pq.ParquetFile(path).num_row_groups == 28
    whole = read_inputs(path)
    assert_same(whole, {"probs": z, "labels": y, "sample_weight": w})
    batches = list(iter_inputs(path, batch_rows=16))
    assert max(len(b["labels"]) for b in batches) == 16
    assert sum(len(b["labels"]) for b in batches) == 1000
    assert_same(concat(batches), whole)


def test_parquet_with_zero_rows(tmp_path):
    pa, pq = parquet_modules()
    table = pa.table({"logits": pa.array([], type=pa.list_(pa.float32(), 3)),
                      "labels": pa.array([], type=pa.int64()),
                      **{f"prob_{j}": pa.array([], type=pa.float64()) for j in range(2)}})
    pq.write_table(table, tmp_path / "empty.parquet")
    got = read_inputs(tmp_path / "empty.parquet", logits="logits")
    assert got["logits"].shape == (0, 3) and got["logits"].dtype == np.float32
    assert got["labels"].shape == (0,) and got["labels"].dtype == np.int64
    assert list(iter_inputs(tmp_path / "empty.parquet", probs="prob_*")) == []
    assert read_inputs(tmp_path / "empty.parquet", probs="prob_*")["probs"].shape == (0, 2)


def test_parquet_errors(tmp_path):
    pa, pq = parquet_modules()
    pq.write_table(pa.table({"logits": ["a", "b"], "labels": [0, 1]}), tmp_path / "s.parquet")
    with pytest.raises(FileFormatError, match=r"s\.parquet: column 'logits' has type string, "
                       r"not numbers"):
        read_inputs(tmp_path / "s.parquet")
    pq.write_table(pa.table({"logits": pa.array([1.0, None]), "labels": [0, 1]}),
                   tmp_path / "n.parquet")
    with pytest.raises(FileFormatError, match=r"n\.parquet: column 'logits' has 1 null"):
        read_inputs(tmp_path / "n.parquet")
    pq.write_table(pa.table({"logits": pa.array([[1.0, 2.0], [1.0, 2.0, 3.0]]),
                             "labels": [0, 1]}), tmp_path / "r.parquet")
    with pytest.raises(FileFormatError, match=r"list column 'logits' must hold the same number "
                       r"of values in every row; row 1 has 3 values where row 0 has 2"):
        read_inputs(tmp_path / "r.parquet")
    good = tmp_path / "good.parquet"
    pq.write_table(pa.table({"logits": [1.0, 2.0], "labels": [0, 1]}), good)
    cut = tmp_path / "cut.parquet"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(FileFormatError, match=r"cut\.parquet: not a readable Parquet file"):
        read_inputs(cut)


def test_parquet_without_pyarrow_names_the_extra(tmp_path, monkeypatch):
    path = tmp_path / "x.parquet"
    path.write_bytes(b"PAR1")
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(ImportError, match=r"x\.parquet \(Parquet\) needs the optional "
                       r"dependency 'pyarrow'.*pip install 'trueprob\[parquet\]'"):
        read_inputs(path)


# ---------------------------------------------------------------- torch
@pytest.mark.torch
def test_pt_dict_of_tensors(tmp_path):
    torch = pytest.importorskip("torch")
    z, y = logits_labels()
    path = tmp_path / "out.pt"
    torch.save({"logits": torch.from_numpy(z).requires_grad_(), "labels": torch.from_numpy(y),
                "extra": torch.zeros(2)}, path)
    assert_same(read_inputs(path), {"logits": z, "labels": y})
    assert_same(concat(list(iter_inputs(path, batch_rows=5))), {"logits": z, "labels": y})
    torch.save({"logits": torch.from_numpy(z).to(torch.bfloat16), "labels": torch.from_numpy(y)},
               path)
    got = read_inputs(path)
    assert got["logits"].dtype == np.float32
    np.testing.assert_array_equal(got["logits"],
                                  torch.from_numpy(z).to(torch.bfloat16).float().numpy())


class _Payload:
    """Unpickling this would create a marker file: proof that nothing was unpickled."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.torch
def test_pt_errors(tmp_path):
    torch = pytest.importorskip("torch")
    marker = tmp_path / "unpickled"
    path = tmp_path / "evil.pt"
    torch.save({"logits": torch.zeros(2, 2), "labels": _Payload(str(marker))}, path)
    with pytest.raises(FileFormatError, match=r"evil\.pt: not a readable \.pt file of tensors"):
        read_inputs(path)
    assert not marker.exists()
    torch.save(torch.zeros(3, 2), tmp_path / "t.pt")
    with pytest.raises(FileFormatError, match=r"t\.pt: expected a dict of named tensors.*got "
                       r"Tensor"):
        read_inputs(tmp_path / "t.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(FileFormatError, match=r"junk\.pt: not a readable \.pt file"):
        read_inputs(tmp_path / "junk.pt")
    torch.save({"logits": torch.zeros(3, 2), "labels": [0, 1, 1]}, tmp_path / "l.pt")
    with pytest.raises(FileFormatError, match=r"l\.pt: 'labels' is a list, not a tensor"):
        read_inputs(tmp_path / "l.pt")


# ---------------------------------------------------------------- auto-detection errors
def test_both_logits_and_probs_is_an_error_naming_the_flags(tmp_path):
    z, y = logits_labels()
    path = tmp_path / "both.npz"
    np.savez(path, logits=z, probs=np.full_like(z, 0.25), labels=y)
    with pytest.raises(FileFormatError, match=r"both\.npz: found more than one kind of model "
                       r"output \(logits: 'logits'; probs: 'probs'\); trueprob never guesses "
                       r"which is meant: pass logits= \(CLI: --logits\) or probs= "
                       r"\(CLI: --probs\)"):
        read_inputs(path)
    assert_same(read_inputs(path, probs="probs"),
                {"probs": np.full_like(z, 0.25), "labels": y})


def test_neither_logits_nor_probs_in_a_table(tmp_path):
    path = write_csv(tmp_path / "none.csv", ["score_0", "score_1", "labels"], [[0.1, 0.9, 1]])
    with pytest.raises(FileFormatError, match=r"none\.csv: no model outputs found: no column "
                       r"named 'logits' or 'probs' \(or columns logit_\* / prob_\*\).*"
                       r"'score_0', 'score_1', 'labels'"):
        read_inputs(path)
    got = read_inputs(path, probs="score_*")
    assert_same(got, {"probs": np.array([[0.1, 0.9]]), "labels": np.array([1])})


def test_top_label_mode_is_auto_detected_and_targets_are_optional(tmp_path):
    path = tmp_path / "top.npz"
    np.savez(path, confidences=np.array([0.9, 0.6]), predictions=np.array([1, 0]))
    assert_same(read_inputs(path), {"confidences": np.array([0.9, 0.6]),
                                    "predictions": np.array([1, 0])})


def test_several_kinds_of_targets_is_an_error(tmp_path):
    z, y = logits_labels(n=3, k=2)
    path = tmp_path / "t.npz"
    np.savez(path, logits=z, labels=y, counts=np.ones((3, 2), int))
    with pytest.raises(FileFormatError, match=r"t\.npz: found more than one kind of target "
                       r"\(labels: 'labels'; counts: 'counts'\); pass one of labels= "
                       r"\(CLI: --labels\), counts= \(CLI: --counts\)"):
        read_inputs(path)
    assert set(read_inputs(path, counts="counts")) == {"logits", "counts"}


# ---------------------------------------------------------------- file errors
def test_missing_named_field_and_unmatched_glob(tmp_path):
    z, y = logits_labels()
    path = tmp_path / "a.npz"
    np.savez(path, logits=z, labels=y)
    with pytest.raises(FileFormatError, match=r"a\.npz: labels: no array named 'y'; arrays in "
                       r"the file: 'logits', 'labels'"):
        read_inputs(path, labels="y")
    with pytest.raises(FileFormatError, match=r"a\.npz: logits: the pattern 'z_\*' matches no "
                       r"array"):
        read_inputs(path, logits="z_*")
    csv_path = write_csv(tmp_path / "a.csv", ["y1", "y2", "logits"], [[0, 1, 0.5]])
    with pytest.raises(FileFormatError, match=r"a\.csv: labels is one column, but 'y\*' "
                       r"selects 2: 'y1', 'y2'"):
        read_inputs(csv_path, labels="y*")


def test_rows_mismatched_between_fields(tmp_path):
    z, y = logits_labels(n=10)
    path = tmp_path / "m.npz"
    np.savez(path, logits=z, labels=y[:9])
    with pytest.raises(FileFormatError, match=r"m\.npz: the fields have different numbers of "
                       r"rows: 'logits' has 10, 'labels' has 9"):
        read_inputs(path)


def test_truncated_and_corrupt_npz(tmp_path):
    z, y = logits_labels(n=200)
    good = tmp_path / "good.npz"
    np.savez(good, logits=z, labels=y)
    data = good.read_bytes()
    cut = tmp_path / "cut.npz"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(FileFormatError, match=r"cut\.npz: not a readable \.npz archive"):
        read_inputs(cut)
    # flip bytes inside the logits data, leaving the zip directory intact: the CRC catches it
    flipped = bytearray(data)
    start = data.index(b"NUMPY") + 200
    flipped[start:start + 8] = bytes(8)
    bad = tmp_path / "bad.npz"
    bad.write_bytes(bytes(flipped))
    with pytest.raises(FileFormatError, match=r"bad\.npz: array 'logits'.*corrupt.*CRC"):
        read_inputs(bad)
    compressed = tmp_path / "c.npz"
    np.savez_compressed(compressed, logits=z, labels=y)
    garbled = bytearray(compressed.read_bytes())
    middle = len(garbled) // 3
    garbled[middle:middle + 64] = bytes(range(64))
    (tmp_path / "g.npz").write_bytes(bytes(garbled))
    with pytest.raises(FileFormatError, match=r"g\.npz: .*(corrupt|not a valid \.npy)"):
        read_inputs(tmp_path / "g.npz")


def test_truncated_and_foreign_npy(tmp_path):
    z, _ = logits_labels(n=100)
    good = tmp_path / "logits.npy"
    np.save(good, z)
    data = good.read_bytes()
    (tmp_path / "cut").mkdir()
    cut = tmp_path / "cut" / "logits.npy"
    cut.write_bytes(data[:-10])
    with pytest.raises(FileFormatError, match=r"logits\.npy: the file is truncated \(expected "
                       r"1600 more bytes of data, found 1590: its header says shape \(100, 4\) "
                       r"of float32\)"):
        read_inputs(cut)
    text = tmp_path / "text.npy"
    text.write_text("logits,labels\n")
    with pytest.raises(FileFormatError, match=r"text\.npy: not a valid \.npy array"):
        read_inputs(text)


def test_pickle_inside_npz_is_refused_and_never_unpickled(tmp_path):
    marker = tmp_path / "unpickled"
    objects = np.empty(2, dtype=object)
    objects[:] = [_Payload(str(marker)), _Payload(str(marker))]
    path = tmp_path / "evil.npz"
    np.savez(path, logits=np.zeros((2, 2)), labels=objects)
    with pytest.raises(FileFormatError, match=r"evil\.npz: array 'labels' holds Python objects "
                       r"\(a pickle\); trueprob never unpickles"):
        read_inputs(path)
    # an object array that is not asked for is never touched
    other = tmp_path / "other.npz"
    np.savez(other, logits=np.zeros((2, 2)), labels=np.array([0, 1]), notes=objects)
    assert_same(read_inputs(other), {"logits": np.zeros((2, 2)), "labels": np.array([0, 1])})
    npy = tmp_path / "logits.npy"
    np.save(npy, objects)
    with pytest.raises(FileFormatError, match=r"logits\.npy: holds Python objects \(a pickle\)"):
        read_inputs(npy)
    assert not marker.exists()


def test_non_numeric_and_badly_shaped_arrays(tmp_path):
    path = tmp_path / "s.npz"
    np.savez(path, logits=np.zeros((2, 2)), labels=np.array(["cat", "dog"]))
    with pytest.raises(FileFormatError, match=r"s\.npz: array 'labels' has dtype <U3, not "
                       r"numbers"):
        read_inputs(path)
    np.savez(path, logits=np.zeros((2, 2)), labels=np.zeros((2, 2), int))
    with pytest.raises(FileFormatError, match=r"s\.npz: labels: 'labels' has shape \(2, 2\); "
                       r"expected \(N,\), one value per row"):
        read_inputs(path)
    np.savez(path, logits=np.zeros((2, 2)), labels=np.int64(3))
    with pytest.raises(FileFormatError, match=r"s\.npz: array 'labels' is a single number"):
        read_inputs(path)
    np.savez(path, a=np.zeros((2, 2)), b=np.zeros((2, 2)), labels=np.zeros(2, int))
    with pytest.raises(FileFormatError, match=r"s\.npz: logits: to combine several arrays/"
                       r"columns into one \(N, K\) array each must hold one value per row, but "
                       r"'a' has shape \(2, 2\)"):
        read_inputs(path, logits="a,b")


@pytest.mark.parametrize(("text", "message"), [
    ("", r"the file is empty; expected a header row"),
    ("1,2,3\n4,5,6\n", r"the first line \(1,2,3\) holds numbers, not column names; a header "
                       r"row naming the columns is required"),
    ("logits,labels\n0.5,1\n0.25\n", r"line 3 has 1 fields but the header has 2"),
    ("logits,labels\n0.5,1\nhigh,0\n", r"column 'logits', line 3: 'high' is not a number"),
    ("logits,labels\n0.5,1\n,0\n", r"column 'logits', line 3: '' is not a number"),
    ("logits,labels\n0.5,1\n0.5,x\n", r"column 'labels', line 3: 'x' is not a number"),
    ("logits,logits,labels\n0.5,1,0\n", r"column 'logits' appears more than once"),
])
def test_bad_csv(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(FileFormatError, match=r"bad\.csv: " + message):
        read_inputs(path)


def test_binary_file_named_csv(tmp_path):
    path = tmp_path / "bin.csv"
    path.write_bytes(b"\xff\xfe\x00\x01\x80\x81")
    with pytest.raises(FileFormatError, match=r"bin\.csv: not a readable CSV file"):
        read_inputs(path)


def test_unsupported_suffix_and_bad_arguments(tmp_path):
    with pytest.raises(FileFormatError, match=r"x\.txt: unsupported file type '\.txt'; "
                       r"supported: \.npz, \.npy, \.csv"):
        read_inputs(tmp_path / "x.txt")
    with pytest.raises(FileNotFoundError):
        read_inputs(tmp_path / "missing.npz")
    with pytest.raises(ValueError, match=r"batch_rows must be a positive integer; got 0"):
        iter_inputs(tmp_path / "x.npz", batch_rows=0)
    with pytest.raises(TypeError, match=r"logits must be a name, a glob or a comma-separated "
                       r"list of names \(str\), or a list of them; got 3"):
        read_inputs(tmp_path / "x.npz", logits=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"path must be a file path"):
        read_inputs(3)  # type: ignore[arg-type]


def test_arrays_feed_evaluate(tmp_path):
    import trueprob

    z, y = logits_labels(n=50, k=3, dtype=np.float64)
    path = tmp_path / "e.npz"
    np.savez(path, logits=z, labels=y)
    arrays = read_inputs(path)
    report = trueprob.evaluate(arrays.pop("labels", None), **arrays)
    assert report.to_dict() == trueprob.evaluate(y, logits=z).to_dict()


def _npy_header(shape, descr="<f4"):
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False,
                                               "shape": shape})
    return buf.getvalue()


@pytest.mark.parametrize("stream", [False, True])
def test_a_header_promising_more_than_the_file_holds_is_refused_before_allocating(tmp_path,
                                                                                 stream):
    import zipfile

    # 10**12 x 4 float32 is 16 TB: allocating first would raise MemoryError (a traceback)
    npy = tmp_path / "logits.npy"
    npy.write_bytes(_npy_header((10**12, 4)) + bytes(16))
    npz = tmp_path / "bomb.npz"
    with zipfile.ZipFile(npz, "w") as z:
        z.writestr("logits.npy", _npy_header((10**12, 4)) + bytes(16))
        z.writestr("labels.npy", _npy_header((10**12,), "<i8") + bytes(8))
    if stream:
        with pytest.raises(FileFormatError, match=r"bomb\.npz: array 'logits': the file is "
                           r"truncated \(expected 16000000000000 more bytes of data, found 16: "
                           r"its header says shape \(1000000000000, 4\) of float32\)"):
            next(iter(iter_inputs(npz, batch_rows=1000)))
        return
    with pytest.raises(FileFormatError, match=r"logits\.npy: the file is truncated "
                       r"\(expected 16000000000000 more bytes of data, found 16"):
        read_inputs(npy, logits="*", labels=None)
    with pytest.raises(FileFormatError, match=r"bomb\.npz: array 'logits': .*found 16:"):
        read_inputs(npz)


@pytest.mark.parametrize(("conf", "pred"), [("confidence", "preds"),
                                            ("confidences", "predictions"),
                                            ("confidence", "prediction")])
def test_top_label_files_are_recognised_by_their_usual_names(tmp_path, conf, pred):
    path = tmp_path / "top.npz"
    np.savez(path, labels=np.array([0, 1, 1]), **{conf: np.array([0.9, 0.6, 0.7]),
                                                 pred: np.array([0, 1, 0])})
    got = read_inputs(path)
    np.testing.assert_array_equal(got["confidences"], [0.9, 0.6, 0.7])
    np.testing.assert_array_equal(got["predictions"], [0, 1, 0])


def test_two_candidate_prediction_names_are_not_guessed(tmp_path):
    path = tmp_path / "top.npz"
    np.savez(path, labels=np.array([0, 1]), confidence=np.array([0.9, 0.6]),
             preds=np.array([0, 1]), predictions=np.array([0, 1]))
    with pytest.raises(FileFormatError, match=r"no model outputs found.*--confidences"):
        read_inputs(path)
