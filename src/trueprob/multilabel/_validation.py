"""Validation of multi-label inputs: (N, L) scores and (N, L) labels in {0, 1}.

Same approach and messages as :mod:`trueprob._validation`: presence, dtypes and shapes are
checked up front, values chunk by chunk, and every error names the argument, what was expected
and the first offending row (counted over the whole input).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from trueprob._array import Array, is_array, namespace
from trueprob._validation import (
    CHUNK_ELEMENTS,
    check_finite,
    check_range,
    check_rows,
    convert,
    first_bad_row,
    float_array,
    row_repr,
)

ScoreKind = Literal["logits", "probs"]


@dataclass(frozen=True)
class MultilabelChunk:
    """A validated block of rows: ``scores`` (n, L) in the input dtype, ``labels`` (n, L)
    float64 with values 0 or 1 (None for prediction inputs), ``weights`` (n,) or None."""

    kind: ScoreKind
    scores: Array
    labels: Any
    weights: Any
    offset: int

    @property
    def n_rows(self) -> int:
        return int(self.scores.shape[0])


@dataclass(frozen=True)
class MultilabelInputs:
    """Inputs whose presence, dtypes and shapes are checked; values are checked per chunk."""

    xp: Any
    kind: ScoreKind
    scores: Array
    labels: Array | None
    weights: Array | None
    n_rows: int
    n_labels: int

    def chunks(self, rows: int | None = None) -> Iterator[MultilabelChunk]:
        """Validated chunks of at most ``rows`` rows (default: about 2**19 values each)."""
        if rows is None:
            rows = max(1, CHUNK_ELEMENTS // self.n_labels)
        xp = self.xp
        for start in range(0, self.n_rows, rows):
            stop = min(start + rows, self.n_rows)
            s = self.scores[start:stop, ...]
            check_finite(xp, s, self.kind, start)
            if self.kind == "probs":
                check_range(xp, s, 0.0, 1.0, "probs", start)
            y = None
            if self.labels is not None:
                y = self.labels[start:stop, ...]
                bad = (y != 0) & (y != 1)
                if xp.isdtype(y.dtype, "real floating"):
                    bad = bad | ~xp.isfinite(y)
                if bool(xp.any(bad)):
                    row = first_bad_row(xp, bad)
                    raise ValueError(
                        f"labels must be 0 or 1 (multi-label: one column per label); row "
                        f"{start + row} is {row_repr(y, row)}"
                    )
                y = xp.astype(y, xp.float64)
            w = None
            if self.weights is not None:
                w = self.weights[start:stop]
                check_finite(xp, w, "sample_weight", start)
                check_range(xp, w, 0.0, None, "sample_weight", start)
            yield MultilabelChunk(self.kind, s, y, w, start)


def prepare_multilabel(labels: Any = None, *, logits: Any = None, probs: Any = None,
                       sample_weight: Any = None, need_labels: bool = True
                       ) -> MultilabelInputs:
    """Check which inputs were given, their dtypes and shapes; values are checked per chunk.

    ``logits`` z_il (q_il = sigmoid(z_il)) or ``probs`` q_il, (N, L), exactly one; ``labels``
    y_il in {0, 1}, (N, L) (bool, integer or float); ``sample_weight`` (N,).

    Examples
    --------
    >>> import numpy as np
    >>> inputs = prepare_multilabel(np.array([[1, 0]]), probs=np.array([[0.9, 0.2]]))
    >>> inputs.n_rows, inputs.n_labels, inputs.kind
    (1, 2, 'probs')
    >>> next(prepare_multilabel(np.array([[1, 2]]), probs=np.array([[0.9, 0.2]])).chunks())
    Traceback (most recent call last):
    ...
    ValueError: labels must be 0 or 1 (multi-label: one column per label); row 0 is [1, 2]
    """
    if (logits is None) == (probs is None):
        got = "both" if logits is not None else "neither"
        raise TypeError(f"pass exactly one of logits= or probs= (N, L); got {got}")
    if need_labels and labels is None:
        raise TypeError("labels (N, L) with values 0 or 1 are required")
    kind: ScoreKind = "logits" if logits is not None else "probs"
    primary = logits if logits is not None else probs
    xp = namespace(primary) if is_array(primary) else None
    scores = convert(primary, kind, xp)
    xp = namespace(scores)
    scores = float_array(scores, kind, xp)
    if scores.ndim != 2:
        raise ValueError(
            f"{kind} must be (N, L): one column per label; got shape {tuple(scores.shape)}. "
            f"For a single binary label use trueprob.evaluate with 1-D scores, or reshape to "
            f"(N, 1)"
        )
    n, n_labels = int(scores.shape[0]), int(scores.shape[1])
    if n == 0:
        raise ValueError(f"{kind} is empty (0 rows); at least one row is needed")
    if n_labels == 0:
        raise ValueError(f"{kind} has 0 columns; at least one label is needed")
    y = None
    if labels is not None:
        y = convert(labels, "labels", xp)
        if tuple(y.shape) != tuple(scores.shape):
            raise ValueError(f"labels must have the shape of {kind}, (N, L) = {(n, n_labels)}; "
                             f"got {tuple(y.shape)}")
        if not xp.isdtype(y.dtype, ("bool", "integral", "real floating")):
            raise TypeError(f"labels must be 0/1 values (bool, integer or float); got dtype "
                            f"{y.dtype}")
    w = None
    if sample_weight is not None:
        w = convert(sample_weight, "sample_weight", xp)
        if w.ndim != 1:
            raise ValueError(f"sample_weight must be 1-D; got shape {tuple(w.shape)}")
        check_rows(w, "sample_weight", n, kind)
        if not xp.isdtype(w.dtype, ("integral", "real floating", "bool")):
            raise TypeError(f"sample_weight must be numeric; got dtype {w.dtype}")
        w = xp.astype(w, xp.float64)
    return MultilabelInputs(xp, kind, scores, y, w, n, n_labels)
