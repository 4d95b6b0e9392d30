"""Reference values for tests/test_conventions.py, computed by the real libraries.

Run from the repository root, in the benchmark environment that has the peer libraries:

    /work/bench-venv/bin/python tools/make_convention_reference.py

It writes tests/reference/conventions.json: for every input (a seeded synthetic recipe or a file
of ../shared/data, named, never copied) and every option combination, the number that
torchmetrics, scikit-learn (``calibration_curve``), netcal or relplot computes, or the error
it raises, with the library versions and the command line. trueprob itself is not used to
make any reference number; the tests recompute every case with
``trueprob.metrics.conventions`` and compare.

The input recipes (``build_input``) import only numpy, so the tests rebuild exactly the same
arrays from this file. Kull et al. 2019's classwise ECE has no installable library; its tests
are hand-computed cases in tests/test_conventions.py.
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
DEFAULT_OUT = REPO / "tests" / "reference" / "conventions.json"

# ----------------------------------------------------------------------------------------------
# Inputs: recipes shared with the tests (numpy only)
# ----------------------------------------------------------------------------------------------

#: Real files, by path relative to the data folder, and how each is turned into inputs.
FILES: dict[str, tuple[str, str]] = {
    "netcal/wrn16-4-c10": ("netcal-cifar-probs/wideresnet-16-4-cifar-10_test.npz", "probs"),
    "netcal/lenet5-c10": ("netcal-cifar-probs/lenet-5-cifar-10_test.npz", "probs"),
    "netcal/wrn16-4-c100": ("netcal-cifar-probs/wideresnet-16-4-cifar-100_test.npz", "probs"),
    "netcal/densenet-c100": ("netcal-cifar-probs/densenet-bc-100-cifar-100_test.npz", "probs"),
    "netcal/lenet5-c100": ("netcal-cifar-probs/lenet-5-cifar-100_test.npz", "probs"),
    "mukhoti/resnet110-c10": ("mukhoti2020-cifar-logits/cifar10_resnet110_brier_test.npz",
                              "softmax64"),
    "mukhoti/wrn26-10-c100": ("mukhoti2020-cifar-logits/cifar100_wrn26-10_brier_test.npz",
                              "softmax64"),
    "mukhoti-logits/resnet110-c10": (
        "mukhoti2020-cifar-logits/cifar10_resnet110_brier_test.npz", "logits"),
    "markus93/densenet40-c10": ("hollance-confidences/markus93__probs_densenet40_c10_logits.npz",
                                "confidences"),
    "markus93/resnet110-c10": ("hollance-confidences/markus93__probs_resnet110_c10_logits.npz",
                               "confidences"),
    "markus93/densenet40-c100": (
        "hollance-confidences/markus93__probs_densenet40_c100_logits.npz", "confidences"),
    "markus93/resnet110-c100": (
        "hollance-confidences/markus93__probs_resnet110_c100_logits.npz", "confidences"),
    "markus93/resnet50-birds": ("hollance-confidences/markus93__probs_resnet50_birds_logits.npz",
                                "confidences"),
}

#: Number of classes of the confidence-only files (labels and predictions index these).
FILE_CLASSES = {"markus93/densenet40-c10": 10, "markus93/resnet110-c10": 10,
                "markus93/densenet40-c100": 100, "markus93/resnet110-c100": 100,
                "markus93/resnet50-birds": 200}

SYNTHETIC = ("random-k10-f32", "random-k10-f64", "edges-k10-f32", "edges-k10-f64",
             "binary-f32", "binary-f64", "ties-k3-f64", "ties-binary-f32")


def softmax64(logits: np.ndarray) -> np.ndarray:
    """softmax computed in float64 and rounded once to the logits' dtype."""
    z = logits.astype(np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True)).astype(logits.dtype)


def _edge_values(dtype: Any, bin_counts: tuple[int, ...], low: float) -> np.ndarray:
    """k/B in ``dtype`` and its two neighbours, for k/B >= low: every edge any library uses
    (torch.linspace, np.linspace, k/B) is one of these."""
    dt = np.dtype(dtype).type
    out = []
    for b in bin_counts:
        for k in range(b + 1):
            v = dt(k / b)
            out += [np.nextafter(v, dt(-1)), v, np.nextafter(v, dt(2))]
    vals = np.unique(np.array(out, dtype=dtype))
    return vals[(vals >= low) & (vals <= 1)]


