"""Exact equal-mass edges of a stream in bounded memory (:class:`QuantileSearch`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from trueprob._progress import ProgressBar
from trueprob.streaming.batches import Batch, _checked_chunks
from trueprob.streaming.progress import counted

#: cells of each histogram of :class:`QuantileSearch`
SEARCH_CELLS = 1 << 16
#: a quantile's interval whose rows number at most this is collected and sorted exactly
SEARCH_COLLECT = 1 << 16
#: key of 1.0: float64 bit patterns of values in [0, 1] are increasing integers up to this
_KEY_ONE = int(np.float64(1.0).view(np.int64))


def confidence_keys(confidence: Any) -> np.ndarray:
    """The float64 confidences as int64 keys that sort like the values (c in [0, 1]).

    >>> confidence_keys(np.array([0.0, 0.5, 1.0])).argsort().tolist()
    [0, 1, 2]
    """
    c = np.asarray(confidence, dtype=np.float64) + 0.0  # -0.0 + 0.0 = +0.0
    return c.view(np.int64)


@dataclass(frozen=True)
class SearchPlan:
    """What one pass of :class:`QuantileSearch` asks of every row: for each interval
    [lo, hi) of keys, a histogram of ``SEARCH_CELLS`` cells (``collect`` False) or the keys
    and weights themselves (``collect`` True)."""

    lo: tuple[int, ...]
    hi: tuple[int, ...]
    collect: tuple[bool, ...]

    def width(self, i: int) -> int:
        return max(1, -(-(self.hi[i] - self.lo[i]) // SEARCH_CELLS))


def search_pass(plan: SearchPlan, keys: np.ndarray, weights: np.ndarray | None) -> list[Any]:
    """The part of one search pass contributed by some rows (merge parts with
    :func:`merge_search`): per interval, ``("cells", weights, counts)`` of its histogram or
    ``("rows", keys, weights)`` of the rows inside it."""
    out: list[Any] = []
    for i in range(len(plan.lo)):
        lo, hi = plan.lo[i], plan.hi[i]
        inside = (keys >= lo) & (keys < hi)
        k = keys[inside]
        w = np.ones(k.size) if weights is None else np.asarray(weights[inside], np.float64)
        if plan.collect[i]:
            out.append(("rows", k.copy(), w))
        else:
            cell = (k - lo) // plan.width(i)
            # (bincount of nothing is int64 even with weights: cast both)
            out.append(("cells",
                        np.bincount(cell, weights=w, minlength=SEARCH_CELLS).astype(np.float64),
                        np.bincount(cell, minlength=SEARCH_CELLS).astype(np.int64)))
    return out


def merge_search(a: list[Any] | None, b: list[Any]) -> list[Any]:
    """Add histograms and concatenate collected rows of two parts of a search pass."""
    if a is None:
        return b
    out = []
    for (kind, a0, a1), (other, b0, b1) in zip(a, b, strict=True):
        if kind != other:
            raise ValueError(f"cannot merge search parts of kinds {kind!r} and {other!r}")
        if kind == "cells":
            out.append((kind, a0 + b0, a1 + b1))
        else:
            out.append((kind, np.concatenate([a0, b0]), np.concatenate([a1, b1])))
    return out


class QuantileSearch:
    """Exact weighted quantiles of the confidences in a few bounded-memory passes.

    Finds the equal-mass edges of SPEC.md (those of
    :func:`trueprob.core.binning.equal_mass_edges`): e_j, j = 1..B-1, is the smallest
    confidence v with weight {c <= v} >= (j/B)(1 - 1e-12) W. Confidences in [0, 1] are
    compared through their float64 bit patterns (int64 keys in the same order). The first
    pass takes the total weight W and a histogram of 2**16 cells over all keys; each later
    pass narrows the interval of every unresolved quantile to the cell where its cumulative
    weight is reached, with a new 2**16-cell histogram inside it, or, once the interval holds
    at most 2**16 rows, collects and sorts them. Each pass divides an interval by 2**16, so
    even ties and values a few ulp apart resolve in at most five passes; typically two or
    three. Memory: (B-1) histograms and at most B x 2**16 collected keys, whatever N.

    Drive it with :meth:`plan` (None when done), :func:`search_pass` on every part of the
    data, :func:`merge_search`, and :meth:`update`.
    """

    def __init__(self, n_bins: int) -> None:
        self.n_bins = int(n_bins)
        self.total: float | None = None
        self.targets: np.ndarray | None = None
        n = self.n_bins - 1
        self.lo = np.zeros(n, dtype=np.int64)
        self.hi = np.full(n, _KEY_ONE + 1, dtype=np.int64)
        self.below = np.zeros(n)  # weight of the keys below each interval
        self.count = np.zeros(n, dtype=np.int64)  # rows in each interval (after pass 1)
        self.result = np.full(n, -1, dtype=np.int64)
        self.passes = 0

    def plan(self) -> SearchPlan | None:
        """The next pass's request, or None when every edge is known."""
        if self.n_bins == 1:
            return None
        if self.passes == 0:
            return SearchPlan((0,), (_KEY_ONE + 1,), (False,))
        todo = [j for j in range(self.n_bins - 1) if self.result[j] < 0]
        if not todo:
            return None
        intervals = sorted({(int(self.lo[j]), int(self.hi[j])) for j in todo})
        collect = tuple(
            bool(max(self.count[j] for j in todo if (self.lo[j], self.hi[j]) == iv)
                 <= SEARCH_COLLECT) for iv in intervals)
        return SearchPlan(tuple(i[0] for i in intervals), tuple(i[1] for i in intervals),
                          collect)

    def update(self, plan: SearchPlan, parts: list[Any], total: float | None = None) -> None:
        """Take the merged result of a pass (and, after the first pass, W)."""
        if self.passes == 0:
            if total is None or not total > 0:
                raise ValueError("sample_weight sums to 0; at least one row needs a positive "
                                 "weight")
            self.total = float(total)
            self.targets = (np.arange(1, self.n_bins, dtype=np.float64) / self.n_bins
                            * self.total * (1 - 1e-12))
        assert self.targets is not None
        self.passes += 1
        for i in range(len(plan.lo)):
            lo, hi = plan.lo[i], plan.hi[i]
            mine = [j for j in range(self.n_bins - 1) if self.result[j] < 0
                    and self.lo[j] == lo and self.hi[j] == hi]
            _, a, b = parts[i]
            if plan.collect[i]:
                order = np.argsort(a, kind="stable")
                keys, cum = a[order], np.cumsum(b[order])
                for j in mine:
                    need = self.targets[j] - self.below[j]
                    pos = int(np.searchsorted(cum, need, side="left"))
                    if keys.size == 0:  # rounding put the target past the last row
                        self.result[j] = lo
                    else:
                        self.result[j] = keys[min(pos, keys.size - 1)]
                continue
            width = plan.width(i)
            cum = np.cumsum(a)
            nonempty = np.flatnonzero(b)
            for j in mine:
                need = self.targets[j] - self.below[j]
                c = int(np.searchsorted(cum, need, side="left"))
                if c >= SEARCH_CELLS:  # rounding: the target is at the interval's last row
                    c = int(nonempty[-1]) if nonempty.size else 0
                self.below[j] += float(cum[c - 1]) if c > 0 else 0.0
                self.lo[j] = lo + c * width
                self.hi[j] = min(lo + (c + 1) * width, hi)
                self.count[j] = int(b[c])
                if self.hi[j] - self.lo[j] == 1:
                    self.result[j] = self.lo[j]

    def edges(self) -> np.ndarray:
        """The B + 1 edges: 0, the B - 1 quantiles, 1."""
        inner = self.result.view(np.float64) if self.n_bins > 1 else np.empty(0)
        return np.concatenate([[0.0], inner, [1.0]])


