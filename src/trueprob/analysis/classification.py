"""The classification report's analysis: one builder, fed from arrays or from passes.

:func:`analyze` (arrays in memory) and :func:`analyze_path` (a file, a folder or a glob read
in record batches) give the same :class:`~trueprob.analysis.records.Analysis`, built by one
function, :func:`_evaluation`, from a *feed* that says where the rows come from:

========================  ===================================  ===================================
part                      in memory (:class:`_Arrays`)         streamed (:class:`_Passes`)
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
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from trueprob._progress import progress
from trueprob._version import __version__
from trueprob.analysis.records import (
    CLASSWISE_DRAWS,
    MIN_RESAMPLES,
    STEPS,
    TOP_LABEL_DRAWS,
    Analysis,
    AnalysisSettings,
    Calibration,
    ClassRows,
    Evaluation,
    check_int,
    checked_settings,
    kish_rows,
)

PathLike = str | Path


def _smooth_module() -> Any:
    """trueprob.metrics.smooth, or None in an installation without it."""
    try:
        from trueprob.metrics import smooth
    except ImportError:
        return None
    return smooth


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
                             _Arrays(labels, outputs, common, n_classes, bar), settings,
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
                                _Arrays(labels, {"logits": calibrated}, common, n_classes, bar),
                                settings, class_names)
    notes = []
    if _smooth_module() is None:
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
                                   n_bins=s.n_bins)
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
                             _Passes(_stream(path, specs, rows, n_classes, None), bar,
                                     int(max_blocks)), settings, class_names)
        after, calibration = None, None
        if calibrator is not None:
            if before.classes is None:  # top-label inputs: nothing to recalibrate
                raise ValueError("calibrator needs logits= or probs=; only top-label "
                                 "confidences= and predictions= were given")
            calibration = Calibration.of(calibrator, calibration_source)
            after = _evaluation(calibration.label,
                                _Passes(_stream(path, specs, rows, n_classes, calibrator), bar,
                                        int(max_blocks)), settings, class_names)
    notes = ("read in batches of at most "
             f"{rows} rows; the log-loss split uses a temperature fitted on all rows "
             "(in-sample) and the SKCE is left out",)
    return Analysis(str(path) if source is None else source, before, after, calibration,
                    settings, __version__, time.perf_counter() - start, notes)


# =========================================================================== the one builder
def _evaluation(label: str, feed: Any, s: AnalysisSettings, class_names: Any) -> Evaluation:
    """Report, intervals, tests, decomposition and diagram data of one set of predictions,
    whatever ``feed`` (:class:`_Arrays` or :class:`_Passes`) they come from."""
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
    if not vector or targets != {"labels"}:
        why = ("top-label confidences only" if not vector
               else f"{'/'.join(sorted(targets))} instead of hard labels")
        notes.append(f"no consistency tests: they draw labels from the predicted "
                     f"distributions and need full probability vectors with hard labels "
                     f"(got {why})")
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
    if classwise >= MIN_RESAMPLES:
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


# =========================================================================== feeds
class _Arrays:
    """The rows in memory: one chunk. Its progress bar counts the :data:`STEPS` steps."""

    top_label_draws: int | None = None
    sample_hint = ""

    def __init__(self, labels: Any, outputs: dict[str, Any], common: dict[str, Any],
                 n_classes: int | None, bar: Any) -> None:
        self.labels = labels
        self.outputs = outputs
        self.kwargs = {**outputs, **{k: v for k, v in common.items() if v is not None}}
        self.n_classes = n_classes
        self.bar = bar
        self.label = ""
        self.inputs: Any = None

    def step(self, name: str) -> None:  # one of the STEPS stages is done; say what runs next
        self.bar.advance()
        self.bar.describe(f"report ({self.label}): {name}")

    def done(self) -> None:
        self.bar.advance()

    def fill(self, s: AnalysisSettings) -> tuple[Any, Any]:
        from trueprob._validation import prepare
        from trueprob.api import build_stats
        from trueprob.stats.evaluation import EvaluationStats

        self.bar.describe(f"report ({self.label}): metrics")
        self.inputs = inputs = prepare(self.labels, **self.kwargs, n_classes=self.n_classes)
        stats = build_stats(inputs, n_bins=s.n_bins, binning=s.binning, closed=s.closed)
        squares = None
        if inputs.weights is not None:
            # bin sums of w_i^2 (for effective counts): the same bins, weighted by w^2
            vector = inputs.kind != "confidences"
            parts = ("top_label", "classwise") if vector else ("top_label",)
            squares = EvaluationStats(inputs.n_classes, n_bins=s.n_bins, closed=s.closed,
                                      edges=stats.binning.edges, parts=parts)
            squares.update_inputs(prepare(self.labels,
                                          **{**self.kwargs,
                                             "sample_weight": inputs.weights ** 2},
                                          n_classes=self.n_classes))
        return stats, squares

    def batches(self, what: str) -> Iterable[Any]:
        return (self.inputs,)

    def intervals(self, point: Any, s: AnalysisSettings) -> tuple[dict[str, Any], int]:
        from trueprob.inference import bootstrap

        boot = bootstrap(self.labels, **self.kwargs, n_classes=self.n_classes,
                         n_bins=s.n_bins, binning=s.binning, closed=s.closed, unit=s.unit,
                         n_replicates=s.n_replicates, level=s.level, random_state=s.seed,
                         quiet=True)
        return dict(boot.intervals), boot.n_blocks

    def decomposition(self, report: Any, classes: Any, s: AnalysisSettings) -> Any:
        from trueprob._array import to_numpy
        from trueprob.decomposition import decompose

        kwargs = self.kwargs
        probs = kwargs.get("probs")
        if probs is not None and np.asarray(to_numpy(probs)).dtype != np.float64:
            # decompose casts probabilities to float64 before its cross-fitted fits, whose
            # row-sum check then applies float64's tolerance to float32 rows (rows summing to
            # 1 +- 1e-7 are refused): renormalise them in float64 first (a change of order
            # 1e-7 in q, for the split only)
            q = np.asarray(to_numpy(probs), dtype=np.float64)
            kwargs = {**kwargs, "probs": q / q.sum(axis=1, keepdims=True)}
        return decompose(self.labels, **kwargs, score="log", estimator=s.decomposition,
                         n_bins=s.n_bins, n_folds=s.n_folds, unit=s.unit, random_state=s.seed)

    def smooth(self, point: Any, report: Any, squares: Any, s: AnalysisSettings,
               notes: list[str]) -> Any:
        from trueprob.analysis.diagrams import smooth_curve_data

        module = _smooth_module()
        if module is None:
            return None
        result = module.smooth_reliability(self.labels, **self.kwargs, n_points=501)
        effective = kish_rows(self.inputs.weights)
        return smooth_curve_data(result, effective_total=effective, level=s.level,
                                 label=self.label)

    def skce(self, vector: bool, s: AnalysisSettings, notes: list[str]) -> Any:
        """SKCE of the whole vector, block estimator (blocks of 16 rows) on seeded shuffled
        rows (the block estimator pairs rows in the order given), with its normal test."""
        inputs = self.inputs
        if not vector:
            return None
        if inputs.weights is not None:
            notes.append("no SKCE: the kernel calibration error takes no row weights")
            return None
        try:
            from trueprob.metrics.skce import skce
        except ImportError:
            return None
        order = np.random.default_rng(s.seed).permutation(inputs.n_rows)

        def take(x: Any) -> Any:  # arrays of any namespace; lists and tuples via numpy
            return x[order] if hasattr(x, "shape") else np.asarray(x)[order]

        shuffled = {k: take(v) for k, v in self.kwargs.items()}
        labels = None if self.labels is None else take(self.labels)
        return skce(labels, **shuffled, estimator="block")


class _Passes:
    """The rows of a dataset read in batches, pass by pass (``passes()`` starts a pass). Its
    progress bar counts each pass's rows and names what the pass is for."""

    top_label_draws: int | None = TOP_LABEL_DRAWS
    sample_hint = " on a sample"

    def __init__(self, passes: Callable[[], Iterable[Any]], bar: Any, max_blocks: int) -> None:
        self.passes = passes
        self.bar = bar
        self.max_blocks = max_blocks
        self.label = ""
        self.rng: np.random.Generator | None = None
        self.blocked: Any = None

    def named(self, what: str) -> Callable[[], Iterable[Any]]:  # passes naming the bar
        from trueprob.streaming import counted

        return lambda: counted(self.passes, self.bar, f"report ({self.label}): {what}")

    def step(self, name: str) -> None:
        if name.startswith("bootstrap"):  # the only step that runs without a pass
            self.bar.describe(f"report ({self.label}): {name}")

    def done(self) -> None:
        pass

    def fill(self, s: AnalysisSettings) -> tuple[Any, Any]:
        from trueprob.streaming import blocked_states_of_batches

        self.rng = np.random.default_rng(s.seed)
        first = ("metrics and bootstrap blocks" if s.binning == "width"
                 else "equal-mass edges, then metrics and bootstrap blocks")
        states = blocked_states_of_batches(self.named(first), n_bins=s.n_bins,
                                           binning=s.binning, closed=s.closed,
                                           max_blocks=self.max_blocks, random_state=self.rng,
                                           weight_squares=True)
        self.blocked = states.blocked
        return states.point, states.squares

    def batches(self, what: str) -> Iterable[Any]:
        return (batch.inputs for batch in self.named(what)())

    def intervals(self, point: Any, s: AnalysisSettings) -> tuple[dict[str, Any], int]:
        from trueprob.inference.bootstrap import intervals_from_states

        boot = intervals_from_states(point, self.blocked, n_replicates=s.n_replicates,
                                     level=s.level, unit=s.unit, random_state=self.rng,
                                     seed=s.seed, quiet=True)
        return dict(boot.intervals), boot.n_blocks

    def decomposition(self, report: Any, classes: Any, s: AnalysisSettings) -> Any:
        """S(q) = MCB - DSC + UNC of the log loss with r = softmax(s_i / T), T fitted on all
        rows.

        S(q) is the report's log loss; S(r) = the fitted map's NLL; UNC = S(prior) =
        -sum_k pbar_k log pbar_k with pbar_k = (1/W) sum_i w_i t_ik (for soft targets too:
        -(1/W) sum_i w_i sum_k t_ik log pbar_k = -sum_k pbar_k log pbar_k).
        """
        from trueprob.decomposition import Decomposition
        from trueprob.stats.evaluation import check_unit
        from trueprob.streaming import fit_temperature_batches

        scale = check_unit(s.unit)
        fitted = fit_temperature_batches(self.named("log-loss split, temperature passes"))
        s_q = float(report.nll)
        s_r = float(fitted.nll_after_) * scale
        prior = np.asarray(classes.frequency, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            unc = float(-np.sum(np.where(prior > 0, prior * np.log(prior), 0.0))) * scale
        soft = report.targets != "labels"
        return Decomposition("log", "temperature", "vector", s.unit, s_q, s_q - s_r,
                             unc - s_r, unc, s_r, n_folds=None,
                             entropy=float(report.entropy) if soft else None,
                             kl=float(report.kl) if soft else None)

    def smooth(self, point: Any, report: Any, squares: Any, s: AnalysisSettings,
               notes: list[str]) -> Any:
        from trueprob.analysis.diagrams import smooth_curve_data

        if point.smooth is None or not point.smooth.n_rows:
            return None
        effective = None
        if squares is not None:
            w2 = squares.top_label.arrays()["weight"][0]
            effective = float(report.weight) ** 2 / float(np.sum(w2))
        return smooth_curve_data(point.smooth.finalize(n_points=501),
                                 effective_total=effective, level=s.level, label=self.label)

    def skce(self, vector: bool, s: AnalysisSettings, notes: list[str]) -> Any:
        if vector:
            notes.append("no SKCE for a streamed dataset: its block estimator pairs rows in a "
                         "random order of all rows (run trueprob.metrics.skce on a sample)")
        return None


__all__ = ["analyze", "analyze_path", "diagram_data"]
