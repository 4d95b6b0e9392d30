"""The README's Python examples run as written, and .ci/run runs the README's test command."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


def test_python_blocks_run():
    blocks = re.findall(r"```python\n(.*?)```", README, flags=re.S)
    assert blocks, "the README has Python examples"
    namespace: dict[str, object] = {}
    for block in blocks:
        exec(compile(textwrap.dedent(block), "README.md", "exec"), namespace)


def test_ci_runs_the_readme_test_command():
    commands = [line.strip() for line in README.splitlines()
                if re.match(r"^(python3? -m )?pytest( |$)", line.strip())]
    assert commands, "the README names its test command"
    ci = (REPO / ".ci" / "run").read_text()
    assert commands[0] in ci.splitlines()
