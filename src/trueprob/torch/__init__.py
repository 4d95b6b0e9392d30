"""PyTorch integration: accumulate a :class:`~trueprob.Report` inside a training loop.

- :class:`CalibrationAccumulator`: per-batch ``update`` on the device the tensors are on, with
  no host synchronisation; ``compute`` gives the Report of :func:`trueprob.evaluate`;
  ``all_reduce`` sums the state across ``torch.distributed`` processes; ``state_dict`` for
  checkpoints.
- ``TorchmetricsCalibration``: the same accumulator as a ``torchmetrics.Metric`` (built on
  first access, and only when torchmetrics is installed).
- :class:`CalibratedModel`: a model and its fitted calibrator as one ``nn.Module`` returning
  calibrated log-probabilities, exportable with ``torch.export``.

``import trueprob`` does not import this module; ``import trueprob.torch`` imports torch.
"""

from __future__ import annotations

from typing import Any

from trueprob.torch.accumulator import CalibrationAccumulator
from trueprob.torch.deploy import CalibratedModel

__all__ = ["CalibratedModel", "CalibrationAccumulator", "TorchmetricsCalibration"]


def __getattr__(name: str) -> Any:
    if name == "TorchmetricsCalibration":
        from trueprob.torch.metric import torchmetrics_calibration_class

        return torchmetrics_calibration_class()
    raise AttributeError(f"module 'trueprob.torch' has no attribute {name!r}")
