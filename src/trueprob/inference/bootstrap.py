"""`bootstrap`: an interval for every field of a Report, from blocked sufficient statistics.

Rows are dealt at random (seeded) into G blocks, and one pass over the data keeps the
sufficient statistics of every block separately (an :class:`~trueprob.EvaluationStats` with
``n_blocks=G``). A bootstrap replicate resamples blocks: its statistics are the weighted sum of
the block statistics, one matrix product for all replicates, and its metrics come from the same
formulas as the point estimate (:meth:`EvaluationStats.summarize`). No metric is recomputed over
N rows B times.

When G = N (the default for N <= ``max_blocks``) every row is its own block and this *is* the
row bootstrap of SPEC.md: rows resampled with replacement (``resampling="multinomial"``) or
independent Poisson(1) row weights (``resampling="poisson"``, the streaming form). For larger N
the rows of a block move together; with rows dealt at random into blocks the blocks are
exchangeable, the replicates have the right mean and spread, and the interval endpoints carry
extra Monte-Carlo noise of relative size about 1/sqrt(2G) (4% for G = 256).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trueprob._array import as_array, device
from trueprob._progress import progress
from trueprob._validation import Inputs, prepare
from trueprob.core import summaries as sm
from trueprob.core.binning import equal_mass_edges
from trueprob.core.options import check_binning, check_reduce, check_unit
from trueprob.core.rows import row_quantities
from trueprob.inference.intervals import METHODS, finite, interval_for
from trueprob.results import METRIC_FIELDS, Report
from trueprob.results._display import NotebookDisplay
from trueprob.stats.build import confidences_of
from trueprob.stats.evaluation import EvaluationStats

#: Fields of a Report that get an interval.
FIELDS = tuple(f for f in METRIC_FIELDS)
_BATCH_VALUES = 1 << 22  # replicate arrays are finalised in batches of about this many values


@dataclass(frozen=True)
class Interval:
    """A confidence interval [low, high] at ``level`` for ``estimate``, by ``method``.

    ``method`` is "percentile", "bca", "bias-corrected percentile", "bias-corrected
    percentile (KS test at 0)", "upper bound" (low is 0: the data bound the value from above
    only) or "debiased percentile" (see :mod:`trueprob.inference.intervals`). ``estimate``
    is the value the interval is about: the Report's value, except for a bias-corrected
    interval (and the upper bound), whose estimate is the bias-corrected value (the Report
    keeps the plug-in value under its SPEC.md name).
    ``low <= estimate <= high`` always. ``upper`` is a one-sided bound at the same level:
    the true value is at most ``upper`` with confidence ``level`` (the statement to quote
    for a calibration error that may be 0).
    """

    low: float
    high: float
    level: float
    method: str
    estimate: float
    upper: float


@dataclass(frozen=True)
class BootstrapResult(NotebookDisplay):
    """The point estimate, one interval per available field, and the replicates behind them."""

    report: Report
    intervals: dict[str, Interval]
    replicates: dict[str, np.ndarray]
    n_replicates: int
    n_blocks: int
    resampling: str
    method: str
    level: float
    seed: int | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    #: leave-one-block-out values of every field (``method="bca"`` only, else empty)
    jackknife: dict[str, np.ndarray] = field(default_factory=dict)

    def to_dict(self) -> dict[str, dict[str, float | str]]:
        """``{"ece": {"estimate", "low", "high", "upper", "level", "method"}, ...}`` (the CLI's
        ``ci`` object; ``upper`` is the one-sided bound at ``level``)."""
        return {name: {"estimate": iv.estimate, "low": iv.low, "high": iv.high,
                       "upper": iv.upper, "level": iv.level, "method": iv.method}
                for name, iv in self.intervals.items()}


def _check_options(n_replicates: int, level: float, method: str, resampling: str) -> None:
    if isinstance(n_replicates, bool) or not isinstance(n_replicates, (int, np.integer)) \
            or n_replicates < 2:
        raise ValueError(f"n_replicates must be an integer >= 2; got {n_replicates!r}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), e.g. 0.95; got {level!r}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}; got {method!r}")
    if resampling not in ("multinomial", "poisson"):
        raise ValueError(f"resampling must be 'multinomial' or 'poisson'; got {resampling!r}")


def default_blocks(n_rows: int, state_values: int, max_blocks: int) -> int:
    """G = min(N, max_blocks, a cap keeping the blocked state under ~2**23 values)."""
    cap = max(16, (1 << 23) // max(state_values, 1))
    return int(max(1, min(n_rows, max_blocks, cap)))


def bootstrap(
    labels: Any = None,
    /,
    *,
    logits: Any = None,
    probs: Any = None,
    targets: Any = None,
    counts: Any = None,
    sample_weight: Any = None,
    confidences: Any = None,
    predictions: Any = None,
    n_classes: int | None = None,
    n_bins: int = 15,
    binning: str = "width",
    closed: str = "right",
    unit: str = "nats",
    reduce: str = "mean",
    n_replicates: int = 1000,
    level: float = 0.95,
    method: str = "bias-corrected",
    resampling: str = "multinomial",
    n_blocks: int | None = None,
    max_blocks: int = 256,
    random_state: int | np.random.Generator | None = None,
    quiet: bool | None = None,
) -> BootstrapResult:
    """Bootstrap intervals for every field of :func:`trueprob.evaluate`'s Report.

    Parameters
    ----------
    labels, logits, probs, targets, counts, sample_weight, confidences, predictions, n_classes,
    n_bins, binning, closed, unit, reduce
        As in :func:`trueprob.evaluate`. Equal-mass bin edges are found once on all rows and
        kept fixed in every replicate.
    n_replicates : int
        B, the number of bootstrap replicates (default 1000).
    level : float
        Coverage of the two-sided intervals (default 0.95).
    method : {"bias-corrected", "percentile", "bca"}
        ``"bias-corrected"`` (default): the binned calibration errors (ece, rmsce,
        classwise_ece, class_conditional_ece, ks), whose plug-in values are biased upward,
        get the bias-corrected percentile interval around theta - b, b = mean(theta*) - theta,
        with lower end 0 where the bias dominates (ks: unless the KS test rejects
        calibration); mce gets the upper bound [0, U] only; ece_debiased the percentile
        interval of its squares moved to its own centre; the other fields the percentile
        interval (:mod:`trueprob.inference.intervals`, ``DEFAULT_METHODS``).
        ``"percentile"``: [theta*_(a/2), theta*_(1-a/2)] for every field. ``"bca"``
        (Efron 1987): the percentiles shifted by the bias correction
        z0 = Phi^-1(#{theta* < theta} / B) and the acceleration
        a = sum_g (m - theta_(g))^3 / (6 (sum_g (m - theta_(g))^2)^(3/2)) from the
        leave-one-block-out jackknife theta_(g) with mean m. Every interval is widened, if
        need be, to contain its estimate. ``docs/uncertainty.md`` gives the coverage of each.
    resampling : {"multinomial", "poisson"}
        Blocks drawn G times with replacement, or independent Poisson(1) block weights.
    n_blocks : int, optional
        G. Default: N when N <= ``max_blocks`` (the exact row bootstrap), else ``max_blocks``
        (fewer for large K, so that the blocked state stays under about 2**23 values).
    random_state : int or numpy Generator, optional
        Seed of the row-to-block deal and of the resampling weights.
    quiet : bool, optional
        No progress bar (one is drawn over the replicates on stderr when it is a terminal).

    Returns
    -------
    BootstrapResult
        ``report`` (equal to :func:`trueprob.evaluate` on the same inputs), ``intervals``
        (field -> :class:`Interval`) for every available metric, and the ``replicates``.

    Notes
    -----
    ``ks`` replicates are read off a grid of 2**10 confidence cells per block (the point
    estimate keeps the 2**16-cell grid of :func:`trueprob.evaluate`).

    Examples
    --------
    >>> import numpy as np, trueprob
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=(300, 3)) * 2
    >>> y = rng.integers(0, 3, size=300)
    >>> res = trueprob.bootstrap(y, logits=z, n_replicates=200, random_state=0)
    >>> iv = res.intervals["ece"]
    >>> bool(iv.low <= iv.estimate <= iv.high), iv.level, iv.method
    (True, 0.95, 'bias-corrected percentile')
    >>> bool(iv.estimate < res.report.ece)        # the plug-in ECE is biased upward
    True
    """
    check_unit(unit)
    check_reduce(reduce)
    check_binning(binning)
    _check_options(n_replicates, level, method, resampling)
    rng = random_state if isinstance(random_state, np.random.Generator) \
        else np.random.default_rng(random_state)
    inputs = prepare(labels, logits=logits, probs=probs, targets=targets, counts=counts,
                     sample_weight=sample_weight, confidences=confidences,
                     predictions=predictions, n_classes=n_classes, rescale_weights=True)
    if inputs.n_rows < 2:
        raise ValueError(f"the bootstrap resamples rows and needs at least 2; got "
                         f"{inputs.n_rows} row")
    edges = None
    if binning == "mass":
        conf, _, w = confidences_of(inputs)
        edges = equal_mass_edges(conf, w, n_bins)
    k = inputs.n_classes
    probe = EvaluationStats(k, n_bins=n_bins, closed=closed, edges=edges, n_blocks=2)
    per_block = _state_values(probe)
    g = n_blocks if n_blocks is not None else default_blocks(inputs.n_rows, per_block,
                                                             max_blocks)
    if isinstance(g, bool) or not isinstance(g, (int, np.integer)) or g < 1:
        raise ValueError(f"n_blocks must be a positive integer; got {n_blocks!r}")
    point = EvaluationStats(k, n_bins=n_bins, closed=closed, edges=edges, binning_name=binning)
    blocked = EvaluationStats(k, n_bins=n_bins, closed=closed, edges=edges,
                              binning_name=binning, n_blocks=int(g))
    _one_pass(inputs, point, blocked, int(g), rng)
    seed = random_state if isinstance(random_state, int) else None
    return intervals_from_states(point, blocked, n_replicates=n_replicates, level=level,
                                 method=method, resampling=resampling, unit=unit,
                                 reduce=reduce, random_state=rng, seed=seed, quiet=quiet)


def intervals_from_states(
    point: EvaluationStats,
    blocked: EvaluationStats,
    *,
    n_replicates: int = 1000,
    level: float = 0.95,
    method: str = "bias-corrected",
    resampling: str = "multinomial",
    unit: str = "nats",
    reduce: str = "mean",
    random_state: int | np.random.Generator | None = None,
    seed: int | None = None,
    quiet: bool | None = None,
) -> BootstrapResult:
    """The :func:`bootstrap` result from two filled states: ``point`` (all rows) and
    ``blocked`` (the same rows dealt into G blocks, ``n_blocks=G``, same bins).

    This is the second half of :func:`bootstrap`, for states filled elsewhere: streamed from
    files (:func:`trueprob.report.streamed.analyze_path`), merged from workers, or loaded with
    ``EvaluationStats.from_bytes``. Replicate r weights block g by m_rg (multinomial(G, 1/G)
    counts, or Poisson(1) for ``resampling="poisson"``); its state is sum_g m_rg S_g, finalised
    by the point estimate's formulas. ``random_state`` draws the weights; ``seed`` is only
    recorded in the result. A progress bar is drawn when stderr is a terminal, unless ``quiet``.

    Examples
    --------
    >>> import numpy as np
    >>> from trueprob.stats import EvaluationStats
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=(500, 3)); y = rng.integers(0, 3, size=500)
    >>> point = EvaluationStats(3).update(y, logits=z)
    >>> blocked = EvaluationStats(3, n_blocks=50)
    >>> chunk = next(prepare(y, logits=z).chunks())
    >>> blocked.update_chunk(np, chunk, np.arange(500) % 50)   # row i in block i mod 50
    >>> res = intervals_from_states(point, blocked, n_replicates=100, random_state=0)
    >>> iv = res.intervals["accuracy"]
    >>> bool(iv.low <= res.report.accuracy <= iv.high), res.n_blocks
    (True, 50)
    """
    check_unit(unit)
    check_reduce(reduce)
    _check_options(n_replicates, level, method, resampling)
    rng = random_state if isinstance(random_state, np.random.Generator) \
        else np.random.default_rng(random_state)
    g = blocked.n_blocks
    report = point.finalize(unit=unit, reduce=reduce)
    arrays = blocked.block_arrays()
    # row counts enter no metric (weights do): leave them out of the replicate products
    keys = [key for key in arrays if key != "counts" and not key.endswith(".count")]
    shapes = {key: arrays[key].shape[1:] for key in keys}
    matrix = np.concatenate([arrays[key].reshape(g, -1).astype(np.float64) for key in keys],
                            axis=1)
    weights = (rng.multinomial(g, np.full(g, 1.0 / g), size=n_replicates)
               if resampling == "multinomial" else rng.poisson(1.0, size=(n_replicates, g)))
    with progress("bootstrap", total=n_replicates, quiet=quiet) as bar:
        replicates = _summaries(blocked, weights.astype(np.float64), matrix, keys, shapes,
                                unit, reduce, bar.advance)
    available = [f for f in FIELDS if getattr(report, f) is not None]
    intervals: dict[str, Interval] = {}
    jack: dict[str, np.ndarray] = {}
    if method == "bca":
        jack_weights = 1.0 - np.eye(g)
        jack = _summaries(blocked, jack_weights, matrix, keys, shapes, unit, reduce)
    ks_scale = ks_scale_of(point) if "ks" in available else None
    for name in available:
        reps = finite(replicates[name])
        theta = float(getattr(report, name))
        if reps.size == 0 or not np.isfinite(theta):
            continue
        used, (est, low, high, upper) = interval_for(
            name, method, theta, reps, level, jack=jack.get(name),
            ks_scale=ks_scale if name == "ks" else None,
            rows_per_class=report.n / max(report.n_classes, 1))
        intervals[name] = Interval(low, high, float(level), used, est, upper)
    notes = ("ks replicates use a 2**10-cell grid per block",) if "ks" in intervals else ()
    return BootstrapResult(report, intervals, {f: replicates[f] for f in available},
                           int(n_replicates), int(g), resampling, method, float(level), seed,
                           notes, {f: jack[f] for f in available if f in jack})


def ks_scale_of(stats: EvaluationStats) -> float:
    """sigma of the KS rule (:mod:`trueprob.inference.intervals`): the standard deviation of
    the KS cumulative residual under "labels drawn from the predicted distribution", from the
    filled state's KS grid."""
    grid = stats.arrays()
    return sm.ks_null_scale(grid["ks.weight"][0, 0], grid["ks.sum_score"][0, 0],
                            float(grid["sums"][0, sm.W]))


