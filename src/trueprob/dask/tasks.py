"""The module-level task functions of :mod:`trueprob.dask` and the functions that
combine their results (plain data in and out, no pickle of trueprob objects)."""

from __future__ import annotations

from typing import Any

import numpy as np

from trueprob.dask.parts import (
    Part,
    _fit_sums,
    _part_batches,
    _scores_kind,
    _Settings,
)
from trueprob.stats.evaluation import EvaluationStats
from trueprob.streaming import (
    N_FIRST,
    Batch,
    SearchPlan,
    fill_stats,
    merge_search,
    search_batches,
    sum_fit_rows,
    temperature_first_sums,
    temperature_sums,
    vector_sums,
)


def _state_task(part: Part, settings: _Settings, *data: Any) -> bytes | None:
    """One part's EvaluationStats as bytes (None for a part without rows)."""
    stats = fill_stats(_part_batches(part, settings, data), n_bins=settings.n_bins,
                       closed=settings.closed, edges=settings.edges, binning=settings.binning,
                       required=False)
    return None if stats is None else stats.to_bytes()


def _merge_states(*blobs: bytes | None) -> bytes | None:
    """Add states given as bytes (None: a part without rows)."""
    states = [EvaluationStats.from_bytes(b) for b in blobs if b is not None]
    if not states:
        return None
    out = states[0]
    for s in states[1:]:
        out = out.merge(s)
    return out.to_bytes()


def _search_task(part: Part, settings: _Settings, plan: SearchPlan,
                 *data: Any) -> tuple[float, list[Any] | None]:
    """One part's share of a quantile-search pass: (weight, histograms or collected keys)."""
    return search_batches(_part_batches(part, settings, data), plan)


def _merge_search_parts(*parts: tuple[float, list[Any] | None]) -> tuple[float, list[Any] | None]:
    total, merged = 0.0, None
    for t, m in parts:
        total += t
        if m is not None:
            merged = merge_search(merged, m)
    return total, merged


def _first_task(part: Part, settings: _Settings, *data: Any) -> tuple[str, int, np.ndarray] | None:
    """One part's first-pass sums of a temperature fit: (kind, K, sums), None if empty."""
    seen: list[tuple[str, int]] = []

    def note(batch: Batch) -> None:
        now = (_scores_kind(batch), batch.inputs.n_classes)
        if seen and seen[0] != now:
            raise ValueError(f"{batch.source}: the inputs are {now[0]} with K={now[1]}, "
                             f"earlier rows {seen[0][0]} with K={seen[0][1]}")
        seen[:] = [now]

    sums = sum_fit_rows(_part_batches(part, settings, data), N_FIRST, temperature_first_sums,
                        on_batch=note)
    return None if not seen else (*seen[0], sums)


def _merge_first(*parts: tuple[str, int, np.ndarray] | None) -> tuple[str, int, np.ndarray] | None:
    out = None
    for p in parts:
        if p is None:
            continue
        if out is None:
            out = p
            continue
        if (out[0], out[1]) != (p[0], p[1]):
            raise ValueError(f"the parts differ: {out[0]} with K={out[1]} and {p[0]} with "
                             f"K={p[1]}")
        out = (out[0], out[1], out[2] + p[2])
    return out


def _temperature_task(part: Part, settings: _Settings, beta: float, *data: Any) -> np.ndarray:
    """One part's sums of f and its derivatives at beta."""
    return _fit_sums(part, settings, data, 4, lambda rows: temperature_sums(rows, beta))


def _probe_task(part: Part, settings: _Settings, *data: Any) -> tuple[str, int] | None:
    """(kind, K) of a part's first batch (None if the part has no rows)."""
    for batch in _part_batches(part, settings, data):
        if batch.inputs.kind == "confidences":
            raise ValueError(f"{batch.source}: {settings.purpose} needs logits= or probs= "
                             f"(the whole vector)")
        return _scores_kind(batch), batch.inputs.n_classes
    return None


def _merge_probe(*parts: tuple[str, int] | None) -> tuple[str, int] | None:
    seen = {p for p in parts if p is not None}
    if len(seen) > 1:
        raise ValueError(f"the parts differ in their inputs: {sorted(seen)}")
    return next(iter(seen), None)


def _vector_task(part: Part, settings: _Settings, coef: np.ndarray, intercept: np.ndarray,
                 *data: Any) -> np.ndarray:
    """One part's vector-scaling sums at (coef, intercept)."""

    k = len(coef)
    return _fit_sums(part, settings, data, 2 + 2 * k + 4 * k * k,
                     lambda rows: vector_sums(rows, coef, intercept))


def _add(*arrays: np.ndarray) -> np.ndarray:
    return np.sum(np.stack(arrays), axis=0)
