"""`trueprob evaluate FILE`: every metric of a file of model outputs, on stdout."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import click

from trueprob._format import fixed
from trueprob.cli._common import (
    DataError,
    about,
    dask_spec,
    data_errors,
    field_options,
    is_dataset,
    load_calibrator,
    path_exists,
    quiet_option,
    read_fields,
    stdout_console,
    warnings_to_stderr,
)
from trueprob.cli.report_tasks import (
    CLASSIFICATION_ONLY,
    MULTILABEL_ONLY,
    REGRESSION_ONLY,
    parse_floats,
    read_multilabel,
    read_regression,
    refuse_given,
)
from trueprob.inference.intervals import BIAS_CORRECTED, BIASED_FIELDS
from trueprob.results import json_safe

FORMATS = ("table", "json", "markdown")
CONVENTION_NAMES = ("torchmetrics", "sklearn", "netcal", "relplot", "kull2019", "kumar2019")
_TARGETS = ("labels", "targets", "counts")


def _calibrate(arrays: dict[str, Any], path: str) -> None:
    """Replace the file's logits / probs by the calibrator's log-probabilities (as logits), or a
    top-label file's confidences by a TopLabel map's calibrated confidences."""
    from trueprob.calibrators import load
    from trueprob.calibrators.multiclass import TopLabel

    calibrator = load(path)
    if "logits" in arrays:
        arrays["logits"] = calibrator.predict_logproba(logits=arrays.pop("logits"))
    elif "probs" in arrays:
        arrays["logits"] = calibrator.predict_logproba(probs=arrays.pop("probs"))
    elif isinstance(calibrator, TopLabel):  # top-label outputs: the map of the confidence
        arrays["confidences"] = calibrator.predict_confidences(
            confidences=arrays["confidences"], predictions=arrays["predictions"])
        return
    else:
        raise DataError(
            f"{path}: a {type(calibrator).__name__} needs logits or probabilities, and the file "
            f"gives only top-label confidences and predictions (a top-label map, fitted with "
            f"trueprob fit --confidences/--predictions, applies to those)"
        )
    check_calibrated(arrays["logits"], path)


def check_calibrated(logp: Any, path: str) -> None:
    """Refuse non-finite calibrated log-probabilities, blaming the calibrator, not the file's
    logits (which were finite: the reader checked them)."""
    import numpy as np

    from trueprob._array import to_numpy

    out = np.asarray(to_numpy(logp))
    bad = ~np.isfinite(out)
    if bad.any():
        row = int(np.flatnonzero(bad.reshape(out.shape[0], -1).any(axis=1))[0])
        raise DataError(
            f"{path}: the calibrated log-probabilities are not finite (row {row} is "
            f"{out[row].tolist()}): the calibrator gives probability 0 there (a "
            f"TemperatureScaling with temperature_ = 0, fitted on a separable calibration "
            f"set, or a calibrator fitted with clip=0); refit it on a larger calibration set "
            f"or with clip > 0"
        )


def _calibrator_note(path: str | None) -> dict[str, Any]:
    """``{"calibrator": {"path", "class"}}`` when a calibrator was applied (else ``{}``), so
    the output says that the numbers are of the calibrated probabilities."""
    if path is None:
        return {}
    try:
        name = json.loads(Path(path).read_text(encoding="utf-8")).get("class")
    except (OSError, ValueError, AttributeError):
        name = None
    return {"calibrator": {"path": path, "class": name}}


def _fmt(value: Any, digits: int = 4) -> str:
    return fixed(value, digits)


def render_table(report: Any, source: str) -> None:
    """Print a report as rich tables on stdout: the summary, then the non-empty bins."""
    from rich.markup import escape
    from rich.table import Table

    console = stdout_console()
    source = escape(source)
    s = report.settings
    console.print(
        f"[bold]{source}[/bold]: {report.n} rows, K = {report.n_classes}, {report.inputs} vs "
        f"{report.targets}; {s.n_bins} {s.binning} bins ({s.closed}-closed)"
    )
    summary = Table()
    summary.add_column("metric")
    summary.add_column("value", justify="right")
    # with soft targets or counts "accuracy" is the mean target mass at the argmax (the
    # probability that an annotator agrees with the top label), not a share of rows
    accuracy = "accuracy" if report.targets == "labels" else "accuracy (mean target at argmax)"
    rows = [
        (accuracy, report.accuracy),
        (f"nll ({report.unit})", report.nll),
        ("brier", report.brier),
        ("ece", report.ece),
        ("mce", report.mce),
        ("rmsce", report.rmsce),
        ("ece_debiased", report.ece_debiased),
        (f"classwise_ece ({s.reduce})", report.classwise_ece),
        ("class_conditional_ece", report.class_conditional_ece),
        ("ks", report.ks),
        ("smooth_ece", report.smooth_ece),
    ]
    if report.targets != "labels":
        rows += [(f"entropy ({report.unit})", report.entropy), (f"kl ({report.unit})",
                                                                 report.kl)]
    for name, value in rows:
        summary.add_row(name, _fmt(value))
    console.print(summary)

    bins = Table(title="reliability bins (non-empty)")
    for name in ("bin", "weight", "confidence", "accuracy", "gap"):
        bins.add_column(name, justify="left" if name == "bin" else "right")
    left, right = ("(", "]") if s.closed == "right" else ("[", ")")
    for b in report.bins:
        if b.weight > 0:
            bins.add_row(f"{left}{b.lower:.3f}, {b.upper:.3f}{right}", _fmt(b.weight, 1),
                         _fmt(b.confidence), _fmt(b.accuracy), _fmt(b.gap))
    console.print(bins)
    for name, why in report.unavailable.items():
        console.print(f"{name}: not computed ({why})")


#: evaluate's options that only its classification path reads, beyond report's
_CLASSIFICATION_ONLY = (*CLASSIFICATION_ONLY, "class_names", "pos_label", "ignore_index",
                        "n_bootstrap", "ci_level", "ci_method", "run_test", "resamples",
                        "convention", "stream", "batch_rows", "dask_local", "scheduler",
                        "reduce")
#: what each --task does not read: given on the command line, a usage error (not ignored)
_NOT_FOR = {
    "classification": (*REGRESSION_ONLY, *MULTILABEL_ONLY),
    "multilabel": (*_CLASSIFICATION_ONLY, *REGRESSION_ONLY),
    "regression": (*_CLASSIFICATION_ONLY, *MULTILABEL_ONLY, "logits", "probs", "closed",
                   "n_bins"),
}


@click.command("evaluate")
@click.argument("file", type=click.Path(allow_dash=True))
@field_options("logits", "probs", "labels", "targets", "counts", "weights", "confidences",
               "predictions")
@click.option("--bins", "n_bins", type=click.IntRange(min=1), default=15, show_default=True,
              help="Number of reliability bins B.")
@click.option("--binning", type=click.Choice(["width", "mass"]), default="width",
              show_default=True, help="Equal-width or equal-mass bins.")
@click.option("--closed", type=click.Choice(["right", "left"]), default="right",
              show_default=True, help="Which side of each bin is closed.")
@click.option("--reduce", type=click.Choice(["mean", "sum"]), default="mean",
              show_default=True, help="How classwise ECE combines classes.")
@click.option("--unit", type=click.Choice(["bits", "nats"]), default="bits",
              show_default=True,
              help="Unit of NLL, entropy and KL (bits, as in every trueprob command; nats "
                   "to compare with libraries that print nats).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table",
              show_default=True, help="table (terminal), json or markdown, on stdout.")
@click.option("--calibrator", type=click.Path(exists=True, dir_okay=False), default=None,
              help="A calibrator saved as JSON: evaluate its calibrated probabilities.")
@click.option("--n-classes", type=click.IntRange(min=2), default=None,
              help="K, for top-label mode (--confidences/--predictions).")
@click.option("--classes", "class_names", default=None, metavar="A,B,...",
              help="The class of each column, in column order (scikit-learn's labels= / "
                   "classes_), when the labels are names such as cat,dog,eel.")
@click.option("--pos-label", default=None, metavar="LABEL",
              help="Binary (one score per row): the label of the positive class.")
@click.option("--ignore-index", default=None, metavar="LABEL",
              help="Drop the rows whose label is LABEL (torchmetrics' ignore_index, e.g. "
                   "-100).")
@click.option("--bootstrap", "n_bootstrap", type=click.IntRange(min=0), default=0,
              show_default=True,
              help="Bootstrap replicates for confidence intervals on every metric (0: none).")
@click.option("--ci", "ci_level", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              default=0.95, show_default=True, help="Coverage of the intervals.")
@click.option("--ci-method", type=click.Choice(["bias-corrected", "percentile", "bca"]),
              default="bias-corrected", show_default=True,
              help="Bootstrap interval method. bias-corrected: the binned calibration errors "
                   "(biased upward by bin noise) get an interval around their bias-corrected "
                   "estimate and a one-sided upper bound; the other metrics get percentile "
                   "intervals (coverage measured in docs/uncertainty.md).")
@click.option("--test", "run_test", is_flag=True, default=False,
              help="Add p-values for 'this model is calibrated' (consistency resampling for "
                   "ECE and classwise ECE).")
@click.option("--resamples", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Resamples of the --test consistency tests.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the bootstrap and the tests.")
@click.option("--convention", type=click.Choice(sorted(CONVENTION_NAMES)), default=None,
              help="Also report the ECE family as that library or paper computes it.")
@click.option("--task", type=click.Choice(["classification", "multilabel", "regression"]),
              default="classification", show_default=True,
              help="multilabel: --logits/--probs and --labels name one column per label. "
                   "regression: --labels (or --observed) names the observed values.")
@click.option("--observed", default=None, metavar="NAME",
              help="regression: the observed values (alias of --labels).")
@click.option("--mean", "mean_col", default=None, metavar="NAME",
              help="regression: the predictive mean (location).")
@click.option("--std", "std_col", default=None, metavar="NAME",
              help="regression: the predictive standard deviation (Gaussian).")
@click.option("--scale", "scale_col", default=None, metavar="NAME",
              help="regression: the predictive scale (Laplace, Student-t).")
@click.option("--df", "df_spec", default=None, metavar="NAME|VALUE",
              help="regression: Student-t degrees of freedom (a column, or one number > 1).")
@click.option("--distribution", type=click.Choice(["gaussian", "laplace", "student-t"]),
              default="gaussian", show_default=True, help="regression: the predictive family.")
@click.option("--quantiles", "quantile_cols", default=None, metavar="NAMES",
              help="regression: predicted quantiles, one column per level (with --levels).")
@click.option("--levels", default=None, metavar="P1,P2,...",
              help="regression: the levels of --quantiles, increasing in (0, 1).")
@click.option("--coverage", default=None, metavar="P1,P2,...",
              help="regression: nominal central-interval levels (default 0.5,0.8,0.9,0.95).")
@click.option("--worst", "n_worst", type=click.IntRange(min=0), default=5, show_default=True,
              help="multilabel: how many worst-calibrated labels to list.")
@click.option("--stream", is_flag=True, default=False,
              help="Read FILE in batches (bounded memory; no skce; --bootstrap and --test "
                   "also stream). Folders and globs always stream.")
@click.option("--batch-rows", type=click.IntRange(min=1), default=65536, show_default=True,
              help="Rows per batch when streaming a file, a folder of files or a glob.")
@click.option("--dask", "dask_local", default=None, metavar="local[:N]", callback=dask_spec,
              help="Evaluate on a local Dask cluster of N worker processes.")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="Evaluate on the Dask cluster whose scheduler is at ADDRESS.")
@quiet_option
@data_errors
def evaluate(file: str, logits: str | None, probs: str | None, labels: str | None,
             targets: str | None, counts: str | None, sample_weight: str | None,
             confidences: str | None, predictions: str | None, n_bins: int, binning: str,
             closed: str, reduce: str, unit: str, fmt: str, calibrator: str | None,
             n_classes: int | None, class_names: str | None, pos_label: str | None,
             ignore_index: str | None, n_bootstrap: int, ci_level: float, ci_method: str,
             run_test: bool, resamples: int, seed: int, convention: str | None, task: str,
             observed: str | None, mean_col: str | None, std_col: str | None,
             scale_col: str | None, df_spec: str | None, distribution: str,
             quantile_cols: str | None, levels: str | None, coverage: str | None,
             n_worst: int, stream: bool, batch_rows: int, dask_local: str | None,
             scheduler: str | None, quiet: bool) -> None:
    """Evaluate the model outputs in FILE: proper scores and calibration errors.

    FILE is .npz, .npy, .csv, .parquet or .pt (or - for an .npz on stdin), or a folder or a
    glob of such files, streamed in batches of --batch-rows (memory does not grow with the
    number of rows; --bootstrap and --test stream too, --convention reads one file into
    memory). Which array or
    column is which comes from the options, or from the canonical names (logits, probs,
    labels, targets, counts, sample_weight, confidences + predictions; in tables also
    logit_* / prob_* columns). A glob such as 'logit_*' takes its matches in natural order
    (logit_2 before logit_10). Values are never used to guess logits from probabilities.

    \b
    Examples:
      trueprob evaluate val.npz
      trueprob evaluate preds.parquet --logits 'logit_*' --labels y --format json
      trueprob evaluate test.npz --calibrator cal.json --unit bits
    """

    refuse_given(_NOT_FOR[task], f"trueprob evaluate --task {task}")
    if not path_exists(file):
        raise click.BadParameter(f"{file!r} does not exist", param_hint="'FILE'")
    if task == "regression":
        _regression(file, labels or observed, mean_col, std_col, scale_col, df_spec,
                    distribution, quantile_cols, levels, coverage, sample_weight, unit, fmt,
                    quiet, calibrator)
        return
    if task == "multilabel":
        _multilabel(file, logits, probs, labels, sample_weight, n_bins, closed, unit, n_worst,
                    fmt, quiet, calibrator)
        return
    names = {"logits": logits, "probs": probs, "labels": labels, "targets": targets,
             "counts": counts, "sample_weight": sample_weight, "confidences": confidences,
             "predictions": predictions}
    in_memory = bool(convention)
    label_opts = {"--classes": class_names, "--pos-label": pos_label,
                  "--ignore-index": ignore_index}
    given_opts = [k for k, v in label_opts.items() if v is not None]
    if given_opts and (dask_local is not None or scheduler is not None or stream
                       or is_dataset(file)):
        raise click.UsageError(f"{', '.join(given_opts)}: for one file read in memory (not "
                               f"--stream, --dask, a folder or a glob)")
    if dask_local is not None or scheduler is not None:
        if in_memory or n_bootstrap or run_test:
            raise click.UsageError("--dask/--scheduler evaluate the report only; "
                                   "--bootstrap, --test and --convention need one process")
        report = _evaluate_dask(file, names, dask_local, scheduler, n_classes, calibrator,
                                batch_rows, n_bins, binning, closed, unit, reduce, quiet)
        _print(report, _calibrator_note(calibrator), fmt, file)
        return
    many = is_dataset(file)
    if (many or stream) and not in_memory:
        # bounded memory: one batch at a time, for a file, a folder of files or a glob
        if file == "-":
            raise click.UsageError("--stream reads a file, a folder or a glob, not stdin")
        streamed: dict[str, Any] = {"skce": None, **_calibrator_note(calibrator)}
        if n_bootstrap:
            report, streamed["ci"] = _bootstrap_stream(
                file, names, n_classes, calibrator, batch_rows, n_bins, binning, closed,
                unit, reduce, n_bootstrap, ci_level, ci_method, seed, quiet)
        else:
            report = _evaluate_stream(file, names, n_classes, calibrator, batch_rows, n_bins,
                                      binning, closed, unit, reduce, quiet)
        if run_test:
            streamed["p_values"] = _p_values_stream(file, names, calibrator, batch_rows,
                                                    n_bins, closed, resamples, seed, quiet)
        _print(report, streamed, fmt, file)
        return
    if many:
        raise DataError(f"{file}: --convention needs one file (not a folder or a glob)")
    arrays = read_fields(file, names, quiet=quiet)
    if not any(t in arrays for t in _TARGETS):
        raise DataError(
            f"{file}: no targets found (no array or column named 'labels', 'targets' or "
            f"'counts'); name them with --labels, --targets or --counts"
        )
    with about(file, calibrator):
        report, extra = _evaluate_in_memory(
            arrays, calibrator, given_opts, class_names, pos_label, ignore_index, n_classes,
            n_bins, binning, closed, unit, reduce, n_bootstrap, ci_level, ci_method, seed,
            run_test, resamples, convention, quiet)
    _print(report, extra, fmt, file)


def _evaluate_in_memory(arrays: dict[str, Any], calibrator: str | None, given_opts: list[str],
                        class_names: str | None, pos_label: str | None,
                        ignore_index: str | None, n_classes: int | None, n_bins: int,
                        binning: str, closed: str, unit: str, reduce: str, n_bootstrap: int,
                        ci_level: float, ci_method: str, seed: int, run_test: bool,
                        resamples: int, convention: str | None,
                        quiet: bool) -> tuple[Any, dict[str, Any]]:
    """The report of one file read in memory, and the extra numbers the options ask for."""
    import trueprob

    if calibrator is not None:
        _calibrate(arrays, calibrator)
    labels_arr = arrays.pop("labels", None)
    if given_opts:
        labels_arr, n_classes = _encode_labels(labels_arr, arrays, class_names, pos_label,
                                               ignore_index, n_classes)
    common: dict[str, Any] = {"n_bins": n_bins, "binning": binning, "closed": closed,
                              "unit": unit, "reduce": reduce}
    extra: dict[str, Any] = _calibrator_note(calibrator)
    with warnings_to_stderr():
        if n_bootstrap:
            boot = trueprob.bootstrap(labels_arr, **arrays, n_classes=n_classes, **common,
                                      n_replicates=n_bootstrap, level=ci_level,
                                      method=ci_method, random_state=seed, quiet=quiet)
            report = boot.report
            extra["ci"] = boot.to_dict()
        else:
            report = trueprob.evaluate(labels_arr, **arrays, n_classes=n_classes, **common)
        if run_test:
            extra["p_values"] = _p_values(labels_arr, arrays, n_bins, closed, resamples, seed,
                                          quiet, n_classes)
        if convention is not None:
            extra["convention"] = _convention_numbers(convention, labels_arr, arrays, n_bins)
        extra["skce"] = _skce(labels_arr, arrays, seed)
    return report, extra


def _label_value(text: str, labels: Any, option: str) -> Any:
    """A label typed on the command line, in the type of the file's labels."""
    kind = getattr(getattr(labels, "dtype", None), "kind", "U")
    try:
        if kind in "iu":
            return int(text)
        if kind == "f":
            return float(text)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a number, but the file's labels are "
                                 f"numbers", param_hint=f"'{option}'") from None
    return text


