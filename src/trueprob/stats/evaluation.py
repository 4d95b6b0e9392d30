"""`EvaluationStats`: the one-pass engine. One fixed-size state for every metric of a Report.

A chunk of rows is reduced to per-row quantities (`trueprob.core.rows`) and then to sums per
bin; the state never holds a row. States merge by adding arrays, so a stream, a list of chunks
processed in any order, or partitions on different machines give the one-shot result up to
floating-point rounding.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from trueprob._array import Array, bincount, device, is_array, is_numpy, on_device, to_numpy
from trueprob._validation import CHUNK_ELEMENTS, Chunk, Inputs, prepare
from trueprob.core import summaries as sm
from trueprob.core.binning import Binning
from trueprob.core.options import UNITS, check_reduce, check_unit
from trueprob.core.rows import RowQuantities, row_quantities
from trueprob.core.threads import default_threads
from trueprob.results import Report
from trueprob.stats import summary
from trueprob.stats.binned import BinnedStats
from trueprob.stats.classwise import add_classwise
from trueprob.stats.smooth import SmoothECEStats
from trueprob.stats.state import MergeableState, Slot, StateFormatError
from trueprob.stats.summary import PART_METRICS, InfiniteLossWarning

__all__ = ["BINNED", "KS_GRID", "KS_GRID_BLOCKED", "PARTS", "PART_METRICS", "ROW_BATCH",
           "STATE_FORMAT", "STATE_VERSION", "UNITS", "EvaluationStats", "InfiniteLossWarning",
           "check_reduce", "check_unit", "default_threads"]

PARTS = ("scores", "top_label", "class_conditional", "classwise", "ks", "smooth")
BINNED = ("top_label", "class_conditional", "classwise", "ks")
#: Cells of the fine confidence grid behind the KS calibration error of a state.
KS_GRID = 1 << 16
#: ... and of each block of a blocked state (the bootstrap keeps one grid per block).
KS_GRID_BLOCKED = 1 << 10
STATE_FORMAT = "trueprob.EvaluationStats"
STATE_VERSION = 1
#: numpy chunks of fewer rows than this (K > 16, with CHUNK_ELEMENTS = 2**19) are binned
#: together, this many rows at a time (100k x 1000: ~190 calls of each row part -> 4).
ROW_BATCH = 1 << 15
_NLL, _BRIER, _ENTROPY, _KL, _W_VECTOR = sm.NLL, sm.BRIER, sm.ENTROPY, sm.KL, sm.W_VECTOR


class EvaluationStats(MergeableState):
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

    # ------------------------------------------------------------------ state (merge, bytes)
    FORMAT = STATE_FORMAT
    VERSION = STATE_VERSION
    WHAT = "trueprob state"

    def _slots(self) -> dict[str, Slot]:
        g = self.n_blocks
        return {"sums": ((g * sm.N_SUMS,), "float64"), "counts": ((g * 3,), "int64")}

    def _parts(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in BINNED}

    def _settings(self) -> tuple[Any, ...]:
        return (self.n_classes, self.binning, self.parts, self.n_blocks)

    def _empty_like(self) -> EvaluationStats:
        return EvaluationStats(self.n_classes, n_bins=self.binning.n_bins,
                               closed=self.binning.closed, edges=self.binning.edges,
                               parts=self.parts, binning_name=self.binning_name,
                               n_blocks=self.n_blocks)

    def _merge_extra(self, other: EvaluationStats, out: EvaluationStats) -> None:
        out.smooth = self.smooth.merge(other.smooth)
        out.input_kinds = self.input_kinds | other.input_kinds
        out.target_kinds = self.target_kinds | other.target_kinds

    def _header(self) -> dict[str, Any]:
        return {
            "n_classes": self.n_classes, "n_bins": self.binning.n_bins,
            "closed": self.binning.closed,
            "edges": None if self.binning.edges is None else list(self.binning.edges),
            "parts": list(self.parts), "binning_name": self.binning_name,
            "n_blocks": self.n_blocks, "input_kinds": sorted(self.input_kinds),
            "target_kinds": sorted(self.target_kinds), "smooth_rows": self.smooth.n_rows,
            "smooth_mode": self.smooth.mode,
        }

    @classmethod
    def _from_header(cls, header: dict[str, Any]) -> EvaluationStats:
        out = cls(header["n_classes"], n_bins=header["n_bins"], closed=header["closed"],
                  edges=header["edges"], parts=header["parts"],
                  binning_name=header["binning_name"], n_blocks=header["n_blocks"])
        out.input_kinds = set(header["input_kinds"])
        out.target_kinds = set(header["target_kinds"])
        return out

    def _extra_arrays(self) -> dict[str, np.ndarray]:
        return {"smooth.sums": to_numpy(self.smooth.sums)} if self.smooth.n_rows else {}

    def _read_extra(self, header: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        smooth_rows = header.get("smooth_rows", 0)
        if isinstance(smooth_rows, bool) or not isinstance(smooth_rows, int) or smooth_rows < 0:
            raise StateFormatError(f"smooth_rows must be an integer >= 0; got {smooth_rows!r}")
        sums = arrays.pop("smooth.sums", None)
        if not smooth_rows:
            if sums is not None:
                raise StateFormatError("state has smooth-ECE arrays but smooth_rows = 0")
            return
        if sums is None or sums.shape != self.smooth._shape() or sums.dtype.kind != "f":
            raise StateFormatError("state's smooth-ECE arrays do not match the header")
        mode = header.get("smooth_mode")
        if mode not in ("top-label", "binary"):
            raise StateFormatError(f"smooth_mode must be 'top-label' or 'binary'; got {mode!r}")
        self.smooth._ensure(np, None)
        self.smooth.sums = sums.astype(np.float64)
        self.smooth.n_rows = smooth_rows
        self.smooth.mode = mode

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

    @property
    def has_vector_scores(self) -> bool:
        """Whether every row gave a full probability vector (log loss, Brier, KL exist)."""
        if self._xp is None or "scores" not in self.parts:
            return False
        counts = to_numpy(self.counts).reshape(self.n_blocks, 3).sum(axis=0)
        return bool(counts[2] == counts[0])

    def summarize(self, arrays: dict[str, np.ndarray], *, unit: str = "nats",
                  reduce: str = "mean") -> dict[str, np.ndarray]:
        """Every metric of :data:`~trueprob.results.METRIC_FIELDS` from state arrays with a
        leading axis of R replicates (as :meth:`arrays` or bootstrap replicates give them);
        each value has shape (R,). Metrics the inputs cannot give are NaN."""
        return summary.summarize(self, arrays, unit=unit, reduce=reduce)

    def finalize(self, *, unit: str = "nats", reduce: str = "mean") -> Report:
        """The :class:`~trueprob.Report` of everything added so far."""
        return summary.finalize(self, unit=unit, reduce=reduce)

    def _adopt(self, other: EvaluationStats) -> None:
        """Take over the arrays of ``other`` (same settings)."""
        self._xp, self._device = other._xp, other._device
        self.sums, self.counts = other.sums, other.counts
        for name in BINNED:
            setattr(self, name, getattr(other, name))
        self.smooth = other.smooth
        self.input_kinds |= other.input_kinds
        self.target_kinds |= other.target_kinds

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
                add_classwise(self.classwise, xp, None, rows.probs, chunk, chunk.weights, None)
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
            add_classwise(self.classwise, xp, dev, rows.probs, chunk, chunk.weights, block)

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
        ones = xp.ones(n, dtype=xp.float64, **on_device(dev))
        wt = ones if w is None else w
        zero = xp.zeros(g, dtype=xp.float64, **on_device(dev))

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
        vec = n_rows if has_vector else xp.zeros(g, dtype=xp.int64, **on_device(dev))
        self.counts += xp.reshape(xp.stack([n_rows, xp.astype(n_inf, xp.int64), vec], axis=1),
                                  (-1,))

def _on_device(xp: Any, value: Any, dtype: Any, dev: Any) -> Array:
    """``value`` as a 0-d array of ``dtype`` on ``dev``. A Python number is filled in on the
    device (``xp.full``): ``xp.asarray`` of a Python number copies it from the host, which
    blocks the host until a CUDA device has caught up."""
    if is_array(value):
        return xp.astype(value, dtype)
    return xp.full((), value, dtype=dtype, **on_device(dev))
