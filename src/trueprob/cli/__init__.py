"""The `trueprob` command line: parse, load, call the library, print or write.

Each command lives in its own module and is registered here. Exit status: 0 on success, 1 on a
data error (the message goes to stderr), 2 on a usage error (click's convention).
"""

from __future__ import annotations

import importlib

import click

from trueprob._version import __version__

#: command name -> "module:function" (modules are imported when the CLI starts)
COMMANDS = {
    "evaluate": "trueprob.cli.evaluate_cmd:evaluate",
    "demo": "trueprob.cli.demo_cmd:demo",
    "fit": "trueprob.cli.calibrate_cmd:fit",
    "apply": "trueprob.cli.calibrate_cmd:apply",
    "compare": "trueprob.cli.calibrate_cmd:compare",
    "decompose": "trueprob.cli.decompose_cmd:decompose",
    "report": "trueprob.cli.report_cmd:report",
}


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="trueprob")
def main() -> None:
    """Are your classifier's outputs really probabilities? Measure, explain and fix them."""


def _register() -> None:
    for name, target in COMMANDS.items():
        module_name, func_name = target.split(":")
        main.add_command(getattr(importlib.import_module(module_name), func_name), name)


_register()
