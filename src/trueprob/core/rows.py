"""Per-row quantities of one validated chunk: the only place that touches (n, K) arrays.

Everything is computed in the namespace of the inputs. (n, K) temporaries stay in the input's
floating dtype; per-row reductions (sums over classes) are accumulated in float64, so float32
logits lose no accuracy in the log loss and Brier score beyond the rounding of each entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from trueprob._array import Array
from trueprob._validation import Chunk


@dataclass(frozen=True)
class RowQuantities:
    """Per-row quantities in SPEC.md's notation (all float64 (n,) unless said otherwise).

    - ``probs``: q_i, (n, K) in the input dtype (``None`` in top-label mode);
    - ``targets``: t_i as float64 (n, K) for soft targets, ``None`` for hard labels;
    - ``confidence`` c_i = max_k q_ik; ``prediction`` yhat_i = argmax_k q_ik (int64, ties: lowest
      index); ``correct`` a_i = 1[yhat_i = y_i], or p_{i, yhat_i} for soft targets;
    - ``nll`` = -sum_k t_ik log q_ik in nats; ``brier`` = sum_k (q_ik - t_ik)^2;
    - ``entropy`` H(t_i) and ``kl`` KL(t_i || q_i) in nats (soft targets only).
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


def _safe_log(xp: Any, x: Array) -> Array:
    """log(x) with log(0) = -inf, without a divide-by-zero warning."""
    positive = x > 0
    return xp.where(positive, xp.log(xp.where(positive, x, xp.ones_like(x))), -xp.inf)


def _xlogx(xp: Any, t: Array) -> Array:
    """t * log(t) with 0 log 0 = 0."""
    positive = t > 0
    return xp.where(positive, t * xp.log(xp.where(positive, t, xp.ones_like(t))), 0.0)


def row_quantities(xp: Any, chunk: Chunk, *, need_scores: bool = True) -> RowQuantities:
    """Per-row quantities of ``chunk``; ``need_scores=False`` skips log loss and Brier."""
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
        # log q_ik = z_ik - logsumexp(z_i); logsumexp kept in float64.
        lse = xp.astype(m, f64) + xp.log(s)
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
                # -log q_iy = logsumexp(z_i) - z_iy: exact from logits, no clipping.
                nll = lse[:, 0] - xp.astype(_take(xp, x, y), f64)
            else:
                nll = -_safe_log(xp, q_y)
            brier = xp.sum(q * q, axis=1, dtype=f64) - 2.0 * q_y + 1.0
    else:
        correct = _take(xp, t, pred)
        if need_scores:
            if lse is not None:
                # -sum_k t_k log q_k = logsumexp(z) - sum_k t_k z_k  (sum_k t_k = 1).
                tz = xp.sum(t * xp.astype(x, f64), axis=1)
                nll = lse[:, 0] - tz
                logq = xp.astype(x, f64) - lse
                entropy = -xp.sum(_xlogx(xp, t), axis=1)
                kl = xp.sum(xp.where(t > 0, t * (_log_pos(xp, t) - logq), 0.0), axis=1)
            else:
                q64 = xp.astype(q, f64)
                logq = _safe_log(xp, q64)
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
