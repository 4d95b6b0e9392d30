"""Diagrams of the regression report: the PIT histogram and the coverage plot.

As in the rest of :mod:`trueprob.report.plots`, each diagram is two steps: a builder
(:func:`pit_data`, :func:`coverage_data`; numpy and scipy only) reads a
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

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import stats as st

from trueprob.report.plots.style import ROLES, series_style, style

if TYPE_CHECKING:
    from trueprob.results import RegressionReport


def _check_level(level: float) -> float:
    if isinstance(level, bool) or not isinstance(level, (int, float)) \
            or not 0.0 < float(level) < 1.0:
        raise ValueError(f"level must be in (0, 1), e.g. 0.95; got {level!r}")
    return float(level)


def binomial_band(p: Any, n: float, /, *, level: float = 0.95
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Central binomial interval of the share a calibrated model shows: for each p,
    [F^-1((1 - level)/2), F^-1((1 + level)/2)] / n with F the CDF of Binomial(n, p).

    ``n`` is the (effective) number of rows, rounded to the nearest integer >= 1.

    Examples
    --------
    >>> low, high = binomial_band([0.5, 0.05], 100)
    >>> low.tolist(), high.tolist()
    ([0.4, 0.01], [0.6, 0.1])
    """
    level = _check_level(level)
    if not (isinstance(n, (int, float, np.integer, np.floating)) and math.isfinite(n) and n > 0):
        raise ValueError(f"n must be a positive number of rows; got {n!r}")
    rows = max(round(float(n)), 1)
    p = np.clip(np.asarray(p, dtype=np.float64), 0.0, 1.0)
    low = st.binom.ppf((1.0 - level) / 2.0, rows, p) / rows
    high = st.binom.ppf((1.0 + level) / 2.0, rows, p) / rows
    return np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)


def _effective(report: RegressionReport, n_effective: float | None) -> float:
    if n_effective is None:
        return float(report.n)
    if not (isinstance(n_effective, (int, float)) and n_effective > 0):
        raise ValueError(f"n_effective must be a positive number; got {n_effective!r}")
    return float(n_effective)


# --------------------------------------------------------------------------- PIT
@dataclass(frozen=True, eq=False)
class PitData:
    """The PIT histogram of a regression report, with the band of a calibrated model.

    Bin j covers PIT values (``edges[j]``, ``edges[j+1]``]; ``observed`` is its share of the
    weight W_j / W, ``expected`` the share a calibrated model puts there (its width), ``count``
    its rows, and [``low``, ``high``] the binomial band of the expected share at
    ``n_effective`` rows and ``level``.
    """

    edges: np.ndarray
    observed: np.ndarray
    expected: np.ndarray
    count: np.ndarray
    low: np.ndarray
    high: np.ndarray
    n_effective: float
    level: float
    label: str

    @property
    def outside(self) -> np.ndarray:
        """Bins whose observed share is outside the band (boolean, per bin)."""
        return (self.observed < self.low) | (self.observed > self.high)


def pit_data(report: RegressionReport, /, *, n_effective: float | None = None,
             level: float = 0.95, label: str = "") -> PitData:
    """The PIT histogram's data, read off ``report.pit_histogram``.

    Parameters
    ----------
    report : RegressionReport
        From :func:`trueprob.regression.evaluate_regression`.
    n_effective : float, optional
        Rows for the band; default ``report.n``. For weighted rows pass Kish's W^2 / sum w_i^2.
    level : float
        Coverage of the band (default 0.95).
    label : str
        Name of the predictions.

    Examples
    --------
    >>> import numpy as np
    >>> from trueprob.regression import Gaussian, evaluate_regression
    >>> y = np.random.default_rng(0).normal(size=400)
    >>> d = pit_data(evaluate_regression(y, Gaussian(np.zeros(400), 1.0)))
    >>> d.edges.size - 1, float(d.observed.sum()), float(d.expected[0])
    (20, 1.0, 0.05)
    >>> bool(d.low[0] <= 0.05 <= d.high[0])
    True
    """
    level = _check_level(level)
    n = _effective(report, n_effective)
    h = report.pit_histogram
    expected = np.asarray(h.expected, dtype=np.float64)
    low, high = binomial_band(expected, n, level=level)
    return PitData(np.asarray(h.edges, dtype=np.float64),
                   np.asarray(h.observed, dtype=np.float64), expected,
                   np.asarray(h.count, dtype=np.int64), low, high, n, level, label)


# --------------------------------------------------------------------------- coverage
@dataclass(frozen=True, eq=False)
class CoverageData:
    """Observed against nominal: central-interval coverage and quantile calibration.

    ``coverage_level`` a, ``coverage_observed`` (share of rows inside the central interval),
    ``mean_width`` and the band [``coverage_low``, ``coverage_high``] of a calibrated model;
    ``calibration_level`` p, ``calibration_observed`` (share with F_i(y_i) <= p) and its band.
    """

    coverage_level: np.ndarray
    coverage_observed: np.ndarray
    mean_width: np.ndarray
    coverage_low: np.ndarray
    coverage_high: np.ndarray
    calibration_level: np.ndarray
    calibration_observed: np.ndarray
    calibration_low: np.ndarray
    calibration_high: np.ndarray
    n_effective: float
    level: float
    label: str


def coverage_data(report: RegressionReport, /, *, n_effective: float | None = None,
                  level: float = 0.95, label: str = "") -> CoverageData:
    """The coverage plot's data, read off ``report.coverage`` and ``report.calibration``.

    Examples
    --------
    >>> import numpy as np
    >>> from trueprob.regression import Gaussian, evaluate_regression
    >>> y = np.array([0.0, 1.0, -1.0, 2.0])
    >>> d = coverage_data(evaluate_regression(y, Gaussian(np.zeros(4), 1.0)))
    >>> d.coverage_level.tolist(), d.coverage_observed.tolist()
    ([0.5, 0.8, 0.9, 0.95], [0.25, 0.75, 0.75, 0.75])
    """
    level = _check_level(level)
    n = _effective(report, n_effective)
    a = np.array([c.level for c in report.coverage], dtype=np.float64)
    p = np.array([c.level for c in report.calibration], dtype=np.float64)
    a_low, a_high = binomial_band(a, n, level=level)
    p_low, p_high = binomial_band(p, n, level=level)
    return CoverageData(a, np.array([c.observed for c in report.coverage], dtype=np.float64),
                        np.array([c.mean_width for c in report.coverage], dtype=np.float64),
                        a_low, a_high, p,
                        np.array([c.observed for c in report.calibration], dtype=np.float64),
                        p_low, p_high, n, level, label)


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
