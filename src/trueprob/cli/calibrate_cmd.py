"""`trueprob fit`, `trueprob apply` and `trueprob compare`: recalibration from the command line.

- ``fit``: fit a calibrator (maximum likelihood) on a file and save it as JSON, atomically.
- ``apply``: calibrated log-probabilities of a file, written as ``logits`` in an ``.npz``.
- ``compare``: fit every method on one file, evaluate on another, one table (Guo et al. 2017,
  Table 1 style): NLL, Brier, ECE, classwise ECE and accuracy per method.

Files of top-label outputs (``--confidences``, ``--predictions``) go to
:mod:`trueprob.cli.calibrate_toplabel`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from trueprob._format import fixed
from trueprob.calibrators.by_name import BINARY_METHODS, METHODS, WRAPPERS
from trueprob.calibrators.compare import (
    Candidate,
    columns_of,
    compare_calibrators,
    is_top_label,
    n_classes_of,
)
from trueprob.calibrators.compare import make_calibrator as _make_calibrator
from trueprob.cli._common import (
    DataError,
    about,
    dask_spec,
    data_errors,
    echo_err,
    field_options,
    is_dataset,
    path_exists,
    quiet_option,
    read_fields,
    save_calibrator,
    split_methods,
    stdout_console,
    warnings_to_stderr,
    write_npz,
)
from trueprob.cli.calibrate_tasks import (
    ALL_METHODS,
    apply_task,
    check_task_command,
    fit_task,
    load_for_task,
)
from trueprob.cli.report_tasks import given, task_options
from trueprob.results import json_safe

FORMATS = ("table", "json", "markdown")
_TARGETS = ("labels", "targets", "counts")


# --------------------------------------------------------------------------- helpers


#: The field options of ``trueprob evaluate`` that a calibration set needs.
fields_options = field_options("logits", "probs", "labels", "targets", "counts", "weights",
                               "confidences", "predictions")


def _read_scored(path: str, names: dict[str, str | None], *, need_targets: bool,
                 quiet: bool | None = None, top_label: bool = False) -> dict[str, Any]:
    """Read a file's model outputs (logits or probs; with ``top_label`` also top-label
    confidences and predictions) and, if ``need_targets``, its targets."""
    arrays = read_fields(path, names, quiet=quiet)
    if "logits" not in arrays and "probs" not in arrays and not top_label:
        raise DataError(
            f"{path}: calibrators need logits or probabilities (one per class); the file gives "
            f"only top-label confidences and predictions"
        )
    if need_targets and not any(t in arrays for t in _TARGETS):
        raise DataError(
            f"{path}: no targets found (no array or column named 'labels', 'targets' or "
            f"'counts'); name them with --labels, --targets or --counts"
        )
    return arrays


def _scores(arrays: dict[str, Any]) -> dict[str, Any]:
    return {k: arrays[k] for k in ("logits", "probs") if k in arrays}


def _fit_inputs(arrays: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    keys = ("logits", "probs", "targets", "counts", "sample_weight")
    return arrays.get("labels"), {k: arrays[k] for k in keys if k in arrays}


def make_calibrator(method: str, n_classes: int, multiclass: str) -> tuple[Any, str | None]:
    """:func:`trueprob.calibrators.compare.make_calibrator`, a missing module a usage error."""
    try:
        return _make_calibrator(method, n_classes, multiclass)
    except ModuleNotFoundError as exc:
        module_name = METHODS[method][0]
        if exc.name != module_name:
            raise
        raise click.UsageError(f"method {method!r} is not available in this trueprob "
                               f"({module_name} is missing)") from exc


def _calibrated(calibrator: Any, arrays: dict[str, Any]) -> Any:
    return calibrator.predict_logproba(**_scores(arrays))


def _evaluate(arrays: dict[str, Any], logits: Any = None, **options: Any) -> Any:
    """trueprob.evaluate on the file's targets and weights, with ``logits`` replacing the
    file's scores when given."""
    import trueprob

    scores = _scores(arrays) if logits is None else {"logits": logits}
    extra = {k: arrays[k] for k in ("targets", "counts", "sample_weight") if k in arrays}
    return trueprob.evaluate(arrays.get("labels"), **scores, **extra, **options)


def _check_free(path: str, force: bool) -> None:
    if Path(path).exists() and not force:
        raise click.UsageError(f"{path} exists; pass --force to replace it")


def _refuse_one_vs_rest(multiclass: str) -> None:
    """Top-label outputs have one map, of the confidence: an explicit --multiclass
    one-vs-rest cannot be honoured (the default is not "given")."""
    if multiclass == "one-vs-rest" and given("multiclass"):
        raise click.UsageError("--multiclass one-vs-rest needs one probability per class; "
                               "top-label outputs (--confidences/--predictions) are "
                               "recalibrated top-label")


