"""The report as one self-contained HTML file, or as Markdown for a pull request.

:func:`render_html` draws every diagram of an :class:`~trueprob.report.verdict.Analysis` and
writes one HTML document: CSS inline, each figure an ``<img>`` whose source is a ``data:`` URI
(SVG or PNG), no script and no external resource. A Content-Security-Policy meta tag
(``default-src 'none'``) makes the browser refuse any network access the document might
attempt. :func:`render_markdown` gives the same tables and verdict as GitHub-flavoured Markdown
(no images: pull requests strip ``data:`` images).

Sections (``id`` of each ``<section>``): ``verdict``, ``summary``, ``reliability``,
``smooth`` (when the smooth ECE is available), ``bits`` (when the log loss can be split),
``classwise`` (full probability vectors), ``recalibration`` (with a calibrator), ``bins``,
``classes`` (full probability vectors) and ``settings``.
"""

from __future__ import annotations

import base64
import html
import io
import platform
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np

from trueprob._format import fixed
from trueprob.analysis.records import Analysis, Evaluation
from trueprob.report.verdict import p_text, verdict

#: Report fields of the summary table: (field, label, description).
SUMMARY_ROWS = (
    ("accuracy", "accuracy", "share of rows whose top label is right"),
    ("nll", "log loss", "mean -log q(y) (cross-entropy)"),
    ("brier", "Brier", "mean sum_k (q_k - t_k)^2, in [0, 2]"),
    ("ece", "ECE", "top-label expected calibration error"),
    ("mce", "MCE", "largest gap of a non-empty bin"),
    ("rmsce", "RMS calibration error", "root of the weighted mean squared gap"),
    ("ece_debiased", "debiased L2 error", "Kumar et al. 2019"),
    ("classwise_ece", "classwise ECE", "mean over classes of each class's ECE"),
    ("class_conditional_ece", "class-conditional ECE", "ECE within each predicted class"),
    ("ks", "KS calibration error", "Gupta et al. 2021, no bins"),
    ("entropy", "entropy of the targets", "H(p): no model can remove it"),
    ("kl", "KL(p || q)", "what the model costs beyond H(p)"),
)
LOG_FIELDS = ("nll", "entropy", "kl")
FORMATS = ("svg", "png")

CSS = """
:root { color-scheme: light; --ink: #1f2328; --muted: #59636e; --rule: #d1d9e0;
        --stripe: #f6f8fa; --accent: #0072B2; --warn: #D55E00; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", "DejaVu Sans",
       sans-serif; color: var(--ink); background: #fff; }
main { max-width: 1120px; margin: 0 auto; padding: 24px 28px 48px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 36px 0 10px; padding-bottom: 4px;
     border-bottom: 1px solid var(--rule); }
h3 { font-size: 15px; margin: 18px 0 6px; }
p.meta, .note, figcaption, footer { color: var(--muted); font-size: 13.5px; }
section#verdict ul { padding-left: 20px; font-size: 16px; }
section#verdict li { margin: 6px 0; }
table { border-collapse: collapse; margin: 8px 0 12px; font-size: 13.5px; }
th, td { padding: 4px 10px; border-bottom: 1px solid var(--rule); text-align: left;
         vertical-align: top; }
th { background: var(--stripe); font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tbody tr:nth-child(even) td { background: #fbfcfd; }
.figures { display: flex; flex-wrap: wrap; gap: 18px; align-items: flex-start; }
figure { margin: 0; }
figure img { display: block; max-width: 100%; height: auto; }
details summary { cursor: pointer; color: var(--accent); margin: 6px 0; }
code { font-size: 12.5px; background: var(--stripe); padding: 1px 4px; border-radius: 3px; }
.over { color: var(--warn); }
footer { margin-top: 40px; border-top: 1px solid var(--rule); padding-top: 8px; }
"""
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


#: what the summary's intervals and p-values are, said under the table
INTERVAL_NOTE = (
    "Intervals: bootstrap, each printed after the estimate it is about. For the binned "
    "calibration errors (ECE, MCE, RMSCE, classwise, class-conditional, KS) that estimate is "
    "bias-corrected (the plug-in value in the column before it, the number published tables "
    "use, is biased upward). The MCE's interval always starts at 0 (no two-sided interval "
    "covers the largest bin gap; read it as an upper bound), and the KS interval starts at 0 "
    "unless the KS test rejects calibration. The other metrics use percentile intervals "
    "around the plug-in value. p-values: consistency resampling test of H0 = labels drawn "
    "from the predicted distribution (the model is calibrated).")


