"""Reference values for tests/test_smooth_ece.py, computed by relplot (Błasiok & Nakkiran).

Run from the repository root, in the benchmark environment that has relplot:

    /work/bench-venv/bin/python tools/make_smooth_reference.py

It writes tests/reference/smooth_ece_relplot.json. trueprob is not imported: every number comes
from relplot 1.0.3 (``relplot.metrics.smECE`` and ``smECE_sigma``), with the library version and
the command line recorded. For every input (a numpy-only synthetic recipe, or a file of
../shared/data named by its path, never copied) it records, with f and y made as
``relplot.multiclass_logits_to_confidences`` makes them (top-label confidence and correctness):

- ``default``: ``smECE(f, y, return_width=True)`` with relplot's default configuration, and
  ``smECE_sigma(f, y, s)`` at the fixed bandwidths ``SIGMAS``;
- ``fine``: the same with ``relplot.config.smECE_mesh_pts = 20001``: relplot evaluates the
  smoothed residual on max(mesh, 10/s) points and sums it like a Riemann sum, so its default
  of 200 points leaves an error of up to ~2e-4; the fine mesh removes that part;
- ``fine_boundary_fixed`` (a diagnostic, not relplot's output): the ``fine`` numbers with
  ``ReflectedGaussianKernel.convolve`` patched to count the two end nodes of relplot's grid
  twice before reflecting. relplot 1.0.3 reflects ``values[1:]`` / ``values[:-1]`` only, so
  the mass on the nodes t = 0 and t = 1 gets one Gaussian instead of the two (direct and
  mirrored) of the reflected kernel, and a point with f = 1 integrates to 1/2. On data with
  many confidences at or near 1.0 this changes relplot's smooth ECE by up to ~0.045.

``boundary_fraction`` is the share of rows in relplot's first or last grid cell at its
returned width (f < h or f > 1 - h, h = 1 / (max(2000, round(20 / s)) // 2)), the rows
the end-node treatment affects.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "tests" / "reference" / "smooth_ece_relplot.json"
SIGMAS = (0.01, 0.03, 0.1)
FINE_MESH = 20001

# ----------------------------------------------------------------------------------------------
# Inputs: recipes shared with the tests (numpy only)
# ----------------------------------------------------------------------------------------------

#: Real files (path relative to the data folder) and the array that holds the model's output.
FILES: dict[str, tuple[str, str]] = {
    "netcal/wrn16-4-c10": ("netcal-cifar-probs/wideresnet-16-4-cifar-10_test.npz", "probs"),
    "netcal/lenet5-c10": ("netcal-cifar-probs/lenet-5-cifar-10_test.npz", "probs"),
    "netcal/wrn16-4-c100": ("netcal-cifar-probs/wideresnet-16-4-cifar-100_test.npz", "probs"),
    "netcal/densenet-c100": ("netcal-cifar-probs/densenet-bc-100-cifar-100_test.npz", "probs"),
    "netcal/lenet5-c100": ("netcal-cifar-probs/lenet-5-cifar-100_test.npz", "probs"),
    "mukhoti/resnet110-brier-c10": (
        "mukhoti2020-cifar-logits/cifar10_resnet110_brier_test.npz", "logits"),
    "mukhoti/wrn26-10-flsd53-c10": (
        "mukhoti2020-cifar-logits/cifar10_wrn26-10_flsd53_test.npz", "logits"),
    "mukhoti/resnet50-brier-c100": (
        "mukhoti2020-cifar-logits/cifar100_resnet50_brier_test.npz", "logits"),
    "mukhoti/densenet121-brier-c100": (
        "mukhoti2020-cifar-logits/cifar100_densenet121_brier_test.npz", "logits"),
    "markus93/densenet40-c10": (
        "hollance-confidences/markus93__probs_densenet40_c10_logits.npz", "confidence"),
    "markus93/resnet110-c10": (
        "hollance-confidences/markus93__probs_resnet110_c10_logits.npz", "confidence"),
    "markus93/densenet40-c100": (
        "hollance-confidences/markus93__probs_densenet40_c100_logits.npz", "confidence"),
    "markus93/resnet110-c100": (
        "hollance-confidences/markus93__probs_resnet110_c100_logits.npz", "confidence"),
    "markus93/resnet50-birds": (
        "hollance-confidences/markus93__probs_resnet50_birds_logits.npz", "confidence"),
    "hollance/snacks": ("hollance-confidences/other__snacks.npz", "confidence"),
    "imagenet/resnext101-32x8d": (
        "hollance-confidences/ImageNet_torchvision__resnext101_32x8d.npz", "confidence"),
    "imagenet/efficientnet-b3a": (
        "hollance-confidences/ImageNet_pytorch-image-models__efficientnet_b3a.npz",
        "confidence"),
}

#: Synthetic binary (f, y): n rows, f in [lo, hi], P(y = 1 | f) = f ** power.
SYNTHETIC: dict[str, tuple[int, float, float, float]] = {
    "synth/interior-2000": (2000, 0.01, 0.99, 1.3),
    "synth/interior-20000": (20000, 0.01, 0.99, 1.3),
    "synth/calibrated-5000": (5000, 0.02, 0.98, 1.0),
    "synth/underconfident-3000": (3000, 0.05, 0.95, 0.6),
    "synth/full-5000": (5000, 0.0, 1.0, 1.3),
}


def synthetic(n: int, lo: float, hi: float, power: float) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic, RNG-free: f_i from the golden-ratio sequence on [lo, hi], y_i = 1 when the
    plastic-number sequence u_i < f_i ** power (so P(y = 1 | f) = f ** power)."""
    i = np.arange(1, n + 1, dtype=np.float64)
    f = lo + (hi - lo) * np.modf(i * 0.6180339887498949)[0]
    u = np.modf(i * 0.7548776662466927 + 0.5)[0]
    y = (u < f**power).astype(np.float64)
    return f, y


