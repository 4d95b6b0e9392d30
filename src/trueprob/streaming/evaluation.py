"""The report of a dataset read in batches: :func:`evaluate_path` and its state."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from trueprob._progress import ProgressBar
from trueprob.core.options import check_binning, check_reduce, check_unit
from trueprob.results import Report
from trueprob.stats.evaluation import EvaluationStats
from trueprob.streaming.batches import (
    Batch,
    _stream,
)
from trueprob.streaming.driver import fill_stats
from trueprob.streaming.edges import mass_edges
from trueprob.streaming.files import (
    BATCH_ROWS,
    PathLike,
    Spec,
    _check_batch_rows,
)
from trueprob.streaming.progress import counted, pass_progress

_check_binning = check_binning  # the one binning check (kept under its old name)


def stats_of_batches(
    passes: Callable[[], Iterable[Batch]],
    *,
    n_bins: int = 15,
    binning: str = "width",
    closed: str = "right",
    on_rows: Callable[[int], None] | None = None,
    bar: ProgressBar | None = None,
) -> EvaluationStats:
    """One :class:`~trueprob.stats.EvaluationStats` from a restartable stream of batches.

    ``passes()`` starts a pass over the data (called once, or a few more times for
    ``binning="mass"``, whose edges come first from :func:`mass_edges`). ``on_rows(n)`` is
    called after each batch of the evaluation pass with its number of rows (for progress).
    ``bar`` (optional) counts the rows of every pass, each pass named on it.
    """
    _check_binning(binning)
    edges = mass_edges(passes, n_bins, bar=bar) if binning == "mass" else None
    last = "evaluating" if edges is None else "last pass: evaluating"
    batches = counted(passes, bar, last)
    if on_rows is not None:
        batches = _reporting(batches, on_rows)
    stats = fill_stats(batches, n_bins=n_bins, closed=closed, edges=edges, binning=binning)
    assert stats is not None
    return stats


def _reporting(batches: Iterable[Batch], on_rows: Callable[[int], None]) -> Iterator[Batch]:
    """The batches, with ``on_rows(rows)`` called once each batch has been used."""
    for batch in batches:
        yield batch
        on_rows(batch.inputs.n_rows)


def stats_from_path(
    path: PathLike,
    /,
    *,
    logits: Spec = None,
    probs: Spec = None,
    labels: Spec = None,
    targets: Spec = None,
    counts: Spec = None,
    sample_weight: Spec = None,
    confidences: Spec = None,
    predictions: Spec = None,
    n_classes: int | None = None,
    calibrator: Any = None,
    batch_rows: int = BATCH_ROWS,
    n_bins: int = 15,
    binning: str = "width",
    closed: str = "right",
    on_rows: Callable[[int], None] | None = None,
    quiet: bool | None = None,
) -> EvaluationStats:
    """The :class:`~trueprob.stats.EvaluationStats` of a dataset, read in batches.

    Same arguments as :func:`evaluate_path` (without ``unit`` and ``reduce``, which only
    finalisation needs). The state can be merged with others, saved with ``to_bytes`` and
    finalised later.

    Examples
    --------
    >>> import tempfile, os
    >>> import numpy as np
    >>> path = os.path.join(tempfile.mkdtemp(), "val.npz")
    >>> np.savez(path, logits=np.array([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]]),
    ...          labels=np.array([0, 1, 1]))
    >>> stats = stats_from_path(path, batch_rows=2)
    >>> round(stats.finalize().accuracy, 4)
    0.6667
    """
    specs = {"logits": logits, "probs": probs, "labels": labels, "targets": targets,
             "counts": counts, "sample_weight": sample_weight, "confidences": confidences,
             "predictions": predictions}
    passes = _stream(path, specs, _check_batch_rows(batch_rows), n_classes, calibrator)
    _check_binning(binning)
    with pass_progress(path, specs, "evaluating", quiet=quiet) as bar:
        return stats_of_batches(passes, n_bins=n_bins, binning=binning, closed=closed,
                                on_rows=on_rows, bar=bar)


def evaluate_path(
    path: PathLike,
    /,
    *,
    logits: Spec = None,
    probs: Spec = None,
    labels: Spec = None,
    targets: Spec = None,
    counts: Spec = None,
    sample_weight: Spec = None,
    confidences: Spec = None,
    predictions: Spec = None,
    n_classes: int | None = None,
    calibrator: Any = None,
    batch_rows: int = BATCH_ROWS,
    n_bins: int = 15,
    binning: str = "width",
    closed: str = "right",
    unit: str = "nats",
    reduce: str = "mean",
    on_rows: Callable[[int], None] | None = None,
    quiet: bool | None = None,
) -> Report:
    """Evaluate a dataset of model outputs in bounded memory: the :func:`trueprob.evaluate`
    report of all its rows, read a batch at a time.

    Parameters
    ----------
    path : str or os.PathLike
        A file (``.parquet``, ``.npy``, ``.npz``, ``.csv``, ``.pt``), a folder of files or a
        glob (see :func:`dataset_files`). Parquet, ``.npy``, ``.npz`` and CSV files are read
        in record batches; ``.pt`` files are loaded whole.
    logits, probs, labels, targets, counts, sample_weight, confidences, predictions : str, optional
        The column(s) or array holding each input, as in :func:`trueprob.io.read_inputs`: a
        name, a glob (``"logit_*"``), a comma list or a list; a Parquet list column holds
        the whole vector. Auto-detected by canonical name when not given.
    n_classes : int, optional
        K; required for top-label inputs (``confidences`` + ``predictions``).
    calibrator : Calibrator, optional
        A fitted calibrator: evaluate its calibrated probabilities instead.
    batch_rows : int
        Rows per batch read (default 65536). Memory grows with it, not with the file.
    n_bins, binning, closed, unit, reduce
        As in :func:`trueprob.evaluate`. ``binning="mass"`` finds the exact equal-mass edges
        first, in two to five extra passes of bounded memory (:class:`QuantileSearch`).
    on_rows : callable, optional
        Called with the number of rows of each batch of the evaluation pass (progress).
    quiet : bool, optional
        ``True``: no progress bar. By default a bar over the rows of each pass ("pass 2:
        equal-mass edges", "evaluating") is drawn on standard error when it is a terminal;
        its total comes from the files' headers and metadata (a spinner for CSV).

    Returns
    -------
    Report
        Equal, up to floating-point rounding, to ``trueprob.evaluate`` on all rows at once
        (SPEC.md's definitions; the formulas are those of :func:`trueprob.evaluate`, e.g.
        ECE = sum_b (W_b / W) |acc_b - conf_b|).

    Examples
    --------
    >>> import tempfile, os, trueprob
    >>> import numpy as np
    >>> path = os.path.join(tempfile.mkdtemp(), "val.npz")
    >>> z = np.array([[2.0, 0.0, 0.0], [0.0, 3.0, 0.0], [1.0, 0.0, 2.0], [0.0, 0.5, 0.0]])
    >>> np.savez(path, logits=z, labels=np.array([0, 1, 0, 2]))
    >>> report = evaluate_path(path, batch_rows=3)
    >>> report.accuracy, round(report.nll, 4)
    (0.5, 0.7591)
    """
    check_unit(unit)
    check_reduce(reduce)
    stats = stats_from_path(
        path, logits=logits, probs=probs, labels=labels, targets=targets, counts=counts,
        sample_weight=sample_weight, confidences=confidences, predictions=predictions,
        n_classes=n_classes, calibrator=calibrator, batch_rows=batch_rows, n_bins=n_bins,
        binning=binning, closed=closed, on_rows=on_rows, quiet=quiet,
    )
    return stats.finalize(unit=unit, reduce=reduce)
