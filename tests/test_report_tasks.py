"""`trueprob report --task multilabel|regression`: on data with a known miscalibration the
verdict names it, the numbers of the HTML and Markdown are the report objects' numbers and
match independent numpy computations, the HTML is self-contained, and the CLI writes
atomically and refuses options that do not apply to the task."""

from __future__ import annotations

import math
import re
from statistics import NormalDist

import numpy as np
import pytest
from click.testing import CliRunner

from trueprob.cli import main
from trueprob.regression import Gaussian, QuantileSet
from trueprob.report.plots.tasks import binomial_band
from trueprob.report.tasks import (
    analyze_multilabel,
    analyze_regression,
    multilabel_verdict,
    regression_verdict,
    render_multilabel_html,
    render_multilabel_markdown,
    render_regression_html,
    render_regression_markdown,
)

pytest.importorskip("matplotlib", reason="the HTML report needs matplotlib (the [plot] extra)")

N = 4000
Z90 = NormalDist().inv_cdf(0.95)  # the 90% central interval is mu +- z_0.95 sigma


# --------------------------------------------------------------------------- data
@pytest.fixture(scope="module")
def narrow():
    """Gaussian predictions whose std (0.5) is half the true std (1)."""
    rng = np.random.default_rng(7)
    mu = rng.normal(size=N) * 2
    y = mu + rng.normal(size=N)
    sd = np.full(N, 0.5)
    analysis = analyze_regression(y, Gaussian(mu, sd), source="narrow.npz")
    return {"mu": mu, "y": y, "sd": sd, "analysis": analysis}


@pytest.fixture(scope="module")
def tagged():
    """Six labels drawn from sigmoid(z); the model reports 3 z for label 2 (over-confident)
    and z / 3 for label 4 (under-confident), the others as drawn."""
    rng = np.random.default_rng(3)
    z = rng.normal(size=(N, 6)) * 1.5
    y = (rng.random((N, 6)) < 1 / (1 + np.exp(-z))).astype(np.int64)
    model = z.copy()
    model[:, 2] *= 3
    model[:, 4] /= 3
    names = ["cat", "dog", "car", "sky", "sea", "sun"]
    analysis = analyze_multilabel(y, logits=model, label_names=names, n_worst=3,
                                  source="tags.npz")
    return {"z": model, "y": y, "names": names, "analysis": analysis}


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def _binned(q: np.ndarray, y: np.ndarray, n_bins: int = 15) -> tuple[np.ndarray, ...]:
    """SPEC.md's right-closed equal-width bins, computed here with numpy: per bin the share
    of rows, the mean probability and the mean outcome (NaN when empty)."""
    idx = np.clip(np.ceil(n_bins * q).astype(int) - 1, 0, n_bins - 1)
    count = np.bincount(idx, minlength=n_bins).astype(float)
    with np.errstate(invalid="ignore"):
        conf = np.bincount(idx, q, minlength=n_bins) / count
        acc = np.bincount(idx, y.astype(float), minlength=n_bins) / count
    return count / q.size, conf, acc


def _table(text: str, heading: str) -> list[list[str]]:
    """The rows (cells) of the first Markdown table after ``heading``."""
    block = text.split(heading, 1)[1]
    lines: list[str] = []
    for line in block.splitlines()[1:]:
        if line.startswith("|"):
            lines.append(line)
        elif lines:
            break
    return [[c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]] for line in lines[2:]]


def _self_contained(page: str) -> None:
    assert page.startswith("<!doctype html>")
    assert ('<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
            "img-src data:; style-src 'unsafe-inline'\">") in page
    # SVG carries its XML namespace URIs (identifiers, never fetched); nothing else may
    assert not re.search(r"https?://", re.sub(r"http://www\.w3\.org/[\w/.#-]*", "", page))
    sources = re.findall(r"<img[^>]*\ssrc=\"([^\"]*)\"", page)
    assert sources and all(s.startswith("data:image/") for s in sources)
    assert page.count("<img") == len(sources)
    assert "<script" not in page.lower() and "<link" not in page.lower()


