"""Drawing the diagrams: each function draws one dataclass of
:mod:`trueprob.report.plots.data` and returns the artists it made.

Every function takes ``ax=None`` (then it makes a new pyplot figure) and draws inside
``matplotlib.rc_context`` with trueprob's style (:mod:`trueprob.report.plots.style`); no global
setting is changed. matplotlib is imported only when a function here runs (the ``[plot]``
extra).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from trueprob.analysis.diagrams import (
    BitsData,
    ClasswiseData,
    CompareData,
    ReliabilityData,
    SmoothCurveData,
)
from trueprob.report.plots.style import HATCHES, ROLES, matplotlib, series_style, style

#: Marker area (points^2) of a bin holding all the rows; areas scale with the bin's share.
MAX_MARKER_AREA = 160.0
MIN_MARKER_AREA = 6.0


def _pyplot() -> Any:
    matplotlib()
    import matplotlib.pyplot as plt

    return plt


def _new_axes(figsize: tuple[float, float], nrows: int = 1, ncols: int = 1,
              **kwargs: Any) -> tuple[Any, Any]:
    return _pyplot().subplots(nrows, ncols, figsize=figsize, squeeze=False, **kwargs)


def _marker_area(share: np.ndarray) -> np.ndarray:
    return MIN_MARKER_AREA + (MAX_MARKER_AREA - MIN_MARKER_AREA) * np.sqrt(np.clip(share, 0, 1))


def _unit_square(ax: Any, xlabel: str, ylabel: str) -> Any:
    diagonal = ax.plot([0, 1], [0, 1], linestyle=":", color=ROLES["diagonal"], linewidth=1.0,
                       label="perfect calibration", zorder=1)[0]
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal", adjustable="box")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return diagonal


def _below(ax: Any, size: str = "24%", pad: float = 0.08) -> Any:
    from mpl_toolkits.axes_grid1 import make_axes_locatable

    return make_axes_locatable(ax).append_axes("bottom", size=size, pad=pad, sharex=ax)


def _boxes(lower: np.ndarray, upper: np.ndarray, low: np.ndarray, high: np.ndarray) -> Any:
    """Rectangles [lower_b, upper_b] x [low_b, high_b] as one PolyCollection (fast to draw)."""
    matplotlib()
    from matplotlib.collections import PolyCollection

    verts = [[(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
             for x0, x1, y0, y1 in zip(lower, upper, low, high, strict=True)]
    return PolyCollection(verts, facecolors=ROLES["band"], alpha=0.35, linewidths=0,
                          zorder=0)


def _gap_patches(ax: Any, x: np.ndarray, acc: np.ndarray, conf: np.ndarray,
                 width: np.ndarray) -> Any:
    """Bars from acc_b up (or down) to conf_b: over-confident red ////, under-confident blue."""
    over = conf >= acc
    colors = [ROLES["over_confident"] if o else ROLES["under_confident"] for o in over]
    bars = ax.bar(x, conf - acc, bottom=acc, width=width, color=colors, alpha=0.55,
                  edgecolor=colors, linewidth=0.6, zorder=2)
    for patch, o in zip(bars.patches, over, strict=True):
        patch.set_hatch(HATCHES["over_confident" if o else "under_confident"])
        patch.set_facecolor("none")
        patch.set_alpha(1.0)
    return bars


# --------------------------------------------------------------------------- reliability
@dataclass(frozen=True, eq=False)
class ReliabilityArtists:
    """What :func:`plot_reliability` drew: the diagram's axes and the histogram's axes; the
    diagonal, the accuracy line and points (one per non-empty bin, area by the bin's share),
    the interval boxes (``band``), the gap bars and the histogram bars."""

    figure: Any
    ax: Any
    hist_ax: Any
    diagonal: Any
    line: Any
    points: Any
    band: Any
    gaps: Any
    hist: Any
    count_labels: tuple[Any, ...]


