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

import shlex
from typing import Any

from trueprob._format import fixed
from trueprob.analysis.answers import Answer, answers, contradictions, to_data
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
           "diagram_data", "p_text", "render_json", "sentences", "verdict", "verdict_data"]


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
    return fixed(x, digits)  # the project's one number format: never "-0.000"


#: how each answer's sentence begins
LEADS = {"q1": "Q1, all entries", "q2": "Q2, beyond one-hot", "q3": "Q3, top label",
         "q4": "Q4, bits", "what_to_do": "What to do"}


def _pv(p: float | None, n_resamples: int | None = None) -> str:
    if p is None:
        return "no test"
    if n_resamples is not None:
        return p_text(p, n_resamples)
    return f"p = {p:.2g}" if p >= 0.001 else "p < 0.001"


def _q3(a: Answer, analysis: Analysis) -> str:
    n = a.numbers
    level = n["level"]
    ece = f"ECE {_num(n['ece'], 4)}"
    if n.get("ece_low") is not None:
        about = n.get("ece_estimate", n["ece"])
        if about != n["ece"]:  # a bias-corrected interval is about the corrected value
            ece += (f"; bias-corrected {_num(about, 4)}, {level:.0%} interval "
                    f"{_num(n['ece_low'], 4)} to {_num(n['ece_high'], 4)}, at most "
                    f"{_num(n['ece_upper'], 4)} with {level:.0%} confidence")
        else:
            ece += (f" ({level:.0%} interval {_num(n['ece_low'], 4)} to "
                    f"{_num(n['ece_high'], 4)})")
    test = (f"{_pv(n['p_value'], n['n_resamples'])} (consistency test)"
            if n["p_value"] is not None
            else "not tested (the consistency test needs hard labels and whole vectors)")
    gap = n["gap_points"]
    if a.claim == "calibrated":
        text = (f"its confidence is consistent with calibration: the mean confidence "
                f"({n['mean_confidence']:.2%}) is {abs(gap):.2f} points "
                f"{'above' if gap > 0 else 'below'} the accuracy ({n['accuracy']:.2%}); {ece}, "
                f"{test}")
    elif a.claim.endswith("mixed"):  # small gaps: two decimals, so the numbers add up
        text = (f"the top label is miscalibrated in both directions: its mean confidence "
                f"({n['mean_confidence']:.2%}) is {abs(gap):.2f} points "
                f"{'above' if gap > 0 else 'below'} the accuracy ({n['accuracy']:.2%}), but "
                f"{ece}, {test}")
    else:
        direction = "over-confident" if gap > 0 else "under-confident"
        text = (f"the top label is {direction} by {abs(gap):.1f} points on average (mean "
                f"confidence {n['mean_confidence']:.1%}, accuracy {n['accuracy']:.1%}); {ece}, "
                f"{test}")
        if n.get("bins_outside"):
            text += (f"; in {n['bins_outside']} of {n['bins_nonempty']} bins, confidences "
                     f"{n['outside_from']:.2f} to {n['outside_to']:.2f} "
                     f"({n['outside_share']:.0%} of the rows), the accuracy interval excludes "
                     f"the confidence (gaps {n['outside_gap_min']:+.2f} to "
                     f"{n['outside_gap_max']:+.2f})")
    if n.get("after_label") is not None:
        after_gap = n["after_gap_points"]
        p_after = n.get("after_p_value")
        still = ("" if p_after is None else
                 f", {_pv(p_after, n['n_resamples'])}")
        where = f" ({n['after_source']})" if n.get("after_source") else ""
        who = n["after_label"]
        who = who[0].upper() + who[1:]
        loss = ("" if n.get("nll") is None or n.get("after_nll") is None else
                f"the log loss goes from {_num(n['nll'])} to {_num(n['after_nll'])} "
                f"{n['unit']} per example, ")
        text += (f". After {who}{where} {loss}the ECE from {_num(n['ece'], 4)} to "
                 f"{_num(n['after_ece'], 4)}, and the top label is "
                 f"{'over' if after_gap > 0 else 'under'}-confident by {abs(after_gap):.1f} "
                 f"points{still}")
    return text + "."


