"""`trueprob fit` and `trueprob apply` for ``--task regression`` and ``--task multilabel``.

``trueprob fit`` and ``trueprob apply`` (:mod:`trueprob.cli.calibrate_cmd`) hand these tasks
to :func:`fit_task` and :func:`apply_task`; ``trueprob report --task ... --fit VAL`` fits with
:func:`fit_task_calibrator`. The columns are read by ``read_regression`` /
``read_multilabel`` of :mod:`trueprob.cli.report_tasks`, the same readers as ``trueprob
evaluate`` and ``trueprob report``; the fitting and scoring are the library's
(:mod:`trueprob.regression.recalibration`,
:func:`trueprob.multilabel.calibrators.per_label_calibration`).

- regression: ``variance-scaling`` (:class:`~trueprob.regression.VarianceScaling`) or
  ``isotonic-quantile`` (:class:`~trueprob.regression.IsotonicQuantileRecalibration`), fitted
  on parametric predictions (``--mean`` with ``--std`` or ``--scale``).
- multilabel: :class:`~trueprob.multilabel.PerLabelCalibration` with the binary method named
  by ``--method`` (one map per label).

Both save as the calibrators' plain JSON (``format: trueprob.calibrator``), loadable by
:func:`trueprob.calibrators.load`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from trueprob.calibrators.by_name import METHODS
from trueprob.cli._common import (
    DataError,
    about,
    echo_err,
    is_dataset,
    save_calibrator,
    warnings_to_stderr,
    write_npz,
)
from trueprob.cli.report_tasks import (
    MULTILABEL_ONLY,
    REGRESSION_ONLY,
    read_multilabel,
    read_regression,
    refuse_given,
)
from trueprob.multilabel.calibrators import PER_LABEL_METHODS
from trueprob.regression.recalibration import METHODS as REGRESSION_METHODS
from trueprob.regression.recalibration import RECALIBRATED_LEVELS

#: the --method names each task takes
TASK_METHODS: dict[str, tuple[str, ...]] = {
    "classification": tuple(METHODS),
    "multilabel": PER_LABEL_METHODS,
    "regression": tuple(REGRESSION_METHODS),
}
#: every --method name of ``trueprob fit`` and ``trueprob report``
ALL_METHODS = tuple(dict.fromkeys(m for ms in TASK_METHODS.values() for m in ms))
#: the map ``trueprob report --task ... --fit VAL`` fits when --method is not given
DEFAULT_METHOD = {"regression": "variance-scaling", "multilabel": "platt"}

#: the column options of the tasks (parameter names of the commands)
COLUMNS = ("logits", "probs", "labels", "sample_weight", "observed", "mean_col", "std_col",
           "scale_col", "df_spec", "distribution")
_IN_PASSES = ("stream", "batch_rows", "dask_local", "scheduler")
_NOT_FIT = ("quantile_cols", "levels", "coverage")
#: options of ``trueprob fit`` / ``apply`` that a task refuses when given
REFUSED = {
    "classification": REGRESSION_ONLY + MULTILABEL_ONLY,
    "multilabel": ("targets", "counts", "confidences", "predictions", "multiclass",
                   *_IN_PASSES, *REGRESSION_ONLY,
                   *MULTILABEL_ONLY),
    "regression": ("logits", "probs", "targets", "counts", "confidences", "predictions",
                   "multiclass", *_IN_PASSES, *_NOT_FIT,
                   *MULTILABEL_ONLY),
}


def check_method(task: str, method: str) -> None:
    """Refuse a --method that does not belong to --task, listing those that do."""
    if method not in TASK_METHODS[task]:
        raise click.UsageError(f"--method {method} does not apply to --task {task}; choose "
                               f"from {', '.join(TASK_METHODS[task])}")


def check_task_command(command: str, task: str, method: str | None = None) -> None:
    """``trueprob fit`` / ``apply``: refuse the options given that ``task`` does not take
    (:data:`REFUSED`) and a --method of another task."""
    refuse_given(REFUSED[task], f"trueprob {command} --task {task}")
    if method is not None:
        check_method(task, method)


def calibrator_task(calibrator: Any) -> str:
    """The --task a loaded calibrator was fitted for."""
    from trueprob.multilabel.calibrators import MultilabelCalibrator
    from trueprob.regression.calibrators import RegressionCalibrator

    if isinstance(calibrator, RegressionCalibrator):
        return "regression"
    if isinstance(calibrator, MultilabelCalibrator):
        return "multilabel"
    return "classification"


def load_for_task(path: str, task: str) -> Any:
    """The calibrator saved at ``path``, refused (exit 1, naming the file) when it was fitted
    for another task."""
    from trueprob.calibrators import load

    calibrator = load(path)
    fitted_for = calibrator_task(calibrator)
    if fitted_for != task:
        raise DataError(f"{path}: {type(calibrator).__name__} was fitted for --task "
                        f"{fitted_for}; this command has --task {task} (pass --task "
                        f"{fitted_for} with that task's columns)")
    return calibrator


def _columns(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: params.get(k) for k in COLUMNS}


# --------------------------------------------------------------------------- fit
def fit_task_calibrator(task: str, file: str, method: str, *, logits: str | None,
                        probs: str | None, labels: str | None, sample_weight: str | None,
                        observed: str | None, mean_col: str | None, std_col: str | None,
                        scale_col: str | None, df_spec: str | None, distribution: str,
                        quiet: bool = False) -> tuple[Any, str, int]:
    """Fit ``method`` on ``file``: (the fitted calibrator, its held-in score before -> after
    as one phrase, the rows)."""
    check_method(task, method)
    if task == "regression":
        from trueprob.regression.recalibration import (
            make_regression_calibrator,
            recalibration_scores,
        )

        y, predictive, weights = read_regression(
            file, labels or observed, mean_col, std_col, scale_col, df_spec, distribution,
            None, None, sample_weight, quiet=quiet)
        cal: Any = make_regression_calibrator(method)
        with about(file), warnings_to_stderr():
            cal.fit(y, predictive, sample_weight=weights)
            scores = recalibration_scores(cal, y, predictive, sample_weight=weights)
        detail = scores.line()
        if method == "variance-scaling":
            s = cal.scale_factor_
            detail += f"; scale factor s = {s:.6g} (variance x {s * s:.6g})"
        return cal, detail, scores.n
    if task != "multilabel":
        raise ValueError(f"task must be 'regression' or 'multilabel'; got {task!r}")
    from trueprob.multilabel import evaluate_multilabel
    from trueprob.multilabel.calibrators import per_label_calibration

    y, scores_in, weights = read_multilabel(file, logits, probs, labels, sample_weight,
                                            quiet=quiet)
    cal = per_label_calibration(method)
    with about(file), warnings_to_stderr():
        cal.fit(y, **scores_in, sample_weight=weights)
        before = evaluate_multilabel(y, **scores_in, sample_weight=weights, unit="bits")
        after = evaluate_multilabel(y, logits=cal.predict_logits(**scores_in),
                                    sample_weight=weights, unit="bits")
    detail = (f"mean per-label log loss {before.macro.nll:.6f} -> {after.macro.nll:.6f} bits "
              f"({before.n_labels} labels)")
    return cal, detail, before.n


def fit_task(task: str, file: str, method: str, output: str, force: bool,
             quiet: bool) -> None:
    """``trueprob fit --task regression|multilabel``: fit, save atomically, one stderr line.
    The column options are read from the running command's parameters."""
    ctx = click.get_current_context()
    if is_dataset(file):
        raise click.UsageError(f"--task {task} fits from one file read into memory; got "
                               f"{file!r} (a folder or a glob)")
    cal, detail, n = fit_task_calibrator(task, file, method, **_columns(ctx.params),
                                         quiet=quiet)
    save_calibrator(cal, output, force=force)
    echo_err(f"trueprob: fit {method} on {file} ({n} rows): {detail}; saved {output}")


