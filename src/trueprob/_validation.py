"""Input validation: explicit inputs in, clear errors out.

`prepare` checks what can be checked without reading the values (which inputs were given,
dtypes, shapes) and returns an :class:`Inputs`; :meth:`Inputs.chunks` then yields validated
:class:`Chunk` objects, checking the values of each chunk as it goes, so that validation costs
no extra pass over the data and no extra memory beyond one chunk. Every error names the
argument, what was expected and the first offending row (row numbers count from 0 over the
whole input, not the chunk).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from trueprob._array import Array, as_array, device, float_eps, is_array, namespace, to_numpy

ScoreKind = Literal["logits", "probs", "confidences"]
TargetKind = Literal["labels", "targets", "counts"]

#: Rows per chunk are chosen so that one (rows x K) temporary holds about this many elements.
CHUNK_ELEMENTS = 1 << 19
#: In top-label mode without ``n_classes``, K is inferred from the largest index up to this.
MAX_INFERRED_CLASSES = 1 << 17


#: The largest row-sum tolerance, whatever the dtype and K: a row further than this from 1 is
#: not a probability vector that rounding produced.
MAX_SUM_TOLERANCE = 1e-2


def sum_tolerance(dtype: Any, n_classes: int) -> float:
    """Tolerance for ``|sum_k q_ik - 1|``: ``min(8 * K * eps(dtype), 1e-2)``.

    Summing K numbers that were each rounded to the dtype accumulates up to about K rounding
    errors of eps/2 each; the factor 8 leaves room for a softmax computed in that dtype.
    float32, K=10: 9.5e-6; float64, K=10: 1.8e-14. In low precision that bound grows past
    anything rounding explains (bfloat16, K=2: 0.125; float16, K=1000: 7.8, which would
    accept a row of zeros), so it is capped at :data:`MAX_SUM_TOLERANCE`: the entries of a
    rounded probability vector carry relative errors of eps/2 each, which sum to at most
    eps/2 (bfloat16: 0.004), well inside the cap.
    """
    return min(8.0 * n_classes * float_eps(dtype), MAX_SUM_TOLERANCE)


@dataclass(frozen=True)
class Chunk:
    """A validated block of rows, in the namespace of the inputs.

    ``scores`` is (n, K): logits or probabilities (binary 1-D inputs already expanded to two
    columns), or (n,) confidences in top-label mode. ``targets`` holds soft targets (counts
    already divided by their row totals). Exactly one of ``labels`` / ``targets`` is set.
    """

    kind: ScoreKind
    scores: Array
    # Array or None (typed Any: Array is Any, and Optional[Any] would need a check per use)
    predictions: Any
    labels: Any
    targets: Any
    weights: Any
    offset: int

    @property
    def n_rows(self) -> int:
        return int(self.scores.shape[0])


@dataclass(frozen=True)
class Inputs:
    """Inputs whose presence, dtypes and shapes have been checked; values are checked per chunk."""

    xp: Any
    kind: ScoreKind
    target_kind: TargetKind
    scores: Array
    predictions: Array | None
    labels: Array | None
    targets: Array | None
    weights: Array | None
    n_rows: int
    n_classes: int
    binary: bool
    check: bool = True

    def chunks(self, rows: int | None = None) -> Iterator[Chunk]:
        """Validated chunks of at most ``rows`` rows (default: about 2**19 elements each).

        With ``check=False`` (see :func:`prepare`) the values are converted but not checked:
        no check reads a value back to the host, so nothing synchronises with an accelerator;
        :func:`invalid_rows` then gives the rows that would have failed, as a device mask.
        """
        if rows is None:
            rows = max(1, CHUNK_ELEMENTS // max(self.n_classes, 1))
        for start in range(0, self.n_rows, rows):
            stop = min(start + rows, self.n_rows)
            yield self._chunk(start, stop)

    def _chunk(self, start: int, stop: int) -> Chunk:
        xp = self.xp

        def take(a: Array | None) -> Array | None:
            return None if a is None else a[start:stop, ...]

        # one memory layout in the kernel (C order), whatever the reading path gave
        scores = _contiguous(xp, take(self.scores))
        labels = take(self.labels)
        targets = take(self.targets)
        weights = take(self.weights)
        predictions = take(self.predictions)
        k = self.n_classes
        check = self.check
        if self.kind == "confidences":
            if check:
                check_finite(xp, scores, "confidences", start)
                check_range(xp, scores, 0.0, 1.0, "confidences", start)
                predictions = _check_labels(xp, predictions, k, "predictions", start)
            else:
                predictions = xp.astype(predictions, xp.int64)
        else:
            name = self.kind
            if check:
                check_finite(xp, scores, name, start)
                if self.kind == "probs":
                    try:
                        check_range(xp, scores, 0.0, 1.0, name, start)
                    except ValueError as exc:  # say what such values usually are
                        raise ValueError(f"{exc}; values outside [0, 1] are usually logits: "
                                         f"pass them as logits= (CLI: --logits)") from None
                    if not self.binary:
                        _check_row_sums(xp, scores, name, start)
            if self.binary:
                scores = expand_binary(xp, scores, self.kind)
        if labels is not None:
            labels = (_check_labels(xp, labels, k, "labels", start) if check
                      else xp.astype(labels, xp.int64))
        if targets is not None:
            if self.target_kind == "counts":
                if check:
                    _check_counts(xp, targets, start)
                targets = _normalise_counts(xp, targets, check)
            else:
                if check:
                    check_finite(xp, targets, "targets", start)
                    check_range(xp, targets, 0.0, 1.0, "targets", start)
                    if targets.ndim != 1:
                        _check_row_sums(xp, targets, "targets", start)
                if targets.ndim == 1:
                    targets = expand_binary(xp, targets, "probs")
        if weights is not None and check:
            check_finite(xp, weights, "sample_weight", start)
            check_range(xp, weights, 0.0, None, "sample_weight", start)
        return Chunk(self.kind, scores, predictions, labels, targets, weights, start)


def _contiguous(xp: Any, x: Array) -> Array:
    """``x`` in C order (numpy: ``ascontiguousarray``; torch: ``contiguous``): reductions and
    sums then run in one order, so results do not depend on how the rows were read."""
    if isinstance(x, np.ndarray):
        return np.ascontiguousarray(x)
    contiguous = getattr(x, "contiguous", None)
    return contiguous() if callable(contiguous) else x


def first_bad_row(xp: Any, bad: Array) -> int:
    """Index of the first True in a boolean (n,) or (n, K) mask."""
    if bad.ndim > 1:
        bad = xp.any(bad, axis=tuple(range(1, bad.ndim)))
    return int(np.flatnonzero(to_numpy(bad))[0])


def row_repr(x: Array, row: int) -> str:
    """The offending row, compactly: floats with 8 significant digits, long rows elided."""
    value = np.asarray(to_numpy(x[row, ...]))

    def short(v: Any) -> str:
        return f"{v:.8g}"

    if value.ndim == 0:
        return short(value) if value.dtype.kind == "f" else str(value)
    return np.array2string(value, threshold=12, separator=", ",
                           formatter={"float_kind": short})


def check_finite(xp: Any, x: Array, name: str, offset: int) -> None:
    ok = xp.isfinite(x)
    if not bool(xp.all(ok)):
        row = first_bad_row(xp, ~ok)
        raise ValueError(
            f"{name} must be finite (no NaN or inf); row {offset + row} is {row_repr(x, row)}"
        )


def check_range(
    xp: Any, x: Array, low: float | None, high: float | None, name: str, offset: int
) -> None:
    bad = None
    if low is not None:
        bad = x < low
    if high is not None:
        above = x > high
        bad = above if bad is None else (bad | above)
    assert bad is not None
    if bool(xp.any(bad)):
        row = first_bad_row(xp, bad)
        if high is None:
            expect = f">= {low:g}"
        else:
            expect = f"in [{low:g}, {high:g}]"
        raise ValueError(f"{name} must be {expect}; row {offset + row} is {row_repr(x, row)}")


def _check_row_sums(xp: Any, x: Array, name: str, offset: int) -> None:
    k = int(x.shape[1])
    tol = sum_tolerance(x.dtype, k)
    sums = xp.sum(xp.astype(x, xp.float64), axis=1)
    bad = xp.abs(sums - 1.0) > tol
    if bool(xp.any(bad)):
        row = first_bad_row(xp, bad)
        total = float(to_numpy(sums)[row])
        dtype = str(x.dtype).rsplit(".", 1)[-1]
        raise ValueError(
            f"{name} rows must sum to 1 (tolerance {tol:.2g} for {dtype} with K={k}); "
            f"row {offset + row} sums to {total!r}. If the rows were rounded or computed in "
            f"lower precision, renormalise them or pass them in that precision."
        )


def _check_labels(xp: Any, y: Array, n_classes: int | None, name: str, offset: int) -> Array:
    if xp.isdtype(y.dtype, "real floating"):
        check_finite(xp, y, name, offset)
        frac = y != xp.round(y)
        if bool(xp.any(frac)):
            row = first_bad_row(xp, frac)
            raise ValueError(
                f"{name} must be integer class indices; row {offset + row} is {float(y[row])!r}"
            )
    # the range is checked on the values as given, before the cast to int64: 1e20 or a
    # uint64 2**63 + 5 would wrap to a negative int64 and be reported as that
    low = y < 0 if not xp.isdtype(y.dtype, "bool") else xp.zeros(y.shape, dtype=xp.bool)
    bad = low if n_classes is None else (low | (y >= n_classes))
    if bool(xp.any(bad)):
        row = first_bad_row(xp, bad)
        if n_classes is None:
            expect = ">= 0"
        else:
            expect = f"in 0..{n_classes - 1} (K={n_classes})"
        raise ValueError(f"{name} must be {expect}; row {offset + row} is "
                         f"{_label_repr(y, row)}")
    return xp.astype(y, xp.int64)


def _label_repr(y: Array, row: int) -> str:
    """A label as given: an integral float without its '.0' (1e+20 stays 1e+20)."""
    value = np.asarray(to_numpy(y[row, ...])).item()
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return str(value)


def _check_counts(xp: Any, n: Array, offset: int) -> None:
    check_finite(xp, n, "counts", offset)
    check_range(xp, n, 0.0, None, "counts", offset)
    if xp.isdtype(n.dtype, "real floating"):
        frac = n != xp.round(n)
        if bool(xp.any(frac)):
            row = first_bad_row(xp, frac)
            raise ValueError(
                f"counts must be whole numbers of annotations; row {offset + row} is "
                f"{row_repr(n, row)}"
            )
    zero = xp.sum(xp.astype(n, xp.float64), axis=1) == 0
    if bool(xp.any(zero)):
        row = first_bad_row(xp, zero)
        raise ValueError(f"counts rows must have at least one annotation; row {offset + row} is 0")


def _normalise_counts(xp: Any, n: Array, check: bool = True) -> Array:
    """Counts n_ik -> targets n_ik / sum_k n_ik (float64).

    Unchecked (``check=False``), a row that the checks would refuse comes out non-finite or
    negative, so :func:`invalid_rows` flags it from the targets alone: a row of zeros gives
    0/0, a row with a fractional count is divided by 0, and a negative count stays negative.
    Nothing is read back to the host and numpy does not warn.
    """
    n = xp.astype(n, xp.float64)
    total = xp.sum(n, axis=1, keepdims=True)
    if check:
        return n / total
    whole = xp.all(n == xp.round(n), axis=1, keepdims=True)
    total = xp.where(whole, total, xp.zeros_like(total))
    with np.errstate(divide="ignore", invalid="ignore"):
        return n / total


def invalid_rows(xp: Any, chunk: Chunk, n_classes: int) -> Array:
    """Boolean (n,) mask of the rows of an unchecked chunk that the checks would refuse.

    Computed on the chunk's device without reading anything back (no synchronisation), so a
    stream on an accelerator can count bad rows and report them once, at the end. Covers
    non-finite values, labels out of range, probabilities outside [0, 1] or off the simplex,
    soft targets off the simplex, counts that are negative, fractional or all zero (see
    :func:`_normalise_counts`) and negative weights.
    """
    def rows_any(mask: Array) -> Array:
        return xp.any(mask, axis=1) if mask.ndim > 1 else mask

    bad = rows_any(~xp.isfinite(chunk.scores))
    if chunk.kind == "probs":
        q = chunk.scores
        tol = sum_tolerance(q.dtype, n_classes)
        bad = bad | rows_any((q < 0) | (q > 1))
        bad = bad | (xp.abs(xp.sum(xp.astype(q, xp.float64), axis=1) - 1.0) > tol)
    if chunk.kind == "confidences":
        bad = bad | (chunk.scores < 0) | (chunk.scores > 1)
        bad = bad | (chunk.predictions < 0) | (chunk.predictions >= n_classes)
    if chunk.labels is not None:
        bad = bad | (chunk.labels < 0) | (chunk.labels >= n_classes)
    if chunk.targets is not None:
        t = chunk.targets
        bad = bad | rows_any(~xp.isfinite(t) | (t < 0) | (t > 1))
        bad = bad | (xp.abs(xp.sum(t, axis=1) - 1.0) > sum_tolerance(t.dtype, n_classes))
    if chunk.weights is not None:
        bad = bad | ~xp.isfinite(chunk.weights) | (chunk.weights < 0)
    return bad


def expand_binary(xp: Any, x: Array, kind: str) -> Array:
    """Positive-class scores (n,) -> two columns (n, 2) for the multiclass formulas.

    Logits z become (0, z): softmax((0, z)) = (1 - sigmoid(z), sigmoid(z)).
    Probabilities p become (1 - p, p).
    """
    col = x[:, None]
    first = xp.zeros_like(col) if kind == "logits" else 1.0 - col
    return xp.concat([first, col], axis=1)


#: Weights whose largest value lies in [2**-WEIGHT_EXPONENT, 2**WEIGHT_EXPONENT] are used as
#: given: N * w_max and its square stay far inside float64 for any N below 2**60.
WEIGHT_EXPONENT = 128


def _scaled_weights(xp: Any, w: Array, rescale: bool) -> Array:
    """``w``, or ``w`` times an exact power of two when its largest value is extreme.

    Non-finite or negative weights are left for the per-chunk checks, which name the row;
    all-zero weights for the check that the total is positive.
    """
    if int(w.shape[0]) == 0:
        return w
    top = float(to_numpy(xp.max(w)))
    if not np.isfinite(top) or top <= 0.0 or bool(xp.any(w < 0)):
        return w
    exponent = int(np.frexp(top)[1]) - 1  # top = m * 2**exponent with m in [1, 2)
    if abs(exponent) <= WEIGHT_EXPONENT:
        return w
    if not rescale:
        raise ValueError(
            f"sample_weight values are too {'large' if exponent > 0 else 'small'} for float64 "
            f"sums: the largest is {top!r}, outside [2**-{WEIGHT_EXPONENT}, "
            f"2**{WEIGHT_EXPONENT}]. Only their ratios matter: divide them by a common factor "
            f"(e.g. the largest weight of all the data). trueprob.evaluate rescales them "
            f"itself; a state filled batch by batch cannot, as every batch must share one "
            f"scale"
        )
    # two steps of at most 2**1023 each (2.0**1074 itself overflows); multiplying by a power
    # of two is exact for every result that stays a normal float64
    half = -exponent // 2
    w = w * float(2.0 ** half)
    return w * float(2.0 ** (-exponent - half))


def convert(x: object, name: str, xp: Any | None) -> Array:
    if x is None:
        return None
    if not is_array(x):
        x = np.asarray(x)
        if x.dtype == object:
            hint = (". For labels that are names pass classes=[...] in column order (CLI: "
                    "--classes)" if name in ("labels", "predictions") else "")
            raise TypeError(f"{name} must be a numeric array; got an array of Python "
                            f"objects{hint}")
    if xp is not None:
        x = as_array(x, xp)
    return x


def float_array(x: Array, name: str, xp: Any) -> Array:
    if xp.isdtype(x.dtype, "real floating"):
        return x
    if xp.isdtype(x.dtype, ("integral", "bool")):
        raise TypeError(
            f"{name} must be a floating-point array; got dtype {x.dtype}. "
            f"Convert it explicitly (e.g. {name}.astype(float)) if these are really {name}."
        )
    raise TypeError(f"{name} must be a real floating-point array; got dtype {x.dtype}")


def check_rows(x: Array, name: str, n: int, ref: str) -> None:
    if int(x.shape[0]) != n:
        raise ValueError(f"{name} has {int(x.shape[0])} rows but {ref} has {n}")


def _host_labels(labels: object) -> np.ndarray:
    """Labels as a 1-D numpy array of any dtype (strings and objects included)."""
    y = np.asarray(to_numpy(labels) if is_array(labels) else labels)
    if y.ndim != 1:
        raise ValueError(f"labels must be 1-D (one label per row); got shape {tuple(y.shape)}")
    return y


def _index_of(values: np.ndarray, classes: list[Any], name: str) -> np.ndarray:
    """Position of every value of ``values`` in ``classes``; an unknown value is an error
    naming its row and the classes."""
    lookup: dict[Any, int] = {}
    for j, c in enumerate(classes):
        lookup[c.item() if isinstance(c, np.generic) else c] = j
    out = np.empty(values.shape[0], dtype=np.int64)
    for i, v in enumerate(values.tolist()):
        found = lookup.get(v)
        if found is None or (isinstance(v, bool) != isinstance(classes[found],
                                                                (bool, np.bool_))):
            shown = ", ".join(repr(c) for c in classes[:12]) + (", ..." if len(classes) > 12
                                                                 else "")
            raise ValueError(f"{name} row {i} is {v!r}, which is not one of classes=[{shown}]")
        out[i] = found
    return out


def encode_labels(
    labels: object,
    rows: dict[str, object],
    *,
    classes: object = None,
    pos_label: object = None,
    ignore_index: object = None,
) -> tuple[object, dict[str, object]]:
    """Labels as users have them -> class indices, and the rows that count.

    - ``ignore_index`` (torchmetrics): rows whose label equals it are dropped from the labels
      and from every array of ``rows`` (scores, weights, predictions); row numbers in later
      errors count the rows kept.
    - ``classes`` (scikit-learn's ``labels=`` / ``classes_``): the class of column k is
      ``classes[k]``; each label (string, integer, any hashable value) becomes its position
      in ``classes``, and so do top-label ``predictions``.
    - ``pos_label`` (binary, 1-D scores): labels equal to it become 1, the others 0; at most
      two distinct labels, one of them ``pos_label``.

    Returns ``(labels, rows)`` unchanged when no option is given.
    """
    if classes is None and pos_label is None and ignore_index is None:
        return labels, rows
    if labels is None:
        raise TypeError("classes=, pos_label= and ignore_index= apply to labels; pass labels "
                        "(hard labels), not targets= or counts=")
    y = _host_labels(labels)
    rows = dict(rows)
    if ignore_index is not None:
        comparable = y.dtype.kind != "U" or isinstance(ignore_index, str)
        keep = ~(y == ignore_index) if comparable else np.ones(y.shape[0], dtype=bool)
        keep = np.asarray(keep, dtype=bool).reshape(y.shape)
        if not keep.any():
            raise ValueError(f"every row has labels == ignore_index={ignore_index!r}; no row "
                             f"is left to evaluate")
        if not keep.all():
            y = y[keep]
            for key, value in rows.items():
                if value is not None and key != "n_classes":
                    rows[key] = _keep_rows(value, keep, key)
    if classes is not None and pos_label is not None:
        raise TypeError("pass classes= or pos_label=, not both (pos_label=p is "
                        "classes=[<the other label>, p])")
    if classes is not None:
        names = list(np.asarray(classes, dtype=object).ravel()) if not isinstance(
            classes, (list, tuple)) else list(classes)
        if len(names) < 2:
            raise ValueError(f"classes must name at least 2 classes; got {names!r}")
        try:
            distinct = len(set(names)) == len(names)
        except TypeError:
            raise TypeError("classes must be hashable values (strings, integers)") from None
        if not distinct:
            raise ValueError(f"classes must be distinct; got {names!r}")
        for key in ("logits", "probs"):
            value = rows.get(key)
            shape = getattr(value, "shape", None) if value is not None else None
            if shape is not None and len(shape) == 2 and int(shape[1]) != len(names):
                raise ValueError(f"classes names {len(names)} classes but {key} has "
                                 f"K={int(shape[1])} columns")
            if shape is not None and len(shape) == 1 and len(names) != 2:
                raise ValueError(f"classes names {len(names)} classes but {key} is 1-D "
                                 f"(binary: classes=[negative, positive])")
        if rows.get("confidences") is not None and rows.get("n_classes") is None:
            rows["n_classes"] = len(names)
        y = _index_of(y, names, "labels")
        if rows.get("predictions") is not None:
            rows["predictions"] = _index_of(_host_labels(rows["predictions"]), names,
                                            "predictions")
    if pos_label is not None:
        for key in ("logits", "probs"):
            value = rows.get(key)
            if value is not None and len(getattr(value, "shape", (0, 0))) != 1:
                raise ValueError(f"pos_label= is for binary inputs ({key} as a 1-D array, the "
                                 f"positive class's score); for K columns pass classes=")
        if rows.get("confidences") is not None:
            raise TypeError("pos_label= is for binary inputs (1-D logits= or probs=), not "
                            "top-label confidences")
        values = list(dict.fromkeys(y.tolist()))
        if len(values) > 2:
            raise ValueError(f"pos_label= needs binary labels; labels take {len(values)} "
                             f"values ({', '.join(repr(v) for v in values[:5])}"
                             f"{', ...' if len(values) > 5 else ''})")
        if pos_label not in values:
            raise ValueError(f"pos_label={pos_label!r} is not among the labels (values: "
                             f"{', '.join(repr(v) for v in values)})")
        y = (y == pos_label).astype(np.int64)
    xp = namespace(labels) if is_array(labels) else None
    return (as_array(y, xp, device(labels)) if xp is not None and not isinstance(labels, np.ndarray)
            else y), rows


def _keep_rows(x: object, keep: np.ndarray, name: str) -> object:
    """Rows of ``x`` where ``keep`` (``ignore_index``), in ``x``'s own namespace."""
    if not is_array(x):
        x = np.asarray(x)
    if int(x.shape[0]) != keep.shape[0]:  # type: ignore[attr-defined]
        raise ValueError(f"{name} has {int(x.shape[0])} rows but labels has "  # type: ignore
                         f"{keep.shape[0]}")
    if isinstance(x, np.ndarray):
        return x[keep]
    xp = namespace(x)
    return x[as_array(keep, xp, device(x))]  # type: ignore[index]


def prepare(
    labels: object = None,
    *,
    logits: object = None,
    probs: object = None,
    targets: object = None,
    counts: object = None,
    sample_weight: object = None,
    confidences: object = None,
    predictions: object = None,
    n_classes: int | None = None,
    check: bool = True,
    # Any, not bool: torch/accumulator.py passes its scores as **{name: tensor}, which mypy
    # checks against every keyword not given explicitly
    rescale_weights: Any = False,
    classes: object = None,
    pos_label: object = None,
    ignore_index: object = None,
) -> Inputs:
    """Check which inputs were given, their dtypes and shapes, and return :class:`Inputs`.

    ``check=False`` defers the value checks (see :meth:`Inputs.chunks`); in top-label mode it
    also needs ``n_classes``, since inferring K reads the largest index back to the host.

    Weights (the rule of :func:`_scaled_weights`): every metric depends on the weights only
    through their ratios, but sums of w_i (and products of such sums) overflow or underflow
    float64 when the weights are huge (1e308) or tiny (5e-324). When the largest weight lies
    outside [2**-128, 2**128], ``rescale_weights=True`` (callers that see all the rows at
    once: :func:`trueprob.evaluate`, the metric functions, :func:`trueprob.decompose`)
    divides every weight by the same power of two, exactly, so the largest is in [1, 2);
    ``rescale_weights=False`` (a batch of a state filled chunk by chunk, whose scale must be
    the same in every batch) refuses them with an error naming ``sample_weight``.

    ``classes``, ``pos_label`` and ``ignore_index``: labels as users have them (see
    :func:`encode_labels`).
    """
    labels, given_rows = encode_labels(
        labels, {"logits": logits, "probs": probs, "sample_weight": sample_weight,
                 "confidences": confidences, "predictions": predictions,
                 "targets": targets, "counts": counts, "n_classes": n_classes},
        classes=classes, pos_label=pos_label, ignore_index=ignore_index)
    logits, probs = given_rows["logits"], given_rows["probs"]
    sample_weight = given_rows["sample_weight"]
    confidences, predictions = given_rows["confidences"], given_rows["predictions"]
    n_classes = given_rows["n_classes"]  # type: ignore[assignment]
    given = {k: v is not None for k, v in
             {"logits": logits, "probs": probs, "confidences": confidences}.items()}
    n_pred = sum(given.values())
    if n_pred != 1:
        got = ", ".join(k for k, v in given.items() if v) or "none"
        raise TypeError(
            "pass exactly one of logits=, probs= or confidences= (with predictions=); "
            f"got {got}"
        )
    tgiven = {"labels": labels is not None, "targets": targets is not None,
              "counts": counts is not None}
    if sum(tgiven.values()) != 1:
        got = ", ".join(k for k, v in tgiven.items() if v) or "none"
        raise TypeError(f"pass exactly one of labels, targets= or counts=; got {got}")
    if (confidences is None) != (predictions is None):
        raise TypeError("confidences= and predictions= go together (top-label mode); "
                        "pass both or neither")

    primary = logits if logits is not None else probs if probs is not None else confidences
    xp = namespace(primary) if is_array(primary) else None
    kind: ScoreKind = "logits" if logits is not None else "probs" if probs is not None \
        else "confidences"
    scores = convert(primary, kind, xp)
    xp = namespace(scores)
    scores = float_array(scores, kind, xp)
    target_kind: TargetKind = "labels" if labels is not None else \
        "targets" if targets is not None else "counts"

    n = int(scores.shape[0]) if scores.ndim >= 1 else 0
    binary = False
    if kind == "confidences":
        if scores.ndim != 1:
            raise ValueError(f"confidences must be 1-D (one per row); got shape "
                             f"{tuple(scores.shape)}")
        preds = convert(predictions, "predictions", xp)
        if preds.ndim != 1:
            raise ValueError(f"predictions must be 1-D; got shape {tuple(preds.shape)}")
        check_rows(preds, "predictions", n, "confidences")
        k = n_classes
    else:
        preds = None
        if scores.ndim == 1:
            binary = True
            k = 2
        elif scores.ndim == 2:
            k = int(scores.shape[1])
            if k < 2:
                raise ValueError(
                    f"{kind} has {k} column; K must be >= 2. For a binary problem pass the "
                    f"positive class's {kind[:-1] if kind == 'logits' else 'probability'} as a "
                    f"1-D array of shape (N,)"
                )
        else:
            raise ValueError(f"{kind} must be (N, K), or (N,) for binary; got shape "
                             f"{tuple(scores.shape)}")
        if n_classes is not None and n_classes != k:
            raise ValueError(f"n_classes={n_classes} but {kind} has K={k} columns")
    if n == 0:
        raise ValueError(f"{kind} is empty (0 rows); at least one row is needed")

    y = convert(labels, "labels", xp)
    if y is not None:
        if y.ndim != 1:
            raise ValueError(f"labels must be 1-D (one class index per row); got shape "
                             f"{tuple(y.shape)}")
        check_rows(y, "labels", n, kind)
        if not xp.isdtype(y.dtype, ("integral", "bool", "real floating")):
            raise TypeError(f"labels must be integer class indices; got dtype {y.dtype}. "
                            f"For labels that are names (strings or other values) pass "
                            f"classes=[...] in column order (CLI: --classes)")
    t_name = "targets" if targets is not None else "counts"
    t = convert(targets if targets is not None else counts, t_name, xp)
    if t is not None:
        if t_name == "targets":
            t = float_array(t, "targets", xp)
        elif not xp.isdtype(t.dtype, ("integral", "real floating")):
            raise TypeError(f"counts must be whole numbers; got dtype {t.dtype}")
        check_rows(t, t_name, n, kind)
        one_d_ok = binary and t_name == "targets" and t.ndim == 1
        if not one_d_ok and (t.ndim != 2 or (k is not None and int(t.shape[1]) != k)):
            want = f"(N, {k})" if k is not None else "(N, K)"
            if binary and t_name == "targets":
                want += " or (N,) (the positive-class probability)"
            raise ValueError(f"{t_name} must have shape {want}; got {tuple(t.shape)}")
        if kind == "confidences" and k is None:
            k = int(t.shape[1])
    w = convert(sample_weight, "sample_weight", xp)
    if w is not None:
        if w.ndim != 1:
            raise ValueError(f"sample_weight must be 1-D; got shape {tuple(w.shape)}")
        check_rows(w, "sample_weight", n, kind)
        if not xp.isdtype(w.dtype, ("integral", "real floating", "bool")):
            raise TypeError(f"sample_weight must be numeric; got dtype {w.dtype}")
        w = xp.astype(w, xp.float64)
        if check:
            w = _scaled_weights(xp, w, rescale_weights)
    if k is None and not check:
        raise ValueError("n_classes is needed in top-label mode when values are not checked")
    if k is None:
        # top-label mode with hard labels and no n_classes: K from the largest index seen.
        largest = max(int(to_numpy(xp.max(preds))), int(to_numpy(xp.max(y))) if y is not None
                      else 0)
        k = max(largest + 1, 2)
        if k > MAX_INFERRED_CLASSES:
            raise ValueError(
                f"the largest class index seen is {largest}; pass n_classes= explicitly "
                f"(inferring K > {MAX_INFERRED_CLASSES} classes is refused)"
            )
    if kind == "confidences" and n_classes is not None and n_classes < 2:
        raise ValueError(f"n_classes must be >= 2; got {n_classes}")
    return Inputs(xp, kind, target_kind, scores, preds, y, t, w, n, k, binary, check)

