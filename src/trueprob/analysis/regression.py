"""The regression report's analysis: coverage, PIT and quantile calibration against the band
a calibrated model would show.

:func:`analyze_regression` computes everything the regression report shows (the sentences
and the HTML/Markdown are :mod:`trueprob.report.tasks`): the
:class:`~trueprob.regression.RegressionReport`, the PIT histogram's and the coverage plot's
data (:func:`pit_data`, :func:`coverage_data`; numpy and scipy only, drawn by
:mod:`trueprob.report.plots.tasks`) and the coverage checks.

The bands are what a calibrated model would show: for a share p expected on n (effective)
rows, the central binomial interval [F^-1((1 - level)/2), F^-1((1 + level)/2)] / n of
Binomial(n, p). They are pointwise (one bin or one level at a time).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import stats as st

from trueprob._version import __version__
from trueprob.analysis.diagrams import check_level
from trueprob.analysis.records import _deprecated_verdict, kish_rows

if TYPE_CHECKING:
    from trueprob.results import RegressionReport


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
    level = check_level(level)
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
    level = check_level(level)
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
    level = check_level(level)
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


# --------------------------------------------------------------------------- analysis
@dataclass(frozen=True)
class CoverageCheck:
    """One central interval against a calibrated model's band: ``observed`` share inside the
    nominal ``level`` interval, the band [``low``, ``high``] (binomial at the analysis's
    level), and ``status`` "too narrow" (below the band), "too wide" (above) or "consistent"."""

    level: float
    observed: float
    low: float
    high: float
    status: str


@dataclass(frozen=True, eq=False)
class RegressionAnalysis:
    """Everything the regression report shows: the
    :class:`~trueprob.regression.RegressionReport`, the PIT histogram's and the coverage
    plot's data (:func:`pit_data`, :func:`coverage_data`, bands of a calibrated model at
    ``level``), the coverage checks and the effective number of rows of the bands."""

    source: str
    report: Any
    pit: Any
    coverage: Any
    checks: tuple[CoverageCheck, ...]
    n_effective: float
    level: float
    version: str
    seconds: float

    def verdict(self) -> tuple[str, ...]:
        """Deprecated: use :func:`trueprob.report.tasks.regression_verdict` (the sentences
        are rendering, a layer above the analysis)."""
        return _deprecated_verdict(self, "regression_verdict")


def analyze_regression(
    observed: Any,
    predictive: Any,
    /,
    *,
    sample_weight: Any = None,
    source: str = "",
    coverage_levels: Any = None,
    calibration_levels: Any = None,
    n_pit_bins: int | None = None,
    unit: str = "bits",
    level: float = 0.95,
) -> RegressionAnalysis:
    """Analyse predictive distributions for a report.

    :func:`trueprob.regression.evaluate_regression` gives NLL, CRPS, the PIT u_i = F_i(y_i)
    histogram, PIT ECE, the quantile calibration error sum_j (p_j - p_hat_j)^2, the coverage
    of the central intervals [F_i^-1((1 - a)/2), F_i^-1((1 + a)/2)] and the dispersion
    (1/W) sum_i w_i z_i^2. Every PIT bin, coverage level and calibration level is set against
    the band a calibrated model would show: the central binomial interval of Binomial(n, e)
    / n at ``level``, with e the expected share and n the rows (Kish's W^2 / sum w_i^2 for
    weighted rows). A coverage below its band is "too narrow", above it "too wide".

    Parameters
    ----------
    observed : array (N,)
        The observed values y_i.
    predictive : Gaussian, Laplace, StudentT or QuantileSet
        The predictive distribution of each row (:mod:`trueprob.regression`).
    sample_weight : array (N,), optional
    source : str
        Name of the data, for the text.
    coverage_levels, calibration_levels, n_pit_bins
        As in :func:`trueprob.regression.evaluate_regression`.
    unit : {"bits", "nats"}
        Unit of the NLL (default bits).
    level : float
        Coverage of the bands (default 0.95).

    Examples
    --------
    >>> import numpy as np
    >>> from trueprob.regression import Gaussian
    >>> rng = np.random.default_rng(0)
    >>> mu = rng.normal(size=3000); y = mu + rng.normal(size=3000)
    >>> a = analyze_regression(y, Gaussian(mu, 0.5))         # std half the true one
    >>> a.checks[2].level, a.checks[2].status
    (0.9, 'too narrow')
    """
    from trueprob.regression import evaluate_regression

    start = time.perf_counter()
    level = check_level(level)
    report = evaluate_regression(observed, predictive, sample_weight=sample_weight,
                                 coverage_levels=coverage_levels,
                                 calibration_levels=calibration_levels, n_pit_bins=n_pit_bins,
                                 unit=unit)
    kish = kish_rows(sample_weight)
    n_eff = float(report.n) if kish is None else kish
    pit = pit_data(report, n_effective=n_eff, level=level)
    cov = coverage_data(report, n_effective=n_eff, level=level)
    checks = []
    for row in report.coverage:
        low, high = (float(v[0]) for v in binomial_band([row.level], n_eff, level=level))
        status = ("too narrow" if row.observed < low else "too wide" if row.observed > high
                  else "consistent")
        checks.append(CoverageCheck(row.level, row.observed, low, high, status))
    return RegressionAnalysis(source, report, pit, cov, tuple(checks), n_eff, level,
                              __version__, time.perf_counter() - start)



__all__ = ["CoverageCheck", "CoverageData", "PitData", "RegressionAnalysis", "analyze_regression",
           "binomial_band", "coverage_data", "pit_data"]
