"""`decompose`: a proper score split into miscalibration, discrimination and uncertainty.

For a proper score S, predictions q and their recalibration r = P(Y | q) (SPEC.md,
"Decompositions"):

    S(q) = MCB - DSC + UNC,   MCB = S(q) - S(r),   DSC = S(prior) - S(r),   UNC = S(prior).

MCB is what recalibration would recover; DSC (resolution) is, for the log score, the mutual
information I(Y; q) between the label and the prediction; UNC is, for the log score, the label
entropy H(Y). r is estimated by a named recalibrator, part of the result.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy import special
from scipy.optimize import isotonic_regression

from trueprob._array import to_numpy
from trueprob._validation import Inputs, prepare
from trueprob.core.binning import Binning
from trueprob.core.options import check_unit
from trueprob.core.rows import row_quantities
from trueprob.core.special import logsumexp

SCORES = ("log", "brier")
ESTIMATORS = ("isotonic", "binned", "temperature", "dirichlet")
REDUCTIONS = ("top_label", "classwise")


@dataclass(frozen=True)
class Decomposition:
    """S(q) = MCB - DSC + UNC for one score, target and recalibration estimator.

    ``score`` S(q); ``recalibrated`` S(r); ``mcb`` = S(q) - S(r); ``dsc`` = S(prior) - S(r)
    (for the log score, the mutual information between label and prediction); ``unc`` =
    S(prior) (for the log score, the label entropy H(Y)). Log-score numbers are in ``unit``;
    Brier numbers are unitless (``unit`` is then ``None``). ``target`` says what was scored:
    ``"binary"`` (positive class), ``"top_label"`` (correctness of the argmax against the
    confidence), ``"classwise"`` (mean over classes of the one-vs-rest decompositions, each
    in ``per_class``) or ``"vector"`` (the whole predicted distribution). For soft targets and
    the log score, ``entropy`` and ``kl`` give the per-row split CE = H(p) + KL(p || q).
    """

    score_name: str
    estimator: str
    target: str
    unit: str | None
    score: float
    mcb: float
    dsc: float
    unc: float
    recalibrated: float
    n_folds: int | None = None
    per_class: tuple[Decomposition, ...] | None = None
    entropy: float | None = None
    kl: float | None = None

    @property
    def mutual_information(self) -> float | None:
        """I(Y; q) = DSC for the log score (``None`` for Brier)."""
        return self.dsc if self.score_name == "log" else None

    def to_dict(self) -> dict[str, Any]:
        """The CLI's keys: ``score``, ``mcb``, ``dsc``, ``unc``, ``unit``, ``estimator``, ..."""
        out: dict[str, Any] = {
            "score": self.score, "mcb": self.mcb, "dsc": self.dsc, "unc": self.unc,
            "unit": self.unit, "estimator": self.estimator, "score_name": self.score_name,
            "target": self.target, "recalibrated": self.recalibrated,
        }
        if self.n_folds is not None:
            out["n_folds"] = self.n_folds
        if self.entropy is not None:
            out["entropy"], out["kl"] = self.entropy, self.kl
        if self.per_class is not None:
            out["per_class"] = [
                {"score": d.score, "mcb": d.mcb, "dsc": d.dsc, "unc": d.unc}
                for d in self.per_class
            ]
        return out


