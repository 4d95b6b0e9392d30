"""Numbers for people: one formatting rule for every table, line and document."""

from __future__ import annotations

import math
from typing import Any


def fixed(value: Any, digits: int = 4) -> str:
    """``value`` with ``digits`` decimals; never ``-0.0000`` (a value that rounds to zero is
    printed without a sign); ``None`` -> ``"n/a"`` (not computed), NaN -> ``"–"`` (undefined,
    e.g. an empty bin), ±inf -> ``"inf"``/``"-inf"``; other objects by ``str``.

    Examples
    --------
    >>> fixed(-1e-17), fixed(0.123456), fixed(-0.00004, 4), fixed(None), fixed(float("inf"))
    ('0.0000', '0.1235', '0.0000', 'n/a', 'inf')
    >>> fixed(float("nan")), fixed(-0.25, 2), fixed(7)
    ('–', '-0.25', '7')
    """
    if value is None:
        return "n/a"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "–"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    text = f"{value:.{digits}f}"
    if text.startswith("-") and float(text) == 0.0:
        text = text[1:]
    return text
