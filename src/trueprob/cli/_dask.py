"""The CLI's Dask options: ``--dask local[:N]`` and ``--scheduler ADDRESS`` to a client."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any


def parse_local(spec: str) -> int | None:
    """Workers of a ``--dask`` spec: ``"local"`` (None: dask's default) or ``"local:N"``.

    >>> parse_local("local"), parse_local("local:2")
    (None, 2)
    """
    from trueprob.dask.clusters import local_workers

    try:
        return local_workers(spec)
    except ValueError:
        raise ValueError(f"--dask must be 'local' or 'local:N' with N >= 1 workers; "
                         f"got {spec!r}") from None


@contextlib.contextmanager
def dask_client(*, scheduler: str | None = None, local: str | None = None,
                processes: bool = True) -> Iterator[Any]:
    """The client of ``--scheduler ADDRESS`` or ``--dask local[:N]`` (None for neither; see
    :func:`trueprob.dask.cluster_client`), closed on exit.

    >>> with dask_client() as client:
    ...     client is None
    True
    """
    import logging

    from trueprob.dask.clusters import cluster_client

    # the CLI reports a failed task itself (naming the file and row); distributed's own logs
    # of it (the worker's traceback, the tasks it then cancels) would only repeat it as noise
    logging.getLogger("distributed").setLevel(logging.CRITICAL)
    # worker processes read their logging levels from the environment when they start
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "critical")
    if scheduler is not None and local is not None:
        raise ValueError("pass --scheduler ADDRESS or --dask local[:N], not both")
    if local is not None:
        parse_local(local)
    with cluster_client(scheduler=scheduler, local=local, processes=processes) as client:
        yield client
