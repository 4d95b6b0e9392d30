"""Where the rows of an analysis come from: the feeds of the one builder.

:func:`trueprob.analysis.classification._evaluation` builds an evaluation from a feed, which
fills the point state, gives the rows again for the tests' pass, and computes the parts whose
method depends on whether the rows are in memory:

- :class:`Arrays`: the rows in memory, one chunk (bootstrap by :func:`trueprob.bootstrap`,
  log-loss split by :func:`trueprob.decompose` cross-fitted, exact smooth curve, SKCE);
- :class:`Passes`: a dataset read in batches, pass by pass (blocked bootstrap state,
  temperature fitted in passes, grid smooth curve, no SKCE).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from trueprob.analysis.records import TOP_LABEL_DRAWS, AnalysisSettings, kish_rows


def smooth_module() -> Any:
    """trueprob.metrics.smooth, or None in an installation without it."""
    try:
        from trueprob.metrics import smooth
    except ImportError:
        return None
    return smooth


class Arrays:
    """The rows in memory: one chunk. Its progress bar counts the :data:`STEPS` steps."""

    top_label_draws: int | None = None
    sample_hint = ""

    def __init__(self, labels: Any, outputs: dict[str, Any], common: dict[str, Any],
                 n_classes: int | None, bar: Any) -> None:
        self.labels = labels
        self.outputs = outputs
        self.kwargs = {**outputs, **{k: v for k, v in common.items() if v is not None}}
        self.n_classes = n_classes
        self.bar = bar
        self.label = ""
        self.inputs: Any = None

    def step(self, name: str) -> None:  # one of the STEPS stages is done; say what runs next
        self.bar.advance()
        self.bar.describe(f"report ({self.label}): {name}")

    def done(self) -> None:
        self.bar.advance()

    def fill(self, s: AnalysisSettings) -> tuple[Any, Any]:
        from trueprob._validation import prepare
        from trueprob.stats.build import build_stats
        from trueprob.stats.evaluation import EvaluationStats

        self.bar.describe(f"report ({self.label}): metrics")
        # all rows are here: extreme weights are rescaled (only their ratios matter)
        self.inputs = inputs = prepare(self.labels, **self.kwargs, n_classes=self.n_classes,
                                       rescale_weights=True)
        stats = build_stats(inputs, n_bins=s.n_bins, binning=s.binning, closed=s.closed)
        squares = None
        if inputs.weights is not None:
            # bin sums of w_i^2 (for effective counts): the same bins, weighted by w^2
            vector = inputs.kind != "confidences"
            parts = ("top_label", "classwise") if vector else ("top_label",)
            squares = EvaluationStats(inputs.n_classes, n_bins=s.n_bins, closed=s.closed,
                                      edges=stats.binning.edges, parts=parts)
            squares.update_inputs(prepare(self.labels,
                                          **{**self.kwargs,
                                             "sample_weight": inputs.weights ** 2},
                                          n_classes=self.n_classes))
        return stats, squares

    def batches(self, what: str) -> Iterable[Any]:
        return (self.inputs,)

    def intervals(self, point: Any, s: AnalysisSettings) -> tuple[dict[str, Any], int]:
        from trueprob.inference import bootstrap

        boot = bootstrap(self.labels, **self.kwargs, n_classes=self.n_classes,
                         n_bins=s.n_bins, binning=s.binning, closed=s.closed, unit=s.unit,
                         n_replicates=s.n_replicates, level=s.level, random_state=s.seed,
                         quiet=True)
        return dict(boot.intervals), boot.n_blocks

    def decomposition(self, report: Any, classes: Any, s: AnalysisSettings) -> Any:
        from trueprob._array import to_numpy
        from trueprob.decomposition import decompose

        kwargs = self.kwargs
        probs = kwargs.get("probs")
        if probs is not None and np.asarray(to_numpy(probs)).dtype != np.float64:
            # decompose casts probabilities to float64 before its cross-fitted fits, whose
            # row-sum check then applies float64's tolerance to float32 rows (rows summing to
            # 1 +- 1e-7 are refused): renormalise them in float64 first (a change of order
            # 1e-7 in q, for the split only)
            q = np.asarray(to_numpy(probs), dtype=np.float64)
            kwargs = {**kwargs, "probs": q / q.sum(axis=1, keepdims=True)}
        return decompose(self.labels, **kwargs, score="log", estimator=s.decomposition,
                         n_bins=s.n_bins, n_folds=s.n_folds, unit=s.unit, random_state=s.seed)

    def smooth(self, point: Any, report: Any, squares: Any, s: AnalysisSettings,
               notes: list[str]) -> Any:
        from trueprob.analysis.diagrams import smooth_curve_data

        module = smooth_module()
        if module is None:
            return None
        result = module.smooth_reliability(self.labels, **self.kwargs, n_points=501)
        effective = kish_rows(self.inputs.weights)
        return smooth_curve_data(result, effective_total=effective, level=s.level,
                                 label=self.label)

    def skce(self, vector: bool, s: AnalysisSettings, notes: list[str]) -> Any:
        """SKCE of the whole vector: :func:`trueprob.metrics.skce.whole_vector_test`, the
        test ``trueprob evaluate`` reports too (same estimator, same seeded row order)."""
        inputs = self.inputs
        if not vector:
            return None
        if inputs.weights is not None:
            notes.append("no SKCE: the kernel calibration error takes no row weights")
            return None
        if inputs.n_rows < 4:
            notes.append("no SKCE: its block estimator needs at least 4 rows")
            return None
        from trueprob.metrics.skce import whole_vector_test

        kwargs = {k: v for k, v in self.kwargs.items() if v is not None}
        return whole_vector_test(self.labels, **kwargs, random_state=s.seed)


class Passes:
    """The rows of a dataset read in batches, pass by pass (``passes()`` starts a pass). Its
    progress bar counts each pass's rows and names what the pass is for."""

    top_label_draws: int | None = TOP_LABEL_DRAWS
    sample_hint = " on a sample"

    def __init__(self, passes: Callable[[], Iterable[Any]], bar: Any, max_blocks: int) -> None:
        self.passes = passes
        self.bar = bar
        self.max_blocks = max_blocks
        self.label = ""
        self.rng: np.random.Generator | None = None
        self.blocked: Any = None

    def named(self, what: str) -> Callable[[], Iterable[Any]]:  # passes naming the bar
        from trueprob.streaming import counted

        return lambda: counted(self.passes, self.bar, f"report ({self.label}): {what}")

    def step(self, name: str) -> None:
        if name.startswith("bootstrap"):  # the only step that runs without a pass
            self.bar.describe(f"report ({self.label}): {name}")

    def done(self) -> None:
        pass

    def fill(self, s: AnalysisSettings) -> tuple[Any, Any]:
        from trueprob.streaming import blocked_states_of_batches

        self.rng = np.random.default_rng(s.seed)
        first = ("metrics and bootstrap blocks" if s.binning == "width"
                 else "equal-mass edges, then metrics and bootstrap blocks")
        states = blocked_states_of_batches(self.named(first), n_bins=s.n_bins,
                                           binning=s.binning, closed=s.closed,
                                           max_blocks=self.max_blocks, random_state=self.rng,
                                           weight_squares=True)
        self.blocked = states.blocked
        return states.point, states.squares

    def batches(self, what: str) -> Iterable[Any]:
        return (batch.inputs for batch in self.named(what)())

    def intervals(self, point: Any, s: AnalysisSettings) -> tuple[dict[str, Any], int]:
        from trueprob.inference.bootstrap import intervals_from_states

        boot = intervals_from_states(point, self.blocked, n_replicates=s.n_replicates,
                                     level=s.level, unit=s.unit, random_state=self.rng,
                                     seed=s.seed, quiet=True)
        return dict(boot.intervals), boot.n_blocks

    def decomposition(self, report: Any, classes: Any, s: AnalysisSettings) -> Any:
        """S(q) = MCB - DSC + UNC of the log loss with r = softmax(s_i / T), T fitted on all
        rows.

        S(q) is the report's log loss; S(r) = the fitted map's NLL; UNC = S(prior) =
        -sum_k pbar_k log pbar_k with pbar_k = (1/W) sum_i w_i t_ik (for soft targets too:
        -(1/W) sum_i w_i sum_k t_ik log pbar_k = -sum_k pbar_k log pbar_k).
        """
        from trueprob.decomposition import Decomposition
        from trueprob.stats.evaluation import check_unit
        from trueprob.streaming import fit_temperature_batches

        scale = check_unit(s.unit)
        fitted = fit_temperature_batches(self.named("log-loss split, temperature passes"))
        s_q = float(report.nll)
        s_r = float(fitted.nll_after_) * scale
        prior = np.asarray(classes.frequency, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            unc = float(-np.sum(np.where(prior > 0, prior * np.log(prior), 0.0))) * scale
        soft = report.targets != "labels"
        return Decomposition("log", "temperature", "vector", s.unit, s_q, s_q - s_r,
                             unc - s_r, unc, s_r, n_folds=None,
                             entropy=float(report.entropy) if soft else None,
                             kl=float(report.kl) if soft else None)

    def smooth(self, point: Any, report: Any, squares: Any, s: AnalysisSettings,
               notes: list[str]) -> Any:
        from trueprob.analysis.diagrams import smooth_curve_data

        if point.smooth is None or not point.smooth.n_rows:
            return None
        effective = None
        if squares is not None:
            w2 = squares.top_label.arrays()["weight"][0]
            effective = float(report.weight) ** 2 / float(np.sum(w2))
        return smooth_curve_data(point.smooth.finalize(n_points=501),
                                 effective_total=effective, level=s.level, label=self.label)

    def skce(self, vector: bool, s: AnalysisSettings, notes: list[str]) -> Any:
        if vector:
            notes.append("no SKCE for a streamed dataset: its block estimator pairs rows in a "
                         "random order of all rows (run trueprob.metrics.skce on a sample)")
        return None


__all__ = ["Arrays", "Passes", "smooth_module"]
