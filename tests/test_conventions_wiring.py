"""`convention=` on the public ECE functions delegates to the named library's rules."""

from __future__ import annotations

import numpy as np
import pytest

from trueprob import metrics


def test_convention_changes_the_treatment_of_confidence_one():
    # 1.0 (wrong) and 0.95 (right) share SPEC's last bin (0.9333, 1]; torchmetrics gives 1.0 a
    # bin of its own: trueprob (2/3)|.5 - .975| + (1/3)|1 - .5| vs (|0-1| + |1-.95| + |1-.5|)/3
    c = np.array([1.0, 0.95, 0.5])
    pred = np.array([0, 0, 2])
    y = np.array([1, 0, 2])
    kw = {"confidences": c, "predictions": pred, "n_bins": 10}
    assert metrics.top_label_ece(y, **kw) == pytest.approx(2 / 3 * 0.475 + 1 / 3 * 0.5)
    assert metrics.top_label_ece(y, convention="torchmetrics", **kw) == \
        pytest.approx((1 + 0.05 + 0.5) / 3, rel=1e-6)
    assert metrics.max_calibration_error(y, convention="torchmetrics", **kw) == \
        pytest.approx(1.0, rel=1e-6)
    assert metrics.rms_calibration_error(y, convention="sklearn", **kw) == pytest.approx(
        np.sqrt(2 / 3 * 0.475**2 + 1 / 3 * 0.5**2))


def test_classwise_kull2019_sums_over_classes():
    probs = np.array([[0.9, 0.05, 0.05], [0.2, 0.7, 0.1]])
    y = np.array([0, 2])
    got = metrics.classwise_ece(y, probs=probs, convention="kull2019")
    assert got == pytest.approx(metrics.calibration_error(y, probs=probs,
                                                          convention="kull2019",
                                                          kind="classwise"))


def test_convention_refuses_what_the_library_cannot_do():
    probs = np.array([[0.9, 0.1], [0.3, 0.7]])
    y = np.array([0, 1])
    with pytest.raises(TypeError, match="sample_weight= is not available with "
                                        "convention='netcal'"):
        metrics.top_label_ece(y, probs=probs, sample_weight=np.ones(2), convention="netcal")
    with pytest.raises(ValueError, match="binning= and closed= do not apply"):
        metrics.top_label_ece(y, probs=probs, binning="mass", convention="sklearn")
