"""trueprob: are a classifier's outputs really probabilities?

Measure (proper scores and calibration errors), explain (in bits) and fix (recalibration by
maximum likelihood) predicted probabilities, in one pass with bounded memory.
"""

from trueprob._version import __version__
from trueprob.api import evaluate
from trueprob.decomposition import Decomposition, decompose
from trueprob.inference import bootstrap, consistency_test
from trueprob.results import BinRow, Report, Settings
from trueprob.stats.evaluation import EvaluationStats, InfiniteLossWarning

__all__ = [
    "BinRow",
    "Decomposition",
    "EvaluationStats",
    "InfiniteLossWarning",
    "Report",
    "Settings",
    "__version__",
    "bootstrap",
    "consistency_test",
    "decompose",
    "evaluate",
    "evaluate_table",
    "fit_table",
    "read_table",
]

#: data-frame and Arrow-table entry points (trueprob.tables), imported on first use
_TABLES = ("evaluate_table", "fit_table", "read_table")


def __getattr__(name: str) -> object:
    if name in _TABLES:
        from trueprob import tables

        return getattr(tables, name)
    raise AttributeError(f"module 'trueprob' has no attribute {name!r}")
