"""The metrics of an :class:`~trueprob.stats.evaluation.EvaluationStats`: per-replicate metric
arrays (:func:`summarize`) and the :class:`~trueprob.Report` (:func:`finalize`)."""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING

import numpy as np

from trueprob.core import summaries as sm
from trueprob.core.options import check_reduce, check_unit
from trueprob.results import METRIC_FIELDS, BinRow, Report, Settings

if TYPE_CHECKING:
    from trueprob.stats.evaluation import EvaluationStats

_W, _NLL, _BRIER, _CORRECT, _ENTROPY, _KL = sm.W, sm.NLL, sm.BRIER, sm.CORRECT, sm.ENTROPY, sm.KL


class InfiniteLossWarning(UserWarning):
    """A probability of exactly 0 on an observed class made the log loss infinite."""


#: Which Report metrics each part of a state provides (the float ones; NaN when not kept).
PART_METRICS = {
    "top_label": ("ece", "mce", "rmsce", "ece_debiased"),
    "class_conditional": ("class_conditional_ece",),
    "ks": ("ks",),
}


def summarize(state: EvaluationStats, arrays: dict[str, np.ndarray], *, unit: str = "nats",
              reduce: str = "mean") -> dict[str, np.ndarray]:
    """Every metric of :data:`~trueprob.results.METRIC_FIELDS` from state arrays with a
    leading axis of R replicates (as :meth:`arrays` or bootstrap replicates give them);
    each value has shape (R,). Metrics the inputs cannot give are NaN."""
    scale = check_unit(unit)
    check_reduce(reduce)
    sums = arrays["sums"]
    total = sums[:, _W]
    r = total.shape[0]
    nan = np.full(r, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        out: dict[str, np.ndarray] = {"accuracy": sums[:, _CORRECT] / total}
        if state.has_vector_scores:
            out["nll"] = sums[:, _NLL] / total * scale
            out["brier"] = sums[:, _BRIER] / total
            out["entropy"] = sums[:, _ENTROPY] / total * scale
            out["kl"] = sums[:, _KL] / total * scale
        else:
            out.update(nll=nan, brier=nan, entropy=nan, kl=nan)

        def errors(part: str) -> dict[str, np.ndarray]:
            return sm.binned_errors(arrays[f"{part}.weight"], arrays[f"{part}.sum_score"],
                                    arrays[f"{part}.sum_outcome"], total)

        top = errors("top_label")
        out["ece"] = top["ece"][:, 0]
        out["rmsce"] = np.sqrt(top["l2"][:, 0])
        out["mce"] = top["mce"][:, 0]
        out["ece_debiased"] = np.sqrt(np.maximum(top["debiased_l2"][:, 0], 0.0))
        out["class_conditional_ece"] = np.sum(errors("class_conditional")["ece"], axis=-1)
        if "confidences" not in state.input_kinds and "classwise" in state.parts:
            per = errors("classwise")["ece"]
            out["classwise_ece"] = per.mean(axis=-1) if reduce == "mean" else per.sum(-1)
            out["classwise_ece_per_class"] = per
        else:
            out["classwise_ece"] = nan
        out["ks"] = sm.ks_from_grid(arrays["ks.sum_score"][:, 0],
                                    arrays["ks.sum_outcome"][:, 0], total)
        out["smooth_ece"] = nan  # not a per-bin statistic: finalize() computes it
    return out


def finalize(state: EvaluationStats, *, unit: str = "nats", reduce: str = "mean") -> Report:
    """The :class:`~trueprob.Report` of everything added so far."""
    check_unit(unit)
    check_reduce(reduce)
    arrays = state.arrays()
    total = float(arrays["sums"][0, _W])
    if not total > 0:
        raise ValueError(
            "sample_weight sums to 0; at least one row needs a positive weight"
        )
    n_rows, n_inf, _ = (int(v) for v in arrays["counts"][0])
    values = {k: v[0] for k, v in summarize(state, arrays, unit=unit, reduce=reduce).items()}
    unavailable: dict[str, str] = {}
    soft = bool(state.target_kinds - {"labels"})
    top_label_only = "confidences" in state.input_kinds
    why = ("needs the full probability vector; only top-label confidences were given"
           if top_label_only else "not requested")
    if state.has_vector_scores:
        if n_inf:
            warnings.warn(
                f"the log loss is infinite: {n_inf} row(s) give probability 0 to an "
                f"observed class", InfiniteLossWarning, stacklevel=3,
            )
    else:
        unavailable.update(nll=why, brier=why)
        if soft:
            unavailable.update(entropy=why, kl=why)
    if top_label_only or "classwise" not in state.parts:
        unavailable["classwise_ece"] = why
    # metrics of parts this state does not keep: NaN and "not requested", never a 0
    skipped = [name for part, names in PART_METRICS.items() if part not in state.parts
               for name in names]
    for name in skipped:
        unavailable.setdefault(name, "not requested")

    if "smooth" in state.parts and state.smooth.n_rows:
        values["smooth_ece"] = state.smooth.finalize().ece
    else:
        unavailable.setdefault("smooth_ece", "not requested" if "smooth" not in state.parts
                               else "no rows")

    def value(name: str) -> float | None:
        if name in skipped:
            return math.nan
        if name in unavailable or (name in ("entropy", "kl") and not soft):
            return None
        return float(values[name])

    top = {k: v[0, 0] for k, v in arrays.items() if k.startswith("top_label.")}
    conf = sm.bin_means(top["top_label.weight"], top["top_label.sum_score"])
    acc = sm.bin_means(top["top_label.weight"], top["top_label.sum_outcome"])
    edges = state.binning.edge_array()
    bins = tuple(
        BinRow(float(edges[j]), float(edges[j + 1]), float(top["top_label.weight"][j]),
               int(top["top_label.count"][j]), float(conf[j]), float(acc[j]),
               float(conf[j] - acc[j]))
        for j in range(state.binning.n_bins)
    )
    per_class = values.get("classwise_ece_per_class")
    settings = Settings(state.binning.n_bins, state.binning_name, state.binning.closed,
                        reduce, unit, tuple(float(e) for e in edges))
    return Report(
        n=n_rows, weight=total, n_classes=state.n_classes, unit=unit,
        inputs="+".join(sorted(state.input_kinds)),
        targets="+".join(sorted(state.target_kinds)),
        **{name: value(name) for name in METRIC_FIELDS},  # type: ignore[arg-type]
        n_infinite_nll=n_inf, bins=bins,
        classwise_ece_per_class=(None if per_class is None or "classwise_ece" in
                                 unavailable else tuple(float(v) for v in per_class)),
        settings=settings, unavailable=unavailable,
    )
