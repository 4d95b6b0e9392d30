"""The look of trueprob's figures: a colour-blind-safe palette and a local style.

Palette: the eight colours of Okabe & Ito (2008, "Color Universal Design"), distinguishable
with the common forms of colour blindness. No figure relies on colour alone: every series also
differs by line style and marker, and every filled area by hatching, so the figures read in
grayscale too. The style is applied with ``matplotlib.rc_context`` around each drawing and
saving call; trueprob never changes matplotlib's global settings.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

#: Okabe & Ito (2008) colours by name.
OKABE_ITO = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
}

#: Colours of successive series (the model as given, then each recalibration).
SERIES = (OKABE_ITO["blue"], OKABE_ITO["orange"], OKABE_ITO["bluish_green"],
          OKABE_ITO["reddish_purple"])

#: What each colour means in trueprob's figures.
ROLES = {
    "over_confident": OKABE_ITO["vermillion"],
    "under_confident": OKABE_ITO["sky_blue"],
    "band": "#9A9A9A",
    "histogram": "#6E6E6E",
    "diagonal": OKABE_ITO["black"],
    "uncertainty": "#C8C8C8",
    "discrimination": OKABE_ITO["bluish_green"],
    "miscalibration": OKABE_ITO["vermillion"],
    "entropy": "#C8C8C8",
    "kl": OKABE_ITO["reddish_purple"],
}

#: Line style, marker and hatch of the i-th series (cycled): readable without colour.
LINESTYLES = ("-", "--", "-.", ":")
MARKERS = ("o", "s", "^", "D")
HATCHES = {"over_confident": "////", "under_confident": "\\\\\\\\", "discrimination": "..",
           "miscalibration": "////", "kl": "xx", "band": None}

#: rcParams used inside every drawing and saving call (``rc_context`` only).
RC = {
    "font.size": 9.0,
    "axes.titlesize": 9.5,
    "axes.labelsize": 9.0,
    "xtick.labelsize": 8.0,
    "ytick.labelsize": 8.0,
    "legend.fontsize": 8.0,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": False,
    "hatch.linewidth": 0.6,
    "svg.fonttype": "none",
    "figure.dpi": 100.0,
    "savefig.bbox": "tight",
    "savefig.facecolor": "white",
}


def series_style(i: int) -> dict[str, Any]:
    """Colour, line style and marker of the i-th series (i = 0: the model as given)."""
    return {"color": SERIES[i % len(SERIES)],
            "linestyle": LINESTYLES[i % len(LINESTYLES)],
            "marker": MARKERS[i % len(MARKERS)]}


def matplotlib() -> Any:
    """Import matplotlib, or explain how to install it (the ``[plot]`` extra)."""
    try:
        import matplotlib as mpl
    except ImportError as exc:
        raise ImportError(
            "trueprob's plots need matplotlib, which is not installed; install it with: "
            "pip install 'trueprob[plot]'"
        ) from exc
    return mpl


@contextlib.contextmanager
def style() -> Iterator[None]:
    """``matplotlib.rc_context`` with :data:`RC`: the style for one drawing or saving call."""
    mpl = matplotlib()
    with mpl.rc_context(RC):
        yield
