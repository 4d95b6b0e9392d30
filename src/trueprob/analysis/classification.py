"""The classification report's analysis: one builder, fed from arrays or from passes.

:func:`analyze` (arrays in memory) and :func:`analyze_path` (a file, a folder or a glob read
in record batches) give the same :class:`~trueprob.analysis.records.Analysis`, built by one
function, :func:`_evaluation`, from a *feed* that says where the rows come from:

========================  ===================================  ===================================
part                      in memory (``feeds.Arrays``)         streamed (``feeds.Passes``)
========================  ===================================  ===================================
metrics, bins, classes    one :class:`~trueprob.stats.EvaluationStats` filled from one chunk or
                          batch by batch (the same numbers up to rounding; equal-mass edges found
                          exactly first when streamed); the diagrams' data from that state
bootstrap intervals       :func:`trueprob.bootstrap`           a blocked state filled in the same
                                                               pass (rows dealt at random into G
                                                               blocks)
consistency tests         :class:`~trueprob.inference.ConsistencyStats` filled from the feed's
                          batches (one chunk in memory); streamed, the top-label resamples are
                          capped so that N x R <= :data:`TOP_LABEL_DRAWS`; classwise N x K x R <=
                          :data:`CLASSWISE_DRAWS` for both
log-loss split            :func:`trueprob.decompose`,          temperature fitted by maximum
                          cross-fitted over ``n_folds``        likelihood on all rows in a few
                                                               passes, in-sample
smooth reliability        :mod:`trueprob.metrics.smooth`       the 2**16-cell grid state
                          on all rows                          (:mod:`trueprob.stats.smooth`)
SKCE                      block estimator on shuffled rows     not computed (pairs rows in a
                                                               random order of all rows)
========================  ===================================  ===================================

The streamed log-loss split differs in method from the in-memory one: a one-parameter map
fitted on all rows has an in-sample optimism of order 1/N in the log loss (about 1/(2N) nats
for a well-specified one-parameter model), negligible at the sizes that need streaming, and
MCB >= 0 holds exactly because T = 1 is among the maps fitted.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from trueprob._progress import progress
from trueprob._version import __version__
from trueprob.analysis.feeds import Arrays, Passes, smooth_module
from trueprob.analysis.records import (
    CLASSWISE_DRAWS,
    MIN_RESAMPLES,
    STEPS,
    Analysis,
    AnalysisSettings,
    Calibration,
    ClassRows,
    Evaluation,
    check_int,
    checked_settings,
)

PathLike = str | Path


# =========================================================================== entry points
def analyze(
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
    calibrator: Any = None,
    calibration_source: str = "",
    source: str = "",
    class_names: Any = None,
    n_bins: int = 15,
    binning: str = "width",
    closed: str = "right",
    unit: str = "bits",
    level: float = 0.95,
    n_replicates: int = 200,
    n_resamples: int = 1000,
    decomposition: str = "temperature",
    n_folds: int = 5,
    max_panels: int = 20,
    random_state: int = 0,
    quiet: bool = False,
    recalibration_set: Mapping[str, Any] | None = None,
    recalibration_source: str = "",
) -> Analysis:
    """Analyse predictions (and their recalibration) for a report.

    For the predictions as given, and, when ``calibrator`` is a fitted trueprob calibrator,
    for ``calibrator.predict_logproba(...)`` of the same rows:

    - the :class:`~trueprob.Report` (one pass, SPEC.md's definitions) and the per-class
      reliability bins of the same state;
    - bootstrap intervals (:func:`trueprob.bootstrap`, ``n_replicates``, percentile,
      ``level``) for every metric;
    - consistency-test p-values (:func:`trueprob.consistency_test`, p = (1 + #{T* >= T}) /
      (1 + B)) for the top-label ECE (``n_resamples``) and for the classwise ECE (as many
      resamples as N K B <= 2.5e7 allows; left out below 99), hard labels only;
    - the log loss split S(q) = MCB - DSC + UNC (:func:`trueprob.decompose` with
      ``decomposition`` as the recalibration estimator, cross-fitted over ``n_folds`` for the
      parametric ones), with CE = H(p) + KL for soft targets;
    - the diagrams' data (:mod:`trueprob.analysis.diagrams`), including the smooth reliability
      curve of :mod:`trueprob.metrics.smooth` when that module is available;
    - the reliability of the 2nd, 3rd and all non-top ranked probabilities
      (:mod:`trueprob.metrics.ranked`);
    - what recalibration recovers held out (:func:`trueprob.analysis.recalibration.recoverable`,
      cross-fitted over ``n_folds``) and, given ``recalibration_set``, the recommended map
      (:func:`trueprob.analysis.recalibration.recommend`).

    Parameters
    ----------
    labels, logits, probs, targets, counts, sample_weight, confidences, predictions, n_classes
        As in :func:`trueprob.evaluate`.
    calibrator : fitted Calibrator, optional
        A recalibration map; its predictions are analysed as ``after``.
    calibration_source : str
        Where the calibrator came from (e.g. "fitted on val.npz"), for the text.
    source : str
        Name of the data (e.g. the file), for the text.
    class_names : sequence of str, optional
        One name per class (default "class k").
    n_bins, binning, closed
        The reliability binning (as :func:`trueprob.evaluate`).
    unit : {"bits", "nats"}
        Unit of the log-score quantities (default bits).
    level : float
        Coverage of the intervals and bands.
    n_replicates, n_resamples : int
        Bootstrap replicates and consistency-test resamples.
    decomposition : {"temperature", "dirichlet", "isotonic", "binned"}
        Recalibration estimator of the log-loss split. ``"temperature"`` (default) splits the
        whole-vector log loss; ``"isotonic"`` / ``"binned"`` split the top-label log score.
    max_panels : int
        Most classes in the classwise grid (the worst ones for larger K).
    random_state : int
        Seed of the bootstrap and the tests.
    quiet : bool
        No progress bar (one is drawn on stderr only when it is a terminal).
    recalibration_set : mapping, optional
        A calibration set (e.g. the validation split) as keyword arrays of
        :func:`trueprob.evaluate` (``labels``, ``logits`` or ``probs``, ``targets``, ``counts``,
        ``sample_weight``): the candidates are fitted on it and evaluated on these rows.
    recalibration_source : str
        The calibration set's file, for the recommended command.

    Examples
    --------
    >>> import numpy as np
    >>> from trueprob.calibrators import TemperatureScaling
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=(400, 3)) * 2
    >>> q = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    >>> y = (q.cumsum(1) < rng.random((400, 1))).sum(1)      # drawn from softmax(z)
    >>> cal = TemperatureScaling().fit(y, logits=3 * z)        # the model: 3z, over-confident
    >>> a = analyze(y, logits=3 * z, calibrator=cal, n_replicates=50, n_resamples=100)
    >>> cal.temperature_ > 2, a.after.report.nll < a.before.report.nll
    (True, True)
    >>> a.before.mean_confidence > a.before.report.accuracy    # over-confident before
    True
    """
    start = time.perf_counter()
    settings = checked_settings(n_bins, binning, closed, unit, level, n_replicates,
                                n_resamples, decomposition, n_folds, max_panels, random_state)
    common = {"targets": targets, "counts": counts, "sample_weight": sample_weight}
    given = {"logits": logits, "probs": probs, "confidences": confidences,
             "predictions": predictions}
    outputs = {k: v for k, v in given.items() if v is not None}
    steps = STEPS if calibrator is None else 2 * STEPS + 1
    with progress("report: evaluating", total=steps, quiet=quiet) as bar:
        before = _evaluation("uncalibrated" if calibrator is not None else "model",
                             Arrays(labels, outputs, common, n_classes, bar), settings,
                             class_names)
        after, calibration = None, None
        if calibrator is not None:
            bar.describe("report: recalibrating")
            if "logits" in outputs:
                calibrated = calibrator.predict_logproba(logits=outputs["logits"])
            elif "probs" in outputs:
                calibrated = calibrator.predict_logproba(probs=outputs["probs"])
            else:
                raise ValueError("calibrator needs logits= or probs=; only top-label "
                                 "confidences= and predictions= were given")
            bar.advance()
            calibration = Calibration.of(calibrator, calibration_source)
            after = _evaluation(calibration.label,
                                Arrays(labels, {"logits": calibrated}, common, n_classes, bar),
                                settings, class_names)
    notes = []
    if smooth_module() is None:
        notes.append("the smooth reliability curve is not shown: trueprob.metrics.smooth "
                     "is not available in this installation")
    held, recommendation = _held_out(labels, outputs, common, before, settings,
                                     recalibration_set, recalibration_source, notes)
    return Analysis(source, before, after, calibration, settings, __version__,
                    time.perf_counter() - start, tuple(notes), held, recommendation)


def _held_out(labels: Any, outputs: dict[str, Any], common: dict[str, Any], before: Evaluation,
              s: AnalysisSettings, recalibration_set: Mapping[str, Any] | None, source: str,
              notes: list[str]) -> tuple[Any, Any]:
    """Q4's held-out split and, with a calibration set, the recommendation (in memory)."""
    from trueprob.analysis.recalibration import Rows, recommend, recoverable

    r = before.report
    scores = {k: outputs[k] for k in ("logits", "probs") if k in outputs}
    if not scores or r.nll is None or not math.isfinite(r.nll):
        if recalibration_set is not None:
            notes.append("no recommendation: it needs full probability vectors with a finite "
                         "log loss")
        return None, None
    rows = Rows.of(labels, **scores, **{k: v for k, v in common.items() if v is not None})
    held = recoverable(rows, unit=s.unit, n_folds=max(s.n_folds, 2), random_state=s.seed)
    recommendation = None
    if recalibration_set is not None:
        val = Rows.of(recalibration_set.get("labels"),
                      **{k: v for k, v in recalibration_set.items()
                         if k != "labels" and v is not None})
        recommendation = recommend(val, rows, source=source or "VAL", unit=s.unit,
                                   n_bins=s.n_bins, binning=s.binning)
        held = held.with_recommendation(recommendation)
    return held, recommendation


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
        As :func:`analyze`.
    max_blocks : int
        G, the bootstrap blocks (fewer for large K, as :func:`trueprob.bootstrap`). Rows are
        dealt into blocks at random, G = min(``max_blocks``, cap) whatever N is (N is not
        known before the first pass).
    quiet : bool
        No progress display (one is drawn on stderr only when it is a terminal).

    Returns
    -------
    Analysis
        As :func:`analyze`. Its Report fields equal ``trueprob.streaming.evaluate_path`` (and
        ``trueprob.evaluate`` on all rows) up to floating-point rounding; the bootstrap
        intervals equal those of :func:`trueprob.bootstrap` with the same seed when N > G
        (the same random deal, taken in the same order); what is computed differently is
        listed in the module notes and in each evaluation's ``notes``.

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
    """
    from trueprob.streaming import BATCH_ROWS, _check_batch_rows, _stream, pass_progress

    start = time.perf_counter()
    # n_folds 0: the log-loss split's temperature is fitted on all rows (in-sample)
    settings = checked_settings(n_bins, binning, closed, unit, level, n_replicates,
                                n_resamples, "temperature", 0, max_panels, random_state)
    check_int("max_blocks", max_blocks, 1)
    if binning not in ("width", "mass"):
        raise ValueError(f"binning must be 'width' or 'mass'; got {binning!r}")
    rows = _check_batch_rows(BATCH_ROWS if batch_rows is None else batch_rows)
    specs = {"logits": logits, "probs": probs, "labels": labels, "targets": targets,
             "counts": counts, "sample_weight": sample_weight, "confidences": confidences,
             "predictions": predictions}
    with pass_progress(path, specs, "report", quiet=quiet) as bar:
        before = _evaluation("uncalibrated" if calibrator is not None else "model",
                             Passes(_stream(path, specs, rows, n_classes, None), bar,
                                     int(max_blocks)), settings, class_names)
        after, calibration = None, None
        if calibrator is not None:
            if before.classes is None:  # top-label inputs: nothing to recalibrate
                raise ValueError("calibrator needs logits= or probs=; only top-label "
                                 "confidences= and predictions= were given")
            calibration = Calibration.of(calibrator, calibration_source)
            after = _evaluation(calibration.label,
                                Passes(_stream(path, specs, rows, n_classes, calibrator), bar,
                                        int(max_blocks)), settings, class_names)
    notes = ("read in batches of at most "
             f"{rows} rows; the log-loss split uses a temperature fitted on all rows "
             "(in-sample) and the SKCE is left out",)
    return Analysis(str(path) if source is None else source, before, after, calibration,
                    settings, __version__, time.perf_counter() - start, notes)


# =========================================================================== the one builder
def _evaluation(label: str, feed: Any, s: AnalysisSettings, class_names: Any) -> Evaluation:
    """Report, intervals, tests, decomposition and diagram data of one set of predictions,
    whatever ``feed`` (:class:`~trueprob.analysis.feeds.Arrays` or
    :class:`~trueprob.analysis.feeds.Passes`) they come from."""
    feed.label = label
    point, squares = feed.fill(s)
    report = point.finalize(unit=s.unit, reduce="mean")
    vector = "confidences" not in point.input_kinds
    notes: list[str] = []
    reliability, classwise, classes = diagram_data(point, report, squares, s, class_names,
                                                   label, vector)
    feed.step(f"bootstrap ({s.n_replicates} replicates)")
    intervals, n_blocks = feed.intervals(point, s)
    feed.step(f"consistency tests ({s.n_resamples} resamples)")
    tests, ranked = _tests(feed, report, vector, set(point.target_kinds), s, notes)
    feed.step("log-loss decomposition")
    decomposition = None
    if vector and report.nll is not None and math.isfinite(report.nll):
        decomposition = feed.decomposition(report, classes, s)
    elif vector:
        notes.append("no log-loss decomposition: the log loss is infinite")
    else:
        notes.append("no log-loss decomposition: it needs the full probability vector")
    feed.step("smooth ECE")
    smooth = feed.smooth(point, report, squares, s, notes)
    feed.step("SKCE")
    kernel = feed.skce(vector, s, notes)
    feed.done()
    return Evaluation(label, report, intervals, tests, decomposition, reliability, smooth,
                      classwise, classes, n_blocks, kernel, tuple(notes), ranked)


def diagram_data(stats: Any, report: Any, squares: Any, s: AnalysisSettings, class_names: Any,
                 label: str, vector: bool) -> tuple[Any, Any, ClassRows | None]:
    """The reliability diagram's data, the classwise grid's and the per-class table of one
    filled :class:`~trueprob.stats.EvaluationStats` (``squares``: the same bins weighted by
    w_i^2 for weighted rows, else ``None``), in memory or streamed alike."""
    from trueprob.analysis.diagrams import classwise_data, reliability_data

    w2 = None if squares is None else squares.top_label.arrays()["weight"][0]
    reliability = reliability_data(report, weight_squares=w2, level=s.level, label=label)
    if not vector:
        return reliability, None, None
    names = (tuple(f"class {i}" for i in range(stats.n_classes)) if class_names is None
             else tuple(str(n) for n in class_names))
    classwise = classwise_data(stats, report, weight_squares=squares, max_panels=s.max_panels,
                               class_names=names, level=s.level)
    sums = stats.classwise.arrays()
    total = float(report.weight)
    classes = ClassRows(sums["sum_outcome"].sum(axis=1) / total,
                        sums["sum_score"].sum(axis=1) / total,
                        np.asarray(report.classwise_ece_per_class, dtype=np.float64), names)
    return reliability, classwise, classes


def _tests(feed: Any, report: Any, vector: bool, targets: set[str], s: AnalysisSettings,
           notes: list[str]) -> tuple[dict[str, Any], Any]:
    """Both consistency tests (:class:`~trueprob.inference.ConsistencyStats`), within the draw
    budgets (p = (1 + #{T* >= T}) / (1 + R)), and the ranked reliability
    (:class:`~trueprob.stats.ranked.RankedStats`), filled from the feed's batches in one pass."""
    from trueprob.inference import ConsistencyStats
    from trueprob.stats.ranked import RankedStats

    n, k = int(report.n), int(report.n_classes)
    states: dict[str, Any] = {}
    ranked = RankedStats(k, n_bins=s.n_bins, closed=s.closed) if vector else None
    if targets != {"labels"}:
        notes.append(f"no consistency tests: they draw labels from the predicted "
                     f"distributions and compare them with hard labels (got "
                     f"{'/'.join(sorted(targets))})")
        return _fill(feed, states, ranked, targets)
    top = s.n_resamples
    if feed.top_label_draws is not None:
        top = min(s.n_resamples, feed.top_label_draws // max(n, 1))
    if top >= min(MIN_RESAMPLES, s.n_resamples):
        states["ece"] = ConsistencyStats("ece", k, n_bins=s.n_bins, closed=s.closed,
                                         n_resamples=top, random_state=s.seed)
        if top < s.n_resamples:
            notes.append(f"the top-label consistency test uses {top} resamples (N x R is "
                         f"capped at {feed.top_label_draws:.0e} draws for a streamed dataset)")
    else:
        notes.append(f"no top-label consistency test: N = {n} rows is too many for "
                     f"{MIN_RESAMPLES} resamples within {feed.top_label_draws:.0e} draws")
    classwise = min(s.n_resamples, CLASSWISE_DRAWS // max(n * k, 1))
    if not vector:  # top-label outputs: c_i and the prediction suffice for the top-label test
        notes.append("no classwise consistency test: it needs the full probability vectors "
                     "(only top-label confidences were given)")
    elif classwise >= MIN_RESAMPLES:
        states["classwise_ece"] = ConsistencyStats("classwise_ece", k, n_bins=s.n_bins,
                                                   closed=s.closed, n_resamples=classwise,
                                                   random_state=s.seed)
    else:
        notes.append(f"no classwise consistency test: N x K = {n} x {k} is too large for a "
                     f"quick one (run trueprob.consistency_test(..., "
                     f"statistic='classwise_ece'){feed.sample_hint})")
    return _fill(feed, states, ranked, targets)


def _fill(feed: Any, states: dict[str, Any], ranked: Any, targets: set[str]
          ) -> tuple[dict[str, Any], Any]:
    """One pass of the feed filling the test states and the ranked state (if any)."""
    from trueprob.metrics.ranked import ranked_reliability_of

    if not states and ranked is None:
        return {}, None
    what = "consistency tests" if states else "ranked reliability"
    for inputs in feed.batches(what):
        for state in states.values():
            state.update_inputs(inputs)
        if ranked is not None:
            ranked.update_inputs(inputs)
    return ({name: state.finalize() for name, state in states.items()},
            None if ranked is None else ranked_reliability_of(
                ranked, hard_labels=targets == {"labels"}))



__all__ = ["analyze", "analyze_path", "diagram_data"]
