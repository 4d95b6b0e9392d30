"""Notebook rendering (trueprob.report.notebook), through IPython's display formatter.

The result records get ``_repr_html_`` / ``_repr_markdown_`` from
:class:`trueprob.results._display.NotebookDisplay`, which calls the renderers that
``import trueprob`` registers (the records sit below the rendering layer and never import it).
"""

from __future__ import annotations

import base64
import re

import numpy as np
import pytest

pytest.importorskip("matplotlib")

import trueprob
from trueprob.inference.bootstrap import BootstrapResult
from trueprob.report import notebook
from trueprob.report.plots.data import CompareData
from trueprob.results import MultilabelReport, RegressionReport, Report

CLASSES = (Report, BootstrapResult, MultilabelReport, RegressionReport, CompareData)


@pytest.fixture(autouse=True)
def _reprs(monkeypatch):
    # CompareData (diagram data) gets the hooks with the analysis layer's merge; until then
    # the test attaches the same one-liners to it
    for cls in CLASSES:
        if not hasattr(cls, "_repr_html_"):
            monkeypatch.setattr(cls, "_repr_html_", lambda self: notebook.to_html(self),
                                raising=False)
        if not hasattr(cls, "_repr_markdown_"):
            monkeypatch.setattr(cls, "_repr_markdown_", lambda self: notebook.to_markdown(self),
                                raising=False)


def test_records_have_the_hooks_without_importing_rendering():
    from trueprob.results._display import NotebookDisplay

    for cls in (Report, BootstrapResult, MultilabelReport, RegressionReport):
        assert issubclass(cls, NotebookDisplay), cls
        assert "_repr_html_" not in vars(cls)  # inherited, not patched


def _display(obj: object) -> dict[str, str]:
    """What Jupyter would show: IPython's formatter when installed, else the same methods."""
    try:
        from IPython.core.formatters import DisplayFormatter
    except ImportError:
        return {"text/html": obj._repr_html_(),  # type: ignore[attr-defined]
                "text/markdown": obj._repr_markdown_()}  # type: ignore[attr-defined]
    data, _ = DisplayFormatter().format(obj)
    return data


def _svgs(html: str) -> list[str]:
    return [base64.b64decode(m).decode() for m in
            re.findall(r'src="data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)"', html)]


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    z = rng.normal(size=(600, 5)) * 3
    y = rng.integers(0, 5, size=600)
    return z, y


def test_report_html_has_the_summary_and_an_svg_reliability_diagram(data):
    z, y = data
    report = trueprob.evaluate(y, logits=z, unit="bits")
    shown = _display(report)
    html = shown["text/html"]
    assert f"<td style=\"padding:2px 8px\">{report.ece:.4f}</td>" in html
    assert f"{report.nll:.4f}" in html and "log loss (NLL) (bits)" in html
    (svg,) = _svgs(html)
    assert "<svg" in svg and "</svg>" in svg
    assert shown["text/markdown"] == report.to_markdown()
    assert "<script" not in html


def test_bootstrap_html_shows_each_interval(data):
    z, y = data
    boot = trueprob.bootstrap(y, logits=z, n_replicates=50, random_state=0)
    shown = _display(boot)
    iv = boot.intervals["ece"]
    assert f"{iv.low:.4f} – {iv.high:.4f}" in shown["text/html"]
    assert "50 bootstrap replicates" in shown["text/html"]
    assert f"| ECE (top-label) | {boot.report.ece:.4f} | {iv.low:.4f} – {iv.high:.4f} |" \
        in shown["text/markdown"]
    assert len(_svgs(shown["text/html"])) == 1


def test_task_reports():
    from trueprob.multilabel import evaluate_multilabel
    from trueprob.regression import Gaussian, evaluate_regression

    rng = np.random.default_rng(0)
    y = rng.normal(size=300)
    reg = evaluate_regression(y, Gaussian(mean=np.zeros(300), std=np.full(300, 0.7)))
    shown = _display(reg)
    assert len(_svgs(shown["text/html"])) == 1  # the PIT histogram
    assert f"{reg.crps:.4f}" in shown["text/html"]
    assert shown["text/markdown"] == reg.to_markdown()
    labels = rng.integers(0, 2, size=(200, 3))
    ml = evaluate_multilabel(labels, logits=rng.normal(size=(200, 3)))
    shown = _display(ml)
    assert "micro.ece" in shown["text/html"] and shown["text/markdown"] == ml.to_markdown()


def test_compare_table_is_escaped_and_drawn():
    data = CompareData(methods=("none", "<b>temperature</b>"), metrics=("nll", "ece"),
                       headings=("NLL (nats)", "ECE"), values=np.array([[0.9, 0.05],
                                                                          [0.4, 0.01]]),
                       unit="nats")
    shown = _display(data)
    assert "&lt;b&gt;temperature&lt;/b&gt;" in shown["text/html"]
    assert "<b>temperature" not in shown["text/html"]
    assert len(_svgs(shown["text/html"])) == 1
    assert "| <b>temperature</b> | 0.4000 | 0.0100 |" in shown["text/markdown"]


def test_plot_artists_render_their_figure(data):
    import matplotlib.pyplot as plt

    from trueprob.report.plots import plot_reliability, reliability_data

    z, y = data
    artists = plot_reliability(reliability_data(trueprob.evaluate(y, logits=z)))
    try:
        (svg,) = _svgs(notebook.to_html(artists))
        assert "<svg" in svg
    finally:
        plt.close(artists.figure)


def test_without_matplotlib_the_table_comes_alone(data, monkeypatch):
    import trueprob.report.html as html_module

    def missing(*args, **kwargs):
        raise ImportError("drawing needs the optional dependency 'matplotlib'")

    monkeypatch.setattr(html_module, "_figure", missing)
    z, y = data
    html = notebook.to_html(trueprob.evaluate(y, logits=z))
    assert not _svgs(html) and "needs the optional dependency" in html
    assert "ECE (top-label)" in html


def test_unknown_objects_are_refused():
    with pytest.raises(TypeError, match="no notebook rendering for int"):
        notebook.to_html(3)
