"""Tests of `trueprob evaluate`: its numbers are `trueprob.evaluate`'s on the same arrays."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import trueprob
from trueprob.cli import main

STABLE_KEYS = ("n", "n_classes", "unit", "accuracy", "nll", "brier", "ece", "mce", "rmsce",
               "ece_debiased", "classwise_ece", "ks", "bins")


def report_json(text: str) -> dict:
    """The JSON of `trueprob evaluate` without `skce` and `calibrator` (added by the CLI, not
    in a Report)."""
    out = json.loads(text)
    out.pop("skce", None)
    out.pop("calibrator", None)
    return out


@pytest.fixture
def val_npz(tmp_path, synthetic_logits, rng):
    z, y = synthetic_logits(rng, 400, 5, scale=2.5)
    path = tmp_path / "val.npz"
    np.savez(path, logits=z.astype(np.float32), labels=y)
    return path, z.astype(np.float32), y


def run(*args: str, input: bytes | None = None):
    return CliRunner().invoke(main, ["evaluate", *args], input=input)


def test_json_has_the_stable_keys_and_equals_evaluate(val_npz):
    path, z, y = val_npz
    result = run(str(path), "--format", "json")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    out = report_json(result.stdout)
    for key in STABLE_KEYS:
        assert key in out, key
    assert "entropy" not in out and "kl" not in out  # hard labels
    assert out == trueprob.evaluate(y, logits=z, unit="bits").to_dict()  # CLI default: bits
    assert out["n"] == 400 and out["n_classes"] == 5 and out["unit"] == "bits"
    assert len(out["bins"]) == 15


def test_options_reach_evaluate(val_npz):
    path, z, y = val_npz
    result = run(str(path), "--format", "json", "--bins", "10", "--binning", "mass",
                 "--closed", "left", "--reduce", "sum", "--unit", "bits")
    assert result.exit_code == 0, result.output
    want = trueprob.evaluate(y, logits=z, n_bins=10, binning="mass", closed="left",
                             reduce="sum", unit="bits").to_dict()
    assert report_json(result.stdout) == want
    assert want["settings"]["binning"] == "mass" and len(want["bins"]) == 10


def test_csv_with_globs_weights_and_soft_targets(tmp_path, rng):
    n, k = 60, 3
    q = rng.dirichlet(np.ones(k), size=n)
    p = rng.dirichlet(np.ones(k), size=n)
    w = rng.uniform(0.5, 2.0, size=n)
    header = [f"q{j}" for j in range(k)] + [f"p{j}" for j in range(k)] + ["w"]
    lines = [",".join(header)] + [
        ",".join(repr(float(v)) for v in [*q[i], *p[i], w[i]]) for i in range(n)]
    path = tmp_path / "soft.csv"
    path.write_text("\n".join(lines) + "\n")
    result = run(str(path), "--probs", "q*", "--targets", "p0,p1,p2", "--weights", "w",
                 "--format", "json")
    assert result.exit_code == 0, result.output
    out = report_json(result.stdout)
    assert "entropy" in out and "kl" in out
    assert out == trueprob.evaluate(probs=q, targets=p, sample_weight=w,
                                   unit="bits").to_dict()
    # CE = H + KL for soft targets (SPEC.md), read off the CLI's own output
    assert out["nll"] == pytest.approx(out["entropy"] + out["kl"], rel=1e-12)


@pytest.mark.data
def test_top_label_mode_on_a_real_csv(shared_data):
    path = shared_data / "hollance-confidences" / "csv" / "other" / "snacks.csv"
    result = run(str(path), "--labels", "true_label", "--predictions", "pred_label",
                 "--confidences", "confidence", "--n-classes", "20", "--format", "json")
    assert result.exit_code == 0, result.output
    with np.load(shared_data / "hollance-confidences" / "other__snacks.npz") as ref:
        want = trueprob.evaluate(ref["labels"], unit="bits", confidences=ref["confidence"],
                                 predictions=ref["preds"], n_classes=20).to_dict()
    out = report_json(result.stdout)
    assert out == want
    assert out["nll"] is None and "nll" in out["unavailable"]
    assert out["accuracy"] == pytest.approx(0.8634, abs=5e-5)  # data README: 86.34 %


def test_markdown_and_table_formats(val_npz):
    path, z, y = val_npz
    report = trueprob.evaluate(y, logits=z, unit="bits")
    markdown = run(str(path), "--format", "markdown")
    assert markdown.exit_code == 0
    assert markdown.stdout == report.to_markdown()
    table = run(str(path))
    assert table.exit_code == 0
    assert f"{path}: 400 rows, K = 5, logits vs labels" in " ".join(table.stdout.split())
    for name, value in [("accuracy", report.accuracy), ("ece", report.ece),
                        ("nll (bits)", report.nll), ("brier", report.brier)]:
        assert any(name in line and f"{value:.4f}" in line for line in
                   table.stdout.splitlines()), name


def test_stdin(val_npz):
    path, z, y = val_npz
    result = run("-", "--format", "json", input=path.read_bytes())
    assert result.exit_code == 0, result.output
    assert report_json(result.stdout) == trueprob.evaluate(y, logits=z, unit="bits").to_dict()


@pytest.mark.parametrize(("make", "args", "message"), [
    (lambda p: p.write_bytes(b"PK\x03\x04 broken"), [],
     r"not a readable \.npz archive"),
    (lambda p: np.savez(p, logits=np.zeros((3, 2)), probs=np.full((3, 2), 0.5),
                        labels=np.zeros(3, int)), [],
     r"found more than one kind of model output.*--logits.*--probs"),
    (lambda p: np.savez(p, logits=np.zeros((3, 2))), [],
     r"no targets found .*--labels, --targets,? (or )?--counts"),
    (lambda p: np.savez(p, probs=np.array([[0.5, 0.6]]), labels=np.array([0])), [],
     r"probs rows must sum to 1 .*row 0 sums to 1\.1"),
    (lambda p: np.savez(p, logits=np.zeros((2, 2)), labels=np.array([0, 2])), [],
     r"labels must be in 0\.\.1 \(K=2\); row 1 is 2"),
    (lambda p: np.savez(p, logits=np.zeros((2, 2)), labels=np.array([0, 1])),
     ["--labels", "y"], r"labels: no array named 'y'"),
])
def test_data_errors_exit_1_with_the_message_on_stderr(tmp_path, make, args, message):
    path = tmp_path / "bad.npz"
    make(path)
    result = run(str(path), "--format", "json", *args)
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    assert result.stderr.startswith("trueprob: error: ")
    assert "Traceback" not in result.stderr
    assert re.search(message, result.stderr), result.stderr


@pytest.mark.parametrize("args", [
    ["missing.npz"],
    ["{path}", "--format", "yaml"],
    ["{path}", "--bins", "0"],
    ["{path}", "--binning", "quantile"],
    ["{path}", "--n-classes", "1"],
    ["{path}", "--unknown-option"],
])
def test_usage_errors_exit_2(val_npz, args):
    path, _, _ = val_npz
    result = run(*[a.format(path=path) for a in args])
    assert result.exit_code == 2, result.output
    assert result.stdout == ""


def test_warnings_go_to_stderr(tmp_path):
    path = tmp_path / "zero.npz"
    np.savez(path, probs=np.array([[1.0, 0.0], [0.25, 0.75]]), labels=np.array([1, 1]))
    result = run(str(path), "--format", "json")
    assert result.exit_code == 0, result.output
    assert "trueprob: warning:" in result.stderr and "1 row" in result.stderr
    out = report_json(result.stdout)
    assert out["nll"] == "inf" and out["n_infinite_nll"] == 1


def test_calibrator_option(tmp_path, val_npz, synthetic_logits, rng):
    try:
        from trueprob.calibrators.temperature import TemperatureScaling
    except ImportError:
        pytest.skip("trueprob.calibrators.temperature.TemperatureScaling is not written yet")
    _, z, y = val_npz
    cal = TemperatureScaling().fit(y, logits=z)
    cal.save(tmp_path / "cal.json")
    z_test, y_test = synthetic_logits(rng, 300, 5, scale=2.5)
    test = tmp_path / "test.npz"
    np.savez(test, logits=z_test, labels=y_test)
    result = run(str(test), "--calibrator", str(tmp_path / "cal.json"), "--format", "json")
    assert result.exit_code == 0, result.output
    want = trueprob.evaluate(y_test, logits=cal.predict_logproba(logits=z_test), unit="bits")
    assert report_json(result.stdout) == want.to_dict()
    # the output says that the numbers are of the calibrated probabilities
    assert json.loads(result.stdout)["calibrator"] == {"path": str(tmp_path / "cal.json"),
                                                       "class": "TemperatureScaling"}
    table = run(str(test), "--calibrator", str(tmp_path / "cal.json"))
    assert (f"calibrated: every number above is of the probabilities after the calibrator "
            f"{tmp_path / 'cal.json'} (TemperatureScaling)") in table.stdout
    # the same map, written out by hand: softmax(z / T)
    by_hand = trueprob.evaluate(y_test, logits=z_test / cal.temperature_, unit="bits")
    assert report_json(result.stdout)["nll"] == pytest.approx(by_hand.nll, rel=1e-12)
    # an uncalibrated model scored at T != 1 differs from the raw evaluation
    assert cal.temperature_ != pytest.approx(1.0, abs=0.05)
    (tmp_path / "bad.json").write_text('{"format": "something else"}')
    bad = run(str(test), "--calibrator", str(tmp_path / "bad.json"))
    assert bad.exit_code == 1
    assert "not a trueprob calibrator file" in bad.stderr


def test_real_subprocess(val_npz):
    script = Path(sys.executable).parent / "trueprob"
    if not script.exists():
        pytest.skip(f"console script not installed next to {sys.executable}")
    path, z, y = val_npz
    proc = subprocess.run([str(script), "evaluate", str(path), "--format", "json",
                           "--unit", "bits"], capture_output=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr.decode()
    assert report_json(proc.stdout) == trueprob.evaluate(y, logits=z, unit="bits").to_dict()
    piped = subprocess.run([str(script), "evaluate", "-", "--format", "json"],
                           input=path.read_bytes(), capture_output=True, timeout=120,
                           check=False)
    assert piped.returncode == 0, piped.stderr.decode()
    assert report_json(piped.stdout) == trueprob.evaluate(
        y, logits=z, unit="bits").to_dict()
    try:
        from trueprob.calibrators.temperature import TemperatureScaling
    except ImportError:
        pass
    else:  # a fresh process must find the calibrator class by its saved name
        cal = TemperatureScaling().fit(y, logits=z)
        cal.save(path.with_name("cal.json"))
        calibrated = subprocess.run(
            [str(script), "evaluate", str(path), "--format", "json", "--calibrator",
             str(path.with_name("cal.json"))], capture_output=True, timeout=120, check=False)
        assert calibrated.returncode == 0, calibrated.stderr.decode()
        assert report_json(calibrated.stdout) == trueprob.evaluate(
            y, logits=cal.predict_logproba(logits=z), unit="bits").to_dict()
    bad = subprocess.run([str(script), "evaluate", str(path), "--labels", "nope"],
                         capture_output=True, timeout=120, check=False)
    assert bad.returncode == 1
    assert bad.stdout == b""
    assert b"no array named 'nope'" in bad.stderr


def test_table_into_a_pipe_never_wraps_a_long_path(tmp_path, rng):
    # stdout is not a terminal under CliRunner: the header line keeps the whole path
    folder = tmp_path / ("a_rather_long_folder_name_" * 3)
    folder.mkdir()
    path = folder / "predictions_of_a_model_with_a_long_name.npz"
    np.savez(path, logits=rng.normal(size=(50, 3)), labels=rng.integers(0, 3, 50))
    result = CliRunner().invoke(main, ["evaluate", str(path)])
    assert result.exit_code == 0, result.output
    first = result.stdout.splitlines()[0]
    assert first.startswith(f"{path}: 50 rows, K = 3, logits vs labels;")


def test_every_command_defaults_to_bits(val_npz):
    # one default unit for everything trueprob prints (nats on request, e.g. to compare with
    # a library that prints nats); the Python functions keep the nats default of the spec
    path, _, _ = val_npz
    out = json.loads(run(str(path), "--format", "json").stdout)
    nats = json.loads(run(str(path), "--format", "json", "--unit", "nats").stdout)
    assert out["unit"] == "bits" and nats["unit"] == "nats"
    assert out["nll"] == pytest.approx(nats["nll"] / np.log(2), rel=1e-12)
    for command in ("evaluate", "compare", "decompose", "report"):
        option = next(o for o in main.commands[command].params if o.name == "unit")
        assert option.default == "bits", command


def test_test_flag_on_top_label_outputs_runs_the_top_label_test(tmp_path):
    rng = np.random.default_rng(8)
    z = rng.normal(size=(800, 4)) * 2
    q = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    y = (q.cumsum(axis=1) < rng.random((800, 1))).sum(axis=1)
    np.savez(tmp_path / "top.npz", confidence=q.max(axis=1), preds=q.argmax(axis=1), labels=y)
    out = run(str(tmp_path / "top.npz"), "--test", "--resamples", "200", "--format", "json")
    assert out.exit_code == 0, out.output
    p = json.loads(out.stdout)["p_values"]
    assert set(p) == {"ece"}  # no classwise test without the whole vectors
    want = trueprob.consistency_test(y, logits=z, n_resamples=200, random_state=0).p_value
    assert p["ece"] == pytest.approx(want, abs=1e-12)


def test_probabilities_passed_as_logits_get_a_warning_naming_probs(tmp_path):
    rng = np.random.default_rng(12)
    z = rng.normal(size=(60, 4))
    q = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    y = rng.integers(0, 4, 60)
    np.savez(tmp_path / "q.npz", logits=q, labels=y)  # probabilities under the logits name
    out = run(str(tmp_path / "q.npz"), "--format", "json")
    assert out.exit_code == 0  # names decide, values only warn
    assert (f"trueprob: warning: {tmp_path / 'q.npz'}: the logits look like probabilities "
            f"(every value in [0, 1] and every row summing to 1); if they are, pass them with "
            f"--probs") in out.stderr
    np.savez(tmp_path / "z.npz", logits=z, labels=y)
    assert "look like probabilities" not in run(str(tmp_path / "z.npz")).stderr


def test_evaluate_and_report_state_the_same_whole_vector_test(tmp_path):
    # one estimator for one quantity: the SKCE of `evaluate` and of `report` on the same file
    rng = np.random.default_rng(21)
    z = rng.normal(size=(700, 4)) * 2
    q = np.exp(1.4 * z) / np.exp(1.4 * z).sum(axis=1, keepdims=True)
    y = (q.cumsum(axis=1) < rng.random((700, 1))).sum(axis=1)
    np.savez(tmp_path / "p.npz", logits=z, labels=y)
    ev = json.loads(run(str(tmp_path / "p.npz"), "--format", "json").stdout)["skce"]
    rep = CliRunner().invoke(main, ["report", str(tmp_path / "p.npz"), "--format", "json",
                                    "-o", "-", "-q"])
    assert rep.exit_code == 0, rep.output
    before = json.loads(rep.stdout)["answers"]["q1"]
    assert before["skce"] == pytest.approx(ev["estimate"], rel=1e-12)
    from trueprob.metrics.skce import whole_vector_test

    ref = whole_vector_test(y, logits=z, random_state=0)
    assert ev["estimate"] == pytest.approx(ref.estimate, rel=1e-12)
    assert ev["p_value"] == pytest.approx(ref.p_value, rel=1e-12)
