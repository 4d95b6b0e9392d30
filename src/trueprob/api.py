"""`evaluate`: every metric of SPEC.md in one pass over the data."""

from __future__ import annotations

from typing import Any

from trueprob._validation import prepare
from trueprob.core.options import check_reduce, check_unit
from trueprob.results import Report
from trueprob.stats.build import build_stats


def evaluate(
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
    n_classes: int | None = None,
    n_bins: int = 15,
    binning: str = "width",
    closed: str = "right",
    unit: str = "nats",
    reduce: str = "mean",
    classes: Any = None,
    pos_label: Any = None,
    ignore_index: Any = None,
) -> Report:
    """Evaluate predicted probabilities: proper scores and calibration errors, in one pass.

    Parameters
    ----------
    labels : array (N,), optional
        Hard labels y_i in {0..K-1}. Pass exactly one of ``labels``, ``targets`` or ``counts``.
    logits, probs : array (N, K), or (N,) for binary
        The model's outputs: logits z_i (q_i = softmax(z_i)) or probabilities q_i. Exactly one
        is given; trueprob never guesses which. For a binary problem pass the positive class's
        logit or probability as a 1-D array (K = 2 in all formulas).
    targets : array (N, K), optional
        Soft labels p_i on the simplex.
    counts : array (N, K), optional
        Annotator votes n_ik; used as targets n_ik / sum_k n_ik (the multinomial NLL per
        annotation).
    sample_weight : array (N,), optional
        Row weights w_i >= 0 (frequency weights), not all zero. Only their ratios matter:
        when the largest lies outside [2**-128, 2**128] all are divided by the same power of
        two (exactly), so 5e-324 or 1e308 everywhere gives the unweighted result;
        ``Report.weight`` (W) is then the total of the rescaled weights.
    confidences, predictions : array (N,), optional
        Top-label mode: c_i and yhat_i only (with ``labels`` or ``targets``), for systems that
        publish only the predicted class and its confidence. Metrics that need the full vector
        (NLL, Brier, classwise ECE, entropy, KL) are then ``None`` and ``Report.unavailable``
        says why.
    n_classes : int, optional
        K in top-label mode (otherwise the number of columns).
    n_bins : int
        B, the number of reliability bins (default 15).
    binning : {"width", "mass"}
        Equal-width bins, or equal-mass bins with edges at weighted quantiles of the
        confidences (found in a first pass that keeps N floats).
    closed : {"right", "left"}
        Which side of each bin is closed (SPEC.md, "Binning").
    unit : {"nats", "bits"}
        Unit of the log-score quantities.
    reduce : {"mean", "sum"}
        How classwise ECE combines classes.
    classes : sequence, optional
        The class of each column, in column order (scikit-learn's ``labels=`` /
        ``classes_``): ``labels`` (and top-label ``predictions``) are then given as these
        names (strings, integers, any hashable values) and mapped to their positions. A label
        not in ``classes`` is an error naming its row.
    pos_label : optional
        Binary inputs (1-D ``logits`` / ``probs``: the positive class's score): the label of
        the positive class; labels equal to it are 1, the other label 0 (scikit-learn's
        ``pos_label``). At most two distinct labels, one of them ``pos_label``.
    ignore_index : optional
        Rows whose label equals it are dropped before anything is computed (torchmetrics'
        ``ignore_index``, e.g. -100 for padding); row numbers in errors then count the rows
        kept.

    Returns
    -------
    Report
        Every metric (SPEC.md's definitions), the per-bin table and the settings used.

    Notes
    -----
    All metrics come from one :class:`~trueprob.stats.EvaluationStats` state filled chunk by
    chunk, so extra memory is bounded by one chunk (about 2**19 values) whatever N. The KS
    calibration error of a report is read off a grid of 2**16 confidence cells; the exact,
    all-rows value is :func:`trueprob.metrics.ks_calibration_error` (the two differ by at most
    the largest per-cell sum of w_i |c_i - a_i| / W).

    Examples
    --------
    >>> import numpy as np, trueprob
    >>> logits = np.array([[2.0, 0.0, 0.0], [0.0, 3.0, 0.0], [1.0, 0.0, 2.0], [0.0, 0.5, 0.0]])
    >>> report = trueprob.evaluate(np.array([0, 1, 0, 2]), logits=logits)
    >>> report.accuracy
    0.5
    >>> round(report.nll, 4)
    0.7591
    >>> names = np.array(["cat", "dog", "cat", "eel"])
    >>> trueprob.evaluate(names, logits=logits, classes=["cat", "dog", "eel"]).nll == report.nll
    True
    """
    check_unit(unit)
    check_reduce(reduce)
    inputs = prepare(
        labels, logits=logits, probs=probs, targets=targets, counts=counts,
        sample_weight=sample_weight, confidences=confidences, predictions=predictions,
        n_classes=n_classes, rescale_weights=True, classes=classes, pos_label=pos_label,
        ignore_index=ignore_index,
    )
    stats = build_stats(inputs, n_bins=n_bins, binning=binning, closed=closed)
    return stats.finalize(unit=unit, reduce=reduce)
