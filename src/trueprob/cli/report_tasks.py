"""`trueprob report --task multilabel|regression`: the options, the column reading and the
dispatch of the report beyond one-hot classification.

The column reading (:func:`read_regression`, :func:`read_multilabel`) is the one behind
``trueprob evaluate --task ...`` too, so both commands read a file the same way. Options that
do not apply to the chosen task are refused by :func:`check_task_options` (a usage error that
names them) instead of being ignored.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from trueprob.cli._common import DataError

F = TypeVar("F", bound=Callable[..., Any])

TASKS = ("classification", "multilabel", "regression")
DISTRIBUTIONS = ("gaussian", "laplace", "student-t")

#: Parameters (click names) of `trueprob report` that only one kind of task takes
#: (--calibrator, --fit and --method are taken by every task: a per-label map for multilabel,
#: variance scaling or isotonic quantile recalibration for regression).
CLASSIFICATION_ONLY = ("multiclass", "targets", "counts",
                       "confidences", "predictions", "n_classes", "binning", "n_replicates",
                       "n_resamples", "max_panels", "seed")
REGRESSION_ONLY = ("observed", "mean_col", "std_col", "scale_col", "df_spec", "distribution",
                   "quantile_cols", "levels", "coverage")
MULTILABEL_ONLY = ("n_worst",)
#: What each task refuses, beyond the other tasks' own options.
REFUSED = {
    "classification": REGRESSION_ONLY + MULTILABEL_ONLY,
    "multilabel": CLASSIFICATION_ONLY + REGRESSION_ONLY,
    "regression": CLASSIFICATION_ONLY + MULTILABEL_ONLY + ("logits", "probs", "closed"),
}


def task_options(func: F) -> F:
    """The options of ``--task`` and of the multi-label and regression columns (the same
    names and meanings as ``trueprob evaluate``)."""
    options = [
        click.option("--task", type=click.Choice(TASKS), default="classification",
                     show_default=True,
                     help="multilabel: --logits/--probs and --labels name one column per "
                          "label. regression: --labels (or --observed) names the observed "
                          "values, with --mean and --std/--scale, or --quantiles."),
        click.option("--observed", default=None, metavar="NAME",
                     help="regression: the observed values (alias of --labels)."),
        click.option("--mean", "mean_col", default=None, metavar="NAME",
                     help="regression: the predictive mean (location)."),
        click.option("--std", "std_col", default=None, metavar="NAME",
                     help="regression: the predictive standard deviation (Gaussian)."),
        click.option("--scale", "scale_col", default=None, metavar="NAME",
                     help="regression: the predictive scale (Laplace, Student-t)."),
        click.option("--df", "df_spec", default=None, metavar="NAME|VALUE",
                     help="regression: Student-t degrees of freedom (a column, or one "
                          "number > 1)."),
        click.option("--distribution", type=click.Choice(DISTRIBUTIONS), default="gaussian",
                     show_default=True, help="regression: the predictive family."),
        click.option("--quantiles", "quantile_cols", default=None, metavar="NAMES",
                     help="regression: predicted quantiles, one column per level (with "
                          "--levels)."),
        click.option("--levels", default=None, metavar="P1,P2,...",
                     help="regression: the levels of --quantiles, increasing in (0, 1)."),
        click.option("--coverage", default=None, metavar="P1,P2,...",
                     help="regression: nominal central-interval levels (default "
                          "0.5,0.8,0.9,0.95)."),
        click.option("--worst", "n_worst", type=click.IntRange(min=0), default=5,
                     show_default=True,
                     help="multilabel: how many worst-calibrated labels to draw."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def parse_floats(text: str | None, option: str) -> list[float] | None:
    """"0.5,0.9" -> [0.5, 0.9]; None stays None; anything else is a usage error naming the
    option."""
    if text is None:
        return None
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise click.BadParameter(f"expected numbers separated by commas; got {text!r}",
                                 param_hint=option) from exc


def _given(ctx: click.Context, name: str) -> bool:
    source = ctx.get_parameter_source(name)
    return source in (click.core.ParameterSource.COMMANDLINE,
                      click.core.ParameterSource.ENVIRONMENT)


def given(name: str, ctx: click.Context | None = None) -> bool:
    """Whether the option with parameter name ``name`` was given (command line or
    environment), not left at its default."""
    return _given(click.get_current_context() if ctx is None else ctx, name)


def _flag(ctx: click.Context, name: str) -> str:
    for param in ctx.command.params:
        if param.name == name:
            return max(param.opts, key=len)
    return name


def check_task_options(task: str, ctx: click.Context | None = None) -> None:
    """Refuse, with a usage error that names them, options given on the command line that do
    not apply to ``task`` (e.g. ``--calibrator`` with ``--task regression``)."""
    ctx = click.get_current_context() if ctx is None else ctx
    wrong = [n for n in REFUSED[task]
             if any(p.name == n for p in ctx.command.params) and _given(ctx, n)]
    if wrong:
        owners = sorted({_owner(n) for n in wrong})
        flags = ", ".join(_flag(ctx, n) for n in wrong)
        raise click.UsageError(f"{flags} {'does' if len(wrong) == 1 else 'do'} not apply to "
                               f"--task {task} (they are for --task {' / '.join(owners)})")


def refuse_given(names: Sequence[str], where: str, ctx: click.Context | None = None) -> None:
    """Refuse, with a usage error naming them, the options among ``names`` (parameter names)
    given on the command line: "FLAGS do(es) not apply to WHERE"."""
    ctx = click.get_current_context() if ctx is None else ctx
    wrong = [n for n in names if any(p.name == n for p in ctx.command.params) and _given(ctx, n)]
    if wrong:
        flags = ", ".join(_flag(ctx, n) for n in wrong)
        raise click.UsageError(f"{flags} {'does' if len(wrong) == 1 else 'do'} not apply to "
                               f"{where}")


def _owner(name: str) -> str:
    if name in REGRESSION_ONLY:
        return "regression"
    if name in MULTILABEL_ONLY:
        return "multilabel"
    if name in CLASSIFICATION_ONLY:
        return "classification"
    return "classification or multilabel"


# --------------------------------------------------------------------------- reading
def _read(file: str, specs: dict[str, tuple[Any, bool]], quiet: bool) -> dict[str, Any]:
    from trueprob.io import read_columns

    try:
        return read_columns(file, specs, quiet=quiet)
    except ImportError as exc:  # an optional reader (pyarrow, torch) is missing
        raise DataError(str(exc)) from exc


def _levels_in(file: str) -> list[float] | None:
    """The ``levels`` array of an ``.npz`` file (what ``trueprob apply --task regression``
    writes beside its ``quantiles``), or None."""
    import numpy as np

    if not file.lower().endswith(".npz") or not Path(file).is_file():
        return None
    with np.load(file, allow_pickle=False) as f:
        if "levels" not in f.files or f["levels"].ndim != 1:
            return None
        return [float(v) for v in f["levels"]]


def read_regression(file: str, observed: str | None, mean_col: str | None,
                    std_col: str | None, scale_col: str | None, df_spec: str | None,
                    distribution: str, quantile_cols: str | None, levels: str | None,
                    sample_weight: str | None, *, quiet: bool = False,
                    need_observed: bool = True) -> tuple[Any, Any, Any]:
    """The observed values, the predictive distribution and the row weights (or None) named
    by the regression options, read from ``file`` (``quiet``: no progress bar). With
    ``need_observed=False`` (``trueprob apply``) the observed values are optional: None when
    no column is named."""
    from trueprob.regression import Gaussian, Laplace, QuantileSet, StudentT

    if observed is None and need_observed:
        raise click.UsageError("--task regression needs --labels (or --observed): the column "
                               "of observed values")
    specs: dict[str, tuple[Any, bool]] = {"observed": (observed, False),
                                          "sample_weight": (sample_weight, False)}
    df_value = None
    level_values = None if levels is None else parse_floats(levels, "--levels")
    if quantile_cols is not None:
        if level_values is None:
            level_values = _levels_in(file)
        if level_values is None:
            raise click.UsageError("--quantiles needs --levels (one level per column; an .npz "
                                   "written by trueprob apply holds them as 'levels')")
        specs["quantiles"] = (quantile_cols, True)
    else:
        if mean_col is None:
            raise click.UsageError("--task regression needs --mean with --std (Gaussian) or "
                                   "--scale (laplace, student-t), or --quantiles and --levels")
        specs["mean"] = (mean_col, False)
        spread = std_col if distribution == "gaussian" else scale_col
        if spread is None:
            need = "--std" if distribution == "gaussian" else "--scale"
            raise click.UsageError(f"--distribution {distribution} needs {need}")
        specs["spread"] = (spread, False)
        if distribution == "student-t":
            if df_spec is None:
                raise click.UsageError("--distribution student-t needs --df (a column or a "
                                       "number)")
            try:
                df_value = float(df_spec)
            except ValueError:
                specs["df"] = (df_spec, False)
    cols = _read(file, specs, quiet)
    if quantile_cols is not None:
        predictive: Any = QuantileSet(cols["quantiles"], level_values)
    elif distribution == "gaussian":
        predictive = Gaussian(cols["mean"], cols["spread"])
    elif distribution == "laplace":
        predictive = Laplace(cols["mean"], cols["spread"])
    else:
        df = cols["df"] if df_value is None else df_value
        predictive = StudentT(cols["mean"], cols["spread"], df)
    return cols.get("observed"), predictive, cols.get("sample_weight")


def read_multilabel(file: str, logits: str | None, probs: str | None, labels: str | None,
                    sample_weight: str | None, *, quiet: bool = False,
                    need_labels: bool = True) -> tuple[Any, dict[str, Any], Any]:
    """The (N, L) outcomes, ``{"logits" or "probs": (N, L) scores}`` and the row weights (or
    None) named by the multi-label options, read from ``file`` (``quiet``: no progress bar).
    With ``need_labels=False`` (``trueprob apply``) the outcomes are optional: None when
    ``labels`` is None."""
    if (logits is None) == (probs is None):
        raise click.UsageError("--task multilabel needs exactly one of --logits or --probs "
                               "(one column per label)")
    if labels is None and need_labels:
        raise click.UsageError("--task multilabel needs --labels (one 0/1 column per label, "
                               "in the same order as the scores)")
    key = "logits" if logits is not None else "probs"
    cols = _read(file, {key: (logits or probs, True), "labels": (labels, True),
                        "sample_weight": (sample_weight, False)}, quiet)
    return cols.get("labels"), {key: cols[key]}, cols.get("sample_weight")


# --------------------------------------------------------------------------- reports
@dataclass(frozen=True)
class TaskOptions:
    """The options of one ``trueprob report --task multilabel|regression`` run."""

    task: str
    file: str
    logits: str | None
    probs: str | None
    labels: str | None
    sample_weight: str | None
    observed: str | None
    mean_col: str | None
    std_col: str | None
    scale_col: str | None
    df_spec: str | None
    distribution: str
    quantile_cols: str | None
    levels: str | None
    coverage: str | None
    n_worst: int
    n_bins: int | None
    closed: str
    unit: str
    level: float


@dataclass(frozen=True)
class TaskReport:
    """A rendered report: its text, the verdict sentences and the seconds of analysis."""

    text: str
    verdict: Sequence[str]
    seconds: float


def task_report(options: TaskOptions, *, fmt: str, image_format: str,
                quiet: bool, recalibration: tuple[Any, str] | None = None) -> TaskReport:
    """Read the file, analyse it and render the report of a multi-label or regression task.

    ``recalibration``: (a fitted calibrator of the task, what it is and where it was fitted);
    the report then also analyses the recalibrated outputs of the same rows and shows both
    (:class:`trueprob.report.tasks.Recalibrated`)."""
    from trueprob._progress import progress
    from trueprob.report import tasks

    o = options
    source = "<stdin>" if o.file == "-" else o.file
    if o.task == "multilabel":
        y, scores, weights = read_multilabel(o.file, o.logits, o.probs, o.labels,
                                             o.sample_weight, quiet=quiet)
        with progress("report: evaluating", quiet=quiet):
            ml = tasks.analyze_multilabel(y, **scores, sample_weight=weights, source=source,
                                          n_bins=15 if o.n_bins is None else o.n_bins,
                                          closed=o.closed, unit=o.unit, level=o.level,
                                          n_worst=o.n_worst)
            recal = None
            if recalibration is not None:
                cal, description = recalibration
                z = cal.predict_logits(**scores)
                recal = tasks.Recalibrated(description, tasks.analyze_multilabel(
                    y, logits=z, sample_weight=weights, source=source,
                    n_bins=15 if o.n_bins is None else o.n_bins, closed=o.closed,
                    unit=o.unit, level=o.level, n_worst=o.n_worst))
        with progress(f"report: writing {fmt}", quiet=quiet):
            text = (tasks.render_multilabel_html(ml, image_format=image_format,
                                                 recalibrated=recal)
                    if fmt == "html" else tasks.render_multilabel_markdown(ml,
                                                                           recalibrated=recal))
        return TaskReport(text, tasks.multilabel_verdict(ml), ml.seconds)
    if o.task != "regression":
        raise ValueError(f"task must be 'multilabel' or 'regression'; got {o.task!r}")
    if o.n_bins is not None and o.quantile_cols is not None:
        raise click.UsageError("--bins does not apply to --quantiles: a quantile set's PIT "
                               "histogram has one bin per interval between its levels")
    if o.n_bins is not None and 1000 % o.n_bins:
        raise click.BadParameter(f"the PIT histogram's bin count must divide the 1000 cells "
                                 f"of the PIT grid (e.g. 10, 20, 25, 50); got {o.n_bins}",
                                 param_hint="--bins")
    observed, predictive, weights = read_regression(
        o.file, o.labels or o.observed, o.mean_col, o.std_col, o.scale_col, o.df_spec,
        o.distribution, o.quantile_cols, o.levels, o.sample_weight, quiet=quiet)
    coverage = parse_floats(o.coverage, "--coverage")
    with progress("report: evaluating", quiet=quiet):
        reg = tasks.analyze_regression(observed, predictive, sample_weight=weights,
                                       source=source, coverage_levels=coverage,
                                       n_pit_bins=o.n_bins, unit=o.unit, level=o.level)
        recal = None
        if recalibration is not None:
            from trueprob.regression import QuantileSet
            from trueprob.regression.recalibration import recalibrate

            cal, description = recalibration
            after = recalibrate(cal, predictive)
            quantiles = isinstance(after, QuantileSet)
            recal = tasks.Recalibrated(description, tasks.analyze_regression(
                observed, after, sample_weight=weights, source=source,
                coverage_levels=None if quantiles else coverage,
                n_pit_bins=None if quantiles else o.n_bins, unit=o.unit, level=o.level))
    with progress(f"report: writing {fmt}", quiet=quiet):
        text = (tasks.render_regression_html(reg, image_format=image_format,
                                             recalibrated=recal)
                if fmt == "html" else tasks.render_regression_markdown(reg,
                                                                       recalibrated=recal))
    return TaskReport(text, tasks.regression_verdict(reg), reg.seconds)
