"""Evaluation and temperature fitting over files larger than memory, a batch of rows at a time.

A *dataset* is one file that :func:`trueprob.io.iter_inputs` reads (``.parquet``, ``.npy``,
``.npz``, ``.csv``, ...), a folder of such files (read recursively, in natural order of their
paths; names starting with ``.`` or ``_`` are skipped, so ``_SUCCESS`` and ``_metadata`` do no
harm), or a glob (``"preds/part-*.parquet"``). Each file is read in record batches of at most
``batch_rows`` rows; each batch is validated, reduced to a fixed-size
:class:`~trueprob.stats.EvaluationStats` state and dropped, so peak memory is one batch plus
the state whatever the number of rows.

Every batch is made C-contiguous before it reaches the per-row kernel: a list column, one
column per class, a structured ``.npy`` field or a Fortran-ordered array then give the same
bytes to the same reductions, and the result does not depend on how the rows were read.
Batch boundaries move only floating-point rounding of the float64 sums.

Equal-mass bins need their edges before the pass. They are found exactly, in bounded memory,
by :class:`QuantileSearch`: a few passes of histograms over the bit patterns of the float64
confidences narrow each weighted quantile down to one value (see its docstring), so the edges
are those :func:`trueprob.evaluate` computes from all rows at once.
"""

from __future__ import annotations

import contextlib
import glob as _glob
import math
import os
import re
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from trueprob._progress import ProgressBar
from trueprob._validation import Inputs, prepare
from trueprob.results import Report
from trueprob.stats.evaluation import EvaluationStats, check_reduce, check_unit

PathLike = str | os.PathLike[str]
Spec = str | Sequence[str] | None

#: the fields of a file, in the order of ``trueprob.evaluate``'s arguments
FIELDS = ("logits", "probs", "labels", "targets", "counts", "sample_weight", "confidences",
          "predictions")
#: rows per batch read from a file
BATCH_ROWS = 1 << 16
_GLOB_CHARS = frozenset("*?[")


# ============================================================================ files
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


# ============================================================================ batches
@dataclass(frozen=True)
class Batch:
    """One validated batch of a stream: where it came from and its prepared inputs."""

    source: str
    start: int
    inputs: Inputs


def prepare_batch(arrays: dict[str, Any], *, n_classes: int | None = None,
                  calibrator: Any = None, source: str = "<batch>", start: int = 0,
                  purpose: str | None = None) -> Batch:
    """Validate one batch of arrays (the dicts of :func:`iter_batches`) into a :class:`Batch`.

    With a fitted ``calibrator`` the logits or probabilities are replaced by its calibrated
    log-probabilities (passed on as logits). ``purpose`` (e.g. "temperature scaling") refuses
    top-label inputs for a fit that needs the whole vector. Errors name the file; value errors
    (raised when the batch's chunks are read) name the offending row counted from the file's
    first row.
    """
    arrays = dict(arrays)
    if calibrator is not None:
        arrays = calibrate_arrays(arrays, calibrator)
    targets = [k for k in ("labels", "targets", "counts") if k in arrays]
    if not targets:
        raise ValueError(
            f"{source}: no targets found (no field 'labels', 'targets' or 'counts'); name them "
            f"with labels=, targets= or counts= (CLI: --labels, --targets, --counts)"
        )
    top_label = "confidences" in arrays
    if top_label and purpose is not None:
        raise ValueError(f"{source}: {purpose} needs logits= or probs= (the whole vector); "
                         f"top-label confidences cannot be rescaled")
    if top_label and n_classes is None:
        raise ValueError(
            "n_classes= is needed for top-label inputs (confidences and predictions) read in "
            "batches: K cannot be inferred from the largest index of one batch"
        )
    try:
        inputs = prepare(arrays.pop("labels", None), **arrays,
                         n_classes=n_classes if top_label else None)
    except (ValueError, TypeError) as exc:
        raise type(exc)(f"{source}: {_absolute_rows(str(exc), start)}") from exc
    if n_classes is not None and inputs.n_classes != n_classes:
        raise ValueError(f"{source}: the model outputs have K={inputs.n_classes} classes but "
                         f"n_classes={n_classes}")
    return Batch(source, start, inputs)


def calibrate_arrays(arrays: dict[str, Any], calibrator: Any) -> dict[str, Any]:
    """Replace ``logits`` / ``probs`` by ``calibrator``'s log-probabilities (as ``logits``)."""
    out = dict(arrays)
    if "logits" in out:
        out["logits"] = calibrator.predict_logproba(logits=out.pop("logits"))
    elif "probs" in out:
        out["logits"] = calibrator.predict_logproba(probs=out.pop("probs"))
    else:
        raise ValueError("a calibrator needs logits or probabilities; the data gives only "
                         "top-label confidences and predictions")
    return out


_ROW = re.compile(r"\brow (\d+)\b")


def _absolute_rows(message: str, start: int) -> str:
    """A validation message of a batch with its row numbers counted from the file's start."""
    return _ROW.sub(lambda m: f"row {int(m.group(1)) + start}", message)


def _checked_chunks(batch: Batch) -> Iterator[Any]:
    """The validated chunks of a batch; value errors name the file and the row in it."""
    try:
        yield from batch.inputs.chunks()
    except ValueError as exc:
        raise ValueError(f"{batch.source}: {_absolute_rows(str(exc), batch.start)}") from exc


def _stream(path: PathLike, specs: dict[str, Spec], batch_rows: int, n_classes: int | None,
            calibrator: Any, purpose: str | None = None) -> Callable[[], Iterator[Batch]]:
    """A function that starts a new pass over the dataset each time it is called."""
    dataset_files(path)  # a missing path or an empty folder is an error now, not at a pass

    fields: dict[str, Any] = specs

    def batches() -> Iterator[Batch]:
        k = n_classes
        for source, start, arrays in iter_batches(path, **fields, batch_rows=batch_rows):
            batch = prepare_batch(arrays, n_classes=k, calibrator=calibrator, source=source,
                                  start=start, purpose=purpose)
            k = batch.inputs.n_classes
            yield batch

    return batches


