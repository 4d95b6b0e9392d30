"""`trueprob demo`: train an over-confident network on the digits, write its logits, evaluate."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from trueprob.cli._common import DataError, data_errors, echo_err

if TYPE_CHECKING:
    from trueprob.results import Report

#: the summary lines of the test split: (label, Report attribute)
#: the demo's reliability bins (its confidences crowd near 1: see the comment in demo())
DEMO_BINNING = "mass"

SUMMARY = (
    ("accuracy", "accuracy"),
    ("nll (bits)", "nll"),
    ("brier", "brier"),
    ("ece", "ece"),
    ("mce", "mce"),
    ("rmsce", "rmsce"),
    ("classwise_ece", "classwise_ece"),
    ("ks", "ks"),
)


def _mean_confidence(report: Report) -> float:
    """(1/W) sum_b W_b conf_b over the non-empty bins: the weighted mean of c_i."""
    bins = [b for b in report.bins if b.weight > 0]
    return sum(b.weight * b.confidence for b in bins) / report.weight


@click.command("demo")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="trueprob-demo",
              show_default=True,
              help="Folder for val.npz, test.npz, cal.json and report.html.")
@click.option("--force", is_flag=True, help="Replace the demo's files if they exist.")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True,
              help="Seed of the data split and the network's initial weights.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar on stderr.")
@click.pass_context
@data_errors
def demo(ctx: click.Context, out_dir: str, force: bool, seed: int, quiet: bool) -> None:
    """Train a small network on scikit-learn's digits, show it is over-confident, fix it.

    An MLP with one hidden layer is trained by maximum likelihood (cross-entropy) until it
    fits its training images perfectly; on new images it is over-confident. The logits and
    labels of a validation and a test split are written to OUT/val.npz and OUT/test.npz and
    the test split is evaluated; then temperature scaling is fitted on the validation split
    (OUT/cal.json) and the report on the test split, before and after, is written to
    OUT/report.html. Needs scikit-learn (pip install 'trueprob[demo]') and, for the HTML
    report, matplotlib (pip install 'trueprob[plot]'; without it OUT/report.md is written).
    """
    import trueprob
    from trueprob._progress import progress
    from trueprob.demo import (
        demo_files,
        own_outputs,
        record_outputs,
        train_demo_model,
        write_demo_files,
        write_demo_report,
    )

    files = demo_files(out_dir)
    outputs = [files.val, files.test, files.calibrator, files.report, files.markdown]
    if not force:
        # a re-run replaces the demo's own earlier outputs (unchanged since, by their
        # recorded hashes); any other file is the user's and is kept
        own = own_outputs(out_dir)
        for path in outputs:
            if path.exists() and path not in own:
                raise click.UsageError(f"{path} exists; pass --force to replace it")
        force = True
    echo_err(f"trueprob demo: training a network on scikit-learn's digits (seed {seed}) ...")
    try:
        with progress("demo: training the network", quiet=quiet):
            data = train_demo_model(seed)
    except ImportError as exc:
        raise DataError(str(exc)) from exc
    write_demo_files(data, out_dir, force=force)
    # equal-mass bins: the network puts almost every test row in the top equal-width bin (and
    # most at exactly 1.0), which would leave the other bins with a handful of rows each
    report = trueprob.evaluate(data.test_labels, logits=data.test_logits, unit="bits",
                               binning=DEMO_BINNING)

    hidden = " -> ".join(str(h) for h in data.model.hidden_layer_sizes)
    n_classes = data.test_logits.shape[1]
    click.echo(
        f"network: 64 -> {hidden} ({data.model.activation}) -> {n_classes}, trained with "
        f"cross-entropy on {data.n_train} digits: train accuracy {data.train_accuracy:.4f}, "
        f"train loss {data.train_loss:.2e} nats"
    )
    click.echo(f"wrote {files.val} ({len(data.val_labels)} rows) and {files.test} "
               f"({len(data.test_labels)} rows): arrays logits (N, {n_classes}) and labels")
    click.echo(f"test split ({report.n} rows, K = {report.n_classes}; {report.settings.n_bins} "
               f"equal-mass bins, since the confidences crowd near 1):")
    conf = _mean_confidence(report)
    rows = [(label, getattr(report, name)) for label, name in SUMMARY]
    rows.insert(1, ("mean confidence", conf))
    for label, value in rows:
        click.echo(f"  {label:<16} {value:.6f}")
    gap = conf - report.accuracy
    verdict = "over-confident" if gap > 0 else "under-confident"
    click.echo(f"{verdict}: the mean confidence is {abs(gap):.4f} "
               f"{'above' if gap > 0 else 'below'} the accuracy")

    echo_err("trueprob demo: fitting temperature scaling on the validation split and "
             "writing the report ...")
    made = write_demo_report(data, out_dir, force=force, quiet=quiet)
    record_outputs(out_dir, outputs)
    after = made.analysis.after.report
    click.echo(f"temperature scaling fitted on {files.val}: T = "
               f"{made.calibrator.temperature_:.4f}; test split after it: accuracy "
               f"{after.accuracy:.6f}, nll (bits) {after.nll:.6f}, ece {after.ece:.6f}")
    click.echo("verdict:")
    from trueprob.report.verdict import verdict as sentences

    for sentence in sentences(made.analysis):
        click.echo(f"  - {sentence}")
    click.echo(f"report: {made.path}"
               + ("" if made.html else " (Markdown: install matplotlib, pip install "
                                       "'trueprob[plot]', for the HTML report)"))
    click.echo(f"calibrator: {files.calibrator}")
    click.echo(f"predictions: {files.val}, {files.test}")
    commands = ctx.find_root().command.commands  # type: ignore[attr-defined]
    click.echo("next:")
    click.echo(f"  trueprob evaluate {files.test} --calibrator {files.calibrator}")
    if "report" in commands:
        click.echo(f"  trueprob report {files.test} --fit {files.val} -o report.html")
