"""Saved calibrators: save -> load -> predict is bit-identical for every calibrator class, and
loading refuses tampered files (unexpected fields, wrong types, newer versions, code payloads)
with CalibratorFormatError, without executing anything."""

from __future__ import annotations

import base64
import copy
import importlib
import json
import pickle
import pkgutil

import numpy as np
import pytest
from scipy.special import softmax

import trueprob.calibrators as calibrators_pkg
from trueprob.calibrators.base import REGISTRY, CalibratorFormatError, from_dict, load
from trueprob.calibrators.multiclass import TopLabel
from trueprob.calibrators.scaling import DirichletCalibration, MatrixScaling, VectorScaling
from trueprob.calibrators.temperature import TemperatureScaling

# every calibrator module, so that REGISTRY holds every class that exists
for _module in pkgutil.iter_modules(calibrators_pkg.__path__):
    importlib.import_module(f"trueprob.calibrators.{_module.name}")
# the classifier calibrators (trueprob.calibrators.*); the regression and multi-label ones
# take other inputs and are checked where they are defined
CLASSES = sorted(name for name, cls in REGISTRY.items()
                 if cls.__module__.startswith("trueprob.calibrators."))


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    z = rng.normal(size=(300, 3)) * 2
    q = softmax(z, axis=1)
    y = np.minimum((q.cumsum(axis=1) < rng.random(300)[:, None]).sum(axis=1), 2)
    return z, y


def _fitted(name: str):
    """A fitted instance of class ``name`` and the prediction inputs it takes."""
    from trueprob.calibrators.binary import BinaryCalibrator

    cls = REGISTRY[name]
    z, y = _data()
    if issubclass(cls, BinaryCalibrator):
        s = z[:, 1] - z[:, 0]
        yb = (y == 1).astype(np.int64)
        return cls().fit(yb, logits=s), {"logits": s}
    if cls in (MatrixScaling, DirichletCalibration):
        return cls(reg_lambda=0.1).fit(y, logits=z), {"logits": z}
    return cls().fit(y, logits=z), {"logits": z}


@pytest.mark.parametrize("name", CLASSES)
def test_save_load_predict_is_bit_identical(tmp_path, name):
    cal, inputs = _fitted(name)
    path = tmp_path / f"{name}.json"
    cal.save(path)
    loaded = load(path)
    assert type(loaded) is type(cal)
    np.testing.assert_array_equal(loaded.predict_logproba(**inputs), cal.predict_logproba(**inputs))
    assert loaded.to_dict() == cal.to_dict()
    assert json.loads(path.read_text())["class"] == name


@pytest.mark.parametrize("name", CLASSES)
def test_fit_and_predict_take_the_inputs_the_base_declares(name):
    # the base class spells out the classifier inputs (no **inputs), so a subclass that
    # drifts from them (a renamed, missing or extra input) fails here as well as in mypy
    import inspect

    from trueprob.calibrators.base import Calibrator

    def params(f):
        return [(p.name, p.kind, p.default) for p in inspect.signature(f).parameters.values()]

    cls = REGISTRY[name]
    if cls is TopLabel:
        # the one exception: TopLabel also fits on top-label outputs, with these three
        # keyword-only inputs after the base's (docs/definitions.md, top-label recalibration)
        assert params(cls.fit)[:7] == params(Calibrator.fit)
        assert [p[:2] for p in params(cls.fit)[7:]] == [
            (n, inspect.Parameter.KEYWORD_ONLY) for n in ("confidences", "predictions",
                                                          "n_classes")]
    else:
        assert params(cls.fit) == params(Calibrator.fit)
    assert params(cls.predict_logproba) == params(Calibrator.predict_logproba)
    assert [p[0] for p in params(Calibrator.fit)] == [
        "self", "labels", "logits", "probs", "targets", "counts", "sample_weight"]
    # predict_proba is the base's, with the same inputs as predict_logproba
    cal, inputs = _fitted(name)
    np.testing.assert_array_equal(cal.predict_proba(**inputs),
                                  np.exp(cal.predict_logproba(**inputs)))
    with pytest.raises(TypeError, match="unexpected keyword argument 'logit'"):
        cal.predict_proba(logit=inputs["logits"])


def test_the_parametric_classes_are_registered():
    for cls in (TemperatureScaling, VectorScaling, MatrixScaling, DirichletCalibration):
        assert REGISTRY[cls.__name__] is cls