def _share(x: float) -> str:
    """A share in percent, with two decimals below 1 % (so 0.03 % does not print as 0.0 %)."""
    return f"{x:.1%}" if abs(x) >= 0.01 else f"{x:.2%}"


def _q1(a: Answer, analysis: Analysis) -> str:
    n = a.numbers
    if a.claim == "not-applicable":
        return "not answerable: only top-label confidences were given, not the whole vector."
    parts = []
    for g in n.get("ranked", []):
        if g["group"] == "below the top":
            continue
        parts.append(f"the {g['group'].replace('rank ', '')}"
                     f"{'nd' if g['group'] == 'rank 2' else 'rd'}-ranked probability averages "
                     f"{_share(g['mean_probability'])} against a frequency of "
                     f"{_share(g['frequency'])} "
                     f"(ECE {_num(g['ece'], 4)}, {_pv(g['p_value'])})")
    pooled = [g for g in n.get("ranked", []) if g["group"] == "below the top"]
    if pooled:
        g = pooled[0]
        parts.append(f"all non-top entries pooled have ECE {_num(g['ece'], 4)} "
                     f"({_pv(g['p_value'])})")
    tests = n.get("tests", {})
    cw = n.get("classwise_ece")
    if cw is not None:
        p = tests.get("classwise consistency test")
        parts.append(f"the classwise ECE is {_num(cw, 4)}"
                     + ("" if p is None else f" ({_pv(p)}, consistency test)")
                     + (f", worst {n['worst_class']} ({_num(n['worst_class_ece'], 4)})"
                        if "worst_class" in n else ""))
    parts.append(f"the class-conditional ECE {_num(n['class_conditional_ece'], 4)}")
    if "skce" in n:
        parts.append(f"the whole-vector SKCE {n['skce']:.2e} ± {n['skce_std_error']:.1e} "
                     f"({_pv(tests.get('SKCE test'))})")
    head = {"calibrated": "the other entries are consistent with calibration",
            "miscalibrated": "the other entries are not calibrated either (rejected by "
                             + ", ".join(n.get("rejected_by", [])) + ")",
            "untested": "the other entries were not tested"}[a.claim]
    return f"{head}: " + "; ".join(parts) + "."


def _q2(a: Answer, analysis: Analysis) -> str:
    n = a.numbers
    if a.claim == "not-applicable":
        return ("with one-hot labels, cross-entropy is the negative log-likelihood of the "
                "labels; whether it is also maximum likelihood beyond one-hot needs soft "
                "labels or counts (e.g. annotators' votes), which these data do not have.")
    return (f"of the {_num(n['cross_entropy'])} {n['unit']} cross-entropy per example, "
            f"{_num(n['entropy'])} ({n['targets_share']:.0%}) are the {n['targets']}' own "
            f"entropy H(p), the annotators' disagreement that no model can remove, and "
            f"{_num(n['kl'])} are KL(p || q), what the model costs.")


def _q4(a: Answer, analysis: Analysis) -> str:
    n = a.numbers
    if a.claim == "not-applicable":
        return "no bits: the log-loss split needs full probability vectors with a finite log loss."
    unit = n["unit"]
    family = n.get("family")
    t = n.get("temperature_mcb")
    t_text = "" if t is None else f"; temperature alone recovers {_num(t)}"
    if a.claim == "negligible":
        lead = (f"the miscalibration is negligible: MCB {_num(n['mcb'], 4)} of the "
                f"{_num(n['score'])} {unit} per example")
    elif n.get("estimator") == "in-sample":
        how = ("no temperature recovers any" if family is None else
               "a temperature fitted on all these rows (in-sample) recovers it")
        lead = (f"{_num(n['mcb'], 4)} of the {_num(n['score'])} {unit} per example of log "
                f"loss are miscalibration (MCB, {n['mcb_share']:.1%}): {how}")
        t_text = ""
    else:
        how = ("no held-out map recovers any" if family is None else
               f"{family} recovers it held out ({n['estimator']})"
               if not str(family).startswith("fitted on VAL") else
               f"{family.replace('fitted on VAL: ', '')} fitted on the calibration set "
               f"recovers it on these rows")
        lead = (f"{_num(n['mcb'], 4)} of the {_num(n['score'])} {unit} per example of log "
                f"loss are miscalibration (MCB, {n['mcb_share']:.1%}): {how}")
    return (f"{lead}{t_text}. The model resolves {_num(n['dsc'])} of the {_num(n['unc'])} "
            f"{unit} of label entropy (log loss = UNC - DSC + MCB).")


