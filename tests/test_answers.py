"""docs/answers.md is what examples/answers.py computes: a subset run (two models, ten training
epochs) regenerates rows that must equal the committed document's rows."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
COMMITTED = REPO / "docs" / "answers.md"
MARKER = re.compile(r"<!-- table: (\S+) \((per-model|pooled)\) -->")


def tables(text: str) -> dict[str, tuple[str, dict[str, list[str]]]]:
    """{table name: (kind, {first cell: cells})} for every marked markdown table."""
    out: dict[str, tuple[str, dict[str, list[str]]]] = {}
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = MARKER.fullmatch(line.strip())
        if not m:
            continue
        rows: dict[str, list[str]] = {}
        for row in lines[i + 3:]:  # marker, header, separator
            if not row.startswith("|"):
                break
            cells = [c.strip() for c in row.strip().strip("|").split("|")]
            rows[cells[0]] = cells
        out[m.group(1)] = (m.group(2), rows)
    return out


def test_table_parser_reads_rows():
    text = ("<!-- table: t (per-model) -->\n| a | b |\n|---|---|\n| x | 1.0 |\n| y | 2.0 |\n\n"
            "<!-- table: u (pooled) -->\n| c |\n|---|\n| z |\n")
    assert tables(text) == {"t": ("per-model", {"x": ["x", "1.0"], "y": ["y", "2.0"]}),
                            "u": ("pooled", {"z": ["z"]})}


@pytest.mark.data
def test_subset_rows_equal_the_committed_document(shared_data, tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    pytest.importorskip("matplotlib")
    assert COMMITTED.is_file(), "docs/answers.md is committed"
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    done = subprocess.run(
        [sys.executable, str(REPO / "examples" / "answers.py"), "--subset", "--data",
         str(shared_data), "--out", str(tmp_path)],
        capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    fresh = tables((tmp_path / "answers.md").read_text())
    committed = tables(COMMITTED.read_text())
    per_model = {name: rows for name, (kind, rows) in fresh.items() if kind == "per-model"}
    assert set(per_model) == {"q1", "q1_humans", "q2_soft", "q3", "q4", "training"}
    compared = 0
    for name, rows in per_model.items():
        assert rows, f"the subset run wrote no rows in table {name}"
        kept = committed[name][1]
        for key, cells in rows.items():
            assert key in kept, f"row {key!r} of table {name} is not in docs/answers.md"
            assert cells == kept[key], f"table {name}, row {key!r} differs"
            compared += 1
    assert compared >= 14
    # Q2's identities are computed on one model of the subset: the same numbers
    assert fresh["q2_identities"][1] == committed["q2_identities"][1]
    for png in ("q1_ranked_reliability.png", "q3_gap_vs_confidence.png", "training.png"):
        assert (tmp_path / "answers" / png).stat().st_size > 1000
        assert (REPO / "docs" / "answers" / png).is_file()


def test_readme_quotes_the_document():
    """The README's "What the answer is" paragraph links the document and quotes numbers that
    are in it."""
    readme = (REPO / "README.md").read_text()
    m = re.search(r"## What the answer is\n(.*?)\n## ", readme, flags=re.S)
    assert m, "README.md has a 'What the answer is' section"
    para = m.group(1)
    assert "docs/answers.md" in para
    doc = COMMITTED.read_text()
    quoted = re.findall(r"\d+\.\d{2,}|\d+ of \d+", para)
    assert len(quoted) >= 2, quoted
    for number in quoted:
        assert number in doc, f"README quotes {number}, which docs/answers.md does not contain"
