"""What recalibration can recover, held out: the report's Q4 and its "What to do".

Two computations, both in the report's log-loss unit and both *held out* (a map is never
scored on the rows it was fitted on):

- :func:`recoverable` (Q4): each recalibration family is cross-fitted on the report's own
  rows (``n_folds`` seeded folds: fitted on the other folds, scored on the held-out one) and
  its log loss S(r) = (1/W) sum_i w_i (-sum_k t_ik log r_ik) compared with S(q). The families:
  temperature, top-label isotonic and top-label histogram binning, and vector scaling where K
  <= :data:`VECTOR_MAX_K`. Dirichlet calibration is not cross-fitted (one fit took 18 s at
  K = 10 on 5000 rows, measured on the Mukhoti CIFAR-10 logits); with a calibration set its
  map fitted there and scored on these rows is among the held-out maps
  (:meth:`Recoverable.with_recommendation`), as are the other candidates. MCB = S(q) - min(S(q),
  min_f S(r_f)) >= 0; UNC = H(pbar) with pbar_k = (1/W) sum_i w_i t_ik; DSC = UNC - S(q) + MCB,
  so S(q) = UNC - DSC + MCB holds exactly.
- :func:`recommend` (What to do): ``trueprob compare``'s own comparison
  (:func:`trueprob.calibrators.compare.compare_calibrators`, its default candidates) fitted on
  a separate calibration set (``--fit VAL``) and evaluated on the report's rows; its best row
  (lowest log loss among the maps that keep the accuracy within one point) is the
  recommendation, stated as significant when its gain exceeds :data:`Z` standard errors of
  the paired per-row differences d_i = S_i(q) - S_i(r) (SE = sqrt(sum w_i^2 (d_i - dbar)^2)
  / W).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

#: families fitted above these K are left out of the cross-fit (time grows as K^2 / K^4)
VECTOR_MAX_K = 32
DIRICHLET_MAX_K = 10
#: a gain is significant when it exceeds Z standard errors
Z = 2.0
#: the families of the held-out MCB (:func:`recoverable`): (name, method, multiclass)
FAMILY_MAPS = (
    ("temperature", "temperature", None),
    ("isotonic (top-label)", "isotonic", "top-label"),
    ("histogram (top-label)", "histogram", "top-label"),
    ("vector", "vector", None),
)
FAMILIES = tuple(name for name, _, _ in FAMILY_MAPS)


def make(method: str, multiclass: str | None, n_classes: int) -> Any:
    """A new calibrator of ``method`` with its default settings for K classes, a binary
    method wrapped ``multiclass`` (:func:`trueprob.calibrators.by_name.make_calibrator`)."""
    from trueprob.calibrators.by_name import make_calibrator

    return make_calibrator(method, n_classes, multiclass or "one-vs-rest")


def _family(name: str) -> tuple[str, str | None]:
    for n, method, multiclass in FAMILY_MAPS:
        if n == name:
            return method, multiclass
    raise KeyError(name)


def feasible(name: str, n_classes: int, *, folds: bool = True) -> str | None:
    """Why the family ``name`` is left out at K = ``n_classes``, or None when it is fitted
    (``folds``: fitted once per fold, where vector scaling stops at :data:`VECTOR_MAX_K`)."""
    if name == "vector" and folds and n_classes > VECTOR_MAX_K:
        return (f"vector scaling is left out at K = {n_classes} (> {VECTOR_MAX_K}: its "
                f"fit takes seconds per fold)")
    if name in ("dirichlet", "matrix") and n_classes > DIRICHLET_MAX_K:
        return (f"{name} calibration is left out at K = {n_classes} (> {DIRICHLET_MAX_K}: "
                f"K(K+1) = {n_classes * (n_classes + 1)} parameters, a dense Hessian of "
                f"their square)")
    return None


# --------------------------------------------------------------------------- the rows
@dataclass(frozen=True, eq=False)
class Rows:
    """Model outputs and targets in memory: ``scores`` as logits or probabilities (``kind``),
    hard ``labels`` or soft ``targets`` (counts normalised), optional ``weights``; ``given``
    the arrays as the caller gave them (dtype kept), which the calibrators are fitted on and
    applied to, as ``trueprob compare`` does."""

    kind: str
    scores: np.ndarray
    labels: np.ndarray | None
    targets: np.ndarray | None
    weights: np.ndarray | None
    given: Mapping[str, Any]

    @classmethod
    def of(cls, labels: Any = None, *, logits: Any = None, probs: Any = None,
           targets: Any = None, counts: Any = None, sample_weight: Any = None) -> Rows:
        from trueprob._array import to_numpy
        from trueprob._validation import prepare

        inputs = prepare(labels, logits=logits, probs=probs, targets=targets, counts=counts,
                         sample_weight=sample_weight)
        if inputs.kind == "confidences":
            raise ValueError("recalibration needs logits= or probs=")
        chunk = next(inputs.chunks(inputs.n_rows))  # validated (counts normalised) once

        def arr(x: Any) -> np.ndarray | None:
            return None if x is None else np.asarray(to_numpy(x))

        raw = {"labels": labels, "logits": logits, "probs": probs, "targets": targets,
               "counts": counts, "sample_weight": sample_weight}
        given = {k: np.asarray(to_numpy(v)) for k, v in raw.items() if v is not None}
        return cls(inputs.kind, np.asarray(to_numpy(chunk.scores)), arr(chunk.labels),
                   arr(chunk.targets), arr(chunk.weights), given)

    @property
    def n(self) -> int:
        return int(self.scores.shape[0])

    @property
    def n_classes(self) -> int:
        return int(self.scores.shape[1])

    def take(self, index: np.ndarray) -> Rows:
        def t(x: np.ndarray | None) -> np.ndarray | None:
            return None if x is None else x[index]

        return Rows(self.kind, self.scores[index], t(self.labels), t(self.targets),
                    t(self.weights), {k: v[index] for k, v in self.given.items()})

    def fit(self, calibrator: Any) -> Any:
        """``calibrator`` fitted on the rows as given."""
        g = dict(self.given)
        return calibrator.fit(g.pop("labels", None), **g)

    def predicted(self, calibrator: Any) -> Any:
        """The calibrator's log-probabilities of the scores as given (their dtype kept)."""
        return calibrator.predict_logproba(**{self.kind: self.given[self.kind]})

    def logp(self, calibrator: Any | None) -> np.ndarray:
        """log q (calibrator None) or the calibrator's log-probabilities, (n, K) float64."""
        if calibrator is not None:
            return np.asarray(self.predicted(calibrator), dtype=np.float64)
        s = self.scores.astype(np.float64)
        if self.kind == "logits":
            from scipy.special import log_softmax

            return np.asarray(log_softmax(s, axis=1))
        with np.errstate(divide="ignore"):
            return np.log(s)

    def losses(self, logp: np.ndarray) -> np.ndarray:
        """Per-row log loss in nats: -log r_{i, y_i}, or -sum_k t_ik log r_ik."""
        if self.labels is not None:
            return -logp[np.arange(self.n), self.labels]
        t = self.targets
        assert t is not None
        return -np.sum(np.where(t > 0, t * logp, 0.0), axis=1)

    def mean(self, values: np.ndarray) -> float:
        if self.weights is None:
            return float(np.mean(values))
        return float(np.sum(self.weights * values) / np.sum(self.weights))

    def standard_error(self, values: np.ndarray) -> float:
        """SE of the weighted mean: sqrt(sum w_i^2 (v_i - vbar)^2) / W (unit weights:
        sample SD / sqrt(N), with the N - 1 divisor)."""
        if self.weights is None:
            return float(np.std(values, ddof=1) / math.sqrt(self.n)) if self.n > 1 else math.nan
        w = self.weights
        dev = values - self.mean(values)
        return float(math.sqrt(np.sum(w * w * dev * dev)) / np.sum(w))

    def prior_entropy(self) -> float:
        """H(pbar) in nats, pbar_k = (1/W) sum_i w_i t_ik."""
        k = self.n_classes
        w = np.ones(self.n) if self.weights is None else self.weights
        if self.labels is not None:
            pbar = np.bincount(self.labels, weights=w, minlength=k)
        else:
            assert self.targets is not None
            pbar = (w[:, None] * self.targets).sum(axis=0)
        pbar = pbar / pbar.sum()
        nz = pbar[pbar > 0]
        return float(-np.sum(nz * np.log(nz)))


