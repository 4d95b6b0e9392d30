"""`BinnedStats`: per-(group, bin) sums, the fixed-size state behind every binned metric."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from trueprob._array import Array, as_array, bincount, to_numpy
from trueprob.core.binning import Binning


@dataclass(frozen=True)
class BinTable:
    """Finalised per-bin statistics, numpy, shape (G, B) (G groups, B bins).

    ``weight`` W_b, ``count`` n_b, ``confidence`` conf_b = mean score, ``accuracy`` acc_b =
    mean outcome, ``gap`` = conf_b - acc_b (positive: over-confident). Empty bins have weight 0
    and NaN means. ``total_weight`` is W, the weight of all rows (the denominator of W_b/W).
    """

    edges: np.ndarray
    count: np.ndarray
    weight: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray
    total_weight: float

    @property
    def gap(self) -> np.ndarray:
        return self.confidence - self.accuracy

    @property
    def nonempty(self) -> np.ndarray:
        return self.weight > 0

    def ece_per_group(self, p: float = 1.0) -> np.ndarray:
        """sum_b (W_gb / W) |acc_gb - conf_gb|^p per group (before the 1/p root)."""
        gap = np.where(self.nonempty, np.abs(np.nan_to_num(self.gap)), 0.0)
        return np.sum(self.weight / self.total_weight * gap**p, axis=-1)

    def mce_per_group(self) -> np.ndarray:
        """max over non-empty bins of |acc_b - conf_b| per group (0 for a group with no rows)."""
        gap = np.where(self.nonempty, np.abs(np.nan_to_num(self.gap)), 0.0)
        return np.max(gap, axis=-1)

    def debiased_l2_squared(self) -> float:
        """Kumar et al. 2019: sum_b (W_b/W)[(acc_b - conf_b)^2 - acc_b(1 - acc_b)/(n_b - 1)].

        n_b is the bin's total weight (frequency weights: integer weights mean repeated rows;
        with unit weights it is the row count). Bins with n_b <= 1 get no correction term.
        """
        w = self.weight
        ok = self.nonempty
        acc = np.nan_to_num(self.accuracy)
        gap2 = np.where(ok, np.nan_to_num(self.gap) ** 2, 0.0)
        denom = np.where(w > 1, w - 1, 1.0)
        corr = np.where(w > 1, acc * (1 - acc) / denom, 0.0)
        return float(np.sum(w / self.total_weight * (gap2 - corr)))


class BinnedStats:
    """Sums per (group, bin): count (int64, rows with positive weight), weight, score and
    outcome sums (float64).

    ``groups`` = 1 for top-label reliability, K for class-conditional (group = predicted class)
    or classwise (group = class) reliability. Merging adds the arrays, so any chunking and any
    merge order give the same state up to floating-point rounding.
    """

    def __init__(self, binning: Binning, groups: int = 1) -> None:
        self.binning = binning
        self.groups = int(groups)
        self._xp: Any = None
        self._device: Any = None
        self.count: Array = None
        self.weight: Array = None
        self.sum_score: Array = None
        self.sum_outcome: Array = None

    @property
    def size(self) -> int:
        return self.groups * self.binning.n_bins

    def _ensure(self, xp: Any, dev: Any) -> None:
        if self._xp is None:
            self._xp, self._device = xp, dev
            n = self.size
            kw = {"device": dev} if dev is not None else {}
            self.count = xp.zeros(n, dtype=xp.int64, **kw)
            self.weight = xp.zeros(n, dtype=xp.float64, **kw)
            self.sum_score = xp.zeros(n, dtype=xp.float64, **kw)
            self.sum_outcome = xp.zeros(n, dtype=xp.float64, **kw)

    def add(self, xp: Any, dev: Any, flat_index: Array, scores: Array, outcomes: Array | None,
            weights: Array | None) -> None:
        """Add rows at precomputed flat indices ``group * B + bin``.

        ``outcomes=None`` adds no outcome (used for classwise one-hot targets, whose single
        non-zero entry per row is added separately with :meth:`add_outcomes`).
        """
        self._ensure(xp, dev)
        n = self.size
        if weights is None:
            counts = bincount(xp, flat_index, None, n)
            self.count += counts
            self.weight += xp.astype(counts, xp.float64)
            self.sum_score += bincount(xp, flat_index, scores, n)
            if outcomes is not None:
                self.sum_outcome += bincount(xp, flat_index, outcomes, n)
        else:
            # counts are rows with positive weight, so a zero-weight row is a dropped row
            positive = xp.astype(weights > 0, xp.float64)
            self.count += xp.astype(bincount(xp, flat_index, positive, n), xp.int64)
            self.weight += bincount(xp, flat_index, weights, n)
            self.sum_score += bincount(xp, flat_index, xp.astype(scores, xp.float64) * weights, n)
            if outcomes is not None:
                self.sum_outcome += bincount(xp, flat_index, outcomes * weights, n)

    def add_outcomes(self, xp: Any, dev: Any, flat_index: Array, outcomes: Array) -> None:
        self._ensure(xp, dev)
        self.sum_outcome += bincount(xp, flat_index, outcomes, self.size)

    def merge(self, other: BinnedStats) -> BinnedStats:
        """A new state holding the sums of both (neither operand is changed)."""
        if self.binning != other.binning or self.groups != other.groups:
            raise ValueError(
                f"cannot merge states with different binning/groups: {self.binning}, "
                f"{self.groups} groups vs {other.binning}, {other.groups} groups"
            )
        out = BinnedStats(self.binning, self.groups)
        if self._xp is None and other._xp is None:
            return out
        base = self if self._xp is not None else other
        out._ensure(base._xp, base._device)
        for part in (self, other):
            if part._xp is None:
                continue
            for name in ("count", "weight", "sum_score", "sum_outcome"):
                arr = getattr(part, name)
                if part._xp is not out._xp:
                    arr = as_array(to_numpy(arr), out._xp, out._device)
                setattr(out, name, getattr(out, name) + arr)
        return out

    def arrays(self) -> dict[str, np.ndarray]:
        """The state as plain numpy arrays (zeros before any update)."""
        shape = (self.groups, self.binning.n_bins)
        if self._xp is None:
            z = np.zeros(shape)
            return {"count": z.astype(np.int64), "weight": z, "sum_score": z.copy(),
                    "sum_outcome": z.copy()}
        return {name: to_numpy(getattr(self, name)).reshape(shape)
                for name in ("count", "weight", "sum_score", "sum_outcome")}

    def table(self, total_weight: float) -> BinTable:
        a = self.arrays()
        w = a["weight"]
        with np.errstate(invalid="ignore", divide="ignore"):
            conf = np.where(w > 0, a["sum_score"] / w, np.nan)
            acc = np.where(w > 0, a["sum_outcome"] / w, np.nan)
        return BinTable(self.binning.edge_array(), a["count"], w, conf, acc, float(total_weight))
