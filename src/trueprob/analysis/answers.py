"""The verdict as data: the answers to the four questions and "What to do", and the
self-consistency check over them.

trueprob's question — a network trained with cross-entropy does maximum likelihood, so are its
outputs probabilities? — is answered in four parts and one recommendation (:func:`answers`):

- ``q1``: are *all* entries of the vector probabilities, or only the label's? The classwise
  ECE and its consistency test, the class-conditional ECE, the whole-vector SKCE test and the
  reliability of the 2nd, 3rd and all non-top ranked probabilities (:mod:`trueprob.metrics.ranked`).
- ``q2``: does cross-entropy = maximum likelihood hold beyond one-hot labels? With soft targets or
  counts, CE(p, q) = H(p) + KL(p || q) and the targets' (the annotators') share H / CE.
- ``q3``: is the top label's confidence the probability that the prediction is right? Direction,
  size (mean confidence - accuracy), ECE with its interval and test, and the confidence range of
  the bins whose accuracy interval excludes their confidence.
- ``q4``: what do entropy and bits add? S(q) = UNC - DSC + MCB with MCB the most log loss a
  held-out recalibration recovers (:mod:`trueprob.analysis.recalibration`), beside temperature's.
- ``what_to_do``: the recommended recalibration (with ``--fit``), its held-out numbers and
  command, or why none.

Each :class:`Answer` holds a ``claim`` (a word the sentences must agree with) and its numbers;
:func:`contradictions` checks every claim against the tests and held-out numbers of the same
analysis (and, given the rendered sentences, their wording).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: MCB below this share of the log loss (and no test rejecting) is called negligible
NEGLIGIBLE_SHARE = 0.005
#: the top label is "mixed" (wrong in both directions) when |mean confidence - accuracy| is
#: below this share of its ECE
MIXED_SHARE = 0.5
KEYS = ("q1", "q2", "q3", "q4", "what_to_do")
QUESTIONS = {
    "q1": "Are all entries of the vector probabilities, or only the top one?",
    "q2": "Does cross-entropy = maximum likelihood hold beyond one-hot labels?",
    "q3": "Is the top label's confidence the probability that the prediction is right?",
    "q4": "What do entropy and bits add?",
    "what_to_do": "What to do",
}
#: the HTML section that shows each answer's evidence
SECTIONS = {"q1": "classwise", "q2": "bits", "q3": "reliability", "q4": "bits",
            "what_to_do": "recommendation"}


@dataclass(frozen=True)
class Answer:
    """One answer: ``key`` (q1..q4, what_to_do), its ``claim`` and ``numbers`` (plain
    floats, strings and lists, JSON-ready)."""

    key: str
    claim: str
    numbers: Mapping[str, Any] = field(default_factory=dict)

    @property
    def question(self) -> str:
        return QUESTIONS[self.key]

    @property
    def section(self) -> str:
        return SECTIONS[self.key]


def _p(test: Any) -> float | None:
    if test is None:
        return None
    p = float(getattr(test, "p_value", math.nan))
    return p if math.isfinite(p) else None


def _tests_q1(ev: Any) -> dict[str, float]:
    """The p-values that bear on the non-top entries: classwise consistency test, SKCE and
    the ranked groups' z-tests (those available)."""
    out: dict[str, float] = {}
    p = _p(ev.tests.get("classwise_ece"))
    if p is not None:
        out["classwise consistency test"] = p
    p = _p(ev.skce)
    if p is not None:
        out["SKCE test"] = p
    if ev.ranked is not None:
        for g in ev.ranked.groups:
            if math.isfinite(g.p_value):
                out[f"{g.name} test"] = g.p_value
    return out


def rejections(analysis: Any) -> dict[str, float]:
    """Every test of the analysis's ``before`` evaluation that rejects calibration at its
    level: name -> p-value."""
    ev = analysis.before
    alpha = 1 - analysis.settings.level
    tests = dict(_tests_q1(ev))
    p = _p(ev.tests.get("ece"))
    if p is not None:
        tests["top-label consistency test"] = p
    return {k: v for k, v in tests.items() if v < alpha}


