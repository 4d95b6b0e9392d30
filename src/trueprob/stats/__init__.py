"""Mergeable sufficient statistics: fixed-size states with update / merge / finalize."""

from trueprob.stats.binned import BinnedStats
from trueprob.stats.evaluation import EvaluationStats
from trueprob.stats.smooth import SmoothECEStats
from trueprob.stats.state import MergeableState, StateFormatError

__all__ = ["BinnedStats", "EvaluationStats", "MergeableState", "SmoothECEStats",
           "StateFormatError"]
