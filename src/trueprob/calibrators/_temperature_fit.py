"""The passes of a temperature fit and its solver, shared by every executor.

:class:`_Passes` computes, in threads over blocks of rows in memory, the sums of f_i(beta) =
logsumexp(beta z_i) - beta t_i . z_i and of its first three derivatives; :class:`_SumPasses`
takes the same sums from passes over data seen elsewhere (streamed files, Dask partitions).
Both are iterated by one solver, the safeguarded Halley iteration :func:`_halley`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from trueprob.calibrators._fitdata import FitData
from trueprob.core.threads import default_threads as _threads

Work = Callable[[int, int, dict[str, np.ndarray]], Any]
#: values (rows x K) per block of a pass: small enough for the temporaries to stay in cache
BLOCK_ELEMENTS = 1 << 15
#: values in the subsample that gives the starting point
START_ELEMENTS = 1 << 18
#: stop once a Halley step is below this, relative to beta: the error left is ~ 3 step**3
HALLEY_STOP = 3e-6
#: the float32 stage takes its last step once a step is below this (relative to beta): the
#: error left, ~ 3 step**3 ~ 1e-8, is then at the level of its float32 sums (~1e-7)
FLOAT32_STOP = 2e-3
#: the subsample has at least this many rows (when the data has more than twice as many)
START_ROWS = 2048


def default_threads() -> int:
    """Threads of the temperature fit's passes: every usable core
    (:func:`trueprob.core.threads.default_threads` with no limit)."""
    return _threads(limit=None)


def derivative_sums(s0: np.ndarray, s1: np.ndarray, s2: np.ndarray, s3: np.ndarray,
                    tz: np.ndarray, w: np.ndarray, beta: float) -> np.ndarray:
    """Weighted sums of f and its first three derivatives in beta, from per-row power sums.

    s_j = sum_k exp(beta zc_k) zc_k^j of the scores shifted by their row maximum (zc <= 0),
    tz = t . zc. With q = softmax(beta z): f = logsumexp(beta z) - beta t.z, f' = E_q[z] - t.z,
    f'' = Var_q[z], f''' = the third central moment of z under q. The moments are raw moments
    about the row maximum, which the shift keeps well scaled (float64). Returns the sums over
    rows of w f, w f', w f'' and w f'''.
    """
    m1 = s1 / s0
    m2 = s2 / s0
    var = np.maximum(m2 - m1 * m1, 0.0)
    k3 = s3 / s0 - 3.0 * m1 * m2 + 2.0 * m1 ** 3
    return np.array([w @ (np.log(s0) - beta * tz), w @ (m1 - tz), w @ var, w @ k3])


class _Passes:
    """Blocked, threaded passes over (scores, targets, weights) for f and its derivatives.

    With more than one thread, the first pass starts a thread pool that every later pass
    (and every :meth:`subsample` of it) reuses; :meth:`close` (or leaving a ``with`` block)
    shuts it down.
    """

    pool: ThreadPoolExecutor | None = None

    def __init__(self, data: FitData, threads: int) -> None:
        self.z = data.scores
        self.k = int(self.z.shape[1])
        self.block = max(1, BLOCK_ELEMENTS // self.k)
        self.n = int(self.z.shape[0])
        self.n_blocks = -(-self.n // self.block)
        self.threads = max(1, min(threads, self.n_blocks))
        self.w = data.weights / data.weights.sum()
        self.labels = data.labels
        self.soft = data.soft_targets
        self.zmax = np.empty(self.n, dtype=self.z.dtype)
        self.tz = np.empty(self.n)     # t_i . (z_i - max z_i) <= 0
        self.means = np.empty(self.n)  # mean_k (z_ik - max z_i) <= 0; 0 iff constant
        self._owner = True             # False for a subsample: it borrows the pool

    def __enter__(self) -> _Passes:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Shut the thread pool down (a subsample leaves its parent's pool alone)."""
        if self._owner and self.pool is not None:
            self.pool.shutdown()
            self.pool = None

    # -------------------------------------------------------------- running a pass
    def _run(self, work: Work, width: int) -> np.ndarray:
        """work(start, stop, buffers) on every block; per-block results summed in order."""
        out = np.zeros((self.n_blocks, width))

        def worker(first: int) -> None:
            buffers: dict[str, np.ndarray] = {}
            for b in range(first, self.n_blocks, self.threads):
                start = b * self.block
                out[b] = work(start, min(start + self.block, self.n), buffers)

        if self.threads == 1:
            worker(0)
        else:
            pool = self._pool()
            for job in [pool.submit(worker, j) for j in range(self.threads)]:
                job.result()
        return out.sum(axis=0)

    def _pool(self) -> ThreadPoolExecutor:
        """The fit's thread pool, started on first use (a subsample uses its parent's)."""
        if self.pool is None:
            self.pool = ThreadPoolExecutor(self.threads)
        return self.pool

    def _buffer(self, buffers: dict[str, np.ndarray], key: str, n: int,
                dtype: Any) -> np.ndarray:
        """A (n, K) scratch array of the worker, allocated once per pass and reused."""
        buf = buffers.get(key)
        if buf is None:
            buf = buffers[key] = np.empty((self.block, self.k), dtype=dtype)
        return buf[:n]

    def _shifted(self, start: int, stop: int, buffers: dict[str, np.ndarray],
                 dtype: Any) -> np.ndarray:
        """zc = z - max z for the rows start:stop, in ``dtype`` (exact in float64)."""
        zc = self._buffer(buffers, "zc", stop - start, dtype)
        zc[...] = self.z[start:stop]
        zc -= self.zmax[start:stop, None]
        return zc

    # -------------------------------------------------------------- the passes
    def first_pass(self) -> float:
        """Fill zmax, tz and means; return f(1), the NLL at T = 1 (float64)."""
        ones = np.ones(self.k)

        def work(start: int, stop: int, buffers: dict[str, np.ndarray]) -> float:
            self.zmax[start:stop] = _row_max(self.z[start:stop])
            zc = self._shifted(start, stop, buffers, np.float64)
            if self.labels is not None:
                tz = np.take_along_axis(zc, self.labels[start:stop, None], axis=1)[:, 0]
            else:
                assert self.soft is not None
                tz = np.einsum("ij,ij->i", self.soft[start:stop], zc)
            self.tz[start:stop] = tz
            self.means[start:stop] = (zc @ ones) / self.k
            np.exp(zc, out=zc)
            return float(self.w[start:stop] @ (np.log(zc @ ones) - tz))

        return float(self._run(work, 1)[0])

    def value(self, beta: float) -> float:
        """f(beta) in float64."""
        ones = np.ones(self.k)

        def work(start: int, stop: int, buffers: dict[str, np.ndarray]) -> float:
            zc = self._shifted(start, stop, buffers, np.float64)
            zc *= beta
            np.exp(zc, out=zc)
            nll = np.log(zc @ ones) - beta * self.tz[start:stop]
            return float(self.w[start:stop] @ nll)

        return float(self._run(work, 1)[0])

    def derivatives(self, beta: float, dtype: Any = np.float64) -> np.ndarray:
        """(f, f', f'', f''') at beta; exp and class sums in ``dtype``, the rest in float64."""
        ones = np.ones(self.k, dtype=dtype)
        f64 = np.float64

        def work(start: int, stop: int, buffers: dict[str, np.ndarray]) -> np.ndarray:
            zc = self._shifted(start, stop, buffers, dtype)
            e = self._buffer(buffers, "e", stop - start, dtype)
            np.multiply(zc, beta, out=e)
            np.exp(e, out=e)
            # class sums as matrix-vector products: far faster than sum(axis=1) for small K
            s0 = (e @ ones).astype(f64)
            e *= zc
            s1 = (e @ ones).astype(f64)
            e *= zc
            s2 = (e @ ones).astype(f64)
            e *= zc
            s3 = (e @ ones).astype(f64)
            return derivative_sums(s0, s1, s2, s3, self.tz[start:stop], self.w[start:stop],
                                   beta)

        return self._run(work, 4)

    def subsample(self, n_values: int) -> _Passes | None:
        """The same objective on every m-th row (about ``n_values`` values), or None."""
        step = min((self.n * self.k) // n_values, self.n // START_ROWS)
        if step < 2:
            return None
        rows = slice(0, self.n, step)
        if not self.w[rows].sum() > 0:
            return None
        sub = object.__new__(_Passes)
        sub.__dict__.update(self.__dict__)
        sub._owner = False
        if self.threads > 1:
            sub.pool = self._pool()
        sub.z = self.z[rows]
        sub.n = int(sub.z.shape[0])
        sub.n_blocks = -(-sub.n // self.block)
        sub.threads = max(1, min(self.threads, sub.n_blocks))
        sub.w = self.w[rows] / self.w[rows].sum()
        sub.labels = None if self.labels is None else self.labels[rows]
        sub.soft = None if self.soft is None else self.soft[rows]
        sub.zmax, sub.tz, sub.means = self.zmax[rows], self.tz[rows], self.means[rows]
        return sub


class _SumPasses:
    """What :func:`_halley` iterates on for data seen through passes: each call of
    :meth:`derivatives` is one pass, whose sums ``run_pass(beta)`` adds over all rows."""

    def __init__(self, run_pass: Callable[[float], np.ndarray], total: float) -> None:
        self.run_pass = run_pass
        self.total = total
        self.count = 0

    def derivatives(self, beta: float, dtype: Any = np.float64) -> np.ndarray:
        self.count += 1
        return np.asarray(self.run_pass(beta)) / self.total


def _row_max(z: np.ndarray) -> np.ndarray:
    """max_k z_ik; a loop over columns is faster than max(axis=1) for small K."""
    if z.shape[1] > 16:
        return z.max(axis=1)
    m = z[:, 0].copy()
    for j in range(1, z.shape[1]):
        np.maximum(m, z[:, j], out=m)
    return m


def _halley(passes: _Passes, beta: float, max_iter: int, stop: float,
            dtype: Any = np.float64) -> tuple[float, float, bool, int]:
    """Safeguarded Halley iteration for f'(beta) = 0 on (0, inf), given f'(0) < 0.

    Returns (beta, f(beta), converged, passes used). The bracket [lo, hi] always holds the
    root (f' < 0 at lo, > 0 at hi); a step that leaves it is replaced by a Newton step, then
    by bisection (or doubling while hi is unbounded).
    """
    lo, hi = 0.0, math.inf
    f = math.nan
    for it in range(1, max_iter + 1):
        f, g, h, t = (float(v) for v in passes.derivatives(beta, dtype))
        if g == 0.0:
            return beta, f, True, it
        if g < 0:
            lo = beta
        else:
            hi = beta
        candidates = []
        if h > 0:
            denom = 2.0 * h * h - g * t
            if denom > 0:
                candidates.append(-2.0 * g * h / denom)  # Halley
            candidates.append(-g / h)  # Newton
        step = None
        for d in candidates:
            # a closed bracket: near the root a step can round onto one of its ends
            if lo <= beta + d <= hi:
                step = d
                break
        if step is not None and abs(step) <= stop * beta:
            # the error left after this step is of order step**3: take it, and extrapolate
            # f by Taylor's formula (whose error is of the same order)
            f += step * (g + step * (h / 2.0 + step * t / 6.0))
            return beta + step, f, True, it
        if step is None:
            step = (0.5 * (lo + hi) if math.isfinite(hi) else 2.0 * beta) - beta
        if hi - lo <= 4.0 * np.finfo(np.float64).eps * beta:
            return beta, f, True, it
        beta = beta + step
    return beta, f, False, max_iter