def plot_reliability(data: ReliabilityData, /, *, ax: Any = None, hist_ax: Any = None,
                     title: str | None = None, count_labels: bool = True,
                     series: int = 0) -> ReliabilityArtists:
    """Top-label reliability diagram with interval boxes, gap bars and the bin histogram.

    For every non-empty bin b: a point at (conf_b, acc_b) whose area grows with the bin's
    share W_b / W; a grey box over the bin spanning the Wilson interval of acc_b (wide for
    sparse bins); a hatched bar from acc_b to conf_b (red //// over-confident, blue \\\\
    under-confident); below, the share of rows per bin with its row count n_b. The dotted
    diagonal is perfect calibration.

    Parameters
    ----------
    data : ReliabilityData
        From :func:`~trueprob.report.plots.reliability_data`.
    ax : matplotlib Axes, optional
        Where to draw the diagram (default: a new figure).
    hist_ax : matplotlib Axes, optional
        Where to draw the histogram (default: a new axes below ``ax``).
    title : str, optional
        Default: the data's label and its ECE.
    count_labels : bool
        Write n_b above the histogram bars (default True for B <= 20).
    series : int
        Colour and marker of the i-th series (:func:`~trueprob.report.plots.style.series_style`),
        to match an overlay of several sets of predictions.

    Returns
    -------
    ReliabilityArtists

    Examples
    --------
    >>> import numpy as np, trueprob
    >>> from trueprob.report.plots import reliability_data, plot_reliability
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=(500, 4)) * 3; y = rng.integers(0, 4, 500)
    >>> data = reliability_data(trueprob.evaluate(y, logits=z))
    >>> art = plot_reliability(data)
    >>> len(art.points.get_offsets()) == int(data.nonempty.sum()) == len(art.band.patches)
    True
    >>> import matplotlib.pyplot as plt; plt.close(art.figure)
    """
    with style():
        if ax is None:
            _, axes = _new_axes((4.2, 5.2))
            ax = axes[0, 0]
        if hist_ax is None:
            hist_ax = _below(ax)
        ok = data.nonempty
        lower, upper = data.edges[:-1], data.edges[1:]
        widths = upper - lower
        centers = (lower + upper) / 2
        diagonal = _unit_square(ax, "", "accuracy")
        band = ax.bar(lower[ok], (data.high - data.low)[ok], bottom=data.low[ok],
                      width=widths[ok], align="edge", color=ROLES["band"], alpha=0.35,
                      linewidth=0, zorder=0,
                      label=f"{data.level:.0%} Wilson interval")
        gaps = _gap_patches(ax, data.confidence[ok], data.accuracy[ok], data.confidence[ok],
                            widths[ok] * 0.45)
        s = series_style(series)
        line = ax.plot(data.confidence[ok], data.accuracy[ok], color=s["color"],
                       linestyle=s["linestyle"], linewidth=0.9, alpha=0.6, zorder=3)[0]
        points = ax.scatter(data.confidence[ok], data.accuracy[ok],
                            s=_marker_area(data.share[ok]), color=s["color"], marker=s["marker"],
                            edgecolor="white", linewidth=0.6, zorder=4, clip_on=False,
                            label="accuracy (area: share of rows)")
        ax.tick_params(labelbottom=False)
        ax.set_title(title if title is not None else _title(data))
        hist = hist_ax.bar(centers, data.share, width=widths * 0.9, color=ROLES["histogram"],
                           linewidth=0, zorder=2)
        # log scale: a bin with 0.1 % of the rows stays visible beside one with 90 %
        hist_ax.set_yscale("log")
        shares = data.share[ok]
        floor = float(np.min(shares)) / 3 if shares.size else 1e-3
        hist_ax.set_ylim(floor, 1.0 if not count_labels else 8.0)
        labels: list[Any] = []
        if count_labels and data.edges.size <= 21:
            for x, sh, n in zip(centers[ok], shares, data.count[ok], strict=True):
                labels.append(hist_ax.text(x, sh * 1.25, compact_count(n), ha="center",
                                           va="bottom", fontsize=6.5, color="#333333"))
        hist_ax.set_xlim(0, 1)
        hist_ax.set_xlabel("confidence (top-label probability)")
        hist_ax.set_ylabel("share of\nrows (log)")
        hist_ax.spines["top"].set_visible(False)
        hist_ax.spines["right"].set_visible(False)
        # the legend goes below the histogram, off the data (a fixed pad in font sizes)
        _reliability_legend(hist_ax, points, band)
    return ReliabilityArtists(ax.figure, ax, hist_ax, diagonal, line, points, band, gaps, hist,
                              tuple(labels))


