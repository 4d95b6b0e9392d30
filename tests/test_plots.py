"""Plots: the data of each diagram (values, checked against independent numpy computations and
scipy's Wilson interval) and the artists each drawing returns; every plot type renders for
binary, 10-class and 100-class inputs without a warning; no global matplotlib setting changes."""

from __future__ import annotations

import io
import math
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
from scipy.special import softmax
from scipy.stats import binomtest

import trueprob
from trueprob.report import plots as P
from trueprob.report.plots import style as S
from trueprob.report.plots.draw import compact_count
from trueprob.stats import EvaluationStats

mpl = pytest.importorskip("matplotlib", reason="the plots need matplotlib (the [plot] extra)")
mpl.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.colors import to_rgb  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _data(rng: np.random.Generator, n: int, k: int, scale: float = 2.0):
    """Logits and labels drawn from softmax(z) (so softmax(scale * z) is over-confident)."""
    z = rng.normal(size=(n, k))
    q = softmax(z, axis=1)
    y = np.minimum((q.cumsum(1) < rng.random((n, 1))).sum(1), k - 1)
    return scale * z, y


def _bins_by_hand(c: np.ndarray, a: np.ndarray, w: np.ndarray, b: int = 15):
    """Right-closed equal-width bins (SPEC.md): index clip(ceil(B c) - 1, 0, B - 1)."""
    idx = np.clip(np.ceil(b * c) - 1, 0, b - 1).astype(int)
    weight = np.bincount(idx, w, b)
    with np.errstate(invalid="ignore", divide="ignore"):
        conf = np.bincount(idx, w * c, b) / weight
        acc = np.bincount(idx, w * a, b) / weight
    return idx, weight, conf, acc


# --------------------------------------------------------------------------- data
@pytest.mark.parametrize(("k", "n"), [(0, 10), (3, 10), (10, 10), (1, 1), (0, 1), (17, 40)])
def test_wilson_interval_matches_scipy(k, n):
    low, high = P.wilson_interval(np.array([k / n]), np.array([n]))
    ref = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert low[0] == pytest.approx(ref.low, abs=1e-12)
    assert high[0] == pytest.approx(ref.high, abs=1e-12)
    low90, high90 = P.wilson_interval(np.array([k / n]), np.array([n]), level=0.9)
    ref90 = binomtest(k, n).proportion_ci(confidence_level=0.9, method="wilson")
    assert (low90[0], high90[0]) == pytest.approx((ref90.low, ref90.high), abs=1e-12)


def test_wilson_interval_by_hand_and_edge_cases():
    # n = 1, p = 1 at 95%: center = (1 + z^2/2) / (1 + z^2), half = z sqrt(z^2/4) / (1 + z^2)
    z = 1.959963984540054
    center, half = (1 + z * z / 2) / (1 + z * z), (z * z / 2) / (1 + z * z)
    low, high = P.wilson_interval(np.array([1.0, 0.5]), np.array([1.0, 0.0]))
    assert low[0] == pytest.approx(center - half, abs=1e-15)
    assert high[0] == pytest.approx(1.0, abs=1e-15)
    assert math.isnan(low[1]) and math.isnan(high[1])  # no rows: no interval
    with pytest.raises(ValueError, match=r"level must be in \(0, 1\), e\.g\. 0\.95; got 1\.5"):
        P.wilson_interval(np.array([0.5]), np.array([3]), level=1.5)


def test_effective_count_is_kish():
    w = np.array([1.0, 1.0, 4.0])
    expected = w.sum() ** 2 / np.sum(w**2)  # 36 / 18 = 2
    assert P.effective_count(np.array([w.sum()]), np.array([np.sum(w**2)]),
                             np.array([3]))[0] == pytest.approx(expected) == 2.0
    assert P.effective_count(np.array([5.0]), None, np.array([5])).tolist() == [5.0]