def _encode_labels(labels: Any, arrays: dict[str, Any], class_names: str | None,
                   pos_label: str | None, ignore_index: str | None,
                   n_classes: int | None) -> tuple[Any, int | None]:
    """--classes / --pos-label / --ignore-index: labels as names -> class indices, in place
    of the file's labels; ignored rows dropped from every array (see
    :func:`trueprob._validation.encode_labels`)."""
    from trueprob._validation import encode_labels

    if labels is None:
        raise click.UsageError("--classes, --pos-label and --ignore-index apply to hard "
                               "labels (--labels)")
    classes = None
    if class_names is not None:
        classes = [_label_value(c.strip(), labels, "--classes")
                   for c in class_names.split(",")]
    rows: dict[str, Any] = dict(arrays)
    rows["n_classes"] = n_classes
    new_labels, rows = encode_labels(
        labels, rows, classes=classes,
        pos_label=None if pos_label is None else _label_value(pos_label, labels,
                                                              "--pos-label"),
        ignore_index=None if ignore_index is None else _label_value(ignore_index, labels,
                                                                    "--ignore-index"))
    n_classes = rows.pop("n_classes")  # type: ignore[assignment]
    arrays.update(rows)
    return new_labels, n_classes


def _print(report: Any, extra: dict[str, Any], fmt: str, file: str) -> None:
    if fmt == "json":
        click.echo(json.dumps(report.to_dict() | json_safe(extra), indent=2, allow_nan=False))
    elif fmt == "markdown":
        click.echo(report.to_markdown(), nl=False)
        for line in _extra_lines({k: v for k, v in extra.items() if k != "skce"}):
            click.echo(f"- {line}")
    else:
        render_table(report, "<stdin>" if file == "-" else file)
        for line in _extra_lines(extra):
            click.echo(line)


