"""Array-namespace helpers: one code path for numpy and torch (and other array-API libraries).

Everything numerical in trueprob is written against the namespace ``xp`` returned by
:func:`namespace`; only the few primitives the array-API standard lacks (``bincount``) are
dispatched here, by name, on the namespace.
"""

from __future__ import annotations

from typing import Any

import array_api_compat
import numpy as np

Array = Any  # an array of any array-API namespace (numpy.ndarray, torch.Tensor, ...)


def is_array(x: object) -> bool:
    """True for arrays of a supported namespace (numpy, torch, cupy, ...)."""
    return bool(array_api_compat.is_array_api_obj(x)) and not isinstance(x, np.generic)


def namespace(*arrays: Array) -> Any:
    """The array-API namespace shared by ``arrays`` (``None`` entries are ignored)."""
    present = [a for a in arrays if a is not None]
    return array_api_compat.array_namespace(*present)


def is_numpy(xp: Any) -> bool:
    return bool(array_api_compat.is_numpy_namespace(xp))


def is_torch(xp: Any) -> bool:
    return bool(array_api_compat.is_torch_namespace(xp))


def device(x: Array) -> Any:
    return array_api_compat.device(x)


def to_numpy(x: Array) -> np.ndarray:
    """A numpy view or copy of ``x`` (moves torch tensors to the host)."""
    if isinstance(x, np.ndarray):
        return x
    if array_api_compat.is_torch_array(x):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def as_array(x: object, xp: Any, dev: Any = None) -> Array:
    """Convert ``x`` (array of another namespace, list, scalar) into namespace ``xp``."""
    if is_array(x) and namespace(x) is xp:
        return x
    if is_torch(xp):
        return xp.asarray(to_numpy(x) if is_array(x) else np.asarray(x), device=dev)
    return xp.asarray(to_numpy(x) if is_array(x) else x)


def bincount(xp: Any, index: Array, weights: Array | None, length: int) -> Array:
    """Sums of ``weights`` per integer ``index`` in ``[0, length)`` as float64 (counts as int64).

    The array-API standard has no scatter-add; numpy and torch both have ``bincount``.
    Weights are accumulated in float64 whatever their dtype, so float32 inputs never lose
    precision in the sums.
    """
    if is_torch(xp):
        # index_add_ into a preallocated tensor: torch.bincount must read the largest index
        # back to the host to size its output, which would synchronise a GPU on every call.
        dtype = xp.int64 if weights is None else xp.float64
        out = xp.zeros(length, dtype=dtype, device=index.device)
        src = xp.ones(index.shape[0], dtype=dtype, device=index.device) if weights is None \
            else xp.astype(weights, xp.float64)
        return out.index_add_(0, index, src)
    if weights is None:
        out = xp.bincount(index, minlength=length)
        return xp.astype(out, xp.int64)
    return xp.bincount(index, weights=xp.astype(weights, xp.float64), minlength=length)


def float_eps(dtype: Any) -> float:
    """Machine epsilon of a floating dtype of any namespace."""
    try:
        return float(np.finfo(dtype).eps)  # numpy dtypes and scalar types
    except (TypeError, ValueError):
        name = str(dtype).rsplit(".", 1)[-1]  # e.g. torch.float32 -> float32
        try:
            return float(np.finfo(np.dtype(name)).eps)
        except TypeError:  # a dtype numpy lacks, e.g. torch.bfloat16: ask its own library
            try:
                import torch

                return float(torch.finfo(dtype).eps)
            except (ImportError, TypeError) as exc:
                raise TypeError(f"expected a floating dtype; got {dtype!r}") from exc


def on_device(dev: Any) -> dict[str, Any]:
    """``{"device": dev}`` for array constructors, or ``{}`` when ``dev`` is None (numpy)."""
    return {} if dev is None else {"device": dev}
