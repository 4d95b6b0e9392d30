"""Proper scores: log loss, Brier score, and the soft-label split CE = H(p) + KL(p || q)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from trueprob._array import to_numpy
from trueprob.core.options import Unit, check_unit
from trueprob.metrics._common import inputs_of, label_options, report_of


@label_options
def log_loss(
    labels: Any = None,
    /,
    *,
    logits: Any = None,
    probs: Any = None,
    targets: Any = None,
    counts: Any = None,
    sample_weight: Any = None,
    unit: Unit = "nats",
    clip: float | None = None,
) -> float:
    """Log loss (NLL, cross-entropy): (1/W) sum_i w_i ( -sum_k t_ik log q_ik ).

    From logits the per-row loss is logsumexp(z_i) - sum_k t_ik z_ik, exact, without clipping.
    From probabilities it is exact too: a probability of 0 on an observed class gives +inf
    and an :class:`~trueprob.InfiniteLossWarning` saying how many rows. ``clip=eps`` replaces
    q by clip(q, eps, 1 - eps) first (scikit-learn's ``log_loss`` uses eps = the machine
    epsilon of the probabilities' dtype). For counts, t_ik = n_ik / sum_k n_ik: the
    multinomial NLL per annotation. ``unit="bits"`` divides by ln 2.

    Parameters
    ----------
    labels, logits, probs, targets, counts, sample_weight
        As in :func:`trueprob.evaluate`.
    unit : {"nats", "bits"}
    clip : float, optional
        Clip probabilities to [clip, 1 - clip] before the log (probabilities only).

    Examples
    --------
    >>> import math
    >>> import numpy as np
    >>> from trueprob.metrics import log_loss
    >>> probs = np.array([[0.5, 0.5], [0.25, 0.75]])
    >>> round(log_loss(np.array([0, 1]), probs=probs), 6)  # (ln 2 + ln 4/3) / 2
    0.490415
    >>> log_loss(np.array([0, 1]), probs=probs, unit="bits") == 0.5 * (1 + math.log2(4 / 3))
    True
    """
    scale = check_unit(unit)
    if clip is None:
        inputs = inputs_of(labels, logits, probs, targets, counts, sample_weight)
        value = report_of(inputs, ("scores",)).nll
        assert value is not None
        return value * scale
    if probs is None:
        raise TypeError("clip= applies to probabilities; pass probs= (logits need no clipping)")
    if not 0.0 <= clip < 0.5:
        raise ValueError(f"clip must be in [0, 0.5); got {clip!r}")
    inputs = inputs_of(labels, logits, probs, targets, counts, sample_weight)
    xp = inputs.xp
    total = 0.0
    weight = 0.0
    for chunk in inputs.chunks():
        q = xp.clip(xp.astype(chunk.scores, xp.float64), clip, 1.0 - clip)
        if chunk.targets is None:
            q_y = xp.take_along_axis(q, chunk.labels[:, None], axis=1)[:, 0]
            loss = -xp.log(q_y)
        else:
            t = chunk.targets
            loss = -xp.sum(xp.where(t > 0, t * xp.log(q), 0.0), axis=1)
        w = chunk.weights
        total += float(to_numpy(xp.sum(loss if w is None else loss * w)))
        weight += chunk.n_rows if w is None else float(to_numpy(xp.sum(w)))
    if not weight > 0:
        raise ValueError("sample_weight sums to 0; at least one row needs a positive weight")
    return total / weight * scale


@label_options
def brier_score(
    labels: Any = None,
    /,
    *,
    logits: Any = None,
    probs: Any = None,
    targets: Any = None,
    counts: Any = None,
    sample_weight: Any = None,
) -> float:
    """Brier score (1/W) sum_i w_i sum_k (q_ik - t_ik)^2, in [0, 2]; not divided by K.

    For binary 1-D inputs this is the two-column form, exactly twice
    :func:`binary_brier_score`.

    Examples
    --------
    >>> import numpy as np
    >>> from trueprob.metrics import brier_score
    >>> probs = np.array([[0.5, 0.5], [0.25, 0.75]])
    >>> brier_score(np.array([0, 1]), probs=probs)  # (0.25+0.25 + 0.0625+0.0625) / 2
    0.3125
    """
    inputs = inputs_of(labels, logits, probs, targets, counts, sample_weight)
    value = report_of(inputs, ("scores",)).brier
    assert value is not None
    return value


@label_options
def binary_brier_score(
    labels: Any = None,
    /,
    *,
    logits: Any = None,
    probs: Any = None,
    targets: Any = None,
    sample_weight: Any = None,
) -> float:
    """Binary Brier score (1/W) sum_i w_i (q_i - y_i)^2 of the positive class.

    Exactly half the two-column :func:`brier_score`. Inputs are binary: 1-D positive-class
    scores, or (N, 2).

    Examples
    --------
    >>> import numpy as np
    >>> from trueprob.metrics import binary_brier_score
    >>> binary_brier_score(np.array([0, 1]), probs=np.array([0.5, 0.75]))  # (.25 + .0625)/2
    0.15625
    """
    inputs = inputs_of(labels, logits, probs, targets, None, sample_weight)
    if inputs.n_classes != 2:
        raise ValueError(
            f"binary_brier_score needs binary inputs (K=2); got K={inputs.n_classes}. "
            f"Use brier_score for the multiclass form."
        )
    value = report_of(inputs, ("scores",)).brier
    assert value is not None
    return value / 2.0


@label_options
def accuracy(
    labels: Any = None,
    /,
    *,
    logits: Any = None,
    probs: Any = None,
    targets: Any = None,
    counts: Any = None,
    sample_weight: Any = None,
    confidences: Any = None,
    predictions: Any = None,
) -> float:
    """Accuracy (1/W) sum_i w_i a_i: a_i = 1[argmax_k q_ik = y_i] (ties: lowest index).

    With soft targets a_i = p_{i, yhat_i}, the probability that an annotator agrees with the
    prediction.

    Examples
    --------
    >>> import numpy as np
    >>> from trueprob.metrics import accuracy
    >>> accuracy(np.array([0, 1, 1]), probs=np.array([[.5, .5], [.2, .8], [.6, .4]]))
    0.6666666666666666
    """
    inputs = inputs_of(labels, logits, probs, targets, counts, sample_weight, confidences,
                       predictions)
    return report_of(inputs, ()).accuracy


@dataclass(frozen=True)
class CrossEntropySplit:
    """CE(p, q) = H(p) + KL(p || q), averaged over rows, in ``unit``.

    ``entropy`` is what no model can remove (the targets' own uncertainty); ``kl`` is what the
    model costs.
    """

    cross_entropy: float
    entropy: float
    kl: float
    unit: str


def cross_entropy_split(
    *,
    logits: Any = None,
    probs: Any = None,
    targets: Any = None,
    counts: Any = None,
    sample_weight: Any = None,
    unit: Unit = "nats",
) -> CrossEntropySplit:
    """Split the soft-label cross-entropy into entropy and KL divergence.

    (1/W) sum_i w_i CE(p_i, q_i) = (1/W) sum_i w_i H(p_i) + (1/W) sum_i w_i KL(p_i || q_i),
    with H(p) = -sum_k p_k log p_k (0 log 0 = 0) and KL(p || q) = sum_k p_k log(p_k / q_k).

    Examples
    --------
    >>> import numpy as np
    >>> from trueprob.metrics import cross_entropy_split
    >>> s = cross_entropy_split(probs=np.array([[0.5, 0.5]]), targets=np.array([[0.5, 0.5]]),
    ...                         unit="bits")
    >>> (s.cross_entropy, s.entropy, s.kl)
    (1.0, 1.0, 0.0)
    """
    if targets is None and counts is None:
        raise TypeError("cross_entropy_split needs soft targets: pass targets= or counts=")
    check_unit(unit)
    inputs = inputs_of(None, logits, probs, targets, counts, sample_weight)
    r = report_of(inputs, ("scores",), unit=unit)
    assert r.nll is not None and r.entropy is not None and r.kl is not None
    return CrossEntropySplit(r.nll, r.entropy, r.kl, unit)


__all__ = [
    "CrossEntropySplit", "accuracy", "binary_brier_score", "brier_score",
    "cross_entropy_split", "log_loss",
]