# --------------------------------------------------------------------------- regression
def test_narrow_gaussian_verdict_and_coverage_match_numpy(narrow):
    a, mu, y, sd = narrow["analysis"], narrow["mu"], narrow["y"], narrow["sd"]
    z = (y - mu) / sd
    cover90 = float(np.mean(np.abs(y - mu) <= Z90 * sd))
    assert 0.55 < cover90 < 0.62  # P(|N(0, 1)| <= 0.82) = 0.59: far from 0.90
    row = next(c for c in a.report.coverage if c.level == 0.9)
    assert row.observed == pytest.approx(cover90, abs=1e-12)
    sentences = regression_verdict(a)
    assert sentences[0].startswith(
        f"The predictive intervals are too narrow: the nominal 90% interval covers "
        f"{cover90:.1%} of the observations")
    assert "U-shaped" in sentences[1] and "under-dispersed" in sentences[1]
    assert f"is {np.mean(z ** 2):.3f}" in sentences[1]  # the dispersion, mean z^2
    assert all(c.status == "too narrow" for c in a.checks)
    page = render_regression_html(a)
    _self_contained(page)
    for section in ("verdict", "summary", "pit", "coverage", "settings"):
        assert f'<section id="{section}">' in page
    assert f"covers {cover90:.1%} of the observations" in page
    assert f"<td>0.9</td><td class='num'>{cover90:.4f}</td>" in page
    assert page.count('<img src="data:image/svg+xml;base64,') == 2
    text = render_regression_markdown(a)
    cov = {r[0]: r for r in _table(text, "### Coverage of central intervals")}
    assert cov["0.9"][1] == f"{cover90:.4f}" and cov["0.9"][4] == "too narrow"
    assert cov["0.5"][1] == f"{np.mean(np.abs(z) <= NormalDist().inv_cdf(0.75)):.4f}"


def test_regression_tables_hold_the_report_numbers_and_numpy_pit(narrow):
    a, mu, y, sd = narrow["analysis"], narrow["mu"], narrow["y"], narrow["sd"]
    r = a.report
    text = render_regression_markdown(a)
    summary = {row[0]: row[2] for row in _table(text, "### Summary")}
    assert summary["rows n"] == str(N)
    assert summary["log loss (NLL) (bits)"] == f"{r.nll:.4f}"
    assert summary["CRPS"] == f"{r.crps:.4f}"
    assert summary["PIT ECE"] == f"{r.pit_ece:.4f}"
    assert summary["quantile calibration error"] == f"{r.quantile_calibration_error:.4f}"
    assert summary["dispersion"] == f"{r.dispersion:.4f}"
    # independent: Gaussian NLL in bits and the PIT histogram from Phi(z) with numpy
    z = (y - mu) / sd
    nll_bits = np.mean(0.5 * z ** 2 + np.log(sd) + 0.5 * math.log(2 * math.pi)) / math.log(2)
    assert r.nll == pytest.approx(nll_bits, rel=1e-12)
    u = np.array([NormalDist().cdf(v) for v in z])
    counts = np.bincount(np.clip(np.ceil(20 * u).astype(int) - 1, 0, 19), minlength=20)
    pit = _table(text, "### PIT histogram")
    assert [int(row[1]) for row in pit] == counts.tolist()
    assert [row[2] for row in pit] == [f"{c / N:.4f}" for c in counts]
    calib = {row[0]: row[1] for row in _table(text, "### Quantile calibration")}
    assert calib["0.3"] == f"{np.mean(u <= 0.3):.4f}"


