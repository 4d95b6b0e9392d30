"""`trueprob fit`, `apply` and `compare`: their numbers are the Python API's on the same arrays;
outputs are written atomically and never clobbered without --force."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from click.testing import CliRunner

import trueprob
from trueprob.calibrators import load
from trueprob.calibrators.binary import BetaCalibration, PlattScaling
from trueprob.calibrators.multiclass import OneVsRest, TopLabel
from trueprob.calibrators.nonparametric import IsotonicCalibration
from trueprob.calibrators.temperature import TemperatureScaling
from trueprob.cli import main


def run(*args: str):
    return CliRunner().invoke(main, list(args))


@pytest.fixture
def files(tmp_path, synthetic_logits, rng):
    """val.npz / test.npz: float32 logits three times too large (over-confident), labels."""
    z, y = synthetic_logits(rng, 1500, 4, scale=3.0, dtype=np.float32)
    zt, yt = synthetic_logits(rng, 1500, 4, scale=3.0, dtype=np.float32)
    np.savez(tmp_path / "val.npz", logits=z, labels=y)
    np.savez(tmp_path / "test.npz", logits=zt, labels=yt)
    return tmp_path, (z, y), (zt, yt)


def summary_nll(stderr: str) -> tuple[float, float]:
    """The fit line's NLL before and after, in bits (as every trueprob command prints)."""
    match = re.search(r"NLL (\S+) -> (\S+) bits", stderr)
    assert match, stderr
    return float(match.group(1)), float(match.group(2))


# --------------------------------------------------------------------------- fit


def test_fit_temperature_equals_the_python_fit(files):
    folder, (z, y), _ = files
    out = folder / "cal.json"
    result = run("fit", "--method", "temperature", str(folder / "val.npz"), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    cal = load(out)
    ref = TemperatureScaling().fit(y, logits=z)
    assert type(cal) is TemperatureScaling and cal.temperature_ == ref.temperature_
    before, after = summary_nll(result.stderr)
    # the Python functions give nats; the line gives bits = nats / ln 2
    assert before == pytest.approx(trueprob.evaluate(y, logits=z).nll / np.log(2), abs=1e-6)
    assert after == pytest.approx(
        trueprob.evaluate(y, logits=ref.predict_logproba(logits=z)).nll / np.log(2), abs=1e-6)
    assert after < before
    assert result.stderr.count("\n") == 1 and "fit temperature on" in result.stderr


@pytest.mark.parametrize(("multiclass", "wrapper"), [("one-vs-rest", OneVsRest),
                                                     ("top-label", TopLabel)])
def test_binary_method_on_multiclass_data_is_wrapped_and_says_so(files, multiclass, wrapper):
    folder, (z, y), _ = files
    out = folder / "cal.json"
    result = run("fit", "-m", "isotonic", str(folder / "val.npz"), "-o", str(out),
                 "--multiclass", multiclass)
    assert result.exit_code == 0, result.output
    assert (f"isotonic is a binary method and the data have K=4 classes: fitted {multiclass} "
            f"({wrapper.__name__}(base=IsotonicCalibration()))") in result.stderr
    cal = load(out)
    assert type(cal) is wrapper and type(cal.base) is IsotonicCalibration
    ref = wrapper(base=IsotonicCalibration()).fit(y, logits=z)
    np.testing.assert_array_equal(cal.predict_logproba(logits=z), ref.predict_logproba(logits=z))


def test_binary_data_uses_the_binary_calibrator_itself(tmp_path, rng):
    s = rng.normal(size=400) * 3
    y = (rng.random(400) < 1 / (1 + np.exp(-s / 3))).astype(np.int64)
    np.savez(tmp_path / "bin.npz", logits=s, labels=y)
    result = run("fit", "-m", "platt", str(tmp_path / "bin.npz"), "-o", str(tmp_path / "p.json"))
    assert result.exit_code == 0, result.output
    assert "binary method" not in result.stderr
    cal = load(tmp_path / "p.json")
    ref = PlattScaling().fit(y, logits=s)
    assert type(cal) is PlattScaling and cal.coef_ == ref.coef_
    assert cal.coef_ == pytest.approx(1 / 3, rel=0.25)


def test_fit_refuses_to_clobber_and_failed_runs_leave_the_old_file(files):
    folder, _, _ = files
    out = folder / "cal.json"
    assert run("fit", "-m", "temperature", str(folder / "val.npz"), "-o", str(out)).exit_code == 0
    original = out.read_bytes()
    again = run("fit", "-m", "platt", str(folder / "val.npz"), "-o", str(out))
    assert again.exit_code == 2
    assert "exists; pass --force to replace it" in again.stderr
    assert out.read_bytes() == original
    # a data error with --force: exit 1, the earlier file untouched, no temporary left behind
    np.savez(folder / "bad.npz", logits=np.zeros((3, 4), np.float32), labels=np.array([0, 1, 7]))
    bad = run("fit", "-m", "temperature", str(folder / "bad.npz"), "-o", str(out), "--force")
    assert bad.exit_code == 1
    assert bad.stderr.startswith("trueprob: error: ")
    assert "labels must be in 0..3 (K=4); row 2 is 7" in bad.stderr
    assert out.read_bytes() == original
    assert sorted(p.name for p in folder.iterdir()) == ["bad.npz", "cal.json", "test.npz",
                                                        "val.npz"]
    forced = run("fit", "-m", "platt", str(folder / "val.npz"), "-o", str(out), "--force")
    assert forced.exit_code == 0, forced.output
    assert type(load(out)) is OneVsRest


@pytest.mark.parametrize(("make", "message"), [
    (lambda p: np.savez(p, logits=np.zeros((3, 2))), r"no targets found"),
    (lambda p: np.savez(p, confidences=np.array([0.5, 0.9]), predictions=np.array([0, 1]),
                        labels=np.array([0, 1])),
     r"temperature scaling transforms the whole probability vector .* the methods that work "
     r"top-label are platt, beta, isotonic"),
    (lambda p: np.savez(p, probs=np.array([[0.5, 0.6]]), labels=np.array([0])),
     r"probs rows must sum to 1"),
])
def test_fit_data_errors_exit_1(tmp_path, make, message):
    make(tmp_path / "x.npz")
    result = run("fit", "-m", "temperature", str(tmp_path / "x.npz"), "-o",
                 str(tmp_path / "c.json"))
    assert result.exit_code == 1, result.output
    assert re.search(message, result.stderr), result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "c.json").exists()


