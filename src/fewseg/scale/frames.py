"""Many frames on ``dask.distributed``: fit once, one task per frame, results on disk.

::

    with connect(workers=2) as client:
        run = segment_distributed(client, segmenter, frames, locations, results_dir="out.fewseg-frames",
                                  examples={frame.location: examples}, signature=sig)

The fitted segmenter is sent to every worker once (``client.scatter(...,
broadcast=True)``); each task gets it, a :class:`~fewseg.io.dataset.FileFrames` (paths, no
pixels) and its location, reads its own frame, calls :func:`fewseg.batch.predict_frame`
(the loop every way in shares) and writes its result atomically (:mod:`~fewseg.scale.store`).
A task whose stored result has the same signature and frame digest returns without
predicting. The client only waits, counts and assembles from the stored results.

A worker that dies takes only its running frames with it: dask runs them again on
another worker; what still failed (e.g. the model's copies were all lost) is sent again
in a second round, after scattering the model anew.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from ..batch import FrameResult, predict_frame
from ..io.dataset import FileFrames, frame_digest
from ..errors import InputError
from ..objects import Location
from .store import read_result, result_path, stored_signature, write_result

__all__ = ["segment_frame_task", "segment_distributed", "DistributedRun"]


def segment_frame_task(segmenter, frames: FileFrames, location: Location, *, signature: str, results_dir: str,
                       exclude=None, resume: bool = True) -> dict:
    """One frame, on a worker: read it, predict it unless its stored result is current,
    store the result. Returns ``{"location", "status": "done" | "kept", "seconds"}``."""
    t0 = time.perf_counter()
    try:
        frame = frames.read(location)
    except InputError as exc:  # returned, not raised: bad input is no task failure for dask to log and retry
        return {"location": location, "status": "refused", "error": exc, "seconds": time.perf_counter() - t0}
    digest = frame_digest(frame)
    path = result_path(results_dir, location)
    if resume and stored_signature(path) == (signature, digest):
        return {"location": location, "status": "kept", "seconds": time.perf_counter() - t0}
    result = predict_frame(segmenter, frame, exclude=exclude)
    write_result(path, result, signature=signature, frame_digest=digest, shape=frame.shape)
    return {"location": location, "status": "done", "seconds": time.perf_counter() - t0}


@dataclass
class DistributedRun:
    """What a distributed run did: the frames' results (in the order asked) and counts."""

    frames: list[FrameResult] = field(default_factory=list)
    n_done: int = 0
    n_kept: int = 0
    n_retried: int = 0
    seconds: float = 0.0


def segment_distributed(client, segmenter, frames: FileFrames, locations: Sequence[Location], *, results_dir,
                        signature: str, examples: Mapping[Location, list] | None = None, resume: bool = True,
                        show_progress: bool | None = None, rounds: int = 2) -> DistributedRun:
    """Predict every location on the cluster behind ``client`` (see the module's text).

    Parameters
    ----------
    client : distributed.Client
    segmenter
        Fitted (``predict(frame, *, exclude=None)``); sent to the workers once.
    frames : FileFrames
        Where the frames are; each task reads its own.
    locations : sequence of Location
    results_dir : path
        One result file per frame is written here (created if absent).
    signature : str
        :func:`~fewseg.scale.store.run_signature` of this run.
    examples : mapping Location -> examples, optional
        Objects re-discovering these are dropped in that frame (as in
        :func:`fewseg.batch.segment_frames`).
    resume : bool
        Skip frames whose stored result is current (default); False redoes every frame.
    rounds : int
        How many times frames whose task failed for a reason other than bad input
        (a lost worker, lost model copies) are sent again.
    """
    from distributed import as_completed

    from ..progress import progress

    t0 = time.perf_counter()
    Path(results_dir).mkdir(parents=True, exist_ok=True)
    examples = examples or {}
    run = DistributedRun()
    todo = list(dict.fromkeys(locations))
    for round_ in range(rounds + 1):
        if not todo:
            break
        model = client.scatter(segmenter, broadcast=True, hash=False)
        futures = {
            client.submit(segment_frame_task, model, frames, loc, signature=signature, results_dir=str(results_dir),
                          exclude=examples.get(loc), resume=resume, pure=False,
                          key=f"fewseg-frame-{loc.xy}-{loc.z}-{loc.time}-{round_}-{signature[:8]}"): loc
            for loc in todo
        }
        failed = []
        desc = "frames" if round_ == 0 else f"frames (again, round {round_ + 1})"
        for future in progress(as_completed(futures), total=len(futures), desc=desc, enabled=show_progress):
            try:
                outcome = future.result()
            except InputError:
                for other in futures:
                    other.cancel()
                raise
            except Exception:  # noqa: BLE001 -- a lost worker or model copy: send the frame again
                failed.append(futures[future])
                continue
            if outcome["status"] == "refused":
                for other in futures:
                    other.cancel()
                raise outcome["error"]
            run.n_done += outcome["status"] == "done"
            run.n_kept += outcome["status"] == "kept"
        run.n_retried += len(failed)
        todo = failed
    if todo:
        raise RuntimeError(f"{len(todo)} frame(s) failed {rounds + 1} times on the cluster, e.g. {todo[0]}; "
                           "their results are missing: run again to redo only those")
    run.frames = [read_result(result_path(results_dir, loc)) for loc in dict.fromkeys(locations)]
    run.seconds = time.perf_counter() - t0
    return run