# ============================================================================ progress
def dataset_rows(path: PathLike, specs: dict[str, Spec] | None = None) -> int | None:
    """The rows of a dataset from its files' headers and metadata, or None if a file does not
    say (CSV, ``.pt``) or cannot be read (the pass will report that file's problem).

    >>> import tempfile, pathlib
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
    from trueprob import _progress

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


# ============================================================================ equal-mass edges
#: cells of each histogram of :class:`QuantileSearch`
SEARCH_CELLS = 1 << 16
#: a quantile's interval whose rows number at most this is collected and sorted exactly
SEARCH_COLLECT = 1 << 16
#: key of 1.0: float64 bit patterns of values in [0, 1] are increasing integers up to this
_KEY_ONE = int(np.float64(1.0).view(np.int64))


def confidence_keys(confidence: Any) -> np.ndarray:
    """The float64 confidences as int64 keys that sort like the values (c in [0, 1]).

    >>> confidence_keys(np.array([0.0, 0.5, 1.0])).argsort().tolist()
    [0, 1, 2]
    """
    c = np.asarray(confidence, dtype=np.float64) + 0.0  # -0.0 + 0.0 = +0.0
    return c.view(np.int64)


@dataclass(frozen=True)
class SearchPlan:
    """What one pass of :class:`QuantileSearch` asks of every row: for each interval
    [lo, hi) of keys, a histogram of ``SEARCH_CELLS`` cells (``collect`` False) or the keys
    and weights themselves (``collect`` True)."""

    lo: tuple[int, ...]
    hi: tuple[int, ...]
    collect: tuple[bool, ...]

    def width(self, i: int) -> int:
        return max(1, -(-(self.hi[i] - self.lo[i]) // SEARCH_CELLS))


def search_pass(plan: SearchPlan, keys: np.ndarray, weights: np.ndarray | None) -> list[Any]:
    """The part of one search pass contributed by some rows (merge parts with
    :func:`merge_search`): per interval, ``("cells", weights, counts)`` of its histogram or
    ``("rows", keys, weights)`` of the rows inside it."""
    out: list[Any] = []
    for i in range(len(plan.lo)):
        lo, hi = plan.lo[i], plan.hi[i]
        inside = (keys >= lo) & (keys < hi)
        k = keys[inside]
        w = np.ones(k.size) if weights is None else np.asarray(weights[inside], np.float64)
        if plan.collect[i]:
            out.append(("rows", k.copy(), w))
        else:
            cell = (k - lo) // plan.width(i)
            # (bincount of nothing is int64 even with weights: cast both)
            out.append(("cells",
                        np.bincount(cell, weights=w, minlength=SEARCH_CELLS).astype(np.float64),
                        np.bincount(cell, minlength=SEARCH_CELLS).astype(np.int64)))
    return out


def merge_search(a: list[Any] | None, b: list[Any]) -> list[Any]:
    """Add histograms and concatenate collected rows of two parts of a search pass."""
    if a is None:
        return b
    out = []
    for (kind, a0, a1), (other, b0, b1) in zip(a, b, strict=True):
        if kind != other:
            raise ValueError(f"cannot merge search parts of kinds {kind!r} and {other!r}")
        if kind == "cells":
            out.append((kind, a0 + b0, a1 + b1))
        else:
            out.append((kind, np.concatenate([a0, b0]), np.concatenate([a1, b1])))
    return out


class QuantileSearch:
    """Exact weighted quantiles of the confidences in a few bounded-memory passes.

    Finds the equal-mass edges of SPEC.md (those of
    :func:`trueprob.core.binning.equal_mass_edges`): e_j, j = 1..B-1, is the smallest
    confidence v with weight {c <= v} >= (j/B)(1 - 1e-12) W. Confidences in [0, 1] are
    compared through their float64 bit patterns (int64 keys in the same order). The first
    pass takes the total weight W and a histogram of 2**16 cells over all keys; each later
    pass narrows the interval of every unresolved quantile to the cell where its cumulative
    weight is reached, with a new 2**16-cell histogram inside it, or, once the interval holds
    at most 2**16 rows, collects and sorts them. Each pass divides an interval by 2**16, so
    even ties and values a few ulp apart resolve in at most five passes; typically two or
    three. Memory: (B-1) histograms and at most B x 2**16 collected keys, whatever N.

    Drive it with :meth:`plan` (None when done), :func:`search_pass` on every part of the
    data, :func:`merge_search`, and :meth:`update`.
    """

    def __init__(self, n_bins: int) -> None:
        self.n_bins = int(n_bins)
        self.total: float | None = None
        self.targets: np.ndarray | None = None
        n = self.n_bins - 1
        self.lo = np.zeros(n, dtype=np.int64)
        self.hi = np.full(n, _KEY_ONE + 1, dtype=np.int64)
        self.below = np.zeros(n)  # weight of the keys below each interval
        self.count = np.zeros(n, dtype=np.int64)  # rows in each interval (after pass 1)
        self.result = np.full(n, -1, dtype=np.int64)
        self.passes = 0

    def plan(self) -> SearchPlan | None:
        """The next pass's request, or None when every edge is known."""
        if self.n_bins == 1:
            return None
        if self.passes == 0:
            return SearchPlan((0,), (_KEY_ONE + 1,), (False,))
        todo = [j for j in range(self.n_bins - 1) if self.result[j] < 0]
        if not todo:
            return None
        intervals = sorted({(int(self.lo[j]), int(self.hi[j])) for j in todo})
        collect = tuple(
            bool(max(self.count[j] for j in todo if (self.lo[j], self.hi[j]) == iv)
                 <= SEARCH_COLLECT) for iv in intervals)
        return SearchPlan(tuple(i[0] for i in intervals), tuple(i[1] for i in intervals),
                          collect)

    def update(self, plan: SearchPlan, parts: list[Any], total: float | None = None) -> None:
        """Take the merged result of a pass (and, after the first pass, W)."""
        if self.passes == 0:
            if total is None or not total > 0:
                raise ValueError("sample_weight sums to 0; at least one row needs a positive "
                                 "weight")
            self.total = float(total)
            self.targets = (np.arange(1, self.n_bins, dtype=np.float64) / self.n_bins
                            * self.total * (1 - 1e-12))
        assert self.targets is not None
        self.passes += 1
        for i in range(len(plan.lo)):
            lo, hi = plan.lo[i], plan.hi[i]
            mine = [j for j in range(self.n_bins - 1) if self.result[j] < 0
                    and self.lo[j] == lo and self.hi[j] == hi]
            _, a, b = parts[i]
            if plan.collect[i]:
                order = np.argsort(a, kind="stable")
                keys, cum = a[order], np.cumsum(b[order])
                for j in mine:
                    need = self.targets[j] - self.below[j]
                    pos = int(np.searchsorted(cum, need, side="left"))
                    if keys.size == 0:  # rounding put the target past the last row
                        self.result[j] = lo
                    else:
                        self.result[j] = keys[min(pos, keys.size - 1)]
                continue
            width = plan.width(i)
            cum = np.cumsum(a)
            nonempty = np.flatnonzero(b)
            for j in mine:
                need = self.targets[j] - self.below[j]
                c = int(np.searchsorted(cum, need, side="left"))
                if c >= SEARCH_CELLS:  # rounding: the target is at the interval's last row
                    c = int(nonempty[-1]) if nonempty.size else 0
                self.below[j] += float(cum[c - 1]) if c > 0 else 0.0
                self.lo[j] = lo + c * width
                self.hi[j] = min(lo + (c + 1) * width, hi)
                self.count[j] = int(b[c])
                if self.hi[j] - self.lo[j] == 1:
                    self.result[j] = self.lo[j]

    def edges(self) -> np.ndarray:
        """The B + 1 edges: 0, the B - 1 quantiles, 1."""
        inner = self.result.view(np.float64) if self.n_bins > 1 else np.empty(0)
        return np.concatenate([[0.0], inner, [1.0]])


