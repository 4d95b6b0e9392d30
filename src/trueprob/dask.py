"""Dask: the report and the temperature fit of :mod:`trueprob.streaming`, over a cluster.

Data are split into *parts*: row groups of Parquet files (grouped to about
``partition_rows`` rows), whole files of other types, partitions of a ``dask.dataframe`` or
row blocks of ``dask.array`` inputs. Each part becomes one task that reads its rows (Parquet
with pyarrow inside the task, never through pandas object columns), reduces them batch by
batch to a fixed-size :class:`~trueprob.stats.EvaluationStats` state and returns the state as
bytes (:meth:`~trueprob.stats.EvaluationStats.to_bytes`: plain arrays, no pickle). States are
added in a tree of fan-in ``split_every`` and finalised once, on the caller. A task is a pure
function of its part, so a task lost with a worker is recomputed to the same bytes and the
result does not change.

Temperature scaling is fitted where the data are: each Halley step is one map-reduce of the
per-part sums of the NLL and its exact derivatives in beta = 1/T; only 4 numbers per part
travel. Vector scaling likewise: each Newton step adds the per-part NLL, gradient and
2K x 2K Hessian. Equal-mass edges are found the same way, by the exact
:class:`~trueprob.streaming.QuantileSearch`.

Every task runs on the current ``distributed.Client`` (or the one given as ``client=``), else
on dask's default scheduler. Task functions are module-level and their arguments plain data,
so process-based clusters (and the CLI, see :func:`dask_client`) work.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from trueprob import _progress
from trueprob._progress import ProgressBar
from trueprob.results import Report
from trueprob.stats.evaluation import EvaluationStats, check_reduce, check_unit
from trueprob.streaming import (
    BATCH_ROWS,
    N_FIRST,
    Batch,
    FitRows,
    QuantileSearch,
    SearchPlan,
    confidence_keys,
    dataset_files,
    fit_rows,
    fit_temperature_sums,
    merge_search,
    normalise,
    prepare_batch,
    search_pass,
    temperature_first_sums,
    temperature_sums,
)

PathLike = str | os.PathLike[str]
#: rows per task when a Parquet file is split by row groups
PARTITION_ROWS = 1 << 20
#: fan-in of the reduction tree
SPLIT_EVERY = 8
#: the field options, in the order every part records them (they are part of its task keys)
_FIELDS = ("logits", "probs", "labels", "targets", "counts", "sample_weight", "confidences",
          "predictions")


def _require_dask() -> Any:
    try:
        import dask
    except ImportError as exc:
        raise ImportError(
            "trueprob.dask needs the optional dependency 'dask', which is not installed; "
            "install it with: pip install 'trueprob[dask]'"
        ) from exc
    return dask


# ============================================================================ parts
@dataclass(frozen=True)
class FilePart:
    """Rows of one file: some row groups of a Parquet file, or a whole file of another type."""

    file: str
    row_groups: tuple[int, ...] | None
    first_row: int
    specs: tuple[tuple[str, Any], ...]
    batch_rows: int

    def batches(self) -> Iterator[tuple[str, int, dict[str, np.ndarray]]]:
        from trueprob.streaming import iter_batches

        specs = dict(self.specs)
        if self.row_groups is None:
            yield from iter_batches(self.file, **specs, batch_rows=self.batch_rows)
            return
        yield from _row_group_batches(self.file, self.row_groups, self.first_row, specs,
                                      self.batch_rows)


def _row_group_batches(file: str, row_groups: Sequence[int], first_row: int,
                       specs: dict[str, Any],
                       batch_rows: int) -> Iterator[tuple[str, int, dict[str, np.ndarray]]]:
    """Batches of some row groups of a Parquet file, through trueprob.io's Parquet reader
    (same field planning, checks, list columns and messages as ``iter_inputs``)."""
    from trueprob.io.fields import plan
    from trueprob.io.parquet_format import ParquetSource
    from trueprob.io.read import _assemble

    class RowGroups(ParquetSource):
        def batches(self, names: Sequence[str], batch_rows: int | None, *,
                    on_rows: Callable[[int], None] | None = None) -> Iterator[dict[str, Any]]:
            unique = list(dict.fromkeys(names))
            self._widths, self._offset = {}, first_row
            try:
                stream = self._file.iter_batches(batch_size=batch_rows, columns=unique,
                                                 row_groups=list(row_groups), use_threads=False)
                for batch in stream:
                    if batch.num_rows:
                        yield self._convert(unique, batch)
            except self._pa.ArrowException as exc:
                from trueprob.io import FileFormatError

                raise FileFormatError(f"{self.label}: the Parquet data is corrupt ({exc})") \
                    from exc

    with RowGroups(file, file) as source:
        fields = plan(source.label, source.names(), specs, table=True)
        needed = list(dict.fromkeys(n for names in fields.values() for n in names))
        source.check(needed)
        start = first_row
        for batch in source.batches(needed, batch_rows):
            arrays = normalise(_assemble(source.label, fields, batch))
            yield file, start, arrays
            start += len(next(iter(arrays.values())))


@dataclass(frozen=True)
class FramePart:
    """A partition of a dask DataFrame: ``fields`` maps each input to its column names."""

    fields: tuple[tuple[str, tuple[str, ...]], ...]
    index: int

    def batches(self, frame: Any) -> Iterator[tuple[str, int, dict[str, np.ndarray]]]:
        arrays = {}
        for name, columns in self.fields:
            arrays[name] = _frame_columns(frame, columns)
        if len(frame):
            yield f"<dask dataframe partition {self.index}>", 0, normalise(arrays)


def _frame_columns(frame: Any, columns: Sequence[str]) -> np.ndarray:
    """One input from a pandas partition: one column, a list column, or one column per class."""
    if len(columns) > 1:
        return np.column_stack([_plain(frame[c]) for c in columns])
    values = _plain(frame[columns[0]])
    if values.dtype == object:  # a column of lists or arrays: one row vector per row
        rows = [np.asarray(v) for v in values]
        width = {r.shape for r in rows}
        if len(width) > 1:
            raise ValueError(f"column {columns[0]!r} holds vectors of different lengths: "
                             f"{sorted(width)}")
        return np.stack(rows) if rows else np.empty((0, 0))
    return values


def _plain(series: Any) -> np.ndarray:
    """A pandas column as a numpy array (pyarrow list columns through pyarrow, not objects)."""
    arrow = getattr(series.array, "_pa_array", None)
    if arrow is not None:
        import pyarrow as pa

        chunked = arrow.combine_chunks() if hasattr(arrow, "combine_chunks") else arrow
        if pa.types.is_list(chunked.type) or pa.types.is_large_list(chunked.type) \
                or pa.types.is_fixed_size_list(chunked.type):
            n = len(chunked)
            flat = chunked.flatten().to_numpy(zero_copy_only=False)
            return flat.reshape(n, -1) if n else flat.reshape(0, 0)
        return chunked.to_numpy(zero_copy_only=False)
    return series.to_numpy()


@dataclass(frozen=True)
class ArrayPart:
    """A row block of dask arrays: ``fields`` names the arrays passed to the task, in order."""

    fields: tuple[str, ...]
    index: int

    def batches(self, *blocks: Any) -> Iterator[tuple[str, int, dict[str, np.ndarray]]]:
        arrays = {name: np.asarray(b) for name, b in zip(self.fields, blocks, strict=True)}
        if len(next(iter(arrays.values()))):
            yield f"<dask array block {self.index}>", 0, normalise(arrays)


Part = FilePart | FramePart | ArrayPart


@dataclass(frozen=True)
class _Settings:
    """What every task needs besides its rows (plain data)."""

    n_classes: int | None = None
    calibrator: tuple[str, dict[str, Any]] | None = None
    n_bins: int = 15
    closed: str = "right"
    edges: tuple[float, ...] | None = None
    binning: str = "width"
    purpose: str | None = None


def _calibrator_of(settings: _Settings) -> Any:
    if settings.calibrator is None:
        return None
    from trueprob.calibrators import from_dict

    module, data = settings.calibrator
    importlib.import_module(module)  # registers the class with from_dict
    return from_dict(data)


def _part_batches(part: Part, settings: _Settings, data: tuple[Any, ...]) -> Iterator[Batch]:
    calibrator = _calibrator_of(settings)
    k = settings.n_classes
    for source, start, arrays in part.batches(*data):
        batch = prepare_batch(arrays, n_classes=k, calibrator=calibrator, source=source,
                              start=start, purpose=settings.purpose)
        k = batch.inputs.n_classes
        yield batch


def _fit_sums(part: Part, settings: _Settings, data: tuple[Any, ...], width: int,
              sums: Callable[[FitRows], np.ndarray]) -> np.ndarray:
    """``sums(rows)`` added over the fit rows of every batch of a part (zeros: no rows)."""
    assert settings.purpose is not None  # the settings of a fit
    out = np.zeros(width)
    for batch in _part_batches(part, settings, data):
        for rows in fit_rows(batch, purpose=settings.purpose):
            out += sums(rows)
    return out


def _scores_kind(batch: Batch) -> str:
    """What a fit's scores are: "logits", or "probs" (their floored logs)."""
    return "logits" if batch.inputs.kind == "logits" else "probs"


