"""Results: the `Report` of `trueprob.evaluate` and its serialisations."""

from trueprob.report.result import BinRow, Report, Settings

__all__ = ["BinRow", "Report", "Settings"]
