"""Device check of ``trueprob.torch.CalibrationAccumulator``, in one go: CUDA if present, else CPU.

Prints one JSON object (and writes it to ``--out`` if given) with:

- ``equality``: for float32 and float64 logits, the accumulator fed random-size batches on the
  device against ``trueprob.evaluate`` on the concatenated numpy arrays (and, on CUDA, against
  the same accumulator on the CPU): the largest absolute and relative difference over every
  float field of the Report, and whether every integer field (row and bin counts) is equal;
- ``sync``: whether ``update`` synchronises the host with the device. On CUDA the update calls
  run under ``torch.cuda.set_sync_debug_mode("error")`` (the verdict) and again under
  ``"warn"`` to list every synchronising line; on every device a ``TorchFunctionMode`` also
  lists the calls that read a value to the host or copy host data to the device;
- ``overhead``: per-batch time of the forward pass of a small MLP (no grad), of a training
  step (forward, backward, SGD step), of ``update`` alone, and of forward + ``update``; the
  overhead of ``update`` relative to the forward pass and to the training step. Each figure is
  the median over ``--repeats`` runs of ``--steps`` batches, with ``torch.cuda.synchronize()``
  only before and after each timed run (on the CPU also in process CPU time).

    python bench/torch_gpu_check.py                 # CUDA if available
    python bench/torch_gpu_check.py --device cpu --quick
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

import trueprob
from trueprob.torch import CalibrationAccumulator

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info


# ---------------------------------------------------------------------------- data
def make_logits(n: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Over-confident logits (scale 2.5) and labels drawn from softmax(z / 2.5)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, k)) * 2.0
    q = np.exp(z - z.max(1, keepdims=True))
    q /= q.sum(1, keepdims=True)
    y = np.minimum((q.cumsum(1) < rng.random(n)[:, None]).sum(1), k - 1)
    return z * 2.5, y.astype(np.int64)


def batch_slices(n: int, largest: int, seed: int) -> list[slice]:
    rng = np.random.default_rng(seed)
    out, start = [], 0
    while start < n:
        size = int(rng.integers(1, largest + 1))
        out.append(slice(start, min(n, start + size)))
        start += size
    return out


def flat(report: trueprob.Report) -> dict[str, Any]:
    """Report fields by path; NaN kept as float."""
    out: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}", v)
        elif isinstance(value, (list, tuple)):
            for i, v in enumerate(value):
                walk(f"{prefix}[{i}]", v)
        else:
            out[prefix] = value

    d = report.to_dict()
    d["bins"] = [{k: getattr(b, k) for k in ("weight", "count", "confidence", "accuracy")}
                 for b in report.bins]
    walk("", d)
    return out


def compare(got: trueprob.Report, want: trueprob.Report) -> dict[str, Any]:
    a, b = flat(got), flat(want)
    worst_abs = worst_rel = worst_scaled = 0.0
    where_abs = ""
    int_mismatch = []
    for key in sorted(set(a) | set(b)):
        x, y = a.get(key), b.get(key)
        if isinstance(y, float) and isinstance(x, float):
            if math.isnan(x) and math.isnan(y):
                continue
            diff = abs(x - y)
            if diff > worst_abs:
                worst_abs, where_abs = diff, key
            if y != 0:
                worst_rel = max(worst_rel, diff / abs(y))
            worst_scaled = max(worst_scaled, diff / (1.0 + abs(y)))
        elif x != y:
            int_mismatch.append(key)
    return {"max_abs_diff": worst_abs, "max_abs_diff_at": where_abs,
            "max_rel_diff": worst_rel, "max_diff_over_1_plus_value": worst_scaled,
            "exact_fields_differing": int_mismatch}


def check_equality(dev: torch.device, n: int, k: int, seed: int) -> dict[str, Any]:
    z, y = make_logits(n, k, seed)
    slices = batch_slices(n, 1024, seed + 1)
    out: dict[str, Any] = {"rows": n, "classes": k, "batches": len(slices)}
    for name, np_dtype, tol in (("float64", np.float64, 1e-10), ("float32", np.float32, 1e-5)):
        zd = z.astype(np_dtype)
        want = trueprob.evaluate(y, logits=zd)
        per: dict[str, Any] = {}
        for where in ([dev, torch.device("cpu")] if dev.type != "cpu" else [dev]):
            acc = CalibrationAccumulator(k, device=where)
            zt = torch.from_numpy(zd).to(where)
            yt = torch.from_numpy(y).to(where)
            for sl in slices:
                acc.update(zt[sl], yt[sl])
            got = acc.compute()
            cmp = compare(got, want)
            # pass: every exact field (row and bin counts) equal and every float within
            # tol * (1 + |value|). float32 rows may round differently on another device; a
            # confidence on a bin edge then changes bins, which the exact fields show.
            cmp["pass"] = (not cmp["exact_fields_differing"]
                           and cmp["max_diff_over_1_plus_value"] <= tol)
            cmp["ece"], cmp["nll"] = got.ece, got.nll
            per[str(where)] = cmp
        if dev.type != "cpu":
            on_dev = CalibrationAccumulator(k, device=dev)
            on_cpu = CalibrationAccumulator(k)
            zt = torch.from_numpy(zd)
            yt = torch.from_numpy(y)
            for sl in slices:
                on_dev.update(zt[sl].to(dev), yt[sl].to(dev))
                on_cpu.update(zt[sl], yt[sl])
            per["device_vs_cpu_accumulator"] = compare(on_dev.compute(), on_cpu.compute())
        per["reference"] = {"ece": want.ece, "nll": want.nll}
        out[name] = per
    return out


# ---------------------------------------------------------------------------- sync
class HostSyncProbe(torch.overrides.TorchFunctionMode):
    """Calls that read a value back to the host or copy host data to the device."""

    READS: ClassVar[set[str]] = {
        "item", "tolist", "numpy", "cpu", "__bool__", "__int__", "__float__", "__index__",
        "nonzero", "argwhere", "bincount", "unique", "masked_select", "repeat_interleave"
    }
    FROM_HOST: ClassVar[set[str]] = {"tensor", "asarray", "as_tensor", "from_numpy"}

    def __init__(self) -> None:
        super().__init__()
        self.calls: set[str] = set()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if name in self.READS or (name in self.FROM_HOST and args
                                  and not isinstance(args[0], torch.Tensor)):
            self.calls.add(f"{name} at {trueprob_line(traceback.extract_stack())}")
        return func(*args, **(kwargs or {}))


PACKAGE = Path(trueprob.__file__).resolve().parent


def trueprob_line(stack: list[traceback.FrameSummary]) -> str:
    """The innermost frame in the trueprob package, as ``trueprob/<module>.py:<line>``."""
    for frame in reversed(stack):
        path = Path(frame.filename).resolve()
        if path.is_relative_to(PACKAGE):
            return f"trueprob/{path.relative_to(PACKAGE).as_posix()}:{frame.lineno}"
    return "outside trueprob"


def sync_inputs(dev: torch.device, k: int, seed: int) -> list[tuple[str, Callable[[Any], Any]]]:
    g = torch.Generator(device="cpu").manual_seed(seed)
    z = torch.randn(256, k, generator=g).to(dev)
    y = torch.randint(0, k, (256,), generator=g).to(dev)
    w = torch.rand(256, generator=g, dtype=torch.float64).to(dev)
    soft = torch.softmax(torch.randn(256, k, generator=g), 1).to(dev)
    zb = z.to(torch.bfloat16)
    return [("labels", lambda acc: acc.update(z, y)),
            ("labels+sample_weight", lambda acc: acc.update(z, y, sample_weight=w)),
            ("soft targets", lambda acc: acc.update(z, targets=soft)),
            ("bfloat16 logits", lambda acc: acc.update(zb, y))]


def check_sync(dev: torch.device, k: int, seed: int) -> dict[str, Any]:
    cases = sync_inputs(dev, k, seed)
    acc = CalibrationAccumulator(k, device=dev)
    for _, call in cases:  # warm-up: lazy imports and allocator pools
        call(acc)
    out: dict[str, Any] = {}
    probe = HostSyncProbe()
    with probe:
        for _, call in cases:
            call(acc)
    out["probe_host_reads_and_copies"] = sorted(probe.calls)
    if dev.type != "cuda":
        out["cuda_sync_debug_mode"] = "not run: torch.cuda.set_sync_debug_mode needs CUDA"
        return out
    torch.cuda.synchronize()
    verdict: dict[str, Any] = {}
    for label, call in cases:
        torch.cuda.set_sync_debug_mode("error")
        try:
            call(acc)
            verdict[label] = "no synchronisation"
        except RuntimeError as exc:
            verdict[label] = (f"{str(exc).splitlines()[0]} at "
                              f"{trueprob_line(traceback.extract_tb(exc.__traceback__))}")
        finally:
            torch.cuda.set_sync_debug_mode("default")
    out["cuda_sync_debug_mode_error"] = verdict
    out["no_sync"] = all(v == "no synchronisation" for v in verdict.values())
    sites: set[str] = set()

    def note_site(message: Any, *_: Any, **__: Any) -> None:
        # called while the op that warns is on the stack: name the trueprob line
        if "synchroniz" in str(message):
            sites.add(trueprob_line(traceback.extract_stack()))

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = note_site
        torch.cuda.set_sync_debug_mode("warn")
        try:
            for _, call in cases:
                call(acc)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    out["cuda_sync_warning_sites"] = sorted(sites)
    return out


# ---------------------------------------------------------------------------- timing
def median_time(fn: Callable[[], Any], steps: int, repeats: int, dev: torch.device,
                clock: Callable[[], float] = time.perf_counter) -> float:
    """Median over ``repeats`` of (time of ``steps`` calls) / steps, synchronised around."""
    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(max(3, steps // 5)):
        fn()
    runs = []
    for _ in range(repeats):
        sync()
        start = clock()
        for _ in range(steps):
            fn()
        sync()
        runs.append((clock() - start) / steps)
    return statistics.median(runs)


def check_overhead(dev: torch.device, k: int, batch: int, features: int, hidden: int,
                   steps: int, repeats: int, seed: int) -> dict[str, Any]:
    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Linear(features, hidden), torch.nn.ReLU(),
        torch.nn.Linear(hidden, hidden), torch.nn.ReLU(),
        torch.nn.Linear(hidden, k)).to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    x = torch.randn(batch, features, device=dev)
    y = torch.randint(0, k, (batch,), device=dev)
    acc = CalibrationAccumulator(k, device=dev)
    with torch.no_grad():
        logits = model(x)

    def forward() -> None:
        with torch.no_grad():
            model(x)

    def update() -> None:
        acc.update(logits, y)

    def forward_update() -> None:
        with torch.no_grad():
            acc.update(model(x), y)

    def train_step() -> Any:
        opt.zero_grad(set_to_none=True)
        out = model(x)
        torch.nn.functional.cross_entropy(out, y).backward()
        opt.step()
        return out

    def train_step_update() -> None:
        out = train_step()
        acc.update(out, y)

    fns = (("forward", forward), ("update", update), ("forward+update", forward_update),
           ("train_step", train_step), ("train_step+update", train_step_update))
    # wall-clock time; on the CPU also this process's CPU time, which other processes on a
    # shared machine disturb less
    clocks = {"ms_per_batch": time.perf_counter}
    if dev.type == "cpu":
        clocks["cpu_ms_per_batch"] = time.process_time
    out: dict[str, Any] = {"batch": batch, "classes": k,
                           "mlp": f"{features}-{hidden}-{hidden}-{k}", "steps": steps,
                           "repeats": repeats}
    for label, clock in clocks.items():
        t = {name: median_time(fn, steps, repeats, dev, clock) for name, fn in fns}
        out[label] = {name: v * 1e3 for name, v in t.items()}
        out[label.replace("ms_per_batch", "ratios")] = {
            "update_over_forward": t["update"] / t["forward"],
            "added_to_forward": (t["forward+update"] - t["forward"]) / t["forward"],
            "added_to_train_step": (t["train_step+update"] - t["train_step"]) / t["train_step"],
        }
    return out


# ---------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda")
    parser.add_argument("--rows", type=int, default=50_000, help="rows of the equality check")
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--features", type=int, default=512)
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true",
                        help="small sizes (rows 5,000, 30 steps x 3 repeats)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args(argv)
    if args.quick:
        args.rows, args.steps, args.repeats = 5_000, 30, 3
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    name = args.device
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(name)
    result: dict[str, Any] = {
        "device": str(dev),
        "device_name": (torch.cuda.get_device_name(dev) if dev.type == "cuda"
                        else "cpu"),
        "torch": torch.__version__, "trueprob": trueprob.__version__,
        "machine": machine_info(), "threads": torch.get_num_threads(),
    }
    result["equality"] = check_equality(dev, args.rows, args.classes, args.seed)
    result["sync"] = check_sync(dev, args.classes, args.seed)
    result["overhead"] = check_overhead(dev, args.classes, args.batch, args.features,
                                        args.hidden, args.steps, args.repeats, args.seed)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out is not None:
        from trueprob.io import atomic_write

        with atomic_write(args.out, force=True, mode="w") as fh:
            fh.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
