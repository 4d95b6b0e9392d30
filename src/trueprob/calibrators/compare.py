"""Compare recalibration maps: fit each on one split, score each on another.

This is the one place where candidates are chosen, fitted and judged: ``trueprob compare``
prints it, and the report's recommendation ("What to do") is its best row, so the two always
agree on the same files.

- Candidates (:func:`default_candidates`): temperature and vector scaling; matrix scaling and
  Dirichlet calibration when the data can identify their K(K+1) parameters (see
  :data:`MIN_ROWS_PER_FULL_PARAM`), else listed as skipped with the reason; the binary methods
  (Platt, beta, isotonic, histogram binning, scaling-binning) both one-vs-rest and on the
  top-label confidence.
- Each candidate is fitted by maximum likelihood on the fitting split and evaluated with
  :func:`trueprob.evaluate` on the evaluation split: NLL, Brier, ECE, classwise ECE, accuracy.
- Top-label outputs (``confidences`` and ``predictions``, no vectors): the candidates are the
  binary methods on the confidence (:class:`~trueprob.calibrators.multiclass.TopLabel`), and
  the columns are the scores of the correctness event (:data:`TOP_LABEL_COLUMNS`): its log
  loss ("top-label NLL") and Brier score, and the ECE. The accuracy is the same in every row
  (a top-label map keeps the predictions), so it is a note, not a column.
- The best row is the one with the lowest held-out NLL among the rows that change the accuracy
  by at most :data:`ACCURACY_TOLERANCE` (a recalibration map is meant to fix probabilities,
  not predictions: one-vs-rest binning can move the argmax and lose accuracy). Rows that move
  the accuracy more are flagged.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trueprob.calibrators import by_name
from trueprob.calibrators.by_name import BINARY_METHODS, METHODS, TOP_LABEL_METHODS

#: the binary methods tried by default (BBQ and ENIR are available by name, not by default:
#: their Bayesian averaging is slow one-vs-rest at large K)
DEFAULT_BINARY = ("platt", "beta", "isotonic", "histogram", "scaling-binning")
#: matrix scaling and Dirichlet calibration fit K(K+1) parameters; they are candidates only
#: when the fitting split has at least this many rows per parameter
MIN_ROWS_PER_FULL_PARAM = 10
#: the most the accuracy may move (absolute) for a row to be recommended
ACCURACY_TOLERANCE = 0.01
#: the evaluation columns, in order: (Report field, heading)
COLUMNS = (("nll", "NLL"), ("brier", "Brier"), ("ece", "ECE"),
           ("classwise_ece", "classwise ECE"), ("accuracy", "accuracy"))
#: the columns for top-label outputs: the log loss and Brier score of the correctness event
#: (binary, of c_i against a_i) and the ECE; the accuracy does not change (a note says so)
TOP_LABEL_COLUMNS = (("nll", "top-label NLL"), ("brier", "top-label Brier"), ("ece", "ECE"))


@dataclass(frozen=True)
class Candidate:
    """One recalibration map to try: a method and, for a binary method on K > 2 classes, how
    it is used (``"one-vs-rest"`` or ``"top-label"``)."""

    method: str
    multiclass: str | None = None
    #: the row's name; default ``"isotonic"``, or ``"isotonic (top-label)"`` when wrapped
    label: str | None = None

    @property
    def name(self) -> str:
        if self.label is not None:
            return self.label
        return self.method if self.multiclass is None else f"{self.method} ({self.multiclass})"


def make_calibrator(method: str, n_classes: int,
                    multiclass: str = "one-vs-rest") -> tuple[Any, str | None]:
    """:func:`trueprob.calibrators.by_name.make_calibrator`, and a note when a binary method
    was wrapped (one-vs-rest or top-label) for K > 2.

    Examples
    --------
    >>> cal, note = make_calibrator("isotonic", 10, "top-label")
    >>> type(cal).__name__, note is not None
    ('TopLabel', True)
    """
    calibrator = by_name.make_calibrator(method, n_classes, multiclass)
    if method in BINARY_METHODS and n_classes > 2:
        class_name = METHODS[method][1]
        note = (f"{method} is a binary method and the data have K={n_classes} classes: "
                f"fitted {multiclass} ({type(calibrator).__name__}(base={class_name}()))")
        return calibrator, note
    return calibrator, None


def skip_reason(method: str, n_classes: int, n_rows: int) -> str | None:
    """Why ``method`` is not tried on these data, or None.

    Matrix scaling and Dirichlet calibration have K(K+1) parameters; with fewer than
    :data:`MIN_ROWS_PER_FULL_PARAM` fitting rows per parameter they are not identified by the
    data (they over-fit the split and cost O(N K^2) per pass for nothing).
    """
    if method in ("matrix", "dirichlet"):
        params = n_classes * (n_classes + 1)
        if params * MIN_ROWS_PER_FULL_PARAM > n_rows:
            return (f"K(K+1) = {params} parameters for {n_rows} fitting rows (fewer than "
                    f"{MIN_ROWS_PER_FULL_PARAM} rows per parameter): not identified; vector "
                    f"scaling is the linear map these data support")
    return None


def default_candidates(n_classes: int) -> list[Candidate]:
    """Every method; for K > 2 the binary ones both one-vs-rest and top-label."""
    out = [Candidate(m) for m in ("temperature", "vector", "matrix", "dirichlet")]
    for m in DEFAULT_BINARY:
        if n_classes > 2:
            out += [Candidate(m, "one-vs-rest"), Candidate(m, "top-label")]
        else:
            out.append(Candidate(m))
    return out


def default_top_label_candidates() -> list[Candidate]:
    """Every binary method on the confidence (top-label outputs have no vector to scale)."""
    return [Candidate(m, "top-label") for m in TOP_LABEL_METHODS]


def columns_of(top_label: bool) -> tuple[tuple[str, str], ...]:
    """The (field, heading) columns of a comparison of vectors or of top-label outputs."""
    return TOP_LABEL_COLUMNS if top_label else COLUMNS


def is_top_label(arrays: Mapping[str, Any]) -> bool:
    """Whether a split holds top-label outputs (``confidences``, ``predictions``) only."""
    return "confidences" in arrays and "logits" not in arrays and "probs" not in arrays


def top_label_losses(arrays: Mapping[str, Any], confidences: Any = None, *,
                     unit: str = "bits") -> tuple[float, float]:
    """(top-label NLL in ``unit``, top-label Brier) of a top-label split.

    The weighted means of :func:`trueprob.core.rows.top_label_scores`, the binary log loss
    -[a log c + (1 - a) log(1 - c)] and Brier score (c - a)^2 of the correctness a_i of the
    split's ``predictions``, at the split's ``confidences`` or at ``confidences`` given (a
    calibrated copy). A wrong prediction at confidence 1 makes the NLL inf.

    Examples
    --------
    >>> split = {"confidences": np.array([0.8, 0.6]), "predictions": np.array([0, 1]),
    ...          "labels": np.array([0, 0])}
    >>> nll, brier = top_label_losses(split, unit="nats")   # (-log .8 - log .4) / 2
    >>> round(nll, 6), round(brier, 6)                      # (.04 + .36) / 2
    (0.569717, 0.2)
    """
    from trueprob.calibrators._fitdata import fit_top_label
    from trueprob.core.options import check_unit
    from trueprob.core.rows import top_label_scores

    scale = check_unit(unit)
    conf = arrays["confidences"] if confidences is None else confidences
    extra = {k: arrays[k] for k in ("targets", "counts", "sample_weight") if k in arrays}
    data = fit_top_label(arrays.get("labels"), confidences=conf,
                         predictions=arrays["predictions"], **extra)
    nll, brier = top_label_scores(np, np.asarray(conf, dtype=np.float64), data.correct)
    w = data.weights
    keep = w > 0  # a zero weight drops its row (an infinite loss there counts for nothing)

    def mean(x: np.ndarray) -> float:
        return float(np.sum(w[keep] * x[keep]) / np.sum(w[keep]))

    return mean(nll) * scale, mean(brier)


@dataclass(frozen=True)
class ComparisonRow:
    """One candidate fitted on the fitting split and scored on the evaluation split.

    Scores are ``None`` for a skipped candidate (``skipped`` says why). ``accuracy_change`` is
    accuracy after minus before; ``flags`` lists warnings (an accuracy change of more than
    :data:`ACCURACY_TOLERANCE`); ``fit_seconds`` is the fitting time.
    """

    name: str
    method: str
    multiclass: str | None
    calibrator: Any
    nll: float | None
    brier: float | None
    ece: float | None
    classwise_ece: float | None
    accuracy: float | None
    accuracy_change: float | None
    fit_seconds: float | None
    skipped: str | None = None
    flags: tuple[str, ...] = ()
    best: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.name, "base_method": self.method, "multiclass": self.multiclass,
            "calibrator": None if self.calibrator is None else repr(self.calibrator),
            **{f: getattr(self, f) for f, _ in COLUMNS},  # classwise_ece None top-label
            "accuracy_change": self.accuracy_change, "fit_seconds": self.fit_seconds,
            "skipped": self.skipped, "flags": list(self.flags), "best": self.best,
        }


@dataclass(frozen=True)
class Comparison:
    """The rows of a comparison: ``"uncalibrated"`` first, then each candidate.

    ``top_label``: the splits were top-label outputs; ``nll`` and ``brier`` are then the
    scores of the correctness event (:data:`TOP_LABEL_COLUMNS`) and ``n_classes`` is None.
    """

    rows: tuple[ComparisonRow, ...]
    unit: str
    n_bins: int
    n_classes: int | None
    notes: tuple[str, ...] = field(default_factory=tuple)
    top_label: bool = False

    @property
    def columns(self) -> tuple[tuple[str, str], ...]:
        return columns_of(self.top_label)

    @property
    def uncalibrated(self) -> ComparisonRow:
        return self.rows[0]

    @property
    def best(self) -> ComparisonRow | None:
        """The recommended row (lowest held-out NLL among the rows that keep the accuracy),
        or None when no candidate beats the uncalibrated model."""
        return next((r for r in self.rows if r.best), None)

    def to_dict(self) -> dict[str, Any]:
        best = self.best
        return {"unit": self.unit, "n_bins": self.n_bins, "n_classes": self.n_classes,
                "top_label": self.top_label, "best": None if best is None else best.name,
                "rows": [r.to_dict() for r in self.rows], "notes": list(self.notes)}


def n_classes_of(arrays: Mapping[str, Any]) -> int:
    """K of a split's ``logits`` or ``probs`` (2 for one binary score per row)."""
    scores = arrays.get("logits", arrays.get("probs"))
    if scores is None:
        raise ValueError("recalibration needs logits= or probs= (one per class); top-label "
                         "confidences alone cannot be recalibrated by these maps")
    return 2 if len(scores.shape) == 1 else int(scores.shape[1])


