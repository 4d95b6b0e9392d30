"""The public functions of :mod:`trueprob.dask`: the report, temperature and vector
scaling over a cluster."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

import trueprob._progress as _progress
from trueprob.core.options import check_binning, check_reduce, check_unit
from trueprob.dask.graphs import _is_dask_array, _Passes, _planned
from trueprob.dask.parts import (
    PARTITION_ROWS,
    SPLIT_EVERY,
    _Settings,
)
from trueprob.dask.tasks import (
    _add,
    _first_task,
    _merge_first,
    _merge_probe,
    _merge_search_parts,
    _merge_states,
    _probe_task,
    _search_task,
    _state_task,
    _temperature_task,
    _vector_task,
)
from trueprob.results import Report
from trueprob.stats.evaluation import EvaluationStats
from trueprob.streaming import (
    BATCH_ROWS,
    QuantileSearch,
    Spec,
    fit_temperature_sums,
    fit_vector_sums,
)


def evaluate(
    data: Any = None,
    /,
    *,
    logits: Any = None,
    probs: Any = None,
    labels: Any = None,
    targets: Any = None,
    counts: Any = None,
    sample_weight: Any = None,
    confidences: Any = None,
    predictions: Any = None,
    n_classes: int | None = None,
    calibrator: Any = None,
    n_bins: int = 15,
    binning: str = "width",
    closed: str = "right",
    unit: str = "nats",
    reduce: str = "mean",
    batch_rows: int = BATCH_ROWS,
    partition_rows: int = PARTITION_ROWS,
    split_every: int = SPLIT_EVERY,
    client: Any = None,
    quiet: bool | None = None,
) -> Report:
    """The :func:`trueprob.evaluate` report of a dataset on a Dask cluster.

    Parameters
    ----------
    data : path, dask DataFrame, dask Array or None
        - a path (a file, a folder of files or a glob, see
          :func:`trueprob.streaming.dataset_files`): the field options name columns or arrays
          (as in :func:`trueprob.io.read_inputs`; auto-detected when not given). Parquet files
          are split into tasks of about ``partition_rows`` rows (whole row groups), each read
          with pyarrow inside its task;
        - a dask DataFrame: the field options name its columns (one per class, a glob such as
          ``"logit_*"``, or one column of lists);
        - the labels as a dask Array (or None with ``targets=`` / ``counts=``): the field
          options are dask arrays with the same rows, as in ``trueprob.evaluate(labels,
          logits=...)``.
    logits, probs, labels, targets, counts, sample_weight, confidences, predictions
        Names (path, DataFrame) or dask arrays (see ``data``).
    n_classes, calibrator, n_bins, binning, closed, unit, reduce
        As in :func:`trueprob.streaming.evaluate_path`. ``binning="mass"`` runs the exact
        quantile search first (a few more map-reduce passes).
    batch_rows : int
        Rows per batch read inside a task (bounded memory per task).
    partition_rows : int
        Rows per task when splitting Parquet files by row groups.
    split_every : int
        Fan-in of the tree that adds the states.
    client : distributed.Client, optional
        Where to run; default: the current client, else dask's default scheduler.
    quiet : bool, optional
        ``True``: no progress bar. By default a bar over the parts whose tasks have finished
        is drawn on standard error when it is a terminal, restarted at each map-reduce
        ("pass 2: equal-mass edges", "evaluating"). It does not change the graph or the
        result.

    Returns
    -------
    Report
        Equal to ``trueprob.evaluate`` on all rows up to floating-point rounding; the same
        bytes whatever the number of workers or a worker lost and its tasks recomputed.

    Examples
    --------
    >>> import numpy as np, dask.array as da, trueprob
    >>> z = np.array([[2.0, 0.0, 0.0], [0.0, 3.0, 0.0], [1.0, 0.0, 2.0], [0.0, 0.5, 0.0]])
    >>> y = np.array([0, 1, 0, 2])
    >>> report = evaluate(da.from_array(y, chunks=2), logits=da.from_array(z, chunks=(2, 3)))
    >>> report.accuracy, round(report.nll, 4)
    (0.5, 0.7591)
    """
    check_unit(unit)
    check_reduce(reduce)
    check_binning(binning)
    plan, fan_in = _planned(
        data, {"logits": logits, "probs": probs, "labels": labels, "targets": targets,
               "counts": counts, "sample_weight": sample_weight, "confidences": confidences,
               "predictions": predictions}, batch_rows, partition_rows, split_every)
    cal = None if calibrator is None else (type(calibrator).__module__, calibrator.to_dict())
    settings = _Settings(n_classes=n_classes, calibrator=cal, n_bins=n_bins, closed=closed)
    EvaluationStats(2, n_bins=n_bins, closed=closed)  # bad settings fail here, not in a task
    with _progress.progress("evaluating", total=len(plan.parts), quiet=quiet) as bar:
        passes = _Passes(plan, fan_in, client, bar)
        last = "evaluating"
        if binning == "mass":
            search = QuantileSearch(n_bins)
            while (step := search.plan()) is not None:
                total, merged = passes.run(_search_task, (settings, step), _merge_search_parts,
                                           f"pass {search.passes + 1}: equal-mass edges")
                search.update(step, plan.rows(merged), total)
            settings = dataclasses.replace(
                settings, edges=tuple(float(e) for e in search.edges()), binning="mass")
            last = "last pass: evaluating"
        blob = passes.run(_state_task, (settings,), _merge_states, last)
    return EvaluationStats.from_bytes(plan.rows(blob)).finalize(unit=unit, reduce=reduce)


def evaluate_path(
    source: Any,
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
    partition_rows: int = PARTITION_ROWS,
    split_every: int = SPLIT_EVERY,
    client: Any = None,
    quiet: bool | None = None,
) -> Report:
    """:func:`trueprob.streaming.evaluate_path` on a Dask cluster: the report of a dataset.

    The arguments of :func:`trueprob.streaming.evaluate_path`, in its order, then the
    cluster's (``partition_rows``, ``split_every``, ``client``; see :func:`evaluate`).
    ``source`` is a path (a file, a folder or a glob) or a dask DataFrame, whose columns the
    field options name; dask arrays go to :func:`evaluate` (labels first, as in
    :func:`trueprob.evaluate`). The result is :func:`evaluate`'s.

    Examples
    --------
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "val.npz")
    >>> z = np.array([[2.0, 0.0, 0.0], [0.0, 3.0, 0.0], [1.0, 0.0, 2.0], [0.0, 0.5, 0.0]])
    >>> np.savez(path, logits=z, labels=np.array([0, 1, 0, 2]))
    >>> report = evaluate_path(path, batch_rows=3, quiet=True)
    >>> report.accuracy, round(report.nll, 4)
    (0.5, 0.7591)
    """
    if source is None or _is_dask_array(source):
        raise TypeError("source must be a path or a dask DataFrame; for dask arrays call "
                        "trueprob.dask.evaluate(labels, logits=...)")
    return evaluate(source, logits=logits, probs=probs, labels=labels, targets=targets,
                    counts=counts, sample_weight=sample_weight, confidences=confidences,
                    predictions=predictions, n_classes=n_classes, calibrator=calibrator,
                    n_bins=n_bins, binning=binning, closed=closed, unit=unit, reduce=reduce,
                    batch_rows=batch_rows, partition_rows=partition_rows,
                    split_every=split_every, client=client, quiet=quiet)


def fit_temperature(
    data: Any = None,
    /,
    *,
    logits: Any = None,
    probs: Any = None,
    labels: Any = None,
    targets: Any = None,
    counts: Any = None,
    sample_weight: Any = None,
    max_iter: int = 50,
    batch_rows: int = BATCH_ROWS,
    partition_rows: int = PARTITION_ROWS,
    split_every: int = SPLIT_EVERY,
    client: Any = None,
    quiet: bool | None = None,
) -> Any:
    """Temperature scaling fitted by maximum likelihood where the data are.

    Minimises f(beta) = (1/W) sum_i w_i [ logsumexp(beta z_i) - beta t_i . z_i ], beta = 1/T,
    by the safeguarded Halley iteration of
    :class:`~trueprob.calibrators.temperature.TemperatureScaling`: one map-reduce for f(1)
    and the degenerate cases, then one per step, each adding the per-part sums of f, f', f''
    and f''' (:func:`trueprob.streaming.temperature_sums`). Only those numbers leave the
    workers. ``data`` and the field options are those of :func:`evaluate`; to avoid
    re-reading the files at every step of a dask DataFrame or Array, persist it first.
    ``quiet`` as in :func:`evaluate` (the bar names the pass: "temperature: Halley pass 3").

    Returns
    -------
    TemperatureScaling
        Fitted; equal to ``TemperatureScaling().fit`` on all rows to machine precision.

    Examples
    --------
    >>> import numpy as np, dask.array as da
    >>> z = np.array([[4.0, 0.0], [0.0, 4.0], [4.0, 0.0], [0.0, 4.0]])
    >>> y = np.array([0, 1, 1, 1])
    >>> ts = fit_temperature(da.from_array(y, chunks=2), logits=da.from_array(z, chunks=2))
    >>> round(ts.temperature_, 6)
    3.640957
    """
    plan, fan_in = _planned(
        data, {"logits": logits, "probs": probs, "labels": labels, "targets": targets,
               "counts": counts, "sample_weight": sample_weight},
        batch_rows, partition_rows, split_every)
    settings = _Settings(purpose="temperature scaling")
    with _progress.progress("temperature", total=len(plan.parts), quiet=quiet) as bar:
        passes = _Passes(plan, fan_in, client, bar)
        kind, k, sums = plan.rows(passes.run(_first_task, (settings,), _merge_first,
                                             "temperature: first pass (T = 1)"))
        halley = 0

        def run_pass(beta: float) -> np.ndarray:
            nonlocal halley
            halley += 1
            return np.asarray(passes.run(_temperature_task, (settings, float(beta)), _add,
                                         f"temperature: Halley pass {halley}"))

        return fit_temperature_sums(sums, run_pass, kind=kind, n_classes=k,
                                    max_iter=max_iter)


def fit_vector_scaling(
    data: Any = None,
    /,
    *,
    logits: Any = None,
    probs: Any = None,
    labels: Any = None,
    targets: Any = None,
    counts: Any = None,
    sample_weight: Any = None,
    reg: str = "l2",
    reg_lambda: float = 0.0,
    reg_mu: float | None = None,
    tol: float = 1e-9,
    max_iter: int = 100,
    batch_rows: int = BATCH_ROWS,
    partition_rows: int = PARTITION_ROWS,
    split_every: int = SPLIT_EVERY,
    client: Any = None,
    quiet: bool | None = None,
) -> Any:
    """Vector scaling (r_i = softmax(w * x_i + b)) fitted by Newton's method where the data
    are: each step is one map-reduce of the per-part NLL, gradient and 2K x 2K Hessian
    (:func:`trueprob.streaming.vector_sums`), solved on the caller
    (:func:`trueprob.streaming.fit_vector_sums`). Penalties as
    :class:`~trueprob.calibrators.scaling.VectorScaling` with a fixed ``reg_lambda``.
    ``data``, the field options and ``quiet`` are those of :func:`evaluate`.

    Returns
    -------
    VectorScaling
        Fitted; equal to ``VectorScaling(...).fit`` on all rows to the solver's tolerance.

    Examples
    --------
    >>> import numpy as np, dask.array as da
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=(2000, 3)) * 2
    >>> y = np.array([rng.choice(3, p=np.exp(r) / np.exp(r).sum()) for r in z])
    >>> vs = fit_vector_scaling(da.from_array(y, chunks=500),
    ...                         logits=da.from_array(3 * z, chunks=(700, 3)))
    >>> np.round(1 / vs.coef_)
    array([3., 3., 3.])
    """

    plan, fan_in = _planned(
        data, {"logits": logits, "probs": probs, "labels": labels, "targets": targets,
               "counts": counts, "sample_weight": sample_weight},
        batch_rows, partition_rows, split_every)
    settings = _Settings(purpose="vector scaling")
    with _progress.progress("vector scaling", total=len(plan.parts), quiet=quiet) as bar:
        passes = _Passes(plan, fan_in, client, bar)
        kind, k = plan.rows(passes.run(_probe_task, (settings,), _merge_probe,
                                       "vector scaling: checking the inputs"))
        newton = 0

        def run_pass(coef: np.ndarray, intercept: np.ndarray) -> np.ndarray:
            nonlocal newton
            newton += 1
            return np.asarray(passes.run(_vector_task, (settings, coef, intercept), _add,
                                         f"vector scaling: Newton pass {newton}"))

        return fit_vector_sums(run_pass, kind=kind, n_classes=k, reg=reg,
                               reg_lambda=reg_lambda, reg_mu=reg_mu, tol=tol,
                               max_iter=max_iter)