def _evaluate_stream(file: str, names: dict[str, Any], n_classes: int | None,
                     calibrator: str | None, batch_rows: int, n_bins: int, binning: str,
                     closed: str, unit: str, reduce: str, quiet: bool = False) -> Any:
    from trueprob.streaming import evaluate_path

    with warnings_to_stderr():
        return evaluate_path(file, **names, n_classes=n_classes,
                             calibrator=load_calibrator(calibrator), batch_rows=batch_rows,
                             n_bins=n_bins, binning=binning, closed=closed, unit=unit,
                             reduce=reduce, quiet=quiet)


def _bootstrap_stream(file: str, names: dict[str, Any], n_classes: int | None,
                      calibrator: str | None, batch_rows: int, n_bins: int, binning: str,
                      closed: str, unit: str, reduce: str, n_bootstrap: int, ci_level: float,
                      ci_method: str, seed: int, quiet: bool) -> tuple[Any, dict[str, Any]]:
    """The report and its intervals from one streamed pass (blocked states)."""
    from trueprob.streaming import bootstrap_path

    with warnings_to_stderr():
        boot = bootstrap_path(file, **names, n_classes=n_classes,
                              calibrator=load_calibrator(calibrator), batch_rows=batch_rows,
                              n_bins=n_bins, binning=binning, closed=closed, unit=unit,
                              reduce=reduce, n_replicates=n_bootstrap, level=ci_level,
                              method=ci_method, random_state=seed, quiet=quiet)
    return boot.report, boot.to_dict()


