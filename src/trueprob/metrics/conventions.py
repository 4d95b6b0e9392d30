"""Other libraries' calibration errors, reproduced on request (SPEC.md, "Binning").

trueprob's own ECE uses right-closed equal-width bins with the index clip(ceil(B*c) - 1, 0, B-1)
in float64. Other libraries bin differently, and a number from a paper or a peer library can
only be compared with trueprob's when it is computed their way. This module computes, from the
same validated inputs, the number each of these gives:

============  ==========================================================================
convention    what it reproduces
============  ==========================================================================
torchmetrics  ``torchmetrics.functional.classification.multiclass_calibration_error`` and
              ``binary_calibration_error`` (checked against torchmetrics 1.9.0, torch 2.13)
sklearn       an ECE built from ``sklearn.calibration.calibration_curve`` (scikit-learn has
              no ECE): sum over non-empty bins of (n_b/N) |prob_true_b - prob_pred_b|
netcal        ``netcal.metrics.ECE(bins).measure(X, y)`` and ``netcal.metrics.MCE`` (1.4.0)
relplot       ``relplot.metrics.binnedECE(f, y, nbins)`` (1.0.3)
kull2019      ``classwise_ECE`` / ``binary_ECE`` of the code behind Kull et al. 2019's tables
              (github.com/dirichletcal/experiments_neurips, ``calib/utils/functions.py``)
kumar2019     ``get_ece_em`` (equal-mass bins from ``np.array_split``) and ``get_ece`` of
              Kumar, Liang, Ma 2019's ``verified_calibration`` (``calibration/utils.py``)
============  ==========================================================================

Each function below states its library's rules: where the bin edges come from and in which
floating-point type, which side of a bin is closed, where a confidence of exactly 1.0 (or 0.0)
goes, what the bin-count argument counts, how empty bins count, and in which precision the
per-bin sums are accumulated. Where a library's float32 arithmetic changes the number (bin
membership, float32 sums accumulated row by row), it is reproduced exactly: the bin count
argument ``n_bins`` is always passed through with the library's own meaning.

None of the libraries takes row weights or soft targets, so these functions take hard
``labels`` only. Inputs are validated by :func:`trueprob._validation.prepare`; probabilities
come from :func:`trueprob.core.rows.row_quantities` (logits go through trueprob's softmax,
computed in the logits' dtype, which can differ from a library's own softmax in the last bit).
Arrays of any array-API namespace are accepted; each chunk is copied to host memory as numpy,
because the reproduced arithmetic is numpy's or torch's CPU arithmetic (torchmetrics on a GPU
adds its float32 sums in a nondeterministic order, which no one can reproduce exactly).

``kind`` names the quantity:

- ``"top_label"``: confidence c_i = max_k q_ik against correctness a_i = 1[yhat_i = y_i];
- ``"positive_class"``: binary inputs only, the positive-class probability q_i1 against y_i
  (what ``binary_calibration_error``, ``calibration_curve`` and ``binary_ECE`` compute);
- ``"classwise"``: q_ik against 1[y_i = k] for every class k (``kull2019`` only).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from fractions import Fraction
from types import MappingProxyType
from typing import Any, Literal

import numpy as np

from trueprob._array import to_numpy
from trueprob._validation import Inputs, prepare
from trueprob.core.rows import row_quantities

Kind = Literal["top_label", "positive_class", "classwise"]
Norm = Literal["l1", "l2", "max"]
Strategy = Literal["uniform", "quantile"]


@dataclass(frozen=True)
class ConventionRules:
    """What one compatibility convention offers (for option checks and the CLI's help)."""

    name: str
    reproduces: str
    kinds: tuple[str, ...]
    norms: tuple[str, ...]
    strategies: tuple[str, ...]


#: The conventions, by name, with the kinds, norms and binning strategies each library has.
CONVENTIONS: Mapping[str, ConventionRules] = MappingProxyType({
    "torchmetrics": ConventionRules(
        "torchmetrics",
        "torchmetrics multiclass_calibration_error / binary_calibration_error",
        ("top_label", "positive_class"), ("l1", "l2", "max"), ("uniform",)),
    "sklearn": ConventionRules(
        "sklearn",
        "ECE built from scikit-learn's calibration_curve (weights n_b/N)",
        ("top_label", "positive_class"), ("l1", "l2", "max"), ("uniform", "quantile")),
    "netcal": ConventionRules(
        "netcal",
        "netcal.metrics.ECE / MCE (classification, not detection)",
        ("top_label", "positive_class"), ("l1", "max"), ("uniform", "quantile")),
    "relplot": ConventionRules(
        "relplot", "relplot.metrics.binnedECE",
        ("top_label", "positive_class"), ("l1",), ("uniform",)),
    "kull2019": ConventionRules(
        "kull2019",
        "classwise_ECE / binary_ECE of Kull et al. 2019 (dirichletcal/experiments_neurips)",
        ("classwise", "positive_class"), ("l1",), ("uniform",)),
    "kumar2019": ConventionRules(
        "kumar2019",
        "verified_calibration get_ece_em / get_ece (Kumar, Liang, Ma 2019), top-label",
        ("top_label",), ("l1", "l2"), ("quantile", "uniform")),
})


# --------------------------------------------------------------------------------------------
# Inputs -> per-chunk numpy rows
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Rows:
    """One chunk as numpy: ``score`` (n,) in the inputs' floating dtype (c_i or q_i1),
    ``outcome`` (n,) float64 (a_i or y_i), and for classwise the (n, K) ``probs`` and labels."""

    score: np.ndarray
    outcome: np.ndarray
    probs: np.ndarray | None
    labels: np.ndarray | None


def _check_options(convention: str, kind: str, norm: str, strategy: str, n_bins: object) -> None:
    if convention not in CONVENTIONS:
        raise ValueError(
            f"convention must be one of {tuple(CONVENTIONS)}; got {convention!r}")
    rules = CONVENTIONS[convention]
    if kind not in ("top_label", "positive_class", "classwise"):
        raise ValueError(
            f"kind must be 'top_label', 'positive_class' or 'classwise'; got {kind!r}")
    if kind not in rules.kinds:
        hint = ""
        if convention == "kull2019" and kind == "top_label":
            hint = (". The confidence ECE in Kull et al. 2019's tables used right-closed "
                    "equal-width bins, trueprob's default: use top_label_ece")
        elif kind == "classwise":
            hint = (f". {convention} has no classwise ECE; trueprob's own is classwise_ece "
                    f"(reduce='sum' for Kull et al.'s figure)")
        raise ValueError(f"convention={convention!r} has no kind={kind!r}; it offers kind in "
                         f"{rules.kinds}{hint}")
    if norm not in ("l1", "l2", "max"):
        raise ValueError(f"norm must be 'l1', 'l2' or 'max'; got {norm!r}")
    if norm not in rules.norms:
        raise ValueError(f"convention={convention!r} has no norm={norm!r}; it offers norm in "
                         f"{rules.norms}")
    if strategy not in ("uniform", "quantile"):
        raise ValueError(f"strategy must be 'uniform' or 'quantile'; got {strategy!r}")
    if strategy not in rules.strategies:
        raise ValueError(f"convention={convention!r} has no strategy={strategy!r}; it offers "
                         f"strategy in {rules.strategies}")
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer; got {n_bins!r}")


def _prepare(convention: str, kind: str, labels: Any, logits: Any, probs: Any,
             confidences: Any, predictions: Any) -> Inputs:
    if labels is None:
        raise TypeError(
            f"labels are required: convention={convention!r} takes hard labels only (the "
            f"library it reproduces has no soft targets or counts)")
    inputs = prepare(labels, logits=logits, probs=probs, confidences=confidences,
                     predictions=predictions)
    if kind != "top_label" and inputs.kind == "confidences":
        raise ValueError(
            f"kind={kind!r} needs the full probabilities (logits= or probs=); confidences= "
            f"with predictions= give only the top label")
    if kind == "positive_class" and inputs.n_classes != 2:
        raise ValueError(
            f"kind='positive_class' needs a binary problem (probs or logits of shape (N,) or "
            f"(N, 2)); got K={inputs.n_classes} classes")
    return inputs


def _rows(inputs: Inputs, kind: str) -> Iterator[_Rows]:
    """Per chunk, in row order: the score in the inputs' dtype and the outcome in float64."""
    xp = inputs.xp
    for chunk in inputs.chunks():
        rq = row_quantities(xp, chunk, need_scores=False)
        labels = chunk.labels
        assert labels is not None
        if kind == "top_label":
            # c_i was cast to float64 from the inputs' dtype: casting back is exact.
            score = to_numpy(xp.astype(rq.confidence, chunk.scores.dtype))
            yield _Rows(score, to_numpy(rq.correct), None, None)
        elif kind == "positive_class":
            assert rq.probs is not None
            score = to_numpy(rq.probs[:, 1])
            yield _Rows(score, to_numpy(xp.astype(labels, xp.float64)), None, None)
        else:
            assert rq.probs is not None
            q = to_numpy(rq.probs)
            yield _Rows(q[:, 0], np.zeros(0), q, to_numpy(labels))


def _score_dtype(inputs: Inputs) -> np.dtype:
    """The numpy dtype of the inputs' scores (logits, probabilities or confidences)."""
    return np.dtype(str(inputs.scores.dtype).rsplit(".", 1)[-1])


def _gather(rows: Iterator[_Rows]) -> tuple[np.ndarray, np.ndarray]:
    """All scores and outcomes (for the quantile strategies, which need every row)."""
    scores, outcomes = [], []
    for r in rows:
        scores.append(r.score)
        outcomes.append(r.outcome)
    return np.concatenate(scores), np.concatenate(outcomes)


def _norm_of(gaps: np.ndarray, weights: np.ndarray, norm: str) -> float:
    """l1: sum w|g|; l2: sqrt(sum w g^2); max: max |g| (float64; empty input: 0)."""
    if norm == "l1":
        return float(np.sum(weights * np.abs(gaps)))
    if norm == "l2":
        return float(np.sqrt(np.sum(weights * gaps ** 2)))
    return float(np.max(np.abs(gaps))) if gaps.size else 0.0


# --------------------------------------------------------------------------------------------
# torchmetrics
# --------------------------------------------------------------------------------------------

def torch_linspace_edges(n_bins: int, dtype: Any = np.float32) -> np.ndarray:
    """The B+1 values of ``torch.linspace(0, 1, B + 1, dtype=dtype)`` on a CPU.

    torch fills the first half as ``i * step`` and the second half as ``1 - (B - i) * step``
    with ``step = 1 / B`` rounded to ``dtype``; each value is rounded once (a fused multiply-add
    in its vectorised kernel). The result differs from ``np.linspace`` and from ``k / B`` in
    the last bit for many B (e.g. B = 15, float32: edge 12 is 0.800000011920929, not
    float32(12 * step)). Verified against torch 2.13 (x86-64, AVX2) for B = 1..599 in float32
    and float64.

    Examples
    --------
    >>> e = torch_linspace_edges(15)
    >>> e.dtype, float(e[3]), float(e[12])
    (dtype('float32'), 0.20000001788139343, 0.800000011920929)
    """
    dt = np.dtype(dtype)
    step = Fraction(float(np.divide(dt.type(1.0), dt.type(n_bins))))
    half = (n_bins + 1) // 2
    exact = [i * step if i < half else 1 - (n_bins - i) * step for i in range(n_bins + 1)]
    if dt == np.float64:
        return np.array([float(v) for v in exact], dtype=np.float64)  # correctly rounded
    # float32 (or float16): every exact value fits in float64 (step has 24 bits, B < 2**29),
    # so the cast below is the single rounding.
    return np.array([float(v) for v in exact], dtype=np.float64).astype(dt)


class _TorchmetricsState:
    """Per-bin sums exactly as torchmetrics' ``_binning_bucketize`` keeps them."""

    def __init__(self, n_bins: int, dtype: Any) -> None:
        self.dtype = np.dtype(dtype)
        self.edges = torch_linspace_edges(n_bins, self.dtype)
        # B + 1 slots: torchmetrics sizes its bins like the boundaries, so c = 1.0 gets its own.
        self.count = np.zeros(n_bins + 1, self.dtype)
        self.conf = np.zeros(n_bins + 1, self.dtype)
        self.acc = np.zeros(n_bins + 1, self.dtype)

    def update(self, score: np.ndarray, outcome: np.ndarray) -> None:
        c = score.astype(self.dtype)
        a = outcome.astype(self.dtype)
        # torch.bucketize(c, edges, right=True) - 1: bin j = [e_j, e_{j+1}), and c >= e_B = 1
        # lands in the extra slot B.
        idx = np.searchsorted(self.edges, c, side="right") - 1
        # scatter_add_ on a CPU adds row by row in the tensor's dtype; ufunc.at does the same.
        np.add.at(self.count, idx, self.dtype.type(1.0))
        np.add.at(self.conf, idx, c)
        np.add.at(self.acc, idx, a)

    def finalize(self, norm: str) -> float:
        nonempty = self.count > 0
        conf = np.divide(self.conf, self.count, out=np.zeros_like(self.conf), where=nonempty)
        acc = np.divide(self.acc, self.count, out=np.zeros_like(self.acc), where=nonempty)
        prop = self.count / np.sum(self.count, dtype=self.dtype)
        gap = acc - conf
        if norm == "l1":
            return float(np.sum(np.abs(gap) * prop, dtype=self.dtype))
        if norm == "max":
            return float(np.max(np.abs(gap)))  # empty bins included, with gap 0
        ce = np.sum(gap * gap * prop, dtype=self.dtype)
        return float(np.sqrt(ce)) if ce > 0 else 0.0


def torchmetrics_calibration_error(
    labels: Any = None,
    /,
    *,
    logits: Any = None,
    probs: Any = None,
    confidences: Any = None,
    predictions: Any = None,
    n_bins: int = 15,
    kind: str = "top_label",
    norm: str = "l1",
) -> float:
    """The number torchmetrics' calibration error gives on these inputs.

    ``kind="top_label"`` reproduces ``multiclass_calibration_error(preds, target, num_classes=K,
    n_bins=B, norm=norm)``; ``kind="positive_class"`` reproduces ``binary_calibration_error(
    preds, target, n_bins=B, norm=norm)`` with ``preds`` the positive-class probability.

    Rules (torchmetrics 1.9.0, read from ``functional/classification/calibration_error.py``):

    - scores s_i: top-label c_i = max_k q_ik cast to **float32** (always, even for float64
      inputs: ``confidences.float()``), with a_i = 1[yhat_i = y_i]; positive-class: q_i1 in the
      inputs' own dtype, with a_i = y_i.
    - edges e = ``torch.linspace(0, 1, B+1)`` in that dtype (:func:`torch_linspace_edges`);
      bin j = [e_j, e_{j+1}) for j = 0..B-1 (left-closed, ``bucketize(right=True)``), and an
      extra bin B holding every s_i = 1.0. ``n_bins`` counts the equal bins; B+1 bins exist.
    - per-bin sums n_b, S_b = sum s_i, A_b = sum a_i accumulated row by row in that dtype
      (float32 for top-label); conf_b = S_b/n_b, acc_b = A_b/n_b (0 for empty bins).
    - ``l1``: ECE = sum_{b=0}^{B} (n_b/N) |acc_b - conf_b|; ``l2``: sqrt(sum_b (n_b/N)
      (acc_b - conf_b)^2) (0 when the sum is 0); ``max``: max_b |acc_b - conf_b| over all B+1
      bins, empty ones counting 0. torchmetrics guesses logits from values outside [0, 1];
      trueprob never guesses: pass ``logits=`` or ``probs=``.

    The sums are reproduced in the same order and precision; only the final sum of B+1 terms
    may differ from torch's reduction order by an ulp of float32.

    Examples
    --------
    >>> import numpy as np
    >>> q = np.array([[0.25, 0.20, 0.55], [0.55, 0.05, 0.40],
    ...               [0.10, 0.30, 0.60], [0.90, 0.05, 0.05]])
    >>> y = np.array([0, 1, 2, 0])
    >>> round(torchmetrics_calibration_error(y, probs=q, n_bins=3), 4)  # torchmetrics: 0.2000
    0.2
    >>> round(torchmetrics_calibration_error(y, probs=q, n_bins=3, norm="max"), 4)
    0.2333
    """
    _check_options("torchmetrics", kind, norm, "uniform", n_bins)
    inputs = _prepare("torchmetrics", kind, labels, logits, probs, confidences, predictions)
    # multiclass: ``confidences.float()``; binary: the inputs' own dtype
    dtype = np.dtype(np.float32) if kind == "top_label" else _score_dtype(inputs)
    state = _TorchmetricsState(int(n_bins), dtype)
    for r in _rows(inputs, kind):
        state.update(r.score, r.outcome)
    return state.finalize(norm)


# --------------------------------------------------------------------------------------------
# scikit-learn calibration_curve
# --------------------------------------------------------------------------------------------

def sklearn_calibration_error(
    labels: Any = None,
    /,
    *,
    logits: Any = None,
    probs: Any = None,
    confidences: Any = None,
    predictions: Any = None,
    n_bins: int = 15,
    kind: str = "top_label",
    norm: str = "l1",
    strategy: str = "uniform",
) -> float:
    """The ECE built from scikit-learn's ``calibration_curve`` on these inputs.

    scikit-learn has no ECE. The usual construction, reproduced here, calls
    ``prob_true, prob_pred = calibration_curve(y, s, n_bins=B, strategy=strategy)`` and weights
    each returned (non-empty) bin by its share of rows n_b/N, with n_b counted by the same bins:
    ``l1``: sum_b (n_b/N) |prob_true_b - prob_pred_b|; ``l2``: the square root of
    sum_b (n_b/N) (prob_true_b - prob_pred_b)^2; ``max``: max_b |prob_true_b - prob_pred_b|.
    Top-label: s_i = c_i, y_i -> a_i; positive-class: s_i = q_i1 against y_i (the binary case
    ``calibration_curve`` is written for).

    Rules (scikit-learn 1.9.1, ``sklearn/calibration.py``):

    - ``strategy="uniform"``: edges ``np.linspace(0, 1, B+1)`` in float64; ``"quantile"``:
      edges ``np.percentile(s, np.linspace(0, 1, B+1) * 100)`` of the scores in their own
      dtype (needs all N scores in memory).
    - bin of s = ``np.searchsorted(edges[1:-1], s)``: right-closed bins (e_j, e_{j+1}], with
      s = 0 in bin 0 and s = 1 in bin B-1 (the same bins as trueprob's default, up to the
      float64 edges of ``linspace``). Repeated quantile edges leave bins empty; ties never
      split. ``n_bins`` counts bins; empty bins are dropped.
    - per-bin sums in float64 (``np.bincount``).

    Examples
    --------
    >>> import numpy as np
    >>> y = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1])
    >>> p = np.array([0.1, 0.2, 0.3, 0.4, 0.65, 0.7, 0.8, 0.9, 1.0])
    >>> # calibration_curve(y, p, n_bins=3): prob_true (0, 0.5, 1), prob_pred (0.2, 0.525,
    >>> # 0.85), bins of 3, 2 and 4 rows: (3*0.2 + 2*0.025 + 4*0.15) / 9 = 1.25 / 9
    >>> round(sklearn_calibration_error(y, probs=p, n_bins=3, kind="positive_class"), 6)
    0.138889
    """
    _check_options("sklearn", kind, norm, strategy, n_bins)
    inputs = _prepare("sklearn", kind, labels, logits, probs, confidences, predictions)
    b = int(n_bins)
    if strategy == "quantile":
        s, y = _gather(_rows(inputs, kind))
        edges = np.percentile(s, np.linspace(0, 1, b + 1) * 100)
        chunks: Iterator[tuple[np.ndarray, np.ndarray]] = iter([(s, y)])
    else:
        edges = np.linspace(0.0, 1.0, b + 1)
        chunks = ((r.score, r.outcome) for r in _rows(inputs, kind))
    inner = edges[1:-1]
    total = np.zeros(b, np.int64)
    s_sum = np.zeros(b)
    y_sum = np.zeros(b)
    for s, y in chunks:
        ids = np.searchsorted(inner, s)
        total += np.bincount(ids, minlength=b)
        s_sum += np.bincount(ids, weights=s, minlength=b)
        y_sum += np.bincount(ids, weights=y, minlength=b)
    nonzero = total != 0
    prob_true = y_sum[nonzero] / total[nonzero]
    prob_pred = s_sum[nonzero] / total[nonzero]
    weights = total[nonzero] / total.sum()
    return _norm_of(prob_true - prob_pred, weights, norm)


# --------------------------------------------------------------------------------------------
# netcal
# --------------------------------------------------------------------------------------------

def netcal_calibration_error(
    labels: Any = None,
    /,
    *,
    logits: Any = None,
    probs: Any = None,
    confidences: Any = None,
    predictions: Any = None,
    n_bins: int = 15,
    kind: str = "top_label",
    norm: str = "l1",
    strategy: str = "uniform",
) -> float:
    """The number ``netcal.metrics.ECE(bins=B).measure(X, y)`` (``norm="l1"``) or
    ``netcal.metrics.MCE(bins=B).measure(X, y)`` (``norm="max"``) gives on these inputs.

    ``strategy="quantile"`` is netcal's ``equal_intervals=False``. ``kind="top_label"`` is
    netcal's multiclass mode (X of shape (N, K), K >= 3); ``kind="positive_class"`` is its
    binary mode (X of shape (N,) or (N, 2): the positive-class column is used).

    Rules (netcal 1.4.0, ``netcal/metrics/Miscalibration.py``):

    - every probability is first clipped to [eps, 1 - eps], eps the machine epsilon of the
      inputs' dtype, so c = 1.0 becomes 1 - eps and counts as that in the bin's mean
      confidence; then c_i = max_k and a_i = 1[argmax_k = y_i] (multiclass).
    - netcal decides binary versus multiclass from the labels: when they take at most two
      distinct values it treats the input as binary and refuses more than two columns. Here
      ``kind="top_label"`` therefore needs at least three distinct labels.
    - edges ``np.linspace(0.0, 1.0, B+1)`` in float64 (``"quantile"``: ``np.quantile`` of the
      clipped scores, first and last edge set to 0 and 1); bins [e_j, e_{j+1}) (left-closed;
      no score reaches 1 after clipping). ``n_bins`` counts bins.
    - the bin counts n_b come from ``np.histogramdd`` with those float64 edges, but the bin
      means acc_b, conf_b from ``scipy.stats.binned_statistic_dd``, which first casts the edges
      to the scores' dtype: for float32 scores equal to a float32-rounded-down edge the two
      disagree, and both are reproduced. Means are float64 sums (``np.bincount``); a bin empty
      in either is given acc_b = conf_b = 0. scipy refuses edges that coincide after that cast
      ("smallest edge difference is numerically 0"); so does this function.
    - ECE = sum_b (n_b/N) |acc_b - conf_b|; MCE = max_b |acc_b - conf_b| (empty bins 0).

    Examples
    --------
    >>> import numpy as np
    >>> q = np.array([[0.7, 0.2, 0.1], [0.6, 0.3, 0.1], [0.1, 0.1, 0.8], [0.2, 0.3, 0.5]])
    >>> y = np.array([0, 1, 2, 2])
    >>> # confidences 0.7, 0.6, 0.8, 0.5, correct 1, 0, 1, 1; two bins [0, 0.5), [0.5, 1]:
    >>> # 0.5 is on the edge and goes up, so one bin: |3/4 - 0.65| = 0.1
    >>> round(netcal_calibration_error(y, probs=q, n_bins=2), 6)
    0.1
    >>> # scikit-learn's bins are right-closed: {0.5}: 1/4 * 0.5, {0.6, 0.7, 0.8}: 3/4 * 1/30
    >>> round(sklearn_calibration_error(y, probs=q, n_bins=2), 6)
    0.15
    """
    _check_options("netcal", kind, norm, strategy, n_bins)
    inputs = _prepare("netcal", kind, labels, logits, probs, confidences, predictions)
    b = int(n_bins)
    if kind == "top_label":
        _check_netcal_multiclass(inputs)

    def clipped(rows: Iterator[_Rows]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for r in rows:
            eps = np.finfo(r.score.dtype).eps
            yield np.clip(r.score, eps, 1.0 - eps), r.outcome

    dtype = _score_dtype(inputs)
    chunks: Iterator[tuple[np.ndarray, np.ndarray]]
    if strategy == "quantile":
        s, y = _gather(_Rows(x, o, None, None) for x, o in clipped(_rows(inputs, kind)))
        edges = np.quantile(s, q=np.linspace(0.0, 1.0, b + 1))
        edges[0] = 0.0
        edges[-1] = 1.0
        chunks = iter([(s, y)])
    else:
        edges = np.linspace(0.0, 1.0, b + 1)
        chunks = clipped(_rows(inputs, kind))
    if np.any(edges[:-1] > edges[1:]):  # np.histogramdd's own check
        raise ValueError(f"netcal bin edges must increase; got {edges.tolist()}")
    edges_cast = edges.astype(dtype)
    if np.min(np.diff(edges_cast)) == 0:
        raise ValueError(
            f"netcal (scipy.stats.binned_statistic_dd) refuses these bins: two of the "
            f"{b + 1} edges coincide in {dtype} ('The smallest edge difference is numerically "
            f"0'); edges {edges_cast.tolist()}")
    count = np.zeros(b)
    count_cast = np.zeros(b)
    conf_sum = np.zeros(b)
    acc_sum = np.zeros(b)
    for s, y in chunks:
        # histogramdd: searchsorted(edges, s, 'right') - 1 with float64 edges
        idx = np.searchsorted(edges, s, side="right") - 1
        count += np.bincount(idx, minlength=b)[:b]
        # binned_statistic_dd: np.digitize against the edges cast to the scores' dtype
        idx_cast = np.searchsorted(edges_cast, s, side="right") - 1
        count_cast += np.bincount(idx_cast, minlength=b)[:b]
        conf_sum += np.bincount(idx_cast, weights=s, minlength=b)[:b]
        acc_sum += np.bincount(idx_cast, weights=y, minlength=b)[:b]
    both = (count_cast > 0) & (count >= 1)
    conf = np.divide(conf_sum, count_cast, out=np.zeros(b), where=both)
    acc = np.divide(acc_sum, count_cast, out=np.zeros(b), where=both)
    deviation = np.abs(acc - conf)
    if norm == "max":
        return float(np.max(deviation))
    return float(np.sum(deviation * (count / np.sum(count))))


def _check_netcal_multiclass(inputs: Inputs) -> None:
    seen = np.zeros(inputs.n_classes, dtype=bool)
    for chunk in inputs.chunks():
        assert chunk.labels is not None
        seen[to_numpy(chunk.labels)] = True
    distinct = int(seen.sum())
    if distinct < 3:
        raise ValueError(
            f"convention='netcal' with kind='top_label' needs labels with at least 3 distinct "
            f"values; these have {distinct}. netcal treats such inputs as binary (its "
            f"positive-class mode, kind='positive_class') and refuses more than two columns")


# --------------------------------------------------------------------------------------------
# relplot
# --------------------------------------------------------------------------------------------

def relplot_binned_ece(
    labels: Any = None,
    /,
    *,
    logits: Any = None,
    probs: Any = None,
    confidences: Any = None,
    predictions: Any = None,
    n_bins: int = 15,
    kind: str = "top_label",
) -> float:
    """The number ``relplot.metrics.binnedECE(f, y, nbins=B)`` gives on these inputs.

    Top-label: f, y as ``relplot.multiclass_logits_to_confidences(q, y, probs=True)`` makes them
    (f_i = c_i in the probabilities' dtype, y_i = a_i); positive-class: f_i = q_i1, y_i.

    Rules (relplot 1.0.3, ``relplot/metrics.py``, ``binning``):

    - bin of f = ``int(f / (1/B))``, the division done in f's own dtype (float32 stays
      float32), truncated: left-closed bins [j/B, (j+1)/B) up to that rounding, so a score on
      an edge k/B can land in bin k - 1 (e.g. float32 k/15 for k = 7, 13, 14). f = 1.0 gets
      its own bin B. relplot allocates ``int(1/(1/B)) + 1`` bins, which is B for some B
      (93, 99, 105, ...): relplot then fails with an IndexError on f = 1.0, and this function
      raises ValueError.
    - per-bin sums of the residual r_i = f_i - y_i, in float64, row by row;
      ECE = sum_b |sum_{i in b} r_i| / N = sum_b (n_b/N) |conf_b - acc_b|. ``n_bins`` counts
      the equal bins; empty bins add 0.

    Examples
    --------
    >>> import numpy as np
    >>> c = np.array([0.95, 0.95, 1.0, 0.55])
    >>> correct = np.array([1, 0, 1, 1])
    >>> # bins: {0.95, 0.95} residual 0.9, {1.0} residual 0, {0.55} residual -0.45
    >>> round(relplot_binned_ece(np.where(correct == 1, 0, 1), confidences=c,
    ...                          predictions=np.zeros(4, dtype=int), n_bins=10), 6)
    0.3375
    """
    _check_options("relplot", kind, "l1", "uniform", n_bins)
    inputs = _prepare("relplot", kind, labels, logits, probs, confidences, predictions)
    bin_size = 1.0 / int(n_bins)
    slots = int(1 / bin_size) + 1
    sums = np.zeros(slots)
    n = 0
    for r in _rows(inputs, kind):
        f = r.score
        idx = (f / f.dtype.type(bin_size)).astype(np.int64)
        if idx.size and int(idx.max()) >= slots:
            raise ValueError(
                f"relplot's binnedECE fails for n_bins={n_bins}: it allocates "
                f"int(1/(1/{n_bins})) + 1 = {slots} bins, but a score of "
                f"{float(f[int(np.argmax(idx))])!r} needs bin {int(idx.max())}")
        sums += np.bincount(idx, weights=f.astype(np.float64) - r.outcome, minlength=slots)
        n += f.shape[0]
    return float(np.abs(sums).sum() / n)


# --------------------------------------------------------------------------------------------
# Kull et al. 2019
# --------------------------------------------------------------------------------------------

def kull2019_calibration_error(
    labels: Any = None,
    /,
    *,
    logits: Any = None,
    probs: Any = None,
    n_bins: int = 15,
    kind: str = "classwise",
) -> float:
    """Kull et al. 2019's classwise ECE (``kind="classwise"``) or binary ECE
    (``kind="positive_class"``), as their code computes it.

    Source: ``classwise_ECE`` and ``binary_ECE`` in ``calib/utils/functions.py`` of
    github.com/dirichletcal/experiments_neurips (commit 023e551e), the code behind the
    paper's tables.

    Rules:

    - bin of p = ``np.digitize(p, np.linspace(0, 1, B)) - 1`` with float64 edges: B - 1
      left-closed bins [j/(B-1), (j+1)/(B-1)) plus one bin for p = 1.0. ``n_bins`` = B
      counts *edges*: the default 15 gives 14 equal bins of width 1/14, not 15.
    - binary ECE of (p, y) = sum over non-empty bins of (n_b/N) |mean_b p - mean_b y|.
    - classwise ECE = sum_k binaryECE(q_ik, 1[y_i = k]): **summed** over the K classes, not
      averaged (SPEC.md: ``reduce="sum"``, the figure the paper printed). A copy of the same
      function in github.com/dirichletcal/experiments_dnn (``scripts/utility/evaluation.py``)
      averages instead; that is K times smaller.
    - means accumulate in float64 here; the original takes ``np.mean`` in the probabilities'
      dtype (float32 pairwise sums), a difference below 1e-7 relative on the data checked
      (at most 5.7e-8 on the netcal and Mukhoti CIFAR files).
    - the original fails for K = 2 (``label_binarize`` returns one column), so K >= 3 is
      required for classwise; use ``kind="positive_class"`` for a binary problem.

    Examples
    --------
    >>> import numpy as np
    >>> q = np.array([[0.5, 0.25, 0.25], [1.0, 0.0, 0.0], [0.0, 0.5, 0.5]])
    >>> y = np.array([0, 0, 2])
    >>> # B = 3 edges (0, 0.5, 1): bins [0, 0.5), [0.5, 1), {1.0}
    >>> # class 0: {0.0} y 0 | {0.5} y 1: 0.5/3 | {1.0} y 1   -> 1/6
    >>> # class 1: {0.25, 0.0} y 0: 0.125*2/3 | {0.5} y 0: 0.5/3 -> 1/4
    >>> # class 2: {0.25, 0.0} y 0: 0.125*2/3 | {0.5} y 1: 0.5/3 -> 1/4
    >>> round(kull2019_calibration_error(y, probs=q, n_bins=3), 6)  # 1/6 + 1/4 + 1/4
    0.666667
    """
    _check_options("kull2019", kind, "l1", "uniform", n_bins)
    inputs = _prepare("kull2019", kind, labels, logits, probs, None, None)
    b = int(n_bins)
    edges = np.linspace(0, 1, b)
    if kind == "positive_class":
        p_sum = np.zeros(b)
        y_sum = np.zeros(b)
        count = np.zeros(b)
        for r in _rows(inputs, kind):
            idx = np.searchsorted(edges, r.score, side="right") - 1  # np.digitize(p, e) - 1
            count += np.bincount(idx, minlength=b)
            p_sum += np.bincount(idx, weights=r.score, minlength=b)
            y_sum += np.bincount(idx, weights=r.outcome, minlength=b)
        return _kull_binary(p_sum, y_sum, count)
    k = inputs.n_classes
    if k < 3:
        raise ValueError(
            f"kull2019 classwise ECE needs K >= 3 classes (the original code fails for K = 2); "
            f"got K={k}. Use kind='positive_class' for a binary problem")
    p_sum = np.zeros((k, b))
    y_sum = np.zeros((k, b))
    count = np.zeros((k, b))
    for r in _rows(inputs, "classwise"):
        assert r.probs is not None and r.labels is not None
        q = r.probs
        idx = np.searchsorted(edges, q.ravel(), side="right").reshape(q.shape) - 1
        flat = (np.arange(k) * b)[None, :] + idx  # (n, K): class k's bins are k*b .. k*b+b-1
        count += np.bincount(flat.ravel(), minlength=k * b).reshape(k, b)
        p_sum += np.bincount(flat.ravel(), weights=q.ravel(), minlength=k * b).reshape(k, b)
        hit = flat[np.arange(q.shape[0]), r.labels]
        y_sum += np.bincount(hit, minlength=k * b).reshape(k, b)
    return float(np.sum([_kull_binary(p_sum[c], y_sum[c], count[c]) for c in range(k)]))


def _kull_binary(p_sum: np.ndarray, y_sum: np.ndarray, count: np.ndarray) -> float:
    """sum over non-empty bins, in increasing bin order, of (n_b/N) |mean p - mean y|."""
    n = float(np.sum(count))
    ece = 0.0
    for j in np.flatnonzero(count):
        ece += abs(p_sum[j] / count[j] - y_sum[j] / count[j]) * count[j] / n
    return ece


# --------------------------------------------------------------------------------------------
# Kumar, Liang, Ma 2019
# --------------------------------------------------------------------------------------------

def kumar2019_calibration_error(
    labels: Any = None,
    /,
    *,
    logits: Any = None,
    probs: Any = None,
    confidences: Any = None,
    predictions: Any = None,
    n_bins: int = 15,
    kind: str = "top_label",
    norm: str = "l1",
    strategy: str = "quantile",
) -> float:
    """The top-label calibration error ``verified_calibration`` (Kumar, Liang, Ma 2019,
    github.com/p-lambda/verified_calibration, ``calibration/utils.py``) gives: ``get_ece_em``
    (``strategy="quantile"``, the default) or ``get_ece`` (``strategy="uniform"``), with
    ``norm="l2"`` its ``p=2`` plug-in estimate (``debias=False``).

    Rules:

    - scores c_i = max_k q_ik as float64, outcomes a_i = 1[argmax_k q_ik = y_i].
    - ``quantile`` (``get_equal_bins``): B' = min(B, N); the sorted scores are cut into B'
      parts by ``np.array_split`` (the first N mod B' parts hold one more row); the edge
      between parts j and j+1 is the midpoint of the last score of part j and the first of
      part j+1, in float64; then 1.0 closes the last bin; repeated edges are merged.
    - ``uniform`` (``get_equal_prob_bins``): edges j/B, j = 1..B.
    - a score s goes to bin ``searchsorted(edges, s)`` (side left): bin j = (e_{j-1}, e_j],
      everything <= e_0 in bin 0. Ties are never split (their bin depends only on the value).
    - CE_p = ( sum_b (n_b/N) |mean_b c - mean_b a|^p )^(1/p), empty bins adding 0.

    Needs every row (the quantile edges are order statistics): O(N) memory.

    Examples
    --------
    >>> import numpy as np
    >>> c = np.array([0.6, 0.7, 0.8, 0.9])
    >>> y = np.array([0, 1, 0, 0])          # correct: 1, 0, 1, 1 (all predictions are 0)
    >>> pred = np.zeros(4, dtype=int)
    >>> # B = 2: parts {0.6, 0.7} | {0.8, 0.9}, edges 0.75 and 1.0:
    >>> # |0.65 - 0.5| / 2 + |0.85 - 1| / 2
    >>> round(kumar2019_calibration_error(y, confidences=c, predictions=pred, n_bins=2), 6)
    0.15
    """
    _check_options("kumar2019", kind, norm, strategy, n_bins)
    inputs = _prepare("kumar2019", kind, labels, logits, probs, confidences, predictions)
    scores, outcomes = _gather(_rows(inputs, kind))
    scores = scores.astype(np.float64)
    n = scores.shape[0]
    if strategy == "quantile":
        parts = min(int(n_bins), n)
        ordered = np.sort(scores)
        # np.array_split: the first n mod parts parts hold n // parts + 1 rows
        size, extra = divmod(n, parts)
        ends = np.cumsum([size + 1 if j < extra else size for j in range(parts)])
        inner = (ordered[ends[:-1] - 1] + ordered[ends[:-1]]) / 2.0
        edges = np.unique(np.append(inner, 1.0))
    else:
        edges = np.array([j / int(n_bins) for j in range(1, int(n_bins) + 1)])
    idx = np.searchsorted(edges, scores, side="left")
    count = np.bincount(idx, minlength=edges.size + 1).astype(np.float64)
    resid = np.bincount(idx, weights=scores - outcomes, minlength=edges.size + 1)
    full = count > 0
    gaps = np.abs(resid[full] / count[full])
    weights = count[full] / n
    return _norm_of(gaps, weights, norm)


# --------------------------------------------------------------------------------------------
# dispatcher
# --------------------------------------------------------------------------------------------

_FUNCTIONS: Mapping[str, Callable[..., float]] = MappingProxyType({
    "torchmetrics": torchmetrics_calibration_error,
    "sklearn": sklearn_calibration_error,
    "netcal": netcal_calibration_error,
    "relplot": relplot_binned_ece,
    "kull2019": kull2019_calibration_error,
    "kumar2019": kumar2019_calibration_error,
})


def calibration_error(
    labels: Any = None,
    /,
    *,
    logits: Any = None,
    probs: Any = None,
    confidences: Any = None,
    predictions: Any = None,
    convention: str,
    n_bins: int = 15,
    kind: str = "top_label",
    norm: str = "l1",
    strategy: str | None = None,
) -> float:
    """A calibration error computed the way a named library or paper computes it.

    ``convention`` is one of ``"torchmetrics"``, ``"sklearn"``, ``"netcal"``, ``"relplot"``,
    ``"kull2019"``; see :data:`CONVENTIONS` for the ``kind`` / ``norm`` / ``strategy`` each has,
    and the function of each convention for its exact rules. A combination the library does
    not have raises ValueError. In every convention the number is, with s_i the score (c_i,
    q_i1 or q_ik) and o_i the outcome (a_i, y_i or 1[y_i = k]) and the library's own bins b,

        l1: sum_b (n_b/N) |mean_b o - mean_b s|,   l2: sqrt(sum_b (n_b/N) (mean_b o -
        mean_b s)^2),   max: max_b |mean_b o - mean_b s|,

    (summed over classes for ``kull2019`` classwise); the conventions differ in the bins, the
    treatment of s = 1.0, the meaning of ``n_bins`` and the floating-point arithmetic.
    trueprob's own ECE (SPEC.md) is :func:`trueprob.metrics.top_label_ece`.

    Parameters
    ----------
    labels : array (N,)
        Hard labels y_i in {0..K-1} (required: the libraries take no soft targets).
    logits, probs : array (N, K), or (N,) for binary
        Exactly one; or ``confidences=`` with ``predictions=`` (top-label only).
    convention : str
        The library or paper whose number to reproduce.
    n_bins : int
        The library's own bin parameter, passed through unchanged (its meaning differs:
        ``kull2019`` counts edges, torchmetrics and relplot add a bin for 1.0). The libraries'
        own defaults differ too (scikit-learn 5, netcal 10, relplot 10); trueprob uses 15.
    kind : {"top_label", "positive_class", "classwise"}
    norm : {"l1", "l2", "max"}
        ECE, RMS calibration error, MCE, where the library has them.
    strategy : {"uniform", "quantile"}, optional
        Equal-width or equal-count bins (scikit-learn ``strategy``, netcal
        ``equal_intervals``, kumar2019 ``get_ece`` / ``get_ece_em``). Default: the
        convention's first (``"quantile"`` for kumar2019, ``"uniform"`` for the others).

    Returns
    -------
    float
        The library's number.

    Examples
    --------
    >>> import numpy as np
    >>> c = np.array([1.0, 0.95, 0.5])   # one confidence of exactly 1.0, and wrong
    >>> pred = np.array([0, 0, 2])
    >>> y = np.array([1, 0, 2])              # correct: 0, 1, 1
    >>> kw = dict(confidences=c, predictions=pred, n_bins=10)
    >>> # 1.0 shares bin (0.9, 1] with 0.95: (2/3) |0.5 - 0.975| + (1/3) |1 - 0.5|
    >>> round(calibration_error(y, convention="sklearn", **kw), 6)
    0.483333
    >>> # 1.0 in a bin of its own: (|0 - 1| + |1 - 0.95| + |1 - 0.5|) / 3
    >>> round(calibration_error(y, convention="torchmetrics", **kw), 6)
    0.516667
    >>> round(calibration_error(y, convention="relplot", **kw), 6)
    0.516667
    >>> # 1.0 clipped to 1 - eps, then binned with 0.95
    >>> round(calibration_error(y, convention="netcal", **kw), 6)
    0.483333
    """
    if strategy is None and convention in CONVENTIONS:
        strategy = CONVENTIONS[convention].strategies[0]
    _check_options(convention, kind, norm, strategy or "uniform", n_bins)
    function = _FUNCTIONS[convention]
    options: dict[str, Any] = {"n_bins": n_bins, "kind": kind}
    if convention in ("torchmetrics", "sklearn", "netcal", "kumar2019"):
        options["norm"] = norm
    if convention in ("sklearn", "netcal", "kumar2019"):
        options["strategy"] = strategy
    if convention == "kull2019":
        if confidences is not None or predictions is not None:
            raise ValueError("convention='kull2019' needs probs= or logits= (it bins every "
                             "class's probability); confidences= are not enough")
        return function(labels, logits=logits, probs=probs, **options)
    return function(labels, logits=logits, probs=probs, confidences=confidences,
                    predictions=predictions, **options)


__all__ = [
    "CONVENTIONS",
    "ConventionRules",
    "calibration_error",
    "kull2019_calibration_error",
    "kumar2019_calibration_error",
    "netcal_calibration_error",
    "relplot_binned_ece",
    "sklearn_calibration_error",
    "torch_linspace_edges",
    "torchmetrics_calibration_error",
]
