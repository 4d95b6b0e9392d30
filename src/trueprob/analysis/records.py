"""The records of a classification analysis and the settings they were computed with.

An :class:`Analysis` holds everything a report shows: an :class:`Evaluation` of the
predictions as given (``before``) and, with a calibrator, of its recalibrated predictions
(``after``). They are plain frozen dataclasses; the sentences, HTML and Markdown that render
them are :mod:`trueprob.report`, a layer above.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Progress steps of one evaluation: metrics, bootstrap, tests, decomposition, smooth, SKCE.
STEPS = 6
#: Budget of the classwise consistency test: N * K * resamples categorical draws at most
#: (measured: 2e8 draws, 200 resamples of CIFAR-100's 10 000 x 100, in 0.33 s on one core);
#: with fewer than MIN_RESAMPLES resamples it is left out.
CLASSWISE_DRAWS = 1_000_000_000
MIN_RESAMPLES = 99
#: Budget of the streamed top-label consistency test: N x R Bernoulli draws at most (about
#: 15 s on one core); fewer than ``MIN_RESAMPLES`` resamples and the test is left out.
TOP_LABEL_DRAWS = 2_000_000_000


@dataclass(frozen=True)
class AnalysisSettings:
    """How the numbers of an :class:`Analysis` were computed."""

    n_bins: int
    binning: str
    closed: str
    unit: str
    level: float
    n_replicates: int
    n_resamples: int
    decomposition: str
    n_folds: int
    max_panels: int
    seed: int


@dataclass(frozen=True, eq=False)
class ClassRows:
    """Per class k (all K): ``frequency`` (1/W) sum_i w_i t_ik, ``mean_probability``
    (1/W) sum_i w_i q_ik and the classwise ``ece`` of the Report."""

    frequency: np.ndarray
    mean_probability: np.ndarray
    ece: np.ndarray
    names: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class Evaluation:
    """One set of predictions, analysed.

    ``report`` holds every metric (the tables' numbers); ``intervals`` maps a Report field to
    its bootstrap :class:`~trueprob.inference.Interval`; ``tests`` maps ``"ece"`` /
    ``"classwise_ece"`` to a :class:`~trueprob.inference.ConsistencyTest`; ``decomposition``
    is the log loss split S = MCB - DSC + UNC (``None`` without full probability vectors);
    ``reliability``, ``smooth`` and ``classwise`` are the diagrams' data; ``classes`` the
    per-class table; ``skce`` the whole-vector kernel calibration error with its test
    (:func:`trueprob.metrics.skce.skce`, block estimator); ``ranked`` the reliability of the
    2nd, 3rd and all non-top ranked probabilities
    (:class:`~trueprob.metrics.ranked.RankedReliability`); ``notes`` say what was left out and
    why.
    """

    label: str
    report: Any
    intervals: Mapping[str, Any]
    tests: Mapping[str, Any]
    decomposition: Any
    reliability: Any
    smooth: Any
    classwise: Any
    classes: ClassRows | None
    bootstrap_blocks: int
    skce: Any = None
    notes: tuple[str, ...] = ()
    ranked: Any = None

    @property
    def mean_confidence(self) -> float:
        """(1/W) sum_b W_b conf_b: the weighted mean top-label confidence."""
        return float(self.reliability.mean_confidence)


@dataclass(frozen=True)
class Calibration:
    """The recalibration map of an analysis: its class, parameters and where it came from."""

    name: str
    description: str
    source: str
    temperature: float | None = None

    @classmethod
    def of(cls, calibrator: Any, source: str) -> Calibration:
        """The record of a fitted trueprob calibrator (its temperature when it has one)."""
        temperature = getattr(calibrator, "temperature_", None)
        return cls(type(calibrator).__name__, repr(calibrator), source,
                   None if temperature is None else float(temperature))

    @property
    def label(self) -> str:
        """How the recalibrated predictions are named: "temperature 1.23" or the class."""
        if self.temperature is not None:
            return f"temperature {self.temperature:.2f}"
        return self.name


@dataclass(frozen=True, eq=False)
class Analysis:
    """Everything a report shows: ``before`` (the predictions as given) and, with a calibrator,
    ``after`` (its recalibrated predictions), the settings and the trueprob version;
    ``recoverable`` the log loss split by the best held-out recalibration
    (:class:`~trueprob.analysis.recalibration.Recoverable`, Q4) and, given a calibration set,
    ``recommendation`` (:class:`~trueprob.analysis.recalibration.Recommendation`)."""

    source: str
    before: Evaluation
    after: Evaluation | None
    calibration: Calibration | None
    settings: AnalysisSettings
    version: str
    seconds: float
    notes: tuple[str, ...] = field(default_factory=tuple)
    recoverable: Any = None
    recommendation: Any = None

    @property
    def evaluations(self) -> tuple[Evaluation, ...]:
        return (self.before,) if self.after is None else (self.before, self.after)

    def verdict(self) -> tuple[str, ...]:
        """Deprecated: use :func:`trueprob.report.verdict.verdict` (the sentences are
        rendering, a layer above the analysis)."""
        return _deprecated_verdict(self, "verdict")


def _deprecated_verdict(analysis: Any, name: str) -> tuple[str, ...]:
    """The old ``analysis.verdict()`` method: warns, then calls the rendering function
    ``name`` of :mod:`trueprob.report`, looked up in the registry the facade fills
    (:mod:`trueprob.results._display`): the analysis never imports the rendering layer."""
    from trueprob.results._display import renderer

    warnings.warn(f"{type(analysis).__name__}.verdict() is deprecated; call "
                  f"trueprob.report.{'verdict' if name == 'verdict' else 'tasks'}.{name}"
                  f"(analysis) instead", DeprecationWarning, stacklevel=3)
    return tuple(renderer(name)(analysis))


def check_int(name: str, value: object, minimum: int) -> int:
    """``value`` as an int >= ``minimum``, else a ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")
    return int(value)


def checked_settings(n_bins: int, binning: str, closed: str, unit: str, level: float,
                     n_replicates: int, n_resamples: int, decomposition: str, n_folds: int,
                     max_panels: int, random_state: int) -> AnalysisSettings:
    """The :class:`AnalysisSettings` of an analysis, its counts checked (the metrics check
    the rest when they run)."""
    check_int("n_replicates", n_replicates, 2)
    check_int("n_resamples", n_resamples, 1)
    check_int("max_panels", max_panels, 1)
    check_int("random_state", random_state, 0)
    return AnalysisSettings(int(n_bins), binning, closed, unit, float(level),
                            int(n_replicates), int(n_resamples), decomposition, int(n_folds),
                            int(max_panels), int(random_state))


def kish_rows(sample_weight: Any) -> float | None:
    """W^2 / sum w_i^2 (Kish's effective number of rows), None for unit weights."""
    if sample_weight is None:
        return None
    from trueprob._array import to_numpy

    w = np.asarray(to_numpy(sample_weight), dtype=np.float64)
    return float(w.sum() ** 2 / np.sum(w * w))
