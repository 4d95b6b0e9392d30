"""Bayesian model averaging of binning calibrators: BBQ (Naeini et al. 2015) and ENIR (2016).

Both are binary calibrators (use :class:`~trueprob.calibrators.multiclass.OneVsRest` or
:class:`~trueprob.calibrators.multiclass.TopLabel` for K > 2 classes). Each fits a family of
step-function maps m_1..m_M of the model's probability p = sigmoid(s) on the calibration set,
scores every member, and predicts the weighted average

    p'(p) = sum_m omega_m m_m(p),    omega_m proportional to exp(-score_m / 2),

- BBQ: the members are histogram-binning maps with B = B_min..B_max bins (Naeini et al.'s
  range B in [N^(1/3) / 10, 10 N^(1/3)], capped at N / 5);
- ENIR: the members are the near-isotonic regression fits along the regularisation path
  (modified pool-adjacent-violators, Tibshirani, Hoefling and Tibshirani 2011), from the
  perfect fit of the sorted targets to the isotonic fit.

Scores (weighted Bernoulli log-likelihood LL of the calibration set under the member, df the
number of bins or groups, W the total weight): ``"bic"`` = -2 LL + df log W, ``"aic"`` =
-2 LL + 2 df, and for BBQ ``"bdeu"`` = -2 log P(D | m), the Beta-Bernoulli marginal likelihood
of Naeini et al. 2015 (each bin b a Beta(N'/B p_b, N'/B (1 - p_b)) prior, p_b the bin's
midpoint, N' = 2; the member then predicts the posterior means). With ``elbow`` (netcal's
model selection) the members are sorted by weight and only those before the first drop
smaller than ``elbow`` times the variance of the weights are kept.

The defaults reproduce netcal 1.4.0's ``BBQ()`` and ``ENIR()`` (BIC, equal-width bins for BBQ,
elbow 0.001); ``tests/test_bayesian_binning.py`` checks them against netcal's outputs.
``BBQ(score="bdeu", binning="mass", elbow=None)`` is the method of the 2015 paper.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import gammaln

from trueprob._array import Array
from trueprob.calibrators.base import CalibratorFormatError
from trueprob.calibrators.binary import BinaryCalibrator
from trueprob.calibrators.nonparametric import (
    _check_array,
    _check_clip,
    _lookup,
    _prob,
    _prob_log_odds,
)
from trueprob.core.binning import Binning, equal_mass_edges

_SCORES = ("bic", "aic", "bdeu")


# --------------------------------------------------------------------------- shared


def _bernoulli_ll(v: np.ndarray, t: np.ndarray, w: np.ndarray) -> float:
    """sum_i w_i [t_i log v_i + (1 - t_i) log(1 - v_i)], with 0 log 0 = 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(t > 0, t * np.log(v), 0.0)
        b = np.where(t < 1, (1 - t) * np.log1p(-v), 0.0)
    return float(np.dot(w, a + b))


def _information_score(ll: float, df: int, total: float, score: str) -> float:
    if score == "aic":
        return -2.0 * ll + 2.0 * df
    return -2.0 * ll + df * math.log(total)


def model_weights(scores: np.ndarray, elbow: float | None) -> tuple[np.ndarray, np.ndarray]:
    """(kept member indices, their normalised weights) from the members' scores.

    omega_m = exp((min score - score_m) / 2). With ``elbow`` (netcal's selection): sort the
    omega decreasingly, skip a leading run of equal values, then keep going while the drop to
    the next one, divided by the variance of all omega, exceeds ``elbow``; the members up to
    there are kept.

    Examples
    --------
    >>> idx, w = model_weights(np.array([10.0, 12.0, 30.0]), None)
    >>> idx.tolist(), w.round(4).tolist()
    ([0, 1, 2], [0.731, 0.2689, 0.0])
    """
    finite = np.isfinite(scores)
    omega = np.zeros_like(scores)
    omega[finite] = np.exp((np.min(scores[finite]) - scores[finite]) / 2.0)
    if elbow is None:
        keep = np.flatnonzero(omega > 0)
        return keep, omega[keep] / omega[keep].sum()
    order = np.argsort(omega, kind="stable")[::-1]
    ranked = omega[order]
    n = ranked.size
    var = float(np.var(omega))
    k = 0
    while k < n - 1 and ranked[k] == ranked[k + 1]:
        k += 1
    while k < n - 1 and var > 0 and (ranked[k] - ranked[k + 1]) / var > elbow:
        k += 1
    keep = order[:k + 1]
    return keep, omega[keep] / omega[keep].sum()