def interval_text(iv: Any, digits: int = 4) -> str:
    """``"0.0779 [0.0712, 0.0847]"``: the estimate an interval is about, then the interval
    (empty when there is none)."""
    if iv is None:
        return ""
    return f"{_f(iv.estimate, digits)} [{_f(iv.low, digits)}, {_f(iv.high, digits)}]"


def interval_methods(ev: Evaluation) -> str:
    """The interval methods used in an evaluation, e.g. "bias-corrected percentile (ece,
    ...), percentile (accuracy, ...)"."""
    by_method: dict[str, list[str]] = {}
    for name, iv in ev.intervals.items():
        by_method.setdefault(iv.method, []).append(name)
    return "; ".join(f"{m} ({', '.join(names)})" for m, names in by_method.items()) or "none"


def _f(value: Any, digits: int = 4) -> str:
    """The project's one number format (:func:`trueprob._format.fixed`: no negative zero)."""
    return "n/a" if value is None else fixed(float(value), digits)


def _p_plain(test: Any) -> str:
    """"0.431" or "≤ 0.001" (no resample reached the statistic), as in the verdict."""
    if test is None:
        return ""
    return p_text(test.p_value, test.n_resamples).removeprefix("p = ").removeprefix("p ")


def _p(test: Any) -> str:
    return _e(_p_plain(test))


# --------------------------------------------------------------------------- figures
def _encode(fig: Any, fmt: str, tight: bool) -> str:
    from trueprob.report.plots.style import matplotlib, style

    buffer = io.BytesIO()
    with style(), matplotlib().rc_context({"savefig.bbox": "tight" if tight else "standard"}):
        if fmt == "svg":
            fig.savefig(buffer, format="svg", metadata={"Date": None})
        else:
            fig.savefig(buffer, format="png", dpi=130, metadata={"Software": None})
    mime = "image/svg+xml" if fmt == "svg" else "image/png"
    return f"data:{mime};base64,{base64.b64encode(buffer.getvalue()).decode('ascii')}"


def _figure(draw: Callable[[Any], Any], figsize: tuple[float, float], fmt: str,
            margins: tuple[float, float, float, float] | None = None,
            spacing: tuple[float, float] = (0.2, 0.2)) -> str:
    """Draw on a new Figure (no pyplot, so nothing global) and return its data: URI.

    ``margins`` (left, right, bottom, top) in inches fix the layout; without them the saved
    box is trimmed to the drawing ("tight"), which costs a second draw of the figure.
    """
    from trueprob.report.plots.style import matplotlib, style

    matplotlib()
    from matplotlib.figure import Figure

    width, height = figsize
    with style():
        fig = Figure(figsize=figsize)
        if margins is not None:
            left, right, bottom, top = margins
            fig.subplots_adjust(left=left / width, right=1 - right / width,
                                bottom=bottom / height, top=1 - top / height,
                                wspace=spacing[0], hspace=spacing[1])
        draw(fig)
    return _encode(fig, fmt, tight=margins is None)


def _img(uri: str, alt: str, caption: str, width: int | None = None) -> str:
    style = f' style="width:{width}px"' if width else ""
    return (f'<figure{style}><img src="{uri}" alt="{_e(alt)}">'
            f"<figcaption>{caption}</figcaption></figure>")


def _draw_reliability(fig: Any, *, data: Any, series: int) -> None:
    from trueprob.report.plots.draw import plot_reliability

    plot_reliability(data, ax=fig.add_subplot(), series=series)


def _draw_smooth(fig: Any, *, data: Any) -> None:
    from trueprob.report.plots.draw import plot_smooth_reliability

    plot_smooth_reliability(data, ax=fig.add_subplot())


def _reliability_figures(analysis: Analysis, fmt: str) -> list[str]:
    from trueprob.report.plots.draw import plot_reliability_overlay

    out = []
    for i, ev in enumerate(analysis.evaluations):
        data = ev.reliability
        uri = _figure(partial(_draw_reliability, data=data, series=i), (4.4, 6.0), fmt,
                      margins=(0.75, 0.2, 1.45, 0.3))
        alt = (f"Reliability diagram of {data.label}: accuracy against confidence in "
               f"{data.edges.size - 1} bins, with interval boxes, gap bars and the histogram "
               f"of confidences; ECE {data.ece:.4f}.")
        out.append(_img(uri, alt, f"{_e(data.label)}: points are bins (area: share of rows), "
                                  f"grey boxes the {data.level:.0%} Wilson intervals, hatched "
                                  f"bars the gaps; below, the share of rows per bin with its "
                                  f"row count.", 440))
    if analysis.after is not None:
        datas = [ev.reliability for ev in analysis.evaluations]
        uri = _figure(lambda fig: plot_reliability_overlay(datas, ax=fig.add_subplot()),
                      (4.4, 5.3), fmt, margins=(0.75, 0.2, 1.3, 0.3))
        out.append(_img(uri, "Reliability curves before and after recalibration on one "
                             "diagram, with interval error bars.",
                        "Before and after recalibration, with the intervals as error bars.",
                        430))
    return out


