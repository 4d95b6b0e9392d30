"""Validation of regression inputs: observed values, a predictive family, weights.

Same approach and messages as :mod:`trueprob._validation`: shapes and dtypes are checked up
front, values chunk by chunk as they are used, and every error names the argument, what was
expected and the first offending row (counted over the whole input).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from trueprob._array import Array, is_array, namespace, to_numpy
from trueprob._validation import (
    CHUNK_ELEMENTS,
    check_finite,
    check_range,
    check_rows,
    convert,
    first_bad_row,
    row_repr,
)
from trueprob.regression.families import PARAMETRIC, QuantileSet, StudentT

#: how close a quantile level must be to (1 - a) / 2 to serve a central interval of level a
LEVEL_MATCH = 1e-9


@dataclass(frozen=True)
class RegressionChunk:
    """A validated block of rows, float64, in the namespace of the inputs.

    Parametric families: ``loc``, ``scale`` (n,) and ``df`` (n,), a float or None;
    quantile sets: ``quantiles`` (n, M). ``weights`` is None for unit weights.
    """

    observed: Array
    loc: Any
    scale: Any
    df: Any
    quantiles: Any
    weights: Any
    offset: int

    @property
    def n_rows(self) -> int:
        return int(self.observed.shape[0])


@dataclass(frozen=True)
class RegressionInputs:
    """Inputs whose presence, dtypes and shapes are checked; values are checked per chunk."""

    xp: Any
    family: str
    observed: Array
    params: dict[str, Any]
    levels: np.ndarray | None
    weights: Array | None
    n_rows: int

    @property
    def n_levels(self) -> int:
        return 0 if self.levels is None else int(self.levels.shape[0])

    def chunks(self, rows: int | None = None) -> Iterator[RegressionChunk]:
        """Validated chunks of at most ``rows`` rows (default: about 2**19 values each)."""
        if rows is None:
            rows = max(1, CHUNK_ELEMENTS // max(self.n_levels, 1))
        for start in range(0, self.n_rows, rows):
            yield self._chunk(start, min(start + rows, self.n_rows))

    def _chunk(self, start: int, stop: int) -> RegressionChunk:
        xp = self.xp
        f64 = xp.float64

        def part(name: str) -> Any:
            value = self.params.get(name)
            if value is None or isinstance(value, float):
                return value
            value = value[start:stop, ...]
            # the name the user passed (Gaussian: mean / std), not the internal loc / scale
            check_finite(xp, value, self.params.get(f"{name}_name", name), start)
            return xp.astype(value, f64)

        y = self.observed[start:stop]
        check_finite(xp, y, "observed", start)
        y = xp.astype(y, f64)
        w = None
        if self.weights is not None:
            w = self.weights[start:stop]
            check_finite(xp, w, "sample_weight", start)
            check_range(xp, w, 0.0, None, "sample_weight", start)
        if self.family == "quantiles":
            q = part("quantiles")
            if q.shape[1] > 1:
                bad = q[:, 1:] < q[:, :-1]
                if bool(xp.any(bad)):
                    row = first_bad_row(xp, bad)
                    raise ValueError(
                        f"quantiles must be non-decreasing along each row (levels are "
                        f"increasing); row {start + row} is {row_repr(q, row)}"
                    )
            return RegressionChunk(y, None, None, None, q, w, start)
        loc = part("loc")
        scale = part("scale")
        df = part("df")
        if not isinstance(scale, float):
            _check_positive(xp, scale, self.params["scale_name"], start)
        if df is not None and not isinstance(df, float):
            _check_above_one(xp, df, start)
        return RegressionChunk(y, loc, scale, df, None, w, start)


def _check_positive(xp: Any, x: Array, name: str, offset: int) -> None:
    bad = ~(x > 0)
    if bool(xp.any(bad)):
        row = first_bad_row(xp, bad)
        raise ValueError(f"{name} must be > 0; row {offset + row} is {row_repr(x, row)}")


def _check_above_one(xp: Any, x: Array, offset: int) -> None:
    bad = ~(x > 1)
    if bool(xp.any(bad)):
        row = first_bad_row(xp, bad)
        raise ValueError(f"df must be > 1 (the CRPS of a Student-t needs a finite mean); row "
                         f"{offset + row} is {row_repr(x, row)}")


def _scalar(value: Any, name: str, *, low: float, strict: bool = True) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number or a 1-D array; got {value!r}") from None
    ok = x > low if strict else x >= low
    if not (np.isfinite(x) and ok):
        raise ValueError(f"{name} must be a finite number > {low:g}; got {value!r}")
    return x


def _numeric(x: Array, name: str, xp: Any) -> None:
    if not xp.isdtype(x.dtype, ("integral", "real floating")):
        raise TypeError(f"{name} must be a real numeric array; got dtype {x.dtype}")


def _column(value: Any, name: str, xp: Any, n: int | None, ref: str) -> Array:
    arr = convert(value, name, xp)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one value per row); got shape {tuple(arr.shape)}")
    _numeric(arr, name, xp)
    if n is not None:
        check_rows(arr, name, n, ref)
    return arr


def _param(value: Any, name: str, xp: Any, n: int, low: float) -> Any:
    """A per-row (N,) array or a scalar shared by every row (checked here)."""
    if value is None:
        raise TypeError(f"{name} is required")
    scalar = value.ndim == 0 if is_array(value) else np.ndim(value) == 0
    if scalar:
        return _scalar(to_numpy(value) if is_array(value) else value, name, low=low)
    return _column(value, name, xp, n, "observed")


def prepare_regression(observed: Any, predictive: Any, *, sample_weight: Any = None
                       ) -> RegressionInputs:
    """Check the observed values, the predictive family and the weights; return inputs whose
    values are checked chunk by chunk (:meth:`RegressionInputs.chunks`).

    Examples
    --------
    >>> import numpy as np
    >>> from trueprob.regression import Gaussian
    >>> inputs = prepare_regression(np.array([0.5, 1.0]), Gaussian(mean=np.zeros(2), std=2.0))
    >>> inputs.family, inputs.n_rows, inputs.params["scale"]
    ('gaussian', 2, 2.0)
    >>> prepare_regression(np.array([0.5]), Gaussian(mean=np.zeros(1), std=-1.0))
    Traceback (most recent call last):
    ...
    ValueError: std must be a finite number > 0; got -1.0
    """
    if not isinstance(predictive, (*PARAMETRIC, QuantileSet)):
        raise TypeError(
            "predictive must be Gaussian(mean, std), Laplace(loc, scale), StudentT(loc, scale, "
            f"df) or QuantileSet(quantiles, levels) from trueprob.regression; got "
            f"{type(predictive).__name__}"
        )
    arrays = [a for a in (observed, *_arrays_of(predictive), sample_weight) if is_array(a)]
    xp = namespace(*arrays) if arrays else None
    y = convert(observed, "observed", xp)
    xp = namespace(y) if xp is None else xp
    if y.ndim != 1:
        raise ValueError(f"observed must be 1-D (one value per row); got shape "
                         f"{tuple(y.shape)}")
    _numeric(y, "observed", xp)
    n = int(y.shape[0])
    if n == 0:
        raise ValueError("observed is empty (0 rows); at least one row is needed")
    params: dict[str, Any] = {}
    levels = None
    if isinstance(predictive, QuantileSet):
        q = convert(predictive.quantiles, "quantiles", xp)
        if q.ndim != 2 or int(q.shape[1]) < 1:
            raise ValueError(f"quantiles must be (N, M) with M >= 1 levels; got shape "
                             f"{tuple(q.shape)}")
        _numeric(q, "quantiles", xp)
        check_rows(q, "quantiles", n, "observed")
        levels = check_levels(predictive.levels, "levels")
        if levels.shape[0] != int(q.shape[1]):
            raise ValueError(f"levels has {levels.shape[0]} values but quantiles has "
                             f"{int(q.shape[1])} columns")
        params["quantiles"] = q
    else:
        scale_name = "std" if predictive.family == "gaussian" else "scale"
        loc_name = "mean" if predictive.family == "gaussian" else "loc"
        loc = predictive.loc
        if loc is None:
            raise TypeError(f"{loc_name} is required")
        params["loc"] = _column(loc, loc_name, xp, n, "observed")
        params["scale"] = _param(predictive.scale, scale_name, xp, n, 0.0)
        params["scale_name"] = scale_name
        params["loc_name"] = loc_name
        if isinstance(predictive, StudentT):
            params["df"] = _param(predictive.df, "df", xp, n, 1.0)
    w = None
    if sample_weight is not None:
        w = _column(sample_weight, "sample_weight", xp, n, "observed")
        w = xp.astype(w, xp.float64)
    return RegressionInputs(xp, predictive.family, y, params, levels, w, n)


def _arrays_of(predictive: Any) -> tuple[Any, ...]:
    if isinstance(predictive, QuantileSet):
        return (predictive.quantiles,)
    extra = (predictive.df,) if isinstance(predictive, StudentT) else ()
    return (predictive.loc, predictive.scale, *extra)


def check_levels(levels: Any, name: str, *, allow_empty: bool = False) -> np.ndarray:
    """Probability levels as a float64 numpy array, strictly increasing, each in (0, 1)."""
    try:
        arr = np.asarray(to_numpy(levels) if hasattr(levels, "shape") else levels,
                         dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a sequence of numbers in (0, 1); got {levels!r}"
                        ) from None
    if arr.ndim != 1 or (arr.size == 0 and not allow_empty):
        raise ValueError(f"{name} must be a non-empty 1-D sequence of numbers in (0, 1); got "
                         f"{levels!r}")
    bad = ~((arr > 0) & (arr < 1))
    if np.any(bad):
        j = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name} must be in (0, 1); entry {j} is {float(arr[j])!r}")
    if np.any(np.diff(arr) <= 0):
        raise ValueError(f"{name} must be strictly increasing; got {arr.tolist()}")
    return arr


def central_pairs(levels: np.ndarray, coverage: np.ndarray) -> list[tuple[int, int]]:
    """For each central-interval level a, the indices (lo, hi) of the quantile levels
    (1 - a) / 2 and (1 + a) / 2 in ``levels``; a ValueError names a level that has no pair."""
    out = []
    for a in coverage:
        lo = np.flatnonzero(np.abs(levels - (1.0 - a) / 2.0) <= LEVEL_MATCH)
        hi = np.flatnonzero(np.abs(levels - (1.0 + a) / 2.0) <= LEVEL_MATCH)
        if lo.size == 0 or hi.size == 0:
            raise ValueError(
                f"coverage level {a:g} needs the quantile levels {(1 - a) / 2:g} and "
                f"{(1 + a) / 2:g}; the quantile set has {levels.tolist()}"
            )
        out.append((int(lo[0]), int(hi[0])))
    return out


def available_coverage(levels: np.ndarray) -> np.ndarray:
    """Central-interval levels 1 - 2 p for every level p < 1/2 whose partner 1 - p is present."""
    out = []
    for p in levels[levels < 0.5]:
        if np.any(np.abs(levels - (1.0 - p)) <= LEVEL_MATCH):
            out.append(round(1.0 - 2.0 * p, 12))  # 1 - 2 * 0.45 = 0.09999999999999998 -> 0.1
    return np.asarray(sorted(out), dtype=np.float64)