def test_fit_usage_errors_exit_2(files):
    folder, _, _ = files
    assert run("fit", str(folder / "val.npz"), "-o", str(folder / "c.json")).exit_code == 2
    bad = run("fit", "-m", "gaussian", str(folder / "val.npz"), "-o", str(folder / "c.json"))
    assert bad.exit_code == 2 and "'gaussian' is not one of" in bad.stderr


# --------------------------------------------------------------------------- apply


def test_apply_writes_calibrated_logits_and_passes_targets_through(files):
    folder, (z, y), (zt, yt) = files
    cal_path, out = folder / "cal.json", folder / "calibrated.npz"
    run("fit", "-m", "isotonic", str(folder / "val.npz"), "-o", str(cal_path))
    w = np.linspace(0.5, 1.5, yt.size)
    np.savez(folder / "test_w.npz", logits=zt, labels=yt, sample_weight=w)
    result = run("apply", str(cal_path), str(folder / "test_w.npz"), "-o", str(out))
    assert result.exit_code == 0, result.output
    with np.load(out, allow_pickle=False) as data:
        assert sorted(data.files) == ["labels", "logits", "sample_weight"]
        logits, labels, weights = data["logits"], data["labels"], data["sample_weight"]
    ref = OneVsRest(base=IsotonicCalibration()).fit(y, logits=z).predict_logproba(logits=zt)
    np.testing.assert_array_equal(logits, ref)
    np.testing.assert_array_equal(labels, yt)
    np.testing.assert_array_equal(weights, w)
    assert np.allclose(np.exp(logits).sum(1), 1.0, rtol=1e-5)  # float32 log-probabilities
    # the output evaluates like the Python result
    evaluated = run("evaluate", str(out), "--format", "json")
    assert evaluated.exit_code == 0, evaluated.output
    out = json.loads(evaluated.stdout)
    assert out.pop("skce") is None  # weighted rows: the SKCE estimators are unweighted
    assert out == trueprob.evaluate(yt, logits=ref, sample_weight=w, unit="bits").to_dict()


def test_apply_without_targets_and_with_probs(tmp_path, synthetic_logits, rng):
    z, y = synthetic_logits(rng, 800, 3, scale=2.0)
    q = np.exp(z - z.max(1, keepdims=True))
    q /= q.sum(1, keepdims=True)
    np.savez(tmp_path / "val.npz", probs=q, labels=y)
    np.savez(tmp_path / "new.npz", probs=q[:50])
    assert run("fit", "-m", "temperature", str(tmp_path / "val.npz"), "-o",
               str(tmp_path / "c.json")).exit_code == 0
    result = run("apply", str(tmp_path / "c.json"), str(tmp_path / "new.npz"), "-o",
                 str(tmp_path / "out.npz"))
    assert result.exit_code == 0, result.output
    with np.load(tmp_path / "out.npz") as data:
        assert data.files == ["logits"]
        ref = TemperatureScaling().fit(y, probs=q).predict_logproba(probs=q[:50])
        np.testing.assert_array_equal(data["logits"], ref)


