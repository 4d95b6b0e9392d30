"""`trueprob evaluate FILE`: every metric of a file of model outputs, on stdout."""

from __future__ import annotations

import math
import sys
import warnings
from typing import Any

import click

from trueprob.cli._common import DataError, data_errors, echo_err

FORMATS = ("table", "json", "markdown")
_TARGETS = ("labels", "targets", "counts")


def _field_option(name: str, field: str, what: str) -> Any:
    return click.option(
        f"--{name}", field, metavar="NAMES", default=None,
        help=f"Array or column(s) holding {what}: a name, a glob or a comma list.",
    )


def _read(path: str, names: dict[str, str | None]) -> dict[str, Any]:
    from trueprob.io import read_inputs

    try:
        return read_inputs(path, **names)
    except ImportError as exc:  # an optional reader (pyarrow, torch) is missing
        raise DataError(str(exc)) from exc


def _register_calibrators() -> None:
    """Import every public calibrator module, so that ``load`` knows each class by name.

    ``trueprob.calibrators.load`` finds classes in a registry that a class joins when its
    module is imported; a fresh process has imported none of them.
    """
    import importlib
    import pkgutil

    import trueprob.calibrators as package

    for info in pkgutil.iter_modules(package.__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{package.__name__}.{info.name}")


def _calibrate(arrays: dict[str, Any], path: str) -> None:
    """Replace the file's logits / probs by the calibrator's log-probabilities (as logits)."""
    from trueprob.calibrators import load

    _register_calibrators()
    calibrator = load(path)
    if "logits" in arrays:
        arrays["logits"] = calibrator.predict_logproba(logits=arrays.pop("logits"))
    elif "probs" in arrays:
        arrays["logits"] = calibrator.predict_logproba(probs=arrays.pop("probs"))
    else:
        raise click.UsageError(
            "--calibrator needs logits or probabilities; the file gives only top-label "
            "confidences and predictions"
        )


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        return f"{value:.{digits}f}" if math.isfinite(value) else str(value)
    return str(value)


def render_table(report: Any, source: str) -> None:
    """Print a report as rich tables on stdout: the summary, then the non-empty bins."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(file=sys.stdout, highlight=False)
    source = escape(source)
    s = report.settings
    console.print(
        f"[bold]{source}[/bold]: {report.n} rows, K = {report.n_classes}, {report.inputs} vs "
        f"{report.targets}; {s.n_bins} {s.binning} bins ({s.closed}-closed)"
    )
    summary = Table()
    summary.add_column("metric")
    summary.add_column("value", justify="right")
    rows = [
        ("accuracy", report.accuracy),
        (f"nll ({report.unit})", report.nll),
        ("brier", report.brier),
        ("ece", report.ece),
        ("mce", report.mce),
        ("rmsce", report.rmsce),
        ("ece_debiased", report.ece_debiased),
        (f"classwise_ece ({s.reduce})", report.classwise_ece),
        ("class_conditional_ece", report.class_conditional_ece),
        ("ks", report.ks),
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


@click.command("evaluate")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@_field_option("logits", "logits", "the logits z (one per class)")
@_field_option("probs", "probs", "the probabilities q (one per class)")
@_field_option("labels", "labels", "the hard labels y")
@_field_option("targets", "targets", "soft labels p (one per class)")
@_field_option("counts", "counts", "annotator counts n (one per class)")
@_field_option("weights", "sample_weight", "row weights w")
@_field_option("confidences", "confidences", "top-label confidences c (with --predictions)")
@_field_option("predictions", "predictions", "predicted classes (with --confidences)")
@click.option("--bins", "n_bins", type=click.IntRange(min=1), default=15, show_default=True,
              help="Number of reliability bins B.")
@click.option("--binning", type=click.Choice(["width", "mass"]), default="width",
              show_default=True, help="Equal-width or equal-mass bins.")
@click.option("--closed", type=click.Choice(["right", "left"]), default="right",
              show_default=True, help="Which side of each bin is closed.")
@click.option("--reduce", type=click.Choice(["mean", "sum"]), default="mean",
              show_default=True, help="How classwise ECE combines classes.")
@click.option("--unit", type=click.Choice(["nats", "bits"]), default="nats",
              show_default=True, help="Unit of NLL, entropy and KL.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table",
              show_default=True, help="table (terminal), json or markdown, on stdout.")
@click.option("--calibrator", type=click.Path(exists=True, dir_okay=False), default=None,
              help="A calibrator saved as JSON: evaluate its calibrated probabilities.")
@click.option("--n-classes", type=click.IntRange(min=2), default=None,
              help="K, for top-label mode (--confidences/--predictions).")
@data_errors
def evaluate(file: str, logits: str | None, probs: str | None, labels: str | None,
             targets: str | None, counts: str | None, sample_weight: str | None,
             confidences: str | None, predictions: str | None, n_bins: int, binning: str,
             closed: str, reduce: str, unit: str, fmt: str, calibrator: str | None,
             n_classes: int | None) -> None:
    """Evaluate the model outputs in FILE: proper scores and calibration errors.

    FILE is .npz, .npy, .csv, .parquet or .pt (or - for an .npz on stdin). Which array or
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
    import trueprob

    names = {"logits": logits, "probs": probs, "labels": labels, "targets": targets,
             "counts": counts, "sample_weight": sample_weight, "confidences": confidences,
             "predictions": predictions}
    arrays = _read(file, names)
    if not any(t in arrays for t in _TARGETS):
        raise DataError(
            f"{file}: no targets found (no array or column named 'labels', 'targets' or "
            f"'counts'); name them with --labels, --targets or --counts"
        )
    if calibrator is not None:
        _calibrate(arrays, calibrator)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = trueprob.evaluate(
            arrays.pop("labels", None), **arrays, n_classes=n_classes, n_bins=n_bins,
            binning=binning, closed=closed, unit=unit, reduce=reduce,
        )
    for w in caught:
        echo_err(f"trueprob: warning: {w.message}")
    if fmt == "json":
        click.echo(report.to_json())
    elif fmt == "markdown":
        click.echo(report.to_markdown(), nl=False)
    else:
        render_table(report, "<stdin>" if file == "-" else file)
