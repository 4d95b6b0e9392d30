"""Benchmark: smooth ECE against relplot and torch-uncertainty, side by side; SKCE at scale.

In one run, on the same seeded synthetic probabilities (N x 10, float64, over-confident:
q = softmax(1.5 u), labels drawn from softmax(u)), for N = 10^4, 10^5, 10^6:

- ``trueprob exact``: ``smooth_ece(y, probs=q, n_grid=None)`` (cosine moments of every row);
- ``trueprob grid``: ``smooth_ece(y, probs=q)`` (the 2**16-cell bounded-memory state);
- ``relplot``: ``relplot.multiclass_logits_to_confidences(q, y, probs=True)`` then
  ``relplot.metrics.smECE(f, y)`` (relplot 1.0.3, default configuration);
- ``torch-uncertainty``: ``SmoothCalibrationError(kernel_type="reflected")`` (the kernel of
  the paper and relplot) ``.update(torch.from_numpy(q32), torch.from_numpy(y)); .compute()``
  (float32: its grid is float32 and refuses float64 probabilities);
  and its default ``kernel_type="logit"``, a different kernel (another number, shown for
  reference). torch-uncertainty's package ``__init__`` imports ``lightning``, which the bench
  environment lacks; the two modules of its smooth calibration error import only torch and
  torchmetrics, so they are loaded from its installed files.

Each library starts from the same probabilities; times are the minimum of ``--repeat`` calls
after one warm-up call on 1000 rows. "x relplot" = relplot's time / this time (above 1: faster
than relplot). "diff" = value - trueprob exact.

Then SKCE (Widmann et al. 2019) on N = 10^6 x 10: the linear and block (B = 16) estimators
with their normal tests, and the unbiased estimator with its bootstrap test on N = 2000 and
5000 (O(N^2 (K + B)); B = 200 resamples).

    /work/bench-venv/bin/python bench/inference_smooth.py               # ~3-6 min
    /work/bench-venv/bin/python bench/inference_smooth.py --quick       # seconds
    /work/bench-venv/bin/python bench/inference_smooth.py --json out.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import format_table, machine_info, time_calls, version_of


def make_case(n: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    u = rng.normal(size=(n, k)) * 1.5
    p = np.exp(u - u.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    y = np.minimum((p.cumsum(1) < rng.random((n, 1))).sum(1), k - 1)
    z = 1.5 * u
    q = np.exp(z - z.max(1, keepdims=True))
    q /= q.sum(1, keepdims=True)
    return q, y.astype(np.int64)


def load_torch_uncertainty() -> tuple[Any, str]:
    """torch-uncertainty's SmoothCalibrationError, or (None, why not)."""
    version = version_of("torch-uncertainty") or version_of("torch_uncertainty")
    if version is None:
        return None, "not installed"
    spec = importlib.util.find_spec("torch_uncertainty")
    if spec is None or not spec.submodule_search_locations:
        return None, "not importable"
    base = Path(next(iter(spec.submodule_search_locations))) / "metrics" / "classification" \
        / "calibration"
    package = types.ModuleType("_tu_calibration")
    package.__path__ = [str(base)]
    sys.modules["_tu_calibration"] = package
    try:
        for name in ("smooth_calibration_kernels", "smooth_calibration_error"):
            mod_spec = importlib.util.spec_from_file_location(f"_tu_calibration.{name}",
                                                              base / f"{name}.py")
            assert mod_spec is not None and mod_spec.loader is not None
            module = importlib.util.module_from_spec(mod_spec)
            sys.modules[mod_spec.name] = module
            mod_spec.loader.exec_module(module)
    except Exception as exc:  # report, do not fail the whole benchmark
        return None, f"cannot import: {type(exc).__name__}: {exc}"
    return sys.modules["_tu_calibration.smooth_calibration_error"].SmoothCalibrationError, \
        version


def smooth_calls(q: np.ndarray, y: np.ndarray, tu: Any) -> dict[str, Callable[[], float]]:
    from trueprob.metrics.smooth import smooth_ece

    calls: dict[str, Callable[[], float]] = {
        "trueprob exact": lambda: smooth_ece(y, probs=q, n_grid=None),
        "trueprob grid": lambda: smooth_ece(y, probs=q),
    }
    try:
        import relplot
        from relplot.metrics import smECE

        def run_relplot() -> float:
            f, o = relplot.multiclass_logits_to_confidences(q, y, probs=True)
            return float(smECE(f, o))

        calls["relplot"] = run_relplot
    except ImportError:
        pass
    if tu is not None:
        import torch

        # its grid is float32 (torch.zeros default) and index_add_ refuses float64 sources
        qt, yt = torch.from_numpy(q.astype(np.float32)), torch.from_numpy(y)

        def make(kernel: str) -> Callable[[], float]:
            def run() -> float:
                metric = tu(kernel_type=kernel)
                metric.update(qt, yt)
                return float(metric.compute())
            return run

        calls["torch-uncertainty reflected"] = make("reflected")
        calls["torch-uncertainty logit"] = make("logit")
    return calls