def _check_options(score: Any, elbow: Any, allowed: tuple[str, ...], owner: str) -> None:
    if score not in allowed:
        raise ValueError(f"{owner}: score must be one of {list(allowed)}; got {score!r}")
    if elbow is not None and (isinstance(elbow, bool) or not isinstance(elbow, (int, float))
                              or not (math.isfinite(elbow) and elbow >= 0)):
        raise ValueError(f"{owner}: elbow must be None or a finite number >= 0; got {elbow!r}")


def _check_weights(cal: Any, name: str) -> np.ndarray:
    weights = _check_array(cal.model_weights_, "model_weights_", name, low=0.0, high=1.0)
    if weights.size == 0 or not math.isclose(float(weights.sum()), 1.0, rel_tol=1e-9):
        raise CalibratorFormatError(f"{name}: model_weights_ must be non-empty and sum to 1")
    return weights


class _ModelAverage(BinaryCalibrator):
    """What BBQ and ENIR share: a weighted average of step functions of the probability,
    saved as per-member arrays (``count_field`` sizes, ``table_fields`` tables)."""

    _base = True
    count_field = ""
    table_fields: tuple[str, ...] = ()
    clip: float

    def _calibrated_prob(self, xp: Any, s: Array) -> Array:  # pragma: no cover - abstract
        raise NotImplementedError

    def _check_params(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _log_odds(self, xp: Any, s: Array) -> Array:
        clip = _check_clip(self.clip, type(self).__name__)
        return _prob_log_odds(xp, self._calibrated_prob(xp, s), clip)

    def _check_members(self) -> tuple[str, np.ndarray, np.ndarray]:
        """(name, model weights, per-member counts) of a loaded map, its parameters, weights,
        counts and table lists checked (each a CalibratorFormatError naming the field)."""
        name = type(self).__name__
        self._check_kind()
        try:
            self._check_params()
        except ValueError as exc:
            raise CalibratorFormatError(f"params: {exc}") from exc
        weights = _check_weights(self, name)
        counts = getattr(self, self.count_field)
        if not isinstance(counts, np.ndarray) or counts.dtype != np.int64 \
                or counts.shape != weights.shape or np.any(counts < 1):
            raise CalibratorFormatError(f"{name}: {self.count_field} must be {weights.size} "
                                        f"positive integers (one per member)")
        for field in self.table_fields:
            value = getattr(self, field)
            if not isinstance(value, list) or len(value) != weights.size:
                raise CalibratorFormatError(f"{name}: {field} must be a list of "
                                            f"{weights.size} arrays (one per member)")
        return name, weights, counts


# --------------------------------------------------------------------------- BBQ


def bbq_bin_range(total: float) -> range:
    """B_min..B_max of Naeini et al. 2015: [max(1, floor(N^(1/3) / 10)),
    min(ceil(N / 5), ceil(10 N^(1/3)))] (the range netcal 1.4.0 uses).

    >>> bbq_bin_range(1000)
    range(1, 101)
    """
    root = total ** (1.0 / 3.0)
    low = int(max(1, math.floor(root / 10.0)))
    high = int(min(math.ceil(total / 5.0), math.ceil(root * 10.0)))
    return range(low, max(low, high) + 1)


class BBQ(_ModelAverage):
    """Bayesian binning into quantiles (Naeini, Cooper, Hauskrecht 2015): averaged histograms.

    For every B in :func:`bbq_bin_range` (W, the calibration weight), histogram binning with
    B bins of p = sigmoid(s) (right-closed as in SPEC.md; equal-width, or equal-mass at the
    weighted quantiles) gives the member map m_B(p) = the bin's weighted mean target (with
    ``score="bdeu"``: its posterior mean (sum w t + a_b) / (sum w + N'/B), a_b = N'/B p_b); an
    empty bin gets its midpoint. The prediction is sum_B omega_B m_B(p) with the weights of
    the module docstring, clipped to [clip, 1 - clip].

    Parameters
    ----------
    score : {"bic", "aic", "bdeu"}
        How members are weighted; "bic" (netcal's default).
    binning : {"width", "mass"}
        Equal-width bins (netcal's default) or equal-mass bins (the paper's quantiles).
    elbow : float or None
        netcal's selection threshold (0.001); None averages every member (the paper).
    clip : float
        Predictions are clipped to [clip, 1 - clip] so that log-probabilities stay finite;
        1e-6 (0 keeps exact 0 and 1).

    Attributes
    ----------
    n_bins_ : ndarray (M,) int64
        B of each kept member.
    edges_ : list of M ndarrays
        Bin edges (B + 1, from 0 to 1) of each kept member.
    values_ : list of M ndarrays
        Bin values of each kept member.
    model_weights_ : ndarray (M,)
        omega of each kept member (sum 1).
    kind_ : {"logits", "probs"}

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> u = rng.normal(size=500)
    >>> y = (rng.random(500) < 1 / (1 + np.exp(-u))).astype(int)
    >>> cal = BBQ().fit(y, logits=3 * u)            # three times over-confident
    >>> q = np.exp(cal.predict_logproba(logits=np.array([-6.0, 0.0, 6.0])))[:, 1]
    >>> q.round(3).tolist()                          # sigmoid(+-6) = 0.0025, 0.9975
    [0.253, 0.384, 0.771]
    """

    _fitted_attrs = ("n_bins_", "edges_", "values_", "model_weights_", "kind_")

    def __init__(self, *, score: str = "bic", binning: str = "width",
                 elbow: float | None = 1e-3, clip: float = 1e-6) -> None:
        self.score = score
        self.binning = binning
        self.elbow = elbow
        self.clip = clip

    def _check_params(self) -> None:
        name = type(self).__name__
        _check_options(self.score, self.elbow, _SCORES, name)
        if self.binning not in ("width", "mass"):
            raise ValueError(f"{name}: binning must be 'width' or 'mass'; got {self.binning!r}")
        _check_clip(self.clip, name)

    def _fit_log_odds(self, s: np.ndarray, t: np.ndarray, w: np.ndarray) -> None:
        self._check_params()
        p = _prob(np, s)
        total = float(w.sum())
        members: list[tuple[int, np.ndarray, np.ndarray]] = []
        scores = []
        for b in bbq_bin_range(total):
            if self.binning == "mass":
                edges = equal_mass_edges(p, w, b)
                binning = Binning(b, edges=tuple(edges.tolist()))
            else:
                binning = Binning(b)
                edges = binning.edge_array()
            idx = binning.index(np, p)
            weight = np.bincount(idx, weights=w, minlength=b)
            hits = np.bincount(idx, weights=w * t, minlength=b)
            mid = (edges[:-1] + edges[1:]) / 2.0
            if self.score == "bdeu":
                prior = 2.0 / b  # N' / B with N' = 2
                alpha, beta = prior * mid, prior * (1.0 - mid)
                values = (hits + alpha) / (weight + prior)
                log_ml = float(np.sum(
                    gammaln(prior) - gammaln(weight + prior)
                    + gammaln(hits + alpha) - gammaln(alpha)
                    + gammaln(weight - hits + beta) - gammaln(beta)))
                scores.append(-2.0 * log_ml)
            else:
                with np.errstate(invalid="ignore", divide="ignore"):
                    values = np.where(weight > 0, hits / np.where(weight > 0, weight, 1.0), mid)
                values = np.clip(values, 0.0, 1.0)
                # every row of bin b gets values[b]: the log-likelihood from the bin sums
                ll = _bernoulli_ll(values, hits / np.where(weight > 0, weight, 1.0), weight)
                scores.append(_information_score(ll, b, total, self.score))
            members.append((b, edges, values))
        keep, omega = model_weights(np.asarray(scores), self.elbow)
        self.n_bins_ = np.asarray([members[i][0] for i in keep], dtype=np.int64)
        self.edges_ = [members[i][1] for i in keep]
        self.values_ = [members[i][2] for i in keep]
        self.model_weights_ = omega

    def _calibrated_prob(self, xp: Any, s: Array) -> Array:
        p = _prob(xp, s)
        out = xp.zeros_like(p)
        for b, edges, values, omega in zip(self.n_bins_.tolist(), self.edges_, self.values_,
                                           self.model_weights_.tolist(), strict=True):
            # the binning of the fit: equal-width bins by their formula, others by edges
            binning = Binning(int(b)) if self.binning == "width" \
                else Binning(int(b), edges=tuple(float(e) for e in edges))
            out = out + omega * _lookup(xp, values, binning.index(xp, p))
        return xp.clip(out, 0.0, 1.0)

    count_field = "n_bins_"
    table_fields = ("edges_", "values_")

    def _check_loaded(self) -> None:
        name, weights, n_bins = self._check_members()
        for m, b in enumerate(n_bins.tolist()):
            edges = _check_array(self.edges_[m], f"edges_[{m}]", name, shape=(b + 1,),
                                 low=0.0, high=1.0, increasing=True)
            if edges[0] != 0.0 or edges[-1] != 1.0:
                raise CalibratorFormatError(f"{name}: edges_[{m}] must run from 0 to 1")
            self.edges_[m] = edges
            self.values_[m] = _check_array(self.values_[m], f"values_[{m}]", name,
                                           shape=(b,), low=0.0, high=1.0)
        self.model_weights_ = weights


# --------------------------------------------------------------------------- ENIR


@dataclass(frozen=True)
class PathModel:
    """One model of the near-isotonic path: its groups, in order of p."""

    lows: np.ndarray  # smallest p of each group
    highs: np.ndarray  # largest p of each group
    values: np.ndarray  # fitted value of each group
    weights: np.ndarray  # sum of w over the group's rows
    hits: np.ndarray  # sum of w t over the group's rows

    @property
    def upper(self) -> np.ndarray:
        """Upper bounds in p: midpoints between neighbouring groups, the last 1."""
        return np.append((self.highs[:-1] + self.lows[1:]) / 2.0, 1.0)

    def log_likelihood(self) -> float:
        """sum_g [H_g log v_g + (W_g - H_g) log(1 - v_g)], 0 log 0 = 0: the Bernoulli
        log-likelihood of the rows under the model (each row gets its group's value)."""
        v = np.clip(self.values, 0.0, 1.0)
        miss = self.weights - self.hits
        with np.errstate(divide="ignore", invalid="ignore"):
            a = np.where(self.hits > 0, self.hits * np.log(v), 0.0)
            b = np.where(miss > 0, miss * np.log1p(-v), 0.0)
        return float(np.sum(a + b))


def iter_near_isotonic_path(p: np.ndarray, t: np.ndarray, w: np.ndarray) -> Iterator[PathModel]:
    """The models of :func:`near_isotonic_path`, one at a time (O(groups) memory each)."""
    order = np.argsort(p, kind="stable")
    p, t, w = p[order], t[order], w[order]
    first = np.flatnonzero(np.concatenate([[True], p[1:] != p[:-1]]))
    gw = np.add.reduceat(w, first)
    gh = np.add.reduceat(w * t, first)
    gt = gh / gw
    lo_p = p[first]
    hi_p = p[np.concatenate([first[1:] - 1, [p.size - 1]])]
    # initial groups: runs of equal values
    start = np.flatnonzero(np.concatenate([[True], gt[1:] != gt[:-1]]))
    weights = np.add.reduceat(gw, start)
    hits = np.add.reduceat(gh, start)
    values = hits / weights
    lows = lo_p[start]
    highs = hi_p[np.concatenate([start[1:] - 1, [gt.size - 1]])]
    yield PathModel(lows, highs, values, weights, hits)
    lam = 0.0
    while values.size > 1:
        above_next = (values[:-1] > values[1:]).astype(np.float64)
        down = np.append(above_next, 0.0)  # falls: above its right neighbour
        up = np.insert(above_next, 0, 0.0)  # rises: its left neighbour is above it
        slopes = (up - down) / weights
        gap = values[1:] - values[:-1]
        closing = slopes[:-1] - slopes[1:]
        with np.errstate(divide="ignore", invalid="ignore"):
            times = np.where(closing != 0, gap / np.where(closing != 0, closing, 1.0), np.inf)
        times = times + lam
        nxt = float(np.min(times))
        if not math.isfinite(nxt) or nxt < lam:
            break
        values = values + slopes * (nxt - lam)
        merge = np.flatnonzero(times == nxt)
        keep = np.ones(values.size, dtype=bool)
        keep[merge + 1] = False  # group j + 1 joins group j
        # pooled value of each merged run (their values coincide at nxt up to rounding)
        run = np.cumsum(keep) - 1
        total_w = np.bincount(run, weights=weights)
        values = np.bincount(run, weights=weights * values) / total_w
        hits = np.bincount(run, weights=hits)
        weights = total_w
        highs = highs[np.append(keep[1:], True)]  # the last group of each run
        lows = lows[keep]
        lam = nxt
        yield PathModel(lows, highs, values, weights, hits)


def near_isotonic_path(p: np.ndarray, t: np.ndarray,
                       w: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The near-isotonic regression path (modified PAV) of t on p, as step functions.

    Minimises sum_i w_i (v_i - t_i)^2 + lambda sum_i (v_i - v_{i+1})_+ over the rows sorted by
    p, for lambda from 0 (the targets themselves, runs of equal targets pooled) up to the
    isotonic fit. Along the path the groups' values move linearly in lambda: a group whose
    left neighbour is above it rises at 1 / W_g, one above its right neighbour falls at
    1 / W_g (both: stays), and adjacent groups that meet merge (Tibshirani, Hoefling and
    Tibshirani 2011). Rows with equal p are pooled first (they always share a value). Each
    step costs O(G) for G groups and merges at least two, so the path costs O(G^2) at worst.

    Returns one ``(upper, values, weights)`` per model of the path: the groups' upper bounds in
    p (midpoints between neighbouring groups, the last 1), their values and weights.

    Examples
    --------
    >>> path = near_isotonic_path(np.array([0.1, 0.2, 0.3]), np.array([0.0, 1.0, 0.0]),
    ...                           np.ones(3))
    >>> [v.tolist() for _, v, _ in path]
    [[0.0, 1.0, 0.0], [0.0, 0.5]]
    """
    return [(m.upper, m.values, m.weights) for m in iter_near_isotonic_path(p, t, w)]


class ENIR(_ModelAverage):
    """Ensemble of near-isotonic regressions (Naeini and Cooper 2016), averaged by score.

    The members are the models of :func:`near_isotonic_path` on p = sigmoid(s) (without its
    first, which reproduces the targets; with it when the path has no other model). A member
    maps p to the value of its group (first group [0, u_1], group j (u_{j-1}, u_j], u the
    upper bounds), the prediction is sum_m omega_m m_m(p) (module docstring; df = number of
    groups), clipped to [clip, 1 - clip].

    Parameters
    ----------
    score : {"bic", "aic"}
        How members are weighted; "bic" (netcal's default and the paper's).
    elbow : float or None
        netcal's selection threshold (0.001); None averages every member.
    clip : float
        Predictions are clipped to [clip, 1 - clip]; 1e-6.

    Attributes
    ----------
    n_groups_ : ndarray (M,) int64
        Groups of each kept member.
    upper_ : list of M ndarrays
        Upper group bounds in p of each kept member (increasing, the last 1).
    values_ : list of M ndarrays
        Group values of each kept member.
    model_weights_ : ndarray (M,)
        omega of each kept member (sum 1).
    kind_ : {"logits", "probs"}

    Notes
    -----
    Needs all rows of the calibration set in memory. The path has up to one model per initial
    group (run of equal targets in the order of p), each a pass over the groups: quadratic in
    the number of groups at worst. It is walked twice (scores, then the kept models), so memory
    stays O(groups) plus the kept models.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> u = rng.normal(size=500)
    >>> y = (rng.random(500) < 1 / (1 + np.exp(-u))).astype(int)
    >>> cal = ENIR().fit(y, logits=3 * u)
    >>> q = np.exp(cal.predict_logproba(logits=np.array([-6.0, 0.0, 6.0])))[:, 1]
    >>> bool(q[0] < 0.25 and 0.3 < q[1] < 0.7 and q[2] > 0.75)
    True
    """

    _fitted_attrs = ("n_groups_", "upper_", "values_", "model_weights_", "kind_")

    def __init__(self, *, score: str = "bic", elbow: float | None = 1e-3,
                 clip: float = 1e-6) -> None:
        self.score = score
        self.elbow = elbow
        self.clip = clip

    def _check_params(self) -> None:
        name = type(self).__name__
        _check_options(self.score, self.elbow, ("bic", "aic"), name)
        _check_clip(self.clip, name)

    def _fit_log_odds(self, s: np.ndarray, t: np.ndarray, w: np.ndarray) -> None:
        self._check_params()
        p = _prob(np, s)
        total = float(w.sum())
        # pass 1: the score of every model of the path (from group sums, O(groups) each);
        # the first model reproduces the targets and is left out unless it is the only one
        scores = [_information_score(m.log_likelihood(), int(m.values.size), total,
                                     self.score)
                  for m in iter_near_isotonic_path(p, t, w)]
        skip = 1 if len(scores) > 1 else 0
        keep, omega = model_weights(np.asarray(scores[skip:]), self.elbow)
        # pass 2: the same path again, keeping only the selected models
        wanted = {int(i) + skip: j for j, i in enumerate(keep)}
        kept: list[PathModel | None] = [None] * len(wanted)
        for i, m in enumerate(iter_near_isotonic_path(p, t, w)):
            if i in wanted:
                kept[wanted[i]] = m
        models = [m for m in kept if m is not None]
        self.n_groups_ = np.asarray([m.values.size for m in models], dtype=np.int64)
        self.upper_ = [m.upper for m in models]
        self.values_ = [np.clip(m.values, 0.0, 1.0) for m in models]
        self.model_weights_ = omega

    def _calibrated_prob(self, xp: Any, s: Array) -> Array:
        from trueprob._array import as_array, device

        p = _prob(xp, s)
        out = xp.zeros_like(p)
        for upper, values, omega in zip(self.upper_, self.values_,
                                        self.model_weights_.tolist(), strict=True):
            inner = as_array(np.ascontiguousarray(upper[:-1]), xp, device(p))
            idx = xp.searchsorted(inner, p, side="left")
            out = out + omega * _lookup(xp, values, idx)
        return xp.clip(out, 0.0, 1.0)

    count_field = "n_groups_"
    table_fields = ("upper_", "values_")

    def _check_loaded(self) -> None:
        name, weights, n_groups = self._check_members()
        for m, g in enumerate(n_groups.tolist()):
            upper = _check_array(self.upper_[m], f"upper_[{m}]", name, shape=(g,), low=0.0,
                                 high=1.0, increasing=True)
            if upper[-1] != 1.0:
                raise CalibratorFormatError(f"{name}: upper_[{m}] must end at 1")
            self.upper_[m] = upper
            self.values_[m] = _check_array(self.values_[m], f"values_[{m}]", name,
                                           shape=(g,), low=0.0, high=1.0)
        self.model_weights_ = weights


__all__ = ["BBQ", "ENIR", "PathModel", "bbq_bin_range", "iter_near_isotonic_path",
           "model_weights", "near_isotonic_path"]
