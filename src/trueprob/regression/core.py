"""Pure math of the predictive families, on arrays of any array-API namespace.

Every parametric family here is a location-scale family: with loc mu_i, scale sigma_i and the
standardised residual z_i = (y_i - mu_i) / sigma_i,

    -log f(y_i)   = -log f_0(z_i) + log sigma_i,
    F(y_i)        = F_0(z_i),
    CRPS(F, y_i)  = sigma_i CRPS(F_0, z_i),

so each family needs only its standard log-density, CDF, quantile function and CRPS. The CRPS
closed forms are those collected by Gneiting and Raftery (2007, Gaussian) and Jordan, Krüger and
Lerch (2019, the scoringRules paper: Laplace and Student-t); each is checked against numerical
integration of CRPS(F, y) = int (F(x) - 1[x >= y])^2 dx in the tests.

Special functions the array-API standard lacks (the normal CDF, the Student-t CDF) are
dispatched on the namespace: scipy.special for numpy, ``torch.special`` for torch; the
Student-t CDF and quantile function (incomplete beta functions, which torch lacks) are computed
on the host with scipy and moved back.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
from scipy import special

from trueprob._array import Array, as_array, device, is_torch, to_numpy

Family = Literal["gaussian", "laplace", "student_t"]
FAMILIES: tuple[str, ...] = ("gaussian", "laplace", "student_t")

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
_INV_SQRT_PI = 1.0 / math.sqrt(math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


# --------------------------------------------------------------------------- special functions
def ndtr(xp: Any, x: Array) -> Array:
    """Standard normal CDF Phi(x) (float64), accurate in both tails."""
    if is_torch(xp):
        import torch

        return torch.special.ndtr(x)
    return xp.asarray(special.ndtr(x))


def _host(xp: Any, fn: Any, *args: Any) -> Array:
    """fn(*args) computed with numpy on the host, returned in namespace ``xp`` on the device
    of the first array argument."""
    ref = next(a for a in args if not isinstance(a, (int, float)))
    host = [a if isinstance(a, (int, float)) else to_numpy(a) for a in args]
    out = np.asarray(fn(*host), dtype=np.float64)
    return as_array(out, xp, device(ref))


def student_t_cdf(xp: Any, z: Array, df: Any) -> Array:
    """CDF of the standard Student-t with ``df`` degrees of freedom (scalar or per row)."""
    if is_torch(xp):
        return _host(xp, special.stdtr, df, z)
    return xp.asarray(special.stdtr(df, z))


def standard_ppf(family: str, p: Any, df: Any = None) -> np.ndarray:
    """Quantile function F_0^{-1}(p) of the standard family, float64 numpy (host).

    Gaussian: Phi^{-1}(p); Laplace: -sign(p - 1/2) log(1 - 2|p - 1/2|); Student-t:
    scipy's ``stdtrit(df, p)``. ``p`` in (0, 1), scalar or array (broadcast with ``df``).
    """
    p = np.asarray(p, dtype=np.float64)
    if family == "gaussian":
        return np.asarray(special.ndtri(p))
    if family == "laplace":
        d = p - 0.5
        return np.asarray(-np.sign(d) * np.log1p(-2.0 * np.abs(d)))
    return np.asarray(special.stdtrit(np.asarray(df, dtype=np.float64), p))


# --------------------------------------------------------------------------- families
def _t_log_norm(xp: Any, df: Any) -> Any:
    """log of the Student-t density's constant: lgamma((v+1)/2) - lgamma(v/2) - log(v pi)/2."""
    if isinstance(df, float):
        return (math.lgamma((df + 1.0) / 2.0) - math.lgamma(df / 2.0)
                - 0.5 * math.log(df * math.pi))
    if is_torch(xp):
        import torch

        return torch.lgamma((df + 1.0) / 2.0) - torch.lgamma(df / 2.0) \
            - 0.5 * xp.log(df * math.pi)
    return xp.asarray(special.gammaln((df + 1.0) / 2.0) - special.gammaln(df / 2.0)
                      - 0.5 * np.log(df * math.pi))


