"""The map-reduce of :mod:`trueprob.dask`: the parts of an input, a reduction tree, its
computation with progress."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from trueprob._progress import ProgressBar
from trueprob.dask.parts import (
    _FIELDS,
    ArrayPart,
    FilePart,
    FramePart,
    Part,
    PathLike,
    _require_dask,
)
from trueprob.streaming import (
    _check_batch_rows,
    dataset_files,
)


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