def test_apply_failures_leave_the_earlier_output(files):
    folder, _, _ = files
    cal_path, out = folder / "cal.json", folder / "out.npz"
    run("fit", "-m", "temperature", str(folder / "val.npz"), "-o", str(cal_path))
    assert run("apply", str(cal_path), str(folder / "test.npz"), "-o", str(out)).exit_code == 0
    original = out.read_bytes()
    np.savez(folder / "k3.npz", logits=np.zeros((5, 3)), labels=np.zeros(5, np.int64))
    wrong_k = run("apply", str(cal_path), str(folder / "k3.npz"), "-o", str(out), "--force")
    assert wrong_k.exit_code == 1
    assert "K=3 columns" in wrong_k.stderr and "K=4" in wrong_k.stderr
    assert out.read_bytes() == original
    (folder / "junk.json").write_text('{"format": "something else"}')
    junk = run("apply", str(folder / "junk.json"), str(folder / "test.npz"), "-o", str(out),
               "--force")
    assert junk.exit_code == 1 and "not a trueprob calibrator file" in junk.stderr
    assert out.read_bytes() == original
    clobber = run("apply", str(cal_path), str(folder / "test.npz"), "-o", str(out))
    assert clobber.exit_code == 2 and "pass --force" in clobber.stderr
    suffix = run("apply", str(cal_path), str(folder / "test.npz"), "-o",
                 str(folder / "out.csv"))
    assert suffix.exit_code == 2 and "must be an .npz file" in suffix.stderr


def test_apply_refuses_infinite_log_probabilities(tmp_path):
    # isotonic with clip=0 gives probability 0 below the first positive: log 0 = -inf is not a
    # valid logit, so apply stops with a data error instead of writing it
    p = np.array([0.1, 0.2, 0.6, 0.7, 0.9])
    cal = IsotonicCalibration(clip=0.0).fit(np.array([0, 0, 1, 0, 1]), probs=p)
    cal.save(tmp_path / "iso.json")
    np.savez(tmp_path / "x.npz", probs=np.array([0.05, 0.8]))
    result = run("apply", str(tmp_path / "iso.json"), str(tmp_path / "x.npz"), "-o",
                 str(tmp_path / "o.npz"))
    assert result.exit_code == 1
    assert "not finite (row 0" in result.stderr and "clip" in result.stderr
    assert not (tmp_path / "o.npz").exists()


# --------------------------------------------------------------------------- compare


def test_compare_json_rows_equal_the_python_api(files):
    folder, (z, y), (zt, yt) = files
    result = run("compare", "--fit", str(folder / "val.npz"), "--eval",
                 str(folder / "test.npz"), "--methods", "temperature,platt,isotonic",
                 "--format", "json", "--unit", "bits")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert [r["method"] for r in out["rows"]] == ["uncalibrated", "temperature", "platt",
                                                  "isotonic"]
    assert out["unit"] == "bits" and out["n_classes"] == 4
    cals = {"temperature": TemperatureScaling(), "platt": OneVsRest(base=PlattScaling()),
            "isotonic": OneVsRest(base=IsotonicCalibration())}
    reports = {"uncalibrated": trueprob.evaluate(yt, logits=zt, unit="bits")}
    for name, cal in cals.items():
        cal.fit(y, logits=z)
        reports[name] = trueprob.evaluate(yt, logits=cal.predict_logproba(logits=zt),
                                          unit="bits")
    for row in out["rows"]:
        report = reports[row["method"]]
        for key in ("nll", "brier", "ece", "classwise_ece", "accuracy"):
            assert row[key] == getattr(report, key), (row["method"], key)
    # the logits were made three times too large: every method lowers the test NLL
    assert all(r["nll"] < out["rows"][0]["nll"] for r in out["rows"][1:])


