"""`trueprob evaluate FILE`: every metric of a file of model outputs, on stdout."""

from __future__ import annotations

import json
import math
import sys
import warnings
from typing import Any

import click

from trueprob.cli._common import DataError, data_errors, echo_err, field_options, read_fields

FORMATS = ("table", "json", "markdown")
CONVENTION_NAMES = ("torchmetrics", "sklearn", "netcal", "relplot", "kull2019")
_TARGETS = ("labels", "targets", "counts")


def _calibrate(arrays: dict[str, Any], path: str) -> None:
    """Replace the file's logits / probs by the calibrator's log-probabilities (as logits)."""
    from trueprob.calibrators import load

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
@click.option("--unit", type=click.Choice(["nats", "bits"]), default="nats",
              show_default=True, help="Unit of NLL, entropy and KL.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table",
              show_default=True, help="table (terminal), json or markdown, on stdout.")
@click.option("--calibrator", type=click.Path(exists=True, dir_okay=False), default=None,
              help="A calibrator saved as JSON: evaluate its calibrated probabilities.")
@click.option("--n-classes", type=click.IntRange(min=2), default=None,
              help="K, for top-label mode (--confidences/--predictions).")
@click.option("--bootstrap", "n_bootstrap", type=click.IntRange(min=0), default=0,
              show_default=True,
              help="Bootstrap replicates for confidence intervals on every metric (0: none).")
@click.option("--ci", "ci_level", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              default=0.95, show_default=True, help="Coverage of the intervals.")
@click.option("--ci-method", type=click.Choice(["percentile", "bca"]), default="percentile",
              show_default=True, help="Bootstrap interval method.")
@click.option("--test", "run_test", is_flag=True, default=False,
              help="Add p-values for 'this model is calibrated' (consistency resampling for "
                   "ECE and classwise ECE).")
@click.option("--resamples", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Resamples of the --test consistency tests.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the bootstrap and the tests.")
@click.option("--convention", type=click.Choice(sorted(CONVENTION_NAMES)), default=None,
              help="Also report the ECE family as that library or paper computes it.")
@data_errors
def evaluate(file: str, logits: str | None, probs: str | None, labels: str | None,
             targets: str | None, counts: str | None, sample_weight: str | None,
             confidences: str | None, predictions: str | None, n_bins: int, binning: str,
             closed: str, reduce: str, unit: str, fmt: str, calibrator: str | None,
             n_classes: int | None, n_bootstrap: int, ci_level: float, ci_method: str,
             run_test: bool, resamples: int, seed: int, convention: str | None) -> None:
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
    arrays = read_fields(file, names)
    if not any(t in arrays for t in _TARGETS):
        raise DataError(
            f"{file}: no targets found (no array or column named 'labels', 'targets' or "
            f"'counts'); name them with --labels, --targets or --counts"
        )
    if calibrator is not None:
        _calibrate(arrays, calibrator)
    labels_arr = arrays.pop("labels", None)
    common: dict[str, Any] = {"n_bins": n_bins, "binning": binning, "closed": closed,
                              "unit": unit, "reduce": reduce}
    extra: dict[str, Any] = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if n_bootstrap:
            boot = trueprob.bootstrap(labels_arr, **arrays, n_classes=n_classes, **common,
                                      n_replicates=n_bootstrap, level=ci_level,
                                      method=ci_method, random_state=seed)
            report = boot.report
            extra["ci"] = boot.to_dict()
        else:
            report = trueprob.evaluate(labels_arr, **arrays, n_classes=n_classes, **common)
        if run_test:
            extra["p_values"] = _p_values(labels_arr, arrays, n_bins, closed, resamples, seed)
        if convention is not None:
            extra["convention"] = _convention_numbers(convention, labels_arr, arrays, n_bins)
    for w in caught:
        echo_err(f"trueprob: warning: {w.message}")
    if fmt == "json":
        click.echo(json.dumps(report.to_dict() | _clean(extra), indent=2, allow_nan=False))
    elif fmt == "markdown":
        click.echo(report.to_markdown(), nl=False)
        for line in _extra_lines(extra):
            click.echo(f"- {line}")
    else:
        render_table(report, "<stdin>" if file == "-" else file)
        for line in _extra_lines(extra):
            click.echo(line)


def _p_values(labels: Any, arrays: dict[str, Any], n_bins: int, closed: str, resamples: int,
              seed: int) -> dict[str, float]:
    """Consistency-resampling p-values (and SKCE's asymptotic test where available)."""
    import trueprob

    if labels is None or not ("logits" in arrays or "probs" in arrays):
        raise DataError("--test needs hard labels and logits or probabilities")
    scores = {k: arrays[k] for k in ("logits", "probs", "sample_weight") if k in arrays}
    out = {}
    for statistic in ("ece", "classwise_ece"):
        res = trueprob.consistency_test(labels, **scores, statistic=statistic, n_bins=n_bins,
                                        closed=closed, n_resamples=resamples,
                                        random_state=seed)
        out[statistic] = res.p_value
    try:
        from trueprob.metrics.skce import skce
    except ImportError:
        return out
    kw = {k: arrays[k] for k in ("logits", "probs") if k in arrays}
    out["skce"] = float(skce(labels, **kw, estimator="linear").p_value)
    return out


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


def _clean(extra: dict[str, Any]) -> dict[str, Any]:
    """NaN / inf (possible in a degenerate interval) as JSON null / strings."""
    def fix(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: fix(x) for k, x in v.items()}
        if isinstance(v, float) and not math.isfinite(v):
            return None if math.isnan(v) else ("inf" if v > 0 else "-inf")
        return v

    return fix(extra)


def _extra_lines(extra: dict[str, Any]) -> list[str]:
    lines = []
    for name, iv in extra.get("ci", {}).items():
        lines.append(f"{name}: {iv['level']:.0%} interval [{_fmt(iv['low'])}, "
                     f"{_fmt(iv['high'])}] ({iv['method']} bootstrap)")
    for name, p in extra.get("p_values", {}).items():
        lines.append(f"p-value ({name}, H0: calibrated): {p:.4g}")
    conv = extra.get("convention")
    if conv:
        nums = ", ".join(f"{k} {_fmt(v)}" for k, v in conv.items()
                         if k not in ("name", "reproduces"))
        lines.append(f"as {conv['name']} computes it ({conv['reproduces']}): {nums}")
    return lines