# --------------------------------------------------------------------------- Q4
@dataclass(frozen=True)
class Recoverable:
    """The log loss split by the best held-out recalibration (see :func:`recoverable`).

    ``score`` S(q), ``unc``, ``dsc``, ``mcb`` (S(q) = UNC - DSC + MCB), ``family`` the map
    that recovers most (None when none lowers the log loss), ``held_out`` the held-out log
    loss of every family tried (cross-fitted, or "fitted on VAL: <name>"), ``temperature``
    the part temperature alone recovers, ``left_out`` why families were not fitted. All in
    ``unit`` per example.
    """

    unit: str
    score: float
    unc: float
    dsc: float
    mcb: float
    family: str | None
    temperature: float | None
    held_out: Mapping[str, float]
    n_folds: int
    left_out: tuple[str, ...]

    def with_recommendation(self, recommendation: Recommendation | None) -> Recoverable:
        """The split with the recommendation's candidates (fitted on VAL, scored on these
        rows: held out too) among the maps: MCB is then at least what the recommendation
        recovers."""
        if recommendation is None:
            return self
        held = dict(self.held_out)
        for c in recommendation.candidates:
            if c.excluded is None and math.isfinite(c.gain):
                # S(q) - gain: the same per-row losses as S(q) here (the candidate's ``nll`` is
                # trueprob.evaluate's, equal up to the rounding of float32 inputs)
                held[f"fitted on VAL: {c.name}"] = self.score - c.gain
        return _split(self.unit, self.score, self.unc, held, self.n_folds, self.left_out)


