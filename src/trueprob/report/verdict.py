"""The verdict of a classification report: what an analysis says, in plain language.

The analysis (:func:`trueprob.analysis.analyze`, :func:`trueprob.analysis.analyze_path`)
computes every number a report shows; :func:`verdict` turns an
:class:`~trueprob.analysis.Analysis` into sentences. Every number of a sentence is read from
the same objects as the tables and figures (the Report, the intervals, the tests, the
decomposition), so the words cannot disagree with the tables.

``analyze``, ``Analysis`` and the other records are re-exported here from
:mod:`trueprob.analysis` so that the old import path keeps working.
"""

from __future__ import annotations

import math

import numpy as np

from trueprob.analysis.classification import analyze, diagram_data
from trueprob.analysis.records import (
    CLASSWISE_DRAWS,
    MIN_RESAMPLES,
    STEPS,
    Analysis,
    AnalysisSettings,
    Calibration,
    ClassRows,
    Evaluation,
    checked_settings,
)

__all__ = ["CLASSWISE_DRAWS", "MIN_RESAMPLES", "STEPS", "Analysis", "AnalysisSettings",
           "Calibration", "ClassRows", "Evaluation", "analyze", "checked_settings",
           "diagram_data", "p_text", "verdict"]


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
