"""`TorchmetricsCalibration`: :class:`CalibrationAccumulator` as a ``torchmetrics.Metric``.

The class is built on first access (``trueprob.torch.TorchmetricsCalibration``), so that
torchmetrics stays optional: importing :mod:`trueprob.torch` never imports it.
"""

from __future__ import annotations

import functools
from typing import Any

import torch

from trueprob.core.options import check_reduce, check_unit
from trueprob.results import METRIC_FIELDS, Report
from trueprob.torch.accumulator import TARGET_KINDS, CalibrationAccumulator


def _state_name(name: str) -> str:
    """torchmetrics state names cannot contain dots: ``top_label.count`` -> ``top_label_count``."""
    return name.replace(".", "_")


@functools.cache
def torchmetrics_calibration_class() -> type:
    """Build the ``TorchmetricsCalibration`` class (needs torchmetrics)."""
    try:
        from torchmetrics import Metric
    except ImportError as exc:
        raise ImportError(
            "trueprob.torch.TorchmetricsCalibration needs torchmetrics (pip install "
            "torchmetrics); trueprob.torch.CalibrationAccumulator works without it"
        ) from exc

    class TorchmetricsCalibration(Metric):
        """Every metric of a :class:`~trueprob.Report` as a ``torchmetrics.Metric``.

        The metric states are the tensors of :class:`CalibrationAccumulator` (fixed size,
        float64 sums, int64 counts), registered with ``dist_reduce_fx="sum"``, so torchmetrics'
        own synchronisation across processes (and Lightning's) gives the state of all rows.
        ``update(preds, target, sample_weight=None)`` never synchronises with the device;
        invalid rows are reported when the result is computed, as by the accumulator.

        ``compute()`` returns the scalar metrics of the Report as ``{name: float}`` (the
        names of ``Report.to_dict()``; a metric the inputs cannot give is left out), ready
        for ``log_dict``. ``report()`` returns the whole :class:`~trueprob.Report`
        (per-bin table, settings), synchronised the same way. (torchmetrics' ``compute``
        wrapper cannot return a frozen dataclass.) Call ``update`` per batch: calling the
        metric (``forward``) also computes the batch's own metrics, which reads them back
        to the host.

        Parameters
        ----------
        n_classes, n_bins, closed, inputs
            As for :class:`CalibrationAccumulator` (``inputs`` says whether ``preds`` are
            logits or probabilities).
        target : {"labels", "targets", "counts"}
            What ``target`` is: hard labels (integer, (n,)), soft labels or vote counts
            ((n, K)).
        unit, reduce
            As for :func:`trueprob.evaluate`.
        **metric_kwargs
            Passed to ``torchmetrics.Metric`` (``dist_sync_on_step``, ``process_group``,
            ...), which refuses unknown names.

        Examples
        --------
        Runs where torchmetrics is installed::

            metric = trueprob.torch.TorchmetricsCalibration(10).to("cuda")
            for x, y in loader:
                metric.update(model(x), y)
            scalars = metric.compute()   # {"accuracy": ..., "nll": ..., "ece": ...}
            report = metric.report()     # the whole Report, same synchronisation
        """

        is_differentiable = False
        higher_is_better = None
        full_state_update = False

        def __init__(
            self,
            n_classes: int,
            *,
            n_bins: int = 15,
            closed: str = "right",
            inputs: str = "logits",
            target: str = "labels",
            unit: str = "nats",
            reduce: str = "mean",
            **metric_kwargs: Any,
        ) -> None:
            super().__init__(**metric_kwargs)
            if target not in TARGET_KINDS:
                raise ValueError(f"target must be one of {TARGET_KINDS}; got {target!r}")
            check_unit(unit)
            check_reduce(reduce)
            self._accumulator = CalibrationAccumulator(
                n_classes, n_bins=n_bins, closed=closed, inputs=inputs, device="cpu")
            self._target_kind = target
            self._unit = unit
            self._reduce = reduce
            self._names = tuple(self._accumulator.tensors())
            for name, tensor in self._accumulator.tensors().items():
                self.add_state(_state_name(name), default=torch.zeros_like(tensor),
                               dist_reduce_fx="sum")

        def _bound(self) -> CalibrationAccumulator:
            """The accumulator, working on this metric's current state tensors."""
            acc = self._accumulator
            acc._bind({name: getattr(self, _state_name(name)) for name in self._names})
            acc._stats.target_kinds = {self._target_kind}
            return acc

        def update(self, preds: torch.Tensor, target: torch.Tensor,
                   sample_weight: torch.Tensor | None = None) -> None:
            """Add a batch (see :meth:`CalibrationAccumulator.update`)."""
            acc = self._bound()
            if self._target_kind == "labels":
                acc.update(preds, target, sample_weight=sample_weight)
            else:
                acc.update(preds, **{self._target_kind: target}, sample_weight=sample_weight)
            for name, tensor in acc.tensors().items():  # updated in place; keep them bound
                setattr(self, _state_name(name), tensor)

        def compute(self) -> dict[str, float]:
            """The scalar metrics of :meth:`report` as ``{name: float}``."""
            report = self._bound().compute(unit=self._unit, reduce=self._reduce)
            values = {name: getattr(report, name) for name in METRIC_FIELDS}
            return {name: v for name, v in values.items() if v is not None}

        def report(self) -> Report:
            """The :class:`~trueprob.Report` of every row since the last ``reset()``,
            over all processes when torchmetrics synchronises this metric."""
            with self.sync_context(dist_sync_fn=self.dist_sync_fn,
                                   should_sync=self._to_sync,
                                   should_unsync=self._should_unsync):
                return self._bound().compute(unit=self._unit, reduce=self._reduce)

    TorchmetricsCalibration.__module__ = "trueprob.torch"
    return TorchmetricsCalibration
