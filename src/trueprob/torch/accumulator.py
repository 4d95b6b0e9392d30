"""`CalibrationAccumulator`: the Report of a stream of torch batches, kept on their device.

A training or evaluation loop calls :meth:`CalibrationAccumulator.update` once per batch with
the tensors it already has (logits on a GPU, say). The batch is reduced to the fixed-size
:class:`~trueprob.stats.EvaluationStats` state on the batch's device, by the same per-row and
per-bin code as :func:`trueprob.evaluate`, and dropped. Nothing is read back to the host in
``update``: value checks that would need a host read (NaN logits, labels out of range, ...) are
counted on the device and reported once, by :meth:`~CalibrationAccumulator.compute`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import torch
from array_api_compat import array_namespace

from trueprob._validation import Chunk, invalid_rows, prepare
from trueprob.core.options import check_reduce, check_unit
from trueprob.core.rows import row_quantities
from trueprob.results import Report
from trueprob.stats.binned import FIELDS
from trueprob.stats.evaluation import BINNED, PARTS, EvaluationStats

INPUT_KINDS = ("logits", "probs")
TARGET_KINDS = ("labels", "targets", "counts")
CLOSED = ("right", "left")
#: Counters of invalid rows: any reason, then per argument.
ERROR_SLOTS = ("rows", "scores", "labels", "targets", "counts", "sample_weight")
#: Version of the :meth:`CalibrationAccumulator.state_dict` layout.
STATE_VERSION = 1
_HALF = (torch.float16, torch.bfloat16)


def _problem(slot: str, inputs: str, n_classes: int) -> str:
    """What a row counted in ``slot`` had wrong (the checks of ``invalid_rows``)."""
    if slot == "scores":
        if inputs == "logits":
            return "logits that are not finite (NaN or inf)"
        return ("probs that are not finite, outside [0, 1] or do not sum to 1 (tolerance "
                "8 K eps of their dtype)")
    return {
        "labels": f"labels outside 0..{n_classes - 1} (K={n_classes})",
        "targets": "targets that are not finite, outside [0, 1] or do not sum to 1",
        "counts": "counts that are not finite, all zero or not a valid vote vector",
        "sample_weight": "sample_weight that is negative or not finite",
    }[slot]


class CalibrationAccumulator:
    """Every metric of a :class:`~trueprob.Report`, accumulated batch by batch on the device.

    The state is that of :class:`~trueprob.stats.EvaluationStats` (float64 sums, int64 counts,
    per-bin sums for top-label, class-conditional and classwise reliability and a 2**16-cell
    KS grid), held as torch tensors on the device of the batches, plus int64 counters of
    invalid rows. Its size depends on K and B only. :meth:`compute` gives the Report that
    :func:`trueprob.evaluate` gives on all rows at once, up to floating-point rounding of the
    sums (SPEC.md's definitions throughout, e.g. NLL = (1/W) sum_i w_i (logsumexp(z_i) -
    z_{i,y_i}), ECE = sum_b (W_b/W) |acc_b - conf_b|).

    Parameters
    ----------
    n_classes : int
        K. Binary problems pass K = 2 and may give (N,) positive-class scores.
    n_bins : int
        B, equal-width reliability bins (default 15). Equal-mass bins are not available: their
        edges are quantiles of all confidences, which a one-pass stream does not know.
    closed : {"right", "left"}
        Which side of each bin is closed (SPEC.md, "Binning").
    inputs : {"logits", "probs"}
        What :meth:`update` receives; fixed here because trueprob never guesses it.
    device : torch.device or str, optional
        Where the state lives. By default it is created on the device of the first batch.
        Give it when a process may see no batch but still takes part in :meth:`all_reduce`,
        or to load a checkpoint before the first batch.

    Notes
    -----
    ``update`` never synchronises with the device: it raises at once only for what is known
    without reading values (wrong types, shapes, dtypes or devices). Rows whose values are
    invalid (non-finite logits, labels outside 0..K-1, probabilities or soft targets off the
    simplex, negative weights) are counted on the device and made harmless, and
    :meth:`compute` raises one ``ValueError`` naming each problem and its number of rows.
    Logits in float16 / bfloat16 are upcast to float32 for the softmax; the sums stay float64
    and the counts int64 whatever the input dtype.

    Examples
    --------
    >>> import torch
    >>> from trueprob.torch import CalibrationAccumulator
    >>> acc = CalibrationAccumulator(3)
    >>> acc.update(torch.tensor([[2.0, 0.0, 0.0], [0.0, 3.0, 0.0]]), torch.tensor([0, 1]))
    CalibrationAccumulator(n_classes=3, n_bins=15, closed='right', inputs='logits', device=cpu)
    >>> acc.update(torch.tensor([[1.0, 0.0, 2.0], [0.0, 0.5, 0.0]]), torch.tensor([0, 2]))
    CalibrationAccumulator(n_classes=3, n_bins=15, closed='right', inputs='logits', device=cpu)
    >>> report = acc.compute()
    >>> report.accuracy, round(report.nll, 4)
    (0.5, 0.7591)
    """

    def __init__(
        self,
        n_classes: int,
        *,
        n_bins: int = 15,
        closed: str = "right",
        inputs: str = "logits",
        device: torch.device | str | None = None,
    ) -> None:
        if inputs not in INPUT_KINDS:
            raise ValueError(f"inputs must be 'logits' or 'probs'; got {inputs!r}")
        # every part but the smooth-ECE grid (its state is not among the tensors that
        # state_dict / all_reduce / the torchmetrics adapter carry): smooth_ece is None
        self._stats = EvaluationStats(n_classes, n_bins=n_bins, closed=closed,
                                      parts=[p for p in PARTS if p != "smooth"])
        self.n_classes = self._stats.n_classes
        self.n_bins = self._stats.binning.n_bins
        self.closed = self._stats.binning.closed
        self.inputs = inputs
        self._stats.note_kinds(inputs=(inputs,))
        self._errors: torch.Tensor | None = None
        self._device: torch.device | None = None
        self._reduced = False
        self._layout_cache: dict[str, tuple[torch.dtype, tuple[int, ...]]] | None = None
        if device is not None:
            # resolve "cuda" to "cuda:<current>", the device the batches' tensors report
            self._materialise(torch.empty(0, device=device).device)

    def __repr__(self) -> str:
        dev = "None" if self._device is None else str(self._device)
        return (f"CalibrationAccumulator(n_classes={self.n_classes}, n_bins={self.n_bins}, "
                f"closed={self.closed!r}, inputs={self.inputs!r}, device={dev})")

    @property
    def device(self) -> torch.device | None:
        """The device of the state (``None`` until the first batch when none was given)."""
        return self._device

    # ------------------------------------------------------------------ state tensors
    def _materialise(self, dev: torch.device) -> None:
        """Create the zero state on ``dev``."""
        xp = array_namespace(torch.empty(0))
        self._stats._ensure(xp, dev)
        for name in BINNED:
            getattr(self._stats, name)._ensure(xp, dev)
        self._errors = torch.zeros(len(ERROR_SLOTS), dtype=torch.int64, device=dev)
        self._device = dev

    def tensors(self) -> dict[str, torch.Tensor]:
        """The state tensors by name (the live tensors, not copies); empty before the first
        batch. float64: ``sums`` and the ``weight`` / ``sum_score`` / ``sum_outcome`` of each
        binned part; int64: ``counts``, ``errors`` and each part's ``count``."""
        if self._errors is None:
            return {}
        s = self._stats
        out = {"sums": s.sums, "counts": s.counts, "errors": self._errors}
        for name in BINNED:
            part = getattr(s, name)
            for field in FIELDS:
                out[f"{name}.{field}"] = getattr(part, field)
        return out

    def _layout(self) -> dict[str, tuple[torch.dtype, tuple[int, ...]]]:
        """Name -> (dtype, shape) of every state tensor (worked out once, on the meta device,
        which allocates nothing)."""
        if self._layout_cache is None:
            other = CalibrationAccumulator(self.n_classes, n_bins=self.n_bins,
                                           closed=self.closed, inputs=self.inputs,
                                           device="meta")
            self._layout_cache = {name: (t.dtype, tuple(t.shape))
                                  for name, t in other.tensors().items()}
        return self._layout_cache

    def _bind(self, tensors: Mapping[str, torch.Tensor]) -> None:
        """Use ``tensors`` (same names, shapes and dtypes as :meth:`tensors`) as the state,
        without copying; used by the torchmetrics adapter, whose states they are."""
        layout = self._layout()
        if set(tensors) != set(layout):
            raise ValueError(f"state tensors must be {sorted(layout)}; got {sorted(tensors)}")
        for name, (dtype, shape) in layout.items():
            t = tensors[name]
            if t.dtype != dtype or tuple(t.shape) != shape:
                raise TypeError(f"state tensor {name} must be {dtype} of shape {shape}; got "
                                f"{t.dtype} of shape {tuple(t.shape)}")
        dev = tensors["sums"].device
        xp = array_namespace(torch.empty(0))
        s = self._stats
        s._xp, s._device, s.sums, s.counts = xp, dev, tensors["sums"], tensors["counts"]
        for name in BINNED:
            part = getattr(s, name)
            part._xp, part._device = xp, dev
            for field in FIELDS:
                setattr(part, field, tensors[f"{name}.{field}"])
        self._errors = tensors["errors"]
        self._device = dev

    # ------------------------------------------------------------------ update
    def add(
        self,
        labels: torch.Tensor | None = None,
        /,
        *,
        logits: torch.Tensor | None = None,
        probs: torch.Tensor | None = None,
        targets: torch.Tensor | None = None,
        counts: torch.Tensor | None = None,
        sample_weight: torch.Tensor | None = None,
    ) -> CalibrationAccumulator:
        """:meth:`update` with :func:`trueprob.evaluate`'s argument names and order: the
        labels first, the model outputs by name (``logits=`` or ``probs=``, whichever this
        accumulator was made for). :meth:`update` keeps torchmetrics' ``(preds, target)``
        order for training loops written against torchmetrics.

        Examples
        --------
        >>> import torch
        >>> from trueprob.torch import CalibrationAccumulator
        >>> z = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
        >>> acc = CalibrationAccumulator(2).add(torch.tensor([0, 1]), logits=z)
        >>> acc.compute().n
        2
        """
        given = {"logits": logits, "probs": probs}
        named = [k for k, v in given.items() if v is not None]
        if named != [self.inputs]:
            raise TypeError(f"this accumulator takes {self.inputs}= (set by inputs=); got "
                            f"{', '.join(f'{k}=' for k in named) or 'neither logits= nor probs='}")
        scores = given[self.inputs]
        assert scores is not None  # checked just above
        return self.update(scores, labels, targets=targets, counts=counts,
                           sample_weight=sample_weight)

    def update(
        self,
        scores: torch.Tensor,
        labels: torch.Tensor | None = None,
        /,
        *,
        targets: torch.Tensor | None = None,
        counts: torch.Tensor | None = None,
        sample_weight: torch.Tensor | None = None,
    ) -> CalibrationAccumulator:
        """Add a batch; returns ``self``. Never reads a value back to the host.

        Parameters
        ----------
        scores : torch.Tensor (n, K), or (n,) when K = 2
            Logits z_i or probabilities q_i, as fixed by ``inputs``. float16 / bfloat16 logits
            are upcast to float32 for the softmax; probabilities must be float32 or float64.
        labels : torch.Tensor (n,), integer, optional
            Hard labels y_i. Exactly one of ``labels``, ``targets`` or ``counts`` is given.
        targets : torch.Tensor (n, K), optional
            Soft labels p_i on the simplex (float32 or float64).
        counts : torch.Tensor (n, K), optional
            Annotator votes n_ik, used as targets n_ik / sum_k n_ik.
        sample_weight : torch.Tensor (n,), optional
            Row weights w_i >= 0.

        Raises at once for inputs that are wrong without looking at their values (types,
        dtypes, shapes, devices); invalid values are reported by :meth:`compute`. Works
        whether or not autograd is enabled: the inputs are detached.
        """
        if self._reduced:
            raise RuntimeError("this accumulator holds the sum over all processes since "
                               "all_reduce(); call reset() before adding batches")
        given = {"labels": labels, "targets": targets, "counts": counts}
        chosen = [k for k, v in given.items() if v is not None]
        if len(chosen) != 1:
            raise TypeError("pass exactly one of labels, targets= or counts=; got "
                            f"{', '.join(chosen) or 'none'}")
        target_kind = chosen[0]
        args = {self.inputs: scores, target_kind: given[target_kind],
                "sample_weight": sample_weight}
        for name, value in args.items():
            if value is not None and not isinstance(value, torch.Tensor):
                raise TypeError(f"{name} must be a torch.Tensor; got {type(value).__name__}")
        dev = scores.device
        for name, value in args.items():
            if value is not None and value.device != dev:
                raise ValueError(f"{name} is on {value.device} but {self.inputs} is on {dev}; "
                                 f"put every input of a batch on one device")
        if self._device is not None and dev != self._device:
            raise ValueError(f"this accumulator's state is on {self._device} but "
                             f"{self.inputs} is on {dev}")
        x = self._score_tensor(scores.detach())
        y = t = c = w = None
        if labels is not None:
            if labels.is_floating_point() or labels.is_complex():
                raise TypeError(f"labels must be an integer tensor of class indices; got "
                                f"dtype {labels.dtype}")
            y = labels.detach()
        if targets is not None:
            if targets.dtype in _HALF:
                raise TypeError(f"targets must be float32 or float64 (a {targets.dtype} row "
                                f"does not sum to 1 closely enough); got {targets.dtype}")
            t = targets.detach()
        if counts is not None:
            c = counts.detach()
            if c.dtype in _HALF:
                c = c.float()
        if sample_weight is not None:
            w = sample_weight.detach()
        with torch.no_grad():
            inputs = prepare(
                y, **{self.inputs: x}, targets=t, counts=c, sample_weight=w,
                n_classes=self.n_classes, check=False,
            )
            if self._errors is None:
                self._materialise(dev)
            for chunk in inputs.chunks():
                chunk = self._screen(inputs.xp, chunk, target_kind)
                rows = row_quantities(inputs.xp, chunk)
                self._stats.update_rows(inputs.xp, chunk, rows)
        self._stats.note_kinds(targets=(target_kind,))
        return self

    def _score_tensor(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype in _HALF:
            if self.inputs == "probs":
                raise TypeError(f"probs must be float32 or float64 (a {x.dtype} row does not "
                                f"sum to 1 closely enough); pass logits, or probabilities "
                                f"computed in float32; got {x.dtype}")
            return x.float()
        return x

    def _screen(self, xp: Any, chunk: Chunk, target_kind: str) -> Chunk:
        """Count the chunk's invalid rows on the device and make them harmless.

        Rows with invalid scores get all-zero scores and labels outside 0..K-1 become 0, so
        that no bin or class index leaves its range (a NaN confidence has no bin). The
        counters make :meth:`compute` refuse the result, so these values are never reported.
        """
        k = self.n_classes
        n = chunk.n_rows
        dev = chunk.scores.device
        stand_in = torch.zeros(n, dtype=torch.float32, device=dev)  # finite logits
        bad_scores = invalid_rows(xp, dataclasses.replace(
            chunk, labels=None, targets=None, weights=None), k)
        bad_target = invalid_rows(xp, dataclasses.replace(
            chunk, kind="logits", scores=stand_in, weights=None), k)
        bad = bad_scores | bad_target
        zero = torch.zeros((), dtype=torch.int64, device=dev)
        counts = dict.fromkeys(ERROR_SLOTS, zero)
        if chunk.weights is not None:
            bad_weight = invalid_rows(xp, dataclasses.replace(
                chunk, kind="logits", scores=stand_in, labels=None, targets=None), k)
            bad = bad | bad_weight
            counts["sample_weight"] = bad_weight.sum(dtype=torch.int64)
        counts["rows"] = bad.sum(dtype=torch.int64)
        counts["scores"] = bad_scores.sum(dtype=torch.int64)
        counts[target_kind] = bad_target.sum(dtype=torch.int64)
        assert self._errors is not None
        self._errors += torch.stack([counts[s] for s in ERROR_SLOTS])
        scores = torch.where(bad_scores[:, None], 0.0, chunk.scores)
        labels = chunk.labels
        if labels is not None:
            labels = torch.where(bad_target, 0, labels)
        return dataclasses.replace(chunk, scores=scores, labels=labels)

    # ------------------------------------------------------------------ results
    def compute(self, *, unit: str = "nats", reduce: str = "mean") -> Report:
        """The :class:`~trueprob.Report` of every row added since the last :meth:`reset`.

        Reads the state back to the host (one synchronisation). Raises ``ValueError`` when no
        row was added, or when some rows were invalid: the message names each problem and
        its number of rows.

        Parameters
        ----------
        unit : {"nats", "bits"}
            Unit of the log-score quantities.
        reduce : {"mean", "sum"}
            How classwise ECE combines classes.
        """
        check_unit(unit)
        check_reduce(reduce)
        if self._errors is None:
            raise ValueError("no rows were added to this accumulator; call update() first")
        errors = dict(zip(ERROR_SLOTS, self._errors.tolist(), strict=True))
        n_rows = int(self._stats.counts[0].item())
        if n_rows == 0:
            raise ValueError("no rows were added to this accumulator; call update() first")
        if errors["rows"]:
            problems = "; ".join(
                f"{errors[slot]} row(s) with {_problem(slot, self.inputs, self.n_classes)}"
                for slot in ERROR_SLOTS[1:] if errors[slot])
            raise ValueError(
                f"{errors['rows']} of {n_rows} rows added since the last reset() are invalid, "
                f"so there is no report: {problems}. update() defers these checks to "
                f"compute() so that it never waits for the device; trueprob.evaluate on the "
                f"offending batch names the first bad row"
            )
        return self._stats.finalize(unit=unit, reduce=reduce)

    def reset(self) -> CalibrationAccumulator:
        """Zero the state (it stays on its device); returns ``self``."""
        for t in self.tensors().values():
            t.zero_()
        self._stats.set_target_kinds(())
        self._reduced = False
        return self

    # ------------------------------------------------------------------ checkpoints
    def _settings(self) -> list[int]:
        return [STATE_VERSION, self.n_classes, self.n_bins, CLOSED.index(self.closed),
                INPUT_KINDS.index(self.inputs)]

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The state as a dict of plain tensors (copies), for checkpoints.

        ``settings`` (int64: format version, K, B, closed, inputs) and ``target_kinds``
        (int64 flags for labels, targets, counts) are on the CPU; the state tensors of
        :meth:`tensors` (absent before the first batch) stay on their device. The dict
        round-trips through ``torch.save`` and ``torch.load(..., weights_only=True)``.
        """
        out = {
            "settings": torch.tensor(self._settings(), dtype=torch.int64),
            "target_kinds": torch.tensor([k in self._stats.target_kinds for k in TARGET_KINDS],
                                         dtype=torch.int64),
        }
        out.update({name: t.detach().clone() for name, t in self.tensors().items()})
        return out

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> CalibrationAccumulator:
        """Replace the state by one from :meth:`state_dict`; returns ``self``.

        The tensors are copied onto this accumulator's device, or, when it has none yet,
        kept on the device they come on.
        """
        if not isinstance(state, Mapping):
            raise TypeError(f"state must be a dict of tensors; got {type(state).__name__}")
        for key in ("settings", "target_kinds"):
            if not isinstance(state.get(key), torch.Tensor):
                raise ValueError(f"state has no {key!r} tensor; is it a "
                                 f"CalibrationAccumulator.state_dict()?")
        saved = [int(v) for v in state["settings"].reshape(-1).tolist()]
        if len(saved) != 5 or saved[0] > STATE_VERSION:
            raise ValueError(f"state settings {saved} are not a version <= {STATE_VERSION} "
                             f"CalibrationAccumulator state")
        if saved != self._settings():
            def describe(s: list[int]) -> str:
                return (f"n_classes={s[1]}, n_bins={s[2]}, closed={CLOSED[s[3]]!r}, "
                        f"inputs={INPUT_KINDS[s[4]]!r}")
            raise ValueError(f"state was saved with {describe(saved)}; this accumulator has "
                             f"{describe(self._settings())}")
        layout = self._layout()
        arrays = {k: v for k, v in state.items() if k not in ("settings", "target_kinds")}
        if arrays and set(arrays) != set(layout):
            raise ValueError(f"state tensors must be {sorted(layout)}; got {sorted(arrays)}")
        for name, t in arrays.items():
            dtype, shape = layout[name]
            if not isinstance(t, torch.Tensor) or t.dtype != dtype or tuple(t.shape) != shape:
                got = (f"{t.dtype} of shape {tuple(t.shape)}" if isinstance(t, torch.Tensor)
                       else type(t).__name__)
                raise ValueError(f"state tensor {name} must be {dtype} of shape {shape}; "
                                 f"got {got}")
        flags = [bool(v) for v in state["target_kinds"].reshape(-1).tolist()]
        if len(flags) != len(TARGET_KINDS):
            raise ValueError(f"target_kinds must have {len(TARGET_KINDS)} flags; got {flags}")
        self._reduced = False
        self._stats.set_target_kinds(k for k, f in zip(TARGET_KINDS, flags, strict=True) if f)
        if not arrays:
            self.reset()
            return self
        if self._errors is None:
            self._materialise(arrays["sums"].device)
        for name, t in self.tensors().items():
            t.copy_(arrays[name])
        return self

    # ------------------------------------------------------------------ distributed
    def all_reduce(self, group: Any = None) -> CalibrationAccumulator:
        """Replace this process's state by the sum over the processes of ``group``.

        Every process of the group must call it (a collective); afterwards each holds the
        state of all rows, and :meth:`compute` gives the Report of the whole dataset. The
        state travels as two tensors (float64 sums, int64 counts plus the target-kind flags),
        summed by ``torch.distributed.all_reduce``; the flags are read back to the host once.
        A process that saw no batch joins with a zero state, on ``device`` if given, else on
        the current CUDA device for the NCCL backend and on the CPU otherwise. Adding batches
        after ``all_reduce`` needs :meth:`reset` first, since a second reduction would count
        every other process's rows again. Returns ``self``.
        """
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            raise RuntimeError("torch.distributed is not initialised; call "
                               "torch.distributed.init_process_group first")
        if self._reduced:
            raise RuntimeError("all_reduce() was already called on this state; a second call "
                               "would count every other process's rows again")
        if self._errors is None:
            if dist.get_backend(group) == "nccl":
                dev = torch.device("cuda", torch.cuda.current_device())
            else:
                dev = torch.device("cpu")
            self._materialise(dev)
        tensors = self.tensors()
        assert self._device is not None
        flags = torch.tensor([k in self._stats.target_kinds for k in TARGET_KINDS],
                             dtype=torch.int64, device=self._device)
        floats = [t for t in tensors.values() if t.dtype == torch.float64]
        ints = [t for t in tensors.values() if t.dtype == torch.int64] + [flags]
        for group_tensors in (floats, ints):
            flat = torch.cat([t.reshape(-1) for t in group_tensors])
            dist.all_reduce(flat, op=dist.ReduceOp.SUM, group=group)
            offset = 0
            for t in group_tensors:
                t.copy_(flat[offset:offset + t.numel()].view_as(t))
                offset += t.numel()
        summed = flags.tolist()
        self._stats.set_target_kinds(k for k, f in zip(TARGET_KINDS, summed, strict=True)
                                    if f)
        self._reduced = True
        return self
