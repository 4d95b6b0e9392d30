"""trueprob.sklearn.CalibratedClassifier: scikit-learn's conventions, checked against
scikit-learn's own CalibratedClassifierCV and against the calibration done by hand."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.base import clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.datasets import load_breast_cancer, load_digits, load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC
from sklearn.utils.estimator_checks import check_estimator

from trueprob.calibrators import (
    HistogramBinning,
    IsotonicCalibration,
    OneVsRest,
    TemperatureScaling,
    TopLabel,
)
from trueprob.sklearn import CalibratedClassifier


def _lr() -> object:
    return make_pipeline(StandardScaler(), LogisticRegression(C=10, max_iter=5000))


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    return load_digits(return_X_y=True)


@pytest.fixture(scope="module")
def cancer() -> tuple[np.ndarray, np.ndarray]:
    return load_breast_cancer(return_X_y=True)


# --------------------------------------------------------------------------- vs scikit-learn


@pytest.mark.parametrize("ensemble", [True, False])
@pytest.mark.parametrize("data", ["digits", "cancer"])
def test_temperature_equals_sklearn_temperature_on_the_same_folds(data, ensemble, request):
    # Both fit T by maximum likelihood of softmax(decision_function / T) on the same held-out
    # rows, so their probabilities agree to the optimisers' tolerance (measured: <= 1.1e-9
    # with scikit-learn 1.9.1).
    X, y = request.getfixturevalue(data)
    cv = StratifiedKFold(4, shuffle=True, random_state=0)
    ours = CalibratedClassifier(_lr(), cv=cv, ensemble=ensemble).fit(X, y)
    theirs = CalibratedClassifierCV(_lr(), method="temperature", cv=cv,
                                    ensemble=ensemble).fit(X, y)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=1e-7)
    np.testing.assert_array_equal(ours.classes_, theirs.classes_)
    assert len(ours.calibrated_classifiers_) == (4 if ensemble else 1)


# --------------------------------------------------------------------------- by hand


def test_ensemble_is_the_mean_of_the_fold_pairs_by_hand(digits):
    X, y = digits
    splits = list(StratifiedKFold(3, shuffle=True, random_state=1).split(X, y))
    clf = CalibratedClassifier(LinearSVC(), method="isotonic", cv=splits).fit(X, y)
    expected = np.zeros((200, 10))
    for train, test in splits:
        est = LinearSVC().fit(X[train], y[train])
        cal = OneVsRest(base=IsotonicCalibration()).fit(y[test],
                                                        logits=est.decision_function(X[test]))
        expected += np.exp(cal.predict_logproba(logits=est.decision_function(X[:200])))
    np.testing.assert_allclose(clf.predict_proba(X[:200]), expected / 3, rtol=1e-12)
    np.testing.assert_allclose(np.log(expected / 3), clf.predict_log_proba(X[:200]),
                               rtol=1e-12)


def test_no_ensemble_fits_one_calibrator_on_out_of_fold_scores(digits):
    X, y = digits
    splits = list(StratifiedKFold(3, shuffle=True, random_state=2).split(X, y))
    clf = CalibratedClassifier(_lr(), method="temperature", cv=splits,
                               ensemble=False).fit(X, y)
    oof = np.empty((len(y), 10))
    for train, test in splits:
        oof[test] = clone(_lr()).fit(X[train], y[train]).decision_function(X[test])
    cal = TemperatureScaling().fit(y, logits=oof)
    full = clone(_lr()).fit(X, y)
    (_est, fitted), = clf.calibrated_classifiers_
    assert fitted.temperature_ == pytest.approx(cal.temperature_, rel=1e-12)
    np.testing.assert_allclose(clf.predict_log_proba(X[:50]),
                               cal.predict_logproba(logits=full.decision_function(X[:50])),
                               rtol=1e-10, atol=1e-12)


def test_prefit_calibrates_the_given_estimator_as_it_is(cancer):
    X, y = cancer
    est = _lr().fit(X[:300], y[:300])
    clf = CalibratedClassifier(est, method="platt", cv="prefit").fit(X[300:], y[300:])
    (used, cal), = clf.calibrated_classifiers_
    assert used is est
    from trueprob.calibrators import PlattScaling

    hand = PlattScaling().fit(y[300:], logits=est.decision_function(X[300:]))
    assert cal.coef_ == pytest.approx(hand.coef_, rel=1e-12)
    z = est.decision_function(X[:20])
    p1 = 1 / (1 + np.exp(-(hand.coef_ * z + hand.intercept_)))
    np.testing.assert_allclose(clf.predict_proba(X[:20])[:, 1], p1, rtol=1e-10)
    # binary decision_function: the calibrated log-odds of classes_[1]
    np.testing.assert_allclose(clf.decision_function(X[:20]),
                               hand.coef_ * z + hand.intercept_, rtol=1e-10)


def test_prefit_integer_weights_equal_repeated_rows(cancer):
    X, y = cancer
    est = _lr().fit(X[:300], y[:300])
    w = np.random.default_rng(0).integers(0, 3, size=len(y) - 300)
    weighted = CalibratedClassifier(est, cv="prefit").fit(X[300:], y[300:], sample_weight=w)
    rows = np.repeat(np.arange(300, len(y)), w)
    repeated = CalibratedClassifier(est, cv="prefit").fit(X[rows], y[rows])
    t1 = weighted.calibrated_classifiers_[0][1].temperature_
    t2 = repeated.calibrated_classifiers_[0][1].temperature_
    assert t1 == pytest.approx(t2, rel=1e-10)


# --------------------------------------------------------------------------- API


def test_labels_of_any_type_predict_and_decision_function():
    X, y = load_iris(return_X_y=True)
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    clf = CalibratedClassifier(_lr(), method="isotonic", multiclass="top-label").fit(X, names)
    assert clf.classes_.tolist() == ["setosa", "versicolor", "virginica"]
    assert isinstance(clf.calibrated_classifiers_[0][1], TopLabel)
    logp = clf.decision_function(X)
    assert logp.shape == (150, 3)
    np.testing.assert_allclose(np.exp(logp).sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[np.argmax(logp, axis=1)])
    assert clf.response_ == "decision_function"
    assert clf.score(X, names) > 0.9


def test_predict_proba_response_and_binary_method_wrapping(digits):
    X, y = digits
    forest = RandomForestClassifier(n_estimators=10, random_state=0)
    clf = CalibratedClassifier(forest, method=HistogramBinning(n_bins=5), cv=3).fit(X, y)
    assert clf.response_ == "predict_proba"
    cal = clf.calibrated_classifiers_[0][1]
    assert isinstance(cal, OneVsRest) and cal.base.n_bins == 5 and cal.kind_ == "probs"
    np.testing.assert_allclose(clf.predict_proba(X[:10]).sum(axis=1), 1.0, rtol=1e-12)


def test_predict_proba_rows_off_by_ulps_are_renormalised(cancer):
    # GaussianNB's rows sum to 1 - 6e-15 on this split, beyond trueprob's float64 tolerance
    # (3.6e-15 for K = 2); they are renormalised before the calibrator sees them
    from sklearn.naive_bayes import GaussianNB

    X, y = cancer
    outer = list(StratifiedKFold(5, shuffle=True, random_state=0).split(X, y))[3][0]
    clf = CalibratedClassifier(GaussianNB(), cv=StratifiedKFold(5, shuffle=True,
                                                                random_state=1))
    clf.fit(X[outer], y[outer])
    assert clf.response_ == "predict_proba"
    np.testing.assert_allclose(clf.predict_proba(X[:20]).sum(axis=1), 1.0, rtol=1e-12)


def test_predict_log_proba_response_keeps_underflowed_classes_apart(digits):
    # GaussianNB gives many probabilities of exactly 0 on digits; its predict_log_proba is
    # finite, and temperature scaling of those exact log-probabilities equals the
    # calibration of the same scores by hand
    from sklearn.naive_bayes import GaussianNB

    X, y = digits
    splits = list(StratifiedKFold(3, shuffle=True, random_state=4).split(X, y))
    clf = CalibratedClassifier(GaussianNB(), cv=splits, response="predict_log_proba")
    clf.fit(X, y)
    train, test = splits[0]
    nb = GaussianNB().fit(X[train], y[train])
    hand = TemperatureScaling().fit(y[test], logits=nb.predict_log_proba(X[test]))
    assert clf.calibrated_classifiers_[0][1].temperature_ == pytest.approx(
        hand.temperature_, rel=1e-12)
    assert clf.calibrated_classifiers_[0][1].kind_ == "logits"
    with pytest.raises(ValueError, match=r"calibrating fold 0's held-out scores: .*logits"):
        CalibratedClassifier(RandomForestClassifier(n_estimators=3, random_state=0), cv=splits,
                             response="predict_log_proba").fit(X, y)


def test_clone_get_params_and_nested_calibrator_params():
    clf = CalibratedClassifier(LogisticRegression(), method=HistogramBinning(n_bins=7), cv=3)
    params = clf.get_params()
    assert params["method__n_bins"] == 7 and params["estimator__C"] == 1.0
    twin = clone(clf).set_params(method__n_bins=4, estimator__C=0.5)
    assert twin.method.n_bins == 4 and twin.estimator.C == 0.5
    assert clf.method.n_bins == 7  # the original is untouched
    assert repr(clf).startswith("CalibratedClassifier(")


def test_pipeline_and_grid_search(cancer):
    X, y = cancer
    grid = GridSearchCV(
        make_pipeline(StandardScaler(),
                      CalibratedClassifier(LogisticRegression(max_iter=5000), cv=3)),
        {"calibratedclassifier__method": ["temperature", "beta", "isotonic"]},
        scoring="neg_log_loss", cv=3,
    ).fit(X, y)
    assert grid.best_params_["calibratedclassifier__method"] in ("temperature", "beta",
                                                                 "isotonic")
    assert np.isfinite(grid.best_score_)
    assert grid.predict_proba(X[:5]).shape == (5, 2)


def _check(estimator: object, waived: dict[str, str]) -> list[dict]:
    with warnings.catch_warnings():
        # the checks fit on tiny separable toy data (temperature says so), and skip the
        # array-API check without SCIPY_ARRAY_API
        warnings.simplefilter("ignore")
        return check_estimator(estimator, on_fail=None, on_skip=None,
                               expected_failed_checks=waived)


#: the one waived check, for an inner estimator that fails it itself (scikit-learn's own
#: test suite lists it as an expected failure of RandomForestClassifier: the bootstrap draws
#: differ between integer weights and repeated rows)
FOREST_WAIVER = {f"check_sample_weight_equivalence_on_{kind}_data":
                 "RandomForestClassifier itself fails it (bootstrap draws differ)"
                 for kind in ("dense", "sparse")}


@pytest.mark.slow
@pytest.mark.parametrize(("estimator", "waived"), [
    (CalibratedClassifier(LogisticRegression(), cv=3), {}),
    (CalibratedClassifier(RandomForestClassifier(n_estimators=5, random_state=0),
                          method="isotonic", cv=3, ensemble=False), FOREST_WAIVER),
])
def test_check_estimator_passes(estimator, waived):
    results = _check(estimator, waived)
    bad = [(r["check_name"], repr(r["exception"])) for r in results
           if r["status"] == "failed"]
    assert not bad
    skipped = {r["check_name"] for r in results if r["status"] == "skipped"}
    assert skipped <= {"check_array_api_input"}  # needs SCIPY_ARRAY_API=1


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(("params", "match"), [
    ({"method": "sigmoid"}, r"method must be one of \['temperature'.*got 'sigmoid'"),
    ({"method": object()}, "method must be one of"),
    ({"multiclass": "ovr"}, r"multiclass must be one of \['one-vs-rest', 'top-label'\]; "
                            r"got 'ovr'"),
    ({"cv": "auto"}, "cv must be an int, a splitter, an iterable of splits or 'prefit'; "
                     "got 'auto'"),
    ({"response": "predict"}, "response must be one of"),
    ({"ensemble": "yes"}, "ensemble must be True or False; got 'yes'"),
])
def test_bad_parameters_are_named(params, match):
    X, y = load_iris(return_X_y=True)
    with pytest.raises(ValueError, match=match):
        CalibratedClassifier(LogisticRegression(), **params).fit(X, y)


def test_data_errors_are_named():
    X, y = load_iris(return_X_y=True)
    y2 = y.copy()
    y2[:48] = 1  # class 0 keeps 2 rows
    with pytest.raises(ValueError, match="cv=5 folds need at least 5 rows of every class; "
                                         "class 0 has 2"):
        CalibratedClassifier(LogisticRegression()).fit(X, y2)
    with pytest.raises(ValueError, match="response='decision_function' but the estimator "
                                         "RandomForestClassifier has no decision_function"):
        CalibratedClassifier(RandomForestClassifier(n_estimators=2),
                             response="decision_function").fit(X, y)
    est = LogisticRegression(max_iter=1000).fit(X[y < 2], y[y < 2])
    with pytest.raises(ValueError, match=r"y has labels the prefit estimator does not know "
                                         r"\(first: 2\); its classes_ are \[0, 1\]"):
        CalibratedClassifier(est, cv="prefit").fit(X, y)
    # the second split's training part lacks class 0
    good = (np.arange(0, 150, 2), np.arange(1, 150, 2))
    bad = (np.flatnonzero(y != 0), np.flatnonzero(y == 0))
    with pytest.raises(ValueError, match=r"fold 1: the estimator was fitted on classes \[1, 2\], "
                                         r"not on all of \[0, 1, 2\] \(missing \[0\]\)"):
        CalibratedClassifier(LogisticRegression(max_iter=1000), cv=[good, bad]).fit(X, y)


def test_calibrator_failures_name_the_fold(cancer):
    X, y = cancer
    # Platt's MLE does not exist when a fold's held-out scores separate the classes
    with pytest.raises(ValueError, match=r"calibrating fold \d's held-out scores: "
                                         r"PlattScaling: the scores separate the classes"):
        CalibratedClassifier(_lr(), method="platt", cv=3).fit(X[:60], y[:60])


def test_not_fitted():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        CalibratedClassifier(LogisticRegression()).predict_proba(np.zeros((2, 3)))
