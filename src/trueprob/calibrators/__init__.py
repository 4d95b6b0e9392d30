"""Recalibration maps fitted by maximum likelihood.

Every calibrator minimises the weighted negative log-likelihood of a calibration set and saves
to a versioned plain JSON format (:meth:`Calibrator.save`, :func:`load`); loading never executes
code. Importing this package registers every calibrator class, so :func:`load` knows them all.
"""

from trueprob.calibrators.as_function import as_numpy_function
from trueprob.calibrators.base import (
    Calibrator,
    CalibratorFormatError,
    NotFittedError,
    from_dict,
    load,
)
from trueprob.calibrators.bayesian import BBQ, ENIR
from trueprob.calibrators.binary import BetaCalibration, PlattScaling
from trueprob.calibrators.multiclass import OneVsRest, TopLabel
from trueprob.calibrators.nonparametric import (
    HistogramBinning,
    IsotonicCalibration,
    ScalingBinning,
)
from trueprob.calibrators.scaling import DirichletCalibration, MatrixScaling, VectorScaling
from trueprob.calibrators.temperature import DegenerateFitWarning, TemperatureScaling

__all__ = [
    "BBQ",
    "ENIR",
    "BetaCalibration",
    "Calibrator",
    "CalibratorFormatError",
    "DegenerateFitWarning",
    "DirichletCalibration",
    "HistogramBinning",
    "IsotonicCalibration",
    "MatrixScaling",
    "NotFittedError",
    "OneVsRest",
    "PlattScaling",
    "ScalingBinning",
    "TemperatureScaling",
    "TopLabel",
    "VectorScaling",
    "as_numpy_function",
    "from_dict",
    "load",
]