def _p_values_stream(file: str, names: dict[str, Any], calibrator: str | None,
                     batch_rows: int, n_bins: int, closed: str, resamples: int, seed: int,
                     quiet: bool) -> dict[str, float]:
    """Consistency-resampling p-values of a streamed dataset (no SKCE: its estimators pair
    rows in a random order of all rows)."""
    from trueprob.streaming import consistency_test_path

    fields = {k: names[k] for k in ("logits", "probs", "labels", "sample_weight")}
    if any(names.get(k) is not None for k in ("targets", "counts", "confidences")):
        raise DataError("--test needs hard labels and logits or probabilities")
    cal = load_calibrator(calibrator)
    return {statistic: consistency_test_path(file, **fields, calibrator=cal,
                                             batch_rows=batch_rows, statistic=statistic,
                                             n_bins=n_bins, closed=closed,
                                             n_resamples=resamples, random_state=seed,
                                             quiet=quiet).p_value
            for statistic in ("ece", "classwise_ece")}


def _evaluate_dask(file: str, names: dict[str, Any], dask_local: str | None,
                   scheduler: str | None, n_classes: int | None, calibrator: str | None,
                   batch_rows: int, n_bins: int, binning: str, closed: str, unit: str,
                   reduce: str, quiet: bool = False) -> Any:
    import trueprob.dask as tdask
    from trueprob.cli._dask import dask_client

    with dask_client(scheduler=scheduler, local=dask_local) as client:
        return tdask.evaluate(file, **names, n_classes=n_classes,
                              calibrator=load_calibrator(calibrator), batch_rows=batch_rows,
                              n_bins=n_bins, binning=binning, closed=closed, unit=unit,
                              reduce=reduce, client=client, quiet=quiet)


