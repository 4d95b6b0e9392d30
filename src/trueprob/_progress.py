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
can be any file; a bar is drawn on it only if ``stream.isatty()`` is true. One bar is drawn at
a time: a bar opened while another is on screen (a file read inside a streamed pass, a task
of a threaded Dask worker) is silent, so two live displays never overwrite each other.

Readers use :func:`row_progress`: a bar over rows when the total is known and above
:data:`LARGE_ROWS`, a spinner that appears once :data:`LARGE_ROWS` rows have been read when
it is not (CSV).
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterator
from typing import IO, Any

#: Files with more rows than this are "long work" for the readers.
LARGE_ROWS = 1_000_000
#: frames a second of a drawn bar (rich draws from a thread of this process; fewer frames
#: take less time from the work it shows)
REFRESH_PER_SECOND = 4

#: how many bars are drawn now (0 or 1; a nested bar is silent)
_drawn = 0
_drawn_lock = threading.Lock()


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

    def restart(self, description: str, *, total: float | None = None) -> None:
        """Start the bar again from zero with a new text and ``total`` (the next pass)."""
        self.description = description
        self.total = total
        self.completed = 0.0
        if self._display is not None:
            self._display.reset(self._task, total=total, completed=0,
                                description=description)


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
    global _drawn
    stream = sys.stderr if stream is None else stream
    with _drawn_lock:
        draw = _drawn == 0 and progress_enabled(quiet=quiet, stream=stream)
        if draw:
            _drawn += 1
    if not draw:
        yield ProgressBar(description, total)
        return
    try:
        with _display(stream, total) as display:
            yield ProgressBar(description, total, display)
    finally:
        with _drawn_lock:
            _drawn -= 1


@contextlib.contextmanager
def _display(stream: IO[str], total: float | None) -> Iterator[Any]:
    """A transient rich display on ``stream``: spinner, text, [bar, done/total], time."""
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
                  refresh_per_second=REFRESH_PER_SECOND,
                  redirect_stderr=False) as display:
        yield display


class RowProgress:
    """Rows read from a file, drawn only when there are many (see :func:`row_progress`).

    ``completed`` counts every row advanced; ``bar`` is the :class:`ProgressBar` once one was
    opened (None while the work is still small).
    """

    def __init__(self, description: str, total: int | None, quiet: bool | None,
                 stream: IO[str] | None, stack: contextlib.ExitStack) -> None:
        self.description = description
        self.total = total
        self.completed = 0
        self.bar: ProgressBar | None = None
        self._quiet = quiet
        self._stream = stream
        self._stack = stack
        self._threshold = LARGE_ROWS  # read at the start: tests lower it
        if total is not None and total > self._threshold:
            self._open()

    def _open(self) -> ProgressBar:
        bar = self.bar = self._stack.enter_context(
            progress(self.description, total=self.total, quiet=self._quiet,
                     stream=self._stream))
        if self.completed:
            bar.advance(self.completed)
        return bar

    def advance(self, rows: int) -> None:
        """Mark ``rows`` more rows read."""
        self.completed += rows
        bar = self.bar
        if bar is None:
            if self.total is not None or self.completed <= self._threshold:
                return
            bar = self._open()  # a file of unknown length turned out large: a spinner now
        else:
            bar.advance(rows)
        if self.total is None:  # a spinner has no done/total column: the count is in the text
            bar.describe(f"{self.description}: {self.completed:,} rows")


@contextlib.contextmanager
def row_progress(description: str, *, total: int | None, quiet: bool | None = None,
                 stream: IO[str] | None = None) -> Iterator[RowProgress]:
    """Progress of reading ``total`` rows (``None``: unknown), for files of many rows.

    A bar over rows is drawn (as by :func:`progress`) when ``total`` exceeds
    :data:`LARGE_ROWS`; when ``total`` is unknown, a spinner with the rows read so far appears
    once more than :data:`LARGE_ROWS` rows have been read. Smaller reads draw nothing.

    Examples
    --------
    >>> import io
    >>> with row_progress("reading preds.csv", total=None, stream=io.StringIO()) as rows:
    ...     rows.advance(10)
    >>> rows.completed, rows.bar is None
    (10, True)
    """
    with contextlib.ExitStack() as stack:
        yield RowProgress(description, total, quiet, stream, stack)
