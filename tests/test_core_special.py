"""core.special.logsumexp (the one logsumexp) against scipy's, and core.options' checks."""

from __future__ import annotations

import numpy as np
import pytest
from array_api_compat import array_namespace
from scipy import special

from trueprob.core.options import check_binning, check_reduce, check_unit
from trueprob.core.special import logsumexp
from trueprob.core.threads import default_threads, usable_cores


def test_logsumexp_matches_scipy_on_any_axis():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(50, 7)) * 300.0  # exp overflows without the max taken out
    x[3, 2] = -np.inf
    xp = array_namespace(x)
    for axis in (0, 1, -1):
        for keepdims in (False, True):
            np.testing.assert_allclose(logsumexp(xp, x, axis=axis, keepdims=keepdims),
                                       special.logsumexp(x, axis=axis, keepdims=keepdims),
                                       rtol=1e-14)


def test_logsumexp_of_infinite_rows_is_infinite_not_nan():
    x = np.array([[-np.inf, -np.inf], [np.inf, 0.0]])
    with np.errstate(divide="ignore"):
        out = logsumexp(np, x)
    assert out[0] == -np.inf and out[1] == np.inf


@pytest.mark.torch
def test_logsumexp_in_torch_equals_torch():
    torch = pytest.importorskip("torch")
    z = torch.randn(20, 5, dtype=torch.float64) * 50
    xp = array_namespace(z)
    torch.testing.assert_close(logsumexp(xp, z, axis=1), torch.logsumexp(z, dim=1))


def test_option_checks_name_the_argument_and_value():
    assert check_unit("nats") == 1.0
    with pytest.raises(ValueError, match="unit must be 'nats' or 'bits'; got 'nat'"):
        check_unit("nat")
    with pytest.raises(ValueError, match="reduce must be 'mean' or 'sum'; got 'max'"):
        check_reduce("max")
    assert check_binning("mass") == "mass"
    with pytest.raises(ValueError, match=r"^X: binning must be 'width' or 'mass'; got 3$"):
        check_binning(3, "X")


def test_default_threads_is_capped_usable_cores():
    assert default_threads() == min(usable_cores(), 2)
    assert default_threads(limit=None) == usable_cores()
    assert default_threads(limit=1) == 1
