"""Bin assignment and bin edges (SPEC.md, "Binning")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from trueprob._array import Array

Closed = Literal["right", "left"]


@dataclass(frozen=True)
class Binning:
    """How scores in [0, 1] are put into ``n_bins`` bins.

    - ``edges is None``: equal-width bins. Right-closed (default): bin j = (j/B, (j+1)/B], index
      ``clip(ceil(B*c) - 1, 0, B-1)`` computed in float64, so c = 0 is in bin 0 and c = 1 in bin
      B-1. Left-closed: bin j = [j/B, (j+1)/B), index ``clip(floor(B*c), 0, B-1)``, so 1.0 is in
      the last bin.
    - ``edges`` given (B+1 increasing values from 0 to 1, e.g. equal-mass edges): right-closed
      bin j = (e_j, e_{j+1}] with c <= e_1 in bin 0; left-closed bin j = [e_j, e_{j+1}) with
      c >= e_{B-1} in bin B-1. Repeated edges give empty bins; a tie is never split because bin
      membership depends only on the value.
    """

    n_bins: int = 15
    closed: Closed = "right"
    edges: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.n_bins, bool) or not isinstance(self.n_bins, (int, np.integer)) \
                or self.n_bins < 1:
            raise ValueError(f"n_bins must be a positive integer; got {self.n_bins!r}")
        if self.closed not in ("right", "left"):
            raise ValueError(f"closed must be 'right' or 'left'; got {self.closed!r}")
        if self.edges is not None:
            e = np.asarray(self.edges, dtype=np.float64)
            if e.ndim != 1 or e.size != self.n_bins + 1:
                raise ValueError(
                    f"edges must have n_bins + 1 = {self.n_bins + 1} values; got {e.size}"
                )
            if not (np.all(np.isfinite(e)) and np.all(np.diff(e) >= 0)):
                raise ValueError(f"edges must be finite and non-decreasing; got {e.tolist()}")

    @property
    def scheme(self) -> str:
        return "width" if self.edges is None else "edges"

    def edge_array(self) -> np.ndarray:
        """The B+1 bin edges as float64."""
        if self.edges is None:
            return np.arange(self.n_bins + 1, dtype=np.float64) / self.n_bins
        return np.asarray(self.edges, dtype=np.float64)

    def index(self, xp: Any, x: Array) -> Array:
        """Bin index (int64, same shape as ``x``) of every value of ``x``."""
        b = self.n_bins
        if self.edges is None and isinstance(x, np.ndarray):
            # numpy: the same float64 arithmetic in place (3x faster than the generic path;
            # np.maximum/np.minimum rather than np.clip, whose Python wrapper costs ~15 us)
            t = np.multiply(x, float(b), dtype=np.float64)
            if self.closed == "right":
                np.ceil(t, out=t)
                t -= 1.0
            else:
                np.floor(t, out=t)
            np.maximum(t, 0.0, out=t)
            np.minimum(t, float(b - 1), out=t)
            return t.astype(np.int64)
        if self.edges is None:
            scaled = xp.astype(x, xp.float64) * float(b)
            if self.closed == "right":
                idx = xp.ceil(scaled) - 1.0
            else:
                idx = xp.floor(scaled)
            return xp.astype(xp.clip(idx, 0.0, float(b - 1)), xp.int64)
        from trueprob._array import device

        inner = xp.asarray(np.asarray(self.edges[1:-1], dtype=np.float64), device=device(x))
        flat = xp.reshape(xp.astype(x, xp.float64), (-1,))
        side = "left" if self.closed == "right" else "right"
        idx = xp.searchsorted(inner, flat, side=side)
        return xp.reshape(xp.astype(idx, xp.int64), x.shape)


def equal_mass_edges(values: np.ndarray, weights: np.ndarray | None, n_bins: int) -> np.ndarray:
    """Edges at weighted quantiles of ``values`` (SPEC.md: equal-mass binning).

    e_0 = 0, e_B = 1 and, for j = 1..B-1, e_j is the smallest value v such that the weight of
    {c <= v} is at least j/B of the total. With right-closed bins, ties at v all fall in the
    lower bin, so ties are never split; heavy ties give repeated edges and empty bins.
    Needs all values (O(N) memory, one sort).
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    order = np.argsort(v, kind="stable")
    sv = v[order]
    cw = np.cumsum(np.ones_like(sv) if weights is None else np.asarray(weights, np.float64)[order])
    total = cw[-1]
    targets = np.arange(1, n_bins, dtype=np.float64) / n_bins * total
    pos = np.searchsorted(cw, targets * (1 - 1e-12), side="left")
    pos = np.minimum(pos, sv.size - 1)
    inner = sv[pos]
    return np.concatenate([[0.0], inner, [1.0]])