def _confidences(batch: Batch) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
    """(keys, weights) of every validated chunk of a batch."""
    from trueprob._array import to_numpy
    from trueprob.core.rows import row_quantities

    xp = batch.inputs.xp
    for chunk in _checked_chunks(batch):
        rows = row_quantities(xp, chunk, need_scores=False)
        w = None if chunk.weights is None else to_numpy(chunk.weights)
        yield confidence_keys(to_numpy(rows.confidence)), w


def search_batches(batches: Iterable[Batch], plan: SearchPlan) -> tuple[float, list[Any] | None]:
    """One pass of a quantile search over some batches: (their total weight, their merged
    :func:`search_pass` parts, None for no rows)."""
    total, merged = 0.0, None
    for batch in batches:
        for keys, w in _confidences(batch):
            merged = merge_search(merged, search_pass(plan, keys, w))
            total += float(keys.size) if w is None else float(w.sum())
    return total, merged


def mass_edges(passes: Callable[[], Iterable[Batch]], n_bins: int, *,
               bar: ProgressBar | None = None) -> np.ndarray:
    """Exact equal-mass edges of a stream (:class:`QuantileSearch`, a few passes).

    ``bar`` (optional) is restarted at each pass ("pass 2: equal-mass edges") and advanced
    by the rows of each batch.
    """
    search = QuantileSearch(n_bins)
    while (plan := search.plan()) is not None:
        total, merged = search_batches(
            counted(passes, bar, f"pass {search.passes + 1}: equal-mass edges"), plan)
        assert merged is not None
        search.update(plan, merged, total)
    return search.edges()