def _what_to_do(a: Answer, analysis: Analysis) -> str:
    n = a.numbers
    if a.claim == "needs-fit" and n.get("streamed"):
        return ("a streamed report does not compare recalibration maps; compare them with "
                "trueprob compare --fit VAL --eval FILE on files that fit in memory (or a "
                "sample).")
    if a.claim == "needs-fit" and n.get("top_label"):
        src = shlex.quote(analysis.source)
        return (f"compare the top-label maps fitted on a held-out split: trueprob compare --fit "
                f"VAL --eval {src}, naming the same --confidences/--predictions columns; fit "
                f"the best with trueprob fit -m METHOD VAL --confidences ... --predictions ... "
                f"-o cal.json, and check it with trueprob evaluate {src} --calibrator cal.json "
                f"(the report does not refit top-label outputs).")
    if a.claim == "needs-fit":
        hint = ""
        if n.get("recoverable") is not None and n["recoverable"] > 0:
            hint = (f" Held out on these rows, {n['family']} recovers {_num(n['recoverable'], 4)}"
                    f" {n['unit']} per example.")
        return ("run the report with --fit VAL (a held-out calibration split) to compare "
                "recalibration maps and get one that works." + hint)
    unit = n["unit"]
    if a.claim == "nothing-helps" or n.get("method") is None:
        best = ("" if n.get("name") is None else
                f" (best: {n['name']}, {n['gain']:+.4f} ± {n['gain_se']:.4f} {unit})")
        return (f"no recalibration fitted on {n['source']} lowers the log loss significantly "
                f"on these rows{best}: leave the model as it is.")
    after = n["after_gap_points"]
    alt = n.get("for_confidence")
    also = "" if not alt else (
        f" It lowers the log loss most but leaves the ECE at {_num(n['ece_after'], 4)}; where "
        f"the top-label confidence is what is read, {alt['name']} takes the ECE to "
        f"{_num(alt['ece'], 4)} (log loss {_num(alt['nll'], 4)} {unit}, the top label "
        f"{'over' if alt['after_gap_points'] > 0 else 'under'}-confident by "
        f"{abs(alt['after_gap_points']):.1f} points): {alt['command']}")
    return (f"recalibrate with {n['name']}: fitted on {n['source']}, on these rows it takes "
            f"the log loss from {_num(n['nll_before'], 4)} to {_num(n['nll_after'], 4)} {unit} "
            f"(-{_num(n['gain'], 4)} ± {_num(n['gain_se'], 4)}), the ECE from "
            f"{_num(n['ece_before'], 4)} to {_num(n['ece_after'], 4)} and the accuracy from "
            f"{n['accuracy_before']:.2%} to {n['accuracy_after']:.2%}; after it the top label "
            f"is {'over' if after > 0 else 'under'}-confident by {abs(after):.1f} points. "
            f"Command: {n['command']}" + (f".{also}" if also else ""))


RENDER = {"q1": _q1, "q2": _q2, "q3": _q3, "q4": _q4, "what_to_do": _what_to_do}


def sentences(analysis: Analysis, given: dict[str, Answer] | None = None, /
              ) -> dict[str, str]:
    """The sentence of each answer (key -> text, without its lead)."""
    given = answers(analysis) if given is None else given
    return {k: RENDER[k](a, analysis) for k, a in given.items()}


