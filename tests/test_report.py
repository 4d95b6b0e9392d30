"""Report serialisations: stable JSON keys, Markdown, round-trips."""

from __future__ import annotations

import json
import math

import numpy as np

import trueprob

README_KEYS = {"n", "n_classes", "unit", "accuracy", "nll", "brier", "ece", "mce", "rmsce",
               "ece_debiased", "classwise_ece", "ks", "bins"}


def test_json_keys_and_values(rng, synthetic_logits):
    z, y = synthetic_logits(rng, 200, 3)
    r = trueprob.evaluate(y, logits=z, unit="bits")
    d = json.loads(r.to_json())
    assert d.keys() >= README_KEYS
    assert "entropy" not in d and "kl" not in d  # hard labels
    assert d["unit"] == "bits" and d["n"] == 200 and d["n_classes"] == 3
    assert d["nll"] == r.nll and d["ece"] == r.ece
    assert len(d["bins"]) == 15
    assert set(d["bins"][0]) == {"lower", "upper", "weight", "count", "confidence", "accuracy",
                                 "gap"}
    assert sum(b["weight"] for b in d["bins"]) == 200
    # empty bins serialise as null, not NaN (strict JSON)
    empty = [b for b in d["bins"] if b["count"] == 0]
    assert all(b["confidence"] is None for b in empty)
    assert d["settings"]["n_bins"] == 15 and d["settings"]["closed"] == "right"


def test_soft_targets_add_entropy_and_kl(rng):
    q = rng.dirichlet(np.ones(4), size=50)
    t = rng.dirichlet(np.ones(4), size=50)
    d = trueprob.evaluate(probs=q, targets=t).to_dict()
    assert {"entropy", "kl"} <= d.keys()
    assert math.isclose(d["nll"], d["entropy"] + d["kl"], rel_tol=1e-12)


def test_markdown_has_every_metric_and_bin(rng, synthetic_logits):
    z, y = synthetic_logits(rng, 100, 3)
    r = trueprob.evaluate(y, logits=z, n_bins=5)
    md = r.to_markdown()
    for key in ("accuracy", "nll", "brier", "ece", "mce", "rmsce", "ece_debiased",
                "classwise_ece", "ks"):
        assert f"| {key} | {getattr(r, key):.4f} |" in md
    assert md.count("\n| (") == 5  # five right-closed bins
    assert "| (0.800, 1.000] |" in md


def test_top_label_mode_markdown_says_what_is_missing():
    r = trueprob.evaluate(np.array([0, 1]), confidences=np.array([0.9, 0.8]),
                          predictions=np.array([0, 0]))
    md = r.to_markdown()
    assert "| nll | n/a |" in md
    assert "`nll` not computed: needs the full probability vector" in md