# ============================================================================ tasks
def _state_task(part: Part, settings: _Settings, *data: Any) -> bytes | None:
    """One part's EvaluationStats as bytes (None for a part without rows)."""
    stats: EvaluationStats | None = None
    from trueprob.streaming import _checked_chunks

    for batch in _part_batches(part, settings, data):
        inputs = batch.inputs
        if stats is None:
            stats = EvaluationStats(inputs.n_classes, n_bins=settings.n_bins,
                                    closed=settings.closed, edges=settings.edges,
                                    binning_name=settings.binning)
        stats.input_kinds.add(inputs.kind)
        stats.target_kinds.add(inputs.target_kind)
        for chunk in _checked_chunks(batch):
            stats.update_chunk(inputs.xp, chunk)
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
    from trueprob._array import to_numpy
    from trueprob.core.rows import row_quantities
    from trueprob.streaming import _checked_chunks

    total, merged = 0.0, None
    for batch in _part_batches(part, settings, data):
        for chunk in _checked_chunks(batch):
            rows = row_quantities(batch.inputs.xp, chunk, need_scores=False)
            w = None if chunk.weights is None else to_numpy(chunk.weights)
            keys = confidence_keys(to_numpy(rows.confidence))
            merged = merge_search(merged, search_pass(plan, keys, w))
            total += float(keys.size) if w is None else float(w.sum())
    return total, merged