def _smooth_figures(analysis: Analysis, fmt: str) -> list[str]:
    out = []
    for ev in analysis.evaluations:
        data = ev.smooth
        if data is None:
            continue
        uri = _figure(partial(_draw_smooth, data=data), (4.4, 5.3), fmt,
                      margins=(0.75, 0.2, 0.6, 0.3))
        alt = (f"Smooth reliability curve of {data.label} with its band and the density of "
               f"confidences; smooth ECE {data.ece:.4f}.")
        out.append(_img(uri, alt, f"{_e(data.label)}: kernel-smoothed reliability (bandwidth "
                                  f"{data.bandwidth:.3f}) with its {data.level:.0%} band.",
                        430))
    return out


def _bits_figure(analysis: Analysis, fmt: str) -> str | None:
    from trueprob.analysis.diagrams import bits_data
    from trueprob.report.plots.draw import plot_bits

    items = [(ev.label, ev.decomposition) for ev in analysis.evaluations
             if ev.decomposition is not None]
    if not items:
        return None
    data = bits_data(items)
    n_bars = sum(3 if r.entropy is not None else 2 for r in data.rows)
    uri = _figure(lambda fig: plot_bits(data, ax=fig.add_subplot()),
                  (9.4, 0.5 * n_bars + 1.0), fmt, margins=(2.3, 3.1, 0.55, 0.35))
    return _img(uri, "Bar chart of the log loss split into the loss left after "
                     "recalibration, miscalibration and discrimination.",
                "Each log loss bar is the grey part S(r) plus the miscalibration MCB; the "
                "label-entropy bar is S(r) plus the discrimination DSC.", 940)