def _where(reliability: Any) -> dict[str, Any]:
    """The bins whose Wilson interval of accuracy excludes their mean confidence: their
    confidence range and their gaps conf_b - acc_b."""
    r = reliability
    ok = r.nonempty & np.isfinite(r.low) & np.isfinite(r.high)
    outside = ok & ((r.confidence < r.low) | (r.confidence > r.high))
    if not np.any(outside):
        return {"bins_outside": 0, "bins_nonempty": int(np.sum(r.nonempty))}
    idx = np.flatnonzero(outside)
    gaps = r.gap[idx]
    return {"bins_outside": int(idx.size), "bins_nonempty": int(np.sum(r.nonempty)),
            "outside_from": float(r.edges[idx[0]]), "outside_to": float(r.edges[idx[-1] + 1]),
            "outside_gap_min": float(np.min(gaps)), "outside_gap_max": float(np.max(gaps)),
            "outside_share": float(np.sum(r.share[idx]))}


def _q3(analysis: Any) -> Answer:
    ev = analysis.before
    r = ev.report
    alpha = 1 - analysis.settings.level
    gap = ev.mean_confidence - r.accuracy
    iv = ev.intervals.get("ece")
    test = ev.tests.get("ece")
    p = _p(test)
    numbers: dict[str, Any] = {
        "mean_confidence": ev.mean_confidence, "accuracy": float(r.accuracy),
        "gap_points": gap * 100, "ece": float(r.ece),
        "ece_estimate": None if iv is None else float(iv.estimate),
        "ece_low": None if iv is None else float(iv.low),
        "ece_high": None if iv is None else float(iv.high),
        "ece_upper": None if iv is None else float(iv.upper),
        "ece_interval_method": None if iv is None else iv.method,
        "level": analysis.settings.level,
        "p_value": p, "n_resamples": None if test is None else int(test.n_resamples),
        **_where(ev.reliability)}
    if analysis.after is not None:
        a = analysis.after
        cal = analysis.calibration
        numbers["after_label"] = a.label
        numbers["after_source"] = "" if cal is None else cal.source
        numbers["after_gap_points"] = (a.mean_confidence - a.report.accuracy) * 100
        numbers["after_ece"] = float(a.report.ece)
        numbers["after_p_value"] = _p(a.tests.get("ece"))
        numbers["nll"] = None if r.nll is None else float(r.nll)
        numbers["after_nll"] = None if a.report.nll is None else float(a.report.nll)
        numbers["unit"] = r.unit
    if p is not None and p >= alpha:
        claim = "calibrated"
    elif abs(gap) < MIXED_SHARE * float(r.ece):
        claim = "mixed"  # errors of both signs: the mean gap is a small part of the ECE
    else:
        claim = "over-confident" if gap > 0 else "under-confident"
    if p is None and claim != "calibrated":
        claim = "untested-" + claim
    return Answer("q3", claim, numbers)


def _q1(analysis: Any) -> Answer:
    ev = analysis.before
    r = ev.report
    alpha = 1 - analysis.settings.level
    tests = _tests_q1(ev)
    numbers: dict[str, Any] = {
        "classwise_ece": None if r.classwise_ece is None else float(r.classwise_ece),
        "class_conditional_ece": float(r.class_conditional_ece),
        "tests": dict(tests)}
    if ev.skce is not None and math.isfinite(ev.skce.p_value):
        numbers["skce"] = float(ev.skce.estimate)
        numbers["skce_std_error"] = float(ev.skce.std_error)
    if ev.ranked is not None:
        numbers["ranked"] = [
            {"group": g.name, "mean_probability": g.mean_probability,
             "frequency": g.frequency, "gap": g.gap, "ece": g.ece,
             "p_value": g.p_value if math.isfinite(g.p_value) else None}
            for g in ev.ranked.groups]
    if ev.classes is not None and r.n_classes > 2:
        worst = int(np.argmax(ev.classes.ece))
        numbers["worst_class"] = ev.classes.names[worst]
        numbers["worst_class_ece"] = float(ev.classes.ece[worst])
    if ev.classes is None:
        claim = "not-applicable"
    elif not tests:
        claim = "untested"
    elif all(p >= alpha for p in tests.values()):
        claim = "calibrated"
    else:
        claim = "miscalibrated"
        numbers["rejected_by"] = sorted(k for k, p in tests.items() if p < alpha)
    return Answer("q1", claim, numbers)


