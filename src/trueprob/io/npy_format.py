"""NumPy files: ``.npz`` archives (also on stdin) and ``.npy`` arrays, read in row batches.

Arrays are read straight from their ``.npy`` byte layout (header, then C-ordered rows), a batch
of rows at a time, so memory does not grow with the file. Nothing is ever unpickled: an array
of Python objects is refused from its header, before any of its bytes are read. Only the arrays
that were asked for are touched. A Fortran-ordered 2-D array has no row layout on disk and is
read whole, then sliced.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import sys
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from trueprob.io.errors import FileFormatError
from trueprob.io.source import Source, check_numeric, check_shapes

#: errors that mean "the bytes are not what the header or the zip directory promised"
_CORRUPT = (zipfile.BadZipFile, zlib.error, EOFError, OSError)
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_NPY_MAGIC = b"\x93NUMPY"


@dataclass(frozen=True)
class NpyHeader:
    """The header of one ``.npy`` array: its shape, dtype and memory order."""

    shape: tuple[int, ...]
    fortran_order: bool
    dtype: np.dtype[Any]


def read_header(fp: IO[bytes], where: str) -> NpyHeader:
    """Parse the ``.npy`` header at the current position of ``fp`` (a safe literal parse)."""
    try:
        version = np.lib.format.read_magic(fp)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fp)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fp)
        else:
            raise FileFormatError(f"{where}: .npy format version {version} is not supported")
    except FileFormatError:
        raise
    except _CORRUPT as exc:
        raise FileFormatError(f"{where}: the data is corrupt ({exc})") from exc
    except ValueError as exc:
        raise FileFormatError(f"{where}: not a valid .npy array ({exc})") from exc
    return NpyHeader(tuple(int(s) for s in shape), bool(fortran), np.dtype(dtype))


def _read_into(fp: IO[bytes], out: np.ndarray, where: str) -> None:
    """Fill the C-contiguous ``out`` with the next bytes of ``fp``; short data is an error."""
    view = out.reshape(-1).view(np.uint8).data  # a writable memoryview of out's bytes
    got = 0
    try:
        while got < len(view):
            n = fp.readinto(view[got:])  # type: ignore[attr-defined]
            if not n:
                break
            got += n
    except _CORRUPT as exc:
        raise FileFormatError(f"{where}: the data is corrupt ({exc})") from exc
    if got < len(view):
        raise FileFormatError(
            f"{where}: the file is truncated (expected {len(view)} more bytes of data, "
            f"found {got})"
        )


#: bytes of one array read per step of a whole read (so progress can be shown as it goes)
CHUNK_BYTES = 8 << 20

#: called with the number of rows just read (progress)
OnRows = Callable[[int], None]


def _ignore(rows: int) -> None:
    """The default ``on_rows``: nobody is counting."""


def iter_rows(fp: IO[bytes], header: NpyHeader, where: str,
              batch_rows: int | None, available: int | None = None) -> Iterator[np.ndarray]:
    """Batches of rows of the array whose header was just read from ``fp`` (``available``:
    the bytes of data the file holds after the header, when known)."""
    if batch_rows is None:
        reader = RowReader(fp, header, where, available)
        reader.fill(header.shape[0])
        yield reader.array
        return
    reader_check(header, where, available)
    n, row_shape = header.shape[0], header.shape[1:]
    if header.fortran_order and len(header.shape) > 1:
        whole = RowReader(fp, header, where, available)
        whole.fill(n)
        for start in range(0, n, batch_rows):
            yield np.ascontiguousarray(whole.array[start:start + batch_rows])
        return
    for start in range(0, n, batch_rows):
        out = np.empty((min(batch_rows, n - start), *row_shape), dtype=header.dtype)
        _read_into(fp, out, where)
        yield out


def reader_check(header: NpyHeader, where: str, available: int | None = None) -> None:
    """Refuse an array of Python objects from its header (raw bytes never become objects),
    and a header that promises more data than the file holds (checked before any memory is
    allocated for it, so a 64-byte file claiming 10**12 rows is an error, not an allocation)."""
    if header.dtype.hasobject:
        raise FileFormatError(f"{where}: holds Python objects (a pickle); refused")
    if available is not None:
        need = header.dtype.itemsize * math.prod(header.shape)
        if need > available:
            raise FileFormatError(
                f"{where}: the file is truncated (expected {need} more bytes of data, found "
                f"{max(available, 0)}: its header says shape {header.shape} of {header.dtype})"
            )


def remaining_bytes(fp: IO[bytes]) -> int | None:
    """Bytes after the current position of an ordinary file, or None when not knowable."""
    try:
        return os.fstat(fp.fileno()).st_size - fp.tell()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both
        return None


class RowReader:
    """Reads a whole array into ``array`` (allocated once, full size) a step of rows at a time.

    :meth:`fill` reads up to a given row, so several arrays of an archive can be read side by
    side and progress counted in rows. A Fortran-ordered 2-D array has no row layout on disk:
    its first :meth:`fill` reads it whole.
    """

    def __init__(self, fp: IO[bytes], header: NpyHeader, where: str,
                 available: int | None = None) -> None:
        reader_check(header, where, available)
        self._fp, self._where = fp, where
        self.fortran = header.fortran_order and len(header.shape) > 1
        if self.fortran:
            self.array = np.empty(header.shape[::-1], dtype=header.dtype).T
        else:
            self.array = np.empty(header.shape, dtype=header.dtype)
        self.rows = 0  # rows read so far
        self.row_bytes = header.dtype.itemsize * math.prod(header.shape[1:])

    def fill(self, stop: int) -> None:
        """Read rows up to (not including) ``stop``."""
        if self.fortran:
            if self.rows == 0 and self.array.size:
                _read_into(self._fp, self.array.T, self._where)
            self.rows = len(self.array)
            return
        if stop > self.rows:
            _read_into(self._fp, self.array[self.rows:stop], self._where)
            self.rows = stop


def read_whole(readers: dict[str, RowReader], n_rows: int,
               on_rows: OnRows) -> dict[str, np.ndarray]:
    """Fill every reader to ``n_rows`` rows, side by side in steps of about
    :data:`CHUNK_BYTES` per array, calling ``on_rows`` after each step."""
    widest = max((r.row_bytes for r in readers.values()), default=1)
    step = max(1, CHUNK_BYTES // max(widest, 1))
    done = 0
    while done < n_rows:
        stop = min(n_rows, done + step)
        for reader in readers.values():
            reader.fill(stop)
        on_rows(stop - done)
        done = stop
    return {name: reader.array for name, reader in readers.items()}


class NpzSource(Source):
    """An ``.npz`` archive: each member ``NAME.npy`` is the array ``NAME``."""

    def __init__(self, file: str | os.PathLike[str] | IO[bytes], label: str) -> None:
        self.label = label
        # the file is opened here, not by np.load, so that it is closed on every failure
        # kept open for the life of the source and closed by close()
        self._owned = open(file, "rb") if isinstance(file, (str, os.PathLike)) else None  # noqa: SIM115
        fh = self._owned if self._owned is not None else file
        assert not isinstance(fh, (str, os.PathLike))
        try:
            magic = fh.read(4)
            fh.seek(0)
            if magic not in _ZIP_MAGIC:
                hint = " (it is a .npy array; give it the suffix .npy)" \
                    if magic == _NPY_MAGIC[:4] else ""
                raise FileFormatError(f"{label}: not an .npz archive (no zip signature){hint}")
            self._npz = np.load(fh, allow_pickle=False)
            members = self._npz.zip.namelist()
        except FileFormatError:
            self._close_owned()
            raise
        except (ValueError, *_CORRUPT) as exc:
            self._close_owned()
            raise FileFormatError(f"{label}: not a readable .npz archive ({exc})") from exc
        self._names = [m[:-4] for m in members if m.endswith(".npy")]
        self._headers: dict[str, NpyHeader] = {}

    def names(self) -> list[str]:
        return list(self._names)

    def _open(self, name: str) -> IO[bytes]:
        try:
            return self._npz.zip.open(name + ".npy")
        except _CORRUPT as exc:
            raise FileFormatError(f"{self.label}: array {name!r} is unreadable ({exc})") from exc

    def header(self, name: str) -> NpyHeader:
        if name not in self._headers:
            with self._open(name) as fp:
                self._headers[name] = read_header(fp, f"{self.label}: array {name!r}")
        return self._headers[name]

    def check(self, names: Sequence[str]) -> None:
        for name in names:
            check_numeric(self.label, name, self.header(name).dtype)
        check_shapes(self.label, {name: self.header(name).shape for name in names})

    def n_rows(self, names: Sequence[str]) -> int | None:
        return self.header(names[0]).shape[0] if names else None

    def batches(self, names: Sequence[str], batch_rows: int | None, *,
                on_rows: OnRows | None = None) -> Iterator[dict[str, Any]]:
        unique = list(dict.fromkeys(names))
        count = on_rows or _ignore
        with contextlib.ExitStack() as stack:
            files, headers, available = {}, {}, {}
            for name in unique:
                fp = stack.enter_context(self._open(name))
                files[name] = fp
                headers[name] = read_header(fp, f"{self.label}: array {name!r}")
                # the member's uncompressed size from the zip directory, less its header
                available[name] = self._npz.zip.getinfo(name + ".npy").file_size - fp.tell()
            if batch_rows is None:
                readers = {name: RowReader(files[name], headers[name],
                                           f"{self.label}: array {name!r}", available[name])
                           for name in unique}
                n = headers[unique[0]].shape[0] if unique else 0
                yield read_whole(readers, n, count)
                return
            streams = {name: iter_rows(files[name], headers[name],
                                       f"{self.label}: array {name!r}", batch_rows,
                                       available[name])
                       for name in unique}
            for batch in _zip_streams(streams):
                count(len(next(iter(batch.values()))))
                yield batch

    def _close_owned(self) -> None:
        if self._owned is not None:
            self._owned.close()

    def close(self) -> None:
        self._npz.close()
        self._close_owned()


def _zip_streams(streams: dict[str, Iterator[np.ndarray]]) -> Iterator[dict[str, Any]]:
    """Advance equally long row streams together (their row counts were checked)."""
    while True:
        batch = {}
        for name, stream in streams.items():
            part = next(stream, None)
            if part is None:
                return
            batch[name] = part
        yield batch


class NpySource(Source):
    """A ``.npy`` array.

    A structured array is a table of named fields (a field may be a sub-array, e.g.
    ``('logits', 'f4', (10,))``). A plain array is one unnamed array; it is given the file's
    stem as its name (``logits.npy`` holds the array ``logits``), so select it with
    ``logits='*'`` or ``probs='*'``, or name the file ``logits.npy`` / ``probs.npy``.
    """

    def __init__(self, path: str | os.PathLike[str], label: str) -> None:
        self.label = label
        self._path = path
        with open(path, "rb") as fp:
            self._header = read_header(fp, label)
        dtype = self._header.dtype
        if dtype.names is not None:
            self._names = list(dtype.names)
        else:
            self._names = [Path(path).stem]
        if dtype.hasobject:
            raise FileFormatError(
                f"{label}: holds Python objects (a pickle); trueprob never unpickles data "
                f"files — save plain numeric arrays"
            )

    def names(self) -> list[str]:
        return list(self._names)

    def _field(self, name: str) -> tuple[np.dtype[Any], tuple[int, ...]]:
        dtype = self._header.dtype
        if dtype.names is None:
            return dtype, self._header.shape
        sub = dtype.fields[name][0]  # type: ignore[index]
        base = sub.base if sub.subdtype is not None else sub
        return base, self._header.shape + tuple(sub.shape)

    def check(self, names: Sequence[str]) -> None:
        shapes = {}
        for name in names:
            dtype, shape = self._field(name)
            check_numeric(self.label, name, dtype, "field" if self._header.dtype.names else
                          "array")
            shapes[name] = shape
        check_shapes(self.label, shapes)
        if self._header.dtype.names is not None and len(self._header.shape) != 1:
            raise FileFormatError(
                f"{self.label}: a structured .npy must be 1-D (one record per row); got shape "
                f"{self._header.shape}"
            )

    def n_rows(self, names: Sequence[str]) -> int | None:
        return self._header.shape[0] if self._header.shape else None

    def batches(self, names: Sequence[str], batch_rows: int | None, *,
                on_rows: OnRows | None = None) -> Iterator[dict[str, Any]]:
        structured = self._header.dtype.names is not None
        count = on_rows or _ignore
        with open(self._path, "rb") as fp:
            header = read_header(fp, self.label)
            available = remaining_bytes(fp)
            if batch_rows is None:
                reader = RowReader(fp, header, self.label, available)
                stream: Iterator[np.ndarray] = iter(
                    [read_whole({"": reader}, header.shape[0], count)[""]])
            else:
                stream = iter_rows(fp, header, self.label, batch_rows, available)
            for rows in stream:
                if batch_rows is not None:
                    count(len(rows))
                if structured:
                    yield {name: np.ascontiguousarray(rows[name]) for name in names}
                else:
                    yield dict.fromkeys(names, rows)


def stdin_npz(read: Callable[[], bytes] | None = None) -> NpzSource:
    """An ``.npz`` archive read from standard input (held in memory: a zip needs seeking)."""
    data = (read or sys.stdin.buffer.read)()
    if not data:
        raise FileFormatError("<stdin>: empty input; expected an .npz archive")
    return NpzSource(io.BytesIO(data), "<stdin>")
