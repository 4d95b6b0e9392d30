"""`EvaluationStats`: the one-pass engine. One fixed-size state for every metric of a Report.

A chunk of rows is reduced to per-row quantities (`trueprob.core.rows`) and then to sums per
bin; the state never holds a row. States merge by adding arrays, so a stream, a list of chunks
processed in any order, or partitions on different machines give the one-shot result up to
floating-point rounding.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from typing import Any

import numpy as np

from trueprob._array import Array, as_array, device, to_numpy
from trueprob._validation import Chunk, Inputs, prepare
from trueprob.core.binning import Binning
from trueprob.core.rows import row_quantities
from trueprob.report.result import BinRow, Report, Settings
from trueprob.stats.binned import BinnedStats

PARTS = ("scores", "top_label", "class_conditional", "classwise", "ks")
#: Cells of the fine confidence grid behind the KS calibration error of a state.
KS_GRID = 1 << 16
UNITS = {"nats": 1.0, "bits": 1.0 / math.log(2.0)}
# indices into the float64 sums vector
_W, _NLL, _BRIER, _CORRECT, _ENTROPY, _KL, _W_VECTOR = range(7)


class InfiniteLossWarning(UserWarning):
    """A probability of exactly 0 on an observed class made the log loss infinite."""


def check_unit(unit: str) -> float:
    if unit not in UNITS:
        raise ValueError(f"unit must be 'nats' or 'bits'; got {unit!r}")
    return UNITS[unit]


def check_reduce(reduce: str) -> None:
    if reduce not in ("mean", "sum"):
        raise ValueError(f"reduce must be 'mean' or 'sum'; got {reduce!r}")


class EvaluationStats:
    """Sufficient statistics for every metric of a :class:`~trueprob.Report`.

    Parameters
    ----------
    n_classes : int
        K, the number of classes (2 for binary inputs).
    n_bins, closed, edges
        The reliability binning (see :class:`trueprob.core.binning.Binning`). Equal-mass bins
        need their edges fixed before the pass (``trueprob.evaluate`` computes them from the
        data first); with fixed edges the state merges like any other.
    parts
        Which statistics to keep: any of ``"scores"`` (log loss, Brier, accuracy, entropy,
        KL), ``"top_label"``, ``"class_conditional"``, ``"classwise"`` and ``"ks"``.

    The state is: float64 sums of weight, weighted NLL, Brier, correctness, entropy and KL;
    int64 row counts; and per-bin count / weight / score / outcome sums for the top-label
    bins (B), the class-conditional bins (K x B), the classwise bins (K x B) and a fine grid
    of 2**16 confidence cells for the KS calibration error. Its size depends on K and B, not
    on the number of rows.

    Examples
    --------
    >>> import numpy as np
    >>> from trueprob.stats import EvaluationStats
    >>> z = np.array([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    >>> a = EvaluationStats(2).update(np.array([0, 1]), logits=z[:2])
    >>> b = EvaluationStats(2).update(np.array([1]), logits=z[2:])
    >>> round(a.merge(b).finalize().accuracy, 4)
    0.6667
    """

    def __init__(
        self,
        n_classes: int,
        *,
        n_bins: int = 15,
        closed: str = "right",
        edges: Iterable[float] | None = None,
        parts: Iterable[str] = PARTS,
        binning_name: str | None = None,
    ) -> None:
        if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) \
                or n_classes < 2:
            raise ValueError(f"n_classes must be an integer >= 2; got {n_classes!r}")
        self.n_classes = int(n_classes)
        self.binning = Binning(n_bins, closed,  # type: ignore[arg-type]
                               None if edges is None else tuple(float(e) for e in edges))
        self.binning_name = binning_name or ("width" if edges is None else "edges")
        self.parts = tuple(p for p in PARTS if p in set(parts))
        unknown = set(parts) - set(PARTS)
        if unknown:
            raise ValueError(f"parts must be among {PARTS}; got {sorted(unknown)}")
        k = self.n_classes
        self.top_label = BinnedStats(self.binning, 1)
        self.class_conditional = BinnedStats(self.binning, k)
        self.classwise = BinnedStats(self.binning, k)
        self.ks = BinnedStats(Binning(KS_GRID), 1)
        self._xp: Any = None
        self._device: Any = None
        self.sums: Array = None  # float64 (7,)
        self.counts: Array = None  # int64 (3,): rows, rows with infinite NLL, rows with vectors
        self.input_kinds: set[str] = set()
        self.target_kinds: set[str] = set()

    # ------------------------------------------------------------------ update
    def update(
        self,
        labels: object = None,
        /,
        *,
        logits: object = None,
        probs: object = None,
        targets: object = None,
        counts: object = None,
        sample_weight: object = None,
        confidences: object = None,
        predictions: object = None,
    ) -> EvaluationStats:
        """Add a chunk of rows (same inputs as :func:`trueprob.evaluate`); returns ``self``."""
        inputs = prepare(
            labels, logits=logits, probs=probs, targets=targets, counts=counts,
            sample_weight=sample_weight, confidences=confidences, predictions=predictions,
            n_classes=self.n_classes if confidences is not None else None,
        )
        return self.update_inputs(inputs)

    def update_inputs(self, inputs: Inputs, rows: int | None = None) -> EvaluationStats:
        """Add already prepared :class:`Inputs`, chunk by chunk."""
        if inputs.n_classes != self.n_classes:
            raise ValueError(
                f"this state has K={self.n_classes} classes but the inputs have "
                f"K={inputs.n_classes}"
            )
        self.input_kinds.add(inputs.kind)
        self.target_kinds.add(inputs.target_kind)
        for chunk in inputs.chunks(rows):
            self.update_chunk(inputs.xp, chunk)
        return self

    def _ensure(self, xp: Any, dev: Any) -> None:
        if self._xp is None:
            self._xp, self._device = xp, dev
            kw = {"device": dev} if dev is not None else {}
            self.sums = xp.zeros(7, dtype=xp.float64, **kw)
            self.counts = xp.zeros(3, dtype=xp.int64, **kw)

    def update_chunk(self, xp: Any, chunk: Chunk) -> None:
        """Add one validated chunk (the hot loop: one pass over its (n, K) values)."""
        dev = device(chunk.scores)
        self._ensure(xp, dev)
        parts = self.parts
        vector = chunk.kind != "confidences"
        rows = row_quantities(xp, chunk, need_scores=vector and "scores" in parts)
        w = chunk.weights
        n = chunk.n_rows
        f64 = xp.float64

        def wsum(x: Array) -> Array:
            return xp.sum(x) if w is None else xp.sum(x * w)

        def wsum_inf(x: Array) -> tuple[Array, Array]:
            """Weighted sum allowing +inf; a zero-weight row adds 0, not 0 * inf = NaN."""
            finite = xp.isfinite(x)
            hits = ~finite if w is None else (~finite & (w > 0))
            n_hit = xp.sum(xp.astype(hits, xp.int64))
            total = wsum(xp.where(finite, x, 0.0))
            return xp.where(n_hit > 0, xp.inf, total), n_hit

        # weight and correctness are always kept (every metric divides by W)
        total_w = float(n) if w is None else xp.sum(w)
        add = [total_w, 0.0, 0.0, wsum(rows.correct), 0.0, 0.0, 0.0]
        n_inf: Any = 0
        if rows.nll is not None:
            add[_NLL], n_inf = wsum_inf(rows.nll)
            add[_BRIER] = wsum(rows.brier)
            add[_W_VECTOR] = total_w
            if rows.entropy is not None:
                add[_ENTROPY] = wsum(rows.entropy)
                add[_KL] = wsum_inf(rows.kl)[0]
            else:
                # hard labels: H(one-hot) = 0 and KL = NLL (so mixed streams add up).
                add[_KL] = add[_NLL]
        self.sums += xp.stack([xp.asarray(a, dtype=f64, **_dev(dev)) for a in add])
        self.counts += xp.stack([xp.asarray(v, dtype=xp.int64, **_dev(dev)) for v in
                                 (n, n_inf, n if rows.nll is not None else 0)])
        conf, correct = rows.confidence, rows.correct
        need_bins = any(p in parts for p in ("top_label", "class_conditional"))
        if need_bins:
            idx = self.binning.index(xp, conf)
            if "top_label" in parts:
                self.top_label.add(xp, dev, idx, conf, correct, w)
            if "class_conditional" in parts:
                flat = rows.prediction * self.binning.n_bins + idx
                self.class_conditional.add(xp, dev, flat, conf, correct, w)
        if "ks" in parts:
            self.ks.add(xp, dev, self.ks.binning.index(xp, conf), conf, correct, w)
        if "classwise" in parts and vector:
            self._update_classwise(xp, dev, rows.probs, chunk, w)

    def _update_classwise(self, xp: Any, dev: Any, q: Array, chunk: Chunk,
                          w: Array | None) -> None:
        n, k = int(q.shape[0]), int(q.shape[1])
        b = self.binning.n_bins
        idx = self.binning.index(xp, q)
        offsets = xp.arange(0, k * b, b, dtype=xp.int64, **_dev(dev))
        flat = idx + offsets[None, :]
        flat1 = xp.reshape(flat, (-1,))
        q1 = xp.reshape(q, (-1,))
        w1 = None if w is None else xp.reshape(xp.broadcast_to(w[:, None], (n, k)), (-1,))
        if chunk.targets is None:
            self.classwise.add(xp, dev, flat1, q1, None, w1)
            # one-hot targets: the only non-zero outcome of row i is in class y_i
            at_label = xp.take_along_axis(flat, chunk.labels[:, None], axis=1)[:, 0]
            ones = xp.ones(n, dtype=xp.float64, **_dev(dev)) if w is None else w
            self.classwise.add_outcomes(xp, dev, at_label, ones)
        else:
            self.classwise.add(xp, dev, flat1, q1, xp.reshape(chunk.targets, (-1,)), w1)

    # ------------------------------------------------------------------ merge
    def _compatible(self, other: EvaluationStats) -> None:
        if not isinstance(other, EvaluationStats):
            raise TypeError(f"can only merge EvaluationStats; got {type(other).__name__}")
        mine = (self.n_classes, self.binning, self.parts)
        theirs = (other.n_classes, other.binning, other.parts)
        if mine != theirs:
            raise ValueError(f"cannot merge states with different settings: {mine} vs {theirs}")

    def merge(self, other: EvaluationStats) -> EvaluationStats:
        """A new state equal to the sum of both (neither operand is changed)."""
        self._compatible(other)
        out = EvaluationStats(self.n_classes, n_bins=self.binning.n_bins,
                              closed=self.binning.closed, edges=self.binning.edges,
                              parts=self.parts, binning_name=self.binning_name)
        for name in ("top_label", "class_conditional", "classwise", "ks"):
            setattr(out, name, getattr(self, name).merge(getattr(other, name)))
        out.input_kinds = self.input_kinds | other.input_kinds
        out.target_kinds = self.target_kinds | other.target_kinds
        present = [s for s in (self, other) if s._xp is not None]
        if present:
            out._ensure(present[0]._xp, present[0]._device)
            for s in present:
                sums, cnts = s.sums, s.counts
                if s._xp is not out._xp:
                    sums = as_array(to_numpy(sums), out._xp, out._device)
                    cnts = as_array(to_numpy(cnts), out._xp, out._device)
                out.sums = out.sums + sums
                out.counts = out.counts + cnts
        return out

    __add__ = merge

    # ------------------------------------------------------------------ finalize
    def finalize(self, *, unit: str = "nats", reduce: str = "mean") -> Report:
        """The :class:`~trueprob.Report` of everything added so far."""
        scale = check_unit(unit)
        check_reduce(reduce)
        if self._xp is None:
            raise ValueError("no rows were added to this state; call update() first")
        sums = to_numpy(self.sums).astype(np.float64)
        n_rows, n_inf, n_vector = (int(v) for v in to_numpy(self.counts))
        total = float(sums[_W])
        if not total > 0:
            raise ValueError(
                "sample_weight sums to 0; at least one row needs a positive weight"
            )
        unavailable: dict[str, str] = {}
        vector = n_vector == n_rows and "scores" in self.parts
        has_vector = "confidences" not in self.input_kinds
        soft = bool(self.target_kinds - {"labels"})
        nll = brier = entropy = kl = None
        if vector:
            nll = float(sums[_NLL] / total) * scale
            brier = float(sums[_BRIER] / total)
            if soft:
                entropy = float(sums[_ENTROPY] / total) * scale
                kl = float(sums[_KL] / total) * scale
            if n_inf:
                warnings.warn(
                    f"the log loss is infinite: {n_inf} row(s) give probability 0 to an "
                    f"observed class", InfiniteLossWarning, stacklevel=2,
                )
        else:
            why = ("needs the full probability vector; only top-label confidences were given"
                   if not has_vector else "not requested")
            for name in ("nll", "brier"):
                unavailable[name] = why
            if soft:
                unavailable["entropy"] = unavailable["kl"] = why
        top = self.top_label.table(total)
        ece = float(top.ece_per_group(1.0)[0])
        rms = math.sqrt(float(top.ece_per_group(2.0)[0]))
        mce = float(top.mce_per_group()[0])
        debiased = math.sqrt(max(0.0, top.debiased_l2_squared()))
        cond = float(np.sum(self.class_conditional.table(total).ece_per_group(1.0)))
        per_class = None
        classwise = None
        if has_vector and "classwise" in self.parts:
            per = self.classwise.table(total).ece_per_group(1.0)
            per_class = tuple(float(v) for v in per)
            classwise = float(np.mean(per) if reduce == "mean" else np.sum(per))
        else:
            unavailable["classwise_ece"] = (
                "needs the full probability vector; only top-label confidences were given"
            )
        ks_cells = self.ks.arrays()
        resid = np.cumsum(ks_cells["sum_score"][0] - ks_cells["sum_outcome"][0]) / total
        ks = float(np.max(np.abs(resid)))
        edges = top.edges
        bins = tuple(
            BinRow(float(edges[j]), float(edges[j + 1]), float(top.weight[0, j]),
                   int(top.count[0, j]), float(top.confidence[0, j]),
                   float(top.accuracy[0, j]), float(top.gap[0, j]))
            for j in range(self.binning.n_bins)
        )
        settings = Settings(self.binning.n_bins, self.binning_name, self.binning.closed,
                            reduce, unit, tuple(float(e) for e in edges))
        inputs = "+".join(sorted(self.input_kinds))
        targets = "+".join(sorted(self.target_kinds))
        return Report(
            n=n_rows, weight=total, n_classes=self.n_classes, unit=unit, inputs=inputs,
            targets=targets, accuracy=float(sums[_CORRECT] / total), nll=nll, brier=brier,
            ece=ece, mce=mce, rmsce=rms, ece_debiased=debiased, classwise_ece=classwise,
            class_conditional_ece=cond, ks=ks, entropy=entropy, kl=kl, n_infinite_nll=n_inf,
            bins=bins, classwise_ece_per_class=per_class, settings=settings,
            unavailable=unavailable,
        )


def _dev(dev: Any) -> dict[str, Any]:
    return {} if dev is None else {"device": dev}