# --------------------------------------------------------------------------- apply
def _regression_arrays(cal: Any, predictive: Any) -> tuple[dict[str, Any], str]:
    """The recalibrated predictive distribution as arrays, and the options that make
    ``trueprob evaluate --task regression`` read them back."""
    import numpy as np

    from trueprob._array import to_numpy
    from trueprob.regression import QuantileSet
    from trueprob.regression.recalibration import recalibrate

    out = recalibrate(cal, predictive)
    if isinstance(out, QuantileSet):
        levels = ",".join(f"{p:g}" for p in RECALIBRATED_LEVELS)
        return ({"quantiles": np.asarray(out.quantiles, dtype=np.float64),
                 "levels": np.asarray(RECALIBRATED_LEVELS, dtype=np.float64)},
                f"--quantiles quantiles --levels {levels}")
    loc = np.asarray(to_numpy(out.loc), dtype=np.float64)
    n = loc.shape[0]

    def column(v: Any) -> Any:
        v = to_numpy(v) if hasattr(v, "shape") else v
        return np.broadcast_to(np.asarray(v, dtype=np.float64), (n,)).copy()

    if out.family == "gaussian":
        return {"mean": loc, "std": column(out.scale)}, "--mean mean --std std"
    arrays = {"mean": loc, "scale": column(out.scale)}
    if out.family == "laplace":
        return arrays, "--distribution laplace --mean mean --scale scale"
    arrays["df"] = column(out.df)
    return arrays, "--distribution student-t --mean mean --scale scale --df df"


