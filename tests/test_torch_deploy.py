"""trueprob.torch.CalibratedModel and trueprob.calibrators.as_numpy_function."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from trueprob.calibrators import (  # noqa: E402
    BetaCalibration,
    DirichletCalibration,
    HistogramBinning,
    IsotonicCalibration,
    MatrixScaling,
    NotFittedError,
    OneVsRest,
    PlattScaling,
    ScalingBinning,
    TemperatureScaling,
    TopLabel,
    VectorScaling,
    as_numpy_function,
)
from trueprob.torch import CalibratedModel  # noqa: E402

pytestmark = pytest.mark.torch

K = 4


def _data(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Multiclass logits and labels (over-confident by 2x) and a binary pair."""
    rng = np.random.default_rng(seed)
    u = rng.normal(size=(3000, K)) * 1.5
    q = np.exp(u - u.max(1, keepdims=True))
    q /= q.sum(1, keepdims=True)
    y = (rng.random(3000)[:, None] > np.cumsum(q, 1)).sum(1)
    s = rng.normal(size=3000) * 2
    yb = (rng.random(3000) < 1 / (1 + np.exp(-s))).astype(int)
    return u * 2, y, s * 2, yb


def _calibrators() -> list[tuple[str, object, str]]:
    """(id, fitted calibrator, input kind) for every calibrator that can be deployed."""
    z, y, s, yb = _data()
    q = np.exp(z - z.max(1, keepdims=True))
    q /= q.sum(1, keepdims=True)
    pb = 1 / (1 + np.exp(-s))
    out = [
        ("temperature", TemperatureScaling().fit(y, logits=z), "logits"),
        ("temperature-probs", TemperatureScaling().fit(y, probs=q), "probs"),
        ("vector", VectorScaling().fit(y, logits=z), "logits"),
        ("matrix", MatrixScaling(reg_lambda=1e-3).fit(y, logits=z), "logits"),
        ("dirichlet", DirichletCalibration(reg_lambda=1e-3).fit(y, probs=q), "probs"),
        ("dirichlet-logits", DirichletCalibration(reg_lambda=1e-3).fit(y, logits=z), "logits"),
        ("platt", PlattScaling().fit(yb, logits=s), "logits"),
        ("beta", BetaCalibration().fit(yb, probs=pb), "probs"),
        ("isotonic", IsotonicCalibration().fit(yb, logits=s), "logits"),
        ("histogram", HistogramBinning().fit(yb, probs=pb), "probs"),
        ("scaling-binning", ScalingBinning().fit(yb, logits=s), "logits"),
        ("ovr-isotonic", OneVsRest(base=IsotonicCalibration()).fit(y, logits=z), "logits"),
        ("top-label-beta", TopLabel(base=BetaCalibration()).fit(y, probs=q), "probs"),
    ]
    try:
        from trueprob.calibrators import BBQ, ENIR
    except ImportError:
        return out
    out += [("bbq", BBQ().fit(yb, logits=s), "logits"),
            ("ovr-enir", OneVsRest(base=ENIR()).fit(y, probs=q), "probs")]
    return out


CALIBRATORS = _calibrators()


class _Net(torch.nn.Module):
    """A small classifier whose output is what the calibrator takes (logits or probs)."""

    def __init__(self, n_out: int, kind: str, binary: bool) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.linear = torch.nn.Linear(5, n_out, dtype=torch.float64)
        self.kind, self.binary = kind, binary

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.linear(x) * 3
        if self.binary:
            z = z[:, 0]
            return torch.sigmoid(z) if self.kind == "probs" else z
        return torch.softmax(z, dim=1) if self.kind == "probs" else z


def _model(cal: object, kind: str) -> tuple[CalibratedModel, torch.nn.Module]:
    binary = getattr(cal, "n_classes_", 2) == 2 and not hasattr(cal, "calibrators_") \
        and not hasattr(cal, "calibrator_")
    net = _Net(1 if binary else K, kind, binary)
    return CalibratedModel(net, cal).eval(), net


@pytest.mark.parametrize(("name", "cal", "kind"), CALIBRATORS, ids=[c[0] for c in CALIBRATORS])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_equals_predict_logproba_in_each_dtype(name, cal, kind, dtype):
    model, net = _model(cal, kind)
    model = model.to(dtype)
    x = torch.from_numpy(np.random.default_rng(1).normal(size=(400, 5))).to(dtype)
    with torch.no_grad():
        out = model(x)
        scores = net(x).numpy()
    assert out.dtype == dtype and out.shape == (400, K if scores.ndim == 2 else 2)
    ref = cal.predict_logproba(**{kind: scores})
    assert ref.dtype == scores.dtype
    tol = 1e-6 if dtype == torch.float32 else 1e-12
    np.testing.assert_allclose(out.numpy(), ref, atol=tol, rtol=0)
    np.testing.assert_allclose(np.exp(out.numpy()).sum(axis=1), 1.0, atol=10 * tol)


#: torch 2.13's export warns about OneVsRest's column copy (xp.asarray(col, copy=True) in
#: calibrators/multiclass.py); harmless here, the numbers are checked
EXPORT_WARNING = "ignore:torch.asarray. unspecified requires_grad:UserWarning"


