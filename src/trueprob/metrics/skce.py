"""Squared kernel calibration error SKCE (Widmann, Lindsten, Zachariah 2019): is the whole
probability vector calibrated, P(Y | q) = q, not only its top entry?

Definitions (SPEC.md notation: q_i the predicted distribution, e_{y_i} the one-hot label):

- matrix-valued kernel k(q, q') = kappa(q, q') I_K with the exponential (Laplacian) kernel
  kappa(q, q') = exp(-||q - q'||_2 / nu), the kernel of Widmann et al.'s experiments;
- SKCE = E[(e_Y - q)^T k(q, q') (e_Y' - q')] over independent pairs: 0 if and only if the model
  is calibrated (for this universal kernel), > 0 otherwise;
- h_ij = kappa(q_i, q_j) (e_{y_i} - q_i)^T (e_{y_j} - q_j), so every estimator averages h over
  pairs of distinct rows and is unbiased:
  - ``"unbiased"``: the U-statistic over all pairs, 2/(N(N-1)) sum_{i<j} h_ij (O(N^2 K) time,
    computed in blocks of 1024 x 1024 pairs, O(N K) memory: all rows are held);
  - ``"linear"``: the mean of h over the pairs (0, 1), (2, 3), ... (N/2 pairs, O(N K));
  - ``"block"``: the mean over consecutive blocks of B rows of each block's U-statistic (B = 2
    is the linear estimator, B = N the unbiased one).

Soft targets and counts: e_{y_i} is replaced by the target distribution t_i. h is linear in
each outcome and the two rows of a pair are independent, so if t_i is the distribution of the
label given the input, E[h] is unchanged and the estimators stay unbiased for the same SKCE.

Bandwidth nu: ``bandwidth=`` or the median heuristic, the median of ||q_i - q_j|| over the
pairs of (at most) 2000 evenly spaced rows (all rows when N <= 2000).

Tests of H0 "calibrated" (one-sided: SKCE > 0):

- linear and block: the block values are i.i.d. with mean SKCE, so their mean is asymptotically
  normal; t = estimate / standard error (the sample standard deviation of the m block values
  over sqrt(m)), p = P(T >= t) for Student's t with m - 1 degrees of freedom (the standard
  error is estimated from few blocks in the whole-vector test: 7 at N = 2000);
- unbiased: under H0 the U-statistic is degenerate and N U converges to sum_j lambda_j (Z_j^2 - 1),
  not to a normal law. Its null distribution is estimated by the bootstrap of degenerate
  U-statistics of Arcones & Giné (1992), as Widmann et al. do: rows are resampled with
  replacement, and h is centred with respect to the sample,
  h~_ij = h_ij - a_i - a_j + a (a_i = (1/N) sum_j h_ij, a = (1/N) sum_i a_i);
  p = (1 + #{U* >= U}) / (1 + B). O(N^2 B) time on top of the estimate.
  The reported standard error is the plug-in of the U-statistic variance,
  (4 (N - 2) zeta_1 + 2 zeta_2) / (N (N - 1)) (Hoeffding 1948).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from trueprob._array import to_numpy
from trueprob._validation import prepare
from trueprob.core.rows import row_quantities

__all__ = ["SKCEResult", "median_heuristic", "skce", "whole_vector_test"]

ESTIMATORS = ("unbiased", "linear", "block")
#: Rows whose pairwise distances give the median heuristic (evenly spaced over the data).
MEDIAN_ROWS = 2000
#: Default rows per block of the block estimator.
DEFAULT_BLOCK = 16
#: Default bootstrap replicates of the unbiased estimator's test.
DEFAULT_RESAMPLES = 1000
#: Rows per side of the pair blocks of the unbiased estimator.
_PAIR_BLOCK = 1024
#: Values per batch of blocks in the block estimator (bounds its temporaries).
_BLOCK_ELEMENTS = 1 << 21


@dataclass(frozen=True)
class SKCEResult:
    """An SKCE estimate with its standard error and the p-value of the calibration test.

    ``estimate`` (can be negative: the estimators are unbiased, not clipped), ``std_error``,
    ``p_value`` (H0: calibrated, one-sided), ``bandwidth`` nu, ``estimator``, ``n`` rows used
    (the linear and block estimators drop the N mod B last rows), ``block_size`` (2 for linear,
    N for unbiased), ``test`` how the p-value was obtained and ``n_resamples`` (bootstrap
    replicates, unbiased estimator only; 0 means no test was run and the p-value is NaN).
    """

    estimate: float
    std_error: float
    p_value: float
    bandwidth: float
    estimator: str
    n: int
    block_size: int
    test: str
    n_resamples: int | None

    def interval(self, level: float = 0.95) -> tuple[float, float]:
        """Two-sided ``level`` interval for the SKCE: estimate -+ t std_error, t the quantile of
        Student's t with (blocks - 1) degrees of freedom for the linear and block estimators,
        of the normal law for the unbiased one (its N(N - 1)/2 pairs). ``interval(2 a - 1)[1]``
        is the one-sided bound at level a."""
        from scipy.special import ndtri, stdtrit

        if not 0 < level < 1:
            raise ValueError(f"level must be in (0, 1); got {level!r}")
        blocks = self.n // self.block_size
        q = (float(ndtri((1 + level) / 2)) if self.estimator == "unbiased" or blocks < 2
             else float(stdtrit(blocks - 1, (1 + level) / 2)))
        return self.estimate - q * self.std_error, self.estimate + q * self.std_error


def _residuals(labels: Any, logits: Any, probs: Any, targets: Any,
               counts: Any) -> tuple[np.ndarray, np.ndarray]:
    """(q, e - q) of every row as float64 numpy (N, K) arrays."""
    inputs = prepare(labels, logits=logits, probs=probs, targets=targets, counts=counts)
    qs, rs = [], []
    for chunk in inputs.chunks():
        rows = row_quantities(inputs.xp, chunk, need_scores=False)
        assert rows.probs is not None
        q = np.asarray(to_numpy(rows.probs), dtype=np.float64)
        if rows.targets is not None:
            e = np.asarray(to_numpy(rows.targets), dtype=np.float64)
        else:
            e = np.zeros_like(q)
            e[np.arange(q.shape[0]), np.asarray(to_numpy(chunk.labels))] = 1.0
        qs.append(q)
        rs.append(e - q)
    return np.concatenate(qs), np.concatenate(rs)


def median_heuristic(probs: np.ndarray, /) -> float:
    """nu = median of ||q_i - q_j||_2 over the pairs of at most 2000 evenly spaced rows.

    Examples
    --------
    >>> import numpy as np
    >>> from trueprob.metrics.skce import median_heuristic
    >>> q = np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]])   # distances 0.707, 0.707, 1.414
    >>> round(median_heuristic(q), 6)
    0.707107
    """
    from scipy.spatial.distance import pdist

    q = np.asarray(probs, dtype=np.float64)
    n = q.shape[0]
    if n < 2:
        raise ValueError(f"the median heuristic needs at least 2 rows; got {n}")
    if n > MEDIAN_ROWS:
        q = q[np.round(np.linspace(0, n - 1, MEDIAN_ROWS)).astype(np.int64)]
    nu = float(np.median(pdist(q)))
    if not nu > 0:
        raise ValueError("the median distance between predictions is 0 (at least half the "
                         "pairs of rows predict the same vector); pass bandwidth= explicitly")
    return nu


def _distances(qa: np.ndarray, qb: np.ndarray, sq_a: np.ndarray,
               sq_b: np.ndarray) -> np.ndarray:
    """||q_a - q_b|| for all pairs (leading batch axes allowed), from the Gram matrix (BLAS).

    |a|^2 + |b|^2 - 2 a.b loses about 1e-15 absolute to cancellation, which the square root
    turns into ~3e-8 for (nearly) equal rows; pairs with d^2 < 1e-6 are recomputed from the
    differences, so every distance is accurate to ~1e-12 relative.
    """
    d2 = sq_a[..., :, None] + sq_b[..., None, :] - 2.0 * (qa @ np.swapaxes(qb, -1, -2))
    close = np.nonzero(d2 < 1e-6)
    if close[0].size:
        *batch, i, j = close
        diff = qa[(*batch, i)] - qb[(*batch, j)]
        d2[close] = np.einsum("pk,pk->p", diff, diff)
    out: np.ndarray = np.sqrt(np.maximum(d2, 0.0))
    return out


def _pair_blocks(q: np.ndarray, r: np.ndarray,
                 nu: float) -> Iterator[tuple[slice, slice, np.ndarray]]:
    """(I, J, h[I, J]) for the row blocks I <= J of the N x N matrix of h_ij."""
    n = q.shape[0]
    sq = np.einsum("ik,ik->i", q, q)
    starts = range(0, n, _PAIR_BLOCK)
    for a in starts:
        rows_a = slice(a, min(a + _PAIR_BLOCK, n))
        for b in starts:
            if b < a:
                continue
            rows_b = slice(b, min(b + _PAIR_BLOCK, n))
            d = _distances(q[rows_a], q[rows_b], sq[rows_a], sq[rows_b])
            h = np.exp(-d / nu) * (r[rows_a] @ r[rows_b].T)
            yield rows_a, rows_b, h


def _unbiased(q: np.ndarray, r: np.ndarray, nu: float, n_resamples: int,
              rng: np.random.Generator) -> tuple[float, float, float]:
    """(U, standard error, bootstrap p-value) of the U-statistic over all pairs."""
    n = q.shape[0]
    diag = np.einsum("ik,ik->i", r, r)  # h_ii: kappa(q, q) = 1
    rowsum = np.zeros(n)  # sum_j h_ij, diagonal included
    total = 0.0
    squares = 0.0
    for rows_a, rows_b, h in _pair_blocks(q, r, nu):
        if rows_a == rows_b:
            total += float(h.sum()) - float(diag[rows_a].sum())
            squares += float((h * h).sum()) - float((diag[rows_a] ** 2).sum())
            rowsum[rows_a] += h.sum(axis=1)
        else:
            total += 2.0 * float(h.sum())
            squares += 2.0 * float((h * h).sum())
            rowsum[rows_a] += h.sum(axis=1)
            rowsum[rows_b] += h.sum(axis=0)
    pairs = n * (n - 1)
    u = total / pairs
    h1 = (rowsum - diag) / (n - 1)
    zeta1 = float(np.var(h1))
    zeta2 = max(squares / pairs - u * u, 0.0)
    se = math.sqrt(max((4.0 * (n - 2) * zeta1 + 2.0 * zeta2) / pairs, 0.0))
    if n_resamples == 0:
        return u, se, math.nan
    a = rowsum / n
    a_bar = float(a.mean())
    counts = rng.multinomial(n, np.full(n, 1.0 / n), size=n_resamples).T.astype(np.float64)
    quad = np.zeros(n_resamples)  # m^T H~ m per replicate
    for rows_a, rows_b, h in _pair_blocks(q, r, nu):
        centred = h - a[rows_a, None] - a[None, rows_b] + a_bar
        part = np.einsum("ib,ib->b", counts[rows_a], centred @ counts[rows_b])
        quad += part if rows_a == rows_b else 2.0 * part
    diag_centred = diag - 2.0 * a + a_bar
    u_star = (quad - counts.T @ diag_centred) / pairs
    p = (1.0 + float(np.count_nonzero(u_star >= u))) / (1.0 + n_resamples)
    return u, se, p


def _block_values(q: np.ndarray, r: np.ndarray, nu: float, size: int) -> np.ndarray:
    """The U-statistic of each block of ``size`` consecutive rows (N // size values)."""
    m = q.shape[0] // size
    k = q.shape[1]
    qb = q[: m * size].reshape(m, size, k)
    rb = r[: m * size].reshape(m, size, k)
    out = np.empty(m)
    step = max(1, _BLOCK_ELEMENTS // (size * max(size, k)))
    off = ~np.eye(size, dtype=bool)
    for start in range(0, m, step):
        sl = slice(start, min(start + step, m))
        qs, rs = qb[sl], rb[sl]
        sq = np.einsum("bik,bik->bi", qs, qs)
        h = np.exp(-_distances(qs, qs, sq, sq) / nu) * (rs @ rs.transpose(0, 2, 1))
        out[sl] = h[:, off].sum(axis=1) / (size * (size - 1))
    return out


def _mean_test(values: np.ndarray) -> tuple[float, float, float]:
    """(mean, standard error, one-sided p-value P(T >= mean / se)) of m i.i.d. block values,
    T Student's t with m - 1 degrees of freedom (the standard error is itself estimated from
    the m values: with the whole-vector test's 7 blocks at N = 2000 the normal reference gave
    a size of 0.085 +- 0.020 at alpha = 0.05 on a calibrated K = 100 model)."""
    from scipy.special import stdtr

    est = float(values.mean())
    se = float(values.std(ddof=1)) / math.sqrt(values.size)
    if se > 0:
        p = float(stdtr(values.size - 1, -est / se))
    else:
        p = 0.0 if est > 0 else 1.0
    return est, se, p


def skce(
    labels: Any = None,
    /,
    *,
    logits: Any = None,
    probs: Any = None,
    targets: Any = None,
    counts: Any = None,
    estimator: str = "unbiased",
    block_size: int | None = None,
    bandwidth: float | None = None,
    n_resamples: int = DEFAULT_RESAMPLES,
    random_state: int | np.random.Generator | None = None,
) -> SKCEResult:
    """Squared kernel calibration error (Widmann et al. 2019) and its calibration test.

    SKCE = E[kappa(q, q') (e_Y - q)^T (e_Y' - q')] with kappa(q, q') = exp(-||q - q'||_2 / nu);
    each estimator averages h_ij = kappa(q_i, q_j) (e_{y_i} - q_i)^T (e_{y_j} - q_j) over pairs
    of distinct rows (see the module notes for the estimators, the tests and soft targets).

    Parameters
    ----------
    labels : array (N,), optional
        Hard labels; or pass ``targets=`` (soft) or ``counts=``: e_{y_i} becomes t_i.
    logits, probs : array (N, K), or (N,) for binary
        Model outputs (the whole vector is needed; top-label confidences are not enough).
    estimator : {"unbiased", "linear", "block"}
        The U-statistic over all pairs (O(N^2) time, bootstrap test), disjoint pairs (O(N)),
        or blocks of ``block_size`` rows (O(N B), normal test).
    block_size : int, optional
        B >= 2 for ``estimator="block"`` (default 16); at least 2 blocks are needed.
    bandwidth : float, optional
        nu > 0; default: the median heuristic (:func:`median_heuristic`).
    n_resamples : int
        Bootstrap replicates of the unbiased estimator's test (default 1000; 0: no test, the
        p-value is NaN). Not used by the linear and block estimators.
    random_state : int, Generator or None
        Seed of the bootstrap (unbiased estimator only).

    Returns
    -------
    SKCEResult

    Notes
    -----
    Rows are paired and blocked in the order given: shuffle rows that are sorted (by class,
    by confidence) before using the linear or block estimator.

    Examples
    --------
    >>> import numpy as np
    >>> from trueprob.metrics.skce import skce
    >>> q = np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4], [0.1, 0.9]])
    >>> y = np.array([1, 1, 0, 1])
    >>> # h_ij = exp(-||q_i - q_j||) (e_i - q_i).(e_j - q_j); U = mean over the 12 ordered pairs
    >>> r = skce(y, probs=q, bandwidth=1.0, n_resamples=0)   # unbiased, so it can be < 0
    >>> round(r.estimate, 6), r.n, r.estimator
    (-0.056241, 4, 'unbiased')
    >>> r = skce(y, probs=q, estimator="linear", bandwidth=1.0)   # (h_01 + h_23) / 2
    >>> round(r.estimate, 6), r.block_size
    (0.098614, 2)
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}; got {estimator!r}")
    if block_size is not None and estimator != "block":
        raise ValueError(f"block_size applies to estimator='block' only; got block_size="
                         f"{block_size!r} with estimator={estimator!r}")
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, (int, np.integer)) \
            or n_resamples < 0:
        raise ValueError(f"n_resamples must be an integer >= 0; got {n_resamples!r}")
    size = DEFAULT_BLOCK if block_size is None else block_size
    if estimator == "block" and (isinstance(size, bool)
                                 or not isinstance(size, (int, np.integer)) or size < 2):
        raise ValueError(f"block_size must be an integer >= 2; got {block_size!r}")
    if bandwidth is not None:
        if isinstance(bandwidth, bool) or not isinstance(bandwidth, (int, float, np.number)):
            raise TypeError(f"bandwidth must be a positive number or None; got {bandwidth!r}")
        if not (math.isfinite(float(bandwidth)) and float(bandwidth) > 0):
            raise ValueError(f"bandwidth must be a finite number > 0; got {bandwidth!r}")
    q, r = _residuals(labels, logits, probs, targets, counts)
    n = q.shape[0]
    size = {"unbiased": n, "linear": 2, "block": int(size)}[estimator]
    need = 2 if estimator == "unbiased" else 2 * size
    if n < need:
        raise ValueError(f"estimator={estimator!r} needs at least {need} rows"
                         f"{'' if estimator == 'unbiased' else ' (2 blocks of ' + str(size) + ')'}"
                         f"; got {n}")
    nu = median_heuristic(q) if bandwidth is None else float(bandwidth)
    if estimator == "unbiased":
        rng = np.random.default_rng(random_state)
        est, se, p = _unbiased(q, r, nu, int(n_resamples), rng)
        test = (f"bootstrap of the degenerate U-statistic (Arcones & Gine 1992), "
                f"{int(n_resamples)} resamples" if n_resamples else "none")
        return SKCEResult(est, se, p, nu, estimator, n, n, test, int(n_resamples))
    values = _block_values(q, r, nu, size)
    est, se, p = _mean_test(values)
    test = (f"Student t test of the mean of {values.size} i.i.d. block values "
            f"({values.size - 1} degrees of freedom)")
    return SKCEResult(est, se, p, nu, estimator, values.size * size, size, test, None)


#: rows per block of :func:`whole_vector_test` (at most; fewer when N < 512)
WHOLE_VECTOR_BLOCK = 256


def whole_vector_test(
    labels: Any = None,
    /,
    *,
    logits: Any = None,
    probs: Any = None,
    targets: Any = None,
    counts: Any = None,
    random_state: int | np.random.Generator | None = 0,
) -> SKCEResult:
    """The whole-vector calibration test every trueprob command reports: SKCE, block estimator.

    One estimator for one quantity, so that ``trueprob evaluate``, ``trueprob report`` and the
    Python API never reach opposite conclusions on the same file: :func:`skce` with
    ``estimator="block"`` and blocks of B = min(:data:`WHOLE_VECTOR_BLOCK`, N // 2) rows, over
    the rows in a seeded random order (the estimator blocks rows in the order given, and files
    are often sorted by class), with its normal test. O(N B K) time, O(N K) memory. Needs at
    least 4 rows. Unweighted.

    Why B = 256: the test's power grows with B (the linear estimator, B = 2, wastes most pairs)
    while its size stays at the nominal level. Measured here (40 simulations per cell, K = 10
    Gaussian logits of scale 2, labels drawn from softmax(z / T), 5 % level; Monte-Carlo SE
    about 0.07): rejection rate at N = 10 000 for T = 1 (calibrated) 0.05 / 0.05 / 0.07 with
    B = 16 / 64 / 256, for T = 1.25 0.15 / 0.25 / 0.75; at N = 2000, T = 1.25: 0.05 / 0.15 /
    0.23. About 2 s for 10 000 rows at K = 10 on one core.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=(400, 3)) * 2
    >>> q = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    >>> y = np.array([rng.choice(3, p=row) for row in q])     # calibrated by construction
    >>> r = whole_vector_test(y, probs=q)
    >>> r.estimator, r.block_size, bool(r.p_value > 0.01)
    ('block', 200, True)
    """
    given = {"logits": logits, "probs": probs, "targets": targets, "counts": counts}
    scores = logits if logits is not None else probs
    if scores is None:
        raise ValueError("whole_vector_test needs logits= or probs= (the whole vector)")
    n = len(scores)
    if n < 4:
        raise ValueError(f"whole_vector_test needs at least 4 rows (2 blocks of 2); got {n}")
    order = np.random.default_rng(random_state).permutation(n)

    def take(x: Any) -> Any:  # arrays of any namespace; lists and tuples via numpy
        return x[order] if hasattr(x, "shape") else np.asarray(x)[order]

    shuffled = {k: take(v) for k, v in given.items() if v is not None}
    return skce(None if labels is None else take(labels), **shuffled, estimator="block",
                block_size=min(WHOLE_VECTOR_BLOCK, n // 2))
