"""No computation writes into the caller's arrays: fast paths work in place on their own
buffers only (a 1-row chunk's transpose is already contiguous, a classic way to alias)."""

from __future__ import annotations

import numpy as np
import pytest

import trueprob
from trueprob._validation import prepare
from trueprob.stats import EvaluationStats


@pytest.mark.parametrize("k", [2, 3, 10, 80])
@pytest.mark.parametrize("rows", [1, 7, 97])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_logits_probs_and_weights_are_left_as_given(rng, k, rows, dtype):
    n = 300
    z = (rng.normal(size=(n, k)) * 3).astype(dtype)
    q = np.exp(z - z.max(1, keepdims=True))
    q = (q / q.sum(1, keepdims=True)).astype(dtype)
    y = rng.integers(0, k, size=n)
    w = rng.uniform(0.1, 2.0, size=n)
    t = rng.dirichlet(np.ones(k), size=n)
    kept = [a.copy() for a in (z, q, y, w, t)]
    for kw in ({"logits": z}, {"probs": q}, {"logits": z, "sample_weight": w},
               {"logits": z, "targets": t}):
        labels = None if "targets" in kw else y
        EvaluationStats(k).update_inputs(prepare(labels, **kw), rows=rows)
        one = z[:1] if "logits" in kw else None
        if one is not None:  # a single row, the aliasing case
            EvaluationStats(k).update(y[:1], logits=one)
    trueprob.evaluate(y, logits=z)
    trueprob.evaluate(y, probs=q, sample_weight=w)
    for before, after in zip(kept, (z, q, y, w, t), strict=True):
        assert np.array_equal(before, after)


def test_fortran_and_strided_inputs_are_left_as_given(rng):
    z = np.asfortranarray(rng.normal(size=(50, 4)))
    view = rng.normal(size=(100, 4))[::2]
    y = rng.integers(0, 4, size=50)
    kept = (z.copy(), view.copy())
    a = trueprob.evaluate(y, logits=z)
    b = trueprob.evaluate(y, logits=view)
    assert np.array_equal(kept[0], z) and np.array_equal(kept[1], view)
    assert a.nll == pytest.approx(trueprob.evaluate(y, logits=np.ascontiguousarray(z)).nll,
                                  rel=1e-15)
    assert b.n == 50