def test_binomial_band_is_the_central_binomial_interval():
    """Against the binomial CDF summed here from its pmf (log-gamma, no scipy.stats)."""
    from math import lgamma, log

    n, p = 4000, 0.05
    pmf = np.exp([lgamma(n + 1) - lgamma(k + 1) - lgamma(n - k + 1) + k * log(p)
                  + (n - k) * log(1 - p) for k in range(n + 1)])
    cdf = np.cumsum(pmf)
    low = int(np.argmax(cdf >= 0.025))
    high = int(np.argmax(cdf >= 0.975))
    band = binomial_band([p], n)
    assert (band[0][0], band[1][0]) == (low / n, high / n)
    with pytest.raises(ValueError, match=r"level must be in \(0, 1\), e.g. 0.95; got 1.5"):
        binomial_band([p], n, level=1.5)
    with pytest.raises(ValueError, match="n must be a positive number of rows; got 0"):
        binomial_band([p], 0)


def test_wide_and_biased_gaussian_and_calibrated_one():
    rng = np.random.default_rng(5)
    mu = rng.normal(size=N)
    y = mu + rng.normal(size=N)
    wide = regression_verdict(analyze_regression(y, Gaussian(mu + 0.4, 2.0)))
    assert wide[0].startswith("The predictive intervals are too wide: the nominal 90% "
                              f"interval covers {np.mean(np.abs(y - mu - 0.4) <= Z90 * 2):.1%}")
    assert "hump-shaped" in wide[1] and "over-dispersed" in wide[1]
    below = np.mean(y <= mu + 0.4)
    assert wide[2].startswith(f"The predictions are biased: {below:.1%} of the observations "
                              "are at or below the predicted median")
    ok = regression_verdict(analyze_regression(y, Gaussian(mu, 1.0)))
    assert ok[0].startswith("The coverage of the central intervals is consistent")
    assert not any("biased" in s for s in ok)


def test_quantile_set_and_weights():
    rng = np.random.default_rng(2)
    mu = rng.normal(size=600)
    y = mu + rng.normal(size=600)
    levels = [0.05, 0.25, 0.5, 0.75, 0.95]
    q = mu[:, None] + np.array([NormalDist().inv_cdf(p) for p in levels]) * 0.5
    a = analyze_regression(y, QuantileSet(q, levels))
    assert [c.level for c in a.checks] == [0.5, 0.9]
    assert a.checks[1].observed == pytest.approx(np.mean((q[:, 0] <= y) & (y <= q[:, 4])))
    text = render_regression_markdown(a)
    assert "| log loss (NLL) (bits) | mean -log f(y) | n/a |" in text
    assert "- nll not computed: a quantile set has no density" in text
    _self_contained(render_regression_html(a, image_format="png"))
    # integer weights are repeated rows (the band uses Kish's effective rows)
    w = rng.integers(1, 4, size=600)
    weighted = analyze_regression(y, Gaussian(mu, 0.5), sample_weight=w)
    repeated = analyze_regression(np.repeat(y, w), Gaussian(np.repeat(mu, w), 0.5))
    assert [c.observed for c in weighted.checks] == pytest.approx(
        [c.observed for c in repeated.checks], abs=1e-12)
    assert weighted.n_effective == pytest.approx(w.sum() ** 2 / np.sum(w * w))


# --------------------------------------------------------------------------- multi-label
def test_over_confident_label_is_listed_first_and_named(tagged):
    a, z, y = tagged["analysis"], tagged["z"], tagged["y"]
    assert a.report.worst[0].name == "car"
    first = a.labels[0]
    assert (first.name, first.direction) == ("car", "over-confident")
    sea = next(c for c in a.labels if c.name == "sea")
    assert sea.direction == "under-confident"
    # independent: each label's ECE and extremity from numpy bins
    for c in a.labels:
        share, conf, acc = _binned(_sigmoid(z[:, c.label]), y[:, c.label])
        ok = share > 0
        gap = conf[ok] - acc[ok]
        assert c.ece == pytest.approx(np.sum(share[ok] * np.abs(gap)), abs=1e-12)
        assert c.extremity == pytest.approx(
            np.sum(share[ok] * np.sign(conf[ok] - 0.5) * gap), abs=1e-12)
        assert c.bias == pytest.approx(np.mean(_sigmoid(z[:, c.label]) - y[:, c.label]),
                                       abs=1e-12)
    assert [c.ece for c in a.labels] == sorted((c.ece for c in a.labels), reverse=True)
    sentences = multilabel_verdict(a)
    assert sentences[1].startswith(f"The worst-calibrated label is car (ECE {first.ece:.4f}), "
                                   f"over-confident: its probabilities are more extreme")
    assert "sea (ECE" in sentences[2] and "under-confident" in sentences[2]