def _merge_search_parts(*parts: tuple[float, list[Any] | None]) -> tuple[float, list[Any] | None]:
    total, merged = 0.0, None
    for t, m in parts:
        total += t
        if m is not None:
            merged = merge_search(merged, m)
    return total, merged


def _first_task(part: Part, settings: _Settings, *data: Any) -> tuple[str, int, np.ndarray] | None:
    """One part's first-pass sums of a temperature fit: (kind, K, sums), None if empty."""
    out: tuple[str, int, np.ndarray] | None = None
    for batch in _part_batches(part, settings, data):
        kind = _scores_kind(batch)
        sums = np.zeros(N_FIRST) if out is None else out[2]
        for rows in fit_rows(batch):
            sums = sums + temperature_first_sums(rows)
        if out is not None and (out[0], out[1]) != (kind, batch.inputs.n_classes):
            raise ValueError(f"{batch.source}: the inputs are {kind} with "
                             f"K={batch.inputs.n_classes}, earlier rows {out[0]} with "
                             f"K={out[1]}")
        out = (kind, batch.inputs.n_classes, sums)
    return out


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
    from trueprob.streaming import vector_sums

    k = len(coef)
    return _fit_sums(part, settings, data, 2 + 2 * k + 4 * k * k,
                     lambda rows: vector_sums(rows, coef, intercept))


def _add(*arrays: np.ndarray) -> np.ndarray:
    return np.sum(np.stack(arrays), axis=0)


# ============================================================================ graphs
@dataclass(frozen=True)
class _Plan:
    """The parts of an input and the dask objects each part's task takes."""

    parts: list[Part]
    data: list[tuple[Any, ...]]
    label: str

    def rows(self, result: Any) -> Any:
        """``result`` of a map-reduce, or the error of an input without rows (None)."""
        if result is None:
            raise ValueError(f"{self.label}: no rows; at least one row is needed")
        return result


@dataclass(frozen=True)
class _Passes:
    """Where the map-reduce passes of one call run: its parts, fan-in, client and bar."""

    plan: _Plan
    split_every: int
    client: Any
    bar: ProgressBar

    def run(self, task: Callable[..., Any], args: tuple[Any, ...],
            combine: Callable[..., Any], description: str) -> Any:
        """One pass (see :func:`_map_reduce`), the bar restarted with ``description``."""
        return _map_reduce(self.plan, task, args, combine, self.split_every, self.client,
                           self.bar, description)