def verdict(analysis: Analysis, /) -> tuple[str, ...]:
    """The verdict: one sentence per question, Q1 to Q4, then "What to do".

    Each sentence begins with its lead ("Q3, top label: ...") and states its numbers with
    their interval or test (:mod:`trueprob.analysis.answers` computes them):

    - Q1: the 2nd and 3rd ranked probabilities against their frequencies, all non-top entries
      pooled, the classwise ECE with its consistency test, the class-conditional ECE and the
      whole-vector SKCE test;
    - Q2: CE = H(p) + KL(p || q) with the targets' share (soft targets, counts);
    - Q3: direction and size of the top-label gap, ECE with interval and test, where in
      confidence the bins are wrong, and after the report's recalibration;
    - Q4: log loss = UNC - DSC + MCB with MCB from the best held-out map, named, beside
      temperature's;
    - What to do: the recommended map with its held-out numbers and ``trueprob fit`` command.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=(2000, 3)) * 2
    >>> q = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    >>> y = (q.cumsum(1) < rng.random((2000, 1))).sum(1)
    >>> lines = verdict(analyze(y, logits=3 * z, n_replicates=20, n_resamples=99, quiet=True))
    >>> [line.split(":")[0] for line in lines]
    ['Q1, all entries', 'Q2, beyond one-hot', 'Q3, top label', 'Q4, bits', 'What to do']
    >>> lines[2].startswith("Q3, top label: the top label is over-confident by")
    True
    """
    said = sentences(analysis)
    return tuple(f"{LEADS[k]}: {said[k]}" for k in said)


def verdict_data(analysis: Analysis, /) -> dict[str, Any]:
    """The verdict as data: ``answers`` (q1..q4, what_to_do: question, section, claim,
    sentence and numbers) and ``contradictions`` (the self-consistency check, empty when the
    verdict agrees with every test of the analysis)."""
    given = answers(analysis)
    said = sentences(analysis, given)
    return {"answers": to_data(given, said),
            "contradictions": list(contradictions(analysis, given, said))}


def render_json(analysis: Analysis, /, *, indent: int | None = 2) -> str:
    """The report as one JSON document: ``source``, ``version``, ``settings``, ``answers``
    (q1, q2, q3, q4, what_to_do: each its question, section, claim, sentence and numbers;
    ``what_to_do`` has method, multiclass, command, nll_before, nll_after, ece_before,
    ece_after, accuracy_before and accuracy_after, held out on the report's rows),
    ``contradictions`` (empty when the verdict agrees with every test), ``verdict`` (the
    sentences), ``before`` / ``after`` (the Reports, as ``trueprob evaluate --format json``)
    and ``notes``. NaN becomes null and infinities "inf" / "-inf".

    Examples
    --------
    >>> import json, numpy as np
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=(500, 3)) * 2
    >>> q = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    >>> y = (q.cumsum(1) < rng.random((500, 1))).sum(1)
    >>> doc = json.loads(render_json(analyze(y, logits=z, n_replicates=20, n_resamples=20,
    ...                                      quiet=True)))
    >>> sorted(doc["answers"]), doc["answers"]["what_to_do"]["claim"]
    (['q1', 'q2', 'q3', 'q4', 'what_to_do'], 'needs-fit')
    """
    import dataclasses
    import json

    from trueprob.results import json_safe

    data = verdict_data(analysis)
    doc = {
        "source": analysis.source, "version": analysis.version,
        "settings": dataclasses.asdict(analysis.settings),
        "answers": data["answers"], "contradictions": data["contradictions"],
        "verdict": list(verdict(analysis)),
        "before": analysis.before.report.to_dict(),
        "after": None if analysis.after is None else analysis.after.report.to_dict(),
        "calibration": (None if analysis.calibration is None
                        else dataclasses.asdict(analysis.calibration)),
        "notes": list(analysis.notes) + [n for ev in analysis.evaluations for n in ev.notes],
    }
    return json.dumps(json_safe(doc), indent=indent, allow_nan=False) + "\n"
