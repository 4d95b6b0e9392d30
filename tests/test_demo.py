"""Tests of the digits demo: the logits are the network's, the files hold them, the printed
numbers are `trueprob.evaluate`'s, the network is over-confident as documented, and the demo
fits temperature scaling on the validation split and writes the report."""

from __future__ import annotations

import html
import json
import re
import sys
import time

import numpy as np
import pytest
from click.testing import CliRunner
from scipy.special import softmax

import trueprob
from trueprob.cli import main
from trueprob.demo import DemoData, network_logits, train_demo_model, write_demo_files
from trueprob.report.verdict import verdict

pytest.importorskip("sklearn", reason="the demo needs scikit-learn (the [demo] extra)")


@pytest.fixture(scope="module")
def data() -> DemoData:
    return train_demo_model(seed=0)


def test_splits_are_disjoint_stratified_and_cover_the_digits(data):
    from sklearn.datasets import load_digits

    images, digits = load_digits(return_X_y=True)
    assert data.n_train + len(data.val_labels) + len(data.test_labels) == len(digits) == 1797
    assert (data.n_train, len(data.val_labels), len(data.test_labels)) == (539, 629, 629)
    # every held-out row is a distinct digits image with its own label
    rows = {tuple(x): y for x, y in zip(images / 16.0, digits, strict=True)}
    held = [tuple(x) for x in np.concatenate([data.val_features, data.test_features])]
    labels = np.concatenate([data.val_labels, data.test_labels])
    assert [rows[x] for x in held] == labels.tolist()
    assert np.bincount(data.test_labels, minlength=10).min() >= 60  # stratified: ~63 each


def test_logits_are_the_network_logits(data):
    for x, z in ((data.val_features, data.val_logits), (data.test_features, data.test_logits)):
        assert z.shape == (629, 10) and z.dtype == np.float64
        gap = np.abs(softmax(z, axis=1) - data.model.predict_proba(x)).max()
        assert gap <= 1e-12
        np.testing.assert_array_equal(np.argmax(z, axis=1), data.model.predict(x))


def test_network_logits_for_other_activations_and_depths():
    from sklearn.neural_network import MLPClassifier

    rng = np.random.default_rng(7)
    x = rng.normal(size=(120, 6))
    y = (x[:, 0] > 0).astype(int) + (x[:, 1] > 0.5).astype(int)  # 3 classes
    for activation in ("tanh", "logistic", "identity"):
        model = MLPClassifier(hidden_layer_sizes=(8, 5), activation=activation,
                              solver="lbfgs", max_iter=5000, random_state=0).fit(x, y)
        z = network_logits(model, x)
        assert np.abs(softmax(z, axis=1) - model.predict_proba(x)).max() <= 1e-12
    binary = MLPClassifier(hidden_layer_sizes=(3,), solver="lbfgs", max_iter=5000,
                           random_state=0).fit(x, (y > 0).astype(int))
    with pytest.raises(ValueError, match=r"model must be a fitted multiclass MLPClassifier "
                       r"\(softmax output\); got output activation 'logistic'"):
        network_logits(binary, x)


def test_the_network_is_over_confident(data):
    # computed here from the logits, independently of trueprob
    q = softmax(data.test_logits, axis=1)
    accuracy = np.mean(q.argmax(axis=1) == data.test_labels)
    confidence = np.mean(q.max(axis=1))
    assert data.train_accuracy == 1.0 and data.train_loss < 1e-3
    assert confidence - accuracy > 0.02
    nll = -np.mean(np.log(q[np.arange(len(q)), data.test_labels]))
    # one temperature, chosen on the validation split, cuts the test log loss by more than half
    temperatures = np.linspace(1.0, 20.0, 191)
    val_nll = [-np.mean(np.log(softmax(data.val_logits / t, axis=1)[
        np.arange(len(data.val_labels)), data.val_labels])) for t in temperatures]
    best = temperatures[int(np.argmin(val_nll))]
    q_t = softmax(data.test_logits / best, axis=1)
    nll_t = -np.mean(np.log(q_t[np.arange(len(q_t)), data.test_labels]))
    assert best > 3.0
    assert nll_t < 0.5 * nll