def _tree(nodes: list[Any], combine: Callable[..., Any], split_every: int) -> Any:
    """Reduce delayed nodes with ``combine`` in a tree of fan-in ``split_every``."""
    dask = _require_dask()
    while len(nodes) > 1:
        nodes = [dask.delayed(combine, pure=True)(*nodes[i:i + split_every])
                 for i in range(0, len(nodes), split_every)]
    return nodes[0]


def _map_reduce(plan: _Plan, task: Callable[..., Any], args: tuple[Any, ...],
                combine: Callable[..., Any], split_every: int, client: Any,
                bar: ProgressBar | None = None, description: str = "") -> Any:
    """``task`` on every part, the results reduced by ``combine`` in a tree, computed.

    With a drawn ``bar``, it is restarted with ``description`` and advanced as each part's
    task completes (see :func:`_counted_compute`); the graph and the result are the same.
    """
    dask = _require_dask()
    leaves = [dask.delayed(task, pure=True)(part, *args, *data)
              for part, data in zip(plan.parts, plan.data, strict=True)]
    if bar is not None and bar.active:
        bar.restart(description, total=len(leaves))
        return _counted_compute(leaves, combine, split_every, client, bar)
    root = _tree(leaves, combine, split_every)
    if client is not None:
        return client.compute(root).result()
    return dask.compute(root)[0]


def _counted_compute(leaves: list[Any], combine: Callable[..., Any], split_every: int,
                     client: Any, bar: ProgressBar) -> Any:
    """Compute the tree over ``leaves``, advancing ``bar`` once per finished leaf.

    On a distributed client the tree is submitted together with its leaves, so the client
    holds a future of each leaf: it already hears from the scheduler when a future it holds
    finishes, so counting them costs no extra round trip; a leaf lost with a worker is
    recomputed as before. On dask's local schedulers a callback counts the leaves' keys as
    their tasks end. The keys are those of the uncounted graph.
    """
    dask = _require_dask()
    client = client if client is not None else _current_client()
    if client is None:
        from dask.callbacks import Callback

        keys = {leaf.key for leaf in leaves}

        def posttask(key: Any, result: Any, dsk: Any, state: Any, worker_id: Any) -> None:
            if key in keys:
                bar.advance(1)

        with Callback(posttask=posttask):
            return dask.compute(_tree(leaves, combine, split_every))[0]
    from distributed import as_completed

    # one submission: the tree and, as futures the client holds, its leaves (same keys)
    result, *futures = client.compute([_tree(leaves, combine, split_every), *leaves])
    for future in as_completed(futures):
        bar.advance(1)
        if future.status == "error":
            break  # the result raises the task's error now, as without the bar
    return result.result()


def _current_client() -> Any:
    """The distributed client that ``dask.compute`` would use now, or None."""
    import dask.base

    scheduler = dask.base.get_scheduler()
    owner = getattr(scheduler, "__self__", None)
    try:
        from distributed import Client
    except ImportError:
        return None
    return owner if isinstance(owner, Client) else None


def _check_split_every(split_every: int) -> int:
    if isinstance(split_every, bool) or not isinstance(split_every, (int, np.integer)) \
            or split_every < 2:
        raise ValueError(f"split_every must be an integer >= 2; got {split_every!r}")
    return int(split_every)


def _is_dask_dataframe(x: Any) -> bool:
    try:
        import dask.dataframe as dd
    except ImportError:  # dask without pandas: there can be no dask DataFrame
        return False
    return isinstance(x, dd.DataFrame)


def _is_dask_array(x: Any) -> bool:
    import dask.array as da

    return isinstance(x, da.Array)


