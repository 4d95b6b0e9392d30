"""Per-row quantities of one validated chunk: the only place that touches (n, K) arrays.

Everything is computed in the namespace of the inputs. (n, K) temporaries stay in the input's
floating dtype; per-row reductions (sums over classes) are accumulated in float64, so float32
logits lose no accuracy in the log loss and Brier score beyond the rounding of each entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from trueprob._array import Array
from trueprob._validation import Chunk

#: numpy chunks with at most this many classes are worked on class-major, (K, n): every
#: reduction over classes is then K - 1 elementwise operations on contiguous rows of length n
#: instead of n reductions of length K (measured on 1M x 10 float32 logits: max 56 -> 2 ms,
#: exp 86 -> 43 ms, float64 row sums 34 -> 7 ms, argmax 50 -> 25 ms). With many classes the
#: rows are long and the row-major reductions are already efficient.
CLASS_MAJOR_MAX_K = 64


@dataclass(frozen=True)
class RowQuantities:
    """Per-row quantities in SPEC.md's notation (all float64 (n,) unless said otherwise).

    - ``probs``: q_i, (n, K) in the input dtype (``None`` in top-label mode);
    - ``targets``: t_i as float64 (n, K) for soft targets, ``None`` for hard labels;
    - ``confidence`` c_i = max_k q_ik; ``prediction`` yhat_i = argmax_k q_ik (int64, ties: lowest
      index); ``correct`` a_i = 1[yhat_i = y_i], or p_{i, yhat_i} for soft targets;
    - ``nll`` = -sum_k t_ik log q_ik in nats; ``brier`` = sum_k (q_ik - t_ik)^2;
    - ``entropy`` H(t_i) and ``kl`` KL(t_i || q_i) in nats (soft targets only).

    ``probs`` is always indexed (n, K); from the class-major numpy path it is the transposed
    view of a C-ordered (K, n) array (``probs.T`` is then C-contiguous), which
    :class:`~trueprob.stats.EvaluationStats` uses to reduce class by class.
    """

    probs: Array | None
    targets: Array | None
    confidence: Array
    prediction: Array
    correct: Array
    nll: Array | None
    brier: Array | None
    entropy: Array | None
    kl: Array | None


def _take(xp: Any, x: Array, index: Array) -> Array:
    """x[i, index[i]] for every row i."""
    return xp.take_along_axis(x, index[:, None], axis=1)[:, 0]


def safe_log(xp: Any, x: Array) -> Array:
    """log(x) with log(0) = -inf, without a divide-by-zero warning."""
    positive = x > 0
    return xp.where(positive, xp.log(xp.where(positive, x, xp.ones_like(x))), -xp.inf)


def _xlogx(xp: Any, t: Array) -> Array:
    """t * log(t) with 0 log 0 = 0."""
    positive = t > 0
    return xp.where(positive, t * xp.log(xp.where(positive, t, xp.ones_like(t))), 0.0)


def top_label_scores(xp: Any, confidence: Array, correct: Array) -> tuple[Array, Array]:
    """Per-row log loss (nats) and Brier score of the correctness event, float64 (n,).

    The binary scores of "the prediction is right" with probability c_i and outcome a_i
    (1[yhat_i = y_i], or t_{i, yhat_i} for soft targets):
    -[a_i log c_i + (1 - a_i) log(1 - c_i)] with 0 log 0 = 0, and (c_i - a_i)^2. A wrong
    prediction at confidence exactly 1 costs +inf (no clipping).

    >>> nll, brier = top_label_scores(np, np.array([0.8, 0.8, 1.0]), np.array([1.0, 0.0, 0.0]))
    >>> nll.round(4).tolist(), brier.round(4).tolist()
    ([0.2231, 1.6094, inf], [0.04, 0.64, 1.0])
    """
    c = xp.astype(confidence, xp.float64)
    a = xp.astype(correct, xp.float64)
    # the log is taken only where its weight is non-zero (0 log 0 = 0, not 0 * -inf = nan)
    right = a * safe_log(xp, xp.where(a > 0, c, 1.0))
    wrong = (1.0 - a) * safe_log(xp, xp.where(a < 1, 1.0 - c, 1.0))
    return -(right + wrong), (c - a) ** 2


def row_quantities(xp: Any, chunk: Chunk, *, need_scores: bool = True,
                   numpy_path: bool = True) -> RowQuantities:
    """Per-row quantities of ``chunk``; ``need_scores=False`` skips log loss and Brier.

    numpy chunks with hard labels take a numpy path with in-place buffers, class-major for at
    most :data:`CLASS_MAJOR_MAX_K` classes (same values up to the rounding of the float64
    row sums; ``probs`` then comes as a transposed view). ``numpy_path=False`` forces the
    array-API path that every namespace takes (the reference the numpy path is tested
    against). Every caller uses the same default, so states filled by different routes hold
    the same sums.
    """
    if numpy_path and _numpy_path_applies(chunk):
        return _numpy_rows(chunk, need_scores)
    f64 = xp.float64
    if chunk.kind == "confidences":
        conf = xp.astype(chunk.scores, f64)
        pred = chunk.predictions
        t = chunk.targets
        if t is None:
            correct = xp.astype(pred == chunk.labels, f64)
        else:
            correct = _take(xp, t, pred)
        return RowQuantities(None, t, conf, pred, correct, None, None, None, None)

    x = chunk.scores
    if chunk.kind == "logits":
        # softmax with the max subtracted: exp never overflows, and q_max = 1/s exactly.
        m = xp.max(x, axis=1, keepdims=True)
        e = xp.exp(x - m)
        s = xp.sum(e, axis=1, keepdims=True, dtype=f64)
        q = e / xp.astype(s, x.dtype)
        # log q_ik = (z_ik - m_i) - log s_i, kept in float64 and in that order: forming
        # logsumexp = m + log s first loses log s entirely when |m| is huge (m = 1e30)
        m64 = xp.astype(m, f64)
        log_s = xp.log(s)
        lse = m64 + log_s
    else:
        q = x
        lse = None

    pred = xp.argmax(q, axis=1)
    conf = xp.astype(_take(xp, q, pred), f64)
    nll = brier = entropy = kl = None
    t = chunk.targets
    if t is None:
        y = chunk.labels
        correct = xp.astype(pred == y, f64)
        if need_scores:
            q_y = xp.astype(_take(xp, q, y), f64)
            if lse is not None:
                # -log q_iy = (m_i - z_iy) + log s_i: exact from logits, no clipping
                nll = (m64[:, 0] - xp.astype(_take(xp, x, y), f64)) + log_s[:, 0]
            else:
                nll = -safe_log(xp, q_y)
            brier = xp.sum(q * q, axis=1, dtype=f64) - 2.0 * q_y + 1.0
    else:
        correct = _take(xp, t, pred)
        if need_scores:
            if lse is not None:
                # -sum_k t_k log q_k = logsumexp(z) - sum_k t_k z_k  (sum_k t_k = 1).
                # centred on m first (see above): sum_k t_k (m - z_k) + log s
                centred = xp.astype(x, f64) - m64
                nll = -xp.sum(t * centred, axis=1) + log_s[:, 0]
                logq = centred - log_s
                entropy = -xp.sum(_xlogx(xp, t), axis=1)
                kl = xp.sum(xp.where(t > 0, t * (_log_pos(xp, t) - logq), 0.0), axis=1)
            else:
                q64 = xp.astype(q, f64)
                logq = safe_log(xp, q64)
                impossible = xp.any((t > 0) & (q64 == 0), axis=1)
                finite_logq = xp.where(q64 > 0, logq, 0.0)
                cross = -xp.sum(xp.where(t > 0, t * finite_logq, 0.0), axis=1)
                entropy = -xp.sum(_xlogx(xp, t), axis=1)
                kl_part = xp.sum(xp.where(t > 0, t * (_log_pos(xp, t) - finite_logq), 0.0),
                                 axis=1)
                nll = xp.where(impossible, xp.inf, cross)
                kl = xp.where(impossible, xp.inf, kl_part)
            brier = xp.sum((xp.astype(q, f64) - t) ** 2, axis=1)
    return RowQuantities(q, t, conf, pred, correct, nll, brier, entropy, kl)


def _log_pos(xp: Any, t: Array) -> Array:
    """log(t) where t > 0, 0 elsewhere (the value is multiplied by t = 0 there)."""
    positive = t > 0
    return xp.log(xp.where(positive, t, xp.ones_like(t)))


def _numpy_path_applies(chunk: Chunk) -> bool:
    x = chunk.scores
    return (isinstance(x, np.ndarray) and chunk.kind in ("logits", "probs") and x.ndim == 2
            and chunk.targets is None and x.shape[1] >= 2
            and x.dtype in (np.float32, np.float64) and x.shape[0] > 0)


def _numpy_rows(chunk: Chunk, need_scores: bool) -> RowQuantities:
    """numpy, hard labels: the quantities of :func:`row_quantities` with in-place buffers.

    Same formulas and the same float operations entry by entry (softmax in the input dtype
    with the row maximum subtracted, q = e / float(s), s summed in float64, Brier from the
    squares in the input dtype summed in float64). With at most :data:`CLASS_MAJOR_MAX_K`
    classes the work runs on a (K, n) copy, where only the order of the K terms of the
    float64 row sums may differ from the row-major path. The prediction is the lowest k with
    q_ik = max_k q_ik, as ``argmax`` gives it.
    """
    x = chunk.scores
    n, k = x.shape
    rows = np.arange(n)
    y = np.asarray(chunk.labels)
    major = k <= CLASS_MAJOR_MAX_K
    ax = 0 if major else 1  # the class axis of the working buffer
    # the working buffer: (K, n) class-major or (n, K) row-major, overwritten in place
    # (a copy always: for a single row x.T is already C-contiguous and ascontiguousarray
    # would hand back the caller's array, which the in-place softmax would overwrite)
    buf = x.T.copy(order="C") if major else x
    z_y = m = s = None
    if chunk.kind == "logits":
        # x_iy from the input (the NLL uses it exactly)
        z_y = x.reshape(-1)[rows * k + y].astype(np.float64) if need_scores else None
        m = buf.max(axis=ax, keepdims=True)
        buf = np.subtract(buf, m, out=buf if major else None)
        np.exp(buf, out=buf)
        s = buf.sum(axis=ax, dtype=np.float64, keepdims=True)
        np.divide(buf, s.astype(x.dtype), out=buf)
    if major:
        conf = buf.max(axis=0)
        # argmax with ties to the lowest index: class j scores K - j where q_ij is the
        # maximum (0 elsewhere); the largest score is the lowest such class (K <= 64: uint8)
        key = (buf == conf).view(np.uint8)
        key *= (k - np.arange(k, dtype=np.uint8))[:, None]
        pred = k - key.max(axis=0).astype(np.int64)
    else:
        pred = buf.argmax(axis=1)  # contiguous rows of K values: numpy's loop is fast
        conf = buf.reshape(-1)[rows * k + pred]  # the maximum itself (no second pass)
    correct = (pred == y).astype(np.float64)
    nll = brier = None
    if need_scores:
        flat_y = y * n + rows if major else rows * k + y
        q_y = buf.reshape(-1)[flat_y].astype(np.float64)
        if chunk.kind == "logits":
            assert z_y is not None and m is not None and s is not None
            # (m - z_y) + log s, in that order (see row_quantities)
            nll = (m.reshape(-1).astype(np.float64) - z_y) + np.log(s.reshape(-1))
        else:
            nll = -safe_log(np, q_y)
        brier = np.square(buf).sum(axis=ax, dtype=np.float64) - 2.0 * q_y + 1.0
    return RowQuantities(buf.T if major else buf, None, conf.astype(np.float64), pred,
                         correct, nll, brier, None, None)
