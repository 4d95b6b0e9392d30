"""The calibrator base classes: scikit-learn conventions and a safe, versioned plain format.

:class:`BaseCalibrator` holds what every calibrator shares (parameters, fitted checks, the
plain-data format, the registry of class names); :class:`Calibrator` is the classification
calibrator (``fit(labels, logits=...)``, ``predict_logproba``). The multi-label and regression
calibrators have bases of their own with their own ``fit``
(:class:`trueprob.multilabel.calibrators.MultilabelCalibrator`,
:class:`trueprob.regression.calibrators.RegressionCalibrator`).

A calibrator is a map from model outputs to calibrated probabilities, fitted by maximum
likelihood (minimising the weighted NLL of a calibration set). Conventions (scikit-learn's):
``__init__`` only stores its keyword parameters; fitted attributes end in ``_``; ``fit``
returns ``self``; ``get_params`` / ``set_params`` make ``sklearn.base.clone`` work.

Saved form (``to_dict`` / ``save``): JSON with ``format``, ``format_version``, ``class``,
``params`` and ``fitted`` (numbers, strings, booleans, and arrays written as
``{"dtype", "shape", "data"}``). Loading parses JSON only and checks every key: it never
executes code and refuses unknown classes, unexpected fields and newer format versions.
"""

from __future__ import annotations

import importlib
import inspect
import json
import math
import os
from typing import Any, ClassVar, TypeVar

import numpy as np

from trueprob._version import __version__

FORMAT = "trueprob.calibrator"
FORMAT_VERSION = 1
_TOP_KEYS = {"format", "format_version", "trueprob_version", "class", "params", "fitted"}
_ARRAY_KEYS = {"dtype", "shape", "data"}
_DTYPES = {"float64", "float32", "int64", "bool"}
B = TypeVar("B", bound="BaseCalibrator")

#: class name -> class, filled by ``BaseCalibrator.__init_subclass__`` when a module defining
#: calibrators is imported
REGISTRY: dict[str, type[BaseCalibrator]] = {}
#: the modules that define the calibrators of the other tasks. They import this module, so it
#: cannot import them up front; loading a class name not yet registered imports these (and
#: only these: nothing read from a file decides what is imported) and looks again.
TASK_MODULES = ("trueprob.multilabel.calibrators", "trueprob.regression.calibrators")


class NotFittedError(ValueError, AttributeError):
    """A calibrator was used before ``fit``."""


class CalibratorFormatError(ValueError):
    """A saved calibrator is corrupt, of an unknown class, or from a newer format version."""


