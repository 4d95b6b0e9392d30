"""Arithmetic coding of labels with a model's predicted distribution: cross-entropy as a length.

The log loss in bits, ``sum_i -log2 q_{i, y_i}``, is the length of the shortest code for the
labels that a receiver who knows the model's predictions can decode (Shannon 1948). This module
makes that literal: :func:`encode` turns the labels into bytes with a range coder driven by each
row's predicted distribution q_i, and :func:`decode` recovers them exactly from the bytes and the
same predictions. The measured length is the model's cross-entropy up to the bound below.

Precision
---------
Integer arithmetic only (Python integers; no floating point in the coding loop, so the encoder
and decoder agree bit for bit on every machine):

- each row's probabilities are quantised to integer frequencies with total T = 2**32,
  ``f_ik = 1 + floor(q_ik * (T - K))``, the few counts left over going to the row's most
  probable class. Every class gets at least one count, so a label of probability 1e-12 (or 0)
  still encodes (it costs at most 32 bits), and ``f_ik / T > q_ik (1 - K/T)`` for every k;
- the coder's range register holds 64 bits and is renormalised a byte at a time so that it
  never falls below 2**56 before a symbol; a symbol with cumulative count ``F`` and count ``f``
  narrows the range R to ``(R // T) * f``, a fraction at least ``(f/T)(1 - T/R)`` of it;
- termination writes the shortest byte string that identifies a number inside the final
  interval (trailing zero bytes are dropped; the decoder reads missing bytes as zeros).

Overhead bound (proved in the comments of :func:`_encode_rows`): for N >= 1 rows,

    8 * len(encode(y, probs=q))  <  sum_i -log2 q_{i, y_i}  +  N * eps_K  +  8,
    eps_K = -log2(1 - K / 2**32) - log2(1 - 2**-24)   (about (K * 2.3e-10 + 6e-8) / ln 2 bits),

where q is the float64 softmax of the logits (or the given probabilities renormalised). For
10,000 rows of 100 classes N * eps_K is 0.0012 bit: the only visible overhead is the last
byte. Zero rows encode to ``b""``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from trueprob._array import is_array, namespace, to_numpy
from trueprob._validation import _check_labels, check_finite, check_range, sum_tolerance

#: Bits of the coder's range register.
STATE_BITS = 64
#: log2 of the frequency total T every row is quantised to.
FREQ_BITS = 32
#: The most classes a row may have (keeps eps_K below 3.5e-4 bit per row).
MAX_CLASSES = 1 << 20

_T = 1 << FREQ_BITS
_TOP = 1 << (STATE_BITS - 8)  # the range is renormalised (shifted by a byte) below this
_LOW_MASK = _TOP - 1
_FULL = (1 << STATE_BITS) - 1
#: Rows per quantisation chunk: one (rows x K) temporary holds about this many elements.
_CHUNK_ELEMENTS = 1 << 19


def overhead_bound(n_rows: int, n_classes: int) -> float:
    """The proven bound on ``8 * len(encode(...)) - sum_i -log2 q_{i, y_i}``, in bits.

    ``n_rows * eps_K + 8`` with ``eps_K = -log2(1 - K / 2**32) - log2(1 - 2**-24)`` (module
    docstring); 0 for zero rows.

    >>> round(overhead_bound(10_000, 100), 6)
    8.001196
    """
    if n_rows == 0:
        return 0.0
    eps = -np.log2(1.0 - n_classes / _T) - np.log2(1.0 - 2.0 ** -24)
    return float(n_rows * eps + 8.0)


def encode(labels: object, *, logits: object = None, probs: object = None) -> bytes:
    """Compress ``labels`` with an arithmetic (range) coder driven by the model's predictions.

    Parameters
    ----------
    labels : (N,) integer array (numpy, torch or a list) of class indices in 0..K-1.
    logits : (N, K) floating array, q_i = softmax(z_i); or (N,) for binary, q_i = (1 - s, s)
        with s = sigmoid(z_i). Exactly one of ``logits=`` / ``probs=``.
    probs : (N, K) probabilities (rows summing to 1), or (N,) positive-class probabilities.

    Returns
    -------
    bytes whose length in bits is below ``sum_i -log2 q_{i, y_i} + N * eps_K + 8`` (module
    docstring; :func:`overhead_bound`). :func:`decode` with the same predictions returns the
    labels.

    Examples
    --------
    >>> import numpy as np
    >>> q = np.array([[0.5, 0.25, 0.25]] * 8)
    >>> y = np.array([0, 1, 2, 0, 0, 1, 0, 2])    # -log2 q_y: 4 x 1 + 4 x 2 = 12 bits
    >>> data = encode(y, probs=q)
    >>> len(data)                                  # 12 bits -> 2 bytes
    2
    >>> decode(data, probs=q).tolist()
    [0, 1, 2, 0, 0, 1, 0, 2]
    """
    scores, kind, _ = _scores(logits, probs)
    n, k = scores.shape
    y = _labels(labels, n, k)
    return _encode_rows(_quantised(scores, kind, y))


def decode(data: bytes, *, logits: object = None, probs: object = None) -> Any:
    """Recover the labels that :func:`encode` compressed, from the bytes and the same predictions.

    Parameters
    ----------
    data : the bytes returned by :func:`encode` (``bytes``, ``bytearray`` or ``memoryview``).
    logits, probs : the predictions ``encode`` was given (exactly one; the same values: the
        decoder repeats the encoder's quantisation, so other predictions give other labels).

    Returns
    -------
    (N,) int64 labels: a numpy array, or a torch tensor on the predictions' device when the
    predictions are a torch tensor.

    Raises
    ------
    ValueError when ``data`` cannot be a code under these predictions (a decoded value falls
    outside every class's interval, or bytes are left over after N labels). Decoding with
    other predictions than the encoder's either raises this or returns other labels; it
    never crashes.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes (the output of encode); got {type(data).__name__}")
    scores, kind, original = _scores(logits, probs)
    labels = _decode_rows(bytes(data), scores, kind)
    if original is not None and not isinstance(original, np.ndarray) and _is_torch(original):
        import torch

        device: Any = getattr(original, "device", None)
        return torch.from_numpy(labels).to(device)
    return labels


# ---------------------------------------------------------------------------------------------
# inputs


def _is_torch(x: object) -> bool:
    return type(x).__module__.split(".")[0] == "torch"


def _host_float(x: object, name: str) -> tuple[np.ndarray, Any]:
    """``x`` as a floating numpy array (float64 for torch tensors, bfloat16 included), and the
    input's own dtype (whose precision sets the row-sum tolerance of probabilities)."""
    if _is_torch(x):
        t: Any = x
        if not t.is_floating_point():
            raise TypeError(f"{name} must be a floating-point array; got dtype {t.dtype}")
        return np.asarray(t.detach().cpu().double().numpy()), t.dtype
    a = to_numpy(x) if is_array(x) else np.asarray(x)
    if a.dtype.kind != "f":
        raise TypeError(f"{name} must be a floating-point array; got dtype {a.dtype}")
    return a, a.dtype


def _scores(logits: object, probs: object) -> tuple[np.ndarray, str, object]:
    """Validated (N, K) float scores as numpy, their kind, and the original object."""
    if (logits is None) == (probs is None):
        got = "both" if logits is not None else "neither"
        raise TypeError(f"pass exactly one of logits= or probs=; got {got}")
    kind = "logits" if logits is not None else "probs"
    original = logits if logits is not None else probs
    x, dtype = _host_float(original, kind)
    if x.ndim == 1:  # binary: the positive class's logit or probability
        col = x.astype(np.float64)[:, None]
        x = np.concatenate([np.zeros_like(col) if kind == "logits" else 1.0 - col, col], axis=1)
    elif x.ndim != 2:
        raise ValueError(f"{kind} must be (N, K), or (N,) for binary; got shape {x.shape}")
    k = x.shape[1]
    if not 1 <= k <= MAX_CLASSES:
        raise ValueError(f"{kind} must have between 1 and {MAX_CLASSES} columns (classes); "
                         f"got K={k}")
    if x.shape[0]:
        xp = namespace(x)
        check_finite(xp, x, kind, 0)
        if kind == "probs":
            check_range(xp, x, 0.0, 1.0, kind, 0)
            tol = sum_tolerance(dtype, k)
            sums = x.sum(axis=1, dtype=np.float64)
            bad = np.flatnonzero(np.abs(sums - 1.0) > tol)
            if bad.size:
                raise ValueError(
                    f"probs rows must sum to 1 (tolerance {tol:.2g} for "
                    f"{str(dtype).rsplit('.', 1)[-1]} with K={k}); row {bad[0]} sums to "
                    f"{float(sums[bad[0]])!r}")
    return x, kind, original


def _labels(labels: object, n: int, k: int) -> np.ndarray:
    if labels is None:
        raise TypeError("labels are required (the class indices to encode)")
    y = to_numpy(labels) if is_array(labels) else np.asarray(labels)
    if y.dtype == object:
        raise TypeError("labels must be integer class indices; got an array of Python objects")
    if y.ndim != 1:
        raise ValueError(f"labels must be 1-D (one class index per row); got shape {y.shape}")
    if y.shape[0] != n:
        raise ValueError(f"labels has {y.shape[0]} rows but the predictions have {n}")
    if y.dtype.kind not in "biuf":
        raise TypeError(f"labels must be integer class indices; got dtype {y.dtype}")
    if n == 0:
        return y.astype(np.int64)
    return np.asarray(_check_labels(namespace(y), y, k, "labels", 0))


def _frequencies(scores: np.ndarray, kind: str) -> np.ndarray:
    """Integer frequencies f (n, K), int64, each row summing to T = 2**32, every entry >= 1.

    f_ik = 1 + floor(q_ik (T - K)) > q_ik (T - K), so f_ik / T > q_ik (1 - K/T); the remainder
    T - sum_k f_ik (between 0 and K, since each floor drops less than one count) goes to the
    row's largest entry, which only raises it.
    """
    k = scores.shape[1]
    if kind == "logits":
        z = scores - scores.max(axis=1, keepdims=True)  # largest exponent 0: no overflow
        q = np.exp(z)
        q /= q.sum(axis=1, keepdims=True)
    else:
        q = scores / scores.sum(axis=1, keepdims=True)
    f = np.floor(q * float(_T - k)).astype(np.int64)
    f += 1
    rest = _T - f.sum(axis=1)
    top = np.argmax(f, axis=1)
    f[np.arange(f.shape[0]), top] += rest
    # float rounding of q could make a floor round up past T - K; the correction then removes
    # a count or so from the largest entry, which holds about T/K >= 4096 of them
    assert (f >= 1).all()
    return f


def _chunks(scores: np.ndarray) -> Iterator[tuple[int, int]]:
    n, k = scores.shape
    step = max(1, _CHUNK_ELEMENTS // max(k, 1))
    for start in range(0, n, step):
        yield start, min(n, start + step)


def _quantised(scores: np.ndarray, kind: str, y: np.ndarray) -> Iterator[tuple[int, int]]:
    """(cumulative count below y_i, count of y_i) per row, as Python ints."""
    for start, stop in _chunks(scores):
        f = _frequencies(scores[start:stop], kind)
        cum = np.cumsum(f, axis=1) - f  # counts of the classes before each class
        rows = np.arange(stop - start)
        yy = y[start:stop]
        yield from zip(cum[rows, yy].tolist(), f[rows, yy].tolist(), strict=True)


# ---------------------------------------------------------------------------------------------
# the coder


def _encode_rows(symbols: Iterator[tuple[int, int]]) -> bytes:
    """Range coder (byte-wise renormalisation, carry propagated through pending 0xFF bytes).

    The coded number x is a binary fraction in [0, 1); the bytes are its fractional digits.
    ``low`` and ``rng`` describe the current interval [low, low + rng) in units of the byte
    window that has not been written yet. Proof of the bound in the module docstring:

    1. Interval width. The first symbol narrows 2**64 - 1 to ``(2**32 - 1) f``, a fraction
       (f/T)(1 - 2**-32) of the unit interval; every later one narrows R >= 2**56 to
       ``(R // T) f >= (R/T - 1) f``, a fraction >= (f/T)(1 - 2**-24); byte shifts rescale
       and change no width. So the final width W satisfies
       -log2 W <= sum_i [-log2(f_i/T) - log2(1 - 2**-24)] < sum_i -log2 q_i + N eps_K.
    2. Termination. Any interval of width W contains a multiple of 2**-b with
       b = ceil(-log2 W) < -log2 W + 1; the flush picks the value with the most trailing zero
       bits in [low, low + rng) (as rng >= 2**56, that is never limited by the window), so x
       has at most b fractional bits, and dropping trailing zero bytes leaves ceil(b/8) bytes,
       at most b + 7 bits: 8 * len < -log2 W + 8.
    """
    out = bytearray()
    low = 0
    rng = _FULL
    cache = 0  # the last byte not yet written: a carry may still add 1 to it
    pending = 1  # bytes held back: the cache plus 0xFF bytes a carry would turn into 0x00
    shift = STATE_BITS - 8

    def shift_low(low: int, cache: int, pending: int) -> tuple[int, int, int]:
        if low < (0xFF << shift) or low > _FULL:
            carry = low >> STATE_BITS
            out.append((cache + carry) & 0xFF)
            if pending > 1:
                out.extend(bytes([(0xFF + carry) & 0xFF]) * (pending - 1))
            pending = 0
            cache = (low >> shift) & 0xFF
        pending += 1
        return (low & _LOW_MASK) << 8, cache, pending

    n = 0
    for below, count in symbols:
        n += 1
        r = rng >> FREQ_BITS
        low += r * below
        rng = r * count
        while rng < _TOP:
            rng <<= 8
            low, cache, pending = shift_low(low, cache, pending)
    if n == 0:
        return b""
    # the value in [low, low + rng) with the most trailing zero bits
    m = STATE_BITS + 1
    while True:
        v = ((low + (1 << m) - 1) >> m) << m
        if v < low + rng:
            break
        m -= 1
    low = v
    for _ in range(STATE_BITS // 8 + 1):
        low, cache, pending = shift_low(low, cache, pending)
    # the first byte is x's integer part, always 0 (x < 1); trailing zeros are implied
    assert out[0] == 0
    return bytes(out[1:]).rstrip(b"\x00")


def _decode_rows(data: bytes, scores: np.ndarray, kind: str) -> np.ndarray:
    n = scores.shape[0]
    labels = np.empty(n, dtype=np.int64)
    if n == 0:
        if data:
            raise ValueError(f"data has {len(data)} bytes but the predictions have 0 rows: "
                             f"the code of zero labels is empty")
        return labels
    width = STATE_BITS // 8
    padded = data + bytes(width)
    pos = width
    code = int.from_bytes(padded[:width], "big")  # x - low, in window units
    rng = _FULL
    for start, stop in _chunks(scores):
        f = _frequencies(scores[start:stop], kind)
        cum = np.cumsum(f, axis=1)  # counts of the classes up to and including each class
        for j in range(stop - start):
            r = rng >> FREQ_BITS
            target = code // r
            if target >= _T:
                raise ValueError(
                    f"data is not a code of labels under these predictions: row {start + j} "
                    f"decodes outside every class's interval (were they encoded with other "
                    f"logits/probs?)")
            row = cum[j]
            s = int(np.searchsorted(row, target, side="right"))
            below = int(row[s - 1]) if s else 0
            labels[start + j] = s
            code -= r * below
            rng = r * (int(row[s]) - below)
            while rng < _TOP:
                if pos >= len(padded):  # past the stored bytes: the dropped zeros
                    padded += bytes(len(padded))
                code = (code << 8) | padded[pos]
                pos += 1
                rng <<= 8
    if len(data) > pos:
        raise ValueError(
            f"data is not a code of labels under these predictions: {len(data)} bytes given but "
            f"the code of {n} labels ends after {pos} (were they encoded with other "
            f"logits/probs?)")
    return labels
