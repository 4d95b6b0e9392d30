"""`trueprob fit`, `apply`, `compare` and `decompose` on top-label outputs (--confidences,
--predictions): each number is checked against the Python API or a computation by hand."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from click.testing import CliRunner
from scipy.special import softmax, xlogy
from sklearn.isotonic import IsotonicRegression

import trueprob
from trueprob.calibrators import IsotonicCalibration, TemperatureScaling, TopLabel, load
from trueprob.cli import main


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def nll_bits(c: np.ndarray, a: np.ndarray) -> float:
    """Top-label NLL by hand: binary log loss of correctness, in bits."""
    with np.errstate(divide="ignore"):
        return float(np.mean(-(xlogy(a, c) + xlogy(1 - a, 1 - c))) / np.log(2))


def ece_by_hand(c: np.ndarray, a: np.ndarray, n_bins: int = 15) -> float:
    idx = np.clip(np.ceil(n_bins * c) - 1, 0, n_bins - 1).astype(int)
    return sum((idx == b).mean() * abs(a[idx == b].mean() - c[idx == b].mean())
               for b in range(n_bins) if (idx == b).any())


def fit_line(stderr: str) -> tuple[float, float]:
    match = re.search(r"top-label NLL (\S+) -> (\S+) bits", stderr)
    assert match, stderr
    return float(match.group(1)), float(match.group(2))


@pytest.fixture
def files(tmp_path, rng):
    """val.csv / test.csv with columns conf, pred, y of an over-confident 6-class model."""
    def split(n: int) -> dict[str, np.ndarray]:
        z = rng.normal(size=(n, 6)) * 3
        truth = softmax(z / 3, axis=1)
        y = (truth.cumsum(axis=1) < rng.random((n, 1))).sum(axis=1).clip(0, 5)
        q = softmax(z, axis=1)
        return {"conf": q.max(axis=1), "pred": q.argmax(axis=1), "y": y}

    out = {}
    for name in ("val", "test"):
        data = split(2000)
        lines = ["conf,pred,y"] + [f"{float(c)!r},{p},{y}" for c, p, y in
                                   zip(data["conf"], data["pred"], data["y"], strict=True)]
        (tmp_path / f"{name}.csv").write_text("\n".join(lines) + "\n")
        out[name] = data
    return tmp_path, out


FIELDS = ("--confidences", "conf", "--predictions", "pred", "--labels", "y")


def test_fit_then_apply_then_evaluate(files):
    folder, data = files
    val, test = data["val"], data["test"]
    cal_path = folder / "cal.json"
    result = run("fit", "-m", "isotonic", str(folder / "val.csv"), *FIELDS, "-o", str(cal_path))
    assert result.exit_code == 0, result.output
    assert result.stdout == "" and result.stderr.count("\n") == 1
    assert "fit isotonic (top-label)" in result.stderr
    cal = load(cal_path)
    ref = TopLabel(base=IsotonicCalibration()).fit(val["y"], confidences=val["conf"],
                                                   predictions=val["pred"])
    assert cal.to_dict()["fitted"] == ref.to_dict()["fitted"]
    before, after = fit_line(result.stderr)
    a = (val["y"] == val["pred"]).astype(float)
    assert before == pytest.approx(nll_bits(val["conf"], a), abs=1e-6)
    fitted = ref.predict_confidences(confidences=val["conf"], predictions=val["pred"])
    assert after == pytest.approx(nll_bits(fitted, a), abs=1e-6)
    assert after < before

    out = folder / "out.npz"
    applied = run("apply", str(cal_path), str(folder / "test.csv"), *FIELDS, "-o", str(out))
    assert applied.exit_code == 0, applied.output
    with np.load(out) as saved:
        assert sorted(saved.files) == ["confidences", "labels", "predictions"]
        np.testing.assert_array_equal(saved["predictions"], test["pred"])
        np.testing.assert_array_equal(saved["labels"], test["y"])
        np.testing.assert_array_equal(
            saved["confidences"],
            ref.predict_confidences(confidences=test["conf"], predictions=test["pred"]))
        calibrated = saved["confidences"]
    # evaluate reads the output by its canonical names
    evaluated = run("evaluate", str(out), "--format", "json")
    assert evaluated.exit_code == 0, evaluated.output
    report = json.loads(evaluated.stdout)
    a_test = (test["y"] == test["pred"]).astype(float)
    assert report["ece"] == pytest.approx(ece_by_hand(calibrated, a_test), abs=1e-12)
    assert report["accuracy"] == pytest.approx(a_test.mean())
    assert report["ece"] < ece_by_hand(test["conf"], a_test)
    # evaluate --calibrator on the top-label file gives the same numbers as apply + evaluate
    direct = run("evaluate", str(folder / "test.csv"), *FIELDS, "--calibrator", str(cal_path),
                 "--format", "json")
    assert direct.exit_code == 0, direct.output
    direct_report = json.loads(direct.stdout)
    for key in ("ece", "mce", "rmsce", "ks", "accuracy"):
        assert direct_report[key] == report[key], key
    assert direct_report["calibrator"]["class"] == "TopLabel"
    # a map of the whole vector cannot be applied to confidences: exit 1 naming the file
    vector = folder / "vector.npz"
    vrng = np.random.default_rng(5)
    np.savez(vector, logits=vrng.normal(size=(300, 6)), labels=vrng.integers(0, 6, 300))
    assert run("fit", "-m", "temperature", str(vector), "-o", str(folder / "t.json")
               ).exit_code == 0
    refused = run("evaluate", str(folder / "test.csv"), *FIELDS, "--calibrator",
                  str(folder / "t.json"))
    assert refused.exit_code == 1
    assert "t.json: a TemperatureScaling needs logits or probabilities" in refused.stderr


def test_vector_methods_are_refused(files):
    folder, _ = files
    result = run("fit", "-m", "temperature", str(folder / "val.csv"), *FIELDS, "-o",
                 str(folder / "t.json"))
    assert result.exit_code == 1
    assert re.search(r"val.csv holds top-label outputs .* temperature scaling transforms the "
                     r"whole probability vector .* the methods that work top-label are platt, "
                     r"beta, isotonic, histogram, scaling-binning, bbq, enir", result.stderr)
    assert not (folder / "t.json").exists()


def test_an_explicit_one_vs_rest_is_refused(files):
    # top-label outputs have one map, of the confidence: --multiclass one-vs-rest, said out
    # loud, is a usage error in fit and compare; --multiclass top-label is what they do
    folder, _ = files
    val, test = str(folder / "val.csv"), str(folder / "test.csv")
    for args in (("fit", "-m", "platt", val, "-o", str(folder / "p.json")),
                 ("compare", "--fit", val, "--eval", test, "--methods", "platt")):
        refused = run(*args, *FIELDS, "--multiclass", "one-vs-rest")
        assert refused.exit_code == 2, refused.output
        assert "--multiclass one-vs-rest needs one probability per class" in refused.stderr
        assert run(*args, *FIELDS, "--multiclass", "top-label").exit_code == 0
    assert (folder / "p.json").exists()


def test_apply_refuses_a_vector_calibrator_and_predictions_beyond_k(files, rng):
    folder, data = files
    val = data["val"]
    z = rng.normal(size=(50, 6))
    temp = folder / "temp.json"
    noisy = np.where(rng.random(50) < 0.7, z.argmax(axis=1), rng.integers(0, 6, size=50))
    TemperatureScaling().fit(noisy, logits=z).save(temp)
    result = run("apply", str(temp), str(folder / "test.csv"), *FIELDS, "-o",
                 str(folder / "o.npz"))
    assert result.exit_code == 1
    assert (f"{temp}: a TemperatureScaling maps whole vectors (logits or probabilities, one "
            f"per class), but") in result.stderr
    assert "a TopLabel calibrator applies to them" in result.stderr
    # a map that knows K = 6 refuses a prediction 6
    known = folder / "known.json"
    TopLabel().fit(val["y"], confidences=val["conf"], predictions=val["pred"],
                   n_classes=6).save(known)
    np.savez(folder / "big.npz", confidences=np.array([0.5, 0.9]), predictions=np.array([1, 6]))
    result = run("apply", str(known), str(folder / "big.npz"), "-o", str(folder / "o.npz"))
    assert result.exit_code == 1
    assert "predictions must be in 0..5 (K=6); row 1 is 6" in result.stderr
    assert not (folder / "o.npz").exists()


def test_a_confidence_map_on_vectors_and_a_k_mismatch(tmp_path, rng):
    z = rng.normal(size=(300, 4)) * 3
    y = rng.integers(0, 4, size=300)
    q = softmax(z, axis=1)
    soft = rng.dirichlet(np.ones(3), size=300)
    np.savez(tmp_path / "vec.npz", logits=z, labels=y)
    # fitted on confidences with hard labels: K unknown, applies to vectors of any K
    free = tmp_path / "free.json"
    TopLabel().fit(y, confidences=q.max(axis=1), predictions=q.argmax(axis=1)).save(free)
    result = run("apply", str(free), str(tmp_path / "vec.npz"), "-o", str(tmp_path / "o.npz"))
    assert result.exit_code == 0, result.output
    with np.load(tmp_path / "o.npz") as out:
        np.testing.assert_allclose(softmax(out["logits"], axis=1).sum(axis=1), 1.0)
        assert np.array_equal(out["logits"].argmax(axis=1), q.argmax(axis=1))
    # fitted with 3-class soft targets: K = 3, and 4-column vectors are refused
    three = tmp_path / "three.json"
    TopLabel().fit(targets=soft, confidences=soft.max(axis=1),
                   predictions=soft.argmax(axis=1)).save(three)
    result = run("apply", str(three), str(tmp_path / "vec.npz"), "-o", str(tmp_path / "p.npz"))
    assert result.exit_code == 1
    assert "TopLabel was fitted on K=3 classes" in result.stderr


def test_a_wrong_prediction_at_confidence_one_is_an_honest_inf(tmp_path):
    np.savez(tmp_path / "x.npz", confidences=np.array([1.0, 0.7, 0.6, 0.9]),
             predictions=np.array([0, 1, 2, 1]), labels=np.array([1, 1, 0, 1]))
    result = run("fit", "-m", "isotonic", str(tmp_path / "x.npz"), "-o",
                 str(tmp_path / "c.json"))
    assert result.exit_code == 0, result.output
    before, after = fit_line(result.stderr)
    assert before == float("inf")
    # PAV by hand, in the order of c (.6, .7, .9, 1.0) with correctness (0, 1, 1, 0): the
    # last three pool to 2/3, the first stays 0 and is clipped to 1e-6: finite log loss
    a = np.array([0.0, 1.0, 0.0, 1.0])
    fitted = np.array([2 / 3, 2 / 3, 1e-6, 2 / 3])
    assert after == pytest.approx(nll_bits(fitted, a), abs=1e-6)
    assert "Traceback" not in result.output


def test_compare(files):
    folder, data = files
    test = data["test"]
    result = run("compare", "--fit", str(folder / "val.csv"), "--eval",
                 str(folder / "test.csv"), *FIELDS, "--format", "json", "-q")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["top_label"] is True and out["n_classes"] is None
    names = [r["method"] for r in out["rows"]]
    assert names == ["uncalibrated"] + [f"{m} (top-label)" for m in (
        "platt", "beta", "isotonic", "histogram", "scaling-binning", "bbq", "enir")]
    a = (test["y"] == test["pred"]).astype(float)
    assert out["rows"][0]["nll"] == pytest.approx(nll_bits(test["conf"], a), rel=1e-9)
    assert out["rows"][0]["ece"] == pytest.approx(ece_by_hand(test["conf"], a), abs=1e-12)
    val = data["val"]
    iso = TopLabel(base=IsotonicCalibration()).fit(val["y"], confidences=val["conf"],
                                                   predictions=val["pred"])
    row = out["rows"][names.index("isotonic (top-label)")]
    conf = iso.predict_confidences(confidences=test["conf"], predictions=test["pred"])
    assert row["nll"] == pytest.approx(nll_bits(conf, a), rel=1e-9)
    assert row["brier"] == pytest.approx(np.mean((conf - a) ** 2), rel=1e-9)
    assert all(r["accuracy"] == pytest.approx(a.mean()) for r in out["rows"])
    fitted = [r for r in out["rows"] if r["nll"] is not None]
    best = min(fitted, key=lambda r: r["nll"])
    assert out["best"] == best["method"] and best["best"]
    table = run("compare", "--fit", str(folder / "val.csv"), "--eval",
                str(folder / "test.csv"), *FIELDS, "--format", "markdown", "-q",
                "--methods", "isotonic,platt/top-label")
    assert table.exit_code == 0, table.output
    assert "| method | top-label NLL (bits) | top-label Brier | ECE |" in table.stdout
    assert "(top-label outputs; ECE with 15 equal-width bins)" in table.stdout
    refused = run("compare", "--fit", str(folder / "val.csv"), "--eval",
                  str(folder / "test.csv"), *FIELDS, "--methods", "isotonic,vector")
    assert refused.exit_code == 2
    assert "vector scaling transforms the whole probability vector" in refused.output


def test_decompose(files):
    folder, data = files
    test = data["test"]
    result = run("decompose", str(folder / "test.csv"), *FIELDS, "--format", "json")
    assert result.exit_code == 0, result.output
    d = json.loads(result.stdout)
    a = (test["y"] == test["pred"]).astype(float)
    r = IsotonicRegression(y_min=0, y_max=1).fit_transform(test["conf"], a)
    prior = np.full_like(a, a.mean())
    assert (d["target"], d["estimator"], d["unit"]) == ("top_label", "isotonic", "bits")
    assert d["score"] == pytest.approx(nll_bits(test["conf"], a), rel=1e-12)
    assert d["mcb"] == pytest.approx(nll_bits(test["conf"], a) - nll_bits(r, a), rel=1e-9)
    assert d["unc"] == pytest.approx(nll_bits(prior, a), rel=1e-12)
    assert d["score"] == pytest.approx(d["mcb"] - d["dsc"] + d["unc"], rel=0, abs=1e-15)
    text = run("decompose", str(folder / "test.csv"), *FIELDS)
    assert text.exit_code == 0, text.output
    assert "log score of the top label" in text.stdout
    refused = run("decompose", str(folder / "test.csv"), *FIELDS, "--estimator", "temperature")
    assert refused.exit_code == 1
    assert "allow only the top-label decomposition" in refused.stderr


# --------------------------------------------------------------------------- real data


HOLLANCE = ("hollance-confidences", "ImageNet_torchvision__resnet101.npz")


@pytest.fixture
def hollance_split(shared_data, tmp_path):
    """Hollance's ResNet-101 ImageNet outputs (confidence, preds, labels; sorted by label),
    split 25,000 / 25,000 at random with seed 0."""
    with np.load(shared_data.joinpath(*HOLLANCE)) as raw:
        data = {k: raw[k] for k in raw.files}
    order = np.random.default_rng(0).permutation(data["labels"].shape[0])
    halves = {"val": order[:25000], "test": order[25000:]}
    for name, rows in halves.items():
        np.savez(tmp_path / f"{name}.npz", **{k: v[rows] for k, v in data.items()})
    return tmp_path, {name: {k: v[rows] for k, v in data.items()}
                      for name, rows in halves.items()}


def test_hollance_resnet101(hollance_split):
    folder, data = hollance_split
    val, test = data["val"], data["test"]
    names = ("--confidences", "confidence", "--predictions", "preds")
    fitted = run("fit", "-m", "isotonic", str(folder / "val.npz"), *names, "-o",
                 str(folder / "iso.json"))
    assert fitted.exit_code == 0, fitted.output
    before, after = fit_line(fitted.stderr)
    a_val = (val["labels"] == val["preds"]).astype(float)
    assert before == pytest.approx(nll_bits(val["confidence"], a_val), abs=1e-6)
    assert after < before
    applied = run("apply", str(folder / "iso.json"), str(folder / "test.npz"), *names, "-o",
                  str(folder / "out.npz"))
    assert applied.exit_code == 0, applied.output
    a = (test["labels"] == test["preds"]).astype(float)
    with np.load(folder / "out.npz") as out:
        calibrated = out["confidences"]
    report = json.loads(run("evaluate", str(folder / "out.npz"), "--format", "json").stdout)
    assert report["ece"] == pytest.approx(ece_by_hand(calibrated, a), abs=1e-12)
    assert report["ece"] < 0.5 * ece_by_hand(test["confidence"], a)
    compared = run("compare", "--fit", str(folder / "val.npz"), "--eval",
                   str(folder / "test.npz"), *names, "--format", "json", "-q")
    assert compared.exit_code == 0, compared.output
    rows = {r["method"]: r for r in json.loads(compared.stdout)["rows"]}
    assert rows["isotonic (top-label)"]["ece"] == pytest.approx(report["ece"], abs=1e-12)
    # one wrong prediction of the test half has confidence exactly 1: an honest inf
    assert np.any((test["confidence"] == 1.0) & (a == 0))
    assert rows["uncalibrated"]["nll"] == "inf"
    d = trueprob.decompose(test["labels"], confidences=test["confidence"],
                           predictions=test["preds"], score="brier")
    r = IsotonicRegression(y_min=0, y_max=1).fit_transform(test["confidence"], a)
    assert d.mcb == pytest.approx(np.mean((test["confidence"] - a) ** 2)
                                  - np.mean((r - a) ** 2), rel=1e-9)


def test_streamed_fits_stay_on_vectors(files, tmp_path, rng):
    folder, _ = files
    refused = run("fit", "-m", "isotonic", "--stream", str(folder / "val.csv"), *FIELDS, "-o",
                  str(folder / "s.json"))
    assert refused.exit_code == 2
    assert "a top-label map is fitted in memory on one file" in refused.output
    # a streamed temperature fit of vectors is unchanged by the new options
    z = rng.normal(size=(400, 3))
    y = np.where(rng.random(400) < 0.6, z.argmax(axis=1), rng.integers(0, 3, size=400))
    np.savez(tmp_path / "vec.npz", logits=z, labels=y)
    streamed = run("fit", "-m", "temperature", "--stream", str(tmp_path / "vec.npz"), "-o",
                   str(tmp_path / "t.json"))
    assert streamed.exit_code == 0, streamed.output
    assert load(tmp_path / "t.json").temperature_ == pytest.approx(
        TemperatureScaling().fit(y, logits=z).temperature_, rel=1e-6)
