"""Multi-label outputs: L independent Bernoulli labels per row (sigmoid outputs, BCE training).

Per-label scores (BCE, Brier) and calibration errors with micro and macro aggregates and the
worst-calibrated labels (:func:`evaluate_multilabel`, one pass, mergeable
:class:`MultilabelStats`), per-label decompositions (:func:`decompose_multilabel`) and per-label
recalibration (:class:`PerLabelCalibration`: Platt, temperature, isotonic, ...).
"""

from trueprob.multilabel.api import (
    MultilabelDecomposition,
    decompose_multilabel,
    evaluate_multilabel,
)
from trueprob.multilabel.calibrators import PerLabelCalibration
from trueprob.multilabel.stats import MultilabelStats
from trueprob.results import (
    Aggregate,
    LabelMetrics,
    MultilabelReport,
    MultilabelSettings,
    WorstLabel,
)

__all__ = [
    "Aggregate",
    "LabelMetrics",
    "MultilabelDecomposition",
    "MultilabelReport",
    "MultilabelSettings",
    "MultilabelStats",
    "PerLabelCalibration",
    "WorstLabel",
    "decompose_multilabel",
    "evaluate_multilabel",
]
