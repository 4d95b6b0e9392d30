"""trueprob.torch.CalibrationAccumulator: batches of torch tensors give trueprob.evaluate's Report.

References are computed independently of the accumulator: ``trueprob.evaluate`` on the
concatenated numpy arrays (the validated numpy path, all rows at once), hand-computed values,
and, for the no-synchronisation property, the meta device (which has no values to read) and a
``TorchFunctionMode`` that records every call that reads a value to the host or copies host
data to the device.
"""

from __future__ import annotations

import io
import math
import traceback
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import trueprob  # noqa: E402
from trueprob.torch import CalibrationAccumulator  # noqa: E402

pytestmark = pytest.mark.torch

TOL = {torch.float64: (1e-12, 1e-12), torch.float32: (2e-6, 2e-7)}


# ---------------------------------------------------------------------------- helpers
def flat_report(report: trueprob.Report) -> dict[str, Any]:
    """Every field of a Report as path -> value (floats as float, NaN kept)."""
    out: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}", v)
        elif isinstance(value, (list, tuple)):
            out[f"{prefix}#len"] = len(value)
            for i, v in enumerate(value):
                walk(f"{prefix}[{i}]", v)
        else:
            out[prefix] = value

    d = report.to_dict()
    # the accumulator keeps no smooth-ECE grid (smooth_ece is None, "not requested")
    d.pop("smooth_ece", None)
    d["unavailable"] = {k: v for k, v in d["unavailable"].items() if k != "smooth_ece"}
    # to_dict turns NaN into None; take the floats from the dataclass where that matters
    d["bins"] = [{k: getattr(b, k) for k in ("lower", "upper", "weight", "count", "confidence",
                                              "accuracy", "gap")} for b in report.bins]
    walk("", d)
    return out


def assert_reports_close(got: trueprob.Report, want: trueprob.Report, rtol: float,
                         atol: float) -> None:
    a, b = flat_report(got), flat_report(want)
    assert a.keys() == b.keys()
    for key in a:
        x, y = a[key], b[key]
        if isinstance(y, float) and not isinstance(y, bool):
            assert isinstance(x, float), key
            if math.isnan(y):
                assert math.isnan(x), key
            else:
                assert x == pytest.approx(y, rel=rtol, abs=atol), key
        else:
            assert x == y, key