def test_multilabel_tables_hold_the_report_numbers(tagged):
    a, z, y = tagged["analysis"], tagged["z"], tagged["y"]
    r = a.report
    text = render_multilabel_markdown(a)
    summary = {row[0]: row[2:] for row in _table(text, "### Summary")}
    assert summary["ECE"] == [f"{r.micro.ece:.4f}", f"{r.macro.ece:.4f}"]
    assert summary["Brier"] == [f"{r.micro.brier:.4f}", f"{r.macro.brier:.4f}"]
    # docs/beyond-one-hot.md: pooling can only cancel gaps (micro ECE <= macro ECE), and every
    # label has total weight W (micro and macro log loss and Brier coincide)
    assert r.micro.ece <= r.macro.ece
    assert r.micro.nll == pytest.approx(r.macro.nll, rel=1e-12)
    # micro log loss in bits: binary cross-entropy over all pairs, with numpy
    q = _sigmoid(z)
    bce = -np.mean(y * np.log(q) + (1 - y) * np.log1p(-q)) / math.log(2)
    assert summary["log loss (bits)"][0] == f"{bce:.4f}"
    labels = _table(text, "### Per-label table (largest ECE first)")
    assert [row[1] for row in labels] == [c.name for c in a.labels]
    assert len(labels) == 6  # every label, not only the worst
    for row in labels:
        m = next(m for m in r.per_label if m.name == row[1])
        assert row[2:8] == [f"{v:.4f}" for v in (m.prevalence, m.mean_prob, m.nll, m.brier,
                                                  m.ece, m.mce)]
    page = render_multilabel_html(a)
    _self_contained(page)
    for section in ("verdict", "summary", "worst", "labels", "settings"):
        assert f'<section id="{section}">' in page
    assert page.count('<img src="data:image/svg+xml;base64,') == 1
    assert "the 3 labels with the largest ECE of 6" in page


def test_multilabel_weights_and_bad_input():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(300, 3))
    y = (rng.random((300, 3)) < _sigmoid(z)).astype(int)
    w = rng.integers(1, 4, size=300)
    weighted = analyze_multilabel(y, probs=_sigmoid(z), sample_weight=w)
    repeated = analyze_multilabel(np.repeat(y, w, axis=0), probs=np.repeat(_sigmoid(z), w,
                                                                          axis=0))
    assert [c.ece for c in weighted.labels] == pytest.approx([c.ece for c in repeated.labels])
    assert [c.extremity for c in weighted.labels] == pytest.approx(
        [c.extremity for c in repeated.labels])
    with pytest.raises(ValueError, match=r"labels must be an \(N, L\) array of 0/1 outcomes, "
                                         r"one column per label; got shape \(300,\)"):
        analyze_multilabel(y[:, 0], logits=z[:, 0])
    with pytest.raises(ValueError, match=r"level must be in \(0, 1\), e.g. 0.95; got 2"):
        analyze_multilabel(y, logits=z, level=2)
    with pytest.raises(ValueError, match="image_format must be 'svg' or 'png'; got 'gif'"):
        render_multilabel_html(weighted, image_format="gif")


# --------------------------------------------------------------------------- CLI
@pytest.fixture
def files(tmp_path, narrow, tagged):
    np.savez(tmp_path / "reg.npz", mu=narrow["mu"], sd=narrow["sd"], y=narrow["y"])
    np.savez(tmp_path / "tags.npz", logits=tagged["z"], y=tagged["y"])
    return tmp_path


def _run(*args: str):
    return CliRunner().invoke(main, ["report", *args])


REG = ("--task", "regression", "--mean", "mu", "--std", "sd", "--labels", "y")


