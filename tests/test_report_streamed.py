"""The report's analysis of a dataset read in batches (trueprob.report.streamed).

Each streamed number is checked against an independent in-memory computation: the in-memory
analysis (same Report fields, same bootstrap deal, same reliability data), a temperature fitted
in memory for the log-loss split, and the in-memory consistency test for the tests.
"""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest

import trueprob
from trueprob.calibrators import TemperatureScaling
from trueprob.inference import ConsistencyStats, consistency_test
from trueprob.report.html import render_html, render_markdown
from trueprob.report.streamed import analyze_path
from trueprob.report.verdict import analyze

FIELDS = ("accuracy", "nll", "brier", "ece", "mce", "rmsce", "ece_debiased", "classwise_ece",
          "class_conditional_ece", "ks", "smooth_ece", "entropy", "kl")


def _data(rng: np.random.Generator, n: int, k: int, scale: float = 2.5
          ) -> tuple[np.ndarray, np.ndarray]:
    """Logits scale * z whose labels are drawn from softmax(z): over-confident for scale > 1."""
    z = rng.normal(size=(n, k)) * 1.5
    q = np.exp(z - z.max(1, keepdims=True))
    q /= q.sum(1, keepdims=True)
    y = (q.cumsum(1) < rng.random((n, 1))).sum(1)
    return scale * z, np.minimum(y, k - 1)


def _write(folder, parts: int, **arrays: np.ndarray) -> None:
    n = len(next(iter(arrays.values())))
    for i, idx in enumerate(np.array_split(np.arange(n), parts)):
        np.savez(folder / f"part{i}.npz", **{k: v[idx] for k, v in arrays.items()})


def _same_report(a, b, rtol: float = 1e-11) -> None:
    assert (a.n, a.n_classes, a.inputs, a.targets) == (b.n, b.n_classes, b.inputs, b.targets)
    for name in FIELDS:
        x, y = getattr(a, name), getattr(b, name)
        if x is None or y is None:
            assert x is None and y is None, name
        else:
            assert x == pytest.approx(y, rel=rtol, abs=1e-13), name


@pytest.fixture
def dataset(tmp_path, rng):
    z, y = _data(rng, 3000, 5)
    _write(tmp_path, 3, logits=z, labels=y)
    return tmp_path, z, y


def test_matches_in_memory_analysis(dataset):
    folder, z, y = dataset
    streamed = analyze_path(folder, batch_rows=700, n_replicates=60, n_resamples=120,
                            quiet=True)
    memory = analyze(y, logits=z, n_replicates=60, n_resamples=120, quiet=True)
    a, b = streamed.before, memory.before
    _same_report(a.report, b.report)
    # N = 3000 > G = 256 blocks: the same seeded deal, drawn in the same order -> same intervals
    assert a.bootstrap_blocks == b.bootstrap_blocks == 256
    assert a.intervals.keys() == b.intervals.keys()
    for name, iv in a.intervals.items():
        assert (iv.low, iv.high) == pytest.approx((b.intervals[name].low,
                                                    b.intervals[name].high), rel=1e-9), name
    np.testing.assert_allclose(a.reliability.accuracy, b.reliability.accuracy, rtol=1e-12)
    np.testing.assert_allclose(a.reliability.weight, b.reliability.weight, rtol=1e-12)
    np.testing.assert_allclose(a.classes.frequency, b.classes.frequency, rtol=1e-12)
    np.testing.assert_allclose(a.classes.ece, b.classes.ece, rtol=1e-10)
    assert a.smooth.ece == pytest.approx(b.smooth.ece, rel=1e-9)
    # the tests' observed statistics do not depend on the draws
    for name in ("ece", "classwise_ece"):
        assert a.tests[name].value == pytest.approx(b.tests[name].value, rel=1e-12)
        assert a.tests[name].p_value == b.tests[name].p_value == 1 / 121  # over-confident
    assert a.skce is None and b.skce is not None
    assert any("SKCE" in n for n in a.notes)


