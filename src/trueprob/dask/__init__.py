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
so process-based clusters (see :func:`cluster_client`) work.

:func:`evaluate_path` takes the arguments of :func:`trueprob.streaming.evaluate_path` in its
order (a path or a dask DataFrame first); :func:`evaluate` also takes dask arrays, labels
first as in :func:`trueprob.evaluate`. The package is split by job: ``parts`` (what each task
reads), ``tasks`` (the task functions and their combiners), ``graphs`` (map-reduce and
progress), ``api`` (the public functions) and ``clusters`` (clients).
"""

from __future__ import annotations

from trueprob.dask.api import evaluate, evaluate_path, fit_temperature, fit_vector_scaling
from trueprob.dask.clusters import cluster_client, dask_client, local_workers, parse_local
from trueprob.dask.parts import PARTITION_ROWS, SPLIT_EVERY

__all__ = ["PARTITION_ROWS", "SPLIT_EVERY", "cluster_client", "dask_client", "evaluate",
           "evaluate_path", "fit_temperature", "fit_vector_scaling", "local_workers",
           "parse_local"]