def _split(unit: str, score: float, unc: float, held: dict[str, float], n_folds: int,
           left_out: tuple[str, ...]) -> Recoverable:
    finite = {k: v for k, v in held.items() if math.isfinite(v)}
    best = min(finite, key=lambda k: finite[k]) if finite else None
    mcb = 0.0 if best is None else max(score - finite[best], 0.0)
    family = best if mcb > 0 else None
    temperature = held.get("temperature")
    t_part = None if temperature is None else max(score - temperature, 0.0)
    return Recoverable(unit, score, unc, unc - score + mcb, mcb, family, t_part, held,
                       n_folds, left_out)


def recoverable(rows: Rows, *, unit: str = "bits", n_folds: int = 5,
                random_state: int = 0) -> Recoverable:
    """Q4: the log loss S(q) = UNC - DSC + MCB with MCB = what the best held-out
    recalibration family recovers (cross-fitted over ``n_folds`` seeded folds).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=(3000, 3)) * 2
    >>> q = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    >>> y = (q.cumsum(1) < rng.random((3000, 1))).sum(1)
    >>> r = recoverable(Rows.of(y, logits=3 * z))            # over-confident: T = 3 fixes it
    >>> r.family in ("temperature", "vector", "dirichlet"), r.mcb > 0.1
    (True, True)
    >>> abs(r.score - (r.unc - r.dsc + r.mcb)) < 1e-12
    True
    """
    from trueprob.stats.evaluation import check_unit

    scale = check_unit(unit)
    k = rows.n_classes
    score = rows.mean(rows.losses(rows.logp(None))) * scale
    unc = rows.prior_entropy() * scale
    folds = np.random.default_rng(random_state).permutation(rows.n) % max(n_folds, 2)
    held: dict[str, float] = {}
    left: list[str] = []
    for name in FAMILIES:
        why = feasible(name, k)
        if why is not None:
            left.append(why)
            continue
        method, multiclass = _family(name)
        losses = np.empty(rows.n)
        try:
            for f in range(max(n_folds, 2)):
                test = folds == f
                cal = rows.take(~test).fit(make(method, multiclass, k))
                part = rows.take(test)
                losses[test] = part.losses(part.logp(cal))
        except (ValueError, TypeError, ArithmeticError) as exc:
            left.append(f"{name} could not be cross-fitted: {exc}")
            continue
        held[name] = rows.mean(losses) * scale
    left.append("dirichlet calibration is not cross-fitted (seconds per fit); with --fit "
                "its map fitted on the calibration set is among the held-out maps")
    return _split(unit, score, unc, held, max(n_folds, 2), tuple(left))