def _classwise_figure(ev: Evaluation, fmt: str) -> str | None:
    from trueprob.report.plots.draw import plot_classwise_grid

    data = ev.classwise
    if data is None:
        return None
    p = len(data.classes)
    cols = min(p, 5)
    rows = -(-p // cols)

    def draw(fig: Any) -> None:
        axes = fig.subplots(rows, cols, squeeze=False)
        plot_classwise_grid(data, ax=axes)
        fig.supxlabel("predicted probability of the class", fontsize=9)
        fig.supylabel("observed frequency of the class", fontsize=9)

    uri = _figure(draw, (1.9 * cols + 0.7, 1.95 * rows + 0.7), fmt,
                  margins=(0.7, 0.15, 0.6, 0.25), spacing=(0.25, 0.4))
    return _img(uri, f"Classwise reliability diagrams of {data.selection}.",
                f"{_e(ev.label)}: {_e(data.selection)}. Each panel: how often the class was "
                f"the label against its predicted probability, per bin (area: share of rows; "
                f"grey: {data.level:.0%} Wilson interval).", 1000)


def _compare_figure(analysis: Analysis, fmt: str) -> str:
    from trueprob.analysis.diagrams import compare_data_from_reports
    from trueprob.report.plots.draw import plot_compare

    data = compare_data_from_reports({ev.label: ev.report for ev in analysis.evaluations})
    c = len(data.metrics)

    def draw(fig: Any) -> None:
        axes = fig.subplots(1, c, sharey=True, squeeze=False)
        plot_compare(data, ax=axes)

    uri = _figure(draw, (2.2 * c + 1.6, 0.35 * len(data.methods) + 1.3), fmt,
                  margins=(1.4, 0.2, 0.35, 0.55), spacing=(0.35, 0.2))
    return _img(uri, "Bar charts of NLL, Brier, ECE, classwise ECE and accuracy before and "
                     "after recalibration.", "The comparison table of "
                "<code>trueprob compare</code> for these two sets of predictions.", 1000)


# --------------------------------------------------------------------------- tables
def _summary_table(analysis: Analysis) -> str:
    evs = analysis.evaluations
    level = analysis.settings.level
    unit = analysis.settings.unit
    head = "<tr><th>metric</th><th>what it is</th>" + "".join(
        f'<th>{_e(ev.label)}</th><th>estimate [{level:.0%} interval]</th><th>p-value</th>'
        for ev in evs
    ) + "</tr>"
    rows = []
    soft = evs[0].report.targets != "labels"
    for name, label, what in SUMMARY_ROWS:
        if name in ("entropy", "kl") and not soft:
            continue
        if all(getattr(ev.report, name) is None for ev in evs):
            continue
        shown = f"{label} ({unit})" if name in LOG_FIELDS else label
        cells = []
        for ev in evs:
            iv = ev.intervals.get(name)
            cells.append(f'<td class="num">{_f(getattr(ev.report, name))}</td>'
                         f'<td class="num">{_e(interval_text(iv))}</td>'
                         f'<td class="num">{_p(ev.tests.get(name))}</td>')
        rows.append(f"<tr><td>{_e(shown)}</td><td>{_e(what)}</td>{''.join(cells)}</tr>")
    if any(ev.smooth is not None for ev in evs):
        smooth = "".join(f'<td class="num">{_f(None if ev.smooth is None else ev.smooth.ece)}'
                         f"</td><td></td><td></td>" for ev in evs)
        rows.append(f"<tr><td>smooth ECE</td><td>Błasiok &amp; Nakkiran 2023, kernel "
                    f"smoothing</td>{smooth}</tr>")
    if any(ev.skce is not None for ev in evs):
        kernel = "".join(
            "<td></td><td></td><td></td>" if ev.skce is None else
            f'<td class="num">{ev.skce.estimate:.2e}</td><td class="num">'
            f"{ev.skce.interval(level)[0]:.2e} – {ev.skce.interval(level)[1]:.2e}</td>"
            f'<td class="num">{ev.skce.p_value:.3g}</td>' for ev in evs)
        rows.append(f"<tr><td>SKCE</td><td>whole-vector kernel calibration error (Widmann et "
                    f"al. 2019), block estimator, Student-t interval</td>{kernel}</tr>")
    mean = "".join(f'<td class="num">{ev.mean_confidence:.4f}</td><td></td><td></td>'
                   for ev in evs)
    rows.append(f"<tr><td>mean confidence</td><td>weighted mean of the top-label "
                f"probability</td>{mean}</tr>")
    return f"<table><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>"


def _bits_table(analysis: Analysis) -> str:
    evs = [ev for ev in analysis.evaluations if ev.decomposition is not None]
    if not evs:
        return ""
    unit = analysis.settings.unit
    soft = any(ev.decomposition.entropy is not None for ev in evs)
    head = (f"<tr><th></th><th>log loss S(q)</th><th>miscalibration MCB</th>"
            f"<th>discrimination DSC</th><th>label entropy UNC</th><th>after recalibration "
            f"S(r)</th>{'<th>entropy H(p)</th><th>KL(p || q)</th>' if soft else ''}</tr>")
    rows = []
    for ev in evs:
        d = ev.decomposition
        extra = (f'<td class="num">{_f(d.entropy)}</td><td class="num">{_f(d.kl)}</td>'
                 if soft else "")
        rows.append(f"<tr><td>{_e(ev.label)}</td><td class='num'>{_f(d.score)}</td>"
                    f"<td class='num'>{_f(d.mcb)}</td><td class='num'>{_f(d.dsc)}</td>"
                    f"<td class='num'>{_f(d.unc)}</td><td class='num'>{_f(d.recalibrated)}"
                    f"</td>{extra}</tr>")
    h = analysis.recoverable
    if h is not None:
        blank = "<td></td><td></td>" if soft else ""
        rows.append(f"<tr><td>{_e(analysis.before.label)}, best held-out map: "
                    f"{_e(h.family or 'none recovers any')}</td><td class='num'>{_f(h.score)}"
                    f"</td><td class='num'>{_f(h.mcb)}</td><td class='num'>{_f(h.dsc)}</td>"
                    f"<td class='num'>{_f(h.unc)}</td><td class='num'>{_f(h.score - h.mcb)}"
                    f"</td>{blank}</tr>")
    return (f"<table><caption class='note'>{_e(unit)} per example; S(q) = MCB - DSC + UNC"
            f"</caption><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>")


def _bins_table(ev: Evaluation) -> str:
    d = ev.reliability
    left, right = ("(", "]") if d.closed == "right" else ("[", ")")
    rows = []
    for j in range(d.weight.size):
        gap = d.confidence[j] - d.accuracy[j]
        cls = ' class="num over"' if d.weight[j] > 0 and gap > 0 else ' class="num"'
        interval = "" if d.weight[j] <= 0 else f"{_f(d.low[j], 3)} – {_f(d.high[j], 3)}"
        rows.append(
            f"<tr><td>{left}{d.edges[j]:.3f}, {d.edges[j + 1]:.3f}{right}</td>"
            f"<td class='num'>{int(d.count[j])}</td><td class='num'>{_f(d.share[j], 4)}</td>"
            f"<td class='num'>{_f(d.confidence[j])}</td><td class='num'>{_f(d.accuracy[j])}"
            f"</td><td{cls}>{_f(gap)}</td><td class='num'>{interval}</td></tr>")
    head = ("<tr><th>bin</th><th>rows n_b</th><th>share W_b/W</th><th>confidence</th>"
            f"<th>accuracy</th><th>gap</th><th>{d.level:.0%} interval of the accuracy</th></tr>")
    return (f"<h3>{_e(ev.label)}</h3><table><thead>{head}</thead><tbody>{''.join(rows)}"
            f"</tbody></table>")


def _classes_table(analysis: Analysis) -> str:
    evs = [ev for ev in analysis.evaluations if ev.classes is not None]
    if not evs:
        return ""
    first = evs[0].classes
    assert first is not None
    k = first.ece.size
    worst_first = k > analysis.settings.max_panels
    order = np.argsort(-first.ece, kind="stable") if worst_first else np.arange(k)
    head = ("<tr><th>class</th><th>label frequency</th><th>mean predicted probability</th>"
            + "".join(f"<th>classwise ECE, {_e(ev.label)}</th>" for ev in evs) + "</tr>")
    rows = []
    for i in order:
        cells = "".join(f"<td class='num'>{_f(ev.classes.ece[i])}</td>" for ev in evs
                        if ev.classes is not None)
        rows.append(f"<tr><td>{_e(first.names[i])}</td>"
                    f"<td class='num'>{_f(first.frequency[i])}</td>"
                    f"<td class='num'>{_f(first.mean_probability[i])}</td>{cells}</tr>")
    table = f"<table><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>"
    if worst_first:
        return (f"<details><summary>all {k} classes, worst (largest classwise ECE) first"
                f"</summary>{table}</details>")
    return table


def _settings_rows(analysis: Analysis) -> list[tuple[str, str]]:
    s = analysis.settings
    r = analysis.before.report
    ev = analysis.before
    rows = [
        ("data", analysis.source or "(arrays)"),
        ("rows", f"{r.n} (total weight {r.weight:g})"),
        ("classes K", str(r.n_classes)),
        ("predictions / targets", f"{r.inputs} / {r.targets}"),
        ("reliability bins", f"{s.n_bins} equal-{s.binning} bins, {s.closed}-closed "
                             f"(classwise: {s.n_bins} equal-width bins)"),
        ("unit of log scores", s.unit),
        ("intervals", f"bootstrap, {s.n_replicates} replicates, {interval_methods(ev)}, "
                      f"level {s.level:g}, {ev.bootstrap_blocks} blocks of rows"),
        ("bin intervals", f"Wilson score interval at the effective number of rows, level "
                          f"{s.level:g}"),
        ("consistency tests", f"Bröcker & Smith 2007, labels drawn from the predictions, "
                              f"{_resamples(ev, s.n_resamples)} resamples for the ECE"),
        ("log-loss split", f"trueprob.decompose, estimator {s.decomposition}"
                           + _fitting(s.decomposition, s.n_folds)),
        ("seed", str(s.seed)),
    ]
    if ev.skce is not None:
        rows.append(("SKCE", f"exponential kernel, bandwidth {ev.skce.bandwidth:.4g} (median "
                             f"heuristic), block estimator with blocks of "
                             f"{ev.skce.block_size} rows in a seeded random order; "
                             f"{ev.skce.test}"))
    if ev.smooth is not None:
        rows.append(("smooth ECE", f"reflected Gaussian kernel, fixed-point bandwidth "
                                   f"{ev.smooth.bandwidth:.4f}"))
    if analysis.calibration is not None:
        c = analysis.calibration
        rows.append(("calibrator", f"{c.description}" + (f" ({c.source})" if c.source else "")))
    rows.append(("software", _software()))
    rows.append(("computed in", f"{analysis.seconds:.1f} s"))
    return rows


def _resamples(ev: Evaluation, default: int) -> int:
    """Resamples the top-label test used (a streamed analysis may cap them)."""
    test = ev.tests.get("ece")
    return default if test is None else int(test.n_resamples)


def _fitting(estimator: str, n_folds: int) -> str:
    """How the parametric recalibration map of the log-loss split was fitted."""
    if estimator not in ("temperature", "dirichlet"):
        return ""
    if n_folds >= 2:
        return f", {n_folds}-fold cross-fitting"
    return ", fitted on all rows (in-sample)"


def _software() -> str:
    import scipy

    parts = [f"trueprob {_version()}", f"Python {platform.python_version()}",
             f"numpy {np.__version__}", f"scipy {scipy.__version__}"]
    try:
        import matplotlib

        parts.append(f"matplotlib {matplotlib.__version__}")
    except ImportError:
        pass
    return ", ".join(parts)


def _version() -> str:
    from trueprob._version import __version__

    return __version__


def _notes(analysis: Analysis) -> list[str]:
    notes = list(analysis.notes)
    for ev in analysis.evaluations:
        notes += [f"{ev.label}: {n}" for n in ev.notes]
        notes += [f"{ev.label}: {k} not computed ({why})"
                  for k, why in ev.report.unavailable.items()]
    return notes


# --------------------------------------------------------------------------- documents
def render_html(analysis: Analysis, /, *, image_format: str = "svg",
                title: str | None = None) -> str:
    """The report as one self-contained HTML document (a string).

    Parameters
    ----------
    analysis : Analysis
        From :func:`trueprob.report.verdict.analyze`.
    image_format : {"svg", "png"}
        How figures are embedded (as ``data:`` URIs). SVG (default) stays sharp at any zoom;
        PNG is smaller for large classwise grids.
    title : str, optional
        The page title (default: "trueprob report — <source>").

    Notes
    -----
    The document has no script, loads nothing (every image is a ``data:`` URI, CSS is
    inline) and declares ``Content-Security-Policy: default-src 'none'; img-src data:;
    style-src 'unsafe-inline'``, so a browser makes no network request for it.

    Examples
    --------
    >>> import numpy as np
    >>> from trueprob.report.verdict import analyze
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=(300, 3)) * 3; y = rng.integers(0, 3, 300)
    >>> page = render_html(analyze(y, logits=z, n_replicates=20, n_resamples=50))
    >>> page.startswith("<!doctype html>"), page.count('<img src="data:image/svg+xml;base64,')
    (True, 4)
    >>> "http://" in page.replace("http://www.w3.org", "")
    False
    """
    if image_format not in FORMATS:
        raise ValueError(f"image_format must be 'svg' or 'png'; got {image_format!r}")
    fmt = image_format
    r = analysis.before.report
    source = analysis.source or "(arrays)"
    page_title = title if title is not None else f"trueprob report — {source}"
    parts = [
        "<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(page_title)}</title><style>{CSS}</style></head><body><main>",
        f"<header><h1>Are these outputs probabilities?</h1><p class='meta'>{_e(source)} · "
        f"{r.n} rows · K = {r.n_classes} · {_e(r.inputs)} vs {_e(r.targets)} · trueprob "
        f"{_e(analysis.version)}</p></header>",
        _verdict_section(analysis),
        f'<section id="summary"><h2>Summary</h2>{_summary_table(analysis)}'
        f"<p class='note'>{_e(INTERVAL_NOTE)}</p></section>",
        '<section id="reliability"><h2>Reliability diagram</h2><div class="figures">',
        *_reliability_figures(analysis, fmt), "</div></section>",
    ]
    smooth = _smooth_figures(analysis, fmt)
    if smooth:
        parts += ['<section id="smooth"><h2>Smooth reliability</h2><div class="figures">',
                  *smooth, "</div></section>"]
    bits = _bits_figure(analysis, fmt)
    if bits is not None:
        parts += ['<section id="bits"><h2>Where the bits go</h2>', bits,
                  _bits_table(analysis), "</section>"]
    grid = _classwise_figure(analysis.before, fmt)
    if grid is not None:
        parts += ['<section id="classwise"><h2>Classwise reliability</h2>', grid,
                  "</section>"]
    if analysis.after is not None:
        parts += ['<section id="recalibration"><h2>Recalibration</h2>',
                  _compare_figure(analysis, fmt), "</section>"]
    if analysis.recommendation is not None:
        parts += ['<section id="recommendation"><h2>What to do: the candidates</h2>',
                  _html_rows(CANDIDATE_HEAD, candidate_rows(analysis)),
                  "<p class='note'>Each map fitted on the calibration set with its default "
                  "settings (as trueprob compare fits it) and evaluated on this file; gain: the "
                  "log loss it removes, ± its standard error (paired per-row differences). "
                  "One-vs-rest maps that change the accuracy by more than one point are "
                  "excluded.</p></section>"]
    parts += ['<section id="bins"><h2>Per-bin table</h2>',
              *(_bins_table(ev) for ev in analysis.evaluations), "</section>"]
    classes = _classes_table(analysis)
    if classes:
        parts += ['<section id="classes"><h2>Per-class table</h2>', classes, "</section>"]
    settings = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>"
                       for k, v in _settings_rows(analysis))
    notes = "".join(f"<li>{_e(n)}</li>" for n in _notes(analysis))
    parts += [f'<section id="settings"><h2>Settings</h2><table>{settings}</table>',
              f"<ul class='note'>{notes}</ul>" if notes else "", "</section>",
              _footer(analysis.version),
              "</main></body></html>"]
    return "\n".join(p for p in parts if p) + "\n"


