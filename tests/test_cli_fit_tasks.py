"""`trueprob fit` / `apply` / `report --fit` / `evaluate --calibrator` for --task regression and
--task multilabel: every number is checked against an independent numpy computation on data
whose miscalibration is known (model std = true std / 2; model log-odds = 2 x true log-odds),
fitted on a validation split and measured on a held-out test split."""

from __future__ import annotations

import json
import math
import re
import shlex
from pathlib import Path
from statistics import NormalDist

import numpy as np
import pytest
from click.testing import CliRunner
from scipy.special import ndtr, ndtri

from trueprob.calibrators import load
from trueprob.cli import main
from trueprob.multilabel import PerLabelCalibration
from trueprob.regression import IsotonicQuantileRecalibration, VarianceScaling
from trueprob.regression.recalibration import RECALIBRATED_LEVELS

N = 4000  # rows, split in half: validation (fit) and test (held out)
LN2 = math.log(2)
Z95 = NormalDist().inv_cdf(0.95)  # the 90 % central interval is mu +- Z95 sigma
REG = ("--task", "regression", "--mean", "mu", "--std", "sd", "--labels", "y")
ML = ("--task", "multilabel", "--logits", "z", "--labels", "y")
README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def run(*args: str):
    return CliRunner().invoke(main, list(args))


# --------------------------------------------------------------------------- data
def regression_data(n: int = N, seed: int = 1) -> dict[str, np.ndarray]:
    """Heteroscedastic y = 3 sin(x) + s(x) e, s(x) = 0.3 + 0.5 |x|; the model's std is s / 2."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2, 2, n)
    mu = 3 * np.sin(x)
    true_sd = 0.3 + 0.5 * np.abs(x)
    return {"y": mu + true_sd * rng.normal(size=n), "mu": mu, "sd": true_sd / 2}


def multilabel_data(n: int = N, n_labels: int = 5, seed: int = 2) -> dict[str, np.ndarray]:
    """Labels drawn from sigmoid(z / 2): the model's log-odds z are twice the true ones."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, n_labels)) * 3 + rng.normal(size=n_labels)
    y = (rng.random((n, n_labels)) < 1 / (1 + np.exp(-z / 2))).astype(np.int64)
    return {"z": z, "y": y}


