"""Calibrators by short name ("temperature", "platt", ...), the names the CLI's ``--method`` uses.

:func:`make_calibrator` builds an unfitted calibrator for K classes: a binary method (Platt,
beta, isotonic, histogram binning, scaling-binning, BBQ, ENIR) on K > 2 classes is wrapped in
:class:`~trueprob.calibrators.multiclass.OneVsRest` or
:class:`~trueprob.calibrators.multiclass.TopLabel`, named by ``multiclass``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from trueprob.calibrators.base import Calibrator

if TYPE_CHECKING:
    from trueprob.calibrators.multiclass import TopLabel

#: short name -> (module, class)
METHODS: dict[str, tuple[str, str]] = {
    "temperature": ("trueprob.calibrators.temperature", "TemperatureScaling"),
    "vector": ("trueprob.calibrators.scaling", "VectorScaling"),
    "matrix": ("trueprob.calibrators.scaling", "MatrixScaling"),
    "dirichlet": ("trueprob.calibrators.scaling", "DirichletCalibration"),
    "platt": ("trueprob.calibrators.binary", "PlattScaling"),
    "beta": ("trueprob.calibrators.binary", "BetaCalibration"),
    "isotonic": ("trueprob.calibrators.nonparametric", "IsotonicCalibration"),
    "histogram": ("trueprob.calibrators.nonparametric", "HistogramBinning"),
    "scaling-binning": ("trueprob.calibrators.nonparametric", "ScalingBinning"),
    "bbq": ("trueprob.calibrators.bayesian", "BBQ"),
    "enir": ("trueprob.calibrators.bayesian", "ENIR"),
}
#: methods whose calibrator is binary (wrapped for K > 2)
BINARY_METHODS = ("platt", "beta", "isotonic", "histogram", "scaling-binning", "bbq", "enir")
#: ``multiclass`` value -> wrapper class name in :mod:`trueprob.calibrators.multiclass`
WRAPPERS = {"one-vs-rest": "OneVsRest", "top-label": "TopLabel"}
#: methods that fit on top-label outputs alone (confidence and prediction per row): the
#: binary ones, wrapped in TopLabel; the others transform the whole vector
TOP_LABEL_METHODS = BINARY_METHODS


def top_label_refusal(method: str) -> str | None:
    """Why ``method`` cannot be fitted on top-label outputs, or None when it can.

    >>> top_label_refusal("isotonic") is None
    True
    >>> top_label_refusal("temperature")[:40]
    'temperature scaling transforms the whole'
    """
    if method in TOP_LABEL_METHODS:
        return None
    name = method if method == "dirichlet" else f"{method} scaling"
    return (f"{name} transforms the whole probability vector (logits or probabilities, one "
            f"per class) and cannot be fitted on top-label confidences and predictions "
            f"alone; the methods that work top-label are {', '.join(TOP_LABEL_METHODS)}")


def make_top_label_calibrator(method: str) -> TopLabel:
    """An unfitted top-label calibrator for a binary ``method``, for top-label outputs.

    A binary method is always wrapped in
    :class:`~trueprob.calibrators.multiclass.TopLabel` (the correctness of the predicted
    class is the binary event, whatever K is); the vector methods are refused with the
    reason (:func:`top_label_refusal`).

    Examples
    --------
    >>> make_top_label_calibrator("isotonic")
    TopLabel(base=IsotonicCalibration(clip=1e-06))
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}; got {method!r}")
    reason = top_label_refusal(method)
    if reason is not None:
        raise ValueError(reason)
    from trueprob.calibrators import multiclass as wrappers

    module_name, class_name = METHODS[method]
    base = getattr(importlib.import_module(module_name), class_name)()
    return wrappers.TopLabel(base=base)


def make_calibrator(method: str, n_classes: int, multiclass: str = "one-vs-rest") -> Calibrator:
    """An unfitted calibrator for ``method`` on ``n_classes`` classes.

    Examples
    --------
    >>> make_calibrator("temperature", 10)
    TemperatureScaling(method='nll', max_iter=50, n_threads=None)
    >>> make_calibrator("platt", 3, "top-label")
    TopLabel(base=PlattScaling(max_iter=100, tol=1e-12, smooth_targets=False))
    >>> make_calibrator("platt", 2)
    PlattScaling(max_iter=100, tol=1e-12, smooth_targets=False)
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}; got {method!r}")
    if multiclass not in WRAPPERS:
        raise ValueError(f"multiclass must be one of {list(WRAPPERS)}; got {multiclass!r}")
    module_name, class_name = METHODS[method]
    calibrator: Calibrator = getattr(importlib.import_module(module_name), class_name)()
    if method in BINARY_METHODS and n_classes > 2:
        from trueprob.calibrators import multiclass as wrappers

        wrapper: Calibrator = getattr(wrappers, WRAPPERS[multiclass])(base=calibrator)
        return wrapper
    return calibrator


__all__ = ["BINARY_METHODS", "METHODS", "TOP_LABEL_METHODS", "WRAPPERS", "make_calibrator",
           "make_top_label_calibrator", "top_label_refusal"]
