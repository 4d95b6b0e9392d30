"""Calibration errors: top-label ECE family, classwise, class-conditional, KS; reliability table.

All binned metrics follow SPEC.md "Binning" and "Calibration errors": B bins (default 15),
right-closed equal-width bins by default (bin j = (j/B, (j+1)/B], c = 0 in bin 0, c = 1 in bin
B-1), or equal-mass bins with edges at weighted quantiles (``binning="mass"``); every average is
weighted; empty bins have weight 0 and are skipped in every sum and max.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from trueprob.core.binning import Closed
from trueprob.core.options import BinningName, Reduce
from trueprob.metrics._common import inputs_of, label_options, report_of
from trueprob.results import BinRow
from trueprob.stats.build import confidences_of


@label_options
def top_label_ece(
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
    n_bins: int = 15,
    binning: BinningName = "width",
    closed: Closed = "right",
    p: int = 1,
    convention: str | None = None,
) -> float:
    """Top-label expected calibration error ECE_p = (sum_b (W_b/W) |acc_b - conf_b|^p)^(1/p).

    c_i = max_k q_ik, a_i = 1[argmax_k q_ik = y_i] (or p_{i, yhat_i} for soft targets),
    conf_b / acc_b the weighted means of c and a in bin b. ``p=1`` is the ECE, ``p=2`` the
    RMS calibration error. Works in top-label mode (``confidences=`` + ``predictions=``).

    ``convention="torchmetrics" | "sklearn" | "netcal" | "relplot"`` reproduces that library's
    number instead (its bins, its treatment of confidence 1.0, its arithmetic; hard labels,
    no weights): see :func:`trueprob.metrics.conventions.calibration_error`.

    Examples
    --------
    >>> import numpy as np
    >>> from trueprob.metrics import top_label_ece
    >>> c = np.array([0.9, 0.9, 0.6, 0.6])   # two bins: (0.867, 0.933] and (0.533, 0.6]
    >>> correct = np.array([1, 0, 1, 1])       # acc 0.5 and 1.0
    >>> preds = np.zeros(4, dtype=int)
    >>> round(top_label_ece(np.where(correct == 1, 0, 1), confidences=c, predictions=preds), 6)
    0.4
    """
    if p not in (1, 2):
        raise ValueError(f"p must be 1 (ECE) or 2 (RMS calibration error); got {p!r}")
    if convention is not None:
        return _by_convention(convention, "top_label", "l1" if p == 1 else "l2", labels,
                              logits, probs, targets, counts, sample_weight, confidences,
                              predictions, n_bins, binning, closed)
    inputs = inputs_of(labels, logits, probs, targets, counts, sample_weight, confidences,
                       predictions)
    r = report_of(inputs, ("top_label",), n_bins=n_bins, binning=binning, closed=closed)
    return r.ece if p == 1 else r.rmsce


@label_options
def rms_calibration_error(
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
    n_bins: int = 15,
    binning: BinningName = "width",
    closed: Closed = "right",
    convention: str | None = None,
) -> float:
    """RMS calibration error sqrt(sum_b (W_b/W) (acc_b - conf_b)^2) (top-label ECE with p=2).

    ``convention=`` reproduces a library's number (see :func:`top_label_ece`).

    Examples
    --------
    >>> import numpy as np
    >>> from trueprob.metrics import rms_calibration_error
    >>> c = np.array([0.9, 0.9, 0.6, 0.6]); y = np.array([0, 1, 0, 0])
    >>> round(rms_calibration_error(y, confidences=c, predictions=np.zeros(4, int)), 6)
    0.4
    """
    return top_label_ece(labels, logits=logits, probs=probs, targets=targets, counts=counts,
                         sample_weight=sample_weight, confidences=confidences,
                         predictions=predictions, n_bins=n_bins, binning=binning,
                         closed=closed, p=2, convention=convention)


@label_options
def max_calibration_error(
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
    n_bins: int = 15,
    binning: BinningName = "width",
    closed: Closed = "right",
    convention: str | None = None,
) -> float:
    """MCE = max over non-empty bins of |acc_b - conf_b| (top-label).

    ``convention=`` reproduces a library's number (see :func:`top_label_ece`).

    Examples
    --------
    >>> import numpy as np
    >>> from trueprob.metrics import max_calibration_error
    >>> c = np.array([0.9, 0.9, 0.6, 0.6]); y = np.array([0, 1, 0, 0])
    >>> round(max_calibration_error(y, confidences=c, predictions=np.zeros(4, int)), 6)
    0.4
    """
    if convention is not None:
        return _by_convention(convention, "top_label", "max", labels, logits, probs, targets,
                              counts, sample_weight, confidences, predictions, n_bins,
                              binning, closed)
    inputs = inputs_of(labels, logits, probs, targets, counts, sample_weight, confidences,
                       predictions)
    return report_of(inputs, ("top_label",), n_bins=n_bins, binning=binning,
                     closed=closed).mce


@label_options
def debiased_l2_calibration_error(
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
    n_bins: int = 15,
    binning: BinningName = "width",
    closed: Closed = "right",
) -> float:
    """Debiased L2 calibration error (Kumar, Liang, Ma 2019), top-label.

    sqrt(max(0, sum_b (W_b/W) [ (acc_b - conf_b)^2 - acc_b (1 - acc_b) / (n_b - 1) ])). Weights
    are frequency weights: n_b is the bin's total weight (the row count for unit weights), so
    integer weights equal repeated rows. Bins with n_b <= 1 get no correction.

    Examples
    --------
    >>> import numpy as np
    >>> from trueprob.metrics import debiased_l2_calibration_error
    >>> c = np.array([0.9, 0.9, 0.6, 0.6]); y = np.array([0, 1, 0, 0])
    >>> # bins: (0.5 * (0.4^2 - 0.25/1)) + (0.5 * (0.4^2 - 0)) = -0.045 + 0.08 = 0.035
    >>> round(debiased_l2_calibration_error(y, confidences=c, predictions=np.zeros(4, int)), 6)
    0.187083
    """
    inputs = inputs_of(labels, logits, probs, targets, counts, sample_weight, confidences,
                       predictions)
    return report_of(inputs, ("top_label",), n_bins=n_bins, binning=binning,
                     closed=closed).ece_debiased


@label_options
def classwise_ece(
    labels: Any = None,
    /,
    *,
    logits: Any = None,
    probs: Any = None,
    targets: Any = None,
    counts: Any = None,
    sample_weight: Any = None,
    n_bins: int = 15,
    closed: Closed = "right",
    reduce: Reduce = "mean",
    convention: str | None = None,
) -> float:
    """Classwise ECE: for each class k, sum_b (W_kb/W) |mean_b t_k - mean_b q_k| over the bins of
    q_ik; then the mean over classes (``reduce="mean"``) or the sum (``reduce="sum"``, the
    figure Kull et al. 2019 printed). Equal-width bins (equal-mass classwise bins are not
    offered: they would need K quantile passes). ``convention="kull2019"`` reproduces the code
    behind Kull et al. 2019's tables (14 equal bins plus one for 1.0, summed over classes).

    Examples
    --------
    >>> import numpy as np
    >>> from trueprob.metrics import classwise_ece
    >>> probs = np.array([[0.9, 0.1], [0.9, 0.1]]); y = np.array([0, 1])
    >>> # class 0: one bin, conf 0.9, freq 0.5 -> 0.4; class 1: conf 0.1, freq 0.5 -> 0.4
    >>> round(classwise_ece(y, probs=probs), 6), round(classwise_ece(y, probs=probs,
    ...                                                             reduce="sum"), 6)
    (0.4, 0.8)
    """
    if convention is not None:
        if reduce != "mean":
            raise ValueError("reduce= does not apply with convention= (kull2019 sums)")
        return _by_convention(convention, "classwise", "l1", labels, logits, probs, targets,
                              counts, sample_weight, None, None, n_bins, "width", closed)
    inputs = inputs_of(labels, logits, probs, targets, counts, sample_weight)
    value = report_of(inputs, ("classwise",), n_bins=n_bins, closed=closed,
                      reduce=reduce).classwise_ece
    assert value is not None
    return value


@label_options
def class_conditional_ece(
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
    binning: BinningName = "width",
    closed: Closed = "right",
) -> float:
    """Class-conditional top-label ECE (Gupta & Ramdas 2022).

    sum_l (W_l/W) ECE_l, where ECE_l is the top-label ECE of the rows predicted as class l:
    equivalently sum_l sum_b (W_lb/W) |acc_lb - conf_lb|.

    Examples
    --------
    >>> import numpy as np
    >>> from trueprob.metrics import class_conditional_ece
    >>> c = np.array([0.9, 0.9]); preds = np.array([0, 1]); y = np.array([0, 0])
    >>> # class 0: acc 1, conf 0.9 -> 0.1; class 1: acc 0, conf 0.9 -> 0.9; weights 1/2 each
    >>> round(class_conditional_ece(y, confidences=c, predictions=preds), 6)
    0.5
    """
    inputs = inputs_of(labels, logits, probs, targets, counts, sample_weight, confidences,
                       predictions, n_classes)
    return report_of(inputs, ("class_conditional",), n_bins=n_bins, binning=binning,
                     closed=closed).class_conditional_ece


@label_options
def ks_calibration_error(
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
    """KS calibration error (Gupta et al. 2021), exact: sup_t |S(t)| with
    S(t) = (1/W) sum_{i: c_i <= t} w_i (c_i - a_i).

    Rows are sorted by confidence; rows with equal confidence enter together (S is evaluated
    at the end of each tie group), so the value does not depend on row order. Needs all rows
    (O(N) memory, one sort). :class:`~trueprob.Report` reads the same quantity off a grid of
    2**16 confidence cells in bounded memory; the two differ by at most the largest per-cell
    sum of w_i |c_i - a_i| / W.

    Examples
    --------
    >>> import numpy as np
    >>> from trueprob.metrics import ks_calibration_error
    >>> c = np.array([0.6, 0.9, 0.9]); y = np.array([0, 0, 1]); preds = np.zeros(3, int)
    >>> # S(0.6) = (0.6 - 1)/3 = -0.1333; S(0.9) = (-0.4 + 0.9 + -0.1)/3 = 0.1333
    >>> round(ks_calibration_error(y, confidences=c, predictions=preds), 6)
    0.133333
    """
    inputs = inputs_of(labels, logits, probs, targets, counts, sample_weight, confidences,
                       predictions)
    conf, correct, w = confidences_of(inputs)
    return exact_ks(conf, correct, w)


def _by_convention(convention: str, kind: str, norm: str, labels: Any, logits: Any,
                   probs: Any, targets: Any, counts: Any, sample_weight: Any,
                   confidences: Any, predictions: Any, n_bins: int, binning: str,
                   closed: str) -> float:
    """Delegate to :mod:`trueprob.metrics.conventions`, refusing options it cannot honour."""
    from trueprob.metrics import conventions

    for name, value in (("targets", targets), ("counts", counts),
                        ("sample_weight", sample_weight)):
        if value is not None:
            raise TypeError(f"{name}= is not available with convention={convention!r}: the "
                            f"library takes hard labels and no weights")
    if binning != "width" or closed != "right":
        raise ValueError(f"binning= and closed= do not apply with convention={convention!r}: "
                         f"the convention fixes its own bins")
    return conventions.calibration_error(labels, logits=logits, probs=probs,
                                         confidences=confidences, predictions=predictions,
                                         convention=convention, n_bins=n_bins, kind=kind,
                                         norm=norm)


def exact_ks(conf: np.ndarray, correct: np.ndarray, weights: np.ndarray | None) -> float:
    """sup_t |(1/W) sum_{c_i <= t} w_i (c_i - a_i)|, tie groups entering together."""
    w = np.ones_like(conf) if weights is None else weights
    total = float(np.sum(w))
    if not total > 0:
        raise ValueError("sample_weight sums to 0; at least one row needs a positive weight")
    order = np.argsort(conf, kind="stable")
    c = conf[order]
    resid = np.cumsum((w * (conf - correct))[order])
    last_of_group = np.append(c[1:] != c[:-1], True)
    return float(np.max(np.abs(resid[last_of_group])) / total)


@dataclass(frozen=True)
class ReliabilityTable:
    """The per-bin top-label table: one :class:`~trueprob.BinRow` per bin, with the binning."""

    bins: tuple[BinRow, ...]
    closed: str
    binning: str
    total_weight: float


@label_options
def reliability_table(
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
    n_bins: int = 15,
    binning: BinningName = "width",
    closed: Closed = "right",
) -> ReliabilityTable:
    """Per-bin edges, weight W_b, count n_b, mean confidence, accuracy and gap conf - acc.

    Examples
    --------
    >>> import numpy as np
    >>> from trueprob.metrics import reliability_table
    >>> c = np.array([0.9, 0.9, 0.6, 0.6]); y = np.array([0, 1, 0, 0])
    >>> t = reliability_table(y, confidences=c, predictions=np.zeros(4, int), n_bins=5)
    >>> [(b.count, b.accuracy) for b in t.bins if b.count]
    [(2, 1.0), (2, 0.5)]
    """
    inputs = inputs_of(labels, logits, probs, targets, counts, sample_weight, confidences,
                       predictions)
    r = report_of(inputs, ("top_label",), n_bins=n_bins, binning=binning, closed=closed)
    return ReliabilityTable(r.bins, closed, binning, r.weight)


__all__ = [
    "ReliabilityTable", "class_conditional_ece", "classwise_ece",
    "debiased_l2_calibration_error", "ks_calibration_error", "max_calibration_error",
    "reliability_table", "rms_calibration_error", "top_label_ece",
]
