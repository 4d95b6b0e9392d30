"""Binary calibrators: Platt scaling and beta calibration, fitted by maximum likelihood.

A binary calibrator maps the model's log-odds s_i = log q_i1 - log q_i0 (the logit z_i of a
binary model; log p_i - log(1 - p_i) for probabilities) to a calibrated probability
p'_i = P(Y_i = 1 | s_i). It is fitted by minimising the weighted Bernoulli NLL of the
calibration set,

    L = sum_i w_i [ -t_i log p'_i - (1 - t_i) log(1 - p'_i) ],

with t_i = 1[y_i = 1] for hard labels, or the soft target t_i1 (a soft target is the Bernoulli
cross-entropy, which the same formula computes). Both maps here are logistic regressions
p' = sigmoid(theta . x(s)) on fixed features x(s), fitted by Newton's method with the exact
gradient X^T w (p' - t) and Hessian X^T diag(w p'(1 - p')) X and a backtracking line search.

For K > 2 classes wrap a binary calibrator in :class:`~trueprob.calibrators.multiclass.OneVsRest`
or :class:`~trueprob.calibrators.multiclass.TopLabel`.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
from scipy.special import expit

from trueprob._array import Array
from trueprob.calibrators._fitdata import fit_arrays, predict_inputs
from trueprob.calibrators.base import Calibrator, CalibratorFormatError

# --------------------------------------------------------------------------- shared helpers


def log_sigmoid(xp: Any, x: Array) -> Array:
    """log sigmoid(x) = -log(1 + e^-x), computed as min(x, 0) - log1p(e^-|x|) (never overflows)."""
    return xp.minimum(x, xp.zeros_like(x)) - xp.log1p(xp.exp(-xp.abs(x)))


def binary_log_odds(xp: Any, scores: Array) -> Array:
    """s_i = scores_i1 - scores_i0 in float64: the log-odds of class 1 from (N, 2) scores.

    For logits (0, z) this is z; for log-probabilities (log(1 - p), log p) it is logit(p).
    """
    s = xp.astype(scores, xp.float64)
    return s[:, 1] - s[:, 0]


def check_positive_int(value: Any, name: str, owner: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{owner}: {name} must be a positive integer; got {value!r}")
    return int(value)


def _check_tol(value: Any, owner: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not (math.isfinite(value) and value > 0):
        raise ValueError(f"{owner}: tol must be a positive finite number; got {value!r}")
    return float(value)


def check_scalar(value: Any, name: str, owner: str, *, nonnegative: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) \
            or not math.isfinite(value) or (nonnegative and value < 0):
        expect = "a finite number >= 0" if nonnegative else "a finite number"
        raise CalibratorFormatError(f"{owner}: {name} must be {expect}; got {value!r}")
    return float(value)


class BinaryCalibrator(Calibrator):
    """A map from the binary log-odds s to a calibrated log-odds s' (float64).

    Subclasses implement ``_fit_log_odds(s, t, w)`` on float64 numpy arrays (N,) with w > 0,
    and ``_log_odds(xp, s)`` in any array namespace. The multiclass wrappers call these on one
    column of log-odds at a time (through ``_fit_binary``).
    """

    _base = True
    kind_: str

    # ------------------------------------------------------------------ to implement
    def _fit_log_odds(self, s: np.ndarray, t: np.ndarray, w: np.ndarray) -> None:
        raise NotImplementedError  # pragma: no cover

    def _log_odds(self, xp: Any, s: Array) -> Array:
        raise NotImplementedError  # pragma: no cover

    # ------------------------------------------------------------------ shared steps
    def _fit_binary(self, s: np.ndarray, t: np.ndarray, w: np.ndarray, kind: str) -> None:
        keep = w > 0
        self._fit_log_odds(s[keep], t[keep], w[keep])
        self.kind_ = kind

    def _logproba_from_scores(self, xp: Any, scores: Array) -> Array:
        """(log(1 - p'), log p') (N, 2) from validated (N, 2) scores, in their dtype."""
        out = self._log_odds(xp, binary_log_odds(xp, scores))
        logp = xp.stack([log_sigmoid(xp, -out), log_sigmoid(xp, out)], axis=1)
        return xp.astype(logp, scores.dtype)

    # ------------------------------------------------------------------ public API
    def fit(
        self,
        labels: Any = None,
        /,
        *,
        logits: Any = None,
        probs: Any = None,
        targets: Any = None,
        counts: Any = None,
        sample_weight: Any = None,
    ) -> BinaryCalibrator:
        """Fit on a binary calibration set: 1-D positive-class scores (or two columns), one of
        ``labels`` / ``targets`` / ``counts``, optional ``sample_weight``. Returns self."""
        data = fit_arrays(labels, logits=logits, probs=probs, targets=targets, counts=counts,
                          sample_weight=sample_weight)
        self._check_two_classes(data.n_classes, "fit")
        self._fit_binary(binary_log_odds(np, data.scores), data.targets[:, 1], data.weights,
                         data.kind)
        return self

    def predict_logproba(
        self, *, logits: Any = None, probs: Any = None
    ) -> Array:
        """Calibrated log-probabilities (N, 2), columns (log(1 - p'), log p').

        Computed in float64 and returned in the namespace, device and dtype of the input.
        """
        self._check_fitted()
        xp, scores, _ = predict_inputs(logits=logits, probs=probs)
        self._check_two_classes(int(scores.shape[1]), "predict")
        return self._logproba_from_scores(xp, scores)

    def to_torch(self) -> Any:
        """A ``torch.nn.Module`` computing :meth:`predict_logproba` on a tensor.

        Its input is what the calibrator was fitted on (``kind_``): logits, or probabilities,
        as (N,) positive-class scores or (N, 2) rows; no validation is done.
        """
        self._check_fitted()
        return torch_module(self, self.kind_)

    def _check_two_classes(self, k: int, what: str) -> None:
        if k != 2:
            name = type(self).__name__
            raise ValueError(
                f"{name} is a binary calibrator but the scores passed to {what} have K={k} "
                f"columns; for K > 2 wrap it: OneVsRest(base={name}()) or "
                f"TopLabel(base={name}())"
            )

    def _check_kind(self) -> None:
        if self.kind_ not in ("logits", "probs"):
            raise CalibratorFormatError(
                f"{type(self).__name__}: kind_ must be 'logits' or 'probs'; got {self.kind_!r}"
            )


def torch_module(cal: Any, kind: str) -> Any:
    """A ``torch.nn.Module`` running ``cal._logproba_from_scores`` on tensors.

    The input (logits or probabilities, per ``kind``; (N,) binary or (N, K)) is prepared as in
    :func:`trueprob.calibrators._fitdata.predict_inputs` (binary expanded to two columns, log of
    probabilities floored), then the calibrator's own array-API code runs with torch as the
    namespace, so the module and ``predict_logproba`` compute the same numbers. The fitted
    tables are copied to the input's device on each call.
    """
    import array_api_compat.torch as xp
    import torch

    from trueprob._validation import expand_binary
    from trueprob.calibrators._fitdata import _log_probs

    class CalibratedLogProba(torch.nn.Module):
        """Scores (N,) or (N, K) -> calibrated log-probabilities (N, K)."""

        def __init__(self) -> None:
            super().__init__()
            self.kind = kind
            self.calibrator = copy.deepcopy(cal)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if x.ndim == 1:
                x = expand_binary(xp, x, self.kind)
            if self.kind == "probs":
                x = _log_probs(xp, x)
            return self.calibrator._logproba_from_scores(xp, x)

    return CalibratedLogProba()


# --------------------------------------------------------------------------- logistic fit


def _logistic_nll(x: np.ndarray, theta: np.ndarray, t: np.ndarray, w: np.ndarray) -> float:
    f = x @ theta
    # -t log sigmoid(f) - (1 - t) log sigmoid(-f) = log(1 + e^f) - t f
    return float(np.dot(w, np.logaddexp(0.0, f) - t * f))


def fit_logistic(
    x: np.ndarray, t: np.ndarray, w: np.ndarray, theta0: np.ndarray, *,
    max_iter: int, tol: float,
) -> tuple[np.ndarray, float, int, bool]:
    """Minimise sum_i w_i [log(1 + e^{f_i}) - t_i f_i], f = x theta, by Newton's method.

    Returns ``(theta, nll, n_iter, converged)``. Converged means the Newton decrement
    lambda^2 = g^T H^-1 g fell to ``2 * tol`` times the NLL: the NLL is then within about
    ``tol`` (relative) of its minimum, and the final full Newton step is taken, so theta is
    accurate to about sqrt(tol) relative before that step and to rounding after it. A
    problem without a finite minimiser (separable data) makes lambda^2 / NLL stay bounded
    away from 0 and ends with ``converged = False``.
    """
    theta = np.asarray(theta0, dtype=np.float64).copy()
    nll = _logistic_nll(x, theta, t, w)
    for it in range(1, max_iter + 1):
        f = x @ theta
        p = expit(f)
        g = x.T @ (w * (p - t))
        h = (x * (w * p * (1.0 - p))[:, None]).T @ x
        try:
            step = np.linalg.solve(h, g)
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(h, g, rcond=None)[0]
        decrement = float(g @ step)
        if not (math.isfinite(decrement) and decrement >= 0):
            return theta, nll, it, False
        if decrement <= 2.0 * tol * nll:
            trial = theta - step
            trial_nll = _logistic_nll(x, trial, t, w)
            if trial_nll <= nll:
                theta, nll = trial, trial_nll
            return theta, nll, it, True
        alpha = 1.0
        while True:
            trial = theta - alpha * step
            trial_nll = _logistic_nll(x, trial, t, w)
            if trial_nll <= nll - 1e-4 * alpha * decrement:
                break
            alpha *= 0.5
            if alpha < 1e-12:  # no decrease left at floating-point resolution
                return theta, nll, it, decrement <= 1e-8 * max(nll, 1e-300)
        theta, nll = trial, trial_nll
    return theta, nll, max_iter, False


def _check_overlap(s: np.ndarray, t: np.ndarray, owner: str) -> None:
    """The Platt MLE exists iff positive and negative mass overlap in s (no separation).

    With P = rows carrying positive mass (t > 0) and Q = rows carrying negative mass (t < 1),
    the NLL decreases without bound along (a, b) with a > 0 iff min_P s >= max_Q s, with a < 0
    iff max_P s <= min_Q s, and with a = 0 iff P or Q is empty.
    """
    pos, neg = s[t > 0], s[t < 1]
    if pos.size == 0 or neg.size == 0:
        which = "positive" if pos.size == 0 else "negative"
        raise ValueError(
            f"{owner} needs both classes in the calibration set; there is no {which} "
            f"target mass (all targets are {0 if pos.size == 0 else 1})"
        )
    if pos.min() >= neg.max() or pos.max() <= neg.min():
        raise ValueError(
            f"{owner}: the scores separate the classes perfectly (every positive has a "
            f"log-odds {'>=' if pos.min() >= neg.max() else '<='} every negative), so the "
            f"maximum-likelihood map does not exist (its slope grows without bound); use more "
            f"calibration data, a non-parametric calibrator, or PlattScaling(smooth_targets="
            f"True) (Platt's 1999 targets, whose map always exists)"
        )


# --------------------------------------------------------------------------- Platt


class PlattScaling(BinaryCalibrator):
    """Platt scaling: logistic regression on the binary log-odds (Bernoulli likelihood).

    The map is p' = sigmoid(a s + b), s the model's log-odds (its binary logit), fitted by
    minimising the weighted Bernoulli NLL (module docstring) with exact Newton steps from the
    identity map (a, b) = (1, 0); where that fails (scores of hundreds, from probabilities of
    1e-300 or exactly 1, whose rows' Hessian underflows), again from the constant map on the
    scores rescaled to [-1, 1] (up to ``max_iter`` more steps). Targets are used as given (hard,
    soft or count fractions) unless ``smooth_targets=True``.

    Parameters
    ----------
    max_iter : int
        Newton steps allowed (each costs one pass over the rows); 100.
    tol : float
        Stop when the Newton decrement is at most 2 * tol * NLL; 1e-12.
    smooth_targets : bool
        Platt's (1999, section 2.2) out-of-sample targets: a positive counts as
        (N+ + 1) / (N+ + 2) and a negative as 1 / (N- + 2), N+ and N- the positive and negative
        target mass (row counts for unit weights); a soft target t becomes
        t (N+ + 1) / (N+ + 2) + (1 - t) / (N- + 2). Every target is then strictly inside
        (0, 1), so the map exists on separable data (small folds of a well-fitted model).
        False (the default): the plain maximum-likelihood map on the targets as given, which
        does not exist on separable data.

    Attributes
    ----------
    coef_ : float
        The slope a.
    intercept_ : float
        The intercept b.
    n_iter_ : int
        Newton steps taken.
    kind_ : {"logits", "probs"}
        What it was fitted on (and what :meth:`to_torch`'s module takes).

    Raises ``ValueError`` when the classes are perfectly separated by s (no finite MLE;
    never with ``smooth_targets=True``).

    Examples
    --------
    >>> import numpy as np
    >>> from trueprob.calibrators.binary import PlattScaling
    >>> z = np.array([-2.0, -1.0, 0.0, 1.0, 2.0, 3.0])
    >>> y = np.array([0, 1, 0, 1, 0, 1])
    >>> cal = PlattScaling().fit(y, logits=z)
    >>> round(cal.coef_, 4), round(cal.intercept_, 4)
    (0.3613, -0.1807)
    >>> np.exp(cal.predict_logproba(logits=np.array([0.5]))).round(4)
    array([[0.5, 0.5]])
    """

    _fitted_attrs = ("coef_", "intercept_", "n_iter_", "kind_")
    _added_params = frozenset({"smooth_targets"})

    def __init__(self, *, max_iter: int = 100, tol: float = 1e-12,
                 smooth_targets: bool = False) -> None:
        self.max_iter = max_iter
        self.tol = tol
        self.smooth_targets = smooth_targets

    def _fit_log_odds(self, s: np.ndarray, t: np.ndarray, w: np.ndarray) -> None:
        if not isinstance(self.smooth_targets, (bool, np.bool_)):
            raise ValueError(f"PlattScaling: smooth_targets must be True or False; got "
                             f"{self.smooth_targets!r}")
        if self.smooth_targets:
            n_pos, n_neg = float(np.sum(w * t)), float(np.sum(w * (1 - t)))
            t = t * (n_pos + 1) / (n_pos + 2) + (1 - t) / (n_neg + 2)
        a, b, n_iter = platt_fit(s, t, w, max_iter=self.max_iter, tol=self.tol,
                                 owner=type(self).__name__)
        self.coef_, self.intercept_, self.n_iter_ = a, b, n_iter

    def _log_odds(self, xp: Any, s: Array) -> Array:
        return self.coef_ * s + self.intercept_

    def _check_loaded(self) -> None:
        name = type(self).__name__
        self.coef_ = check_scalar(self.coef_, "coef_", name)
        self.intercept_ = check_scalar(self.intercept_, "intercept_", name)
        n_iter = self.n_iter_
        if isinstance(n_iter, bool) or not isinstance(n_iter, int) or n_iter < 0:
            raise CalibratorFormatError(f"{name}: n_iter_ must be an integer >= 0; got "
                                        f"{n_iter!r}")
        self._check_kind()


def platt_fit(s: np.ndarray, t: np.ndarray, w: np.ndarray, *, max_iter: int, tol: float,
              owner: str) -> tuple[float, float, int]:
    """Fitted (a, b, n_iter) of p' = sigmoid(a s + b); shared with ScalingBinning."""
    max_iter = check_positive_int(max_iter, "max_iter", owner)
    tol = _check_tol(tol, owner)
    _check_overlap(s, t, owner)
    x = np.stack([s, np.ones_like(s)], axis=1)
    theta, nll, n_iter, converged = fit_logistic(x, t, w, np.array([1.0, 0.0]),
                                                 max_iter=max_iter, tol=tol)
    if not converged:
        # from the identity, scores of hundreds (probabilities of 1e-300 or exactly 1) give
        # rows whose Hessian underflows and Newton's direction is useless; the textbook start
        # of iteratively reweighted least squares, the constant map, on scores rescaled to
        # |u| <= 1, has every row's weight p (1 - p) away from 0 (the NLL is convex: the same
        # minimum)
        scale = float(np.max(np.abs(s))) or 1.0
        tbar = float(np.clip(np.sum(w * t) / np.sum(w), 1e-12, 1 - 1e-12))
        u = np.stack([s / scale, np.ones_like(s)], axis=1)
        start = np.array([0.0, math.log(tbar / (1 - tbar))])
        theta_u, nll_u, n_more, converged = fit_logistic(u, t, w, start, max_iter=max_iter,
                                                         tol=tol)
        if converged:
            theta, n_iter = np.array([theta_u[0] / scale, theta_u[1]]), n_iter + n_more
        nll = nll_u
    if not converged:
        raise ValueError(
            f"{owner} did not converge in max_iter={max_iter} Newton steps (NLL {nll:.6g}); "
            f"raise max_iter or tol"
        )
    return float(theta[0]), float(theta[1]), n_iter


# --------------------------------------------------------------------------- beta


def beta_features(xp: Any, s: Array) -> tuple[Array, Array]:
    """(log p, -log(1 - p)) of p = sigmoid(s), computed from s without forming p."""
    return log_sigmoid(xp, s), -log_sigmoid(xp, -s)


class BetaCalibration(BinaryCalibrator):
    """Beta calibration (Kull, Silva Filho, Flach 2017), Bernoulli likelihood.

    With p = sigmoid(s) the model's probability, the calibrated log-odds is

        s' = a log p - b log(1 - p) + c,    a >= 0, b >= 0,

    i.e. p' = 1 / (1 + 1 / (e^c p^a / (1 - p)^b)): a logistic regression on the features
    (log p, -log(1 - p)), fitted by minimising the weighted Bernoulli NLL (module docstring).
    a, b >= 0 keeps the map monotone (the paper's constraint). The paper refits with one
    feature dropped when its coefficient comes out negative; here the constrained problem is
    solved exactly: the NLL is convex, so its minimum over a, b >= 0 is the lowest of the
    minima over the faces {a, b free}, {a = 0}, {b = 0}, {a = b = 0} that satisfy the
    constraint. a = b = 1, c = 0 is the identity map (the Newton starting point).

    Parameters
    ----------
    max_iter : int
        Newton steps allowed per face; 100.
    tol : float
        Newton decrement tolerance, as in :class:`PlattScaling`; 1e-12.

    Attributes
    ----------
    a_, b_, c_ : float
        The fitted parameters.
    kind_ : {"logits", "probs"}
        What it was fitted on (and what :meth:`to_torch`'s module takes).

    Examples
    --------
    >>> import numpy as np
    >>> from trueprob.calibrators.binary import BetaCalibration
    >>> p = np.array([0.1, 0.2, 0.3, 0.6, 0.7, 0.8, 0.9, 0.4])
    >>> y = np.array([0, 1, 0, 1, 0, 1, 1, 0])
    >>> cal = BetaCalibration().fit(y, probs=p)
    >>> bool(cal.a_ >= 0 and cal.b_ >= 0)
    True
    >>> q = np.exp(cal.predict_logproba(probs=p))[:, 1]
    >>> bool(np.all(np.diff(q[np.argsort(p)]) >= 0))   # monotone in p
    True
    """

    _fitted_attrs = ("a_", "b_", "c_", "kind_")

    def __init__(self, *, max_iter: int = 100, tol: float = 1e-12) -> None:
        self.max_iter = max_iter
        self.tol = tol

    def _fit_log_odds(self, s: np.ndarray, t: np.ndarray, w: np.ndarray) -> None:
        name = type(self).__name__
        max_iter = check_positive_int(self.max_iter, "max_iter", name)
        tol = _check_tol(self.tol, name)
        if not (np.any(t > 0) and np.any(t < 1)):
            raise ValueError(
                f"{name} needs both classes in the calibration set; all targets are "
                f"{0 if not np.any(t > 0) else 1}"
            )
        f1, f2 = beta_features(np, s)
        one = np.ones_like(s)
        # (feature columns, which of (a, b, c) they fit, start)
        faces = [
            (np.stack([f1, f2, one], 1), (0, 1, 2), np.array([1.0, 1.0, 0.0])),
            (np.stack([f2, one], 1), (1, 2), np.array([1.0, 0.0])),
            (np.stack([f1, one], 1), (0, 2), np.array([1.0, 0.0])),
        ]
        best: tuple[float, np.ndarray] | None = None
        for x, which, start in faces:
            theta, nll, _, converged = fit_logistic(x, t, w, start, max_iter=max_iter, tol=tol)
            full = np.zeros(3)
            full[list(which)] = theta
            if converged and full[0] >= 0 and full[1] >= 0 and (best is None or nll < best[0]):
                best = (nll, full)
            if best is not None and len(which) == 3:
                break  # the unconstrained minimum is feasible, hence the constrained one
        # a = b = 0: constant map, c = logit of the weighted mean target (closed form)
        mean_t = float(np.dot(w, t) / w.sum())
        c0 = math.log(mean_t) - math.log1p(-mean_t)
        nll0 = _logistic_nll(one[:, None], np.array([c0]), t, w)
        if best is None or nll0 < best[0]:
            best = (nll0, np.array([0.0, 0.0, c0]))
        self.a_, self.b_, self.c_ = (float(v) for v in best[1])

    def _log_odds(self, xp: Any, s: Array) -> Array:
        f1, f2 = beta_features(xp, s)
        return self.a_ * f1 + self.b_ * f2 + self.c_

    def _check_loaded(self) -> None:
        name = type(self).__name__
        self.a_ = check_scalar(self.a_, "a_", name, nonnegative=True)
        self.b_ = check_scalar(self.b_, "b_", name, nonnegative=True)
        self.c_ = check_scalar(self.c_, "c_", name)
        self._check_kind()


__all__ = ["BetaCalibration", "PlattScaling"]
