"""Notebook rendering: the HTML and Markdown that Jupyter shows for trueprob's results.

:func:`to_html` and :func:`to_markdown` render a :class:`~trueprob.Report`, a
:class:`~trueprob.inference.bootstrap.BootstrapResult`, a multi-label or regression report, a
compare table (:class:`~trueprob.report.plots.CompareData`) and the artists returned by the
``trueprob.report.plots`` drawing functions. The result classes call them from their
``_repr_html_`` / ``_repr_markdown_`` methods, which IPython's display formatter uses:

- HTML: the summary table (metric, value; with intervals for a bootstrap) and the diagram
  (reliability diagram; PIT histogram for regression; the compare chart), drawn on a new
  matplotlib ``Figure`` (no pyplot, nothing global) and embedded as an SVG image. Without
  matplotlib the table comes alone, with a line saying why.
- Markdown: the object's own ``to_markdown()`` where it has one, else a table.

Every value is escaped; the output is a fragment (no ``<html>``), self-contained (no scripts,
no external files).
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable
from typing import Any

from trueprob.results import Report

#: row label of each Report field in the summary table (the HTML report's wording)
_LABELS = {
    "accuracy": "accuracy", "nll": "log loss (NLL)", "brier": "Brier score",
    "ece": "ECE (top-label)", "mce": "MCE", "rmsce": "RMS calibration error",
    "ece_debiased": "debiased L2 calibration error", "classwise_ece": "classwise ECE",
    "class_conditional_ece": "class-conditional ECE", "ks": "KS calibration error",
    "smooth_ece": "smooth ECE", "entropy": "entropy H(p)", "kl": "KL(p || q)",
}
_LOG_FIELDS = ("nll", "entropy", "kl")
_STYLE = ("font-family:sans-serif;font-size:13px;border-collapse:collapse")


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _num(value: Any, digits: int = 4) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        if not math.isfinite(value):
            return str(value)
        return f"{value:.{digits}f}" if abs(value) >= 10 ** -digits or value == 0 \
            else f"{value:.2e}"
    return str(value)


def _table(head: list[str], rows: list[list[str]], *, escape_cells: bool = True) -> str:
    th = "".join(f'<th style="text-align:left;padding:2px 8px">{_e(h)}</th>' for h in head)
    body = []
    for row in rows:
        cells = "".join(
            f'<td style="padding:2px 8px">{_e(c) if escape_cells else c}</td>' for c in row)
        body.append(f"<tr>{cells}</tr>")
    return (f'<table style="{_STYLE}"><thead><tr>{th}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>")


def _figure_html(draw: Callable[[Any], Any], figsize: tuple[float, float], alt: str,
                 width: int) -> str:
    """The drawing as an inline SVG image, or a note when matplotlib is missing."""
    try:
        from trueprob.report.html import _figure
    except ImportError:  # pragma: no cover - html.py needs only numpy at import
        return ""
    try:
        uri = _figure(draw, figsize, "svg")
    except ImportError as exc:
        return f"<p><em>{_e(exc)}</em></p>"
    return f'<img src="{uri}" alt="{_e(alt)}" style="width:{width}px">'


def _wrap(title: str, *parts: str) -> str:
    inner = "".join(p for p in parts if p)
    return (f'<div class="trueprob"><p style="font-family:sans-serif"><strong>trueprob'
            f"</strong> — {title}</p>{inner}</div>")


# --------------------------------------------------------------------------- Report


def _report_rows(report: Report, intervals: dict[str, Any] | None = None) -> list[list[str]]:
    rows = []
    for name, label in _LABELS.items():
        if name in ("entropy", "kl") and report.targets == "labels":
            continue
        value = getattr(report, name)
        shown = f"{label} ({report.unit})" if name in _LOG_FIELDS else label
        row = [shown, _num(value)]
        if intervals is not None:
            iv = intervals.get(name)
            row.append("" if iv is None else f"{_num(iv.low)} – {_num(iv.high)}")
        rows.append(row)
    return rows


def _report_title(report: Report) -> str:
    s = report.settings
    return (f"{report.n} rows, K = {report.n_classes}, {report.inputs} vs {report.targets}; "
            f"{s.n_bins} {s.binning} bins ({s.closed}-closed)")


def _reliability(report: Report) -> str:
    if not any(b.count for b in report.bins):
        return ""

    def draw(fig: Any) -> None:
        from trueprob.report.plots import plot_reliability, reliability_data

        plot_reliability(reliability_data(report), ax=fig.add_subplot())

    return _figure_html(draw, (4.4, 6.0), f"Reliability diagram: accuracy against confidence "
                                          f"in {len(report.bins)} bins; ECE {report.ece:.4f}",
                        360)


def report_html(report: Report) -> str:
    """A Report as an HTML fragment: the summary table and the reliability diagram.

    Examples
    --------
    >>> import numpy as np, trueprob
    >>> r = trueprob.evaluate(np.array([0, 1, 1]), probs=np.array([0.2, 0.9, 0.4]))
    >>> text = report_html(r)
    >>> "ECE (top-label)" in text and "data:image/svg+xml;base64," in text
    True
    """
    notes = "".join(f"<li>{_e(k)}: {_e(v)}</li>" for k, v in report.unavailable.items())
    return _wrap(_e(_report_title(report)),
                 _table(["metric", "value"], _report_rows(report)),
                 f"<ul>{notes}</ul>" if notes else "", _reliability(report))


# --------------------------------------------------------------------------- bootstrap


def bootstrap_html(result: Any) -> str:
    """A bootstrap result: each metric with its interval, and the reliability diagram."""
    report = result.report
    title = (f"{_e(_report_title(report))}; {result.n_replicates} bootstrap replicates "
             f"({_e(result.resampling)}), {result.level:.0%} {_e(result.method)} intervals")
    head = ["metric", "value", f"{result.level:.0%} interval"]
    return _wrap(title, _table(head, _report_rows(report, result.intervals)),
                 _reliability(report))


def bootstrap_markdown(result: Any) -> str:
    """A bootstrap result as a Markdown table (metric, value, interval)."""
    report = result.report
    lines = [f"**trueprob** — {_report_title(report)}; {result.n_replicates} bootstrap "
             f"replicates ({result.resampling}), {result.level:.0%} {result.method} intervals",
             "", f"| metric | value | {result.level:.0%} interval |", "|---|---|---|"]
    for row in _report_rows(report, result.intervals):
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- task reports


def _scalar_rows(data: dict[str, Any], prefix: str = "") -> list[list[str]]:
    rows = []
    for key, value in data.items():
        if isinstance(value, dict) and key not in ("settings", "unavailable"):
            rows += _scalar_rows(value, f"{prefix}{key}.")
        elif isinstance(value, (int, float, str)) or value is None:
            rows.append([f"{prefix}{key}", _num(value)])
    return rows


def task_report_html(report: Any) -> str:
    """A multi-label or regression report: its scalar metrics and, for regression, the PIT
    histogram."""
    data = report.to_dict()
    figure = ""
    if type(report).__name__ == "RegressionReport":
        def draw(fig: Any) -> None:
            from trueprob.report.plots.tasks import pit_data, plot_pit_histogram

            plot_pit_histogram(pit_data(report), ax=fig.add_subplot())

        figure = _figure_html(draw, (4.6, 3.4), "PIT histogram against the uniform line", 380)
    title = f"{type(report).__name__}, {data.get('n')} rows"
    return _wrap(_e(title), _table(["metric", "value"], _scalar_rows(data)), figure)


# --------------------------------------------------------------------------- compare


def compare_html(data: Any) -> str:
    """A compare table (:class:`~trueprob.report.plots.CompareData`) and its chart."""
    head = ["method", *data.headings]
    rows = [[m, *(_num(float(v)) for v in data.values[i])]
            for i, m in enumerate(data.methods)]
    c = len(data.metrics)

    def draw(fig: Any) -> None:
        from trueprob.report.plots import plot_compare

        plot_compare(data, ax=fig.subplots(1, c, sharey=True, squeeze=False))

    figure = _figure_html(draw, (2.2 * c + 1.6, 0.35 * len(data.methods) + 1.3),
                          "The compared methods' metrics as bar charts", 180 * c + 160)
    return _wrap("compare", _table(head, rows), figure)


def compare_markdown(data: Any) -> str:
    lines = ["| method | " + " | ".join(data.headings) + " |",
             "|---|" + "---|" * len(data.metrics)]
    for i, m in enumerate(data.methods):
        lines.append(f"| {m} | " + " | ".join(_num(float(v)) for v in data.values[i]) + " |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- plot artists


def artists_html(artists: Any) -> str:
    """The figure that a ``trueprob.report.plots`` drawing function drew on, as SVG."""
    fig = _figure_of(artists)
    if fig is None:
        return f"<pre>{_e(repr(artists))}</pre>"
    from trueprob.report.html import _encode

    uri = _encode(fig, "svg", tight=True)
    return f'<img src="{uri}" alt="{_e(type(artists).__name__)}">'


def _figure_of(artists: Any) -> Any:
    for name in ("figure", "fig"):
        fig = getattr(artists, name, None)
        if fig is not None and hasattr(fig, "savefig"):
            return fig
    for name in ("ax", "axes"):
        ax = getattr(artists, name, None)
        if isinstance(ax, (list, tuple)) and ax:
            ax = ax[0]
        fig = getattr(ax, "figure", None)
        if fig is not None and hasattr(fig, "savefig"):
            return fig
    return None


# --------------------------------------------------------------------------- dispatch


def to_html(obj: Any) -> str:
    """The notebook HTML of any trueprob result (see the module docstring)."""
    name = type(obj).__name__
    if isinstance(obj, Report):
        return report_html(obj)
    if name == "BootstrapResult":
        return bootstrap_html(obj)
    if name in ("MultilabelReport", "RegressionReport"):
        return task_report_html(obj)
    if name == "CompareData":
        return compare_html(obj)
    if name.endswith("Artists"):
        return artists_html(obj)
    raise TypeError(f"no notebook rendering for {name}")


def to_markdown(obj: Any) -> str:
    """The notebook Markdown of any trueprob result: its ``to_markdown()`` or a table."""
    name = type(obj).__name__
    if name == "BootstrapResult":
        return bootstrap_markdown(obj)
    if name == "CompareData":
        return compare_markdown(obj)
    if hasattr(obj, "to_markdown"):
        return str(obj.to_markdown())
    raise TypeError(f"no notebook rendering for {name}")


__all__ = ["artists_html", "bootstrap_html", "bootstrap_markdown", "compare_html",
           "compare_markdown", "report_html", "task_report_html", "to_html", "to_markdown"]