def apply_task(task: str, calibrator: str, file: str, output: str, force: bool,
               quiet: bool) -> None:
    """``trueprob apply --task regression|multilabel``: write the recalibrated outputs of
    ``file`` to ``output`` (.npz, atomically).

    regression: variance scaling writes ``mean`` and ``std`` (``scale``, and ``df`` per row,
    for Laplace and Student-t); isotonic quantile recalibration writes ``quantiles`` (N, 15),
    the recalibrated quantiles F_i^{-1}(R^{-1}(p_j)) at the levels
    :data:`~trueprob.regression.recalibration.RECALIBRATED_LEVELS`, and ``levels``. multilabel:
    ``logits``, the calibrated per-label log-odds log q'_il - log(1 - q'_il) (N, L). Both add
    the file's ``labels`` (observed values / label matrix) and ``sample_weight`` when named.
    The stderr line gives the ``trueprob evaluate`` options that read the output back.
    """
    import numpy as np

    from trueprob._array import to_numpy

    ctx = click.get_current_context()
    if Path(output).suffix.lower() != ".npz":
        raise click.UsageError(f"--output must be an .npz file; got {output}")
    if Path(output).exists() and not force:
        raise click.UsageError(f"{output} exists; pass --force to replace it")
    cal = load_for_task(calibrator, task)
    c = _columns(ctx.params)
    result: dict[str, Any]
    if task == "regression":
        y, predictive, weights = read_regression(
            file, c["labels"] or c["observed"], c["mean_col"], c["std_col"], c["scale_col"],
            c["df_spec"], c["distribution"], None, None, c["sample_weight"], quiet=quiet,
            need_observed=False)
        with about(file, calibrator), warnings_to_stderr():
            result, options = _regression_arrays(cal, predictive)
        n = next(iter(result.values())).shape[0]
    else:
        y, scores, weights = read_multilabel(file, c["logits"], c["probs"], c["labels"],
                                             c["sample_weight"], quiet=quiet,
                                             need_labels=False)
        with about(file, calibrator), warnings_to_stderr():
            z = np.asarray(to_numpy(cal.predict_logits(**scores)), dtype=np.float64)
        bad = ~np.isfinite(z)
        if bad.any():
            row, col = (int(v[0]) for v in np.nonzero(bad))
            raise DataError(f"{calibrator}: the calibrated log-odds are not finite (row {row}, "
                            f"label {col}: {z[row, col]}): its map gives probability 0 or 1 "
                            f"there; refit it on a larger calibration set or with another "
                            f"--method")
        result, options, n = {"logits": z}, "--logits logits", z.shape[0]
    if y is not None:
        result["labels"] = np.asarray(y)
        options += " --labels labels"
    if weights is not None:
        result["sample_weight"] = np.asarray(weights)
        options += " --weights sample_weight"
    write_npz(output, result, force=force)
    echo_err(f"trueprob: applied {type(cal).__name__} to {file} ({n} rows); saved {output}; "
             f"read it with: trueprob evaluate {output} --task {task} {options}")
