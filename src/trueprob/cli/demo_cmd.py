"""`trueprob demo`: train an over-confident network on the digits, write its logits, evaluate."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from trueprob.cli._common import DataError, data_errors, echo_err

if TYPE_CHECKING:
    from trueprob.report.result import Report

#: the summary lines of the test split: (label, Report attribute)
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
              show_default=True, help="Folder for val.npz and test.npz.")
@click.option("--force", is_flag=True, help="Replace val.npz / test.npz if they exist.")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True,
              help="Seed of the data split and the network's initial weights.")
@click.pass_context
@data_errors
def demo(ctx: click.Context, out_dir: str, force: bool, seed: int) -> None:
    """Train a small network on scikit-learn's digits, write its logits, and evaluate it.

    An MLP with one hidden layer is trained by maximum likelihood (cross-entropy) until it
    fits its training images perfectly; on new images it is over-confident. The logits and
    labels of a validation and a test split are written to OUT/val.npz and OUT/test.npz, and
    the test split is evaluated. Needs scikit-learn (pip install 'trueprob[demo]').
    """
    import trueprob
    from trueprob.demo import demo_files, train_demo_model, write_demo_files

    files = demo_files(out_dir)
    if not force:
        for path in (files.val, files.test):
            if path.exists():
                raise click.UsageError(f"{path} exists; pass --force to replace it")
    echo_err(f"trueprob demo: training a network on scikit-learn's digits (seed {seed}) ...")
    try:
        data = train_demo_model(seed)
    except ImportError as exc:
        raise DataError(str(exc)) from exc
    write_demo_files(data, out_dir, force=force)
    report = trueprob.evaluate(data.test_labels, logits=data.test_logits, unit="bits")

    hidden = " -> ".join(str(h) for h in data.model.hidden_layer_sizes)
    n_classes = data.test_logits.shape[1]
    click.echo(
        f"network: 64 -> {hidden} ({data.model.activation}) -> {n_classes}, trained with "
        f"cross-entropy on {data.n_train} digits: train accuracy {data.train_accuracy:.4f}, "
        f"train loss {data.train_loss:.2e} nats"
    )
    click.echo(f"wrote {files.val} ({len(data.val_labels)} rows) and {files.test} "
               f"({len(data.test_labels)} rows): arrays logits (N, {n_classes}) and labels")
    click.echo(f"test split ({report.n} rows, K = {report.n_classes}):")
    conf = _mean_confidence(report)
    rows = [(label, getattr(report, name)) for label, name in SUMMARY]
    rows.insert(1, ("mean confidence", conf))
    for label, value in rows:
        click.echo(f"  {label:<16} {value:.6f}")
    gap = conf - report.accuracy
    verdict = "over-confident" if gap > 0 else "under-confident"
    click.echo(f"{verdict}: the mean confidence is {abs(gap):.4f} "
               f"{'above' if gap > 0 else 'below'} the accuracy")
    commands = ctx.find_root().command.commands  # type: ignore[attr-defined]
    click.echo("next:")
    click.echo(f"  trueprob evaluate {files.test}")
    if "fit" in commands:  # registered once the calibration commands exist
        cal = files.val.with_name("cal.json")
        click.echo(f"  trueprob fit --method temperature {files.val} -o {cal}")
        click.echo(f"  trueprob evaluate {files.test} --calibrator {cal}")
