"""A scikit-learn meta-estimator: any classifier, recalibrated by a trueprob calibrator.

:class:`CalibratedClassifier` plays the part of scikit-learn's ``CalibratedClassifierCV``
with every trueprob calibrator (fitted by maximum likelihood) as ``method``. It works in
pipelines, with ``clone`` and ``GridSearchCV`` (``method__<param>`` reaches the calibrator's
parameters when ``method`` is a calibrator instance).

``import trueprob`` does not import this module; ``import trueprob.sklearn`` imports
scikit-learn.
"""

from __future__ import annotations

import inspect
import numbers
import warnings
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, clone
from sklearn.model_selection import check_cv
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import _safe_indexing, indexable
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from trueprob.calibrators.base import Calibrator
from trueprob.calibrators.binary import BinaryCalibrator
from trueprob.calibrators.by_name import METHODS, WRAPPERS, make_calibrator

_RESPONSES = ("auto", "decision_function", "predict_proba", "predict_log_proba")


class CalibratedClassifier(ClassifierMixin, MetaEstimatorMixin, BaseEstimator):
    """A classifier whose outputs are recalibrated by maximum likelihood, cross-fitted.

    For each of the ``cv`` splits (``ensemble=True``, the default), a clone of ``estimator``
    is fitted on the training part and a calibrator on the estimator's scores for the held-out
    part; the prediction is the mean of the F calibrated pairs' probabilities,

        q(x) = (1/F) sum_f cal_f(score_f(x)),

    as in scikit-learn's ``CalibratedClassifierCV``. With ``ensemble=False`` one calibrator is
    fitted on the out-of-fold scores of all rows (``cross_val_predict``) and ``estimator`` is
    refitted on all rows. With ``cv="prefit"`` the given, already fitted estimator is used as
    it is and the calibrator is fitted on the rows passed to ``fit``.

    The scores handed to the calibrator are ``decision_function`` as logits (binary: the
    (N,) score of ``classes_[1]``), or else ``predict_proba`` as probabilities (rows within
    1e-6 of summing to 1 are renormalised in float64; others are refused by the calibrator's
    check); ``response`` picks one explicitly (``"predict_log_proba"``: the log-probabilities
    as logits, exact where probabilities underflow to 0, e.g. ``GaussianNB``'s; an estimator
    whose log-probabilities are -inf is refused). Calibrators are fitted on labels encoded as
    0..K-1 in the order of ``classes_``, with ``sample_weight`` as row weights (also passed
    to ``estimator.fit`` when it accepts them).

    Parameters
    ----------
    estimator : scikit-learn classifier
        Has ``decision_function`` or ``predict_proba``. Cloned for fitting unless
        ``cv="prefit"``.
    method : str or Calibrator
        A name (``"temperature"``, ``"vector"``, ``"matrix"``, ``"dirichlet"``, ``"platt"``,
        ``"beta"``, ``"isotonic"``, ``"histogram"``, ``"scaling-binning"``, ``"bbq"``,
        ``"enir"``) or an unfitted trueprob calibrator (cloned for every fit).
    cv : int, cross-validation splitter, iterable of splits, or "prefit"
        As in scikit-learn (an int gives ``StratifiedKFold``); 5.
    multiclass : {"one-vs-rest", "top-label"}
        How a binary calibrator is used on K > 2 classes; "one-vs-rest".
    ensemble : bool
        Average the F calibrated pairs (True) or fit one calibrator on the out-of-fold scores
        (False); ignored with ``cv="prefit"``. True.
    response : {"auto", "decision_function", "predict_proba", "predict_log_proba"}
        Which output of the estimator is calibrated; "auto" takes ``decision_function`` when
        the estimator has it.

    Attributes
    ----------
    classes_ : ndarray (K,)
    calibrated_classifiers_ : list of (estimator, calibrator) pairs
        F pairs with ``ensemble=True``, one otherwise.
    response_ : {"decision_function", "predict_proba", "predict_log_proba"}
    n_features_in_ : int
        When the fitted estimator has it.

    Notes
    -----
    scikit-learn's ``check_estimator`` passes in full (``tests/test_sklearn.py``) with
    ``LogisticRegression`` inside; an inner estimator that fails a check itself makes the
    wrapper fail it too (``RandomForestClassifier``: the sample-weight equivalence checks,
    since its bootstrap draws differ between integer weights and repeated rows). The
    binary calibrators' fits refuse what has no maximum-likelihood solution (e.g. Platt
    scaling on a fold whose held-out scores separate the classes): the error names the fold.

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> base = make_pipeline(StandardScaler(), LogisticRegression())
    >>> clf = CalibratedClassifier(base, method="temperature", cv=3).fit(X, y)
    >>> clf.predict_proba(X[:2]).sum(axis=1).round(12).tolist()
    [1.0, 1.0]
    >>> len(clf.calibrated_classifiers_), clf.response_
    (3, 'decision_function')
    """

    def __init__(self, estimator: Any = None, *, method: Any = "temperature", cv: Any = 5,
                 multiclass: str = "one-vs-rest", ensemble: bool = True,
                 response: str = "auto") -> None:
        self.estimator = estimator
        self.method = method
        self.cv = cv
        self.multiclass = multiclass
        self.ensemble = ensemble
        self.response = response

    # ------------------------------------------------------------------ parameters
    def _check_params(self) -> None:
        if self.estimator is None:
            raise ValueError("estimator must be a scikit-learn classifier; got None")
        if isinstance(self.method, str):
            if self.method not in METHODS:
                raise ValueError(f"method must be one of {list(METHODS)} or a trueprob "
                                 f"calibrator; got {self.method!r}")
        elif not isinstance(self.method, Calibrator):
            raise ValueError(f"method must be one of {list(METHODS)} or a trueprob "
                             f"calibrator; got {self.method!r}")
        if self.multiclass not in WRAPPERS:
            raise ValueError(f"multiclass must be one of {list(WRAPPERS)}; got "
                             f"{self.multiclass!r}")
        if not isinstance(self.ensemble, (bool, np.bool_)):
            raise ValueError(f"ensemble must be True or False; got {self.ensemble!r}")
        if self.response not in _RESPONSES:
            raise ValueError(f"response must be one of {list(_RESPONSES)}; got "
                             f"{self.response!r}")
        if isinstance(self.cv, str) and self.cv != "prefit":
            raise ValueError(f"cv must be an int, a splitter, an iterable of splits or "
                             f"'prefit'; got {self.cv!r}")

    def _new_calibrator(self, n_classes: int) -> Calibrator:
        if isinstance(self.method, str):
            return make_calibrator(self.method, n_classes, self.multiclass)
        cal: Calibrator = clone(self.method)
        if isinstance(cal, BinaryCalibrator) and n_classes > 2:
            from trueprob.calibrators import multiclass as wrappers

            wrapped: Calibrator = getattr(wrappers, WRAPPERS[self.multiclass])(base=cal)
            return wrapped
        return cal

    def _response_of(self, estimator: Any) -> str:
        if self.response != "auto":
            if not hasattr(estimator, self.response):
                raise ValueError(f"response={self.response!r} but the estimator "
                                 f"{type(estimator).__name__} has no {self.response}")
            return str(self.response)
        for name in ("decision_function", "predict_proba"):
            if hasattr(estimator, name):
                return name
        raise ValueError(f"the estimator {type(estimator).__name__} has neither "
                         f"decision_function nor predict_proba, so it has no scores to "
                         f"calibrate")

    # ------------------------------------------------------------------ fit
    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> CalibratedClassifier:
        """Fit the estimator(s) and the calibrator(s); returns self.

        ``sample_weight`` (N,) weights the calibrator's likelihood and is passed to
        ``estimator.fit`` when its signature accepts ``sample_weight`` (otherwise a
        ``UserWarning`` says that only the calibration uses it).
        """
        self._check_params()
        check_classification_targets(y)
        X, y = indexable(X, y)
        y = np.asarray(y)
        if sample_weight is not None:
            sample_weight = np.asarray(sample_weight, dtype=np.float64)
            if sample_weight.shape != (len(y),):
                raise ValueError(f"sample_weight must have shape ({len(y)},); got "
                                 f"{sample_weight.shape}")
        fit_kwargs = self._estimator_fit_kwargs(sample_weight)
        if self.cv == "prefit":
            self._fit_prefit(X, y, sample_weight)
        else:
            self._fit_cross(X, y, sample_weight, fit_kwargs)
        first = self.calibrated_classifiers_[0][0]
        if hasattr(first, "n_features_in_"):
            self.n_features_in_ = first.n_features_in_
        if hasattr(first, "feature_names_in_"):
            self.feature_names_in_ = first.feature_names_in_
        return self

    def _estimator_fit_kwargs(self, sample_weight: Any) -> dict[str, Any]:
        if sample_weight is None or self.cv == "prefit":
            return {}
        try:
            params = inspect.signature(self.estimator.fit).parameters
        except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
            params = {}  # type: ignore[assignment]
        if "sample_weight" in params:
            return {"sample_weight": sample_weight}
        warnings.warn(
            f"{type(self.estimator).__name__}.fit does not take sample_weight: the weights "
            f"are used for the calibration only", UserWarning, stacklevel=3)
        return {}

    def _fit_prefit(self, X: Any, y: np.ndarray, sample_weight: Any) -> None:
        estimator = self.estimator
        check_is_fitted(estimator, "classes_")
        classes = np.asarray(estimator.classes_)
        unknown = ~np.isin(y, classes)
        if np.any(unknown):
            raise ValueError(
                f"y has labels the prefit estimator does not know (first: "
                f"{y.tolist()[int(np.flatnonzero(unknown)[0])]!r}); its classes_ are "
                f"{classes.tolist()}")
        self.classes_ = classes
        self.response_ = self._response_of(estimator)
        encoded = np.searchsorted(classes, y) if _is_sorted(classes) else \
            np.array([int(np.flatnonzero(classes == v)[0]) for v in y])
        cal = self._new_calibrator(len(classes))
        self._fit_calibrator(cal, estimator, X, encoded, sample_weight,
                             "the scores of the rows passed to fit (cv='prefit')")
        self.calibrated_classifiers_ = [(estimator, cal)]

    def _fit_cross(self, X: Any, y: np.ndarray, sample_weight: Any,
                   fit_kwargs: dict[str, Any]) -> None:
        encoder = LabelEncoder().fit(y)
        self.classes_ = encoder.classes_
        encoded = encoder.transform(y)
        k = len(self.classes_)
        if k < 2:
            raise ValueError(f"y must have at least 2 classes to calibrate; got one class: "
                             f"{self.classes_.tolist()}")
        n_folds = self.cv if isinstance(self.cv, numbers.Integral) \
            else getattr(self.cv, "n_splits", None)
        if n_folds is not None and isinstance(n_folds, numbers.Integral):
            counts = np.bincount(encoded, minlength=k)
            if counts.min() < n_folds:
                rare = self.classes_.tolist()[int(np.argmin(counts))]
                raise ValueError(
                    f"cv={n_folds} folds need at least {n_folds} rows of every class; class "
                    f"{rare!r} has {int(counts.min())}")
        splitter = check_cv(self.cv, encoded, classifier=True)
        splits = list(splitter.split(X, encoded))
        self.response_ = self._response_of(self.estimator)
        if self.ensemble:
            pairs = []
            for fold, (train, test) in enumerate(splits):
                est = clone(self.estimator)
                kwargs = {k_: v[train] for k_, v in fit_kwargs.items()}
                est.fit(_safe_indexing(X, train), self.classes_[encoded[train]], **kwargs)
                self._check_classes(est, f"fold {fold}")
                cal = self._new_calibrator(k)
                sw = None if sample_weight is None else sample_weight[test]
                self._fit_calibrator(cal, est, _safe_indexing(X, test), encoded[test], sw,
                                     f"fold {fold}'s held-out scores")
                pairs.append((est, cal))
            self.calibrated_classifiers_ = pairs
            return
        n = len(encoded)
        scores: np.ndarray | None = None
        for fold, (train, test) in enumerate(splits):
            est = clone(self.estimator)
            kwargs = {k_: v[train] for k_, v in fit_kwargs.items()}
            est.fit(_safe_indexing(X, train), self.classes_[encoded[train]], **kwargs)
            self._check_classes(est, f"fold {fold}")
            part = self._scores(est, _safe_indexing(X, test))
            if scores is None:
                scores = np.full((n, *part.shape[1:]), np.nan)
            scores[test] = part
        assert scores is not None
        if np.isnan(scores).any():
            first = int(np.flatnonzero(np.isnan(scores).reshape(n, -1).any(axis=1))[0])
            raise ValueError(f"the cv splits leave row {first} out of every test part; "
                             f"ensemble=False needs a partition of the rows")
        cal = self._new_calibrator(k)
        try:
            cal.fit(encoded, **{self._kind(): scores}, sample_weight=sample_weight)
        except ValueError as exc:
            raise ValueError(f"calibrating the out-of-fold scores: {exc}") from exc
        est = clone(self.estimator).fit(X, y, **fit_kwargs)
        self._check_classes(est, "the refit on all rows")
        self.calibrated_classifiers_ = [(est, cal)]

    def _check_classes(self, est: Any, where: str) -> None:
        got = np.asarray(getattr(est, "classes_", self.classes_))
        if got.shape != self.classes_.shape or not np.all(got == self.classes_):
            missing = [c for c in self.classes_.tolist() if c not in got.tolist()]
            raise ValueError(
                f"{where}: the estimator was fitted on classes {got.tolist()}, not on all of "
                f"{self.classes_.tolist()} (missing {missing}); use fewer cv folds or a "
                f"stratified splitter")

    def _kind(self) -> str:
        return "probs" if self.response_ == "predict_proba" else "logits"

    def _scores(self, est: Any, X: Any) -> np.ndarray:
        """The estimator's scores for X as float64: logits (decision_function; (N,) binary)
        or probabilities (predict_proba), or log-probabilities (predict_log_proba)."""
        with np.errstate(divide="ignore"):  # log 0 in predict_log_proba: refused below
            out = np.asarray(getattr(est, self.response_)(X), dtype=np.float64)
        k = len(self.classes_)
        if self.response_ == "decision_function":
            if k == 2 and out.ndim == 2 and out.shape[1] == 1:
                out = out[:, 0]
            expected: tuple[int, ...] = (out.shape[0],) if k == 2 else (out.shape[0], k)
        elif self.response_ == "predict_log_proba":
            expected = (out.shape[0], k)
        else:
            expected = (out.shape[0], k)
            if out.ndim == 2 and out.shape[0]:
                # scikit-learn's rows sum to 1 only within a few ulps (GaussianNB: 1 - 6e-15),
                # beyond trueprob's tolerance; rows off by more than float32 rounding are
                # left as they are for the calibrator's check to report
                total = out.sum(axis=1, keepdims=True)
                close = np.abs(total - 1.0) <= 1e-6
                out = np.where(close, out / np.where(close, total, 1.0), out)
        if out.shape != expected:
            raise ValueError(f"{type(est).__name__}.{self.response_} returned shape "
                             f"{out.shape}; expected {expected} for K={k} classes")
        return out

    def _fit_calibrator(self, cal: Calibrator, est: Any, X: Any, encoded: np.ndarray,
                        sample_weight: Any, where: str) -> None:
        scores = self._scores(est, X)
        try:
            cal.fit(encoded, **{self._kind(): scores}, sample_weight=sample_weight)
        except ValueError as exc:
            raise ValueError(f"calibrating {where}: {exc}") from exc

    # ------------------------------------------------------------------ predict
    def predict_log_proba(self, X: Any) -> np.ndarray:
        """Calibrated log-probabilities (N, K), columns in the order of ``classes_``.

        With F ensemble members: log((1/F) sum_f exp(log q_f)), computed by logsumexp.
        """
        check_is_fitted(self, "calibrated_classifiers_")
        logs = [np.asarray(cal.predict_logproba(**{self._kind(): self._scores(est, X)}),
                           dtype=np.float64)
                for est, cal in self.calibrated_classifiers_]
        if len(logs) == 1:
            return logs[0]
        stacked = np.stack(logs)
        m = np.max(stacked, axis=0)
        m = np.where(np.isfinite(m), m, 0.0)
        with np.errstate(divide="ignore"):
            return m + np.log(np.mean(np.exp(stacked - m), axis=0))

    def predict_proba(self, X: Any) -> np.ndarray:
        """Calibrated probabilities (N, K): ``exp(predict_log_proba(X))``."""
        return np.exp(self.predict_log_proba(X))

    def decision_function(self, X: Any) -> np.ndarray:
        """Calibrated log-probabilities: (N, K) for K > 2; for two classes the (N,) log-odds
        log q_1 - log q_0 of ``classes_[1]`` (scikit-learn's binary convention)."""
        logp = self.predict_log_proba(X)
        if logp.shape[1] == 2:
            with np.errstate(invalid="ignore"):
                return logp[:, 1] - logp[:, 0]
        return logp

    def predict(self, X: Any) -> np.ndarray:
        """The class of largest calibrated probability (ties: the first in ``classes_``)."""
        logp = self.predict_log_proba(X)
        return self.classes_[np.argmax(logp, axis=1)]

    # ------------------------------------------------------------------ tags
    def __sklearn_tags__(self) -> Any:
        from sklearn.utils import get_tags

        tags = super().__sklearn_tags__()
        if self.estimator is not None:
            inner = get_tags(self.estimator)
            tags.input_tags.sparse = inner.input_tags.sparse
            tags.input_tags.allow_nan = inner.input_tags.allow_nan
        return tags


def _is_sorted(a: np.ndarray) -> bool:
    try:
        return bool(np.all(a[:-1] < a[1:]))
    except TypeError:  # pragma: no cover - mixed, unorderable labels
        return False


__all__ = ["CalibratedClassifier"]