# --------------------------------------------------------------------------- What to do
#: What to do offers a second map for the confidence when the best map keeps at least this
#: share of the ECE and the second map has at most this share of the best map's ECE
KEEPS_ECE = 0.5


@dataclass(frozen=True)
class Candidate:
    """One candidate map, fitted on the calibration set and evaluated on the report's rows:
    log loss ``nll`` (report unit), ``ece``, ``accuracy``, ``mean_confidence``, the ``gain``
    S(q) - S(r) with its standard error ``gain_se``, and why it is ``excluded`` (or None)."""

    name: str
    method: str
    multiclass: str | None
    nll: float
    ece: float
    accuracy: float
    mean_confidence: float
    gain: float
    gain_se: float
    excluded: str | None = None

    @property
    def significant(self) -> bool:
        return self.gain > Z * self.gain_se


@dataclass(frozen=True)
class Recommendation:
    """The candidates (in the order of ``trueprob compare``), the best admissible one (``best``;
    None when none was fitted), whether its gain is significant, the numbers before, the
    calibration set's name and the left-out families."""

    source: str
    unit: str
    nll_before: float
    ece_before: float
    accuracy_before: float
    mean_confidence_before: float
    candidates: tuple[Candidate, ...]
    best: Candidate | None
    left_out: tuple[str, ...]

    @property
    def helps(self) -> bool:
        """Whether the best candidate lowers the log loss significantly."""
        return self.best is not None and self.best.significant

    @property
    def for_confidence(self) -> Candidate | None:
        """The map to use where the top-label confidence is what is read, when the best map
        (lowest log loss) does not fix it: the admissible candidate with the lowest ECE that
        also lowers the log loss significantly, offered when the best map keeps at least
        :data:`KEEPS_ECE` of the ECE and this one has at most :data:`KEEPS_ECE` of the best
        map's ECE. None otherwise."""
        b = self.best
        if b is None or not math.isfinite(self.ece_before) or b.ece < KEEPS_ECE * self.ece_before:
            return None
        fixes = [c for c in self.candidates if c.excluded is None and math.isfinite(c.nll)
                 and c.significant and c.ece <= KEEPS_ECE * b.ece]
        return min(fixes, key=lambda c: (c.ece, c.nll)) if fixes else None

    def command(self, output: str = "calibrator.json",
                candidate: Candidate | None = None) -> str | None:
        """The ``trueprob fit`` command that fits ``candidate`` (default: the best one) on the
        calibration set."""
        b = self.best if candidate is None else candidate
        if b is None:
            return None
        wrap = f" --multiclass {b.multiclass}" if b.multiclass else ""
        return f"trueprob fit {_quote(self.source)} --method {b.method}{wrap} -o {output}"


def _quote(path: str) -> str:
    import shlex

    return shlex.quote(path)


