"""The report beyond one-hot classification, rendered: multi-label and regression.

Like the classification report (:mod:`trueprob.report.verdict` and
:mod:`trueprob.report.html`), each task has an *analysis* that computes everything the report
shows (:mod:`trueprob.analysis.multilabel`, :mod:`trueprob.analysis.regression`; re-exported
here), and here a *verdict* whose every number is read from the same objects as the tables,
and two renderings: one self-contained HTML document (inline CSS, ``data:`` images, a
Content-Security-Policy that forbids any network access, no script) and GitHub-flavoured
Markdown (the verdict and the tables).

- Multi-label (:func:`analyze_multilabel`): the :class:`~trueprob.multilabel.MultilabelReport`
  (micro and macro NLL, Brier and the ECE family), the worst-calibrated labels with a small
  reliability diagram each, and every label in a table ordered by ECE, largest first. Whether
  a label is over- or under-confident is read from the sign of its bins' gaps (see
  :class:`LabelCalibration`).
- Regression (:func:`analyze_regression`): the :class:`~trueprob.regression.RegressionReport`
  (NLL, CRPS, PIT ECE, quantile calibration error, dispersion), the PIT histogram with the
  binomial band of a calibrated model, the coverage of central intervals and the quantile
  calibration curve, and their tables.

HTML sections (``id``): multi-label ``verdict``, ``summary``, ``worst``, ``labels``,
``settings``; regression ``verdict``, ``summary``, ``pit``, ``coverage``, ``settings``. With a
:class:`Recalibrated` (``trueprob report --task ... --fit VAL`` or ``--calibrator``), a
``recalibrated`` section after the summary sets the summary's numbers (and, for regression,
the coverage of each central interval) before and after the map.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from trueprob.analysis.multilabel import (
    DIRECTION_SHARE,
    LabelCalibration,
    MultilabelAnalysis,
    analyze_multilabel,
)
from trueprob.analysis.regression import CoverageCheck, RegressionAnalysis, analyze_regression

__all__ = ["DIRECTION_SHARE", "CoverageCheck", "LabelCalibration", "MultilabelAnalysis",
           "Recalibrated", "RegressionAnalysis", "analyze_multilabel", "analyze_regression",
           "multilabel_verdict", "regression_verdict", "render_multilabel_html",
           "render_multilabel_markdown", "render_regression_html",
           "render_regression_markdown"]


@dataclass(frozen=True)
class Recalibrated:
    """A task report's recalibrated predictions: ``description`` (which map, where it was
    fitted) and ``analysis``, the same analysis (multi-label or regression) of the
    recalibrated outputs of the report's rows."""

    description: str
    analysis: Any


#: Summary rows of the multi-label report: (Aggregate field, label, description).
MULTILABEL_ROWS = (
    ("nll", "log loss", "binary cross-entropy per (row, label)"),
    ("brier", "Brier", "mean (q - y)^2 per (row, label), binary form"),
    ("ece", "ECE", "expected calibration error of q against y"),
    ("mce", "MCE", "largest gap of a non-empty bin"),
    ("rmsce", "RMS calibration error", "root of the weighted mean squared gap"),
    ("ece_debiased", "debiased L2 error", "Kumar et al. 2019"),
)
#: Summary rows of the regression report: (RegressionReport field, label, description).
REGRESSION_ROWS = (
    ("nll", "log loss (NLL)", "mean -log f(y)"),
    ("crps", "CRPS", "continuous ranked probability score, in the units of y"),
    ("pit_ece", "PIT ECE", "mean |F_PIT(u) - u|: 0 when the PIT is uniform"),
    ("quantile_calibration_error", "quantile calibration error",
     "sum_j (p_j - share with F(y) <= p_j)^2 (Kuleshov et al. 2018)"),
    ("dispersion", "dispersion", "mean squared standardised residual: 1 when calibrated"),
)


def _pct(x: float) -> str:
    return f"{x:.1%}"


