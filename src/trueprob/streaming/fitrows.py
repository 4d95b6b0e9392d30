"""Validated chunks as the calibrator fits take them (:class:`FitRows`)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from trueprob.streaming.batches import Batch, _checked_chunks


@dataclass(frozen=True)
class FitRows:
    """A validated chunk as the temperature kernel takes it (numpy, SPEC.md notation).

    ``scores`` (n, K): logits z_i, or log q_i (zero floored) for probabilities; ``labels``
    (n,) int64 or ``targets`` (n, K) float64 soft targets (counts normalised); ``weights``
    (n,) float64.
    """

    scores: np.ndarray
    labels: np.ndarray | None
    targets: np.ndarray | None
    weights: np.ndarray


def fit_rows(batch: Batch, *, purpose: str = "temperature scaling") -> Iterator[FitRows]:
    """The chunks of a batch as :class:`FitRows` (probabilities become floored logs, as in
    :func:`trueprob.calibrators._fitdata.fit_arrays`)."""
    from trueprob._array import to_numpy
    from trueprob.calibrators._fitdata import _log_probs

    inputs = batch.inputs
    if inputs.kind == "confidences":
        raise ValueError(f"{purpose} needs logits= or probs= (the whole vector); "
                         f"top-label confidences cannot be rescaled")
    xp = inputs.xp
    for chunk in _checked_chunks(batch):
        s = chunk.scores if inputs.kind == "logits" else _log_probs(xp, chunk.scores)
        n = chunk.n_rows
        w = np.ones(n) if chunk.weights is None else to_numpy(chunk.weights)
        yield FitRows(np.ascontiguousarray(to_numpy(s)),
                      None if chunk.labels is None else to_numpy(chunk.labels),
                      None if chunk.targets is None else to_numpy(chunk.targets),
                      np.asarray(w, dtype=np.float64))