method_choice = click.Choice(list(ALL_METHODS))
multiclass_option = click.option(
    "--multiclass", type=click.Choice(list(WRAPPERS)), default="one-vs-rest",
    show_default=True,
    help="How a binary method (platt, beta, isotonic, histogram, scaling-binning) is used on "
         "K > 2 classes: one calibrator per class with rows renormalised, or one calibrator "
         "on the top-label confidence.")


# --------------------------------------------------------------------------- fit


@click.command("fit")
@click.argument("file", type=click.Path(allow_dash=True))
@click.option("--method", "-m", type=method_choice, required=True,
              help="The recalibration map, fitted by maximum likelihood.")
@click.option("--output", "-o", type=click.Path(dir_okay=False), required=True,
              help="Where to write the fitted calibrator (JSON).")
@click.option("--force", is_flag=True, help="Replace an existing output file.")
@click.option("--stream", is_flag=True, default=False,
              help="temperature / vector: fit in passes over batches (bounded memory). "
                   "Folders and globs always stream.")
@click.option("--batch-rows", type=click.IntRange(min=1), default=65536, show_default=True,
              help="Rows per batch when streaming.")
@click.option("--dask", "dask_local", default=None, metavar="local[:N]", callback=dask_spec,
              help="temperature / vector: fit on a local Dask cluster (map-reduced sums).")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="temperature / vector: fit on the Dask cluster at ADDRESS.")
@multiclass_option
@fields_options
@quiet_option
@task_options
@data_errors
def fit(file: str, method: str, output: str, force: bool, stream: bool, batch_rows: int,
        dask_local: str | None, scheduler: str | None, multiclass: str,
        logits: str | None, probs: str | None, labels: str | None, targets: str | None,
        counts: str | None, sample_weight: str | None, confidences: str | None,
        predictions: str | None, quiet: bool, task: str, **task_columns: Any) -> None:
    """Fit a calibrator on FILE and save it to OUTPUT (JSON, written atomically).

    Prints one line to stderr: the method and the NLL of FILE before and after (bits per
    row). A binary method on K > 2 classes is fitted one-vs-rest with renormalisation
    (--multiclass top-label for the top-label variant); the line says so. On top-label
    outputs (--confidences, --predictions) a binary method is fitted on the confidence
    (TopLabel) and the line gives the top-label NLL, the log loss of "the prediction is
    right"; temperature, vector, matrix and dirichlet need the whole vector.

    \b
    Examples:
      trueprob fit --method temperature val.npz -o cal.json
      trueprob fit -m isotonic preds.csv --logits 'logit_*' --labels y -o iso.json
      trueprob fit -m isotonic llm.csv --confidences conf --predictions pred --labels y -o c.json
      trueprob fit -m variance-scaling reg.csv --task regression --mean mu --std sd \\
        --labels y -o vs.json
      trueprob fit -m platt tags.csv --task multilabel --logits 'z_*' --labels 'y_*' \\
        -o per_label.json

    --task regression (variance-scaling, isotonic-quantile) and --task multilabel (a binary
    method per label) take the column options of trueprob evaluate; their line gives the
    score before and after in bits.
    """
    check_task_command("fit", task, method)
    _check_free(output, force)
    names = {"logits": logits, "probs": probs, "labels": labels, "targets": targets,
             "counts": counts, "sample_weight": sample_weight, "confidences": confidences,
             "predictions": predictions}
    if not path_exists(file):
        raise click.BadParameter(f"{file!r} does not exist", param_hint="'FILE'")
    if task != "classification":
        fit_task(task, file, method, output, force, quiet)
        return
    distributed = dask_local is not None or scheduler is not None
    if distributed or stream or is_dataset(file):
        if confidences is not None or predictions is not None:
            raise click.UsageError("--confidences/--predictions: a top-label map is fitted in "
                                   "memory on one file (not --stream, --dask, a folder or a "
                                   "glob)")
        vector_names = {k: v for k, v in names.items()
                        if k not in ("confidences", "predictions")}
        _fit_in_passes(file, method, output, force, vector_names, batch_rows, dask_local,
                       scheduler, quiet)
        return
    arrays = _read_scored(file, names, need_targets=True, quiet=quiet, top_label=True)
    if is_top_label(arrays):
        from trueprob.cli.calibrate_toplabel import fit_top_label_file

        _refuse_one_vs_rest(multiclass)

        fit_top_label_file(file, method, output, force, arrays)
        return
    calibrator, note = make_calibrator(method, n_classes_of(arrays), multiclass)
    with about(file), warnings_to_stderr():
        y, inputs = _fit_inputs(arrays)
        before = _evaluate(arrays, unit="bits").nll
        calibrator.fit(y, **inputs)
        after = _evaluate(arrays, _calibrated(calibrator, arrays), unit="bits").nll
    if note is not None:
        echo_err(f"trueprob: {note}")
    save_calibrator(calibrator, output, force=force)
    n = next(iter(_scores(arrays).values())).shape[0]
    echo_err(f"trueprob: fit {method} on {file} ({n} rows): NLL {before:.6f} -> {after:.6f} "
             f"bits; saved {output}")


