"""`trueprob decompose FILE`: the score split into miscalibration, discrimination, uncertainty."""

from __future__ import annotations

import json

import click

from trueprob._format import fixed
from trueprob.cli._common import (
    DataError,
    about,
    data_errors,
    field_options,
    quiet_option,
    read_fields,
    warnings_to_stderr,
)
from trueprob.results import json_safe


@click.command("decompose")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@field_options("logits", "probs", "labels", "targets", "counts", "weights", "confidences",
               "predictions")
@click.option("--score", type=click.Choice(["log", "brier"]), default="log", show_default=True,
              help="The proper score to decompose.")
@click.option("--estimator", type=click.Choice(["isotonic", "binned", "temperature",
                                                "dirichlet"]),
              default=None,
              help="How the recalibration r = P(Y | q) is estimated. Default: the log loss of "
                   "the whole vector, as every other command splits it (temperature, "
                   "cross-fitted, for K > 2; isotonic for binary scores); isotonic when "
                   "--reduction is given.")
@click.option("--reduction", type=click.Choice(["top_label", "classwise"]), default=None,
              help="For isotonic/binned on multiclass inputs (default top_label).")
@click.option("--bins", "n_bins", type=click.IntRange(min=1), default=15, show_default=True,
              help="Bins of the binned estimator.")
@click.option("--folds", "n_folds", type=click.IntRange(min=2), default=5, show_default=True,
              help="Cross-fitting folds of the temperature/dirichlet estimators.")
@click.option("--unit", type=click.Choice(["bits", "nats"]), default="bits", show_default=True,
              help="Unit of log-score numbers.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the folds.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True)
@quiet_option
@data_errors
def decompose(file: str, logits: str | None, probs: str | None, labels: str | None,
              targets: str | None, counts: str | None, sample_weight: str | None,
              confidences: str | None, predictions: str | None, score: str,
              estimator: str | None, reduction: str | None, n_bins: int, n_folds: int,
              unit: str, seed: int,
              fmt: str, quiet: bool) -> None:
    """Decompose the log or Brier score of FILE: score = MCB - DSC + UNC.

    MCB (miscalibration) is what recalibration would recover, DSC (discrimination) is for the
    log score the mutual information between label and prediction, UNC is the label entropy.
    JSON keys: score, mcb, dsc, unc, unit, estimator (and target, score_name, recalibrated).
    Top-label outputs (--confidences, --predictions) give the top-label decomposition: the
    log (or Brier) score of "the prediction is right" at its confidence, recalibrated by
    isotonic regression (or --estimator binned).

    \b
    Examples:
      trueprob decompose test.npz
      trueprob decompose test.npz --estimator temperature --format json
      trueprob decompose llm.csv --confidences conf --predictions pred --labels y
    """
    import trueprob

    names = {"logits": logits, "probs": probs, "labels": labels, "targets": targets,
             "counts": counts, "sample_weight": sample_weight, "confidences": confidences,
             "predictions": predictions}
    arrays = read_fields(file, names, quiet=quiet)
    if not any(t in arrays for t in ("labels", "targets", "counts")):
        raise DataError(f"{file}: no targets found; name them with --labels, --targets or "
                        f"--counts")
    with about(file), warnings_to_stderr():
        d = trueprob.decompose(arrays.pop("labels", None), **arrays, score=score,
                               estimator=estimator, reduction=reduction, n_bins=n_bins,
                               n_folds=n_folds, unit=unit, random_state=seed)
    out = json_safe(d.to_dict())
    if fmt == "json":
        click.echo(json.dumps(out, indent=2, allow_nan=False))
        return
    u = f" {d.unit}" if d.unit else ""
    what = {"top_label": "of the top label (is the argmax right, given its confidence)",
            "vector": "of the whole predicted distribution",
            "classwise": "one-vs-rest, mean over classes",
            "binary": "of the positive class"}[d.target]
    click.echo(f"{d.score_name} score {what}, {file}; recalibration by {d.estimator}:")
    click.echo(f"  score {fixed(d.score)}{u} = MCB {fixed(d.mcb)}{u} - DSC {fixed(d.dsc)}{u} "
               f"+ UNC {fixed(d.unc)}{u}")
    if d.score_name == "log":
        click.echo(f"  of {fixed(d.score)}{u} per example, {fixed(d.mcb)}{u} are lost to "
                   f"miscalibration; the model resolves {fixed(d.dsc)}{u} of the "
                   f"{fixed(d.unc)}{u} of label uncertainty")
    if d.entropy is not None:
        click.echo(f"  soft targets: cross-entropy = entropy {fixed(d.entropy)}{u} + KL "
                   f"{fixed(d.kl)}{u}")
