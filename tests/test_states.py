"""The three mergeable states share one merge / bytes implementation (MergeableState).

Bytes written by the code before that base existed (tests/reference/states, made by
make_states.py at the commit named in expected.json) must still load to the same report, and
every unreadable input must raise StateFormatError (a ValueError) naming what is wrong.
"""

from __future__ import annotations

import gzip
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from trueprob.core.binning import Binning
from trueprob.multilabel.stats import MultilabelStats
from trueprob.regression import Gaussian, RegressionStats
from trueprob.stats import BinnedStats, EvaluationStats, MergeableState, StateFormatError

HERE = Path(__file__).parent / "reference" / "states"
EXPECTED = json.loads((HERE / "expected.json").read_text())["reports"]
CLASSES = {"evaluation": EvaluationStats, "multilabel": MultilabelStats,
           "regression": RegressionStats}


def _class_of(name: str) -> type[MergeableState]:
    return CLASSES[name.split("_")[0]]


def _old(name: str) -> bytes:
    return gzip.decompress((HERE / f"{name}.npz.gz").read_bytes())


def _states() -> dict[str, MergeableState]:
    rng = np.random.default_rng(3)
    z, y = rng.normal(size=(20, 3)), rng.integers(0, 3, 20)
    yl = (rng.uniform(size=(20, 2)) < 0.5).astype(int)
    yr = rng.normal(size=20)
    return {"evaluation": EvaluationStats(3, n_bins=4).update(y, logits=z),
            "multilabel": MultilabelStats(2, n_bins=4).update(yl, logits=z[:, :2]),
            "regression": RegressionStats().update(yr, Gaussian(mean=np.zeros(20), std=1.0))}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bytes_written_before_the_base_class_still_load(name):
    cls = _class_of(name)
    state = cls.from_bytes(_old(name))
    assert type(state) is cls
    again = cls.from_bytes(state.to_bytes())
    if EXPECTED[name] is None:  # an empty state: no rows, settings kept
        assert state._xp is None and again._xp is None
        assert state._settings() == again._settings()
        return
    assert json.loads(state.finalize().to_json()) == EXPECTED[name]
    assert json.loads(again.finalize().to_json()) == EXPECTED[name]
    # merging with an empty state of the same settings changes nothing
    empty = cls.from_bytes(state._empty_like().to_bytes())
    assert json.loads(state.merge(empty).finalize().to_json()) == EXPECTED[name]


def test_a_state_keeping_some_parts_writes_no_objects_and_reads_back():
    # before the base, a part never updated was written as a pickled None (an object member
    # that np.load(allow_pickle=False) refuses): such states could not be read back
    old = _old("evaluation_parts")
    with pytest.raises(ValueError, match="Object arrays"), \
            np.load(io.BytesIO(old), allow_pickle=False) as archive:
        [archive[k] for k in archive.files]
    state = EvaluationStats.from_bytes(old)  # the None members are read as absent parts
    blob = state.to_bytes()
    with np.load(io.BytesIO(blob), allow_pickle=False) as archive:
        assert sorted(archive.files) == sorted(
            ["header", "sums", "counts"] + [f"{p}.{f}" for p in ("top_label", "classwise")
                                            for f in ("count", "weight", "sum_score",
                                                      "sum_outcome")])
    assert EvaluationStats.from_bytes(blob).finalize().to_dict() == state.finalize().to_dict()


def _members(blob: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(blob)) as archive:
        return {i.filename: archive.read(i) for i in archive.infolist()}


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as archive:
        for name, raw in members.items():
            archive.writestr(name, raw)
    return buf.getvalue()


def _npy_header(shape: tuple[int, ...], dtype: str) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": np.dtype(dtype).str, "fortran_order": False, "shape": shape})
    return buf.getvalue()


def _with_header(blob: bytes, **changes: object) -> bytes:
    members = _members(blob)
    header = np.load(io.BytesIO(members["header.npy"]))
    values = json.loads(header.tobytes().decode())
    values.update(changes)
    buf = io.BytesIO()
    np.save(buf, np.frombuffer(json.dumps(values).encode(), dtype=np.uint8))
    members["header.npy"] = buf.getvalue()
    return _zip(members)