@pytest.mark.filterwarnings(EXPORT_WARNING)
@pytest.mark.parametrize(("name", "cal", "kind"), CALIBRATORS, ids=[c[0] for c in CALIBRATORS])
def test_torch_export_gives_the_same_numbers(name, cal, kind):
    model, _ = _model(cal, kind)
    model = model.to(torch.float32)
    x = torch.from_numpy(np.random.default_rng(2).normal(size=(64, 5)).astype(np.float32))
    program = torch.export.export(model, (x,))
    x2 = torch.from_numpy(np.random.default_rng(3).normal(size=(64, 5)).astype(np.float32))
    with torch.no_grad():
        np.testing.assert_allclose(program.module()(x2).numpy(), model(x2).numpy(),
                                   atol=1e-6, rtol=0)


def test_formulas_by_hand():
    z, y, s, yb = _data(5)
    cal = TemperatureScaling().fit(y, logits=z)
    x = torch.from_numpy(z[:10])
    out = CalibratedModel(torch.nn.Identity(), cal)(x).numpy()
    a = z[:10] / cal.temperature_
    np.testing.assert_allclose(out, a - np.log(np.exp(a).sum(1, keepdims=True)), rtol=1e-13)
    platt = PlattScaling().fit(yb, logits=s)
    out = CalibratedModel(torch.nn.Identity(), platt)(torch.from_numpy(s[:10])).numpy()
    f = platt.coef_ * s[:10] + platt.intercept_
    np.testing.assert_allclose(out[:, 1], -np.log1p(np.exp(-f)), rtol=1e-13)
    np.testing.assert_allclose(out[:, 0], -np.log1p(np.exp(f)), rtol=1e-13)


@pytest.mark.filterwarnings(EXPORT_WARNING)
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize(("name", "cal", "kind"), CALIBRATORS, ids=[c[0] for c in CALIBRATORS])
def test_on_cuda_and_exported_on_cuda(name, cal, kind):
    model, net = _model(cal, kind)
    x = torch.from_numpy(np.random.default_rng(4).normal(size=(256, 5)).astype(np.float32))
    with torch.no_grad():  # the reference on the CPU, before the shared network moves
        ref = cal.predict_logproba(**{kind: net.to(torch.float32)(x).numpy()})
    model = model.to(device="cuda", dtype=torch.float32)
    with torch.no_grad():
        out = model(x.cuda())
    assert out.device.type == "cuda"
    np.testing.assert_allclose(out.cpu().numpy(), ref, atol=1e-6, rtol=0)
    program = torch.export.export(model, (x.cuda(),))
    with torch.no_grad():
        exported = program.module()(x.cuda())
    np.testing.assert_allclose(exported.cpu().numpy(), ref, atol=1e-6, rtol=0)


def test_what_cannot_be_deployed_is_named():
    from trueprob.regression import VarianceScaling

    with pytest.raises(TypeError, match=r"calibrator: VarianceScaling is a regression "
                                        r"calibrator .* CalibratedModel cannot deploy it"):
        CalibratedModel(torch.nn.Identity(), VarianceScaling())
    with pytest.raises(NotFittedError, match="calibrator: this TemperatureScaling is not "
                                             "fitted yet"):
        CalibratedModel(torch.nn.Identity(), TemperatureScaling())
    with pytest.raises(TypeError, match=r"model must be a torch.nn.Module .*; got function"):
        CalibratedModel(lambda x: x, CALIBRATORS[0][1])
    with pytest.raises(TypeError, match="calibrator must be a fitted trueprob classification "
                                        "calibrator; got 3"):
        CalibratedModel(torch.nn.Identity(), 3)


# --------------------------------------------------------------------------- numpy function


@pytest.mark.parametrize(("name", "cal", "kind"), CALIBRATORS, ids=[c[0] for c in CALIBRATORS])
def test_numpy_function_equals_predict_logproba_and_the_module(name, cal, kind):
    model, net = _model(cal, kind)
    x = torch.from_numpy(np.random.default_rng(6).normal(size=(100, 5)))
    with torch.no_grad():
        scores = net(x).numpy()
        module_out = model(x).numpy()
    f = as_numpy_function(cal)
    got = f(scores)
    assert isinstance(got, np.ndarray)
    np.testing.assert_array_equal(got, cal.predict_logproba(**{kind: scores}))
    np.testing.assert_allclose(got, module_out, atol=1e-12, rtol=0)
    assert f(scores.astype(np.float32)).dtype == np.float32


def test_numpy_function_is_frozen_and_checks_its_input():
    z, y, _, _ = _data(7)
    cal = TemperatureScaling().fit(y[:500], logits=z[:500])
    f = as_numpy_function(cal)
    before = f(z[:5])
    cal.fit(y[:500], logits=z[:500] * 5)  # a refit of the original changes nothing
    np.testing.assert_array_equal(f(z[:5]), before)
    bad = z[:5].copy()
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match="logits"):
        f(bad)
    with pytest.raises(NotFittedError, match="not fitted yet"):
        as_numpy_function(TemperatureScaling())
    from trueprob.regression import VarianceScaling

    with pytest.raises((TypeError, NotFittedError)):
        as_numpy_function(VarianceScaling())
