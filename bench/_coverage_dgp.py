"""Data-generating processes with known population values, for ``bench/coverage.py``.

Every process draws a model's logits z (rows of i.i.d. Gaussians, scale ``spread``), the model
says q = softmax(z), and the label is drawn from a *true* distribution p(z) that differs from
q by a named distortion:

- ``temperature``: p = softmax(z / T) (T > 1: the model is over-confident);
- ``class_bias``:  p = softmax(z + beta d), d_k evenly spaced in [-1, 1] (some classes are
  under-predicted, others over-predicted);
- ``wiggle``: a non-monotone top-label distortion: the top entry becomes
  p_top = c + A sin(2 pi (c - 1/K) / (1 - 1/K)) min(c - 1/K, 1 - c) and the other entries are
  rescaled by (1 - p_top) / (1 - c); over-confident at some confidences and under-confident at
  others, so no temperature repairs it.
- ``calibrated``: p = q (every calibration error is 0).

Population values are the limits of trueprob's estimators (the same 15 right-closed
equal-width bins, the same 2**16-cell KS grid), computed from ``draws`` rows with *expected*
outcomes: a row adds p_k(z) (not a drawn label) to the outcome sums, so the only Monte-Carlo
error is that of the distribution of z, not of the labels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from trueprob.core import summaries as sm

N_BINS = 15
KS_CELLS = 1 << 16


@dataclass(frozen=True)
class Process:
    """One data-generating process: K classes, logit scale, distortion and its strength."""

    name: str
    n_classes: int
    spread: float
    distortion: str
    strength: float

    def logits(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.normal(size=(n, self.n_classes)) * self.spread

    def true_probs(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(q, p): the model's probabilities and the true label distribution."""
        q = _softmax(z)
        if self.distortion == "calibrated":
            return q, q
        if self.distortion == "temperature":
            return q, _softmax(z / self.strength)
        if self.distortion == "class_bias":
            d = np.linspace(-1.0, 1.0, self.n_classes)
            return q, _softmax(z + self.strength * d)
        if self.distortion == "wiggle":
            k = self.n_classes
            top = q.argmax(axis=1)
            c = q[np.arange(len(q)), top]
            u = (c - 1.0 / k) / (1.0 - 1.0 / k)
            room = np.minimum(c - 1.0 / k, 1.0 - c)
            p_top = c + self.strength * np.sin(2 * np.pi * u) * room
            scale = np.where(c < 1.0, (1.0 - p_top) / np.maximum(1.0 - c, 1e-300), 0.0)
            p = q * scale[:, None]
            p[np.arange(len(q)), top] = p_top
            return q, p
        raise ValueError(f"unknown distortion {self.distortion!r}")

    def sample(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(labels, logits) of n rows, labels drawn from p."""
        z = self.logits(rng, n)
        _, p = self.true_probs(z)
        cdf = np.cumsum(p, axis=1)
        y = (cdf < rng.random((n, 1)) * cdf[:, -1:]).sum(axis=1)
        return np.minimum(y, self.n_classes - 1), z


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _bin(x: np.ndarray, b: int) -> np.ndarray:
    """SPEC.md's right-closed equal-width index clip(ceil(B x) - 1, 0, B - 1)."""
    return np.clip(np.ceil(x * float(b)) - 1, 0, b - 1).astype(np.int64)


def population(process: Process, draws: int = 10_000_000, chunk: int = 500_000,
               seed: int = 12345) -> dict[str, float]:
    """Population values of the Report's metrics (expected outcomes over ``draws`` rows)."""
    k, b = process.n_classes, N_BINS
    rng = np.random.default_rng(seed)
    top_w = np.zeros(b)
    top_s = np.zeros(b)
    top_o = np.zeros(b)
    cc_w = np.zeros((k, b))
    cc_s = np.zeros((k, b))
    cc_o = np.zeros((k, b))
    cw_w = np.zeros((k, b))
    cw_s = np.zeros((k, b))
    cw_o = np.zeros((k, b))
    ks_s = np.zeros(KS_CELLS)
    ks_o = np.zeros(KS_CELLS)
    acc = nll = brier = 0.0
    done = 0
    while done < draws:
        n = min(chunk, draws - done)
        z = process.logits(rng, n)
        q, p = process.true_probs(z)
        top = q.argmax(axis=1)
        rows = np.arange(n)
        c = q[rows, top]
        a = p[rows, top]                      # E[1{y = yhat} | z]
        cell = _bin(c, b)
        top_w += np.bincount(cell, minlength=b)
        top_s += np.bincount(cell, c, b)
        top_o += np.bincount(cell, a, b)
        flat = top * b + cell
        cc_w += np.bincount(flat, minlength=k * b).reshape(k, b)
        cc_s += np.bincount(flat, c, k * b).reshape(k, b)
        cc_o += np.bincount(flat, a, k * b).reshape(k, b)
        cls = (_bin(q, b) + np.arange(k) * b).ravel()
        cw_w += np.bincount(cls, minlength=k * b).reshape(k, b)
        cw_s += np.bincount(cls, q.ravel(), k * b).reshape(k, b)
        cw_o += np.bincount(cls, p.ravel(), k * b).reshape(k, b)
        g = _bin(c, KS_CELLS)
        ks_s += np.bincount(g, c, KS_CELLS)
        ks_o += np.bincount(g, a, KS_CELLS)
        acc += float(a.sum())
        logq = np.log(q)
        nll -= float(np.sum(p * logq))
        brier += float(np.sum(np.sum(q * q, axis=1) - 2 * np.sum(p * q, axis=1) + 1.0))
        done += n
    total = np.array([float(draws)])
    top = sm.binned_errors(top_w[None, None], top_s[None, None], top_o[None, None], total)
    cc = sm.binned_errors(cc_w[None], cc_s[None], cc_o[None], total)
    cw = sm.binned_errors(cw_w[None], cw_s[None], cw_o[None], total)
    l2 = float(top["l2"][0, 0])
    # MCE: the population maximum over bins holding at least 1e-4 of the rows (a bin of
    # smaller mass is empty in most samples of N <= 10^5, and its gap is not estimable)
    gaps = np.abs(top_s - top_o) / np.maximum(top_w, 1)
    mce = float(np.max(np.where(top_w >= 1e-4 * draws, gaps, 0.0)))
    return {
        "accuracy": acc / draws, "nll": nll / draws, "brier": brier / draws,
        "ece": float(top["ece"][0, 0]), "mce": mce, "rmsce": math.sqrt(l2),
        "ece_debiased": math.sqrt(l2),
        "classwise_ece": float(cw["ece"][0].mean()),
        "class_conditional_ece": float(cc["ece"][0].sum()),
        "ks": float(sm.ks_from_grid(ks_s[None], ks_o[None], total)[0]),
    }
