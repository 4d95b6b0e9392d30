"""The options shared by public functions: their allowed values, defaults and one check each.

Every public function that takes ``unit``, ``reduce`` or ``binning`` checks it here, so the
accepted values and the error message are the same everywhere.

>>> check_unit("bits") == 1 / math.log(2)
True
>>> check_binning("quantile")
Traceback (most recent call last):
...
ValueError: binning must be 'width' or 'mass'; got 'quantile'
"""

from __future__ import annotations

import math
from typing import Literal

Unit = Literal["nats", "bits"]
Reduce = Literal["mean", "sum"]
BinningName = Literal["width", "mass"]

#: factor from nats to each unit: every log-score quantity is multiplied by it
UNITS: dict[str, float] = {"nats": 1.0, "bits": 1.0 / math.log(2.0)}
#: the defaults of every public function (SPEC.md: nats, 15 equal-width bins)
DEFAULT_UNIT: Unit = "nats"
DEFAULT_N_BINS = 15
DEFAULT_BINNING: BinningName = "width"


def check_unit(unit: object) -> float:
    """The factor from nats to ``unit`` ('nats' or 'bits'); ValueError otherwise."""
    if not isinstance(unit, str) or unit not in UNITS:
        raise ValueError(f"unit must be 'nats' or 'bits'; got {unit!r}")
    return UNITS[unit]


def check_reduce(reduce: object) -> None:
    """ValueError unless ``reduce`` is 'mean' or 'sum'."""
    if reduce not in ("mean", "sum"):
        raise ValueError(f"reduce must be 'mean' or 'sum'; got {reduce!r}")


def check_binning(binning: object, owner: str | None = None) -> BinningName:
    """``binning`` if it is 'width' (equal-width) or 'mass' (equal-mass); ValueError naming
    ``owner`` (e.g. the estimator) otherwise."""
    if binning not in ("width", "mass"):
        where = "" if owner is None else f"{owner}: "
        raise ValueError(f"{where}binning must be 'width' or 'mass'; got {binning!r}")
    return "width" if binning == "width" else "mass"