def batches(rng: np.random.Generator, n: int) -> list[slice]:
    """Random batch sizes from 1 to n // 3 covering 0..n."""
    out, start = [], 0
    while start < n:
        size = int(rng.integers(1, max(2, n // 3)))
        out.append(slice(start, min(n, start + size)))
        start += size
    return out


def accumulate(acc: CalibrationAccumulator, slices: list[slice], scores: np.ndarray,
               labels: np.ndarray | None = None, *, dtype: Any = None, **kw: Any
               ) -> CalibrationAccumulator:
    def t(a: np.ndarray | None, sl: slice, cast: Any = None) -> Any:
        if a is None:
            return None
        x = torch.from_numpy(np.ascontiguousarray(a[sl]))
        return x if cast is None else x.to(cast)

    for sl in slices:
        extra = {k: t(v, sl) for k, v in kw.items()}
        acc.update(t(scores, sl, dtype), t(labels, sl), **extra)
    return acc


@pytest.fixture
def data(rng, synthetic_logits):
    z, y = synthetic_logits(rng, 1500, 7, scale=1.6)
    return z, y


# ---------------------------------------------------------------------------- equality
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_equals_evaluate_in_random_batches(rng, data, dtype):
    z, y = data
    z = z.astype(np.float32) if dtype == torch.float32 else z
    acc = accumulate(CalibrationAccumulator(7), batches(rng, len(y)), z, y)
    rtol, atol = TOL[dtype]
    assert_reports_close(acc.compute(), trueprob.evaluate(y, logits=z), rtol, atol)
    assert_reports_close(acc.compute(unit="bits", reduce="sum"),
                         trueprob.evaluate(y, logits=z, unit="bits", reduce="sum"), rtol, atol)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_weights_probs_and_left_closed_bins_equal_evaluate(rng, data, dtype):
    z, y = data
    q = np.exp(z - z.max(1, keepdims=True))
    q /= q.sum(1, keepdims=True)
    q = q.astype(np.float32) if dtype == torch.float32 else q
    w = rng.gamma(1.0, size=len(y))
    w[::11] = 0.0
    acc = accumulate(CalibrationAccumulator(7, n_bins=10, closed="left", inputs="probs"),
                     batches(rng, len(y)), q, y, sample_weight=w)
    rtol, atol = TOL[dtype]
    want = trueprob.evaluate(y, probs=q, sample_weight=w, n_bins=10, closed="left")
    assert_reports_close(acc.compute(), want, rtol, atol)


def test_binary_positive_class_logits(rng):
    z = rng.normal(size=400) * 2.0
    y = (rng.random(400) < 1 / (1 + np.exp(-z))).astype(np.int64)
    acc = accumulate(CalibrationAccumulator(2), batches(rng, 400), z, y)
    assert_reports_close(acc.compute(), trueprob.evaluate(y, logits=z), 1e-12, 1e-12)


def test_soft_targets_and_counts(rng, data):
    z, _ = data
    n = len(z)
    votes = rng.multinomial(5, np.full(7, 1 / 7), size=n).astype(np.int64)
    p = votes / votes.sum(1, keepdims=True)
    acc = accumulate(CalibrationAccumulator(7), batches(rng, n), z, targets=p)
    assert_reports_close(acc.compute(), trueprob.evaluate(targets=p, logits=z), 1e-12, 1e-12)
    acc = accumulate(CalibrationAccumulator(7), batches(rng, n), z, counts=votes)
    report = acc.compute()
    assert_reports_close(report, trueprob.evaluate(counts=votes, logits=z), 1e-12, 1e-12)
    # CE = H + KL for soft targets, in the accumulator's own numbers
    assert report.nll == pytest.approx(report.entropy + report.kl, rel=1e-12)


def test_labels_and_soft_targets_in_one_stream_match_a_merged_numpy_state(rng, data):
    z, y = data
    p = np.full((len(y), 7), 0.02)
    p[np.arange(len(y)), y] = 1 - 6 * 0.02
    acc = CalibrationAccumulator(7)
    acc.update(torch.from_numpy(z[:700]), torch.from_numpy(y[:700]))
    acc.update(torch.from_numpy(z[700:]), targets=torch.from_numpy(p[700:]))
    want = trueprob.EvaluationStats(7).update(y[:700], logits=z[:700]).merge(
        trueprob.EvaluationStats(7).update(targets=p[700:], logits=z[700:])).finalize()
    got = acc.compute()
    assert got.targets == "labels+targets"
    assert_reports_close(got, want, 1e-12, 1e-12)


@pytest.mark.parametrize("half", [torch.float16, torch.bfloat16])
def test_half_precision_logits_are_upcast_to_float32(rng, data, half):
    z, y = data
    zh = torch.from_numpy(z).to(half)
    acc = CalibrationAccumulator(7)
    for sl in batches(rng, len(y)):
        acc.update(zh[sl], torch.from_numpy(y[sl]))
    # the same values in float32, all rows at once, through the numpy path
    want = trueprob.evaluate(y, logits=zh.float().numpy())
    assert_reports_close(acc.compute(), want, *TOL[torch.float32])
    assert acc.tensors()["sums"].dtype == torch.float64
    assert acc.tensors()["counts"].dtype == torch.int64


def test_hand_computed_case():
    # logits (2,0,0),(0,3,0),(1,0,2),(0,.5,0), labels 0,1,0,2: NLL by hand
    z = torch.tensor([[2.0, 0.0, 0.0], [0.0, 3.0, 0.0], [1.0, 0.0, 2.0], [0.0, 0.5, 0.0]],
                     dtype=torch.float64)
    y = torch.tensor([0, 1, 0, 2])
    acc = CalibrationAccumulator(3)
    acc.update(z[:1], y[:1]).update(z[1:], y[1:])
    nll = np.mean([math.log(math.exp(2) + 2) - 2, math.log(math.exp(3) + 2) - 3,
                   math.log(math.e + 1 + math.exp(2)) - 1,
                   math.log(2 + math.exp(0.5)) - 0])
    report = acc.compute()
    assert report.nll == pytest.approx(nll, rel=1e-14)
    assert report.accuracy == 0.5
    assert report.n == 4


def test_autograd_inputs_are_detached(data):
    z, y = data
    logits = torch.from_numpy(z).requires_grad_(True)
    acc = CalibrationAccumulator(7)
    acc.update(logits * 1.0, torch.from_numpy(y))
    assert not any(t.requires_grad for t in acc.tensors().values())
    with torch.no_grad():
        acc.update(logits, torch.from_numpy(y))
    assert acc.compute().n == 2 * len(y)


# ---------------------------------------------------------------------------- errors
def test_invalid_values_are_counted_and_reported_at_compute(data):
    z, y = data
    z = z.copy()
    z[3, 2] = np.nan
    z[10, 0] = np.inf
    y = y.copy()
    y[5] = 7
    y[6] = -1
    y[10] = 9  # also bad logits: one row, counted once in the total
    acc = CalibrationAccumulator(7)
    acc.update(torch.from_numpy(z), torch.from_numpy(y))  # no error here: deferred
    with pytest.raises(ValueError, match=(
            r"4 of 1500 rows added since the last reset\(\) are invalid, so there is no "
            r"report: 2 row\(s\) with logits that are not finite \(NaN or inf\); 3 row\(s\) "
            r"with labels outside 0\.\.6 \(K=7\)\. update\(\) defers these checks")):
        acc.compute()
    acc.reset()
    good = np.setdiff1d(np.arange(len(y)), [3, 5, 6, 10])
    acc.update(torch.from_numpy(z[good]), torch.from_numpy(y[good]))
    assert_reports_close(acc.compute(), trueprob.evaluate(y[good], logits=z[good]),
                         1e-12, 1e-12)


def test_invalid_probs_targets_counts_and_weights_are_reported(data):
    z, y = data
    q = np.exp(z - z.max(1, keepdims=True))
    q /= q.sum(1, keepdims=True)
    q[0] *= 1.01  # off the simplex
    q[1, 0] = -0.1
    w = np.ones(len(y))
    w[2] = -1.0
    acc = CalibrationAccumulator(7, inputs="probs")
    acc.update(torch.from_numpy(q), torch.from_numpy(y), sample_weight=torch.from_numpy(w))
    with pytest.raises(ValueError, match=(
            r"3 of 1500 rows .* 2 row\(s\) with probs that are not finite, outside \[0, 1\] "
            r"or do not sum to 1 .*; 1 row\(s\) with sample_weight that is negative")):
        acc.compute()
    p = np.full((4, 7), 1 / 7)
    p[1] = np.nan
    votes = np.ones((4, 7))
    votes[2] = 0
    acc = CalibrationAccumulator(7)
    acc.update(torch.from_numpy(z[:4]), targets=torch.from_numpy(p))
    acc.update(torch.from_numpy(z[:4]), counts=torch.from_numpy(votes))
    with pytest.raises(ValueError, match=(
            r"2 of 8 rows .* 1 row\(s\) with targets that are not finite.*; 1 row\(s\) "
            r"with counts that are not finite, all zero")):
        acc.compute()


def test_immediate_errors_name_the_argument(data):
    z, y = data
    zt, yt = torch.from_numpy(z), torch.from_numpy(y)
    acc = CalibrationAccumulator(7)
    with pytest.raises(ValueError, match=r"inputs must be 'logits' or 'probs'; got 'scores'"):
        CalibrationAccumulator(7, inputs="scores")
    with pytest.raises(ValueError, match=r"n_classes must be an integer >= 2; got 1"):
        CalibrationAccumulator(1)
    with pytest.raises(TypeError, match=r"logits must be a torch.Tensor; got ndarray"):
        acc.update(z, yt)
    with pytest.raises(TypeError, match=r"pass exactly one of labels, targets= or counts=; "
                                        r"got labels, targets"):
        acc.update(zt, yt, targets=torch.softmax(zt, 1))
    with pytest.raises(TypeError, match=r"labels must be an integer tensor of class indices; "
                                        r"got dtype torch.float64"):
        acc.update(zt, yt.double())
    with pytest.raises(ValueError, match=r"n_classes=7 but logits has K=6 columns"):
        acc.update(zt[:, :6], yt)
    with pytest.raises(ValueError, match=r"labels has 10 rows but logits has 1500"):
        acc.update(zt, yt[:10])
    with pytest.raises(ValueError, match=r"labels is on meta but logits is on cpu"):
        acc.update(zt, yt.to("meta"))
    with pytest.raises(TypeError, match=r"probs must be float32 or float64 .* got "
                                        r"torch.float16"):
        CalibrationAccumulator(7, inputs="probs").update(torch.softmax(zt, 1).half(), yt)
    with pytest.raises(ValueError, match=r"no rows were added to this accumulator"):
        acc.compute()
    with pytest.raises(ValueError, match=r"unit must be 'nats' or 'bits'; got 'bit'"):
        acc.compute(unit="bit")
    on_meta = CalibrationAccumulator(7, device="meta")
    with pytest.raises(ValueError, match=r"this accumulator's state is on meta but logits "
                                         r"is on cpu"):
        on_meta.update(zt, yt)
    with pytest.raises(RuntimeError, match=r"torch.distributed is not initialised"):
        acc.all_reduce()


# ---------------------------------------------------------------------------- checkpoints
def test_state_dict_round_trip_through_torch_save(rng, data):
    z, y = data
    slices = batches(rng, len(y))
    half = len(slices) // 2
    first = accumulate(CalibrationAccumulator(7), slices[:half], z, y)
    first.update(torch.from_numpy(z[:2]), targets=torch.full((2, 7), 1 / 7,
                                                               dtype=torch.float64))
    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    resumed = CalibrationAccumulator(7).load_state_dict(state)
    accumulate(resumed, slices[half:], z, y)
    first_rows = np.concatenate([np.arange(len(y))[s] for s in slices[:half]])
    stats = trueprob.EvaluationStats(7).update(y[first_rows], logits=z[first_rows])
    stats = stats.merge(trueprob.EvaluationStats(7).update(
        targets=np.full((2, 7), 1 / 7), logits=z[:2]))
    rest = np.setdiff1d(np.arange(len(y)), first_rows)
    want = stats.merge(trueprob.EvaluationStats(7).update(y[rest], logits=z[rest])).finalize()
    assert_reports_close(resumed.compute(), want, 1e-12, 1e-12)
    # the saved state is a copy: updating `first` afterwards did not change `state`
    assert int(state["counts"][0]) == len(first_rows) + 2


def test_state_dict_checks_settings_and_empty_state(data):
    z, y = data
    empty = CalibrationAccumulator(7).state_dict()
    assert set(empty) == {"settings", "target_kinds"}
    fresh = CalibrationAccumulator(7).load_state_dict(empty)
    assert fresh.tensors() == {}
    full = CalibrationAccumulator(7).update(torch.from_numpy(z), torch.from_numpy(y))
    with pytest.raises(ValueError, match=r"state was saved with n_classes=7, n_bins=15, "
                                         r"closed='right', inputs='logits'; this accumulator "
                                         r"has n_classes=7, n_bins=10"):
        CalibrationAccumulator(7, n_bins=10).load_state_dict(full.state_dict())
    state = full.state_dict()
    state["sums"] = state["sums"].float()
    with pytest.raises(ValueError, match=r"state tensor sums must be torch.float64 of shape "
                                         r"\(7,\); got torch.float32"):
        CalibrationAccumulator(7).load_state_dict(state)
    with pytest.raises(ValueError, match=r"state has no 'settings' tensor"):
        CalibrationAccumulator(7).load_state_dict({"sums": state["sums"]})


def test_reset_keeps_device_and_zeroes_state(data):
    z, y = data
    acc = CalibrationAccumulator(7).update(torch.from_numpy(z), torch.from_numpy(y))
    acc.reset()
    assert acc.device == torch.device("cpu")
    assert all(int(torch.count_nonzero(t)) == 0 for t in acc.tensors().values())
    with pytest.raises(ValueError, match=r"no rows were added"):
        acc.compute()


# ---------------------------------------------------------------------------- no host sync
def test_update_runs_on_the_meta_device():
    """Meta tensors have no values: any host read (item, bool, nonzero, ...) would raise."""
    acc = CalibrationAccumulator(5, device="meta")
    z = torch.empty(32, 5, device="meta")
    acc.update(z, torch.empty(32, dtype=torch.int64, device="meta"),
               sample_weight=torch.empty(32, device="meta"))
    acc.update(z, targets=torch.empty(32, 5, device="meta"))
    acc.update(z, counts=torch.empty(32, 5, device="meta"))
    acc.update(torch.empty(32, 5, device="meta", dtype=torch.bfloat16),
               torch.empty(32, dtype=torch.int64, device="meta"))
    assert acc.tensors()["sums"].device.type == "meta"


class HostSyncProbe(torch.overrides.TorchFunctionMode):
    """Records calls that, on an accelerator, read a value back to the host or copy host data
    to the device (both block the host until the device catches up)."""

    READS: ClassVar[set[str]] = {
        "item", "tolist", "numpy", "cpu", "__bool__", "__int__", "__float__", "__index__",
        "__complex__", "nonzero", "argwhere", "bincount", "unique", "unique_consecutive",
        "masked_select", "repeat_interleave"
    }
    FROM_HOST: ClassVar[set[str]] = {"tensor", "asarray", "as_tensor", "from_numpy"}

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, str]] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        flagged = name in self.READS or (
            name in self.FROM_HOST and args and not isinstance(args[0], torch.Tensor))
        if name in ("__getitem__", "__setitem__") and len(args) > 1:
            index = args[1] if isinstance(args[1], tuple) else (args[1],)
            flagged = any(isinstance(i, torch.Tensor) and i.dtype == torch.bool
                          for i in index)
        if flagged:
            self.calls.append((name, self.where()))
        return func(*args, **kwargs)

    @staticmethod
    def where() -> str:
        """The innermost frame of the current call in the trueprob package."""
        package = Path(trueprob.__file__).resolve().parent
        for frame in reversed(traceback.extract_stack()):
            path = Path(frame.filename).resolve()
            if path.is_relative_to(package):
                return f"trueprob/{path.relative_to(package).as_posix()}:{frame.lineno}"
        return "outside trueprob"


def test_update_makes_no_host_read_or_host_to_device_copy(data):
    z, y = data
    zt, yt = torch.from_numpy(z[:64]), torch.from_numpy(y[:64])
    soft = torch.softmax(zt, 1)
    w = torch.ones(64, dtype=torch.float64)
    acc = CalibrationAccumulator(7).update(zt, yt)  # the state exists before the probe
    probe = HostSyncProbe()
    with probe:
        acc.update(zt, yt, sample_weight=w)
        acc.update(zt, targets=soft)
        acc.update(zt.float(), counts=torch.ones(64, 7))
    # the probe does see host reads where there are some (a check that it can fail)
    check = HostSyncProbe()
    with check:
        acc.compute()
    assert any(name in ("tolist", "item", "numpy", "cpu") for name, _ in check.calls)
    places = sorted({f"{name} at {where}" for name, where in probe.calls})
    assert places == []


# ---------------------------------------------------------------------------- torchmetrics
def scalars(report: trueprob.Report) -> dict[str, float]:
    return {k: v for k, v in report.to_dict().items()
            if isinstance(v, float) and k not in ("weight", "smooth_ece")}


def test_torchmetrics_adapter_equals_evaluate(rng, data):
    pytest.importorskip("torchmetrics")
    from trueprob.torch import TorchmetricsCalibration

    z, y = data
    metric = TorchmetricsCalibration(7)
    for sl in batches(rng, len(y)):
        metric.update(torch.from_numpy(z[sl]), torch.from_numpy(y[sl]))
    assert metric.sums.dtype == torch.float64 and metric.counts.dtype == torch.int64
    want = trueprob.evaluate(y, logits=z)
    assert_reports_close(metric.report(), want, 1e-12, 1e-12)
    got = metric.compute()
    assert got.keys() == scalars(want).keys()
    assert got == pytest.approx(scalars(want), rel=1e-12, abs=1e-12)
    # forward gives the batch's metrics and adds the batch to the global state
    metric.reset()
    batch = metric(torch.from_numpy(z[:500]), torch.from_numpy(y[:500]))
    assert batch == pytest.approx(scalars(trueprob.evaluate(y[:500], logits=z[:500])),
                                  rel=1e-12, abs=1e-12)
    metric.update(torch.from_numpy(z[500:]), torch.from_numpy(y[500:]))
    assert_reports_close(metric.report(), want, 1e-12, 1e-12)


def test_torchmetrics_adapter_soft_targets_and_errors(data):
    pytest.importorskip("torchmetrics")
    from trueprob.torch import TorchmetricsCalibration

    z, y = data
    p = np.full((len(z), 7), 1 / 7)
    metric = TorchmetricsCalibration(7, target="targets", unit="bits")
    metric.update(torch.from_numpy(z), torch.from_numpy(p))
    want = trueprob.evaluate(targets=p, logits=z, unit="bits")
    assert_reports_close(metric.report(), want, 1e-12, 1e-12)
    assert metric.compute()["kl"] == pytest.approx(want.kl, rel=1e-12)
    bad = TorchmetricsCalibration(7)
    bad.update(torch.from_numpy(z), torch.from_numpy(np.where(y == 0, 7, y)))
    with pytest.raises(ValueError, match=r"row\(s\) with labels outside 0\.\.6 \(K=7\)"):
        bad.compute()
    with pytest.raises(ValueError, match=r"target must be one of \('labels', 'targets', "
                                         r"'counts'\); got 'label'"):
        TorchmetricsCalibration(7, target="label")
    with pytest.raises(ValueError, match=r"Unexpected keyword arguments: `?n_bin"):
        TorchmetricsCalibration(7, n_bin=10)


def test_torchmetrics_class_needs_torchmetrics():
    try:
        import torchmetrics
    except ImportError:
        with pytest.raises(ImportError, match=r"TorchmetricsCalibration needs torchmetrics"):
            from trueprob.torch import TorchmetricsCalibration
    else:
        from trueprob.torch import TorchmetricsCalibration

        assert issubclass(TorchmetricsCalibration, torchmetrics.Metric)


def test_smooth_ece_is_not_accumulated(data):
    z, y = data
    report = CalibrationAccumulator(7).update(torch.from_numpy(z), torch.from_numpy(y)).compute()
    assert report.smooth_ece is None
    assert report.unavailable["smooth_ece"] == "not requested"


def test_add_takes_evaluates_argument_order_and_equals_update():
    rng = np.random.default_rng(11)
    z = rng.normal(size=(300, 4)) * 2
    y = rng.integers(0, 4, 300)
    via_add = CalibrationAccumulator(4).add(torch.from_numpy(y), logits=torch.from_numpy(z))
    via_update = CalibrationAccumulator(4).update(torch.from_numpy(z), torch.from_numpy(y))
    want = trueprob.evaluate(y, logits=z).to_dict()
    assert via_add.compute().to_dict() == via_update.compute().to_dict()
    for key in ("nll", "ece", "brier", "accuracy"):
        assert via_add.compute().to_dict()[key] == pytest.approx(want[key], rel=1e-12)
    with pytest.raises(TypeError, match=r"this accumulator takes logits= \(set by inputs=\); "
                                        r"got probs="):
        CalibrationAccumulator(4).add(torch.from_numpy(y), probs=torch.from_numpy(z))