def _evaluate(arrays: Mapping[str, Any], logits: Any, unit: str, n_bins: int,
              binning: str = "width") -> Any:
    from trueprob.api import evaluate

    scores = ({k: arrays[k] for k in ("logits", "probs") if k in arrays}
              if logits is None else {"logits": logits})
    extra = {k: arrays[k] for k in ("targets", "counts", "sample_weight") if k in arrays}
    return evaluate(arrays.get("labels"), **scores, **extra, unit=unit, n_bins=n_bins,
                    binning=binning)


def _validate(arrays: Mapping[str, Any]) -> None:
    """Check a split's rows as :func:`trueprob.evaluate` would, computing nothing."""
    from trueprob._validation import prepare

    given = {k: arrays[k] for k in ("logits", "probs", "targets", "counts", "sample_weight")
             if k in arrays}
    for _ in prepare(arrays.get("labels"), **given, rescale_weights=True).chunks():
        pass


def compare_calibrators(
    fit: Mapping[str, Any],
    evaluation: Mapping[str, Any],
    candidates: Sequence[Candidate] | None = None,
    *,
    unit: str = "bits",
    n_bins: int = 15,
    quiet: bool | None = None,
    names: tuple[str, str] = ("the fitting split", "the evaluation split"),
    binning: str = "width",
) -> Comparison:
    """Fit every candidate on ``fit`` and score it on ``evaluation``.

    Parameters
    ----------
    fit, evaluation : mapping
        The arrays of each split, by :func:`trueprob.evaluate`'s argument names: ``logits``
        or ``probs``, and ``labels``, ``targets`` or ``counts``, optionally
        ``sample_weight``.
    candidates : sequence of Candidate, optional
        Default: :func:`default_candidates`. A candidate that :func:`skip_reason` rules out,
        or whose fit fails on these data, is kept as a row with ``skipped`` saying why.
    unit : {"bits", "nats"}
        Unit of the NLL column.
    n_bins : int
        Bins of the ECE columns.
    binning : {"width", "mass"}
        Their layout (the report passes its own, so its tables and its recommendation quote
        the same ECE).
    quiet : bool, optional
        No progress bar (one bar per candidate is drawn on a terminal's stderr).
    names : (str, str)
        What to call the two splits in error messages (the CLI passes the file names).

    Returns
    -------
    Comparison
        ``rows[0]`` is the uncalibrated model; ``best`` the recommended row.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=(2000, 4)) * 3
    >>> q = np.exp(z / 3) / np.exp(z / 3).sum(axis=1, keepdims=True)   # true T = 3
    >>> y = np.array([rng.choice(4, p=row) for row in q])
    >>> half = {"logits": z[:1000], "labels": y[:1000]}
    >>> other = {"logits": z[1000:], "labels": y[1000:]}
    >>> c = compare_calibrators(half, other, [Candidate("temperature"), Candidate("vector")],
    ...                         quiet=True)
    >>> [r.name for r in c.rows], c.best.name in ("temperature", "vector")
    (['uncalibrated', 'temperature', 'vector'], True)
    >>> c.best.nll < c.uncalibrated.nll
    True
    """
    from trueprob._progress import progress

    if is_top_label(fit) or is_top_label(evaluation):
        return _compare_top_label(fit, evaluation, candidates, unit=unit, n_bins=n_bins,
                                  quiet=quiet, names=names, binning=binning)
    k_fit, k_eval = n_classes_of(fit), n_classes_of(evaluation)
    if k_fit != k_eval:
        raise ValueError(f"{names[0]} has K={k_fit} classes but {names[1]} has K={k_eval}")
    scores = fit.get("logits", fit.get("probs"))
    n_fit = int(scores.shape[0])
    chosen = list(default_candidates(k_fit) if candidates is None else candidates)
    try:
        base = _evaluate(evaluation, None, unit, n_bins, binning)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{names[1]}: {exc}") from exc
    try:  # bad rows of the fitting split are its error, not every candidate's failure
        _validate(fit)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{names[0]}: {exc}") from exc
    rows = [_scored("uncalibrated", "uncalibrated", None, None, base, 0.0, None, ())]
    notes: list[str] = []
    fit_inputs = {k: fit[k] for k in ("logits", "probs", "targets", "counts", "sample_weight")
                  if k in fit}
    eval_scores = {k: evaluation[k] for k in ("logits", "probs") if k in evaluation}
    for cand in chosen:
        reason = skip_reason(cand.method, k_fit, n_fit)
        if reason is not None:
            rows.append(ComparisonRow(cand.name, cand.method, cand.multiclass, None, None, None,
                                      None, None, None, None, None, skipped=reason))
            continue
        calibrator, note = make_calibrator(cand.method, k_fit, cand.multiclass or "one-vs-rest")
        if note is not None and cand.label is not None:
            notes.append(note)  # the row's name does not say how it was wrapped
        with progress(f"compare: fitting {cand.name}", quiet=quiet):
            start = time.perf_counter()
            try:
                calibrator.fit(fit.get("labels"), **fit_inputs)
            except (ValueError, TypeError, ArithmeticError) as exc:
                # one map that does not exist on these data (e.g. a class the scores separate
                # perfectly) is a row with its reason, not the end of the comparison
                rows.append(ComparisonRow(cand.name, cand.method, cand.multiclass, None, None,
                                          None, None, None, None, None, None,
                                          skipped=f"could not be fitted on {names[0]}: {exc}"))
                continue
            seconds = time.perf_counter() - start
            report = _evaluate(evaluation, calibrator.predict_logproba(**eval_scores), unit,
                               n_bins, binning)
        change = report.accuracy - base.accuracy
        flags: tuple[str, ...] = ()
        if abs(change) > ACCURACY_TOLERANCE:
            flags = (f"changes the accuracy by {100 * change:+.1f} points "
                     f"({base.accuracy:.4f} -> {report.accuracy:.4f})",)
        rows.append(_scored(cand.name, cand.method, cand.multiclass, calibrator, report, change,
                            seconds, flags))
    return Comparison(tuple(_mark_best(rows, base.nll)), unit, n_bins, k_fit, tuple(notes))