def halves(data: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    h = len(data["y"]) // 2
    return {k: v[:h] for k, v in data.items()}, {k: v[h:] for k, v in data.items()}


@pytest.fixture
def reg(tmp_path):
    val, test = halves(regression_data())
    np.savez(tmp_path / "reg_val.npz", **val)
    np.savez(tmp_path / "reg_test.npz", **test)
    return tmp_path, val, test


@pytest.fixture
def ml(tmp_path):
    val, test = halves(multilabel_data())
    np.savez(tmp_path / "ml_val.npz", **val)
    np.savez(tmp_path / "ml_test.npz", **test)
    return tmp_path, val, test


# --------------------------------------------------------------------------- by hand
def gaussian_nll_bits(y, mu, sd) -> float:
    return float(np.mean(np.log(sd) + 0.5 * math.log(2 * math.pi)
                         + 0.5 * ((y - mu) / sd) ** 2)) / LN2


def coverage90(y, lo, hi) -> float:
    return float(np.mean((y >= lo) & (y <= hi)))


def pit_ece(u) -> float:
    """(1/G) sum_c |F(c/G) - c/G| on G = 1000 cells, F the empirical CDF of the PIT values."""
    grid = np.arange(1, 1001) / 1000
    return float(np.mean(np.abs(np.searchsorted(np.sort(u), grid, side="right") / len(u)
                                - grid)))


def bce_bits(y, z) -> float:
    """Mean over (row, label) of -y log sigmoid(z) - (1 - y) log sigmoid(-z), in bits."""
    return float(np.mean(np.logaddexp(0, -z) * y + np.logaddexp(0, z) * (1 - y))) / LN2


def ece(y, q, bins: int = 15) -> float:
    """Binned ECE of probabilities q against 0/1 outcomes y, right-closed equal-width bins."""
    idx = np.clip(np.ceil(bins * q) - 1, 0, bins - 1).astype(int)
    total = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            total += m.sum() * abs(y[m].mean() - q[m].mean())
    return total / len(q)


def logistic_mle(s, y) -> tuple[float, float]:
    """Slope and intercept of the logistic regression of y on s, by plain Newton steps."""
    a, b = 1.0, 0.0
    x = np.stack([s, np.ones_like(s)], axis=1)
    for _ in range(100):
        p = 1 / (1 + np.exp(-(a * s + b)))
        g = x.T @ (p - y)
        h = (x * (p * (1 - p))[:, None]).T @ x
        step = np.linalg.solve(h, g)
        a, b = a - step[0], b - step[1]
        if np.abs(step).max() < 1e-13:
            break
    return a, b


def read_npz(path) -> dict[str, np.ndarray]:
    with np.load(path) as f:
        return dict(f)


def line_numbers(stderr: str, label: str) -> tuple[float, float]:
    match = re.search(rf"{label} ([-+.\deE]+) -> ([-+.\deE]+)", stderr)
    assert match, stderr
    return float(match.group(1)), float(match.group(2))


# --------------------------------------------------------------------------- regression
def test_variance_scaling_recovers_the_factor_and_the_nll(reg):
    d, val, _ = reg
    res = run("fit", str(d / "reg_val.npz"), "-m", "variance-scaling", *REG,
              "-o", str(d / "vs.json"))
    assert res.exit_code == 0, res.output
    cal = load(d / "vs.json")
    assert isinstance(cal, VarianceScaling)
    # the Gaussian MLE of s: s^2 = mean(z^2), z the standardised residual (factor in std)
    s = math.sqrt(float(np.mean(((val["y"] - val["mu"]) / val["sd"]) ** 2)))
    assert cal.scale_factor_ == pytest.approx(s, rel=1e-12)
    assert s == pytest.approx(2.0, abs=0.05)  # model std = true std / 2
    before, after = line_numbers(res.stderr, "NLL")
    assert before == pytest.approx(gaussian_nll_bits(val["y"], val["mu"], val["sd"]), abs=1e-6)
    assert after == pytest.approx(gaussian_nll_bits(val["y"], val["mu"], s * val["sd"]),
                                  abs=1e-6)
    assert "bits" in res.stderr and f"s = {s:.6g}" in res.stderr
    c0, c1 = line_numbers(res.stderr, "coverage")
    y, mu, sd = val["y"], val["mu"], val["sd"]
    assert c0 == pytest.approx(coverage90(y, mu - Z95 * sd, mu + Z95 * sd), abs=1e-4)
    assert c1 == pytest.approx(coverage90(y, mu - Z95 * s * sd, mu + Z95 * s * sd), abs=1e-4)
    saved = json.loads((d / "vs.json").read_text())
    assert saved["format"] == "trueprob.calibrator" and saved["class"] == "VarianceScaling"


def test_variance_scaling_apply_held_out(reg):
    d, _, test = reg
    assert run("fit", str(d / "reg_val.npz"), "-m", "variance-scaling", *REG,
               "-o", str(d / "vs.json")).exit_code == 0
    s = load(d / "vs.json").scale_factor_
    res = run("apply", str(d / "vs.json"), str(d / "reg_test.npz"), *REG,
              "-o", str(d / "out.npz"))
    assert res.exit_code == 0, res.output
    out = read_npz(d / "out.npz")
    np.testing.assert_array_equal(out["mean"], test["mu"])
    np.testing.assert_allclose(out["std"], s * test["sd"], rtol=1e-15)
    np.testing.assert_array_equal(out["labels"], test["y"])
    # the printed options read it back
    options = res.stderr.split("read it with: trueprob ")[1].split()
    ev = run(*options, "--format", "json")
    assert ev.exit_code == 0, ev.output
    after = json.loads(ev.output)
    before = json.loads(run("evaluate", str(d / "reg_test.npz"), *REG, "--format",
                            "json").output)
    y, mu, sd = test["y"], test["mu"], test["sd"]
    assert before["coverage"]["0.9"] == pytest.approx(
        coverage90(y, mu - Z95 * sd, mu + Z95 * sd), abs=1e-12)
    assert after["coverage"]["0.9"] == pytest.approx(
        coverage90(y, mu - Z95 * s * sd, mu + Z95 * s * sd), abs=1e-12)
    assert after["coverage"]["0.9"] == pytest.approx(0.9, abs=0.02)
    assert before["pit_ece"] == pytest.approx(pit_ece(ndtr((y - mu) / sd)), abs=2e-3)
    assert after["pit_ece"] == pytest.approx(pit_ece(ndtr((y - mu) / (s * sd))), abs=2e-3)
    assert after["pit_ece"] < 0.02 < 0.08 < before["pit_ece"]
    assert after["nll"] == pytest.approx(gaussian_nll_bits(y, mu, s * sd), abs=1e-9)
    # evaluate --calibrator gives the same numbers without the intermediate file
    direct = json.loads(run("evaluate", str(d / "reg_test.npz"), *REG, "--calibrator",
                            str(d / "vs.json"), "--format", "json").output)
    assert direct["nll"] == pytest.approx(after["nll"], rel=1e-12)
    assert direct["calibrator"]["class"] == "VarianceScaling"


def hand_isotonic_quantiles(val, test) -> np.ndarray:
    """Kuleshov et al.'s map written out: R is the empirical CDF of the validation PIT
    values (linear between them, R(0) = 0, R(1) = 1); quantile p of a test row is
    mu + sd Phi^-1(R^-1(p))."""
    u = np.sort(ndtr((val["y"] - val["mu"]) / val["sd"]))
    knots = np.concatenate([[0.0], u, [1.0]])
    values = np.concatenate([[0.0], np.arange(1, len(u) + 1) / len(u), [1.0]])
    keep = np.concatenate([[True], np.diff(values) > 0])
    r_inv = np.interp(np.asarray(RECALIBRATED_LEVELS), values[keep], knots[keep])
    return test["mu"][:, None] + test["sd"][:, None] * ndtri(r_inv)[None, :]


def test_isotonic_quantile_fit_apply_and_evaluate(reg):
    d, val, test = reg
    res = run("fit", str(d / "reg_val.npz"), "-m", "isotonic-quantile", *REG,
              "-o", str(d / "iq.json"))
    assert res.exit_code == 0, res.output
    assert isinstance(load(d / "iq.json"), IsotonicQuantileRecalibration)
    ece0, ece1 = line_numbers(res.stderr, "PIT ECE")
    assert ece1 < 1e-3 < 0.1 < ece0   # in-sample the recalibrated PIT is uniform
    res = run("apply", str(d / "iq.json"), str(d / "reg_test.npz"), *REG,
              "-o", str(d / "out.npz"))
    assert res.exit_code == 0, res.output
    out = read_npz(d / "out.npz")
    assert out["quantiles"].shape == (len(test["y"]), len(RECALIBRATED_LEVELS))
    np.testing.assert_array_equal(out["levels"], RECALIBRATED_LEVELS)
    np.testing.assert_allclose(out["quantiles"], hand_isotonic_quantiles(val, test),
                               rtol=1e-9, atol=1e-9)
    options = res.stderr.split("read it with: trueprob ")[1].split()
    ev = run(*options, "--format", "json")
    assert ev.exit_code == 0, ev.output
    q = hand_isotonic_quantiles(val, test)
    j05, j95 = RECALIBRATED_LEVELS.index(0.05), RECALIBRATED_LEVELS.index(0.95)
    covered = coverage90(test["y"], q[:, j05], q[:, j95])
    got = json.loads(ev.output)["coverage"]["0.9"]
    assert got == pytest.approx(covered, abs=1e-12)
    assert got == pytest.approx(0.9, abs=0.02)
    # without --levels, evaluate reads the file's own 'levels' array: the same numbers
    cut = options.index("--levels")
    bare = run(*options[:cut], *options[cut + 2:], "--format", "json")
    assert bare.exit_code == 0, bare.output
    assert json.loads(bare.output) == json.loads(ev.output)


@pytest.mark.parametrize("method", ["variance-scaling", "isotonic-quantile"])
def test_report_fit_regression_shows_before_and_after(reg, method):
    d, _, test = reg
    res = run("report", str(d / "reg_test.npz"), *REG, "--fit", str(d / "reg_val.npz"),
              "-m", method, "--format", "markdown", "-o", "-")
    assert res.exit_code == 0, res.output
    section = res.stdout.split("### Recalibrated")[1].split("###")[0]
    assert f"{method} fitted on" in section
    row = next(r for r in section.splitlines() if r.startswith("| coverage of the 0.9 "))
    before, after = (float(c) for c in row.strip("|").split("|")[1:3])
    y, mu, sd = test["y"], test["mu"], test["sd"]
    assert before == pytest.approx(coverage90(y, mu - Z95 * sd, mu + Z95 * sd), abs=5e-5)
    assert after == pytest.approx(0.9, abs=0.02)


def test_report_fit_regression_defaults_to_variance_scaling_and_html(reg):
    d, _, _ = reg
    res = run("report", str(d / "reg_test.npz"), *REG, "--fit", str(d / "reg_val.npz"),
              "-o", str(d / "r.html"))
    assert res.exit_code == 0, res.output
    page = (d / "r.html").read_text()
    assert '<section id="recalibrated">' in page and "variance-scaling fitted on" in page


# --------------------------------------------------------------------------- multilabel
def test_multilabel_platt_per_label_is_the_logistic_mle(ml):
    d, val, test = ml
    res = run("fit", str(d / "ml_val.npz"), "-m", "platt", *ML, "-o", str(d / "ml.json"))
    assert res.exit_code == 0, res.output
    cal = load(d / "ml.json")
    assert isinstance(cal, PerLabelCalibration) and cal.n_labels_ == 5
    for j, c in enumerate(cal.calibrators_):
        a, b = logistic_mle(val["z"][:, j], val["y"][:, j])
        assert (c.coef_, c.intercept_) == pytest.approx((a, b), abs=1e-6)
        assert c.coef_ == pytest.approx(0.5, abs=0.06)   # true log-odds = z / 2
    before, after = line_numbers(res.stderr, "mean per-label log loss")
    assert before == pytest.approx(bce_bits(val["y"], val["z"]), abs=1e-6)
    slopes = np.array([c.coef_ for c in cal.calibrators_])
    icpts = np.array([c.intercept_ for c in cal.calibrators_])
    assert after == pytest.approx(bce_bits(val["y"], val["z"] * slopes + icpts), abs=1e-6)

    res = run("apply", str(d / "ml.json"), str(d / "ml_test.npz"), *ML,
              "-o", str(d / "out.npz"))
    assert res.exit_code == 0, res.output
    out = read_npz(d / "out.npz")
    np.testing.assert_allclose(out["logits"], test["z"] * slopes + icpts, rtol=1e-9,
                               atol=1e-9)
    np.testing.assert_array_equal(out["labels"], test["y"])
    options = res.stderr.split("read it with: trueprob ")[1].split()
    after_rep = json.loads(run(*options, "--format", "json").output)
    before_rep = json.loads(run("evaluate", str(d / "ml_test.npz"), *ML, "--format",
                                "json").output)
    y, z0, z1 = test["y"], test["z"], out["logits"]
    assert before_rep["micro"]["nll"] == pytest.approx(bce_bits(y, z0), abs=1e-9)
    assert after_rep["micro"]["nll"] == pytest.approx(bce_bits(y, z1), abs=1e-9)
    assert after_rep["micro"]["nll"] < before_rep["micro"]["nll"] - 0.05
    q0, q1 = 1 / (1 + np.exp(-z0)), 1 / (1 + np.exp(-z1))
    assert before_rep["micro"]["ece"] == pytest.approx(ece(y.ravel(), q0.ravel()), abs=1e-9)
    assert after_rep["micro"]["ece"] == pytest.approx(ece(y.ravel(), q1.ravel()), abs=1e-9)
    macro0 = np.mean([ece(y[:, j], q0[:, j]) for j in range(5)])
    macro1 = np.mean([ece(y[:, j], q1[:, j]) for j in range(5)])
    assert before_rep["macro"]["ece"] == pytest.approx(macro0, abs=1e-9)
    assert after_rep["macro"]["ece"] == pytest.approx(macro1, abs=1e-9)
    assert macro1 < macro0 / 2
    direct = json.loads(run("evaluate", str(d / "ml_test.npz"), *ML, "--calibrator",
                            str(d / "ml.json"), "--format", "json").output)
    assert direct["micro"]["nll"] == pytest.approx(after_rep["micro"]["nll"], rel=1e-12)


@pytest.mark.parametrize("method", ["temperature", "isotonic", "histogram"])
def test_multilabel_other_methods_round_trip(ml, method):
    d, _, _ = ml
    res = run("fit", str(d / "ml_val.npz"), "-m", method, *ML, "-o", str(d / "c.json"))
    assert res.exit_code == 0, res.output
    cal = load(d / "c.json")
    assert isinstance(cal, PerLabelCalibration)
    before, after = line_numbers(res.stderr, "mean per-label log loss")
    assert after < before
    assert run("apply", str(d / "c.json"), str(d / "ml_test.npz"), *ML,
               "-o", str(d / "o.npz")).exit_code == 0


def test_report_fit_multilabel(ml):
    d, _, _ = ml
    res = run("report", str(d / "ml_test.npz"), *ML, "--fit", str(d / "ml_val.npz"),
              "--format", "markdown", "-o", "-")
    assert res.exit_code == 0, res.output
    section = res.stdout.split("### Recalibrated")[1].split("###")[0]
    assert "platt fitted on" in section
    row = next(r for r in section.splitlines() if r.startswith("| ECE |"))
    micro0, micro1, macro0, macro1 = (float(c) for c in row.strip("|").split("|")[1:5])
    assert micro1 < micro0 / 2 and macro1 < macro0 / 2


# --------------------------------------------------------------------------- refusals
@pytest.mark.parametrize(("args", "message"), [
    (("-m", "temperature", *REG),
     "--method temperature does not apply to --task regression; choose from "
     "variance-scaling, isotonic-quantile"),
    (("-m", "variance-scaling", *ML),
     "--method variance-scaling does not apply to --task multilabel; choose from "
     "temperature, platt"),
    (("-m", "variance-scaling", "--logits", "z", "--labels", "y"),
     "--method variance-scaling does not apply to --task classification"),
    (("-m", "variance-scaling", *REG, "--logits", "mu"),
     "--logits does not apply to trueprob fit --task regression"),
    (("-m", "variance-scaling", *REG, "--confidences", "mu"),
     "--confidences does not apply to trueprob fit --task regression"),
    (("-m", "platt", *ML, "--predictions", "y"),
     "--predictions does not apply to trueprob fit --task multilabel"),
    (("-m", "isotonic-quantile", *REG, "--stream"),
     "--stream does not apply to trueprob fit --task regression"),
    (("-m", "platt", *ML, "--mean", "mu"),
     "--mean does not apply to trueprob fit --task multilabel"),
    (("-m", "temperature", "--mean", "mu"),
     "--mean does not apply to trueprob fit --task classification"),
])
def test_fit_usage_errors(reg, args, message):
    d, _, _ = reg
    res = run("fit", str(d / "reg_val.npz"), *args, "-o", str(d / "x.json"))
    assert res.exit_code == 2, res.output
    assert message in res.stderr
    assert not (d / "x.json").exists()


def test_fit_task_refuses_folders_and_missing_files(reg):
    d, _, _ = reg
    folder = run("fit", str(d), "-m", "variance-scaling", *REG, "-o", str(d / "x.json"))
    assert folder.exit_code == 2 and "fits from one file read into memory" in folder.stderr
    missing = run("fit", str(d / "nope.npz"), "-m", "variance-scaling", *REG,
                  "-o", str(d / "x.json"))
    assert missing.exit_code == 2 and "does not exist" in missing.stderr


def test_apply_refuses_a_calibrator_of_another_task(reg, ml):
    d, _, _ = reg
    assert run("fit", str(d / "reg_val.npz"), "-m", "variance-scaling", *REG,
               "-o", str(d / "vs.json")).exit_code == 0
    assert run("fit", str(d / "ml_val.npz"), "-m", "platt", *ML,
               "-o", str(d / "ml.json")).exit_code == 0
    wrong = run("apply", str(d / "ml.json"), str(d / "reg_test.npz"), *REG,
                "-o", str(d / "o.npz"))
    assert wrong.exit_code == 1
    assert (f"{d / 'ml.json'}: PerLabelCalibration was fitted for --task multilabel; this "
            f"command has --task regression") in wrong.stderr
    plain = run("apply", str(d / "vs.json"), str(d / "ml_test.npz"), "--logits", "z",
                "-o", str(d / "o.npz"))
    assert plain.exit_code == 1
    assert "VarianceScaling was fitted for --task regression" in plain.stderr
    assert not (d / "o.npz").exists()


def test_fit_task_never_clobbers(reg):
    d, _, _ = reg
    (d / "vs.json").write_text("keep")
    res = run("fit", str(d / "reg_val.npz"), "-m", "variance-scaling", *REG,
              "-o", str(d / "vs.json"))
    assert res.exit_code == 2 and "pass --force" in res.stderr
    assert (d / "vs.json").read_text() == "keep"
    assert run("fit", str(d / "reg_val.npz"), "-m", "variance-scaling", *REG,
               "-o", str(d / "vs.json"), "--force").exit_code == 0
    assert isinstance(load(d / "vs.json"), VarianceScaling)


# --------------------------------------------------------------------------- README
def test_readme_task_examples_run(tmp_path, monkeypatch):
    """The README's fit/apply --task lines run as written on files with their column names."""
    lines = [ln.strip() for ln in README.splitlines()
             if re.match(r"^trueprob (fit|apply) .*--task (regression|multilabel)", ln.strip())]
    assert any("regression" in ln for ln in lines) and any("multilabel" in ln for ln in lines)
    val, test = halves(regression_data())
    mval, mtest = halves(multilabel_data(n_labels=3))
    import csv

    def write_csv(path, columns):
        with open(path, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(list(columns))
            w.writerows(zip(*columns.values(), strict=True))

    for name, part in (("reg_val.csv", val), ("reg_test.csv", test)):
        write_csv(tmp_path / name, {"mu": part["mu"], "sd": part["sd"], "y": part["y"]})
    for name, part in (("tags_val.csv", mval), ("tags_test.csv", mtest)):
        cols = {f"logit_{j}": part["z"][:, j] for j in range(3)}
        cols |= {f"y_{j}": part["y"][:, j] for j in range(3)}
        write_csv(tmp_path / name, cols)
    monkeypatch.chdir(tmp_path)
    for line in lines:
        res = run(*shlex.split(line)[1:])
        assert res.exit_code == 0, (line, res.output)
