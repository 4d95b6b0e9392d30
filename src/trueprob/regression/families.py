"""Predictive distributions of a regression model, one per row: what the model says about y_i.

Each class only holds the model's outputs (arrays of numpy, torch or any array-API library, or
scalars where a parameter is shared by all rows); :func:`trueprob.regression.evaluate_regression`
validates them. Parametric families are location-scale families (see
:mod:`trueprob.regression.core`); a :class:`QuantileSet` gives M predicted quantiles per row.

>>> import numpy as np
>>> from trueprob.regression import Gaussian, QuantileSet
>>> Gaussian(mean=np.zeros(3), std=1.0).family
'gaussian'
>>> QuantileSet(quantiles=np.zeros((3, 2)), levels=[0.1, 0.9]).family
'quantiles'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True, eq=False)
class Gaussian:
    """Normal predictive distributions N(mean_i, std_i^2).

    ``mean`` (N,); ``std`` (N,) or a scalar shared by all rows, > 0 (the standard deviation,
    not the variance). loc = mean, scale = std.
    """

    mean: Any
    std: Any
    family: ClassVar[str] = "gaussian"

    @property
    def loc(self) -> Any:
        return self.mean

    @property
    def scale(self) -> Any:
        return self.std

    def with_scale(self, scale: Any) -> Gaussian:
        return Gaussian(mean=self.mean, std=scale)


@dataclass(frozen=True, eq=False)
class Laplace:
    """Laplace predictive distributions with density exp(-|y - loc_i| / scale_i) / (2 scale_i).

    ``loc`` (N,) is the mean and median; ``scale`` b_i (N,) or scalar, > 0; the standard
    deviation is sqrt(2) b_i. Its NLL is |y - loc| / b + log(2 b): the L1 loss's likelihood.
    """

    loc: Any
    scale: Any
    family: ClassVar[str] = "laplace"

    def with_scale(self, scale: Any) -> Laplace:
        return Laplace(loc=self.loc, scale=scale)


@dataclass(frozen=True, eq=False)
class StudentT:
    """Location-scale Student-t predictive distributions: y_i = loc_i + scale_i T, T ~ t_df.

    ``loc`` (N,); ``scale`` (N,) or scalar, > 0; ``df`` (N,) or scalar, > 1 (the CRPS needs
    a finite mean). The standard deviation is scale sqrt(df / (df - 2)) for df > 2.
    """

    loc: Any
    scale: Any
    df: Any
    family: ClassVar[str] = "student_t"

    def with_scale(self, scale: Any) -> StudentT:
        return StudentT(loc=self.loc, scale=scale, df=self.df)


@dataclass(frozen=True, eq=False)
class QuantileSet:
    """M predicted quantiles per row: ``quantiles[i, j]`` = F_i^{-1}(levels[j]).

    ``quantiles`` (N, M), non-decreasing along each row; ``levels`` (M,) strictly increasing in
    (0, 1). No density is given, so the NLL is not defined; the CRPS is approximated by the
    pinball-loss average (:func:`trueprob.regression.core.quantile_crps`).
    """

    quantiles: Any
    levels: Any
    family: ClassVar[str] = "quantiles"


Predictive = Gaussian | Laplace | StudentT | QuantileSet
PARAMETRIC = (Gaussian, Laplace, StudentT)