def _saved(name: str) -> dict:
    return _fitted(name)[0].to_dict()


@pytest.mark.parametrize("name", CLASSES)
def test_unexpected_fields_and_newer_versions_are_refused(name):
    good = _saved(name)
    bad = copy.deepcopy(good)
    bad["payload"] = "__import__('os').system('echo pwned')"
    with pytest.raises(CalibratorFormatError, match=r"unexpected fields \['payload'\]"):
        from_dict(bad)
    bad = copy.deepcopy(good)
    bad["fitted"]["extra_"] = 1.0
    with pytest.raises(CalibratorFormatError, match="fitted must have exactly the keys"):
        from_dict(bad)
    bad = copy.deepcopy(good)
    bad["params"]["evil"] = 1
    with pytest.raises(CalibratorFormatError, match="params must have exactly the keys"):
        from_dict(bad)
    bad = copy.deepcopy(good)
    bad["format_version"] += 1
    with pytest.raises(CalibratorFormatError, match="newer than this trueprob"):
        from_dict(bad)


@pytest.mark.parametrize("name", CLASSES)
def test_wrong_types_in_fitted_values_are_refused(name):
    good = _saved(name)
    for key in good["fitted"]:
        bad = copy.deepcopy(good)
        bad["fitted"][key] = "__import__('os').system('echo pwned')"
        with pytest.raises(CalibratorFormatError):
            from_dict(bad)


@pytest.mark.parametrize("name", CLASSES)
def test_code_payloads_are_refused(tmp_path, name):
    cal, _ = _fitted(name)
    good = cal.to_dict()
    # a __reduce__-style object where a value belongs
    bad = copy.deepcopy(good)
    key = next(iter(bad["fitted"]))
    bad["fitted"][key] = {"__reduce__": ["os.system", ["echo pwned"]]}
    with pytest.raises(CalibratorFormatError, match="an array must have exactly the keys"):
        from_dict(bad)
    # a class name that is not a calibrator
    bad = copy.deepcopy(good)
    bad["class"] = "os.system"
    with pytest.raises(CalibratorFormatError, match=r"unknown calibrator class 'os\.system'"):
        from_dict(bad)
    # a pickle blob, as a file and as a base64 string inside an array
    blob = pickle.dumps(cal)
    path = tmp_path / "cal.json"
    path.write_bytes(blob)
    with pytest.raises(CalibratorFormatError, match="not a valid calibrator JSON file"):
        load(path)
    bad = copy.deepcopy(good)
    bad["fitted"][key] = {"dtype": "float64", "shape": [1],
                          "data": [base64.b64encode(blob).decode()]}
    with pytest.raises(CalibratorFormatError):
        from_dict(bad)


def test_parametric_values_are_checked_on_load():
    z, y = _data()
    ts = TemperatureScaling().fit(y, logits=z).to_dict()
    for key, value, message in [
        ("temperature_", -1.0, "temperature_ must be a number >= 0"),
        ("kind_", "pickle", "kind_ must be 'logits' or 'probs'"),
        ("n_classes_", 1, "n_classes_ must be an integer >= 2"),
        ("converged_", "yes", "converged_ must be a bool"),
        ("n_iter_", 2.5, "n_iter_ must be a int"),
    ]:
        bad = copy.deepcopy(ts)
        bad["fitted"][key] = value
        with pytest.raises(CalibratorFormatError, match=message):
            from_dict(bad)
    bad = copy.deepcopy(ts)
    bad["params"]["method"] = "exec"
    with pytest.raises(CalibratorFormatError, match="params: method must be one of"):
        from_dict(bad)
    ms = MatrixScaling(reg_lambda=0.1).fit(y, logits=z).to_dict()
    bad = copy.deepcopy(ms)
    bad["fitted"]["coef_"] = {"dtype": "float64", "shape": [2, 2], "data": [1.0, 0.0, 0.0, 1.0]}
    with pytest.raises(CalibratorFormatError, match=r"coef_ must be a finite float64 array of "
                                                    r"shape \(3, 3\)"):
        from_dict(bad)
    bad = copy.deepcopy(ms)
    bad["fitted"]["intercept_"]["data"][0] = "nan"
    with pytest.raises(CalibratorFormatError, match="intercept_ must be a finite float64"):
        from_dict(bad)
    bad = copy.deepcopy(ms)
    bad["params"]["reg_lambda"] = "os.system"
    with pytest.raises(CalibratorFormatError, match="params: reg_lambda must be a number"):
        from_dict(bad)