def _p_values(labels: Any, arrays: dict[str, Any], n_bins: int, closed: str, resamples: int,
              seed: int, quiet: bool = False, n_classes: int | None = None) -> dict[str, float]:
    """Consistency-resampling p-values (and SKCE's asymptotic test where available)."""
    import trueprob

    if labels is None:
        raise DataError("--test needs hard labels (labels drawn from the predictions are "
                        "compared with them)")
    top_label = "logits" not in arrays and "probs" not in arrays
    keys = ("confidences", "predictions", "sample_weight") if top_label else \
        ("logits", "probs", "sample_weight")
    scores = {k: arrays[k] for k in keys if k in arrays}
    out = {}
    # top-label outputs carry what the top-label test needs (c_i and the prediction), not
    # the classwise one's whole vectors
    for statistic in ("ece",) if top_label else ("ece", "classwise_ece"):
        res = trueprob.consistency_test(labels, **scores, n_classes=n_classes,
                                        statistic=statistic, n_bins=n_bins, closed=closed,
                                        n_resamples=resamples, random_state=seed, quiet=quiet)
        out[statistic] = res.p_value
    whole = _skce(labels, arrays, seed)
    if whole is not None:
        out["skce"] = float(whole["p_value"])
    return out


def _skce(labels: Any, arrays: dict[str, Any], seed: int) -> dict[str, Any] | None:
    """Whole-vector calibration: :func:`trueprob.metrics.skce.whole_vector_test` (the block
    estimator and its normal test, as in ``trueprob report``)."""
    from trueprob.metrics.skce import whole_vector_test

    if "logits" not in arrays and "probs" not in arrays:
        return None  # top-label confidences only: the whole vector is needed
    if "sample_weight" in arrays:
        return None  # the SKCE estimators are unweighted
    scores = arrays["logits"] if "logits" in arrays else arrays["probs"]
    if len(scores) < 4:
        return None  # the block estimator needs two blocks of two rows
    kw = {k: arrays[k] for k in ("logits", "probs", "targets", "counts") if k in arrays}
    res = whole_vector_test(labels, **kw, random_state=seed)
    return {"estimate": res.estimate, "std_error": res.std_error, "p_value": res.p_value,
            "estimator": res.estimator, "bandwidth": res.bandwidth}