class BaseCalibrator:
    """What every calibrator shares (see the module docstring for the conventions).

    Subclasses set ``_fitted_attrs`` (names of the fitted attributes that define the map,
    saved and loaded as plain data) and implement their task's ``fit`` and predictions.
    A public subclass is registered by its class name, which is how a saved file names it.
    """

    _fitted_attrs: ClassVar[tuple[str, ...]] = ()
    #: fitted attributes that describe the fit (losses before and after) rather than define
    #: the map: :func:`load` does not refuse subnormal values there (a log loss of 1e-320 is
    #: what a near-certain correct prediction costs)
    _diagnostic_attrs: ClassVar[tuple[str, ...]] = ("nll_before_", "nll_after_")
    #: parameters added after files were first saved: a file without them loads with their
    #: defaults (every other parameter must be in the file)
    _added_params: ClassVar[frozenset[str]] = frozenset()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # a base (Calibrator, BinaryCalibrator, MultilabelCalibrator, ...) says so in its own
        # body (``_base = True``): it is not a class a saved file can name
        if not cls.__name__.startswith("_") and not cls.__dict__.get("_base", False):
            REGISTRY[cls.__name__] = cls

    # -------------------------------------------------------------- params (sklearn)
    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p.name for p in sig.parameters.values()
                if p.name != "self" and p.kind == p.KEYWORD_ONLY]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self: B, **params: Any) -> B:
        valid = set(self._param_names())
        for key, value in params.items():
            if key not in valid:
                raise ValueError(
                    f"invalid parameter {key!r} for {type(self).__name__}; "
                    f"valid parameters are {sorted(valid)}"
                )
            setattr(self, key, value)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # -------------------------------------------------------------- fitted state
    def _check_fitted(self) -> None:
        if not self._fitted_attrs or not all(hasattr(self, a) for a in self._fitted_attrs):
            raise NotFittedError(
                f"this {type(self).__name__} is not fitted yet; call fit() with a calibration "
                f"set first"
            )

    def _check_loaded(self) -> None:
        """Validate fitted values after loading (shapes, ranges); subclasses override."""

    @property
    def is_fitted(self) -> bool:
        return bool(self._fitted_attrs) and all(hasattr(self, a) for a in self._fitted_attrs)

    # -------------------------------------------------------------- predictions
    # (classification: one row of K log-probabilities per input row; multi-label: L
    # independent label log-probabilities; regression calibrators raise a TypeError)
    def predict_logproba(
        self, *, logits: Any = None, probs: Any = None,
    ) -> Any:  # pragma: no cover
        """Calibrated log-probabilities of ``logits`` (or ``probs``), one row per input row."""
        raise NotImplementedError

    def predict_proba(self, *, logits: Any = None, probs: Any = None) -> Any:
        """Calibrated probabilities: ``exp(predict_logproba(...))``."""
        from trueprob._array import namespace

        logp = self.predict_logproba(logits=logits, probs=probs)
        return namespace(logp).exp(logp)

    # -------------------------------------------------------------- plain-data format
    def to_dict(self) -> dict[str, Any]:
        """The calibrator as plain data (JSON-ready): parameters and fitted map."""
        self._check_fitted()
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "trueprob_version": __version__,
            "class": type(self).__name__,
            "params": {k: _encode(v) for k, v in self.get_params().items()},
            "fitted": {a: _encode(getattr(self, a)) for a in self._fitted_attrs},
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, allow_nan=False)

    def save(self, path: str | os.PathLike[str], *, force: bool = False) -> None:
        """Write the calibrator as JSON, atomically (:func:`trueprob.io.atomic_write`).

        An existing ``path`` raises :class:`FileExistsError` unless ``force``.
        """
        from trueprob.io import atomic_write

        text = self.to_json().encode()
        with atomic_write(path, force=force) as fh:
            fh.write(text)


class Calibrator(BaseCalibrator):
    """Base class of the classification calibrators: ``fit(labels, logits=...)`` and
    ``predict_logproba(logits=...)`` (see the module docstring for the conventions)."""

    _base = True

    # -------------------------------------------------------------- to be implemented
    def fit(
        self, labels: Any = None, /, *, logits: Any = None, probs: Any = None,
        targets: Any = None, counts: Any = None, sample_weight: Any = None,
    ) -> Calibrator:  # pragma: no cover
        """Fit on a calibration set; returns self.

        Exactly one of ``logits`` / ``probs`` and one of ``labels`` / ``targets`` /
        ``counts``; ``sample_weight`` is optional.
        """
        raise NotImplementedError


def _encode(value: Any) -> Any:
    if isinstance(value, BaseCalibrator):
        # a nested calibrator (the base of a wrapper): its class, params and, once fitted,
        # its fitted map, as a JSON object with these keys
        out = {"class": type(value).__name__,
               "params": {k: _encode(v) for k, v in value.get_params().items()}}
        if value.is_fitted:
            out["fitted"] = {a: _encode(getattr(value, a)) for a in value._fitted_attrs}
        return out
    if isinstance(value, np.ndarray):
        dtype = str(value.dtype)
        if dtype not in _DTYPES:
            value = value.astype(np.float64)
            dtype = "float64"
        data = value.ravel().tolist()
        if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
            data = [_finite_or_str(x) for x in data]
        return {"dtype": dtype, "shape": list(value.shape), "data": data}
    if isinstance(value, (np.floating, float)):
        return _finite_or_str(float(value))
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    if value is None or isinstance(value, (bool, int, str)):
        return value
    raise TypeError(f"cannot save a value of type {type(value).__name__} as plain data")


