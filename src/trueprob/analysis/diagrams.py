"""What each diagram shows, computed apart from drawing it (no matplotlib here).

Part of the analysis layer: the report's figures are drawn by :mod:`trueprob.report.plots`
from the dataclasses built here (``trueprob.report.plots.data`` re-exports them).

Every builder takes results that trueprob already computed (a :class:`~trueprob.Report`, the
:class:`~trueprob.stats.EvaluationStats` it was finalised from, a
:class:`~trueprob.Decomposition`, the smooth-ECE curve, the rows of ``trueprob compare``) and
returns a frozen dataclass of numpy arrays; the drawing functions in
:mod:`trueprob.report.plots.draw` only draw these. So the numbers of a figure are the numbers
of the tables beside it, and they can be tested as values.

Intervals of a bin's accuracy are Wilson score intervals at the bin's effective number of rows
(see :func:`wilson_interval`): a bin with three rows gets a wide interval and a bin with three
thousand a narrow one, so sparse bins do not look as trustworthy as full ones.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import special

if TYPE_CHECKING:
    from trueprob.decomposition import Decomposition
    from trueprob.results import Report
    from trueprob.stats.evaluation import EvaluationStats

#: At most this many panels in a classwise grid; beyond, the worst classes are shown.
MAX_PANELS = 20
#: compare's columns (Report field, heading), as in ``trueprob compare``.
COMPARE_COLUMNS = (("nll", "NLL"), ("brier", "Brier"), ("ece", "ECE"),
                   ("classwise_ece", "classwise ECE"), ("accuracy", "accuracy"))


def check_level(level: float) -> float:
    """``level`` as a float in (0, 1) (the coverage of an interval or band), else a
    ValueError naming it."""
    if isinstance(level, bool) or not isinstance(level, (int, float)) \
            or not 0.0 < float(level) < 1.0:
        raise ValueError(f"level must be in (0, 1), e.g. 0.95; got {level!r}")
    return float(level)


def wilson_interval(p: Any, n: Any, /, *, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of a proportion p observed on n (effective) rows.

    With z = Phi^-1((1 + level) / 2)::

        center = (p + z^2 / (2n)) / (1 + z^2 / n)
        half   = z sqrt(p (1 - p) / n + z^2 / (4 n^2)) / (1 + z^2 / n)
        [low, high] = [center - half, center + half]

    (Wilson 1927). It stays inside [0, 1], is wide for small n (for n = 1 and p = 1 at 95 %:
    [0.21, 1]) and is undefined (NaN) for n = 0. For weighted rows pass Kish's effective
    number n = W^2 / sum_i w_i^2; for outcomes in [0, 1] (soft targets) the interval is
    conservative, since a [0, 1] variable with mean p has variance at most p (1 - p).

    Parameters
    ----------
    p : array
        Observed proportions in [0, 1].
    n : array
        (Effective) numbers of rows, >= 0; broadcast against ``p``.
    level : float
        Coverage (default 0.95).

    Returns
    -------
    (low, high) : tuple of arrays

    Examples
    --------
    >>> low, high = wilson_interval(np.array([0.5, 0.0]), np.array([10, 10]))
    >>> np.round(low, 4), np.round(high, 4)
    (array([0.2366, 0.    ]), array([0.7634, 0.2775]))
    """
    level = check_level(level)
    p = np.asarray(p, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    z = float(special.ndtri((1.0 + level) / 2.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        z2n = z * z / n
        denom = 1.0 + z2n
        center = (p + z2n / 2.0) / denom
        half = z * np.sqrt(p * (1.0 - p) / n + z2n / (4.0 * n)) / denom
        low = np.where(n > 0, np.clip(center - half, 0.0, 1.0), np.nan)
        high = np.where(n > 0, np.clip(center + half, 0.0, 1.0), np.nan)
    return low, high


def effective_count(weight: Any, weight_squares: Any | None, count: Any, /) -> np.ndarray:
    """Kish's effective number of rows W^2 / sum w_i^2 (= the row count for unit weights).

    ``weight_squares=None`` means unit weights: the row count is returned.

    Examples
    --------
    >>> effective_count(np.array([4.0, 0.0]), np.array([8.0, 0.0]), np.array([2, 0]))
    array([2., 0.])
    """
    count = np.asarray(count, dtype=np.float64)
    if weight_squares is None:
        return count
    w = np.asarray(weight, dtype=np.float64)
    w2 = np.asarray(weight_squares, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(w2 > 0, w * w / np.where(w2 > 0, w2, 1.0), 0.0)


# --------------------------------------------------------------------------- reliability
@dataclass(frozen=True, eq=False)
class ReliabilityData:
    """The top-label reliability diagram of one set of predictions (B bins).

    ``edges`` (B+1,) bin edges; per bin b: ``weight`` W_b, ``count`` n_b (rows with positive
    weight), ``confidence`` conf_b and ``accuracy`` acc_b (weighted means; NaN for an empty
    bin), ``effective_count`` W_b^2 / sum_{i in b} w_i^2 and the Wilson interval
    [``low``, ``high``] of acc_b at ``level``. ``total_weight`` W, ``ece`` the report's ECE,
    ``closed`` which side of each bin is closed, ``label`` the name of the predictions.
    """

    label: str
    edges: np.ndarray
    weight: np.ndarray
    count: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray
    effective_count: np.ndarray
    low: np.ndarray
    high: np.ndarray
    level: float
    total_weight: float
    ece: float
    closed: str

    @property
    def share(self) -> np.ndarray:
        """W_b / W: the share of the rows (weight) in each bin."""
        return self.weight / self.total_weight

    @property
    def gap(self) -> np.ndarray:
        """conf_b - acc_b (positive: over-confident; NaN for empty bins)."""
        return self.confidence - self.accuracy

    @property
    def nonempty(self) -> np.ndarray:
        return self.weight > 0

    @property
    def mean_confidence(self) -> float:
        """(1/W) sum_b W_b conf_b, the weighted mean confidence."""
        ok = self.nonempty
        return float(np.sum(self.weight[ok] * self.confidence[ok]) / self.total_weight)

    @property
    def accuracy_overall(self) -> float:
        """(1/W) sum_b W_b acc_b, the weighted accuracy."""
        ok = self.nonempty
        return float(np.sum(self.weight[ok] * self.accuracy[ok]) / self.total_weight)


def reliability_data(report: Report, /, *, weight_squares: Any | None = None,
                     level: float = 0.95, label: str = "") -> ReliabilityData:
    """The reliability diagram's data, read off a Report's bins.

    Per bin b: the report's W_b, n_b, conf_b, acc_b, and the Wilson interval
    (:func:`wilson_interval`) of acc_b at the effective count n_eff,b = W_b^2 / sum_{i in b}
    w_i^2.

    Parameters
    ----------
    report : Report
        From :func:`trueprob.evaluate` (or ``EvaluationStats.finalize``).
    weight_squares : array (B,), optional
        sum_{i in b} w_i^2 per bin, for weighted rows (the bin weights of the same evaluation
        run with ``sample_weight=w**2``). Omit for unit weights (n_eff,b = n_b).
    level : float
        Coverage of the intervals (default 0.95).
    label : str
        Name of the predictions (e.g. "uncalibrated").

    Examples
    --------
    >>> import numpy as np, trueprob
    >>> q = np.array([0.9, 0.9, 0.9, 0.6]); y = np.array([1, 1, 0, 1])
    >>> d = reliability_data(trueprob.evaluate(y, probs=q), label="model")
    >>> d.count[d.nonempty].tolist(), np.round(d.accuracy[d.nonempty], 4).tolist()
    ([1, 3], [1.0, 0.6667])
    >>> np.round(d.low[d.nonempty], 3).tolist()   # Wilson at n = 1 and n = 3
    [0.207, 0.208]
    """
    level = check_level(level)
    bins = report.bins
    edges = np.array([b.lower for b in bins] + [bins[-1].upper], dtype=np.float64)
    weight = np.array([b.weight for b in bins], dtype=np.float64)
    count = np.array([b.count for b in bins], dtype=np.int64)
    conf = np.array([b.confidence for b in bins], dtype=np.float64)
    acc = np.array([b.accuracy for b in bins], dtype=np.float64)
    if weight_squares is not None:
        weight_squares = np.asarray(weight_squares, dtype=np.float64)
        if weight_squares.shape != weight.shape:
            raise ValueError(f"weight_squares must have one value per bin ({weight.size}); "
                             f"got shape {weight_squares.shape}")
    n_eff = effective_count(weight, weight_squares, count)
    low, high = wilson_interval(np.nan_to_num(acc), n_eff, level=level)
    return ReliabilityData(label, edges, weight, count, conf, acc, n_eff, low, high, level,
                           float(report.weight), float(report.ece), report.settings.closed)


# --------------------------------------------------------------------------- smooth
@dataclass(frozen=True, eq=False)
class SmoothCurveData:
    """The smoothed reliability curve of the smooth ECE (Błasiok & Nakkiran 2023).

    On the grid ``t``: ``confidence`` (kernel-weighted mean of c), ``accuracy``
    (kernel-weighted mean of a), ``density`` delta_s(t) (integrates to 1 over [0, 1]) and a
    pointwise band [``low``, ``high``] at ``level`` from the kernel's ``effective_count``
    n_eff(t); ``ece`` smECE at ``bandwidth`` s. Where the density is negligible the curve and
    band are NaN; :attr:`supported` marks where n_eff(t) >= 1.
    """

    label: str
    t: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray
    density: np.ndarray
    effective_count: np.ndarray
    low: np.ndarray
    high: np.ndarray
    level: float
    ece: float
    bandwidth: float

    @property
    def supported(self) -> np.ndarray:
        """Where the estimate rests on at least one effective row (n_eff(t) >= 1) and is
        finite; elsewhere (no data within reach of the kernel) it is not drawn."""
        with np.errstate(invalid="ignore"):
            return (self.effective_count >= 1.0) & np.isfinite(self.accuracy) \
                & np.isfinite(self.confidence)


def smooth_curve_data(smooth: Any, /, *, effective_total: float | None = None,
                      level: float = 0.95, label: str = "") -> SmoothCurveData:
    """The smooth reliability curve and its band, from ``smooth_reliability``'s result.

    The band is the Wilson interval (:func:`wilson_interval`) of the smoothed accuracy at the
    kernel's effective number of rows n_eff(t) = 2 sqrt(pi) s W delta_s(t): for a
    Nadaraya-Watson mean with a Gaussian kernel of width s the variance is
    sigma^2(t) R(K) / (W s delta(t)) with R(K) = int K^2 = 1 / (2 sqrt(pi)) (the standard
    asymptotic formula; near 0 and 1 the reflected kernel at most doubles R(K), so the band
    is up to sqrt(2) too narrow within about s of the ends).

    Parameters
    ----------
    smooth : SmoothReliability
        From :func:`trueprob.metrics.smooth.smooth_reliability` (``t``, ``confidence``,
        ``accuracy``, ``density``, ``ece``, ``bandwidth``, ``weight``).
    effective_total : float, optional
        Kish's W^2 / sum w_i^2 for weighted rows; default the total weight W.
    level : float
        Coverage of the band.
    """
    level = check_level(level)
    total = float(smooth.weight) if effective_total is None else float(effective_total)
    density = np.asarray(smooth.density, dtype=np.float64)
    n_eff = 2.0 * math.sqrt(math.pi) * float(smooth.bandwidth) * total * density
    acc = np.asarray(smooth.accuracy, dtype=np.float64)
    low, high = wilson_interval(np.clip(np.nan_to_num(acc), 0.0, 1.0), n_eff, level=level)
    missing = ~np.isfinite(acc)
    low, high = np.where(missing, np.nan, low), np.where(missing, np.nan, high)
    return SmoothCurveData(label, np.asarray(smooth.t, dtype=np.float64),
                           np.asarray(smooth.confidence, dtype=np.float64), acc, density,
                           n_eff, low, high, level, float(smooth.ece),
                           float(smooth.bandwidth))


# --------------------------------------------------------------------------- classwise
@dataclass(frozen=True, eq=False)
class ClasswiseData:
    """One small reliability diagram per class (or per worst class, for large K).

    For the P classes shown (``classes``, in the order drawn): per bin b of the classwise
    binning, ``weight`` W_kb, ``count``, ``confidence`` (mean q_ik in the bin), ``frequency``
    (mean t_ik: how often class k was the label), the Wilson interval [``low``, ``high``] of
    the frequency, and the class's classwise ECE ``ece`` (the report's
    ``classwise_ece_per_class``). ``selection`` says which classes were chosen.
    """

    classes: np.ndarray
    names: tuple[str, ...]
    edges: np.ndarray
    weight: np.ndarray
    count: np.ndarray
    confidence: np.ndarray
    frequency: np.ndarray
    low: np.ndarray
    high: np.ndarray
    ece: np.ndarray
    n_classes: int
    total_weight: float
    level: float
    selection: str


def _class_names(names: Sequence[str] | None, k: int) -> tuple[str, ...]:
    if names is None:
        return tuple(f"class {i}" for i in range(k))
    names = tuple(str(n) for n in names)
    if len(names) != k:
        raise ValueError(f"class_names must have one name per class ({k}); got {len(names)}")
    return names


def classwise_data(stats: EvaluationStats, report: Report, /, *,
                   weight_squares: EvaluationStats | None = None,
                   max_panels: int = MAX_PANELS, class_names: Sequence[str] | None = None,
                   level: float = 0.95) -> ClasswiseData:
    """Per-class reliability data from the state a Report was finalised from.

    The classwise bins of ``stats`` give, for class k and bin b, W_kb, sum w q_ik and
    sum w t_ik; their means are the panel's points. The classwise ECE of each class is the
    report's ``classwise_ece_per_class[k]`` (the same numbers as the per-class table). With
    K <= ``max_panels`` every class is shown in class order; otherwise the ``max_panels``
    classes with the largest classwise ECE, worst first.

    Parameters
    ----------
    stats : EvaluationStats
        A state with the ``"classwise"`` part, after the rows were added.
    report : Report
        ``stats.finalize(...)`` (gives the per-class ECE).
    weight_squares : EvaluationStats, optional
        For weighted rows: the same evaluation with ``sample_weight=w**2``, whose classwise
        bin weights are sum w_i^2 (for the effective counts of the intervals).
    max_panels : int
        Most panels to draw (default 20).
    class_names : sequence of str, optional
        A name per class (default "class k").
    level : float
        Coverage of the intervals.

    Examples
    --------
    >>> import numpy as np, trueprob
    >>> from trueprob.stats import EvaluationStats
    >>> z = np.array([[2.0, 0.0, 0.0], [0.0, 3.0, 0.0], [1.0, 0.0, 2.0], [0.0, 0.5, 0.0]])
    >>> stats = EvaluationStats(3).update(np.array([0, 1, 0, 2]), logits=z)
    >>> d = classwise_data(stats, stats.finalize(), max_panels=2)
    >>> d.selection, d.classes.tolist()
    ('the 2 classes with the largest classwise ECE of 3', [2, 0])
    """
    level = check_level(level)
    if isinstance(max_panels, bool) or not isinstance(max_panels, (int, np.integer)) \
            or max_panels < 1:
        raise ValueError(f"max_panels must be a positive integer; got {max_panels!r}")
    if "classwise" not in stats.parts or report.classwise_ece_per_class is None:
        raise ValueError("classwise reliability needs the full probability vector (a state "
                         "with the 'classwise' part and a report with classwise ECE)")
    k = stats.n_classes
    if report.n_classes != k:
        raise ValueError(f"report has K={report.n_classes} classes but stats has K={k}")
    names = _class_names(class_names, k)
    arrays = stats.classwise.arrays()  # (K, B) sums
    weight, count = arrays["weight"], arrays["count"]
    with np.errstate(invalid="ignore", divide="ignore"):
        conf = np.where(weight > 0, arrays["sum_score"] / weight, np.nan)
        freq = np.where(weight > 0, arrays["sum_outcome"] / weight, np.nan)
    w2 = None if weight_squares is None else weight_squares.classwise.arrays()["weight"]
    n_eff = effective_count(weight, w2, count)
    low, high = wilson_interval(np.clip(np.nan_to_num(freq), 0.0, 1.0), n_eff, level=level)
    ece = np.asarray(report.classwise_ece_per_class, dtype=np.float64)
    if k <= max_panels:
        shown = np.arange(k)
        selection = f"all {k} classes"
    else:
        shown = np.argsort(-ece, kind="stable")[:max_panels]
        selection = f"the {max_panels} classes with the largest classwise ECE of {k}"
    return ClasswiseData(shown, tuple(names[i] for i in shown),
                         stats.classwise.binning.edge_array(), weight[shown], count[shown],
                         conf[shown], freq[shown], low[shown], high[shown], ece[shown], k,
                         float(report.weight), level, selection)


# --------------------------------------------------------------------------- bits
@dataclass(frozen=True)
class BitsRow:
    """One log-score decomposition S = MCB - DSC + UNC (and, for soft targets, CE = H + KL)."""

    label: str
    score: float
    mcb: float
    dsc: float
    unc: float
    recalibrated: float
    entropy: float | None
    kl: float | None
    estimator: str


@dataclass(frozen=True)
class BitsData:
    """"Where the bits go": one :class:`BitsRow` per set of predictions, in ``unit``."""

    rows: tuple[BitsRow, ...]
    unit: str


def bits_data(decompositions: Mapping[str, Decomposition] | Sequence[tuple[str, Any]],
              /) -> BitsData:
    """The bits bar's data from log-score decompositions (:func:`trueprob.decompose`).

    Each row keeps S(q) (``score``), MCB, DSC, UNC and S(r) = UNC - DSC exactly as the
    decomposition reports them, so S(q) = (UNC - DSC) + MCB; for soft targets also the split
    CE = H(p) + KL(p || q).

    Examples
    --------
    >>> import numpy as np, trueprob
    >>> z = np.array([[3.0, 0.0], [0.0, 2.0], [2.0, 0.0], [0.0, 1.0]])
    >>> d = trueprob.decompose(np.array([0, 1, 1, 0]), logits=z)
    >>> row = bits_data({"model": d}).rows[0]
    >>> bool(abs(row.score - (row.unc - row.dsc + row.mcb)) < 1e-12)
    True
    """
    items = list(decompositions.items()) if isinstance(decompositions, Mapping) \
        else list(decompositions)
    if not items:
        raise ValueError("decompositions must hold at least one decomposition; got none")
    units = {d.unit for _, d in items}
    if any(d.score_name != "log" for _, d in items):
        raise ValueError("the bits bar needs log-score decompositions (score='log'); got "
                         f"{[d.score_name for _, d in items]}")
    if len(units) != 1:
        raise ValueError(f"decompositions must share one unit; got {sorted(map(str, units))}")
    rows = tuple(BitsRow(str(label), d.score, d.mcb, d.dsc, d.unc, d.recalibrated, d.entropy,
                         d.kl, d.estimator) for label, d in items)
    return BitsData(rows, str(units.pop()))


# --------------------------------------------------------------------------- compare
@dataclass(frozen=True, eq=False)
class CompareData:
    """``trueprob compare`` as a chart: ``values[i, j]`` is metric j of method i (NaN if
    unavailable); ``headings`` label the metrics (the NLL's with its unit)."""

    methods: tuple[str, ...]
    metrics: tuple[str, ...]
    headings: tuple[str, ...]
    values: np.ndarray
    unit: str


def _number(value: Any) -> float:
    if value is None:
        return math.nan
    if isinstance(value, str):
        return {"inf": math.inf, "-inf": -math.inf}.get(value, math.nan)
    return float(value)


def compare_data(result: Mapping[str, Any], /) -> CompareData:
    """The chart's data from ``trueprob compare --format json`` output (or the same dict).

    ``result["rows"]`` holds one dict per method with ``method`` and the columns ``nll``,
    ``brier``, ``ece``, ``classwise_ece``, ``accuracy``; ``result["unit"]`` the NLL's unit.

    Examples
    --------
    >>> rows = [{"method": "uncalibrated", "nll": 0.9, "brier": 0.1, "ece": 0.05,
    ...          "classwise_ece": 0.01, "accuracy": 0.9},
    ...         {"method": "temperature", "nll": 0.4, "brier": 0.09, "ece": 0.01,
    ...          "classwise_ece": None, "accuracy": 0.9}]
    >>> d = compare_data({"rows": rows, "unit": "nats"})
    >>> d.methods, d.headings[0], d.values[1].tolist()
    (('uncalibrated', 'temperature'), 'NLL (nats)', [0.4, 0.09, 0.01, nan, 0.9])
    """
    rows = result.get("rows")
    if not isinstance(rows, Sequence) or not rows:
        raise ValueError("result must be trueprob compare's output, with a non-empty 'rows' "
                         f"list; got rows={rows!r}")
    unit = str(result.get("unit", "nats"))
    metrics = tuple(f for f, _ in COMPARE_COLUMNS)
    headings = tuple(f"{h} ({unit})" if f == "nll" else h for f, h in COMPARE_COLUMNS)
    try:
        methods = tuple(str(r["method"]) for r in rows)
        values = np.array([[_number(r.get(f)) for f in metrics] for r in rows])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"each row of result['rows'] must be a dict with 'method' and the "
                         f"columns {list(metrics)}; {exc}") from exc
    return CompareData(methods, metrics, headings, values, unit)


def compare_data_from_reports(reports: Mapping[str, Report], /) -> CompareData:
    """The chart's data from named Reports (e.g. uncalibrated and calibrated), same columns
    as ``trueprob compare``."""
    if not reports:
        raise ValueError("reports must hold at least one Report; got none")
    units = {r.unit for r in reports.values()}
    if len(units) != 1:
        raise ValueError(f"reports must share one unit; got {sorted(units)}")
    rows = [{"method": name, **{f: getattr(r, f) for f, _ in COMPARE_COLUMNS}}
            for name, r in reports.items()]
    return compare_data({"rows": rows, "unit": units.pop()})
