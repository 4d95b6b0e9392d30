"""Benchmark: fitting recalibration maps, trueprob against peers, on the same arrays.

Temperature scaling: trueprob's ``TemperatureScaling`` (Halley on 1/T, float64 optimum)
against scikit-learn's ``CalibratedClassifierCV(method="temperature")`` (fed the logits
through a ``FrozenEstimator`` over an identity model whose ``decision_function`` returns its
input), netcal's ``TemperatureScaling`` (``method="mle"``; it takes probabilities),
probmetrics' ``TemperatureScalingCalibrator`` (bisection on log 1/T, given the logits), the
hand-written PyTorch loop most code copies (gpleiss/temperature_scaling: T = 1.5,
``LBFGS(lr=0.01, max_iter=50)``), and a tuned PyTorch loop (LBFGS on log T with a strong-Wolfe
line search). Matrix scaling and Dirichlet calibration (no penalty, so every library fits the
same likelihood) against probmetrics' ``MatrixScalingCalibrator`` (its
``DirichletCalibrator`` needs the dirichletcal package, which needs jax: not installed) on the
K = 10 case only (K = 1000 means 10^6 parameters; not run).

Inputs: float32 logits, N = 1,000,000 x K = 10 and N = 50,000 x K = 1000 (``--quick``:
20,000 x 10 and 5,000 x 100), seeded; labels drawn from softmax of the true logits, which
the model reports 2.5 times too large. Each library runs in its own subprocess: it loads the
arrays, fits once under :func:`_common.measure_memory` (extra peak RSS over the loaded input)
and then ``--repeat`` times for time. The final NLL of every temperature is computed by the
parent in float64 from the returned T (same code for all); the linear maps report the NLL of
their own predictions on the fit set, in float64.

Run with the peers' environment (probmetrics needs ``pip install --no-deps probmetrics
pytorch-minimize numba llvmlite``; a peer that is missing gives a "not installed" row)::

    /work/bench-venv/bin/python bench/fit.py             # full run (minutes)
    /work/bench-venv/bin/python bench/fit.py --quick     # seconds
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common

WORKER_TIMEOUT = 600.0
TEMPERATURE_PEERS = ["trueprob", "scikit-learn", "netcal", "probmetrics", "torch-typical",
                     "torch-tuned"]
LINEAR_PEERS = ["trueprob-matrix", "probmetrics-matrix", "trueprob-dirichlet",
                "probmetrics-dirichlet"]
NEEDS = {"scikit-learn": "sklearn", "netcal": "netcal", "probmetrics": "probmetrics",
         "torch-typical": "torch", "torch-tuned": "torch", "probmetrics-matrix": "probmetrics",
         "probmetrics-dirichlet": "dirichletcal"}  # probmetrics' Dirichlet wraps dirichletcal (jax)


# ============================================================================ inputs
def make_case(folder: Path, n: int, k: int, seed: int) -> Path:
    """Save float32 logits (2.5 x the true ones) and labels drawn from the true softmax."""
    rng = np.random.default_rng(seed)
    path = folder / f"{n}x{k}"
    path.mkdir()
    logits = np.empty((n, k), dtype=np.float32)
    labels = np.empty(n, dtype=np.int64)
    block = max(1, (1 << 20) // k)
    for start in range(0, n, block):
        stop = min(start + block, n)
        u = rng.normal(size=(stop - start, k)) * 1.5
        u[np.arange(stop - start), rng.integers(0, k, stop - start)] += math.log(k) + 1.0
        q = np.exp(u - u.max(axis=1, keepdims=True))
        q /= q.sum(axis=1, keepdims=True)
        draw = rng.random(stop - start)[:, None]
        labels[start:stop] = np.minimum((q.cumsum(axis=1) < draw).sum(axis=1), k - 1)
        logits[start:stop] = 2.5 * u
    np.save(path / "logits.npy", logits)
    np.save(path / "labels.npy", labels)
    return path


def nll_at(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    """Mean NLL of softmax(z / T) in float64, in row blocks (the same code for every peer)."""
    total = 0.0
    for start in range(0, len(labels), 1 << 16):
        z = logits[start:start + (1 << 16)].astype(np.float64) / temperature
        m = z.max(axis=1)
        lse = m + np.log(np.exp(z - m[:, None]).sum(axis=1))
        y = labels[start:start + (1 << 16)]
        total += float((lse - z[np.arange(len(y)), y]).sum())
    return total / len(labels)


# ============================================================================ fitters
def _fit_temperature(name: str, z: np.ndarray, y: np.ndarray) -> Callable[[], float]:
    """A zero-argument function fitting T with library ``name``; returns T."""
    if name == "trueprob":
        from trueprob.calibrators.temperature import TemperatureScaling

        return lambda: TemperatureScaling().fit(y, logits=z).temperature_
    if name == "scikit-learn":
        from sklearn.base import BaseEstimator, ClassifierMixin
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.frozen import FrozenEstimator

        k = z.shape[1]

        class Identity(ClassifierMixin, BaseEstimator):
            """A 'model' whose decision function is its input: the logits."""

            def fit(self, x: Any, t: Any) -> Identity:
                self.classes_ = np.arange(k)
                return self

            def decision_function(self, x: Any) -> Any:
                return x

            def predict(self, x: Any) -> Any:
                return np.argmax(x, axis=1)

        frozen = FrozenEstimator(Identity().fit(z, y))

        def sk() -> float:
            cal = CalibratedClassifierCV(frozen, method="temperature").fit(z, y)
            return 1.0 / float(cal.calibrated_classifiers_[0].calibrators[0].beta_)

        return sk
    if name == "netcal":
        from netcal.scaling import TemperatureScaling as NetcalTS

        # netcal takes probabilities. In float64: given float32 probabilities, netcal 1.4.0
        # returns without moving T from 1 (checked: its transform is then the identity).
        z64 = z.astype(np.float64)
        q = np.exp(z64 - z64.max(axis=1, keepdims=True))
        q /= q.sum(axis=1, keepdims=True)

        def nc() -> float:
            ts = NetcalTS(method="mle")
            ts.fit(q, y, tensorboard=False)
            # its ``temperature`` attribute holds the factor the logits are multiplied by
            # (1/T): the NLL of its own transform equals the NLL at T = 1 / temperature
            return 1.0 / float(np.ravel(ts.temperature)[0])

        return nc
    if name == "probmetrics":
        import torch
        from probmetrics.calibrators import TemperatureScalingCalibrator
        from probmetrics.distributions import CategoricalLogits

        zt, yt = torch.from_numpy(z), torch.from_numpy(y)

        def pm() -> float:
            cal = TemperatureScalingCalibrator().fit_torch(CategoricalLogits(zt), yt)
            return 1.0 / float(cal.invtemp_)

        return pm
    if name in ("torch-typical", "torch-tuned"):
        import torch

        zt, yt = torch.from_numpy(z), torch.from_numpy(y)
        loss_fn = torch.nn.CrossEntropyLoss()

        def typical() -> float:
            # the loop of gpleiss/temperature_scaling, copied into many code bases
            t = torch.nn.Parameter(torch.ones(1) * 1.5)
            opt = torch.optim.LBFGS([t], lr=0.01, max_iter=50)

            def closure() -> Any:
                opt.zero_grad()
                loss = loss_fn(zt / t, yt)
                loss.backward()
                return loss

            opt.step(closure)
            return float(t.item())

        def tuned() -> float:
            log_t = torch.nn.Parameter(torch.zeros(1))
            opt = torch.optim.LBFGS([log_t], lr=1.0, max_iter=100, line_search_fn="strong_wolfe",
                                    tolerance_grad=1e-9, tolerance_change=1e-12)

            def closure() -> Any:
                opt.zero_grad()
                loss = loss_fn(zt * torch.exp(-log_t), yt)
                loss.backward()
                return loss

            opt.step(closure)
            return float(torch.exp(log_t).item())

        return typical if name == "torch-typical" else tuned
    raise ValueError(f"unknown temperature peer {name!r}")


def _fit_linear(name: str, z: np.ndarray, y: np.ndarray) -> Callable[[], Any]:
    """A zero-argument function fitting a matrix / Dirichlet map; returns log-probabilities
    of the fit set (float64, computed after fitting, not timed separately)."""
    if name.startswith("trueprob"):
        from trueprob.calibrators.scaling import DirichletCalibration, MatrixScaling

        cls = MatrixScaling if name.endswith("matrix") else DirichletCalibration
        return lambda: cls(reg_lambda=0.0).fit(y, logits=z)
    import torch
    from probmetrics.calibrators import DirichletCalibrator, MatrixScalingCalibrator
    from probmetrics.distributions import CategoricalLogits

    zt, yt = torch.from_numpy(z), torch.from_numpy(y)
    cls_pm = MatrixScalingCalibrator if name.endswith("matrix") else DirichletCalibrator
    return lambda: cls_pm().fit_torch(CategoricalLogits(zt), yt)


def _linear_nll(name: str, fitted: Any, z: np.ndarray, y: np.ndarray) -> float:
    z64 = z.astype(np.float64)
    if name.startswith("trueprob"):
        logp = fitted.predict_logproba(logits=z64)
    else:
        import torch
        from probmetrics.distributions import CategoricalLogits

        out = fitted.predict_proba_torch(CategoricalLogits(torch.from_numpy(z)))  # float32
        logp = torch.log(out.get_probs()).double().numpy()
    return float(-np.mean(logp[np.arange(len(y)), y]))


# ============================================================================ worker
def worker(name: str, data: Path, repeat: int) -> None:
    z = np.load(data / "logits.npy")
    y = np.load(data / "labels.npy")
    linear = name in LINEAR_PEERS
    fit = _fit_linear(name, z, y) if linear else _fit_temperature(name, z, y)
    _common.release_free_memory()
    out, mem = _common.measure_memory(fit)
    times = _common.time_calls(fit, repeat)
    result: dict[str, Any] = {"status": "ok", **_common.summarise(times),
                              "extra_mib": mem.extra / _common.MiB, "memory_reset": mem.reset}
    if linear:
        result["nll"] = _linear_nll(name, out, z, y)
    else:
        result["temperature"] = out
    _common.emit_result(result)


# ============================================================================ parent
def run(cases: list[tuple[int, int]], repeat: int, python: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="trueprob-bench-fit-") as tmp:
        for n, k in cases:
            path = make_case(Path(tmp), n, k, seed=n + k)
            z = np.load(path / "logits.npy", mmap_mode="r")
            y = np.load(path / "labels.npy")
            peers = TEMPERATURE_PEERS + (LINEAR_PEERS if k <= 10 else [])
            for peer in peers:
                module = NEEDS.get(peer)
                if module and not _common.module_available(module):
                    rows.append({"case": f"{n}x{k}", "peer": peer, "status": "not installed"})
                    continue
                res = _common.run_worker([__file__, "--worker", peer, "--data", str(path),
                                          "--repeat", str(repeat)], timeout=WORKER_TIMEOUT,
                                         python=python)
                res.update(case=f"{n}x{k}", peer=peer)
                if res.get("status") == "ok" and "temperature" in res:
                    res["nll"] = nll_at(z, y, res["temperature"])
                rows.append(res)
                print(_row_text(res), file=sys.stderr, flush=True)
    _add_ratios(rows)
    return rows


def _add_ratios(rows: list[dict[str, Any]]) -> None:
    """peer time / trueprob time (temperature peers vs trueprob, linear peers vs theirs)."""
    for row in rows:
        if row.get("status") != "ok":
            continue
        ref_name = "trueprob"
        if row["peer"].endswith("matrix"):
            ref_name = "trueprob-matrix"
        elif row["peer"].endswith("dirichlet"):
            ref_name = "trueprob-dirichlet"
        ref = next((r for r in rows if r["case"] == row["case"] and r["peer"] == ref_name
                    and r.get("status") == "ok"), None)
        if ref is not None:
            row["ratio"] = row["time_min"] / ref["time_min"]
            row["nll_minus_ours"] = row["nll"] - ref["nll"]


def _row_text(r: dict[str, Any]) -> str:
    if r.get("status") != "ok":
        return f"{r['case']:>12} {r['peer']:<22} {r.get('status')}: {r.get('reason', '')}"
    t = r.get("temperature")
    return (f"{r['case']:>12} {r['peer']:<22} {r['time_min']:9.3f}s  "
            f"T={'' if t is None else f'{t:.12g}':<16} nll={r['nll']:.12f} "
            f"extra={r['extra_mib']:.0f}MiB")


def table(rows: list[dict[str, Any]]) -> str:
    headers = ["case", "library", "time_min_s", "peer/ours", "T", "final NLL",
               "NLL - ours", "extra MiB"]
    out = []
    for r in rows:
        if r.get("status") != "ok":
            out.append([r["case"], r["peer"], r.get("status"), None, None,
                        r.get("reason", "")[:60], None, None])
            continue
        t = r.get("temperature")
        out.append([r["case"], r["peer"], f"{r['time_min']:.3f}",
                    f"{r['ratio']:.1f}x" if "ratio" in r else None,
                    None if t is None else f"{t:.10g}", f"{r['nll']:.10f}",
                    f"{r['nll_minus_ours']:.2e}" if "nll_minus_ours" in r else None,
                    f"{r['extra_mib']:.0f}"])
    return _common.format_table(headers, out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small inputs, one repeat")
    parser.add_argument("--repeat", type=int, default=None, help="timed calls per library")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    repeat = args.repeat or (1 if args.quick else 3)
    if args.worker:
        worker(args.worker, args.data, repeat)
        return 0
    cases = [(20_000, 10), (5_000, 100)] if args.quick else [(1_000_000, 10), (50_000, 1000)]
    rows = run(cases, repeat, sys.executable)
    print(json.dumps(_common.machine_info()))
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps({"machine": _common.machine_info(), "rows": rows},
                                        indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
