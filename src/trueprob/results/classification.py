"""`Report`: the result record of one classification evaluation — every metric, the per-bin
table and the settings used (the HTML/Markdown *rendering* of a report is `trueprob.report`)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from trueprob._format import fixed
from trueprob.results._display import NotebookDisplay
from trueprob.results._json import json_safe

#: JSON keys that are always present (see the README); `entropy` / `kl` only for soft targets.
METRIC_FIELDS = (
    "accuracy", "nll", "brier", "ece", "mce", "rmsce", "ece_debiased", "classwise_ece",
    "class_conditional_ece", "ks", "smooth_ece", "entropy", "kl",
)


@dataclass(frozen=True)
class BinRow:
    """One bin of the top-label reliability table.

    ``lower``/``upper`` are the bin's edges (which side is closed is in the settings);
    ``weight`` W_b and ``count`` n_b (rows with positive weight); ``confidence`` conf_b and
    ``accuracy`` acc_b are weighted means (NaN for an empty bin); ``gap`` = confidence -
    accuracy (positive: over-confident).
    """

    lower: float
    upper: float
    weight: float
    count: int
    confidence: float
    accuracy: float
    gap: float


@dataclass(frozen=True)
class Settings:
    """How the numbers of a :class:`Report` were computed."""

    n_bins: int
    binning: str
    closed: str
    reduce: str
    unit: str
    edges: tuple[float, ...]


@dataclass(frozen=True)
class Report(NotebookDisplay):
    """Every metric of one evaluation (SPEC.md's definitions), with the settings used.

    Log-score quantities (``nll``, ``entropy``, ``kl``) are in ``unit`` (nats or bits); the
    others are unitless. A metric that the inputs cannot give (for example ``nll`` from
    top-label confidences only) is ``None`` and ``unavailable`` says why.
    """

    n: int
    weight: float
    n_classes: int
    unit: str
    inputs: str
    targets: str
    accuracy: float
    nll: float | None
    brier: float | None
    ece: float
    mce: float
    rmsce: float
    ece_debiased: float
    classwise_ece: float | None
    class_conditional_ece: float
    ks: float
    smooth_ece: float | None
    entropy: float | None
    kl: float | None
    n_infinite_nll: int
    bins: tuple[BinRow, ...]
    classwise_ece_per_class: tuple[float, ...] | None
    settings: Settings
    unavailable: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict with the README's stable keys (NaN -> None, inf -> "inf")."""
        out: dict[str, Any] = {
            "n": self.n, "weight": self.weight, "n_classes": self.n_classes, "unit": self.unit,
            "inputs": self.inputs, "targets": self.targets,
        }
        for name in METRIC_FIELDS:
            value = getattr(self, name)
            if name in ("entropy", "kl") and self.targets == "labels":
                continue
            out[name] = value
        out["n_infinite_nll"] = self.n_infinite_nll
        out["bins"] = [asdict(b) for b in self.bins]
        out["classwise_ece_per_class"] = (
            None if self.classwise_ece_per_class is None else list(self.classwise_ece_per_class)
        )
        out["settings"] = asdict(self.settings)
        out["unavailable"] = dict(self.unavailable)
        return json_safe(out)

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def to_markdown(self, digits: int = 4) -> str:
        """A summary table and the per-bin table, as GitHub-flavoured Markdown."""

        def fmt(v: Any) -> str:
            return fixed(v, digits)

        s = self.settings
        lines = [
            f"**trueprob** — {self.n} rows, K = {self.n_classes}, {self.inputs} vs {self.targets}; "
            f"{s.n_bins} {s.binning} bins ({s.closed}-closed); log scores in {self.unit}",
            "",
            "| metric | value |",
            "|---|---|",
        ]
        for name in METRIC_FIELDS:
            if name in ("entropy", "kl") and self.targets == "labels":
                continue
            lines.append(f"| {name} | {fmt(getattr(self, name))} |")
        lines += ["", "| bin | weight | count | confidence | accuracy | gap |",
                  "|---|---|---|---|---|---|"]
        left, right = ("(", "]") if s.closed == "right" else ("[", ")")
        for b in self.bins:
            lines.append(
                f"| {left}{b.lower:.3f}, {b.upper:.3f}{right} | {fmt(b.weight)} | {b.count} | "
                f"{fmt(b.confidence)} | {fmt(b.accuracy)} | {fmt(b.gap)} |"
            )
        if self.unavailable:
            lines.append("")
            for name, why in self.unavailable.items():
                lines.append(f"- `{name}` not computed: {why}")
        return "\n".join(lines) + "\n"

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))
