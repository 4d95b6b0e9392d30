"""JSON safety for the result records: one rule for non-finite numbers everywhere."""

from __future__ import annotations

import math
from typing import Any


def json_safe(x: Any) -> Any:
    """JSON-safe: NaN/inf floats become None/"inf", tuples become lists."""
    if isinstance(x, float):
        if math.isnan(x):
            return None
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        return x
    if isinstance(x, dict):
        return {k: json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_safe(v) for v in x]
    return x
