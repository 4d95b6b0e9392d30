"""Benchmark: uncertainty on every number, at the cost of a few plain evaluations.

In one run, on the same seeded synthetic float32 logits (N x K):

- ``evaluate``: one plain ``trueprob.evaluate`` (the unit of cost);
- ``bootstrap``: ``trueprob.bootstrap`` with B replicates (default 1000) of the full report,
  from blocked sufficient statistics (target: at most 5x one evaluation for 1,000,000 x 10);
- ``naive``: the textbook bootstrap, resampling rows and calling ``evaluate`` on each replicate,
  timed on a few replicates and extrapolated to B (what the sufficient statistics avoid);
- ``consistency``: the Bröcker & Smith consistency-resampling test of the top-label ECE.

Each measurement runs in its own subprocess (peak RSS over the baseline, see ``_common.py``).

    python bench/inference.py                 # N=1,000,000 x K=10, B=1000
    python bench/inference.py --quick         # seconds
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    emit_result,
    format_table,
    machine_info,
    measure_memory,
    run_worker,
    time_calls,
)


def make_case(n: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    u = rng.normal(size=(n, k)).astype(np.float32) * 2
    q = np.exp(u - u.max(1, keepdims=True))
    q /= q.sum(1, keepdims=True)
    y = (q.cumsum(1) < rng.random((n, 1), dtype=np.float32)).sum(1).clip(0, k - 1)
    return (1.3 * u).astype(np.float32), y.astype(np.int64)


def worker(task: str, n: int, k: int, b: int, seed: int, repeat: int) -> None:
    import trueprob

    z, y = make_case(n, k, seed)
    if task == "evaluate":
        def fn() -> object:
            return trueprob.evaluate(y, logits=z)
    elif task == "bootstrap":
        def fn() -> object:
            return trueprob.bootstrap(y, logits=z, n_replicates=b, random_state=seed)
    elif task == "naive":
        few = 5
        rng = np.random.default_rng(seed)

        def fn() -> object:
            for _ in range(few):
                idx = rng.integers(0, n, size=n)
                trueprob.evaluate(y[idx], logits=z[idx])
            return None
    elif task == "consistency":
        def fn() -> object:
            return trueprob.consistency_test(y, logits=z, n_resamples=b, random_state=seed)
    else:
        raise SystemExit(f"unknown task {task}")
    out, mem = measure_memory(fn)
    times = time_calls(fn, repeat - 1) if repeat > 1 else []
    first = None
    if task == "bootstrap":
        iv = out.intervals  # type: ignore[attr-defined]
        first = {"ece": [iv["ece"].low, iv["ece"].high], "nll": [iv["nll"].low, iv["nll"].high],
                 "n_blocks": out.n_blocks}  # type: ignore[attr-defined]
    t0 = time.perf_counter()
    fn()
    last = time.perf_counter() - t0
    all_times = [*times, last]
    scale = b / 5 if task == "naive" else 1.0
    emit_result({"status": "ok", "task": task, "time": min(all_times) * scale,
                 "extra_rss_mib": mem.extra / 2**20, "detail": first})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--replicates", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--worker", nargs=6, default=None, metavar=("TASK", "N", "K", "B", "SEED",
                                                                "REPEAT"))
    args = ap.parse_args()
    if args.worker:
        task, n, k, b, seed, repeat = args.worker
        worker(task, int(n), int(k), int(b), int(seed), int(repeat))
        return
    if args.quick:
        args.n, args.replicates, args.repeat = 50_000, 200, 1
    results = {}
    for task in ("evaluate", "bootstrap", "naive", "consistency"):
        results[task] = run_worker(
            [__file__, "--worker", task, str(args.n), str(args.k), str(args.replicates),
             str(args.seed), str(args.repeat)], timeout=1800)
    base = results["evaluate"].get("time")
    rows = []
    for task, r in results.items():
        if r.get("status") != "ok":
            rows.append([task, "error", "", "", r.get("reason", "")])
            continue
        note = "extrapolated from 5 replicates" if task == "naive" else ""
        rows.append([task, f"{r['time']:.3f}", f"{r['time'] / base:.2f}",
                     f"{r['extra_rss_mib']:.1f}", note])
    print(f"N={args.n} K={args.k} B={args.replicates}  {machine_info()}")
    print(format_table(["task", "seconds", "x evaluate", "extra MiB", "note"], rows))
    if results["bootstrap"].get("detail"):
        print("bootstrap:", results["bootstrap"]["detail"])
    if args.json:
        args.json.write_text(json.dumps({"args": vars(args) | {"json": str(args.json)},
                                         "machine": machine_info(), "results": results},
                                        indent=1))


if __name__ == "__main__":
    main()
