"""`RankedStats`: reliability of the probabilities below the top one, as a mergeable state.

Top-label calibration checks only the largest entry of each predicted vector. Whether the
*other* entries are probabilities is asked here rank by rank: sort each row's probabilities
decreasingly, q_(1) >= q_(2) >= ... >= q_(K) (ties: lowest class index first, as argmax), and
let o_(r) = t_{i, k_r} be the target of the class ranked r (1[y_i = k_r] for hard labels). If
the vector is calibrated, P(Y = k_r | q) = q_(r) for every rank r, so in every bin of q_(r)
the mean of o_(r) equals the mean of q_(r). Three groups of binned sums are kept:

- group 0: rank 2 (one pair per row, weight w_i);
- group 1: rank 3 (one pair per row, K >= 3);
- group 2: every rank below the top pooled (K - 1 pairs per row, each with weight w_i).

Each group holds, per bin, the count, weight, sum of w q and sum of w o (float64 sums, int64
counts), and one scalar ``sum_var`` = sum_i w_i^2 v_i, the variance of sum_i w_i o_i when the
labels are drawn from the predictions (hard labels): v_i = q_(r)(1 - q_(r)) for ranks 2 and 3
(o_(r) is then Bernoulli(q_(r))), and v_i = q_(1)(1 - q_(1)) for the pooled group (the
non-top outcomes of a row add up to 1 - o_(1)). Fixed size 3 x B + 3 whatever N is, merged by
addition, so batched, streamed and one-shot results agree to rounding. Bins follow SPEC.md
"Binning" (equal-width, right-closed by default).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from trueprob._array import to_numpy
from trueprob.core.binning import Binning
from trueprob.stats.binned import BinnedStats

#: the groups of a :class:`RankedStats`, in order
RANK_GROUPS = ("rank 2", "rank 3", "below the top")


class RankedStats:
    """Binned reliability sums of the 2nd, 3rd and all non-top ranked probabilities.

    Examples
    --------
    >>> import numpy as np
    >>> q = np.array([[0.6, 0.3, 0.1], [0.2, 0.5, 0.3]])
    >>> s = RankedStats(3, n_bins=10).update(np.array([1, 2]), probs=q)
    >>> s.n_rows, s.arrays()["count"].sum(axis=1).tolist()      # 2 rows; 2, 2, 4 pairs
    (2, [2, 2, 4])
    >>> s.arrays()["sum_outcome"].sum(axis=1).tolist()          # both labels rank 2
    [2.0, 0.0, 2.0]
    """

    def __init__(self, n_classes: int, *, n_bins: int = 15, closed: str = "right") -> None:
        if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) \
                or n_classes < 2:
            raise ValueError(f"n_classes must be an integer >= 2; got {n_classes!r}")
        self.n_classes = int(n_classes)
        self.binning = Binning(n_bins, closed)  # type: ignore[arg-type]
        self.bins = BinnedStats(self.binning, groups=len(RANK_GROUPS))
        self.n_rows = 0
        self.total_weight = 0.0
        self.sum_var = np.zeros(len(RANK_GROUPS))

    def update(self, labels: Any = None, /, *, logits: Any = None, probs: Any = None,
               targets: Any = None, counts: Any = None, sample_weight: Any = None
               ) -> RankedStats:
        """Add rows (validated as :func:`trueprob.evaluate` validates them); returns self."""
        from trueprob._validation import prepare

        return self.update_inputs(prepare(labels, logits=logits, probs=probs, targets=targets,
                                          counts=counts, sample_weight=sample_weight,
                                          n_classes=self.n_classes))

    def update_inputs(self, inputs: Any) -> RankedStats:
        """Add validated :class:`~trueprob._validation.Inputs` chunk by chunk; returns self."""
        if inputs.kind == "confidences":
            raise ValueError("the ranked reliability needs the full probability vector "
                             "(logits= or probs=); got top-label confidences only")
        if inputs.n_classes != self.n_classes:
            raise ValueError(f"the inputs have K={inputs.n_classes} classes; this state was "
                             f"made for K={self.n_classes}")
        for chunk in inputs.chunks():
            self._add(chunk)
        return self

    def _add(self, chunk: Any) -> None:
        from scipy.special import softmax

        scores = to_numpy(chunk.scores).astype(np.float64)
        q = softmax(scores, axis=1) if chunk.kind == "logits" else scores
        n, k = q.shape
        # stable sort of -q: equal probabilities keep the lowest class index first (argmax)
        order = np.argsort(-q, axis=1, kind="stable")
        ranked = np.take_along_axis(q, order, axis=1)
        if chunk.labels is not None:
            y = to_numpy(chunk.labels).astype(np.int64)
            outcome = (order == y[:, None]).astype(np.float64)
        else:
            t = to_numpy(chunk.targets).astype(np.float64)
            outcome = np.take_along_axis(t, order, axis=1)
        w = None if chunk.weights is None else to_numpy(chunk.weights).astype(np.float64)
        b = self.binning.n_bins
        w2 = np.ones(n) if w is None else w * w
        parts = [(0, ranked[:, 1], outcome[:, 1], w)]
        self.sum_var[0] += float(np.sum(w2 * ranked[:, 1] * (1.0 - ranked[:, 1])))
        if k >= 3:
            parts.append((1, ranked[:, 2], outcome[:, 2], w))
            self.sum_var[1] += float(np.sum(w2 * ranked[:, 2] * (1.0 - ranked[:, 2])))
        self.sum_var[2] += float(np.sum(w2 * ranked[:, 0] * (1.0 - ranked[:, 0])))
        rest = ranked[:, 1:].reshape(-1)
        parts.append((2, rest, outcome[:, 1:].reshape(-1),
                      None if w is None else np.repeat(w, k - 1)))
        for group, score, out, weight in parts:
            flat = group * b + self.binning.index(np, score)
            self.bins.add(np, None, flat, score, out, weight)
        self.n_rows += n
        self.total_weight += float(n if w is None else w.sum())

    def merge(self, other: RankedStats) -> RankedStats:
        """A new state holding the rows of both (neither operand is changed)."""
        if (self.n_classes, self.binning) != (other.n_classes, other.binning):
            raise ValueError(f"cannot merge ranked states of K={self.n_classes}, "
                             f"{self.binning} and K={other.n_classes}, {other.binning}")
        out = RankedStats(self.n_classes, n_bins=self.binning.n_bins,
                          closed=self.binning.closed)
        out.bins = self.bins.merge(other.bins)
        out.n_rows = self.n_rows + other.n_rows
        out.total_weight = self.total_weight + other.total_weight
        out.sum_var = self.sum_var + other.sum_var
        return out

    def arrays(self) -> dict[str, np.ndarray]:
        """The sums as numpy arrays of shape (3, B): count, weight, sum_score, sum_outcome."""
        return self.bins.arrays()


__all__ = ["RANK_GROUPS", "RankedStats"]
