"""What every file reader provides: names, checks, and aligned batches of rows."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from trueprob.io.errors import FileFormatError

#: dtype kinds accepted as numbers: bool, signed and unsigned integers, floats
NUMERIC_KINDS = frozenset("biuf")


class Source:
    """A readable file of named arrays (npz, npy, pt) or named columns (csv, parquet).

    ``label`` names the file in messages; ``table`` is True for column formats (where the
    prefixes ``logit_*`` / ``prob_*`` are auto-detected).
    """

    label: str = "?"
    table: bool = False

    def names(self) -> list[str]:
        """Every array or column name in the file, in file order."""
        raise NotImplementedError

    def check(self, names: Sequence[str]) -> None:
        """Raise :class:`FileFormatError` if ``names`` cannot be read together (before reading)."""

    def n_rows(self, names: Sequence[str]) -> int | None:
        """The number of rows of ``names`` if the file says so cheaply (a header, metadata);
        None when only reading it all would tell (CSV, ``.pt``)."""
        return None

    def batches(self, names: Sequence[str], batch_rows: int | None, *,
                on_rows: Callable[[int], None] | None = None) -> Iterator[dict[str, Any]]:
        """Aligned batches ``{name: array}`` of at most ``batch_rows`` rows each.

        ``batch_rows=None``: exactly one batch holding every row (possibly zero rows).
        Otherwise only non-empty batches are yielded. ``on_rows(n)`` is called as rows are
        read, with the number of rows just read (for progress; the counts add up to the rows
        of the file); a source read in one piece (``.pt``) does not call it.
        """
        raise NotImplementedError

    def close(self) -> None:
        """Release the file."""

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_numeric(label: str, name: str, dtype: np.dtype[Any], kind: str = "array") -> None:
    """Refuse arrays that are not plain numbers (objects would need unpickling)."""
    if dtype.hasobject:
        raise FileFormatError(
            f"{label}: {kind} {name!r} holds Python objects (a pickle); trueprob never "
            f"unpickles data files — save plain numeric arrays"
        )
    if dtype.names is not None or dtype.kind not in NUMERIC_KINDS:
        raise FileFormatError(
            f"{label}: {kind} {name!r} has dtype {dtype}, not numbers (expected integers, "
            f"floats or booleans)"
        )


def check_shapes(label: str, shapes: dict[str, tuple[int, ...]], kind: str = "array") -> None:
    """Every named array has one row per example (ndim >= 1) and they agree on the rows."""
    for name, shape in shapes.items():
        if len(shape) == 0:
            raise FileFormatError(
                f"{label}: {kind} {name!r} is a single number (shape ()); expected one value "
                f"or one row per example"
            )
    rows = {name: shape[0] for name, shape in shapes.items()}
    if len(set(rows.values())) > 1:
        what = ", ".join(f"{name!r} has {n}" for name, n in rows.items())
        raise FileFormatError(f"{label}: the fields have different numbers of rows: {what}")


def slices(array: Any, n_rows: int, batch_rows: int | None) -> Iterator[Any]:
    """Row batches of an in-memory array, following :meth:`Source.batches`'s rule."""
    if batch_rows is None:
        yield array
        return
    for start in range(0, n_rows, batch_rows):
        yield array[start:start + batch_rows]