def test_same_seed_same_logits_other_seed_other_split(data):
    again = train_demo_model(seed=0)
    np.testing.assert_array_equal(again.test_logits, data.test_logits)
    np.testing.assert_array_equal(again.val_labels, data.val_labels)
    other = train_demo_model(seed=1)
    assert not np.array_equal(other.test_labels, data.test_labels)
    with pytest.raises(ValueError, match=r"seed must be an integer in \[0, 2\*\*32\); got -1"):
        train_demo_model(seed=-1)


def test_write_demo_files_round_trip_and_refuses_to_overwrite(tmp_path, data):
    files = write_demo_files(data, tmp_path / "out")
    for path, z, y in ((files.val, data.val_logits, data.val_labels),
                       (files.test, data.test_logits, data.test_labels)):
        with np.load(path, allow_pickle=False) as saved:
            assert sorted(saved.files) == ["labels", "logits"]
            np.testing.assert_array_equal(saved["logits"], z)
            np.testing.assert_array_equal(saved["labels"], y)
    before = files.test.read_bytes()
    with pytest.raises(FileExistsError, match=r"val\.npz exists; pass force=True \(CLI: "
                       r"--force\) to replace it"):
        write_demo_files(data, tmp_path / "out")
    assert files.test.read_bytes() == before
    write_demo_files(data, tmp_path / "out", force=True)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["test.npz", "val.npz"]


def _printed(output: str) -> dict[str, float]:
    values = {}
    for line in output.splitlines():
        match = re.fullmatch(r"  (\S.*?)\s+(-?\d+\.\d{6})", line)
        if match:
            values[match.group(1)] = float(match.group(2))
    return values


def test_cli_writes_the_files_and_prints_evaluate_numbers(tmp_path, data):
    out = tmp_path / "demo"
    cpu = time.process_time()
    result = CliRunner().invoke(main, ["demo", "--out", str(out), "--seed", "0"])
    cpu = time.process_time() - cpu
    assert result.exit_code == 0, result.output
    assert cpu < 60.0  # "under a minute": CPU seconds of the whole demo, all threads
    assert "training a network" in result.stderr
    assert f"wrote {out / 'val.npz'} (629 rows) and {out / 'test.npz'} (629 rows)" \
        in result.stdout
    with np.load(out / "test.npz") as saved:
        z, y = saved["logits"], saved["labels"]
    np.testing.assert_array_equal(z, data.test_logits)
    # the demo's bins are equal-mass: its confidences crowd above 0.99
    report = trueprob.evaluate(y, logits=z, unit="bits", binning="mass")
    width = trueprob.evaluate(y, logits=z, unit="bits")
    assert width.bins[-1].count > 0.9 * width.n  # what equal-width bins would show
    # equal-mass bins never split ties: the rows whose confidence rounds to exactly 1.0 share
    # one bin, and every other bin holds a few percent of the rows
    counts = sorted(b.count for b in report.bins)
    top = [b for b in report.bins if b.count > 0][-1]
    assert top.count == counts[-1] and top.lower > 0.999  # the tie at (almost) 1.0
    assert counts[-2] < 0.1 * report.n
    printed = _printed(result.stdout)
    expected = {"accuracy": report.accuracy, "nll (bits)": report.nll, "brier": report.brier,
                "ece": report.ece, "mce": report.mce, "rmsce": report.rmsce,
                "classwise_ece": report.classwise_ece, "ks": report.ks,
                "mean confidence": float(np.mean(softmax(z, axis=1).max(axis=1)))}
    assert set(printed) == set(expected)
    for name, value in expected.items():
        assert printed[name] == pytest.approx(value, abs=5.1e-7), name
    assert "over-confident: the mean confidence is" in result.stdout
    assert f"trueprob evaluate {out / 'test.npz'} --calibrator {out / 'cal.json'}" \
        in result.stdout


def _fit_temperature(z: np.ndarray, y: np.ndarray) -> float:
    """The NLL-minimising temperature by a bounded scalar search (independent of trueprob)."""
    from scipy.optimize import minimize_scalar
    from scipy.special import log_softmax

    res = minimize_scalar(
        lambda t: -np.mean(log_softmax(z / t, axis=1)[np.arange(len(y)), y]),
        bounds=(0.5, 50.0), method="bounded", options={"xatol": 1e-10})
    return float(res.x)


