"""`BinnedStats`: per-(group, bin) sums, the fixed-size state behind every binned metric."""

from __future__ import annotations

from typing import Any

import numpy as np

from trueprob._array import Array, bincount, is_numpy, to_numpy
from trueprob.core.binning import Binning
from trueprob.stats.state import MergeableState, Slot

FIELDS = ("count", "weight", "sum_score", "sum_outcome")


class BinnedStats(MergeableState):
    """Sums per (block, group, bin): count (int64, rows with positive weight), weight, score and
    outcome sums (float64).

    ``groups`` = 1 for top-label reliability, K for class-conditional (group = predicted class)
    or classwise (group = class) reliability. ``blocks`` > 1 keeps one copy of the sums per
    block of rows (used by the bootstrap); the metrics of a state use the sum over blocks.
    Merging adds the arrays, so any chunking and any merge order give the same state up to
    floating-point rounding.
    """

    def __init__(self, binning: Binning, groups: int = 1, blocks: int = 1) -> None:
        self.binning = binning
        self.groups = int(groups)
        self.blocks = int(blocks)
        self._xp: Any = None
        self._device: Any = None
        self.count: Array = None
        self.weight: Array = None
        self.sum_score: Array = None
        self.sum_outcome: Array = None

    @property
    def size(self) -> int:
        """Cells per block: groups x bins."""
        return self.groups * self.binning.n_bins

    def _slots(self) -> dict[str, Slot]:
        n = (self.size * self.blocks,)
        return {"count": (n, "int64"), "weight": (n, "float64"), "sum_score": (n, "float64"),
                "sum_outcome": (n, "float64")}

    def _settings(self) -> tuple[Any, ...]:
        return (self.binning, self.groups, self.blocks)

    def _empty_like(self) -> BinnedStats:
        return BinnedStats(self.binning, self.groups, self.blocks)

    FORMAT = "trueprob.BinnedStats"
    WHAT = "trueprob binned state"

    def _header(self) -> dict[str, Any]:
        b = self.binning
        return {"n_bins": b.n_bins, "closed": b.closed,
                "edges": None if b.edges is None else list(b.edges), "groups": self.groups,
                "blocks": self.blocks}

    @classmethod
    def _from_header(cls, header: dict[str, Any]) -> BinnedStats:
        edges = header["edges"]
        binning = Binning(header["n_bins"], header["closed"],
                          None if edges is None else tuple(float(e) for e in edges))
        groups, blocks = header["groups"], header["blocks"]
        for name, value in (("groups", groups), ("blocks", blocks)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer; got {value!r}")
        return cls(binning, groups, blocks)

    def add(self, xp: Any, dev: Any, flat_index: Array, scores: Array, outcomes: Array | None,
            weights: Array | None) -> tuple[Array, Array, Array, Array | None] | None:
        """Add rows at precomputed flat indices ``(block * groups + group) * B + bin``.

        ``outcomes=None`` adds no outcome (used for classwise one-hot targets, whose single
        non-zero entry per row is added separately with :meth:`add_outcomes`). Returns what
        was added per cell (count, weight, score sum, outcome sum or ``None``), so a coarser
        state can be filled from it with :meth:`add_sums` without another pass over the rows;
        ``None`` when numpy rows were added in place (more cells than rows).
        """
        self._ensure(xp, dev)
        n = self.size * self.blocks
        if is_numpy(xp) and n > flat_index.shape[0]:
            # more cells than rows (the KS grid, class-conditional bins of many classes,
            # blocked states): add in place, without zeroing and adding n-cell temporaries
            # (measured: 2**16 cells, 52k rows, 1.17 -> 0.35 ms)
            self._add_in_place(flat_index, scores, outcomes, weights)
            return None
        if weights is None:
            count = bincount(xp, flat_index, None, n)
            weight = xp.astype(count, xp.float64)
            sum_score = bincount(xp, flat_index, scores, n)
            sum_outcome = None if outcomes is None else bincount(xp, flat_index, outcomes, n)
        else:
            # counts are rows with positive weight, so a zero-weight row is a dropped row
            positive = xp.astype(weights > 0, xp.float64)
            count = xp.astype(bincount(xp, flat_index, positive, n), xp.int64)
            weight = bincount(xp, flat_index, weights, n)
            sum_score = bincount(xp, flat_index, xp.astype(scores, xp.float64) * weights, n)
            sum_outcome = (None if outcomes is None
                           else bincount(xp, flat_index, outcomes * weights, n))
        self.add_sums(xp, dev, count, weight, sum_score, sum_outcome)
        return count, weight, sum_score, sum_outcome

    def _add_in_place(self, flat_index: np.ndarray, scores: np.ndarray,
                      outcomes: np.ndarray | None, weights: np.ndarray | None) -> None:
        # ufunc.at is fast only when the values already have the state's dtype (float32
        # scores took 35 ns a row through its casting loop, float64 ones 2 ns)
        scores = scores.astype(np.float64, copy=False)
        if outcomes is not None:
            outcomes = outcomes.astype(np.float64, copy=False)
        if weights is None:
            np.add.at(self.count, flat_index, 1)
            np.add.at(self.weight, flat_index, 1.0)
            np.add.at(self.sum_score, flat_index, scores)
            if outcomes is not None:
                np.add.at(self.sum_outcome, flat_index, outcomes)
            return
        positive = weights > 0
        np.add.at(self.count, flat_index, positive.astype(np.int64))
        np.add.at(self.weight, flat_index, weights)
        np.add.at(self.sum_score, flat_index, scores.astype(np.float64) * weights)
        if outcomes is not None:
            np.add.at(self.sum_outcome, flat_index, outcomes * weights)

    def add_sums(self, xp: Any, dev: Any, count: Array, weight: Array, sum_score: Array,
                 sum_outcome: Array | None) -> None:
        """Add per-cell sums (flat, ``blocks * groups * B`` cells) computed elsewhere."""
        self._ensure(xp, dev)
        self.count += count
        self.weight += weight
        self.sum_score += sum_score
        if sum_outcome is not None:
            self.sum_outcome += sum_outcome

    def add_outcomes(self, xp: Any, dev: Any, flat_index: Array, outcomes: Array) -> None:
        self._ensure(xp, dev)
        self.sum_outcome += bincount(xp, flat_index, outcomes, self.size * self.blocks)

    def block_arrays(self) -> dict[str, np.ndarray]:
        """The state as numpy arrays of shape (blocks, groups, bins); zeros before any update."""
        shape = (self.blocks, self.groups, self.binning.n_bins)
        if self._xp is None:
            z = np.zeros(shape)
            return {"count": z.astype(np.int64), "weight": z, "sum_score": z.copy(),
                    "sum_outcome": z.copy()}
        return {name: to_numpy(getattr(self, name)).reshape(shape) for name in FIELDS}

    def arrays(self) -> dict[str, np.ndarray]:
        """The state summed over blocks, numpy arrays of shape (groups, bins)."""
        return {k: v.sum(axis=0) for k, v in self.block_arrays().items()}