def _file_parts(path: PathLike, specs: dict[str, Any], batch_rows: int,
                partition_rows: int) -> _Plan:
    """Parquet files split into groups of row groups; other files one part each."""
    items = tuple((k, v if not isinstance(v, list) else tuple(v)) for k, v in specs.items())
    parts: list[Part] = []
    for file in dataset_files(path):
        if file.suffix.lower() in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            from trueprob.io import FileFormatError

            try:
                meta = pq.ParquetFile(file).metadata
            except Exception as exc:  # pyarrow raises several types for a bad file
                raise FileFormatError(f"{file}: not a readable Parquet file ({exc})") from exc
            group: list[int] = []
            rows = first = start = 0
            for g in range(meta.num_row_groups):
                n = meta.row_group(g).num_rows
                if group and rows + n > partition_rows:
                    parts.append(FilePart(str(file), tuple(group), first, items, batch_rows))
                    group, rows, first = [], 0, start
                group.append(g)
                rows += n
                start += n
            if group or not parts:
                parts.append(FilePart(str(file), tuple(group), first, items, batch_rows))
        else:
            parts.append(FilePart(str(file), None, 0, items, batch_rows))
    return _Plan(parts, [() for _ in parts], os.fspath(path))


def _frame_parts(frame: Any, specs: dict[str, Any]) -> _Plan:
    from trueprob.io.fields import plan

    names = [str(c) for c in frame.columns]
    fields = plan("<dask dataframe>", names, specs, table=True)
    chosen = tuple((f, tuple(cols)) for f, cols in fields.items())
    needed = list(dict.fromkeys(c for _, cols in chosen for c in cols))
    delayed = frame[needed].to_delayed()
    parts: list[Part] = [FramePart(chosen, i) for i in range(len(delayed))]
    return _Plan(parts, [(d,) for d in delayed], "<dask dataframe>")


def _array_parts(arrays: dict[str, Any]) -> _Plan:
    import dask.array as da

    first = next(iter(arrays.values()))
    name0 = next(iter(arrays))
    for name, x in arrays.items():
        if not isinstance(x, da.Array):
            raise TypeError(f"{name} must be a dask array like the others; got "
                            f"{type(x).__name__}")
        if x.ndim not in (1, 2):
            raise ValueError(f"{name} must be (N,) or (N, K); got shape {x.shape}")
        if x.shape[0] != first.shape[0]:
            raise ValueError(f"{name} has {x.shape[0]} rows but {name0} has {first.shape[0]}")
    rows = first.chunks[0]
    blocks = {}
    for name, x in arrays.items():
        x = x.rechunk({0: rows, 1: -1} if x.ndim == 2 else {0: rows})
        blocks[name] = x.to_delayed().reshape(-1)
    fields = tuple(arrays)
    parts: list[Part] = [ArrayPart(fields, i) for i in range(len(rows))]
    data = [tuple(blocks[f][i] for f in fields) for i in range(len(rows))]
    return _Plan(parts, data, "<dask arrays>")


def _planned(data: Any, fields: dict[str, Any], batch_rows: int, partition_rows: int,
             split_every: int) -> tuple[_Plan, int]:
    """The options every public function checks, then the parts of ``data``: (plan, fan-in).

    ``fields`` holds the field options the function takes; the others are None.
    """
    from trueprob.streaming import _check_batch_rows

    batch_rows = _check_batch_rows(batch_rows)
    partition_rows = _check_batch_rows(partition_rows)
    fan_in = _check_split_every(split_every)
    specs = dict.fromkeys(_FIELDS) | fields  # always every field, in the order of _FIELDS
    return _plan_inputs(data, specs, batch_rows, partition_rows), fan_in


def _plan_inputs(data: Any, specs: dict[str, Any], batch_rows: int,
                 partition_rows: int) -> _Plan:
    """Parts of a path, a dask DataFrame, or dask arrays (``data`` = labels or None)."""
    _require_dask()
    given = {k: v for k, v in specs.items() if v is not None}
    if isinstance(data, (str, os.PathLike)):
        _names_only(given, "a path")
        return _file_parts(data, specs, batch_rows, partition_rows)
    if data is not None and _is_dask_dataframe(data):
        _names_only(given, "a dask DataFrame")
        return _frame_parts(data, specs)
    if data is not None and not _is_dask_array(data):
        raise TypeError(f"data must be a path, a dask DataFrame, or dask arrays (labels "
                        f"positional, like trueprob.evaluate); got {type(data).__name__}")
    if "labels" in given:
        raise TypeError("with dask arrays pass the labels positionally, as in "
                        "trueprob.evaluate(labels, logits=...)")
    arrays = dict(given)
    if data is not None:
        arrays["labels"] = data
    if not arrays:
        raise TypeError("pass a path, a dask DataFrame, or dask arrays (logits= / probs= and "
                        "labels / targets= / counts=)")
    return _array_parts(arrays)