def load_file(name: str, data_dir: Path) -> dict[str, np.ndarray]:
    """The arrays of one real file: ``labels`` and ``probs`` | ``logits`` | ``confidence`` +
    ``preds``."""
    path, key = FILES[name]
    with np.load(data_dir / path) as archive:
        out = {"labels": archive["labels"], key: archive[key]}
        if key == "confidence":
            out["preds"] = archive["preds"]
    return out


def data_dir_default() -> Path:
    env = os.environ.get("TRUEPROB_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


# ----------------------------------------------------------------------------------------------
# relplot
# ----------------------------------------------------------------------------------------------

def relplot_inputs(name: str, data_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    import relplot

    if name in SYNTHETIC:
        return synthetic(*SYNTHETIC[name])
    arrays = load_file(name, data_dir)
    y = arrays["labels"]
    if "probs" in arrays:
        return relplot.multiclass_logits_to_confidences(arrays["probs"], y, probs=True)
    if "logits" in arrays:
        return relplot.multiclass_logits_to_confidences(arrays["logits"], y)
    f = np.asarray(arrays["confidence"], dtype=np.float64)
    return f, (arrays["preds"] == y).astype(np.float64)


def _measure(f: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    from relplot.metrics import smECE, smECE_sigma

    value, width = smECE(f, y, return_width=True)
    at = {f"{s:g}": float(smECE_sigma(f, y, s)) for s in SIGMAS}
    at_width = float(smECE_sigma(f, y, width))
    return {"smece": float(value), "width": float(width), "smece_sigma": at,
            "smece_sigma_at_width": at_width}


def measure(f: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    import relplot.config as config
    from relplot.kernels import ReflectedGaussianKernel

    original_mesh = config.smECE_mesh_pts
    original_convolve = ReflectedGaussianKernel.convolve

    def convolve_both_images(self: Any, values: np.ndarray, eval_points: int) -> np.ndarray:
        doubled = values.copy()
        doubled[0] *= 2.0
        doubled[-1] *= 2.0
        return original_convolve(self, doubled, eval_points)  # type: ignore[no-any-return]

    out: dict[str, Any] = {}
    try:
        out["default"] = _measure(f, y)
        config.smECE_mesh_pts = FINE_MESH
        out["fine"] = _measure(f, y)
        ReflectedGaussianKernel.convolve = convolve_both_images  # type: ignore[method-assign]
        out["fine_boundary_fixed"] = _measure(f, y)
    finally:
        config.smECE_mesh_pts = original_mesh
        ReflectedGaussianKernel.convolve = original_convolve  # type: ignore[method-assign]
    width = out["default"]["width"]
    h = 1.0 / (max(2000, round(20 / width)) // 2)
    out["boundary_fraction"] = float(np.mean((f < h) | (f > 1.0 - h)))
    out["n"] = int(f.size)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--data", type=Path, default=None,
                        help="shared data folder (default: $TRUEPROB_DATA or ../shared/data)")
    args = parser.parse_args(argv)
    import relplot

    data_dir = args.data or data_dir_default()
    names: list[str] = list(SYNTHETIC)
    if (data_dir / "netcal-cifar-probs").is_dir():
        names += list(FILES)
    else:
        print(f"data folder {data_dir} not found: synthetic inputs only", file=sys.stderr)
    cases = {}
    for name in names:
        start = time.perf_counter()
        f, y = relplot_inputs(name, data_dir)
        cases[name] = measure(np.asarray(f, np.float64), np.asarray(y, np.float64))
        print(f"{name}: smECE {cases[name]['default']['smece']:.6f} "
              f"({time.perf_counter() - start:.1f} s)", file=sys.stderr)
    payload = {
        "generator": "tools/make_smooth_reference.py",
        "command": "/work/bench-venv/bin/python tools/make_smooth_reference.py",
        "library": {"relplot": relplot.__version__ if hasattr(relplot, "__version__")
                    else _dist_version("relplot"),
                    "numpy": np.__version__, "python": platform.python_version()},
        "sigmas": list(SIGMAS),
        "fine_mesh": FINE_MESH,
        "inputs": ("top-label (f, y) from relplot.multiclass_logits_to_confidences; synthetic "
                   "recipes from synthetic(); files named relative to ../shared/data"),
        "cases": cases,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n")
    print(f"wrote {args.out} ({len(cases)} cases)", file=sys.stderr)
    return 0


def _dist_version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


if __name__ == "__main__":
    raise SystemExit(main())
