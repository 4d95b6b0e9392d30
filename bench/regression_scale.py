"""Regression metrics over N = 10,000,000 rows in one pass with bounded memory.

    .venv/bin/python bench/regression_scale.py                 # N = 10M, Gaussian, ~15-30 s
    .venv/bin/python bench/regression_scale.py --family all    # + Laplace, Student-t, quantiles
    .venv/bin/python bench/regression_scale.py --n 1000000 --chunk 250000

Rows are generated on the fly, chunk by chunk, from a seeded generator: y_i = mu_i +
s sigma_i e_i with e_i from the family's standard distribution, mu_i ~ N(0, 1),
log sigma_i ~ N(0, 0.3^2) and s = 1.25 (the model's scale is 20% too small), so the report has
something to find. Each chunk goes into one :class:`trueprob.regression.RegressionStats`
(``update``), and the chunk is dropped before the next is made. Printed per family:

- the time, in all and inside ``update`` (the metrics without the data generation;
  ``rows_per_second`` counts the latter);
- the peak RSS (``resource.getrusage(RUSAGE_SELF).ru_maxrss``) before the first chunk (the
  imports), after it and at the end: equal up to allocator noise when the state is bounded, the
  peak being one chunk's temporaries, not N;
- the size of the serialised state (``len(to_bytes())``), independent of N;
- the metrics, with two checks: the Gaussian/Laplace scale factor read off the state
  (:meth:`RegressionStats.scale_factor`) recovers s, and the 90% interval coverage is that of a
  model whose spread is 1/s of the truth.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from typing import Any

import numpy as np
from scipy import stats

from trueprob.regression import Gaussian, Laplace, QuantileSet, RegressionStats, StudentT

TRUE_FACTOR = 1.25
DF = 5.0
LEVELS = np.arange(1, 20) / 20


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    value = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return value / (1 << 20) if sys.platform == "darwin" else value / 1024


def chunk(rng: np.random.Generator, n: int, family: str) -> tuple[np.ndarray, Any]:
    mu = rng.standard_normal(n)
    sigma = np.exp(0.3 * rng.standard_normal(n))
    if family == "laplace":
        e = rng.laplace(size=n)
    elif family == "student_t":
        e = rng.standard_t(DF, size=n)
    else:
        e = rng.standard_normal(n)
    y = mu + TRUE_FACTOR * sigma * e
    if family == "gaussian":
        return y, Gaussian(mean=mu, std=sigma)
    if family == "laplace":
        return y, Laplace(loc=mu, scale=sigma)
    if family == "student_t":
        return y, StudentT(loc=mu, scale=sigma, df=DF)
    q = mu[:, None] + sigma[:, None] * stats.norm.ppf(LEVELS)[None, :]
    return y, QuantileSet(quantiles=q, levels=LEVELS)


def run(family: str, n: int, rows: int, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    state = RegressionStats(quantile_levels=LEVELS if family == "quantiles" else None)
    baseline = peak_rss_mib()
    start = time.perf_counter()
    first_peak = None
    done = 0
    in_update = 0.0
    while done < n:
        m = min(rows, n - done)
        y, pred = chunk(rng, m, family)
        t0 = time.perf_counter()
        state.update(y, pred)
        in_update += time.perf_counter() - t0
        del y, pred
        done += m
        if first_peak is None:
            first_peak = peak_rss_mib()
    report = state.finalize()
    elapsed = time.perf_counter() - start
    out: dict[str, Any] = {
        "family": family, "n": report.n, "chunk_rows": rows, "seconds": round(elapsed, 2),
        "seconds_in_update": round(in_update, 2), "rows_per_second": round(n / in_update),
        "peak_rss_mib_before": round(baseline, 1),
        "peak_rss_mib_after_first_chunk": round(first_peak or 0.0, 1),
        "peak_rss_mib_at_end": round(peak_rss_mib(), 1),
        "state_bytes": len(state.to_bytes()), "nll": report.nll, "crps": report.crps,
        "pit_ece": report.pit_ece, "quantile_calibration_error":
        report.quantile_calibration_error,
        "coverage": {f"{c.level:g}": round(c.observed, 5) for c in report.coverage},
    }
    if family in ("gaussian", "laplace"):
        out["scale_factor"] = state.scale_factor(family)
        out["scale_factor_ok"] = bool(abs(out["scale_factor"] - TRUE_FACTOR) < 1e-2)
    if family == "gaussian":
        # y inside mu +- z_.95 sigma  <=>  |e| <= z_.95 / s
        expect = 2 * stats.norm.cdf(stats.norm.ppf(0.95) / TRUE_FACTOR) - 1
        out["coverage_0.9_expected"] = round(float(expect), 5)
        out["coverage_ok"] = bool(abs(report.coverage[2].observed - expect) < 1e-3)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000_000)
    parser.add_argument("--chunk", type=int, default=1 << 20)
    parser.add_argument("--family", default="gaussian",
                        choices=["gaussian", "laplace", "student_t", "quantiles", "all"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    families = (["gaussian", "laplace", "student_t", "quantiles"] if args.family == "all"
                else [args.family])
    results = []
    for family in families:
        res = run(family, args.n, args.chunk, args.seed)
        results.append(res)
        print(json.dumps(res))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1)
    ok = all(r.get("scale_factor_ok", True) and r.get("coverage_ok", True) for r in results)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
