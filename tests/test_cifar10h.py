"""Soft labels end to end on CIFAR-10H (human label distributions for the CIFAR-10 test set)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import trueprob

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.data
def test_human_entropy_is_the_published_mean_and_ce_splits(shared_data):
    h = np.load(shared_data / "cifar10h" / "cifar10h.npz")
    d = np.load(shared_data / "mukhoti2020-cifar-logits" / "cifar10_resnet110_brier_test.npz")
    assert np.array_equal(d["labels"], h["labels"])  # same test order
    r = trueprob.evaluate(counts=h["counts"], logits=d["logits"])
    # ../shared/data/cifar10h/README.md: "mean entropy 0.1545 nats"
    assert round(r.entropy, 4) == 0.1545
    assert r.nll == pytest.approx(r.entropy + r.kl, rel=1e-12)
    # counts and the published normalised probabilities give the same numbers
    rp = trueprob.evaluate(targets=h["probs"], logits=d["logits"])
    assert rp.nll == pytest.approx(r.nll, rel=1e-12)
    assert rp.accuracy == pytest.approx(r.accuracy, rel=1e-12)


@pytest.mark.data
@pytest.mark.slow
def test_documented_example_runs(shared_data):
    out = subprocess.run([sys.executable, str(REPO / "examples" / "cifar10h_human_labels.py"),
                          "--data", str(shared_data)], capture_output=True, text=True,
                         check=True, timeout=600)
    assert "| cifar10_resnet110_brier |" in out.stdout
    assert "T (counts)" in out.stdout
