"""The evidence behind a report, and what it says in plain language.

:func:`analyze` computes, for a set of predictions (and, given a calibrator, for its
recalibrated predictions), everything the HTML and Markdown reports show: the
:class:`~trueprob.Report` with bootstrap intervals, consistency-test p-values, the log loss
split into MCB / DSC / UNC, and the data of every diagram. :func:`verdict` turns an
:class:`Analysis` into sentences. Every number of a sentence is read from the same objects as
the tables and figures (the Report, the intervals, the tests, the decomposition), so the
words cannot disagree with the tables.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trueprob._progress import progress
from trueprob._version import __version__

#: Progress steps of one evaluation: metrics, bootstrap, tests, decomposition, smooth, SKCE.
STEPS = 6
#: Budget of the classwise consistency test: N * K * resamples categorical draws at most
#: (about 0.5 s on one core); with fewer than MIN_RESAMPLES resamples it is left out.
CLASSWISE_DRAWS = 25_000_000
MIN_RESAMPLES = 99


@dataclass(frozen=True)
class AnalysisSettings:
    """How the numbers of an :class:`Analysis` were computed."""

    n_bins: int
    binning: str
    closed: str
    unit: str
    level: float
    n_replicates: int
    n_resamples: int
    decomposition: str
    n_folds: int
    max_panels: int
    seed: int


@dataclass(frozen=True, eq=False)
class ClassRows:
    """Per class k (all K): ``frequency`` (1/W) sum_i w_i t_ik, ``mean_probability``
    (1/W) sum_i w_i q_ik and the classwise ``ece`` of the Report."""

    frequency: np.ndarray
    mean_probability: np.ndarray
    ece: np.ndarray
    names: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class Evaluation:
    """One set of predictions, analysed.

    ``report`` holds every metric (the tables' numbers); ``intervals`` maps a Report field to
    its bootstrap :class:`~trueprob.inference.Interval`; ``tests`` maps ``"ece"`` /
    ``"classwise_ece"`` to a :class:`~trueprob.inference.ConsistencyTest`; ``decomposition``
    is the log loss split S = MCB - DSC + UNC (``None`` without full probability vectors);
    ``reliability``, ``smooth`` and ``classwise`` are the diagrams' data; ``classes`` the
    per-class table; ``skce`` the whole-vector kernel calibration error with its test
    (:func:`trueprob.metrics.skce.skce`, block estimator); ``notes`` say what was left out and
    why.
    """

    label: str
    report: Any
    intervals: Mapping[str, Any]
    tests: Mapping[str, Any]
    decomposition: Any
    reliability: Any
    smooth: Any
    classwise: Any
    classes: ClassRows | None
    bootstrap_blocks: int
    skce: Any = None
    notes: tuple[str, ...] = ()

    @property
    def mean_confidence(self) -> float:
        """(1/W) sum_b W_b conf_b: the weighted mean top-label confidence."""
        return float(self.reliability.mean_confidence)


@dataclass(frozen=True)
class Calibration:
    """The recalibration map of an analysis: its class, parameters and where it came from."""

    name: str
    description: str
    source: str
    temperature: float | None = None


@dataclass(frozen=True, eq=False)
class Analysis:
    """Everything a report shows: ``before`` (the predictions as given) and, with a calibrator,
    ``after`` (its recalibrated predictions), the settings and the trueprob version."""

    source: str
    before: Evaluation
    after: Evaluation | None
    calibration: Calibration | None
    settings: AnalysisSettings
    version: str
    seconds: float
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def evaluations(self) -> tuple[Evaluation, ...]:
        return (self.before,) if self.after is None else (self.before, self.after)

    def verdict(self) -> tuple[str, ...]:
        """The plain-language verdict (see :func:`verdict`)."""
        return verdict(self)


# --------------------------------------------------------------------------- analyze
def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")
    return int(value)


def checked_settings(n_bins: int, binning: str, closed: str, unit: str, level: float,
                     n_replicates: int, n_resamples: int, decomposition: str, n_folds: int,
                     max_panels: int, random_state: int) -> AnalysisSettings:
    """The :class:`AnalysisSettings` of an analysis, its counts checked (the metrics check
    the rest when they run)."""
    _check_int("n_replicates", n_replicates, 2)
    _check_int("n_resamples", n_resamples, 1)
    _check_int("max_panels", max_panels, 1)
    _check_int("random_state", random_state, 0)
    return AnalysisSettings(int(n_bins), binning, closed, unit, float(level),
                            int(n_replicates), int(n_resamples), decomposition, int(n_folds),
                            int(max_panels), int(random_state))


def _smooth_module() -> Any:
    """trueprob.metrics.smooth, or None in an installation without it."""
    try:
        from trueprob.metrics import smooth
    except ImportError:
        return None
    return smooth


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
    - the diagrams' data (:mod:`trueprob.report.plots`), including the smooth reliability
      curve of :mod:`trueprob.metrics.smooth` when that module is available.

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
    >>> a.verdict()[0].startswith("The top label is over-confident by")
    True
    """
    from trueprob.inference import bootstrap

    start = time.perf_counter()
    settings = checked_settings(n_bins, binning, closed, unit, level, n_replicates,
                                n_resamples, decomposition, n_folds, max_panels, random_state)
    common = {"targets": targets, "counts": counts, "sample_weight": sample_weight}
    given = {"logits": logits, "probs": probs, "confidences": confidences,
             "predictions": predictions}
    outputs = {k: v for k, v in given.items() if v is not None}
    steps = STEPS if calibrator is None else 2 * STEPS + 1
    with progress("report: evaluating", total=steps, quiet=quiet) as bar:
        before = _evaluation("uncalibrated" if calibrator is not None else "model", labels,
                             outputs, common, n_classes, settings, class_names, bootstrap, bar)
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
            name = type(calibrator).__name__
            temperature = getattr(calibrator, "temperature_", None)
            calibration = Calibration(name, repr(calibrator), calibration_source,
                                      None if temperature is None else float(temperature))
            after = _evaluation(_calibrated_label(calibration), labels,
                                {"logits": calibrated}, common, n_classes, settings,
                                class_names, bootstrap, bar)
    notes = []
    if _smooth_module() is None:
        notes.append("the smooth reliability curve is not shown: trueprob.metrics.smooth "
                     "is not available in this installation")
    return Analysis(source, before, after, calibration, settings, __version__,
                    time.perf_counter() - start, tuple(notes))


def _calibrated_label(calibration: Calibration) -> str:
    if calibration.temperature is not None:
        return f"temperature {calibration.temperature:.2f}"
    return calibration.name


def _evaluation(label: str, labels: Any, outputs: dict[str, Any], common: dict[str, Any],
                n_classes: int | None, settings: AnalysisSettings, class_names: Any,
                bootstrap: Any, bar: Any) -> Evaluation:
    """Report, intervals, tests, decomposition and diagram data of one set of predictions."""
    from trueprob._validation import prepare
    from trueprob.stats.build import build_stats
    from trueprob.stats.evaluation import EvaluationStats

    s = settings

    def step(name: str) -> None:  # one of the STEPS stages is done; say what runs next
        bar.advance()
        bar.describe(f"report ({label}): {name}")

    bar.describe(f"report ({label}): metrics")
    kwargs = {**outputs, **{k: v for k, v in common.items() if v is not None}}
    inputs = prepare(labels, **kwargs, n_classes=n_classes)
    stats = build_stats(inputs, n_bins=s.n_bins, binning=s.binning, closed=s.closed)
    report = stats.finalize(unit=s.unit, reduce="mean")
    vector = inputs.kind != "confidences"
    squares = None
    if inputs.weights is not None:
        # bin sums of w_i^2 (for effective counts): the same bins, weighted by w^2
        parts = ("top_label", "classwise") if vector else ("top_label",)
        squares = EvaluationStats(inputs.n_classes, n_bins=s.n_bins, closed=s.closed,
                                  edges=stats.binning.edges, parts=parts)
        squares.update_inputs(prepare(labels, **{**kwargs,
                                                 "sample_weight": inputs.weights ** 2},
                                      n_classes=n_classes))
    reliability, classwise, classes = diagram_data(stats, report, squares, s, class_names,
                                                   label, vector)
    notes: list[str] = []
    step(f"bootstrap ({s.n_replicates} replicates)")
    boot = bootstrap(labels, **kwargs, n_classes=n_classes, n_bins=s.n_bins,
                     binning=s.binning, closed=s.closed, unit=s.unit,
                     n_replicates=s.n_replicates, level=s.level, random_state=s.seed,
                     quiet=True)
    step(f"consistency tests ({s.n_resamples} resamples)")
    tests = _tests(labels, outputs, common, inputs, s, notes)
    step("log-loss decomposition")
    decomposition = None
    if vector and report.nll is not None and math.isfinite(report.nll):
        from trueprob.decomposition import decompose

        decomposition = decompose(labels, **kwargs, score="log", estimator=s.decomposition,
                                  n_bins=s.n_bins, n_folds=s.n_folds, unit=s.unit,
                                  random_state=s.seed)
    elif vector:
        notes.append("no log-loss decomposition: the log loss is infinite")
    else:
        notes.append("no log-loss decomposition: it needs the full probability vector")
    step("smooth ECE")
    smooth = _smooth(labels, kwargs, n_classes, inputs, s, label, notes)
    step("SKCE")
    kernel = _skce(labels, kwargs, inputs, s, notes)
    bar.advance()
    return Evaluation(label, report, dict(boot.intervals), tests, decomposition, reliability,
                      smooth, classwise, classes, boot.n_blocks, kernel, tuple(notes))


def diagram_data(stats: Any, report: Any, squares: Any, s: AnalysisSettings, class_names: Any,
                 label: str, vector: bool) -> tuple[Any, Any, ClassRows | None]:
    """The reliability diagram's data, the classwise grid's and the per-class table of one
    filled :class:`~trueprob.stats.EvaluationStats` (``squares``: the same bins weighted by
    w_i^2 for weighted rows, else ``None``), in memory or streamed alike."""
    from trueprob.report.plots.data import classwise_data, reliability_data

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


def _skce(labels: Any, kwargs: dict[str, Any], inputs: Any, s: AnalysisSettings,
          notes: list[str]) -> Any:
    """SKCE of the whole vector, block estimator (blocks of 16 rows) on seeded shuffled rows
    (the block estimator pairs rows in the order given), with its normal test."""
    if inputs.kind == "confidences":
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

    shuffled = {k: take(v) for k, v in kwargs.items() if v is not None}
    return skce(None if labels is None else take(labels), **shuffled, estimator="block")


def _tests(labels: Any, outputs: dict[str, Any], common: dict[str, Any], inputs: Any,
           s: AnalysisSettings, notes: list[str]) -> dict[str, Any]:
    from trueprob.inference import consistency_test

    if inputs.kind == "confidences" or inputs.target_kind != "labels":
        why = ("top-label confidences only" if inputs.kind == "confidences"
               else f"{inputs.target_kind} instead of hard labels")
        notes.append(f"no consistency tests: they draw labels from the predicted "
                     f"distributions and need full probability vectors with hard labels "
                     f"(got {why})")
        return {}
    scores = {k: outputs[k] for k in ("logits", "probs") if k in outputs}
    weight = common.get("sample_weight")
    tests = {"ece": consistency_test(labels, **scores, sample_weight=weight, statistic="ece",
                                     n_bins=s.n_bins, closed=s.closed,
                                     n_resamples=s.n_resamples, random_state=s.seed,
                                     quiet=True)}
    budget = CLASSWISE_DRAWS // max(inputs.n_rows * inputs.n_classes, 1)
    resamples = min(s.n_resamples, budget)
    if resamples >= MIN_RESAMPLES:
        tests["classwise_ece"] = consistency_test(
            labels, **scores, sample_weight=weight, statistic="classwise_ece",
            n_bins=s.n_bins, closed=s.closed, n_resamples=resamples, random_state=s.seed,
            quiet=True)
    else:
        notes.append(f"no classwise consistency test: N x K = {inputs.n_rows} x "
                     f"{inputs.n_classes} is too large for a quick one (run "
                     f"trueprob.consistency_test(..., statistic='classwise_ece'))")
    return tests


def _smooth(labels: Any, kwargs: dict[str, Any], n_classes: int | None, inputs: Any,
            s: AnalysisSettings, label: str, notes: list[str]) -> Any:
    from trueprob.report.plots.data import smooth_curve_data

    module = _smooth_module()
    if module is None:
        return None
    result = module.smooth_reliability(labels, **kwargs, n_points=501)
    effective = None
    if inputs.weights is not None:
        from trueprob._array import to_numpy

        w = to_numpy(inputs.weights).astype(np.float64)
        effective = float(w.sum() ** 2 / np.sum(w * w))
    return smooth_curve_data(result, effective_total=effective, level=s.level, label=label)


# --------------------------------------------------------------------------- verdict
def p_text(p: float, n_resamples: int, /) -> str:
    """A p-value in words: "p = 0.43", or "p ≤ 0.001" when no resample reached the
    observed statistic (p = 1 / (1 + B), the smallest value B resamples can give).

    Examples
    --------
    >>> p_text(1 / 1001, 1000), p_text(0.4321, 1000), p_text(0.0042, 1000)
    ('p ≤ 0.001', 'p = 0.43', 'p = 0.004')
    """
    floor = 1.0 / (1 + n_resamples)
    if p <= floor * (1 + 1e-9):
        return f"p ≤ {floor:.2g}"
    return f"p = {p:.3f}" if p < 0.01 else f"p = {p:.2f}"


def _num(x: float, digits: int = 3) -> str:
    return f"{x:.{digits}f}"


def verdict(analysis: Analysis, /) -> tuple[str, ...]:
    """Plain-language sentences about an :class:`Analysis`.

    1. Top label: mean confidence minus accuracy in points (from the reliability bins, i.e.
       the Report), the ECE with its interval and the consistency test's p-value.
    2. Bits: "M of the S bits per example are miscalibration" (MCB and S(q) of the
       decomposition), and the D of U bits of label entropy the model resolves.
    3. Soft targets: the cross-entropy split into the targets' entropy and the KL.
    4. Whole vector: the SKCE with its standard error and p-value.
    5. Recalibration: what the calibrator changes on these rows (log loss and ECE of the two
       Reports).
    6. Classwise: the classwise ECE and the worst class.
    """
    ev = analysis.before
    r = ev.report
    level = analysis.settings.level
    out: list[str] = []
    gap = ev.mean_confidence - r.accuracy
    direction = "over-confident" if gap > 0 else "under-confident"
    ece_iv = ev.intervals.get("ece")
    ece_text = f"ECE {_num(r.ece, 4)}"
    if ece_iv is not None:
        ece_text += f" ({level:.0%} interval {_num(ece_iv.low, 4)} to {_num(ece_iv.high, 4)})"
    test = ev.tests.get("ece")
    if test is not None and test.p_value >= 1 - level:
        out.append(
            f"The top label is consistent with calibration: its mean confidence "
            f"({ev.mean_confidence:.1%}) is {abs(gap) * 100:.1f} points "
            f"{'above' if gap > 0 else 'below'} its accuracy ({r.accuracy:.1%}), and the "
            f"consistency test finds no evidence against calibration ({ece_text}, "
            f"{p_text(test.p_value, test.n_resamples)}).")
    else:
        tail = "" if test is None else (f", {p_text(test.p_value, test.n_resamples)} "
                                        f"(consistency test)")
        out.append(
            f"The top label is {direction} by {abs(gap) * 100:.1f} points on average (mean "
            f"confidence {ev.mean_confidence:.1%}, accuracy {r.accuracy:.1%}); {ece_text}"
            f"{tail}.")
    d = ev.decomposition
    unit = analysis.settings.unit
    if d is not None:
        folds = analysis.settings.n_folds
        fitted = (f"fitted by {folds}-fold cross-fitting on these rows" if folds >= 2
                  else "fitted on all these rows (in-sample)")
        how = {"temperature": f"a temperature {fitted} recovers them",
               "dirichlet": f"a Dirichlet map {fitted} recovers them",
               "isotonic": "isotonic recalibration of the top-label confidence recovers them",
               "binned": "binned recalibration of the top-label confidence recovers them"}
        what = "log loss" if d.target == "vector" else "top-label log score"
        if d.mcb > 0:
            out.append(
                f"{_num(d.mcb)} of the {_num(d.score)} {unit} per example of {what} are "
                f"miscalibration: {how[d.estimator]}. The model resolves {_num(d.dsc)} of the "
                f"{_num(d.unc)} {unit} of label entropy.")
        else:
            out.append(
                f"None of the {_num(d.score)} {unit} per example of {what} is measurable "
                f"miscalibration (MCB = {_num(d.mcb, 4)} with {d.estimator} recalibration); "
                f"the model resolves {_num(d.dsc)} of the {_num(d.unc)} {unit} of label "
                f"entropy.")
        if d.entropy is not None and d.kl is not None:
            out.append(
                f"Of the {_num(d.entropy + d.kl)} {unit} cross-entropy per example, "
                f"{_num(d.entropy)} are the soft targets' own entropy (no model can remove "
                f"them) and {_num(d.kl)} are the KL divergence the model costs.")
    k = ev.skce
    if k is not None and math.isfinite(k.p_value):
        what = ("shows no significant departure from calibration" if k.p_value >= 1 - level
                else "departs from calibration")
        out.append(
            f"The whole predicted vector {what} by the kernel calibration error (SKCE "
            f"{k.estimate:.2e} ± {k.std_error:.1e}, p = {k.p_value:.3g}, block estimator).")
    if analysis.after is not None and analysis.calibration is not None:
        out.append(_recalibration_sentence(analysis, analysis.after))
    if ev.classes is not None and r.n_classes > 2 and r.classwise_ece is not None:
        worst = int(np.argmax(ev.classes.ece))
        out.append(
            f"The classwise ECE is {_num(r.classwise_ece, 4)} (mean over {r.n_classes} "
            f"classes); the worst class is {ev.classes.names[worst]} "
            f"({_num(float(ev.classes.ece[worst]), 4)}).")
    return tuple(out)


def _recalibration_sentence(analysis: Analysis, after: Evaluation) -> str:
    cal = analysis.calibration
    assert cal is not None
    before = analysis.before.report
    now = after.report
    unit = analysis.settings.unit
    who = (f"Temperature {cal.temperature:.2f}" if cal.temperature is not None
           else f"{cal.name}")
    where = f" ({cal.source})" if cal.source else ""
    parts = []
    if before.nll is not None and now.nll is not None:
        change = before.nll - now.nll
        if change > 0:
            parts.append(f"brings the log loss from {_num(before.nll)} to {_num(now.nll)} "
                         f"{unit} per example (recovers {_num(change)} {unit})")
        else:
            parts.append(f"does not lower the log loss on these rows ({_num(before.nll)} -> "
                         f"{_num(now.nll)} {unit} per example)")
    parts.append(f"changes the ECE from {_num(before.ece, 4)} to {_num(now.ece, 4)}")
    test = after.tests.get("ece")
    tail = ""
    if test is not None:
        tail = (f"; after it, the consistency test gives "
                f"{p_text(test.p_value, test.n_resamples)}")
    return f"{who}{where} {' and '.join(parts)}{tail}."
