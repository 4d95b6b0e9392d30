"""Clients for :mod:`trueprob.dask`: a distributed cluster to connect to or start."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from typing import Any

from trueprob.dask.parts import _require_dask


def local_workers(spec: str) -> int | None:
    """Workers of a local-cluster spec: ``"local"`` (None: dask's default) or ``"local:N"``.

    >>> local_workers("local"), local_workers("local:2")
    (None, 2)
    """
    if spec == "local":
        return None
    head, _, count = str(spec).partition(":")
    if head == "local" and count.isdigit() and int(count) >= 1:
        return int(count)
    raise ValueError(f"a local cluster is 'local' or 'local:N' with N >= 1 workers; "
                     f"got {spec!r}")


@contextlib.contextmanager
def cluster_client(*, scheduler: str | None = None, local: str | None = None,
                   processes: bool = True) -> Iterator[Any]:
    """A ``distributed.Client``: connect to ``scheduler`` (an address), or start a local
    cluster (``local="local"`` or ``"local:N"`` workers, one thread each, in worker processes
    unless ``processes=False``); closed on exit. Neither given: no client (dask's default
    scheduler), yields None.

    Process-based workers import trueprob and run its module-level task functions; nothing
    of ``__main__`` is needed, so the ``trueprob`` console script is safe. A Python script
    that starts a local cluster of processes must do so under
    ``if __name__ == "__main__":`` (worker processes are spawned and re-import the script).

    >>> with cluster_client() as client:
    ...     client is None
    True
    """
    if scheduler is not None and local is not None:
        raise ValueError(f"give scheduler= or local=, not both; got scheduler={scheduler!r} "
                         f"and local={local!r}")
    if scheduler is None and local is None:
        yield None
        return
    workers = None if local is None else local_workers(local)
    _require_dask()
    from distributed import Client, LocalCluster

    if scheduler is not None:
        with Client(scheduler) as client:
            yield client
        return
    kwargs: dict[str, Any] = {"threads_per_worker": 1, "processes": processes,
                              "dashboard_address": ":0"}
    if workers is not None:
        kwargs["n_workers"] = workers
    with LocalCluster(**kwargs) as cluster, Client(cluster) as client:
        yield client


def parse_local(spec: str) -> int | None:
    """Deprecated: :func:`local_workers` (the CLI's ``--dask`` spec is read in ``trueprob.cli``).
    """
    warnings.warn("trueprob.dask.parse_local is deprecated; use trueprob.dask.local_workers",
                  DeprecationWarning, stacklevel=2)
    return local_workers(spec)


def dask_client(*, scheduler: str | None = None, local: str | None = None,
                processes: bool = True) -> contextlib.AbstractContextManager[Any]:
    """Deprecated: :func:`cluster_client` (same arguments)."""
    warnings.warn("trueprob.dask.dask_client is deprecated; use trueprob.dask.cluster_client",
                  DeprecationWarning, stacklevel=2)
    return cluster_client(scheduler=scheduler, local=local, processes=processes)
