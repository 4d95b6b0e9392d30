"""Benchmark: ``trueprob.evaluate`` (the whole report, one pass, from logits) against peers.

Times the full report and single metrics of trueprob and, on the same float32 logits and
labels, torchmetrics' ``multiclass_calibration_error`` (l1, 15 bins), scikit-learn's
``log_loss`` and multiclass ``brier_score_loss``, and netcal's ``ECE``; reports peer time /
trueprob time, the extra peak memory of each call over its input, and whether the numbers
agree where the conventions agree (see bench/README.md for what each library does).

Run it with the peers' environment::

    /work/bench-venv/bin/pip install -q --no-deps -e /work/main   # once
    /work/bench-venv/bin/python bench/evaluate.py --json bench-evaluate.json
    /work/bench-venv/bin/python bench/evaluate.py --quick           # a smoke run, seconds
    /work/bench-venv/bin/python bench/evaluate.py --profile         # cProfile of evaluate

A peer that is not installed gives a "not installed" row and the run goes on. Each library
runs in its own subprocess (``--worker``), which loads the saved input, records its RSS,
runs each call once for memory and then ``--repeat`` times for time.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import math
import pstats
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common

N_BINS = 15
#: Per-worker limit (generous: each worker of the full run takes well under a minute).
WORKER_TIMEOUT = 600.0
#: The whole report must be at least as fast as torchmetrics' single ECE, and its peak memory
#: over the input at most this, whatever N (the issue's targets).
TARGET_EXTRA_MIB = 64.0
F32_EPS = float(np.finfo(np.float32).eps)


# ============================================================================ inputs
@dataclass(frozen=True)
class Case:
    """One synthetic input: N x K float32 logits and int64 labels, seeded.

    True logits u_i = g_i + m e_{r_i} (g standard normal, r_i a uniformly drawn class,
    m = ln K + 1.7, which makes the top class right about 3 times in 4); the label is drawn
    from softmax(u_i) (inverse CDF, float64); the model reports z_i = sharpen * u_i, so
    sharpen > 1 makes it over-confident. A fraction ``under`` of the rows instead has
    m = 16 (the label is the top class) and sharpen 0.3 (confidence about 0.94):
    under-confident rows in the top bin. ``purpose`` is "speed" (the issue's targets apply)
    or "conventions" (an input where the libraries' conventions give different numbers).
    """

    name: str
    n: int
    k: int
    sharpen: float
    seed: int
    purpose: str
    under: float = 0.0


def default_cases(
    *, quick: bool, seed: int, sizes: Sequence[tuple[int, int]] | None
) -> list[Case]:
    if sizes is None:
        sizes = [(20_000, 10), (2_000, 1000)] if quick else [(1_000_000, 10), (100_000, 1000)]
    cases = [Case(f"{n}x{k}", n, k, 1.3, seed + i, "speed") for i, (n, k) in enumerate(sizes)]
    # half the rows saturate (c = 1.0 in float32, often wrong), half are under-confident in
    # the top bin: torchmetrics' extra bin for c = 1.0 and scikit-learn's clipping both show
    n_conv = 20_000 if quick else 100_000
    cases.append(Case(f"conventions {n_conv}x10", n_conv, 10, 40.0, seed + 100,
                      "conventions", under=0.5))
    return cases


def parse_sizes(text: str) -> list[tuple[int, int]]:
    sizes = []
    for item in text.split(","):
        try:
            n, k = (int(v) for v in item.lower().split("x"))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"--sizes must look like 1000000x10,100000x1000; got {item!r}") from None
        if n < 1 or k < 2:
            raise argparse.ArgumentTypeError(f"--sizes needs N >= 1 and K >= 2; got {item!r}")
        sizes.append((n, k))
    return sizes


def _chunks(n: int, k: int) -> Iterator[slice]:
    step = max(1, (1 << 20) // k)
    for start in range(0, n, step):
        yield slice(start, min(start + step, n))


def generate(case: Case, folder: Path) -> None:
    """Write ``logits.npy`` (float32, N x K) and ``labels.npy`` (int64) into ``folder``."""
    rng = np.random.default_rng(case.seed)
    n, k = case.n, case.k
    logits = np.lib.format.open_memmap(folder / "logits.npy", mode="w+", dtype=np.float32,
                                       shape=(n, k))
    labels = np.lib.format.open_memmap(folder / "labels.npy", mode="w+", dtype=np.int64,
                                       shape=(n,))
    for rows in _chunks(n, k):
        m = rows.stop - rows.start
        under = rng.random(m) < case.under
        margin = np.where(under, 16.0, math.log(k) + 1.7).astype(np.float32)
        sharpen = np.where(under, 0.3, case.sharpen).astype(np.float32)
        u = rng.standard_normal((m, k), dtype=np.float32)
        u[np.arange(m), rng.integers(0, k, m)] += margin
        # y ~ Cat(softmax(u)) by inverse CDF: the first class whose cumulative weight reaches r
        cdf = np.cumsum(np.exp(u - u.max(axis=1, keepdims=True)), axis=1, dtype=np.float64)
        r = rng.random(m) * cdf[:, -1]
        labels[rows] = np.minimum(np.count_nonzero(cdf < r[:, None], axis=1), k - 1)
        logits[rows] = u * sharpen[:, None]
    logits.flush()
    labels.flush()
    del logits, labels


def load(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    return np.load(folder / "logits.npy"), np.load(folder / "labels.npy")


# ============================================================================ conventions
def conventions(folder: Path, torch_edges: Sequence[float] | None) -> dict[str, Any]:
    """Recompute each library's convention independently, in float64, chunk by chunk.

    Probabilities are q = exp(z - max z) / sum (float32 throughout, as
    ``scipy.special.softmax`` and ``torch.softmax`` compute them); c = max_k q_k.

    - ``ece_spec``: SPEC.md bins (j/B, (j+1)/B], index clip(ceil(B c) - 1, 0, B - 1);
    - ``ece_torchmetrics``: ``torch.bucketize(c, edges, right=True) - 1`` over the float32
      ``torch.linspace(0, 1, B + 1)`` edges: bins [e_j, e_{j+1}) and c = 1.0 alone in an
      extra bin B; per-bin sums in float64 here (torchmetrics sums in float32);
    - ``ece_netcal``: c clipped to [eps, 1 - eps] (float32 eps), bins [e_j, e_{j+1}) over
      ``np.linspace(0, 1, B + 1)`` with the last bin closed (``np.histogramdd``);
    - ``nll_exact``: mean of logsumexp(z) - z_y in float64 (trueprob's definition);
      ``nll_sklearn``: mean of -log(clip(q_y, eps, 1 - eps)) (scikit-learn's clipping);
    - ``brier``: mean of sum_k (q_k - 1[k = y])^2, not divided by K.
    """
    logits = np.load(folder / "logits.npy", mmap_mode="r")
    labels = np.load(folder / "labels.npy", mmap_mode="r")
    n, k = logits.shape
    b = N_BINS
    spec = np.zeros((3, b))
    tm = np.zeros((3, b + 1))
    nc = np.zeros((3, b))
    tm_edges = None if torch_edges is None else np.asarray(torch_edges, dtype=np.float32)
    nc_edges = np.linspace(0.0, 1.0, b + 1)
    counts = {"conf_one": 0, "torchmetrics_other_bin": 0, "clipped_low": 0, "clipped_high": 0}
    nll = nll_sk = brier = 0.0
    for rows in _chunks(n, k):
        z = np.asarray(logits[rows])
        y = np.asarray(labels[rows])
        m = z.shape[0]
        zmax = z.max(axis=1, keepdims=True)
        e = np.exp(z - zmax)
        q = e / e.sum(axis=1, keepdims=True)
        pred = q.argmax(axis=1)
        c = q[np.arange(m), pred]
        hit = (pred == y).astype(np.float64)
        q_y = q[np.arange(m), y]
        c64 = c.astype(np.float64)

        spec_idx = np.clip(np.ceil(c64 * b) - 1, 0, b - 1).astype(np.int64)
        _add_bins(spec, spec_idx, c64, hit)
        if tm_edges is not None:
            tm_idx = np.searchsorted(tm_edges, c, side="right") - 1
            _add_bins(tm, tm_idx, c64, hit)
            counts["torchmetrics_other_bin"] += int(np.count_nonzero((tm_idx != spec_idx)
                                                                     & (c < 1)))
        c_nc = np.clip(c, np.float32(F32_EPS), np.float32(1 - F32_EPS)).astype(np.float64)
        nc_idx = np.clip(np.searchsorted(nc_edges, c_nc, side="right") - 1, 0, b - 1)
        _add_bins(nc, nc_idx, c_nc, hit)
        counts["conf_one"] += int(np.count_nonzero(c == 1))
        counts["clipped_low"] += int(np.count_nonzero(q_y < F32_EPS))
        counts["clipped_high"] += int(np.count_nonzero(q_y > 1 - F32_EPS))

        z64 = z.astype(np.float64)
        zmax64 = z64.max(axis=1)
        lse = zmax64 + np.log(np.exp(z64 - zmax64[:, None]).sum(axis=1))
        nll += float(np.sum(lse - z64[np.arange(m), y]))
        q_y_clip = np.clip(q_y, np.float32(F32_EPS), np.float32(1 - F32_EPS))
        nll_sk += float(-np.sum(np.log(q_y_clip.astype(np.float64))))
        q64 = q.astype(np.float64)
        brier += float(np.sum(np.sum(q64 * q64, axis=1) - 2 * q_y.astype(np.float64) + 1))

    def ece(sums: np.ndarray) -> float:
        return float(np.sum(np.abs(sums[1] - sums[2])) / n)

    return {
        "n": int(n), "k": int(k), **counts,
        "accuracy": float(spec[2].sum() / n),
        "ece_spec": ece(spec),
        "ece_torchmetrics": None if tm_edges is None else ece(tm),
        "ece_netcal": ece(nc),
        "nll_exact": nll / n, "nll_sklearn": nll_sk / n, "brier": brier / n,
        "torch_edges": None if tm_edges is None else [float(v) for v in tm_edges],
    }


def _add_bins(sums: np.ndarray, idx: np.ndarray, conf: np.ndarray, hit: np.ndarray) -> None:
    """Add rows to per-bin (count, confidence sum, correct sum), float64."""
    size = sums.shape[1]
    sums[0] += np.bincount(idx, minlength=size)
    sums[1] += np.bincount(idx, conf, minlength=size)
    sums[2] += np.bincount(idx, hit, minlength=size)


# ============================================================================ workers
def _task(library: str, metric: str, make: Callable[[np.ndarray, np.ndarray], Callable[[], Any]],
          logits: np.ndarray, labels: np.ndarray, repeat: int, *,
          prep: Callable[[], Any] | None = None, trace: bool = False) -> dict[str, Any]:
    """Warm up on a slice, measure memory on one call, then time ``repeat`` calls."""
    out: dict[str, Any] = {"library": library, "metric": metric}
    try:
        make(logits[:1000], labels[:1000])()  # imports, thread pools, caches
        call = make(logits, labels)
        value, mem = _common.measure_memory(call)
        times = _common.time_calls(call, repeat)
        out.update(status="ok", value=value, **_common.summarise(times),
                   extra_peak_mib=mem.extra / _common.MiB,
                   extra_peak_ru_maxrss_mib=mem.extra_ru_maxrss / _common.MiB,
                   baseline_rss_mib=mem.baseline / _common.MiB, peak_reset=mem.reset)
        if prep is not None:
            out["prep_s"] = _common.time_calls(prep, 1)[0]
        if trace:
            out["tracemalloc_peak_mib"] = _common.traced_peak(call)[1] / _common.MiB
    except Exception as exc:  # a peer failing must not stop the benchmark
        out.update(status="error", reason=f"{type(exc).__name__}: {exc}")
    return out


def work_trueprob(logits: np.ndarray, labels: np.ndarray, repeat: int) -> list[dict[str, Any]]:
    import trueprob
    from trueprob.stats import EvaluationStats

    k = int(logits.shape[1])

    def report(z: np.ndarray, y: np.ndarray) -> Callable[[], dict[str, float | None]]:
        def run() -> dict[str, float | None]:
            r = trueprob.evaluate(y, logits=z)
            return {"ece": r.ece, "nll": r.nll, "brier": r.brier, "mce": r.mce,
                    "rmsce": r.rmsce, "accuracy": r.accuracy,
                    "classwise_ece": r.classwise_ece, "ks": r.ks}
        return run

    def single(parts: tuple[str, ...], attr: str) -> Callable[..., Callable[[], float]]:
        # what a single-metric function does: one pass keeping only the state it needs
        def make(z: np.ndarray, y: np.ndarray) -> Callable[[], float]:
            return lambda: float(getattr(
                EvaluationStats(k, parts=parts).update(y, logits=z).finalize(), attr))
        return make

    results = [_task("trueprob", "report", report, logits, labels, repeat, trace=True)]
    if results[0]["status"] == "ok":
        results[0]["value"]["ece_left"] = float(EvaluationStats(
            k, parts=("top_label",), closed="left").update(labels, logits=logits)
            .finalize().ece)
    for metric, parts in (("ece", ("top_label",)), ("nll", ("scores",)),
                          ("brier", ("scores",))):
        results.append(_task("trueprob", metric, single(parts, metric), logits, labels,
                             repeat))
        results[-1]["how"] = f"EvaluationStats(parts={parts})"
    return results


def work_torchmetrics(logits: np.ndarray, labels: np.ndarray,
                      repeat: int) -> list[dict[str, Any]]:
    import torch
    from torchmetrics.functional.classification import multiclass_calibration_error

    k = int(logits.shape[1])

    def ece(z: np.ndarray, y: np.ndarray) -> Callable[[], float]:
        zt, yt = torch.from_numpy(z), torch.from_numpy(y)  # no copies
        return lambda: float(multiclass_calibration_error(zt, yt, num_classes=k,
                                                          n_bins=N_BINS, norm="l1"))

    out = _task("torchmetrics", "ece", ece, logits, labels, repeat)
    out["threads"] = torch.get_num_threads()
    try:  # its own steps with float64 bin sums: isolates its float32 accumulation (private API)
        from torchmetrics.functional.classification.calibration_error import (
            _ce_compute,
            _multiclass_calibration_error_update,
        )

        conf, hit = _multiclass_calibration_error_update(torch.from_numpy(logits),
                                                         torch.from_numpy(labels))
        edges = torch.linspace(0, 1, N_BINS + 1, dtype=torch.float32).double()
        out["value_float64_sums"] = float(_ce_compute(conf.double(), hit.double(), edges))
    except (ImportError, TypeError) as exc:
        out["value_float64_sums_error"] = f"{type(exc).__name__}: {exc}"
    out["edges"] = torch.linspace(0, 1, N_BINS + 1, dtype=torch.float32).tolist()
    out["how"] = "multiclass_calibration_error(logits, labels, n_bins=15, norm='l1')"
    return [out]


def work_sklearn(logits: np.ndarray, labels: np.ndarray, repeat: int) -> list[dict[str, Any]]:
    from scipy.special import softmax
    from sklearn.metrics import brier_score_loss, log_loss

    classes = np.arange(logits.shape[1])

    def nll(z: np.ndarray, y: np.ndarray) -> Callable[[], float]:
        return lambda: float(log_loss(y, softmax(z, axis=1), labels=classes))

    def brier(z: np.ndarray, y: np.ndarray) -> Callable[[], float]:
        return lambda: float(brier_score_loss(y, softmax(z, axis=1), labels=classes,
                                              scale_by_half=False))

    prep = lambda: softmax(logits, axis=1)  # noqa: E731
    out = [_task("scikit-learn", "nll", nll, logits, labels, repeat, prep=prep),
           _task("scikit-learn", "brier", brier, logits, labels, repeat, prep=prep)]
    out[0]["how"] = "log_loss(y, scipy.special.softmax(logits), labels=range(K))"
    out[1]["how"] = ("brier_score_loss(y, scipy.special.softmax(logits), labels=range(K), "
                     "scale_by_half=False)")
    return out


def work_netcal(logits: np.ndarray, labels: np.ndarray, repeat: int) -> list[dict[str, Any]]:
    from netcal.metrics import ECE
    from scipy.special import softmax

    def ece(z: np.ndarray, y: np.ndarray) -> Callable[[], float]:
        return lambda: float(ECE(bins=N_BINS).measure(softmax(z, axis=1), y))

    out = _task("netcal", "ece", ece, logits, labels, repeat,
                prep=lambda: softmax(logits, axis=1))
    out["how"] = "ECE(bins=15).measure(scipy.special.softmax(logits), y)"
    return [out]


@dataclass(frozen=True)
class Library:
    name: str
    distribution: str
    modules: tuple[str, ...]
    metrics: tuple[str, ...]
    work: Callable[[np.ndarray, np.ndarray, int], list[dict[str, Any]]]


LIBRARIES = {
    lib.name: lib for lib in (
        Library("trueprob", "trueprob", ("trueprob",), ("report", "ece", "nll", "brier"),
                work_trueprob),
        Library("torchmetrics", "torchmetrics", ("torch", "torchmetrics"), ("ece",),
                work_torchmetrics),
        Library("scikit-learn", "scikit-learn", ("sklearn", "scipy"), ("nll", "brier"),
                work_sklearn),
        Library("netcal", "netcal", ("netcal", "scipy"), ("ece",), work_netcal),
    )
}


def worker_main(library: str, folders: Sequence[Path], repeat: int) -> int:
    """Run one library over every case, one case in memory at a time."""
    per_case = []
    for folder in folders:
        logits, labels = load(folder)
        _common.release_free_memory()
        results = LIBRARIES[library].work(logits, labels, repeat)
        for r in results:
            r["input_mib"] = (logits.nbytes + labels.nbytes) / _common.MiB
        per_case.append(results)
        del logits, labels
    _common.emit_result(per_case)
    return 0


# ============================================================================ parent
def run_library(lib: Library, folders: Sequence[Path], repeat: int) -> list[list[dict[str, Any]]]:
    """Results of one library on every case (one subprocess for all of them)."""
    missing = [m for m in lib.modules if not _common.module_available(m)]
    if missing:
        row = {"status": "not installed", "reason": f"cannot import {', '.join(missing)}"}
        return [[{"library": lib.name, "metric": m, **row} for m in lib.metrics]
                for _ in folders]
    args = [str(Path(__file__).resolve()), "--worker", lib.name, "--repeat", str(repeat)]
    for folder in folders:
        args += ["--data", str(folder)]
    got = _common.run_worker(args, timeout=WORKER_TIMEOUT)
    if isinstance(got, dict):  # the worker failed as a whole
        return [[{"library": lib.name, "metric": m, **got} for m in lib.metrics]
                for _ in folders]
    version = _common.version_of(lib.distribution)
    for results in got:
        for r in results:
            r["version"] = version
    return [list(results) for results in got]


def _find(results: list[dict[str, Any]], library: str, metric: str) -> dict[str, Any] | None:
    for r in results:
        if r["library"] == library and r["metric"] == metric and r.get("status") == "ok":
            return r
    return None


def _value(r: dict[str, Any] | None, key: str | None = None) -> float | None:
    if r is None:
        return None
    v = r["value"]
    return v.get(key) if isinstance(v, dict) else v


def checks(case: Case, results: list[dict[str, Any]], conv: dict[str, Any]) -> list[dict[str, Any]]:
    """Compare the numbers; each comparison says why its tolerance is what it is."""
    n = case.n
    report = _find(results, "trueprob", "report")
    # One row put in a neighbouring bin moves the ECE by at most 2/N; allow two such rows
    # (confidences computed by different softmax codes differ in the last float32 bit).
    bins_tol = 4.0 / n + 1e-12
    out: list[dict[str, Any]] = []

    def check(name: str, ours: float | None, theirs: float | None, tol: float,
              convention: float | None = None, why_different: str = "",
              note: str = "") -> None:
        if ours is None or theirs is None:
            out.append({"check": name, "status": "skipped (no value)", "trueprob": ours,
                        "other": theirs})
            return
        diff = abs(theirs - ours)
        if diff <= tol:
            status = "agree"
        elif convention is not None and abs(theirs - convention) <= tol:
            status = f"differ by convention: {why_different}"
        else:
            status = "MISMATCH"
        out.append({"check": name, "trueprob": ours, "other": theirs, "abs_diff": diff,
                    "tolerance": tol, "other_convention_value": convention,
                    "status": status, "note": note})

    tp = {m: _value(report, m) for m in ("ece", "nll", "brier", "ece_left")}
    check("trueprob ece = recomputed (SPEC bins, numpy float64)", tp["ece"], conv["ece_spec"],
          bins_tol, note="independent second computation of SPEC.md's ECE")
    check("trueprob ece closed=left = closed=right", tp["ece"], tp["ece_left"], bins_tol,
          note="B=15: no float32 confidence equals j/15, so the two only differ at c=0")
    check("trueprob nll = recomputed logsumexp(z) - z_y (float64)", tp["nll"],
          conv["nll_exact"], 1e-9 * abs(conv["nll_exact"]) + 1e-12)
    check("trueprob brier = recomputed (float32 softmax)", tp["brier"], conv["brier"],
          1e-6 * abs(conv["brier"]), note="softmax rounding differs in the last float32 bit")
    for metric in ("ece", "nll", "brier"):
        check(f"trueprob {metric} alone = {metric} of the report", tp[metric],
              _value(_find(results, "trueprob", metric)), 1e-12 * abs(tp[metric] or 0) + 1e-15)

    why_tm = (f"{conv['conf_one']} rows with c = 1.0 in its extra bin, "
              f"{conv['torchmetrics_other_bin']} rows on its float32 edges")
    tm = _find(results, "torchmetrics", "ece")
    # torchmetrics adds the bin sums in float32 (scatter_add_): at N = 1e6 the largest bin's
    # confidence sum was off by 9e-5 relative, the ECE by 4.7e-5; hence 1e-4 on its value,
    # and the float64-sum value of its own steps held to the rounding tolerance.
    check("torchmetrics ece vs trueprob ece", tp["ece"], _value(tm), bins_tol + 1e-4,
          conv["ece_torchmetrics"], why_tm, note="torchmetrics sums per bin in float32")
    check("torchmetrics ece with float64 bin sums vs trueprob ece", tp["ece"],
          None if tm is None else tm.get("value_float64_sums"), bins_tol,
          conv["ece_torchmetrics"], why_tm,
          note="torchmetrics' own update/compute steps on float64 confidences")
    check("netcal ece vs trueprob ece", tp["ece"], _value(_find(results, "netcal", "ece")),
          bins_tol, conv["ece_netcal"], "confidences clipped to [eps, 1-eps]",
          note="netcal bins [e_j, e_j+1), last bin closed: same bins as SPEC.md for B=15")
    check("scikit-learn log_loss vs trueprob nll", tp["nll"],
          _value(_find(results, "scikit-learn", "nll")), 1e-6 * abs(conv["nll_exact"]),
          conv["nll_sklearn"],
          f"{conv['clipped_low']} rows with q_y < eps clipped to eps (float32 eps)",
          note="scikit-learn works in float32 (measured 2e-8 to 7e-8 relative off the "
               "float64 recomputation of its convention)")
    check("scikit-learn brier_score_loss vs trueprob brier", tp["brier"],
          _value(_find(results, "scikit-learn", "brier")), 1e-6 * abs(conv["brier"]),
          note="multiclass, not divided by K, scale_by_half=False; float32 arithmetic")
    return out


def targets(case: Case, results: list[dict[str, Any]]) -> dict[str, Any]:
    report = _find(results, "trueprob", "report")
    tm = _find(results, "torchmetrics", "ece")
    out: dict[str, Any] = {}
    if report is not None and tm is not None:
        ratio = tm["time_min"] / report["time_min"]
        out["report_vs_torchmetrics_ece"] = {"ratio": ratio, "met": ratio >= 1.0}
    if report is not None:
        out["report_extra_peak_mib"] = {"value": report["extra_peak_mib"],
                                        "limit": TARGET_EXTRA_MIB,
                                        "met": report["extra_peak_mib"] <= TARGET_EXTRA_MIB}
    return out


def add_ratios(results: list[dict[str, Any]]) -> None:
    """peer time / trueprob time: against the whole report and against the same metric."""
    report = _find(results, "trueprob", "report")
    for r in results:
        if r.get("status") != "ok":
            continue
        if report is not None:
            r["ratio_vs_report"] = r["time_min"] / report["time_min"]
        same = _find(results, "trueprob", r["metric"])
        if same is not None and r["library"] != "trueprob":
            r["ratio_vs_same_metric"] = r["time_min"] / same["time_min"]


def run_cases(cases: Sequence[Case], libraries: Sequence[str], repeat: int, root: Path,
              log: Callable[[str], None]) -> list[dict[str, Any]]:
    folders = []
    for case in cases:
        folder = root / case.name.replace(" ", "_")
        folder.mkdir()
        start = time.perf_counter()
        generate(case, folder)
        log(f"generated {case.name} in {time.perf_counter() - start:.1f} s")
        folders.append(folder)
    per_case: list[list[dict[str, Any]]] = [[] for _ in cases]
    for name in libraries:
        start = time.perf_counter()
        for results, got in zip(per_case, run_library(LIBRARIES[name], folders, repeat),
                                strict=True):
            results.extend(got)
        log(f"ran {name} in {time.perf_counter() - start:.1f} s")
    blocks = []
    for case, folder, results in zip(cases, folders, per_case, strict=True):
        tm = _find(results, "torchmetrics", "ece")
        conv = conventions(folder, None if tm is None else tm.get("edges"))
        add_ratios(results)
        blocks.append({"case": asdict(case), "conventions": conv, "results": results,
                       "checks": checks(case, results, conv), "targets": targets(case, results)})
    return blocks


# ============================================================================ output
def _fmt(x: float | None, digits: int = 3) -> str:
    if x is None:
        return "-"
    if x == 0 or 1e-3 <= abs(x) < 1e5:
        return f"{x:.{digits}f}"
    return f"{x:.{digits}g}" if abs(x) >= 1e5 else f"{x:.2e}"


def _sci(x: float | None) -> str:
    return "-" if x is None else f"{x:.1e}"


def render(run: dict[str, Any]) -> str:
    lines = []
    for block in run["cases"]:
        case, conv = block["case"], block["conventions"]
        lines.append("")
        lines.append(f"== {case['name']}: N={case['n']:,} K={case['k']} float32 logits, "
                     f"sharpen {case['sharpen']}, under {case['under']} "
                     f"(accuracy {conv['accuracy']:.3f}, "
                     f"rows with c=1.0: {conv['conf_one']}, q_y<eps: {conv['clipped_low']})")
        rows = []
        for r in block["results"]:
            if r.get("status") != "ok":
                rows.append([r["library"], r["metric"], r.get("status"), "", "", "", "", "",
                             "", r.get("reason", "")[:60]])
                continue
            v = r["value"]
            value = (f"ece={v['ece']:.6f} nll={_fmt(v['nll'], 5)} brier={v['brier']:.5f}"
                     if isinstance(v, dict) else f"{v:.6f}")
            rows.append([r["library"], r["metric"],
                         f"{r['time_min']:.3f}", f"{r['time_median']:.3f}",
                         _fmt(r.get("prep_s")),
                         _fmt(r.get("ratio_vs_report"), 2),
                         _fmt(r.get("ratio_vs_same_metric"), 2),
                         f"{r['extra_peak_mib']:.1f}",
                         _fmt(r.get("tracemalloc_peak_mib"), 1), value])
        lines.append(_common.format_table(
            ["library", "metric", "min s", "median s", "prep s", "/report", "/same",
             "extra MiB", "tracemalloc", "value"], rows))
        lines.append("")
        crow = []
        for c in block["checks"]:
            crow.append([c["check"], _fmt(c.get("trueprob"), 7), _fmt(c.get("other"), 7),
                         _sci(c.get("abs_diff")), _sci(c.get("tolerance")),
                         c["status"]])
        lines.append(_common.format_table(
            ["check", "trueprob", "other", "|diff|", "tol", "status"], crow))
        for name, t in block["targets"].items():
            if name == "report_vs_torchmetrics_ece":
                lines.append(f"target: report at least as fast as torchmetrics ECE: "
                             f"torchmetrics/report = {t['ratio']:.2f} -> "
                             f"{'met' if t['met'] else 'NOT met'}")
            else:
                lines.append(f"target: report extra peak <= {t['limit']:.0f} MiB: "
                             f"{t['value']:.1f} MiB -> {'met' if t['met'] else 'NOT met'}")
    lines.append("")
    lines.append("time: min/median of the repeats, from logits (prep = scipy softmax that "
                 "scikit-learn and netcal need, included in their time); /report and /same: "
                 "that time / trueprob's time (>1: trueprob faster); extra MiB: peak RSS "
                 "during one call minus RSS before it, input already loaded.")
    return "\n".join(lines)


# ============================================================================ profile
def profile(case: Case, top: int) -> str:
    """cProfile of ``trueprob.evaluate`` on one case (3 calls after a warm-up)."""
    import trueprob

    with tempfile.TemporaryDirectory(prefix="trueprob-bench-") as tmp:
        generate(case, Path(tmp))
        logits, labels = load(Path(tmp))
    trueprob.evaluate(labels, logits=logits)
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(3):
        trueprob.evaluate(labels, logits=logits)
    prof.disable()
    buf = io.StringIO()
    stats = pstats.Stats(prof, stream=buf)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats("trueprob", top)
    return buf.getvalue()


# ============================================================================ main
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="small inputs, one repeat: a smoke run of a few seconds")
    parser.add_argument("--json", type=Path, help="write all results to this JSON file")
    parser.add_argument("--repeat", type=int, help="timed calls per metric (3; --quick 1)")
    parser.add_argument("--sizes", type=parse_sizes,
                        help="speed cases as NxK,NxK (default 1000000x10,100000x1000)")
    parser.add_argument("--libraries", default=",".join(LIBRARIES),
                        help=f"comma-separated subset of {','.join(LIBRARIES)}")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile", action="store_true",
                        help="only profile trueprob.evaluate on the first speed case")
    parser.add_argument("--worker", choices=sorted(LIBRARIES), help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, action="append", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    repeat = args.repeat if args.repeat is not None else (1 if args.quick else 3)
    if repeat < 1:
        parser.error(f"--repeat must be >= 1; got {repeat}")
    if args.worker:
        if args.data is None:
            parser.error("--worker needs --data")
        return worker_main(args.worker, args.data, repeat)
    libraries = [name.strip() for name in args.libraries.split(",") if name.strip()]
    unknown = sorted(set(libraries) - set(LIBRARIES))
    if unknown:
        parser.error(f"--libraries must be among {','.join(LIBRARIES)}; got {unknown}")
    cases = default_cases(quick=args.quick, seed=args.seed, sizes=args.sizes)
    if args.profile:
        print(profile(cases[0], 25))
        return 0

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    started = time.perf_counter()
    machine = _common.machine_info()
    with tempfile.TemporaryDirectory(prefix="trueprob-bench-") as tmp:
        blocks = run_cases(cases, libraries, repeat, Path(tmp), log)
    run = {
        "benchmark": "evaluate", "quick": args.quick, "repeat": repeat, "n_bins": N_BINS,
        "seed": args.seed, "machine": machine,
        "loadavg_end": _common.machine_info()["loadavg"],
        "versions": {name: _common.version_of(lib.distribution)
                     for name, lib in LIBRARIES.items()} | {"numpy": np.__version__},
        "wall_s": time.perf_counter() - started, "cases": blocks,
    }
    print(render(run))
    print(f"\ntotal {run['wall_s']:.0f} s; load average {machine['loadavg']} -> "
          f"{run['loadavg_end']}")
    if args.json is not None:
        from trueprob.io import atomic_write

        with atomic_write(args.json, force=True, mode="w") as fh:
            json.dump(_json_safe(run), fh, indent=1, allow_nan=False)
    failed = [c["check"] for b in blocks for c in b["checks"] if c["status"] == "MISMATCH"]
    if failed:
        log("MISMATCH: " + "; ".join(failed))
        return 1
    return 0


def _json_safe(x: Any) -> Any:
    """NaN becomes null, +-inf the strings "inf"/"-inf", numpy scalars Python numbers."""
    if isinstance(x, dict):
        return {str(k): _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None if math.isnan(x) else ("inf" if x > 0 else "-inf")
    return x


if __name__ == "__main__":
    sys.exit(main())