def _q2(analysis: Any) -> Answer:
    ev = analysis.before
    r = ev.report
    if r.targets == "labels" or r.entropy is None or r.kl is None:
        return Answer("q2", "not-applicable", {"targets": r.targets})
    ce = float(r.entropy) + float(r.kl)
    return Answer("q2", "soft", {"targets": r.targets, "cross_entropy": ce,
                                 "entropy": float(r.entropy), "kl": float(r.kl),
                                 "targets_share": float(r.entropy) / ce if ce > 0 else None,
                                 "unit": r.unit})


def _q4(analysis: Any) -> Answer:
    rec = analysis.recoverable
    d = analysis.before.decomposition
    if rec is None and d is None:
        return Answer("q4", "not-applicable", {})
    if rec is None:  # streamed: the temperature split only
        numbers = {"unit": d.unit, "score": d.score, "unc": d.unc, "dsc": d.dsc, "mcb": d.mcb,
                   "family": "temperature" if d.mcb > 0 else None, "temperature_mcb": d.mcb,
                   "held_out": {}, "estimator": "in-sample"}
    else:
        numbers = {"unit": rec.unit, "score": rec.score, "unc": rec.unc, "dsc": rec.dsc,
                   "mcb": rec.mcb, "family": rec.family, "temperature_mcb": rec.temperature,
                   "held_out": dict(rec.held_out), "n_folds": rec.n_folds,
                   "left_out": list(rec.left_out),
                   "estimator": f"{rec.n_folds}-fold cross-fitting on these rows"}
    share = numbers["mcb"] / numbers["score"] if numbers["score"] > 0 else 0.0
    numbers["mcb_share"] = share
    helps = analysis.recommendation is not None and analysis.recommendation.helps
    quiet = not rejections(analysis) and not helps
    claim = "negligible" if share < NEGLIGIBLE_SHARE and quiet else "miscalibrated"
    if numbers["mcb"] <= 0 and quiet:
        claim = "negligible"
    return Answer("q4", claim, numbers)


def _what_to_do(analysis: Any) -> Answer:
    rec = analysis.recommendation
    if rec is None:
        q4 = analysis.recoverable
        numbers: dict[str, Any] = {"method": None, "multiclass": None, "command": None,
                                   "streamed": analysis.settings.n_folds == 0,
                                   "top_label": analysis.before.report.inputs == "confidences"}
        if q4 is not None:
            numbers.update(recoverable=q4.mcb, family=q4.family, unit=q4.unit)
        return Answer("what_to_do", "needs-fit", numbers)
    b = rec.best
    numbers = {
        "method": None if b is None else b.method,
        "multiclass": None if b is None else b.multiclass,
        "name": None if b is None else b.name,
        "command": rec.command(), "source": rec.source, "unit": rec.unit,
        "nll_before": rec.nll_before, "nll_after": None if b is None else b.nll,
        "ece_before": rec.ece_before, "ece_after": None if b is None else b.ece,
        "accuracy_before": rec.accuracy_before,
        "accuracy_after": None if b is None else b.accuracy,
        "gain": None if b is None else b.gain, "gain_se": None if b is None else b.gain_se,
        "mean_confidence_after": None if b is None else b.mean_confidence,
        "candidates": [{"name": c.name, "method": c.method, "multiclass": c.multiclass,
                        "nll": c.nll, "ece": c.ece, "accuracy": c.accuracy,
                        "gain": c.gain, "gain_se": c.gain_se, "excluded": c.excluded}
                       for c in rec.candidates],
        "left_out": list(rec.left_out)}
    if b is not None:
        numbers["after_gap_points"] = (b.mean_confidence - b.accuracy) * 100
    alt = rec.for_confidence
    numbers["for_confidence"] = None if alt is None else {
        "name": alt.name, "method": alt.method, "multiclass": alt.multiclass, "nll": alt.nll,
        "ece": alt.ece, "accuracy": alt.accuracy,
        "after_gap_points": (alt.mean_confidence - alt.accuracy) * 100,
        "command": rec.command(candidate=alt)}
    return Answer("what_to_do", "recalibrate" if rec.helps else "nothing-helps", numbers)


