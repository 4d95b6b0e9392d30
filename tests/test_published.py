"""Published numbers reproduced from the real logits in ../shared/data.

Source of the reference values (Mukhoti, Kulharia, Sanyal, Golodetz, Torr, Dokania, "Calibrating
Deep Neural Networks using Focal Loss", NeurIPS 2020, arXiv:2002.09437):
- CIFAR-10: the tables of test error % and 15-bin ECE % (before temperature scaling) in the
  README of github.com/torrvision/focal_calibration at commit
  475422a6754e20d25216158a874749c33e826e21 ("Brier Loss" and "FLSD-53 (Ours)" columns).
- CIFAR-100 (Brier loss): the paper's tables of test error % and ECE % (15 bins, before
  temperature scaling), "Brier Loss" column.
ECE there is the top-label ECE with 15 equal-width bins, right-closed, which is trueprob's
default (SPEC.md, "Binning").
"""

from __future__ import annotations

import numpy as np
import pytest

import trueprob

# file stem: (published test error %, published ECE %)
PUBLISHED = {
    "cifar10_resnet50_brier": (5.0, 1.82),
    "cifar10_resnet110_brier": (5.48, 2.56),
    "cifar10_wrn26-10_brier": (4.08, 1.25),
    "cifar10_densenet121_brier": (5.11, 1.53),
    "cifar10_resnet50_flsd53": (4.98, 1.55),
    "cifar10_resnet110_flsd53": (5.42, 1.87),
    "cifar10_wrn26-10_flsd53": (4.01, 1.56),
    "cifar10_densenet121_flsd53": (5.46, 1.22),
    "cifar100_resnet50_brier": (23.39, 6.52),
    "cifar100_resnet110_brier": (25.1, 7.88),
    "cifar100_wrn26-10_brier": (20.59, 4.31),
    "cifar100_densenet121_brier": (23.75, 5.17),
}


def _decimals(x: float) -> int:
    text = repr(x)
    return len(text.split(".")[1]) if "." in text else 0


@pytest.mark.data
@pytest.mark.parametrize("stem", sorted(PUBLISHED))
def test_mukhoti2020_error_and_ece(shared_data, stem):
    d = np.load(shared_data / "mukhoti2020-cifar-logits" / f"{stem}_test.npz")
    report = trueprob.evaluate(d["labels"], logits=d["logits"])
    error, ece = PUBLISHED[stem]
    assert round(100 * (1 - report.accuracy), _decimals(error)) == error
    assert round(100 * report.ece, 2) == ece
    # the single-metric function and the float64 path give the same rounded number
    from_f64 = trueprob.evaluate(d["labels"], logits=d["logits"].astype(np.float64))
    assert round(100 * from_f64.ece, 2) == ece
