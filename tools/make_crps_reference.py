"""Generate tests/reference/crps_reference.json: CRPS values computed by other libraries.

Run with the benchmark environment, which has the peer libraries (never imports trueprob):

    /work/bench-venv/bin/python tools/make_crps_reference.py

Cases are fixed inputs (drawn once with numpy's seeded PCG64 and written into the file, so the
test does not depend on the generator):

- Gaussian: ``properscoring.crps_gaussian(y, mu, sig)`` and ``scoringrules.crps_normal(y, mu,
  sigma)``;
- Laplace: ``scoringrules.crps_laplace(y, location, scale)`` and
  ``properscoring.crps_quadrature(y, scipy.stats.laplace(loc, scale))`` (numerical integration);
- Student-t: ``scoringrules.crps_t(y, df, location, scale)`` and
  ``properscoring.crps_quadrature(y, scipy.stats.t(df, loc, scale))``;
- quantile sets: ``scoringrules.crps_quantile(y, quantiles, alpha)`` (the pinball-loss
  average) for Gaussian quantiles at several level sets.

Every value is stored with the library name and version.
"""

from __future__ import annotations

import json
import platform
import sys
from importlib.metadata import version
from pathlib import Path

import numpy as np
import properscoring as ps
import scoringrules as sr
from scipy import stats

OUT = Path(__file__).resolve().parents[1] / "tests" / "reference" / "crps_reference.json"


def main() -> None:
    rng = np.random.default_rng(20260101)
    n = 12
    y = np.round(rng.normal(size=n) * 2.0, 6)
    mu = np.round(rng.normal(size=n), 6)
    scale = np.round(np.exp(rng.normal(size=n) * 0.7), 6)
    y[0], mu[0], scale[0] = 0.0, 0.0, 1.0  # the textbook case
    y[1], mu[1], scale[1] = 30.0, 0.0, 1.0  # far tail
    cases: list[dict] = []

    def add(family: str, params: dict, library: str, values: np.ndarray) -> None:
        cases.append({"family": family, "library": library,
                      "library_version": version(library.split(".")[0]),
                      "observed": y.tolist(), **params,
                      "crps": [float(v) for v in np.asarray(values, dtype=np.float64)]})

    g = {"loc": mu.tolist(), "scale": scale.tolist()}
    add("gaussian", g, "properscoring", ps.crps_gaussian(y, mu, scale))
    add("gaussian", g, "scoringrules", sr.crps_normal(y, mu, scale, backend="numpy"))
    add("laplace", g, "scoringrules", sr.crps_laplace(y, mu, scale, backend="numpy"))
    add("laplace", g, "properscoring",
        [ps.crps_quadrature(y[i], stats.laplace(mu[i], scale[i])) for i in range(n)])
    for df in (1.5, 3.0, 10.0):
        t = {**g, "df": df}
        add("student_t", t, "scoringrules", sr.crps_t(y, df, mu, scale, backend="numpy"))
        add("student_t", t, "properscoring",
            [ps.crps_quadrature(y[i], stats.t(df, mu[i], scale[i])) for i in range(n)])
    for levels in ([0.1, 0.5, 0.9], [j / 20 for j in range(1, 20)],
                   [0.025, 0.25, 0.5, 0.75, 0.975]):
        lv = np.asarray(levels)
        q = mu[:, None] + scale[:, None] * stats.norm.ppf(lv)[None, :]
        add("quantiles", {"quantiles": q.tolist(), "levels": lv.tolist()}, "scoringrules",
            sr.crps_quantile(y, q, lv, backend="numpy"))
    meta = {
        "generated_by": "tools/make_crps_reference.py",
        "command": "/work/bench-venv/bin/python tools/make_crps_reference.py",
        "python": platform.python_version(), "numpy": np.__version__,
        "scipy": version("scipy"), "argv": sys.argv[1:],
    }
    OUT.write_text(json.dumps({"meta": meta, "cases": cases}, indent=1) + "\n")
    print(f"wrote {len(cases)} cases to {OUT}")


if __name__ == "__main__":
    main()
