"""Data frames and Arrow tables in, reports and calibrators out, with the CLI's field syntax.

:func:`evaluate_table`, :func:`fit_table` and :func:`read_table` take a pyarrow ``Table`` (or
``RecordBatch``), a pandas ``DataFrame``, a polars ``DataFrame`` or any object that exports
an Arrow stream (``__arrow_c_stream__``). Columns are chosen as on the command line and in
:func:`trueprob.io.read_inputs`: a name, a glob (``"logit_*"``, natural order), a comma list
or a list of names, a list column holding each row's vector, or auto-detection by canonical
name (``logits``, ``probs``, ``labels``, ``logit_*``, ...); values never decide which column is
which. Nulls are an error.

:func:`evaluate_table` reads the table a batch of ``batch_rows`` rows at a time: an Arrow table
is sliced without copying and each slice converted to numpy; a pandas frame is converted one
slice at a time; a polars frame is viewed as Arrow (``to_arrow``, without copying its
numeric columns). So memory beyond the table itself is one batch, as for
:func:`trueprob.streaming.evaluate_path`, whose report this is. pandas and polars are never
imported by trueprob; pyarrow is needed (``pip install 'trueprob[parquet]'``).
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from trueprob.io.errors import FileFormatError, require
from trueprob.io.fields import FIELDS, Spec, plan
from trueprob.io.parquet_format import ParquetSource
from trueprob.io.read import _assemble
from trueprob.results import Report
from trueprob.stats.evaluation import check_reduce, check_unit
from trueprob.streaming import (
    BATCH_ROWS,
    Batch,
    _check_batch_rows,
    normalise,
    prepare_batch,
    stats_of_batches,
)

RecordBatches = Callable[[list[str], int], Iterator[Any]]
#: a column selection: a name, a glob, a comma list or a list of names; None: auto-detected
Field = Spec | None


class _TableSource(ParquetSource):
    """An in-memory table as a :class:`~trueprob.io.source.Source` of Arrow record batches.

    The column checks and the conversion of a record batch to numpy (numeric columns, list
    columns of equal length, nulls refused) are those of the Parquet reader.
    """

    table = True

    def __init__(self, label: str, schema: Any, n_rows: int, record_batches: RecordBatches
                 ) -> None:  # no super().__init__: there is no file to open
        self.label = label
        self._pa = require("pyarrow", extra="parquet", purpose=f"reading {label}")
        self._schema = schema
        self._rows = n_rows
        self._record_batches = record_batches
        self._widths: dict[str, int] = {}
        self._offset = 0

    def close(self) -> None:
        pass

    def n_rows(self, names: Sequence[str]) -> int | None:
        return self._rows

    def batches(self, names: Sequence[str], batch_rows: int | None, *,
                on_rows: Callable[[int], None] | None = None) -> Iterator[dict[str, Any]]:
        unique = list(dict.fromkeys(names))
        self._widths, self._offset = {}, 0
        parts = []
        for record_batch in self._record_batches(unique, batch_rows or max(self._rows, 1)):
            if not record_batch.num_rows:
                continue
            part = self._convert(unique, record_batch)
            if on_rows is not None:
                on_rows(record_batch.num_rows)
            if batch_rows is not None:
                yield part
            else:
                parts.append(part)
        if batch_rows is None:
            if not parts:
                yield {name: self._empty(name) for name in unique}
            else:
                yield {name: np.concatenate([p[name] for p in parts]) for name in unique}


def _arrow_source(table: Any, label: str) -> _TableSource:
    def record_batches(names: list[str], rows: int) -> Iterator[Any]:
        return iter(table.select(names).to_batches(max_chunksize=rows))

    return _TableSource(label, table.schema, int(table.num_rows), record_batches)


def _pandas_source(frame: Any) -> _TableSource:
    pa = require("pyarrow", extra="parquet", purpose="reading a pandas DataFrame")
    label = "<pandas.DataFrame>"
    columns = list(frame.columns)
    bad = [c for c in columns if not isinstance(c, str)]
    if bad:
        raise TypeError(f"table: every column name of a DataFrame must be a string to be "
                        f"selected by name; got {bad[:5]!r}")
    if len(set(columns)) != len(columns):
        dup = sorted({c for c in columns if columns.count(c) > 1})
        raise FileFormatError(f"{label}: column(s) {dup!r} appear more than once")
    n_rows = len(frame)
    # the schema of the first row (a list column's element type is only known from a value)
    schema = pa.Schema.from_pandas(frame.iloc[:1], preserve_index=False) if n_rows \
        else pa.Schema.from_pandas(frame, preserve_index=False)

    def record_batches(names: list[str], rows: int) -> Iterator[Any]:
        for start in range(0, n_rows, rows):
            part = frame.iloc[start:start + rows][names]
            yield pa.RecordBatch.from_pandas(part, preserve_index=False)

    return _TableSource(label, schema, n_rows, record_batches)


def table_source(table: Any) -> _TableSource:
    """The reader for ``table`` (pyarrow Table / RecordBatch, pandas or polars DataFrame, or an
    Arrow stream exporter); a clear ``TypeError`` for anything else."""
    module = type(table).__module__.split(".", 1)[0]
    if module == "pandas" and "pandas" in sys.modules \
            and isinstance(table, sys.modules["pandas"].DataFrame):
        return _pandas_source(table)
    if module == "pyarrow":
        pa = require("pyarrow", extra="parquet", purpose="reading a pyarrow table")
        if isinstance(table, pa.RecordBatch):
            table = pa.Table.from_batches([table])
        if isinstance(table, pa.Table):
            return _arrow_source(table, "<pyarrow.Table>")
    if module == "polars" and hasattr(table, "to_arrow"):
        return _arrow_source(table.to_arrow(), "<polars.DataFrame>")
    if hasattr(table, "__arrow_c_stream__"):
        pa = require("pyarrow", extra="parquet", purpose="reading an Arrow stream")
        return _arrow_source(pa.table(table), f"<{type(table).__name__}>")
    raise TypeError(
        f"table must be a pyarrow Table or RecordBatch, a pandas or polars DataFrame, or an "
        f"object with __arrow_c_stream__; got {type(table).__module__}."
        f"{type(table).__name__} (for numpy arrays use trueprob.evaluate)")


def _specs(**specs: Spec | None) -> dict[str, Spec | None]:
    for field, spec in specs.items():
        ok = spec is None or isinstance(spec, str) or (
            isinstance(spec, (list, tuple)) and all(isinstance(s, str) for s in spec))
        if not ok:
            raise TypeError(f"{field} must be a column name, a glob or a comma-separated list "
                            f"of names (str), or a list of them; got {spec!r}")
    return specs


def _fields(source: _TableSource, specs: dict[str, Spec | None]) -> tuple[dict[str, list[str]],
                                                                           list[str]]:
    fields = plan(source.label, source.names(), specs, table=True)
    needed = list(dict.fromkeys(n for names in fields.values() for n in names))
    source.check(needed)
    return fields, needed


def read_table(
    table: Any, /, *, logits: Field = None, probs: Field = None, labels: Field = None,
    targets: Field = None, counts: Field = None, sample_weight: Field = None,
    confidences: Field = None, predictions: Field = None,
) -> dict[str, np.ndarray]:
    """The selected columns of ``table`` as the arrays :func:`trueprob.evaluate` takes.

    The in-memory counterpart of :func:`trueprob.io.read_inputs` (same field syntax, same
    auto-detection, same dict); every selected row is converted at once.

    Examples
    --------
    >>> import pyarrow as pa
    >>> t = pa.table({"y": [2, 0], "logit_0": [0.5, 2.0], "logit_1": [1.0, 0.0],
    ...               "logit_2": [3.0, -1.0]})
    >>> arrays = read_table(t, labels="y")
    >>> arrays["logits"].tolist(), arrays["labels"].tolist()
    ([[0.5, 1.0, 3.0], [2.0, 0.0, -1.0]], [2, 0])
    """
    source = table_source(table)
    specs = _specs(logits=logits, probs=probs, labels=labels, targets=targets, counts=counts,
                   sample_weight=sample_weight, confidences=confidences,
                   predictions=predictions)
    fields, needed = _fields(source, specs)
    (raw,) = source.batches(needed, None)
    return _assemble(source.label, fields, raw)


def evaluate_table(
    table: Any, /, *, logits: Field = None, probs: Field = None, labels: Field = None,
    targets: Field = None, counts: Field = None, sample_weight: Field = None,
    confidences: Field = None, predictions: Field = None, n_classes: int | None = None,
    calibrator: Any = None, batch_rows: int = BATCH_ROWS, n_bins: int = 15,
    binning: str = "width", closed: str = "right", unit: str = "nats", reduce: str = "mean",
) -> Report:
    """Evaluate the model outputs in a data frame or Arrow table, a batch at a time.

    Parameters
    ----------
    table : pyarrow.Table, pyarrow.RecordBatch, pandas.DataFrame, polars.DataFrame
        Or any object with ``__arrow_c_stream__``.
    logits, probs, labels, targets, counts, sample_weight, confidences, predictions : str, optional
        The column(s) of each input, as on the command line: a name, a glob (``"logit_*"``),
        a comma list, a list of names, or one list column holding the vectors; auto-detected
        by canonical name when not given.
    n_classes, calibrator, batch_rows, n_bins, binning, closed, unit, reduce
        As in :func:`trueprob.streaming.evaluate_path` (``n_classes`` is needed for top-label
        ``confidences`` + ``predictions``).

    Returns
    -------
    Report
        The report :func:`trueprob.streaming.evaluate_path` gives for the same columns in a
        file: equal to :func:`trueprob.evaluate` of all rows up to floating-point rounding.

    Examples
    --------
    >>> import numpy as np, pyarrow as pa, trueprob
    >>> z = np.array([[2.0, 0.0, 0.0], [0.0, 3.0, 0.0], [1.0, 0.0, 2.0], [0.0, 0.5, 0.0]])
    >>> t = pa.table({"logit_0": z[:, 0], "logit_1": z[:, 1], "logit_2": z[:, 2],
    ...               "y": [0, 1, 0, 2]})
    >>> report = evaluate_table(t, logits="logit_*", labels="y", batch_rows=3)
    >>> report.accuracy, round(report.nll, 4)
    (0.5, 0.7591)
    >>> round(trueprob.evaluate(np.array([0, 1, 0, 2]), logits=z).nll, 4)
    0.7591
    """
    check_unit(unit)
    check_reduce(reduce)
    rows = _check_batch_rows(batch_rows)
    source = table_source(table)
    specs = _specs(logits=logits, probs=probs, labels=labels, targets=targets, counts=counts,
                   sample_weight=sample_weight, confidences=confidences,
                   predictions=predictions)
    fields, needed = _fields(source, specs)

    def passes() -> Iterator[Batch]:
        k, start = n_classes, 0
        for raw in source.batches(needed, rows):
            arrays = normalise(_assemble(source.label, fields, raw))
            batch = prepare_batch(arrays, n_classes=k, calibrator=calibrator,
                                  source=source.label, start=start)
            k, start = batch.inputs.n_classes, start + batch.inputs.n_rows
            yield batch

    stats = stats_of_batches(passes, n_bins=n_bins, binning=binning, closed=closed)
    return stats.finalize(unit=unit, reduce=reduce)


def fit_table(
    table: Any, /, method: Any = "temperature", *, multiclass: str = "one-vs-rest",
    logits: Field = None, probs: Field = None, labels: Field = None, targets: Field = None,
    counts: Field = None, sample_weight: Field = None,
) -> Any:
    """Fit a calibrator on the model outputs and targets of a table (all rows in memory).

    ``method`` is a name of :mod:`trueprob.calibrators.by_name` (``"temperature"``,
    ``"dirichlet"``, ``"isotonic"``, ``"bbq"``, ...; a binary method on K > 2 classes is
    wrapped as ``multiclass`` says) or an unfitted calibrator. Fields as in
    :func:`evaluate_table`. Returns the fitted calibrator.

    Examples
    --------
    >>> import numpy as np, pyarrow as pa
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=(400, 3)) * 3
    >>> y = rng.integers(0, 3, size=400)
    >>> t = pa.table({"logits": list(z), "y": y})          # one list column
    >>> cal = fit_table(t, "vector", labels="y")
    >>> type(cal).__name__, cal.coef_.shape
    ('VectorScaling', (3,))
    """
    from trueprob.calibrators.base import Calibrator
    from trueprob.calibrators.by_name import make_calibrator

    arrays = read_table(table, logits=logits, probs=probs, labels=labels, targets=targets,
                        counts=counts, sample_weight=sample_weight)
    if "logits" not in arrays and "probs" not in arrays:
        raise ValueError(f"table: fit_table needs logits= or probs= (one value per class); the "
                         f"table gives top-label {' and '.join(sorted(arrays))} only")
    scores = arrays["logits"] if "logits" in arrays else arrays["probs"]
    k = 2 if scores.ndim == 1 else int(scores.shape[1])
    if isinstance(method, Calibrator):
        calibrator = copy.deepcopy(method)
    else:
        calibrator = make_calibrator(method, k, multiclass)
    labels_array = arrays.pop("labels", None)
    return calibrator.fit(labels_array, **arrays)


__all__ = ["FIELDS", "evaluate_table", "fit_table", "read_table", "table_source"]