def test_reliability_data_equals_numpy_bins(rng):
    z, y = _data(rng, 3000, 5)
    q = softmax(z, axis=1)
    c, a = q.max(1), (q.argmax(1) == y).astype(float)
    _, weight, conf, acc = _bins_by_hand(c, a, np.ones_like(c))
    data = P.reliability_data(trueprob.evaluate(y, logits=z), label="m")
    np.testing.assert_allclose(data.weight, weight)
    np.testing.assert_array_equal(data.count, weight.astype(int))
    np.testing.assert_allclose(data.confidence, conf, rtol=1e-12)
    np.testing.assert_allclose(data.accuracy, acc, rtol=1e-12)
    np.testing.assert_array_equal(data.effective_count, weight)
    np.testing.assert_allclose(data.edges, np.arange(16) / 15)
    ok = weight > 0
    for j in np.flatnonzero(ok):
        hits = round(float(acc[j] * weight[j]))
        ref = binomtest(hits, int(weight[j])).proportion_ci(method="wilson")
        assert (data.low[j], data.high[j]) == pytest.approx((ref.low, ref.high), abs=1e-12)
    assert np.isnan(data.low[~ok]).all()
    assert data.mean_confidence == pytest.approx(c.mean(), rel=1e-12)
    assert data.accuracy_overall == pytest.approx(a.mean(), rel=1e-12)
    np.testing.assert_allclose(data.gap[ok], (conf - acc)[ok])
    assert data.share.sum() == pytest.approx(1.0)


def test_reliability_data_weighted_uses_effective_counts(rng):
    z, y = _data(rng, 2000, 4)
    w = rng.uniform(0.1, 3.0, size=2000)
    q = softmax(z, axis=1)
    idx, weight, _, acc = _bins_by_hand(q.max(1), (q.argmax(1) == y).astype(float), w)
    w2 = np.bincount(idx, w * w, 15)
    report = trueprob.evaluate(y, logits=z, sample_weight=w)
    squares = trueprob.evaluate(y, logits=z, sample_weight=w**2)  # bin weights = sum w^2
    data = P.reliability_data(report, weight_squares=[b.weight for b in squares.bins])
    ok = weight > 0
    n_eff = weight[ok] ** 2 / w2[ok]
    np.testing.assert_allclose(data.effective_count[ok], n_eff, rtol=1e-12)
    low, high = P.wilson_interval(acc[ok], n_eff)
    np.testing.assert_allclose(data.low[ok], low, rtol=1e-10)
    np.testing.assert_allclose(data.high[ok], high, rtol=1e-10)
    with pytest.raises(ValueError, match=r"weight_squares must have one value per bin \(15\); "
                                         r"got shape \(3,\)"):
        P.reliability_data(report, weight_squares=np.ones(3))


def test_sparse_bins_get_wider_intervals():
    # 1 row at confidence .55 (correct), 400 rows at .95 (95% correct): the lone bin's
    # interval must be far wider than the full bin's
    c = np.r_[0.55, np.full(400, 0.95)]
    labels = np.r_[1, np.ones(380), np.zeros(20)].astype(int)  # predictions are all 1
    data = P.reliability_data(trueprob.evaluate(labels, confidences=c,
                                                predictions=np.ones(401, int), n_classes=2))
    ok = np.flatnonzero(data.nonempty)
    widths = (data.high - data.low)[ok]
    assert data.count[ok].tolist() == [1, 400]
    assert widths[0] > 0.7 and widths[1] < 0.05


