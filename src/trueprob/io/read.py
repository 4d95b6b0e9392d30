"""`read_inputs` / `iter_inputs`: a file of model outputs -> arrays for `trueprob.evaluate`."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from trueprob._progress import row_progress
from trueprob.io.csv_format import INTEGER_FIELDS, CsvSource
from trueprob.io.errors import FileFormatError
from trueprob.io.fields import FIELDS, MULTI_COLUMN, Spec, plan, resolve
from trueprob.io.npy_format import NpySource, NpzSource, stdin_npz
from trueprob.io.parquet_format import ParquetSource
from trueprob.io.source import Source
from trueprob.io.torch_format import TorchSource

#: file suffix -> reader
READERS: dict[str, type[Source]] = {
    ".npz": NpzSource,
    ".npy": NpySource,
    ".csv": CsvSource,
    ".parquet": ParquetSource,
    ".pq": ParquetSource,
    ".pt": TorchSource,
    ".pth": TorchSource,
}

PathLike = str | os.PathLike[str]


def open_source(path: PathLike) -> Source:
    """The reader for ``path``, chosen by its suffix (``-``: an ``.npz`` on standard input)."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a file path (str or os.PathLike) or '-'; got "
                        f"{type(path).__name__}")
    if str(path) == "-":
        return stdin_npz()
    suffix = Path(path).suffix.lower()
    reader = READERS.get(suffix)
    if reader is None:
        raise FileFormatError(
            f"{path}: unsupported file type {suffix or '(no suffix)'!r}; supported: "
            f"{', '.join(READERS)}, or '-' for an .npz on standard input"
        )
    return reader(path, str(path))  # type: ignore[call-arg]


def _specs(**specs: Spec | None) -> dict[str, Spec | None]:
    for field, spec in specs.items():
        ok = spec is None or isinstance(spec, str) or (
            isinstance(spec, (list, tuple)) and all(isinstance(s, str) for s in spec))
        if not ok:
            raise TypeError(
                f"{field} must be a name, a glob or a comma-separated list of names (str), or "
                f"a list of them; got {spec!r}"
            )
    return specs


def _assemble(label: str, fields: dict[str, list[str]],
              batch: dict[str, Any]) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for field in FIELDS:
        names = fields.get(field)
        if not names:
            continue
        if len(names) == 1:
            array = np.asarray(batch[names[0]])
        else:
            parts = [np.asarray(batch[n]) for n in names]
            for name, part in zip(names, parts, strict=True):
                if part.ndim != 1:
                    raise FileFormatError(
                        f"{label}: {field}: to combine several arrays/columns into one "
                        f"(N, K) array each must hold one value per row, but {name!r} has "
                        f"shape {part.shape}"
                    )
            array = np.stack(parts, axis=1)
        if array.ndim not in (1, 2) or (array.ndim == 2 and field not in MULTI_COLUMN):
            want = "(N,) or (N, K)" if field in MULTI_COLUMN else "(N,), one value per row"
            raise FileFormatError(
                f"{label}: {field}: {names[0]!r} has shape {array.shape}; expected {want}"
            )
        out[field] = array
    return out


def _reading(label: str) -> str:
    """The text beside a read's bar: the file's name (a long path would hide the bar)."""
    return f"reading {os.path.basename(label) or label}"


def _check_quiet(quiet: bool | None) -> bool | None:
    if quiet is not None and not isinstance(quiet, (bool, np.bool_)):
        raise TypeError(f"quiet must be True, False or None; got {quiet!r}")
    return None if quiet is None else bool(quiet)


def _read(path: PathLike, specs: dict[str, Spec | None], batch_rows: int | None,
          quiet: bool | None) -> Iterator[dict[str, np.ndarray]]:
    with open_source(path) as source:
        fields = plan(source.label, source.names(), specs, table=source.table)
        if isinstance(source, CsvSource):
            source.integer_names = {n for f in INTEGER_FIELDS for n in fields.get(f, [])}
            source.text_names = {n for f in ("labels", "predictions")
                                 for n in fields.get(f, [])}
        needed = list(dict.fromkeys(n for names in fields.values() for n in names))
        source.check(needed)
        with row_progress(_reading(source.label), total=source.n_rows(needed),
                          quiet=quiet) as rows:
            for batch in source.batches(needed, batch_rows, on_rows=rows.advance):
                yield _assemble(source.label, fields, batch)


