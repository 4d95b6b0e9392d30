"""Benchmark at scale: one report over a Parquet dataset too big to want in memory.

Generates a seeded Parquet dataset (default 20,000,000 rows x 10 classes of float32 logits,
one column per class, in shards of 1,000,000 rows) under a temporary folder, then runs, each
in its own process under ``/usr/bin/time -v`` (peak RSS, wall time):

- ``stream``: ``trueprob.streaming.evaluate_path`` (what ``trueprob evaluate`` runs on a
  dataset), one process, batches of 65,536 rows;
- ``dask``: ``trueprob.dask.evaluate`` on a LocalCluster of 2 worker processes (1 thread
  each); the RSS is that of the largest single process;
- ``memory``: every row read into numpy, then ``trueprob.evaluate`` (the in-memory result);
- ``torchmetrics``: ``MulticlassCalibrationError`` (l1, 15 bins) updated with the same
  batches (softmax in torch), in the peers' environment. Its state keeps every confidence
  and correctness, so its memory grows with N; trueprob's state does not.

Each run is made on a subsample (the first shard) and on the whole dataset. The report lists
peak RSS, wall time, rows/second, and the largest relative difference of every field of the
stream / dask / memory reports (they must agree to floating-point rounding). On the
subsample, the temperature fitted by streaming passes, by Dask map-reduce and in memory is
compared too.

Run it (trueprob's workers use this interpreter; torchmetrics runs in the peers' one)::

    .venv/bin/python bench/scale.py --json bench-scale.json          # 20M x 10, minutes
    .venv/bin/python bench/scale.py --quick                          # 400k x 10, seconds
    .venv/bin/python bench/scale.py --rows 5000000 --keep            # keep the data

The dataset is deleted at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common

REPO = Path(__file__).resolve().parents[1]
PEER_PYTHON = "/work/bench-venv/bin/python"
BATCH_ROWS = 1 << 16
ROW_GROUP = 1 << 17
#: the issue's target for one process over the whole dataset
TARGET_RSS_MIB = 1024.0
OPTIONS = {"logits": "logit_*", "labels": "y"}


# ============================================================================ data
def generate(folder: Path, rows: int, classes: int, shard_rows: int, seed: int) -> list[Path]:
    """Seeded shards: logits z = 1.5 u with u ~ N(0, 2^2) per class, label ~ softmax(u).

    The model is over-confident by a temperature of 1.5. Labels are drawn with the Gumbel-max
    trick (argmax of u + Gumbel noise is distributed as softmax(u)). Each shard is made and
    written alone, so generation memory is one shard.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, start in enumerate(range(0, rows, shard_rows)):
        n = min(shard_rows, rows - start)
        rng = np.random.default_rng([seed, i])
        u = rng.standard_normal((n, classes), dtype=np.float32) * np.float32(2.0)
        gumbel = -np.log(-np.log(rng.random((n, classes), dtype=np.float32) + 1e-30) + 1e-30)
        y = np.argmax(u + gumbel, axis=1).astype(np.int64)
        z = u * np.float32(1.5)
        table = pa.table({**{f"logit_{j}": z[:, j] for j in range(classes)}, "y": y})
        path = folder / f"part-{i:04d}.parquet"
        pq.write_table(table, path, row_group_size=ROW_GROUP)
        paths.append(path)
    return paths


# ============================================================================ workers
def worker(kind: str, path: str, fit: bool) -> None:
    """One measured run (in its own process): prints a result line for the parent."""
    # imports first, so that the call's time is the work (the process time has both)
    import pyarrow.parquet  # noqa: F401

    import trueprob.core.rows
    import trueprob.io.parquet_format
    import trueprob.streaming

    start = time.perf_counter()
    out: dict[str, Any] = {"kind": kind}
    if kind == "stream":
        from trueprob import streaming

        report = streaming.evaluate_path(path, **OPTIONS, batch_rows=BATCH_ROWS)
        out["seconds"] = time.perf_counter() - start
        if fit:
            t = time.perf_counter()
            ts = streaming.fit_temperature_path(path, **OPTIONS, batch_rows=BATCH_ROWS)
            out["fit"] = _fit_summary(ts, time.perf_counter() - t)
    elif kind == "dask":
        import trueprob.dask as tpd

        with tpd.cluster_client(local="local:2") as client:
            out["cluster_seconds"] = time.perf_counter() - start
            start = time.perf_counter()
            report = tpd.evaluate(path, **OPTIONS, batch_rows=BATCH_ROWS, client=client)
            out["seconds"] = time.perf_counter() - start
            if fit:
                t = time.perf_counter()
                ts = tpd.fit_temperature(path, **OPTIONS, batch_rows=BATCH_ROWS, client=client)
                out["fit"] = _fit_summary(ts, time.perf_counter() - t)
    elif kind == "memory":
        import trueprob
        from trueprob.streaming import dataset_files

        parts = [_read_whole(f) for f in dataset_files(path)]
        z = np.concatenate([p[0] for p in parts]) if len(parts) > 1 else parts[0][0]
        y = np.concatenate([p[1] for p in parts]) if len(parts) > 1 else parts[0][1]
        del parts
        out["read_seconds"] = time.perf_counter() - start
        start = time.perf_counter()
        report = trueprob.evaluate(y, logits=z)
        out["seconds"] = time.perf_counter() - start
        if fit:
            from trueprob.calibrators.temperature import TemperatureScaling

            t = time.perf_counter()
            ts = TemperatureScaling().fit(y, logits=z)
            out["fit"] = _fit_summary(ts, time.perf_counter() - t)
    elif kind == "torchmetrics":
        out.update(_torchmetrics(path))
        _common.emit_result(out)
        return
    else:
        raise SystemExit(f"unknown worker {kind!r}")
    out["report"] = report.to_dict()
    out["rows"] = report.n
    _common.emit_result(out)


