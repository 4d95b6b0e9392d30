"""``python -m trueprob``: the command-line interface, as the ``trueprob`` command."""

from trueprob.cli import main

if __name__ == "__main__":
    main(prog_name="trueprob")