def fit_in_passes(file: str, method: str, names: dict[str, Any], batch_rows: int, *,
                  dask_local: str | None = None, scheduler: str | None = None,
                  quiet: bool = False) -> Any:
    """Temperature / vector scaling over a file, folder or glob without loading it: exact
    Newton sums map-reduced over batches (or Dask partitions); the data stay where they are."""
    if method not in ("temperature", "vector"):
        raise click.UsageError(f"--method {method} needs the rows in memory; streaming and "
                               f"Dask fits support --method temperature or vector")
    with warnings_to_stderr():
        if dask_local is not None or scheduler is not None:
            import trueprob.dask as tdask
            from trueprob.cli._dask import dask_client

            with dask_client(scheduler=scheduler, local=dask_local) as client:
                fitter = tdask.fit_temperature if method == "temperature" \
                    else tdask.fit_vector_scaling
                return fitter(file, **names, batch_rows=batch_rows, client=client,
                              quiet=quiet)
        from trueprob import streaming

        local: Any = streaming.fit_temperature_path if method == "temperature" \
            else streaming.fit_vector_scaling_path
        return local(file, **names, batch_rows=batch_rows, quiet=quiet)


def _fit_in_passes(file: str, method: str, output: str, force: bool,
                   names: dict[str, Any], batch_rows: int, dask_local: str | None,
                   scheduler: str | None, quiet: bool = False) -> None:
    """:func:`fit_in_passes`, saved to ``output``."""
    calibrator = fit_in_passes(file, method, names, batch_rows, dask_local=dask_local,
                               scheduler=scheduler, quiet=quiet)
    save_calibrator(calibrator, output, force=force)
    detail = f"T = {calibrator.temperature_:.6g}; " if method == "temperature" else ""
    echo_err(f"trueprob: fit {method} on {file} in passes over batches: {detail}saved {output}")


# --------------------------------------------------------------------------- apply


