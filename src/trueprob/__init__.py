"""trueprob: are a classifier's outputs really probabilities?

Measure (proper scores and calibration errors), explain (in bits) and fix (recalibration by
maximum likelihood) predicted probabilities, in one pass with bounded memory.
"""

from trueprob._version import __version__
from trueprob.api import evaluate
from trueprob.decomposition import Decomposition, decompose
from trueprob.inference import bootstrap, consistency_test
from trueprob.results import BinRow, Report, Settings
from trueprob.results._display import register as _register_display
from trueprob.stats.evaluation import EvaluationStats, InfiniteLossWarning
from trueprob.stats.state import StateFormatError

__all__ = [
    "BinRow",
    "Decomposition",
    "EvaluationStats",
    "InfiniteLossWarning",
    "Report",
    "Settings",
    "StateFormatError",
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


def _notebook_html(record: object) -> str:
    from trueprob.report.notebook import to_html

    return to_html(record)


def _notebook_markdown(record: object) -> str:
    from trueprob.report.notebook import to_markdown

    return to_markdown(record)


def _verdict_renderer(name: str) -> object:
    def render(analysis: object) -> object:
        from trueprob.report import tasks, verdict

        return getattr(verdict if name == "verdict" else tasks, name)(analysis)

    return render


# Jupyter shows the result records through the rendering layer, imported on first display;
# the deprecated Analysis.verdict() methods reach the verdict sentences the same way
_register_display("html", _notebook_html)
_register_display("markdown", _notebook_markdown)
for _name in ("verdict", "multilabel_verdict", "regression_verdict"):
    _register_display(_name, _verdict_renderer(_name))  # type: ignore[arg-type]
