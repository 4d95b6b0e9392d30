"""Progress over the passes of a stream: one bar over the rows, restarted at each pass."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator

import trueprob._progress as _progress
from trueprob._progress import ProgressBar
from trueprob.streaming.batches import Batch
from trueprob.streaming.files import PathLike, Spec, dataset_files


def dataset_rows(path: PathLike, specs: dict[str, Spec] | None = None) -> int | None:
    """The rows of a dataset from its files' headers and metadata, or None if a file does not
    say (CSV, ``.pt``) or cannot be read (the pass will report that file's problem).

    >>> import tempfile, pathlib
    >>> import numpy as np
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> for i, n in enumerate((3, 4)):
    ...     np.savez(folder / f"part-{i}.npz", logits=np.zeros((n, 2)), labels=np.zeros(n, int))
    >>> dataset_rows(folder)
    7
    """
    from trueprob.io.read import count_rows

    total = 0
    try:
        for file in dataset_files(path):
            n = count_rows(file, {k: v for k, v in (specs or {}).items() if v is not None})
            if n is None:
                return None
            total += n
    except (ValueError, TypeError, OSError, ImportError):
        return None
    return total


@contextlib.contextmanager
def pass_progress(path: PathLike, specs: dict[str, Spec], description: str, *,
                  quiet: bool | None) -> Iterator[ProgressBar]:
    """One bar over the rows of ``path`` for a run of passes (:func:`counted` restarts it at
    each pass). The total comes from :func:`dataset_rows`, looked up only when the bar is
    drawn; without it the bar is a spinner with the rows counted in its text."""

    total = dataset_rows(path, specs) if _progress.progress_enabled(quiet=quiet) else None
    with _progress.progress(description, total=total, quiet=quiet) as bar:
        yield bar


def counted(passes: Callable[[], Iterable[Batch]], bar: ProgressBar | None,
            description: str) -> Iterable[Batch]:
    """Start a pass of ``passes`` and, with a ``bar``, restart the bar from zero with
    ``description`` and advance it by each batch's rows once the batch has been used."""
    if bar is None:
        return passes()
    bar.restart(description, total=bar.total)
    return _advancing(passes(), bar, description)


def _advancing(batches: Iterable[Batch], bar: ProgressBar, description: str) -> Iterator[Batch]:
    for batch in batches:
        yield batch
        bar.advance(batch.inputs.n_rows)
        if bar.total is None:  # a spinner: the rows so far in its text
            bar.describe(f"{description}: {int(bar.completed):,} rows")
