"""`import trueprob` pulls in numpy, scipy and array-api-compat only (DESIGN.md, Packaging)."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "pyarrow", "sklearn", "matplotlib", "dask", "pandas")


def test_import_trueprob_imports_no_optional_backend():
    code = (
        "import sys, trueprob, trueprob.metrics, trueprob.stats, trueprob.calibrators;"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == ""


def test_cli_import_imports_no_optional_backend():
    code = (
        "import sys, trueprob.cli;"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == ""
