"""Rendering: the verdict's sentences, HTML and Markdown reports, and the plots.

Nothing here computes a number: it reads result records (:mod:`trueprob.results`) and analyses.
``BinRow``, ``Report`` and ``Settings`` are re-exported from :mod:`trueprob.results` for
compatibility.
"""

from trueprob.results import BinRow, Report, Settings

__all__ = ["BinRow", "Report", "Settings"]
