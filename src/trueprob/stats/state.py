"""`MergeableState`: what every fixed-size state shares (merge, bytes), written once.

A state is a set of named summed arrays (``sums``, ``counts``, ...) plus named sub-states
(:class:`~trueprob.stats.binned.BinnedStats`) and settings. Merging adds the arrays; the bytes
are an ``.npz`` archive of plain arrays with a JSON header stored as a uint8 array, never
pickled in either direction. Reading checks every member against the header before it keeps
anything, and every failure is a :class:`StateFormatError`.
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from typing import Any, ClassVar, TypeVar

import numpy as np

from trueprob._array import Array, as_array, to_numpy

S = TypeVar("S", bound="MergeableState")

#: a state's array: its shape and dtype ("int64" counts or "float64" sums)
Slot = tuple[tuple[int, ...], str]


class StateFormatError(ValueError):
    """Bytes given to ``from_bytes`` are not a readable trueprob state: not an archive, a
    truncated or incomplete archive, a wrong or newer format, or arrays that disagree with
    the header (shape, type or size). A :class:`ValueError`, so ``except ValueError`` keeps
    working."""


def pack(header: dict[str, Any], arrays: dict[str, np.ndarray]) -> bytes:
    """``header`` (JSON-able) and ``arrays`` as the bytes of one uncompressed ``.npz``."""
    members = {"header": np.frombuffer(json.dumps(header).encode(), dtype=np.uint8), **arrays}
    buffer = io.BytesIO()
    np.savez(buffer, **members)  # type: ignore[arg-type]
    return buffer.getvalue()


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, size: int,
                 what: str) -> np.ndarray | None:
    """One ``.npy`` member, its declared size checked before anything is allocated. None for a
    0-d object member (older writers stored an absent part as a pickled None: not unpickled,
    read as absent)."""
    name = info.filename
    if info.compress_type != zipfile.ZIP_STORED or info.file_size > size:
        raise StateFormatError(f"not a {what}: member {name!r} is compressed or larger than "
                               f"the {size} bytes given")
    with archive.open(info) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise StateFormatError(f"not a {what}: member {name!r} has .npy version {version}")
        if dtype.hasobject:
            if shape == ():
                return None
            raise StateFormatError(f"not a {what}: member {name!r} holds Python objects")
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes > info.file_size:
            raise StateFormatError(
                f"not a {what}: member {name!r} declares shape {shape} ({nbytes} bytes) but "
                f"holds at most {info.file_size} bytes (truncated or corrupt)")
        raw = f.read(nbytes)
    if len(raw) != nbytes:
        raise StateFormatError(f"not a {what}: member {name!r} is truncated ({len(raw)} of "
                               f"{nbytes} bytes)")
    return np.frombuffer(raw, dtype=dtype).reshape(shape, order="F" if fortran else "C").copy()


def unpack(data: bytes, *, fmt: str, version: int,
           what: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(header, arrays) of :func:`pack` output, checking the format name and version.

    ``what`` names the state in errors ("trueprob state", "trueprob regression state", ...).
    Every member's declared size is checked against the bytes given before it is read, so a
    short or doctored input cannot ask for more memory than its own length.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes; got {type(data).__name__}")
    data = bytes(data)
    arrays: dict[str, np.ndarray] = {}
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for info in archive.infolist():
                if not info.filename.endswith(".npy"):
                    raise StateFormatError(f"not a {what}: unexpected member "
                                           f"{info.filename!r}")
                value = _read_member(archive, info, len(data), what)
                if value is not None:
                    arrays[info.filename[:-4]] = value
    except StateFormatError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError,
            KeyError, NotImplementedError) as exc:
        raise StateFormatError(f"not a {what}: {exc}") from exc
    raw = arrays.pop("header", None)
    if raw is None or raw.dtype != np.uint8 or raw.ndim != 1:
        raise StateFormatError(f"not a {what} (missing or wrong format header)")
    try:
        header = json.loads(raw.tobytes().decode())
    except (ValueError, UnicodeDecodeError) as exc:
        raise StateFormatError(f"not a {what}: unreadable header ({exc})") from exc
    if not isinstance(header, dict) or header.get("format") != fmt:
        raise StateFormatError(f"not a {what} (missing or wrong format header)")
    found = header.get("version", 0)
    if not isinstance(found, int) or found > version:
        raise StateFormatError(f"state format version {found!r} is newer than this trueprob "
                               f"reads ({version})")
    return header, arrays


class MergeableState:
    """Base of the fixed-size states: merge and bytes from a declaration of the arrays.

    A subclass declares

    - ``FORMAT``, ``VERSION``, ``WHAT``: the header's format name and version, and the name
      used in errors;
    - :meth:`_slots`: its own summed arrays, name -> (shape, dtype), computed from the
      settings without allocating (the arrays are attributes of that name, ``None`` until the
      first update);
    - :meth:`_parts`: named sub-states with their own ``merge`` (BinnedStats), stored as
      ``"<part>.<field>"``;
    - :meth:`_settings` (states merge only with equal settings), :meth:`_empty_like`,
      :meth:`_header` and :meth:`_from_header` (settings and kinds to and from JSON),
      :meth:`_merge_extra` (kinds, sub-states other than parts).

    ``merge`` returns a new state equal to the sum of both operands, neither of which
    changes; ``to_bytes`` / ``from_bytes`` round-trip exactly, on the host.
    """

    FORMAT: ClassVar[str]
    VERSION: ClassVar[int] = 1
    WHAT: ClassVar[str] = "trueprob state"
    _xp: Any
    _device: Any

    # ------------------------------------------------------------------ declared
    def _slots(self) -> dict[str, Slot]:
        raise NotImplementedError

    def _parts(self) -> dict[str, Any]:
        return {}

    def _settings(self) -> tuple[Any, ...]:
        raise NotImplementedError

    def _empty_like(self: S) -> S:
        raise NotImplementedError

    def _header(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def _from_header(cls: type[S], header: dict[str, Any]) -> S:
        raise NotImplementedError

    def _merge_extra(self: S, other: S, out: S) -> None:
        """Fill ``out`` with what is not a summed array or a part (kinds, other states)."""

    def _extra_arrays(self) -> dict[str, np.ndarray]:
        return {}

    def _read_extra(self, header: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        """Take (pop) the members of :meth:`_extra_arrays` from ``arrays``."""

    # ------------------------------------------------------------------ shared
    def _ensure(self, xp: Any, dev: Any) -> None:
        """Allocate the zero arrays on the first update (in ``xp``, on ``dev``)."""
        if self._xp is not None:
            return
        self._xp, self._device = xp, dev
        kw = {} if dev is None else {"device": dev}
        for name, (shape, dtype) in self._slots().items():
            setattr(self, name, xp.zeros(shape, dtype=getattr(xp, dtype), **kw))

    def merge(self: S, other: S) -> S:
        """A new state equal to the sum of both (neither operand is changed)."""
        if not isinstance(other, type(self)):
            raise TypeError(f"can only merge {type(self).__name__}; got "
                            f"{type(other).__name__}")
        if self._settings() != other._settings():
            raise ValueError(f"cannot merge states with different settings: "
                             f"{self._settings()} vs {other._settings()}")
        out = self._empty_like()
        for name, part in self._parts().items():
            setattr(out, name, part.merge(other._parts()[name]))
        self._merge_extra(other, out)
        present = [s for s in (self, other) if s._xp is not None]
        if present:
            out._ensure(present[0]._xp, present[0]._device)
            for s in present:
                for name in self._slots():
                    arr: Array = getattr(s, name)
                    if s._xp is not out._xp:
                        arr = as_array(to_numpy(arr), out._xp, out._device)
                    setattr(out, name, getattr(out, name) + arr)
        return out

    def __add__(self: S, other: S) -> S:
        return self.merge(other)

    def to_bytes(self) -> bytes:
        """The state as bytes: an ``.npz`` archive of plain arrays plus a JSON header.

        No pickle is involved in either direction; :meth:`from_bytes` rebuilds an equal state.
        Use it to ship states between processes or machines, or to checkpoint a stream.
        """
        header = {"format": self.FORMAT, "version": self.VERSION, **self._header(),
                  "empty": self._xp is None}
        arrays: dict[str, np.ndarray] = {}
        if self._xp is not None:
            for name in self._slots():
                arrays[name] = to_numpy(getattr(self, name))
            for name, part in self._parts().items():
                fields = {field: getattr(part, field) for field in part._slots()}
                # a part never updated is not written (no pickled None, ever)
                if part._xp is not None and all(v is not None for v in fields.values()):
                    for field, value in fields.items():
                        arrays[f"{name}.{field}"] = to_numpy(value)
            arrays.update(self._extra_arrays())
        return pack(header, arrays)

    @classmethod
    def from_bytes(cls: type[S], data: bytes) -> S:
        """Rebuild a state written by :meth:`to_bytes` (numpy arrays on the host).

        Raises :class:`StateFormatError` (a ``ValueError``) naming what is wrong when ``data``
        is not such a state: not an archive, truncated, a member missing or extra, a shape or
        type that disagrees with the header, a newer format version.
        """
        header, arrays = unpack(data, fmt=cls.FORMAT, version=cls.VERSION, what=cls.WHAT)
        try:
            out = cls._from_header(header)
            empty = header["empty"]
        except (KeyError, TypeError, ValueError) as exc:
            raise StateFormatError(f"{cls.WHAT} header is incomplete or invalid: "
                                   f"{type(exc).__name__}: {exc}") from exc
        if empty:
            if arrays:
                raise StateFormatError(f"{cls.WHAT} is marked empty but holds arrays "
                                       f"{sorted(arrays)}")
            return out
        try:
            out._read_extra(header, arrays)
        except (KeyError, TypeError, ValueError) as exc:
            raise StateFormatError(f"{cls.WHAT}: {exc}") from exc
        expected = dict(out._slots())
        parts = out._parts()
        for name, part in parts.items():
            fields = {f"{name}.{field}" for field in part._slots()}
            if fields & set(arrays):  # a part is written whole or not at all
                expected.update({f"{name}.{field}": slot for field, slot in
                                 part._slots().items()})
        if set(arrays) != set(expected):
            raise StateFormatError(f"state arrays {sorted(arrays)} do not match the header "
                                   f"(expected {sorted(expected)})")
        for key, (shape, dtype) in expected.items():
            value = arrays[key]
            if value.shape != shape:
                raise StateFormatError(f"state array {key} has shape {value.shape}, "
                                       f"expected {shape}")
            if not np.can_cast(value.dtype, dtype, casting="same_kind"):
                raise StateFormatError(f"state array {key} has dtype {value.dtype}, "
                                       f"expected {dtype}")
        out._xp, out._device = _numpy_namespace(), None
        for key, (_, dtype) in expected.items():
            holder, field = (out, key) if "." not in key else \
                (parts[key.split(".", 1)[0]], key.split(".", 1)[1])
            if holder is not out and holder._xp is None:
                holder._xp, holder._device = out._xp, None
            setattr(holder, field, arrays[key].astype(dtype))
        return out


def _numpy_namespace() -> Any:
    from array_api_compat import array_namespace

    return array_namespace(np.zeros(1))
