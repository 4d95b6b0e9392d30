"""Temperature scaling: q = softmax(z / T), T fitted by maximum likelihood (or by grid ECE).

With beta = 1/T and t_i the target of row i (one-hot, soft or normalised counts), the weighted
NLL of the calibration set is

    f(beta) = (1/W) sum_i w_i [ logsumexp(beta z_i) - beta sum_k t_ik z_ik ],

the log-partition function of an exponential family in beta minus a linear term, so it is
convex, with derivatives given by the cumulants of z_i under q_i(beta) = softmax(beta z_i):

    f'(beta)   = (1/W) sum_i w_i ( E_q[z_i] - t_i . z_i )
    f''(beta)  = (1/W) sum_i w_i Var_q[z_i]
    f'''(beta) = (1/W) sum_i w_i E_q[(z_i - E_q z_i)^3].

The fit is a safeguarded Halley iteration on f'(beta) = 0 (cubic convergence; Newton and
bisection as fall-backs, a bracket kept throughout):

1. one float64 pass finds each row's maximum, t_i . z_i, the row means (for the degenerate
   cases) and f(1), the NLL before calibration;
2. Halley on an evenly strided subsample of about 2**18 values gives a start within ~1%;
3. on large inputs, passes with exp and class sums in float32 bring beta within ~1e-7;
4. float64 passes finish: once a Halley step is below ``HALLEY_STOP * beta``, the error left
   after it is of order its cube, below the rounding of beta, so the result is the full-data
   float64 optimum to machine precision (two or three passes over the data in all).

Every pass runs over row blocks small enough to stay in the CPU cache, in threads (numpy
releases the GIL) of one pool that lives for the whole fit; per-block sums are added in block
order, so the result does not depend on the number of threads. Scores are shifted by their
row maximum inside each block, so exp never overflows; the caller's array is neither copied
nor modified.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from trueprob.calibrators._fitdata import FitData, fit_arrays, predict_inputs
from trueprob.calibrators._temperature_fit import (
    FLOAT32_STOP,
    HALLEY_STOP,
    START_ELEMENTS,
    _halley,
    _Passes,
    _SumPasses,
    default_threads,
)
from trueprob.calibrators.base import Calibrator, CalibratorFormatError
from trueprob.core.special import logsumexp

_METHODS = ("nll", "grid-ece")



class DegenerateFitWarning(UserWarning):
    """The maximum-likelihood map is at a boundary (e.g. T -> 0 or T -> inf) or not unique."""


def grid_temperatures() -> list[float]:
    """The temperatures of Mukhoti et al. 2020's grid search, exactly as their loop makes them.

    Their ``set_temperature`` starts at T = 0.1 and adds 0.1 a hundred times in float64, so
    the grid is 0.1, 0.2, 0.30000000000000004, ..., 0.9999999999999999, ..., about 10.0; T = 1
    exactly is not on it (0.9999999999999999 is, which gives the same ECE to many digits).

    >>> g = grid_temperatures()
    >>> len(g), g[0], g[2], g[9], round(g[-1], 12)
    (100, 0.1, 0.30000000000000004, 0.9999999999999999, 10.0)
    """
    grid, t = [], 0.1
    for _ in range(100):
        grid.append(t)
        t += 0.1
    return grid


class TemperatureScaling(Calibrator):
    """Temperature scaling (Guo et al. 2017): q_i = softmax(z_i / T), one T > 0 for all rows.

    ``method="nll"`` (default) fits T by maximum likelihood: it minimises the weighted NLL

        f(beta) = (1/W) sum_i w_i [ logsumexp(beta z_i) - beta sum_k t_ik z_ik ],  beta = 1/T,

    which is convex in beta, by a safeguarded Halley iteration with the exact first, second
    and third derivatives (see the module docstring). The likelihood is the multinomial one:
    t_i is the one-hot label, the soft target, or the counts divided by their row total.
    The result is the full-data optimum to machine precision, usually after two or three
    passes over the data.

    ``method="grid-ece"`` reproduces the protocol of Mukhoti et al. 2020 (focal_calibration,
    ``temperature_scaling.py``, ``set_temperature(cross_validate="ece")``): T is the first
    temperature of :func:`grid_temperatures` (0.1, 0.2, ..., 10.0 built by repeated addition)
    with the smallest 15-bin top-label ECE on the fit set (a later T replaces the best only
    when its ECE is strictly smaller, so ties go to the smaller T; T = 1 exactly is not a
    candidate). The ECE is trueprob's (SPEC.md, right-closed equal-width bins), computed in
    float64; theirs uses the same bins in float32.

    Given ``probs=`` instead of logits, the scores are log q_i (zero floored, see
    :mod:`trueprob.calibrators._fitdata`): softmax(log q_i / T) is the same map, since
    log q_i differs from z_i by a per-row constant. A calibrator fitted on either applies to
    either.

    Parameters
    ----------
    method : {"nll", "grid-ece"}
        How T is chosen (see above).
    max_iter : int
        Most passes over the full data per stage of ``method="nll"``.
    n_threads : int or None
        Threads of each pass over the data (None: every CPU this process may use). The
        result does not depend on it.

    Attributes
    ----------
    temperature_ : float
        T. ``inf`` when the NLL is smallest for uniform predictions, ``0.0`` when it keeps
        decreasing as T -> 0 (both with a :class:`DegenerateFitWarning`).
    kind_ : {"logits", "probs"}
        What the calibrator was fitted on (and what :meth:`to_torch`'s module takes).
    n_classes_ : int
        K.
    converged_ : bool
        True when the optimum was reached (a grid search always completes); False when the
        optimum does not exist (T -> 0) or ``max_iter`` was reached.
    n_iter_ : int
        Passes over the full data (``"nll"``) or grid points (``"grid-ece"``).
    nll_before_, nll_after_ : float
        Weighted NLL of the fit set (nats per row) at T = 1 and at the fitted T.

    Examples
    --------
    >>> import numpy as np
    >>> z = np.array([[4.0, 0.0], [0.0, 4.0], [4.0, 0.0], [0.0, 4.0]])
    >>> y = np.array([0, 1, 1, 1])          # one of four confident predictions is wrong
    >>> ts = TemperatureScaling().fit(y, logits=z)
    >>> round(ts.temperature_, 6)           # softmax(z / T) puts 3/4 on the argmax
    3.640957
    >>> bool(np.isclose(4 / ts.temperature_, np.log(3)))
    True
    >>> ts.predict_proba(logits=z).round(3)[0]
    array([0.75, 0.25])
    """

    _fitted_attrs: ClassVar[tuple[str, ...]] = (
        "temperature_", "kind_", "n_classes_", "converged_", "n_iter_", "nll_before_",
        "nll_after_",
    )

    def __init__(self, *, method: str = "nll", max_iter: int = 50,
                 n_threads: int | None = None) -> None:
        self.method = method
        self.max_iter = max_iter
        self.n_threads = n_threads

    def _check_params(self) -> None:
        if self.method not in _METHODS:
            raise ValueError(f"method must be one of {list(_METHODS)}; got {self.method!r}")
        if isinstance(self.max_iter, bool) or not isinstance(self.max_iter, int) \
                or self.max_iter < 1:
            raise ValueError(f"max_iter must be a positive integer; got {self.max_iter!r}")
        n = self.n_threads
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            raise ValueError(f"n_threads must be None (all CPUs) or a positive integer; got "
                             f"{n!r}")

    # ------------------------------------------------------------------ fit
    def fit(
        self, labels: Any = None, /, *, logits: Any = None, probs: Any = None,
        targets: Any = None, counts: Any = None, sample_weight: Any = None,
    ) -> TemperatureScaling:
        """Fit T on a calibration set; returns self.

        Exactly one of ``logits`` / ``probs`` (N, K) (or (N,) for binary) and one of
        ``labels`` (N,), ``targets`` (N, K) or ``counts`` (N, K); ``sample_weight`` (N,) is
        optional. Errors are those of :func:`trueprob.evaluate`.
        """
        self._check_params()
        data = fit_arrays(labels, logits=logits, probs=probs, targets=targets, counts=counts,
                          sample_weight=sample_weight, keep_dtype=True)
        self.kind_ = data.kind
        self.n_classes_ = data.n_classes
        # one thread pool for every pass of this fit, shut down when it ends
        with _Passes(data, self._threads()) as passes:
            if self.method == "grid-ece":
                self._fit_grid_ece(data, passes)
            else:
                self._fit_nll(data, passes)
        return self

    def _threads(self) -> int:
        return default_threads() if self.n_threads is None else int(self.n_threads)

    def _fit_nll(self, data: FitData, passes: _Passes) -> None:
        self.nll_before_ = passes.first_pass()
        active = passes.w > 0
        means, tz = passes.means[active], passes.tz[active]

        def separable_nll() -> float:
            # all target mass on each row's largest scores: f decreases as T -> 0, towards
            # the NLL of q uniform over the m_i largest scores of row i: sum_i w_i log m_i / W
            n_max = (data.scores[active] == passes.zmax[active, None]).sum(axis=1)
            return float(passes.w[active] @ np.log(n_max))

        if self._degenerate(bool(np.any(means)), bool(np.any(tz)),
                            lambda: float(passes.w[active] @ (means - tz)), separable_nll,
                            stacklevel=4):
            return
        used = 1
        beta = 1.0
        sub = passes.subsample(START_ELEMENTS)
        if sub is not None and np.any(sub.tz) and float(sub.w @ (sub.means - sub.tz)) < 0:
            b, _, ok, _ = _halley(sub, 1.0, 100, HALLEY_STOP)
            if ok:
                beta = b
        if passes.n * passes.k > 4 * START_ELEMENTS:
            b, _, ok, it = _halley(passes, beta, self.max_iter, FLOAT32_STOP, np.float32)
            used += it
            if ok:
                beta = b
        beta, f, converged, it = _halley(passes, beta, self.max_iter, HALLEY_STOP)
        used += it
        if not converged:
            warnings.warn(
                f"temperature scaling did not converge in max_iter={self.max_iter} passes; "
                f"T = {1.0 / beta!r}", DegenerateFitWarning, stacklevel=3)
        self._set(1.0 / beta, f, converged, used)

    def _fit_grid_ece(self, data: FitData, passes: _Passes) -> None:
        self.nll_before_ = passes.first_pass()
        zc = data.scores - passes.zmax[:, None].astype(np.float64)
        pred = np.argmax(zc, axis=1)  # argmax is the same for every T > 0
        best, best_t = math.inf, math.nan
        grid = grid_temperatures()
        for temp in grid:
            # confidence max_k softmax(z / T)_k = 1 / sum_k exp((z_k - max z) / T)
            conf = 1.0 / np.exp(zc / temp).sum(axis=1)
            ece = _ece(data, conf, pred)
            if best > ece:
                best, best_t = ece, temp
        self._set(best_t, passes.value(1.0 / best_t), True, len(grid))

    def _degenerate(self, varying: bool, target_off_max: bool, g0: Callable[[], float],
                    separable_nll: Callable[[], float], *, stacklevel: int) -> bool:
        """Set the limit and warn if the NLL has no finite minimum in T (True), else False.

        ``varying``: some row (w > 0) has non-constant scores; ``target_off_max``: some row
        puts target mass off its largest scores; ``g0()``: f'(0) = sum_i w_i (mean_k zc_ik -
        t_i . zc_i) (the slope at uniform predictions); ``separable_nll()``: the limit of the
        NLL as T -> 0. ``nll_before_`` and ``n_classes_`` are set.
        """
        if not varying:
            warnings.warn(
                "every row's scores are constant across classes, so the NLL does not depend "
                "on T; temperature_ is set to 1", DegenerateFitWarning, stacklevel=stacklevel)
            self._set(1.0, self.nll_before_, True, 1)
            return True
        if not target_off_max:
            limit = separable_nll()
            warnings.warn(
                "the calibration set is separable: in every row the target is on the largest "
                "score, so the NLL keeps decreasing as T -> 0 and has no minimum; temperature_ "
                "is set to 0 (argmax predictions, ties shared). Use a larger or harder "
                "calibration set", DegenerateFitWarning, stacklevel=stacklevel)
            self._set(0.0, limit, False, 1)
            return True
        if g0() >= 0:
            warnings.warn(
                "the NLL is smallest for uniform predictions (T -> inf): on this calibration "
                "set the scores carry no information about the targets beyond chance; "
                "temperature_ is set to inf", DegenerateFitWarning, stacklevel=stacklevel)
            self._set(math.inf, math.log(self.n_classes_), True, 1)
            return True
        return False

    def fit_passes(self, first: np.ndarray, run_pass: Callable[[float], np.ndarray], *,
                   kind: str, n_classes: int) -> TemperatureScaling:
        """Fit on data seen only through passes (``method="nll"``); returns self.

        ``first``: the six first-pass sums of :func:`trueprob.streaming.temperature_first_sums`
        added over all rows; ``run_pass(beta)``: the four sums of
        :func:`trueprob.streaming.temperature_sums` at beta added over all rows (one pass).
        The degenerate cases and the safeguarded Halley iteration from beta = 1 are those of
        :meth:`fit`, with its stopping rule; ``n_iter_`` counts the passes.
        """
        self._check_params()
        self.kind_ = "logits" if kind == "logits" else "probs"
        self.n_classes_ = int(n_classes)
        total, f1, g0_sum, n_varying, n_tz, log_ties = (float(v) for v in first)
        if not total > 0:
            raise ValueError("sample_weight must not be all zero; the weights sum to 0")
        self.nll_before_ = f1 / total
        if self._degenerate(n_varying > 0, n_tz > 0, lambda: g0_sum,
                            lambda: log_ties / total, stacklevel=4):
            return self
        passes = _SumPasses(run_pass, total)
        beta, f, converged, _ = _halley(passes, 1.0, self.max_iter,  # type: ignore[arg-type]
                                        HALLEY_STOP)
        if not converged:
            warnings.warn(
                f"temperature scaling did not converge in max_iter={self.max_iter} passes; "
                f"T = {1.0 / beta!r}", DegenerateFitWarning, stacklevel=3)
        self._set(1.0 / beta, f, converged, 1 + passes.count)
        return self

    def _set(self, temperature: float, nll_after: float, converged: bool, n_iter: int) -> None:
        self.temperature_ = float(temperature)
        self.nll_after_ = float(nll_after)
        self.converged_ = bool(converged)
        self.n_iter_ = int(n_iter)

    # ------------------------------------------------------------------ predict
    def predict_logproba(
        self, *, logits: Any = None, probs: Any = None,
    ) -> Any:
        """Calibrated log-probabilities log softmax(s_i / T), in the input's namespace and dtype.

        s_i are the logits, or log q_i when ``probs=`` is given. (N,) binary inputs give
        (N, 2) outputs. T = 0 gives the limit: log(1/m_i) on the m_i largest scores of row i
        and -inf elsewhere.
        """
        self._check_fitted()
        xp, s, kind = predict_inputs(logits=logits, probs=probs)
        check_k(s, self.n_classes_, type(self).__name__, kind)
        temp = self.temperature_
        if temp == 0.0:
            top = s == xp.max(s, axis=1, keepdims=True)
            m = xp.sum(xp.astype(top, s.dtype), axis=1, keepdims=True)
            return xp.where(top, -xp.log(m), xp.full_like(s, -math.inf))
        a = s * (1.0 / temp)
        return a - logsumexp(xp, a, axis=1, keepdims=True)

    # ------------------------------------------------------------------ persistence
    def _check_loaded(self) -> None:
        try:
            self._check_params()
        except ValueError as exc:
            raise CalibratorFormatError(f"params: {exc}") from exc
        _check_kind_k(self)
        temp = self.temperature_
        if isinstance(temp, bool) or not isinstance(temp, (int, float)) or not temp >= 0:
            raise CalibratorFormatError(f"temperature_ must be a number >= 0 (or inf); got "
                                        f"{temp!r}")
        self.temperature_ = float(temp)
        _check_scalar(self, "converged_", bool)
        _check_scalar(self, "n_iter_", int)
        _check_scalar(self, "nll_before_", float)
        _check_scalar(self, "nll_after_", float)

    def to_torch(self) -> Any:
        """A ``torch.nn.Module`` mapping logits (or probabilities, when fitted on ``probs=``)
        to the calibrated log-probabilities of :meth:`predict_logproba`."""
        from trueprob.calibrators._torch import temperature_module

        self._check_fitted()
        return temperature_module(self.temperature_, self.kind_)


def _ece(data: FitData, conf: np.ndarray, pred: np.ndarray) -> float:
    """Top-label 15-bin ECE of the fit set for confidences ``conf`` (trueprob's definition)."""
    from trueprob.metrics.calibration import top_label_ece

    if data.labels is not None:
        return top_label_ece(data.labels, confidences=conf, predictions=pred,
                             sample_weight=data.weights)
    return top_label_ece(targets=data.soft_targets, confidences=conf, predictions=pred,
                         sample_weight=data.weights)


def check_k(s: Any, k: int, name: str, given: str) -> None:
    """The input ``given`` (``"logits"`` or ``"probs"``) has the K columns the calibrator
    ``name`` was fitted with, else a ValueError naming it."""
    if int(s.shape[1]) != k:
        raise ValueError(f"{given} has K={int(s.shape[1])} columns but this {name} was "
                         f"fitted with K={k}")


def _check_kind_k(cal: Calibrator) -> None:
    kind = getattr(cal, "kind_", None)
    if kind not in ("logits", "probs"):
        raise CalibratorFormatError(f"kind_ must be 'logits' or 'probs'; got {kind!r}")
    k = getattr(cal, "n_classes_", None)
    if isinstance(k, bool) or not isinstance(k, int) or k < 2:
        raise CalibratorFormatError(f"n_classes_ must be an integer >= 2; got {k!r}")


def _check_scalar(cal: Calibrator, name: str, kind: type) -> None:
    value = getattr(cal, name)
    if kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok:
            setattr(cal, name, float(value))
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
    else:
        ok = isinstance(value, bool)
    if not ok:
        raise CalibratorFormatError(f"{name} must be a {kind.__name__}; got {value!r}")
