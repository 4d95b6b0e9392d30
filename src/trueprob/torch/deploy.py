"""Deployment: a model and its fitted calibrator as one ``torch.nn.Module``.

:class:`CalibratedModel` runs ``model(x)`` and maps its outputs (logits, or probabilities
when the calibrator was fitted on ``probs=``) through the calibrator's own module
(``calibrator.to_torch()``), returning calibrated log-probabilities (N, K) in the dtype and on
the device of the model's output. The calibrator modules are plain tensor code without
data-dependent Python control flow, so ``torch.export.export`` takes the whole model
(``torch.jit.script`` does not: it is deprecated in torch 2.13 and cannot compile the array-API
code the binary calibrators share with ``predict_logproba``).

Every classification calibrator can be deployed: temperature, vector, matrix and Dirichlet
scaling, Platt, beta, isotonic, histogram binning, scaling-binning, the one-vs-rest and
top-label wrappers and the Bayesian binning calibrators. The regression calibrators
(``VarianceScaling``, ``IsotonicQuantileRecalibration``) map predictive distributions, not
class scores, and ``PerLabelCalibration`` returns independent per-label probabilities, not a
log-PMF: neither is a :class:`CalibratedModel`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from trueprob.calibrators.base import Calibrator, NotFittedError

#: calibrators whose output is not a log-PMF over classes: (class name, why)
NOT_DEPLOYABLE = {
    "VarianceScaling": "a regression calibrator (it maps predictive distributions)",
    "IsotonicQuantileRecalibration": "a regression calibrator (it maps quantile levels)",
    "PerLabelCalibration": "a multi-label calibrator (independent per-label probabilities)",
}


def calibrator_module(calibrator: Any) -> nn.Module:
    """The fitted ``calibrator``'s ``torch.nn.Module`` (scores -> calibrated log-probabilities),
    with a clear error for what cannot be one."""
    name = type(calibrator).__name__
    if name in NOT_DEPLOYABLE:
        raise TypeError(f"calibrator: {name} is {NOT_DEPLOYABLE[name]}, not a map to "
                        f"class log-probabilities; CalibratedModel cannot deploy it")
    if not isinstance(calibrator, Calibrator) or not hasattr(calibrator, "to_torch"):
        raise TypeError(f"calibrator must be a fitted trueprob classification calibrator; got "
                        f"{calibrator!r}")
    if not calibrator.is_fitted:
        raise NotFittedError(f"calibrator: this {name} is not fitted yet; fit it (or load a "
                             f"saved one) before deploying it")
    module: nn.Module = calibrator.to_torch()
    return module


class CalibratedModel(nn.Module):
    """``model`` followed by a fitted trueprob calibrator: x -> calibrated log-probabilities.

    ``forward(x) = cal(model(x))`` where ``cal`` computes the calibrator's
    ``predict_logproba`` on the model's output: logits (or probabilities, per the calibrator's
    ``kind_``), (N, K), or (N,) positive-class scores for a binary calibrator. The output is
    (N, K) log-probabilities in the dtype (float32 or float64) and on the device of the model's
    output; in float32 it equals ``calibrator.predict_logproba`` of the same float32 scores to
    1e-6 (``tests/test_torch_deploy.py``). No input validation is done in ``forward``.

    Export with ``torch.export.export(CalibratedModel(...), (example,))``; export with an
    example input on the device the program will run on (the fitted tables of the step-function
    calibrators become constants on that device).

    Parameters
    ----------
    model : torch.nn.Module
        The classifier (``torch.nn.Identity()`` to deploy the calibrator alone).
    calibrator : fitted trueprob calibrator
        Any classification calibrator (see the module docstring for the ones that are not).

    Attributes
    ----------
    kind : {"logits", "probs"}
        What the calibrator expects ``model`` to output.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from trueprob.calibrators import TemperatureScaling
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=(500, 3)) * 4
    >>> y = (rng.random(500)[:, None] > np.cumsum(np.exp(z / 2) / np.exp(z / 2).sum(1,
    ...      keepdims=True), axis=1)).sum(1)   # labels drawn from softmax(z / 2)
    >>> cal = TemperatureScaling().fit(y, logits=z)
    >>> 1.5 < cal.temperature_ < 3
    True
    >>> net = torch.nn.Linear(3, 3, dtype=torch.float64)
    >>> model = CalibratedModel(net, cal).eval()
    >>> x = torch.from_numpy(z[:4])
    >>> out = model(x)
    >>> torch.allclose(out, torch.from_numpy(cal.predict_logproba(logits=net(x).detach().numpy())))
    True
    >>> program = torch.export.export(model, (x,))
    >>> torch.allclose(program.module()(x), out)
    True
    """

    def __init__(self, model: nn.Module, calibrator: Any) -> None:
        super().__init__()
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module (torch.nn.Identity() for the "
                            f"calibrator alone); got {type(model).__name__}")
        self.model = model
        self.calibrator = calibrator_module(calibrator)
        self.kind: str = str(calibrator.kind_)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.calibrator(self.model(x))
        return out


__all__ = ["NOT_DEPLOYABLE", "CalibratedModel", "calibrator_module"]
