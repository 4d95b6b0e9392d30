"""The analysis layer (trueprob.analysis): below the rendering, and its old paths kept.

- no module of trueprob.analysis imports trueprob.report, trueprob.cli or click, at module or
  function level (read from the source with ast): the deprecated ``.verdict()`` methods reach
  the sentences through the renderer registry that ``import trueprob`` fills;
- the old import paths (trueprob.report.verdict / streamed / tasks / plots.data /
  plots.tasks) give the very objects of the analysis layer;
- the old ``.verdict()`` methods warn and return what the rendering functions return.
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

import trueprob.analysis as analysis

ROOT = Path(analysis.__file__).parent
UPWARD = ("trueprob.report", "trueprob.cli", "click")
#: the result records, on their way to trueprob.results (a low layer): not rendering
RECORDS = "trueprob.report.result"


def _imports(path: Path) -> list[tuple[str, str]]:
    """(enclosing function or "<module>", imported module) of every import in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[tuple[str, str]] = []

    def visit(node: ast.AST, where: str) -> None:
        for child in ast.iter_child_nodes(node):
            here = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) \
                else where
            if isinstance(child, ast.Import):
                found.extend((here, a.name) for a in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and not child.level:
                found.append((here, child.module))
            visit(child, here)

    visit(tree, "<module>")
    return found


def test_the_analysis_imports_no_rendering_and_no_cli():
    modules = sorted(ROOT.glob("*.py"))
    assert {p.stem for p in modules} >= {"classification", "feeds", "records", "diagrams",
                                         "multilabel", "regression"}
    upward = [(p.name, where, name) for p in modules for where, name in _imports(p)
              if name.startswith(UPWARD) and name != RECORDS]
    assert upward == []


def test_the_old_paths_are_the_analysis_objects():
    from trueprob.analysis import classification, diagrams, multilabel, records, regression
    from trueprob.report import streamed, tasks, verdict
    from trueprob.report.plots import data
    from trueprob.report.plots import tasks as plot_tasks

    assert verdict.analyze is classification.analyze is analysis.analyze
    assert streamed.analyze_path is classification.analyze_path
    assert verdict.Analysis is records.Analysis and verdict.Evaluation is records.Evaluation
    assert tasks.analyze_multilabel is multilabel.analyze_multilabel
    assert tasks.analyze_regression is regression.analyze_regression
    assert data.reliability_data is diagrams.reliability_data
    assert plot_tasks.binomial_band is regression.binomial_band


def _drawn(n: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, k)) * 2
    q = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    return z, (q.cumsum(1) < rng.random((n, 1))).sum(1)


def test_the_old_verdict_methods_warn_and_equal_the_rendering_functions():
    from trueprob.regression import Gaussian
    from trueprob.report.tasks import multilabel_verdict, regression_verdict
    from trueprob.report.verdict import verdict

    z, y = _drawn(300, 3, 0)
    a = analysis.analyze(y, logits=3 * z, n_replicates=20, n_resamples=20, quiet=True)
    with pytest.warns(DeprecationWarning, match=r"Analysis\.verdict\(\) is deprecated; call "
                                                r"trueprob\.report\.verdict\.verdict"):
        old = a.verdict()
    assert old == verdict(a) and old[2].startswith("Q3, top label: the top label is over-")
    ml = analysis.analyze_multilabel((z > 0).astype(int), logits=z)
    with pytest.warns(DeprecationWarning, match="multilabel_verdict"):
        assert ml.verdict() == multilabel_verdict(ml)
    mu = z[:, 0]
    reg = analysis.analyze_regression(mu + 1.0, Gaussian(mu, 1.0))
    with pytest.warns(DeprecationWarning, match="regression_verdict"):
        assert reg.verdict() == regression_verdict(reg)
