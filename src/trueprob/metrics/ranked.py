"""Are the probabilities below the top one probabilities? Reliability of the k-th ranked entry.

For each row, sort the predicted probabilities decreasingly, q_(1) >= q_(2) >= ...; o_(r) is
the target of the class ranked r. For the groups rank 2, rank 3 and every rank below the top
pooled (:class:`~trueprob.stats.ranked.RankedStats`), with W_g the group's pair weight:

- ``mean_probability`` = (1/W_g) sum w q_(r), ``frequency`` = (1/W_g) sum w o_(r);
- ``ece`` = sum_b (W_b/W_g) |freq_b - conf_b| over B equal-width bins of q_(r) (SPEC.md
  "Binning");
- ``gap`` = frequency - mean_probability (> 0: the entries of that rank are too small, the
  classes happen more often than predicted; < 0: too large);
- ``z`` = (sum w o - sum w q) / sqrt(sum w^2 v) and its two-sided normal ``p_value``: with
  hard labels drawn from the predictions, sum w o has mean sum w q and variance sum w^2 v
  exactly (v as in :mod:`trueprob.stats.ranked`), so z is approximately N(0, 1) under
  calibration. NaN for soft targets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from trueprob.core.summaries import binned_errors
from trueprob.stats.ranked import RANK_GROUPS, RankedStats


@dataclass(frozen=True)
class RankedGroup:
    """The reliability of one group of ranked entries (see the module docstring)."""

    name: str
    pairs: int
    weight: float
    mean_probability: float
    frequency: float
    gap: float
    ece: float
    z: float
    p_value: float


@dataclass(frozen=True)
class RankedReliability:
    """Rank 2, rank 3 (absent for K = 2) and all ranks below the top, in that order."""

    groups: tuple[RankedGroup, ...]
    n_bins: int
    n_classes: int

    def group(self, name: str) -> RankedGroup:
        """The group called ``name`` ("rank 2", "rank 3" or "below the top")."""
        for g in self.groups:
            if g.name == name:
                return g
        raise KeyError(f"no group {name!r}; the groups are {[g.name for g in self.groups]}")


def ranked_reliability_of(state: RankedStats, /, *, hard_labels: bool = True
                          ) -> RankedReliability:
    """The :class:`RankedReliability` of a filled state (``hard_labels``: whether the z-test
    applies, i.e. the targets were hard labels)."""
    a = state.arrays()
    weight = a["weight"]
    totals = weight.sum(axis=1)
    # one group per leading axis: binned_errors takes (..., G, B) sums and totals of shape (...)
    errors = binned_errors(weight[:, None], a["sum_score"][:, None], a["sum_outcome"][:, None],
                           np.where(totals > 0, totals, 1.0))
    groups = []
    for g, name in enumerate(RANK_GROUPS):
        total = float(totals[g])
        if total <= 0:
            continue
        sum_q = float(a["sum_score"][g].sum())
        sum_o = float(a["sum_outcome"][g].sum())
        var = float(state.sum_var[g])
        z = (sum_o - sum_q) / math.sqrt(var) if hard_labels and var > 0 else math.nan
        p = math.erfc(abs(z) / math.sqrt(2.0)) if math.isfinite(z) else math.nan
        groups.append(RankedGroup(name, int(a["count"][g].sum()), total, sum_q / total,
                                  sum_o / total, (sum_o - sum_q) / total,
                                  float(errors["ece"][g, 0]), z, p))
    return RankedReliability(tuple(groups), state.binning.n_bins, state.n_classes)


def ranked_reliability(
    labels: Any = None,
    /,
    *,
    logits: Any = None,
    probs: Any = None,
    targets: Any = None,
    counts: Any = None,
    sample_weight: Any = None,
    n_bins: int = 15,
    closed: str = "right",
) -> RankedReliability:
    """Reliability of the 2nd, 3rd and all non-top ranked probabilities (one pass).

    Parameters
    ----------
    labels, logits, probs, targets, counts, sample_weight
        As in :func:`trueprob.evaluate` (full probability vectors; K >= 2).
    n_bins, closed
        Equal-width bins of the ranked probabilities (SPEC.md "Binning").

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=(20000, 5))
    >>> q = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    >>> y = (q.cumsum(1) < rng.random((20000, 1))).sum(1)      # drawn from q: calibrated
    >>> r = ranked_reliability(y, logits=z)
    >>> [g.name for g in r.groups], r.group("rank 2").p_value > 0.01
    (['rank 2', 'rank 3', 'below the top'], True)
    >>> r2 = ranked_reliability(y, logits=4 * z).group("rank 2")  # over-confident logits
    >>> r2.gap > 0.05, r2.p_value < 1e-6                        # rank 2 happens more often
    (True, True)
    """
    from trueprob._validation import prepare

    inputs = prepare(labels, logits=logits, probs=probs, targets=targets, counts=counts,
                     sample_weight=sample_weight)
    state = RankedStats(inputs.n_classes, n_bins=n_bins, closed=closed).update_inputs(inputs)
    return ranked_reliability_of(state, hard_labels=inputs.target_kind == "labels")


__all__ = ["RankedGroup", "RankedReliability", "ranked_reliability", "ranked_reliability_of"]
