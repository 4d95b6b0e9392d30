"""Helpers shared by the CLI commands: error handling, atomic writes, warnings, paths."""

from __future__ import annotations

import contextlib
import io
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


class DataError(click.ClickException):
    """Bad data: exit status 1, message on stderr."""

    exit_code = 1

    def show(self, file: Any = None) -> None:
        click.echo(f"trueprob: error: {self.format_message()}", err=True)


def data_errors(func: F) -> F:
    """Turn ValueError / TypeError / OSError raised by the library into exit status 1."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (ValueError, TypeError, OSError) as exc:
            raise DataError(str(exc)) from exc

    return wrapper  # type: ignore[return-value]


def dask_spec(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """``--dask`` callback: a malformed spec is a usage error (exit 2), found before any
    file is read (the rule is :func:`trueprob.dask.local_workers`'s)."""
    if value is None:
        return None
    from trueprob.cli._dask import parse_local

    try:
        parse_local(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc).removeprefix("--dask "), ctx=ctx,
                                 param=param) from None
    return value


@contextlib.contextmanager
def about(*paths: str | None) -> Iterator[None]:
    """Bad data found in the block names its file: a ValueError / TypeError whose message
    names none of ``paths`` (the library names the argument and the row, not the file it
    came from) is re-raised as a :class:`DataError` starting with the first path."""
    try:
        yield
    except (ValueError, TypeError) as exc:
        message = str(exc)
        named = [p for p in paths if p is not None]
        if not named or any(p in message or os.path.basename(p) in message for p in named):
            raise
        raise DataError(f"{named[0]}: {message}") from exc


