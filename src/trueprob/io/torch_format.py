"""PyTorch ``.pt`` files: a dict of tensors, loaded with ``weights_only=True`` (no code runs)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from trueprob.io.errors import FileFormatError, require
from trueprob.io.source import Source, check_numeric, check_shapes, slices


class TorchSource(Source):
    """A ``.pt`` / ``.pth`` file holding ``{name: tensor}``.

    ``torch.load(path, weights_only=True, map_location="cpu")`` only rebuilds tensors and plain
    containers; anything else in the file is refused by torch and reported here. The whole
    file is loaded (the format has no row batches); bfloat16 tensors become float32 (NumPy has
    no bfloat16).
    """

    def __init__(self, path: str | os.PathLike[str], label: str) -> None:
        self.label = label
        torch = require("torch", extra="torch", purpose=f"reading {label} (a .pt file)")
        with open(path, "rb"):  # a missing file is FileNotFoundError, not a format error
            pass
        try:
            obj = torch.load(path, weights_only=True, map_location="cpu")
        except Exception as exc:  # torch raises many types for corrupt or unsafe files
            raise FileFormatError(
                f"{label}: not a readable .pt file of tensors ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else ''})"
            ) from exc
        if not isinstance(obj, dict) or not all(isinstance(k, str) for k in obj):
            raise FileFormatError(
                f"{label}: expected a dict of named tensors (torch.save({{'logits': z, "
                f"'labels': y}}, path)); got {type(obj).__name__}"
            )
        self._values = obj
        self._torch = torch

    def names(self) -> list[str]:
        return list(self._values)

    def _array(self, name: str) -> np.ndarray:
        value = self._values[name]
        torch = self._torch
        if not isinstance(value, torch.Tensor):
            raise FileFormatError(
                f"{self.label}: {name!r} is a {type(value).__name__}, not a tensor"
            )
        value = value.detach().cpu()
        if value.dtype == torch.bfloat16:
            value = value.to(torch.float32)
        if value.is_complex():
            raise FileFormatError(f"{self.label}: tensor {name!r} is complex, not real numbers")
        return np.asarray(value.numpy())

    def check(self, names: Sequence[str]) -> None:
        arrays = {name: self._array(name) for name in names}
        for name, array in arrays.items():
            check_numeric(self.label, name, array.dtype, "tensor")
        check_shapes(self.label, {n: a.shape for n, a in arrays.items()}, "tensor")

    def batches(self, names: Sequence[str], batch_rows: int | None, *,
                on_rows: Callable[[int], None] | None = None) -> Iterator[dict[str, Any]]:
        # loaded whole by torch.load in __init__: nothing left to count (on_rows is not called)
        arrays = {name: self._array(name) for name in dict.fromkeys(names)}
        n = next(iter(arrays.values())).shape[0]
        streams = {name: slices(a, n, batch_rows) for name, a in arrays.items()}
        while True:
            batch = {name: next(s, None) for name, s in streams.items()}
            if any(v is None for v in batch.values()):
                return
            yield batch

    def close(self) -> None:
        self._values = {}