def answers(analysis: Any, /) -> dict[str, Answer]:
    """The answers of an :class:`~trueprob.analysis.Analysis`: q1..q4 and what_to_do.

    Examples
    --------
    >>> from trueprob.analysis import analyze
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=(2000, 3)) * 2
    >>> q = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    >>> y = (q.cumsum(1) < rng.random((2000, 1))).sum(1)
    >>> a = answers(analyze(y, logits=3 * z, n_replicates=20, n_resamples=99, quiet=True))
    >>> a["q3"].claim, a["q4"].claim, a["what_to_do"].claim
    ('over-confident', 'miscalibrated', 'needs-fit')
    >>> contradictions(analyze(y, logits=3 * z, n_replicates=20, n_resamples=99, quiet=True),
    ...                a)
    ()
    """
    return {"q1": _q1(analysis), "q2": _q2(analysis), "q3": _q3(analysis), "q4": _q4(analysis),
            "what_to_do": _what_to_do(analysis)}


# =========================================================================== the check
#: words a sentence may use only with the claim named
CLAIM_WORDS = {"consistent with calibration": "calibrated", "negligible": "negligible",
               "nothing to fix": "nothing-helps"}


def contradictions(analysis: Any, given: Mapping[str, Answer], /,
                   sentences: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """What in ``given`` (and in the rendered ``sentences``, key -> text) contradicts the
    tests and held-out numbers of ``analysis``; empty when the verdict is consistent.

    Checked: no "calibrated" claim (q1, q3) where a test of that claim rejects at the
    analysis's level; no "negligible" MCB (q4) where any test rejects, where a held-out
    recalibration recovers more than the stated MCB, or where MCB is at least
    :data:`NEGLIGIBLE_SHARE` of the log loss; the stated MCB at least the recommendation's
    held-out gain; "nothing helps" only when the best candidate's gain is not significant,
    and the recommended method the admissible candidate with the lowest log loss; a stated
    direction after recalibration equal to the sign of mean confidence - accuracy; What to do
    starting from the ECE and log loss the tables show; a "within G points" of the accuracy
    (q3) that holds for the unrounded gap; and each sentence using a claim's words only with
    that claim.
    """
    out: list[str] = []
    alpha = 1 - analysis.settings.level
    ev = analysis.before
    q1, q3, q4, todo = (given.get(k) for k in ("q1", "q3", "q4", "what_to_do"))
    if q3 is not None and q3.claim == "calibrated":
        p = _p(ev.tests.get("ece"))
        if p is not None and p < alpha:
            out.append(f"q3 claims the top label is calibrated but its consistency test "
                       f"gives p = {p:.3g} < {alpha:g}")
    if q3 is not None and q3.claim.removeprefix("untested-") in ("over-confident",
                                                                  "under-confident"):
        gap = ev.mean_confidence - ev.report.accuracy
        if (gap > 0) != q3.claim.endswith("over-confident"):
            out.append(f"q3 claims {q3.claim} but mean confidence - accuracy = {gap:+.4f}")
    if q1 is not None and q1.claim == "calibrated":
        bad = {k: p for k, p in _tests_q1(ev).items() if p < alpha}
        if bad:
            out.append(f"q1 claims the other entries are calibrated but "
                       f"{', '.join(f'{k} (p = {p:.3g})' for k, p in sorted(bad.items()))} "
                       f"reject(s)")
    rec = analysis.recommendation
    if q4 is not None and q4.claim != "not-applicable":
        mcb = float(q4.numbers.get("mcb", 0.0))
        if q4.claim == "negligible":
            rej = rejections(analysis)
            if rej:
                out.append(f"q4 calls the miscalibration negligible but "
                           f"{', '.join(sorted(rej))} reject(s) calibration")
            if q4.numbers.get("mcb_share", 0.0) >= NEGLIGIBLE_SHARE and mcb > 0:
                out.append(f"q4 calls MCB = {mcb:.4g} negligible, "
                           f"{q4.numbers['mcb_share']:.1%} of the log loss")
        # 1e-6: the gain and MCB are computed from float32 inputs by two summation orders
        if rec is not None and rec.best is not None and rec.best.gain > mcb + 1e-6:
            out.append(f"q4 states MCB = {mcb:.4g} but {rec.best.name} fitted on the "
                       f"calibration set recovers {rec.best.gain:.4g} held out")
    if todo is not None and rec is not None:
        # "before" in What to do is the model the tables show: the same ECE and log loss
        for key, value in (("ece_before", ev.report.ece), ("nll_before", ev.report.nll)):
            said = todo.numbers.get(key)
            if said is not None and value is not None and not math.isclose(
                    float(said), float(value), rel_tol=1e-9, abs_tol=1e-12):
                out.append(f"what_to_do starts from {key} = {float(said):.6g} but the report's "
                           f"tables give {float(value):.6g}")
        if todo.claim == "nothing-helps" and rec.helps:
            out.append(f"what_to_do says nothing helps but {rec.best.name if rec.best else '?'}"
                       f" lowers the log loss significantly")
        if todo.claim == "recalibrate":
            admissible = [c for c in rec.candidates
                          if c.excluded is None and math.isfinite(c.nll)]
            best = min(admissible, key=lambda c: c.nll) if admissible else None
            if best is None or todo.numbers.get("name") != best.name:
                out.append(f"what_to_do recommends {todo.numbers.get('name')} but the lowest "
                           f"held-out log loss is {best.name if best else 'nobody'}'s")
            elif not best.significant:
                out.append(f"what_to_do recommends {best.name} though its gain "
                           f"{best.gain:.4g} is within {best.gain_se:.2g} x 2 of zero")
    if sentences:
        # "within G points" of the accuracy is a bound: it must hold for the unrounded gap
        points = 100 * abs(ev.mean_confidence - ev.report.accuracy)
        for match in re.finditer(r"within (\d+(?:\.\d+)?) points", sentences.get("q3", "")):
            if float(match.group(1)) < points:
                out.append(f"the q3 sentence says the mean confidence is within "
                           f"{match.group(1)} points of the accuracy but the gap is "
                           f"{points:.4f} points")
        for key, text in sentences.items():
            claim = given[key].claim if key in given else None
            for words, needs in CLAIM_WORDS.items():
                if words in text and claim != needs:
                    out.append(f"the {key} sentence says {words!r} but its claim is {claim!r}")
    return tuple(out)


def to_data(given: Mapping[str, Answer], sentences: Mapping[str, str] | None = None
            ) -> dict[str, dict[str, Any]]:
    """The answers as plain data: key -> {question, section, claim, sentence, ...numbers}."""
    out = {}
    for key in KEYS:
        a = given[key]
        entry: dict[str, Any] = {"question": a.question, "section": a.section,
                                 "claim": a.claim}
        if sentences is not None and key in sentences:
            entry["sentence"] = sentences[key]
        entry.update(a.numbers)
        out[key] = entry
    return out


__all__ = ["KEYS", "NEGLIGIBLE_SHARE", "QUESTIONS", "SECTIONS", "Answer", "answers",
           "contradictions", "rejections", "to_data"]