def test_decomposition_against_a_temperature_fitted_in_memory(dataset):
    folder, z, y = dataset
    d = analyze_path(folder, batch_rows=1000, n_replicates=10, n_resamples=10,
                     quiet=True).before.decomposition
    ts = TemperatureScaling().fit(y, logits=z)
    recalibrated = trueprob.evaluate(y, logits=ts.predict_logproba(logits=z), unit="bits")
    prior = np.bincount(y, minlength=5) / y.size
    unc = -np.sum(prior * np.log2(prior))
    nll = trueprob.evaluate(y, logits=z, unit="bits").nll
    assert d.score == pytest.approx(nll, rel=1e-12)
    assert d.recalibrated == pytest.approx(recalibrated.nll, rel=1e-7)
    assert d.unc == pytest.approx(unc, rel=1e-12)
    assert d.mcb == pytest.approx(nll - recalibrated.nll, rel=1e-5)
    assert d.score == pytest.approx(d.mcb - d.dsc + d.unc, rel=1e-12)
    assert d.mcb > 0.05 and d.n_folds is None  # logits 2.5x too large: clearly miscalibrated


def test_single_batch_test_equals_in_memory_test(tmp_path, rng):
    z, y = _data(rng, 800, 4, scale=1.0)  # calibrated
    np.savez(tmp_path / "one.npz", logits=z, labels=y)
    a = analyze_path(tmp_path / "one.npz", batch_rows=10_000, n_replicates=10,
                     n_resamples=200, quiet=True).before.tests
    for name in ("ece", "classwise_ece"):
        b = consistency_test(y, logits=z, statistic=name, n_resamples=200, random_state=0)
        assert (a[name].value, a[name].p_value, a[name].null_mean) == \
            pytest.approx((b.value, b.p_value, b.null_mean), rel=1e-12)
        assert a[name].p_value > 0.01


def test_consistency_state_batches_and_calibrated_null(rng):
    """In batches the null has the distribution of the one-shot null: under H0 the p-values of
    many independent data sets are spread over (0, 1] (not piled at 0 or 1)."""
    pvals = []
    for seed in range(30):
        z, y = _data(np.random.default_rng(seed), 600, 3, scale=1.0)
        state = ConsistencyStats("ece", 3, n_resamples=99, random_state=seed)
        for i in range(0, 600, 150):
            state.update(y[i:i + 150], logits=z[i:i + 150])
        pvals.append(state.finalize().p_value)
    pvals = np.array(pvals)
    assert 0.25 < np.mean(pvals) < 0.75
    assert np.mean(pvals <= 0.05) < 0.2


def test_mass_binning_weights_and_calibrator(tmp_path, rng):
    z, y = _data(rng, 2000, 4)
    w = rng.uniform(0.2, 2.0, size=2000)
    _write(tmp_path, 2, logits=z, labels=y, sample_weight=w)
    cal = TemperatureScaling().fit(y, logits=z)
    streamed = analyze_path(tmp_path, batch_rows=600, binning="mass", calibrator=cal,
                            n_replicates=20, n_resamples=50, quiet=True)
    memory = analyze(y, logits=z, sample_weight=w, binning="mass", calibrator=cal,
                     n_replicates=20, n_resamples=50, quiet=True)
    for a, b in ((streamed.before, memory.before), (streamed.after, memory.after)):
        _same_report(a.report, b.report, rtol=1e-10)
        assert a.report.settings.edges == pytest.approx(b.report.settings.edges, abs=0)
        # bands use the weight squares: the effective number of rows per bin
        np.testing.assert_allclose(a.reliability.low, b.reliability.low, rtol=1e-10)
        np.testing.assert_allclose(a.reliability.high, b.reliability.high, rtol=1e-10)
    assert streamed.after.report.nll < streamed.before.report.nll
    assert streamed.calibration.temperature == pytest.approx(cal.temperature_)


