"""`evaluate_multilabel` and `decompose_multilabel`: a multi-label model as L binary problems."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from trueprob._array import to_numpy
from trueprob.decomposition import Decomposition, decompose
from trueprob.multilabel._validation import prepare_multilabel
from trueprob.multilabel.stats import MultilabelStats
from trueprob.results import MultilabelReport


def evaluate_multilabel(
    labels: Any,
    /,
    *,
    logits: Any = None,
    probs: Any = None,
    sample_weight: Any = None,
    n_bins: int = 15,
    closed: str = "right",
    unit: str = "nats",
    n_worst: int = 5,
    label_names: Sequence[str] | None = None,
) -> MultilabelReport:
    """Evaluate multi-label probabilities (independent Bernoulli per label), in one pass.

    Label l of row i has outcome y_il in {0, 1} and probability q_il = sigmoid(z_il) (or the
    given q_il); rows have weights w_i, W = sum_i w_i. Per label (each a binary problem):

    - ``nll`` = (1/W) sum_i w_i [-y_il log q_il - (1 - y_il) log(1 - q_il)], the binary
      cross-entropy (BCE), exact from logits;
    - ``brier`` = (1/W) sum_i w_i (q_il - y_il)^2, the binary form (half of SPEC.md's
      two-column Brier score);
    - ``ece`` = sum_b (W_lb / W) |acc_lb - conf_lb| with conf_lb, acc_lb the weighted means of
      q_il and y_il over the rows in bin b of label l (SPEC.md's binning); ``mce``, ``rmsce``
      and ``ece_debiased`` likewise. This is the reliability of "label present with probability
      q" (the positive class), not the top-label reliability of the binary problem.

    Aggregates: **micro** pools all N x L (row, label) pairs, pair (i, l) with weight w_i:
    micro NLL and Brier are the means over pairs, micro ECE uses the pooled bins (the sums of
    the per-label bins) with total weight W L. **Macro** is the unweighted mean over labels of
    the per-label values. ``worst`` lists the ``n_worst`` labels with the largest ECE.

    Parameters
    ----------
    labels : array (N, L)
        y_il in {0, 1} (bool, integer or float).
    logits, probs : array (N, L)
        Per-label logits z_il or probabilities q_il; exactly one is given.
    sample_weight : array (N,), optional
        Row weights w_i >= 0, not all zero.
    n_bins, closed
        Equal-width reliability bins (SPEC.md, "Binning").
    unit : {"nats", "bits"}
    n_worst : int
        How many of the worst-calibrated labels the report lists (with their bins).
    label_names : sequence of str, optional
        Names of the L labels (default "0", "1", ...).

    Returns
    -------
    MultilabelReport

    Examples
    --------
    >>> import numpy as np
    >>> from trueprob.multilabel import evaluate_multilabel
    >>> q = np.array([[0.9, 0.2], [0.6, 0.1], [0.3, 0.8]])
    >>> y = np.array([[1, 0], [0, 0], [1, 1]])
    >>> r = evaluate_multilabel(y, probs=q, n_bins=2)
    >>> round(r.per_label[0].brier, 4), round(r.per_label[1].brier, 4)   # (.01+.36+.49)/3
    (0.2867, 0.03)
    >>> round(r.micro.brier, 4), round(r.macro.brier, 4)
    (0.1583, 0.1583)
    """
    inputs = prepare_multilabel(labels, logits=logits, probs=probs, sample_weight=sample_weight)
    stats = MultilabelStats(inputs.n_labels, n_bins=n_bins, closed=closed)
    return stats.update_inputs(inputs).finalize(unit=unit, n_worst=n_worst,
                                                label_names=label_names)


@dataclass(frozen=True)
class MultilabelDecomposition:
    """S(q) = MCB - DSC + UNC for every label, pooled (micro) and averaged (macro).

    ``per_label[l]`` decomposes label l as a binary problem (:func:`trueprob.decompose` with
    the label's positive-class scores); ``micro`` decomposes all (row, label) pairs pooled;
    ``macro`` holds the mean over labels of each term (the identity holds for the means).
    """

    per_label: tuple[Decomposition, ...]
    micro: Decomposition
    macro: Decomposition


def decompose_multilabel(
    labels: Any,
    /,
    *,
    logits: Any = None,
    probs: Any = None,
    sample_weight: Any = None,
    score: str = "log",
    estimator: str = "isotonic",
    n_bins: int = 15,
    unit: str = "bits",
) -> MultilabelDecomposition:
    """Decompose each label's score into miscalibration, discrimination and uncertainty.

    Each label is a binary problem decomposed by :func:`trueprob.decompose` (``score``,
    ``estimator`` and ``n_bins`` as there: CORP isotonic by default, or ``"binned"``):
    S(q_l) = MCB_l - DSC_l + UNC_l. Needs all rows in memory (the recalibration sorts them).

    Examples
    --------
    >>> import numpy as np
    >>> from trueprob.multilabel import decompose_multilabel
    >>> q = np.array([[0.2, 0.9], [0.2, 0.6], [0.6, 0.3], [0.9, 0.8]])
    >>> y = np.array([[0, 1], [1, 1], [1, 0], [1, 1]])
    >>> d = decompose_multilabel(y, probs=q, score="brier")
    >>> round(d.per_label[0].mcb, 4), round(d.per_label[0].dsc, 4)   # trueprob.decompose's example
    (0.0875, 0.0625)
    >>> m = d.macro
    >>> bool(np.isclose(m.score, m.mcb - m.dsc + m.unc))
    True
    """
    inputs = prepare_multilabel(labels, logits=logits, probs=probs, sample_weight=sample_weight)
    n, k = inputs.n_rows, inputs.n_labels
    s = np.empty((n, k))
    y = np.empty((n, k), dtype=np.int64)
    w = np.ones(n)
    for chunk in inputs.chunks():
        rows = slice(chunk.offset, chunk.offset + chunk.n_rows)
        s[rows] = to_numpy(chunk.scores)
        y[rows] = to_numpy(chunk.labels)
        if chunk.weights is not None:
            w[rows] = to_numpy(chunk.weights)
    def one(yy: np.ndarray, ss: np.ndarray, ww: np.ndarray) -> Decomposition:
        scores: dict[str, Any] = {inputs.kind: ss}
        return decompose(yy, **scores, sample_weight=ww, score=score, estimator=estimator,
                         n_bins=n_bins, unit=unit)

    per = tuple(one(y[:, j], s[:, j], w) for j in range(k))
    micro = one(y.ravel(), s.ravel(), np.repeat(w, k))

    def avg(name: str) -> float:
        return float(np.mean([getattr(d, name) for d in per]))

    first = per[0]
    macro = Decomposition(first.score_name, first.estimator, "macro", first.unit, avg("score"),
                          avg("mcb"), avg("dsc"), avg("unc"), avg("recalibrated"))
    return MultilabelDecomposition(per, micro, macro)