def compact_count(n: float) -> str:
    """A row count short enough to sit above a histogram bar: 812, 9.4k, 74k, 1.5M, 2.1G.

    >>> [compact_count(n) for n in (812, 9_412, 74_432, 999_999, 1_523_000, 2.1e9)]
    ['812', '9.4k', '74k', '1.0M', '1.5M', '2.1G']
    """
    n = int(n)
    if n < 1000:
        return str(n)
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= scale * 0.9995:
            value = n / scale
            return f"{value:.1f}{suffix}" if round(value, 1) < 10 else f"{value:.0f}{suffix}"
    return str(n)


def _title(data: ReliabilityData) -> str:
    name = f"{data.label}: " if data.label else ""
    return f"{name}ECE {data.ece:.4f}"


def _reliability_legend(ax: Any, points: Any, band: Any) -> None:
    mpl = matplotlib()
    from matplotlib.patches import Patch

    handles = [
        mpl.lines.Line2D([], [], linestyle=":", color=ROLES["diagonal"],
                         label="perfect calibration"),
        points,
        Patch(facecolor=ROLES["band"], alpha=0.35, label=band.get_label()),
        Patch(facecolor="none", edgecolor=ROLES["over_confident"],
              hatch=HATCHES["over_confident"], label="over-confident gap"),
        Patch(facecolor="none", edgecolor=ROLES["under_confident"],
              hatch=HATCHES["under_confident"], label="under-confident gap"),
    ]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncols=2,
              handlelength=1.6, borderaxespad=3.4, columnspacing=1.0)


# --------------------------------------------------------------------------- overlay
@dataclass(frozen=True, eq=False)
class OverlayArtists:
    """What :func:`plot_reliability_overlay` drew: per series a line with markers and its
    interval error bars."""

    figure: Any
    ax: Any
    diagonal: Any
    lines: tuple[Any, ...]
    errorbars: tuple[Any, ...]


def plot_reliability_overlay(datas: Sequence[ReliabilityData], /, *, ax: Any = None,
                             title: str | None = None) -> OverlayArtists:
    """Several reliability curves on one diagram (e.g. before and after recalibration).

    Each series: its accuracy per non-empty bin against its mean confidence, with the Wilson
    interval of the accuracy as error bars; series differ in colour, line style and marker.

    Examples
    --------
    >>> import numpy as np, trueprob
    >>> from trueprob.report.plots import reliability_data, plot_reliability_overlay
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=(500, 4)); y = rng.integers(0, 4, 500)
    >>> before = reliability_data(trueprob.evaluate(y, logits=3 * z), label="T = 1/3")
    >>> after = reliability_data(trueprob.evaluate(y, logits=z), label="T = 1")
    >>> art = plot_reliability_overlay([before, after])
    >>> [line.get_label() for line in art.lines] == [f"T = 1/3: ECE {before.ece:.4f}",
    ...                                              f"T = 1: ECE {after.ece:.4f}"]
    True
    >>> bool(np.allclose(art.lines[1].get_ydata(), after.accuracy[after.nonempty]))
    True
    >>> import matplotlib.pyplot as plt; plt.close(art.figure)
    """
    if not datas:
        raise ValueError("datas must hold at least one ReliabilityData; got none")
    with style():
        if ax is None:
            _, axes = _new_axes((4.2, 4.2))
            ax = axes[0, 0]
        diagonal = _unit_square(ax, "confidence (top-label probability)", "accuracy")
        lines, bars = [], []
        for i, data in enumerate(datas):
            s = series_style(i)
            ok = data.nonempty
            x, y = data.confidence[ok], data.accuracy[ok]
            err = np.vstack([y - data.low[ok], data.high[ok] - y])
            eb = ax.errorbar(x, y, yerr=np.clip(err, 0, None), fmt="none", ecolor=s["color"],
                             elinewidth=0.9, capsize=2, alpha=0.8, zorder=2 + i)
            line = ax.plot(x, y, color=s["color"], linestyle=s["linestyle"],
                           marker=s["marker"], markersize=4.5, linewidth=1.3, zorder=3 + i,
                           label=_title(data))[0]
            lines.append(line)
            bars.append(eb)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, 0.0), borderaxespad=3.4)
        ax.set_title(title if title is not None else "reliability before and after")
    return OverlayArtists(ax.figure, ax, diagonal, tuple(lines), tuple(bars))


