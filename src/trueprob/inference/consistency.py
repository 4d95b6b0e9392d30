"""Consistency resampling (Bröcker & Smith 2007): is this model calibrated?

Under H0 ("the predicted distributions are the true ones") the labels are draws y*_i ~ Cat(q_i).
The test draws B such label vectors, recomputes the statistic on each with the predictions held
fixed, and reports p = (1 + #{T* >= T}) / (1 + B) (SPEC.md, "Inference").

Only the outcomes change between resamples, so the per-bin weights and score sums are computed
once; each resample only re-adds outcomes per bin. Top-label ECE needs one Bernoulli draw per row
and resample (P(y*_i = yhat_i) = c_i, drawn as u < c_i with u uniform on the float32 grid of
2**-24, c_i rounded to float32: a bias of at most 6e-8 per row); classwise ECE needs one
categorical draw per row and resample. Cost O(N B) (O(N K B) for classwise) in bounded memory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from trueprob._array import to_numpy
from trueprob._progress import progress
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
    quiet: bool | None = None,
    confidences: Any = None,
    predictions: Any = None,
    n_classes: int | None = None,
) -> ConsistencyTest:
    """Test H0 "the model is calibrated" by consistency resampling (Bröcker & Smith 2007).

    T is the top-label ECE (``statistic="ece"``) or the classwise ECE (mean over classes,
    ``statistic="classwise_ece"``) with B equal-width bins. Under H0, y*_i ~ Cat(q_i); the
    statistic is recomputed on B resampled label vectors and p = (1 + #{T* >= T}) / (1 + B).
    A progress bar over the resamples is drawn on stderr when it is a terminal, unless
    ``quiet``.

    The top-label statistic needs only each row's confidence c_i and prediction: under H0 the
    prediction is right with probability c_i, so it also runs on top-label outputs
    (``confidences=`` and ``predictions=`` with hard labels, as :func:`trueprob.evaluate`
    takes them); the classwise statistic needs the whole vectors.

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
    inputs = prepare(labels, logits=logits, probs=probs, sample_weight=sample_weight,
                     confidences=confidences, predictions=predictions, n_classes=n_classes,
                     rescale_weights=True)
    state = ConsistencyStats(statistic, inputs.n_classes, n_bins=n_bins, closed=closed,
                             n_resamples=n_resamples, random_state=random_state)
    with progress(f"consistency test ({statistic})", total=n_resamples, quiet=quiet) as bar:
        state.update_inputs(inputs, advance=bar.advance)
    return state.finalize()


class ConsistencyStats:
    """A consistency test filled a batch at a time, in memory that does not grow with N.

    The state is what the test needs and nothing per row: per-bin weights W_b and score sums
    (B, or K x B for the classwise statistic), the observed outcome sums, and the outcome sums
    of each resample (R x B, or R x K x B), where every row of every batch adds its own draw
    y*_i ~ Cat(q_i). Rows of different batches are independent, so the sums over batches are
    those of one resampled data set: filling in batches gives a test with the same null
    distribution as :func:`consistency_test` on all rows (the same numbers when the batches
    are the whole data at once, since the random draws are then taken in the same order).

    Parameters
    ----------
    statistic : {"ece", "classwise_ece"}
    n_classes : int
        K.
    n_bins, closed, n_resamples, random_state
        As :func:`consistency_test`.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> z = rng.normal(size=(2000, 4)) * 2
    >>> q = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    >>> y = (q.cumsum(1) < rng.random((2000, 1))).sum(1)          # drawn from q
    >>> state = ConsistencyStats("ece", 4, n_resamples=200, random_state=0)
    >>> for i in range(0, 2000, 500):                             # four batches
    ...     _ = state.update(y[i:i + 500], logits=3 * z[i:i + 500])
    >>> state.finalize().p_value                                  # over-confident
    0.004975124378109453
    """

    def __init__(self, statistic: str, n_classes: int, *, n_bins: int = 15,
                 closed: str = "right", n_resamples: int = 1000,
                 random_state: int | np.random.Generator | None = None) -> None:
        if statistic not in STATISTICS:
            raise ValueError(f"statistic must be one of {STATISTICS}; got {statistic!r}")
        if isinstance(n_resamples, bool) or not isinstance(n_resamples, (int, np.integer)) \
                or n_resamples < 1:
            raise ValueError(f"n_resamples must be a positive integer; got {n_resamples!r}")
        self.statistic = statistic
        self.n_classes = int(n_classes)
        self.n_resamples = int(n_resamples)
        self.binning = Binning(n_bins, closed)  # type: ignore[arg-type]
        self.rng = random_state if isinstance(random_state, np.random.Generator) \
            else np.random.default_rng(random_state)
        k, b, r = self.n_classes, int(n_bins), self.n_resamples
        shape = (b,) if statistic == "ece" else (k, b)
        self.weight = np.zeros(shape)
        self.sum_score = np.zeros(shape)
        self.observed = np.zeros(shape)
        self.null = np.zeros((r, *shape))
        self.total = 0.0
        self.n_rows = 0

    def update(self, labels: Any = None, /, *, logits: Any = None, probs: Any = None,
               sample_weight: Any = None) -> ConsistencyStats:
        """Add rows (hard labels with logits or probabilities, as :func:`consistency_test`)."""
        inputs = prepare(labels, logits=logits, probs=probs, sample_weight=sample_weight)
        return self.update_inputs(inputs)

    def update_inputs(self, inputs: Any, *,
                      advance: Callable[[int], object] | None = None) -> ConsistencyStats:
        """Add prepared :class:`~trueprob._validation.Inputs` (all their chunks);
        ``advance(r)`` is called as each r resamples of these rows are drawn (progress)."""
        if inputs.target_kind != "labels":
            raise ValueError("the consistency test draws labels from the predicted "
                             "distributions: it needs hard labels")
        if inputs.kind == "confidences" and self.statistic != "ece":
            raise ValueError(f"statistic={self.statistic!r} needs the whole vectors (logits= "
                             f"or probs=); top-label confidences allow statistic='ece'")
        if inputs.n_classes != self.n_classes:
            raise ValueError(f"this state has K={self.n_classes} classes but the inputs have "
                             f"K={inputs.n_classes}")
        xp = inputs.xp
        probs_rows, conf_rows, pred_rows, y_rows, w_rows = [], [], [], [], []
        for chunk in inputs.chunks():
            rows = row_quantities(xp, chunk, need_scores=False)
            conf_rows.append(to_numpy(rows.confidence))
            pred_rows.append(to_numpy(rows.prediction))
            y_rows.append(to_numpy(chunk.labels))
            w_rows.append(np.ones(chunk.n_rows) if chunk.weights is None
                          else to_numpy(chunk.weights))
            if self.statistic == "classwise_ece":
                probs_rows.append(to_numpy(rows.probs).astype(np.float64))
        q = np.concatenate(probs_rows) if probs_rows else None
        self._add(np.concatenate(conf_rows), np.concatenate(pred_rows),
                  np.concatenate(y_rows), np.concatenate(w_rows), q,
                  advance or (lambda r: None))
        return self

    def _add(self, conf: np.ndarray, pred: np.ndarray, y: np.ndarray, w: np.ndarray,
             q: np.ndarray | None, advance: Callable[[int], object]) -> None:
        rng, b, k = self.rng, self.binning.n_bins, self.n_classes
        self.total += float(w.sum())
        self.n_rows += int(conf.size)
        if self.statistic == "ece":
            cell = to_numpy(self.binning.index(np, conf))
            self.weight += np.bincount(cell, w, b)
            self.sum_score += np.bincount(cell, w * conf, b)
            self.observed += np.bincount(cell, w * (pred == y), b)
            if conf.size == 0:
                advance(self.n_resamples)
                return
            # rows sorted by bin once: each resample's bin sums are sums over contiguous
            # segments (add.reduceat), about 3x faster than a bincount per resample
            order = np.argsort(cell, kind="stable")
            present = np.flatnonzero(np.bincount(cell, minlength=b))
            starts = np.searchsorted(cell[order], present)
            c32 = conf[order].astype(np.float32)
            ws = w[order]
            unit = bool(np.all(ws == 1.0))
            per = max(1, _DRAWS_PER_BATCH // max(conf.size, 1))
            for start in range(0, self.n_resamples, per):
                r = min(per, self.n_resamples - start)
                # a*_i ~ Bernoulli(c_i): u < c_i with u uniform on the float32 grid (2**-24)
                hits = rng.random((r, conf.size), dtype=np.float32) < c32
                sums = (np.add.reduceat(hits, starts, axis=1, dtype=np.int64) if unit
                        else np.add.reduceat(hits * ws, starts, axis=1))
                self.null[start:start + r, present] += sums
                advance(r)
            return
        assert q is not None
        cell = to_numpy(self.binning.index(np, q)) + np.arange(k) * b  # (n, K) class-bin
        self.weight += np.bincount(cell.ravel(), np.repeat(w, k), k * b).reshape(k, b)
        self.sum_score += np.bincount(cell.ravel(), (q * w[:, None]).ravel(),
                                      k * b).reshape(k, b)
        at = np.take_along_axis(cell, y[:, None], axis=1)[:, 0]
        self.observed += np.bincount(at, w, k * b).reshape(k, b)
        cdf = np.cumsum(q, axis=1)
        cdf[:, -1] = 1.0
        for i in range(self.n_resamples):
            u = rng.random((q.shape[0], 1))
            y_star = np.minimum((cdf < u).sum(axis=1), k - 1)
            at = np.take_along_axis(cell, y_star[:, None], axis=1)[:, 0]
            self.null[i] += np.bincount(at, w, k * b).reshape(k, b)
            advance(1)

    def _statistic(self, outcome_sums: np.ndarray) -> np.ndarray:
        """T of each resample: (R, B) -> (R,) top-label ECE, (R, K, B) -> (R,) classwise."""
        total = np.broadcast_to(np.asarray([self.total]), outcome_sums.shape[:1])
        if self.statistic == "ece":
            return sm.binned_errors(self.weight[None, None], self.sum_score[None, None],
                                    outcome_sums[:, None], total)["ece"][:, 0]
        return sm.binned_errors(self.weight[None], self.sum_score[None], outcome_sums,
                                total)["ece"].mean(axis=-1)

    def finalize(self) -> ConsistencyTest:
        """The observed statistic T, the p-value (1 + #{T* >= T}) / (1 + B) and the null's
        mean and 95% quantile."""
        if not self.total > 0:
            raise ValueError("sample_weight sums to 0; at least one row needs a positive "
                             "weight")
        observed = float(self._statistic(self.observed[None])[0])
        null = self._statistic(self.null)
        p = (1 + np.sum(null >= observed - 1e-12 * max(observed, 1.0))) / \
            (1 + self.n_resamples)
        return ConsistencyTest(self.statistic, observed, float(p), self.n_resamples,
                               float(null.mean()), float(np.quantile(null, 0.95)))