def test_degenerate_temperatures_round_trip(tmp_path):
    z = np.array([[3.0, 1.0], [0.0, 2.0]])
    with pytest.warns(UserWarning, match="separable"):
        zero = TemperatureScaling().fit(np.array([0, 1]), logits=z)
    with pytest.warns(UserWarning, match="T -> inf"):
        inf = TemperatureScaling().fit(np.array([1, 0]), logits=z)
    for cal, name in ((zero, "zero.json"), (inf, "inf.json")):
        cal.save(tmp_path / name)
        loaded = load(tmp_path / name)
        assert loaded.temperature_ == cal.temperature_
        np.testing.assert_array_equal(loaded.predict_logproba(logits=z),
                                      cal.predict_logproba(logits=z))


def test_regression_and_multilabel_calibrators_load_in_a_fresh_process(tmp_path):
    # their modules are not imported by trueprob.calibrators; load() must still find them
    import subprocess
    import sys

    code = f"""
import numpy as np
from trueprob.regression import Gaussian, VarianceScaling
rng = np.random.default_rng(0)
mu = rng.normal(size=200); y = mu + 2 * rng.normal(size=200)
VarianceScaling().fit(y, Gaussian(mu, np.ones(200))).save({str(tmp_path / 'v.json')!r})
"""
    subprocess.run([sys.executable, "-c", code], check=True)
    out = subprocess.run(
        [sys.executable, "-c", "from trueprob.calibrators import load; "
         f"print(type(load({str(tmp_path / 'v.json')!r})).__name__)"],
        check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "VarianceScaling"


def test_task_calibrators_have_bases_of_their_own_and_load_without_a_class_map(tmp_path):
    """Multi-label and regression calibrators subclass their own task base (their fit takes
    their own inputs), not the classification Calibrator; load finds them by importing the
    fixed task modules, with no per-class map. A file saved in the (unchanged) format loads in
    a fresh interpreter that has not imported those modules."""
    import subprocess
    import sys

    import trueprob.calibrators.base as base
    from trueprob.calibrators.base import BaseCalibrator, Calibrator
    from trueprob.multilabel.calibrators import MultilabelCalibrator, PerLabelCalibration
    from trueprob.regression import Gaussian
    from trueprob.regression.calibrators import (
        IsotonicQuantileRecalibration,
        RegressionCalibrator,
        VarianceScaling,
    )

    assert not hasattr(base, "ELSEWHERE")
    assert issubclass(PerLabelCalibration, MultilabelCalibrator)
    for cls in (VarianceScaling, IsotonicQuantileRecalibration):
        assert issubclass(cls, RegressionCalibrator) and not issubclass(cls, Calibrator)
    for cls in (Calibrator, MultilabelCalibrator, RegressionCalibrator):
        assert issubclass(cls, BaseCalibrator) and cls.__name__ not in REGISTRY
    with pytest.raises(TypeError, match="VarianceScaling maps predictive distributions, not "
                                        r"class scores; use predict\(predictive\)"):
        VarianceScaling().predict_proba(logits=np.zeros((1, 2)))

    rng = np.random.default_rng(2)
    y = rng.normal(size=200) * 2.0
    cal = VarianceScaling().fit(y, Gaussian(mean=np.zeros(200), std=1.0))
    path = tmp_path / "vs.json"
    cal.save(path)
    code = ("import sys, trueprob.calibrators as c\n"
            "assert 'trueprob.regression.calibrators' not in sys.modules\n"
            f"cal = c.load({str(path)!r})\n"
            "print(type(cal).__module__, repr(cal.scale_factor_))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["trueprob.regression.calibrators", repr(cal.scale_factor_)]
    # the maximum-likelihood Gaussian factor is the RMS of z (closed form)
    assert cal.scale_factor_ == pytest.approx(np.sqrt(np.mean(y ** 2)), rel=1e-9)
    with pytest.raises(CalibratorFormatError, match="unknown calibrator class 'Nope'"):
        from_dict({**cal.to_dict(), "class": "Nope"})