def _mark_best(rows: list[ComparisonRow], base_nll: float) -> list[ComparisonRow]:
    """``rows`` with the best one marked: the lowest finite held-out NLL below ``base_nll``
    among the rows that were fitted and carry no flag."""
    eligible = [r for r in rows[1:] if r.skipped is None and not r.flags
                and r.nll is not None and math.isfinite(r.nll) and r.nll < base_nll]
    if eligible:
        winner = min(eligible, key=lambda r: r.nll)  # type: ignore[arg-type,return-value]
        rows = [_replace_best(r) if r is winner else r for r in rows]
    return rows


def _top_label_scored(name: str, method: str, multiclass: str | None, calibrator: Any,
                      evaluation: Mapping[str, Any], conf: Any, unit: str, n_bins: int,
                      binning: str, seconds: float | None) -> ComparisonRow:
    """A row of a top-label comparison: correctness scores and ECE of ``conf`` (None: the
    split's own confidences) on the evaluation split."""
    from trueprob.api import evaluate

    c = evaluation["confidences"] if conf is None else conf
    extra = {k: evaluation[k] for k in ("targets", "counts", "sample_weight")
             if k in evaluation}
    report = evaluate(evaluation.get("labels"), confidences=c,
                      predictions=evaluation["predictions"], **extra, unit=unit,
                      n_bins=n_bins, binning=binning)
    nll, brier = top_label_losses(evaluation, c, unit=unit)
    return ComparisonRow(name, method, multiclass, calibrator, nll=nll, brier=brier,
                         ece=report.ece, classwise_ece=None, accuracy=report.accuracy,
                         accuracy_change=0.0, fit_seconds=seconds)