def test_classwise_data_equals_numpy_and_picks_the_worst(rng):
    z, y = _data(rng, 4000, 30)
    q = softmax(z, axis=1)
    stats = EvaluationStats(30).update(y, logits=z)
    report = stats.finalize()
    # per-class bins and ECE by hand
    onehot = np.eye(30)[y]
    eces = []
    for k in range(30):
        _, weight, conf, freq = _bins_by_hand(q[:, k], onehot[:, k], np.ones(4000))
        ok = weight > 0
        eces.append(np.sum(weight[ok] / 4000 * np.abs(conf - freq)[ok]))
    eces = np.array(eces)
    np.testing.assert_allclose(report.classwise_ece_per_class, eces, rtol=1e-10)
    data = P.classwise_data(stats, report, max_panels=6)
    worst = np.argsort(-eces, kind="stable")[:6]
    assert data.classes.tolist() == worst.tolist()
    assert data.selection == "the 6 classes with the largest classwise ECE of 30"
    assert data.names == tuple(f"class {i}" for i in worst)
    np.testing.assert_allclose(data.ece, eces[worst], rtol=1e-10)
    k0 = int(worst[0])
    _, weight, conf, freq = _bins_by_hand(q[:, k0], onehot[:, k0], np.ones(4000))
    np.testing.assert_allclose(data.weight[0], weight)
    np.testing.assert_allclose(data.confidence[0], conf, rtol=1e-10)
    np.testing.assert_allclose(data.frequency[0], freq, rtol=1e-10)
    every = P.classwise_data(stats, report, max_panels=30, class_names=[f"c{i}" for i in
                                                                        range(30)])
    assert every.classes.tolist() == list(range(30)) and every.selection == "all 30 classes"
    assert every.names[3] == "c3"


def test_classwise_data_errors(rng):
    z, y = _data(rng, 100, 3)
    stats = EvaluationStats(3).update(y, logits=z)
    report = stats.finalize()
    with pytest.raises(ValueError, match=r"max_panels must be a positive integer; got 0"):
        P.classwise_data(stats, report, max_panels=0)
    with pytest.raises(ValueError, match=r"class_names must have one name per class \(3\); "
                                         r"got 2"):
        P.classwise_data(stats, report, class_names=["a", "b"])
    top = EvaluationStats(3).update(y, confidences=softmax(z, 1).max(1),
                                    predictions=z.argmax(1))
    with pytest.raises(ValueError, match=r"classwise reliability needs the full probability "
                                         r"vector"):
        P.classwise_data(top, top.finalize())


def test_smooth_band_effective_count_matches_the_kernel_sums(rng):
    # For a Gaussian kernel of width s, (sum K)^2 / sum K^2 = 2 sqrt(pi) s W delta(t) away
    # from the ends: computed here directly from the kernel weights of every row.
    n, s = 20000, 0.05
    f = rng.beta(4, 2, size=n)
    t = np.array([0.4, 0.6, 0.75])
    kern = np.exp(-0.5 * ((t[:, None] - f[None, :]) / s) ** 2) / (s * math.sqrt(2 * math.pi))
    direct = kern.sum(1) ** 2 / (kern**2).sum(1)
    density = kern.sum(1) / n
    fake = SimpleNamespace(t=t, confidence=t, accuracy=np.full(3, 0.7), density=density,
                           ece=0.01, bandwidth=s, weight=float(n))
    data = P.smooth_curve_data(fake, label="m")
    np.testing.assert_allclose(data.effective_count, direct, rtol=0.03)
    low, high = P.wilson_interval(np.full(3, 0.7), data.effective_count)
    np.testing.assert_allclose(data.low, low)
    np.testing.assert_allclose(data.high, high)
    assert data.supported.all()


def test_smooth_curve_data_from_the_smooth_ece_module(rng):
    smooth = pytest.importorskip("trueprob.metrics.smooth",
                                 reason="trueprob.metrics.smooth is not available")
    z, y = _data(rng, 3000, 10, scale=3.0)
    result = smooth.smooth_reliability(y, logits=z, n_points=201)
    data = P.smooth_curve_data(result, label="m")
    assert data.ece == result.ece and data.bandwidth == result.bandwidth
    np.testing.assert_array_equal(data.accuracy, result.accuracy)
    ok = data.supported
    assert ok.any() and np.all(data.low[ok] <= data.accuracy[ok] + 1e-12)
    assert np.all(data.high[ok] >= data.accuracy[ok] - 1e-12)
    expected = 2 * math.sqrt(math.pi) * result.bandwidth * 3000 * result.density
    np.testing.assert_allclose(data.effective_count, expected)