def _top_label_rows(rng: np.random.Generator, conf: np.ndarray, k: int,
                    dtype: Any) -> tuple[np.ndarray, np.ndarray]:
    """Rows of K probabilities whose maximum is exactly ``conf`` (at a random class), the
    rest shared equally; labels correct with probability conf**2 (overconfident)."""
    n = conf.shape[0]
    pred = rng.integers(0, k, n)
    rest = ((1.0 - conf.astype(np.float64)) / (k - 1)).astype(dtype)
    probs = np.repeat(rest[:, None], k, axis=1)
    probs[np.arange(n), pred] = conf
    correct = rng.random(n) < conf.astype(np.float64) ** 2
    other = (pred + rng.integers(1, k, n)) % k
    labels = np.where(correct, pred, other)
    return probs, labels


def build_input(name: str, data_dir: Path | None = None) -> dict[str, Any]:
    """The arrays of input ``name``: keys ``probs`` (N, K) or (N,), or ``logits``, or
    ``confidences`` + ``predictions`` + ``n_classes``; always ``labels``."""
    if name in FILES:
        if data_dir is None:
            raise FileNotFoundError(f"input {name!r} needs the shared data folder")
        path, how = FILES[name]
        with np.load(data_dir / path) as d:
            arrays = {key: d[key] for key in d.files}
        if how == "probs":
            return {"probs": arrays["probs"], "labels": arrays["labels"]}
        if how == "softmax64":
            return {"probs": softmax64(arrays["logits"]), "labels": arrays["labels"]}
        if how == "logits":
            return {"logits": arrays["logits"], "labels": arrays["labels"]}
        return {"confidences": arrays["confidence"], "predictions": arrays["preds"],
                "labels": arrays["labels"], "n_classes": FILE_CLASSES[name]}
    seed = SYNTHETIC.index(name) + 2026
    rng = np.random.default_rng(seed)
    if name.startswith("random-k10"):
        dtype = np.float32 if name.endswith("f32") else np.float64
        n, k = 4000, 10
        z = rng.normal(size=(n, k)) * 3.0
        e = np.exp(z - z.max(axis=1, keepdims=True))
        q = e / e.sum(axis=1, keepdims=True)
        one_hot = rng.random(n) < 0.1  # 10% of rows at confidence exactly 1.0
        q[one_hot] = np.eye(k)[rng.integers(0, k, int(one_hot.sum()))]
        probs = q.astype(dtype)
        # labels from a flattened version of q: the model is overconfident
        flat = q ** 0.5
        flat /= flat.sum(axis=1, keepdims=True)
        labels = (flat.cumsum(axis=1) < rng.random(n)[:, None]).sum(axis=1)
        return {"probs": probs, "labels": np.minimum(labels, k - 1)}
    if name.startswith("edges-k10"):
        dtype = np.float32 if name.endswith("f32") else np.float64
        values = _edge_values(dtype, (5, 7, 10, 14, 15, 20), 0.13)
        conf = np.repeat(values, 9)
        probs, labels = _top_label_rows(rng, conf, 10, dtype)
        # a few rows of exact ties (all 0.1: confidence 0.1, prediction class 0)
        ties = np.full((5, 10), 0.1, dtype=dtype)
        probs = np.concatenate([probs, ties])
        labels = np.concatenate([labels, [0, 0, 3, 5, 9]])
        order = rng.permutation(probs.shape[0])
        return {"probs": probs[order], "labels": labels[order]}
    if name.startswith("binary"):
        dtype = np.float32 if name.endswith("f32") else np.float64
        values = _edge_values(dtype, (5, 7, 10, 14, 15, 20), 0.0)
        p = np.concatenate([np.repeat(values, 7), rng.random(2000).astype(dtype),
                            np.zeros(50, dtype), np.ones(60, dtype)])
        labels = (rng.random(p.shape[0]) < p.astype(np.float64) ** 1.5).astype(np.int64)
        order = rng.permutation(p.shape[0])
        return {"probs": p[order], "labels": labels[order]}
    if name == "ties-k3-f64":
        rows = np.array([[1.0, 0.0, 0.0], [0.8, 0.1, 0.1], [0.6, 0.3, 0.1], [0.5, 0.25, 0.25],
                         [0.4, 0.35, 0.25], [1 / 3, 1 / 3, 1 / 3]])
        pick = rng.choice(rows.shape[0], 3000, p=[0.3, 0.3, 0.1, 0.1, 0.1, 0.1])
        probs = rows[pick][:, rng.permutation(3)]
        labels = rng.integers(0, 3, 3000)
        return {"probs": probs, "labels": labels}
    if name == "ties-binary-f32":
        p = np.array([0.0, 0.2, 0.5, 0.9, 1.0], dtype=np.float32)[
            rng.choice(5, 2000, p=[0.1, 0.2, 0.2, 0.3, 0.2])]
        labels = (rng.random(2000) < p).astype(np.int64)
        return {"probs": p, "labels": labels}
    raise KeyError(f"unknown input {name!r}")


