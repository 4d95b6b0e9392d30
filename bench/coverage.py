"""Coverage study: does every interval trueprob prints keep its promise, and does every test
hold its size? Regenerates ``docs/uncertainty.md``.

Data come from the processes of ``_coverage_dgp.py`` (Gaussian logits, labels drawn from a
known distortion of the model's softmax), whose population values are computed once from
10^7 rows with expected outcomes and cached in ``bench/coverage_population.json`` (small; it
is recomputed when a process or the number of draws changes). For every process, N and
repetition the script draws a data set and records

- intervals: ``trueprob.bootstrap(method="bca")`` once (B replicates); its replicates and
  leave-one-block-out values give, through the same functions the library uses
  (``trueprob.inference.intervals``), the percentile, BCa and bias-corrected percentile
  intervals at 90 % and 95 % and the one-sided upper bounds; and the SKCE block estimator's
  Student-t interval (estimate +- t_(m-1) se over its m block values, as the HTML report
  prints it), at the population bandwidth;
- tests: the consistency-resampling tests (ECE, classwise ECE) and the SKCE tests (linear,
  block with its default 16-row blocks, the whole-vector test every command reports, and
  unbiased), whose rejection rates at alpha = 0.01 and 0.05 are the size (calibrated
  processes) or the power (distorted ones).

Coverage = share of repetitions whose interval contains the population value; Monte-Carlo
standard error sqrt(p (1 - p) / R).

    python bench/coverage.py --quick            # ~1-2 min: fewer repetitions, N <= 10^4
    python bench/coverage.py                    # the study of docs/uncertainty.md
    python bench/coverage.py --json out.json    # also every number as JSON

Run with the source tree first on the path (``PYTHONPATH=src``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from trueprob.inference.intervals import interval_method

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _coverage_dgp import Process, population

HERE = Path(__file__).resolve().parent
CACHE = HERE / "coverage_population.json"
DOC = HERE.parent / "docs" / "uncertainty.md"
DRAWS = 10_000_000
LEVELS = (0.90, 0.95)
ALPHAS = (0.01, 0.05)
METRICS = ("accuracy", "nll", "brier", "ece", "mce", "rmsce", "ece_debiased", "classwise_ece",
           "class_conditional_ece", "ks")
METHODS = ("bias-corrected", "percentile", "bca")
BCA_EVERY = 3
UNBIASED_MAX_N = 500
TESTS = ("consistency ece", "consistency classwise_ece", "skce linear", "skce block",
         "skce whole-vector", "skce unbiased")

#: (name, process, nominal true top-label ECE)
PROCESSES: tuple[tuple[str, Process, float], ...] = (
    ("calibrated K=3", Process("calibrated K=3", 3, 2.0, "calibrated", 0.0), 0.0),
    ("calibrated K=10", Process("calibrated K=10", 10, 2.0, "calibrated", 0.0), 0.0),
    ("temperature 0.01", Process("temperature 0.01", 10, 2.0, "temperature", 1.0305), 0.01),
    ("temperature 0.03", Process("temperature 0.03", 10, 2.0, "temperature", 1.0941), 0.03),
    ("temperature 0.1", Process("temperature 0.1", 10, 2.0, "temperature", 1.3549), 0.1),
    ("class bias 0.01", Process("class bias 0.01", 10, 2.0, "class_bias", 0.5517), 0.01),
    ("class bias 0.03", Process("class bias 0.03", 10, 2.0, "class_bias", 0.9839), 0.03),
    ("class bias 0.1", Process("class bias 0.1", 10, 2.0, "class_bias", 2.0582), 0.1),
    ("wiggle 0.01", Process("wiggle 0.01", 3, 2.0, "wiggle", 0.0911), 0.01),
    ("wiggle 0.03", Process("wiggle 0.03", 3, 2.0, "wiggle", 0.2734), 0.03),
    ("wiggle 0.1", Process("wiggle 0.1", 3, 2.0, "wiggle", 0.9115), 0.1),
    ("calibrated K=100", Process("calibrated K=100", 100, 2.0, "calibrated", 0.0), 0.0),
    ("temperature K=100 0.03", Process("temperature K=100 0.03", 100, 2.0, "temperature",
                                       1.083), 0.03),
)
#: processes of the test study (size: calibrated; power: the distortions at ECE 0.01, 0.03)
TEST_PROCESSES = ("calibrated K=3", "calibrated K=10", "calibrated K=100", "temperature 0.01",
                  "temperature 0.03", "temperature K=100 0.03", "class bias 0.01",
                  "class bias 0.03", "wiggle 0.01", "wiggle 0.03")


# ------------------------------------------------------------------ population values
def _skce_population(process: Process, seed: int = 777) -> dict[str, float]:
    """Population SKCE at the bandwidth nu = median heuristic of 2000 population rows:
    E[kappa(q, q') (p - q)^T (p' - q')] over 10^6 independent pairs (expected outcomes)."""
    from trueprob.metrics.skce import median_heuristic

    rng = np.random.default_rng(seed)
    q, _ = process.true_probs(process.logits(rng, 2000))
    nu = float(median_heuristic(q))
    total, pairs = 0.0, 0
    for _ in range(4):
        n = 250_000
        qa, pa = process.true_probs(process.logits(rng, n))
        qb, pb = process.true_probs(process.logits(rng, n))
        kern = np.exp(-np.linalg.norm(qa - qb, axis=1) / nu)
        total += float(np.sum(kern * np.sum((pa - qa) * (pb - qb), axis=1)))
        pairs += n
    return {"skce": total / pairs, "skce_bandwidth": nu}


def populations(draws: int, quick: bool) -> dict[str, dict[str, float]]:
    """Population values of every process, from the cache when it matches."""
    cache: dict[str, Any] = {}
    if CACHE.exists():
        cache = json.loads(CACHE.read_text())
    out: dict[str, dict[str, float]] = {}
    changed = False
    for name, proc, _ in PROCESSES:
        key = json.dumps([asdict(proc), draws])
        entry = cache.get(name)
        if entry is None or entry.get("key") != key:
            if quick and entry is not None:
                pass  # quick runs recompute too: a stale cache would mislead
            t0 = time.perf_counter()
            values = population(proc, draws=draws) | _skce_population(proc)
            print(f"population of {name}: {time.perf_counter() - t0:.1f} s", file=sys.stderr)
            entry = {"key": key, "values": values}
            cache[name] = entry
            changed = True
        out[name] = entry["values"]
    if changed and draws == DRAWS:
        tmp = CACHE.with_suffix(".tmp")
        tmp.write_text(json.dumps(cache, indent=1, sort_keys=True) + "\n")
        os.replace(tmp, CACHE)
    return out


# ------------------------------------------------------------------ one cell of the study
def interval_cell(args: tuple[str, int, int, int, dict[str, float], int]) -> dict[str, Any]:
    """Coverage records of one (process, N): R repetitions."""

    import trueprob
    from trueprob.inference.bootstrap import ks_scale_of
    from trueprob.inference.intervals import finite, interval_for
    from trueprob.metrics.skce import skce
    from trueprob.stats import EvaluationStats

    name, n, reps, n_boot, truth, seed = args
    proc = {p[0]: p[1] for p in PROCESSES}[name]
    rng = np.random.default_rng(seed)
    # hits[(metric, method, level)] = [covered, width, contains estimate, upper covers]
    rec: dict[str, list[list[float]]] = {}
    t0, c0 = time.perf_counter(), time.process_time()
    for r in range(reps):
        y, z = proc.sample(rng, n)
        # BCa needs the G leave-one-block-out summaries as well (as many again as B): it is
        # measured on every third repetition only
        with_bca = r % BCA_EVERY == 0
        res = trueprob.bootstrap(y, logits=z, n_replicates=n_boot,
                                 method="bca" if with_bca else "percentile",
                                 random_state=int(rng.integers(2**31)), quiet=True)
        ks_scale = ks_scale_of(EvaluationStats(proc.n_classes).update(y, logits=z))
        for metric in METRICS:
            theta = getattr(res.report, metric)
            values = finite(res.replicates[metric])
            if theta is None or not math.isfinite(theta) or values.size == 0:
                continue
            for method in METHODS:
                if method == "bca" and not with_bca:
                    continue
                for level in LEVELS:
                    _, (est, low, high, upper) = interval_for(
                        metric, method, theta, values, level,
                        jack=res.jackknife.get(metric), ks_scale=ks_scale,
                        rows_per_class=n / proc.n_classes)
                    t = truth[metric]
                    rec.setdefault(f"{metric}|{method}|{level}", []).append(
                        [float(low <= t <= high), high - low, float(low <= est <= high),
                         float(t <= upper), est - t])
        sk = skce(y, logits=z, estimator="block", bandwidth=truth["skce_bandwidth"])
        for level in LEVELS:
            low, high = sk.interval(level)
            upper = sk.interval(2 * level - 1)[1]
            rec.setdefault(f"skce|t (block)|{level}", []).append(
                [float(low <= truth["skce"] <= high), high - low, 1.0,
                 float(truth["skce"] <= upper), sk.estimate - truth["skce"]])
    return {"process": name, "n": n, "reps": reps, "seconds": time.perf_counter() - t0,
            "cpu_seconds": time.process_time() - c0,
            "records": {k: np.mean(np.array(v), axis=0).tolist() for k, v in rec.items()},
            "counts": {k: len(v) for k, v in rec.items()}}


def test_cell(args: tuple[str, int, int, int, int]) -> dict[str, Any]:
    """Rejection records of the tests on one (process, N): R repetitions."""
    from trueprob.inference import consistency_test
    from trueprob.metrics.skce import skce, whole_vector_test

    name, n, reps, n_resamples, seed = args
    proc = {p[0]: p[1] for p in PROCESSES}[name]
    rng = np.random.default_rng(seed)
    pvals: dict[str, list[float]] = {t: [] for t in TESTS}
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(reps):
        y, z = proc.sample(rng, n)
        s = int(rng.integers(2**31))
        if n <= UNBIASED_MAX_N:  # the O(N^2 B) test alone, at small N
            pvals["skce unbiased"].append(skce(y, logits=z, estimator="unbiased",
                                               n_resamples=n_resamples,
                                               random_state=s).p_value)
            continue
        for stat in ("ece", "classwise_ece"):
            pvals[f"consistency {stat}"].append(consistency_test(
                y, logits=z, statistic=stat, n_resamples=n_resamples, random_state=s,
                quiet=True).p_value)
        pvals["skce linear"].append(skce(y, logits=z, estimator="linear").p_value)
        pvals["skce block"].append(skce(y, logits=z, estimator="block").p_value)
        pvals["skce whole-vector"].append(whole_vector_test(y, logits=z, random_state=s).p_value)
    return {"process": name, "n": n, "reps": reps, "seconds": time.perf_counter() - t0,
            "cpu_seconds": time.process_time() - c0,
            "rejections": {t: {str(a): float(np.mean(np.array(p) <= a)) for a in ALPHAS}
                           for t, p in pvals.items() if p},
            "reps_per_test": {t: len(p) for t, p in pvals.items() if p}}


# ------------------------------------------------------------------ the document
def _se(p: float, r: int) -> float:
    return math.sqrt(max(p * (1 - p), 1.0 / r) / r)


def _cov(p: float) -> str:
    return f"{p:.2f}"


def render(result: dict[str, Any]) -> str:
    cfg = result["config"]
    pops = result["population"]
    cells = result["intervals"]
    ns = cfg["sizes"]
    lines: list[str] = []
    add = lines.append
    add("# Uncertainty: how often trueprob's intervals cover the truth, and its tests' size "
        "and power")
    add("")
    add("Generated by `bench/coverage.py` "
        f"({'--quick' if cfg['quick'] else 'full run'}; {cfg['reps']} repetitions per cell "
        f"for N <= 10^4, {cfg['reps_large']} for N = 10^5; B = {cfg['replicates']} bootstrap "
        f"replicates, BCa on every third repetition; {cfg['test_reps']} repetitions per test "
        f"cell of a calibrated process ({cfg.get('unbiased_reps', cfg['test_reps'])} for the "
        f"SKCE unbiased test), {cfg['power_reps']} of a distorted one; run time "
        f"{result['seconds'] / 60:.1f} min wall with {cfg['jobs']} worker processes on "
        f"{result['machine']} shared with other jobs, "
        f"{result['cpu_seconds'] / 60:.1f} CPU-minutes). Do not edit by hand: rerun the script.")
    add("")
    add("## What is measured")
    add("")
    add("Model logits z are i.i.d. Gaussian (K = 3, 10 or 100 classes, scale 2), the model says "
        "q = softmax(z), and the label is drawn from a known true distribution p(z):")
    add("")
    add("- **calibrated**: p = q (every calibration error is 0);")
    add("- **temperature**: p = softmax(z / T), T > 1 (over-confident, K = 10 and 100);")
    add("- **class bias**: p = softmax(z + beta d), d evenly spaced in [-1, 1] (K = 10; some "
        "classes over-, others under-predicted);")
    add("- **wiggle**: a non-monotone top-label distortion (K = 3): p_top = c + A sin(2 pi u) "
        "min(c - 1/K, 1 - c), u = (c - 1/K)/(1 - 1/K), the other entries rescaled; "
        "over-confident at some confidences, under-confident at others.")
    add("")
    add("Each distortion's strength is set so that the population top-label ECE is about "
        "0.01, 0.03 or 0.1. Population values are the limits of trueprob's estimators (15 "
        "right-closed equal-width bins, the 2^16-cell KS grid) computed from 10^7 rows with "
        "expected outcomes (`bench/_coverage_dgp.py`; cached in "
        "`bench/coverage_population.json`). The population MCE is the largest gap over bins "
        "holding at least 10^-4 of the rows. The population SKCE is at a fixed bandwidth (the "
        "median heuristic of 2000 population rows), which the study also passes to "
        "`skce`.")
    add("")
    add("Coverage is the share of repetitions whose interval contains the population value; "
        "in brackets where shown, the Monte-Carlo standard error sqrt(p(1-p)/R). With R = "
        f"{cfg['reps']} repetitions a true 95 % coverage is measured within about "
        f"±{1.96 * math.sqrt(0.95 * 0.05 / cfg['reps']):.3f} (95 %).")
    add("")
    add("Methods (`trueprob.bootstrap(method=...)`, `trueprob evaluate --ci-method`):")
    add("")
    add("- **bias-corrected** (the default): the binned calibration errors (ece, rmsce, "
        "classwise_ece, class_conditional_ece, ks) get the interval [q_(a/2) - 2b, "
        "q_(1-a/2) - 2b] around the bias-corrected estimate theta_bc = theta - b (b = mean "
        "of the replicates - theta), its half-widths about theta_bc stretched by "
        "w = min(3, 1 + b / theta_bc), cut at 0, with lower end 0 where the data cannot tell "
        "the error from 0: theta_bc < m b (m = 6, 5, 4, 4 for ece, rmsce, classwise, "
        "class-conditional: above the 95th percentile of theta_bc / b on calibrated models) "
        "and, for ks, unless the KS test rejects calibration (KS > 2.2414 sigma, sigma^2 = "
        "sum c(1 - c) / N^2; Arrieta-Ibarra et al. 2022). `upper` is the one-sided bound "
        "theta_bc + w (q_(level) - 2b - theta_bc). mce gets the upper bound only: the "
        "interval [0, U]. ece_debiased gets the percentile interval of its squared replicates "
        "moved down by mean(theta*^2) - theta^2, square-rooted (`debiased percentile`). The "
        "other fields get the percentile interval. (`trueprob.inference.intervals`.)")
    add("- **percentile**: [q_(a/2), q_(1-a/2)] of the replicates.")
    add("- **bca**: Efron's bias-corrected and accelerated percentiles (jackknife over "
        "blocks).")
    add("")
    add("Every interval is widened, if need be, to contain its estimate (`ci.<metric>."
        "estimate`); the study checks low <= estimate <= high on every interval: "
        f"{result['estimate_violations']} violations.")
    add("")
    add("## Population values")
    add("")
    head = ["process", "K", *METRICS, "skce"]
    add("| " + " | ".join(head) + " |")
    add("|" + "---|" * len(head))
    for name, proc, _ in PROCESSES:
        vals = pops[name]
        add(f"| {name} | {proc.n_classes} | " + " | ".join(
            f"{vals[m]:.4f}" for m in METRICS) + f" | {vals['skce']:.2e} |")
    add("")

    def rec(name: str, n: int, key: str) -> list[float] | None:
        for cell in cells:
            if cell["process"] == name and cell["n"] == n:
                return cell["records"].get(key)
        return None

    add("## Summary: the default method's 95 % intervals")
    add("")
    add("Coverage per metric, true top-label ECE and N: mean over the processes of that "
        "true ECE (calibrated: K = 3, 10 and 100; 0.01, 0.03, 0.1: temperature, class bias and "
        "wiggle), the worst process in brackets, and `ub` the worst coverage of the one-sided "
        "95 % upper bound. The metrics' own true values are in the population table; "
        "Monte-Carlo error of one cell about ±0.022 (R = 100) or ±0.034 (R = 40, N = 10^5).")
    add("")
    truths = {"0": [p[0] for p in PROCESSES if p[2] == 0.0]}
    for level_ in (0.01, 0.03, 0.1):
        truths[f"≈{level_:g}"] = [p[0] for p in PROCESSES if p[2] == level_]
    head = ["metric", "method", "true ECE"] + [f"N={n}" for n in ns]
    add("| " + " | ".join(head) + " |")
    add("|" + "---|" * len(head))
    for metric in (*METRICS, "skce"):
        method = "t (block)" if metric == "skce" else "bias-corrected"
        for label, members in truths.items():
            row = [metric, "t (block)" if metric == "skce" else
                   interval_method(metric, "bias-corrected"), label]
            for n in ns:
                got = [v for v in (rec(m, n, f"{metric}|{method}|0.95") for m in members)
                       if v is not None]
                if not got:
                    row.append("–")
                    continue
                covs, ubs = [g[0] for g in got], [g[3] for g in got]
                row.append(f"{np.mean(covs):.2f} ({min(covs):.2f}) ub {min(ubs):.2f}")
            add("| " + " | ".join(row) + " |")
    add("")
    add("## Default method: coverage of the 95 % intervals")
    add("")
    add("Two-sided coverage per metric, process (true value in the first table) and N; "
        "`ub` columns: coverage of the one-sided 95 % upper bound (`ci.<metric>.upper`, "
        "\"at most x with 95 % confidence\").")
    add("")
    head = ["process", "metric"] + [f"N={n}" for n in ns] + [f"ub N={n}" for n in ns]
    add("| " + " | ".join(head) + " |")
    add("|" + "---|" * len(head))
    for name, _, _ in PROCESSES:
        for metric in (*METRICS, "skce"):
            method = "t (block)" if metric == "skce" else "bias-corrected"
            row = [name, metric]
            for col in ("two", "ub"):
                for n in ns:
                    v = rec(name, n, f"{metric}|{method}|0.95")
                    row.append("–" if v is None else _cov(v[0] if col == "two" else v[3]))
            add("| " + " | ".join(row) + " |")
    add("")
    add("## Every method: coverage at 90 % and 95 % and mean width")
    add("")
    add("Mean over the processes of each group (calibrated = true calibration errors 0; "
        "small = true ECE 0.01 and 0.03; large = true ECE 0.1); worst process in brackets.")
    add("")
    groups = {"calibrated": [p[0] for p in PROCESSES if p[2] == 0.0],
              "small": [p[0] for p in PROCESSES if p[2] in (0.01, 0.03)],
              "large": [p[0] for p in PROCESSES if p[2] == 0.1]}
    head = ["metric", "method", "truth", "level"] + [f"N={n}" for n in ns] + \
        [f"width N={n}" for n in ns]
    add("| " + " | ".join(head) + " |")
    add("|" + "---|" * len(head))
    for metric in (*METRICS, "skce"):
        methods = ("t (block)",) if metric == "skce" else METHODS
        for method in methods:
            for group, members in groups.items():
                for level in LEVELS:
                    row = [metric, method, group, f"{level:.0%}"]
                    widths = []
                    for n in ns:
                        got = [v for v in (rec(m, n, f"{metric}|{method}|{level}")
                                           for m in members) if v is not None]
                        if not got:
                            row.append("–")
                            widths.append("–")
                            continue
                        covs = [g[0] for g in got]
                        row.append(f"{np.mean(covs):.2f} ({min(covs):.2f})")
                        widths.append(f"{np.mean([g[1] for g in got]):.3g}")
                    add("| " + " | ".join(row + widths) + " |")
    add("")
    add("## Tests: size and power")
    add("")
    tcells = result["tests"]
    add(f"Rejection rate at alpha = 0.01 / 0.05 over the repetitions (N = "
        f"{cfg['test_n']}; the SKCE unbiased estimator's bootstrap test at N = "
        f"{cfg['test_n_unbiased']}; {cfg['resamples']} resamples per test; "
        f"{cfg['test_reps']} repetitions on the calibrated processes, {cfg['power_reps']} on "
        "the others), with its "
        "Monte-Carlo standard error. On the calibrated processes this is the test's size "
        "(target: at most alpha + 0.01); on the others its power. H0 of every test: the "
        "labels are drawn from the predicted distribution.")
    add("")
    head = ["process", "N", "R", *TESTS]
    add("| " + " | ".join(head) + " |")
    add("|" + "---|" * len(head))
    for c in tcells:
        row = [c["process"], str(c["n"]), str(c["reps"])]
        for test in TESTS:
            rj = c["rejections"].get(test)
            if rj is None:
                row.append("–")
                continue
            r = c["reps_per_test"][test]
            a1, a5 = rj["0.01"], rj["0.05"]
            row.append(f"{a1:.3f}±{_se(a1, r):.3f} / {a5:.3f}±{_se(a5, r):.3f}")
        add("| " + " | ".join(row) + " |")
    add("")
    add("## Reading the tables")
    add("")
    add("Measured minimum and maximum over the processes, N >= 2000, default method "
        "(computed from the tables above):")
    add("")
    for line in result.get("findings", []):
        add(line)
    add("")
    add("What this means for the numbers trueprob prints:")
    add("")
    add("- The plug-in calibration errors (the Report's `ece`, `classwise_ece`, ...) are "
        "biased upward by bin noise, and the percentile and BCa intervals inherit that bias "
        "twice: their coverage is 0 for a calibrated model at every N and stays far below "
        "nominal at true ECE 0.01-0.03 until N = 10^5. BCa also collapses to a point for "
        "classwise and class-conditional ECE (all replicates on one side of the estimate). "
        "Neither is a default for a calibration error.")
    add("- The default (`bias-corrected`) interval is about the bias-corrected estimate "
        "(`ci.<metric>.estimate`, not the Report's plug-in value). Where the true error is "
        "clearly above the noise floor it covers close to nominal; where the bin noise "
        "dominates, its lower end is 0, so it also covers a true 0 (the findings above give "
        "the measured range). Its one-sided bound `ci.<metric>.upper` (\"ECE <= x with 95 % "
        "confidence\") is the statement to quote when the estimate is near 0.")
    add("- ks: the bin-free KS error has no bin noise to remove, but the bootstrap of a "
        "supremum is biased the same way; its lower end is 0 unless the KS test of "
        "calibration rejects (KS above 2.2414 sigma, the 95 % quantile of the supremum of "
        "a Brownian motion's absolute value on [0, 1]), which makes the two-sided interval "
        "cover a true 0 at about the test's level.")
    add("- mce: the population MCE is the largest gap over bins a sample may leave nearly "
        "empty, and no two-sided interval tried here reached nominal coverage (the "
        "percentile and BCa rows). The default is the one-sided statement `[0, U]`, "
        "printed as \"mce at most U\".")
    add("- `ece_debiased` (Kumar et al.'s estimator of the population `rmsce`) gets the "
        "`debiased percentile` interval: its squared replicates carry the plug-in's bias "
        "again, which is removed before the square root; the plain percentile interval "
        "under-covers at small true values and N <= 2000.")
    add("- class_conditional_ece with few rows per class: at K = 100 and N = 500 (N / K = 5) "
        "the rows predicted as one class leave one or two per bin, the bin gaps saturate, the"
        " bootstrap replicates are no noisier than the sample and their mean cannot show the "
        "bias: the bias-corrected interval with a positive lower end covered the truth in "
        "none of the repetitions of an earlier run, calibrated or not. Its lower end is "
        "therefore 0 when N / K < 20 (`MIN_ROWS_PER_CLASS`), the rows of the N = 500, K = 100"
        " cells above; from N / K = 20 (N = 2000) the two-sided interval is near nominal "
        "without the rule.")
    add("- The SKCE block test (16-row blocks) is the one test whose size at alpha = 0.05 "
        "came out above alpha + 0.01 in this run (calibrated K = 100, N = 2000; the findings "
        "give it with its Monte-Carlo error); the whole-vector test that the commands report "
        "holds its size but has little power against over-confidence (temperature) at N = "
        "2000, where the consistency ECE test is the one to read.")
    add("- accuracy, NLL and Brier: the percentile interval is close to nominal (most cells "
        "0.90-0.97 with a Monte-Carlo error of about 0.02 at R = 100); the bootstrap of "
        "N > 256 rows resamples 256 blocks of rows, whose endpoint noise (about 4 % relative) "
        "and B = 200 replicates here make it slightly narrow. The CLI's default B = 1000.")
    add("- The SKCE block estimator's interval is estimate +- t_(m-1) se over its m block "
        "values, and its test uses the same t reference (the report's whole-vector test "
        "has few, large blocks, where a normal quantile is too narrow).")
    add("- Tests: size and power are in the table above (Monte-Carlo error beside each "
        "rate; target size at most alpha + 0.01). The consistency tests resample labels "
        "from the model, so they hold their size by construction up to the resampling "
        "error. No test has useful power against temperature or the non-monotone "
        "distortion at true ECE 0.01 and N = 2000: calibration errors of 0.01 need N of "
        "order 10^4 to be seen.")
    add("")
    add("Not measured here: equal-mass bins, soft targets, row weights; the smooth ECE and "
        "the decomposition's MCB/DSC, for which the report prints no interval.")
    add("")
    return "\n".join(lines)


def findings(result: dict[str, Any]) -> list[str]:
    """Plain statements computed from the numbers (the conclusions of the doc)."""
    cfg = result["config"]
    out = []
    big = [n for n in cfg["sizes"] if n >= 2000]

    def cov(metric: str, method: str, names: Sequence[str], col: int = 0) -> list[float]:
        vals = []
        for c in result["intervals"]:
            if c["process"] in names and c["n"] in big:
                v = c["records"].get(f"{metric}|{method}|0.95")
                if v is not None:
                    vals.append(v[col])
        return vals

    zero = [p[0] for p in PROCESSES if p[2] == 0.0]
    pos = [p[0] for p in PROCESSES if p[2] > 0.0]
    for metric in ("accuracy", "nll", "brier"):
        v = cov(metric, "bias-corrected", [p[0] for p in PROCESSES])
        out.append(f"- {metric}: 95 % percentile coverage {min(v):.2f} to {max(v):.2f} over "
                   f"every process and N >= 2000.")
    for metric in ("ece", "rmsce", "ks", "classwise_ece", "class_conditional_ece", "mce",
                   "ece_debiased"):
        bc = cov(metric, "bias-corrected", pos)
        pc = cov(metric, "percentile", pos)
        ub = cov(metric, "bias-corrected", pos, 3)
        two0 = cov(metric, "bias-corrected", zero)
        out.append(f"- {metric}, true value > 0, N >= 2000: default coverage "
                   f"{min(bc):.2f} to {max(bc):.2f} (mean {np.mean(bc):.2f}), its upper "
                   f"bound {min(ub):.2f} to {max(ub):.2f} (mean {np.mean(ub):.2f}); "
                   f"percentile {min(pc):.2f} to {max(pc):.2f}. True value 0: two-sided "
                   f"{min(two0):.2f} to {max(two0):.2f} (mean {np.mean(two0):.2f}), upper "
                   "bound 1.00 (any bound >= 0 covers a true 0).")
    calibrated = [c for c in result["tests"] if c["process"] in zero]
    for test in TESTS:
        for alpha in ALPHAS:
            sizes = [(c["rejections"][test][str(alpha)], c["reps_per_test"][test], c)
                     for c in calibrated if test in c["rejections"]]
            if not sizes:
                continue
            worst, r, c = max(sizes, key=lambda t: t[0])
            out.append(f"- {test} test, alpha = {alpha}: largest size {worst:.3f} "
                       f"± {_se(worst, r):.3f} ({c['process']}, N = {c['n']}), "
                       f"{'within' if worst <= alpha + 0.01 + 2 * _se(worst, r) else 'above'}"
                       " alpha + 0.01 up to twice its Monte-Carlo error.")
    return out


def _write(path: Path, text: str) -> None:
    """Write atomically: a temporary file beside ``path``, then a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


# ------------------------------------------------------------------ main
def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="few repetitions, N <= 10^4")
    ap.add_argument("--reps", type=int, default=None, help="repetitions per cell, N <= 10^4")
    ap.add_argument("--reps-large", type=int, default=None, help="repetitions at N = 10^5")
    ap.add_argument("--test-reps", type=int, default=None, help="repetitions per test cell")
    ap.add_argument("--unbiased-reps", type=int, default=None,
                    help="repetitions of the SKCE unbiased test on a calibrated process")
    ap.add_argument("--power-reps", type=int, default=None,
                    help="repetitions per test cell of a distorted process")
    ap.add_argument("--replicates", type=int, default=None, help="bootstrap replicates B")
    ap.add_argument("--resamples", type=int, default=200, help="resamples of each test")
    ap.add_argument("--jobs", type=int, default=2, help="worker processes")
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--out", type=Path, default=DOC, help="the Markdown document")
    ap.add_argument("--json", type=Path, default=None, help="also write every number here")
    ap.add_argument("--render-only", type=Path, default=None, metavar="JSON",
                    help="rewrite the document from a --json file of an earlier run")
    a = ap.parse_args(argv)
    if a.render_only is not None:
        result = json.loads(a.render_only.read_text())
        result["findings"] = findings(result)
        _write(a.out, render(result))
        return 0
    quick = a.quick
    cfg = {
        "quick": quick,
        "sizes": [500, 2000, 10_000] if quick else [500, 2000, 10_000, 100_000],
        "reps": a.reps or (20 if quick else 100),
        "reps_large": a.reps_large or (0 if quick else 40),
        "test_reps": a.test_reps or (20 if quick else 200),
        "power_reps": a.power_reps or (10 if quick else 40),
        "replicates": a.replicates or 200,
        "resamples": a.resamples,
        "jobs": a.jobs,
        "test_n": 2000,
        "test_n_unbiased": 500,
        "unbiased_reps": a.unbiased_reps or (40 if quick else 800),
        "seed": a.seed,
    }
    t0 = time.perf_counter()
    pops = populations(DRAWS if not quick or CACHE.exists() else 1_000_000, quick)
    seeds = np.random.SeedSequence(a.seed)
    jobs_iv = []
    for i, (name, _, _) in enumerate(PROCESSES):
        for j, n in enumerate(cfg["sizes"]):
            reps = cfg["reps_large"] if n >= 100_000 else cfg["reps"]
            if reps:
                seed = int(np.random.default_rng([a.seed, i, j]).integers(2**31))
                jobs_iv.append((name, n, reps, cfg["replicates"], pops[name], seed))
    jobs_t = []
    for i, name in enumerate(TEST_PROCESSES):
        for n in (cfg["test_n"], cfg["test_n_unbiased"]):
            seed = int(np.random.default_rng([a.seed, 100 + i, n]).integers(2**31))
            reps = cfg["test_reps"] if name.startswith("calibrated") else cfg["power_reps"]
            if n == cfg["test_n_unbiased"] and name.startswith("calibrated"):
                reps = cfg["unbiased_reps"]
            jobs_t.append((name, n, reps, cfg["resamples"], seed))
    del seeds
    # biggest cells first, so the pool is not left waiting on one at the end
    jobs_iv.sort(key=lambda j: -j[1] * j[2])
    with ProcessPoolExecutor(max_workers=a.jobs) as pool:
        fut_iv = [pool.submit(interval_cell, j) for j in jobs_iv]
        fut_t = [pool.submit(test_cell, j) for j in jobs_t]
        cells = []
        for f in fut_iv:
            cells.append(f.result())
            c = cells[-1]
            print(f"{c['process']:18s} N={c['n']:>6d}: {c['seconds']:.1f} s", file=sys.stderr)
        tcells = [f.result() for f in fut_t]
    # the SKCE unbiased test runs only on the small-N cells; the others give the rest
    order = {(p[0], n): i for i, p in enumerate(PROCESSES) for n in cfg["sizes"]}
    cells.sort(key=lambda c: order[(c["process"], c["n"])])
    tcells.sort(key=lambda c: (c["n"] != cfg["test_n"], TEST_PROCESSES.index(c["process"])))
    violations = 0
    for c in cells:
        for v in c["records"].values():
            violations += round((1.0 - v[2]) * c["reps"])
    result = {
        "config": cfg, "population": pops, "intervals": cells, "tests": tcells,
        "estimate_violations": violations, "seconds": time.perf_counter() - t0,
        "cpu_seconds": sum(c["cpu_seconds"] for c in (*cells, *tcells)),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
    }
    result["findings"] = findings(result)
    _write(a.out, render(result))
    if a.json is not None:
        a.json.write_text(json.dumps(result, indent=1))
    print(f"wrote {a.out} in {result['seconds'] / 60:.1f} min", file=sys.stderr)
    for line in result["findings"]:
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
