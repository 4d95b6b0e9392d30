"""`MultilabelReport`: per-label, micro and macro scores and calibration errors."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from trueprob._format import fixed
from trueprob.results._display import NotebookDisplay
from trueprob.results._json import json_safe
from trueprob.results.classification import BinRow

METRICS = ("nll", "brier", "ece", "mce", "rmsce", "ece_debiased")


@dataclass(frozen=True)
class LabelMetrics:
    """Scores and calibration of one label l, a binary problem q_il vs y_il.

    ``prevalence`` = (1/W) sum_i w_i y_il; ``mean_prob`` = (1/W) sum_i w_i q_il; ``nll`` the
    binary cross-entropy (1/W) sum_i w_i [-y log q - (1 - y) log(1 - q)] in the report's unit;
    ``brier`` = (1/W) sum_i w_i (q_il - y_il)^2 (the binary form); ``ece``, ``mce``, ``rmsce``,
    ``ece_debiased`` from the binned reliability of q_il against y_il (SPEC.md's formulas with
    conf_b = mean q and acc_b = mean y in bin b); ``n_infinite_nll`` rows whose probability
    of the observed value is 0.
    """

    label: int
    name: str
    prevalence: float
    mean_prob: float
    nll: float
    brier: float
    ece: float
    mce: float
    rmsce: float
    ece_debiased: float
    n_infinite_nll: int


@dataclass(frozen=True)
class Aggregate:
    """Micro (all (row, label) pairs pooled, each pair weighted w_i) or macro (mean over labels
    of the per-label values) aggregate of the :data:`METRICS`."""

    nll: float
    brier: float
    ece: float
    mce: float
    rmsce: float
    ece_debiased: float


@dataclass(frozen=True)
class WorstLabel:
    """A label among the worst calibrated (largest ECE), with its reliability table."""

    label: int
    name: str
    ece: float
    bins: tuple[BinRow, ...]


@dataclass(frozen=True)
class MultilabelSettings:
    n_bins: int
    closed: str
    unit: str
    edges: tuple[float, ...]
    n_worst: int


@dataclass(frozen=True)
class MultilabelReport(NotebookDisplay):
    """Every number of a multi-label evaluation (see
    :func:`trueprob.multilabel.evaluate_multilabel`).

    ``per_label`` has one :class:`LabelMetrics` per label; ``micro`` pools all N x L pairs;
    ``macro`` averages the per-label values; ``worst`` lists the ``n_worst`` labels with the
    largest ECE (ties: lowest index) with their reliability tables; ``bins`` is the pooled
    (micro) reliability table.
    """

    n: int
    weight: float
    n_labels: int
    unit: str
    inputs: str
    micro: Aggregate
    macro: Aggregate
    per_label: tuple[LabelMetrics, ...]
    worst: tuple[WorstLabel, ...]
    bins: tuple[BinRow, ...]
    n_infinite_nll: int
    settings: MultilabelSettings
    unavailable: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict: ``n``, ``n_labels``, ``micro``, ``macro``, ``per_label``,
        ``worst_labels``, ``bins``, ``settings``, ..."""
        out = {
            "n": self.n, "weight": self.weight, "n_labels": self.n_labels, "unit": self.unit,
            "inputs": self.inputs, "micro": asdict(self.micro), "macro": asdict(self.macro),
            "per_label": [asdict(m) for m in self.per_label],
            "worst_labels": [asdict(w) for w in self.worst],
            "bins": [asdict(b) for b in self.bins], "n_infinite_nll": self.n_infinite_nll,
            "settings": asdict(self.settings), "unavailable": dict(self.unavailable),
        }
        return json_safe(out)

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def to_markdown(self, digits: int = 4) -> str:
        """Micro/macro summary and the worst-calibrated labels as Markdown."""

        def fmt(v: float) -> str:
            return fixed(v, digits)

        lines = [
            f"**trueprob multi-label** — {self.n} rows, L = {self.n_labels} labels, "
            f"{self.inputs}; {self.settings.n_bins} bins; log scores in {self.unit}", "",
            "| metric | micro | macro |", "|---|---|---|",
        ]
        for name in METRICS:
            lines.append(f"| {name} | {fmt(getattr(self.micro, name))} | "
                         f"{fmt(getattr(self.macro, name))} |")
        lines += ["", "| worst labels | ECE | prevalence | mean prob |", "|---|---|---|---|"]
        for w in self.worst:
            m = self.per_label[w.label]
            lines.append(f"| {w.name} | {fmt(w.ece)} | {fmt(m.prevalence)} | "
                         f"{fmt(m.mean_prob)} |")
        return "\n".join(lines) + "\n"
