"""trueprob.coding: exact round trips, the proven length bound, odd inputs, clear errors."""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.special import log_softmax

from trueprob import coding


def _ideal_bits(labels: np.ndarray, logits: np.ndarray) -> float:
    """sum_i -log2 q_{i, y_i} from scipy's log_softmax (a second implementation)."""
    if labels.size == 0:
        return 0.0
    lq = log_softmax(np.asarray(logits, dtype=np.float64), axis=1)
    return float(-lq[np.arange(labels.size), labels].sum() / np.log(2.0))


def _sample(rng: np.random.Generator, n: int, k: int, scale: float = 3.0):
    z = rng.normal(size=(n, k)) * scale
    q = np.exp(log_softmax(z, axis=1))
    y = np.minimum((q.cumsum(1) < rng.random(n)[:, None]).sum(1), k - 1).astype(np.int64)
    return z, y


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 60), k=st.integers(1, 40),
       scale=st.sampled_from([0.0, 1.0, 5.0, 40.0]))
def test_round_trip_and_bound(seed, n, k, scale):
    rng = np.random.default_rng(seed)
    z, y = _sample(rng, n, k, scale)
    y = rng.integers(0, k, size=n)  # any labels, not only likely ones
    data = coding.encode(y, logits=z)
    assert np.array_equal(coding.decode(data, logits=z), y)
    assert 8 * len(data) <= _ideal_bits(y, z) + coding.overhead_bound(n, k)


def test_hand_case_dyadic():
    # q = (1/2, 1/4, 1/4): labels 0,0,1,2 cost 1 + 1 + 2 + 2 = 6 bits -> one byte
    q = np.array([[0.5, 0.25, 0.25]] * 4)
    y = np.array([0, 0, 1, 2])
    data = coding.encode(y, probs=q)
    assert len(data) == 1
    assert coding.decode(data, probs=q).tolist() == [0, 0, 1, 2]


def test_tiny_probabilities_still_encode():
    k = 5
    q = np.full((6, k), 1e-12)
    q[:, 0] = 1.0 - (k - 1) * 1e-12
    y = np.array([1, 0, 4, 0, 0, 3])  # three labels of probability 1e-12
    data = coding.encode(y, probs=q)
    assert np.array_equal(coding.decode(data, probs=q), y)
    # each unlikely label gets one count of 2**32: at most 32 bits, not 40 = -log2 1e-12
    assert 8 * len(data) <= 3 * 32 + 8
    # exact zeros too (the ideal length is infinite; the code is not)
    q0 = np.array([[1.0, 0.0], [0.0, 1.0]])
    y0 = np.array([1, 0])
    assert np.array_equal(coding.decode(coding.encode(y0, probs=q0), probs=q0), y0)


def test_many_classes_and_speed(rng):
    z, y = _sample(rng, 10_000, 100)
    start = time.perf_counter()
    data = coding.encode(y, logits=z)
    out = coding.decode(data, logits=z)
    elapsed = time.perf_counter() - start
    assert np.array_equal(out, y)
    assert elapsed < 5.0  # measured 0.3 s on a shared 2-core machine
    z, y = _sample(rng, 300, 1000)
    data = coding.encode(y, logits=z)
    assert np.array_equal(coding.decode(data, logits=z), y)
    assert 8 * len(data) < _ideal_bits(y, z) + coding.overhead_bound(300, 1000)


def test_two_classes_and_binary_column(rng):
    z, y = _sample(rng, 500, 2)
    data = coding.encode(y, logits=z)
    assert np.array_equal(coding.decode(data, logits=z), y)
    # the binary form: the positive-class logit z1 - z0 gives the same distribution
    s = z[:, 1] - z[:, 0]
    data1 = coding.encode(y, logits=s)
    assert np.array_equal(coding.decode(data1, logits=s), y)
    assert abs(len(data1) - len(data)) <= 1
    p = 1.0 / (1.0 + np.exp(-s))
    assert np.array_equal(coding.decode(coding.encode(y, probs=p), probs=p), y)


def test_zero_one_rows_and_one_class():
    assert coding.encode(np.array([], dtype=int), logits=np.zeros((0, 3))) == b""
    out = coding.decode(b"", logits=np.zeros((0, 3)))
    assert out.dtype == np.int64 and out.shape == (0,)
    with pytest.raises(ValueError, match="0 rows"):
        coding.decode(b"\x01", logits=np.zeros((0, 3)))
    z = np.array([[0.0, 3.0, -1.0]])
    for label in range(3):
        data = coding.encode([label], logits=z)
        assert coding.decode(data, logits=z).tolist() == [label]
    # K = 1: every label is certain; the code is empty
    assert coding.encode([0, 0, 0], logits=np.zeros((3, 1))) == b""
    assert coding.decode(b"", logits=np.zeros((3, 1))).tolist() == [0, 0, 0]