def _confidences(batch: Batch) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
    """(keys, weights) of every validated chunk of a batch."""
    from trueprob._array import to_numpy
    from trueprob.core.rows import row_quantities

    xp = batch.inputs.xp
    for chunk in _checked_chunks(batch):
        rows = row_quantities(xp, chunk, need_scores=False)
        w = None if chunk.weights is None else to_numpy(chunk.weights)
        yield confidence_keys(to_numpy(rows.confidence)), w


def mass_edges(passes: Callable[[], Iterable[Batch]], n_bins: int, *,
               bar: ProgressBar | None = None) -> np.ndarray:
    """Exact equal-mass edges of a stream (:class:`QuantileSearch`, a few passes).

    ``bar`` (optional) is restarted at each pass ("pass 2: equal-mass edges") and advanced
    by the rows of each batch.
    """
    search = QuantileSearch(n_bins)
    while (plan := search.plan()) is not None:
        merged: list[Any] | None = None
        total = 0.0
        for batch in counted(passes, bar, f"pass {search.passes + 1}: equal-mass edges"):
            for keys, w in _confidences(batch):
                merged = merge_search(merged, search_pass(plan, keys, w))
                total += float(keys.size) if w is None else float(w.sum())
        assert merged is not None
        search.update(plan, merged, total)
    return search.edges()


# ============================================================================ evaluation
def _check_binning(binning: str) -> None:
    if binning not in ("width", "mass"):
        raise ValueError(f"binning must be 'width' or 'mass'; got {binning!r}")


def stats_of_batches(
    passes: Callable[[], Iterable[Batch]],
    *,
    n_bins: int = 15,
    binning: str = "width",
    closed: str = "right",
    on_rows: Callable[[int], None] | None = None,
    bar: ProgressBar | None = None,
) -> EvaluationStats:
    """One :class:`~trueprob.stats.EvaluationStats` from a restartable stream of batches.

    ``passes()`` starts a pass over the data (called once, or a few more times for
    ``binning="mass"``, whose edges come first from :func:`mass_edges`). ``on_rows(n)`` is
    called after each batch of the evaluation pass with its number of rows (for progress).
    ``bar`` (optional) counts the rows of every pass, each pass named on it.
    """
    _check_binning(binning)
    edges = mass_edges(passes, n_bins, bar=bar) if binning == "mass" else None
    stats: EvaluationStats | None = None
    last = "evaluating" if edges is None else "last pass: evaluating"
    for batch in counted(passes, bar, last):
        if stats is None:
            stats = EvaluationStats(batch.inputs.n_classes, n_bins=n_bins, closed=closed,
                                    edges=edges, binning_name=binning)
        inputs = batch.inputs
        if inputs.n_classes != stats.n_classes:
            raise ValueError(f"{batch.source}: the model outputs have K={inputs.n_classes} "
                             f"classes, earlier batches K={stats.n_classes}")
        stats.input_kinds.add(inputs.kind)
        stats.target_kinds.add(inputs.target_kind)
        for chunk in _checked_chunks(batch):
            stats.update_chunk(inputs.xp, chunk)
        if on_rows is not None:
            on_rows(inputs.n_rows)
    if stats is None:
        raise ValueError("the dataset has no rows; at least one row is needed")
    return stats


def stats_from_path(
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
    n_classes: int | None = None,
    calibrator: Any = None,
    batch_rows: int = BATCH_ROWS,
    n_bins: int = 15,
    binning: str = "width",
    closed: str = "right",
    on_rows: Callable[[int], None] | None = None,
    quiet: bool | None = None,
) -> EvaluationStats:
    """The :class:`~trueprob.stats.EvaluationStats` of a dataset, read in batches.

    Same arguments as :func:`evaluate_path` (without ``unit`` and ``reduce``, which only
    finalisation needs). The state can be merged with others, saved with ``to_bytes`` and
    finalised later.

    Examples
    --------
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "val.npz")
    >>> np.savez(path, logits=np.array([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]]),
    ...          labels=np.array([0, 1, 1]))
    >>> stats = stats_from_path(path, batch_rows=2)
    >>> round(stats.finalize().accuracy, 4)
    0.6667
    """
    specs = {"logits": logits, "probs": probs, "labels": labels, "targets": targets,
             "counts": counts, "sample_weight": sample_weight, "confidences": confidences,
             "predictions": predictions}
    passes = _stream(path, specs, _check_batch_rows(batch_rows), n_classes, calibrator)
    _check_binning(binning)
    with pass_progress(path, specs, "evaluating", quiet=quiet) as bar:
        return stats_of_batches(passes, n_bins=n_bins, binning=binning, closed=closed,
                                on_rows=on_rows, bar=bar)


