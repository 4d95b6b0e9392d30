"""`RegressionStats`: the fixed-size, mergeable state behind every regression metric.

A chunk of rows is reduced to sums: of the weight, the NLL, the CRPS and the squared and
absolute standardised residuals; of the weight per cell of a fine PIT grid; of the weight at
or below each calibration level; and of the weight and interval width per coverage level.
The state never holds a row, so its size depends on the settings, not on N, and states merge by
adding arrays (any chunking, any merge order: the one-shot numbers up to rounding).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from trueprob._array import Array, as_array, bincount, device, on_device, to_numpy
from trueprob.core.binning import Binning
from trueprob.core.options import check_unit
from trueprob.regression import core
from trueprob.regression._validation import (
    RegressionChunk,
    RegressionInputs,
    available_coverage,
    central_pairs,
    check_levels,
    prepare_regression,
)
from trueprob.results import (
    CoverageRow,
    LevelRow,
    PitHistogram,
    RegressionReport,
    RegressionSettings,
)
from trueprob.stats.state import MergeableState, Slot

#: cells of the PIT grid of a parametric state (1000: every level j/1000 is an exact edge)
PIT_CELLS = 1000
#: nominal levels of the central prediction intervals whose coverage is reported
DEFAULT_COVERAGE = (0.5, 0.8, 0.9, 0.95)
#: levels p_j of the quantile calibration error of parametric predictions: 0.1, ..., 0.9
DEFAULT_CALIBRATION = tuple(j / 10 for j in range(1, 10))
DEFAULT_PIT_BINS = 20
STATE_FORMAT = "trueprob.RegressionStats"
STATE_VERSION = 1
_W, _NLL, _CRPS, _Z2, _ABSZ = range(5)
N_SUMS = 5


def _weight_below(xp: Any, u: Array, levels: np.ndarray, w: Array | None, dev: Any, *,
                  strict: bool) -> Array:
    """sum_i w_i 1[u_i <= p_j] (``strict``: u_i < p_j) for ascending levels p_j, float64 (m,).

    One search and one scatter-add over the rows, no (n, m) temporary: with
    k_i = #{j: p_j < u_i} (``strict``: <=), u_i <= p_j iff k_i <= j, so the sums are the
    cumulative sums of the weight per k.
    """
    m = int(levels.shape[0])
    lv = as_array(np.ascontiguousarray(levels, dtype=np.float64), xp, dev)
    k = xp.searchsorted(lv, u, side="right" if strict else "left")
    per = bincount(xp, k, w, m + 1)
    return xp.cumulative_sum(xp.astype(per, xp.float64))[:m]


class RegressionStats(MergeableState):
    """Sufficient statistics of :func:`~trueprob.regression.evaluate_regression`.

    Parameters
    ----------
    quantile_levels : sequence of float, optional
        For quantile-set predictions: the levels p_1 < ... < p_M of the set. None (default):
        a state for parametric predictions (Gaussian, Laplace, Student-t).
    coverage_levels : sequence of float, optional
        Nominal levels a of the central intervals whose coverage is kept. Parametric default
        (0.5, 0.8, 0.9, 0.95); for a quantile set, default every a = 1 - 2 p with both p and
        1 - p among its levels (a level without its pair is refused).
    calibration_levels : sequence of float, optional
        Levels p_j of the quantile calibration error (parametric only; default 0.1, ..., 0.9).
        A quantile set is calibrated at its own levels.
    pit_cells : int
        Cells G of the PIT grid of a parametric state (default 1000); the PIT histogram's bin
        count must divide it.

    The state is: float64 sums (weight W, sum w NLL, sum w CRPS, sum w z^2, sum w |z|), the
    int64 row count, the PIT grid (G cells, or M + 1 intervals for a quantile set: weight and
    row count), the weight with F_i(y_i) <= p_j per calibration level, and the covered weight
    and the summed interval width per coverage level.

    Examples
    --------
    >>> import numpy as np
    >>> from trueprob.regression import Gaussian, RegressionStats
    >>> y = np.array([0.1, -0.3, 1.2, 0.4])
    >>> a = RegressionStats().update(y[:2], Gaussian(mean=np.zeros(2), std=1.0))
    >>> b = RegressionStats().update(y[2:], Gaussian(mean=np.zeros(2), std=1.0))
    >>> round(a.merge(b).finalize().crps, 6)   # properscoring 0.1: 0.38792934...
    0.387929
    """

    def __init__(self, *, quantile_levels: Any = None, coverage_levels: Any = None,
                 calibration_levels: Any = None, pit_cells: int = PIT_CELLS) -> None:
        if isinstance(pit_cells, bool) or not isinstance(pit_cells, (int, np.integer)) \
                or pit_cells < 1:
            raise ValueError(f"pit_cells must be a positive integer; got {pit_cells!r}")
        if quantile_levels is None:
            self.mode = "parametric"
            self.quantile_levels: np.ndarray | None = None
            self.calibration_levels = check_levels(
                DEFAULT_CALIBRATION if calibration_levels is None else calibration_levels,
                "calibration_levels")
            self.coverage_levels = check_levels(
                DEFAULT_COVERAGE if coverage_levels is None else coverage_levels,
                "coverage_levels", allow_empty=True)
            self.pit_cells = int(pit_cells)
            self.pairs: list[tuple[int, int]] = []
        else:
            self.mode = "quantiles"
            levels = check_levels(quantile_levels, "quantile_levels")
            if calibration_levels is not None:
                raise ValueError("calibration_levels applies to parametric predictions; a "
                                 "quantile set is calibrated at its own levels")
            self.quantile_levels = levels
            self.calibration_levels = levels
            self.coverage_levels = (available_coverage(levels) if coverage_levels is None else
                                    check_levels(coverage_levels, "coverage_levels",
                                                 allow_empty=True))
            self.pairs = central_pairs(levels, self.coverage_levels)
            self.pit_cells = int(levels.shape[0]) + 1
        self.families: set[str] = set()
        self._xp: Any = None
        self._device: Any = None
        self.sums: Array = None
        self.counts: Array = None
        self.pit_weight: Array = None
        self.pit_count: Array = None
        self.below: Array = None
        self.covered: Array = None
        self.width: Array = None

    # ------------------------------------------------------------------ update
    def update(self, observed: Any, predictive: Any, /, *,
               sample_weight: Any = None) -> RegressionStats:
        """Add a chunk of rows: observed values y (N,) and their predictive distributions."""
        return self.update_inputs(prepare_regression(observed, predictive,
                                                     sample_weight=sample_weight))

    def update_inputs(self, inputs: RegressionInputs, rows: int | None = None
                      ) -> RegressionStats:
        """Add already prepared inputs, chunk by chunk."""
        if (inputs.family == "quantiles") != (self.mode == "quantiles"):
            want = ("a QuantileSet" if self.mode == "quantiles" else
                    "a parametric family (Gaussian, Laplace, StudentT)")
            raise ValueError(f"this state was made for {want}; got {inputs.family} predictions"
                             + ("; pass quantile_levels= to RegressionStats for quantile sets"
                                if self.mode == "parametric" else ""))
        if self.mode == "quantiles":
            assert inputs.levels is not None and self.quantile_levels is not None
            if inputs.levels.shape != self.quantile_levels.shape or \
                    not np.array_equal(inputs.levels, self.quantile_levels):
                raise ValueError(f"this state has quantile levels "
                                 f"{self.quantile_levels.tolist()}; got {inputs.levels.tolist()}")
        self.families.add(inputs.family)
        for chunk in inputs.chunks(rows):
            self.update_chunk(inputs.xp, chunk, inputs.family)
        return self

    def update_chunk(self, xp: Any, chunk: RegressionChunk, family: str) -> None:
        """Add one validated chunk (all per-row work is elementwise on (n,) arrays)."""
        y = chunk.observed
        dev = device(y)
        self._ensure(xp, dev)
        w = chunk.weights
        n = chunk.n_rows
        f64 = xp.float64

        def wsum(x: Array) -> Array:
            return xp.sum(x) if w is None else xp.sum(x * w)

        def wcols(x: Array) -> Array:
            """Weighted column sums of a boolean or float (n, m) array."""
            x = xp.astype(x, f64)
            return xp.sum(x, axis=0) if w is None else xp.sum(x * w[:, None], axis=0)

        total = float(n) if w is None else xp.sum(w)
        zero: Any = 0.0
        if family == "quantiles":
            q = chunk.quantiles
            levels = as_array(self.quantile_levels, xp, dev)
            add = [total, zero, wsum(core.quantile_crps(xp, y, q, levels)), zero, zero]
            cell = xp.sum(xp.astype(q < y[:, None], xp.int64), axis=1)
            below = wcols(y[:, None] <= q)
            if self.pairs:
                lo = xp.stack([q[:, p[0]] for p in self.pairs], axis=1)
                hi = xp.stack([q[:, p[1]] for p in self.pairs], axis=1)
                covered = wcols((lo <= y[:, None]) & (y[:, None] <= hi))
                width = wcols(hi - lo)
            else:
                covered = width = self.covered[:0]
        else:
            loc, scale, df = chunk.loc, chunk.scale, chunk.df
            z = (y - loc) / scale
            log_scale = math.log(scale) if isinstance(scale, float) else xp.log(scale)
            nll = log_scale - core.standard_logpdf(family, xp, z, df)
            u = core.standard_cdf(family, xp, z, df)
            crps = scale * core.standard_crps(family, xp, z, df, cdf=u)
            add = [total, wsum(nll), wsum(crps), wsum(z * z), wsum(xp.abs(z))]
            cell = Binning(self.pit_cells).index(xp, u)
            below = _weight_below(xp, u, self.calibration_levels, w, dev, strict=False)
            cov = self.coverage_levels
            if cov.size:
                lo_p, hi_p = (1.0 - cov) / 2.0, (1.0 + cov) / 2.0
                # lo <= u <= hi: (weight with u <= hi) - (weight with u < lo); lo decreases
                # with the level, so it is searched reversed (ascending)
                at_most_hi = _weight_below(xp, u, hi_p, w, dev, strict=False)
                below_lo = xp.flip(_weight_below(xp, u, lo_p[::-1], w, dev, strict=True))
                covered = at_most_hi - below_lo
                width = self._widths(xp, family, scale, df, lo_p, hi_p, total, w, dev)
            else:
                covered = width = self.covered[:0]
        self.sums += xp.stack([xp.asarray(a, dtype=f64, **on_device(dev)) for a in add])
        self.counts += n
        if w is None:
            counts = bincount(xp, cell, None, self.pit_cells)
            self.pit_count += counts
            self.pit_weight += xp.astype(counts, f64)
        else:
            self.pit_count += xp.astype(
                bincount(xp, cell, xp.astype(w > 0, f64), self.pit_cells), xp.int64)
            self.pit_weight += bincount(xp, cell, w, self.pit_cells)
        self.below += below
        self.covered += covered
        self.width += width

    def _widths(self, xp: Any, family: str, scale: Any, df: Any, lo: np.ndarray,
                hi: np.ndarray, total: Any, w: Any, dev: Any) -> Array:
        """sum_i w_i (F_i^{-1}(hi) - F_i^{-1}(lo)) = sum_i w_i sigma_i (F_0^{-1}(hi) -
        F_0^{-1}(lo)) per coverage level (per-row spans only for a per-row df)."""
        f64 = xp.float64
        if df is None or isinstance(df, float):
            span = core.standard_ppf(family, hi, df) - core.standard_ppf(family, lo, df)
            sw = total * scale if isinstance(scale, float) else \
                (xp.sum(scale) if w is None else xp.sum(scale * w))
            return xp.asarray(span, dtype=f64, **on_device(dev)) * sw
        v = to_numpy(df)[:, None]
        span = core.standard_ppf(family, hi[None, :], v) - core.standard_ppf(family, lo[None, :],
                                                                            v)
        rows = as_array(span, xp, dev) * (scale if isinstance(scale, float) else scale[:, None])
        return xp.sum(rows, axis=0) if w is None else xp.sum(rows * w[:, None], axis=0)

    # ------------------------------------------------------------------ state (merge, bytes)
    FORMAT = STATE_FORMAT
    VERSION = STATE_VERSION
    WHAT = "trueprob regression state"

    def _slots(self) -> dict[str, Slot]:
        cells = (self.pit_cells,)
        m, c = (int(self.calibration_levels.shape[0]),), (int(self.coverage_levels.shape[0]),)
        return {"sums": ((N_SUMS,), "float64"), "counts": ((1,), "int64"),
                "pit_weight": (cells, "float64"), "pit_count": (cells, "int64"),
                "below": (m, "float64"), "covered": (c, "float64"), "width": (c, "float64")}

    def _settings(self) -> tuple[Any, ...]:
        return (self.mode, None if self.quantile_levels is None else
                tuple(self.quantile_levels.tolist()), tuple(self.calibration_levels.tolist()),
                tuple(self.coverage_levels.tolist()), self.pit_cells)

    def _empty_like(self) -> RegressionStats:
        return RegressionStats(
            quantile_levels=self.quantile_levels, coverage_levels=self.coverage_levels,
            calibration_levels=None if self.mode == "quantiles" else self.calibration_levels,
            pit_cells=self.pit_cells if self.mode == "parametric" else PIT_CELLS)

    def _merge_extra(self, other: RegressionStats, out: RegressionStats) -> None:
        out.families = self.families | other.families

    def _header(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "quantile_levels": None if self.quantile_levels is None else
            self.quantile_levels.tolist(),
            "calibration_levels": self.calibration_levels.tolist(),
            "coverage_levels": self.coverage_levels.tolist(), "pit_cells": self.pit_cells,
            "families": sorted(self.families),
        }

    @classmethod
    def _from_header(cls, header: dict[str, Any]) -> RegressionStats:
        quantile = header["mode"] == "quantiles"
        out = cls(quantile_levels=header["quantile_levels"],
                  coverage_levels=header["coverage_levels"],
                  calibration_levels=None if quantile else header["calibration_levels"],
                  pit_cells=PIT_CELLS if quantile else header["pit_cells"])
        out.families = set(header["families"])
        return out

    # ------------------------------------------------------------------ finalize
    def finalize(self, *, n_pit_bins: int | None = None, unit: str = "nats"
                 ) -> RegressionReport:
        """The :class:`RegressionReport` of everything added so far.

        ``n_pit_bins`` is the bin count B of the parametric PIT histogram (default 20; it
        must divide the grid's cells); a quantile set's histogram has one bin per interval
        between its levels (``n_pit_bins`` must then be None).
        """
        scale = check_unit(unit)
        if self._xp is None:
            raise ValueError("no rows were added to this state; call update() first")
        sums = to_numpy(self.sums).astype(np.float64)
        total = float(sums[_W])
        if not total > 0:
            raise ValueError("sample_weight sums to 0; at least one row needs a positive weight")
        pit_w = to_numpy(self.pit_weight).astype(np.float64)
        pit_n = to_numpy(self.pit_count).astype(np.int64)
        levels = self.calibration_levels
        observed = to_numpy(self.below).astype(np.float64) / total
        qce = float(np.sum((levels - observed) ** 2))
        unavailable: dict[str, str] = {}
        if self.mode == "parametric":
            b = DEFAULT_PIT_BINS if n_pit_bins is None else n_pit_bins
            if isinstance(b, bool) or not isinstance(b, (int, np.integer)) or b < 1 \
                    or self.pit_cells % b:
                raise ValueError(f"n_pit_bins must be a positive integer dividing the "
                                 f"{self.pit_cells} PIT cells; got {n_pit_bins!r}")
            grid = np.arange(1, self.pit_cells + 1) / self.pit_cells
            pit_ece = float(np.mean(np.abs(np.cumsum(pit_w) / total - grid)))
            weight = pit_w.reshape(b, -1).sum(axis=1)
            count = pit_n.reshape(b, -1).sum(axis=1)
            edges = np.arange(b + 1) / b
            nll: float | None = float(sums[_NLL] / total * scale)
            dispersion: float | None = float(sums[_Z2] / total)
        else:
            if n_pit_bins is not None:
                raise ValueError("n_pit_bins applies to parametric predictions; a quantile "
                                 "set's PIT histogram has one bin per interval between levels")
            pit_ece = float(np.mean(np.abs(observed - levels)))
            weight, count = pit_w, pit_n
            edges = np.concatenate([[0.0], levels, [1.0]])
            nll = dispersion = None
            why = "a quantile set has no density (no likelihood) and no scale"
            unavailable.update(nll=why, dispersion=why)
        hist = PitHistogram(
            tuple(float(e) for e in edges), tuple(float(v) for v in weight),
            tuple(int(v) for v in count), tuple(float(v) for v in weight / total),
            tuple(float(v) for v in np.diff(edges)))
        cov_w = to_numpy(self.covered).astype(np.float64) / total
        width = to_numpy(self.width).astype(np.float64) / total
        coverage = tuple(CoverageRow(float(a), float(c), float(m))
                         for a, c, m in zip(self.coverage_levels, cov_w, width, strict=True))
        calibration = tuple(LevelRow(float(p), float(o))
                            for p, o in zip(levels, observed, strict=True))
        settings = RegressionSettings(self.pit_cells, len(hist.weight),
                                      tuple(float(v) for v in levels),
                                      tuple(float(v) for v in self.coverage_levels), unit)
        return RegressionReport(
            n=int(to_numpy(self.counts)[0]), weight=total, family="+".join(sorted(self.families)),
            unit=unit, nll=nll, crps=float(sums[_CRPS] / total), pit_ece=pit_ece,
            quantile_calibration_error=qce, dispersion=dispersion, calibration=calibration,
            coverage=coverage, pit_histogram=hist, settings=settings, unavailable=unavailable)

    def scale_factor(self, family: str) -> float:
        """The maximum-likelihood factor s of sigma -> s sigma from the state alone.

        Gaussian: s^2 = sum w z^2 / W; Laplace: s = sum w |z| / W (closed forms, see
        :class:`~trueprob.regression.calibrators.VarianceScaling`). Both are sums, so the
        fit merges like the state; the Student-t needs the rows (an iterative fit).
        """
        if self.mode != "parametric" or self._xp is None:
            raise ValueError("scale_factor needs a parametric state with rows added")
        if self.families != {family}:
            raise ValueError(f"this state holds {sorted(self.families)} predictions, not "
                             f"{family!r} only")
        sums = to_numpy(self.sums).astype(np.float64)
        if family == "gaussian":
            return float(math.sqrt(sums[_Z2] / sums[_W]))
        if family == "laplace":
            return float(sums[_ABSZ] / sums[_W])
        raise ValueError(f"scale_factor from a state exists for 'gaussian' and 'laplace'; the "
                         f"{family!r} fit needs the rows (VarianceScaling().fit)")
