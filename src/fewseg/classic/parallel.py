"""Side by side: a frame's two outline levels are proposed and described in two threads.

The stages are numpy / scipy / scikit-image calls on whole frames, which release the GIL
in parts (the Gaussian filters, distance maps, labelling and watersheds): on two cores
the two levels of a 1024 x 1024 frame take ~0.8 of the time one after the other does.
The results are the same bit for bit (each level is computed exactly as alone; the cache
the levels share only holds values either would compute).

One rule, here: two threads when the process may use two cores or more, the frame is
large enough to pay for a thread, and the call comes from the process's main thread
(the command line, the batch loop, the NimbusImage worker). A task on a dask worker runs
in the worker's own thread, one per core, so it stays serial there and the cluster's
cores are not asked for twice. ``FEWSEG_THREADS=1`` in the environment turns it off
(``FEWSEG_THREADS=2`` turns it on from any thread).
"""

from __future__ import annotations

import os
import threading
from typing import Callable, Sequence, TypeVar

T = TypeVar("T")
R = TypeVar("R")

#: Frames smaller than this many pixels are done one level after the other (a thread
#: costs more than it saves on a small frame).
MIN_PIXELS = 256 * 256


def threads() -> int:
    """Threads a frame's levels may use: ``FEWSEG_THREADS`` when set (1 or 2), else 2
    where this process may use two cores or more and this is its main thread, else 1."""
    value = os.environ.get("FEWSEG_THREADS", "").strip()
    if value:
        from ..errors import InputError

        if value not in ("1", "2"):
            raise InputError("FEWSEG_THREADS", f"expected 1 or 2 (threads for a frame's two levels), got {value!r}")
        return int(value)
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return 2 if cores >= 2 and threading.current_thread() is threading.main_thread() else 1


def map_levels(fn: Callable[[T], R], items: Sequence[T], *, pixels: int) -> list[R]:
    """``[fn(item) for item in items]``, two at a time when :func:`threads` allows and
    the frame has at least :data:`MIN_PIXELS` ``pixels``. An error in ``fn`` is raised
    as it would be one after the other (the first item's first).

    Examples
    --------
    >>> map_levels(lambda x: x * x, [2, 3], pixels=1024 * 1024)
    [4, 9]
    """
    if len(items) < 2 or pixels < MIN_PIXELS or threads() < 2:
        return [fn(item) for item in items]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="fewseg-level") as pool:
        futures = [pool.submit(fn, item) for item in items]
        return [f.result() for f in futures]