def evaluate_path(
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
    n_classes: int | None = None,
    calibrator: Any = None,
    batch_rows: int = BATCH_ROWS,
    n_bins: int = 15,
    binning: str = "width",
    closed: str = "right",
    unit: str = "nats",
    reduce: str = "mean",
    on_rows: Callable[[int], None] | None = None,
    quiet: bool | None = None,
) -> Report:
    """Evaluate a dataset of model outputs in bounded memory: the :func:`trueprob.evaluate`
    report of all its rows, read a batch at a time.

    Parameters
    ----------
    path : str or os.PathLike
        A file (``.parquet``, ``.npy``, ``.npz``, ``.csv``, ``.pt``), a folder of files or a
        glob (see :func:`dataset_files`). Parquet, ``.npy``, ``.npz`` and CSV files are read
        in record batches; ``.pt`` files are loaded whole.
    logits, probs, labels, targets, counts, sample_weight, confidences, predictions : str, optional
        The column(s) or array holding each input, as in :func:`trueprob.io.read_inputs`: a
        name, a glob (``"logit_*"``), a comma list or a list; a Parquet list column holds
        the whole vector. Auto-detected by canonical name when not given.
    n_classes : int, optional
        K; required for top-label inputs (``confidences`` + ``predictions``).
    calibrator : Calibrator, optional
        A fitted calibrator: evaluate its calibrated probabilities instead.
    batch_rows : int
        Rows per batch read (default 65536). Memory grows with it, not with the file.
    n_bins, binning, closed, unit, reduce
        As in :func:`trueprob.evaluate`. ``binning="mass"`` finds the exact equal-mass edges
        first, in two to five extra passes of bounded memory (:class:`QuantileSearch`).
    on_rows : callable, optional
        Called with the number of rows of each batch of the evaluation pass (progress).
    quiet : bool, optional
        ``True``: no progress bar. By default a bar over the rows of each pass ("pass 2:
        equal-mass edges", "evaluating") is drawn on standard error when it is a terminal;
        its total comes from the files' headers and metadata (a spinner for CSV).

    Returns
    -------
    Report
        Equal, up to floating-point rounding, to ``trueprob.evaluate`` on all rows at once
        (SPEC.md's definitions; the formulas are those of :func:`trueprob.evaluate`, e.g.
        ECE = sum_b (W_b / W) |acc_b - conf_b|).

    Examples
    --------
    >>> import tempfile, os, trueprob
    >>> path = os.path.join(tempfile.mkdtemp(), "val.npz")
    >>> z = np.array([[2.0, 0.0, 0.0], [0.0, 3.0, 0.0], [1.0, 0.0, 2.0], [0.0, 0.5, 0.0]])
    >>> np.savez(path, logits=z, labels=np.array([0, 1, 0, 2]))
    >>> report = evaluate_path(path, batch_rows=3)
    >>> report.accuracy, round(report.nll, 4)
    (0.5, 0.7591)
    """
    check_unit(unit)
    check_reduce(reduce)
    stats = stats_from_path(
        path, logits=logits, probs=probs, labels=labels, targets=targets, counts=counts,
        sample_weight=sample_weight, confidences=confidences, predictions=predictions,
        n_classes=n_classes, calibrator=calibrator, batch_rows=batch_rows, n_bins=n_bins,
        binning=binning, closed=closed, on_rows=on_rows, quiet=quiet,
    )
    return stats.finalize(unit=unit, reduce=reduce)


# ============================================================================ inference
@dataclass(frozen=True)
class BlockedStates:
    """The states of one streamed pass for the bootstrap (and the report).

    ``point``: every row; ``blocked``: the same rows dealt at random into G blocks
    (``n_blocks=G``, :func:`trueprob.inference.bootstrap.intervals_from_states`);
    ``squares``: bins weighted by w_i^2 (top-label and classwise; only for weighted rows, for
    effective counts); ``n_rows``: N.
    """

    point: EvaluationStats
    blocked: EvaluationStats
    squares: EvaluationStats | None
    n_rows: int


def blocked_states_of_batches(
    passes: Callable[[], Iterable[Batch]],
    *,
    n_bins: int = 15,
    binning: str = "width",
    closed: str = "right",
    max_blocks: int = 256,
    random_state: int | np.random.Generator | None = None,
    weight_squares: bool = False,
    bar: ProgressBar | None = None,
) -> BlockedStates:
    """Point, blocked (and w^2) states of a restartable stream, filled in one pass (after the
    equal-mass passes for ``binning="mass"``).

    Each row goes to block g_i ~ Uniform{0..G-1}, drawn from ``random_state`` chunk by chunk
    in row order: the same draws as :func:`trueprob.bootstrap` makes on all rows at once, so
    with the same seed and N > G the blocks, and then the intervals, are the same. G =
    min(``max_blocks``, the cap of :func:`trueprob.inference.bootstrap.default_blocks`); N is
    not known before the pass, so G does not shrink to N for small data (empty blocks are
    harmless: they add nothing to any replicate).
    """
    from trueprob.inference.bootstrap import _state_values, add_blocked, default_blocks

    _check_binning(binning)
    rng = random_state if isinstance(random_state, np.random.Generator) \
        else np.random.default_rng(random_state)
    edges = mass_edges(passes, n_bins, bar=bar) if binning == "mass" else None
    point: EvaluationStats | None = None
    blocked: EvaluationStats | None = None
    squares: EvaluationStats | None = None
    n_rows = 0
    last = "evaluating" if edges is None else "last pass: evaluating"
    for batch in counted(passes, bar, last):
        inputs = batch.inputs
        vector = inputs.kind != "confidences"
        if point is None:
            k = inputs.n_classes
            point = EvaluationStats(k, n_bins=n_bins, closed=closed, edges=edges,
                                    binning_name=binning)
            probe = EvaluationStats(k, n_bins=n_bins, closed=closed, edges=edges, n_blocks=2)
            g = default_blocks(max_blocks, _state_values(probe), max_blocks)
            blocked = EvaluationStats(k, n_bins=n_bins, closed=closed, edges=edges,
                                      binning_name=binning, n_blocks=g)
            if weight_squares and inputs.weights is not None:
                parts = ("top_label", "classwise") if vector else ("top_label",)
                squares = EvaluationStats(k, n_bins=n_bins, closed=closed,
                                          edges=point.binning.edges, parts=parts)
        assert blocked is not None
        if inputs.n_classes != point.n_classes:
            raise ValueError(f"{batch.source}: the model outputs have K={inputs.n_classes} "
                             f"classes, earlier batches K={point.n_classes}")
        for state in (point, blocked):
            state.input_kinds.add(inputs.kind)
            state.target_kinds.add(inputs.target_kind)
        for chunk in _checked_chunks(batch):
            add_blocked(inputs.xp, chunk, point, blocked, rng)
        if squares is not None and inputs.weights is not None:
            squares.update_inputs(replace(inputs, weights=inputs.weights ** 2))
        n_rows += inputs.n_rows
    if point is None or blocked is None:
        raise ValueError("the dataset has no rows; at least one row is needed")
    return BlockedStates(point, blocked, squares, n_rows)


