"""Each frame's result on disk: written atomically when done, with a signature.

A run's results directory (``OUTPUT.fewseg-frames/`` beside the output) holds one JSON
file per frame (``xy0_z3_t12.json``): the run's signature (the configuration, what the
fit learned, the examples: :func:`run_signature`), the frame's own digest (its pixels),
and what was found (polygons, scores, counts). A re-run skips a frame whose file has
the same run signature and frame digest, and redoes the rest.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from .._atomic import atomic_open
from ..batch import FrameResult
from ..objects import Location, rasterize
from ..result import Segmentation

__all__ = ["run_signature", "result_path", "write_result", "read_result", "stored_signature"]

FORMAT = "fewseg-frame-result/1"


def run_signature(*, config: dict, learned: dict, examples_digest: str, version: str) -> str:
    """SHA-256 of everything that decides a frame's result besides the frame itself."""
    text = json.dumps({"config": config, "learned": learned, "examples": examples_digest, "fewseg": version},
                      sort_keys=True, default=float)
    return hashlib.sha256(text.encode()).hexdigest()


def masks_digest(masks) -> str:
    """SHA-256 of example masks (positions and pixels)."""
    h = hashlib.sha256()
    for m in masks:
        h.update(np.asarray([m.row, m.col, *m.mask.shape], np.int64).tobytes())
        h.update(np.packbits(m.mask).tobytes())
    return h.hexdigest()


def result_path(directory: str | os.PathLike, location: Location) -> Path:
    return Path(directory) / f"xy{location.xy}_z{location.z}_t{location.time}.json"


def write_result(path: str | os.PathLike, result: FrameResult, *, signature: str, frame_digest: str,
                 shape: tuple[int, int]) -> None:
    """Write one frame's result atomically (complete or absent)."""
    s = result.segmentation
    record = {
        "format": FORMAT,
        "signature": signature,
        "frame": frame_digest,
        "location": result.location.as_nimbus(),
        "shape": list(shape),
        "seconds": result.seconds,
        "n_candidates": s.n_candidates,
        "n_rediscovered": s.n_rediscovered,
        "timings": s.timings,
        "scores": [float(x) for x in s.scores],
        # float() repr round-trips exactly: the polygons read back are the ones found.
        "polygons": [np.asarray(p, dtype=np.float64).tolist() for p in s.polygons],
    }
    with atomic_open(path, "w", encoding="utf-8") as handle:
        json.dump(record, handle)


def stored_signature(path: str | os.PathLike) -> tuple[str, str] | None:
    """``(run signature, frame digest)`` of a stored result, or None if absent or unreadable."""
    try:
        record = json.loads(Path(path).read_text(encoding="utf-8"))
        if record.get("format") != FORMAT:
            return None
        return record["signature"], record["frame"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def read_result(path: str | os.PathLike) -> FrameResult:
    """A stored frame result as a :class:`~fewseg.batch.FrameResult` (masks rasterised
    from the polygons, as :func:`fewseg.result.finish` makes them)."""
    record = json.loads(Path(path).read_text(encoding="utf-8"))
    shape = tuple(record["shape"])
    polygons = [np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in record["polygons"]]
    loc = record["location"]
    segmentation = Segmentation(polygons=polygons, masks=[rasterize(p, shape) for p in polygons],
                                scores=np.asarray(record["scores"], dtype=np.float64),
                                n_candidates=record["n_candidates"], n_rediscovered=record["n_rediscovered"],
                                timings=record["timings"])
    return FrameResult(Location(xy=loc["XY"], z=loc["Z"], time=loc["Time"]), segmentation, record["seconds"])