def input_kind(data: dict[str, Any]) -> str:
    """'binary' for (N,) probabilities, else 'multiclass'."""
    return "binary" if "probs" in data and data["probs"].ndim == 1 else "multiclass"


def cases_for(name: str, data: dict[str, Any]) -> list[dict[str, Any]]:
    """The option combinations computed for one input."""
    out: list[dict[str, Any]] = []

    def add(convention: str, kind: str, norm: str, n_bins: int, strategy: str = "uniform"):
        out.append({"input": name, "convention": convention, "kind": kind, "norm": norm,
                    "n_bins": n_bins, "strategy": strategy})

    kind = "positive_class" if input_kind(data) == "binary" else "top_label"
    if "logits" in data:  # libraries that take logits themselves
        for n_bins in (10, 15):
            for norm in ("l1", "l2", "max"):
                add("torchmetrics", kind, norm, n_bins)
            add("relplot", kind, "l1", n_bins)
        return out
    for n_bins in (10, 15):
        for norm in ("l1", "l2", "max"):
            add("torchmetrics", kind, norm, n_bins)
            for strategy in ("uniform", "quantile"):
                add("sklearn", kind, norm, n_bins, strategy)
        for norm in ("l1", "max"):
            for strategy in ("uniform", "quantile"):
                add("netcal", kind, norm, n_bins, strategy)
        add("relplot", kind, "l1", n_bins)
    if name.startswith(("edges", "binary", "random")):
        for n_bins in (1, 7, 14, 20):
            add("torchmetrics", kind, "l1", n_bins)
            add("sklearn", kind, "l1", n_bins)
            add("netcal", kind, "l1", n_bins)
            add("relplot", kind, "l1", n_bins)
        add("relplot", kind, "l1", 93)  # int(1/(1/93)) + 1 = 93 bins: fails on 1.0
    return out


# ----------------------------------------------------------------------------------------------
# The libraries' numbers (imported lazily: the tests import this file without them)
# ----------------------------------------------------------------------------------------------

def _full_matrix(data: dict[str, Any]) -> np.ndarray:
    """(N, K) float64 rows whose maximum is the given confidence at the given prediction,
    the rest shared equally, for libraries that need a probability matrix."""
    c = data["confidences"].astype(np.float64)
    pred = data["predictions"]
    k = data["n_classes"]
    m = np.repeat(((1.0 - c) / (k - 1))[:, None], k, axis=1)
    m[np.arange(c.shape[0]), pred] = c
    assert np.array_equal(m.argmax(axis=1), pred) and np.array_equal(m.max(axis=1), c), \
        "a confidence below 1/K cannot be the maximum"
    return m


def _score_outcome(data: dict[str, Any], kind: str) -> tuple[np.ndarray, np.ndarray]:
    """(s, o): confidence and correctness (top-label) or q_1 and y (positive-class)."""
    y = data["labels"]
    if kind == "positive_class":
        p = data["probs"]
        return (p if p.ndim == 1 else p[:, 1]), y.astype(np.float64)
    if "confidences" in data:
        return data["confidences"], (data["predictions"] == y).astype(np.float64)
    q = data["probs"]
    return q.max(axis=1), (q.argmax(axis=1) == y).astype(np.float64)