@click.command("apply")
@click.argument("calibrator", type=click.Path(exists=True, dir_okay=False))
@click.argument("file", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@click.option("--output", "-o", type=click.Path(dir_okay=False), required=True,
              help="Where to write the calibrated outputs (.npz).")
@click.option("--force", is_flag=True, help="Replace an existing output file.")
@fields_options
@quiet_option
@task_options
@data_errors
def apply(calibrator: str, file: str, output: str, force: bool, logits: str | None,
          probs: str | None, labels: str | None, targets: str | None, counts: str | None,
          sample_weight: str | None, confidences: str | None, predictions: str | None,
          quiet: bool, task: str, **task_columns: Any) -> None:
    """Apply a saved CALIBRATOR to FILE; write OUTPUT (.npz, atomically).

    OUTPUT holds ``logits``: the calibrated log-probabilities log q'_ik (a valid logit
    vector: softmax gives q' back), plus the file's labels / targets / counts /
    sample_weight when present, unchanged. Evaluate it with ``trueprob evaluate OUTPUT``.
    For top-label outputs (--confidences, --predictions; a TopLabel calibrator) OUTPUT holds
    ``confidences`` (calibrated) and ``predictions`` (unchanged) instead.

    \b
    Example:
      trueprob apply cal.json test.npz -o test_calibrated.npz

    --task regression: OUTPUT holds mean and std (scale, df) after variance scaling, or
    quantiles at 15 levels after isotonic-quantile; --task multilabel: per-label logits
    (log-odds). The line on stderr gives the trueprob evaluate options that read it.
    """
    check_task_command("apply", task)
    if task != "classification":
        apply_task(task, calibrator, file, output, force, quiet)
        return
    import numpy as np

    from trueprob._array import to_numpy

    if Path(output).suffix.lower() != ".npz":
        raise click.UsageError(f"--output must be an .npz file; got {output}")
    _check_free(output, force)
    cal = load_for_task(calibrator, "classification")
    arrays = _read_scored(file, {"logits": logits, "probs": probs, "labels": labels,
                                 "targets": targets, "counts": counts,
                                 "sample_weight": sample_weight, "confidences": confidences,
                                 "predictions": predictions}, need_targets=False,
                          quiet=quiet, top_label=True)
    if is_top_label(arrays):
        from trueprob.cli.calibrate_toplabel import apply_top_label_file

        apply_top_label_file(cal, calibrator, file, output, force, arrays)
        return
    with about(file, calibrator), warnings_to_stderr():
        out = to_numpy(_calibrated(cal, arrays))
    bad = ~np.isfinite(out)
    if bad.any():
        row = int(np.flatnonzero(bad.any(axis=1))[0])
        raise DataError(
            f"{calibrator}: the calibrated log-probabilities are not finite (row {row} is "
            f"{out[row].tolist()}): the calibrator gives probability 0 there (a "
            f"TemperatureScaling with temperature_ = 0, fitted on a separable calibration "
            f"set, or a calibrator fitted with clip=0); refit it on a larger calibration set "
            f"or with clip > 0"
        )
    result: dict[str, Any] = {"logits": out}
    result.update({k: arrays[k] for k in ("labels", "targets", "counts", "sample_weight")
                   if k in arrays})
    write_npz(output, result, force=force)
    echo_err(f"trueprob: applied {type(cal).__name__} to {file} ({out.shape[0]} rows); "
             f"saved {output}")


# --------------------------------------------------------------------------- compare


def _parse_methods(text: str, n_classes: int, multiclass: str) -> list[Candidate] | None:
    """``all`` (every default candidate), or a comma list of METHOD or METHOD/MULTICLASS
    (``isotonic/top-label``); a bare binary METHOD is used as --multiclass says."""
    items = split_methods(text)
    if items is None:
        return None
    out: list[Candidate] = []
    for item, method, how in items:
        if method not in METHODS or (how and how not in WRAPPERS):
            raise click.BadParameter(
                f"unknown method {item!r}; choose from all, {', '.join(METHODS)}, or "
                f"BINARY/one-vs-rest, BINARY/top-label for a binary method "
                f"({', '.join(BINARY_METHODS)})", param_hint="--methods")
        if how and method not in BINARY_METHODS:
            raise click.BadParameter(f"{method} is not a binary method; {item!r} has no "
                                     f"meaning", param_hint="--methods")
        wrap = (how or multiclass) if method in BINARY_METHODS and n_classes > 2 else None
        out.append(Candidate(method, wrap, label=item))
    return list({c.name: c for c in out}.values())


@click.command("compare")
@click.option("--fit", "fit_file", type=click.Path(exists=True, dir_okay=False), required=True,
              help="The calibration set (e.g. a validation split).")
@click.option("--eval", "eval_file", type=click.Path(exists=True, dir_okay=False),
              required=True, help="The evaluation set (e.g. the test split).")
@click.option("--methods", default="all", show_default=True,
              help="Comma-separated methods (METHOD, or METHOD/top-label and "
                   "METHOD/one-vs-rest for a binary method), or 'all': temperature, vector, "
                   "matrix and dirichlet (when K(K+1) parameters are identified by the rows), "
                   "and every binary method both one-vs-rest and top-label.")
@click.option("--unit", type=click.Choice(["bits", "nats"]), default="bits",
              show_default=True,
              help="Unit of the NLL (bits, as in every trueprob command; nats to compare with "
                   "libraries that print nats).")
@click.option("--bins", "n_bins", type=click.IntRange(min=1), default=15, show_default=True,
              help="Equal-width bins of the ECE and classwise ECE.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table",
              show_default=True, help="table (terminal), json or markdown, on stdout.")
@multiclass_option
@fields_options
@quiet_option
@data_errors
def compare(fit_file: str, eval_file: str, methods: str, unit: str, n_bins: int, fmt: str,
            multiclass: str, logits: str | None, probs: str | None, labels: str | None,
            targets: str | None, counts: str | None, sample_weight: str | None,
            confidences: str | None, predictions: str | None, quiet: bool) -> None:
    """Fit each method on --fit, evaluate on --eval: one row per method.

    Rows: "uncalibrated", then each method (fitted by maximum likelihood on --fit). Columns:
    NLL, Brier, ECE (top-label, --bins equal-width bins), classwise ECE (mean over classes)
    and accuracy, all computed by trueprob.evaluate on --eval. The best row (lowest held-out
    NLL among the rows that keep the accuracy within one point) is marked with *; a row that
    moves the accuracy by more is flagged; a method the data cannot identify is listed as
    skipped with the reason. The field options apply to both files. On top-label outputs
    (--confidences, --predictions) the rows are the binary methods on the confidence and the
    columns the top-label NLL and Brier (of "the prediction is right") and the ECE; the
    accuracy, the same in every row, is a note.

    \b
    Example:
      trueprob compare --fit val.npz --eval test.npz --methods temperature,vector,isotonic
    """
    names = {"logits": logits, "probs": probs, "labels": labels, "targets": targets,
             "counts": counts, "sample_weight": sample_weight, "confidences": confidences,
             "predictions": predictions}
    fit_arrays = _read_scored(fit_file, names, need_targets=True, quiet=quiet, top_label=True)
    eval_arrays = _read_scored(eval_file, names, need_targets=True, quiet=quiet,
                               top_label=True)
    if is_top_label(fit_arrays) or is_top_label(eval_arrays):
        from trueprob.cli.calibrate_toplabel import parse_top_label_methods

        _refuse_one_vs_rest(multiclass)

        chosen = parse_top_label_methods(methods)
    else:
        k_fit, k_eval = n_classes_of(fit_arrays), n_classes_of(eval_arrays)
        if k_fit != k_eval:
            raise DataError(f"--fit has K={k_fit} classes but --eval has K={k_eval}")
        chosen = _parse_methods(methods, k_fit, multiclass)
    with warnings_to_stderr():
        try:
            comparison = compare_calibrators(fit_arrays, eval_arrays, chosen, unit=unit,
                                             n_bins=n_bins, quiet=quiet,
                                             names=(fit_file, eval_file))
        except ValueError as exc:
            raise DataError(str(exc)) from exc
    for note in comparison.notes:
        echo_err(f"trueprob: {note}")
    if all(r.skipped for r in comparison.rows[1:]):
        raise DataError("; ".join(f"{r.name} {r.skipped}" for r in comparison.rows[1:]))
    result = {"fit": fit_file, "eval": eval_file} | comparison.to_dict()
    if fmt == "json":
        click.echo(json.dumps(json_safe(result), indent=2, allow_nan=False))
    elif fmt == "markdown":
        click.echo(_markdown(result), nl=False)
    else:
        _table(result)


def _fmt(value: Any, digits: int = 4) -> str:
    return fixed(value, digits)


def _columns(result: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    return columns_of(bool(result.get("top_label")))


def _headings(result: dict[str, Any]) -> list[str]:
    return ["method"] + [f"{h} ({result['unit']})" if f == "nll" else h
                         for f, h in _columns(result)]


def _classes(result: dict[str, Any]) -> str:
    return "top-label outputs" if result.get("top_label") else f"K = {result['n_classes']}"


def _row_name(row: dict[str, Any]) -> str:
    return ("* " if row.get("best") else "") + row["method"]


def _row_notes(result: dict[str, Any]) -> list[str]:
    """The footnotes of a comparison: the best row, flagged rows and skipped rows."""
    lines = []
    best = result.get("best")
    lines.append(f"* best: {best} (lowest held-out NLL among the rows that keep the accuracy "
                 f"within one point)" if best else
                 "no method lowers the held-out NLL without moving the accuracy by more than "
                 "one point")
    for row in result["rows"]:
        for flag in row.get("flags", ()):
            lines.append(f"! {row['method']}: {flag}")
        if row.get("skipped"):
            lines.append(f"- {row['method']} skipped: {row['skipped']}")
    return lines


def _markdown(result: dict[str, Any]) -> str:
    heads = _headings(result)
    lines = [f"Fitted on `{result['fit']}`, evaluated on `{result['eval']}` "
             f"({_classes(result)}; ECE with {result['n_bins']} equal-width bins)", "",
             "| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    for row in result["rows"]:
        if row.get("skipped"):
            continue
        cells = [_row_name(row)] + [_fmt(row[f]) for f, _ in _columns(result)]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines += [f"{line}  " for line in _row_notes(result)]
    return "\n".join(lines) + "\n"


def _table(result: dict[str, Any]) -> None:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=escape(f"fit: {result['fit']}  eval: {result['eval']}  "
                               f"({_classes(result)}, {result['n_bins']} bins)"))
    for i, head in enumerate(_headings(result)):
        table.add_column(head, justify="left" if i == 0 else "right")
    for row in result["rows"]:
        if row.get("skipped"):
            continue
        table.add_row(escape(_row_name(row)), *(_fmt(row[f]) for f, _ in _columns(result)))
    console = stdout_console()
    console.print(table)
    for line in _row_notes(result):
        console.print(escape(line))