def test_dtypes_and_torch(rng):
    torch = pytest.importorskip("torch")
    z, y = _sample(rng, 400, 7)
    z32 = z.astype(np.float32)
    d64 = coding.encode(y, logits=z)
    d32 = coding.encode(y, logits=z32)
    assert np.array_equal(coding.decode(d32, logits=z32), y)
    # torch: the same bytes as numpy for the same values; decode returns a tensor
    dt = coding.encode(torch.from_numpy(y), logits=torch.from_numpy(z))
    assert dt == d64
    out = coding.decode(dt, logits=torch.from_numpy(z))
    assert isinstance(out, torch.Tensor) and out.dtype == torch.int64
    assert torch.equal(out, torch.from_numpy(y))
    zb = torch.from_numpy(z32).to(torch.bfloat16)
    db = coding.encode(y, logits=zb)
    assert torch.equal(coding.decode(db, logits=zb), torch.from_numpy(y))
    q = torch.softmax(torch.from_numpy(z32), dim=1)
    assert torch.equal(coding.decode(coding.encode(y, probs=q), probs=q), torch.from_numpy(y))


@given(seed=st.integers(0, 2**32 - 1))
def test_wrong_model_raises_or_differs(seed):
    rng = np.random.default_rng(seed)
    z, y = _sample(rng, 200, 10)
    data = coding.encode(y, logits=z)
    other = rng.normal(size=z.shape) * 3
    message = ""
    try:
        out = coding.decode(data, logits=other)
    except ValueError as exc:
        message = str(exc)
    else:
        assert not np.array_equal(out, y)
    assert message == "" or "not a code of labels under these predictions" in message
    # corrupted bytes: a ValueError or some labels, nothing else
    junk = bytes(rng.integers(0, 256, size=len(data) + 3).astype(np.uint8))
    message = ""
    try:
        coding.decode(junk, logits=z)
    except ValueError as exc:
        message = str(exc)
    assert message == "" or "not a code of labels" in message


def test_trailing_bytes_are_rejected(rng):
    z, y = _sample(rng, 50, 4)
    data = coding.encode(y, logits=z)
    with pytest.raises(ValueError, match="bytes given but the code of 50 labels ends after"):
        coding.decode(data + b"\x07" * 40, logits=z)


def test_errors_name_the_argument():
    z = np.zeros((3, 4))
    with pytest.raises(TypeError, match="exactly one of logits= or probs=; got neither"):
        coding.encode([0, 1, 2])
    with pytest.raises(TypeError, match="got both"):
        coding.encode([0, 1, 2], logits=z, probs=z + 0.25)
    with pytest.raises(ValueError, match=r"labels must be in 0..3 \(K=4\); row 1 is 4"):
        coding.encode([0, 4, 2], logits=z)
    with pytest.raises(ValueError, match="labels has 2 rows but the predictions have 3"):
        coding.encode([0, 1], logits=z)
    with pytest.raises(ValueError, match=r"labels must be integer class indices; row 2 is 0\.5"):
        coding.encode(np.array([0.0, 1.0, 0.5]), logits=z)
    bad = z.copy()
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"logits must be finite .* row 2"):
        coding.encode([0, 1, 2], logits=bad)
    with pytest.raises(ValueError, match=r"probs rows must sum to 1 .* row 0 sums to 0\.8"):
        coding.encode([0, 1, 2], probs=np.array([[0.2, 0.6], [0.5, 0.5], [0.5, 0.5]]))
    with pytest.raises(ValueError, match=r"probs must be in \[0, 1\]; row 1"):
        coding.encode([0, 1], probs=np.array([[0.5, 0.5], [1.5, -0.5]]))
    with pytest.raises(TypeError, match="logits must be a floating-point array; got dtype int"):
        coding.encode([0, 1, 2], logits=np.zeros((3, 4), dtype=int))
    with pytest.raises(ValueError, match=r"logits must be \(N, K\), or \(N,\) for binary"):
        coding.encode([0], logits=np.zeros((1, 2, 2)))
    with pytest.raises(TypeError, match="data must be bytes"):
        coding.decode("abc", logits=z)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="labels must be 1-D"):
        coding.encode(np.zeros((3, 1), dtype=int), logits=z)


@pytest.mark.data
def test_length_equals_cross_entropy_on_real_models(shared_data):
    files = sorted((shared_data / "mukhoti2020-cifar-logits").glob("*_test.npz"))
    assert len(files) == 12
    for f in files:
        d = np.load(f)
        z, y = d["logits"], d["labels"]
        data = coding.encode(y, logits=z)
        assert np.array_equal(coding.decode(data, logits=z), y), f.name
        ideal = _ideal_bits(y, z)
        bits = 8 * len(data)
        assert bits <= ideal * 1.001 + 64, f.name
        assert bits < ideal + coding.overhead_bound(*z.shape), f.name


def test_import_pulls_no_torch():
    import subprocess
    import sys

    code = "import sys, trueprob.coding; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"
