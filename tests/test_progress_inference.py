"""Progress of the long inference work: bootstrap replicates, consistency resamples, and the
report's analyses (whose inner steps must not open a second live display)."""

from __future__ import annotations

import contextlib
import importlib
import io
import sys

import numpy as np
import pytest

from trueprob import _progress
from trueprob.inference import bootstrap, consistency_test


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _data(n: int = 600, k: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    z = rng.normal(size=(n, k)) * 2
    q = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    return 2 * z, (q.cumsum(1) < rng.random((n, 1))).sum(1)


def _recorder(monkeypatch, module) -> list:
    """Replace ``module.progress`` by one that records (description, total, completed)."""
    bars: list = []

    def recording(description, *, total=None, quiet=None, stream=None):
        @contextlib.contextmanager
        def manager():
            bar = _progress.ProgressBar(description, total)
            bars.append(bar)
            yield bar
        return manager()

    monkeypatch.setattr(module, "progress", recording)
    return bars


def test_bootstrap_bar_counts_every_replicate(monkeypatch):
    mod = importlib.import_module("trueprob.inference.bootstrap")  # the name is shadowed

    bars = _recorder(monkeypatch, mod)
    z, y = _data()
    bootstrap(y, logits=z, n_replicates=37, random_state=0)
    assert [(b.description, b.total, b.completed) for b in bars] == [("bootstrap", 37, 37.0)]


@pytest.mark.parametrize("statistic", ["ece", "classwise_ece"])
def test_consistency_bar_counts_every_resample(monkeypatch, statistic):
    import trueprob.inference.consistency as mod

    bars = _recorder(monkeypatch, mod)
    z, y = _data()
    consistency_test(y, logits=z, statistic=statistic, n_resamples=45, random_state=0)
    assert [(b.total, b.completed) for b in bars] == [(45, 45.0)]
    assert bars[0].description == f"consistency test ({statistic})"


def test_drawn_on_a_terminal_silent_when_quiet_same_numbers(monkeypatch):
    z, y = _data()
    fake = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", fake)
    drawn = bootstrap(y, logits=z, n_replicates=50, random_state=1)
    test = consistency_test(y, logits=z, n_resamples=50, random_state=1)
    assert "bootstrap" in fake.getvalue() and "consistency test (ece)" in fake.getvalue()
    quiet = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", quiet)
    silent = bootstrap(y, logits=z, n_replicates=50, random_state=1, quiet=True)
    silent_test = consistency_test(y, logits=z, n_resamples=50, random_state=1, quiet=True)
    assert quiet.getvalue() == ""
    assert drawn.intervals == silent.intervals
    assert test == silent_test


def test_report_analyses_show_one_display_on_a_terminal(monkeypatch, tmp_path):
    """rich allows one live display at a time: the report's bar must be the only one."""
    from trueprob.report.streamed import analyze_path
    from trueprob.report.verdict import analyze

    z, y = _data()
    fake = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", fake)
    a = analyze(y, logits=z, n_replicates=20, n_resamples=20, quiet=False)
    np.savez(tmp_path / "d.npz", logits=z, labels=y)
    b = analyze_path(tmp_path / "d.npz", batch_rows=250, n_replicates=20, n_resamples=20,
                     quiet=False)
    assert "report (model)" in fake.getvalue()
    assert a.before.report.ece == pytest.approx(b.before.report.ece, rel=1e-12)
