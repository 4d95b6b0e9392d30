"""The multi-label report's analysis: every label's reliability, direction and the worst
labels' diagrams.

:func:`analyze_multilabel` computes everything the multi-label report shows (the sentences
and the HTML/Markdown are :mod:`trueprob.report.tasks`): the
:class:`~trueprob.multilabel.MultilabelReport`, a :class:`LabelCalibration` per label and the
reliability panels of the worst labels (a :class:`~trueprob.analysis.diagrams.ClasswiseData`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from trueprob._version import __version__
from trueprob.analysis.diagrams import check_level
from trueprob.analysis.records import _deprecated_verdict

#: A label's direction is named when its signed gap is at least this share of its ECE.
DIRECTION_SHARE = 0.5


@dataclass(frozen=True)
class LabelCalibration:
    """How one label departs from calibration, read from its reliability bins.

    With W_b, conf_b = mean q and acc_b = mean y of bin b (W the total weight):

    - ``ece`` = sum_b (W_b/W) |conf_b - acc_b| (the report's per-label ECE);
    - ``extremity`` D = sum_b (W_b/W) sign(conf_b - 1/2) (conf_b - acc_b): positive when the
      probabilities are more extreme (nearer 0 or 1) than the observed frequencies, i.e.
      over-confident; negative when they are less extreme, under-confident;
    - ``bias`` = sum_b (W_b/W) (conf_b - acc_b) = mean probability - prevalence: positive
      when the label is predicted too often;
    - ``direction``: "over-confident" if D >= ECE/2, "under-confident" if D <= -ECE/2, else
      "predicted too often" / "predicted too rarely" if bias >= ECE/2 / <= -ECE/2, else
      "mixed" (and "calibrated" when ECE = 0);
    - ``bins_outside`` of ``bins_nonempty``: bins whose mean probability conf_b lies outside
      the Wilson interval of acc_b (at the analysis's level).
    """

    label: int
    name: str
    ece: float
    extremity: float
    bias: float
    direction: str
    bins_outside: int
    bins_nonempty: int


@dataclass(frozen=True, eq=False)
class MultilabelAnalysis:
    """Everything the multi-label report shows.

    ``report`` is the :class:`~trueprob.multilabel.MultilabelReport` (its ``worst`` are the
    labels drawn); ``labels`` has a :class:`LabelCalibration` for every label, worst (largest
    ECE, ties: lowest index) first; ``panels`` the small reliability diagrams of the worst
    labels (a :class:`~trueprob.analysis.diagrams.ClasswiseData`, one panel per label, with Wilson
    intervals at ``level``).
    """

    source: str
    report: Any
    labels: tuple[LabelCalibration, ...]
    panels: Any
    level: float
    version: str
    seconds: float

    def verdict(self) -> tuple[str, ...]:
        """Deprecated: use :func:`trueprob.report.tasks.multilabel_verdict` (the sentences
        are rendering, a layer above the analysis)."""
        return _deprecated_verdict(self, "multilabel_verdict")


def _direction(ece: float, extremity: float, bias: float) -> str:
    if ece <= 0:
        return "calibrated"
    if extremity >= DIRECTION_SHARE * ece:
        return "over-confident"
    if extremity <= -DIRECTION_SHARE * ece:
        return "under-confident"
    if bias >= DIRECTION_SHARE * ece:
        return "predicted too often"
    if bias <= -DIRECTION_SHARE * ece:
        return "predicted too rarely"
    return "mixed"


def analyze_multilabel(
    labels: Any,
    /,
    *,
    logits: Any = None,
    probs: Any = None,
    sample_weight: Any = None,
    label_names: Sequence[str] | None = None,
    source: str = "",
    n_bins: int = 15,
    closed: str = "right",
    unit: str = "bits",
    level: float = 0.95,
    n_worst: int = 5,
) -> MultilabelAnalysis:
    """Analyse multi-label probabilities for a report.

    One pass (:class:`~trueprob.multilabel.MultilabelStats`, the state behind
    :func:`trueprob.multilabel.evaluate_multilabel`) gives the per-label binary cross-entropy
    (1/W) sum_i w_i [-y_il log q_il - (1 - y_il) log(1 - q_il)], Brier (1/W) sum_i w_i
    (q_il - y_il)^2, the binned ECE family of q_il against y_il, their micro (pooled pairs)
    and macro (mean over labels) aggregates, and every label's reliability bins. Each label's
    direction (:class:`LabelCalibration`) is read from the signs of its bins' gaps; the
    ``n_worst`` labels with the largest ECE get a reliability diagram with Wilson intervals
    of acc_b at the bins' effective counts (W_b^2 / sum w_i^2) and ``level``.

    Parameters
    ----------
    labels : array (N, L)
        y_il in {0, 1}.
    logits, probs : array (N, L)
        Per-label logits z_il (q = sigmoid(z)) or probabilities q_il; exactly one.
    sample_weight : array (N,), optional
        Row weights.
    label_names : sequence of str, optional
        One name per label (default "0", "1", ...).
    source : str
        Name of the data (e.g. the file), for the text.
    n_bins, closed
        Equal-width reliability bins (SPEC.md, "Binning").
    unit : {"bits", "nats"}
        Unit of the log loss (default bits).
    level : float
        Coverage of the bins' Wilson intervals.
    n_worst : int
        How many of the worst-calibrated labels are drawn.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=(2000, 3)) * 2
    >>> y = (rng.random((2000, 3)) < 1 / (1 + np.exp(-z))).astype(int)   # drawn from sigmoid(z)
    >>> z[:, 1] *= 3                                                      # label 1: too extreme
    >>> a = analyze_multilabel(y, logits=z, n_worst=2)
    >>> a.labels[0].label, a.labels[0].direction
    (1, 'over-confident')
    """
    from trueprob.analysis.diagrams import ClasswiseData, wilson_interval
    from trueprob.multilabel import MultilabelStats

    start = time.perf_counter()
    level = check_level(level)
    kind = {"logits": logits, "probs": probs}  # the validation wants exactly one
    stats = MultilabelStats(_n_labels(labels), n_bins=n_bins, closed=closed)
    stats.update(labels, **kind, sample_weight=sample_weight)
    report = stats.finalize(unit=unit, n_worst=n_worst, label_names=label_names)
    k = report.n_labels
    arrays = stats.bins.arrays()  # (L, B) sums: weight, count, sum_score, sum_outcome
    weight = np.asarray(arrays["weight"], dtype=np.float64)
    count = np.asarray(arrays["count"], dtype=np.int64)
    if sample_weight is None:
        n_eff = count.astype(np.float64)
    else:
        squares = MultilabelStats(k, n_bins=n_bins, closed=closed)
        w = sample_weight if hasattr(sample_weight, "shape") else \
            np.asarray(sample_weight, dtype=np.float64)
        squares.update(labels, **kind, sample_weight=w * w)
        w2 = np.asarray(squares.bins.arrays()["weight"], dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            n_eff = np.where(w2 > 0, weight * weight / np.where(w2 > 0, w2, 1.0), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        conf = np.where(weight > 0, arrays["sum_score"] / weight, np.nan)
        acc = np.where(weight > 0, arrays["sum_outcome"] / weight, np.nan)
    low, high = wilson_interval(np.clip(np.nan_to_num(acc), 0.0, 1.0), n_eff, level=level)
    total = float(report.weight)
    share = weight / total
    gap = np.where(weight > 0, conf - acc, 0.0)
    extremity = np.sum(share * np.sign(np.nan_to_num(conf) - 0.5) * gap, axis=1)
    bias = np.sum(share * gap, axis=1)
    nonempty = weight > 0
    outside = nonempty & ((conf < low) | (conf > high))
    order = sorted(range(k), key=lambda j: (-report.per_label[j].ece, j))
    per = tuple(
        LabelCalibration(j, report.per_label[j].name, report.per_label[j].ece,
                         float(extremity[j]), float(bias[j]),
                         _direction(report.per_label[j].ece, float(extremity[j]),
                                    float(bias[j])),
                         int(outside[j].sum()), int(nonempty[j].sum()))
        for j in order)
    shown = np.array([w.label for w in report.worst], dtype=np.int64)
    # the panels' points are the worst labels' bins of the report (its BinRows)
    w_conf = np.array([[b.confidence for b in w.bins] for w in report.worst],
                      dtype=np.float64).reshape(len(shown), -1)
    w_acc = np.array([[b.accuracy for b in w.bins] for w in report.worst],
                     dtype=np.float64).reshape(len(shown), -1)
    panels = ClasswiseData(
        shown, tuple(w.name for w in report.worst), np.asarray(report.settings.edges),
        weight[shown], count[shown], w_conf, w_acc, low[shown], high[shown],
        np.array([w.ece for w in report.worst], dtype=np.float64), k, total, level,
        f"the {len(shown)} labels with the largest ECE of {k}")
    return MultilabelAnalysis(source, report, per, panels, level, __version__,
                              time.perf_counter() - start)


def _n_labels(labels: Any) -> int:
    shape = getattr(labels, "shape", None)
    if shape is None:
        shape = np.shape(labels)
    if len(shape) != 2 or shape[1] < 1:
        raise ValueError(f"labels must be an (N, L) array of 0/1 outcomes, one column per "
                         f"label; got shape {tuple(shape)}")
    return int(shape[1])



__all__ = ["DIRECTION_SHARE", "LabelCalibration", "MultilabelAnalysis", "analyze_multilabel"]
