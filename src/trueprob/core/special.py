"""Stable special functions on arrays of any array-API namespace (one implementation each).

>>> import numpy as np
>>> from array_api_compat import array_namespace
>>> z = np.array([[1000.0, 1000.0], [0.0, np.log(3.0)]])
>>> logsumexp(array_namespace(z), z)   # log(2 e^1000) without overflow; log(1 + 3)
array([1000.69314718,    1.38629436])
"""

from __future__ import annotations

from typing import Any

from trueprob._array import Array


def logsumexp(xp: Any, x: Array, *, axis: int = -1, keepdims: bool = False) -> Array:
    """log sum_k exp(x_k) along ``axis``, computed as m + log sum_k exp(x_k - m).

    m is the maximum along ``axis`` (so no term overflows), replaced by 0 where it is not
    finite: a row of -inf gives -inf and a row holding +inf gives +inf, not NaN.
    """
    m = xp.max(x, axis=axis, keepdims=True)
    m = xp.where(xp.isfinite(m), m, xp.zeros_like(m))
    out = m + xp.log(xp.sum(xp.exp(x - m), axis=axis, keepdims=True))
    return out if keepdims else xp.squeeze(out, axis=axis)
