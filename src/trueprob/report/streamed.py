"""The report's analysis of a dataset too large for memory, read a batch at a time.

:func:`analyze_path` gives the same :class:`~trueprob.report.verdict.Analysis` as
:func:`~trueprob.report.verdict.analyze`, so the HTML and Markdown reports render it
unchanged, from a file, a folder of files or a glob read in record batches
(:mod:`trueprob.streaming`). Nothing of size N is kept: every part of the analysis is a
fixed-size state filled pass by pass.

========================  ===================================================================
part                      streamed as
========================  ===================================================================
metrics, bins, classes    one :class:`~trueprob.stats.EvaluationStats` (the same numbers as
                          in memory, up to rounding; equal-mass edges found exactly first)
bootstrap intervals       a blocked state filled in the same pass: rows dealt at random into
                          G blocks (:func:`trueprob.inference.bootstrap.intervals_from_states`)
consistency tests         :class:`~trueprob.inference.ConsistencyStats`, one more pass; the
                          resamples are capped so that N x R <= :data:`TOP_LABEL_DRAWS`
                          (top label) and N x K x R <= ``CLASSWISE_DRAWS`` (classwise)
log-loss split            temperature fitted by maximum likelihood on all rows in a few passes
                          (:func:`trueprob.streaming.fit_temperature_batches`), in-sample
smooth reliability        the 2**16-cell grid state (:mod:`trueprob.stats.smooth`)
SKCE                      not computed: its block estimator pairs rows in a random order
========================  ===================================================================

The decomposition is the one difference in method from :func:`~trueprob.report.verdict.analyze`
(which cross-fits the temperature over 5 folds): a one-parameter map fitted on all rows has an
in-sample optimism of order 1/N in the log loss (about 1/(2N) nats for a well-specified
one-parameter model), negligible at the sizes that need streaming, and MCB >= 0 holds
exactly because T = 1 is among the maps fitted.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from trueprob._version import __version__
from trueprob.report.verdict import (
    CLASSWISE_DRAWS,
    MIN_RESAMPLES,
    Analysis,
    AnalysisSettings,
    Calibration,
    Evaluation,
    _calibrated_label,
    _check_int,
    checked_settings,
    diagram_data,
)

#: Budget of the streamed top-label consistency test: N x R Bernoulli draws at most (about
#: 15 s on one core); fewer than ``MIN_RESAMPLES`` resamples and the test is left out.
TOP_LABEL_DRAWS = 2_000_000_000

PathLike = str | Path


def analyze_path(
    path: PathLike,
    /,
    *,
    logits: Any = None,
    probs: Any = None,
    labels: Any = None,
    targets: Any = None,
    counts: Any = None,
    sample_weight: Any = None,
    confidences: Any = None,
    predictions: Any = None,
    n_classes: int | None = None,
    calibrator: Any = None,
    calibration_source: str = "",
    source: str | None = None,
    class_names: Any = None,
    batch_rows: int | None = None,
    n_bins: int = 15,
    binning: str = "width",
    closed: str = "right",
    unit: str = "bits",
    level: float = 0.95,
    n_replicates: int = 200,
    n_resamples: int = 1000,
    max_blocks: int = 256,
    max_panels: int = 20,
    random_state: int = 0,
    quiet: bool = False,
) -> Analysis:
    """Analyse a dataset of model outputs for a report, in memory bounded by the batch size.

    Parameters
    ----------
    path : str or os.PathLike
        A file, a folder of files or a glob (:func:`trueprob.streaming.dataset_files`).
    logits, probs, labels, targets, counts, sample_weight, confidences, predictions : str, optional
        The column(s) or array of each input, as :func:`trueprob.streaming.evaluate_path`
        (auto-detected by canonical name when not given).
    n_classes : int, optional
        K; required for top-label inputs.
    calibrator : fitted Calibrator, optional
        Its recalibrated predictions are analysed as ``after``.
    calibration_source, source, class_names
        Text for the report (``source`` defaults to ``path``).
    batch_rows : int, optional
        Rows per batch read (default :data:`trueprob.streaming.BATCH_ROWS`).
    n_bins, binning, closed, unit, level, n_replicates, n_resamples, max_panels, random_state
        As :func:`trueprob.report.verdict.analyze`.
    max_blocks : int
        G, the bootstrap blocks (fewer for large K, as :func:`trueprob.bootstrap`). Rows are
        dealt into blocks at random, G = min(``max_blocks``, cap) whatever N is (N is not
        known before the first pass).
    quiet : bool
        No progress display (one is drawn on stderr only when it is a terminal).

    Returns
    -------
    Analysis
        As :func:`~trueprob.report.verdict.analyze`. Its Report fields equal
        ``trueprob.streaming.evaluate_path`` (and ``trueprob.evaluate`` on all rows) up to
        floating-point rounding; the bootstrap intervals equal those of
        :func:`trueprob.bootstrap` with the same seed when N > G (the same random deal, taken
        in the same order); what is computed differently is listed in the module notes and
        in each evaluation's ``notes``.

    Examples
    --------
    >>> import os, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> rng = np.random.default_rng(0)
    >>> for part in range(3):                     # a dataset of three files
    ...     z = rng.normal(size=(400, 3)) * 3     # over-confident logits
    ...     q = np.exp(z / 3) / np.exp(z / 3).sum(1, keepdims=True)
    ...     y = (q.cumsum(1) < rng.random((400, 1))).sum(1)
    ...     np.savez(os.path.join(folder, f"part{part}.npz"), logits=z, labels=y)
    >>> a = analyze_path(folder, batch_rows=500, n_replicates=50, n_resamples=99, quiet=True)
    >>> a.before.report.n, a.before.tests["ece"].p_value
    (1200, 0.01)
    >>> a.verdict()[0].startswith("The top label is over-confident by")
    True
    """
    from trueprob.streaming import BATCH_ROWS, _check_batch_rows, _stream, pass_progress

    start = time.perf_counter()
    # n_folds 0: the log-loss split's temperature is fitted on all rows (in-sample)
    settings = checked_settings(n_bins, binning, closed, unit, level, n_replicates,
                                n_resamples, "temperature", 0, max_panels, random_state)
    _check_int("max_blocks", max_blocks, 1)
    if binning not in ("width", "mass"):
        raise ValueError(f"binning must be 'width' or 'mass'; got {binning!r}")
    rows = _check_batch_rows(BATCH_ROWS if batch_rows is None else batch_rows)
    specs = {"logits": logits, "probs": probs, "labels": labels, "targets": targets,
             "counts": counts, "sample_weight": sample_weight, "confidences": confidences,
             "predictions": predictions}
    with pass_progress(path, specs, "report", quiet=quiet) as bar:
        passes = _stream(path, specs, rows, n_classes, None)
        before = _evaluation("uncalibrated" if calibrator is not None else "model", passes,
                             settings, class_names, int(max_blocks), bar)
        after, calibration = None, None
        if calibrator is not None:
            if before.classes is None:  # top-label inputs: nothing to recalibrate
                raise ValueError("calibrator needs logits= or probs=; only top-label "
                                 "confidences= and predictions= were given")
            name = type(calibrator).__name__
            temperature = getattr(calibrator, "temperature_", None)
            calibration = Calibration(name, repr(calibrator), calibration_source,
                                      None if temperature is None else float(temperature))
            passes = _stream(path, specs, rows, n_classes, calibrator)
            after = _evaluation(_calibrated_label(calibration), passes, settings,
                                class_names, int(max_blocks), bar)
    notes = ("read in batches of at most "
             f"{rows} rows; the log-loss split uses a temperature fitted on all rows "
             "(in-sample) and the SKCE is left out",)
    return Analysis(str(path) if source is None else source, before, after, calibration,
                    settings, __version__, time.perf_counter() - start, notes)


def _evaluation(label: str, passes: Callable[[], Iterable[Any]], s: AnalysisSettings,
                class_names: Any, max_blocks: int, bar: Any) -> Evaluation:
    """Report, intervals, tests, decomposition and diagram data of one streamed dataset."""
    from trueprob.inference.bootstrap import intervals_from_states
    from trueprob.report.plots.data import smooth_curve_data
    from trueprob.streaming import blocked_states_of_batches, counted

    def named(step: str) -> Callable[[], Iterable[Any]]:  # passes whose bar says what runs
        return lambda: counted(passes, bar, f"report ({label}): {step}")

    rng = np.random.default_rng(s.seed)
    first = ("metrics and bootstrap blocks" if s.binning == "width"
             else "equal-mass edges, then metrics and bootstrap blocks")
    states = blocked_states_of_batches(named(first), n_bins=s.n_bins,
                                       binning=s.binning, closed=s.closed,
                                       max_blocks=max_blocks, random_state=rng,
                                       weight_squares=True)
    point, blocked, squares = states.point, states.blocked, states.squares
    report = point.finalize(unit=s.unit, reduce="mean")
    vector = "confidences" not in point.input_kinds
    targets = set(point.target_kinds)
    notes: list[str] = []

    reliability, classwise, classes = diagram_data(point, report, squares, s, class_names,
                                                   label, vector)

    bar.describe(f"report ({label}): bootstrap ({s.n_replicates} replicates)")
    boot = intervals_from_states(point, blocked, n_replicates=s.n_replicates, level=s.level,
                                 unit=s.unit, random_state=rng, seed=s.seed, quiet=True)

    tests = _tests(named("consistency tests"), report, vector, targets, s, notes)

    decomposition = None
    if vector and report.nll is not None and math.isfinite(report.nll):
        decomposition = _decomposition(named("log-loss split, temperature passes"), report,
                                       classes, s)
    elif vector:
        notes.append("no log-loss decomposition: the log loss is infinite")
    else:
        notes.append("no log-loss decomposition: it needs the full probability vector")

    smooth = None
    if point.smooth is not None and point.smooth.n_rows:
        effective = None
        if squares is not None:
            w2 = squares.top_label.arrays()["weight"][0]
            effective = float(report.weight) ** 2 / float(np.sum(w2))
        smooth = smooth_curve_data(point.smooth.finalize(n_points=501),
                                   effective_total=effective, level=s.level, label=label)
    if vector:
        notes.append("no SKCE for a streamed dataset: its block estimator pairs rows in a "
                     "random order of all rows (run trueprob.metrics.skce on a sample)")
    return Evaluation(label, report, dict(boot.intervals), tests, decomposition, reliability,
                      smooth, classwise, classes, boot.n_blocks, None, tuple(notes))


def _tests(passes: Callable[[], Iterable[Any]], report: Any, vector: bool, targets: set[str],
           s: AnalysisSettings, notes: list[str]) -> dict[str, Any]:
    """Both consistency tests, filled in one more pass, within the draw budgets."""
    from trueprob.inference import ConsistencyStats

    if not vector or targets != {"labels"}:
        why = ("top-label confidences only" if not vector
               else f"{'/'.join(sorted(targets))} instead of hard labels")
        notes.append(f"no consistency tests: they draw labels from the predicted "
                     f"distributions and need full probability vectors with hard labels "
                     f"(got {why})")
        return {}
    n, k = int(report.n), int(report.n_classes)
    states: dict[str, Any] = {}
    top = min(s.n_resamples, TOP_LABEL_DRAWS // max(n, 1))
    if top >= min(MIN_RESAMPLES, s.n_resamples):
        states["ece"] = ConsistencyStats("ece", k, n_bins=s.n_bins, closed=s.closed,
                                         n_resamples=top, random_state=s.seed)
        if top < s.n_resamples:
            notes.append(f"the top-label consistency test uses {top} resamples (N x R is "
                         f"capped at {TOP_LABEL_DRAWS:.0e} draws for a streamed dataset)")
    else:
        notes.append(f"no top-label consistency test: N = {n} rows is too many for "
                     f"{MIN_RESAMPLES} resamples within {TOP_LABEL_DRAWS:.0e} draws")
    classwise = min(s.n_resamples, CLASSWISE_DRAWS // max(n * k, 1))
    if classwise >= MIN_RESAMPLES:
        states["classwise_ece"] = ConsistencyStats("classwise_ece", k, n_bins=s.n_bins,
                                                   closed=s.closed, n_resamples=classwise,
                                                   random_state=s.seed)
    else:
        notes.append(f"no classwise consistency test: N x K = {n} x {k} is too large for a "
                     f"quick one (run trueprob.consistency_test(..., "
                     f"statistic='classwise_ece') on a sample)")
    if not states:
        return {}
    for batch in passes():
        for state in states.values():
            state.update_inputs(batch.inputs)
    return {name: state.finalize() for name, state in states.items()}


def _decomposition(passes: Callable[[], Iterable[Any]], report: Any, classes: Any,
                   s: AnalysisSettings) -> Any:
    """S(q) = MCB - DSC + UNC of the log loss with r = softmax(s_i / T), T fitted on all rows.

    S(q) is the report's log loss; S(r) = the fitted map's NLL; UNC = S(prior) =
    -sum_k pbar_k log pbar_k with pbar_k = (1/W) sum_i w_i t_ik (for soft targets too:
    -(1/W) sum_i w_i sum_k t_ik log pbar_k = -sum_k pbar_k log pbar_k).
    """
    from trueprob.core.options import check_unit
    from trueprob.decomposition import Decomposition
    from trueprob.streaming import fit_temperature_batches

    scale = check_unit(s.unit)
    fitted = fit_temperature_batches(passes)
    s_q = float(report.nll)
    s_r = float(fitted.nll_after_) * scale
    prior = np.asarray(classes.frequency, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        unc = float(-np.sum(np.where(prior > 0, prior * np.log(prior), 0.0))) * scale
    soft = report.targets != "labels"
    return Decomposition("log", "temperature", "vector", s.unit, s_q, s_q - s_r, unc - s_r,
                         unc, s_r, n_folds=None,
                         entropy=float(report.entropy) if soft else None,
                         kl=float(report.kl) if soft else None)


__all__ = ["TOP_LABEL_DRAWS", "analyze_path"]