def _convention_numbers(convention: str, labels: Any, arrays: dict[str, Any],
                        n_bins: int) -> dict[str, Any]:
    """The ECE family as the named library computes it (what that library offers)."""
    from trueprob.metrics.conventions import CONVENTIONS, calibration_error

    if labels is None:
        raise DataError(f"--convention {convention} needs hard labels")
    if "sample_weight" in arrays:
        raise DataError(f"--convention {convention}: the library takes no weights")
    rules = CONVENTIONS[convention]
    kw = {k: arrays[k] for k in ("logits", "probs", "confidences", "predictions")
          if k in arrays}
    out: dict[str, Any] = {"name": convention, "reproduces": rules.reproduces}
    if "top_label" in rules.kinds:
        for key, norm in (("ece", "l1"), ("rmsce", "l2"), ("mce", "max")):
            if norm in rules.norms:
                out[key] = calibration_error(labels, **kw, convention=convention,
                                             n_bins=n_bins, kind="top_label", norm=norm)
    if "classwise" in rules.kinds and "confidences" not in kw:
        out["classwise_ece"] = calibration_error(labels, **kw, convention=convention,
                                                 n_bins=n_bins, kind="classwise")
    return out


def _extra_lines(extra: dict[str, Any]) -> list[str]:
    lines = []
    cal = extra.get("calibrator")
    if cal:
        what = f" ({cal['class']})" if cal.get("class") else ""
        lines.append(f"calibrated: every number above is of the probabilities after the "
                     f"calibrator {cal['path']}{what}")

    def sig(v: Any) -> str:  # 4 significant digits: a classwise ECE can be 0.002
        return _fmt(v) if not isinstance(v, float) or not math.isfinite(v) else f"{v:.4g}"

    for name, iv in extra.get("ci", {}).items():
        line = (f"{name}: {sig(iv['estimate'])}, {iv['level']:.0%} interval "
                f"[{sig(iv['low'])}, {sig(iv['high'])}]")
        if iv["method"] == "upper bound":
            line = (f"{name} (bias-corrected): at most {sig(iv['upper'])} with "
                    f"{iv['level']:.0%} confidence, one-sided (estimate "
                    f"{sig(iv['estimate'])}; two-sided {iv['level']:.0%} interval "
                    f"[0, {sig(iv['high'])}])")
        elif iv["method"] in BIAS_CORRECTED:
            line = (f"{name} (bias-corrected): {sig(iv['estimate'])}, {iv['level']:.0%} "
                    f"interval [{sig(iv['low'])}, {sig(iv['high'])}], at most "
                    f"{sig(iv['upper'])} with {iv['level']:.0%} confidence")
        lines.append(f"{line} ({iv['method']} bootstrap)")
    plain = [name for name, iv in extra.get("ci", {}).items()
             if name in BIASED_FIELDS and iv["method"] in ("percentile", "bca")]
    if plain:
        lines.append(f"note: {', '.join(plain)}: {extra['ci'][plain[0]]['method']} intervals "
                     f"of the binned calibration errors sit around the plug-in value, which bin "
                     f"noise biases upward: they cover a calibrated model's true 0 almost never "
                     f"(docs/uncertainty.md); the default --ci-method bias-corrected does")
    for name, p in extra.get("p_values", {}).items():
        lines.append(f"p-value ({name}; H0: labels drawn from the predicted distribution): "
                     f"{p:.4g}")
    sk = extra.get("skce")
    if sk:
        lines.append(f"skce (whole vector, {sk['estimator']} estimator): {sk['estimate']:.4g} "
                     f"± {sk['std_error']:.2g}, p-value {sk['p_value']:.4g}")
    conv = extra.get("convention")
    if conv:
        nums = ", ".join(f"{k} {_fmt(v)}" for k, v in conv.items()
                         if k not in ("name", "reproduces"))
        lines.append(f"as {conv['name']} computes it ({conv['reproduces']}): {nums}")
    return lines


