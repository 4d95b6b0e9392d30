"""The streamed report's analysis, now :func:`trueprob.analysis.analyze_path` (one builder for
in-memory and streamed data, :mod:`trueprob.analysis.classification`). This module keeps the
old import path working."""

from trueprob.analysis.classification import analyze_path
from trueprob.analysis.records import TOP_LABEL_DRAWS

__all__ = ["TOP_LABEL_DRAWS", "analyze_path"]