def multilabel_verdict(analysis: MultilabelAnalysis, /) -> tuple[str, ...]:
    """Plain-language sentences about a :class:`MultilabelAnalysis`.

    1. The micro and macro ECE and log loss (the summary table's numbers).
    2. The worst-calibrated label: its ECE, direction, extremity D and bias (mean probability
       against prevalence), and how many of its bins exclude the predicted probability from
       the Wilson interval of the observed frequency.
    3. The other worst labels with their ECE and direction.
    4. Infinite log losses, if any.
    """
    r = analysis.report
    unit = r.unit
    out = [f"Over {r.n_labels} labels and {r.n} rows, the micro ECE (all (row, label) pairs "
           f"pooled) is {r.micro.ece:.4f} and the macro ECE (mean over labels) "
           f"{r.macro.ece:.4f}; the log loss is {r.micro.nll:.3f} {unit} per (row, label) "
           f"pair (macro {r.macro.nll:.3f})."]
    worst = [c for c in analysis.labels if c.label in {w.label for w in r.worst}]
    if worst:
        c = worst[0]
        m = r.per_label[c.label]
        if c.direction in ("over-confident", "under-confident"):
            how = (f"{c.direction}: its probabilities are "
                   f"{'more' if c.extremity > 0 else 'less'} extreme than the observed "
                   f"frequencies by {abs(c.extremity):.3f} on average")
        elif c.direction == "calibrated":
            how = "calibrated in every bin"
        elif c.direction == "mixed":
            how = (f"with gaps of both signs (extremity {c.extremity:+.3f}, bias "
                   f"{c.bias:+.3f}): neither over- nor under-confident overall")
        else:
            how = (f"mostly biased: its probabilities are too "
                   f"{'high' if c.bias > 0 else 'low'} rather than too extreme or too mild "
                   f"(extremity {c.extremity:+.3f})")
        often = "too often" if c.bias > 0 else "too rarely"
        out.append(
            f"The worst-calibrated label is {c.name} (ECE {c.ece:.4f}), {how}; it is predicted "
            f"{abs(c.bias) * 100:.1f} points {often} (mean probability {_pct(m.mean_prob)}, "
            f"prevalence {_pct(m.prevalence)}), and in {c.bins_outside} of its "
            f"{c.bins_nonempty} non-empty bins the mean probability is outside the "
            f"{analysis.level:.0%} interval of the observed frequency.")
    if len(worst) > 1:
        rest = "; ".join(f"{c.name} (ECE {c.ece:.4f}, {c.direction})" for c in worst[1:])
        out.append(f"The next worst: {rest}.")
    if r.n_infinite_nll:
        out.append(f"{r.n_infinite_nll} (row, label) pairs give probability 0 to the observed "
                   f"value, so their log loss is infinite.")
    return tuple(out)


# =========================================================================== regression
def _pick(checks: Sequence[CoverageCheck]) -> CoverageCheck:
    """The check the verdict quotes: the nominal 90% interval if it is among them, else the
    one farthest from its band."""
    for c in checks:
        if abs(c.level - 0.9) < 1e-9:
            return c
    return max(checks, key=lambda c: max(c.low - c.observed, c.observed - c.high))