def _read_whole(path: Path) -> tuple[np.ndarray, np.ndarray]:
    from trueprob.io import read_inputs

    arrays = read_inputs(path, **OPTIONS)
    return np.ascontiguousarray(arrays["logits"]), arrays["labels"]


def _fit_summary(ts: Any, seconds: float) -> dict[str, Any]:
    return {"temperature": ts.temperature_, "nll_after": ts.nll_after_,
            "passes": ts.n_iter_, "seconds": seconds}


def _torchmetrics(path: str) -> dict[str, Any]:
    """MulticlassCalibrationError (l1, 15 bins) fed trueprob's batches, softmax in torch."""
    import torch
    from torchmetrics.classification import MulticlassCalibrationError

    from trueprob.streaming import iter_batches

    torch.set_num_threads(1)
    metric = None
    rows = 0
    start = time.perf_counter()
    for _, _, batch in iter_batches(path, **OPTIONS, batch_rows=BATCH_ROWS):
        z = torch.from_numpy(batch["logits"])
        if metric is None:
            metric = MulticlassCalibrationError(num_classes=z.shape[1], n_bins=15, norm="l1")
        metric.update(torch.softmax(z, dim=1), torch.from_numpy(batch["labels"]))
        rows += z.shape[0]
    assert metric is not None
    ece = float(metric.compute())
    import torchmetrics

    return {"seconds": time.perf_counter() - start, "rows": rows, "ece": ece,
            "version": torchmetrics.__version__}


# ============================================================================ parent
def measure(python: str, kind: str, path: Path, fit: bool, timeout: float) -> dict[str, Any]:
    """Run a worker under /usr/bin/time -v; its result with peak RSS and wall time."""
    cmd = ["/usr/bin/time", "-v", python, str(Path(__file__).resolve()), "--worker", kind,
           "--path", str(path)] + (["--fit"] if fit else [])
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False,
                              env=env)
    except subprocess.TimeoutExpired:
        return {"kind": kind, "status": "error", "reason": f"timed out after {timeout:g} s"}
    result: dict[str, Any] | None = None
    for line in proc.stdout.splitlines():
        if line.startswith(_common.RESULT_MARK):
            result = json.loads(line[len(_common.RESULT_MARK):])
    if result is None:
        tail = " | ".join(proc.stderr.strip().splitlines()[-4:])
        return {"kind": kind, "status": "error", "reason": f"exit {proc.returncode}: {tail}"}
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", proc.stderr)
    result["status"] = "ok"
    result["max_rss_mib"] = int(rss.group(1)) / 1024 if rss else None
    result["elapsed_seconds"] = _seconds(wall.group(1)) if wall else None
    if result.get("rows") and result.get("seconds"):
        result["rows_per_second"] = result["rows"] / result["seconds"]
    return result


def _seconds(text: str) -> float:
    total = 0.0
    for part in text.split(":"):
        total = total * 60 + float(part)
    return total


def max_relative_difference(a: Any, b: Any) -> float:
    """Largest |x - y| / max(|x|, |y|) over every number of two report dicts (0 if equal);
    inf when non-numbers differ."""
    if isinstance(a, dict):
        if a.keys() != b.keys():
            return math.inf
        return max((max_relative_difference(a[k], b[k]) for k in a), default=0.0)
    if isinstance(a, list):
        if len(a) != len(b):
            return math.inf
        return max((max_relative_difference(x, y) for x, y in zip(a, b, strict=True)),
                   default=0.0)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) \
            and not isinstance(a, bool):
        if a == b:
            return 0.0
        return abs(a - b) / max(abs(a), abs(b))
    return 0.0 if a == b else math.inf


