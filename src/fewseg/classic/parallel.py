"""Side by side: a frame's two outline levels are proposed and described at once.

The second level is computed in a forked copy of this process while this one computes
the first; the child sends its result back pickled. A fork shares everything already in
memory (the imports, the frame, its signal) and each side runs on its own core, which
threads do not: the stages are many small numpy / scipy / scikit-image calls that hold
the GIL between them (two threads made the busy demo slower than one level after the
other; a fork makes the NimbusImage preview 0.81 of serial and ``fewseg segment`` on the
busy demo 0.84, wall-clock: ``benchmarks/bench_preview.py``,
``benchmarks/bench_command.py``, docs/nimbus.md, docs/performance.md). The results are the same bit for
bit: each level is computed exactly as alone (the second without the first's cache of
region cuts, which holds only values it would compute).

One rule, here: a fork when the platform forks (Linux), this process has two cores or
more to use (a container limited to less CPU time does not), the frame is large enough to pay for it, and this process runs no other
thread and this is its main thread (forking a process that runs threads can leave a lock
held forever in the child: napari's Qt threads, a dask worker's thread pool); otherwise one
level after the other. The command line, the batch loop and the NimbusImage worker fork;
napari's Find (a worker thread) and a dask task do not.
``FEWSEG_PARALLEL=0`` in the environment turns it off.
"""

from __future__ import annotations

import os
import pickle
import sys
import threading
from typing import Callable, Sequence, TypeVar

T = TypeVar("T")
R = TypeVar("R")

#: Frames smaller than this many pixels are done one level after the other (a fork and
#: the pickled result cost more than they save on a small frame).
MIN_PIXELS = 256 * 256


def parallel() -> bool:
    """Whether :func:`map_levels` may fork: ``FEWSEG_PARALLEL`` is not ``0``, the
    platform is Linux, this process may use two cores or more (:func:`cores`: a
    container's CPU limit counts), runs one thread (this
    call's, its main thread: not napari's worker thread nor a dask task's) and is not a
    daemonic worker of a ``multiprocessing`` pool (which may not start children)."""
    value = os.environ.get("FEWSEG_PARALLEL", "").strip()
    if value not in ("", "0", "1"):
        from ..errors import InputError

        raise InputError("FEWSEG_PARALLEL", f"expected 0 (one level after the other) or 1, got {value!r}")
    if value == "0" or not sys.platform.startswith("linux"):
        return False
    import multiprocessing

    return (cores() >= 2 and threading.current_thread() is threading.main_thread()
            and threading.active_count() == 1 and not multiprocessing.current_process().daemon)


#: Where a container's CPU limit is read: cgroup v2's ``cpu.max`` ("QUOTA PERIOD" or
#: "max PERIOD"), else cgroup v1's quota and period (a quota of -1: no limit).
CGROUP_V2 = "/sys/fs/cgroup/cpu.max"
CGROUP_V1 = ("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu/cpu.cfs_period_us")


def cores() -> float:
    """The cores this process may use: the CPUs it may run on, fewer where its container
    is limited to less CPU time (``docker run --cpus=1`` leaves every CPU in the affinity
    mask but one CPU's worth of time, and two processes would then share it)."""
    n = float(len(os.sched_getaffinity(0)))
    try:
        with open(CGROUP_V2) as f:
            quota, period = f.read().split()[:2]
        if quota != "max":
            n = min(n, int(quota) / int(period))
        return n
    except (OSError, ValueError):
        pass
    try:
        with open(CGROUP_V1[0]) as f, open(CGROUP_V1[1]) as g:
            quota, period = int(f.read()), int(g.read())
        if quota > 0 and period > 0:
            n = min(n, quota / period)
    except (OSError, ValueError):
        pass
    return n


def map_levels(fn: Callable[[T], R], items: Sequence[T], *, pixels: int) -> list[R]:
    """``[fn(item) for item in items]``: the first item here, the others each in a forked
    child at the same time, when :func:`parallel` allows and the frame has at least
    :data:`MIN_PIXELS` ``pixels``. A child that fails (an error, killed, out of memory)
    has its item computed here instead, so an error is raised here with its own
    traceback (an exception is never pickled: not every one can be read back).

    Examples
    --------
    >>> map_levels(lambda x: x * x, [2, 3], pixels=1024 * 1024)
    [4, 9]
    """
    if len(items) < 2 or pixels < MIN_PIXELS or not parallel():
        return [fn(item) for item in items]
    import multiprocessing

    context = multiprocessing.get_context("fork")
    children = []
    for item in items[1:]:
        receive, send = context.Pipe(duplex=False)
        child = context.Process(target=_child, args=(fn, item, send), daemon=True)
        child.start()
        send.close()
        children.append((child, receive, item))
    out = [fn(items[0])]
    for child, receive, item in children:
        try:
            ok, value = pickle.loads(receive.recv_bytes())
        except (EOFError, OSError):  # the child died without answering
            ok, value = False, None
        finally:
            receive.close()
            child.join()
        out.append(value if ok else fn(item))
    return out


def _child(fn: Callable, item, send) -> None:
    """In the forked child: ``(True, fn(item))`` sent back, or ``(False, None)`` when it
    fails (the parent computes the item again and meets the error itself)."""
    try:
        message = pickle.dumps((True, fn(item)), protocol=pickle.HIGHEST_PROTOCOL)
    except BaseException:  # noqa: BLE001 (the parent computes it again and raises)
        message = pickle.dumps((False, None))
    try:
        send.send_bytes(message)
    finally:
        send.close()
