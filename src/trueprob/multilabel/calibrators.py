"""Per-label recalibration of multi-label outputs: one binary calibrator per label.

Each label of a multi-label model is its own binary problem with the Bernoulli likelihood, so
each gets its own map fitted by maximum likelihood on (z_il, y_il): Platt scaling, isotonic
regression, temperature scaling sigmoid(z / T_l), or any binary calibrator of
:mod:`trueprob.calibrators`. ``shared=True`` fits one map on all (row, label) pairs pooled
instead (e.g. one temperature for every label).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from trueprob._array import Array, namespace, to_numpy
from trueprob.calibrators.base import (
    REGISTRY,
    BaseCalibrator,
    Calibrator,
    CalibratorFormatError,
)
from trueprob.calibrators.binary import BinaryCalibrator, PlattScaling
from trueprob.calibrators.by_name import BINARY_METHODS, make_calibrator
from trueprob.calibrators.temperature import TemperatureScaling
from trueprob.multilabel._validation import prepare_multilabel
from trueprob.multilabel.stats import log_sigmoid


def _allowed(cls: type) -> bool:
    return issubclass(cls, (BinaryCalibrator, TemperatureScaling))


def _check_base(base: Any) -> Calibrator:
    if base is None:
        return PlattScaling()
    if not isinstance(base, Calibrator) or not _allowed(type(base)):
        names = sorted(n for n, c in REGISTRY.items() if _allowed(c))
        raise TypeError(f"PerLabelCalibration: base must be a binary calibrator "
                        f"({', '.join(names)}); got {base!r}")
    return base


class MultilabelCalibrator(BaseCalibrator):
    """Base of the multi-label calibrators: maps of L independent label probabilities.

    ``fit(labels, logits=... | probs=..., sample_weight=...)`` with labels (N, L) in {0, 1};
    ``predict_logproba`` gives log q'_il (N, L) and ``predict_proba`` its exponential. Saved and
    loaded like every calibrator (:func:`trueprob.calibrators.load`).
    """

    _base = True

    def fit(self, labels: Any, /, *, logits: Any = None, probs: Any = None,
            sample_weight: Any = None) -> MultilabelCalibrator:  # pragma: no cover
        """Fit on labels (N, L) and logits or probs (N, L); returns self."""
        raise NotImplementedError


class PerLabelCalibration(MultilabelCalibrator):
    """One binary calibrator per label of a multi-label model (or one shared by all labels).

    For label l the calibrator f_l is fitted by maximum (weighted Bernoulli) likelihood on the
    pairs (s_il, y_il), s_il the label's log-odds (the logit z_il, or logit(q_il) for
    probabilities):

        q'_il = f_l(s_il),    f_l = argmin sum_i w_i [-y_il log f(s_il)
                                                    - (1 - y_il) log(1 - f(s_il))].

    Labels are independent Bernoulli variables, so no renormalisation across labels is done.
    With ``shared=True`` one f is fitted on all N x L pairs pooled and used for every label.

    Parameters
    ----------
    base : calibrator, optional
        Cloned for each label: :class:`~trueprob.calibrators.binary.PlattScaling` (default),
        :class:`~trueprob.calibrators.temperature.TemperatureScaling` (sigmoid(z / T_l)),
        :class:`~trueprob.calibrators.nonparametric.IsotonicCalibration`, or any binary
        calibrator.
    shared : bool
        One calibrator for all labels instead of one per label.

    Attributes
    ----------
    calibrators_ : list of fitted calibrators (L, or 1 when shared)
    n_labels_ : int
    kind_ : {"logits", "probs"}

    Examples
    --------
    >>> import numpy as np
    >>> from trueprob.calibrators.temperature import TemperatureScaling
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=(4000, 2)) * 3
    >>> y = (rng.random((4000, 2)) < 1 / (1 + np.exp(-z / np.array([1.0, 3.0])))).astype(int)
    >>> cal = PerLabelCalibration(base=TemperatureScaling()).fit(y, logits=z)
    >>> [bool(abs(c.temperature_ - t) < 0.2) for c, t in zip(cal.calibrators_, [1, 3])]
    [True, True]
    >>> cal.predict_proba(logits=z).shape
    (4000, 2)
    """

    _fitted_attrs = ("calibrators_", "n_labels_", "kind_")

    def __init__(self, *, base: Any = None, shared: bool = False) -> None:
        self.base = base
        self.shared = shared

    def fit(
        self, labels: Any, /, *, logits: Any = None, probs: Any = None,
        sample_weight: Any = None, label_names: Any = None,
    ) -> PerLabelCalibration:
        """Fit on labels (N, L) in {0, 1} and logits or probs (N, L); returns self.

        ``label_names`` (L strings, optional) only improves error messages.
        """
        base = _check_base(self.base)
        if not isinstance(self.shared, bool):
            raise ValueError(f"shared must be True or False; got {self.shared!r}")
        inputs = prepare_multilabel(labels, logits=logits, probs=probs,
                                    sample_weight=sample_weight)
        n, k = inputs.n_rows, inputs.n_labels
        s = np.empty((n, k))
        y = np.empty((n, k), dtype=np.int64)
        w = np.ones(n)
        for chunk in inputs.chunks():
            rows = slice(chunk.offset, chunk.offset + chunk.n_rows)
            s[rows] = to_numpy(chunk.scores)
            y[rows] = to_numpy(chunk.labels)
            if chunk.weights is not None:
                w[rows] = to_numpy(chunk.weights)
        key = inputs.kind
        names = [str(j) for j in range(k)] if label_names is None else list(label_names)

        def fit_one(yy: np.ndarray, ss: np.ndarray, ww: np.ndarray, what: str) -> Calibrator:
            cal = type(base)(**base.get_params())
            try:
                cal.fit(yy, **{key: ss}, sample_weight=ww)
            except ValueError as exc:
                raise ValueError(f"PerLabelCalibration, {what}: {exc}") from exc
            return cal

        if self.shared:
            fitted = [fit_one(y.ravel(), s.ravel(), np.repeat(w, k), "all labels pooled")]
        else:
            fitted = [fit_one(y[:, j], s[:, j], w, f"label {names[j]!s}") for j in range(k)]
        self.calibrators_ = fitted
        self.n_labels_ = k
        self.kind_ = key
        return self

    def predict_logits(self, *, logits: Any = None, probs: Any = None) -> Array:
        """Calibrated log-odds log q'_il - log(1 - q'_il), (N, L), in the input's namespace.

        Feed them back as ``logits=`` to :func:`trueprob.multilabel.evaluate_multilabel`.
        """
        self._check_fitted()
        inputs = prepare_multilabel(None, logits=logits, probs=probs, need_labels=False)
        if inputs.n_labels != self.n_labels_:
            raise ValueError(f"PerLabelCalibration was fitted on L={self.n_labels_} labels; the "
                             f"scores have L={inputs.n_labels} columns")
        for _ in inputs.chunks():  # value checks (finite, probabilities in [0, 1])
            pass
        xp, key, s = inputs.xp, inputs.kind, inputs.scores
        cols = []
        for j in range(self.n_labels_):
            cal = self.calibrators_[0 if self.shared else j]
            # a copied column is contiguous (torch.searchsorted warns on strided input)
            lp = cal.predict_logproba(**{key: xp.asarray(s[:, j], copy=True)})
            cols.append(lp[:, 1] - lp[:, 0])
        return xp.stack(cols, axis=1)

    def predict_logproba(self, *, logits: Any = None, probs: Any = None) -> Array:
        """log q'_il (N, L): calibrated log-probabilities that each label is present."""
        s = self.predict_logits(logits=logits, probs=probs)
        return log_sigmoid(namespace(s), s)

    # ------------------------------------------------------------------ plain data
    def _check_loaded(self) -> None:
        """Check a loaded map (nested calibrators are rebuilt by the base class's loader)."""
        name = type(self).__name__
        if self.base is not None and not (isinstance(self.base, Calibrator)
                                          and _allowed(type(self.base))):
            raise CalibratorFormatError(f"{name}: base must be a binary calibrator; got "
                                        f"{self.base!r}")
        if not isinstance(self.shared, bool):
            raise CalibratorFormatError(f"{name}: shared must be a boolean; got {self.shared!r}")
        k = self.n_labels_
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise CalibratorFormatError(f"{name}: n_labels_ must be an integer >= 1; got {k!r}")
        if self.kind_ not in ("logits", "probs"):
            raise CalibratorFormatError(f"{name}: kind_ must be 'logits' or 'probs'; got "
                                        f"{self.kind_!r}")
        want = 1 if self.shared else k
        cals = self.calibrators_
        base_cls = type(_check_base(self.base))
        if not isinstance(cals, list) or len(cals) != want or any(
                type(c) is not base_cls or not c.is_fitted for c in cals):
            raise CalibratorFormatError(f"{name}: calibrators_ must be a list of {want} fitted "
                                        f"{base_cls.__name__} calibrator(s) (the base)")


#: the methods a per-label calibration takes by name (:mod:`trueprob.calibrators.by_name`):
#: temperature scaling sigmoid(z / T_l) and every binary method
PER_LABEL_METHODS = ("temperature", *BINARY_METHODS)


def per_label_calibration(method: str, *, shared: bool = False) -> PerLabelCalibration:
    """An unfitted :class:`PerLabelCalibration` whose base is the binary calibrator named
    ``method`` (one of :data:`PER_LABEL_METHODS`).

    Examples
    --------
    >>> per_label_calibration("isotonic")
    PerLabelCalibration(base=IsotonicCalibration(clip=1e-06), shared=False)
    """
    if method not in PER_LABEL_METHODS:
        raise ValueError(f"method must be one of {list(PER_LABEL_METHODS)}; got {method!r}")
    return PerLabelCalibration(base=make_calibrator(method, 2), shared=shared)
