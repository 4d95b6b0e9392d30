"""Multiclass use of binary calibrators: one-vs-rest with renormalisation, and top-label.

Both wrappers turn K-class scores (logits z_i, or log-probabilities) into binary log-odds and
fit a binary calibrator (Platt, beta, isotonic, histogram binning, scaling-binning) on them by
the weighted Bernoulli likelihood:

- :class:`OneVsRest`: for each class k, s_ik = log q_ik - log(1 - q_ik) against the target
  t_ik; K calibrators; the calibrated p'_ik are renormalised, q'_ik = p'_ik / sum_j p'_ij.
- :class:`TopLabel`: one calibrator on the top-label log-odds s_i = log c_i - log(1 - c_i)
  (c_i = max_k q_ik) against the correctness a_i = t_{i, yhat_i}; the calibrated confidence
  replaces c_i and the other classes share the rest in their original proportions. It needs
  only (c_i, yhat_i), so it also fits and predicts on top-label outputs (``confidences=``,
  ``predictions=``) without the vectors.

log(1 - q_ik) = logsumexp_{j != k} z_ij - logsumexp_j z_ij is computed without forming
1 - q_ik, so log-odds stay exact for confidences near 1.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from trueprob._array import Array, float_eps, on_device
from trueprob.calibrators._fitdata import (
    confidence_log_odds,
    fit_arrays,
    fit_top_label,
    predict_inputs,
    predict_top_label_inputs,
)
from trueprob.calibrators.base import REGISTRY, Calibrator, CalibratorFormatError
from trueprob.calibrators.binary import (
    BinaryCalibrator,
    PlattScaling,
    log_sigmoid,
    torch_module,
)
from trueprob.core.special import logsumexp

# --------------------------------------------------------------------------- log-odds


def _others_lse(xp: Any, z: Array) -> tuple[Array, Array, Array, Array]:
    """Per row: ``(top, m2, log_sum2, others)`` of float64 scores z (N, K).

    ``others[:, k]`` = logsumexp_{j != k} z_j. For k != top it is m1 + log(sum_j e^{z_j - m1}
    - e^{z_k - m1}), where the sum is >= 1 + e^{z_k - m1}, so the difference loses nothing;
    for the top column it is m2 + log_sum2 with m2 the runner-up score and
    log_sum2 = log sum_{j != top} e^{z_j - m2} (>= 0), summed without the top term.
    """
    k = int(z.shape[1])
    top = xp.argmax(z, axis=1)
    # the class indices on the scores' device (a CUDA tensor compared with a CPU arange fails)
    is_top = xp.arange(k, **on_device(getattr(z, "device", None)))[None, :] == top[:, None]
    m1 = xp.max(z, axis=1, keepdims=True)
    m2 = xp.max(xp.where(is_top, -xp.inf, z), axis=1, keepdims=True)
    e1 = xp.exp(z - m1)
    sum1 = xp.sum(e1, axis=1, keepdims=True)
    e2 = xp.where(is_top, 0.0, xp.exp(xp.where(is_top, m2, z) - m2))
    log_sum2 = xp.log(xp.sum(e2, axis=1, keepdims=True))
    rest = xp.where(is_top, xp.ones_like(e1), sum1 - e1)
    others = xp.where(is_top, m2 + log_sum2, m1 + xp.log(rest))
    return top, m2[:, 0], log_sum2[:, 0], others


def one_vs_rest_log_odds(xp: Any, scores: Array) -> Array:
    """s_ik = z_ik - logsumexp_{j != k} z_ij = log q_ik - log(1 - q_ik), float64 (N, K).

    Examples
    --------
    >>> z = np.log(np.array([[0.7, 0.2, 0.1]]))
    >>> one_vs_rest_log_odds(np, z).round(6).tolist()
    [[0.847298, -1.386294, -2.197225]]
    """
    z = xp.astype(scores, xp.float64)
    return z - _others_lse(xp, z)[3]


def top_label_log_odds(xp: Any, scores: Array) -> tuple[Array, Array]:
    """(yhat_i, s_i): the top class (ties: lowest index) and log c_i - log(1 - c_i), float64.

    Examples
    --------
    >>> top, s = top_label_log_odds(np, np.log(np.array([[0.2, 0.8], [0.5, 0.5]])))
    >>> top.tolist(), s.round(6).tolist()
    ([1, 0], [1.386294, 0.0])
    """
    z = xp.astype(scores, xp.float64)
    top, _, _, others = _others_lse(xp, z)
    s = z - others
    return top, xp.take_along_axis(s, top[:, None], axis=1)[:, 0]


# --------------------------------------------------------------------------- plain data


def _check_base(base: Any, owner: str) -> BinaryCalibrator:
    if not isinstance(base, BinaryCalibrator):
        binaries = sorted(n for n, c in REGISTRY.items() if issubclass(c, BinaryCalibrator))
        raise TypeError(
            f"{owner}: base must be a binary calibrator ({', '.join(binaries)}); "
            f"got {base!r}"
        )
    return base


def _clone(base: BinaryCalibrator) -> BinaryCalibrator:
    return type(base)(**base.get_params())


def _resolve_base(base: Any, owner: str) -> BinaryCalibrator:
    """The ``base`` parameter, with None meaning PlattScaling()."""
    return PlattScaling() if base is None else _check_base(base, owner)


class _Wrapper(Calibrator):
    """Shared plumbing of the multiclass wrappers (not registered: its name starts with _)."""

    base: Any
    n_classes_: int | None
    kind_: str
    #: the values ``kind_`` may take (what the wrapper was fitted on)
    _kinds: ClassVar[tuple[str, ...]] = ("logits", "probs")

    def _fit_data(self, labels: Any, logits: Any, probs: Any, targets: Any, counts: Any,
                  sample_weight: Any) -> Any:
        _resolve_base(self.base, type(self).__name__)
        return fit_arrays(labels, logits=logits, probs=probs, targets=targets, counts=counts,
                          sample_weight=sample_weight)

    def _logproba_from_scores(self, xp: Any, scores: Array) -> Array:
        raise NotImplementedError  # pragma: no cover

    def predict_logproba(
        self, *, logits: Any = None, probs: Any = None
    ) -> Array:
        """Calibrated log-probabilities (N, K), each row a log-PMF.

        Computed in float64 and returned in the namespace, device and dtype of the input.
        """
        self._check_fitted()
        xp, scores, _ = predict_inputs(logits=logits, probs=probs)
        k = int(scores.shape[1])
        if self.n_classes_ is not None and k != self.n_classes_:
            raise ValueError(
                f"{type(self).__name__} was fitted on K={self.n_classes_} classes; the scores "
                f"passed to predict have K={k} columns"
            )
        return self._logproba_from_scores(xp, scores)

    def to_torch(self) -> Any:
        """A ``torch.nn.Module`` computing :meth:`predict_logproba` on a tensor.

        Its input is what the wrapper was fitted on (``kind_``): logits or probabilities,
        (N, K); no validation is done. A map fitted on top-label confidences has no such
        input and is refused.
        """
        self._check_fitted()
        if self.kind_ not in ("logits", "probs"):
            raise ValueError(
                f"{type(self).__name__} was fitted on top-label confidences: its module would "
                f"not know whether it takes logits or probabilities; use predict_confidences "
                f"or predict_logproba"
            )
        return torch_module(self, self.kind_)

    def _load_common(self) -> None:
        name = type(self).__name__
        if self.base is not None and not isinstance(self.base, BinaryCalibrator):
            raise CalibratorFormatError(f"{name}: base must be a binary calibrator; got "
                                        f"{self.base!r}")
        k = self.n_classes_
        kinds = self._kinds
        if self.kind_ not in kinds:
            raise CalibratorFormatError(f"{name}: kind_ must be one of {list(kinds)}; got "
                                        f"{self.kind_!r}")
        if k is None and self.kind_ == "confidences":
            return  # fitted on top-label outputs with hard labels: K was not known
        if isinstance(k, bool) or not isinstance(k, int) or k < 2:
            raise CalibratorFormatError(f"{name}: n_classes_ must be an integer >= 2; got {k!r}")

    def _check_nested(self, cal: Any, where: str) -> None:
        base = type(_resolve_base(self.base, type(self).__name__))
        if type(cal) is not base or not cal.is_fitted:
            raise CalibratorFormatError(
                f"{type(self).__name__}: {where} must be a fitted {base.__name__} (the base)"
            )


# --------------------------------------------------------------------------- one-vs-rest


class OneVsRest(_Wrapper):
    """One-vs-rest: a binary calibrator per class, then rows renormalised.

    For class k the binary calibrator f_k is fitted (weighted Bernoulli likelihood) on the
    one-vs-rest log-odds s_ik = log q_ik - log(1 - q_ik) with targets t_ik (one-hot for hard
    labels; soft targets and count fractions as given). The output is

        q'_ik = p'_ik / sum_j p'_ij,    p'_ik = f_k(s_ik),

    returned as log-probabilities log p'_ik - logsumexp_j log p'_ij (each row of q' sums to
    1). The renormalisation is not part of the fitted likelihood (Zadrozny and Elkan 2002's
    recipe). A row whose p'_ij are all exactly 0 (possible only with ``clip=0``) is uniform.

    Parameters
    ----------
    base : binary calibrator, optional
        Cloned (same parameters) for every class; None (default) means
        :class:`~trueprob.calibrators.binary.PlattScaling()`.

    Attributes
    ----------
    calibrators_ : list of K fitted binary calibrators
    n_classes_ : int
    kind_ : {"logits", "probs"}
        What it was fitted on (and what :meth:`to_torch`'s module takes).

    Examples
    --------
    >>> import numpy as np
    >>> from trueprob.calibrators.multiclass import OneVsRest
    >>> from trueprob.calibrators.nonparametric import IsotonicCalibration
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=(300, 3)) * 3
    >>> y = rng.integers(0, 3, size=300)
    >>> cal = OneVsRest(base=IsotonicCalibration()).fit(y, logits=z)
    >>> q = np.exp(cal.predict_logproba(logits=z))
    >>> q.shape, bool(np.allclose(q.sum(axis=1), 1.0))
    ((300, 3), True)
    """

    _fitted_attrs = ("calibrators_", "n_classes_", "kind_")

    def __init__(self, *, base: Any = None) -> None:
        self.base = base

    def fit(
        self, labels: Any = None, /, *, logits: Any = None, probs: Any = None,
        targets: Any = None, counts: Any = None, sample_weight: Any = None,
    ) -> OneVsRest:
        """Fit one binary calibrator per class (same inputs as every calibrator's ``fit``)."""
        data = self._fit_data(labels, logits, probs, targets, counts, sample_weight)
        s = one_vs_rest_log_odds(np, data.scores)
        t, w = data.targets, data.weights
        base = _resolve_base(self.base, "OneVsRest")
        fitted = []
        for k in range(data.n_classes):
            cal = _clone(base)
            try:
                cal._fit_binary(s[:, k], t[:, k], w, data.kind)
            except ValueError as exc:
                raise ValueError(f"OneVsRest, class {k}: {exc}") from exc
            fitted.append(cal)
        self.calibrators_ = fitted
        self.n_classes_ = data.n_classes
        self.kind_ = data.kind
        return self

    def _logproba_from_scores(self, xp: Any, scores: Array) -> Array:
        s = one_vs_rest_log_odds(xp, scores)
        # a copied column is contiguous (torch.searchsorted warns on strided input)
        cols = [log_sigmoid(xp, cal._log_odds(xp, xp.asarray(s[:, k], copy=True)))
                for k, cal in enumerate(self.calibrators_)]
        logp = xp.stack(cols, axis=1)
        return xp.astype(logp - logsumexp(xp, logp, axis=1, keepdims=True), scores.dtype)

    def _check_loaded(self) -> None:
        self._load_common()
        cals = self.calibrators_
        if not isinstance(cals, list) or len(cals) != self.n_classes_:
            raise CalibratorFormatError(
                f"OneVsRest: calibrators_ must be a list of n_classes_={self.n_classes_} "
                f"calibrators"
            )
        for k, cal in enumerate(cals):
            self._check_nested(cal, f"calibrators_[{k}]")


# --------------------------------------------------------------------------- top-label


class TopLabel(_Wrapper):
    """Top-label calibration: a binary calibrator on the confidence; the argmax is kept.

    The binary calibrator f is fitted (weighted Bernoulli likelihood) on the top-label
    log-odds s_i = log c_i - log(1 - c_i), c_i = max_k q_ik, against the correctness
    a_i = t_{i, yhat_i} (1[y_i = yhat_i] for hard labels). The output row is

        q'_{i, yhat_i} = c'_i,    q'_ij = (1 - c'_i) q_ij / (1 - c_i)  for j != yhat_i,

    with c'_i = sigmoid(f(s_i)): the calibrated confidence on the predicted class, the rest
    shared by the other classes in the model's own proportions, so each row sums to 1. To keep
    yhat_i the argmax, c'_i is raised where needed to just above r_i / (1 + r_i), r_i being
    the largest other share q_ij / (1 - c_i) (the point where the runner-up would tie):
    logit(c'_i) >= log r_i + 8 eps (1 + log K), eps that of the output dtype, a margin that
    survives rounding (also through a softmax of the output in that dtype; SPEC.md breaks
    ties by the lowest index) and changes c'_i by a few ulps. The floor binds only when the
    calibrator puts the confidence below what a row with this argmax and these proportions
    can have (near 1/K and below).

    **Top-label outputs** (LLM and API evaluations that publish only the predicted class
    and its confidence): ``fit(labels, confidences=c, predictions=yhat)`` fits the same map
    on s_i = log c_i - log(1 - c_i) (:func:`~trueprob.calibrators._fitdata.confidence_log_odds`)
    against a_i = 1[y_i = yhat_i], and :meth:`predict_confidences` returns
    c'_i = sigmoid(f(s_i)). On the same rows this is the map the vector path fits (s_i is the
    same number, computed from c_i instead of from the vector). With ``targets=`` or
    ``counts=`` (N, K) the correctness is the target's mass on the predicted class,
    a_i = t_{i, yhat_i}, the Bernoulli cross-entropy target the binary calibrators accept.
    Without the vector there is no runner-up, so :meth:`predict_confidences` applies no
    argmax floor; it agrees with the vector path's confidence wherever that floor does not
    bind. A map fitted either way also applies to the other kind of input
    (:meth:`predict_logproba` on vectors, :meth:`predict_confidences` on top-label outputs).
    Temperature, vector, matrix and Dirichlet scaling transform the whole vector and cannot
    be fitted from confidences.

    Parameters
    ----------
    base : binary calibrator, optional
        Cloned for the fit; None (default) means
        :class:`~trueprob.calibrators.binary.PlattScaling()`.

    Attributes
    ----------
    calibrator_ : fitted binary calibrator
    n_classes_ : int or None
        K; None when fitted on top-label confidences with hard labels and no ``n_classes``
        (K is not guessed from the largest index seen).
    kind_ : {"logits", "probs", "confidences"}
        What it was fitted on (and, for logits or probabilities, what :meth:`to_torch`'s
        module takes).

    Examples
    --------
    >>> import numpy as np
    >>> from trueprob.calibrators.multiclass import TopLabel
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=(300, 4)) * 3
    >>> y = rng.integers(0, 4, size=300)
    >>> cal = TopLabel().fit(y, logits=z)
    >>> q = np.exp(cal.predict_logproba(logits=z))
    >>> bool(np.all(q.argmax(axis=1) == z.argmax(axis=1))), bool(np.allclose(q.sum(1), 1))
    (True, True)
    >>> c, yhat = q.max(axis=1), q.argmax(axis=1)   # top-label outputs only
    >>> tl = TopLabel().fit(y, confidences=c, predictions=yhat)
    >>> c_new = tl.predict_confidences(confidences=c, predictions=yhat)
    >>> c_new.shape, tl.kind_, tl.n_classes_
    ((300,), 'confidences', None)
    """

    _fitted_attrs = ("calibrator_", "n_classes_", "kind_")
    _kinds = ("logits", "probs", "confidences")

    def __init__(self, *, base: Any = None) -> None:
        self.base = base

    def fit(
        self, labels: Any = None, /, *, logits: Any = None, probs: Any = None,
        targets: Any = None, counts: Any = None, sample_weight: Any = None,
        confidences: Any = None, predictions: Any = None, n_classes: int | None = None,
    ) -> TopLabel:
        """Fit the binary calibrator on (top-label log-odds, correctness).

        Either ``logits`` / ``probs`` (N, K), or top-label outputs: ``confidences`` c_i and
        ``predictions`` yhat_i (N,) together, optionally with ``n_classes`` (K, saved and
        checked against the predictions; with ``targets`` / ``counts`` K is their width).
        """
        if confidences is not None or predictions is not None:
            return self._fit_top_label(labels, confidences, predictions, targets, counts,
                                       sample_weight, n_classes, logits, probs)
        if n_classes is not None:
            raise TypeError("n_classes= is for top-label inputs (confidences=, "
                            "predictions=); with logits= or probs= K is their width")
        data = self._fit_data(labels, logits, probs, targets, counts, sample_weight)
        top, s = top_label_log_odds(np, data.scores)
        onehot_top = np.zeros(data.scores.shape)
        onehot_top[np.arange(data.n_rows), top] = 1.0
        a = data.target_dot(onehot_top)
        cal = _clone(_resolve_base(self.base, "TopLabel"))
        try:
            cal._fit_binary(s, a, data.weights, data.kind)
        except ValueError as exc:
            raise ValueError(f"TopLabel (correctness of the top class): {exc}") from exc
        self.calibrator_ = cal
        self.n_classes_ = data.n_classes
        self.kind_ = data.kind
        return self

    def _fit_top_label(self, labels: Any, confidences: Any, predictions: Any, targets: Any,
                       counts: Any, sample_weight: Any, n_classes: int | None, logits: Any,
                       probs: Any) -> TopLabel:
        """:meth:`fit` on top-label outputs (see the class docstring)."""
        if logits is not None or probs is not None:
            raise TypeError("pass logits= or probs= (the vectors), or confidences= with "
                            "predictions= (top-label outputs), not both")
        if n_classes is not None and (isinstance(n_classes, bool)
                                      or not isinstance(n_classes, (int, np.integer))
                                      or n_classes < 2):
            raise ValueError(f"n_classes must be an integer >= 2; got {n_classes!r}")
        cal = _clone(_resolve_base(self.base, "TopLabel"))
        data = fit_top_label(labels, confidences=confidences, predictions=predictions,
                             targets=targets, counts=counts, sample_weight=sample_weight,
                             n_classes=None if n_classes is None else int(n_classes))
        try:
            # the confidences are probabilities: the base records "probs"
            cal._fit_binary(data.log_odds, data.correct, data.weights, "probs")
        except ValueError as exc:
            raise ValueError(f"TopLabel (correctness of the predicted class): {exc}") from exc
        self.calibrator_ = cal
        self.n_classes_ = data.n_classes
        self.kind_ = "confidences"
        return self

    def predict_confidences(self, *, confidences: Any, predictions: Any) -> Array:
        """Calibrated confidences c'_i = sigmoid(f(log c_i - log(1 - c_i))), shape (N,).

        ``predictions`` are unchanged by the map; they are checked (integer class indices
        >= 0, and < K when the calibrator knows K). Computed in float64 and returned in the
        namespace, device and floating dtype of ``confidences``.

        Examples
        --------
        >>> import numpy as np
        >>> from trueprob.calibrators.nonparametric import IsotonicCalibration
        >>> c = np.array([0.6, 0.7, 0.8, 0.9]); yhat = np.array([0, 1, 1, 2])
        >>> cal = TopLabel(base=IsotonicCalibration(clip=0.0)).fit(
        ...     np.array([0, 0, 1, 2]), confidences=c, predictions=yhat)
        >>> cal.predict_confidences(confidences=c, predictions=yhat).tolist()
        [0.5, 0.5, 1.0, 1.0]
        """
        self._check_fitted()
        xp, conf = predict_top_label_inputs(confidences=confidences, predictions=predictions,
                                            n_classes=self.n_classes_)
        s = confidence_log_odds(xp, conf)
        out = xp.exp(log_sigmoid(xp, self.calibrator_._log_odds(xp, s)))
        return xp.astype(out, conf.dtype)

    def _logproba_from_scores(self, xp: Any, scores: Array) -> Array:
        z = xp.astype(scores, xp.float64)
        # the top entry stays above the runner-up by more than the rounding of a log-softmax
        # in the output dtype: |log q'| <= log K at the floor, so 8 eps (1 + log K) suffices
        margin = 8.0 * float_eps(scores.dtype) * (1.0 + math.log(int(scores.shape[1])))
        out = _top_label_apply(xp, z, lambda s: self.calibrator_._log_odds(xp, s), margin)
        return xp.astype(out, scores.dtype)

    def _check_loaded(self) -> None:
        self._load_common()
        self._check_nested(self.calibrator_, "calibrator_")


def _top_label_apply(xp: Any, z: Array, calibrate: Any, margin: float) -> Array:
    """The TopLabel output row (see :class:`TopLabel`) from float64 scores z (N, K)."""
    top, m2, log_sum2, others = _others_lse(xp, z)
    is_top = xp.arange(int(z.shape[1]), **on_device(getattr(z, "device", None)))[None, :] \
        == top[:, None]
    s = xp.take_along_axis(z - others, top[:, None], axis=1)[:, 0]
    # runner-up share r = q_(2) / (1 - c) = e^{m2} / sum_{j != top} e^{z_j} = e^{-log_sum2};
    # c' > r / (1 + r)  <=>  logit(c') > log r = -log_sum2; log c' - log q'_(2) = s' - log r
    s_cal = xp.maximum(calibrate(s), -log_sum2 + margin)
    log_rest = log_sigmoid(xp, -s_cal) - (m2 + log_sum2)  # log(1 - c') - log sum_{j != top} e^z
    return xp.where(is_top, log_sigmoid(xp, s_cal)[:, None], z + log_rest[:, None])


__all__ = ["OneVsRest", "TopLabel", "one_vs_rest_log_odds", "top_label_log_odds"]