def _compare_top_label(fit: Mapping[str, Any], evaluation: Mapping[str, Any],
                       candidates: Sequence[Candidate] | None, *, unit: str, n_bins: int,
                       quiet: bool | None, names: tuple[str, str],
                       binning: str) -> Comparison:
    """:func:`compare_calibrators` on top-label outputs (see the module docstring)."""
    from trueprob._progress import progress

    for split, name in ((fit, names[0]), (evaluation, names[1])):
        if not is_top_label(split):
            raise ValueError(
                f"{name} has logits or probabilities while the other split has only top-label "
                f"confidences and predictions; compare both as top-label outputs (name the "
                f"same fields in both) or both as vectors")
    chosen = list(default_top_label_candidates() if candidates is None else candidates)
    try:
        base = _top_label_scored("uncalibrated", "uncalibrated", None, None, evaluation, None,
                                 unit, n_bins, binning, 0.0)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{names[1]}: {exc}") from exc
    fit_inputs = {k: fit[k] for k in ("confidences", "predictions", "targets", "counts",
                                      "sample_weight") if k in fit}
    try:  # bad rows of the fitting split are its error, not every candidate's failure
        from trueprob.calibrators._fitdata import fit_top_label

        fit_top_label(fit.get("labels"), **fit_inputs)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{names[0]}: {exc}") from exc
    rows = [base]
    for cand in chosen:
        reason = by_name.top_label_refusal(cand.method)
        if reason is not None:
            rows.append(ComparisonRow(cand.name, cand.method, cand.multiclass, None, None, None,
                                      None, None, None, None, None, skipped=reason))
            continue
        calibrator = by_name.make_top_label_calibrator(cand.method)
        with progress(f"compare: fitting {cand.name}", quiet=quiet):
            start = time.perf_counter()
            try:
                calibrator.fit(fit.get("labels"), **fit_inputs)
            except (ValueError, TypeError, ArithmeticError) as exc:
                rows.append(ComparisonRow(cand.name, cand.method, "top-label", None, None, None,
                                          None, None, None, None, None,
                                          skipped=f"could not be fitted on {names[0]}: {exc}"))
                continue
            seconds = time.perf_counter() - start
            conf = calibrator.predict_confidences(confidences=evaluation["confidences"],
                                                  predictions=evaluation["predictions"])
            rows.append(_top_label_scored(cand.name, cand.method, "top-label", calibrator,
                                          evaluation, conf, unit, n_bins, binning, seconds))
    notes = (f"top-label outputs: every map is a function of the confidence and keeps the "
             f"predictions, so the accuracy is {base.accuracy:.4f} in every row; NLL and "
             f"Brier are those of the correctness event",)
    return Comparison(tuple(_mark_best(rows, base.nll)), unit, n_bins,  # type: ignore[arg-type]
                      None, notes, top_label=True)


def _scored(name: str, method: str, multiclass: str | None, calibrator: Any, report: Any,
            change: float, seconds: float | None, flags: tuple[str, ...]) -> ComparisonRow:
    return ComparisonRow(name, method, multiclass, calibrator, nll=report.nll,
                         brier=report.brier, ece=report.ece,
                         classwise_ece=report.classwise_ece, accuracy=report.accuracy,
                         accuracy_change=change, fit_seconds=seconds, flags=flags)


def _replace_best(row: ComparisonRow) -> ComparisonRow:
    from dataclasses import replace

    return replace(row, best=True)