def _names_only(given: dict[str, Any], what: str) -> None:
    for name, value in given.items():
        ok = isinstance(value, str) or (isinstance(value, (list, tuple))
                                        and all(isinstance(v, str) for v in value))
        if not ok:
            raise TypeError(f"with {what}, {name}= names a column or array (a name, a glob or "
                            f"a list of names); got {type(value).__name__}")


# ============================================================================ public API
def evaluate(
    data: Any = None,
    /,
    *,
    logits: Any = None,
    probs: Any = None,
    labels: Any = None,
    targets: Any = None,
    counts: Any = None,
    sample_weight: Any = None,
    confidences: Any = None,
    predictions: Any = None,
    n_classes: int | None = None,
    calibrator: Any = None,
    n_bins: int = 15,
    binning: str = "width",
    closed: str = "right",
    unit: str = "nats",
    reduce: str = "mean",
    batch_rows: int = BATCH_ROWS,
    partition_rows: int = PARTITION_ROWS,
    split_every: int = SPLIT_EVERY,
    client: Any = None,
    quiet: bool | None = None,
) -> Report:
    """The :func:`trueprob.evaluate` report of a dataset on a Dask cluster.

    Parameters
    ----------
    data : path, dask DataFrame, dask Array or None
        - a path (a file, a folder of files or a glob, see
          :func:`trueprob.streaming.dataset_files`): the field options name columns or arrays
          (as in :func:`trueprob.io.read_inputs`; auto-detected when not given). Parquet files
          are split into tasks of about ``partition_rows`` rows (whole row groups), each read
          with pyarrow inside its task;
        - a dask DataFrame: the field options name its columns (one per class, a glob such as
          ``"logit_*"``, or one column of lists);
        - the labels as a dask Array (or None with ``targets=`` / ``counts=``): the field
          options are dask arrays with the same rows, as in ``trueprob.evaluate(labels,
          logits=...)``.
    logits, probs, labels, targets, counts, sample_weight, confidences, predictions
        Names (path, DataFrame) or dask arrays (see ``data``).
    n_classes, calibrator, n_bins, binning, closed, unit, reduce
        As in :func:`trueprob.streaming.evaluate_path`. ``binning="mass"`` runs the exact
        quantile search first (a few more map-reduce passes).
    batch_rows : int
        Rows per batch read inside a task (bounded memory per task).
    partition_rows : int
        Rows per task when splitting Parquet files by row groups.
    split_every : int
        Fan-in of the tree that adds the states.
    client : distributed.Client, optional
        Where to run; default: the current client, else dask's default scheduler.
    quiet : bool, optional
        ``True``: no progress bar. By default a bar over the parts whose tasks have finished
        is drawn on standard error when it is a terminal, restarted at each map-reduce
        ("pass 2: equal-mass edges", "evaluating"). It does not change the graph or the
        result.

    Returns
    -------
    Report
        Equal to ``trueprob.evaluate`` on all rows up to floating-point rounding; the same
        bytes whatever the number of workers or a worker lost and its tasks recomputed.

    Examples
    --------
    >>> import numpy as np, dask.array as da, trueprob
    >>> z = np.array([[2.0, 0.0, 0.0], [0.0, 3.0, 0.0], [1.0, 0.0, 2.0], [0.0, 0.5, 0.0]])
    >>> y = np.array([0, 1, 0, 2])
    >>> report = evaluate(da.from_array(y, chunks=2), logits=da.from_array(z, chunks=(2, 3)))
    >>> report.accuracy, round(report.nll, 4)
    (0.5, 0.7591)
    """
    check_unit(unit)
    check_reduce(reduce)
    if binning not in ("width", "mass"):
        raise ValueError(f"binning must be 'width' or 'mass'; got {binning!r}")
    plan, fan_in = _planned(
        data, {"logits": logits, "probs": probs, "labels": labels, "targets": targets,
               "counts": counts, "sample_weight": sample_weight, "confidences": confidences,
               "predictions": predictions}, batch_rows, partition_rows, split_every)
    cal = None if calibrator is None else (type(calibrator).__module__, calibrator.to_dict())
    settings = _Settings(n_classes=n_classes, calibrator=cal, n_bins=n_bins, closed=closed)
    EvaluationStats(2, n_bins=n_bins, closed=closed)  # bad settings fail here, not in a task
    with _progress.progress("evaluating", total=len(plan.parts), quiet=quiet) as bar:
        passes = _Passes(plan, fan_in, client, bar)
        last = "evaluating"
        if binning == "mass":
            search = QuantileSearch(n_bins)
            while (step := search.plan()) is not None:
                total, merged = passes.run(_search_task, (settings, step), _merge_search_parts,
                                           f"pass {search.passes + 1}: equal-mass edges")
                search.update(step, plan.rows(merged), total)
            settings = dataclasses.replace(
                settings, edges=tuple(float(e) for e in search.edges()), binning="mass")
            last = "last pass: evaluating"
        blob = passes.run(_state_task, (settings,), _merge_states, last)
    return EvaluationStats.from_bytes(plan.rows(blob)).finalize(unit=unit, reduce=reduce)


