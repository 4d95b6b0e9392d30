"""`trueprob report FILE -o report.html`: the whole story of one file, in one document."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from trueprob.cli._common import (
    DataError,
    about,
    atomic_write,
    data_errors,
    echo_err,
    field_options,
    is_dataset,
    load_calibrator,
    path_exists,
    read_fields,
    warnings_to_stderr,
)
from trueprob.cli.calibrate_cmd import (
    _read_scored,
    fit_in_passes,
    make_calibrator,
    multiclass_option,
)
from trueprob.cli.calibrate_tasks import (
    ALL_METHODS,
    DEFAULT_METHOD,
    check_method,
    fit_task_calibrator,
    load_for_task,
)
from trueprob.cli.report_tasks import (
    TaskOptions,
    check_task_options,
    given,
    task_options,
    task_report,
)

FORMATS = ("html", "markdown", "json")
_TARGETS = ("labels", "targets", "counts")


def _fit_calibrator(path: str, names: dict[str, str | None], method: str,
                    multiclass: str) -> tuple[Any, str, dict[str, Any]]:
    arrays = _read_scored(path, names, need_targets=True)
    scores = arrays["logits"] if "logits" in arrays else arrays["probs"]
    k = 2 if scores.ndim == 1 else int(scores.shape[1])
    calibrator, note = make_calibrator(method, k, multiclass)
    fit_keys = ("logits", "probs", "targets", "counts", "sample_weight")
    try:
        calibrator.fit(arrays.get("labels"), **{k: arrays[k] for k in fit_keys if k in arrays})
    except (ValueError, TypeError) as exc:
        raise DataError(f"{method} could not be fitted on {path}: {exc}") from exc
    if note is not None:
        echo_err(f"trueprob: {note}")
    return calibrator, f"fitted on {path} ({scores.shape[0]} rows)", arrays


@click.command("report")
@click.argument("file", type=click.Path(allow_dash=True))
@click.option("--output", "-o", type=click.Path(dir_okay=False, allow_dash=True),
              required=True, help="Where to write the report (- for standard output).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="html",
              show_default=True,
              help="html: one self-contained file with the diagrams; markdown: the verdict "
                   "and tables, for a pull request; json: the verdict as data (answers q1-q4 "
                   "and what_to_do) with the Reports.")
@click.option("--calibrator", type=click.Path(exists=True, dir_okay=False), default=None,
              help="A saved calibrator (JSON): also report its recalibrated predictions.")
@click.option("--fit", "fit_file", type=click.Path(), default=None,
              help="Fit a calibrator (--method) on this file, folder or glob (e.g. the "
                   "validation split) and also report its recalibrated predictions of FILE; "
                   "for a file, also fit every candidate map on it and recommend the one with "
                   "the lowest log loss on FILE.")
@click.option("--method", "-m", type=click.Choice(list(ALL_METHODS)), default="temperature",
              show_default=True,
              help="The calibrator --fit fits (maximum likelihood). --task regression: "
                   "variance-scaling (default) or isotonic-quantile; --task multilabel: a "
                   "binary method per label (default platt).")
@multiclass_option
@field_options("logits", "probs", "labels", "targets", "counts", "weights", "confidences",
               "predictions")
@click.option("--n-classes", type=click.IntRange(min=2), default=None,
              help="K, for top-label mode (--confidences/--predictions).")
@click.option("--bins", "n_bins", type=click.IntRange(min=1), default=15, show_default=True,
              help="Number of reliability bins B.")
@click.option("--binning", type=click.Choice(["width", "mass"]), default="width",
              show_default=True, help="Equal-width or equal-mass bins.")
@click.option("--closed", type=click.Choice(["right", "left"]), default="right",
              show_default=True, help="Which side of each bin is closed.")
@click.option("--unit", type=click.Choice(["bits", "nats"]), default="bits",
              show_default=True, help="Unit of the log-score quantities.")
@click.option("--replicates", "n_replicates", type=click.IntRange(min=2), default=200,
              show_default=True, help="Bootstrap replicates of the intervals.")
@click.option("--resamples", "n_resamples", type=click.IntRange(min=1), default=1000,
              show_default=True, help="Resamples of the consistency tests.")
@click.option("--level", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              default=0.95, show_default=True, help="Coverage of intervals and bands.")
@click.option("--max-classes", "max_panels", type=click.IntRange(min=1), default=20,
              show_default=True,
              help="Most panels of the classwise grid (beyond: the worst classes).")
@click.option("--image-format", type=click.Choice(["svg", "png"]), default="svg",
              show_default=True, help="How the HTML embeds its figures.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed of the bootstrap and the tests.")
@click.option("--force", is_flag=True, help="Replace an existing output file.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar on stderr.")
@click.option("--stream", is_flag=True, default=False,
              help="Read FILE in batches (bounded memory). Folders and globs always stream.")
@click.option("--batch-rows", type=click.IntRange(min=1), default=65536, show_default=True,
              help="Rows per batch when streaming a file, a folder of files or a glob.")
@task_options
@data_errors
def report(file: str, output: str, fmt: str, calibrator: str | None, fit_file: str | None,
           method: str, multiclass: str, logits: str | None, probs: str | None,
           labels: str | None, targets: str | None, counts: str | None,
           sample_weight: str | None, confidences: str | None, predictions: str | None,
           n_classes: int | None, n_bins: int, binning: str, closed: str, unit: str,
           n_replicates: int, n_resamples: int, level: float, max_panels: int,
           image_format: str, seed: int, force: bool, quiet: bool, stream: bool,
           batch_rows: int, task: str,
           observed: str | None, mean_col: str | None, std_col: str | None,
           scale_col: str | None, df_spec: str | None, distribution: str,
           quantile_cols: str | None, levels: str | None, coverage: str | None,
           n_worst: int) -> None:
    """Write a report on the model outputs in FILE: verdict, tables and diagrams.

    The report has the summary with bootstrap intervals and consistency-test p-values, a
    plain-language verdict, reliability diagrams (binned with intervals, smooth, classwise),
    the log loss split into miscalibration, discrimination and uncertainty, the per-bin and
    per-class tables, the settings and the trueprob version. With --calibrator (a saved
    calibrator) or --fit VAL (fit --method on VAL) it also reports the recalibrated
    predictions of FILE. HTML is one self-contained file (no network, no script); markdown
    holds the verdict and tables; json the verdict as data (``answers``: q1, q2, q3, q4,
    what_to_do). The output is written atomically; the verdict is printed.

    The verdict answers four questions, then says what to do: Q1 are all entries of the
    vector probabilities; Q2 does cross-entropy = maximum likelihood hold beyond one-hot
    labels (soft targets, counts); Q3 is the top label's confidence the probability of being
    right; Q4 how many bits recalibration recovers held out. With --fit VAL (a file), the
    candidate maps (temperature, vector, Dirichlet for K <= 10, top-label isotonic and
    histogram, one-vs-rest ones that keep the accuracy) are fitted on VAL and the one with the
    lowest log loss on FILE is recommended, with its trueprob fit command, when its gain is
    significant.

    A folder of files or a glob (and FILE with --stream) is read in batches of --batch-rows,
    so memory does not grow with the rows: every number comes from fixed-size states filled
    pass by pass (the log-loss split then uses a temperature fitted on all rows; the SKCE is
    left out; the consistency tests cap their resamples at N x R <= 2e9 draws).

    --task multilabel reports per-label probabilities (micro/macro scores, the worst-calibrated
    labels with their reliability diagrams, every label by ECE); --task regression reports
    predictive distributions (NLL, CRPS, the PIT histogram, coverage and quantile
    calibration), with the columns named as in trueprob evaluate.

    \b
    Examples:
      trueprob report test.npz -o report.html
      trueprob report test.npz --fit val.npz -o report.html
      trueprob report test.npz --calibrator cal.json --format markdown -o -
      trueprob report 'logs/*.parquet' --logits 'logit_*' --labels y --fit val/ -o r.html
      trueprob report tags.parquet --task multilabel --logits 'logit_*' --labels 'y_*' -o r.html
      trueprob report reg.npz --task regression --mean mu --std sd --labels y -o r.html
    """
    from trueprob._progress import progress
    from trueprob.analysis import analyze, analyze_path
    from trueprob.report.html import render_html, render_markdown
    from trueprob.report.verdict import render_json, verdict, verdict_data

    check_task_options(task)
    if not path_exists(file):
        raise click.BadParameter(f"{file!r} does not exist", param_hint="'FILE'")
    if fit_file is not None and not path_exists(fit_file):
        raise click.BadParameter(f"{fit_file!r} does not exist", param_hint="'--fit'")
    many = is_dataset(file)
    if calibrator is not None and fit_file is not None:
        raise click.UsageError("pass --calibrator or --fit, not both")
    if fmt == "html":
        try:
            import matplotlib  # noqa: F401
        except ImportError as exc:
            raise DataError("the HTML report draws figures with matplotlib, which is not "
                            "installed; install it with: pip install 'trueprob[plot]' (or "
                            "use --format markdown)") from exc
    to_stdout = output == "-"
    if not to_stdout and Path(output).exists() and not force:
        raise click.UsageError(f"{output} exists; pass --force to replace it")
    if task != "classification":
        if fmt == "json":
            raise click.UsageError("--format json is for --task classification")
        if many or stream:
            raise click.UsageError(f"--task {task} reads one file into memory; --stream, "
                                   f"folders and globs are for --task classification")
        bins = n_bins if task == "multilabel" or given("n_bins") else None
        recalibration = _task_calibration(task, calibrator, fit_file, method, logits, probs,
                                          labels, sample_weight, observed, mean_col, std_col,
                                          scale_col, df_spec, distribution, quantile_cols,
                                          quiet)
        with about(file, calibrator, fit_file):
            done = task_report(TaskOptions(task, file, logits, probs, labels, sample_weight,
                                           observed, mean_col, std_col, scale_col, df_spec,
                                           distribution, quantile_cols, levels, coverage,
                                           n_worst, bins, closed, unit, level),
                               fmt=fmt, image_format=image_format, quiet=quiet,
                               recalibration=recalibration)
        _deliver(done.text, output, fmt, force, done.verdict, done.seconds)
        return
    if given("method"):
        check_method(task, method)
    names: dict[str, Any] = {
        "logits": logits, "probs": probs, "labels": labels, "targets": targets,
        "counts": counts, "sample_weight": sample_weight, "confidences": confidences,
        "predictions": predictions}
    settings: dict[str, Any] = {
        "n_classes": n_classes, "n_bins": n_bins, "binning": binning, "closed": closed,
        "unit": unit, "level": level, "n_replicates": n_replicates,
        "n_resamples": n_resamples, "max_panels": max_panels, "random_state": seed,
        "quiet": quiet}
    if (many or stream) and file == "-":
        raise click.UsageError("--stream reads a file, a folder or a glob, not stdin")
    arrays: dict[str, Any] = {}
    if not (many or stream):
        arrays = read_fields(file, names, quiet=quiet)
        if not any(t in arrays for t in _TARGETS):
            raise DataError(
                f"{file}: no targets found (no array or column named 'labels', 'targets' or "
                f"'counts'); name them with --labels, --targets or --counts"
            )
    if ((calibrator or fit_file) and arrays and "logits" not in arrays
            and "probs" not in arrays):
        raise click.UsageError(
            "--calibrator/--fit: FILE gives only top-label confidences and predictions, which "
            "the report does not recalibrate; compare the top-label maps with trueprob compare "
            "--fit VAL --eval FILE, fit one with trueprob fit -m METHOD VAL (both with the same "
            "--confidences/--predictions), and evaluate it with trueprob evaluate FILE "
            "--calibrator cal.json")
    cal, source, fit_arrays = _calibration(calibrator, fit_file, method, multiclass, names,
                                           batch_rows, quiet)
    with warnings_to_stderr(), about(file, calibrator, fit_file):
        if many or stream:  # bounded memory: fixed-size states filled batch by batch
            analysis = analyze_path(file, **names, calibrator=cal, calibration_source=source,
                                    batch_rows=batch_rows, **settings)
        else:
            analysis = analyze(arrays.pop("labels", None), **arrays, calibrator=cal,
                               calibration_source=source,
                               source="<stdin>" if file == "-" else file,
                               recalibration_set=_candidate_set(fit_arrays, arrays),
                               recalibration_source=fit_file or "", **settings)
        with progress(f"report: writing {fmt}", quiet=quiet):
            text = (render_html(analysis, image_format=image_format) if fmt == "html"
                    else render_json(analysis) if fmt == "json"
                    else render_markdown(analysis))
    for problem in verdict_data(analysis)["contradictions"]:
        echo_err(f"trueprob: warning: the verdict contradicts itself: {problem}")
    _deliver(text, output, fmt, force, verdict(analysis), analysis.seconds)


def _task_calibration(task: str, calibrator: str | None, fit_file: str | None, method: str,
                      logits: str | None, probs: str | None, labels: str | None,
                      sample_weight: str | None, observed: str | None, mean_col: str | None,
                      std_col: str | None, scale_col: str | None, df_spec: str | None,
                      distribution: str, quantile_cols: str | None, quiet: bool
                      ) -> tuple[Any, str] | None:
    """The map of a multi-label or regression report and its description: loaded
    (--calibrator, refused if fitted for another task) or fitted on --fit (one file, the same
    column options as FILE) with --method, or the task's default map when --method is not
    given."""
    if calibrator is None and fit_file is None:
        return None
    if task == "regression" and quantile_cols is not None:
        raise click.UsageError("--calibrator/--fit with --task regression need parametric "
                               "predictions (--mean with --std or --scale), not --quantiles")
    if calibrator is not None:
        return load_for_task(calibrator, task), f"{calibrator} (loaded)"
    assert fit_file is not None
    if is_dataset(fit_file):
        raise click.UsageError(f"--task {task} fits --fit from one file; got {fit_file!r}")
    chosen = method if given("method") else DEFAULT_METHOD[task]
    cal, detail, n = fit_task_calibrator(
        task, fit_file, chosen, logits=logits, probs=probs, labels=labels,
        sample_weight=sample_weight, observed=observed, mean_col=mean_col, std_col=std_col,
        scale_col=scale_col, df_spec=df_spec, distribution=distribution, quiet=quiet)
    echo_err(f"trueprob: fit {chosen} on {fit_file} ({n} rows): {detail}")
    return cal, f"{chosen} fitted on {fit_file} ({n} rows; there: {detail})"


def _candidate_set(fit_arrays: dict[str, Any] | None, arrays: dict[str, Any]
                   ) -> dict[str, Any] | None:
    """The calibration set of the recommendation: --fit's arrays, when FILE gives the same
    kind of scores (logits or probabilities)."""
    if fit_arrays is None:
        return None
    kind = "logits" if "logits" in arrays else "probs" if "probs" in arrays else None
    if kind is None or kind not in fit_arrays:
        return None
    keys = (kind, "labels", "targets", "counts", "sample_weight")
    return {k: fit_arrays[k] for k in keys if k in fit_arrays}


def _calibration(calibrator: str | None, fit_file: str | None, method: str, multiclass: str,
                 names: dict[str, Any], batch_rows: int, quiet: bool
                 ) -> tuple[Any, str, dict[str, Any] | None]:
    """The report's calibrator, where it came from and the arrays it was fitted on (one
    file only): loaded (--calibrator), or fitted on --fit: in passes over batches for a folder
    or glob (temperature and vector scaling), in memory for one file."""
    if calibrator is not None:
        return load_calibrator(calibrator), f"loaded from {calibrator}", None
    if fit_file is None:
        return None, "", None
    fit_names = {k: v for k, v in names.items() if k not in ("confidences", "predictions")}
    if is_dataset(fit_file):
        return (fit_in_passes(fit_file, method, fit_names, batch_rows, quiet=quiet),
                f"fitted on {fit_file} in passes over batches", None)
    with warnings_to_stderr():
        return _fit_calibrator(fit_file, fit_names, method, multiclass)


def _deliver(text: str, output: str, fmt: str, force: bool, verdict: Sequence[str],
             seconds: float) -> None:
    """Write the report to stdout, or atomically to ``output`` and print the verdict."""
    if output == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    with atomic_write(output, force=force) as fh:
        fh.write(text.encode("utf-8"))
    for sentence in verdict:
        click.echo(f"- {sentence}")
    echo_err(f"trueprob: wrote {output} ({fmt}, {len(text.encode('utf-8')) / 1024:.0f} KiB) "
             f"in {seconds:.1f} s of analysis")
