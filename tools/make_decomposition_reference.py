"""Reference values for trueprob.decompose from model-diagnostics' CORP `decompose`.

Run with the benchmark environment (model-diagnostics is not a dependency of trueprob):

    /work/bench-venv/bin/python tools/make_decomposition_reference.py

Writes tests/reference/decomposition_model_diagnostics.json: for each data set (a recipe that
the test rebuilds), model-diagnostics' miscalibration, discrimination, uncertainty and score of
the log loss (nats) and the squared error (Brier), with the library version and this command.
"""

from __future__ import annotations

import json
import os
import sys
from importlib.metadata import version
from pathlib import Path

import numpy as np
from model_diagnostics.scoring import LogLoss, SquaredError, decompose

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("TRUEPROB_DATA", REPO.parent / "shared" / "data"))


def datasets() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Binary (p, y) pairs; the test rebuilds each from the same recipe."""
    out = {}
    rng = np.random.default_rng(12345)
    p = np.round(rng.beta(2, 2, size=2000), 2)  # many ties
    y = (rng.random(2000) < p**1.5).astype(float)
    out["synthetic_beta_ties"] = (p, y)
    d = np.load(DATA / "mukhoti2020-cifar-logits" / "cifar100_resnet110_brier_test.npz")
    z = d["logits"].astype(np.float64)
    q = np.exp(z - z.max(1, keepdims=True))
    q /= q.sum(1, keepdims=True)
    out["cifar100_resnet110_brier_top_label"] = (q.max(1), (q.argmax(1) == d["labels"]) * 1.0)
    h = np.load(DATA / "hollance-confidences" / "markus93__probs_resnet110_c100_logits.npz")
    c = h["confidence"].astype(np.float64)
    a = (h["preds"] == h["labels"]) * 1.0
    keep = ~((c == 1.0) & (a == 0))  # an exact 1.0 on a wrong prediction has infinite log loss
    out["markus93_resnet110_c100_top_label"] = (c[keep], a[keep])
    return out


def main() -> None:
    result = {"library": "model-diagnostics", "version": version("model-diagnostics"),
              "command": "/work/bench-venv/bin/python tools/make_decomposition_reference.py",
              "python": sys.version.split()[0], "cases": {}}
    for name, (p, y) in datasets().items():
        case = {}
        for score, fn in (("log", LogLoss()), ("brier", SquaredError())):
            df = decompose(y, p, scoring_function=fn)
            row = df.row(0, named=True)
            case[score] = {k: float(row[k]) for k in ("miscalibration", "discrimination",
                                                      "uncertainty", "score")}
        result["cases"][name] = case
    path = REPO / "tests" / "reference" / "decomposition_model_diagnostics.json"
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
