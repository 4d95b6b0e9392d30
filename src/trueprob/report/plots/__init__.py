"""Diagrams of calibration (the ``[plot]`` extra: matplotlib, imported only when drawing).

Each diagram is two steps: a builder in :mod:`trueprob.analysis.diagrams` (re-exported by
:mod:`~trueprob.report.plots.data`) computes what it
shows as a frozen dataclass of arrays (testable values, no matplotlib), and a function in
:mod:`~trueprob.report.plots.draw` draws that dataclass on ``ax`` (a new figure when
``ax=None``) and returns the artists it made. Drawing happens inside ``rc_context``; colours
follow the colour-blind-safe palette of :mod:`~trueprob.report.plots.style`.

- reliability diagram: :func:`reliability_data` -> :func:`plot_reliability`
- before/after overlay: several :class:`ReliabilityData` -> :func:`plot_reliability_overlay`
- smooth reliability curve: :func:`smooth_curve_data` -> :func:`plot_smooth_reliability`
- classwise grid: :func:`classwise_data` -> :func:`plot_classwise_grid`
- where the bits go: :func:`bits_data` -> :func:`plot_bits`
- ``trueprob compare`` as a chart: :func:`compare_data` -> :func:`plot_compare`
"""

from trueprob.report.plots.data import (
    BitsData,
    BitsRow,
    ClasswiseData,
    CompareData,
    ReliabilityData,
    SmoothCurveData,
    bits_data,
    classwise_data,
    compare_data,
    compare_data_from_reports,
    effective_count,
    reliability_data,
    smooth_curve_data,
    wilson_interval,
)
from trueprob.report.plots.draw import (
    BitsArtists,
    ClasswiseArtists,
    CompareArtists,
    OverlayArtists,
    ReliabilityArtists,
    SmoothArtists,
    plot_bits,
    plot_classwise_grid,
    plot_compare,
    plot_reliability,
    plot_reliability_overlay,
    plot_smooth_reliability,
)

__all__ = [
    "BitsArtists",
    "BitsData",
    "BitsRow",
    "ClasswiseArtists",
    "ClasswiseData",
    "CompareArtists",
    "CompareData",
    "OverlayArtists",
    "ReliabilityArtists",
    "ReliabilityData",
    "SmoothArtists",
    "SmoothCurveData",
    "bits_data",
    "classwise_data",
    "compare_data",
    "compare_data_from_reports",
    "effective_count",
    "plot_bits",
    "plot_classwise_grid",
    "plot_compare",
    "plot_reliability",
    "plot_reliability_overlay",
    "plot_smooth_reliability",
    "reliability_data",
    "smooth_curve_data",
    "wilson_interval",
]