def regression_verdict(analysis: RegressionAnalysis, /) -> tuple[str, ...]:
    """Plain-language sentences about a :class:`RegressionAnalysis`.

    1. Coverage: whether the central intervals are too narrow, too wide or consistent with
       their nominal levels, quoting the nominal 90% interval (or the worst one) with the band
       of a calibrated model (the coverage table's numbers).
    2. Shape of the PIT histogram: the share of rows in its two outer bins against the
       expected share and band (a U shape: under-dispersed, too sharp; too few:
       over-dispersed), with the dispersion (1/W) sum_i w_i z_i^2 when it exists.
    3. Bias, when the median calibration level (p = 0.5) is outside its band: the share of
       observations below the predicted median.
    4. The scores: NLL, CRPS, PIT ECE and quantile calibration error.
    """
    from trueprob.analysis.regression import binomial_band

    r = analysis.report
    lvl = f"{analysis.level:.0%}"
    out: list[str] = []
    checks = analysis.checks
    narrow = [c for c in checks if c.status == "too narrow"]
    wide = [c for c in checks if c.status == "too wide"]

    def quote(c: CoverageCheck) -> str:
        return (f"the nominal {c.level:.0%} interval covers {_pct(c.observed)} of the "
                f"observations (a calibrated model: {_pct(c.low)} to {_pct(c.high)} at "
                f"{lvl})")

    if narrow and not wide:
        c = _pick(narrow)
        out.append(f"The predictive intervals are too narrow: {quote(c)}; "
                   f"{len(narrow)} of {len(checks)} central intervals cover too little.")
    elif wide and not narrow:
        c = _pick(wide)
        out.append(f"The predictive intervals are too wide: {quote(c)}; "
                   f"{len(wide)} of {len(checks)} central intervals cover too much.")
    elif wide and narrow:
        out.append(f"The predictive intervals have the wrong shape: {quote(_pick(narrow))} "
                   f"(too little), while {quote(_pick(wide))} (too much).")
    elif checks:
        out.append(f"The coverage of the central intervals is consistent with their nominal "
                   f"levels: {quote(_pick(checks))}.")
    p = analysis.pit
    b = p.observed.size
    if b >= 3:
        tails = float(p.observed[0] + p.observed[-1])
        expected = float(p.expected[0] + p.expected[-1])
        low, high = (float(v[0]) for v in binomial_band([expected], analysis.n_effective,
                                                        level=analysis.level))
        what = (f"{_pct(tails)} of the observations fall in the two outer bins of the PIT "
                f"histogram ({_pct(expected)} expected, {_pct(low)} to {_pct(high)} for a "
                f"calibrated model)")
        disp = ("" if r.dispersion is None else
                f"; the dispersion, the mean squared standardised residual, is "
                f"{r.dispersion:.3f} (1 for calibrated Gaussian predictions)")
        if tails > high:
            out.append(f"The PIT histogram is U-shaped: {what}, so the predictive "
                       f"distributions are under-dispersed (too sharp){disp}.")
        elif tails < low:
            out.append(f"The PIT histogram is hump-shaped: {what}, so the predictive "
                       f"distributions are over-dispersed (too wide){disp}.")
        else:
            out.append(f"The PIT histogram's tails are as a calibrated model's: {what}{disp}.")
    median = [c for c in r.calibration if abs(c.level - 0.5) < 1e-9]
    if median:
        m = median[0]
        low, high = (float(v[0]) for v in binomial_band([0.5], analysis.n_effective,
                                                        level=analysis.level))
        if not low <= m.observed <= high:
            side = "below" if m.observed > 0.5 else "above"
            out.append(f"The predictions are biased: {_pct(m.observed)} of the observations "
                       f"are at or below the predicted median (50% expected, {_pct(low)} to "
                       f"{_pct(high)} for a calibrated model), so the typical observation "
                       f"lies {side} the predicted centre.")
    nll = "" if r.nll is None else f"NLL {r.nll:.3f} {r.unit} and "
    out.append(f"Scores per observation: {nll}CRPS {r.crps:.4g}; PIT ECE {r.pit_ece:.4f}, "
               f"quantile calibration error {r.quantile_calibration_error:.4f}.")
    return tuple(out)


# =========================================================================== rendering
def _html_head(title: str, heading: str, meta: str) -> list[str]:
    from trueprob.report.html import CSP, CSS, _e

    return ["<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{_e(title)}</title><style>{CSS}</style></head><body><main>",
            f"<header><h1>{_e(heading)}</h1><p class='meta'>{_e(meta)}</p></header>"]


def _html_verdict(sentences: Sequence[str]) -> str:
    from trueprob.report.html import _e

    return ('<section id="verdict"><h2>Verdict</h2><ul>'
            + "".join(f"<li>{_e(s)}</li>" for s in sentences) + "</ul></section>")


def _html_table(head: Sequence[str], rows: Sequence[Sequence[str]],
                numeric_from: int = 1) -> str:
    """A table of already formatted cells (escaped here); columns from ``numeric_from`` on
    are right-aligned numbers."""
    from trueprob.report.html import _e

    th = "".join(f"<th>{_e(h)}</th>" for h in head)
    body = "".join(
        "<tr>" + "".join(f"<td class='num'>{_e(c)}</td>" if j >= numeric_from else
                         f"<td>{_e(c)}</td>" for j, c in enumerate(row)) + "</tr>"
        for row in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _html_tail(settings: Sequence[tuple[str, str]], version: str) -> list[str]:
    from trueprob.report.html import _e

    rows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in settings)
    return [f'<section id="settings"><h2>Settings</h2><table>{rows}</table></section>',
            f"<footer>Made by trueprob {_e(version)}. Definitions: docs/beyond-one-hot.md of "
            f"trueprob; every number above comes from one computation and is shown in the "
            f"verdict, the tables and the figures alike.</footer>",
            "</main></body></html>"]


