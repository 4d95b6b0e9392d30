"""A fitted calibrator as a plain numpy function, for serving code without torch or ONNX.

:func:`as_numpy_function` freezes a copy of a fitted classification calibrator into a function
``f(scores) -> log-probabilities`` on numpy arrays: what the calibrator was fitted on (logits
or probabilities, its ``kind_``) goes in, (N, K) calibrated log-probabilities come out, with
the input checks of ``predict_logproba`` (finite values, probabilities on the simplex). Later
refits of the original calibrator do not change the function.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np

from trueprob.calibrators.base import Calibrator, NotFittedError


def as_numpy_function(calibrator: Calibrator) -> Callable[[Any], np.ndarray]:
    """A frozen copy of ``calibrator`` as ``f(scores) -> log-probabilities`` (numpy in, out).

    ``f(x)`` equals ``calibrator.predict_logproba(**{calibrator.kind_: x})`` for the calibrator
    as it was when this was called: x is (N, K) logits or probabilities (per ``kind_``), or
    (N,) positive-class scores for two classes; the result is (N, K), in x's float dtype
    (for ``PerLabelCalibration``: (N, L) log-probabilities that each label is present).

    Examples
    --------
    >>> import numpy as np
    >>> from trueprob.calibrators import TemperatureScaling
    >>> z = np.array([[2.0, 0.0], [0.0, 1.0], [3.0, 0.0], [0.0, -1.0]])
    >>> cal = TemperatureScaling().fit(np.array([0, 0, 0, 1]), logits=z)
    >>> f = as_numpy_function(cal)
    >>> np.allclose(f(z), cal.predict_logproba(logits=z))
    True
    >>> f.__name__
    'calibrated_logproba_TemperatureScaling'
    """
    if not isinstance(calibrator, Calibrator):
        raise TypeError(f"calibrator must be a fitted trueprob calibrator; got {calibrator!r}")
    name = type(calibrator).__name__
    if not calibrator.is_fitted:
        raise NotFittedError(f"calibrator: this {name} is not fitted yet")
    kind = getattr(calibrator, "kind_", None)
    if kind not in ("logits", "probs"):
        raise TypeError(f"calibrator: {name} does not map class scores to log-probabilities "
                        f"(it has no kind_ 'logits' or 'probs'); only classification "
                        f"calibrators become numpy functions")
    frozen = copy.deepcopy(calibrator)

    def calibrated_logproba(scores: Any) -> np.ndarray:
        return np.asarray(frozen.predict_logproba(**{kind: np.asarray(scores)}))

    calibrated_logproba.__name__ = f"calibrated_logproba_{name}"
    calibrated_logproba.__qualname__ = calibrated_logproba.__name__
    calibrated_logproba.__doc__ = (
        f"Calibrated log-probabilities (N, K) of {kind} (N, K) by a frozen {name}.")
    return calibrated_logproba


__all__ = ["as_numpy_function"]