def count_rows(path: PathLike, specs: dict[str, Spec | None] | None = None) -> int | None:
    """The rows of a file when its header or metadata says so cheaply, else None.

    ``.npy`` (header), ``.npz`` (the header of the first selected array) and Parquet (footer
    metadata) know their rows without reading them; CSV, ``.pt`` and standard input do not
    (None). ``specs`` selects the fields as in :func:`read_inputs` (auto-detected if absent).

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "val.npz")
    >>> np.savez(path, logits=np.zeros((5, 3)), labels=np.arange(5) % 3)
    >>> count_rows(path)
    5
    """
    if str(path) == "-":
        return None
    with open_source(path) as source:
        fields = plan(source.label, source.names(), dict(specs or {}), table=source.table)
        needed = list(dict.fromkeys(n for names in fields.values() for n in names))
        return source.n_rows(needed)


def read_columns(path: PathLike, specs: dict[str, tuple[Spec | None, bool]], *,
                 quiet: bool | None = None) -> dict[str, np.ndarray]:
    """Read arbitrary named fields: ``{field: (spec, multi)}`` -> ``{field: array}``.

    For inputs other than classifier outputs (regression predictions, multi-label matrices):
    each ``spec`` names arrays/columns as in :func:`read_inputs` (no auto-detection; a ``None``
    spec is skipped); a field with ``multi=True`` may span several columns and is returned as
    (N, M), else (N,). ``quiet`` as in :func:`read_inputs`.
    """
    quiet = _check_quiet(quiet)
    with open_source(path) as source:
        kind = "column" if source.table else "array"
        names = source.names()
        fields = {f: resolve(source.label, f, spec, names, kind, multi)
                  for f, (spec, multi) in specs.items() if spec is not None}
        needed = list(dict.fromkeys(n for cols in fields.values() for n in cols))
        source.check(needed)
        parts: dict[str, list[np.ndarray]] = {f: [] for f in fields}
        with row_progress(_reading(source.label), total=source.n_rows(needed),
                          quiet=quiet) as rows:
            batches = list(source.batches(needed, None, on_rows=rows.advance))
        for batch in batches:
            for f, cols in fields.items():
                assert specs[f][0] is not None
                arrays = [np.asarray(batch[c]) for c in cols]
                multi = specs[f][1]
                if len(arrays) == 1 and (arrays[0].ndim == 1 or multi):
                    arr = arrays[0]
                else:
                    if any(a.ndim != 1 for a in arrays):
                        raise FileFormatError(f"{source.label}: {f}: each selected {kind} "
                                              f"must hold one value per row")
                    arr = np.stack(arrays, axis=1)
                if arr.ndim > 2 or (arr.ndim == 2 and not multi):
                    raise FileFormatError(f"{source.label}: {f}: expected one value per row; "
                                          f"got shape {arr.shape}")
                parts[f].append(arr)
    return {f: np.concatenate(p) if p else np.empty(0) for f, p in parts.items()}