def recommend(calibration: Rows, rows: Rows, *, source: str, unit: str = "bits",
              n_bins: int = 15, binning: str = "width") -> Recommendation:
    """The candidates of ``trueprob compare`` fitted on ``calibration`` and evaluated on
    ``rows``, and the best of them: :func:`trueprob.calibrators.compare.compare_calibrators`
    with its default candidates, so that the report and ``trueprob compare`` on the same files
    recommend the same map with the same numbers. Each candidate also gets the paired standard
    error of its gain, for the significance the verdict states.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> def draw(n):
    ...     z = rng.normal(size=(n, 3)) * 2
    ...     q = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    ...     return 3 * z, (q.cumsum(1) < rng.random((n, 1))).sum(1)   # over-confident 3z
    >>> (zv, yv), (zt, yt) = draw(2000), draw(2000)
    >>> r = recommend(Rows.of(yv, logits=zv), Rows.of(yt, logits=zt), source="val.npz")
    >>> r.helps, r.best.nll < r.nll_before
    (True, True)
    >>> r.command().startswith("trueprob fit val.npz --method ")
    True
    """
    from trueprob.calibrators.compare import compare_calibrators
    from trueprob.core.options import check_unit

    k = rows.n_classes
    if calibration.n_classes != k:
        raise ValueError(f"the calibration set has K={calibration.n_classes} classes but the "
                         f"report's rows K={k}")
    comparison = compare_calibrators(calibration.given, rows.given, unit=unit, n_bins=n_bins,
                                     quiet=True, names=(source, "the report's rows"),
                                     binning=binning)
    before = comparison.uncalibrated
    base = rows.losses(rows.logp(None))
    scale = check_unit(unit)
    out: list[Candidate] = []
    left: list[str] = [f"{r.name}: {r.skipped}" for r in comparison.rows if r.skipped]
    best: Candidate | None = None
    for row in comparison.rows[1:]:
        if row.skipped is not None:
            continue
        logp = np.asarray(rows.predicted(row.calibrator), dtype=np.float64)
        diff = (base - rows.losses(logp)) * scale
        nll = math.inf if row.nll is None else float(row.nll)
        cand = Candidate(row.name, row.method, row.multiclass, nll, float(row.ece or 0.0),
                         float(row.accuracy or 0.0), _mean_top(logp, rows),
                         rows.mean(diff), rows.standard_error(diff),
                         "; ".join(row.flags) or None)
        out.append(cand)
        if row.best:
            best = cand
    base_report = _before_report(rows, unit, n_bins, binning)
    return Recommendation(source, unit, float(before.nll or math.inf), float(before.ece or 0.0),
                          float(before.accuracy or 0.0), _mean_conf(base_report), tuple(out),
                          best, tuple(left))


def _mean_conf(report: Any) -> float:
    return float(sum(b.weight * b.confidence for b in report.bins if b.weight > 0)
                 / report.weight)


def _before_report(rows: Rows, unit: str, n_bins: int, binning: str) -> Any:
    from trueprob.api import evaluate

    g = rows.given
    extra = {k: g[k] for k in ("targets", "counts", "sample_weight") if k in g}
    return evaluate(g.get("labels"), **{rows.kind: g[rows.kind]}, **extra, unit=unit,
                    n_bins=n_bins, binning=binning)


def _mean_top(logp: np.ndarray, rows: Rows) -> float:
    """(1/W) sum_i w_i max_k r_ik: the mean top-label confidence after a map."""
    conf = np.exp(logp.max(axis=1))
    w = rows.given.get("sample_weight")
    return float(np.average(conf, weights=None if w is None else np.asarray(w, np.float64)))


__all__ = ["DIRICHLET_MAX_K", "FAMILIES", "FAMILY_MAPS", "VECTOR_MAX_K",
           "Candidate", "Recommendation", "Recoverable", "Rows", "feasible", "make",
           "recommend", "recoverable"]