def test_cli_regression_html_and_markdown(files, narrow):
    out = files / "reg.html"
    result = _run(str(files / "reg.npz"), *REG, "-o", str(out), "--image-format", "png")
    assert result.exit_code == 0, result.output
    cover90 = float(np.mean(np.abs(narrow["y"] - narrow["mu"]) <= Z90 * narrow["sd"]))
    page = out.read_text()
    _self_contained(page)
    assert page.count('<img src="data:image/png;base64,') == 2
    assert f"<td>0.9</td><td class='num'>{cover90:.4f}</td>" in page
    assert result.stdout.startswith("- The predictive intervals are too narrow: the nominal "
                                    f"90% interval covers {cover90:.1%}")
    assert f"wrote {out} (html" in result.stderr
    md = _run(str(files / "reg.npz"), *REG, "--observed", "y", "--format", "markdown",
              "-o", "-", "--unit", "nats", "--coverage", "0.9", "--bins", "10")
    assert md.exit_code == 0, md.output
    expected = render_regression_markdown(analyze_regression(
        narrow["y"], Gaussian(narrow["mu"], narrow["sd"]), source=str(files / "reg.npz"),
        coverage_levels=[0.9], n_pit_bins=10, unit="nats"))

    def timeless(text: str) -> str:  # the seconds of analysis differ between two runs
        return re.sub(r"\| computed in \| [\d.]+ s \|", "| computed in |", text)

    assert timeless(md.stdout) == timeless(expected)
    assert "| nominal level |" in md.stdout and "| 0.9 | " in md.stdout
    assert len(_table(md.stdout, "### PIT histogram")) == 10


def test_cli_multilabel_parquet(tmp_path, tagged):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    z, y = tagged["z"], tagged["y"]
    columns = {f"logit_{j}": z[:, j] for j in range(6)} | {f"y_{j}": y[:, j] for j in range(6)}
    pq.write_table(pa.table(columns), tmp_path / "tags.parquet")
    out = tmp_path / "tags.md"
    result = _run(str(tmp_path / "tags.parquet"), "--task", "multilabel", "--logits",
                  "logit_*", "--labels", "y_*", "--worst", "2", "--format", "markdown",
                  "-o", str(out))
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert text.startswith(f"## trueprob multi-label report: {tmp_path / 'tags.parquet'}")
    rows = _table(text, "### Per-label table (largest ECE first)")
    assert rows[0][1] == "2" and rows[0][-1] == "over-confident"  # default names: columns
    assert result.stdout.splitlines()[1].startswith("- The worst-calibrated label is 2 (ECE ")


def test_cli_writes_atomically(files, monkeypatch):
    out = files / "report.html"
    out.write_text("earlier report")
    refused = _run(str(files / "reg.npz"), *REG, "-o", str(out))
    assert refused.exit_code == 2 and "report.html exists; pass --force" in refused.stderr
    assert out.read_text() == "earlier report"
    missing = _run(str(files / "reg.npz"), *REG[:-1], "nope", "-o", str(out), "--force")
    assert missing.exit_code == 1 and "nope" in missing.stderr
    assert out.read_text() == "earlier report"

    def boom(*args, **kwargs):
        raise ValueError("rendering failed")

    monkeypatch.setattr("trueprob.report.tasks.render_regression_html", boom)
    failed = _run(str(files / "reg.npz"), *REG, "-o", str(out), "--force")
    assert failed.exit_code == 1 and "rendering failed" in failed.stderr
    assert out.read_text() == "earlier report"
    assert [p.name for p in files.iterdir() if p.name.startswith(".report.html.")] == []
    monkeypatch.undo()
    forced = _run(str(files / "tags.npz"), "--task", "multilabel", "--logits", "logits",
                  "--labels", "y", "-o", str(out), "--force")
    assert forced.exit_code == 0, forced.output
    assert '<section id="worst">' in out.read_text()