# ---------------------------------------------------------------------------- scores
def _binary_score(score: str, f: np.ndarray, y: np.ndarray,
                  logs: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Per-row S(f, y) for a probability f of the event and an outcome y in [0, 1].

    ``logs`` = (log f, log(1 - f)) computed in float64 from the model's outputs (see
    :func:`_event_logs`): f = 1 - 1e-8 rounds to 1.0 in float32, and log(1 - f) from the
    rounded f would be -inf where the model gave a finite loss.
    """
    if score == "brier":
        return (f - y) ** 2
    if logs is not None:
        log_f, log_1mf = logs
        # 0 log 0 = 0: a row with y = 1 does not read log(1 - f)
        pos = y * np.where(y > 0, log_f, 0.0)
        neg = (1.0 - y) * np.where(y < 1, log_1mf, 0.0)
        return -(pos + neg)
    # -[y log f + (1 - y) log(1 - f)] with 0 log 0 = 0 (xlogy)
    return -(special.xlogy(y, f) + special.xlogy(1.0 - y, 1.0 - f))


def _event_logs(logq: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(log q_ik_i, log(1 - q_ik_i)) for class k_i of every row, from float64 log q.

    log(1 - q_ik) is the logsumexp of the other classes' log q: exact where 1 - q_ik
    would cancel (q_ik within rounding of 1).
    """
    n = logq.shape[0]
    rows = np.arange(n)
    log_f = logq[rows, k]
    others = logq.copy()
    others[rows, k] = -np.inf
    with np.errstate(divide="ignore"):  # every other class at probability 0: log 0 = -inf
        return log_f, logsumexp(np, others, axis=1)


def _mean(x: np.ndarray, w: np.ndarray) -> float:
    return float(np.sum(x * w) / np.sum(w))


def _pooled_isotonic(p: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """CORP recalibration: weighted PAV of y on p with ties in p pooled; r per row.

    Rows with equal p are merged first (weight-summed, outcome-averaged), so every tie gets
    one value: the isotonic fit is then a function of p.
    """
    order = np.argsort(p, kind="stable")
    ps = p[order]
    starts = np.flatnonzero(np.r_[True, ps[1:] != ps[:-1]])
    gw = np.add.reduceat(w[order], starts)
    gy = np.add.reduceat((w * y)[order], starts)
    positive = gw > 0
    means = np.where(positive, gy / np.where(positive, gw, 1.0), 0.0)
    fitted = np.empty_like(means)
    fitted[positive] = isotonic_regression(means[positive], weights=gw[positive]).x
    if not positive.all():  # zero-weight groups take the value of the nearest group before
        idx = np.maximum.accumulate(np.where(positive, np.arange(len(gw)), 0))
        fitted = fitted[idx]
    group_of_sorted = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(ps)]))
    r = np.empty_like(p)
    r[order] = fitted[group_of_sorted]
    return r


def _binned_means(p: np.ndarray, y: np.ndarray, w: np.ndarray, n_bins: int) -> np.ndarray:
    """Binned recalibration (Murphy): r = weighted mean outcome of the row's bin."""
    idx = Binning(n_bins).index(np, p)
    sw = np.bincount(idx, w, n_bins)
    sy = np.bincount(idx, w * y, n_bins)
    means = np.where(sw > 0, sy / np.where(sw > 0, sw, 1.0), 0.0)
    return means[idx]


def _binary_decomposition(score: str, estimator: str, target: str, p: np.ndarray,
                          y: np.ndarray, w: np.ndarray, scale: float, n_bins: int,
                          unit: str | None,
                          logs: tuple[np.ndarray, np.ndarray] | None = None) -> Decomposition:
    if estimator == "isotonic":
        r = _pooled_isotonic(p, y, w)
    else:
        r = _binned_means(p, y, w, n_bins)
    prior = _mean(y, w)
    s_q = _mean(_binary_score(score, p, y, logs), w) * scale
    s_r = _mean(_binary_score(score, r, y), w) * scale
    s_prior = _mean(_binary_score(score, np.full_like(y, prior), y), w) * scale
    return Decomposition(score, estimator, target, unit, s_q, s_q - s_r, s_prior - s_r,
                         s_prior, s_r)


