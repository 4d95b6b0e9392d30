"""Parquet tables, streamed in record batches (pyarrow, imported only when a file is read).

Two layouts are understood: one numeric column per class (``logit_0 ... logit_9``, selected by
a glob or a list), and one list / large-list / fixed-size-list column holding each row's
vector. Reading goes through ``ParquetFile.iter_batches``, so memory is bounded by one batch of
the selected columns whatever the file's size. Nulls are an error, never a silent NaN.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from trueprob.io.errors import FileFormatError, require
from trueprob.io.source import Source

#: rows per record batch when the caller wants everything at once
_WHOLE_BATCH = 1 << 16


class ParquetSource(Source):
    """A ``.parquet`` file."""

    table = True

    def __init__(self, path: str | os.PathLike[str], label: str) -> None:
        self.label = label
        self._pa = require("pyarrow", extra="parquet", purpose=f"reading {label} (Parquet)")
        pq = require("pyarrow.parquet", extra="parquet", purpose=f"reading {label} (Parquet)")
        with open(path, "rb"):  # a missing file is FileNotFoundError, not a format error
            pass
        try:
            # pre_buffer=False: read one row group at a time (pre-buffering fetches far ahead)
            self._file = pq.ParquetFile(path, pre_buffer=False)
            self._schema = self._file.schema_arrow
        except (self._pa.ArrowException, OSError) as exc:
            raise FileFormatError(f"{label}: not a readable Parquet file ({exc})") from exc
        self._widths: dict[str, int] = {}
        self._offset = 0  # rows converted so far, for messages

    def names(self) -> list[str]:
        return list(self._schema.names)

    def close(self) -> None:
        self._file.close()

    def _is_list(self, name: str) -> bool:
        t = self._schema.field(name).type
        types = self._pa.types
        return bool(types.is_list(t) or types.is_large_list(t) or types.is_fixed_size_list(t))

    def check(self, names: Sequence[str]) -> None:
        types = self._pa.types
        for name in names:
            if self._schema.names.count(name) > 1:
                raise FileFormatError(f"{self.label}: column {name!r} appears more than once")
            t = self._schema.field(name).type
            value_type = t.value_type if self._is_list(name) else t
            if not (types.is_integer(value_type) or types.is_floating(value_type)
                    or types.is_boolean(value_type)):
                raise FileFormatError(
                    f"{self.label}: column {name!r} has type {t}, not numbers (expected "
                    f"integer, floating or boolean values, or a list of them)"
                )

    def n_rows(self, names: Sequence[str]) -> int | None:
        return int(self._file.metadata.num_rows)

    def batches(self, names: Sequence[str], batch_rows: int | None, *,
                on_rows: Callable[[int], None] | None = None) -> Iterator[dict[str, Any]]:
        unique = list(dict.fromkeys(names))
        pa = self._pa
        self._widths, self._offset = {}, 0
        try:
            stream = self._file.iter_batches(batch_size=batch_rows or _WHOLE_BATCH,
                                             columns=unique, use_threads=True)
            if batch_rows is not None:
                for batch in stream:
                    if batch.num_rows:
                        part = self._convert(unique, batch)
                        if on_rows is not None:
                            on_rows(batch.num_rows)
                        yield part
                return
            # everything at once: fill arrays of the final size, one record batch at a time
            n_rows = self._file.metadata.num_rows
            out: dict[str, np.ndarray] | None = None
            filled = 0
            for batch in stream:
                part = self._convert(unique, batch)
                if out is None:
                    out = {name: np.empty((n_rows, *a.shape[1:]), dtype=a.dtype)
                           for name, a in part.items()}
                for name, a in part.items():
                    out[name][filled:filled + len(a)] = a
                filled += batch.num_rows
                if on_rows is not None and batch.num_rows:
                    on_rows(batch.num_rows)
        except pa.ArrowException as exc:
            raise FileFormatError(f"{self.label}: the Parquet data is corrupt ({exc})") from exc
        if filled != n_rows:
            raise FileFormatError(f"{self.label}: the metadata promises {n_rows} rows but the "
                                  f"data holds {filled}")
        yield out if out is not None else {name: self._empty(name) for name in unique}

    def _empty(self, name: str) -> np.ndarray:
        t = self._schema.field(name).type
        if self._is_list(name):
            width = t.list_size if self._pa.types.is_fixed_size_list(t) else 0
            return np.empty((0, width), dtype=t.value_type.to_pandas_dtype())
        return np.empty(0, dtype=t.to_pandas_dtype())

    def _convert(self, names: list[str], batch: Any) -> dict[str, np.ndarray]:
        out = {}
        for name in names:
            column = batch.column(name)
            if column.null_count:
                raise FileFormatError(
                    f"{self.label}: column {name!r} has {column.null_count} null value(s); "
                    f"every row needs a value"
                )
            out[name] = self._list_to_numpy(name, column) if self._is_list(name) \
                else column.to_numpy(zero_copy_only=False)
        self._offset += batch.num_rows
        return out

    def _list_to_numpy(self, name: str, column: Any) -> np.ndarray:
        """A list column of n rows of K values each -> an (n, K) array."""
        pc = require("pyarrow.compute", extra="parquet", purpose="reading Parquet")
        n = len(column)
        lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False)
        width = self._widths.setdefault(name, int(lengths[0]) if n else 0)
        bad = np.flatnonzero(lengths != width)
        if bad.size:
            raise FileFormatError(
                f"{self.label}: list column {name!r} must hold the same number of values in "
                f"every row; row {self._offset + int(bad[0])} has {int(lengths[bad[0]])} "
                f"values where row 0 has {width}"
            )
        values = column.flatten()
        if values.null_count:
            raise FileFormatError(
                f"{self.label}: list column {name!r} holds {values.null_count} null value(s)"
            )
        return values.to_numpy(zero_copy_only=False).reshape(n, width)