def _footer(version: str) -> str:
    return (f"<footer>Made by trueprob {_e(version)}. Every quantity is defined, with its "
            f"estimator and convention, in docs/definitions.md of trueprob {_e(version)} (the "
            f"version that made this report); every number above comes from one computation "
            f"and is shown in the verdict, the tables and the figures alike.</footer>")


#: the section each answer links to, when the report has it (else the summary)
def _verdict_section(analysis: Analysis) -> str:
    from trueprob.analysis.answers import answers
    from trueprob.report.verdict import LEADS, sentences

    given = answers(analysis)
    said = sentences(analysis, given)
    have = {"reliability", "summary"}
    if analysis.before.decomposition is not None or analysis.recoverable is not None:
        have.add("bits")
    if analysis.before.classwise is not None:
        have.add("classwise")
    if analysis.recommendation is not None:
        have.add("recommendation")
    items = []
    for key, text in said.items():
        section = given[key].section if given[key].section in have else "summary"
        items.append(f"<li><strong>{_e(LEADS[key])}:</strong> {_e(text)} "
                     f"<a href=\"#{section}\">(evidence)</a></li>")
    return '<section id="verdict"><h2>Verdict</h2><ul>' + "".join(items) + "</ul></section>"


CANDIDATE_HEAD = ("map", "log loss", "gain", "ECE", "accuracy", "")


