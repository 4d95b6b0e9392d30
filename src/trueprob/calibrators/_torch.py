"""PyTorch modules for deployment: each maps model outputs to calibrated log-probabilities.

torch is imported lazily (``import trueprob`` never imports it). The modules hold their
parameters as float64 buffers and compute in the input's dtype; they are plain tensor code
without data-dependent Python control flow, so ``torch.export.export`` accepts them
(``torch.jit.script`` is deprecated in torch 2.13).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def _modules() -> dict[str, Any]:
    import torch
    from torch import nn

    class _Scores(nn.Module):
        """Binary (N,) inputs -> two columns; probabilities -> log-probabilities."""

        def __init__(self, kind: str) -> None:
            super().__init__()
            self.probs = kind == "probs"

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if x.dim() == 1:
                first = 1.0 - x if self.probs else torch.zeros_like(x)
                x = torch.stack([first, x], dim=1)
            if self.probs:
                tiny = torch.finfo(x.dtype).tiny
                x = torch.log(torch.clamp(x, min=tiny))
            return x

    class TemperatureModule(nn.Module):
        """log_softmax(s / T) with s the logits (or log-probabilities); T = 0 is the limit."""

        def __init__(self, temperature: float, kind: str) -> None:
            super().__init__()
            self.scores = _Scores(kind)
            self.zero = temperature == 0.0
            beta = 0.0 if self.zero else 1.0 / temperature
            self.register_buffer("beta", torch.tensor(beta, dtype=torch.float64))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            s = self.scores(x)
            if self.zero:
                top = s == torch.amax(s, dim=1, keepdim=True)
                m = top.to(s.dtype).sum(dim=1, keepdim=True)
                return torch.where(top, -torch.log(m), torch.full_like(s, -math.inf))
            return torch.log_softmax(s * self.beta.to(s.dtype), dim=1)

    class LinearModule(nn.Module):
        """log_softmax(x W^T + b), x the logits, log-probabilities or log_softmax(logits)."""

        def __init__(self, weight: np.ndarray, bias: np.ndarray, kind: str,
                     log_softmax_input: bool) -> None:
            super().__init__()
            self.scores = _Scores(kind)
            self.diagonal = weight.ndim == 1
            self.log_softmax_input = log_softmax_input
            self.register_buffer("weight", torch.from_numpy(np.array(weight, np.float64)))
            self.register_buffer("bias", torch.from_numpy(np.array(bias, np.float64)))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            s = self.scores(x)
            if self.log_softmax_input:
                s = torch.log_softmax(s, dim=1)
            w = self.weight.to(s.dtype)
            if self.diagonal:
                out = s * w
            else:
                out = s @ w.T
            return torch.log_softmax(out + self.bias.to(s.dtype), dim=1)

    return {"TemperatureModule": TemperatureModule, "LinearModule": LinearModule}


def temperature_module(temperature: float, kind: str) -> Any:
    """A module computing ``log_softmax(s / T)`` (s: logits, or log of probabilities)."""
    return _modules()["TemperatureModule"](temperature, kind)


def linear_module(weight: np.ndarray, bias: np.ndarray, kind: str, *,
                  log_softmax_input: bool = False) -> Any:
    """A module computing ``log_softmax(x W^T + b)`` (``weight`` 1-D: ``x * w + b``)."""
    return _modules()["LinearModule"](weight, bias, kind, log_softmax_input)