def run(args: argparse.Namespace) -> dict[str, Any]:
    rows = 400_000 if args.quick else args.rows
    shard = 200_000 if args.quick else args.shard_rows
    folder = Path(args.data or tempfile.mkdtemp(prefix="trueprob-scale-", dir="/tmp"))
    out: dict[str, Any] = {"rows": rows, "classes": args.classes, "shard_rows": shard,
                           "machine": _common.machine_info(),
                           "versions": {"trueprob": _version(), "dask": _common.version_of(
                               "dask"), "pyarrow": _common.version_of("pyarrow")}}
    try:
        t = time.perf_counter()
        files = generate(folder, rows, args.classes, shard, args.seed)
        out["generate_seconds"] = time.perf_counter() - t
        out["dataset_bytes"] = sum(f.stat().st_size for f in files)
        targets = {"subsample": files[0], "whole": folder}
        kinds = ["stream", "dask", "memory"]
        peer = None if args.skip_peer or not Path(PEER_PYTHON).exists() else PEER_PYTHON
        for scope, path in targets.items():
            results = {}
            for kind in kinds:
                results[kind] = measure(sys.executable, kind, path, scope == "subsample",
                                        args.timeout)
                _say(scope, results[kind])
            if peer is not None:
                results["torchmetrics"] = measure(peer, "torchmetrics", path, False,
                                                  args.timeout)
                _say(scope, results["torchmetrics"])
            out[scope] = results
            out[f"{scope}_agreement"] = _agreement(results)
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
        else:
            out["data"] = str(folder)
    return out


def _version() -> str:
    sys.path.insert(0, str(REPO / "src"))
    from trueprob import __version__

    return __version__


def _agreement(results: dict[str, Any]) -> dict[str, Any]:
    ok = {k: v for k, v in results.items() if v.get("status") == "ok" and "report" in v}
    agree: dict[str, Any] = {}
    names = sorted(ok)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            agree[f"{a} vs {b}"] = max_relative_difference(ok[a]["report"], ok[b]["report"])
    fits = {k: v["fit"] for k, v in ok.items() if "fit" in v}
    if "memory" in fits:
        ref = fits["memory"]["temperature"]
        for k, f in fits.items():
            agree[f"temperature {k} vs memory"] = abs(f["temperature"] - ref) / ref
    tm = results.get("torchmetrics", {})
    if tm.get("status") == "ok" and "stream" in ok:
        agree["ece torchmetrics - trueprob"] = tm["ece"] - ok["stream"]["report"]["ece"]
    return agree


def _say(scope: str, r: dict[str, Any]) -> None:
    if r.get("status") != "ok":
        print(f"{scope:9s} {r['kind']:12s} ERROR {r.get('reason')}", file=sys.stderr)
        return
    rate = r.get("rows_per_second")
    print(f"{scope:9s} {r['kind']:12s} rss {r['max_rss_mib']:8.1f} MiB  call "
          f"{r['seconds']:7.2f} s  {'' if rate is None else f'{rate / 1e6:6.2f} M rows/s'}",
          file=sys.stderr)


def table(out: dict[str, Any]) -> str:
    rows = []
    for scope in ("subsample", "whole"):
        for kind, r in out.get(scope, {}).items():
            if r.get("status") != "ok":
                rows.append([scope, kind, "error", "", "", "", r.get("reason", "")])
                continue
            rate = r.get("rows_per_second")
            rows.append([scope, kind, f"{r['max_rss_mib']:.0f}", f"{r['seconds']:.2f}",
                         f"{r['elapsed_seconds']:.1f}",
                         "" if rate is None else f"{rate / 1e6:.2f}",
                         f"ece={r['report']['ece']:.6f}" if "report" in r
                         else f"ece={r['ece']:.6f} (torchmetrics {r.get('version')})"])
    text = _common.format_table(
        ["scope", "run", "max RSS MiB", "call s", "process s", "M rows/s", "note"], rows)
    lines = [text, ""]
    for scope in ("subsample", "whole"):
        for pair, diff in out.get(f"{scope}_agreement", {}).items():
            lines.append(f"{scope}: {pair}: {diff:.3g}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=20_000_000)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--shard-rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="400k rows: a smoke run")
    parser.add_argument("--data", help="folder for the dataset (default: a new one in /tmp)")
    parser.add_argument("--keep", action="store_true", help="keep the generated dataset")
    parser.add_argument("--skip-peer", action="store_true", help="no torchmetrics run")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per run")
    parser.add_argument("--json", help="write every number here")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--fit", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.path, args.fit)
        return 0
    out = run(args)
    print(table(out))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    bad = [k for scope in ("subsample", "whole")
           for k, v in out.get(f"{scope}_agreement", {}).items()
           if not k.startswith("ece torchmetrics") and not v < 1e-9]
    whole = out.get("whole", {}).get("stream", {})
    over = whole.get("max_rss_mib") is not None and whole["max_rss_mib"] > TARGET_RSS_MIB
    if bad:
        print(f"MISMATCH: {bad}", file=sys.stderr)
    if over:
        print(f"stream peak RSS {whole['max_rss_mib']:.0f} MiB exceeds {TARGET_RSS_MIB:.0f}",
              file=sys.stderr)
    return 1 if bad or over else 0


if __name__ == "__main__":
    sys.exit(main())
