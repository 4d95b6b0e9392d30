"""Build an :class:`EvaluationStats` from prepared inputs: the one-shot (in-memory) fill.

`trueprob.evaluate`, the single-metric functions and the inference routines all start here,
so a metric computed alone and the same metric in a full report come from the same state.
"""

from __future__ import annotations

import numpy as np

from trueprob._array import to_numpy
from trueprob._validation import Inputs
from trueprob.core.binning import equal_mass_edges
from trueprob.core.options import check_binning
from trueprob.core.rows import row_quantities
from trueprob.stats.evaluation import PARTS, EvaluationStats


def confidences_of(inputs: Inputs) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(c_i, a_i, w_i) of every row as float64 numpy arrays (O(N) memory, one pass)."""
    conf, corr, wts = [], [], []
    for chunk in inputs.chunks():
        rows = row_quantities(inputs.xp, chunk, need_scores=False)
        conf.append(to_numpy(rows.confidence))
        corr.append(to_numpy(rows.correct))
        if chunk.weights is not None:
            wts.append(to_numpy(chunk.weights))
    return (np.concatenate(conf), np.concatenate(corr),
            np.concatenate(wts) if wts else None)


def build_stats(
    inputs: Inputs, *, n_bins: int, binning: str, closed: str, parts: tuple[str, ...] = PARTS
) -> EvaluationStats:
    """Run the one-pass engine over prepared inputs (equal-mass edges are found first)."""
    check_binning(binning)
    edges = None
    if binning == "mass":
        # equal-mass edges are weighted quantiles of all confidences: a pass that keeps N floats
        conf, _, w = confidences_of(inputs)
        edges = equal_mass_edges(conf, w, n_bins)
    stats = EvaluationStats(inputs.n_classes, n_bins=n_bins, closed=closed, edges=edges,
                            parts=parts, binning_name=binning)
    return stats.update_inputs(inputs)