def fit_temperature(
    data: Any = None,
    /,
    *,
    logits: Any = None,
    probs: Any = None,
    labels: Any = None,
    targets: Any = None,
    counts: Any = None,
    sample_weight: Any = None,
    max_iter: int = 50,
    batch_rows: int = BATCH_ROWS,
    partition_rows: int = PARTITION_ROWS,
    split_every: int = SPLIT_EVERY,
    client: Any = None,
    quiet: bool | None = None,
) -> Any:
    """Temperature scaling fitted by maximum likelihood where the data are.

    Minimises f(beta) = (1/W) sum_i w_i [ logsumexp(beta z_i) - beta t_i . z_i ], beta = 1/T,
    by the safeguarded Halley iteration of
    :class:`~trueprob.calibrators.temperature.TemperatureScaling`: one map-reduce for f(1)
    and the degenerate cases, then one per step, each adding the per-part sums of f, f', f''
    and f''' (:func:`trueprob.streaming.temperature_sums`). Only those numbers leave the
    workers. ``data`` and the field options are those of :func:`evaluate`; to avoid
    re-reading the files at every step of a dask DataFrame or Array, persist it first.
    ``quiet`` as in :func:`evaluate` (the bar names the pass: "temperature: Halley pass 3").

    Returns
    -------
    TemperatureScaling
        Fitted; equal to ``TemperatureScaling().fit`` on all rows to machine precision.

    Examples
    --------
    >>> import numpy as np, dask.array as da
    >>> z = np.array([[4.0, 0.0], [0.0, 4.0], [4.0, 0.0], [0.0, 4.0]])
    >>> y = np.array([0, 1, 1, 1])
    >>> ts = fit_temperature(da.from_array(y, chunks=2), logits=da.from_array(z, chunks=2))
    >>> round(ts.temperature_, 6)
    3.640957
    """
    plan, fan_in = _planned(
        data, {"logits": logits, "probs": probs, "labels": labels, "targets": targets,
               "counts": counts, "sample_weight": sample_weight},
        batch_rows, partition_rows, split_every)
    settings = _Settings(purpose="temperature scaling")
    with _progress.progress("temperature", total=len(plan.parts), quiet=quiet) as bar:
        passes = _Passes(plan, fan_in, client, bar)
        kind, k, sums = plan.rows(passes.run(_first_task, (settings,), _merge_first,
                                             "temperature: first pass (T = 1)"))
        halley = 0

        def run_pass(beta: float) -> np.ndarray:
            nonlocal halley
            halley += 1
            return np.asarray(passes.run(_temperature_task, (settings, float(beta)), _add,
                                         f"temperature: Halley pass {halley}"))

        return fit_temperature_sums(sums, run_pass, kind=kind, n_classes=k,
                                    max_iter=max_iter)