def _finite_or_str(x: float) -> float | str:
    if math.isfinite(x):
        return x
    return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")


def _decode(value: Any, where: str) -> Any:
    if isinstance(value, dict) and "class" in value:
        if not set(value) <= {"class", "params", "fitted"} or "params" not in value:
            raise CalibratorFormatError(
                f"{where}: a nested calibrator must have the keys class, params and (once "
                f"fitted) fitted; got {sorted(value)}"
            )
        return _build(value["class"], value["params"], value.get("fitted"), where)
    if isinstance(value, dict):
        if set(value) != _ARRAY_KEYS:
            raise CalibratorFormatError(
                f"{where}: an array must have exactly the keys {sorted(_ARRAY_KEYS)}; "
                f"got {sorted(value)}"
            )
        dtype, shape, data = value["dtype"], value["shape"], value["data"]
        if dtype not in _DTYPES:
            raise CalibratorFormatError(f"{where}: unsupported dtype {dtype!r}")
        if not (isinstance(shape, list) and all(isinstance(s, int) and s >= 0 for s in shape)):
            raise CalibratorFormatError(f"{where}: shape must be a list of sizes; got {shape!r}")
        if not isinstance(data, list) or len(data) != math.prod(shape):
            raise CalibratorFormatError(
                f"{where}: data must be a list of {math.prod(shape)} numbers"
            )
        clean = [_number(x, where) for x in data]
        return np.asarray(clean, dtype=np.dtype(dtype)).reshape(shape)
    if isinstance(value, list):
        return [_decode(v, where) for v in value]
    if value in ("nan", "inf", "-inf"):
        return float(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise CalibratorFormatError(f"{where}: unexpected value of type {type(value).__name__}")


def _number(x: Any, where: str) -> float | int | bool:
    if isinstance(x, (bool, int, float)):
        return x
    if x in ("nan", "inf", "-inf"):
        return float(x)
    raise CalibratorFormatError(f"{where}: array entries must be numbers; got {x!r}")


def from_dict(data: Any) -> BaseCalibrator:
    """Rebuild a calibrator from :meth:`Calibrator.to_dict` output, checking every key."""
    if not isinstance(data, dict):
        raise CalibratorFormatError("a saved calibrator must be a JSON object")
    if data.get("format") != FORMAT:
        raise CalibratorFormatError(
            f"not a trueprob calibrator file (format is {data.get('format')!r}, "
            f"expected {FORMAT!r})"
        )
    extra = set(data) - _TOP_KEYS
    missing = _TOP_KEYS - set(data)
    if extra or missing:
        raise CalibratorFormatError(
            f"unexpected fields {sorted(extra)} / missing fields {sorted(missing)} in a saved "
            f"calibrator"
        )
    version = data["format_version"]
    if not isinstance(version, int) or isinstance(version, bool):
        raise CalibratorFormatError(f"format_version must be an integer; got {version!r}")
    if version < 1:
        raise CalibratorFormatError(
            f"format_version must be an integer from 1 to {FORMAT_VERSION}; got {version!r}"
        )
    if version > FORMAT_VERSION:
        raise CalibratorFormatError(
            f"this file has format version {version}, newer than this trueprob "
            f"({__version__}) reads (version {FORMAT_VERSION}); upgrade trueprob"
        )
    if not isinstance(data["fitted"], dict):
        raise CalibratorFormatError(f"fitted must be a JSON object; got {data['fitted']!r}")
    return _build(data["class"], data["params"], data["fitted"], "")


def _build(name: Any, params: Any, fitted: Any, where: str) -> BaseCalibrator:
    """A calibrator of class ``name`` from saved params and (None: unfitted) fitted values."""
    at = f"{where}: " if where else ""
    prefix = f"{where}." if where else ""
    cls = REGISTRY.get(name) if isinstance(name, str) else None
    if cls is None and isinstance(name, str):
        for module in TASK_MODULES:  # fixed, known modules: they register their classes
            importlib.import_module(module)
        cls = REGISTRY.get(name)
    if cls is None:
        raise CalibratorFormatError(
            f"{at}unknown calibrator class {name!r}; known: {sorted(REGISTRY)}")
    # a parameter added in a later version may be missing from an older file: it takes its
    # default (listed in _added_params); every other key must be there, and no unknown one
    names = set(cls._param_names())
    if not isinstance(params, dict) or not (
            names - cls._added_params <= set(params) <= names):
        raise CalibratorFormatError(
            f"{at}{name}: params must have exactly the keys {sorted(names)}; "
            f"got {sorted(params) if isinstance(params, dict) else params!r}"
        )
    if fitted is not None and (not isinstance(fitted, dict)
                               or set(fitted) != set(cls._fitted_attrs)):
        raise CalibratorFormatError(
            f"{at}{name}: fitted must have exactly the keys {sorted(cls._fitted_attrs)}; "
            f"got {sorted(fitted) if isinstance(fitted, dict) else fitted!r}"
        )
    obj = cls(**{k: _decode(v, f"{prefix}params.{k}") for k, v in params.items()})
    if fitted is not None:
        for key, value in fitted.items():
            decoded = _decode(value, f"{prefix}fitted.{key}")
            if key not in cls._diagnostic_attrs:
                _check_not_subnormal(decoded, f"{prefix}fitted.{key}")
            setattr(obj, key, decoded)
        obj._check_loaded()
    return obj


def _check_not_subnormal(value: Any, where: str) -> None:
    """Refuse a subnormal number (|x| < 2.2e-308, x != 0) in a parameter of the map.

    No fit gives one: such a value was written by hand or corrupted, and 1 / x or x * z then
    overflows to inf or NaN at prediction (``temperature_: 1e-320`` predicted NaN). Checked
    before the class's own ``_check_loaded``, for every calibrator and nested calibrator.
    """
    if isinstance(value, list):
        for item in value:
            _check_not_subnormal(item, where)
        return
    if isinstance(value, bool) or not isinstance(value, (float, np.ndarray)):
        return
    arr = np.asarray(value)
    if arr.dtype.kind != "f" or not arr.size:
        return
    tiny = np.finfo(np.float64).tiny
    sub = (arr != 0) & (np.abs(arr) < tiny)
    if np.any(sub):
        bad = arr.ravel()[int(np.flatnonzero(sub.ravel())[0])]
        raise CalibratorFormatError(
            f"{where} is {float(bad)!r}, a subnormal number (|x| < {tiny:.3g}): no fit gives "
            f"such a value; the file was altered or corrupted"
        )


def load(path: str | os.PathLike[str]) -> BaseCalibrator:
    """Load a calibrator saved by :meth:`Calibrator.save` (JSON only; no code is executed)."""
    with open(path, "rb") as fh:
        raw = fh.read()
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CalibratorFormatError(f"{path}: not a valid calibrator JSON file ({exc})") from exc
    except RecursionError:
        # a file nested thousands of levels deep exhausts the parser's recursion
        raise CalibratorFormatError(
            f"{path}: not a calibrator file: JSON nested too deeply to parse") from None
    try:
        return from_dict(data)
    except CalibratorFormatError as exc:
        raise CalibratorFormatError(f"{path}: {exc}") from exc
    except RecursionError:
        raise CalibratorFormatError(
            f"{path}: not a calibrator file: values nested too deeply") from None