def test_compare_formats_and_errors(files, tmp_path):
    folder, _, _ = files
    args = ["compare", "--fit", str(folder / "val.npz"), "--eval", str(folder / "test.npz"),
            "--methods", "temperature,histogram"]
    markdown = run(*args, "--format", "markdown")
    assert markdown.exit_code == 0, markdown.output
    lines = markdown.stdout.splitlines()
    assert "| method | NLL (bits) | Brier | ECE | classwise ECE | accuracy |" in lines
    assert sum(line.startswith("| ") for line in lines) == 4  # header + 3 rows
    table = run(*args)
    assert table.exit_code == 0 and "histogram" in table.stdout
    unknown = run(*args[:-1], "temperature,gauss")
    assert unknown.exit_code == 2 and "unknown method 'gauss'" in unknown.stderr
    np.savez(tmp_path / "k3.npz", logits=np.zeros((5, 3)), labels=np.zeros(5, np.int64))
    mismatch = run("compare", "--fit", str(folder / "val.npz"), "--eval",
                   str(tmp_path / "k3.npz"), "--methods", "temperature")
    assert mismatch.exit_code == 1 and "--fit has K=4 classes but --eval has K=3" in \
        mismatch.stderr
    # a method that cannot be fitted is named
    np.savez(tmp_path / "sep.npz", logits=np.array([-2.0, -1.0, 1.0, 2.0]),
             labels=np.array([0, 0, 1, 1]))
    sep = run("compare", "--fit", str(tmp_path / "sep.npz"), "--eval", str(tmp_path / "sep.npz"),
              "--methods", "platt")
    assert sep.exit_code == 1
    assert "platt could not be fitted" in sep.stderr and "separate the classes" in sep.stderr


# --------------------------------------------------------------------------- real data


@pytest.mark.data
def test_real_mukhoti_resnet110_fit_apply_compare(shared_data, tmp_path):
    folder = shared_data / "mukhoti2020-cifar-logits"
    val = folder / "cifar10_resnet110_brier_val.npz"
    test = folder / "cifar10_resnet110_brier_test.npz"
    with np.load(val) as v, np.load(test) as t:
        z, y, zt, yt = v["logits"], v["labels"], t["logits"], t["labels"]
    result = run("compare", "--fit", str(val), "--eval", str(test), "--methods",
                 "temperature,platt,beta,isotonic,histogram,scaling-binning", "--format", "json")
    assert result.exit_code == 0, result.output
    rows = {r["method"]: r for r in json.loads(result.stdout)["rows"]}
    raw = trueprob.evaluate(yt, logits=zt, unit="bits")
    assert rows["uncalibrated"]["nll"] == raw.nll and rows["uncalibrated"]["ece"] == raw.ece
    # temperature scaling fitted on the held-out split improves the test NLL and ECE of this
    # model, and keeps its accuracy (a monotone map of every row)
    assert rows["temperature"]["nll"] < raw.nll and rows["temperature"]["ece"] < raw.ece
    assert rows["temperature"]["accuracy"] == raw.accuracy
    for method in ("platt", "beta"):
        assert rows[method]["nll"] < raw.nll, method
    # one-vs-rest isotonic lowers the Brier score but not the NLL here: test rows of a class
    # whose isotonic block on the val split had no positives get p' = clip = 1e-6
    assert rows["isotonic"]["brier"] < raw.brier
    assert all(r["ece"] < raw.ece for r in rows.values() if r["method"] != "uncalibrated")
    # fit + apply through files gives the Python result
    cal_path, out = tmp_path / "cal.json", tmp_path / "test_cal.npz"
    assert run("fit", "-m", "beta", str(val), "-o", str(cal_path)).exit_code == 0
    assert run("apply", str(cal_path), str(test), "-o", str(out)).exit_code == 0
    ref = OneVsRest(base=BetaCalibration()).fit(y, logits=z).predict_logproba(logits=zt)
    with np.load(out) as data:
        np.testing.assert_array_equal(data["logits"], ref)
        assert trueprob.evaluate(data["labels"], logits=data["logits"], unit="bits").nll == \
            pytest.approx(rows["beta"]["nll"], rel=1e-12)


def test_atomic_write_gives_ordinary_permissions(tmp_path):
    import os
    import stat

    from trueprob.io import atomic_write

    umask = os.umask(0o022)
    try:
        with atomic_write(tmp_path / "out.txt", mode="w") as fh:
            fh.write("x")
    finally:
        os.umask(umask)
    assert stat.S_IMODE(os.stat(tmp_path / "out.txt").st_mode) == 0o644