def _by(calibrator: str | None) -> str:
    return "" if calibrator is None else f", recalibrated by {calibrator}"


def _emit(out: dict[str, Any], fmt: str, title: str) -> None:
    """JSON, or a flat key/value listing (table and markdown) of the scalar results."""
    if fmt == "json":
        click.echo(json.dumps(json_safe(out), indent=2, allow_nan=False))
        return
    scalars = [(k, v) for k, v in out.items() if isinstance(v, (int, float)) or v is None]
    if fmt == "markdown":
        click.echo(f"**{title}**\n\n| metric | value |\n|---|---|")
        for k, v in scalars:
            click.echo(f"| {k} | {_fmt(v)} |")
        return
    click.echo(title)
    for k, v in scalars:
        click.echo(f"  {k:28s} {_fmt(v)}")
    for k, v in out.items():
        if isinstance(v, dict) and all(isinstance(x, (int, float)) for x in v.values()):
            click.echo(f"  {k}: " + ", ".join(f"{a} {_fmt(b)}" for a, b in v.items()))


def _regression(file: str, observed: str | None, mean_col: str | None, std_col: str | None,
                scale_col: str | None, df_spec: str | None, distribution: str,
                quantile_cols: str | None, levels: str | None, coverage: str | None,
                sample_weight: str | None, unit: str, fmt: str, quiet: bool = False,
                calibrator: str | None = None) -> None:
    """``--task regression``: NLL, CRPS, PIT and coverage of predictive distributions (of
    the recalibrated distributions with ``--calibrator``: variance scaling's rescaled ones,
    isotonic quantile recalibration's quantiles at its 15 levels)."""
    from trueprob.cli.calibrate_tasks import load_for_task
    from trueprob.regression import evaluate_regression
    from trueprob.regression.recalibration import recalibrate

    cal = None if calibrator is None else load_for_task(calibrator, "regression")
    y, predictive, weights = read_regression(file, observed, mean_col, std_col, scale_col,
                                             df_spec, distribution, quantile_cols, levels,
                                             sample_weight, quiet=quiet)
    levels_of = parse_floats(coverage, "--coverage")
    with about(file, calibrator):
        if cal is not None:
            predictive = recalibrate(cal, predictive)
        report = evaluate_regression(y, predictive, sample_weight=weights,
                                     coverage_levels=levels_of, unit=unit)
    _emit(report.to_dict() | _calibrator_note(calibrator), fmt,
          f"trueprob regression report of {file}" + _by(calibrator))


def _multilabel(file: str, logits: str | None, probs: str | None, labels: str | None,
                sample_weight: str | None, n_bins: int, closed: str, unit: str, n_worst: int,
                fmt: str, quiet: bool = False, calibrator: str | None = None) -> None:
    """``--task multilabel``: per-label BCE, Brier and ECE with micro/macro aggregates (of
    the per-label calibrated log-odds with ``--calibrator``)."""
    from trueprob.cli.calibrate_tasks import load_for_task
    from trueprob.multilabel import evaluate_multilabel

    cal = None if calibrator is None else load_for_task(calibrator, "multilabel")
    y, scores, weights = read_multilabel(file, logits, probs, labels, sample_weight,
                                         quiet=quiet)
    with about(file, calibrator):
        if cal is not None:
            scores = {"logits": cal.predict_logits(**scores)}
        report = evaluate_multilabel(y, **scores, sample_weight=weights, n_bins=n_bins,
                                     closed=closed, unit=unit, n_worst=n_worst)
    _emit(report.to_dict() | _calibrator_note(calibrator), fmt,
          f"trueprob multi-label report of {file}" + _by(calibrator))