# ---------------------------------------------------------------------------- vector
def _vector_score(score: str, logq: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Per-row multiclass score from log-probabilities and targets (one-hot or soft)."""
    if score == "log":
        return -np.sum(np.where(t > 0, t * logq, 0.0), axis=1)
    return np.sum((np.exp(logq) - t) ** 2, axis=1)


def _cross_fitted_logq(estimator: str, inputs: Inputs, scores: np.ndarray, t: np.ndarray,
                       y: np.ndarray | None, w: np.ndarray, n_folds: int,
                       rng: np.random.Generator) -> np.ndarray:
    """log r_i from a map fitted on the other folds (k-fold cross-fitting)."""
    if estimator == "temperature":
        from trueprob.calibrators.temperature import TemperatureScaling as Map
    else:
        from trueprob.calibrators.scaling import DirichletCalibration as Map  # type: ignore
    n = scores.shape[0]
    folds = rng.permutation(n) % n_folds
    out = np.empty((n, t.shape[1]))
    key = "logits" if inputs.kind == "logits" else "probs"
    for f in range(n_folds):
        test, train = folds == f, folds != f
        fit_targets: dict[str, Any] = ({"targets": t[train]} if y is None else {})
        model = Map().fit(None if y is None else y[train], **{key: scores[train]},
                          sample_weight=w[train], **fit_targets)
        out[test] = to_numpy(model.predict_logproba(**{key: scores[test]}))
    return out


# ---------------------------------------------------------------------------- public
def decompose(
    labels: Any = None,
    /,
    *,
    logits: Any = None,
    probs: Any = None,
    targets: Any = None,
    counts: Any = None,
    sample_weight: Any = None,
    confidences: Any = None,
    predictions: Any = None,
    score: str = "log",
    estimator: str | None = None,
    reduction: str | None = None,
    n_bins: int = 15,
    n_folds: int = 5,
    unit: str = "bits",
    random_state: int | np.random.Generator | None = 0,
    classes: Any = None,
    pos_label: Any = None,
    ignore_index: Any = None,
) -> Decomposition:
    """Decompose the log or Brier score: S(q) = MCB - DSC + UNC.

    Parameters
    ----------
    labels, logits, probs, targets, counts, sample_weight
        As in :func:`trueprob.evaluate`.
    confidences, predictions : array (N,), optional
        Top-label outputs instead of ``logits`` / ``probs`` (as in :func:`trueprob.evaluate`):
        the top-label decomposition of the correctness a_i against the confidence c_i is the
        only one they allow (``estimator`` isotonic or binned, ``reduction`` top_label); the
        log score is then -[a log c + (1 - a) log(1 - c)], computed from c.
    score : {"log", "brier"}
        The proper score S.
    estimator : {"isotonic", "binned", "temperature", "dirichlet"}, optional
        How r = P(Y | q) is estimated. Default: the score of the whole predicted vector, the
        number every other trueprob command splits — ``"temperature"`` (cross-fitted) for K > 2
        classes, ``"isotonic"`` for binary (1-D) inputs, whose positive-class score is the
        whole vector's; with ``reduction`` given, ``"isotonic"``.

        - ``"isotonic"``: CORP (Dimitriadis, Gneiting, Jordan 2021), weighted PAV of the
          outcome on the forecast with ties pooled; in-sample, so the identity is exact and
          MCB >= 0, DSC >= 0 (the identity and the constant map are monotone).
        - ``"binned"``: the mean outcome of the forecast's bin (B equal-width bins), Murphy's
          decomposition for binned forecasts. DSC >= 0 always; MCB can be negative when
          forecasts vary within a bin: for the Brier score MCB = mean (q_i - r_i)^2 minus twice
          the within-bin covariance of q and y (Stephenson, Coelho, Jolliffe 2008).
        - ``"temperature"`` / ``"dirichlet"``: a parametric map for the whole vector, fitted by
          maximum likelihood with ``n_folds``-fold cross-fitting (r_i from a map that never saw
          row i), so MCB is not optimistic (and can be slightly negative when recalibration
          does not generalise).

    reduction : {"top_label", "classwise"}, optional
        For multiclass inputs with ``isotonic`` / ``binned`` (default ``"top_label"``):
        decompose the top-label
        correctness against the confidence, or each class one-vs-rest (the mean over classes
        is reported; per-class results in ``per_class``). Binary (1-D) inputs always
        decompose the positive class.
    n_bins : int
        Bins of the ``binned`` estimator.
    n_folds : int
        Folds of the cross-fitted parametric estimators.
    unit : {"bits", "nats"}
        Unit of log-score numbers (default bits: the decomposition explains the loss in bits).
    random_state
        Seed of the fold assignment.
    classes, pos_label, ignore_index
        Labels as users have them, as in :func:`trueprob.evaluate`.

    Notes
    -----
    With 1-D (binary) inputs the positive class is decomposed (``target="binary"``). UNC uses
    the weighted mean outcome as the prior. For soft targets y_i is the target probability of
    the event (PAV and both scores accept outcomes in [0, 1]); with the log score the result
    also carries the split CE = H(p) + KL(p || q) of the whole vector.

    Examples
    --------
    >>> import numpy as np
    >>> from trueprob import decompose
    >>> p = np.array([0.2, 0.2, 0.6, 0.9]); y = np.array([0, 1, 1, 1])
    >>> d = decompose(y, probs=p, score="brier")
    >>> # PAV pools the tie at .2: r = (.5, .5, 1, 1); S(q) = .85/4, S(r) = .125; prior .75
    >>> round(d.score, 4), round(d.mcb, 4), round(d.dsc, 4), round(d.unc, 4)
    (0.2125, 0.0875, 0.0625, 0.1875)
    """
    if score not in SCORES:
        raise ValueError(f"score must be 'log' or 'brier'; got {score!r}")
    default_estimator = estimator is None and reduction is None
    if reduction is None:
        reduction = "top_label"
    if estimator is None:
        estimator = "isotonic"  # replaced by "temperature" below for K > 2 with no reduction
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}; got {estimator!r}")
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be 'top_label' or 'classwise'; got {reduction!r}")
    if isinstance(n_folds, bool) or not isinstance(n_folds, (int, np.integer)) or n_folds < 2:
        raise ValueError(f"n_folds must be an integer >= 2; got {n_folds!r}")
    scale = check_unit(unit) if score == "log" else 1.0
    out_unit = unit if score == "log" else None
    rng = random_state if isinstance(random_state, np.random.Generator) \
        else np.random.default_rng(random_state)
    top_label_only = confidences is not None or predictions is not None
    if top_label_only and (estimator not in (None, "isotonic", "binned")
                           or reduction == "classwise"):
        asked = f"reduction {reduction!r}" if reduction == "classwise" \
            else f"estimator {estimator!r}"
        raise ValueError(
            f"top-label confidences and predictions allow only the top-label decomposition "
            f"(estimator 'isotonic' or 'binned', reduction 'top_label'); {asked} needs the "
            f"whole vector (logits= or probs=)")
    inputs = prepare(labels, logits=logits, probs=probs, targets=targets, counts=counts,
                     sample_weight=sample_weight, confidences=confidences,
                     predictions=predictions, rescale_weights=True, classes=classes,
                     pos_label=pos_label, ignore_index=ignore_index)
    if inputs.kind == "confidences":
        return _top_label_only(inputs, score, "isotonic" if estimator is None else estimator,
                               scale, n_bins, out_unit)
    if default_estimator and not inputs.binary and inputs.n_classes > 2:
        estimator = "temperature"  # the whole vector's score, as every other command splits
    xp = inputs.xp
    q_parts, logq_parts, t_parts, conf_parts, corr_parts, w_parts = [], [], [], [], [], []
    pred_parts = []
    ent, kl = 0.0, 0.0
    for chunk in inputs.chunks():
        rows = row_quantities(xp, chunk)
        q = to_numpy(rows.probs).astype(np.float64)
        n = q.shape[0]
        if chunk.targets is None:
            t = np.zeros_like(q)
            t[np.arange(n), to_numpy(chunk.labels)] = 1.0
        else:
            t = to_numpy(chunk.targets).astype(np.float64)
        w = np.ones(n) if chunk.weights is None else to_numpy(chunk.weights)
        if chunk.kind == "logits":
            z = to_numpy(chunk.scores).astype(np.float64)
            logq = z - logsumexp(np, z, axis=1, keepdims=True)
        else:
            with np.errstate(divide="ignore"):
                logq = np.log(q)
        if rows.entropy is not None:
            ent += float(np.sum(w * to_numpy(rows.entropy)))
            kl += float(np.sum(w * to_numpy(rows.kl)))
        q_parts.append(q)
        logq_parts.append(logq)
        t_parts.append(t)
        conf_parts.append(to_numpy(rows.confidence))
        corr_parts.append(to_numpy(rows.correct))
        pred_parts.append(to_numpy(rows.prediction))
        w_parts.append(w)
    q = np.concatenate(q_parts)
    logq = np.concatenate(logq_parts)
    t = np.concatenate(t_parts)
    w = np.concatenate(w_parts)
    total = float(w.sum())
    if not total > 0:
        raise ValueError("sample_weight sums to 0; at least one row needs a positive weight")
    soft_split = {}
    if inputs.target_kind != "labels" and score == "log":
        soft_split = {"entropy": ent / total * scale, "kl": kl / total * scale}

    if estimator in ("isotonic", "binned"):
        n_all = q.shape[0]

        def logs_of(k: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
            return _event_logs(logq, k) if score == "log" else None

        if inputs.binary:
            d = _binary_decomposition(score, estimator, "binary", q[:, 1], t[:, 1], w, scale,
                                      n_bins, out_unit, logs_of(np.ones(n_all, np.int64)))
        elif reduction == "top_label":
            pred = np.concatenate(pred_parts)
            d = _binary_decomposition(score, estimator, "top_label",
                                      np.concatenate(conf_parts), np.concatenate(corr_parts),
                                      w, scale, n_bins, out_unit, logs_of(pred))
        else:
            per = tuple(_binary_decomposition(score, estimator, "class", q[:, k], t[:, k], w,
                                              scale, n_bins, out_unit,
                                              logs_of(np.full(n_all, k, np.int64)))
                        for k in range(q.shape[1]))

            def avg(name: str) -> float:
                return float(np.mean([getattr(p, name) for p in per]))

            d = Decomposition(score, estimator, "classwise", out_unit, avg("score"),
                              avg("mcb"), avg("dsc"), avg("unc"), avg("recalibrated"),
                              per_class=per)
        return _with(d, soft_split)

    scores_arr = to_numpy(inputs.scores).astype(np.float64)
    y = None if inputs.labels is None else to_numpy(inputs.labels)
    logr = _cross_fitted_logq(estimator, inputs, scores_arr, t, y, w, n_folds, rng)
    prior = np.sum(t * w[:, None], axis=0) / total
    with np.errstate(divide="ignore"):
        log_prior = np.broadcast_to(np.log(prior), t.shape)
    s_q = _mean(_vector_score(score, logq, t), w) * scale
    s_r = _mean(_vector_score(score, logr, t), w) * scale
    s_prior = _mean(_vector_score(score, log_prior, t), w) * scale
    d = Decomposition(score, estimator, "vector", out_unit, s_q, s_q - s_r, s_prior - s_r,
                      s_prior, s_r, n_folds=int(n_folds))
    return _with(d, soft_split)


def _top_label_only(inputs: Inputs, score: str, estimator: str, scale: float, n_bins: int,
                    unit: str | None) -> Decomposition:
    """The top-label decomposition from (c_i, a_i) alone (top-label inputs)."""
    xp = inputs.xp
    conf, corr, weights = [], [], []
    for chunk in inputs.chunks():
        rows = row_quantities(xp, chunk)
        conf.append(to_numpy(rows.confidence))
        corr.append(to_numpy(rows.correct))
        weights.append(np.ones(chunk.n_rows) if chunk.weights is None
                       else to_numpy(chunk.weights).astype(np.float64))
    w = np.concatenate(weights)
    if not float(w.sum()) > 0:
        raise ValueError("sample_weight sums to 0; at least one row needs a positive weight")
    with np.errstate(divide="ignore"):  # a wrong answer at c = 1: log 0, an honest inf
        return _binary_decomposition(score, estimator, "top_label", np.concatenate(conf),
                                     np.concatenate(corr), w, scale, n_bins, unit)


def _with(d: Decomposition, split: dict[str, float]) -> Decomposition:
    if not split:
        return d
    return replace(d, entropy=split["entropy"], kl=split["kl"])