def test_bits_data_keeps_the_identity_and_refuses_brier(rng):
    z, y = _data(rng, 1500, 4, scale=3.0)
    d = trueprob.decompose(y, logits=z, estimator="temperature")
    rows = P.bits_data([("model", d)]).rows
    assert rows[0].score == d.score and rows[0].mcb == d.mcb
    assert rows[0].score == pytest.approx(rows[0].unc - rows[0].dsc + rows[0].mcb, abs=1e-12)
    brier = trueprob.decompose(y, logits=z, score="brier")
    with pytest.raises(ValueError, match=r"the bits bar needs log-score decompositions "
                                         r"\(score='log'\); got \['brier'\]"):
        P.bits_data({"b": brier})
    with pytest.raises(ValueError, match="decompositions must hold at least one"):
        P.bits_data({})
    nats = trueprob.decompose(y, logits=z, unit="nats")
    with pytest.raises(ValueError, match=r"decompositions must share one unit; got "
                                         r"\['bits', 'nats'\]"):
        P.bits_data({"a": d, "b": nats})


def test_compare_data_reads_the_compare_command_json(tmp_path, rng):
    import json

    from click.testing import CliRunner

    from trueprob.cli import main

    z, y = _data(rng, 1200, 5, scale=3.0)
    np.savez(tmp_path / "val.npz", logits=z[:600], labels=y[:600])
    np.savez(tmp_path / "test.npz", logits=z[600:], labels=y[600:])
    out = CliRunner().invoke(main, ["compare", "--fit", str(tmp_path / "val.npz"), "--eval",
                                    str(tmp_path / "test.npz"), "--methods",
                                    "temperature,histogram", "--format", "json"])
    assert out.exit_code == 0, out.output
    result = json.loads(out.stdout)
    data = P.compare_data(result)
    assert data.methods == ("uncalibrated", "temperature", "histogram")
    assert data.headings == ("NLL (bits)", "Brier", "ECE", "classwise ECE", "accuracy")
    for i, row in enumerate(result["rows"]):
        for j, field in enumerate(data.metrics):
            assert data.values[i, j] == pytest.approx(row[field])
    with pytest.raises(ValueError, match=r"result must be trueprob compare's output, with a "
                                         r"non-empty 'rows' list; got rows=None"):
        P.compare_data({})
    with pytest.raises(ValueError, match=r"each row of result\['rows'\] must be a dict with "
                                         r"'method'"):
        P.compare_data({"rows": [{"nll": 1.0}]})


# --------------------------------------------------------------------------- artists
def test_reliability_artists_show_the_data(rng):
    z, y = _data(rng, 2000, 10, scale=3.0)
    data = P.reliability_data(trueprob.evaluate(y, logits=z), label="model")
    art = P.plot_reliability(data)
    ok = data.nonempty
    np.testing.assert_allclose(art.points.get_offsets(),
                               np.c_[data.confidence[ok], data.accuracy[ok]])
    areas = art.points.get_sizes()
    assert areas[np.argmax(data.share[ok])] == areas.max()  # the fullest bin is the largest
    boxes = art.band.patches
    assert len(boxes) == ok.sum()
    for box, lo, hi, e0 in zip(boxes, data.low[ok], data.high[ok], data.edges[:-1][ok],
                               strict=True):
        assert box.get_y() == pytest.approx(lo) and box.get_height() == pytest.approx(hi - lo)
        assert box.get_x() == pytest.approx(e0)
    for bar, acc, conf in zip(art.gaps.patches, data.accuracy[ok], data.confidence[ok],
                              strict=True):
        assert bar.get_y() == pytest.approx(acc)
        assert bar.get_y() + bar.get_height() == pytest.approx(conf)
        role = "over_confident" if conf >= acc else "under_confident"
        assert bar.get_hatch() == S.HATCHES[role]
        assert to_rgb(bar.get_edgecolor()) == pytest.approx(to_rgb(S.ROLES[role]))
    np.testing.assert_allclose([b.get_height() for b in art.hist.patches], data.share)
    assert [t.get_text() for t in art.count_labels] == [compact_count(n) for n in data.count[ok]]
    assert art.hist_ax.get_yscale() == "log"
    assert art.ax.get_title() == f"model: ECE {data.ece:.4f}"
    np.testing.assert_allclose(art.diagonal.get_xydata(), [[0, 0], [1, 1]])


