"""Shared plumbing of the metric functions: inputs -> mergeable state -> number."""

from __future__ import annotations

from typing import Any

from trueprob._validation import Inputs, prepare
from trueprob.core.binning import Closed
from trueprob.core.options import BinningName, Reduce, Unit
from trueprob.results import Report
from trueprob.stats.build import build_stats

INPUTS_DOC = """labels : array (N,), optional
        Hard labels y_i in {0..K-1}; or pass ``targets=`` (soft, (N, K)) or ``counts=``.
    logits, probs : array (N, K), or (N,) for binary
        Model outputs; exactly one is given (never guessed).
    targets, counts : array (N, K), optional
        Soft labels p_i on the simplex, or annotator votes n_ik (used as n_ik / sum_k n_ik).
    sample_weight : array (N,), optional
        Row weights w_i >= 0, not all zero."""


def inputs_of(labels: Any, logits: Any, probs: Any, targets: Any, counts: Any,
              sample_weight: Any, confidences: Any = None, predictions: Any = None,
              n_classes: int | None = None) -> Inputs:
    return prepare(labels, logits=logits, probs=probs, targets=targets, counts=counts,
                   sample_weight=sample_weight, confidences=confidences,
                   predictions=predictions, n_classes=n_classes, rescale_weights=True)


def report_of(inputs: Inputs, parts: tuple[str, ...], *, n_bins: int = 15,
              binning: BinningName = "width", closed: Closed = "right", unit: Unit = "nats",
              reduce: Reduce = "mean") -> Report:
    """Run the one-pass engine keeping only ``parts`` and finalise it."""
    stats = build_stats(inputs, n_bins=n_bins, binning=binning, closed=closed, parts=parts)
    return stats.finalize(unit=unit, reduce=reduce)
