"""Validated batches of a stream: :class:`Batch`, file and row named in every error."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from trueprob._validation import Inputs, prepare
from trueprob.streaming.files import (
    PathLike,
    Spec,
    dataset_files,
    iter_batches,
)


@dataclass(frozen=True)
class Batch:
    """One validated batch of a stream: where it came from and its prepared inputs."""

    source: str
    start: int
    inputs: Inputs


def prepare_batch(arrays: dict[str, Any], *, n_classes: int | None = None,
                  calibrator: Any = None, source: str = "<batch>", start: int = 0,
                  purpose: str | None = None) -> Batch:
    """Validate one batch of arrays (the dicts of :func:`iter_batches`) into a :class:`Batch`.

    With a fitted ``calibrator`` the logits or probabilities are replaced by its calibrated
    log-probabilities (passed on as logits). ``purpose`` (e.g. "temperature scaling") refuses
    top-label inputs for a fit that needs the whole vector. Errors name the file; value errors
    (raised when the batch's chunks are read) name the offending row counted from the file's
    first row.
    """
    arrays = dict(arrays)
    if calibrator is not None:
        arrays = calibrate_arrays(arrays, calibrator)
    targets = [k for k in ("labels", "targets", "counts") if k in arrays]
    if not targets:
        raise ValueError(
            f"{source}: no targets found (no field 'labels', 'targets' or 'counts'); name them "
            f"with labels=, targets= or counts= (CLI: --labels, --targets, --counts)"
        )
    top_label = "confidences" in arrays
    if top_label and purpose is not None:
        raise ValueError(f"{source}: {purpose} needs logits= or probs= (the whole vector); "
                         f"top-label confidences cannot be rescaled")
    if top_label and n_classes is None:
        raise ValueError(
            "n_classes= is needed for top-label inputs (confidences and predictions) read in "
            "batches: K cannot be inferred from the largest index of one batch"
        )
    try:
        inputs = prepare(arrays.pop("labels", None), **arrays,
                         n_classes=n_classes if top_label else None)
    except (ValueError, TypeError) as exc:
        raise type(exc)(f"{source}: {_absolute_rows(str(exc), start)}") from exc
    if n_classes is not None and inputs.n_classes != n_classes:
        raise ValueError(f"{source}: the model outputs have K={inputs.n_classes} classes but "
                         f"n_classes={n_classes}")
    return Batch(source, start, inputs)


def calibrate_arrays(arrays: dict[str, Any], calibrator: Any) -> dict[str, Any]:
    """Replace ``logits`` / ``probs`` by ``calibrator``'s log-probabilities (as ``logits``)."""
    out = dict(arrays)
    if "logits" in out:
        out["logits"] = calibrator.predict_logproba(logits=out.pop("logits"))
    elif "probs" in out:
        out["logits"] = calibrator.predict_logproba(probs=out.pop("probs"))
    else:
        raise ValueError("a calibrator needs logits or probabilities; the data gives only "
                         "top-label confidences and predictions")
    return out


_ROW = re.compile(r"\brow (\d+)\b")


def _absolute_rows(message: str, start: int) -> str:
    """A validation message of a batch with its row numbers counted from the file's start."""
    return _ROW.sub(lambda m: f"row {int(m.group(1)) + start}", message)


def _checked_chunks(batch: Batch) -> Iterator[Any]:
    """The validated chunks of a batch; value errors name the file and the row in it."""
    try:
        yield from batch.inputs.chunks()
    except ValueError as exc:
        raise ValueError(f"{batch.source}: {_absolute_rows(str(exc), batch.start)}") from exc


def _stream(path: PathLike, specs: dict[str, Spec], batch_rows: int, n_classes: int | None,
            calibrator: Any, purpose: str | None = None) -> Callable[[], Iterator[Batch]]:
    """A function that starts a new pass over the dataset each time it is called."""
    dataset_files(path)  # a missing path or an empty folder is an error now, not at a pass

    fields: dict[str, Any] = specs

    def batches() -> Iterator[Batch]:
        k = n_classes
        for source, start, arrays in iter_batches(path, **fields, batch_rows=batch_rows):
            batch = prepare_batch(arrays, n_classes=k, calibrator=calibrator, source=source,
                                  start=start, purpose=purpose)
            k = batch.inputs.n_classes
            yield batch

    return batches