def test_overlay_smooth_classwise_bits_compare_artists(rng):
    z, y = _data(rng, 2000, 10, scale=3.0)
    before = P.reliability_data(trueprob.evaluate(y, logits=z), label="before")
    after = P.reliability_data(trueprob.evaluate(y, logits=z / 3), label="after")
    over = P.plot_reliability_overlay([before, after])
    for line, d in zip(over.lines, (before, after), strict=True):
        np.testing.assert_allclose(line.get_xydata(),
                                   np.c_[d.confidence[d.nonempty], d.accuracy[d.nonempty]])
    assert over.lines[0].get_linestyle() != over.lines[1].get_linestyle()
    assert over.lines[0].get_marker() != over.lines[1].get_marker()

    t = np.linspace(0, 1, 21)
    conf = np.clip(t + 0.02, 0, 1)
    acc = np.where(t < 0.1, np.nan, t * 0.8)
    n_eff = np.where(t < 0.2, 0.5, 40.0)
    smooth = P.SmoothCurveData("m", t, conf, acc, np.ones(21), n_eff, acc - 0.1, acc + 0.1,
                               0.95, 0.05, 0.05)
    art = P.plot_smooth_reliability(smooth)
    y_curve = np.asarray(art.curve.get_ydata(), dtype=float)
    shown = t >= 0.2
    np.testing.assert_allclose(y_curve[shown], (t + acc - conf)[shown])
    assert np.isnan(y_curve[~shown]).all()  # n_eff < 1: not drawn

    stats = EvaluationStats(10).update(y, logits=z)
    cw = P.classwise_data(stats, stats.finalize(), max_panels=4)
    grid = P.plot_classwise_grid(cw)
    assert len(grid.axes) == 4
    assert [a.get_title() for a in grid.axes] == [
        f"class {k} · ECE {e:.4f}" for k, e in zip(cw.classes, cw.ece, strict=True)]
    ok = cw.weight[1] > 0
    np.testing.assert_allclose(grid.points[1].get_offsets(),
                               np.c_[cw.confidence[1][ok], cw.frequency[1][ok]])
    _, axes = plt.subplots(1, 3)
    with pytest.raises(ValueError, match=r"ax must hold at least one axes per panel \(4\); "
                                         r"got 3"):
        P.plot_classwise_grid(cw, ax=axes)

    rows = (P.BitsRow("a", 0.5, 0.1, 2.0, 2.4, 0.4, 0.3, 0.2, "temperature"),
            P.BitsRow("b", 0.41, -0.01, 2.0, 2.4, 0.4, None, None, "temperature"))
    bits = P.plot_bits(P.BitsData(rows, "bits"))
    assert bits.labels == ("a: label entropy H(Y)", "a: log loss", "a: cross-entropy",
                           "b: label entropy H(Y)", "b: log loss")
    widths = {k: [round(float(c.patches[0].get_width()), 12) for c in v]
              for k, v in bits.segments.items()}
    assert widths == {"remaining": [0.4, 0.4, 0.4, 0.4], "discrimination": [2.0, 2.0],
                      "miscalibration": [0.1, 0.0], "entropy": [0.3], "kl": [0.2]}
    texts = [t.get_text() for t in bits.ax.texts]
    assert "-0.010" in texts  # a negative MCB is drawn as 0 and labelled with its value

    cmp = P.compare_data({"rows": [
        {"method": "none", "nll": 0.9, "brier": 0.1, "ece": 0.05, "classwise_ece": None,
         "accuracy": 0.9},
        {"method": "temp", "nll": "inf", "brier": 0.09, "ece": 0.01, "classwise_ece": None,
         "accuracy": 0.9}], "unit": "bits"})
    chart = P.plot_compare(cmp)
    assert len(chart.axes) == 5
    assert [float(b.get_width()) for b in chart.bars[2]] == [0.05, 0.01]
    assert [t.get_text() for t in chart.axes[3].texts] == ["n/a", "n/a"]
    assert chart.axes[0].get_title() == "NLL (bits)\n(lower is better)"
    assert chart.axes[4].get_title() == "accuracy\n(higher is better)"


