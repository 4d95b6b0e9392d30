"""The files of a streamed dataset and the batches of arrays read from them."""

from __future__ import annotations

import glob as _glob
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

PathLike = str | os.PathLike[str]
Spec = str | Sequence[str] | None

#: the fields of a file, in the order of ``trueprob.evaluate``'s arguments
FIELDS = ("logits", "probs", "labels", "targets", "counts", "sample_weight", "confidences",
          "predictions")
#: rows per batch read from a file
BATCH_ROWS = 1 << 16
_GLOB_CHARS = frozenset("*?[")


def dataset_files(path: PathLike) -> list[Path]:
    """The files of a dataset: ``path`` itself, the files under a folder, or a glob's matches.

    A folder is searched recursively for files whose suffix :func:`trueprob.io.read_inputs`
    reads; names starting with ``.`` or ``_`` (and folders so named) are skipped. Files are
    returned in natural order of their paths (``part-2`` before ``part-10``).

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> for i in (10, 2):
    ...     np.savez(folder / f"part-{i}.npz", logits=np.zeros((2, 3)), labels=[0, 1])
    >>> _ = (folder / "_SUCCESS").write_text("")
    >>> [p.name for p in dataset_files(folder)]
    ['part-2.npz', 'part-10.npz']
    """
    from trueprob.io.fields import natural_key
    from trueprob.io.read import READERS

    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a file, a folder or a glob (str or os.PathLike); got "
                        f"{type(path).__name__}")
    text = os.fspath(path)
    p = Path(text)
    if p.is_dir():
        found = [f for f in p.rglob("*") if f.is_file()
                 and f.suffix.lower() in READERS
                 and not any(part.startswith((".", "_")) for part in f.relative_to(p).parts)]
        if not found:
            raise FileNotFoundError(
                f"{text}: the folder holds no readable files (suffixes "
                f"{', '.join(sorted(READERS))})"
            )
        return sorted(found, key=lambda f: natural_key(f.relative_to(p).as_posix()))
    if p.exists():
        return [p]
    if _GLOB_CHARS & set(text):
        matches = [Path(m) for m in _glob.glob(text, recursive=True) if Path(m).is_file()]
        if not matches:
            raise FileNotFoundError(f"{text}: the pattern matches no file")
        return sorted(matches, key=lambda f: natural_key(f.as_posix()))
    raise FileNotFoundError(f"{text}: no such file or folder")


def _check_batch_rows(batch_rows: int) -> int:
    if isinstance(batch_rows, bool) or not isinstance(batch_rows, (int, np.integer)) \
            or batch_rows < 1:
        raise ValueError(f"batch_rows must be a positive integer; got {batch_rows!r}")
    return int(batch_rows)


def normalise(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every array of a batch as a C-contiguous numpy array (the layout the kernel expects).

    numpy's reductions over a row take a different order of additions on a strided or
    Fortran-ordered array than on a C-ordered one; one layout makes the result independent
    of the reader (list column or one column per class, memory map or buffered read).

    >>> z = np.asfortranarray(np.ones((3, 2), dtype=np.float32))
    >>> normalise({"logits": z})["logits"].flags.c_contiguous
    True
    """
    return {k: np.ascontiguousarray(v) for k, v in batch.items()}


def iter_batches(
    path: PathLike,
    /,
    *,
    logits: Spec = None,
    probs: Spec = None,
    labels: Spec = None,
    targets: Spec = None,
    counts: Spec = None,
    sample_weight: Spec = None,
    confidences: Spec = None,
    predictions: Spec = None,
    batch_rows: int = BATCH_ROWS,
    quiet: bool | None = True,
) -> Iterator[tuple[str, int, dict[str, np.ndarray]]]:
    """``(file, first row in that file, arrays)`` for every batch of a dataset, in order.

    Field names are those of :func:`trueprob.io.read_inputs` (a name, a glob such as
    ``"logit_*"`` or a list; auto-detected when not given), resolved in each file. Every file
    must give the same fields with the same number of classes; otherwise a
    :class:`~trueprob.io.FileFormatError` names the file that differs. Arrays are
    C-contiguous (:func:`normalise`). ``quiet=False`` lets each file of more than
    ``trueprob._progress.LARGE_ROWS`` rows show its own reading bar (see
    :func:`trueprob.io.read_inputs`); by default the passes below draw one bar for the whole
    dataset instead.

    Examples
    --------
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "val.npz")
    >>> np.savez(path, logits=np.zeros((5, 3)), labels=np.arange(5) % 3)
    >>> [(start, b["labels"].tolist()) for _, start, b in iter_batches(path, batch_rows=2)]
    [(0, [0, 1]), (2, [2, 0]), (4, [1])]
    """
    from trueprob.io import FileFormatError, iter_inputs

    rows = _check_batch_rows(batch_rows)
    specs = {"logits": logits, "probs": probs, "labels": labels, "targets": targets,
             "counts": counts, "sample_weight": sample_weight, "confidences": confidences,
             "predictions": predictions}
    files = dataset_files(path)
    layout: dict[str, tuple[int, ...]] | None = None
    first_file = ""
    for file in files:
        start = 0
        for batch in iter_inputs(file, **specs, batch_rows=rows, quiet=quiet):
            shape = {k: tuple(v.shape[1:]) for k, v in batch.items()}
            if layout is None:
                layout, first_file = shape, str(file)
            elif shape != layout:
                raise FileFormatError(
                    f"{file}: its fields {_describe(shape)} differ from those of "
                    f"{first_file} ({_describe(layout)}); every file of a dataset must hold "
                    f"the same fields with the same number of classes"
                )
            yield str(file), start, normalise(batch)
            start += len(next(iter(batch.values())))


def _describe(layout: dict[str, tuple[int, ...]]) -> str:
    return ", ".join(f"{k} {'(N, ' + str(s[0]) + ')' if s else '(N,)'}"
                     for k, s in layout.items())
