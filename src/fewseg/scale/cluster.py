"""Where the tasks run: a local cluster, or a scheduler that already exists."""

from __future__ import annotations

import contextlib
import os
from typing import Iterator

from ..errors import InputError, require

__all__ = ["connect", "scheduler_address"]


def scheduler_address(address: str | None) -> str | None:
    """``address``, else ``DASK_SCHEDULER_ADDRESS`` from the environment, else None."""
    return address or os.environ.get("DASK_SCHEDULER_ADDRESS") or None


@contextlib.contextmanager
def connect(*, workers: int | None = None, scheduler: str | None = None, threads_per_worker: int = 1,
            memory_limit: str | None = "auto", verbose: bool = False) -> Iterator[object]:
    """A ``distributed.Client``: to ``scheduler`` when given, else to a new
    ``LocalCluster`` of ``workers`` processes (one thread each: fewseg's stages use
    numpy / scipy, which release the GIL only in parts), closed on exit.

    SLURM / PBS (dask-jobqueue), Kubernetes (dask-kubernetes) and Coiled all give a
    scheduler address: start the cluster there and pass it as ``scheduler``.

    The local cluster's processes log only CRITICAL records unless ``verbose``: a task
    refused as bad input, or cancelled after another was, is reported once by fewseg, not
    in dask's log lines on the user's terminal.
    """
    require("distributed", extra="scale", purpose="Running on dask.distributed")
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            client = Client(scheduler, timeout="30s")
        except (OSError, TimeoutError) as exc:
            raise InputError("--scheduler", f"cannot reach the dask scheduler at {scheduler!r}: {exc}") from None
        try:
            yield client
        finally:
            client.close()
        return
    if not workers or workers < 1:
        raise InputError("--workers", f"expected at least 1 worker, got {workers}")
    import logging

    with LocalCluster(n_workers=workers, threads_per_worker=threads_per_worker, processes=True,
                      memory_limit=memory_limit, dashboard_address=":0",  # any free port: 8787 may be taken
                      silence_logs=logging.WARNING if verbose else logging.CRITICAL) as cluster, \
            Client(cluster) as client:
        yield client