def standard_logpdf(family: str, xp: Any, z: Array, df: Any = None) -> Array:
    """log f_0(z) of the standard family.

    Gaussian: -z^2/2 - log(2 pi)/2; Laplace: -|z| - log 2; Student-t:
    lgamma((v+1)/2) - lgamma(v/2) - log(v pi)/2 - (v+1)/2 log(1 + z^2/v).
    """
    if family == "gaussian":
        return -0.5 * z * z - _LOG_SQRT_2PI
    if family == "laplace":
        return -xp.abs(z) - math.log(2.0)
    return _t_log_norm(xp, df) - (df + 1.0) / 2.0 * xp.log1p(z * z / df)


def standard_cdf(family: str, xp: Any, z: Array, df: Any = None) -> Array:
    """F_0(z): Phi(z); for Laplace e^z / 2 below 0 and 1 - e^{-z} / 2 above (no cancellation);
    the Student-t CDF."""
    if family == "gaussian":
        return ndtr(xp, z)
    if family == "laplace":
        half = 0.5 * xp.exp(-xp.abs(z))
        return xp.where(z < 0, half, 1.0 - half)
    return student_t_cdf(xp, z, df)


def _t_crps_constant(df: Any) -> Any:
    """2 sqrt(v) B(1/2, v - 1/2) / ((v - 1) B(1/2, v/2)^2), from log-beta functions."""
    v = np.asarray(df, dtype=np.float64)
    log_ratio = special.betaln(0.5, v - 0.5) - 2.0 * special.betaln(0.5, v / 2.0)
    out = 2.0 * np.sqrt(v) * np.exp(log_ratio) / (v - 1.0)
    return float(out) if out.ndim == 0 else out


def standard_crps(family: str, xp: Any, z: Array, df: Any = None, cdf: Any = None) -> Array:
    """CRPS(F_0, z) of the standard family, in closed form (``cdf``: F_0(z) if already known).

    - Gaussian (Gneiting & Raftery 2007): z (2 Phi(z) - 1) + 2 phi(z) - 1/sqrt(pi);
    - Laplace: |z| + e^{-|z|} - 3/4;
    - Student-t, v > 1: z (2 F_v(z) - 1) + 2 f_v(z) (v + z^2) / (v - 1)
      - 2 sqrt(v) B(1/2, v - 1/2) / ((v - 1) B(1/2, v/2)^2).
    """
    if family == "laplace":
        a = xp.abs(z)
        return a + xp.exp(-a) - 0.75
    if cdf is None:
        cdf = standard_cdf(family, xp, z, df)
    if family == "gaussian":
        pdf = xp.exp(-0.5 * z * z) * _INV_SQRT_2PI
        return z * (2.0 * cdf - 1.0) + 2.0 * pdf - _INV_SQRT_PI
    pdf = xp.exp(standard_logpdf("student_t", xp, z, df))
    const = _t_crps_constant(to_numpy(df) if not isinstance(df, float) else df)
    if not isinstance(const, float):
        const = as_array(const, xp, device(z))
    return z * (2.0 * cdf - 1.0) + 2.0 * pdf * (df + z * z) / (df - 1.0) - const


def quantile_crps(xp: Any, y: Array, quantiles: Array, levels: Array) -> Array:
    """The CRPS of a quantile set by the pinball-loss average, per row:

        CRPS_M(y) = (2 / M) sum_j rho_{p_j}(y - q_j),
        rho_p(e)  = p e for e >= 0, (p - 1) e for e < 0.

    CRPS(F, y) = 2 int_0^1 rho_p(y - F^{-1}(p)) dp (Laio and Tamea 2007); this replaces the
    integral by the equal-weight average over the M given levels (Berrisch and Ziel 2023,
    scoringrules' ``crps_quantile``). It converges to the CRPS of F as evenly spread levels
    (e.g. p_j = j / (M + 1)) fill (0, 1); for a few levels it is a coarser, different number
    (for p_j = j / (M + 1) it is (M + 1) / M times a Riemann sum of the integral).
    """
    e = y[:, None] - quantiles
    below = xp.astype(e < 0, e.dtype)
    loss = e * (levels[None, :] - below)
    return 2.0 * xp.mean(loss, axis=1)
