"""The one driver of every executor: fill a mergeable state from an iterable of batches.

:func:`fill` is the loop that :mod:`trueprob.streaming` (one pass over a dataset) and
:mod:`trueprob.dask` (one pass over a part, inside a task) share: the first batch's inputs make
the state, every later batch must have the same K, each validated chunk is added to the state
(a value error names the file and the row counted from its first row), and a hook sees each
batch once its chunks are in. :func:`fill_stats` (the plain
:class:`~trueprob.stats.EvaluationStats`), :func:`fill_blocked` (the point, blocked and w^2
states of the bootstrap) and :func:`sum_fit_rows` (the per-row sums of a calibrator fit by
passes) are built on it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import numpy as np

from trueprob._validation import Inputs
from trueprob.stats.evaluation import EvaluationStats
from trueprob.streaming.batches import Batch, _checked_chunks
from trueprob.streaming.fitrows import FitRows, fit_rows

S = TypeVar("S")

#: the error of a pass without rows
NO_ROWS = "the dataset has no rows; at least one row is needed"


def fill(
    batches: Iterable[Batch],
    start: Callable[[Inputs], S],
    add_chunk: Callable[[S, Any, Any], None] | None,
    *,
    add_batch: Callable[[S, Batch], None] | None = None,
    required: bool = True,
) -> S | None:
    """Fill one state from ``batches``, in order; the state (None for no batch unless
    ``required``, which raises ``ValueError`` then).

    ``start(inputs)`` makes the state from the first batch's inputs; ``add_chunk(state, xp,
    chunk)`` adds each validated chunk of each batch (row order); ``add_batch(state, batch)``,
    if given, runs once per batch, after its chunks.

    Examples
    --------
    >>> import numpy as np
    >>> from trueprob.streaming import prepare_batch
    >>> z, y = np.array([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), np.array([0, 1, 1])
    >>> batches = [prepare_batch({"logits": z[:2], "labels": y[:2]}),
    ...            prepare_batch({"logits": z[2:], "labels": y[2:]}, start=2)]
    >>> fill(batches, lambda inputs: [], lambda rows, xp, chunk: rows.append(chunk.n_rows))
    [2, 1]
    """
    state: S | None = None
    k = 0
    for batch in batches:
        inputs = batch.inputs
        if state is None:
            state, k = start(inputs), inputs.n_classes
        elif inputs.n_classes != k:
            raise ValueError(f"{batch.source}: the model outputs have K={inputs.n_classes} "
                             f"classes, earlier batches K={k}")
        if add_chunk is not None:
            for chunk in _checked_chunks(batch):
                add_chunk(state, inputs.xp, chunk)
        if add_batch is not None:
            add_batch(state, batch)
    if state is None and required:
        raise ValueError(NO_ROWS)
    return state


def _note(state: EvaluationStats, batch: Batch) -> None:
    state.note_inputs(batch.inputs)


def fill_stats(batches: Iterable[Batch], *, n_bins: int, closed: str,
               edges: Any = None, binning: str = "width",
               required: bool = True) -> EvaluationStats | None:
    """One :class:`~trueprob.stats.EvaluationStats` of every row of ``batches`` (the bins
    given by ``n_bins``, ``closed`` and, for equal-mass bins, ``edges``)."""

    def start(inputs: Inputs) -> EvaluationStats:
        return EvaluationStats(inputs.n_classes, n_bins=n_bins, closed=closed, edges=edges,
                               binning_name=binning)

    def add(state: EvaluationStats, xp: Any, chunk: Any) -> None:
        state.update_chunk(xp, chunk)

    return fill(batches, start, add, add_batch=_note, required=required)


@dataclass(frozen=True)
class BlockedStates:
    """The states of one streamed pass for the bootstrap (and the report).

    ``point``: every row; ``blocked``: the same rows dealt at random into G blocks
    (``n_blocks=G``, :func:`trueprob.inference.bootstrap.intervals_from_states`);
    ``squares``: bins weighted by w_i^2 (top-label and classwise; only for weighted rows, for
    effective counts); ``n_rows``: N.
    """

    point: EvaluationStats
    blocked: EvaluationStats
    squares: EvaluationStats | None
    n_rows: int


@dataclass
class _Blocked:
    point: EvaluationStats
    blocked: EvaluationStats
    squares: EvaluationStats | None
    n_rows: int = 0


def fill_blocked(batches: Iterable[Batch], *, n_bins: int, closed: str, edges: Any,
                 binning: str, max_blocks: int, rng: np.random.Generator,
                 weight_squares: bool = False) -> BlockedStates:
    """Point, blocked (and w^2) states of every row of ``batches``, in one pass: each row goes
    to block g_i ~ Uniform{0..G-1} drawn from ``rng`` chunk by chunk in row order
    (:func:`trueprob.inference.bootstrap.add_blocked`)."""
    from trueprob.inference.bootstrap import _state_values, add_blocked, default_blocks

    def start(inputs: Inputs) -> _Blocked:
        k = inputs.n_classes
        point = EvaluationStats(k, n_bins=n_bins, closed=closed, edges=edges,
                                binning_name=binning)
        probe = EvaluationStats(k, n_bins=n_bins, closed=closed, edges=edges, n_blocks=2)
        g = default_blocks(max_blocks, _state_values(probe), max_blocks)
        blocked = EvaluationStats(k, n_bins=n_bins, closed=closed, edges=edges,
                                  binning_name=binning, n_blocks=g)
        squares = None
        if weight_squares and inputs.weights is not None:
            vector = inputs.kind != "confidences"
            parts = ("top_label", "classwise") if vector else ("top_label",)
            squares = EvaluationStats(k, n_bins=n_bins, closed=closed,
                                      edges=point.binning.edges, parts=parts)
        return _Blocked(point, blocked, squares)

    def add_batch(state: _Blocked, batch: Batch) -> None:
        inputs = batch.inputs
        state.point.note_inputs(inputs)
        state.blocked.note_inputs(inputs)
        if state.squares is not None and inputs.weights is not None:
            state.squares.update_inputs(replace(inputs, weights=inputs.weights ** 2))
        state.n_rows += inputs.n_rows

    def add(state: _Blocked, xp: Any, chunk: Any) -> None:
        add_blocked(xp, chunk, state.point, state.blocked, rng)

    out = fill(batches, start, add, add_batch=add_batch)
    assert out is not None
    return BlockedStates(out.point, out.blocked, out.squares, out.n_rows)


def sum_fit_rows(batches: Iterable[Batch], width: int, sums: Callable[[FitRows], np.ndarray],
                 *, purpose: str = "temperature scaling",
                 on_batch: Callable[[Batch], None] | None = None) -> np.ndarray:
    """``sums(rows)`` added over the :class:`~trueprob.streaming.fitrows.FitRows` of every
    batch (a vector of ``width`` zeros for no rows): one pass of a calibrator fit.
    ``on_batch(batch)`` sees each batch before its rows (to record its kind and K)."""
    out = np.zeros(width)
    for batch in batches:
        if on_batch is not None:
            on_batch(batch)
        for rows in fit_rows(batch, purpose=purpose):
            out += sums(rows)
    return out
