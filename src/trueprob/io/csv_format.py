"""CSV tables: a header row of column names, then one row per example, read in batches.

Parsed with the standard library's ``csv`` module, a batch of rows at a time; only the selected
columns are converted (with NumPy). Columns of ``labels``, ``predictions`` and ``counts`` become
int64 when every value is written as an integer, float64 otherwise (validation then reports a
non-integer label with its row); an integer beyond int64 is an error that quotes it as written.
``labels`` and ``predictions`` of which no value is a number stay text (class names, for
``classes=``);
every other field becomes float64.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Iterator, Sequence
from typing import IO, Any

import numpy as np

from trueprob.io.errors import FileFormatError
from trueprob.io.source import Source

#: fields whose columns are read as integers when they are written as integers
INTEGER_FIELDS = frozenset({"labels", "predictions", "counts"})
#: rows between two progress counts of a whole read
PROGRESS_ROWS = 1 << 16


def _beyond_int64(token: str) -> bool:
    try:
        value = int(token.strip())
    except ValueError:
        return False
    return not -(2 ** 63) <= value < 2 ** 63


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


class CsvSource(Source):
    """A ``.csv`` file (UTF-8, optional byte-order mark, comma-separated, header required)."""

    table = True

    def __init__(self, path: str | os.PathLike[str], label: str) -> None:
        self.label = label
        self._path = path
        #: names whose values should stay integers when they are written as integers
        self.integer_names: set[str] = set()
        #: names (of labels and predictions) kept as text when they are not numbers
        self.text_names: set[str] = set()
        with self._open() as fh:
            header = self._read_header(fh)
        self._header = header

    def _open(self) -> IO[str]:
        return open(self._path, encoding="utf-8-sig", newline="")

    def _read_header(self, fh: IO[str]) -> list[str]:
        try:
            reader = csv.reader(fh)
            header = next(reader, None)
            while header == []:
                header = next(reader, None)
        except (csv.Error, UnicodeDecodeError) as exc:
            raise FileFormatError(f"{self.label}: not a readable CSV file ({exc})") from exc
        if header is None:
            raise FileFormatError(f"{self.label}: the file is empty; expected a header row "
                                  f"naming the columns")
        header = [h.strip() for h in header]
        if all(_is_number(h) for h in header):
            raise FileFormatError(
                f"{self.label}: the first line ({','.join(header[:5])}"
                f"{',...' if len(header) > 5 else ''}) holds numbers, not column names; a "
                f"header row naming the columns is required"
            )
        return header

    def names(self) -> list[str]:
        return list(self._header)

    def check(self, names: Sequence[str]) -> None:
        for name in names:
            if self._header.count(name) > 1:
                raise FileFormatError(f"{self.label}: column {name!r} appears more than once "
                                      f"in the header")

    def batches(self, names: Sequence[str], batch_rows: int | None, *,
                on_rows: Callable[[int], None] | None = None) -> Iterator[dict[str, Any]]:
        unique = list(dict.fromkeys(names))
        # progress of a whole read: counted every PROGRESS_ROWS rows (a call per row costs)
        step = batch_rows or PROGRESS_ROWS
        counted = 0
        index = [self._header.index(name) for name in unique]
        width = len(self._header)
        with self._open() as fh:
            reader = csv.reader(fh)
            try:
                first = next(reader, None)
                while first == []:  # blank lines before the header
                    first = next(reader, None)
                rows: list[list[str]] = []
                lines: list[int] = []
                for row in reader:
                    if not row:  # blank line
                        continue
                    if len(row) != width:
                        raise FileFormatError(
                            f"{self.label}: line {reader.line_num} has {len(row)} fields but "
                            f"the header has {width}"
                        )
                    rows.append([row[i] for i in index])
                    lines.append(reader.line_num)
                    if len(rows) - counted == step:
                        if on_rows is not None:
                            on_rows(step)
                        counted += step
                    if batch_rows is not None and len(rows) == batch_rows:
                        yield self._convert(unique, rows, lines)
                        rows, lines, counted = [], [], 0
            except (csv.Error, UnicodeDecodeError) as exc:
                raise FileFormatError(
                    f"{self.label}: not a readable CSV file near line {reader.line_num} ({exc})"
                ) from exc
            if on_rows is not None and len(rows) > counted:
                on_rows(len(rows) - counted)
            if rows or batch_rows is None:
                yield self._convert(unique, rows, lines)

    def _convert(self, names: list[str], rows: list[list[str]],
                 lines: list[int]) -> dict[str, np.ndarray]:
        text = np.array(rows, dtype=str).reshape(len(rows), len(names))
        out = {}
        for j, name in enumerate(names):
            column = text[:, j]
            if name in self.integer_names:
                try:
                    out[name] = column.astype(np.int64)
                    continue
                except OverflowError:
                    # an integer beyond int64 is named as written: parsed as a float it
                    # would be shown as 1e+20, or wrap to a negative index
                    bad = next(i for i, t in enumerate(column) if _beyond_int64(str(t)))
                    raise FileFormatError(
                        f"{self.label}: column {name!r}, line {lines[bad]}: "
                        f"{str(column[bad])!r} is beyond the range of class indices (int64)"
                    ) from None
                except ValueError:
                    pass
            try:
                out[name] = column.astype(np.float64)
            except ValueError:
                bad = next(i for i, t in enumerate(column) if not _is_number(str(t)))
                if name in self.text_names and not any(_is_number(str(t)) for t in column):
                    # class names (no value is a number): kept as text for classes=
                    # (--classes); without it the validation refuses them with a hint. A
                    # column mixing numbers and text is an error naming the line.
                    out[name] = np.char.strip(column)
                    continue
                raise FileFormatError(
                    f"{self.label}: column {name!r}, line {lines[bad]}: {str(column[bad])!r} "
                    f"is not a number"
                ) from None
        return out
