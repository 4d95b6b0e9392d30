"""`EvaluationStats`: the one-pass engine. One fixed-size state for every metric of a Report.

A chunk of rows is reduced to per-row quantities (`trueprob.core.rows`) and then to sums per
bin; the state never holds a row. States merge by adding arrays, so a stream, a list of chunks
processed in any order, or partitions on different machines give the one-shot result up to
floating-point rounding.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import warnings
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from array_api_compat import array_namespace

from trueprob._array import Array, as_array, bincount, device, is_array, is_numpy, to_numpy
from trueprob._validation import CHUNK_ELEMENTS, Chunk, Inputs, prepare
from trueprob.core import summaries as sm
from trueprob.core.binning import Binning
from trueprob.core.rows import RowQuantities, row_quantities
from trueprob.report.result import METRIC_FIELDS, BinRow, Report, Settings
from trueprob.stats._bytes import pack, unpack
from trueprob.stats.binned import BinnedStats
from trueprob.stats.smooth import SmoothECEStats

PARTS = ("scores", "top_label", "class_conditional", "classwise", "ks", "smooth")
BINNED = ("top_label", "class_conditional", "classwise", "ks")
#: Cells of the fine confidence grid behind the KS calibration error of a state.
KS_GRID = 1 << 16
#: ... and of each block of a blocked state (the bootstrap keeps one grid per block).
KS_GRID_BLOCKED = 1 << 10
STATE_FORMAT = "trueprob.EvaluationStats"
STATE_VERSION = 1
#: numpy classwise sums bin only the entries above the first bin from this many classes on,
#: or when at most this fraction of entries is above it (measured on 1M x 10: sparse 215 ms
#: vs dense 306 ms with 25% above; 332 vs 223 ms with 51% above; 2x faster for K = 1000).
SPARSE_CLASSWISE_MIN_K = 16
SPARSE_CLASSWISE_MAX_FRACTION = 0.3
#: numpy chunks of fewer rows than this (K > 16, with CHUNK_ELEMENTS = 2**19) are binned
#: together, this many rows at a time (100k x 1000: ~190 calls of each row part -> 4).
ROW_BATCH = 1 << 15
UNITS = {"nats": 1.0, "bits": 1.0 / math.log(2.0)}
_W, _NLL, _BRIER, _CORRECT, _ENTROPY, _KL, _W_VECTOR = (
    sm.W, sm.NLL, sm.BRIER, sm.CORRECT, sm.ENTROPY, sm.KL, sm.W_VECTOR)


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
        The reliability binning (see :class:`trueprob.core.binning.Binning`) of the top-label
        and class-conditional statistics. Equal-mass bins need their edges fixed before the
        pass (``trueprob.evaluate`` computes them from the data first); with fixed edges the
        state merges like any other. Classwise statistics always use ``n_bins`` equal-width
        bins (closed on the same side).
    parts
        Which statistics to keep: any of ``"scores"`` (log loss, Brier, accuracy, entropy,
        KL), ``"top_label"``, ``"class_conditional"``, ``"classwise"`` and ``"ks"``.
    n_blocks
        Keep the sums separately for ``n_blocks`` blocks of rows (``update`` then takes the
        block of every row). Used by :func:`trueprob.bootstrap`; the metrics of the state are
        those of all blocks together. A blocked state's KS grid has 2**10 cells per block.

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
        n_blocks: int = 1,
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
        if isinstance(n_blocks, bool) or not isinstance(n_blocks, (int, np.integer)) \
                or n_blocks < 1:
            raise ValueError(f"n_blocks must be a positive integer; got {n_blocks!r}")
        self.n_blocks = int(n_blocks)
        k, g = self.n_classes, self.n_blocks
        self.top_label = BinnedStats(self.binning, 1, g)
        self.class_conditional = BinnedStats(self.binning, k, g)
        # classwise bins are always equal-width: equal-mass edges come from the top-label
        # confidences and would put nearly every non-top probability into the first bin
        self.classwise = BinnedStats(Binning(n_bins, closed), k, g)  # type: ignore[arg-type]
        self.ks = BinnedStats(Binning(KS_GRID if g == 1 else KS_GRID_BLOCKED), 1, g)
        # smooth ECE (top-label, f = c, y = a) from a 2**16-cell grid; not kept per block
        if g > 1:
            self.parts = tuple(p for p in self.parts if p != "smooth")
        self.smooth = SmoothECEStats()
        self._xp: Any = None
        self._device: Any = None
        self.sums: Array = None  # float64 (blocks * 7,)
        self.counts: Array = None  # int64 (blocks * 3,): rows, infinite-NLL rows, vector rows
        self.input_kinds: set[str] = set()
        self.target_kinds: set[str] = set()

    # ------------------------------------------------------------------ update
    def note_inputs(self, inputs: Inputs) -> EvaluationStats:
        """Record the input and target kinds of ``inputs`` (their rows are added by
        :meth:`update_chunk` or :meth:`update_rows`, which do not see the kinds); returns
        ``self``."""
        return self.note_kinds(inputs=(inputs.kind,), targets=(inputs.target_kind,))

    def note_kinds(self, *, inputs: Iterable[str] = (),
                   targets: Iterable[str] = ()) -> EvaluationStats:
        """Add input kinds ("logits", "probs", "confidences") and target kinds; returns
        ``self``."""
        self.input_kinds.update(inputs)
        self.target_kinds.update(targets)
        return self

    def set_target_kinds(self, targets: Iterable[str]) -> EvaluationStats:
        """Replace the target kinds (a state zeroed or loaded from elsewhere); returns
        ``self``."""
        self.target_kinds = set(targets)
        return self

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

    def update_inputs(self, inputs: Inputs, rows: int | None = None, *,
                      threads: int | None = None) -> EvaluationStats:
        """Add already prepared :class:`Inputs`, chunk by chunk.

        numpy inputs of several chunks are processed by ``threads`` threads (default: the
        usable cores, at most 2; see :func:`default_threads`), each filling its own state; numpy
        releases the GIL in its array loops. Chunk i goes to thread i mod T and the thread
        states are merged in a fixed order, so the result does not depend on scheduling; it
        equals the one-thread result up to floating-point rounding. Temporaries: one chunk
        per thread. A bad value is reported for the first bad chunk in row order.
        """
        if inputs.n_classes != self.n_classes:
            raise ValueError(
                f"this state has K={self.n_classes} classes but the inputs have "
                f"K={inputs.n_classes}"
            )
        self.note_inputs(inputs)
        if rows is None:
            rows = max(1, CHUNK_ELEMENTS // max(inputs.n_classes, 1))
        n_chunks = -(-inputs.n_rows // rows)
        t = default_threads() if threads is None else int(threads)
        if self.n_blocks > 1:
            for chunk in inputs.chunks(rows):
                self.update_chunk(inputs.xp, chunk)
            return self
        if t <= 1 or n_chunks < 2 or not is_numpy(inputs.xp):
            self._update_chunks(inputs.xp, inputs.chunks(rows))
            return self
        t = min(t, n_chunks)
        parts = [self._empty_like() for _ in range(t)]
        starts = list(range(0, inputs.n_rows, rows))
        failed: list[tuple[int, BaseException]] = []  # (first row of the chunk, error)

        def own_chunks(j: int, at: list[int]) -> Iterator[Chunk]:
            for start in starts[j::t]:
                if failed and start > min(row for row, _ in failed):
                    return  # a chunk before this one already failed
                at[0] = start
                yield inputs._chunk(start, min(start + rows, inputs.n_rows))

        def work(j: int) -> None:
            # each thread runs through its own chunks without waiting for the others (no
            # barrier per round: on a busy machine one slow round would stall both threads)
            at = [0]
            try:
                parts[j]._update_chunks(inputs.xp, own_chunks(j, at))
            except Exception as exc:  # re-raised below, the first chunk's in row order
                failed.append((at[0], exc))

        with ThreadPoolExecutor(max_workers=t) as pool:
            for future in [pool.submit(work, j) for j in range(t)]:
                future.result()
        if failed:
            raise min(failed, key=lambda item: item[0])[1]
        merged = self
        for part in parts:
            merged = merged.merge(part)
        self._adopt(merged)
        return self

    def _empty_like(self) -> EvaluationStats:
        return EvaluationStats(self.n_classes, n_bins=self.binning.n_bins,
                               closed=self.binning.closed, edges=self.binning.edges,
                               parts=self.parts, binning_name=self.binning_name,
                               n_blocks=self.n_blocks)

    def _adopt(self, other: EvaluationStats) -> None:
        """Take over the arrays of ``other`` (same settings)."""
        self._xp, self._device = other._xp, other._device
        self.sums, self.counts = other.sums, other.counts
        for name in BINNED:
            setattr(self, name, getattr(other, name))
        self.smooth = other.smooth
        self.input_kinds |= other.input_kinds
        self.target_kinds |= other.target_kinds

    def _ensure(self, xp: Any, dev: Any) -> None:
        if self._xp is None:
            self._xp, self._device = xp, dev
            kw = {"device": dev} if dev is not None else {}
            self.sums = xp.zeros(self.n_blocks * sm.N_SUMS, dtype=xp.float64, **kw)
            self.counts = xp.zeros(self.n_blocks * 3, dtype=xp.int64, **kw)

    def _update_chunks(self, xp: Any, chunks: Iterable[Chunk]) -> None:
        """Add unblocked chunks in order. numpy chunks of fewer than :data:`ROW_BATCH` rows
        (many classes) have their classwise sums added one by one and everything else from
        the per-row quantities of :data:`ROW_BATCH` rows at once: the per-call cost of those
        parts (bins, KS and smooth-ECE grids) was a sixth of the time at 100k x 1000."""
        # (weights, per-row quantities without the (n, K) probabilities): what is held
        # between flushes is ROW_BATCH rows of per-row vectors, never a chunk's (n, K) arrays
        pending: list[tuple[Array | None, RowQuantities]] = []
        pending_rows = 0
        for chunk in chunks:
            if not (is_numpy(xp) and chunk.n_rows < ROW_BATCH):
                self.update_chunk(xp, chunk)
                continue
            vector = chunk.kind != "confidences"
            rows = row_quantities(xp, chunk, need_scores=vector and "scores" in self.parts)
            self._ensure(xp, None)
            if "classwise" in self.parts and vector:
                self._update_classwise(xp, None, rows.probs, chunk, chunk.weights, None)
            pending.append((chunk.weights, dataclasses.replace(rows, probs=None, targets=None)))
            pending_rows += chunk.n_rows
            if pending_rows >= ROW_BATCH:
                self._add_pending(pending)
                pending, pending_rows = [], 0
        if pending:
            self._add_pending(pending)

    def _add_pending(self, pending: list[tuple[Array | None, RowQuantities]]) -> None:
        """The row parts of several numpy chunks (all of one kind), rows concatenated."""
        rows = [r for _, r in pending]

        def cat(name: str) -> np.ndarray | None:
            first = getattr(rows[0], name)
            return None if first is None else np.concatenate([getattr(r, name) for r in rows])

        merged = RowQuantities(None, None, cat("confidence"), cat("prediction"),
                               cat("correct"), cat("nll"), cat("brier"), cat("entropy"),
                               cat("kl"))
        weights = None if pending[0][0] is None else np.concatenate([w for w, _ in pending])
        self._add_row_parts(np, None, merged, weights, int(merged.confidence.shape[0]), None)

    def update_chunk(self, xp: Any, chunk: Chunk, block: Array | None = None) -> None:
        """Add one validated chunk (the hot loop: one pass over its (n, K) values).

        ``block`` (int64, one per row, in ``0..n_blocks-1``) is required for a blocked state.
        """
        vector = chunk.kind != "confidences"
        rows = row_quantities(xp, chunk, need_scores=vector and "scores" in self.parts)
        self.update_rows(xp, chunk, rows, block)

    def update_rows(self, xp: Any, chunk: Chunk, rows: RowQuantities,
                    block: Array | None = None) -> None:
        """Add a chunk whose per-row quantities are already computed (several states can share
        one softmax pass)."""
        if (block is None) != (self.n_blocks == 1):
            raise ValueError("block= (one block index per row) is needed exactly when "
                             f"n_blocks > 1; this state has n_blocks={self.n_blocks}")
        dev = device(chunk.scores)
        self._ensure(xp, dev)
        self._add_row_parts(xp, dev, rows, chunk.weights, chunk.n_rows, block)
        if "classwise" in self.parts and chunk.kind != "confidences":
            self._update_classwise(xp, dev, rows.probs, chunk, chunk.weights, block)

    def _add_row_parts(self, xp: Any, dev: Any, rows: RowQuantities, w: Array | None, n: int,
                       block: Array | None) -> None:
        """Everything but the classwise sums: what needs only the per-row quantities."""
        parts = self.parts
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
        if block is None:
            self.sums += xp.stack([_on_device(xp, a, f64, dev) for a in add])
            self.counts += xp.stack([_on_device(xp, v, xp.int64, dev) for v in
                                     (n, n_inf, n if rows.nll is not None else 0)])
        else:
            self._add_block_sums(xp, dev, block, rows, w)
        conf, correct = rows.confidence, rows.correct
        b = self.binning.n_bins
        k = self.n_classes
        need_bins = any(p in parts for p in ("top_label", "class_conditional"))
        if need_bins:
            idx = self.binning.index(xp, conf)
            top_from_classes = False
            if "class_conditional" in parts:
                group = rows.prediction if block is None else block * k + rows.prediction
                added = self.class_conditional.add(xp, dev, group * b + idx, conf, correct, w)
                # the top-label sums are the class-conditional ones summed over the predicted
                # class: cheaper than another pass over the rows while there are fewer cells
                # than rows (same counts; float sums up to the order of the additions)
                top_from_classes = added is not None and self.n_blocks * k * b <= n
            if "top_label" in parts:
                if top_from_classes:
                    g = self.n_blocks
                    assert added is not None
                    self.top_label.add_sums(xp, dev, *(
                        None if a is None else xp.reshape(xp.sum(xp.reshape(a, (g, k, b)),
                                                                 axis=1), (-1,))
                        for a in added))
                else:
                    flat = idx if block is None else block * b + idx
                    self.top_label.add(xp, dev, flat, conf, correct, w)
        if "ks" in parts:
            cells = self.ks.binning.index(xp, conf)
            if block is not None:
                cells = block * self.ks.binning.n_bins + cells
            self.ks.add(xp, dev, cells, conf, correct, w)
        if "smooth" in parts:
            self.smooth._set_mode("top-label")
            self.smooth.update_values(xp, conf, correct, w)

    def _add_block_sums(self, xp: Any, dev: Any, block: Array, rows: RowQuantities,
                        w: Array | None) -> None:
        """The scalar sums of a blocked state: one bincount over blocks per sum."""
        g = self.n_blocks
        n = int(block.shape[0])
        ones = xp.ones(n, dtype=xp.float64, **_dev(dev))
        wt = ones if w is None else w
        zero = xp.zeros(g, dtype=xp.float64, **_dev(dev))

        def per_block(values: Array | None) -> Array:
            if values is None:
                return zero
            finite = xp.isfinite(values)
            sums = bincount(xp, block, xp.where(finite, values, 0.0) * wt, g)
            hit = bincount(xp, block, xp.astype(~finite & (wt > 0), xp.float64), g)
            return xp.where(hit > 0, xp.inf, sums)

        has_vector = rows.nll is not None
        kl = rows.kl if rows.entropy is not None else rows.nll
        cols = [bincount(xp, block, wt, g), per_block(rows.nll), per_block(rows.brier),
                per_block(rows.correct), per_block(rows.entropy), per_block(kl),
                bincount(xp, block, wt, g) if has_vector else zero]
        self.sums += xp.reshape(xp.stack(cols, axis=1), (-1,))
        n_rows = bincount(xp, block, None, g)
        n_inf = (bincount(xp, block, xp.astype(~xp.isfinite(rows.nll) & (wt > 0), xp.float64),
                          g) if has_vector else zero)
        vec = n_rows if has_vector else xp.zeros(g, dtype=xp.int64, **_dev(dev))
        self.counts += xp.reshape(xp.stack([n_rows, xp.astype(n_inf, xp.int64), vec], axis=1),
                                  (-1,))

    def _update_classwise(self, xp: Any, dev: Any, q: Array, chunk: Chunk,
                          w: Array | None, block: Array | None) -> None:
        if block is None and is_numpy(xp) and chunk.targets is None and q.T.flags.c_contiguous:
            self._update_classwise_by_class(q.T, chunk.labels, w)
            return
        if block is None and is_numpy(xp):
            above = _above_first_bin(q, self.classwise.binning.n_bins,
                                     self.classwise.binning.closed)
            # the sparse path pays off when few entries leave the first bin (large K, or
            # confident models); the mask is a cheap pass either way
            if int(q.shape[1]) >= SPARSE_CLASSWISE_MIN_K or \
                    np.count_nonzero(above) <= SPARSE_CLASSWISE_MAX_FRACTION * above.size:
                self._update_classwise_sparse(np.asarray(q), chunk, w, above)
                return
        n, k = int(q.shape[0]), int(q.shape[1])
        b = self.classwise.binning.n_bins
        idx = self.classwise.binning.index(xp, q)
        offsets = xp.arange(0, k * b, b, dtype=xp.int64, **_dev(dev))
        flat = idx + offsets[None, :]
        if block is not None:
            flat = flat + (block * (k * b))[:, None]
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

    def _update_classwise_by_class(self, qt: np.ndarray, labels: np.ndarray,
                                   w: np.ndarray | None) -> None:
        """Classwise sums from class-major probabilities ``qt`` (K, n) and hard labels.

        As :meth:`_update_classwise_sparse`: class by class, only the entries above the first
        bin are binned (a contiguous row of ``qt`` each), bin 0 is the column total minus the
        bins above, and the one-hot outcome of row i is added at its label's bin.
        """
        k, n = qt.shape
        binning = self.classwise.binning
        b = binning.n_bins
        size = k * b
        count = np.zeros(size, dtype=np.int64)
        weight = np.zeros(size)
        sum_q = np.zeros(size)
        above = _above_first_bin(qt, b, binning.closed)
        for j in range(k):
            mask = above[j]
            vals = qt[j].compress(mask)  # 3x faster than qt[j][mask] (measured, numpy 2.4)
            idx = binning.index(np, vals)
            cells = slice(j * b, (j + 1) * b)
            if w is None:
                count[cells] = np.bincount(idx, minlength=b)
                sum_q[cells] = np.bincount(idx, vals, minlength=b)
            else:
                wj = w.compress(mask)
                count[cells] = np.bincount(idx, (wj > 0).astype(np.float64), minlength=b)
                weight[cells] = np.bincount(idx, wj, minlength=b)
                sum_q[cells] = np.bincount(idx, vals * wj, minlength=b)
        first = np.arange(k) * b
        if w is None:
            weight[:] = count
            n_pos, total_w = n, float(n)
            col_q = qt.sum(axis=1, dtype=np.float64)
        else:
            n_pos, total_w = int(np.count_nonzero(w > 0)), float(np.sum(w))
            col_q = qt.astype(np.float64) @ w
        count[first] = n_pos - count.reshape(k, b).sum(axis=1)
        weight[first] = total_w - weight.reshape(k, b).sum(axis=1)
        sum_q[first] = col_q - sum_q.reshape(k, b).sum(axis=1)
        at_label = labels * b + binning.index(np, qt.reshape(-1)[labels * n + np.arange(n)])
        outcome = np.bincount(at_label, None if w is None else w, size)
        cw = self.classwise
        cw._ensure(np, None)
        cw.count += count
        cw.weight += weight
        cw.sum_score += sum_q
        cw.sum_outcome += outcome

    def _update_classwise_sparse(self, q: np.ndarray, chunk: Chunk,
                                 w: np.ndarray | None, above: np.ndarray) -> None:
        """Classwise sums with only the entries above the first bin sent through bincount.

        Most of the K probabilities of a row are small and fall in bin 0; that bin's sums are
        the column totals minus the other bins' sums. Same state as the dense path (sums to
        rounding, counts exactly), several times faster for K >= 10 (numpy only: the mask's
        data-dependent size would synchronise an accelerator).
        """
        n, k = q.shape
        binning = self.classwise.binning
        b = binning.n_bins
        # flatnonzero + divmod: 18x faster than the 2-D nonzero (1.63 -> 0.09 ms on a
        # 524 x 1000 chunk); positions and values both in C order
        flat_pos = np.flatnonzero(above)
        rows, cols = np.divmod(flat_pos, k)
        vals = q.reshape(-1)[flat_pos]
        flat = cols * b + binning.index(np, vals)
        vals = vals.astype(np.float64)  # ufunc.at is fast only on the state's dtype
        wr = None if w is None else w[rows]
        cw = self.classwise
        cw._ensure(np, None)
        # the entries above the first bin go in place (ufunc.at); bin 0 of each class gets
        # the column totals minus what went above: K values a chunk, not K * B temporaries
        # (a third of the classwise time at 100k x 1000 went to 15000-cell arrays)
        first = np.arange(k) * b
        n_pos = n if w is None else int(np.count_nonzero(w > 0))
        total_w = float(n) if w is None else float(np.sum(w))
        col_q = np.sum(q, axis=0, dtype=np.float64) if w is None else w @ q.astype(np.float64)
        if wr is None:
            np.add.at(cw.count, flat, 1)
            np.add.at(cw.weight, flat, 1.0)
            above_count = np.bincount(cols, None, k)
            cw.count[first] += n_pos - above_count
            cw.weight[first] += total_w - above_count
            scores = vals
        else:
            positive = (wr > 0).astype(np.int64)
            np.add.at(cw.count, flat, positive)
            np.add.at(cw.weight, flat, wr)
            cw.count[first] += n_pos - np.bincount(cols, positive, k).astype(np.int64)
            cw.weight[first] += total_w - np.bincount(cols, wr, k)
            scores = vals * wr
        np.add.at(cw.sum_score, flat, scores)
        cw.sum_score[first] += col_q - np.bincount(cols, scores, k)
        if chunk.targets is None:
            y = chunk.labels
            at_label = y * b + binning.index(np, q[np.arange(n), y])
            np.add.at(cw.sum_outcome, at_label, 1.0 if w is None else w)
        else:
            t = chunk.targets
            outcomes = t[rows, cols] if wr is None else t[rows, cols] * wr
            col_t = np.sum(t, axis=0) if w is None else w @ t
            np.add.at(cw.sum_outcome, flat, outcomes)
            cw.sum_outcome[first] += col_t - np.bincount(cols, outcomes, k)

    # ------------------------------------------------------------------ merge
    def _compatible(self, other: EvaluationStats) -> None:
        if not isinstance(other, EvaluationStats):
            raise TypeError(f"can only merge EvaluationStats; got {type(other).__name__}")
        mine = (self.n_classes, self.binning, self.parts, self.n_blocks)
        theirs = (other.n_classes, other.binning, other.parts, other.n_blocks)
        if mine != theirs:
            raise ValueError(f"cannot merge states with different settings: {mine} vs {theirs}")

    def merge(self, other: EvaluationStats) -> EvaluationStats:
        """A new state equal to the sum of both (neither operand is changed)."""
        self._compatible(other)
        out = EvaluationStats(self.n_classes, n_bins=self.binning.n_bins,
                              closed=self.binning.closed, edges=self.binning.edges,
                              parts=self.parts, binning_name=self.binning_name,
                              n_blocks=self.n_blocks)
        for name in BINNED:
            setattr(out, name, getattr(self, name).merge(getattr(other, name)))
        out.smooth = self.smooth.merge(other.smooth)
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

    # ------------------------------------------------------------------ bytes
    def to_bytes(self) -> bytes:
        """The state as bytes: an ``.npz`` archive of plain arrays plus a JSON header.

        No pickle is involved in either direction; :meth:`from_bytes` rebuilds an equal state.
        Use it to ship states between processes or machines, or to checkpoint a stream.
        """
        header = {
            "format": STATE_FORMAT, "version": STATE_VERSION, "n_classes": self.n_classes,
            "n_bins": self.binning.n_bins, "closed": self.binning.closed,
            "edges": None if self.binning.edges is None else list(self.binning.edges),
            "parts": list(self.parts), "binning_name": self.binning_name,
            "n_blocks": self.n_blocks, "input_kinds": sorted(self.input_kinds),
            "target_kinds": sorted(self.target_kinds), "empty": self._xp is None,
        }
        arrays: dict[str, np.ndarray] = {}
        if self._xp is not None:
            arrays["sums"] = to_numpy(self.sums)
            arrays["counts"] = to_numpy(self.counts)
            for name in BINNED:
                part = getattr(self, name)
                for field in ("count", "weight", "sum_score", "sum_outcome"):
                    arrays[f"{name}.{field}"] = to_numpy(getattr(part, field))
            if self.smooth.n_rows:
                arrays["smooth.sums"] = to_numpy(self.smooth.sums)
        header["smooth_rows"] = self.smooth.n_rows
        header["smooth_mode"] = self.smooth.mode
        return pack(header, arrays)

    @classmethod
    def from_bytes(cls, data: bytes) -> EvaluationStats:
        """Rebuild a state written by :meth:`to_bytes` (numpy arrays on the host)."""
        header, arrays = unpack(data, fmt=STATE_FORMAT, version=STATE_VERSION,
                                what="trueprob state")
        out = cls(header["n_classes"], n_bins=header["n_bins"], closed=header["closed"],
                  edges=header["edges"], parts=header["parts"],
                  binning_name=header["binning_name"], n_blocks=header["n_blocks"])
        out.input_kinds = set(header["input_kinds"])
        out.target_kinds = set(header["target_kinds"])
        if header["empty"]:
            return out
        xp = array_namespace(np.zeros(1))
        out._ensure(xp, None)
        expected = {"sums": out.sums.shape, "counts": out.counts.shape}
        for name in BINNED:
            out_part = getattr(out, name)
            out_part._ensure(xp, None)
            for field in ("count", "weight", "sum_score", "sum_outcome"):
                expected[f"{name}.{field}"] = getattr(out_part, field).shape
        smooth_rows = int(header.get("smooth_rows", 0))
        if smooth_rows:
            sums = arrays.pop("smooth.sums", None)
            if sums is None or sums.shape != out.smooth._shape():
                raise ValueError("state's smooth-ECE arrays do not match the header")
            out.smooth._ensure(np, None)
            out.smooth.sums = sums.astype(np.float64)
            out.smooth.n_rows = smooth_rows
            out.smooth.mode = header.get("smooth_mode")
        if set(arrays) != set(expected):
            raise ValueError(f"state arrays {sorted(arrays)} do not match the header")
        for key, shape in expected.items():
            if arrays[key].shape != shape:
                raise ValueError(f"state array {key} has shape {arrays[key].shape}, "
                                 f"expected {shape}")
        out.sums = arrays["sums"].astype(np.float64)
        out.counts = arrays["counts"].astype(np.int64)
        for name in BINNED:
            part = getattr(out, name)
            part.count = arrays[f"{name}.count"].astype(np.int64)
            for field in ("weight", "sum_score", "sum_outcome"):
                setattr(part, field, arrays[f"{name}.{field}"].astype(np.float64))
        return out

    # ------------------------------------------------------------------ finalize
    def block_arrays(self) -> dict[str, np.ndarray]:
        """The whole state as numpy arrays with a leading block axis.

        Keys: ``"sums"`` (blocks, 7) float64, ``"counts"`` (blocks, 3) int64, and
        ``"<part>.<field>"`` (blocks, groups, bins) for the binned parts.
        """
        if self._xp is None:
            raise ValueError("no rows were added to this state; call update() first")
        g = self.n_blocks
        out = {"sums": to_numpy(self.sums).astype(np.float64).reshape(g, sm.N_SUMS),
               "counts": to_numpy(self.counts).reshape(g, 3)}
        for name in BINNED:
            for field, arr in getattr(self, name).block_arrays().items():
                out[f"{name}.{field}"] = arr
        return out

    def arrays(self) -> dict[str, np.ndarray]:
        """:meth:`block_arrays` summed over blocks (leading axis of length 1 kept)."""
        return {k: v.sum(axis=0, keepdims=True) for k, v in self.block_arrays().items()}

    def summarize(self, arrays: dict[str, np.ndarray], *, unit: str = "nats",
                  reduce: str = "mean") -> dict[str, np.ndarray]:
        """Every metric of :data:`~trueprob.report.result.METRIC_FIELDS` from state arrays with a
        leading axis of R replicates (as :meth:`arrays` or bootstrap replicates give them);
        each value has shape (R,). Metrics the inputs cannot give are NaN."""
        scale = check_unit(unit)
        check_reduce(reduce)
        sums = arrays["sums"]
        total = sums[:, _W]
        r = total.shape[0]
        nan = np.full(r, np.nan)
        with np.errstate(invalid="ignore", divide="ignore"):
            out: dict[str, np.ndarray] = {"accuracy": sums[:, _CORRECT] / total}
            if self._has_vector_scores:
                out["nll"] = sums[:, _NLL] / total * scale
                out["brier"] = sums[:, _BRIER] / total
                out["entropy"] = sums[:, _ENTROPY] / total * scale
                out["kl"] = sums[:, _KL] / total * scale
            else:
                out.update(nll=nan, brier=nan, entropy=nan, kl=nan)

            def errors(part: str) -> dict[str, np.ndarray]:
                return sm.binned_errors(arrays[f"{part}.weight"], arrays[f"{part}.sum_score"],
                                        arrays[f"{part}.sum_outcome"], total)

            top = errors("top_label")
            out["ece"] = top["ece"][:, 0]
            out["rmsce"] = np.sqrt(top["l2"][:, 0])
            out["mce"] = top["mce"][:, 0]
            out["ece_debiased"] = np.sqrt(np.maximum(top["debiased_l2"][:, 0], 0.0))
            out["class_conditional_ece"] = np.sum(errors("class_conditional")["ece"], axis=-1)
            if "confidences" not in self.input_kinds and "classwise" in self.parts:
                per = errors("classwise")["ece"]
                out["classwise_ece"] = per.mean(axis=-1) if reduce == "mean" else per.sum(-1)
                out["classwise_ece_per_class"] = per
            else:
                out["classwise_ece"] = nan
            out["ks"] = sm.ks_from_grid(arrays["ks.sum_score"][:, 0],
                                        arrays["ks.sum_outcome"][:, 0], total)
            out["smooth_ece"] = nan  # not a per-bin statistic: finalize() computes it
        return out

    @property
    def _has_vector_scores(self) -> bool:
        if self._xp is None or "scores" not in self.parts:
            return False
        counts = to_numpy(self.counts).reshape(self.n_blocks, 3).sum(axis=0)
        return bool(counts[2] == counts[0])

    def finalize(self, *, unit: str = "nats", reduce: str = "mean") -> Report:
        """The :class:`~trueprob.Report` of everything added so far."""
        check_unit(unit)
        check_reduce(reduce)
        arrays = self.arrays()
        total = float(arrays["sums"][0, _W])
        if not total > 0:
            raise ValueError(
                "sample_weight sums to 0; at least one row needs a positive weight"
            )
        n_rows, n_inf, _ = (int(v) for v in arrays["counts"][0])
        values = {k: v[0] for k, v in self.summarize(arrays, unit=unit, reduce=reduce).items()}
        unavailable: dict[str, str] = {}
        soft = bool(self.target_kinds - {"labels"})
        top_label_only = "confidences" in self.input_kinds
        why = ("needs the full probability vector; only top-label confidences were given"
               if top_label_only else "not requested")
        if self._has_vector_scores:
            if n_inf:
                warnings.warn(
                    f"the log loss is infinite: {n_inf} row(s) give probability 0 to an "
                    f"observed class", InfiniteLossWarning, stacklevel=2,
                )
        else:
            unavailable.update(nll=why, brier=why)
            if soft:
                unavailable.update(entropy=why, kl=why)
        if top_label_only or "classwise" not in self.parts:
            unavailable["classwise_ece"] = why
        # metrics of parts this state does not keep: NaN and "not requested", never a 0
        skipped = [name for part, names in _PART_METRICS.items() if part not in self.parts
                   for name in names]
        for name in skipped:
            unavailable.setdefault(name, "not requested")

        if "smooth" in self.parts and self.smooth.n_rows:
            values["smooth_ece"] = self.smooth.finalize().ece
        else:
            unavailable.setdefault("smooth_ece", "not requested" if "smooth" not in self.parts
                                   else "no rows")

        def value(name: str) -> float | None:
            if name in skipped:
                return math.nan
            if name in unavailable or (name in ("entropy", "kl") and not soft):
                return None
            return float(values[name])

        top = {k: v[0, 0] for k, v in arrays.items() if k.startswith("top_label.")}
        conf = sm.bin_means(top["top_label.weight"], top["top_label.sum_score"])
        acc = sm.bin_means(top["top_label.weight"], top["top_label.sum_outcome"])
        edges = self.binning.edge_array()
        bins = tuple(
            BinRow(float(edges[j]), float(edges[j + 1]), float(top["top_label.weight"][j]),
                   int(top["top_label.count"][j]), float(conf[j]), float(acc[j]),
                   float(conf[j] - acc[j]))
            for j in range(self.binning.n_bins)
        )
        per_class = values.get("classwise_ece_per_class")
        settings = Settings(self.binning.n_bins, self.binning_name, self.binning.closed,
                            reduce, unit, tuple(float(e) for e in edges))
        return Report(
            n=n_rows, weight=total, n_classes=self.n_classes, unit=unit,
            inputs="+".join(sorted(self.input_kinds)),
            targets="+".join(sorted(self.target_kinds)),
            **{name: value(name) for name in METRIC_FIELDS},  # type: ignore[arg-type]
            n_infinite_nll=n_inf, bins=bins,
            classwise_ece_per_class=(None if per_class is None or "classwise_ece" in
                                     unavailable else tuple(float(v) for v in per_class)),
            settings=settings, unavailable=unavailable,
        )


#: Which Report metrics each part of a state provides (the float ones; NaN when not kept).
_PART_METRICS = {
    "top_label": ("ece", "mce", "rmsce", "ece_debiased"),
    "class_conditional": ("class_conditional_ece",),
    "ks": ("ks",),
}


def default_threads() -> int:
    """Threads for numpy inputs: the usable cores, at most 2 (each holds one chunk).

    Measured on 2 cores (1M x 10 float32 logits): 0.263 -> 0.183 s with both cores free,
    0.280 -> 0.294 s with one of them busy with another process.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return min(cores, 2)


