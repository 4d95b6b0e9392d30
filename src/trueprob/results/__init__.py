"""Result records: plain frozen dataclasses with ``to_dict`` / ``to_json`` / ``to_markdown``.

The lowest layer above the math: every computation (stats, metrics, executors, analysis) returns
one of these, and the rendering (`trueprob.report`) and the CLI only read them. Nothing here
computes a metric.

- :class:`Report`, :class:`BinRow`, :class:`Settings`: one classification evaluation.
- :class:`MultilabelReport` and its parts: independent per-label probabilities.
- :class:`RegressionReport` and its parts: predictive distributions of a real value.
- :func:`json_safe`: the one rule for non-finite numbers in JSON (NaN -> null,
  ±inf -> "inf"/"-inf").
"""

from trueprob.results._json import json_safe
from trueprob.results.classification import METRIC_FIELDS, BinRow, Report, Settings
from trueprob.results.multilabel import (
    Aggregate,
    LabelMetrics,
    MultilabelReport,
    MultilabelSettings,
    WorstLabel,
)
from trueprob.results.regression import (
    CoverageRow,
    LevelRow,
    PitHistogram,
    RegressionReport,
    RegressionSettings,
    level_key,
)

__all__ = [
    "METRIC_FIELDS",
    "Aggregate",
    "BinRow",
    "CoverageRow",
    "LabelMetrics",
    "LevelRow",
    "MultilabelReport",
    "MultilabelSettings",
    "PitHistogram",
    "RegressionReport",
    "RegressionSettings",
    "Report",
    "Settings",
    "WorstLabel",
    "json_safe",
    "level_key",
]