def bootstrap_path(
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
    n_classes: int | None = None,
    calibrator: Any = None,
    batch_rows: int = BATCH_ROWS,
    n_bins: int = 15,
    binning: str = "width",
    closed: str = "right",
    unit: str = "nats",
    reduce: str = "mean",
    n_replicates: int = 1000,
    level: float = 0.95,
    method: str = "percentile",
    resampling: str = "multinomial",
    max_blocks: int = 256,
    random_state: int | np.random.Generator | None = None,
    quiet: bool | None = None,
) -> Any:
    """:func:`trueprob.bootstrap` of a dataset read in batches: the report of all rows with
    an interval for every field, in memory that does not grow with N.

    One pass fills the point state and the blocked state (:func:`blocked_states_of_batches`);
    the replicates are weighted sums of the G block states
    (:func:`trueprob.inference.bootstrap.intervals_from_states`). Arguments as
    :func:`evaluate_path` and :func:`trueprob.bootstrap`; with the same ``random_state`` and
    N > G the intervals equal :func:`trueprob.bootstrap`'s on all rows.

    Examples
    --------
    >>> import tempfile, os, trueprob
    >>> path = os.path.join(tempfile.mkdtemp(), "val.npz")
    >>> rng = np.random.default_rng(0)
    >>> z, y = rng.normal(size=(1000, 3)), rng.integers(0, 3, size=1000)
    >>> np.savez(path, logits=z, labels=y)
    >>> a = bootstrap_path(path, batch_rows=300, n_replicates=100, random_state=0, quiet=True)
    >>> b = trueprob.bootstrap(y, logits=z, n_replicates=100, random_state=0)
    >>> bool(np.isclose(a.intervals["ece"].low, b.intervals["ece"].low, rtol=1e-12))
    True
    """
    from trueprob.inference.bootstrap import _check_options, intervals_from_states

    check_unit(unit)
    check_reduce(reduce)
    _check_options(n_replicates, level, method, resampling)
    rng = random_state if isinstance(random_state, np.random.Generator) \
        else np.random.default_rng(random_state)
    specs = {"logits": logits, "probs": probs, "labels": labels, "targets": targets,
             "counts": counts, "sample_weight": sample_weight, "confidences": confidences,
             "predictions": predictions}
    passes = _stream(path, specs, _check_batch_rows(batch_rows), n_classes, calibrator)
    with pass_progress(path, specs, "evaluating", quiet=quiet) as bar:
        states = blocked_states_of_batches(passes, n_bins=n_bins, binning=binning,
                                           closed=closed, max_blocks=max_blocks,
                                           random_state=rng, bar=bar)
        bar.restart(f"bootstrap ({n_replicates} replicates)", total=None)
        seed = random_state if isinstance(random_state, int) else None
        return intervals_from_states(states.point, states.blocked, n_replicates=n_replicates,
                                     level=level, method=method, resampling=resampling,
                                     unit=unit, reduce=reduce, random_state=rng, seed=seed,
                                     quiet=True)


def consistency_test_path(
    path: PathLike,
    /,
    *,
    logits: Spec = None,
    probs: Spec = None,
    labels: Spec = None,
    sample_weight: Spec = None,
    calibrator: Any = None,
    batch_rows: int = BATCH_ROWS,
    statistic: str = "ece",
    n_bins: int = 15,
    closed: str = "right",
    n_resamples: int = 1000,
    random_state: int | np.random.Generator | None = None,
    quiet: bool | None = None,
) -> Any:
    """:func:`trueprob.consistency_test` of a dataset read in batches
    (:class:`~trueprob.inference.ConsistencyStats`): per-bin sums of the observed and of
    the ``n_resamples`` resampled outcomes, each row drawing y*_i ~ Cat(q_i), so the memory is
    R x B (R x K x B for ``statistic="classwise_ece"``) whatever N is. The cost is N x R
    draws (N x K x R for classwise). One batch holding every row gives the numbers of
    :func:`trueprob.consistency_test` with the same seed.

    Examples
    --------
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "val.npz")
    >>> rng = np.random.default_rng(1)
    >>> z = rng.normal(size=(2000, 4)) * 2
    >>> q = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    >>> np.savez(path, logits=3 * z, labels=(q.cumsum(1) < rng.random((2000, 1))).sum(1))
    >>> consistency_test_path(path, batch_rows=500, n_resamples=99, quiet=True).p_value
    0.01
    """
    from trueprob.inference import ConsistencyStats

    specs = {"logits": logits, "probs": probs, "labels": labels,
             "sample_weight": sample_weight}
    passes = _stream(path, specs, _check_batch_rows(batch_rows), None, calibrator)
    state: Any = None
    with pass_progress(path, specs, f"consistency test ({statistic})", quiet=quiet) as bar:
        for batch in counted(passes, bar, f"consistency test ({statistic}, {n_resamples} "
                                          f"resamples)"):
            if state is None:
                state = ConsistencyStats(statistic, batch.inputs.n_classes, n_bins=n_bins,
                                         closed=closed, n_resamples=n_resamples,
                                         random_state=random_state)
            try:
                state.update_inputs(batch.inputs)
            except ValueError as exc:
                raise ValueError(f"{batch.source}: {_absolute_rows(str(exc), batch.start)}"
                                 ) from exc
    if state is None:
        raise ValueError("the dataset has no rows; at least one row is needed")
    return state.finalize()


# ============================================================================ temperature
#: first-pass sums: W, sum w f(1), sum w (mean_k zc - t.zc), rows with non-constant scores,
#: rows whose target is not all on the largest scores, sum w log(#largest scores)
N_FIRST = 6


@dataclass(frozen=True)
class FitRows:
    """A validated chunk as the temperature kernel takes it (numpy, SPEC.md notation).

    ``scores`` (n, K): logits z_i, or log q_i (zero floored) for probabilities; ``labels``
    (n,) int64 or ``targets`` (n, K) float64 soft targets (counts normalised); ``weights``
    (n,) float64.
    """

    scores: np.ndarray
    labels: np.ndarray | None
    targets: np.ndarray | None
    weights: np.ndarray