def fit_vector_scaling(
    data: Any = None,
    /,
    *,
    logits: Any = None,
    probs: Any = None,
    labels: Any = None,
    targets: Any = None,
    counts: Any = None,
    sample_weight: Any = None,
    reg: str = "l2",
    reg_lambda: float = 0.0,
    reg_mu: float | None = None,
    tol: float = 1e-9,
    max_iter: int = 100,
    batch_rows: int = BATCH_ROWS,
    partition_rows: int = PARTITION_ROWS,
    split_every: int = SPLIT_EVERY,
    client: Any = None,
    quiet: bool | None = None,
) -> Any:
    """Vector scaling (r_i = softmax(w * x_i + b)) fitted by Newton's method where the data
    are: each step is one map-reduce of the per-part NLL, gradient and 2K x 2K Hessian
    (:func:`trueprob.streaming.vector_sums`), solved on the caller
    (:func:`trueprob.streaming.fit_vector_sums`). Penalties as
    :class:`~trueprob.calibrators.scaling.VectorScaling` with a fixed ``reg_lambda``.
    ``data``, the field options and ``quiet`` are those of :func:`evaluate`.

    Returns
    -------
    VectorScaling
        Fitted; equal to ``VectorScaling(...).fit`` on all rows to the solver's tolerance.

    Examples
    --------
    >>> import numpy as np, dask.array as da
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=(2000, 3)) * 2
    >>> y = np.array([rng.choice(3, p=np.exp(r) / np.exp(r).sum()) for r in z])
    >>> vs = fit_vector_scaling(da.from_array(y, chunks=500),
    ...                         logits=da.from_array(3 * z, chunks=(700, 3)))
    >>> np.round(1 / vs.coef_)
    array([3., 3., 3.])
    """
    from trueprob.streaming import fit_vector_sums

    plan, fan_in = _planned(
        data, {"logits": logits, "probs": probs, "labels": labels, "targets": targets,
               "counts": counts, "sample_weight": sample_weight},
        batch_rows, partition_rows, split_every)
    settings = _Settings(purpose="vector scaling")
    with _progress.progress("vector scaling", total=len(plan.parts), quiet=quiet) as bar:
        passes = _Passes(plan, fan_in, client, bar)
        kind, k = plan.rows(passes.run(_probe_task, (settings,), _merge_probe,
                                       "vector scaling: checking the inputs"))
        newton = 0

        def run_pass(coef: np.ndarray, intercept: np.ndarray) -> np.ndarray:
            nonlocal newton
            newton += 1
            return np.asarray(passes.run(_vector_task, (settings, coef, intercept), _add,
                                         f"vector scaling: Newton pass {newton}"))

        return fit_vector_sums(run_pass, kind=kind, n_classes=k, reg=reg,
                               reg_lambda=reg_lambda, reg_mu=reg_mu, tol=tol,
                               max_iter=max_iter)


# ============================================================================ clusters
def parse_local(spec: str) -> int | None:
    """Workers of a ``--dask`` spec: ``"local"`` (None: dask's default) or ``"local:N"``.

    >>> parse_local("local"), parse_local("local:2")
    (None, 2)
    """
    if spec == "local":
        return None
    head, _, count = spec.partition(":")
    if head == "local" and count.isdigit() and int(count) >= 1:
        return int(count)
    raise ValueError(f"--dask must be 'local' or 'local:N' with N >= 1 workers; got {spec!r}")


@contextlib.contextmanager
def dask_client(*, scheduler: str | None = None, local: str | None = None,
                processes: bool = True) -> Iterator[Any]:
    """A ``distributed.Client`` for the CLI: connect to ``scheduler`` (an address), or start
    a local cluster (``local="local"`` or ``"local:N"`` workers, one thread each, in worker
    processes unless ``processes=False``); closed on exit. Neither given: no client (dask's
    default scheduler), yields None.

    Process-based workers import trueprob and run its module-level task functions; nothing
    of ``__main__`` is needed, so the ``trueprob`` console script is safe. A Python script
    that starts a local cluster of processes must do so under
    ``if __name__ == "__main__":`` (worker processes are spawned and re-import the script).

    >>> with dask_client() as client:
    ...     client is None
    True
    """
    if scheduler is not None and local is not None:
        raise ValueError("pass --scheduler ADDRESS or --dask local[:N], not both")
    if scheduler is None and local is None:
        yield None
        return
    _require_dask()
    from distributed import Client, LocalCluster

    if scheduler is not None:
        with Client(scheduler) as client:
            yield client
        return
    assert local is not None
    workers = parse_local(local)
    kwargs: dict[str, Any] = {"threads_per_worker": 1, "processes": processes,
                              "dashboard_address": ":0"}
    if workers is not None:
        kwargs["n_workers"] = workers
    with LocalCluster(**kwargs) as cluster, Client(cluster) as client:
        yield client


__all__ = ["dask_client", "evaluate", "fit_temperature", "fit_vector_scaling", "parse_local"]