def _check_format(image_format: str) -> None:
    if image_format not in ("svg", "png"):
        raise ValueError(f"image_format must be 'svg' or 'png'; got {image_format!r}")


def _md_document(title: str, meta: str, sentences: Sequence[str]) -> list[str]:
    return [f"## {title}", "", meta, "", "### Verdict", "", *(f"- {s}" for s in sentences),
            ""]


def _software() -> str:
    from trueprob.report.html import _software as software

    return software()


# --------------------------------------------------------------------------- multi-label
def multilabel_summary_rows(analysis: MultilabelAnalysis, /) -> list[list[str]]:
    """The summary table (metric, what it is, micro, macro), as the HTML and Markdown show it
    (four decimals)."""
    from trueprob.report.html import _f

    r = analysis.report
    return [[f"{label} ({r.unit})" if name == "nll" else label, what,
             _f(getattr(r.micro, name)), _f(getattr(r.macro, name))]
            for name, label, what in MULTILABEL_ROWS]


def multilabel_label_rows(analysis: MultilabelAnalysis, /) -> list[list[str]]:
    """The per-label table, every label, largest ECE first: rank, label, prevalence, mean
    probability, NLL, Brier, ECE, MCE, extremity D, bias, direction."""
    from trueprob.report.html import _f

    r = analysis.report
    rows = []
    for rank, c in enumerate(analysis.labels, 1):
        m = r.per_label[c.label]
        rows.append([str(rank), c.name, _f(m.prevalence), _f(m.mean_prob), _f(m.nll),
                     _f(m.brier), _f(m.ece), _f(m.mce), f"{c.extremity:+.4f}",
                     f"{c.bias:+.4f}", c.direction])
    return rows


LABEL_HEAD = ("rank", "label", "prevalence", "mean probability", "log loss", "Brier", "ECE",
              "MCE", "extremity D", "bias", "direction")


def _multilabel_settings(a: MultilabelAnalysis) -> list[tuple[str, str]]:
    r = a.report
    s = r.settings
    return [
        ("data", a.source or "(arrays)"),
        ("rows", f"{r.n} (total weight {r.weight:g})"),
        ("labels L", str(r.n_labels)),
        ("predictions", f"{r.inputs} (independent Bernoulli per label)"),
        ("reliability bins", f"{s.n_bins} equal-width bins, {s.closed}-closed, per label; "
                             f"micro: the per-label bins pooled"),
        ("unit of log scores", r.unit),
        ("bin intervals", f"Wilson score interval at the effective number of rows, level "
                          f"{a.level:g}"),
        ("direction", f"extremity D = sum_b (W_b/W) sign(conf_b - 1/2)(conf_b - acc_b) and "
                      f"bias = mean probability - prevalence, named when at least "
                      f"{DIRECTION_SHARE:g} of the label's ECE"),
        ("software", _software()),
        ("computed in", f"{a.seconds:.2f} s"),
    ]


