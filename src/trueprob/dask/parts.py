"""The parts of a Dask input (file row groups, DataFrame partitions, array blocks) and
the batches each part reads inside its task."""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from trueprob.streaming import (
    Batch,
    FitRows,
    iter_batches,
    normalise,
    prepare_batch,
    sum_fit_rows,
)

PathLike = str | os.PathLike[str]
#: rows per task when a Parquet file is split by row groups
PARTITION_ROWS = 1 << 20
#: fan-in of the reduction tree
SPLIT_EVERY = 8
#: the field options, in the order every part records them (they are part of its task keys)
_FIELDS = ("logits", "probs", "labels", "targets", "counts", "sample_weight", "confidences",
          "predictions")


def _require_dask() -> Any:
    try:
        import dask
    except ImportError as exc:
        raise ImportError(
            "trueprob.dask needs the optional dependency 'dask', which is not installed; "
            "install it with: pip install 'trueprob[dask]'"
        ) from exc
    return dask



@dataclass(frozen=True)
class FilePart:
    """Rows of one file: some row groups of a Parquet file, or a whole file of another type."""

    file: str
    row_groups: tuple[int, ...] | None
    first_row: int
    specs: tuple[tuple[str, Any], ...]
    batch_rows: int

    def batches(self) -> Iterator[tuple[str, int, dict[str, np.ndarray]]]:

        specs = dict(self.specs)
        if self.row_groups is None:
            yield from iter_batches(self.file, **specs, batch_rows=self.batch_rows)
            return
        yield from _row_group_batches(self.file, self.row_groups, self.first_row, specs,
                                      self.batch_rows)


def _row_group_batches(file: str, row_groups: Sequence[int], first_row: int,
                       specs: dict[str, Any],
                       batch_rows: int) -> Iterator[tuple[str, int, dict[str, np.ndarray]]]:
    """Batches of some row groups of a Parquet file, through trueprob.io's Parquet reader
    (same field planning, checks, list columns and messages as ``iter_inputs``)."""
    from trueprob.io.fields import plan
    from trueprob.io.parquet_format import ParquetSource
    from trueprob.io.read import _assemble

    class RowGroups(ParquetSource):
        def batches(self, names: Sequence[str], batch_rows: int | None, *,
                    on_rows: Callable[[int], None] | None = None) -> Iterator[dict[str, Any]]:
            unique = list(dict.fromkeys(names))
            self._widths, self._offset = {}, first_row
            try:
                stream = self._file.iter_batches(batch_size=batch_rows, columns=unique,
                                                 row_groups=list(row_groups), use_threads=False)
                for batch in stream:
                    if batch.num_rows:
                        yield self._convert(unique, batch)
            except self._pa.ArrowException as exc:
                from trueprob.io import FileFormatError

                raise FileFormatError(f"{self.label}: the Parquet data is corrupt ({exc})") \
                    from exc

    with RowGroups(file, file) as source:
        fields = plan(source.label, source.names(), specs, table=True)
        needed = list(dict.fromkeys(n for names in fields.values() for n in names))
        source.check(needed)
        start = first_row
        for batch in source.batches(needed, batch_rows):
            arrays = normalise(_assemble(source.label, fields, batch))
            yield file, start, arrays
            start += len(next(iter(arrays.values())))


@dataclass(frozen=True)
class FramePart:
    """A partition of a dask DataFrame: ``fields`` maps each input to its column names."""

    fields: tuple[tuple[str, tuple[str, ...]], ...]
    index: int

    def batches(self, frame: Any) -> Iterator[tuple[str, int, dict[str, np.ndarray]]]:
        arrays = {}
        for name, columns in self.fields:
            arrays[name] = _frame_columns(frame, columns)
        if len(frame):
            yield f"<dask dataframe partition {self.index}>", 0, normalise(arrays)


def _frame_columns(frame: Any, columns: Sequence[str]) -> np.ndarray:
    """One input from a pandas partition: one column, a list column, or one column per class."""
    if len(columns) > 1:
        return np.column_stack([_plain(frame[c]) for c in columns])
    values = _plain(frame[columns[0]])
    if values.dtype == object:  # a column of lists or arrays: one row vector per row
        rows = [np.asarray(v) for v in values]
        width = {r.shape for r in rows}
        if len(width) > 1:
            raise ValueError(f"column {columns[0]!r} holds vectors of different lengths: "
                             f"{sorted(width)}")
        return np.stack(rows) if rows else np.empty((0, 0))
    return values


def _plain(series: Any) -> np.ndarray:
    """A pandas column as a numpy array (pyarrow list columns through pyarrow, not objects)."""
    arrow = getattr(series.array, "_pa_array", None)
    if arrow is not None:
        import pyarrow as pa

        chunked = arrow.combine_chunks() if hasattr(arrow, "combine_chunks") else arrow
        if pa.types.is_list(chunked.type) or pa.types.is_large_list(chunked.type) \
                or pa.types.is_fixed_size_list(chunked.type):
            n = len(chunked)
            flat = chunked.flatten().to_numpy(zero_copy_only=False)
            return flat.reshape(n, -1) if n else flat.reshape(0, 0)
        return chunked.to_numpy(zero_copy_only=False)
    return series.to_numpy()


@dataclass(frozen=True)
class ArrayPart:
    """A row block of dask arrays: ``fields`` names the arrays passed to the task, in order."""

    fields: tuple[str, ...]
    index: int

    def batches(self, *blocks: Any) -> Iterator[tuple[str, int, dict[str, np.ndarray]]]:
        arrays = {name: np.asarray(b) for name, b in zip(self.fields, blocks, strict=True)}
        if len(next(iter(arrays.values()))):
            yield f"<dask array block {self.index}>", 0, normalise(arrays)


Part = FilePart | FramePart | ArrayPart


@dataclass(frozen=True)
class _Settings:
    """What every task needs besides its rows (plain data)."""

    n_classes: int | None = None
    calibrator: tuple[str, dict[str, Any]] | None = None
    n_bins: int = 15
    closed: str = "right"
    edges: tuple[float, ...] | None = None
    binning: str = "width"
    purpose: str | None = None


def _calibrator_of(settings: _Settings) -> Any:
    if settings.calibrator is None:
        return None
    from trueprob.calibrators import from_dict

    module, data = settings.calibrator
    importlib.import_module(module)  # registers the class with from_dict
    return from_dict(data)


def _part_batches(part: Part, settings: _Settings, data: tuple[Any, ...]) -> Iterator[Batch]:
    calibrator = _calibrator_of(settings)
    k = settings.n_classes
    for source, start, arrays in part.batches(*data):
        batch = prepare_batch(arrays, n_classes=k, calibrator=calibrator, source=source,
                              start=start, purpose=settings.purpose)
        k = batch.inputs.n_classes
        yield batch


def _fit_sums(part: Part, settings: _Settings, data: tuple[Any, ...], width: int,
              sums: Callable[[FitRows], np.ndarray]) -> np.ndarray:
    """``sums(rows)`` added over the fit rows of every batch of a part (zeros: no rows)."""
    assert settings.purpose is not None  # the settings of a fit
    return sum_fit_rows(_part_batches(part, settings, data), width, sums,
                        purpose=settings.purpose)


def _scores_kind(batch: Batch) -> str:
    """What a fit's scores are: "logits", or "probs" (their floored logs)."""
    return "logits" if batch.inputs.kind == "logits" else "probs"