# --------------------------------------------------------------------------- smooth
@dataclass(frozen=True, eq=False)
class SmoothArtists:
    """What :func:`plot_smooth_reliability` drew: the curve, its band and the density."""

    figure: Any
    ax: Any
    density_ax: Any
    diagonal: Any
    curve: Any
    band: Any
    density: Any


def plot_smooth_reliability(data: SmoothCurveData, /, *, ax: Any = None,
                            density_ax: Any = None, title: str | None = None) -> SmoothArtists:
    """The smooth reliability curve (smooth ECE's kernel estimate) with its band and density.

    Drawn against t: y(t) = t + r_s(t), where r_s(t) = accuracy(t) - confidence(t) is the
    smoothed residual whose |r_s| weighted by the density delta_s integrates to the smooth
    ECE; the curve meets the diagonal where the smoothed residual is 0. The band is the
    Wilson interval of the smoothed accuracy shifted the same way; below, delta_s(t).

    Examples
    --------
    >>> import numpy as np
    >>> from trueprob.report.plots import SmoothCurveData, plot_smooth_reliability
    >>> t = np.linspace(0, 1, 11)
    >>> d = SmoothCurveData("model", t, t, t * 0.9, np.ones(11), np.full(11, 50.0),
    ...                     t * 0.9 - 0.05, t * 0.9 + 0.05, 0.95, 0.05, 0.05)
    >>> art = plot_smooth_reliability(d)
    >>> bool(np.allclose(art.curve.get_ydata(), t * 0.9))
    True
    >>> import matplotlib.pyplot as plt; plt.close(art.figure)
    """
    with style():
        if ax is None:
            _, axes = _new_axes((4.2, 5.0))
            ax = axes[0, 0]
        if density_ax is None:
            density_ax = _below(ax, size="20%")
        diagonal = _unit_square(ax, "", "smoothed accuracy, t + r(t)")
        # drawn only where at least one effective row supports the kernel estimate
        shift = np.where(data.supported, data.t - data.confidence, np.nan)
        s = series_style(0)
        band = ax.fill_between(data.t, data.low + shift, data.high + shift, color=s["color"],
                               alpha=0.2, linewidth=0, zorder=1,
                               label=f"{data.level:.0%} band")
        curve = ax.plot(data.t, data.accuracy + shift, color=s["color"], linewidth=1.6,
                        zorder=3, label=f"smoothed reliability (bandwidth {data.bandwidth:.3f})"
                        )[0]
        ax.tick_params(labelbottom=False)
        ax.legend(loc="upper left")
        name = f"{data.label}: " if data.label else ""
        ax.set_title(title if title is not None else f"{name}smooth ECE {data.ece:.4f}")
        density = density_ax.fill_between(data.t, 0, np.nan_to_num(data.density),
                                           color=ROLES["histogram"], alpha=0.8, linewidth=0)
        density_ax.set_xlim(0, 1)
        density_ax.set_ylim(bottom=0)
        density_ax.set_xlabel("confidence t")
        density_ax.set_ylabel("density")
        density_ax.spines["top"].set_visible(False)
        density_ax.spines["right"].set_visible(False)
    return SmoothArtists(ax.figure, ax, density_ax, diagonal, curve, band, density)