def candidate_rows(analysis: Analysis, /) -> list[list[str]]:
    """The recommendation's candidates: map, log loss (unit), gain ± SE, ECE, accuracy and a
    note (recommended / excluded and why / not significant)."""
    rec = analysis.recommendation
    if rec is None:
        return []
    rows = [["uncalibrated", f"{rec.nll_before:.4f} {rec.unit}", "", _f(rec.ece_before),
             f"{rec.accuracy_before:.2%}", ""]]
    for c in rec.candidates:
        note = (c.excluded or "") if c is not rec.best else (
            "recommended" if c.significant else "best, gain not significant")
        rows.append([c.name, f"{c.nll:.4f} {rec.unit}", f"{c.gain:+.4f} ± {c.gain_se:.4f}",
                     _f(c.ece), f"{c.accuracy:.2%}", note])
    rows += [[why, "", "", "", "", "left out"] for why in rec.left_out]
    return rows


def _html_rows(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    th = "".join(f"<th>{_e(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _md_table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    return [line(head), "|" + "---|" * len(head), *(line(r) for r in rows)]


def render_markdown(analysis: Analysis, /) -> str:
    """The report's verdict and tables as GitHub-flavoured Markdown (no images).

    Examples
    --------
    >>> import numpy as np
    >>> from trueprob.report.verdict import analyze
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=(300, 3)) * 3; y = rng.integers(0, 3, 300)
    >>> text = render_markdown(analyze(y, logits=z, n_replicates=20, n_resamples=50))
    >>> text.splitlines()[0]
    '## trueprob report: (arrays)'
    """
    evs = analysis.evaluations
    s = analysis.settings
    r = analysis.before.report
    lines = [f"## trueprob report: {analysis.source or '(arrays)'}", "",
             f"{r.n} rows, K = {r.n_classes}, {r.inputs} vs {r.targets}; {s.n_bins} "
             f"equal-{s.binning} bins; log scores in {s.unit}; trueprob {analysis.version}", "",
             "### Verdict", "", *(f"- {v}" for v in verdict(analysis)), "",
             "### Summary", ""]
    head = ["metric"] + [h for ev in evs for h in (ev.label,
                                                    f"estimate [{s.level:.0%} interval]",
                                                    "p-value")]
    rows = []
    soft = r.targets != "labels"
    for name, label, _ in SUMMARY_ROWS:
        if (name in ("entropy", "kl") and not soft) or \
                all(getattr(ev.report, name) is None for ev in evs):
            continue
        cells = [f"{label} ({s.unit})" if name in LOG_FIELDS else label]
        for ev in evs:
            iv = ev.intervals.get(name)
            cells += [_f(getattr(ev.report, name)), interval_text(iv),
                      _p_plain(ev.tests.get(name))]
        rows.append(cells)
    if any(ev.smooth is not None for ev in evs):
        rows.append(["smooth ECE"] + [c for ev in evs for c in (
            _f(None if ev.smooth is None else ev.smooth.ece), "", "")])
    if any(ev.skce is not None for ev in evs):
        rows.append(["SKCE (whole vector)"] + [c for ev in evs for c in (
            ("", "", "") if ev.skce is None else
            (f"{ev.skce.estimate:.2e}", f"{ev.skce.interval(s.level)[0]:.2e} – "
             f"{ev.skce.interval(s.level)[1]:.2e}", f"{ev.skce.p_value:.3g}"))])
    rows.append(["mean confidence"] + [c for ev in evs for c in (
        f"{ev.mean_confidence:.4f}", "", "")])
    lines += _md_table(head, rows)
    lines += ["", INTERVAL_NOTE]
    decs = [ev for ev in evs if ev.decomposition is not None]
    if decs:
        lines += ["", f"### Where the bits go ({s.unit} per example; S(q) = MCB - DSC + UNC)",
                  ""]
        lines += _md_table(["", "log loss S(q)", "MCB", "DSC", "UNC", "S(r)"],
                           [[ev.label, _f(ev.decomposition.score), _f(ev.decomposition.mcb),
                             _f(ev.decomposition.dsc), _f(ev.decomposition.unc),
                             _f(ev.decomposition.recalibrated)] for ev in decs])
    if analysis.recoverable is not None and analysis.recoverable.held_out:
        h = analysis.recoverable
        lines += ["", f"Held-out log loss of each recalibration ({s.unit} per example; "
                      f"MCB = S(q) minus the lowest): "
                  + "; ".join(f"{k} {v:.4f}" for k, v in h.held_out.items()) + "."]
    if analysis.recommendation is not None:
        lines += ["", "### What to do: the candidates", ""]
        lines += _md_table([*CANDIDATE_HEAD[:-1], "note"], candidate_rows(analysis))
    lines += ["", "### Per-bin table", ""]
    for ev in evs:
        d = ev.reliability
        left, right = ("(", "]") if d.closed == "right" else ("[", ")")
        body = [[f"{left}{d.edges[j]:.3f}, {d.edges[j + 1]:.3f}{right}", str(int(d.count[j])),
                 _f(d.share[j]), _f(d.confidence[j]), _f(d.accuracy[j]),
                 _f(d.confidence[j] - d.accuracy[j]),
                 "" if d.weight[j] <= 0 else f"{_f(d.low[j], 3)} – {_f(d.high[j], 3)}"]
                for j in range(d.weight.size) if d.weight[j] > 0]
        lines += [f"**{ev.label}** (non-empty bins)", ""]
        lines += _md_table(["bin", "rows", "share", "confidence", "accuracy", "gap",
                            f"{d.level:.0%} interval"], body)
        lines.append("")
    with_classes = [ev for ev in evs if ev.classes is not None]
    if with_classes:
        first = with_classes[0].classes
        assert first is not None
        k = first.ece.size
        order = np.argsort(-first.ece, kind="stable")[:10] if k > 10 else np.arange(k)
        what = f"the 10 of {k} classes with the largest classwise ECE" if k > 10 else \
            "every class"
        lines += [f"### Per-class table ({what})", ""]
        lines += _md_table(
            ["class", "label frequency", "mean predicted probability"]
            + [f"classwise ECE, {ev.label}" for ev in with_classes],
            [[first.names[i], _f(first.frequency[i]), _f(first.mean_probability[i])]
             + [_f(ev.classes.ece[i]) for ev in with_classes if ev.classes is not None]
             for i in order])
        lines.append("")
    lines += ["### Settings", ""]
    lines += _md_table(["setting", "value"], [[k, v] for k, v in _settings_rows(analysis)])
    notes = _notes(analysis)
    if notes:
        lines += ["", *(f"- {n}" for n in notes)]
    lines += ["", "Diagrams: `trueprob report FILE -o report.html` (HTML format). "
                  f"Definitions: docs/definitions.md of trueprob {analysis.version}.", ""]
    return "\n".join(lines)
