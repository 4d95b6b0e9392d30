"""CIFAR-10 models scored against human label distributions (CIFAR-10H).

For every CIFAR-10 test-set model in ../shared/data (all in the original test order, aligned
with CIFAR-10H row by row), the cross-entropy against the human distributions is split into
H(p) — the humans' own uncertainty, the same for every model — and KL(p || q), what the model
costs; the models are ranked by human-label NLL and by hard-label NLL. Then temperature scaling
is fitted on one half of the test set either on the annotator counts (the multinomial
likelihood of the votes) or on the hard labels, and both are evaluated on the other half.

    python examples/cifar10h_human_labels.py [--data ../shared/data]

CIFAR-10H is CC BY-NC-SA 4.0 (Peterson et al. 2019); it is read from the data folder, never
copied.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

import trueprob
from trueprob.calibrators import TemperatureScaling


def models(data: Path) -> dict[str, dict[str, np.ndarray]]:
    out = {}
    for f in sorted((data / "mukhoti2020-cifar-logits").glob("cifar10_*_test.npz")):
        d = np.load(f)
        out[f.stem.removesuffix("_test")] = {"logits": d["logits"], "labels": d["labels"]}
    for f in sorted((data / "netcal-cifar-probs").glob("*cifar-10_test.npz")):
        d = np.load(f)
        out["netcal_" + f.stem.removesuffix("_test")] = {"probs": d["probs"],
                                                         "labels": d["labels"]}
    f = data / "kumar2019-cifar10-vgg16" / "cifar10_vgg16_test.npz"
    if f.exists():
        d = np.load(f)
        out["kumar2019_vgg16"] = {"probs": d["probs"], "labels": d["labels"]}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    default = os.environ.get("TRUEPROB_DATA", str(Path(__file__).resolve().parents[2] /
                                                  "shared" / "data"))
    ap.add_argument("--data", default=default)
    args = ap.parse_args()
    data = Path(args.data)
    human = np.load(data / "cifar10h" / "cifar10h.npz")
    counts, hard = human["counts"], human["labels"]
    rows = []
    for name, m in models(data).items():
        assert np.array_equal(m["labels"], hard), name  # same test order
        scores = {k: v for k, v in m.items() if k in ("logits", "probs")}
        soft = trueprob.evaluate(counts=counts, **scores, unit="bits")
        hard_r = trueprob.evaluate(hard, **scores, unit="bits")
        rows.append((name, soft.nll, soft.entropy, soft.kl, hard_r.nll, soft.accuracy,
                     hard_r.accuracy))
    by_human = sorted(rows, key=lambda r: r[1])
    by_hard = {r[0]: i + 1 for i, r in enumerate(sorted(rows, key=lambda r: r[4]))}
    print("| model | CE vs humans (bits) | = H(p) | + KL(p‖q) | hard-label NLL (bits) | "
          "rank by human NLL | rank by hard NLL | human agreement | accuracy |")
    print("|---|---|---|---|---|---|---|---|---|")
    for i, (name, ce, h, kl, nll, agree, acc) in enumerate(by_human, 1):
        print(f"| {name} | {ce:.4f} | {h:.4f} | {kl:.4f} | {nll:.4f} | {i} | {by_hard[name]} | "
              f"{agree:.4f} | {acc:.4f} |")

    # temperature fitted on half of the test set: annotator counts vs hard labels
    rng = np.random.default_rng(0)
    perm = rng.permutation(len(hard))
    fit, ev = perm[:5000], perm[5000:]
    print()
    print("| model | T (counts) | T (hard) | human NLL after, counts-fitted | human NLL after, "
          "hard-fitted | hard NLL after, counts-fitted | hard NLL after, hard-fitted |")
    print("|---|---|---|---|---|---|---|")
    for name, m in models(data).items():
        key = "logits" if "logits" in m else "probs"
        x = m[key]
        t_soft = TemperatureScaling().fit(**{key: x[fit]}, counts=counts[fit])
        t_hard = TemperatureScaling().fit(hard[fit], **{key: x[fit]})
        out = []
        for cal in (t_soft, t_hard):
            z = cal.predict_logproba(**{key: x[ev]})
            out.append((trueprob.evaluate(counts=counts[ev], logits=z, unit="bits").nll,
                        trueprob.evaluate(hard[ev], logits=z, unit="bits").nll))
        print(f"| {name} | {t_soft.temperature_:.3f} | {t_hard.temperature_:.3f} | "
              f"{out[0][0]:.4f} | {out[1][0]:.4f} | {out[0][1]:.4f} | {out[1][1]:.4f} |")


if __name__ == "__main__":
    main()