# --------------------------------------------------------------------------- classwise
@dataclass(frozen=True, eq=False)
class ClasswiseArtists:
    """What :func:`plot_classwise_grid` drew: one axes per panel (in ``data.classes``
    order), with its points and interval boxes; unused axes of a given grid are hidden."""

    figure: Any
    axes: tuple[Any, ...]
    points: tuple[Any, ...]
    bands: tuple[Any, ...]


def plot_classwise_grid(data: ClasswiseData, /, *, ax: Any = None,
                        ncols: int | None = None) -> ClasswiseArtists:
    """A small reliability diagram per class: observed frequency of class k against q_k.

    Each panel shows, per non-empty bin, the mean predicted probability of the class and how
    often it was the label (point area by the bin's share of rows, grey box the Wilson
    interval), and the class's classwise ECE in its title. For large K the data hold the
    worst classes only (see :func:`~trueprob.report.plots.classwise_data`).

    Parameters
    ----------
    data : ClasswiseData
    ax : array of matplotlib Axes, optional
        At least one axes per panel (default: a new figure with ``ncols`` columns).
    ncols : int, optional
        Columns of a new grid (default: up to 5).

    Examples
    --------
    >>> import numpy as np
    >>> from trueprob.report.plots import ClasswiseData, plot_classwise_grid
    >>> e = np.linspace(0, 1, 3); w = np.array([[3.0, 1.0], [2.0, 2.0]])
    >>> d = ClasswiseData(np.array([0, 1]), ("cat", "dog"), e, w, w.astype(int),
    ...                   np.array([[.2, .8], [.3, .7]]), np.array([[.1, 1.], [.5, .5]]),
    ...                   np.zeros((2, 2)), np.ones((2, 2)), np.array([.1, .2]), 2, 4.0,
    ...                   0.95, "all 2 classes")
    >>> art = plot_classwise_grid(d)
    >>> [a.get_title() for a in art.axes]
    ['cat · ECE 0.1000', 'dog · ECE 0.2000']
    >>> import matplotlib.pyplot as plt; plt.close(art.figure)
    """
    p = len(data.classes)
    with style():
        if ax is None:
            cols = ncols if ncols is not None else min(p, 5)
            rows = -(-p // cols)
            _, grid = _new_axes((1.75 * cols + 0.5, 1.85 * rows + 0.4), rows, cols)
            axes = list(np.ravel(grid))
        else:
            axes = list(np.ravel(np.asarray(ax, dtype=object)))
            cols = np.asarray(ax, dtype=object).shape[-1] if np.ndim(ax) == 2 else len(axes)
            if len(axes) < p:
                raise ValueError(f"ax must hold at least one axes per panel ({p}); got "
                                 f"{len(axes)}")
        lower, upper = data.edges[:-1], data.edges[1:]
        s = series_style(0)
        points, bands = [], []
        for i, a in enumerate(axes[:p]):
            ok = data.weight[i] > 0
            a.plot([0, 1], [0, 1], linestyle=":", color=ROLES["diagonal"], linewidth=0.8)
            bands.append(a.add_collection(_boxes(lower[ok], upper[ok], data.low[i][ok],
                                                 data.high[i][ok])))
            share = data.weight[i][ok] / data.total_weight
            a.plot(data.confidence[i][ok], data.frequency[i][ok], color=s["color"],
                   linewidth=0.9)
            points.append(a.scatter(data.confidence[i][ok], data.frequency[i][ok],
                                    s=_marker_area(share) * 0.45, color=s["color"],
                                    marker=s["marker"], edgecolor="white", linewidth=0.4,
                                    zorder=3))
            a.set_xlim(0, 1)
            a.set_ylim(0, 1)
            a.set_aspect("equal", adjustable="box")
            first_col, last_row = i % cols == 0, i >= p - cols
            a.set_xticks([0, 0.5, 1], ["0", ".5", "1"] if last_row else [])
            a.set_yticks([0, 0.5, 1], ["0", ".5", "1"] if first_col else [])
            a.set_title(f"{data.names[i]} · ECE {data.ece[i]:.4f}", fontsize=8)
        for a in axes[p:]:
            a.set_visible(False)
        fig = axes[0].figure
        if ax is None:
            fig.supxlabel("predicted probability of the class", fontsize=9)
            fig.supylabel("observed frequency of the class", fontsize=9)
            fig.suptitle(f"classwise reliability: {data.selection}", fontsize=9.5)
    return ClasswiseArtists(fig, tuple(axes[:p]), tuple(points), tuple(bands))


# --------------------------------------------------------------------------- bits
@dataclass(frozen=True, eq=False)
class BitsArtists:
    """What :func:`plot_bits` drew: the segments by part ("remaining", "discrimination",
    "miscalibration", "entropy", "kl"), each a tuple of bar containers (one per row)."""

    figure: Any
    ax: Any
    segments: dict[str, tuple[Any, ...]]
    labels: tuple[str, ...]


def plot_bits(data: BitsData, /, *, ax: Any = None, title: str | None = None) -> BitsArtists:
    """"Where the bits go": the log loss split into MCB, DSC and UNC.

    For each set of predictions two bars share the grey segment S(r) = UNC - DSC (the loss
    left after recalibration): the label entropy UNC = S(r) + DSC (green, dotted: what the
    model resolves) and the log loss S(q) = S(r) + MCB (red, hatched: what recalibration
    would recover). For soft targets a third bar splits the cross-entropy into the entropy
    H(p) of the targets (no model can remove it) and KL(p || q). A negative MCB (possible
    with cross-fitted estimators) is drawn as 0 and labelled with its value.

    Examples
    --------
    >>> from trueprob.report.plots import BitsData, BitsRow, plot_bits
    >>> row = BitsRow("model", 0.52, 0.11, 2.9, 3.32, 0.41, None, None, "temperature")
    >>> art = plot_bits(BitsData((row,), "bits"))
    >>> art.labels
    ('model: label entropy H(Y)', 'model: log loss')
    >>> [float(round(b.get_width(), 2)) for b in art.segments["miscalibration"][0]]
    [0.11]
    >>> import matplotlib.pyplot as plt; plt.close(art.figure)
    """
    unit = data.unit
    bars: list[tuple[str, list[tuple[str, float]]]] = []
    for row in data.rows:
        remaining = row.unc - row.dsc
        bars.append((f"{row.label}: label entropy H(Y)",
                     [("remaining", remaining), ("discrimination", row.dsc)]))
        bars.append((f"{row.label}: log loss", [("remaining", remaining),
                                                 ("miscalibration", row.mcb)]))
        if row.entropy is not None and row.kl is not None:
            bars.append((f"{row.label}: cross-entropy", [("entropy", row.entropy),
                                                          ("kl", row.kl)]))
    names = {"remaining": f"left after recalibration S(r) ({unit})",
             "discrimination": "discrimination DSC (resolved by the model)",
             "miscalibration": "miscalibration MCB (recalibration recovers it)",
             "entropy": "entropy H(p) of the soft targets",
             "kl": "KL(p || q): what the model costs"}
    segments: dict[str, list[Any]] = {k: [] for k in names}
    with style():
        if ax is None:
            _, axes = _new_axes((6.4, 0.5 * len(bars) + 1.3))
            ax = axes[0, 0]
        ys = np.arange(len(bars))[::-1].astype(float)
        total_max = max(sum(max(v, 0.0) for _, v in parts) for _, parts in bars)
        for y, (_, parts) in zip(ys, bars, strict=True):
            left = 0.0
            for part, value in parts:
                width = max(value, 0.0)
                color = ROLES["uncertainty"] if part == "remaining" else ROLES[
                    {"discrimination": "discrimination", "miscalibration": "miscalibration",
                     "entropy": "entropy", "kl": "kl"}[part]]
                hatch = HATCHES.get(part)
                filled = part in ("remaining", "entropy")
                container = ax.barh(y, width, left=left, height=0.62,
                                    color=color if filled else "white",
                                    edgecolor="#555555" if filled else color,
                                    hatch=hatch, linewidth=0.8,
                                    label=names[part] if not segments[part] else None)
                segments[part].append(container)
                if part != "remaining":
                    ax.text(left + width + 0.01 * total_max, y, f"{value:.3f}", va="center",
                            fontsize=7.5)
                left += width
            if parts[0][0] == "remaining" and parts[0][1] > 0.12 * total_max:
                ax.text(parts[0][1] / 2, y, f"{parts[0][1]:.3f}", va="center", ha="center",
                        fontsize=7.5)
        ax.set_yticks(ys, [label for label, _ in bars])
        ax.set_xlim(0, total_max * 1.18)
        ax.set_xlabel(f"{unit} per example")
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=7.5)
        estimators = sorted({r.estimator for r in data.rows})
        ax.set_title(title if title is not None else
                     f"where the bits go: log loss = UNC - DSC + MCB ({', '.join(estimators)} "
                     "recalibration)")
    return BitsArtists(ax.figure, ax, {k: tuple(v) for k, v in segments.items() if v},
                       tuple(label for label, _ in bars))


