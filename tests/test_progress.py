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


def test_analysis_advances_its_bar_through_every_step(monkeypatch):
    from trueprob import _progress
    from trueprob.analysis import classification as verdict  # where analyze draws its bar
    from trueprob.calibrators import TemperatureScaling

    seen: list[tuple[str, float]] = []

    class Recorder(_progress.ProgressBar):
        def advance(self, amount: float = 1.0) -> None:
            super().advance(amount)
            seen.append((self.description, self.completed))

    def recording(description, *, total=None, quiet=None, stream=None):
        import contextlib

        @contextlib.contextmanager
        def manager():
            yield Recorder(description, total)

        return manager()

    monkeypatch.setattr(verdict, "progress", recording)
    rng = np.random.default_rng(0)
    z = rng.normal(size=(400, 3)) * 2
    q = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    y = (q.cumsum(1) < rng.random((400, 1))).sum(1)
    cal = TemperatureScaling().fit(y, logits=3 * z)
    verdict.analyze(y, logits=3 * z, calibrator=cal, n_replicates=20, n_resamples=20,
                    quiet=True)
    assert [c for _, c in seen] == list(range(1, 2 * verdict.STEPS + 2))
    assert seen[1][0] == "report (uncalibrated): bootstrap (20 replicates)"
    assert seen[-1][0].startswith("report (temperature ") and seen[-1][0].endswith("SKCE")
