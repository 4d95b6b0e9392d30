"""Consistency resampling (Bröcker & Smith 2007): is this model calibrated?

Under H0 ("the predicted distributions are the true ones") the labels are draws y*_i ~ Cat(q_i).
The test draws B such label vectors, recomputes the statistic on each with the predictions held
fixed, and reports p = (1 + #{T* >= T}) / (1 + B) (SPEC.md, "Inference").

Only the outcomes change between resamples, so the per-bin weights and score sums are computed
once; each resample only re-adds outcomes per bin. Top-label ECE needs one Bernoulli draw per row
and resample (P(y*_i = yhat_i) = c_i); classwise ECE needs one categorical draw per row and
resample. Cost O(N B) (O(N K B) for classwise) in bounded memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from trueprob._array import to_numpy
from trueprob._validation import prepare
from trueprob.core import summaries as sm
from trueprob.core.binning import Binning
from trueprob.core.rows import row_quantities

STATISTICS = ("ece", "classwise_ece")
_DRAWS_PER_BATCH = 1 << 22


@dataclass(frozen=True)
class ConsistencyTest:
    """Result of :func:`consistency_test`: the observed statistic, its resampling null
    distribution's summary, and the p-value (1 + #{T* >= T}) / (1 + B)."""

    statistic: str
    value: float
    p_value: float
    n_resamples: int
    null_mean: float
    null_quantile_95: float


def consistency_test(
    labels: Any = None,
    /,
    *,
    logits: Any = None,
    probs: Any = None,
    sample_weight: Any = None,
    statistic: str = "ece",
    n_bins: int = 15,
    closed: str = "right",
    n_resamples: int = 1000,
    random_state: int | np.random.Generator | None = None,
) -> ConsistencyTest:
    """Test H0 "the model is calibrated" by consistency resampling (Bröcker & Smith 2007).

    T is the top-label ECE (``statistic="ece"``) or the classwise ECE (mean over classes,
    ``statistic="classwise_ece"``) with B equal-width bins. Under H0, y*_i ~ Cat(q_i); the
    statistic is recomputed on B resampled label vectors and p = (1 + #{T* >= T}) / (1 + B).

    Examples
    --------
    >>> import numpy as np
    >>> from trueprob.inference import consistency_test
    >>> rng = np.random.default_rng(1)
    >>> z = rng.normal(size=(2000, 4)) * 2
    >>> q = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    >>> y = (q.cumsum(1) < rng.random((2000, 1))).sum(1)          # drawn from q: calibrated
    >>> consistency_test(y, logits=z, random_state=0).p_value > 0.01
    True
    >>> consistency_test(y, logits=3 * z, random_state=0).p_value  # over-confident
    0.000999000999000999
    """
    if statistic not in STATISTICS:
        raise ValueError(f"statistic must be one of {STATISTICS}; got {statistic!r}")
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, (int, np.integer)) \
            or n_resamples < 1:
        raise ValueError(f"n_resamples must be a positive integer; got {n_resamples!r}")
    rng = random_state if isinstance(random_state, np.random.Generator) \
        else np.random.default_rng(random_state)
    inputs = prepare(labels, logits=logits, probs=probs, sample_weight=sample_weight)
    binning = Binning(n_bins, closed)  # type: ignore[arg-type]
    k, b = inputs.n_classes, n_bins
    xp = inputs.xp
    probs_rows, conf_rows, pred_rows, y_rows, w_rows = [], [], [], [], []
    for chunk in inputs.chunks():
        rows = row_quantities(xp, chunk, need_scores=False)
        conf_rows.append(to_numpy(rows.confidence))
        pred_rows.append(to_numpy(rows.prediction))
        y_rows.append(to_numpy(chunk.labels))
        w_rows.append(np.ones(chunk.n_rows) if chunk.weights is None
                      else to_numpy(chunk.weights))
        if statistic == "classwise_ece":
            probs_rows.append(to_numpy(rows.probs).astype(np.float64))
    conf = np.concatenate(conf_rows)
    pred = np.concatenate(pred_rows)
    y = np.concatenate(y_rows)
    w = np.concatenate(w_rows)
    total = np.asarray([w.sum()])
    if not total[0] > 0:
        raise ValueError("sample_weight sums to 0; at least one row needs a positive weight")

    if statistic == "ece":
        cell = to_numpy(binning.index(np, conf))
        weight = np.bincount(cell, w, b)
        sum_score = np.bincount(cell, w * conf, b)

        def ece_of(outcome_sums: np.ndarray) -> np.ndarray:  # (R, B) -> (R,)
            return sm.binned_errors(weight[None, None], sum_score[None, None],
                                    outcome_sums[:, None], np.broadcast_to(
                                        total, outcome_sums.shape[:1]))["ece"][:, 0]

        observed = ece_of(np.bincount(cell, w * (pred == y), b)[None])[0]
        null = np.empty(n_resamples)
        per = max(1, _DRAWS_PER_BATCH // conf.size)
        for start in range(0, n_resamples, per):
            r = min(per, n_resamples - start)
            hits = rng.random((r, conf.size)) < conf  # a*_i ~ Bernoulli(c_i)
            flat = (np.arange(r)[:, None] * b + cell[None, :]).ravel()
            sums = np.bincount(flat, (hits * w).ravel(), r * b).reshape(r, b)
            null[start:start + r] = ece_of(sums)
    else:
        q = np.concatenate(probs_rows)
        cell = to_numpy(binning.index(np, q)) + np.arange(k) * b  # (N, K) flat class-bin
        weight = np.bincount(cell.ravel(), np.repeat(w, k), k * b).reshape(k, b)
        sum_score = np.bincount(cell.ravel(), (q * w[:, None]).ravel(), k * b).reshape(k, b)

        def classwise_of(outcome_sums: np.ndarray) -> np.ndarray:  # (R, K, B) -> (R,)
            return sm.binned_errors(weight[None], sum_score[None], outcome_sums,
                                    np.broadcast_to(total, outcome_sums.shape[:1])
                                    )["ece"].mean(axis=-1)

        at = np.take_along_axis(cell, y[:, None], axis=1)[:, 0]
        observed = classwise_of(np.bincount(at, w, k * b).reshape(1, k, b))[0]
        cdf = np.cumsum(q, axis=1)
        cdf[:, -1] = 1.0
        null = np.empty(n_resamples)
        for i in range(n_resamples):
            u = rng.random((q.shape[0], 1))
            y_star = np.minimum((cdf < u).sum(axis=1), k - 1)
            at = np.take_along_axis(cell, y_star[:, None], axis=1)[:, 0]
            null[i] = classwise_of(np.bincount(at, w, k * b).reshape(1, k, b))[0]
    p = (1 + np.sum(null >= observed - 1e-12 * max(observed, 1.0))) / (1 + n_resamples)
    return ConsistencyTest(statistic, float(observed), float(p), int(n_resamples),
                           float(null.mean()), float(np.quantile(null, 0.95)))