# --------------------------------------------------------------------------- compare
@dataclass(frozen=True, eq=False)
class CompareArtists:
    """What :func:`plot_compare` drew: one axes and one bar container per metric."""

    figure: Any
    axes: tuple[Any, ...]
    bars: tuple[Any, ...]


def plot_compare(data: CompareData, /, *, ax: Any = None) -> CompareArtists:
    """``trueprob compare`` as small multiples: one horizontal bar panel per metric.

    Methods are rows (first at the top), each with its own colour and hatch; every bar is
    labelled with its value. Lower is better for NLL, Brier and the ECEs, higher for
    accuracy; unavailable values are marked "n/a".

    Examples
    --------
    >>> from trueprob.report.plots import compare_data, plot_compare
    >>> rows = [{"method": "none", "nll": 0.9, "brier": 0.1, "ece": 0.05,
    ...          "classwise_ece": 0.01, "accuracy": 0.9},
    ...         {"method": "temperature", "nll": 0.4, "brier": 0.09, "ece": 0.01,
    ...          "classwise_ece": 0.01, "accuracy": 0.9}]
    >>> art = plot_compare(compare_data({"rows": rows, "unit": "nats"}))
    >>> [float(b.get_width()) for b in art.bars[0]]
    [0.9, 0.4]
    >>> import matplotlib.pyplot as plt; plt.close(art.figure)
    """
    m, c = data.values.shape
    hatches = (None, "////", "..", "xx", "\\\\\\\\", "++")
    with style():
        if ax is None:
            _, grid = _new_axes((2.3 * c + 1.4, 0.32 * m + 1.2), 1, c, sharey=True)
            axes = list(np.ravel(grid))
        else:
            axes = list(np.ravel(np.asarray(ax, dtype=object)))
            if len(axes) < c:
                raise ValueError(f"ax must hold one axes per metric ({c}); got {len(axes)}")
        ys = np.arange(m)[::-1].astype(float)
        containers = []
        colors = [series_style(i)["color"] for i in range(m)]
        for j, a in enumerate(axes[:c]):
            values = data.values[:, j]
            finite = np.isfinite(values)
            widths = np.where(finite, values, 0.0)
            bars = a.barh(ys, widths, height=0.7, color=colors, edgecolor="#333333",
                          linewidth=0.5)
            for i, patch in enumerate(bars.patches):
                patch.set_hatch(hatches[i % len(hatches)])
            containers.append(bars)
            top = float(np.max(widths)) if np.any(finite) else 1.0
            for y, v, ok in zip(ys, values, finite, strict=True):
                a.text((v if ok else 0.0) + 0.02 * top, y, f"{v:.4f}" if ok else "n/a",
                       va="center", fontsize=7)
            a.set_xlim(0, top * 1.45 if top > 0 else 1.0)
            better = "higher" if data.metrics[j] == "accuracy" else "lower"
            a.set_title(f"{data.headings[j]}\n({better} is better)", fontsize=8.5)
            a.tick_params(axis="x", labelsize=7)
        axes[0].set_yticks(ys, list(data.methods))
    return CompareArtists(axes[0].figure, tuple(axes[:c]), tuple(containers))
