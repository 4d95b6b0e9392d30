"""Recalibration maps fitted by maximum likelihood."""

from trueprob.calibrators.base import (
    Calibrator,
    CalibratorFormatError,
    NotFittedError,
    from_dict,
    load,
)

__all__ = ["Calibrator", "CalibratorFormatError", "NotFittedError", "from_dict", "load"]
