"""Progress bars for long work, on standard error, silent unless someone is watching.

A bar is drawn (with rich) only when standard error is a terminal and the caller did not ask
for quiet; otherwise every call is a no-op, so library code can report progress
unconditionally and pipes, log files and test runners see nothing. Long work means: reading
files of more than :data:`LARGE_ROWS` rows, bootstraps and resampling tests, Dask runs, the
demo's training and the HTML report.

Usage::

    with progress("bootstrap", total=n_replicates, quiet=quiet) as bar:
        for ...:
            ...
            bar.advance()

``quiet=None`` means "not quiet". ``stream`` (default ``sys.stderr``, looked up at call time)
can be any file; a bar is drawn on it only if ``stream.isatty()`` is true.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import IO, Any

#: Files with more rows than this are "long work" for the readers.
LARGE_ROWS = 1_000_000


def progress_enabled(*, quiet: bool | None = None, stream: IO[str] | None = None) -> bool:
    """True when a bar would be drawn: not ``quiet`` and ``stream`` (stderr) is a terminal.

    Examples
    --------
    >>> import io
    >>> progress_enabled(stream=io.StringIO())     # not a terminal: silent
    False
    >>> progress_enabled(quiet=True)
    False
    """
    if quiet:
        return False
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if callable(isatty) else False
    except (ValueError, OSError):  # a closed or detached stream
        return False


class ProgressBar:
    """One task of a progress display; every method is a no-op when the bar is silent.

    ``completed`` counts the units advanced so far (also when silent, so callers and tests
    can check the bookkeeping); ``total`` is ``None`` for work of unknown length (a spinner).
    """

    def __init__(self, description: str, total: float | None, display: Any = None) -> None:
        self.description = description
        self.total = total
        self.completed = 0.0
        self._display = display
        self._task = (display.add_task(description, total=total)
                      if display is not None else None)

    @property
    def active(self) -> bool:
        """True when the bar is drawn."""
        return self._display is not None

    def advance(self, amount: float = 1.0) -> None:
        """Mark ``amount`` more units done."""
        self.completed += amount
        if self._display is not None:
            self._display.update(self._task, advance=amount)

    def describe(self, description: str) -> None:
        """Change the text beside the bar (e.g. the step now running)."""
        self.description = description
        if self._display is not None:
            self._display.update(self._task, description=description)


@contextlib.contextmanager
def progress(description: str, *, total: float | None = None, quiet: bool | None = None,
             stream: IO[str] | None = None) -> Iterator[ProgressBar]:
    """A progress bar on standard error for the duration of the ``with`` block.

    Parameters
    ----------
    description : str
        What is running, shown beside the bar.
    total : float, optional
        Units of work (a spinner when ``None``).
    quiet : bool, optional
        No bar at all (the CLI's ``--quiet``).
    stream : file, optional
        Where to draw (default: ``sys.stderr``). Nothing is written unless it is a terminal.

    Yields
    ------
    ProgressBar
        Call ``advance(n)`` as work gets done and ``describe(text)`` to change the label.
        The bar disappears when the block ends (it is transient), so it never mixes with the
        command's output.

    Examples
    --------
    >>> import io
    >>> out = io.StringIO()
    >>> with progress("counting", total=3, stream=out) as bar:
    ...     for _ in range(3):
    ...         bar.advance()
    >>> bar.completed, bar.active, out.getvalue()
    (3.0, False, '')
    """
    stream = sys.stderr if stream is None else stream
    if not progress_enabled(quiet=quiet, stream=stream):
        yield ProgressBar(description, total)
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    console = Console(file=stream, force_terminal=True, highlight=False)
    columns: list[Any] = [SpinnerColumn(), TextColumn("{task.description}")]
    if total is not None:
        columns += [BarColumn(), MofNCompleteColumn()]
    columns.append(TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True, redirect_stdout=False,
                  redirect_stderr=False) as display:
        yield ProgressBar(description, total, display)