def read_inputs(
    path: PathLike,
    *,
    logits: Spec | None = None,
    probs: Spec | None = None,
    labels: Spec | None = None,
    targets: Spec | None = None,
    counts: Spec | None = None,
    sample_weight: Spec | None = None,
    confidences: Spec | None = None,
    predictions: Spec | None = None,
    quiet: bool | None = None,
) -> dict[str, np.ndarray]:
    """Read a file of model outputs into the arrays :func:`trueprob.evaluate` takes.

    Parameters
    ----------
    path : str or os.PathLike
        ``.npz``, ``.npy``, ``.csv``, ``.parquet`` / ``.pq`` (needs pyarrow) or ``.pt`` /
        ``.pth`` (needs torch); ``"-"`` reads an ``.npz`` archive from standard input.
    logits, probs, labels, targets, counts, sample_weight, confidences, predictions : str, optional
        The array (npz, npy, pt) or column (csv, parquet) holding that input. ``logits``,
        ``probs``, ``targets`` and ``counts`` may span several columns, one per class: give a
        glob (``"logit_*"``, matches in natural order, so ``logit_2`` precedes ``logit_10``), a
        comma-separated list, or a list of names. A field not named is auto-detected by its
        canonical name (see Notes).
    quiet : bool, optional
        ``True``: never draw a progress bar. By default (``None`` or ``False``) a file of more
        than ``trueprob._progress.LARGE_ROWS`` (1,000,000) rows shows a bar over the rows read
        on standard error, when standard error is a terminal: ``.npy``, ``.npz`` and Parquet
        know their rows from a header or metadata; a CSV file shows a spinner with the rows
        read so far once past that many. Nothing is written to a pipe, a file or a test
        runner's capture.

    Returns
    -------
    dict of str to numpy.ndarray
        Keys among ``"logits"``, ``"probs"``, ``"labels"``, ``"targets"``, ``"counts"``,
        ``"sample_weight"``, ``"confidences"``, ``"predictions"``; one row per example. Ready for
        ``trueprob.evaluate(arrays.pop("labels", None), **arrays)``. Values are not validated
        here (``trueprob.evaluate`` does that, naming the offending row).

    Raises
    ------
    FileFormatError
        The file is corrupt or truncated, of an unsupported type, lacks a named field, has
        fields of different lengths or non-numeric values, holds a pickle, or its model outputs
        cannot be identified by name. The message names the file and the problem.
    ImportError
        A Parquet or ``.pt`` file is read without pyarrow / torch installed.

    Notes
    -----
    Auto-detection, for each group of which no field was named: model outputs are the array or
    column named exactly ``logits`` or ``probs`` (in tables also the columns ``logit_*`` or
    ``prob_*``), or ``confidences`` together with ``predictions``; targets are ``labels``,
    ``targets`` or ``counts`` (in tables also ``target_*`` / ``count_*``); ``sample_weight`` is
    used when present. Finding both logits and probabilities (or neither) is an error that
    says which argument to pass: the values are never used to guess.

    A plain (unstructured) ``.npy`` file holds a single array, named after the file's stem:
    ``logits.npy`` is auto-detected as logits; otherwise select it with ``logits="*"`` or
    ``probs="*"``. A structured ``.npy`` is a table of its fields. CSV columns of ``labels``,
    ``predictions`` and ``counts`` are int64 when written as integers; other CSV columns are
    float64. Other formats keep the stored dtype (float32 stays float32).

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from trueprob.io import read_inputs
    >>> folder = tempfile.mkdtemp()
    >>> path = os.path.join(folder, "preds.csv")
    >>> with open(path, "w") as fh:
    ...     _ = fh.write("y,logit_0,logit_1,logit_2\\n2,0.5,1.0,3.0\\n0,2.0,0.0,-1.0\\n")
    >>> arrays = read_inputs(path, labels="y")
    >>> arrays["logits"]
    array([[ 0.5,  1. ,  3. ],
           [ 2. ,  0. , -1. ]])
    >>> arrays["labels"]
    array([2, 0])
    """
    specs = _specs(logits=logits, probs=probs, labels=labels, targets=targets, counts=counts,
                   sample_weight=sample_weight, confidences=confidences,
                   predictions=predictions)
    (arrays,) = _read(path, specs, None, _check_quiet(quiet))
    return arrays


def iter_inputs(
    path: PathLike,
    *,
    logits: Spec | None = None,
    probs: Spec | None = None,
    labels: Spec | None = None,
    targets: Spec | None = None,
    counts: Spec | None = None,
    sample_weight: Spec | None = None,
    confidences: Spec | None = None,
    predictions: Spec | None = None,
    batch_rows: int = 65536,
    quiet: bool | None = None,
) -> Iterator[dict[str, np.ndarray]]:
    """Read a file of model outputs in batches of at most ``batch_rows`` rows.

    Same arguments and dicts as :func:`read_inputs`, for files larger than memory: ``.npz``,
    ``.npy``, ``.csv`` and ``.parquet`` are read a batch at a time (memory bounded by one
    batch of the selected fields); ``.pt`` files and ``-`` (standard input) are loaded whole
    and then sliced. Concatenating the batches gives :func:`read_inputs`'s arrays. Only
    non-empty batches are yielded. Problems with the file itself are raised when iteration
    starts (or when the bad row is reached); bad arguments are raised at the call. A file of
    many rows shows a bar over the rows read while it is iterated (``quiet`` as in
    :func:`read_inputs`).

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from trueprob.io import iter_inputs
    >>> path = os.path.join(tempfile.mkdtemp(), "val.npz")
    >>> np.savez(path, logits=np.zeros((5, 3)), labels=np.arange(5) % 3)
    >>> [batch["labels"].tolist() for batch in iter_inputs(path, batch_rows=2)]
    [[0, 1], [2, 0], [1]]
    """
    if isinstance(batch_rows, bool) or not isinstance(batch_rows, (int, np.integer)) \
            or batch_rows < 1:
        raise ValueError(f"batch_rows must be a positive integer; got {batch_rows!r}")
    specs = _specs(logits=logits, probs=probs, labels=labels, targets=targets, counts=counts,
                   sample_weight=sample_weight, confidences=confidences,
                   predictions=predictions)
    return _read(path, specs, int(batch_rows), _check_quiet(quiet))