def _state_values(stats: EvaluationStats) -> int:
    k, b = stats.n_classes, stats.binning.n_bins
    return 8 + 3 * b * (1 + 2 * k) + 3 * stats.ks.binning.n_bins


def _one_pass(inputs: Inputs, point: EvaluationStats, blocked: EvaluationStats, g: int,
              rng: np.random.Generator) -> None:
    """One softmax pass feeding the plain state (point estimate) and the blocked state."""
    xp = inputs.xp
    point.note_inputs(inputs)
    blocked.note_inputs(inputs)
    exact_rows = g >= inputs.n_rows
    for chunk in inputs.chunks():
        block = (np.arange(chunk.offset, chunk.offset + chunk.n_rows, dtype=np.int64)
                 if exact_rows else None)
        add_blocked(xp, chunk, point, blocked, rng, block)


def add_blocked(xp: Any, chunk: Any, point: EvaluationStats, blocked: EvaluationStats,
                rng: np.random.Generator, block: np.ndarray | None = None) -> None:
    """One softmax of a chunk into the plain state and the blocked state: row i goes to
    ``block[i]``, or, by default, to a block drawn uniformly from ``rng`` (int64 draws in row
    order, so any chunking of the same rows deals them alike)."""
    if block is None:
        block = rng.integers(0, blocked.n_blocks, size=chunk.n_rows, dtype=np.int64)
    rows = row_quantities(xp, chunk, need_scores=chunk.kind != "confidences")
    point.update_rows(xp, chunk, rows)
    blocked.update_rows(xp, chunk, rows, as_array(block, xp, device(chunk.scores)))


def _summaries(stats: EvaluationStats, weights: np.ndarray, matrix: np.ndarray,
               keys: list[str], shapes: dict[str, tuple[int, ...]], unit: str,
               reduce: str, done: Callable[[int], None] | None = None
               ) -> dict[str, np.ndarray]:
    """Metrics of the states ``weights @ matrix`` (one per row of ``weights``), in batches."""
    r = weights.shape[0]
    per = max(1, _BATCH_VALUES // max(matrix.shape[1], 1))
    out: dict[str, list[np.ndarray]] = {}
    for start in range(0, r, per):
        combined = weights[start:start + per] @ matrix
        arrays: dict[str, np.ndarray] = {}
        col = 0
        for key in keys:
            size = int(np.prod(shapes[key]))
            arrays[key] = combined[:, col:col + size].reshape((-1, *shapes[key]))
            col += size
        for name, values in stats.summarize(arrays, unit=unit, reduce=reduce).items():
            out.setdefault(name, []).append(values)
        if done is not None:
            done(combined.shape[0])
    return {name: np.concatenate(parts) for name, parts in out.items()}
