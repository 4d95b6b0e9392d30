"""Diagrams of the regression report: the PIT histogram and the coverage plot.

As in the rest of :mod:`trueprob.report.plots`, each diagram is two steps: a builder
(:func:`pit_data`, :func:`coverage_data`; numpy and scipy only, in
:mod:`trueprob.analysis.regression` and re-exported here) reads a
:class:`~trueprob.regression.RegressionReport` into a frozen dataclass of arrays, and a drawing
function (:func:`plot_pit_histogram`, :func:`plot_coverage`) draws it on ``ax`` (a new figure
when ``ax=None``) inside trueprob's ``rc_context`` and returns the artists it made. matplotlib
is imported only when drawing.

The bands are what a calibrated model would show: for a share p expected on n (effective)
rows, the central binomial interval [F^-1((1 - level)/2), F^-1((1 + level)/2)] / n of
Binomial(n, p). They are pointwise (one bin or one level at a time).

The multi-label report draws its worst-calibrated labels with
:func:`~trueprob.report.plots.plot_classwise_grid` (one small reliability diagram per label).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from trueprob.analysis.regression import (
    CoverageData,
    PitData,
    binomial_band,
    coverage_data,
    pit_data,
)
from trueprob.report.plots.style import ROLES, series_style, style

__all__ = ["CoverageArtists", "CoverageData", "PitArtists", "PitData", "binomial_band",
           "coverage_data", "pit_data", "plot_coverage", "plot_pit_histogram"]



# --------------------------------------------------------------------------- drawing
@dataclass(frozen=True, eq=False)
class PitArtists:
    """What :func:`plot_pit_histogram` drew: the bars (one per bin), the calibrated model's
    share as a step line and its band (one rectangle per bin)."""

    figure: Any
    ax: Any
    bars: Any
    expected: Any
    band: Any


def _new_axes(figsize: tuple[float, float], ncols: int = 1) -> list[Any]:
    from trueprob.report.plots.style import matplotlib

    matplotlib()
    import matplotlib.pyplot as plt

    _, axes = plt.subplots(1, ncols, figsize=figsize, squeeze=False)
    return list(axes[0])


def plot_pit_histogram(data: PitData, /, *, ax: Any = None,
                       title: str | None = None) -> PitArtists:
    """The PIT histogram: the observed share of rows per PIT bin against a calibrated model's.

    Bars: W_j / W per bin (bars outside the band are outlined in the warning colour); black
    step line: the expected share (the bin's width; flat for equal bins); grey boxes: the
    binomial band of a calibrated model at ``data.level``. A U shape (outer bins too full)
    means the predictive distributions are too narrow; a hump, too wide; a slope, biased.

    Examples
    --------
    >>> import numpy as np
    >>> from trueprob.report.plots.tasks import PitData, plot_pit_histogram
    >>> e = np.linspace(0, 1, 5); x = np.full(4, 0.25)
    >>> d = PitData(e, np.array([.4, .1, .1, .4]), x, np.array([40, 10, 10, 40]), x - .08,
    ...             x + .08, 100.0, 0.95, "model")
    >>> art = plot_pit_histogram(d)
    >>> [round(float(b.get_height()), 2) for b in art.bars]
    [0.4, 0.1, 0.1, 0.4]
    >>> import matplotlib.pyplot as plt; plt.close(art.figure)
    """
    with style():
        if ax is None:
            ax = _new_axes((5.0, 3.4))[0]
        lower, upper = data.edges[:-1], data.edges[1:]
        widths = upper - lower
        band = ax.bar(lower, data.high - data.low, bottom=data.low, width=widths,
                      align="edge", color=ROLES["band"], alpha=0.35, linewidth=0, zorder=0,
                      label=f"{data.level:.0%} band of a calibrated model")
        outside = data.outside
        color = series_style(0)["color"]
        bars = ax.bar(lower + 0.06 * widths, data.observed, width=0.88 * widths, align="edge",
                      color=color, alpha=0.75, zorder=2, linewidth=1.2,
                      edgecolor=[ROLES["over_confident"] if o else color for o in outside],
                      label="observed share of rows")
        for patch, o in zip(bars.patches, outside, strict=True):
            if o:
                patch.set_hatch("////")
        expected = ax.stairs(data.expected, data.edges, color=ROLES["diagonal"],
                             linestyle="--", linewidth=1.0, zorder=3,
                             label="calibrated (uniform PIT)")
        ax.set_xlim(0, 1)
        top = float(np.nanmax(np.concatenate([data.observed, data.high, data.expected])))
        ax.set_ylim(0, top * 1.15 if top > 0 else 1.0)
        ax.set_xlabel("PIT value u = F(y)")
        ax.set_ylabel("share of rows")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=2)
        name = f"{data.label}: " if data.label else ""
        ax.set_title(title if title is not None else
                     f"{name}PIT histogram ({data.edges.size - 1} bins)")
    return PitArtists(ax.figure, ax, bars, expected, band)


@dataclass(frozen=True, eq=False)
class CoverageArtists:
    """What :func:`plot_coverage` drew: the coverage axes and the calibration axes, each with
    its points (observed against nominal) and band."""

    figure: Any
    axes: tuple[Any, Any]
    coverage: Any
    calibration: Any
    bands: tuple[Any, Any]


def _nominal_panel(ax: Any, nominal: np.ndarray, observed: np.ndarray, low: np.ndarray,
                   high: np.ndarray, series: int, xlabel: str, ylabel: str, title: str,
                   level: float) -> tuple[Any, Any]:
    ax.plot([0, 1], [0, 1], linestyle=":", color=ROLES["diagonal"], linewidth=1.0,
            label="calibrated")
    band = ax.fill_between(nominal, low, high, color=ROLES["band"], alpha=0.35, linewidth=0,
                           label=f"{level:.0%} band", step=None)
    s = series_style(series)
    line = ax.plot(nominal, observed, color=s["color"], linestyle=s["linestyle"],
                   marker=s["marker"], markersize=5, linewidth=1.2, label="observed")[0]
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal", adjustable="box")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(loc="upper left")
    return line, band


def plot_coverage(data: CoverageData, /, *, ax: Any = None) -> CoverageArtists:
    """Two panels, observed against nominal with the diagonal and a calibrated model's band.

    Left: the share of rows inside each central prediction interval against its nominal level
    a (points below the diagonal: intervals too narrow; above: too wide). Right: the share of
    rows at or below the predicted p-quantile against p (Kuleshov et al. 2018's calibration
    curve; a curve above the diagonal at small p and below at large p is a too-narrow
    distribution, a shifted curve a biased one).

    Parameters
    ----------
    data : CoverageData
    ax : pair of matplotlib Axes, optional
        Where to draw the two panels (default: a new figure).

    Examples
    --------
    >>> import numpy as np
    >>> from trueprob.report.plots.tasks import CoverageData, plot_coverage
    >>> a = np.array([.5, .9]); p = np.array([.1, .5, .9])
    >>> d = CoverageData(a, a - .1, np.ones(2), a - .05, a + .05, p, p, p - .05, p + .05,
    ...                  100.0, 0.95, "model")
    >>> art = plot_coverage(d)
    >>> art.coverage.get_ydata().tolist()
    [0.4, 0.8]
    >>> import matplotlib.pyplot as plt; plt.close(art.figure)
    """
    with style():
        if ax is None:
            axes = _new_axes((8.0, 4.0), ncols=2)
        else:
            axes = list(np.ravel(np.asarray(ax, dtype=object)))
            if len(axes) < 2:
                raise ValueError(f"ax must hold two axes (coverage, calibration); got "
                                 f"{len(axes)}")
        cov, cov_band = _nominal_panel(
            axes[0], data.coverage_level, data.coverage_observed, data.coverage_low,
            data.coverage_high, 0, "nominal level of the central interval",
            "share of rows inside", "coverage of central intervals", data.level)
        cal, cal_band = _nominal_panel(
            axes[1], data.calibration_level, data.calibration_observed, data.calibration_low,
            data.calibration_high, 1, "level p", "share of rows with F(y) <= p",
            "quantile calibration", data.level)
    return CoverageArtists(axes[0].figure, (axes[0], axes[1]), cov, cal, (cov_band, cal_band))
