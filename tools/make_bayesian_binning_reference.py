"""Reference values for tests/test_bayesian_binning.py, computed by netcal 1.4.0 (BBQ, ENIR).

netcal pulls pyro and gpytorch as dependencies, so it is not installed anywhere: its wheel is
unpacked, with tqdm (the one import its binning package needs beyond numpy, scipy, torch and
scikit-learn), into a folder put on ``PYTHONPATH``:

    /work/venv/bin/pip download --no-deps netcal==1.4.0 tqdm -d /tmp/netcal_dl
    cd /tmp/netcal_dl && for w in *.whl; do unzip -q -o "$w" -d src; done
    PYTHONPATH=/tmp/netcal_dl/src /work/venv/bin/python tools/make_bayesian_binning_reference.py

It writes tests/reference/bayesian_binning_netcal.json. trueprob is not imported; every number
comes from ``netcal.binning.BBQ()`` and ``netcal.binning.ENIR()`` with their defaults (BIC
score, equal-width bins for BBQ, the mPAVA path with quick initialisation for ENIR, elbow
selection with alpha = 0.001), fitted with ``fit(p, y)`` and evaluated with ``transform`` on
the fit inputs and on a grid. The inputs are numpy-only seeded recipes (recorded here, rebuilt
by the test), binary (p of the positive class) and K = 3 (softmax rows; netcal fits one-vs-rest
and renormalises), plus the first models of netcal's near-isotonic path on binary_300.
"""

from __future__ import annotations

import contextlib
import io
import json
import platform
import sys
from pathlib import Path
from typing import Any

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "tests" / "reference" / "bayesian_binning_netcal.json"


def binary_case(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """p = sigmoid(2 u), y ~ Bernoulli(sigmoid(u)), u ~ N(0, 1.5^2): over-confident scores."""
    rng = np.random.default_rng(seed)
    u = rng.normal(size=n) * 1.5
    y = (rng.random(n) < 1 / (1 + np.exp(-u))).astype(np.int64)
    return 1 / (1 + np.exp(-2 * u)), y


def multiclass_case(seed: int, n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """q = softmax(2 u), y ~ Cat(softmax(u)), u ~ N(0, 1)."""
    rng = np.random.default_rng(seed)
    u = rng.normal(size=(n, k))
    pu = np.exp(u - u.max(1, keepdims=True))
    pu /= pu.sum(1, keepdims=True)
    y = (rng.random(n)[:, None] > np.cumsum(pu, axis=1)).sum(axis=1).clip(0, k - 1)
    q = np.exp(2 * u - (2 * u).max(1, keepdims=True))
    return q / q.sum(1, keepdims=True), y.astype(np.int64)


CASES = {
    "binary_300": ("binary", {"seed": 0, "n": 300}),
    "binary_2000": ("binary", {"seed": 1, "n": 2000}),
    "multiclass_600_k3": ("multiclass", {"seed": 2, "n": 600, "k": 3}),
}
GRID = [float(x) for x in np.linspace(0.005, 0.995, 25)]
FIT_ROWS = 150  # transform of the first rows of the fit inputs
PATH_MODELS = 12  # models of the near-isotonic path recorded for binary_300


def _nir_path(x: np.ndarray, y: np.ndarray) -> list[dict[str, Any]]:
    """The first models of netcal's mPAVA path (NearIsotonicRegression, quick_init=True):
    lambda, group values and group sizes (netcal's own bookkeeping)."""
    from netcal.binning.NearIsotonicRegression import NearIsotonicRegression

    path = []
    with contextlib.redirect_stdout(io.StringIO()):
        model = NearIsotonicRegression(quick_init=True)
        model.fit(x, y)
        while model is not None and len(path) < PATH_MODELS:
            path.append({"lambda": float(model._lambda),
                         "values": np.asarray(model._group_values, np.float64).tolist(),
                         "sizes": [len(g) for g in model._group_items]})
            model = model.get_next_model()
    return path


def main() -> int:
    import netcal
    import sklearn
    import torch
    from netcal.binning import BBQ, ENIR

    out: dict[str, Any] = {
        "source": "netcal 1.4.0 (pip download --no-deps netcal==1.4.0, unpacked; not installed)",
        "netcal": netcal.__version__, "numpy": np.__version__, "torch": torch.__version__,
        "sklearn": sklearn.__version__, "python": platform.python_version(),
        "command": "PYTHONPATH=/tmp/netcal_dl/src /work/venv/bin/python "
                   "tools/make_bayesian_binning_reference.py",
        "grid": GRID, "cases": {},
    }
    for name, (kind, recipe) in CASES.items():
        x, y = binary_case(**recipe) if kind == "binary" else multiclass_case(**recipe)
        entry: dict[str, Any] = {"kind": kind, "recipe": recipe}
        for label, cls in (("bbq", BBQ), ("enir", ENIR)):
            with contextlib.redirect_stdout(io.StringIO()), \
                    contextlib.redirect_stderr(io.StringIO()):  # progress bars and prints
                model = cls().fit(x, y)
                fitted = model.transform(x)
                if kind == "binary":
                    grid = model.transform(np.asarray(GRID))
                else:
                    g = np.asarray(GRID)[:, None]
                    grid_rows = np.concatenate([g, (1 - g) * 0.6, (1 - g) * 0.4], axis=1)
                    grid = model.transform(grid_rows)
            entry[label] = {"fit_inputs": np.asarray(fitted)[:FIT_ROWS].tolist(),
                            "grid": np.asarray(grid).tolist()}
            if kind == "binary":
                entry[label]["n_models"] = len(model._binning_models)
        if name == "binary_300":
            entry["nir_path"] = _nir_path(x, y)
        out["cases"][name] = entry
        print(name, "done", file=sys.stderr)
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {OUT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
