"""What a report says, computed from results: the analysis layer.

Above the executors (in memory, streamed files) and below the rendering (:mod:`trueprob.report`:
sentences, HTML, Markdown, plots). Nothing here imports the rendering or the CLI.

- :mod:`~trueprob.analysis.records`: the :class:`Analysis` / :class:`Evaluation` records and
  their settings;
- :mod:`~trueprob.analysis.classification`: :func:`analyze` (arrays) and :func:`analyze_path`
  (files read in batches), one builder fed from one chunk or from passes;
- :mod:`~trueprob.analysis.diagrams`: the data of every diagram (no matplotlib);
- :mod:`~trueprob.analysis.multilabel`, :mod:`~trueprob.analysis.regression`: the reports
  beyond one-hot classification.
"""

from trueprob.analysis.classification import analyze, analyze_path
from trueprob.analysis.multilabel import LabelCalibration, MultilabelAnalysis, analyze_multilabel
from trueprob.analysis.records import (
    Analysis,
    AnalysisSettings,
    Calibration,
    ClassRows,
    Evaluation,
)
from trueprob.analysis.regression import CoverageCheck, RegressionAnalysis, analyze_regression

__all__ = [
    "Analysis",
    "AnalysisSettings",
    "Calibration",
    "ClassRows",
    "CoverageCheck",
    "Evaluation",
    "LabelCalibration",
    "MultilabelAnalysis",
    "RegressionAnalysis",
    "analyze",
    "analyze_multilabel",
    "analyze_path",
    "analyze_regression",
]