def test_soft_targets_and_top_label_inputs(tmp_path, rng):
    z, y = _data(rng, 900, 3)
    counts = rng.multinomial(5, np.full(3, 1 / 3), size=900) + np.eye(3, dtype=int)[y] * 3
    _write(tmp_path, 2, logits=z, counts=counts)
    a = analyze_path(tmp_path, batch_rows=400, n_replicates=10, n_resamples=10,
                     quiet=True).before
    b = trueprob.evaluate(counts=counts, logits=z, unit="bits")
    _same_report(a.report, b)
    assert a.tests == {} and any("compare them with hard labels (got counts)" in n
                                 for n in a.notes)
    d = a.decomposition
    assert d.entropy + d.kl == pytest.approx(d.score, rel=1e-10)

    top = tmp_path / "top"
    top.mkdir()
    q = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    np.savez(top / "t.npz", confidences=q.max(1), predictions=q.argmax(1), labels=y)
    t = analyze_path(top, n_classes=3, n_replicates=10, n_resamples=10, quiet=True).before
    # top-label outputs get the top-label consistency test (it needs only c_i and the
    # prediction), not the classwise one
    assert t.decomposition is None and t.classes is None and set(t.tests) == {"ece"}
    assert 0 < t.tests["ece"].p_value <= 1
    _same_report(t.report, trueprob.evaluate(y, confidences=q.max(1),
                                             predictions=q.argmax(1), n_classes=3,
                                             unit="bits"))
    with pytest.raises(ValueError, match="calibrator needs logits= or probs="):
        analyze_path(top, n_classes=3, calibrator=TemperatureScaling().fit(y, logits=z),
                     n_replicates=10, n_resamples=10, quiet=True)


def test_renders_with_the_streamed_notes(dataset):
    folder, _, _ = dataset
    analysis = analyze_path(folder, batch_rows=1000, n_replicates=20, n_resamples=30,
                            quiet=True)
    html = render_html(analysis, image_format="svg")
    md = render_markdown(analysis)
    assert "fitted on all rows (in-sample)" in html
    assert "a temperature fitted on all these rows (in-sample) recovers it" in md
    assert "-fold" not in md
    assert "read in batches of at most 1000 rows" in md
    assert f"{analysis.before.report.ece:.4f}" in md


def test_bad_arguments(dataset, tmp_path):
    folder, _, _ = dataset
    with pytest.raises(ValueError, match="n_replicates"):
        analyze_path(folder, n_replicates=1)
    with pytest.raises(ValueError, match="binning must be 'width' or 'mass'; got 'quantile'"):
        analyze_path(folder, binning="quantile")
    with pytest.raises(ValueError, match="batch_rows must be a positive integer"):
        analyze_path(folder, batch_rows=0)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="the folder holds no readable files"):
        analyze_path(empty)
    np.savez(empty / "none.npz", logits=np.zeros((0, 3)), labels=np.zeros(0, dtype=int))
    with pytest.raises(ValueError, match="the dataset has no rows"):
        analyze_path(empty)
    bad = tmp_path / "bad"
    bad.mkdir()
    z = np.zeros((40, 3))
    z[33, 1] = np.nan
    np.savez(bad / "b.npz", logits=z, labels=np.zeros(40, dtype=int))
    with pytest.raises(ValueError, match=r"b\.npz: .*logits.*row 33"):
        analyze_path(bad, batch_rows=16)


def test_memory_does_not_grow_with_rows(tmp_path, rng):
    """Peak traced allocations of a 10x larger dataset stay within 1.5x (batch-bounded)."""
    peaks = []
    for n, name in ((20_000, "small"), (200_000, "large")):
        folder = tmp_path / name
        folder.mkdir()
        z, y = _data(rng, n, 6)
        _write(folder, 4, logits=z.astype(np.float32), labels=y)
        del z, y
        tracemalloc.start()
        a = analyze_path(folder, batch_rows=5_000, n_replicates=20, n_resamples=20,
                         quiet=True)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert a.before.report.n == n and math.isfinite(a.before.report.nll)
    assert peaks[1] < 1.5 * peaks[0], peaks
