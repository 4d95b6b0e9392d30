"""The diagrams' data builders, now in :mod:`trueprob.analysis.diagrams` (computed apart from
drawing: the analysis layer). This module keeps the old import path working."""

from trueprob.analysis.diagrams import (
    COMPARE_COLUMNS,
    MAX_PANELS,
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

__all__ = [
    "COMPARE_COLUMNS",
    "MAX_PANELS",
    "BitsData",
    "BitsRow",
    "ClasswiseData",
    "CompareData",
    "ReliabilityData",
    "SmoothCurveData",
    "bits_data",
    "classwise_data",
    "compare_data",
    "compare_data_from_reports",
    "effective_count",
    "reliability_data",
    "smooth_curve_data",
    "wilson_interval",
]