def _worst_figure(a: MultilabelAnalysis, fmt: str) -> str | None:
    from trueprob.report.html import _e, _figure, _img
    from trueprob.report.plots.draw import plot_classwise_grid

    data = a.panels
    p = len(data.classes)
    if p == 0:
        return None
    cols = min(p, 5)
    rows = -(-p // cols)

    def draw(fig: Any) -> None:
        axes = fig.subplots(rows, cols, squeeze=False)
        plot_classwise_grid(data, ax=axes)
        fig.supxlabel("predicted probability of the label", fontsize=9)
        fig.supylabel("observed frequency of the label", fontsize=9)

    uri = _figure(draw, (1.9 * cols + 0.7, 1.95 * rows + 0.7), fmt,
                  margins=(0.7, 0.15, 0.6, 0.25), spacing=(0.25, 0.4))
    return _img(uri, f"Reliability diagrams of {data.selection}.",
                f"{_e(data.selection)}. Each panel: how often the label was present against "
                f"its predicted probability, per bin (area: share of rows; grey: "
                f"{data.level:.0%} Wilson interval); below the diagonal: the label is "
                f"predicted too often in that bin.", 1000)


def _worst_bins(a: MultilabelAnalysis) -> str:
    from trueprob.report.html import _e, _f

    r = a.report
    left, right = ("(", "]") if r.settings.closed == "right" else ("[", ")")
    parts = []
    for w in r.worst:
        rows = [[f"{left}{b.lower:.3f}, {b.upper:.3f}{right}", str(b.count), _f(b.weight, 1),
                 _f(b.confidence), _f(b.accuracy), _f(b.gap)] for b in w.bins if b.weight > 0]
        parts.append(f"<h3>{_e(w.name)} (ECE {w.ece:.4f})</h3>"
                     + _html_table(["bin", "rows", "weight", "mean probability",
                                    "observed frequency", "gap"], rows))
    return ("<details><summary>the worst labels' bins</summary>" + "".join(parts)
            + "</details>")


def render_multilabel_html(analysis: MultilabelAnalysis, /, *, image_format: str = "svg",
                           title: str | None = None,
                           recalibrated: Recalibrated | None = None) -> str:
    """The multi-label report as one self-contained HTML document (a string).

    Sections: ``verdict``, ``summary`` (micro and macro), ``worst`` (a reliability diagram per
    worst label and their bins), ``labels`` (every label, largest ECE first) and
    ``settings``. No script, every image a ``data:`` URI, CSS inline, and the
    Content-Security-Policy of :func:`trueprob.report.html.render_html`.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=(300, 4)); y = (rng.random((300, 4)) < 0.4).astype(int)
    >>> page = render_multilabel_html(analyze_multilabel(y, logits=z, n_worst=2))
    >>> page.startswith("<!doctype html>"), page.count('<img src="data:image/svg+xml;base64,')
    (True, 1)
    """
    _check_format(image_format)
    r = analysis.report
    source = analysis.source or "(arrays)"
    parts = _html_head(title if title is not None else f"trueprob multi-label report — {source}",
                       "Are these label probabilities probabilities?",
                       f"{source} · {r.n} rows · L = {r.n_labels} labels · {r.inputs} · "
                       f"trueprob {analysis.version}")
    parts.append(_html_verdict(multilabel_verdict(analysis)))
    parts.append('<section id="summary"><h2>Summary</h2>'
                 + _html_table(["metric", "what it is", "micro", "macro"],
                               multilabel_summary_rows(analysis), numeric_from=2)
                 + "<p class='note'>Micro: all (row, label) pairs pooled; macro: the mean over "
                   "labels of each label's value.</p></section>")
    if recalibrated is not None:
        parts.append(_html_recalibrated(recalibrated, MULTILABEL_RECAL_HEAD,
                                        multilabel_recalibrated_rows(analysis, recalibrated)))
    figure = _worst_figure(analysis, image_format)
    if figure is not None:
        parts.append('<section id="worst"><h2>Worst-calibrated labels</h2>' + figure
                     + _worst_bins(analysis) + "</section>")
    parts.append('<section id="labels"><h2>Per-label table</h2>'
                 "<p class='note'>Every label, largest ECE first. Extremity D &gt; 0: the "
                 "probabilities are more extreme than the frequencies (over-confident); bias "
                 "&gt; 0: the label is predicted too often.</p>"
                 + _html_table(LABEL_HEAD, multilabel_label_rows(analysis), numeric_from=2)
                 + "</section>")
    parts += _html_tail(_multilabel_settings(analysis), analysis.version)
    return "\n".join(parts) + "\n"


def render_multilabel_markdown(analysis: MultilabelAnalysis, /, *,
                               recalibrated: Recalibrated | None = None) -> str:
    """The multi-label report's verdict and tables as GitHub-flavoured Markdown.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=(300, 4)); y = (rng.random((300, 4)) < 0.4).astype(int)
    >>> render_multilabel_markdown(analyze_multilabel(y, logits=z)).splitlines()[0]
    '## trueprob multi-label report: (arrays)'
    """
    from trueprob.report.html import _md_table

    r = analysis.report
    lines = _md_document(f"trueprob multi-label report: {analysis.source or '(arrays)'}",
                         f"{r.n} rows, L = {r.n_labels} labels, {r.inputs}; "
                         f"{r.settings.n_bins} equal-width bins; log scores in {r.unit}; "
                         f"trueprob {analysis.version}", multilabel_verdict(analysis))
    lines += ["### Summary", ""]
    lines += _md_table(["metric", "what it is", "micro", "macro"],
                       multilabel_summary_rows(analysis))
    if recalibrated is not None:
        lines += _md_recalibrated(recalibrated, MULTILABEL_RECAL_HEAD,
                                  multilabel_recalibrated_rows(analysis, recalibrated))
    lines += ["", "### Per-label table (largest ECE first)", ""]
    lines += _md_table(LABEL_HEAD, multilabel_label_rows(analysis))
    lines += ["", "### Settings", ""]
    lines += _md_table(["setting", "value"], [[k, v] for k, v in _multilabel_settings(analysis)])
    lines += ["", "Diagrams: `trueprob report FILE --task multilabel -o report.html` (HTML "
                  "format).", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------- regression
def regression_summary_rows(analysis: RegressionAnalysis, /) -> list[list[str]]:
    """The summary table (metric, what it is, value), four decimals; "n/a" where the report
    has no value (a quantile set has no NLL and no dispersion)."""
    from trueprob.report.html import _f

    r = analysis.report
    rows = [["rows n", "observations", str(r.n)]]
    for name, label, what in REGRESSION_ROWS:
        shown = f"{label} ({r.unit})" if name == "nll" else label
        rows.append([shown, what, _f(getattr(r, name))])
    return rows


def coverage_rows(analysis: RegressionAnalysis, /) -> list[list[str]]:
    """Per nominal level a: observed share inside, the band of a calibrated model, mean
    width and the check's status."""
    from trueprob.report.html import _f

    widths = {c.level: c.mean_width for c in analysis.report.coverage}
    return [[f"{c.level:g}", _f(c.observed), f"{_f(c.low)} – {_f(c.high)}",
             _f(widths[c.level]), c.status] for c in analysis.checks]


def calibration_rows(analysis: RegressionAnalysis, /) -> list[list[str]]:
    """Per level p: the share of rows with F_i(y_i) <= p, its difference from p and the band."""
    from trueprob.report.html import _f

    d = analysis.coverage
    return [[f"{p:g}", _f(o), f"{o - p:+.4f}", f"{_f(lo)} – {_f(hi)}"]
            for p, o, lo, hi in zip(d.calibration_level, d.calibration_observed,
                                    d.calibration_low, d.calibration_high, strict=True)]


def pit_rows(analysis: RegressionAnalysis, /) -> list[list[str]]:
    """Per PIT bin: its levels, rows, observed and expected share and the band."""
    from trueprob.report.html import _f

    p = analysis.pit
    return [[f"({p.edges[j]:.3f}, {p.edges[j + 1]:.3f}]", str(int(p.count[j])),
             _f(p.observed[j]), _f(p.expected[j]), f"{_f(p.low[j])} – {_f(p.high[j])}"]
            for j in range(p.observed.size)]


COVERAGE_HEAD = ("nominal level", "observed share inside", "band of a calibrated model",
                 "mean width", "status")
CALIBRATION_HEAD = ("level p", "share with F(y) <= p", "share - p",
                    "band of a calibrated model")
PIT_HEAD = ("PIT bin", "rows", "observed share", "expected share", "band of a calibrated model")


def _regression_settings(a: RegressionAnalysis) -> list[tuple[str, str]]:
    r = a.report
    s = r.settings
    grid = (f"{s.pit_cells} cells (PIT ECE)" if "quantiles" not in r.family else
            "one cell per interval between the predicted quantiles")
    return [
        ("data", a.source or "(arrays)"),
        ("rows", f"{r.n} (total weight {r.weight:g})"),
        ("predictive family", r.family),
        ("unit of log scores", r.unit),
        ("PIT histogram", f"{s.n_pit_bins} bins; grid of {grid}"),
        ("calibration levels", ", ".join(f"{v:g}" for v in s.calibration_levels)),
        ("coverage levels", ", ".join(f"{v:g}" for v in s.coverage_levels) or "none"),
        ("bands", f"central binomial interval of a calibrated model, pointwise, level "
                  f"{a.level:g}, at {a.n_effective:.1f} effective rows"),
        ("software", _software()),
        ("computed in", f"{a.seconds:.2f} s"),
    ]


def _regression_figures(a: RegressionAnalysis, fmt: str) -> tuple[str, str]:
    from trueprob.report.html import _figure, _img
    from trueprob.report.plots.tasks import plot_coverage, plot_pit_histogram

    pit = _figure(lambda fig: plot_pit_histogram(a.pit, ax=fig.add_subplot()), (5.6, 3.9),
                  fmt, margins=(0.75, 0.2, 1.2, 0.35))
    b = a.pit.observed.size
    pit_img = _img(pit, f"PIT histogram in {b} bins with the share of a calibrated model and "
                        f"its band; PIT ECE {a.report.pit_ece:.4f}.",
                   f"Share of rows per PIT bin (hatched, red edge: outside the "
                   f"{a.level:.0%} band of a calibrated model); dashed: the calibrated share. "
                   f"A U shape means too-narrow predictive distributions, a hump too-wide "
                   f"ones, a slope a biased centre.", 560)
    cov = _figure(lambda fig: plot_coverage(a.coverage, ax=fig.subplots(1, 2)), (8.6, 4.3),
                  fmt, margins=(0.7, 0.2, 0.6, 0.35), spacing=(0.35, 0.2))
    cov_img = _img(cov, "Observed against nominal coverage of the central intervals, and the "
                        "share of rows below each predicted quantile against its level, with "
                        "the diagonal and the band of a calibrated model.",
                   f"Left: coverage of the central intervals (below the diagonal: too "
                   f"narrow). Right: quantile calibration. Grey: the {a.level:.0%} band of a "
                   f"calibrated model.", 860)
    return pit_img, cov_img


def render_regression_html(analysis: RegressionAnalysis, /, *, image_format: str = "svg",
                           title: str | None = None,
                           recalibrated: Recalibrated | None = None) -> str:
    """The regression report as one self-contained HTML document (a string).

    Sections: ``verdict``, ``summary``, ``pit`` (the PIT histogram and its table),
    ``coverage`` (the coverage plot, the coverage and calibration tables) and ``settings``.
    No script, every image a ``data:`` URI, CSS inline, and the Content-Security-Policy of
    :func:`trueprob.report.html.render_html`.

    Examples
    --------
    >>> import numpy as np
    >>> from trueprob.regression import Gaussian
    >>> rng = np.random.default_rng(0)
    >>> mu = rng.normal(size=500); y = mu + rng.normal(size=500)
    >>> page = render_regression_html(analyze_regression(y, Gaussian(mu, 1.0)))
    >>> page.count('<img src="data:image/svg+xml;base64,'), '<section id="coverage">' in page
    (2, True)
    """
    _check_format(image_format)
    r = analysis.report
    source = analysis.source or "(arrays)"
    parts = _html_head(title if title is not None else f"trueprob regression report — {source}",
                       "Are these predictive distributions calibrated?",
                       f"{source} · {r.n} rows · {r.family} predictions · trueprob "
                       f"{analysis.version}")
    parts.append(_html_verdict(regression_verdict(analysis)))
    parts.append('<section id="summary"><h2>Summary</h2>'
                 + _html_table(["metric", "what it is", "value"],
                               regression_summary_rows(analysis), numeric_from=2)
                 + "".join(f"<p class='note'>{name} not computed: {why}</p>"
                           for name, why in r.unavailable.items()) + "</section>")
    if recalibrated is not None:
        parts.append(_html_recalibrated(recalibrated, REGRESSION_RECAL_HEAD,
                                        regression_recalibrated_rows(analysis, recalibrated)))
    pit_img, cov_img = _regression_figures(analysis, image_format)
    parts.append('<section id="pit"><h2>PIT histogram</h2>' + pit_img
                 + "<details><summary>the PIT bins</summary>"
                 + _html_table(PIT_HEAD, pit_rows(analysis)) + "</details></section>")
    cov_table = (_html_table(COVERAGE_HEAD, coverage_rows(analysis)) if analysis.checks
                 else "<p class='note'>No coverage levels were requested.</p>")
    parts.append('<section id="coverage"><h2>Coverage and quantile calibration</h2>' + cov_img
                 + "<h3>Central intervals</h3>" + cov_table
                 + "<h3>Quantile calibration</h3>"
                 + _html_table(CALIBRATION_HEAD, calibration_rows(analysis)) + "</section>")
    parts += _html_tail(_regression_settings(analysis), analysis.version)
    return "\n".join(parts) + "\n"


def render_regression_markdown(analysis: RegressionAnalysis, /, *,
                               recalibrated: Recalibrated | None = None) -> str:
    """The regression report's verdict and tables as GitHub-flavoured Markdown.

    Examples
    --------
    >>> import numpy as np
    >>> from trueprob.regression import Gaussian
    >>> y = np.random.default_rng(0).normal(size=200)
    >>> text = render_regression_markdown(analyze_regression(y, Gaussian(np.zeros(200), 1.0)))
    >>> text.splitlines()[0]
    '## trueprob regression report: (arrays)'
    """
    from trueprob.report.html import _md_table

    r = analysis.report
    lines = _md_document(f"trueprob regression report: {analysis.source or '(arrays)'}",
                         f"{r.n} rows, {r.family} predictions; log scores in {r.unit}; "
                         f"trueprob {analysis.version}", regression_verdict(analysis))
    lines += ["### Summary", ""]
    lines += _md_table(["metric", "what it is", "value"], regression_summary_rows(analysis))
    lines += [f"- {name} not computed: {why}" for name, why in r.unavailable.items()]
    if recalibrated is not None:
        lines += _md_recalibrated(recalibrated, REGRESSION_RECAL_HEAD,
                                  regression_recalibrated_rows(analysis, recalibrated))
    if analysis.checks:
        lines += ["", "### Coverage of central intervals", ""]
        lines += _md_table(COVERAGE_HEAD, coverage_rows(analysis))
    lines += ["", "### Quantile calibration", ""]
    lines += _md_table(CALIBRATION_HEAD, calibration_rows(analysis))
    lines += ["", "### PIT histogram", ""]
    lines += _md_table(PIT_HEAD, pit_rows(analysis))
    lines += ["", "### Settings", ""]
    lines += _md_table(["setting", "value"], [[k, v] for k, v in _regression_settings(analysis)])
    lines += ["", "Diagrams: `trueprob report FILE --task regression -o report.html` (HTML "
                  "format).", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------- recalibrated
MULTILABEL_RECAL_HEAD = ("metric", "micro as given", "micro recalibrated", "macro as given",
                         "macro recalibrated")
REGRESSION_RECAL_HEAD = ("metric", "as given", "recalibrated")


def multilabel_recalibrated_rows(analysis: MultilabelAnalysis, recalibrated: Recalibrated,
                                 /) -> list[list[str]]:
    """Per summary metric: micro and macro values before and after the map."""
    before = multilabel_summary_rows(analysis)
    after = multilabel_summary_rows(recalibrated.analysis)
    return [[b[0], b[2], a[2], b[3], a[3]] for b, a in zip(before, after, strict=True)]


def regression_recalibrated_rows(analysis: RegressionAnalysis, recalibrated: Recalibrated,
                                 /) -> list[list[str]]:
    """Per summary metric, then per central interval both reports have, the value before and
    after the map ("n/a" where one has none: a quantile set has no NLL)."""
    from trueprob.report.html import _f

    before = regression_summary_rows(analysis)
    after = regression_summary_rows(recalibrated.analysis)
    rows = [[b[0], b[2], a[2]] for b, a in zip(before, after, strict=True)]
    shares = {c.level: c.observed for c in recalibrated.analysis.report.coverage}
    rows += [[f"coverage of the {c.level:g} central interval", _f(c.observed),
              _f(shares[c.level])] for c in analysis.report.coverage if c.level in shares]
    return rows


def _html_recalibrated(recalibrated: Recalibrated, head: Sequence[str],
                       rows: Sequence[Sequence[str]]) -> str:
    from trueprob.report.html import _e

    return ('<section id="recalibrated"><h2>Recalibrated</h2>'
            f"<p class='note'>{_e(recalibrated.description)}; the same rows, their "
            f"predictions before and after the map.</p>"
            + _html_table(head, rows, numeric_from=1) + "</section>")


def _md_recalibrated(recalibrated: Recalibrated, head: Sequence[str],
                     rows: Sequence[Sequence[str]]) -> list[str]:
    from trueprob.report.html import _md_table

    return ["", "### Recalibrated", "", f"{recalibrated.description}; the same rows, their "
            f"predictions before and after the map.", "", *_md_table(head, rows)]
