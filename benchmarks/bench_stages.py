"""Where the weight-free method's time goes on the busy demo frame, stage by stage.

    python benchmarks/bench_stages.py [--out benchmarks/results]

CPU seconds (``time.process_time``, median of 3 in this process) of each stage of
``fit`` and ``predict`` on ``make_demo(busy=True)`` with its first 10 blobs as examples,
and of importing what ``fewseg segment`` imports (a fresh interpreter each, user + system
time of the child). Prints a Markdown table and writes it with the raw figures to
``OUT/stages.md`` and ``OUT/stages.json``.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

#: What ``fewseg segment`` imports to segment one file.
COMMAND_IMPORTS = ("fewseg.cli, fewseg.cli.segment, fewseg.batch, fewseg.methods, fewseg.classic.model, fewseg.io.frames, "
                   "fewseg.io.annotations, fewseg.io.outputs, fewseg.io.dataset, fewseg.polygons")
#: The third-party part of it, which the method needs: numpy, scipy.ndimage (with its
#: array-API layer), scikit-image's watershed (whose ``skimage.morphology`` imports
#: ``scipy.spatial``), contours and drawing, shapely, tifffile.
THIRD_PARTY_IMPORTS = "numpy, scipy.ndimage, skimage.segmentation, skimage.morphology, skimage.measure, skimage.draw, " \
                      "shapely, tifffile"


def clock(f, *args, runs: int = 3, **kwargs):
    """``f(*args, **kwargs)`` and the median CPU seconds of ``runs`` calls."""
    from report import cold

    times = []
    for _ in range(runs):
        cold()  # each run as a fresh process would make it
        c0 = time.process_time()
        out = f(*args, **kwargs)
        times.append(time.process_time() - c0)
    return out, statistics.median(times)


def import_seconds(modules: str, runs: int = 3) -> float:
    """Median CPU seconds (user + system) of a fresh interpreter importing ``modules``."""
    times = []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run([sys.executable, "-c", f"import {modules}"], check=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        times.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(HERE / "results"))
    args = ap.parse_args()

    import numpy as np

    from fewseg.classic import describe as embed, examples, propose
    from fewseg.demo import make_demo
    from fewseg.classic.model import WeightFreeSegmenter
    from fewseg.classic.clicks import as_masks

    frame, truth = make_demo(seed=0, busy=True)
    chosen = truth[:10]
    masks = as_masks(chosen, frame)
    model, fit = clock(lambda: WeightFreeSegmenter().fit(frame, chosen))
    (profile, signal), t_profile = clock(examples.learn_profile_and_signal, frame, masks)
    weighted = [c for c, w in zip(frame.data, profile.weights) if w != 0]
    _, t_background = clock(lambda: [examples.estimate_background(c, radius=profile.radius) for c in weighted])
    _, t_search = clock(propose.fit_proposer, signal, masks, profile.radius)
    base = embed.channel_levels(frame)
    _, t_describe_examples = clock(embed.describe, frame, signal, masks, profile, base=base)
    settings = model.settings
    smooth, t_smooth = clock(propose.smooth_signal, signal, settings)
    _, t_first = clock(propose.split_regions, smooth, settings)
    levels, t_levels = clock(propose.propose_levels, signal, settings, min_area=model.config.min_area,
                             max_area=model.config.max_area)
    _, t_describe = clock(lambda: np.vstack([embed.describe(frame, signal, level, profile, base=base) for level in levels]))

    result, t_predict = clock(lambda: model.predict(frame, exclude=chosen))
    # napari's similarity box: what predict returned, kept at another threshold (no refit, no predict)
    _, t_again = clock(lambda: model.rethreshold(result, similarity=0.9))
    import tempfile

    from fewseg.io.annotations import read_annotations, write_annotations
    from fewseg.io.frames import read_frame, write_frame

    with tempfile.TemporaryDirectory() as tmp:  # the command's files: an OME-TIFF, GeoJSON examples and result
        image, examples_file, found = Path(tmp) / "frame.ome.tif", Path(tmp) / "examples.json", Path(tmp) / "found.geojson"
        write_frame(image, frame)
        write_annotations(examples_file, chosen, shape=frame.shape)
        _, t_read = clock(lambda: (read_frame(image), read_annotations(examples_file, shape=frame.shape)))
        _, t_write = clock(write_annotations, found, result.annotations(tags=("fewseg",)), shape=frame.shape)
    t_imports = import_seconds(COMMAND_IMPORTS)
    t_numpy = import_seconds("numpy")
    t_ndimage = import_seconds("scipy.ndimage")
    t_third = import_seconds(THIRD_PARTY_IMPORTS)
    t_start = import_seconds("sys")
    rows = [
        ("fit", fit), ("  profile and object signal", t_profile),
        ("    of which the background (estimate_background)", t_background),
        ("  proposer's search (fit_proposer)", t_search),
        ("  examples' descriptors", t_describe_examples),
        ("predict (excluding the examples)", t_predict), ("  propose_levels (both levels)", t_levels),
        ("    of which smoothing", t_smooth), ("    of which the shared first split", t_first),
        ("  descriptors of both levels", t_describe),
        ("  polygons and overlaps (finish), wall", result.timings["polygons"]),
        ("keep what predict returned at another similarity (re-threshold)", t_again),
        ("reading the OME-TIFF frame and the GeoJSON examples", t_read),
        ("writing the found objects as GeoJSON", t_write),
        ("imports of `fewseg segment` (fresh interpreter)", t_imports), ("  numpy alone", t_numpy),
        ("  scipy.ndimage (with numpy)", t_ndimage), ("  all the third-party modules it needs", t_third),
        ("  (an interpreter that imports nothing more)", t_start),
    ]
    lines = ["| stage (busy demo frame, 10 examples) | CPU s |", "|---|---|"]
    lines += [f"| {name} | {seconds:.3f} |" for name, seconds in rows]
    from report import publish

    publish(args.out, "stages", lines, {name.strip(): seconds for name, seconds in rows})


if __name__ == "__main__":
    main()