@pytest.mark.parametrize("k", [2, 10, 100])
def test_every_plot_type_renders_without_warnings(rng, k):
    """Binary (1-D), 10-class and 100-class inputs; figures saved as SVG and PNG. pytest turns
    any warning into an error."""
    n = 3000
    if k == 2:
        s = rng.normal(size=n) * 2
        y = (rng.random(n) < 1 / (1 + np.exp(-s))).astype(int)
        scores = {"logits": 3 * s}
    else:
        z, y = _data(rng, n, k, scale=2.5)
        scores = {"logits": z}
    report = trueprob.evaluate(y, **scores)
    stats = EvaluationStats(k).update(y, **scores)
    calibrated = trueprob.evaluate(y, logits=scores["logits"] / 2.5)
    rel = P.reliability_data(report, label="model")
    rel2 = P.reliability_data(calibrated, label="T = 2.5")
    cw = P.classwise_data(stats, stats.finalize())
    assert len(cw.classes) == min(k, P.data.MAX_PANELS)
    dec = trueprob.decompose(y, **scores, estimator="temperature", n_folds=2)
    bits = P.bits_data({"model": dec})
    cmp = P.compare_data_from_reports({"model": report, "T = 2.5": calibrated})
    arts = [P.plot_reliability(rel), P.plot_reliability_overlay([rel, rel2]),
            P.plot_classwise_grid(cw), P.plot_bits(bits), P.plot_compare(cmp)]
    smooth = pytest.importorskip("trueprob.metrics.smooth") if k == 10 else None
    if smooth is not None:
        arts.append(P.plot_smooth_reliability(
            P.smooth_curve_data(smooth.smooth_reliability(y, **scores), label="model")))
    for art in arts:
        for fmt in ("svg", "png"):
            buffer = io.BytesIO()
            art.figure.savefig(buffer, format=fmt)
            assert buffer.tell() > 1000


def test_drawing_changes_no_global_setting(rng):
    z, y = _data(rng, 500, 3)
    before = dict(mpl.rcParams)
    P.plot_reliability(P.reliability_data(trueprob.evaluate(y, logits=z)))
    P.plot_bits(P.bits_data({"m": trueprob.decompose(y, logits=z)}))
    after = dict(mpl.rcParams)
    assert before == after


def test_palette_reads_without_colour():
    # Okabe & Ito (2008): the published hex values
    assert S.OKABE_ITO == {"black": "#000000", "orange": "#E69F00", "sky_blue": "#56B4E9",
                           "bluish_green": "#009E73", "yellow": "#F0E442", "blue": "#0072B2",
                           "vermillion": "#D55E00", "reddish_purple": "#CC79A7"}
    styles = [S.series_style(i) for i in range(4)]
    assert len({s["linestyle"] for s in styles}) == 4 and len({s["marker"] for s in styles}) == 4
    assert S.HATCHES["over_confident"] != S.HATCHES["under_confident"]

    def luminance(hex_colour: str) -> float:  # relative luminance (sRGB, WCAG 2)
        rgb = np.array(to_rgb(hex_colour))
        lin = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
        return float(lin @ [0.2126, 0.7152, 0.0722])

    # the first two series (before / after) differ in grey level too
    assert abs(luminance(S.SERIES[0]) - luminance(S.SERIES[1])) > 0.25


def test_importing_the_plots_package_does_not_import_matplotlib():
    code = ("import sys, trueprob.report.plots, trueprob.report.verdict, trueprob.report.html;"
            "print('matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


def test_missing_matplotlib_names_the_extra(monkeypatch, rng):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    z, y = _data(rng, 100, 3)
    with pytest.raises(ImportError, match=r"pip install 'trueprob\[plot\]'"):
        P.plot_reliability(P.reliability_data(trueprob.evaluate(y, logits=z)))