@pytest.mark.parametrize(("args", "message"), [
    (("--multiclass", "top-label"), "--multiclass does not apply to --task regression"),
    (("--method", "temperature", "--fit", "{cal}"),
     "--method temperature does not apply to --task regression; choose from "
     "variance-scaling, isotonic-quantile"),
    (("--seed", "3", "--replicates", "50"),
     "--replicates, --seed do not apply to --task regression (they are for --task "
     "classification)"),
    (("--worst", "2"), "--worst does not apply to --task regression (they are for --task "
                       "multilabel)"),
    (("--logits", "mu"), "--logits does not apply to --task regression"),
    (("--bins", "15"), "the PIT histogram's bin count must divide the 1000 cells"),
    (("--quantiles", "mu"), "--quantiles needs --levels"),
    (("--distribution", "laplace"), "--distribution laplace needs --scale"),
    (("--coverage", "0.5,x"), "expected numbers separated by commas; got '0.5,x'"),
])
def test_cli_regression_usage_errors(files, args, message):
    (files / "cal.json").write_text("{}")
    filled = tuple(a.replace("{cal}", str(files / "cal.json")) for a in args)
    result = _run(str(files / "reg.npz"), *REG, *filled, "-o", str(files / "x.html"))
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert not (files / "x.html").exists()


@pytest.mark.parametrize(("args", "message"), [
    (("--task", "multilabel", "--labels", "y"),
     "--task multilabel needs exactly one of --logits or --probs"),
    (("--task", "multilabel", "--logits", "logits"), "--task multilabel needs --labels"),
    (("--task", "multilabel", "--logits", "logits", "--labels", "y", "--binning", "mass"),
     "--binning does not apply to --task multilabel"),
    (("--task", "multilabel", "--logits", "logits", "--labels", "y", "--mean", "mu"),
     "--mean does not apply to --task multilabel (they are for --task regression)"),
    (("--worst", "3",), "--worst does not apply to --task classification"),
    (("--task", "regression", "--labels", "y"), "--task regression needs --mean"),
])
def test_cli_multilabel_and_classification_usage_errors(files, args, message):
    result = _run(str(files / "tags.npz"), *args, "-o", str(files / "x.html"))
    assert result.exit_code == 2, result.output
    assert message in result.stderr


# --------------------------------------------------------------------------- browser
def _browser_harness():
    """The headless-Chromium harness of tests/test_report_browser.py (DevTools over a pipe,
    every requested URL recorded), loaded from its file; skipped without chromium."""
    import importlib.util
    import shutil
    from pathlib import Path

    if shutil.which("chromium") is None:
        pytest.skip("chromium is not on PATH (Debian: apt-get install chromium)")
    path = Path(__file__).with_name("test_report_browser.py")
    if not path.exists():
        pytest.skip("tests/test_report_browser.py (the Chromium harness) is not present")
    spec = importlib.util.spec_from_file_location("_trueprob_browser_harness", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_both_reports_load_in_chromium_without_network(tmp_path, narrow, tagged):
    harness = _browser_harness()
    pages = {"regression": (tmp_path / "reg.html", render_regression_html(narrow["analysis"]),
                            ["verdict", "summary", "pit", "coverage", "settings"], 2),
             "multilabel": (tmp_path / "tags.html", render_multilabel_html(tagged["analysis"]),
                            ["verdict", "summary", "worst", "labels", "settings"], 1)}
    browser = harness.DevTools(tmp_path / "profile")
    urls: list[str] = []
    try:
        for path, page, sections, n_images in pages.values():
            path.write_text(page)
            state = browser.load(path.resolve().as_uri())
            # this page's requests; cleared so the next load waits for its own load event
            urls += browser.requested()
            browser.events.clear()
            assert state["sections"] == sections
            assert len(state["images"]) == n_images
            for image in state["images"]:
                assert image["scheme"] == "data" and image["complete"], image
                assert image["width"] > 100 and image["height"] > 100, image
                assert image["alt"]
    finally:
        browser.close()
    assert {u.split(":", 1)[0] for u in urls} <= {"file", "data"}, urls
    assert sum(u.startswith("data:image/svg+xml") for u in urls) == 3
