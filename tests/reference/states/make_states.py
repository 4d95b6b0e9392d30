"""How the reference state blobs were made (run once, at the commit named in expected.json,
before the state base class; rerunning it with later code would test nothing).

    PYTHONPATH=src python tests/reference/states/make_states.py
"""

import gzip
import json
import os
import subprocess

import numpy as np
from scipy.stats import norm

from trueprob._validation import prepare
from trueprob.multilabel.stats import MultilabelStats
from trueprob.regression import Gaussian, QuantileSet, RegressionStats
from trueprob.stats import EvaluationStats

OUT = "tests/reference/states"


def main() -> None:
    rng = np.random.default_rng(14)
    os.makedirs(OUT, exist_ok=True)
    z = rng.normal(size=(40, 3))
    y = rng.integers(0, 3, 40)
    w = rng.uniform(0.5, 2, 40)
    blobs = {
        "evaluation": EvaluationStats(3, n_bins=5).update(y, logits=z, sample_weight=w),
        "evaluation_parts": EvaluationStats(
            3, n_bins=4, closed="left", parts=("scores", "top_label", "classwise")
        ).update(y, logits=z),
        "evaluation_empty": EvaluationStats(4, n_bins=6,
                                            edges=[0, .3, .5, .7, .8, .9, 1.0]),
    }
    blocked = EvaluationStats(3, n_bins=5, n_blocks=3)
    inputs = prepare(y, logits=z)
    for chunk in inputs.chunks(40):
        blocked.update_chunk(inputs.xp, chunk, block=np.arange(40) % 3)
    blobs["evaluation_blocked"] = blocked
    zl = rng.normal(size=(30, 4))
    yl = (rng.uniform(size=(30, 4)) < 0.4).astype(int)
    blobs["multilabel"] = MultilabelStats(4, n_bins=6).update(yl, logits=zl)
    blobs["multilabel_empty"] = MultilabelStats(2)
    yr = rng.normal(size=50)
    blobs["regression"] = RegressionStats().update(
        yr, Gaussian(mean=rng.normal(size=50) * .3, std=1.2))
    levels = np.array([0.1, 0.25, 0.5, 0.75, 0.9])
    q = (rng.normal(size=50) * .3)[:, None] + norm.ppf(levels)[None, :]
    blobs["regression_quantiles"] = RegressionStats(quantile_levels=levels).update(
        yr, QuantileSet(q, levels))
    blobs["regression_empty"] = RegressionStats(coverage_levels=[0.5, 0.9])
    expected = {}
    for name, state in blobs.items():
        with open(f"{OUT}/{name}.npz.gz", "wb") as f:
            f.write(gzip.compress(state.to_bytes(), mtime=0))
        expected[name] = None if "empty" in name else json.loads(state.finalize().to_json())
    commit = subprocess.check_output(["git", "rev-parse", "HEAD"]).decode().strip()
    source = (f"written by to_bytes() of trueprob at commit {commit} (before the state base "
              f"class); finalize() of each state at that commit")
    with open(f"{OUT}/expected.json", "w") as f:
        json.dump({"source": source, "reports": expected}, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
