"""Shared plumbing of the metric functions: inputs -> mergeable state -> number."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from trueprob._validation import Inputs, encode_labels, prepare
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
        Row weights w_i >= 0, not all zero; only their ratios matter (weights whose largest
        value lies outside [2**-128, 2**128] are rescaled by an exact power of two)."""


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


F = TypeVar("F", bound=Callable[..., Any])
#: the per-row arrays that ``ignore_index`` filters and ``classes`` may re-encode
_ROW_ARGS = ("logits", "probs", "targets", "counts", "sample_weight", "confidences",
             "predictions")
LABEL_OPTIONS_DOC = """classes : sequence, optional
        The class of each column, in column order (scikit-learn's ``labels=`` /
        ``classes_``): labels (strings or any values) are given as these names.
    pos_label : optional
        Binary (1-D scores): the label of the positive class; the other label is negative.
    ignore_index : optional
        Rows whose label equals it are dropped (torchmetrics' ``ignore_index``)."""


def label_options(func: F) -> F:
    """Give a metric function ``classes=``, ``pos_label=`` and ``ignore_index=``.

    The labels (and, with ``ignore_index``, every per-row array) are encoded by
    :func:`trueprob._validation.encode_labels` before ``func`` runs, so every route of
    ``func`` (its own engine or a ``convention=``) sees class indices.
    """
    sig = inspect.signature(func)
    accepts = set(sig.parameters)

    @functools.wraps(func)
    def wrapper(labels: Any = None, /, *, classes: Any = None, pos_label: Any = None,
                ignore_index: Any = None, **options: Any) -> Any:
        if classes is not None or pos_label is not None or ignore_index is not None:
            rows = {k: options.get(k) for k in _ROW_ARGS if k in accepts}
            rows["n_classes"] = options.get("n_classes")
            labels, rows = encode_labels(labels, rows, classes=classes, pos_label=pos_label,
                                         ignore_index=ignore_index)
            options.update({k: v for k, v in rows.items()
                            if k in accepts and (k in options or v is not None)})
        return func(labels, **options)

    extra = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None)
             for name in ("classes", "pos_label", "ignore_index")]
    wrapper.__signature__ = sig.replace(  # type: ignore[attr-defined]
        parameters=[*sig.parameters.values(), *extra])
    doc = func.__doc__ or ""
    note = ("\n    Labels as users have them: ``classes=``, ``pos_label=`` and "
            "``ignore_index=``, as in :func:`trueprob.evaluate`.\n")
    at = doc.find("\n    Examples\n")
    wrapper.__doc__ = doc[:at] + note + doc[at:] if at >= 0 else doc + note
    return wrapper  # type: ignore[return-value]
