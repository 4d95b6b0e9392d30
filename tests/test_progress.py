"""Progress bars: drawn on a terminal stderr, silent on anything else and with --quiet."""

from __future__ import annotations

import io
import sys

import numpy as np
from click.testing import CliRunner

from trueprob._progress import progress, progress_enabled
from trueprob.cli import main


class FakeTerminal(io.StringIO):
    """A text stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


class BrokenStream(io.StringIO):
    def isatty(self) -> bool:
        raise ValueError("I/O operation on closed file")


def test_enabled_only_on_a_terminal_and_not_quiet():
    assert progress_enabled(stream=FakeTerminal()) is True
    assert progress_enabled(stream=FakeTerminal(), quiet=True) is False
    assert progress_enabled(stream=io.StringIO()) is False
    assert progress_enabled(stream=BrokenStream()) is False
    assert progress_enabled(stream=object()) is False  # type: ignore[arg-type]


def test_silent_bar_writes_nothing_but_counts():
    out = io.StringIO()
    with progress("work", total=4, stream=out) as bar:
        for _ in range(4):
            bar.advance()
        bar.describe("other work")
    assert out.getvalue() == ""
    assert (bar.completed, bar.total, bar.active, bar.description) == (4.0, 4, False,
                                                                       "other work")


def test_terminal_bar_is_drawn_and_shows_the_description():
    out = FakeTerminal()
    with progress("bootstrap replicates", total=3, stream=out) as bar:
        assert bar.active
        for _ in range(3):
            bar.advance()
    text = out.getvalue()
    assert "bootstrap replicates" in text
    assert "\x1b[" in text  # terminal control sequences: a live display
    assert bar.completed == 3.0
    quiet = FakeTerminal()
    with progress("bootstrap replicates", total=3, stream=quiet, quiet=True) as bar:
        bar.advance(3)
    assert quiet.getvalue() == ""


def test_spinner_without_total_and_default_stream_is_stderr(monkeypatch):
    fake = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", fake)
    with progress("training") as bar:
        assert bar.total is None and bar.active
    assert "training" in fake.getvalue()


def test_report_command_is_silent_when_stderr_is_not_a_terminal(tmp_path):
    rng = np.random.default_rng(3)
    z = rng.normal(size=(300, 3)) * 3
    q = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    y = (q.cumsum(1) < rng.random((300, 1))).sum(1)  # drawn from softmax(z)
    np.savez(tmp_path / "t.npz", logits=z, labels=y)
    result = CliRunner().invoke(main, ["report", str(tmp_path / "t.npz"), "--format",
                                       "markdown", "-o", str(tmp_path / "r.md"),
                                       "--replicates", "20", "--resamples", "50"])
    assert result.exit_code == 0, result.output
    # stderr holds only the closing line: no bar, no control sequences
    assert result.stderr.splitlines() == [line for line in result.stderr.splitlines()
                                          if line.startswith("trueprob: wrote")]
    assert "\x1b[" not in result.stderr
