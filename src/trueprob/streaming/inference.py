"""Bootstrap intervals and the consistency test of a dataset read in batches."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from trueprob._progress import ProgressBar
from trueprob._validation import Inputs
from trueprob.core.options import check_reduce, check_unit
from trueprob.streaming.batches import (
    Batch,
    _absolute_rows,
    _stream,
)
from trueprob.streaming.driver import BlockedStates, fill, fill_blocked
from trueprob.streaming.edges import mass_edges
from trueprob.streaming.evaluation import _check_binning
from trueprob.streaming.files import (
    BATCH_ROWS,
    PathLike,
    Spec,
    _check_batch_rows,
)
from trueprob.streaming.progress import counted, pass_progress


def blocked_states_of_batches(
    passes: Callable[[], Iterable[Batch]],
    *,
    n_bins: int = 15,
    binning: str = "width",
    closed: str = "right",
    max_blocks: int = 256,
    random_state: int | np.random.Generator | None = None,
    weight_squares: bool = False,
    bar: ProgressBar | None = None,
) -> BlockedStates:
    """Point, blocked (and w^2) states of a restartable stream, filled in one pass (after the
    equal-mass passes for ``binning="mass"``).

    Each row goes to block g_i ~ Uniform{0..G-1}, drawn from ``random_state`` chunk by chunk
    in row order: the same draws as :func:`trueprob.bootstrap` makes on all rows at once, so
    with the same seed and N > G the blocks, and then the intervals, are the same. G =
    min(``max_blocks``, the cap of :func:`trueprob.inference.bootstrap.default_blocks`); N is
    not known before the pass, so G does not shrink to N for small data (empty blocks are
    harmless: they add nothing to any replicate).
    """
    _check_binning(binning)
    rng = random_state if isinstance(random_state, np.random.Generator) \
        else np.random.default_rng(random_state)
    edges = mass_edges(passes, n_bins, bar=bar) if binning == "mass" else None
    last = "evaluating" if edges is None else "last pass: evaluating"
    return fill_blocked(counted(passes, bar, last), n_bins=n_bins, closed=closed, edges=edges,
                        binning=binning, max_blocks=max_blocks, rng=rng,
                        weight_squares=weight_squares)


def bootstrap_path(
    path: PathLike,
    /,
    *,
    logits: Spec = None,
    probs: Spec = None,
    labels: Spec = None,
    targets: Spec = None,
    counts: Spec = None,
    sample_weight: Spec = None,
    confidences: Spec = None,
    predictions: Spec = None,
    n_classes: int | None = None,
    calibrator: Any = None,
    batch_rows: int = BATCH_ROWS,
    n_bins: int = 15,
    binning: str = "width",
    closed: str = "right",
    unit: str = "nats",
    reduce: str = "mean",
    n_replicates: int = 1000,
    level: float = 0.95,
    method: str = "bias-corrected",
    resampling: str = "multinomial",
    max_blocks: int = 256,
    random_state: int | np.random.Generator | None = None,
    quiet: bool | None = None,
) -> Any:
    """:func:`trueprob.bootstrap` of a dataset read in batches: the report of all rows with
    an interval for every field, in memory that does not grow with N.

    One pass fills the point state and the blocked state (:func:`blocked_states_of_batches`);
    the replicates are weighted sums of the G block states
    (:func:`trueprob.inference.bootstrap.intervals_from_states`). Arguments as
    :func:`evaluate_path` and :func:`trueprob.bootstrap`; with the same ``random_state`` and
    N > G the intervals equal :func:`trueprob.bootstrap`'s on all rows.

    Examples
    --------
    >>> import tempfile, os, trueprob
    >>> path = os.path.join(tempfile.mkdtemp(), "val.npz")
    >>> rng = np.random.default_rng(0)
    >>> z, y = rng.normal(size=(1000, 3)), rng.integers(0, 3, size=1000)
    >>> np.savez(path, logits=z, labels=y)
    >>> a = bootstrap_path(path, batch_rows=300, n_replicates=100, random_state=0, quiet=True)
    >>> b = trueprob.bootstrap(y, logits=z, n_replicates=100, random_state=0)
    >>> bool(np.isclose(a.intervals["ece"].low, b.intervals["ece"].low, rtol=1e-12))
    True
    """
    from trueprob.inference.bootstrap import _check_options, intervals_from_states

    check_unit(unit)
    check_reduce(reduce)
    _check_options(n_replicates, level, method, resampling)
    rng = random_state if isinstance(random_state, np.random.Generator) \
        else np.random.default_rng(random_state)
    specs = {"logits": logits, "probs": probs, "labels": labels, "targets": targets,
             "counts": counts, "sample_weight": sample_weight, "confidences": confidences,
             "predictions": predictions}
    passes = _stream(path, specs, _check_batch_rows(batch_rows), n_classes, calibrator)
    with pass_progress(path, specs, "evaluating", quiet=quiet) as bar:
        states = blocked_states_of_batches(passes, n_bins=n_bins, binning=binning,
                                           closed=closed, max_blocks=max_blocks,
                                           random_state=rng, bar=bar)
        bar.restart(f"bootstrap ({n_replicates} replicates)", total=None)
        seed = random_state if isinstance(random_state, int) else None
        return intervals_from_states(states.point, states.blocked, n_replicates=n_replicates,
                                     level=level, method=method, resampling=resampling,
                                     unit=unit, reduce=reduce, random_state=rng, seed=seed,
                                     quiet=True)


def consistency_test_path(
    path: PathLike,
    /,
    *,
    logits: Spec = None,
    probs: Spec = None,
    labels: Spec = None,
    sample_weight: Spec = None,
    calibrator: Any = None,
    batch_rows: int = BATCH_ROWS,
    statistic: str = "ece",
    n_bins: int = 15,
    closed: str = "right",
    n_resamples: int = 1000,
    random_state: int | np.random.Generator | None = None,
    quiet: bool | None = None,
) -> Any:
    """:func:`trueprob.consistency_test` of a dataset read in batches
    (:class:`~trueprob.inference.ConsistencyStats`): per-bin sums of the observed and of
    the ``n_resamples`` resampled outcomes, each row drawing y*_i ~ Cat(q_i), so the memory is
    R x B (R x K x B for ``statistic="classwise_ece"``) whatever N is. The cost is N x R
    draws (N x K x R for classwise). One batch holding every row gives the numbers of
    :func:`trueprob.consistency_test` with the same seed.

    Examples
    --------
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "val.npz")
    >>> rng = np.random.default_rng(1)
    >>> z = rng.normal(size=(2000, 4)) * 2
    >>> q = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    >>> np.savez(path, logits=3 * z, labels=(q.cumsum(1) < rng.random((2000, 1))).sum(1))
    >>> consistency_test_path(path, batch_rows=500, n_resamples=99, quiet=True).p_value
    0.01
    """
    from trueprob.inference import ConsistencyStats

    specs = {"logits": logits, "probs": probs, "labels": labels,
             "sample_weight": sample_weight}
    passes = _stream(path, specs, _check_batch_rows(batch_rows), None, calibrator)

    def start(inputs: Inputs) -> Any:
        return ConsistencyStats(statistic, inputs.n_classes, n_bins=n_bins, closed=closed,
                                n_resamples=n_resamples, random_state=random_state)

    def add_batch(state: Any, batch: Batch) -> None:
        try:
            state.update_inputs(batch.inputs)
        except ValueError as exc:
            raise ValueError(f"{batch.source}: {_absolute_rows(str(exc), batch.start)}"
                             ) from exc

    with pass_progress(path, specs, f"consistency test ({statistic})", quiet=quiet) as bar:
        batches = counted(passes, bar, f"consistency test ({statistic}, {n_resamples} "
                                       f"resamples)")
        state = fill(batches, start, None, add_batch=add_batch)
    assert state is not None  # fill raises for a dataset without rows
    return state.finalize()
