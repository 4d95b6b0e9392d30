"""Fit and predict inputs of the calibrators, validated by :func:`trueprob._validation.prepare`.

:func:`fit_arrays` turns the ``fit`` arguments of every calibrator into float64 numpy arrays
(a calibration set is fitted in memory); :func:`predict_inputs` validates the ``predict_*``
arguments with the same checks and messages and keeps the caller's array namespace.

Scores are logits z_i, or log-probabilities log q_i when ``probs=`` was given; which one is
recorded in ``kind`` and never guessed from the values. A probability of exactly 0 has no
finite logarithm: it is replaced by the smallest positive normal number of its dtype before the
logarithm (``LOG_FLOOR``), so every score is finite; softmax(log q) = q still holds to within
that number.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

import numpy as np

from trueprob._array import Array, is_array, namespace, to_numpy
from trueprob._validation import convert, expand_binary, float_array, prepare

FitKind = Literal["logits", "probs"]

#: log of the smallest positive normal float64, the floor of log-probabilities (float64 input).
LOG_FLOOR = float(np.log(np.finfo(np.float64).tiny))


def log_floor(dtype: Any) -> float:
    """``log`` of the smallest positive normal number of ``dtype`` (any namespace's dtype).

    >>> round(log_floor(np.float32), 3), round(log_floor(np.float64), 3)
    (-87.337, -708.396)
    """
    return float(np.log(_tiny(dtype)))


def _tiny(dtype: Any) -> float:
    """Smallest positive normal number of a numpy or torch floating dtype."""
    try:
        np_dtype = np.dtype(dtype)
    except TypeError:  # a torch dtype: "torch.float32" -> "float32"
        np_dtype = np.dtype(str(dtype).rsplit(".", 1)[-1])
    return float(np.finfo(np_dtype).tiny)


@dataclass(frozen=True)
class FitData:
    """A validated calibration set as float64 numpy arrays (SPEC.md notation).

    Attributes
    ----------
    scores : ndarray (N, K) float64 (float32 with ``keep_dtype=True``, possibly read-only)
        Logits z_i (``kind == "logits"``) or log-probabilities log q_i (``kind == "probs"``).
        Binary inputs are already expanded to two columns ((0, z) or (log(1 - p), log p)).
    kind : {"logits", "probs"}
        Which of the two ``scores`` holds.
    labels : ndarray (N,) int64 or None
        Hard labels y_i, when they were given (then ``soft_targets`` is None).
    soft_targets : ndarray (N, K) float64 or None
        Soft targets t_i (counts already divided by their row totals), when given.
    weights : ndarray (N,) float64
        Row weights w_i (ones when no ``sample_weight`` was given); their sum W is > 0.
    binary : bool
        True when the scores were given as one column (the positive class).
    """

    scores: np.ndarray
    kind: FitKind
    labels: np.ndarray | None
    soft_targets: np.ndarray | None
    weights: np.ndarray
    binary: bool

    @property
    def n_rows(self) -> int:
        return int(self.scores.shape[0])

    @property
    def n_classes(self) -> int:
        return int(self.scores.shape[1])

    @cached_property
    def targets(self) -> np.ndarray:
        """t_i as (N, K) float64: one-hot rows for hard labels (built on first use), else soft."""
        if self.soft_targets is not None:
            return self.soft_targets
        assert self.labels is not None
        onehot = np.zeros(self.scores.shape, dtype=np.float64)
        onehot[np.arange(self.n_rows), self.labels] = 1.0
        return onehot

    def target_dot(self, x: np.ndarray) -> np.ndarray:
        """sum_k t_ik x_ik for every row, without building one-hot targets for hard labels."""
        if self.labels is not None:
            return np.take_along_axis(x, self.labels[:, None], axis=1)[:, 0]
        assert self.soft_targets is not None
        return np.einsum("ij,ij->i", self.soft_targets, x)

    def subset(self, rows: np.ndarray) -> FitData:
        """The rows ``rows`` (an integer index or boolean mask) as a new :class:`FitData`."""
        labels = None if self.labels is None else self.labels[rows]
        soft = None if self.soft_targets is None else self.soft_targets[rows]
        return FitData(self.scores[rows], self.kind, labels, soft, self.weights[rows],
                       self.binary)


def _log_probs(xp: Any, q: Array) -> Array:
    """log q with log 0 replaced by :func:`log_floor` of q's dtype (no divide-by-zero warning)."""
    tiny = _tiny(q.dtype)
    return xp.log(xp.where(q > tiny, q, xp.full_like(q, tiny)))


def fit_arrays(
    labels: Any = None,
    *,
    logits: Any = None,
    probs: Any = None,
    targets: Any = None,
    counts: Any = None,
    sample_weight: Any = None,
    keep_dtype: bool = False,
) -> FitData:
    """Validate a calibration set (with :func:`~trueprob._validation.prepare`) into a FitData.

    Exactly one of ``logits`` / ``probs`` and one of ``labels`` / ``targets`` / ``counts``.
    Errors are those of :func:`trueprob.evaluate` (same checks, same messages), plus an error
    when the weights sum to zero.

    ``keep_dtype=True`` keeps float32 scores in float32 (wider types become float64) and, for
    a C-contiguous numpy logits array of that dtype, returns the caller's array itself as
    ``scores`` without a copy: the caller must then treat it as read-only.

    Examples
    --------
    >>> data = fit_arrays(np.array([1, 0]), probs=np.array([[0.25, 0.75], [1.0, 0.0]]))
    >>> data.kind, data.scores.dtype, data.weights.tolist()
    ('probs', dtype('float64'), [1.0, 1.0])
    >>> np.exp(data.scores).round(2).tolist()
    [[0.25, 0.75], [1.0, 0.0]]
    >>> data.targets.tolist()
    [[0.0, 1.0], [1.0, 0.0]]
    """
    inputs = prepare(labels, logits=logits, probs=probs, targets=targets, counts=counts,
                     sample_weight=sample_weight)
    xp = inputs.xp
    n, k = inputs.n_rows, inputs.n_classes
    dtype: np.dtype[Any] = np.dtype(np.float64)
    if keep_dtype and str(inputs.scores.dtype).rsplit(".", 1)[-1] in ("float32", "float16",
                                                                     "bfloat16"):
        dtype = np.dtype(np.float32)
    # no copy: numpy logits already in the wanted dtype and layout (values checked below)
    borrowed = (keep_dtype and inputs.kind == "logits" and not inputs.binary
                and isinstance(inputs.scores, np.ndarray) and inputs.scores.dtype == dtype
                and inputs.scores.flags.c_contiguous)
    # else filled chunk by chunk: peak memory is the result plus one chunk
    z = inputs.scores if borrowed else np.empty((n, k), dtype=dtype)
    y = np.empty(n, dtype=np.int64) if inputs.labels is not None else None
    t = np.empty((n, k), dtype=np.float64) if inputs.targets is not None else None
    w = np.ones(n, dtype=np.float64)
    for chunk in inputs.chunks():
        rows = slice(chunk.offset, chunk.offset + chunk.n_rows)
        if not borrowed:
            s = chunk.scores
            if inputs.kind == "probs":
                s = _log_probs(xp, s)
            z[rows] = to_numpy(s)
        if y is not None:
            y[rows] = to_numpy(chunk.labels)
        if t is not None:
            t[rows] = to_numpy(chunk.targets)
        if chunk.weights is not None:
            w[rows] = to_numpy(chunk.weights)
    if inputs.weights is not None and not w.sum() > 0:
        raise ValueError("sample_weight must not be all zero; the weights sum to 0")
    kind: FitKind = "logits" if inputs.kind == "logits" else "probs"
    return FitData(z, kind, y, t, w, inputs.binary)


def predict_inputs(*, logits: Any = None, probs: Any = None) -> tuple[Any, Array, FitKind]:
    """Validate prediction inputs: ``(xp, scores, kind)`` in the caller's namespace and dtype.

    ``scores`` is (N, K): logits, or log-probabilities (log 0 floored as in :func:`fit_arrays`)
    when ``probs=`` was given; binary (N,) inputs are expanded to two columns. The checks and
    messages are those of :func:`trueprob.evaluate`.

    Examples
    --------
    >>> xp, scores, kind = predict_inputs(logits=np.array([0.0, 2.0]))
    >>> kind, scores.tolist()
    ('logits', [[0.0, 0.0], [0.0, 2.0]])
    """
    primary = logits if logits is not None else probs
    # labels are not part of prediction; a row of zeros lets `prepare` run all of its
    # checks on the scores (and give its messages) unchanged.
    if primary is not None and (logits is None or probs is None):
        name = "logits" if logits is not None else "probs"
        arr = convert(primary, name, namespace(primary) if is_array(primary) else None)
        xp = namespace(arr)
        arr = float_array(arr, name, xp)
        n = int(arr.shape[0]) if arr.ndim >= 1 else 0
        dummy = xp.zeros(n, dtype=xp.int64, device=getattr(arr, "device", None)) \
            if not isinstance(arr, np.ndarray) else np.zeros(n, dtype=np.int64)
        if logits is not None:
            logits = arr
        else:
            probs = arr
    else:
        dummy = None
    inputs = prepare(dummy, logits=logits, probs=probs)
    xp = inputs.xp
    for _ in inputs.chunks():  # value checks (finite, range, row sums), chunk by chunk
        pass
    s = inputs.scores
    if inputs.binary:
        s = expand_binary(xp, s, inputs.kind)
    if inputs.kind == "probs":
        return xp, _log_probs(xp, s), "probs"
    return xp, s, "logits"


# --------------------------------------------------------------------------- top-label


@dataclass(frozen=True)
class TopLabelData:
    """A validated top-label calibration set (confidences and predictions, no vectors).

    Attributes
    ----------
    log_odds : ndarray (N,) float64
        s_i = log c_i - log(1 - c_i), each logarithm floored at :data:`LOG_FLOOR` (a
        confidence of exactly 1 or 0 has no finite log-odds).
    correct : ndarray (N,) float64
        a_i = 1[y_i = yhat_i] for hard labels; t_{i, yhat_i} (the target's mass on the
        predicted class) for soft targets and count fractions.
    weights : ndarray (N,) float64
    n_classes : int or None
        K when it is known (``n_classes=`` given, or the width of ``targets`` / ``counts``);
        None for hard labels without ``n_classes`` (K is then not guessed).
    """

    log_odds: np.ndarray
    correct: np.ndarray
    weights: np.ndarray
    n_classes: int | None


def confidence_log_odds(xp: Any, confidences: Array) -> Array:
    """s = log c - log(1 - c) in float64, each logarithm floored at :data:`LOG_FLOOR`.

    1 - c is exact for c in [0.5, 1] (Sterbenz's lemma), where it matters; the floor keeps
    c = 1 (and c = 0) finite, as :func:`fit_arrays` keeps a probability of 0 finite.

    >>> confidence_log_odds(np, np.array([0.5, 0.8, 1.0])).round(4).tolist()
    [0.0, 1.3863, 708.3964]
    """
    c = xp.astype(confidences, xp.float64)
    tiny = float(np.finfo(np.float64).tiny)
    rest = 1.0 - c
    log_c = xp.log(xp.where(c > tiny, c, xp.full_like(c, tiny)))
    return log_c - xp.log(xp.where(rest > tiny, rest, xp.full_like(c, tiny)))


def fit_top_label(
    labels: Any = None,
    *,
    confidences: Any,
    predictions: Any,
    targets: Any = None,
    counts: Any = None,
    sample_weight: Any = None,
    n_classes: int | None = None,
) -> TopLabelData:
    """Validate a top-label calibration set into :class:`TopLabelData`.

    The checks and messages are :func:`trueprob.evaluate`'s in top-label mode: confidences
    in [0, 1], predictions integer class indices >= 0 (and < K when K is known), exactly one
    of ``labels`` / ``targets`` / ``counts``.

    Examples
    --------
    >>> d = fit_top_label(np.array([1, 0, 2]), confidences=np.array([0.5, 0.9, 0.6]),
    ...                   predictions=np.array([1, 1, 2]))
    >>> d.correct.tolist(), d.n_classes
    ([1.0, 0.0, 1.0], None)
    """
    inputs = prepare(labels, confidences=confidences, predictions=predictions, targets=targets,
                     counts=counts, sample_weight=sample_weight, n_classes=n_classes)
    xp = inputs.xp
    n = inputs.n_rows
    s = np.empty(n, dtype=np.float64)
    a = np.empty(n, dtype=np.float64)
    w = np.ones(n, dtype=np.float64)
    for chunk in inputs.chunks():
        rows = slice(chunk.offset, chunk.offset + chunk.n_rows)
        s[rows] = to_numpy(confidence_log_odds(xp, chunk.scores))
        pred = chunk.predictions
        if chunk.targets is None:
            a[rows] = to_numpy(xp.astype(pred == chunk.labels, xp.float64))
        else:
            t = xp.astype(chunk.targets, xp.float64)
            a[rows] = to_numpy(xp.take_along_axis(t, pred[:, None], axis=1)[:, 0])
        if chunk.weights is not None:
            w[rows] = to_numpy(chunk.weights)
    if inputs.weights is not None and not w.sum() > 0:
        raise ValueError("sample_weight must not be all zero; the weights sum to 0")
    known = n_classes if n_classes is not None else \
        (inputs.n_classes if inputs.target_kind != "labels" else None)
    return TopLabelData(s, a, w, known)


def predict_top_label_inputs(*, confidences: Any, predictions: Any,
                             n_classes: int | None) -> tuple[Any, Array]:
    """Validate prediction inputs in top-label mode: ``(xp, confidences)``, caller's namespace.

    Confidences must be finite and in [0, 1]; predictions integer class indices >= 0 and, when
    ``n_classes`` is known, < K (messages as :func:`trueprob.evaluate`'s).
    """
    if confidences is None or predictions is None:
        raise TypeError("pass confidences= and predictions= together (top-label mode)")
    conf = convert(confidences, "confidences",
                   namespace(confidences) if is_array(confidences) else None)
    xp = namespace(conf)
    conf = float_array(conf, "confidences", xp)
    n = int(conf.shape[0]) if conf.ndim >= 1 else 0
    dummy = np.zeros(n, dtype=np.int64) if isinstance(conf, np.ndarray) else \
        xp.zeros(n, dtype=xp.int64, device=getattr(conf, "device", None))
    # labels are not part of prediction: a row of zeros lets `prepare` run its checks
    inputs = prepare(dummy, confidences=conf, predictions=predictions,
                     n_classes=n_classes if n_classes is not None else None)
    for _ in inputs.chunks():
        pass
    return xp, inputs.scores