def test_cli_fits_temperature_on_val_and_writes_the_report(tmp_path, data):
    pytest.importorskip("matplotlib", reason="the HTML report needs matplotlib ([plot])")
    out = tmp_path / "demo"
    result = CliRunner().invoke(main, ["demo", "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    expected_t = _fit_temperature(data.val_logits, data.val_labels)
    saved = json.loads((out / "cal.json").read_text())
    from trueprob.calibrators import load

    cal = load(out / "cal.json")
    assert cal.temperature_ == pytest.approx(expected_t, rel=1e-6)
    assert saved["class"] == "TemperatureScaling"
    assert f"temperature scaling fitted on {out / 'val.npz'}: T = {expected_t:.4f}" \
        in result.stdout
    lines = result.stdout.splitlines()
    verdict = [line for line in lines if line.startswith("  - ")]
    assert verdict[2].startswith("  - Q3, top label: the top label is over-confident by")
    assert f"After Temperature {expected_t:.2f} (fitted on val.npz) the log loss goes" \
        in verdict[2]
    assert f"report: {out / 'report.html'}" in lines
    assert f"calibrator: {out / 'cal.json'}" in lines
    assert f"predictions: {out / 'val.npz'}, {out / 'test.npz'}" in lines
    page = (out / "report.html").read_text()
    for section in ("verdict", "summary", "reliability", "bits", "classwise",
                    "recalibration", "bins", "classes", "settings"):
        assert f'<section id="{section}">' in page
    for sentence in verdict:  # "  - Q3, top label: text": the HTML shows the lead in <strong>
        lead, text = sentence[4:].split(": ", 1)
        assert f"<strong>{lead}:</strong> {html.escape(text)}" in page
    assert sorted(p.name for p in out.iterdir()) == [".trueprob-demo.json", "cal.json",
                                                      "report.html", "test.npz", "val.npz"]


def test_report_is_markdown_without_matplotlib(tmp_path, data, monkeypatch):
    from trueprob.demo import write_demo_report

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    made = write_demo_report(data, tmp_path, n_replicates=20)
    assert not made.html and made.path == tmp_path / "report.md"
    text = made.path.read_text()
    assert text.startswith(f"## trueprob report: {tmp_path / 'test.npz'}")
    assert verdict(made.analysis)[0] in text
    with pytest.raises(FileExistsError, match=r"cal\.json exists; pass force=True \(CLI: "
                       r"--force\) to replace it"):
        write_demo_report(data, tmp_path, n_replicates=20)


def test_cli_refuses_to_overwrite_without_force(tmp_path):
    out = tmp_path / "demo"
    out.mkdir()
    (out / "test.npz").write_bytes(b"keep me")
    result = CliRunner().invoke(main, ["demo", "--out", str(out)])
    assert result.exit_code == 2
    assert "test.npz exists; pass --force to replace it" in result.stderr
    assert (out / "test.npz").read_bytes() == b"keep me"
    assert not (out / "val.npz").exists()
    (out / "test.npz").unlink()
    (out / "report.html").write_text("keep me too")
    refused = CliRunner().invoke(main, ["demo", "--out", str(out)])
    assert refused.exit_code == 2
    assert "report.html exists; pass --force to replace it" in refused.stderr
    (out / "test.npz").write_bytes(b"keep me")
    forced = CliRunner().invoke(main, ["demo", "--out", str(out), "--force", "--seed", "3"])
    assert forced.exit_code == 0, forced.output
    with np.load(out / "test.npz") as saved:
        assert saved["logits"].shape == (629, 10)
    # the README's first command runs `trueprob demo` again: it replaces its own outputs ...
    again = CliRunner().invoke(main, ["demo", "--out", str(out), "--seed", "3", "-q"])
    assert again.exit_code == 0, again.output
    # ... but not a file that was changed since (it is the user's now)
    (out / "cal.json").write_text("{}")
    tampered = CliRunner().invoke(main, ["demo", "--out", str(out), "-q"])
    assert tampered.exit_code == 2
    assert "cal.json exists; pass --force to replace it" in tampered.stderr
    assert (out / "cal.json").read_text() == "{}"


def test_missing_scikit_learn_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    with pytest.raises(ImportError, match=r"pip install 'trueprob\[demo\]'"):
        train_demo_model(seed=0)
    result = CliRunner().invoke(main, ["demo", "--out", str(tmp_path / "d")])
    assert result.exit_code == 1
    assert re.search(r"trueprob: error: the demo trains a scikit-learn network, and "
                     r"scikit-learn is not installed; install it with: pip install "
                     r"'trueprob\[demo\]'", result.stderr)