def library_value(case: dict[str, Any], data: dict[str, Any]) -> tuple[float, str]:
    """(value, the call that made it) for one case."""
    conv, kind, norm = case["convention"], case["kind"], case["norm"]
    n_bins, strategy = case["n_bins"], case["strategy"]
    y = data["labels"]
    if conv == "torchmetrics":
        import torch
        from torchmetrics.functional.classification import (
            binary_calibration_error,
            multiclass_calibration_error,
        )
        target = torch.from_numpy(np.asarray(y, dtype=np.int64))
        if kind == "positive_class":
            p = data["probs"]
            preds = torch.from_numpy(np.ascontiguousarray(p if p.ndim == 1 else p[:, 1]))
            v = binary_calibration_error(preds, target, n_bins=n_bins, norm=norm)
            return float(v), f"binary_calibration_error(preds, target, n_bins={n_bins}, " \
                             f"norm={norm!r})"
        if "logits" in data:
            preds = torch.from_numpy(data["logits"])
        elif "probs" in data:
            preds = torch.from_numpy(data["probs"])
        else:
            preds = torch.from_numpy(_full_matrix(data))
        k = int(preds.shape[1])
        v = multiclass_calibration_error(preds, target, num_classes=k, n_bins=n_bins, norm=norm)
        return float(v), f"multiclass_calibration_error(preds, target, num_classes={k}, " \
                         f"n_bins={n_bins}, norm={norm!r})"
    if conv == "sklearn":
        from sklearn.calibration import calibration_curve
        s, o = _score_outcome(data, kind)
        prob_true, prob_pred = calibration_curve(o, s, n_bins=n_bins, strategy=strategy)
        # sklearn returns no counts: count the rows of its bins (calibration_curve's rule:
        # searchsorted into the inner edges) and check that these bins give its very means.
        if strategy == "quantile":
            edges = np.percentile(s, np.linspace(0, 1, n_bins + 1) * 100)
        else:
            edges = np.linspace(0.0, 1.0, n_bins + 1)
        ids = np.searchsorted(edges[1:-1], s)
        total = np.bincount(ids, minlength=n_bins)
        nz = total != 0
        assert np.array_equal(np.bincount(ids, weights=o, minlength=n_bins)[nz] / total[nz],
                              prob_true)
        assert np.array_equal(np.bincount(ids, weights=s, minlength=n_bins)[nz] / total[nz],
                              prob_pred)
        gap = prob_true - prob_pred
        w = total[nz] / total.sum()
        if norm == "l1":
            v = float(np.sum(w * np.abs(gap)))
        elif norm == "l2":
            v = float(np.sqrt(np.sum(w * gap ** 2)))
        else:
            v = float(np.max(np.abs(gap)))
        return v, (f"prob_true, prob_pred = calibration_curve(o, s, n_bins={n_bins}, "
                   f"strategy={strategy!r}); {norm} over bins weighted n_b/N")
    if conv == "netcal":
        from netcal.metrics import ECE, MCE
        metric = (ECE if norm == "l1" else MCE)(bins=n_bins,
                                                equal_intervals=strategy == "uniform")
        if kind == "positive_class":
            x = data["probs"]
        else:
            x = data["probs"] if "probs" in data else _full_matrix(data)
        v = metric.measure(x, np.asarray(y))
        name = "ECE" if norm == "l1" else "MCE"
        return float(v), f"netcal.metrics.{name}(bins={n_bins}, equal_intervals=" \
                         f"{strategy == 'uniform'}).measure(X, y)"
    if conv == "relplot":
        import relplot
        from relplot.metrics import binnedECE
        if kind == "positive_class":
            p = data["probs"]
            f, o = (p if p.ndim == 1 else p[:, 1]), y.astype(np.float64)
            how = "f = q_1, y"
        elif "logits" in data:
            f, o = relplot.multiclass_logits_to_confidences(data["logits"], y)
            how = "f, y = multiclass_logits_to_confidences(logits, y)"
        elif "probs" in data:
            f, o = relplot.multiclass_logits_to_confidences(data["probs"], y, probs=True)
            how = "f, y = multiclass_logits_to_confidences(probs, y, probs=True)"
        else:
            f, o = data["confidences"], (data["predictions"] == y) * 1.0
            how = "f = confidence, y = (pred == label) * 1.0"
        return float(binnedECE(f, o, nbins=n_bins)), f"{how}; binnedECE(f, y, nbins={n_bins})"
    raise KeyError(conv)


def versions() -> dict[str, str]:
    from importlib.metadata import version
    out = {name: version(name) for name in
           ("torchmetrics", "scikit-learn", "netcal", "relplot", "torch", "numpy", "scipy")}
    out["python"] = platform.python_version()
    out["machine"] = platform.machine()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=None,
                        help="shared data folder (default: $TRUEPROB_DATA or ../shared/data)")
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    data_dir = args.data or Path(os.environ.get("TRUEPROB_DATA", REPO.parent / "shared" / "data"))
    if not (data_dir / "netcal-cifar-probs").is_dir():
        parser.error(f"shared data folder not found at {data_dir}")
    start = time.perf_counter()
    cases = []
    for name in (*SYNTHETIC, *FILES):
        data = build_input(name, data_dir)
        for case in cases_for(name, data):
            try:
                value, call = library_value(case, data)
                case.update(value=value, call=call)
            except Exception as exc:  # the library's own failure is part of the reference
                case.update(error=f"{type(exc).__name__}: {exc}")
            cases.append(case)
        print(f"{name}: {sum(c['input'] == name for c in cases)} cases", file=sys.stderr)
    doc = {
        "description": "Calibration errors computed by peer libraries on named inputs, for "
                       "trueprob.metrics.conventions; inputs are rebuilt by "
                       "tools/make_convention_reference.py:build_input (synthetic: seeded "
                       "recipes; files: paths under ../shared/data).",
        "command": "/work/bench-venv/bin/python tools/make_convention_reference.py",
        "versions": versions(),
        "files": {name: {"path": path, "as": how} for name, (path, how) in FILES.items()},
        "cases": cases,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.output.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    os.replace(tmp, args.output)
    print(f"{len(cases)} cases in {time.perf_counter() - start:.1f} s -> {args.output}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
