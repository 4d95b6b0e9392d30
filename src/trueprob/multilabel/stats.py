"""`MultilabelStats`: a fixed-size, mergeable state for L independent binary labels.

A multi-label problem is L binary problems sharing rows: label l has probability
q_il = sigmoid(z_il) (or a given q_il) and outcome y_il in {0, 1}. The state keeps, per label,
the weighted sums of the binary cross-entropy, the Brier score, y and q, and the per-bin sums of
one :class:`~trueprob.stats.binned.BinnedStats` with one group per label. Pooled (micro) bins
are the sums of the per-label bins, so micro metrics need no extra state.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from trueprob._array import Array, device, on_device, to_numpy
from trueprob.core import summaries as sm
from trueprob.core.binning import Binning
from trueprob.core.options import check_unit
from trueprob.core.rows import safe_log
from trueprob.multilabel._validation import MultilabelChunk, MultilabelInputs, prepare_multilabel
from trueprob.results import (
    Aggregate,
    BinRow,
    LabelMetrics,
    MultilabelReport,
    MultilabelSettings,
    WorstLabel,
)
from trueprob.stats.binned import BinnedStats
from trueprob.stats.state import MergeableState, Slot
from trueprob.stats.summary import InfiniteLossWarning

STATE_FORMAT = "trueprob.MultilabelStats"
STATE_VERSION = 1
#: rows of ``label_sums``: BCE, Brier, outcome y, probability q (each weighted)
_BCE, _BRIER, _POS, _PROB = range(4)


def log_sigmoid(xp: Any, x: Array) -> Array:
    """log sigmoid(x) = min(x, 0) - log1p(e^-|x|): never overflows."""
    return xp.minimum(x, xp.zeros_like(x)) - xp.log1p(xp.exp(-xp.abs(x)))


def label_rows(xp: Any, chunk: MultilabelChunk) -> tuple[Array, Array]:
    """(q, bce) float64 (n, L): q_il and -[y log q + (1 - y) log(1 - q)] in nats.

    From logits: -[y log sigmoid(z) + (1 - y) log sigmoid(-z)], exact (no clipping). From
    probabilities: exact too; a probability 0 of the observed value gives +inf.
    """
    y = chunk.labels
    if chunk.kind == "logits":
        z = xp.astype(chunk.scores, xp.float64)
        pos, neg = log_sigmoid(xp, z), log_sigmoid(xp, -z)
        return xp.exp(pos), -(y * pos + (1.0 - y) * neg)
    q = xp.astype(chunk.scores, xp.float64)
    return q, -xp.where(y > 0, safe_log(xp, q), safe_log(xp, 1.0 - q))


class MultilabelStats(MergeableState):
    """Sufficient statistics of :func:`~trueprob.multilabel.evaluate_multilabel`.

    Parameters
    ----------
    n_labels : int
        L.
    n_bins, closed, edges
        The reliability binning of every label (see :class:`trueprob.core.binning.Binning`).

    The state: the total weight W and row count; per label, float64 sums of w BCE, w Brier,
    w y and w q, the count of rows with an infinite BCE, and count / weight / q / y sums per
    (label, bin). Its size is about 4 L (B + 2) numbers, whatever N.

    Examples
    --------
    >>> import numpy as np
    >>> z = np.array([[2.0, -1.0], [0.5, 0.0], [-1.0, 3.0]])
    >>> y = np.array([[1, 0], [0, 0], [0, 1]])
    >>> a = MultilabelStats(2).update(y[:1], logits=z[:1])
    >>> b = MultilabelStats(2).update(y[1:], logits=z[1:])
    >>> one = MultilabelStats(2).update(y, logits=z).finalize()
    >>> a.merge(b).finalize().micro.nll == one.micro.nll
    True
    """

    def __init__(self, n_labels: int, *, n_bins: int = 15, closed: str = "right",
                 edges: Iterable[float] | None = None) -> None:
        if isinstance(n_labels, bool) or not isinstance(n_labels, (int, np.integer)) \
                or n_labels < 1:
            raise ValueError(f"n_labels must be a positive integer; got {n_labels!r}")
        self.n_labels = int(n_labels)
        self.binning = Binning(n_bins, closed,  # type: ignore[arg-type]
                               None if edges is None else tuple(float(e) for e in edges))
        self.bins = BinnedStats(self.binning, self.n_labels)
        self.input_kinds: set[str] = set()
        self._xp: Any = None
        self._device: Any = None
        self.total: Array = None       # float64 (1,): W
        self.rows: Array = None        # int64 (1,): N
        self.label_sums: Array = None  # float64 (4, L)
        self.n_inf: Array = None       # int64 (L,)

    # ------------------------------------------------------------------ update
    def update(self, labels: Any, /, *, logits: Any = None, probs: Any = None,
               sample_weight: Any = None) -> MultilabelStats:
        """Add a chunk of rows: labels (N, L) in {0, 1} and logits or probs (N, L)."""
        return self.update_inputs(prepare_multilabel(labels, logits=logits, probs=probs,
                                                     sample_weight=sample_weight))

    def update_inputs(self, inputs: MultilabelInputs, rows: int | None = None
                      ) -> MultilabelStats:
        if inputs.n_labels != self.n_labels:
            raise ValueError(f"this state has L={self.n_labels} labels but the inputs have "
                             f"L={inputs.n_labels}")
        self.input_kinds.add(inputs.kind)
        for chunk in inputs.chunks(rows):
            self.update_chunk(inputs.xp, chunk)
        return self

    def update_chunk(self, xp: Any, chunk: MultilabelChunk) -> None:
        """Add one validated chunk (one pass over its (n, L) values)."""
        dev = device(chunk.scores)
        self._ensure(xp, dev)
        n, k = chunk.n_rows, self.n_labels
        y, w = chunk.labels, chunk.weights
        q, bce = label_rows(xp, chunk)
        finite = xp.isfinite(bce)
        hits = ~finite if w is None else (~finite & (w[:, None] > 0))

        def colsum(x: Array) -> Array:
            return xp.sum(x, axis=0) if w is None else xp.sum(x * w[:, None], axis=0)

        bce_sum = colsum(xp.where(finite, bce, 0.0))
        n_hit = xp.sum(xp.astype(hits, xp.int64), axis=0)
        bce_sum = xp.where(n_hit > 0, xp.inf, bce_sum)
        self.label_sums += xp.stack([bce_sum, colsum((q - y) ** 2), colsum(y), colsum(q)])
        self.n_inf += n_hit
        self.rows += n
        self.total += float(n) if w is None else xp.sum(w)
        b = self.binning.n_bins
        idx = self.binning.index(xp, q)
        offsets = xp.arange(0, k * b, b, dtype=xp.int64, **on_device(dev))
        flat = xp.reshape(idx + offsets[None, :], (-1,))
        w1 = None if w is None else xp.reshape(xp.broadcast_to(w[:, None], (n, k)), (-1,))
        self.bins.add(xp, dev, flat, xp.reshape(q, (-1,)), xp.reshape(y, (-1,)), w1)

    # ------------------------------------------------------------------ state (merge, bytes)
    FORMAT = STATE_FORMAT
    VERSION = STATE_VERSION
    WHAT = "trueprob multi-label state"

    def _slots(self) -> dict[str, Slot]:
        k = self.n_labels
        return {"total": ((1,), "float64"), "rows": ((1,), "int64"),
                "label_sums": ((4, k), "float64"), "n_inf": ((k,), "int64")}

    def _parts(self) -> dict[str, Any]:
        return {"bins": self.bins}

    def _settings(self) -> tuple[Any, ...]:
        return (self.n_labels, self.binning)

    def _empty_like(self) -> MultilabelStats:
        return MultilabelStats(self.n_labels, n_bins=self.binning.n_bins,
                               closed=self.binning.closed, edges=self.binning.edges)

    def _merge_extra(self, other: MultilabelStats, out: MultilabelStats) -> None:
        out.input_kinds = self.input_kinds | other.input_kinds

    def _header(self) -> dict[str, Any]:
        return {"n_labels": self.n_labels, "n_bins": self.binning.n_bins,
                "closed": self.binning.closed,
                "edges": None if self.binning.edges is None else list(self.binning.edges),
                "input_kinds": sorted(self.input_kinds)}

    @classmethod
    def _from_header(cls, header: dict[str, Any]) -> MultilabelStats:
        out = cls(header["n_labels"], n_bins=header["n_bins"], closed=header["closed"],
                  edges=header["edges"])
        out.input_kinds = set(header["input_kinds"])
        return out

    # ------------------------------------------------------------------ finalize
    def finalize(self, *, unit: str = "nats", n_worst: int = 5,
                 label_names: Sequence[str] | None = None) -> MultilabelReport:
        """The :class:`MultilabelReport` of everything added so far."""
        scale = check_unit(unit)
        if self._xp is None:
            raise ValueError("no rows were added to this state; call update() first")
        if isinstance(n_worst, bool) or not isinstance(n_worst, (int, np.integer)) or n_worst < 0:
            raise ValueError(f"n_worst must be an integer >= 0; got {n_worst!r}")
        k = self.n_labels
        names = [str(j) for j in range(k)] if label_names is None else [str(v) for v in
                                                                        label_names]
        if len(names) != k:
            raise ValueError(f"label_names has {len(names)} names but there are L={k} labels")
        total = float(to_numpy(self.total)[0])
        if not total > 0:
            raise ValueError("sample_weight sums to 0; at least one row needs a positive weight")
        sums = to_numpy(self.label_sums).astype(np.float64)
        n_inf = to_numpy(self.n_inf).astype(np.int64)
        if int(n_inf.sum()):
            warnings.warn(
                f"the log loss is infinite for {int((n_inf > 0).sum())} label(s): "
                f"{int(n_inf.sum())} (row, label) pair(s) give probability 0 to the observed "
                f"value", InfiniteLossWarning, stacklevel=2)
        arr = self.bins.arrays()  # (L, B) each
        per = sm.binned_errors(arr["weight"], arr["sum_score"], arr["sum_outcome"],
                               np.asarray(total))
        pooled = {f: v.sum(axis=0, keepdims=True) for f, v in arr.items()}
        micro_err = sm.binned_errors(pooled["weight"], pooled["sum_score"],
                                     pooled["sum_outcome"], np.asarray(total * k))
        nll = sums[_BCE] / total * scale
        brier = sums[_BRIER] / total
        labels = tuple(
            LabelMetrics(j, names[j], float(sums[_POS, j] / total),
                         float(sums[_PROB, j] / total), float(nll[j]), float(brier[j]),
                         float(per["ece"][j]), float(per["mce"][j]),
                         float(np.sqrt(per["l2"][j])),
                         float(np.sqrt(max(per["debiased_l2"][j], 0.0))), int(n_inf[j]))
            for j in range(k))
        micro = Aggregate(float(sums[_BCE].sum() / (total * k) * scale),
                          float(sums[_BRIER].sum() / (total * k)), float(micro_err["ece"][0]),
                          float(micro_err["mce"][0]), float(np.sqrt(micro_err["l2"][0])),
                          float(np.sqrt(max(micro_err["debiased_l2"][0], 0.0))))
        macro = Aggregate(*(float(np.mean([getattr(m, f) for m in labels]))
                            for f in ("nll", "brier", "ece", "mce", "rmsce", "ece_debiased")))
        order = sorted(range(k), key=lambda j: (-labels[j].ece, j))[:n_worst]
        edges = self.binning.edge_array()
        worst = tuple(WorstLabel(j, names[j], labels[j].ece,
                                 _bin_rows(edges, {f: v[j] for f, v in arr.items()}))
                      for j in order)
        settings = MultilabelSettings(self.binning.n_bins, self.binning.closed, unit,
                                      tuple(float(e) for e in edges), int(n_worst))
        return MultilabelReport(
            n=int(to_numpy(self.rows)[0]), weight=total, n_labels=k, unit=unit,
            inputs="+".join(sorted(self.input_kinds)), micro=micro, macro=macro,
            per_label=labels, worst=worst,
            bins=_bin_rows(edges, {f: v[0] for f, v in pooled.items()}),
            n_infinite_nll=int(n_inf.sum()), settings=settings)


def _bin_rows(edges: np.ndarray, a: dict[str, np.ndarray]) -> tuple[BinRow, ...]:
    conf = sm.bin_means(a["weight"], a["sum_score"])
    acc = sm.bin_means(a["weight"], a["sum_outcome"])
    return tuple(BinRow(float(edges[j]), float(edges[j + 1]), float(a["weight"][j]),
                        int(a["count"][j]), float(conf[j]), float(acc[j]),
                        float(conf[j] - acc[j])) for j in range(len(conf)))
