"""`RegressionReport`: every number of one evaluation of predictive distributions.

The report holds data, not drawings: the PIT histogram and the coverage table are plain frozen
dataclasses that a plotting layer can draw (a PIT histogram against its expected heights, and
observed against nominal coverage).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from trueprob._format import fixed
from trueprob.results._display import NotebookDisplay
from trueprob.results._json import json_safe


def level_key(level: float) -> str:
    """The JSON key of a probability level: ``0.9 -> "0.9"``, ``0.95 -> "0.95"``."""
    return f"{level:.10g}"


@dataclass(frozen=True)
class CoverageRow:
    """One central prediction interval [F^{-1}((1 - a)/2), F^{-1}((1 + a)/2)] of nominal level a.

    ``observed`` is the weighted share of rows whose y_i falls inside (ends included);
    ``mean_width`` the weighted mean width of the intervals (sharpness).
    """

    level: float
    observed: float
    mean_width: float


@dataclass(frozen=True)
class LevelRow:
    """Quantile calibration at level p: ``observed`` = weighted share of rows with
    F_i(y_i) <= p (y_i at or below the predicted p-quantile); calibrated means observed = p."""

    level: float
    observed: float


@dataclass(frozen=True)
class PitHistogram:
    """Histogram of the PIT values u_i = F_i(y_i).

    Bin j covers levels (edges[j], edges[j+1]] (bin 0 also holds u = 0). ``weight`` W_j and
    ``count`` (rows with positive weight) per bin; ``expected`` is the share of the weight a
    calibrated model puts in the bin (edges[j+1] - edges[j]), and ``observed`` = W_j / W. For a
    quantile set, bins are the intervals between consecutive predicted quantiles (edges are the
    levels, with 0 and 1 added), so their expected shares differ.
    """

    edges: tuple[float, ...]
    weight: tuple[float, ...]
    count: tuple[int, ...]
    observed: tuple[float, ...]
    expected: tuple[float, ...]


@dataclass(frozen=True)
class RegressionSettings:
    """How the numbers of a :class:`RegressionReport` were computed."""

    pit_cells: int
    n_pit_bins: int
    calibration_levels: tuple[float, ...]
    coverage_levels: tuple[float, ...]
    unit: str


@dataclass(frozen=True)
class RegressionReport(NotebookDisplay):
    """Proper scores and calibration of predictive distributions (see
    :func:`trueprob.regression.evaluate_regression` for every definition).

    ``nll`` (in ``unit``) and ``dispersion`` are ``None`` for quantile sets (no density, no
    scale), and ``unavailable`` says why.
    """

    n: int
    weight: float
    family: str
    unit: str
    nll: float | None
    crps: float
    pit_ece: float
    quantile_calibration_error: float
    dispersion: float | None
    calibration: tuple[LevelRow, ...]
    coverage: tuple[CoverageRow, ...]
    pit_histogram: PitHistogram
    settings: RegressionSettings
    unavailable: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict with the README's keys: ``n``, ``nll``, ``crps``, ``pit_ece``,
        ``coverage`` ({level: observed share}), ``interval_width``, ``calibration``, ..."""
        out: dict[str, Any] = {
            "n": self.n, "weight": self.weight, "family": self.family, "unit": self.unit,
            "nll": self.nll, "crps": self.crps, "pit_ece": self.pit_ece,
            "quantile_calibration_error": self.quantile_calibration_error,
            "dispersion": self.dispersion,
            "coverage": {level_key(c.level): c.observed for c in self.coverage},
            "interval_width": {level_key(c.level): c.mean_width for c in self.coverage},
            "calibration": {level_key(c.level): c.observed for c in self.calibration},
            "pit_histogram": asdict(self.pit_histogram),
            "settings": asdict(self.settings),
            "unavailable": dict(self.unavailable),
        }
        return json_safe(out)

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def to_markdown(self, digits: int = 4) -> str:
        """Summary, coverage and calibration tables as GitHub-flavoured Markdown."""

        def fmt(v: Any) -> str:
            return fixed(v, digits)

        lines = [
            f"**trueprob regression** — {self.n} rows, {self.family} predictions; "
            f"log scores in {self.unit}", "", "| metric | value |", "|---|---|",
        ]
        for name in ("nll", "crps", "pit_ece", "quantile_calibration_error", "dispersion"):
            lines.append(f"| {name} | {fmt(getattr(self, name))} |")
        if self.coverage:
            lines += ["", "| nominal coverage | observed | mean width |", "|---|---|---|"]
            lines += [f"| {c.level:g} | {fmt(c.observed)} | {fmt(c.mean_width)} |"
                      for c in self.coverage]
        lines += ["", "| level p | share with F(y) <= p |", "|---|---|"]
        lines += [f"| {c.level:g} | {fmt(c.observed)} |" for c in self.calibration]
        for name, why in self.unavailable.items():
            lines.append(f"\n- `{name}` not computed: {why}")
        return "\n".join(lines) + "\n"
