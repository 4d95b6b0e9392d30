"""Benchmark: trueprob.sklearn.CalibratedClassifier against scikit-learn's CalibratedClassifierCV.

On scikit-learn's bundled datasets (digits, breast_cancer, wine, iris; no download), for a
base classifier (a standardised ``LogisticRegression`` and ``GaussianNB``), every method is
fitted on the same outer training folds with the same inner cross-fitting splits
(``StratifiedKFold(5, shuffle=True, random_state=1)``, ``ensemble=True``) and evaluated on the
same outer held-out folds (``StratifiedKFold(5, shuffle=True, random_state=0)``). The held-out
predictions of the five outer folds are pooled (every row is predicted once) and scored:

- NLL: mean of -log q_{i, y_i} in nats, from ``predict_log_proba`` where the estimator has
  it (trueprob's, exact even where the probability underflows), else from the log of
  ``predict_proba`` (``inf`` when a method gives a probability of exactly 0 to an observed
  class; the number of such rows is shown);
- ECE: top-label, 15 equal-width right-closed bins (SPEC.md), ``trueprob.metrics.top_label_ece``;
- fit: seconds of ``fit`` summed over the five outer folds (``time.perf_counter``; the base
  classifier is fitted 5 times inside each, the same for every row of the table).

"uncalibrated" is the base classifier fitted on the whole outer training part.
"tp:temperature+log_proba" calibrates ``predict_log_proba`` (exact log-probabilities) instead
of ``decision_function`` / ``predict_proba``. A method whose
fit raises (e.g. Platt scaling when a fold's scores separate the classes, which has no
maximum-likelihood solution) is shown with the error's first words.

Run (10-20 minutes for everything on a loaded 2-core machine; one case in seconds)::

    PYTHONPATH=src python bench/sklearn_calibration.py
    PYTHONPATH=src python bench/sklearn_calibration.py --datasets digits --models lr \\
        --methods sk:temperature,tp:temperature --json out.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import format_table, machine_info

DATASETS = ("digits", "breast_cancer", "wine", "iris")
MODELS = ("lr", "nb")
METHODS = ("uncalibrated", "sk:sigmoid", "sk:isotonic", "sk:temperature", "tp:temperature",
           "tp:vector", "tp:platt", "tp:platt-smoothed", "tp:beta", "tp:isotonic",
           "tp:histogram", "tp:bbq", "tp:enir", "tp:temperature+log_proba")


def _load(name: str) -> tuple[np.ndarray, np.ndarray]:
    from sklearn import datasets

    X, y = getattr(datasets, f"load_{name}")(return_X_y=True)
    return np.asarray(X, dtype=np.float64), np.asarray(y)


def _base(model: str) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import GaussianNB
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if model == "lr":
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
    return GaussianNB()


def _estimator(method: str, model: str, inner: Any) -> Any:
    from sklearn.base import clone

    base = _base(model)
    if method == "uncalibrated":
        return clone(base)
    library, name = method.split(":", 1)
    if library == "sk":
        from sklearn.calibration import CalibratedClassifierCV

        return CalibratedClassifierCV(base, method=name, cv=inner, ensemble=True)
    from trueprob.sklearn import CalibratedClassifier

    name, _, response = name.partition("+")  # "+log_proba": response="predict_log_proba"
    method_arg: Any = name
    if name == "platt-smoothed":  # Platt's (1999) targets, as scikit-learn's sigmoid uses
        from trueprob.calibrators import PlattScaling

        method_arg = PlattScaling(smooth_targets=True)
    return CalibratedClassifier(base, method=method_arg, cv=inner, ensemble=True,
                                response=f"predict_{response}" if response else "auto")


def run_case(dataset: str, model: str, methods: list[str]) -> list[dict[str, Any]]:
    """Pooled held-out NLL, ECE and total fit time of every method on one dataset."""
    from sklearn.model_selection import StratifiedKFold

    from trueprob.metrics import top_label_ece

    X, y = _load(dataset)
    classes = np.unique(y)
    outer = list(StratifiedKFold(5, shuffle=True, random_state=0).split(X, y))
    inner = StratifiedKFold(5, shuffle=True, random_state=1)
    rows = []
    for method in methods:
        logp = np.empty((len(y), len(classes)))
        seconds = 0.0
        error = None
        for train, test in outer:
            est = _estimator(method, model, inner)
            start = time.perf_counter()
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    est.fit(X[train], y[train])
            except ValueError as exc:
                error = str(exc)
                break
            seconds += time.perf_counter() - start
            if hasattr(est, "predict_log_proba"):
                logp[test] = est.predict_log_proba(X[test])
            else:
                with np.errstate(divide="ignore"):
                    logp[test] = np.log(est.predict_proba(X[test]))
        if error is not None:
            rows.append({"dataset": dataset, "model": model, "method": method,
                         "error": error})
            continue
        # rows normalised in float64 (scikit-learn's rows sum to 1 within ~1e-15)
        probs = np.exp(logp)
        probs = probs / probs.sum(axis=1, keepdims=True)
        logp_true = logp[np.arange(len(y)), np.searchsorted(classes, y)]
        zero = int(np.sum(np.isneginf(logp_true)))
        nll = float(-np.mean(logp_true))
        ece = top_label_ece(np.searchsorted(classes, y), probs=probs)
        rows.append({"dataset": dataset, "model": model, "method": method, "nll": nll,
                     "n_zero": zero, "ece": ece, "fit_s": seconds})
    return rows


def _cell(row: dict[str, Any], key: str) -> str:
    if "error" in row:
        return "error" if key != "nll" else "fails: " + " ".join(row["error"].split()[:9])
    value = row[key]
    if key == "nll":
        return f"inf ({row['n_zero']} rows p=0)" if math.isinf(value) else f"{value:.4f}"
    if key == "ece":
        return f"{value:.4f}"
    return f"{value:.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--json", help="also write the rows as JSON here")
    args = parser.parse_args(argv)
    import sklearn

    methods = [m for m in args.methods.split(",") if m]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        parser.error(f"unknown methods {unknown}; choose from {list(METHODS)}")
    all_rows: list[dict[str, Any]] = []
    for dataset in args.datasets.split(","):
        for model in args.models.split(","):
            rows = run_case(dataset, model, methods)
            all_rows.extend(rows)
            print(f"\n{dataset} (N={len(_load(dataset)[1])}), base: "
                  f"{'LogisticRegression' if model == 'lr' else 'GaussianNB'}")
            print(format_table(["method", "NLL", "ECE", "fit s"],
                               [[r["method"], _cell(r, "nll"), _cell(r, "ece"),
                                 _cell(r, "fit_s")] for r in rows]))
    print(f"\nscikit-learn {sklearn.__version__}; {machine_info()}")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": all_rows, "machine": machine_info(),
                                               "sklearn": sklearn.__version__}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
