"""``python -m trueprob`` is the ``trueprob`` command (src/trueprob/__main__.py)."""

from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner

from trueprob.cli import main


def test_python_dash_m_runs_the_cli():
    res = subprocess.run([sys.executable, "-m", "trueprob", "fit", "--help"],
                         capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr
    expected = CliRunner().invoke(main, ["fit", "--help"], prog_name="trueprob").output
    # the same command: the same usage line and options (line wrapping follows the terminal)
    assert res.stdout.split()[:5] == expected.split()[:5] == [
        "Usage:", "trueprob", "fit", "[OPTIONS]", "FILE"]
    assert sorted(w for w in res.stdout.split() if w.startswith("--")) == sorted(
        w for w in expected.split() if w.startswith("--"))
