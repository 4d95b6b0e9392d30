"""Evaluation and temperature fitting over files larger than memory, a batch of rows at a time.

A *dataset* is one file that :func:`trueprob.io.iter_inputs` reads (``.parquet``, ``.npy``,
``.npz``, ``.csv``, ...), a folder of such files (read recursively, in natural order of their
paths; names starting with ``.`` or ``_`` are skipped, so ``_SUCCESS`` and ``_metadata`` do no
harm), or a glob (``"preds/part-*.parquet"``). Each file is read in record batches of at most
``batch_rows`` rows; each batch is validated, reduced to a fixed-size
:class:`~trueprob.stats.EvaluationStats` state and dropped, so peak memory is one batch plus
the state whatever the number of rows.

Every batch is made C-contiguous before it reaches the per-row kernel: a list column, one
column per class, a structured ``.npy`` field or a Fortran-ordered array then give the same
bytes to the same reductions, and the result does not depend on how the rows were read.
Batch boundaries move only floating-point rounding of the float64 sums.

Equal-mass bins need their edges before the pass. They are found exactly, in bounded memory,
by :class:`QuantileSearch`: a few passes of histograms over the bit patterns of the float64
confidences narrow each weighted quantile down to one value (see its docstring), so the edges
are those :func:`trueprob.evaluate` computes from all rows at once.

The package is split by job: :mod:`~trueprob.streaming.files` (datasets and their batches of
arrays), :mod:`~trueprob.streaming.batches` (validation), :mod:`~trueprob.streaming.progress`,
:mod:`~trueprob.streaming.edges` (equal-mass edges), :mod:`~trueprob.streaming.driver` (the one
loop that fills any state from batches, shared with :mod:`trueprob.dask`),
:mod:`~trueprob.streaming.evaluation`, :mod:`~trueprob.streaming.inference`, and the calibrator
fits by passes (:mod:`~trueprob.streaming.fitrows`, :mod:`~trueprob.streaming.temperature`,
:mod:`~trueprob.streaming.vector`; their solvers are the calibrators' own).
"""

from __future__ import annotations

from trueprob.streaming.batches import (
    Batch,
    calibrate_arrays,
    prepare_batch,
)
from trueprob.streaming.batches import (
    _absolute_rows as _absolute_rows,
)
from trueprob.streaming.batches import (
    _checked_chunks as _checked_chunks,
)
from trueprob.streaming.batches import (
    _stream as _stream,
)
from trueprob.streaming.driver import (
    BlockedStates,
    fill,
    fill_blocked,
    fill_stats,
    sum_fit_rows,
)
from trueprob.streaming.edges import (
    SEARCH_CELLS,
    SEARCH_COLLECT,
    QuantileSearch,
    SearchPlan,
    confidence_keys,
    mass_edges,
    merge_search,
    search_batches,
    search_pass,
)
from trueprob.streaming.evaluation import (
    evaluate_path,
    stats_from_path,
    stats_of_batches,
)
from trueprob.streaming.files import (
    BATCH_ROWS,
    FIELDS,
    PathLike,
    Spec,
    dataset_files,
    iter_batches,
    normalise,
)
from trueprob.streaming.files import (
    _check_batch_rows as _check_batch_rows,
)
from trueprob.streaming.fitrows import (
    FitRows,
    fit_rows,
)
from trueprob.streaming.inference import (
    blocked_states_of_batches,
    bootstrap_path,
    consistency_test_path,
)
from trueprob.streaming.progress import (
    counted,
    dataset_rows,
    pass_progress,
)
from trueprob.streaming.temperature import (
    N_FIRST,
    fit_temperature_batches,
    fit_temperature_path,
    fit_temperature_sums,
    temperature_first_sums,
    temperature_sums,
)
from trueprob.streaming.vector import (
    fit_vector_scaling_path,
    fit_vector_sums,
    vector_sums,
)

__all__ = [
    "BATCH_ROWS",
    "FIELDS",
    "N_FIRST",
    "SEARCH_CELLS",
    "SEARCH_COLLECT",
    "Batch",
    "BlockedStates",
    "FitRows",
    "PathLike",
    "QuantileSearch",
    "SearchPlan",
    "Spec",
    "blocked_states_of_batches",
    "bootstrap_path",
    "calibrate_arrays",
    "confidence_keys",
    "consistency_test_path",
    "counted",
    "dataset_files",
    "dataset_rows",
    "evaluate_path",
    "fill",
    "fill_blocked",
    "fill_stats",
    "fit_rows",
    "fit_temperature_batches",
    "fit_temperature_path",
    "fit_temperature_sums",
    "fit_vector_scaling_path",
    "fit_vector_sums",
    "iter_batches",
    "mass_edges",
    "merge_search",
    "normalise",
    "pass_progress",
    "prepare_batch",
    "search_batches",
    "search_pass",
    "stats_from_path",
    "stats_of_batches",
    "sum_fit_rows",
    "temperature_first_sums",
    "temperature_sums",
    "vector_sums",
]
