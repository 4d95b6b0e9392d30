"""Uncertainty on every number: bootstrap intervals and calibration tests."""

from trueprob.inference.bootstrap import BootstrapResult, Interval, bootstrap
from trueprob.inference.consistency import ConsistencyStats, ConsistencyTest, consistency_test

__all__ = ["BootstrapResult", "ConsistencyStats", "ConsistencyTest", "Interval", "bootstrap",
           "consistency_test"]