def _above_first_bin(q: np.ndarray, n_bins: int, closed: str) -> np.ndarray:
    """Mask of the entries whose equal-width bin index (SPEC.md's float64 rule) is >= 1.

    Right-closed: ceil(B q) - 1 >= 1, i.e. B q > 1 with B q computed in float64; left-closed:
    floor(B q) >= 1, i.e. B q >= 1. For float32 q the float64 product is exact, so the test is
    a comparison with the float32 threshold next to 1/B, without a float64 copy of q.
    """
    if q.dtype == np.float32:
        t = _float32_first_edge(n_bins, closed)
        return q > t if closed == "right" else q >= t
    scaled = q.astype(np.float64, copy=False) * float(n_bins)
    return scaled > 1.0 if closed == "right" else scaled >= 1.0


@functools.lru_cache(maxsize=64)
def _float32_first_edge(n_bins: int, closed: str) -> np.float32:
    """Right-closed: the largest float32 t with B t <= 1 (q > t leaves bin 0); left-closed:
    the smallest float32 t with B t >= 1 (q >= t leaves bin 0)."""
    t = np.float32(1.0 / n_bins)
    if closed == "right":
        while float(t) * n_bins > 1.0:
            t = np.nextafter(t, np.float32(0))
        while float(np.nextafter(t, np.float32(1))) * n_bins <= 1.0:
            t = np.nextafter(t, np.float32(1))
        return t
    while float(t) * n_bins < 1.0:
        t = np.nextafter(t, np.float32(1))
    while float(np.nextafter(t, np.float32(0))) * n_bins >= 1.0:
        t = np.nextafter(t, np.float32(0))
    return t


def _on_device(xp: Any, value: Any, dtype: Any, dev: Any) -> Array:
    """``value`` as a 0-d array of ``dtype`` on ``dev``. A Python number is filled in on the
    device (``xp.full``): ``xp.asarray`` of a Python number copies it from the host, which
    blocks the host until a CUDA device has caught up."""
    if is_array(value):
        return xp.astype(value, dtype)
    return xp.full((), value, dtype=dtype, **_dev(dev))


def _dev(dev: Any) -> dict[str, Any]:
    return {} if dev is None else {"device": dev}
