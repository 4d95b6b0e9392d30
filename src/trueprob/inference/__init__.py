"""Uncertainty on every number: bootstrap intervals and calibration tests."""

from trueprob.inference.bootstrap import BootstrapResult, Interval, bootstrap
from trueprob.inference.consistency import ConsistencyTest, consistency_test

__all__ = ["BootstrapResult", "ConsistencyTest", "Interval", "bootstrap", "consistency_test"]