def bench_smooth(sizes: list[int], k: int, repeat: int, seed: int) -> list[dict[str, Any]]:
    tu, tu_note = load_torch_uncertainty()
    print(f"torch-uncertainty: {tu_note if tu is None else tu_note + ' (modules loaded)'}",
          file=sys.stderr)
    warm_q, warm_y = make_case(1000, k, seed)
    for fn in smooth_calls(warm_q, warm_y, tu).values():
        fn()
    rows = []
    for n in sizes:
        q, y = make_case(n, k, seed)
        results = {}
        for name, fn in smooth_calls(q, y, tu).items():
            reps = 1 if (name == "trueprob exact" and n >= 10**6) else repeat
            value = fn()
            times = time_calls(fn, reps)
            results[name] = (value, min(times))
            print(f"N={n:>8} {name:28s} {value:.6f} {min(times):8.3f} s", file=sys.stderr)
        exact = results["trueprob exact"][0]
        ref_time = results.get("relplot", (None, None))[1]
        for name, (value, seconds) in results.items():
            rows.append({"n": n, "library": name, "value": value, "seconds": seconds,
                         "diff": value - exact,
                         "x_relplot": None if ref_time is None else ref_time / seconds})
    if tu is None:
        rows.append({"n": None, "library": "torch-uncertainty", "value": None,
                     "seconds": None, "diff": None, "x_relplot": None, "note": tu_note})
    return rows


def bench_skce(n_large: int, sizes_unbiased: list[int], k: int, seed: int,
               resamples: int) -> list[dict[str, Any]]:
    from trueprob.metrics.skce import skce

    rows = []
    q, y = make_case(n_large, k, seed)
    for est, kw in (("linear", {}), ("block", {"block_size": 16})):
        def fn(est: str = est, kw: dict[str, Any] = kw) -> Any:
            return skce(y, probs=q, estimator=est, **kw)

        r = fn()
        t = min(time_calls(fn, 1))
        rows.append({"n": n_large, "estimator": est, "estimate": r.estimate,
                     "std_error": r.std_error, "p_value": r.p_value, "seconds": t})
        print(f"SKCE {est} N={n_large}: {r.estimate:.3e} p={r.p_value:.2g} {t:.2f} s",
              file=sys.stderr)
    for n in sizes_unbiased:
        q, y = make_case(n, k, seed)

        def run(q: np.ndarray = q, y: np.ndarray = y) -> Any:
            return skce(y, probs=q, n_resamples=resamples, random_state=seed)

        r = run()
        t = min(time_calls(run, 1))
        rows.append({"n": n, "estimator": f"unbiased (B={resamples})", "estimate": r.estimate,
                     "std_error": r.std_error, "p_value": r.p_value, "seconds": t})
        print(f"SKCE unbiased N={n}: {r.estimate:.3e} p={r.p_value:.2g} {t:.2f} s",
              file=sys.stderr)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skce-rows", type=int, default=1_000_000)
    parser.add_argument("--skce-unbiased", default="2000,5000")
    parser.add_argument("--resamples", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="small sizes (seconds)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.repeat, args.skce_rows, args.skce_unbiased = "10000", 1, 20000, "500"
    sizes = [int(s) for s in args.sizes.split(",")]
    smooth = bench_smooth(sizes, args.classes, args.repeat, args.seed)
    skce_rows = bench_skce(args.skce_rows, [int(s) for s in args.skce_unbiased.split(",")],
                           args.classes, args.seed, args.resamples)

    def fmt(x: float | None, spec: str) -> str:
        return "" if x is None else format(x, spec)

    print(f"smooth ECE, top-label, N x {args.classes} float64 probabilities "
          f"(min of {args.repeat}; exact at 10^6: 1 call)")
    print(format_table(
        ["N", "library", "value", "diff", "seconds", "x relplot"],
        [[r["n"], r["library"], fmt(r["value"], ".6f"), fmt(r["diff"], ".1e"),
          fmt(r["seconds"], ".3f"), fmt(r["x_relplot"], ".2f")] for r in smooth]))
    print()
    print("SKCE (exponential kernel, median heuristic)")
    print(format_table(["N", "estimator", "estimate", "std error", "p-value", "seconds"],
                       [[r["n"], r["estimator"], f"{r['estimate']:.3e}",
                         f"{r['std_error']:.1e}", f"{r['p_value']:.2g}",
                         f"{r['seconds']:.2f}"] for r in skce_rows]))
    payload = {"machine": machine_info(), "smooth_ece": smooth, "skce": skce_rows,
               "versions": {name: version_of(name) for name in
                            ("relplot", "torch-uncertainty", "torch", "torchmetrics",
                             "numpy", "scipy")},
               "command": " ".join(sys.argv)}
    if args.json:
        args.json.write_text(json.dumps(payload, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
