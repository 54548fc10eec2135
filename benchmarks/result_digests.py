"""Digests of everything the weight-free method produces, to show two source trees give
the same results bit for bit.

    PYTHONPATH=<checkout>/src python benchmarks/result_digests.py [--out FILE.json]

For the busy demo frame, the demo frame, a 256 x 256 demo and stardist's img2d (when
``data/stardist`` holds it), with two sets of 10 examples each and the first set as clicks (the evaluation's click
mode, outlined by :func:`fewseg.classic.clicks.outline_clicks` (``fewseg.outline_points`` before issue 17)): a sha256 over the
candidates count, every outline, mask and score of ``predict`` (with and without the
examples excluded), the selector's scores, what ``fit`` learned, the examples'
descriptors and the object signal. Run it under each tree and compare the files.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def _module(name: str, before: str):
    """``fewseg.<name>``, or ``fewseg.<before>`` in a tree from before the package layout
    (issue 17), so the same script digests both trees."""
    import importlib

    try:
        return importlib.import_module(f"fewseg.{name}")
    except ModuleNotFoundError:
        return importlib.import_module(f"fewseg.{before}")


def digest(frame, examples) -> str:
    WeightFreeSegmenter = _module("classic.model", "model").WeightFreeSegmenter

    model = WeightFreeSegmenter().fit(frame, examples)
    h = hashlib.sha256()
    for result in (model.predict(frame, exclude=examples), model.predict(frame)):
        h.update(repr((result.n_candidates, result.n_rediscovered)).encode())
        for polygon in result.polygons:
            h.update(np.ascontiguousarray(polygon).tobytes())
        for mask in result.masks:
            h.update(repr((mask.row, mask.col, mask.mask.shape)).encode())
            h.update(np.packbits(mask.mask).tobytes())
        h.update(np.asarray(result.scores).tobytes())
        h.update(np.asarray(result.selection.scores).tobytes())
    h.update(json.dumps(model.describe_fit(), sort_keys=True).encode())
    h.update(np.asarray(model.example_vectors).tobytes())
    object_signal = _module("classic.examples", "examples").object_signal

    h.update(object_signal(frame, model.profile).tobytes())  # the object signal, as predict computes it
    return h.hexdigest()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=None, help="also write the digests to this JSON file")
    args = ap.parse_args()

    import fewseg
    read_annotations = _module("io.annotations", "annotations").read_annotations
    from fewseg.demo import make_demo
    read_frame = _module("io.frames", "load").read_frame

    cases = [("busy demo", *make_demo(seed=0, busy=True)), ("demo", *make_demo(seed=0)),
             ("demo 256 x 256", *make_demo(seed=1, shape=(256, 256), n_blobs=40))]
    stardist = HERE.parent / "data" / "stardist"
    if (stardist / "img2d.tif").exists():
        nuclei = read_frame(stardist / "img2d.tif")
        cases.append(("stardist img2d", nuclei, read_annotations(stardist / "mask2d.tif", shape=nuclei.shape)))
    out = {"fewseg": str(Path(fewseg.__file__).parent)}
    from fewseg.evaluate import as_clicks
    outline_clicks = _module("classic.clicks", "outline_points").outline_clicks
    as_masks = _module("classic.clicks", "result").as_masks

    for name, frame, truth in cases:
        for first in (0, 20):
            out[f"{name}, examples {first}-{first + 9}"] = digest(frame, truth[first:first + 10])
        clicked = outline_clicks(frame, as_clicks(as_masks(truth[:10], frame), seed=0))
        out[f"{name}, examples 0-9 as clicks"] = digest(frame, clicked)
    text = json.dumps(out, indent=1)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    sys.exit(main())