@contextlib.contextmanager
def warnings_to_stderr() -> Iterator[None]:
    """Library warnings raised in the block, printed once each on stderr after it."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for w in caught:
        echo_err(f"trueprob: warning: {w.message}")


def path_exists(path: str) -> bool:
    """``-`` (stdin), an existing file or folder, or a glob (checked when it is read)."""
    return path == "-" or any(c in path for c in "*?[") or Path(path).exists()


def is_dataset(path: str) -> bool:
    """A folder of files or a glob: read in batches, never whole."""
    return path != "-" and not Path(path).is_file()


def load_calibrator(path: str | None) -> Any:
    """The saved calibrator at ``path`` (plain JSON, never unpickled), or ``None``."""
    if path is None:
        return None
    from trueprob.calibrators import load

    return load(path)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], *, force: bool = False,
                 mode: str = "wb") -> Iterator[Any]:
    """:func:`trueprob.io.atomic_write`, with an existing file a usage error naming ``--force``."""
    from trueprob.io import atomic_write as write

    try:
        with write(path, force=force, mode=mode) as fh:
            yield fh
    except FileExistsError as exc:
        raise click.UsageError(f"{Path(exc.filename or path)} exists; pass --force to replace "
                               f"it") from None



def write_npz(path: str, arrays: dict[str, Any], *, force: bool) -> None:
    """``arrays`` saved as an ``.npz`` at ``path`` (no pickles), written atomically: what
    ``trueprob apply`` writes for every kind of output."""
    import numpy as np

    buffer = io.BytesIO()
    np.savez(buffer, allow_pickle=False, **arrays)
    with atomic_write(path, force=force) as fh:
        fh.write(buffer.getvalue())



def save_calibrator(calibrator: Any, path: str, *, force: bool) -> None:
    """A fitted calibrator saved as its plain JSON at ``path``, written atomically: what
    ``trueprob fit`` writes for every kind of input."""
    text = calibrator.to_json().encode()
    with atomic_write(path, force=force) as fh:
        fh.write(text)

def split_methods(text: str) -> list[tuple[str, str, str]] | None:
    """``--methods`` of ``trueprob compare``: None for ``all``, else (item, METHOD, WRAP) per
    non-empty comma-separated item ``METHOD`` or ``METHOD/WRAP`` (WRAP "" when absent); an
    empty list is a usage error."""
    if text.strip() == "all":
        return None
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise click.BadParameter("no method given", param_hint="--methods")
    return [(item, *item.partition("/")[::2]) for item in items]

#: CLI option -> (keyword of trueprob.io.read_inputs, what the option names)
FIELDS = {
    "logits": ("logits", "the logits z (one per class)"),
    "probs": ("probs", "the probabilities q (one per class)"),
    "labels": ("labels", "the hard labels y"),
    "targets": ("targets", "soft labels p (one per class)"),
    "counts": ("counts", "annotator counts n (one per class)"),
    "weights": ("sample_weight", "row weights w"),
    "confidences": ("confidences", "top-label confidences c (with --predictions)"),
    "predictions": ("predictions", "predicted classes (with --confidences)"),
}


def field_option(name: str) -> Callable[[F], F]:
    """``--NAME NAMES``: the array or column(s) of the input file holding one field."""
    field, what = FIELDS[name]
    return click.option(
        f"--{name}", field, metavar="NAMES", default=None,
        help=f"Array or column(s) holding {what} (a name, a glob such as 'logit_*', or a "
             f"comma list). Default: auto-detected by canonical name.",
    )


def field_options(*names: str) -> Callable[[F], F]:
    """Several :func:`field_option` decorators at once, in the order given."""

    def apply(func: F) -> F:
        for name in reversed(names):
            func = field_option(name)(func)
        return func

    return apply


def quiet_option(func: F) -> F:
    """``--quiet/-q``: no progress bar on standard error (reads of many rows, passes, Dask)."""
    return click.option("--quiet", "-q", is_flag=True, default=False,
                        help="No progress bar on stderr (bars are drawn only on a terminal, "
                             "for files of more than 1,000,000 rows, streamed passes and "
                             "Dask runs).")(func)


def read_fields(path: str, names: dict[str, str | None], *,
                quiet: bool | None = None) -> dict[str, Any]:
    """Read the named fields of a file with :func:`trueprob.io.read_inputs` (a bar over the
    rows of a large file on a terminal stderr unless ``quiet``)."""
    from trueprob.io import read_inputs

    try:
        arrays = read_inputs(path, **names, quiet=quiet)
    except ImportError as exc:  # an optional reader (pyarrow, torch) is missing
        raise DataError(str(exc)) from exc
    if looks_like_probabilities(arrays.get("logits")):
        echo_err(f"trueprob: warning: {path}: the logits look like probabilities (every value "
                 f"in [0, 1] and every row summing to 1); if they are, pass them with --probs "
                 f"(as logits they are put through a softmax again)")
    return arrays


def looks_like_probabilities(logits: Any) -> bool:
    """Whether 2-D ``logits`` are all in [0, 1] with rows summing to 1 (float tolerance):
    probabilities passed as logits. Names, never values, decide which is which; this only
    warns."""
    import numpy as np

    if logits is None or getattr(logits, "ndim", 0) != 2 or logits.shape[0] == 0 \
            or logits.shape[1] < 2:
        return False
    x = np.asarray(logits, dtype=np.float64)
    if not (np.all(np.isfinite(x)) and x.min() >= 0.0 and x.max() <= 1.0):
        return False
    tol = 8 * x.shape[1] * float(np.finfo(np.asarray(logits).dtype).eps) \
        if np.issubdtype(np.asarray(logits).dtype, np.floating) else 1e-9
    return bool(np.all(np.abs(x.sum(axis=1) - 1.0) <= max(tol, 1e-6)))


def echo_err(message: str) -> None:
    click.echo(message, err=True)


def stdout_is_tty() -> bool:
    return sys.stdout.isatty()


def stdout_console() -> Any:
    """A rich console on stdout. On a terminal it wraps to the terminal's width; into a file
    or a pipe nothing is wrapped (a file path is never cut mid-name)."""
    from rich.console import Console

    if sys.stdout.isatty():
        return Console(file=sys.stdout, highlight=False)
    return Console(file=sys.stdout, highlight=False, soft_wrap=True, width=1000)