def test_compare_marks_the_best_flags_accuracy_and_skips_unidentified_maps(tmp_path):
    # K = 12 classes and 300 fitting rows: matrix/Dirichlet have K(K+1) = 156 parameters,
    # fewer than 10 rows each, so they are listed as skipped with the reason; the binary
    # methods run both one-vs-rest and top-label
    rng = np.random.default_rng(5)
    k = 12
    z = rng.normal(size=(600, k)) * 4
    q = np.exp(z / 4) / np.exp(z / 4).sum(axis=1, keepdims=True)  # over-confident by T = 4
    y = np.array([rng.choice(k, p=row) for row in q])
    np.savez(tmp_path / "val.npz", logits=z[:300], labels=y[:300])
    np.savez(tmp_path / "test.npz", logits=z[300:], labels=y[300:])
    result = run("compare", "--fit", str(tmp_path / "val.npz"), "--eval",
                 str(tmp_path / "test.npz"), "--format", "json", "-q")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    rows = {r["method"]: r for r in out["rows"]}
    assert rows["matrix"]["skipped"].startswith("K(K+1) = 156 parameters for 300 fitting rows")
    assert rows["matrix"]["nll"] is None and rows["dirichlet"]["skipped"]
    assert {"isotonic (one-vs-rest)", "isotonic (top-label)", "histogram (top-label)"} <= set(rows)
    # the best row: lowest held-out NLL among the rows that keep the accuracy within a point,
    # recomputed here from the rows themselves
    keep = [r for r in out["rows"][1:] if r["skipped"] is None
            and abs(r["accuracy"] - rows["uncalibrated"]["accuracy"]) <= 0.01]
    want = min(keep, key=lambda r: r["nll"])
    assert out["best"] == want["method"] and rows[want["method"]]["best"]
    assert sum(r["best"] for r in out["rows"]) == 1
    for r in out["rows"][1:]:
        if r["skipped"] is None:
            moved = abs(r["accuracy"] - rows["uncalibrated"]["accuracy"]) > 0.01
            assert bool(r["flags"]) == moved, r["method"]
            assert r["accuracy_change"] == pytest.approx(
                r["accuracy"] - rows["uncalibrated"]["accuracy"], abs=1e-12)
    some = ("compare", "--fit", str(tmp_path / "val.npz"), "--eval", str(tmp_path / "test.npz"),
            "-q", "--methods", "temperature,isotonic/top-label,matrix")
    table, as_json = run(*some), run(*some, "--format", "json")
    assert table.exit_code == 0 and as_json.exit_code == 0, table.output
    best = json.loads(as_json.stdout)["best"]
    assert best in ("temperature", "isotonic/top-label")
    assert f"* {best}" in table.stdout and f"* best: {best} (lowest held-out NLL" in table.stdout
    assert "- matrix skipped: K(K+1) = 156 parameters" in table.stdout
    bad = run("compare", "--fit", str(tmp_path / "val.npz"), "--eval",
              str(tmp_path / "test.npz"), "--methods", "vector/top-label")
    assert bad.exit_code == 2 and "vector is not a binary method" in bad.stderr


def test_compare_names_the_file_whose_rows_are_bad(tmp_path):
    rng = np.random.default_rng(1)
    z, y = rng.normal(size=(100, 3)), rng.integers(0, 3, 100)
    np.savez(tmp_path / "val.npz", logits=z, labels=y)
    bad = z.copy()
    bad[7, 1] = np.nan
    np.savez(tmp_path / "test.npz", logits=bad, labels=y)
    out = run("compare", "--fit", str(tmp_path / "val.npz"), "--eval", str(tmp_path / "test.npz"),
              "--methods", "temperature")
    assert out.exit_code == 1
    assert f"{tmp_path / 'test.npz'}: " in out.stderr and "row 7" in out.stderr
    swapped = run("compare", "--fit", str(tmp_path / "test.npz"), "--eval",
                  str(tmp_path / "val.npz"), "--methods", "temperature")
    assert swapped.exit_code == 1
    assert f"{tmp_path / 'test.npz'}: " in swapped.stderr and "row 7" in swapped.stderr


def test_compare_keeps_going_when_one_map_does_not_exist(tmp_path):
    # class 2's logit separates its rows perfectly, so one-vs-rest Platt has no maximum-
    # likelihood fit: that row is skipped with the reason, the others are compared
    rng = np.random.default_rng(9)
    z = rng.normal(size=(400, 3))
    y = rng.integers(0, 2, 400)
    y[:40] = 2
    z[:40, 2] += 20.0
    np.savez(tmp_path / "val.npz", logits=z, labels=y)
    out = run("compare", "--fit", str(tmp_path / "val.npz"), "--eval", str(tmp_path / "val.npz"),
              "--methods", "temperature,platt/one-vs-rest", "--format", "json", "-q")
    assert out.exit_code == 0, out.output
    rows = {r["method"]: r for r in json.loads(out.stdout)["rows"]}
    assert rows["platt/one-vs-rest"]["skipped"].startswith(
        f"could not be fitted on {tmp_path / 'val.npz'}: ")
    assert "separate the classes" in rows["platt/one-vs-rest"]["skipped"]
    assert rows["temperature"]["skipped"] is None and rows["temperature"]["nll"] is not None