def fit_rows(batch: Batch, *, purpose: str = "temperature scaling") -> Iterator[FitRows]:
    """The chunks of a batch as :class:`FitRows` (probabilities become floored logs, as in
    :func:`trueprob.calibrators._fitdata.fit_arrays`)."""
    from trueprob._array import to_numpy
    from trueprob.calibrators._fitdata import _log_probs

    inputs = batch.inputs
    if inputs.kind == "confidences":
        raise ValueError(f"{purpose} needs logits= or probs= (the whole vector); "
                         f"top-label confidences cannot be rescaled")
    xp = inputs.xp
    for chunk in _checked_chunks(batch):
        s = chunk.scores if inputs.kind == "logits" else _log_probs(xp, chunk.scores)
        n = chunk.n_rows
        w = np.ones(n) if chunk.weights is None else to_numpy(chunk.weights)
        yield FitRows(np.ascontiguousarray(to_numpy(s)),
                      None if chunk.labels is None else to_numpy(chunk.labels),
                      None if chunk.targets is None else to_numpy(chunk.targets),
                      np.asarray(w, dtype=np.float64))


def _shifted(rows: FitRows, dtype: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(zc = z - max_k z in ``dtype``, t . zc in float64, max_k z)."""
    z = rows.scores
    zmax = z.max(axis=1)
    zc64 = z.astype(np.float64) - zmax[:, None].astype(np.float64)
    if rows.labels is not None:
        tz = np.take_along_axis(zc64, rows.labels[:, None], axis=1)[:, 0]
    else:
        assert rows.targets is not None
        tz = np.einsum("ij,ij->i", rows.targets, zc64)
    zc = zc64 if dtype == np.float64 else (z - zmax[:, None]).astype(dtype)
    return zc, tz, zmax


def temperature_first_sums(rows: FitRows) -> np.ndarray:
    """The first pass of a temperature fit over some rows (add the results of all parts).

    With zc_i = z_i - max_k z_ik and t_i . zc_i: [W, sum_i w_i f_i(1), sum_i w_i
    (mean_k zc_ik - t_i . zc_i), #rows (w > 0) with non-constant scores, #rows (w > 0) with
    t_i . zc_i != 0, sum_{w_i > 0} w_i log m_i] (m_i: how many scores equal the maximum).
    """
    zc, tz, zmax = _shifted(rows, np.float64)
    w = rows.weights
    active = w > 0
    means = zc.mean(axis=1)
    f1 = np.log(np.exp(zc).sum(axis=1)) - tz
    n_max = (rows.scores == zmax[:, None]).sum(axis=1)
    return np.array([w.sum(), w @ f1, w @ (means - tz),
                     float(np.count_nonzero(active & (means != 0))),
                     float(np.count_nonzero(active & (tz != 0))),
                     w[active] @ np.log(n_max[active])])


def temperature_sums(rows: FitRows, beta: float) -> np.ndarray:
    """Weighted sums of f_i and its first three derivatives in beta = 1/T over some rows.

    f_i(beta) = logsumexp(beta z_i) - beta t_i . z_i; f_i' = E_q[z_i] - t_i . z_i,
    f_i'' = Var_q[z_i], f_i''' = E_q[(z_i - E_q z_i)^3] under q = softmax(beta z_i)
    (the formulas of :mod:`trueprob.calibrators.temperature`, in float64, on scores shifted
    by their row maximum so exp never overflows). Returns [sum w f, sum w f', sum w f'',
    sum w f''']; divide by W for the derivatives of the NLL.
    """
    from trueprob.calibrators.temperature import derivative_sums

    zc, tz, _ = _shifted(rows, np.float64)
    e = np.exp(beta * zc)
    s0 = e.sum(axis=1)
    e *= zc
    s1 = e.sum(axis=1)
    e *= zc
    s2 = e.sum(axis=1)
    s3 = np.einsum("ij,ij->i", e, zc)
    return derivative_sums(s0, s1, s2, s3, tz, rows.weights, beta)


class _SumPasses:
    """The object :func:`trueprob.calibrators.temperature._halley` iterates on: each call of
    :meth:`derivatives` is one pass whose per-part sums are added by ``run_pass``."""

    def __init__(self, run_pass: Callable[[float], np.ndarray], total: float) -> None:
        self.run_pass = run_pass
        self.total = total
        self.count = 0

    def derivatives(self, beta: float, dtype: Any = np.float64) -> np.ndarray:
        self.count += 1
        return self.run_pass(beta) / self.total


def fit_temperature_sums(
    first: np.ndarray,
    run_pass: Callable[[float], np.ndarray],
    *,
    kind: str,
    n_classes: int,
    max_iter: int = 50,
) -> Any:
    """A fitted :class:`~trueprob.calibrators.temperature.TemperatureScaling` from map-reduced
    sums: ``first`` (:func:`temperature_first_sums` added over all rows) and ``run_pass(beta)``
    (:func:`temperature_sums` added over all rows, one pass each).

    The iteration is the safeguarded Halley of ``TemperatureScaling`` (its private
    ``_halley``) with the same stopping rule, started at beta = 1; the degenerate cases give
    the same warnings and limits.
    """
    from trueprob.calibrators.temperature import (
        HALLEY_STOP,
        DegenerateFitWarning,
        TemperatureScaling,
        _halley,
    )

    ts = TemperatureScaling(max_iter=max_iter)
    ts._check_params()
    ts.kind_ = "logits" if kind == "logits" else "probs"
    ts.n_classes_ = int(n_classes)
    total, f1, g0_sum, n_varying, n_tz, log_ties = (float(v) for v in first)
    if not total > 0:
        raise ValueError("sample_weight must not be all zero; the weights sum to 0")
    nll_before = f1 / total
    ts.nll_before_ = nll_before
    if n_varying == 0:
        warnings.warn(
            "every row's scores are constant across classes, so the NLL does not depend on "
            "T; temperature_ is set to 1", DegenerateFitWarning, stacklevel=3)
        ts._set(1.0, nll_before, True, 1)
        return ts
    if n_tz == 0:
        warnings.warn(
            "the calibration set is separable: in every row the target is on the largest "
            "score, so the NLL keeps decreasing as T -> 0 and has no minimum; temperature_ "
            "is set to 0 (argmax predictions, ties shared). Use a larger or harder "
            "calibration set", DegenerateFitWarning, stacklevel=3)
        ts._set(0.0, log_ties / total, False, 1)
        return ts
    if g0_sum >= 0:
        warnings.warn(
            "the NLL is smallest for uniform predictions (T -> inf): on this calibration set "
            "the scores carry no information about the targets beyond chance; temperature_ "
            "is set to inf", DegenerateFitWarning, stacklevel=3)
        ts._set(math.inf, math.log(n_classes), True, 1)
        return ts
    passes = _SumPasses(run_pass, total)
    beta, f, converged, _ = _halley(passes, 1.0, max_iter, HALLEY_STOP)  # type: ignore[arg-type]
    if not converged:
        warnings.warn(
            f"temperature scaling did not converge in max_iter={max_iter} passes; "
            f"T = {1.0 / beta!r}", DegenerateFitWarning, stacklevel=3)
    ts._set(1.0 / beta, f, converged, 1 + passes.count)
    return ts


def fit_temperature_batches(passes: Callable[[], Iterable[Batch]], *,
                            max_iter: int = 50, bar: ProgressBar | None = None) -> Any:
    """Temperature scaling by maximum likelihood over a restartable stream of batches.

    ``bar`` (optional) counts the rows of every pass ("temperature: Halley pass 3").
    """
    first = np.zeros(N_FIRST)
    kind, k = "logits", 0
    for batch in counted(passes, bar, "temperature: first pass (T = 1)"):
        kind = "logits" if batch.inputs.kind == "logits" else "probs"
        k = batch.inputs.n_classes
        for rows in fit_rows(batch):
            first += temperature_first_sums(rows)
    if k == 0:
        raise ValueError("the dataset has no rows; at least one row is needed")

    halley = 0

    def run_pass(beta: float) -> np.ndarray:
        nonlocal halley
        halley += 1
        out = np.zeros(4)
        for batch in counted(passes, bar, f"temperature: Halley pass {halley}"):
            for rows in fit_rows(batch):
                out += temperature_sums(rows, beta)
        return out

    return fit_temperature_sums(first, run_pass, kind=kind, n_classes=k, max_iter=max_iter)


def fit_temperature_path(
    path: PathLike,
    /,
    *,
    logits: Spec = None,
    probs: Spec = None,
    labels: Spec = None,
    targets: Spec = None,
    counts: Spec = None,
    sample_weight: Spec = None,
    batch_rows: int = BATCH_ROWS,
    max_iter: int = 50,
    quiet: bool | None = None,
) -> Any:
    """Fit temperature scaling on a dataset by maximum likelihood, in passes over batches.

    Minimises f(beta) = (1/W) sum_i w_i [ logsumexp(beta z_i) - beta t_i . z_i ], beta = 1/T,
    with the exact gradient and Hessian (and third derivative) summed over all rows in each
    pass: a first pass for f(1) and the degenerate cases, then one pass per safeguarded
    Halley step from beta = 1 (usually four to six passes in all). Memory is one batch.
    The result equals ``TemperatureScaling().fit`` on all rows at once to machine precision
    (both stop at the same rule: a Halley step below 3e-6 beta leaves an error of order its
    cube). Unless ``quiet``, a bar over the rows of each pass is drawn on standard error
    when it is a terminal (as in :func:`evaluate_path`).

    Returns
    -------
    TemperatureScaling
        Fitted; ``n_iter_`` counts the passes over the data.

    Examples
    --------
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "val.npz")
    >>> np.savez(path, logits=np.array([[4.0, 0.0], [0.0, 4.0], [4.0, 0.0], [0.0, 4.0]]),
    ...          labels=np.array([0, 1, 1, 1]))
    >>> ts = fit_temperature_path(path, batch_rows=3)
    >>> round(ts.temperature_, 6)
    3.640957
    """
    specs = {"logits": logits, "probs": probs, "labels": labels, "targets": targets,
             "counts": counts, "sample_weight": sample_weight, "confidences": None,
             "predictions": None}
    passes = _stream(path, specs, _check_batch_rows(batch_rows), None, None,
                     purpose="temperature scaling")
    with pass_progress(path, specs, "temperature", quiet=quiet) as bar:
        return fit_temperature_batches(passes, max_iter=max_iter, bar=bar)


# ============================================================================ vector scaling
def vector_sums(rows: FitRows, coef: np.ndarray, intercept: np.ndarray) -> np.ndarray:
    """Weighted sums for vector scaling at (w, b) over some rows (add the results of parts).

    With s_i = w * x_i + b (x_i the scores), q_i = softmax(s_i) and r_i = q_i - t_i:
    f = sum_i w_i [logsumexp(s_i) - t_i . s_i]; gradient (sum_i w_i r_i x_i, sum_i w_i r_i);
    Hessian sum_i w_i J_i' (diag q_i - q_i q_i') J_i with J_i = [diag x_i, I]. Returned flat:
    [W, f, grad (2K), Hessian (2K x 2K)].
    """
    x = rows.scores.astype(np.float64)
    w = rows.weights
    s = x * coef + intercept
    m = s.max(axis=1, keepdims=True)
    lse = m[:, 0] + np.log(np.exp(s - m).sum(axis=1))
    q = np.exp(s - lse[:, None])
    r = q.copy()
    if rows.labels is not None:
        ts = np.take_along_axis(s, rows.labels[:, None], axis=1)[:, 0]
        r[np.arange(len(r)), rows.labels] -= 1.0
    else:
        assert rows.targets is not None
        ts = np.einsum("ij,ij->i", rows.targets, s)
        r -= rows.targets
    f = w @ (lse - ts)
    wr = r * w[:, None]
    grad = np.concatenate([(wr * x).sum(axis=0), wr.sum(axis=0)])
    qx = q * x
    wq, wqx = q * w[:, None], qx * w[:, None]
    h_ww = np.diag((wqx * x).sum(axis=0)) - wqx.T @ qx
    h_wb = np.diag(wqx.sum(axis=0)) - wqx.T @ q
    h_bb = np.diag(wq.sum(axis=0)) - wq.T @ q
    hess = np.block([[h_ww, h_wb], [h_wb.T, h_bb]])
    return np.concatenate([[w.sum(), f], grad, hess.ravel()])


def fit_vector_sums(
    run_pass: Callable[[np.ndarray, np.ndarray], np.ndarray],
    *,
    kind: str,
    n_classes: int,
    reg: str = "l2",
    reg_lambda: float = 0.0,
    reg_mu: float | None = None,
    tol: float = 1e-9,
    max_iter: int = 100,
) -> Any:
    """A fitted :class:`~trueprob.calibrators.scaling.VectorScaling` by Newton's method on
    map-reduced sums: ``run_pass(w, b)`` returns :func:`vector_sums` added over all rows.

    Minimises F = f / W + penalty (the penalties of ``VectorScaling``: ``"l2"``,
    lambda / (2K) (||w - 1||^2 + ||b||^2); ``"odir"``, mu / K ||b||^2) with the exact
    gradient and Hessian of every pass; a step that does not lower F is halved. The
    intercepts are centred when they are not penalised (softmax ignores a common shift).
    One pass per Newton step or halving; stops when the gradient norm is below ``tol``.
    """
    import warnings as _warnings

    from trueprob.calibrators.scaling import VectorScaling
    from trueprob.calibrators.temperature import DegenerateFitWarning

    k = int(n_classes)
    lam = float(reg_lambda)
    mu = lam if reg_mu is None else float(reg_mu)
    cal = VectorScaling(reg=reg, reg_lambda=lam, reg_mu=reg_mu, tol=tol, max_iter=max_iter)
    cal._check_params()
    if reg == "l2":
        pen = np.full(2 * k, lam / k)
    else:
        pen = np.concatenate([np.zeros(k), np.full(k, 2.0 * mu / k)])
    centre = np.concatenate([np.ones(k), np.zeros(k)]) if reg == "l2" else np.zeros(2 * k)
    free_b = not np.any(pen[k:])

    def evaluate(theta: np.ndarray) -> tuple[float, float, np.ndarray, np.ndarray]:
        sums = run_pass(theta[:k].copy(), theta[k:].copy())
        total = sums[0]
        if not total > 0:
            raise ValueError("sample_weight must not be all zero; the weights sum to 0")
        nll = sums[1] / total
        d = theta - centre
        value = nll + 0.5 * float(d @ (pen * d))
        grad = sums[2:2 + 2 * k] / total + pen * d
        hess = sums[2 + 2 * k:].reshape(2 * k, 2 * k) / total + np.diag(pen)
        return value, nll, grad, hess

    theta = np.concatenate([np.ones(k), np.zeros(k)])
    value, nll, grad, hess = evaluate(theta)
    nll_before = nll
    passes, converged = 1, False
    while passes < max_iter:
        if np.linalg.norm(grad) <= tol:
            converged = True
            break
        step = -np.linalg.lstsq(hess, grad, rcond=None)[0]  # the b-gauge is a null direction
        size = 1.0
        while passes < max_iter:
            trial = theta + size * step
            t_value, t_nll, t_grad, t_hess = evaluate(trial)
            passes += 1
            if t_value <= value + 1e-15 * abs(value) or size < 1e-8:
                theta, value, nll, grad, hess = trial, t_value, t_nll, t_grad, t_hess
                break
            size /= 2.0
    if free_b:
        theta[k:] -= theta[k:].mean()
    if not converged:
        _warnings.warn(f"VectorScaling did not reach a gradient norm of tol={tol!r} in "
                       f"max_iter={max_iter} passes", DegenerateFitWarning, stacklevel=3)
    cal.coef_ = np.array(theta[:k], dtype=np.float64)
    cal.intercept_ = np.array(theta[k:], dtype=np.float64)
    cal.kind_ = "logits" if kind == "logits" else "probs"
    cal.n_classes_ = k
    cal.reg_lambda_ = lam
    cal.converged_ = converged
    cal.n_iter_ = passes
    cal.nll_before_ = float(nll_before)
    cal.nll_after_ = float(nll)
    return cal


def fit_vector_scaling_path(
    path: PathLike,
    /,
    *,
    logits: Spec = None,
    probs: Spec = None,
    labels: Spec = None,
    targets: Spec = None,
    counts: Spec = None,
    sample_weight: Spec = None,
    reg: str = "l2",
    reg_lambda: float = 0.0,
    reg_mu: float | None = None,
    tol: float = 1e-9,
    max_iter: int = 100,
    batch_rows: int = BATCH_ROWS,
    quiet: bool | None = None,
) -> Any:
    """Fit vector scaling (r_i = softmax(w * x_i + b)) on a dataset, in passes over batches.

    Penalised maximum likelihood as :class:`~trueprob.calibrators.scaling.VectorScaling`
    with a fixed ``reg_lambda`` (cross-validation needs the rows in memory), by Newton's
    method with the exact gradient and Hessian summed over all rows in each pass
    (:func:`fit_vector_sums`). Memory: one batch and a 2K x 2K matrix. Unless ``quiet``, a
    bar over the rows of each pass is drawn on standard error when it is a terminal.

    Examples
    --------
    >>> import tempfile, os
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=(2000, 3)) * 2
    >>> y = np.array([rng.choice(3, p=np.exp(r) / np.exp(r).sum()) for r in z])
    >>> path = os.path.join(tempfile.mkdtemp(), "val.npz")
    >>> np.savez(path, logits=3 * z, labels=y)      # logits made 3x too large
    >>> np.round(1 / fit_vector_scaling_path(path, batch_rows=512).coef_)
    array([3., 3., 3.])
    """
    specs = {"logits": logits, "probs": probs, "labels": labels, "targets": targets,
             "counts": counts, "sample_weight": sample_weight, "confidences": None,
             "predictions": None}
    passes = _stream(path, specs, _check_batch_rows(batch_rows), None, None,
                     purpose="vector scaling")
    kind, k = "logits", 0
    for batch in passes():
        kind = "logits" if batch.inputs.kind == "logits" else "probs"
        k = batch.inputs.n_classes
        break
    if k == 0:
        raise ValueError("the dataset has no rows; at least one row is needed")

    newton = 0

    def run_pass(coef: np.ndarray, intercept: np.ndarray) -> np.ndarray:
        nonlocal newton
        newton += 1
        out = np.zeros(2 + 2 * k + 4 * k * k)
        for batch in counted(passes, bar, f"vector scaling: Newton pass {newton}"):
            for rows in fit_rows(batch, purpose="vector scaling"):
                out += vector_sums(rows, coef, intercept)
        return out

    with pass_progress(path, specs, "vector scaling", quiet=quiet) as bar:
        return fit_vector_sums(run_pass, kind=kind, n_classes=k, reg=reg,
                               reg_lambda=reg_lambda, reg_mu=reg_mu, tol=tol,
                               max_iter=max_iter)
