"""Mergeable sufficient statistics: fixed-size states with update / merge / finalize."""

from trueprob.stats.binned import BinnedStats
from trueprob.stats.evaluation import EvaluationStats
from trueprob.stats.smooth import SmoothECEStats

__all__ = ["BinnedStats", "EvaluationStats", "SmoothECEStats"]