@pytest.mark.parametrize("kind", sorted(CLASSES))
def test_unreadable_bytes_raise_one_error_naming_the_problem(kind):
    cls = CLASSES[kind]
    blob = _states()[kind].to_bytes()
    what = cls.WHAT
    cases = {
        "truncated": (blob[: len(blob) // 2], f"not a {what}"),
        "not an archive": (b"not an npz", f"not a {what}"),
        "empty": (b"", f"not a {what}"),
        "newer": (_with_header(blob, version=99), "version 99 is newer"),
        "other format": (_with_header(blob, format="x"), "wrong format header"),
    }
    members = _members(blob)
    first = next(k for k in members if k != "header.npy")
    cases["member missing"] = (_zip({k: v for k, v in members.items() if k != first}),
                               "do not match the header")
    cases["member extra"] = (_zip({**members, "extra.npy": members[first]}),
                             "do not match the header")
    # a member whose .npy header claims 10**12 float64 values but holds 8 bytes: refused
    # before anything is allocated (was a MemoryError or a huge allocation)
    cases["huge shape"] = (_zip({**members, first: _npy_header((10**12,), "<f8") + b"\0" * 8}),
                           "declares shape")
    cases["short member"] = (_zip({**members, first: _npy_header((4,), "<f8") + b"\0" * 8}),
                             "is truncated")
    cases["object member"] = (_zip({**members, first: _npy_header((2,), "|O") + b"\0" * 16}),
                              "holds Python objects")
    cases["wrong shape"] = (_zip({**members, first: _npy_header((3, 3), "<f8") + b"\0" * 72}),
                            "has shape")
    buf = io.BytesIO()
    np.savez_compressed(buf, **{k[:-4]: np.load(io.BytesIO(v)) for k, v in members.items()})
    cases["compressed"] = (buf.getvalue(), "compressed")
    for data, message in cases.values():
        with pytest.raises(StateFormatError, match=message):
            cls.from_bytes(data)
    missing_key = next(k for k in json.loads(np.load(io.BytesIO(members["header.npy"]))
                                             .tobytes().decode()) if k not in
                       ("format", "version", "empty"))
    members_h = _members(blob)
    values = json.loads(np.load(io.BytesIO(members_h["header.npy"])).tobytes().decode())
    del values[missing_key]
    hb = io.BytesIO()
    np.save(hb, np.frombuffer(json.dumps(values).encode(), dtype=np.uint8))
    with pytest.raises(StateFormatError, match="header is incomplete or invalid"):
        cls.from_bytes(_zip({**members_h, "header.npy": hb.getvalue()}))
    with pytest.raises(TypeError, match="data must be bytes"):
        cls.from_bytes("text")  # type: ignore[arg-type]
    assert issubclass(StateFormatError, ValueError)


def test_a_huge_header_is_refused_without_allocating():
    # the header claims 10**9 classes; the arrays are those of 3: a shape error, no MemoryError
    blob = _with_header(_states()["evaluation"].to_bytes(), n_classes=10**9)
    with pytest.raises(StateFormatError, match="has shape"):
        EvaluationStats.from_bytes(blob)


def test_merge_is_shared_and_checks_type_and_settings():
    states = _states()
    with pytest.raises(TypeError, match="can only merge EvaluationStats; got MultilabelStats"):
        states["evaluation"].merge(states["multilabel"])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cannot merge states with different settings"):
        states["multilabel"].merge(MultilabelStats(2, n_bins=5))
    for state in states.values():
        doubled = state + state
        for name in state._slots():
            np.testing.assert_array_equal(getattr(doubled, name), 2 * getattr(state, name))


def test_binned_stats_travel_as_bytes_too():
    state = BinnedStats(Binning(3, "left", (0.0, 0.2, 0.7, 1.0)), groups=2, blocks=2)
    assert BinnedStats.from_bytes(state.to_bytes())._xp is None
    idx = np.array([0, 5, 5, 11])
    state.add(np, None, idx, np.array([0.1, 0.9, 0.8, 0.95]), np.array([0.0, 1.0, 1.0, 0.0]),
              np.array([1.0, 2.0, 0.0, 1.0]))
    back = BinnedStats.from_bytes(state.to_bytes())
    assert back._settings() == state._settings()
    for name, arr in back.block_arrays().items():
        np.testing.assert_array_equal(arr, state.block_arrays()[name])
    # cell 5: two rows, one of weight 0 (counted as dropped)
    assert back.count.tolist() == [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1]
    assert back.sum_score[5] == pytest.approx(1.8)
    with pytest.raises(StateFormatError, match="groups must be a positive integer"):
        BinnedStats.from_bytes(_with_header(state.to_bytes(), groups=0))
