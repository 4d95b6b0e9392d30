"""Calibrators by short name ("temperature", "platt", ...), the names the CLI's ``--method`` uses.

:func:`make_calibrator` builds an unfitted calibrator for K classes: a binary method (Platt,
beta, isotonic, histogram binning, scaling-binning, BBQ, ENIR) on K > 2 classes is wrapped in
:class:`~trueprob.calibrators.multiclass.OneVsRest` or
:class:`~trueprob.calibrators.multiclass.TopLabel`, named by ``multiclass``.
"""

from __future__ import annotations

import importlib

from trueprob.calibrators.base import Calibrator

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


def make_calibrator(method: str, n_classes: int, multiclass: str = "one-vs-rest") -> Calibrator:
    """An unfitted calibrator for ``method`` on ``n_classes`` classes.

    Examples
    --------
    >>> make_calibrator("temperature", 10)
    TemperatureScaling(method='nll', max_iter=50, n_threads=None)
    >>> make_calibrator("platt", 3, "top-label")
    TopLabel(base=PlattScaling(max_iter=100, tol=1e-12))
    >>> make_calibrator("platt", 2)
    PlattScaling(max_iter=100, tol=1e-12)
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


__all__ = ["BINARY_METHODS", "METHODS", "WRAPPERS", "make_calibrator"]
